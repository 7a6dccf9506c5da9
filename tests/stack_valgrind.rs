//! Under Valgrind's memcheck, with its default settings, a program that spawns, runs and joins
//! a few hundred green threads reports no error: switches between green-thread stacks are not
//! mistaken for huge frames.
//!
//! The test re-runs this binary on just itself under `valgrind` (skipped where Valgrind is not
//! installed), with `GREEN_TEST_CHILD` set so that the test body does the work.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::child::{CHILD, is_child, output_within};

/// Green threads the child spawns.
const GREEN_THREADS: u64 = 300;

/// How long the child may take under Valgrind before it counts as hung (and is killed).
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

const TEST: &str = "green_threads_run_clean_under_valgrind";

#[test]
fn green_threads_run_clean_under_valgrind() {
    if is_child() {
        child();
        return;
    }
    let mut command = Command::new("valgrind");
    command
        .args(["--error-exitcode=99", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("skipped: cannot run valgrind ({e})");
            return;
        }
    };
    let output = output_within(child, CHILD_TIMEOUT).expect("the child under valgrind hung and was killed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let head: String = stderr.lines().take(60).collect::<Vec<_>>().join("\n");
    assert!(output.status.success(), "status {:?}; valgrind's report begins:\n{head}", output.status);
    assert!(stdout.contains("child: ok"), "stdout:\n{stdout}\nstderr:\n{head}");
    assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "stderr:\n{head}");
}

/// Spawns green threads that sleep, yield and send, then joins them all.
fn child() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let total = rt.block_on(|| {
        let (tx, rx) = green::sync::mpsc::channel::<u64>();
        let children: Vec<_> = (0..GREEN_THREADS)
            .map(|i| {
                let tx = tx.clone();
                green::spawn(move || {
                    green::sleep(Duration::from_millis(1));
                    green::yield_now();
                    tx.send(i).unwrap();
                    i
                })
            })
            .collect();
        drop(tx);
        let joined: u64 = children.into_iter().map(|c| c.join().unwrap()).sum();
        let received: u64 = rx.iter().sum();
        assert_eq!(joined, received);
        joined
    });
    assert_eq!(total, GREEN_THREADS * (GREEN_THREADS - 1) / 2);
    println!("child: ok");
}
