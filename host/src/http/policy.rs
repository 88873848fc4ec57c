//! The session's HTTP hooks: which headers a guest may not set, and the sender every request goes through.

use std::future::Future;
use std::sync::Arc;

use http::HeaderName;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{
    Error, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks, DEFAULT_FORBIDDEN_HEADERS,
};

use super::sender::{self, Exchange};
use crate::grant::Grant;
use crate::limits::HttpLimits;
use crate::stats::SessionStats;
use crate::websocket::Transport;

/// Headers a guest may not set beyond wasmtime-wasi-http's own (connection, keep-alive, proxy-*, transfer-encoding,
/// upgrade, host, http2-settings): the ones that change how the request is framed or answered by something other
/// than the server.
const MORE_FORBIDDEN_HEADERS: [&str; 3] = ["expect", "te", "trailer"];

/// The HTTP state of one session: wasmtime-wasi-http's context and wsrun's hooks.
pub struct HttpCtx {
    pub(crate) ctx: WasiHttpCtx,
    pub(crate) policy: HttpPolicy,
}

/// wsrun's `wasi:http` hooks for one session: what it may reach, by which transport, within which limits.
pub struct HttpPolicy {
    grant: Arc<Grant>,
    transport: Transport,
    limits: HttpLimits,
    in_flight: Arc<Semaphore>,
    stats: Arc<SessionStats>,
}

impl HttpCtx {
    /// The HTTP state of a session that may reach what `grant` allows, by way of `transport`, within `limits`,
    /// counting into `stats`.
    pub(crate) fn new(grant: Arc<Grant>, transport: Transport, limits: HttpLimits, stats: Arc<SessionStats>) -> Self {
        let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
        HttpCtx { ctx: WasiHttpCtx::new(), policy: HttpPolicy { grant, transport, limits, in_flight, stats } }
    }
}

type Sent = Box<dyn Future<Output = Result<(), Error>> + Send>;

impl WasiHttpHooks for HttpPolicy {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name: &HeaderName| {
            DEFAULT_FORBIDDEN_HEADERS.contains(name) || MORE_FORBIDDEN_HEADERS.contains(&name.as_str())
        })
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _sent: Sent,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, Sent), Error>> + Send> {
        self.stats.http().requested();
        // Taken now rather than in the future, so a guest that fires requests without polling them still meets the
        // limit at the fifth.
        let permit = self.in_flight.clone().try_acquire_owned();
        let exchange = Exchange {
            grant: self.grant.clone(),
            transport: self.transport.clone(),
            limits: self.limits.clone(),
            stats: self.stats.clone(),
        };
        Box::new(async move {
            let Ok(permit) = permit else {
                exchange.stats.http().request_failed();
                log::debug!("HTTP request refused: {} already in flight", exchange.limits.max_in_flight);
                return Err(Error::ConnectionLimitReached);
            };
            sender::send(request, options, exchange, permit).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    use super::*;

    fn request(url: &str) -> http::Request<WasiBody> {
        let body = Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync();
        http::Request::builder().uri(url).body(body).unwrap()
    }

    fn send(policy: &mut HttpPolicy, url: &str) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> {
        let sent = Pin::from(policy.send_request(request(url), None, Box::new(async { Ok(()) })));
        Box::pin(async move { sent.await.map(drop) })
    }

    #[tokio::test]
    async fn a_request_past_the_in_flight_limit_fails_at_once_and_a_finished_one_frees_its_place() {
        let limits = HttpLimits { max_in_flight: 1, ..HttpLimits::default() };
        let stats = Arc::new(SessionStats::default());
        let mut http = HttpCtx::new(Arc::new(Grant::none()), Transport::default(), limits, stats.clone());
        let first = send(&mut http.policy, "http://127.0.0.1:9/");
        let second = send(&mut http.policy, "http://127.0.0.1:9/");
        assert!(matches!(second.await, Err(Error::ConnectionLimitReached)));
        drop(first);
        let third = send(&mut http.policy, "http://127.0.0.1:9/");
        assert!(matches!(third.await, Err(Error::HttpRequestDenied)), "the place was freed; the grant refuses it");
        let counted = stats.http();
        assert_eq!((counted.requests(), counted.failed(), counted.denied()), (3, 2, 1));
    }
}
