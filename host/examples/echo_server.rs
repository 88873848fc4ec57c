//! A WebSocket echo server on loopback, for trying wsrun without the internet.
//!
//! ```text
//! cargo run --release --example echo_server [PORT]     # prints ws://127.0.0.1:PORT/ once listening
//! ```
//! Every text and binary message is sent back; a client's close is answered; port 0 (the default) picks a free
//! port. It serves until killed.

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args().nth(1).map(|p| p.parse()).transpose().context("PORT must be a number")?.unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", port)).await.context("cannot listen")?;
    println!("ws://{}/", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = echo(tcp).await {
                eprintln!("echo_server: {e}");
            }
        });
    }
}

async fn echo(tcp: TcpStream) -> anyhow::Result<()> {
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}
