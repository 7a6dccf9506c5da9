//! `green::io::stdin`: reads of standard input park. Each test runs in a child process whose
//! standard input the parent writes.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

const LIMIT: Duration = Duration::from_secs(60);

/// Lines written 300 ms apart are read by a green thread while another on the same worker
/// keeps ticking: the wait for the second line parks.
#[test]
fn lines_of_standard_input_are_read_without_holding_the_worker() {
    const NAME: &str = "lines_of_standard_input_are_read_without_holding_the_worker";
    if common::child::is_child() {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let lines = rt.block_on({
            let ticks = ticks.clone();
            move || {
                let ticker = green::spawn(move || {
                    loop {
                        green::sleep(Duration::from_millis(1));
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                });
                let lines: Vec<String> = green::io::stdin().lines().map(Result::unwrap).collect();
                ticker.cancel();
                assert!(ticker.join().is_err());
                lines
            }
        });
        assert_eq!(lines, ["one", "two"]);
        let ticks = ticks.load(Ordering::Relaxed);
        assert!(ticks >= 20, "the ticker ticked {ticks} times while the second line was awaited");
        println!("child: ok");
        return;
    }
    let mut child = common::child::spawn_child(NAME, &[], Stdio::piped());
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"one\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    input.write_all(b"two\n").unwrap();
    drop(input);
    let out = common::child::output_within(child, LIMIT).expect("the child hung");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("child: ok"), "{stdout}\n{stderr}");
}

/// Standard input from /dev/null, or closed, reads as its end, as std's does; `read_line` and
/// `Read` work on a plain OS thread too.
#[test]
fn empty_or_closed_standard_input_reads_as_its_end() {
    const NAME: &str = "empty_or_closed_standard_input_reads_as_its_end";
    if common::child::is_child() {
        let mut buf = [0; 8];
        green::run(|| assert_eq!(green::io::stdin().read(&mut buf).unwrap(), 0));
        let mut line = String::new();
        assert_eq!(green::io::stdin().read_line(&mut line).unwrap(), 0);
        // Closed last: a runtime started later could take fd 0 for its own (as for std's).
        // SAFETY: nothing else in this child uses fd 0.
        unsafe { libc::close(0) };
        assert_eq!(green::io::stdin().read(&mut buf).unwrap(), 0);
        println!("child: ok");
        return;
    }
    common::child::expect_child_ok(NAME, LIMIT);
}
