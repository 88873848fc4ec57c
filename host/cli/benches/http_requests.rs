//! Outgoing HTTP: sequential GETs from a guest (the Rust `token-then-connect` example, through wsrun's sender:
//! grant, transport, limits) beside a native hyper client doing the same (one connection per request, as wsrun's
//! sender does), against the same loopback server in the same run. Printed, not asserted.
//!
//! ```text
//! cargo bench --bench http_requests [-- REQUESTS]
//! ```

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasmtime_wasi_http::io::TokioIo;
use wsrun_test_artifacts::TOKEN_THEN_CONNECT;

const WSRUN: &str = env!("CARGO_BIN_EXE_wsrun");

#[tokio::main]
async fn main() {
    let requests: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let origin = serve().await;
    println!("sequential GETs of a 32-byte body, one connection each, {requests} per run; best of 3, taken in turn");
    println!("{:>28} | {:>12} | {:>12}", "client", "requests/s", "us/request");
    let (mut guest, mut native) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        guest = guest.min(guest_run(&origin, requests).await);
        native = native.min(native_run(&origin, requests).await);
    }
    for (name, took) in [("wsrun, Rust guest (wasi:http)", guest), ("native hyper client", native)] {
        let per = took.as_secs_f64() / requests as f64;
        println!("{name:>28} | {:>12.0} | {:>12.1}", 1.0 / per, per * 1e6);
    }
    println!("ratio wsrun/native (requests/s): {:.2}x", native.as_secs_f64() / guest.as_secs_f64());
}

/// A server answering every request with 32 bytes and closing: the same for both clients.
async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let mut head = Vec::with_capacity(512);
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let body = "0123456789abcdef0123456789abcdef";
                let response =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = tcp.write_all(response.as_bytes()).await;
            });
        }
    });
    origin
}

/// The guest's own figure: from its first request to its last response, without wsrun's start.
async fn guest_run(origin: &str, requests: usize) -> Duration {
    let url = format!("{origin}/token");
    let count = requests.to_string();
    let output = tokio::process::Command::new(WSRUN)
        .args(["--allow", origin, TOKEN_THEN_CONNECT, "ws://127.0.0.1:9/", "--token-url", &url])
        .args(["--method", "GET", "--no-connect", "--repeat", &count])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let seconds = stdout
        .lines()
        .find_map(|line| line.strip_suffix(" s").and_then(|l| l.rsplit(' ').next()).and_then(|s| s.parse::<f64>().ok()))
        .unwrap_or_else(|| panic!("no figure from the guest: {stdout} {}", String::from_utf8_lossy(&output.stderr)));
    Duration::from_secs_f64(seconds)
}

async fn native_run(origin: &str, requests: usize) -> Duration {
    let address = origin.strip_prefix("http://").unwrap().to_owned();
    let started = Instant::now();
    for _ in 0..requests {
        let tcp = TcpStream::connect(&address).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(tcp)).await.unwrap();
        let driven = tokio::spawn(connection);
        let request = hyper::Request::get("/token").header("host", &address).body(Empty::<Bytes>::new()).unwrap();
        let response = sender.send_request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 32);
        drop(sender);
        let _ = driven.await;
    }
    started.elapsed()
}
