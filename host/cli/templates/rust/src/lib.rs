//! {{name}}: a wsrun guest. It connects to its URL, sends its other arguments (or, without any, the lines of its
//! stdin) as text messages, printing the reply to each, then closes the connection.
//!
//! ```text
//! wsrun target/wasm32-wasip2/release/{{crate}}.wasm ws://127.0.0.1:9000/ hello world
//! ```
//!
//! The bindings are generated from `wit/` (the `client` world of wsrun:ws): `wit/websocket.wit` documents every
//! function and error.

wit_bindgen::generate!({ path: "wit", world: "wsrun:ws/client", generate_all });

use exports::wasi::cli::run::Guest;
use wasi::cli::environment::get_arguments;
use wsrun::ws::websocket::{ConnectOptions, Connection, ErrorCode, Message};

struct Starter;

impl Guest for Starter {
    fn run() -> Result<(), ()> {
        // [guest name, URL, guest args...]
        let args = get_arguments();
        let (url, messages) = match args.get(1..) {
            Some([url, messages @ ..]) => (url, messages),
            _ => return fail("usage: wsrun GUEST URL [MESSAGE...]".to_owned()),
        };
        let options = ConnectOptions {
            headers: Vec::new(),
            subprotocols: Vec::new(),
            open_timeout_ms: None,
            max_message_size: None,
            control_frames: false,
            keepalive: None,
        };
        let conn = match Connection::connect(url, &options) {
            Ok(conn) => conn,
            Err(e) => return fail(format!("could not connect to {url}: {}", describe(&e))),
        };
        if let Err(e) = session(&conn, messages) {
            return fail(describe(&e));
        }
        if let Some(frame) = conn.close_status() {
            let reason = if frame.reason.is_empty() { close_code_name(frame.code) } else { &frame.reason };
            println!("Connection closed: {} ({reason}).", frame.code);
        }
        Ok(())
    }
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
        conn.send(&Message::Text(text))?;
        match conn.receive()? {
            Some(reply) => show(&reply),
            None => break,
        }
    }
    // Fails only when the server closed first: nothing left to do then.
    let _ = conn.close(1000, "");
    // What the server still sends before its close frame.
    while let Some(reply) = conn.receive()? {
        show(&reply);
    }
    Ok(())
}

fn show(reply: &Message) {
    match reply {
        Message::Text(text) => println!("< {text}"),
        Message::Binary(bytes) => println!("< (binary) {}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        Message::Ping(_) | Message::Pong(_) => {}
    }
}

/// One `wsrun: ...` line on stderr; `Err` makes wsrun exit with code 1.
fn fail(why: String) -> Result<(), ()> {
    eprintln!("wsrun: {{name}}: {why}");
    Err(())
}

/// One line for an error: its WIT case and its detail, as `refused: 127.0.0.1:9000`.
fn describe(error: &ErrorCode) -> String {
    match error {
        ErrorCode::InvalidUrl(why) => format!("invalid-url: {why}"),
        ErrorCode::InvalidArgument(why) => format!("invalid-argument: {why}"),
        ErrorCode::Denied(why) => format!("denied: {why}"),
        ErrorCode::Dns(why) => format!("dns: {why}"),
        ErrorCode::Refused(why) => format!("refused: {why}"),
        ErrorCode::Proxy(why) => format!("proxy: {why}"),
        ErrorCode::Tls(why) => format!("tls: {why}"),
        ErrorCode::Timeout => "timeout".to_owned(),
        ErrorCode::KeepaliveTimeout => "keepalive-timeout".to_owned(),
        ErrorCode::HttpStatus(response) => format!("http-status: {} {}", response.status, response.reason),
        ErrorCode::TooManyRedirects(last) => format!("too-many-redirects: {last}"),
        ErrorCode::Protocol(why) => format!("protocol: {why}"),
        ErrorCode::MessageTooLarge(size) => format!("message-too-large: {size} bytes"),
        ErrorCode::Closed(frame) => format!("closed: {} {}", frame.code, frame.reason),
        ErrorCode::Limit(why) => format!("limit: {why}"),
        ErrorCode::Io(why) => format!("io: {why}"),
    }
}

/// The name RFC 6455 gives a close code, for a close frame without a reason.
fn close_code_name(code: u16) -> &'static str {
    match code {
        1000 => "OK",
        1001 => "going away",
        1002 => "protocol error",
        1005 => "no status received",
        1006 => "abnormal closure",
        1011 => "internal error",
        _ => "no reason",
    }
}

export!(Starter);
