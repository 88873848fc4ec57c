//! The resource limits of one session, with their defaults.

use std::time::Duration;

pub use crate::websocket::ConnectionLimits;

/// Everything a session may use at most.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The guest's linear memory, in bytes, across all its memories.
    pub memory: usize,
    /// Connections: how many, how large a message, how many queued, how long an opening.
    pub connections: ConnectionLimits,
    /// Wall-clock time the whole session may take; `None` for no limit.
    pub timeout: Option<Duration>,
    /// After the guest is gone, how long to wait for each peer's close frame.
    pub close_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 256 << 20,
            connections: ConnectionLimits::default(),
            timeout: None,
            close_wait: Duration::from_secs(1),
        }
    }
}
