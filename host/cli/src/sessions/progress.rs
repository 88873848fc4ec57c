//! Progress while sessions run, on stderr: a live line on a terminal (indicatif), plain periodic lines elsewhere
//! (a CI log or a pod's log keeps every one).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use wsrun::SessionStats;

use super::report::Traffic;

/// How often the live line is redrawn.
const TERMINAL_TICK: Duration = Duration::from_millis(200);
/// How often the process's PSS is sampled for the summary.
const PSS_SAMPLE: Duration = Duration::from_secs(1);
/// How often a plain line is printed.
const PLAIN_TICK: Duration = Duration::from_secs(2);

/// Counts every session task keeps up to date, and the live figures of each running session.
#[derive(Default)]
pub struct Tally {
    started: AtomicU64,
    pub finished: AtomicU64,
    pub failed: AtomicU64,
    /// The running sessions' live figures; an ended session's are added to `ended` and dropped, so a long run of
    /// many short sessions holds only those running.
    running: Mutex<HashMap<u64, Arc<SessionStats>>>,
    ended: Mutex<Traffic>,
    peak_pss: AtomicU64,
    /// Why the run is stopping, once it is: said in front of the progress line.
    stopping: Mutex<Option<&'static str>>,
}

/// The run's figures so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub started: u64,
    pub finished: u64,
    pub failed: u64,
    pub traffic: Traffic,
}

impl Tally {
    /// Session `index` started.
    pub fn watch(&self, index: u64, stats: Arc<SessionStats>) {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(index, stats);
    }

    /// Session `index` ended.
    pub fn ended(&self, index: u64, failed: bool) {
        let stats = self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&index);
        if let Some(stats) = stats {
            self.ended.lock().unwrap_or_else(|e| e.into_inner()).add(&Traffic::of(&stats));
        }
        self.failed.fetch_add(u64::from(failed), Ordering::Relaxed);
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// The run is stopping: the sessions are closing their connections.
    pub fn stopping(&self, why: &'static str) {
        *self.stopping.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// The largest PSS sampled so far.
    pub fn peak_pss(&self) -> u64 {
        self.peak_pss.load(Ordering::Relaxed)
    }

    /// Everything so far: the ended sessions' figures and the running ones' live figures.
    pub fn totals(&self) -> Totals {
        // `finished` first: a session that ends meanwhile is then counted in `traffic` at most once too many, never
        // missed.
        let finished = self.finished.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let mut traffic = *self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        for stats in running.values() {
            traffic.add(&Traffic::of(stats));
        }
        Totals { started: self.started.load(Ordering::Relaxed), finished, failed, traffic }
    }
}

/// Draws progress until dropped.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn start(tally: Arc<Tally>, sessions: Option<u64>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(sessions, ProgressDrawTarget::stderr());
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
                let totals = tally.totals();
                let t = totals.traffic;
                let now = (Instant::now(), (t.messages_sent + t.messages_received, t.bytes_sent + t.bytes_received));
                let seconds = now.0.duration_since(last.0).as_secs_f64().max(1e-3);
                let rate = (((now.1).0 - (last.1).0) as f64 / seconds, ((now.1).1 - (last.1).1) as f64 / seconds);
                last = now;
                let line = line(&tally, &totals, sessions, rate);
                match &drawn {
                    Some(bar) => {
                        bar.set_position(totals.finished);
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

fn line(tally: &Tally, totals: &Totals, sessions: Option<u64>, (messages, bytes): (f64, f64)) -> String {
    let Totals { started, finished, failed, .. } = *totals;
    let running = started.saturating_sub(finished);
    let stopping = match *tally.stopping.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(why) => format!("stopping ({why}), closing {running} sessions: "),
        None => String::new(),
    };
    let of = sessions.map_or(String::new(), |n| format!("/{n}"));
    format!(
        "{stopping}{started}{of} started, {running} running, {finished} finished, {failed} failed; {messages:.0} msg/s, {}/s",
        super::report::bytes(bytes as u64)
    )
}
