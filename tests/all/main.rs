//! End-to-end tests: the real `wsrun` binary, real guests built from source, real WebSocket servers on loopback.

// Tables of test cases and the test servers' handshake callbacks read best as they are written.
#![allow(clippy::type_complexity, clippy::result_large_err)]

mod http_server;
mod proxy;
mod python_server;
mod raw;
mod servers;
mod terminal;
mod tls;
mod util;

mod attacks;
mod bad_peers;
mod blocked_output;
mod cache;
mod cancel;
mod client;
mod client_input;
mod client_modes;
mod compression;
mod connect_errors;
mod embedding;
mod end_of_input;
mod grant;
mod hostile_peers;
mod http;
mod limits;
mod load_errors;
mod load_runs;
mod many_sessions;
mod new_guest;
mod ordering;
mod plugin_host;
mod sandbox;
mod scripting;
mod tls_and_proxy;
mod usage;
