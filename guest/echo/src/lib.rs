//! The bundled `echo` guest: connects to the URL and sends every message back unchanged until the peer closes.

use wsrun_guest::{args, describe, ConnectOptions, Connection, Guest};

struct Echo;

impl Guest for Echo {
    fn run() -> Result<(), ()> {
        let Some(url) = args().get(1).cloned() else {
            eprintln!("wsrun: echo: usage: wsrun echo URL");
            return Err(());
        };
        let conn = Connection::connect(&url, &ConnectOptions::default()).map_err(|e| {
            eprintln!("wsrun: echo: could not connect to {url}: {}", describe(&e));
        })?;
        loop {
            match conn.receive() {
                Ok(Some(message)) => conn.send(&message).map_err(|e| eprintln!("wsrun: echo: send failed: {}", describe(&e)))?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    eprintln!("wsrun: echo: {}", describe(&e));
                    return Err(());
                }
            }
        }
    }
}

wsrun_guest::export!(Echo);
