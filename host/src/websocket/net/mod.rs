//! Bytes and frames: how the host reaches a server (`transport`, `tls`), the byte stream under tungstenite (`wire`,
//! which `scan` follows frame by frame, and where the frames the host makes of large sends go out, in buffers from
//! `frame_buffer`), the stream shared by a connection's reader and writer (`halves`), and compression: what the
//! handshake agrees on (`extension`), messages inflated on their way to tungstenite (`inflate`) and compressed on
//! their way out (`deflate`). Nothing here knows the WIT
//! interface or the guest; the only WIT type it builds is the `error-code` of a failed transport.

pub(crate) mod deflate;
pub(crate) mod extension;
mod frame_buffer;
pub(crate) mod halves;
mod header;
pub(crate) mod inflate;
mod scan;
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod wire;
#[cfg(test)]
mod wire_tests;

/// Payloads at least this large travel in buffers of their own, both ways: a text or binary message the guest
/// sends is framed by the host straight out of guest memory (`wire::frame`; below this, copying into tungstenite's write
/// buffer costs less than the system call a frame of its own would take), a binary frame that comes in is read past
/// tungstenite into a buffer of its own (`scan`, `wire`), and a received payload this large is queued in the buffer it
/// came in, while smaller ones are copied out of tungstenite's read buffer (so a peer cannot make a few queued bytes
/// hold many buffers).
pub(crate) const LARGE_PAYLOAD: usize = 64 << 10;
