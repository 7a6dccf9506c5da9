//! A green thread cancelled before it starts never runs its closure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod common;
use common::Counted;

#[test]
fn cancelling_an_unstarted_green_thread_drops_it_unrun() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let captured = Counted(drops.clone());
    let err = rt.block_on(move || {
        // One worker, busy here: the child cannot start before we cancel it.
        let child = green::spawn(move || {
            let _keep = &captured;
            r.store(true, Ordering::SeqCst);
        });
        child.cancel();
        child.join().unwrap_err()
    });
    assert!(err.is_cancelled());
    assert!(!ran.load(Ordering::SeqCst));
    // Its closure, and what it captured, were dropped: not leaked.
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
