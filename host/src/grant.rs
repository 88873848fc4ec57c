//! What a session may reach: the origins (scheme, host, port) its guest may connect to or send HTTP requests to.

use std::fmt;

use url::Url;

use crate::origin::{host_matches, parse_ws_url, MAX_HOST_LEN};

/// The network origins a session's guest may connect to. Deny by default: an empty grant allows nothing.
///
/// The `wsrun` command grants the origin of the URL it was given: that WebSocket origin only, not HTTP requests to
/// the same host, which need a pattern of their own (`http://host:port`, `https://host`, or one without a scheme).
/// Every hop of a connection is checked against the grant (the guest's URL and each redirect's target), and every
/// HTTP request (the host follows no HTTP redirect: a guest that follows one makes a new request, checked again); a
/// proxy is the user's choice of route, not a destination, and is not checked: the target asked of it is.
#[derive(Clone, Debug, Default)]
pub struct Grant {
    any: bool,
    patterns: Vec<OriginPattern>,
}

/// One allowed origin: an optional scheme, a host that may contain `*` wildcards, and an optional port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
}

/// A pattern given to [`OriginPattern::parse`] that is not one.
#[derive(Debug, thiserror::Error)]
#[error("invalid origin pattern {pattern:?}: {why}")]
pub struct PatternError {
    pattern: String,
    why: &'static str,
}

impl Grant {
    /// A grant that allows nothing.
    pub fn none() -> Self {
        Grant::default()
    }

    /// A grant that allows every origin.
    pub fn any() -> Self {
        Grant { any: true, patterns: Vec::new() }
    }

    /// A session's default grant: the origin of `url`, or nothing when it is not a `ws://` or `wss://` URL.
    pub fn origin_of_url(url: &str) -> Self {
        let mut grant = Grant::none();
        if let Ok(url) = parse_ws_url(url) {
            grant.allow_origin_of(&url);
        }
        grant
    }

    /// Allow the exact origin of `url` (its scheme, host and port).
    pub fn allow_origin_of(&mut self, url: &Url) -> &mut Self {
        if let Some(host) = url.host_str() {
            self.patterns.push(OriginPattern {
                scheme: Some(url.scheme().to_owned()),
                host: host.to_ascii_lowercase(),
                port: url.port_or_known_default(),
            });
        }
        self
    }

    /// Allow the origins `pattern` matches.
    pub fn allow(&mut self, pattern: OriginPattern) -> &mut Self {
        self.patterns.push(pattern);
        self
    }

    /// Allow every origin.
    pub fn allow_any(&mut self) -> &mut Self {
        self.any = true;
        self
    }

    /// Whether a connection to `url` is allowed. A host name longer than DNS allows (253 bytes) never is.
    pub fn allows(&self, url: &Url) -> bool {
        if url.host_str().is_none_or(|host| host.len() > MAX_HOST_LEN) {
            return false;
        }
        self.any || self.patterns.iter().any(|pattern| pattern.matches(url))
    }
}

impl OriginPattern {
    /// Parse `[scheme://]host[:port]`, where scheme is `ws`, `wss`, `http` or `https` (without one, the pattern matches
    /// all four), host may hold `*` wildcards (`*.example.com`, `127.0.0.*`, `*`) and IPv6 addresses are written in
    /// brackets (`[::1]:9000`). A pattern that looks like an address matches only
    /// addresses, a name pattern only names, a `*` label whole labels; without a port, any port of the host.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let error = |why| PatternError { pattern: pattern.to_owned(), why };
        let (scheme, rest) = match pattern.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, pattern),
        };
        if let Some(scheme) = &scheme {
            if !matches!(scheme.as_str(), "ws" | "wss" | "http" | "https") {
                return Err(error("the scheme must be ws, wss, http or https"));
            }
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| error("unclosed '['"))?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or_else(|| error("junk after ']'"))?),
            };
            (format!("[{host}]"), port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (rest.to_owned(), None),
            }
        };
        if host.is_empty() || host.contains('/') {
            return Err(error("expected [scheme://]host[:port]"));
        }
        let port = port.map(|port| port.parse::<u16>().map_err(|_| error("the port must be a number up to 65535")));
        Ok(OriginPattern { scheme, host: host.to_ascii_lowercase(), port: port.transpose()? })
    }

    fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.host() else { return false };
        self.scheme.as_deref().is_none_or(|scheme| scheme == url.scheme())
            && self.port.is_none_or(|port| Some(port) == url.port_or_known_default())
            && host_matches(&self.host, &host)
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = &self.scheme {
            write!(f, "{scheme}://")?;
        }
        f.write_str(&self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origin_of_url_allows_only_that_origin() {
        let mut grant = Grant::none();
        grant.allow_origin_of(&url("ws://127.0.0.1:9000/chat"));
        assert!(grant.allows(&url("ws://127.0.0.1:9000/other?x=1")));
        assert!(!grant.allows(&url("ws://127.0.0.1:9001/")));
        assert!(!grant.allows(&url("wss://127.0.0.1:9000/")));
        assert!(!grant.allows(&url("ws://localhost:9000/")));
    }

    #[test]
    fn patterns_match_hosts_ports_and_schemes() {
        let mut grant = Grant::none();
        grant.allow(OriginPattern::parse("*.example.com").unwrap());
        grant.allow(OriginPattern::parse("wss://[::1]:9443").unwrap());
        assert!(grant.allows(&url("wss://a.example.com/")));
        assert!(grant.allows(&url("ws://a.b.example.com:81/")));
        assert!(!grant.allows(&url("ws://example.com/")));
        assert!(grant.allows(&url("wss://[::1]:9443/")));
        assert!(!grant.allows(&url("ws://[::1]:9443/")));
    }

    #[test]
    fn http_needs_a_pattern_of_its_own() {
        let mut grant = Grant::origin_of_url("ws://127.0.0.1:9000/");
        assert!(!grant.allows(&url("http://127.0.0.1:9000/token")), "the URL's origin is WebSocket only");
        grant.allow(OriginPattern::parse("https://api.example.com").unwrap());
        assert!(grant.allows(&url("https://api.example.com/v1")));
        assert!(!grant.allows(&url("http://api.example.com/v1")));
        assert!(!grant.allows(&url("wss://api.example.com/")));
        grant.allow(OriginPattern::parse("*.example.org").unwrap());
        for any in ["ws://a.example.org/", "wss://a.example.org/", "http://a.example.org/", "https://a.example.org/"] {
            assert!(grant.allows(&url(any)), "{any}: a pattern without a scheme matches all four");
        }
        assert!(OriginPattern::parse("HTTP://x:80").unwrap().matches(&url("http://x/")), "default port of http");
    }

    #[test]
    fn a_long_host_is_refused_at_once() {
        let mut grant = Grant::none();
        grant.allow(OriginPattern::parse("*.*.*.*.example.com").unwrap());
        let long = format!("ws://{}x.example.com/", "a.".repeat(100_000));
        let started = std::time::Instant::now();
        assert!(!grant.allows(&url(&long)));
        // The worst case of matching itself, at the longest allowed host.
        let host = format!("{}example.org", "a.".repeat(120));
        assert!(!crate::origin::host_matches("*.*.*.*.*.*.*.*.example.com", &url::Host::Domain(&host)));
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["ftp://x", "", "x:port", "[::1", "a/b"] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_grant_allows_nothing_and_any_allows_all() {
        assert!(!Grant::none().allows(&url("ws://127.0.0.1/")));
        assert!(Grant::any().allows(&url("wss://anything:1/")));
        let mut grant = Grant::none();
        grant.allow_any();
        assert!(grant.allows(&url("wss://anything:1/")), "allow_any on a grant");
    }

    #[test]
    fn the_origin_of_a_url_and_nothing_for_what_is_not_one() {
        let grant = Grant::origin_of_url("ws://127.0.0.1:9000/chat");
        assert!(grant.allows(&url("ws://127.0.0.1:9000/")));
        assert!(!grant.allows(&url("ws://127.0.0.1:9001/")));
        assert!(!Grant::origin_of_url("http://127.0.0.1:9000/").allows(&url("ws://127.0.0.1:9000/")));
    }

    #[test]
    fn patterns_print_as_written() {
        for pattern in ["wss://*.example.com:443", "127.0.0.*", "[::1]:9000", "ws://localhost"] {
            assert_eq!(OriginPattern::parse(pattern).unwrap().to_string(), pattern);
        }
    }

    #[test]
    fn a_host_of_253_bytes_is_the_longest_allowed() {
        let longest = format!("{}b", "a.".repeat(126));
        assert_eq!(longest.len(), 253);
        assert!(Grant::any().allows(&url(&format!("ws://{longest}/"))));
        let mut over = url("ws://x/");
        over.set_host(Some(&format!("a{longest}"))).unwrap();
        assert!(!Grant::any().allows(&over), "254 bytes");
    }
}
