//! Live traffic figures of one session, readable from any thread while it runs (for progress lines and reports).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How many connect (and HTTP response) times a session keeps: a guest that reconnects in a loop must not grow the
/// host's memory.
const MAX_CONNECT_TIMES: usize = 1024;

/// What one session's connections carried so far. Counted by the host as messages cross the component boundary:
/// text and binary messages only (not pings, pongs or close frames), payload bytes only.
///
/// Get it from [`SessionBuilder::stats`](crate::SessionBuilder::stats); it stays readable after the session ends.
#[derive(Debug, Default)]
pub struct SessionStats {
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    wire_bytes_sent: AtomicU64,
    wire_bytes_received: AtomicU64,
    connects: AtomicU64,
    failed_connects: AtomicU64,
    connect_times: Mutex<Vec<Duration>>,
    first_connected: OnceLock<Instant>,
    http: HttpStats,
}

/// What one session's outgoing HTTP requests did: counted by the host's sender, bodies' bytes only.
#[derive(Debug, Default)]
pub struct HttpStats {
    requests: AtomicU64,
    failed: AtomicU64,
    denied: AtomicU64,
    statuses: [AtomicU64; 5],
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    response_times: Mutex<Vec<Duration>>,
}

impl HttpStats {
    /// Requests the guest made (granted or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Requests that got no response: denied, or failed connecting, sending or reading the response's head.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Of the failed requests, those the grant refused.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub fn statuses(&self) -> [u64; 5] {
        std::array::from_fn(|class| self.statuses[class].load(Ordering::Relaxed))
    }

    /// Bytes of request bodies sent.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Bytes of response bodies received.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }

    /// How long each response took to arrive (from the request to its head), in order; the first 1024.
    pub fn response_times(&self) -> Vec<Duration> {
        kept(&self.response_times)
    }

    pub(crate) fn requested(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counted as failed too, by whoever sees the request end.
    pub(crate) fn refused(&self) {
        self.denied.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn request_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn responded(&self, status: u16, took: Duration) {
        if let Some(class) = (status / 100).checked_sub(1).filter(|class| *class < 5) {
            self.statuses[usize::from(class)].fetch_add(1, Ordering::Relaxed);
        }
        keep(&self.response_times, took);
    }

    pub(crate) fn body_sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn body_received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

impl SessionStats {
    /// Messages the guest sent that the host handed to a socket.
    pub fn messages_sent(&self) -> u64 {
        self.messages_sent.load(Ordering::Relaxed)
    }

    /// Payload bytes of those messages.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Messages the guest took from its connections.
    pub fn messages_received(&self) -> u64 {
        self.messages_received.load(Ordering::Relaxed)
    }

    /// Payload bytes of those messages.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }

    /// Bytes written to the session's WebSocket connections: frames and handshakes as they went on the wire,
    /// compressed where compression was agreed on (before TLS).
    pub fn wire_bytes_sent(&self) -> u64 {
        self.wire_bytes_sent.load(Ordering::Relaxed)
    }

    /// Bytes read from the session's WebSocket connections, as for [`SessionStats::wire_bytes_sent`].
    pub fn wire_bytes_received(&self) -> u64 {
        self.wire_bytes_received.load(Ordering::Relaxed)
    }

    /// Connections opened (handshake done).
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Connection attempts that failed (refused, denied, timed out, not upgraded, ...).
    pub fn failed_connects(&self) -> u64 {
        self.failed_connects.load(Ordering::Relaxed)
    }

    /// How long each successful opening took (DNS, TCP, TLS, handshake and redirects), in order; the first 1024.
    pub fn connect_times(&self) -> Vec<Duration> {
        kept(&self.connect_times)
    }

    /// When the session's first connection opened, if one did.
    pub fn first_connected(&self) -> Option<Instant> {
        self.first_connected.get().copied()
    }

    /// The session's outgoing HTTP requests.
    pub fn http(&self) -> &HttpStats {
        &self.http
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn wire_sent(&self, bytes: usize) {
        self.wire_bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn wire_received(&self, bytes: usize) {
        self.wire_bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn connected(&self, took: Duration) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        let _ = self.first_connected.set(Instant::now());
        keep(&self.connect_times, took);
    }

    pub(crate) fn connect_failed(&self) {
        self.failed_connects.fetch_add(1, Ordering::Relaxed);
    }
}

/// Add `took` to a session's list of times, unless it holds [`MAX_CONNECT_TIMES`] already.
fn keep(times: &Mutex<Vec<Duration>>, took: Duration) {
    if let Ok(mut times) = times.lock() {
        if times.len() < MAX_CONNECT_TIMES {
            times.push(took);
        }
    }
}

/// A copy of a session's list of times.
fn kept(times: &Mutex<Vec<Duration>>) -> Vec<Duration> {
    times.lock().map(|times| times.clone()).unwrap_or_default()
}
