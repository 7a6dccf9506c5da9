//! A mutual exclusion lock that parks green threads.
//!
//! # States
//!
//! One atomic word, two bits:
//!
//! - `0`: free, nobody waits. `lock` takes it with one CAS.
//! - `LOCKED`: held, nobody waits. `unlock` frees it with one CAS.
//! - `LOCKED | QUEUED`: held, and waiters are queued: `unlock` takes the slow path.
//! - `QUEUED`: free, with waiters queued. The first of them was woken and is on its way to
//!   compete for it; a running green thread may barge in first.
//!
//! # Protocol
//!
//! 1. `lock`: CAS `LOCKED` in while it is clear. Otherwise, under the queue's internal lock,
//!    set `QUEUED` (re-checking that the lock is still held: an unlock in between is seen, rule
//!    4 of docs/design.md), queue, park.
//! 2. `unlock` with `QUEUED` set: under the queue lock, pop the first waiter. If it has waited
//!    less than [`MUTEX_HANDOFF_AFTER`], clear `LOCKED` and wake it to compete (*barging*: a
//!    green thread already running takes the lock without a switch, which is what makes a
//!    contended green mutex fast). If it has waited longer, keep `LOCKED` and record the lock
//!    as *granted* to it (*handoff*): nobody can barge, and it owns the lock when it wakes.
//!    Either way `QUEUED` is cleared with the last waiter.
//! 3. A woken waiter finds its grant, or competes; losing, it queues again at the front, with
//!    the time it first queued, so its wait keeps counting toward a handoff.
//! 4. A waiter that leaves (timeout, cancellation) takes its grant if it had one (then unlocks,
//!    if cancelled), or, if it was woken to compete and the lock is free, wakes the next waiter
//!    in its place.
//!
//! This is Go's `sync.Mutex` in spirit (normal mode and starvation mode), with the mode decided
//! per unlock by the first waiter's wait. A waiter waits at most about `MUTEX_HANDOFF_AFTER`
//! beyond its turn at the head of the queue.
//!
//! # Poisoning
//!
//! As std: a guard dropped while its green thread (or OS thread) panics poisons the mutex;
//! [`Mutex::lock`] then returns the guard inside a `PoisonError`. A cancellation or an expired
//! `green::timeout` unwinds without poisoning (see the [module docs](crate::sync)).

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::time::{Duration, Instant};

use crate::park;
use crate::runtime::context;
use crate::sync::wait::{
    Lock, OS_THREAD, Stop, UNWINDING_FIRST_PAUSE, UNWINDING_PAUSE_MAX, UNWINDING_WAIT, Wait, WaitList, count_held,
    describe_current, describe_holder, op, refuse_relock, release_held, stop_without_error,
};

/// How long the first waiter of a [`Mutex`] may wait before an unlock hands the lock straight
/// to it instead of letting running green threads barge in.
///
/// Barging keeps a contended lock fast (the holder relocks without a switch), handoff keeps it
/// fair. Go switches at the same 1 ms; it is long against a critical section (nanoseconds to
/// microseconds) and short against what a user notices.
pub const MUTEX_HANDOFF_AFTER: Duration = Duration::from_millis(1);

/// Rounds of spinning (each a few `pause`s and a try) before a `lock` queues, while the holder
/// runs elsewhere: on another worker, or on an OS thread. About Go's `sync.Mutex` budget
/// (4 rounds of 30 pauses): a critical section of a green mutex takes nanoseconds, and the
/// park and wake it saves cost microseconds across CPUs. Never spent when the holder shares the
/// caller's worker: it cannot run while the caller spins.
const SPIN_ROUNDS: u32 = 32;

/// Marks an OS thread (or no worker) in `holder_worker`.
const NO_WORKER: usize = usize::MAX;

const LOCKED: u32 = 1;
const QUEUED: u32 = 2;

/// The waiters, under the internal lock.
#[derive(Debug)]
struct Queue {
    /// Waiting `lock` calls, with the time each first queued.
    waiters: WaitList<Instant>,
    /// The waiter the lock was handed to (step 2), until it takes it.
    granted: Option<u64>,
}

/// A mutual exclusion lock, like [`std::sync::Mutex`], that parks the green thread waiting for
/// it instead of blocking its worker. Plain OS threads may use it too; they block.
///
/// ```
/// use std::sync::Arc;
/// use green::sync::Mutex;
///
/// let total = green::run(|| {
///     let counter = Arc::new(Mutex::new(0));
///     let handles: Vec<_> = (0..10)
///         .map(|_| {
///             let counter = counter.clone();
///             green::spawn(move || {
///                 for _ in 0..100 {
///                     *counter.lock().unwrap() += 1;
///                 }
///             })
///         })
///         .collect();
///     handles.into_iter().for_each(|h| h.join().unwrap());
///     *counter.lock().unwrap()
/// });
/// assert_eq!(total, 1000);
/// ```
///
/// Unlike a `std::sync::Mutex`, a guard may be held across a park (a `sleep`, a `recv`, another
/// lock): the green threads waiting for it park too.
///
/// See the [module docs](crate::sync) for cancellation, deadlines, unwinding and fairness.
pub struct Mutex<T: ?Sized> {
    /// `LOCKED` and `QUEUED`; see the module docs.
    state: AtomicU32,
    /// Set by a guard dropped during a panic.
    poisoned: AtomicBool,
    /// Who holds the lock: its green thread id, `OS_THREAD`, or 0 when free. For the message
    /// of an abort, and the wait-for edges of dumps (`park::WaitEdge`).
    holder: AtomicU64,
    /// The worker the holder runs on (its `Core::uid`, unique across runtimes), [`NO_WORKER`]
    /// for an OS thread: whether spinning, or an unwinding caller's wait, can help.
    holder_worker: AtomicUsize,
    /// The waiters. Touched by `lock` and `unlock` only on their slow paths.
    queue: Lock<Queue>,
    /// Accessed only by the holder of `LOCKED`, through a guard.
    data: UnsafeCell<T>,
}

// Poisoning tells the next user about a panic inside, as std's does.
impl<T: ?Sized> UnwindSafe for Mutex<T> {}
impl<T: ?Sized> RefUnwindSafe for Mutex<T> {}

// SAFETY: the mutex hands out access to `data` to one holder at a time (`LOCKED`, acquired with
// `Acquire` and released with `Release`), so sharing it between threads only moves `T` between
// them: `T: Send` suffices, as for std's `Mutex`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// The holder's access to a [`Mutex`]; the lock is released when it is dropped.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Whether the holder was already unwinding when it locked (std's rule: only a panic that
    /// starts while the guard is held poisons).
    panicking: bool,
    /// Like std's guard: not `Send`.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard gives only `&T`, which may be shared when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    /// A new unlocked mutex.
    ///
    /// ```
    /// static LOG: green::sync::Mutex<Vec<String>> = green::sync::Mutex::new(Vec::new());
    /// LOG.lock().unwrap().push("hello".into());
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU32::new(0),
            poisoned: AtomicBool::new(false),
            holder: AtomicU64::new(0),
            holder_worker: AtomicUsize::new(NO_WORKER),
            queue: Lock::new(Queue { waiters: WaitList::new(), granted: None }),
            data: UnsafeCell::new(value),
        }
    }

    /// The protected value, consuming the mutex.
    ///
    /// ```
    /// let m = green::sync::Mutex::new(5);
    /// assert_eq!(m.into_inner().unwrap(), 5);
    /// ```
    ///
    /// # Errors
    ///
    /// If the mutex is poisoned, the value comes inside the error.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poisoned.load(Ordering::Relaxed);
        let value = self.data.into_inner();
        if poisoned { Err(PoisonError::new(value)) } else { Ok(value) }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the green thread (or blocking the OS thread) until it is free.
    ///
    /// A cancellation point, even when the lock is free. Inside [`crate::timeout`], a wait past
    /// the deadline unwinds to it (use [`Mutex::try_lock_for`] for an error instead).
    ///
    /// A green thread that is unwinding cannot park
    /// ([while unwinding](crate::sync#while-unwinding)). If it has to wait for a holder on
    /// another worker or an OS thread, it blocks its worker until the lock is free, for up to
    /// 5 s; if the holder runs on its own worker (which cannot run it meanwhile), or the wait
    /// runs out, it aborts the process, naming itself and the holder.
    /// A shutdown cancels the green threads that hold green locks before the others, so that a
    /// destructor that locks finds the lock free. In destructors that may run during a
    /// cancellation, prefer [`Mutex::try_lock`], or keep the lock free of waits (no I/O while
    /// holding it).
    ///
    /// # Errors
    ///
    /// If the mutex is poisoned (a holder panicked), with the guard inside the error.
    ///
    /// # Panics
    ///
    /// If the calling green thread holds the mutex already: it is not re-entrant, and the wait
    /// would never end (std leaves a relock unspecified; it never returns). On a plain OS thread
    /// a relock waits for good, as std's may; so does one by a green thread that shares values
    /// through [`spawn_local`](crate::spawn_local), whose guard may be another's to drop now.
    ///
    /// ```
    /// let m = green::sync::Mutex::new(vec![1]);
    /// m.lock().unwrap().push(2);
    /// assert_eq!(*m.lock().unwrap(), [1, 2]);
    /// ```
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.lock_as("green::sync::Mutex::lock", || self.unwinding_message())
    }

    /// [`lock`](Mutex::lock) for a primitive built on this mutex: where the wait cannot happen,
    /// the panic names `what` and the abort says `while_unwinding()`.
    #[inline]
    pub(crate) fn lock_as(
        &self,
        what: &str,
        while_unwinding: impl FnOnce() -> String,
    ) -> LockResult<MutexGuard<'_, T>> {
        op();
        park::check_cancelled();
        if !self.try_acquire() {
            refuse_relock(&self.holder, what, "Mutex", "");
            if let Err(stop) = self.acquire_slow(None)
                && !(stop == Stop::Unwinding && self.acquire_unwinding())
            {
                stop_without_error(stop, what, while_unwinding);
            }
        }
        self.guard()
    }

    /// Takes the lock for a green thread that unwinds, which cannot park (rule 3): if the
    /// holder runs elsewhere, blocks the worker until it lets go, for at most
    /// [`UNWINDING_WAIT`]; a lock handed to a waiter that has not taken it yet is taken from
    /// it ([`Mutex::take_grant`]). False if the holder shares this worker (it cannot run while
    /// the caller waits) or the wait ran out.
    #[cold]
    fn acquire_unwinding(&self) -> bool {
        let mine = context::with_core(|core| core.map_or(NO_WORKER, |c| c.uid));
        let start = Instant::now();
        let mut pause = UNWINDING_FIRST_PAUSE;
        loop {
            if self.try_acquire() || self.take_grant() {
                return true;
            }
            // Read after a failed try: a holder that has just taken the lock may not have
            // recorded its worker yet, and shows the last one's; the next round sees it.
            if mine != NO_WORKER && self.holder_worker.load(Ordering::Relaxed) == mine
                || start.elapsed() >= UNWINDING_WAIT
            {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(UNWINDING_PAUSE_MAX);
        }
    }

    /// For a green thread that unwinds: takes the lock from the waiter an unlock handed it to
    /// (protocol step 2, handoff) if that one has not taken it yet. Such a lock has no running
    /// holder to wait for, only a woken waiter that may share the caller's worker and then
    /// cannot run while the caller waits. The waiter, when it runs, finds no grant and queues
    /// again at the front (step 3), or leaves without the lock (step 4). True if taken.
    #[cold]
    fn take_grant(&self) -> bool {
        if self.queue.lock().granted.take().is_none() {
            return false;
        }
        // `LOCKED` stayed set for the grant: the lock is the caller's now.
        self.set_holder();
        true
    }

    /// Locks the mutex if it is free now.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if it is held; `Poisoned` (with the guard) if a holder panicked.
    ///
    /// ```
    /// use green::sync::{Mutex, TryLockError};
    /// let m = Mutex::new(1);
    /// let held = m.lock().unwrap();
    /// assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(held);
    /// assert_eq!(*m.try_lock().unwrap(), 1);
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        op();
        if self.try_acquire() { Ok(self.guard()?) } else { Err(TryLockError::WouldBlock) }
    }

    /// Locks the mutex, waiting at most `timeout`.
    ///
    /// A cancellation point. Inside [`crate::timeout`] it fails at the deadline if that comes
    /// first.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the lock could not be had in time (or at once, while unwinding);
    /// `Poisoned` (with the guard) if a holder panicked.
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::sync::{Mutex, TryLockError};
    /// green::run(|| {
    ///     let m = Mutex::new(());
    ///     let _held = m.lock().unwrap();
    ///     let again = m.try_lock_for(Duration::from_millis(5));
    ///     assert!(matches!(again, Err(TryLockError::WouldBlock)));
    /// });
    /// ```
    pub fn try_lock_for(&self, timeout: Duration) -> TryLockResult<MutexGuard<'_, T>> {
        self.try_lock_deadline(Instant::now().checked_add(timeout))
    }

    /// Locks the mutex, waiting until `deadline` at the latest; see [`Mutex::try_lock_for`].
    ///
    /// # Errors
    ///
    /// As for [`Mutex::try_lock_for`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let m = green::sync::Mutex::new(3);
    /// let guard = m.try_lock_until(Instant::now() + Duration::from_millis(5)).unwrap();
    /// assert_eq!(*guard, 3);
    /// ```
    pub fn try_lock_until(&self, deadline: Instant) -> TryLockResult<MutexGuard<'_, T>> {
        self.try_lock_deadline(Some(deadline))
    }

    fn try_lock_deadline(&self, deadline: Option<Instant>) -> TryLockResult<MutexGuard<'_, T>> {
        op();
        park::check_cancelled();
        if !self.try_acquire() {
            match self.acquire_slow(deadline) {
                Ok(()) => {}
                Err(Stop::TimedOut | Stop::Unwinding) => {
                    crate::deadline::report_timeout();
                    return Err(TryLockError::WouldBlock);
                }
                Err(stop) => stop_without_error(stop, "green::sync::Mutex::try_lock_for", || self.unwinding_message()),
            }
        }
        Ok(self.guard()?)
    }

    /// True if a holder panicked. Another thread may poison it right after this returns.
    ///
    /// ```
    /// let m = green::sync::Mutex::new(0);
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Relaxed)
    }

    /// Clears the poisoned state.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let m = Arc::new(green::sync::Mutex::new(0));
    /// let m2 = m.clone();
    /// let _ = std::thread::spawn(move || {
    ///     let _guard = m2.lock().unwrap();
    ///     panic!("poison it");
    /// })
    /// .join();
    /// assert!(m.is_poisoned());
    /// m.clear_poison();
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn clear_poison(&self) {
        self.poisoned.store(false, Ordering::Relaxed);
    }

    /// A mutable reference to the value; no locking is needed, the borrow proves exclusivity.
    ///
    /// # Errors
    ///
    /// If the mutex is poisoned, the reference comes inside the error.
    ///
    /// ```
    /// let mut m = green::sync::Mutex::new(1);
    /// *m.get_mut().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poisoned.load(Ordering::Relaxed);
        let value = self.data.get_mut();
        if poisoned { Err(PoisonError::new(value)) } else { Ok(value) }
    }

    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let guard = MutexGuard::new(self);
        if self.poisoned.load(Ordering::Relaxed) { Err(PoisonError::new(guard)) } else { Ok(guard) }
    }

    /// Takes the lock if it is free (protocol step 1, the fast part).
    #[inline]
    fn try_acquire(&self) -> bool {
        let acquired = self.state.compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_ok() || {
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                if s & LOCKED != 0 {
                    break false;
                }
                match self.state.compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => break true,
                    Err(actual) => s = actual,
                }
            }
        };
        if acquired {
            self.set_holder();
        }
        acquired
    }

    /// Records who holds the lock, and where it runs; counts it in a green holder's
    /// `Header::locks_held`.
    #[inline]
    fn set_holder(&self) {
        let (id, worker) = context::with_core(|core| match core {
            Some(c) => {
                let id = c.with_current(|h| match h {
                    Some(h) => {
                        count_held(&h.locks_held, 1);
                        h.id.get()
                    }
                    None => OS_THREAD,
                });
                (id, c.uid)
            }
            None => (OS_THREAD, NO_WORKER),
        });
        self.holder.store(id, Ordering::Relaxed);
        self.holder_worker.store(worker, Ordering::Relaxed);
    }

    /// Spins while the holder runs elsewhere (see [`SPIN_ROUNDS`]); true if the lock was taken.
    fn spin(&self) -> bool {
        let mine = context::with_core(|core| core.map_or(NO_WORKER, |c| c.uid));
        for _ in 0..SPIN_ROUNDS {
            if mine != NO_WORKER && self.holder_worker.load(Ordering::Relaxed) == mine {
                return false;
            }
            for _ in 0..8 {
                std::hint::spin_loop();
            }
            if self.state.load(Ordering::Relaxed) & LOCKED == 0 && self.try_acquire() {
                return true;
            }
        }
        false
    }

    /// Under the queue lock: takes the lock if it is free, else makes sure the holder's unlock
    /// will look at the queue (sets `QUEUED`). True if taken.
    fn try_acquire_or_flag(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let (next, take) = if s & LOCKED == 0 {
                (s | LOCKED, true)
            } else if s & QUEUED == 0 {
                (s | QUEUED, false)
            } else {
                return false;
            };
            match self.state.compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return take,
                Err(actual) => s = actual,
            }
        }
    }

    /// Protocol steps 1 and 3: queue, park, take the grant or compete, until the lock is ours.
    fn acquire_slow(&self, own: Option<Instant>) -> Result<(), Stop> {
        if self.spin() {
            return Ok(());
        }
        let wait = Wait::new(own);
        let _edge = park::WaitEdge::lock(&self.holder);
        // Our node, once queued; when it is gone we were woken (or granted the lock).
        let mut id: Option<u64> = None;
        // When we first queued, for the handoff rule.
        let mut since: Option<Instant> = None;
        loop {
            if let Some(stop) = wait.check() {
                if !self.leave(id) {
                    return Err(stop);
                }
                // The lock was handed to us as we left.
                self.set_holder();
                if stop == Stop::Cancelled {
                    self.unlock();
                    return Err(stop);
                }
                return Ok(());
            }
            let mut acquired = false;
            park::wait_sync(
                park::Primitive::Mutex,
                |waiter| {
                    let mut q = self.queue.lock();
                    if id.is_some() && q.granted == id {
                        q.granted = None;
                        acquired = true;
                        return false;
                    }
                    let queued = id.is_some_and(|mine| q.waiters.contains(mine));
                    if self.try_acquire_or_flag() {
                        if let Some(mine) = id.filter(|_| queued) {
                            q.waiters.remove(mine);
                        }
                        if q.waiters.is_empty() {
                            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
                        }
                        acquired = true;
                        return false;
                    }
                    // Woken to compete and beaten to it: back to the front of the queue.
                    let front = id.is_some() && !queued;
                    let since = *since.get_or_insert_with(Instant::now);
                    q.waiters.enqueue(&mut id, waiter, since, front);
                    true
                },
                wait.deadline(),
            );
            if acquired {
                self.set_holder();
                return Ok(());
            }
        }
    }

    /// Protocol step 4: a waiter leaves. True if the lock had been handed to it: it owns it.
    fn leave(&self, id: Option<u64>) -> bool {
        let Some(mine) = id else { return false };
        let next = {
            let mut q = self.queue.lock();
            if q.granted == Some(mine) {
                q.granted = None;
                return true;
            }
            if q.waiters.remove(mine).is_some() || self.state.load(Ordering::Acquire) & LOCKED != 0 {
                None
            } else {
                // We were woken to take the free lock and leave instead: wake the next waiter.
                q.waiters.pop_front().map(|node| node.waiter)
            }
        };
        if let Some(next) = next {
            next.wake();
        }
        false
    }

    /// Releases the lock (protocol step 2).
    #[inline]
    fn unlock(&self) {
        // By id, never by the holder's header: the guard may be dropped by another green thread
        // than the one that took it (moved through `spawn_local` or an `Rc`, or out of
        // `green::run` to its caller), after that one has finished and its header was freed,
        // maybe for the dropper's own.
        let holder = self.holder.load(Ordering::Relaxed);
        if holder != OS_THREAD && holder != 0 {
            release_held(holder);
        }
        self.holder.store(0, Ordering::Relaxed);
        self.holder_worker.store(NO_WORKER, Ordering::Relaxed);
        if self.state.compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed).is_err() {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let woken = {
            let mut q = self.queue.lock();
            match q.waiters.pop_front() {
                None => {
                    self.state.fetch_and(!(LOCKED | QUEUED), Ordering::Release);
                    None
                }
                Some(node) => {
                    let last = if q.waiters.is_empty() { QUEUED } else { 0 };
                    if node.data.elapsed() >= MUTEX_HANDOFF_AFTER {
                        // Handoff: the lock stays held, now by the waiter.
                        q.granted = Some(node.id);
                        self.state.fetch_and(!last, Ordering::Release);
                    } else {
                        // Barging allowed: free it, the waiter competes.
                        self.state.fetch_and(!(LOCKED | last), Ordering::Release);
                    }
                    Some(node.waiter)
                }
            }
        };
        if let Some(waiter) = woken {
            waiter.wake();
        }
    }

    fn unwinding_message(&self) -> String {
        format!(
            "green: {} tried to lock a green::sync::Mutex while unwinding, and {} holds it. A green thread \
             cannot park while unwinding (its worker would carry the panic to other green threads); it waits \
             without parking (blocking its worker) for a holder on another worker or an OS thread, up to {} s, \
             but a holder on its own worker cannot run meanwhile. Use try_lock in destructors, or make sure \
             the lock is free before a panic or a cancellation can happen (a shutdown cancels lock holders \
             first)",
            describe_current(),
            describe_holder(self.holder.load(Ordering::Relaxed)),
            UNWINDING_WAIT.as_secs()
        )
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The guard of `mutex`, which the caller has just taken.
    fn new(mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        MutexGuard { mutex, panicking: std::thread::panicking(), _not_send: PhantomData }
    }

    /// The mutex this guard holds.
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        if !self.panicking && std::thread::panicking() && !park::is_runtime_unwind() {
            self.mutex.poisoned.store(true, Ordering::Relaxed);
        }
        self.mutex.unlock();
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its holder holds `LOCKED`, which gives it
        // exclusive access to `data`.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        if self.try_acquire() {
            let guard = MutexGuard::new(self);
            d.field("data", &&*guard);
        } else {
            d.field("data", &format_args!("<locked>"));
        }
        d.field("poisoned", &self.is_poisoned());
        d.finish_non_exhaustive()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}
