//! One WebSocket stream shared by a connection's reader task and its writer, each holding it for one poll at a time
//! (as `StreamExt::split` would), with what only this sharing allows: the writer can add a frame it framed itself
//! (see `wire`) at a point where tungstenite has no frame half written, and it knows under the same lock whether a
//! close frame has been read or sent, after which no data frame may follow.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::error::{Error as WsProtocolError, ProtocolError};
use tokio_tungstenite::tungstenite::{Bytes, Message as WireMessage};
use tokio_tungstenite::WebSocketStream;

use super::wire::Wire;

/// A WebSocket stream over [`Wire`].
pub(crate) type WsStream = WebSocketStream<Wire>;

struct Both {
    stream: WsStream,
    /// A close frame was read or sent: tungstenite answers or has sent it, and refuses data frames from then on.
    closing: bool,
}

/// The reader task's half.
pub(crate) struct ReadHalf(Arc<Mutex<Both>>);

/// The writer's half.
pub(crate) struct WriteHalf(Arc<Mutex<Both>>);

/// Share `stream` between a reader and a writer; it is dropped (and the socket closed) with the last half.
pub(crate) fn split(stream: WsStream) -> (WriteHalf, ReadHalf) {
    let both = Arc::new(Mutex::new(Both { stream, closing: false }));
    (WriteHalf(both.clone()), ReadHalf(both))
}

/// Held for one poll, never across an await: a poisoned lock only means a panic elsewhere mid-poll.
fn lock(both: &Mutex<Both>) -> MutexGuard<'_, Both> {
    both.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A look at the socket under either half, for the stall watch.
pub(crate) struct Probe(Arc<Mutex<Both>>);

impl Probe {
    /// Since when the peer has read nothing of what waits to be written, if it has stopped.
    pub(crate) fn write_stalled_since(&self) -> Option<std::time::Instant> {
        lock(&self.0).stream.get_mut().stalled_since()
    }

    /// End the TCP connection at once (see [`Wire::shut_down_now`]).
    pub(crate) fn shut_down_now(&self) {
        lock(&self.0).stream.get_ref().shut_down_now();
    }
}

impl ReadHalf {
    pub(crate) fn probe(&self) -> Probe {
        Probe(self.0.clone())
    }
}

impl WriteHalf {
    pub(crate) fn probe(&self) -> Probe {
        Probe(self.0.clone())
    }
}

#[cfg(test)]
impl ReadHalf {
    /// How many frames the stream took out past tungstenite.
    pub(crate) fn frames_taken(&self) -> usize {
        lock(&self.0).stream.get_ref().frames_taken()
    }
}

impl Stream for ReadHalf {
    type Item = Result<WireMessage, WsProtocolError>;

    /// tungstenite's next message, or, in place of the empty binary message that stands for a payload `wire` took out
    /// of the stream, that payload once it is read.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut both = lock(&self.0);
        if !both.stream.get_ref().is_taken_announced() {
            let next = ready!(Pin::new(&mut both.stream).poll_next(cx));
            if let Some(Ok(WireMessage::Close(_))) = &next {
                both.closing = true;
            }
            let stands_in = matches!(&next, Some(Ok(WireMessage::Binary(empty))) if empty.is_empty());
            if !(stands_in && both.stream.get_mut().announce_taken()) {
                return Poll::Ready(next);
            }
        }
        let payload = match ready!(both.stream.get_mut().poll_taken(cx)) {
            Ok(payload) => Ok(WireMessage::Binary(payload)),
            // As tungstenite says of a socket that ends inside a frame.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(WsProtocolError::Protocol(ProtocolError::ResetWithoutClosingHandshake))
            }
            Err(e) => Err(WsProtocolError::Io(e)),
        };
        Poll::Ready(Some(payload))
    }
}

impl Sink<WireMessage> for WriteHalf {
    type Error = WsProtocolError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut lock(&self.0).stream).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: WireMessage) -> Result<(), Self::Error> {
        let mut both = lock(&self.0);
        if let WireMessage::Close(_) = message {
            both.closing = true;
        }
        Pin::new(&mut both.stream).start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut lock(&self.0).stream).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut lock(&self.0).stream).poll_close(cx)
    }
}

impl WriteHalf {
    /// Add a data frame the host framed itself, after everything sent before it (once that is written out: the
    /// wait is the backpressure), and start writing it. It is written out whole by the next write or flush of
    /// either half, before anything else; like a message fed to tungstenite, it needs a flush to be sure to go.
    pub(crate) async fn feed_frame(&mut self, frame: Bytes) -> Result<(), WsProtocolError> {
        let mut frame = Some(frame);
        poll_fn(|cx| {
            let mut both = lock(&self.0);
            if both.closing {
                return Poll::Ready(Err(WsProtocolError::Protocol(ProtocolError::SendAfterClosing)));
            }
            // Now tungstenite's buffer and the frame before are written out: no frame is half written.
            ready!(Pin::new(&mut both.stream).poll_flush(cx))?;
            if let Some(frame) = frame.take() {
                both.stream.get_mut().put_frame(frame);
            }
            // A first write now; what the socket does not take yet waits for the next write or flush.
            let _ = Pin::new(&mut both.stream).poll_flush(cx);
            Poll::Ready(Ok(()))
        })
        .await
    }
}
