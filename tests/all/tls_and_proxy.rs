//! wss:// with a private CA (--cacert), without it (a clear certificate error), with --insecure, and connections
//! through an HTTP CONNECT proxy (--proxy and the environment).

use crate::proxy::ConnectProxy;
use crate::servers::{self, Server};
use crate::tls::TestPki;
use crate::util::{run_command, run_with_input, within, wsrun, BOUND};

#[tokio::test(flavor = "multi_thread")]
async fn wss_with_the_private_ca_works() {
    let pki = TestPki::new();
    let server = Server::start_tls(pki.acceptor.clone(), servers::echo).await;
    let ca = pki.ca_file();
    let run = run_with_input(&["--cacert", ca.to_str().unwrap(), &server.url], b"secure\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< secure"]);
    assert_eq!(server.closes(1).await, vec![Some((1000, String::new()))]);
}

/// Large messages, which the host frames itself, go in above TLS: over wss too, they and small ones come back whole
/// and in order.
#[tokio::test(flavor = "multi_thread")]
async fn wss_carries_large_and_small_messages_unchanged() {
    let pki = TestPki::new();
    let (server, mut results) = Server::echo_checker_over(Some(pki.acceptor.clone())).await;
    let ca = pki.ca_file();
    let run = run_with_input(&["--cacert", ca.to_str().unwrap(), "echo", &server.url], b"").await;
    let result = within(BOUND, "the echo check", results.recv()).await;
    assert_eq!(result, Some(true), "the echoes differ: {run:?}");
    assert_eq!(run.code(), Some(0), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wss_without_the_ca_is_a_certificate_error() {
    let pki = TestPki::new();
    let server = Server::start_tls(pki.acceptor.clone(), servers::echo).await;
    let run = run_with_input(&[&server.url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("TLS error") && run.stderr.contains("certificate"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn insecure_skips_verification_with_a_warning() {
    let pki = TestPki::new();
    let server = Server::start_tls(pki.acceptor.clone(), servers::echo).await;
    let run = run_with_input(&["--insecure", &server.url], b"hi\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< hi"]);
    assert!(run.stderr.starts_with("wsrun: warning: --insecure"), "{run:?}");
    // No TLS in sight (a ws:// URL, nothing else allowed): nothing to warn about.
    let plain = Server::echo().await;
    let run = run_with_input(&["--insecure", &plain.url], b"hi\n").await;
    assert_eq!((run.code(), run.stderr.as_str()), (Some(0), ""), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_cacert_is_a_usage_error() {
    let run = run_with_input(&["--cacert", "/nonexistent/ca.pem", "wss://127.0.0.1:9/"], b"").await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.starts_with("wsrun: cannot read --cacert /nonexistent/ca.pem"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_flag_tunnels_through_connect() {
    let proxy = ConnectProxy::start().await;
    let server = Server::echo().await;
    let with_credentials = proxy.url.replace("http://", "http://me:s%40cret@");
    let run = run_with_input(&["--proxy", &with_credentials, &server.url], b"via proxy\n").await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< via proxy"]);
    let authority = server.url.trim_start_matches("ws://").trim_end_matches('/').to_owned();
    // base64("me:s@cret")
    assert_eq!(*proxy.tunnels.lock().unwrap(), vec![(authority, Some("Basic bWU6c0BjcmV0".to_owned()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn wss_goes_through_the_proxy_too() {
    let proxy = ConnectProxy::start().await;
    let pki = TestPki::new();
    let server = Server::start_tls(pki.acceptor.clone(), servers::echo).await;
    let ca = pki.ca_file();
    let run =
        run_with_input(&["--proxy", &proxy.url, "--cacert", ca.to_str().unwrap(), &server.url], b"tls in a tunnel\n")
            .await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(run.received(), ["< tls in a tunnel"]);
    assert_eq!(proxy.tunnels.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_names_the_proxy_and_no_proxy_bypasses_it() {
    let proxy = ConnectProxy::start().await;
    let server = Server::echo().await;
    let mut command = wsrun(&[&server.url]);
    command.env("http_proxy", &proxy.url);
    let run = run_command(command).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(proxy.tunnels.lock().unwrap().len(), 1, "the proxy was not used");

    let mut command = wsrun(&[&server.url]);
    command.env("HTTP_PROXY", &proxy.url);
    let run = run_command(command).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(proxy.tunnels.lock().unwrap().len(), 2, "the upper-case variable was not used");

    let mut command = wsrun(&[&server.url]);
    command.env("http_proxy", &proxy.url).env("no_proxy", "localhost,127.0.0.1");
    let run = run_command(command).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(proxy.tunnels.lock().unwrap().len(), 2, "no_proxy was not honoured");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_refuses_is_a_clear_error() {
    let proxy = ConnectProxy::start().await;
    // The test proxy refuses anything but 127.0.0.1; `localhost` resolves locally and never leaves the machine.
    let run = run_with_input(&["--proxy", &proxy.url, "--allow-any", "ws://localhost:9/"], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("proxy error") && run.stderr.contains("403"), "{run:?}");
}

/// A proxy that cannot be reached: the guest learns that the proxy failed, not where it is or who logs in to it
/// (before, its error named the proxy's host, port and user); `-v` says so on wsrun's own stderr.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_proxy_is_not_described_to_the_guest() {
    let server = Server::echo().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    let proxy = format!("http://proxyuser:secret@127.0.0.1:{port}");
    let run = run_with_input(&["--proxy", &proxy, &server.url], b"").await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    assert!(run.stderr.contains("proxy error: the proxy could not be reached"), "{run:?}");
    assert!(!run.stderr.contains(&port) && !run.stderr.contains("proxyuser"), "the guest saw the proxy: {run:?}");
    let run = run_with_input(&["-v", "--proxy", &proxy, &server.url], b"").await;
    assert!(run.stderr.contains(&format!("127.0.0.1:{port}")), "-v does not say which proxy failed: {run:?}");
}

/// `https_proxy` is the proxy of `wss://` and `http_proxy` of `ws://`, each alone (a proxy that does not exist
/// stands in for the other variable, so taking the wrong one fails the connection).
#[tokio::test(flavor = "multi_thread")]
async fn wss_takes_https_proxy_and_ws_takes_http_proxy() {
    let proxy = ConnectProxy::start().await;
    let nowhere = "http://127.0.0.1:1";
    let pki = TestPki::new();
    let secure = Server::start_tls(pki.acceptor.clone(), servers::echo).await;
    let ca = pki.ca_file();
    let mut command = wsrun(&["--cacert", ca.to_str().unwrap(), &secure.url]);
    command.env("https_proxy", &proxy.url).env("http_proxy", nowhere);
    let run = run_command(command).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(proxy.tunnels.lock().unwrap().len(), 1, "https_proxy was not used for wss://");

    let plain = Server::echo().await;
    let mut command = wsrun(&[&plain.url]);
    command.env("http_proxy", &proxy.url).env("https_proxy", nowhere);
    let run = run_command(command).await;
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(proxy.tunnels.lock().unwrap().len(), 2, "http_proxy was not used for ws://");
}

/// `--cacert` adds to the system's roots, it does not replace them: with the system's roots in `SSL_CERT_FILE` (as
/// rustls-native-certs reads them) and another CA given with `--cacert`, servers of both are trusted.
#[tokio::test(flavor = "multi_thread")]
async fn cacert_adds_to_the_system_roots() {
    let system = TestPki::new();
    let private = TestPki::new();
    let (system_ca, private_ca) = (system.ca_file(), private.ca_file());
    let system_server = Server::start_tls(system.acceptor.clone(), servers::echo).await;
    let private_server = Server::start_tls(private.acceptor.clone(), servers::echo).await;
    let connect = |url: &str, cacert: bool| {
        let mut args = vec![];
        if cacert {
            args.extend(["--cacert", private_ca.to_str().unwrap()]);
        }
        args.push(url);
        let mut command = wsrun(&args);
        command.env("SSL_CERT_FILE", &system_ca);
        run_command(command)
    };
    for (server, cacert) in [(&system_server, true), (&private_server, true), (&system_server, false)] {
        let run = connect(&server.url, cacert).await;
        assert_eq!(run.code(), Some(0), "{} with --cacert {cacert}: {run:?}", server.url);
        assert!(run.stdout.starts_with(&format!("Connected to {}.", server.url)), "{run:?}");
    }
    // The private CA alone is not a system root.
    let run = connect(&private_server.url, false).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
}
