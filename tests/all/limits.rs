//! The host's limits on connections and their defaults (README, "Limits"): each default as `wsrun --help` states
//! it, and exercised wherever that is cheap.

use tokio_tungstenite::tungstenite::Message;
use wsrun_test_artifacts::TEST_MISBEHAVE;

use crate::servers::Server;
use crate::util::run_with_input;

#[tokio::test(flavor = "multi_thread")]
async fn help_states_every_default() {
    let run = run_with_input(&["--help"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    // clap prints each option's help, then `[default: ...]`, possibly on the next line: join them.
    let help = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let defaults = [
        ("--open-timeout <DURATION>", "10s"),
        ("--close-timeout <DURATION>", "1s"),
        ("--stall-timeout <DURATION>", "10s"),
        ("--max-memory <SIZE>", "256M"),
        ("--max-connections <N>", "16"),
        ("--max-message-size <SIZE>", "16M"),
        ("--max-queued <N>", "1024"),
        ("--max-queued-bytes <SIZE>", "64M"),
        ("--max-session-queued-bytes <SIZE>", "256M"),
    ];
    for (option, default) in defaults {
        let at = help.find(option).unwrap_or_else(|| panic!("{option} is not in --help: {help}"));
        let rest = &help[at + option.len()..];
        let stated = rest.split("[default: ").nth(1).and_then(|after| after.split(']').next());
        assert_eq!(stated, Some(default), "{option}: {rest:.200}");
        // The default is this option's, not the next one's.
        let next_option = rest.find(" --").unwrap_or(rest.len());
        assert!(rest.find("[default: ").unwrap() < next_option, "{option} has no default of its own");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_connections_by_default() {
    let server = Server::echo().await;
    let run = run_with_input(&[TEST_MISBEHAVE, &server.url, "connections"], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("connection 17 refused: limit reached: at most 16 connections per session"), "{run:?}");
    // The guest exits 1 holding them: the host closes each of the 16 it opened, normally.
    assert_eq!(server.closes(16).await, vec![Some((1000, String::new())); 16], "the host closes the 16 it opened");
}

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_mebibyte_messages_by_default() {
    let server =
        Server::sending(vec![Message::binary(vec![1u8; 16 << 20]), Message::binary(vec![2u8; (16 << 20) + 1])]).await;
    let run = run_with_input(&[TEST_MISBEHAVE, &server.url, "receive"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "binary 16777216", "16 MiB is accepted: {run:?}");
    assert!(lines[1].starts_with("error message-too-large: "), "16 MiB and one byte is not: {run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_max_message_size_bounds_what_a_guest_asks_for() {
    let messages = vec![Message::text("a".repeat(1024)), Message::text("b".repeat(1025))];
    // The host's limit alone, then with the client asking for more: the host's limit holds either way.
    for client_asks in [&[][..], &["--max-message-size", "1M"]] {
        let server = Server::sending(messages.clone()).await;
        let mut args = vec!["--max-message-size", "1K", server.url.as_str(), "--no-close"];
        args.extend(client_asks);
        let run = run_with_input(&args, b"").await;
        assert_eq!(run.code(), Some(1), "{client_asks:?}: {run:?}");
        assert_eq!(run.received(), [format!("< {}", "a".repeat(1024))], "{client_asks:?}");
        assert!(run.stderr.contains("message too large"), "{client_asks:?}: {run:?}");
        assert_eq!(server.closes(1).await, vec![Some((1009, "message too big".to_owned()))], "{client_asks:?}");
    }
    // A guest may ask for less than the host allows.
    let server = Server::sending(messages).await;
    let run =
        run_with_input(&["--max-message-size", "1M", &server.url, "--no-close", "--max-message-size", "1K"], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(server.closes(1).await, vec![Some((1009, "message too big".to_owned()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_limits_default_to_1024_messages_and_64_mebibytes() {
    let server = Server::sending(vec![Message::text("queued")]).await;
    let args = ["--verbose", "--timeout", "500ms", "--close-timeout", "200ms", TEST_MISBEHAVE, &server.url, "idle"];
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(1), "timed out: {run:?}");
    // The host logs each connection's queue figures, with the limits it applied.
    let figures = run.stderr.lines().find(|l| l.contains("queue peak")).unwrap_or_else(|| panic!("{run:?}"));
    assert!(figures.ends_with(&format!("(limits 1024 / {})", 64 << 20)), "{figures}");
}

/// `--max-queued` alone stops the reading: 50 small messages for a guest that takes none, a limit of 5 messages and
/// the default 64 MiB of bytes, which they never reach.
#[tokio::test(flavor = "multi_thread")]
async fn the_message_count_alone_stops_the_reading() {
    let server = Server::sending((0..50).map(|i| Message::text(format!("queued {i}"))).collect()).await;
    let args = [
        "--verbose",
        "--max-queued",
        "5",
        "--timeout",
        "1s",
        "--close-timeout",
        "200ms",
        TEST_MISBEHAVE,
        &server.url,
        "idle",
    ];
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(1), "timed out: {run:?}");
    let figures = run.stderr.lines().find(|l| l.contains("queue peak")).unwrap_or_else(|| panic!("{run:?}"));
    assert!(
        figures.contains("queue peak 5 messages / ") && figures.ends_with(&format!("(limits 5 / {})", 64 << 20)),
        "{figures}"
    );
}
