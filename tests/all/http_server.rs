//! A hand-made HTTP/1.1 server on loopback for the guests' outgoing requests: it records every request and answers
//! as each test needs, including the answers no proper server gives (a bad status line, a lying Content-Length, a
//! head without end, a body without end, silence).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Header lines, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// How the server answers a request.
pub enum Reply {
    /// These bytes, then the connection closes.
    Raw(Vec<u8>),
    /// A 200 with `text` as its body.
    Text(String),
    /// Nothing, ever; the connection stays open until the client leaves (reported on `gone`).
    Silent,
    /// A 200 head without a length, then `chunk` every `every`, without end.
    Endless { chunk: Vec<u8>, every: Duration },
}

pub struct HttpServer {
    /// `http://127.0.0.1:PORT` (or `https://`), without a trailing slash.
    pub origin: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// One message each time a client leaves a connection the server kept open ([`Reply::Silent`]).
    pub gone: mpsc::UnboundedReceiver<()>,
    _task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> HttpServer {
        HttpServer::listen(None, answer).await
    }

    pub async fn start_tls(
        acceptor: TlsAcceptor,
        answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> HttpServer {
        HttpServer::listen(Some(acceptor), answer).await
    }

    async fn listen(tls: Option<TlsAcceptor>, answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let origin = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (left, gone) = mpsc::unbounded_channel();
        let answer = Arc::new(answer);
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (tls, answer, recorded, left) = (tls.clone(), answer.clone(), recorded.clone(), left.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream, &*answer, &recorded, &left).await;
                            }
                        }
                        None => serve(tcp, &*answer, &recorded, &left).await,
                    }
                });
            }
        });
        HttpServer { origin, seen, gone, _task: task }
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    answer: &(dyn Fn(&Seen) -> Reply + Send + Sync),
    recorded: &Mutex<Vec<Seen>>,
    left: &mpsc::UnboundedSender<()>,
) {
    let Some(request) = read(&mut stream).await else { return };
    recorded.lock().unwrap().push(request.clone());
    match answer(&request) {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Text(text) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", text.len());
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(text.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        Reply::Silent => {
            let mut byte = [0u8; 1];
            while matches!(stream.read(&mut byte).await, Ok(n) if n > 0) {}
            let _ = left.send(());
        }
        Reply::Endless { chunk, every } => {
            if stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").await.is_err() {
                return;
            }
            while stream.write_all(&chunk).await.is_ok() {
                if !every.is_zero() {
                    tokio::time::sleep(every).await;
                }
            }
        }
    }
}

/// Read a request: its head, then a body by Content-Length or chunked.
async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Seen> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.ok()?);
    }
    let head = String::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split_whitespace();
    let (method, path) = (request_line.next()?.to_owned(), request_line.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut seen = Seen { method, path, headers, body: Vec::new() };
    if let Some(length) = seen.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        seen.body = vec![0; length];
        stream.read_exact(&mut seen.body).await.ok()?;
    } else if seen.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size_line = Vec::new();
            while !size_line.ends_with(b"\r\n") {
                size_line.push(stream.read_u8().await.ok()?);
            }
            let size = usize::from_str_radix(std::str::from_utf8(&size_line).ok()?.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            seen.body.extend_from_slice(&chunk[..size]);
        }
    }
    Some(seen)
}
