//! The end of stdin is not the end of the server's answers (README, "The client"): the bundled client goes on
//! printing after its input ends and closes once the server has been quiet for the linger time, or at once when the
//! server closes first. Against servers that stop sending as soon as they read the client's close frame, as
//! python-websockets does, nothing is lost.

use std::time::Duration;

use crate::servers::Server;
use crate::util::{run_with_input, run_with_input_within, within, Running, BOUND};

/// The client's default `--linger`.
const LINGER: Duration = Duration::from_secs(1);

/// How long an interrupted wsrun may take to exit: generous, so only a real hang fails.
const PROMPT: Duration = Duration::from_secs(2);

const CLOSED_OK: &str = "Connection closed: 1000 (OK).\n";

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_piped_lines_all_come_back_from_a_server_that_stops_at_the_close() {
    let server = Server::echo_close_at_once().await;
    let input: String = (1..=2000).map(|i| format!("line {i}\n")).collect();
    let mut wsrun = Running::spawn(&[&server.url]);
    wsrun.end_input(input.as_bytes()).await;
    wsrun.wait_for_line_within("< line 2000", BOUND).await;
    // `elapsed` counts from the last echo.
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let expected: Vec<String> = (1..=2000).map(|i| format!("< line {i}")).collect();
    assert!(
        run.received() == expected,
        "the echoes differ from the 2000 lines sent: {} received",
        run.received().len()
    );
    assert!(run.stdout.ends_with(CLOSED_OK), "{run:?}");
    // Generous above: a busy machine delays the exit, never the wait itself.
    let bound = LINGER + Duration::from_millis(1500);
    assert!(run.elapsed < bound, "the run ended {:?} after the last echo, more than {bound:?}", run.elapsed);
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))], "the server saw no 1000 close frame");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_300_ms_late_is_printed_with_the_defaults() {
    let server = Server::answering_after(Duration::from_millis(300)).await;
    let run = run_with_input(&[&server.url], b"{\"op\":\"ping\"}\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), [r#"< {"op":"ping"}"#], "{run:?}");
    assert!(run.stdout.ends_with(CLOSED_OK), "{run:?}");
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))], "the server saw no 1000 close frame");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_3_s_late_is_printed_with_linger_5s() {
    let server = Server::answering_after(Duration::from_secs(3)).await;
    // The reply at about 3 s, then 5 s of quiet before the close.
    let run = run_with_input_within(&[&server.url, "--linger", "5s"], b"slow\n", BOUND * 2).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< slow"], "{run:?}");
    assert!(run.stdout.ends_with(CLOSED_OK), "{run:?}");
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))], "the server saw no 1000 close frame");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_never_answers_is_closed_after_the_linger_time() {
    let server = Server::never_answering().await;
    let mut wsrun = Running::spawn(&[&server.url]);
    wsrun.wait_for_line_within("Connected to", BOUND).await;
    wsrun.end_input(b"anyone there?\n").await;
    // `elapsed` counts from the end of stdin.
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.received().is_empty(), "{run:?}");
    assert!(run.stdout.ends_with(CLOSED_OK), "{run:?}");
    // Generous above: a busy machine delays the exit, never the wait itself.
    let bound = LINGER + Duration::from_millis(1500);
    assert!(run.elapsed < bound, "wsrun exited {:?} after the end of stdin, more than {bound:?}", run.elapsed);
    // The guest's timer cannot fire before the end of stdin plus the linger time: a shorter run did not linger.
    let least = LINGER - Duration::from_millis(100);
    assert!(run.elapsed >= least, "wsrun exited {:?} after the end of stdin: it did not wait for replies", run.elapsed);
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))], "the server saw no 1000 close frame");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_streams_keeps_the_session_open_until_ctrl_c() {
    let server = Server::streaming(Duration::from_millis(100)).await;
    let mut wsrun = Running::spawn(&[&server.url]);
    wsrun.wait_for_line_within("Connected to", BOUND).await;
    wsrun.end_input(b"").await;
    // Never quiet for the linger time: the client goes on printing, well past it.
    tokio::time::sleep(LINGER * 2 + Duration::from_millis(500)).await;
    assert!(wsrun.is_running(), "wsrun ended while the server was still sending: {:?}", wsrun.stdout_so_far());
    let printed = wsrun.stdout_so_far();
    assert!(printed.lines().filter(|line| line.starts_with("< tick ")).count() >= 10, "too few ticks: {printed:?}");
    assert!(!printed.contains("Connection closed"), "{printed:?}");

    wsrun.signal(libc::SIGINT);
    let run = wsrun.finish().await;
    assert_eq!(run.code(), Some(130), "{run:?}");
    assert_eq!(run.stderr, "wsrun: interrupted\n", "{run:?}");
    assert!(run.elapsed < PROMPT, "took {:?} to exit after Ctrl+C", run.elapsed);
    assert_eq!(server.closes(1).await, vec![Some((1001, String::new()))], "the server saw no 1001 close frame");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_own_close_after_its_echo_is_shown_every_time() {
    let server = Server::bye_after_echo().await;
    let expected = format!("Connected to {}.\n< one\n< two\n< hello\nConnection closed: 4001 (bye).\n", server.url);
    // One after the other: each run is short (the server closes first) and bounded by run_with_input.
    for attempt in 1..=20 {
        let run = run_with_input(&[&server.url], b"hello\n").await;
        assert_eq!(run.stdout, expected, "run {attempt} of 20: {run:?}");
        assert_eq!(run.code(), Some(0), "run {attempt} of 20: {run:?}");
    }
}

/// `--linger 0` closes at once at the end of input, but what the server sends before its answering close frame is
/// still printed (RFC 6455 lets a peer send until its own close).
#[tokio::test(flavor = "multi_thread")]
async fn with_linger_0_what_the_server_sends_after_our_close_is_still_printed() {
    use tokio::io::AsyncWriteExt;
    let (url, listener) = crate::raw::listen().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        crate::raw::upgrade(&mut tcp).await?;
        let code = crate::raw::read_close_code(&mut tcp).await?;
        tcp.write_all(&[0x81, 0x08]).await.ok()?;
        tcp.write_all(b"last one").await.ok()?;
        tcp.write_all(&[0x88, 0x02, 0x03, 0xe8]).await.ok()?;
        Some(code)
    });
    let run = run_with_input(&[&url, "--linger", "0"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.ends_with(&format!("< last one\n{CLOSED_OK}")), "{run:?}");
    assert_eq!(within(BOUND, "the server", server).await.unwrap(), Some(1000));
}
