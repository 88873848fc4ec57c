//! `wsrun --sessions N`: many sessions of one guest side by side, each in its own sandbox, with live progress, a
//! summary, a JSON report and an exit code set by `--max-failures`. `wsrun report merge` adds up shards' reports.

pub mod fd_limit;
mod progress;
pub mod report;
mod shard;
mod spool;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wsrun::{Outcome, Program, SessionBuilder};

use crate::signals::{self, Signals};
use progress::{Progress, Tally};
pub use report::Shard;
use report::{histogram, record, HttpTraffic, MaxFailures, Outcomes, Report, Traffic};
pub use shard::shard_from;

/// Exit code of a run whose failures passed `--max-failures`.
const EXIT_FAILED: u8 = 1;

/// What `--sessions` and its companions asked for.
pub struct Plan {
    pub sessions: u64,
    pub ramp_up: Option<Duration>,
    pub duration: Option<Duration>,
    pub output: Option<PathBuf>,
    /// The most each session's log holds.
    pub max_output: u64,
    pub report: Option<PathBuf>,
    pub max_failures: MaxFailures,
    pub shard: Shard,
}

impl Plan {
    /// How many sessions this process runs: its shard's share.
    pub fn own_sessions(&self) -> u64 {
        self.own_indices().count() as u64
    }

    /// The indices of this process's sessions.
    fn own_indices(&self) -> impl Iterator<Item = u64> {
        (u64::from(self.shard.index)..self.sessions).step_by(self.shard.count as usize)
    }

    /// When session `index` starts, after the run's start.
    fn start_of(&self, index: u64) -> Duration {
        match self.ramp_up {
            Some(ramp) if self.sessions > 1 => ramp.mul_f64(index as f64 / self.sessions as f64),
            _ => Duration::ZERO,
        }
    }
}

/// Why the run was stopped before every session ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Duration,
    Signal,
}

/// How one session ended, with its figures.
struct Ended {
    outcome: Option<Outcome>,
    stopped_by: Option<Stop>,
    /// What `--max-failures` counts: exited non-zero, trapped, timed out, or stopped by `--duration` before it opened
    /// a connection.
    failed: bool,
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
    session: impl Fn(&Program) -> SessionBuilder,
) -> Result<ExitCode, String> {
    if let Some(dir) = &plan.output {
        spool::prepare_dir(dir)?;
    }
    // A report that cannot be written is found out now, not after the whole run; and a run that dies leaves no
    // report (not an older one, nor an empty one), so a merge says its shard is missing.
    if let Some(path) = &plan.report {
        std::fs::File::create(path)
            .and_then(|_| std::fs::remove_file(path))
            .map_err(|e| format!("cannot write --report {}: {e}", path.display()))?;
    }
    let own = plan.own_sessions();
    let tally = Arc::new(Tally::default());
    let output_cut = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (stop, stopping) = watch::channel(None::<Stop>);
    let started = Instant::now();
    let progress = Progress::start(tally.clone(), own);

    let mut running = Vec::with_capacity(usize::try_from(own).unwrap_or(0));
    for index in plan.own_indices() {
        // The guest may vary its behaviour by its index, like k6's __VU.
        let mut builder = session(&program)
            .envs([("WSRUN_SESSION_INDEX", index.to_string()), ("WSRUN_SESSIONS", plan.sessions.to_string())]);
        if let Some(dir) = &plan.output {
            let log = spool::SessionLog::new(dir.join(format!("{index}.log")), plan.max_output, output_cut.clone());
            builder = builder.stdout(log.clone()).stderr(log);
        }
        let at = tokio::time::Instant::from_std(started + plan.start_of(index));
        running.push(tokio::spawn(one_session(builder, started, at, tally.clone(), stopping.clone())));
    }

    let all = join_sessions(running);
    tokio::pin!(all);
    let deadline = async {
        match plan.duration {
            Some(duration) => tokio::time::sleep_until(tokio::time::Instant::from_std(started + duration)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut interrupted = false;
    let ended = loop {
        tokio::select! {
            ended = &mut all => break ended,
            () = &mut deadline, if stop.borrow().is_none() => {
                tally.stopping("--duration is over");
                let _ = stop.send(Some(Stop::Duration));
            }
            () = signals.first(), if !interrupted => {
                interrupted = true;
                signals::say_interrupted();
                tally.stopping("interrupted; Ctrl+C again quits at once");
                let _ = stop.send(Some(Stop::Signal));
            }
        }
    };
    drop(progress);

    let mut report = gather(&plan, program.name(), url, started.elapsed(), ended);
    report.peak_pss_bytes = tally.peak_pss();
    report.interrupted = interrupted;
    report.outcomes.output_cut = output_cut.load(std::sync::atomic::Ordering::Relaxed);
    let verdict = finish(&report, plan.max_failures, plan.report.as_deref())?;
    Ok(if interrupted { ExitCode::from(signals::EXIT_INTERRUPTED) } else { verdict })
}

impl Ended {
    /// A session that did not run to an outcome of its own: not started, or its task failed.
    fn without_figures(outcome: Option<Outcome>, stopped_by: Option<Stop>) -> Self {
        let failed = outcome.as_ref().is_some_and(is_failure);
        Ended {
            outcome,
            stopped_by,
            failed,
            took: Duration::ZERO,
            connected_after: None,
            traffic: Traffic::default(),
            connect_times: Vec::new(),
            http: HttpTraffic::default(),
            response_times: Vec::new(),
        }
    }
}

/// Wait for every session's task; a task that panicked counts as a trapped session.
async fn join_sessions(tasks: Vec<tokio::task::JoinHandle<Ended>>) -> Vec<Ended> {
    let mut ended = Vec::with_capacity(tasks.len());
    for task in tasks {
        ended.push(task.await.unwrap_or_else(|e| {
            Ended::without_figures(Some(Outcome::Trapped(format!("the session's task failed: {e}"))), None)
        }));
    }
    ended
}

/// One session: wait for its turn, run it, stop it when the run stops.
async fn one_session(
    session: SessionBuilder,
    run_started: Instant,
    at: tokio::time::Instant,
    tally: Arc<Tally>,
    mut stopping: watch::Receiver<Option<Stop>>,
) -> Ended {
    let not_started = |stop| Ended::without_figures(None, Some(stop));
    tokio::select! {
        () = tokio::time::sleep_until(at) => {}
        stop = stopping.wait_for(Option::is_some) => {
            let stop = stop.ok().and_then(|s| *s).unwrap_or(Stop::Signal);
            return not_started(stop);
        }
    }
    if let Some(stop) = *stopping.borrow() {
        return not_started(stop);
    }
    let stats = session.stats();
    let cancel = session.cancel_handle();
    tally.watch(stats.clone());
    let began = Instant::now();
    let run = session.run();
    tokio::pin!(run);
    let mut stopped_by = None;
    let outcome = tokio::select! {
        outcome = &mut run => Some(outcome),
        stop = stopping.wait_for(Option::is_some) => {
            stopped_by = stop.ok().and_then(|s| *s);
            cancel.cancel();
            None
        }
    };
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => run.await,
    };
    // Still connecting when the time was up: the server never let it in.
    let failed = is_failure(&outcome) || (stopped_by == Some(Stop::Duration) && stats.connects() == 0);
    tally.finished.fetch_add(1, Ordering::Relaxed);
    tally.failed.fetch_add(u64::from(failed), Ordering::Relaxed);
    Ended {
        outcome: Some(outcome),
        stopped_by,
        failed,
        took: began.elapsed(),
        connected_after: stats.first_connected().map(|at| at.duration_since(run_started)),
        traffic: Traffic {
            connects: stats.connects(),
            failed_connects: stats.failed_connects(),
            messages_sent: stats.messages_sent(),
            bytes_sent: stats.bytes_sent(),
            messages_received: stats.messages_received(),
            bytes_received: stats.bytes_received(),
            wire_bytes_sent: stats.wire_bytes_sent(),
            wire_bytes_received: stats.wire_bytes_received(),
        },
        connect_times: stats.connect_times(),
        http: HttpTraffic::of(stats.http()),
        response_times: stats.http().response_times(),
    }
}

fn is_failure(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Exited(code) => *code != 0,
        Outcome::Trapped(_) | Outcome::TimedOut(_) => true,
        _ => false,
    }
}

fn gather(plan: &Plan, guest: &str, url: &str, elapsed: Duration, ended: Vec<Ended>) -> Report {
    let mut outcomes = Outcomes::default();
    let mut traffic = Traffic::default();
    let (mut connect_us, mut duration_us, mut http_us) = (histogram(), histogram(), histogram());
    let mut http = HttpTraffic::default();
    let mut first_trap = None;
    let (mut last_connected, mut sessions_connected) = (Duration::ZERO, 0);
    for session in &ended {
        traffic.add(&session.traffic);
        if let Some(after) = session.connected_after {
            last_connected = last_connected.max(after);
            sessions_connected += 1;
        }
        for took in &session.connect_times {
            record(&mut connect_us, *took);
        }
        http.add(&session.http);
        for took in &session.response_times {
            record(&mut http_us, *took);
        }
        let Some(outcome) = &session.outcome else {
            outcomes.not_started += 1;
            continue;
        };
        record(&mut duration_us, session.took);
        outcomes.failed += u64::from(session.failed);
        match (outcome, session.stopped_by) {
            (Outcome::Exited(code), _) => {
                outcomes.succeeded += u64::from(*code == 0);
                *outcomes.exit_codes.entry(code.to_string()).or_default() += 1;
            }
            (Outcome::Trapped(why), _) => {
                outcomes.trapped += 1;
                first_trap.get_or_insert(why);
            }
            (Outcome::TimedOut(_), _) => outcomes.timed_out += 1,
            (_, Some(Stop::Duration)) => {
                outcomes.stopped += 1;
                outcomes.stopped_unconnected += u64::from(session.failed);
            }
            _ => outcomes.cancelled += 1,
        }
    }
    if let Some(why) = first_trap {
        eprintln!("wsrun: {} sessions trapped; the first: {why}", outcomes.trapped);
    }
    Report {
        guest: guest.to_owned(),
        url: url.to_owned(),
        sessions: ended.len() as u64,
        shard: plan.shard,
        elapsed,
        sessions_connected,
        last_connected,
        outcomes,
        traffic,
        peak_rss_bytes: peak_rss_bytes(),
        peak_pss_bytes: 0,
        interrupted: false,
        connect_us,
        duration_us,
        http,
        http_us,
    }
}

/// Print the summary, write the report, and give the verdict's exit code.
fn finish(report: &Report, max: MaxFailures, file: Option<&Path>) -> Result<ExitCode, String> {
    use std::io::Write;
    print!("{}", report.summary(max));
    let _ = std::io::stdout().flush();
    if let Some(path) = file {
        let json = report.to_json()? + "\n";
        // Whole or not at all: written beside it, then renamed over it.
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        std::fs::write(&partial, json)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|e| format!("cannot write --report {}: {e}", path.display()))?;
    }
    Ok(ExitCode::from(if report.passes(max) && !report.interrupted { 0 } else { EXIT_FAILED }))
}

/// `wsrun report merge [--report FILE] [--max-failures N|P%] FILE...`.
pub fn merge(arguments: &[String], report_to: Option<&Path>, max: Option<MaxFailures>) -> Result<ExitCode, String> {
    let (mut files, mut report_to, mut max, mut partial) = (Vec::new(), report_to.map(Path::to_path_buf), max, false);
    let mut rest = arguments.iter();
    while let Some(argument) = rest.next() {
        match argument.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}\n\n{MERGE_HELP}");
                return Ok(ExitCode::SUCCESS);
            }
            "--report" => report_to = Some(rest.next().ok_or(USAGE)?.into()),
            "--max-failures" => max = Some(MaxFailures::parse(rest.next().ok_or(USAGE)?)?),
            "--partial" => partial = true,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}; {USAGE}")),
            file => files.push(PathBuf::from(file)),
        }
    }
    if files.is_empty() {
        return Err(USAGE.to_owned());
    }
    let mut merged: Option<Report> = None;
    let mut shards = report::ShardSet::default();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let report = Report::from_json(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        shards.add(report.shard).map_err(|e| format!("{}: {e}", file.display()))?;
        match &mut merged {
            Some(merged) => merged.merge(&report).map_err(|e| format!("{}: {e}", file.display()))?,
            None => merged = Some(Report { shard: Shard::WHOLE, ..report }),
        }
    }
    let mut merged = merged.expect("at least one file");
    if let Some(missing) = shards.missing() {
        if !partial {
            return Err(format!("{missing}; merge what there is with --partial (the verdict then fails)"));
        }
        eprintln!("wsrun: warning: {missing}: the merged report covers part of the run");
        merged.interrupted = true;
    }
    finish(&merged, max.unwrap_or(MaxFailures::Count(0)), report_to.as_deref())
}

/// How `wsrun report merge` is called.
pub const USAGE: &str = "usage: wsrun report merge [--report FILE] [--max-failures N|P%] [--partial] FILE...";

const MERGE_HELP: &str = "\
Adds up the --report files of the shards of one run (wsrun --sessions N --shard INDEX/COUNT ...): prints the
summary of the whole run, writes it as JSON with --report, and exits 1 when its failures pass --max-failures
(default 0) or a shard was interrupted. Every shard must be there once; --partial merges what there is, and the
verdict then fails.";

/// The process's peak resident memory (VmHWM), or 0 where it cannot be read.
fn peak_rss_bytes() -> u64 {
    proc_kib("/proc/self/status", "VmHWM:")
}

/// The process's proportional memory now: pages shared copy-on-write between sessions (a guest's initial memory
/// image) counted once, not once per session as in RSS. 0 where it cannot be read.
pub fn pss_bytes() -> u64 {
    proc_kib("/proc/self/smaps_rollup", "Pss:")
}

/// A `NAME:   123 kB` line of a /proc file, in bytes.
fn proc_kib(file: &str, name: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_sessions() {
        let plan = |index| Plan {
            sessions: 30,
            ramp_up: None,
            duration: None,
            output: None,
            max_output: 0,
            report: None,
            max_failures: MaxFailures::Count(0),
            shard: Shard { index, count: 3 },
        };
        let shards: Vec<Vec<u64>> = (0..3).map(|index| plan(index).own_indices().collect()).collect();
        for session in 0..30 {
            assert_eq!(shards.iter().filter(|shard| shard.contains(&session)).count(), 1);
        }
        assert_eq!(shards.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 10]);
    }
}
