//! Compression (permessage-deflate, RFC 7692) against python-websockets, which offers and accepts it by default:
//! messages both ways, fragmented and not, with and without context takeover, a decompression bomb, and handshake
//! answers that name what wsrun did not offer.

use crate::python_server::PythonServer;
use crate::util::run_with_input;

/// A compressible text message: the JSON a market-data feed sends, 20 KB of it.
fn json_line() -> String {
    let quotes: Vec<String> =
        (0..250).map(|i| format!(r#"{{"seq":{i},"symbol":"ACME","bid":101.25,"ask":101.5,"venue":"XNAS"}}"#)).collect();
    format!("[{}]", quotes.join(","))
}

/// 2,000 bytes of a repeating pattern, as hex for `/binary`.
fn binary_hex() -> String {
    (0..2000).map(|i| format!("{:02x}", (i % 16) as u8)).collect()
}

/// What the server says it read from the socket: its bytes and the extensions agreed on.
fn wire_report(stdout: &str) -> (u64, String) {
    let line = stdout.lines().find(|line| line.contains("wire_in")).expect("the server's wire? answer");
    let json = line.trim_start_matches("< ");
    let wire_in = json.split("\"wire_in\": ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    (wire_in, json.split("\"extensions\": ").nth(1).unwrap().to_owned())
}

/// The exchange every test below makes: text, binary, a fragmented reply, a binary reply, and the server's count.
async fn exchange(server: &PythonServer, host_options: &[&str]) -> crate::util::Run {
    let json = json_line();
    let input = format!("{json}\n/binary {}\n{json}\nfragments\nbinary\nwire?\n", binary_hex());
    let mut args = host_options.to_vec();
    args.extend([server.url.as_str(), "--commands"]);
    let run = run_with_input(&args, input.as_bytes()).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let received = run.received();
    assert_eq!(received.len(), 6, "{run:?}");
    assert_eq!(received[0], format!("< {json}"));
    assert_eq!(received[1], format!("< (binary) {}", binary_hex()));
    assert_eq!(received[2], format!("< {json}"));
    assert_eq!(received[3], "< frag-one frag-two frag-three", "one message, joined from its fragments");
    let expected: String = (0..5120).map(|i| format!("{:02x}", (i % 256) as u8)).collect();
    assert_eq!(received[4], format!("< (binary) {expected}"));
    run
}

#[tokio::test]
async fn messages_travel_compressed_both_ways_by_default() {
    let server = PythonServer::start("compression").await;
    let run = exchange(&server, &[]).await;
    assert!(run.stdout.starts_with(&format!("Connected to {} (compressed).", server.url)), "{}", run.stdout);
    let (wire_in, extensions) = wire_report(&run.stdout);
    assert!(extensions.contains("PerMessageDeflate"), "{extensions}");
    let payload = 2 * json_line().len() + 2000;
    assert!(wire_in < payload as u64 / 4, "the server read {wire_in} bytes for {payload} of payload");
}

#[tokio::test]
async fn no_compression_offers_none() {
    let server = PythonServer::start("compression").await;
    let run = exchange(&server, &["--no-compression"]).await;
    assert!(run.stdout.starts_with(&format!("Connected to {}.", server.url)), "{}", run.stdout);
    let (wire_in, extensions) = wire_report(&run.stdout);
    assert_eq!(extensions.trim_end_matches('}'), "[]");
    assert!(wire_in > 2 * json_line().len() as u64 + 2000, "{wire_in}");
}

#[tokio::test]
async fn without_context_takeover_and_with_a_small_window() {
    let server = PythonServer::start("no-context-takeover").await;
    let run = exchange(&server, &[]).await;
    let (wire_in, extensions) = wire_report(&run.stdout);
    assert!(extensions.contains("no_context_takeover") && extensions.contains("=10"), "{extensions}");
    assert!(wire_in < (2 * json_line().len() + 2000) as u64 / 3, "{wire_in}");
}

#[tokio::test]
async fn a_decompression_bomb_ends_as_a_message_too_large() {
    let server = PythonServer::start("compression").await;
    // 64 MiB of zeros, a few KiB on the wire, against a 1 MiB limit.
    let run = run_with_input(&["--max-message-size", "1MiB", &server.url], b"bomb 67108864\n").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("message too large (1048577 bytes)"), "{}", run.stderr);
    assert!(run.received().is_empty(), "{run:?}");
    // Below the limit, the same kind of message is fine.
    let run = run_with_input(&["--max-message-size", "1MiB", &server.url], b"bomb 1048576\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received()[0].len(), "< (binary) ".len() + 2 * 1048576);
}

#[tokio::test]
async fn a_handshake_answer_naming_what_was_not_offered_fails_the_connection() {
    for (answer, host_options, why) in [
        ("x-custom", &[][..], "the server accepted an extension wsrun did not offer: x-custom"),
        ("permessage-deflate", &["--no-compression"][..], "did not offer: permessage-deflate"),
        ("permessage-deflate; client_max_window_bits=7", &[][..], "permessage-deflate has an invalid"),
        ("permessage-deflate; x=1", &[][..], "permessage-deflate has a parameter wsrun did not offer: x=1"),
    ] {
        let server = PythonServer::start(&format!("answer:{answer}")).await;
        let mut args = host_options.to_vec();
        args.push(&server.url);
        let run = run_with_input(&args, b"hello\n").await;
        assert_eq!(run.code(), Some(1), "{answer}: {run:?}");
        let line = format!("wsrun: could not connect to {}: protocol error: ", server.url);
        assert!(run.stderr.contains(&line) && run.stderr.contains(why), "{answer}: {}", run.stderr);
        assert!(run.received().is_empty());
    }
}

#[tokio::test]
async fn a_refusal_shows_the_first_line_of_its_body() {
    let server = PythonServer::start("refuse").await;
    let run = run_with_input(&[&server.url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    let line = run.stderr.lines().find(|line| line.contains("HTTP 400")).expect("the refusal");
    assert!(line.ends_with("HTTP 400 Bad Request: Missing subprotocol: ask for chat.v2"), "{line}");
}
