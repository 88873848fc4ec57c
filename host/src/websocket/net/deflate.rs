//! Compressing the messages the guest sends, when the server accepted permessage-deflate (RFC 7692, 7.2.1).
//!
//! zlib-rs (the deflate flate2 builds on; flate2 itself does not let the memory level be chosen) keeps the state.
//! Its size is what makes a compressed connection cost more than a plain one, so the host keeps it small and keeps
//! it only while it is worth something: made at the first message compressed, with a 4 KiB window and memory level
//! 5 (python-websockets' choice: about 40 KiB, against 256 KiB for zlib's defaults), and dropped after each message
//! when the server asked for no context takeover.

use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use zlib_rs::{Deflate, DeflateConfig, DeflateFlush, Status};

use super::extension;

/// Messages shorter than this go out uncompressed (their frame's RSV1 bit clear, which RFC 7692 allows for any
/// message): a few bytes of deflate framing would outweigh what compression saves.
pub(crate) const MIN_COMPRESSED: usize = 64;

/// The window the host compresses with, at most: 4 KiB, enough for the repeated keys and values of JSON messages.
const WINDOW_BITS: u8 = 12;
/// zlib's memory level (1-9): 5 makes its hash tables 16 KiB instead of 128 KiB.
const MEM_LEVEL: i32 = 5;
/// zlib's default level, as python-websockets and ws use.
const LEVEL: i32 = 6;

/// The compressor of one connection.
pub(crate) struct Deflating {
    zlib: Option<Box<Deflate>>,
    window_bits: u8,
    no_context_takeover: bool,
}

impl Deflating {
    /// The compressor for what the server accepted; `None` when the host cannot compress within it (a window of
    /// 8 bits, which zlib cannot make raw deflate for): messages then go out uncompressed, which RFC 7692 allows.
    pub(crate) fn new(accepted: &extension::Deflate) -> Option<Self> {
        (accepted.client_max_window_bits > 8).then(|| Deflating {
            zlib: None,
            window_bits: accepted.client_max_window_bits.min(WINDOW_BITS),
            no_context_takeover: accepted.client_no_context_takeover,
        })
    }

    /// The payload of a compressed message: raw deflate, flushed to a byte boundary, without the 4 bytes
    /// (`00 00 ff ff`) that the flush ends with and the receiver puts back.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let window_bits = self.window_bits;
        let zlib = self.zlib.get_or_insert_with(|| {
            Box::new(Deflate::new_with_config(DeflateConfig {
                level: LEVEL,
                window_bits: -i32::from(window_bits),
                mem_level: MEM_LEVEL,
                ..DeflateConfig::default()
            }))
        });
        let mut out: Vec<u8> = Vec::with_capacity(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            let (before_in, before_out) = (zlib.total_in(), zlib.total_out());
            let status = zlib.compress_uninit(input, out.spare_capacity_mut(), DeflateFlush::SyncFlush);
            let (consumed, produced) =
                ((zlib.total_in() - before_in) as usize, (zlib.total_out() - before_out) as usize);
            // SAFETY: zlib wrote `produced` bytes at the start of the spare capacity.
            unsafe { out.set_len(out.len() + produced) };
            input = &input[consumed..];
            // Done once the input is in and the flush did not fill the space it had: nothing waits inside zlib.
            let room_left = out.capacity() > out.len();
            match status {
                Ok(Status::Ok | Status::BufError) if input.is_empty() && room_left => break,
                Ok(_) => {}
                Err(e) => unreachable!("deflate with a valid configuration failed: {e:?}"),
            }
        }
        if out.ends_with(&[0, 0, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
        } else {
            // zlib flushes nothing when nothing came in since the last flush. An empty payload would leave the
            // receiver halfway into the empty block it appends: one empty stored block's first byte (RFC 7692,
            // 7.2.3.6) makes that block whole.
            debug_assert!(out.is_empty() && payload.is_empty(), "a sync flush ends with an empty stored block");
            out = vec![0];
        }
        if self.no_context_takeover {
            self.zlib = None;
        }
        out
    }

    /// A send of compressed bytes failed: what the server has of them is unknown, so the next message starts a
    /// fresh window rather than point into one the server may not share.
    pub(crate) fn forget(&mut self) {
        self.zlib = None;
    }
}

/// A compressed payload as a message for tungstenite: one final frame with its RSV1 bit set.
pub(crate) fn message(opcode: Data, compressed: Vec<u8>) -> Message {
    let mut frame = Frame::message(compressed, OpCode::Data(opcode), true);
    frame.header_mut().rsv1 = true;
    Message::Frame(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::net::inflate::tests::inflate_message;

    fn accepted(client_bits: u8, no_context_takeover: bool) -> extension::Deflate {
        extension::Deflate {
            server_no_context_takeover: false,
            client_no_context_takeover: no_context_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: client_bits,
        }
    }

    #[test]
    fn messages_inflate_back_with_and_without_context_takeover() {
        for no_context_takeover in [false, true] {
            let mut deflating = Deflating::new(&accepted(15, no_context_takeover)).unwrap();
            let mut inflater = zlib_rs::Inflate::new(false, 15);
            let json = br#"{"symbol":"ACME","price":101.25,"size":300,"side":"buy","venue":"XNAS"}"#.repeat(20);
            let mut sizes = Vec::new();
            for payload in [&json[..], b"", &json[..], &[7u8; 300_000][..]] {
                let compressed = deflating.compress(payload);
                sizes.push(compressed.len());
                assert_eq!(inflate_message(&mut inflater, &compressed), payload);
            }
            assert!(sizes[0] < json.len() / 5, "JSON compresses: {sizes:?}");
            if !no_context_takeover {
                assert!(sizes[2] < sizes[0] / 4, "the second copy refers to the first: {sizes:?}");
            }
        }
    }

    #[test]
    fn a_window_of_8_bits_is_not_compressed_into() {
        assert!(Deflating::new(&accepted(8, false)).is_none());
        assert_eq!(Deflating::new(&accepted(9, false)).unwrap().window_bits, 9);
    }
}
