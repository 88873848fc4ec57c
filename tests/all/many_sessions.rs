//! `wsrun --sessions N`: many sessions of one guest in one process, their outcomes and traffic counted against what
//! the servers saw, the failure threshold, `--duration` and Ctrl+C ending every session with 1001, and the
//! distributed run: shards (`--shard I/COUNT` or Kubernetes' environment) whose reports `wsrun report merge` adds up.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::servers::{self, Answer, Server, Ws};
use crate::util::{within, wsrun, Run};

/// How long a run of many sessions may take: generous, the machine may be busy building; only a hang fails.
const LONG: Duration = Duration::from_secs(120);

/// Run `command` with empty stdin and wait for it, at most [`LONG`].
pub async fn run(mut command: Command) -> Run {
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn wsrun");
    drop(child.stdin.take());
    let output = within(LONG, "wsrun's exit", child.wait_with_output()).await.expect("wait for wsrun");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// A fresh, empty directory for one test's reports and logs.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("many-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

pub fn path_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

pub fn read_report(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read the report {}: {e}", path.display()));
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON report: {e}: {text}"));
    assert_eq!(report["format"], "wsrun-report/1", "{report:#}");
    report
}

/// A whole number field of the report, by JSON pointer (`/outcomes/failed`).
pub fn count(report: &Value, pointer: &str) -> u64 {
    report.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("no count at {pointer} in {report:#}"))
}

/// The raw histogram `name` (`connect_us`, `duration_us`) of a report: base64 of HdrHistogram's V2 serialization.
fn histogram(report: &Value, name: &str) -> Histogram<u64> {
    let text = report["histograms"][name].as_str().unwrap_or_else(|| panic!("no histogram {name} in {report:#}"));
    let bytes = data_encoding::BASE64.decode(text.as_bytes()).expect("base64");
    hdrhistogram::serialization::Deserializer::new().deserialize(&mut &bytes[..]).expect("a V2 HDR histogram")
}

/// The report's percentiles of `name` are those of its raw histogram (within its precision), and in order.
fn assert_percentiles_of(report: &Value, name: &str, histogram: &Histogram<u64>) {
    let percentiles = &report["percentiles"][name];
    let mut previous = 0;
    for (key, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        let reported = percentiles[key].as_u64().unwrap_or_else(|| panic!("no {name}.{key} in {report:#}"));
        let expected = if key == "max" { histogram.max() } else { histogram.value_at_quantile(quantile) };
        assert!(histogram.equivalent(reported, expected), "{name}.{key}: reported {reported}, histogram {expected}");
        assert!(reported >= previous, "{name}.{key} {reported} below the percentile before it: {percentiles}");
        previous = reported;
    }
}

/// What a scripted server sent and received, text and binary messages only, payload bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Tally {
    sent: u64,
    sent_bytes: u64,
    received: u64,
    received_bytes: u64,
    /// Echoes that differed from what was sent.
    wrong: u64,
    /// Connections upgraded.
    upgraded: u64,
}

/// When each upgrade request reached a [`scripted`] server.
type Arrivals = Arc<Mutex<Vec<Instant>>>;

/// A server that upgrades every connection but each `refuse_every`-th one (answered with HTTP 500), sends `rounds`
/// messages on each (text and binary, of sizes that differ between connections), waits for each one's echo, then
/// closes with 1000, keeping its own tally and the time each request came.
async fn scripted(rounds: usize, refuse_every: Option<usize>) -> (Server, Arc<Mutex<Tally>>, Arrivals) {
    let requests = AtomicUsize::new(0);
    let arrivals = Arrivals::default();
    let arrived = arrivals.clone();
    let route = move |_: &str| {
        arrived.lock().unwrap().push(Instant::now());
        match refuse_every {
            Some(every) if requests.fetch_add(1, Ordering::SeqCst) % every == every - 1 => Answer::Status(500, None),
            _ => Answer::Upgrade,
        }
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let counted = tally.clone();
    let server = Server::routed(route, move |mut ws: Ws| {
        let tally = counted.clone();
        async move {
            let connection = {
                let mut tally = tally.lock().unwrap();
                tally.upgraded += 1;
                tally.upgraded as usize
            };
            for round in 0..rounds {
                let size = (connection * 7 + round * 31) % 200;
                let message = if round % 2 == 0 {
                    Message::text(format!("round {round} {}", "é".repeat(size)))
                } else {
                    Message::binary(vec![round as u8; size])
                };
                ws.send(message.clone()).await.ok()?;
                {
                    let mut tally = tally.lock().unwrap();
                    tally.sent += 1;
                    tally.sent_bytes += message.len() as u64;
                }
                let echo = loop {
                    match ws.next().await?.ok()? {
                        echo @ (Message::Text(_) | Message::Binary(_)) => break echo,
                        Message::Close(_) => return None,
                        _ => {}
                    }
                };
                let mut tally = tally.lock().unwrap();
                tally.received += 1;
                tally.received_bytes += echo.len() as u64;
                tally.wrong += u64::from(echo != message);
            }
            ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "done".into() })).await.ok()?;
            servers::until_close(ws).await
        }
    })
    .await;
    (server, tally, arrivals)
}

/// Each of `lines` begins a line of the summary `stdout` (a whole line, or the start of one whose end varies).
pub fn assert_summary(stdout: &str, lines: &[&str]) {
    for expected in lines {
        assert!(stdout.lines().any(|line| line.starts_with(expected)), "no summary line {expected:?} in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_echo_sessions_carry_what_the_server_counted() {
    let dir = scratch("echo");
    let report_path = dir.join("report.json");
    let (server, tally, arrivals) = scripted(4, None).await;
    let args = ["--sessions", "200", "--ramp-up", "1s", "--report", path_arg(&report_path), "echo", &server.url];
    let run = run(wsrun(&args)).await;
    let tally = *tally.lock().unwrap();
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_summary(
        &run.stdout,
        &[
            "  outcomes   200 succeeded (exited 0); 0 failed",
            "  failures   0 of 200 (0.0%), at most 0 allowed",
            "  connect    200 opened, 0 failed; ",
            "  sent       800 messages (",
            "  received   800 messages (",
            "  verdict    passed",
        ],
    );
    // Session s starts at 1 s * s/200: each request comes no sooner than its time after the first (less a margin
    // for the first's own delay: a busy machine may start the first few together), and none more than 3 s late.
    assert!(run.elapsed >= Duration::from_millis(995), "the starts were not spread over --ramp-up: {run:?}");
    let mut arrivals = arrivals.lock().unwrap().clone();
    arrivals.sort();
    assert_eq!(arrivals.len(), 200);
    for (index, arrival) in arrivals.iter().enumerate() {
        let after = arrival.duration_since(arrivals[0]);
        let due = Duration::from_millis(5 * index as u64);
        assert!(
            after + Duration::from_millis(500) >= due && after <= due + Duration::from_secs(3),
            "request {index} came {after:?} after the first, due at {due:?}"
        );
    }
    assert_eq!((tally.upgraded, tally.sent, tally.received, tally.wrong), (200, 800, 800, 0), "{run:?}");

    let report = read_report(&report_path);
    assert_eq!(report["guest"], "echo", "{report:#}");
    assert_eq!(report["url"], server.url.as_str(), "{report:#}");
    assert_eq!(report["shard"], serde_json::json!({"index": 0, "count": 1}), "{report:#}");
    for (pointer, expected) in [
        ("/sessions", 200),
        ("/outcomes/succeeded", 200),
        ("/outcomes/failed", 0),
        ("/outcomes/exit_codes/0", 200),
        ("/outcomes/trapped", 0),
        ("/outcomes/timed_out", 0),
        ("/outcomes/stopped", 0),
        ("/outcomes/cancelled", 0),
        ("/outcomes/not_started", 0),
        ("/connects", 200),
        ("/failed_connects", 0),
        // The guest received what the server sent, and sent what the server received.
        ("/messages_received", tally.sent),
        ("/bytes_received", tally.sent_bytes),
        ("/messages_sent", tally.received),
        ("/bytes_sent", tally.received_bytes),
    ] {
        assert_eq!(count(&report, pointer), expected, "{pointer} in {report:#}");
    }
    assert_eq!(report["outcomes"]["exit_codes"].as_object().map(|codes| codes.len()), Some(1), "{report:#}");
    assert!(count(&report, "/peak_rss_bytes") > 0, "{report:#}");
    assert!(count(&report, "/elapsed_ms") >= 995, "{report:#}");
    for name in ["connect_us", "duration_us"] {
        let histogram = histogram(&report, name);
        assert_eq!(histogram.len(), 200, "one {name} per session: {report:#}");
        assert_percentiles_of(&report, name, &histogram);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_counted_and_max_failures_decides_the_exit_code() {
    let dir = scratch("failures");
    // 40 sessions, every 4th upgrade refused: 10 sessions whose echo guest cannot connect and exits 1.
    let cases: &[(&[&str], i32)] = &[
        (&[], 1),
        (&["--max-failures", "0"], 1),
        (&["--max-failures", "9"], 1),
        (&["--max-failures", "10"], 0),
        (&["--max-failures", "50"], 0),
        (&["--max-failures", "20%"], 1),
        (&["--max-failures", "25%"], 0),
        (&["--max-failures", "30%"], 0),
    ];
    for (index, (threshold, expected)) in cases.iter().enumerate() {
        let (server, tally, _) = scripted(2, Some(4)).await;
        let report_path = dir.join(format!("report-{index}.json"));
        let logs = dir.join(format!("logs-{index}"));
        let mut args = vec!["--sessions", "40", "--report", path_arg(&report_path), "--output", path_arg(&logs)];
        args.extend_from_slice(threshold);
        args.extend(["echo", server.url.as_str()]);
        let run = run(wsrun(&args)).await;
        assert_eq!(run.code(), Some(*expected), "{threshold:?}: {run:?}");
        // The verdict the summary prints is the one of the threshold given, the same as the exit code's.
        let allowed = threshold.get(1).copied().unwrap_or("0");
        let verdict = if *expected == 0 {
            "passed".to_owned()
        } else {
            format!("FAILED: 10 sessions failed, at most {allowed} allowed")
        };
        for line in
            [format!("  failures   10 of 40 (25.0%), at most {allowed} allowed"), format!("  verdict    {verdict}")]
        {
            assert!(run.stdout.lines().any(|l| l == line), "{threshold:?}: no line {line:?} in {run:?}");
        }
        assert_eq!(tally.lock().unwrap().upgraded, 30, "{run:?}");

        let report = read_report(&report_path);
        for (pointer, expected) in [
            ("/sessions", 40),
            ("/outcomes/succeeded", 30),
            ("/outcomes/failed", 10),
            ("/outcomes/exit_codes/0", 30),
            ("/outcomes/exit_codes/1", 10),
            ("/outcomes/trapped", 0),
            ("/outcomes/timed_out", 0),
            ("/connects", 30),
            ("/failed_connects", 10),
        ] {
            assert_eq!(count(&report, pointer), expected, "{pointer} in {report:#}");
        }
        // Each failed session's own words are in its log: DIR/<index>.log, stdout and stderr together.
        let mut failed_logs = 0;
        for session in 0..40 {
            let log = std::fs::read_to_string(logs.join(format!("{session}.log"))).unwrap_or_default();
            failed_logs += usize::from(log.contains("could not connect"));
        }
        assert_eq!(failed_logs, 10, "the logs under {}", logs.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn duration_stops_long_sessions_with_1001_each() {
    let dir = scratch("duration");
    let report_path = dir.join("report.json");
    // Streams a message every 100 ms without end: the echo guest never ends on its own.
    let server = Server::streaming(Duration::from_millis(100)).await;
    let args = ["--sessions", "50", "--duration", "2s", "--report", path_arg(&report_path), "echo", &server.url];
    let run = run(wsrun(&args)).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_summary(
        &run.stdout,
        &[
            "  outcomes   50 stopped at --duration; 0 failed",
            "  failures   0 of 50 (0.0%), at most 0 allowed",
            "  verdict    passed",
        ],
    );
    assert!(run.elapsed >= Duration::from_secs(2), "ended before --duration: {run:?}");
    assert!(run.elapsed < Duration::from_secs(30), "--duration did not end the run: {run:?}");

    let report = read_report(&report_path);
    let expected = [("/sessions", 50), ("/outcomes/stopped", 50), ("/outcomes/failed", 0), ("/connects", 50)];
    for (pointer, expected) in expected {
        assert_eq!(count(&report, pointer), expected, "{pointer} in {report:#}");
    }
    let closes = server.closes(50).await;
    assert_eq!(closes.len(), 50, "connections the server saw end: {closes:?}");
    assert!(closes.iter().all(|close| matches!(close, Some((1001, _)))), "not all 1001: {closes:?}");
}

/// Start `sessions` echo sessions against a server that sends each one message and then waits, send `signal` once
/// every session has echoed it (and, with `progress`, once a periodic progress line is due), and check the end:
/// exit 130, the summary and report still written, every session cancelled and closed with 1001. Returns the run and
/// its report's path.
async fn interrupt(name: &str, signal: i32, sessions: u64, progress: bool) -> (Run, PathBuf) {
    let dir = scratch(name);
    let report_path = dir.join("report.json");
    // Each connection: one message, its echo (the guest holds the connection), then quiet until the client closes.
    let (ready_tx, mut ready) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::start(move |mut ws: Ws| {
        let ready_tx = ready_tx.clone();
        async move {
            ws.send(Message::text("hello")).await.ok()?;
            let _echo = ws.next().await?.ok()?;
            let _ = ready_tx.send(());
            servers::until_close(ws).await
        }
    })
    .await;
    let number = sessions.to_string();
    let args = ["--sessions", &number, "--report", path_arg(&report_path), "echo", &server.url];
    let started = Instant::now();
    let mut child = wsrun(&args).spawn().expect("spawn wsrun");
    drop(child.stdin.take());
    for _ in 0..sessions {
        within(LONG, "every session connected and echoing", ready.recv()).await;
    }
    if progress {
        // Idle long enough for a periodic progress line (every 2 s).
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let pid = child.id().expect("wsrun is running") as i32;
    // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
    let output = within(LONG, "wsrun's exit after the signal", child.wait_with_output()).await.expect("wait for wsrun");
    let run = Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    assert_eq!(run.code(), Some(130), "{run:?}");
    let summary = interrupted_summary(sessions);
    assert_summary(&run.stdout, &summary.iter().map(String::as_str).collect::<Vec<_>>());

    let report = read_report(&report_path);
    for (pointer, expected) in
        [("/sessions", sessions), ("/outcomes/cancelled", sessions), ("/outcomes/failed", 0), ("/connects", sessions)]
    {
        assert_eq!(count(&report, pointer), expected, "{pointer} in {report:#}");
    }
    let closes = server.closes(sessions as usize).await;
    assert_eq!(closes.len(), sessions as usize, "connections the server saw end: {closes:?}");
    assert!(closes.iter().all(|close| matches!(close, Some((1001, _)))), "not all 1001: {closes:?}");
    (run, report_path)
}

/// The summary lines of `sessions` echo sessions that each echoed "hello" and were then interrupted.
fn interrupted_summary(sessions: u64) -> Vec<String> {
    vec![
        format!("  outcomes   {sessions} cancelled (Ctrl+C or SIGTERM); 0 failed"),
        format!("  connect    {sessions} opened, 0 failed; "),
        "  sessions   all connected ".to_owned(),
        format!("  sent       {sessions} messages ("),
        format!("  received   {sessions} messages ("),
        format!("  failures   0 of {sessions} (0.0%), at most 0 allowed"),
        "  verdict    FAILED: the run was interrupted or is incomplete".to_owned(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_closes_every_session_with_1001_and_still_reports() {
    let (run, report) = interrupt("interrupt", libc::SIGINT, 20, true).await;
    // stderr is a pipe here: plain progress lines, no terminal codes. Once every session has echoed its message
    // and waits, a line says so.
    let idle = "wsrun: progress: 20/20 started, 20 running, 0 finished, 0 failed; ";
    let line = run.stderr.lines().find(|line| line.starts_with(idle)).unwrap_or_else(|| panic!("no {idle:?}: {run:?}"));
    let rates = &line[idle.len()..];
    let (messages, bytes) = rates.split_once(" msg/s, ").unwrap_or_else(|| panic!("no rates in {line:?}"));
    assert!(messages.parse::<u64>().is_ok() && bytes.ends_with("B/s"), "rates {rates:?} in {line:?}");
    assert!(!run.stderr.contains('\x1b'), "terminal codes on a pipe: {run:?}");

    // A report of an interrupted run fails the verdict of any merge it is part of, whatever the threshold.
    let merge = run_merge(&[path_arg(&report)]).await;
    assert_eq!(merge.code(), Some(1), "{merge:?}");
    assert_summary(&merge.stdout, &interrupted_summary(20).iter().map(String::as_str).collect::<Vec<_>>());
    let merge = run_merge(&["--max-failures", "100%", path_arg(&report)]).await;
    assert_eq!(merge.code(), Some(1), "{merge:?}");
}

/// `wsrun report merge ARGS...`.
pub async fn run_merge(args: &[&str]) -> Run {
    run(wsrun(&[&["report", "merge"], args].concat())).await
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_is_handled_like_ctrl_c() {
    interrupt("sigterm", libc::SIGTERM, 10, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_exits_at_once_while_sessions_wait_for_their_close() {
    // A server that never answers a close frame: after the first Ctrl+C every session waits for the answer (up to a
    // long --close-timeout); the second must not wait for them. Each connection is counted once its echo has come
    // back: the session is then connected on wsrun's side too (a Ctrl+C in the middle of a handshake sends no close).
    let (url, listener) = crate::raw::listen().await;
    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let events = events.clone();
            tokio::spawn(async move {
                crate::raw::upgrade(&mut tcp).await?;
                tcp.write_all(&[0x81, 0x02, b'h', b'i']).await.ok()?;
                crate::raw::read_frame(&mut tcp).await?;
                let _ = events.send(None);
                let _ = events.send(Some(crate::raw::read_close_code(&mut tcp).await?));
                tokio::io::copy(&mut tcp, &mut tokio::io::sink()).await.ok()
            });
        }
    });
    let wsrun = crate::util::Running::spawn(&["--sessions", "3", "--close-timeout", "60s", "echo", &url]);
    for _ in 0..3 {
        assert_eq!(within(LONG, "every session connected", seen.recv()).await, Some(None));
    }
    wsrun.signal(libc::SIGINT);
    for _ in 0..3 {
        assert_eq!(within(LONG, "every session's close frame", seen.recv()).await, Some(Some(1001)));
    }
    wsrun.signal(libc::SIGINT);
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(130), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(2), "took {:?} after the second Ctrl+C: {run:?}", run.elapsed);
}

/// The soft limit on open files (often 1,024) is raised to the hard one: more sessions than the soft limit allows
/// run side by side.
#[tokio::test(flavor = "multi_thread")]
async fn more_sessions_than_the_soft_open_file_limit_run() {
    let (url, listener) = crate::raw::listen().await;
    // Every connection is held until all 150 are open (or 10 s have passed: some sessions could not open theirs),
    // so all are open at once.
    let (opened, mut open) = tokio::sync::mpsc::unbounded_channel();
    let (all_open, all) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (opened, mut all) = (opened.clone(), all.clone());
            tokio::spawn(async move {
                crate::raw::upgrade(&mut tcp).await?;
                let _ = opened.send(());
                let _ = tokio::time::timeout(Duration::from_secs(10), all.wait_for(|all| *all)).await;
                tcp.write_all(&[0x88, 0x02, 0x03, 0xe8]).await.ok()?;
                crate::raw::read_close_code(&mut tcp).await
            });
        }
    });
    tokio::spawn(async move {
        for _ in 0..150 {
            open.recv().await;
        }
        let _ = all_open.send(true);
    });
    let mut command = wsrun(&["--sessions", "150", "echo", &url]);
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing but its own stack.
    unsafe {
        command.pre_exec(|| {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = 64;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = run(command).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_summary(&run.stdout, &["  failures   0 of 150 (0.0%), at most 0 allowed", "  verdict    passed"]);
}

/// The sessions of the distributed simulation, not a multiple of the shard count: shards 0 and 1 run 11, 2 and 3
/// run 10.
const SHARDED: u64 = 42;

#[tokio::test(flavor = "multi_thread")]
async fn four_shards_merged_count_what_one_process_counts() {
    let dir = scratch("shards");
    let sessions = SHARDED.to_string();
    // Every 7th upgrade is refused: 6 failures in all, however the shards' connections interleave.
    let (single_server, ..) = scripted(3, Some(7)).await;
    let single_path = dir.join("single.json");
    let single = wsrun(&["--sessions", &sessions, "--report", path_arg(&single_path), "echo", &single_server.url]);

    let (server, tally, _) = scripted(3, Some(7)).await;
    let shard_paths: Vec<PathBuf> = (0..4).map(|index| dir.join(format!("shard-{index}.json"))).collect();
    let shards = shard_paths.iter().enumerate().map(|(index, path)| {
        let shard = format!("{index}/4");
        let mut args = vec!["--sessions", &sessions, "--max-failures", "100%", "--report", path_arg(path)];
        if index < 3 {
            args.extend(["--shard", shard.as_str()]);
        }
        args.extend(["echo", server.url.as_str()]);
        let mut command = wsrun(&args);
        if index == 3 {
            // As a pod of a Kubernetes Indexed Job finds it.
            command.env("JOB_COMPLETION_INDEX", "3").env("WSRUN_SHARD_COUNT", "4");
        }
        run(command)
    });
    let (single, shards) = tokio::join!(run(single), futures_util::future::join_all(shards));
    assert_eq!(single.code(), Some(1), "6 failures over the default --max-failures 0: {single:?}");
    for shard in &shards {
        assert_eq!(shard.code(), Some(0), "{shard:?}");
    }
    assert_eq!(tally.lock().unwrap().upgraded, SHARDED - 6);

    let shard_reports: Vec<Value> = shard_paths.iter().map(|path| read_report(path)).collect();
    for (index, report) in shard_reports.iter().enumerate() {
        assert_eq!(report["shard"], serde_json::json!({"index": index, "count": 4}), "{report:#}");
        assert_eq!(count(report, "/sessions"), if index < 2 { 11 } else { 10 }, "{report:#}");
    }

    let merged_path = dir.join("merged.json");
    let mut args = vec!["report", "merge", "--report", path_arg(&merged_path)];
    args.extend(shard_paths.iter().map(|path| path_arg(path)));
    let merge = run(wsrun(&args)).await;
    assert_eq!(merge.code(), Some(1), "6 failures over the default --max-failures 0: {merge:?}");
    let first = format!("42 sessions of echo against {}, in ", server.url);
    let merged_summary = [
        first.as_str(),
        "  outcomes   36 succeeded (exited 0), 6 exited 1; 6 failed",
        "  connect    36 opened, 6 failed; ",
        "  failures   6 of 42 (14.3%), at most 0 allowed",
        "  verdict    FAILED: 6 sessions failed, at most 0 allowed",
    ];
    assert_summary(&merge.stdout, &merged_summary);
    let merged = read_report(&merged_path);
    let single = read_report(&single_path);
    assert_eq!(merged["shard"], serde_json::json!({"index": 0, "count": 1}), "{merged:#}");
    assert_eq!(merged["guest"], "echo", "{merged:#}");
    assert_eq!(merged["url"], server.url.as_str(), "{merged:#}");
    // Everything but the timings is the same as one process running all the sessions.
    assert_eq!(count(&merged, "/outcomes/failed"), 6, "{merged:#}");
    assert_eq!(merged["outcomes"], single["outcomes"], "merged {merged:#}\nsingle {single:#}");
    for field in [
        "sessions",
        "connects",
        "failed_connects",
        "messages_sent",
        "bytes_sent",
        "messages_received",
        "bytes_received",
    ] {
        assert_eq!(merged[field], single[field], "{field}: merged {merged:#}\nsingle {single:#}");
    }
    assert_eq!(count(&merged, "/sessions"), SHARDED);

    // The merged histograms are the sum of the shards', and the merged percentiles are theirs.
    for name in ["connect_us", "duration_us"] {
        let mut expected = histogram(&shard_reports[0], name);
        expected.auto(true);
        for report in &shard_reports[1..] {
            expected.add(histogram(report, name)).expect("add the shards' histograms");
        }
        let reported = histogram(&merged, name);
        assert_eq!(reported.len(), expected.len(), "{name}: {merged:#}");
        for bucket in expected.iter_recorded() {
            let value = bucket.value_iterated_to();
            assert_eq!(reported.count_at(value), expected.count_at(value), "{name} at {value}");
        }
        assert_percentiles_of(&merged, name, &expected);
    }
    assert_eq!(histogram(&merged, "duration_us").len(), SHARDED, "one duration per session");

    // --max-failures applies to the merged total.
    let mut args = vec!["report", "merge", "--max-failures", "6"];
    args.extend(shard_paths.iter().map(|path| path_arg(path)));
    let merge = run(wsrun(&args)).await;
    assert_eq!(merge.code(), Some(0), "{merge:?}");
    assert_summary(
        &merge.stdout,
        &[&merged_summary[..3], &["  failures   6 of 42 (14.3%), at most 6 allowed", "  verdict    passed"]].concat(),
    );

    // Every shard once: a missing or repeated one is not the whole run.
    let three: Vec<&str> = ["report", "merge", "--max-failures", "6"]
        .into_iter()
        .chain(shard_paths[..3].iter().map(|path| path_arg(path)))
        .collect();
    let missing = run(wsrun(&three)).await;
    assert_eq!(missing.code(), Some(2), "{missing:?}");
    assert!(missing.stderr.contains("shards 3 of 4 are missing"), "{missing:?}");
    let partial = run(wsrun(&[three.as_slice(), &["--partial"]].concat())).await;
    assert_eq!(partial.code(), Some(1), "a partial merge fails its verdict: {partial:?}");
    let twice = run(wsrun(&[three.as_slice(), &[path_arg(&shard_paths[0])]].concat())).await;
    assert_eq!(twice.code(), Some(2), "{twice:?}");
    assert!(twice.stderr.contains("is given twice"), "{twice:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_still_connecting_at_the_end_of_duration_fail() {
    let (url, _requests, _server) = servers::silent().await;
    let dir = scratch("never-connected");
    let report_path = dir.join("report.json");
    let run =
        run(wsrun(&["--sessions", "3", "--duration", "1s", "--report", path_arg(&report_path), "echo", &url])).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    let report = read_report(&report_path);
    assert_eq!((count(&report, "/outcomes/stopped"), count(&report, "/outcomes/failed")), (3, 3), "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_that_cannot_be_written_stops_the_run_before_it_starts() {
    let (server, tally, _) = scripted(1, None).await;
    let dir = scratch("unwritable");
    let run = run(wsrun(&["--sessions", "5", "--report", path_arg(&dir), "echo", &server.url])).await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.starts_with("wsrun: cannot write --report"), "{run:?}");
    assert_eq!(tally.lock().unwrap().upgraded, 0, "the sessions ran before the report was found unwritable");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_shards_and_thresholds_are_usage_errors() {
    // Port 9 (discard) is never listened on by the tests: nothing may get as far as connecting anyway.
    let url = "ws://127.0.0.1:9/";
    let cases: &[(&[&str], &[(&str, &str)], &str)] = &[
        (&["--sessions", "4", "--shard", "4/4", url], &[], "--shard"),
        (&["--sessions", "4", "--shard", "0/0", url], &[], "--shard"),
        (&["--sessions", "4", "--shard", "one/4", url], &[], "--shard"),
        (&["--sessions", "4", "--max-failures", "lots", url], &[], "--max-failures"),
        (&["--sessions", "4", url], &[("JOB_COMPLETION_INDEX", "1")], "WSRUN_SHARD_COUNT"),
        (&["--sessions", "4", url], &[("JOB_COMPLETION_INDEX", "4"), ("WSRUN_SHARD_COUNT", "4")], "shard"),
        (&["report", "merge"], &[], "usage: wsrun report merge"),
        (&["--sessions", "0", url], &[], "at least 1 session"),
        (&["--stages", "1s", url], &[], "invalid --stages"),
        (&["--stages", "1s:2", "--sessions", "3", url], &[], "--sessions"),
        (&["--arrival-rate", "5/s", url], &[], "--arrival-rate needs --sessions N"),
        (&["--ramp-up", "1s", url], &[], "go with --sessions N"),
    ];
    for (args, environment, needle) in cases {
        let mut command = wsrun(args);
        command.envs(environment.iter().copied());
        let run = run(command).await;
        assert_eq!(run.code(), Some(2), "{args:?} {environment:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?}: {run:?}");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {args:?} {environment:?}: {run:?}");
        let line = lines[0].to_lowercase();
        assert!(line.starts_with("wsrun: ") && line.contains(&needle.to_lowercase()), "expected {needle:?}: {run:?}");
    }
}

/// Each session gets its index and the run's size, and nothing else from the environment unless `--env` gives it.
#[tokio::test(flavor = "multi_thread")]
async fn each_session_gets_its_index_and_the_number_of_sessions() {
    let dir = scratch("session-env");
    let logs = dir.join("logs");
    let server = Server::echo().await;
    let misbehave = wsrun_test_artifacts::TEST_MISBEHAVE;
    let run = run(wsrun(&["--sessions", "3", "--output", path_arg(&logs), misbehave, &server.url, "env"])).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    for index in 0..3 {
        let log = std::fs::read_to_string(logs.join(format!("{index}.log"))).unwrap();
        let expected = format!("env: [(\"WSRUN_SESSION_INDEX\", \"{index}\"), (\"WSRUN_SESSIONS\", \"3\")]\n");
        assert_eq!(log, expected, "session {index}");
    }
}

/// `--timeout` is each session's own limit, and a session that reaches it is counted as timed out: a failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_past_its_timeout_is_counted_timed_out() {
    let server = Server::echo().await;
    let misbehave = wsrun_test_artifacts::TEST_MISBEHAVE;
    let run = run(wsrun(&["--sessions", "2", "--timeout", "500ms", misbehave, &server.url, "idle"])).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_summary(
        &run.stdout,
        &[
            "  outcomes   2 timed out; 2 failed",
            "  failures   2 of 2 (100.0%), at most 0 allowed",
            "         2  timed out (--timeout 0.5s)",
            "  verdict    FAILED: 2 sessions failed, at most 0 allowed",
        ],
    );
    assert_eq!(server.closes(2).await, vec![Some((1001, String::new())); 2], "each closed with 1001 at its timeout");
}

/// At a scale CI affords, what the 100,000-session runs of BENCHMARKS.md check: every session connected, and every
/// one closed cleanly (1001) when --duration stopped it.
#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_idle_sessions_all_connect_and_all_close_with_1001() {
    let server = Server::echo().await;
    let args = ["--sessions", "2000", "--duration", "6s", "--close-timeout", "5s", "echo", &server.url];
    let run = run(wsrun(&args)).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_summary(
        &run.stdout,
        &[
            "  outcomes   2000 stopped at --duration; 0 failed",
            "  connect    2000 opened, 0 failed; ",
            "  sessions   all connected ",
        ],
    );
    let closes = server.closes(2000).await;
    assert_eq!(closes.len(), 2000, "the server saw every session end");
    assert!(closes.iter().all(|close| *close == Some((1001, String::new()))), "not all closed with 1001");
}

/// `--spread`: the sessions go to the URL and each spread URL in turn (what lets one process open more connections
/// than one server port takes from one client address); without a load run it is a usage error.
#[tokio::test(flavor = "multi_thread")]
async fn spread_sessions_go_to_each_url_in_turn() {
    let servers = [Server::echo().await, Server::echo().await, Server::echo().await];
    let mut args = vec!["--sessions", "30", "--duration", "1s", "--close-timeout", "5s"];
    args.extend(["--spread", &servers[1].url, "--spread", &servers[2].url, "echo", &servers[0].url]);
    let spread = run(wsrun(&args)).await;
    assert_eq!(spread.code(), Some(0), "{spread:?}");
    assert_summary(&spread.stdout, &["  connect    30 opened, 0 failed; "]);
    for server in &servers {
        server.closes(10).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (n, server) in servers.iter().enumerate() {
        let closes = server.closes(0).await;
        assert_eq!(closes.len(), 10, "server {n} saw {} of the 30 sessions: {spread:?}", closes.len());
        assert!(closes.iter().all(|close| *close == Some((1001, String::new()))), "server {n}: {closes:?}");
    }

    let alone = run(wsrun(&["--spread", &servers[1].url, "echo", &servers[0].url])).await;
    assert_eq!(alone.code(), Some(2), "{alone:?}");
}

/// `--local-address`: the sessions' connections come from these addresses, in turn; with `--spread`, every pair of
/// address and URL in turn.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_connect_from_each_local_address_in_turn() {
    let peers = Arc::new(Mutex::new(Vec::new()));
    let mut urls = Vec::new();
    for server in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
        urls.push(format!("ws://{}/", listener.local_addr().expect("its address")));
        let seen = peers.clone();
        tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                seen.lock().unwrap().push(format!("{} to {server}", peer.ip()));
                tokio::spawn(async move {
                    if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                });
            }
        });
    }
    let mut args = vec!["--sessions", "4", "--duration", "1s", "--close-timeout", "5s"];
    args.extend(["--local-address", "127.0.0.2", "--local-address", "127.0.0.3", "echo", &urls[0]]);
    let local = run(wsrun(&args)).await;
    assert_eq!(local.code(), Some(0), "{local:?}");
    let mut seen = std::mem::take(&mut *peers.lock().unwrap());
    seen.sort();
    assert_eq!(seen, ["127.0.0.2 to 0", "127.0.0.2 to 0", "127.0.0.3 to 0", "127.0.0.3 to 0"], "{local:?}");

    args.splice(args.len() - 2..args.len() - 2, ["--spread", urls[1].as_str()]);
    let paired = run(wsrun(&args)).await;
    assert_eq!(paired.code(), Some(0), "{paired:?}");
    let mut seen = std::mem::take(&mut *peers.lock().unwrap());
    seen.sort();
    assert_eq!(seen, ["127.0.0.2 to 0", "127.0.0.2 to 1", "127.0.0.3 to 0", "127.0.0.3 to 1"], "{paired:?}");
}

/// Limits too low for the run are said before it starts, with what to raise.
#[tokio::test(flavor = "multi_thread")]
async fn open_file_limits_too_low_for_the_run_are_said_before_it_starts() {
    let server = Server::echo().await;
    let mut command = Command::new("sh");
    // A hard limit of 512 files, for 1,000 sessions: only the first few start within the 300 ms.
    command.args(["-c", "ulimit -n 512 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_wsrun")]);
    command.args([
        "--sessions",
        "1000",
        "--ramp-up",
        "100s",
        "--duration",
        "300ms",
        "--max-failures",
        "100%",
        "echo",
        &server.url,
    ]);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run = run(command).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    // Said before the first session starts, beside the ramp-up's own warning.
    let said = run.stderr.lines().find(|line| line.contains("open files")).unwrap_or_default();
    assert!(
        said.starts_with(
            "wsrun: warning: 1000 sessions need about 1256 open files (a socket each), and this process may open 512"
        ) && said.contains("ulimit -Hn"),
        "{run:?}"
    );
}
