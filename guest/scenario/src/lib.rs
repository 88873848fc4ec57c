//! A scripted session in Rust (the same as `guest/python/scenario.py` and `guest/js/scenario.js`): subscribe to a
//! topic, wait for a matching update, print it, close.
//!
//! ```text
//! wsrun scenario.wasm URL [TOPIC] [TIMEOUT_MS]
//! ```
//! Exit 0 with `price TOPIC VALUE`; exit 3 when no update for TOPIC came in time.

use wsrun_guest::wasi::cli::exit;
use wsrun_guest::wasi::clocks::monotonic_clock;
use wsrun_guest::wasi::io::poll;
use wsrun_guest::{args, connect_to_url_arg, metrics, Guest, Message, Stdout};

struct Scenario;

impl Guest for Scenario {
    fn run() -> Result<(), ()> {
        let args = args();
        let topic = args.get(2).cloned().unwrap_or_else(|| "BTC".into());
        let timeout_ms: u64 = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(2000);
        let conn = connect_to_url_arg()?;
        let subscribe = serde_json::json!({ "subscribe": topic }).to_string();
        conn.send(&Message::Text(subscribe)).map_err(|_| ())?;

        let deadline = monotonic_clock::now() + timeout_ms * 1_000_000;
        let ready = conn.subscribe();
        loop {
            let timer = monotonic_clock::subscribe_instant(deadline);
            if !poll::poll(&[&ready, &timer]).contains(&0) {
                break;
            }
            let Ok(Some(Message::Text(text))) = conn.receive() else { break };
            let update: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if update["topic"] == topic.as_str() {
                if let Some(price) = update.get("price") {
                    let _ = Stdout::get().line(&format!("price {topic} {price}"));
                    metrics::count("updates", 1, &[("topic", &topic)]);
                    metrics::check("update arrived", true, &[]);
                    let _ = conn.close(1000, "done");
                    return Ok(());
                }
            }
        }
        metrics::check("update arrived", false, &[]);
        eprintln!("wsrun: scenario: no update for {topic} within {}s", timeout_ms as f64 / 1000.0);
        let _ = conn.close(4000, "no update");
        drop(ready);
        exit::exit_with_code(3);
        Err(())
    }
}

wsrun_guest::export!(Scenario);
