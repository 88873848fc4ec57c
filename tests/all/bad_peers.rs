//! Peers that break the protocol or vanish: the guest gets a typed error, the peer gets the right close code when
//! a close can still be sent, and the session ends cleanly.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::raw::{listen, one_connection as raw_server, outcome, read_close_code, upgrade};
use crate::util::{run_with_input, Run};

/// Exit 1, one `wsrun: ...` line naming the cause, and the connection reported as ended without a closing
/// handshake.
fn assert_failed_cleanly(run: &Run, needle: &str) {
    assert_eq!(run.code(), Some(1), "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {run:?}");
    assert!(lines[0].starts_with("wsrun: ") && lines[0].contains(needle), "expected {needle:?}: {run:?}");
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
    assert_eq!(outcome(server).await, Some(1007));
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
    assert_eq!(outcome(server).await, Some(1002));
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
    assert_eq!(outcome(server).await, Some(1009));
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
    // The server did reset the connection (after which nothing can be sent to it).
    outcome(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_echo_guest_fails_when_its_peer_leaves_without_a_close_frame() {
    // Run many of them against a server that crashes: that must not count as success.
    let (url, server) = raw_server(|tcp| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(tcp);
        None
    })
    .await;
    let run = run_with_input(&["echo", &url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("wsrun: echo: the connection ended: 1006"), "{run:?}");
    outcome(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_leaves_without_a_close_frame_is_1006() {
    // Whether the client waits for the server's close (--no-close) or lingers after the end of input (the default).
    for mode in [&["--no-close"][..], &[]] {
        let (url, server) = raw_server(|tcp| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(tcp);
            None
        })
        .await;
        let mut args = vec![url.as_str()];
        args.extend(mode);
        let run = run_with_input(&args, b"").await;
        assert_failed_cleanly(&run, "connection lost: the server left without a close frame");
        outcome(server).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_keeps_the_socket_after_the_closing_handshake_is_left_after_the_close_timeout() {
    // The server closes, reads the answer and then holds the TCP connection (RFC 6455 asks it to close it first).
    // tungstenite alone waits for the server's FIN forever; python-websockets' client gives up after close_timeout.
    let (url, listener) = listen().await;
    let (answered, answer) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        upgrade(&mut tcp).await?;
        tcp.write_all(&[0x88, 0x02, 0x03, 0xe8]).await.ok()?;
        let _ = answered.send(read_close_code(&mut tcp).await);
        tokio::time::sleep(Duration::from_secs(60)).await;
        Some(tcp)
    });
    let run = run_with_input(&["--close-timeout", "300ms", &url, "--no-close"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 1000 (OK).\n"), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(5), "{run:?}");
    assert_eq!(answer.await.ok().flatten(), Some(1000));
}
