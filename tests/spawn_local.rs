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
