//! tungstenite reads the same messages through `wire` and `halves` (which take large binary frames past it) as over
//! the bare socket: a raw server writes the same frames to both, cut into the same random pieces (headers split
//! anywhere, a large frame's header right after the HTTP response head or behind small frames in one read), and the
//! two clients must see the same messages and the same error at the same place.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsProtocolError, Message as WireMessage};
use tokio_tungstenite::MaybeTlsStream;

use super::wire::{Wire, READ_BUFFER};
use super::LARGE_PAYLOAD;
use crate::websocket::boundary_tests::Rng;

const MAX_MESSAGE: usize = 2 << 20;

/// A server frame: unmasked, `first` the FIN, RSV and opcode bits.
pub(super) fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..=125 => frame.push(len as u8),
        len @ 126..=65535 => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

fn payload(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.below(256) as u8).collect()
}

/// Serve one connection: answer the handshake, then write `bytes` cut into `pieces` (the first with the response
/// head), pausing between pieces so that they tend to arrive apart, and end the socket.
async fn serve(listener: TcpListener, bytes: Vec<u8>, pieces: Vec<usize>) {
    let (tcp, _) = listener.accept().await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut from_client, mut to_client) = tcp.into_split();
    let mut request = Vec::new();
    while !request.ends_with(b"\r\n\r\n") {
        request.push(from_client.read_u8().await.unwrap());
    }
    let request = String::from_utf8(request).unwrap();
    let key = request.lines().find_map(|line| line.strip_prefix("Sec-WebSocket-Key: ")).unwrap();
    // What the client writes later (pongs, its close frame) is read and dropped.
    tokio::spawn(async move { while from_client.read(&mut [0; 4096]).await.is_ok_and(|n| n > 0) {} });
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes();
    let mut at = 0;
    for piece in pieces {
        let end = (at + piece).min(bytes.len());
        out.extend_from_slice(&bytes[at..end]);
        at = end;
        if to_client.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let _ = to_client.write_all(&bytes[at..]).await;
    let _ = to_client.shutdown().await;
}

/// What a client saw, message by message, up to its first error.
async fn seen(messages: &mut (impl Stream<Item = Result<WireMessage, WsProtocolError>> + Unpin)) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(next) = messages.next().await {
        match next {
            Ok(message) => {
                let data = message.clone().into_data();
                let sum = data.iter().fold(0u64, |sum, &byte| sum.wrapping_mul(31).wrapping_add(u64::from(byte)));
                let kind = format!("{message:?}");
                seen.push(format!("{} {} bytes, sum {sum:x}", kind.split('(').next().unwrap(), data.len()));
            }
            Err(e) => {
                seen.push(format!("error: {e}"));
                break;
            }
        }
    }
    seen
}

/// Read `bytes` once through `Wire` and the halves, once over the bare socket, cut the same way; and how many frames
/// `Wire` took out.
async fn both_ways(bytes: &[u8], pieces: &[usize]) -> (Vec<String>, Vec<String>, usize) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .read_buffer_size(READ_BUFFER);
    let mut results = Vec::new();
    let mut taken = 0;
    for through_wire in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(serve(listener, bytes.to_vec(), pieces.to_vec()));
        let tcp = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/')).await.unwrap();
        let read = if through_wire {
            let wire = Wire::new(MaybeTlsStream::Plain(tcp), MAX_MESSAGE, Default::default());
            let (ws, _) = tokio_tungstenite::client_async_with_config(&url, wire, Some(config)).await.unwrap();
            let (_writer, mut reader) = super::halves::split(ws);
            let seen = seen(&mut reader).await;
            taken = reader.frames_taken();
            seen
        } else {
            let (mut ws, _) = tokio_tungstenite::client_async_with_config(&url, tcp, Some(config)).await.unwrap();
            seen(&mut ws).await
        };
        results.push(read);
        server.abort();
    }
    let reference = results.pop().unwrap();
    (results.pop().unwrap(), reference, taken)
}

#[tokio::test]
async fn large_binary_frames_taken_out_read_as_tungstenite_reads_them() {
    let mut rng = Rng(0x5eed_0ff4_a3e5);
    let mut streams: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut mixed = Vec::new();
    for (first, len) in [
        (0x82, 3),
        (0x82, 70_000),
        (0x81, 0),
        (0x89, 5),
        (0x82, LARGE_PAYLOAD),
        (0x82, 0),
        (0x02, 70_000),
        (0x8a, 2),
        (0x80, 10),
        (0x82, 1 << 20),
        (0x82, LARGE_PAYLOAD - 1),
        (0x82, 100_000),
    ] {
        mixed.extend(frame(first, &payload(&mut rng, len)));
    }
    let text = "é".repeat(40_000);
    mixed.extend(frame(0x81, text.as_bytes()));
    mixed.extend(frame(0x88, &[0x03, 0xe8]));
    mixed.extend(frame(0x82, &payload(&mut rng, 70_000)));
    streams.push(("mixed, then a close and a frame after it", mixed));

    let mut cut_short = frame(0x82, &payload(&mut rng, 80_000));
    cut_short.extend(&frame(0x82, &payload(&mut rng, 200_000))[..100_000]);
    streams.push(("the socket ends inside a large frame", cut_short));

    let mut reserved_bits = frame(0x82, &payload(&mut rng, 70_000));
    reserved_bits.extend(frame(0xc2, &payload(&mut rng, 70_000)));
    streams.push(("a large frame with a reserved bit after a good one", reserved_bits));

    let mut too_large = frame(0x82, &payload(&mut rng, 70_000));
    too_large.extend(frame(0x82, &payload(&mut rng, MAX_MESSAGE + 1)));
    streams.push(("a frame over the size limit", too_large));

    let mut taken = 0;
    for (what, bytes) in streams {
        for round in 0..3 {
            let mut pieces = Vec::new();
            let mut total = 0;
            while total < bytes.len() {
                // Often a few bytes, to split headers; otherwise up to a few reads' worth.
                let piece = (if rng.below(3) == 0 { 1 + rng.below(16) } else { 1 + rng.below(40_000) }) as usize;
                pieces.push(piece);
                total += piece;
            }
            let (through_wire, reference, frames_taken) = both_ways(&bytes, &pieces).await;
            taken += frames_taken;
            assert!(reference.len() > 1, "{what}: the reference read something ({reference:?})");
            assert_eq!(through_wire, reference, "{what}, round {round}");
        }
    }
    // Each round of the mixed stream has four frames to take (the one after the close frame is never read).
    assert!(taken >= 12, "Wire took {taken} frames out");
}
