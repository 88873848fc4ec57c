//! Connection failures are reported at once, in one line naming the cause, with exit code 1; redirects are
//! followed within the session's grant.

use std::time::Duration;

use crate::raw;
use crate::servers::{self, Answer, Server};
use crate::tls::TestPki;
use crate::util::{run_with_input, Run};

fn assert_one_line_failure(run: &Run, needle: &str) {
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.starts_with("wsrun: ") && run.stderr.contains(needle), "expected {needle:?} in {run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_error_statuses_are_shown_with_their_status_line() {
    for (status, text) in [(404, "HTTP 404 Not Found"), (500, "HTTP 500 Internal Server Error")] {
        let server = Server::routed(move |_| Answer::Status(status, None), servers::echo).await;
        let run = run_with_input(&[&server.url], b"").await;
        assert_one_line_failure(&run, text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_line_shows_the_canonical_reason_phrase() {
    // The WebSocket library keeps the status code of a refusal, not its reason phrase: the host reports the
    // standard phrase for the code, as wit/websocket.wit says of `http-response.reason`.
    let url = raw::refusing("404 Topic Gone").await;
    let run = run_with_input(&[&url], b"").await;
    assert_one_line_failure(&run, "HTTP 404 Not Found");
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_303_and_308_are_followed_too() {
    for status in [303, 308] {
        let server = Server::routed(
            move |path| match path {
                "/old" => Answer::Status(status, Some("/new".into())),
                _ => Answer::Upgrade,
            },
            servers::echo,
        )
        .await;
        let run = run_with_input(&[&format!("{}old", server.url)], b"a\n").await;
        assert_eq!(run.code(), Some(0), "{status}: {run:?}");
        assert!(run.stdout.starts_with(&format!("Connected to {}new.\n< a\n", server.url)), "{status}: {run:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_and_https_locations_are_followed_as_ws_and_wss() {
    let plain = Server::echo().await;
    let location = plain.url.replace("ws://", "http://");
    let server = Server::routed(move |_| Answer::Status(302, Some(location.clone())), servers::echo).await;
    let run = run_with_input(&["--allow", &plain.url, &server.url], b"plain\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with(&format!("Connected to {}.\n< plain\n", plain.url)), "{run:?}");

    let pki = TestPki::new();
    let secure = Server::start_tls(pki.acceptor.clone(), servers::echo).await;
    let location = secure.url.replace("wss://", "https://");
    let server = Server::routed(move |_| Answer::Status(301, Some(location.clone())), servers::echo).await;
    let ca = pki.ca_file();
    let run =
        run_with_input(&["--cacert", ca.to_str().unwrap(), "--allow", &secure.url, &server.url], b"secure\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with(&format!("Connected to {}.\n< secure\n", secure.url)), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_scheme_is_refused() {
    let server = Server::routed(|_| Answer::Status(302, Some("ftp://127.0.0.1:9/file".into())), servers::echo).await;
    let run = run_with_input(&["--allow-any", &server.url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    let failure = run.stderr.lines().find(|l| !l.contains("warning")).unwrap_or_default();
    assert!(failure.contains("invalid URL: redirect to ftp://127.0.0.1:9/file: not a WebSocket URL"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_within_the_origin_is_followed_and_loses_no_input() {
    let server = Server::routed(
        |path| match path {
            "/old" => Answer::Status(302, Some("/new".into())),
            _ => Answer::Upgrade,
        },
        servers::echo,
    )
    .await;
    let old = format!("{}old", server.url);
    let run = run_with_input(&[&old], b"a\nb\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let expected = format!("Connected to {}new.\n< a\n< b\nConnection closed: 1000 (OK).\n", server.url);
    assert_eq!(run.stdout, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_is_refused_naming_the_location() {
    let elsewhere = Server::echo().await;
    let target = elsewhere.url.clone();
    let server = Server::routed(move |_| Answer::Status(302, Some(target.clone())), servers::echo).await;
    let run = run_with_input(&[&server.url], b"a\n").await;
    assert_one_line_failure(&run, &format!("redirect to {}", elsewhere.url));
    assert!(run.stderr.contains("not allowed"), "{run:?}");
    // The fix, named: the origin to allow.
    let origin = elsewhere.url.trim_end_matches('/');
    assert!(run.stderr.ends_with(&format!("(wsrun --allow {origin} would admit it)\n")), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_an_allowed_origin_is_followed() {
    let elsewhere = Server::echo().await;
    let target = elsewhere.url.clone();
    let server = Server::routed(move |_| Answer::Status(307, Some(target.clone())), servers::echo).await;
    let allowed = elsewhere.url.trim_start_matches("ws://").trim_end_matches('/').to_owned();
    let run = run_with_input(&["--allow", &allowed, &server.url], b"hi\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.stdout.starts_with(&format!("Connected to {}.\n< hi\n", elsewhere.url)), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_redirects_stop_after_ten_hops() {
    let server = Server::routed(
        |path| {
            let hop: u32 = path.trim_start_matches('/').parse().unwrap_or(0);
            Answer::Status(301, Some(format!("/{}", hop + 1)))
        },
        servers::echo,
    )
    .await;
    let run = run_with_input(&[&server.url], b"").await;
    assert_one_line_failure(&run, "too many redirects");
    assert!(run.stderr.contains("/11"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_without_location_is_an_http_error() {
    let server = Server::routed(|_| Answer::Status(302, None), servers::echo).await;
    let run = run_with_input(&[&server.url], b"").await;
    assert_one_line_failure(&run, "HTTP 302 Found");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_hits_the_open_timeout() {
    let (url, _accepted, _server) = servers::silent().await;
    let run = run_with_input(&["--open-timeout", "300ms", &url], b"").await;
    assert_one_line_failure(&run, "timed out while opening the connection (the limit is wsrun --open-timeout");
    assert!(run.elapsed < Duration::from_secs(3), "took {:?}", run.elapsed);
}

/// `--open-timeout` bounds the whole way to the upgrade, redirects included, not each request: a server that takes
/// 500 ms to redirect to itself would take 5.5 s to reach the limit of 10 redirects.
#[tokio::test(flavor = "multi_thread")]
async fn the_open_timeout_covers_every_redirect() {
    let (url, listener) = raw::listen().await;
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                raw::read_request(&mut tcp).await?;
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
                let answer = "HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                tokio::io::AsyncWriteExt::write_all(&mut tcp, answer.as_bytes()).await.ok()
            });
        }
    });
    let run = run_with_input(&["--open-timeout", "1200ms", &url], b"").await;
    assert_one_line_failure(&run, "timed out while opening the connection");
    let requests = requests.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=4).contains(&requests), "{requests} requests: a redirect followed, and no more than the time allows");
    assert!(run.elapsed < Duration::from_secs(4), "took {:?}", run.elapsed);
}

/// The guest's `Authorization` and `Cookie` go to the origin it connected to, and along a redirect within it, but
/// not to another origin it is redirected to, granted or not (before, they were sent there too).
#[tokio::test(flavor = "multi_thread")]
async fn credentials_do_not_follow_a_redirect_to_another_origin() {
    let credentials = ["-H", "Authorization: Bearer s3cret", "-H", "Cookie: session=1", "-H", "X-Trace: 7"];
    let elsewhere = Server::echo().await;
    let location = elsewhere.url.clone();
    let server = Server::routed(
        move |path| match path {
            "/away" => Answer::Status(302, Some(location.clone())),
            "/here" => Answer::Status(302, Some("/ws".into())),
            _ => Answer::Upgrade,
        },
        servers::echo,
    )
    .await;
    let mut args = vec!["--allow", &elsewhere.url];
    let away = format!("{}away", server.url);
    args.push(&away);
    args.extend(credentials);
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let seen = elsewhere.requests();
    assert_eq!(seen.len(), 1, "{run:?}");
    assert!(seen[0].get("authorization").is_none() && seen[0].get("cookie").is_none(), "{:?}", seen[0]);
    assert_eq!(seen[0]["x-trace"], "7");

    let here = format!("{}here", server.url);
    let mut args = vec![here.as_str()];
    args.extend(credentials);
    let run = run_with_input(&args, b"").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    let seen = server.requests();
    let last = seen.last().expect("the upgrade reached the server");
    assert_eq!(last["authorization"], "Bearer s3cret", "{run:?}");
    assert_eq!(last["cookie"], "session=1");
}
