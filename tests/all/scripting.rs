//! Guests in Python and JavaScript (componentize-py, componentize-js) run exactly like Rust ones: same echo, same
//! scripted scenario in all three languages, same Ctrl+C, same exit codes, errors with the script's traceback,
//! and the compiled cache for their long compiles.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use wsrun::{Outcome, Runtime};
use wsrun_test_artifacts::{ECHO, JS_ECHO, JS_SCENARIO, JS_TOKEN, PY_ECHO, PY_SCENARIO, PY_TOKEN, SCENARIO};

use crate::http_server::{HttpServer, Reply};
use crate::servers::{self, Server, Ws};
use crate::util::{run_with_input_within, within, Running, BOUND};

/// How long a run of a scripted guest may take: its first start compiles 12-18 MB of wasm, several at once here.
const SCRIPT_BOUND: Duration = Duration::from_secs(120);

async fn run_script(args: &[&str]) -> crate::util::Run {
    run_with_input_within(args, b"", SCRIPT_BOUND).await
}

/// A price feed: answers a subscription with an update for another topic, then the one asked for.
async fn feed(answer: bool) -> Server {
    Server::start(move |mut ws: Ws| async move {
        let request = ws.next().await?.ok()?;
        let request: serde_json::Value = serde_json::from_str(request.to_text().ok()?).ok()?;
        let topic = request["subscribe"].as_str()?.to_owned();
        ws.send(Message::text(r#"{"topic":"OTHER","price":1}"#)).await.ok()?;
        if answer {
            ws.send(Message::text(format!(r#"{{"topic":"{topic}","price":101.25}}"#))).await.ok()?;
        }
        servers::until_close(ws).await
    })
    .await
}

async fn echo_round_trips(guest: &str) {
    let (server, mut results) = Server::echo_checker().await;
    let run = run_script(&[guest, &server.url]).await;
    let result = within(BOUND, "the echo check", results.recv()).await;
    assert_eq!(result, Some(true), "the echoes differ: {run:?}");
    assert_eq!(run.code(), Some(0), "{run:?}");
}

async fn scenario_passes_and_fails(guest: &str) {
    let report = std::env::temp_dir().join(format!("wsrun-scenario-{}-{}.json", std::process::id(), guest.len()));
    let report_arg = report.to_str().unwrap();
    let server = feed(true).await;
    let run = run_script(&["--report", report_arg, guest, &server.url, "BTC", "5000"]).await;
    assert_eq!((run.code(), run.stdout.as_str()), (Some(0), "price BTC 101.25\n"), "{guest}: {run:?}");
    assert_eq!(server.closes(1).await, vec![Some((1000, "done".to_owned()))], "{guest}");
    // The script's metrics, through its language's helper, in the session's report.
    let metrics = read_metrics(&report);
    assert!(metrics.contains(&("updates".to_owned(), "topic=BTC".to_owned(), 1, 1)), "{guest}: {metrics:?}");
    assert!(metrics.contains(&("checks".to_owned(), "check=update arrived".to_owned(), 1, 1)), "{guest}: {metrics:?}");

    let server = feed(false).await;
    let run = run_script(&["--threshold", "checks.rate==1", guest, &server.url, "BTC", "300"]).await;
    assert_eq!(run.code(), Some(3), "{guest}: {run:?}");
    assert!(run.stderr.starts_with("wsrun: scenario: no update for BTC within 0.3s\n"), "{guest}: {run:?}");
    assert!(run.stderr.contains("    FAILED  checks.rate==1  0.00% (0 of 1)"), "{guest}: {run:?}");
    assert_eq!(server.closes(1).await, vec![Some((4000, "no update".to_owned()))], "{guest}");
}

/// A report's metrics as (name, tags as `k=v,...`, hits or count, count).
fn read_metrics(report: &std::path::Path) -> Vec<(String, String, u64, u64)> {
    let text = std::fs::read_to_string(report).unwrap_or_else(|e| panic!("{}: {e}", report.display()));
    let _ = std::fs::remove_file(report);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let tags: Vec<String> = s["tags"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            let count = s["count"].as_u64().unwrap();
            (s["name"].as_str().unwrap().to_owned(), tags.join(","), s["hits"].as_u64().unwrap_or(count), count)
        })
        .collect()
}

async fn ctrl_c_stops_a_spinning_script(guest: &str) {
    let server = Server::echo().await;
    // Generous: the first start may compile the component (seconds) before connecting.
    let mut wsrun = Running::spawn(&[guest, &server.url, "spin"]);
    wsrun.wait_for_line_within("connected", SCRIPT_BOUND).await;
    // Burning CPU: the script is in its loop.
    wsrun.wait_for_cpu(Duration::from_millis(100)).await;
    wsrun.signal(libc::SIGINT);
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(130), "{guest}: {run:?}");
    assert_eq!(run.stderr, "wsrun: interrupted\n", "{guest}");
    assert!(run.elapsed < Duration::from_secs(2), "{guest}: took {:?}", run.elapsed);
    assert_eq!(server.closes(1).await, vec![Some((1001, String::new()))], "{guest}");
}

async fn errors_show_the_scripts_traceback(guest: &str, mode: &str, first_line: &str, trace: &[&str]) {
    let server = Server::echo().await;
    let run = run_script(&[guest, &server.url, mode]).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().next(), Some(first_line), "{run:?}");
    for frame in trace {
        assert!(run.stderr.contains(frame), "no {frame:?} in {run:?}");
    }
    assert!(!run.stderr.contains("trapped"), "an exception is not a trap: {run:?}");
}

/// POST for a token over HTTP (granted), then the WebSocket with it; a GET likewise; and the same request denied
/// without the grant, reaching nothing.
async fn http_then_websocket(guest: &str, failure: &str) {
    let http = HttpServer::start(|seen| Reply::Text(format!("tok-{}", String::from_utf8_lossy(&seen.body)))).await;
    let ws = Server::echo().await;
    let token_url = format!("{}/token", http.origin);
    let run = run_script(&["--allow", &http.origin, guest, &ws.url, &token_url, "me"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("HTTP 200 (6 bytes)\n< hello\n"), "{run:?}");
    let seen = http.requests();
    assert_eq!((seen[0].method.as_str(), &seen[0].body[..]), ("POST", &b"me"[..]), "{seen:?}");
    assert_eq!(ws.requests()[0]["authorization"], "Bearer tok-me");

    let ws = Server::echo().await;
    let run = run_script(&["--allow", &http.origin, guest, &ws.url, &format!("{token_url}?as=get")]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let seen = http.requests();
    assert_eq!((seen[1].method.as_str(), seen[1].path.as_str()), ("GET", "/token?as=get"), "{seen:?}");
    assert_eq!(ws.requests()[0]["authorization"], "Bearer tok-");

    let denied = run_script(&[guest, &ws.url, &token_url, "me"]).await;
    assert_eq!(denied.code(), Some(1), "{denied:?}");
    assert!(denied.stderr.contains(failure), "{denied:?}");
    assert_eq!(http.requests().len(), 2, "the denied request reached the server");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_guests() {
    // One after the other: the first start of each component compiles it (seconds); the rest hit the cache.
    echo_round_trips(PY_ECHO).await;
    scenario_passes_and_fails(PY_SCENARIO).await;
    ctrl_c_stops_a_spinning_script(PY_ECHO).await;
    let first = "wsrun: ValueError: invalid literal for int() with base 10: 'not a number'";
    errors_show_the_scripts_traceback(PY_ECHO, "raise", first, &["Traceback", "echo.py\", line", "in check_input"])
        .await;
    http_then_websocket(PY_TOKEN, "token_then_connect.py: HTTP: HttpRequestDenied").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_guests() {
    echo_round_trips(JS_ECHO).await;
    scenario_passes_and_fails(JS_SCENARIO).await;
    ctrl_c_stops_a_spinning_script(JS_ECHO).await;
    let first = r#"wsrun: TypeError: bad input: "not a number" is not a number"#;
    errors_show_the_scripts_traceback(JS_ECHO, "throw", first, &["checkInput@echo.js:"]).await;
    http_then_websocket(JS_TOKEN, "token.js: HTTP: TypeError").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_scenario_matches_the_others() {
    scenario_passes_and_fails(SCENARIO).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_guest_compiles_once_then_starts_from_the_cache() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-python-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = feed(true).await;
    let args = ["--verbose", "--cache-dir", dir.to_str().unwrap(), PY_SCENARIO, &server.url];
    let first = run_script(&args).await;
    assert_eq!(first.code(), Some(0), "{first:?}");
    assert!(first.stderr.contains("compiled cache stored"), "{first:?}");
    let second = run_script(&args).await;
    assert_eq!(second.code(), Some(0), "{second:?}");
    assert!(second.stderr.contains("compiled cache hit"), "{second:?}");
    assert!(!second.stderr.contains("cache miss"), "it compiled again: {second:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signal_while_a_guest_compiles_is_answered_at_once() {
    let server = Server::echo().await;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // --no-cache: the 18 MB Python component compiles for seconds; the signal comes in the middle of it.
        let wsrun = Running::spawn(&["--no-cache", PY_ECHO, &server.url]);
        // Compiling: wsrun burns CPU (the compile takes seconds of it) before the guest can connect.
        wsrun.wait_for_cpu(Duration::from_millis(300)).await;
        let sent = std::time::Instant::now();
        wsrun.signal(signal);
        let run = wsrun.finish().await;
        assert_eq!(run.code(), Some(130), "signal {signal}: {run:?}");
        assert_eq!(run.stderr.trim_end(), "wsrun: interrupted", "signal {signal}: {run:?}");
        assert!(sent.elapsed() < Duration::from_secs(2), "signal {signal}: took {:?}", sent.elapsed());
        assert!(server.requests().is_empty(), "the guest ran");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_language_runs_under_the_pooling_allocator() {
    // The pool as `wsrun --sessions` sizes it, with the command line's memory limit per session: the Python guest
    // holds 14 core instances, more than the pool once allowed, and did not load at all.
    const SESSIONS: usize = 3;
    let runtime = Runtime::builder().pooling(SESSIONS as u32, 256 << 20).build().unwrap();
    let (server, mut results) = Server::echo_checker().await;
    for guest in [ECHO, PY_ECHO, JS_ECHO] {
        let program = runtime.load_file(guest.as_ref()).unwrap_or_else(|e| panic!("{e}"));
        // Side by side, each in slots of its own, as many as the pool has.
        let running: Vec<_> = (0..SESSIONS).map(|_| tokio::spawn(program.session(&server.url).run())).collect();
        for session in running {
            assert_eq!(within(SCRIPT_BOUND, "a pooled session", session).await.unwrap(), Outcome::Exited(0), "{guest}");
        }
        for _ in 0..SESSIONS {
            let echoed = within(BOUND, "the echo check", results.recv()).await;
            assert_eq!(echoed, Some(true), "the echoes of {guest} differ");
        }
    }
}
