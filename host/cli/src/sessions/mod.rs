//! `wsrun --sessions N` (or `--stages`, `--arrival-rate`): many sessions of one guest side by side, each in its own
//! sandbox, with live progress, a summary, a JSON report, an HTML page, thresholds, and an exit code set by
//! `--max-failures` and `--threshold`. `wsrun report merge` adds up shards' reports.

pub mod fd_limit;
mod gather;
mod launch;
mod merge;
mod progress;
mod reason;
pub mod report;
mod sampler;
mod shape;
mod shard;
mod spool;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use wsrun::{Metrics, Outcome, Program, SessionBuilder};

use crate::signals::{self, Signals};
use gather::Gathered;
use launch::Launcher;
pub use merge::{merge, USAGE};
use progress::{Progress, Tally};
use report::threshold::Threshold;
pub use report::Shard;
use report::{HttpTraffic, MaxFailures, Report, Traffic};
pub use shape::{parse_rate, parse_stages, Shape};
pub use shard::shard_from;

/// Exit code of a run whose failures passed `--max-failures`, or whose thresholds failed.
const EXIT_FAILED: u8 = 1;

/// What `--sessions` and its companions asked for.
pub struct Plan {
    pub shape: Shape,
    pub duration: Option<Duration>,
    pub output: Option<PathBuf>,
    /// The most each session's log holds.
    pub max_output: u64,
    pub report: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub max_failures: MaxFailures,
    pub thresholds: Vec<Threshold>,
    pub shard: Shard,
}

impl Plan {
    /// The most sessions this process runs at once: its shard's share of the shape's peak.
    pub fn own_peak(&self) -> u64 {
        self.shard.share(self.shape.peak())
    }
}

/// Why the run was stopped before every session ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// `--duration` is over, or the stages are; or `--stages` lowered the target (that session alone).
    Duration,
    Signal,
}

/// How one session ended, with its figures.
struct Ended {
    index: u64,
    outcome: Option<Outcome>,
    stopped_by: Option<Stop>,
    /// What `--max-failures` counts: exited non-zero, trapped, timed out, or stopped by `--duration` before it opened
    /// a connection.
    failed: bool,
    /// Why it failed, in one line.
    reason: Option<String>,
    took: Duration,
    /// From the run's start to the session's first open connection.
    connected_after: Option<Duration>,
    traffic: Traffic,
    connect_times: Vec<Duration>,
    http: HttpTraffic,
    response_times: Vec<Duration>,
}

/// Run the plan's sessions, made by `session`, on the current (multi-threaded) runtime. `Err` is a usage or setup
/// error (exit 2); failures of sessions are in the summary and the exit code.
pub async fn run(
    plan: Plan,
    program: Program,
    url: &str,
    signals: &Signals,
    session: impl Fn(&Program, u64) -> SessionBuilder,
) -> Result<ExitCode, String> {
    if let Some(dir) = &plan.output {
        spool::prepare_dir(dir)?;
    }
    // A report that cannot be written is found out now, not after the whole run; and a run that dies leaves no
    // report (not an older one, nor an empty one), so a merge says its shard is missing.
    for (path, what) in [(&plan.report, "--report"), (&plan.html, "--html")] {
        if let Some(path) = path {
            std::fs::File::create(path)
                .and_then(|_| std::fs::remove_file(path))
                .map_err(|e| format!("cannot write {what} {}: {e}", path.display()))?;
        }
    }
    let tally = Arc::new(Tally::default());
    let metrics = Arc::new(Metrics::default());
    let output_cut = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (stop, stopping) = watch::channel(None::<Stop>);
    let started = Instant::now();
    let started_unix_ms = unix_millis();
    let progress = Progress::start(tally.clone(), plan.shape.sessions().map(|n| plan.shard.share(n)));
    let sampler = sampler::Sampler::start(tally.clone(), metrics.clone(), started_unix_ms);
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<Ended>();
    let mut launcher = Launcher::new(&plan);
    let mut gathered = Gathered::default();

    let start = |index: u64, down: Option<oneshot::Receiver<()>>| {
        // The guest may vary its behaviour by its index, like k6's __VU.
        let total = plan.shape.sessions().map_or_else(|| "0".to_owned(), |n| n.to_string());
        let mut builder = session(&program, index)
            .metrics(metrics.clone())
            .envs([("WSRUN_SESSION_INDEX", index.to_string()), ("WSRUN_SESSIONS", total)]);
        let log = plan
            .output
            .as_ref()
            .map(|dir| spool::SessionLog::new(dir.join(format!("{index}.log")), plan.max_output, output_cut.clone()));
        if let Some(log) = &log {
            builder = builder.stdout(log.clone());
        }
        let stderr = reason::Stderr::new(log);
        builder = builder.stderr(stderr.clone());
        let (tally, stopping, ended_tx) = (tally.clone(), stopping.clone(), ended_tx.clone());
        tokio::spawn(async move {
            let mut guard = Unended { index, tally: &tally, ended: Some(ended_tx) };
            let ended = one_session(index, builder, started, &tally, stopping, down, stderr).await;
            if let Some(ended_tx) = guard.ended.take() {
                let _ = ended_tx.send(ended);
            }
        });
    };

    let deadline = [plan.duration, plan.shape.end()].into_iter().flatten().min();
    let deadline_says = match (plan.duration, plan.shape.end()) {
        (Some(duration), Some(end)) if end < duration => "the last stage is over",
        (None, Some(_)) => "the last stage is over",
        _ => "--duration is over",
    };
    let deadline = async {
        match deadline {
            Some(after) => tokio::time::sleep_until(tokio::time::Instant::from_std(started + after)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut interrupted = false;
    let mut live = 0u64;
    while !(launcher.is_done() && live == 0) {
        let next_start = launcher.next_at(started);
        tokio::select! {
            Some(ended) = ended_rx.recv() => {
                live -= 1;
                launcher.ended(ended.index);
                gathered.add(ended);
            }
            () = tokio::time::sleep_until(next_start), if !launcher.is_done() => {
                live += launcher.launch(started.elapsed(), live, &start);
                gathered.peak_running = gathered.peak_running.max(live);
            }
            () = &mut deadline, if stop.borrow().is_none() => {
                tally.stopping(deadline_says);
                gathered.outcomes.not_started += launcher.stop();
                let _ = stop.send(Some(Stop::Duration));
            }
            () = signals.first(), if !interrupted => {
                interrupted = true;
                signals::say_interrupted();
                tally.stopping("interrupted; Ctrl+C again quits at once");
                gathered.outcomes.not_started += launcher.stop();
                let _ = stop.send(Some(Stop::Signal));
            }
        }
    }
    drop(progress);
    let timeline = sampler.finish();

    let shape = (plan.shard, plan.shape.describe(), &plan.thresholds[..]);
    let mut report = gathered.into_report(shape, program.name(), url, started.elapsed());
    report.started_unix_ms = started_unix_ms;
    report.timeline = timeline;
    report.metrics = report::metrics::RunMetrics { series: metrics.series(), dropped: metrics.dropped() };
    report.peak_pss_bytes = tally.peak_pss();
    report.interrupted = interrupted;
    report.outcomes.output_cut = output_cut.load(std::sync::atomic::Ordering::Relaxed);
    let verdict = finish(&report, plan.max_failures, plan.report.as_deref(), plan.html.as_deref())?;
    Ok(if interrupted { ExitCode::from(signals::EXIT_INTERRUPTED) } else { verdict })
}

/// What one session (no `--sessions`) reports: its summary on stderr with `-v` or `--threshold`, its report with
/// `--report` and `--html`, and a verdict when thresholds were given.
pub struct Single {
    pub report: Option<PathBuf>,
    pub html: Option<PathBuf>,
    pub thresholds: Vec<Threshold>,
    pub verbose: bool,
}

/// What a single session is measured by while it runs.
pub struct SingleRun {
    metrics: Arc<Metrics>,
    stats: Arc<wsrun::SessionStats>,
    started: Instant,
    started_unix_ms: u64,
}

impl Single {
    /// Whether anything is asked of the session's figures.
    pub fn wanted(&self) -> bool {
        self.verbose || self.report.is_some() || self.html.is_some() || !self.thresholds.is_empty()
    }

    /// Measure `session` (give it the metrics it records into).
    pub fn measure(&self, session: SessionBuilder) -> (SessionBuilder, SingleRun) {
        let metrics = Arc::new(Metrics::default());
        let run = SingleRun {
            metrics: metrics.clone(),
            stats: session.stats(),
            started: Instant::now(),
            started_unix_ms: unix_millis(),
        };
        (session.metrics(metrics), run)
    }

    /// After the session: the summary, the files, and whether the thresholds held (`None` without thresholds).
    pub fn finish(&self, run: SingleRun, guest: &str, url: &str, outcome: &Outcome) -> Result<Option<bool>, String> {
        let failed = is_failure(outcome);
        // Its stderr went to the terminal, where the user saw it.
        let reason = failed.then(|| match outcome {
            Outcome::Exited(code) => format!("exited {code}"),
            other => reason_of(other, None),
        });
        let ended = Ended::measured(0, outcome.clone(), (None, failed, reason), &run.stats, run.started, run.started);
        let mut gathered = Gathered::default();
        gathered.peak_running = 1;
        gathered.add(ended);
        let mut report = gathered.into_report(
            (Shard::WHOLE, "one session".to_owned(), &self.thresholds),
            guest,
            url,
            run.started.elapsed(),
        );
        report.started_unix_ms = run.started_unix_ms;
        report.metrics = report::metrics::RunMetrics { series: run.metrics.series(), dropped: run.metrics.dropped() };
        report.interrupted = matches!(outcome, Outcome::Interrupted);
        let max = MaxFailures::Count(u64::MAX);
        if self.verbose || !self.thresholds.is_empty() {
            eprint!("{}", report.summary(max));
        }
        if let Some(path) = &self.report {
            let json = report.to_json(max)? + "\n";
            write_whole(path, json.as_bytes()).map_err(|e| format!("cannot write --report {}: {e}", path.display()))?;
        }
        if let Some(path) = &self.html {
            report::html::write(path, &report, max)?;
        }
        Ok((!self.thresholds.is_empty()).then(|| self.thresholds.iter().all(|t| t.judge(&report).passed)))
    }
}

fn unix_millis() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// Says that a session ended even when its task did not run to its end (it panicked): the run waits for every
/// session's word, and would otherwise wait forever.
struct Unended<'a> {
    index: u64,
    tally: &'a Tally,
    ended: Option<mpsc::UnboundedSender<Ended>>,
}

impl Drop for Unended<'_> {
    fn drop(&mut self) {
        if let Some(ended) = self.ended.take() {
            self.tally.ended(self.index, true);
            let failed = Outcome::Trapped("the session's task failed".to_owned());
            let _ = ended.send(Ended::without_figures(self.index, failed));
        }
    }
}

impl Ended {
    /// A session that ran, begun at `began`, with the figures of its `stats`; `run_started` is the run's start.
    fn measured(
        index: u64,
        outcome: Outcome,
        (stopped_by, failed, reason): (Option<Stop>, bool, Option<String>),
        stats: &wsrun::SessionStats,
        run_started: Instant,
        began: Instant,
    ) -> Self {
        Ended {
            index,
            outcome: Some(outcome),
            stopped_by,
            failed,
            reason,
            took: began.elapsed(),
            connected_after: stats.first_connected().map(|at| at.duration_since(run_started)),
            traffic: Traffic::of(stats),
            connect_times: stats.connect_times(),
            http: HttpTraffic::of(stats.http()),
            response_times: stats.http().response_times(),
        }
    }

    /// A session that did not run to an outcome of its own: its task failed.
    fn without_figures(index: u64, outcome: Outcome) -> Self {
        Ended {
            index,
            reason: Some(reason_of(&outcome, None)),
            failed: is_failure(&outcome),
            outcome: Some(outcome),
            stopped_by: None,
            took: Duration::ZERO,
            connected_after: None,
            traffic: Traffic::default(),
            connect_times: Vec::new(),
            http: HttpTraffic::default(),
            response_times: Vec::new(),
        }
    }
}

/// One session: run it, stop it when the run stops (or, under `--stages`, when the target falls below it).
async fn one_session(
    index: u64,
    session: SessionBuilder,
    run_started: Instant,
    tally: &Tally,
    mut stopping: watch::Receiver<Option<Stop>>,
    down: Option<oneshot::Receiver<()>>,
    stderr: reason::Stderr,
) -> Ended {
    let stats = session.stats();
    let cancel = session.cancel_handle();
    tally.watch(index, stats.clone());
    let began = Instant::now();
    let run = session.run();
    tokio::pin!(run);
    let lowered = async {
        match down {
            // A dropped sender is not a request to stop.
            Some(down) => {
                if down.await.is_err() {
                    std::future::pending::<()>().await
                }
            }
            None => std::future::pending().await,
        }
    };
    let mut stopped_by = None;
    let outcome = tokio::select! {
        outcome = &mut run => Some(outcome),
        stop = stopping.wait_for(Option::is_some) => {
            stopped_by = Some(stop.ok().and_then(|s| *s).unwrap_or(Stop::Signal));
            None
        }
        () = lowered => {
            stopped_by = Some(Stop::Duration);
            None
        }
    };
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => {
            cancel.cancel();
            run.await
        }
    };
    // Still connecting when the time was up: the server never let it in.
    let unconnected = stopped_by == Some(Stop::Duration) && stats.connects() == 0;
    let failed = is_failure(&outcome) || unconnected;
    tally.ended(index, failed);
    let reason = match (failed, unconnected) {
        (false, _) => None,
        (true, true) => Some("stopped before it connected (the run's time was up)".to_owned()),
        (true, false) => Some(reason_of(&outcome, stderr.reason())),
    };
    Ended::measured(index, outcome, (stopped_by, failed, reason), &stats, run_started, began)
}

/// A failed session's reason in one line: what it said on stderr, else what its outcome was.
fn reason_of(outcome: &Outcome, said: Option<String>) -> String {
    match outcome {
        Outcome::Exited(code) => said.unwrap_or_else(|| format!("exited {code} (nothing on stderr)")),
        Outcome::Trapped(why) => {
            let first = why.lines().next().unwrap_or_default();
            format!("trapped: {}", first.chars().take(200).collect::<String>())
        }
        Outcome::TimedOut(after) => format!("timed out (--timeout {}s)", after.as_secs_f64()),
        Outcome::Interrupted => "cancelled".to_owned(),
        _ => format!("{outcome:?}"),
    }
}

fn is_failure(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Exited(code) => *code != 0,
        Outcome::Trapped(_) | Outcome::TimedOut(_) => true,
        _ => false,
    }
}

/// Print the summary, write the report and the page, and give the verdict's exit code.
fn finish(report: &Report, max: MaxFailures, file: Option<&Path>, html: Option<&Path>) -> Result<ExitCode, String> {
    use std::io::Write;
    print!("{}", report.summary(max));
    let _ = std::io::stdout().flush();
    if let Some(path) = file {
        let json = report.to_json(max)? + "\n";
        write_whole(path, json.as_bytes()).map_err(|e| format!("cannot write --report {}: {e}", path.display()))?;
    }
    if let Some(path) = html {
        report::html::write(path, report, max)?;
    }
    Ok(ExitCode::from(if report.verdict(max).passed { 0 } else { EXIT_FAILED }))
}

/// Write a file whole or not at all: beside it, then renamed over it.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path))
}

/// The process's proportional memory now: pages shared copy-on-write between sessions (a guest's initial memory
/// image) counted once, not once per session as in RSS. 0 where it cannot be read.
pub fn pss_bytes() -> u64 {
    proc_kib("/proc/self/smaps_rollup", "Pss:")
}

/// The process's peak resident memory (VmHWM), or 0 where it cannot be read.
fn peak_rss_bytes() -> u64 {
    proc_kib("/proc/self/status", "VmHWM:")
}

/// A `NAME:   123 kB` line of a /proc file, in bytes.
fn proc_kib(file: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
