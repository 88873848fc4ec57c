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
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(wildcard_match(pattern.as_bytes(), text.as_bytes()), expected, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn hosts_longer_than_dns_allows_are_invalid() {
        let host = "a.".repeat(127) + "b";
        assert!(parse_ws_url(&format!("ws://{host}/")).is_err());
        assert!(parse_ws_url(&format!("ws://{}/", &host[4..])).is_ok());
        let huge = format!("ws://{}b/", "a.".repeat(100_000));
        assert!(parse_ws_url(&huge).is_err());
    }

    #[test]
    fn only_websocket_urls_with_a_host_and_no_fragment() {
        for bad in ["http://h/", "ws://", "ws://h/#x", "not a url"] {
            assert!(parse_ws_url(bad).is_err(), "{bad}");
        }
        assert!(parse_ws_url("wss://[::1]:9443/chat?x=1").is_ok());
    }
}
