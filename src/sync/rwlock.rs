//! A reader-writer lock that parks green threads, fair by a FIFO queue with handoff.
//!
//! # States (under the internal lock)
//!
//! - *free*: `readers == 0`, no `writer`.
//! - *read-held*: `readers > 0`, no writer.
//! - *write-held*: `writer` is the holder's id, `readers == 0`.
//!
//! # Protocol
//!
//! 1. A `read` takes the lock at once only if no writer holds it *and nobody is queued*; a
//!    `write` only if it is free and nobody is queued. Otherwise they queue, first in first out.
//!    So a writer in the queue holds back readers that come after it: writers do not starve.
//! 2. A release grants the lock to the front of the queue, and removes those it grants: a
//!    writer, if the lock is now free; or the run of readers at the front, if no writer holds
//!    it. A granted waiter owns the lock when it wakes (handoff): nobody can barge in between.
//! 3. A waiter that leaves (timeout, cancellation) and finds its node gone owns the lock: it
//!    keeps it (timeout) or releases it (cancellation). One whose node is still there removes it
//!    and grants again, since it may have been holding back readers behind it.
//!
//! # Poisoning
//!
//! As std: a write guard dropped during a panic poisons the lock; read guards never do. A
//! cancellation or an expired deadline does not poison.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use crate::park;
use crate::sync::wait::{
    Lock, Mirrored, Stop, Wait, WaitList, Wakes, current_id, describe_current, describe_holder, op, refuse_relock,
    release_held, stop_without_error, take_held,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

/// The lock's state, under the internal lock.
#[derive(Debug)]
struct State {
    /// Read guards alive.
    readers: usize,
    /// The write holder's id ([`current_id`]), 0 when there is none.
    writer: u64,
    /// Waiting `read` and `write` calls, each with the id of the green thread (or OS thread).
    waiters: WaitList<(Kind, u64)>,
}

impl State {
    fn can_take(&self, kind: Kind) -> bool {
        self.writer == 0
            && self.waiters.is_empty()
            && match kind {
                Kind::Read => true,
                Kind::Write => self.readers == 0,
            }
    }

    fn take(&mut self, kind: Kind, holder: u64) {
        match kind {
            Kind::Read => self.readers += 1,
            Kind::Write => self.writer = holder,
        }
    }

    /// Protocol step 2: grants the lock to the front of the queue while possible.
    fn grant(&mut self, wakes: &mut Wakes) {
        while let Some(&(kind, holder)) = self.waiters.front().map(|n| &n.data) {
            let free_for = match kind {
                Kind::Read => self.writer == 0,
                Kind::Write => self.writer == 0 && self.readers == 0,
            };
            if !free_for {
                break;
            }
            let node = self
                .waiters
                .pop_front()
                .expect(internal_error!("a green::sync::RwLock waiter seen a moment ago is gone"));
            self.take(kind, holder);
            wakes.push(node.waiter);
            if kind == Kind::Write {
                break;
            }
        }
    }
}

/// A reader-writer lock, like [`std::sync::RwLock`], that parks green threads.
///
/// Waiters are served first in, first out: a waiting writer holds back the readers that come
/// after it, so neither readers nor writers starve.
///
/// ```
/// use green::sync::RwLock;
///
/// green::run(|| {
///     let lock = RwLock::new(5);
///     {
///         let r1 = lock.read().unwrap();
///         let r2 = lock.read().unwrap(); // many readers at once
///         assert_eq!(*r1 + *r2, 10);
///     }
///     *lock.write().unwrap() += 1;
///     assert_eq!(*lock.read().unwrap(), 6);
/// });
/// ```
///
/// `read`, `write` and their timed forms are cancellation points. Inside [`crate::timeout`],
/// `read` and `write` unwind to it at the deadline; the timed forms fail. A green thread that is
/// unwinding and would have to wait aborts in `read` and `write` (naming itself and the holder)
/// and fails in the timed forms (see the [module docs](crate::sync)).
pub struct RwLock<T: ?Sized> {
    state: Lock<State>,
    /// `state.writer`, readable without the lock: the holder cell of the dumps' wait-for edges
    /// (`park::WaitEdge`). Written under the lock as each locked section ends (`lock_state`).
    writer: AtomicU64,
    /// Set by a write guard dropped during a panic.
    poisoned: AtomicBool,
    /// Shared by read guards, exclusive to the write guard, as the state grants.
    data: UnsafeCell<T>,
}

// Poisoning tells the next user about a panic inside, as std's does.
impl<T: ?Sized> UnwindSafe for RwLock<T> {}
impl<T: ?Sized> RefUnwindSafe for RwLock<T> {}

// SAFETY: as std's `RwLock`: the state hands out either shared access to any number of readers
// or exclusive access to one writer, with the internal lock ordering the hand-overs. Moving the
// lock moves `T`: `T: Send`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: readers on several threads share `&T` (needs `T: Sync`), a writer gets `&mut T` from
// any thread (needs `T: Send`).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to the value of a [`RwLock`]; released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    /// The green thread that took it (`take_held`), to count it down when dropped.
    holder: u64,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared read guard gives `&T`, shareable when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

/// Exclusive access to the value of a [`RwLock`]; released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    /// The green thread that took it (`take_held`), to count it down when dropped.
    holder: u64,
    /// Whether the holder was unwinding when it locked (std's poisoning rule).
    panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared write guard gives only `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock.
    ///
    /// ```
    /// static CONFIG: green::sync::RwLock<u32> = green::sync::RwLock::new(0);
    /// assert_eq!(*CONFIG.read().unwrap(), 0);
    /// ```
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            state: Lock::new(State { readers: 0, writer: 0, waiters: WaitList::new() }),
            writer: AtomicU64::new(0),
            poisoned: AtomicBool::new(false),
            data: UnsafeCell::new(value),
        }
    }

    /// The value, consuming the lock.
    ///
    /// # Errors
    ///
    /// If the lock is poisoned, with the value inside the error.
    ///
    /// ```
    /// assert_eq!(green::sync::RwLock::new(1).into_inner().unwrap(), 1);
    /// ```
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poisoned.load(Ordering::Relaxed);
        let value = self.data.into_inner();
        if poisoned { Err(PoisonError::new(value)) } else { Ok(value) }
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, waiting while a writer holds the lock or waits for it.
    ///
    /// # Errors
    ///
    /// If the lock is poisoned, with the guard inside the error.
    ///
    /// # Panics
    ///
    /// If the calling green thread holds the lock for writing: it would wait for itself
    /// (std leaves this unspecified; it never returns). A relock by a reader is not detected,
    /// and a writer waiting behind it would make it wait for good.
    ///
    /// ```
    /// let lock = green::sync::RwLock::new(vec![1, 2]);
    /// assert_eq!(lock.read().unwrap().len(), 2);
    /// ```
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        self.lock_untimed(Kind::Read, "green::sync::RwLock::read");
        self.read_guard()
    }

    /// Locks for writing, waiting until no one else holds the lock.
    ///
    /// # Errors
    ///
    /// If the lock is poisoned, with the guard inside the error.
    ///
    /// # Panics
    ///
    /// If the calling green thread holds the lock for writing already. Held for reading by
    /// the same green thread, it waits for itself for good, as std's may.
    ///
    /// ```
    /// let lock = green::sync::RwLock::new(1);
    /// *lock.write().unwrap() = 2;
    /// assert_eq!(*lock.read().unwrap(), 2);
    /// ```
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        self.lock_untimed(Kind::Write, "green::sync::RwLock::write");
        self.write_guard()
    }

    /// Locks for reading if that needs no waiting.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or `Poisoned` with the guard.
    ///
    /// ```
    /// let lock = green::sync::RwLock::new(1);
    /// let _w = lock.write().unwrap();
    /// assert!(lock.try_read().is_err());
    /// ```
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        op();
        if self.try_take(Kind::Read) { Ok(self.read_guard()?) } else { Err(TryLockError::WouldBlock) }
    }

    /// Locks for writing if that needs no waiting.
    ///
    /// # Errors
    ///
    /// `WouldBlock`, or `Poisoned` with the guard.
    ///
    /// ```
    /// let lock = green::sync::RwLock::new(1);
    /// let _r = lock.read().unwrap();
    /// assert!(lock.try_write().is_err());
    /// ```
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        op();
        if self.try_take(Kind::Write) { Ok(self.write_guard()?) } else { Err(TryLockError::WouldBlock) }
    }

    /// Locks for reading, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the lock could not be had in time; `Poisoned` with the guard.
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let lock = green::sync::RwLock::new(1);
    ///     let _w = lock.write().unwrap();
    ///     assert!(lock.try_read_for(Duration::from_millis(2)).is_err());
    /// });
    /// ```
    pub fn try_read_for(&self, timeout: Duration) -> TryLockResult<RwLockReadGuard<'_, T>> {
        self.lock_timed(Kind::Read, Instant::now().checked_add(timeout))?;
        Ok(self.read_guard()?)
    }

    /// Locks for writing, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the lock could not be had in time; `Poisoned` with the guard.
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let lock = green::sync::RwLock::new(1);
    ///     let _r = lock.read().unwrap();
    ///     assert!(lock.try_write_for(Duration::from_millis(2)).is_err());
    /// });
    /// ```
    pub fn try_write_for(&self, timeout: Duration) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        self.lock_timed(Kind::Write, Instant::now().checked_add(timeout))?;
        Ok(self.write_guard()?)
    }

    /// Locks for reading, waiting until `deadline` at the latest; see [`RwLock::try_read_for`].
    ///
    /// # Errors
    ///
    /// As for [`RwLock::try_read_for`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let lock = green::sync::RwLock::new(1);
    /// let _w = lock.write().unwrap();
    /// assert!(lock.try_read_until(Instant::now() + Duration::from_millis(2)).is_err());
    /// ```
    pub fn try_read_until(&self, deadline: Instant) -> TryLockResult<RwLockReadGuard<'_, T>> {
        self.lock_timed(Kind::Read, Some(deadline))?;
        Ok(self.read_guard()?)
    }

    /// Locks for writing, waiting until `deadline` at the latest; see
    /// [`RwLock::try_write_for`].
    ///
    /// # Errors
    ///
    /// As for [`RwLock::try_write_for`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let lock = green::sync::RwLock::new(1);
    /// *lock.try_write_until(Instant::now() + Duration::from_millis(2)).unwrap() += 1;
    /// assert_eq!(*lock.read().unwrap(), 2);
    /// ```
    pub fn try_write_until(&self, deadline: Instant) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        self.lock_timed(Kind::Write, Some(deadline))?;
        Ok(self.write_guard()?)
    }

    /// True if a writer panicked.
    ///
    /// ```
    /// assert!(!green::sync::RwLock::new(0).is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Clears the poisoned state.
    ///
    /// ```
    /// let lock = green::sync::RwLock::new(0);
    /// lock.clear_poison();
    /// ```
    pub fn clear_poison(&self) {
        self.poisoned.store(false, Ordering::Relaxed);
    }

    /// A mutable reference to the value; the borrow proves exclusivity.
    ///
    /// # Errors
    ///
    /// If the lock is poisoned, with the reference inside the error.
    ///
    /// ```
    /// let mut lock = green::sync::RwLock::new(1);
    /// *lock.get_mut().unwrap() = 3;
    /// assert_eq!(*lock.read().unwrap(), 3);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poisoned.load(Ordering::Relaxed);
        let value = self.data.get_mut();
        if poisoned { Err(PoisonError::new(value)) } else { Ok(value) }
    }

    fn read_guard(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let guard = RwLockReadGuard { lock: self, holder: take_held(), _not_send: PhantomData };
        if self.is_poisoned() { Err(PoisonError::new(guard)) } else { Ok(guard) }
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let guard = RwLockWriteGuard {
            lock: self,
            holder: take_held(),
            panicking: std::thread::panicking(),
            _not_send: PhantomData,
        };
        if self.is_poisoned() { Err(PoisonError::new(guard)) } else { Ok(guard) }
    }

    fn try_take(&self, kind: Kind) -> bool {
        let mut state = self.lock_state();
        let free = state.can_take(kind);
        if free {
            state.take(kind, current_id());
        }
        free
    }

    fn lock_untimed(&self, kind: Kind, what: &str) {
        op();
        park::check_cancelled();
        if !self.try_take(kind) {
            refuse_relock(&self.writer, what, "RwLock", " for writing");
            if let Err(stop) = self.acquire_slow(kind, None) {
                stop_without_error(stop, what, || self.unwinding_message(kind));
            }
        }
    }

    fn lock_timed<G>(&self, kind: Kind, deadline: Option<Instant>) -> Result<(), TryLockError<G>> {
        op();
        park::check_cancelled();
        if self.try_take(kind) {
            return Ok(());
        }
        match self.acquire_slow(kind, deadline) {
            Ok(()) => Ok(()),
            Err(Stop::TimedOut | Stop::Unwinding) => {
                crate::deadline::report_timeout();
                Err(TryLockError::WouldBlock)
            }
            Err(stop) => stop_without_error(stop, "green::sync::RwLock", || self.unwinding_message(kind)),
        }
    }

    /// The state, locked; its `writer` is published to the `writer` mirror when unlocked.
    fn lock_state(&self) -> Mirrored<'_, State, impl FnMut(&State) + '_> {
        self.state.lock_mirrored(|state| self.writer.store(state.writer, Ordering::Relaxed))
    }

    /// Queues and parks until the lock is granted (protocol steps 1 to 3).
    fn acquire_slow(&self, kind: Kind, own: Option<Instant>) -> Result<(), Stop> {
        let wait = Wait::new(own);
        let _edge = park::WaitEdge::lock(&self.writer);
        let me = current_id();
        let mut id: Option<u64> = None;
        loop {
            if let Some(stop) = wait.check() {
                if !self.leave(id) {
                    return Err(stop);
                }
                if stop == Stop::Cancelled {
                    self.release(kind);
                    return Err(stop);
                }
                return Ok(());
            }
            let mut granted = false;
            park::wait_sync(
                park::Primitive::RwLock,
                |waiter| {
                    let mut state = self.lock_state();
                    match id {
                        Some(mine) if !state.waiters.contains(mine) => {
                            granted = true;
                            return false;
                        }
                        None if state.can_take(kind) => {
                            state.take(kind, me);
                            granted = true;
                            return false;
                        }
                        _ => {}
                    }
                    state.waiters.enqueue(&mut id, waiter, (kind, me), false);
                    true
                },
                wait.deadline(),
            );
            if granted {
                return Ok(());
            }
        }
    }

    /// Protocol step 3: leaves the queue. True if the lock had been granted: the caller owns it.
    fn leave(&self, id: Option<u64>) -> bool {
        let Some(mine) = id else { return false };
        let mut wakes = Wakes::default();
        let granted = {
            let mut state = self.lock_state();
            let queued = state.waiters.remove(mine).is_some();
            if queued {
                state.grant(&mut wakes);
            }
            !queued
        };
        wakes.wake();
        granted
    }

    fn release(&self, kind: Kind) {
        let mut wakes = Wakes::default();
        {
            let mut state = self.lock_state();
            match kind {
                Kind::Read => state.readers -= 1,
                Kind::Write => state.writer = 0,
            }
            state.grant(&mut wakes);
        }
        wakes.wake();
    }

    fn unwinding_message(&self, kind: Kind) -> String {
        let (readers, writer) = {
            let state = self.lock_state();
            (state.readers, state.writer)
        };
        let holder = if writer != 0 {
            format!("{} holds it for writing", describe_holder(writer))
        } else {
            format!("{readers} reader(s) hold it, or a writer waits before this {kind:?}")
        };
        format!(
            "green: {} tried to lock a green::sync::RwLock for {kind:?} while unwinding, and {holder}. A green \
             thread cannot park while unwinding (its worker would carry the panic to other green threads), \
             and waiting without parking could deadlock its worker. Use try_read / try_write in destructors",
            describe_current()
        )
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.release(Kind::Read);
        release_held(self.holder);
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns the write lock into a read lock without letting go of it, as std's `downgrade`:
    /// no writer can take the lock in between. Readers queued at the front come in with it.
    ///
    /// ```
    /// use green::sync::{RwLock, RwLockWriteGuard};
    ///
    /// green::run(|| {
    ///     let lock = RwLock::new(1);
    ///     let mut w = lock.write().unwrap();
    ///     *w = 2;
    ///     let r = RwLockWriteGuard::downgrade(w);
    ///     assert_eq!(*r, 2);
    ///     assert!(lock.try_read().is_ok()); // other readers too
    ///     assert!(lock.try_write().is_err()); // but no writer yet
    /// });
    /// ```
    pub fn downgrade(s: Self) -> RwLockReadGuard<'a, T> {
        let (lock, holder) = (s.lock, s.holder);
        // The write guard's own release must not run: its lock (and its count in
        // `locks_held`) becomes the read guard's.
        std::mem::forget(s);
        let mut wakes = Wakes::default();
        {
            let mut state = lock.lock_state();
            state.writer = 0;
            state.readers += 1;
            state.grant(&mut wakes);
        }
        wakes.wake();
        RwLockReadGuard { lock, holder, _not_send: PhantomData }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() && !park::is_runtime_unwind() {
            self.lock.poisoned.store(true, Ordering::Relaxed);
        }
        self.lock.release(Kind::Write);
        release_held(self.holder);
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a read guard exists only while the state counts it among `readers`, during
        // which no writer is granted: shared access is sound.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a write guard exists only while its holder is the state's `writer`, which
        // excludes every other guard.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        if self.try_take(Kind::Read) {
            let guard = RwLockReadGuard { lock: self, holder: take_held(), _not_send: PhantomData };
            d.field("data", &&*guard);
        } else {
            d.field("data", &format_args!("<locked>"));
        }
        d.field("poisoned", &self.is_poisoned());
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}
