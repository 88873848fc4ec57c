//! The bodies of a request and its response as they cross the host: counted, and cut at the session's limits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::{Error, WasiBody};

use crate::stats::SessionStats;

/// How many more body bytes one direction of an exchange may carry.
struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    fn new(limit: u64) -> Self {
        Budget { left: limit, limit }
    }

    /// Take a frame's data from the budget: its size, or `Err(limit)` when it does not fit.
    fn spend(&mut self, frame: &Frame<Bytes>) -> Result<usize, u64> {
        let size = frame.data_ref().map_or(0, Bytes::len);
        self.left = self.left.checked_sub(size as u64).ok_or(self.limit)?;
        Ok(size)
    }
}

/// The guest's request body on its way out: at most `limit` bytes.
pub(super) struct RequestBody {
    inner: WasiBody,
    budget: Budget,
    stats: Arc<SessionStats>,
}

impl RequestBody {
    pub(super) fn new(inner: WasiBody, limit: u64, stats: Arc<SessionStats>) -> Self {
        RequestBody { inner, budget: Budget::new(limit), stats }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        match self.budget.spend(&frame) {
            Ok(size) => self.stats.http().body_sent(size),
            Err(limit) => {
                log::debug!("HTTP request body over the session's limit of {limit} bytes");
                return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(limit)))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response's body as the guest reads it: at most `limit` bytes, by the deadline, the server never silent longer
/// than `between_bytes`.
pub(super) struct ResponseBody {
    incoming: hyper::body::Incoming,
    budget: Budget,
    between_bytes: Duration,
    idle: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    stats: Arc<SessionStats>,
    /// Held until the body is read to its end or dropped: the request is in flight until then.
    _permit: OwnedSemaphorePermit,
}

/// What a response's body is read within.
pub(super) struct ResponseLimits {
    pub limit: u64,
    pub between_bytes: Duration,
    pub deadline: Instant,
}

impl ResponseBody {
    pub(super) fn new(
        incoming: hyper::body::Incoming,
        limits: ResponseLimits,
        stats: Arc<SessionStats>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        ResponseBody {
            incoming,
            budget: Budget::new(limits.limit),
            between_bytes: limits.between_bytes,
            idle: Box::pin(tokio::time::sleep(limits.between_bytes)),
            deadline: Box::pin(tokio::time::sleep_until(limits.deadline)),
            stats,
            _permit: permit,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
        }
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(super::sender::response_error_of_body(error)))),
            Poll::Ready(Some(Ok(frame))) => {
                match this.budget.spend(&frame) {
                    Ok(size) => this.stats.http().body_received(size),
                    Err(limit) => {
                        log::debug!("HTTP response body over the session's limit of {limit} bytes");
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(limit)))));
                    }
                }
                let next = Instant::now() + this.between_bytes;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Full};

    use super::*;

    #[tokio::test]
    async fn a_request_body_past_the_limit_is_cut_and_one_within_it_counted() {
        let body = |text: &'static str| Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed_unsync();
        let stats = Arc::new(SessionStats::default());
        let mut over = RequestBody::new(body("0123456789"), 5, stats.clone());
        let error = over.frame().await.expect("a frame").unwrap_err();
        assert!(matches!(error, Error::HttpRequestBodySize(Some(5))), "{error:?}");
        let within = RequestBody::new(body("01234"), 5, stats.clone());
        assert_eq!(within.collect().await.unwrap().to_bytes(), "01234");
        assert_eq!(stats.http().bytes_sent(), 5);
    }
}
