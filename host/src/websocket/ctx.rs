//! The state the `websocket` interface works on: each session's [`WebsocketCtx`], reached from the store's data
//! through [`WebsocketView`], as wasmtime-wasi's `WasiCtx` is through `WasiView`.

use crate::events::EventSink;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;

use super::connection::{LiveConnection, SessionBudget};
use super::net::transport::Transport;
use crate::grant::Grant;
use crate::limits::ConnectionLimits;
use crate::stats::SessionStats;

/// The WebSocket state of one session: what the guest may reach, its limits, and every connection it opened (so
/// the host can close them when the session ends, whatever the guest did with its handles).
pub struct WebsocketCtx {
    pub(crate) grant: Grant,
    pub(crate) limits: ConnectionLimits,
    pub(crate) transport: Transport,
    pub(crate) opened: Vec<Arc<LiveConnection>>,
    /// The bytes all the session's queues may hold together.
    pub(crate) queue_budget: Arc<SessionBudget>,
    /// Once a close frame is sent, how long the peer has to answer it.
    pub(crate) close_wait: Duration,
    /// What the session's connections carried, for whoever runs it.
    pub(crate) stats: Arc<SessionStats>,
    /// Where the session's events go (nowhere unless a tool watches).
    pub(crate) events: EventSink,
}

impl WebsocketCtx {
    /// A context that lets the guest reach what `grant` allows, within `limits`, by way of `transport`.
    pub fn new(grant: Grant, limits: ConnectionLimits, transport: Transport) -> Self {
        let queue_budget = SessionBudget::new(limits.session_queued_bytes);
        WebsocketCtx {
            grant,
            limits,
            transport,
            opened: Vec::new(),
            queue_budget,
            close_wait: crate::Limits::default().close_wait,
            stats: Arc::default(),
            events: EventSink::default(),
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

    /// Where the session's events go.
    pub(crate) fn events(mut self, events: EventSink) -> Self {
        self.events = events;
        self
    }

    /// Take the connections the session opened, to close them after the guest is gone.
    pub(crate) fn take_opened(&mut self) -> Vec<Arc<LiveConnection>> {
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
