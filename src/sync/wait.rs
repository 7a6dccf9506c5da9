//! What every blocking operation of `green::sync` does around its wait: the internal lock, the
//! FIFO list of waiters, the checks made before each park, and the wakes made after unlocking.
//!
//! # The shape of a blocking operation
//!
//! 1. [`op`]: one tick of the budget, even when the operation completes at once.
//! 2. A cancellation point ([`crate::park::check_cancelled`]) if the operation is
//!    blocking-looking.
//! 3. A fast attempt.
//! 4. Otherwise a loop: [`Wait::check`] says whether to stop instead of parking (cancelled,
//!    cannot park, deadline passed); [`crate::park::wait_for`] re-checks the condition under the
//!    primitive's internal lock and stores a waiter in a [`WaitList`] before parking; after every
//!    wake the condition decides (wakes may be stale or early).
//! 5. Leaving early (timeout, cancellation) removes the waiter, and hands on whatever was given
//!    to it meanwhile (a lock, permits, a notification), so nothing is lost.
//!
//! Internal locks ([`Lock`]) are spin locks held only to move between states: never across a
//! park, never while running user code, never while waking (wakes are collected in [`Wakes`]
//! and made after unlocking; a channel makes only a wake's atomic transition under its lock,
//! and pushes the woken green thread after it: `park::LockedWaiter`).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::park::{self, Waiter};
use crate::runtime::context;

/// One tick of the budget: every operation of `green::sync` charges it, including those that
/// complete at once, so a hot channel or lock cannot starve its worker.
#[inline]
pub(crate) fn op() {
    crate::coop::tick_op();
}

/// [`op`] for a call that may wait (a cancellation point): true when the call must report its
/// caller's `green::timeout` deadline now, looked at once per budget (64 calls with the default
/// budget; see `deadline::budget_look`): a call that finds its message or its room at once
/// never reaches a wait's look at the deadline. The caller then returns its timeout error, or
/// unwinds ([`crate::deadline::raise`]) if it has none.
#[inline]
pub(crate) fn op_past_deadline() -> bool {
    crate::coop::tick_op_spent() && crate::deadline::budget_look()
}

/// Spins on a held internal lock before yielding the OS thread: a holder keeps it for tens of
/// nanoseconds, so this many rounds (about a microsecond) cover a holder that is running; one
/// that is not (its OS thread was preempted) is waited for with `yield_now` instead.
const SPINS_BEFORE_YIELD: u32 = 64;

/// A primitive's internal lock: a spin lock.
///
/// Held only to move between states: never across a park, never while user code runs, never
/// while waking (wakes are collected in [`Wakes`] and made after unlocking), so a holder is
/// always running and lets go within nanoseconds. Against `std::sync::Mutex` it saves the
/// atomic exchange of every unlock (a plain release store here), about a quarter of the atomic
/// operations of a channel round trip. It has no poisoning: nothing in a locked section panics
/// but the runtime's own invariants.
#[derive(Default)]
pub(crate) struct Lock<T> {
    locked: AtomicBool,
    /// Accessed only through a [`LockGuard`], while `locked` is held.
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one holder at a time (`locked`, taken with
// Acquire and released with Release), so sharing it only moves `T` between threads.
unsafe impl<T: Send> Sync for Lock<T> {}

/// Access to the value of a held [`Lock`]; releases it when dropped.
pub(crate) struct LockGuard<'a, T> {
    lock: &'a Lock<T>,
}

impl<T> Lock<T> {
    pub(crate) const fn new(value: T) -> Lock<T> {
        Lock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            self.lock_contended();
        }
        LockGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < SPINS_BEFORE_YIELD {
                    std::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return;
            }
        }
    }
}

/// A held [`Lock`] that calls `publish` with the value as it is released: for a primitive that
/// keeps a lock-free mirror of part of its state (a channel's `takeable` hint, a `RwLock`'s
/// writer for dumps), so that every locked section, wherever it changes the state, publishes
/// it.
pub(crate) struct Mirrored<'a, T, F: FnMut(&T)> {
    guard: LockGuard<'a, T>,
    publish: F,
}

impl<T> Lock<T> {
    /// Locks, and calls `publish` with the value as the lock is released.
    #[inline]
    pub(crate) fn lock_mirrored<F: FnMut(&T)>(&self, publish: F) -> Mirrored<'_, T, F> {
        Mirrored { guard: self.lock(), publish }
    }
}

impl<T, F: FnMut(&T)> Deref for Mirrored<'_, T, F> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T, F: FnMut(&T)> DerefMut for Mirrored<'_, T, F> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T, F: FnMut(&T)> Drop for Mirrored<'_, T, F> {
    #[inline]
    fn drop(&mut self) {
        (self.publish)(&self.guard);
    }
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while its holder holds `locked`.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only access through the guard.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for LockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

impl<T: fmt::Debug> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("locked", &self.locked.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

/// A waiter in a [`WaitList`], with what the primitive needs to know about it.
#[derive(Debug)]
pub(crate) struct Node<D> {
    /// Unique in its list; the waiting operation finds its node by it.
    pub(crate) id: u64,
    /// Whom to wake. Replaced at every new round of the operation's wait loop.
    pub(crate) waiter: Waiter,
    pub(crate) data: D,
}

/// A FIFO list of waiting operations, under the primitive's internal lock.
///
/// A waiting operation remembers its node's id. The primitives use the node's presence as
/// their protocol: whoever removes a node (a grant, a notification) wakes it, and the woken
/// operation, seeing its node gone, knows it was served.
///
/// Ids grow from the front of the list to its back: a node queued at the back takes the next
/// id up from [`FIRST_BACK_ID`], one queued at the front the next one down from below it. So a
/// node is found by binary search, and a woken operation that looks for its node (every wake
/// does) costs a logarithm of the waiters, not their number: with a linear search, serving
/// 40,000 waiters one by one took over a second.
#[derive(Debug)]
pub(crate) struct WaitList<D> {
    /// In increasing order of id.
    nodes: VecDeque<Node<D>>,
    /// The id of the next node queued at the back.
    next_back: u64,
    /// The id of the next node queued at the front.
    next_front: u64,
}

/// The id of the first node queued at the back of a [`WaitList`]; those queued at the front
/// count down from the one below it. Neither side runs out: a side takes one id per queued
/// operation, and 2^63 of those take centuries.
const FIRST_BACK_ID: u64 = 1 << 63;

impl<D> Default for WaitList<D> {
    fn default() -> Self {
        WaitList::new()
    }
}

impl<D> WaitList<D> {
    pub(crate) const fn new() -> WaitList<D> {
        WaitList { nodes: VecDeque::new(), next_back: FIRST_BACK_ID, next_front: FIRST_BACK_ID - 1 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn front(&self) -> Option<&Node<D>> {
        self.nodes.front()
    }

    pub(crate) fn pop_front(&mut self) -> Option<Node<D>> {
        self.nodes.pop_front()
    }

    /// Where the node `id` is, if it is still there.
    fn position(&self, id: u64) -> Option<usize> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok()
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.position(id).is_some()
    }

    /// Removes the node `id`, if it is still there.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Node<D>> {
        let at = self.position(id)?;
        self.nodes.remove(at)
    }

    /// Stores `waiter` for the operation whose node is `*id`: updates the node if it is still
    /// queued, else queues a new one (at the front when `front`, for an operation that was
    /// served but lost what it was given to a barging one) and sets `*id`.
    pub(crate) fn enqueue(&mut self, id: &mut Option<u64>, waiter: Waiter, data: D, front: bool) {
        if let Some(at) = id.and_then(|current| self.position(current)) {
            self.nodes[at].waiter = waiter;
            return;
        }
        let new = if front {
            let new = self.next_front;
            self.next_front -= 1;
            new
        } else {
            let new = self.next_back;
            self.next_back += 1;
            new
        };
        *id = Some(new);
        let node = Node { id: new, waiter, data };
        if front { self.nodes.push_front(node) } else { self.nodes.push_back(node) }
    }

    /// The nodes, front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Node<D>> + '_ {
        self.nodes.iter()
    }

    /// Removes every node, for a wake of all.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Node<D>> + '_ {
        self.nodes.drain(..)
    }
}

/// Waiters to wake once the internal lock is released. Most operations wake one or two: those
/// are kept inline.
#[derive(Debug, Default)]
pub(crate) struct Wakes {
    first: Option<Waiter>,
    second: Option<Waiter>,
    rest: Vec<Waiter>,
}

impl Wakes {
    #[inline]
    pub(crate) fn push(&mut self, waiter: Waiter) {
        if self.first.is_none() {
            self.first = Some(waiter);
        } else if self.second.is_none() {
            self.second = Some(waiter);
        } else {
            self.rest.push(waiter);
        }
    }

    /// Wakes them all. Call after the internal lock is released.
    #[inline]
    pub(crate) fn wake(&mut self) {
        if let Some(first) = self.first.take() {
            first.wake();
            if let Some(second) = self.second.take() {
                second.wake();
            }
            if !self.rest.is_empty() {
                self.rest.drain(..).for_each(Waiter::wake);
            }
        }
    }
}

/// Longest a green thread that unwinds waits, without parking, for a `Mutex` or `RwLock` whose
/// holders run elsewhere (another worker, an OS thread); its worker is blocked meanwhile. A
/// holder that lets go in microseconds, or unwinds in a shutdown, is waited for; one that needs
/// the blocked worker to let go would hang it for good, and gets the abort instead.
pub(crate) const UNWINDING_WAIT: Duration = Duration::from_secs(5);

/// The first pause of an unwinding lock call between two tries while it waits without parking
/// (`Mutex`, `RwLock`); each next one doubles, up to [`UNWINDING_PAUSE_MAX`]. A critical section
/// elsewhere usually ends within microseconds, and one that does not is looked at again often
/// enough to be seen ending within a millisecond, at most a thousand looks a second from a
/// worker blocked anyway.
pub(crate) const UNWINDING_FIRST_PAUSE: Duration = Duration::from_micros(20);

/// The longest pause of an unwinding lock call between two tries.
pub(crate) const UNWINDING_PAUSE_MAX: Duration = Duration::from_millis(1);

/// Why a blocking operation stops instead of parking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The green thread was cancelled: clean up, then [`unwind_cancelled`].
    Cancelled,
    /// The green thread is unwinding (rule 3 of docs/design.md): it must not park. The operation has
    /// tried once; it returns its error, or aborts where its API has none.
    Unwinding,
    /// The caller runs on a worker's own stack (`green::on_worker_stack`), where no green thread
    /// can park: parking would block the worker.
    WorkerStack,
    /// The operation's own deadline, or the caller's `green::timeout` deadline, has passed.
    TimedOut,
}

/// The deadlines of one blocking operation, and the checks made before each park.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    /// The earlier of the operation's own deadline (`recv_timeout`), if any, and the caller's
    /// `green::timeout` deadline.
    until: Option<Instant>,
    /// The operation can fail (a channel's, a join's): in a cancelled green thread of a
    /// `panic = "abort"` build, which cannot unwind, it stops as when unwinding and gives its
    /// error (rule 7). One that cannot (a lock, a barrier) waits on, as if not cancelled.
    fails_if_cancelled: bool,
}

impl Wait {
    #[inline]
    pub(crate) fn new(own: Option<Instant>) -> Wait {
        // The `green::timeout` deadline cannot unwind a caller that is unwinding already: there
        // it does not count, and an OS thread waits as long as std would (a green thread stops
        // at `Stop::Unwinding` first). Counting it would end an untimed wait with nowhere to go.
        if std::thread::panicking() {
            return Wait { until: own, fails_if_cancelled: false };
        }
        Wait { until: park::effective_deadline(own), fails_if_cancelled: false }
    }

    /// [`Wait::new`] for an operation that can fail, and so fails in a cancelled green thread
    /// that cannot unwind (`panic = "abort"`, rule 7) rather than wait.
    #[inline]
    pub(crate) fn failing(own: Option<Instant>) -> Wait {
        Wait { fails_if_cancelled: true, ..Wait::new(own) }
    }

    /// The deadline to park until.
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// Whether to stop instead of parking (again).
    #[inline]
    pub(crate) fn check(&self) -> Option<Stop> {
        let place: Result<Option<bool>, Stop> = context::with_core(|core| match core {
            // A plain OS thread may block, even while unwinding, as std's primitives do.
            None => Ok(None),
            Some(c) if c.in_green_thread() => Ok(Some(c.current_is_cancelled())),
            Some(_) => Err(Stop::WorkerStack),
        });
        match place {
            Err(stop) => return Some(stop),
            Ok(Some(cancelled)) => {
                if std::thread::panicking() || (self.fails_if_cancelled && park::cancelled_without_unwind()) {
                    return Some(Stop::Unwinding);
                }
                // Where nothing unwinds, a cancellation stops only the waits that can fail.
                if cancelled && !cfg!(panic = "abort") {
                    return Some(Stop::Cancelled);
                }
            }
            Ok(None) => {}
        }
        if self.until.is_some_and(|d| Instant::now() >= d) {
            return Some(Stop::TimedOut);
        }
        None
    }
}

/// Unwinds a cancelled green thread (after its operation has cleaned up).
pub(crate) fn unwind_cancelled() -> ! {
    park::check_cancelled();
    panic!(internal_error!("a cancelled green thread did not unwind"));
}

/// Unwinds to the `green::timeout` whose deadline passed, for an operation whose API has no
/// timeout error (after it has cleaned up).
pub(crate) fn unwind_elapsed() -> ! {
    crate::deadline::raise();
    panic!(internal_error!("an expired deadline did not unwind"));
}

/// The operation's way out when its API has no timeout error: unwinds for [`Stop::Cancelled`]
/// and [`Stop::TimedOut`], panics on a worker's own stack, and aborts while unwinding with
/// `while_unwinding` (a message naming the green threads involved, rule 3 of docs/design.md).
pub(crate) fn stop_without_error(stop: Stop, what: &str, while_unwinding: impl FnOnce() -> String) -> ! {
    match stop {
        Stop::Cancelled => unwind_cancelled(),
        Stop::TimedOut => unwind_elapsed(),
        Stop::WorkerStack => panic!(
            "{what} would block {}, where no green thread can park; call it outside that closure or destructor, or \
             use its try_ form there",
            on_worker_stack_where!()
        ),
        Stop::Unwinding => crate::abort_with(&while_unwinding()),
    }
}

/// `7 "name"` for the running green thread, or `(an OS thread)`.
pub(crate) fn describe_current() -> String {
    context::with_core(|core| core.and_then(|c| c.with_current(|h| h.map(|h| h.describe()))))
        .map_or_else(|| "(an OS thread)".to_owned(), |d| format!("green thread {d}"))
}

/// The running green thread's id, or [`OS_THREAD`] elsewhere: recorded as a lock's holder.
pub(crate) fn current_id() -> u64 {
    context::with_core(|core| core.and_then(|c| c.with_current(|h| h.map(|h| h.id.get())))).unwrap_or(OS_THREAD)
}

/// The running green thread's id where a green lock whose holder cell holds it is held by a
/// guard of its own, which a relock would wait for in vain; [`OS_THREAD`] where that is not
/// known: on an OS thread, or for a green thread that shares `!Send` values with others on its
/// worker (`spawn_local`), which may have been handed the guard and will drop it.
fn relock_id() -> u64 {
    context::with_core(|core| {
        core.and_then(|c| {
            c.with_current(|h| h.filter(|h| !h.shares_locally.load(Ordering::Relaxed)).map(|h| h.id.get()))
        })
    })
    .unwrap_or(OS_THREAD)
}

/// Panics if `holder`, a lock's holder cell (a `Mutex`'s holder, an `RwLock`'s writer), names
/// the running green thread: its wait would be for itself, for good (std leaves a relock
/// unspecified, but it never returns). `lock` names the primitive, `held` how it is held
/// (`" for writing"`). Only the taker writes its own id into the cell, and it cannot read an
/// older value than its own last write, the 0 of its unlock; but a guard it took may have gone
/// to another green thread of its worker, which will drop it: a green thread that shares
/// values that way is not checked ([`relock_id`]). Plain OS threads share one id and are not
/// checked either; nor is an unwinding green thread, which the lock aborts with its own
/// message. Readers of an `RwLock` are not recorded: a reader's relock is not seen.
#[cold]
pub(crate) fn refuse_relock(holder: &AtomicU64, what: &str, lock: &str, held: &str) {
    let me = relock_id();
    if me != OS_THREAD && !std::thread::panicking() && holder.load(Ordering::Relaxed) == me {
        panic!(
            "{what}: {} holds this lock{held} already, and would wait for itself for good. A green {lock} is not \
             re-entrant: drop the guard first, or hand it (or what it derefs to) to the code that needs it",
            describe_current()
        );
    }
}

/// Counts a guard of a green lock that the running green thread takes, in its header's
/// `locks_held`; nothing on a plain OS thread. Returns the taker's id ([`OS_THREAD`] on an OS
/// thread), for the guard to count down with [`release_held`].
#[inline]
pub(crate) fn take_held() -> u64 {
    context::with_core(|core| {
        core.and_then(|c| c.current_header()).map_or(OS_THREAD, |h| {
            // SAFETY: the running green thread's header, alive while it runs.
            let me = unsafe { h.as_ref() };
            count_held(&me.locks_held, 1);
            me.id.get()
        })
    })
}

/// Counts down the guard of a green lock taken by green thread `holder`, if the running
/// green thread is that holder. A guard is not `Send`, but it may still be dropped by another
/// green thread of the same worker (moved through `spawn_local` or an `Rc`), or by the caller of
/// `green::run` it was returned to, when the holder may have finished and its header been freed
/// (and reused): ids, unlike header addresses, are never reused. The holder, if still alive,
/// then only goes on counting as a holder for a shutdown's order.
#[inline]
pub(crate) fn release_held(holder: u64) {
    context::with_core(|core| {
        if let Some(h) = core.and_then(|c| c.current_header()) {
            // SAFETY: the running green thread's header, alive while it runs.
            let me = unsafe { h.as_ref() };
            if me.id.get() == holder {
                count_held(&me.locks_held, -1);
            }
        }
    });
}

/// Adds `delta` to a green thread's `locks_held`, from that green thread (its only writer): a
/// plain load and store, no locked instruction. Never below 0: a guard taken by another green
/// thread and dropped by this one must not make it count as a holder.
#[inline]
pub(crate) fn count_held(held: &AtomicU32, delta: i32) {
    held.store(held.load(Ordering::Relaxed).checked_add_signed(delta).unwrap_or(0), Ordering::Relaxed);
}

/// The holder id of an OS thread (green thread ids start at 1 and never reach it).
pub(crate) const OS_THREAD: u64 = u64::MAX;

/// Describes a holder recorded with [`current_id`].
pub(crate) fn describe_holder(id: u64) -> String {
    match id {
        OS_THREAD => "an OS thread".to_owned(),
        0 => "nobody (it was released meanwhile)".to_owned(),
        id => format!("green thread {id}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sync::{Condvar, Mutex, RwLock, RwLockWriteGuard};

    /// The running green thread's count of held lock guards.
    fn held() -> u32 {
        context::with_core(|core| {
            let h = core.and_then(|c| c.current_header()).expect("run inside a green thread");
            // SAFETY: the running green thread's header, alive while it runs.
            unsafe { h.as_ref() }.locks_held.load(Ordering::Relaxed)
        })
    }

    /// Nodes queued at either end keep the list in order of id, which the binary search that
    /// finds a woken operation's node relies on.
    #[test]
    fn wait_list_ids_grow_from_front_to_back() {
        let me = || park::Waiter::Os(std::thread::current());
        let mut list = WaitList::new();
        let mut ids = Vec::new();
        for front in [false, true, false, true, true, false] {
            let mut id = None;
            list.enqueue(&mut id, me(), (), front);
            ids.push(id.expect("queued"));
        }
        let order: Vec<u64> = list.nodes.iter().map(|n| n.id).collect();
        assert!(order.is_sorted(), "ids out of order: {order:?}");
        assert!(ids.iter().all(|&id| list.contains(id)));
        // Queueing again with a known id updates that node in place.
        let mut again = Some(ids[2]);
        list.enqueue(&mut again, me(), (), true);
        assert_eq!((again, list.len()), (Some(ids[2]), ids.len()));
        assert!(list.remove(ids[2]).is_some() && list.remove(ids[2]).is_none());
        assert!(!list.contains(ids[2]));
        assert!(ids.iter().filter(|&&id| id != ids[2]).all(|&id| list.contains(id)));
    }

    /// Every way to take and let go of a green lock leaves the count where it was.
    #[test]
    fn held_lock_counts_balance() {
        crate::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            let m = Mutex::new(0);
            let g = m.lock().unwrap();
            assert_eq!(held(), 1);
            assert!(m.try_lock().is_err());
            drop(g);
            assert_eq!(held(), 0);
            drop(m.try_lock().unwrap());
            drop(m.try_lock_for(std::time::Duration::from_millis(1)).unwrap());
            let _ = format!("{m:?}");
            assert_eq!(held(), 0);

            // A poisoned lock's guard comes inside the error, and counts the same.
            let poisoned = Arc::new(Mutex::new(0));
            let p2 = poisoned.clone();
            let _ = crate::spawn(move || {
                let _g = p2.lock().unwrap();
                panic!("poison it");
            })
            .join();
            let err = poisoned.lock().unwrap_err();
            assert_eq!(held(), 1);
            drop(err);
            assert_eq!(held(), 0);

            // A condvar wait lets go and takes again.
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let p2 = pair.clone();
            crate::spawn(move || {
                *p2.0.lock().unwrap() = true;
                p2.1.notify_one();
            });
            let mut ready = pair.0.lock().unwrap();
            while !*ready {
                ready = pair.1.wait(ready).unwrap();
            }
            assert_eq!(held(), 1);
            drop(ready);
            assert_eq!(held(), 0);

            let rw = RwLock::new(0);
            let (r1, r2) = (rw.read().unwrap(), rw.try_read().unwrap());
            assert_eq!(held(), 2);
            drop((r1, r2));
            let w = rw.write().unwrap();
            assert_eq!(held(), 1);
            let r = RwLockWriteGuard::downgrade(w);
            assert_eq!(held(), 1);
            drop(r);
            let _ = format!("{rw:?}");
            assert_eq!(held(), 0);
        });
    }

    type Guards = (crate::sync::MutexGuard<'static, u32>, crate::sync::RwLockReadGuard<'static, u32>);

    /// A `Mutex` and an `RwLock`, with a guard of each taken by another green thread of this
    /// worker (through `spawn_local`, which lets the guards out), which has finished.
    fn guards_of_a_finished_green_thread() -> (&'static Mutex<u32>, &'static RwLock<u32>, Guards) {
        use std::cell::RefCell;
        use std::rc::Rc;

        let m: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(0)));
        let rw: &'static RwLock<u32> = Box::leak(Box::new(RwLock::new(0)));
        let slot: Rc<RefCell<Option<Guards>>> = Rc::default();
        let taker = slot.clone();
        crate::spawn_local(move || *taker.borrow_mut() = Some((m.lock().unwrap(), rw.read().unwrap()))).join().unwrap();
        let guards = slot.borrow_mut().take().expect("the taker stored its guards");
        (m, rw, guards)
    }

    /// A guard taken by one green thread and dropped by another (both on one worker) counts
    /// the dropper neither up nor below zero.
    #[test]
    fn a_guard_dropped_by_another_green_thread_leaves_the_dropper_at_zero() {
        crate::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            let (m, rw, guards) = guards_of_a_finished_green_thread();
            assert_eq!(held(), 0);
            drop(guards);
            assert_eq!(held(), 0);
            drop((m.try_lock().unwrap(), rw.try_write().unwrap()));
        });
    }

    /// A guard of another green thread, dropped by one that holds locks of its own, leaves
    /// that one counting them.
    #[test]
    fn a_guard_of_another_green_thread_leaves_the_droppers_own_count() {
        crate::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            let (_, _, guards) = guards_of_a_finished_green_thread();
            let own = RwLock::new(0);
            let mine = own.write().unwrap();
            assert_eq!(held(), 1);
            drop(guards);
            assert_eq!(held(), 1, "the dropper still holds its own lock");
            drop(mine);
            assert_eq!(held(), 0);
        });
    }

    /// A guard whose taker has finished, dropped by a later green thread that got the taker's
    /// header memory back (the task cache hands out the last block freed), leaves that green
    /// thread's own count alone.
    #[test]
    fn a_guard_outliving_its_taker_does_not_count_down_a_green_thread_at_its_address() {
        use std::cell::{Cell, RefCell};
        use std::rc::Rc;

        use crate::sync::MutexGuard;

        fn address() -> usize {
            context::with_core(|core| core.and_then(|c| c.current_header()).map_or(0, |h| h.as_ptr() as usize))
        }

        crate::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            let left: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(0)));
            let own: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(0)));
            let slot: Rc<RefCell<Option<MutexGuard<'static, u32>>>> = Rc::default();
            let taker_at = Rc::new(Cell::new(0));
            let reused = Rc::new(Cell::new(0u32));
            // One closure type for both, so both tasks are of one size class.
            let body = |take: bool,
                        slot: Rc<RefCell<Option<MutexGuard<'static, u32>>>>,
                        taker_at: Rc<Cell<usize>>,
                        reused: Rc<Cell<u32>>| {
                move || {
                    if take {
                        taker_at.set(address());
                        *slot.borrow_mut() = Some(left.lock().unwrap());
                        return 0;
                    }
                    let mine = own.lock().unwrap();
                    if address() == taker_at.get() {
                        reused.set(reused.get() + 1);
                    }
                    drop(slot.borrow_mut().take());
                    let after = held();
                    drop(mine);
                    after
                }
            };
            for _ in 0..20 {
                crate::spawn_local(body(true, slot.clone(), taker_at.clone(), reused.clone())).join().unwrap();
                let after =
                    crate::spawn_local(body(false, slot.clone(), taker_at.clone(), reused.clone())).join().unwrap();
                assert_eq!(after, 1, "the dropper still holds its own lock");
            }
            assert!(reused.get() > 0, "no green thread got its taker's header back: the test proves nothing");
        });
    }
}
