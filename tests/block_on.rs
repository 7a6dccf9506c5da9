//! `Runtime::block_on` never returns before its green thread has finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Regression: under a `green::timeout` deadline on the calling thread, the join inside
/// `block_on` used to unwind at the deadline while the green thread still used the caller's
/// borrowed data.
#[test]
fn a_deadline_on_the_caller_does_not_cut_block_on_short() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let finished = Arc::new(AtomicBool::new(false));
    let data = vec![1u64; 1000];
    let f = finished.clone();
    let outcome = green::timeout(Duration::from_millis(10), || {
        rt.block_on(|| {
            green::sleep(Duration::from_millis(60));
            let sum = data.iter().sum::<u64>();
            f.store(true, Ordering::SeqCst);
            sum
        })
    });
    assert!(finished.load(Ordering::SeqCst), "block_on returned before its green thread finished");
    if let Ok(sum) = outcome {
        assert_eq!(sum, 1000);
    }
}
