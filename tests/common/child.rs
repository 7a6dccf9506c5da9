//! Running one test of this binary again in a child process: for tests that crash on purpose
//! (stack overflows, faults), change process-wide limits (fds, mappings) or send signals.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
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

/// [`run_child`], with `env` added to the child's environment.
pub fn run_child_with_env(name: &str, limit: Duration, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
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
    let child = command.spawn().unwrap();
    output_within(child, limit).unwrap_or_else(|| panic!("child {name} hung for {limit:?} and was killed"))
}

/// Waits for `child` (spawned with piped stdout and stderr) and returns its output, or kills it
/// and returns `None` once `limit` has passed.
pub fn output_within(mut child: Child, limit: Duration) -> Option<Output> {
    // Both pipes are read on their own threads, so a chatty child cannot fill one and stall.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            // `try_wait` has not reaped it, so its pid is still this child's: the kill cannot
            // hit a process that took the number since.
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Some(Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() })
}
