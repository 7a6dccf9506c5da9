//! `green::process` leaves nothing behind: no fd, no zombie, no green thread still reading a
//! pipe. The tests count this process's fds and children, so they take turns.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use green::process::{Command, Stdio};

mod common;

const LIMIT: Duration = Duration::from_secs(60);

/// Held by each test: the counts below see every test's fds and children.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// This process's children that have ended but were not reaped, as `pid (name)`.
fn zombies() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.ok()?.path().join("stat")).ok()?;
            let (head, rest) = stat.rsplit_once(") ")?;
            let mut fields = rest.split(' ');
            let (state, ppid) = (fields.next()?, fields.next()?);
            (state == "Z" && ppid == me).then(|| format!("{head})"))
        })
        .collect()
}

/// `output` gave up on at a timeout, while the child's own child still holds both pipes: the
/// child is killed, and nothing of the call is left reading its standard error (a green thread
/// that would wait, holding the pipe's fd, for as long as the grandchild lives).
#[test]
fn a_timed_out_output_leaves_no_reader_behind() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(LIMIT, || {
        green::run(|| {
            let marker = format!("1.{}{:09}", std::process::id(), Instant::now().elapsed().subsec_nanos() | 1);
            let before = common::open_fds();
            let script = format!("sleep {marker} & sleep {marker}");
            let result =
                green::timeout(Duration::from_millis(100), || Command::new("sh").args(["-c", &script]).output());
            assert!(!matches!(result, Ok(Ok(_))), "{result:?}");
            // The grandchild holds the pipes for about a second yet.
            assert!(common::running_with(&marker) >= 1, "the grandchild ended early: the test shows nothing");
            let settled = Instant::now() + Duration::from_millis(300);
            while common::open_fds() > before && Instant::now() < settled {
                green::sleep(Duration::from_millis(5));
            }
            assert_eq!(common::open_fds(), before, "an fd of the timed-out output is still open");
            // Leave nothing running.
            while common::running_with(&marker) > 0 {
                green::sleep(Duration::from_millis(20));
            }
        });
    });
}

/// Many children started, fed, read, timed out and waited for: afterwards as many fds are
/// open as before, and no child is left unreaped.
#[test]
fn many_children_leave_no_fd_and_no_zombie() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(LIMIT, || {
        green::run(|| {
            let before = common::open_fds();
            for round in 0..60 {
                // Half of them at a deadline that passes before the child ends.
                let timeout = Duration::from_millis(if round % 2 == 0 { 1 } else { 5_000 });
                let script = "echo out; echo err >&2; exec sleep 0.02";
                let _ = green::timeout(timeout, || Command::new("sh").args(["-c", script]).output());
                let _ = green::timeout(timeout, || Command::new("sleep").arg("0.02").status());
                let mut child = Command::new("cat")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.as_mut().unwrap().write_all(b"fed").unwrap();
                assert_eq!(child.wait_with_output().unwrap().stdout, b"fed");
            }
            assert_eq!(common::open_fds(), before, "fds were left open");
            assert_eq!(zombies(), Vec::<String>::new(), "children were left unreaped");
        });
    });
}

/// A child started while another's pipes are open (and registered with a worker's poller)
/// sees only its standard streams: the pipes and the runtime's own fds are close-on-exec.
#[test]
fn a_child_inherits_no_pipe_of_another() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(LIMIT, || {
        green::run(|| {
            use std::os::fd::AsRawFd;
            let mut held = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // A read that parks registers the pipe.
            let mut stdout = held.stdout.take().unwrap();
            let read = green::timeout(Duration::from_millis(10), || std::io::Read::read(&mut stdout, &mut [0; 8]));
            assert!(read.is_err() || read.as_ref().unwrap().is_err(), "{read:?}");
            let ours = [
                held.stdin.as_ref().unwrap().as_raw_fd(),
                stdout.as_raw_fd(),
                held.stderr.as_ref().unwrap().as_raw_fd(),
            ];
            // What the child has open beyond the standard streams, each as `fd -> what`.
            let out = Command::new("sh")
                .args(["-c", "for fd in /proc/self/fd/*; do echo \"${fd##*/} $(readlink $fd)\"; done"])
                .output()
                .unwrap();
            let listing = String::from_utf8(out.stdout).unwrap();
            for line in listing.lines() {
                let (fd, target) = line.split_once(' ').unwrap();
                let fd: i32 = fd.parse().unwrap();
                assert!(!ours.contains(&fd) || !target.starts_with("pipe:"), "the child inherited fd {fd}: {listing}");
                assert!(!target.contains("eventpoll") && !target.contains("timerfd"), "inherited: {listing}");
            }
            drop(held.stdin.take());
            assert!(held.wait().unwrap().success());
        });
    });
}
