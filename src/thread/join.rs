//! Waiting for a green thread: `JoinHandle` and `JoinError`.

use std::any::Any;
use std::fmt;
use std::io;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use super::{GreenThread, GreenThreadId, outcome_released};
use crate::park::{self, ParkReason, WaitEdge, cancellation_point};
use crate::runtime::context;
use crate::runtime::task::{Header, JoinRef, TaskRef};
use crate::sync::wait::{Stop, Wait, stop_without_error};

/// An owned permission to join a green thread, like [`std::thread::JoinHandle`].
///
/// Dropping it detaches the green thread: it keeps running, and its result is dropped when it
/// finishes.
pub struct JoinHandle<T> {
    /// `None` only inside `join`, after the outcome was taken.
    task: Option<JoinRef<T>>,
    /// What [`thread`](JoinHandle::thread) lends out.
    thread: Lent,
}

/// What [`JoinHandle::thread`] lends: a `GreenThread` made at the first call, in a box of its
/// own. Most handles are only joined: they never count the reference it holds, and stay two
/// words (a million parked green threads keep a million handles; a `OnceLock<GreenThread>`
/// inline made each 24 bytes larger).
struct Lent(AtomicPtr<GreenThread>);

impl Lent {
    const fn new() -> Lent {
        Lent(AtomicPtr::new(ptr::null_mut()))
    }

    /// The lent `GreenThread`, made by `make` if there is none yet. Two threads may race to
    /// make it (a `&JoinHandle` is shared); one box wins, the other is freed unseen.
    fn get_or_make(&self, make: impl FnOnce() -> GreenThread) -> &GreenThread {
        let current = self.0.load(Ordering::Acquire);
        if !current.is_null() {
            // SAFETY: a non-null pointer here came from `Box::into_raw` below, published with
            // release; it is freed only in `drop`, which no borrow of `self` outlives.
            return unsafe { &*current };
        }
        let new = Box::into_raw(Box::new(make()));
        match self.0.compare_exchange(ptr::null_mut(), new, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: as above, and now this one is there.
            Ok(_) => unsafe { &*new },
            Err(winner) => {
                // SAFETY: `new` was never published: this call still owns it.
                drop(unsafe { Box::from_raw(new) });
                // SAFETY: as above.
                unsafe { &*winner }
            }
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let lent = *self.0.get_mut();
        if !lent.is_null() {
            // SAFETY: from `Box::into_raw` in `get_or_make`; `&mut self` means nothing borrows it.
            drop(unsafe { Box::from_raw(lent) });
        }
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: JoinRef<T>) -> JoinHandle<T> {
        JoinHandle { task: Some(task), thread: Lent::new() }
    }

    fn task(&self) -> &TaskRef {
        self.task.as_ref().expect(internal_error!("a JoinHandle was used after its join")).task()
    }

    pub(crate) fn task_ref(&self) -> TaskRef {
        self.task().clone()
    }

    /// Waits for the green thread to finish and returns its result: its return value, or a
    /// [`JoinError`] if it panicked, was cancelled, or could not start (or, joined by a green
    /// thread that unwinds, had not finished: see Errors).
    ///
    /// From a green thread this parks (the worker runs others meanwhile), and it is a
    /// cancellation point; from a plain OS thread it blocks that thread. While the runtime
    /// shuts down, a green thread whose join finds the other cancelled unwinds as cancelled
    /// (the shutdown cancels it too) rather than get that error: `join().unwrap()` does not
    /// panic there. A green thread that its runtime leaked at shutdown (it outlived its
    /// cancellation and [`shutdown_timeout`](crate::runtime::Builder::shutdown_timeout)) never
    /// finishes: joining it waits for good.
    ///
    /// ```
    /// green::run(|| {
    ///     let ok = green::spawn(|| 7);
    ///     assert_eq!(ok.join().unwrap(), 7);
    ///     let bad = green::spawn(|| panic!("boom"));
    ///     let err = bad.join().unwrap_err();
    ///     assert!(err.is_panic());
    ///     assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// Besides the panic, cancellation or start failure of the green thread: a green thread
    /// that joins another while it unwinds (a join in a destructor, during a panic, a
    /// cancellation or the runtime's shutdown) cannot park
    /// ([while unwinding](crate::sync#while-unwinding)). If the other has not finished, the
    /// join returns at once with an error for which [`JoinError::is_unfinished`] is true, and
    /// the other goes on, detached.
    ///
    /// ```
    /// struct JoinOnDrop(Option<green::JoinHandle<()>>);
    /// impl Drop for JoinOnDrop {
    ///     fn drop(&mut self) {
    ///         if let Some(h) = self.0.take() {
    ///             let _ = h.join(); // returns at once if this green thread unwinds
    ///         }
    ///     }
    /// }
    /// green::run(|| {
    ///     let parent = green::spawn(|| {
    ///         let _child = JoinOnDrop(Some(green::spawn(|| green::sleep(std::time::Duration::from_secs(60)))));
    ///         panic!("unwinds through the join");
    ///     });
    ///     assert!(parent.join().unwrap_err().is_panic());
    /// });
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        let target = self.task().header();
        if !wait_done(target) {
            return Err(JoinError::unfinished(target));
        }
        let outcome = self.take_finished();
        if outcome.as_ref().is_err_and(JoinError::is_cancelled) {
            // The runtime's shutdown cancels every green thread, the joiner too, though its
            // worker may not have come round to it yet (it was running, or was woken by the
            // other's end before its own cancellation): it unwinds now as it would a moment
            // later, rather than hand the shutdown's work to its code as an error (where
            // `join().unwrap()` would panic).
            park::unwind_if_shutting_down();
        }
        outcome
    }

    /// Like `join`, but the wait is not a cancellation point and ignores `green::timeout`
    /// deadlines: for callers that lent the green thread borrowed data and must not return
    /// before it has finished (`Runtime::block_on`).
    pub(crate) fn join_uncancellable(self) -> Result<T, JoinError> {
        let target = self.task().header();
        let edge = WaitEdge::join(target);
        while !target.is_done() {
            park::wait_for(ParkReason::Join, |waiter| target.register_joiner(waiter), None);
        }
        drop(edge);
        self.take_finished()
    }

    /// The outcome of a green thread that is DONE (the caller saw it), consuming the handle.
    fn take_finished(mut self) -> Result<T, JoinError> {
        let task = self.task.take().expect(internal_error!("a JoinHandle was used after its join"));
        debug_assert!(task.task().header().is_done());
        // SAFETY: the caller saw DONE, and the handle was not released before, so the handle
        // owns the outcome (`Header::release_handle`); consuming it makes this the only take.
        let outcome = unsafe { task.take_output() };
        // Nothing is left to drop, and the scope has seen the outcome.
        if let Some(scope) = &task.task().header().scope {
            scope.child_done(None);
        }
        outcome
    }

    /// Waits at most `timeout` for the green thread to finish; true if it has. The handle
    /// stays the caller's either way, so a green thread still running at the timeout can be
    /// [cancelled](JoinHandle::cancel), and one that finished is then [joined](JoinHandle::join)
    /// without waiting.
    ///
    /// This is how a graceful shutdown gives its connections a deadline. Joining inside
    /// [`green::timeout`](crate::timeout) cannot: `join` consumes its handle, so the one that
    /// was waiting when the deadline passed is dropped, and its green thread, detached, runs on.
    ///
    /// A cancellation point. Inside `green::timeout`, it returns false at that deadline if it
    /// comes first (once; the next wait past it unwinds). A green thread that is unwinding
    /// cannot park ([while unwinding](crate::sync#while-unwinding)): there it returns at once,
    /// true only if the other has finished, and so it does on a worker's own stack while
    /// unwinding. From a plain OS thread it blocks that thread.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// green::run(|| {
    ///     let quick = green::spawn(|| green::sleep(Duration::from_millis(1)));
    ///     let stuck = green::spawn(|| green::sleep(Duration::from_secs(3600)));
    ///     // Give every green thread until one deadline, then cancel those still running.
    ///     let deadline = Instant::now() + Duration::from_millis(50);
    ///     let mut finished = 0;
    ///     for mut handle in [quick, stuck] {
    ///         if handle.wait_timeout(deadline.saturating_duration_since(Instant::now())) {
    ///             finished += 1;
    ///         } else {
    ///             handle.cancel();
    ///         }
    ///         let _ = handle.join(); // at once if it finished; else as soon as it has unwound
    ///     }
    ///     assert_eq!(finished, 1);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Inside [`on_worker_stack`](crate::on_worker_stack) (but for a destructor run while
    /// unwinding there), if the green thread has not finished: no green thread can park there.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        crate::coop::tick_op();
        let target = self.task().header();
        if target.is_done() {
            return true;
        }
        let wait = Wait::failing(Instant::now().checked_add(timeout));
        let _edge = WaitEdge::join(target);
        loop {
            if target.is_done() {
                return true;
            }
            match wait.check() {
                None => {}
                Some(Stop::TimedOut | Stop::Unwinding) => {
                    crate::deadline::report_timeout();
                    return target.is_done();
                }
                // Code on a worker's own stack cannot park either; while it unwinds (a
                // destructor), a panic here would abort the process: return, as `join` does.
                Some(Stop::WorkerStack) if std::thread::panicking() => return target.is_done(),
                Some(stop) => stop_without_error(stop, "green::JoinHandle::wait_timeout", String::new),
            }
            // `&mut self` makes the caller the only joiner, as `join(self)` does for its waits:
            // what `register_joiner` requires. A waiter left there by an earlier round or call
            // is replaced; a wake it gets late is stale and ignored.
            park::wait_for(ParkReason::Join, |waiter| target.register_joiner(waiter), wait.deadline());
        }
    }

    /// True once the green thread has finished (returned, panicked, been cancelled, or failed
    /// to start). It does not wait: [`wait_timeout`](JoinHandle::wait_timeout) does.
    ///
    /// ```
    /// green::run(|| {
    ///     let (tx, rx) = green::sync::mpsc::channel::<()>();
    ///     let handle = green::spawn(move || rx.recv().is_err());
    ///     assert!(!handle.is_finished()); // waits for a message, or for the sender to go
    ///     drop(tx);
    ///     while !handle.is_finished() {
    ///         green::yield_now();
    ///     }
    ///     assert!(handle.join().unwrap());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task().header().is_done()
    }

    /// The green thread's handle, like [`std::thread::JoinHandle::thread`]: borrowed from the
    /// join handle, as std's is, so what it lends (its name) lives as long as the join handle.
    ///
    /// ```
    /// green::run(|| {
    ///     let handle = green::Builder::new().name("named".into()).spawn(|| ()).unwrap();
    ///     let name = handle.thread().name();
    ///     assert_eq!(name, Some("named"));
    ///     let thread: green::thread::Thread = handle.thread().clone(); // outlives the handle
    ///     handle.join().unwrap();
    ///     assert_eq!(thread.name(), Some("named"));
    /// });
    /// ```
    pub fn thread(&self) -> &GreenThread {
        self.thread.get_or_make(|| GreenThread::new(self.task_ref()))
    }

    /// Cancels the green thread: at its next cancellation point (any blocking-looking call, or
    /// [`crate::yield_now`]; at once if it is parked in one) it unwinds, running its
    /// destructors, and [`JoinHandle::join`] reports it cancelled. A socket call that does not
    /// have to wait (its peer always has more) looks for the cancellation once in a budget's
    /// worth of calls (64 with the default budget). A green thread that has not
    /// started yet never starts: its worker drops the closure, on the worker's own stack, where
    /// a destructor of a value it captured cannot wait (a contended lock there panics, and the
    /// panic is caught and logged). Does nothing if it has finished.
    ///
    /// Under `panic = "abort"` nothing unwinds. A started green thread runs on: its waits that
    /// can fail fail at once (a socket call, a channel's `recv`, a join), a sleep returns, and
    /// `join` gives whatever its closure returns once its code has ended through those errors
    /// (rule 7 in docs/design.md; `examples/panic_abort.rs`). One that has not started never
    /// starts, as in any build, and `join` reports it cancelled.
    ///
    /// A tick ([`crate::tick`], `#[preemptible]` loops) is not a cancellation point: code that
    /// only computes runs on until its next blocking-looking call or `yield_now`. Long
    /// computations that should stop early can check [`crate::is_cancelled`] as they go.
    ///
    /// ```
    /// green::run(|| {
    ///     let sleeper = green::spawn(|| green::sleep(std::time::Duration::from_secs(3600)));
    ///     sleeper.cancel();
    ///     assert!(sleeper.join().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) {
        let task = self.task();
        if task.header().cancel() {
            park::schedule(task.clone());
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take()
            && task.task().header().release_handle()
        {
            outcome_released(task.task());
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.task.as_ref().map(JoinRef::task) {
            Some(task) => f
                .debug_struct("JoinHandle")
                .field("id", &task.header().id)
                .field("name", &task.header().name)
                .field("finished", &task.header().is_done())
                .finish(),
            None => f.write_str("JoinHandle(joined)"),
        }
    }
}

/// Waits until the green thread of `header` is DONE; false if it is not and the caller, a
/// green thread (or code on a worker's stack) that unwinds, cannot wait (rule 3).
pub(crate) fn wait_done(target: &Header) -> bool {
    crate::coop::tick_op();
    if target.is_done() {
        return true;
    }
    let _edge = WaitEdge::join(target);
    while !target.is_done() {
        cancellation_point();
        if park::must_not_wait() && context::with_core(|c| c.is_some()) {
            return false;
        }
        park::wait_for(ParkReason::Join, |waiter| target.register_joiner(waiter), park::honoured_deadline(None));
    }
    true
}

/// Why a green thread produced no value: it panicked, was cancelled, or could not start; or,
/// joined by a green thread that was unwinding, it had not finished ([`JoinError::is_unfinished`]).
///
/// It is `Send` and `Sync` (the panic payload inside is reached only by value), so `?` turns it
/// into a `Box<dyn Error + Send + Sync>` as into an [`io::Error`].
pub struct JoinError(Box<Inner>);

/// Boxed: a green thread's outcome (`Result<T, JoinError>`) lives in its task, and an error is
/// rare; one pointer keeps the task as small as the value alone would (a 64-byte `JoinError`
/// made spawn + join 20% slower).
struct Inner {
    id: GreenThreadId,
    name: Option<Arc<str>>,
    repr: Repr,
}

enum Repr {
    Panicked {
        payload: Payload,
        /// The payload's text, if it is a `&str` or a `String`, taken out for `Display`.
        text: Option<Box<str>>,
    },
    /// `unstarted`: dropped before it ever ran, because the runtime was shutting down.
    Cancelled {
        unstarted: bool,
    },
    FailedToStart(io::Error),
    /// Not finished when a joiner that was unwinding, and so could not wait, joined it.
    Unfinished,
}

/// A panic payload that no shared reference can reach: [`JoinError`] hands it out only by
/// value, so sharing a `&JoinError` between threads never shares the payload.
struct Payload(Box<dyn Any + Send + 'static>);

// SAFETY: the box is reached only through an owned `Payload` (`JoinError::try_into_panic` moves
// it out); no method takes `&Payload` or `&JoinError` to the payload, so a shared reference
// gives no access to it from another thread.
unsafe impl Sync for Payload {}

impl JoinError {
    pub(crate) fn panicked(header: &Header, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        let text = payload_text(&*payload).map(Box::from);
        JoinError::new(header, Repr::Panicked { payload: Payload(payload), text })
    }

    pub(crate) fn cancelled(header: &Header) -> JoinError {
        JoinError::new(header, Repr::Cancelled { unstarted: false })
    }

    /// Dropped before it ever ran: the runtime was shutting down.
    pub(crate) fn dropped_unstarted(header: &Header) -> JoinError {
        JoinError::new(header, Repr::Cancelled { unstarted: true })
    }

    /// Joined, unfinished, by a green thread that unwinds and cannot wait.
    pub(crate) fn unfinished(header: &Header) -> JoinError {
        JoinError::new(header, Repr::Unfinished)
    }

    pub(crate) fn failed_to_start(header: &Header, error: io::Error) -> JoinError {
        JoinError::new(header, Repr::FailedToStart(error))
    }

    /// The same error with a panic's payload dropped (its text kept): dropping a payload runs
    /// user code, which may panic; that panic is caught and logged.
    pub(crate) fn without_payload(mut self) -> JoinError {
        if let Repr::Panicked { payload, .. } = &mut self.0.repr {
            let payload = std::mem::replace(payload, Payload(Box::new(())));
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload))).is_err() {
                log::warn!("green: dropping the panic payload of green thread {} panicked", self.0.id);
            }
        }
        self
    }

    fn new(header: &Header, repr: Repr) -> JoinError {
        JoinError(Box::new(Inner { id: GreenThreadId(header.id), name: header.name.clone(), repr }))
    }

    /// The green thread this is about.
    pub fn id(&self) -> GreenThreadId {
        self.0.id
    }

    /// The green thread's name, if it was given one (the first green thread of [`crate::run`]
    /// is named `"main"`).
    ///
    /// ```
    /// green::run(|| {
    ///     let failed = green::Builder::new().name("parser".into()).spawn(|| panic!("bad input")).unwrap();
    ///     let e = failed.join().unwrap_err();
    ///     assert_eq!(e.name(), Some("parser"));
    ///     assert!(e.to_string().contains("\"parser\" panicked: bad input"), "{e}");
    /// });
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// True if the green thread panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.0.repr, Repr::Panicked { .. })
    }

    /// True if the green thread was cancelled (or dropped unstarted at shutdown).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.0.repr, Repr::Cancelled { .. })
    }

    /// True if the green thread had not finished when a green thread that was unwinding (and
    /// so could not wait) joined it: it goes on, detached. See [`JoinHandle::join`].
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// struct JoinOnDrop(Option<green::JoinHandle<()>>, Arc<Mutex<bool>>);
    /// impl Drop for JoinOnDrop {
    ///     fn drop(&mut self) {
    ///         let e = self.0.take().unwrap().join().unwrap_err();
    ///         *self.1.lock().unwrap() = e.is_unfinished();
    ///     }
    /// }
    /// green::run(|| {
    ///     let unfinished = Arc::new(Mutex::new(false));
    ///     let seen = unfinished.clone();
    ///     let parent = green::spawn(move || {
    ///         let sleeper = green::spawn(|| green::sleep(std::time::Duration::from_secs(60)));
    ///         let _join_on_drop = JoinOnDrop(Some(sleeper), seen);
    ///         panic!("unwinds through the join");
    ///     });
    ///     assert!(parent.join().unwrap_err().is_panic());
    ///     assert!(*unfinished.lock().unwrap());
    /// });
    /// ```
    pub fn is_unfinished(&self) -> bool {
        matches!(self.0.repr, Repr::Unfinished)
    }

    /// The error that kept the green thread from starting (no stack could be had for it), if
    /// that is what happened.
    pub fn start_error(&self) -> Option<&io::Error> {
        match &self.0.repr {
            Repr::FailedToStart(e) => Some(e),
            _ => None,
        }
    }

    /// The panic's message, if the green thread panicked with one (`panic!` with a literal or
    /// with arguments, whose payloads are a `&str` and a `String`): what code written against
    /// std reads with `err.downcast_ref::<&str>()` or `::<String>()`. The payload itself is
    /// reached by value only ([`JoinError::into_panic`]): it need not be `Sync`, and a
    /// `JoinError` is.
    ///
    /// ```
    /// green::run(|| {
    ///     let err = green::spawn(|| panic!("bad input: {}", 7)).join().unwrap_err();
    ///     assert_eq!(err.panic_message(), Some("bad input: 7"));
    ///     let err = green::spawn(|| std::panic::panic_any(7u8)).join().unwrap_err();
    ///     assert!(err.is_panic() && err.panic_message().is_none());
    /// });
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match &self.0.repr {
            Repr::Panicked { text, .. } => text.as_deref(),
            _ => None,
        }
    }

    /// The panic payload, to resume with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the error is not a panic; see [`JoinError::try_into_panic`].
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic().unwrap_or_else(|e| panic!("JoinError::into_panic on an error that is not a panic: {e}"))
    }

    /// The panic payload, or the error itself if it is not a panic.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        if self.is_panic() {
            let Repr::Panicked { payload, .. } = self.0.repr else {
                panic!(internal_error!("a JoinError checked to be a panic is not one"))
            };
            return Ok(payload.0);
        }
        Err(self)
    }
}

fn payload_text(payload: &(dyn Any + Send)) -> Option<&str> {
    payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "green thread {}", self.0.id)?;
        if let Some(name) = &self.0.name {
            write!(f, " \"{name}\"")?;
        }
        match &self.0.repr {
            Repr::Panicked { text: Some(text), .. } => write!(f, " panicked: {text}"),
            Repr::Panicked { text: None, .. } => write!(f, " panicked"),
            Repr::Cancelled { unstarted: false } => write!(f, " was cancelled"),
            Repr::Cancelled { unstarted: true } => {
                write!(f, " was cancelled before it started: its runtime was shutting down, or had shut down")
            }
            Repr::FailedToStart(e) => write!(f, " could not start: {e}"),
            Repr::Unfinished => write!(
                f,
                " had not finished when it was joined by a green thread that was unwinding (or was cancelled, in \
                 a panic = \"abort\" build), which cannot wait; it goes on, detached"
            ),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.0.repr {
            Repr::Panicked { .. } => "Panicked",
            Repr::Cancelled { .. } => "Cancelled",
            Repr::FailedToStart(_) => "FailedToStart",
            Repr::Unfinished => "Unfinished",
        };
        f.debug_struct("JoinError")
            .field("id", &self.0.id)
            .field("kind", &kind)
            .field("message", &self.to_string())
            .finish()
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.repr {
            Repr::FailedToStart(e) => Some(e),
            _ => None,
        }
    }
}

/// A green thread that failed to start gives its start error's kind; a cancelled, panicked or
/// unfinished one gives [`io::ErrorKind::Other`], with what happened in the message. (Not `Interrupted`: std's
/// `read_exact`, `write_all` and `io::copy` retry that kind, and would retry for ever.)
///
/// ```
/// green::run(|| {
///     let slow = green::spawn(|| green::sleep(std::time::Duration::from_secs(60)));
///     slow.cancel();
///     let e = std::io::Error::from(slow.join().unwrap_err());
///     assert_eq!(e.kind(), std::io::ErrorKind::Other);
///     assert!(e.to_string().contains("cancelled"), "{e}");
/// });
/// ```
impl From<JoinError> for io::Error {
    fn from(e: JoinError) -> io::Error {
        let kind = match &e.0.repr {
            Repr::FailedToStart(inner) => inner.kind(),
            Repr::Cancelled { .. } | Repr::Panicked { .. } | Repr::Unfinished => io::ErrorKind::Other,
        };
        io::Error::new(kind, e.to_string())
    }
}
