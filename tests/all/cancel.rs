//! Ctrl+C (and SIGTERM, and --timeout) stop the guest at once in every state, and the host still closes the
//! session's connections with a close frame.

use std::time::Duration;

use wsrun_test_artifacts::{TEST_BIG_SEND, TEST_SPIN, TEST_STDIN_BLOCK};

use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::raw;
use crate::servers::{self, Server, Ws};
use crate::util::{within, Run, Running, BOUND};

/// How long an interrupted wsrun may take to exit: generous, so only a real hang fails.
const PROMPT: Duration = Duration::from_secs(2);

fn assert_interrupted(run: &Run) {
    assert_eq!(run.code(), Some(130), "{run:?}");
    assert_eq!(run.stderr, "wsrun: interrupted\n", "{run:?}");
    assert!(run.elapsed < PROMPT, "took {:?} to exit", run.elapsed);
}

async fn assert_going_away(server: &Server) {
    assert_eq!(server.closes(1).await, vec![Some((1001, String::new()))], "the server saw no 1001 close frame");
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_while_connected_and_idle() {
    let server = Server::echo().await;
    let mut wsrun = Running::spawn(&[&server.url]);
    wsrun.wait_for_line("Connected to").await;
    wsrun.signal(libc::SIGINT);
    assert_interrupted(&wsrun.finish().await);
    assert_going_away(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_is_handled_like_ctrl_c() {
    let server = Server::echo().await;
    let mut wsrun = Running::spawn(&[&server.url]);
    wsrun.wait_for_line("Connected to").await;
    wsrun.signal(libc::SIGTERM);
    assert_interrupted(&wsrun.finish().await);
    assert_going_away(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_while_the_handshake_is_unanswered() {
    let (url, mut requested, _server) = servers::silent().await;
    let wsrun = Running::spawn(&[&url]);
    // The server has the whole upgrade request: wsrun is waiting for the answer.
    within(BOUND, "wsrun's upgrade request", requested.recv()).await;
    wsrun.signal(libc::SIGINT);
    let run = wsrun.finish().await;
    assert_interrupted(&run);
    assert_eq!(run.stdout, "", "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_a_guest_blocked_on_stdin() {
    let server = Server::echo().await;
    let mut wsrun = Running::spawn(&[TEST_STDIN_BLOCK, &server.url]);
    wsrun.wait_for_line("connected").await;
    wsrun.signal(libc::SIGINT);
    assert_interrupted(&wsrun.finish().await);
    assert_going_away(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_a_guest_spinning_without_host_calls() {
    let server = Server::echo().await;
    let mut wsrun = Running::spawn(&[TEST_SPIN, &server.url]);
    wsrun.wait_for_line("connected").await;
    // Burning CPU: the guest is in its loop.
    wsrun.wait_for_cpu(Duration::from_millis(100)).await;
    wsrun.signal(libc::SIGINT);
    assert_interrupted(&wsrun.finish().await);
    assert_going_away(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupt_in_the_middle_of_a_large_send() {
    // The server reads the first MiB of the guest's 16 MiB message, then nothing until Ctrl+C has come, so the send
    // is stuck in the middle of the message; then it reads everything, and must find a close frame after it.
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (go_tx, go) = tokio::sync::watch::channel(false);
    let server = Server::start(move |ws: Ws| {
        let (started_tx, mut go) = (started_tx.clone(), go.clone());
        async move {
            let mut tcp = ws.into_inner();
            let mut first = vec![0u8; 1 << 20];
            tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut first).await.ok()?;
            let _ = started_tx.send(());
            go.wait_for(|go| *go).await.ok()?;
            let ws = WebSocketStream::from_partially_read(tcp, first, Role::Server, None).await;
            servers::until_close(ws).await
        }
    })
    .await;
    let mut wsrun = Running::spawn(&["--close-timeout", "5s", TEST_BIG_SEND, &server.url, "16"]);
    wsrun.wait_for_line("connected").await;
    within(BOUND, "the first MiB of the message", started.recv()).await;
    wsrun.signal(libc::SIGINT);
    go_tx.send(true).unwrap();
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(130), "{run:?}");
    assert_eq!(run.stderr, "wsrun: interrupted\n", "{run:?}");
    assert_going_away(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_interrupt_exits_at_once() {
    // The server never answers the close, so after the first Ctrl+C wsrun waits for it (up to a long
    // --close-timeout); the second Ctrl+C must not wait.
    let (url, mut closes) = raw::never_answering_the_close().await;
    let mut wsrun = Running::spawn(&["--close-timeout", "30s", &url]);
    wsrun.wait_for_line("Connected to").await;
    wsrun.signal(libc::SIGINT);
    // The server has the 1001 close frame: wsrun is waiting for the answer.
    assert_eq!(within(BOUND, "the close frame", closes.recv()).await, Some(1001));
    wsrun.signal(libc::SIGINT);
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(130), "{run:?}");
    assert!(run.elapsed < PROMPT, "took {:?} to exit", run.elapsed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_that_never_answers_the_close_is_waited_for_only_the_close_timeout() {
    let server = Server::deaf().await;
    let mut wsrun = Running::spawn(&["--close-timeout", "300ms", &server.url]);
    wsrun.wait_for_line("Connected to").await;
    wsrun.signal(libc::SIGINT);
    let run = wsrun.finish().await;
    assert_interrupted(&run);
    assert!(run.elapsed >= Duration::from_millis(250), "did not wait for the peer's close: {:?}", run.elapsed);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_stops_a_spinning_guest() {
    let server = Server::echo().await;
    let wsrun = Running::spawn(&["--timeout", "500ms", TEST_SPIN, &server.url]);
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr, "wsrun: timed out after 500ms\n", "{run:?}");
    // The message names the limit set, not the time taken: the time is checked on its own.
    assert!(run.elapsed >= Duration::from_millis(500), "stopped after {:?}, before the timeout", run.elapsed);
    assert!(run.elapsed < Duration::from_millis(500) + PROMPT, "took {:?}", run.elapsed);
    assert_going_away(&server).await;
}
