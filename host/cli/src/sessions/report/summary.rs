//! The summary for people: a heading, then a line (or a few) per topic, each figure in one unit per line.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use wsrun::escape::escape;
use wsrun::metrics::{Kind, SeriesData, TrendUnit};

use super::{bytes, bytes_per_second, reasons_in_order, MaxFailures, Report, Shard};

/// Tagged series shown under their metric's line; a metric with more shows only its total.
const MAX_TAGGED_LINES: usize = 10;

impl Report {
    pub fn summary(&self, max: MaxFailures) -> String {
        let mut text = String::new();
        let o = &self.outcomes;
        let t = &self.traffic;
        let shard = match self.shard {
            Shard::WHOLE => String::new(),
            Shard { index, count } => format!(" (shard {index}/{count})"),
        };
        let load = match self.load.as_str() {
            "" => String::new(),
            load => format!("; {}", escape(load)),
        };
        let _ = writeln!(
            text,
            "{} sessions of {} against {}{shard}, in {:.2} s{load}",
            self.sessions,
            // A report to merge may come from anywhere.
            escape(&self.guest),
            escape(&self.url),
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(text, "  outcomes   {}", self.outcome_line());
        if o.output_cut > 0 {
            let _ = writeln!(text, "  output     {} sessions wrote more than --max-output: cut there", o.output_cut);
        }
        let share = if self.sessions == 0 { 0.0 } else { o.failed as f64 * 100.0 / self.sessions as f64 };
        let allowed = match max {
            // One session, whose own exit code is the verdict.
            MaxFailures::Count(u64::MAX) => String::new(),
            max => format!(", at most {max} allowed"),
        };
        let _ = writeln!(text, "  failures   {} of {} ({share:.1}%){allowed}", o.failed, self.sessions);
        for (reason, count) in reasons_in_order(&self.failure_reasons) {
            let _ = writeln!(text, "    {count:>6}  {}", escape(&reason));
        }
        let _ = writeln!(
            text,
            "  connect    {} opened, {} failed; {}",
            t.connects,
            t.failed_connects,
            percentiles(&self.connect_us, TrendUnit::Micros),
        );
        let connected = match self.sessions_connected {
            0 => "no session connected".to_owned(),
            n if n == self.sessions => {
                format!("all connected {:.2} s after the start", self.last_connected.as_secs_f64())
            }
            n => format!("{n} connected, the last {:.2} s after the start", self.last_connected.as_secs_f64()),
        };
        let _ = writeln!(text, "  sessions   {connected}; at most {} running at once", self.peak_running);
        let _ = writeln!(text, "  duration   {}", percentiles(&self.duration_us, TrendUnit::Micros));
        let seconds = self.elapsed.as_secs_f64().max(1e-3);
        let carried = |messages: u64, payload: u64, wire: u64| {
            format!(
                "{messages} messages ({:.1}/s), {} ({}), {} on the wire",
                messages as f64 / seconds,
                bytes(payload),
                bytes_per_second(payload as f64 / seconds),
                bytes(wire)
            )
        };
        let _ = writeln!(text, "  sent       {}", carried(t.messages_sent, t.bytes_sent, t.wire_bytes_sent));
        let _ =
            writeln!(text, "  received   {}", carried(t.messages_received, t.bytes_received, t.wire_bytes_received));
        self.http_line(&mut text);
        self.memory_line(&mut text);
        self.metrics_lines(&mut text);
        if !self.thresholds.is_empty() {
            let _ = writeln!(text, "  thresholds");
            let width = self.thresholds.iter().map(|t| t.text.len()).max().unwrap_or(0);
            for threshold in &self.thresholds {
                let verdict = threshold.judge(self);
                let mark = if verdict.passed { "passed" } else { "FAILED" };
                let _ = writeln!(text, "    {mark}  {:<width$}  {}", escape(&threshold.text), verdict.measured);
            }
        }
        let verdict = self.verdict(max);
        let _ = match verdict.passed {
            true => writeln!(text, "  verdict    passed"),
            false => writeln!(text, "  verdict    FAILED: {}", verdict.reasons.join("; ")),
        };
        text
    }

    /// What the sessions did, the most common first, and how many failed: never "0 succeeded, 0 failed" for a run
    /// whose sessions were all stopped.
    fn outcome_line(&self) -> String {
        let o = &self.outcomes;
        let stopped_by = if self.load.starts_with("--stages") { "by --stages or --duration" } else { "at --duration" };
        let mut parts: Vec<(u64, String)> = Vec::new();
        for (code, count) in &o.exit_codes {
            let what = if code == "0" { "succeeded (exited 0)".to_owned() } else { format!("exited {code}") };
            parts.push((*count, what));
        }
        parts.push((o.trapped, "trapped".to_owned()));
        parts.push((o.timed_out, "timed out".to_owned()));
        let unconnected = match o.stopped_unconnected {
            0 => String::new(),
            n if n == o.stopped => " (none had connected: failed)".to_owned(),
            n => format!(" ({n} of them still connecting: failed)"),
        };
        parts.push((o.stopped, format!("stopped {stopped_by}{unconnected}")));
        parts.push((o.cancelled, "cancelled (Ctrl+C or SIGTERM)".to_owned()));
        parts.push((o.not_started, "not started (the run was stopped first)".to_owned()));
        parts.retain(|(count, _)| *count > 0);
        if parts.is_empty() {
            return "no session ran".to_owned();
        }
        parts.sort_by_key(|part| std::cmp::Reverse(part.0));
        let parts: Vec<String> = parts.into_iter().map(|(count, what)| format!("{count} {what}")).collect();
        format!("{}; {} failed", parts.join(", "), o.failed)
    }

    fn http_line(&self, text: &mut String) {
        let h = &self.http;
        if h.requests == 0 {
            return;
        }
        let classes: Vec<String> = (1..=5)
            .zip(h.statuses)
            .filter(|&(class, count)| count > 0 || class == 2)
            .map(|(class, count)| format!("{count} {class}xx"))
            .collect();
        let _ = writeln!(
            text,
            "  http       {} requests: {}, {} failed ({} denied); response {}; bodies {} sent, {} received",
            h.requests,
            classes.join(", "),
            h.failed,
            h.denied,
            percentiles(&self.http_us, TrendUnit::Micros),
            bytes(h.body_bytes_sent),
            bytes(h.body_bytes_received)
        );
    }

    /// Memory per session: the peak divided by the most sessions running at once (not by all that ran).
    fn memory_line(&self, text: &mut String) {
        let started = self.sessions - self.outcomes.not_started;
        if started == 0 || self.peak_rss_bytes == 0 {
            return;
        }
        let per = self.peak_running.max(1);
        let pss = match self.peak_pss_bytes {
            // Sampled once a second: a run shorter than that has none.
            0 => "PSS unmeasured (the run ended before its first sample)".to_owned(),
            pss => format!("peak PSS {}, {} per session", bytes(pss), bytes(pss / per)),
        };
        // RSS counts a guest's shared initial memory once per session; PSS once in all.
        let _ = writeln!(
            text,
            "  memory     peak RSS {}, {} per session; {pss} (per session: at most {per} running at once)",
            bytes(self.peak_rss_bytes),
            bytes(self.peak_rss_bytes / per)
        );
    }

    fn metrics_lines(&self, text: &mut String) {
        let metrics = &self.metrics;
        let names = metrics.names();
        let guest_metrics: Vec<_> = names.iter().filter(|(name, _)| *name != "checks").collect();
        if !guest_metrics.is_empty() {
            let _ = writeln!(text, "  metrics");
            let width = guest_metrics.iter().map(|(name, _)| name.len()).max().unwrap_or(0).max(12);
            for (name, _) in guest_metrics {
                let Some(total) = metrics.total(name, &[]) else { continue };
                let _ = writeln!(text, "    {name:<width$}  {}", self.figures(&total.data, total.kind));
                let tagged: Vec<_> = metrics.series.iter().filter(|s| s.name == *name && !s.tags.is_empty()).collect();
                if tagged.len() <= MAX_TAGGED_LINES {
                    for series in tagged {
                        let tags: Vec<String> = series.tags.iter().map(|(t, v)| format!("{t}={}", escape(v))).collect();
                        let _ =
                            writeln!(text, "      {{{}}}  {}", tags.join(","), self.figures(&series.data, series.kind));
                    }
                }
            }
        }
        let checks: Vec<_> = metrics.series.iter().filter(|s| s.name == "checks").collect();
        if !checks.is_empty() {
            let _ = writeln!(text, "  checks");
            for series in checks {
                let SeriesData::Rate { hits, total } = series.data else { continue };
                let name = series.tags.iter().find(|(t, _)| t == "check").map_or("", |(_, v)| v.as_str());
                let others: Vec<String> = series
                    .tags
                    .iter()
                    .filter(|(t, _)| t != "check")
                    .map(|(t, v)| format!("{t}={}", escape(v)))
                    .collect();
                let others = if others.is_empty() { String::new() } else { format!(" {{{}}}", others.join(",")) };
                let mark = if hits == total { "passed" } else { "FAILED" };
                let failed = if hits == total { String::new() } else { format!(", {} failed", total - hits) };
                let _ = writeln!(text, "    {mark}  {}{others}: {hits} of {total}{failed}", escape(name));
            }
        }
        let d = metrics.dropped;
        if d.total() > 0 {
            let parts: Vec<String> = [
                (d.malformed, "malformed (names, tags)"),
                (d.wrong_kind, "of a name used as another kind"),
                (d.capped, "past the cap on series"),
            ]
            .into_iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, why)| format!("{count} {why}"))
            .collect();
            let _ = writeln!(text, "  dropped    {} measurements: {}", d.total(), parts.join(", "));
        }
    }

    fn figures(&self, data: &SeriesData, kind: Kind) -> String {
        let seconds = self.elapsed.as_secs_f64().max(1e-3);
        match (data, kind) {
            (SeriesData::Counter(total), _) => format!("{total} ({:.1}/s)", *total as f64 / seconds),
            (SeriesData::Rate { hits, total }, _) => {
                let share = if *total == 0 { 0.0 } else { *hits as f64 * 100.0 / *total as f64 };
                format!("{share:.2}% ({hits} of {total})")
            }
            (SeriesData::Trend(values), Kind::Trend(unit)) => {
                format!("{} ({} values)", percentiles(values, unit), values.len())
            }
            (SeriesData::Trend(values), _) => percentiles(values, TrendUnit::Plain),
        }
    }
}

/// p50, p90, p95, p99 and max, in one unit chosen by the largest.
fn percentiles(values: &Histogram<u64>, unit: TrendUnit) -> String {
    if values.is_empty() {
        return "none measured".to_owned();
    }
    let figures = [0.5, 0.9, 0.95, 0.99].map(|q| values.value_at_quantile(q));
    let max = values.max();
    // The unit by the largest figure, the decimals by the smallest (a p50 of 0.25 ms beside a max of 167 ms).
    let (divisor, decimals, suffix) = match (unit, max, figures[0]) {
        (TrendUnit::Plain, _, _) => (1.0, 0, ""),
        (TrendUnit::Micros, 0..10_000_000, 0..10_000) => (1000.0, 2, " ms"),
        (TrendUnit::Micros, 0..10_000_000, _) => (1000.0, 1, " ms"),
        (TrendUnit::Micros, _, _) => (1e6, 2, " s"),
    };
    let show = |v: u64| format!("{:.decimals$}", v as f64 / divisor);
    format!(
        "p50 {}, p90 {}, p95 {}, p99 {}, max {}{suffix}",
        show(figures[0]),
        show(figures[1]),
        show(figures[2]),
        show(figures[3]),
        show(max)
    )
}
