//! A connection's reader task: reads frames until the connection ends, queueing messages for the guest. A full queue
//! stops the reading, and so the peer (backpressure); a guest that dropped its handle no longer gets messages, but the
//! reading goes on so the closing handshake can finish. The task also pings for keepalive, times the closing
//! handshake, and ends a peer that stalls.

use crate::events::{ClosedBy, SessionEvent};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{Error as WsProtocolError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WireMessage;

use super::incoming::{from_read_buffer, Incoming};
use super::keepalive::{Due, Keepalive};
use super::live::{lock, ConnectionState};
use super::{stall, Options};
use crate::bindings::websocket::{CloseFrame, ErrorCode};
use crate::websocket::errors::{abnormal_closure, from_transport};
use crate::websocket::net::halves::{Probe, ReadHalf};
use crate::websocket::net::inflate::InflateFailure;

/// After a protocol error, how long the guest has to take the messages that came before it (and to answer them)
/// before the failing close frame goes out: a guest that does not read cannot keep a broken connection open.
const FAILURE_DRAIN: Duration = Duration::from_millis(500);

/// After queueing this many bytes in a row, the reader lets the guest run before it reads on: a message taken soon
/// after it was read is still in the cache (measured: 820-940 against 880-1,000 us of CPU per 1 MiB echo). The reader
/// goes on at once when the guest has nothing to do: the queue limits stay what stops it.
const READ_AHEAD: usize = 256 << 10;

/// Why the reading failed, and the close frame that tells the peer (when the socket may still work).
pub(super) type Failure = (ErrorCode, Option<(CloseCode, &'static str)>);

/// What the reader does after a step.
enum Flow<T> {
    /// Go on with this.
    Go(T),
    /// Nothing more to do with this one: read the next.
    Next,
    /// The reading is over, for this reason if it failed.
    Stop(Option<Failure>),
}

/// The reader task of one connection.
pub(super) async fn read_loop(half: ReadHalf, state: Arc<ConnectionState>, options: Options) {
    let mut reader = Reader {
        probe: half.probe(),
        half,
        keepalive: options.keepalive.map(Keepalive::new),
        state,
        options,
        deliver: true,
        peer_close: None,
        closed_by: None,
        close_deadline: None,
        read_ahead: 0,
    };
    let failure = reader.read().await;
    reader.end(failure).await;
}

struct Reader {
    half: ReadHalf,
    probe: Probe,
    state: Arc<ConnectionState>,
    options: Options,
    keepalive: Option<Keepalive>,
    /// Queue messages for the guest (until it drops its handle).
    deliver: bool,
    /// The peer's close frame, once it came.
    peer_close: Option<CloseFrame>,
    /// Who started the closing handshake: known when the peer's close frame comes.
    closed_by: Option<ClosedBy>,
    /// When the closing handshake must be over (python-websockets' close_timeout): the peer's answer to our close
    /// frame, or, after its own close frame, the end of the TCP connection, which a client leaves to the server (RFC
    /// 6455, 7.1.1) but not for ever. Past it the connection is dropped; without the peer's close frame it ends as
    /// 1006.
    close_deadline: Option<Instant>,
    /// Bytes queued since the guest last had a turn.
    read_ahead: usize,
}

impl Reader {
    /// Read, sort and queue until the connection ends or fails.
    async fn read(&mut self) -> Option<Failure> {
        loop {
            let frame = match self.next().await {
                Flow::Go(frame) => frame,
                Flow::Next => continue,
                Flow::Stop(failure) => return failure,
            };
            let message = match self.sort(frame) {
                Flow::Go(message) => message,
                Flow::Next => continue,
                Flow::Stop(failure) => return failure,
            };
            self.state.messages.fetch_add(1, Ordering::Relaxed);
            if self.deliver {
                if let Flow::Stop(failure) = self.queue(message).await {
                    return failure;
                }
            }
        }
    }

    /// The next frame from the peer, or what came first: our close frame sent (the peer's time to answer starts), the
    /// end of the closing handshake's time, a keepalive ping due or a pong overdue.
    async fn next(&mut self) -> Flow<Result<WireMessage, WsProtocolError>> {
        tokio::select! {
            next = self.half.next() => match next {
                Some(frame) => Flow::Go(frame),
                None => Flow::Stop(None),
            },
            () = self.state.close_sent.notified(), if self.close_deadline.is_none() => {
                self.close_deadline = Some(Instant::now() + self.options.close_wait);
                Flow::Next
            }
            () = sleep_until(self.close_deadline) => {
                log::debug!(
                    "{}: the closing handshake did not end within {:?}; dropping the connection",
                    self.state.url,
                    self.options.close_wait
                );
                Flow::Stop(None)
            }
            due = Keepalive::due(&mut self.keepalive) => match due {
                Due::Ping => {
                    // A writer busy with a large send is skipped this time rather than waited for.
                    if let Some(mut writer) = self.state.writer.try_lock() {
                        if let Some(sink) = writer.as_mut() {
                            let _ = sink.send(WireMessage::Ping(keepalive_payload().to_vec().into())).await;
                        }
                    }
                    Flow::Next
                }
                Due::GiveUp => {
                    self.state.close_for_failure(CloseCode::Error, "keepalive ping timeout").await;
                    Flow::Stop(Some((ErrorCode::KeepaliveTimeout, None)))
                }
            },
        }
    }

    /// What a frame from the peer means: a message for the guest, nothing for it (a control frame tungstenite
    /// answered, the peer's close frame), or the end.
    fn sort(&mut self, frame: Result<WireMessage, WsProtocolError>) -> Flow<Incoming> {
        // Checked as frames come (tungstenite has just tried again to write what waits, its pongs included), but
        // not for the peer's close frame, which ends the conversation its own way.
        if !matches!(frame, Ok(WireMessage::Close(_))) && stall::past(&self.probe, self.options.stall_timeout) {
            return Flow::Stop(Some(stall::failure(&self.state, self.options.stall_timeout)));
        }
        Flow::Go(match frame {
            Ok(WireMessage::Text(text)) => Incoming::Text(text.as_str().to_owned()),
            Ok(WireMessage::Binary(bytes)) => Incoming::Binary(from_read_buffer(bytes)),
            Ok(WireMessage::Close(frame)) => {
                let ours_first = lock(&self.state.sent).is_some();
                self.closed_by = Some(if ours_first { ClosedBy::Us } else { ClosedBy::Peer });
                self.peer_close = Some(match frame {
                    Some(frame) => CloseFrame { code: frame.code.into(), reason: frame.reason.as_str().to_owned() },
                    None => CloseFrame { code: 1005, reason: String::new() },
                });
                self.close_deadline.get_or_insert_with(|| Instant::now() + self.options.close_wait);
                return Flow::Next;
            }
            Ok(WireMessage::Pong(payload)) => {
                if let Some(keepalive) = &mut self.keepalive {
                    keepalive.ponged();
                }
                if !self.options.control_frames {
                    return Flow::Next;
                }
                Incoming::Pong(from_read_buffer(payload))
            }
            // tungstenite answers pings itself.
            Ok(WireMessage::Ping(payload)) if self.options.control_frames => Incoming::Ping(from_read_buffer(payload)),
            Ok(WireMessage::Ping(_) | WireMessage::Frame(_)) => return Flow::Next,
            Err(WsProtocolError::ConnectionClosed | WsProtocolError::AlreadyClosed) => return Flow::Stop(None),
            Err(WsProtocolError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => return Flow::Stop(None),
            // After the peer's close frame the handshake is done, however the socket ends (a TLS peer that skips
            // close_notify, say).
            Err(_) if self.peer_close.is_some() => return Flow::Stop(None),
            Err(error) if inflate_failure(&error).is_some() => return Flow::Stop(inflate_failure(&error)),
            Err(error) => {
                // Tell the peer why, as RFC 6455 asks, when the socket still works.
                let close = match &error {
                    WsProtocolError::Capacity(_) => Some((CloseCode::Size, "message too big")),
                    WsProtocolError::Utf8(_) => Some((CloseCode::Invalid, "invalid UTF-8")),
                    WsProtocolError::Protocol(_) => Some((CloseCode::Protocol, "protocol error")),
                    _ => None,
                };
                return Flow::Stop(Some((from_transport(error, abnormal_closure), close)));
            }
        })
    }

    /// Queue a message for the guest, waiting while the queue is full; stops queueing once the guest has dropped its
    /// handle.
    async fn queue(&mut self, message: Incoming) -> Flow<()> {
        // Read the clock only for keepalive: it costs more than the rest of a small message's hand-over.
        let blocked = self.keepalive.is_some().then(Instant::now);
        let size = message.held();
        // A guest blocked sending to a peer that does not read takes nothing: the peer's stall ends the wait.
        let stall = stall::exceeded_while_sending(&self.probe, &self.state, self.options.stall_timeout);
        self.deliver = match stall::unless(self.state.queue.push(message, size), stall).await {
            Some(pushed) => pushed.is_ok(),
            None => return Flow::Stop(Some(stall::failure(&self.state, self.options.stall_timeout))),
        };
        // Let the guest at the messages now and then, even when the socket always has more.
        tokio::task::coop::consume_budget().await;
        self.read_ahead += size;
        if self.read_ahead >= READ_AHEAD {
            self.read_ahead = 0;
            tokio::task::yield_now().await;
        }
        if let (Some(keepalive), Some(blocked)) = (&mut self.keepalive, blocked) {
            // Time spent waiting for the guest is not the peer's fault: its pong may be waiting unread.
            keepalive.pause(blocked.elapsed());
        }
        Flow::Go(())
    }

    /// The reading is over: the guest learns why, the peer too when it failed (after the guest had a moment to take
    /// what came before), and the socket is let go.
    async fn end(self, mut failure: Option<Failure>) {
        let state = &self.state;
        if let Some(stalled) = lock(&state.stalled).clone() {
            // The peer stalled (found here, or by a send that then shut the socket, which ended the reading): the
            // guest learns why, whatever the socket said after.
            failure = Some((stalled, failure.and_then(|(_, close)| close)));
        }
        if let Some((error, _)) = &failure {
            if self.options.events.is_on() {
                let error = crate::websocket::errors::describe(error);
                self.options.events.emit(SessionEvent::Error { connection: self.options.number, error });
            }
        }
        if let Some((error, close)) = failure {
            // The messages that came before the error reach the guest first, and their answers go out before the
            // failing close frame: the guest gets a short time to take them.
            if close.is_some() {
                state.failing.store(true, Ordering::Release);
            }
            state.queue.fail(error);
            if let Some((code, reason)) = close {
                if lock(&state.stalled).is_none() {
                    let _ = tokio::time::timeout(FAILURE_DRAIN, state.queue.drained()).await;
                }
                state.close_for_failure(code, reason).await;
            }
        }
        let closed = self.peer_close.unwrap_or_else(abnormal_closure);
        if self.options.events.is_on() {
            let closed_by =
                self.closed_by.unwrap_or(if lock(&state.sent).is_some() { ClosedBy::Us } else { ClosedBy::Lost });
            self.options.events.emit(SessionEvent::Closed {
                connection: self.options.number,
                code: closed.code,
                reason: closed.reason.clone(),
                closed_by,
            });
        }
        *lock(&state.closed) = Some(closed);
        // The connection is over. A send may still wait on the socket (a peer that stopped reading, or one that
        // closed and never ended the TCP connection): end the TCP connection, which wakes it with an error, rather
        // than leave it waiting for ever on a socket nobody reads.
        self.probe.shut_down_now();
        drop(self.half);
        state.release_socket();
        state.queue.end();
    }
}

/// A compressed message that could not be inflated (see `net::inflate`, whose failure comes inside the read's I/O
/// error): what the guest is told, and the close frame that tells the peer.
fn inflate_failure(error: &WsProtocolError) -> Option<Failure> {
    let WsProtocolError::Io(e) = error else { return None };
    Some(match e.get_ref()?.downcast_ref::<InflateFailure>()? {
        InflateFailure::TooLarge { max } => {
            (ErrorCode::MessageTooLarge(*max as u64 + 1), Some((CloseCode::Size, "message too big")))
        }
        corrupt @ InflateFailure::Corrupt(_) => {
            (ErrorCode::Protocol(corrupt.to_string()), Some((CloseCode::Protocol, "invalid compressed data")))
        }
    })
}

/// Resolves at `deadline`; never without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What a keepalive ping carries: the host's wall-clock time when it was sent, in nanoseconds since the Unix epoch,
/// 8 bytes big-endian (the WIT documents it), so a guest that receives control frames can time the pong that
/// echoes it against its own wall clock.
fn keepalive_payload() -> [u8; 8] {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_nanos()).unwrap_or(u64::MAX).to_be_bytes()
}
