//! Many plugin sessions side by side, the way a tool that hosts WebSocket plugins runs them: one runtime, one
//! loaded guest (the bundled `echo`), SESSIONS sessions against loopback servers, every CANCEL_EVERY-th one
//! cancelled mid-way. The cancelled ones talk to a server that never ends their session, end `Interrupted` and close
//! with 1001; the others play a fixed number of rounds and finish on their own.
//!
//! ```text
//! cargo run --release --example many_sessions [-- SESSIONS [CANCEL_EVERY]]    # default: 1000 sessions, 100
//! ```
//! Exits 1 if any session ended otherwise than expected.

#[path = "../src/sessions/fd_limit.rs"]
mod fd_limit;

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use wsrun::Outcome;

/// Messages the server sends each session, waiting for each echo, this far apart: the sessions stay busy for
/// `ROUNDS * ROUND_GAP`, and the cancels land in the middle.
const ROUNDS: usize = 5;
const ROUND_GAP: Duration = Duration::from_millis(60);

#[derive(Default)]
struct ServerTally {
    /// Sessions whose opening handshake completed.
    connected: AtomicUsize,
    /// Sessions that echoed every round and took the server's close.
    completed: AtomicUsize,
    /// Sessions whose client closed first with 1001 (going away): the cancelled ones.
    going_away: AtomicUsize,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let sessions = args.next().transpose()?.unwrap_or(1000);
    let cancel_every = args.next().transpose()?.unwrap_or(100).max(1);
    fd_limit::raise_open_file_limit();

    let tally = Arc::new(ServerTally::default());
    let url = serve(tally.clone(), Some(ROUNDS)).await?;
    let endless_url = serve(tally.clone(), None).await?;
    let runtime = wsrun::Runtime::new()?;
    let program = runtime.load_file(std::path::Path::new(wsrun_test_artifacts::ECHO))?;

    let started = Instant::now();
    let mut running = Vec::with_capacity(sessions);
    let mut cancels = Vec::new();
    for index in 0..sessions {
        let cancelled = index % cancel_every == 0;
        let session = program.session(if cancelled { endless_url.clone() } else { url.clone() });
        if cancelled {
            cancels.push(session.cancel_handle());
        }
        running.push(tokio::spawn(session.run()));
    }
    // Cancel mid-way: once every session is connected and a round or two in (the cancelled ones' server goes on
    // for ever, so a late cancel still lands mid-session).
    while tally.connected.load(Ordering::Relaxed) < sessions && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_connected = started.elapsed();
    tokio::time::sleep(ROUND_GAP * 3 / 2).await;
    for cancel in &cancels {
        cancel.cancel();
    }

    let (mut finished, mut interrupted, mut other) = (0, 0, Vec::new());
    for (index, outcome) in futures_util::future::join_all(running).await.into_iter().enumerate() {
        match outcome? {
            Outcome::Exited(0) if index % cancel_every != 0 => finished += 1,
            Outcome::Interrupted if index % cancel_every == 0 => interrupted += 1,
            unexpected => other.push((index, unexpected)),
        }
    }
    // The host closes a cancelled session's connection after the guest is gone; give the server a moment to log it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "{sessions} sessions ({:.0} ms to connect them all, {:.0} ms in all): {finished} finished, {interrupted} cancelled, {} otherwise",
        all_connected.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64() * 1000.0,
        other.len()
    );
    println!(
        "server: {} sessions completed every round, {} closed early with 1001",
        tally.completed.load(Ordering::Relaxed),
        tally.going_away.load(Ordering::Relaxed)
    );
    for (index, outcome) in other.iter().take(5) {
        eprintln!("session {index}: {outcome:?}");
    }
    let expected_cancelled = cancels.len();
    let ok = other.is_empty()
        && interrupted == expected_cancelled
        && tally.completed.load(Ordering::Relaxed) == sessions - expected_cancelled
        && tally.going_away.load(Ordering::Relaxed) == expected_cancelled;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A loopback server that plays `rounds` rounds of echo with each session, then closes it; with `None`, rounds
/// until the session goes away.
async fn serve(tally: Arc<ServerTally>, rounds: Option<usize>) -> anyhow::Result<String> {
    // A deep accept queue: a burst of a thousand connects must not overflow it (a dropped SYN costs a second).
    let socket = TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(4096)?;
    let url = format!("ws://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tally = tally.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                tally.connected.fetch_add(1, Ordering::Relaxed);
                for round in 0..rounds.unwrap_or(usize::MAX) {
                    tokio::time::sleep(ROUND_GAP).await;
                    if ws.send(Message::text(format!("round {round}"))).await.is_err() {
                        return;
                    }
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => {}
                        Some(Ok(Message::Close(Some(frame)))) if u16::from(frame.code) == 1001 => {
                            tally.going_away.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        _ => return,
                    }
                }
                if ws.close(None).await.is_ok() {
                    while let Some(Ok(_)) = ws.next().await {}
                    tally.completed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    Ok(url)
}
