//! `green::io::stdin`: reads of standard input park. Each test runs in a child process whose
//! standard input the parent writes.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

const LIMIT: Duration = Duration::from_secs(60);

/// A file the child creates to tell the parent it has got somewhere (read a line, given up a
/// read): the parent types the next input then, not after a pause a slow child could outlast.
struct Mark(std::path::PathBuf);

impl Mark {
    /// The variable that gives the child the file's path.
    const VAR: &str = "GREEN_TEST_MARK";

    fn new(test: &str) -> Mark {
        let path = std::env::temp_dir().join(format!("green-stdin-{test}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Mark(path)
    }

    fn env(&self) -> (&'static str, &str) {
        (Mark::VAR, self.0.to_str().unwrap())
    }

    /// The child's side: it has got there.
    fn set() {
        std::fs::write(std::env::var(Mark::VAR).unwrap(), "").unwrap();
    }

    /// The parent's side: waits until the child has set the mark, or has ended (having failed),
    /// up to `LIMIT`; then removes it.
    fn wait(&self, child: &mut std::process::Child) {
        let start = std::time::Instant::now();
        while !self.0.exists() && child.try_wait().unwrap().is_none() && start.elapsed() < LIMIT {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The second of two lines is written 300 ms after the first was read, while another green
/// thread on the same worker keeps ticking: the wait for it parks.
#[test]
fn lines_of_standard_input_are_read_without_holding_the_worker() {
    const NAME: &str = "lines_of_standard_input_are_read_without_holding_the_worker";
    if common::child::is_child() {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let ticks = Arc::new(AtomicUsize::new(0));
        let lines = rt.block_on({
            let ticks = ticks.clone();
            move || {
                let ticker = green::spawn({
                    let ticks = ticks.clone();
                    move || {
                        loop {
                            green::sleep(Duration::from_millis(1));
                            ticks.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                let mut first = String::new();
                green::io::stdin().read_line(&mut first).unwrap();
                let before = ticks.load(Ordering::Relaxed);
                // Tells the parent to wait 300 ms and type the second.
                Mark::set();
                let mut lines: Vec<String> = green::io::stdin().lines().map(Result::unwrap).collect();
                let during = ticks.load(Ordering::Relaxed) - before;
                ticker.cancel();
                assert!(ticker.join().is_err());
                lines.insert(0, first);
                (lines, during)
            }
        });
        let (lines, ticks) = lines;
        assert_eq!(lines, ["one\n", "two"]);
        assert!(ticks >= 20, "the ticker ticked {ticks} times while the second line was awaited");
        println!("child: ok");
        return;
    }
    let mark = Mark::new(NAME);
    let mut child = common::child::spawn_child(NAME, &[mark.env()], Stdio::piped());
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"one\n").unwrap();
    // The second line 300 ms after the child has read the first (or once it has ended, failed).
    mark.wait(&mut child);
    std::thread::sleep(Duration::from_millis(300));
    let _ = input.write_all(b"two\n");
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

/// A read of standard input inside `green::timeout` ends at the deadline with `TimedOut` and
/// takes nothing: the line typed afterwards goes whole to the next read.
#[test]
fn a_read_at_its_deadline_gives_up_and_loses_no_input() {
    const NAME: &str = "a_read_at_its_deadline_gives_up_and_loses_no_input";
    if common::child::is_child() {
        let line = green::run(|| {
            let start = std::time::Instant::now();
            let mut line = String::new();
            match green::timeout(Duration::from_millis(100), || green::io::stdin().read_line(&mut line)) {
                Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
                Err(_elapsed) => {}
                Ok(Ok(n)) => panic!("read {n} bytes before any were written: {line:?}"),
            }
            assert!(start.elapsed() >= Duration::from_millis(100), "gave up early: {:?}", start.elapsed());
            assert!(line.is_empty(), "{line:?}");
            // Tells the parent to type now.
            Mark::set();
            green::io::stdin().read_line(&mut line).unwrap();
            line
        });
        assert_eq!(line, "typed later\n");
        println!("child: ok");
        return;
    }
    let mark = Mark::new(NAME);
    let mut child = common::child::spawn_child(NAME, &[mark.env()], Stdio::piped());
    let mut input = child.stdin.take().unwrap();
    // Typed once the child's read has given up (or the child has ended, having failed).
    mark.wait(&mut child);
    let _ = input.write_all(b"typed later\n");
    drop(input);
    let out = common::child::output_within(child, LIMIT).expect("the child hung");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && stdout.contains("child: ok"), "{stdout}\n{stderr}");
}
