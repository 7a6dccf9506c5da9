//! The runtime: workers, their queues, and the handle to reach them.
//!
//! See [`Runtime`] for the life of a runtime and [`crate::run`] for the shortest way to get one.

mod alloc;
mod builder;
pub(crate) mod context;
mod dump;
mod handle;
mod metrics;
pub(crate) mod shared;
pub(crate) mod stats;
pub(crate) mod task;
mod timers;
pub(crate) mod worker;

use std::sync::Arc;
use std::thread::JoinHandle as OsJoinHandle;
use std::time::Duration;

pub use self::builder::Builder;
pub(crate) use self::builder::DEFAULT_BUDGET;
pub use self::dump::Dump;
pub use self::handle::Handle;
pub use self::metrics::{Metrics, WorkerMetrics};
use self::shared::Shared;
pub use crate::stack::StackLayout;

/// Panic message for starting or blocking on a runtime from inside a worker.
pub(crate) const NESTED_RUNTIME: &str = "green: cannot start or block on a runtime from inside a green thread or a worker \
    thread: that would block the worker and every green thread on it. Spawn a green thread \
    instead (green::spawn), or call this from a plain OS thread";

/// Settings of one runtime, fixed when it is built.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) stack_size: usize,
    pub(crate) stack_layout: StackLayout,
    pub(crate) thread_name: String,
    pub(crate) budget: u32,
    pub(crate) time_slice: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) blocking_threshold: Option<Duration>,
}

/// A green-thread runtime: a set of worker OS threads, each running many green threads.
///
/// Build one with [`Runtime::builder`] (or [`Runtime::new`] for the defaults), spawn green
/// threads on it with [`Handle::spawn`] or, from inside, [`crate::spawn`], and wait for a
/// result with [`Runtime::block_on`].
///
/// Dropping a `Runtime` shuts it down: every green thread still alive is cancelled (it unwinds
/// from its next blocking-looking call, running its destructors on its own worker), unstarted
/// ones are dropped, and the drop returns once none is left, or once the
/// [shutdown timeout](Builder::shutdown_timeout) has passed, after which the green threads that
/// would not end are leaked rather than dropped on the wrong stack.
///
/// ```
/// let rt = green::Runtime::builder().workers(2).build()?;
/// let answer = rt.block_on(|| {
///     let child = green::spawn(|| 6 * 7);
///     child.join().unwrap()
/// });
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Runtime {
    handle: Handle,
    threads: Vec<OsJoinHandle<()>>,
    monitor: Option<crate::monitor::Monitor>,
}

impl Runtime {
    /// A builder with the default settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the default settings: one worker per available core.
    pub fn new() -> std::io::Result<Runtime> {
        Builder::new().build()
    }

    /// The handle of this runtime, to spawn on it from anywhere.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawns a green thread on this runtime. See [`crate::spawn`].
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> crate::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(f)
    }

    /// Runs `f` as a green thread on this runtime and blocks the calling OS thread until it
    /// returns, then returns its result. Green threads it spawned keep running.
    ///
    /// `f` may borrow from the caller: `block_on` does not return before `f` has finished.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic is resumed here. Panics when called from inside a green thread
    /// or a worker (it would block that worker).
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        assert!(!crate::runtime::context::with_core(|c| c.is_some()), "{NESTED_RUNTIME}");
        // SAFETY: we join the green thread below before returning, on every path (a join from
        // an OS thread cannot be cancelled and does not return before the green thread is
        // DONE, by which time `f` and everything it borrowed have been dropped or returned).
        let handle = unsafe { crate::thread::spawn_unchecked(&self.handle, crate::thread::Builder::new(), f) };
        let handle = handle.unwrap_or_else(|e| panic!("green: block_on: {e}"));
        match handle.join() {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("green: block_on: {e}"),
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if crate::runtime::context::with_core(|c| c.is_some()) {
            // Joining our own workers from one of them would deadlock. Shut down, and let the
            // worker threads finish on their own.
            log::error!(
                "green: a Runtime was dropped inside one of its own green threads; shutting it down without waiting"
            );
            self.shared().begin_shutdown();
            return;
        }
        self.shared().begin_shutdown();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                log::error!("green: a worker thread panicked during shutdown");
            }
        }
        if let Some(mut monitor) = self.monitor.take() {
            monitor.stop(self.shared());
        }
        // The blocking pool stayed up while green threads unwound; now stop it and let its
        // running jobs end (see `crate::blocking`).
        let running = self.shared().blocking.shutdown(self.shared().shutdown_timeout());
        if running > 0 {
            log::warn!("green: {running} blocking job(s) still running after the shutdown timeout; left to finish");
        }
        if self.shared().leaked.load(std::sync::atomic::Ordering::Acquire) {
            // Leaked green threads keep pointers into `Shared`: it must outlive them.
            std::mem::forget(self.shared().clone());
        }
    }
}
