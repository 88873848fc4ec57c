//! Stopping one session from anywhere: the cancel handle.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use wasmtime::Engine;

/// Why a session was stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Its [`CancelHandle`] was used.
    Cancelled,
    /// Its wall-clock limit passed.
    TimedOut(Duration),
}

/// Stops one session, whatever its guest is doing; other sessions are not touched. Cloneable, `Send + Sync`.
///
/// Both layers are needed: a guest waiting in a host call runs no wasm, so the session drops that call; a guest
/// spinning in wasm never returns to the host, so the handle bumps the engine's epoch and the session's deadline
/// callback (which checks this handle) traps it at its next check.
#[derive(Clone, Debug)]
pub struct CancelHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    reason: OnceLock<StopReason>,
    notify: Notify,
    engine: Engine,
}

impl CancelHandle {
    pub(crate) fn new(engine: Engine) -> Self {
        CancelHandle { inner: Arc::new(Inner { reason: OnceLock::new(), notify: Notify::new(), engine }) }
    }

    /// Stop the session. Calling it again, or after the session ended, does nothing.
    pub fn cancel(&self) {
        self.stop(StopReason::Cancelled);
    }

    /// Whether the session was told to stop, and why.
    pub fn reason(&self) -> Option<StopReason> {
        self.inner.reason.get().copied()
    }

    pub(crate) fn stop(&self, reason: StopReason) {
        if self.inner.reason.set(reason).is_ok() {
            self.inner.notify.notify_waiters();
            // Make every store check its deadline now; only this session's callback sees a reason to trap.
            self.inner.engine.increment_epoch();
        }
    }

    /// Resolves once the session is told to stop.
    pub(crate) async fn stopped(&self) -> StopReason {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }
}
