//! wsrun: run sandboxed WebAssembly components that script WebSocket client sessions.
//!
//! This crate is the host as a library, for tools that run many WebSocket plugin sessions side by side; the `wsrun`
//! command is built on it. The host owns every socket, task and limit; a guest (a `wasm32-wasip2` component of the
//! `wsrun:ws/client` world) holds only handles, so stopping a guest never leaks a connection: the host closes what
//! the session opened, with a close frame, after the guest is gone.
//!
//! ```no_run
//! use std::path::Path;
//! use std::time::Duration;
//!
//! use wsrun::pipe::{MemoryInputPipe, MemoryOutputPipe};
//! use wsrun::{Grant, Limits, Outcome, OriginPattern, Runtime};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder()                     // once: engine, linker, epoch ticker
//!     .cache_dir(Runtime::default_cache_dir())         //   compiled-guest cache (optional)
//!     .pooling(10_000, 64 << 20)                       //   pooling allocator for many sessions (optional)
//!     .build()?;
//! let program = runtime.load_file(Path::new("plugin.wasm"))?; // once per guest: compiled (or cached) and linked
//!
//! let mut grant = Grant::origin_of_url("ws://127.0.0.1:9000/"); // what the session may reach
//! grant.allow(OriginPattern::parse("wss://*.example.com")?);
//! let output = MemoryOutputPipe::new(1 << 20);
//! let session = program
//!     .session("ws://127.0.0.1:9000/")                 // any number of these, each with its own
//!     .args(["--flag"])                                //   arguments,
//!     .grant(grant)                                    //   allowed origins,
//!     .limits(Limits { memory: 64 << 20, timeout: Some(Duration::from_secs(30)), ..Limits::default() })
//!     .stdin(MemoryInputPipe::new("hi\n"))             //   stdio (in memory or inherited)
//!     .stdout(output.clone());
//! let cancel = session.cancel_handle();                // Send + Sync; stops this session alone, in any state
//! let outcome = session.run().await;                   // Exited(code) | Trapped(why) | Interrupted | TimedOut
//! # drop(cancel);
//! match outcome {
//!     Outcome::Exited(0) => println!("{}", String::from_utf8_lossy(&output.contents())),
//!     other => eprintln!("the plugin ended: {other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! A tool that hosts plugins gives them interfaces of its own beside wsrun's ([`RuntimeBuilder::link`]: its
//! `bindgen!` output, with state of its own type in every session's store), and watches what each session does
//! ([`SessionBuilder::events`]: connections, messages, errors, the outcome, through a bounded queue):
//!
//! ```no_run
//! use wsrun::events::SessionEvent;
//! use wsrun::wasmtime::component::HasSelf;
//! use wsrun::{Runtime, SessionState};
//!
//! wsrun::wasmtime::component::bindgen!({
//!     inline: "package acme:bot; interface notify { notify: func(message: string); } world tool { import notify; }",
//!     world: "tool",
//!     wasmtime_crate: wsrun::wasmtime,
//! });
//!
//! #[derive(Default)]
//! struct Bot { said: Vec<String> }                          // the tool's state in each session
//!
//! impl acme::bot::notify::Host for Bot {
//!     fn notify(&mut self, message: String) { self.said.push(message) }
//! }
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder()
//!     .link::<Bot>(|linker| acme::bot::notify::add_to_linker::<_, HasSelf<Bot>>(linker, |s: &mut SessionState| s.host()))
//!     .build()?;
//! let program = runtime.load_file("plugin.wasm".as_ref())?;   // imports acme:bot/notify beside wsrun:ws/websocket
//! let mut session = program.session("ws://127.0.0.1:9000/").host_state(Bot::default());
//! let mut events = session.events(256);                         // a slow reader misses events (counted), never stalls
//! tokio::spawn(async move {
//!     while let Some(event) = events.recv().await {
//!         if let SessionEvent::Closed { code, closed_by, .. } = event { println!("closed {code} by {closed_by:?}") }
//!     }
//! });
//! let outcome = session.run().await;                            // a plugin without the interface does not load
//! # drop(outcome); Ok(()) }
//! ```
//!
//! A trap, a limit hit or a cancel in one session never touches another. Guests are loaded from the bytes of a
//! component ([`Runtime::load`], [`Runtime::load_file`]); a precompiled guest is native code and loads only through
//! [`Runtime::load_precompiled`], for callers that trust it.
#![deny(missing_docs)]

mod bindings;
mod cache;
mod cancel;
mod error;
pub mod escape;
pub mod events;
mod extension;
pub mod grant;
mod http;
mod limits;
pub mod metrics;
pub mod origin;
mod program;
mod runtime;
mod session;
mod state;
mod stats;
pub mod stdio;
pub mod websocket;

pub use cancel::{CancelHandle, StopReason};
pub use error::Error;
pub use grant::{Grant, OriginPattern};
pub use limits::{ConnectionLimits, HttpLimits, Limits};
pub use metrics::{Metrics, MetricsLimits};
pub use program::Program;
pub use runtime::{PoolLimits, Runtime, RuntimeBuilder};
pub use session::{Outcome, SessionBuilder};
pub use state::SessionState;
pub use stats::{HttpStats, SessionStats};
pub use websocket::{parse_proxy_url, Proxy, TlsSettings, Transport};

/// The wasmtime this crate is built on, for a tool's own `bindgen!` and linker functions
/// ([`RuntimeBuilder::link`]): `bindgen!({ ..., wasmtime_crate: wsrun::wasmtime })` or a `wasmtime` dependency of
/// the same version.
pub use wasmtime;
/// The traits of a session's stdio, from wasmtime-wasi: implement them to give sessions stdio of your own
/// ([`SessionBuilder::stdin`], [`SessionBuilder::stdout`], [`SessionBuilder::stderr`]).
pub use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
/// In-memory stdio for sessions (`MemoryInputPipe`, `MemoryOutputPipe`), from wasmtime-wasi.
pub use wasmtime_wasi::p2::pipe;
