//! Connection failures are reported at once, in one line naming the cause, with exit code 1; redirects are
//! followed within the session's grant.

use std::time::Duration;

use crate::servers::{self, Answer, Server};
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
    assert_one_line_failure(&run, "timed out while opening the connection");
    assert!(run.elapsed < Duration::from_secs(3), "took {:?}", run.elapsed);
}
