//! `Runtime::shutdown_timeout`: cancels every green thread, waits up to the timeout, and
//! reports (with a dump) those that did not end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::sync::{Mutex, mpmc};

mod common;
use common::Counted;

#[test]
fn green_threads_parked_in_sync_waits_end_within_the_timeout() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpmc::channel::<u32>();
    let m = Arc::new(Mutex::new(()));
    let held = m.lock().unwrap();
    for i in 0..60 {
        let (guard, started, rx, m) = (Counted(drops.clone()), started.clone(), rx.clone(), m.clone());
        drop(rt.spawn(move || {
            let _guard = guard;
            started.fetch_add(1, Ordering::SeqCst);
            match i % 3 {
                0 => drop(rx.recv()),
                1 => drop(m.lock()),
                _ => green::sleep(Duration::from_secs(3600)),
            }
        }));
    }
    while started.load(Ordering::SeqCst) < 60 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    // Ok: every one ended within the timeout (they end in milliseconds; the timeout is
    // generous for a loaded machine).
    rt.shutdown_timeout(Duration::from_secs(10)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(drops.load(Ordering::SeqCst), 60);
    drop((held, tx));
}

#[test]
fn a_green_thread_that_will_not_end_is_reported() {
    let rt = green::Runtime::builder()
        .workers(2)
        .thread_name("stubborn-rt")
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let caught = Arc::new(AtomicUsize::new(0));
    let c = caught.clone();
    drop(green::Builder::new().name("stubborn".into()).spawn_on(rt.handle(), move || {
        loop {
            if std::panic::catch_unwind(|| green::sleep(Duration::from_millis(1))).is_err() {
                c.fetch_add(1, Ordering::SeqCst);
            }
        }
    }));
    drop(rt.spawn(|| green::sleep(Duration::from_secs(3600)))); // ends when cancelled
    std::thread::sleep(Duration::from_millis(10));
    let start = Instant::now();
    // Long enough for the cancelled sleeper to end on a loaded machine; the stubborn one
    // never does.
    let err = rt.shutdown_timeout(Duration::from_millis(1000)).unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(1000), "returned early: {:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert_eq!(err.unfinished(), 1);
    let text = err.to_string();
    assert!(text.contains("\"stubborn\""), "{text}");
    assert!(caught.load(Ordering::SeqCst) > 0);
    // The rest of the shutdown goes on in the background: at the runtime's own timeout the
    // straggler is leaked and the workers exit.
    assert!(
        common::eventually(Duration::from_secs(30), || common::threads_named("stubborn-rt").is_empty()),
        "workers still running: {:?}",
        common::threads_named("stubborn-rt")
    );
}
