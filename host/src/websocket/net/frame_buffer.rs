//! One spare buffer per thread for the frames the host makes of large sends.
//!
//! A frame is written out and dropped before the guest's next send is framed, so the next frame can go into the same
//! memory, still mapped and in the cache, instead of a fresh allocation (1 MiB echoes, twelve rounds alternating builds
//! with and without it: 690 against 770 us of the client's CPU per message on average, 1,182 against 1,111 msg/s;
//! BENCHMARKS.md). Per thread rather than per connection, so that idle sessions hold none; at most [`KEPT_UP_TO`]
//! per thread.

use std::cell::Cell;

use tokio_tungstenite::tungstenite::Bytes;

/// Larger buffers (a 16 MiB message, say) go back to the allocator.
const KEPT_UP_TO: usize = 4 << 20;

thread_local! {
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// An empty buffer with room for `len` bytes: this thread's spare when it is large enough.
pub(super) fn take(len: usize) -> Vec<u8> {
    let mut spare = SPARE.with(Cell::take);
    if spare.capacity() < len {
        return Vec::with_capacity(len);
    }
    spare.clear();
    spare
}

/// `frame` as `Bytes` that hand its buffer back as the spare of the thread that drops them.
pub(super) fn recycled(frame: Vec<u8>) -> Bytes {
    Bytes::from_owner(Recycled(frame))
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        if self.0.capacity() > KEPT_UP_TO {
            return;
        }
        let buffer = std::mem::take(&mut self.0);
        // A thread being torn down has no spare to keep.
        let _ = SPARE.try_with(|spare| {
            let held = spare.take();
            spare.set(if held.capacity() < buffer.capacity() { buffer } else { held });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_frame_is_the_next_ones_buffer() {
        drop(recycled(vec![7; 100_000]));
        let kept = SPARE.with(Cell::take);
        assert_eq!(kept.capacity(), 100_000, "the dropped frame's buffer is kept");
        SPARE.with(|spare| spare.set(kept));
        let next = take(90_000);
        assert!(next.is_empty() && next.capacity() == 100_000, "and given to the next frame");
        // Too small for a larger frame: a fresh one, and the larger is kept once dropped.
        drop(recycled(next));
        let larger = take(200_000);
        assert!(larger.capacity() >= 200_000);
        drop(recycled(larger));
        assert!(SPARE.with(Cell::take).capacity() >= 200_000);
    }

    #[test]
    fn buffers_over_the_limit_are_not_kept() {
        drop(recycled(vec![0; KEPT_UP_TO + 1]));
        assert_eq!(SPARE.with(Cell::take).capacity(), 0);
    }
}
