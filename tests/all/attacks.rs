//! The sandbox attacked as a hostile guest or file would: precompiled native code, a cache others can write, handles
//! kept to escape the connection limit, memories multiplied, host names built to stall the grant, headers that
//! desync an intermediary, handles without end. Each test failed before its defence existed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use wsrun_test_artifacts::{MULTI_MEMORY, TEST_MISBEHAVE};

use crate::servers::{until_close, Server, Ws};
use crate::util::{run_with_input, Run, Running};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("attack-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wsrun_lines(run: &Run) -> Vec<&str> {
    run.stderr.lines().filter(|line| line.starts_with("wsrun: ")).collect()
}

/// `wsrun compile` of the misbehaving guest, into `dir`.
async fn precompiled(dir: &Path) -> PathBuf {
    let output = dir.join("misbehave.cwasm");
    let run = run_with_input(&["compile", TEST_MISBEHAVE, "-o", output.to_str().unwrap()], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    output
}

#[tokio::test(flavor = "multi_thread")]
async fn a_precompiled_file_runs_only_with_allow_precompiled() {
    let server = Server::echo().await;
    let dir = fresh_dir("precompiled");
    let file = precompiled(&dir).await;
    let file = file.to_str().unwrap();

    // "idle" connects first thing and prints "connected": neither may happen.
    let refused = run_with_input(&["--no-cache", file, &server.url, "idle"], b"").await;
    assert_eq!(refused.code(), Some(2), "{refused:?}");
    let lines = wsrun_lines(&refused);
    assert_eq!(lines.len(), 1, "one line: {refused:?}");
    assert!(lines[0].contains("precompiled guest") && lines[0].contains("--allow-precompiled"), "{refused:?}");
    assert!(refused.stdout.is_empty(), "{refused:?}");
    assert!(server.requests().is_empty(), "the refused file connected");

    let trusted = run_with_input(&["--allow-precompiled", file, &server.url, "exit-code"], b"").await;
    assert_eq!(trusted.code(), Some(42), "{trusted:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_precompiled_file_is_refused_before_anything_reads_its_code() {
    let server = Server::echo().await;
    let dir = fresh_dir("forged");
    let file = precompiled(&dir).await;
    // Change the code and recompute the digest, as an attacker would: the digest cannot tell.
    let mut bytes = std::fs::read(&file).unwrap();
    let (header, rest) = bytes.split_at_mut(8);
    let (digest, code) = rest.split_at_mut(32);
    let middle = code.len() / 2;
    code[middle..middle + 16].fill(0xcc);
    digest.copy_from_slice(&Sha256::digest(&*code));
    assert_eq!(header, b"WSRUNC1\n");
    let forged = dir.join("evil.wasm");
    std::fs::write(&forged, &bytes).unwrap();

    let run = run_with_input(&["--no-cache", forged.to_str().unwrap(), &server.url, "exit-code"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(wsrun_lines(&run).len(), 1, "{run:?}");
    assert!(run.stderr.contains("is a precompiled guest"), "{run:?}");
}

/// The exit-code guest with the cache in `dir`, verbose.
async fn cached_run(dir: &Path, server: &Server) -> Run {
    let args = ["--verbose", "--cache-dir", dir.to_str().unwrap(), TEST_MISBEHAVE, &server.url, "exit-code"];
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(42), "the guest runs, cache or not: {run:?}");
    run
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            found.extend(files_under(&entry.path()));
        } else {
            found.push(entry.path());
        }
    }
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_is_created_private() {
    let server = Server::echo().await;
    let dir = fresh_dir("private").join("wsrun");
    let run = cached_run(&dir, &server).await;
    assert!(run.stderr.contains("compiled cache stored"), "{run:?}");
    assert_eq!(mode(&dir), 0o700);
    let entries = files_under(&dir);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(mode(entries[0].parent().unwrap()), 0o700);
    assert_eq!(mode(&entries[0]), 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_directory_others_can_write_is_not_used() {
    let server = Server::echo().await;
    let dir = fresh_dir("shared");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = cached_run(&dir, &server).await;
    let warnings: Vec<_> = run.stderr.lines().filter(|l| l.starts_with("wsrun: warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{run:?}");
    assert!(warnings[0].contains("not using the compiled cache") && warnings[0].contains("written by others"), "{run:?}");
    assert!(!run.stderr.contains("compiled cache stored") && !run.stderr.contains("compiled cache hit"), "{run:?}");
    assert!(files_under(&dir).is_empty(), "something was cached in a shared directory");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_entry_others_can_write_is_not_run() {
    let server = Server::echo().await;
    let dir = fresh_dir("entry");
    cached_run(&dir, &server).await;
    let entry = files_under(&dir).remove(0);
    std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    let run = cached_run(&dir, &server).await;
    assert!(run.stderr.contains("wsrun: warning: not using the compiled cache entry"), "{run:?}");
    assert!(!run.stderr.contains("compiled cache hit"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_directory_of_another_user_is_not_used() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a directory to another user");
        return;
    }
    let server = Server::echo().await;
    let dir = fresh_dir("foreign-owner");
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let run = cached_run(&dir, &server).await;
    assert!(run.stderr.contains("wsrun: warning: not using the compiled cache") && run.stderr.contains("belongs to user 65534"), "{run:?}");
    assert!(files_under(&dir).is_empty());
}

/// TCP sockets the process has open (its signal handling holds Unix sockets of its own, not counted).
fn sockets(pid: u32) -> usize {
    let tcp: std::collections::HashSet<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| table.lines().skip(1).filter_map(|row| row.split_whitespace().nth(9).map(str::to_owned)).collect::<Vec<_>>())
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target.strip_prefix("socket:[").and_then(|rest| rest.strip_suffix(']')).map(str::to_owned)
        })
        .filter(|inode| tcp.contains(inode))
        .count()
}

/// Resident memory of the process, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn kept_handles_of_ended_connections_count_and_hold_no_socket() {
    let server = Server::echo().await;
    let mut wsrun = Running::spawn(&["--max-connections", "16", TEST_MISBEHAVE, &server.url, "hold-closed"]);
    wsrun.wait_for_line("held ").await;
    let printed = wsrun.stdout_so_far();
    assert!(printed.contains("held 16: ") && printed.contains("limit"), "{printed}");
    // The closing handshakes are done; the sockets must be gone though the guest keeps every handle.
    let pid = wsrun.pid();
    let deadline = Instant::now() + Duration::from_secs(3);
    while sockets(pid) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sockets(pid), 0, "sockets of ended connections are still open");
    wsrun.end_input(b"").await;
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(0), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_handles_do_not_count_and_nothing_piles_up() {
    let server = Server::echo().await;
    let mut wsrun = Running::spawn(&["--max-connections", "4", TEST_MISBEHAVE, &server.url, "churn", "300"]);
    wsrun.wait_for_line_within("churned 300", Duration::from_secs(20)).await;
    assert!(sockets(wsrun.pid()) <= 1, "sockets pile up: {}", sockets(wsrun.pid()));
    wsrun.end_input(b"").await;
    assert_eq!(wsrun.finish().await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_messages_are_bounded_per_session_whatever_the_handles() {
    // Each connection is offered 40 MiB; 16 of them, per-connection queues of 32 MiB, 64 MiB for the session: the
    // host may hold 64 MiB of messages, not 512.
    let server = Server::sending((0..40).map(|_| Message::binary(vec![7u8; 1 << 20])).collect()).await;
    let flags = ["--max-queued-bytes", "32M", "--max-session-queued-bytes", "64M"];
    let peak = peak_mib_holding_unread(&flags, &server.url, 16).await;
    assert!(peak < 250, "wsrun grew to {peak} MiB holding messages for a guest that never reads");
}

#[tokio::test(flavor = "multi_thread")]
async fn small_messages_do_not_hold_the_buffers_they_were_read_into() {
    // Each 1-byte message comes after 16 KiB of pongs, which the host reads and drops. A host that kept every
    // payload in the buffer it was read into would hold one 16 KiB buffer per queued byte: 64 MiB for these 4
    // connections of 1024 messages, which the queue limits count as 4 KiB.
    let server = Server::start(|mut ws: Ws| async move {
        let pong = Message::Pong(vec![0u8; 125].into());
        for _ in 0..1024 {
            for _ in 0..131 {
                ws.feed(pong.clone()).await.ok()?;
            }
            ws.feed(Message::binary(vec![1u8])).await.ok()?;
        }
        ws.flush().await.ok()?;
        until_close(ws).await
    })
    .await;
    let peak = peak_mib_holding_unread(&["--max-connections", "4"], &server.url, 4).await;
    assert!(peak < 40, "wsrun grew to {peak} MiB holding 4 KiB of small messages");
}

/// Run the `hold-unread` guest (as many connections as it may, never read) with `flags`, let the readers fill what
/// they may, and return the highest resident memory seen in 3 s, in MiB. The run must then end cleanly.
async fn peak_mib_holding_unread(flags: &[&str], url: &str, connections: usize) -> u64 {
    let mut args = flags.to_vec();
    args.extend([TEST_MISBEHAVE, url, "hold-unread"]);
    let mut wsrun = Running::spawn(&args);
    wsrun.wait_for_line(&format!("holding {connections}")).await;
    let pid = wsrun.pid();
    let mut peak = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        peak = peak.max(rss_mib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wsrun.end_input(b"").await;
    assert_eq!(wsrun.finish().await.code(), Some(0));
    peak
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_is_limited_over_all_linear_memories() {
    // 8 memories of 64 MiB each: every one is under 256 MiB, together they are not.
    let run = run_with_input(&["--max-memory", "256M", MULTI_MEMORY, "ws://127.0.0.1:9/"], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("memory limit reached") && run.stderr.contains("the session allows 256 MiB"), "{run:?}");
    let roomy = run_with_input(&["--max-memory", "1G", MULTI_MEMORY, "ws://127.0.0.1:9/"], b"").await;
    assert_eq!(roomy.code(), Some(0), "the guest itself is sound: {roomy:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_host_name_costs_the_grant_nothing() {
    let server = Server::echo().await;
    let started = Instant::now();
    let run = run_with_input(
        &["--timeout", "1s", "--allow", "*.*.example.com", TEST_MISBEHAVE, &server.url, "long-host"],
        b"",
    )
    .await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("long-host: invalid URL"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_that_frame_or_authenticate_the_request_are_refused() {
    let server = Server::echo().await;
    let run = run_with_input(&[TEST_MISBEHAVE, &server.url, "headers"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 13, "{run:?}");
    for line in &lines[..12] {
        assert!(line.contains(": invalid argument"), "not refused: {line}");
    }
    assert_eq!(lines[12], "X-Allowed: accepted");
    assert_eq!(server.requests().len(), 1, "only the allowed header's connection reached the server");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_cannot_hoard_handles() {
    let run = run_with_input(&[TEST_MISBEHAVE, "ws://127.0.0.1:9/", "handles"], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("trapped"), "{run:?}");
    // The session's handle table holds 10,000 (wasmtime's own component limit, 100,000, is far larger).
    assert!(run.stderr.contains("resource table has no free keys"), "{run:?}");
    assert!(!run.stdout.contains("20000 handles"), "the table grew past its limit: {run:?}");
}
