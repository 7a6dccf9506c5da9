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
    if let Some(task) = context::with_core(|core| core.filter(|c| c.in_green_thread()).and_then(|c| c.current())) {
        let seq = task.header().begin_wait();
        if register(Waiter::Green { task, seq }) {
            assert_can_park();
            context::suspend(Suspend::Park { kind: ParkKind::Internal, deadline });
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
