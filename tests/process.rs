//! `green::process`: commands whose waits park, and the child's pipes.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use green::process::{Command, Stdio};

mod common;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn output_captures_both_streams_and_the_exit_code() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let out = Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).output().unwrap();
            assert_eq!(out.status.code(), Some(3));
            assert_eq!(out.stdout, b"out\n");
            assert_eq!(out.stderr, b"err\n");
            // Standard input reads nothing unless set: `cat` ends at once.
            let out = Command::new("cat").output().unwrap();
            assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
        });
    });
}

/// A child that writes more than a pipe holds to both streams: neither read may wait for the
/// other to finish, or the child never ends.
#[test]
fn output_reads_both_streams_at_once() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let script = "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2; head -c 300000 /dev/zero";
            let out = Command::new("sh").args(["-c", script]).output().unwrap();
            assert!(out.status.success());
            assert_eq!((out.stdout.len(), out.stderr.len()), (600_000, 200_000));
        });
    });
}

/// A child that sleeps leaves the worker free: the green thread beside it keeps ticking.
#[test]
fn waiting_for_a_child_does_not_hold_the_worker() {
    common::bounded(LIMIT, || {
        let (status, ticks) = common::beside_a_ticker(|| Command::new("sleep").arg("0.3").status().unwrap());
        assert!(status.success());
        // 300 ms of 1 ms sleeps: a blocked worker would have counted none.
        assert!(ticks >= 20, "the ticker ticked {ticks} times while the child slept");
        let (out, ticks) =
            common::beside_a_ticker(|| Command::new("sh").args(["-c", "sleep 0.3; echo done"]).output().unwrap());
        assert_eq!(out.stdout, b"done\n");
        assert!(ticks >= 20, "the ticker ticked {ticks} times while the output was read");
    });
}

/// A filter fed more than a pipe holds, by one green thread while another reads: the writes
/// park when the pipe is full.
#[test]
fn a_filter_is_fed_and_read_by_two_green_threads() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let lines: Vec<String> = (0..40_000).rev().map(|i| format!("{i:06}\n")).collect();
            let input = lines.concat();
            let mut child = Command::new("sort").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let feeder = green::spawn(move || stdin.write_all(input.as_bytes()));
            let mut sorted = String::new();
            child.stdout.take().unwrap().read_to_string(&mut sorted).unwrap();
            feeder.join().unwrap().unwrap();
            assert!(child.wait().unwrap().success());
            let expected: String = (0..40_000).map(|i| format!("{i:06}\n")).collect();
            assert!(sorted == expected, "sort's output differs ({} bytes)", sorted.len());
        });
    });
}

/// One child's output handed to another as its input is blocking again there: the second
/// program reads it as it would read any pipe.
#[test]
fn a_pipe_handed_to_another_command_is_blocking_again() {
    common::bounded(LIMIT, || {
        green::run(|| {
            // The writer pauses before it writes: a reader given a non-blocking pipe would
            // see EAGAIN and fail instead of waiting.
            let mut first =
                Command::new("sh").args(["-c", "sleep 0.2; printf 'b\\na\\n'"]).stdout(Stdio::piped()).spawn().unwrap();
            let out = Command::new("sort").stdin(first.stdout.take().unwrap()).output().unwrap();
            assert!(out.status.success(), "{out:?}");
            assert_eq!(out.stdout, b"a\nb\n");
            assert!(first.wait().unwrap().success());
        });
    });
}

/// A child's pipe goes out as an fd (still non-blocking, no longer watched) and comes back in
/// from one (made non-blocking, and its reads park), as std's pipes convert.
#[test]
fn a_pipe_converts_to_and_from_an_owned_fd() {
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
    fn nonblocking(fd: &impl AsRawFd) -> bool {
        // SAFETY: F_GETFL on an open fd reads its flags.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        assert!(flags >= 0, "F_GETFL: {}", std::io::Error::last_os_error());
        flags & libc::O_NONBLOCK != 0
    }
    common::bounded(LIMIT, || {
        green::run(|| {
            let mut child = Command::new("sh")
                .args(["-c", "printf out; printf err >&2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            assert!(child.wait().unwrap().success());
            let out = OwnedFd::from(child.stdout.take().unwrap());
            assert!(nonblocking(&out));
            let mut text = String::new();
            std::fs::File::from(out).read_to_string(&mut text).unwrap();
            assert_eq!(text, "out");
            let err = child.stderr.take().unwrap().into_raw_fd();
            // SAFETY: `into_raw_fd` handed over the open fd.
            let err = unsafe { OwnedFd::from_raw_fd(err) };
            text.clear();
            std::fs::File::from(err).read_to_string(&mut text).unwrap();
            assert_eq!(text, "err");

            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two fds `pipe2` writes.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            // SAFETY: `pipe2` opened both and nothing else owns them.
            let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            let mut reader = green::process::ChildStdout::from(read);
            assert!(nonblocking(&reader));
            let writer = green::spawn(move || {
                green::sleep(Duration::from_millis(50));
                std::fs::File::from(write).write_all(b"late").unwrap();
            });
            // The read parks until the writer, on this same worker, has written and closed.
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"late");
            writer.join().unwrap();
        });
    });
}

/// The same calls on a plain OS thread, with no runtime: they block, as std's do.
#[test]
fn on_a_plain_thread_it_works_as_std() {
    common::bounded(LIMIT, || {
        let out = Command::new("sh").args(["-c", "echo out; echo err >&2"]).output().unwrap();
        assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        child.stdin.as_mut().unwrap().write_all(b"echoed").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.stdout, b"echoed");
    });
}

/// What `std::process` has beside commands is there under the same names, so that a `use` of
/// several of them ports by its path alone.
#[test]
fn the_rest_of_std_process_is_reexported() {
    use green::process::{CommandArgs, ExitCode, Termination, abort, exit, id};
    let _: fn() -> ! = abort;
    let _: fn(i32) -> ! = exit;
    assert_eq!(id(), std::process::id());
    let _ = ExitCode::SUCCESS.report();
    let command = Command::new("echo");
    let args: CommandArgs<'_> = command.get_args();
    assert_eq!(args.len(), 0);
}

#[test]
fn a_program_that_is_not_there_is_named_in_the_error() {
    green::run(|| {
        let e = Command::new("green-no-such-program").output().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(text.contains("cannot start \"green-no-such-program\""), "{text}");
        // std's error, with the OS error code, is the source.
        let source = std::error::Error::source(e.get_ref().unwrap()).expect("no source");
        let os = source.downcast_ref::<std::io::Error>().expect("the source is not std's error");
        assert_eq!(os.raw_os_error(), Some(libc::ENOENT));
    });
}

/// `output` and `status` own their child: at a `green::timeout` deadline they kill and reap
/// it. A `Child` held by the caller is the caller's: a timeout leaves it running.
#[test]
fn output_and_status_kill_their_child_at_a_timeout() {
    common::bounded(LIMIT, || {
        green::run(|| {
            // A duration no other process uses, to find the children by.
            let marker = format!("59.{}{:09}", std::process::id(), Instant::now().elapsed().subsec_nanos() | 1);
            let mut held = Command::new("sleep").arg(&marker).spawn().unwrap();
            for use_output in [true, false] {
                let start = Instant::now();
                let result = green::timeout(Duration::from_millis(200), || {
                    let mut command = Command::new("sleep");
                    command.arg(&marker);
                    if use_output { command.output().map(|o| o.status) } else { command.status() }
                });
                // The wait gives `TimedOut` (or, had the deadline come at another cancellation
                // point, `green::timeout` would have unwound to its `Elapsed`).
                match result {
                    Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
                    Err(_elapsed) => {}
                    Ok(Ok(status)) => panic!("a 60 s sleep ended within its 200 ms timeout: {status}"),
                }
                assert!(start.elapsed() < Duration::from_secs(30), "the timeout took {:?}", start.elapsed());
                // Only the held child is left.
                assert_eq!(common::running_with(&marker), 1, "output: {use_output}");
            }
            held.kill().unwrap();
            assert!(!held.wait().unwrap().success());
            assert_eq!(common::running_with(&marker), 0);
        });
    });
}

/// Two green threads write to one child's standard input through `&ChildStdin`, as std allows,
/// many times what the pipe holds: both park while it is full, and every byte arrives.
#[test]
fn two_green_threads_write_through_a_shared_stdin() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let mut child = Command::new("wc").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
            let stdin = Arc::new(child.stdin.take().unwrap());
            let writers: Vec<_> = (0..2)
                .map(|_| {
                    let stdin = stdin.clone();
                    green::spawn(move || (&*stdin).write_all(&[b'x'; 300_000]))
                })
                .collect();
            drop(stdin);
            for writer in writers {
                writer.join().unwrap().unwrap();
            }
            let out = child.wait_with_output().unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "600000");
        });
    });
}

/// A read parked on the child's standard output ends with the end of stream when the child
/// exits without writing; a write parked on its full standard input ends with `BrokenPipe`
/// when the child stops reading and exits, in a green thread and on a plain OS thread alike.
#[test]
fn a_parked_read_sees_the_end_and_a_parked_write_the_broken_pipe() {
    fn write_past_the_reader() -> std::io::ErrorKind {
        // Reads 10 bytes, then closes its input and lives on a little while.
        let script = "head -c 10 >/dev/null; exec 0<&-; sleep 0.1";
        let mut child = Command::new("sh").args(["-c", script]).stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let e = stdin.write_all(&vec![7; 4 << 20]).unwrap_err();
        assert!(child.wait().unwrap().success());
        e.kind()
    }
    common::bounded(LIMIT, || {
        green::run(|| {
            let mut child = Command::new("sleep").arg("0.1").stdout(Stdio::piped()).spawn().unwrap();
            let mut bytes = Vec::new();
            assert_eq!(child.stdout.take().unwrap().read_to_end(&mut bytes).unwrap(), 0);
            assert!(child.wait().unwrap().success());
            assert_eq!(write_past_the_reader(), std::io::ErrorKind::BrokenPipe);
        });
        assert_eq!(write_past_the_reader(), std::io::ErrorKind::BrokenPipe);
    });
}

/// A green thread parked on a pipe is cancelled at once, and one inside `green::timeout` gets
/// `TimedOut` at its deadline; the child runs on, theirs to kill.
#[test]
fn a_parked_pipe_read_is_cancelled_or_timed_out() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let mut child = Command::new("sleep").arg("30").stdout(Stdio::piped()).spawn().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let start = Instant::now();
            let read = green::timeout(Duration::from_millis(50), || stdout.read(&mut [0; 8]));
            assert!(start.elapsed() >= Duration::from_millis(50), "timed out early: {:?}", start.elapsed());
            assert_eq!(read.unwrap().unwrap_err().kind(), std::io::ErrorKind::TimedOut);
            let reader = green::spawn(move || stdout.read(&mut [0; 8]));
            green::sleep(Duration::from_millis(20));
            reader.cancel();
            assert!(reader.join().unwrap_err().is_cancelled());
            assert_eq!(child.try_wait().unwrap(), None, "the child was ended by the reader's end");
            child.kill().unwrap();
            assert!(!child.wait().unwrap().success());
        });
    });
}

/// While a green thread unwinds it never parks (a destructor's I/O makes one attempt): a read
/// of an empty pipe, a wait, `status` and `output` each give an error at once instead, and the
/// children `status` and `output` started are killed rather than left running.
#[test]
fn while_unwinding_nothing_parks() {
    struct InDrop(Option<green::process::Child>, String);
    impl Drop for InDrop {
        fn drop(&mut self) {
            let mut child = self.0.take().unwrap();
            let start = Instant::now();
            let read = child.stdout.as_mut().unwrap().read(&mut [0; 8]);
            assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
            assert_eq!(child.wait().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
            let status = Command::new("sleep").arg(&self.1).status();
            assert_eq!(status.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
            let output = Command::new("sleep").arg(&self.1).output();
            assert_eq!(output.unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
            assert!(start.elapsed() < Duration::from_secs(10), "the destructor waited {:?}", start.elapsed());
            // Only the held child is left; it is reaped on a plain thread, where waits block.
            assert_eq!(common::running_with(&self.1), 1);
            child.kill().unwrap();
            std::thread::spawn(move || child.wait().unwrap()).join().unwrap();
        }
    }
    common::bounded(LIMIT, || {
        green::run(|| {
            let marker = format!("58.{}{:09}", std::process::id(), Instant::now().elapsed().subsec_nanos() | 1);
            let child = Command::new("sleep").arg(&marker).stdout(Stdio::piped()).spawn().unwrap();
            let unwinding = green::spawn(move || {
                let _in_drop = InDrop(Some(child), marker);
                panic!("unwinds through InDrop");
            });
            assert!(unwinding.join().unwrap_err().is_panic());
        });
    });
}

/// `output` sets its own defaults for the streams not set (null input, both outputs piped)
/// only for its own child: a later `spawn` of the same command inherits them again, and
/// streams that were set stay as set.
#[test]
fn output_leaves_the_command_as_it_was() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let mut command = Command::new("true");
            command.output().unwrap();
            let mut child = command.spawn().unwrap();
            assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none(), "{child:?}");
            assert!(child.wait().unwrap().success());
            command.stdout(Stdio::piped());
            command.output().unwrap();
            let mut child = command.spawn().unwrap();
            assert!(child.stdin.is_none() && child.stdout.is_some() && child.stderr.is_none(), "{child:?}");
            assert!(child.wait().unwrap().success());
        });
    });
}

/// A pipe taken back with `into_std` is blocking again, and reads as std's does.
#[test]
fn into_std_gives_a_blocking_pipe() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let mut child =
                Command::new("sh").args(["-c", "sleep 0.05; echo late"]).stdout(Stdio::piped()).spawn().unwrap();
            let mut stdout = child.stdout.take().unwrap().into_std().unwrap();
            // SAFETY: F_GETFL takes no pointer; the fd is open, borrowed from `stdout`.
            let flags = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&stdout), libc::F_GETFL) };
            assert_eq!(flags & libc::O_NONBLOCK, 0, "still non-blocking");
            let mut text = String::new();
            stdout.read_to_string(&mut text).unwrap();
            assert_eq!(text, "late\n");
            assert!(child.wait().unwrap().success());
        });
    });
}

/// Collecting a child's output just after the shutdown has begun, in a green thread that was
/// running then (its worker has not yet come round to cancel it), unwinds: the reader of the
/// standard error is refused, and that is the shutdown's cancellation, not an error of the
/// child's streams (it used to return "reading the child's standard error: ... cancelled").
#[test]
fn collecting_output_as_the_shutdown_begins_unwinds() {
    common::bounded(LIMIT, || {
        let (reached, returned) = common::calls_made_as_the_shutdown_begins(10, |_| {
            |hold: &dyn Fn()| {
                // Ended and reaped, both pipes at their ends: collecting parks nowhere.
                let mut child =
                    std::process::Command::new("true").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
                assert!(child.wait().unwrap().success());
                let child = green::process::Child::from_std(child).unwrap();
                hold();
                format!("{:?}", child.wait_with_output())
            }
        });
        assert!(returned.is_empty(), "collections made as the shutdown began returned {returned:?}");
        assert!(reached > 0, "no round reached its call: the test shows nothing");
    });
}

/// `ENOENT` from a spawn names what is missing: the working directory, the program, or the
/// interpreter of a script that is there. (The kernel's error is the same for all three; the
/// message said "not found in PATH, or the path given does not exist" for each.)
#[test]
fn a_spawn_error_says_which_path_is_missing() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command as StdCommand;
    let dir = std::env::temp_dir().join(format!("green-spawn-error-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("script");
    std::fs::write(&script, "#!/green-no-such-interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let gone = dir.join("gone");
    let in_dir = |program: &str| {
        let mut command = StdCommand::new(program);
        command.current_dir(&gone);
        command
    };
    let in_path = |program: &str| {
        let mut command = StdCommand::new(program);
        command.env("PATH", &dir);
        command
    };
    let cases: [(&dyn Fn() -> StdCommand, String); 5] = [
        (&|| in_dir("/bin/sh"), format!("(the working directory {gone:?} does not exist)")),
        (&|| StdCommand::new(&script), format!("({script:?} is there: the interpreter its #! line names")),
        (&|| in_path("script"), format!("({script:?} is there: the interpreter its #! line names")),
        (&|| StdCommand::new(dir.join("nothing")), "(the path given does not exist)".to_owned()),
        (&|| StdCommand::new("green-no-such-program"), "(not found in PATH)".to_owned()),
    ];
    let errors: Vec<_> = cases
        .into_iter()
        .map(|(command, expected)| {
            (command().spawn().unwrap_err(), Command::from(command()).spawn().unwrap_err(), expected)
        })
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    for (std_error, e, expected) in errors {
        assert_eq!((e.kind(), std_error.kind()), (std::io::ErrorKind::NotFound, std::io::ErrorKind::NotFound));
        assert!(e.to_string().contains(&expected), "{e} (expected {expected:?})");
    }
}

/// A `PermissionDenied` from a spawn says when the program named is a directory, and asks
/// about the execute bit otherwise; std's kind either way.
#[test]
fn a_spawn_error_says_when_the_program_is_a_directory() {
    use std::process::Command as StdCommand;
    let dir = std::env::temp_dir().join(format!("green-spawn-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let std_error = StdCommand::new(&dir).spawn().unwrap_err();
    let e = Command::new(&dir).spawn().unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        (e.kind(), std_error.kind()),
        (std::io::ErrorKind::PermissionDenied, std::io::ErrorKind::PermissionDenied)
    );
    assert!(e.to_string().contains(&format!("({dir:?} is a directory)")), "{e}");
}

/// A file run by its path that is neither a program for this machine nor a script with a `#!`
/// line fails with `ENOEXEC`, as with std (which tries `sh` only for a name found in `PATH`):
/// the message says what the file should be. It used to say only "Exec format error".
#[test]
fn a_spawn_error_says_what_an_exec_format_error_means() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("green-spawn-noexec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("no-interpreter-line");
    std::fs::write(&script, "echo a script without its #! line\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A child forked by another test while the file was open for writing holds it so until
    // its exec: the spawn fails with ETXTBSY meanwhile.
    let mut e = Command::new(&script).spawn().unwrap_err();
    for _ in 0..100 {
        if e.kind() != std::io::ErrorKind::ExecutableFileBusy {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        e = Command::new(&script).spawn().unwrap_err();
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let source = std::error::Error::source(e.get_ref().expect("a message")).expect("a source");
    let os = source.downcast_ref::<std::io::Error>().expect("the source is not std's error");
    assert_eq!(os.raw_os_error(), Some(libc::ENOEXEC), "{e}");
    let message = e.to_string();
    for needle in [format!("cannot start {script:?}"), "neither a program built for this machine".into(), "#!".into()] {
        assert!(message.contains(&needle), "{needle:?} not in {message:?}");
    }
}

/// `wait_with_output` takes the child: at a `green::timeout` deadline, or cancelled, it kills
/// and reaps it as `output` does. It used to drop it still running, and once ended the child
/// stayed a zombie that nobody could reap (its `Child` was gone).
#[test]
fn wait_with_output_kills_and_reaps_its_child_when_it_gives_up() {
    use std::os::unix::process::ExitStatusExt;
    /// Whether process `pid` is gone, reaped (not a zombie).
    fn reaped(pid: u32) -> bool {
        std::fs::metadata(format!("/proc/{pid}")).is_err()
    }
    common::bounded(LIMIT, || {
        green::run(|| {
            let piped = || {
                Command::new("sh")
                    .args(["-c", "echo started; exec sleep 60"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            };
            let child = piped();
            let pid = child.id();
            let result = green::timeout(Duration::from_millis(50), || child.wait_with_output());
            assert!(!matches!(result, Ok(Ok(_))), "{result:?}");
            assert!(common::eventually(Duration::from_secs(10), || reaped(pid)), "timed out: {pid} not reaped");

            let child = piped();
            let pid = child.id();
            let waiter = green::spawn(move || child.wait_with_output());
            green::sleep(Duration::from_millis(20));
            waiter.cancel();
            assert!(waiter.join().unwrap_err().is_cancelled());
            assert!(common::eventually(Duration::from_secs(10), || reaped(pid)), "cancelled: {pid} not reaped");

            // One that ends in time gives its output, as before.
            let mut child = piped();
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.signal(), Some(libc::SIGKILL));
        });
    });
}

/// A program named without a `/` is looked for in `PATH`, never in the working directory: a
/// `PermissionDenied` for one is not put down to a directory of that name there. (The hint
/// looked at the parent's working directory, where `src` is one, and said the program was a
/// directory when it was a file without the execute bit in `PATH`.)
#[test]
fn a_spawn_error_looks_for_a_bare_name_in_path_only() {
    use std::os::unix::fs::PermissionsExt;
    assert!(std::path::Path::new("src").is_dir(), "run from the package's root");
    let dir = std::env::temp_dir().join(format!("green-spawn-bare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_executable = dir.join("src");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Command::new("src").env("PATH", &dir).spawn().unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    assert!(!e.to_string().contains("is a directory"), "{e}");
    assert!(e.to_string().contains("is the file executable?"), "{e}");
}

/// With `kill_on_drop(true)`, a `Child` dropped by a cancelled green thread's unwind, or by a
/// plain drop, takes its process with it: killed and reaped, no zombie left. Without it the
/// process runs on, as std's does.
#[test]
fn kill_on_drop_ends_and_reaps_the_child_with_its_handle() {
    /// Whether process `pid` is gone, reaped (not a zombie).
    fn reaped(pid: u32) -> bool {
        std::fs::metadata(format!("/proc/{pid}")).is_err()
    }
    common::bounded(LIMIT, || {
        green::run(|| {
            let sleeper = |kill: bool| Command::new("sleep").arg("60").kill_on_drop(kill).spawn().unwrap();

            // A handler cancelled in its wait.
            let (to_test, pid) = green::sync::oneshot::channel();
            let handler = green::spawn(move || {
                let mut child = sleeper(true);
                to_test.send(child.id()).unwrap();
                child.wait()
            });
            let pid = pid.recv().unwrap();
            green::sleep(Duration::from_millis(20));
            handler.cancel();
            assert!(handler.join().unwrap_err().is_cancelled());
            assert!(common::eventually(Duration::from_secs(10), || reaped(pid)), "cancelled: {pid} not reaped");

            // A plain drop.
            let child = sleeper(true);
            let pid = child.id();
            drop(child);
            assert!(common::eventually(Duration::from_secs(10), || reaped(pid)), "dropped: {pid} not reaped");

            // Off (the default): it runs on once dropped, and is ended here by hand.
            let child = sleeper(false);
            let pid = child.id();
            drop(child);
            green::sleep(Duration::from_millis(20));
            assert!(!reaped(pid), "{pid} ended without kill_on_drop");
            assert!(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
            // Nobody else would reap it: wait for it by its pid.
            let mut status = 0;
            // SAFETY: a plain system call with a pointer to a live local.
            let waited = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
            assert_eq!(waited, pid as libc::pid_t);

            // Its pipes can still be moved out of it by value, as out of std's `Child`; the rest
            // of it drops at the end of the block, and the process with it.
            let pid = {
                let child = Command::new("echo").arg("hi").stdout(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
                let pid = child.id();
                let mut stdout = child.stdout.unwrap();
                let mut out = String::new();
                std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
                assert_eq!(out, "hi\n");
                pid
            };
            assert!(common::eventually(Duration::from_secs(10), || reaped(pid)), "moved out of: {pid} not reaped");
        });
    });
}
