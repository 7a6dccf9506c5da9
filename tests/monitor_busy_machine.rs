//! A loop without ticks is reported even on a machine with more runnable threads than cores,
//! where its worker gets only a small share of a CPU. Its own test binary: it pins the whole
//! process to one CPU and installs the process's logger.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::warnings;

/// OS threads that spin beside the worker on the same CPU: the worker gets about a quarter.
const SPINNERS: usize = 3;

#[test]
fn a_loop_without_ticks_is_reported_on_a_busy_machine() {
    warnings::install();
    // Pin this thread, and so every thread it starts, to the CPU it runs on.
    // SAFETY: `set` is a plain bit set; sched_setaffinity reads it and touches nothing else.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(libc::sched_getcpu().max(0) as usize, &mut set);
        assert_eq!(libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set), 0);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..SPINNERS)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let rt = green::Runtime::builder().workers(1).blocking_threshold(Duration::from_millis(100)).build().unwrap();
    rt.block_on(|| {
        green::Builder::new()
            .name("hog".into())
            .spawn(|| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(3) {
                    std::hint::spin_loop();
                }
            })
            .unwrap()
            .join()
            .unwrap()
    });
    drop(rt);
    stop.store(true, Ordering::Relaxed);
    for spinner in spinners {
        spinner.join().unwrap();
    }
    let logs = warnings::logged();
    assert!(
        logs.iter().any(|l| l.contains("\"hog\"") && l.contains("computing without a tick")),
        "a 3 s loop without ticks, at a quarter of a CPU, was not reported: {logs:?}"
    );
}
