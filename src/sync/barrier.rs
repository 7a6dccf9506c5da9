//! A barrier: `n` green threads (or OS threads) meet, then all go on.
//!
//! # Protocol (under the internal lock)
//!
//! Each round of the barrier is a *generation*. `wait` counts itself in (`arrived`); the `n`-th
//! arrival starts the next generation (resets `arrived`, bumps `generation`), wakes everyone
//! queued and returns as the leader. The others queue and park until the generation they
//! arrived in is over. One that leaves before (timeout, cancellation) counts itself out again,
//! so the barrier still waits for `n` arrivals of that generation.

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};

use crate::park;
use crate::sync::wait::{Lock, Wait, WaitList, Wakes, describe_current, op, stop_without_error};

#[derive(Debug)]
struct State {
    /// Arrivals in the current generation.
    arrived: usize,
    /// Completed generations.
    generation: u64,
    /// Waiters of the current generation.
    waiters: WaitList<()>,
}

/// A barrier, like [`std::sync::Barrier`], at which green threads wait by parking.
///
/// ```
/// use std::sync::Arc;
/// use green::sync::Barrier;
///
/// green::run(|| {
///     let barrier = Arc::new(Barrier::new(3));
///     let handles: Vec<_> = (0..3)
///         .map(|_| {
///             let barrier = barrier.clone();
///             green::spawn(move || barrier.wait().is_leader())
///         })
///         .collect();
///     let leaders = handles.into_iter().map(|h| h.join().unwrap()).filter(|&l| l).count();
///     assert_eq!(leaders, 1);
/// });
/// ```
///
/// `wait` is a cancellation point; a green thread cancelled while waiting counts itself out, so
/// the others keep waiting for a full round. Inside [`crate::timeout`], `wait` unwinds to it
/// at the deadline, counted out the same way. A green thread that is unwinding aborts in `wait`
/// unless it is the last to arrive (see the [module docs](crate::sync)).
pub struct Barrier {
    /// Arrivals per generation.
    n: usize,
    state: Lock<State>,
}

// A panic cannot leave it half-changed for the next user, as for std's.
impl UnwindSafe for Barrier {}
impl RefUnwindSafe for Barrier {}

/// What [`Barrier::wait`] returns: whether this caller was the leader of its generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one caller per generation: the last to arrive.
    ///
    /// ```
    /// let barrier = green::sync::Barrier::new(1);
    /// assert!(barrier.wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` callers per generation (0 counts as 1, as in std).
    ///
    /// ```
    /// let barrier = green::sync::Barrier::new(2);
    /// # let _ = barrier;
    /// ```
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n: if n == 0 { 1 } else { n },
            state: Lock::new(State { arrived: 0, generation: 0, waiters: WaitList::new() }),
        }
    }

    /// Waits until `n` callers have called `wait` in this generation, then returns for all of
    /// them.
    ///
    /// ```
    /// use std::sync::Arc;
    /// green::run(|| {
    ///     let barrier = Arc::new(green::sync::Barrier::new(2));
    ///     let other = {
    ///         let barrier = barrier.clone();
    ///         green::spawn(move || barrier.wait())
    ///     };
    ///     let mine = barrier.wait();
    ///     assert_ne!(mine.is_leader(), other.join().unwrap().is_leader());
    /// });
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        op();
        park::check_cancelled();
        let mut wakes = Wakes::default();
        let generation = {
            let mut state = self.state.lock();
            state.arrived += 1;
            if state.arrived < self.n {
                Some(state.generation)
            } else {
                state.arrived = 0;
                state.generation += 1;
                state.waiters.drain().for_each(|node| wakes.push(node.waiter));
                None
            }
        };
        wakes.wake();
        let Some(generation) = generation else { return BarrierWaitResult(true) };
        let wait = Wait::new(None);
        let mut id = None;
        loop {
            if let Some(stop) = wait.check() {
                {
                    let mut state = self.state.lock();
                    if state.generation != generation {
                        return BarrierWaitResult(false);
                    }
                    // Count ourselves out of this generation.
                    state.arrived -= 1;
                    if let Some(mine) = id {
                        state.waiters.remove(mine);
                    }
                }
                stop_without_error(stop, "green::sync::Barrier::wait", || self.unwinding_message());
            }
            let mut released = false;
            park::wait_sync(
                park::Primitive::Barrier,
                |waiter| {
                    let mut state = self.state.lock();
                    if state.generation != generation {
                        released = true;
                        return false;
                    }
                    state.waiters.enqueue(&mut id, waiter, (), false);
                    true
                },
                wait.deadline(),
            );
            if released {
                return BarrierWaitResult(false);
            }
        }
    }

    fn unwinding_message(&self) -> String {
        format!(
            "green: {} waited at a green::sync::Barrier of {} while unwinding, before the others arrived. A \
             green thread cannot park while unwinding (its worker would carry the panic to other green \
             threads). Do not wait at a barrier in a destructor",
            describe_current(),
            self.n
        )
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("Barrier").field("n", &self.n).field("arrived", &state.arrived).finish_non_exhaustive()
    }
}
