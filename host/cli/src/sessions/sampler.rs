//! The run's time series, sampled once a second while the sessions run: differences of the tally's totals, and the
//! values each trend took in that second; and, once the sessions settle, the heap given back its free pages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wsrun::Metrics;

use super::progress::{Tally, Totals};
use super::report::timeline::{Second, TrendSecond};

/// The time between samples.
const EVERY: Duration = Duration::from_secs(1);

/// Samples until [`finish`](Sampler::finish)ed.
pub struct Sampler {
    task: tokio::task::JoinHandle<()>,
    state: Arc<Mutex<State>>,
}

struct State {
    seconds: Vec<Second>,
    last: Totals,
    /// Unix time (s) of the next second to record.
    next_t: u64,
    tally: Arc<Tally>,
    metrics: Arc<Metrics>,
    /// Sessions started, connected or ended since the heap was last trimmed.
    churned: bool,
}

impl Sampler {
    /// Start sampling a run that started at `started_unix_ms`.
    pub fn start(tally: Arc<Tally>, metrics: Arc<Metrics>, started_unix_ms: u64) -> Self {
        metrics.keep_windows();
        let state = Arc::new(Mutex::new(State {
            seconds: Vec::new(),
            last: Totals::default(),
            next_t: started_unix_ms / 1000,
            tally,
            metrics,
            churned: false,
        }));
        let sampled = state.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                sampled.lock().unwrap_or_else(|e| e.into_inner()).sample();
            }
        });
        Sampler { task, state }
    }

    /// Stop, with a last sample of the part of a second since the previous one: the whole series.
    pub fn finish(self) -> Vec<Second> {
        self.task.abort();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.sample();
        std::mem::take(&mut state.seconds)
    }
}

impl State {
    fn sample(&mut self) {
        let now = self.tally.totals();
        let (a, b) = (&self.last.traffic, &now.traffic);
        let mut second = Second {
            t: self.next_t,
            running: now.started.saturating_sub(now.finished),
            started: now.started - self.last.started,
            ended: now.finished - self.last.finished,
            failed: now.failed - self.last.failed,
            connects: b.connects.saturating_sub(a.connects),
            failed_connects: b.failed_connects.saturating_sub(a.failed_connects),
            messages_sent: b.messages_sent.saturating_sub(a.messages_sent),
            bytes_sent: b.bytes_sent.saturating_sub(a.bytes_sent),
            messages_received: b.messages_received.saturating_sub(a.messages_received),
            bytes_received: b.bytes_received.saturating_sub(a.bytes_received),
            trends: Default::default(),
        };
        for (name, unit, values) in self.metrics.take_windows() {
            if let Ok(trend) = TrendSecond::of(unit, &values) {
                second.trends.insert(name, trend);
            }
        }
        // Once a second passes with no session started, connected or ended, the heap's holes are handed back.
        match second.started + second.ended + second.connects > 0 {
            true => self.churned = true,
            false if self.churned => {
                crate::allocator::give_back_free_pages();
                self.churned = false;
            }
            false => {}
        }
        self.last = now;
        self.next_t += 1;
        self.seconds.push(second);
    }
}
