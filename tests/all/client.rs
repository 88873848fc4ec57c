//! The bundled `client` and `echo` guests against real servers: the data path and the close.

use tokio_tungstenite::tungstenite::Message;

use crate::servers::Server;
use crate::util::{run_with_input, within, BOUND};

#[tokio::test(flavor = "multi_thread")]
async fn two_lines_print_two_echoes_and_the_close() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url], b"a\nb\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let expected = format!("Connected to {}.\n< a\n< b\nConnection closed: 1000 (OK).\n", server.url);
    assert_eq!(run.stdout, expected);
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn piped_stdin_loses_nothing() {
    let server = Server::echo().await;
    let input: String = (1..=2000).map(|i| format!("line {i}\n")).collect();
    let run = run_with_input(&[&server.url], input.as_bytes()).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let expected: Vec<String> = (1..=2000).map(|i| format!("< line {i}")).collect();
    assert_eq!(run.received(), expected);
    assert!(run.stdout.ends_with("Connection closed: 1000 (OK).\n"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_last_line_without_newline_is_sent_too() {
    let server = Server::echo().await;
    let run = run_with_input(&[&server.url], b"first\nlast").await;
    assert_eq!(run.received(), ["< first", "< last"], "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_and_control_characters_are_shown_one_per_line() {
    let server =
        Server::sending(vec![Message::binary(vec![0x01, 0x02, 0xff]), Message::text("tab\there\nnewline\u{1b}[31m")])
            .await;
    let run = run_with_input(&[&server.url], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< (binary) 0102ff", r"< tab\there\nnewline\u{1b}[31m"]);
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_close_code_and_reason_are_printed() {
    let server = Server::closing(4001, "bye now").await;
    // Stdin stays open: the close must come from the server.
    let mut child = crate::util::wsrun(&[&server.url]).spawn().unwrap();
    let stdin = child.stdin.take();
    let run = crate::util::finish(child, std::time::Instant::now()).await;
    drop(stdin);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.ends_with("Connection closed: 4001 (bye now).\n"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn echo_guest_sends_text_and_binary_back_unchanged() {
    let (server, mut results) = Server::echo_checker().await;
    let run = run_with_input(&["echo", &server.url], b"").await;
    let result = within(BOUND, "the echo check", results.recv()).await;
    assert_eq!(result, Some(true), "the echoes differ: {run:?}");
    assert_eq!(run.code(), Some(0), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_is_not_listening_is_a_clear_error() {
    // A port bound but not listening refuses connections, and stays ours (no one else can listen on it) until the
    // end of the test.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("ws://{}/", socket.local_addr().unwrap());
    let run = run_with_input(&[&url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("wsrun: "), "{}", run.stderr);
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    drop(socket);
}
