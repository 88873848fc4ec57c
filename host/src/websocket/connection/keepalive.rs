//! Keepalive: a ping every interval, and the connection given up when its pong does not come in time.

use std::time::Duration;

use tokio::time::Instant;

/// The guest's `keepalive` connect option.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeepaliveTimes {
    /// How often to ping.
    pub interval: Duration,
    /// How long after a ping its pong may take before the connection is given up.
    pub timeout: Duration,
}

/// The keepalive clock of one connection: when to ping, and when to give up on the pong.
pub(super) struct Keepalive {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    pong_deadline: Option<Instant>,
}

pub(super) enum Due {
    Ping,
    GiveUp,
}

impl Keepalive {
    pub(super) fn new(KeepaliveTimes { interval, timeout }: KeepaliveTimes) -> Self {
        Keepalive { interval, timeout, next_ping: Instant::now() + interval, pong_deadline: None }
    }

    /// Resolves when a ping is due or the pong is overdue; never, without keepalive.
    pub(super) async fn due(keepalive: &mut Option<Keepalive>) -> Due {
        let Some(keepalive) = keepalive else { return std::future::pending().await };
        match keepalive.pong_deadline {
            Some(deadline) => {
                tokio::time::sleep_until(deadline).await;
                Due::GiveUp
            }
            None => {
                tokio::time::sleep_until(keepalive.next_ping).await;
                keepalive.next_ping += keepalive.interval;
                keepalive.pong_deadline = Some(Instant::now() + keepalive.timeout);
                Due::Ping
            }
        }
    }

    pub(super) fn ponged(&mut self) {
        self.pong_deadline = None;
    }

    pub(super) fn pause(&mut self, paused: Duration) {
        if let Some(deadline) = &mut self.pong_deadline {
            *deadline += paused;
        }
    }
}
