//! The stall watch: a peer that reads nothing of what waits to be written to it (its pongs, a close frame, the
//! guest's message) for the stall timeout, while it goes on sending or the guest waits to send, is ended with 1008.
//! `net::wire` notes since when the socket has refused every write; these decide when that is too long.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::live::{lock, ConnectionState};
use crate::bindings::websocket::ErrorCode;
use crate::websocket::net::halves::Probe;

/// Whether the peer has read nothing of what waits to be written to it for `limit` or longer.
pub(super) fn past(probe: &Probe, limit: Duration) -> bool {
    probe.write_stalled_since().is_some_and(|since| since.elapsed() >= limit)
}

/// Resolves once the peer has read nothing for `limit` while a send of the guest's waits on it.
pub(super) async fn exceeded_while_sending(probe: &Probe, state: &ConnectionState, limit: Duration) {
    lasting(|| probe.write_stalled_since().filter(|_| state.sending.load(Ordering::Relaxed) > 0), limit).await;
}

/// `work`'s result, or `None` when `stall` resolves first. Only work that does not finish at its first poll is raced
/// against the stall, whose timer would otherwise tax every message.
pub(super) async fn unless<T>(work: impl Future<Output = T>, stall: impl Future<Output = ()>) -> Option<T> {
    let mut work = std::pin::pin!(work);
    if let Poll::Ready(done) = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await {
        return Some(done);
    }
    tokio::select! {
        biased;
        done = work => Some(done),
        () = stall => None,
    }
}

/// Resolves once `since` has said for `limit` that writes are refused; looks again every `limit` while it says not.
pub(super) async fn lasting(since: impl Fn() -> Option<std::time::Instant>, limit: Duration) {
    loop {
        let wait = match since() {
            Some(since) => limit.saturating_sub(since.elapsed()),
            None => limit,
        };
        if wait.is_zero() {
            return;
        }
        tokio::time::sleep(wait).await;
    }
}

/// The reader gives up on a peer that does not read: the error the guest gets (from its next receive, and from a
/// send blocked on the socket) and the close frame that says why, if the peer ever reads it.
pub(super) fn failure(state: &ConnectionState, limit: Duration) -> (ErrorCode, Option<(CloseCode, &'static str)>) {
    let error = ErrorCode::Limit(format!(
        "the peer read nothing of what was sent to it for {limit:?} while there was more to send (stall timeout); \
         closed with 1008"
    ));
    log::debug!("{}: {error:?}", state.url);
    *lock(&state.stalled) = Some(error.clone());
    (error, Some((CloseCode::Policy, "peer does not read")))
}
