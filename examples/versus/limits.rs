//! The limits a connection count can hit before any server is tested, checked up front so that
//! a run never fails halfway: each cap says which limit, its value, and how to raise it.
//!
//! - open files (`ulimit -n`): the client and the server each hold one fd per connection. The
//!   soft limit is raised to the hard one here (`setrlimit`); the servers inherit it.
//! - ephemeral ports (`net.ipv4.ip_local_port_range`): one per client connection.
//! - for thread-per-connection, one thread per connection, which counts against
//!   `kernel.threads-max` and `kernel.pid_max` (all threads of the machine), `ulimit -u` (all
//!   threads of this user), a cgroup's `pids.max`, and `vm.max_map_count`: each std thread
//!   stack is 2 mappings (the stack and its guard page), and std gives every thread it spawns
//!   a signal stack with a guard page of its own, 2 more: 4 per thread, as counted in
//!   `/proc/<pid>/maps` of the thread-per-connection server.

use std::os::unix::fs::MetadataExt;

use super::args::ServerKind;
use super::sys;

/// File descriptors a process needs besides its connections: the listener, pollers and their
/// eventfds, pipes, std streams.
const FD_RESERVE: u64 = 64;
/// Ephemeral ports left for everything else on the machine.
const PORT_RESERVE: u64 = 500;
/// Threads left for everything else (the machine, this user, the cgroup).
const TASK_RESERVE: u64 = 256;
/// Kernel mappings per std thread: stack, its guard page, signal stack, its guard page.
const MAPS_PER_THREAD: u64 = 4;
/// Mappings of the server besides its thread stacks: the binary, libraries, heap, malloc
/// arenas (glibc makes up to 8 per core, 2 mappings each).
const MAP_RESERVE: u64 = 1000;

/// The connection counts that will run, and what was changed on the way.
pub struct Plan {
    pub conns: Vec<usize>,
    pub notes: Vec<String>,
}

/// One limit: at most `max` connections, for the reason given.
struct Cap {
    max: u64,
    why: String,
}

pub fn plan(wanted: &[usize], servers: &[ServerKind]) -> Plan {
    let mut notes = Vec::new();
    let largest = wanted.iter().copied().max().unwrap_or(0) as u64;
    let mut caps = Vec::new();

    match sys::raise_to_hard(libc::RLIMIT_NOFILE) {
        Ok(nofile) => {
            notes.push(format!("open files: soft limit raised to the hard limit, {nofile} (setrlimit)"));
            caps.push(Cap {
                max: nofile.saturating_sub(FD_RESERVE),
                why: format!(
                    "the open-file limit (ulimit -n) is {nofile}, and each process holds one fd per connection; \
                     raise the hard limit (as root: `ulimit -Hn {}` in the shell that runs this, or `nofile` in \
                     /etc/security/limits.conf)",
                    largest + FD_RESERVE
                ),
            });
        }
        Err(e) => notes.push(format!("could not raise the open-file limit: {e}")),
    }

    if let Some((low, high)) = port_range() {
        caps.push(Cap {
            max: (high + 1).saturating_sub(low).saturating_sub(PORT_RESERVE),
            why: format!(
                "each client connection needs an ephemeral port, and net.ipv4.ip_local_port_range is {low} {high}; \
                 `sudo sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"`"
            ),
        });
    }

    if servers.contains(&ServerKind::Threads) {
        caps.extend(thread_caps(largest, &mut notes));
    }

    let mut conns = Vec::new();
    for &n in wanted {
        // Every limit this count would hit, tightest first: raising only one may not be enough.
        let mut hit: Vec<&Cap> = caps.iter().filter(|c| c.max < n as u64).collect();
        hit.sort_by_key(|c| c.max);
        let n = match hit.first() {
            Some(tightest) => {
                let reasons: Vec<String> = hit.iter().map(|c| format!("at most {}: {}", c.max, c.why)).collect();
                notes.push(format!("{n} connections capped at {}:\n  - {}", tightest.max, reasons.join("\n  - ")));
                tightest.max as usize
            }
            None => n,
        };
        if n > 0 && !conns.contains(&n) {
            conns.push(n);
        }
    }
    Plan { conns, notes }
}

/// The limits on threads that a thread-per-connection server with `largest` connections meets.
fn thread_caps(largest: u64, notes: &mut Vec<String>) -> Vec<Cap> {
    let mut caps = Vec::new();
    let tasks_now = tasks_on_machine().unwrap_or(0);
    if let Some(max) = sys::read_number("/proc/sys/vm/max_map_count") {
        caps.push(Cap {
            max: max.saturating_sub(MAP_RESERVE) / MAPS_PER_THREAD,
            why: format!(
                "each std thread is {MAPS_PER_THREAD} mappings (its stack and guard page, 2, and the signal stack \
                 std gives it and its guard page, 2) and vm.max_map_count is {max}; \
                 `sudo sysctl -w vm.max_map_count={}`",
                MAPS_PER_THREAD * largest + MAP_RESERVE
            ),
        });
    }
    if let Some(max) = sys::read_number("/proc/sys/kernel/threads-max") {
        caps.push(Cap {
            max: max.saturating_sub(tasks_now + TASK_RESERVE),
            why: format!(
                "kernel.threads-max is {max} with {tasks_now} threads running on the machine; \
                 `sudo sysctl -w kernel.threads-max={}`",
                tasks_now + largest + 2 * TASK_RESERVE
            ),
        });
    }
    if let Some(max) = sys::read_number("/proc/sys/kernel/pid_max") {
        caps.push(Cap {
            max: max.saturating_sub(tasks_now + TASK_RESERVE),
            why: format!(
                "every thread takes a pid, kernel.pid_max is {max} with {tasks_now} threads running on the \
                 machine; `sudo sysctl -w kernel.pid_max=4194304`"
            ),
        });
    }
    match sys::raise_to_hard(libc::RLIMIT_NPROC) {
        Ok(nproc) if nproc < u64::from(u32::MAX) => {
            let mine = tasks_of_this_user();
            caps.push(Cap {
                max: nproc.saturating_sub(mine + TASK_RESERVE),
                why: format!(
                    "the per-user thread limit (ulimit -u) is {nproc} with {mine} threads of this user running; \
                     raise it (`ulimit -u {}`, hard limit: `nproc` in /etc/security/limits.conf)",
                    mine + largest + 2 * TASK_RESERVE
                ),
            });
        }
        Ok(_) => {}
        Err(e) => notes.push(format!("could not raise the thread limit (ulimit -u): {e}")),
    }
    if let Some((path, max, current)) = cgroup_pids() {
        caps.push(Cap {
            max: max.saturating_sub(current + TASK_RESERVE),
            why: format!(
                "this cgroup allows {max} tasks ({path}/pids.max) and holds {current}; \
                 `echo max | sudo tee {path}/pids.max`"
            ),
        });
    }
    if sys::read_number("/proc/sys/vm/overcommit_memory") == Some(2) {
        notes.push(
            "note: vm.overcommit_memory is 2 (strict): each std thread commits its 2 MiB stack, \
             so thread creation may fail before the limits above"
                .to_owned(),
        );
    }
    caps
}

fn port_range() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse().ok());
    Some((it.next()??, it.next()??))
}

/// Threads on the whole machine: the total after the '/' in `/proc/loadavg`.
fn tasks_on_machine() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

/// Threads of the processes owned by this user (what `ulimit -u` counts).
fn tasks_of_this_user() -> u64 {
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    dir.flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .filter_map(|e| {
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            status.lines().find_map(|l| l.strip_prefix("Threads:")?.trim().parse::<u64>().ok())
        })
        .sum()
}

/// The pids controller of this process's cgroup, if it sets a limit: its directory, the
/// limit and the tasks it holds now.
fn cgroup_pids() -> Option<(String, u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let dir = match controllers {
            "" => format!("/sys/fs/cgroup{path}"),
            c if c.split(',').any(|c| c == "pids") => format!("/sys/fs/cgroup/pids{path}"),
            _ => continue,
        };
        let dir = dir.trim_end_matches('/').to_owned();
        // "max" (no limit) does not parse as a number: nothing to cap.
        if let (Some(max), Some(current)) =
            (sys::read_number(&format!("{dir}/pids.max")), sys::read_number(&format!("{dir}/pids.current")))
        {
            return Some((dir, max, current));
        }
    }
    None
}
