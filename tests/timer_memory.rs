//! A green thread that finishes while a timer entry of its own is still pending (a read with a
//! long timeout that data cut short, say) is freed at once: the entry does not keep it alive
//! until its deadline. Counted with a counting allocator, so this file is its own test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator with the caller's arguments; the counter
// is only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is the one `System.alloc` needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `alloc`: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Spawns and joins `n` green threads that each wait for a message with a 60 s timeout, which
/// a message sent first cuts short, leaving the wait's timer entry for 60 s.
fn finish_during_timed_waits(n: usize) {
    for _ in 0..n {
        green::spawn(|| {
            let (tx, rx) = green::sync::mpmc::channel::<u8>();
            let sender = green::spawn(move || tx.send(1).unwrap());
            assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(1));
            sender.join().unwrap();
        })
        .join()
        .unwrap();
    }
}

#[test]
fn finished_green_threads_are_not_kept_by_their_pending_timer_entries() {
    const N: usize = 4_000;
    let runtime = green::Runtime::builder().workers(1).build().unwrap();
    runtime.block_on(|| {
        // Grow what grows once (slot table, queues, the heap's buffer) before counting.
        finish_during_timed_waits(N);
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        finish_during_timed_waits(N);
        let grown = LIVE_BYTES.load(Ordering::Relaxed) - before;
        // The entries themselves stay until their deadline (24 bytes each, and the heap's
        // buffer doubling); each finished green thread kept alive would add its task, about
        // 200 bytes.
        let per_thread = grown / N as isize;
        assert!(per_thread < 100, "{grown} bytes more after {N} more green threads finished: {per_thread} each");
    });
}
