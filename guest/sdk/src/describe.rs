//! Human-readable descriptions of the WIT's error and close values, so every guest words them alike.

use std::fmt;

use crate::{CloseFrame, ErrorCode};

/// A one-line description of an error, for people (the generated `Display` shows the Rust value), safe to print:
/// the peer's words in it (a status line, a `Location`, a close reason) are [escaped](crate::escape).
pub fn describe(error: &ErrorCode) -> String {
    crate::escape(&Described(error).to_string()).into_owned()
}

struct Described<'a>(&'a ErrorCode);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ErrorCode::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            ErrorCode::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            ErrorCode::Denied(why) => write!(f, "not allowed: {why}"),
            ErrorCode::Dns(why) => write!(f, "DNS lookup failed: {why}"),
            ErrorCode::Refused(why) => write!(f, "connection refused: {why}"),
            ErrorCode::Proxy(why) => write!(f, "proxy error: {why}"),
            ErrorCode::KeepaliveTimeout => write!(f, "connection lost: no pong to a keepalive ping in time"),
            ErrorCode::Tls(why) => write!(f, "TLS error: {why}"),
            ErrorCode::Timeout => write!(f, "timed out while opening the connection"),
            ErrorCode::HttpStatus(response) => {
                write!(f, "server rejected WebSocket connection: HTTP {} {}", response.status, response.reason)?;
                let location = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case("location"));
                match location {
                    Some(location) if (300..400).contains(&response.status) => {
                        write!(f, " (Location: {})", location.value)
                    }
                    // The server's own explanation, as curl would show it: the body's first line, cut.
                    _ => match first_line(&response.body) {
                        Some(line) => write!(f, ": {line}"),
                        None => Ok(()),
                    },
                }
            }
            ErrorCode::TooManyRedirects(last) => write!(f, "too many redirects (last: {last})"),
            ErrorCode::Protocol(why) => write!(f, "protocol error: {why}"),
            ErrorCode::MessageTooLarge(size) => write!(f, "message too large ({size} bytes)"),
            ErrorCode::Closed(frame) => write!(f, "connection closed: {frame}"),
            ErrorCode::Limit(why) => write!(f, "limit reached: {why}"),
            ErrorCode::Io(why) => write!(f, "{why}"),
        }
    }
}

/// The first non-empty line of a response body, at most 200 characters (with `...` when cut).
fn first_line(body: &[u8]) -> Option<String> {
    const MOST: usize = 200;
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|line| !line.is_empty())?;
    Some(match line.char_indices().nth(MOST) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    })
}

impl fmt::Display for CloseFrame {
    /// `1000 (OK)`, or `4001 (the peer's reason)` when the peer gave a reason, [escaped](crate::escape).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{} ({})", self.code, close_code_name(self.code))
        } else {
            write!(f, "{} ({})", self.code, crate::escape(&self.reason))
        }
    }
}

/// The name RFC 6455 (and the IANA registry) gives a close code.
pub fn close_code_name(code: u16) -> &'static str {
    match code {
        1000 => "OK",
        1001 => "going away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no status received",
        1006 => "abnormal closure",
        1007 => "invalid frame payload data",
        1008 => "policy violation",
        1009 => "message too big",
        1010 => "mandatory extension",
        1011 => "internal error",
        1012 => "service restart",
        1013 => "try again later",
        1014 => "bad gateway",
        1015 => "TLS handshake failure",
        3000..=3999 => "registered",
        4000..=4999 => "private use",
        _ => "unknown",
    }
}
