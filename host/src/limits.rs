//! The resource limits of one session, their defaults, and the store limiter that enforces the memory limit.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Everything a session may use at most.
#[derive(Clone, Debug)]
pub struct Limits {
    /// All of the guest's linear memories and tables together, in bytes (a component may hold several of each).
    pub memory: usize,
    /// Connections: how many, how large a message, how much queued, how long an opening.
    pub connections: ConnectionLimits,
    /// Outgoing HTTP requests (`wasi:http/outgoing-handler`): how many at once, how large their bodies, how long.
    pub http: HttpLimits,
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
            http: HttpLimits::default(),
            timeout: None,
            close_wait: Duration::from_secs(1),
            fuel: None,
        }
    }
}

/// Limits on the connections of one session.
///
/// What the host holds for a session's connections is bounded by these, whatever the guest does with its handles:
/// at most `max_connections` sockets and handles, each queue within `queued_messages` and `queued_bytes`, all
/// queues together within `session_queued_bytes`.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// How many connections the session may hold at once: open ones, closing ones, and ended ones whose handle the
    /// guest has not dropped (they still hold the messages it has not taken). The socket of an ended connection is
    /// released at once, handle or not.
    pub max_connections: usize,
    /// The largest message accepted from a peer, in bytes.
    pub max_message_size: usize,
    /// How many received messages may wait for the guest before the host stops reading the socket.
    pub queued_messages: usize,
    /// How many bytes of received messages may wait for the guest, per connection, before the host stops reading
    /// the socket (a single larger message still gets through, alone).
    pub queued_bytes: usize,
    /// How many bytes of received messages may wait for the guest on all the session's connections together before
    /// the host stops reading them.
    pub session_queued_bytes: usize,
    /// How long opening a connection may take at most (a guest may ask for less).
    pub open_timeout: Duration,
    /// How long a peer may read nothing of what waits to be written to it (a pong, a close frame, the guest's
    /// message), while it goes on sending or the guest waits to send, before the host ends the connection with 1008
    /// and the guest gets a `limit` error. What waits to be written is bounded either way.
    pub stall_timeout: Duration,
    /// Whether connections may offer compression (permessage-deflate) when the guest asks for it, as it does by
    /// default; `false` turns it off for every connection of the session.
    pub compression: bool,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 16,
            max_message_size: 16 << 20,
            queued_messages: 1024,
            queued_bytes: 64 << 20,
            session_queued_bytes: 256 << 20,
            open_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            compression: true,
        }
    }
}

/// Limits on the outgoing HTTP requests of one session. A guest's own `request-options` may ask for shorter times,
/// never longer ones.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Requests in flight at once: sent and not yet finished (the response body not read to its end or dropped).
    /// One more fails at once with `connection-limit-reached`.
    pub max_in_flight: usize,
    /// The most bytes of one request's body; more fails the request with `HTTP-request-body-size`.
    pub max_request_body: u64,
    /// The most bytes of one response's body; more fails the body's stream with `HTTP-response-body-size`.
    pub max_response_body: u64,
    /// How long connecting may take (DNS, TCP, the proxy, TLS), as for a WebSocket connection: `connection-timeout`.
    pub connect_timeout: Duration,
    /// How long the whole exchange may take, from the request to the last byte of the response's body:
    /// `HTTP-response-timeout`.
    pub deadline: Duration,
    /// How long the server may send nothing, waiting for the response's head or between bytes of its body:
    /// `connection-read-timeout`.
    pub between_bytes: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_in_flight: 4,
            max_request_body: 16 << 20,
            max_response_body: 16 << 20,
            connect_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            between_bytes: Duration::from_secs(10),
        }
    }
}

/// Core instances, linear memories and tables a session's store may create, well above what guests use (Rust: 3
/// core instances, 1 memory, 2 tables; componentize-py: 14, 1, 2; componentize-js: 4, 1, 2; see
/// [`PoolLimits`](crate::PoolLimits), which bounds them lower under pooling). The sum of memory and table sizes is bounded by [`Limits::memory`] whatever these counts are; the counts
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(memory: usize) -> SessionLimiter {
        SessionLimiter::new(&Limits { memory, ..Limits::default() })
    }

    #[test]
    fn memories_and_tables_grow_within_the_limit_together() {
        let mut limiter = limiter(1 << 20);
        assert!(limiter.memory_growing(0, 512 << 10, None).unwrap());
        // A table of 32 Ki elements holds a pointer each: 256 KiB, which fits beside the memory.
        assert!(limiter.table_growing(0, 32 << 10, None).unwrap());
        // The same memory grown again is counted once, at its new size: exactly the limit.
        assert!(limiter.memory_growing(512 << 10, 768 << 10, None).unwrap());
        let error = limiter.memory_growing(768 << 10, (768 << 10) + 1, None).unwrap_err().to_string();
        assert!(error.contains("memory limit reached") && error.contains("allows 1 MiB"), "{error}");
        assert!(limiter.table_growing(32 << 10, (32 << 10) + 1, None).is_err(), "one more table element");
    }

    #[test]
    fn counts_of_instances_memories_and_tables() {
        let limiter = limiter(1 << 20);
        assert_eq!(
            (limiter.instances(), limiter.memories(), limiter.tables()),
            (MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES)
        );
    }
}
