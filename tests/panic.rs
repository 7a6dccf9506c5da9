//! A panic in a green thread is caught on its own stack, reported to `join`, and leaves the
//! worker and every other green thread alone.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn join_reports_the_panic_with_its_payload() {
    green::run(|| {
        let n = std::hint::black_box(7);
        let err = green::spawn(move || -> u32 { panic!("boom {n}") }).join().unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert!(err.to_string().contains("boom 7"), "{err}");
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("boom 7"));
    });
}

#[test]
fn a_panic_does_not_disturb_the_others() {
    let finished = Arc::new(AtomicUsize::new(0));
    let seen = finished.clone();
    green::run(move || {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let finished = seen.clone();
                green::spawn(move || {
                    green::yield_now();
                    if i % 10 == 0 {
                        panic!("green thread {i} fails on purpose");
                    }
                    finished.fetch_add(1, Ordering::Relaxed);
                    i
                })
            })
            .collect();
        let mut panics = 0;
        for (i, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(v) => assert_eq!(v, i),
                Err(e) => {
                    assert!(e.is_panic());
                    panics += 1;
                }
            }
        }
        assert_eq!(panics, 20);
    });
    assert_eq!(finished.load(Ordering::Relaxed), 180);
}

#[test]
fn a_panic_in_main_is_resumed_by_run() {
    let caught = std::panic::catch_unwind(|| green::run(|| panic!("main fails")));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"main fails"));
}

#[test]
fn a_panic_in_block_on_is_resumed_and_the_runtime_goes_on() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(|| panic!("block_on fails"))));
    assert!(caught.is_err());
    assert_eq!(rt.block_on(|| 5), 5);
}

#[test]
fn a_detached_panicking_green_thread_is_harmless() {
    let value = green::run(|| {
        drop(green::spawn(|| panic!("nobody joins me")));
        green::spawn(|| 3).join().unwrap()
    });
    assert_eq!(value, 3);
}

/// A panic hook set before the runtime (a logger, a crash reporter) sees every panic, those of
/// green threads included; the report names the green thread, then std's follows. In a child
/// process: the hook is the process's.
#[test]
fn a_hook_set_before_the_runtime_sees_green_thread_panics() {
    if !common::child::is_child() {
        let out = common::child::run_child(
            "a_hook_set_before_the_runtime_sees_green_thread_panics",
            std::time::Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("user hook: on green"), "{stderr}");
        assert!(stderr.contains("user hook: on the OS thread"), "{stderr}");
        assert!(stderr.contains(r#"green thread"#) && stderr.contains(r#""reported" panicked (on "#), "{stderr}");
        return;
    }
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    std::panic::set_hook(Box::new(|info| {
        CALLS.fetch_add(1, Ordering::SeqCst);
        eprintln!("user hook: {}", info.payload_as_str().unwrap_or("?"));
    }));
    green::run(|| {
        let failed = green::Builder::new().name("reported".into()).spawn(|| panic!("on green")).unwrap().join();
        assert!(failed.unwrap_err().is_panic());
    });
    assert!(std::thread::spawn(|| panic!("on the OS thread")).join().is_err());
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
}

/// A green thread on the smallest stack there is can panic with backtraces on (std's hook then
/// prints one, which takes more than 16 KiB of stack): `join` reports the panic. It used to
/// overflow the 16 KiB stack and abort the process, and only when `RUST_BACKTRACE` was set. In
/// a child process, to set the variable and survive the abort.
#[test]
fn a_panic_on_the_smallest_stack_with_backtraces_on_is_reported_to_join() {
    const TEST: &str = "a_panic_on_the_smallest_stack_with_backtraces_on_is_reported_to_join";
    if !common::child::is_child() {
        let limit = std::time::Duration::from_secs(60);
        let out = common::child::run_child_with_env(TEST, limit, &[("RUST_BACKTRACE", "1")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "status {:?}, stderr:\n{stderr}", out.status);
        assert!(String::from_utf8_lossy(&out.stdout).contains("child: joined a panic"), "{stderr}");
        return;
    }
    green::run(|| {
        let tiny = green::Builder::new().stack_size(1).spawn(|| panic!("on a tiny stack")).unwrap();
        assert!(tiny.join().unwrap_err().is_panic());
    });
    println!("child: joined a panic");
}
