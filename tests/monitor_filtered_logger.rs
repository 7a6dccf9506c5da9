//! A program whose logger drops warnings still hears of a stuck worker on stderr, as one
//! without a logger does. Its own test binary: the child installs the process's logger.

use std::time::Duration;

mod common;

/// Lets errors through and nothing else, as env_logger does when `RUST_LOG` is not set.
struct ErrorsOnly;

impl log::Log for ErrorsOnly {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Error
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("logged: {}", record.args());
        }
    }

    fn flush(&self) {}
}

#[test]
fn a_stuck_worker_is_printed_when_the_logger_drops_warnings() {
    const NAME: &str = "a_stuck_worker_is_printed_when_the_logger_drops_warnings";
    if !common::child::is_child() {
        let out = common::child::run_child(NAME, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {:?}\n{stderr}", out.status);
        assert!(stderr.contains("\"sleepy\"") && stderr.contains("blocked in a system call"), "{stderr}");
        assert!(stderr.contains("RUST_LOG=green=warn"), "no hint in: {stderr}");
        return;
    }
    log::set_logger(&ErrorsOnly).unwrap();
    log::set_max_level(log::LevelFilter::Error);
    let rt = green::Runtime::builder().workers(1).blocking_threshold(Duration::from_millis(50)).build().unwrap();
    rt.block_on(|| {
        green::Builder::new()
            .name("sleepy".into())
            .spawn(|| std::thread::sleep(Duration::from_millis(400)))
            .unwrap()
            .join()
            .unwrap()
    });
    drop(rt);
}

/// Without a logger, a possible deadlock's dump goes to stderr once: a program whose green
/// thread waits for an OS thread's messages, with quiet spells longer than the doubled quiet
/// between them (as a prompt's would), does not print a dump at every spell.
#[test]
fn a_possible_deadlock_is_printed_once_without_a_logger() {
    const NAME: &str = "a_possible_deadlock_is_printed_once_without_a_logger";
    if !common::child::is_child() {
        let out = common::child::run_child(NAME, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {:?}\n{stderr}", out.status);
        assert_eq!(stderr.matches("green: possible deadlock;").count(), 1, "{stderr}");
        assert!(stderr.contains("\"reader\""), "no dump in: {stderr}");
        return;
    }
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let (tx, rx) = green::sync::mpmc::channel::<u32>();
    let reader =
        green::Builder::new().name("reader".into()).spawn_on(rt.handle(), move || while rx.recv().is_ok() {}).unwrap();
    // Quiet for 1.5 s (the first report needs 1 s), a message, then quiet for 2.8 s (the second
    // would need 2 s).
    for pause in [1_500, 2_800] {
        std::thread::sleep(Duration::from_millis(pause));
        tx.send(1).unwrap();
    }
    drop(tx);
    reader.join().unwrap();
    drop(rt);
}

/// Without a logger, only the first report of a stuck worker goes to stderr; when every worker
/// is stuck, the summary that names each culprit goes there too, once per process.
#[test]
fn every_worker_stuck_is_printed_once_without_a_logger() {
    const NAME: &str = "every_worker_stuck_is_printed_once_without_a_logger";
    if !common::child::is_child() {
        let out = common::child::run_child(NAME, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {:?}\n{stderr}", out.status);
        assert_eq!(stderr.matches("green: every worker (2) is held").count(), 1, "{stderr}");
        assert!(stderr.contains("\"held 0\"") && stderr.contains("\"held 1\""), "both culprits named: {stderr}");
        return;
    }
    let rt = green::Runtime::builder().workers(2).blocking_threshold(Duration::from_millis(50)).build().unwrap();
    // Two spells of both workers held, with progress between them.
    for _ in 0..2 {
        rt.block_on(|| {
            let held: Vec<_> = (0..2)
                .map(|worker| {
                    green::Builder::new()
                        .name(format!("held {worker}"))
                        .worker(worker)
                        .spawn(|| std::thread::sleep(Duration::from_millis(500)))
                        .unwrap()
                })
                .collect();
            held.into_iter().for_each(|h| h.join().unwrap());
            green::sleep(Duration::from_millis(100));
        });
    }
    drop(rt);
}
