//! `--threshold` expressions, k6's form: `METRIC[{TAG:VALUE,...}][.FIGURE] OP NUMBER[UNIT]`, such as `rtt.p99<50ms`,
//! `checks.rate>0.99`, `connect.failed<1%` or `my_counter>100`. Parsed before the run (a malformed one is a usage
//! error), measured against the report after it, and again after `report merge`.

use std::fmt;

use hdrhistogram::Histogram;
use wsrun::metrics::{Kind, SeriesData, TrendUnit};

use super::{bytes_per_second, millis, Report};

/// A threshold, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// As written.
    pub text: String,
    metric: String,
    filter: Vec<(String, String)>,
    figure: Option<Figure>,
    op: Op,
    limit: Limit,
}

/// Which figure of a metric is compared.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Figure {
    /// A counter's total, or a trend's number of values.
    Count,
    /// A counter's total per second of the run, or a rate's share of hits.
    Rate,
    /// The share of failures of a built-in: `connect`, `sessions` or `http`.
    Failed,
    Avg,
    Min,
    Max,
    /// A percentile, 0 to 100.
    Percentile(f64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// The number compared with, in the metric's own unit once known.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Limit {
    /// A time, in microseconds.
    Micros(f64),
    /// A share, 0 to 1 (written as a percentage).
    Share(f64),
    Plain(f64),
}

/// What a threshold measured, and whether it held.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    /// The measured figure, for people ("0.31 ms", "98.5%"), or why nothing was measured.
    pub measured: String,
}

/// Built-in metrics: what the host measures itself, and which figures they have.
const BUILT_IN: &[(&str, &str)] = &[
    ("connect", "a trend of connect times, and .failed"),
    ("session", "a trend of session durations"),
    ("sessions", ".failed (the share of sessions that failed) and .count"),
    ("http", "a trend of HTTP response times, and .failed"),
    ("messages_sent", "a counter"),
    ("messages_received", "a counter"),
    ("bytes_sent", "a counter"),
    ("bytes_received", "a counter"),
];

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let invalid = |why: &str| {
            format!(
                "invalid --threshold {text:?}: {why} (for example rtt.p99<50ms, checks.rate>0.99, connect.failed<1%)"
            )
        };
        let (at, op) = find_op(text).ok_or_else(|| invalid("no comparison (<, <=, >, >=, ==, !=)"))?;
        let (left, right) = (text[..at].trim(), text[at + op_len(op)..].trim());
        let name_end = left.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(left.len());
        let metric = &left[..name_end];
        if metric.is_empty() || metric.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(invalid("no metric name before the comparison"));
        }
        let mut rest = &left[name_end..];
        let mut filter = Vec::new();
        if let Some(inside) = rest.strip_prefix('{') {
            let end = inside.find('}').ok_or_else(|| invalid("a tag filter without its closing }"))?;
            for pair in inside[..end].split(',').filter(|p| !p.trim().is_empty()) {
                let (tag, value) = pair.split_once(':').ok_or_else(|| invalid("a tag filter is TAG:VALUE,..."))?;
                filter.push((tag.trim().to_owned(), value.trim().to_owned()));
            }
            rest = &inside[end + 1..];
        }
        let figure = match rest {
            "" => None,
            _ => Some(rest.strip_prefix('.').and_then(parse_figure).ok_or_else(|| {
                invalid(&format!("unknown figure {rest:?} (count, rate, failed, avg, min, max, med, p95, p99.9...)"))
            })?),
        };
        let limit = parse_limit(right)
            .ok_or_else(|| invalid(&format!("{right:?} is not a number (like 50ms, 1s, 1%, 0.99, 100)")))?;
        let threshold =
            Threshold { text: text.trim().to_owned(), metric: metric.to_owned(), filter, figure, op, limit };
        threshold.check_built_in().map_err(|why| invalid(&why))?;
        Ok(threshold)
    }

    /// A built-in metric takes only its own figures, and no tags (but `checks`, which guests record).
    fn check_built_in(&self) -> Result<(), String> {
        let Some((_, has)) = BUILT_IN.iter().find(|(name, _)| *name == self.metric) else {
            return match self.figure {
                Some(Figure::Failed) => {
                    Err(format!("only connect, sessions and http have .failed, not {}", self.metric))
                }
                _ => Ok(()),
            };
        };
        let fits = match (self.metric.as_str(), self.figure) {
            (_, None) => self.metric.ends_with("_sent") || self.metric.ends_with("_received"),
            ("sessions", Some(figure)) => matches!(figure, Figure::Failed | Figure::Count),
            ("connect" | "http", Some(_)) => self.figure != Some(Figure::Rate),
            ("session", Some(figure)) => figure != Figure::Failed && figure != Figure::Rate,
            (_, Some(figure)) => matches!(figure, Figure::Count | Figure::Rate),
        };
        match (fits, self.filter.is_empty()) {
            (true, true) => Ok(()),
            (_, false) => Err(format!("the built-in metric {} has no tags", self.metric)),
            (false, _) => Err(format!("{} has {has}", self.metric)),
        }
    }

    /// Measure the threshold against a report.
    pub fn judge(&self, report: &Report) -> Verdict {
        match self.measure(report) {
            Ok((value, shown)) => {
                Verdict { passed: self.op.holds(value, self.limit_in(shown.kind)), measured: shown.text }
            }
            Err(why) => Verdict { passed: false, measured: why },
        }
    }

    fn limit_in(&self, kind: ValueKind) -> f64 {
        match (self.limit, kind) {
            (Limit::Micros(us), _) => us,
            // A bare number against a time is in milliseconds, as in k6.
            (Limit::Plain(n), ValueKind::Micros) => n * 1000.0,
            (Limit::Plain(n) | Limit::Share(n), _) => n,
        }
    }

    fn measure(&self, report: &Report) -> Result<(f64, Shown), String> {
        let figure = self.figure;
        match (self.metric.as_str(), figure) {
            ("connect", Some(Figure::Failed)) => {
                let t = &report.traffic;
                return share(t.failed_connects, t.connects + t.failed_connects, "no connection was attempted");
            }
            ("sessions", Some(Figure::Failed)) => {
                return share(report.outcomes.failed, report.sessions, "no session ran")
            }
            ("sessions", _) => return Ok(plain(report.sessions)),
            ("http", Some(Figure::Failed)) => {
                return share(report.http.failed, report.http.requests, "no HTTP request was made")
            }
            ("connect", _) => return trend(&report.connect_us, TrendUnit::Micros, figure, &self.metric),
            ("session", _) => return trend(&report.duration_us, TrendUnit::Micros, figure, &self.metric),
            ("http", _) => return trend(&report.http_us, TrendUnit::Micros, figure, &self.metric),
            _ => {}
        }
        let seconds = report.elapsed.as_secs_f64().max(1e-3);
        let counted = |total: u64, is_bytes: bool| match figure {
            Some(Figure::Rate) => {
                let per = total as f64 / seconds;
                Ok((per, Shown::plain(if is_bytes { bytes_per_second(per) } else { format!("{per:.1}/s") })))
            }
            _ => Ok(plain(total)),
        };
        let t = &report.traffic;
        match self.metric.as_str() {
            "messages_sent" => return counted(t.messages_sent, false),
            "messages_received" => return counted(t.messages_received, false),
            "bytes_sent" => return counted(t.bytes_sent, true),
            "bytes_received" => return counted(t.bytes_received, true),
            _ => {}
        }
        let series = report
            .metrics
            .total(&self.metric, &self.filter)
            .ok_or_else(|| format!("not measured: no session recorded {}", self.metric_text()))?;
        match (&series.data, series.kind) {
            (SeriesData::Counter(total), _) => match figure {
                None | Some(Figure::Count | Figure::Rate) => counted(*total, false),
                _ => Err(format!("{} is a counter: compare its total (.count) or .rate per second", self.metric)),
            },
            (SeriesData::Rate { hits, total }, _) => match figure {
                None | Some(Figure::Rate) => share(*hits, *total, "no events"),
                Some(Figure::Count) => Ok(plain(*total)),
                _ => Err(format!("{} is a rate: compare its .rate", self.metric)),
            },
            (SeriesData::Trend(values), Kind::Trend(unit)) => trend(values, unit, figure, &self.metric),
            (SeriesData::Trend(_), _) => unreachable!("a trend's kind is a trend"),
        }
    }

    fn metric_text(&self) -> String {
        match self.filter.is_empty() {
            true => self.metric.clone(),
            false => {
                let pairs: Vec<String> = self.filter.iter().map(|(t, v)| format!("{t}:{v}")).collect();
                format!("{}{{{}}}", self.metric, pairs.join(","))
            }
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A measured figure as shown, and what it is.
struct Shown {
    text: String,
    kind: ValueKind,
}

#[derive(Clone, Copy)]
enum ValueKind {
    Micros,
    Share,
    Plain,
}

impl Shown {
    fn plain(text: String) -> Self {
        Shown { text, kind: ValueKind::Plain }
    }
}

fn plain(n: u64) -> (f64, Shown) {
    (n as f64, Shown::plain(n.to_string()))
}

fn share(part: u64, whole: u64, none: &str) -> Result<(f64, Shown), String> {
    if whole == 0 {
        return Err(format!("not measured: {none}"));
    }
    let value = part as f64 / whole as f64;
    Ok((value, Shown { text: format!("{:.2}% ({part} of {whole})", value * 100.0), kind: ValueKind::Share }))
}

fn trend(values: &Histogram<u64>, unit: TrendUnit, figure: Option<Figure>, name: &str) -> Result<(f64, Shown), String> {
    let figure =
        figure.ok_or_else(|| format!("{name} is a trend: say which figure ({name}.p95, {name}.avg, {name}.max...)"))?;
    if values.is_empty() {
        return Err(format!("not measured: {name} has no values"));
    }
    let value = match figure {
        Figure::Count => return Ok(plain(values.len())),
        Figure::Avg => values.mean(),
        Figure::Min => values.min() as f64,
        Figure::Max => values.max() as f64,
        Figure::Percentile(p) => values.value_at_quantile(p / 100.0) as f64,
        Figure::Rate | Figure::Failed => {
            return Err(format!("{name} is a trend: .rate and .failed are not its figures"))
        }
    };
    Ok(match unit {
        TrendUnit::Micros => (value, Shown { text: millis(value.round() as u64), kind: ValueKind::Micros }),
        TrendUnit::Plain => {
            (value, Shown::plain(format!("{value:.2}").trim_end_matches('0').trim_end_matches('.').to_owned()))
        }
    })
}

impl Op {
    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
            Op::Eq => value == limit,
            Op::Ne => value != limit,
        }
    }
}

fn find_op(text: &str) -> Option<(usize, Op)> {
    let at = text.find(['<', '>', '=', '!'])?;
    let op = match &text[at..] {
        t if t.starts_with("<=") => Op::Le,
        t if t.starts_with(">=") => Op::Ge,
        t if t.starts_with("==") => Op::Eq,
        t if t.starts_with("!=") => Op::Ne,
        t if t.starts_with('<') => Op::Lt,
        t if t.starts_with('>') => Op::Gt,
        _ => return None,
    };
    Some((at, op))
}

fn op_len(op: Op) -> usize {
    match op {
        Op::Lt | Op::Gt => 1,
        _ => 2,
    }
}

fn parse_figure(text: &str) -> Option<Figure> {
    Some(match text {
        "count" => Figure::Count,
        "rate" => Figure::Rate,
        "failed" => Figure::Failed,
        "avg" => Figure::Avg,
        "min" => Figure::Min,
        "max" => Figure::Max,
        "med" => Figure::Percentile(50.0),
        _ => {
            let number =
                text.strip_prefix("p(").and_then(|t| t.strip_suffix(')')).or_else(|| text.strip_prefix('p'))?;
            match number.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 && !number.starts_with('+') => Figure::Percentile(p),
                _ => return None,
            }
        }
    })
}

fn parse_limit(text: &str) -> Option<Limit> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(text.len());
    let number: f64 = text[..split].parse().ok().filter(|n: &f64| n.is_finite())?;
    Some(match text[split..].trim() {
        "" => Limit::Plain(number),
        "%" => Limit::Share(number / 100.0),
        "us" | "µs" => Limit::Micros(number),
        "ms" => Limit::Micros(number * 1e3),
        "s" => Limit::Micros(number * 1e6),
        "m" => Limit::Micros(number * 60e6),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_users_write() {
        let t = Threshold::parse("rtt.p99<50ms").unwrap();
        assert_eq!(
            (t.metric.as_str(), t.figure, t.op, t.limit),
            ("rtt", Some(Figure::Percentile(99.0)), Op::Lt, Limit::Micros(50_000.0))
        );
        let t = Threshold::parse("checks.rate > 0.99").unwrap();
        assert_eq!((t.figure, t.op, t.limit), (Some(Figure::Rate), Op::Gt, Limit::Plain(0.99)));
        assert_eq!(Threshold::parse("connect.failed<1%").unwrap().limit, Limit::Share(0.01));
        assert_eq!(Threshold::parse("my_counter>=100").unwrap().figure, None);
        let t = Threshold::parse("rtt{kind:ping,room:a}.p(99.9)<=2s").unwrap();
        assert_eq!(t.filter, [("kind".to_owned(), "ping".to_owned()), ("room".to_owned(), "a".to_owned())]);
        assert_eq!((t.figure, t.limit), (Some(Figure::Percentile(99.9)), Limit::Micros(2e6)));
        assert_eq!(Threshold::parse("rtt.med!=0").unwrap().figure, Some(Figure::Percentile(50.0)));
    }

    #[test]
    fn malformed_ones_say_why() {
        for (text, why) in [
            ("rtt.p99", "no comparison"),
            ("<5", "no metric name"),
            ("rtt.p999x<5", "unknown figure"),
            ("rtt.p0<5", "unknown figure"),
            ("rtt.p99<fast", "not a number"),
            ("rtt.p99<5 parsecs", "not a number"),
            ("rtt{kind<5", "closing }"),
            ("connect<5ms", "connect has a trend"),
            ("connect{a:b}.p99<5ms", "has no tags"),
            ("sessions.p99<5", "sessions has .failed"),
            ("rtt.failed<1%", "only connect, sessions and http"),
        ] {
            let error = Threshold::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
