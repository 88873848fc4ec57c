//! Why a session failed, in one line: its first `wsrun:` line on stderr (where the bundled guests and the SDKs say
//! why they stop), else its first line on stderr; kept while the session's stderr goes on to its log or nowhere.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wsrun::{IsTerminal, StdoutStream};

use super::spool::SessionLog;

/// The longest line kept; what follows is cut.
const MAX_LINE: usize = 200;

/// A session's stderr: watched for its reason, then written to its log if it has one. Cheap to clone.
#[derive(Clone, Default)]
pub struct Stderr {
    lines: Arc<Mutex<Lines>>,
    log: Option<SessionLog>,
}

#[derive(Default)]
struct Lines {
    /// The line being written.
    partial: Vec<u8>,
    first: Option<String>,
    wsrun: Option<String>,
}

impl Stderr {
    pub fn new(log: Option<SessionLog>) -> Self {
        Stderr { lines: Arc::default(), log }
    }

    /// The session's reason, as it said it: its first `wsrun:` line, else its first line.
    pub fn reason(&self) -> Option<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let unfinished = (!lines.partial.is_empty()).then(|| line_of(&lines.partial));
        lines.wsrun.clone().or_else(|| lines.first.clone()).or(unfinished)
    }

    fn watch(&self, bytes: &[u8]) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.wsrun.is_some() {
            return;
        }
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let room = MAX_LINE.saturating_sub(lines.partial.len());
            lines.partial.extend_from_slice(&piece[..piece.len().min(room)]);
            if piece.ends_with(b"\n") {
                let line = line_of(&std::mem::take(&mut lines.partial));
                if line.starts_with("wsrun:") {
                    lines.wsrun = Some(line);
                    return;
                }
                if lines.first.is_none() && !line.trim().is_empty() {
                    lines.first = Some(line);
                }
            }
        }
    }
}

/// A line as text: lossy, escaped, without its end.
fn line_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    wsrun::escape::escape(text.trim_end_matches(['\n', '\r'])).into_owned()
}

impl IsTerminal for Stderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Stderr {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for Stderr {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        self.watch(bytes);
        match self.log.as_mut() {
            Some(log) => Pin::new(log).poll_write(cx, bytes),
            None => Poll::Ready(Ok(bytes.len())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.log.as_mut() {
            Some(log) => Pin::new(log).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.log.as_mut() {
            Some(log) => Pin::new(log).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_wsrun_line_is_the_reason() {
        let stderr = Stderr::new(None);
        stderr.watch(b"starting\nws");
        stderr.watch(b"run: could not connect: \x1b[2J refused\nwsrun: later\n");
        assert_eq!(stderr.reason().as_deref(), Some("wsrun: could not connect: \\u{1b}[2J refused"));
        let other = Stderr::new(None);
        other.watch(b"\npanicked at x\nmore\n");
        assert_eq!(other.reason().as_deref(), Some("panicked at x"));
        let long = Stderr::new(None);
        long.watch(&[b'a'; 500]);
        assert_eq!(long.reason().map(|r| r.len()), Some(MAX_LINE));
    }
}
