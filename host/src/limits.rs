//! The resource limits of one session, their defaults, and the store limiter that enforces the memory limit.

use std::time::Duration;

use wasmtime::ResourceLimiter;

pub use crate::websocket::ConnectionLimits;

/// Everything a session may use at most.
#[derive(Clone, Debug)]
pub struct Limits {
    /// All of the guest's linear memories and tables together, in bytes (a component may hold several of each).
    pub memory: usize,
    /// Connections: how many, how large a message, how much queued, how long an opening.
    pub connections: ConnectionLimits,
    /// Wall-clock time the whole session may take; `None` for no limit.
    pub timeout: Option<Duration>,
    /// Once a close frame is sent on a connection (by the guest, or by the host when the session ends), how long
    /// the peer has to answer with its own before the host drops the connection (which then ends as 1006). Also
    /// how long a server that closed first has to end the TCP connection once its close frame is answered (RFC 6455
    /// leaves that to the server; one that never does would otherwise hold the session).
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

/// Core instances, linear memories and tables a session's store may create. Rust guests use 1-4 instances, 1
/// memory and 1-2 tables; componentize-py and componentize-js guests up to about 16 instances, 4 memories and 16
/// tables. The sum of memory and table sizes is bounded by [`Limits::memory`] whatever these counts are; the counts
/// bound the host's own bookkeeping per instance.
pub const MAX_INSTANCES: usize = 64;
/// See [`MAX_INSTANCES`].
pub const MAX_MEMORIES: usize = 16;
/// See [`MAX_INSTANCES`].
pub const MAX_TABLES: usize = 64;
/// Resources (connections, pollables, streams) a session may hold at once in its handle table.
pub const MAX_HANDLES: usize = 10_000;

/// Refuses growth past the session's limit, counted over every linear memory and table of the store, with a trap
/// that names the limit rather than a bare failed allocation deep in the guest.
pub(crate) struct SessionLimiter {
    limit: usize,
    /// Bytes of every memory and table granted so far (memories and tables never shrink).
    used: usize,
}

impl SessionLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        SessionLimiter { limit: limits.memory, used: 0 }
    }

    fn grow(&mut self, current: usize, desired: usize, what: &str) -> wasmtime::Result<bool> {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if total > self.limit {
            return Err(wasmtime::Error::msg(format!(
                "memory limit reached: the guest asked for {} MiB of {what} in all, the session allows {} MiB",
                total.div_ceil(1 << 20),
                self.limit >> 20
            )));
        }
        self.used = total;
        Ok(true)
    }
}

impl ResourceLimiter for SessionLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current, desired, "linear memory and tables")
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // A table holds a pointer per element.
        let element = size_of::<usize>();
        self.grow(current.saturating_mul(element), desired.saturating_mul(element), "linear memory and tables")
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}
