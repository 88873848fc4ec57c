//! Hand-made WebSocket servers on raw TCP, for what a proper server library will not do: never answer a close
//! frame, break the protocol, leave without a close frame, answer the upgrade with a status line of its own.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::util::{within, BOUND};

/// A listener on 127.0.0.1 port 0 and its `ws://` URL.
pub async fn listen() -> (String, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    (url, listener)
}

/// Read an HTTP request head, up to its blank line.
pub async fn read_request(tcp: &mut TcpStream) -> Option<String> {
    let mut request = Vec::new();
    while !request.ends_with(b"\r\n\r\n") {
        request.push(tcp.read_u8().await.ok()?);
    }
    String::from_utf8(request).ok()
}

/// Read an upgrade request and accept it with `101 Switching Protocols`.
pub async fn upgrade(tcp: &mut TcpStream) -> Option<()> {
    let request = read_request(tcp).await?;
    let key = request.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
    })?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    tcp.write_all(response.as_bytes()).await.ok()
}

/// Read one client frame (client frames are masked): its opcode and unmasked payload.
pub async fn read_frame(tcp: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => u64::from(tcp.read_u16().await.ok()?),
        127 => tcp.read_u64().await.ok()?,
        n => u64::from(n),
    };
    let mut mask = [0u8; 4];
    tcp.read_exact(&mut mask).await.ok()?;
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    tcp.read_exact(&mut payload).await.ok()?;
    payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= mask[i % 4]);
    Some((head[0] & 0x0f, payload))
}

/// Read client frames until a close frame; its code, 1005 when it has none. `None` when the connection ends first.
pub async fn read_close_code(tcp: &mut TcpStream) -> Option<u16> {
    loop {
        let (opcode, payload) = read_frame(tcp).await?;
        if opcode == 0x8 {
            return Some(if payload.len() >= 2 { u16::from_be_bytes([payload[0], payload[1]]) } else { 1005 });
        }
    }
}

/// One connection: complete the opening handshake, run `misbehave` on the raw socket, then report the code of
/// the client's close frame if one comes within a second (`None`: no close frame, or `misbehave` kept the socket).
pub async fn one_connection<F, Fut>(misbehave: F) -> (String, tokio::task::JoinHandle<Option<u16>>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<TcpStream>> + Send,
{
    let (url, listener) = listen().await;
    let task = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.ok()?;
        upgrade(&mut tcp).await?;
        let mut tcp = misbehave(tcp).await?;
        tokio::time::timeout(Duration::from_secs(1), read_close_code(&mut tcp)).await.ok()?
    });
    (url, task)
}

/// The result of a [`one_connection`] server, waited for at most [`BOUND`].
pub async fn outcome(server: tokio::task::JoinHandle<Option<u16>>) -> Option<u16> {
    within(BOUND, "the raw server's end", server).await.expect("the raw server panicked")
}

/// A server that reads everything and never answers a close frame (nor anything else): each connection's close
/// code is announced on the channel, and the socket stays open until the client drops it.
pub async fn never_answering_the_close() -> (String, mpsc::UnboundedReceiver<u16>) {
    let (url, listener) = listen().await;
    let (closes, announced) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let closes = closes.clone();
            tokio::spawn(async move {
                upgrade(&mut tcp).await?;
                let code = read_close_code(&mut tcp).await?;
                let _ = closes.send(code);
                // Read on, answering nothing, until the client drops the connection.
                let mut sink = [0u8; 4096];
                while tcp.read(&mut sink).await.ok()? > 0 {}
                Some(())
            });
        }
    });
    (url, announced)
}

/// A server that answers every upgrade request with `status_line` (for example `404 Topic Gone`) and no body.
pub async fn refusing(status_line: &'static str) -> String {
    let (url, listener) = listen().await;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_request(&mut tcp).await?;
                let response = format!("HTTP/1.1 {status_line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                tcp.write_all(response.as_bytes()).await.ok()
            });
        }
    });
    url
}
