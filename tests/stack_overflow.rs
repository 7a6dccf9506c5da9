//! A green thread that overflows its stack is reported by id and name, with a hint, and the
//! process aborts; every other fault behaves as it would without the runtime.
//!
//! Each test that must crash re-runs this test binary on just itself in a child process, with
//! `GREEN_TEST_CHILD` set so the test body does the crashing part, and checks how the child died
//! and what it wrote to stderr.

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::Duration;

use green::runtime::StackLayout;

mod common;
use common::child::{is_child, run_child};

/// How long a child may take before it counts as hung (and is killed).
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Recurses until the stack runs out; the array keeps each frame large and real.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    std::hint::black_box(&mut frame);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + u64::from(std::hint::black_box(frame[7]))
}

/// Child: a green thread named "deep" recurses without bound; prints its id first.
fn overflow_a_green_thread(layout: StackLayout, stack_size: usize) {
    let rt = green::Runtime::builder().workers(1).stack_layout(layout).build().unwrap();
    rt.block_on(|| {
        let deep = green::Builder::new().name("deep".into()).stack_size(stack_size).spawn(|| recurse(0)).unwrap();
        eprintln!("child: green thread id {}", deep.thread().id());
        let _ = deep.join();
    });
    unreachable!("the overflow should have aborted the process");
}

/// Parent: the child died of SIGABRT after our message, naming the green thread and the fix.
fn assert_overflow_reported(output: &Output, stack_kib: usize) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "status {:?}, stderr:\n{stderr}", output.status);
    let id = stderr
        .lines()
        .find_map(|line| line.strip_prefix("child: green thread id "))
        .unwrap_or_else(|| panic!("no id line in:\n{stderr}"));
    let expected = format!(
        "green: stack overflow in green thread {id} \"deep\" (stack {stack_kib} KiB, guard 64 KiB)\n\
         green: give it a larger stack: green::Builder::new().stack_size(1 << "
    );
    assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
    assert!(stderr.contains("or Runtime::builder().stack_size(..) for all (for green::run's"), "no hint in:\n{stderr}");
    assert!(stderr.contains("Runtime::builder().stack_size(..).run(..))\n"), "no hint in:\n{stderr}");
}

#[test]
fn overflow_in_a_packed_stack_names_the_green_thread() {
    if is_child() {
        overflow_a_green_thread(StackLayout::Auto, green::DEFAULT_STACK_SIZE);
    }
    let output = run_child("overflow_in_a_packed_stack_names_the_green_thread", CHILD_TIMEOUT);
    assert_overflow_reported(&output, green::DEFAULT_STACK_SIZE / 1024);
}

#[test]
fn overflow_in_a_separate_stack_names_the_green_thread() {
    if is_child() {
        overflow_a_green_thread(StackLayout::Separate, 64 * 1024);
    }
    let output = run_child("overflow_in_a_separate_stack_names_the_green_thread", CHILD_TIMEOUT);
    assert_overflow_reported(&output, 64);
}

/// Child: builds a runtime (which installs the handler), then `f` faults.
fn fault_with_runtime_installed(f: impl FnOnce()) {
    let _rt = green::Runtime::builder().workers(1).build().unwrap();
    f();
    unreachable!("the fault should have ended the process");
}

/// Writes to the first page of the address space, which is never mapped.
fn null_write() {
    // SAFETY: not safe at all: the write faults, which is the point; the address is non-null and
    // aligned only so that debug builds reach the write instead of a precondition check.
    unsafe { std::ptr::write_volatile(std::ptr::dangling_mut::<u64>(), 1) };
}

#[test]
fn null_write_on_an_os_thread_is_still_a_plain_segfault() {
    if is_child() {
        fault_with_runtime_installed(|| {
            let _ = std::thread::spawn(null_write).join();
        });
    }
    let output = run_child("null_write_on_an_os_thread_is_still_a_plain_segfault", CHILD_TIMEOUT);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "status {:?}, stderr:\n{stderr}", output.status);
    assert!(!stderr.contains("green:"), "a message from green in:\n{stderr}");
}

#[test]
fn null_write_in_a_green_thread_is_a_plain_segfault() {
    if is_child() {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let _ = green::Builder::new().name("wild".into()).spawn(null_write).unwrap().join();
        });
        unreachable!("the fault should have ended the process");
    }
    let output = run_child("null_write_in_a_green_thread_is_a_plain_segfault", CHILD_TIMEOUT);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "status {:?}, stderr:\n{stderr}", output.status);
    assert!(!stderr.contains("stack overflow"), "reported as an overflow:\n{stderr}");
}

#[test]
fn os_thread_overflow_is_still_reported_by_std() {
    if is_child() {
        fault_with_runtime_installed(|| {
            let thread = std::thread::Builder::new().name("os-deep".into()).stack_size(128 * 1024);
            let _ = thread.spawn(|| recurse(0)).unwrap().join();
        });
    }
    let output = run_child("os_thread_overflow_is_still_reported_by_std", CHILD_TIMEOUT);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "status {:?}, stderr:\n{stderr}", output.status);
    assert!(stderr.contains("thread 'os-deep'") && stderr.contains("has overflowed its stack"), "{stderr}");
    assert!(!stderr.contains("green:"), "a message from green in:\n{stderr}");
}

/// A SIGSEGV sent with `kill` (not a fault) to a process that ignored SIGSEGV before the runtime
/// started stays ignored, as it would without the runtime.
#[test]
fn an_ignored_sigsegv_sent_by_kill_stays_ignored() {
    if is_child() {
        // SAFETY: SIG_IGN for SIGSEGV, set before any other thread exists.
        unsafe { libc::signal(libc::SIGSEGV, libc::SIG_IGN) };
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(libc::getpid(), libc::SIGSEGV) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        rt.block_on(|| green::sleep(Duration::from_millis(50)));
        println!("child: still alive");
        return;
    }
    let output = run_child("an_ignored_sigsegv_sent_by_kill_stays_ignored", CHILD_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "status {:?}, stderr:\n{}", output.status, stderr_of(&output));
    assert!(stdout.contains("child: still alive"), "stdout:\n{stdout}");
}
