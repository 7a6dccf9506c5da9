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
//! # While unwinding
//!
//! A green thread that unwinds cannot park (rule 3 of docs/design.md). Its `read` or `write`
//! that cannot take the lock at once waits without parking, blocking its worker
//! (`acquire_unwinding`), while every holder may run elsewhere (an OS thread, another worker),
//! for at most [`UNWINDING_WAIT`]:
//!
//! 1. Under the internal lock: if its node is gone, the lock was granted to it. Else, if the
//!    lock is free for it, it takes it *even though others are queued* (a read beside readers
//!    while a writer waits; exclusion holds: only a writer's absence is needed for a read, and
//!    a write needs the lock free). Else it queues at the *front*, once: the releases that
//!    follow grant it the lock before anyone queued (a reader that keeps re-reading on an OS
//!    thread queues behind it, instead of keeping it out for good).
//! 2. Outside the lock, it looks for a holder that cannot run while its worker is blocked:
//!    a green thread of its own worker. A writer is known by id; readers are not recorded, so
//!    for them the test is conservative (`holder_here`). If one may be there, it leaves the
//!    queue and aborts at once.
//! 3. Past the bound it leaves the queue and aborts; otherwise it pauses briefly, and goes
//!    back to 1. The abort message names the state found in the last round.
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

use crate::park::{self, Waiter};
use crate::runtime::context;
use crate::runtime::task::Header;
use crate::sync::wait::{
    Lock, Mirrored, OS_THREAD, Stop, UNWINDING_FIRST_PAUSE, UNWINDING_PAUSE_MAX, UNWINDING_WAIT, Wait, WaitList, Wakes,
    current_id, describe_current, describe_holder, op, refuse_relock, release_held, stop_without_error, take_held,
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
    /// Whether the holders let a `kind` in: no writer, and for a write no readers either.
    fn free_for(&self, kind: Kind) -> bool {
        self.writer == 0
            && match kind {
                Kind::Read => true,
                Kind::Write => self.readers == 0,
            }
    }

    /// Protocol step 1: free for `kind`, and nobody queued.
    fn can_take(&self, kind: Kind) -> bool {
        self.waiters.is_empty() && self.free_for(kind)
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
            if !self.free_for(kind) {
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
/// unwinding and would have to wait cannot park: its timed forms fail, and its `read` and
/// `write` block its worker until they get the lock, for up to 5 s, while the holders may all
/// run elsewhere (OS threads, other workers). They abort the process, naming the green thread
/// and the lock's state, past the 5 s or at once if a holder may be a green thread of its own
/// worker, which cannot run meanwhile (see the [module docs](crate::sync#while-unwinding)).
/// Readers are not recorded: while readers hold the lock, any other green thread of the
/// worker that holds a green lock guard counts as one that may be among them.
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
                let gave_up = match stop {
                    Stop::Unwinding => match self.acquire_unwinding(kind) {
                        Ok(()) => return,
                        Err(gave_up) => Some(gave_up),
                    },
                    _ => None,
                };
                stop_without_error(stop, what, || match gave_up {
                    Some(gave_up) => gave_up.message(kind),
                    None => internal_error!("a green::sync::RwLock gave up while unwinding without a reason").into(),
                });
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
            Err(stop) => stop_without_error(stop, "green::sync::RwLock", || {
                internal_error!("a timed green::sync::RwLock lock aborted while unwinding").into()
            }),
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

    /// Takes the lock for a green thread that unwinds, which cannot park: blocks the worker
    /// until the lock is granted or free, for at most [`UNWINDING_WAIT`] (the module docs,
    /// "While unwinding"). `Err` says why it gave up; it has left the queue then.
    #[cold]
    fn acquire_unwinding(&self, kind: Kind) -> Result<(), GaveUp> {
        let task = context::with_core(|core| core.and_then(|c| c.current()))
            .expect(internal_error!("an unwinding green::sync::RwLock wait outside a green thread"));
        let me = task.header();
        // The waiter a release wakes as it grants us the lock (protocol step 2). Its wake only
        // marks us notified, since we never park; `end_wait` makes it stale when we are done.
        let mut waiter = Some(Waiter::Green { seq: me.begin_wait(), task: task.clone() });
        let mut id: Option<u64> = None;
        let start = Instant::now();
        let mut pause = UNWINDING_FIRST_PAUSE;
        // The holders last found not to be on this worker: a writer's id, or readers (`Some(0)`).
        // What `holder_here` looks at stays as it was while we block the worker (the green
        // threads it reads cannot run), so a holder already looked for is not looked for again.
        let mut cleared: Option<u64> = None;
        let outcome = loop {
            // Step 1: granted, free for us, or queued at the front.
            let mut wakes = Wakes::default();
            let seen = {
                let mut state = self.lock_state();
                let granted = id.is_some_and(|mine| !state.waiters.contains(mine));
                let free = !granted && state.free_for(kind);
                if free {
                    state.take(kind, me.id.get());
                    if let Some(mine) = id {
                        // Our node at the front may have held back readers behind it.
                        state.waiters.remove(mine);
                        state.grant(&mut wakes);
                    }
                } else if !granted && let Some(waiter) = waiter.take() {
                    state.waiters.enqueue(&mut id, waiter, (kind, me.id.get()), true);
                }
                (granted || free).then_some(()).ok_or((state.readers, state.writer))
            };
            wakes.wake();
            let Err((readers, writer)) = seen else { break Ok(()) };
            // Step 2, then 3.
            let why = match (cleared != Some(writer)).then(|| self.holder_here(me, kind, readers, writer)) {
                Some(Some(why)) => Some(why),
                _ if start.elapsed() >= UNWINDING_WAIT => Some(Why::TimedOut),
                _ => {
                    cleared = Some(writer);
                    None
                }
            };
            if let Some(why) = why {
                // A grant that came meanwhile is ours to keep.
                break if self.leave(id) { Ok(()) } else { Err(GaveUp { readers, writer, why }) };
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(UNWINDING_PAUSE_MAX);
        };
        me.end_wait();
        outcome
    }

    /// Whether a holder of the lock, seen held by `readers` and `writer` when the unwinding
    /// green thread `me` could not take it for `kind`, may be a green thread of `me`'s worker,
    /// which cannot run while `me` blocks that worker: why, if so.
    ///
    /// A writer is known by id: `me` itself, an OS thread, or a green thread we look for among
    /// the worker's. Readers are not recorded (that would cost every `read`), so for them the
    /// test is conservative, on what the worker's green threads show. Every green thread that
    /// holds a read guard of this lock on this worker is one of:
    ///
    /// - one that took it at once, or was granted it and has run since: it counts it in its
    ///   `locks_held` from the moment its `read` returns (no switch comes between the lock
    ///   call's end and the count) until its drop. Started and suspended (parked or ready), it
    ///   is among the worker's green threads;
    /// - one granted it while it waited, parked or woken but not yet run: it is suspended in
    ///   `acquire_slow` with its `waits_for_lock` on this lock's holder cell (it parks only
    ///   after queueing), and its node is gone from the queue. A queued one is not a holder,
    ///   and cannot become one while `me` waits: `me` queued at the front first, and a writer
    ///   is granted after `me` only (a reader granted with `me` lets `me` in too);
    /// - one holding a guard another green thread of this worker took and passed on
    ///   (`spawn_local`, which keeps both on this worker), started or not: the taker still
    ///   counts it, and is either among the worker's green threads, or `me` itself, which then
    ///   shares values with others (`shares_locally`). A guard whose taker has finished counts
    ///   nowhere: such a holder is missed, and the wait's bound ends it.
    ///
    /// An unstarted green thread has taken nothing. `me`'s own guards count only when it
    /// shares values: otherwise they are its own to drop, which it does after this call, and a
    /// read guard of this very lock that `me` holds while it asks to write would wait for itself,
    /// for good as with std, here until the bound.
    fn holder_here(&self, me: &Header, kind: Kind, readers: usize, writer: u64) -> Option<Why> {
        let here = |found: &mut dyn FnMut(&Header) -> Option<Why>| {
            context::with_core(|core| core.and_then(|c| c.find_other_green_thread(found)))
        };
        if writer != 0 {
            return if writer == me.id.get() {
                Some(Why::Itself)
            } else if writer == OS_THREAD {
                None
            } else {
                here(&mut |other| (other.id.get() == writer).then_some(Why::WriterHere))
            };
        }
        debug_assert!(kind == Kind::Write && readers > 0, "free for {kind:?}, with {readers} reader(s)");
        if me.shares_locally.load(Ordering::Relaxed) && me.locks_held.load(Ordering::Relaxed) > 0 {
            return Some(Why::SharesGuards);
        }
        let cell = std::ptr::from_ref(&self.writer).cast_mut();
        here(&mut |other| {
            if other.locks_held.load(Ordering::Relaxed) > 0 {
                Some(Why::GuardsHere(other.describe()))
            } else if other.waits_for_lock.load(Ordering::Relaxed) == cell && !self.queued(other.id.get()) {
                Some(Why::GrantedHere(other.describe()))
            } else {
                None
            }
        })
    }

    /// Whether green thread `id` waits in the queue.
    fn queued(&self, id: u64) -> bool {
        self.lock_state().waiters.iter().any(|node| node.data.1 == id)
    }
}

/// Why an unwinding `read` or `write` gave up, and the state it found then.
#[derive(Debug)]
struct GaveUp {
    readers: usize,
    writer: u64,
    why: Why,
}

/// What made an unwinding `read` or `write` give up.
#[derive(Debug)]
enum Why {
    /// The caller holds the lock for writing itself.
    Itself,
    /// The writer is a green thread of the caller's worker.
    WriterHere,
    /// Readers hold it, and this green thread of the caller's worker holds green lock guards.
    GuardsHere(String),
    /// Readers hold it, and this green thread of the caller's worker was granted a read.
    GrantedHere(String),
    /// Readers hold it, and the caller holds green lock guards and shares values with other
    /// green threads of its worker, to which it may have passed one of this lock.
    SharesGuards,
    /// The holders did not let go within [`UNWINDING_WAIT`].
    TimedOut,
}

impl GaveUp {
    /// The abort message, naming the caller, the state it found, and why it gave up.
    fn message(&self, kind: Kind) -> String {
        let held = if self.writer != 0 {
            format!("{} holds it for writing", describe_holder(self.writer))
        } else {
            format!("{} reader(s) hold it", self.readers)
        };
        let why = match &self.why {
            Why::Itself => " itself".to_owned(),
            Why::WriterHere => " on its own worker, which cannot run it meanwhile".to_owned(),
            Why::GuardsHere(other) => format!(
                "; green thread {other} of its own worker, which cannot run meanwhile, holds green lock guards \
                 and may be one of them"
            ),
            Why::GrantedHere(other) => format!(
                "; green thread {other} of its own worker, which cannot run meanwhile, is one of them (granted \
                 the lock while it waited)"
            ),
            Why::SharesGuards => "; it holds green lock guards itself and shares values with other green threads \
                                  of its worker (spawn_local), which cannot run meanwhile and may hold one of this \
                                  lock"
                .to_owned(),
            Why::TimedOut => format!("; it was not let go within {} s", UNWINDING_WAIT.as_secs()),
        };
        let kind = match kind {
            Kind::Read => "reading",
            Kind::Write => "writing",
        };
        format!(
            "green: {} tried to lock a green::sync::RwLock for {kind} while unwinding, and {held}{why}. A green \
             thread cannot park while unwinding (its worker would carry the panic to other green threads); it \
             waits without parking (blocking its worker) for holders on other workers or OS threads, up to {} s, \
             but a holder on its own worker cannot run meanwhile. Use try_read / try_write in destructors, or make \
             sure the lock is free before a panic or a cancellation can happen (a shutdown cancels lock holders \
             first)",
            describe_current(),
            UNWINDING_WAIT.as_secs()
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
