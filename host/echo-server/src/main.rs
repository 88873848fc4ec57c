//! A WebSocket echo server on loopback, for trying wsrun without the internet.
//!
//! ```text
//! cargo run --release --bin echo_server [PORT]     # prints ws://127.0.0.1:PORT/ once listening
//! ```
//! Every text and binary message is sent back; a client's close is answered; port 0 (the default) picks a free
//! port. It serves until killed.

#[path = "../../cli/src/sessions/fd_limit.rs"]
mod fd_limit;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 =
        std::env::args().nth(1).map(|p| p.parse()).transpose().context("PORT must be a number")?.unwrap_or(0);
    fd_limit::raise_open_file_limit();
    // A deep accept queue: a burst of connects must not overflow it (a dropped SYN costs a second).
    let socket = TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port))).context("cannot listen")?;
    let listener = socket.listen(4096)?;
    println!("ws://{}/", listener.local_addr()?);
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
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}
