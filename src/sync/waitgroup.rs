//! A wait group, as in Go: a counter of outstanding work that green threads wait to reach zero.
//!
//! # Protocol (under the internal lock)
//!
//! `add` raises the count; `done` lowers it, and the `done` that brings it to zero wakes every
//! waiter. `wait` returns at once when the count is zero, else queues and parks until it is.
//! A waiter whose node is gone was released by a zero, even if an `add` has raised the count
//! again before it ran: it returns, and does not wait for the next zero.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

use crate::park;
use crate::sync::wait::{Lock, Stop, Wait, WaitList, Wakes, describe_current, op, stop_without_error};

#[derive(Debug)]
struct State {
    /// Outstanding work.
    count: usize,
    /// Waiters for `count == 0`.
    waiters: WaitList<()>,
}

/// True if the waiter queued as `id` was taken out by the `done` that brought the count to
/// zero (only that `done` and the waiter itself take nodes out).
fn released(state: &State, id: Option<u64>) -> bool {
    id.is_some_and(|mine| !state.waiters.contains(mine))
}

/// Waits for a group of tasks to finish, as Go's `sync.WaitGroup`: [`add`](WaitGroup::add)
/// before starting work, [`done`](WaitGroup::done) when each piece ends,
/// [`wait`](WaitGroup::wait) until all are done.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use green::sync::WaitGroup;
///
/// green::run(|| {
///     let wg = Arc::new(WaitGroup::new());
///     let finished = Arc::new(AtomicUsize::new(0));
///     for _ in 0..5 {
///         wg.add(1);
///         let (wg, finished) = (wg.clone(), finished.clone());
///         drop(green::spawn(move || {
///             finished.fetch_add(1, Ordering::SeqCst);
///             wg.done();
///         }));
///     }
///     wg.wait();
///     assert_eq!(finished.load(Ordering::SeqCst), 5);
/// });
/// ```
///
/// `wait` and `wait_timeout` are cancellation points. Inside [`crate::timeout`], `wait` unwinds
/// to it at the deadline and `wait_timeout` returns `false`. A green thread that is unwinding
/// aborts in `wait` and gets `false` from `wait_timeout` when the count is not zero (see the
/// [module docs](crate::sync)).
pub struct WaitGroup {
    state: Lock<State>,
}

// A panic cannot leave it half-changed for the next user, as for std's.
impl UnwindSafe for WaitGroup {}
impl RefUnwindSafe for WaitGroup {}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl WaitGroup {
    /// A wait group with a count of zero.
    ///
    /// ```
    /// let wg = green::sync::WaitGroup::new();
    /// wg.wait(); // nothing outstanding: returns at once
    /// ```
    pub const fn new() -> WaitGroup {
        WaitGroup { state: Lock::new(State { count: 0, waiters: WaitList::new() }) }
    }

    /// Adds `n` to the count of outstanding work.
    ///
    /// ```
    /// let wg = green::sync::WaitGroup::new();
    /// wg.add(2);
    /// assert_eq!(wg.count(), 2);
    /// ```
    pub fn add(&self, n: usize) {
        op();
        let mut state = self.state.lock();
        let count = state.count;
        state.count = count
            .checked_add(n)
            .unwrap_or_else(|| panic!("green::sync::WaitGroup: a count of {count} plus {n} overflows"));
    }

    /// Marks one piece of work done; the last one wakes the waiters.
    ///
    /// # Panics
    ///
    /// If the count is already zero (more `done` than `add`).
    ///
    /// ```
    /// let wg = green::sync::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    #[track_caller]
    pub fn done(&self) {
        op();
        let mut wakes = Wakes::default();
        {
            let mut state = self.state.lock();
            assert!(state.count > 0, "green::sync::WaitGroup::done called more times than add");
            state.count -= 1;
            if state.count == 0 {
                state.waiters.drain().for_each(|node| wakes.push(node.waiter));
            }
        }
        wakes.wake();
    }

    /// The count of outstanding work now.
    ///
    /// ```
    /// assert_eq!(green::sync::WaitGroup::new().count(), 0);
    /// ```
    pub fn count(&self) -> usize {
        self.state.lock().count
    }

    /// Waits until the count is zero.
    ///
    /// ```
    /// use std::sync::Arc;
    /// green::run(|| {
    ///     let wg = Arc::new(green::sync::WaitGroup::new());
    ///     wg.add(1);
    ///     let wg2 = wg.clone();
    ///     green::spawn(move || wg2.done());
    ///     wg.wait();
    /// });
    /// ```
    pub fn wait(&self) {
        if let Err(stop) = self.wait_until(None) {
            stop_without_error(stop, "green::sync::WaitGroup::wait", || self.unwinding_message());
        }
    }

    /// Waits at most `timeout` for the count to reach zero; true if it did.
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let wg = green::sync::WaitGroup::new();
    ///     wg.add(1);
    ///     assert!(!wg.wait_timeout(Duration::from_millis(2)));
    ///     wg.done();
    ///     assert!(wg.wait_timeout(Duration::from_millis(2)));
    /// });
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match self.wait_until(Instant::now().checked_add(timeout)) {
            Ok(()) => true,
            Err(Stop::TimedOut | Stop::Unwinding) => {
                crate::deadline::report_timeout();
                false
            }
            Err(stop) => stop_without_error(stop, "green::sync::WaitGroup::wait_timeout", || self.unwinding_message()),
        }
    }

    fn wait_until(&self, own: Option<Instant>) -> Result<(), Stop> {
        op();
        park::check_cancelled();
        if self.state.lock().count == 0 {
            return Ok(());
        }
        let wait = Wait::new(own);
        let mut id = None;
        loop {
            if let Some(stop) = wait.check() {
                let mut state = self.state.lock();
                if state.count == 0 || released(&state, id) {
                    return Ok(());
                }
                if let Some(mine) = id {
                    state.waiters.remove(mine);
                }
                return Err(stop);
            }
            let mut finished = false;
            park::wait_sync(
                park::Primitive::WaitGroup,
                |waiter| {
                    let mut state = self.state.lock();
                    if state.count == 0 || released(&state, id) {
                        finished = true;
                        return false;
                    }
                    state.waiters.enqueue(&mut id, waiter, (), false);
                    true
                },
                wait.deadline(),
            );
            if finished {
                return Ok(());
            }
        }
    }

    fn unwinding_message(&self) -> String {
        format!(
            "green: {} waited on a green::sync::WaitGroup while unwinding, with {} piece(s) of work \
             outstanding. A green thread cannot park while unwinding (its worker would carry the panic to \
             other green threads). Use wait_timeout, which returns false then",
            describe_current(),
            self.count()
        )
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup").field("count", &self.count()).finish()
    }
}
