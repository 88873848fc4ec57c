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

/// The guest's request body on its way out: at most `limit` bytes.
pub(super) struct RequestBody {
    inner: WasiBody,
    left: u64,
    limit: u64,
    stats: Arc<SessionStats>,
}

impl RequestBody {
    pub(super) fn new(inner: WasiBody, limit: u64, stats: Arc<SessionStats>) -> Self {
        RequestBody { inner, left: limit, limit, stats }
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
        if let Some(data) = frame.data_ref() {
            let size = data.len() as u64;
            if size > self.left {
                log::debug!("HTTP request body over the session's limit of {} bytes", self.limit);
                return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(self.limit)))));
            }
            self.left -= size;
            self.stats.http().body_sent(data.len());
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

/// The limits a response's body is read within, until it is given the body itself.
pub(super) struct ResponseBody {
    left: u64,
    limit: u64,
    between_bytes: Duration,
    idle: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    stats: Arc<SessionStats>,
    /// Held until the body is read to its end or dropped: the request is in flight until then.
    _permit: OwnedSemaphorePermit,
}

/// A response's body as the guest reads it.
pub(super) struct Reading {
    incoming: hyper::body::Incoming,
    limits: ResponseBody,
}

impl ResponseBody {
    pub(super) fn new(
        limit: u64,
        between_bytes: Duration,
        deadline: Instant,
        stats: Arc<SessionStats>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        ResponseBody {
            left: limit,
            limit,
            between_bytes,
            idle: Box::pin(tokio::time::sleep(between_bytes)),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            stats,
            _permit: permit,
        }
    }

    pub(super) fn reading(self, incoming: hyper::body::Incoming) -> Reading {
        Reading { incoming, limits: self }
    }
}

impl Body for Reading {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.limits.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Error::HttpResponseTimeout)));
        }
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(super::sender::response_error_of_body(error)))),
            Poll::Ready(Some(Ok(frame))) => {
                let limits = &mut this.limits;
                if let Some(data) = frame.data_ref() {
                    let size = data.len() as u64;
                    if size > limits.left {
                        log::debug!("HTTP response body over the session's limit of {} bytes", limits.limit);
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(limits.limit)))));
                    }
                    limits.left -= size;
                    limits.stats.http().body_received(data.len());
                }
                let next = Instant::now() + limits.between_bytes;
                limits.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.limits.idle.as_mut().poll(cx) {
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
