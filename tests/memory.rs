//! What finished green threads leave behind, counted with a counting allocator (so this file is
//! its own test binary, and its tests take turns).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
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

/// Held by each test while it counts: the count is the whole process's.
static COUNTING: Mutex<()> = Mutex::new(());

/// How many live bytes `run(n)` leaves behind per unit, on a one-worker runtime: measured over
/// a second call, so that what grows once (slot table, queues, the heap's buffers) is already
/// grown. Holds the counting turn meanwhile.
fn bytes_kept_per_unit(n: usize, run: fn(usize)) -> isize {
    let _turn = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = green::Runtime::builder().workers(1).build().unwrap();
    runtime.block_on(move || {
        run(n);
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        run(n);
        (LIVE_BYTES.load(Ordering::Relaxed) - before) / n as isize
    })
}

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

/// A green thread that finishes while a timer entry of its own is still pending (a read with a
/// long timeout that data cut short, say) is freed at once: the entry does not keep it alive
/// until its deadline.
#[test]
fn finished_green_threads_are_not_kept_by_their_pending_timer_entries() {
    const N: usize = 4_000;
    // The entries themselves stay until their deadline (24 bytes each, and the heap's buffer
    // doubling); each finished green thread kept alive would add its task, about 200 bytes.
    let per_thread = bytes_kept_per_unit(N, finish_during_timed_waits);
    assert!(per_thread < 100, "{per_thread} bytes more per green thread after {N} more finished");
}

/// Opens `n` scopes, each with two named children, one joined and one not.
fn scopes(n: usize) {
    let data = [1u64; 16];
    for i in 0..n {
        let sum = green::scope(|s| {
            let named = || green::Builder::new().name(format!("child {i} of a scope, with a long name"));
            let joined = s.spawn_with(named(), || data.iter().sum::<u64>()).unwrap();
            s.spawn_with(named(), || data.len()).unwrap();
            joined.join().unwrap()
        });
        assert_eq!(sum, 16);
    }
}

/// Regression: each child's header holds its scope's bookkeeping, and the scope's list of
/// children held the headers: every scope with children leaked both (about 1.3 KB a scope with
/// two named children).
#[test]
fn a_scope_frees_its_children_when_it_ends() {
    const N: usize = 4_000;
    let per_scope = bytes_kept_per_unit(N, scopes);
    assert!(per_scope < 50, "{per_scope} bytes more per scope after {N} more scopes");
}

/// Spawns `n` green threads, and asks each handle for its thread twice, from two green threads
/// at once for half of them, before joining.
fn lend_threads(n: usize) {
    for i in 0..n {
        let handle = std::sync::Arc::new(green::spawn(|| ()));
        let other = (i % 2 == 0).then(|| {
            let handle = handle.clone();
            green::spawn(move || handle.thread().id())
        });
        let id = handle.thread().id();
        assert_eq!(handle.thread().id(), id);
        if let Some(other) = other {
            assert_eq!(other.join().unwrap(), id);
        }
        std::sync::Arc::into_inner(handle).expect("the other green thread let go").join().unwrap();
    }
}

/// What `JoinHandle::thread` lends is freed with the handle, and a handle stays two words
/// (a million parked green threads keep a million handles).
#[test]
fn a_lent_thread_is_freed_with_its_join_handle() {
    const N: usize = 2_000;
    assert!(size_of::<green::JoinHandle<u64>>() <= 2 * size_of::<usize>());
    let per_handle = bytes_kept_per_unit(N, lend_threads);
    // A lent thread kept would be 24 bytes.
    assert!(per_handle < 8, "{per_handle} bytes more per handle after {N} more");
}
