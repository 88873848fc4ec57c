//! The library as a plugin host (`host/examples/plugin-host`, built against the library alone): a tool's own
//! interface called from plugins in Rust and Python, a plugin cancelled while it waits in the tool's async function,
//! the session events against what the server saw, a slow observer, and a plugin needing an interface the tool does
//! not give.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::process::Command;
use wsrun_test_artifacts::{PLUGIN_DEMO, PY_PLUGIN};

use crate::load_runs::counting_echo;
use crate::util::{run_command, run_command_within, Run};

fn plugin_host(args: &[&str]) -> Command {
    let tool: PathBuf = std::path::Path::new(env!("CARGO_BIN_EXE_wsrun")).with_file_name("plugin-host");
    assert!(tool.exists(), "{} is missing: cargo build --release -p wsrun-plugin-host-example", tool.display());
    let mut command = Command::new(tool);
    command.args(args).kill_on_drop(true);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// A line of the tool's output that starts with `prefix`.
fn line<'a>(run: &'a Run, prefix: &str) -> &'a str {
    run.stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line {prefix:?} in {run:?}"))
}

/// The milliseconds of an `outcome NAME: ... after N ms; M events missed` line, and M.
fn took_and_missed(outcome: &str) -> (u64, u64) {
    let after = outcome.split(" after ").nth(1).unwrap();
    let ms = after.split(' ').next().unwrap().parse().unwrap();
    let missed = after.split("; ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    (ms, missed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_waiting_in_the_tools_async_function_is_cancelled_at_once() {
    let (server, _, _) = counting_echo().await;
    let run = run_command(plugin_host(&["--arg", "wait", "--cancel-after", "300", &server.url, PLUGIN_DEMO])).await;
    assert_eq!(run.code(), Some(1), "{run:?}");
    let (took, _) = took_and_missed(line(&run, "outcome plugin-demo: Interrupted after "));
    // Cancelled 300 ms in: stopped within the usual bound, its connection closed with 1001 by the host.
    assert!((300..1_500).contains(&took), "{took} ms: {run:?}");
    line(&run, "note plugin-demo: waiting for never");
    assert!(!run.stdout.contains("woken"), "{run:?}");
    // The tool's state is whole: the cancelled wait left its count.
    line(&run, "waiting 0");
    line(&run, "event plugin-demo: Closed { connection: 1, code: 1001, reason: \"\", closed_by: Us }");
    assert_eq!(server.closes(1).await, vec![Some((1001, String::new()))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_observer_neither_slows_the_session_nor_holds_its_events() {
    let (server, messages, _) = counting_echo().await;
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        run_command(plugin_host(&["--arg", "chatty", "--slow-observer", "20", &server.url, PLUGIN_DEMO])),
    )
    .await
    .expect("the tool within 60 s");
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(messages.load(Ordering::Relaxed), 1000);
    let (took, missed) = took_and_missed(line(&run, "outcome plugin-demo: Exited(0) after "));
    // 2,000 message events at 20 ms each would take 40 s: the session did not wait for the observer, whose queue
    // held 64 events; the rest were counted as missed, and the end still came.
    assert!(took < 10_000, "the session took {took} ms: {run:?}");
    assert!(missed >= 1000, "{missed} missed: {run:?}");
    line(&run, "event plugin-demo: Ended { outcome: Exited(0) }");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_needs_an_interface_the_tool_does_not_give_does_not_load() {
    let (server, _, _) = counting_echo().await;
    let run = run_command(plugin_host(&["--without-kv", &server.url, PLUGIN_DEMO])).await;
    assert_eq!(run.code(), Some(2), "{run:?}");
    assert!(run.stderr.contains("does not fit") && run.stderr.contains("acme:bot/kv@0.1.0"), "{run:?}");
    assert!(server.closes(0).await.is_empty());
}

/// With a Python plugin: run with the other scripted guests' tests, last and alone (see scripts/test.sh).
mod scripting {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn plugins_in_rust_and_python_use_the_tools_own_interface() {
        let (server, messages, _) = counting_echo().await;
        // The Python plugin's first start compiles it (seconds, more on a busy machine).
        let run =
            run_command_within(plugin_host(&[&server.url, PLUGIN_DEMO, PY_PLUGIN]), Duration::from_secs(180)).await;
        assert_eq!(run.code(), Some(0), "{run:?}");
        // The store is shared: the Python plugin waited for the Rust plugin's value, then stored its own.
        line(&run, "kv rust = hello from Rust");
        line(&run, "kv python = python saw 'hello from Rust' and got 'hello from Python' back");
        line(&run, &format!("note plugin-demo: connected to {}", server.url));
        line(&run, &format!("note py-plugin: connected to {}", server.url));
        line(&run, "waiting 0");
        // The events of each session, against what the server saw: one connection each, a message each way, a close.
        assert_eq!(messages.load(Ordering::Relaxed), 2);
        for (name, bytes) in [("plugin-demo", 5), ("py-plugin", 17)] {
            let opened = format!(
                "event {name}: Opened {{ connection: 1, url: \"{}\", protocol: None, compressed: false }}",
                server.url
            );
            for expected in [
                opened,
                format!("event {name}: Message {{ connection: 1, direction: Sent, bytes: {bytes} }}"),
                format!("event {name}: Message {{ connection: 1, direction: Received, bytes: {bytes} }}"),
                format!("event {name}: Closed {{ connection: 1, code: 1000, reason: \"done\", closed_by: Us }}"),
                format!("event {name}: Ended {{ outcome: Exited(0) }}"),
            ] {
                assert!(run.stdout.lines().any(|l| l == expected), "no {expected:?} in {run:?}");
            }
        }
        assert_eq!(server.closes(2).await, vec![Some((1000, "done".to_owned())); 2]);
    }
}
