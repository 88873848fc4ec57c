//! An open connection: the reader task that fills a bounded queue, the writer the guest sends through, and the
//! close status both sides see.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::error::{Error as WsProtocolError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as WireCloseFrame;
use tokio_tungstenite::tungstenite::Message as WireMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wasmtime_wasi::runtime::AbortOnDropJoinHandle;

use super::errors::{abnormal_closure, from_transport};
use crate::bindings::websocket::{CloseFrame, ErrorCode, Message};

pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One item for the guest: a message, or the error that ended the connection.
type Incoming = Result<Message, ErrorCode>;

/// What the guest gets from `receive`: a message, `None` for the end, or an error.
pub(crate) type Received = Result<Option<Message>, ErrorCode>;

/// The guest's handle on a connection (the `connection` resource).
///
/// Dropping it does not close the socket: the session's [`Shared`] half outlives it, so the host can still send a
/// close frame and wait for the peer's.
pub struct Connection {
    pub(crate) shared: Arc<Shared>,
    incoming: mpsc::Receiver<Incoming>,
    /// A result `ready` already took off the queue, waiting for `receive` or `try-receive`.
    ready: Option<Received>,
    pub(crate) url: String,
    pub(crate) protocol: Option<String>,
}

/// The half of a connection the session keeps until it ends.
pub(crate) struct Shared {
    writer: tokio::sync::Mutex<SplitSink<WsStream, WireMessage>>,
    status: Arc<Status>,
    /// Reads the socket until the connection ends; dropping the last `Shared` aborts it and closes the socket.
    reader: Mutex<Option<AbortOnDropJoinHandle<()>>>,
}

/// What both the reader task and the guest's side know about how the connection is going.
#[derive(Default)]
struct Status {
    /// How the connection ended: the peer's close frame, or 1006. `None` while it is open.
    closed: Mutex<Option<CloseFrame>>,
    /// The close frame we sent, once we have: nothing may be sent after it.
    sent: Mutex<Option<CloseFrame>>,
}

impl Connection {
    /// Start the reader task for an open stream and hand back the guest's handle.
    pub(crate) fn start(stream: WsStream, url: String, protocol: Option<String>, queued: usize) -> Connection {
        let (writer, reader) = stream.split();
        let (tx, incoming) = mpsc::channel(queued.max(1));
        let status = Arc::new(Status::default());
        let task = wasmtime_wasi::runtime::spawn(read_loop(reader, tx, status.clone()));
        let shared = Arc::new(Shared {
            writer: tokio::sync::Mutex::new(writer),
            status,
            reader: Mutex::new(Some(task)),
        });
        Connection { shared, incoming, ready: None, url, protocol }
    }

    /// Wait for the next message, error or end.
    pub(crate) async fn receive(&mut self) -> Received {
        self.wait_ready().await;
        self.ready.take().unwrap_or(Ok(None))
    }

    /// Take the next message, error or end if there is one.
    pub(crate) fn try_receive(&mut self) -> Option<Received> {
        if let Some(ready) = self.ready.take() {
            return Some(ready);
        }
        match self.incoming.try_recv() {
            Ok(item) => Some(item.map(Some)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Ok(None)),
        }
    }

    async fn wait_ready(&mut self) {
        if self.ready.is_none() {
            self.ready = Some(match self.incoming.recv().await {
                Some(item) => item.map(Some),
                None => Ok(None),
            });
        }
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for Connection {
    async fn ready(&mut self) {
        self.wait_ready().await;
    }
}

impl Shared {
    /// Send one message; waits while the socket is not writable.
    pub(crate) async fn send(&self, message: WireMessage) -> Result<(), ErrorCode> {
        if let Some(sent) = self.sent_close() {
            return Err(ErrorCode::Closed(sent));
        }
        let mut writer = self.writer.lock().await;
        writer.send(message).await.map_err(|e| self.transport_error(e))
    }

    /// Send our close frame, once. Later calls say the connection is closed.
    pub(crate) async fn close(&self, code: u16, reason: &str) -> Result<(), ErrorCode> {
        if let Some(closed) = self.close_status() {
            return Err(ErrorCode::Closed(closed));
        }
        {
            let Ok(mut sent) = self.status.sent.lock() else { return Err(ErrorCode::Io("poisoned lock".into())) };
            if let Some(sent) = &*sent {
                return Err(ErrorCode::Closed(sent.clone()));
            }
            *sent = Some(CloseFrame { code, reason: reason.to_owned() });
        }
        let frame = WireCloseFrame { code: CloseCode::from(code), reason: reason.to_owned().into() };
        let mut writer = self.writer.lock().await;
        writer.send(WireMessage::Close(Some(frame))).await.map_err(|e| self.transport_error(e))
    }

    /// How the connection ended, or `None` while it is open.
    pub(crate) fn close_status(&self) -> Option<CloseFrame> {
        self.status.closed.lock().map(|closed| closed.clone()).unwrap_or(None)
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

    fn sent_close(&self) -> Option<CloseFrame> {
        self.status.sent.lock().map(|sent| sent.clone()).unwrap_or(None)
    }

    fn transport_error(&self, error: WsProtocolError) -> ErrorCode {
        from_transport(error, || self.close_status().unwrap_or_else(abnormal_closure))
    }
}

/// Read frames until the connection ends, queueing messages for the guest. A full queue stops the reading, and so
/// the peer (backpressure); a guest that dropped its handle no longer gets messages, but the reading goes on so the
/// closing handshake can finish.
async fn read_loop(mut reader: SplitStream<WsStream>, tx: mpsc::Sender<Incoming>, status: Arc<Status>) {
    let mut deliver = true;
    let mut peer_close = None;
    let mut failure = None;
    while let Some(next) = reader.next().await {
        let item = match next {
            Ok(WireMessage::Text(text)) => Ok(Message::Text(text.as_str().to_owned())),
            Ok(WireMessage::Binary(bytes)) => Ok(Message::Binary(bytes.into())),
            Ok(WireMessage::Close(frame)) => {
                peer_close = Some(match frame {
                    Some(frame) => CloseFrame { code: frame.code.into(), reason: frame.reason.as_str().to_owned() },
                    None => CloseFrame { code: 1005, reason: String::new() },
                });
                continue;
            }
            // tungstenite answers pings itself; pongs and raw frames mean nothing to the guest.
            Ok(WireMessage::Ping(_) | WireMessage::Pong(_) | WireMessage::Frame(_)) => continue,
            Err(WsProtocolError::ConnectionClosed | WsProtocolError::AlreadyClosed) => break,
            Err(WsProtocolError::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => break,
            Err(error) => {
                failure = Some(from_transport(error, abnormal_closure));
                break;
            }
        };
        if deliver && tx.send(item).await.is_err() {
            deliver = false;
        }
    }
    if let Ok(mut closed) = status.closed.lock() {
        *closed = Some(peer_close.unwrap_or_else(abnormal_closure));
    }
    if let (true, Some(error)) = (deliver, failure) {
        let _ = tx.send(Err(error)).await;
    }
}
