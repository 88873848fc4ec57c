//! A property test of the host side of the WIT boundary: a guest-shaped driver makes random sequences of
//! `connection` calls with random arguments (stale and forged handles, bad URLs, forbidden headers, oversized
//! control frames, odd close codes) against a real loopback server. Whatever the guest does, the host must answer
//! with a value or a trap, never panic, and must still close what was opened.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WireMessage;
use wasmtime::component::{Resource, ResourceTable};

use super::{Connection, ConnectionLimits, Transport, WebsocketCtx, WebsocketCtxView};
use crate::bindings::websocket::{ConnectOptions, Header, HostConnection, Keepalive, Message};
use crate::grant::{Grant, OriginPattern};

/// xorshift64*: deterministic, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        (0..self.below(max + 1)).map(|_| self.next() as u8).collect()
    }

    fn text(&mut self, max: u64) -> String {
        (0..self.below(max + 1)).map(|_| char::from(b' ' + self.below(95) as u8)).collect()
    }
}

/// An echo server that sometimes pings, sometimes closes first, sometimes sends a large message.
async fn lively_echo_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((tcp, _)) = listener.accept().await {
            n += 1;
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                let _ = ws.send(WireMessage::Ping(b"hi".to_vec().into())).await;
                if n % 5 == 0 {
                    let _ = ws.send(WireMessage::binary(vec![0u8; 70_000])).await;
                }
                if n % 7 == 0 {
                    let _ = ws.close(None).await;
                }
                while let Some(Ok(message)) = ws.next().await {
                    if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

fn random_options(rng: &mut Rng) -> ConnectOptions {
    let header_names = ["X-A", "Origin", "Sec-WebSocket-Key", "bad header", "Connection", "Cookie", ""];
    ConnectOptions {
        headers: (0..rng.below(3))
            .map(|_| Header { name: header_names[rng.below(7) as usize].into(), value: rng.text(8) })
            .collect(),
        subprotocols: (0..rng.below(3)).map(|_| rng.text(6)).collect(),
        open_timeout_ms: (rng.below(2) == 0).then(|| rng.below(2000) as u32),
        max_message_size: (rng.below(2) == 0).then(|| rng.below(100_000)),
        control_frames: rng.below(2) == 0,
        keepalive: (rng.below(4) == 0)
            .then(|| Keepalive { interval_ms: rng.below(50) as u32, timeout_ms: rng.below(100) as u32 }),
    }
}

fn random_message(rng: &mut Rng) -> Message {
    match rng.below(4) {
        0 => Message::Text(rng.text(200)),
        1 => Message::Binary(rng.bytes(5000)),
        2 => Message::Ping(rng.bytes(200)),
        _ => Message::Pong(rng.bytes(200)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_guest_calls_never_panic_the_host() {
    let echo = lively_echo_server().await;
    let denied = "ws://127.0.0.1:1/".to_owned();
    let urls = [echo.as_str(), echo.as_str(), denied.as_str(), "not a url", "http://127.0.0.1/", "ws://127.0.0.1:9/#x"];
    let mut connected = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut grant = Grant::none();
        grant.allow(OriginPattern::parse(echo.trim_start_matches("ws://").trim_end_matches('/')).unwrap());
        let limits = ConnectionLimits { max_connections: 3, queued_messages: 4, queued_bytes: 10_000, ..Default::default() };
        let mut ctx = WebsocketCtx::new(grant, limits, Transport::default());
        let mut table = ResourceTable::new();
        let mut handles: Vec<u32> = Vec::new();
        for _ in 0..60 {
            let mut view = WebsocketCtxView { ctx: &mut ctx, table: &mut table };
            // A handle the guest holds, one it already dropped, or one it made up.
            let rep = match (handles.is_empty(), rng.below(10)) {
                (false, 0..=7) => handles[rng.below(handles.len() as u64) as usize],
                _ => rng.below(16) as u32,
            };
            let conn = || Resource::<Connection>::new_borrow(rep);
            // Every call may fail or trap; none may panic or hang.
            let step = async {
                match rng.below(11) {
                    0 | 1 => {
                        let url = urls[rng.below(urls.len() as u64) as usize].to_owned();
                        if let Ok(handle) = view.connect(url, random_options(&mut rng)).await {
                            handles.push(handle.rep());
                            connected += 1;
                        }
                    }
                    2 | 3 => drop(view.send(conn(), random_message(&mut rng)).await),
                    4 => drop(tokio::time::timeout(Duration::from_millis(20), view.receive(conn())).await),
                    5 => drop(view.try_receive(conn()).await),
                    6 => {
                        if let Ok(pollable) = view.subscribe(conn()).await {
                            let _ = view.table.delete(pollable);
                        }
                    }
                    7 => drop(view.close(conn(), rng.below(5000) as u16, rng.text(130)).await),
                    8 => drop((view.close_status(conn()).await, view.url(conn()).await, view.protocol(conn()).await)),
                    9 => {
                        let _ = view.drop(Resource::new_own(rep)).await;
                        handles.retain(|&h| h != rep);
                    }
                    _ => tokio::time::sleep(Duration::from_millis(rng.below(5))).await,
                }
            };
            tokio::time::timeout(Duration::from_secs(5), step).await.unwrap_or_else(|_| panic!("seed {seed}: a call hung"));
        }
        drop(table);
        for shared in ctx.take_opened() {
            tokio::time::timeout(Duration::from_secs(3), shared.shut_down(1000, Duration::from_millis(200)))
                .await
                .unwrap_or_else(|_| panic!("seed {seed}: shut_down hung"));
        }
    }
    // The driver must reach the interesting states, not only fail at the first argument check.
    assert!(connected >= 20, "only {connected} connections opened");
}
