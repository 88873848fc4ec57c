//! Measurements for the run's summary, `--report` and `--threshold` (`wsrun:ws/metrics`), with tags written as
//! `&[("room", "lobby")]`. Recording never fails: what the host does not keep it counts as dropped.
//!
//! ```ignore
//! let sent = Instant::now();
//! // ... send, receive the reply ...
//! wsrun_guest::metrics::duration("rtt", sent.elapsed(), &[("kind", "echo")]);
//! wsrun_guest::metrics::check("reply matches", reply == message, &[]);
//! ```

use std::time::Duration;

use crate::wsrun::ws::metrics::{self as host, Tag};

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs.iter().map(|(name, value)| Tag { name: (*name).to_owned(), value: (*value).to_owned() }).collect()
}

/// Add `delta` to the counter `name`.
pub fn count(name: &str, delta: u64, tags_: &[(&str, &str)]) {
    host::count(name, delta, &tags(tags_));
}

/// Record a duration in the trend `name`.
pub fn duration(name: &str, took: Duration, tags_: &[(&str, &str)]) {
    host::duration(name, u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), &tags(tags_));
}

/// Record a plain value (a size, a count) in the trend `name`.
pub fn value(name: &str, value: u64, tags_: &[(&str, &str)]) {
    host::value(name, value, &tags(tags_));
}

/// Count an event of the rate `name`, a hit or not.
pub fn rate(name: &str, hit: bool, tags_: &[(&str, &str)]) {
    host::rate(name, hit, &tags(tags_));
}

/// Record the check `name`'s outcome; returns it, so a guest can go on with `if check(...)`.
pub fn check(name: &str, passed: bool, tags_: &[(&str, &str)]) -> bool {
    host::check(name, passed, &tags(tags_));
    passed
}
