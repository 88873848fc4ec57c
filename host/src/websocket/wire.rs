//! The byte stream under tungstenite: the socket (TCP, or TLS over it), and frames the host framed itself waiting to
//! go out before whatever tungstenite writes after them.
//!
//! A large message the guest sends is framed and masked straight out of guest memory (see `sent`) instead of being
//! lifted into a `Vec` that tungstenite then copies into its write buffer and masks there: two passes over the
//! payload fewer. Such a frame is queued here whole (`halves` queues it only when tungstenite's own buffer is empty),
//! and every write or flush through this stream writes the queue out first, so frames never interleave.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Bytes;

use super::transport::Stream;

/// The socket, with the frames queued for it.
pub(crate) struct Wire {
    socket: Stream,
    /// Whole frames, each written out before any byte that tungstenite writes after it was queued.
    frames: VecDeque<Bytes>,
}

impl Wire {
    pub(crate) fn new(socket: Stream) -> Self {
        Wire { socket, frames: VecDeque::new() }
    }

    /// Queue a whole frame. The caller makes sure no frame of tungstenite's is half written at this point.
    pub(crate) fn push_frame(&mut self, frame: Bytes) {
        self.frames.push_back(frame);
    }

    /// Write the queued frames out, as far as the socket takes them.
    fn poll_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(frame) = self.frames.front_mut() {
            let written = ready!(Pin::new(&mut self.socket).poll_write(cx, frame))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let _ = frame.split_to(written);
            if frame.is_empty() {
                self.frames.pop_front();
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Wire {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Wire {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_frames(cx))?;
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_frames(cx))?;
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_frames(cx))?;
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
