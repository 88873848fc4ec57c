//! The grant: a guest reaches the origin of its URL and what `--allow` / `--allow-any` add, nothing else; a denied
//! connection goes nowhere, not even to the proxy. And the errors a guest gets for what it asks, by their WIT names.

use std::time::Duration;

use wsrun_test_artifacts::TEST_MISBEHAVE;

use crate::proxy::ConnectProxy;
use crate::servers::Server;
use crate::util::{run_with_input, run_with_input_within, Run};

/// The `host:port` of a `ws://host:port/` URL.
fn authority(url: &str) -> &str {
    url.trim_start_matches("ws://").trim_end_matches('/')
}

/// The misbehaving guest, given `url` as its session URL, connecting to `target` (perhaps with a `header`): its
/// one line of output says how it went.
async fn connect(host_args: &[&str], url: &str, target: &str, header: Option<&str>) -> Run {
    let mut args = host_args.to_vec();
    args.extend([TEST_MISBEHAVE, url, "connect", target]);
    args.extend(header);
    let run = run_with_input_within(&args, b"", Duration::from_secs(90)).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    run
}

#[tokio::test(flavor = "multi_thread")]
async fn another_origin_is_denied_on_the_first_hop() {
    let session = Server::echo().await;
    let elsewhere = Server::echo().await;
    let run = connect(&[], &session.url, &elsewhere.url, None).await;
    assert!(
        run.stdout.starts_with(&format!("connect: denied: not allowed: connecting to {}", elsewhere.url)),
        "{run:?}"
    );
    assert!(elsewhere.requests().is_empty(), "the denied server was reached");
    // Another port of the same host is another origin too, and so is the other scheme.
    let other_scheme = session.url.replace("ws://", "wss://");
    let run = connect(&[], &session.url, &other_scheme, None).await;
    assert!(run.stdout.starts_with("connect: denied: "), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_grants_a_direct_connection() {
    let session = Server::echo().await;
    let elsewhere = Server::echo().await;
    for pattern in [authority(&elsewhere.url).to_owned(), format!("ws://{}", authority(&elsewhere.url))] {
        let run = connect(&["--allow", &pattern], &session.url, &elsewhere.url, None).await;
        assert_eq!(run.stdout, format!("connect: ok {}\n", elsewhere.url), "--allow {pattern}: {run:?}");
    }
    assert_eq!(elsewhere.requests().len(), 2);
    // A pattern for another port grants nothing here.
    let run = connect(&["--allow", "127.0.0.1:9"], &session.url, &elsewhere.url, None).await;
    assert!(run.stdout.starts_with("connect: denied: "), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_any_grants_everything_with_a_warning() {
    let session = Server::echo().await;
    let elsewhere = Server::echo().await;
    let run = connect(&["--allow-any"], &session.url, &elsewhere.url, None).await;
    assert_eq!(run.stdout, format!("connect: ok {}\n", elsewhere.url), "{run:?}");
    assert_eq!(run.stderr, "wsrun: warning: --allow-any lets the guest connect to any host\n", "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_target_sends_nothing_to_the_proxy() {
    let proxy = ConnectProxy::start().await;
    let session = Server::echo().await;
    let elsewhere = Server::echo().await;
    // The allowed target goes through the proxy ...
    let run = connect(&["--proxy", &proxy.url], &session.url, &session.url, None).await;
    assert_eq!(run.stdout, format!("connect: ok {}\n", session.url), "{run:?}");
    assert_eq!(proxy.tunnels.lock().unwrap().len(), 1, "the proxy was not used");
    // ... the denied one asks it nothing.
    let run = connect(&["--proxy", &proxy.url], &session.url, &elsewhere.url, None).await;
    assert!(run.stdout.starts_with("connect: denied: "), "{run:?}");
    assert_eq!(proxy.tunnels.lock().unwrap().len(), 1, "a CONNECT was sent for a denied target");
    assert!(elsewhere.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn error_codes_reach_the_guest() {
    let server = Server::echo().await;
    let url = server.url.as_str();
    let cases: [(&[&str], &str, Option<&str>, &str); 5] = [
        (&[], "not a url", None, "connect: invalid-url: "),
        (&[], "http://127.0.0.1:9/", None, "connect: invalid-url: "),
        (&[], url, Some("Sec-WebSocket-Key: forged"), "connect: invalid-argument: "),
        // RFC 6761: names under .invalid never resolve.
        (&["--allow", "*.invalid"], "ws://wsrun-test.invalid/", None, "connect: dns: "),
        (&[], url, Some("X-Fine: yes"), "connect: ok "),
    ];
    for (host_args, target, header, expected) in cases {
        // The system's resolver may ask a DNS server about the .invalid name and wait for it (5 s per try by
        // default): wsrun's --open-timeout and the test's bound leave it the time.
        let host_args = [host_args, &["--open-timeout", "60s"]].concat();
        let run = connect(&host_args, url, target, header).await;
        assert!(run.stdout.starts_with(expected), "{target} {header:?}: expected {expected:?}: {run:?}");
    }
    let run = run_with_input(&[TEST_MISBEHAVE, url, "send-after-close"], b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with("close: ok; send: closed: "), "{run:?}");
}

/// `--allow 127.0.0.*` reads as "these addresses": before, it matched `127.0.0.1.wsrun-test.invalid` too, and the
/// host went on to resolve the name (a DNS query the guest chose). A name pattern's `*` stands for whole labels.
#[tokio::test(flavor = "multi_thread")]
async fn an_address_pattern_grants_addresses_only_and_a_star_whole_labels() {
    let session = Server::echo().await;
    let elsewhere = Server::echo().await;
    let run = connect(&["--allow", "127.0.0.*"], &session.url, "ws://127.0.0.1.wsrun-test.invalid/", None).await;
    assert!(run.stdout.starts_with("connect: denied: "), "{run:?}");
    let run = connect(&["--allow", "127.0.0.*"], &session.url, &elsewhere.url, None).await;
    assert_eq!(run.stdout, format!("connect: ok {}\n", elsewhere.url), "{run:?}");
    let run = connect(&["--allow", "*invalid"], &session.url, "ws://wsrun-test.invalid/", None).await;
    assert!(run.stdout.starts_with("connect: denied: "), "{run:?}");
}
