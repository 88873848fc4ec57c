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
    // The compiled guest, and its compiled functions: every file 0600 in a 0700 directory.
    let entries = files_under(&dir);
    assert_eq!(entries.iter().filter(|e| e.extension().is_some_and(|x| x == "cwasm")).count(), 1, "{entries:?}");
    assert!(entries.len() > 100, "the compiled functions are there too: {}", entries.len());
    for entry in &entries {
        assert_eq!((mode(entry.parent().unwrap()), mode(entry)), (0o700, 0o600), "{}", entry.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_directory_others_can_write_is_not_used() {
    let server = Server::echo().await;
    let dir = fresh_dir("shared");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = cached_run(&dir, &server).await;
    let warnings: Vec<_> = run.stderr.lines().filter(|l| l.starts_with("wsrun: warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{run:?}");
    assert!(
        warnings[0].contains("not using the compiled cache") && warnings[0].contains("written by others"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("compiled cache stored") && !run.stderr.contains("compiled cache hit"), "{run:?}");
    assert!(files_under(&dir).is_empty(), "something was cached in a shared directory");

    // A private cache directory inside one that everyone can write (and that is not sticky, as /tmp is): another
    // user could rename it away and put their own in its place.
    let parent = fresh_dir("shared-parent");
    let dir = parent.join("wsrun");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = cached_run(&dir, &server).await;
    let expected = format!("{} can be written by others (mode 777)", parent.display());
    assert!(
        run.stderr.contains("wsrun: warning: not using the compiled cache") && run.stderr.contains(&expected),
        "{run:?}"
    );
    assert!(files_under(&dir).is_empty(), "something was cached under a shared directory");
    // The same parent made sticky is as safe as /tmp.
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let run = cached_run(&dir, &server).await;
    assert!(run.stderr.contains("compiled cache stored"), "{run:?}");
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
    assert!(
        run.stderr.contains("wsrun: warning: not using the compiled cache")
            && run.stderr.contains("belongs to user 65534"),
        "{run:?}"
    );
    assert!(files_under(&dir).is_empty());
}

/// TCP sockets the process has open (its signal handling holds Unix sockets of its own, not counted).
fn sockets(pid: u32) -> usize {
    let tcp: std::collections::HashSet<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table.lines().skip(1).filter_map(|row| row.split_whitespace().nth(9).map(str::to_owned)).collect::<Vec<_>>()
        })
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
    assert!(
        run.stderr.contains("memory limit reached") && run.stderr.contains("the session allows 256 MiB"),
        "{run:?}"
    );
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

/// A bare GUEST name is a bundled guest, never a file of that name in the current directory, which anyone who can
/// write there could plant (before, `wsrun URL` ran a planted `./client`).
#[tokio::test(flavor = "multi_thread")]
async fn a_planted_file_named_like_a_guest_is_not_run() {
    let server = Server::echo().await;
    let dir = fresh_dir("planted");
    std::fs::copy(TEST_MISBEHAVE, dir.join("client")).unwrap();
    std::fs::copy(TEST_MISBEHAVE, dir.join("helper")).unwrap();
    let in_dir = |args: &[&str]| {
        let mut command = crate::util::wsrun(args);
        command.current_dir(&dir);
        crate::util::run_command(command)
    };
    let run = in_dir(&[&server.url]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with(&format!("Connected to {}", server.url)), "not the bundled client: {run:?}");
    let run = in_dir(&["client", &server.url, "exit-code"]).await;
    assert_ne!(run.code(), Some(42), "the planted ./client ran: {run:?}");
    let run = in_dir(&["helper", &server.url, "exit-code"]).await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(
        wsrun_lines(&run),
        ["wsrun: helper is not a bundled guest (client, echo, roundtrip); to run the file of that name, use ./helper"]
    );
    let run = in_dir(&["./helper", &server.url, "exit-code"]).await;
    assert_eq!(run.code(), Some(42), "a path runs the file: {run:?}");
    let run = in_dir(&["--sessions", "1", "helper", &server.url]).await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    let run = in_dir(&["compile", "helper", "-o", "x.cwasm"]).await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(!dir.join("x.cwasm").exists());
}

/// `--output DIR`: each log is made new and never through a link, and a directory others can write is refused
/// unless it is sticky (before, a link planted as `0.log` had the session's output appended to its target).
#[tokio::test(flavor = "multi_thread")]
async fn session_logs_are_made_new_in_a_private_directory() {
    let server = Server::echo().await;
    let dir = fresh_dir("output");
    let logs = dir.join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, logs.join("0.log")).unwrap();
    let sessions = |dir: &Path| {
        let dir = dir.to_str().unwrap().to_owned();
        let url = server.url.clone();
        async move { run_with_input(&["--sessions", "2", "--output", &dir, TEST_MISBEHAVE, &url, "env"], b"").await }
    };
    sessions(&logs).await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n", "the planted link was written through");
    assert!(std::fs::read_to_string(logs.join("1.log")).unwrap().starts_with("env: "));

    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = sessions(&open).await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("writable by others"), "{run:?}");
    assert!(files_under(&open).is_empty());
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let run = sessions(&open).await;
    assert_eq!(run.code(), Some(0), "a sticky directory is fine: {run:?}");
}

/// `--max-output`: a session that writes more has its log cut there, said in the log and counted in the summary
/// (before, nothing bounded it: 100 MiB in 0.3 s).
#[tokio::test(flavor = "multi_thread")]
async fn session_logs_are_cut_at_max_output() {
    let server = Server::echo().await;
    let dir = fresh_dir("max-output");
    let logs = dir.join("logs");
    let args = ["--sessions", "2", "--duration", "1s", "--output", logs.to_str().unwrap(), "--max-output", "100K"];
    let mut args = args.to_vec();
    args.extend([TEST_MISBEHAVE, &server.url, "connected-stdout-flood"]);
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("  output     2 sessions wrote more than --max-output: cut there"), "{run:?}");
    for index in 0..2 {
        let log = std::fs::read(logs.join(format!("{index}.log"))).unwrap();
        assert!(log.len() < 101 << 10, "{} bytes", log.len());
        assert!(log.ends_with(b"[wsrun: the output is cut here: --max-output reached]\n"));
    }
}

/// A send larger than the message limit is `message-too-large`, before anything is copied; before, one over
/// 128 MiB trapped on wasmtime's limit for data a host call takes, whatever `--max-memory` allowed.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_over_the_message_limit_is_refused_not_trapped() {
    let server = Server::echo().await;
    let run =
        run_with_input(&["--max-memory", "1G", wsrun_test_artifacts::TEST_BIG_SEND, &server.url, "129"], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(wsrun_lines(&run), [format!("wsrun: send failed: message too large ({} bytes)", 129 << 20)], "{run:?}");
    let run = run_with_input(&[wsrun_test_artifacts::TEST_BIG_SEND, &server.url, "17"], b"").await;
    assert_eq!(wsrun_lines(&run), [format!("wsrun: send failed: message too large ({} bytes)", 17 << 20)], "{run:?}");
}

/// `wsrun report merge` of a report whose histogram claims a 4 GiB payload: refused from its header, without the
/// allocation (before, it allocated 4 GiB and then failed; under a 1 GiB address-space limit it aborted).
#[tokio::test(flavor = "multi_thread")]
async fn a_report_cannot_make_merge_allocate_what_it_does_not_hold() {
    let server = Server::echo().await;
    let dir = fresh_dir("report-bomb");
    let report = dir.join("report.json");
    let run = run_with_input(&["--sessions", "1", "--report", report.to_str().unwrap(), &server.url], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let encoded = json["histograms"]["connect_us"].as_str().unwrap();
    let mut histogram = data_encoding::BASE64.decode(encoded.as_bytes()).unwrap();
    histogram[4..8].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    json["histograms"]["connect_us"] = data_encoding::BASE64.encode(&histogram).into();
    std::fs::write(&report, json.to_string()).unwrap();

    let mut command = crate::util::wsrun(&["report", "merge", report.to_str().unwrap()]);
    // SAFETY: setrlimit in the child before exec, with a valid struct; nothing else runs there.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 1 << 30, rlim_max: 1 << 30 };
            match libc::setrlimit(libc::RLIMIT_AS, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let run = crate::util::run_command(command).await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("a histogram is not one wsrun writes"), "{run:?}");
}
