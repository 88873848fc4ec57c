//! What a WebSocket URL and an origin are, for both the grant (policy) and the dialer (transport): parsing a
//! `ws://` / `wss://` URL within the sizes DNS and servers allow, and matching host patterns in linear time.

use url::Url;

/// The longest host name DNS allows.
pub const MAX_HOST_LEN: usize = 253;

/// The longest URL a guest may pass (servers commonly refuse request lines past 8 to 16 KiB anyway).
pub const MAX_URL_LEN: usize = 64 << 10;

/// A `ws://` or `wss://` URL with a host of at most 253 bytes, no fragment; `Err` says why not.
pub fn parse_ws_url(url: &str) -> Result<Url, String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("a URL has at most {MAX_URL_LEN} bytes; this one has {}", url.len()));
    }
    let parsed = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(format!("{url}: the scheme must be ws:// or wss://"));
    }
    match parsed.host_str() {
        None => return Err(format!("{url}: no host")),
        Some(host) if host.len() > MAX_HOST_LEN => {
            return Err(format!("the host name has {} bytes; DNS allows at most {MAX_HOST_LEN}", host.len()))
        }
        Some(_) => {}
    }
    if parsed.fragment().is_some() {
        return Err(format!("{url}: a WebSocket URL has no #fragment"));
    }
    Ok(parsed)
}

/// Whether a pattern's host (lowercase, as [`OriginPattern`](crate::OriginPattern) keeps it) admits `host`.
///
/// A pattern that looks like an address matches only addresses: `127.0.0.*` (digits, dots and `*`) an IPv4 address
/// whose octets match part by part, `[...]` an IPv6 address, so no DNS name such as `127.0.0.1.attacker.example` can
/// pass for one. A name pattern matches only names, label by label: a label `*` stands for one or more whole labels
/// (`*.example.com`), a `*` inside a label for characters of that label alone (`api-*.example.com`). `*` alone
/// matches every host.
pub(crate) fn host_matches(pattern: &str, host: &url::Host<&str>) -> bool {
    if pattern == "*" {
        return true;
    }
    match host {
        url::Host::Domain(name) => !looks_like_address(pattern) && labels_match(pattern, &name.to_ascii_lowercase()),
        url::Host::Ipv4(address) => {
            let parts: Vec<&str> = pattern.split('.').collect();
            looks_like_address(pattern)
                && !pattern.starts_with('[')
                && parts.len() == 4
                && parts
                    .iter()
                    .zip(address.octets())
                    .all(|(part, octet)| wildcard_match(part.as_bytes(), octet.to_string().as_bytes()))
        }
        // As the URL writes it (`[::ffff:7f00:1]`), which is how a URL's own origin is granted.
        url::Host::Ipv6(address) => {
            pattern.starts_with('[')
                && wildcard_match(pattern.as_bytes(), url::Host::<&str>::Ipv6(*address).to_string().as_bytes())
        }
    }
}

/// `[...]`, or digits, dots and `*` with at least one digit: a pattern for addresses, never for names.
fn looks_like_address(pattern: &str) -> bool {
    pattern.starts_with('[')
        || (pattern.bytes().any(|c| c.is_ascii_digit())
            && pattern.bytes().all(|c| c.is_ascii_digit() || c == b'.' || c == b'*'))
}

/// A name against a name pattern, label by label: a `*` label is one or more whole labels. Quadratic in the labels
/// at worst (at most 127 in a name DNS allows), never exponential.
fn labels_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let name: Vec<&str> = name.split('.').collect();
    // matched[j]: the pattern's labels so far match the first j labels of the name.
    let mut matched = vec![false; name.len() + 1];
    matched[0] = true;
    for label in pattern {
        let mut next = vec![false; name.len() + 1];
        for j in 1..=name.len() {
            next[j] = if label == "*" {
                // One more label for this star, or its first.
                next[j - 1] || matched[j - 1]
            } else {
                matched[j - 1] && wildcard_match(label.as_bytes(), name[j - 1].as_bytes())
            };
        }
        matched = next;
    }
    matched[name.len()]
}

/// `*` matches any run of characters, everything else itself. The pieces between stars are found left to right,
/// each at its first place (which is always right for `*`-only patterns), so the time is linear in the text, never
/// the backtracking blow-up a guest could otherwise aim at with a long host name.
pub(crate) fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let mut pieces = pattern.split(|&c| c == b'*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let mut middle: Vec<&[u8]> = pieces.collect();
    // Without a star, the pattern is the whole text.
    let Some(last) = middle.pop() else { return rest.is_empty() };
    for piece in middle {
        match find(rest, piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Where `needle` first occurs in `haystack` (the standard library's linear substring search).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    // Hosts are ASCII once parsed; anything else cannot match an ASCII pattern piece anyway.
    let haystack = std::str::from_utf8(haystack).ok()?;
    haystack.find(std::str::from_utf8(needle).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_globs() {
        let cases = [
            ("*", "a.b", true),
            ("*.example.com", "example.com", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYc.", false),
            ("*ab", "aab", true),
            ("a*a", "a", false),
            ("x.*.y", "x..y", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            // A middle piece moves the search past itself, from where it was found.
            ("*bc*c", "xbc", false),
            ("*bc*c", "xbcc", true),
            // A middle piece that is not there fails the match.
            ("a*z*c", "abc", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(wildcard_match(pattern.as_bytes(), text.as_bytes()), expected, "{pattern} ~ {text}");
        }
    }

    fn host(url: &str) -> url::Host<String> {
        url::Url::parse(url).unwrap().host().unwrap().to_owned()
    }

    fn admits(pattern: &str, url: &str) -> bool {
        let host = host(url);
        let host = match &host {
            url::Host::Domain(name) => url::Host::Domain(name.as_str()),
            url::Host::Ipv4(a) => url::Host::Ipv4(*a),
            url::Host::Ipv6(a) => url::Host::Ipv6(*a),
        };
        host_matches(pattern, &host)
    }

    #[test]
    fn address_patterns_match_only_addresses() {
        assert!(admits("127.0.0.*", "ws://127.0.0.1:9/"));
        assert!(admits("127.0.0.*", "ws://127.0.0.255/"));
        assert!(!admits("127.0.0.*", "ws://127.0.0.1.attacker.example/"));
        assert!(!admits("127.0.0.*", "ws://127.0.0.attacker/"));
        assert!(!admits("127.0.0.*", "ws://127.0.1.1/"));
        assert!(!admits("127.0.0.1", "ws://127.0.0.1.attacker.example/"));
        assert!(admits("127.0.0.1", "ws://127.0.0.1/"));
        assert!(admits("[::1]", "ws://[::1]:9/"));
        assert!(!admits("[::1]", "ws://127.0.0.1/"));
        assert!(!admits("127.0.0.*", "ws://[::ffff:127.0.0.1]/"));
        assert!(!admits("[::2]", "ws://[::1]/"));
        // An address-like pattern has digits, dots and stars only: a name with a digit is a name pattern.
        assert!(admits("ws1.example.com", "ws://ws1.example.com/"));
        assert!(admits("[::ffff:7f00:1]", "ws://[::ffff:127.0.0.1]:9/"), "the URL's own way of writing it");
    }

    #[test]
    fn name_patterns_match_whole_labels_and_only_names() {
        assert!(admits("*.example.com", "ws://a.example.com/"));
        assert!(admits("*.example.com", "ws://a.b.example.com/"));
        assert!(!admits("*.example.com", "ws://example.com/"));
        assert!(!admits("*.example.com", "ws://evilexample.com/"));
        assert!(!admits("*example.com", "ws://a.example.com/"));
        assert!(admits("*example.com", "ws://evilexample.com/"));
        assert!(admits("api-*.example.com", "ws://api-eu.example.com/"));
        assert!(!admits("api-*.example.com", "ws://api-eu.evil.example.com/"));
        assert!(admits("example.*", "ws://example.org/"));
        assert!(admits("localhost", "ws://LOCALHOST/"));
        assert!(!admits("*.*.1", "ws://127.0.0.1/"));
        assert!(admits("*", "ws://127.0.0.1/") && admits("*", "ws://x.y/") && admits("*", "ws://[::1]/"));
    }

    #[test]
    fn hosts_longer_than_dns_allows_are_invalid() {
        let host = "a.".repeat(127) + "b";
        assert!(parse_ws_url(&format!("ws://{host}/")).is_err());
        // 253 bytes is the most DNS allows, and allowed.
        assert!(parse_ws_url(&format!("ws://{}/", &host[2..])).is_ok());
        assert!(parse_ws_url(&format!("ws://{}/", &host[1..])).is_err());
        assert!(parse_ws_url(&format!("ws://{}/", &host[4..])).is_ok());
        let huge = format!("ws://{}b/", "a.".repeat(100_000));
        assert!(parse_ws_url(&huge).is_err());
    }

    #[test]
    fn a_url_of_64_kibibytes_is_the_longest_allowed() {
        let url = |len: usize| format!("ws://h/{}", "a".repeat(len - "ws://h/".len()));
        assert!(parse_ws_url(&url(MAX_URL_LEN)).is_ok());
        assert!(parse_ws_url(&url(MAX_URL_LEN + 1)).is_err());
        assert!(parse_ws_url(&url(100)).is_ok());
    }

    #[test]
    fn only_websocket_urls_with_a_host_and_no_fragment() {
        for bad in ["http://h/", "ws://", "ws://h/#x", "not a url"] {
            assert!(parse_ws_url(bad).is_err(), "{bad}");
        }
        assert!(parse_ws_url("wss://[::1]:9443/chat?x=1").is_ok());
    }
}
