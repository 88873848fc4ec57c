//! WebSocket servers for the tests, each on 127.0.0.1 port 0, each recording how the client closed.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// The client's close as a server saw it: `Some((code, reason))`, or `None` when the client sent no close frame.
pub type SeenClose = Option<(u16, String)>;

/// A server running in the test's runtime until the test ends.
pub struct Server {
    pub url: String,
    closes: Arc<Mutex<Vec<SeenClose>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serve every connection with `handler` after the opening handshake; it returns how the client closed.
    pub async fn start<F, Fut>(handler: F) -> Server
    where
        F: Fn(Ws) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = SeenClose> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}/", listener.local_addr().expect("addr"));
        let closes = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let recorded = closes.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let handler = handler.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                    let close = handler(ws).await;
                    recorded.lock().unwrap().push(close);
                });
            }
        });
        Server { url, closes, _task: task }
    }

    /// Echo every text and binary message until the client closes.
    pub async fn echo() -> Server {
        Server::start(|mut ws: Ws| async move {
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
        })
        .await
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
