//! `green::on_worker_stack`: a big stack for a call, nested calls, and no waiting inside.

mod common;

#[test]
fn a_call_gets_the_worker_stack() {
    let sum = green::run(|| {
        green::on_worker_stack(|| {
            let big = [1u8; 1 << 20];
            std::hint::black_box(&big).iter().map(|&b| u32::from(b)).sum::<u32>()
        })
    });
    assert_eq!(sum, 1 << 20);
}

/// Regression: a nested call used to switch to the worker's stack a second time, on top of the
/// first call's live frames, and crash.
#[test]
fn nested_calls_run_on_the_same_worker_stack() {
    let value = green::run(|| {
        green::on_worker_stack(|| {
            let outer = std::hint::black_box([3u8; 4096]);
            let inner = green::on_worker_stack(|| std::hint::black_box([4u8; 4096])[0]);
            outer[0] + inner
        })
    });
    assert_eq!(value, 7);
}

#[test]
fn waiting_inside_panics_instead_of_blocking_the_worker() {
    green::run(|| {
        let other = green::spawn(|| green::sleep(std::time::Duration::from_millis(50)));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            green::on_worker_stack(|| {
                let _ = other.join();
            })
        }));
        let message = common::panic_text(&*caught.unwrap_err());
        assert!(message.contains("on_worker_stack"), "{message}");
    });
}
