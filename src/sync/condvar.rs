//! A condition variable for [`Mutex`](crate::sync::Mutex).
//!
//! # Protocol
//!
//! 1. `wait` queues its waiter, *then* releases the mutex (both inside the park's registration,
//!    so a `notify` made after the release finds it queued), and parks.
//! 2. `notify_one` removes the first waiter and wakes it; `notify_all` removes them all. A
//!    waiter whose node is gone was notified.
//! 3. The woken waiter relocks the mutex and returns. A wait may also end early (a timeout, a
//!    cancellation, or rarely an early wake): callers loop on their condition, as with std.
//! 4. A notified waiter that leaves without returning (cancelled, or its deadline passed while
//!    it relocked) passes the notification on with `notify_one`, so a `notify_one` is never
//!    lost on a waiter that will not act on it.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::time::{Duration, Instant};

use crate::park;
use crate::sync::mutex::MutexGuard;
use crate::sync::wait::{Lock, Stop, Wait, WaitList, describe_current, op, stop_without_error};
use crate::sync::{LockResult, PoisonError};

/// A condition variable, like [`std::sync::Condvar`], for use with [`green::sync::Mutex`]: a
/// green thread waits on it by parking.
///
/// ```
/// use std::sync::Arc;
/// use green::sync::{Condvar, Mutex};
///
/// green::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let pair2 = pair.clone();
///     green::spawn(move || {
///         let (ready, cvar) = &*pair2;
///         *ready.lock().unwrap() = true;
///         cvar.notify_one();
///     });
///     let (ready, cvar) = &*pair;
///     let guard = cvar.wait_while(ready.lock().unwrap(), |ready| !*ready).unwrap();
///     assert!(*guard);
/// });
/// ```
///
/// `wait` and its timed forms are cancellation points. Inside [`crate::timeout`], `wait` and
/// `wait_while` unwind to it at the deadline, and the timed forms report a timeout. Every form
/// relocks the mutex before it returns, and that relock is a [`lock`](crate::sync::Mutex::lock):
/// if another thread still holds the mutex at the deadline, the timed forms unwind to the
/// `green::timeout` too, since they cannot return without the guard. A green thread that is
/// unwinding aborts in `wait` (nothing could wake it without parking) and returns at once, timed
/// out, from `wait_timeout` (see the [module docs](crate::sync)).
///
/// [`green::sync::Mutex`]: crate::sync::Mutex
#[derive(Default)]
pub struct Condvar {
    /// Waiting green threads and OS threads, in arrival order.
    waiters: Lock<WaitList<()>>,
}

// A panic cannot leave it half-changed for the next user, as for std's.
impl UnwindSafe for Condvar {}
impl RefUnwindSafe for Condvar {}

/// Whether a timed wait on a [`Condvar`] ended by its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because its time was up (and no notification came).
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::sync::{Condvar, Mutex};
    /// green::run(|| {
    ///     let (m, cv) = (Mutex::new(()), Condvar::new());
    ///     let (_guard, result) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(2)).unwrap();
    ///     assert!(result.timed_out());
    /// });
    /// ```
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// Passes a notification on if the waiter that received it unwinds before returning.
struct PassOn<'a> {
    condvar: &'a Condvar,
    armed: bool,
}

impl Drop for PassOn<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.condvar.notify();
        }
    }
}

impl Condvar {
    /// A new condition variable.
    ///
    /// ```
    /// static READY: green::sync::Condvar = green::sync::Condvar::new();
    /// READY.notify_all();
    /// ```
    pub const fn new() -> Condvar {
        Condvar { waiters: Lock::new(WaitList::new()) }
    }

    /// Releases the lock of `guard`, waits for a notification, relocks and returns the guard.
    /// May return without a notification: check the condition in a loop, or use
    /// [`Condvar::wait_while`]. One condition variable used with two mutexes is not detected
    /// (std's may panic); each waiter relocks its own.
    ///
    /// # Errors
    ///
    /// If the mutex is poisoned when relocked, with the guard inside the error.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use green::sync::{Condvar, Mutex};
    ///
    /// green::run(|| {
    ///     let state = Arc::new((Mutex::new(0), Condvar::new()));
    ///     let s = state.clone();
    ///     green::spawn(move || {
    ///         *s.0.lock().unwrap() = 1;
    ///         s.1.notify_all();
    ///     });
    ///     let mut value = state.0.lock().unwrap();
    ///     while *value == 0 {
    ///         value = state.1.wait(value).unwrap();
    ///     }
    /// });
    /// ```
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        op();
        park::check_cancelled();
        let wait = Wait::new(None);
        if let Some(stop) = wait.check() {
            stop_without_error(stop, "green::sync::Condvar::wait", unwinding_message);
        }
        self.block(guard, &wait, false).map(|(guard, _)| guard).map_err(|e| PoisonError::new(e.into_inner().0))
    }

    /// Waits while `condition` holds, as [`Condvar::wait`] in a loop.
    ///
    /// # Errors
    ///
    /// If the mutex is poisoned, with the guard inside the error.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use green::sync::{Condvar, Mutex};
    ///
    /// green::run(|| {
    ///     let queue = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    ///     let q = queue.clone();
    ///     green::spawn(move || {
    ///         q.0.lock().unwrap().push(42);
    ///         q.1.notify_one();
    ///     });
    ///     let items = queue.1.wait_while(queue.0.lock().unwrap(), |items| items.is_empty()).unwrap();
    ///     assert_eq!(items[0], 42);
    /// });
    /// ```
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`Condvar::wait`], waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// If the mutex is poisoned, with the guard and the result inside the error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::sync::{Condvar, Mutex};
    /// green::run(|| {
    ///     let (m, cv) = (Mutex::new(0), Condvar::new());
    ///     let (guard, result) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(1)).unwrap();
    ///     assert!(result.timed_out());
    ///     assert_eq!(*guard, 0);
    /// });
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        op();
        park::check_cancelled();
        let wait = Wait::new(Instant::now().checked_add(timeout));
        match wait.check() {
            None => self.block(guard, &wait, true),
            // Time is up already, or the green thread may not park: report a timeout with the
            // lock still held.
            Some(Stop::TimedOut | Stop::Unwinding) => {
                crate::deadline::report_timeout();
                Ok((guard, WaitTimeoutResult(true)))
            }
            Some(stop) => stop_without_error(stop, "green::sync::Condvar::wait_timeout", unwinding_message),
        }
    }

    /// Waits while `condition` holds, at most `timeout` in all.
    ///
    /// # Errors
    ///
    /// If the mutex is poisoned, with the guard and the result inside the error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::sync::{Condvar, Mutex};
    /// green::run(|| {
    ///     let (m, cv) = (Mutex::new(false), Condvar::new());
    ///     let (guard, result) =
    ///         cv.wait_timeout_while(m.lock().unwrap(), Duration::from_millis(3), |ready| !*ready).unwrap();
    ///     assert!(result.timed_out() && !*guard);
    /// });
    /// ```
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            let (relocked, result) = self.wait_timeout(guard, left)?;
            guard = relocked;
            if result.timed_out() {
                // The wait's deadline passed: ours, the `green::timeout` one, or (a green thread
                // that is unwinding, which may not park) none at all. Looping would spin until
                // our own; the condition decides, once more, as std's does after a timeout.
                let still = condition(&mut *guard);
                return Ok((guard, WaitTimeoutResult(still)));
            }
            // Notified, or woken early: the condition and the time left are checked at the top.
        }
    }

    /// Wakes the first waiting green thread (or OS thread), if any.
    ///
    /// ```
    /// let cv = green::sync::Condvar::new();
    /// cv.notify_one(); // nobody waits: nothing happens
    /// ```
    pub fn notify_one(&self) {
        op();
        self.notify();
    }

    /// Wakes every waiting green thread and OS thread.
    ///
    /// ```
    /// let cv = green::sync::Condvar::new();
    /// cv.notify_all();
    /// ```
    pub fn notify_all(&self) {
        op();
        let woken: Vec<_> = self.waiters.lock().drain().map(|node| node.waiter).collect();
        for waiter in woken {
            waiter.wake();
        }
    }

    fn notify(&self) {
        let woken = self.waiters.lock().pop_front();
        if let Some(node) = woken {
            node.waiter.wake();
        }
    }

    /// Protocol steps 1 to 4. Returns the relocked guard and whether the wait timed out.
    /// `timed`: the caller can report a timeout (else the `green::timeout` deadline unwinds).
    fn block<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        wait: &Wait,
        timed: bool,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let mutex = guard.mutex();
        let mut guard = Some(guard);
        let mut id = None;
        park::wait_sync(
            park::Primitive::Condvar,
            |waiter| {
                self.waiters.lock().enqueue(&mut id, waiter, (), false);
                // Released only now that we are queued: a notify after this finds us.
                drop(guard.take());
                true
            },
            wait.deadline(),
        );
        let notified = id.is_some_and(|mine| self.waiters.lock().remove(mine).is_none());
        let mut pass_on = PassOn { condvar: self, armed: notified };
        let timed_out = match wait.check() {
            Some(Stop::Cancelled) => {
                drop(pass_on);
                crate::sync::wait::unwind_cancelled();
            }
            Some(Stop::TimedOut) if !notified => true,
            _ => false,
        };
        if timed_out && !timed {
            // The `green::timeout` deadline passed, and `wait` has no timeout error.
            drop(pass_on);
            crate::sync::wait::unwind_elapsed();
        }
        if timed_out {
            crate::deadline::report_timeout();
        }
        let relocked = mutex.lock();
        pass_on.armed = false;
        match relocked {
            Ok(guard) => Ok((guard, WaitTimeoutResult(timed_out))),
            Err(poisoned) => Err(PoisonError::new((poisoned.into_inner(), WaitTimeoutResult(timed_out)))),
        }
    }
}

fn unwinding_message() -> String {
    format!(
        "green: {} called green::sync::Condvar::wait while unwinding. A green thread cannot park while \
         unwinding (its worker would carry the panic to other green threads), and nothing could wake it \
         without parking. Do not wait on a condition variable in a destructor, or use wait_timeout, which \
         returns at once then",
        describe_current()
    )
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").field("waiters", &self.waiters.lock().len()).finish()
    }
}
