//! `Handle::metrics`: a snapshot of what the workers publish.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Handle;
use crate::park::ParkReason;

/// A snapshot of a runtime's counters, from [`Handle::metrics`].
///
/// Each counter is exact; counters read at slightly different instants, so sums across them
/// are approximate while the runtime runs.
///
/// ```
/// green::run(|| {
///     for _ in 0..10 {
///         green::spawn(|| green::sleep(std::time::Duration::from_millis(1))).join().unwrap();
///     }
///     let m = green::Handle::current().metrics();
///     assert!(m.total_started() >= 10);
///     assert!(m.parks("sleep") >= 10);
///     assert_eq!(m.parked("sleep"), 0); // all joined
///     println!("{m}");
/// });
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Metrics {
    /// Green threads spawned and not yet finished, started or not. Exact while the workers
    /// are idle; while they are busy it may still include a little over a thousand per worker
    /// that have just finished (a worker counts those out in batches, at its maintenance).
    pub live: usize,
    /// Per worker, in worker order.
    pub workers: Vec<WorkerMetrics>,
    /// OS threads of the blocking pool right now, busy or idle.
    pub blocking_threads: usize,
    /// Of those, the ones running a [`spawn_blocking`](crate::spawn_blocking) job right now.
    pub blocking_running: usize,
    /// Jobs waiting for a pool thread right now. Above 0 with `blocking_running` at
    /// `max_blocking_threads`, the pool is saturated: every `spawn_blocking` waits for a
    /// running job to end, which is how one slow job kind stalls all the others.
    pub blocking_queued: usize,
    /// The bound on the pool's threads
    /// ([`Builder::max_blocking_threads`](crate::runtime::Builder::max_blocking_threads)).
    pub max_blocking_threads: usize,
    /// Possible deadlocks the monitor has reported (see
    /// [`Builder::blocking_threshold`](crate::runtime::Builder::blocking_threshold)); 0 with the
    /// monitor off.
    pub possible_deadlocks: u64,
    /// Deadlocks the monitor has found among green threads while others ran on (cycles of
    /// joins and green locks that lasted from one of its looks to the next: see
    /// [`Builder::blocking_threshold`](crate::runtime::Builder::blocking_threshold)); 0 with
    /// the monitor off.
    pub deadlocks: u64,
}

/// The counters of one worker.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WorkerMetrics {
    /// Resumes of green threads.
    pub switches: u64,
    /// Green threads started here.
    pub started: u64,
    /// Yields forced by the budget (the green thread's slice was over and others waited).
    pub forced_yields: u64,
    /// Times the budget ran out here (each a look at the clock).
    pub budget_checks: u64,
    /// Unstarted green threads taken from peers or from the injector.
    pub steals: u64,
    /// Times the worker went to sleep in its poller.
    pub sleeps: u64,
    /// Time the worker spent with no green thread to run since it started: spinning while it
    /// looks for work (most such stretches end in work, the rest in a sleep), and asleep in
    /// its poller, with the upkeep it does around a sleep. Between two snapshots, the wall
    /// time less the growth of this is about what the worker spent running green threads
    /// (blocking ones included) and dispatching their I/O. A worker that spins shows as a
    /// busy thread to the OS; this tells how much of that was waiting.
    pub idle: Duration,
    /// Parks, by reason: `("join", n)`, `("sleep", n)`, `("park", n)`, `("sync", n)`,
    /// `("io", n)` (a socket, a pipe, standard input, a child's exit, any fd),
    /// `("blocking", n)`, `("signal", n)`, `("other", n)` (a dump's wait, say). A
    /// [`spawn_blocking`](crate::spawn_blocking) job, a [`green::fs`](crate::fs) call among
    /// them, shows under two reasons: `"blocking"` for the green thread that stands for the job
    /// while the pool runs it, and `"join"` for the caller waiting for that green thread.
    pub parks: Vec<(&'static str, u64)>,
    /// Green threads parked here right now, by the same reasons as `parks`: how many wait on
    /// sockets, on channels and locks, in sleeps. Each counts from its park to the moment it
    /// runs again, so one already woken and waiting in the run queue still counts.
    pub parked: Vec<(&'static str, usize)>,
    /// Stalls: times the monitor found one green thread holding this worker for longer than the
    /// blocking threshold (blocking code, or a loop without ticks) and reported it. Each stall
    /// counts once, however long it lasts; 0 with the monitor off. A server can export this to
    /// be told of blocking code that got into a green thread.
    pub stalls: u64,
    /// How long the stalls counted in `stalls` held the worker, the one in progress included
    /// (as of the monitor's last look at it). The monitor looks every quarter of the threshold,
    /// so each stall's time is right to about that, either way.
    pub stalled: Duration,
    /// Slow slices: times the monitor found one green thread holding this worker from one of its
    /// looks to the next (they are a quarter of the blocking threshold apart: 25 ms by default)
    /// that let go before the threshold, so no stall was reported. Blocking code too short to
    /// report (a 50 ms `std::thread::sleep`, a short blocking syscall) still holds up every green
    /// thread behind it, and many of them slow a server as much as one long stall: a count that
    /// grows while `stalls` does not points there. A worker kept off the CPU by a busy machine for
    /// that long counts too. 0 with the monitor off.
    pub slow_slices: u64,
    /// Green threads waiting for it (ready, or queued unstarted), as of its last look at its queues.
    pub ready: usize,
    /// Green threads woken by other threads and not yet picked up.
    pub inbox: usize,
    /// Entries in its timer heap, as of its last look at its queues: one or two per green
    /// thread that waits with deadlines (a sleep, a read with a timeout), plus entries that
    /// speak for nobody any more (superseded, or left by a green thread that finished), kept
    /// until their deadline or until they are most of the heap.
    pub timers: usize,
}

impl Metrics {
    /// Green threads started on any worker.
    pub fn total_started(&self) -> u64 {
        self.workers.iter().map(|w| w.started).sum()
    }

    /// Parks for `reason` on any worker (see [`WorkerMetrics::parks`] for the names; another
    /// name counts 0).
    pub fn parks(&self, reason: &str) -> u64 {
        self.workers.iter().flat_map(|w| w.parks.iter()).filter(|(r, _)| *r == reason).map(|(_, n)| n).sum()
    }

    /// Green threads parked for `reason` right now on any worker (see
    /// [`WorkerMetrics::parked`]): `m.parked("io")` is how many wait on sockets and other fds.
    /// A name that is not one of [`WorkerMetrics::parks`]' reasons counts 0.
    pub fn parked(&self, reason: &str) -> usize {
        self.workers.iter().flat_map(|w| w.parked.iter()).filter(|(r, _)| *r == reason).map(|(_, n)| n).sum()
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "green runtime: {} live green threads", self.live)?;
        if self.possible_deadlocks > 0 {
            write!(f, ", {} possible deadlock(s) reported", self.possible_deadlocks)?;
        }
        if self.deadlocks > 0 {
            write!(f, ", {} deadlock(s) reported", self.deadlocks)?;
        }
        let pool = crate::blocking::PoolLoad {
            threads: self.blocking_threads,
            running: self.blocking_running,
            queued: self.blocking_queued,
            max_threads: self.max_blocking_threads,
        };
        writeln!(f, "\n  blocking pool: {pool}")?;
        for (i, w) in self.workers.iter().enumerate() {
            write!(
                f,
                "  worker {i}: {} switches, {} started, {} steals, {} forced yields, {} budget checks, {} sleeps, \
                 {:.3} s idle, {} ready, {} in inbox, {} timers",
                w.switches,
                w.started,
                w.steals,
                w.forced_yields,
                w.budget_checks,
                w.sleeps,
                w.idle.as_secs_f64(),
                w.ready,
                w.inbox,
                w.timers
            )?;
            if w.stalls > 0 || w.slow_slices > 0 {
                write!(
                    f,
                    "\n    stalls: {}, {:.3} s in all; slow slices (held a look, not the threshold): {}",
                    w.stalls,
                    w.stalled.as_secs_f64(),
                    w.slow_slices
                )?;
            }
            write!(f, "\n    parks:")?;
            // The reasons with parks only: a line a terminal can show.
            let mut parked = w.parks.iter().filter(|(_, n)| *n > 0).peekable();
            if parked.peek().is_none() {
                write!(f, " none")?;
            }
            for (reason, n) in parked {
                write!(f, " {reason} {n}")?;
            }
            let mut now = w.parked.iter().filter(|(_, n)| *n > 0).peekable();
            if now.peek().is_some() {
                write!(f, "; parked now:")?;
            }
            for (reason, n) in now {
                write!(f, " {reason} {n}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl Handle {
    /// A snapshot of the runtime's counters: live green threads, and per worker its switches,
    /// starts, steals, forced yields, parks by reason and queue depths.
    pub fn metrics(&self) -> Metrics {
        let shared = &self.shared;
        let now = std::time::Instant::now();
        let workers = shared
            .remotes
            .iter()
            .map(|remote| {
                let s = &remote.stats;
                WorkerMetrics {
                    switches: s.switches.load(Ordering::Relaxed),
                    started: s.started.load(Ordering::Relaxed),
                    forced_yields: s.forced_yields.load(Ordering::Relaxed),
                    budget_checks: s.budget_checks(),
                    steals: s.steals.load(Ordering::Relaxed),
                    sleeps: s.sleeps.load(Ordering::Relaxed),
                    idle: idle_so_far(s, shared.epoch, now),
                    parks: ParkReason::ALL
                        .iter()
                        .map(|r| (r.name(), s.parks[*r as usize].load(Ordering::Relaxed)))
                        .collect(),
                    parked: ParkReason::ALL
                        .iter()
                        .map(|r| (r.name(), s.parked_now[*r as usize].load(Ordering::Relaxed)))
                        .collect(),
                    ready: s.ready.load(Ordering::Relaxed),
                    inbox: remote.inbox.len(),
                    timers: s.timers.load(Ordering::Relaxed),
                    stalls: s.stalls.load(Ordering::Relaxed),
                    slow_slices: s.slow_slices.load(Ordering::Relaxed),
                    stalled: Duration::from_nanos(s.stalled_nanos.load(Ordering::Relaxed)),
                }
            })
            .collect();
        let pool = shared.blocking.load();
        Metrics {
            live: shared.live.load(Ordering::Relaxed),
            workers,
            blocking_threads: pool.threads,
            blocking_running: pool.running,
            blocking_queued: pool.queued,
            max_blocking_threads: pool.max_threads,
            possible_deadlocks: shared.monitor.possible_deadlocks.load(Ordering::Relaxed),
            deadlocks: shared.monitor.deadlocks.load(Ordering::Relaxed),
        }
    }
}

/// A worker's idle time up to `now`: what it counted, and the stretch in progress if it has
/// nothing to run right now. The total is read first (`Acquire`, against the worker's
/// `Release` in `count_idle`): if it already holds a stretch, that stretch is over and no
/// longer published as in progress.
fn idle_so_far(stats: &super::stats::WorkerStats, epoch: std::time::Instant, now: std::time::Instant) -> Duration {
    let counted = Duration::from_nanos(stats.idle_nanos.load(Ordering::Acquire));
    let in_progress = match stats.idle_since.load(Ordering::Relaxed) {
        0 => Duration::ZERO,
        since => now.saturating_duration_since(epoch + Duration::from_nanos(since - 1)),
    };
    counted + in_progress
}
