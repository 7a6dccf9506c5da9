//! State shared by all workers of one runtime, and the paths into a worker from elsewhere.
//!
//! Each worker owns a [`Core`](super::worker::Core) that only its own thread touches. Anything
//! another thread needs to hand a worker goes through that worker's [`Remote`]: its inbox of
//! woken green threads, its queue of green threads pinned to it, and its poller, which doubles
//! as the worker's idle sleep and is notified only when the worker actually sleeps (waking a
//! sleeping vCPU costs about 22 µs here, a notify about 1.5 µs: neither is done needlessly).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::time::Duration;

use crossbeam_deque::{Injector, Stealer};

use super::Config;
use super::stats::WorkerStats;
use super::task::TaskRef;
use crate::reactor::Reactor;
use crate::stack::StackArena;
use std::sync::Arc;

/// Everything the workers of one runtime share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Settings from the builder.
    pub(crate) config: Config,
    /// Unstarted green threads spawned from outside any worker. Every worker steals from it.
    pub(crate) injector: Injector<TaskRef>,
    /// One entry per worker, indexed by worker number.
    pub(crate) remotes: Box<[Remote]>,
    /// Stealing ends of every worker's deque of unstarted green threads.
    pub(crate) stealers: Box<[Stealer<TaskRef>]>,
    /// Green threads spawned and not yet finished, started or not, plus those finished that a
    /// worker has yet to count out: never less than the true number. Exact whenever every
    /// worker is asleep or gone (each counts out what it finished before it sleeps, at every
    /// maintenance, and at once during shutdown).
    pub(crate) live: AtomicUsize,
    /// Workers currently asleep in their poller (a hint for spawners: is anyone to wake?).
    pub(crate) sleepers: AtomicUsize,
    /// Set once when the runtime starts shutting down (rule 7 of docs/design.md).
    pub(crate) shutdown: AtomicBool,
    /// Set when shutdown gave up on green threads that would not end and leaked them; then
    /// this `Shared` (which their headers point to) is leaked too.
    pub(crate) leaked: AtomicBool,
    /// Where stacks come from.
    pub(crate) stacks: Arc<StackArena>,
    /// The pool of OS threads for blocking jobs (`spawn_blocking`, host name lookups). Any
    /// thread may submit; shut down by `Runtime::drop` once the workers have stopped.
    pub(crate) blocking: crate::blocking::Pool,
    /// The blocking-code monitor's side of things the workers touch (`monitor.rs`).
    pub(crate) monitor: crate::monitor::MonitorState,
    /// The next worker in turn for [`spread_target`](Shared::spread_target).
    pub(crate) spread_next: AtomicUsize,
    /// When the runtime started: the origin of the coarse clock.
    pub(crate) epoch: std::time::Instant,
    /// A coarse clock, in ms since `epoch`: refreshed by the monitor and by workers that read
    /// the clock anyway, so that parks can be timed for dumps without a clock read each.
    pub(crate) coarse_ms: std::sync::atomic::AtomicU64,
}

/// The part of a worker that other threads may touch.
#[derive(Debug)]
pub(crate) struct Remote {
    /// Started green threads (homed here) that were woken by another thread.
    pub(crate) inbox: Injector<TaskRef>,
    /// Unstarted green threads placed on this worker by `green::Builder::worker` or `spread`.
    pub(crate) pinned: Injector<TaskRef>,
    /// The worker's reactor: its poller (readiness source, idle sleep, and the way to wake
    /// it) and the fds registered with it (`reactor.rs`).
    pub(crate) reactor: Arc<Reactor>,
    /// True while the worker sleeps (or is about to) in its poller (`CoreIo::wait`).
    pub(crate) sleeping: AtomicBool,
    /// What the worker publishes about itself (`stats.rs`).
    pub(crate) stats: WorkerStats,
    /// Dump requests for this worker to answer (`dump.rs`), and a flag that says there are.
    /// `None` once the worker has exited (`dump::close_dump_queue`): nobody would answer.
    pub(crate) dump: std::sync::Mutex<Option<Vec<Arc<super::dump::DumpRequest>>>>,
    pub(crate) dump_pending: AtomicBool,
}

impl Remote {
    pub(crate) fn new() -> std::io::Result<Remote> {
        Ok(Remote {
            inbox: Injector::new(),
            pinned: Injector::new(),
            reactor: Arc::new(Reactor::new()?),
            sleeping: AtomicBool::new(false),
            stats: WorkerStats::default(),
            dump: std::sync::Mutex::new(Some(Vec::new())),
            dump_pending: AtomicBool::new(false),
        })
    }

    /// Publish-then-check: the worker sets `sleeping` before its last look at its queues, so
    /// either it sees what was pushed or we see it sleeping (both sides use `SeqCst`).
    pub(crate) fn wake_if_sleeping(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            self.notify();
        }
    }

    pub(crate) fn notify(&self) {
        if let Err(e) = self.reactor.poller.notify() {
            // Nothing sane to do but say so: the worker still wakes at its next timer.
            log::error!("green: could not wake a worker: {e}");
        }
    }
}

impl Shared {
    /// Hands a started green thread, just made `ACTIVE` (from `PARKED`) by the caller, to its home worker.
    pub(crate) fn push_woken(&self, task: TaskRef) {
        let home = task.header().home();
        let remote = &self.remotes[home];
        remote.inbox.push(task);
        remote.wake_if_sleeping();
    }

    /// The worker a [spread](crate::Builder::spread) green thread starts on: each in turn. Not
    /// "a worker that sleeps first": at light load the spawner's worker is the one awake, so
    /// every handler went to the other, and those connections all stayed there when they
    /// became busy.
    pub(crate) fn spread_target(&self) -> usize {
        self.spread_next.fetch_add(1, Ordering::Relaxed) % self.remotes.len()
    }

    /// Wakes one sleeping worker, if any sleeps, so it can steal new work.
    pub(crate) fn wake_one_sleeper(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) == 0 {
            return;
        }
        for remote in self.remotes.iter() {
            if remote.sleeping.load(Ordering::SeqCst) && remote.sleeping.swap(false, Ordering::SeqCst) {
                remote.notify();
                return;
            }
        }
    }

    /// Wakes every worker (shutdown, and the end of it).
    pub(crate) fn wake_all(&self) {
        for remote in self.remotes.iter() {
            remote.sleeping.store(false, Ordering::SeqCst);
            remote.notify();
        }
    }

    /// Phase one of shutdown: from now on every worker cancels its green threads and drops
    /// unstarted ones, then exits once none is left or `shutdown_timeout` has passed.
    pub(crate) fn begin_shutdown(&self) {
        if !self.shutdown.swap(true, Ordering::SeqCst) {
            self.wake_all();
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// [`is_shutting_down`](Shared::is_shutting_down) for a spawn that has just counted itself
    /// in `live`, or the last green thread that has just counted itself out. Each writes `live`
    /// and then reads `shutdown`; a worker in the shutdown reads `live` after `shutdown` was
    /// written: with all four sequentially consistent, at least one side sees the other's
    /// write (no spawn is admitted, and no last exit goes unseen, after a worker read `live`).
    pub(crate) fn is_shutting_down_after_counting(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// One green thread fewer. The last one out during shutdown wakes the workers so they exit.
    pub(crate) fn task_finished(&self) {
        self.tasks_finished(1);
    }

    /// `n` green threads fewer (a worker counts its own out in batches: `Core::complete`).
    pub(crate) fn tasks_finished(&self, n: usize) {
        // SeqCst: see `is_shutting_down_after_counting`.
        if self.live.fetch_sub(n, Ordering::SeqCst) == n && self.is_shutting_down_after_counting() {
            self.wake_all();
        }
    }

    /// Refreshes the coarse clock from a reading the caller made anyway.
    pub(crate) fn refresh_clock(&self, now: std::time::Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        // A load first: readings within the same millisecond (most of a busy worker's) write
        // nothing to the line the other workers read.
        if ms > self.coarse_ms.load(Ordering::Relaxed) {
            self.coarse_ms.fetch_max(ms, Ordering::Relaxed);
        }
    }

    /// The coarse clock, in ms since the runtime started.
    pub(crate) fn coarse_ms(&self) -> u64 {
        self.coarse_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn shutdown_timeout(&self) -> Duration {
        self.config.shutdown_timeout
    }
}
