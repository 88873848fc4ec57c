//! Where each frame starts in the bytes read from the socket, so that `wire` can take a large binary frame's payload
//! out of the stream and read it straight into a buffer of its own.
//!
//! tungstenite reads a frame 4 KiB at a time (`wire::READ_BUFFER`), zeroing each piece of its buffer first: for a
//! 1 MiB message, 256 system calls and a pass over the payload that the copy into guest memory makes again anyway.
//! Taken out here, the payload is read as fast as the socket has it, into memory nothing else touched, and tungstenite
//! sees an empty binary frame in its place (`halves` hands the payload on in that message's stead).
//!
//! Only what tungstenite would accept as a whole message is taken: a final, unmasked binary frame without reserved
//! bits, outside a fragmented message, before the peer's close frame, within the size limit. Anything else, and all
//! the bytes after a header this scan cannot make sense of, go to tungstenite unchanged, which fails the connection
//! exactly as it did.

use super::header::{Header, Parsed};
use super::LARGE_PAYLOAD;

/// Where the scan is in a line of the HTTP response head: the frames start right after its first empty line.
const LINE_STARTED: u8 = 0;
const LINE_EMPTY: u8 = 1;
const LINE_EMPTY_CR: u8 = 2;
const HEAD_ENDED: u8 = 3;

/// The start of the response's status line, as far as it tells whether the server switches protocols.
#[derive(Default)]
struct StatusLine {
    start: [u8; 12],
    len: usize,
}

impl StatusLine {
    fn push(&mut self, byte: u8) {
        // httparse skips empty lines before the status line.
        if self.len == 0 && matches!(byte, b'\r' | b'\n') {
            return;
        }
        if let Some(slot) = self.start.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    /// `HTTP/1.1 101`: anything else is a refusal, whose body (as far as it came with the head) tungstenite hands
    /// on with the response, for the guest to see why.
    fn switches(&self) -> bool {
        self.start.get(8..12) == Some(b" 101")
    }
}

/// The frame tungstenite sees in place of a taken one: final, binary, empty.
pub(crate) const EMPTY_BINARY: [u8; 2] = [0x82, 0x00];

/// Follows the frames of one connection's incoming byte stream.
pub(crate) struct Scanner {
    state: State,
    /// The largest message the connection accepts: a larger frame is left to tungstenite, which refuses it.
    max_message: usize,
}

enum State {
    /// In the HTTP response head, where the last line is: a new line counts as empty until a byte other than the
    /// end of line comes. With the first bytes of the status line, to tell a refusal from the upgrade.
    Head(u8, StatusLine),
    Frames {
        /// Payload bytes of the current frame still to pass by.
        payload_left: u64,
        /// Inside a fragmented data message: its frames are left to tungstenite.
        fragmented: bool,
        /// The peer's close frame went by: nothing after it is taken.
        closed: bool,
    },
    /// A header this scan does not follow (tungstenite will fail the connection): everything passes from here on.
    Lost,
}

/// What a scan of newly read bytes found.
#[derive(Debug, PartialEq)]
pub(crate) enum Found {
    /// They can all go to tungstenite.
    Pass,
    /// Only the first `.0` can: the rest starts a header that is not whole yet, a large frame's header, or (after the
    /// response head) the frames, and waits to be scanned again.
    Until(usize),
    /// They start with the header of a frame to take, `header` bytes long, with a payload of `len`.
    Take { header: usize, len: usize },
}

impl Scanner {
    /// A scanner for a connection whose handshake response comes first.
    pub(crate) fn new(max_message: usize) -> Self {
        Scanner { state: State::Head(LINE_STARTED, StatusLine::default()), max_message }
    }

    /// Scan bytes just read, which follow those scanned before. The scanner moves past the bytes it lets through;
    /// the caller gives the others again, with more after them, next time.
    pub(crate) fn scan(&mut self, bytes: &[u8]) -> Found {
        match &mut self.state {
            State::Lost => Found::Pass,
            State::Head(line, status) => {
                for (i, &byte) in bytes.iter().enumerate() {
                    status.push(byte);
                    // The head ends with an empty line, its end of line "\r\n" or "\n" as httparse takes it.
                    *line = match (*line, byte) {
                        (_, b'\n') if *line != LINE_STARTED => HEAD_ENDED,
                        (_, b'\n') => LINE_EMPTY,
                        (LINE_EMPTY, b'\r') => LINE_EMPTY_CR,
                        _ => LINE_STARTED,
                    };
                    if *line == HEAD_ENDED && !status.switches() {
                        self.state = State::Lost;
                        return Found::Pass;
                    }
                    if *line == HEAD_ENDED {
                        self.state = State::Frames { payload_left: 0, fragmented: false, closed: false };
                        // Stop at the head's end: tungstenite keeps nothing of the frames from its handshake read.
                        return if i + 1 == bytes.len() { Found::Pass } else { Found::Until(i + 1) };
                    }
                }
                Found::Pass
            }
            State::Frames { .. } => self.scan_frames(bytes),
        }
    }

    /// The largest message the connection accepts.
    pub(crate) fn max_message(&self) -> usize {
        self.max_message
    }

    /// Stop following the frames: everything passes from now on.
    pub(crate) fn lose(&mut self) {
        self.state = State::Lost;
    }

    /// The handshake is over: a scan that did not see the head end where tungstenite did stops here.
    pub(crate) fn opened(&mut self) {
        if let State::Head(..) = self.state {
            self.lose();
        }
    }

    fn scan_frames(&mut self, bytes: &[u8]) -> Found {
        let max_message = self.max_message as u64;
        let State::Frames { payload_left, fragmented, closed } = &mut self.state else { unreachable!() };
        let mut at = 0;
        loop {
            let skip = (*payload_left).min((bytes.len() - at) as u64);
            at += skip as usize;
            *payload_left -= skip;
            if at == bytes.len() {
                return Found::Pass;
            }
            let header = match Header::parse(&bytes[at..]) {
                Parsed::Whole(header) => header,
                Parsed::Short => return Found::Until(at),
                Parsed::Unknown => {
                    self.state = State::Lost;
                    return Found::Pass;
                }
            };
            let take = header.opcode == 2
                && header.fin
                && header.rsv == 0
                && !header.masked
                && !*fragmented
                && !*closed
                && header.len >= LARGE_PAYLOAD as u64
                && header.len <= max_message;
            if take {
                // Once whole and first, the caller takes it and the next frame starts after its payload.
                return if at == 0 {
                    Found::Take { header: header.size, len: header.len as usize }
                } else {
                    Found::Until(at)
                };
            }
            match header.opcode {
                1 | 2 if !header.fin => *fragmented = true,
                0 if header.fin => *fragmented = false,
                8 => *closed = true,
                _ => {}
            }
            at += header.size;
            *payload_left = header.len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `len` bytes of payload.
    fn frame(first: u8, len: usize) -> Vec<u8> {
        super::super::wire_tests::frame(first, &vec![0x5a; len])
    }

    fn after_head() -> Scanner {
        let mut scanner = Scanner::new(1 << 20);
        assert_eq!(scanner.scan(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"), Found::Pass);
        scanner
    }

    #[test]
    fn stops_at_the_end_of_the_response_head_even_when_split() {
        let mut scanner = Scanner::new(1 << 20);
        assert_eq!(scanner.scan(b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n\r"), Found::Pass);
        assert_eq!(scanner.scan(b"\n\x82\x01x"), Found::Until(1));
        assert_eq!(scanner.scan(b"\x82\x01x"), Found::Pass);

        let mut scanner = Scanner::new(1 << 20);
        assert_eq!(scanner.scan(b"HTTP/1.1 101 OK\nUpgrade: websocket\n\n\x82"), Found::Until(36));
        let mut scanner = Scanner::new(1 << 20);
        assert_eq!(scanner.scan(b"HTTP/1.1 101 OK\r\n\r"), Found::Pass);
        scanner.opened();
        assert_eq!(
            scanner.scan(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
            Found::Pass,
            "lost after a head it did not follow"
        );
    }

    #[test]
    fn lets_a_refusals_body_through_with_its_head() {
        let mut scanner = Scanner::new(1 << 20);
        let refusal = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 21\r\n\r\nmissing subprotocol\r\n";
        assert_eq!(scanner.scan(refusal), Found::Pass);
    }

    #[test]
    fn takes_a_large_final_binary_frame_only_when_it_comes_first() {
        let mut scanner = after_head();
        let mut bytes = frame(0x82, 3);
        let large = frame(0x82, LARGE_PAYLOAD);
        bytes.extend_from_slice(&large[..100]);
        assert_eq!(scanner.scan(&bytes), Found::Until(5));
        assert_eq!(scanner.scan(&large[..100]), Found::Take { header: 10, len: LARGE_PAYLOAD });
    }

    #[test]
    fn waits_for_a_whole_header() {
        let mut scanner = after_head();
        let large = frame(0x82, 1 << 20);
        assert_eq!(scanner.scan(&large[..5]), Found::Until(0));
        assert_eq!(scanner.scan(&large[..10]), Found::Take { header: 10, len: 1 << 20 });
    }

    #[test]
    fn leaves_to_tungstenite_what_it_would_refuse_or_assemble() {
        for (what, first, len) in [
            ("text", 0x81, LARGE_PAYLOAD),
            ("first fragment", 0x02, LARGE_PAYLOAD),
            ("reserved bits", 0xc2, LARGE_PAYLOAD),
            ("too large", 0x82, (1 << 20) + 1),
            ("small", 0x82, LARGE_PAYLOAD - 1),
        ] {
            let mut scanner = after_head();
            assert_eq!(scanner.scan(&frame(first, len)), Found::Pass, "{what}");
        }
        let mut masked = frame(0x82, LARGE_PAYLOAD);
        masked[1] |= 0x80;
        masked.splice(4..4, [1, 2, 3, 4]);
        assert_eq!(after_head().scan(&masked), Found::Pass, "masked");
    }

    #[test]
    fn leaves_frames_inside_a_fragmented_message_and_after_a_close() {
        let mut scanner = after_head();
        assert_eq!(scanner.scan(&frame(0x01, 10)), Found::Pass);
        assert_eq!(scanner.scan(&frame(0x82, LARGE_PAYLOAD)), Found::Pass, "a new message inside a fragmented one");
        assert_eq!(scanner.scan(&frame(0x80, 10)), Found::Pass);
        assert!(matches!(scanner.scan(&frame(0x82, LARGE_PAYLOAD)), Found::Take { .. }), "after the last fragment");

        let mut scanner = after_head();
        assert_eq!(scanner.scan(&frame(0x88, 2)), Found::Pass);
        assert_eq!(scanner.scan(&frame(0x82, LARGE_PAYLOAD)), Found::Pass, "after the peer's close");
    }

    #[test]
    fn follows_payloads_across_reads_and_stops_following_bad_lengths() {
        let mut scanner = after_head();
        let text = frame(0x81, 70_000);
        assert_eq!(scanner.scan(&text[..30_000]), Found::Pass);
        let mut rest = text[30_000..].to_vec();
        rest.extend_from_slice(&frame(0x82, LARGE_PAYLOAD)[..14]);
        assert_eq!(scanner.scan(&rest), Found::Until(text.len() - 30_000));

        let mut scanner = after_head();
        let mut bad = vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        bad.extend_from_slice(&frame(0x82, LARGE_PAYLOAD));
        assert_eq!(scanner.scan(&bad), Found::Pass);
        assert_eq!(scanner.scan(&frame(0x82, LARGE_PAYLOAD)), Found::Pass);
    }
}
