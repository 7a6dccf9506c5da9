//! Parking: the one primitive that joins, sleeps, sync and I/O are built on.
//!
//! A wait list holds [`Waiter`]s. A waiter is inert (DESIGN.md rule 3.2): for a green thread it
//! is its task reference plus the sequence number of the wait it was made for, never the
//! coroutine; for an OS thread it is the `std::thread::Thread` to unpark. Waking one from any
//! thread is safe at any time: a stale green waker is ignored, and a green thread is pushed to
//! its home worker only by whoever wins its `PARKED → SCHEDULED` transition.
//!
//! Every wait built on this loops on its own condition: a park may end early (a stale OS-level
//! unpark, a cancellation) and the condition decides.

use std::time::Instant;

use crate::runtime::context::{self, Suspend};
use crate::runtime::task::{Cancelled, ParkKind, TaskRef};

/// Why a green thread parks: counted per worker (`Handle::metrics`) and shown in dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParkReason {
    /// `JoinHandle::join`, or a scope waiting for its children.
    Join,
    /// `green::sleep`.
    Sleep,
    /// `green::park` / `park_timeout`.
    User,
    /// A channel, lock or other `green::sync` primitive.
    Sync,
    /// A socket or another fd.
    Io,
    /// A job on the blocking pool.
    Blocking,
    /// Anything else.
    Other,
}

impl ParkReason {
    /// Number of reasons.
    pub(crate) const COUNT: usize = 7;
    /// Every reason, in index order.
    pub(crate) const ALL: [ParkReason; ParkReason::COUNT] = [
        ParkReason::Join,
        ParkReason::Sleep,
        ParkReason::User,
        ParkReason::Sync,
        ParkReason::Io,
        ParkReason::Blocking,
        ParkReason::Other,
    ];

    /// A short name for reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ParkReason::Join => "join",
            ParkReason::Sleep => "sleep",
            ParkReason::User => "park",
            ParkReason::Sync => "sync",
            ParkReason::Io => "io",
            ParkReason::Blocking => "blocking",
            ParkReason::Other => "other",
        }
    }
}

/// Something to wake when a wait is over.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// A green thread, in its wait number `seq`.
    Green { task: TaskRef, seq: u32 },
    /// A plain OS thread, blocked in `std::thread::park`.
    Os(std::thread::Thread),
}

impl Waiter {
    /// Wakes the waiter. Safe to call from any thread, any number of times.
    pub(crate) fn wake(self) {
        match self {
            Waiter::Green { task, seq } => {
                if task.header().wake(seq) {
                    schedule(task);
                }
            }
            Waiter::Os(thread) => thread.unpark(),
        }
    }
}

/// Pushes a green thread that the caller just made `SCHEDULED` to its home worker: straight
/// onto the run queue when the caller runs on that worker, else into its inbox.
pub(crate) fn schedule(task: TaskRef) {
    let home = task.header().home();
    let local = context::with_core(|core| match core {
        Some(core) if core.index == home && task.header().belongs_to(&core.shared) => {
            core.push_ready(&task);
            true
        }
        _ => false,
    });
    if !local {
        task.header().shared_arc().push_woken(task);
    }
}

/// One round of a wait: makes a waiter for the caller (a green thread or an OS thread) and
/// hands it to `register`; if that returns true (the waiter was stored), blocks until woken,
/// until `deadline`, or spuriously. The caller loops on its condition.
///
/// Green threads park (the worker runs others meanwhile); OS threads use `std::thread::park`.
/// This is not a cancellation point by itself; see [`cancellation_point`].
pub(crate) fn wait(register: impl FnOnce(Waiter) -> bool, deadline: Option<Instant>) {
    wait_for(ParkReason::Other, register, deadline);
}

/// [`wait`], saying why (for metrics and dumps).
pub(crate) fn wait_for(reason: ParkReason, register: impl FnOnce(Waiter) -> bool, deadline: Option<Instant>) {
    if let Some(task) = context::with_core(|core| core.filter(|c| c.in_green_thread()).and_then(|c| c.current())) {
        let seq = task.header().begin_wait();
        if register(Waiter::Green { task, seq }) {
            assert_can_park();
            context::suspend(Suspend::Park { kind: ParkKind::Internal, deadline, reason });
        }
    } else if register(Waiter::Os(std::thread::current())) {
        match deadline {
            Some(deadline) => std::thread::park_timeout(deadline.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
    }
}

/// DESIGN.md rule 3.3: a green thread never parks while unwinding. Waits check this first and
/// choose a non-blocking path; reaching a park anyway is a bug in the runtime.
fn assert_can_park() {
    if std::thread::panicking() {
        crate::abort_with("green: internal error: a green thread tried to park while unwinding");
    }
}

/// If the running green thread has been cancelled, unwinds it with the runtime's own payload
/// (no panic hook runs). Does nothing on an OS thread, while unwinding, or on the worker's own
/// stack.
pub(crate) fn cancellation_point() {
    let cancelled = context::with_core(|core| core.is_some_and(|c| c.in_green_thread() && c.current_is_cancelled()));
    if cancelled && !std::thread::panicking() {
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}
