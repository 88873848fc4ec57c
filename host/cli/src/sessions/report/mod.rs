//! What a run of many sessions measured: counts, figures, latency histograms, the guests' metrics, why sessions
//! failed and a time series, as a summary for people, a JSON report that `wsrun report merge` adds up across shards
//! without losing the histograms' accuracy, and an HTML page.

pub mod html;
pub mod metrics;
mod summary;
pub mod threshold;
pub mod timeline;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The `format` of the reports this wsrun writes and reads.
pub const FORMAT: &str = "wsrun-report/1";

/// Significant digits the histograms keep: values within 0.1% of the truth.
const SIGNIFICANT_DIGITS: u8 = 3;

/// One run's (or several shards') outcomes and figures. Histograms are kept decoded; the JSON has them encoded.
#[derive(Clone, Debug)]
pub struct Report {
    pub guest: String,
    pub url: String,
    pub sessions: u64,
    pub shard: Shard,
    pub elapsed: Duration,
    /// Sessions that opened a connection, and when the last of them did (from the start).
    pub sessions_connected: u64,
    pub last_connected: Duration,
    pub outcomes: Outcomes,
    pub traffic: Traffic,
    pub peak_rss_bytes: u64,
    /// The largest PSS seen while the sessions ran (sampled each second; 0 when none was taken).
    pub peak_pss_bytes: u64,
    /// Stopped by Ctrl+C or SIGTERM (or, merged, missing shards): the verdict fails whatever the failures.
    pub interrupted: bool,
    pub connect_us: Histogram<u64>,
    pub duration_us: Histogram<u64>,
    /// The guests' outgoing HTTP requests, and how long their responses took to arrive.
    pub http: HttpTraffic,
    pub http_us: Histogram<u64>,
    /// How the sessions were started (`--sessions 100 --ramp-up 10s`, `--stages ...`): shards of one run agree.
    pub load: String,
    /// When the run started (Unix time, milliseconds).
    pub started_unix_ms: u64,
    /// The most sessions running at once.
    pub peak_running: u64,
    pub metrics: metrics::RunMetrics,
    /// Why sessions failed: each reason (escaped, one line) with how many sessions it ended.
    pub failure_reasons: BTreeMap<String, u64>,
    pub thresholds: Vec<threshold::Threshold>,
    pub timeline: Vec<timeline::Second>,
}

/// Distinct failure reasons a report keeps; the others count as one.
pub const MAX_REASONS: usize = 50;
/// What the reasons past [`MAX_REASONS`] are counted as.
pub const OTHER_REASONS: &str = "(other reasons)";

/// Count one more session that failed for `reason`, within [`MAX_REASONS`].
pub fn count_reason(reasons: &mut BTreeMap<String, u64>, reason: &str, count: u64) {
    let key = match reasons.contains_key(reason) || reasons.len() < MAX_REASONS {
        true => reason,
        false => OTHER_REASONS,
    };
    *reasons.entry(key.to_owned()).or_default() += count;
}

/// The verdict of a run, and what made it fail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub passed: bool,
    pub reasons: Vec<String>,
}

/// Which part of the sessions a process ran: those whose index `s` has `s % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// How many of `total` (sessions, or a target of running sessions) are this shard's.
    pub fn share(&self, total: u64) -> u64 {
        let (index, count) = (u64::from(self.index), u64::from(self.count));
        (total + count - 1 - index) / count
    }
}

/// How the sessions ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Exited 0.
    pub succeeded: u64,
    /// Exited non-zero, trapped, timed out, or stopped at `--duration` still connecting: what `--max-failures`
    /// counts.
    pub failed: u64,
    /// Sessions by the exit code the guest chose (0 among them).
    pub exit_codes: BTreeMap<String, u64>,
    pub trapped: u64,
    pub timed_out: u64,
    /// Still running at the end of `--duration`, and stopped then (closed with 1001): not failures, but for those
    /// still connecting (`stopped_unconnected`).
    pub stopped: u64,
    /// Stopped by Ctrl+C or SIGTERM.
    pub cancelled: u64,
    /// Never started: the run was stopped before their turn in the ramp-up.
    pub not_started: u64,
    /// Of the stopped ones, those that had not opened a connection yet: failures.
    #[serde(default)]
    pub stopped_unconnected: u64,
    /// Sessions whose output went past `--max-output` and was cut there (not failures).
    #[serde(default)]
    pub output_cut: u64,
}

/// What the sessions' connections carried (see `wsrun::SessionStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    pub connects: u64,
    pub failed_connects: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    /// Bytes on the wire (frames and handshakes, compressed where compression was agreed on, before TLS).
    #[serde(default)]
    pub wire_bytes_sent: u64,
    #[serde(default)]
    pub wire_bytes_received: u64,
}

/// What the sessions' outgoing HTTP requests did (see `wsrun::HttpStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpTraffic {
    pub requests: u64,
    /// Got no response: denied, or failed connecting, sending, or reading the response's head.
    pub failed: u64,
    pub denied: u64,
    /// Responses by status class: 1xx to 5xx.
    pub statuses: [u64; 5],
    pub body_bytes_sent: u64,
    pub body_bytes_received: u64,
}

impl HttpTraffic {
    pub fn of(stats: &wsrun::HttpStats) -> Self {
        HttpTraffic {
            requests: stats.requests(),
            failed: stats.failed(),
            denied: stats.denied(),
            statuses: stats.statuses(),
            body_bytes_sent: stats.bytes_sent(),
            body_bytes_received: stats.bytes_received(),
        }
    }

    pub fn add(&mut self, other: &HttpTraffic) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.denied += other.denied;
        for (mine, theirs) in self.statuses.iter_mut().zip(other.statuses) {
            *mine += theirs;
        }
        self.body_bytes_sent += other.body_bytes_sent;
        self.body_bytes_received += other.body_bytes_received;
    }
}

impl Traffic {
    /// A session's figures so far.
    pub fn of(stats: &wsrun::SessionStats) -> Self {
        Traffic {
            connects: stats.connects(),
            failed_connects: stats.failed_connects(),
            messages_sent: stats.messages_sent(),
            bytes_sent: stats.bytes_sent(),
            messages_received: stats.messages_received(),
            bytes_received: stats.bytes_received(),
            wire_bytes_sent: stats.wire_bytes_sent(),
            wire_bytes_received: stats.wire_bytes_received(),
        }
    }

    pub fn add(&mut self, other: &Traffic) {
        self.connects += other.connects;
        self.failed_connects += other.failed_connects;
        self.messages_sent += other.messages_sent;
        self.bytes_sent += other.bytes_sent;
        self.messages_received += other.messages_received;
        self.bytes_received += other.bytes_received;
        self.wire_bytes_sent += other.wire_bytes_sent;
        self.wire_bytes_received += other.wire_bytes_received;
    }
}

impl Outcomes {
    fn add(&mut self, other: &Outcomes) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        for (code, count) in &other.exit_codes {
            *self.exit_codes.entry(code.clone()).or_default() += count;
        }
        self.trapped += other.trapped;
        self.timed_out += other.timed_out;
        self.stopped += other.stopped;
        self.cancelled += other.cancelled;
        self.not_started += other.not_started;
        self.stopped_unconnected += other.stopped_unconnected;
        self.output_cut += other.output_cut;
    }
}

/// An empty histogram of microseconds that grows to whatever it is given.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits are valid")
}

/// Record a duration in microseconds (the histogram grows to hold it; past its reach, it counts as its largest).
pub fn record(histogram: &mut Histogram<u64>, duration: Duration) {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1);
    if histogram.record(micros).is_err() {
        histogram.saturating_record(micros);
    }
}

/// The shards of the reports being merged: each once, all of one run.
#[derive(Default)]
pub struct ShardSet {
    count: Option<u32>,
    seen: std::collections::BTreeSet<u32>,
}

impl ShardSet {
    pub fn add(&mut self, shard: Shard) -> Result<(), String> {
        match self.count {
            Some(count) if count != shard.count => {
                return Err(format!("shard {}/{} does not belong with shards of {count}", shard.index, shard.count))
            }
            _ => self.count = Some(shard.count),
        }
        if !self.seen.insert(shard.index) {
            return Err(format!("shard {}/{} is given twice", shard.index, shard.count));
        }
        Ok(())
    }

    /// Which shards are missing, as words, if any.
    pub fn missing(&self) -> Option<String> {
        let count = self.count?;
        let missing: Vec<String> = (0..count).filter(|i| !self.seen.contains(i)).map(|i| i.to_string()).collect();
        (!missing.is_empty()).then(|| format!("shards {} of {count} are missing", missing.join(", ")))
    }
}

/// How many failures pass: a count, or a share of the sessions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxFailures {
    Count(u64),
    Percent(f64),
}

impl MaxFailures {
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("invalid --max-failures {text:?} (a count like 3, or a share like 5%)");
        match text.strip_suffix('%') {
            Some(percent) => match percent.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(MaxFailures::Percent(p)),
                _ => Err(invalid()),
            },
            None => text.trim().parse().map(MaxFailures::Count).map_err(|_| invalid()),
        }
    }

    /// The most failures that pass among `sessions`.
    pub fn allowed(&self, sessions: u64) -> u64 {
        match *self {
            MaxFailures::Count(count) => count,
            MaxFailures::Percent(percent) => (sessions as f64 * percent / 100.0).floor() as u64,
        }
    }
}

impl std::fmt::Display for MaxFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxFailures::Count(count) => write!(f, "{count}"),
            MaxFailures::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

impl Report {
    /// Whether the failures stay within `max`.
    pub fn passes(&self, max: MaxFailures) -> bool {
        self.outcomes.failed <= max.allowed(self.sessions)
    }

    /// The verdict: failures within `max`, every threshold holds, the run not interrupted.
    pub fn verdict(&self, max: MaxFailures) -> Verdict {
        let mut reasons = Vec::new();
        if self.interrupted {
            reasons.push("the run was interrupted or is incomplete".to_owned());
        }
        if !self.passes(max) {
            let failed = match self.outcomes.failed {
                1 => "1 session".to_owned(),
                n => format!("{n} sessions"),
            };
            reasons.push(format!("{failed} failed, at most {max} allowed"));
        }
        let failed = self.thresholds.iter().filter(|t| !t.judge(self).passed).count();
        match failed {
            0 => {}
            1 => reasons.push("1 threshold failed".to_owned()),
            n => reasons.push(format!("{n} thresholds failed")),
        }
        Verdict { passed: reasons.is_empty(), reasons }
    }

    /// Add another shard's report to this one.
    pub fn merge(&mut self, other: &Report) -> Result<(), String> {
        self.sessions += other.sessions;
        self.shard = Shard::WHOLE;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.sessions_connected += other.sessions_connected;
        self.last_connected = self.last_connected.max(other.last_connected);
        self.outcomes.add(&other.outcomes);
        self.traffic.add(&other.traffic);
        self.peak_rss_bytes += other.peak_rss_bytes;
        self.peak_pss_bytes += other.peak_pss_bytes;
        self.interrupted |= other.interrupted;
        self.connect_us.add(&other.connect_us).map_err(|e| format!("cannot merge histograms: {e:?}"))?;
        self.duration_us.add(&other.duration_us).map_err(|e| format!("cannot merge histograms: {e:?}"))?;
        self.http.add(&other.http);
        self.http_us.add(&other.http_us).map_err(|e| format!("cannot merge histograms: {e:?}"))?;
        self.started_unix_ms = self.started_unix_ms.min(other.started_unix_ms);
        // Shards run side by side: their peaks add up (an upper bound when they did not peak together).
        self.peak_running += other.peak_running;
        self.metrics.merge(&other.metrics)?;
        for (reason, count) in &other.failure_reasons {
            count_reason(&mut self.failure_reasons, reason, *count);
        }
        for threshold in &other.thresholds {
            if !self.thresholds.contains(threshold) {
                self.thresholds.push(threshold.clone());
            }
        }
        timeline::merge(&mut self.timeline, &other.timeline)?;
        Ok(())
    }

    /// How this report's run differs from `other`'s, if it does: what shards of one run share.
    pub fn differs_from(&self, other: &Report) -> Option<String> {
        let e = |text: &str| wsrun::escape::escape(text).into_owned();
        if self.guest != other.guest {
            return Some(format!("the guest {} against {}", e(&self.guest), e(&other.guest)));
        }
        if self.url != other.url {
            return Some(format!("the URL {} against {}", e(&self.url), e(&other.url)));
        }
        if self.load != other.load {
            return Some(format!("the load {} against {}", e(&self.load), e(&other.load)));
        }
        None
    }

    /// The report as JSON, with its verdict under `max`.
    pub fn to_json(&self, max: MaxFailures) -> Result<String, String> {
        let file = ReportFile {
            format: FORMAT.to_owned(),
            guest: self.guest.clone(),
            url: self.url.clone(),
            sessions: self.sessions,
            shard: self.shard,
            elapsed_ms: millis_of(self.elapsed),
            sessions_connected: self.sessions_connected,
            last_connected_ms: millis_of(self.last_connected),
            outcomes: self.outcomes.clone(),
            traffic: self.traffic,
            peak_rss_bytes: self.peak_rss_bytes,
            peak_pss_bytes: self.peak_pss_bytes,
            interrupted: self.interrupted,
            http: self.http,
            load: self.load.clone(),
            started_unix_ms: self.started_unix_ms,
            peak_running: self.peak_running,
            metrics: self.metrics.series.iter().map(metrics::SeriesFile::of).collect::<Result<_, _>>()?,
            metrics_dropped: self.metrics.dropped.into(),
            failure_reasons: reasons_by_count(&self.failure_reasons),
            thresholds: self
                .thresholds
                .iter()
                .map(|t| {
                    let verdict = t.judge(self);
                    ThresholdFile { expression: t.text.clone(), measured: verdict.measured, passed: verdict.passed }
                })
                .collect(),
            verdict: Some(self.verdict(max)),
            timeline: self.timeline.clone(),
            histograms: Histograms {
                connect_us: encode(&self.connect_us)?,
                duration_us: encode(&self.duration_us)?,
                http_us: Some(encode(&self.http_us)?),
            },
            percentiles: Percentiles {
                connect_us: Quantiles::of(&self.connect_us),
                duration_us: Quantiles::of(&self.duration_us),
                http_us: Some(Quantiles::of(&self.http_us)),
            },
        };
        serde_json::to_string_pretty(&file).map_err(|e| e.to_string())
    }

    pub fn from_json(text: &str) -> Result<Report, String> {
        let file: ReportFile = serde_json::from_str(text).map_err(|e| format!("not a wsrun report: {e}"))?;
        if file.format != FORMAT {
            return Err(format!("a report of format {:?}; this wsrun reads {FORMAT:?}", file.format));
        }
        Ok(Report {
            guest: file.guest,
            url: file.url,
            sessions: file.sessions,
            shard: file.shard,
            elapsed: Duration::from_millis(file.elapsed_ms),
            sessions_connected: file.sessions_connected,
            last_connected: Duration::from_millis(file.last_connected_ms),
            outcomes: file.outcomes,
            traffic: file.traffic,
            peak_rss_bytes: file.peak_rss_bytes,
            peak_pss_bytes: file.peak_pss_bytes,
            interrupted: file.interrupted,
            connect_us: decode(&file.histograms.connect_us)?,
            duration_us: decode(&file.histograms.duration_us)?,
            http: file.http,
            http_us: file.histograms.http_us.as_deref().map_or_else(|| Ok(histogram()), decode)?,
            load: file.load,
            started_unix_ms: file.started_unix_ms,
            peak_running: file.peak_running,
            metrics: metrics::RunMetrics {
                series: file.metrics.into_iter().map(metrics::SeriesFile::read).collect::<Result<_, _>>()?,
                dropped: file.metrics_dropped.into(),
            },
            failure_reasons: file.failure_reasons.into_iter().map(|r| (r.reason, r.count)).collect(),
            thresholds: file
                .thresholds
                .iter()
                .map(|t| threshold::Threshold::parse(&t.expression))
                .collect::<Result<_, _>>()?,
            timeline: file.timeline,
        })
    }
}

/// The report as JSON: the figures flat, the histograms in HdrHistogram's V2 encoding (base64), and their
/// percentiles spelled out for readers without an HdrHistogram library.
#[derive(Serialize, Deserialize)]
struct ReportFile {
    format: String,
    guest: String,
    url: String,
    sessions: u64,
    shard: Shard,
    elapsed_ms: u64,
    sessions_connected: u64,
    last_connected_ms: u64,
    outcomes: Outcomes,
    #[serde(flatten)]
    traffic: Traffic,
    peak_rss_bytes: u64,
    peak_pss_bytes: u64,
    interrupted: bool,
    /// Absent from the reports of a wsrun without outgoing HTTP: none then.
    #[serde(default)]
    http: HttpTraffic,
    /// Absent from reports before load shapes, metrics, thresholds and time series: empty then.
    #[serde(default)]
    load: String,
    #[serde(default)]
    started_unix_ms: u64,
    #[serde(default)]
    peak_running: u64,
    #[serde(default)]
    metrics: Vec<metrics::SeriesFile>,
    #[serde(default)]
    metrics_dropped: metrics::DroppedFile,
    #[serde(default)]
    failure_reasons: Vec<ReasonFile>,
    #[serde(default)]
    thresholds: Vec<ThresholdFile>,
    /// Written for readers; recomputed when read.
    #[serde(default, skip_deserializing)]
    verdict: Option<Verdict>,
    #[serde(default)]
    timeline: Vec<timeline::Second>,
    histograms: Histograms,
    percentiles: Percentiles,
}

#[derive(Serialize, Deserialize)]
struct ReasonFile {
    reason: String,
    count: u64,
}

#[derive(Serialize, Deserialize)]
struct ThresholdFile {
    expression: String,
    measured: String,
    passed: bool,
}

/// Reasons, most frequent first.
fn reasons_by_count(reasons: &BTreeMap<String, u64>) -> Vec<ReasonFile> {
    let mut sorted: Vec<ReasonFile> =
        reasons.iter().map(|(reason, count)| ReasonFile { reason: reason.clone(), count: *count }).collect();
    sorted.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    sorted
}

/// Reasons, most frequent first, as (reason, count).
pub fn reasons_in_order(reasons: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    reasons_by_count(reasons).into_iter().map(|r| (r.reason, r.count)).collect()
}

#[derive(Serialize, Deserialize)]
struct Histograms {
    connect_us: String,
    duration_us: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_us: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Percentiles {
    connect_us: Quantiles,
    duration_us: Quantiles,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http_us: Option<Quantiles>,
}

#[derive(Serialize, Deserialize)]
struct Quantiles {
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
}

impl Quantiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        Quantiles {
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            max: histogram.max(),
        }
    }
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn encode(histogram: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(histogram, &mut bytes).map_err(|e| format!("cannot encode a histogram: {e:?}"))?;
    Ok(data_encoding::BASE64.encode(&bytes))
}

/// The uncompressed V2 encoding's cookie, and its header's length (cookie, payload length, normalizing offset,
/// significant digits, lowest and highest values, integer-to-double ratio).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_HEADER: usize = 40;

pub(crate) fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = data_encoding::BASE64.decode(text.as_bytes()).map_err(|e| format!("a histogram is not base64: {e}"))?;
    check_header(&bytes)?;
    let mut histogram: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("a histogram is unreadable: {e:?}"))?;
    histogram.auto(true);
    Ok(histogram)
}

/// The decoder allocates what the header claims before it reads the rest: a payload of the claimed length, and
/// counts for the claimed precision and range (a 1 KiB report claiming 4 GiB of payload made it allocate 4 GiB). So
/// the header must claim what wsrun writes: no more payload than the report holds, at most wsrun's precision, which
/// bounds the counts to under 0.5 MiB over the whole range of u64.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    let word = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")));
    let lowest = bytes.get(16..24).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")));
    let fits = match (word(0), word(4), word(12), lowest) {
        (Some(V2_COOKIE), Some(payload), Some(digits), Some(lowest)) => {
            usize::try_from(payload).is_ok_and(|payload| payload == bytes.len() - V2_HEADER.min(bytes.len()))
                && bytes.len() >= V2_HEADER
                && digits <= SIGNIFICANT_DIGITS.into()
                && lowest >= 1
        }
        _ => false,
    };
    match fits {
        true => Ok(()),
        false => Err(format!(
            "a histogram is not one wsrun writes (uncompressed HdrHistogram V2 of at most {SIGNIFICANT_DIGITS} digits, its payload whole)"
        )),
    }
}

/// A time in microseconds, for people.
pub fn millis(us: u64) -> String {
    match us {
        0..1_000 => format!("{:.2} ms", us as f64 / 1000.0),
        1_000..10_000_000 => format!("{:.1} ms", us as f64 / 1000.0),
        _ => format!("{:.1} s", us as f64 / 1_000_000.0),
    }
}

/// A rate of bytes per second, for people.
pub fn bytes_per_second(per_second: f64) -> String {
    format!("{}/s", bytes(per_second as u64))
}

/// A size, for people.
pub fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", n as f64 / 1_048_576.0),
        _ => format!("{:.2} GiB", n as f64 / 1_073_741_824.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(shard: Shard, durations: &[u64]) -> Report {
        let mut duration_us = histogram();
        for &d in durations {
            duration_us.record(d).unwrap();
        }
        Report {
            guest: "echo".into(),
            url: "ws://h/".into(),
            sessions: durations.len() as u64,
            shard,
            elapsed: Duration::from_millis(1500),
            sessions_connected: durations.len() as u64,
            last_connected: Duration::from_millis(700),
            outcomes: Outcomes { succeeded: durations.len() as u64, ..Outcomes::default() },
            traffic: Traffic { connects: durations.len() as u64, messages_sent: 3, ..Traffic::default() },
            peak_rss_bytes: 1 << 20,
            peak_pss_bytes: 1 << 19,
            interrupted: false,
            connect_us: histogram(),
            duration_us,
            http: HttpTraffic {
                requests: 2,
                failed: 1,
                denied: 1,
                statuses: [0, 1, 0, 0, 0],
                ..HttpTraffic::default()
            },
            http_us: {
                let mut http_us = histogram();
                http_us.record(1500).unwrap();
                http_us
            },
            load: "--sessions 3".into(),
            started_unix_ms: 1_000,
            peak_running: 3,
            metrics: metrics::RunMetrics::default(),
            failure_reasons: BTreeMap::new(),
            thresholds: Vec::new(),
            timeline: Vec::new(),
        }
    }

    #[test]
    fn a_report_survives_json() {
        let original = report(Shard { index: 1, count: 4 }, &[10, 2000, 3_000_000]);
        let read = Report::from_json(&original.to_json(MaxFailures::Count(0)).unwrap()).unwrap();
        assert_eq!(
            (read.sessions, read.shard, &read.outcomes, read.traffic),
            (3, original.shard, &original.outcomes, original.traffic)
        );
        assert_eq!(read.duration_us, original.duration_us);
        assert_eq!((read.http, &read.http_us), (original.http, &original.http_us));
    }

    #[test]
    fn a_report_of_a_wsrun_without_http_still_reads() {
        let mut json: serde_json::Value =
            serde_json::from_str(&report(Shard::WHOLE, &[10]).to_json(MaxFailures::Count(0)).unwrap()).unwrap();
        let file = json.as_object_mut().unwrap();
        file.remove("http");
        file["histograms"].as_object_mut().unwrap().remove("http_us");
        file["percentiles"].as_object_mut().unwrap().remove("http_us");
        let read = Report::from_json(&json.to_string()).unwrap();
        assert_eq!((read.http, read.http_us.len()), (HttpTraffic::default(), 0));
    }

    #[test]
    fn the_summary_shows_http_only_when_there_was_some() {
        let with = report(Shard::WHOLE, &[10]).summary(MaxFailures::Count(0));
        assert!(with.contains("  http       2 requests: 1 2xx, 1 failed (1 denied); response p50 1.50, p90 1.50, p95 1.50, p99 1.50, max 1.50 ms"), "{with}");
        let mut without = report(Shard::WHOLE, &[10]);
        without.http = HttpTraffic::default();
        assert!(!without.summary(MaxFailures::Count(0)).contains("http"));
    }

    #[test]
    fn merging_adds_counts_and_histograms() {
        let mut merged = report(Shard { index: 0, count: 2 }, &[100, 200]);
        merged.merge(&report(Shard { index: 1, count: 2 }, &[300, 400_000])).unwrap();
        assert_eq!(
            (merged.sessions, merged.shard, merged.outcomes.succeeded, merged.traffic.messages_sent),
            (4, Shard::WHOLE, 4, 6)
        );
        assert_eq!(merged.duration_us.len(), 4);
        assert_eq!((merged.http.requests, merged.http.statuses[1], merged.http_us.len()), (4, 2, 2));
        assert_eq!(merged.duration_us.max(), merged.duration_us.highest_equivalent(400_000));
    }

    #[test]
    fn max_failures_as_count_or_share() {
        assert_eq!(MaxFailures::parse("3").unwrap().allowed(100), 3);
        assert_eq!(MaxFailures::parse("5%").unwrap().allowed(200), 10);
        assert_eq!(MaxFailures::parse("2.5%").unwrap().allowed(100), 2);
        assert!(MaxFailures::parse("101%").is_err());
        assert!(MaxFailures::parse("some").is_err());
    }

    #[test]
    fn merged_shards_are_each_there_once() {
        let mut set = ShardSet::default();
        set.add(Shard { index: 0, count: 3 }).unwrap();
        assert!(set.add(Shard { index: 0, count: 3 }).is_err(), "twice");
        assert!(set.add(Shard { index: 1, count: 4 }).is_err(), "another run's");
        set.add(Shard { index: 2, count: 3 }).unwrap();
        assert_eq!(set.missing().as_deref(), Some("shards 1 of 3 are missing"));
        set.add(Shard { index: 1, count: 3 }).unwrap();
        assert_eq!(set.missing(), None);
    }
}
