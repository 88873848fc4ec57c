//! Compressing the messages the guest sends, when the server accepted permessage-deflate (RFC 7692, 7.2.1).
//!
//! The compressor's state is what makes a compressed connection cost more than a plain one, and it lives as long as
//! the context it keeps. zlib itself (built from source by libz-sys) holds it: its hash table follows the memory
//! level, so with a 4 KiB window and memory level 5 (python-websockets' choice) the state is about 40 KiB. zlib-rs
//! and zlib-ng keep a 128 KiB hash table whatever the level, and miniz_oxide more (measured: 182 KiB more per idle
//! session with zlib-rs compressing). The state is made at the first message compressed, and dropped after each
//! message when the server asked for no context takeover.

use std::ffi::c_int;
use std::mem::size_of;
use std::ptr::null_mut;

use libz_sys::{
    deflate, deflateEnd, deflateInit2_, uInt, voidpf, z_stream, zlibVersion, Z_DEFAULT_STRATEGY, Z_DEFLATED, Z_OK,
    Z_SYNC_FLUSH,
};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use super::extension;

/// Messages shorter than this go out uncompressed (their frame's RSV1 bit clear, which RFC 7692 allows for any
/// message): a few bytes of deflate framing would outweigh what compression saves.
pub(crate) const MIN_COMPRESSED: usize = 64;

/// The window the host compresses with, at most: 4 KiB, enough for the repeated keys and values of JSON messages.
const WINDOW_BITS: u8 = 12;
/// zlib's memory level (1-9): 5 makes its hash table 8 KiB instead of 64 KiB.
const MEM_LEVEL: c_int = 5;
/// zlib's default level, as python-websockets and ws use.
const LEVEL: c_int = 6;

/// The compressor of one connection.
pub(crate) struct Deflating {
    zlib: Option<Zlib>,
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
        let zlib = self.zlib.get_or_insert_with(|| Zlib::new(window_bits));
        let mut out = zlib.sync_flushed(payload);
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

/// A zlib raw-deflate stream. Boxed: zlib's state points back at it, so it never moves once made.
struct Zlib(Box<z_stream>);

// SAFETY: the stream and its state belong to this value alone; zlib keeps no thread-local state.
unsafe impl Send for Zlib {}

impl Zlib {
    fn new(window_bits: u8) -> Zlib {
        let mut stream = Box::new(z_stream {
            next_in: null_mut(),
            avail_in: 0,
            total_in: 0,
            next_out: null_mut(),
            avail_out: 0,
            total_out: 0,
            msg: null_mut(),
            state: null_mut(),
            zalloc,
            zfree,
            opaque: null_mut(),
            data_type: 0,
            adler: 0,
            reserved: 0,
        });
        // SAFETY: a zeroed stream with allocation functions, as deflateInit2_ requires; the version and size are
        // those of the zlib this was built against.
        let done = unsafe {
            deflateInit2_(
                &mut *stream,
                LEVEL,
                Z_DEFLATED,
                -c_int::from(window_bits),
                MEM_LEVEL,
                Z_DEFAULT_STRATEGY,
                zlibVersion(),
                size_of::<z_stream>() as c_int,
            )
        };
        // Fails only for invalid parameters or no memory, neither of which a peer can bring about.
        assert_eq!(done, Z_OK, "deflateInit2 with valid parameters");
        Zlib(stream)
    }

    /// `input` compressed and flushed to a byte boundary (`Z_SYNC_FLUSH`).
    fn sync_flushed(&mut self, input: &[u8]) -> Vec<u8> {
        let stream = &mut *self.0;
        let mut out: Vec<u8> = Vec::with_capacity(input.len() / 2 + 64);
        let mut input = input;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            let (in_now, out_now) =
                (input.len().min(uInt::MAX as usize), (out.capacity() - out.len()).min(uInt::MAX as usize));
            stream.next_in = input.as_ptr().cast_mut();
            stream.avail_in = in_now as uInt;
            stream.next_out = out.spare_capacity_mut().as_mut_ptr().cast();
            stream.avail_out = out_now as uInt;
            // SAFETY: the pointers cover `input` (read only: zlib never writes through next_in) and the spare
            // capacity of `out`, for the lengths given, and stay valid for the call.
            let done = unsafe { deflate(stream, Z_SYNC_FLUSH) };
            let consumed = in_now - stream.avail_in as usize;
            let produced = out_now - stream.avail_out as usize;
            // SAFETY: zlib wrote `produced` bytes at the start of the spare capacity.
            unsafe { out.set_len(out.len() + produced) };
            input = &input[consumed..];
            stream.next_in = null_mut();
            stream.next_out = null_mut();
            // Z_BUF_ERROR: no progress possible, a flush repeated with nothing new. Done once the input is in and the
            // flush left room in the output: nothing waits inside zlib.
            assert!(done == Z_OK || done == libz_sys::Z_BUF_ERROR, "deflate failed: {done}");
            if input.is_empty() && stream.avail_out > 0 {
                return out;
            }
        }
    }
}

impl Drop for Zlib {
    fn drop(&mut self) {
        // SAFETY: the stream was initialized by deflateInit2_ and is ended once.
        unsafe { deflateEnd(&mut *self.0) };
    }
}

/// zlib's allocations, from the C allocator (as zlib's own default would make them).
extern "C" fn zalloc(_: voidpf, items: uInt, size: uInt) -> voidpf {
    // SAFETY: calloc takes any sizes and returns null when it cannot allocate, which zlib handles.
    unsafe { libc::calloc(items as usize, size as usize) }
}

extern "C" fn zfree(_: voidpf, address: voidpf) {
    // SAFETY: `address` came from `zalloc` above.
    unsafe { libc::free(address) }
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
