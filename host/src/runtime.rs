//! The runtime: one engine, one linker and one epoch ticker, shared by every guest and session.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::ClientPre;
use crate::cache::{Cache, FunctionCache};
use crate::error::Error;
use crate::extension::Extensions;
use crate::program::Program;
use crate::state::SessionState;

/// How often the epoch advances. Each tick lets a spinning guest yield to the executor, so one session never
/// starves others; cancelling does not wait for it (the cancel handle bumps the epoch itself).
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine, the linker with everything a guest may import, and the epoch ticker. Create one per process and
/// load any number of guests from it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<SessionState>,
    cache: Option<Cache>,
    /// The compiled functions' cache, when there is a cache: counted for the log.
    functions: Option<Arc<FunctionCache>>,
    /// The tool's own interfaces, whose state each session's store holds.
    extensions: Arc<Extensions>,
    _ticker: EpochTicker,
}

/// Below this size a guest's initial memory always becomes one image that sessions share copy-on-write, however
/// sparse its data (wasmtime's default is 16 MiB). componentize-js writes an image about a third full, spread over
/// 8 MiB for an echo script: a larger script would pass 16 MiB, and every session would then copy its data.
const SHARED_IMAGE_SIZE: u64 = 64 << 20;

/// Settings of a [`Runtime`] that change how guests are compiled, so they are fixed when it is built.
#[derive(Clone, Debug, Default)]
pub struct RuntimeBuilder {
    extensions: Extensions,
    fuel: bool,
    cache: Option<PathBuf>,
    pooling: Option<(u32, usize)>,
    pool_limits: PoolLimits,
}

/// What one session's guest may hold in the pooling allocator ([`RuntimeBuilder::pooling`]); a guest that needs
/// more does not load (`Runtime::load` fails with [`Error::Compile`] naming the count and "the pooling allocator").
///
/// The defaults fit the guests of every language wsrun knows: Rust (`wasm32-wasip2`: 3 core instances, 1 memory, 2
/// tables), componentize-py (14 core instances, 1 memory, 2 tables, the largest of 5,724 functions) and
/// componentize-js (4, 1, 2 and 7,742). Core instances are only counted; each memory slot reserves address space
/// (`max_memory` plus a guard) and each table `8 * table_elements` bytes of it, in every session's share of the
/// pool, so the defaults keep memories and tables few.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLimits {
    /// Core module instances in one guest. Default 64, as many as a session may create without pooling.
    pub core_instances: u32,
    /// Linear memories in one guest (and in any one of its core modules). Default 2.
    pub memories: u32,
    /// Tables in one guest (and in any one of its core modules). Default 4.
    pub tables: u32,
    /// Elements of any one table, at its start and as it grows. Default 65,536.
    pub table_elements: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            core_instances: crate::limits::MAX_INSTANCES as u32,
            memories: 2,
            tables: 4,
            table_elements: 1 << 16,
        }
    }
}

impl RuntimeBuilder {
    /// Meter fuel, so sessions can have a CPU limit ([`Limits::fuel`](crate::Limits::fuel)). Makes guests slower.
    pub fn fuel(mut self, enable: bool) -> Self {
        self.fuel = enable;
        self
    }

    /// Preallocate room for `sessions` concurrent sessions whose linear memories are at most `max_memory` bytes
    /// (wasmtime's pooling allocator). Instantiation gets cheaper, and many thousands of sessions stay within the
    /// kernel's limit on memory mappings; past `sessions`, starting one more fails with a trap. Sessions' memory
    /// limits above `max_memory` have no effect.
    ///
    /// Each session's share of the pool is sized by [`pool_limits`](RuntimeBuilder::pool_limits), whose defaults
    /// load Rust, Python (componentize-py) and JavaScript (componentize-js) guests. With or without pooling, a
    /// guest's initial memory is one image shared copy-on-write by all its sessions: a session's own memory is only
    /// the pages it writes (see BENCHMARKS.md for each language's figures).
    pub fn pooling(mut self, sessions: u32, max_memory: usize) -> Self {
        self.pooling = Some((sessions, max_memory));
        self
    }

    /// What one session's guest may hold in the pool of [`pooling`](RuntimeBuilder::pooling): raise these for a
    /// guest that does not load with the defaults. No effect without pooling.
    pub fn pool_limits(mut self, limits: PoolLimits) -> Self {
        self.pool_limits = limits;
        self
    }

    /// Keep compiled guests in this directory (for example [`Runtime::default_cache_dir`]), so the next load of the
    /// same guest skips compiling. `None` (the default) compiles every time.
    ///
    /// Compiled guests are native code, so the cache is used only while no other user can write to it: its
    /// directories are created private (0700), and a directory or entry that belongs to another user or that others
    /// may write is not used (a `log::warn!` record says why, and guests are compiled instead).
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache = dir;
        self
    }

    /// Give guests interfaces of the tool's own, beside wsrun's: `add` adds them to the linker every session is
    /// linked with, and every session's store holds a `T` for them, the one given by
    /// [`SessionBuilder::host_state`](crate::SessionBuilder::host_state) or else `T::default()`. `add` is where the
    /// tool's `wasmtime::component::bindgen!` output goes, reaching its state through
    /// [`SessionState::host`](crate::SessionState::host):
    ///
    /// ```ignore
    /// Runtime::builder().link::<Bot>(|linker| acme::bot::kv::add_to_linker::<_, HasSelf<Bot>>(linker, |s| s.host()))
    /// ```
    ///
    /// A session keeps every guarantee of wsrun's own calls: its limits, the cancel in any state (a guest waiting
    /// in an async function of the tool's is stopped as fast as anywhere), the grant. A guest that imports an
    /// interface no one added fails to load ([`Error::Link`], naming it). Call it once per interface set; several
    /// calls add up.
    pub fn link<T: Default + Send + 'static>(
        mut self,
        add: impl Fn(&mut Linker<SessionState>) -> wasmtime::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.extensions.add::<T>(add);
        self
    }

    /// Build the runtime.
    pub fn build(self) -> Result<Runtime, Error> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        config.consume_fuel(self.fuel);
        // Copy-on-write images of guests' initial memories (wasmtime's default, said here because the memory per
        // session of Python and JavaScript guests depends on it).
        config.memory_init_cow(true);
        config.memory_guaranteed_dense_image_size(SHARED_IMAGE_SIZE);
        if let Some((sessions, max_memory)) = self.pooling {
            let per = self.pool_limits;
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(sessions)
                .total_core_instances(sessions.saturating_mul(per.core_instances))
                .max_core_instances_per_component(per.core_instances)
                .total_memories(sessions.saturating_mul(per.memories))
                .max_memories_per_component(per.memories)
                .max_memories_per_module(per.memories)
                .total_tables(sessions.saturating_mul(per.tables))
                .max_tables_per_component(per.tables)
                .max_tables_per_module(per.tables)
                .table_elements(per.table_elements)
                .total_stacks(sessions)
                .max_memory_size(max_memory);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
            // Small reservations, so thousands of slots fit in the address space (bounds are then checked in code).
            config.memory_reservation(max_memory as u64);
        }
        // A guest changed since its last compile (a Python or JS guest whose script changed, its interpreter not)
        // compiles only the functions that changed: 4-5 s instead of 10-12 for a Python one (BENCHMARKS.md). Its
        // directory is checked first: one that must not be used is said once, and neither cache is used.
        let functions = self.cache.as_ref().and_then(|root| match FunctionCache::open(root) {
            Ok(functions) => Some(Arc::new(functions)),
            Err(why) => {
                log::warn!("not using the compiled cache in {}: {why}; guests are compiled without it", root.display());
                None
            }
        });
        if let Some(functions) = &functions {
            config.enable_incremental_compilation(functions.clone()).map_err(|e| Error::Engine(format!("{e:#}")))?;
        }
        let engine = Engine::new(&config).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        link(&mut linker).map_err(|e| Error::Engine(format!("{e:#}")))?;
        self.extensions
            .link(&mut linker)
            .map_err(|e| Error::Engine(format!("the tool's own interfaces could not be linked: {e:#}")))?;
        let ticker = EpochTicker::start(engine.clone());
        let cache = self.cache.filter(|_| functions.is_some()).and_then(|root| match Cache::open(&root, &engine) {
            Ok(cache) => Some(cache),
            Err(why) => {
                log::warn!("not using the compiled cache in {}: {why}; guests are compiled without it", root.display());
                None
            }
        });
        Ok(Runtime { engine, linker, cache, functions, extensions: Arc::new(self.extensions), _ticker: ticker })
    }
}

impl Runtime {
    /// A runtime with the builder's defaults: epoch interruption (so sessions can be stopped in any state),
    /// backtraces with details, copy-on-write initial memories shared as one image up to 64 MiB, no fuel, no cache,
    /// no pooling.
    pub fn new() -> Result<Self, Error> {
        Runtime::builder().build()
    }

    /// A runtime with other settings.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The user's usual cache directory for wsrun: `$XDG_CACHE_HOME/wsrun`, else `~/.cache/wsrun`; `None` when
    /// neither variable is set.
    pub fn default_cache_dir() -> Option<PathBuf> {
        Cache::default_root()
    }

    /// Load a guest from a component file.
    pub fn load_file(&self, path: &Path) -> Result<Program, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::ReadGuest { path: path.to_owned(), source })?;
        self.load(&path.display().to_string(), &bytes)
    }

    /// Load a guest from the bytes of a component; `name` is used in messages. The bytes are untrusted: they are
    /// validated and compiled. A precompiled guest (what [`precompile`](Runtime::precompile) writes) is refused with [`Error::Precompiled`]: it is native code, see [`load_precompiled`](Runtime::load_precompiled).
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Program, Error> {
        let component = self.compile(name, bytes)?;
        self.link_program(name, component)
    }

    /// Load a guest that [`precompile`](Runtime::precompile) wrote, without compiling it (or, for the bytes of a
    /// component, compile it as [`load`](Runtime::load) does).
    ///
    /// # Safety
    /// A precompiled guest is native machine code that runs in this process unchecked: its digest only detects
    /// corruption, and anyone can forge one. Pass only bytes you trust as much as this program's own binary (made
    /// by you, on a machine you trust, kept where only you can write them).
    pub unsafe fn load_precompiled(&self, name: &str, bytes: &[u8]) -> Result<Program, Error> {
        if !crate::cache::is_entry(bytes) {
            return self.load(name, bytes);
        }
        // SAFETY: the caller vouches for the bytes.
        let component = unsafe { crate::cache::load(&self.engine, bytes) }.map_err(|why| Error::Compile {
            name: name.to_owned(),
            reason: format!("unusable precompiled guest: {why}"),
        })?;
        self.link_program(name, component)
    }

    fn link_program(&self, name: &str, component: Component) -> Result<Program, Error> {
        let link_error = |e: wasmtime::Error| {
            let reason = format!("{e:#}");
            let reason = match older_interface(&reason) {
                Some(older) => format!(
                    "{reason} (it was built against {older}; this wsrun hosts {}: rebuild it against the WIT of \
                     `wsrun wit`)",
                    crate::websocket::INTERFACE
                ),
                None => reason,
            };
            Error::Link { name: name.to_owned(), reason }
        };
        let pre = self.linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = ClientPre::new(pre).map_err(link_error)?;
        Ok(Program::new(name.to_owned(), self.engine.clone(), pre, self.extensions.clone()))
    }
}

/// The websocket interface a link error names (`wsrun:ws/websocket@0.1.0`), when it is not the one this host
/// provides.
fn older_interface(reason: &str) -> Option<&str> {
    let (name, _) = crate::websocket::INTERFACE.split_once('@')?;
    let start = reason.find(&format!("{name}@"))?;
    let after = start + name.len() + 1;
    let end = reason[after..].find(|c: char| !c.is_ascii_digit() && c != '.').map_or(reason.len(), |i| after + i);
    let named = reason[start..end].trim_end_matches('.');
    (named != crate::websocket::INTERFACE).then_some(named)
}

impl Runtime {
    /// Compile a guest ahead of time: the bytes [`load_precompiled`](Runtime::load_precompiled) accepts, for this
    /// runtime's wasmtime version and settings.
    pub fn precompile(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let component = self.compile(name, bytes)?;
        let code =
            component.serialize().map_err(|e| Error::Compile { name: name.to_owned(), reason: format!("{e:#}") })?;
        Ok(crate::cache::entry(&code))
    }

    fn compile(&self, name: &str, bytes: &[u8]) -> Result<Component, Error> {
        let failed = |reason: String| Error::Compile { name: name.to_owned(), reason };
        if crate::cache::is_entry(bytes) {
            return Err(Error::Precompiled { name: name.to_owned() });
        }
        check_header(name, bytes)?;
        let compile = || {
            let before = self.functions.as_ref().map(|functions| functions.counts());
            let component = Component::new(&self.engine, bytes);
            if let (Some(functions), Some((hits, misses))) = (&self.functions, before) {
                let (now_hits, now_misses) = functions.counts();
                log::debug!("compiled functions: {} from the cache, {} compiled", now_hits - hits, now_misses - misses);
            }
            component
        };
        let component = match &self.cache {
            Some(cache) => cache.get_or_compile(&self.engine, bytes, compile),
            None => compile(),
        };
        component.map_err(|e| failed(format!("{e:#}")))
    }
}

/// Everything a guest may import: WASI 0.2, `wasi:http/outgoing-handler` (through wsrun's sender, within the grant)
/// `wsrun:ws/websocket` and `wsrun:ws/metrics`. Filesystem, sockets and the like are linked too, because ordinary guests import them
/// even unused; each session grants them nothing.
fn link(linker: &mut Linker<SessionState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    crate::metrics::add_to_linker(linker)?;
    crate::websocket::add_to_linker(linker)
}

/// Tell apart "not wasm" and "a core module" before the compiler's less direct messages.
fn check_header(name: &str, bytes: &[u8]) -> Result<(), Error> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_VERSION: &[u8] = &[1, 0, 0, 0];
    if !bytes.starts_with(MAGIC) {
        return Err(Error::NotWasm { name: name.to_owned() });
    }
    if bytes.get(4..8) == Some(CORE_VERSION) {
        return Err(Error::CoreModule { name: name.to_owned() });
    }
    Ok(())
}

/// Advances the engine's epoch every tick on an OS thread (a spinning guest could starve an async task), until
/// dropped.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("wsrun-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .ok();
        EpochTicker { stop: Some(stop), thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_link_error_naming_another_version_of_the_interface_says_so() {
        let older =
            "component imports instance `wsrun:ws/websocket@0.1.0`, but a matching implementation was not found";
        assert_eq!(super::older_interface(older), Some("wsrun:ws/websocket@0.1.0"));
        let current = format!("component imports instance `{}`, but its function `x` ...", crate::websocket::INTERFACE);
        assert_eq!(super::older_interface(&current), None);
        assert_eq!(super::older_interface("import `wasi:http/types@0.2.12` ..."), None);
    }
}
