//! Out of memory for a green thread's stack: the green thread fails to start, its `join` says
//! why (naming the address-space limit when one is set), the others run on, and the process
//! lives. Each test runs in a child process (this binary, re-run on just that test with
//! `GREEN_TEST_CHILD` set), which lowers its own limits or makes its allocator fail.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use green::runtime::StackLayout;

mod common;
use common::child::{expect_child_ok, is_child};

/// How long a child may take before it counts as hung (and is killed).
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The system allocator, except that allocations of at least [`FAIL_FROM`] bytes fail.
struct FailingLarge;

/// Allocations this large or larger fail; `usize::MAX` (the start): none does.
static FAIL_FROM: AtomicUsize = AtomicUsize::new(usize::MAX);

// SAFETY: every call that does not fail goes to the system allocator with the caller's
// arguments; a failure is a null pointer, which `alloc` may return.
unsafe impl GlobalAlloc for FailingLarge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= FAIL_FROM.load(Ordering::Relaxed) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `alloc` is the one `System.alloc` needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: FailingLarge = FailingLarge;

/// Parent: the child printed `child: ok` and exited successfully.
fn assert_child_ok(test: &str) {
    expect_child_ok(test, CHILD_TIMEOUT).expect("the child ran");
}

/// The first stack of the process registers its chunk with the overflow handler's registry,
/// whose first block is a 72 KiB allocation. With no memory for it, the green thread fails to
/// start and says why; the process used to abort ("memory allocation of 73728 bytes failed").
#[test]
fn no_memory_for_the_stack_registry_fails_the_green_thread_not_the_process() {
    const TEST: &str = "no_memory_for_the_stack_registry_fails_the_green_thread_not_the_process";
    if !is_child() {
        assert_child_ok(TEST);
        return;
    }
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    // 1. No allocation of 64 KiB or more succeeds: the first green thread cannot start.
    FAIL_FROM.store(64 << 10, Ordering::Relaxed);
    let error = rt.handle().spawn(|| 7).join().unwrap_err();
    FAIL_FROM.store(usize::MAX, Ordering::Relaxed);
    let message = io::Error::from(error).to_string();
    println!("child: {message}");
    for needle in ["could not start", "registry of green-thread stacks", "72 KiB", "out of memory"] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    // 2. With memory again, green threads start.
    assert_eq!(rt.block_on(|| green::spawn(|| 8).join().unwrap()), 8);
    drop(rt);
    println!("child: ok");
}

/// Reads `VmSize` from `/proc/self/status`: the address space in use, in bytes.
fn address_space_in_use() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).expect("VmSize in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Sets the soft `RLIMIT_AS`.
fn set_address_space_limit(bytes: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is valid for writes of a `rlimit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) }, 0);
    limit.rlim_cur = bytes.min(limit.rlim_max);
    // SAFETY: `limit` is a valid `rlimit`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0, "{}", io::Error::last_os_error());
}

/// Green threads this test spawns while the address space is short.
const SPAWNED: usize = 300;

/// Child: with the address space limited to what is in use plus 4 MiB, `SPAWNED` parked green
/// threads are spawned. Those without a stack fail to start, their joins naming the limit; the
/// others run, and all are joined once the limit is lifted.
fn stacks_past_the_address_space_limit(layout: StackLayout) {
    let rt = green::Runtime::builder().workers(1).stack_layout(layout).build().unwrap();
    rt.block_on(|| {
        let limit = address_space_in_use() + (4 << 20);
        set_address_space_limit(limit);
        let handles: Vec<_> = (0..SPAWNED).map(|_| green::spawn(green::park)).collect();
        // Each starts (takes its stack, or fails to) and parks, or ends.
        green::yield_now();
        green::yield_now();
        let (failed, parked): (Vec<_>, Vec<_>) = handles.into_iter().partition(|h| h.is_finished());
        set_address_space_limit(u64::MAX);
        println!("child: {} parked, {} failed to start", parked.len(), failed.len());
        assert!(!failed.is_empty() && !parked.is_empty(), "{} failed, {} parked", failed.len(), parked.len());
        let needle = format!("limited to {} KiB by RLIMIT_AS", limit / 1024);
        for handle in failed {
            let message = io::Error::from(handle.join().unwrap_err()).to_string();
            assert!(message.contains("could not start") && message.contains(&needle), "{needle:?} not in {message:?}");
        }
        for handle in &parked {
            handle.thread().unpark();
        }
        for handle in parked {
            handle.join().unwrap();
        }
        // And spawning works again.
        assert_eq!(green::spawn(|| 9).join().unwrap(), 9);
    });
    drop(rt);
    println!("child: ok");
}

#[test]
fn packed_stacks_past_the_address_space_limit_fail_to_start_naming_it() {
    const TEST: &str = "packed_stacks_past_the_address_space_limit_fail_to_start_naming_it";
    if !is_child() {
        assert_child_ok(TEST);
        return;
    }
    stacks_past_the_address_space_limit(StackLayout::Auto);
}

#[test]
fn separate_stacks_past_the_address_space_limit_fail_to_start_naming_it() {
    const TEST: &str = "separate_stacks_past_the_address_space_limit_fail_to_start_naming_it";
    if !is_child() {
        assert_child_ok(TEST);
        return;
    }
    stacks_past_the_address_space_limit(StackLayout::Separate);
}
