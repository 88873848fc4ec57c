//! Load runs that measure what users came for: the bundled `roundtrip` guest's round trips against what the server
//! counted, a guest's own metrics and checks in the summary, the report and a merge of shards, thresholds and the
//! exit code, failures grouped by reason, `--stages` and `--arrival-rate`, and the HTML report in a real browser.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::many_sessions::{assert_summary, count, path_arg, read_report, run, run_merge, scratch};
use crate::servers::{self, Server, Ws};
use crate::util::wsrun;

/// An echo server that counts the text messages and pings it gets.
pub async fn counting_echo() -> (Server, Arc<AtomicU64>, Arc<AtomicU64>) {
    let (messages, pings) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (m, p) = (messages.clone(), pings.clone());
    let server = Server::start(move |mut ws: Ws| {
        let (messages, pings) = (m.clone(), p.clone());
        async move {
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    Message::Text(_) => {
                        messages.fetch_add(1, Ordering::Relaxed);
                        if ws.send(message).await.is_err() {
                            break;
                        }
                    }
                    // tungstenite queues the pong itself, sent with the next write or flush.
                    Message::Ping(_) => {
                        pings.fetch_add(1, Ordering::Relaxed);
                        let _ = ws.flush().await;
                    }
                    Message::Close(frame) => return servers::finish_close(ws, frame).await,
                    _ => {}
                }
            }
            None
        }
    })
    .await;
    (server, messages, pings)
}

/// The series of a report's metrics with this name and these tags (`[]` for none).
fn series<'a>(report: &'a Value, name: &str, tags: &[(&str, &str)]) -> &'a Value {
    let metrics = report["metrics"].as_array().unwrap_or_else(|| panic!("no metrics in {report:#}"));
    metrics
        .iter()
        .find(|s| {
            let have = s["tags"].as_object().map_or(0, |t| t.len());
            s["name"] == name && have == tags.len() && tags.iter().all(|(t, v)| s["tags"][*t] == *v)
        })
        .unwrap_or_else(|| panic!("no series {name} {tags:?} in {:#}", report["metrics"]))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_roundtrip_guest_times_what_the_server_echoed() {
    let dir = scratch("roundtrip");
    let report_path = dir.join("report.json");
    let (server, messages, pings) = counting_echo().await;
    let args = ["--sessions", "20", "--report", path_arg(&report_path), "roundtrip", &server.url];
    let run = run(wsrun(&[&args[..], &["--count", "5", "--interval", "20ms", "--quiet"]].concat())).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let report = read_report(&report_path);
    let (messages, pings) = (messages.load(Ordering::Relaxed), pings.load(Ordering::Relaxed));
    assert_eq!((messages, pings), (100, 100), "what the server got");
    assert_eq!((count(&report, "/messages_sent"), count(&report, "/messages_received")), (messages, messages));
    let echo = series(&report, "rtt", &[("kind", "echo")]);
    let ping = series(&report, "rtt", &[("kind", "ping")]);
    assert_eq!((echo["count"].as_u64(), ping["count"].as_u64()), (Some(messages), Some(pings)), "{report:#}");
    for rtt in [echo, ping] {
        let (p50, max) = (rtt["percentiles"]["p50"].as_u64().unwrap(), rtt["percentiles"]["max"].as_u64().unwrap());
        assert!(p50 > 0 && p50 <= max && max < 5_000_000, "round trips in microseconds: {rtt}");
    }
    let checks = series(&report, "checks", &[("check", "echo reply")]);
    assert_eq!((checks["hits"].as_u64(), checks["count"].as_u64()), (Some(100), Some(100)));
    assert_summary(
        &run.stdout,
        &["  metrics", "    rtt ", "      {kind=echo}  p50 ", "    passed  echo reply: 100 of 100"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guests_metrics_add_up_alike_in_one_process_and_in_four_merged_shards() {
    let dir = scratch("metrics");
    let guest = wsrun_test_artifacts::TEST_METRICS;
    let whole = dir.join("whole.json");
    let one = run(wsrun(&["--sessions", "40", "--report", path_arg(&whole), guest, "ws://127.0.0.1:9/"])).await;
    assert_eq!(one.code(), Some(0), "{one:?}");
    assert_summary(
        &one.stdout,
        &[
            "  metrics",
            "    jobs          40 (",
            "      {parity=even}  20 (",
            "    size          p50 190, p90 350, p95 370, p99 390, max 390 (40 values)",
            "    small         25.00% (10 of 40)",
            "    work          p50 20.0, ",
            "    FAILED  index below 30: 30 of 40, 10 failed",
            "  dropped    80 measurements: 80 malformed (names, tags)",
        ],
    );
    let mut shards = Vec::new();
    for index in 0..4 {
        let path = dir.join(format!("shard{index}.json"));
        let shard = format!("{index}/4");
        let run = run(wsrun(&[
            "--sessions",
            "40",
            "--shard",
            &shard,
            "--report",
            path_arg(&path),
            guest,
            "ws://127.0.0.1:9/",
        ]))
        .await;
        assert_eq!(run.code(), Some(0), "{run:?}");
        shards.push(path);
    }
    let merged = dir.join("merged.json");
    let shard_args: Vec<&str> = shards.iter().map(|p| path_arg(p)).collect();
    let merge = run_merge(&[&["--report", path_arg(&merged)], &shard_args[..]].concat()).await;
    assert_eq!(merge.code(), Some(0), "{merge:?}");
    let (whole, merged) = (read_report(&whole), read_report(&merged));
    // The same values recorded in other processes: the same series, counts and histograms, bit for bit.
    assert_eq!(whole["metrics"], merged["metrics"]);
    assert_eq!(whole["metrics_dropped"], merged["metrics_dropped"]);
    assert_eq!(series(&merged, "jobs", &[("parity", "odd")])["count"], 20);
    for line in merge.stdout.lines().filter(|l| l.starts_with("    ") || l.starts_with("  dropped")) {
        assert!(
            one.stdout.contains(line.split(" (").next().unwrap()),
            "{line:?} not in the one process's summary:\n{}",
            one.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn thresholds_decide_the_verdict_and_the_exit_code() {
    let guest = wsrun_test_artifacts::TEST_METRICS;
    let base = ["--sessions", "40"];
    let passing = ["--threshold", "jobs.count==40", "--threshold", "work.p50<100ms", "--threshold", "small.rate<=25%"];
    let run_ok = run(wsrun(&[&base[..], &passing, &[guest, "ws://127.0.0.1:9/"]].concat())).await;
    assert_eq!(run_ok.code(), Some(0), "{run_ok:?}");
    assert_summary(
        &run_ok.stdout,
        &[
            "  thresholds",
            "    passed  jobs.count==40   40",
            "    passed  small.rate<=25%  25.00% (10 of 40)",
            "  verdict    passed",
        ],
    );
    let failing = ["--threshold", "checks.rate>0.99", "--threshold", "jobs.count==40"];
    let run_failed = run(wsrun(&[&base[..], &failing, &[guest, "ws://127.0.0.1:9/"]].concat())).await;
    assert_eq!(run_failed.code(), Some(1), "{run_failed:?}");
    assert_summary(
        &run_failed.stdout,
        &[
            "    FAILED  checks.rate>0.99  75.00% (30 of 40)",
            "    passed  jobs.count==40    40",
            "  verdict    FAILED: 1 threshold failed",
        ],
    );
    // Malformed: a usage error before anything runs.
    let bad = run(wsrun(&["--sessions", "4", "--threshold", "rtt.p99<fast", guest, "ws://127.0.0.1:9/"])).await;
    assert_eq!(bad.code(), Some(2), "{bad:?}");
    assert!(bad.stdout.is_empty(), "{bad:?}");
    assert_eq!(bad.stderr.lines().count(), 1, "{bad:?}");
    assert!(
        bad.stderr.starts_with("wsrun: ") && bad.stderr.contains("invalid --threshold \"rtt.p99<fast\""),
        "{bad:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_grouped_by_reason_most_frequent_first() {
    let dir = scratch("reasons");
    let report_path = dir.join("report.json");
    let guest = wsrun_test_artifacts::TEST_METRICS;
    let args = [
        "--sessions",
        "40",
        "--max-failures",
        "25%",
        "--report",
        path_arg(&report_path),
        guest,
        "ws://127.0.0.1:9/",
        "--fail-some",
    ];
    let run = run(wsrun(&args)).await;
    assert_eq!(run.code(), Some(1), "20 failed, 10 allowed: {run:?}");
    let report = read_report(&report_path);
    let reasons = report["failure_reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    // Both ten: in order of the text then.
    assert_eq!(reasons[0]["count"], 10);
    assert!(reasons[0]["reason"].as_str().unwrap().starts_with("trapped: "), "{reasons:?}");
    assert!(
        reasons[0]["reason"].as_str().unwrap().contains("planned trap")
            || reasons[0]["reason"].as_str().unwrap().contains("unreachable"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[1],
        serde_json::json!({"reason": "wsrun: test-metrics: refused by plan \\u{1b}[2J", "count": 10})
    );
    assert_summary(
        &run.stdout,
        &[
            "  failures   20 of 40 (50.0%), at most 25% allowed",
            "        10  wsrun: test-metrics: refused by plan \\u{1b}[2J",
        ],
    );
    assert!(!run.stdout.contains('\x1b'), "a reason reaches the terminal escaped: {}", run.stdout);

    // A server that is not there: one reason for every session.
    let refused = run_refused().await;
    assert_eq!(refused.code(), Some(1), "{refused:?}");
    let line = refused
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("5  wsrun: echo: could not connect to ws://127.0.0.1:"));
    assert!(line.is_some_and(|l| l.contains("connection refused")), "{}", refused.stdout);
}

async fn run_refused() -> crate::util::Run {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    run(wsrun(&["--sessions", "5", "echo", &format!("ws://127.0.0.1:{port}/")])).await
}

#[tokio::test(flavor = "multi_thread")]
async fn stages_raise_and_lower_the_sessions_running() {
    let dir = scratch("stages");
    let report_path = dir.join("report.json");
    let server = Server::echo().await;
    let args = ["--stages", "1s:8,1s:8,2s:0", "--report", path_arg(&report_path), "echo", &server.url];
    let run = run(wsrun(&args)).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let report = read_report(&report_path);
    // Echo sessions never end by themselves: eight started, all stopped by the ramp down, each closed with 1001.
    assert_eq!((count(&report, "/sessions"), count(&report, "/peak_running")), (8, 8), "{report:#}");
    assert_eq!(count(&report, "/outcomes/stopped"), 8);
    let closes = server.closes(8).await;
    assert!(closes.iter().all(|c| c.as_ref().is_some_and(|(code, _)| *code == 1001)), "{closes:?}");
    let running: Vec<u64> =
        report["timeline"].as_array().unwrap().iter().map(|s| s["running"].as_u64().unwrap()).collect();
    // Sampled each second: up to 8 after the first, 8 after the second, half way down after the third (the target
    // 4), none at the end (within a sample's jitter).
    assert!(running.len() >= 4, "{running:?}");
    assert!((6..=8).contains(&running[0]) && running[1] == 8, "{running:?}");
    assert!((2..=6).contains(&running[2]) && *running.last().unwrap() == 0, "{running:?}");
    let elapsed = count(&report, "/elapsed_ms");
    assert!((3_900..10_000).contains(&elapsed), "the stages last 4 s: {elapsed} ms");
    assert_summary(&run.stdout, &["  outcomes   8 stopped by --stages or --duration; 0 failed"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_arrival_rate_starts_sessions_at_that_pace() {
    let dir = scratch("arrivals");
    let report_path = dir.join("report.json");
    let server = Server::echo().await;
    let args = ["--arrival-rate", "20/s", "--duration", "1s", "--report", path_arg(&report_path), "echo", &server.url];
    let run = run(wsrun(&args)).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let report = read_report(&report_path);
    assert_eq!((count(&report, "/sessions"), count(&report, "/outcomes/stopped")), (20, 20), "{report:#}");
    // The last one started 0.95 s in, not at once.
    let last = count(&report, "/last_connected_ms");
    assert!((900..2_000).contains(&last), "{last} ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_of_other_runs_merge_only_when_forced() {
    let dir = scratch("other-runs");
    let (a, b) = (Server::echo().await, Server::echo().await);
    let report = |name: &str| dir.join(name);
    for (name, shard, url) in
        [("a.json", "0/2", &a.url), ("b.json", "1/2", &b.url), ("c.json", "0/1", &a.url), ("d.json", "0/1", &a.url)]
    {
        let run = run(wsrun(&[
            "--sessions",
            "2",
            "--duration",
            "200ms",
            "--shard",
            shard,
            "--report",
            path_arg(&report(name)),
            "echo",
            url,
        ]))
        .await;
        assert_eq!(run.code(), Some(0), "{run:?}");
    }
    let refused = run_merge(&[path_arg(&report("a.json")), path_arg(&report("b.json"))]).await;
    assert_eq!(refused.code(), Some(2), "{refused:?}");
    assert!(
        refused.stderr.contains("are reports of different runs (the URL ") && refused.stderr.contains("--force"),
        "{refused:?}"
    );
    let forced = run_merge(&["--force", path_arg(&report("a.json")), path_arg(&report("b.json"))]).await;
    assert_eq!(forced.code(), Some(0), "{forced:?}");
    assert!(forced.stderr.contains("merged anyway (--force)"), "{forced:?}");
    let whole = run_merge(&[path_arg(&report("c.json")), path_arg(&report("d.json"))]).await;
    assert_eq!(whole.code(), Some(2), "{whole:?}");
    assert!(whole.stderr.contains("are each a whole run, not shards of one"), "{whole:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_renders_its_plots_in_a_browser() {
    let dir = scratch("html");
    let page = dir.join("report.html");
    let server = Server::start(servers::echo).await;
    let args = [
        "--sessions",
        "5",
        "--duration",
        "2500ms",
        "--html",
        path_arg(&page),
        "--threshold",
        "rtt.p99<10s",
        "roundtrip",
    ];
    let run = run(wsrun(&[&args[..], &[&server.url, "--interval", "50ms", "--quiet"]].concat())).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let dom = render(&page).await;
    let attribute = |name: &str| {
        let at = dom.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in the rendered page:\n{dom}"));
        let value = &dom[at + name.len() + 2..];
        value[..value.find('"').unwrap()].to_owned()
    };
    assert!(!dom.contains("data-plot-error"), "{dom}");
    let (expected, rendered) = (attribute("data-plots-expected"), attribute("data-plots-rendered"));
    // Sessions, messages, bytes, the rtt trend, errors.
    assert!(expected.parse::<u32>().unwrap() >= 5, "{expected}");
    assert_eq!(rendered, expected, "every plot drew pixels");
    assert!(dom.contains("rtt.p99&lt;10s"), "the threshold is on the page");
}

/// The page as headless Chromium left it once its scripts ran.
async fn render(page: &Path) -> String {
    let profile = page.with_extension("profile");
    let output = tokio::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("chromium within 60 s")
        .expect("run chromium (installed by scripts/setup.sh)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
