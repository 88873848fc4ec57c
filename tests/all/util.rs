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

/// A `wsrun` command with piped stdio.
pub fn wsrun(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsrun"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Run wsrun with `input` on stdin (then EOF) and wait for it, at most [`BOUND`].
pub async fn run_with_input(args: &[&str], input: &[u8]) -> Run {
    let started = Instant::now();
    let mut child = wsrun(args).spawn().expect("spawn wsrun");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        // wsrun may exit before reading everything (a failed connect); that is not this helper's concern.
        let _ = stdin.write_all(&input).await;
    });
    let run = finish(child, started).await;
    let _ = writer.await;
    run
}

/// Wait for a spawned wsrun, at most [`BOUND`].
pub async fn finish(child: Child, started: Instant) -> Run {
    let output = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("wsrun did not exit within {BOUND:?}"))
        .expect("wait for wsrun");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}
