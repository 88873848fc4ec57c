//! The compiled-guest cache: compiled components on disk, so a guest that takes seconds to compile (a Python or JS
//! one) starts at once the second time.
//!
//! Entries live at `<dir>/engine-<hash of wasmtime's version and code settings>/<sha256 of the component>.cwasm`;
//! each holds a header and the SHA-256 of the compiled code, checked before wasmtime sees it. A corrupt entry, or one another
//! wasmtime or other settings wrote, is deleted and rebuilt, never run. Entries are written to a temporary file and
//! renamed into place, so a reader never sees half of one.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The first bytes of an entry (and of a `wsrun compile` output): what it is, and the format's version.
const MAGIC: &[u8; 8] = b"WSRUNC1\n";

/// The compiled-guest cache of one engine.
#[derive(Clone, Debug)]
pub(crate) struct Cache {
    /// `<root>/engine-<hash>`.
    dir: PathBuf,
}

impl Cache {
    /// The cache under `root` for components compiled by `engine`.
    pub(crate) fn new(root: &Path, engine: &Engine) -> Self {
        let mut settings = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut settings);
        // wasmtime's compatibility hash covers its own version as well as the settings that change code.
        let dir = root.join(format!("engine-{:016x}", settings.finish()));
        Cache { dir }
    }

    /// The user's cache directory: `$XDG_CACHE_HOME/wsrun`, else `~/.cache/wsrun`.
    pub(crate) fn default_root() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|home| !home.is_empty()).map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("wsrun"))
    }

    /// The compiled form of `bytes`: from the cache when a sound entry is there, else compiled (by `compile`) and
    /// stored. Failing to store is not an error: the next start compiles again.
    pub(crate) fn get_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compile: impl FnOnce() -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<Component> {
        let path = self.dir.join(format!("{}.cwasm", hex(&Sha256::digest(bytes))));
        match fs::read(&path) {
            Ok(entry) => match load(engine, &entry) {
                Ok(component) => {
                    log::debug!("compiled cache hit: {}", path.display());
                    return Ok(component);
                }
                Err(why) => {
                    log::debug!("compiled cache entry {} is unusable ({why}); rebuilding it", path.display());
                    let _ = fs::remove_file(&path);
                }
            },
            Err(_) => log::debug!("compiled cache miss: {}", path.display()),
        }
        let component = compile()?;
        match component.serialize().map_err(|e| e.to_string()).and_then(|code| store(&path, &code).map_err(|e| e.to_string())) {
            Ok(()) => log::debug!("compiled cache stored: {}", path.display()),
            Err(why) => log::debug!("compiled cache: cannot store {}: {why}", path.display()),
        }
        Ok(component)
    }
}

/// An entry's bytes (header, digest, code) for compiled `code`.
pub(crate) fn entry(code: &[u8]) -> Vec<u8> {
    let mut entry = Vec::with_capacity(MAGIC.len() + 32 + code.len());
    entry.extend_from_slice(MAGIC);
    entry.extend_from_slice(&Sha256::digest(code));
    entry.extend_from_slice(code);
    entry
}

/// Whether `bytes` look like an entry (a file `wsrun compile` wrote).
pub(crate) fn is_entry(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The component in an entry, after checking the digest; wasmtime then checks that its own version and settings
/// made it.
pub(crate) fn load(engine: &Engine, entry: &[u8]) -> Result<Component, String> {
    let rest = entry.strip_prefix(MAGIC).ok_or("not a wsrun compiled guest")?;
    if rest.len() < 32 {
        return Err("truncated".into());
    }
    let (digest, code) = rest.split_at(32);
    if Sha256::digest(code).as_slice() != digest {
        return Err("its checksum does not match: corrupt".into());
    }
    // SAFETY: the bytes are what `Component::serialize` produced (the digest proves they are unchanged since this
    // program wrote them), and `deserialize` refuses those of another wasmtime version or engine configuration.
    unsafe { Component::deserialize(engine, code) }.map_err(|e| format!("{e:#}"))
}

/// Write an entry atomically: a temporary file beside it, then a rename.
fn store(path: &Path, code: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!(".{}.{unique}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&entry(code))?;
        file.sync_all()
    })();
    match written.and_then(|()| fs::rename(&temporary, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&temporary);
            Err(e)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
