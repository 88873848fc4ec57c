//! A plugin of the example tool `host/examples/plugin-host` in Rust: a wsrun guest (through the SDK) that also uses
//! the tool's own interfaces (`acme:bot`, `host/examples/plugin-host/wit/bot.wit`).
//!
//! ```text
//! plugin-host URL plugin-demo.wasm [--arg MODE]...
//! ```
//! MODE: `greet` (the default: store a value, say so, echo one message, read what the Python plugin stored if it
//! did yet),
//! `wait` (wait in `kv.wait` for a key nobody sets, until cancelled), `chatty` (1,000 messages echoed, for a slow
//! observer).

use wsrun_guest::{args, connect_to_url_arg, describe, Guest, Message};

// Only the tool's interfaces: wsrun's come from the SDK.
wit_bindgen::generate!({
    inline: "
        package local:plugin-demo;
        world tool-imports {
            import acme:bot/kv@0.1.0;
            import acme:bot/notify@0.1.0;
        }
    ",
    path: "../../host/examples/plugin-host/wit",
    world: "local:plugin-demo/tool-imports",
    generate_all,
});

use acme::bot::{kv, notify};

struct Plugin;

impl Guest for Plugin {
    fn run() -> Result<(), ()> {
        let mode = args().get(2).cloned().unwrap_or_else(|| "greet".to_owned());
        let conn = connect_to_url_arg()?;
        let echo = |text: String| -> Result<(), ()> {
            conn.send(&Message::Text(text.clone())).map_err(|e| eprintln!("wsrun: plugin-demo: {}", describe(&e)))?;
            match conn.receive() {
                Ok(Some(Message::Text(reply))) if reply == text => Ok(()),
                other => {
                    eprintln!("wsrun: plugin-demo: no echo of {text:?}: {other:?}");
                    Err(())
                }
            }
        };
        match mode.as_str() {
            "wait" => {
                notify::notify("waiting for never");
                let value = kv::wait("never");
                notify::notify(&format!("woken with {value}"));
            }
            "chatty" => {
                for n in 0..1000 {
                    echo(format!("chat {n}"))?;
                }
                notify::notify("chatted 1000 messages");
            }
            _ => {
                kv::set("rust", "hello from Rust");
                notify::notify(&format!("connected to {}", conn.url()));
                echo("hello".to_owned())?;
                notify::notify(&format!("the store has python = {:?}", kv::get("python")));
            }
        }
        let _ = conn.close(1000, "done");
        while let Ok(Some(_)) = conn.receive() {}
        Ok(())
    }
}

wsrun_guest::export!(Plugin);
