//! Running the real `wsrun` binary with a bounded wait, so a regression fails instead of hanging.

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// How long any wsrun run in these tests may take before the test fails.
pub const BOUND: Duration = Duration::from_secs(10);

/// A finished run of wsrun.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The lines of stdout that show received messages.
    pub fn received(&self) -> Vec<&str> {
        self.stdout.lines().filter(|line| line.starts_with("< ")).collect()
    }
}

/// Variables of the tests' own environment that wsrun reads, cleared for every run; a test that wants one sets it
/// on the command. The proxy variables (curl's, both cases): on a machine with a proxy set, loopback tests must not
/// go through it. The sharding ones: a test run inside a Kubernetes Indexed Job must not shard `--sessions` runs.
const INHERITED_VARIABLES: [&str; 10] = [
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "JOB_COMPLETION_INDEX",
    "WSRUN_SHARD_COUNT",
];

/// A `wsrun` command with piped stdio, none of the inherited variables above, and the tests' own compiled cache.
pub fn wsrun(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsrun"));
    for name in INHERITED_VARIABLES {
        command.env_remove(name);
    }
    // The tests' own compiled cache, not the user's.
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache");
    command
        .env("XDG_CACHE_HOME", cache)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Run wsrun with `input` on stdin (then EOF) and wait for it, at most [`BOUND`].
pub async fn run_with_input(args: &[&str], input: &[u8]) -> Run {
    run_with_input_within(args, input, BOUND).await
}

/// [`run_with_input`] with another bound (a Python or JS guest's first start compiles for seconds).
pub async fn run_with_input_within(args: &[&str], input: &[u8], bound: Duration) -> Run {
    let started = Instant::now();
    let mut child = wsrun(args).spawn().expect("spawn wsrun");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        // wsrun may exit before reading everything (a failed connect); that is not this helper's concern.
        let _ = stdin.write_all(&input).await;
    });
    let run = finish_within(child, started, bound).await;
    // wsrun is gone, so the write has ended, done or refused.
    let _ = within(BOUND, "the end of the write to wsrun's stdin", writer).await;
    run
}

/// Wait for a spawned wsrun, at most [`BOUND`].
pub async fn finish(child: Child, started: Instant) -> Run {
    finish_within(child, started, BOUND).await
}

/// Run a prepared `command` (from [`wsrun`], with its environment changed, say) with empty stdin, at most [`BOUND`].
pub async fn run_command(mut command: Command) -> Run {
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn wsrun");
    drop(child.stdin.take());
    finish(child, started).await
}

/// Wait for `future`, at most `bound`; past it the test fails saying what it was waiting for.
pub async fn within<T>(bound: Duration, what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(bound, future).await.unwrap_or_else(|_| panic!("{what}: nothing within {bound:?}"))
}

/// CPU time (user and system, all threads) that process `pid` has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // The fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 14th
    // and 15th fields of the line, the 12th and 13th after the name.
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// Run a prepared `command` with empty stdin, at most `bound` (for the first start of a Python or JavaScript guest,
/// which compiles it).
pub async fn run_command_within(mut command: Command, bound: Duration) -> Run {
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn the command");
    drop(child.stdin.take());
    finish_within(child, started, bound).await
}

async fn finish_within(child: Child, started: Instant, bound: Duration) -> Run {
    let output = tokio::time::timeout(bound, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("wsrun did not exit within {bound:?}"))
        .expect("wait for wsrun");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// A wsrun process still running, whose stdout lines the test can wait for.
pub struct Running {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    /// Reads stdout into `stdout` and `lines` until wsrun closes it.
    reader: tokio::task::JoinHandle<()>,
    stderr: tokio::task::JoinHandle<String>,
    /// Held so the guest's stdin stays open until the test ends (or [`end_input`](Running::end_input)).
    stdin: Option<tokio::process::ChildStdin>,
}

impl Running {
    /// Start wsrun with stdin left open (never written to) until the test drops it.
    pub fn spawn(args: &[&str]) -> Running {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
        let mut child = wsrun(args).spawn().expect("spawn wsrun");
        let stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err = child.stderr.take().expect("stderr");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let collected = stdout.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                collected.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text).await;
            text
        });
        Running { child, lines, stdout, reader, stderr, stdin }
    }

    /// Write `input` to wsrun's stdin, then close it: the end of input.
    pub async fn end_input(&mut self, input: &[u8]) {
        let mut stdin = self.stdin.take().expect("stdin was already closed");
        let write = stdin.write_all(input);
        tokio::time::timeout(BOUND, write)
            .await
            .unwrap_or_else(|_| panic!("wsrun did not read its stdin within {BOUND:?}"))
            .expect("write to wsrun's stdin");
    }

    /// Whether wsrun has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait for wsrun").is_none()
    }

    /// What wsrun has printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Wait (a few seconds at most) for a stdout line that starts with `prefix`.
    pub async fn wait_for_line(&mut self, prefix: &str) {
        self.wait_for_line_within(prefix, Duration::from_secs(5)).await;
    }

    /// Wait up to `bound` for a stdout line that starts with `prefix`.
    pub async fn wait_for_line_within(&mut self, prefix: &str, bound: Duration) {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                if line.starts_with(prefix) {
                    return true;
                }
            }
            false
        };
        let found = tokio::time::timeout(bound, wait).await.unwrap_or(false);
        assert!(
            found,
            "wsrun never printed a line starting with {prefix:?}; stdout so far: {:?}",
            self.stdout.lock().unwrap()
        );
    }

    /// The process id, to look at the process in /proc.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("wsrun is running")
    }

    /// Wait until wsrun has used `cpu` more CPU time than it had at this call: the sign that it is busy (a guest
    /// spinning, a guest compiling), at most [`BOUND`].
    pub async fn wait_for_cpu(&self, cpu: Duration) {
        let pid = self.pid();
        let start = cpu_time(pid);
        let busy = async {
            while cpu_time(pid) < start + cpu {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        within(BOUND, &format!("wsrun using {cpu:?} of CPU"), busy).await;
    }

    /// Send `signal` (for example `libc::SIGINT`) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("wsrun is running") as i32;
        // SAFETY: kill(2) on our own child's pid has no memory-safety concerns.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
    }

    /// Wait for the exit, at most [`BOUND`]; `elapsed` counts from this call.
    pub async fn finish(mut self) -> Run {
        let started = Instant::now();
        let status = tokio::time::timeout(BOUND, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("wsrun did not exit within {BOUND:?}"))
            .expect("wait for wsrun");
        let elapsed = started.elapsed();
        // wsrun has exited, so its stdout and stderr are at their end: the readers have the last bytes.
        let stderr = within(BOUND, "the end of wsrun's stderr", self.stderr).await.unwrap_or_default();
        within(BOUND, "the end of wsrun's stdout", self.reader).await.expect("the stdout reader");
        let stdout = self.stdout.lock().unwrap().clone();
        Run { status, stdout, stderr, elapsed }
    }
}
