//! The speed and cost figures of wsrun, each beside a native baseline measured in the same run. Printed, not
//! asserted.
//!
//! ```text
//! cargo build --release --examples --bins && cargo bench --bench embedding [-- PART...]
//! ```
//! PART is any of `throughput`, `startup`, `memory`, `cancel` (all by default). `WSRUN_BENCH_SESSIONS` overrides
//! the session counts of `memory` (default `100,1000,10000`); `WSRUN_BENCH_SIZES` the message sizes of
//! `throughput` (default `16,1024,65536,1048576`). `throughput` also measures websocat (mirror mode) when
//! `websocat`, or the program `WSRUN_BENCH_WEBSOCAT` names, runs.

#[path = "../src/sessions/fd_limit.rs"]
mod fd_limit;
#[path = "shared/machine.rs"]
mod machine;

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use machine::{cores, rss_kib, total_memory_mib};
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message;
use wsrun::pipe::MemoryOutputPipe;
use wsrun::{Outcome, Runtime};
use wsrun_test_artifacts::TEST_MISBEHAVE;

const WSRUN: &str = env!("CARGO_BIN_EXE_wsrun");

#[tokio::main]
async fn main() {
    fd_limit::raise_open_file_limit();
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    println!("machine: {} cores, {} MiB memory\n", cores(), total_memory_mib());
    if wanted("throughput") {
        throughput().await;
    }
    if wanted("startup") {
        startup().await;
    }
    if wanted("memory") {
        memory().await;
    }
    if wanted("cancel") {
        cancel_among_busy().await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Echo throughput: the echo guest vs a native tokio-tungstenite echo client, same server, same messages.

async fn throughput() {
    println!(
        "1. echo throughput (the server sends N messages, pipelined, and times until every echo is back; best of 3)"
    );
    println!("(CPU: microseconds of CPU time per message, client / server, in the best run)");
    // websocat in mirror mode, when it is installed: a third client the issue measured (not built here).
    let websocat = websocat();
    print!(
        "{:>8} | {:>8} | {:>24} | {:>24} | {:>6} | {:>15} | {:>15}",
        "size", "messages", "wsrun echo: msg/s, MB/s", "native: msg/s, MB/s", "ratio", "wsrun CPU", "native CPU"
    );
    match &websocat {
        Some(_) => println!(" | {:>24} | {:>8}", "websocat: msg/s, MB/s", "wsrun/ws"),
        None => println!(),
    }
    // WSRUN_BENCH_SIZES=16,65536 measures only those sizes (for profiling one of them).
    let sizes: Vec<usize> = match std::env::var("WSRUN_BENCH_SIZES") {
        Ok(list) => list.split(',').filter_map(|size| size.trim().parse().ok()).collect(),
        Err(_) => vec![16, 1 << 10, 64 << 10, 1 << 20],
    };
    let native = example("native_client");
    for size in sizes {
        let count = ((256usize << 20) / size).clamp(500, 200_000);
        // Best of three, taken in turn, so all see the same machine (the server shares its two cores).
        let (mut ours, mut theirs, mut mirror) = (EchoRun::NONE, EchoRun::NONE, EchoRun::NONE);
        for _ in 0..3 {
            ours =
                ours.best(echo_run(&[WSRUN, "--no-cache", "--max-message-size", "2M", "echo", URL], size, count).await);
            theirs = theirs.best(echo_run(&[&native, URL, "--echo"], size, count).await);
            if let Some(websocat) = &websocat {
                // --binary keeps messages binary; a buffer above the largest message keeps each one whole.
                let args = [websocat.as_str(), "--binary", "--buffer-size", "2097152", URL, "mirror:"];
                mirror = mirror.best(echo_run(&args, size, count).await);
            }
        }
        let rate = |secs: f64| (count as f64 / secs, (count * size) as f64 / secs / 1e6);
        let (our_msgs, our_mb) = rate(ours.secs);
        let (their_msgs, their_mb) = rate(theirs.secs);
        let cpu = |run: &EchoRun| {
            format!("{:.2} / {:.2}", run.client_cpu * 1e6 / count as f64, run.server_cpu * 1e6 / count as f64)
        };
        print!(
            "{:>8} | {:>8} | {:>12.0} {:>10.1} | {:>12.0} {:>10.1} | {:>5.2}x | {:>15} | {:>15}",
            human_size(size),
            count,
            our_msgs,
            our_mb,
            their_msgs,
            their_mb,
            theirs.secs / ours.secs,
            cpu(&ours),
            cpu(&theirs),
        );
        match &websocat {
            Some(_) => {
                let (mirror_msgs, mirror_mb) = rate(mirror.secs);
                println!(" | {mirror_msgs:>12.0} {mirror_mb:>10.1} | {:>7.2}x", mirror.secs / ours.secs);
            }
            None => println!(),
        }
    }
    println!();
}

/// Where the client's command line has the server's URL.
const URL: &str = "{url}";

/// `websocat` from `WSRUN_BENCH_WEBSOCAT` or the PATH, if it runs.
fn websocat() -> Option<String> {
    let program = std::env::var("WSRUN_BENCH_WEBSOCAT").unwrap_or_else(|_| "websocat".to_owned());
    let runs =
        std::process::Command::new(&program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    runs.is_ok_and(|status| status.success()).then_some(program)
}

/// One echo run: its wall time, and the CPU time the client process and this (the server's) process spent in it.
#[derive(Clone, Copy)]
struct EchoRun {
    secs: f64,
    client_cpu: f64,
    server_cpu: f64,
}

impl EchoRun {
    const NONE: EchoRun = EchoRun { secs: f64::INFINITY, client_cpu: 0.0, server_cpu: 0.0 };

    fn best(self, other: EchoRun) -> EchoRun {
        if other.secs < self.secs {
            other
        } else {
            self
        }
    }
}

/// The CPU time (user + system) a process has used so far, in seconds.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th
    // and 13th of them.
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |t| t.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Seconds for `count` messages of `size` bytes to go to the client and back. `client` is the command line, with
/// [`URL`] where the server's URL goes.
async fn echo_run(client: &[&str], size: usize, count: usize) -> EchoRun {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut command = Command::new(client[0]);
    command.args(client[1..].iter().map(|&arg| if arg == URL { url.as_str() } else { arg }));
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).kill_on_drop(true).spawn().unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    let payload = vec![0x42u8; size];
    let client_pid = child.id().expect("client running").to_string();
    let (client_before, server_before) = (cpu_secs(&client_pid), cpu_secs("self"));
    let started = Instant::now();
    let sender = async {
        for _ in 0..count {
            sink.send(Message::binary(payload.clone())).await.unwrap();
        }
        sink
    };
    let receiver = async {
        let mut echoed = 0;
        while echoed < count {
            match stream.next().await {
                Some(Ok(Message::Binary(_))) => echoed += 1,
                Some(Ok(_)) => {}
                other => panic!("echo stopped after {echoed}: {other:?}"),
            }
        }
    };
    let (mut sink, ()) = tokio::join!(sender, receiver);
    let secs = started.elapsed().as_secs_f64();
    let (client_cpu, server_cpu) = (cpu_secs(&client_pid) - client_before, cpu_secs("self") - server_before);
    let _ = sink.send(Message::Close(None)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    EchoRun { secs, client_cpu, server_cpu }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Start-up: process start to connection open.

async fn startup() {
    const RUNS: usize = 20;
    println!("2. start-up: process start to WebSocket connection open, median of {RUNS} runs");
    let cache = std::env::temp_dir().join(format!("wsrun-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let cache_flag = format!("--cache-dir={}", cache.display());
    let cases: [(&str, Vec<String>); 4] = [
        ("wsrun client, compiling (--no-cache)", vec![WSRUN.into(), "--no-cache".into()]),
        ("wsrun client, cached", vec![WSRUN.into(), cache_flag.clone()]),
        (
            "wsrun client, precompiled file",
            vec![WSRUN.into(), "--no-cache".into(), "--allow-precompiled".into(), "{precompiled}".into()],
        ),
        ("native tokio-tungstenite client", vec![example("native_client")]),
    ];
    let precompiled = std::env::temp_dir().join(format!("wsrun-bench-client-{}.cwasm", std::process::id()));
    let status =
        std::process::Command::new(WSRUN).args(["compile", "client", "-o"]).arg(&precompiled).status().unwrap();
    assert!(status.success());
    // Warm the cache once, so "cached" measures hits only.
    connect_time(&[WSRUN.into(), cache_flag]).await;
    let mut native = f64::NAN;
    let mut rows = Vec::new();
    for (name, command) in cases {
        let command: Vec<String> = command
            .into_iter()
            .map(|a| if a == "{precompiled}" { precompiled.display().to_string() } else { a })
            .collect();
        let mut times = Vec::new();
        for _ in 0..RUNS {
            times.push(connect_time(&command).await);
        }
        let median = percentile(&times, 0.5);
        if name.starts_with("native") {
            native = median;
        }
        rows.push((name, median));
    }
    for (name, median) in rows {
        println!("{name:<40} {median:>8.2} ms   {:>6.2}x native", median / native);
    }
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_file(&precompiled);
    println!();
}

/// Milliseconds from spawning `command URL` to the server completing the opening handshake.
async fn connect_time(command: &[String]) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let started = Instant::now();
    let mut args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
    // The guest (if any) comes last among wsrun's arguments, then the URL.
    args.push(&url);
    let mut child = Command::new(&command[0])
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    drop(child.stdin.take());
    drop(ws);
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    elapsed
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Per-session memory in the embedding: idle connected sessions, beside idle native connections.

async fn memory() {
    let counts: Vec<usize> = std::env::var("WSRUN_BENCH_SESSIONS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 10_000]);
    println!("3. resident memory per idle connected session (server in another process)");
    println!("{:>8} | {:>18} | {:>22} | {:>6}", "sessions", "wsrun KiB/session", "native KiB/connection", "ratio");
    let server = EchoServerProcess::start().await;
    // The pooling allocator: thousands of default instances would pass the kernel's limit on memory mappings.
    let most = counts.iter().copied().max().unwrap_or(0) as u32;
    let runtime = Runtime::builder().pooling(most, 64 << 20).build().unwrap();
    let idle = runtime.load_file(TEST_MISBEHAVE.as_ref()).unwrap();
    for count in counts {
        let before = rss_kib();
        let mut outputs = Vec::with_capacity(count);
        let mut cancels = Vec::with_capacity(count);
        let mut running = Vec::with_capacity(count);
        for _ in 0..count {
            let stdout = MemoryOutputPipe::new(64);
            let session = idle.session(&server.url).args(["idle"]).stdout(stdout.clone());
            cancels.push(session.cancel_handle());
            outputs.push(stdout);
            running.push(tokio::spawn(session.run()));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while outputs.iter().any(|o| o.contents().is_empty()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let connected = outputs.iter().filter(|o| !o.contents().is_empty()).count();
        let ours = (rss_kib() - before) as f64 / count as f64;
        for cancel in &cancels {
            cancel.cancel();
        }
        for session in running {
            assert_eq!(session.await.unwrap(), Outcome::Interrupted);
        }

        let before = rss_kib();
        let mut native = Vec::with_capacity(count);
        for _ in 0..count {
            native.push(tokio_tungstenite::connect_async(server.url.as_str()).await.unwrap().0);
        }
        let theirs = (rss_kib() - before) as f64 / count as f64;
        drop(native);
        let note = if connected < count { format!(" (only {connected} connected)") } else { String::new() };
        println!("{count:>8} | {ours:>18.1} | {theirs:>22.1} | {:>5.1}x{note}", ours / theirs.max(0.1));
    }
    println!();
}

struct EchoServerProcess {
    url: String,
    _child: tokio::process::Child,
}

impl EchoServerProcess {
    async fn start() -> Self {
        let mut child = Command::new(binary("echo_server"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the echo_server binary (cargo build --release --examples --bins)");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines.next_line().await.unwrap().unwrap();
        EchoServerProcess { url, _child: child }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Cancel latency of one session among 1,000 busy ones.

async fn cancel_among_busy() {
    const SAMPLES: usize = 20;
    println!("4. cancel latency of one session: cancel() to its outcome, {SAMPLES} samples");
    let runtime = Runtime::new().unwrap();
    let echo = runtime.load_file(std::path::Path::new(wsrun_test_artifacts::ECHO)).unwrap();
    let mut rows = Vec::new();
    for busy in [0usize, 1000] {
        let url = chatty_server().await;
        let background: Vec<_> = (0..busy)
            .map(|_| {
                let session = echo.session(&url);
                (session.cancel_handle(), tokio::spawn(session.run()))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut times = Vec::new();
        for _ in 0..SAMPLES {
            let session = echo.session(&url);
            let cancel = session.cancel_handle();
            let running = tokio::spawn(session.run());
            tokio::time::sleep(Duration::from_millis(50)).await;
            let started = Instant::now();
            cancel.cancel();
            let outcome = running.await.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(outcome, Outcome::Interrupted);
        }
        for (cancel, running) in background {
            cancel.cancel();
            let _ = running.await;
        }
        rows.push((busy, percentile(&times, 0.5), percentile(&times, 0.99)));
    }
    let alone = rows[0].1;
    for (busy, median, p99) in rows {
        println!(
            "among {busy:>5} busy sessions: median {median:>7.2} ms, p99 {p99:>7.2} ms   {:>5.2}x alone",
            median / alone
        );
    }
    println!("(a cancel includes the clean close: a 1001 close frame and the server's answer)\n");
}

/// A server that keeps every connection busy: a 1 KiB message every 100 ms (10,000 a second over 1,000 sessions,
/// a tenth of what this machine can echo), echoes read and dropped.
async fn chatty_server() -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(4096).unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            if ws.send(Message::binary(vec![1u8; 1024])).await.is_err() {
                                break;
                            }
                        }
                        next = ws.next() => match next {
                            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                            Some(Ok(_)) => {}
                        },
                    }
                }
                // Answers the client's close at once.
                let _ = ws.close(None).await;
            });
        }
    });
    url
}

// ---------------------------------------------------------------------------------------------------------------

fn example(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples").join(name).display().to_string()
}

/// A binary of the workspace (`echo_server`), beside `wsrun`.
fn binary(name: &str) -> String {
    std::path::Path::new(WSRUN).with_file_name(name).display().to_string()
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn human_size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}
