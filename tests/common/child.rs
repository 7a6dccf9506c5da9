//! Running one test of this binary again in a child process: for tests that crash on purpose
//! (stack overflows, faults), change process-wide limits (fds, mappings) or send signals.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set in a child process re-running one test of its binary.
pub const CHILD: &str = "GREEN_TEST_CHILD";

/// True in the child process.
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs test `name` of this binary in a child process (with `CHILD` set and no core dumps)
/// and returns its output; kills it after `limit`.
pub fn run_child(name: &str, limit: Duration) -> Output {
    run_child_with_env(name, limit, &[])
}

/// Parent side of a child test that ends by printing `child: ok`, or `child: skipped: <why>`
/// where it cannot run here: runs test `name` in a child process (see [`run_child`]) and fails
/// unless the child exited successfully having said ok. Returns the child's output, or `None`
/// if it was skipped (its reason goes to stderr).
pub fn expect_child_ok(name: &str, limit: Duration) -> Option<Output> {
    let output = run_child(name, limit);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stdout.contains("child: skipped") {
        eprintln!("{stdout}");
        return None;
    }
    assert!(output.status.success(), "child failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(stdout.contains("child: ok"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    Some(output)
}

/// [`run_child`], with `env` added to the child's environment.
pub fn run_child_with_env(name: &str, limit: Duration, env: &[(&str, &str)]) -> Output {
    let child = spawn_child(name, env, Stdio::null());
    output_within(child, limit).unwrap_or_else(|| panic!("child {name} hung for {limit:?} and was killed"))
}

/// Starts test `name` of this binary in a child process (with `CHILD` set, `env` added, no
/// core dumps, in a process group of its own, stdout and stderr piped) with `stdin`; the caller
/// ends it with [`output_within`].
pub fn spawn_child(name: &str, env: &[(&str, &str)], stdin: Stdio) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .envs(env.iter().copied())
        .process_group(0)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    command.spawn().unwrap()
}

/// Waits for `child` (spawned with piped stdout and stderr, in a process group of its own:
/// `process_group(0)`) and returns its output, or kills its group and returns `None` once
/// `limit` has passed, whether the child is still running or something it started still holds
/// its pipes open.
pub fn output_within(mut child: Child, limit: Duration) -> Option<Output> {
    let deadline = Instant::now() + limit;
    // Both pipes are read on their own threads, so a chatty child cannot fill one and stall.
    let (tx, rx) = mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (which, pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = tx.send((which, bytes));
        });
    }
    drop(tx);
    let group = child.id() as libc::pid_t;
    let kill_group = || {
        // SAFETY: kill has no memory-safety preconditions. The group is the child's own (its
        // id is the child's pid), and the kernel reuses no pid that is still a group's id.
        unsafe { libc::killpg(group, libc::SIGKILL) };
    };
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            // `try_wait` has not reaped it, so its pid is still this child's.
            kill_group();
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut output = Output { status, stdout: Vec::new(), stderr: Vec::new() };
    for _ in 0..2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((0, bytes)) => output.stdout = bytes,
            Ok((_, bytes)) => output.stderr = bytes,
            // Something the child started keeps a pipe open past the limit.
            Err(_) => {
                kill_group();
                return None;
            }
        }
    }
    Some(output)
}
