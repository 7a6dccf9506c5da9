//! A green thread cancelled before it starts never runs its closure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn cancelling_an_unstarted_green_thread_drops_it_unrun() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let err = rt.block_on(move || {
        // One worker, busy here: the child cannot start before we cancel it.
        let child = green::spawn(move || r.store(true, Ordering::SeqCst));
        child.cancel();
        child.join().unwrap_err()
    });
    assert!(err.is_cancelled());
    assert!(!ran.load(Ordering::SeqCst));
}
