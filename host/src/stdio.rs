//! The process's stdout and stderr as guest streams, written by a thread of their own.
//!
//! wasmtime-wasi's own stdout writes with write(2) inside the guest's call, on the session's thread: with a stdout
//! that nobody reads (a pipe into a `less` the user stopped scrolling, a FIFO held open) the thread blocks in the
//! kernel, where neither an epoch tick nor dropping the call reaches it, and Ctrl+C and the timeout did nothing. Here
//! a guest's write goes into a bounded queue that one writer thread empties in order (stdout and stderr in the order
//! they were written); a guest facing a full queue waits in an async host call, which a cancel drops like any other.
//! At exit the command waits for the queue to empty ([`drained`]), except when the session was stopped: what a
//! blocked stdout cannot take then is dropped, not waited for.
//!
//! A line editor that owns the terminal takes what guests write instead ([`write_through`]) and feeds them the lines
//! typed ([`typed_lines`]).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncRead;
use tokio::io::AsyncWrite;
use tokio_tungstenite::tungstenite::Bytes;
use wasmtime_wasi::cli::{AsyncStdinStream, IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// Bytes written by guests and not yet by the writer thread, stdout and stderr together. A guest writes about this
/// much ahead of the terminal or pipe at most (see [`GRANT`]); more waits.
const QUEUE: usize = 1 << 20;

/// The most one `check-write` permits. Permits are not set aside in the queue (a stream that keeps one while idle
/// would shrink it for every other session), so streams that each hold one may take the queue past its bound by
/// this much each: 4 KiB (wasi-libc's own chunk) keeps that small even for a guest holding thousands of streams.
const GRANT: usize = 4 << 10;

/// The process's stdout, for a guest ([`SessionBuilder::inherit_stdio`](crate::SessionBuilder::inherit_stdio)).
pub fn stdout() -> ProcessOutput {
    ProcessOutput(Output::Stdout)
}

/// The process's stderr, for a guest.
pub fn stderr() -> ProcessOutput {
    ProcessOutput(Output::Stderr)
}

/// Resolves once everything guests wrote to stdout and stderr has been written out (or could not be).
pub async fn drained() {
    poll_fn(|cx| {
        let mut state = queue().lock();
        if state.queued == 0 && !state.writing {
            return Poll::Ready(());
        }
        state.wait(cx);
        Poll::Pending
    })
    .await
}

/// The process's stdout or stderr, written through the writer thread.
#[derive(Clone, Copy, Debug)]
pub struct ProcessOutput(Output);

/// Which of the process's streams a guest wrote to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Where guest output goes instead of the process's stdout and stderr (see [`write_through`]).
pub type Sink = Box<dyn FnMut(Output, &[u8]) -> io::Result<()> + Send>;

/// Set by [`write_through`]; the writer thread's only other lock.
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// A sink is set: read without the lock, which the writer thread holds while the sink writes (and perhaps waits).
static THROUGH_SINK: AtomicBool = AtomicBool::new(false);

fn sink() -> MutexGuard<'static, Option<Sink>> {
    SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// From now on the writer thread hands what guests write to stdout and stderr to `sink`, in the order written and
/// within the same bound, instead of writing it to the process's file descriptors: for a line editor that prints
/// guest output above the line being typed. Guests started from then on are told that their stdout and stderr are
/// not a terminal (so they draw no prompt of their own).
pub fn write_through(new: Sink) {
    *sink() = Some(new);
    THROUGH_SINK.store(true, Ordering::Release);
}

/// A guest's stdin fed with the lines a line editor reads from the terminal: it reads `lines`, and is a terminal to
/// the guest (a person is typing), though its stdout is not (see [`write_through`]).
pub fn typed_lines(lines: impl AsyncRead + Send + Sync + 'static) -> impl StdinStream {
    TypedLines(AsyncStdinStream::new(lines))
}

struct TypedLines(AsyncStdinStream);

impl IsTerminal for TypedLines {
    fn is_terminal(&self) -> bool {
        true
    }
}

impl StdinStream for TypedLines {
    fn p2_stream(&self) -> Box<dyn InputStream> {
        self.0.p2_stream()
    }

    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        self.0.async_stream()
    }
}

impl Output {
    fn index(self) -> usize {
        self as usize
    }

    /// Straight to the file descriptor, not through the standard library's `Stdout`: a write blocked here must not
    /// hold the lock that wsrun's own printing (and the exit) takes.
    fn write_out(self, bytes: &[u8]) -> io::Result<()> {
        let fd = match self {
            Output::Stdout => 1,
            Output::Stderr => 2,
        };
        // SAFETY: the process's stdout or stderr, open for its whole life; ManuallyDrop leaves it open.
        let mut file =
            std::mem::ManuallyDrop::new(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        file.write_all(bytes)
    }
}

struct Queue {
    state: Mutex<State>,
    /// Wakes the writer thread when there is something to write.
    work: Condvar,
}

struct State {
    chunks: VecDeque<(Output, Bytes)>,
    /// Bytes in `chunks`.
    queued: usize,
    /// The writer thread holds a chunk it is writing.
    writing: bool,
    /// The last write to stdout or stderr failed (a closed pipe): every later write fails too.
    failed: [Option<io::ErrorKind>; 2],
    /// Guests waiting for room, and [`drained`].
    wakers: Vec<Waker>,
}

impl State {
    fn room(&self) -> usize {
        QUEUE.saturating_sub(self.queued)
    }

    /// Wake `cx` when the writer thread has written a chunk (once, however often it asks).
    fn wait(&mut self, cx: &Context<'_>) {
        if !self.wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
            self.wakers.push(cx.waker().clone());
        }
    }
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Room for this many more bytes, or the error of an earlier write.
    fn room(&self, fd: Output) -> io::Result<usize> {
        let state = self.lock();
        if let Some(kind) = state.failed[fd.index()] {
            return Err(kind.into());
        }
        Ok(state.room())
    }

    fn push(&self, fd: Output, bytes: Bytes) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.failed[fd.index()] {
            return Err(kind.into());
        }
        if bytes.is_empty() {
            return Ok(());
        }
        state.queued += bytes.len();
        state.chunks.push_back((fd, bytes));
        drop(state);
        self.work.notify_one();
        Ok(())
    }

    /// Ready when there is room (or a failure to report), else registers `cx` to be woken when there is.
    fn poll_room(&self, fd: Output, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.room() > 0 || state.failed[fd.index()].is_some() {
            return Poll::Ready(());
        }
        state.wait(cx);
        Poll::Pending
    }

    /// Queue as much of `buf` as there is room for, checked and queued under one lock; wait when there is none.
    fn poll_push(&self, fd: Output, buf: &[u8], cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut state = self.lock();
        if let Some(kind) = state.failed[fd.index()] {
            return Poll::Ready(Err(kind.into()));
        }
        let len = state.room().min(buf.len());
        if len == 0 && !buf.is_empty() {
            state.wait(cx);
            return Poll::Pending;
        }
        if len > 0 {
            state.queued += len;
            state.chunks.push_back((fd, Bytes::copy_from_slice(&buf[..len])));
            drop(state);
            self.work.notify_one();
        }
        Poll::Ready(Ok(len))
    }

    /// The writer thread: write chunks out in order, for the life of the process.
    fn write_forever(&self) {
        loop {
            let mut state = self.lock();
            let (fd, bytes) = loop {
                if let Some(chunk) = state.chunks.pop_front() {
                    break chunk;
                }
                state = self.work.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
            };
            state.writing = true;
            drop(state);
            let written = match sink().as_mut() {
                Some(sink) => sink(fd, &bytes),
                None => fd.write_out(&bytes),
            };
            let mut state = self.lock();
            state.writing = false;
            state.queued -= bytes.len();
            if let Err(e) = written {
                state.failed[fd.index()] = Some(e.kind());
            }
            let wakers = std::mem::take(&mut state.wakers);
            drop(state);
            wakers.into_iter().for_each(Waker::wake);
        }
    }
}

/// The queue, and its writer thread from the first use on.
fn queue() -> &'static Queue {
    static QUEUE_AND_THREAD: OnceLock<&'static Queue> = OnceLock::new();
    QUEUE_AND_THREAD.get_or_init(|| {
        let queue: &'static Queue = Box::leak(Box::new(Queue {
            state: Mutex::new(State {
                chunks: VecDeque::new(),
                queued: 0,
                writing: false,
                failed: [None; 2],
                wakers: Vec::new(),
            }),
            work: Condvar::new(),
        }));
        let started = std::thread::Builder::new().name("wsrun-stdout".into()).spawn(|| queue.write_forever());
        if let Err(e) = started {
            // No thread, no output: say so on every write rather than queue for ever.
            let mut state = queue.lock();
            state.failed = [Some(e.kind()); 2];
        }
        queue
    })
}

impl IsTerminal for ProcessOutput {
    fn is_terminal(&self) -> bool {
        if THROUGH_SINK.load(Ordering::Acquire) {
            return false;
        }
        match self.0 {
            Output::Stdout => io::IsTerminal::is_terminal(&io::stdout()),
            Output::Stderr => io::IsTerminal::is_terminal(&io::stderr()),
        }
    }
}

impl StdoutStream for ProcessOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(GuestStream { fd: self.0, permitted: 0 })
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(*self)
    }
}

/// A write that failed: a closed pipe is a closed stream (as wasmtime-wasi's own stdout says), anything else an
/// error of the last operation.
fn failed(error: io::Error) -> StreamError {
    match error.kind() {
        io::ErrorKind::BrokenPipe => StreamError::Closed,
        _ => StreamError::LastOperationFailed(wasmtime::Error::from(error)),
    }
}

/// One guest stream of stdout or stderr, with what its last `check-write` permitted: WASI lets a guest write that
/// much, no more, so the queue's bound holds (give or take a [`GRANT`] per stream) however much a guest writes.
struct GuestStream {
    fd: Output,
    permitted: usize,
}

impl OutputStream for GuestStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if bytes.len() > self.permitted {
            return Err(StreamError::Trap(wasmtime::Error::msg("write exceeded the room check-write permitted")));
        }
        self.permitted -= bytes.len();
        queue().push(self.fd, bytes).map_err(failed)
    }

    /// The bytes are on their way: the writer thread writes them out as soon as the terminal or pipe takes them.
    fn flush(&mut self) -> StreamResult<()> {
        queue().room(self.fd).map(drop).map_err(failed)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.permitted = queue().room(self.fd).map_err(failed)?.min(GRANT);
        Ok(self.permitted)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestStream {
    async fn ready(&mut self) {
        if self.permitted > 0 {
            return;
        }
        let fd = self.fd;
        poll_fn(|cx| queue().poll_room(fd, cx)).await;
    }
}

impl AsyncWrite for ProcessOutput {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let queue = queue();
        queue.poll_push(self.0, buf, cx)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
