//! The compiled-guest cache: compiled components on disk, so a guest that takes seconds to compile (a Python or JS
//! one) starts at once the second time; and compiled functions, so a guest changed since (a Python or JS guest
//! whose script changed, its interpreter not) compiles only what changed.
//!
//! Functions live at `<dir>/functions/<sha256 of cranelift's key>`, entries of the same format; cranelift's key
//! covers the function, the target and the compiler's settings, and the entry its version.
//!
//! Entries live at `<dir>/engine-<hash of wasmtime's version and code settings>/<sha256 of the component>.cwasm`;
//! each holds a header and the SHA-256 of the compiled code. Entries are written to a temporary file and renamed
//! into place, so a reader never sees half of one.
//!
//! An entry is native code that wasmtime maps and runs as it is: whoever can write the cache can run code in
//! every process that reads it. So the cache is trusted only because only its owner can write it: the directories
//! are created private (0700), entries 0600, and a directory or entry that is not owned by this user, or that
//! others may write, is not used at all (a warning says why; the guest is then compiled without the cache). The
//! digest is a corruption check (a torn disk write, a bit flip), not a security check: anyone can recompute it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The first bytes of an entry (and of a `wsrun compile` output): what it is, and the format's version.
const MAGIC: &[u8; 8] = b"WSRUNC1\n";

/// Permission bits that let someone other than the owner write.
const WRITABLE_BY_OTHERS: u32 = 0o022;
/// The permission bit that lets everyone write.
const WRITABLE_BY_ALL: u32 = 0o002;
/// The sticky bit: in a directory anyone may write (`/tmp`), only an entry's owner may rename or remove it.
const STICKY: u32 = 0o1000;

/// The compiled-guest cache of one engine.
#[derive(Clone, Debug)]
pub(crate) struct Cache {
    /// `<root>/engine-<hash>`.
    dir: PathBuf,
}

impl Cache {
    /// The cache under `root` for components compiled by `engine`, with its directories created private; `Err`
    /// says why it must not be used.
    pub(crate) fn open(root: &Path, engine: &Engine) -> Result<Self, String> {
        let mut settings = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut settings);
        // wasmtime's compatibility hash covers its own version as well as the settings that change code.
        let dir = private_dir(root, &format!("engine-{:016x}", settings.finish()))?;
        Ok(Cache { dir })
    }

    /// The user's cache directory: `$XDG_CACHE_HOME/wsrun`, else `~/.cache/wsrun`.
    pub(crate) fn default_root() -> Option<PathBuf> {
        let base =
            std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()).map(PathBuf::from).or_else(|| {
                std::env::var_os("HOME").filter(|home| !home.is_empty()).map(|home| PathBuf::from(home).join(".cache"))
            })?;
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
        match read_private(&path) {
            Ok(Some(entry)) => {
                // SAFETY: the entry is in a directory only this user can write and is itself writable only by this
                // user (checked by `open` and `read_private`), so this program, run by this user, wrote it.
                match unsafe { load(engine, &entry) } {
                    Ok(component) => {
                        log::debug!("compiled cache hit: {}", path.display());
                        return Ok(component);
                    }
                    Err(why) => {
                        log::debug!("compiled cache entry {} is unusable ({why}); rebuilding it", path.display());
                        let _ = fs::remove_file(&path);
                    }
                }
            }
            Ok(None) => log::debug!("compiled cache miss: {}", path.display()),
            Err(why) => {
                log::warn!("not using the compiled cache entry {}: {why}; compiling the guest instead", path.display())
            }
        }
        let component = compile()?;
        match component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|code| store(&path, &code, true).map_err(|e| e.to_string()))
        {
            Ok(()) => log::debug!("compiled cache stored: {}", path.display()),
            Err(why) => log::debug!("compiled cache: cannot store {}: {why}", path.display()),
        }
        Ok(component)
    }
}

/// Compiled functions for wasmtime's incremental compilation, under the same rules as the compiled guests.
#[derive(Debug)]
pub(crate) struct FunctionCache {
    /// `<root>/functions`.
    dir: PathBuf,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl FunctionCache {
    /// The function cache under `root`, created private; `Err` says why it must not be used.
    pub(crate) fn open(root: &Path) -> Result<Self, String> {
        let dir = private_dir(root, "functions")?;
        Ok(FunctionCache { dir, hits: Default::default(), misses: Default::default() })
    }

    /// Functions found in the cache and functions compiled, so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        self.dir.join(hex(&Sha256::digest(key)))
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
        // Private, as `Cache`'s entries are; a torn or corrupt one is a miss, and is written again.
        let found = read_private(&self.path(key)).ok().flatten().and_then(|entry| {
            let (digest, code) = entry.strip_prefix(MAGIC)?.split_at_checked(32)?;
            (Sha256::digest(code).as_slice() == digest).then(|| code.to_vec())
        });
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        found.map(std::borrow::Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        // Thousands per guest: not synced one by one (a torn entry fails its digest and is compiled again).
        store(&self.path(key), &value, false).is_ok()
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

/// The component in an entry, after checking the digest (against corruption only); wasmtime then checks that its
/// own version and settings made it.
///
/// # Safety
/// `entry` is native code that will run in this process: it must come from a source trusted like this program's
/// own binary (see [`Component::deserialize`]).
pub(crate) unsafe fn load(engine: &Engine, entry: &[u8]) -> Result<Component, String> {
    let rest = entry.strip_prefix(MAGIC).ok_or("not a wsrun compiled guest")?;
    if rest.len() < 32 {
        return Err("truncated".into());
    }
    let (digest, code) = rest.split_at(32);
    if Sha256::digest(code).as_slice() != digest {
        return Err("its checksum does not match: corrupt".into());
    }
    // SAFETY: the caller vouches for the source of `entry`; `deserialize` itself refuses code of another wasmtime
    // version or engine configuration.
    unsafe { Component::deserialize(engine, code) }.map_err(|e| format!("{e:#}"))
}

/// The bytes of the entry at `path`; `None` when there is none; `Err` when it is there but others could have
/// written it. The checks are made on the opened file, so the file cannot be swapped between check and read.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".into());
    }
    check_metadata(path, &metadata, effective_user())?;
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(Some(bytes))
}

/// `root/name`, created private (0700) with `root`, once `root`, its ancestors and it are checked safe to trust.
fn private_dir(root: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = root.join(name);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let user = effective_user();
    check_ancestors(root, user)?;
    check_private(root, user)?;
    check_private(&dir, user)?;
    Ok(dir)
}

/// `dir` is owned by `user` and no one else may write it.
fn check_private(dir: &Path, user: u32) -> Result<(), String> {
    let metadata = fs::symlink_metadata(dir).map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
    if !metadata.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    check_metadata(dir, &metadata, user)
}

fn check_metadata(path: &Path, metadata: &fs::Metadata, user: u32) -> Result<(), String> {
    if metadata.uid() != user {
        return Err(format!("{} belongs to user {}, not to this user ({user})", path.display(), metadata.uid()));
    }
    let mode = metadata.permissions().mode();
    if mode & WRITABLE_BY_OTHERS != 0 {
        return Err(format!("{} can be written by others (mode {:o})", path.display(), mode & 0o7777));
    }
    Ok(())
}

/// No directory above the cache lets another user replace it: each is owned by this user or by root, and is not
/// writable by everyone unless it is sticky (`/tmp`). A group-writable home is left alone: with per-user groups
/// (umask 002) the group is the user.
fn check_ancestors(root: &Path, user: u32) -> Result<(), String> {
    let absolute = fs::canonicalize(root).map_err(|e| format!("cannot resolve {}: {e}", root.display()))?;
    for ancestor in absolute.ancestors().skip(1) {
        let metadata = fs::metadata(ancestor).map_err(|e| format!("cannot inspect {}: {e}", ancestor.display()))?;
        let mode = metadata.permissions().mode();
        if metadata.uid() != user && metadata.uid() != 0 {
            return Err(format!("{} belongs to user {}", ancestor.display(), metadata.uid()));
        }
        if mode & WRITABLE_BY_ALL != 0 && mode & STICKY == 0 {
            return Err(format!("{} can be written by others (mode {:o})", ancestor.display(), mode & 0o7777));
        }
    }
    Ok(())
}

fn effective_user() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Write an entry atomically and private: a new 0600 temporary file beside it (synced when `durable`), then a
/// rename.
fn store(path: &Path, code: &[u8], durable: bool) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!(".{}.{unique}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        file.write_all(&entry(code))?;
        if durable {
            file.sync_all()?;
        }
        Ok(())
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
