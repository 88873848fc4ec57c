//! The machine and this process, as the benchmarks print them: cores, memory, resident memory now.

pub fn rss_kib() -> i64 {
    status_field("/proc/self/status", "VmRSS:")
}

pub fn total_memory_mib() -> i64 {
    status_field("/proc/meminfo", "MemTotal:") / 1024
}

fn status_field(file: &str, field: &str) -> i64 {
    field_in(&std::fs::read_to_string(file).unwrap_or_default(), field)
}

/// The number after `field` (`VmRSS:`, `Pss:`) in a `/proc` file's text (kB there), 0 without one.
pub fn field_in(text: &str, field: &str) -> i64 {
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}
