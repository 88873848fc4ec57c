//! WebSocket servers for the tests, each on 127.0.0.1 port 0, each recording how the client closed.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
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

    /// Send text and binary messages, check that each comes back unchanged (reported on the channel), then close:
    /// the test of an echo guest. The binary sizes straddle 64 KiB, where the host stops copying payloads out of
    /// its read buffer.
    pub async fn echo_checker() -> (Server, tokio::sync::mpsc::UnboundedReceiver<bool>) {
        Server::echo_checker_over(None).await
    }

    /// [`echo_checker`](Server::echo_checker), over TLS with `acceptor` when there is one.
    pub async fn echo_checker_over(tls: Option<TlsAcceptor>) -> (Server, tokio::sync::mpsc::UnboundedReceiver<bool>) {
        let (done, results) = tokio::sync::mpsc::unbounded_channel();
        let patterned = |size: usize| Message::binary((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let server = Server::listen(
            tls,
            |_| Answer::Upgrade,
            move |mut ws: Ws| {
                let done = done.clone();
                async move {
                    let mut sent =
                        vec![Message::text("héllo"), Message::binary(vec![0u8, 1, 2, 254, 255]), Message::text("")];
                    sent.extend([(64 << 10) - 1, 64 << 10, (1 << 20) + 1].map(patterned));
                    sent.push(Message::text("é".repeat(40 << 10)));
                    let mut echoed = Vec::new();
                    for message in &sent {
                        ws.send(message.clone()).await.ok()?;
                        echoed.push(ws.next().await?.ok()?);
                    }
                    // Then small and large messages at once (the host sends the large ones its own way): the echoes
                    // must come back whole and in order.
                    let burst: Vec<Message> =
                        (0..12).map(|i| patterned(if i % 3 == 1 { (100 << 10) + i } else { 10 + i })).collect();
                    for message in &burst {
                        ws.feed(message.clone()).await.ok()?;
                    }
                    ws.flush().await.ok()?;
                    for _ in &burst {
                        echoed.push(ws.next().await?.ok()?);
                    }
                    sent.extend(burst);
                    let _ = done.send(echoed == sent);
                    ws.close(None).await.ok()?;
                    until_close(ws).await
                }
            },
        )
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

    /// Echo every text and binary message in the manner of python-websockets (`async for m in ws: await
    /// ws.send(m)`): the frames are read as soon as they come, the echoes follow at a handler's pace (a 2 ms pause
    /// every 50 messages, as a real handler's work would add), so a client that sends much and closes right away
    /// closes while echoes are still owed, and those are dropped (see [`close_at_once`]).
    pub async fn echo_close_at_once() -> Server {
        Server::start(|ws: Ws| {
            close_at_once(ws, |mut incoming, outgoing| async move {
                for count in 1.. {
                    let Some((_, message)) = incoming.recv().await else { return };
                    if outgoing.send(message).is_err() {
                        return;
                    }
                    if count % 50 == 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
            })
        })
        .await
    }

    /// Answer each text and binary message with itself, `delay` after it arrived; the close is answered at once and
    /// the answers still owed are dropped (see [`close_at_once`]).
    pub async fn answering_after(delay: Duration) -> Server {
        Server::start(move |ws: Ws| {
            close_at_once(ws, move |mut incoming, outgoing| async move {
                while let Some((arrived, message)) = incoming.recv().await {
                    tokio::time::sleep_until(arrived + delay).await;
                    if outgoing.send(message).is_err() {
                        return;
                    }
                }
            })
        })
        .await
    }

    /// Read every message and never answer one; answer the close frame.
    pub async fn never_answering() -> Server {
        Server::start(until_close).await
    }

    /// Send a text message (`tick 1`, `tick 2`, ...) every `every`, without end; answer the close frame at once.
    pub async fn streaming(every: Duration) -> Server {
        Server::start(move |ws: Ws| {
            close_at_once(ws, move |_incoming, outgoing| async move {
                for tick in 1.. {
                    if outgoing.send(Message::text(format!("tick {tick}"))).is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
            })
        })
        .await
    }

    /// Send `one` and `two`, wait for a message from the client, echo it 20 ms later (a handler's work), then
    /// close with 4001 "bye". The client's close frame, when it comes first, is answered at once and ends it all
    /// (see [`close_at_once`]).
    pub async fn bye_after_echo() -> Server {
        Server::start(|ws: Ws| {
            close_at_once(ws, |mut incoming, outgoing| async move {
                let _ = outgoing.send(Message::text("one"));
                let _ = outgoing.send(Message::text("two"));
                let Some((_, message)) = incoming.recv().await else { return };
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = outgoing.send(message);
                let _ = outgoing
                    .send(Message::Close(Some(CloseFrame { code: CloseCode::from(4001), reason: "bye".into() })));
            })
        })
        .await
    }

    /// The headers of the upgrade requests received so far.
    pub fn requests(&self) -> Vec<tokio_tungstenite::tungstenite::http::HeaderMap> {
        self.requests.lock().unwrap().clone()
    }

    /// The client closes seen so far, waiting up to ten seconds (the tests' bound on a run) for `count` of them: a
    /// shorter list fails the caller's comparison with what came.
    pub async fn closes(&self, count: usize) -> Vec<SeenClose> {
        for _ in 0..1000 {
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

/// A TCP server that accepts connections, reads the upgrade request and never answers: a WebSocket handshake to
/// it waits forever. Each request read is announced on the returned channel (the client is then waiting for the
/// answer).
pub async fn silent() -> (String, tokio::sync::mpsc::UnboundedReceiver<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    let (requested, announcements) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let requested = requested.clone();
            tokio::spawn(async move {
                if crate::raw::read_request(&mut tcp).await.is_some() {
                    let _ = requested.send(());
                }
                // Hold the connection, answering nothing, until the client drops it.
                let mut sink = [0u8; 1024];
                while matches!(tokio::io::AsyncReadExt::read(&mut tcp, &mut sink).await, Ok(1..)) {}
            });
        }
    });
    (url, announcements, task)
}

/// Text and binary messages from the client, each with the time it was read.
pub type Incoming = mpsc::UnboundedReceiver<(Instant, Message)>;

/// Messages for the client (a `Message::Close` closes).
pub type Outgoing = mpsc::UnboundedSender<Message>;

/// Serve a connection the way python-websockets and many servers built like it do: a reader reads every frame as
/// soon as it comes and hands the messages to `logic`; what `logic` sends goes out through a writer of its own. When
/// the reader reads the client's close frame, it answers it at once and stops `logic` and the writer: every message
/// not yet sent is dropped, as RFC 6455 (5.5.1) allows. A client that closes while answers are owed loses them.
pub async fn close_at_once<F, Fut>(ws: Ws, logic: F) -> SeenClose
where
    F: FnOnce(Incoming, Outgoing) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (to_logic, incoming) = mpsc::unbounded_channel();
    let (outgoing, mut to_writer) = mpsc::unbounded_channel::<Message>();
    let logic = AbortOnDrop(tokio::spawn(logic(incoming, outgoing)));
    let writer = AbortOnDrop(tokio::spawn(async move {
        while let Some(message) = to_writer.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
    }));
    loop {
        match stream.next().await {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                let _ = to_logic.send((Instant::now(), message));
            }
            Some(Ok(Message::Close(frame))) => {
                // tungstenite has queued the answer to the close, and refuses every send from now on.
                drop((logic, writer));
                // Reading on flushes the answer and ends when the client drops the TCP connection.
                while let Some(Ok(_)) = stream.next().await {}
                return Some(seen(frame));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
pub async fn finish_close(mut ws: Ws, frame: Option<CloseFrame>) -> SeenClose {
    // Reading on flushes the reply and ends when the client drops the TCP connection.
    while let Some(Ok(_)) = ws.next().await {}
    Some(seen(frame))
}

/// A close frame as recorded: its code and reason, 1005 when it had no code.
fn seen(frame: Option<CloseFrame>) -> (u16, String) {
    frame.map_or((1005, String::new()), |frame| (frame.code.into(), frame.reason.as_str().to_owned()))
}
