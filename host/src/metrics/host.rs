//! The `wsrun:ws/metrics` interface (`wit/metrics.wit`) over a session's [`Metrics`].

use std::time::Duration;

use wasmtime::component::{HasData, Linker};

use super::store::Metrics;
use crate::bindings::wsrun::ws::metrics::{Host, Tag};

/// A store's data that holds the metrics its guest records into.
pub trait MetricsView: Send {
    /// The metrics of this session (often shared by a whole run).
    fn metrics(&mut self) -> &Metrics;
}

struct HasMetrics;

impl HasData for HasMetrics {
    type Data<'a> = &'a Metrics;
}

/// Add the `wsrun:ws/metrics` interface to `linker`.
pub fn add_to_linker<T: MetricsView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    crate::bindings::wsrun::ws::metrics::add_to_linker::<T, HasMetrics>(linker, T::metrics)
}

fn pairs(tags: Vec<Tag>) -> Vec<(String, String)> {
    tags.into_iter().map(|tag| (tag.name, tag.value)).collect()
}

// Recording never fails for the guest: what is not kept is counted (`Metrics::dropped`), not trapped.
impl Host for &Metrics {
    fn count(&mut self, name: String, delta: u64, tags: Vec<Tag>) -> wasmtime::Result<()> {
        Metrics::count(self, &name, delta, &pairs(tags));
        Ok(())
    }

    fn duration(&mut self, name: String, nanoseconds: u64, tags: Vec<Tag>) -> wasmtime::Result<()> {
        Metrics::duration(self, &name, Duration::from_nanos(nanoseconds), &pairs(tags));
        Ok(())
    }

    fn value(&mut self, name: String, value: u64, tags: Vec<Tag>) -> wasmtime::Result<()> {
        Metrics::value(self, &name, value, &pairs(tags));
        Ok(())
    }

    fn rate(&mut self, name: String, hit: bool, tags: Vec<Tag>) -> wasmtime::Result<()> {
        Metrics::rate(self, &name, hit, &pairs(tags));
        Ok(())
    }

    fn check(&mut self, name: String, passed: bool, tags: Vec<Tag>) -> wasmtime::Result<()> {
        Metrics::check(self, &name, passed, &pairs(tags));
        Ok(())
    }
}
