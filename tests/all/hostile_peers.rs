//! Servers that attack the client: floods it cannot answer, words made to act on the terminal. The peer is as
//! untrusted as the guest; each test failed before its defence existed.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::raw::{listen, read_request, upgrade};
use crate::util::{Run, Running};

/// Resident memory of a process, in MiB (0 once it is gone).
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    kib / 1024
}

/// One connection: the opening handshake, then `frame` written over and over, nothing ever read, until the test
/// ends (the socket is kept open).
async fn flooding(frame: Vec<u8>) -> String {
    let (url, listener) = listen().await;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        upgrade(&mut tcp).await?;
        let batch = frame.repeat(256);
        while tcp.write_all(&batch).await.is_ok() {}
        // Held (not read) until the test ends.
        std::future::pending::<()>().await;
        Some(())
    });
    url
}

/// Run wsrun against a flooding peer and watch its memory until it exits (at most `bound`): its peak RSS in MiB.
async fn peak_until_exit(args: &[&str], bound: Duration) -> (u64, Run) {
    let mut running = Running::spawn(args);
    let pid = running.pid();
    let started = Instant::now();
    let mut peak = 0;
    while running.is_running() {
        assert!(
            started.elapsed() < bound,
            "wsrun did not end the stalled connection within {bound:?} (peak RSS {peak} MiB)"
        );
        peak = peak.max(rss_mib(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (peak, running.finish().await)
}

/// A server that pings as fast as it can and never reads: the pongs cannot go out. Before, they piled up without
/// bound (over 2 GiB in 20 s); now one waits, for the last ping, and the connection is ended once the server has
/// read nothing for the stall timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_floods_pings_and_never_reads_is_ended_within_bounded_memory() {
    let ping = [&[0x89, 125][..], &[b'p'; 125]].concat();
    let url = flooding(ping).await;
    let (peak, run) = peak_until_exit(&["--stall-timeout", "3s", &url, "--no-close"], Duration::from_secs(20)).await;
    assert!(peak < 64, "wsrun grew to {peak} MiB");
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("read nothing") && run.stderr.contains("1008"), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(10), "{run:?}");
}

/// A server that floods messages the echo guest reads and sends back, while it never reads: the guest's sends
/// wait, its queue fills, reading stops; then the stall timeout ends it all.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_floods_messages_and_never_reads_the_answers_is_ended_within_bounded_memory() {
    let text = [&[0x81, 100][..], &[b't'; 100]].concat();
    let url = flooding(text).await;
    let (peak, run) = peak_until_exit(&["--stall-timeout", "3s", "echo", &url], Duration::from_secs(20)).await;
    assert!(peak < 64, "wsrun grew to {peak} MiB");
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("read nothing"), "{run:?}");
}

/// A peer that reads slowly but steadily is not stalled, however long the whole takes.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_is_not_taken_for_a_stalled_one() {
    use tokio::io::AsyncReadExt;
    let (url, listener) = listen().await;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        upgrade(&mut tcp).await?;
        // 16 MiB arrive; take 256 KiB every 100 ms (6 s in all), past a 1 s stall timeout many times over.
        let mut sink = vec![0u8; 256 << 10];
        let mut read = 0usize;
        while read < 16 << 20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut chunk = 0;
            while chunk < sink.len() {
                chunk += tcp.read(&mut sink[chunk..]).await.ok().filter(|&n| n > 0)?;
            }
            read += chunk;
        }
        tcp.write_all(&[0x88, 2, 0x03, 0xe8]).await.ok()?;
        std::future::pending::<()>().await;
        Some(())
    });
    let running = Running::spawn(&["--stall-timeout", "1s", wsrun_test_artifacts::TEST_BIG_SEND, &url, "1"]);
    let run = tokio::time::timeout(Duration::from_secs(30), async {
        let mut running = running;
        while running.is_running() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        running.finish().await
    })
    .await
    .expect("the big sender ended within 30 s");
    assert!(!run.stderr.contains("read nothing"), "a steady reader was taken for a stalled one: {run:?}");
}

/// What a peer controls and wsrun prints, with the sequences a terminal acts on: none of them may reach stdout or
/// stderr raw.
const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31m\u{9b}31m\u{202e}txt.exe";

fn assert_nothing_raw(run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        let raw = text
            .chars()
            .find(|&c| c == '\u{1b}' || c == '\u{7}' || ('\u{80}'..='\u{9f}').contains(&c) || c == '\u{202e}');
        assert!(raw.is_none(), "{raw:?} reached the terminal raw: {run:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_close_reason_and_a_message_are_escaped() {
    let (url, listener) = listen().await;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        upgrade(&mut tcp).await?;
        let text = format!("hello {HOSTILE}");
        tcp.write_all(&[&[0x81, text.len() as u8][..], text.as_bytes()].concat()).await.ok()?;
        // Close 4000 with the reason (123 bytes at most).
        let reason = [&4000u16.to_be_bytes()[..], HOSTILE.as_bytes()].concat();
        tcp.write_all(&[&[0x88, reason.len() as u8][..], &reason].concat()).await.ok()?;
        std::future::pending::<()>().await;
        Some(())
    });
    let run = crate::util::run_with_input(&[&url, "--no-close"], b"").await;
    assert_nothing_raw(&run);
    assert!(run.stdout.contains("< hello \\u{1b}]0;pwned\\u{7}"), "{run:?}");
    assert!(run.stdout.contains("Connection closed: 4000 (\\u{1b}]0;pwned"), "{run:?}");
    // The same in JSON lines.
    let (url, listener) = listen().await;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        upgrade(&mut tcp).await?;
        let reason = [&4000u16.to_be_bytes()[..], HOSTILE.as_bytes()].concat();
        tcp.write_all(&[&[0x88, reason.len() as u8][..], &reason].concat()).await.ok()?;
        std::future::pending::<()>().await;
        Some(())
    });
    let run = crate::util::run_with_input(&[&url, "--no-close", "--jsonl"], b"").await;
    assert_nothing_raw(&run);
    assert!(run.stdout.contains(r#""reason":"\u001b]0;pwned"#), "{run:?}");
}

/// A redirect whose `Location` is not a URL: the error quotes it, escaped.
#[tokio::test(flavor = "multi_thread")]
async fn a_location_is_escaped_in_connect_errors() {
    let location = "ws://[\u{9b}31m\u{202e}/";
    let redirecting =
        serve_http(format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")).await;
    let run = crate::util::run_with_input(&[&redirecting], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_nothing_raw(&run);
    assert!(run.stderr.contains("\\u{9b}31m\\u{202e}"), "{run:?}");
}

/// A guest that names a function with escape sequences and traps in it: the backtrace wsrun prints shows the name
/// escaped, alone and in the `--sessions` summary.
#[tokio::test(flavor = "multi_thread")]
async fn a_trap_backtrace_shows_function_names_escaped() {
    let server = crate::servers::Server::echo().await;
    let run = crate::util::run_with_input(&[wsrun_test_artifacts::HOSTILE_NAMES, &server.url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_nothing_raw(&run);
    assert!(run.stderr.contains("\\u{1b}]0;pwned\\u{7}"), "the name is not in the backtrace: {run:?}");
    let run =
        crate::util::run_with_input(&["--sessions", "2", wsrun_test_artifacts::HOSTILE_NAMES, &server.url], b"").await;
    assert_nothing_raw(&run);
    assert!(run.stderr.contains("2 sessions trapped") && run.stderr.contains("\\u{1b}]0;pwned"), "{run:?}");
}

/// A server that answers every request with `response` as it is.
async fn serve_http(response: String) -> String {
    let (url, listener) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                read_request(&mut tcp).await?;
                tcp.write_all(response.as_bytes()).await.ok()?;
                tokio::time::sleep(Duration::from_secs(1)).await;
                Some::<TcpStream>(tcp)
            });
        }
    });
    url
}

/// A server that neither reads nor sends while the guest sends: the send waits, the stall timeout ends it (the
/// guest's send fails with the stall's error) rather than the session waiting for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_that_never_reads_ends_a_waiting_send() {
    let (url, listener) = listen().await;
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        upgrade(&mut tcp).await?;
        std::future::pending::<()>().await;
        Some(tcp)
    });
    let started = Instant::now();
    let run =
        crate::util::run_with_input(&["--stall-timeout", "2s", wsrun_test_artifacts::TEST_BIG_SEND, &url, "16"], b"")
            .await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("send failed: limit reached: the peer read nothing"), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "{run:?}");
}
