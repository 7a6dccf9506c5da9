//! `GREEN_BLOCKING_THRESHOLD_MS` sets the monitor's threshold without a change to the code;
//! `GREEN_POLL_MODE` the reactor's mode. Each test runs in a child process with the variable
//! set, and no logger: the first report, and a warning, go to stderr, which the parent reads.

use std::time::Duration;

mod common;

const LIMIT: Duration = Duration::from_secs(60);

/// A green thread that holds its worker in `std::thread::sleep` for `ms`.
fn hold_the_worker_for(ms: u64) {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        green::Builder::new()
            .name("held".into())
            .spawn(move || std::thread::sleep(Duration::from_millis(ms)))
            .unwrap()
            .join()
            .unwrap();
    });
}

fn stderr_of(name: &str, value: &str) -> String {
    stderr_with(name, "GREEN_BLOCKING_THRESHOLD_MS", value)
}

fn stderr_with(name: &str, variable: &str, value: &str) -> String {
    let out = common::child::run_child_with_env(name, LIMIT, &[(variable, value)]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {:?}\n{stderr}", out.status);
    stderr
}

/// A 60 ms block, under the default threshold of 100 ms, is reported at 5 ms (written with its
/// unit, which may be left out).
#[test]
fn the_variable_lowers_the_threshold() {
    const NAME: &str = "the_variable_lowers_the_threshold";
    if common::child::is_child() {
        return hold_the_worker_for(60);
    }
    let stderr = stderr_of(NAME, "5ms");
    assert!(stderr.contains("\"held\"") && stderr.contains("nanosleep"), "no report of the block:\n{stderr}");
}

/// `off` turns the monitor off: a 300 ms block, three times the default threshold, goes
/// unreported.
#[test]
fn off_turns_the_monitor_off() {
    const NAME: &str = "off_turns_the_monitor_off";
    if common::child::is_child() {
        return hold_the_worker_for(300);
    }
    let stderr = stderr_of(NAME, "off");
    assert!(!stderr.contains("\"held\""), "reported with the monitor off:\n{stderr}");
}

/// A value that is neither a number nor `off` is warned about, naming it, and the default
/// threshold stays: a 300 ms block is still reported.
#[test]
fn an_unreadable_value_is_warned_about_and_the_default_kept() {
    const NAME: &str = "an_unreadable_value_is_warned_about_and_the_default_kept";
    if common::child::is_child() {
        return hold_the_worker_for(300);
    }
    let stderr = stderr_of(NAME, "2s");
    assert!(
        stderr.contains("GREEN_BLOCKING_THRESHOLD_MS=2s is neither a whole number of milliseconds nor `off`"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("GREEN_BLOCKING_THRESHOLD_MS=").count(), 1, "warned more than once:\n{stderr}");
    assert!(stderr.contains("\"held\""), "the default threshold was lost:\n{stderr}");
}

/// A threshold longer than an `Instant` can reach, from the variable or from the builder
/// (`Duration::MAX`, for "never report"), counts as a year: the monitor's thread used to panic
/// as it started, adding 40 thresholds to the clock ("overflow when adding duration to
/// instant"), and the runtime ran on without it.
#[test]
fn a_threshold_past_what_an_instant_holds_does_not_panic_the_monitor() {
    const NAME: &str = "a_threshold_past_what_an_instant_holds_does_not_panic_the_monitor";
    if common::child::is_child() {
        hold_the_worker_for(20);
        let rt = green::Runtime::builder().workers(1).blocking_threshold(Duration::MAX).build().unwrap();
        rt.block_on(|| std::thread::sleep(Duration::from_millis(20)));
        return;
    }
    let stderr = stderr_of(NAME, &u64::MAX.to_string());
    assert!(!stderr.contains("panicked"), "a thread panicked:\n{stderr}");
}

/// A poll mode that is neither `oneshot` nor `edge` is warned about once, naming it, and the
/// runtime runs on in its default mode.
#[test]
fn an_unknown_poll_mode_is_warned_about() {
    const NAME: &str = "an_unknown_poll_mode_is_warned_about";
    if common::child::is_child() {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        rt.block_on(|| green::sleep(Duration::from_millis(1)));
        return;
    }
    let stderr = stderr_with(NAME, "GREEN_POLL_MODE", "level");
    assert_eq!(
        stderr.matches("GREEN_POLL_MODE=level is neither `oneshot` nor `edge`").count(),
        1,
        "warned not exactly once:\n{stderr}"
    );
}

/// The poll mode's words are read in any case, as the other variables' are: `EDGE` used to be
/// warned about as neither `oneshot` nor `edge`.
#[test]
fn a_poll_mode_in_capitals_is_read() {
    const NAME: &str = "a_poll_mode_in_capitals_is_read";
    if common::child::is_child() {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        rt.block_on(|| green::sleep(Duration::from_millis(1)));
        return;
    }
    for value in ["EDGE", "OneShot"] {
        let stderr = stderr_with(NAME, "GREEN_POLL_MODE", value);
        assert!(!stderr.contains("GREEN_POLL_MODE="), "{value}: warned about:\n{stderr}");
    }
}

/// A variable whose name is a near miss of one green reads is named in a warning, once, with
/// the name meant: set without its `_MS`, the threshold was ignored without a word.
#[test]
fn a_misspelled_variable_is_warned_about() {
    const NAME: &str = "a_misspelled_variable_is_warned_about";
    if common::child::is_child() {
        for _ in 0..2 {
            let rt = green::Runtime::builder().workers(1).build().unwrap();
            rt.block_on(|| green::sleep(Duration::from_millis(1)));
        }
        return;
    }
    let stderr = stderr_with(NAME, "GREEN_BLOCKING_THRESHOLD", "5");
    let warning = "the environment variable GREEN_BLOCKING_THRESHOLD is set, and green reads no such variable; \
                   did you mean GREEN_BLOCKING_THRESHOLD_MS?";
    assert_eq!(stderr.matches(warning).count(), 1, "warned not exactly once:\n{stderr}");
}

/// `GREEN_WORKERS` sets the workers of runtimes whose builder sets none, and a builder's
/// `workers` still wins; a value that is not a number above 0 is warned about, the default
/// kept.
#[test]
fn green_workers_sets_the_default_number_of_workers() {
    const NAME: &str = "green_workers_sets_the_default_number_of_workers";
    if common::child::is_child() {
        let rt = green::Runtime::builder().build().unwrap();
        println!("default: {}", rt.handle().workers());
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        println!("set: {}", rt.handle().workers());
        return;
    }
    let out = common::child::run_child_with_env(NAME, LIMIT, &[("GREEN_WORKERS", "3")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {:?}", out.status);
    assert!(stdout.contains("default: 3") && stdout.contains("set: 2"), "{stdout}");
    let stderr = stderr_with(NAME, "GREEN_WORKERS", "0");
    assert!(stderr.contains("GREEN_WORKERS=0 is not a whole number of workers above 0"), "{stderr}");
}

/// A `GREEN_WORKERS` far beyond any machine's (a few zeros too many) is warned about and the
/// default kept, rather than tried: 10^12 workers aborted the process, which could not allocate
/// their queues.
#[test]
fn green_workers_beyond_its_cap_keeps_the_default() {
    const NAME: &str = "green_workers_beyond_its_cap_keeps_the_default";
    if common::child::is_child() {
        let rt = green::Runtime::builder().build().unwrap();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(rt.handle().workers(), cpus);
        return;
    }
    let stderr = stderr_with(NAME, "GREEN_WORKERS", "1000000000000");
    assert!(stderr.contains("GREEN_WORKERS=1000000000000 asks for more workers than the"), "{stderr}");
}

/// A runtime whose `GREEN_WORKERS` asks for more workers than the fd limit allows fails with an
/// error that names the variable, since the code that built it may set no number at all.
#[test]
fn a_build_that_needs_fewer_workers_names_green_workers() {
    const NAME: &str = "a_build_that_needs_fewer_workers_names_green_workers";
    if common::child::is_child() {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: plain calls on a struct of our own.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        // Room for the test's own fds, not for the 100 workers' pollers.
        limit.rlim_cur = 64;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        let err = green::Runtime::builder().build().unwrap_err();
        assert!(err.to_string().contains("use fewer workers (GREEN_WORKERS=100 set the number)"), "{err}");
        let err = green::Runtime::builder().workers(100).build().unwrap_err();
        assert!(!err.to_string().contains("GREEN_WORKERS"), "{err}");
        return;
    }
    stderr_with(NAME, "GREEN_WORKERS", "100");
}

/// Another runtime's name for the worker count, with green's prefix, is pointed to
/// `GREEN_WORKERS`: it is too far from it by spelling to be a near miss.
#[test]
fn another_runtime_s_name_for_the_workers_is_pointed_to_green_workers() {
    const NAME: &str = "another_runtime_s_name_for_the_workers_is_pointed_to_green_workers";
    if common::child::is_child() {
        drop(green::Runtime::builder().workers(1).build().unwrap());
        return;
    }
    let stderr = stderr_with(NAME, "GREEN_WORKER_THREADS", "2");
    assert!(
        stderr.contains("GREEN_WORKER_THREADS is set") && stderr.contains("did you mean GREEN_WORKERS?"),
        "{stderr}"
    );
}
