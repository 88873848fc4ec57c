//! An open connection: the guest's handle on it ([`Connection`], here), and what the session keeps of it until it
//! ends (`live`: the writer every send goes through, the close status, and the connection's tasks): the `reader`
//! that fills a bounded `queue` (and pings for keepalive, times the closing handshake, watches for a `stall`), and the
//! flusher of what the guest sends.

mod incoming;
mod keepalive;
mod live;
mod queue;
mod reader;
mod stall;

use crate::events::EventSink;
use std::sync::Arc;
use std::time::Duration;

use crate::websocket::dial::Dialed;
use crate::websocket::net::deflate::Deflating;
use crate::websocket::net::halves;
use live::ConnectionState;

pub(crate) use incoming::Incoming;
pub(crate) use keepalive::KeepaliveTimes;
pub(crate) use live::LiveConnection;
pub(crate) use queue::{Received, SessionBudget};

/// How a connection is run: the guest's `connect-options` and the session's limits.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// What may wait for the guest on this connection before reading stops.
    pub queue: QueueLimits,
    /// The session's byte budget, shared by all its connections: reading stops when it is spent too.
    pub session_budget: Arc<SessionBudget>,
    /// Queue pings and pongs for the guest too.
    pub control_frames: bool,
    /// Ping, and give up on a peer whose pong does not come.
    pub keepalive: Option<KeepaliveTimes>,
    /// Once our close frame is sent, how long the peer has to answer it before the host drops the connection.
    pub close_wait: Duration,
    /// How long the peer may read nothing of what waits to be written to it, while it goes on sending or the guest
    /// waits to send, before the host ends the connection with 1008.
    pub stall_timeout: Duration,
    /// Where the session's events go, and this connection's number among them.
    pub events: EventSink,
    pub number: u64,
}

/// How much of what the peer sent may wait for the guest on one connection before the host stops reading it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueLimits {
    /// Messages.
    pub messages: usize,
    /// Bytes (a single larger message still gets through, alone).
    pub bytes: usize,
}

/// The guest's handle on a connection (the `connection` resource).
///
/// Dropping it does not close the socket: the session keeps the connection live (its socket and tasks), so the host
/// can still send a close frame and wait for the peer's.
pub struct Connection {
    pub(crate) live: Arc<LiveConnection>,
    queue: Arc<queue::Queue>,
    pub(crate) url: String,
    pub(crate) protocol: Option<String>,
    /// Whether compression was agreed on.
    pub(crate) compressed: bool,
    /// The largest message the guest may send (the same as it may receive).
    pub(crate) max_message: usize,
    /// Its number among the session's connections, in its events.
    pub(crate) number: u64,
}

impl Connection {
    /// Start the reader task for an open connection and hand back the guest's handle.
    pub(crate) fn start(dialed: Dialed, options: Options) -> Connection {
        let Dialed { stream, url, protocol, max_message, deflate } = dialed;
        let number = options.number;
        let url = url.to_string();
        let (writer, reader) = halves::split(stream);
        let limits = options.queue;
        let queue = Arc::new(queue::Queue::new(limits.messages, limits.bytes, options.session_budget.clone()));
        let deflating = deflate.as_ref().and_then(Deflating::new);
        let state = ConnectionState::new(writer, url.clone(), limits, queue.clone(), options.stall_timeout, deflating);
        let state = Arc::new(state);
        let task = wasmtime_wasi::runtime::spawn(reader::read_loop(reader, state.clone(), options));
        let flusher = state.batch_sends.then(|| wasmtime_wasi::runtime::spawn(live::flush_loop(state.clone())));
        let live = Arc::new(LiveConnection::new(state, task, flusher));
        Connection { live, queue, url, protocol, compressed: deflate.is_some(), max_message, number }
    }

    /// Wait for the next message, error or end.
    pub(crate) async fn receive(&mut self) -> Received {
        loop {
            if let Some(received) = self.queue.try_take() {
                // A guest that always finds a message waiting would otherwise never let the flusher and the reader
                // run on a single-threaded runtime: every so often (tokio's budget), it yields here.
                tokio::task::coop::consume_budget().await;
                return received;
            }
            self.queue.ready().await;
        }
    }

    /// Take the next message, error or end if there is one.
    pub(crate) fn try_receive(&mut self) -> Option<Received> {
        self.queue.try_take()
    }
}

impl Drop for Connection {
    /// The guest is done with its handle: what it has not taken is dropped, and the reader queues no more.
    fn drop(&mut self) {
        self.queue.close();
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for Connection {
    async fn ready(&mut self) {
        self.queue.ready().await;
    }
}
