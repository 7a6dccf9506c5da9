//! A `green::sync::Mutex` guard may be dropped by another green thread than the one that took
//! it (moved through `spawn_local`, an `Rc`, or out of `green::run` to the caller): the
//! count of held locks kept in the taker's header (`Header::locks_held`) must not be touched
//! then, since the taker may have finished and its header been freed.
//!
//! Freed blocks are kept (filled with a pattern) while the test runs, and checked afterwards:
//! a write into a freed header shows as a changed byte.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use green::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

const PATTERN: u8 = 0xA5;
const KEPT: usize = 1 << 16;

struct Quarantine;

static ON: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: [(AtomicUsize, AtomicUsize); KEPT] = [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; KEPT];

// SAFETY: forwards to `System`; a block kept in quarantine is never handed out again.
unsafe impl GlobalAlloc for Quarantine {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(Ordering::Acquire) {
            let i = COUNT.fetch_add(1, Ordering::AcqRel);
            if i < KEPT {
                // SAFETY: `ptr` is a block of `layout.size()` bytes, given up by its owner.
                unsafe { ptr.write_bytes(PATTERN, layout.size()) };
                BLOCKS[i].1.store(layout.size(), Ordering::Relaxed);
                BLOCKS[i].0.store(ptr as usize, Ordering::Release);
                return; // kept: never reused while the test looks
            }
        }
        // SAFETY: the caller's contract, passed on: `ptr` came from `System.alloc(layout)`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Quarantine = Quarantine;

/// Freed blocks whose pattern changed: written after they were freed.
fn written_after_free() -> usize {
    let n = COUNT.load(Ordering::Acquire).min(KEPT);
    (0..n)
        .filter(|&i| {
            let ptr = BLOCKS[i].0.load(Ordering::Acquire);
            let len = BLOCKS[i].1.load(Ordering::Relaxed);
            // SAFETY: a kept block, never freed or reused.
            ptr != 0 && unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }.iter().any(|&b| b != PATTERN)
        })
        .count()
}

#[test]
fn a_guard_dropped_by_another_green_thread_or_the_caller_writes_no_freed_header() {
    // Out of `green::run` (its `T` need not be `Send`: the closure runs on the caller's
    // thread), dropped after the runtime and its main green thread are gone.
    let m = Mutex::new(1u32);
    let rw = RwLock::new(1u32);
    ON.store(true, Ordering::Release);
    // Tasks of more than 512 bytes bypass the runtime's cache of task blocks: their headers go
    // back to the global allocator when freed.
    let pad = [0u8; 1024];
    let mref = &m;
    let guard = green::run(move || {
        std::hint::black_box(&pad);
        mref.lock().unwrap()
    });
    drop(guard);

    // Moved to another green thread of the worker, after the taker has finished and been freed.
    green::run(move || {
        let m: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(2)));
        let rw: &'static RwLock<u32> = Box::leak(Box::new(RwLock::new(2)));
        type Guards = Option<(MutexGuard<'static, u32>, RwLockReadGuard<'static, u32>)>;
        let slot: Rc<RefCell<Guards>> = Rc::default();
        let taker = {
            let slot = slot.clone();
            green::spawn_local(move || {
                std::hint::black_box(&pad);
                *slot.borrow_mut() = Some((m.lock().unwrap(), rw.read().unwrap()));
            })
        };
        taker.join().unwrap();
        let dropper = green::spawn_local(move || drop(slot.borrow_mut().take()));
        dropper.join().unwrap();
        assert_eq!(*m.try_lock().unwrap(), 2);
        assert_eq!(*rw.try_write().unwrap(), 2);
    });
    ON.store(false, Ordering::Release);
    assert_eq!(*m.try_lock().unwrap(), 1);
    assert_eq!(*rw.try_write().unwrap(), 1);
    assert_eq!(written_after_free(), 0, "a freed block was written: a lock count in a freed header");
}
