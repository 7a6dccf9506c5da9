//! The operating system: CPU placement, resource limits, and what `/proc` says about a process.

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

/// Which CPU the client and the server run on. Both `None` on a machine with one CPU.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub client: Option<usize>,
    pub server: Option<usize>,
    /// CPUs this process may run on.
    pub available: usize,
}

impl Placement {
    /// The first two CPUs of this process's affinity mask: the client on the first, the server
    /// on the second.
    pub fn choose() -> Placement {
        let cpus = allowed_cpus();
        match cpus[..] {
            [client, server, ..] => Placement { client: Some(client), server: Some(server), available: cpus.len() },
            _ => Placement { client: None, server: None, available: cpus.len() },
        }
    }

    pub fn describe(&self) -> String {
        match (self.client, self.server) {
            (Some(c), Some(s)) => format!(
                "pinning (sched_setaffinity): client on CPU {c}, server on CPU {s} ({} CPUs available); \
                 each server gets one core",
                self.available
            ),
            _ => "one CPU available: client and server share it (not pinned); \
                  figures are not comparable with pinned runs"
                .to_owned(),
        }
    }
}

/// The CPUs in this thread's affinity mask.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain old data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return vec![0];
    }
    // SAFETY: CPU_ISSET reads one bit of a valid set; every index is below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect()
}

/// Pins the calling thread, and every thread it creates afterwards, to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain old data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit of `set`; `cpu` came from the affinity mask, so it is below
    // CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is the calling thread.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks the kernel to kill this process when its parent dies, so that a server never
/// outlives the comparison that started it (even one killed by a signal).
pub fn die_with_parent() {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    // The parent may have died before the call: then we were re-parented already.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } == 1 {
        std::process::exit(1);
    }
}

/// How busy the machine is: other processes' runnable threads take turns with the client and
/// the server on their cores, and each wakeup may wait for one.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Load average over the last minute (`/proc/loadavg`).
    pub one_minute: f64,
    /// Share of the last 10 s in which some runnable thread waited for a CPU
    /// (`/proc/pressure/cpu`, "some avg10"), if the kernel reports it.
    pub pressure: Option<f64>,
}

impl Load {
    pub fn now() -> Load {
        let one_minute = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let pressure = std::fs::read_to_string("/proc/pressure/cpu").ok().and_then(|t| {
            let some = t.lines().find(|l| l.starts_with("some"))?;
            some.split_whitespace().find_map(|f| f.strip_prefix("avg10="))?.parse().ok()
        });
        Load { one_minute, pressure }
    }

    pub fn describe(&self, cpus: usize) -> String {
        // CPU pressure says it best when the kernel reports it; the load average lags a minute
        // (and counts the threads of a thread-per-connection server run just before).
        let (mut line, busy) = match self.pressure {
            Some(p) => (format!("machine load: CPU pressure {p:.0}% (some avg10, /proc/pressure/cpu)"), p > 10.0),
            None => (
                format!("machine load: load average {:.2} on {cpus} CPUs", self.one_minute),
                self.one_minute > cpus as f64 / 2.0,
            ),
        };
        if busy {
            line.push_str(
                "; other processes compete for the CPUs, so every wakeup may wait for one: \
                 absolute figures are noisy, compare the servers within this run",
            );
        }
        line
    }
}

/// Raises a soft resource limit to its hard limit; returns the limit now in force.
pub fn raise_to_hard(resource: libc::__rlimit_resource_t) -> io::Result<u64> {
    // SAFETY: rlimit is plain old data.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `limit` is valid for writes of an rlimit.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to the hard one is allowed.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// CPU time of this process so far (all its threads), user and system.
pub fn self_cpu() -> (Duration, Duration) {
    // SAFETY: rusage is plain old data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes of an rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (time(usage.ru_utime), time(usage.ru_stime))
}

/// What `/proc` says about another process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User CPU time, all threads (`utime`, field 14 of `/proc/<pid>/stat`).
    pub user: Duration,
    /// System CPU time, all threads (`stime`, field 15).
    pub system: Duration,
    /// Resident memory (`VmRSS` of `/proc/<pid>/status`), bytes.
    pub rss: u64,
    /// Threads (`Threads` of `/proc/<pid>/status`).
    pub threads: u64,
    /// Page tables (`VmPTE`), bytes: not part of `VmRSS`.
    pub page_tables: u64,
}

impl ProcSample {
    pub fn read(pid: u32) -> io::Result<ProcSample> {
        let (user, system) = cpu_time(pid)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> io::Result<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| bad(&format!("{name} in /proc/{pid}/status")))
        };
        Ok(ProcSample {
            user,
            system,
            rss: field("VmRSS")? * 1024,
            threads: field("Threads")?,
            page_tables: field("VmPTE")? * 1024,
        })
    }
}

/// User and system CPU time of process (or thread) `pid`, all its threads, from
/// `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> io::Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: fields count from the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |i: usize| -> io::Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(|| bad(&format!("/proc/{pid}/stat")))
    };
    let tick = Duration::from_secs(1) / clock_ticks_per_sec();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Ok((tick * ticks(11)? as u32, tick * ticks(12)? as u32))
}

/// CPU time so far of the kernel threads that run deferred network work (`ksoftirqd/N`) on
/// the given CPUs (all if `None`). When a burst of packets takes too long for the interrupt
/// path, the rest of the loopback traffic is processed there: work for our own sockets, which
/// must not be counted as other processes' load.
pub fn softirq_threads_cpu(cpus: Option<[usize; 2]>) -> Duration {
    static PIDS: OnceLock<Vec<(usize, u32)>> = OnceLock::new();
    let pids = PIDS.get_or_init(|| {
        let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
        dir.flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                let cpu: usize = comm.trim().strip_prefix("ksoftirqd/")?.parse().ok()?;
                Some((cpu, pid))
            })
            .collect()
    });
    pids.iter()
        .filter(|(cpu, _)| cpus.is_none_or(|list| list.contains(cpu)))
        .filter_map(|&(_, pid)| cpu_time(pid).ok())
        .map(|(user, system)| user + system)
        .sum()
}

/// Time the given CPUs (all of them if `None`) spent busy so far, summed: user, nice, system,
/// interrupts and steal from `/proc/stat`. Beside the client's and the server's own CPU time
/// it shows how much the rest of the machine took from them.
pub fn cpus_busy(cpus: Option<[usize; 2]>) -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let tick = Duration::from_secs(1) / clock_ticks_per_sec();
    let wanted = |name: &str| match cpus {
        None => name == "cpu",
        Some(list) => list.iter().any(|c| name.strip_prefix("cpu") == Some(&c.to_string())),
    };
    let mut ticks = 0u64;
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        if !fields.next().is_some_and(wanted) {
            continue;
        }
        let values: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user already)
        let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = values[..] else {
            return Err(bad("/proc/stat"));
        };
        ticks += user + nice + system + irq + softirq + steal;
    }
    Ok(tick * ticks as u32)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("could not parse {what}"))
}

fn clock_ticks_per_sec() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u32 } else { 100 }
}

/// A number from a file of one number, such as a sysctl under `/proc/sys`.
pub fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}
