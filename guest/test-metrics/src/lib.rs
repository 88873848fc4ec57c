//! Test guest: records metrics of every kind from its session index (`WSRUN_SESSION_INDEX`), so that a run's
//! totals are known in advance; with `--fail-some`, a quarter of the sessions fail one way and a quarter another.

use std::time::Duration;

use wsrun_guest::{args, metrics, Guest};

struct TestMetrics;

impl Guest for TestMetrics {
    fn run() -> Result<(), ()> {
        let index: u64 = std::env::var("WSRUN_SESSION_INDEX").ok().and_then(|i| i.parse().ok()).unwrap_or(0);
        let parity = if index % 2 == 0 { "even" } else { "odd" };
        metrics::count("jobs", 1, &[("parity", parity)]);
        metrics::value("size", index * 10, &[]);
        metrics::duration("work", Duration::from_millis(index + 1), &[("parity", parity)]);
        metrics::rate("small", index < 10, &[]);
        metrics::check("index below 30", index < 30, &[]);
        // Not kept: a name a threshold could not name, and a tag given twice.
        metrics::count("bad.name", 1, &[]);
        metrics::count("jobs", 1, &[("t", "1"), ("t", "2")]);
        if args().iter().any(|a| a == "--fail-some") {
            match index % 4 {
                1 => {
                    eprintln!("starting");
                    eprintln!("wsrun: test-metrics: refused by plan \x1b[2J");
                    return Err(());
                }
                2 => panic!("planned trap"),
                _ => {}
            }
        }
        Ok(())
    }
}

wsrun_guest::export!(TestMetrics);
