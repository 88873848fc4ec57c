//! The resource limits of one session, their defaults, and the store limiter that enforces the memory limit.

use std::time::Duration;

use wasmtime::ResourceLimiter;

pub use crate::websocket::ConnectionLimits;

/// Everything a session may use at most.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Each of the guest's linear memories, in bytes.
    pub memory: usize,
    /// Connections: how many, how large a message, how much queued, how long an opening.
    pub connections: ConnectionLimits,
    /// Wall-clock time the whole session may take; `None` for no limit.
    pub timeout: Option<Duration>,
    /// After the guest is gone, how long to wait for each peer's close frame.
    pub close_wait: Duration,
    /// CPU, in wasmtime fuel units (roughly one per wasm instruction); `None` for no limit. Needs a runtime built
    /// with fuel metering ([`RuntimeBuilder::fuel`](crate::RuntimeBuilder::fuel)).
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 256 << 20,
            connections: ConnectionLimits::default(),
            timeout: None,
            close_wait: Duration::from_secs(1),
            fuel: None,
        }
    }
}

/// Refuses memory growth past the session's limit with a trap that names the limit, rather than a bare failed
/// allocation deep in the guest.
pub(crate) struct SessionLimiter {
    memory: usize,
}

impl SessionLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        SessionLimiter { memory: limits.memory }
    }
}

impl ResourceLimiter for SessionLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory {
            return Err(wasmtime::Error::msg(format!(
                "memory limit reached: the guest asked for {} MiB of linear memory, the session allows {} MiB",
                desired.div_ceil(1 << 20),
                self.memory >> 20
            )));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Tables hold a pointer per element; bound them by the same budget as memory.
        Ok(desired.saturating_mul(size_of::<usize>()) <= self.memory)
    }
}
