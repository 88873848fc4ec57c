//! Outgoing HTTP (`wasi:http/outgoing-handler`) within the session's grant.
//!
//! wasmtime-wasi-http implements the interface; it is built without its own sender, so every request a guest makes
//! reaches the network only through [`HttpPolicy`]'s: the grant first (`http://` is checked as the origin class of
//! `ws://`, `https://` as that of `wss://`), then the transport WebSocket connections use (DNS, the CONNECT proxy,
//! wsrun's TLS settings), HTTP/1.1, one request per connection, within the session's
//! [`HttpLimits`](crate::HttpLimits). Redirects are not followed: a 3xx goes back to the guest, and following it is
//! a new request, checked again.

mod body;
mod policy;
mod sender;

pub use policy::HttpCtx;
