//! What a session does, as it happens, for a tool that watches its sessions without wrapping them
//! ([`SessionBuilder::events`](crate::SessionBuilder::events)): connections opened and closed, messages each way,
//! errors, the outcome. Delivered through a bounded queue that never makes the session wait: when the tool falls
//! behind, events are dropped and counted, and the next one delivered is [`SessionEvent::Missed`] with the count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::session::Outcome;

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the guest to the peer.
    Sent,
    /// From the peer, taken by the guest.
    Received,
}

/// Who started the closing handshake of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedBy {
    /// The guest (`close`), or the host for it (the handle dropped, the session ended, a protocol error).
    Us,
    /// The peer's close frame came first.
    Peer,
    /// Nobody: the connection was lost without a close frame (reported as 1006).
    Lost,
}

/// One thing a session did. Connections are numbered from 1 in the order the session opened them.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A connection opened.
    Opened {
        /// The connection's number in its session.
        connection: u64,
        /// The URL connected to, after redirects.
        url: String,
        /// The subprotocol the server chose.
        protocol: Option<String>,
        /// Whether messages travel compressed.
        compressed: bool,
    },
    /// Opening a connection failed (the guest got the error).
    ConnectFailed {
        /// The URL the guest asked for.
        url: String,
        /// Why, in words.
        error: String,
    },
    /// A text or binary message crossed the component boundary: sent by the guest, or taken by it.
    Message {
        /// The connection's number.
        connection: u64,
        /// Which way.
        direction: Direction,
        /// The payload's size in bytes.
        bytes: u64,
    },
    /// A connection failed: a protocol error, a message too large, a keepalive or a stall timeout.
    Error {
        /// The connection's number.
        connection: u64,
        /// Why, in words.
        error: String,
    },
    /// A connection ended.
    Closed {
        /// The connection's number.
        connection: u64,
        /// The close code (the peer's, or 1006 when it vanished).
        code: u16,
        /// The close reason (text from the peer: escape it before printing).
        reason: String,
        /// Who started the closing handshake.
        closed_by: ClosedBy,
    },
    /// The session ended (always the last event).
    Ended {
        /// How.
        outcome: Outcome,
    },
    /// The tool fell behind: this many events were dropped before the next one.
    Missed {
        /// How many.
        count: u64,
    },
}

/// Where a session's events go: nowhere by default. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventSink {
    inner: Option<Arc<Sink>>,
}

#[derive(Debug)]
struct Sink {
    tx: mpsc::Sender<SessionEvent>,
    missed: AtomicU64,
    connections: AtomicU64,
}

/// A session's events, in order, from [`SessionBuilder::events`](crate::SessionBuilder::events).
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<SessionEvent>,
}

impl EventStream {
    /// The next event; `None` once the session has ended and every event was taken.
    pub async fn recv(&mut self) -> Option<SessionEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<SessionEvent> {
        self.rx.try_recv().ok()
    }
}

impl EventSink {
    /// A sink that holds at most `capacity` events the tool has not taken, and its stream.
    pub(crate) fn bounded(capacity: usize) -> (EventSink, EventStream) {
        let (tx, rx) = mpsc::channel(capacity.max(2));
        let sink = Sink { tx, missed: AtomicU64::new(0), connections: AtomicU64::new(0) };
        (EventSink { inner: Some(Arc::new(sink)) }, EventStream { rx })
    }

    /// Whether anyone is watching (so callers can skip making an event nobody takes).
    pub(crate) fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// The number of the next connection opened.
    pub(crate) fn next_connection(&self) -> u64 {
        self.inner.as_ref().map_or(0, |sink| sink.connections.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Deliver `event` if there is room, else count it as missed. Never waits.
    pub(crate) fn emit(&self, event: SessionEvent) {
        let Some(sink) = &self.inner else { return };
        let missed = sink.missed.load(Ordering::Relaxed);
        if missed > 0 {
            match sink.tx.try_send(SessionEvent::Missed { count: missed }) {
                Ok(()) => {
                    sink.missed.fetch_sub(missed, Ordering::Relaxed);
                }
                Err(_) => {
                    sink.missed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        if sink.tx.try_send(event).is_err() {
            sink.missed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The last event: waits (bounded by the tool taking events) only if the queue is full, so a tool always
    /// learns how a session ended and how many events it missed.
    pub(crate) async fn end(&self, outcome: Outcome) {
        let Some(sink) = &self.inner else { return };
        let missed = sink.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            let _ = sink.tx.send(SessionEvent::Missed { count: missed }).await;
        }
        let _ = sink.tx.send(SessionEvent::Ended { outcome }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_tool_misses_events_and_is_told_how_many() {
        let (sink, mut stream) = EventSink::bounded(4);
        for bytes in 0..10 {
            sink.emit(SessionEvent::Message { connection: 1, direction: Direction::Sent, bytes });
        }
        let mut got = Vec::new();
        while let Some(event) = stream.try_recv() {
            got.push(event);
        }
        assert_eq!(got.len(), 4);
        sink.emit(SessionEvent::Message { connection: 1, direction: Direction::Received, bytes: 99 });
        assert_eq!(stream.try_recv(), Some(SessionEvent::Missed { count: 6 }));
        assert!(matches!(stream.try_recv(), Some(SessionEvent::Message { bytes: 99, .. })));
        // Nobody watching: nothing to do, nothing kept.
        EventSink::default().emit(SessionEvent::Missed { count: 0 });
    }
}
