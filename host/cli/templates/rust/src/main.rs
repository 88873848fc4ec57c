//! {{name}}: a wsrun guest. It connects to its URL, sends its other arguments (or, without any, the lines of its
//! stdin) as text messages, printing the reply to each, then closes the connection. With `--token-url URL` after
//! the WebSocket URL, it first POSTs to that URL and connects with the answer as a bearer token (the HTTP call most
//! real sessions begin with; wsrun must grant its origin: `wsrun --allow http://127.0.0.1:8080 ...`).
//!
//! ```text
//! cargo run --release -- ws://127.0.0.1:9000/ hello world
//! ```
//!
//! A program for `wasm32-wasip2` (`.cargo/config.toml` picks the target, and runs what it builds under `wsrun`):
//! `main` is the guest's `wasi:cli/run`. The bindings of the interfaces wsrun adds to WASI are generated from `wit/`
//! (`wit/websocket.wit` documents every function and error). The other files
//! of `src/` are helpers from wsrun's Rust SDK: `http.rs` (blocking HTTP requests), `describe.rs` (errors and close
//! codes in words), `escape.rs` (a peer's text made safe to print), `defaults.rs` (connect options), `metrics.rs`
//! (measurements for the run's summary and thresholds).

// What wsrun gives beyond WASI, which Rust's std already speaks (arguments, stdio, clocks, `main` as `run`).
wit_bindgen::generate!({
    inline: "
        package local:guest;
        world guest {
            import wsrun:ws/websocket@0.2.0;
            import wsrun:ws/metrics@0.2.0;
            import wasi:http/outgoing-handler@0.2.12;
        }
    ",
    path: "wit",
    world: "local:guest/guest",
    generate_all,
});

// What this guest does not use of them is left in, for the next change.
#[allow(dead_code)]
mod defaults;
#[allow(dead_code)]
mod describe;
#[allow(dead_code)]
mod escape;
#[allow(dead_code)]
mod http;
#[allow(dead_code)]
mod metrics;

use describe::describe;
use escape::escape;
use wsrun::ws::websocket::{CloseFrame, Compression, ConnectOptions, Connection, ErrorCode, Header, Message};

fn main() {
    if run().is_err() {
        std::process::exit(1);
    }
}

fn run() -> Result<(), ()> {
    // [guest name, URL, guest args...]
    let args: Vec<String> = std::env::args().collect();
    let Some((url, mut messages)) = args.get(1..).and_then(<[String]>::split_first) else {
        return fail("usage: wsrun GUEST URL [--token-url HTTP_URL] [MESSAGE...]".to_owned());
    };
    let mut options = ConnectOptions::default();
    if let [flag, token_url, rest @ ..] = messages {
        if flag == "--token-url" {
            let token = match http::post(token_url, "text/plain", b"") {
                Ok(response) if response.status == 200 => response.text().trim().to_owned(),
                Ok(response) => return fail(format!("{token_url} answered HTTP {}", response.status)),
                Err(e) => return fail(format!("{token_url}: {e}")),
            };
            options.headers.push(Header { name: "authorization".into(), value: format!("Bearer {token}") });
            messages = rest;
        }
    }
    let conn = match Connection::connect(url, &options) {
        Ok(conn) => conn,
        Err(e) => return fail(format!("could not connect to {url}: {}", describe(&e))),
    };
    if let Err(e) = session(&conn, messages) {
        return fail(describe(&e));
    }
    if let Some(frame) = conn.close_status() {
        println!("Connection closed: {frame}.");
    }
    Ok(())
}

/// Each message, then its reply (stop early if the server closes); then the closing handshake.
fn session(conn: &Connection, messages: &[String]) -> Result<(), ErrorCode> {
    // The arguments, or else the lines of stdin (each read once the previous reply has come).
    let texts: Box<dyn Iterator<Item = String>> = if messages.is_empty() {
        Box::new(std::io::stdin().lines().map_while(Result::ok))
    } else {
        Box::new(messages.iter().cloned())
    };
    for text in texts {
        let sent = std::time::Instant::now();
        conn.send(&Message::Text(text))?;
        match conn.receive()? {
            Some(reply) => show(&reply),
            None => break,
        }
        // For `wsrun --sessions N --threshold 'reply_time.p95<100ms'`, and the summary of `wsrun -v`.
        metrics::duration("reply_time", sent.elapsed(), &[]);
    }
    // Fails only when the server closed first: nothing left to do then.
    let _ = conn.close(1000, "");
    // What the server still sends before its close frame.
    while let Some(reply) = conn.receive()? {
        show(&reply);
    }
    Ok(())
}

/// A reply, escaped: the server's text must not act on the terminal.
fn show(reply: &Message) {
    match reply {
        Message::Text(text) => println!("< {}", escape(text)),
        Message::Binary(bytes) => println!("< (binary) {}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        Message::Ping(_) | Message::Pong(_) => {}
    }
}

/// One `wsrun: ...` line on stderr; `Err` makes wsrun exit with code 1.
fn fail(why: String) -> Result<(), ()> {
    eprintln!("wsrun: {{name}}: {why}");
    Err(())
}
