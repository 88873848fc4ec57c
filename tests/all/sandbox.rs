//! What an untrusted guest can and cannot do: only what was granted, within its limits, and whatever it does
//! (trap, panic, hoard memory, flood stdout) ends in one clear message without harm to the host.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use wsrun_test_artifacts::{TEST_MISBEHAVE, TEST_SOCKETS, TEST_SPIN};

use crate::servers::{self, Server, Ws};
use crate::util::{run_with_input, wsrun, Run};

async fn misbehave(host_args: &[&str], url: &str, mode: &[&str]) -> Run {
    let mut args = host_args.to_vec();
    args.extend([TEST_MISBEHAVE, url]);
    args.extend(mode);
    run_with_input(&args, b"").await
}

fn assert_trapped(run: &Run, cause: &str) {
    assert_eq!(run.code(), Some(1), "{run:?}");
    let first = run.stderr.lines().find(|l| l.starts_with("wsrun: ")).unwrap_or_default();
    assert!(first.contains("trapped: ") && first.contains(cause), "expected {cause:?} in {run:?}");
    assert!(run.stderr.contains("wasm backtrace:"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn traps_are_shown_with_their_cause_and_a_backtrace() {
    let server = Server::echo().await;
    assert_trapped(&misbehave(&[], &server.url, &["unreachable"]).await, "unreachable");
    assert_trapped(&misbehave(&[], &server.url, &["out-of-bounds"]).await, "out of bounds memory access");
    let overflow = misbehave(&[], &server.url, &["stack-overflow"]).await;
    // Rust's stack lives in linear memory: overflowing it runs off the bottom of memory.
    assert_trapped(&overflow, "out of bounds memory access");
    assert!(overflow.stderr.contains("recurse") && overflow.stderr.contains("more frames"), "{overflow:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_panic_shows_its_message() {
    let server = Server::echo().await;
    let run = misbehave(&[], &server.url, &["panic"]).await;
    assert_trapped(&run, "unreachable");
    assert!(run.stderr.contains("the guest gave up: boom"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_stops_at_the_limit_naming_it() {
    let server = Server::echo().await;
    let run = misbehave(&["--max-memory", "32M"], &server.url, &["memory-bomb"]).await;
    assert_trapped(&run, "memory limit reached");
    assert!(run.stderr.contains("the session allows 32 MiB"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fuel_limits_cpu() {
    let server = Server::echo().await;
    let run = run_with_input(&["--fuel", "50000000", TEST_SPIN, &server.url], b"").await;
    assert_trapped(&run, "fuel");
    assert_eq!(server.closes(1).await, vec![Some((1011, String::new()))], "a trap closes with 1011");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guests_own_exit_code_is_wsruns() {
    let server = Server::echo().await;
    let run = misbehave(&[], &server.url, &["exit-code"]).await;
    assert_eq!(run.code(), Some(42), "{run:?}");
    assert_eq!(run.stderr, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn more_connections_than_allowed_are_refused_and_all_are_closed() {
    let server = Server::echo().await;
    let run = misbehave(&["--max-connections", "3"], &server.url, &["connections"]).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("connection 4 refused: limit reached: at most 3 connections per session"), "{run:?}");
    let closes = server.closes(3).await;
    assert_eq!(closes, vec![Some((1000, String::new())); 3], "the host closes what the guest left open");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_environment_files_or_sockets_unless_granted() {
    let server = Server::echo().await;
    let run = misbehave(&[], &server.url, &["env"]).await;
    assert_eq!(run.stdout, "env: []\n", "{run:?}");
    let run = misbehave(&["--env", "TOKEN=abc", "--env", "MODE=x=y"], &server.url, &["env"]).await;
    assert_eq!(run.stdout, "env: [(\"TOKEN\", \"abc\"), (\"MODE\", \"x=y\")]\n", "{run:?}");

    let run = misbehave(&[], &server.url, &["files"]).await;
    assert!(run.stdout.starts_with("files: denied: "), "{run:?}");

    let target = server.url.trim_start_matches("ws://").trim_end_matches('/').to_owned();
    let run = run_with_input(&[TEST_SOCKETS, &server.url, &target], b"").await;
    assert!(run.stdout.starts_with("socket: denied: "), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_connections_are_logged_at_debug_level() {
    let elsewhere = Server::echo().await;
    let target = elsewhere.url.clone();
    let server =
        Server::routed(move |_| servers::Answer::Status(302, Some(target.clone())), servers::echo).await;
    let run = run_with_input(&["--verbose", &server.url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains(&format!("wsrun: debug: denied: following a redirect to {}", elsewhere.url)), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_never_reads_keeps_the_host_queue_bounded() {
    // The server sends as fast as it can; the guest never reads. The host must stop reading at its limits, which
    // stops the server (its sends block), rather than buffer without bound.
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::start(move |mut ws: Ws| {
        let sent_tx = sent_tx.clone();
        async move {
            let payload = vec![7u8; 4096];
            let mut sent = 0u64;
            let flood = async {
                while ws.send(Message::binary(payload.clone())).await.is_ok() {
                    sent += 1;
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(1500), flood).await;
            let _ = sent_tx.send(sent);
            None
        }
    })
    .await;
    let mut args = vec!["--verbose", "--timeout", "1s", "--close-timeout", "100ms"];
    args.extend(["--max-queued", "50", "--max-queued-bytes", "100K", TEST_MISBEHAVE, &server.url, "idle"]);
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("wsrun: timed out after 1s"), "{run:?}");
    let figures = run.stderr.lines().find(|l| l.contains("queue peak")).unwrap_or_else(|| panic!("{run:?}"));
    let peak: Vec<usize> = figures
        .split("queue peak ")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(peak[0] <= 50 && peak[1] <= 100 << 10, "queue peak over its limits: {figures}");
    let sent = tokio::time::timeout(Duration::from_secs(3), sent_rx.recv()).await.unwrap().unwrap();
    // What the sockets' buffers hold plus the queue, far less than 1.5 s of loopback flooding (millions).
    assert!(sent < 200_000, "the server was never held back: it sent {sent} messages");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_ends_the_guest_quietly() {
    let server = Server::echo().await;
    let mut child = wsrun(&[TEST_MISBEHAVE, &server.url, "stdout-flood"]).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4096];
    stdout.read_exact(&mut first).await.unwrap();
    drop(stdout);
    let run = crate::util::finish(child, std::time::Instant::now()).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.stderr, "", "like head's producer, no noise");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_piped_into_a_reader_that_stops_closes_cleanly() {
    let server = Server::sending((0..10_000).map(|i| Message::text(format!("message {i}"))).collect()).await;
    let mut child = wsrun(&[&server.url, "--no-close"]).spawn().unwrap();
    let _stdin = child.stdin.take();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).await.unwrap();
    drop(stdout);
    let run = crate::util::finish(child, std::time::Instant::now()).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.stderr, "");
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))]);
}
