//! Sleeping. Each worker keeps a heap of timers (see `runtime/timers.rs`); a sleeping green
//! thread costs one heap entry and no OS resources.

use std::time::{Duration, Instant};

use crate::park::{self, ParkReason};
use crate::runtime::context;

/// Puts the green thread to sleep for at least `duration`, like [`std::thread::sleep`]; the
/// worker runs others meanwhile. On a plain OS thread it is `std::thread::sleep`.
///
/// This is a cancellation point. It never returns early; it may return later than asked when
/// the worker is busy. Inside [`crate::timeout`], a sleep that would end past the deadline
/// unwinds to the `timeout` at the deadline. While its green thread unwinds (in a destructor)
/// it cannot park, so it blocks the worker for the time asked: keep such sleeps short.
///
/// # Panics
///
/// Inside [`crate::on_worker_stack`], where no green thread can park.
///
/// ```
/// use std::time::{Duration, Instant};
/// green::run(|| {
///     let start = Instant::now();
///     green::sleep(Duration::from_millis(10));
///     assert!(start.elapsed() >= Duration::from_millis(10));
/// });
/// ```
pub fn sleep(duration: Duration) {
    match Instant::now().checked_add(duration) {
        Some(deadline) => sleep_until(deadline),
        None => sleep_forever(),
    }
}

/// `duration` from now, or a century from now where that is past what an `Instant` holds: for
/// a deadline that must be an `Instant` however long a user's setting is.
pub(crate) fn far_deadline(duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let now = Instant::now();
    now.checked_add(duration).unwrap_or_else(|| now + CENTURY)
}

/// Puts the green thread to sleep until `deadline`. See [`sleep`].
///
/// ```
/// use std::time::{Duration, Instant};
/// green::run(|| {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     green::sleep_until(deadline);
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: Instant) {
    sleep_inner(Some(deadline));
}

fn sleep_forever() {
    sleep_inner(None);
}

/// A green thread parks until `deadline`; a plain OS thread sleeps as std's does, but inside
/// [`crate::timeout`] only until that deadline, and then unwinds to it.
fn sleep_inner(deadline: Option<Instant>) {
    crate::coop::tick_op();
    let green = context::in_green_thread();
    if !green {
        assert!(
            context::with_core(|c| c.is_none()),
            "green::sleep called {}: a green thread cannot park there; sleep outside that closure or destructor",
            on_worker_stack_where!()
        );
    }
    loop {
        park::check_cancelled();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        // Only a sleep that would wait past a `green::timeout` deadline unwinds to it: one
        // that need not wait (zero, an instant already reached, or one that just ended, as at
        // the deadline itself) returns, as other calls that need not wait do.
        crate::deadline::raise_if_passed();
        // Cancelled where nothing unwinds (rule 7 under panic = "abort"): the sleep ends, as the
        // unwind would have ended it.
        if crate::park::cancelled_without_unwind() {
            return;
        }
        if std::thread::panicking() {
            // Rule 3: never park while unwinding. Sleeping cannot deadlock, so block the
            // worker (or the OS thread) for the rest of the time instead.
            return os_sleep(deadline);
        }
        if green {
            // The timer is the only waker: nothing to register.
            park::wait_for(ParkReason::Sleep, |_waiter| true, park::honoured_deadline(deadline));
        } else {
            match park::effective_deadline(deadline) {
                Some(d) => std::thread::sleep(d.saturating_duration_since(Instant::now())),
                None => std::thread::park(),
            }
        }
    }
}

/// Sleeps until `deadline` between the attempts of a retry loop that watches its deadlines
/// itself: a cancellation still unwinds, but an expired `green::timeout` does not (the loop
/// returns its own timeout error). A green thread parks; a plain OS thread sleeps.
pub(crate) fn pause_until(deadline: Instant) {
    if !context::in_green_thread() {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        return;
    }
    loop {
        park::check_cancelled();
        if Instant::now() >= deadline {
            return;
        }
        park::wait_for(ParkReason::Sleep, |_waiter| true, Some(deadline));
    }
}

fn os_sleep(deadline: Option<Instant>) {
    match deadline {
        Some(d) => std::thread::sleep(d.saturating_duration_since(Instant::now())),
        None => loop {
            std::thread::park();
        },
    }
}
