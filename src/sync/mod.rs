//! Synchronization for green threads: channels, `select!`, locks, one-time initialization and
//! more, each parking the green thread that must wait, never its worker. (`Arc`, `Weak` and
//! the atomics never wait: use std's.)
//!
//! | | |
//! |---|---|
//! | [`mpmc`] (also as [`mpsc`]) | multi-producer multi-consumer channels: unbounded, bounded, rendezvous |
//! | [`oneshot`] | one message, once |
//! | [`select!`](crate::select) | wait on several channel operations, with `default` and `timeout` arms |
//! | [`Mutex`], [`RwLock`], [`Condvar`] | std's locks, with timed variants |
//! | [`OnceLock`], [`LazyLock`], [`Once`] | one-time initialization: late arrivals park while the first initializes |
//! | [`Semaphore`], [`Barrier`], [`WaitGroup`] | counting permits, meeting points, waiting for a group |
//!
//! Every primitive works the same between green threads on one worker, across workers, and with
//! plain OS threads, which block their thread as std would.
//!
//! ```
//! use std::sync::Arc;
//! use green::sync::{Mutex, mpmc};
//!
//! green::run(|| {
//!     let total = Arc::new(Mutex::new(0u32));
//!     let (tx, rx) = mpmc::sync_channel(4); // a send waits while 4 messages are queued
//!     let consumer = {
//!         let total = total.clone();
//!         green::spawn(move || {
//!             for n in rx {
//!                 *total.lock().unwrap() += n; // a contended lock parks, never blocks the worker
//!             }
//!         })
//!     };
//!     for n in 1..=10 {
//!         tx.send(n).unwrap();
//!     }
//!     drop(tx); // disconnects the channel: the consumer's loop ends
//!     consumer.join().unwrap();
//!     assert_eq!(*total.lock().unwrap(), 55);
//! });
//! ```
//!
//! # Rules every primitive follows
//!
//! - **Ticks.** Every operation spends budget ([`crate::tick`]), even one that completes at
//!   once, so a green thread hammering an always-ready channel or an uncontended lock still
//!   lets its neighbours on the worker run. (Reading an initialized [`OnceLock`], [`LazyLock`]
//!   or [`Once`] is the exception: one atomic load, as std's.)
//! - **Cancellation points.** Every blocking-looking operation (one that may wait: `send`,
//!   `recv`, `lock`, `read`, `write`, `wait`, `acquire`, their timed forms, and
//!   `get_or_init`, `force` or `call_once` while another initializer runs) is a
//!   cancellation point, and a green thread parked in one unwinds from it at once when it is
//!   cancelled ([`crate::JoinHandle::cancel`]). What it was given while leaving (a message, a
//!   lock, permits, a notification) is passed on to the next waiter. `try_*` operations are
//!   not cancellation points.
//! - **Deadlines.** Inside [`crate::timeout`], a timed operation returns its timeout error at
//!   the deadline; an operation without one unwinds to the `green::timeout`, which returns
//!   `Err(Elapsed)`. Only operations that would wait are affected. A timeout error reports
//!   the deadline once: after one operation has returned it, the next one that would wait
//!   past the deadline unwinds to the `green::timeout`, timed or not, so a loop that retries
//!   on its timeout (`while !*g { g = cv.wait_timeout(g, d)?.0 }`) ends at the deadline
//!   instead of spinning.
//! - **Never park while unwinding.** A green thread whose destructor runs a blocking-looking
//!   operation during a panic or a cancellation tries once, and if it would have to wait, does
//!   what the table in [While unwinding](#while-unwinding) says.
//! - **Poisoning follows std for panics** in [`Mutex`] and [`RwLock`]: a panic while a guard
//!   (a write guard, for `RwLock`) is held poisons the lock. A cancellation or an expired
//!   deadline does not, where std would poison for any unwind. They are routine control flow
//!   (a request that timed out, a runtime shutting down), and poisoning on them would make
//!   every timeout inside a critical section spread: each later `lock().unwrap()` would
//!   panic. The cost is the one async Rust pays at every `.await`: a critical section that
//!   waits (I/O, a sleep, another lock) can be left at that wait, and the data stays as it
//!   was there. Keep the data consistent at every wait inside a critical section, or restore
//!   it from a drop guard; the next holder gets no warning.
//!   A [`LazyLock`] is poisoned by any unwind of its initializer, the runtime's included (the
//!   initializer goes with it); [`OnceLock`] and [`Once`] are not poisoned at all: the next
//!   caller runs its own initializer.
//! - **Fair.** Waiters queue first in, first out. Senders on a full channel, lock writers and
//!   readers, semaphore acquirers are served in that order by handing the message, lock or
//!   permits straight to the first waiter; a [`Mutex`] lets a running green thread barge in
//!   (much faster under contention) until its first waiter has waited
//!   [`MUTEX_HANDOFF_AFTER`], and then hands the lock over.
//!
//! # While unwinding
//!
//! A green thread that is unwinding (a panic, a cancellation, the runtime's shutdown) never
//! parks: a switch in the middle of an unwind would carry the OS thread's panic state to the
//! worker and to every green thread on it. So an operation run from a destructor then makes
//! one attempt, and when it would have to wait, does this instead:
//!
//! | operation, when it would have to wait | in a green thread that is unwinding |
//! |---|---|
//! | channel `send` / `recv` | `Err(SendError(value))` / `Err(RecvError)` |
//! | channel `send_timeout` / `recv_timeout`, `oneshot` `recv_timeout` | their timeout error |
//! | `oneshot::Receiver::recv` | `Err(RecvError)` |
//! | `select!` | its `timeout` arm if it has one, else one operation arm completes with its error |
//! | `Mutex::lock`, `RwLock::read` / `write`, held on other workers or OS threads | blocks the worker until it can take it, up to 5 s, then aborts |
//! | `Mutex::lock` held on its own worker; `RwLock::read` / `write` where a holder may be on its own worker | aborts at once, naming the green thread and the holder (for readers, a green thread of its worker that holds green lock guards) |
//! | `try_lock_for` / `_until`, `try_read_for` / `_until`, `try_write_for` / `_until` | `Err(TryLockError::WouldBlock)` |
//! | `Condvar::wait`, `wait_while` | aborts, naming the green thread |
//! | `Condvar::wait_timeout`, `wait_timeout_while` | returns at once, timed out, lock still held |
//! | `OnceLock::get_or_init` (and `LazyLock`, `Once`), while another initializes | as `Mutex::lock`: waits up to 5 s for an initializer elsewhere, aborts if it runs on the caller's worker |
//! | `OnceLock::wait`, `Once::wait` on an empty cell | aborts, naming the green thread |
//! | `Semaphore::acquire` | aborts, naming the green thread |
//! | `Semaphore::try_acquire_for` | `None` |
//! | `Barrier::wait` | aborts, naming the green thread, unless it is the last to arrive |
//! | `WaitGroup::wait` / `wait_timeout` | aborts / `false` |
//!
//! An `RwLock` records its writer but not its readers: while readers hold it, any other green
//! thread of the caller's worker that holds a green lock guard (or was granted a read while it
//! waited) counts as one that may be among them. While it waits, an unwinding `read` or
//! `write` queues ahead of the lock's other waiters, and takes the lock if it is free for it
//! even with others queued (a read beside readers while a writer waits).
//!
//! Aborting is reserved for operations whose API cannot report the failure: waiting for a
//! green thread on the same worker would deadlock it, and parking would carry the panic to
//! every green thread of the worker. A shutdown cancels the green threads that hold a
//! `Mutex` or `RwLock` guard before the others: a destructor that locks, run by the
//! shutdown's cancellation, then finds the lock free, not held by a green thread parked
//! beside it. A destructor that locks while its green thread is cancelled or panics at other
//! times has no such help: use `try_lock` there, or keep the lock free of waits. Plain OS
//! threads are not affected: they block as std's primitives do. Inside
//! `green::on_worker_stack`, an operation that would wait panics.
//!
//! Under `panic = "abort"` there is no unwinding. A cancelled green thread then goes on, and
//! the waits that can fail (a channel's `recv`, `send`, `select!`, a oneshot's `recv`) fail at
//! once as they do while unwinding; those that cannot (`lock`, `Barrier::wait`, ...) wait on as
//! if it were not cancelled. A green thread past its `green::timeout` deadline in a wait with no
//! timeout error of its own aborts the process with a message that says so. A cancellation or an
//! expired deadline that unwinds through an `extern "C"` frame (a C library calling back into
//! Rust that then waits) aborts the process, as a panic there does; declare such callbacks
//! `extern "C-unwind"` only if the C code between can be unwound through.

mod barrier;
mod condvar;
pub mod mpmc;
mod mutex;
mod once;
pub mod oneshot;
mod rwlock;
pub(crate) mod select;
mod semaphore;
pub(crate) mod token;
pub(crate) mod wait;
mod waitgroup;

pub use self::barrier::{Barrier, BarrierWaitResult};
pub use self::condvar::{Condvar, WaitTimeoutResult};
pub use self::mutex::{MUTEX_HANDOFF_AFTER, Mutex, MutexGuard};
pub use self::once::{LazyLock, Once, OnceLock, OnceState};
pub use self::rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use self::semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
pub use self::waitgroup::WaitGroup;
pub use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

/// The channels of [`mpmc`] under the name of `std::sync::mpsc`, for code written against
/// std: `use green::sync::mpsc;` instead of `use std::sync::mpsc;`.
///
/// ```
/// use green::sync::mpsc;
///
/// green::run(|| {
///     let (tx, rx): (mpsc::SyncSender<u8>, mpsc::Receiver<u8>) = mpsc::sync_channel(1);
///     tx.send(1).unwrap();
///     assert_eq!(rx.recv(), Ok(1));
/// });
/// ```
pub mod mpsc {
    pub use super::mpmc::*;

    /// std's name for the sender of a bounded channel; here the same type as [`Sender`]. Code
    /// that implements a trait for both std types needs one impl here.
    pub type SyncSender<T> = Sender<T>;
}
