//! The `wsrun:ws/metrics` interface: measurements a guest records about its own work (counters, trends, rates and
//! checks, with tags), aggregated by the host with bounded memory.
//!
//! One [`Metrics`] collects what any number of sessions record: a tool gives the same one to every session of a run
//! ([`SessionBuilder::metrics`](crate::SessionBuilder::metrics)) and reads it at the end ([`Metrics::series`]). A
//! session given none records into one of its own, which nobody reads: the calls still cost next to nothing.

mod host;
mod name;
mod store;

pub use hdrhistogram::Histogram;
pub use host::{add_to_linker, MetricsView};
pub use name::{is_reserved, RESERVED};
pub use store::{Dropped, Kind, Metrics, MetricsLimits, Series, SeriesData, Tags, TrendUnit};

/// An empty histogram as the host keeps trends: 3 significant digits (values within 0.1%), growing to whatever it
/// is given.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits are valid")
}

/// Record `value` in `histogram`; past its reach, as its largest.
pub fn record(histogram: &mut Histogram<u64>, value: u64) {
    if histogram.record(value).is_err() {
        histogram.saturating_record(value);
    }
}
