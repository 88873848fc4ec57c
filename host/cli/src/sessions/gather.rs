//! The sessions' figures added up as each ends: the run holds the totals, not every session's.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use wsrun::Outcome;

use super::report::threshold::Threshold;
use super::report::{count_reason, histogram, record, HttpTraffic, Outcomes, Report, Traffic};
use super::{peak_rss_bytes, Ended, Shard, Stop};

pub struct Gathered {
    pub outcomes: Outcomes,
    pub peak_running: u64,
    sessions: u64,
    traffic: Traffic,
    connect_us: Histogram<u64>,
    duration_us: Histogram<u64>,
    http: HttpTraffic,
    http_us: Histogram<u64>,
    first_trap: Option<String>,
    last_connected: Duration,
    sessions_connected: u64,
    failure_reasons: BTreeMap<String, u64>,
}

impl Default for Gathered {
    fn default() -> Self {
        Gathered {
            outcomes: Outcomes::default(),
            peak_running: 0,
            sessions: 0,
            traffic: Traffic::default(),
            connect_us: histogram(),
            duration_us: histogram(),
            http: HttpTraffic::default(),
            http_us: histogram(),
            first_trap: None,
            last_connected: Duration::ZERO,
            sessions_connected: 0,
            failure_reasons: BTreeMap::new(),
        }
    }
}

impl Gathered {
    pub fn add(&mut self, session: Ended) {
        self.sessions += 1;
        self.traffic.add(&session.traffic);
        if let Some(after) = session.connected_after {
            self.last_connected = self.last_connected.max(after);
            self.sessions_connected += 1;
        }
        for took in &session.connect_times {
            record(&mut self.connect_us, *took);
        }
        self.http.add(&session.http);
        for took in &session.response_times {
            record(&mut self.http_us, *took);
        }
        if let Some(reason) = &session.reason {
            count_reason(&mut self.failure_reasons, reason, 1);
        }
        let outcomes = &mut self.outcomes;
        let Some(outcome) = &session.outcome else {
            outcomes.not_started += 1;
            return;
        };
        record(&mut self.duration_us, session.took);
        outcomes.failed += u64::from(session.failed);
        match (outcome, session.stopped_by) {
            (Outcome::Exited(code), _) => {
                outcomes.succeeded += u64::from(*code == 0);
                *outcomes.exit_codes.entry(code.to_string()).or_default() += 1;
            }
            (Outcome::Trapped(why), _) => {
                outcomes.trapped += 1;
                self.first_trap.get_or_insert_with(|| why.clone());
            }
            (Outcome::TimedOut(_), _) => outcomes.timed_out += 1,
            (_, Some(Stop::Duration)) => {
                outcomes.stopped += 1;
                outcomes.stopped_unconnected += u64::from(session.failed);
            }
            _ => outcomes.cancelled += 1,
        }
    }

    /// The report of what was gathered: of this `shard`, whose sessions were started as `load` says.
    pub fn into_report(
        self,
        (shard, load, thresholds): (Shard, String, &[Threshold]),
        guest: &str,
        url: &str,
        elapsed: Duration,
    ) -> Report {
        if let Some(why) = &self.first_trap {
            eprintln!("wsrun: {} sessions trapped; the first: {why}", self.outcomes.trapped);
        }
        Report {
            guest: guest.to_owned(),
            url: url.to_owned(),
            sessions: self.sessions + self.outcomes.not_started,
            shard,
            elapsed,
            sessions_connected: self.sessions_connected,
            last_connected: self.last_connected,
            outcomes: self.outcomes,
            traffic: self.traffic,
            peak_rss_bytes: peak_rss_bytes(),
            peak_pss_bytes: 0,
            interrupted: false,
            connect_us: self.connect_us,
            duration_us: self.duration_us,
            http: self.http,
            http_us: self.http_us,
            load,
            started_unix_ms: 0,
            peak_running: self.peak_running,
            metrics: Default::default(),
            failure_reasons: self.failure_reasons,
            thresholds: thresholds.to_vec(),
            timeline: Vec::new(),
        }
    }
}
