//! A message as the guest sends it: large payloads framed and masked straight out of guest memory.
//!
//! The generated `send` lifts the payload into a `Vec` (a pass over it), which tungstenite then copies into its
//! write buffer (a second) and masks there (a third). The replacement lifts the WIT `message` variant as views of
//! guest memory ([`Outgoing`]); a text or binary payload of at least [`FRAME_FROM`] bytes is masked from there into
//! its frame, and put on the socket after what was sent before it (`halves`, `wire`).
//! Smaller ones take the generated path, whose buffer gathers many of them into one write.

use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::Bytes;
use wasmtime::component::{ComponentType, Lift, LinkerInstance, Resource, WasmList, WasmStr};
use wasmtime::{AsContext, StoreContext};

use super::{frame_buffer, guest_visible, Connection, WebsocketView};
use crate::bindings::websocket::{ErrorCode, HostConnection, Message};

/// Payloads at least this large are framed by the host. Below it, copying into tungstenite's buffer costs less than
/// the system call a frame of its own would take (several small messages go out in one write there).
pub(crate) const FRAME_FROM: usize = 64 << 10;

/// The WIT `message` variant as the guest sends it: payloads still in guest memory.
#[derive(ComponentType, Lift)]
#[component(variant)]
pub(crate) enum Outgoing {
    #[component(name = "text")]
    Text(WasmStr),
    #[component(name = "binary")]
    Binary(WasmList<u8>),
    #[component(name = "ping")]
    Ping(Vec<u8>),
    #[component(name = "pong")]
    Pong(Vec<u8>),
}

/// What to send: a frame already made, with its payload size, or a message for tungstenite; or nothing, for a
/// payload over the connection's message limit (its size).
enum Prepared {
    Frame(Bytes, usize),
    Message(Message),
    TooLarge(usize),
}

impl Outgoing {
    /// Frame a large text or binary payload; copy anything else into the generated type. A payload over `limit`
    /// bytes is refused before any copy.
    fn prepare<T: 'static>(self, store: StoreContext<'_, T>, limit: usize) -> wasmtime::Result<Prepared> {
        Ok(match self {
            Outgoing::Binary(bytes) if bytes.len() > limit => Prepared::TooLarge(bytes.len()),
            Outgoing::Text(text) => {
                let text = text.to_str(store)?;
                if text.len() > limit {
                    return Ok(Prepared::TooLarge(text.len()));
                }
                match framed(Data::Text, text.as_bytes()) {
                    Some(frame) => frame,
                    None => Prepared::Message(Message::Text(text.into_owned())),
                }
            }
            Outgoing::Binary(bytes) => {
                let bytes = bytes.as_le_slice(store);
                framed(Data::Binary, bytes).unwrap_or_else(|| Prepared::Message(Message::Binary(bytes.to_vec())))
            }
            Outgoing::Ping(payload) => Prepared::Message(Message::Ping(payload)),
            Outgoing::Pong(payload) => Prepared::Message(Message::Pong(payload)),
        })
    }
}

/// The frame of `payload` when it is large enough for the host to make it.
fn framed(opcode: Data, payload: &[u8]) -> Option<Prepared> {
    (payload.len() >= FRAME_FROM).then(|| Prepared::Frame(frame(opcode, payload, rand::random()), payload.len()))
}

/// A whole, final, masked client frame of `payload` (RFC 6455, 5.2-5.3).
fn frame(opcode: Data, payload: &[u8], mask: [u8; 4]) -> Bytes {
    let header = FrameHeader { opcode: OpCode::Data(opcode), mask: Some(mask), ..FrameHeader::default() };
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

/// Replace the generated `send` in `interface` (shadowing must be allowed) with one that frames large payloads itself.
pub(super) fn replace_send<T: WebsocketView + 'static>(interface: &mut LinkerInstance<'_, T>) -> wasmtime::Result<()> {
    interface.func_wrap_async(
        "[method]connection.send",
        |mut store, (conn, message): (Resource<Connection>, Outgoing)| {
            Box::new(async move {
                let limit = store.data_mut().websocket().table.get(&conn)?.max_message;
                let sent = match message.prepare(store.as_context(), limit)? {
                    Prepared::Frame(frame, size) => store.data_mut().websocket().send_frame(conn, frame, size).await,
                    Prepared::Message(message) => store.data_mut().websocket().send(conn, message).await,
                    Prepared::TooLarge(size) => Err(ErrorCode::MessageTooLarge(size as u64).into()),
                };
                Ok((guest_visible(sent)?,))
            })
        },
    )
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
                assert!(frame(opcode, &payload, mask) == formatted, "{len} bytes, {opcode:?}");
            }
        }
    }
}
