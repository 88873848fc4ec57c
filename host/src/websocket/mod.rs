//! The `wsrun:ws/websocket` interface: WebSocket connections owned by the host, lent to the guest as handles.
//!
//! Three layers, each using only the one below it:
//!
//! - `host`: the glue. Every function of the WIT interface is implemented there, the generated trait methods and
//!   the linker functions that replace three of them, with a header saying which path a guest takes.
//! - `dial` and `connection`: opening a connection (URL checks, the grant at every hop, the handshake, redirects,
//!   all under one time limit) and running it (the reader task, the bounded queue, the writer, the close status,
//!   keepalive, the stall watch). They know frames and limits, not the linker; they build the WIT's error and record
//!   types (`errors`), as wasmtime-wasi-http's layers build its error codes.
//! - `net`: bytes and frames: the socket, TLS, the proxy, the frame scanner, the frames the host makes. It knows
//!   nothing of WIT or of the guest.

#[cfg(test)]
mod boundary_tests;
mod connection;
mod ctx;
mod dial;
mod errors;
mod host;
mod net;

pub use connection::Connection;
pub use ctx::{WebsocketCtx, WebsocketCtxView, WebsocketView};
pub use errors::WsError;
pub use host::add_to_linker;
pub(crate) use host::INTERFACE;
pub use net::tls::TlsSettings;
pub use net::transport::{parse_proxy_url, Proxy, Transport};

/// Run the future `make` builds as a task, building it there rather than here.
///
/// Called from a guest's host call, so on its fiber stack: a future's whole size is reserved (and moved, more than
/// once) where it is made, and the pages touched stay resident for the session's life. Made on the task's first poll
/// and boxed, the opening's future costs that stack nothing (BENCHMARKS, "what a session holds").
pub(crate) fn spawn_built_there<F, Fut>(make: F) -> wasmtime_wasi::runtime::AbortOnDropJoinHandle<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    wasmtime_wasi::runtime::spawn(async move { Box::pin(make()).await })
}
