//! glibc's allocator, set up for a process that moves large messages.
//!
//! glibc serves blocks over its mmap threshold (128 KiB at first) with a fresh mapping, and gives the top of its heap
//! back to the kernel past its trim threshold. Both rise only as large blocks are freed, and only to the size of
//! those blocks: a session passing 1 MiB messages kept getting fresh pages for each one, and the page faults cost
//! more than copying the message (profiled with `perf record -e page-faults`; BENCHMARKS.md, echo throughput).
//! Setting both at the values glibc's own adjustment stops at (32 MiB, and twice that) from the start keeps the
//! freed blocks for the next message.

/// Glibc's largest dynamic mmap threshold on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Keep freed large blocks for reuse (no-op where the C library is not glibc).
pub fn keep_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD);
    }
}

/// Give the kernel back the free pages inside the heap, not only at its top.
///
/// Sessions that start together interleave what they keep with what they needed only to connect (handshake buffers,
/// the opening's future): once they are connected and idle, the holes stay resident. 2,000 idle echo sessions: 6
/// KiB per session less PSS after one call (BENCHMARKS, "what a session holds").
pub fn give_back_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes the allocator's own locks; it may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
