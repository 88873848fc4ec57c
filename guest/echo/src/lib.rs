//! The bundled `echo` guest: connects to the URL and sends every message back unchanged until the peer closes. It
//! fails (exit 1) when the connection ends otherwise than by a normal close (1000, 1001 or no code): a server that
//! vanishes or closes with an error is a failure to whoever runs many of these against it.

use wsrun_guest::{args, describe, ConnectOptions, Connection, Guest};

struct Echo;

impl Guest for Echo {
    fn run() -> Result<(), ()> {
        let (url, extra) = match &args()[..] {
            [_, url, extra @ ..] => (url.clone(), extra.to_vec()),
            _ => (String::new(), Vec::new()),
        };
        if url.is_empty() || !extra.is_empty() {
            // It takes nothing but the URL: an argument it ignored would be an option the user thinks is in force.
            match extra.first() {
                Some(first) => eprintln!("wsrun: echo: unexpected argument {first:?} (usage: wsrun echo URL)"),
                None => eprintln!("wsrun: echo: usage: wsrun echo URL"),
            }
            wsrun_guest::wasi::cli::exit::exit_with_code(2);
            return Err(());
        }
        let conn = Connection::connect(&url, &ConnectOptions::default()).map_err(|e| {
            eprintln!("wsrun: echo: could not connect to {url}: {}", describe(&e));
        })?;
        loop {
            match conn.receive() {
                Ok(Some(message)) => {
                    conn.send(&message).map_err(|e| eprintln!("wsrun: echo: send failed: {}", describe(&e)))?
                }
                Ok(None) => return ended(&conn),
                Err(e) => {
                    eprintln!("wsrun: echo: {}", describe(&e));
                    return Err(());
                }
            }
        }
    }
}

/// How the connection ended: fine after a normal close, a failure after a lost connection or an error code.
fn ended(conn: &Connection) -> Result<(), ()> {
    match conn.close_status() {
        Some(close) if matches!(close.code, 1000 | 1001 | 1005) => Ok(()),
        Some(close) => {
            eprintln!("wsrun: echo: the connection ended: {close}");
            Err(())
        }
        None => Ok(()),
    }
}

wsrun_guest::export!(Echo);
