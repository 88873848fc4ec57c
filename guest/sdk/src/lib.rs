//! What a Rust wsrun guest needs: the bindings of the `client` world (generated once, here), `export!` for the
//! guest's `run`, and helpers for the chores every guest repeats (arguments, stdout, describing errors).
//!
//! ```ignore
//! struct MyGuest;
//! impl wsrun_guest::Guest for MyGuest {
//!     fn run() -> Result<(), ()> { /* ... */ Ok(()) }
//! }
//! wsrun_guest::export!(MyGuest);
//! ```

wit_bindgen::generate!({
    path: "wit",
    world: "client",
    generate_all,
    pub_export_macro: true,
    default_bindings_module: "wsrun_guest",
});

mod connect;
mod defaults;
mod describe;
mod escape;
pub mod http;
mod io;
pub mod metrics;

pub use connect::connect_to_url_arg;
pub use describe::{close_code_name, describe};
pub use escape::{escape, is_unsafe};
pub use exports::wasi::cli::run::Guest;
pub use io::{args, Stdout};
pub use wsrun::ws::websocket::{
    CloseFrame, Compression, ConnectOptions, Connection, ErrorCode, Header, HttpResponse, Keepalive, Message,
};
