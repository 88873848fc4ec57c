//! Errors of the library's own operations (loading a guest, setting up the engine). What happens inside a session
//! is an [`Outcome`](crate::Outcome), and what a guest sees is the WIT's `error-code`.

use std::io;
use std::path::PathBuf;

/// Why a runtime could not be set up or a guest could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The guest file could not be read.
    #[error("cannot read guest {}: {source}", path.display())]
    ReadGuest {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The guest is not WebAssembly at all.
    #[error("{name} is not a WebAssembly component (it does not start with the \\0asm header)")]
    NotWasm {
        /// The guest's name or path.
        name: String,
    },
    /// The guest is a core module, not a component.
    #[error("{name} is a core WebAssembly module, not a component: build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)")]
    CoreModule {
        /// The guest's name or path.
        name: String,
    },
    /// The guest is malformed or could not be compiled.
    #[error("{name} could not be compiled: {reason}")]
    Compile {
        /// The guest's name or path.
        name: String,
        /// What wasmtime said.
        reason: String,
    },
    /// The guest imports something the host does not provide (wsrun's world, and a tool's own interfaces), or lacks
    /// the `wasi:cli/run` export.
    #[error("{name} does not fit the wsrun:ws/client world (it must import only what that world offers, or its host's own interfaces, and export wasi:cli/run): {reason}")]
    Link {
        /// The guest's name or path.
        name: String,
        /// What wasmtime said: the import or export at fault.
        reason: String,
    },
    /// The guest is a precompiled file (native code), which [`Runtime::load`](crate::Runtime::load) never runs; only
    /// [`Runtime::load_precompiled`](crate::Runtime::load_precompiled) does, for a caller that trusts it.
    #[error("{name} is a precompiled guest: native code, not WebAssembly, so it is not run unless trusted explicitly")]
    Precompiled {
        /// The guest's name or path.
        name: String,
    },
    /// The WebAssembly engine could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
}
