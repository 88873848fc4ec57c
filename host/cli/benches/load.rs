//! What load runs cost and how fast they go, against an echo server in this process (tokio-tungstenite, one
//! thread, Nagle off). Printed, not asserted.
//!
//! ```text
//! cargo bench -p wsrun-cli --bench load [-- PART...]
//! ```
//! PART is `metrics` or `rate` (both by default).
//!
//! 1. `metrics`: `roundtrip --rate max --no-ping` (round trips one after the other), 2,000 sessions of 5 round
//!    trips (what a session costs), then 100 sessions of 1,000 (what a message costs); each with the guest recording
//!    one trend and one check per message, and with `--no-metrics`, in turn, five times: sessions per second, round
//!    trips per second, and wsrun's CPU time per session and per message (medians).
//! 2. `rate`: 50 connections for 10 s, each sending its next message once the reply to the last one came: wsrun's
//!    `roundtrip --rate max --no-ping`, and a native tokio-tungstenite loop doing the same (this program, re-run as
//!    `native-loop URL CONNECTIONS SECONDS`); then, open loop (sending without waiting), wsrun's `roundtrip --rate
//!    20000/s --no-ping` and Artillery's WebSocket engine (`ARTILLERY=path/to/artillery`, from npm; skipped without
//!    it). Each client is a process of its own, its CPU time read when it exits.

// Only its machine figures are used here.
#[allow(dead_code)]
#[path = "shared/machine.rs"]
mod machine;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const WSRUN: &str = env!("CARGO_BIN_EXE_wsrun");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let [mode, url, connections, seconds] = &args[..] {
        if mode == "native-loop" {
            return native_loop(url, connections.parse().unwrap(), seconds.parse().unwrap());
        }
    }
    let parts: Vec<&str> =
        if args.is_empty() { vec!["metrics", "rate"] } else { args.iter().map(String::as_str).collect() };
    let (url, echoed) = echo_server();
    println!(
        "machine: {} cores, {} MiB; server: {url} (in this process, one thread)",
        machine::cores(),
        machine::total_memory_mib()
    );
    for part in parts {
        match part {
            "metrics" => metrics_cost(&url, &echoed),
            "rate" => rates(&url, &echoed),
            other => eprintln!("unknown part {other:?} (metrics or rate)"),
        }
    }
}

/// An echo server on a thread of its own; the count of messages it echoed.
fn echo_server() -> (String, Arc<AtomicU64>) {
    let echoed = Arc::new(AtomicU64::new(0));
    let counted = echoed.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("ws://{}/", listener.local_addr().unwrap())).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let _ = tcp.set_nodelay(true);
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                    while let Some(Ok(message)) = ws.next().await {
                        if message.is_text() || message.is_binary() {
                            counted.fetch_add(1, Ordering::Relaxed);
                            if ws.send(message).await.is_err() {
                                break;
                            }
                        }
                    }
                });
            }
        });
    });
    (rx.recv().unwrap(), echoed)
}

/// CPU time (user + system) of the children that ended so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Run a command to its end: its wall time and CPU time.
fn timed(command: &mut Command) -> (Duration, Duration) {
    let cpu = children_cpu();
    let started = Instant::now();
    let status = command.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run the client");
    assert!(status.success(), "{command:?}: {status}");
    (started.elapsed(), children_cpu() - cpu)
}

fn metrics_cost(url: &str, echoed: &AtomicU64) {
    // Many short sessions (what a session costs), then few long ones (what a message costs).
    for (sessions, each) in [(2000u64, 5u64), (100, 1000)] {
        println!(
            "\nmetrics: {sessions} sessions x {each} round trips (roundtrip --rate max --no-ping), median of 5 runs each, in turn"
        );
        let mut runs: [Vec<(Duration, Duration)>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..5 {
            for (slot, extra) in [(0, None), (1, Some("--no-metrics"))] {
                let before = echoed.load(Ordering::Relaxed);
                let (sessions_arg, count) = (sessions.to_string(), each.to_string());
                let mut args = vec![
                    "--sessions",
                    &sessions_arg,
                    "roundtrip",
                    url,
                    "--count",
                    &count,
                    "--rate",
                    "max",
                    "--no-ping",
                    "--quiet",
                ];
                args.extend(extra);
                runs[slot].push(timed(Command::new(WSRUN).args(&args)));
                assert_eq!(echoed.load(Ordering::Relaxed) - before, sessions * each, "every message echoed");
            }
        }
        let median = |runs: &mut Vec<(Duration, Duration)>| {
            runs.sort();
            let wall = runs[runs.len() / 2].0;
            let mut cpus: Vec<Duration> = runs.iter().map(|r| r.1).collect();
            cpus.sort();
            (wall, cpus[cpus.len() / 2])
        };
        let figures = [median(&mut runs[0]), median(&mut runs[1])];
        for (name, (wall, cpu)) in [("one trend + one check per message", figures[0]), ("--no-metrics", figures[1])] {
            let seconds = wall.as_secs_f64();
            println!(
                "  {name:<34} {:>7.0} sessions/s  {:>8.0} round trips/s  CPU {:>6.1} us/session {:>6.2} us/message",
                sessions as f64 / seconds,
                (sessions * each) as f64 / seconds,
                cpu.as_secs_f64() * 1e6 / sessions as f64,
                cpu.as_secs_f64() * 1e6 / (sessions * each) as f64,
            );
        }
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "  with metrics / without: wall {:.3}x, CPU {:.3}x",
            ratio(figures[0].0, figures[1].0),
            ratio(figures[0].1, figures[1].1)
        );
    }
}

fn rates(url: &str, echoed: &AtomicU64) {
    const CONNECTIONS: u64 = 50;
    const SECONDS: u64 = 10;
    println!("\nrate: {CONNECTIONS} connections for {SECONDS} s");
    let (connections, seconds) = (CONNECTIONS.to_string(), SECONDS.to_string());
    let duration = format!("{SECONDS}s");
    let run = |name: &str, command: &mut Command| {
        let before = echoed.load(Ordering::Relaxed);
        let (wall, cpu) = timed(command);
        let messages = echoed.load(Ordering::Relaxed) - before;
        println!(
            "  {name:<44} {:>8.0} messages/s  CPU {:>5.2} s ({:>5.2} us/message)",
            messages as f64 / SECONDS as f64,
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / messages.max(1) as f64
        );
        let _ = wall;
        messages as f64 / SECONDS as f64
    };
    // The same sessions, each sending at `rate`.
    let roundtrip = |rate: &str| {
        let mut command = Command::new(WSRUN);
        command.args(["--sessions", &connections, "--duration", &duration, "roundtrip", url, "--rate", rate]);
        command.args(["--no-ping", "--quiet"]);
        command
    };
    let wsrun_closed = run("closed loop: wsrun roundtrip --rate max", &mut roundtrip("max"));
    let native = run(
        "closed loop: native tokio-tungstenite",
        Command::new(std::env::current_exe().unwrap()).args(["native-loop", url, &connections, &seconds]),
    );
    println!("  wsrun / native: {:.2}x", wsrun_closed / native);
    let wsrun_open = run("open loop: wsrun roundtrip --rate 20000/s", &mut roundtrip("20000/s"));
    match std::env::var("ARTILLERY") {
        Ok(artillery) => {
            let script = std::env::temp_dir().join(format!("wsrun-artillery-{}.yml", std::process::id()));
            // 50 virtual users at once, each sending as fast as Artillery's loop goes for the time.
            std::fs::write(
                &script,
                format!(
                    "config:\n  target: \"{url}\"\n  phases:\n    - duration: 1\n      arrivalCount: {CONNECTIONS}\nscenarios:\n  - engine: ws\n    flow:\n      - loop:\n          - send: \"roundtrip artillery\"\n        whileTrue: \"keepGoing\"\n    name: flood\n"
                )
                .replace("whileTrue: \"keepGoing\"", &format!("count: {}", 1_000_000)),
            )
            .unwrap();
            let mut command = Command::new("timeout");
            command.args([&format!("{SECONDS}"), &artillery, "run", "--quiet", script.to_str().unwrap()]);
            let before = echoed.load(Ordering::Relaxed);
            let cpu = children_cpu();
            let started = Instant::now();
            let _ = command.stdout(Stdio::null()).stderr(Stdio::null()).status();
            let (wall, cpu) = (started.elapsed(), children_cpu() - cpu);
            let messages = echoed.load(Ordering::Relaxed) - before;
            println!(
                "  {:<44} {:>8.0} messages/s  CPU {:>5.2} s ({:>5.2} us/message; its start included, {:.1} s)",
                "open loop: Artillery (ws engine)",
                messages as f64 / wall.as_secs_f64(),
                cpu.as_secs_f64(),
                cpu.as_secs_f64() * 1e6 / messages.max(1) as f64,
                wall.as_secs_f64()
            );
            println!("  wsrun / Artillery: {:.2}x", wsrun_open / (messages as f64 / wall.as_secs_f64()));
        }
        Err(_) => println!("  Artillery: skipped (set ARTILLERY to its command; `npm install artillery@2`)"),
    }
}

/// The native baseline: CONNECTIONS tokio-tungstenite connections, each sending its next message once the reply to
/// the last one came, for SECONDS.
fn native_loop(url: &str, connections: u64, seconds: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for index in 0..connections {
            let url = url.to_owned();
            tasks.push(tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
                let mut n = 0u64;
                while tokio::time::Instant::now() < until {
                    n += 1;
                    ws.send(Message::text(format!("roundtrip {index} {n}"))).await.unwrap();
                    let _ = ws.next().await;
                }
                let _ = ws.close(None).await;
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
}
