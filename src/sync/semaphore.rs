//! A counting semaphore, fair by a FIFO queue with handoff.
//!
//! # Protocol (under the internal lock)
//!
//! 1. `acquire(n)` takes `n` permits at once only if nobody is queued and enough are free;
//!    otherwise it queues with `n` and parks.
//! 2. Releasing permits (a dropped [`SemaphorePermit`], [`Semaphore::add_permits`]) grants them
//!    to the front of the queue, in order, for as long as the front's request can be met; a
//!    request larger than what is free holds back the smaller ones behind it, so a large
//!    request never starves. Granted waiters are removed and own their permits when they wake.
//! 3. A waiter that leaves (timeout, cancellation) and finds its node gone owns its permits: it
//!    keeps them (timeout) or gives them back (cancellation). One still queued removes itself
//!    and grants again, since it may have held back smaller requests.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::park;
use crate::sync::wait::{Lock, Stop, Wait, WaitList, Wakes, describe_current, op, stop_without_error};

/// The semaphore's state, under the internal lock.
#[derive(Debug)]
struct State {
    /// Permits free now.
    permits: usize,
    /// Waiting `acquire` calls with the number of permits each wants.
    waiters: WaitList<usize>,
}

impl State {
    /// Protocol step 2.
    fn grant(&mut self, wakes: &mut Wakes) {
        while let Some(&wanted) = self.waiters.front().map(|n| &n.data) {
            if wanted > self.permits {
                break;
            }
            self.permits -= wanted;
            wakes.push(
                self.waiters
                    .pop_front()
                    .expect(internal_error!("a green::sync::Semaphore waiter seen a moment ago is gone"))
                    .waiter,
            );
        }
    }
}

/// A counting semaphore: a pool of permits that green threads (and OS threads) acquire and
/// give back, waiting by parking while too few are free. Waiters are served first in, first
/// out.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use green::sync::Semaphore;
///
/// green::run(|| {
///     let limit = Arc::new(Semaphore::new(3)); // at most 3 at a time
///     let inside = Arc::new(AtomicUsize::new(0));
///     let handles: Vec<_> = (0..10)
///         .map(|_| {
///             let (limit, inside) = (limit.clone(), inside.clone());
///             green::spawn(move || {
///                 let _permit = limit.acquire();
///                 assert!(inside.fetch_add(1, Ordering::SeqCst) < 3);
///                 green::sleep(std::time::Duration::from_millis(1));
///                 inside.fetch_sub(1, Ordering::SeqCst);
///             })
///         })
///         .collect();
///     handles.into_iter().for_each(|h| h.join().unwrap());
/// });
/// ```
///
/// `acquire` and its timed forms are cancellation points. Inside [`crate::timeout`], `acquire`
/// unwinds to it at the deadline; the timed forms return `None`. A green thread that is
/// unwinding and would have to wait aborts in `acquire` and gets `None` from the timed forms
/// (see the [module docs](crate::sync)).
pub struct Semaphore {
    state: Lock<State>,
}

// A panic cannot leave it half-changed for the next user, as for std's.
impl UnwindSafe for Semaphore {}
impl RefUnwindSafe for Semaphore {}

/// Permits acquired from a [`Semaphore`]; given back when dropped.
///
/// A permit borrows its semaphore, so one taken through an `Arc<Semaphore>` cannot move into
/// [`green::spawn`](crate::spawn), which wants `'static`: take an [`OwnedSemaphorePermit`]
/// from the `Arc` with [`Semaphore::acquire_owned`] instead, or take the permit from a
/// semaphore in a `static`, whose permits are `'static` (below), or spawn in a
/// [`green::scope`](crate::scope), whose green threads may borrow. To cap a server's
/// connections, take the permit before `accept` (a burst beyond the cap then waits in the
/// listener's queue). Dropped in the connection's green thread, the permit is given back
/// however that ends, cancelled included (`examples/proxy.rs` in the repository does this).
///
/// ```
/// use std::io::Write;
/// use green::net::{TcpListener, TcpStream};
/// use green::sync::{Semaphore, SemaphorePermit};
///
/// static CONNECTIONS: Semaphore = Semaphore::new(2);
///
/// green::run(|| -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let clients: Vec<_> = (0..5).map(|_| green::spawn(move || TcpStream::connect(addr))).collect();
///     let mut served = Vec::new();
///     for _ in 0..5 {
///         let permit: SemaphorePermit<'static> = CONNECTIONS.acquire(); // waits while 2 are served
///         let (mut stream, _) = listener.accept()?;
///         served.push(green::spawn(move || {
///             let _permit = permit; // given back when this green thread ends
///             stream.write_all(b"hello")
///         }));
///     }
///     for handle in served {
///         handle.join().unwrap()?;
///     }
///     for client in clients {
///         client.join().unwrap()?;
///     }
///     assert_eq!(CONNECTIONS.available_permits(), 2);
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
    permits: usize,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// ```
    /// static CONNECTIONS: green::sync::Semaphore = green::sync::Semaphore::new(100);
    /// assert_eq!(CONNECTIONS.available_permits(), 100);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore { state: Lock::new(State { permits, waiters: WaitList::new() }) }
    }

    /// Acquires one permit, waiting until one is free.
    ///
    /// ```
    /// let sem = green::sync::Semaphore::new(1);
    /// let permit = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Acquires `n` permits at once, waiting until that many are free (and every earlier
    /// waiter has been served).
    ///
    /// Waiters are served in order, so while this one waits, later ones wait behind it even
    /// for a single permit that is free. A request for more permits than will ever be free at
    /// once (more than the semaphore holds) waits for good and holds back every later
    /// `acquire`; bound it with [`try_acquire_many_for`](Semaphore::try_acquire_many_for),
    /// whose timeout lets the others through.
    ///
    /// ```
    /// let sem = green::sync::Semaphore::new(5);
    /// let permits = sem.acquire_many(3);
    /// assert_eq!(permits.num_permits(), 3);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        op();
        park::check_cancelled();
        if !self.try_take(n)
            && let Err(stop) = self.acquire_slow(n, None)
        {
            stop_without_error(stop, "green::sync::Semaphore::acquire", || self.unwinding_message(n));
        }
        SemaphorePermit { semaphore: self, permits: n }
    }

    /// Acquires one permit if one is free and nobody waits.
    ///
    /// ```
    /// let sem = green::sync::Semaphore::new(1);
    /// let _held = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Acquires `n` permits if they are free and nobody waits.
    ///
    /// ```
    /// let sem = green::sync::Semaphore::new(2);
    /// assert!(sem.try_acquire_many(3).is_none());
    /// assert!(sem.try_acquire_many(2).is_some());
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        op();
        // `then`, not `then_some`: a permit built eagerly and dropped unused would give `n` back.
        self.try_take(n).then(|| SemaphorePermit { semaphore: self, permits: n })
    }

    /// Acquires one permit, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let sem = green::sync::Semaphore::new(0);
    ///     assert!(sem.try_acquire_for(Duration::from_millis(2)).is_none());
    /// });
    /// ```
    pub fn try_acquire_for(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many_for(1, timeout)
    }

    /// Acquires `n` permits, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     let sem = green::sync::Semaphore::new(2);
    ///     assert!(sem.try_acquire_many_for(2, Duration::from_millis(2)).is_some());
    /// });
    /// ```
    pub fn try_acquire_many_for(&self, n: usize, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        op();
        park::check_cancelled();
        if self.try_take(n) {
            return Some(SemaphorePermit { semaphore: self, permits: n });
        }
        match self.acquire_slow(n, Instant::now().checked_add(timeout)) {
            Ok(()) => Some(SemaphorePermit { semaphore: self, permits: n }),
            Err(Stop::TimedOut | Stop::Unwinding) => {
                crate::deadline::report_timeout();
                None
            }
            Err(stop) => {
                stop_without_error(stop, "green::sync::Semaphore::try_acquire_for", || self.unwinding_message(n))
            }
        }
    }

    /// [`acquire`](Semaphore::acquire) through an [`Arc`]: the permit holds a reference to the
    /// semaphore instead of borrowing it, so it can move into a spawned green thread.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// green::run(|| {
    ///     let jobs = Arc::new(green::sync::Semaphore::new(2));
    ///     let handles: Vec<_> = (0..4)
    ///         .map(|i| {
    ///             let permit = jobs.clone().acquire_owned(); // waits while 2 run
    ///             green::spawn(move || {
    ///                 let _permit = permit; // given back when this green thread ends
    ///                 i * 10
    ///             })
    ///         })
    ///         .collect();
    ///     let total: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    ///     assert_eq!(total, 60);
    ///     assert_eq!(jobs.available_permits(), 2);
    /// });
    /// ```
    pub fn acquire_owned(self: Arc<Self>) -> OwnedSemaphorePermit {
        self.acquire_many_owned(1)
    }

    /// [`acquire_many`](Semaphore::acquire_many) through an [`Arc`]; see
    /// [`acquire_owned`](Semaphore::acquire_owned).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(green::sync::Semaphore::new(5));
    /// let permits = sem.clone().acquire_many_owned(3);
    /// assert_eq!(permits.num_permits(), 3);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn acquire_many_owned(self: Arc<Self>, n: usize) -> OwnedSemaphorePermit {
        let permits = self.acquire_many(n).into_count();
        OwnedSemaphorePermit { semaphore: self, permits }
    }

    /// [`try_acquire`](Semaphore::try_acquire) through an [`Arc`]; see
    /// [`acquire_owned`](Semaphore::acquire_owned).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(green::sync::Semaphore::new(1));
    /// let held = sem.clone().try_acquire_owned().unwrap();
    /// assert!(sem.clone().try_acquire_owned().is_none());
    /// drop(held);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn try_acquire_owned(self: Arc<Self>) -> Option<OwnedSemaphorePermit> {
        self.try_acquire_many_owned(1)
    }

    /// [`try_acquire_many`](Semaphore::try_acquire_many) through an [`Arc`]; see
    /// [`acquire_owned`](Semaphore::acquire_owned).
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(green::sync::Semaphore::new(2));
    /// assert!(sem.clone().try_acquire_many_owned(3).is_none());
    /// assert!(sem.clone().try_acquire_many_owned(2).is_some());
    /// ```
    pub fn try_acquire_many_owned(self: Arc<Self>, n: usize) -> Option<OwnedSemaphorePermit> {
        let permits = self.try_acquire_many(n)?.into_count();
        Some(OwnedSemaphorePermit { semaphore: self, permits })
    }

    /// [`try_acquire_for`](Semaphore::try_acquire_for) through an [`Arc`]; see
    /// [`acquire_owned`](Semaphore::acquire_owned).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let sem = Arc::new(green::sync::Semaphore::new(0));
    ///     assert!(sem.clone().try_acquire_owned_for(Duration::from_millis(2)).is_none());
    ///     sem.add_permits(1);
    ///     assert!(sem.try_acquire_owned_for(Duration::from_millis(2)).is_some());
    /// });
    /// ```
    pub fn try_acquire_owned_for(self: Arc<Self>, timeout: Duration) -> Option<OwnedSemaphorePermit> {
        self.try_acquire_many_owned_for(1, timeout)
    }

    /// [`try_acquire_many_for`](Semaphore::try_acquire_many_for) through an [`Arc`]; see
    /// [`acquire_owned`](Semaphore::acquire_owned).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let sem = Arc::new(green::sync::Semaphore::new(2));
    ///     assert!(sem.clone().try_acquire_many_owned_for(3, Duration::from_millis(2)).is_none());
    ///     let both = sem.clone().try_acquire_many_owned_for(2, Duration::from_millis(2)).unwrap();
    ///     assert_eq!((both.num_permits(), sem.available_permits()), (2, 0));
    /// });
    /// ```
    pub fn try_acquire_many_owned_for(self: Arc<Self>, n: usize, timeout: Duration) -> Option<OwnedSemaphorePermit> {
        let permits = self.try_acquire_many_for(n, timeout)?.into_count();
        Some(OwnedSemaphorePermit { semaphore: self, permits })
    }

    /// Adds `n` permits, waking waiters they satisfy.
    ///
    /// ```
    /// let sem = green::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        op();
        self.release(n);
    }

    /// Permits free now.
    ///
    /// ```
    /// assert_eq!(green::sync::Semaphore::new(4).available_permits(), 4);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
    }

    fn try_take(&self, n: usize) -> bool {
        let mut state = self.state.lock();
        let free = state.waiters.is_empty() && state.permits >= n;
        if free {
            state.permits -= n;
        }
        free
    }

    fn release(&self, n: usize) {
        let mut wakes = Wakes::default();
        {
            let mut state = self.state.lock();
            let permits = state.permits;
            state.permits = permits
                .checked_add(n)
                .unwrap_or_else(|| panic!("green::sync::Semaphore: {permits} permits plus {n} more overflow a usize"));
            state.grant(&mut wakes);
        }
        wakes.wake();
    }

    /// Queues and parks until `n` permits are granted (protocol steps 1 and 3).
    fn acquire_slow(&self, n: usize, own: Option<Instant>) -> Result<(), Stop> {
        let wait = Wait::new(own);
        let mut id: Option<u64> = None;
        loop {
            if let Some(stop) = wait.check() {
                if !self.leave(id) {
                    return Err(stop);
                }
                if stop == Stop::Cancelled {
                    self.release(n);
                    return Err(stop);
                }
                return Ok(());
            }
            let mut granted = false;
            park::wait_sync(
                park::Primitive::Semaphore,
                |waiter| {
                    let mut state = self.state.lock();
                    match id {
                        Some(mine) if !state.waiters.contains(mine) => {
                            granted = true;
                            return false;
                        }
                        None if state.waiters.is_empty() && state.permits >= n => {
                            state.permits -= n;
                            granted = true;
                            return false;
                        }
                        _ => {}
                    }
                    state.waiters.enqueue(&mut id, waiter, n, false);
                    true
                },
                wait.deadline(),
            );
            if granted {
                return Ok(());
            }
        }
    }

    /// Protocol step 3. True if the permits had been granted: the caller owns them.
    fn leave(&self, id: Option<u64>) -> bool {
        let Some(mine) = id else { return false };
        let mut wakes = Wakes::default();
        let granted = {
            let mut state = self.state.lock();
            let queued = state.waiters.remove(mine).is_some();
            if queued {
                state.grant(&mut wakes);
            }
            !queued
        };
        wakes.wake();
        granted
    }

    fn unwinding_message(&self, n: usize) -> String {
        let (free, queued) = {
            let state = self.state.lock();
            (state.permits, state.waiters.len())
        };
        format!(
            "green: {} tried to acquire {n} permit(s) of a green::sync::Semaphore while unwinding, with {free} \
             free and {queued} waiter(s) ahead. A green thread cannot park while unwinding (its worker would \
             carry the panic to other green threads). Use try_acquire in destructors",
            describe_current()
        )
    }
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    ///
    /// ```
    /// let sem = green::sync::Semaphore::new(2);
    /// assert_eq!(sem.acquire().num_permits(), 1);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Keeps the permits out of the semaphore for good: they are not given back.
    ///
    /// ```
    /// let sem = green::sync::Semaphore::new(2);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl SemaphorePermit<'_> {
    /// The permits, no longer given back by this (for an owned permit to hold).
    fn into_count(mut self) -> usize {
        std::mem::take(&mut self.permits)
    }
}

/// Permits acquired through an `Arc<Semaphore>` ([`Semaphore::acquire_owned`]); given back
/// when dropped. It holds a reference to the semaphore, so it is `'static` and can move into a
/// spawned green thread.
#[must_use = "the permits are given back as soon as this is dropped"]
pub struct OwnedSemaphorePermit {
    semaphore: Arc<Semaphore>,
    permits: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    ///
    /// ```
    /// let sem = std::sync::Arc::new(green::sync::Semaphore::new(2));
    /// assert_eq!(sem.acquire_owned().num_permits(), 1);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// The semaphore the permits came from.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(green::sync::Semaphore::new(2));
    /// let permit = sem.clone().acquire_owned();
    /// assert!(Arc::ptr_eq(permit.semaphore(), &sem));
    /// assert_eq!(permit.semaphore().available_permits(), 1);
    /// ```
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }

    /// Keeps the permits out of the semaphore for good: they are not given back.
    ///
    /// ```
    /// let sem = std::sync::Arc::new(green::sync::Semaphore::new(2));
    /// sem.clone().acquire_owned().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.release(self.permits);
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit").field("permits", &self.permits).finish_non_exhaustive()
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.semaphore.release(self.permits);
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Semaphore").field("permits", &state.permits).field("waiters", &state.waiters.len()).finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").field("permits", &self.permits).finish_non_exhaustive()
    }
}
