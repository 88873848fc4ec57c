//! What a metric or tag name may be, and the names the host measures itself.

/// Names the host records itself (built-in metrics of a run's summary and thresholds); a guest may not use them.
pub const RESERVED: &[&str] = &[
    "connect",
    "session",
    "sessions",
    "http",
    "checks",
    "messages_sent",
    "messages_received",
    "bytes_sent",
    "bytes_received",
];

/// The longest metric or tag name.
pub(crate) const MAX_NAME: usize = 64;
/// The longest tag value, and the longest check name.
pub(crate) const MAX_VALUE: usize = 128;
/// The most tags one measurement may carry.
pub(crate) const MAX_TAGS: usize = 8;

/// Whether the host measures `name` itself.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// 1 to 64 characters of `A-Z a-z 0-9 _`, not starting with a digit: a name that reads the same in a threshold
/// expression, a JSON key and a plot's legend, and never needs escaping.
pub(crate) fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= MAX_NAME
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["rtt", "_x", "a1_B2", &"n".repeat(64)] {
            assert!(is_valid(good), "{good}");
        }
        for bad in ["", "1a", "a.b", "a b", "a-b", "é", &"n".repeat(65)] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
