//! Frames in the order RFC 6455 asks for. Messages before a protocol error reach the guest first (Autobahn cases
//! 3.x, 4.x, 5.15): the echo guest answers the valid message, and only then does the failing close (1002) go out.
//! After the peer's close frame, the answering close is the last frame sent.

use tokio::io::AsyncWriteExt;

use wsrun_test_artifacts::TEST_BIG_SEND;

use crate::raw;
use crate::util::{run_with_input, within, BOUND};

/// A server frame (unmasked) with the first header byte given whole (FIN, RSV bits, opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut bytes = vec![first, payload.len() as u8];
    bytes.extend_from_slice(payload);
    bytes
}

/// Send `frames` in one write after the opening handshake; what the client then sends, in order: its frames'
/// opcodes and payloads up to and including its close frame.
async fn client_answer(frames: Vec<u8>) {
    let (url, listener) = raw::listen().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        raw::upgrade(&mut tcp).await?;
        tcp.write_all(&frames).await.ok()?;
        let mut seen = Vec::new();
        loop {
            let (opcode, payload) = raw::read_frame(&mut tcp).await?;
            seen.push((opcode, payload));
            if opcode == 0x8 {
                return Some(seen);
            }
        }
    });
    let run = run_with_input(&["echo", &url], b"").await;
    let seen = within(BOUND, "the raw server's end", server).await.expect("server").expect("no close frame came");
    assert_eq!(seen.len(), 2, "{seen:?} {run:?}");
    assert_eq!(seen[0], (0x1, b"hello".to_vec()), "the echo of the valid message comes first: {run:?}");
    assert_eq!(seen[1].0, 0x8);
    assert_eq!(&seen[1].1[..2], &1002u16.to_be_bytes(), "then the failing close: {run:?}");
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("protocol error"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reserved_opcode_after_a_message() {
    let mut frames = frame(0x81, b"hello");
    frames.extend(frame(0x83, b""));
    client_answer(frames).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_continuation_after_a_message() {
    let mut frames = frame(0x81, b"hello");
    // A fragmented text message, then a new text frame where its continuation should be.
    frames.extend(frame(0x01, b"abc"));
    frames.extend(frame(0x81, b"def"));
    client_answer(frames).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reserved_bits_after_a_message() {
    let mut frames = frame(0x81, b"hello");
    frames.extend(frame(0xC1, b"x"));
    client_answer(frames).await;
}

/// Once the peer's close frame has been read, the answering close is the last frame that goes out: a guest that
/// keeps sending large messages (which the host frames itself, beside tungstenite) gets an error instead.
#[tokio::test(flavor = "multi_thread")]
async fn no_data_frame_follows_the_answer_to_the_peers_close() {
    let (url, listener) = raw::listen().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        raw::upgrade(&mut tcp).await?;
        // The guest is sending 1 MiB messages in a loop: close while it does.
        raw::read_frame(&mut tcp).await?;
        tcp.write_all(&[0x88, 0x02, 0x0f, 0xa0]).await.ok()?;
        while raw::read_frame(&mut tcp).await?.0 != 0x8 {}
        // Anything after the client's close frame, until it ends the connection or a second has passed.
        let after = tokio::time::timeout(std::time::Duration::from_secs(1), raw::read_frame(&mut tcp)).await;
        Some(after.ok().flatten().map(|(opcode, payload)| (opcode, payload.len())))
    });
    let run = run_with_input(&[TEST_BIG_SEND, &url, "1"], b"").await;
    let after = within(BOUND, "the raw server's end", server).await.expect("server").expect("no close frame came");
    assert_eq!(after, None, "a frame followed the client's close: {run:?}");
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("send failed: "), "{run:?}");
}
