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

/// Calls of [`one_shot`] in this process.
static ONE_SHOT_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A crash handler in the common one-shot style: says so and returns, relying on
/// `SA_RESETHAND` to let the fault, run again, end the process. Bails out after a few calls, so
/// that a handler called again and again ends the child instead of hanging it.
extern "C" fn one_shot(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let calls = ONE_SHOT_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let msg: &[u8] =
        if calls < 10 { b"child: crash handler ran\n" } else { b"child: crash handler called again and again\n" };
    // SAFETY: write is async-signal-safe and `msg` is valid for its length.
    unsafe { libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len()) };
    if calls >= 10 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(3) };
    }
}

/// A one-shot (`SA_RESETHAND`) SIGSEGV handler that was there before the runtime runs once, and
/// the fault then ends the process, as without the runtime; it used to be called forever.
#[test]
fn a_one_shot_handler_from_before_runs_once_and_the_fault_ends_the_process() {
    if is_child() {
        // SAFETY: all-zero bytes are a valid sigaction; the handler has the SA_SIGINFO signature
        // and is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = one_shot as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND;
            assert_eq!(libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()), 0);
        }
        fault_with_runtime_installed(null_write);
    }
    let output = run_child("a_one_shot_handler_from_before_runs_once_and_the_fault_ends_the_process", CHILD_TIMEOUT);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "status {:?}, stderr:\n{stderr}", output.status);
    assert_eq!(stderr.matches("child: crash handler ran").count(), 1, "stderr:\n{stderr}");
}

/// The two inaccessible pages [`probing`] makes accessible: it is called for the first, and
/// probes the second from inside the handler.
static PROBED: [std::sync::atomic::AtomicUsize; 2] =
    [std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)];

/// Whether SIGUSR1 (in the handler's `sa_mask`) was blocked while [`probing`] ran.
static USR1_BLOCKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A handler that resolves faults on its two pages by making them accessible, and probes the
/// second page from inside the first fault: a nested fault, which `SA_NODEFER` allows.
extern "C" fn probing(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    use std::sync::atomic::Ordering::SeqCst;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    // SAFETY: the kernel passes a valid siginfo_t for a fault.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (first, second) = (PROBED[0].load(SeqCst), PROBED[1].load(SeqCst));
    if addr == first {
        let mut mask = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
        // SAFETY: reads this thread's mask into `mask`; sigismember reads it.
        unsafe {
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), mask.as_mut_ptr());
            USR1_BLOCKED.store(libc::sigismember(mask.as_ptr(), libc::SIGUSR1) == 1, SeqCst);
        }
        // SAFETY: a read of the second page, which faults into this handler again.
        std::hint::black_box(unsafe { std::ptr::read_volatile(second as *const u8) });
    }
    if addr == first || addr == second {
        // SAFETY: the page is one of the child's own mapping.
        unsafe { libc::mprotect(addr as *mut libc::c_void, page, libc::PROT_READ | libc::PROT_WRITE) };
    } else {
        // Not one of ours: let the fault end the process.
        // SAFETY: all-zero bytes are a valid sigaction: SIG_DFL.
        unsafe { libc::sigaction(libc::SIGSEGV, &std::mem::zeroed(), std::ptr::null_mut()) };
    }
}

/// A SIGSEGV handler from before the runtime runs with its own signal mask, and with
/// `SA_NODEFER` it may take a nested fault, as without the runtime; it used to run with SIGSEGV
/// blocked, so the nested fault killed the process.
#[test]
fn a_handler_from_before_runs_with_its_mask_and_may_take_nested_faults() {
    if is_child() {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: a fresh inaccessible mapping where the kernel chooses; the handler has the
        // SA_SIGINFO signature and is async-signal-safe; all-zero bytes are a valid sigaction.
        unsafe {
            let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
            let base = libc::mmap(std::ptr::null_mut(), 2 * page, libc::PROT_NONE, flags, -1, 0);
            assert_ne!(base, libc::MAP_FAILED);
            PROBED[0].store(base as usize, std::sync::atomic::Ordering::SeqCst);
            PROBED[1].store(base as usize + page, std::sync::atomic::Ordering::SeqCst);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = probing as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigaddset(&mut action.sa_mask, libc::SIGUSR1);
            assert_eq!(libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()), 0);
        }
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let first = PROBED[0].load(std::sync::atomic::Ordering::SeqCst);
        let value = rt.block_on(move || {
            // SAFETY: the first write faults, the handler makes the page accessible, and the
            // write runs again.
            unsafe { std::ptr::write_volatile(first as *mut u8, 7) };
            // SAFETY: now accessible.
            unsafe { std::ptr::read_volatile(first as *const u8) }
        });
        let blocked = USR1_BLOCKED.load(std::sync::atomic::Ordering::SeqCst);
        println!("child: survived with {value}; SIGUSR1 blocked in the handler: {blocked}");
        return;
    }
    let output = run_child("a_handler_from_before_runs_with_its_mask_and_may_take_nested_faults", CHILD_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "status {:?}, stderr:\n{}", output.status, stderr_of(&output));
    assert!(stdout.contains("child: survived with 7; SIGUSR1 blocked in the handler: true"), "stdout:\n{stdout}");
}

/// Whether `addr` lies in one of the process's mappings (`/proc/self/maps`).
fn is_mapped(addr: usize) -> bool {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().any(|line| {
        let range = line.split(' ').next().unwrap();
        let (low, high) = range.split_once('-').unwrap();
        let (low, high) = (usize::from_str_radix(low, 16).unwrap(), usize::from_str_radix(high, 16).unwrap());
        (low..high).contains(&addr)
    })
}

/// Child: green thread "wild" writes into the guard of parked green thread "victim" (8 KiB
/// below the 256 KiB stack that holds the victim's first frames), which is no overflow. "wild"
/// runs on the stack a finished green thread spawned just before the victim gave back: in a
/// packed chunk, the slot right below the victim's, so its stack pointer is within reach of the
/// victim's guard and only the guard's owner tells the two apart.
fn write_into_another_green_threads_guard(layout: StackLayout) {
    let rt = green::Runtime::builder().workers(1).stack_layout(layout).build().unwrap();
    rt.block_on(|| {
        let below = green::spawn(green::park);
        green::yield_now();
        let (tx, rx) = green::sync::mpsc::channel::<usize>();
        let victim = green::Builder::new()
            .name("victim".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let local = 0u8;
                tx.send(std::hint::black_box(&local) as *const u8 as usize).unwrap();
                green::park();
            })
            .unwrap();
        let guard = (rx.recv().unwrap() - (256 + 8) * 1024) & !7;
        below.thread().unpark();
        below.join().unwrap();
        // A packed guard lies in a mapping (the chunk), a separate one is a mapping of its own.
        println!("child: the victim's guard is mapped: {}", is_mapped(guard));
        let wild = green::Builder::new().name("wild".into()).spawn(move || {
            // SAFETY: not safe at all: the write faults in the victim's guard, which is the point.
            unsafe { std::ptr::write_volatile(guard as *mut u64, 1) };
        });
        let _ = wild.unwrap().join();
        victim.thread().unpark();
    });
    unreachable!("the fault should have ended the process");
}

/// Parent: the child died of a plain SIGSEGV, with no overflow reported for either green thread.
fn assert_plain_segfault_in_a_guard(test: &str) {
    let output = run_child(test, CHILD_TIMEOUT);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), stderr_of(&output));
    assert!(stdout.contains("child: the victim's guard is mapped: true"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(output.status.signal(), Some(libc::SIGSEGV), "status {:?}, stderr:\n{stderr}", output.status);
    assert!(!stderr.contains("stack overflow"), "reported as an overflow:\n{stderr}");
}

#[test]
fn a_write_into_another_green_threads_packed_guard_is_a_plain_segfault() {
    if is_child() {
        write_into_another_green_threads_guard(StackLayout::Auto);
    }
    assert_plain_segfault_in_a_guard("a_write_into_another_green_threads_packed_guard_is_a_plain_segfault");
}

#[test]
fn a_write_into_another_green_threads_separate_guard_is_a_plain_segfault() {
    if is_child() {
        write_into_another_green_threads_guard(StackLayout::Separate);
    }
    assert_plain_segfault_in_a_guard("a_write_into_another_green_threads_separate_guard_is_a_plain_segfault");
}

/// Recurses without bound when dropped: while its green thread unwinds from a panic, say.
struct RecursesOnDrop;

impl Drop for RecursesOnDrop {
    fn drop(&mut self) {
        recurse(0);
    }
}

/// An overflow in a destructor that runs while the green thread unwinds is reported as any
/// other: the unwinding changes neither the stack nor the report.
#[test]
fn overflow_while_unwinding_names_the_green_thread() {
    if is_child() {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let deep = green::Builder::new().name("deep".into()).spawn(|| {
                let _recurses = RecursesOnDrop;
                panic!("first, then the destructor overflows");
            });
            let deep = deep.unwrap();
            eprintln!("child: green thread id {}", deep.thread().id());
            let _ = deep.join();
        });
        unreachable!("the overflow should have aborted the process");
    }
    let output = run_child("overflow_while_unwinding_names_the_green_thread", CHILD_TIMEOUT);
    assert_overflow_reported(&output, green::DEFAULT_STACK_SIZE / 1024);
}

/// A blocking-pool job runs on an OS thread: its overflow is std's to report, by thread name.
#[test]
fn overflow_in_a_blocking_job_is_reported_by_std() {
    if is_child() {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let _ = green::spawn_blocking(|| recurse(0)).join();
        });
        unreachable!("the overflow should have aborted the process");
    }
    let output = run_child("overflow_in_a_blocking_job_is_reported_by_std", CHILD_TIMEOUT);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "status {:?}, stderr:\n{stderr}", output.status);
    assert!(stderr.contains("thread 'green-blocking'") && stderr.contains("has overflowed its stack"), "{stderr}");
    assert!(!stderr.contains("green: stack overflow"), "reported as a green thread's:\n{stderr}");
}
