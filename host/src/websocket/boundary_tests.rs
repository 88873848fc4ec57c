//! The host side of the WIT boundary. A property test: a guest-shaped driver makes random sequences of
//! `connection` calls with random arguments (stale and forged handles, bad URLs, forbidden headers, oversized
//! control frames, odd close codes) against a real loopback server. Whatever the guest does, the host must answer
//! with a value or a trap, never panic, and must still close what was opened. And the mapping of each kind of bad
//! argument to its `error-code` (or trap), case by case.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WireMessage;
use wasmtime::component::{Resource, ResourceTable};

use super::{Connection, Transport, WebsocketCtx, WebsocketCtxView};
use crate::bindings::websocket::{Compression, ConnectOptions, ErrorCode, Header, HostConnection, Keepalive, Message};
use crate::grant::{Grant, OriginPattern};
use crate::limits::ConnectionLimits;

/// xorshift64*: deterministic, so a failing seed can be replayed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        (0..self.below(max + 1)).map(|_| self.next() as u8).collect()
    }

    fn text(&mut self, max: u64) -> String {
        (0..self.below(max + 1)).map(|_| char::from(b' ' + self.below(95) as u8)).collect()
    }
}

/// What the lively server saw of its connections.
#[derive(Default)]
struct Tally {
    /// Connections whose opening handshake completed on the server's side.
    opened: AtomicUsize,
    /// Connections on which the client sent a close frame.
    closed_by_client: AtomicUsize,
    /// Connections that are over (the client's socket is gone).
    ended: AtomicUsize,
}

/// An echo server that sometimes pings, sometimes closes first, sometimes sends a large message.
async fn lively_echo_server() -> (String, Arc<Tally>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let tally = Arc::new(Tally::default());
    let seen = tally.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((tcp, _)) = listener.accept().await {
            n += 1;
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                seen.opened.fetch_add(1, Ordering::SeqCst);
                let _ = ws.send(WireMessage::Ping(b"hi".to_vec().into())).await;
                if n.is_multiple_of(5) {
                    let _ = ws.send(WireMessage::binary(vec![0u8; 70_000])).await;
                }
                if n.is_multiple_of(7) {
                    let _ = ws.close(None).await;
                }
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_close() {
                        seen.closed_by_client.fetch_add(1, Ordering::SeqCst);
                    }
                    if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                        break;
                    }
                }
                seen.ended.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    (url, tally)
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
        compression: if rng.below(2) == 0 { Compression::Offer } else { Compression::Off },
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
    let (echo, tally) = lively_echo_server().await;
    let denied = "ws://127.0.0.1:1/".to_owned();
    let urls = [echo.as_str(), echo.as_str(), denied.as_str(), "not a url", "http://127.0.0.1/", "ws://127.0.0.1:9/#x"];
    let mut connected = 0;
    // Connections that ended with a closing handshake, rather than failed by the host (1006).
    let mut handshaken = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut grant = Grant::none();
        grant.allow(OriginPattern::parse(echo.trim_start_matches("ws://").trim_end_matches('/')).unwrap());
        let limits =
            ConnectionLimits { max_connections: 3, queued_messages: 4, queued_bytes: 10_000, ..Default::default() };
        let mut ctx = WebsocketCtx::new(grant, limits, Transport::default());
        let mut table = ResourceTable::new();
        let mut handles: Vec<u32> = Vec::new();
        // Every connection the guest got, to check how each ended (the session forgets the ended ones).
        let mut every = Vec::new();
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
                            every.push(view.table.get(&handle).expect("a new handle").live.clone());
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
            tokio::time::timeout(Duration::from_secs(5), step)
                .await
                .unwrap_or_else(|_| panic!("seed {seed}: a call hung"));
        }
        drop(table);
        for shared in ctx.take_opened() {
            tokio::time::timeout(Duration::from_secs(3), shared.shut_down(1000, Duration::from_secs(2)))
                .await
                .unwrap_or_else(|_| panic!("seed {seed}: shut_down hung"));
        }
        for shared in every {
            let status = shared.close_status();
            assert!(status.is_some(), "seed {seed}: a connection is still open after the session's end");
            handshaken += usize::from(status.is_some_and(|frame| frame.code != 1006));
        }
    }
    // The driver must reach the interesting states, not only fail at the first argument check.
    assert!(connected >= 20, "only {connected} connections opened");
    // Everything opened was closed: no connection is left open.
    let all_ended = async {
        while tally.ended.load(Ordering::SeqCst) < tally.opened.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let left_open = tokio::time::timeout(Duration::from_secs(5), all_ended).await.is_err();
    let opened = tally.opened.load(Ordering::SeqCst);
    assert!(!left_open, "{} of {opened} connections are still open", opened - tally.ended.load(Ordering::SeqCst));
    // Each closing handshake had the host's close frame. (The host may fail a connection, 1006, without one: when
    // the reader gives up on a peer while a send holds the writer.)
    let closed = tally.closed_by_client.load(Ordering::SeqCst);
    assert!(closed >= handshaken, "{handshaken} closing handshakes, but only {closed} close frames from the host");
    // (Most do: the rest are the ones the host failed on purpose, for a message too large or a keepalive.)
    assert!(handshaken * 2 >= connected, "only {handshaken} of {connected} connections closed with a handshake");
}

/// A session's context allowing `url`, with `max_connections`.
fn context_for(url: &str, max_connections: usize) -> WebsocketCtx {
    let mut grant = Grant::none();
    grant.allow(OriginPattern::parse(url.trim_start_matches("ws://").trim_end_matches('/')).unwrap());
    let limits = ConnectionLimits { max_connections, ..Default::default() };
    WebsocketCtx::new(grant, limits, Transport::default())
}

/// The guest-visible error in `result`; a trap or success fails the test.
fn error_code<T>(result: Result<T, super::WsError>, what: &str) -> ErrorCode {
    match result {
        Ok(_) => panic!("{what}: accepted"),
        Err(error) => error.downcast().unwrap_or_else(|trap| panic!("{what}: a trap, not an error code: {trap:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_argument_has_its_error_code() {
    let (echo, _) = lively_echo_server().await;
    let mut ctx = context_for(&echo, 2);
    let mut table = ResourceTable::new();
    let mut view = WebsocketCtxView { ctx: &mut ctx, table: &mut table };

    let plain = ConnectOptions::default;
    for forbidden in ["Sec-WebSocket-Key", "host", "Content-Length", "Proxy-Authorization"] {
        let options = ConnectOptions { headers: vec![Header { name: forbidden.into(), value: "x".into() }], ..plain() };
        let refused = error_code(view.connect(echo.clone(), options).await, forbidden);
        assert!(matches!(refused, ErrorCode::InvalidArgument(_)), "{forbidden}: {refused:?}");
    }
    let refused = error_code(view.connect("http://127.0.0.1:9/".into(), plain()).await, "an http URL");
    assert!(matches!(refused, ErrorCode::InvalidUrl(_)), "{refused:?}");
    let refused = error_code(view.connect("ws://127.0.0.1:1/".into(), plain()).await, "another origin");
    assert!(matches!(refused, ErrorCode::Denied(_)), "{refused:?}");

    let first = view.connect(echo.clone(), plain()).await.unwrap_or_else(|_| panic!("connect"));
    let conn = || Resource::<Connection>::new_borrow(first.rep());
    let refused = error_code(view.send(conn(), Message::Ping(vec![0; 126])).await, "a 126-byte ping");
    assert!(matches!(refused, ErrorCode::InvalidArgument(_)), "{refused:?}");
    let refused = error_code(view.send(conn(), Message::Pong(vec![0; 126])).await, "a 126-byte pong");
    assert!(matches!(refused, ErrorCode::InvalidArgument(_)), "{refused:?}");
    assert!(view.send(conn(), Message::Ping(vec![0; 125])).await.is_ok(), "a 125-byte ping is allowed");
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let refused = error_code(view.close(conn(), code, String::new()).await, &format!("close code {code}"));
        assert!(matches!(refused, ErrorCode::InvalidArgument(_)), "{code}: {refused:?}");
    }
    let refused = error_code(view.close(conn(), 1000, "r".repeat(124)).await, "a 124-byte reason");
    assert!(matches!(refused, ErrorCode::InvalidArgument(_)), "{refused:?}");
    assert!(view.close_status(conn()).await.unwrap().is_none(), "a refused close closes nothing");

    let second = view.connect(echo.clone(), plain()).await.unwrap_or_else(|_| panic!("connect"));
    let refused = error_code(view.connect(echo.clone(), plain()).await, "a third connection");
    assert!(matches!(refused, ErrorCode::Limit(_)), "{refused:?}");

    // A reason of 123 bytes is allowed; after the close, sending is `closed`.
    assert!(view.close(conn(), 4000, "r".repeat(123)).await.is_ok(), "a 123-byte reason is allowed");
    let refused = error_code(view.send(conn(), Message::Text("late".into())).await, "a send after close");
    assert!(matches!(refused, ErrorCode::Closed(_)), "{refused:?}");

    // Handles the guest does not hold are traps, not error codes: a guest that forges them is broken.
    let forged = || Resource::<Connection>::new_borrow(first.rep() + second.rep() + 100);
    let trapped =
        |result: Result<(), super::WsError>| result.map_err(|e| e.downcast()).err().is_some_and(|e| e.is_err());
    assert!(trapped(view.send(forged(), Message::Text("x".into())).await), "send on a forged handle");
    assert!(trapped(view.close(forged(), 1000, String::new()).await), "close on a forged handle");
    assert!(view.receive(forged()).await.map_err(|e| e.downcast()).err().is_some_and(|e| e.is_err()), "receive");
    assert!(view.close_status(forged()).await.is_err(), "close-status on a forged handle");
    assert!(view.try_receive(forged()).await.is_err(), "try-receive on a forged handle");
    assert!(view.subscribe(forged()).await.is_err(), "subscribe on a forged handle");
    assert!(view.drop(Resource::new_own(first.rep() + second.rep() + 100)).await.is_err(), "drop of a forged handle");

    drop(table);
    for shared in ctx.take_opened() {
        shared.shut_down(1000, Duration::from_secs(2)).await;
    }
}
