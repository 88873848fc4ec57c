//! Ctrl+C and SIGTERM: the first cancels the session (which then closes its connections cleanly), the second exits
//! at once.

use tokio::signal::unix::{signal, SignalKind};
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;

use crate::CancelHandle;

/// Watch for SIGINT and SIGTERM until the returned handle is dropped.
pub fn cancel_on_signal(cancel: CancelHandle) -> Option<AbortOnDropJoinHandle<()>> {
    let mut interrupt = signal(SignalKind::interrupt()).ok()?;
    let mut terminate = signal(SignalKind::terminate()).ok()?;
    Some(wasmtime_wasi::runtime::spawn(async move {
        let mut received = 0;
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            received += 1;
            if received == 1 {
                cancel.cancel();
            } else {
                eprintln!("wsrun: interrupted");
                std::process::exit(130);
            }
        }
    }))
}
