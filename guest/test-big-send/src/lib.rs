//! Test guest: connects, says so, then sends binary messages of the size given as its second argument (in MiB,
//! default 16) until told to stop. Against a peer that does not read, it waits inside `send`.

use wsrun_guest::{args, connect_to_url_arg, describe, Guest, Message, Stdout};

struct BigSend;

impl Guest for BigSend {
    fn run() -> Result<(), ()> {
        let mib: usize = args().get(2).and_then(|n| n.parse().ok()).unwrap_or(16);
        let conn = connect_to_url_arg()?;
        let _ = Stdout::get().line("connected");
        let message = Message::Binary(vec![0x5a; mib << 20]);
        loop {
            if let Err(e) = conn.send(&message) {
                eprintln!("wsrun: send failed: {}", describe(&e));
                return Err(());
            }
        }
    }
}

wsrun_guest::export!(BigSend);
