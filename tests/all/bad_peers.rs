//! Peers that break the protocol or vanish: the guest gets a typed error, the peer gets the right close code when
//! a close can still be sent, and the session ends cleanly.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::util::{run_with_input, Run};

/// A hand-made server: completes the opening handshake, then runs `misbehave` on the raw socket, then reports the
/// close code of the client's close frame, if one came within a second.
async fn raw_server<F, Fut>(misbehave: F) -> (String, tokio::task::JoinHandle<Option<u16>>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<TcpStream>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        let request = read_request(&mut tcp).await?;
        let key = request.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
        })?;
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        tcp.write_all(response.as_bytes()).await.ok()?;
        let mut tcp = misbehave(tcp).await?;
        tokio::time::timeout(Duration::from_secs(1), read_close_code(&mut tcp)).await.ok()?
    });
    (url, task)
}

async fn read_request(tcp: &mut TcpStream) -> Option<String> {
    let mut request = Vec::new();
    while !request.ends_with(b"\r\n\r\n") {
        request.push(tcp.read_u8().await.ok()?);
    }
    String::from_utf8(request).ok()
}

/// Read client frames until a close frame; its code (client frames are masked).
async fn read_close_code(tcp: &mut TcpStream) -> Option<u16> {
    loop {
        let mut head = [0u8; 2];
        tcp.read_exact(&mut head).await.ok()?;
        let len = match head[1] & 0x7f {
            126 => u64::from(tcp.read_u16().await.ok()?),
            127 => tcp.read_u64().await.ok()?,
            n => u64::from(n),
        };
        let mut mask = [0u8; 4];
        tcp.read_exact(&mut mask).await.ok()?;
        let mut payload = vec![0u8; usize::try_from(len).ok()?];
        tcp.read_exact(&mut payload).await.ok()?;
        if head[0] & 0x0f == 0x8 {
            let code: Vec<u8> = payload.iter().take(2).enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
            return (code.len() == 2).then(|| u16::from_be_bytes([code[0], code[1]]));
        }
    }
}

fn assert_failed_cleanly(run: &Run, needle: &str) {
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.lines().any(|l| l.starts_with("wsrun: ") && l.contains(needle)), "expected {needle:?}: {run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 1006 (abnormal closure).\n"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_utf8_in_a_text_frame_is_closed_with_1007() {
    let (url, server) = raw_server(|mut tcp| async move {
        tcp.write_all(&[0x81, 0x02, 0xff, 0xfe]).await.ok()?;
        Some(tcp)
    })
    .await;
    let run = run_with_input(&[&url, "--no-close"], b"").await;
    assert_failed_cleanly(&run, "invalid UTF-8");
    assert_eq!(server.await.unwrap(), Some(1007));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protocol_violation_is_closed_with_1002() {
    let (url, server) = raw_server(|mut tcp| async move {
        // A masked frame: servers must not mask.
        tcp.write_all(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]).await.ok()?;
        Some(tcp)
    })
    .await;
    let run = run_with_input(&[&url, "--no-close"], b"").await;
    assert_failed_cleanly(&run, "protocol error");
    assert_eq!(server.await.unwrap(), Some(1002));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_frame_is_closed_with_1009() {
    let (url, server) = raw_server(|mut tcp| async move {
        // A binary frame announcing 1 GiB; the client must refuse it from the header alone.
        let mut frame = vec![0x82, 127];
        frame.extend_from_slice(&(1u64 << 30).to_be_bytes());
        tcp.write_all(&frame).await.ok()?;
        Some(tcp)
    })
    .await;
    let run = run_with_input(&[&url, "--no-close"], b"").await;
    assert_failed_cleanly(&run, "message too large");
    assert_eq!(server.await.unwrap(), Some(1009));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_reset_mid_message_is_an_error() {
    let (url, server) = raw_server(|mut tcp| async move {
        // Half of a 100-byte text frame, then a reset.
        tcp.write_all(&[0x81, 100]).await.ok()?;
        tcp.write_all(&[b'x'; 50]).await.ok()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Not deprecated for us: blocking on drop is what a reset needs, and there is no data left to send.
        #[allow(deprecated)]
        tcp.set_linger(Some(Duration::ZERO)).ok()?;
        drop(tcp);
        None
    })
    .await;
    let run = run_with_input(&[&url, "--no-close"], b"").await;
    assert_failed_cleanly(&run, "reset");
    assert_eq!(server.await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_leaves_without_a_close_frame_is_1006() {
    let (url, server) = raw_server(|tcp| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(tcp);
        None
    })
    .await;
    let run = run_with_input(&[&url, "--no-close"], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 1006 (abnormal closure).\n"), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    server.await.unwrap();
}
