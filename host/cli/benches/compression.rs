//! What compression (permessage-deflate) costs and saves, against a python-websockets server (the `websockets`
//! package, as `scripts/setup.sh` installs it). Printed, not asserted.
//!
//! ```text
//! cargo build --release --examples --bins && cargo bench -p wsrun-cli --bench compression [-- PART...]
//! ```
//! PART is `throughput` or `memory` (both by default).
//!
//! 1. `throughput`: the server sends N compressible JSON messages (1 KiB and 64 KiB), pipelined, and times until every
//!    echo is back. Clients: `wsrun echo` (compression offered, as by default; then `--no-compression`) and
//!    python-websockets' own client (compression on, its default), each a process of its own whose CPU time is
//!    read when it exits. The server counts the bytes on the wire both ways.
//! 2. `memory`: resident memory per idle session of the library (the `echo` guest, pooling allocator) after one
//!    message each way, with compression agreed on and without (the same server, its compression turned off):
//!    `WSRUN_BENCH_SESSIONS` sets the counts (default `1000,10000`).

#[path = "../src/sessions/fd_limit.rs"]
mod fd_limit;
#[path = "shared/machine.rs"]
mod machine;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use machine::{cores, rss_kib, total_memory_mib};
use wsrun::{ConnectionLimits, Limits, Outcome, Runtime};

const WSRUN: &str = env!("CARGO_BIN_EXE_wsrun");

/// The server. `bench MODE COUNT SIZE`: each connection gets COUNT messages of SIZE bytes (100 different ones in
/// turn: quotes with their own numbers, as a feed sends), pipelined; once all
/// echoes are back it prints the time, the bytes it read and wrote and the extension agreed on, and closes.
/// `idle MODE TARGET`: each connection gets one 1 KiB message; once TARGET echoes are back it prints `ready`, and the
/// connections stay open. MODE is `deflate` (python-websockets' defaults: 4 KiB windows), `deflate15` (32 KiB
/// windows, zlib's default and many servers') or `plain` (no compression).
const SERVER: &str = r#"
import asyncio, json, resource, sys, time
from websockets.asyncio.server import ServerConnection, serve

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
task, mode = sys.argv[1], sys.argv[2]

def payload(size, n=0):
    """A JSON array of quotes, SIZE bytes; message N has its own sequence numbers and prices."""
    quote = '{"seq":%d,"symbol":"ACME","bid":%.2f,"ask":%.2f,"size":%d,"venue":"XNAS"}'
    text, i = "[", n * 1000
    while len(text) < size - 100:
        bid = 100 + (i * 7919 % 1000) / 100
        text += (quote % (i, bid, bid + 0.25, 100 + i * 31 % 900)) + ","
        i += 1
    return (text + quote % (i, 100, 100.25, 100) + "]").ljust(size)

class Counting(ServerConnection):
    wire_in = wire_out = 0
    def connection_made(self, transport):
        write = transport.write
        def counted(data):
            self.wire_out += len(data)
            write(data)
        transport.write = counted
        super().connection_made(transport)
    def data_received(self, data):
        self.wire_in += len(data)
        super().data_received(data)

echoed = 0

async def handler(ws):
    global echoed
    if task == "bench":
        count, size = int(sys.argv[3]), int(sys.argv[4])
        messages = [payload(size, n) for n in range(100)]
        started = time.perf_counter()
        async def send():
            for n in range(count):
                await ws.send(messages[n % 100])
        sender = asyncio.create_task(send())
        for n in range(count):
            assert await ws.recv() == messages[n % 100]
        await sender
        took = time.perf_counter() - started
        print(json.dumps({"seconds": took, "wire_in": ws.wire_in, "wire_out": ws.wire_out,
                          "extensions": [str(e) for e in ws.protocol.extensions]}), flush=True)
        await ws.close()
    else:
        await ws.send(payload(1024))
        await ws.recv()
        echoed += 1
        if echoed == int(sys.argv[3]):
            print("ready", flush=True)
        await ws.wait_closed()

async def main():
    options = {"compression": None} if mode == "plain" else {}
    if mode == "deflate15":
        from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
        options = {"compression": None, "extensions": [ServerPerMessageDeflateFactory()]}
    async with serve(handler, "127.0.0.1", 0, create_connection=Counting, max_size=None, backlog=4096,
                     ping_interval=None, **options) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().create_future()

asyncio.run(main())
"#;

/// python-websockets' client, echoing until the server closes (compression on: its default).
const PYTHON_CLIENT: &str = r#"
import asyncio, sys
from websockets.asyncio.client import connect

async def main():
    async with connect(sys.argv[1], max_size=None) as ws:
        async for message in ws:
            await ws.send(message)

asyncio.run(main())
"#;

#[tokio::main]
async fn main() {
    fd_limit::raise_open_file_limit();
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if let [part, mode, count] = &parts[..] {
        if part == "memory-one" {
            return memory_one(mode, count.parse().unwrap()).await;
        }
    }
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    println!("machine: {} cores, {} MiB memory\n", cores(), total_memory_mib());
    if wanted("throughput") {
        throughput();
    }
    if wanted("memory") {
        memory().await;
    }
}

struct Server {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    url: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new("python3")
            .args(["-c", SERVER])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with the websockets package (scripts/setup.sh)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines.next().expect("the server's port").unwrap();
        Server { child, lines, url: format!("ws://127.0.0.1:{port}/") }
    }

    fn line(&mut self) -> String {
        self.lines.next().expect("a line from the server").unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `command` to its end: its CPU time (user and system), from the kernel's account of the exited child.
// wait4 below reaps the child (std's `wait` has no resource usage to give).
#[allow(clippy::zombie_processes)]
fn cpu_of(mut command: Command) -> Duration {
    let child = command.stdin(Stdio::null()).stdout(Stdio::null()).spawn().expect("the client");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for the child just spawned, which nothing else waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let time = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn throughput() {
    println!(
        "1. echo of compressible JSON: the server (python-websockets) sends N messages pipelined, times the echoes"
    );
    println!("   (best of 3 by time; CPU = the client's CPU time per message; wire = bytes on the wire per message,");
    println!("    server to client / client to server)");
    println!(
        "{:>6} | {:>32} | {:>10} | {:>9} | {:>16} | agreed",
        "size", "client", "msgs/s", "CPU us", "wire B (s>c/c>s)"
    );
    for (size, count) in [(1024, 20_000), (64 << 10, 1_000)] {
        for (name, client) in [
            ("wsrun echo", vec![WSRUN, "echo"]),
            ("wsrun --no-compression echo", vec![WSRUN, "--no-compression", "echo"]),
            ("python-websockets client", vec!["python3", "-c", PYTHON_CLIENT]),
        ] {
            let mode = if name.contains("no-compression") { "plain" } else { "deflate" };
            let mut best: Option<(f64, Duration, u64, u64, String)> = None;
            for _ in 0..3 {
                let mut server = Server::start(&["bench", mode, &count.to_string(), &size.to_string()]);
                let mut command = Command::new(client[0]);
                command.args(&client[1..]).arg(&server.url);
                let cpu = cpu_of(command);
                let report = server.line();
                let field = |name: &str| -> f64 {
                    let start = report.find(&format!("\"{name}\": ")).unwrap() + name.len() + 4;
                    report[start..].split([',', '}']).next().unwrap().parse().unwrap()
                };
                let agreed = if report.contains("PerMessageDeflate") { "deflate" } else { "none" }.to_owned();
                let run = (field("seconds"), cpu, field("wire_out") as u64, field("wire_in") as u64, agreed);
                if best.as_ref().is_none_or(|b| run.0 < b.0) {
                    best = Some(run);
                }
            }
            let (seconds, cpu, wire_out, wire_in, agreed) = best.unwrap();
            let per = |n: u64| n / count as u64;
            println!(
                "{:>6} | {name:>32} | {:>10.0} | {:>9.1} | {:>16} | {agreed}",
                if size == 1024 { "1 KiB".to_owned() } else { "64 KiB".to_owned() },
                count as f64 / seconds,
                cpu.as_secs_f64() * 1e6 / count as f64,
                format!("{}/{}", per(wire_out), per(wire_in)),
            );
        }
    }
    println!();
}

/// Each figure in a process of its own: memory freed by one run would otherwise be reused by the next.
async fn memory() {
    let counts: Vec<usize> = std::env::var("WSRUN_BENCH_SESSIONS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 10_000]);
    println!("2. resident memory per idle session (echo guest, library) after one 1 KiB message each way");
    println!("   (deflate: python-websockets' 4 KiB windows; 32 KiB: the server's window at zlib's default)");
    println!(
        "{:>8} | {:>12} | {:>6} | {:>12} | {:>6} | {:>12}",
        "sessions", "deflate KiB", "ratio", "32 KiB KiB", "ratio", "plain KiB"
    );
    for count in counts {
        let figures: Vec<f64> = ["deflate", "deflate15", "plain"]
            .iter()
            .map(|mode| {
                let me = std::env::current_exe().unwrap();
                let output = Command::new(me).args(["memory-one", mode, &count.to_string()]).output().unwrap();
                let text = String::from_utf8_lossy(&output.stdout);
                text.trim().parse().unwrap_or_else(|_| panic!("{mode} {count}: {text} {output:?}"))
            })
            .collect();
        let [deflate, deflate15, plain] = figures[..] else { unreachable!() };
        println!(
            "{count:>8} | {deflate:>12.1} | {:>5.2}x | {deflate15:>12.1} | {:>5.2}x | {plain:>12.1}",
            deflate / plain,
            deflate15 / plain
        );
    }
    println!();
}

/// One figure of `memory`: KiB per session for `count` sessions against the server in `mode`.
async fn memory_one(mode: &str, count: usize) {
    let runtime = Runtime::builder().pooling(count as u32, 64 << 20).build().unwrap();
    let echo = runtime.load_file(std::path::Path::new(wsrun_test_artifacts::ECHO)).unwrap();
    let mut server = Server::start(&["idle", mode, &count.to_string()]);
    let before = rss_kib();
    let limits = Limits {
        connections: ConnectionLimits { open_timeout: Duration::from_secs(60), ..ConnectionLimits::default() },
        ..Limits::default()
    };
    let (cancels, running): (Vec<_>, Vec<_>) = (0..count)
        .map(|_| {
            let session = echo.session(&server.url).limits(limits.clone());
            (session.cancel_handle(), tokio::spawn(session.run()))
        })
        .unzip();
    let started = Instant::now();
    let ready = tokio::task::spawn_blocking(move || {
        let line = server.line();
        (server, line)
    });
    let (server, line) = ready.await.unwrap();
    assert_eq!(line, "ready");
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("{:.1}", (rss_kib() - before) as f64 / count as f64);
    eprintln!("  {mode}: {count} sessions echoed once in {:.1} s", started.elapsed().as_secs_f64());
    for cancel in &cancels {
        cancel.cancel();
    }
    for session in running {
        assert_eq!(session.await.unwrap(), Outcome::Interrupted);
    }
    drop(server);
}
