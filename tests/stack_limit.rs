//! With one mapping per stack (`StackLayout::Separate`), green threads stop short of the
//! kernel's `vm.max_map_count` with an error that names it and the fix, and the process keeps
//! working: large allocations succeed, and spawning works again once green threads finish.
//!
//! The test runs in a child process (this binary, re-run on just this test with
//! `GREEN_TEST_CHILD` set), which first fills most of its own mapping limit, so that the limit
//! is reached after about a thousand green threads instead of thirty thousand.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use green::runtime::StackLayout;

mod common;
use common::child::{expect_child_ok, is_child};

/// How long the child may take before it counts as hung (and is killed).
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// Mappings the child leaves free below its limit before starting the runtime: room for about
/// a thousand separate stacks (two mappings each) above the runtime's reserve of 1,024.
const LEFT_FREE: usize = 3000;

/// Filling more mappings than this takes too long for a test (a system with a raised
/// `vm.max_map_count`): the child skips.
const MOST_TO_FILL: usize = 300_000;

/// Green threads the child spawns at most before it gives up waiting for the error.
const MOST_GREEN_THREADS: usize = 4000;

const TEST: &str = "separate_stacks_stop_below_the_map_limit_with_a_clear_error";

#[test]
fn separate_stacks_stop_below_the_map_limit_with_a_clear_error() {
    if is_child() {
        child();
        return;
    }
    expect_child_ok(TEST, CHILD_TIMEOUT);
}

fn count_maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap().trim().parse().unwrap()
}

/// Adds `n` mappings to the process: one region of `n` pages whose pages alternate between
/// read-only and inaccessible, so that the kernel cannot merge them. Never touched, never freed.
fn fill_mappings(n: usize) {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a new anonymous mapping where the kernel chooses overlaps nothing.
    let base = unsafe { libc::mmap(std::ptr::null_mut(), n * page, libc::PROT_READ, flags, -1, 0) };
    assert_ne!(base, libc::MAP_FAILED, "{}", io::Error::last_os_error());
    for i in (1..n).step_by(2) {
        // SAFETY: the page lies in the mapping just made, which nothing else uses.
        let rc = unsafe { libc::mprotect(base.cast::<u8>().add(i * page).cast(), page, libc::PROT_NONE) };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    }
}

/// A green thread parked until `release` is set; counts itself in `started`.
fn parked(started: &Arc<AtomicUsize>) -> (io::Result<green::JoinHandle<()>>, Arc<AtomicBool>) {
    let release = Arc::new(AtomicBool::new(false));
    let (started, flag) = (started.clone(), release.clone());
    let handle = green::Builder::new().spawn(move || {
        started.fetch_add(1, Ordering::SeqCst);
        while !flag.load(Ordering::Acquire) {
            green::park();
        }
    });
    (handle, release)
}

/// Lets the newest green thread start (take its stack and park), or fail to.
fn let_it_start(handle: &green::JoinHandle<()>, started: &AtomicUsize, expected: usize) {
    for _ in 0..1000 {
        if started.load(Ordering::SeqCst) >= expected || handle.is_finished() {
            return;
        }
        green::yield_now();
    }
    panic!("green thread {} neither started nor failed", handle.thread().id());
}

fn child() {
    // 1. Fill the mapping limit but for LEFT_FREE.
    let max = max_map_count();
    let now = count_maps();
    if max > MOST_TO_FILL || max < now + LEFT_FREE {
        println!("child: skipped: vm.max_map_count = {max} with {now} mappings in use");
        return;
    }
    fill_mappings(max - now - LEFT_FREE);
    let filled = count_maps();
    assert!(filled + LEFT_FREE <= max + 50, "filled to {filled} of {max}");
    println!("child: {filled} of vm.max_map_count = {max} mappings in use");

    // 2. Spawn parked green threads until a stack cannot be had.
    let rt = green::Runtime::builder().workers(1).stack_layout(StackLayout::Separate).build().unwrap();
    rt.block_on(|| {
        let started = Arc::new(AtomicUsize::new(0));
        let mut green_threads = Vec::new();
        let error = loop {
            assert!(green_threads.len() < MOST_GREEN_THREADS, "no error after {MOST_GREEN_THREADS} green threads");
            let (handle, release) = parked(&started);
            // The error comes from spawn, or, found at the green thread's start, from join.
            let handle = match handle {
                Ok(handle) => handle,
                Err(e) => break e,
            };
            let_it_start(&handle, &started, green_threads.len() + 1);
            if handle.is_finished() {
                let e = handle.join().unwrap_err();
                break io::Error::from(e);
            }
            green_threads.push((handle, release));
        };
        let message = error.to_string();
        println!("child: {} green threads parked, then: {message}", green_threads.len());
        assert!(green_threads.len() >= 500, "only {} green threads", green_threads.len());
        for needle in ["vm.max_map_count", "sysctl -w vm.max_map_count=262144", "fewer green threads"] {
            assert!(message.contains(needle), "{needle:?} not in {message:?}");
        }

        // 3. The process still works: a large allocation (its own mapping) succeeds.
        let big = vec![7u8; 64 << 20];
        assert_eq!(big[big.len() - 1], 7);
        drop(big);

        // 4. Once some green threads finish, spawning works again.
        for (handle, release) in green_threads.drain(..10) {
            release.store(true, Ordering::Release);
            handle.thread().unpark();
            handle.join().unwrap();
        }
        for _ in 0..10 {
            let (handle, release) = parked(&started);
            let handle = handle.expect("spawn after green threads finished");
            let_it_start(&handle, &started, started.load(Ordering::SeqCst) + 1);
            assert!(!handle.is_finished(), "{:?}", handle.join().unwrap_err());
            green_threads.push((handle, release));
        }

        // 5. Let the rest finish.
        for (handle, release) in green_threads {
            release.store(true, Ordering::Release);
            handle.thread().unpark();
            handle.join().unwrap();
        }
    });
    drop(rt);
    println!("child: ok");
}
