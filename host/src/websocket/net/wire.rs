//! The byte stream under tungstenite: the socket (TCP, or TLS over it), a frame the host framed itself waiting to go
//! out before whatever tungstenite writes after it, and a large binary frame read past tungstenite (see `scan`).
//!
//! A large message the guest sends is framed and masked straight out of guest memory ([`frame`], into a buffer from
//! `frame_buffer`) instead of being lifted into a `Vec` that tungstenite then copies into its write buffer and masks
//! there: two passes over the payload fewer. Such a frame waits here whole (`halves` puts it here only when tungstenite's buffer and the frame
//! before it are written out), and every write or flush through this stream writes it out first, so frames never
//! interleave.
//!
//! On the way in, every byte read goes through a [`Scanner`]. Bytes it cannot let through yet (a header not whole, a
//! large frame's header behind other frames) wait here for tungstenite's next read; a large binary frame's payload
//! is read into a buffer of its own and tungstenite gets an empty binary frame instead, whose message `halves`
//! replaces with the payload once [`Wire::poll_taken`] has all of it.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::Bytes;

use super::extension::Deflate;
use super::frame_buffer;
use super::inflate::{Inflating, Need};
use super::scan::{Found, Scanner, EMPTY_BINARY};
use super::transport::Stream;
use crate::stats::SessionStats;

/// How much tungstenite reads from the socket at once. Its buffer is this size for the connection's life, zeroed
/// before every read, so resident: what an idle connection holds. Its default, 128 KiB, was most of an idle session's
/// memory and of a burst of connects' CPU time; 16 KiB echoed no faster than 4 KiB up to 16 KiB messages (larger
/// binary ones are read past it, see `scan`), and cost 12 KiB more per session (BENCHMARKS, "what a session holds").
pub(crate) const READ_BUFFER: usize = 4 << 10;

/// How much is read at once for the inflater, into a buffer on the reader task's stack: not held while idle.
const INFLATE_READ: usize = 16 << 10;

/// The socket, with the frame waiting for it.
pub(crate) struct Wire {
    socket: Stream,
    /// What is left of a whole frame, written out before any byte that tungstenite writes after it was put here.
    frame: Option<Bytes>,
    scanner: Scanner,
    /// Bytes read from the socket that tungstenite has not been given yet, in order, before any read after them.
    held: Vec<u8>,
    /// The payload of a binary frame taken out of the stream, while it is read: tungstenite gets nothing more until
    /// it is whole and handed on.
    taken: Option<Taken>,
    /// How many frames were taken out, for the tests.
    frames_taken: usize,
    /// Since when the socket has refused writes and the peer has read nothing (see [`Wire::stalled_since`]), with
    /// the bytes the kernel then held unsent or unacknowledged.
    stalled: Option<(Instant, usize)>,
    /// The rewriting of compressed messages, once permessage-deflate is agreed on (the scanner then stands aside).
    inflating: Option<Box<Inflating>>,
    /// Where the bytes on the wire are counted, both ways.
    stats: Arc<SessionStats>,
}

struct Taken {
    payload: Vec<u8>,
    len: usize,
    /// tungstenite has read the empty frame standing in for it.
    announced: bool,
}

impl Wire {
    /// The socket of a connection that accepts messages up to `max_message` bytes, before its HTTP handshake.
    pub(crate) fn new(socket: Stream, max_message: usize, stats: Arc<SessionStats>) -> Self {
        Wire {
            socket,
            frame: None,
            scanner: Scanner::new(max_message),
            held: Vec::new(),
            taken: None,
            frames_taken: 0,
            stalled: None,
            inflating: None,
            stats,
        }
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
            let poll = Pin::new(&mut self.socket).poll_write(cx, frame);
            let written = ready!(watch_stall(&mut self.stalled, &self.socket, poll))?;
            self.stats.wire_sent(written);
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

    /// The empty binary message tungstenite just gave stands for the payload taken out, if there is one. Its bytes
    /// came last from this stream, so no other message can come between.
    pub(crate) fn announce_taken(&mut self) -> bool {
        let Some(taken) = &mut self.taken else { return false };
        taken.announced = true;
        true
    }

    /// Whether a taken payload stands in for the message tungstenite gave last, and is still being read.
    pub(crate) fn is_taken_announced(&self) -> bool {
        self.taken.as_ref().is_some_and(|taken| taken.announced)
    }

    /// Since when the peer has read nothing of what waits to be written, if it has stopped.
    ///
    /// A socket refuses writes until a good part of its buffer is free, which a peer that reads slowly but steadily
    /// may take longer than the stall timeout to free: so the peer's reading is seen in the kernel's count of bytes
    /// not yet sent or acknowledged, and any fall in it starts the clock again.
    pub(crate) fn stalled_since(&mut self) -> Option<Instant> {
        let (since, unsent_then) = self.stalled?;
        match unsent(&self.socket) {
            Some(unsent) if unsent < unsent_then => {
                let now = Instant::now();
                self.stalled = Some((now, unsent));
                Some(now)
            }
            _ => Some(since),
        }
    }

    /// End the TCP connection now, both ways, without waiting for what is unwritten: whatever is blocked on the
    /// socket (a send to a peer that does not read) wakes with an error.
    pub(crate) fn shut_down_now(&self) {
        let tcp = self.socket.get_ref();
        // SAFETY: shutdown(2) on a socket this stream owns, open while the borrow lasts; it changes no memory.
        unsafe { libc::shutdown(std::os::fd::AsRawFd::as_raw_fd(tcp), libc::SHUT_RDWR) };
    }

    /// The opening handshake is over: the frames start here, compressed as `deflate` says if it was agreed on.
    pub(crate) fn opened(&mut self, deflate: Option<&Deflate>) {
        self.scanner.opened();
        if let Some(deflate) = deflate {
            self.scanner.lose();
            let held = std::mem::take(&mut self.held);
            self.inflating = Some(Box::new(Inflating::new(deflate, self.scanner.max_message(), held)));
        }
    }

    /// Read through the rewriting of compressed messages (see `inflate`).
    fn poll_inflated(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let inflating = self.inflating.as_mut().expect("called once compression is agreed on");
        let start = buf.filled().len();
        loop {
            match inflating.rewrite(buf) {
                // What came before the failure goes to tungstenite first: the failure waits for the next read.
                Err(failure) if buf.filled().len() > start => {
                    inflating.fail(failure);
                    return Poll::Ready(Ok(()));
                }
                Err(failure) => return Poll::Ready(Err(io::Error::other(failure))),
                Ok(_) if buf.filled().len() > start => return Poll::Ready(Ok(())),
                Ok(Need::Room) => return Poll::Ready(Ok(())),
                Ok(Need::Input) => {}
            }
            // Read here, then added to the inflater's bytes: an idle connection holds no buffer while it waits.
            let mut bytes = [MaybeUninit::uninit(); INFLATE_READ];
            let mut read = ReadBuf::uninit(&mut bytes);
            ready!(Pin::new(&mut self.socket).poll_read(cx, &mut read))?;
            inflating.add(read.filled());
            let got = read.filled().len();
            if got == 0 {
                return Poll::Ready(Ok(()));
            }
            self.stats.wire_received(got);
        }
    }

    /// How many frames were taken out of the stream so far.
    #[cfg(test)]
    pub(crate) fn frames_taken(&self) -> usize {
        self.frames_taken
    }

    /// Read the rest of the payload taken out of the stream; the socket ending first is an error.
    pub(crate) fn poll_taken(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Bytes>> {
        let Some(taken) = &mut self.taken else { return Poll::Ready(Err(io::Error::other("no frame taken"))) };
        while taken.payload.len() < taken.len {
            let wanted = taken.len - taken.payload.len();
            if !self.held.is_empty() {
                let from_held = wanted.min(self.held.len());
                taken.payload.extend(self.held.drain(..from_held));
                continue;
            }
            let mut read = ReadBuf::uninit(&mut taken.payload.spare_capacity_mut()[..wanted]);
            ready!(Pin::new(&mut self.socket).poll_read(cx, &mut read))?;
            let got = read.filled().len();
            if got == 0 {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            self.stats.wire_received(got);
            // SAFETY: the socket initialized the `got` bytes after the payload's end (ReadBuf's filled part).
            unsafe { taken.payload.set_len(taken.payload.len() + got) };
        }
        let payload = self.taken.take().expect("checked above").payload;
        Poll::Ready(Ok(payload.into()))
    }

    /// Take the payload of the frame whose header starts `buf` at `start`, `header` bytes long: what `buf` has of it
    /// now, the rest later ([`Wire::poll_taken`]). tungstenite gets an empty binary frame in its place.
    fn take(&mut self, buf: &mut ReadBuf<'_>, start: usize, header: usize, len: usize) {
        let read = &buf.filled()[start + header..];
        let now = read.len().min(len);
        let mut payload = Vec::with_capacity(len);
        payload.extend_from_slice(&read[..now]);
        hold_back(&mut self.held, &read[now..]);
        buf.set_filled(start);
        buf.put_slice(&EMPTY_BINARY);
        self.taken = Some(Taken { payload, len, announced: false });
        self.frames_taken += 1;
    }
}

/// Note when the socket starts and stops refusing writes.
fn watch_stall<T>(
    stalled: &mut Option<(Instant, usize)>,
    socket: &Stream,
    poll: Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match &poll {
        Poll::Pending => {
            stalled.get_or_insert_with(|| (Instant::now(), unsent(socket).unwrap_or(usize::MAX)));
        }
        Poll::Ready(_) => *stalled = None,
    }
    poll
}

/// The bytes the kernel holds for the socket, not yet sent or not yet acknowledged by the peer (`TIOCOUTQ`).
fn unsent(socket: &Stream) -> Option<usize> {
    let mut unsent: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int through the pointer, on a socket this stream owns.
    let done = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(socket.get_ref()), libc::TIOCOUTQ, &mut unsent) };
    (done == 0).then(|| usize::try_from(unsent).unwrap_or(0))
}

/// Put `bytes`, read after everything tungstenite was given, back in front of those `held` already.
fn hold_back(held: &mut Vec<u8>, bytes: &[u8]) {
    held.splice(..0, bytes.iter().copied());
}

impl AsyncRead for Wire {
    /// Bytes held back first, then the socket's; only as far as the scanner lets through.
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.inflating.is_some() {
            return this.poll_inflated(cx, buf);
        }
        if this.taken.is_some() {
            // `halves` hands the taken payload on before it reads again.
            return Poll::Ready(Err(io::Error::other("read while a taken frame is unfinished")));
        }
        let start = buf.filled().len();
        loop {
            let before = buf.filled().len();
            if !this.held.is_empty() {
                let from_held = this.held.len().min(buf.remaining());
                buf.put_slice(&this.held[..from_held]);
                this.held.drain(..from_held);
            } else {
                let read = Pin::new(&mut this.socket).poll_read(cx, buf);
                this.stats.wire_received(buf.filled().len() - before);
                if !matches!(read, Poll::Ready(Ok(()))) || buf.filled().len() == before {
                    // Waiting, failed or ended: a header begun before waits with the rest of the held bytes.
                    if buf.filled().len() > start && !matches!(read, Poll::Ready(Ok(()))) {
                        hold_back(&mut this.held, &buf.filled()[start..]);
                        buf.set_filled(start);
                    }
                    return read;
                }
            }
            match this.scanner.scan(&buf.filled()[start..]) {
                Found::Pass => return Poll::Ready(Ok(())),
                Found::Until(0) if buf.remaining() > 0 => continue,
                Found::Until(0) => {
                    // No room to make a header whole in: give tungstenite what there is, and scan no further.
                    this.scanner.lose();
                    return Poll::Ready(Ok(()));
                }
                Found::Until(through) => {
                    hold_back(&mut this.held, &buf.filled()[start + through..]);
                    buf.set_filled(start + through);
                    return Poll::Ready(Ok(()));
                }
                Found::Take { header, len } => {
                    this.take(buf, start, header, len);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_frame(cx))?;
        let this = &mut *self;
        let poll = Pin::new(&mut this.socket).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = poll {
            this.stats.wire_sent(written);
        }
        watch_stall(&mut this.stalled, &this.socket, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_frame(cx))?;
        let this = &mut *self;
        let poll = Pin::new(&mut this.socket).poll_flush(cx);
        watch_stall(&mut this.stalled, &this.socket, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_frame(cx))?;
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

/// A whole, final, masked client frame of `payload` (RFC 6455, 5.2-5.3), its RSV1 bit set when the payload is
/// `compressed` (RFC 7692).
pub(crate) fn frame(opcode: Data, payload: &[u8], mask: [u8; 4], compressed: bool) -> Bytes {
    let header =
        FrameHeader { opcode: OpCode::Data(opcode), mask: Some(mask), rsv1: compressed, ..FrameHeader::default() };
    let length = payload.len() as u64;
    let mut frame = frame_buffer::take(header.len(length) + payload.len());
    header.format(length, &mut frame).expect("a Vec takes any write");
    let start = frame.len();
    // Masked on the way from guest memory, 64 bytes at a time (a loop the compiler turns into vector moves): faster
    // than copying first and masking in place, which passes over the payload twice (measured: 65-70 against 81-89 us
    // for 1 MiB).
    let mut block_mask = [0; 64];
    for (i, byte) in block_mask.iter_mut().enumerate() {
        *byte = mask[i % 4];
    }
    let body = &mut frame.spare_capacity_mut()[..payload.len()];
    let mut to = body.chunks_exact_mut(64);
    let mut from = payload.chunks_exact(64);
    for (to, from) in (&mut to).zip(&mut from) {
        for i in 0..64 {
            to[i].write(from[i] ^ block_mask[i]);
        }
    }
    // The tail starts at a multiple of 64, so at the mask's first byte.
    for ((to, from), mask) in to.into_remainder().iter_mut().zip(from.remainder()).zip(mask.iter().cycle()) {
        to.write(from ^ mask);
    }
    // SAFETY: the loops above wrote every byte of the payload's length after `start`.
    unsafe { frame.set_len(start + payload.len()) };
    frame_buffer::recycled(frame)
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    use super::*;

    /// The frame is byte for byte what tungstenite makes of the same payload and mask, for each length format
    /// (7-bit, 16-bit, 64-bit) and for payloads that end inside a masking word and on its edge.
    #[test]
    fn frames_match_tungstenites() {
        let mask = [0x12, 0x9a, 0xfe, 0x07];
        for len in [0, 1, 7, 125, 126, 4095, 4097, 65535, 65536, 65536 + 4096 + 5, 1 << 20] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            for opcode in [Data::Binary, Data::Text] {
                let mut expected = Frame::message(payload.clone(), OpCode::Data(opcode), true);
                expected.header_mut().mask = Some(mask);
                let mut formatted = Vec::new();
                expected.format(&mut formatted).unwrap();
                assert!(frame(opcode, &payload, mask, false) == formatted, "{len} bytes, {opcode:?}");
            }
        }
    }
}
