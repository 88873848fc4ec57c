//! The time series of a run: one entry per second (sessions, connects, messages and bytes each way, and each
//! trend's percentiles), kept in the report and merged across shards by the second they fell in.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use wsrun::metrics::TrendUnit;

use super::{decode, encode};

/// What happened in one second of the run. Counts are of that second alone, but `running` (at its end).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Unix time of the second's start, in seconds.
    pub t: u64,
    pub running: u64,
    pub started: u64,
    pub ended: u64,
    pub failed: u64,
    pub connects: u64,
    pub failed_connects: u64,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
    /// Each trend's values in that second (all its tags together).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trends: BTreeMap<String, TrendSecond>,
}

/// A trend's values in one second: percentiles to read, the histogram to merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrendSecond {
    /// `us` (microseconds) or `plain`.
    pub unit: String,
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
    pub histogram: String,
}

impl TrendSecond {
    pub fn of(unit: TrendUnit, values: &Histogram<u64>) -> Result<Self, String> {
        Ok(TrendSecond {
            unit: match unit {
                TrendUnit::Micros => "us",
                TrendUnit::Plain => "plain",
            }
            .to_owned(),
            count: values.len(),
            p50: values.value_at_quantile(0.5),
            p90: values.value_at_quantile(0.9),
            p95: values.value_at_quantile(0.95),
            p99: values.value_at_quantile(0.99),
            max: values.max(),
            histogram: encode(values)?,
        })
    }
}

/// Add `other`'s seconds to `mine`: the same second adds up (trends' histograms exactly), the others join in order.
pub fn merge(mine: &mut Vec<Second>, other: &[Second]) -> Result<(), String> {
    let mut by_time: BTreeMap<u64, Second> = mine.drain(..).map(|s| (s.t, s)).collect();
    for theirs in other {
        let Some(second) = by_time.get_mut(&theirs.t) else {
            by_time.insert(theirs.t, theirs.clone());
            continue;
        };
        second.running += theirs.running;
        second.started += theirs.started;
        second.ended += theirs.ended;
        second.failed += theirs.failed;
        second.connects += theirs.connects;
        second.failed_connects += theirs.failed_connects;
        second.messages_sent += theirs.messages_sent;
        second.bytes_sent += theirs.bytes_sent;
        second.messages_received += theirs.messages_received;
        second.bytes_received += theirs.bytes_received;
        for (name, trend) in &theirs.trends {
            let Some(kept) = second.trends.get(name) else {
                second.trends.insert(name.clone(), trend.clone());
                continue;
            };
            if kept.unit != trend.unit {
                return Err(format!("trend {name} is of two units"));
            }
            let mut values = decode(&kept.histogram)?;
            values.add(decode(&trend.histogram)?).map_err(|e| format!("cannot merge histograms: {e:?}"))?;
            let unit = if trend.unit == "us" { TrendUnit::Micros } else { TrendUnit::Plain };
            second.trends.insert(name.clone(), TrendSecond::of(unit, &values)?);
        }
    }
    *mine = by_time.into_values().collect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_merge_by_time() {
        let trend = |values: &[u64]| {
            let mut h = super::super::histogram();
            for &v in values {
                h.record(v).unwrap();
            }
            TrendSecond::of(TrendUnit::Micros, &h).unwrap()
        };
        let second = |t, running, values: &[u64]| Second {
            t,
            running,
            messages_sent: 10,
            trends: [("rtt".to_owned(), trend(values))].into(),
            ..Second::default()
        };
        let mut mine = vec![second(100, 1, &[100]), second(101, 2, &[200])];
        merge(&mut mine, &[second(101, 3, &[300, 400]), second(102, 1, &[500])]).unwrap();
        assert_eq!(
            mine.iter().map(|s| (s.t, s.running, s.messages_sent)).collect::<Vec<_>>(),
            [(100, 1, 10), (101, 5, 20), (102, 1, 10)]
        );
        assert_eq!((mine[1].trends["rtt"].count, mine[1].trends["rtt"].max), (3, 400));
    }
}
