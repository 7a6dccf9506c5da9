//! The monitor: a thread that notices a worker stuck in one green thread, and names it.
//!
//! A green thread that calls real blocking code (a blocking syscall, `std::thread::sleep`, a
//! long computation with no ticks) blocks its whole worker: the last problem of the ladder
//! from `select` to green threads. The monitor cannot fix that, but it can see it and say who
//! did it: each worker publishes progress counters (its resumes, and its budget checks: a
//! green thread whose budget runs out has reached a scheduling point too) and the green
//! thread it is running; a worker whose counter has not moved for [`Builder::blocking_threshold`]
//! while it runs a green thread is reported through the `log` facade, with the green thread's
//! id, name, spawn site, how long it has run and how many ready green threads wait behind it,
//! and, for a worker blocked in the kernel, the system call and its fd ([`syscall`]).
//! The report repeats with a doubling interval while it lasts, and its end is reported too.
//! When every worker (of two or more) is stuck at once, nothing else in the runtime runs: one
//! more warning sums up their reports then, once per such spell, and it goes to stderr too
//! the first time if no logger hears the monitor (which otherwise prints only the first
//! report of a stuck worker there, naming one culprit of several).
//! A green thread that holds its worker across one look but lets go before the threshold (a
//! 50 ms `std::thread::sleep` under a 100 ms threshold) is not reported, but counted as a slow
//! slice in the metrics: many of them hold up a server as surely as one long stall.
//!
//! It costs the workers two relaxed stores per resume, and one per spent budget. It checks every quarter of the
//! threshold while some worker is awake, and parks when they all sleep, looking again every 8
//! thresholds (more often during a quiet spell that may be a deadlock) or when a worker wakes.
//!
//! # Possible deadlocks
//!
//! When every worker sleeps with no timer armed, no green thread waits on I/O or on the
//! blocking pool, no blocking job runs, and yet green threads are alive, nothing inside the
//! runtime can wake any of them: they wait on each other (joins, green locks, channels). An OS
//! thread still could (it may hold a sender), so after [`DEADLOCK_QUIET`] of this the monitor
//! reports a *possible* deadlock with a dump of every green thread, once per episode (an
//! episode ends when a green thread runs again). Each report doubles the quiet the next one
//! needs, up to 64 × [`DEADLOCK_QUIET`]: a program whose green threads an OS thread feeds now
//! and then, with quiet spells between, hears of it a few times, not at every spell; and
//! without a logger that hears the monitor's warnings only the first report goes to stderr.
//!
//! A server is never that quiet (its accept loop waits on I/O, its idle connections too). For
//! green threads deadlocked inside one, the monitor looks at the wait-for graph of joins and
//! green locks (the edges a [dump](crate::Handle::dump) draws). It looks every 40 thresholds
//! (4 s by default, once a second at most often) while two or more green threads wait in a
//! join or on a green lock, and something (a timer, I/O) could still wake one; when nothing
//! could, the report above speaks for them, and its dump names the cycle. In a look, each
//! worker walks its green threads without a syscall, taking about 0.1 µs for each one so
//! waiting, and looks are spread out so that they cost a worker 1% at most.
//!
//! A cycle of waits without a deadline, each of them the same wait (by its number) in two
//! looks in a row, is a deadlock. It is reported once while it lasts, naming its green threads
//! (`green: deadlock: green thread 7 "left" waits for a lock held by green thread 8 "right",
//! which waits for a lock held by green thread 7 "left"`), and counted in
//! [`Metrics::deadlocks`](crate::runtime::Metrics::deadlocks). Some waits are not in the graph.
//! Channels are not (a receive waits for any sender, an OS thread's too): a dump names the
//! channel each green thread waits on. Nor are an `RwLock`'s readers (they are not recorded) or
//! a lock's OS-thread holder. A cycle through a lock whose holder may have passed its guard on
//! to another green thread ([`spawn_local`](crate::spawn_local)) is not called a deadlock: that
//! other green thread may drop it.
//!
//! # Dumps on a signal
//!
//! With `GREEN_DUMP_SIGNAL` set to a signal name (`USR1`, `USR2`, `HUP`, `WINCH`, with or
//! without `SIG`) when the runtime starts, a small thread waits for that signal and writes
//! [`Handle::dump`](crate::Handle::dump) to stderr each time it arrives: `kill -USR1 <pid>`
//! shows what every green thread of a running server is doing, without changing its code. The
//! signal handler itself only wakes that thread. `QUIT` (Ctrl-\\, as for the JVM's thread
//! dumps) works too; `INT` and `TERM` do, with a warning: while a runtime runs they print a
//! dump instead of ending the process. The dump lists [`REPORT_LISTED`] green threads at most
//! after its summary (a million would write some 170 MB to stderr); `GREEN_DUMP_LISTED` set to
//! a number or `all` changes that.
//!
//! [`REPORT_LISTED`]: crate::runtime::REPORT_LISTED
//!
//! [`Builder::blocking_threshold`]: crate::runtime::Builder::blocking_threshold

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::runtime::dump::{Edge, WaitLook, lasting_deadlocks};
use crate::runtime::shared::Shared;

mod syscall;

/// What the monitor remembers about one worker between two looks.
#[derive(Debug, Clone, Copy, Default)]
struct Watch {
    /// The progress counter at the last look.
    switches: u64,
    /// Since when it has not moved while a green thread ran.
    stuck_since: Option<Instant>,
    /// The worker thread's CPU time (clock ticks) when it got stuck, if the kernel said.
    cpu_at_stuck: Option<u64>,
    /// The worker's `unyielding_checks` when it got stuck: if they moved since, the green
    /// thread ticks where ticks cannot yield (a `no_yield` section, an unwind).
    unyielding_at_stuck: u64,
    /// When to report next (doubling), once reported.
    next_report: Option<Instant>,
    /// The green thread reported, to report its recovery.
    reported: Option<u64>,
    /// Once reported: the worker's `stalled_nanos` before this stall (what it holds beyond
    /// that is this stall's time as published so far).
    stalled_before: u64,
}

/// How long the runtime must stay quiet with live green threads before a possible deadlock is
/// reported: long enough that a green thread waiting a moment for an OS thread is not
/// reported, short enough to be useful while debugging.
pub(crate) const DEADLOCK_QUIET: Duration = Duration::from_secs(1);

/// The monitor thread of one runtime, and its dump-on-signal thread if asked for.
#[derive(Debug)]
pub(crate) struct Monitor {
    thread: Option<JoinHandle<()>>,
    dumper: Option<JoinHandle<()>>,
}

/// Shared between the monitor and the workers.
#[derive(Debug, Default)]
pub(crate) struct MonitorState {
    /// True while the monitor is parked because every worker sleeps.
    pub(crate) parked: AtomicBool,
    /// The monitor's thread, to unpark it.
    pub(crate) thread: std::sync::OnceLock<thread::Thread>,
    /// Set when the runtime stops.
    pub(crate) stop: AtomicBool,
    /// Possible deadlocks reported so far.
    pub(crate) possible_deadlocks: AtomicU64,
    /// Deadlocks found by looks at the wait-for graph ([`WaitWatch`]) and reported so far.
    pub(crate) deadlocks: AtomicU64,
}

impl MonitorState {
    /// Called by a worker that leaves its sleep, after it counted itself out of
    /// `shared.sleepers`: wakes the monitor if it parked. The monitor stores `parked` and then
    /// reads `sleepers`; the worker writes `sleepers` and then reads `parked`. With every one of
    /// the four `SeqCst`, one of the two sees the other's write, so the monitor never sleeps
    /// through a waking worker for its whole nap. (A `Relaxed` read here would do on x86,
    /// where both compile to the same load, but not on weakly ordered CPUs.)
    pub(crate) fn worker_awake(&self) {
        if self.parked.load(Ordering::SeqCst)
            && self.parked.swap(false, Ordering::AcqRel)
            && let Some(t) = self.thread.get()
        {
            t.unpark();
        }
    }
}

/// Longest a runtime's drop waits for the monitor's threads: the dump thread looks every
/// 200 ms, the monitor at once when unparked, unless a logger holds it.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// The hint on a line of its own the first time (`hinted` records it), nothing after.
fn hint_once(hinted: &mut bool) -> String {
    if std::mem::replace(hinted, true) {
        String::new()
    } else if log::max_level() == log::LevelFilter::Off {
        format!("\n{NO_LOGGER_HINT}")
    } else {
        format!("\n{FILTERED_HINT}")
    }
}

/// True when the program's logger lets the monitor's warnings through. A logger installed
/// with its defaults may not: env_logger's lets only errors through unless `RUST_LOG` says
/// otherwise, and the reports would be lost as surely as without a logger.
fn warnings_heard() -> bool {
    log::log_enabled!(log::Level::Warn)
}

/// Printed once to stderr when the monitor has something to say and no logger is installed.
const NO_LOGGER_HINT: &str = "green: (install a `log` logger, such as env_logger, to see every report; \
    without one, only the first report of a stuck worker, of every worker stuck, of a deadlock and of a possible \
    deadlock are printed)";

/// Printed once to stderr when the monitor has something to say and the logger drops warnings.
const FILTERED_HINT: &str = "green: (the program's `log` logger drops green's warnings; let them through \
    to see every report, with env_logger by RUST_LOG=green=warn; until then, only the first report of a stuck \
    worker, of every worker stuck, of a deadlock and of a possible deadlock are printed)";

impl Monitor {
    /// Starts the monitor of `shared`, if its threshold is set.
    pub(crate) fn start(shared: &Arc<Shared>) -> std::io::Result<Monitor> {
        let dumper = start_dumper(shared)?;
        let Some(threshold) = shared.config.blocking_threshold else {
            return Ok(Monitor { thread: None, dumper });
        };
        let shared2 = shared.clone();
        let thread = thread::Builder::new()
            .name(format!("{}-monitor", shared.config.thread_name))
            .spawn(move || run(&shared2, threshold))
            .inspect_err(|_| {
                // The dump thread, started already, would otherwise look for good.
                shared.monitor.stop.store(true, Ordering::Release);
            })?;
        let _ = shared.monitor.thread.set(thread.thread().clone());
        Ok(Monitor { thread: Some(thread), dumper })
    }

    /// Tells the monitor's threads to stop, without waiting for them: for a runtime dropped
    /// where joining them could deadlock. They end within their next look (200 ms at most for
    /// the dump thread).
    pub(crate) fn release(self, shared: &Shared) {
        shared.monitor.stop.store(true, Ordering::Release);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }

    /// Stops the monitor and waits for its threads, for [`STOP_WAIT`] at most: the monitor calls
    /// the program's logger, which may block (or hold stderr's lock); past that, the threads are
    /// left to end on their own (each holds the shared state).
    pub(crate) fn stop(&mut self, shared: &Shared) {
        shared.monitor.stop.store(true, Ordering::Release);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
        let deadline = std::time::Instant::now() + STOP_WAIT;
        for handle in [self.thread.take(), self.dumper.take()].into_iter().flatten() {
            while !handle.is_finished() && std::time::Instant::now() < deadline {
                thread::sleep(Duration::from_millis(1));
            }
            if handle.is_finished() {
                if handle.join().is_err() {
                    log::error!("green: the monitor's thread panicked (a logger that panicked?)");
                }
            } else {
                log::warn!(
                    "green: the monitor's thread {:?} did not stop within {} ms (a logger that blocks?); left to end \
                     on its own",
                    handle.thread().name().unwrap_or("?"),
                    STOP_WAIT.as_millis()
                );
            }
        }
    }
}

fn run(shared: &Shared, threshold: Duration) {
    let interval = threshold / 4;
    let mut watches = vec![Watch::default(); shared.remotes.len()];
    // Without a logger: whether the hint was printed, and whether a stuck worker's report was.
    let mut hinted = false;
    // Whether stderr has had a stuck worker's report, and a possible deadlock's (each is
    // printed there once when no logger hears the monitor's warnings).
    let mut printed_stuck = false;
    let mut printed_deadlock = false;
    // Each worker's latest report of the stall it is in (kept while `reported` is set), for
    // the summary when every worker is stuck at once; whether the current spell of that has
    // been summed up, and whether stderr has had such a summary.
    let mut reports = vec![String::new(); shared.remotes.len()];
    let mut all_stuck_reported = false;
    let mut printed_all_stuck = false;
    // When the quiet began, and the workers' progress (`progress`) then.
    let mut quiet_since: Option<(Instant, u64)> = None;
    // Set by a report: the workers' progress then. The episode ends when they make progress,
    // not merely when one wakes (the report's own dump wakes them all). Looked at whether or
    // not the monitor sees a worker awake: a worker may wake, run and sleep again between two
    // of its looks.
    let mut deadlock_reported: Option<u64> = None;
    // The quiet a report needs: `DEADLOCK_QUIET`, doubled by each report (up to 64 × that). A
    // program whose green threads an OS thread feeds now and then has quiet spells that look
    // like a deadlock; they are reported once or twice, not at every spell.
    let mut quiet_needed = DEADLOCK_QUIET;
    let mut wait_watch = WaitWatch::new(threshold);
    while !shared.monitor.stop.load(Ordering::Acquire) {
        wait_watch.turn(shared, Instant::now(), &mut hinted);
        let moved = progress(shared);
        if deadlock_reported.is_some_and(|then| then != moved) {
            deadlock_reported = None;
        }
        // Everyone asleep: nothing can be stuck, but everything may be waiting on everything
        // else. Park until a worker wakes, looking again after a while for a deadlock.
        if shared.sleepers.load(Ordering::SeqCst) == shared.remotes.len() {
            let now = Instant::now();
            // A sleeping worker is stuck no more: a stall reported there ended by now, not at
            // the next look at the workers, which waits until one wakes (seconds later, maybe).
            for (index, (remote, watch)) in shared.remotes.iter().zip(watches.iter_mut()).enumerate() {
                if watch.reported.is_some() {
                    let stats = &remote.stats;
                    let switches = stats.progress();
                    end_stall(index, watch, stats, switches, now);
                }
            }
            if nothing_can_wake(shared) {
                // A quiet with progress inside it is a new one, from now.
                if quiet_since.is_none_or(|(_, then)| then != moved) {
                    quiet_since = Some((now, moved));
                }
                let since = quiet_since.map_or(now, |(since, _)| since);
                if deadlock_reported.is_none() && now.duration_since(since) >= quiet_needed {
                    deadlock_reported = Some(moved);
                    shared.monitor.possible_deadlocks.fetch_add(1, Ordering::Relaxed);
                    quiet_needed = quiet_needed.saturating_mul(2).min(DEADLOCK_QUIET.saturating_mul(64));
                    report_possible_deadlock(shared, now.duration_since(since), &mut hinted, &mut printed_deadlock);
                }
            } else {
                quiet_since = None;
            }
            shared.monitor.parked.store(true, Ordering::SeqCst);
            if shared.sleepers.load(Ordering::SeqCst) == shared.remotes.len() {
                let nap = if quiet_since.is_some() && deadlock_reported.is_none() {
                    quiet_needed / 2
                } else {
                    threshold.saturating_mul(8)
                };
                thread::park_timeout(nap);
            }
            shared.monitor.parked.store(false, Ordering::SeqCst);
            continue;
        }
        quiet_since = None;
        thread::park_timeout(interval);
        let now = Instant::now();
        shared.refresh_clock(now);
        for (index, (remote, watch)) in shared.remotes.iter().zip(watches.iter_mut()).enumerate() {
            let stats = &remote.stats;
            // Resumes and budget checks both count as scheduling points (not a check that could
            // not yield while others waited: `WorkerStats::progress`).
            let switches = stats.progress();
            let moved = switches != watch.switches;
            watch.switches = switches;
            let running = stats.with_running(|h| h.map(|h| (h.id.get(), h.describe(), h.spawned_at)));
            match (moved, running) {
                (false, Some((id, who, at))) => {
                    let tid = stats.tid.load(Ordering::Relaxed);
                    if watch.stuck_since.is_none() {
                        watch.stuck_since = Some(now);
                        watch.cpu_at_stuck = thread_sample(tid).map(|(_, cpu)| cpu);
                        watch.unyielding_at_stuck = stats.unyielding_checks.load(Ordering::Relaxed);
                    }
                    let since = watch.stuck_since.unwrap_or(now);
                    let stuck = now.duration_since(since) + interval;
                    if watch.reported.is_some() {
                        publish_stall(watch, stats, stuck);
                    }
                    if stuck < threshold || watch.next_report.is_some_and(|t| now < t) {
                        continue;
                    }
                    // Runnable but hardly on a CPU: the machine is busy, not the green thread.
                    let sample = thread_sample(tid);
                    const BLOCKING_ADVICE: &str = "Use green's own I/O, sync and sleep, or green::spawn_blocking \
                        for calls that must block";
                    let (doing, advice) = match (sample, watch.cpu_at_stuck) {
                        (Some(('R', cpu)), Some(before)) if kept_off_cpu(cpu - before, now - since, threshold) => {
                            continue;
                        }
                        (Some(('R', _)), _)
                            if stats.unyielding_checks.load(Ordering::Relaxed) != watch.unyielding_at_stuck =>
                        {
                            (
                                "computing, with ticks that cannot yield: inside a green::no_yield section, or while \
                                 unwinding"
                                    .to_owned(),
                                "Keep green::no_yield sections short: hold in them only what a neighbour must not see \
                                 half done, and compute outside them",
                            )
                        }
                        (Some(('R', _)), _) => (
                            "computing without a tick".to_owned(),
                            "Use green::tick() (or #[green::preemptible]) in long loops, with a tick every few µs \
                             of work (the clock is looked at once per budget of ticks)",
                        ),
                        // The call's name, its file, and what to use instead, when /proc says.
                        (Some(_), _) => match syscall::describe(tid) {
                            Some((call, Some(hint))) => (format!("blocked in a system call: {call}: {hint}"), ""),
                            Some((call, None)) => (format!("blocked in a system call: {call}"), BLOCKING_ADVICE),
                            None => ("blocked in a system call".to_owned(), BLOCKING_ADVICE),
                        },
                        (None, _) => ("probably calling blocking code".to_owned(), BLOCKING_ADVICE),
                    };
                    let ready = stats.ready.load(Ordering::Relaxed);
                    let report = format!(
                        "green: worker {index} has been running green thread {who} (spawned at {at}) for {} ms \
                         without reaching a scheduling point ({doing}); {ready} green thread(s) wait behind it. \
                         {advice}",
                        stuck.as_millis()
                    );
                    let report = report.trim_end();
                    log::warn!("{report}");
                    reports[index] = report.to_owned();
                    if !printed_stuck && !warnings_heard() {
                        printed_stuck = true;
                        eprintln!("{report}{}", hint_once(&mut hinted));
                    }
                    // The next when the stall has doubled, counted from when this one was written:
                    // a report that came late (the OS kept the worker or the monitor off the CPU, or
                    // the logger was slow) is not followed by one at each look until the steps catch up.
                    let written = Instant::now().duration_since(since) + interval;
                    watch.next_report = Some(since + written.max(threshold).saturating_mul(2));
                    if watch.reported.replace(id).is_none() {
                        stats.stalls.fetch_add(1, Ordering::Relaxed);
                        watch.stalled_before = stats.stalled_nanos.load(Ordering::Relaxed);
                        publish_stall(watch, stats, stuck);
                    }
                }
                _ => end_stall(index, watch, stats, switches, now),
            }
        }
        // Every worker stuck: nothing else in the runtime runs until one of them lets go.
        if watches.len() > 1 && watches.iter().all(|w| w.reported.is_some()) {
            if !std::mem::replace(&mut all_stuck_reported, true) {
                report_all_stuck(&reports, &mut hinted, &mut printed_all_stuck);
            }
        } else {
            all_stuck_reported = false;
        }
    }
}

/// Logs that every worker is stuck, with each one's latest report; prints the first such
/// summary to stderr if no logger hears it (`printed` records that), since there only the
/// first report of a stuck worker was printed, and the others' culprits went unsaid.
fn report_all_stuck(reports: &[String], hinted: &mut bool, printed: &mut bool) {
    let mut text = format!(
        "green: every worker ({}) is held by a green thread that reaches no scheduling point, so no other green \
         thread runs until one of them does:",
        reports.len()
    );
    for report in reports {
        text.push_str("\n  - ");
        text.push_str(report.strip_prefix("green: ").unwrap_or(report));
    }
    text.push_str(
        "\nA green thread waiting in std's blocking calls (std::sync's Mutex, Condvar, mpsc, std::net, \
         std::thread::sleep, a child process's pipes) holds its whole worker: the crate docs' \"Porting from std\" \
         names the green counterpart of each.",
    );
    log::warn!("{text}");
    if !warnings_heard() && !std::mem::replace(printed, true) {
        eprintln!("{text}{}", hint_once(hinted));
    }
}

/// The worker `index` is not stuck as of `now` (it moved, or is not in a green thread, or
/// sleeps): ends the stall reported there, if any (the metrics count its time, the log says it
/// ended), and watches the worker afresh from `switches`.
fn end_stall(index: usize, watch: &mut Watch, stats: &crate::runtime::stats::WorkerStats, switches: u64, now: Instant) {
    // Held across a look, let go before the threshold: a slow slice, counted, not reported.
    if watch.stuck_since.is_some() && watch.reported.is_none() {
        stats.slow_slices.fetch_add(1, Ordering::Relaxed);
    }
    if let (Some(id), Some(since)) = (watch.reported, watch.stuck_since) {
        // Never less than the monitor published while the stall went on (that counted a look
        // ahead): the metrics' total does not go back.
        let published = stats.stalled_nanos.load(Ordering::Relaxed).saturating_sub(watch.stalled_before);
        let held = now.saturating_duration_since(since).max(Duration::from_nanos(published));
        publish_stall(watch, stats, held);
        log::warn!(
            "green: worker {index} is making progress again (green thread {id} held it for about {} ms)",
            held.as_millis()
        );
    }
    *watch = Watch { switches, ..Watch::default() };
}

/// Publishes that the stall reported in `watch` has held its worker for `held` so far: one
/// store of the worker's total, so a reader of the metrics sees it whole.
fn publish_stall(watch: &Watch, stats: &crate::runtime::stats::WorkerStats, held: Duration) {
    stats.stalled_nanos.store(watch.stalled_before.saturating_add(nanos(held)), Ordering::Relaxed);
}

/// A duration in whole nanoseconds, saturating (585 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// True when nothing inside the runtime could wake any of its live green threads: every worker
/// asleep with no timer, no green thread waiting on I/O, a Unix signal or the blocking pool, no
/// blocking job.
fn nothing_can_wake(shared: &Shared) -> bool {
    use crate::park::ParkReason;
    if shared.live.load(Ordering::Acquire) == 0 || shared.blocking.busy() > 0 {
        return false;
    }
    shared.remotes.iter().all(|remote| {
        let stats = &remote.stats;
        remote.sleeping.load(Ordering::SeqCst)
            && remote.inbox.is_empty()
            && stats.timed_parked.load(Ordering::Relaxed) == 0
            && stats.parked_now[ParkReason::Io as usize].load(Ordering::Relaxed) == 0
            && stats.parked_now[ParkReason::Blocking as usize].load(Ordering::Relaxed) == 0
            && stats.parked_now[ParkReason::Signal as usize].load(Ordering::Relaxed) == 0
    })
}

/// Resumes and budget checks of all workers so far: it moves when any green thread runs.
fn progress(shared: &Shared) -> u64 {
    shared
        .remotes
        .iter()
        .map(|r| r.stats.switches.load(Ordering::Relaxed).wrapping_add(r.stats.budget_checks()))
        .fold(0, u64::wrapping_add)
}

/// A wait-for graph look is posted every this many thresholds (4 s with the default 100 ms),
/// and every [`WAIT_LOOK_MIN`] at most often.
const WAIT_LOOK_THRESHOLDS: u32 = 40;

/// The shortest time between two wait-for graph looks, whatever the threshold: each costs
/// every worker a walk over its green threads.
const WAIT_LOOK_MIN: Duration = Duration::from_secs(1);

/// Finds deadlocks among green threads while the runtime runs on around them (a server's
/// accept loop and idle connections keep it from ever being quiet enough for the report of a
/// possible deadlock): every [`WAIT_LOOK_THRESHOLDS`] thresholds, while at least two green
/// threads are parked in joins or green locks' waits, it posts a look at the wait-for graph
/// of joins and green locks ([`WaitLook`]), and reports each cycle of waits without a deadline
/// whose every wait lasted from one look to the next ([`lasting_deadlocks`]), once while it
/// lasts.
struct WaitWatch {
    every: Duration,
    /// The look posted and not yet answered.
    look: Option<WaitLook>,
    /// When the next look is due.
    next: Instant,
    /// The edges of the last look answered, and when it was posted.
    before: Option<(Vec<Edge>, Instant)>,
    /// The cycles found lasting but not yet named (looked at again at once), each with when
    /// the earlier of the two looks that showed it was posted: its waits have lasted since.
    naming: HashMap<Vec<u64>, Instant>,
    /// The cycles reported and still seen at the last look answered, by their green threads'
    /// ids in increasing order, each with its waits (waiter, waited for, wait number): a
    /// cycle lasts while each of its waits does, which one look shows, so a look given up
    /// between two others does not make it new again.
    reported: HashMap<Vec<u64>, HashSet<(u64, u64, u32)>>,
    /// Whether stderr has had a report (once, when no logger hears the monitor).
    printed: bool,
}

impl WaitWatch {
    fn new(threshold: Duration) -> WaitWatch {
        let every = threshold.saturating_mul(WAIT_LOOK_THRESHOLDS).max(WAIT_LOOK_MIN);
        WaitWatch {
            every,
            look: None,
            next: Instant::now() + every,
            before: None,
            naming: HashMap::new(),
            reported: HashMap::new(),
            printed: false,
        }
    }

    /// Collects the look in flight if its answers are in, and posts the next when it is due.
    fn turn(&mut self, shared: &Shared, now: Instant, hinted: &mut bool) {
        if let Some(look) = &self.look {
            let Some(outcome) = look.outcome(shared) else { return };
            let (asked, took) = (look.asked(), look.cost());
            self.look = None;
            match outcome {
                // A worker too busy to answer: the next look starts afresh.
                None => self.forget_before(),
                Some(edges) => {
                    // A look costs its workers in proportion to the waits it sees (about 0.1 µs
                    // each): a million lock waiters spread the looks out, to 1% of a worker. By
                    // the workers' own time: this loop may have slept long before it collected
                    // the answers (a whole nap when the workers went back to sleep first).
                    self.next = self.next.max(now + took.saturating_mul(100));
                    self.answered(shared, edges, asked, hinted);
                    // Looks describe no green thread but those asked for: a new cycle is
                    // looked at again at once, with its green threads named, and reported if
                    // it is still there.
                    if !self.naming.is_empty() {
                        let to_name = self.naming.keys().flatten().copied().collect();
                        self.look = Some(WaitLook::start(shared, to_name));
                        return;
                    }
                }
            }
        }
        if now < self.next {
            return;
        }
        self.next = now + self.every;
        // A runtime in which nothing can wake anything is the report of a possible deadlock's,
        // whose dump names every wait cycle: a look would wake the workers (`post` marks them
        // awake), and the quiet that report waits for would start again at every look.
        if shared.sleepers.load(Ordering::SeqCst) == shared.remotes.len() && nothing_can_wake(shared) {
            return;
        }
        use crate::park::ParkReason;
        let waiting: usize = shared
            .remotes
            .iter()
            .map(|r| {
                r.stats.parked_now[ParkReason::Join as usize].load(Ordering::Relaxed)
                    + r.stats.lock_parked.load(Ordering::Relaxed)
            })
            .sum();
        // A cycle takes two green threads at least (none waits for a lock it holds).
        if waiting < 2 {
            self.forget_before();
            self.reported.clear();
            return;
        }
        self.look = Some(WaitLook::start(shared, HashSet::new()));
    }

    /// Takes in the `edges` of a look posted at `asked`: reports each deadlock that it and the
    /// look before show whose green threads it named, and keeps the others to be named.
    fn answered(&mut self, shared: &Shared, edges: Vec<Edge>, asked: Instant, hinted: &mut bool) {
        let waits: HashSet<(u64, u64, u32)> = edges.iter().map(|e| (e.from, e.to, e.seq)).collect();
        self.reported.retain(|_, reported| reported.is_subset(&waits));
        let (before, before_asked) = self.before.take().unwrap_or((Vec::new(), asked));
        let mut naming = HashMap::new();
        for (ids, cycle, named) in lasting_deadlocks(&before, &edges) {
            let mut key = ids;
            key.sort_unstable();
            if self.reported.contains_key(&key) {
                continue;
            }
            let since = self.naming.get(&key).copied().unwrap_or(before_asked);
            if named {
                self.report(shared, &cycle, asked.saturating_duration_since(since), hinted);
                let its = edges.iter().filter(|e| key.contains(&e.from)).map(|e| (e.from, e.to, e.seq)).collect();
                self.reported.insert(key, its);
            } else {
                naming.insert(key, since);
            }
        }
        self.naming = naming;
        self.before = Some((edges, asked));
    }

    /// No look answered before the next: that one starts afresh.
    fn forget_before(&mut self) {
        self.before = None;
        self.naming.clear();
    }

    /// Reports the deadlock `cycle`, whose waits have lasted `lasted` at least.
    fn report(&mut self, shared: &Shared, cycle: &str, lasted: Duration, hinted: &mut bool) {
        shared.monitor.deadlocks.fetch_add(1, Ordering::Relaxed);
        let text = format!(
            "green: deadlock: {cycle}. None of these waits has a deadline, and each has been the same wait for {} \
             ms at least (in looks that far apart): only a cancellation (JoinHandle::cancel, the runtime's shutdown) \
             ends them. To avoid it, take green locks in one order everywhere, and never join a green thread that \
             may wait for the joiner. A dump (Handle::dump, or GREEN_DUMP_SIGNAL=USR1 and kill -USR1) shows what \
             each one holds, and with GREEN_PARK_BACKTRACES=1 where it waits",
            lasted.as_millis()
        );
        log::warn!("{text}");
        if !warnings_heard() && !std::mem::replace(&mut self.printed, true) {
            eprintln!("{text}{}", hint_once(hinted));
        }
    }
}

/// Logs a possible deadlock with a dump; prints the first one to stderr if no logger hears it
/// (`printed` records that): a program whose green threads an OS thread feeds, idle at a
/// prompt, would otherwise print a dump of every green thread at each long pause.
fn report_possible_deadlock(shared: &Shared, quiet: Duration, hinted: &mut bool, printed: &mut bool) {
    let handle = crate::Handle { shared: shared_arc(shared) };
    // Capped: a million green threads parked would make a report of some 170 MB.
    let dump = handle.dump_capped(crate::runtime::REPORT_LISTED);
    let causes = deadlock_causes(shared.config.park_backtraces);
    log::warn!(
        "green: possible deadlock: every worker has been asleep for {} ms with {} live green thread(s) and no \
         timer, I/O or blocking job that could wake them; they wait on each other (or on an OS thread). \
         Green threads:\n{dump}{causes}",
        quiet.as_millis(),
        shared.live.load(Ordering::Relaxed)
    );
    if !warnings_heard() && !std::mem::replace(printed, true) {
        eprintln!("green: possible deadlock; green threads:\n{dump}{causes}{}", hint_once(hinted));
    }
}

/// Follows a possible deadlock's dump: what usually leaves green threads waiting for good and,
/// without park backtraces (a line such as `parked (sync, channel recv)` names no channel and
/// no source line), how to see where each one waits.
fn deadlock_causes(park_backtraces: bool) -> String {
    let mut text = String::from(
        "Usual causes: a channel whose senders are not all dropped (a `recv` loop ends only once every Sender \
         is gone), a green thread joining one that waits for it, a lock held while waiting for a green thread \
         that needs it.",
    );
    if !park_backtraces {
        text.push_str(
            " To see where each green thread waits, run with GREEN_PARK_BACKTRACES=1 \
             (runtime::Builder::park_backtraces), from a build with debug info for source lines (in a release \
             build, debug = \"line-tables-only\" under [profile.release]).",
        );
    }
    text.push('\n');
    text
}

/// A counted reference to a `Shared` that the caller borrows from an `Arc` (the monitor's).
fn shared_arc(shared: &Shared) -> Arc<Shared> {
    // SAFETY: the monitor's `Shared` always lives in an `Arc` (built in `Builder::start`), and
    // the caller's borrow proves it is alive; taking one more count is valid.
    unsafe {
        Arc::increment_strong_count(shared);
        Arc::from_raw(shared)
    }
}

/// The signal named by `GREEN_DUMP_SIGNAL`, if any (none when unset or empty).
fn dump_signal() -> Option<crate::signal::Signal> {
    let name = std::env::var("GREEN_DUMP_SIGNAL").ok()?;
    let name = name.trim().to_ascii_uppercase();
    if name.is_empty() {
        return None;
    }
    let name = name.strip_prefix("SIG").unwrap_or(&name).to_owned();
    let signal =
        (1..64).filter_map(crate::signal::Signal::from_raw).find(|s| s.name().strip_prefix("SIG") == Some(&name));
    if signal.is_none() {
        // Heard even without a logger: the user set the variable to see dumps, and would
        // otherwise learn of the typo only when the signal ends the process.
        crate::warn_even_without_logger(&format!(
            "green: GREEN_DUMP_SIGNAL={name} names no signal green can wait for (try USR1, USR2, HUP or WINCH)"
        ));
    }
    if let Some(s @ (crate::signal::Signal::Interrupt | crate::signal::Signal::Terminate)) = signal {
        // Heard for the same reason: the signal that would have stopped the program no longer
        // does, and the user may not connect the two.
        crate::warn_even_without_logger(&format!(
            "green: GREEN_DUMP_SIGNAL={name}: while a runtime runs, {s} prints a dump and no longer ends the \
             process; USR1 (or QUIT, as the JVM's thread dumps) leaves {s} to stop it"
        ));
    }
    signal
}

/// How many green threads a dump on the signal lists: `GREEN_DUMP_LISTED` (a number, or `all`),
/// else [`REPORT_LISTED`](crate::runtime::REPORT_LISTED).
fn dump_listed() -> usize {
    let Ok(value) = std::env::var("GREEN_DUMP_LISTED") else { return crate::runtime::REPORT_LISTED };
    let value = value.trim();
    if value.eq_ignore_ascii_case("all") {
        return usize::MAX;
    }
    value.replace('_', "").parse().unwrap_or_else(|_| {
        // Heard even without a logger, as a bad GREEN_DUMP_SIGNAL is.
        crate::warn_even_without_logger(&format!(
            "green: GREEN_DUMP_LISTED={value} is neither a number nor `all`; dumps on the signal list {} green \
             threads at most",
            crate::runtime::REPORT_LISTED
        ));
        crate::runtime::REPORT_LISTED
    })
}

/// Starts the dump-on-signal thread if `GREEN_DUMP_SIGNAL` asks for one.
fn start_dumper(shared: &Arc<Shared>) -> std::io::Result<Option<JoinHandle<()>>> {
    let Some(signal) = dump_signal() else { return Ok(None) };
    let listed = dump_listed();
    let signals = crate::signal::Signals::new(&[signal])?;
    let shared = shared.clone();
    let thread = thread::Builder::new().name(format!("{}-dump", shared.config.thread_name)).spawn(move || {
        while !shared.monitor.stop.load(Ordering::Acquire) {
            if let Ok(Some(_)) = signals.recv_timeout(Duration::from_millis(200)) {
                let handle = crate::Handle { shared: shared.clone() };
                eprintln!("{}", handle.dump_capped(listed));
            }
        }
    })?;
    Ok(Some(thread))
}

/// The state letter (`R` running or runnable, `S` sleeping, `D` in uninterruptible wait...) and
/// the CPU time in clock ticks of thread `tid` of this process, from `/proc`.
fn thread_sample(tid: i32) -> Option<(char, u64)> {
    if tid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The command name may contain anything, even ")": the fields start after the last one.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((state, utime + stime))
}

/// True when a worker that has not moved for `elapsed`, using `ticks` of CPU time meanwhile,
/// was mostly kept off the CPU by the OS: less than half of `elapsed` on a CPU, and less than
/// half the threshold in all. The green thread may have been about to tick when the OS took the
/// CPU away. Past half the threshold of CPU time it has computed without a tick however busy
/// the machine: on a machine with more runnable threads than cores, a worker's share stays low
/// for as long as the loop runs, and a test of the share alone kept it unreported for good.
fn kept_off_cpu(ticks: u64, elapsed: Duration, threshold: Duration) -> bool {
    // SAFETY: sysconf has no memory-safety preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = ticks as f64 / per_sec;
    cpu < elapsed.as_secs_f64() / 2.0 && cpu < threshold.as_secs_f64() / 2.0
}
