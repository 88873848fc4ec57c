//! The `wsrun:ws/websocket` interface: WebSocket connections owned by the host, lent to the guest as handles.
//!
//! - `dial` opens a connection: URL checks, the grant, DNS, TCP, TLS, the handshake and redirects.
//! - `connection` is the open connection: a reader task per connection that fills a bounded `queue`, the
//!   shared writer (its sends flushed in batches), and the pollable; `halves` shares the stream between the two,
//!   and `wire` is the socket under it, where frames the host made itself wait their turn.
//! - `host` is the WIT glue: the generated `Host` traits implemented over those two; `received` and `sent` replace
//!   three of the generated functions so that payloads cross the component boundary with fewer copies.

#[cfg(test)]
mod boundary_tests;
mod connection;
mod dial;
mod errors;
mod frame_buffer;
mod halves;
mod host;
mod queue;
mod received;
mod scan;
mod sent;
mod tls;
mod transport;
mod wire;
#[cfg(test)]
mod wire_tests;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Linker, ResourceTable};

use crate::bindings::websocket::ErrorCode;
use crate::grant::Grant;
use crate::stats::SessionStats;

pub use connection::Connection;
pub(crate) use connection::Shared;
pub use errors::WsError;
pub use tls::TlsSettings;
pub use transport::{parse_proxy_url, Proxy, Transport};

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
        }
    }
}

/// The WebSocket state of one session: what the guest may reach, its limits, and every connection it opened (so
/// the host can close them when the session ends, whatever the guest did with its handles).
pub struct WebsocketCtx {
    pub(crate) grant: Grant,
    pub(crate) limits: ConnectionLimits,
    pub(crate) transport: Transport,
    pub(crate) opened: Vec<Arc<Shared>>,
    /// The bytes all the session's queues may hold together.
    pub(crate) queue_budget: Arc<queue::SessionBudget>,
    /// Once a close frame is sent, how long the peer has to answer it.
    pub(crate) close_wait: Duration,
    /// What the session's connections carried, for whoever runs it.
    pub(crate) stats: Arc<SessionStats>,
}

impl WebsocketCtx {
    /// A context that lets the guest reach what `grant` allows, within `limits`, by way of `transport`.
    pub fn new(grant: Grant, limits: ConnectionLimits, transport: Transport) -> Self {
        let queue_budget = queue::SessionBudget::new(limits.session_queued_bytes);
        WebsocketCtx {
            grant,
            limits,
            transport,
            opened: Vec::new(),
            queue_budget,
            close_wait: crate::Limits::default().close_wait,
            stats: Arc::default(),
        }
    }

    /// Count this context's traffic into `stats` (by default, figures nobody reads).
    pub fn stats(mut self, stats: Arc<SessionStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Once a close frame is sent (by the guest or the host), how long the peer has to answer it before the host
    /// drops the connection, which then ends as 1006; and once the peer's close frame is answered, how long the
    /// server has to end the TCP connection (default: [`Limits::close_wait`](crate::Limits::close_wait)).
    pub fn close_wait(mut self, wait: Duration) -> Self {
        self.close_wait = wait;
        self
    }

    /// Take the connections the session opened, to close them after the guest is gone.
    pub(crate) fn take_opened(&mut self) -> Vec<Arc<Shared>> {
        std::mem::take(&mut self.opened)
    }
}

/// What the `websocket` host functions work on: the session's context and its resource table.
pub struct WebsocketCtxView<'a> {
    /// The session's WebSocket state.
    pub ctx: &'a mut WebsocketCtx,
    /// The table that holds the guest's `connection` handles.
    pub table: &'a mut ResourceTable,
}

/// Implemented by a store's data to give the `websocket` interface its state, like `wasmtime_wasi::WasiView`.
pub trait WebsocketView: Send {
    /// The session's WebSocket context and resource table.
    fn websocket(&mut self) -> WebsocketCtxView<'_>;
}

struct HasWebsocket;

impl HasData for HasWebsocket {
    type Data<'a> = WebsocketCtxView<'a>;
}

/// The interface as the guest imports it: the package and version of `wit/world.wit`.
const INTERFACE: &str = "wsrun:ws/websocket@0.1.0";

/// Add the `wsrun:ws/websocket` interface to `linker`.
///
/// Three of its functions replace the generated ones (see `received` and `sent`), so this leaves the linker's
/// [`allow_shadowing`](Linker::allow_shadowing) off, wasmtime's default, whatever it was before. Instantiation
/// type-checks the replacements against the guest's imports like any other function.
pub fn add_to_linker<T: WebsocketView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    crate::bindings::websocket::add_to_linker::<T, HasWebsocket>(linker, T::websocket)?;
    linker.allow_shadowing(true);
    let replaced = (|| {
        let mut interface = linker.instance(INTERFACE)?;
        received::replace_receive(&mut interface)?;
        sent::replace_send(&mut interface)
    })();
    linker.allow_shadowing(false);
    replaced
}

/// A guest-visible error becomes the WIT `error-code`; a trap stays one.
fn guest_visible<V>(result: Result<V, WsError>) -> wasmtime::Result<Result<V, ErrorCode>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) => Ok(Err(error.downcast()?)),
    }
}
