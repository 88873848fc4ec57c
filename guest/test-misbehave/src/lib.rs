//! Test guest: misbehaves in the way its second argument names, so the tests can check that the host contains
//! it. Modes: unreachable, out-of-bounds, stack-overflow, panic, memory-bomb, connections, idle, stdout-flood,
//! connected-stdout-flood (the same once connected), env, files [PATH] (reach for what was not granted and say
//! what happened), exit-code [N] (exits with N, default 42),
//! the attacks on the host's limits: hold-closed, hold-unread, churn N, long-host, headers, handles, and the
//! probes that print what the host answered, by its WIT name: connect TARGET ['NAME: VALUE'] (connect to TARGET
//! rather than the session's URL, perhaps with a header), send-after-close, receive (the size of each message).

use std::hint::black_box;

use wsrun_guest::wasi::cli::exit;
use wsrun_guest::wasi::clocks::monotonic_clock;
use wsrun_guest::{args, connect_to_url_arg, describe, ConnectOptions, Connection, ErrorCode, Guest, Message, Stdout};

struct Misbehave;

impl Guest for Misbehave {
    fn run() -> Result<(), ()> {
        let args = args();
        match args.get(2).map(String::as_str) {
            Some("unreachable") => core::arch::wasm32::unreachable(),
            Some("out-of-bounds") => {
                // Far past the end of any linear memory this guest could have.
                let value = unsafe { core::ptr::read_volatile(black_box(0xffff_fff0_usize) as *const u64) };
                black_box(value);
                Ok(())
            }
            Some("stack-overflow") => {
                black_box(recurse(black_box(1)));
                Ok(())
            }
            Some("panic") => panic!("the guest gave up: {}", black_box("boom")),
            Some("memory-bomb") => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 8 << 20]));
                }
            }
            Some("connections") => {
                let url = &args[1];
                let mut open = Vec::new();
                loop {
                    match Connection::connect(url, &ConnectOptions::default()) {
                        Ok(conn) => open.push(conn),
                        Err(e) => {
                            eprintln!("wsrun: connection {} refused: {}", open.len() + 1, describe(&e));
                            return Err(());
                        }
                    }
                }
            }
            Some("idle") => {
                let _conn = connect_to_url_arg()?;
                let _ = Stdout::get().line("connected");
                // Never reads: the server's messages pile up in the host, which must stop reading at its limits.
                monotonic_clock::subscribe_duration(3_600_000_000_000).block();
                Ok(())
            }
            Some("connected-stdout-flood") => {
                let _conn = connect_to_url_arg()?;
                let out = Stdout::get();
                let chunk = vec![b'x'; 1 << 20];
                while out.write_all(&chunk).is_ok() {}
                Ok(())
            }
            Some("stdout-flood") => {
                let out = Stdout::get();
                let chunk = vec![b'x'; 1 << 20];
                // Stops quietly when stdout is gone, as `head` expects of a producer.
                while out.write_all(&chunk).is_ok() {}
                Ok(())
            }
            Some("env") => {
                let vars = wsrun_guest::wasi::cli::environment::get_environment();
                let _ = Stdout::get().line(&format!("env: {vars:?}"));
                Ok(())
            }
            Some("files") => {
                let path = args.get(3).map_or("/etc/hostname", String::as_str);
                let _ = match std::fs::read_to_string(path) {
                    Ok(text) => Stdout::get().line(&format!("files: read {} bytes", text.len())),
                    Err(e) => Stdout::get().line(&format!("files: denied: {e}")),
                };
                Ok(())
            }
            // Connect, close, read to the end, keep the handle: ended connections must not escape the limit.
            Some("hold-closed") => {
                let url = &args[1];
                let mut held = Vec::new();
                loop {
                    let conn = match Connection::connect(url, &ConnectOptions::default()) {
                        Ok(conn) => conn,
                        Err(e) => {
                            let _ = Stdout::get().line(&format!("held {}: {}", held.len(), describe(&e)));
                            break;
                        }
                    };
                    let _ = conn.close(1000, "");
                    while let Ok(Some(_)) = conn.receive() {}
                    held.push(conn);
                    if held.len() == 100_000 {
                        let _ = Stdout::get().line("held 100000 without a limit");
                        break;
                    }
                }
                wait_for_end_of_stdin();
                Ok(())
            }
            // Connect without ever reading and keep every handle: what the host queues must stay bounded.
            Some("hold-unread") => {
                let url = &args[1];
                let mut held = Vec::new();
                while let Ok(conn) = Connection::connect(url, &ConnectOptions::default()) {
                    held.push(conn);
                }
                let _ = Stdout::get().line(&format!("holding {}", held.len()));
                wait_for_end_of_stdin();
                Ok(())
            }
            // Connect, close, read to the end and drop, N times: nothing may pile up in the host.
            Some("churn") => {
                let url = &args[1];
                let times: u32 = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(1000);
                for done in 0..times {
                    let conn = Connection::connect(url, &ConnectOptions::default()).map_err(|e| {
                        eprintln!("wsrun: connection {} failed: {}", done + 1, describe(&e));
                    })?;
                    let _ = conn.close(1000, "");
                    while let Ok(Some(_)) = conn.receive() {}
                }
                let _ = Stdout::get().line(&format!("churned {times}"));
                wait_for_end_of_stdin();
                Ok(())
            }
            // A host name of 100,000 labels that a wildcard grant almost matches, for the matcher to chew on.
            Some("long-host") => {
                let url = &args[1];
                let port = url.rsplit_once(':').map_or("", |(_, port)| port.trim_end_matches('/'));
                let host = format!("{}example.org", "a.".repeat(100_000));
                let target = format!("ws://{host}:{port}/");
                let result = Connection::connect(&target, &ConnectOptions::default()).map(|_| ());
                let _ = Stdout::get()
                    .line(&format!("long-host: {}", result.map_or_else(|e| describe(&e), |()| "connected".into())));
                Ok(())
            }
            // Each header that frames the request or speaks to a proxy: each must be refused.
            Some("headers") => {
                let url = &args[1];
                for name in [
                    "Content-Length",
                    "Transfer-Encoding",
                    "Sec-WebSocket-Accept",
                    "Proxy-Authorization",
                    "TE",
                    "Trailer",
                    "Expect",
                    "Keep-Alive",
                    "Host",
                    "Upgrade",
                    "Connection",
                    "Sec-WebSocket-Key",
                    "X-Allowed",
                ] {
                    let options = ConnectOptions {
                        headers: vec![wsrun_guest::Header { name: name.into(), value: "0".into() }],
                        ..ConnectOptions::default()
                    };
                    let result = Connection::connect(url, &options).map(drop);
                    let _ = Stdout::get()
                        .line(&format!("{name}: {}", result.map_or_else(|e| describe(&e), |()| "accepted".into())));
                }
                Ok(())
            }
            // Pollables without end: the host's handle table must stop it, not grow without bound.
            Some("handles") => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(monotonic_clock::subscribe_duration(1));
                    if hoard.len() % 10_000 == 0 {
                        let _ = Stdout::get().line(&format!("{} handles", hoard.len()));
                    }
                }
            }
            Some("exit-code") => {
                let code = match args.get(3) {
                    Some(code) => code.parse().map_err(|_| eprintln!("wsrun: test-misbehave: exit codes are 0-255"))?,
                    None => 42,
                };
                exit::exit_with_code(code);
                Ok(())
            }
            Some("connect") => {
                let target = args.get(3).map_or("", String::as_str);
                let headers = args
                    .get(4)
                    .and_then(|header| header.split_once(':'))
                    .map(|(name, value)| wsrun_guest::Header { name: name.trim().into(), value: value.trim().into() });
                let options = ConnectOptions { headers: headers.into_iter().collect(), ..ConnectOptions::default() };
                let line = match Connection::connect(target, &options) {
                    Ok(conn) => format!("connect: ok {}", conn.url()),
                    Err(e) => format!("connect: {}: {}", error_name(&e), describe(&e)),
                };
                let _ = Stdout::get().line(&line);
                Ok(())
            }
            Some("send-after-close") => {
                let conn = connect_to_url_arg()?;
                let closed = conn.close(1000, "done").map_or_else(|e| error_name(&e).to_owned(), |()| "ok".into());
                let sent = match conn.send(&Message::Text("too late".into())) {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => format!("{}: {}", error_name(&e), describe(&e)),
                };
                let _ = Stdout::get().line(&format!("close: {closed}; send: {sent}"));
                Ok(())
            }
            // Print the kind and size of each message received, then how the connection ended.
            Some("receive") => {
                let conn = connect_to_url_arg()?;
                let out = Stdout::get();
                loop {
                    let line = match conn.receive() {
                        Ok(Some(Message::Text(text))) => format!("text {}", text.len()),
                        Ok(Some(Message::Binary(bytes))) => format!("binary {}", bytes.len()),
                        Ok(Some(_)) => continue,
                        Ok(None) => {
                            let code = conn.close_status().map_or(0, |frame| frame.code);
                            let _ = out.line(&format!("closed {code}"));
                            return Ok(());
                        }
                        Err(e) => format!("error {}: {}", error_name(&e), describe(&e)),
                    };
                    let _ = out.line(&line);
                }
            }
            other => {
                eprintln!("wsrun: test-misbehave: unknown mode {other:?}");
                Err(())
            }
        }
    }
}

/// The WIT name of an error code, so the tests see which case reached the guest.
fn error_name(error: &ErrorCode) -> &'static str {
    match error {
        ErrorCode::InvalidUrl(_) => "invalid-url",
        ErrorCode::InvalidArgument(_) => "invalid-argument",
        ErrorCode::Denied(_) => "denied",
        ErrorCode::Dns(_) => "dns",
        ErrorCode::Refused(_) => "refused",
        ErrorCode::Proxy(_) => "proxy",
        ErrorCode::Tls(_) => "tls",
        ErrorCode::Timeout => "timeout",
        ErrorCode::KeepaliveTimeout => "keepalive-timeout",
        ErrorCode::HttpStatus(_) => "http-status",
        ErrorCode::TooManyRedirects(_) => "too-many-redirects",
        ErrorCode::Protocol(_) => "protocol",
        ErrorCode::MessageTooLarge(_) => "message-too-large",
        ErrorCode::Closed(_) => "closed",
        ErrorCode::Limit(_) => "limit",
        ErrorCode::Io(_) => "io",
    }
}

/// Keep the session (and everything it holds) alive until stdin ends, so the test can look at the host process.
fn wait_for_end_of_stdin() {
    let input = wsrun_guest::wasi::cli::stdin::get_stdin();
    while input.blocking_read(4096).is_ok() {}
}

#[allow(unconditional_recursion)] // Overflowing the stack is the point.
fn recurse(depth: u64) -> u64 {
    let mut frame = [depth; 64];
    black_box(&mut frame);
    recurse(black_box(depth + 1)) + frame[3]
}

wsrun_guest::export!(Misbehave);
