//! A session's output under `--output DIR`: appended to its own file, opened only while a batch is written, so ten
//! thousand sessions do not hold ten thousand more descriptors than their sockets.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wsrun::{IsTerminal, StdoutStream};

/// Output held in memory before it is appended to the file.
const BATCH: usize = 64 << 10;

/// Stdout and stderr of one session, both appended to one file in the order written. Cheap to clone.
#[derive(Clone)]
pub struct SessionLog {
    spool: Arc<Mutex<Spool>>,
}

struct Spool {
    path: PathBuf,
    pending: Vec<u8>,
    /// The file was made (new): later batches are appended to it.
    created: bool,
    /// The first error writing the file; later writes are dropped and the guest is told.
    failed: Option<String>,
    /// Bytes the session may still write; past them its output is cut, quietly for the guest.
    left: u64,
    is_cut: bool,
    /// Counts the sessions whose output was cut, once each.
    cut: Arc<AtomicU64>,
}

impl SessionLog {
    /// The log of one session at `path` (a file that must not exist yet), holding at most `max` bytes; `cut`
    /// counts the sessions that wrote more.
    pub fn new(path: PathBuf, max: u64, cut: Arc<AtomicU64>) -> Self {
        let spool = Spool { path, pending: Vec::new(), created: false, failed: None, left: max, is_cut: false, cut };
        SessionLog { spool: Arc::new(Mutex::new(spool)) }
    }

    fn with<T>(&self, act: impl FnOnce(&mut Spool) -> T) -> T {
        act(&mut self.spool.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Spool {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.is_cut {
            return Ok(());
        }
        let kept = bytes.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.pending.extend_from_slice(&bytes[..kept]);
        self.left -= kept as u64;
        if kept < bytes.len() {
            self.pending.extend_from_slice(b"\n[wsrun: the output is cut here: --max-output reached]\n");
            self.is_cut = true;
            self.cut.fetch_add(1, Ordering::Relaxed);
        }
        if self.pending.len() >= BATCH {
            self.append()?;
        }
        Ok(())
    }

    fn append(&mut self) -> std::io::Result<()> {
        if let Some(why) = &self.failed {
            return Err(std::io::Error::other(why.clone()));
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        // Made new, and never through a symbolic link: nothing planted in the directory is written to.
        let written = std::fs::OpenOptions::new()
            .create_new(!self.created)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.path)
            .and_then(|mut file| file.write_all(&self.pending));
        self.created = true;
        self.pending.clear();
        written.inspect_err(|e| self.failed = Some(format!("{}: {e}", self.path.display())))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Err(e) = self.append() {
            log::warn!("cannot write a session's output: {e}");
        }
    }
}

impl IsTerminal for SessionLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SessionLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for SessionLog {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.with(|spool| spool.write(bytes)).map(|()| bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.with(Spool::append))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Make the `--output` directory, or take it as it is: it must be the user's own and not writable by others, unless
/// it is sticky (like /tmp, where others cannot remove or rename what is yours); elsewhere, someone else could plant
/// a link where a session's log is about to be made.
pub fn prepare_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create --output {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot use --output {}: {e}", dir.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mode = meta.permissions().mode();
    let others_write = mode & 0o022 != 0;
    let sticky = mode & 0o1000 != 0;
    if meta.uid() != me {
        return Err(format!("--output {} belongs to another user: use a directory of your own", dir.display()));
    }
    if others_write && !sticky {
        return Err(format!(
            "--output {} is writable by others, who could plant links in it: use a private directory (chmod go-w)",
            dir.display()
        ));
    }
    Ok(())
}
