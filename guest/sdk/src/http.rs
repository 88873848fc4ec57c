//! Outgoing HTTP requests (`wasi:http/outgoing-handler`), blocking: the call that often comes before a WebSocket
//! session (a token, a listen key, the `wss://` URL itself).
//!
//! The host sends each request within the session's grant (HTTP origins are granted with `--allow
//! http://host:port` or `https://host`), follows no redirect (a 3xx comes back here; following it is a new request,
//! checked again) and bounds bodies and times; its refusals arrive as [`HttpError::Code`].
//!
//! ```ignore
//! let token = wsrun_guest::http::post("http://127.0.0.1:8080/token", "text/plain", b"me")?.text();
//! let options = ConnectOptions { headers: vec![Header { name: "authorization".into(), value: format!("Bearer {token}") }], ..Default::default() };
//! ```

use std::fmt;
use std::time::Duration;

use crate::wasi::http::outgoing_handler;
use crate::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::wasi::io::streams::StreamError;

/// The most bytes `blocking-write-and-flush` takes in one call.
const WRITE_CHUNK: usize = 4096;
/// The most bytes read from a body in one call.
const READ_CHUNK: u64 = 64 << 10;

/// A response: its status, headers (names in lower case, as HTTP/2 writes them) and whole body.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in the order the server sent them.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case), as text if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the status is 3xx with a `Location` to follow.
    pub fn redirect(&self) -> Option<&str> {
        (300..400).contains(&self.status).then(|| self.header("location")).flatten()
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum HttpError {
    /// The URL is not `http://` or `https://` with a host.
    InvalidUrl(String),
    /// A header the host does not let a guest set, or an invalid name or value.
    Header(String),
    /// The host's or the network's answer: `HTTP-request-denied`, `connection-refused`, a time limit, ...
    Code(ErrorCode),
    /// Reading or writing a body failed, in the host's words ("HTTP response body size exceeds limit: 16777216
    /// bytes", "connection read timeout", "HTTP response timeout"): wasmtime-wasi-http 48 gives a body's failures
    /// no `error-code`.
    Body(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(why) => write!(f, "invalid URL: {why}"),
            HttpError::Header(why) => write!(f, "header refused: {why}"),
            HttpError::Code(ErrorCode::HttpRequestDenied) => {
                write!(f, "not allowed for this session (HTTP-request-denied)")
            }
            HttpError::Code(code) => write!(f, "{}", crate::escape(&format!("{code:?}"))),
            HttpError::Body(why) => write!(f, "the body failed: {}", crate::escape(why)),
        }
    }
}

impl std::error::Error for HttpError {}

/// A request to send: build it with [`Request::new`] and the setters, then [`send`](Request::send) it.
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new("GET", url).send()
}

/// `POST url` with `body` of `content_type`.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Result<Response, HttpError> {
    Request::new("POST", url).header("content-type", content_type).body(body).send()
}

impl Request {
    /// A request with `method` (`GET`, `POST`, ...) to `url`.
    pub fn new(method: &str, url: &str) -> Self {
        Request { method: method.to_owned(), url: url.to_owned(), headers: Vec::new(), body: Vec::new(), timeout: None }
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The body to send.
    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    /// Ask for at most this long connecting, waiting for the response and between bytes of its body (the host's
    /// limits apply when they are shorter).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Send it and read the whole response, blocking.
    pub fn send(self) -> Result<Response, HttpError> {
        let (scheme, authority, path) = split_url(&self.url)?;
        let headers = Fields::new();
        for (name, value) in &self.headers {
            headers
                .append(name, &value.as_bytes().to_vec())
                .map_err(|e| HttpError::Header(format!("{name}: {e:?}")))?;
        }
        let sets_length = self.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
        if !sets_length
            && (!self.body.is_empty() || matches!(self.method.to_ascii_uppercase().as_str(), "POST" | "PUT" | "PATCH"))
        {
            // Known in advance, so sent as a length rather than chunked: not every server reads a chunked body.
            let length = self.body.len().to_string();
            headers
                .append("content-length", &length.into_bytes())
                .map_err(|e| HttpError::Header(format!("content-length: {e:?}")))?;
        }
        let request = OutgoingRequest::new(headers);
        let method = match self.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        };
        let invalid = |what: &str| HttpError::InvalidUrl(format!("{}: {what}", self.url));
        request.set_method(&method).map_err(|()| invalid("invalid method"))?;
        request.set_scheme(Some(&scheme)).map_err(|()| invalid("invalid scheme"))?;
        request.set_authority(Some(&authority)).map_err(|()| invalid("invalid host"))?;
        request.set_path_with_query(Some(&path)).map_err(|()| invalid("invalid path"))?;
        let body = request.body().expect("a new request's body");

        let options = self.timeout.map(|timeout| {
            let options = RequestOptions::new();
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            let _ = options.set_between_bytes_timeout(Some(nanos));
            options
        });
        // Sent before the body is written: the host takes the body as it goes out, one chunk at a time.
        let pending = outgoing_handler::handle(request, options).map_err(HttpError::Code)?;
        write_body(&body, &self.body)?;
        OutgoingBody::finish(body, None).map_err(HttpError::Code)?;

        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(HttpError::Code(code)),
            Some(Err(())) | None => return Err(HttpError::Code(ErrorCode::InternalError(Some("no response".into())))),
        };
        let status = response.status();
        let headers =
            response.headers().entries().into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect();
        let incoming = response.consume().map_err(|()| HttpError::Code(ErrorCode::HttpProtocolError))?;
        let body = read_body(&incoming)?;
        drop(IncomingBody::finish(incoming));
        Ok(Response { status, headers, body })
    }
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let stream = body.write().expect("an outgoing body's stream");
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk).map_err(stream_error)?;
    }
    Ok(())
}

fn read_body(body: &IncomingBody) -> Result<Vec<u8>, HttpError> {
    let stream = body.stream().expect("an incoming body's stream");
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(bytes),
            Err(error) => return Err(stream_error(error)),
        }
    }
}

fn stream_error(error: StreamError) -> HttpError {
    match error {
        StreamError::LastOperationFailed(error) => match crate::wasi::http::types::http_error_code(&error) {
            Some(code) => HttpError::Code(code),
            None => HttpError::Body(error.to_debug_string()),
        },
        StreamError::Closed => HttpError::Code(ErrorCode::HttpResponseIncomplete),
    }
}

/// A redirect's `Location` as an absolute URL, resolved against `base`, the URL that answered (RFC 3986, 5.2:
/// absolute, scheme-relative `//host/path`, absolute-path `/path`, query `?q` and relative-path `path` forms; dot
/// segments are left for the server).
pub fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(network_path) = location.strip_prefix("//") {
        return format!("{scheme}://{network_path}");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    if location.starts_with('?') {
        let path = if path.is_empty() { "/" } else { path };
        return format!("{scheme}://{authority}{path}{location}");
    }
    let directory = path.rfind('/').map_or("/", |end| &path[..=end]);
    format!("{scheme}://{authority}{directory}{location}")
}

/// `http[s]://authority/path?query` in its three parts (the path at least `/`, the fragment dropped).
fn split_url(url: &str) -> Result<(Scheme, String, String), HttpError> {
    let invalid = |why: &str| HttpError::InvalidUrl(format!("{url}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("expected http:// or https://"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(invalid("expected http:// or https://")),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    Ok((scheme, authority.to_owned(), path))
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn a_location_resolves_against_the_url_that_answered() {
        let base = "http://127.0.0.1:8080/a/b?q=1";
        assert_eq!(resolve(base, "https://other/x"), "https://other/x");
        assert_eq!(resolve(base, "//other:81/x"), "http://other:81/x");
        assert_eq!(resolve(base, "/sub/"), "http://127.0.0.1:8080/sub/");
        assert_eq!(resolve(base, "?r=2"), "http://127.0.0.1:8080/a/b?r=2");
        assert_eq!(resolve(base, "c"), "http://127.0.0.1:8080/a/c");
        assert_eq!(resolve("http://h", "c"), "http://h/c");
    }
}
