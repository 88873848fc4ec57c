//! Outgoing HTTP from guests (`wasi:http/outgoing-handler`): only within the grant, through wsrun's transport
//! (TLS settings, the proxy), within its limits, stopped by Ctrl+C like anything else.

use std::time::{Duration, Instant};

use wsrun_test_artifacts::TOKEN_THEN_CONNECT;

use crate::http_server::{HttpServer, Reply};
use crate::proxy::ConnectProxy;
use crate::servers::Server;
use crate::tls::TestPki;
use crate::util::{run_with_input, within, Run, Running, BOUND};

/// A server that answers every request with `tok-` and the request's body.
async fn token_server() -> HttpServer {
    HttpServer::start(|seen| Reply::Text(format!("tok-{}", String::from_utf8_lossy(&seen.body)))).await
}

/// Run the example guest: `--allow` each of `allow`, then the guest, a WebSocket URL and the guest's arguments.
async fn fetch(allow: &[&str], ws_url: &str, guest_args: &[&str]) -> Run {
    let mut args = Vec::new();
    for pattern in allow {
        args.extend(["--allow", pattern]);
    }
    args.extend([TOKEN_THEN_CONNECT, ws_url]);
    args.extend(guest_args);
    run_with_input(&args, b"").await
}

/// The guest failed on HTTP with this `error-code` (as the guest prints it).
fn assert_http_error(run: &Run, code: &str) {
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("token-then-connect: HTTP: ") && run.stderr.contains(code), "expected {code}: {run:?}");
}

/// A WebSocket URL nothing listens on: for the runs that must stop before connecting.
const NO_WEBSOCKET: &str = "ws://127.0.0.1:9/";

#[tokio::test]
async fn a_granted_post_gets_a_token_that_opens_the_websocket() {
    let http = token_server().await;
    let ws = Server::echo().await;
    let token_url = format!("{}/token", http.origin);
    let run = fetch(&[&http.origin], &ws.url, &["--token-url", &token_url, "--body", "me"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("HTTP 200 (6 bytes)"), "{run:?}");
    assert_eq!(run.received(), ["< hello"], "{run:?}");

    let seen = http.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str(), &seen[0].body[..]), ("POST", "/token", &b"me"[..]));
    assert_eq!(seen[0].header("host"), http.origin.strip_prefix("http://"), "{seen:?}");
    assert_eq!(ws.requests()[0]["authorization"], "Bearer tok-me");
}

#[tokio::test]
async fn a_granted_get_with_a_query() {
    let http = token_server().await;
    let url = format!("{}/token?user=me&x=1", http.origin);
    let run = fetch(&[&http.origin], NO_WEBSOCKET, &["--token-url", &url, "--method", "GET", "--no-connect"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("body: tok-\n"), "{run:?}");
    let seen = http.requests();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("GET", "/token?user=me&x=1"), "{seen:?}");
}

#[tokio::test]
async fn http_needs_a_grant_of_its_own_and_a_denied_request_reaches_nothing() {
    let http = token_server().await;
    let address = http.origin.strip_prefix("http://").unwrap();
    let token_url = format!("{}/token", http.origin);
    // The URL's own origin is WebSocket only: an HTTP request to the same host and port is denied, as it is with a
    // ws:// or https:// pattern for it.
    let same_origin = format!("ws://{address}/");
    let ws_pattern = format!("ws://{address}");
    let https_pattern = format!("https://{address}");
    for allow in [vec![], vec![ws_pattern.as_str()], vec![https_pattern.as_str()]] {
        let run = fetch(&allow, &same_origin, &["--token-url", &token_url, "--no-connect"]).await;
        assert_http_error(&run, "HTTP-request-denied");
    }
    assert!(http.requests().is_empty(), "{:?}", http.requests());
    // A pattern without a scheme admits HTTP too.
    let run = fetch(&[address], &same_origin, &["--token-url", &token_url, "--no-connect"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
}

#[tokio::test]
async fn a_redirect_comes_back_to_the_guest_and_following_it_elsewhere_is_denied() {
    let port = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let elsewhere = port.clone();
    let http = HttpServer::start(move |seen| match seen.path.as_str() {
        // localhost is another origin than 127.0.0.1, though it reaches this very server.
        "/moved" => Reply::Raw(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: http://localhost:{}/token\r\nContent-Length: 0\r\n\r\n",
                elsewhere.get().unwrap()
            )
            .into_bytes(),
        ),
        // As real servers write it (python's http.server for a directory, say): a path, resolved by the guest.
        "/relative" => Reply::Raw(b"HTTP/1.1 301 Moved\r\nLocation: /token\r\nContent-Length: 0\r\n\r\n".to_vec()),
        _ => Reply::Text("tok".into()),
    })
    .await;
    port.set(http.origin.rsplit(':').next().unwrap().to_owned()).unwrap();
    let moved = format!("{}/moved", http.origin);

    let run = fetch(&[&http.origin], NO_WEBSOCKET, &["--token-url", &moved, "--no-connect"]).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stdout.contains("HTTP 302 (0 bytes)"), "the host followed the redirect itself: {run:?}");
    assert!(run.stderr.contains("answered HTTP 302"), "{run:?}");

    let run = fetch(&[&http.origin], NO_WEBSOCKET, &["--token-url", &moved, "--no-connect", "--follow"]).await;
    assert!(run.stdout.contains("following the redirect to http://localhost:"), "{run:?}");
    assert_http_error(&run, "HTTP-request-denied");
    assert_eq!(http.requests().len(), 2, "only the two requests to /moved: {:?}", http.requests());

    let relative = format!("{}/relative", http.origin);
    let run = fetch(&[&http.origin], NO_WEBSOCKET, &["--token-url", &relative, "--no-connect", "--follow"]).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.contains("following the redirect to /token\n") && run.stdout.contains("body: tok"), "{run:?}");
    let paths: Vec<String> = http.requests().iter().map(|seen| seen.path.clone()).collect();
    assert_eq!(paths[2..], ["/relative", "/token"], "{paths:?}");
}

#[tokio::test]
async fn a_response_body_past_the_limit_fails_the_read() {
    let http = HttpServer::start(|_| Reply::Endless { chunk: vec![b'x'; 64 << 10], every: Duration::ZERO }).await;
    let url = format!("{}/big", http.origin);
    let run = fetch(&[&http.origin], NO_WEBSOCKET, &["--token-url", &url, "--no-connect"]).await;
    // wasmtime-wasi-http gives a body's failures no error-code: the guest has the host's words.
    assert_http_error(&run, "the body failed: HTTP response body size exceeds limit: 16777216 bytes");
}

#[tokio::test]
async fn the_whole_exchange_has_a_deadline() {
    // A byte every 100 ms: never silent long enough for the between-bytes timeout, never done either.
    let http = HttpServer::start(|_| Reply::Endless { chunk: b"x".to_vec(), every: Duration::from_millis(100) }).await;
    let url = format!("{}/slow", http.origin);
    let started = Instant::now();
    let mut args = vec!["--http-timeout", "1s", "--allow", &http.origin, TOKEN_THEN_CONNECT, NO_WEBSOCKET];
    args.extend(["--token-url", &url, "--no-connect"]);
    let run = run_with_input(&args, b"").await;
    assert_http_error(&run, "the body failed: HTTP response timeout");
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
}

#[tokio::test]
async fn the_guests_own_timeouts_apply_to_a_silent_server() {
    for (reply, error) in
        [("silent", "ConnectionReadTimeout"), ("silent after the head", "the body failed: connection read timeout")]
    {
        let http = HttpServer::start(move |_| match reply {
            "silent" => Reply::Silent,
            _ => Reply::Endless { chunk: b"x".to_vec(), every: Duration::from_secs(30) },
        })
        .await;
        let url = format!("{}/", http.origin);
        let run =
            fetch(&[&http.origin], NO_WEBSOCKET, &["--token-url", &url, "--no-connect", "--timeout-ms", "300"]).await;
        assert_http_error(&run, error);
        assert!(run.elapsed < Duration::from_secs(5), "{reply}: {:?}", run.elapsed);
    }
}

#[tokio::test]
async fn malformed_responses_are_errors() {
    let huge_head = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(100 << 10));
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("a bad status line", b"HTTP/1.1 abc\r\n\r\n".to_vec(), "HttpProtocolError"),
        ("not HTTP", b"\x00\x01\x02 hello\r\n\r\n".to_vec(), "HttpProtocolError"),
        ("a head over 64 KiB", huge_head.into_bytes(), "HttpResponseHeaderSectionSize"),
        (
            "a lying Content-Length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec(),
            "the body failed: incomplete HTTP response",
        ),
    ];
    for (what, response, code) in cases {
        let http = HttpServer::start(move |_| Reply::Raw(response.clone())).await;
        let url = format!("{}/", http.origin);
        let run = fetch(&[&http.origin], NO_WEBSOCKET, &["--token-url", &url, "--no-connect", "--method", "GET"]).await;
        assert!(run.stderr.contains(code) && run.code() == Some(1), "{what}: {run:?}");
    }
}

#[tokio::test]
async fn https_uses_wsruns_tls_settings() {
    let pki = TestPki::new();
    let http = HttpServer::start_tls(pki.acceptor.clone(), |seen| Reply::Text(format!("tok-{}", seen.method))).await;
    let ca = pki.ca_file();
    let url = format!("{}/token", http.origin);
    let guest = [TOKEN_THEN_CONNECT, NO_WEBSOCKET, "--token-url", &url, "--no-connect"];

    let untrusted = run_with_input(&[&["--allow", &http.origin][..], &guest].concat(), b"").await;
    assert_http_error(&untrusted, "TlsCertificateError");
    let trusted =
        run_with_input(&[&["--allow", &http.origin, "--cacert", ca.to_str().unwrap()][..], &guest].concat(), b"").await;
    assert!(trusted.code() == Some(0) && trusted.stdout.contains("body: tok-POST"), "{trusted:?}");
    let insecure = run_with_input(&[&["--allow", &http.origin, "--insecure"][..], &guest].concat(), b"").await;
    assert!(insecure.code() == Some(0) && insecure.stdout.contains("body: tok-POST"), "{insecure:?}");
}

#[tokio::test]
async fn requests_go_through_the_proxy() {
    let http = token_server().await;
    let proxy = ConnectProxy::start().await;
    let url = format!("{}/token", http.origin);
    let guest = [TOKEN_THEN_CONNECT, NO_WEBSOCKET, "--token-url", &url, "--no-connect", "--body", "p"];
    let run = run_with_input(&[&["--allow", &http.origin, "--proxy", &proxy.url][..], &guest].concat(), b"").await;
    assert!(run.code() == Some(0) && run.stdout.contains("body: tok-p"), "{run:?}");
    let tunnels = proxy.tunnels.lock().unwrap().clone();
    assert_eq!(tunnels, [(http.origin.strip_prefix("http://").unwrap().to_owned(), None)]);
}

#[tokio::test]
async fn ctrl_c_stops_a_request_the_server_never_answers_and_a_body_that_never_ends() {
    let replies: [(&str, fn() -> Reply); 2] = [
        ("no answer", || Reply::Silent),
        ("a body trickling", || Reply::Endless { chunk: b"x".to_vec(), every: Duration::from_millis(500) }),
    ];
    for (what, reply) in replies {
        let mut http = HttpServer::start(move |_| reply()).await;
        let url = format!("{}/hang", http.origin);
        let wsrun = Running::spawn(&["--allow", &http.origin, TOKEN_THEN_CONNECT, NO_WEBSOCKET, "--token-url", &url]);
        within(BOUND, "the request to reach the server", async {
            while http.requests().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let signalled = Instant::now();
        wsrun.signal(libc::SIGINT);
        let run = wsrun.finish().await;
        assert_eq!(run.code(), Some(130), "{what}: {run:?}");
        assert!(signalled.elapsed() < Duration::from_secs(2), "{what}: {:?}", signalled.elapsed());
        if what == "no answer" {
            within(BOUND, "wsrun to leave the request's connection", http.gone.recv()).await;
        }
    }
}

#[tokio::test]
async fn the_session_timeout_stops_a_request() {
    let http = HttpServer::start(|_| Reply::Silent).await;
    let url = format!("{}/hang", http.origin);
    let args = ["--timeout", "500ms", "--allow", &http.origin, TOKEN_THEN_CONNECT, NO_WEBSOCKET, "--token-url", &url];
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("timed out after"), "{run:?}");
    assert!(run.elapsed < Duration::from_secs(3), "{:?}", run.elapsed);
}

#[tokio::test]
async fn a_load_run_counts_the_requests() {
    let http = token_server().await;
    let url = format!("{}/token", http.origin);
    let report =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("http-report-{}.json", std::process::id()));
    let mut args = vec!["--sessions", "3", "--report", report.to_str().unwrap(), "--allow", &http.origin];
    args.extend([TOKEN_THEN_CONNECT, NO_WEBSOCKET, "--token-url", &url, "--no-connect", "--body", "abc"]);
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let line = run.stdout.lines().find(|line| line.starts_with("  http ")).unwrap_or_else(|| panic!("{run:?}"));
    assert!(line.contains("3 requests: 3 2xx, 0 failed (0 denied); response p50 "), "{line}");
    assert!(line.ends_with("bodies 9 B sent, 21 B received"), "{line}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["http"]["requests"], 3, "{json}");
    assert_eq!(json["http"]["statuses"][1], 3, "{json}");
    let _ = std::fs::remove_file(report);
}
