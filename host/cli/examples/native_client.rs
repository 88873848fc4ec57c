//! A plain native tokio-tungstenite client, the baseline wsrun's benchmarks measure against.
//!
//! ```text
//! native_client URL [--send-mib N | --echo]
//! ```
//! Connects, prints `Connected to URL.`, sends each stdin line as a text message (or, with `--send-mib`, binary
//! messages of N MiB back to back; or, with `--echo`, sends back every message it receives, like wsrun's `echo`
//! guest), prints what it receives, and on SIGINT/SIGTERM sends a 1001 close frame, waits
//! up to a second for the peer's, and exits 130: what wsrun does, without the sandbox.

use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::signal::unix::{signal, SignalKind};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let mut args = std::env::args().skip(1);
    let url = args.next().context("usage: native_client URL [--send-mib N]")?;
    let (send_mib, echo): (Option<usize>, bool) = match (args.next().as_deref(), args.next()) {
        (Some("--send-mib"), Some(n)) => (Some(n.parse()?), false),
        (Some("--echo"), _) => (None, true),
        _ => (None, false),
    };
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;

    let connect = tokio_tungstenite::connect_async(url.as_str());
    let (ws, _) = tokio::select! {
        result = connect => result?,
        _ = interrupt.recv() => return Ok(interrupted()),
        _ = terminate.recv() => return Ok(interrupted()),
    };
    println!("Connected to {url}.");
    if echo {
        let mut ws = ws;
        while let Some(message) = ws.next().await {
            let message = message?;
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                break;
            }
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let (mut sink, mut stream) = ws.split();

    let sending = async {
        match send_mib {
            Some(mib) => {
                let payload = vec![0x5a_u8; mib << 20];
                loop {
                    sink.send(Message::binary(payload.clone())).await?;
                }
            }
            None => {
                let mut lines = BufReader::new(tokio::io::stdin()).lines();
                while let Some(line) = lines.next_line().await? {
                    sink.send(Message::text(line)).await?;
                }
                sink.send(Message::Close(None)).await?;
                std::future::pending::<()>().await;
                Ok::<_, anyhow::Error>(())
            }
        }
    };
    let receiving = async {
        while let Some(message) = stream.next().await {
            if let Message::Text(text) = message? {
                println!("< {text}");
            }
        }
        Ok::<_, anyhow::Error>(())
    };
    tokio::select! {
        result = sending => result?,
        result = receiving => { result?; return Ok(std::process::ExitCode::SUCCESS) }
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    // Interrupted: close cleanly, as wsrun does.
    let mut ws = sink.reunite(stream)?;
    let frame = CloseFrame { code: CloseCode::Away, reason: "".into() };
    let closing = async {
        ws.close(Some(frame)).await?;
        while ws.next().await.is_some() {}
        Ok::<_, anyhow::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
    Ok(interrupted())
}

fn interrupted() -> std::process::ExitCode {
    eprintln!("native_client: interrupted");
    // Returning would wait for tokio's stdin thread, which is blocked in read(2) until stdin ends.
    std::process::exit(130)
}
