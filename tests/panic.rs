//! A panic in a green thread is caught on its own stack, reported to `join`, and leaves the
//! worker and every other green thread alone.

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
