//! How the host reaches servers: TCP (directly or through an HTTP CONNECT proxy) and TLS.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use url::{Host, Url};

use super::tls::TlsSettings;
use crate::bindings::websocket::ErrorCode;

/// The byte stream under a WebSocket connection.
pub(crate) type Stream = MaybeTlsStream<TcpStream>;

/// The most a proxy's answer to CONNECT may take before its blank line.
const MAX_PROXY_RESPONSE: usize = 16 * 1024;

/// TLS trust and proxy settings, shared by the sessions that use them, and the local address connections are made
/// from; cheap to clone. The TLS configuration (and its read of the system's roots) is built on the first `wss://`
/// connection.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    inner: Arc<Inner>,
    local: Option<IpAddr>,
}

#[derive(Debug, Default)]
struct Inner {
    tls: TlsSettings,
    tls_config: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    proxy: Proxy,
}

/// Which proxy to use.
#[derive(Clone, Debug, Default)]
pub enum Proxy {
    /// Connect directly.
    #[default]
    None,
    /// Tunnel every connection through this HTTP proxy (`http://[user:pass@]host:port`).
    Always(Url),
    /// Follow the host's environment, as curl does: `https_proxy` for wss and https, `http_proxy` for ws and http
    /// (either case),
    /// except for hosts in `no_proxy`.
    FromEnvironment {
        /// The proxy for `ws://` URLs.
        http: Option<Url>,
        /// The proxy for `wss://` URLs.
        https: Option<Url>,
        /// Hosts (and their subdomains) reached directly; `*` for all.
        no_proxy: Vec<String>,
    },
}

impl Proxy {
    /// Read `http_proxy`, `https_proxy` and `no_proxy` (or their upper-case forms) from this process's environment.
    /// A variable that is not an `http://` URL is an error, named.
    pub fn from_environment() -> Result<Proxy, String> {
        let var = |name: &str| {
            std::env::var(name).ok().or_else(|| std::env::var(name.to_uppercase()).ok()).filter(|v| !v.is_empty())
        };
        let proxy_url =
            |name: &str| var(name).map(|value| parse_proxy_url(&value).map_err(|e| format!("{name}: {e}"))).transpose();
        let no_proxy = var("no_proxy")
            .map(|value| {
                value
                    .split(',')
                    .map(|host| host.trim().trim_start_matches('.').to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Proxy::FromEnvironment { http: proxy_url("http_proxy")?, https: proxy_url("https_proxy")?, no_proxy })
    }

    fn for_url(&self, url: &Url) -> Option<&Url> {
        match self {
            Proxy::None => None,
            Proxy::Always(proxy) => Some(proxy),
            Proxy::FromEnvironment { http, https, no_proxy } => {
                let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
                let bypass =
                    no_proxy.iter().any(|entry| entry == "*" || host == *entry || host.ends_with(&format!(".{entry}")));
                if bypass {
                    return None;
                }
                if is_secure(url) {
                    https.as_ref()
                } else {
                    http.as_ref()
                }
            }
        }
    }
}

/// An `http://` proxy URL with a host.
pub fn parse_proxy_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("invalid proxy URL {text:?}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!("invalid proxy URL {text:?}: only http:// proxies (HTTP CONNECT) are supported"));
    }
    if url.host().is_none() {
        return Err(format!("invalid proxy URL {text:?}: no host"));
    }
    Ok(url)
}

impl Transport {
    /// Transport with these TLS settings and proxy.
    pub fn new(tls: TlsSettings, proxy: Proxy) -> Self {
        Transport { inner: Arc::new(Inner { tls, tls_config: OnceLock::new(), proxy }), local: None }
    }

    /// Make connections from `address` (one of this machine's) rather than the one the system picks. One local
    /// address reaches one server address and port from at most as many ports as Linux's `ip_local_port_range`
    /// holds (28,232 by default): more connections to one server spread over several local addresses (127.0.0.2,
    /// 127.0.0.3, ... on loopback). The TLS settings stay shared.
    pub fn from_address(mut self, address: IpAddr) -> Self {
        self.local = Some(address);
        self
    }

    /// A TCP stream to the host of `url`, through the proxy when one applies.
    pub(crate) async fn connect(&self, url: &Url) -> Result<TcpStream, ErrorCode> {
        match self.inner.proxy.for_url(url) {
            Some(proxy) => tunnel(proxy, url, self.local).await,
            None => connect_tcp(url, self.local).await,
        }
    }

    /// A stream to the host of `url`: TCP, through the proxy when one applies, inside TLS for `wss://` and
    /// `https://`.
    pub(crate) async fn open(&self, url: &Url) -> Result<Stream, ErrorCode> {
        let tls = self.tls_config(url)?;
        let tcp = self.connect(url).await?;
        secure(url, tcp, tls).await.map_err(|e| match is_tls_error(&e) {
            true => ErrorCode::Tls(e.to_string()),
            false => ErrorCode::Io(e.to_string()),
        })
    }

    /// The TLS configuration for `url`: one for `wss://` and `https://`, none for `ws://` and `http://`.
    pub(crate) fn tls_config(&self, url: &Url) -> Result<Option<Arc<rustls::ClientConfig>>, ErrorCode> {
        if !is_secure(url) {
            return Ok(None);
        }
        let config = self.inner.tls_config.get_or_init(|| self.inner.tls.client_config());
        config.clone().map(Some).map_err(ErrorCode::Tls)
    }
}

/// Whether `url` is reached over TLS.
fn is_secure(url: &Url) -> bool {
    matches!(url.scheme(), "wss" | "https")
}

/// Whether an error of a TLS stream (or of its handshake) came from TLS rather than the socket.
pub(crate) fn is_tls_error(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) || error.kind() == io::ErrorKind::InvalidData
}

/// Resolve the host of `url` and connect to the first address that answers, from `local` when given.
async fn connect_tcp(url: &Url, local: Option<IpAddr>) -> Result<TcpStream, ErrorCode> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::from((ip, port))],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::from((ip, port))],
        Some(Host::Domain(name)) => {
            tokio::net::lookup_host((name, port)).await.map_err(|e| ErrorCode::Dns(format!("{name}: {e}")))?.collect()
        }
        None => return Err(ErrorCode::InvalidUrl(format!("{url}: no host"))),
    };
    let mut last_error = None;
    for addr in &addrs {
        match connect_from(*addr, local).await {
            Ok(tcp) => {
                // Small messages go out at once rather than waiting for more to batch.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(e) => last_error = Some((addr, e)),
        }
    }
    Err(match last_error {
        Some((addr, e)) if e.kind() == io::ErrorKind::ConnectionRefused => ErrorCode::Refused(addr.to_string()),
        Some((addr, e)) => ErrorCode::Io(format!("{addr}: {e}")),
        None => ErrorCode::Dns(format!("{}: no addresses", url.host_str().unwrap_or_default())),
    })
}

/// A TCP connection to `addr`, from `local` when given.
async fn connect_from(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
    let Some(local) = local else { return TcpStream::connect(addr).await };
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // The port is then chosen at connect, for this destination, rather than at bind for any: each local address has
    // its whole range of ports for every server address and port.
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt on the socket's own descriptor, with a pointer to an int and its size.
        let _ = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    socket.bind(SocketAddr::new(local, 0)).map_err(|e| io::Error::new(e.kind(), format!("from {local}: {e}")))?;
    socket.connect(addr).await
}

/// `tcp` to the host of `url` as the layer above gets it: inside TLS with `config`, or as it is without.
async fn secure(url: &Url, tcp: TcpStream, config: Option<Arc<rustls::ClientConfig>>) -> Result<Stream, io::Error> {
    let Some(config) = config else { return Ok(MaybeTlsStream::Plain(tcp)) };
    // rustls takes IPv6 addresses without their brackets.
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{host}: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
    Ok(MaybeTlsStream::Rustls(tls))
}

/// Open an HTTP CONNECT tunnel through `proxy` to the host and port of `target`.
///
/// The guest learns that the proxy failed and how (unreachable, refused, answered badly), never the proxy's host,
/// port or user, which the host reads from its own configuration and the guest was not given; the details go to the
/// debug log.
async fn tunnel(proxy: &Url, target: &Url, local: Option<IpAddr>) -> Result<TcpStream, ErrorCode> {
    let failed = |what: &str, details: String| {
        log::debug!("{}: {what}: {details}", proxy_display(proxy));
        ErrorCode::Proxy(what.to_owned())
    };
    let mut tcp =
        connect_tcp(proxy, local).await.map_err(|e| failed("the proxy could not be reached", format!("{e:?}")))?;
    let authority =
        format!("{}:{}", target.host_str().unwrap_or_default(), target.port_or_known_default().unwrap_or(80));
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if !proxy.username().is_empty() {
        let credentials =
            format!("{}:{}", percent_decode(proxy.username()), percent_decode(proxy.password().unwrap_or("")));
        request.push_str(&format!(
            "Proxy-Authorization: Basic {}\r\n",
            data_encoding::BASE64.encode(credentials.as_bytes())
        ));
    }
    request.push_str("\r\n");
    let lost = "the connection to the proxy failed";
    tcp.write_all(request.as_bytes()).await.map_err(|e| failed(lost, e.to_string()))?;

    // Read the answer byte by byte, so not one byte of the tunnelled stream is taken from the TLS or WebSocket layer.
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_PROXY_RESPONSE {
            return Err(failed(
                "the proxy's answer to CONNECT was too long",
                format!("over {MAX_PROXY_RESPONSE} bytes"),
            ));
        }
        let byte = tcp.read_u8().await.map_err(|e| failed(lost, format!("no answer to CONNECT: {e}")))?;
        answer.push(byte);
    }
    let status_line = String::from_utf8_lossy(answer.split(|&b| b == b'\r').next().unwrap_or_default()).into_owned();
    let status = status_line.split_whitespace().nth(1).and_then(|code| code.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(tcp),
        Some(status) => Err(failed(
            &format!("the proxy refused the tunnel (HTTP {status})"),
            format!("CONNECT {authority}: {}", crate::escape::escape(&status_line)),
        )),
        None => {
            Err(failed("the proxy's answer to CONNECT was not HTTP", crate::escape::escape(&status_line).into_owned()))
        }
    }
}

/// The proxy URL without its password, for messages.
fn proxy_display(proxy: &Url) -> String {
    let mut shown = proxy.clone();
    let _ = shown.set_password(None);
    format!("proxy {shown}")
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_proxies_honour_scheme_and_no_proxy() {
        let proxy = Proxy::FromEnvironment {
            http: Some(Url::parse("http://p:1").unwrap()),
            https: Some(Url::parse("http://s:2").unwrap()),
            no_proxy: vec!["internal.example".into()],
        };
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(proxy.for_url(&url("ws://a.example/")).map(Url::as_str), Some("http://p:1/"));
        assert_eq!(proxy.for_url(&url("wss://a.example/")).map(Url::as_str), Some("http://s:2/"));
        assert_eq!(proxy.for_url(&url("wss://x.internal.example/")), None);
        assert_eq!(proxy.for_url(&url("ws://internal.example/")), None);
    }

    #[test]
    fn only_http_proxies_are_accepted() {
        assert!(parse_proxy_url("http://127.0.0.1:3128").is_ok());
        assert!(parse_proxy_url("socks5://127.0.0.1:1080").is_err());
        assert!(parse_proxy_url("nonsense").is_err());
    }
}
