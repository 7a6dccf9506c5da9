//! What a worker publishes about itself for the monitor and for `Handle::metrics`.
//!
//! Each counter has one writer, its worker, which updates it with plain relaxed stores of a
//! value it keeps locally (no read-modify-write, no shared cache line with other workers); the
//! monitor and `metrics()` read them from any thread. A snapshot across counters is therefore
//! not atomic: each figure is exact, their sum at one instant is approximate.
//!
//! # The running green thread, and reading it safely from the monitor
//!
//! `running` points at the header of the green thread being resumed (null between resumes).
//! The monitor reads that header only while a worker seems stuck, and must not read it after
//! it is freed. A one-slot hazard protects it:
//!
//! 1. a reader (the monitor, a dump) increments `hazard`, issues a `SeqCst` fence, then loads `running`;
//! 2. the worker clears `running` after the resume, and before it can free a task that ran
//!    (only `Core::complete` drops the slot's reference), issues a `SeqCst` fence and waits
//!    while `hazard` is not zero.
//!
//! Either the worker's fence comes first, and the monitor sees `running` null, or the
//! monitor's does, and the worker sees `hazard` and waits for the monitor to finish reading.
//!
//! Where the kernel has `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, the fence is made
//! asymmetric: the monitor, which reads rarely, issues the system call, which runs a full
//! barrier on every thread of the process; the worker, which finishes green threads all the
//! time, then needs only a compiler fence. That saves a full fence per finished green thread.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, compiler_fence, fence};

use super::task::Header;

/// Counters of one worker. Written by that worker only, but for the stall counters, which the
/// monitor writes.
#[derive(Debug, Default)]
pub(crate) struct WorkerStats {
    /// Resumes of green threads so far: the worker's progress counter.
    pub(crate) switches: AtomicU64,
    /// Times a green thread's budget ran out here and it could have yielded (or nothing else
    /// here could have run): scheduling points that are not switches, so the monitor counts
    /// them as progress.
    pub(crate) checkpoints: AtomicU64,
    /// The other times its budget ran out: it could not yield (inside a `no_yield` section, or
    /// unwinding) while something else here could have run. For the monitor, no progress, since
    /// the worker stays held ([`WorkerStats::progress`]). Each check bumps exactly one of the
    /// two, so that the monitor reads progress from one counter and never sees half a check.
    pub(crate) unyielding_checks: AtomicU64,
    /// Forced yields (the budget ran out with others waiting).
    pub(crate) forced_yields: AtomicU64,
    /// Unstarted green threads this worker took from a peer or the injector.
    pub(crate) steals: AtomicU64,
    /// Green threads this worker started.
    pub(crate) started: AtomicU64,
    /// Parks committed, by reason (indexed by `ParkReason as usize`).
    pub(crate) parks: [AtomicU64; crate::park::ParkReason::COUNT],
    /// Times the worker went to sleep in its poller.
    pub(crate) sleeps: AtomicU64,
    /// Nanoseconds spent with nothing to run: spinning, and asleep in the poller, counted
    /// when each stretch ends.
    pub(crate) idle_nanos: AtomicU64,
    /// Start of the stretch with nothing to run in progress, in nanoseconds since the
    /// runtime's epoch, plus one; 0 while the worker has work.
    pub(crate) idle_since: AtomicU64,
    /// Green threads waiting for this worker (ready, or queued unstarted) at its last
    /// maintenance.
    pub(crate) ready: AtomicUsize,
    /// Green threads parked here right now, by reason: counted from the commit of a park to the
    /// resume that follows it. Written by the worker only.
    pub(crate) parked_now: [AtomicUsize; crate::park::ParkReason::COUNT],
    /// Of the green threads parked here, those whose park has a deadline: a timer will wake
    /// them. Unlike the timer heap's size, it counts no entry left by a wait that ended early.
    /// Written by the worker only.
    pub(crate) timed_parked: AtomicUsize,
    /// Of the green threads parked here, those in a green lock's wait (`Mutex`, `RwLock`): with
    /// the joins, the waits a deadlock is made of, which the monitor looks for while there
    /// are two or more. Written by the worker only.
    pub(crate) lock_parked: AtomicUsize,
    /// Entries in the timer heap here, as of the worker's last maintenance or sleep.
    pub(crate) timers: AtomicUsize,
    /// Stalls the monitor reported here: one green thread held the worker past the blocking
    /// threshold. Written by the monitor.
    pub(crate) stalls: AtomicU64,
    /// Nanoseconds the worker was held in reported stalls, the one in progress included (as of
    /// the monitor's last look). Written by the monitor.
    pub(crate) stalled_nanos: AtomicU64,
    /// Slices the monitor saw hold the worker across one of its looks that ended before the
    /// blocking threshold (too short to report as stalls). Written by the monitor.
    pub(crate) slow_slices: AtomicU64,
    /// The worker's kernel thread id, for the monitor's look at `/proc` (0 until it starts).
    pub(crate) tid: std::sync::atomic::AtomicI32,
    /// Header of the green thread being resumed; null between resumes.
    pub(crate) running: AtomicPtr<Header>,
    /// Readers of `*running` right now (the monitor, dumps); see the module docs.
    pub(crate) hazard: AtomicUsize,
}

impl WorkerStats {
    /// The worker's progress counter, as the monitor reads it: resumes, and budget checks but
    /// those that could not yield with others waiting.
    pub(crate) fn progress(&self) -> u64 {
        self.switches.load(Ordering::Relaxed).wrapping_add(self.checkpoints.load(Ordering::Relaxed))
    }

    /// Every budget check so far, whether it could yield or not.
    pub(crate) fn budget_checks(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed).wrapping_add(self.unyielding_checks.load(Ordering::Relaxed))
    }

    /// Adds one to a counter that only this worker writes.
    #[inline]
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Adds `delta` to a gauge only its worker writes (as [`WorkerStats::bump`]).
    pub(crate) fn add(gauge: &AtomicUsize, delta: isize) {
        gauge.store(gauge.load(Ordering::Relaxed).wrapping_add_signed(delta), Ordering::Relaxed);
    }

    /// Worker side of the hazard: called before freeing a task that has run.
    pub(crate) fn wait_for_readers(&self) {
        if ASYMMETRIC.load(Ordering::Relaxed) {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        while self.hazard.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
    }

    /// Monitor side: calls `f` with the running green thread's header, if any, while it is
    /// guaranteed not to be freed.
    pub(crate) fn with_running<R>(&self, f: impl FnOnce(Option<&Header>) -> R) -> R {
        self.hazard.fetch_add(1, Ordering::SeqCst);
        let running = if !ASYMMETRIC.load(Ordering::SeqCst) {
            fence(Ordering::SeqCst);
            self.running.load(Ordering::SeqCst)
        } else if heavy_barrier() {
            self.running.load(Ordering::SeqCst)
        } else {
            // The workers rely on the barrier: without it, reading is not safe. Say nothing of
            // the green thread, and say once why.
            static SAID: AtomicBool = AtomicBool::new(false);
            if !SAID.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "green: membarrier failed ({}): reports and dumps cannot name running green threads",
                    std::io::Error::last_os_error()
                );
            }
            std::ptr::null_mut()
        };
        // SAFETY: non-null `running` is the header of a task whose slot still counts it; the
        // worker does not free it while `hazard` is non-zero (module docs, step 2), and it is
        // at least 1 until our `fetch_sub` below, whatever other readers do.
        let result = f(unsafe { running.as_ref() });
        self.hazard.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

/// True once the process is registered for private expedited `membarrier`: the hazard's
/// fences are then asymmetric (module docs). Set once, never cleared.
static ASYMMETRIC: AtomicBool = AtomicBool::new(false);

/// `membarrier` commands (linux/membarrier.h; `libc` has only the system call number).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Makes the hazard's fences asymmetric if the kernel supports it (Linux 4.14 and later).
/// Called by whoever may read `running` from another thread, before it first does.
///
/// Decided once per process, whatever the outcome: if a first registration failed (say a
/// transient `ENOMEM`) and a later one succeeded, the mode would flip under runtimes already
/// running, and a reader that still saw the symmetric mode could meet a worker that already
/// used the asymmetric one: neither would issue the full fence the other relies on.
pub(crate) fn use_asymmetric_fences() {
    static DECIDE: std::sync::Once = std::sync::Once::new();
    DECIDE.call_once(|| {
        // SAFETY: membarrier takes two integers and a cpu id, touches no memory of ours.
        let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) };
        if rc == 0 {
            ASYMMETRIC.store(true, Ordering::SeqCst);
        }
    });
}

/// A full memory barrier on every running thread of the process; false if it failed (it does
/// not once registration succeeded; if it ever did, the caller must not read `running`).
fn heavy_barrier() -> bool {
    // SAFETY: as in `use_asymmetric_fences`.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 }
}
