//! The bundled client's input side: the slash commands, what text mode does to a line, the prompt on a real
//! terminal, and the failures a person can cause at the prompt.

use crate::servers::Server;
use crate::terminal::{assert_cooked, OnTerminal};
use crate::util::run_with_input;

#[tokio::test(flavor = "multi_thread")]
async fn binary_and_help_commands() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--commands"], b"/binary 01 02ff\n/help\n/binary 0g\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< (binary) 0102ff"], "{run:?}");
    for command in ["/ping [DATA]", "/close [CODE [REASON]]", "/binary HEX", "/help", "//text"] {
        assert!(run.stdout.contains(&format!("\n  {command} ")), "/help does not list {command}: {run:?}");
    }
    assert_eq!(run.stderr, "wsrun: /binary: 'g' is not a hex digit\n", "{run:?}");

    // Without --commands (and without a terminal), a slash is text like any other.
    let run = run_with_input(&[&server.url], b"/help\n").await;
    assert_eq!(run.received(), ["< /help"], "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn protocol_takes_a_comma_separated_list() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--protocol", "a, b", "--protocol", "c"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    // The test server picks the first offered.
    assert!(run.stdout.starts_with(&format!("Connected to {} (subprotocol a).\n", server.url)), "{run:?}");
    let offered = server.requests()[0].get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(offered.as_deref(), Some("a, b, c"));
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_needs_a_user_and_a_password() {
    let run = run_with_input(&["ws://127.0.0.1:9/", "--basic-auth", "nopassword"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert_eq!(run.stderr, "wsrun: client: --basic-auth expects USER:PASS\n", "{run:?}");
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url, "--basic-auth", "user:"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let authorization = server.requests()[0].get("authorization").map(|v| v.to_str().unwrap().to_owned());
    // base64("user:")
    assert_eq!(authorization.as_deref(), Some("Basic dXNlcjo="));
}

#[tokio::test(flavor = "multi_thread")]
async fn text_mode_strips_crlf_and_replaces_invalid_utf8() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url], b"one\r\ntwo\r\ncaf\xe9\r\nkeeps \r inside\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< one", "< two", "< caf\u{fffd}", r"< keeps \r inside"], "{run:?}");
    // In binary mode the bytes go as they are (but for the line's own `\r\n`).
    let run = run_with_input(&[&server.url, "--binary"], b"caf\xe9\r\n").await;
    assert_eq!(run.received(), ["< (binary) 636166e9"], "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_that_fails_is_reported_and_exits_1() {
    let server = Server::echo().await;
    // A ping carries at most 125 bytes: the host refuses this one.
    let input = format!("/ping {}\nstill works\n", "p".repeat(126));
    let run = run_with_input(&[&server.url, "--commands"], input.as_bytes()).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(
        run.stderr, "wsrun: send failed: invalid argument: a ping or pong carries at most 125 bytes\n",
        "{run:?}"
    );
    assert_eq!(run.received(), ["< still works"], "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 1000 (OK).\n"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_client_takes_commands() {
    let server = Server::echo().await;
    let mut terminal = OnTerminal::spawn(&[&server.url]);
    terminal.wait_for(&format!("Connected to {}.", server.url)).await;
    terminal.type_keys(b"/ping\r");
    let screen = terminal.wait_for(" ms\n").await;
    assert!(screen.contains("< (pong) "), "{screen}");
    terminal.type_keys(b"hello\r");
    terminal.wait_for("< hello").await;
    terminal.type_keys(b"/close 4000 see you\r");
    terminal.wait_for("Connection closed: 4000 (see you).").await;
    let (code, settings) = terminal.exit().await;
    assert_eq!(code, Some(0));
    assert_cooked(&settings);
    assert_eq!(server.closes(1).await, vec![Some((4000, "see you".to_owned()))]);
}
