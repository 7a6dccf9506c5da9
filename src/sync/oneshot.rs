//! A channel for one message, sent once.
//!
//! # States (under the internal lock)
//!
//! - `Waiting(waiter)`: nothing sent yet; `waiter` is whoever waits in `recv` (it may be stale:
//!   a green thread's waker carries its wait number, so a stale one is ignored when woken).
//! - `Sent(value)`: sent, not yet received.
//! - `Received`: the receiver took the value.
//! - `SenderGone`: the sender was dropped without sending.
//! - `ReceiverGone`: the receiver was dropped; a send gives its value back.
//!
//! The sender moves `Waiting → Sent` (or `→ SenderGone` when dropped) and wakes the waiter it
//! took out, after unlocking. The receiver stores its waiter only in `Waiting`, under the same
//! lock, so a send either sees it or happens before it looks: no wakeup is lost.
//!
//! ```
//! use green::sync::oneshot;
//!
//! green::run(|| {
//!     let (tx, rx) = oneshot::channel();
//!     green::spawn(move || tx.send(6 * 7).unwrap());
//!     assert_eq!(rx.recv(), Ok(42));
//! });
//! ```
//!
//! `recv` and `recv_timeout` are cancellation points. Inside [`crate::timeout`], `recv`
//! unwinds to it at the deadline and `recv_timeout` times out. A green thread that is unwinding
//! gets `Err(RecvError)` from `recv`, and a timeout from `recv_timeout`, when the value is not
//! there yet.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, TryRecvError};

use crate::park::{self, Waiter};
use crate::sync::wait::{Lock, Stop, Wait, op, unwind_cancelled, unwind_elapsed};

#[derive(Debug)]
enum State<T> {
    Waiting(Option<Waiter>),
    Sent(T),
    Received,
    SenderGone,
    ReceiverGone,
}

/// Creates a oneshot channel.
///
/// ```
/// let (tx, rx) = green::sync::oneshot::channel();
/// tx.send("done").unwrap();
/// assert_eq!(rx.recv(), Ok("done"));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Lock::new(State::Waiting(None)));
    (Sender { slot: Some(slot.clone()) }, Receiver { slot, _one_waiter: PhantomData })
}

/// Sends the one message; see [`channel`].
pub struct Sender<T> {
    /// `None` once sent.
    slot: Option<Arc<Lock<State<T>>>>,
}

// A panic cannot leave it half-changed for the next user, as for std's.
impl<T> UnwindSafe for Sender<T> {}
impl<T> RefUnwindSafe for Sender<T> {}

/// Receives the one message; see [`channel`].
///
/// It can be sent to another thread but not shared between threads (it is not `Sync`, as
/// std's `mpsc::Receiver`): the channel keeps one waiter, so two threads waiting through one
/// `&Receiver` could not both be woken.
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// let (_tx, rx) = green::sync::oneshot::channel::<u32>();
/// shared(&rx);
/// ```
pub struct Receiver<T> {
    slot: Arc<Lock<State<T>>>,
    /// Not `Sync`: one receiving thread at a time.
    _one_waiter: PhantomData<Cell<()>>,
}

// A panic cannot leave it half-changed for the next user, as for std's.
impl<T> UnwindSafe for Receiver<T> {}
impl<T> RefUnwindSafe for Receiver<T> {}

impl<T> Sender<T> {
    /// Sends `value`, waking the receiver. Never waits.
    ///
    /// # Errors
    ///
    /// If the receiver is gone, with the value.
    ///
    /// ```
    /// let (tx, rx) = green::sync::oneshot::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(1), Err(1));
    /// ```
    pub fn send(mut self, value: T) -> Result<(), T> {
        op();
        let slot = self.slot.take().expect(internal_error!("a green::sync::oneshot::Sender sent twice"));
        let waiter = {
            let mut state = slot.lock();
            match std::mem::replace(&mut *state, State::Received) {
                State::Waiting(waiter) => {
                    *state = State::Sent(value);
                    waiter
                }
                State::ReceiverGone => {
                    *state = State::ReceiverGone;
                    return Err(value);
                }
                _ => panic!(internal_error!("a green::sync::oneshot channel was sent to twice")),
            }
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
        Ok(())
    }

    /// True if the receiver is gone: a send would fail.
    ///
    /// ```
    /// let (tx, rx) = green::sync::oneshot::channel::<u8>();
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.slot.as_ref().is_none_or(|slot| matches!(*slot.lock(), State::ReceiverGone))
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else { return };
        let waiter = {
            let mut state = slot.lock();
            match &mut *state {
                State::Waiting(waiter) => {
                    let waiter = waiter.take();
                    *state = State::SenderGone;
                    waiter
                }
                _ => None,
            }
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for the message.
    ///
    /// # Errors
    ///
    /// If the sender was dropped without sending (or, while unwinding, if the message is not
    /// there yet).
    ///
    /// ```
    /// use green::sync::oneshot::{self, RecvError};
    /// green::run(|| {
    ///     let (tx, rx) = oneshot::channel::<u8>();
    ///     green::spawn(move || drop(tx));
    ///     assert_eq!(rx.recv(), Err(RecvError));
    /// });
    /// ```
    pub fn recv(self) -> Result<T, RecvError> {
        op();
        park::check_cancelled();
        match self.wait(None) {
            Ok(value) => Ok(value),
            Err(Some(Stop::Cancelled)) => unwind_cancelled(),
            Err(Some(Stop::TimedOut)) => unwind_elapsed(),
            Err(Some(Stop::WorkerStack)) => panic!("{ON_WORKER_STACK}"),
            Err(_) => Err(RecvError),
        }
    }

    /// Takes the message if it is there.
    ///
    /// # Errors
    ///
    /// `Empty` if it has not been sent; `Disconnected` if the sender is gone without sending,
    /// or the message was already received.
    ///
    /// ```
    /// use green::sync::oneshot::{self, TryRecvError};
    /// let (tx, rx) = oneshot::channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        op();
        match self.take() {
            Some(Some(value)) => Ok(value),
            Some(None) => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Waits at most `timeout` for the message.
    ///
    /// # Errors
    ///
    /// `Timeout`, or `Disconnected` as for [`Receiver::try_recv`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::sync::oneshot::{self, RecvTimeoutError};
    /// green::run(|| {
    ///     let (_tx, rx) = oneshot::channel::<u8>();
    ///     assert_eq!(rx.recv_timeout(Duration::from_millis(2)), Err(RecvTimeoutError::Timeout));
    /// });
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        op();
        park::check_cancelled();
        match self.wait(Instant::now().checked_add(timeout)) {
            Ok(value) => Ok(value),
            Err(None) => Err(RecvTimeoutError::Disconnected),
            Err(Some(Stop::Cancelled)) => unwind_cancelled(),
            Err(Some(Stop::WorkerStack)) => panic!("{ON_WORKER_STACK}"),
            Err(Some(_)) => {
                crate::deadline::report_timeout();
                Err(RecvTimeoutError::Timeout)
            }
        }
    }

    /// `Some(Some(value))`, `Some(None)` if there will never be one, `None` if not yet.
    fn take(&self) -> Option<Option<T>> {
        let mut state = self.slot.lock();
        match std::mem::replace(&mut *state, State::Received) {
            State::Sent(value) => Some(Some(value)),
            State::Waiting(waiter) => {
                *state = State::Waiting(waiter);
                None
            }
            other => {
                *state = other;
                Some(None)
            }
        }
    }

    /// Waits for the value: `Err(None)` if there will never be one, `Err(Some(stop))` if the
    /// wait stopped.
    fn wait(&self, own: Option<Instant>) -> Result<T, Option<Stop>> {
        let wait = Wait::failing(own);
        loop {
            if let Some(outcome) = self.take() {
                return outcome.ok_or(None);
            }
            if let Some(stop) = wait.check() {
                return Err(Some(stop));
            }
            park::wait_sync(
                park::Primitive::OneshotRecv,
                |waiter| match &mut *self.slot.lock() {
                    State::Waiting(slot) => {
                        *slot = Some(waiter);
                        true
                    }
                    // Sent or closed meanwhile: take it on the next round.
                    _ => false,
                },
                wait.deadline(),
            );
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.slot.lock();
        let old = std::mem::replace(&mut *state, State::ReceiverGone);
        drop(state);
        drop(old); // a value sent and never received, dropped outside the lock
    }
}

const ON_WORKER_STACK: &str = concat!(
    "green::sync::oneshot::Receiver would wait ",
    on_worker_stack_where!(),
    ", where no green thread can park; receive outside that closure or destructor, or use try_recv there"
);

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
