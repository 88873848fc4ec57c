//! Ctrl+C and SIGTERM, watched from before the guest is loaded (a Python guest compiles for seconds): the first
//! signal stops the loading, or cancels the session (which then closes its connections cleanly); the second exits
//! at once.
//!
//! They are watched on a thread of their own: the session runs on a single-threaded runtime, where a guest spinning
//! in wasm yields only at the next epoch tick; from here the cancel handle stops it at once.

use std::io::{IsTerminal, Read};
use std::os::fd::{IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use wsrun::CancelHandle;

/// Exit code of an interrupted run.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Watches SIGINT and SIGTERM until dropped.
pub struct Signals {
    received: watch::Receiver<u32>,
    session: Arc<Mutex<Option<CancelHandle>>>,
}

impl Signals {
    /// Install the handlers now (they are in place when this returns): from here on no signal kills the process
    /// without a word. The watching thread lives as long as the process.
    pub fn watch() -> Result<Self, String> {
        let cannot = |e: std::io::Error| format!("cannot watch for signals: {e}");
        let (count, received) = watch::channel(0u32);
        let session: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
        // Counted in the handler itself: one wake-up of this thread may stand for several signals, and the
        // session's thread often hears the first Ctrl+C (and sends its close frame) before this thread wakes, so a
        // second Ctrl+C could arrive in time to be taken for the first and exit nothing.
        let delivered = Arc::new(AtomicU32::new(0));
        // A socket of this thread's own rather than a tokio listener: tokio's signal pipe is shared by every runtime
        // that listens, and a runtime here would often drain it first and leave the session's thread to be woken
        // from here, a cross-core wake-up more between the signal and the cancel.
        let (mut woken, wake) = UnixStream::pair().map_err(cannot)?;
        wake.set_nonblocking(true).map_err(cannot)?;
        count_deliveries(&delivered, wake.into_raw_fd()).map_err(cannot)?;
        let target = session.clone();
        std::thread::Builder::new()
            .name("wsrun-signals".into())
            .spawn(move || loop {
                match woken.read(&mut [0; 64]) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                }
                // At least one more each wake-up, more when the handler saw several.
                count.send_modify(|count| *count = (*count + 1).max(delivered.load(Ordering::SeqCst)));
                if *count.borrow() > 1 {
                    crate::terminal::restore();
                    say_interrupted();
                    std::process::exit(EXIT_INTERRUPTED.into());
                }
                if let Some(cancel) = target.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                    cancel.cancel();
                }
            })
            .map_err(cannot)?;
        Ok(Signals { received, session })
    }

    /// From now on a signal cancels this session (and one that came already does so at once).
    ///
    /// The session's own runtime listens too. A guest spinning in wasm keeps that thread busy, and the signal
    /// thread stops it; but a session waiting on the network or stdin hears the signal on its own thread and
    /// cancels at once, where the signal thread would first have to be woken and wake it back (a cross-core
    /// wake-up each way: about 0.6 ms of the 1.6 ms from SIGINT to exit, seen with `perf trace`).
    pub fn cancel_on_signal(&self, cancel: CancelHandle) {
        if *self.received.borrow() > 0 {
            cancel.cancel();
        }
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancel.clone());
        if let Ok(mut stops) = Stops::listen() {
            tokio::spawn(async move {
                stops.next().await;
                cancel.cancel();
            });
        }
    }

    /// Whether a signal has come already.
    pub fn has_come(&self) -> bool {
        *self.received.borrow() > 0
    }

    /// Resolves at the first signal.
    pub async fn first(&self) {
        let mut received = self.received.clone();
        let _ = received.wait_for(|count| *count > 0).await;
    }
}

/// Add one to `delivered` at every SIGINT and SIGTERM, and write a byte to `wake` (a non-blocking socket the
/// process keeps for its life), beside tokio's own handling of them.
fn count_deliveries(delivered: &Arc<AtomicU32>, wake: RawFd) -> std::io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let delivered = delivered.clone();
        // SAFETY: the action adds to an atomic and writes to a socket, both async-signal-safe (the registry keeps
        // errno); a full socket drops the byte, and the count still says how many came.
        unsafe {
            signal_hook_registry::register(signal, move || {
                delivered.fetch_add(1, Ordering::SeqCst);
                libc::write(wake, [1u8].as_ptr().cast(), 1);
            })
        }?;
    }
    Ok(())
}

/// SIGINT and SIGTERM, heard on the runtime that listens.
struct Stops {
    interrupt: Signal,
    terminate: Signal,
}

impl Stops {
    fn listen() -> std::io::Result<Self> {
        Ok(Stops { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Resolves at the next one of either.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// `wsrun: interrupted`, on a line of its own even when the client's `> ` prompt (or the terminal's `^C`) is on the
/// current one.
pub fn say_interrupted() {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        eprintln!();
    }
    eprintln!("wsrun: interrupted");
}
