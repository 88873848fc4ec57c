//! What an untrusted guest can and cannot do: only what was granted, within its limits, and whatever it does
//! (trap, panic, hoard memory, flood stdout) ends in one clear message without harm to the host.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use wsrun_test_artifacts::{TEST_MISBEHAVE, TEST_SOCKETS, TEST_SPIN};

use crate::raw;
use crate::servers::{self, Server};
use crate::util::{run_with_input, within, wsrun, Run, Running, BOUND};

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
    // Every code a guest can give (WASI's exit-with-code takes a byte) passes unchanged, the ones wsrun uses
    // itself included.
    for code in [0, 1, 2, 3, 130, 254, 255] {
        let run = misbehave(&[], &server.url, &["exit-code", &code.to_string()]).await;
        assert_eq!(run.code(), Some(code), "{run:?}");
        assert_eq!(run.stderr, "", "{run:?}");
    }
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

    // A file that is there on the host, so that "denied" cannot be a file that is missing.
    let existing = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    assert!(std::path::Path::new(existing).is_file());
    let run = misbehave(&[], &server.url, &["files", existing]).await;
    assert!(run.stdout.starts_with("files: denied: "), "{run:?}");

    let target = server.url.trim_start_matches("ws://").trim_end_matches('/').to_owned();
    let run = run_with_input(&[TEST_SOCKETS, &server.url, &target], b"").await;
    assert!(run.stdout.starts_with("socket: denied: "), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_connections_are_logged_at_debug_level() {
    let elsewhere = Server::echo().await;
    let target = elsewhere.url.clone();
    let server = Server::routed(move |_| servers::Answer::Status(302, Some(target.clone())), servers::echo).await;
    let run = run_with_input(&["--verbose", &server.url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(
        run.stderr.contains(&format!("wsrun: debug: denied: following a redirect to {}", elsewhere.url)),
        "{run:?}"
    );
}

/// The send and receive queues (bytes the kernel holds) of the TCP socket from `local` to `remote` port on
/// 127.0.0.1, from /proc/net/tcp.
fn tcp_queues(local: u16, remote: u16) -> Option<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |address: &str| address.split_once(':').and_then(|(_, port)| u16::from_str_radix(port, 16).ok());
    table.lines().skip(1).find_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        if port(fields[1])? != local || port(fields[2])? != remote {
            return None;
        }
        let (tx, rx) = fields[4].split_once(':')?;
        Some((u64::from_str_radix(tx, 16).ok()?, u64::from_str_radix(rx, 16).ok()?))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_that_never_reads_keeps_the_host_queue_bounded() {
    // The server sends 4 KiB messages as fast as it can; the guest never reads. The host must stop reading at its
    // limits (100 KiB here), which holds the server back through TCP, rather than buffer without bound. What the
    // host took off its socket is what the server wrote less what the kernel still holds (the server's send queue
    // and wsrun's receive queue), measured once the server is stuck.
    const FRAME: u64 = 4096 + 4;
    let (url, listener) = raw::listen().await;
    let server_port = listener.local_addr().unwrap().port();
    let written = Arc::new(AtomicU64::new(0));
    let (client_tx, client_port) = tokio::sync::oneshot::channel();
    let counter = written.clone();
    tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.ok()?;
        let _ = client_tx.send(peer.port());
        let mut ws = tokio_tungstenite::accept_async(tcp).await.ok()?;
        let payload = vec![7u8; 4096];
        while ws.send(Message::binary(payload.clone())).await.is_ok() {
            counter.fetch_add(FRAME, Ordering::Relaxed);
        }
        Some(())
    });
    let mut wsrun = Running::spawn(&["--max-queued", "50", "--max-queued-bytes", "100K", TEST_MISBEHAVE, &url, "idle"]);
    wsrun.wait_for_line("connected").await;
    let client_port = within(BOUND, "the connection", client_port).await.unwrap();

    // Stuck: nothing more written for half a second.
    let stuck = async {
        let mut last = (written.load(Ordering::Relaxed), Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = written.load(Ordering::Relaxed);
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= Duration::from_millis(500) {
                return now;
            }
        }
    };
    let written = tokio::time::timeout(Duration::from_secs(5), stuck).await.unwrap_or_else(|_| {
        panic!("the server was never held back: it wrote {} MiB", written.load(Ordering::Relaxed) >> 20)
    });
    let (server_send_queue, _) = tcp_queues(server_port, client_port).expect("the server's socket");
    let (_, wsrun_receive_queue) = tcp_queues(client_port, server_port).expect("wsrun's socket");
    let taken = written.saturating_sub(server_send_queue + wsrun_receive_queue);
    // The queue's 100 KiB, plus what a reader may hold outside it: one message waiting for room, and the
    // WebSocket library's read buffer (128 KiB).
    let most = (100 << 10) + FRAME + (128 << 10) + FRAME;
    assert!(
        taken <= most,
        "wsrun took {taken} bytes off the socket for a guest that reads nothing, more than {most} (the server wrote \
         {written}; the kernel holds {server_send_queue} + {wsrun_receive_queue})"
    );

    wsrun.signal(libc::SIGINT);
    assert_eq!(wsrun.finish().await.code(), Some(130));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_ends_the_guest_quietly() {
    let server = Server::echo().await;
    let mut child = wsrun(&[TEST_MISBEHAVE, &server.url, "stdout-flood"]).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4096];
    within(BOUND, "wsrun's first output", stdout.read_exact(&mut first)).await.unwrap();
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
    within(BOUND, "wsrun's first output", stdout.read_exact(&mut first)).await.unwrap();
    drop(stdout);
    let run = crate::util::finish(child, std::time::Instant::now()).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.stderr, "");
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))]);
}
