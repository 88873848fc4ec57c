//! When each session starts (and, under `--stages`, when one is stopped): the load shape applied to this process's
//! shard.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Plan, Shape, Shard};

/// How often the number running is brought to the stages' target.
const STAGE_TICK: Duration = Duration::from_millis(100);

pub struct Launcher {
    shape: Shape,
    shard: Shard,
    /// Fixed starts: the next of this shard's indices, and how many there are in all.
    next_index: u64,
    total: u64,
    /// Stages: sessions started so far by this shard, the running ones (with what stops each) and those told to
    /// stop, and when the target is next looked at.
    started: u64,
    running: BTreeMap<u64, oneshot::Sender<()>>,
    stopping: HashSet<u64>,
    next_tick: Duration,
    stopped: bool,
}

impl Launcher {
    pub fn new(plan: &Plan) -> Self {
        Launcher {
            shape: plan.shape.clone(),
            shard: plan.shard,
            next_index: u64::from(plan.shard.index),
            total: plan.shape.sessions().unwrap_or(0),
            started: 0,
            running: BTreeMap::new(),
            stopping: HashSet::new(),
            next_tick: Duration::ZERO,
            stopped: false,
        }
    }

    /// Nothing more will start.
    pub fn is_done(&self) -> bool {
        self.stopped || (!self.is_stages() && self.next_index >= self.total)
    }

    fn is_stages(&self) -> bool {
        matches!(self.shape, Shape::Stages(_))
    }

    /// When [`launch`](Launcher::launch) has something to do next.
    pub fn next_at(&self, run_started: Instant) -> tokio::time::Instant {
        let after = match self.is_stages() {
            true => self.next_tick,
            false => self.shape.start_of(self.next_index),
        };
        tokio::time::Instant::from_std(run_started + after)
    }

    /// Start what is due at `elapsed` (stop what the stages no longer want), given `live` sessions not yet ended;
    /// `start` starts one (with what stops it alone, under `--stages`). Returns how many were started.
    pub fn launch(&mut self, elapsed: Duration, live: u64, start: &impl Fn(u64, Option<oneshot::Receiver<()>>)) -> u64 {
        if !self.is_stages() {
            let mut launched = 0;
            while self.next_index < self.total && self.shape.start_of(self.next_index) <= elapsed {
                start(self.next_index, None);
                self.next_index += u64::from(self.shard.count);
                launched += 1;
            }
            return launched;
        }
        self.next_tick = elapsed + STAGE_TICK;
        let target = self.shard.share(self.shape.target_at(elapsed));
        let active = live - self.stopping.len() as u64;
        let mut launched = 0;
        for _ in active..target {
            // Indices unique across shards, as the fixed shapes' are.
            let index = self.started * u64::from(self.shard.count) + u64::from(self.shard.index);
            self.started += 1;
            let (stop, stopped) = oneshot::channel();
            self.running.insert(index, stop);
            start(index, Some(stopped));
            launched += 1;
        }
        for _ in target..active {
            // The newest first, as k6 ramps down.
            let Some((index, stop)) = self.running.pop_last() else { break };
            let _ = stop.send(());
            self.stopping.insert(index);
        }
        launched
    }

    /// Session `index` ended.
    pub fn ended(&mut self, index: u64) {
        if self.running.remove(&index).is_none() {
            self.stopping.remove(&index);
        }
    }

    /// Start nothing more: how many of this shard's sessions never started.
    pub fn stop(&mut self) -> u64 {
        self.stopped = true;
        match self.next_index < self.total {
            true => (self.total - self.next_index).div_ceil(u64::from(self.shard.count)),
            false => 0,
        }
    }
}
