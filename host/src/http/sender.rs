//! Sending one request: the URL and the grant, the transport, HTTP/1.1 over one connection, the limits of time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use http::{Method, Request, Response, Uri};
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{timeout_at, Instant};
use url::Url;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::body::{RequestBody, ResponseBody, ResponseLimits};
use crate::bindings::websocket::ErrorCode;
use crate::grant::Grant;
use crate::limits::HttpLimits;
use crate::stats::SessionStats;
use crate::websocket::Transport;

/// The most bytes of a response's head (status line and headers) hyper buffers; more is
/// `HTTP-response-header-section-size`. hyper's own floor is 8 KiB.
const MAX_RESPONSE_HEAD: usize = 64 << 10;
/// The most header lines in a response's head.
const MAX_RESPONSE_HEADERS: usize = 100;

/// What a request is sent with, owned so that the sending future outlives the call that made it.
pub(super) struct Exchange {
    pub grant: Arc<Grant>,
    pub transport: Transport,
    pub limits: HttpLimits,
    pub stats: Arc<SessionStats>,
}

type Sent = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Send `request` if the grant allows its origin, and return the response's head with its body, and the future that
/// drives the connection while the guest reads that body.
pub(super) async fn send(
    request: Request<WasiBody>,
    options: Option<RequestOptions>,
    exchange: Exchange,
    permit: OwnedSemaphorePermit,
) -> Result<(Response<WasiBody>, Sent), Error> {
    let stats = exchange.stats.clone();
    let result = exchange.send(request, options, permit).await;
    if result.is_err() {
        stats.http().request_failed();
    }
    result
}

impl Exchange {
    async fn send(
        self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        permit: OwnedSemaphorePermit,
    ) -> Result<(Response<WasiBody>, Sent), Error> {
        let started = Instant::now();
        let times = Times::new(&self.limits, options, started);
        let (mut head, body) = request.into_parts();
        let opened = async {
            let url = self.check(&head)?;
            let connect = timeout_at(times.connect, self.transport.open(&url));
            let stream = connect.await.map_err(|_| Error::ConnectionTimeout)?.map_err(|e| connect_error(&url, e))?;
            let (sender, connection) = hyper::client::conn::http1::Builder::new()
                .max_buf_size(MAX_RESPONSE_HEAD)
                .max_header_size(MAX_RESPONSE_HEAD)
                .max_headers(MAX_RESPONSE_HEADERS)
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| response_error(&url, e))?;
            Ok((url, sender, connection))
        };
        let (url, mut sender, connection) = match opened.await {
            Ok(opened) => opened,
            Err(error) => return Err(unsent(body, error, self.limits.max_request_body).await),
        };

        // Origin-form: the scheme and authority went to the transport (and the Host header), not the request line.
        head.uri = Uri::builder()
            .path_and_query(head.uri.path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let body = RequestBody::new(body, self.limits.max_request_body, self.stats.clone());
        let request = Request::from_parts(head, body);

        // hyper's connection future does the reading and writing: it is driven beside the request until the
        // response's head is in, then handed back to be driven while the guest reads the body.
        let mut connection = Box::pin(connection);
        let mut connection_ended = false;
        let response = sender.send_request(request);
        tokio::pin!(response);
        // The server's silence is timed from the request's sending, not from the start of connecting.
        let first_byte = (Instant::now() + times.first_byte).min(times.deadline);
        let waited = timeout_at(first_byte, async {
            loop {
                tokio::select! {
                    response = &mut response => break response,
                    ended = &mut connection, if !connection_ended => {
                        connection_ended = true;
                        ended?;
                    }
                }
            }
        });
        let response = match waited.await {
            Err(_) if first_byte == times.deadline => return Err(Error::HttpResponseTimeout),
            Err(_) => return Err(Error::ConnectionReadTimeout),
            Ok(response) => response.map_err(|e| response_error(&url, e))?,
        };
        drop(sender);
        // hyper checks the head's size only while it is incomplete: one that arrived whole in a read is checked here.
        let head_size: usize =
            response.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
        if head_size > MAX_RESPONSE_HEAD {
            log::debug!("HTTP request to {url}: a response head of {head_size} bytes");
            return Err(Error::HttpResponseHeaderSectionSize(Some(head_size.try_into().unwrap_or(u32::MAX))));
        }
        self.stats.http().responded(response.status().as_u16(), started.elapsed());

        let deadline = times.deadline;
        let limits =
            ResponseLimits { limit: self.limits.max_response_body, between_bytes: times.between_bytes, deadline };
        let response = response.map(|incoming| ResponseBody::new(incoming, limits, self.stats, permit).boxed_unsync());
        let driven: Sent = Box::new(async move {
            if connection_ended {
                return Ok(());
            }
            match timeout_at(deadline, connection).await {
                Err(_) => Err(Error::HttpResponseTimeout),
                Ok(ended) => ended.map_err(|e| response_error(&url, e)),
            }
        });
        Ok((response, driven))
    }

    /// The checks a request must pass before it goes anywhere: its URL, its method, the grant.
    fn check(&self, head: &http::request::Parts) -> Result<Url, Error> {
        let url = target(&head.uri)?;
        if head.method == Method::CONNECT {
            return Err(Error::HttpRequestMethodInvalid);
        }
        if !self.grant.allows(&url) {
            log::debug!("denied: an HTTP request to {url} is not allowed for this session");
            self.stats.http().refused();
            return Err(Error::HttpRequestDenied);
        }
        Ok(url)
    }
}

/// How long a request that fails before it is sent keeps reading its body, at most, between two pieces of it.
const UNSENT_BODY_GAP: Duration = Duration::from_millis(250);

/// A request failed before it was sent (denied, a bad URL, no connection): its body is read to its end first (up to
/// `limit` bytes, and while the guest goes on writing it), as a sent request's would be, and dropped, and then the
/// guest learns why. Dropped at once, the body's stream would close under a guest still writing it, which
/// componentize-js's fetch does not survive (its event loop aborts, in about 1 POST in 30, instead of the fetch
/// rejecting).
async fn unsent(mut body: WasiBody, error: Error, limit: u64) -> Error {
    let mut read = 0u64;
    while read <= limit {
        match tokio::time::timeout(UNSENT_BODY_GAP, body.frame()).await {
            Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, |data| data.len() as u64),
            _ => break,
        }
    }
    error
}

/// The times an exchange must keep: the guest's `request-options`, clamped to the session's limits.
struct Times {
    connect: Instant,
    /// From the request's sending (after connecting) to the response's head.
    first_byte: Duration,
    between_bytes: Duration,
    deadline: Instant,
}

impl Times {
    fn new(limits: &HttpLimits, options: Option<RequestOptions>, started: Instant) -> Self {
        let options = options.unwrap_or_default();
        let clamp = |asked: Option<Duration>, limit: Duration| asked.map_or(limit, |asked| asked.min(limit));
        let deadline = started + limits.deadline;
        let within = |after: Duration| (started + after).min(deadline);
        Times {
            connect: within(clamp(options.connect_timeout, limits.connect_timeout)),
            first_byte: clamp(options.first_byte_timeout, limits.between_bytes),
            between_bytes: clamp(options.between_bytes_timeout, limits.between_bytes),
            deadline,
        }
    }
}

/// The URL a request goes to: `http` or `https`, a host, no user information.
fn target(uri: &Uri) -> Result<Url, Error> {
    let scheme = uri.scheme().ok_or(Error::HttpRequestUriInvalid)?;
    if *scheme != Scheme::HTTP && *scheme != Scheme::HTTPS {
        return Err(Error::HttpProtocolError);
    }
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    // The default sender copies user information into the Host header; here it is refused, as for WebSocket URLs.
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(Error::HttpRequestUriInvalid);
    }
    Url::parse(&format!("{scheme}://{authority}/")).map_err(|_| Error::HttpRequestUriInvalid)
}

/// What a failure to reach the server means to the guest; the details go to the debug log.
fn connect_error(url: &Url, error: ErrorCode) -> Error {
    log::debug!("HTTP request to {url}: {error:?}");
    match error {
        ErrorCode::Dns(why) => Error::DnsError { rcode: Some(why), info_code: None },
        ErrorCode::Refused(_) => Error::ConnectionRefused,
        ErrorCode::Timeout => Error::ConnectionTimeout,
        ErrorCode::Tls(why) if why.contains("certificate") || why.contains("Certificate") => Error::TlsCertificateError,
        ErrorCode::Tls(_) => Error::TlsProtocolError,
        ErrorCode::InvalidUrl(_) => Error::HttpRequestUriInvalid,
        ErrorCode::Proxy(what) => Error::InternalError(Some(format!("proxy: {what}"))),
        ErrorCode::Io(_) => Error::ConnectionTerminated,
        other => Error::InternalError(Some(format!("{other:?}"))),
    }
}

/// What a failure of hyper's while reading a response's body means to the guest.
pub(super) fn response_error_of_body(error: hyper::Error) -> Error {
    log::debug!("HTTP response body: {error}");
    wire_error(error)
}

/// What a failure of hyper's means to the guest: a limit of ours that it carried up, or what went wrong on the wire.
fn response_error(url: &Url, error: hyper::Error) -> Error {
    log::debug!("HTTP request to {url}: {error}");
    wire_error(error)
}

fn wire_error(error: hyper::Error) -> Error {
    let ours = std::error::Error::source(&error).and_then(|source| source.downcast_ref::<Error>());
    match ours {
        Some(Error::HttpRequestBodySize(size)) => return Error::HttpRequestBodySize(*size),
        Some(Error::HttpResponseBodySize(size)) => return Error::HttpResponseBodySize(*size),
        Some(Error::HttpResponseTimeout) => return Error::HttpResponseTimeout,
        Some(Error::ConnectionReadTimeout) => return Error::ConnectionReadTimeout,
        _ => {}
    }
    let cut_short = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof);
    if error.is_timeout() {
        Error::HttpResponseTimeout
    } else if error.is_incomplete_message() || cut_short {
        Error::HttpResponseIncomplete
    } else if error.is_parse_too_large() {
        Error::HttpResponseHeaderSectionSize(None)
    } else if error.is_closed() || error.is_canceled() || error.is_body_write_aborted() {
        Error::ConnectionTerminated
    } else {
        Error::HttpProtocolError
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_and_no_user_are_sent() {
        let uri = |text: &str| text.parse::<Uri>().unwrap();
        assert_eq!(target(&uri("http://127.0.0.1:8080/a?b")).unwrap().as_str(), "http://127.0.0.1:8080/");
        assert_eq!(target(&uri("https://example.com/")).unwrap().as_str(), "https://example.com/");
        assert!(matches!(target(&uri("http://user:pw@example.com/")), Err(Error::HttpRequestUriInvalid)));
        assert!(matches!(target(&uri("http://user@example.com/")), Err(Error::HttpRequestUriInvalid)));
        assert!(matches!(target(&uri("ftp://example.com/")), Err(Error::HttpProtocolError)));
        assert!(matches!(target(&uri("/relative")), Err(Error::HttpRequestUriInvalid)));
    }

    #[test]
    fn the_guests_times_are_clamped_to_the_limits() {
        let limits = HttpLimits {
            connect_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            between_bytes: Duration::from_secs(5),
            ..HttpLimits::default()
        };
        let started = Instant::now();
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(600)),
            first_byte_timeout: Some(Duration::from_secs(1)),
            between_bytes_timeout: Some(Duration::from_secs(600)),
        };
        let times = Times::new(&limits, Some(asked), started);
        assert_eq!(times.connect - started, Duration::from_secs(10));
        assert_eq!(times.first_byte, Duration::from_secs(1));
        assert_eq!(times.between_bytes, Duration::from_secs(5));
        assert_eq!(times.deadline - started, Duration::from_secs(30));
        let short = HttpLimits { deadline: Duration::from_secs(2), ..limits };
        let times = Times::new(&short, None, started);
        // The wait for the head is cut by the deadline where it is used, from the request's sending.
        assert_eq!(
            (times.connect - started, times.first_byte, times.deadline - started),
            (Duration::from_secs(2), Duration::from_secs(5), Duration::from_secs(2))
        );
    }
}
