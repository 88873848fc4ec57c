//! End-to-end tests: the real `wsrun` binary, real guests built from source, real WebSocket servers on loopback.

mod servers;
mod util;

mod cancel;
mod client;
mod connect_errors;
mod load_errors;
