//! A handle to a runtime, usable from any thread.

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;

use super::shared::Shared;
use crate::thread::JoinHandle;

/// Message for `Handle::current` outside a runtime.
const NO_RUNTIME: &str = "green: there is no green runtime here: Handle::current() must be called from a green \
    thread, a worker thread or a job of a runtime's blocking pool (green::spawn_blocking). Start a runtime with green::run(..) or \
    green::Runtime::builder().build(), or keep a Handle (Runtime::handle()) and use Handle::spawn";

/// A cheap, cloneable reference to a [`Runtime`](crate::Runtime), to spawn green threads on it
/// from any OS thread.
///
/// A handle keeps the runtime's shared state alive, not its threads: after the runtime is
/// dropped, a spawn through a handle reports the green thread cancelled before it started.
/// That state holds each worker's poller (a few fds per worker) and the address space
/// reserved for stacks (not resident), which are given back when the last handle goes. Keep a
/// handle no longer than the runtime, rather than in a `static`.
///
/// ```
/// let rt = green::Runtime::new()?;
/// let handle = rt.handle().clone();
/// let from_os_thread = std::thread::spawn(move || handle.spawn(|| "hi").join().unwrap());
/// assert_eq!(from_os_thread.join().unwrap(), "hi");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

// A handle: a panic cannot leave what it refers to half-changed.
impl UnwindSafe for Handle {}
impl RefUnwindSafe for Handle {}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("workers", &self.shared.remotes.len()).finish_non_exhaustive()
    }
}

impl Handle {
    /// The handle of the runtime the caller runs in.
    ///
    /// # Panics
    ///
    /// Outside a runtime; see [`Handle::try_current`].
    ///
    /// ```
    /// green::run(|| {
    ///     let handle = green::Handle::current();
    ///     assert_eq!(handle.spawn(|| 1).join().unwrap(), 1);
    /// });
    /// ```
    #[track_caller]
    pub fn current() -> Handle {
        Handle::try_current().expect(NO_RUNTIME)
    }

    /// The handle of the runtime the caller runs in, or `None` on a thread that belongs to no
    /// runtime. Green threads, workers and the threads of a runtime's blocking pool
    /// ([`crate::spawn_blocking`]) belong to it.
    ///
    /// ```
    /// assert!(green::Handle::try_current().is_none());
    /// green::run(|| assert!(green::Handle::try_current().is_some()));
    /// ```
    pub fn try_current() -> Option<Handle> {
        super::context::with_core(|core| core.map(|core| Handle { shared: core.shared.clone() }))
            .or_else(crate::blocking::current_handle)
    }

    /// Spawns a green thread on this runtime, from any thread. See [`crate::spawn`].
    ///
    /// If the runtime is shutting down, the closure is dropped unrun and
    /// [`JoinHandle::join`] reports a cancellation.
    ///
    /// # Panics
    ///
    /// If no stack can be had for it (use [`Builder::spawn_on`](crate::Builder::spawn_on) to
    /// get that as an error).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match crate::thread::Builder::new().spawn_on(self, f) {
            Ok(handle) => handle,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs `f` as a green thread on this runtime and blocks the calling OS thread until it
    /// returns, as [`Runtime::block_on`](crate::Runtime::block_on) does: for a thread that
    /// holds the runtime's handle but not the runtime (a thread the program started, a
    /// library's callback). `f` may borrow from the caller.
    ///
    /// ```
    /// let rt = green::Runtime::builder().workers(1).build()?;
    /// let handle = rt.handle().clone();
    /// let words = ["from", "an", "OS", "thread"];
    /// let count = std::thread::spawn(move || handle.block_on(|| words.len())).join().unwrap();
    /// assert_eq!(count, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// As [`Runtime::block_on`](crate::Runtime::block_on); and if the runtime shuts down (or has
    /// shut down) before `f` returns, with a message that says so: `f`'s green thread is then
    /// cancelled, before it starts or at its next cancellation point.
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        assert!(!super::context::with_core(|c| c.is_some()), "{}", super::NESTED_BLOCK_ON);
        // SAFETY: we join the green thread below before returning, on every path: the join is
        // not a cancellation point and ignores deadlines (`join_uncancellable`), so it does not
        // return, or unwind, before the green thread is DONE, by which time `f` and everything it
        // borrowed have been dropped or returned.
        let handle = unsafe { crate::thread::spawn_unchecked(self, crate::thread::Builder::new(), f) };
        let handle = match handle {
            Ok(handle) => handle,
            Err(e) => panic!("green: block_on: {e}"),
        };
        match handle.join_uncancellable() {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Nobody else holds its handle: only the runtime's shutdown cancels it.
            Err(e) if e.is_cancelled() => panic!(
                "green: block_on: the runtime shut down before the closure returned ({e}); block on a runtime \
                 that is still running"
            ),
            Err(e) => panic!("green: block_on: {e}"),
        }
    }

    /// Number of workers of this runtime.
    pub fn workers(&self) -> usize {
        self.shared.remotes.len()
    }
}
