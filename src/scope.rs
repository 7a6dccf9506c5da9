//! Scoped green threads: spawn green threads that borrow from the caller's stack, with the
//! rules of [`std::thread::scope`].
//!
//! The scope does not return before every green thread spawned in it has finished and its
//! result has been taken or dropped. That holds on every path out, including the one where the
//! green thread that opened the scope is cancelled (rule 7 of docs/design.md): the scope
//! catches the cancellation, cancels its children, waits for them, and only then lets the
//! cancellation go on, so a child never outlives the frame it borrows from. The caller's
//! `green::timeout` deadline is handled the same way, whether it passes inside `f` or during
//! the final wait.
//!
//! Nothing may unwind out of the final wait while a child runs. So a scope refuses to open
//! where it could not wait (on a worker's own stack, before any child exists), and a green
//! thread that would have to park for its children while unwinding aborts with a message
//! (rule 3 of docs/design.md) instead of leaving them with a dangling borrow.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::park::{self, ParkReason, Waiter};
use crate::runtime::task::{Cancelled, TaskRef};
use crate::runtime::{Handle, context};
use crate::sync::wait::describe_current;
use crate::thread::{self, GreenThread, JoinError, JoinHandle};

/// Cancels `child`, scheduling it if it was parked.
fn cancel(child: &TaskRef) {
    if child.header().cancel() {
        park::schedule(child.clone());
    }
}

/// The bookkeeping of one scope.
#[derive(Debug, Default)]
pub(crate) struct ScopeData {
    /// Children whose outcome has not been released yet.
    running: AtomicUsize,
    /// The first child that panicked with no one to join it, and how many did.
    unseen_panics: Mutex<(Option<JoinError>, usize)>,
    /// The green thread (or OS thread) waiting for `running` to reach 0.
    waiter: Mutex<Option<Waiter>>,
    /// The children, to cancel them when the scope's owner is cancelled. Finished ones are
    /// pruned as the list grows.
    children: Mutex<Vec<TaskRef>>,
    /// Set (under the `children` lock) once the children were cancelled: a child spawned into
    /// the scope after that (by a sibling, or a destructor running in an unwinding child) is
    /// cancelled as it is added, or the owner would wait for it to end by itself.
    cancelled: AtomicBool,
}

impl ScopeData {
    /// A child finished and its outcome was taken or dropped.
    pub(crate) fn child_done(&self, unseen_panic: Option<JoinError>) {
        if let Some(e) = unseen_panic {
            let mut panics = self.unseen_panics.lock().unwrap_or_else(|e| e.into_inner());
            panics.0.get_or_insert(e);
            panics.1 += 1;
        }
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waiter = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        }
    }

    fn cancel_children(&self) {
        let children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        self.cancelled.store(true, Ordering::Relaxed);
        for child in children.iter() {
            cancel(child);
        }
    }

    /// Waits until every child is done. Never unwinds, and is not a cancellation point: if the
    /// owner is cancelled meanwhile, or its `green::timeout` deadline passes, the children are
    /// cancelled and the wait goes on. Returns true if the deadline was the reason.
    fn wait_all(&self) -> bool {
        let mut passed_on = false;
        let mut deadline_passed = false;
        while self.running.load(Ordering::Acquire) != 0 {
            if !passed_on && crate::is_cancelled() {
                self.cancel_children();
                passed_on = true;
            }
            if !passed_on && !std::thread::panicking() && crate::deadline::passed() {
                self.cancel_children();
                (passed_on, deadline_passed) = (true, true);
            }
            if std::thread::panicking() && context::with_core(|core| core.is_some_and(|c| c.in_green_thread())) {
                crate::abort_with(&format!(
                    "green: {} opened a green::scope while unwinding, and {} of its scoped green \
                     threads are still running. A green thread cannot park while unwinding (its worker \
                     would carry the panic to other green threads), and the scope cannot return before \
                     they finish: they borrow its frame. Do not open a scope in a destructor that may \
                     run during a panic",
                    describe_current(),
                    self.running.load(Ordering::Acquire)
                ));
            }
            // Parks until woken or the caller's deadline, if any, so that the loop sees it pass.
            park::wait_for(
                ParkReason::Join,
                |waiter| {
                    let mut slot = self.waiter.lock().unwrap_or_else(|e| e.into_inner());
                    if self.running.load(Ordering::Acquire) == 0 {
                        return false;
                    }
                    *slot = Some(waiter);
                    true
                },
                // Until the deadline while it may still cancel the children, even if it passes
                // after the look above; no longer once they are cancelled.
                if passed_on { None } else { park::honoured_deadline(None) },
            );
        }
        deadline_passed
    }
}

/// Aborts if dropped: armed around a scope's final wait, which must not unwind while its
/// children may still borrow the scope's frame.
struct NoUnwind;

impl Drop for NoUnwind {
    fn drop(&mut self) {
        crate::abort_with(internal_error!("a green::scope's wait for its green threads unwound while they ran"));
    }
}

/// A scope to spawn borrowing green threads in; see [`scope`].
#[derive(Debug)]
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    handle: Handle,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// Creates a scope for spawning green threads that borrow from the caller, like
/// [`std::thread::scope`]. Every green thread spawned in it is joined before `scope` returns.
///
/// # Panics
///
/// If a child panicked and was not joined, `scope` panics after they have all finished. If `f`
/// panics, the panic goes on after they have all finished, and the children's panics are only
/// printed, as with std. A cancellation or a `green::timeout` deadline that unwinds `f` goes
/// on the same way; one that comes in the final wait, after `f` returned, gives way to the
/// children's panics as `f`'s value does. Panics outside a runtime, and on a
/// worker's own stack ([`crate::on_worker_stack`]), where it could not wait for its children.
///
/// # Cancellation
///
/// The end of the scope, where it waits for its children, is a cancellation point. If the green
/// thread that opened it is cancelled (in `f` or during that wait), the children are cancelled,
/// and once they have all finished the cancellation goes on: `scope` does not return what `f`
/// returned, which may lack the children's work. A `green::timeout` deadline that passes works
/// the same way, and unwinds to its `green::timeout`.
///
/// ```
/// let mut numbers = vec![1, 2, 3];
/// let total: i32 = green::run(|| {
///     green::scope(|s| {
///         let sum = s.spawn(|| numbers.iter().sum::<i32>());
///         let max = s.spawn(|| *numbers.iter().max().unwrap());
///         sum.join().unwrap() + max.join().unwrap()
///     })
/// });
/// numbers.push(4); // the borrows ended with the scope
/// assert_eq!(total, 9);
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    if context::with_core(|core| core.is_some_and(|c| !c.in_green_thread())) {
        panic!(
            "green::scope inside green::on_worker_stack (or a destructor run by the worker itself): \
             the scope could not wait there for its green threads without blocking the whole worker. \
             Open the scope in a green thread or on an OS thread"
        );
    }
    let Some(handle) = Handle::try_current() else {
        panic!(
            "green::scope called outside a green runtime: its green threads need one to run on. Open it \
             inside green::run(..) or Runtime::block_on(..), or use std::thread::scope on this plain thread"
        );
    };
    let scope = Scope { data: Arc::new(ScopeData::default()), handle, scope: PhantomData, env: PhantomData };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // The owner leaves early (cancelled, or its deadline passed inside `f`): so do the children.
    let runtime_unwind = result.as_ref().err().is_some_and(|p| p.is::<Cancelled>() || crate::deadline::is_unwind(p));
    if runtime_unwind {
        scope.data.cancel_children();
    }
    let armed = NoUnwind;
    let deadline_passed = scope.data.wait_all();
    std::mem::forget(armed);
    // Each child's header holds the scope's data: the list of them would keep both alive.
    scope.data.children.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let unseen_panics = std::mem::take(&mut *scope.data.unseen_panics.lock().unwrap_or_else(|e| e.into_inner()));
    match result {
        // The runtime's own unwinds go on as such (they poison no lock), panics as panics.
        Err(payload) if runtime_unwind => park::runtime_unwind(payload),
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if unseen_panics.1 > 0 => {
            let first = unseen_panics.0.map(|e| e.to_string()).unwrap_or_default();
            match unseen_panics.1 - 1 {
                0 => panic!(
                    "green::scope: a scoped green thread that no one joined panicked: {first}; join its handle to \
                     handle the panic"
                ),
                more => {
                    panic!(
                        "green::scope: scoped green threads that no one joined panicked: {first}; and {more} more; \
                         join their handles to handle the panics"
                    )
                }
            }
        }
        Ok(value) => {
            if deadline_passed {
                // Like a `join` that would have waited past the deadline: unwind to the
                // `green::timeout` (its children are done; nothing borrows this frame now).
                crate::deadline::raise();
            }
            // Cancelled meanwhile: the children were cancelled too, and `value` may lack their
            // work. Like a `join`, the wait is a cancellation point: the cancellation goes on.
            park::check_cancelled();
            value
        }
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a green thread that may borrow anything that outlives the scope.
    ///
    /// # Panics
    ///
    /// If no stack can be had for it; see [`Scope::spawn_with`] to get that as an error.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        match self.spawn_with(thread::Builder::new(), f) {
            Ok(handle) => handle,
            Err(e) => panic!("{e}"),
        }
    }

    /// Spawns with the settings of `builder` (name, stack size, worker).
    ///
    /// # Errors
    ///
    /// As for [`crate::Builder::spawn`], except that it works from any thread.
    ///
    /// ```
    /// let data = [1u8; 16];
    /// green::run(|| {
    ///     green::scope(|s| {
    ///         let h = s.spawn_with(green::Builder::new().name("summer".into()), || data.len()).unwrap();
    ///         assert_eq!(h.join().unwrap(), 16);
    ///     })
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_with<F, T>(&'scope self, builder: thread::Builder, f: F) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.data.running.fetch_add(1, Ordering::AcqRel);
        // If spawning fails or panics, the count must come back down, or the scope would wait
        // for a child that never was.
        struct Uncount<'a>(&'a ScopeData);
        impl Drop for Uncount<'_> {
            fn drop(&mut self) {
                self.0.child_done(None);
            }
        }
        let uncount = Uncount(&self.data);
        let builder = builder.at(std::panic::Location::caller());
        // SAFETY: the scope waits (`wait_all`) until this child's outcome is released, which
        // happens only after it finished and its result was taken or dropped; `'scope` borrows
        // outlive that wait.
        let handle = unsafe { thread::spawn_scoped(&self.handle.shared, builder, Some(self.data.clone()), f) };
        let handle = handle?; // on error, `uncount` gives the count back
        std::mem::forget(uncount);
        let mut children = self.data.children.lock().unwrap_or_else(|e| e.into_inner());
        if children.len() == children.capacity() {
            children.retain(|c| !c.header().is_done());
        }
        let child = handle.task_ref();
        if self.data.cancelled.load(Ordering::Relaxed) {
            cancel(&child);
        }
        children.push(child);
        Ok(ScopedJoinHandle { inner: handle, scope: PhantomData })
    }
}

impl thread::Builder {
    /// Spawns a green thread in `scope` with these settings, as std's
    /// `Builder::spawn_scoped`; the same as [`Scope::spawn_with`].
    ///
    /// # Errors
    ///
    /// As for [`crate::Builder::spawn`], except that it works from any thread.
    ///
    /// ```
    /// let words = ["a", "bb", "ccc"];
    /// green::run(|| {
    ///     green::scope(|s| {
    ///         let longest = green::Builder::new()
    ///             .name("longest".into())
    ///             .spawn_scoped(s, || words.iter().map(|w| w.len()).max())
    ///             .unwrap();
    ///         assert_eq!(longest.join().unwrap(), Some(3));
    ///     })
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        scope.spawn_with(self, f)
    }
}

/// An owned permission to join a scoped green thread.
///
/// The scope waits until the green thread's result has been taken or dropped, so a handle that
/// is leaked (`std::mem::forget`) keeps its scope from returning, as with std's scoped threads.
pub struct ScopedJoinHandle<'scope, T> {
    inner: JoinHandle<T>,
    scope: PhantomData<&'scope ()>,
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle").field("inner", &self.inner).finish()
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the green thread to finish; see [`JoinHandle::join`].
    pub fn join(self) -> Result<T, JoinError> {
        self.inner.join()
    }

    /// Waits at most `timeout` for the green thread to finish; true if it has. The handle stays
    /// the caller's either way, so a green thread still running at the timeout can be
    /// [cancelled](ScopedJoinHandle::cancel) and then joined; see
    /// [`JoinHandle::wait_timeout`]. A `join` inside [`green::timeout`](crate::timeout) cannot
    /// do that: the deadline drops the handle it consumed, and the scope's end then waits for
    /// the green thread to finish by itself.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let words = ["a", "bb", "ccc"];
    /// green::run(|| {
    ///     green::scope(|s| {
    ///         let mut slow = s.spawn(|| {
    ///             green::sleep(Duration::from_secs(3600));
    ///             words.len()
    ///         });
    ///         if !slow.wait_timeout(Duration::from_millis(10)) {
    ///             slow.cancel(); // or the scope would wait the hour out
    ///         }
    ///         assert!(slow.join().unwrap_err().is_cancelled());
    ///     })
    /// });
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        self.inner.wait_timeout(timeout)
    }

    /// True once the green thread has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// The green thread's handle, borrowed as std's is; see [`JoinHandle::thread`].
    pub fn thread(&self) -> &GreenThread {
        self.inner.thread()
    }

    /// Cancels the green thread; see [`JoinHandle::cancel`].
    pub fn cancel(&self) {
        self.inner.cancel();
    }
}
