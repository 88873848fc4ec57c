//! Test guest: connects, says so, then blocks reading stdin (no polling); each line read is sent as a message.
//! Stopping it means dropping a host call that is waiting on stdin.

use wsrun_guest::wasi::cli::stdin;
use wsrun_guest::{connect_to_url_arg, Guest, Message, Stdout};

struct StdinBlock;

impl Guest for StdinBlock {
    fn run() -> Result<(), ()> {
        let conn = connect_to_url_arg()?;
        let _ = Stdout::get().line("connected");
        let input = stdin::get_stdin();
        while let Ok(bytes) = input.blocking_read(4096) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            conn.send(&Message::Text(text)).map_err(|_| ())?;
        }
        Ok(())
    }
}

wsrun_guest::export!(StdinBlock);
