//! Where measurements are kept: one entry per series (a name and a tag set), within a cap on how many.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::name::{is_reserved, is_valid, MAX_TAGS, MAX_VALUE};

/// A series' tags, sorted by name, each name once.
pub type Tags = Vec<(String, String)>;

/// How many series a [`Metrics`] keeps. Past either cap, measurements of new series are dropped (and counted in
/// [`Dropped::capped`]); the series already kept go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsLimits {
    /// Distinct series of any kind. Default 1,000.
    pub max_series: usize,
    /// Of them, trends: each keeps a histogram (up to about 100 KiB for values spread from 1 us to an hour). Default
    /// 100.
    pub max_trends: usize,
}

impl Default for MetricsLimits {
    fn default() -> Self {
        MetricsLimits { max_series: 1_000, max_trends: 100 }
    }
}

/// What a metric is. A name keeps the kind of its first measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A total.
    Counter,
    /// A distribution of values (percentiles).
    Trend(TrendUnit),
    /// A share of hits among events. Checks are the rate `checks`, tagged `check` with each check's name.
    Rate,
}

/// What a trend's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrendUnit {
    /// Durations, kept in microseconds.
    Micros,
    /// Plain numbers.
    Plain,
}

/// The figures of one series.
#[derive(Clone, Debug, PartialEq)]
pub enum SeriesData {
    /// A counter's total.
    Counter(u64),
    /// A trend's values.
    Trend(Histogram<u64>),
    /// A rate's hits among all its events.
    Rate {
        /// Events that were hits.
        hits: u64,
        /// All events.
        total: u64,
    },
}

/// One metric under one set of tags, and its figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The metric's name.
    pub name: String,
    /// Its tags, sorted by name.
    pub tags: Tags,
    /// Its kind.
    pub kind: Kind,
    /// Its figures.
    pub data: SeriesData,
}

/// Measurements not kept, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// A name that is not 1-64 characters of `A-Z a-z 0-9 _`, a reserved name, a tag value or check name over
    /// 128 bytes, more than 8 tags, a tag twice.
    pub malformed: u64,
    /// A name already used for another kind of metric.
    pub wrong_kind: u64,
    /// A new series past [`MetricsLimits`].
    pub capped: u64,
}

impl Dropped {
    /// All the dropped measurements.
    pub fn total(&self) -> u64 {
        self.malformed + self.wrong_kind + self.capped
    }
}

/// The measurements of a run: any number of sessions record into one (it is `Sync`), the tool reads it at the end.
#[derive(Debug, Default)]
pub struct Metrics {
    limits: MetricsLimits,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    series: HashMap<String, Series>,
    kinds: HashMap<String, Kind>,
    trends: usize,
    dropped: Dropped,
    /// Per trend name (all its tags together): the values since the last [`Metrics::take_windows`], when asked for.
    windows: Option<HashMap<String, (TrendUnit, Histogram<u64>)>>,
}

/// A measurement, before it is added to its series.
enum Value {
    Count(u64),
    Trend(TrendUnit, u64),
    Rate(bool),
}

impl Value {
    fn kind(&self) -> Kind {
        match self {
            Value::Count(_) => Kind::Counter,
            Value::Trend(unit, _) => Kind::Trend(*unit),
            Value::Rate(_) => Kind::Rate,
        }
    }
}

impl Metrics {
    /// Measurements kept within `limits`.
    pub fn new(limits: MetricsLimits) -> Self {
        Metrics { limits, inner: Mutex::default() }
    }

    /// Also keep, for each trend, the values recorded since the last [`take_windows`](Metrics::take_windows): a
    /// tool that draws a time series takes them once a second.
    pub fn keep_windows(&self) {
        self.lock().windows.get_or_insert_with(HashMap::new);
    }

    /// The trends' values since the last call (per trend name, all tags together), and start anew.
    pub fn take_windows(&self) -> Vec<(String, TrendUnit, Histogram<u64>)> {
        let mut inner = self.lock();
        let Some(windows) = inner.windows.as_mut() else { return Vec::new() };
        let mut taken: Vec<_> = windows
            .iter_mut()
            .filter(|(_, (_, histogram))| !histogram.is_empty())
            .map(|(name, (unit, histogram))| {
                let values = histogram.clone();
                histogram.reset();
                (name.clone(), *unit, values)
            })
            .collect();
        taken.sort_by(|a, b| a.0.cmp(&b.0));
        taken
    }

    /// Add `delta` to a counter.
    pub fn count(&self, name: &str, delta: u64, tags: &[(String, String)]) {
        self.add(name, tags, Value::Count(delta));
    }

    /// Record a duration in a trend.
    pub fn duration(&self, name: &str, duration: Duration, tags: &[(String, String)]) {
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.add(name, tags, Value::Trend(TrendUnit::Micros, micros));
    }

    /// Record a plain value in a trend.
    pub fn value(&self, name: &str, value: u64, tags: &[(String, String)]) {
        self.add(name, tags, Value::Trend(TrendUnit::Plain, value));
    }

    /// Count an event of a rate.
    pub fn rate(&self, name: &str, hit: bool, tags: &[(String, String)]) {
        self.add(name, tags, Value::Rate(hit));
    }

    /// Record a check's outcome: an event of the rate `checks`, tagged `check` with its name (any text up to 128
    /// bytes).
    pub fn check(&self, name: &str, passed: bool, tags: &[(String, String)]) {
        if name.is_empty() || name.len() > MAX_VALUE || tags.iter().any(|(tag, _)| tag == "check") {
            self.lock().dropped.malformed += 1;
            return;
        }
        let mut tags = tags.to_vec();
        tags.push(("check".to_owned(), name.to_owned()));
        self.add_checked("checks", &tags, Value::Rate(passed));
    }

    /// Every series, sorted by name, then tags.
    pub fn series(&self) -> Vec<Series> {
        let mut all: Vec<Series> = self.lock().series.values().cloned().collect();
        all.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        all
    }

    /// The measurements not kept so far.
    pub fn dropped(&self) -> Dropped {
        self.lock().dropped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, name: &str, tags: &[(String, String)], value: Value) {
        if !is_valid(name) || is_reserved(name) {
            self.lock().dropped.malformed += 1;
            return;
        }
        self.add_checked(name, tags, value);
    }

    /// Add a measurement whose name is known to be good.
    fn add_checked(&self, name: &str, tags: &[(String, String)], value: Value) {
        let Some(key) = key_of(name, tags) else {
            self.lock().dropped.malformed += 1;
            return;
        };
        let kind = value.kind();
        let limits = self.limits;
        let mut inner = self.lock();
        let inner = &mut *inner;
        match inner.kinds.get(name) {
            Some(known) if *known != kind => {
                inner.dropped.wrong_kind += 1;
                return;
            }
            _ => {}
        }
        if !inner.series.contains_key(&key) {
            let is_trend = matches!(kind, Kind::Trend(_));
            if inner.series.len() >= limits.max_series || (is_trend && inner.trends >= limits.max_trends) {
                inner.dropped.capped += 1;
                return;
            }
            inner.trends += usize::from(is_trend);
            inner.kinds.entry(name.to_owned()).or_insert(kind);
            let data = match kind {
                Kind::Counter => SeriesData::Counter(0),
                Kind::Trend(_) => SeriesData::Trend(super::histogram()),
                Kind::Rate => SeriesData::Rate { hits: 0, total: 0 },
            };
            let mut sorted = tags.to_vec();
            sorted.sort();
            inner.series.insert(key.clone(), Series { name: name.to_owned(), tags: sorted, kind, data });
        }
        let series = inner.series.get_mut(&key).expect("just made");
        match (&mut series.data, value) {
            (SeriesData::Counter(total), Value::Count(delta)) => *total = total.saturating_add(delta),
            (SeriesData::Trend(histogram), Value::Trend(unit, value)) => {
                super::record(histogram, value);
                if let Some(windows) = inner.windows.as_mut() {
                    let (_, window) = windows.entry(name.to_owned()).or_insert_with(|| (unit, super::histogram()));
                    super::record(window, value);
                }
            }
            (SeriesData::Rate { hits, total }, Value::Rate(hit)) => {
                *hits += u64::from(hit);
                *total += 1;
            }
            _ => unreachable!("a series keeps its name's kind"),
        }
    }
}

/// The key of a series: its name and sorted tags, each part ended by a NUL (which no name has, and values are
/// checked for); `None` for tags the host does not keep.
fn key_of(name: &str, tags: &[(String, String)]) -> Option<String> {
    if tags.len() > MAX_TAGS
        || tags.iter().any(|(tag, value)| !is_valid(tag) || value.len() > MAX_VALUE || value.contains('\0'))
    {
        return None;
    }
    let mut sorted: Vec<&(String, String)> = tags.iter().collect();
    sorted.sort();
    if sorted.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return None;
    }
    let mut key =
        String::with_capacity(name.len() + 1 + tags.iter().map(|(t, v)| t.len() + v.len() + 2).sum::<usize>());
    key.push_str(name);
    key.push('\0');
    for (tag, value) in sorted {
        key.push_str(tag);
        key.push('\0');
        key.push_str(value);
        key.push('\0');
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs.iter().map(|(t, v)| (t.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_name_and_tag_set_is_a_series() {
        let metrics = Metrics::default();
        metrics.count("sent", 2, &[]);
        metrics.count("sent", 3, &[]);
        metrics.count("sent", 1, &tags(&[("room", "a"), ("kind", "x")]));
        metrics.count("sent", 1, &tags(&[("kind", "x"), ("room", "a")]));
        metrics.duration("rtt", Duration::from_micros(250), &[]);
        metrics.rate("ok", true, &[]);
        metrics.rate("ok", false, &[]);
        metrics.check("status is 200", true, &[]);
        let series = metrics.series();
        let names: Vec<(&str, usize)> = series.iter().map(|s| (s.name.as_str(), s.tags.len())).collect();
        assert_eq!(names, [("checks", 1), ("ok", 0), ("rtt", 0), ("sent", 0), ("sent", 2)]);
        assert_eq!(series[3].data, SeriesData::Counter(5));
        assert_eq!(series[4].data, SeriesData::Counter(2));
        assert_eq!(series[4].tags, tags(&[("kind", "x"), ("room", "a")]));
        assert_eq!(series[1].data, SeriesData::Rate { hits: 1, total: 2 });
        assert_eq!(series[0].tags, tags(&[("check", "status is 200")]));
        let SeriesData::Trend(rtt) = &series[2].data else { panic!() };
        assert_eq!((rtt.len(), rtt.max()), (1, rtt.highest_equivalent(250)));
        assert_eq!(metrics.dropped(), Dropped::default());
    }

    #[test]
    fn what_is_not_kept_is_counted() {
        let metrics = Metrics::new(MetricsLimits { max_series: 3, max_trends: 1 });
        metrics.count("a.b", 1, &[]);
        metrics.count("connect", 1, &[]);
        metrics.count("x", 1, &tags(&[("t", "1"), ("t", "2")]));
        metrics.count("x", 1, &tags(&[("bad tag", "1")]));
        metrics.check(&"c".repeat(129), true, &[]);
        metrics.count("x", 1, &[]);
        metrics.rate("x", true, &[]);
        metrics.duration("t1", Duration::from_millis(1), &[]);
        metrics.duration("t2", Duration::from_millis(1), &[]);
        metrics.count("y", 1, &[]);
        metrics.count("z", 1, &[]);
        assert_eq!(metrics.dropped(), Dropped { malformed: 5, wrong_kind: 1, capped: 2 });
        assert_eq!(metrics.series().len(), 3);
    }

    #[test]
    fn windows_hold_what_came_since_the_last_take() {
        let metrics = Metrics::default();
        metrics.duration("rtt", Duration::from_millis(1), &[]);
        metrics.keep_windows();
        metrics.duration("rtt", Duration::from_millis(2), &tags(&[("a", "1")]));
        metrics.duration("rtt", Duration::from_millis(3), &[]);
        let taken = metrics.take_windows();
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].0.as_str(), taken[0].1, taken[0].2.len()), ("rtt", TrendUnit::Micros, 2));
        assert!(metrics.take_windows().is_empty());
    }
}
