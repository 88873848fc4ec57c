//! Inflating the compressed messages a server sends, below tungstenite, when permessage-deflate was agreed on (RFC
//! 7692, 7.2.2).
//!
//! tungstenite knows nothing of compression and fails any frame with its RSV1 bit set. So the incoming byte stream
//! is rewritten on its way to tungstenite: a compressed frame's payload is inflated a piece at a time, each piece
//! handed on as a fragment of the same message (the first with the message's opcode, the rest as continuations, a
//! last empty one final), while uncompressed messages and control frames pass unchanged. tungstenite then joins the
//! fragments, checks text for UTF-8 and answers pings as it always does.
//!
//! The size limit applies to what a message inflates to, counted while inflating: no more than the limit and one
//! piece is ever inflated, so a small frame that would inflate to gigabytes (a decompression bomb) ends the connection
//! the way a message over the limit does (1009), with memory bounded by the limit. A frame this layer does not follow
//! (masked, reserved bits, an unknown opcode, a continuation out of place) passes unchanged from its header on, and
//! tungstenite fails the connection exactly as it would have.

use std::fmt;

use tokio::io::ReadBuf;
use zlib_rs::{Inflate, InflateFlush, Status};

use super::extension;
use super::header::{Header, Parsed, RSV1};

/// What RFC 7692 has the receiver put back at the end of each message before inflating it.
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Why a compressed message could not be handed on: it travels to the reader inside the `io::Error` of the read.
#[derive(Clone, Copy, Debug)]
pub(crate) enum InflateFailure {
    /// It inflates to more than the largest message the connection accepts.
    TooLarge { max: usize },
    /// Its payload is not valid deflate data.
    Corrupt(&'static str),
}

impl fmt::Display for InflateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateFailure::TooLarge { max } => write!(f, "a compressed message inflates to more than {max} bytes"),
            InflateFailure::Corrupt(why) => write!(f, "a compressed message is not valid deflate data: {why}"),
        }
    }
}

impl std::error::Error for InflateFailure {}

/// The rewriting of one connection's incoming frames.
pub(crate) struct Inflating {
    /// zlib's state: made at the first compressed message (an idle connection holds none), dropped after each message
    /// when the server starts each one afresh.
    zlib: Option<Box<Inflate>>,
    window_bits: u8,
    no_context_takeover: bool,
    max_message: usize,
    /// Bytes read from the socket; those from `at` on are not handed on yet. Held only while there are some.
    raw: Vec<u8>,
    at: usize,
    frame: Frame,
    /// The data message under way, if any.
    message: Option<Under>,
    /// Inflating failed: every read from now on fails so (the failure comes after what was handed on before it).
    failed: Option<InflateFailure>,
}

/// Passing everything from here on: after a frame this layer does not follow, tungstenite fails the connection.
const LOST: Frame = Frame::Pass(u64::MAX);

#[derive(Clone, Copy)]
enum Frame {
    /// Between frames.
    Header,
    /// A frame passing unchanged: this many bytes more ([`LOST`]: all of them).
    Pass(u64),
    /// A compressed frame's payload: this many bytes more, then, if it is final, the end of its message.
    Inflate { left: u64, fin: bool },
    /// The message's payload is all in: the tail put back, `fed` bytes of it so far, and the last fragment.
    Finish { fed: usize },
}

/// A fragmented data message under way: one that passes unchanged, or a compressed one.
#[derive(Clone, Copy)]
enum Under {
    Plain,
    Compressed(Compressed),
}

#[derive(Clone, Copy)]
struct Compressed {
    /// The opcode its first fragment carries (text or binary).
    opcode: u8,
    /// A fragment of it went to tungstenite: the rest are continuations.
    started: bool,
    inflated: usize,
    /// Its deflate data ended with a final block: whatever follows is not inflated.
    stream_ended: bool,
    /// Some compressed bytes of it came: an empty payload is an empty message, and zlib is left as it was.
    fed: bool,
}

/// What to inflate: the next raw bytes (this many), or the rest of the tail (after this many bytes of it).
enum Input {
    Raw(usize),
    Tail(usize),
}

/// What a rewriting step needs next.
#[derive(Debug, PartialEq)]
pub(crate) enum Need {
    /// More bytes from the socket.
    Input,
    /// Room in tungstenite's buffer: hand on what is there.
    Room,
}

impl Inflating {
    /// The rewriting for what the server accepted, on a connection that accepts messages up to `max_message` bytes;
    /// `held` are the bytes already read after the handshake.
    pub(crate) fn new(accepted: &extension::Deflate, max_message: usize, held: Vec<u8>) -> Self {
        Inflating {
            zlib: None,
            // A window at least as large as the server's inflates its data; zlib's raw inflate starts at 9 bits.
            window_bits: accepted.server_max_window_bits.max(9),
            no_context_takeover: accepted.server_no_context_takeover,
            max_message,
            raw: held,
            at: 0,
            frame: Frame::Header,
            message: None,
            failed: None,
        }
    }

    /// Bytes just read from the socket, after those not handed on yet.
    pub(crate) fn add(&mut self, bytes: &[u8]) {
        self.raw.drain(..self.at);
        self.at = 0;
        self.raw.extend_from_slice(bytes);
    }

    /// Every read from now on fails with `failure`: it came after what is being handed on.
    pub(crate) fn fail(&mut self, failure: InflateFailure) {
        self.failed = Some(failure);
    }

    /// Rewrite raw bytes into `buf` until it is full or they run out.
    pub(crate) fn rewrite(&mut self, buf: &mut ReadBuf<'_>) -> Result<Need, InflateFailure> {
        if let Some(failure) = self.failed {
            return Err(failure);
        }
        loop {
            let input_left = self.raw.len() - self.at;
            match self.frame {
                Frame::Pass(left) => {
                    let count = (input_left as u64).min(left).min(buf.remaining() as u64) as usize;
                    buf.put_slice(&self.raw[self.at..self.at + count]);
                    self.at += count;
                    if left == count as u64 {
                        self.frame = Frame::Header;
                        continue;
                    }
                    self.frame = Frame::Pass(left - count as u64);
                    if buf.remaining() == 0 {
                        return Ok(Need::Room);
                    }
                    if self.at == self.raw.len() {
                        return Ok(self.need_input());
                    }
                }
                Frame::Header => match Header::parse(&self.raw[self.at..]) {
                    Parsed::Short => return Ok(self.need_input()),
                    Parsed::Unknown => self.frame = LOST,
                    Parsed::Whole(header) => self.frame = self.follow(header),
                },
                Frame::Inflate { left, fin } => {
                    if left == 0 {
                        self.frame = if fin { Frame::Finish { fed: 0 } } else { Frame::Header };
                        continue;
                    }
                    if input_left == 0 {
                        return Ok(self.need_input());
                    }
                    let available = (input_left as u64).min(left) as usize;
                    let Some(consumed) = self.inflate_into(Input::Raw(available), buf)? else { return Ok(Need::Room) };
                    self.at += consumed;
                    self.frame = Frame::Inflate { left: left - consumed as u64, fin };
                }
                Frame::Finish { fed } => {
                    let before = buf.filled().len();
                    let Some(consumed) = self.inflate_into(Input::Tail(fed), buf)? else { return Ok(Need::Room) };
                    let Some(Under::Compressed(message)) = self.message else { unreachable!("a compressed message") };
                    let fed = fed + consumed;
                    let drained =
                        message.stream_ended || !message.fed || (fed == TAIL.len() && buf.filled().len() == before);
                    if !drained {
                        self.frame = Frame::Finish { fed };
                        continue;
                    }
                    if buf.remaining() < 2 {
                        self.frame = Frame::Finish { fed };
                        return Ok(Need::Room);
                    }
                    let opcode = if message.started { 0 } else { message.opcode };
                    buf.put_slice(&[0x80 | opcode, 0]);
                    if self.no_context_takeover || message.stream_ended {
                        self.zlib = None;
                    }
                    self.message = None;
                    self.frame = Frame::Header;
                }
            }
        }
    }

    /// Out of raw bytes: give their buffer back when nothing is half read (an idle connection holds none).
    fn need_input(&mut self) -> Need {
        if self.at == self.raw.len() {
            self.raw = Vec::new();
            self.at = 0;
        }
        Need::Input
    }

    /// What to do with the frame whose header starts the raw bytes.
    fn follow(&mut self, header: Header) -> Frame {
        let whole = header.size as u64 + header.len;
        let control = header.opcode & 0x08 != 0;
        let rsv1 = header.rsv & RSV1 != 0;
        // Masked, RSV2 or RSV3, RSV1 on a control frame: tungstenite refuses them.
        if header.masked || header.rsv & !RSV1 != 0 || (control && rsv1) {
            return LOST;
        }
        if control {
            return Frame::Pass(whole);
        }
        match (header.opcode, self.message) {
            (1 | 2, None) if rsv1 => {
                let opcode = header.opcode;
                let compressed = Compressed { opcode, started: false, inflated: 0, stream_ended: false, fed: false };
                self.message = Some(Under::Compressed(compressed));
                self.at += header.size;
                Frame::Inflate { left: header.len, fin: header.fin }
            }
            (1 | 2, None) => {
                self.message = (!header.fin).then_some(Under::Plain);
                Frame::Pass(whole)
            }
            (0, Some(Under::Plain)) if !rsv1 => {
                if header.fin {
                    self.message = None;
                }
                Frame::Pass(whole)
            }
            (0, Some(Under::Compressed(_))) if !rsv1 => {
                self.at += header.size;
                Frame::Inflate { left: header.len, fin: header.fin }
            }
            // A new message inside one, a continuation of none, RSV1 on a continuation, a reserved opcode.
            _ => LOST,
        }
    }

    /// Inflate `input` into `buf` as one fragment of the message, as much as there is room for: how many bytes of
    /// `input` went in, or `None` when `buf` has no room for a fragment.
    fn inflate_into(&mut self, input: Input, buf: &mut ReadBuf<'_>) -> Result<Option<usize>, InflateFailure> {
        let Some(Under::Compressed(message)) = &mut self.message else { unreachable!("a compressed message") };
        let input = match input {
            Input::Raw(count) => {
                message.fed |= count > 0;
                &self.raw[self.at..self.at + count]
            }
            // An empty payload (no compressed byte at all) is an empty message: the tail alone would leave zlib
            // halfway into a block that the next message's bytes would then be read as.
            Input::Tail(_) if !message.fed => return Ok(Some(0)),
            Input::Tail(fed) => &TAIL[fed..],
        };
        if message.stream_ended {
            // After a final deflate block nothing more is data: what follows is skipped, not inflated.
            return Ok(Some(input.len()));
        }
        // A 4-byte header (16-bit length) when there is room for more than 125 bytes, else a 2-byte one.
        let room = buf.remaining();
        let (header_size, most) = if room >= 4 + 126 { (4, (room - 4).min(u16::MAX as usize)) } else { (2, 125) };
        if room < header_size + 1 {
            return Ok(None);
        }
        let most = most.min(room - header_size).min((self.max_message - message.inflated).saturating_add(1));
        let window_bits = self.window_bits;
        let zlib = self.zlib.get_or_insert_with(|| Box::new(Inflate::new(false, window_bits)));
        let start = buf.filled().len();
        let space = &mut buf.initialize_unfilled_to(header_size + most)[header_size..];
        let (before_in, before_out) = (zlib.total_in(), zlib.total_out());
        let status = zlib.decompress(input, space, InflateFlush::SyncFlush);
        let (consumed, produced) = ((zlib.total_in() - before_in) as usize, (zlib.total_out() - before_out) as usize);
        match status {
            Ok(Status::StreamEnd) => message.stream_ended = true,
            Ok(Status::Ok | Status::BufError) => {}
            Err(_) => return Err(InflateFailure::Corrupt(zlib.error_message().unwrap_or("inflate failed"))),
        }
        if produced == 0 {
            return Ok(Some(consumed));
        }
        message.inflated += produced;
        if message.inflated > self.max_message {
            return Err(InflateFailure::TooLarge { max: self.max_message });
        }
        let opcode = if message.started { 0 } else { message.opcode };
        message.started = true;
        let unfilled = buf.initialize_unfilled_to(header_size + produced);
        if produced < 126 {
            // The shortest length form, as RFC 6455 (5.2) asks: the payload moves up to a 2-byte header.
            unfilled.copy_within(header_size..header_size + produced, 2);
            unfilled[..2].copy_from_slice(&[opcode, produced as u8]);
            buf.set_filled(start + 2 + produced);
        } else {
            unfilled[..4].copy_from_slice(&[opcode, 126, (produced >> 8) as u8, produced as u8]);
            buf.set_filled(start + 4 + produced);
        }
        Ok(Some(consumed))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Inflate one compressed message payload (the tail put back), as a receiver does.
    pub(crate) fn inflate_message(inflater: &mut Inflate, payload: &[u8]) -> Vec<u8> {
        let mut input = payload.to_vec();
        input.extend_from_slice(&TAIL);
        let mut out = vec![0; 1 << 20];
        let before = (inflater.total_in(), inflater.total_out());
        inflater.decompress(&input, &mut out, InflateFlush::SyncFlush).unwrap();
        assert_eq!((inflater.total_in() - before.0) as usize, input.len());
        out.truncate((inflater.total_out() - before.1) as usize);
        out
    }

    fn deflate_raw(payload: &[u8]) -> Vec<u8> {
        let mut deflating = super::super::deflate::Deflating::new(&accepted(false)).unwrap();
        deflating.compress(payload)
    }

    fn accepted(no_context_takeover: bool) -> extension::Deflate {
        extension::Deflate {
            server_no_context_takeover: no_context_takeover,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        super::super::wire_tests::frame(first, payload)
    }

    /// The frames tungstenite gets from `input`, read in pieces of `piece` bytes into buffers of `room` bytes, as
    /// (first byte, payload) pairs, or the failure.
    fn rewrite_all(input: &[u8], piece: usize, room: usize, max: usize) -> Result<Vec<(u8, Vec<u8>)>, String> {
        let mut inflating = Inflating::new(&accepted(false), max, Vec::new());
        let mut out = Vec::new();
        let mut pieces = input.chunks(piece);
        loop {
            let mut space = vec![0u8; room];
            let mut buf = ReadBuf::new(&mut space);
            match inflating.rewrite(&mut buf).map_err(|e| e.to_string())? {
                Need::Room => {}
                Need::Input => match pieces.next() {
                    Some(piece) => inflating.add(piece),
                    None if buf.filled().is_empty() => break,
                    None => {}
                },
            }
            out.extend_from_slice(buf.filled());
        }
        let mut frames = Vec::new();
        let mut rest = &out[..];
        while !rest.is_empty() {
            let Parsed::Whole(header) = Header::parse(rest) else { panic!("whole frames") };
            assert!(header.rsv == 0 && !header.masked);
            let end = header.size + header.len as usize;
            frames.push((rest[0], rest[header.size..end].to_vec()));
            rest = &rest[end..];
        }
        Ok(frames)
    }

    /// The messages in `frames`, joined as tungstenite joins them: (opcode, payload), control frames as they are.
    fn messages(frames: &[(u8, Vec<u8>)]) -> Vec<(u8, Vec<u8>)> {
        let mut messages: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut open: Option<(u8, Vec<u8>)> = None;
        for (first, payload) in frames {
            let (fin, opcode) = (first & 0x80 != 0, first & 0x0f);
            if opcode >= 8 {
                messages.push((opcode, payload.clone()));
                continue;
            }
            let (kind, mut joined) = match (opcode, open.take()) {
                (0, Some(open)) => open,
                (1 | 2, None) => (opcode, Vec::new()),
                other => panic!("out of place: {other:?}"),
            };
            joined.extend_from_slice(payload);
            if fin {
                messages.push((kind, joined));
            } else {
                open = Some((kind, joined));
            }
        }
        assert!(open.is_none());
        messages
    }

    #[test]
    fn compressed_messages_come_out_whole_whatever_the_reads_and_buffers() {
        let json = br#"{"symbol":"ACME","price":101.25,"size":300}"#.repeat(500);
        let compressed = deflate_raw(&json);
        let mut stream = frame(0xc1, &compressed);
        stream.extend(frame(0x89, b"ping"));
        stream.extend(frame(0x82, b"plain"));
        // One message in three frames, a ping between them.
        let (a, b) = compressed.split_at(compressed.len() / 3);
        stream.extend(frame(0x41, a));
        stream.extend(frame(0x89, b"p2"));
        stream.extend(frame(0x00, &b[..1]));
        stream.extend(frame(0x80, &b[1..]));
        stream.extend(frame(0xc2, &deflate_raw(b"")));
        for (piece, room) in [(1 << 20, 16 << 10), (1, 16 << 10), (7, 100), (3000, 5), (1 << 20, 129)] {
            let frames = rewrite_all(&stream, piece, room, 1 << 20).unwrap();
            let got = messages(&frames);
            let expected: Vec<(u8, Vec<u8>)> = vec![
                (1, json.clone()),
                (9, b"ping".to_vec()),
                (2, b"plain".to_vec()),
                (9, b"p2".to_vec()),
                (1, json.clone()),
                (2, Vec::new()),
            ];
            assert!(got == expected, "pieces of {piece}, room {room}");
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = deflate_raw(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100 << 10, "{}", bomb.len());
        let failed = rewrite_all(&frame(0xc2, &bomb), 1 << 20, 16 << 10, 1 << 20).unwrap_err();
        assert!(failed.contains("more than 1048576 bytes"), "{failed}");
        assert!(rewrite_all(&frame(0xc2, &deflate_raw(&vec![0u8; 1 << 20])), 4096, 16 << 10, 1 << 20).is_ok());
    }

    #[test]
    fn frames_it_does_not_follow_pass_unchanged() {
        let compressed = deflate_raw(b"hello hello hello hello");
        for (what, stream) in [
            ("RSV1 on a continuation", [frame(0x41, &compressed[..2]), frame(0xc0, &compressed[2..])].concat()),
            ("RSV1 on a ping", frame(0xc9, b"x")),
            ("RSV2", frame(0xa1, b"x")),
            ("a continuation of nothing", frame(0x80, b"x")),
            ("a new message inside one", [frame(0x41, &compressed), frame(0x81, b"x")].concat()),
        ] {
            let mut inflating = Inflating::new(&accepted(false), 1 << 20, stream.clone());
            let mut space = vec![0u8; 1 << 16];
            let mut buf = ReadBuf::new(&mut space);
            inflating.rewrite(&mut buf).unwrap();
            assert!(buf.filled().ends_with(&stream[stream.len() - 3..]), "{what}: the bad frame passes as it came");
        }
        let corrupt = rewrite_all(&frame(0xc1, &[0xff, 0xff, 0xff]), 100, 1000, 100).unwrap_err();
        assert!(corrupt.contains("not valid deflate data"), "{corrupt}");
    }

    #[test]
    fn an_empty_compressed_payload_is_an_empty_message_and_leaves_the_context_alone() {
        let mut deflating = super::super::deflate::Deflating::new(&accepted(false)).unwrap();
        let first = deflating.compress(b"hello hello hello hello hello");
        let second = deflating.compress(b"hello hello hello hello hello");
        let stream = [frame(0xc1, &first), frame(0xc1, b""), frame(0xc1, &second)].concat();
        let got = messages(&rewrite_all(&stream, 5, 1000, usize::MAX).unwrap());
        let hello = b"hello hello hello hello hello".to_vec();
        assert!(got == vec![(1, hello.clone()), (1, Vec::new()), (1, hello)], "{got:?}");
    }

    #[test]
    fn the_messages_before_a_failure_are_handed_on_first() {
        let mut inflating = Inflating::new(
            &accepted(false),
            1 << 20,
            [frame(0xc1, &deflate_raw(b"first")), frame(0xc1, &[0xff, 0xff, 0xff])].concat(),
        );
        let mut space = vec![0u8; 1 << 16];
        let mut buf = ReadBuf::new(&mut space);
        let failed = inflating.rewrite(&mut buf).unwrap_err();
        assert!(buf.filled().windows(5).any(|w| w == b"first"), "the first message was written before the failure");
        inflating.fail(failed);
        assert!(inflating.rewrite(&mut ReadBuf::new(&mut [0; 64])).is_err(), "and the failure stays");
    }

    #[test]
    fn without_context_takeover_the_state_goes_after_each_message() {
        let mut inflating = Inflating::new(&accepted(true), 1 << 20, frame(0xc1, &deflate_raw(b"hello there")));
        let mut space = vec![0u8; 1 << 16];
        let mut buf = ReadBuf::new(&mut space);
        assert_eq!(inflating.rewrite(&mut buf).unwrap(), Need::Input);
        assert!(inflating.zlib.is_none() && inflating.raw.capacity() == 0, "nothing held between messages");
    }
}
