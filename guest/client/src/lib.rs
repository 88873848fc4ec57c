//! The bundled `client` guest: an interactive WebSocket client in the manner of `python -m websockets`.
//!
//! Each stdin line is sent as a text message; each message received is printed as `< text` or
//! `< (binary) <hex>`. On stdin's end it starts the closing handshake and keeps printing what arrives until the
//! peer's close frame. It waits on stdin and the connection at once with `wasi:io/poll`, never busily.

mod lines;
mod print;

use wsrun_guest::wasi::cli::stdin;
use wsrun_guest::wasi::io::poll;
use wsrun_guest::wasi::io::streams::StreamError;
use wsrun_guest::{args, describe, CloseFrame, ConnectOptions, Connection, ErrorCode, Guest, Message, Stdout};

use lines::LineSplitter;

/// How much of stdin to take in one read.
const STDIN_CHUNK: u64 = 64 * 1024;

struct Client;

impl Guest for Client {
    fn run() -> Result<(), ()> {
        let Some(url) = args().get(1).cloned() else {
            eprintln!("wsrun: client: usage: wsrun [client] URL");
            return Err(());
        };
        let out = Stdout::get();
        let conn = Connection::connect(&url, &ConnectOptions::default()).map_err(|e| {
            eprintln!("wsrun: could not connect to {url}: {}", describe(&e));
        })?;
        if out.line(&format!("Connected to {}.", conn.url())).is_err() {
            return Ok(());
        }
        session(&conn, &out)
    }
}

/// Relay stdin to the connection and the connection to stdout until the connection ends.
fn session(conn: &Connection, out: &Stdout) -> Result<(), ()> {
    let input = stdin::get_stdin();
    let input_ready = input.subscribe();
    let conn_ready = conn.subscribe();
    let mut lines = LineSplitter::default();
    let mut input_open = true;

    loop {
        let ready = if input_open { poll::poll(&[&conn_ready, &input_ready]) } else { poll::poll(&[&conn_ready]) };
        for index in ready {
            if index == 0 {
                if let Some(ended) = drain(conn, out) {
                    return ended;
                }
                continue;
            }
            match input.read(STDIN_CHUNK) {
                Ok(bytes) => {
                    for line in lines.push(&bytes) {
                        send_line(conn, line)?;
                        // Print what came back meanwhile, so a peer that answers every line never waits on us.
                        if let Some(ended) = drain(conn, out) {
                            return ended;
                        }
                    }
                }
                Err(StreamError::Closed) | Err(StreamError::LastOperationFailed(_)) => {
                    if let Some(line) = lines.finish() {
                        send_line(conn, line)?;
                    }
                    input_open = false;
                    match conn.close(1000, "") {
                        // The peer closed first; its close frame is on its way to `drain`.
                        Ok(()) | Err(ErrorCode::Closed(_)) => {}
                        Err(e) => {
                            eprintln!("wsrun: could not close the connection: {}", describe(&e));
                            return Err(());
                        }
                    }
                }
            }
        }
    }
}

fn send_line(conn: &Connection, line: String) -> Result<(), ()> {
    conn.send(&Message::Text(line)).map_err(|e| eprintln!("wsrun: send failed: {}", describe(&e)))
}

/// Print every message queued on the connection. `Some(result)` when the connection has ended.
fn drain(conn: &Connection, out: &Stdout) -> Option<Result<(), ()>> {
    while let Some(next) = conn.try_receive() {
        match next {
            Ok(Some(message)) => {
                if out.line(&print::received(&message)).is_err() {
                    // Stdout is gone (a closed pipe): nobody is reading, stop quietly.
                    return Some(Ok(()));
                }
            }
            Ok(None) => {
                let frame = conn.close_status().unwrap_or(CloseFrame { code: 1006, reason: String::new() });
                let _ = out.line(&format!("Connection closed: {frame}."));
                // A close handshake that completed, whatever its code, is the session ending as agreed; a peer that
                // vanished (1006) is a connection failure.
                return Some(if frame.code == 1006 { Err(()) } else { Ok(()) });
            }
            Err(e) => eprintln!("wsrun: {}", describe(&e)),
        }
    }
    None
}

wsrun_guest::export!(Client);
