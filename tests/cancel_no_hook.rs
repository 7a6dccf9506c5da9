//! A cancellation unwinds a green thread without a panic: no panic hook runs (rule 7 of
//! docs/design.md), so cancelling and shutting down print nothing. One test in this binary,
//! since the hook is the process's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn cancelling_and_shutting_down_run_no_panic_hook() {
    std::panic::set_hook(Box::new(|_| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
    }));
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let sleeper = green::spawn(|| green::sleep(Duration::from_secs(60)));
        green::sleep(Duration::from_millis(10));
        sleeper.cancel();
        assert!(sleeper.join().unwrap_err().is_cancelled());
        let (_tx, rx) = green::sync::mpmc::channel::<u8>();
        let receiver = green::spawn(move || rx.recv());
        green::yield_now();
        receiver.cancel();
        assert!(receiver.join().unwrap_err().is_cancelled());
    });
    // Left parked at shutdown: cancelled by the drop.
    let _left = rt.spawn(|| green::sleep(Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(10));
    drop(rt);
    let calls = HOOK_CALLS.load(Ordering::SeqCst);
    let _ = std::panic::take_hook();
    assert_eq!(calls, 0, "a cancellation ran the panic hook");
}
