//! The monitor names a green thread that blocks its worker, and reports its recovery.

use std::time::Duration;

mod common;
use common::warnings;

#[test]
fn a_green_thread_calling_thread_sleep_is_named() {
    warnings::install();
    let rt = green::Runtime::builder().workers(1).blocking_threshold(Duration::from_millis(100)).build().unwrap();
    rt.block_on(|| {
        let queued: Vec<_> = (0..3).map(|_| green::spawn(|| ())).collect();
        let culprit = green::Builder::new()
            .name("sleepy".into())
            .spawn(|| std::thread::sleep(Duration::from_millis(300)))
            .unwrap();
        culprit.join().unwrap();
        for q in queued {
            q.join().unwrap();
        }
    });
    let metrics = rt.handle().metrics();
    drop(rt);
    let logs = warnings::logged();
    let report = logs.iter().find(|l| l.contains("\"sleepy\"")).unwrap_or_else(|| panic!("no report in {logs:?}"));
    assert!(report.contains("tests/monitor.rs"), "spawn site missing: {report}");
    assert!(report.contains("ms"), "{report}");
    assert!(report.contains("blocked in a system call"), "{report}");
    // The call is named (read from /proc when the report is made), with the green way around.
    assert!(report.contains("nanosleep") && report.contains("green::sleep"), "{report}");
    assert!(logs.iter().any(|l| l.contains("making progress again")), "no recovery report in {logs:?}");
    // The metrics count the stall once, and how long it held the worker: at least the part
    // the monitor saw before it reported (three quarters of the threshold), at most the sleep
    // and a generous margin.
    let worker = &metrics.workers[0];
    assert_eq!(worker.stalls, 1, "{metrics}");
    assert!(worker.stalled >= Duration::from_millis(75) && worker.stalled < Duration::from_secs(30), "{metrics}");
    assert!(metrics.to_string().contains("stalls: 1, "), "{metrics}");
    assert_eq!(metrics.possible_deadlocks, 0, "{metrics}");
}

/// A blocking std socket read is named with its fd and what the fd is.
#[test]
fn a_green_thread_reading_a_std_socket_is_named_with_its_fd() {
    use std::io::{Read, Write};
    warnings::install();
    let (mut mine, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&mine);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        peer.write_all(b"x").unwrap();
    });
    let rt = green::Runtime::builder().workers(1).blocking_threshold(Duration::from_millis(100)).build().unwrap();
    rt.block_on(move || {
        green::Builder::new()
            .name("std reader".into())
            .spawn(move || mine.read(&mut [0; 8]).unwrap())
            .unwrap()
            .join()
            .unwrap()
    });
    drop(rt);
    writer.join().unwrap();
    let logs = warnings::logged();
    let report = logs.iter().find(|l| l.contains("\"std reader\"")).unwrap_or_else(|| panic!("no report in {logs:?}"));
    assert!(report.contains(&format!("on fd {fd} (socket:[")), "{report}");
    assert!(report.contains("green::net"), "{report}");
}

/// CPU time (user + system, in clock ticks) of this process's thread named `name`.
fn thread_cpu_ticks(name: &str) -> Option<u64> {
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
        let path = task.ok()?.path();
        if std::fs::read_to_string(path.join("comm")).ok()?.trim_end() != name {
            return None;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        // Fields after the command name (in parentheses): utime and stime are 14th and 15th.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    })
}

/// A zero blocking threshold is taken as the shortest one (1 ms): the monitor of an idle
/// runtime naps instead of spinning through zero-length sleeps.
#[test]
fn a_zero_threshold_does_not_make_the_monitor_spin() {
    let rt =
        green::Runtime::builder().workers(1).thread_name("zerothr").blocking_threshold(Duration::ZERO).build().unwrap();
    rt.block_on(|| green::sleep(Duration::from_millis(10)));
    let before = thread_cpu_ticks("zerothr-monitor").expect("the monitor thread");
    std::thread::sleep(Duration::from_millis(500));
    let used = thread_cpu_ticks("zerothr-monitor").expect("the monitor thread") - before;
    // Spinning through zero-length naps, it took about a quarter of it (13 ticks of 10 ms).
    assert!(used < 5, "the monitor of an idle runtime used {used} ticks in 0.5 s");
    drop(rt);
}

/// When every worker is stuck at once, one warning sums up each one's culprit: nothing else
/// runs then, and without a logger only the first worker's report would have been printed.
#[test]
fn every_worker_stuck_at_once_is_summed_up() {
    warnings::install();
    let rt = green::Runtime::builder().workers(2).blocking_threshold(Duration::from_millis(50)).build().unwrap();
    rt.block_on(|| {
        let culprits: Vec<_> = (0..2)
            .map(|worker| {
                green::Builder::new()
                    .name(format!("stuck on {worker}"))
                    .worker(worker)
                    .spawn(|| std::thread::sleep(Duration::from_millis(800)))
                    .unwrap()
            })
            .collect();
        for culprit in culprits {
            culprit.join().unwrap();
        }
    });
    drop(rt);
    let logs = warnings::logged();
    let summaries: Vec<_> =
        logs.iter().filter(|l| l.contains("\"stuck on 0\"") && l.contains("every worker")).collect();
    assert_eq!(summaries.len(), 1, "one summary per spell in {logs:?}");
    let summary = summaries[0];
    assert!(summary.contains("every worker (2)"), "{summary}");
    assert!(summary.contains("\"stuck on 1\""), "both culprits named: {summary}");
    assert!(summary.contains("nanosleep"), "{summary}");
    assert!(summary.contains("Porting from std"), "{summary}");
}

/// One worker stuck while another runs is reported, but not summed up as every worker.
#[test]
fn one_worker_stuck_of_two_is_not_summed_up() {
    warnings::install();
    let rt = green::Runtime::builder().workers(2).blocking_threshold(Duration::from_millis(50)).build().unwrap();
    rt.block_on(|| {
        let culprit = green::Builder::new()
            .name("alone stuck".into())
            .worker(0)
            .spawn(|| std::thread::sleep(Duration::from_millis(400)))
            .unwrap();
        let runner = green::Builder::new()
            .worker(1)
            .spawn(|| {
                for _ in 0..40 {
                    green::sleep(Duration::from_millis(10));
                }
            })
            .unwrap();
        culprit.join().unwrap();
        runner.join().unwrap();
    });
    drop(rt);
    let logs = warnings::logged();
    assert!(logs.iter().any(|l| l.contains("\"alone stuck\"")), "no report in {logs:?}");
    assert!(!logs.iter().any(|l| l.contains("\"alone stuck\"") && l.contains("every worker")), "{logs:?}");
}
