//! A WebSocket echo server on loopback, for trying wsrun without the internet.
//!
//! ```text
//! cargo run --release --bin echo_server [PORT...]     # prints ws://127.0.0.1:PORT/ for each, once listening
//! ```
//! Every text and binary message is sent back; a client's close is answered; port 0 (the default) picks a free
//! port. Several ports, for more connections than one port takes from one client address (about 28,000: the
//! client's local ports), go to `wsrun --spread`. It serves until Ctrl+C or SIGTERM, then prints how its connections
//! ended: `echo_server: N closed with 1001, N with 1000, N with another code, N without a close frame`.

#[path = "../../cli/src/sessions/fd_limit.rs"]
mod fd_limit;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use std::sync::atomic::{AtomicU64, Ordering};

/// How connections ended, by the client's close code: 1001, 1000, another, none.
static ENDED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ports: Vec<u16> =
        std::env::args().skip(1).map(|p| p.parse()).collect::<Result<_, _>>().context("PORT must be a number")?;
    fd_limit::raise_open_file_limit();
    let mut listening = tokio::task::JoinSet::new();
    for port in if ports.is_empty() { vec![0] } else { ports } {
        // A deep accept queue: a burst of connects must not overflow it (a dropped SYN costs a second). The kernel
        // cuts it to net.core.somaxconn.
        let socket = TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port))).context("cannot listen")?;
        let listener = socket.listen(65535)?;
        println!("ws://{}/", listener.local_addr()?);
        listening.spawn(serve(listener));
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        ended = listening.join_next() => return ended.map_or(Ok(()), |ended| ended?),
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tally();
    Ok(())
}

fn tally() {
    let [going_away, normal, other, none] = ENDED.each_ref().map(|n| n.load(Ordering::Relaxed));
    eprintln!(
        "echo_server: {going_away} closed with 1001, {normal} with 1000, {other} with another code, {none} without a close frame"
    );
}

async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            match echo(tcp).await {
                // A client that just goes away is not worth a line.
                Err(e)
                    if matches!(
                        e.downcast_ref(),
                        Some(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))
                    ) => {}
                Err(e) => eprintln!("echo_server: {e}"),
                Ok(()) => {}
            }
        });
    }
}

async fn echo(tcp: TcpStream) -> anyhow::Result<()> {
    // Replies go out at once: a latency measured against this server is not 40 ms of Nagle and delayed ACKs.
    let _ = tcp.set_nodelay(true);
    // tungstenite's 128 KiB read buffer is resident per connection: 100,000 idle clients would hold 12 GiB here.
    let config = WebSocketConfig::default().read_buffer_size(4 << 10);
    let mut ws = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await?;
    let mut ended = 3;
    let served = async {
        while let Some(message) = ws.next().await {
            match message? {
                Message::Close(frame) => {
                    ended = match frame.map(|f| u16::from(f.code)) {
                        Some(1001) => 0,
                        Some(1000) => 1,
                        _ => 2,
                    }
                }
                message if message.is_text() || message.is_binary() => ws.send(message).await?,
                _ => {}
            }
        }
        anyhow::Ok(())
    }
    .await;
    ENDED[ended].fetch_add(1, Ordering::Relaxed);
    served
}
