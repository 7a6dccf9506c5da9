//! The networking examples run their `--demo` (a server on a free port, a few clients,
//! checked answers) and exit successfully.
//!
//! `cargo test` builds the examples before it runs any test; when only this test was built
//! (`cargo test --test io_examples`), the examples may be missing and are skipped, saying so.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

const LIMIT: Duration = Duration::from_secs(60);

fn example(name: &str) -> Option<PathBuf> {
    // target/<profile>/deps/io_examples-<hash> → target/<profile>/examples/<name>
    let path = std::env::current_exe().ok()?.parent()?.parent()?.join("examples").join(name);
    path.exists().then_some(path)
}

/// Starts `command` in a process group of its own, with its output piped (what
/// `common::child::output_within` expects).
fn spawn_piped(command: &mut Command) -> std::process::Child {
    command.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn run_demo(name: &str) {
    let Some(path) = example(name) else {
        eprintln!("examples/{name} is not built: skipped (run `cargo test` or `cargo build --examples`)");
        return;
    };
    let child = spawn_piped(Command::new(&path).arg("--demo"));
    let output = common::child::output_within(child, LIMIT)
        .unwrap_or_else(|| panic!("examples/{name} --demo did not finish within {LIMIT:?}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "examples/{name} --demo: {:?}\n{stdout}\n{stderr}", output.status);
}

#[test]
fn echo_demo() {
    run_demo("echo");
}

#[test]
fn http_hello_demo() {
    run_demo("http_hello");
}

#[test]
fn chat_demo() {
    run_demo("chat");
}

/// The helper that bounds these runs bounds the pipes too: a child that exits while something
/// it started keeps its output open is given up on (and that group killed) at the limit.
#[test]
fn a_child_whose_pipes_outlive_it_is_given_up_on_at_the_limit() {
    let child = spawn_piped(Command::new("sh").args(["-c", "sleep 30 & echo started"]));
    let start = std::time::Instant::now();
    assert!(common::child::output_within(child, Duration::from_secs(1)).is_none());
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
}
