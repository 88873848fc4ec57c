//! End-to-end tests: the real `wsrun` binary, real guests built from source, real WebSocket servers on loopback.

mod proxy;
mod servers;
mod tls;
mod util;

mod attacks;
mod cancel;
mod client;
mod client_modes;
mod connect_errors;
mod embedding;
mod end_of_input;
mod bad_peers;
mod cache;
mod load_errors;
mod sandbox;
mod scripting;
mod tls_and_proxy;
