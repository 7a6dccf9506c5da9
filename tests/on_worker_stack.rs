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

/// The closure of a green thread cancelled before it started is dropped by its worker, on the
/// worker's own stack. A destructor of a value it captured that would wait there (a contended
/// lock, an empty channel) panics, and the message says so: it used to name only
/// `green::on_worker_stack`, which the program never called.
#[test]
fn a_wait_in_the_drop_of_an_unstarted_closure_says_where_it_ran() {
    use std::sync::{Arc, Mutex as StdMutex};
    use std::time::Duration;

    /// Waits when dropped, and keeps the panic message that gives.
    struct WaitsOnDrop<'a> {
        registry: &'a green::sync::Mutex<u32>,
        rx: green::sync::mpsc::Receiver<()>,
        messages: Arc<StdMutex<Vec<String>>>,
    }
    impl Drop for WaitsOnDrop<'_> {
        fn drop(&mut self) {
            let on_lock = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = self.registry.lock();
            }));
            let on_recv = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = self.rx.recv();
            }));
            for caught in [on_lock, on_recv] {
                let message = caught.map_or_else(|p| common::panic_text(&*p), |()| "no panic".into());
                self.messages.lock().unwrap().push(message);
            }
        }
    }
    let messages = Arc::new(StdMutex::new(Vec::new()));
    green::Runtime::builder()
        .workers(1)
        .run(|| {
            let registry = green::sync::Mutex::new(0);
            let (_tx, rx) = green::sync::mpsc::channel();
            green::scope(|s| {
                let held = registry.lock().unwrap();
                let waits = WaitsOnDrop { registry: &registry, rx, messages: messages.clone() };
                let child = s.spawn(move || drop(waits));
                child.cancel();
                // The one worker drops the closure while this green thread sleeps holding the lock.
                green::sleep(Duration::from_millis(20));
                drop(held);
                assert!(child.join().unwrap_err().is_cancelled());
            });
        })
        .unwrap();
    let messages = messages.lock().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    for message in messages.iter() {
        assert!(message.contains("dropped before it started"), "{message}");
    }
}
