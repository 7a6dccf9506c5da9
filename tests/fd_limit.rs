//! Setting up what the runtime needs fds for at the fd limit: a second runtime's pollers and the
//! signal dispatcher's self-pipe fail with an error that says what could not be made, names the
//! limit with its value and what to do; no fd leaks, and the same call works once fds are free.
//! A host name lookup that fails at the limit says so too, and so does a child process's spawn.
//! (Sockets at the limit give std's own `EMFILE`: tests/tcp_emfile.rs.)
//!
//! The limit is process-wide, so each test runs in a child process (this binary, re-run on just
//! that test with `GREEN_TEST_CHILD` set), which lowers its own `RLIMIT_NOFILE`.

use std::os::fd::OwnedFd;
use std::time::Duration;

mod common;
use common::child::{expect_child_ok, is_child};

/// How long a child may take before it counts as hung (and is killed).
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Most fds any call here takes: a worker's poller, its notifier and its timer, twice over.
const MOST_NEEDED: usize = 8;

/// Parent: the child printed `child: ok` and exited successfully.
fn assert_child_ok(test: &str) {
    expect_child_ok(test, CHILD_TIMEOUT).expect("the child ran");
}

/// The fds open in this process, counted without opening one (works at the limit).
fn open_fds() -> usize {
    // SAFETY: F_GETFD on any number has no memory-safety preconditions.
    (0..4096).filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0).count()
}

/// The soft fd limit `soft`.
fn set_fd_limit(soft: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is valid for writes of a `rlimit`.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = soft;
    // SAFETY: `limit` is a valid `rlimit`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

/// Lowers the limit to just above the highest open fd and fills every free number below it but
/// `free`; returns the fillers (dropping them frees them) and the limit.
fn fds_left(free: usize) -> (Vec<OwnedFd>, u64) {
    set_fd_limit(4096);
    let highest = (0..4096).rev().find(|&fd| {
        // SAFETY: as in `open_fds`.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    });
    let limit = highest.unwrap() as u64 + 1 + MOST_NEEDED as u64;
    set_fd_limit(limit);
    let mut fillers: Vec<OwnedFd> = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        fillers.push(f.into());
    }
    fillers.truncate(fillers.len().saturating_sub(free));
    (fillers, limit)
}

/// Calls `f` with 0, 1, 2... fds free until it succeeds. Each failure must contain every one of
/// `needles` and the limit's value, and leave the fds as they were. Returns how many fds were
/// free when it succeeded.
fn until_it_works<T>(needles: &[&str], mut f: impl FnMut() -> std::io::Result<T>) -> usize {
    for free in 0..=MOST_NEEDED {
        let (fillers, limit) = fds_left(free);
        let before = open_fds();
        let result = f();
        match result {
            Ok(value) => {
                drop(value);
                return free;
            }
            Err(e) => {
                let message = e.to_string();
                assert_eq!(open_fds(), before, "an fd leaked after: {message}");
                let limit = format!("ulimit -n = {limit}");
                for needle in needles.iter().copied().chain([limit.as_str()]) {
                    assert!(message.contains(needle), "{needle:?} not in {message:?}");
                }
                println!("child: {free} fds free: {message}");
            }
        }
        drop(fillers);
    }
    panic!("still failing with {MOST_NEEDED} fds free");
}

#[test]
fn a_runtime_at_the_fd_limit_names_the_poller_and_the_limit() {
    const TEST: &str = "a_runtime_at_the_fd_limit_names_the_poller_and_the_limit";
    if !is_child() {
        assert_child_ok(TEST);
        return;
    }
    let first = green::Runtime::builder().workers(1).build().unwrap();
    let needles = ["could not create the poller of worker", "of 2", "close files"];
    let free = until_it_works(&needles, || green::Runtime::builder().workers(2).build());
    assert!(free >= 4, "two workers' pollers and notifiers took only {free} fds");
    assert_eq!(first.block_on(|| 5), 5);
    println!("child: ok");
}

#[test]
fn signals_at_the_fd_limit_name_the_self_pipe_and_the_limit() {
    const TEST: &str = "signals_at_the_fd_limit_name_the_self_pipe_and_the_limit";
    if !is_child() {
        assert_child_ok(TEST);
        return;
    }
    use green::signal::{Signal, Signals};
    let needles = ["signal dispatcher's self-pipe", "2 fds", "close files or raise the limit"];
    let free = until_it_works(&needles, || Signals::new(&[Signal::User1]));
    assert_eq!(free, 2, "the self-pipe");
    // Made once: later listeners need no fd.
    let (fillers, _) = fds_left(0);
    let listener = Signals::new(&[Signal::User2]).expect("a listener once the pipe exists");
    // SAFETY: raise has no memory-safety preconditions; SIGUSR2 is listened for.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
    assert_eq!(listener.recv_timeout(Duration::from_secs(10)).unwrap(), Some(Signal::User2));
    drop(fillers);
    println!("child: ok");
}

/// glibc reports a host name lookup with no fd free (it cannot read /etc/hosts or open a DNS
/// socket) as "Name or service not known", which sends the reader looking at the name: the
/// error says the process was out of fds, with the limit, and the lookup works once fds are free.
#[test]
fn a_host_name_lookup_at_the_fd_limit_names_the_limit() {
    const TEST: &str = "a_host_name_lookup_at_the_fd_limit_names_the_limit";
    if !is_child() {
        assert_child_ok(TEST);
        return;
    }
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (fillers, limit) = fds_left(0);
        let before = open_fds();
        let err = green::net::TcpStream::connect(("localhost", port)).unwrap_err();
        assert_eq!(open_fds(), before, "an fd leaked after: {err}");
        drop(fillers);
        let message = err.to_string();
        for needle in [
            "could not resolve \"localhost\"",
            "no fd free",
            &format!("ulimit -n = {limit}"),
            "close files or raise the limit",
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message:?}");
        }
        println!("child: {message}");
        // With fds free again the same lookup works, and names no limit when it fails.
        let stream = green::net::TcpStream::connect(("localhost", port)).unwrap();
        assert_eq!(stream.peer_addr().unwrap().port(), port);
        let err = green::net::TcpStream::connect(("nonexistent.invalid", port)).unwrap_err();
        assert!(!err.to_string().contains("ulimit"), "{err}");
    });
    println!("child: ok");
}

/// A child spawned with no fd free for its pipes fails with std's `EMFILE`, its message naming
/// the program, the limit and what to do; it used to say only "Too many open files". Nothing
/// leaks, and the same spawn works once fds are free.
#[test]
fn a_spawn_at_the_fd_limit_names_the_limit() {
    const TEST: &str = "a_spawn_at_the_fd_limit_names_the_limit";
    if !is_child() {
        assert_child_ok(TEST);
        return;
    }
    use green::process::{Command, Stdio};
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let (fillers, _) = fds_left(0);
        let e = Command::new("true").stdout(Stdio::piped()).spawn().unwrap_err();
        drop(fillers);
        // std's error, with its code, is the source.
        let os = std::error::Error::source(e.get_ref().expect("a message")).expect("a source");
        assert_eq!(os.downcast_ref::<std::io::Error>().and_then(|os| os.raw_os_error()), Some(libc::EMFILE), "{e}");
        let needles = ["cannot start \"true\"", "no fd was free for the child's pipes", "close files"];
        let free = until_it_works(&needles, || {
            let mut child = Command::new("true").stdout(Stdio::piped()).spawn()?;
            child.wait()
        });
        assert!(free >= 2, "a piped stdout took only {free} fds");
    });
    println!("child: ok");
}
