//! At the thread limit (`RLIMIT_NPROC`): building a runtime fails with an error naming the
//! worker and the limit's value, and leaves no thread behind; `spawn_blocking` queues its job
//! for the pool threads that run, and with none running panics (once) with a message naming the
//! limit; the signal dispatcher's error says the same. Everything works again below the limit.
//!
//! The limit counts the threads of a user, and does not bind root, so the test runs in a child
//! process (this binary, re-run on just this test with `GREEN_TEST_CHILD` set) that becomes a
//! user nobody else is and lowers its own limit; it is skipped where it cannot change user.

use std::time::Duration;

mod common;
use common::child::{expect_child_ok, is_child};

/// How long the child may take before it counts as hung (and is killed).
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// The first of the user and group ids the child takes (this plus its pid): ids no account
/// has, one per child, so that only the child's own threads count toward its limit.
const LONE_IDS: libc::uid_t = 1_900_000_000;

const TEST: &str = "at_the_thread_limit_errors_name_it_and_nothing_is_lost";

#[test]
fn at_the_thread_limit_errors_name_it_and_nothing_is_lost() {
    if is_child() {
        child();
        return;
    }
    let Some(output) = expect_child_ok(TEST, CHILD_TIMEOUT) else { return };
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The panic of spawn_blocking's caller is the one report: its job's waiter says nothing.
    assert!(!stderr.contains("the job was dropped unrun"), "reported twice:\n{stderr}");
}

/// The threads of this process.
fn threads() -> u64 {
    std::fs::read_dir("/proc/self/task").unwrap().count() as u64
}

/// Sets the soft thread limit.
fn set_thread_limit(soft: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is valid for writes of a `rlimit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) }, 0);
    limit.rlim_cur = soft.min(limit.rlim_max);
    // SAFETY: `limit` is a valid `rlimit`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &limit) }, 0);
}

/// Asserts that `message` names the thread limit with its value `limit`, and `what`.
fn assert_names(message: &str, what: &str, limit: u64) {
    let value = format!("ulimit -u = {limit}");
    for needle in [what, value.as_str()] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    println!("child: {message}");
}

fn child() {
    // 1. Become a user of our own (every thread: glibc applies it to all).
    let id = LONE_IDS + std::process::id();
    // SAFETY: setresgid and setresuid take integers only.
    let changed = unsafe { libc::setresgid(id, id, id) == 0 && libc::setresuid(id, id, id) == 0 };
    if !changed {
        println!("child: skipped: cannot change user ({})", std::io::Error::last_os_error());
        return;
    }

    // 2. A runtime of four workers with room for two more threads: the third fails to start.
    let before = threads();
    set_thread_limit(before + 2);
    let e = green::Runtime::builder().workers(4).blocking_threshold(None).build().unwrap_err();
    assert_names(&e.to_string(), "could not start worker thread 2 of 4", before + 2);
    assert!(common::eventually(Duration::from_secs(10), || threads() == before), "threads left behind");

    // 3. A runtime with room for one blocking-pool thread: jobs beyond it wait for it.
    let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().unwrap();
    let with_runtime = threads();
    set_thread_limit(with_runtime + 1);
    let sum: u32 = rt.block_on(|| {
        let jobs: Vec<_> = (0..4u32)
            .map(|i| {
                green::spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    i
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).sum()
    });
    assert_eq!(sum, 6);
    drop(rt);
    set_thread_limit(u64::MAX);

    // 4. With no room at all and no pool thread running, spawn_blocking panics naming the limit.
    let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().unwrap();
    let limit = threads();
    set_thread_limit(limit);
    let message = rt.block_on(|| {
        let caught = std::panic::catch_unwind(|| green::spawn_blocking(|| 1));
        common::panic_text(&*caught.expect_err("spawn_blocking with no thread to run it"))
    });
    assert_names(&message, "no blocking-pool thread is running and none could be started", limit);
    // The signal dispatcher cannot start either.
    let e = green::signal::Signals::new(&[green::signal::Signal::User1]).unwrap_err();
    assert_names(&e.to_string(), "could not start the signal dispatcher thread", limit);

    // 4b. The same with two workers, from an OS thread: the job's waiter starts on a worker at
    //     once and parks for the job; dropped unrun, the job wakes it, and it must not report the
    //     failure that the caller's panic reports (the parent looks at stderr).
    set_thread_limit(u64::MAX);
    let two = green::Runtime::builder().workers(2).blocking_threshold(None).build().unwrap();
    // Both workers kept awake, so that they start and wake the waiter at once.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|i| {
            let stop = stop.clone();
            green::Builder::new()
                .worker(i)
                .spawn_on(two.handle(), move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        green::yield_now();
                    }
                })
                .unwrap()
        })
        .collect();
    let limit = threads();
    set_thread_limit(limit);
    for _ in 0..50 {
        let caught = std::panic::catch_unwind(|| two.handle().spawn_blocking(|| 1));
        assert!(caught.is_err(), "spawn_blocking with no thread to run it");
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    spinners.into_iter().for_each(|s| s.join().unwrap());
    drop(two);

    // 5. Below the limit again, all of it works.
    set_thread_limit(u64::MAX);
    assert_eq!(rt.block_on(|| green::spawn_blocking(|| 7).join().unwrap()), 7);
    assert!(green::signal::Signals::new(&[green::signal::Signal::User1]).is_ok());
    let four = green::Runtime::builder().workers(4).build().unwrap();
    assert_eq!(four.block_on(|| 4), 4);
    println!("child: ok");
}
