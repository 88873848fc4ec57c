//! SIGINT-to-exit latency of wsrun in each state a guest can be in, beside a native tokio-tungstenite client
//! process doing the same thing. Figures are printed, not asserted.
//!
//! ```text
//! cargo bench --bench cancel_latency [-- RUNS]     # RUNS per state, default 30
//! ```
//! Each run: start the process against a loopback server, wait until it is in the state, send SIGINT, time until
//! the process has exited. "clean" counts the runs where the server received a close frame (1001).

// The tests' servers' handshake callbacks read best as they are written (see tests/all/main.rs).
#![allow(clippy::result_large_err)]

// The tests' servers, and the helpers they lean on.
#[path = "../../../tests/all/raw.rs"]
#[allow(dead_code)]
mod raw;
#[path = "../../../tests/all/servers.rs"]
#[allow(dead_code)]
mod servers;
#[path = "../../../tests/all/util.rs"]
#[allow(dead_code)]
mod util;

use std::process::Stdio;
use std::time::{Duration, Instant};

use servers::{Server, Ws};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use wsrun_test_artifacts::{TEST_BIG_SEND, TEST_SPIN, TEST_STDIN_BLOCK};

const WSRUN: &str = env!("CARGO_BIN_EXE_wsrun");

/// One state to measure: how to start each client, and how to know it is there.
struct State {
    name: &'static str,
    wsrun: &'static [&'static str],
    native: Option<&'static [&'static str]>,
    server: ServerKind,
}

#[derive(Clone, Copy)]
enum ServerKind {
    Echo,
    /// Accepts TCP and never answers the handshake.
    Silent,
    /// Reads and drops everything, for the large sends.
    Sink,
}

const STATES: &[State] = &[
    State { name: "handshake unanswered", wsrun: &[], native: Some(&[]), server: ServerKind::Silent },
    State { name: "connected, idle (polling)", wsrun: &[], native: Some(&[]), server: ServerKind::Echo },
    State { name: "blocked on stdin", wsrun: &[TEST_STDIN_BLOCK], native: None, server: ServerKind::Echo },
    State { name: "spinning in wasm", wsrun: &[TEST_SPIN], native: None, server: ServerKind::Echo },
    State {
        name: "sending 16 MiB messages",
        wsrun: &[TEST_BIG_SEND, "{url}", "16"],
        native: Some(&["--send-mib", "16"]),
        server: ServerKind::Sink,
    },
];

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(30);
    let native = native_client_path();
    println!(
        "SIGINT-to-exit latency, {runs} runs per state, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{:<28} | {:>22} | {:>22} | {:>7}", "state", "wsrun median / p99", "native median / p99", "ratio");
    println!("{:-<28}-+-{:-<22}-+-{:-<22}-+-{:-<7}", "", "", "", "");
    for state in STATES {
        let ours = measure(state, Client::Wsrun, runs).await;
        let theirs = match (state.native, &native) {
            (Some(_), Some(path)) => Some(measure(state, Client::Native(path.clone()), runs).await),
            _ => None,
        };
        let ratio = theirs.as_ref().map_or("-".to_owned(), |t| format!("{:.2}x", ours.median() / t.median()));
        println!(
            "{:<28} | {:>22} | {:>22} | {:>7}",
            state.name,
            ours.summary(),
            theirs.as_ref().map_or("n/a".to_owned(), Figures::summary),
            ratio
        );
    }
    println!("\nclean = runs whose server received a close frame, of the runs where a connection was open");
}

#[derive(Clone)]
enum Client {
    Wsrun,
    Native(String),
}

impl Client {
    fn name(&self) -> &'static str {
        match self {
            Client::Wsrun => "wsrun",
            Client::Native(_) => "native",
        }
    }
}

struct Figures {
    millis: Vec<f64>,
    clean: usize,
    connected: bool,
}

impl Figures {
    fn median(&self) -> f64 {
        percentile(&self.millis, 0.5)
    }

    fn summary(&self) -> String {
        let clean = if self.connected { format!(" {}/{}", self.clean, self.millis.len()) } else { String::new() };
        format!("{:.2} / {:.2} ms{clean}", self.median(), percentile(&self.millis, 0.99))
    }
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).copied().unwrap_or(f64::NAN)
}

async fn measure(state: &State, client: Client, runs: usize) -> Figures {
    let mut figures = Figures { millis: Vec::new(), clean: 0, connected: !matches!(state.server, ServerKind::Silent) };
    for _ in 0..runs {
        let (millis, clean) = one_run(state, &client).await;
        figures.millis.push(millis);
        figures.clean += usize::from(clean);
    }
    figures
}

/// Start, wait for the state, SIGINT, time the exit. Returns the latency and whether the server saw a close.
async fn one_run(state: &State, client: &Client) -> (f64, bool) {
    let (url, server, mut accepted, _silent) = match state.server {
        ServerKind::Silent => {
            let (url, accepted, task) = servers::silent().await;
            (url, None, Some(accepted), Some(task))
        }
        ServerKind::Echo => {
            let server = Server::echo().await;
            (server.url.clone(), Some(server), None, None)
        }
        ServerKind::Sink => {
            let server = Server::start(|ws: Ws| servers::until_close(ws)).await;
            (server.url.clone(), Some(server), None, None)
        }
    };
    let mut child = spawn(state, client, &url);
    // Held open: tokio's `wait` would otherwise close stdin, and the client would see its end instead of SIGINT.
    let _stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    match accepted.as_mut() {
        Some(accepted) => {
            accepted.recv().await;
        }
        None => {
            while let Ok(Some(line)) = stdout.next_line().await {
                if line.starts_with("Connected to") || line == "connected" {
                    break;
                }
            }
        }
    }
    // Let it settle into the state (the sends under way, the poll entered).
    tokio::time::sleep(Duration::from_millis(30)).await;
    let pid = child.id().expect("running") as i32;
    let started = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("exit").expect("wait");
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status.code(), Some(130), "{} ({}) did not exit 130", state.name, client.name());
    let clean = match &server {
        Some(server) => server.closes(1).await.first().is_some_and(|close| close.as_ref().is_some_and(|c| c.0 == 1001)),
        None => false,
    };
    (millis, clean)
}

fn spawn(state: &State, client: &Client, url: &str) -> Child {
    let mut command = match client {
        Client::Wsrun => {
            let mut command = Command::new(WSRUN);
            if state.wsrun.contains(&"{url}") {
                command.args(state.wsrun.iter().map(|a| if *a == "{url}" { url } else { a }));
            } else {
                command.args(state.wsrun).arg(url);
            }
            command
        }
        Client::Native(path) => {
            let mut command = Command::new(path);
            command.arg(url).args(state.native.unwrap_or_default());
            command
        }
    };
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    command.spawn().expect("spawn")
}

/// The native client example, built beside this bench (`cargo bench` builds examples too).
fn native_client_path() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples/native_client");
    path.is_file().then(|| path.display().to_string())
}
