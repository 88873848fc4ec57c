//! WebSocket servers for the tests, each on 127.0.0.1 port 0, each recording how the client closed.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A server-side byte stream: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Ws = WebSocketStream<Box<dyn Io>>;

/// The client's close as a server saw it: `Some((code, reason))`, or `None` when the client sent no close frame.
pub type SeenClose = Option<(u16, String)>;

/// What a routed server does with a request path.
pub enum Answer {
    /// Accept the WebSocket upgrade.
    Upgrade,
    /// Answer with this HTTP status and, for a redirect, a `Location`.
    Status(u16, Option<String>),
}

/// A server running in the test's runtime until the test ends.
pub struct Server {
    pub url: String,
    closes: Arc<Mutex<Vec<SeenClose>>>,
    /// The headers of every upgrade request, in order.
    requests: Arc<Mutex<Vec<tokio_tungstenite::tungstenite::http::HeaderMap>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serve every connection with `handler` after the opening handshake; it returns how the client closed.
    pub async fn start<F, Fut>(handler: F) -> Server
    where
        F: Fn(Ws) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = SeenClose> + Send + 'static,
    {
        Server::routed(|_| Answer::Upgrade, handler).await
    }

    /// Like [`start`](Server::start), over TLS with `acceptor` (a `wss://` URL).
    pub async fn start_tls<F, Fut>(acceptor: TlsAcceptor, handler: F) -> Server
    where
        F: Fn(Ws) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = SeenClose> + Send + 'static,
    {
        Server::listen(Some(acceptor), |_| Answer::Upgrade, handler).await
    }

    /// Like [`start`](Server::start), but `route` decides from the request path whether to upgrade or to answer
    /// with a plain HTTP status.
    pub async fn routed<R, F, Fut>(route: R, handler: F) -> Server
    where
        R: Fn(&str) -> Answer + Send + Sync + 'static,
        F: Fn(Ws) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = SeenClose> + Send + 'static,
    {
        Server::listen(None, route, handler).await
    }

    async fn listen<R, F, Fut>(tls: Option<TlsAcceptor>, route: R, handler: F) -> Server
    where
        R: Fn(&str) -> Answer + Send + Sync + 'static,
        F: Fn(Ws) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = SeenClose> + Send + 'static,
    {
        let route = Arc::new(route);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        let url = format!("{scheme}://{}/", listener.local_addr().expect("addr"));
        let closes = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen_requests = requests.clone();
        let handler = Arc::new(handler);
        let recorded = closes.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let handler = handler.clone();
                let recorded = recorded.clone();
                let route = route.clone();
                let seen_requests = seen_requests.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let stream: Box<dyn Io> = match tls {
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => Box::new(stream),
                            Err(_) => return,
                        },
                        None => Box::new(tcp),
                    };
                    let answer = |request: &Request, mut response: Response| match route(request.uri().path()) {
                        Answer::Upgrade => {
                            seen_requests.lock().unwrap().push(request.headers().clone());
                            // Choose the first subprotocol offered, if any.
                            let offered = request.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
                            if let Some(first) = offered.and_then(|list| list.split(',').next()) {
                                response.headers_mut().insert("sec-websocket-protocol", first.trim().parse().unwrap());
                            }
                            Ok(response)
                        }
                        Answer::Status(status, location) => {
                            let mut refusal = ErrorResponse::new(Some(format!("status {status}")));
                            *refusal.status_mut() = StatusCode::from_u16(status).expect("status");
                            if let Some(location) = location {
                                refusal.headers_mut().insert("location", location.parse().expect("location"));
                            }
                            Err(refusal)
                        }
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, answer).await else { return };
                    let close = handler(ws).await;
                    recorded.lock().unwrap().push(close);
                });
            }
        });
        Server { url, closes, requests, _task: task }
    }

    /// Echo every text and binary message until the client closes.
    pub async fn echo() -> Server {
        Server::start(echo).await
    }

    /// Hold every connection open without reading from it (or answering a close), until the test ends.
    pub async fn deaf() -> Server {
        Server::start(|ws: Ws| async move {
            std::future::pending::<()>().await;
            drop(ws);
            None
        })
        .await
    }


    /// Send one text and one binary message, check that each comes back unchanged (reported on the channel),
    /// then close: the test of an echo guest.
    pub async fn echo_checker() -> (Server, tokio::sync::mpsc::UnboundedReceiver<bool>) {
        let (done, results) = tokio::sync::mpsc::unbounded_channel();
        let server = Server::start(move |mut ws: Ws| {
            let done = done.clone();
            async move {
                let sent = vec![Message::text("héllo"), Message::binary(vec![0u8, 1, 2, 254, 255]), Message::text("")];
                let mut echoed = Vec::new();
                for message in &sent {
                    ws.send(message.clone()).await.ok()?;
                    echoed.push(ws.next().await?.ok()?);
                }
                let _ = done.send(echoed == sent);
                ws.close(None).await.ok()?;
                until_close(ws).await
            }
        })
        .await;
        (server, results)
    }

    /// Send `messages` at once, then wait for the client's close.
    pub async fn sending(messages: Vec<Message>) -> Server {
        Server::start(move |mut ws: Ws| {
            let messages = messages.clone();
            async move {
                for message in messages {
                    if ws.send(message).await.is_err() {
                        return None;
                    }
                }
                until_close(ws).await
            }
        })
        .await
    }

    /// Close every connection at once with `code` and `reason`.
    pub async fn closing(code: u16, reason: &'static str) -> Server {
        Server::start(move |mut ws: Ws| async move {
            let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
            let _ = ws.close(Some(frame)).await;
            until_close(ws).await
        })
        .await
    }

    /// The headers of the upgrade requests received so far.
    pub fn requests(&self) -> Vec<tokio_tungstenite::tungstenite::http::HeaderMap> {
        self.requests.lock().unwrap().clone()
    }

    /// The client closes seen so far, waiting up to two seconds for `count` of them.
    pub async fn closes(&self, count: usize) -> Vec<SeenClose> {
        for _ in 0..200 {
            if self.closes.lock().unwrap().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.closes.lock().unwrap().clone()
    }
}

/// Echo every text and binary message until the client closes.
pub async fn echo(mut ws: Ws) -> SeenClose {
    loop {
        match ws.next().await {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                if ws.send(message).await.is_err() {
                    return None;
                }
            }
            Some(Ok(Message::Close(frame))) => return finish_close(ws, frame).await,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// A TCP server that accepts connections and never answers: a WebSocket handshake to it waits forever. Each
/// accepted connection is announced on the returned channel.
pub async fn silent() -> (String, tokio::sync::mpsc::UnboundedReceiver<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    let (accepted, announcements) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
            let _ = accepted.send(());
        }
    });
    (url, announcements, task)
}

/// Read (and drop) messages until the client's close frame, then let the handshake finish.
pub async fn until_close(mut ws: Ws) -> SeenClose {
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => return finish_close(ws, frame).await,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// After the client's close frame: let tungstenite send the reply, and report the frame.
async fn finish_close(mut ws: Ws, frame: Option<CloseFrame>) -> SeenClose {
    // Reading on flushes the reply and ends when the client drops the TCP connection.
    while let Some(Ok(_)) = ws.next().await {}
    Some(frame.map_or((1005, String::new()), |frame| (frame.code.into(), frame.reason.as_str().to_owned())))
}
