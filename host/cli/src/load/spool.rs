//! A session's output under `--output DIR`: appended to its own file, opened only while a batch is written, so ten
//! thousand sessions do not hold ten thousand more descriptors than their sockets.

use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

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
    /// The first error writing the file; later writes are dropped and the guest is told.
    failed: Option<String>,
}

impl SessionLog {
    pub fn new(path: PathBuf) -> Self {
        SessionLog { spool: Arc::new(Mutex::new(Spool { path, pending: Vec::new(), failed: None })) }
    }

    fn with<T>(&self, act: impl FnOnce(&mut Spool) -> T) -> T {
        act(&mut self.spool.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Spool {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(bytes);
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
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(&self.pending));
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
