//! Progress while sessions run, on stderr: a live line on a terminal (indicatif), plain periodic lines elsewhere
//! (a CI log or a pod's log keeps every one).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wsrun::SessionStats;

/// How often the live line is redrawn.
const TERMINAL_TICK: Duration = Duration::from_millis(200);
/// How often the process's PSS is sampled for the summary.
const PSS_SAMPLE: Duration = Duration::from_secs(1);
/// How often a plain line is printed.
const PLAIN_TICK: Duration = Duration::from_secs(2);

/// Counts every session task keeps up to date, and the live figures of each started session.
#[derive(Default)]
pub struct Tally {
    pub finished: AtomicU64,
    pub failed: AtomicU64,
    stats: Mutex<Vec<Arc<SessionStats>>>,
    peak_pss: AtomicU64,
    /// Why the run is stopping, once it is: said in front of the progress line.
    stopping: Mutex<Option<&'static str>>,
}

impl Tally {
    pub fn watch(&self, stats: Arc<SessionStats>) {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).push(stats);
    }

    /// Sessions started so far: those being watched.
    fn started(&self) -> u64 {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
    }

    /// The run is stopping: the sessions are closing their connections.
    pub fn stopping(&self, why: &'static str) {
        *self.stopping.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// The largest PSS sampled so far.
    pub fn peak_pss(&self) -> u64 {
        self.peak_pss.load(Ordering::Relaxed)
    }

    /// Messages and bytes, both ways, of every session so far.
    fn traffic(&self) -> (u64, u64) {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.iter().fold((0, 0), |(messages, bytes), s| {
            (messages + s.messages_sent() + s.messages_received(), bytes + s.bytes_sent() + s.bytes_received())
        })
    }
}

/// Draws progress until dropped.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn start(tally: Arc<Tally>, sessions: u64) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(sessions), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:24} {msg}").expect("a valid template"),
            );
            bar
        });
        let drawn = bar.clone();
        let task = tokio::spawn(async move {
            let tick = if terminal { TERMINAL_TICK } else { PLAIN_TICK };
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
            let mut last = (Instant::now(), (0, 0));
            let mut last_sample: Option<Instant> = None;
            loop {
                ticker.tick().await;
                // Reading smaps_rollup walks every mapping (several per session): once a second is enough.
                if last_sample.is_none_or(|at| at.elapsed() >= PSS_SAMPLE) {
                    last_sample = Some(Instant::now());
                    tally.peak_pss.fetch_max(super::pss_bytes(), Ordering::Relaxed);
                }
                let now = (Instant::now(), tally.traffic());
                let seconds = now.0.duration_since(last.0).as_secs_f64().max(1e-3);
                let rate = (((now.1).0 - (last.1).0) as f64 / seconds, ((now.1).1 - (last.1).1) as f64 / seconds);
                last = now;
                let line = line(&tally, sessions, rate);
                match &drawn {
                    Some(bar) => {
                        bar.set_position(tally.finished.load(Ordering::Relaxed));
                        bar.set_message(line);
                        bar.tick();
                    }
                    None => eprintln!("wsrun: progress: {line}"),
                }
            }
        });
        Progress { task, bar }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn line(tally: &Tally, sessions: u64, (messages, bytes): (f64, f64)) -> String {
    let started = tally.started();
    let finished = tally.finished.load(Ordering::Relaxed);
    let stopping = match *tally.stopping.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(why) => format!("stopping ({why}), closing {} sessions: ", started.saturating_sub(finished)),
        None => String::new(),
    };
    format!(
        "{stopping}{started}/{sessions} started, {} running, {finished} finished, {} failed; {:.0} msg/s, {}/s",
        started.saturating_sub(finished),
        tally.failed.load(Ordering::Relaxed),
        messages,
        super::report::bytes(bytes as u64)
    )
}
