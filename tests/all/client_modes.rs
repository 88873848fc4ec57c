//! The bundled client's options and modes, end to end: what the server receives and what the user sees.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::raw;
use crate::servers::{self, Server, Ws};
use crate::util::{run_with_input, within, Running, BOUND};

#[tokio::test(flavor = "multi_thread")]
async fn headers_subprotocol_origin_and_basic_auth_reach_the_server() {
    let server = Server::echo().await;
    let args = [
        server.url.as_str(),
        "-H",
        "X-Trace: abc 123",
        "--header",
        "Cookie: a=b",
        "--protocol",
        "chat.v2",
        "--protocol",
        "chat.v1",
        "--origin",
        "https://app.example",
        "--basic-auth",
        "user:pa:ss",
    ];
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with(&format!("Connected to {} (subprotocol chat.v2).\n", server.url)), "{run:?}");
    let request = &server.requests()[0];
    let header = |name: &str| request.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("x-trace").as_deref(), Some("abc 123"));
    assert_eq!(header("cookie").as_deref(), Some("a=b"));
    assert_eq!(header("origin").as_deref(), Some("https://app.example"));
    assert_eq!(header("sec-websocket-protocol").as_deref(), Some("chat.v2, chat.v1"));
    // base64("user:pa:ss")
    assert_eq!(header("authorization").as_deref(), Some("Basic dXNlcjpwYTpzcw=="));
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_hex_and_base64_modes() {
    let server = Server::echo().await;
    let cases: [(&str, &[u8], &[&str]); 3] = [
        ("--binary", b"hi\n", &["< (binary) 6869"]),
        ("--hex", b"0102ff\n00\n", &["< (binary) 0102ff", "< (binary) 00"]),
        ("--base64", b"AQL/\n", &["< (binary) AQL/"]),
    ];
    for (mode, input, expected) in cases {
        let run = run_with_input(&[&server.url, mode], input).await;
        assert_eq!(run.code(), Some(0), "{mode}: {run:?}");
        assert_eq!(run.received(), expected, "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_that_does_not_decode_is_reported_and_skipped_and_fails_the_run() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--hex"], b"zz\n01\n").await;
    // The rest goes on, but input was lost: the run fails at the end, saying how much.
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.received(), ["< (binary) 01"]);
    assert!(run.stdout.ends_with("Connection closed: 1000 (OK).\n"), "{run:?}");
    assert!(run.stderr.contains("not sent: not hex"), "{run:?}");
    assert!(run.stderr.ends_with("wsrun: 1 input lines were not sent (each said why above)\n"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn jsonl_reports_every_event() {
    let server = Server::sending(vec![
        Message::text("a\"b\n"),
        Message::binary(vec![1, 2]),
        Message::Ping(b"p".to_vec().into()),
    ])
    .await;
    let run = run_with_input(&[&server.url, "--jsonl"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let events: Vec<serde_json::Value> = run.stdout.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["open", "message", "message", "ping", "close"], "{}", run.stdout);
    assert!(events.iter().all(|e| e["time"].as_f64().is_some_and(|t| t > 1.7e9)), "{}", run.stdout);
    assert_eq!(events[0]["url"], server.url.as_str());
    assert_eq!((events[1]["type"].as_str(), events[1]["data"].as_str()), (Some("text"), Some("a\"b\n")));
    assert_eq!((events[2]["type"].as_str(), events[2]["data"].as_str()), (Some("binary"), Some("0102")));
    assert_eq!(events[3]["data"], "70");
    assert_eq!((events[4]["code"].as_u64(), events[4]["name"].as_str()), (Some(1000), Some("OK")));
}

/// The first `pong` event of a `--jsonl` run.
fn first_pong(run: &crate::util::Run) -> serde_json::Value {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["event"] == "pong")
        .unwrap_or_else(|| panic!("no pong event: {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread")]
async fn keepalive_pongs_report_their_round_trip_time() {
    let server = Server::echo().await;
    let mut wsrun = Running::spawn(&[&server.url, "--jsonl", "--ping-interval", "100ms"]);
    wsrun.wait_for_line(r#"{"time":"#).await;
    within(BOUND, "a keepalive pong", async {
        while !wsrun.stdout_so_far().contains(r#""event":"pong""#) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    wsrun.end_input(b"").await;
    let run = wsrun.finish().await;
    let pong = first_pong(&run);
    assert_eq!(pong["data"].as_str().map(str::len), Some(16), "the host's 8-byte timestamp: {pong}");
    assert!(pong["rtt_ms"].as_f64().is_some_and(|ms| (0.0..2000.0).contains(&ms)), "{pong}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_command_reports_the_round_trip_time() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--commands", "--jsonl"], b"/ping hello\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let pong = first_pong(&run);
    assert_eq!(pong["data"], "68656c6c6f");
    assert!(pong["rtt_ms"].as_f64().is_some_and(|ms| (0.0..2000.0).contains(&ms)), "{pong}");

    let run = run_with_input(&[&server.url, "--commands"], b"/ping\n//literal\n").await;
    let received = run.received();
    assert!(received[0].starts_with("< (pong) ") && received[0].ends_with(" ms"), "{run:?}");
    assert_eq!(received[1], "< /literal");
}

#[tokio::test(flavor = "multi_thread")]
async fn close_command_and_close_options_set_the_close_frame() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--commands"], b"/close 4001 done here\nnot sent\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(server.closes(1).await, vec![Some((4001, "done here".to_owned()))]);
    assert!(run.received().is_empty(), "{run:?}");

    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--close-code", "4000", "--close-reason", "bye"], b"x\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(server.closes(1).await, vec![Some((4000, "bye".to_owned()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn once_prints_the_first_reply_and_closes() {
    let server = Server::start(|mut ws: Ws| async move {
        // Three answers to the first message; only the first may be printed.
        let _ = ws.next().await;
        for answer in ["first", "second", "third"] {
            ws.send(Message::text(answer)).await.ok()?;
        }
        servers::until_close(ws).await
    })
    .await;
    let run = run_with_input(&[&server.url, "-1"], b"question\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< first"]);
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_close_keeps_listening_after_the_end_of_input() {
    // The server stays quiet for much longer than the linger time, then sends and closes first. Without --no-close
    // the client would close during the quiet time, and the server would see its close frame before sending.
    let (quiet_tx, mut quiet) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::start(move |mut ws: Ws| {
        let quiet_tx = quiet_tx.clone();
        async move {
            let quiet_time = tokio::time::sleep(Duration::from_millis(600));
            tokio::pin!(quiet_time);
            loop {
                tokio::select! {
                    () = &mut quiet_time => break,
                    next = ws.next() => match next {
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                            let _ = quiet_tx.send(false);
                            while let Some(Ok(_)) = ws.next().await {}
                            return None;
                        }
                        Some(Ok(_)) => {}
                    },
                }
            }
            let _ = quiet_tx.send(true);
            ws.send(Message::text("late news")).await.ok()?;
            ws.close(None).await.ok()?;
            servers::until_close(ws).await
        }
    })
    .await;
    // --linger 100ms: --no-close wins over it (and makes a client that does not honour --no-close close early).
    let run = run_with_input(&[&server.url, "--linger", "100ms", "--no-close"], b"").await;
    let kept_open = within(BOUND, "the server's quiet time", quiet.recv()).await;
    assert_eq!(kept_open, Some(true), "the client closed while the server was quiet: {run:?}");
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< late news"]);
    assert!(run.stdout.ends_with("Connection closed: 1005 (no status received).\n"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_on_eof_sends_the_close_and_does_not_wait_for_the_server() {
    // The server reads the close frame and never answers it.
    let (url, mut closes) = raw::never_answering_the_close().await;
    let run = run_with_input(&["--close-timeout", "200ms", &url, "--exit-on-eof"], b"x\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(within(BOUND, "the client's close frame", closes.recv()).await, Some(1000), "{run:?}");
    // The close it sent is said, as every other way out says how the connection ended.
    assert!(run.stdout.ends_with("Connection closed: 1000 (OK).\n"), "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    // The linger time (1 s) would come first without --exit-on-eof.
    assert!(run.elapsed < Duration::from_secs(3), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_our_close_is_dropped_after_the_close_timeout() {
    let (url, mut closes) = raw::never_answering_the_close().await;
    // Timed from the close frame the server received, not from the start (which includes loading the guest).
    let mut wsrun = Running::spawn(&["--close-timeout", "200ms", &url, "--linger", "0"]);
    wsrun.end_input(b"").await;
    assert_eq!(within(BOUND, "the client's close frame", closes.recv()).await, Some(1000));
    let sent = Instant::now();
    let run = wsrun.finish().await;
    let waited = sent.elapsed();
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 1006 (abnormal closure).\n"), "{run:?}");
    assert_eq!(run.stderr, "wsrun: the server did not answer the close in time (wsrun --close-timeout)\n", "{run:?}");
    assert!(waited >= Duration::from_millis(150), "did not wait for the server's close: {waited:?} {run:?}");
    assert!(waited < Duration::from_millis(1500), "waited longer than the close timeout: {waited:?} {run:?}");

    // The default --close-timeout is 1 s.
    let mut wsrun = Running::spawn(&[&url, "--linger", "0"]);
    wsrun.end_input(b"").await;
    assert_eq!(within(BOUND, "the client's close frame", closes.recv()).await, Some(1000));
    let sent = Instant::now();
    let run = wsrun.finish().await;
    let waited = sent.elapsed();
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 1006 (abnormal closure).\n"), "{run:?}");
    assert!(waited >= Duration::from_millis(950), "did not wait the default 1 s: {waited:?} {run:?}");
    assert!(waited < Duration::from_millis(2500), "waited much longer than the default 1 s: {waited:?} {run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keepalive_ends_the_session_when_the_server_stops_answering_pings() {
    // The deaf server reads nothing, so no pong ever comes back.
    let server = Server::deaf().await;
    let mut wsrun = crate::util::Running::spawn(&[&server.url, "--ping-interval", "100ms", "--ping-timeout", "300ms"]);
    wsrun.wait_for_line("Connected to").await;
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr, "wsrun: connection lost: no pong to a keepalive ping in time\n", "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 1006 (abnormal closure).\n"), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(3), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keepalive_keeps_a_live_connection() {
    let (pings_tx, mut pings) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::start(move |mut ws: Ws| {
        let pings_tx = pings_tx.clone();
        async move {
            // Reads (and so answers pings) for a while, counting the pings, then sends one message and closes.
            let mut count = 0;
            let deadline = tokio::time::sleep(Duration::from_millis(600));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    next = ws.next() => match next {
                        Some(Ok(Message::Ping(_))) => count += 1,
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return None,
                    },
                }
            }
            let _ = pings_tx.send(count);
            ws.send(Message::text("still here")).await.ok()?;
            ws.close(None).await.ok()?;
            servers::until_close(ws).await
        }
    })
    .await;
    // A generous pong timeout: this test is about the pings, not about a loaded machine's pong time.
    let run =
        run_with_input(&[&server.url, "--no-close", "--ping-interval", "100ms", "--ping-timeout", "5s"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< still here"]);
    let count = within(BOUND, "the server's ping count", pings.recv()).await.expect("a ping count");
    // About six in 600 ms; at least three on a slow machine.
    assert!(count >= 3, "the server got {count} keepalive pings in 600 ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_over_max_message_size_closes_with_1009() {
    let server = Server::sending(vec![Message::text("x".repeat(2048))]).await;
    let run = run_with_input(&[&server.url, "--no-close", "--max-message-size", "1K"], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("message too large"), "{run:?}");
    assert_eq!(server.closes(1).await, vec![Some((1009, "message too big".to_owned()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ten_mebibyte_binary_message_round_trips() {
    let server = Server::echo().await;
    let mut input = vec![b'z'; 10 << 20];
    input.push(b'\n');
    let run = run_with_input(&[&server.url, "--binary"], &input).await;
    assert_eq!(run.code(), Some(0), "{}", run.stderr);
    let received = run.received();
    assert_eq!(received.len(), 1);
    let expected = format!("< (binary) {}", "7a".repeat(10 << 20));
    assert!(received[0] == expected, "the echo differs (length {})", received[0].len());
}

#[tokio::test(flavor = "multi_thread")]
async fn client_help_documents_the_exit_codes() {
    let run = run_with_input(&["client", "--help"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let codes = run.stdout.split("Exit codes:").nth(1).unwrap_or_else(|| panic!("no exit codes: {run:?}"));
    for code in ["0", "1", "2", "130"] {
        assert!(
            codes.lines().any(|line| line.trim_start().starts_with(&format!("{code} "))),
            "exit code {code} is not explained: {codes}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_client_option_is_a_usage_error() {
    let run = run_with_input(&["ws://127.0.0.1:9/", "--frobnicate"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr, "wsrun: client: unknown option --frobnicate (see wsrun client --help)\n");
}
