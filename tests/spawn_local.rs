//! spawn_local: `!Send` closures that run on the spawning worker.

use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn a_local_green_thread_shares_rc_state() {
    green::run(|| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let log = log.clone();
                green::spawn_local(move || {
                    green::yield_now();
                    log.borrow_mut().push(i);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut got = log.borrow().clone();
        got.sort();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    });
}

#[test]
fn a_local_green_thread_runs_on_the_same_os_thread() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let here = std::thread::current().id();
        let there = green::spawn_local(|| {
            green::yield_now();
            std::thread::current().id()
        })
        .join()
        .unwrap();
        assert_eq!(here, there);
    });
}

/// Outside a green thread, even in a blocking job (where `green::spawn` works), the panic names
/// `spawn_local` and the way out, not a runtime that is there.
#[test]
fn spawn_local_outside_a_green_thread_says_so() {
    fn message(err: Box<dyn std::any::Any + Send>) -> String {
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }
    let msg = message(std::panic::catch_unwind(|| green::spawn_local(|| ())).unwrap_err());
    assert!(msg.contains("spawn_local") && msg.contains("green::spawn"), "{msg}");
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let msg = rt.block_on(|| {
        green::spawn_blocking(|| message(std::panic::catch_unwind(|| green::spawn_local(|| ())).unwrap_err()))
            .join()
            .unwrap()
    });
    assert!(msg.contains("spawn_local") && !msg.contains("outside a green runtime"), "{msg}");
}
