//! The guests' metrics in a report: each series with its figures (trends as HdrHistogram V2, like the report's own
//! histograms), added up exactly across shards, and summed over a name (and a tag filter) for the summary and the
//! thresholds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wsrun::metrics::{Dropped, Kind, Series, SeriesData, TrendUnit};

use super::{decode, encode};

/// The metrics of a run: every series, and what was not kept.
#[derive(Clone, Debug, Default)]
pub struct RunMetrics {
    pub series: Vec<Series>,
    pub dropped: Dropped,
}

/// One series as the report's JSON has it.
#[derive(Serialize, Deserialize)]
pub struct SeriesFile {
    name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
    /// `counter`, `trend` (durations, in microseconds), `value-trend` (plain numbers) or `rate`.
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hits: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    histogram: Option<String>,
    /// A trend's percentiles, spelled out for readers without an HdrHistogram library.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    percentiles: Option<BTreeMap<String, u64>>,
}

/// Measurements dropped, as the JSON has them.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct DroppedFile {
    malformed: u64,
    wrong_kind: u64,
    capped: u64,
}

impl From<Dropped> for DroppedFile {
    fn from(d: Dropped) -> Self {
        DroppedFile { malformed: d.malformed, wrong_kind: d.wrong_kind, capped: d.capped }
    }
}

impl From<DroppedFile> for Dropped {
    fn from(d: DroppedFile) -> Self {
        Dropped { malformed: d.malformed, wrong_kind: d.wrong_kind, capped: d.capped }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Trend(TrendUnit::Micros) => "trend",
        Kind::Trend(TrendUnit::Plain) => "value-trend",
        Kind::Rate => "rate",
    }
}

impl SeriesFile {
    pub fn of(series: &Series) -> Result<Self, String> {
        let mut file = SeriesFile {
            name: series.name.clone(),
            tags: series.tags.iter().cloned().collect(),
            kind: kind_name(series.kind).to_owned(),
            count: None,
            hits: None,
            histogram: None,
            percentiles: None,
        };
        match &series.data {
            SeriesData::Counter(total) => file.count = Some(*total),
            SeriesData::Rate { hits, total } => (file.hits, file.count) = (Some(*hits), Some(*total)),
            SeriesData::Trend(values) => {
                file.count = Some(values.len());
                file.histogram = Some(encode(values)?);
                file.percentiles = Some(
                    [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)]
                        .into_iter()
                        .map(|(name, q)| (name.to_owned(), values.value_at_quantile(q)))
                        .chain([("min".to_owned(), values.min()), ("max".to_owned(), values.max())])
                        .collect(),
                );
            }
        }
        Ok(file)
    }

    pub fn read(self) -> Result<Series, String> {
        let kind = match self.kind.as_str() {
            "counter" => Kind::Counter,
            "trend" => Kind::Trend(TrendUnit::Micros),
            "value-trend" => Kind::Trend(TrendUnit::Plain),
            "rate" => Kind::Rate,
            other => return Err(format!("metric {:?} is of an unknown kind {other:?}", self.name)),
        };
        let missing = || format!("metric {:?} lacks its figures", self.name);
        let data = match kind {
            Kind::Counter => SeriesData::Counter(self.count.ok_or_else(missing)?),
            Kind::Rate => {
                SeriesData::Rate { hits: self.hits.ok_or_else(missing)?, total: self.count.ok_or_else(missing)? }
            }
            Kind::Trend(_) => SeriesData::Trend(decode(self.histogram.as_deref().ok_or_else(missing)?)?),
        };
        Ok(Series { name: self.name, tags: self.tags.into_iter().collect(), kind, data })
    }
}

impl RunMetrics {
    /// Add another shard's metrics: series of the same name and tags add up (a name of two kinds is refused).
    pub fn merge(&mut self, other: &RunMetrics) -> Result<(), String> {
        for theirs in &other.series {
            match self.series.iter_mut().find(|mine| (&mine.name, &mine.tags) == (&theirs.name, &theirs.tags)) {
                Some(mine) => add(mine, theirs)?,
                None => {
                    if let Some(mine) =
                        self.series.iter().find(|mine| mine.name == theirs.name && mine.kind != theirs.kind)
                    {
                        return Err(format!(
                            "metric {} is a {} in one report and a {} in another",
                            theirs.name,
                            kind_name(mine.kind),
                            kind_name(theirs.kind)
                        ));
                    }
                    self.series.push(theirs.clone());
                }
            }
        }
        self.series.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        let (d, o) = (&mut self.dropped, other.dropped);
        (d.malformed, d.wrong_kind, d.capped) =
            (d.malformed + o.malformed, d.wrong_kind + o.wrong_kind, d.capped + o.capped);
        Ok(())
    }

    /// The names, in order, each with its kind.
    pub fn names(&self) -> Vec<(&str, Kind)> {
        let mut names: Vec<(&str, Kind)> = Vec::new();
        for series in &self.series {
            if names.last().map(|(name, _)| *name) != Some(series.name.as_str()) {
                names.push((&series.name, series.kind));
            }
        }
        names
    }

    /// The series of `name` whose tags include every one of `filter`, added up into one; `None` when there is none.
    pub fn total(&self, name: &str, filter: &[(String, String)]) -> Option<Series> {
        let mut matching =
            self.series.iter().filter(|s| s.name == name && filter.iter().all(|pair| s.tags.contains(pair)));
        let mut total = matching.next()?.clone();
        total.tags = filter.to_vec();
        for series in matching {
            add(&mut total, series).ok()?;
        }
        Some(total)
    }
}

fn add(mine: &mut Series, theirs: &Series) -> Result<(), String> {
    match (&mut mine.data, &theirs.data) {
        (SeriesData::Counter(a), SeriesData::Counter(b)) => *a = a.saturating_add(*b),
        (SeriesData::Rate { hits, total }, SeriesData::Rate { hits: h, total: t }) => {
            *hits += h;
            *total += t;
        }
        (SeriesData::Trend(a), SeriesData::Trend(b)) if mine.kind == theirs.kind => {
            a.add(b).map_err(|e| format!("cannot merge the histograms of metric {}: {e:?}", mine.name))?
        }
        _ => return Err(format!("metric {} is of two kinds", mine.name)),
    }
    Ok(())
}
