//! The byte stream under tungstenite: the socket (TCP, or TLS over it), and a frame the host framed itself waiting to
//! go out before whatever tungstenite writes after it.
//!
//! A large message the guest sends is framed and masked straight out of guest memory (see `sent`) instead of being
//! lifted into a `Vec` that tungstenite then copies into its write buffer and masks there: two passes over the
//! payload fewer. Such a frame waits here whole (`halves` puts it here only when tungstenite's buffer and the frame
//! before it are written out), and every write or flush through this stream writes it out first, so frames never
//! interleave.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Bytes;

use super::transport::Stream;

/// The socket, with the frame waiting for it.
pub(crate) struct Wire {
    socket: Stream,
    /// What is left of a whole frame, written out before any byte that tungstenite writes after it was put here.
    frame: Option<Bytes>,
}

impl Wire {
    pub(crate) fn new(socket: Stream) -> Self {
        Wire { socket, frame: None }
    }

    /// Put a whole frame here. The caller makes sure no frame of tungstenite's is half written at this point, and
    /// that the frame before it is written out (a flush does both).
    pub(crate) fn put_frame(&mut self, frame: Bytes) {
        debug_assert!(self.frame.is_none(), "the frame before is written out first");
        self.frame = Some(frame);
    }

    /// Write the waiting frame out, as far as the socket takes it.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(frame) = &mut self.frame {
            let written = ready!(Pin::new(&mut self.socket).poll_write(cx, frame))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let _ = frame.split_to(written);
            if frame.is_empty() {
                self.frame = None;
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
        ready!(self.poll_frame(cx))?;
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_frame(cx))?;
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_frame(cx))?;
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}
