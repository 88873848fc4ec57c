//! Opening a connection: URL checks, the grant at every hop, DNS, TCP, TLS, the handshake and redirects, all
//! under one time limit. Each failure becomes the `error-code` that names its cause.

use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame as WireCloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Error as WsProtocolError;
use url::Url;

use super::errors::from_transport;
use super::net::extension::{self, Deflate};
use super::net::halves::WsStream;
use super::net::transport::{is_tls_error, Transport};
use super::net::wire::{Wire, READ_BUFFER};
use super::net::LARGE_PAYLOAD;
use crate::bindings::websocket::{Compression, ConnectOptions, ErrorCode, Header, HttpResponse};
use crate::grant::Grant;
use crate::limits::ConnectionLimits;
use crate::origin::parse_ws_url;
use crate::stats::SessionStats;

/// What tungstenite gathers before it writes to the socket (its default).
const WRITE_BUFFER: usize = 128 << 10;

/// The most tungstenite may hold unwritten: its buffer and one message below [`LARGE_PAYLOAD`]
/// (larger ones are framed by the host and wait one at a time in `wire`), with room for control frames. Unbounded
/// by default, it grew without end with the pongs to a peer that pings and never reads; bounded, tungstenite keeps
/// one pong waiting, for the last ping (RFC 6455, 5.5.3 allows it).
const MAX_WRITE_BUFFER: usize = WRITE_BUFFER + 2 * LARGE_PAYLOAD;

/// How much of a refusal's body the guest gets (`http-response.body`).
const MAX_REFUSAL_BODY: usize = 4 << 10;

/// How many redirects are followed, as python-websockets does.
const MAX_REDIRECTS: usize = 10;

/// Request headers a guest may not set: the ones the handshake sets itself, the ones that frame the request (an
/// HTTP/1.1 intermediary at the granted origin would read a smuggled request after it), and the ones that speak to
/// something other than the server (a proxy's credentials are the host's).
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-accept",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "expect",
    "keep-alive",
    "http2-settings",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
];

/// At most this many request headers, and this many bytes of names and values, from a guest: enough for any
/// cookie jar, small enough that no guest makes the host build a huge request.
const MAX_HEADERS: usize = 100;
const MAX_HEADER_BYTES: usize = 64 << 10;

/// A connection that completed its opening handshake.
pub(crate) struct Dialed {
    pub stream: WsStream,
    /// The URL finally connected to, after redirects.
    pub url: Url,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
    /// The largest message either side may send on it.
    pub max_message: usize,
    /// Compression, when the server took the offer.
    pub deflate: Option<Deflate>,
}

/// What one hop ended with, short of an error.
// One per hop, moved once into `Dialed`: boxing the stream would cost an allocation per connection for nothing.
#[allow(clippy::large_enum_variant)]
enum Hop {
    Open(WsStream, Response, Option<Deflate>),
    Redirect(String),
}

/// Open a connection to `url`, following redirects within `grant`, in at most the open timeout.
pub(crate) async fn dial(
    url: &str,
    options: &ConnectOptions,
    grant: &Grant,
    limits: &ConnectionLimits,
    transport: &Transport,
    stats: &Arc<SessionStats>,
) -> Result<Dialed, ErrorCode> {
    let offer = limits.compression && options.compression == Compression::Offer;
    let mut current = parse_ws_url(url).map_err(ErrorCode::InvalidUrl)?;
    let timeout = options
        .open_timeout_ms
        .map_or(limits.open_timeout, |ms| Duration::from_millis(ms.into()).min(limits.open_timeout));
    let max_message = options.max_message_size.map_or(limits.max_message_size, |size| {
        usize::try_from(size).unwrap_or(usize::MAX).min(limits.max_message_size)
    });
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER);

    let first = current.clone();
    let hops = async {
        for hop in 0..=MAX_REDIRECTS {
            if !grant.allows(&current) {
                let what = if hop == 0 { "connecting to" } else { "following a redirect to" };
                log::debug!("denied: {what} {current}");
                return Err(ErrorCode::Denied(format!("{what} {current} is not allowed for this session")));
            }
            // Credentials go only to the origin the guest named: a redirect elsewhere (granted or not) gets the other
            // headers, as curl and browsers do; a guest that means to send them there connects there itself.
            let credentials = current.origin() == first.origin();
            let request = request(&current, options, credentials, offer)?;
            // Boxed: the handshake's future is about 10 KiB, and inline it deepens the guest's stack (`connect` runs
            // on it), whose pages then stay resident for the session's life: 165 KiB per idle session at 10,000
            // sessions without the box, 158 with it.
            match Box::pin(open(&current, request, config, transport, stats, offer)).await? {
                Hop::Open(stream, response, deflate) => {
                    let protocol = response
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned);
                    return Ok(Dialed { stream, url: current, protocol, max_message, deflate });
                }
                Hop::Redirect(location) => current = follow(&current, &location)?,
            }
        }
        Err(ErrorCode::TooManyRedirects(current.to_string()))
    };
    tokio::time::timeout(timeout, hops).await.map_err(|_| ErrorCode::Timeout)?
}

/// The URL a redirect's `Location` points to, relative to `current`; http(s) locations map to ws(s).
fn follow(current: &Url, location: &str) -> Result<Url, ErrorCode> {
    let mut next = current.join(location).map_err(|e| ErrorCode::InvalidUrl(format!("redirect to {location}: {e}")))?;
    let scheme = match next.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        _ => return Err(ErrorCode::InvalidUrl(format!("redirect to {location}: not a WebSocket URL"))),
    };
    if next.scheme() != scheme {
        // Url refuses some scheme changes; rebuilding from text always works.
        next = Url::parse(&format!("{scheme}{}", &next.as_str()[next.scheme().len()..]))
            .map_err(|e| ErrorCode::InvalidUrl(format!("redirect to {location}: {e}")))?;
    }
    next.set_fragment(None);
    Ok(next)
}

/// Headers that carry the guest's credentials: sent to the origin it connected to, not after a redirect elsewhere.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "cookie"];

/// The handshake request for `url` with the guest's headers (without its credentials, unless `credentials`) and
/// subprotocols, offering compression if `offer`.
fn request(url: &Url, options: &ConnectOptions, credentials: bool, offer: bool) -> Result<Request, ErrorCode> {
    let mut request = url.as_str().into_client_request().map_err(|e| ErrorCode::InvalidUrl(format!("{url}: {e}")))?;
    let headers = request.headers_mut();
    let size: usize = options.headers.iter().map(|h| h.name.len() + h.value.len()).sum::<usize>()
        + options.subprotocols.iter().map(|p| p.len() + 2).sum::<usize>();
    if options.headers.len() > MAX_HEADERS || size > MAX_HEADER_BYTES {
        return Err(ErrorCode::InvalidArgument(format!(
            "at most {MAX_HEADERS} request headers and {MAX_HEADER_BYTES} bytes of headers and subprotocols"
        )));
    }
    for Header { name, value } in &options.headers {
        if FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ErrorCode::InvalidArgument(format!(
                "the header {name} may not be set by a guest: the handshake or the host owns it"
            )));
        }
        if !credentials && CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            log::debug!("{url}: not sending the guest's {name} header after a redirect to another origin");
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ErrorCode::InvalidArgument(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| ErrorCode::InvalidArgument(format!("invalid value for header {name}")))?;
        headers.append(name, value);
    }
    if !options.subprotocols.is_empty() {
        let offered = options.subprotocols.join(", ");
        let value = HeaderValue::from_str(&offered)
            .map_err(|_| ErrorCode::InvalidArgument(format!("invalid subprotocols {offered:?}")))?;
        headers.insert("sec-websocket-protocol", value);
    }
    if offer {
        headers.insert("sec-websocket-extensions", HeaderValue::from_static(extension::OFFER));
    }
    Ok(request)
}

/// One hop: resolve, connect (perhaps through the proxy), then the TLS and WebSocket handshakes, and the check of
/// the extensions the server accepted (compression, if it was offered).
async fn open(
    url: &Url,
    request: Request,
    config: WebSocketConfig,
    transport: &Transport,
    stats: &Arc<SessionStats>,
    offered: bool,
) -> Result<Hop, ErrorCode> {
    let stream = transport.open(url).await?;
    let wire = Wire::new(stream, config.max_message_size.unwrap_or(usize::MAX), stats.clone());
    let result = tokio_tungstenite::client_async_with_config(request, wire, Some(config)).await;
    match result {
        Ok((mut stream, response)) => {
            let extensions = response.headers().get_all("sec-websocket-extensions").iter();
            let accepted = extensions
                .map(|value| value.to_str().map_err(|_| "the server's Sec-WebSocket-Extensions is not text".to_owned()))
                .collect::<Result<Vec<_>, _>>()
                .and_then(|values| extension::accept(values, offered));
            match accepted {
                Ok(deflate) => {
                    stream.get_mut().opened(deflate.as_ref());
                    Ok(Hop::Open(stream, response, deflate))
                }
                Err(why) => {
                    // RFC 6455 (4.1): fail the connection; it is open, so the server is told why.
                    let close = WireCloseFrame { code: CloseCode::Protocol, reason: "unexpected extension".into() };
                    let _ = tokio::time::timeout(Duration::from_secs(1), stream.close(Some(close))).await;
                    Err(ErrorCode::Protocol(why))
                }
            }
        }
        Err(WsProtocolError::Http(response)) => {
            let status = response.status();
            let location = response.headers().get("location").and_then(|value| value.to_str().ok());
            match location {
                Some(location) if is_redirect(status) => Ok(Hop::Redirect(location.to_owned())),
                _ => Err(ErrorCode::HttpStatus(http_response(&response))),
            }
        }
        Err(WsProtocolError::Io(e)) if url.scheme() == "wss" && is_tls_error(&e) => Err(ErrorCode::Tls(e.to_string())),
        Err(e) => Err(from_transport(e, super::errors::abnormal_closure)),
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn http_response(response: &tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>) -> HttpResponse {
    let status = response.status();
    HttpResponse {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("").to_owned(),
        headers: response
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect(),
        body: response.body().as_deref().map_or(Vec::new(), |body| body[..body.len().min(MAX_REFUSAL_BODY)].to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(headers: &[(&str, &str)]) -> ConnectOptions {
        ConnectOptions {
            headers: headers
                .iter()
                .map(|(name, value)| Header { name: name.to_string(), value: value.to_string() })
                .collect(),
            ..ConnectOptions::default()
        }
    }

    #[test]
    fn every_forbidden_header_is_refused_in_any_case() {
        let url = Url::parse("ws://127.0.0.1:9/").unwrap();
        for name in FORBIDDEN_HEADERS {
            for spelled in [name.to_string(), name.to_ascii_uppercase()] {
                let refused = request(&url, &options(&[(&spelled, "1")]), true, true);
                assert!(matches!(refused, Err(ErrorCode::InvalidArgument(_))), "{spelled} was accepted");
            }
        }
        let allowed = request(&url, &options(&[("Authorization", "Bearer x"), ("Cookie", "a=b")]), true, true).unwrap();
        assert_eq!(allowed.headers()["authorization"], "Bearer x");
    }

    #[test]
    fn too_many_or_too_large_headers_are_refused() {
        let url = Url::parse("ws://127.0.0.1:9/").unwrap();
        let many: Vec<(String, String)> = (0..=MAX_HEADERS).map(|i| (format!("x-{i}"), "v".to_owned())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert!(matches!(request(&url, &options(&many), true, true), Err(ErrorCode::InvalidArgument(_))));
        let big = "v".repeat(MAX_HEADER_BYTES);
        assert!(matches!(request(&url, &options(&[("x-big", &big)]), true, true), Err(ErrorCode::InvalidArgument(_))));
    }
}
