//! The bounded queue between a connection's reader task and the guest: what the peer sent, waiting to be taken.
//!
//! One lock per message on each side, and a wake-up only when the guest waits on an empty queue or the reader on a
//! full one: a channel plus byte semaphores cost a lock and a wake-up on every message.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::incoming::Incoming;
use crate::bindings::websocket::ErrorCode;

/// What the guest gets from `receive`: a message, `None` for the end, or an error.
pub(crate) type Received = Result<Option<Incoming>, ErrorCode>;

/// The received bytes all the connections of one session may hold together.
#[derive(Debug)]
pub(crate) struct SessionBudget {
    limit: usize,
    used: AtomicUsize,
    /// Readers waiting for room, so a release wakes them only when someone waits.
    waiting: AtomicUsize,
    room: Notify,
}

impl SessionBudget {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(SessionBudget {
            limit: limit.max(1),
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        })
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Take `bytes` of the budget, waiting while it is spent.
    async fn take(&self, bytes: usize) {
        loop {
            if self.try_take(bytes) {
                return;
            }
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            // Released between the first try and `enable`: no wake-up would come for it.
            if self.try_take(bytes) {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            room.await;
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// One connection's queue.
pub(crate) struct Queue {
    state: Mutex<State>,
    max_messages: usize,
    max_bytes: usize,
    session: Arc<SessionBudget>,
    /// Wakes the guest: something was queued on an empty queue, or the reading ended.
    ready: Notify,
    /// Wakes the reader: the guest took something from a full queue, or let go of its handle.
    room: Notify,
}

#[derive(Default)]
struct State {
    /// Each item with the bytes it holds of both budgets.
    items: VecDeque<(Result<Incoming, ErrorCode>, usize)>,
    bytes: usize,
    /// The reader is done: after the items, the guest gets the end.
    ended: bool,
    /// The guest let go of its handle: nothing more is queued.
    closed: bool,
    /// The reader waits for room.
    reader_waiting: bool,
    peak_messages: usize,
    peak_bytes: usize,
}

/// The guest let go of its handle; what the reader had is no longer wanted.
pub(crate) struct Gone;

impl Queue {
    pub(crate) fn new(max_messages: usize, max_bytes: usize, session: Arc<SessionBudget>) -> Self {
        Queue {
            state: Mutex::new(State::default()),
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
            session,
            ready: Notify::new(),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queue a message for the guest, waiting while the queue (or the session's budget) is full. A message larger
    /// than a budget still gets through, alone.
    pub(crate) async fn push(&self, message: Incoming, size: usize) -> Result<(), Gone> {
        let size = size.min(self.max_bytes).min(self.session.limit);
        loop {
            let fits = {
                let mut state = self.lock();
                if state.closed {
                    return Err(Gone);
                }
                let fits = state.items.is_empty()
                    || (state.items.len() < self.max_messages && state.bytes + size <= self.max_bytes);
                state.reader_waiting = !fits;
                fits
            };
            if !fits {
                // A permit stored by a `take` between the unlock and here is not lost (notify_one keeps it).
                self.room.notified().await;
                continue;
            }
            // The session's budget is shared: wait for it without holding this queue.
            self.session.take(size).await;
            let was_empty = {
                let mut state = self.lock();
                if state.closed {
                    drop(state);
                    self.session.release(size);
                    return Err(Gone);
                }
                let was_empty = state.items.is_empty();
                state.items.push_back((Ok(message), size));
                state.bytes += size;
                state.peak_messages = state.peak_messages.max(state.items.len());
                state.peak_bytes = state.peak_bytes.max(state.bytes);
                was_empty
            };
            if was_empty {
                self.ready.notify_one();
            }
            return Ok(());
        }
    }

    /// The reading failed: `error` comes after the queued messages (whatever the limits).
    pub(crate) fn fail(&self, error: ErrorCode) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let was_empty = state.items.is_empty();
        state.items.push_back((Err(error), 0));
        drop(state);
        if was_empty {
            self.ready.notify_one();
        }
    }

    /// The reading is over: once the guest has taken what is queued, it gets the end.
    pub(crate) fn end(&self) {
        self.lock().ended = true;
        self.ready.notify_one();
    }

    /// Wait until the guest has taken everything (or let go of its handle).
    pub(crate) async fn drained(&self) {
        loop {
            let drained = {
                let mut state = self.lock();
                let drained = state.items.is_empty() || state.closed;
                state.reader_waiting = !drained;
                drained
            };
            if drained {
                return;
            }
            self.room.notified().await;
        }
    }

    /// Take the next item if there is one: `Some(Ok(None))` once the reading is over and everything was taken.
    pub(crate) fn try_take(&self) -> Option<Received> {
        let mut state = self.lock();
        match state.items.pop_front() {
            Some((item, size)) => {
                state.bytes -= size;
                let wake_reader = std::mem::take(&mut state.reader_waiting);
                drop(state);
                self.session.release(size);
                if wake_reader {
                    self.room.notify_one();
                }
                Some(item.map(Some))
            }
            None if state.ended => Some(Ok(None)),
            None => None,
        }
    }

    /// Wait until [`try_take`](Queue::try_take) has something.
    pub(crate) async fn ready(&self) {
        loop {
            let ready = {
                let state = self.lock();
                !state.items.is_empty() || state.ended
            };
            if ready {
                return;
            }
            self.ready.notified().await;
        }
    }

    /// The guest let go of its handle: drop what is queued, and stop queueing.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let bytes: usize = state.items.drain(..).map(|(_, size)| size).sum();
        state.bytes = 0;
        drop(state);
        self.session.release(bytes);
        self.room.notify_one();
    }

    /// The most messages and bytes that waited at once.
    pub(crate) fn peaks(&self) -> (usize, usize) {
        let state = self.lock();
        (state.peak_messages, state.peak_bytes)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let bytes = self.lock().bytes;
        self.session.release(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `future` is ready at its first poll (a push the queue admits at once is; one it holds is not).
    async fn poll_once<F: std::future::Future>(mut future: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx))).await
    }

    fn text(s: &str) -> Incoming {
        Incoming::Text(s.to_owned())
    }

    #[tokio::test]
    async fn items_come_in_order_then_the_error_then_the_end() {
        let queue = Queue::new(4, 100, SessionBudget::new(1000));
        queue.push(text("a"), 1).await.ok().unwrap();
        queue.push(text("b"), 1).await.ok().unwrap();
        queue.fail(ErrorCode::Protocol("bad".into()));
        queue.end();
        assert!(matches!(queue.try_take(), Some(Ok(Some(Incoming::Text(t)))) if t == "a"));
        assert!(matches!(queue.try_take(), Some(Ok(Some(Incoming::Text(t)))) if t == "b"));
        assert!(matches!(queue.try_take(), Some(Err(ErrorCode::Protocol(_)))));
        assert!(matches!(queue.try_take(), Some(Ok(None))));
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_reader_until_the_guest_takes() {
        let queue = Arc::new(Queue::new(2, 100, SessionBudget::new(1000)));
        queue.push(text("1"), 1).await.ok().unwrap();
        queue.push(text("2"), 1).await.ok().unwrap();
        let mut pusher = std::pin::pin!(queue.push(text("3"), 1));
        assert!(poll_once(pusher.as_mut()).await.is_pending(), "the third message went past the limit of 2");
        queue.try_take().unwrap().unwrap();
        assert!(pusher.await.is_ok());
    }

    #[tokio::test]
    async fn the_session_budget_is_shared_and_given_back() {
        let budget = SessionBudget::new(10);
        let first = Queue::new(100, 100, budget.clone());
        let second = Arc::new(Queue::new(100, 100, budget.clone()));
        first.push(text("x"), 8).await.ok().unwrap();
        let mut pusher = std::pin::pin!(second.push(text("y"), 5));
        assert!(poll_once(pusher.as_mut()).await.is_pending(), "the session budget was overdrawn");
        drop(first);
        assert!(pusher.await.is_ok());
        assert_eq!(budget.used(), 5);
        second.close();
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn the_byte_limit_counts_what_is_queued_and_gives_it_back_when_taken() {
        let queue = Queue::new(100, 10, SessionBudget::new(1000));
        queue.push(text("a"), 4).await.ok().unwrap();
        queue.push(text("b"), 4).await.ok().unwrap();
        {
            // 8 bytes queued: 3 more would pass the limit of 10.
            let mut third = std::pin::pin!(queue.push(text("c"), 3));
            assert!(poll_once(third.as_mut()).await.is_pending(), "11 bytes queued with a limit of 10");
        }
        queue.try_take().unwrap().unwrap();
        // 4 bytes left: 6 more fit exactly.
        let mut fits = std::pin::pin!(queue.push(text("c"), 6));
        assert!(poll_once(fits.as_mut()).await.is_ready(), "10 bytes refused with a limit of 10");
        assert_eq!(queue.peaks(), (2, 10));
    }

    #[tokio::test]
    async fn drained_waits_for_the_guest_to_take_everything_or_let_go() {
        let queue = Queue::new(4, 100, SessionBudget::new(1000));
        queue.push(text("a"), 1).await.ok().unwrap();
        {
            let mut drained = std::pin::pin!(queue.drained());
            assert!(poll_once(drained.as_mut()).await.is_pending(), "drained with a message waiting");
            queue.try_take().unwrap().unwrap();
            assert!(poll_once(drained.as_mut()).await.is_ready(), "not drained once taken");
        }
        queue.push(text("b"), 1).await.ok().unwrap();
        queue.close();
        assert!(poll_once(std::pin::pin!(queue.drained())).await.is_ready(), "a closed queue is drained");
    }

    #[tokio::test]
    async fn ready_waits_for_an_item_or_the_end() {
        let queue = Queue::new(4, 100, SessionBudget::new(1000));
        assert!(queue.try_take().is_none(), "an empty queue that has not ended has nothing yet");
        assert!(poll_once(std::pin::pin!(queue.ready())).await.is_pending());
        queue.push(text("a"), 1).await.ok().unwrap();
        assert!(poll_once(std::pin::pin!(queue.ready())).await.is_ready());
        queue.try_take().unwrap().unwrap();
        queue.end();
        assert!(poll_once(std::pin::pin!(queue.ready())).await.is_ready(), "the end is something to take");
        assert!(matches!(queue.try_take(), Some(Ok(None))));
    }
}
