//! Deadlines: [`timeout`] and [`timeout_at`] run a closure under a deadline.
//!
//! # Design
//!
//! A deadline belongs to the green thread (or OS thread) that set it, for the duration of one
//! closure: a *deadline scope*, in the manner of Trio's cancel scopes or Go's contexts, but
//! implicit, so the code inside needs no extra argument. Every wait of the runtime consults it:
//!
//! 1. `green::timeout(d, f)` records `min(now + d, the enclosing deadline)` for the caller and
//!    runs `f`.
//! 2. A wait inside `f` parks until its own condition, its own timeout, or the recorded
//!    deadline, whichever comes first ([`crate::park::wait_for`]).
//! 3. When the recorded deadline passes first, a call that has a timeout error of its own
//!    returns it (`recv_timeout` gives `RecvTimeoutError::Timeout`, a `timeout` arm of
//!    `select!` runs, `try_lock_for` fails, `Condvar::wait_timeout` reports a timeout); it
//!    reads the deadline through `park::effective_deadline`. A call whose API has no timeout error
//!    (`recv`, `lock`, `join`, `sleep`, `Barrier::wait`, ...) unwinds instead, with a private
//!    payload, up to the `green::timeout` that set the deadline, which returns
//!    `Err(Elapsed)`. Destructors run on the way, as for a cancellation; green `Mutex` and
//!    `RwLock` are not poisoned by it (a `LazyLock` whose initializer it unwinds is).
//!    A timeout error reports the deadline once: after one call has returned it, the next call
//!    that would wait past the deadline unwinds, even one with a timeout error of its own
//!    ([`report_timeout`]). Code that takes a timeout error for a cue to try again (std's way
//!    to wake now and then) would otherwise spin from the deadline on, every call failing at
//!    once; now it ends there.
//! 4. On the way out (returning, or unwinding) the enclosing deadline is restored.
//!
//! `green::park` and `park_timeout`, whose contract allows a spurious return, return at the
//! deadline; the caller's next park (or any blocking-looking call) then unwinds.
//!
//! Only calls that would *wait* past the deadline are affected: an operation that can complete
//! at once (a `recv` on a channel holding a message, an uncontended `lock`) still does. There
//! are two exceptions. `yield_now` unwinds once the deadline has passed: where a computation
//! that yields now and then can end. A socket or channel call that may wait but did not have
//! to looks at the deadline once per budget ([`budget_look`]), so that a loop of such calls
//! ends too.
//!
//! The deadline is the caller's alone: green threads spawned inside `f` do not inherit it (they
//! may outlive `f`). Give them a `timeout` of their own, or cancel them from `f`.
//!
//! Nested scopes: the earliest deadline wins. The unwinding payload names the deadline that
//! passed, so an inner `green::timeout` whose own deadline is later lets it go on to the outer
//! one that set it.
//!
//! # Rejected
//!
//! - *Returning early and silently from calls without a timeout error* (`sleep` returning
//!   before its time, `lock` returning...nothing): code after the call would run under false
//!   assumptions.
//! - *Blocking past the deadline in those calls*: then the deadline bounds nothing.
//! - *The deadline in a green-thread-local*: a lookup would create the local's map for every
//!   green thread that waits on a worker where any deadline is set. A per-OS-thread map keyed by
//!   green thread id does not, and its emptiness is the fast path: a started green thread never
//!   changes OS thread (rule 1 of docs/design.md), so its entry stays where it was made.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::runtime::context;

thread_local! {
    /// The deadline in force for each green thread that set one and runs on this OS thread,
    /// keyed by [`key`]. Written only by `timeout_at` on the thread that owns the entry.
    static DEADLINES: RefCell<BTreeMap<u64, Entry>> = const { RefCell::new(BTreeMap::new()) };
    /// `DEADLINES.len()`, readable without borrowing the map: almost every wait runs without
    /// a deadline, and finds that out from this alone.
    static IN_FORCE: Cell<usize> = const { Cell::new(0) };
}

/// One green thread's deadline in force.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    /// A call has returned its own timeout error for this deadline ([`report_timeout`]): the
    /// next one unwinds instead.
    reported: bool,
    /// Since the report, a call that did not have to wait has looked at the deadline at a
    /// spent budget ([`budget_look`]): the next such look unwinds.
    looked: bool,
}

/// The unwinding payload of an expired deadline: the deadline that passed.
struct DeadlineUnwind {
    deadline: Instant,
}

/// The error of [`timeout`]: the closure did not finish before the deadline, because a call
/// inside it would have waited past it.
///
/// ```
/// use std::time::Duration;
///
/// green::run(|| {
///     let err = green::timeout(Duration::from_millis(5), || green::sleep(Duration::from_secs(60)))
///         .unwrap_err();
///     assert_eq!(err.to_string(), "green::timeout: the deadline passed before the closure returned");
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("green::timeout: the deadline passed before the closure returned")
    }
}

impl std::error::Error for Elapsed {}

impl Elapsed {
    /// True if `error` reports a `green::timeout` deadline: an I/O call's error at the
    /// deadline (std's kind for the call's own timeout, `WouldBlock` for a read), or what `?`
    /// makes of a `timeout`'s `Err(Elapsed)` (`TimedOut`). Either carries an `Elapsed` inside,
    /// which is what this looks for: the kind alone cannot tell a deadline from the socket's
    /// own timeout.
    ///
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    /// use green::Elapsed;
    /// use green::net::{TcpListener, TcpStream};
    ///
    /// green::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let mut stream = TcpStream::connect(listener.local_addr()?)?;
    ///     stream.set_read_timeout(Some(Duration::from_millis(1)))?;
    ///     let own = stream.read(&mut [0; 8]).unwrap_err();
    ///     let deadline = green::timeout(Duration::from_millis(5), || {
    ///         stream.set_read_timeout(None)?;
    ///         stream.read(&mut [0; 8])
    ///     });
    ///     let deadline = deadline.unwrap().unwrap_err();
    ///     assert_eq!((own.kind(), deadline.kind()), (ErrorKind::WouldBlock, ErrorKind::WouldBlock));
    ///     assert!(!Elapsed::is_in(&own) && Elapsed::is_in(&deadline));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_in(error: &std::io::Error) -> bool {
        error.get_ref().is_some_and(|inner| inner.is::<Elapsed>())
    }
}

/// What `?` makes of a [`timeout`]'s `Err(Elapsed)` in a function that returns
/// `io::Result`: kind `TimedOut`, with the `Elapsed` inside. A socket call that reported the
/// deadline itself gives its own kind instead (`WouldBlock` for a read), with an `Elapsed`
/// inside too, so one handler can see either kind for the same deadline: tell it by the
/// `Elapsed`, not by the kind.
///
/// ```
/// use std::io::{self, ErrorKind, Read};
/// use std::time::Duration;
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let mut stream = TcpStream::connect(listener.local_addr()?)?;
///     let read = green::timeout(Duration::from_millis(5), || stream.read(&mut [0; 8])).unwrap().unwrap_err();
///     assert_eq!(read.kind(), ErrorKind::WouldBlock);
///     let slept = green::timeout(Duration::from_millis(5), || green::sleep(Duration::from_secs(60))).unwrap_err();
///     let slept = io::Error::from(slept);
///     assert_eq!(slept.kind(), ErrorKind::TimedOut);
///     assert!(green::Elapsed::is_in(&read) && green::Elapsed::is_in(&slept));
///     Ok::<(), io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, Elapsed)
    }
}

/// The error of an I/O call that reached the caller's `green::timeout` deadline: `kind`, the
/// kind std gives at the call's own timeout (`WouldBlock` for a socket read, `TimedOut` for a
/// connect or a `green::io` wait), with an [`Elapsed`] inside to tell the two apart. Made as
/// the call returns it, its wait undone: a second report of the deadline unwinds instead
/// ([`report_timeout`]).
pub(crate) fn elapsed_error(kind: std::io::ErrorKind) -> std::io::Error {
    report_timeout();
    std::io::Error::new(kind, Elapsed)
}

/// Runs `f` under a deadline `duration` from now, on the calling green thread (or OS thread).
///
/// What a call inside `f` does when it would wait past the deadline:
///
/// - A call with a timeout error of its own returns that error at the deadline:
///   `Receiver::recv_timeout`, the `timeout` arm of [`select!`](crate::select),
///   `Mutex::try_lock_for`, `Condvar::wait_timeout` (unless its relock must wait past the
///   deadline).
/// - A socket call returns the error std gives at a socket timeout: `WouldBlock` for a read,
///   write or accept, `TimedOut` for a connect. A [`green::io`](crate::io) wait returns
///   `TimedOut`. Either error holds an [`Elapsed`] (`e.get_ref()`), which tells it from the
///   socket's own timeout.
/// - A call without a timeout error (`recv`, `send`, `lock`, `join`, `sleep`,
///   `Barrier::wait`, ...) unwinds `f`, running its destructors, and `timeout` returns
///   `Err(Elapsed)`.
/// - [`green::park`](crate::park) and `park_timeout`, whose contract allows a spurious
///   return, return at the deadline; the next blocking-looking call then unwinds.
///
/// Most calls that need not wait are not affected. [`yield_now`](crate::yield_now) unwinds
/// once the deadline has passed. The socket and channel calls that may wait (a read, a write,
/// an accept; `recv`, `send`, a `select!` without `default`) look at the deadline once in a
/// budget's worth of calls even when they do not wait: every 64 calls with the default
/// budget, sooner if they move data (256 bytes count as a sixteenth of a call). Such a look
/// reports the deadline as a wait would. So a read loop on a peer that always has more ends
/// at the deadline, and so does a consumer that a fast producer keeps fed. Once the deadline
/// has been reported, the calls of one more budget still complete (enough to send an answer
/// to the timeout of up to about 256 KiB), and the next look unwinds.
///
/// Nested deadlines take the earliest. Green threads spawned inside do not inherit the
/// deadline. A [`scope`](crate::scope) that the deadline unwinds (or that waits for its green
/// threads past it) cancels the green threads spawned in it, waits until they have ended, and
/// only then unwinds to `timeout`.
///
/// Use it around code that must not take too long but was written without timeouts:
///
/// ```
/// use std::time::Duration;
/// use green::sync::mpsc;
///
/// green::run(|| {
///     let (tx, rx) = mpsc::channel::<u32>();
///     // Nobody sends: the recv would wait forever.
///     let got = green::timeout(Duration::from_millis(10), || rx.recv());
///     assert_eq!(got, Err(green::Elapsed));
///
///     tx.send(7).unwrap();
///     // A message is there: no waiting, no timeout (a loop of such calls would meet the
///     // deadline once it had spent a budget).
///     assert_eq!(green::timeout(Duration::ZERO, || rx.recv()), Ok(Ok(7)));
/// });
/// ```
///
/// Computing does not end at the deadline: a tick ([`tick`](crate::tick),
/// [`#[preemptible]`](macro@crate::preemptible)) lets others run but never unwinds. A long
/// computation under a deadline can call [`yield_now`](crate::yield_now) now and then, which
/// unwinds once the deadline has passed:
///
/// ```
/// use std::time::Duration;
///
/// green::run(|| {
///     let mut rounds = 0u64;
///     let got = green::timeout(Duration::from_millis(5), || loop {
///         rounds += 1;
///         std::hint::black_box((0..1_000u64).sum::<u64>());
///         green::yield_now(); // where the deadline can end the loop
///     });
///     assert_eq!(got, Err(green::Elapsed));
///     assert!(rounds > 0);
/// });
/// ```
///
/// A timeout error reports the deadline once. After one call has returned it, the next call
/// that would wait past the deadline unwinds, even one with a timeout error of its own: a loop
/// that takes a socket's `WouldBlock` for its read timeout and reads again (std's way to wake
/// now and then, say to look at a stop flag) ends at the deadline instead of failing at once,
/// over and over. Calls that need not wait still complete for one more budget, so code that
/// answers a timeout (a reply saying so, a log line) can still write to a socket with room in
/// its buffer. Tell the deadline's error by the [`Elapsed`] inside it ([`Elapsed::is_in`]):
///
/// ```
/// use std::io::{ErrorKind, Read};
/// use std::time::Duration;
/// use green::net::{TcpListener, TcpStream};
///
/// green::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let stream = TcpStream::connect(listener.local_addr()?)?;
///     stream.set_read_timeout(Some(Duration::from_millis(5)))?;
///     let mut deadline_seen = false;
///     let got = green::timeout(Duration::from_millis(20), || loop {
///         match (&stream).read(&mut [0; 64]) {
///             Err(e) if green::Elapsed::is_in(&e) => {
///                 deadline_seen = true; // once; the next read unwinds
///                 continue;
///             }
///             Err(e) if e.kind() == ErrorKind::WouldBlock => continue, // the read timeout: again
///             other => return other,
///         }
///     });
///     assert_eq!(got.unwrap_err(), green::Elapsed);
///     assert!(deadline_seen);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A deadline error in the middle of a call made of several reads or writes leaves it part
/// done, as a socket's own timeout does in std: `read_exact` has consumed bytes it does not
/// count (its buffer's contents are unspecified), `write_all` has sent a prefix of unknown
/// length, and `BufReader::read_line` has taken the bytes of the line so far out of its
/// buffer and appended them to the string (or dropped them, if they end inside a UTF-8
/// character; `read_until` into a `Vec` keeps them). The stream is then in the middle of a
/// message: answer if the protocol has a way (an HTTP `408`: a write that need not wait still
/// completes, so it goes out if the socket has room) and close it, rather than read or write
/// the next message on it.
///
/// With nested deadlines, an error with an [`Elapsed`] inside may be the outer deadline's
/// even inside the inner `timeout`. A retry loop need not tell the two apart: it can try
/// again on either, and if the outer deadline has passed, the next call that waits unwinds to
/// the outer `timeout`, which returns `Err(Elapsed)`.
///
/// A call with a timeout of its own reports the earlier of its timeout and the deadline:
///
/// ```
/// use std::time::Duration;
/// use green::sync::mpsc::{self, RecvTimeoutError};
///
/// green::run(|| {
///     let (_tx, rx) = mpsc::channel::<u32>();
///     let got = green::timeout(Duration::from_millis(5), || rx.recv_timeout(Duration::from_secs(60)));
///     assert_eq!(got, Ok(Err(RecvTimeoutError::Timeout)));
/// });
/// ```
///
/// # Panics
///
/// A panic in `f` goes on unwinding through `timeout` unchanged.
///
/// Under `panic = "abort"` nothing can unwind. A call without a timeout error of its own that
/// reaches the deadline aborts the process, with a message that says so. Only calls with a
/// timeout error of their own return at the deadline, and only once: where an unwinding build
/// would unwind (the next call after the report), the process aborts. Unwinding through an
/// `extern "C"` frame aborts the process, as for a panic.
pub fn timeout<F, T>(duration: Duration, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T,
{
    match Instant::now().checked_add(duration) {
        Some(deadline) => timeout_at(deadline, f),
        None => Ok(f()),
    }
}

/// Runs `f` under the deadline `deadline`; see [`timeout`].
///
/// A [`join`](crate::JoinHandle::join) under a deadline consumes its handle: when the
/// deadline passes, the handle is dropped and its green thread runs on, detached (a scoped
/// one runs on until it ends by itself, and its scope waits for it). To cancel a green thread
/// that did not finish in time, wait with
/// [`JoinHandle::wait_timeout`](crate::JoinHandle::wait_timeout) (or
/// [`ScopedJoinHandle::wait_timeout`](crate::ScopedJoinHandle::wait_timeout)), which keeps the
/// handle.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// green::run(|| {
///     let deadline = Instant::now() + Duration::from_millis(5);
///     let slow = green::spawn(|| green::sleep(Duration::from_secs(60)));
///     assert!(green::timeout_at(deadline, || slow.join()).is_err()); // `slow` runs on
/// });
/// ```
pub fn timeout_at<F, T>(deadline: Instant, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T,
{
    let key = key();
    let previous = DEADLINES.with(|d| d.borrow().get(&key).copied());
    // An inner scope that inherits the enclosing deadline inherits whether it was reported.
    let entry = match previous {
        Some(p) if p.at <= deadline => p,
        _ => Entry { at: deadline, reported: false, looked: false },
    };
    DEADLINES.with(|d| {
        let mut d = d.borrow_mut();
        d.insert(key, entry);
        IN_FORCE.with(|n| n.set(d.len()));
    });
    let _restore = Restore { key, previous };
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<DeadlineUnwind>() {
            Ok(unwind) if unwind.deadline == deadline => {
                crate::park::clear_runtime_unwind();
                Err(Elapsed)
            }
            // An outer deadline passed: let it reach the `timeout` that set it.
            Ok(unwind) => crate::park::runtime_unwind(unwind),
            Err(payload) => panic::resume_unwind(payload),
        },
    }
}

/// Puts back the enclosing deadline when a scope ends, however it ends.
struct Restore {
    key: u64,
    previous: Option<Entry>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // `try_with`: the thread-local may be gone if an OS thread's locals are being destroyed.
        let _ = DEADLINES.try_with(|d| {
            let mut d = d.borrow_mut();
            let ending = d.remove(&self.key);
            if let Some(mut previous) = self.previous {
                // The enclosing deadline, if it was the one in force here, keeps a report made
                // inside.
                if let Some(ending) = ending.filter(|e| e.at == previous.at) {
                    previous.reported |= ending.reported;
                    previous.looked |= ending.looked;
                }
                d.insert(self.key, previous);
            }
            let _ = IN_FORCE.try_with(|n| n.set(d.len()));
        });
    }
}

/// The running green thread's id, or 0 on an OS thread (or a worker's own stack outside any
/// green thread).
fn key() -> u64 {
    context::with_core(|core| core.and_then(|c| c.with_current(|h| h.map(|h| h.id.get())))).unwrap_or(0)
}

/// True if some `green::timeout` is in force on this OS thread (for any of its green
/// threads): the one thread-local read that keeps the deadline off hot paths.
#[inline(always)]
pub(crate) fn any_in_force() -> bool {
    IN_FORCE.try_with(Cell::get).unwrap_or(0) != 0
}

/// The deadline in force for the caller, if any.
#[inline]
pub(crate) fn current() -> Option<Instant> {
    if IN_FORCE.try_with(Cell::get).unwrap_or(0) == 0 {
        return None;
    }
    DEADLINES
        .try_with(|d| {
            let d = d.borrow();
            if d.is_empty() { None } else { d.get(&key()).map(|e| e.at) }
        })
        .ok()
        .flatten()
}

/// True if `payload` is the unwind of an expired deadline.
pub(crate) fn is_unwind(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<DeadlineUnwind>()
}

/// True if the caller's deadline has passed.
#[inline]
pub(crate) fn passed() -> bool {
    current().is_some_and(|d| Instant::now() >= d)
}

/// Unwinds to the enclosing `green::timeout` if its deadline has passed. Does nothing while
/// unwinding (rule 3 of docs/design.md) or on a worker's own stack.
#[inline]
pub(crate) fn raise_if_passed() {
    if passed() {
        raise();
    }
}

/// Unwinds to the enclosing `green::timeout`: a call without a timeout error of its own would
/// wait past the deadline. Does nothing while unwinding or on a worker's own stack, where the
/// caller goes on with its own rule.
pub(crate) fn raise() {
    let Some(deadline) = current() else { return };
    let on_worker_stack = context::with_core(|c| c.is_some_and(|c| !c.in_green_thread()));
    if std::thread::panicking() || on_worker_stack {
        return;
    }
    crate::park::runtime_unwind(Box::new(DeadlineUnwind { deadline }));
}

/// Called by a call with a timeout error of its own as it returns that error, its wait over
/// (and undone). Once the caller's deadline has passed, the first such return in the
/// deadline's scope goes ahead: the code inside learns of the deadline as it learns of the
/// call's own timeout. A later one unwinds to the `timeout` instead, as a call without a
/// timeout error does, so that a loop which takes the error for a cue to try again ends at the
/// deadline instead of spinning. Nothing happens while unwinding or on a worker's own stack.
pub(crate) fn report_timeout() {
    if !passed() {
        return;
    }
    let key = key();
    let again =
        DEADLINES.with(|d| d.borrow_mut().get_mut(&key).is_some_and(|e| std::mem::replace(&mut e.reported, true)));
    if again {
        raise();
    }
}

/// What a call that may wait but did not have to looks at once per budget (when its tick
/// spent one: `coop::tick_op_spent`): such calls never reach a wait's look at the deadline, and
/// a loop of them (a reader of a peer that always has more, a consumer kept fed) ran on past it.
/// True when the caller's deadline has passed and has not been reported: the call returns its
/// timeout error now, or unwinds ([`raise`]) if it has none. A deadline reported already lets
/// the calls of one more budget complete (an answer to the timeout can still be sent) and
/// unwinds at the next look, so a loop that takes the error for a cue to go on ends too.
/// Nothing happens while unwinding or on a worker's own stack.
#[cold]
#[inline(never)]
pub(crate) fn budget_look() -> bool {
    let on_worker_stack = context::with_core(|c| c.is_some_and(|c| !c.in_green_thread()));
    if std::thread::panicking() || on_worker_stack || !passed() {
        return false;
    }
    enum Look {
        Report,
        Pass,
        Unwind,
    }
    let key = key();
    let look = DEADLINES.with(|d| match d.borrow_mut().get_mut(&key) {
        Some(e) if !e.reported => {
            e.reported = true;
            Look::Report
        }
        Some(e) if e.looked => Look::Unwind,
        Some(e) => {
            e.looked = true;
            Look::Pass
        }
        None => Look::Pass,
    });
    match look {
        Look::Report => true,
        Look::Pass => false,
        Look::Unwind => {
            raise();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_deadlines_take_the_earliest_and_are_restored() {
        let far = Instant::now() + Duration::from_secs(3600);
        let near = Instant::now() + Duration::from_secs(60);
        assert_eq!(current(), None);
        timeout_at(far, || {
            assert_eq!(current(), Some(far));
            timeout_at(near, || assert_eq!(current(), Some(near))).unwrap();
            assert_eq!(current(), Some(far));
            // A later inner deadline does not extend the outer one.
            timeout_at(far + Duration::from_secs(1), || assert_eq!(current(), Some(far))).unwrap();
        })
        .unwrap();
        assert_eq!(current(), None);
    }

    #[test]
    fn an_outer_deadline_passes_through_an_inner_timeout() {
        let outer = timeout(Duration::from_millis(1), || {
            let inner = timeout(Duration::from_secs(3600), || {
                std::thread::sleep(Duration::from_millis(2));
                raise();
                unreachable!("the outer deadline has passed");
            });
            unreachable!("the inner timeout let it through, got {inner:?}");
        });
        assert_eq!(outer, Err::<(), _>(Elapsed));
        assert_eq!(current(), None);
    }

    #[test]
    fn restored_after_a_panic() {
        let caught = std::panic::catch_unwind(|| {
            let _ = timeout(Duration::from_secs(1), || panic!("boom"));
        });
        assert!(caught.is_err());
        assert_eq!(current(), None);
    }
}
