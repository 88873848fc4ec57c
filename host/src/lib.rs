//! wsrun: run sandboxed WebAssembly components that script WebSocket client sessions.
//!
//! The host owns every socket, task and limit; a guest only holds handles, so stopping a guest never leaks a
//! connection. Embedding it takes three steps:
//!
//! ```no_run
//! # async fn example() -> Result<(), wsrun::Error> {
//! let runtime = wsrun::Runtime::new()?;            // once: engine, linker, epoch ticker
//! let program = runtime.load_bundled("echo")?;     // once per guest: compiled and linked
//! let session = program.session("ws://127.0.0.1:9000/").inherit_stdio();
//! let cancel = session.cancel_handle();            // stops this session alone, from anywhere
//! let outcome = session.run().await;               // any number of these, side by side
//! # drop(cancel);
//! println!("exit code {}", outcome.exit_code());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod bindings;
pub mod bundled;
mod cache;
mod cancel;
#[doc(hidden)]
pub mod cli;
mod error;
pub mod grant;
mod limits;
pub mod origin;
mod program;
mod runtime;
mod session;
mod state;
pub mod websocket;

pub use cancel::{CancelHandle, StopReason};
pub use error::Error;
pub use grant::{Grant, OriginPattern};
pub use limits::{ConnectionLimits, Limits};
pub use program::Program;
pub use runtime::{Runtime, RuntimeBuilder};
pub use session::{Outcome, SessionBuilder};
pub use state::SessionState;
pub use websocket::{Proxy, TlsSettings, Transport};

/// In-memory stdio for sessions (`MemoryInputPipe`, `MemoryOutputPipe`), from wasmtime-wasi.
pub use wasmtime_wasi::p2::pipe;
