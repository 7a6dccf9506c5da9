//! What a worker blocked in a system call waits for, read from `/proc` when the monitor
//! reports it: the call, the fd it waits on and what that fd is, and the green way around it.
//! "blocked in a system call" alone leaves the user to attach a debugger; the call's name and
//! its file usually point at the line (a `std::thread::sleep`, a `std::sync::Mutex`, a
//! blocking `std::net` read, an `fsync`).

/// What thread `tid` of this process is blocked in, such as `recvfrom on fd 7 (socket:[8123])`,
/// and for the calls that usually come from a std API, which and what to use instead (`a
/// blocking socket (std::net?); green::net's sockets park instead`). `None` where `/proc` does
/// not say: the thread has left the call meanwhile, or `/proc` is not readable here.
pub(super) fn describe(tid: i32) -> Option<(String, Option<&'static str>)> {
    let line = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    // "<number> <arg1> ... <arg6> <sp> <pc>"; "-1 <sp> <pc>" outside a call; "running".
    let mut fields = line.split_whitespace();
    let number: i64 = fields.next()?.parse().ok()?;
    if number < 0 {
        return None;
    }
    let Some((name, on_fd)) = call(number) else {
        return Some((format!("system call {number}"), None));
    };
    let fd = fields
        .next()
        .filter(|_| on_fd)
        .and_then(|arg| u64::from_str_radix(arg.trim_start_matches("0x"), 16).ok())
        // The register holds a C int.
        .map(|arg| arg as u32 as i32);
    let file = fd.and_then(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok());
    let file = file.as_ref().map(|f| f.to_string_lossy());
    let what = match (fd, &file) {
        (Some(fd), Some(file)) => format!("{name} on fd {fd} ({file})"),
        (Some(fd), None) => format!("{name} on fd {fd}"),
        _ => name.to_owned(),
    };
    Some((what, hint(name, fd, file.as_deref())))
}

/// The name of system call `number`, and whether its first argument is the fd it waits on.
fn call(number: i64) -> Option<(&'static str, bool)> {
    #[rustfmt::skip]
    let calls: &[(i64, &str, bool)] = &[
        (libc::SYS_read, "read", true), (libc::SYS_write, "write", true),
        (libc::SYS_readv, "readv", true), (libc::SYS_writev, "writev", true),
        (libc::SYS_pread64, "pread64", true), (libc::SYS_pwrite64, "pwrite64", true),
        (libc::SYS_recvfrom, "recvfrom", true), (libc::SYS_sendto, "sendto", true),
        (libc::SYS_recvmsg, "recvmsg", true), (libc::SYS_sendmsg, "sendmsg", true),
        (libc::SYS_accept, "accept", true), (libc::SYS_accept4, "accept4", true),
        (libc::SYS_connect, "connect", true), (libc::SYS_sendfile, "sendfile", true),
        (libc::SYS_fsync, "fsync", true), (libc::SYS_fdatasync, "fdatasync", true),
        (libc::SYS_flock, "flock", true), (libc::SYS_fcntl, "fcntl", true),
        (libc::SYS_ioctl, "ioctl", true), (libc::SYS_epoll_pwait, "epoll_pwait", true),
        (libc::SYS_openat, "openat", false), (libc::SYS_futex, "futex", false),
        (libc::SYS_nanosleep, "nanosleep", false), (libc::SYS_clock_nanosleep, "clock_nanosleep", false),
        (libc::SYS_ppoll, "ppoll", false), (libc::SYS_pselect6, "pselect6", false),
        (libc::SYS_wait4, "wait4", false), (libc::SYS_waitid, "waitid", false),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_poll, "poll", false),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_select, "select", false),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_epoll_wait, "epoll_wait", true),
    ];
    calls.iter().find(|(n, ..)| *n == number).map(|&(_, name, on_fd)| (name, on_fd))
}

/// What the call usually comes from, and what to use instead.
fn hint(name: &str, fd: Option<i32>, file: Option<&str>) -> Option<&'static str> {
    // Standard input first: a pipe, a terminal or a file, which the hints below would take
    // for something else.
    if matches!((name, fd), ("read" | "readv", Some(0))) {
        return Some("reading standard input (std::io::stdin?); green::io::stdin parks instead");
    }
    // Standard output and error likewise: the process's own, which green does not wrap, not a
    // child's pipe or a file that green::fs would write.
    if matches!((name, fd), ("write" | "writev", Some(1 | 2))) {
        return Some(
            "writing standard output or error (println!, eprintln!, a logger?) faster than its reader takes it; \
             green has none that parks: send the lines over a green::sync::mpsc channel to one OS thread that \
             writes them",
        );
    }
    Some(match (name, file) {
        ("futex", _) => {
            "an OS lock, condition variable or channel (std::sync, std::sync::mpsc?); green::sync's primitives park instead"
        }
        ("nanosleep" | "clock_nanosleep", _) => "a sleep (std::thread::sleep?); green::sleep parks instead",
        ("wait4" | "waitid", _) => {
            "waiting for a child process (Child::wait or Command::output?); green::process's park instead"
        }
        ("poll" | "ppoll" | "select" | "pselect6" | "epoll_wait" | "epoll_pwait", _) => {
            "waiting on fds outside green (another event loop?); green::io::wait_readable parks on any fd"
        }
        (_, Some(file)) if file.starts_with("socket:") => {
            "a blocking socket (std::net?); green::net's sockets park instead"
        }
        (_, Some(file)) if file.starts_with("pipe:") => {
            "a blocking pipe (a child process's?); green::process's pipes park, and green::io::wait_readable and \
             wait_writable wait for any fd"
        }
        (_, Some(file)) if file.starts_with('/') => {
            "file I/O, which always blocks; green::fs runs std::fs's functions on the blocking pool, \
             green::spawn_blocking anything else"
        }
        ("openat", _) => {
            "opening a file (a slow disk, a FIFO); green::fs and green::spawn_blocking run it on the blocking \
             pool"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_calls_that_block_most_often() {
        assert_eq!(call(libc::SYS_futex), Some(("futex", false)));
        assert_eq!(call(libc::SYS_read), Some(("read", true)));
        assert_eq!(call(-5), None);
        assert!(hint("recvfrom", Some(7), Some("socket:[12]")).is_some_and(|h| h.contains("green::net")));
        assert!(hint("fsync", Some(7), Some("/var/db")).is_some_and(|h| h.contains("green::fs")));
        assert_eq!(hint("read", Some(7), Some("anon_inode:[eventfd]")), None);
        // Standard input, whatever it is, before what its file would suggest.
        for file in ["/dev/pts/3", "pipe:[812]", "/home/me/input.txt"] {
            assert!(hint("read", Some(0), Some(file)).is_some_and(|h| h.contains("green::io::stdin")), "{file}");
        }
        assert!(hint("read", Some(9), Some("/dev/pts/3")).is_some_and(|h| !h.contains("stdin")));
        // Standard output and error are the process's own, whatever they are: a write to a full
        // pipe there was put down to a child's pipe, and one to a terminal to file I/O.
        for (call, fd) in [("write", 1), ("writev", 2)] {
            for file in ["/dev/pts/3", "pipe:[812]", "socket:[77]"] {
                assert!(hint(call, Some(fd), Some(file)).is_some_and(|h| h.contains("standard output")), "{file}");
            }
        }
        assert!(hint("write", Some(9), Some("pipe:[812]")).is_some_and(|h| h.contains("green::process")));
        assert!(hint("read", Some(1), Some("/dev/pts/3")).is_some_and(|h| !h.contains("standard output")));
    }

    /// A thread sleeping in `std::thread::sleep` is seen in its sleep.
    #[test]
    fn describes_a_sleeping_thread() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let sleeper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tx.send(unsafe { libc::gettid() }).unwrap();
                // Sleeps until the look is over, however late the OS lets it start sleeping.
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            })
        };
        let tid = rx.recv().unwrap();
        let start = std::time::Instant::now();
        let mut seen = None;
        while seen.is_none() && start.elapsed() < std::time::Duration::from_secs(10) {
            seen = describe(tid).filter(|(call, _)| call.contains("sleep"));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        stop.store(true, Ordering::SeqCst);
        sleeper.join().unwrap();
        let (_, hint) = seen.expect("the sleep was never seen in /proc");
        assert!(hint.is_some_and(|h| h.contains("green::sleep")), "{hint:?}");
    }
}
