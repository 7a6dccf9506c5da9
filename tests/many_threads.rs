//! 100,000 green threads alive at once, at the machine's default `vm.max_map_count`.
//!
//! With in-mapping guard pages (Linux 6.13+) the stacks share a handful of mappings; on older
//! kernels every stack costs two, so the test uses 20,000 there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod common;

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

fn kernel_has_guard_installs() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (6, 13)
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0)
}

#[test]
fn a_hundred_thousand_parked_green_threads() {
    common::bounded(LIMIT, || {
        let n: usize = if kernel_has_guard_installs() { 100_000 } else { 20_000 };
        let before = mappings();
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let parked = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(AtomicBool::new(false));
        let sum = rt.block_on(|| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (parked, gate) = (parked.clone(), gate.clone());
                    green::spawn(move || {
                        parked.fetch_add(1, Ordering::AcqRel);
                        while !gate.load(Ordering::Acquire) {
                            green::park();
                        }
                        i as u64
                    })
                })
                .collect();
            while parked.load(Ordering::Acquire) < n {
                green::sleep(std::time::Duration::from_millis(1));
            }
            // All alive and parked at once: every one holds its own stack now.
            let during = mappings();
            if kernel_has_guard_installs() {
                assert!(during < before + 100, "stacks took {} mappings", during - before);
            }
            gate.store(true, Ordering::Release);
            for h in &handles {
                h.thread().unpark();
            }
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        assert_eq!(sum, (n as u64 - 1) * n as u64 / 2);
    });
}
