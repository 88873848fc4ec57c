//! What the session keeps of a connection until it ends ([`LiveConnection`]: the connection's tasks, and the close
//! it may still have to make), and what the guest's side and the reader task share ([`ConnectionState`]): the
//! writer every send goes through (batched and flushed by `flush_loop` on a single-threaded runtime), the close
//! frames sent and received, and the stall watch on the writes that wait.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::error::Error as WsProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WireCloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message as WireMessage};
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;

use super::queue::Queue;
use super::{stall, QueueLimits};
use crate::bindings::websocket::{CloseFrame, ErrorCode};
use crate::websocket::errors::{abnormal_closure, from_transport};
use crate::websocket::net::deflate::{Deflating, MIN_COMPRESSED};
use crate::websocket::net::halves::{Probe, WriteHalf};

/// What the session keeps of a connection until the session ends, whatever the guest did with its handle: the
/// connection's state and its tasks, so the host can still send a close frame and wait for the peer's.
pub(crate) struct LiveConnection {
    state: Arc<ConnectionState>,
    /// The guest still holds its handle (and so, perhaps, messages it has not taken).
    held: AtomicBool,
    /// Reads the socket until the connection ends; dropping the `LiveConnection` aborts it and closes the socket.
    reader: Mutex<Option<AbortOnDropJoinHandle<()>>>,
    /// Flushes what the guest sent once it stops sending for a moment, where sends are batched; aborted with the
    /// `LiveConnection`.
    _flusher: Option<AbortOnDropJoinHandle<()>>,
}

impl LiveConnection {
    pub(super) fn new(
        state: Arc<ConnectionState>,
        reader: AbortOnDropJoinHandle<()>,
        flusher: Option<AbortOnDropJoinHandle<()>>,
    ) -> Self {
        LiveConnection { state, held: AtomicBool::new(true), reader: Mutex::new(Some(reader)), _flusher: flusher }
    }

    /// Send one message; waits while the socket is not writable.
    pub(crate) async fn send(&self, message: WireMessage) -> Result<(), ErrorCode> {
        self.state.send(Write::Message(message)).await
    }

    /// The payload of a text or binary message as it is to go on the wire, compressed, when compression was agreed
    /// on and the payload is large enough to gain from it (see `net::deflate`); `None` when it goes as it is. The
    /// guest's sends on a connection come one after another, so they are compressed in the order they are written.
    pub(crate) fn deflate(&self, payload: &[u8]) -> Option<Vec<u8>> {
        let deflating = self.state.deflating.as_ref().filter(|_| payload.len() >= MIN_COMPRESSED)?;
        Some(lock(deflating).compress(payload))
    }

    /// Send a whole data frame made by the host (see `net::wire::frame`); waits while the socket is not writable.
    pub(crate) async fn send_frame(&self, frame: Bytes) -> Result<(), ErrorCode> {
        self.state.send(Write::Frame(frame)).await
    }

    /// Send our close frame, once. Later calls say the connection is closed.
    pub(crate) async fn close(&self, code: u16, reason: &str) -> Result<(), ErrorCode> {
        self.state.close(code, reason).await
    }

    /// How the connection ended, or `None` while it is open.
    pub(crate) fn close_status(&self) -> Option<CloseFrame> {
        self.state.close_status()
    }

    /// Whether the session still holds something of this connection: its socket (open, or closing after the guest
    /// dropped its handle) or the guest's handle (with messages the guest has not taken).
    pub(crate) fn is_held(&self) -> bool {
        self.close_status().is_none() || self.held.load(Ordering::Relaxed)
    }

    /// The guest dropped its handle.
    pub(crate) fn release_handle(&self) {
        self.held.store(false, Ordering::Relaxed);
    }

    /// The session is over: drop what the guest did not take and queue no more, as dropping its handle would, so
    /// a full queue cannot keep the reader from the peer's close frame.
    pub(crate) fn discard_unread(&self) {
        self.state.queue.close();
    }

    /// Close the connection for a session that is ending, if it is still open: send `code` unless a close frame
    /// went out already, then wait up to `wait` for the peer's close frame and the end of the socket.
    pub(crate) async fn shut_down(&self, code: u16, wait: Duration) {
        let reader = self.reader.lock().ok().and_then(|mut reader| reader.take());
        let Some(reader) = reader else { return };
        let closing = async {
            if self.close_status().is_none() {
                // An error here means the socket is already gone; the reader will end by itself.
                let _ = self.close(code, "").await;
            }
            reader.await;
        };
        // Past the wait the reader is dropped, which aborts it and closes the socket without more ado.
        let _ = tokio::time::timeout(wait, closing).await;
    }
}

impl Drop for LiveConnection {
    /// The session is done with the connection: log what its queue saw, however the reader ended.
    fn drop(&mut self) {
        let how = self
            .state
            .close_status()
            .map_or("stopped by the host".to_owned(), |closed| format!("closed {}", closed.code));
        let (peak_messages, peak_bytes) = self.state.queue.peaks();
        log::debug!(
            "connection to {} {how}: {} messages received, queue peak {peak_messages} messages / {peak_bytes} bytes (limits {} / {})",
            self.state.url,
            self.state.messages.load(Ordering::Relaxed),
            self.state.limits.messages,
            self.state.limits.bytes,
        );
    }
}

/// What the guest's side and the reader task share: the writer and how the connection is going.
pub(super) struct ConnectionState {
    /// `None` once the connection has ended: the socket goes with it, whoever still holds a handle. An
    /// async lock whose uncontended lock and unlock are an atomic each: it is taken for every message sent.
    pub(super) writer: futures_util::lock::Mutex<Option<WriteHalf>>,
    /// How the connection ended: the peer's close frame, or 1006. `None` while it is open.
    pub(super) closed: Mutex<Option<CloseFrame>>,
    /// The close frame we sent, once we have: nothing may be sent after it.
    pub(super) sent: Mutex<Option<CloseFrame>>,
    /// Told when our close frame goes out, so the reader starts the peer's time to answer it.
    pub(super) close_sent: tokio::sync::Notify,
    /// The reader found a protocol error and will send the failing close once the guest has taken what came
    /// before it: a session that ends meanwhile leaves that close to the reader.
    pub(super) failing: AtomicBool,
    /// The reader ended the connection because the peer stopped reading: what a send blocked on it then fails with.
    pub(super) stalled: Mutex<Option<ErrorCode>>,
    /// Sends and closes of the guest's under way: only while one waits may a full queue count as the peer's stall
    /// (a write refused earlier and not tried again since says nothing about the peer now).
    pub(super) sending: AtomicUsize,
    /// How long the peer may read nothing while a write waits on it.
    pub(super) stall_timeout: Duration,
    /// The socket under both halves, for the stall watch.
    pub(super) probe: Probe,
    /// The compressor of what the guest sends, when compression was agreed on.
    pub(super) deflating: Option<Mutex<Deflating>>,
    /// Sent messages wait in the writer's buffer until the flusher runs: `flush_pending` says one is due,
    /// `flush_due` wakes the flusher (once per batch, not once per message).
    pub(super) flush_pending: AtomicBool,
    pub(super) flush_due: tokio::sync::Notify,
    /// Batch sends until the guest pauses: only on a single-threaded runtime (the CLI's), where the flusher runs
    /// exactly when the session's task waits. On a multi-threaded one (an embedder with many sessions) it would run
    /// at another worker's whim, and a busy process would hold sent messages, and a cancel's close frame behind
    /// them, for milliseconds: each send is written at once there.
    pub(super) batch_sends: bool,
    /// For the debug log at the end: where, the queue limits, how many messages came.
    pub(super) url: String,
    pub(super) limits: QueueLimits,
    pub(super) messages: AtomicU64,
    pub(super) queue: Arc<Queue>,
}

impl ConnectionState {
    /// The state of a connection whose writer is `writer`, whose messages wait in `queue`.
    pub(super) fn new(
        writer: WriteHalf,
        url: String,
        limits: QueueLimits,
        queue: Arc<Queue>,
        stall_timeout: Duration,
        deflating: Option<Deflating>,
    ) -> Self {
        ConnectionState {
            deflating: deflating.map(Mutex::new),
            probe: writer.probe(),
            writer: futures_util::lock::Mutex::new(Some(writer)),
            closed: Mutex::new(None),
            sent: Mutex::new(None),
            close_sent: tokio::sync::Notify::new(),
            failing: AtomicBool::new(false),
            stalled: Mutex::new(None),
            sending: AtomicUsize::new(0),
            stall_timeout,
            flush_pending: AtomicBool::new(false),
            flush_due: tokio::sync::Notify::new(),
            batch_sends: tokio::runtime::Handle::try_current()
                .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread),
            url,
            limits,
            messages: AtomicU64::new(0),
            queue,
        }
    }

    /// Send a message or a frame. Where sends are batched, a message is left in the writer's buffer (which goes to
    /// the socket by itself past 128 KiB, and waits while the socket is full: backpressure) for the flusher, which
    /// writes it once the guest pauses: a guest that sends many small messages in a row costs one system call per
    /// batch, not one per message. A frame is written at once as far as the socket takes it.
    pub(super) async fn send(&self, write: Write) -> Result<(), ErrorCode> {
        if let Some(sent) = lock(&self.sent).clone() {
            return Err(ErrorCode::Closed(sent));
        }
        let _sending = Sending::start(&self.sending);
        // Watched from the lock on, which a flush blocked on the same stalled socket may hold.
        let sent = self
            .watched(async {
                let mut writer = self.writer.lock().await;
                let Some(half) = writer.as_mut() else { return Err(self.ended()) };
                let sent = match write {
                    Write::Message(message) if self.batch_sends => half.feed(message).await,
                    Write::Message(message) => half.send(message).await,
                    Write::Frame(frame) => match half.feed_frame(frame).await {
                        Ok(()) if !self.batch_sends => half.flush().await,
                        fed => fed,
                    },
                };
                let sent = sent.map_err(|e| self.transport_error(e));
                self.after_write(&mut writer, sent.is_err());
                sent
            })
            .await;
        if let (Err(_), Some(deflating)) = (&sent, &self.deflating) {
            lock(deflating).forget();
        }
        if self.batch_sends && sent.is_ok() && !self.flush_pending.swap(true, Ordering::AcqRel) {
            self.flush_due.notify_one();
        }
        sent
    }

    /// After a write, with the writer still locked: a failed write, or a connection that ended meanwhile (whose
    /// reader could not take the lock to release the socket), lets go of the socket now.
    pub(super) fn after_write(&self, writer: &mut Option<WriteHalf>, failed: bool) {
        if failed || self.has_ended() {
            *writer = None;
        }
    }

    /// The error for an operation on a connection that has ended.
    pub(super) fn ended(&self) -> ErrorCode {
        if let Some(stalled) = lock(&self.stalled).clone() {
            return stalled;
        }
        ErrorCode::Closed(self.close_status().or_else(|| lock(&self.sent).clone()).unwrap_or_else(abnormal_closure))
    }

    /// The connection has ended: give back its socket and buffers now, not when the guest drops its handle. A
    /// writer busy with a send lets go of them itself when that send is done (`after_write`), as the close status
    /// is set before this is called.
    pub(super) fn release_socket(&self) {
        if let Some(mut writer) = self.writer.try_lock() {
            *writer = None;
        }
    }

    pub(super) async fn close(&self, code: u16, reason: &str) -> Result<(), ErrorCode> {
        if let Some(closed) = self.close_status() {
            return Err(ErrorCode::Closed(closed));
        }
        if self.failing.load(Ordering::Acquire) {
            // The reader sends the failing close (1002, 1007, 1009) itself.
            return Err(self.ended());
        }
        {
            let mut sent = lock(&self.sent);
            if let Some(sent) = &*sent {
                return Err(ErrorCode::Closed(sent.clone()));
            }
            *sent = Some(CloseFrame { code, reason: reason.to_owned() });
        }
        let frame = WireCloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() };
        let _sending = Sending::start(&self.sending);
        self.watched(async {
            let mut writer = self.writer.lock().await;
            let Some(sink) = writer.as_mut() else { return Err(self.ended()) };
            let sent = sink.send(WireMessage::Close(Some(frame))).await.map_err(|e| self.transport_error(e));
            self.close_sent.notify_one();
            self.after_write(&mut writer, sent.is_err());
            sent
        })
        .await
    }

    pub(super) fn close_status(&self) -> Option<CloseFrame> {
        lock(&self.closed).clone()
    }

    /// A write of the guest's that waits on the socket while the peer reads nothing for the stall timeout ends the
    /// connection: the socket is shut (the reader then ends, giving the guest the stall's error too) and the write
    /// fails with it. Most writes are done at the first poll and are never watched.
    async fn watched(&self, write: impl Future<Output = Result<(), ErrorCode>>) -> Result<(), ErrorCode> {
        match stall::unless(write, stall::lasting(|| self.probe.write_stalled_since(), self.stall_timeout)).await {
            Some(done) => done,
            None => {
                let (error, _) = stall::failure(self, self.stall_timeout);
                self.probe.shut_down_now();
                Err(error)
            }
        }
    }

    /// Whether the connection has ended, without copying how: asked after every write.
    pub(super) fn has_ended(&self) -> bool {
        lock(&self.closed).is_some()
    }

    /// The reader gives up on the connection: send a close frame saying why (after what the guest already sent),
    /// without waiting long on a busy writer or a peer that does not read.
    pub(super) async fn close_for_failure(&self, code: CloseCode, reason: &str) {
        *lock(&self.sent) = Some(CloseFrame { code: code.into(), reason: reason.to_owned() });
        let send = async {
            let mut writer = self.writer.lock().await;
            if let Some(sink) = writer.as_mut() {
                let frame = WireCloseFrame { code, reason: reason.to_owned().into() };
                let _ = sink.send(WireMessage::Close(Some(frame))).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(100), send).await;
    }

    pub(super) fn transport_error(&self, error: WsProtocolError) -> ErrorCode {
        if self.has_ended() || lock(&self.stalled).is_some() {
            // The reader ended the connection under a write that was waiting (see `read_loop`'s end).
            return self.ended();
        }
        from_transport(error, || self.close_status().unwrap_or_else(abnormal_closure))
    }
}

/// Counts a send or close of the guest's as under way until dropped (whether it ends or is dropped mid-way).
struct Sending<'a>(&'a AtomicUsize);

impl<'a> Sending<'a> {
    fn start(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Sending(count)
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a send writes: a message for tungstenite to frame, or a frame the host made.
pub(super) enum Write {
    Message(WireMessage),
    Frame(Bytes),
}

/// Flush what the guest sent, each time a send asks for it. On a single-threaded runtime (the CLI's) this runs
/// when the session's task waits, i.e. when the guest has nothing more to send for now.
pub(super) async fn flush_loop(state: Arc<ConnectionState>) {
    loop {
        state.flush_due.notified().await;
        state.flush_pending.store(false, Ordering::Release);
        let mut writer = state.writer.lock().await;
        if let Some(sink) = writer.as_mut() {
            let flushed = sink.flush().await;
            state.after_write(&mut writer, flushed.is_err());
        }
    }
}

/// A poisoned lock only means another task panicked while holding it; the value is still the best we know.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
