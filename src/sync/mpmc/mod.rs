//! Multi-producer multi-consumer channels, with the surface of `std::sync::mpsc` (and of std's
//! `mpmc`): [`channel`] (unbounded) and [`sync_channel`] (bounded, including capacity 0, a
//! rendezvous).
//!
//! A green thread that must wait (for a message, or for room) parks: its worker runs other green
//! threads meanwhile. A plain OS thread blocks, as with std. Both kinds may share one channel.
//!
//! ```
//! use green::sync::mpmc;
//!
//! let total = green::run(|| {
//!     let (tx, rx) = mpmc::sync_channel(16);
//!     let producers: Vec<_> = (0..4u64)
//!         .map(|p| {
//!             let tx = tx.clone();
//!             green::spawn(move || (0..100).for_each(|i| tx.send(p * 100 + i).unwrap()))
//!         })
//!         .collect();
//!     drop(tx); // the receivers see the end once every producer is done
//!     let consumers: Vec<_> = (0..2)
//!         .map(|_| {
//!             let rx = rx.clone();
//!             green::spawn(move || rx.iter().sum::<u64>())
//!         })
//!         .collect();
//!     producers.into_iter().for_each(|p| p.join().unwrap());
//!     consumers.into_iter().map(|c| c.join().unwrap()).sum::<u64>()
//! });
//! assert_eq!(total, (0..400).sum::<u64>());
//! ```
//!
//! # Cancellation, deadlines, unwinding
//!
//! `send`, `recv` and their timed forms are cancellation points: a cancelled green thread
//! unwinds from them (at once if it is parked in one); a message it was sending is dropped, and
//! a receive it was chosen for goes to another receiver. Inside [`crate::timeout`], the timed
//! forms return their timeout error at the deadline; `send` and `recv` unwind to the
//! `green::timeout`, which returns `Err(Elapsed)`.
//!
//! A green thread that is unwinding never parks
//! ([while unwinding](crate::sync#while-unwinding)): every operation tries once, and when it
//! would have to wait, `send` returns `Err(SendError(value))`, `recv` returns
//! `Err(RecvError)`, and the timed forms return their timeout error, as if the channel were
//! disconnected or the time were up. Inside `green::on_worker_stack`, an operation that
//! would wait panics.
//!
//! # Design
//!
//! Messages are *offered* by waiting senders, *buffered*, then *received*; a waiting sender's
//! message moves into the buffer as soon as there is room (so senders complete in order, no
//! barging past a full buffer), and a send to a rendezvous
//! channel with a receiver waiting hands its message over and returns at once, as Go does.

mod chan;

use std::fmt;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

pub(crate) use self::chan::Chan;
pub(crate) use self::chan::{Fail, Mode};
use self::chan::{add_handle, drop_handle};
use crate::sync::wait::{Stop, op, op_past_deadline, unwind_cancelled, unwind_elapsed};

/// Panic message for a channel operation that would wait on a worker's own stack.
const ON_WORKER_STACK: &str = concat!(
    "a green::sync channel operation would wait ",
    on_worker_stack_where!(),
    ", where no green thread can park; do it outside that closure or destructor, or use its try_ form there"
);

/// Creates an unbounded channel: `send` never waits.
///
/// ```
/// green::run(|| {
///     let (tx, rx) = green::sync::mpmc::channel();
///     green::spawn(move || tx.send("hello").unwrap());
///     assert_eq!(rx.recv(), Ok("hello"));
/// });
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    new(None)
}

/// Creates a channel that holds at most `bound` messages: `send` waits while it is full. With
/// `bound` 0 it is a rendezvous: `send` waits until a receiver takes the message.
///
/// One exception to both: a message sent while a receiver waits in a
/// [`select!`](crate::select) is handed to that select through the channel's buffer, even past
/// the bound, and its `send` returns `Ok` at once. Until the select's green thread runs and
/// takes it, [`len`](Sender::len) counts it (a rendezvous channel's too), and another receiver
/// may take it first. If that green thread is cancelled before it reads it, the message stays
/// for the next receiver; if none comes, it is dropped with the channel, as any message still
/// queued is.
///
/// ```
/// use green::sync::mpmc;
///
/// green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
///     let (tx, rx) = mpmc::sync_channel::<u8>(0);
///     let selecting = green::spawn(move || green::select! { recv(rx) -> v => v });
///     green::sleep(std::time::Duration::from_millis(1)); // it waits in its select now
///     tx.send(1).unwrap(); // handed over at once
///     assert_eq!(tx.len(), 1); // until the select takes it
///     assert_eq!(selecting.join().unwrap(), Ok(1));
///     assert_eq!(tx.len(), 0);
/// });
/// ```
///
/// ```
/// green::run(|| {
///     let (tx, rx) = green::sync::mpmc::sync_channel(0);
///     let receiver = green::spawn(move || rx.recv().unwrap());
///     tx.send(5).unwrap(); // returns once the receiver has it
///     assert_eq!(receiver.join().unwrap(), 5);
/// });
/// ```
pub fn sync_channel<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    new(Some(bound))
}

fn new<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A deadline `timeout` from now; `None` (no deadline) if that is beyond what `Instant` holds.
fn deadline_in(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// The sending half of a channel. Clone it for more senders; the receivers see the channel
/// disconnected once every sender is dropped.
pub struct Sender<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

// A panic cannot leave it half-changed for the next user, as for std's.
impl<T> UnwindSafe for Sender<T> {}
impl<T> RefUnwindSafe for Sender<T> {}

/// The receiving half of a channel. Clone it for more receivers (each message goes to one of
/// them); the senders see the channel disconnected once every receiver is dropped.
pub struct Receiver<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

// A panic cannot leave it half-changed for the next user, as for std's.
impl<T> UnwindSafe for Receiver<T> {}
impl<T> RefUnwindSafe for Receiver<T> {}

/// The error of [`Sender::send_timeout`]: the message comes back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The channel stayed full until the deadline (or the caller is unwinding; see the module
    /// docs).
    Timeout(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(value) | SendTimeoutError::Disconnected(value) => value,
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(..) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(..) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(..) => f.write_str("timed out waiting on send operation"),
            SendTimeoutError::Disconnected(..) => f.write_str("sending on a disconnected channel"),
        }
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

impl<T> From<SendError<T>> for SendTimeoutError<T> {
    fn from(e: SendError<T>) -> Self {
        SendTimeoutError::Disconnected(e.0)
    }
}

/// What a channel call that may wait looks at before it tries, even when a message or room is
/// there: its caller's `green::timeout` deadline, once per budget (`op_past_deadline`), and its
/// cancellation. True if the call is to fail at once, with its timeout error when `timed`, or
/// with the error it gives while unwinding: a deadline to report for a timed call, or a
/// cancellation where nothing unwinds (rule 7). Otherwise a passed deadline unwinds an untimed
/// call, and a cancellation unwinds any.
#[inline(always)]
fn stops_before_trying(timed: bool) -> bool {
    if op_past_deadline() {
        if timed {
            return true;
        }
        crate::deadline::raise();
    }
    crate::park::check_cancelled();
    crate::park::cancelled_without_unwind()
}

/// What a blocking operation without a timeout error does when its wait stops.
fn stop_untimed(stop: Stop) {
    match stop {
        Stop::Cancelled => unwind_cancelled(),
        Stop::TimedOut => unwind_elapsed(),
        Stop::WorkerStack => panic!("{ON_WORKER_STACK}"),
        Stop::Unwinding => unwinding_as_disconnected(),
    }
}

/// The error a wait that could not park while unwinding returns reads "disconnected", which the
/// channel may not be: say why where someone may look.
#[cold]
fn unwinding_as_disconnected() {
    log::debug!(
        "green: a channel operation would have waited while {} unwinds; it cannot park then (see \
         green::sync, \"While unwinding\"), so it returns as if the channel were disconnected",
        crate::sync::wait::describe_current()
    );
}

/// What a timed blocking operation does when its wait stops; returns for a timeout.
fn stop_timed(stop: Stop) {
    match stop {
        Stop::Cancelled => unwind_cancelled(),
        Stop::WorkerStack => panic!("{ON_WORKER_STACK}"),
        Stop::TimedOut | Stop::Unwinding => crate::deadline::report_timeout(),
    }
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full (for a rendezvous channel: until a
    /// receiver takes it). Fails, giving the value back, if every receiver is gone.
    ///
    /// A cancellation point. See the module docs for deadlines and unwinding.
    ///
    /// ```
    /// use green::sync::mpmc::{self, SendError};
    /// green::run(|| {
    ///     let (tx, rx) = mpmc::channel();
    ///     tx.send(1).unwrap();
    ///     drop(rx);
    ///     assert_eq!(tx.send(2), Err(SendError(2)));
    /// });
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if stops_before_trying(false) {
            return Err(SendError(value));
        }
        match self.chan.send(value, Mode::Block(None)) {
            Ok(()) => Ok(()),
            Err((value, Fail::Stop(stop))) => {
                if stop != Stop::Unwinding {
                    drop(value);
                    stop_untimed(stop);
                    panic!(internal_error!("a green::sync channel wait that had to unwind returned"));
                }
                Err(SendError(value))
            }
            Err((value, _)) => Err(SendError(value)),
        }
    }

    /// Sends `value` if that needs no waiting.
    ///
    /// ```
    /// use green::sync::mpmc::{self, TrySendError};
    /// let (tx, rx) = mpmc::sync_channel(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    /// ```
    ///
    /// On a rendezvous channel it succeeds only if a receiver is waiting; the message then goes
    /// to the first receiver to take it.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        op();
        match self.chan.send(value, Mode::Try) {
            Ok(()) => Ok(()),
            Err((value, Fail::Disconnected)) => Err(TrySendError::Disconnected(value)),
            Err((value, _)) => Err(TrySendError::Full(value)),
        }
    }

    /// Like [`Sender::send`], waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::sync::mpmc::{self, SendTimeoutError};
    /// green::run(|| {
    ///     let (tx, _rx) = mpmc::sync_channel(0);
    ///     let err = tx.send_timeout(7, Duration::from_millis(5)).unwrap_err();
    ///     assert_eq!(err, SendTimeoutError::Timeout(7));
    /// });
    /// ```
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_with(value, deadline_in(timeout))
    }

    /// Like [`Sender::send`], waiting until `deadline` at the latest.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// green::run(|| {
    ///     let (tx, rx) = green::sync::mpmc::sync_channel(1);
    ///     tx.send_deadline(1, Instant::now() + Duration::from_millis(5)).unwrap();
    ///     assert!(tx.send_deadline(2, Instant::now() + Duration::from_millis(5)).is_err());
    ///     assert_eq!(rx.recv(), Ok(1));
    /// });
    /// ```
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_with(value, Some(deadline))
    }

    fn send_with(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        if stops_before_trying(true) {
            return Err(SendTimeoutError::Timeout(value));
        }
        match self.chan.send(value, Mode::Block(deadline)) {
            Ok(()) => Ok(()),
            Err((value, Fail::Disconnected)) => Err(SendTimeoutError::Disconnected(value)),
            Err((value, Fail::Stop(stop))) => {
                if stop == Stop::Cancelled || stop == Stop::WorkerStack {
                    drop(value);
                    stop_timed(stop);
                    panic!(internal_error!("a green::sync channel wait that had to unwind returned"));
                }
                crate::deadline::report_timeout();
                Err(SendTimeoutError::Timeout(value))
            }
            Err((value, Fail::WouldBlock)) => {
                crate::deadline::report_timeout();
                Err(SendTimeoutError::Timeout(value))
            }
        }
    }

    /// Messages in the channel now (buffered, not counting senders waiting).
    ///
    /// ```
    /// let (tx, _rx) = green::sync::mpmc::channel();
    /// tx.send(1).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if no message is buffered.
    ///
    /// ```
    /// let (tx, _rx) = green::sync::mpmc::channel::<u8>();
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if a send would wait now (for lack of room; a rendezvous channel is always full).
    ///
    /// ```
    /// let (tx, _rx) = green::sync::mpmc::sync_channel(1);
    /// tx.send(1).unwrap();
    /// assert!(tx.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.chan.capacity().is_some_and(|cap| self.len() >= cap)
    }

    /// The bound given to [`sync_channel`], or `None` for an unbounded channel.
    ///
    /// ```
    /// assert_eq!(green::sync::mpmc::sync_channel::<u8>(3).0.capacity(), Some(3));
    /// assert_eq!(green::sync::mpmc::channel::<u8>().0.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// True if both senders belong to the same channel.
    ///
    /// ```
    /// let (tx, _rx) = green::sync::mpmc::channel::<u8>();
    /// assert!(tx.same_channel(&tx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        add_handle(&self.chan.handles.senders);
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if drop_handle(&self.chan.handles.senders) {
            self.chan.disconnect_senders();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("capacity", &self.chan.capacity()).finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Receives a message, waiting until one comes. Fails once the channel is empty and every
    /// sender is gone.
    ///
    /// A cancellation point. See the module docs for deadlines and unwinding.
    ///
    /// ```
    /// use green::sync::mpmc::{self, RecvError};
    /// green::run(|| {
    ///     let (tx, rx) = mpmc::channel();
    ///     green::spawn(move || {
    ///         tx.send(1).unwrap();
    ///     }); // tx dropped here
    ///     assert_eq!(rx.recv(), Ok(1));
    ///     assert_eq!(rx.recv(), Err(RecvError));
    /// });
    /// ```
    #[inline(always)]
    pub fn recv(&self) -> Result<T, RecvError> {
        if stops_before_trying(false) {
            return Err(RecvError);
        }
        match self.chan.recv(Mode::Block(None)) {
            Ok(value) => Ok(value),
            Err(Fail::Stop(stop)) => {
                stop_untimed(stop);
                Err(RecvError)
            }
            Err(_) => Err(RecvError),
        }
    }

    /// Receives a message if one is there.
    ///
    /// ```
    /// use green::sync::mpmc::{self, TryRecvError};
    /// let (tx, rx) = mpmc::channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        op();
        match self.chan.recv(Mode::Try) {
            Ok(value) => Ok(value),
            Err(Fail::Disconnected) => Err(TryRecvError::Disconnected),
            Err(_) => Err(TryRecvError::Empty),
        }
    }

    /// Like [`Receiver::recv`], waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use green::sync::mpmc::{self, RecvTimeoutError};
    /// green::run(|| {
    ///     let (_tx, rx) = mpmc::channel::<u8>();
    ///     assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// });
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_with(deadline_in(timeout))
    }

    /// Like [`Receiver::recv`], waiting until `deadline` at the latest.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use green::sync::mpmc::{self, RecvTimeoutError};
    /// green::run(|| {
    ///     let (tx, rx) = mpmc::channel();
    ///     green::spawn(move || tx.send(3).unwrap());
    ///     let deadline = Instant::now() + Duration::from_secs(10);
    ///     assert_eq!(rx.recv_deadline(deadline), Ok(3));
    ///     assert_eq!(rx.recv_deadline(deadline), Err(RecvTimeoutError::Disconnected));
    /// });
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_with(Some(deadline))
    }

    fn recv_with(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        if stops_before_trying(true) {
            return Err(RecvTimeoutError::Timeout);
        }
        match self.chan.recv(Mode::Block(deadline)) {
            Ok(value) => Ok(value),
            Err(Fail::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(Fail::Stop(stop)) => {
                stop_timed(stop);
                Err(RecvTimeoutError::Timeout)
            }
            Err(Fail::WouldBlock) => {
                crate::deadline::report_timeout();
                Err(RecvTimeoutError::Timeout)
            }
        }
    }

    /// An iterator that receives until the channel is disconnected.
    ///
    /// ```
    /// green::run(|| {
    ///     let (tx, rx) = green::sync::mpmc::channel();
    ///     green::spawn(move || (1..=3).for_each(|i| tx.send(i).unwrap()));
    ///     assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2, 3]);
    /// });
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages there now, without waiting.
    ///
    /// ```
    /// let (tx, rx) = green::sync::mpmc::channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Messages in the channel now (buffered, not counting senders waiting).
    ///
    /// ```
    /// let (tx, rx) = green::sync::mpmc::channel();
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// True if no message is buffered.
    ///
    /// ```
    /// let (_tx, rx) = green::sync::mpmc::channel::<u8>();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound given to [`sync_channel`], or `None` for an unbounded channel.
    ///
    /// ```
    /// assert_eq!(green::sync::mpmc::sync_channel::<u8>(0).1.capacity(), Some(0));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// True if both receivers belong to the same channel.
    ///
    /// ```
    /// let (_tx, rx) = green::sync::mpmc::channel::<u8>();
    /// assert!(rx.same_channel(&rx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        add_handle(&self.chan.handles.receivers);
        Receiver { chan: self.chan.clone() }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if drop_handle(&self.chan.handles.receivers) {
            self.chan.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("capacity", &self.chan.capacity()).finish_non_exhaustive()
    }
}

/// Iterator of [`Receiver::iter`]: receives until the channel is disconnected.
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Iterator of [`Receiver::try_iter`]: the messages there now.
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Iterator of a `Receiver` taken by value: receives until the channel is disconnected.
///
/// ```
/// green::run(|| {
///     let (tx, rx) = green::sync::mpmc::channel();
///     tx.send(1).unwrap();
///     drop(tx);
///     let all: Vec<i32> = rx.into_iter().collect();
///     assert_eq!(all, [1]);
/// });
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    #[inline(always)]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Sender<u32>>();
        send_sync::<Receiver<u32>>();
    }

    #[test]
    fn os_threads_use_channels_as_with_std() {
        let (tx, rx) = sync_channel(0);
        let t = std::thread::spawn(move || (0..100).map(|_| rx.recv().unwrap()).sum::<u32>());
        (0..100).for_each(|i| tx.send(i).unwrap());
        assert_eq!(t.join().unwrap(), (0..100).sum());
    }
}
