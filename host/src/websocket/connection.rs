//! An open connection: the reader task that fills a bounded queue (and sends keepalive pings), the writer the guest
//! sends through, and the close status both sides see.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{Error as WsProtocolError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WireCloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message as WireMessage};
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;

use super::errors::{abnormal_closure, from_transport};
use super::halves::{Probe, ReadHalf, WriteHalf};
use super::queue::{Queue, SessionBudget};
use super::received::{from_read_buffer, Incoming};
use crate::bindings::websocket::{CloseFrame, ErrorCode};

pub(crate) use super::halves::WsStream;

pub(crate) use super::queue::Received;

/// After a protocol error, how long the guest has to take the messages that came before it (and to answer them)
/// before the failing close frame goes out: a guest that does not read cannot keep a broken connection open.
const FAILURE_DRAIN: Duration = Duration::from_millis(500);

/// After queueing this many bytes in a row, the reader lets the guest run before it reads on: a message taken soon
/// after it was read is still in the cache (measured: 820-940 against 880-1,000 us of CPU per 1 MiB echo). The reader
/// goes on at once when the guest has nothing to do: the queue limits stay what stops it.
const READ_AHEAD: usize = 256 << 10;

/// How the reader task treats a connection: the guest's `connect-options` and the session's queue limits.
#[derive(Clone, Debug)]
pub(crate) struct ReadOptions {
    /// Messages that may wait for the guest before reading stops.
    pub queued_messages: usize,
    /// Bytes that may wait for the guest before reading stops.
    pub queued_bytes: usize,
    /// The session's byte budget, shared by all its connections: reading stops when it is spent too.
    pub session_budget: Arc<SessionBudget>,
    /// Queue pings and pongs for the guest too.
    pub control_frames: bool,
    /// Ping every `.0`; give up when no pong came `.1` after a ping.
    pub keepalive: Option<(Duration, Duration)>,
    /// Once our close frame is sent, how long the peer has to answer it before the host drops the connection.
    pub close_wait: Duration,
    /// How long the peer may read nothing of what waits to be written to it, while it goes on sending or the guest
    /// waits to send, before the host ends the connection with 1008.
    pub stall_timeout: Duration,
}

/// The guest's handle on a connection (the `connection` resource).
///
/// Dropping it does not close the socket: the session's shared half outlives it, so the host can still send a
/// close frame and wait for the peer's.
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
    queue: Arc<Queue>,
    pub(crate) url: String,
    pub(crate) protocol: Option<String>,
    /// The largest message the guest may send (the same as it may receive).
    pub(crate) max_message: usize,
}

/// The half of a connection the session keeps until it ends.
pub(crate) struct Shared {
    link: Arc<Link>,
    /// The guest still holds its handle (and so, perhaps, messages it has not taken).
    held: AtomicBool,
    /// Reads the socket until the connection ends; dropping the last `Shared` aborts it and closes the socket.
    reader: Mutex<Option<AbortOnDropJoinHandle<()>>>,
    /// Flushes what the guest sent once it stops sending for a moment, where sends are batched; aborted with the
    /// `Shared`.
    _flusher: Option<AbortOnDropJoinHandle<()>>,
}

/// What the guest's side and the reader task share: the writer and how the connection is going.
struct Link {
    /// `None` once the connection has ended: the socket goes with it, whoever still holds a handle. An
    /// async lock whose uncontended lock and unlock are an atomic each: it is taken for every message sent.
    writer: futures_util::lock::Mutex<Option<WriteHalf>>,
    /// How the connection ended: the peer's close frame, or 1006. `None` while it is open.
    closed: Mutex<Option<CloseFrame>>,
    /// The close frame we sent, once we have: nothing may be sent after it.
    sent: Mutex<Option<CloseFrame>>,
    /// Told when our close frame goes out, so the reader starts the peer's time to answer it.
    close_sent: tokio::sync::Notify,
    /// The reader found a protocol error and will send the failing close once the guest has taken what came
    /// before it: a session that ends meanwhile leaves that close to the reader.
    failing: AtomicBool,
    /// The reader ended the connection because the peer stopped reading: what a send blocked on it then fails with.
    stalled: Mutex<Option<ErrorCode>>,
    /// Sends and closes of the guest's under way: only while one waits may a full queue count as the peer's stall
    /// (a write refused earlier and not tried again since says nothing about the peer now).
    sending: AtomicUsize,
    /// How long the peer may read nothing while a write waits on it.
    stall_timeout: Duration,
    /// The socket under both halves, for the stall watch.
    probe: Probe,
    /// Sent messages wait in the writer's buffer until the flusher runs: `flush_pending` says one is due,
    /// `flush_due` wakes the flusher (once per batch, not once per message).
    flush_pending: AtomicBool,
    flush_due: tokio::sync::Notify,
    /// Batch sends until the guest pauses: only on a single-threaded runtime (the CLI's), where the flusher runs
    /// exactly when the session's task waits. On a multi-threaded one (an embedder with many sessions) it would run
    /// at another worker's whim, and a busy process would hold sent messages, and a cancel's close frame behind
    /// them, for milliseconds: each send is written at once there.
    batch_sends: bool,
    /// For the debug log at the end: where, the queue limits, how many messages came.
    url: String,
    limits: (usize, usize),
    messages: AtomicU64,
    queue: Arc<Queue>,
}

impl Connection {
    /// Start the reader task for an open stream and hand back the guest's handle.
    pub(crate) fn start(
        stream: WsStream,
        url: String,
        protocol: Option<String>,
        max_message: usize,
        options: ReadOptions,
    ) -> Connection {
        let (writer, reader) = super::halves::split(stream);
        let probe = writer.probe();
        let queue = Arc::new(Queue::new(options.queued_messages, options.queued_bytes, options.session_budget.clone()));
        let link = Arc::new(Link {
            writer: futures_util::lock::Mutex::new(Some(writer)),
            closed: Mutex::new(None),
            sent: Mutex::new(None),
            close_sent: tokio::sync::Notify::new(),
            failing: AtomicBool::new(false),
            stalled: Mutex::new(None),
            sending: AtomicUsize::new(0),
            stall_timeout: options.stall_timeout,
            probe,
            flush_pending: AtomicBool::new(false),
            flush_due: tokio::sync::Notify::new(),
            batch_sends: tokio::runtime::Handle::try_current()
                .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread),
            url: url.clone(),
            limits: (options.queued_messages, options.queued_bytes),
            messages: AtomicU64::new(0),
            queue: queue.clone(),
        });
        let task = wasmtime_wasi::runtime::spawn(read_loop(reader, link.clone(), options));
        let flusher = link.batch_sends.then(|| wasmtime_wasi::runtime::spawn(flush_loop(link.clone())));
        let shared =
            Arc::new(Shared { link, held: AtomicBool::new(true), reader: Mutex::new(Some(task)), _flusher: flusher });
        Connection { shared, queue, url, protocol, max_message }
    }

    /// Wait for the next message, error or end.
    pub(crate) async fn receive(&mut self) -> Received {
        loop {
            if let Some(received) = self.queue.try_take() {
                // A guest that always finds a message waiting would otherwise never let the flusher and the reader
                // run on a single-threaded runtime: every so often (tokio's budget), it yields here.
                tokio::task::coop::consume_budget().await;
                return received;
            }
            self.queue.ready().await;
        }
    }

    /// Take the next message, error or end if there is one.
    pub(crate) fn try_receive(&mut self) -> Option<Received> {
        self.queue.try_take()
    }
}

impl Drop for Connection {
    /// The guest is done with its handle: what it has not taken is dropped, and the reader queues no more.
    fn drop(&mut self) {
        self.queue.close();
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for Connection {
    async fn ready(&mut self) {
        self.queue.ready().await;
    }
}

impl Shared {
    /// Send one message; waits while the socket is not writable.
    pub(crate) async fn send(&self, message: WireMessage) -> Result<(), ErrorCode> {
        self.link.send(Write::Message(message)).await
    }

    /// Send a whole data frame made by the host (see `sent`); waits while the socket is not writable.
    pub(crate) async fn send_frame(&self, frame: Bytes) -> Result<(), ErrorCode> {
        self.link.send(Write::Frame(frame)).await
    }

    /// Send our close frame, once. Later calls say the connection is closed.
    pub(crate) async fn close(&self, code: u16, reason: &str) -> Result<(), ErrorCode> {
        self.link.close(code, reason).await
    }

    /// How the connection ended, or `None` while it is open.
    pub(crate) fn close_status(&self) -> Option<CloseFrame> {
        self.link.close_status()
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
        self.link.queue.close();
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

impl Link {
    /// Send a message or a frame. Where sends are batched, a message is left in the writer's buffer (which goes to
    /// the socket by itself past 128 KiB, and waits while the socket is full: backpressure) for the flusher, which
    /// writes it once the guest pauses: a guest that sends many small messages in a row costs one system call per
    /// batch, not one per message. A frame is written at once as far as the socket takes it.
    async fn send(&self, write: Write) -> Result<(), ErrorCode> {
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
        if self.batch_sends && sent.is_ok() && !self.flush_pending.swap(true, Ordering::AcqRel) {
            self.flush_due.notify_one();
        }
        sent
    }

    /// After a write, with the writer still locked: a failed write, or a connection that ended meanwhile (whose
    /// reader could not take the lock to release the socket), lets go of the socket now.
    fn after_write(&self, writer: &mut Option<WriteHalf>, failed: bool) {
        if failed || self.has_ended() {
            *writer = None;
        }
    }

    /// The error for an operation on a connection that has ended.
    fn ended(&self) -> ErrorCode {
        if let Some(stalled) = lock(&self.stalled).clone() {
            return stalled;
        }
        ErrorCode::Closed(self.close_status().or_else(|| lock(&self.sent).clone()).unwrap_or_else(abnormal_closure))
    }

    /// The connection has ended: give back its socket and buffers now, not when the guest drops its handle. A
    /// writer busy with a send lets go of them itself when that send is done (`after_write`), as the close status
    /// is set before this is called.
    fn release_socket(&self) {
        if let Some(mut writer) = self.writer.try_lock() {
            *writer = None;
        }
    }

    async fn close(&self, code: u16, reason: &str) -> Result<(), ErrorCode> {
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

    fn close_status(&self) -> Option<CloseFrame> {
        lock(&self.closed).clone()
    }

    /// A write of the guest's that waits on the socket while the peer reads nothing for the stall timeout ends the
    /// connection: the socket is shut (the reader then ends, giving the guest the stall's error too) and the write
    /// fails with it. Most writes are done at the first poll and are never watched.
    async fn watched(&self, write: impl Future<Output = Result<(), ErrorCode>>) -> Result<(), ErrorCode> {
        match unless_stalled(write, stalled_for(|| self.probe.write_stalled_since(), self.stall_timeout)).await {
            Some(done) => done,
            None => {
                let (error, _) = stall_failure(self, self.stall_timeout);
                self.probe.shut_down_now();
                Err(error)
            }
        }
    }

    /// Whether the connection has ended, without copying how: asked after every write.
    fn has_ended(&self) -> bool {
        lock(&self.closed).is_some()
    }

    /// The reader gives up on the connection: send a close frame saying why (after what the guest already sent),
    /// without waiting long on a busy writer or a peer that does not read.
    async fn close_for_failure(&self, code: CloseCode, reason: &str) {
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

    fn transport_error(&self, error: WsProtocolError) -> ErrorCode {
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
enum Write {
    Message(WireMessage),
    Frame(Bytes),
}

/// A poisoned lock only means another task panicked while holding it; the value is still the best we know.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Read frames until the connection ends, queueing messages for the guest. A full queue stops the reading, and so
/// the peer (backpressure); a guest that dropped its handle no longer gets messages, but the reading goes on so the
/// closing handshake can finish.
async fn read_loop(mut reader: ReadHalf, link: Arc<Link>, options: ReadOptions) {
    let probe = reader.probe();
    let mut deliver = true;
    let mut peer_close = None;
    // Why the reading failed, and the close frame that tells the peer (when the socket may still work).
    let mut failure: Option<(ErrorCode, Option<(CloseCode, &str)>)> = None;
    let mut keepalive = options.keepalive.map(|(interval, timeout)| Keepalive::new(interval, timeout));
    // When the closing handshake must be over (python-websockets' close_timeout): the peer's answer to our close
    // frame, or, after its own close frame, the end of the TCP connection, which a client leaves to the server (RFC
    // 6455, 7.1.1) but not for ever. Past it the connection is dropped; without the peer's close frame it ends as 1006.
    let mut close_deadline: Option<Instant> = None;
    let mut read_ahead = 0;
    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            () = link.close_sent.notified(), if close_deadline.is_none() => {
                close_deadline = Some(Instant::now() + options.close_wait);
                continue;
            }
            () = sleep_until(close_deadline) => {
                log::debug!("{}: the closing handshake did not end within {:?}; dropping the connection", link.url, options.close_wait);
                break;
            }
            action = Keepalive::due(&mut keepalive) => {
                match action {
                    Due::Ping => {
                        // A writer busy with a large send is skipped this time rather than waited for.
                        if let Some(mut writer) = link.writer.try_lock() {
                            if let Some(sink) = writer.as_mut() {
                                let _ = sink.send(WireMessage::Ping(Vec::new().into())).await;
                            }
                        }
                    }
                    Due::GiveUp => {
                        link.close_for_failure(CloseCode::Error, "keepalive ping timeout").await;
                        failure = Some((ErrorCode::KeepaliveTimeout, None));
                        break;
                    }
                }
                continue;
            }
        };
        let Some(next) = next else { break };
        // Checked as frames come (tungstenite has just tried again to write what waits, its pongs included), but
        // not for the peer's close frame, which ends the conversation its own way.
        if !matches!(next, Ok(WireMessage::Close(_))) && stalled_past(&probe, options.stall_timeout) {
            failure = Some(stall_failure(&link, options.stall_timeout));
            break;
        }
        let item = match next {
            Ok(WireMessage::Text(text)) => Incoming::Text(text.as_str().to_owned()),
            Ok(WireMessage::Binary(bytes)) => Incoming::Binary(from_read_buffer(bytes)),
            Ok(WireMessage::Close(frame)) => {
                peer_close = Some(match frame {
                    Some(frame) => CloseFrame { code: frame.code.into(), reason: frame.reason.as_str().to_owned() },
                    None => CloseFrame { code: 1005, reason: String::new() },
                });
                close_deadline.get_or_insert_with(|| Instant::now() + options.close_wait);
                continue;
            }
            Ok(WireMessage::Pong(payload)) => {
                if let Some(keepalive) = &mut keepalive {
                    keepalive.ponged();
                }
                if !options.control_frames {
                    continue;
                }
                Incoming::Pong(from_read_buffer(payload))
            }
            // tungstenite answers pings itself.
            Ok(WireMessage::Ping(payload)) if options.control_frames => Incoming::Ping(from_read_buffer(payload)),
            Ok(WireMessage::Ping(_) | WireMessage::Frame(_)) => continue,
            Err(WsProtocolError::ConnectionClosed | WsProtocolError::AlreadyClosed) => break,
            Err(WsProtocolError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => break,
            // After the peer's close frame the handshake is done, however the socket ends (a TLS peer that skips
            // close_notify, say).
            Err(_) if peer_close.is_some() => break,
            Err(error) => {
                // Tell the peer why, as RFC 6455 asks, when the socket still works.
                let close = match &error {
                    WsProtocolError::Capacity(_) => Some((CloseCode::Size, "message too big")),
                    WsProtocolError::Utf8(_) => Some((CloseCode::Invalid, "invalid UTF-8")),
                    WsProtocolError::Protocol(_) => Some((CloseCode::Protocol, "protocol error")),
                    _ => None,
                };
                failure = Some((from_transport(error, abnormal_closure), close));
                break;
            }
        };
        link.messages.fetch_add(1, Ordering::Relaxed);
        if deliver {
            // Read the clock only for keepalive: it costs more than the rest of a small message's hand-over.
            let blocked = keepalive.is_some().then(Instant::now);
            let size = item.held();
            // A guest blocked sending to a peer that does not read takes nothing: the peer's stall ends the wait.
            let stall = stall_exceeded(&probe, &link, options.stall_timeout);
            deliver = match unless_stalled(link.queue.push(item, size), stall).await {
                Some(pushed) => pushed.is_ok(),
                None => {
                    failure = Some(stall_failure(&link, options.stall_timeout));
                    break;
                }
            };
            // Let the guest at the messages now and then, even when the socket always has more.
            tokio::task::coop::consume_budget().await;
            read_ahead += size;
            if read_ahead >= READ_AHEAD {
                read_ahead = 0;
                tokio::task::yield_now().await;
            }
            if let (Some(keepalive), Some(blocked)) = (&mut keepalive, blocked) {
                // Time spent waiting for the guest is not the peer's fault: its pong may be waiting unread.
                keepalive.pause(blocked.elapsed());
            }
        }
    }
    if let Some(stalled) = lock(&link.stalled).clone() {
        // The peer stalled (found here, or by a send that then shut the socket, which ended the reading): the guest
        // learns why, whatever the socket said after.
        failure = Some((stalled, failure.and_then(|(_, close)| close)));
    }
    if let Some((error, close)) = failure {
        // The messages that came before the error reach the guest first, and their answers go out before the
        // failing close frame: the guest gets a short time to take them.
        if close.is_some() {
            link.failing.store(true, Ordering::Release);
        }
        link.queue.fail(error);
        if let Some((code, reason)) = close {
            if lock(&link.stalled).is_none() {
                let _ = tokio::time::timeout(FAILURE_DRAIN, link.queue.drained()).await;
            }
            link.close_for_failure(code, reason).await;
        }
    }
    *lock(&link.closed) = Some(peer_close.unwrap_or_else(abnormal_closure));
    // The connection is over. A send may still wait on the socket (a peer that stopped reading, or one that closed
    // and never ended the TCP connection): end the TCP connection, which wakes it with an error, rather than leave
    // it waiting for ever on a socket nobody reads.
    probe.shut_down_now();
    drop(reader);
    link.release_socket();
    link.queue.end();
}

impl Drop for Shared {
    /// The session is done with the connection: log what its queue saw, however the reader ended.
    fn drop(&mut self) {
        let how = self
            .link
            .close_status()
            .map_or("stopped by the host".to_owned(), |closed| format!("closed {}", closed.code));
        let (peak_messages, peak_bytes) = self.link.queue.peaks();
        log::debug!(
            "connection to {} {how}: {} messages received, queue peak {peak_messages} messages / {peak_bytes} bytes (limits {} / {})",
            self.link.url,
            self.link.messages.load(Ordering::Relaxed),
            self.link.limits.0,
            self.link.limits.1,
        );
    }
}

/// Flush what the guest sent, each time a send asks for it. On a single-threaded runtime (the CLI's) this runs
/// when the session's task waits, i.e. when the guest has nothing more to send for now.
async fn flush_loop(link: Arc<Link>) {
    loop {
        link.flush_due.notified().await;
        link.flush_pending.store(false, Ordering::Release);
        let mut writer = link.writer.lock().await;
        if let Some(sink) = writer.as_mut() {
            let flushed = sink.flush().await;
            link.after_write(&mut writer, flushed.is_err());
        }
    }
}

/// Whether the peer has read nothing of what waits to be written to it for `limit` or longer.
fn stalled_past(probe: &Probe, limit: Duration) -> bool {
    probe.write_stalled_since().is_some_and(|since| since.elapsed() >= limit)
}

/// Resolves once the peer has read nothing for `limit` while a send of the guest's waits on it.
async fn stall_exceeded(probe: &Probe, link: &Link, limit: Duration) {
    stalled_for(|| probe.write_stalled_since().filter(|_| link.sending.load(Ordering::Relaxed) > 0), limit).await;
}

/// `work`'s result, or `None` when `stall` resolves first. Only work that does not finish at its first poll is raced
/// against the stall, whose timer would otherwise tax every message.
async fn unless_stalled<T>(work: impl Future<Output = T>, stall: impl Future<Output = ()>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    if let Poll::Ready(done) = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await {
        return Some(done);
    }
    tokio::select! {
        biased;
        done = work => Some(done),
        () = stall => None,
    }
}

/// Resolves once `since` has said for `limit` that writes are refused; looks again every `limit` while it says not.
async fn stalled_for(since: impl Fn() -> Option<std::time::Instant>, limit: Duration) {
    loop {
        let wait = match since() {
            Some(since) => limit.saturating_sub(since.elapsed()),
            None => limit,
        };
        if wait.is_zero() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// The reader gives up on a peer that does not read: the error the guest gets (from its next receive, and from a
/// send blocked on the socket) and the close frame that says why, if the peer ever reads it.
fn stall_failure(link: &Link, limit: Duration) -> (ErrorCode, Option<(CloseCode, &'static str)>) {
    let error = ErrorCode::Limit(format!(
        "the peer read nothing of what was sent to it for {limit:?} while there was more to send (stall timeout); \
         closed with 1008"
    ));
    log::debug!("{}: {error:?}", link.url);
    *lock(&link.stalled) = Some(error.clone());
    (error, Some((CloseCode::Policy, "peer does not read")))
}

/// Resolves at `deadline`; never without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The keepalive clock of one connection: when to ping, and when to give up on the pong.
struct Keepalive {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    pong_deadline: Option<Instant>,
}

enum Due {
    Ping,
    GiveUp,
}

impl Keepalive {
    fn new(interval: Duration, timeout: Duration) -> Self {
        Keepalive { interval, timeout, next_ping: Instant::now() + interval, pong_deadline: None }
    }

    /// Resolves when a ping is due or the pong is overdue; never, without keepalive.
    async fn due(keepalive: &mut Option<Keepalive>) -> Due {
        let Some(keepalive) = keepalive else { return std::future::pending().await };
        match keepalive.pong_deadline {
            Some(deadline) => {
                tokio::time::sleep_until(deadline).await;
                Due::GiveUp
            }
            None => {
                tokio::time::sleep_until(keepalive.next_ping).await;
                keepalive.next_ping += keepalive.interval;
                keepalive.pong_deadline = Some(Instant::now() + keepalive.timeout);
                Due::Ping
            }
        }
    }

    fn ponged(&mut self) {
        self.pong_deadline = None;
    }

    fn pause(&mut self, paused: Duration) {
        if let Some(deadline) = &mut self.pong_deadline {
            *deadline += paused;
        }
    }
}
