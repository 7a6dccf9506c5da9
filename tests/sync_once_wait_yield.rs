//! A waiter in `OnceLock::wait` holds the init lock across a forced yield; a neighbour that is
//! unwinding and initializes the (empty) cell then aborts.
use green::sync::OnceLock;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

struct InitOnDrop(Arc<OnceLock<u32>>);
impl Drop for InitOnDrop {
    fn drop(&mut self) {
        self.0.get_or_init(|| 1);
    }
}

fn child() {
    green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
        for x in 0..1100u32 {
            let cell = Arc::new(OnceLock::<u32>::new());
            let go = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let a = {
                let (cell, go) = (cell.clone(), go.clone());
                green::spawn(move || {
                    green::yield_now();
                    go.store(true, std::sync::atomic::Ordering::SeqCst);
                    for _ in 0..1100 {
                        green::tick();
                    }
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(2) {
                        std::hint::spin_loop();
                    }
                    for _ in 0..x {
                        green::tick();
                    }
                    *cell.wait()
                })
            };
            let b = {
                let cell = cell.clone();
                green::spawn(move || {
                    while !go.load(std::sync::atomic::Ordering::SeqCst) {
                        green::yield_now();
                    }
                    let _ = std::panic::catch_unwind(|| {
                        let _g = InitOnDrop(cell);
                        panic!("neighbour unwinds");
                    });
                })
            };
            b.join().unwrap();
            assert_eq!(a.join().unwrap(), 1);
        }
    });
}

#[test]
fn an_unwinding_neighbour_can_initialize_while_a_waiter_is_preempted() {
    if common::child::is_child() {
        child();
        return;
    }
    // Killed at the limit: a waiter that never wakes fails the test instead of hanging the run.
    let out = common::child::run_child(
        "an_unwinding_neighbour_can_initialize_while_a_waiter_is_preempted",
        Duration::from_secs(120),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{:?}\n{}",
        out.status,
        err.lines().filter(|l| l.contains("green")).take(3).collect::<Vec<_>>().join("\n")
    );
}
