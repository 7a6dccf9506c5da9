//! Waiting for Unix signals: a green thread (or an OS thread) waiting for a signal wakes when it
//! arrives, and the worker keeps running others meanwhile; what a signal does when nobody
//! listens any more; chaining to a handler installed before.
//!
//! Each test runs in a child process (this binary, re-run on just that test with
//! `GREEN_SIGNAL_CHILD` set to its name), so that the signals it sends, and the handlers it
//! leaves installed, never reach the test runner or the other tests.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::signal::{Signal, Signals};

mod common;

/// Set in the child process, to the name of the test it runs.
const CHILD: &str = "GREEN_SIGNAL_CHILD";

/// How long a child may take before it counts as hung (and is killed).
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `body` if this process is the child for test `name`; otherwise runs that child and
/// returns its output once it ended.
fn child_or_parent(name: &str, body: fn()) -> Option<Output> {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        body();
        println!("child: ok");
        return None;
    }
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let output = common::child::output_within(child, CHILD_TIMEOUT);
    Some(output.unwrap_or_else(|| panic!("child {name} hung for {CHILD_TIMEOUT:?} and was killed")))
}

/// Asserts that the child for `name` passed.
fn assert_child_ok(name: &str, body: fn()) {
    let Some(output) = child_or_parent(name, body) else { return };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(stdout.contains("child: ok"), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

/// Sends `signal` to this whole process (any thread may take it), as `kill` from a shell does.
fn send(signal: Signal) {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(libc::getpid(), signal.as_raw()) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// Waits (parking, from a green thread) until some `Signals` listens for `signal`.
fn until_listening(signal: Signal) {
    let start = Instant::now();
    while !green::signal::is_listening(signal) {
        assert!(start.elapsed() < Duration::from_secs(10), "nobody started listening for {signal}");
        green::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_green_thread_waiting_for_sigterm_wakes_and_the_worker_runs_others_meanwhile() {
    assert_child_ok("a_green_thread_waiting_for_sigterm_wakes_and_the_worker_runs_others_meanwhile", || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let waiter = green::spawn(|| green::signal::wait(&[Signal::Interrupt, Signal::Terminate]));
            until_listening(Signal::Terminate);
            // The only worker is free while the waiter waits: this green thread runs.
            let turns = Arc::new(AtomicUsize::new(0));
            let ticker = {
                let turns = turns.clone();
                green::spawn(move || {
                    for _ in 0..20 {
                        turns.fetch_add(1, Ordering::SeqCst);
                        green::sleep(Duration::from_millis(1));
                    }
                })
            };
            ticker.join().unwrap();
            assert_eq!(turns.load(Ordering::SeqCst), 20);
            assert!(!waiter.is_finished());
            // Sent from another OS thread, as from another process.
            std::thread::spawn(|| send(Signal::Terminate)).join().unwrap();
            assert_eq!(waiter.join().unwrap().unwrap(), Signal::Terminate);
        });
    });
}

/// A runtime whose only green thread waits for a signal is not deadlocked: the monitor says
/// nothing however long the wait, and a dump shows the wait as a signal wait.
#[test]
fn a_signal_wait_is_not_reported_as_a_deadlock() {
    let Some(output) = child_or_parent("a_signal_wait_is_not_reported_as_a_deadlock", || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let waiter = green::Builder::new()
            .name("signal-waiter".into())
            .spawn_on(rt.handle(), || green::signal::wait(&[Signal::User2]))
            .unwrap();
        while !green::signal::is_listening(Signal::User2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let dump = rt.handle().dump().to_string();
        assert!(dump.lines().any(|l| l.contains("\"signal-waiter\"") && l.contains("parked (signal)")), "{dump}");
        // Longer than the monitor's quiet time before it reports a possible deadlock (1 s).
        std::thread::sleep(Duration::from_millis(2500));
        send(Signal::User2);
        assert_eq!(waiter.join().unwrap().unwrap(), Signal::User2);
    }) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stdout.contains("child: ok"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("possible deadlock"), "{stderr}");
}

#[test]
fn sigusr1_wakes_green_and_os_thread_waiters_each_with_its_own_copy() {
    assert_child_ok("sigusr1_wakes_green_and_os_thread_waiters_each_with_its_own_copy", || {
        let green_listener = Signals::new(&[Signal::User1]).unwrap();
        let os_listener = Signals::new(&[Signal::User1]).unwrap();
        let os_waiter = std::thread::spawn(move || os_listener.recv());
        green::run(|| {
            let green_waiter = green::spawn(move || green_listener.recv());
            // Each listener keeps what arrives, waiting or not: no need to wait for the waiters.
            send(Signal::User1);
            assert_eq!(green_waiter.join().unwrap().unwrap(), Signal::User1);
        });
        assert_eq!(os_waiter.join().unwrap().unwrap(), Signal::User1);
    });
}

#[test]
fn signals_that_arrive_before_recv_are_kept_in_order() {
    assert_child_ok("signals_that_arrive_before_recv_are_kept_in_order", || {
        let signals = Signals::new(&[Signal::User2, Signal::Hangup, Signal::User1]).unwrap();
        send(Signal::User2);
        send(Signal::Hangup);
        // Delivery goes through the dispatcher thread: wait until both are there.
        let start = Instant::now();
        let mut got = Vec::new();
        while got.len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(10), "got only {got:?}");
            got.extend(signals.recv_timeout(Duration::from_millis(10)).unwrap());
        }
        got.sort_by_key(|s| s.as_raw());
        assert_eq!(got, [Signal::Hangup, Signal::User2]);
        assert_eq!(signals.try_recv(), None);
    });
}

#[test]
fn recv_timeout_and_cancel_end_the_wait() {
    assert_child_ok("recv_timeout_and_cancel_end_the_wait", || {
        green::run(|| {
            let signals = Arc::new(Signals::new(&[Signal::User1]).unwrap());
            let start = Instant::now();
            assert_eq!(signals.recv_timeout(Duration::from_millis(30)).unwrap(), None);
            assert!(start.elapsed() >= Duration::from_millis(30));
            let waiter = {
                let signals = signals.clone();
                green::spawn(move || signals.recv())
            };
            green::sleep(Duration::from_millis(10));
            waiter.cancel();
            assert!(waiter.join().unwrap_err().is_cancelled());
            // The listener still works after a timed-out and a cancelled wait.
            send(Signal::User1);
            assert_eq!(signals.recv().unwrap(), Signal::User1);
        });
    });
}

/// Inside `green::timeout`, `recv_timeout` reports the deadline as its own timeout (`Ok(None)`),
/// as the timed calls of `green::sync` do; `recv`, which has none, unwinds to the `timeout`.
#[test]
fn recv_timeout_inside_green_timeout_returns_none_at_the_deadline() {
    assert_child_ok("recv_timeout_inside_green_timeout_returns_none_at_the_deadline", || {
        let check = || {
            let signals = Signals::new(&[Signal::User2]).unwrap();
            let start = Instant::now();
            let timed = green::timeout(Duration::from_millis(30), || signals.recv_timeout(Duration::from_secs(60)));
            assert_eq!(timed.expect("recv_timeout unwound to the green::timeout").unwrap(), None);
            assert!(start.elapsed() >= Duration::from_millis(30));
            assert!(start.elapsed() < Duration::from_secs(30), "waited for its own timeout");
            assert!(green::timeout(Duration::from_millis(10), || signals.recv()).is_err());
        };
        green::run(check);
        check(); // on a plain OS thread
    });
}

/// Once its last listener is gone, SIGTERM ends the process again, as its default action does.
#[test]
fn with_no_listener_left_sigterm_ends_the_process_again() {
    let name = "with_no_listener_left_sigterm_ends_the_process_again";
    let Some(output) = child_or_parent(name, || {
        green::run(|| {
            let signals = Signals::new(&[Signal::Terminate]).unwrap();
            send(Signal::Terminate);
            assert_eq!(signals.recv().unwrap(), Signal::Terminate);
            println!("child: received while listening");
            drop(signals);
            send(Signal::Terminate);
            // The dispatcher raises it again with the default action: this sleep is cut short.
            green::sleep(Duration::from_secs(30));
            println!("child: still alive");
        });
    }) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("child: received while listening"), "stdout:\n{stdout}");
    assert!(!stdout.contains("child: still alive"), "stdout:\n{stdout}");
    assert_eq!(output.status.signal(), Some(libc::SIGTERM), "{:?}\nstdout:\n{stdout}", output.status);
}

/// A signal that arrives while a `Signals` listens belongs to it, even when the listener is
/// dropped before the dispatcher thread gets to it: the signal goes with the listener, and its
/// default action (here: ending the process) does not happen.
#[test]
fn a_signal_caught_while_listening_never_takes_the_default_action_later() {
    assert_child_ok("a_signal_caught_while_listening_never_takes_the_default_action_later", || {
        for _ in 0..50 {
            let signals = Signals::new(&[Signal::User1]).unwrap();
            // SAFETY: raise has no memory-safety preconditions. It runs the handler on this
            // thread before it returns: the signal has arrived while `signals` listens.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
            drop(signals);
        }
        // Time for the dispatcher to see every one of them.
        std::thread::sleep(Duration::from_millis(200));
    });
}

static PREVIOUS_HANDLER_RAN: AtomicBool = AtomicBool::new(false);

extern "C" fn previous_handler(_signal: libc::c_int) {
    PREVIOUS_HANDLER_RAN.store(true, Ordering::SeqCst);
}

/// A handler installed before the first listener keeps being called; an ignored signal stays
/// ignored when nobody listens.
#[test]
fn earlier_handlers_are_chained_and_ignored_signals_stay_ignored() {
    assert_child_ok("earlier_handlers_are_chained_and_ignored_signals_stay_ignored", || {
        // SAFETY: `previous_handler` only stores to an atomic, which is async-signal-safe; the
        // handlers are installed before any thread could depend on the old ones.
        unsafe {
            libc::signal(libc::SIGUSR2, previous_handler as *const () as libc::sighandler_t);
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
        }
        green::run(|| {
            let signals = Signals::new(&[Signal::User2]).unwrap();
            send(Signal::User2);
            assert_eq!(signals.recv().unwrap(), Signal::User2);
            assert!(PREVIOUS_HANDLER_RAN.load(Ordering::SeqCst), "the earlier handler was not called");
            drop(signals);

            drop(Signals::new(&[Signal::Hangup]).unwrap());
            send(Signal::Hangup); // nobody listens, and it was ignored: nothing happens
            green::sleep(Duration::from_millis(50));
        });
    });
}

static ONE_SHOT_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn one_shot_handler(_signal: libc::c_int) {
    ONE_SHOT_CALLS.fetch_add(1, Ordering::SeqCst);
}

/// A one-shot handler installed before green's (`SA_RESETHAND`: the first Ctrl-C asks nicely,
/// the second ends the process) is called once, and the next signal takes the default action,
/// as without green.
#[test]
fn an_earlier_one_shot_handler_is_called_once_then_the_default_ends_the_process() {
    let name = "an_earlier_one_shot_handler_is_called_once_then_the_default_ends_the_process";
    let Some(output) = child_or_parent(name, || {
        // SAFETY: all-zero bytes are a valid sigaction; `one_shot_handler` only adds to an
        // atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = one_shot_handler as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND;
            assert_eq!(libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut()), 0);
        }
        drop(Signals::new(&[Signal::Interrupt]).unwrap());
        send(Signal::Interrupt);
        // Time for green's dispatcher to see the signal and find nobody listening.
        std::thread::sleep(Duration::from_millis(200));
        println!("child: alive after the first, handler calls: {}", ONE_SHOT_CALLS.load(Ordering::SeqCst));
        send(Signal::Interrupt);
        std::thread::sleep(Duration::from_secs(10));
        println!("child: still alive, handler calls: {}", ONE_SHOT_CALLS.load(Ordering::SeqCst));
    }) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("child: alive after the first, handler calls: 1"), "stdout:\n{stdout}");
    assert!(!stdout.contains("child: still alive"), "stdout:\n{stdout}");
    assert_eq!(output.status.signal(), Some(libc::SIGINT), "{:?}\nstdout:\n{stdout}", output.status);
}

static LATER_HANDLER_RAN: AtomicBool = AtomicBool::new(false);

/// The action `later_handler` replaced: green's, which it calls, as `signal-hook` does.
static REPLACED: std::sync::OnceLock<libc::sigaction> = std::sync::OnceLock::new();

extern "C" fn later_handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    LATER_HANDLER_RAN.store(true, Ordering::SeqCst);
    if let Some(replaced) = REPLACED.get() {
        // SAFETY: the replaced action is green's handler, installed with SA_SIGINFO: a function
        // of this signature, meant to be called from a signal handler.
        let function: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(replaced.sa_sigaction) };
        function(signal, info, context);
    }
}

/// A handler installed over green's, which calls green's in turn, decides what the signal does
/// once nobody listens through green: the process is not ended behind its back.
#[test]
fn a_handler_installed_later_decides_when_nobody_listens() {
    assert_child_ok("a_handler_installed_later_decides_when_nobody_listens", || {
        green::run(|| {
            drop(Signals::new(&[Signal::Interrupt]).unwrap());
            // SAFETY: all-zero bytes are a valid sigaction; `later_handler` has the SA_SIGINFO
            // signature and only stores to an atomic and calls green's async-signal-safe handler.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = later_handler as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                let mut replaced: libc::sigaction = std::mem::zeroed();
                assert_eq!(libc::sigaction(libc::SIGINT, &action, &mut replaced), 0);
                REPLACED.set(replaced).unwrap();
            }
            send(Signal::Interrupt);
            // Time for green's dispatcher to see the signal and find nobody listening.
            green::sleep(Duration::from_millis(200));
            assert!(LATER_HANDLER_RAN.load(Ordering::SeqCst), "the later handler was not called");
        });
    });
}

/// A child made by `fork` without `exec` inherits green's handler but not the thread that reads
/// its pipe: `SIGTERM` must still end it, as it would have without green.
#[test]
fn a_forked_child_is_still_ended_by_sigterm() {
    assert_child_ok("a_forked_child_is_still_ended_by_sigterm", || {
        green::run(|| {
            let signals = Signals::new(&[Signal::Terminate]).unwrap();
            // SAFETY: the child calls only async-signal-safe functions (sleep, _exit) before it
            // ends, as a child of a multi-threaded process must.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                // SAFETY: as above.
                unsafe {
                    libc::sleep(10);
                    libc::_exit(0);
                }
            }
            // SAFETY: kill and waitpid have no memory-safety preconditions; `status` is valid
            // for writes.
            let status = unsafe {
                assert_eq!(libc::kill(pid, libc::SIGTERM), 0);
                let mut status = 0;
                assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
                status
            };
            assert!(
                libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM,
                "the forked child was not ended by SIGTERM (wait status {status:#x})"
            );
            drop(signals);
        });
    });
}

/// A child made by `fork` without `exec` after the parent listened (the workers of a
/// pre-forking server) gets signal waiting of its own with its first `Signals`: a signal for it
/// is received there, not taken with its default action. The parent's listener is untouched.
#[test]
fn a_forked_child_that_listens_receives_its_signals() {
    assert_child_ok("a_forked_child_that_listens_receives_its_signals", || {
        let parent = Signals::new(&[Signal::User1]).unwrap();
        // SAFETY: fork has no memory-safety preconditions. The child allocates and starts a
        // thread, which glibc supports after a fork (it resets its allocator's locks there);
        // no other thread of this process holds a lock the child takes (the signal thread
        // waits in `read`, holding none).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let received = std::panic::catch_unwind(|| {
                let signals = Signals::new(&[Signal::User1]).unwrap();
                // SAFETY: raise has no memory-safety preconditions.
                unsafe { libc::raise(libc::SIGUSR1) };
                signals.recv_timeout(Duration::from_secs(10)).unwrap()
            });
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(if matches!(received, Ok(Some(Signal::User1))) { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waitpid writes the status of our own child to a valid location.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the forked child did not receive its signal (wait status {status:#x})"
        );
        send(Signal::User1);
        assert_eq!(parent.recv_timeout(Duration::from_secs(10)).unwrap(), Some(Signal::User1));
    });
}

/// A forked child's first signal, caught before it listens, does what the action before
/// green's would have done; for `SIGWINCH`, whose default ignores it, the child goes on. Its
/// first `Signals` for that signal must then still receive it.
#[test]
fn a_forked_child_that_listens_after_a_signal_came_receives_the_next() {
    assert_child_ok("a_forked_child_that_listens_after_a_signal_came_receives_the_next", || {
        let parent = Signals::new(&[Signal::WindowChange]).unwrap();
        // SAFETY: as in `a_forked_child_that_listens_receives_its_signals`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let received = std::panic::catch_unwind(|| {
                // SAFETY: raise has no memory-safety preconditions.
                unsafe { libc::raise(libc::SIGWINCH) };
                let signals = Signals::new(&[Signal::WindowChange]).unwrap();
                // SAFETY: as above.
                unsafe { libc::raise(libc::SIGWINCH) };
                signals.recv_timeout(Duration::from_secs(10)).unwrap()
            });
            // SAFETY: _exit ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(if matches!(received, Ok(Some(Signal::WindowChange))) { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waitpid writes the status of our own child to a valid location.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the forked child did not receive its signal (wait status {status:#x})"
        );
        drop(parent);
    });
}

/// A `fork` while another thread makes and drops `Signals` (so holds the registry's lock now
/// and then): the child's own `Signals` never waits for a lock that nobody in it holds.
#[test]
fn a_fork_while_another_thread_listens_leaves_the_child_free_to_listen() {
    assert_child_ok("a_fork_while_another_thread_listens_leaves_the_child_free_to_listen", || {
        const FORKS: usize = 100;
        let stop = Arc::new(AtomicBool::new(false));
        let churn = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    drop(Signals::new(&[Signal::User1]).unwrap());
                }
            })
        };
        for _ in 0..FORKS {
            // SAFETY: as in `a_forked_child_that_listens_receives_its_signals`; the other
            // thread's locks are the point of the test.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
            if pid == 0 {
                // SAFETY: alarm has no memory-safety preconditions; SIGALRM's default ends a
                // child that hangs.
                unsafe { libc::alarm(10) };
                drop(Signals::new(&[Signal::User2]).unwrap());
                // SAFETY: _exit ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waitpid writes the status of our own child to a valid location.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "a forked child hung making its Signals (wait status {status:#x})"
            );
        }
        stop.store(true, Ordering::Relaxed);
        churn.join().unwrap();
    });
}

/// A forked child that listens for one signal is still ended by another that only its parent
/// listened for (on a thread the child does not have): the parent's listener does not listen in
/// the child.
#[test]
fn a_forked_child_is_ended_by_a_signal_only_its_parent_listened_for() {
    assert_child_ok("a_forked_child_is_ended_by_a_signal_only_its_parent_listened_for", || {
        let (listening_tx, listening_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watcher = std::thread::spawn(move || {
            let signals = Signals::new(&[Signal::Terminate]).unwrap();
            listening_tx.send(()).unwrap();
            let _ = done_rx.recv();
            drop(signals);
        });
        listening_rx.recv().unwrap();
        // SAFETY: as in `a_forked_child_that_listens_receives_its_signals`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let _reloads = Signals::new(&[Signal::Hangup]).unwrap();
            // SAFETY: raise, sleep and _exit have no memory-safety preconditions.
            unsafe {
                libc::raise(libc::SIGTERM);
                libc::sleep(10);
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waitpid writes the status of our own child to a valid location.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM,
            "the forked child was not ended by SIGTERM (wait status {status:#x})"
        );
        done_tx.send(()).unwrap();
        watcher.join().unwrap();
    });
}

extern "C" fn handler_without_restart(_signal: libc::c_int) {}

/// In front of a handler installed before it, green's keeps that handler's signal mask and its
/// choice against `SA_RESTART` (code that relied on `EINTR` still gets it); in front of the
/// default, it restarts interrupted calls.
#[test]
fn green_s_handler_keeps_the_earlier_handler_s_mask_and_restart_choice() {
    assert_child_ok("green_s_handler_keeps_the_earlier_handler_s_mask_and_restart_choice", || {
        // SAFETY: all-zero bytes are valid sigactions and sigsets; the handler does nothing;
        // sigaction reads into a valid struct.
        let current = |signal| unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut action), 0);
            action
        };
        // SAFETY: as above.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler_without_restart as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaddset(&mut action.sa_mask, libc::SIGUSR2);
            assert_eq!(libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()), 0);
        }
        let _signals = Signals::new(&[Signal::User1, Signal::Terminate]).unwrap();
        let ours = current(libc::SIGUSR1);
        assert_ne!(ours.sa_sigaction, handler_without_restart as *const () as libc::sighandler_t);
        assert_eq!(ours.sa_flags & libc::SA_RESTART, 0, "SA_RESTART set in front of a handler without it");
        // SAFETY: `ours.sa_mask` is an initialised set.
        assert_eq!(unsafe { libc::sigismember(&ours.sa_mask, libc::SIGUSR2) }, 1, "the earlier mask was lost");
        let over_default = current(libc::SIGTERM);
        assert_ne!(over_default.sa_flags & libc::SA_RESTART, 0, "no SA_RESTART in front of the default");
    });
}
