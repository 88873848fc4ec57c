//! The tool's own interfaces (`wit/bot.wit`), implemented over state of the tool's own: a key-value store all
//! plugins share, and each session's plugin name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wsrun::wasmtime::component::{HasSelf, Linker};
use wsrun::SessionState;

wsrun::wasmtime::component::bindgen!({
    path: "wit",
    world: "acme:bot/tool",
    // `wait` waits for another plugin: async, so a session waiting there is cancelled like anywhere else.
    imports: { default: async },
    wasmtime_crate: wsrun::wasmtime,
});

use acme::bot::{kv, notify};

/// What all the tool's sessions share.
#[derive(Default)]
pub struct Shared {
    values: Mutex<HashMap<String, String>>,
    /// Woken at each `set`, for the `wait`s.
    changed: tokio::sync::Notify,
    /// Plugins waiting in `wait` now: each leaves the count when it returns or is cancelled.
    pub waiting: AtomicU64,
    /// What the plugins said through `notify`, in order.
    pub notes: Mutex<Vec<String>>,
}

impl Shared {
    pub fn values(&self) -> Vec<(String, String)> {
        let mut values: Vec<_> = self.values.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        values.sort();
        values
    }
}

/// The tool's state in one session.
#[derive(Default)]
pub struct Bot {
    pub name: String,
    pub shared: Arc<Shared>,
}

/// Add the tool's interfaces to a session linker: `kv` unless left out (to show what a plugin that needs it meets).
pub fn add_to_linker(linker: &mut Linker<SessionState>, with_kv: bool) -> wsrun::wasmtime::Result<()> {
    if with_kv {
        kv::add_to_linker::<_, HasSelf<Bot>>(linker, |state| state.host::<Bot>())?;
    }
    notify::add_to_linker::<_, HasSelf<Bot>>(linker, |state| state.host::<Bot>())
}

impl kv::Host for Bot {
    async fn get(&mut self, key: String) -> Option<String> {
        self.shared.values.lock().unwrap().get(&key).cloned()
    }

    async fn set(&mut self, key: String, value: String) {
        self.shared.values.lock().unwrap().insert(key, value);
        self.shared.changed.notify_waiters();
    }

    async fn wait(&mut self, key: String) -> String {
        let shared = self.shared.clone();
        shared.waiting.fetch_add(1, Ordering::SeqCst);
        // Leaves the count however the wait ends: with the value, or dropped when the session is cancelled.
        let _leave = Leave(&shared.waiting);
        loop {
            let changed = shared.changed.notified();
            if let Some(value) = shared.values.lock().unwrap().get(&key) {
                return value.clone();
            }
            changed.await;
        }
    }
}

impl notify::Host for Bot {
    async fn notify(&mut self, message: String) {
        self.shared.notes.lock().unwrap().push(format!("{}: {message}", self.name));
    }
}

struct Leave<'a>(&'a AtomicU64);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
