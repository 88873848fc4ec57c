//! Arguments and standard output through WASI directly, so a guest can print without std's buffering surprises.

use crate::wasi::cli::{environment, stdout};
use crate::wasi::io::streams::{OutputStream, StreamError};

/// The guest's arguments: `[name, URL, guest args...]`.
pub fn args() -> Vec<String> {
    environment::get_arguments()
}

/// Standard output, written whole and flushed at each call.
pub struct Stdout(OutputStream);

impl Stdout {
    /// Take the guest's standard output.
    pub fn get() -> Self {
        Stdout(stdout::get_stdout())
    }

    /// Write all of `bytes` and flush. `Err` means stdout is gone (a closed pipe): the caller should stop quietly,
    /// as `head` expects of a well-behaved producer.
    pub fn write_all(&self, mut bytes: &[u8]) -> Result<(), StreamError> {
        // blocking-write-and-flush takes at most 4096 bytes a call.
        while !bytes.is_empty() {
            let (chunk, rest) = bytes.split_at(bytes.len().min(4096));
            self.0.blocking_write_and_flush(chunk)?;
            bytes = rest;
        }
        Ok(())
    }

    /// Write one line (a newline is added).
    pub fn line(&self, text: &str) -> Result<(), StreamError> {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        self.write_all(&bytes)
    }
}
