//! Memory per session for each guest language: N sessions of the Rust, Python and JavaScript echo guests in one
//! process, with wasmtime's on-demand allocator and with the pooling allocator. Printed, not asserted.
//!
//! ```text
//! cargo run --release -p wsrun-cli --example guest_memory [-- SESSIONS [LANGUAGE|ALLOCATOR]...]
//! ```
//! SESSIONS defaults to 200; LANGUAGE is any of `rust`, `python`, `js` and ALLOCATOR `on-demand` or `pooling`
//! (all of them by default). The Python and JavaScript guests are built by the tests' build script, which needs
//! componentize-py and componentize-js (`bash scripts/setup.sh`).
//!
//! Each row runs in a fresh child process, so one row's freed memory never lowers the next. A loopback server here
//! sends each session one message and waits for its echo: every guest has connected, started its script and
//! reached its receive loop when the child is measured. The figures, growth divided by the sessions:
//! - RSS: the kernel's resident set. It counts a page once for every mapping of it, so a page of a guest's initial
//!   memory image shared copy-on-write by all sessions is counted in each of them: RSS overstates shared images.
//! - PSS: each page divided by the number of mappings sharing it; the shared image is counted once in all.
//! - private: pages only this session maps (`Private_Clean + Private_Dirty` in `/proc/self/smaps_rollup`): what
//!   one more session costs.
//!
//! Guests are compiled once into the user's compiled cache (as the `wsrun` command does), so only the first run of
//! a guest is slow.

#[path = "../src/sessions/fd_limit.rs"]
mod fd_limit;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use wsrun::{Outcome, Runtime};

const LANGUAGES: &[(&str, &str)] = &[
    ("rust", wsrun_test_artifacts::ECHO),
    ("python", wsrun_test_artifacts::PY_ECHO),
    ("js", wsrun_test_artifacts::JS_ECHO),
];
const ALLOCATORS: &[&str] = &["on-demand", "pooling"];
/// Each session's memory limit, the command line's default.
const MAX_MEMORY: usize = 256 << 20;
/// How long all sessions of a row may take to connect and echo.
const ROW_BOUND: Duration = Duration::from_secs(300);

fn main() -> anyhow::Result<ExitCode> {
    fd_limit::raise_open_file_limit();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1], &args[2], args[3].parse()?);
    }
    let sessions: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    let named = |all: &[&str]| -> Vec<String> {
        let chosen: Vec<String> = args.iter().filter(|a| all.contains(&a.as_str())).cloned().collect();
        if chosen.is_empty() {
            all.iter().map(|s| s.to_string()).collect()
        } else {
            chosen
        }
    };
    let languages = named(&LANGUAGES.iter().map(|(l, _)| *l).collect::<Vec<_>>());
    let allocators = named(ALLOCATORS);

    let runtime = tokio::runtime::Runtime::new()?;
    let echoed = Arc::new(AtomicUsize::new(0));
    let url = runtime.block_on(serve(echoed.clone()))?;
    println!("{sessions} echo sessions per row, each connected and past one echo; KiB per session");
    println!("{:<8} {:<10} {:>10} {:>10} {:>10} {:>9}", "guest", "allocator", "RSS", "PSS", "private", "load ms");
    let mut failed = false;
    for language in &languages {
        for allocator in &allocators {
            echoed.store(0, Ordering::SeqCst);
            match row(language, allocator, sessions, &url, &echoed) {
                Ok(figures) => println!("{language:<8} {allocator:<10} {figures}"),
                Err(why) => {
                    failed = true;
                    println!("{language:<8} {allocator:<10} failed: {why:#}");
                }
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// One row: a child process runs the sessions; once the server has every echo, it is told to measure.
fn row(language: &str, allocator: &str, sessions: usize, url: &str, echoed: &AtomicUsize) -> anyhow::Result<String> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--child", language, allocator, &sessions.to_string()])
        .env("WSRUN_GUEST_MEMORY_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines.next().transpose()?.unwrap_or_default();
    if started != "started" {
        let _ = child.wait();
        anyhow::bail!("the child did not start its sessions: {started}");
    }
    let deadline = Instant::now() + ROW_BOUND;
    while echoed.load(Ordering::SeqCst) < sessions && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let done = echoed.load(Ordering::SeqCst);
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "measure")?;
    let figures = lines.next().transpose()?.unwrap_or_default();
    child.wait()?;
    anyhow::ensure!(done == sessions, "only {done} of {sessions} sessions echoed within {ROW_BOUND:?}: {figures}");
    Ok(figures)
}

/// In the child: load the guest, start the sessions, measure when the parent says every one has echoed.
fn child(language: &str, allocator: &str, sessions: usize) -> anyhow::Result<ExitCode> {
    let url = std::env::var("WSRUN_GUEST_MEMORY_URL")?;
    let path = LANGUAGES.iter().find(|(l, _)| *l == language).map(|(_, p)| *p).expect("a known language");
    let tokio = tokio::runtime::Runtime::new()?;
    let mut builder = Runtime::builder().cache_dir(Runtime::default_cache_dir());
    if allocator == "pooling" {
        builder = builder.pooling(sessions as u32, MAX_MEMORY);
    }
    let loading = Instant::now();
    let loaded = builder.build().and_then(|runtime| Ok((runtime.load_file(Path::new(path))?, runtime)));
    let (program, _runtime) = match loaded {
        Ok(loaded) => loaded,
        Err(why) => {
            println!("does not load: {why}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let load_ms = loading.elapsed().as_secs_f64() * 1000.0;
    let before = Memory::now();
    let running: Vec<_> = (0..sessions)
        .map(|_| {
            let session = program.session(url.clone());
            let cancel = session.cancel_handle();
            (cancel, tokio.spawn(session.run()))
        })
        .collect();
    println!("started");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let after = Memory::now();
    let per = |field: fn(&Memory) -> i64| (field(&after) - field(&before)) as f64 / sessions as f64;
    let early: Vec<_> = running.iter().filter(|(_, task)| task.is_finished()).collect();
    let note = if early.is_empty() { String::new() } else { format!("  ({} sessions ended early)", early.len()) };
    println!("{:>10.1} {:>10.1} {:>10.1} {load_ms:>9.0}{note}", per(|m| m.rss), per(|m| m.pss), per(|m| m.private));
    tokio.block_on(async {
        for (cancel, _) in &running {
            cancel.cancel();
        }
        for (_, task) in running {
            let outcome = task.await.expect("a session task");
            if !matches!(outcome, Outcome::Interrupted | Outcome::Exited(0)) {
                eprintln!("guest_memory: a {language} session ended {outcome:?}");
            }
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// The process's memory, in KiB, from `/proc/self/smaps_rollup`.
struct Memory {
    rss: i64,
    pss: i64,
    private: i64,
}

impl Memory {
    fn now() -> Self {
        let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
        let field = |name: &str| -> i64 {
            text.lines().find_map(|l| l.strip_prefix(name)?.split_whitespace().next()?.parse().ok()).unwrap_or(0)
        };
        Memory { rss: field("Rss:"), pss: field("Pss:"), private: field("Private_Clean:") + field("Private_Dirty:") }
    }
}

/// A server that sends every connection one message, counts its echo, then keeps the connection open until the
/// client closes.
async fn serve(echoed: Arc<AtomicUsize>) -> anyhow::Result<String> {
    let socket = TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(4096)?;
    let url = format!("ws://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let echoed = echoed.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                if ws.send(Message::text("hello")).await.is_err() {
                    return;
                }
                if let Some(Ok(Message::Text(_))) = ws.next().await {
                    echoed.fetch_add(1, Ordering::SeqCst);
                }
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_close() {
                        break;
                    }
                }
                let _ = ws.close(None).await;
            });
        }
    });
    Ok(url)
}
