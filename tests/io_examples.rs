//! The networking examples run their `--demo` (a server on a free port, a few clients,
//! checked answers) and exit successfully.
//!
//! `cargo test` builds the examples before it runs any test; when only this test was built
//! (`cargo test --test io_examples`), the examples may be missing and are skipped, saying so.

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

fn run_demo(name: &str) {
    let Some(path) = example(name) else {
        eprintln!("examples/{name} is not built: skipped (run `cargo test` or `cargo build --examples`)");
        return;
    };
    let child = Command::new(&path)
        .arg("--demo")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
