//! A loaded guest: compiled, linked, ready to start sessions cheaply.

use std::sync::Arc;

use wasmtime::Engine;

use crate::bindings::ClientPre;
use crate::extension::Extensions;
use crate::session::SessionBuilder;
use crate::state::SessionState;

/// A guest compiled and linked once, from which any number of sessions start. Cheap to clone.
#[derive(Clone)]
pub struct Program {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    engine: Engine,
    pre: ClientPre<SessionState>,
    extensions: Arc<Extensions>,
}

impl Program {
    pub(crate) fn new(name: String, engine: Engine, pre: ClientPre<SessionState>, extensions: Arc<Extensions>) -> Self {
        Program { inner: Arc::new(Inner { name, engine, pre, extensions }) }
    }

    /// The guest's name (a bundled name or the file it came from).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Start describing a session of this guest against `url`. The URL is the guest's first argument, and its
    /// origin is what the session may connect to unless the builder grants otherwise.
    pub fn session(&self, url: impl Into<String>) -> SessionBuilder {
        SessionBuilder::new(self.clone(), url.into())
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn pre(&self) -> &ClientPre<SessionState> {
        &self.inner.pre
    }

    pub(crate) fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }
}
