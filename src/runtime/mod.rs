//! The runtime: the worker OS threads that run green threads, their settings, and the
//! handle to reach them from other threads.
//!
//! There are three ways to run green threads, from the shortest:
//!
//! - [`crate::run`] (or [`#[green::main]`](macro@crate::main)): default settings, the calling
//!   thread serves as a worker, and the runtime shuts down when the closure returns.
//! - [`Builder::run`]: the same, with settings (workers, stack size, budget, timeouts).
//! - [`Builder::build`] gives a [`Runtime`] that lives until it is dropped, with worker
//!   threads of its own; [`Runtime::block_on`] runs a closure on it from a plain OS thread,
//!   and a [`Handle`] spawns on it from anywhere.
//!
//! [`Handle::metrics`] and [`Handle::dump`] tell what the workers and green threads are doing.
//!
//! ```
//! let rt = green::Runtime::builder().workers(2).build()?;
//! let handle = rt.handle().clone();
//! let from_os_thread = std::thread::spawn(move || handle.spawn(|| 2 + 2).join().unwrap());
//! assert_eq!(from_os_thread.join().unwrap(), 4);
//! assert_eq!(rt.block_on(|| green::spawn(|| 6 * 7).join().unwrap()), 42);
//! drop(rt); // cancels what is still running, and waits for it to end
//! # Ok::<(), std::io::Error>(())
//! ```

mod alloc;
mod builder;
pub(crate) mod context;
pub(crate) mod dump;
mod handle;
mod metrics;
pub(crate) mod run_queue;
pub(crate) mod shared;
pub(crate) mod stats;
pub(crate) mod task;
mod timers;
pub(crate) mod worker;

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle as OsJoinHandle;
use std::time::Duration;

pub(crate) use self::builder::DEFAULT_BUDGET;
pub use self::builder::{Builder, MAX_BUDGET};
pub use self::dump::Dump;
pub(crate) use self::dump::REPORT_LISTED;
pub use self::handle::Handle;
pub use self::metrics::{Metrics, WorkerMetrics};
use self::shared::Shared;
pub use crate::stack::StackLayout;

/// How long dropping a runtime waits for its workers beyond the shutdown timeout: each starts
/// its own countdown when it next looks at its queues, a little after the shutdown began.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

/// How long [`Runtime::shutdown_timeout`], past its timeout, waits for each worker to take up
/// the dump of the green threads left: a worker cancelling them answers between two of them, in
/// microseconds; one that has not after this long is held by a green thread that reaches no
/// scheduling point, and is named as busy in it. The monitor's default threshold, as the
/// dump's own "late" mark: what it calls held, the monitor reports too.
const SHUTDOWN_DUMP_ANSWER: Duration = Duration::from_millis(100);

/// Panic message for starting or blocking on a runtime from inside a worker.
pub(crate) const NESTED_RUNTIME: &str = "green: cannot start or block on a runtime from inside a green thread or a worker \
    thread: that would block the worker and every green thread on it. Spawn a green thread \
    instead (green::spawn), or call this from a plain OS thread: green::spawn_blocking runs code \
    that starts a runtime of its own (a library's, say) on one";

/// Panic message for `Runtime::block_on` from inside a worker: unlike starting a runtime,
/// what it asks for can be had without blocking, by a join.
pub(crate) const NESTED_BLOCK_ON: &str = "green: Runtime::block_on (or Handle::block_on) called from inside a green thread \
    or a worker thread: waiting \
    there would block the worker and every green thread on it. From a green thread, rt.spawn(f).join() runs f on that \
    runtime (this one or another) and waits without blocking the worker (f must then be 'static); or call block_on \
    from a plain OS thread, such as a green::spawn_blocking job";

/// Panic message for `Runtime::shutdown_timeout` from inside a worker.
const NESTED_SHUTDOWN: &str = "green: Runtime::shutdown_timeout called from inside a green thread or a worker thread: \
    waiting there would block the worker and every green thread on it (or wait for itself). The runtime was \
    dropped instead, which shuts it down without waiting; call shutdown_timeout from a plain OS thread \
    (green::spawn_blocking runs code on one) to wait";

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
    pub(crate) park_backtraces: bool,
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
/// would not end are leaked rather than dropped on the wrong stack. It then waits for running
/// [`spawn_blocking`](crate::spawn_blocking) jobs, up to the same timeout again, and leaves
/// the ones still running to finish on their own threads.
///
/// A runtime dropped inside a green thread (of its own or of another runtime) cannot wait
/// there: it begins the same shutdown and returns at once, and its threads end on their own
/// (the green thread that dropped it is cancelled at its next cancellation point, if it was
/// one of its own). One dropped by one of its own blocking jobs waits as above, for the
/// pool's other jobs but not for that one. The cancellation is an unwinding: a destructor that panics while its green
/// thread is cancelled aborts the process, as a panic in any destructor during unwinding does.
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
    /// How long the drop waits for running blocking jobs: the builder's shutdown timeout,
    /// unless [`Runtime::shutdown_timeout`] set what is left of its own.
    blocking_wait: Option<Duration>,
}

// A handle: a panic cannot leave what it refers to half-changed.
impl UnwindSafe for Runtime {}
impl RefUnwindSafe for Runtime {}

impl Runtime {
    /// A builder with the default settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the default settings: one worker per available core. Same as
    /// `Runtime::builder().build()`.
    ///
    /// # Errors
    ///
    /// As for [`Builder::build`].
    pub fn new() -> std::io::Result<Runtime> {
        Builder::new().build()
    }

    /// The handle of this runtime, to spawn on it from anywhere.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Spawns a green thread on this runtime, from any thread. See [`crate::spawn`] and
    /// [`Handle::spawn`].
    ///
    /// # Panics
    ///
    /// If no stack can be had for it (use [`crate::Builder::spawn_on`] to get that as an
    /// error).
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
    /// ```
    /// let rt = green::Runtime::builder().workers(1).build()?;
    /// let words = vec!["borrowed", "from", "the", "caller"];
    /// let count = rt.block_on(|| {
    ///     let total = green::spawn(|| 1).join().unwrap();
    ///     words.len() + total
    /// });
    /// assert_eq!(count, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic is resumed here. Panics when called from inside a green thread
    /// or a worker (it would block that worker: there, [`Runtime::spawn`] and
    /// [`JoinHandle::join`](crate::JoinHandle::join) wait without blocking it), and if `f`'s green thread could not start (no
    /// stack could be had for it) or was cancelled.
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        self.handle.block_on(f)
    }

    /// Shuts the runtime down, as dropping it does, but waits at most `timeout` for the green
    /// threads to end, and says which did not.
    ///
    /// Every live green thread is cancelled (it unwinds from its next blocking-looking call),
    /// unstarted ones are dropped. If all have ended within `timeout`, the workers are joined
    /// and this returns `Ok`. Otherwise it returns an error with the number left and a
    /// [`Dump`] of them (what each was doing; asking the workers for it takes a tenth of a
    /// second more at most, after which a worker held by a green thread that reaches no
    /// scheduling point is named as busy in it), and the rest of the shutdown goes on in the
    /// background: the workers keep running the stragglers until the runtime's own
    /// [shutdown timeout](Builder::shutdown_timeout), then leak them with a warning, as a drop
    /// would. Jobs of [`spawn_blocking`](crate::spawn_blocking) still running get what is left
    /// of `timeout` too when the green threads ended in time (otherwise the background
    /// shutdown gives them the builder's timeout), and are then left to finish on their own
    /// threads.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = green::Runtime::builder().workers(1).build()?;
    /// rt.spawn(|| green::sleep(Duration::from_secs(3600))); // ends when cancelled
    /// assert!(rt.shutdown_timeout(Duration::from_secs(5)).is_ok());
    ///
    /// let rt = green::Runtime::builder().workers(1).shutdown_timeout(Duration::from_millis(200)).build()?;
    /// rt.spawn(|| loop {
    ///     // Swallows its cancellation: it will not end.
    ///     let _ = std::panic::catch_unwind(|| green::sleep(Duration::from_millis(1)));
    /// });
    /// std::thread::sleep(Duration::from_millis(10));
    /// let err = rt.shutdown_timeout(Duration::from_millis(20)).unwrap_err();
    /// assert_eq!(err.unfinished(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If called from inside a green thread or a worker, of this runtime (it would wait for
    /// itself) or of another (it would block that worker). The runtime is dropped then, as a
    /// drop there does: it shuts down without waiting for its threads.
    pub fn shutdown_timeout(self, timeout: Duration) -> Result<(), ShutdownTimedOut> {
        assert!(!crate::runtime::context::with_core(|c| c.is_some()), "{NESTED_SHUTDOWN}");
        self.shared().begin_shutdown();
        let deadline = std::time::Instant::now().checked_add(timeout);
        self.wait_for_workers(deadline);
        // Whether the workers finished is looked at first: a worker that finished just after the
        // deadline counted its green threads out before it did, and `live` read after that is
        // what it left (0 for a clean end), not a count read a moment before it ended.
        let finished = self.threads.iter().all(OsJoinHandle::is_finished);
        let unfinished = self.shared().live.load(std::sync::atomic::Ordering::Acquire);
        if finished {
            // Ended, or given up on by the workers' own timeout (then leaked by them). Running
            // blocking jobs get what is left of `timeout`, not the builder's.
            let mut this = self;
            this.blocking_wait =
                Some(deadline.map_or(timeout, |d| d.saturating_duration_since(std::time::Instant::now())));
            drop(this);
            return if unfinished == 0 { Ok(()) } else { Err(ShutdownTimedOut { unfinished, timeout, dump: None }) };
        }
        // Capped: the green threads left may be a million. A worker held by one of them (a loop
        // without ticks) would not answer within the dump's usual second, which would make the
        // caller's timeout that much longer: it is named as busy sooner.
        let dump = self.handle.dump_answered_within(REPORT_LISTED, SHUTDOWN_DUMP_ANSWER);
        // Finish the shutdown (join the workers, stop the blocking pool, keep `Shared` alive if
        // they leak) without holding up the caller.
        // (If no thread can be started, the closure, and the runtime with it, is dropped here.)
        let finish = move || drop(self);
        if let Err(e) = std::thread::Builder::new().name("green-shutdown".into()).spawn(finish) {
            log::warn!("green: could not start a thread to finish the shutdown ({e}); finished it on the caller's");
        }
        Err(ShutdownTimedOut { unfinished, timeout, dump: Some(dump) })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }
}

/// The error of [`Runtime::shutdown_timeout`]: green threads that did not end in time.
#[derive(Debug)]
pub struct ShutdownTimedOut {
    unfinished: usize,
    timeout: Duration,
    /// What they were doing, if the workers were still there to say.
    dump: Option<Dump>,
}

impl ShutdownTimedOut {
    /// How many green threads had not ended.
    ///
    /// ```
    /// # let rt = green::Runtime::builder().workers(1).shutdown_timeout(std::time::Duration::from_millis(100)).build()?;
    /// # rt.spawn(|| loop { let _ = std::panic::catch_unwind(|| green::sleep(std::time::Duration::from_millis(1))); });
    /// # std::thread::sleep(std::time::Duration::from_millis(10));
    /// let err = rt.shutdown_timeout(std::time::Duration::ZERO).unwrap_err();
    /// assert_eq!(err.unfinished(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unfinished(&self) -> usize {
        self.unfinished
    }

    /// A dump of the green threads left (see [`Handle::dump`]): their ids, names, and what each
    /// was doing. `None` if the workers had already given up on them (see
    /// [`Builder::shutdown_timeout`]); the log names them then.
    ///
    /// ```
    /// # let rt = green::Runtime::builder().workers(1).shutdown_timeout(std::time::Duration::from_millis(100)).build()?;
    /// # rt.spawn(|| loop { let _ = std::panic::catch_unwind(|| green::sleep(std::time::Duration::from_millis(1))); });
    /// # std::thread::sleep(std::time::Duration::from_millis(10));
    /// let err = rt.shutdown_timeout(std::time::Duration::ZERO).unwrap_err();
    /// if let Some(dump) = err.dump() {
    ///     eprintln!("{dump}");
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dump(&self) -> Option<&Dump> {
        self.dump.as_ref()
    }
}

impl std::fmt::Display for ShutdownTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "green: {} green thread(s) did not end within {:?} of the shutdown", self.unfinished, self.timeout)?;
        match &self.dump {
            Some(dump) => write!(f, ":\n{dump}"),
            None => f.write_str(" and were leaked (the log names them)"),
        }
    }
}

impl std::error::Error for ShutdownTimedOut {}

impl Runtime {
    /// Waits until every worker thread has ended, or `deadline` (`None`: no limit). Polls
    /// them: a shutdown is rare, and a millisecond of latency is nothing against it.
    fn wait_for_workers(&self, deadline: Option<std::time::Instant>) {
        let mut pause = Duration::from_micros(50);
        while !self.threads.iter().all(OsJoinHandle::is_finished)
            && deadline.is_none_or(|d| std::time::Instant::now() < d)
        {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(own) = crate::runtime::context::with_core(|c| c.map(|c| Arc::ptr_eq(&c.shared, self.shared()))) {
            // Joining our own workers from one of them would deadlock, and joining another
            // runtime's would block this worker meanwhile. Shut down, and let the worker and
            // monitor threads finish on their own (each holds the shared state until then).
            log::error!(
                "green: a Runtime was dropped inside {}; shutting it down without waiting for its threads. To wait, \
                 drop it (or call shutdown_timeout) on a plain OS thread, such as a green::spawn_blocking job",
                if own { "one of its own green threads" } else { "a green thread (of another runtime)" }
            );
            self.shared().begin_shutdown();
            if let Some(monitor) = self.monitor.take() {
                monitor.release(self.shared());
            }
            // The blocking pool stays up for the green threads still ending (rule 7); its idle
            // threads leave after their keep-alive, and the pool is shut down with `Shared`.
            return;
        }
        self.shared().begin_shutdown();
        // Each worker gives its cancelled green threads `shutdown_timeout` from when it next
        // looks at its queues, and then leaks them; a worker stuck in blocking code looks only
        // when that code returns. The wait here is bounded all the same: past the timeout and a
        // grace, workers still running are left to finish on their own, holding the shared
        // state (a reference to it is leaked for them).
        let timeout = self.shared().shutdown_timeout();
        let deadline = std::time::Instant::now().checked_add(timeout).and_then(|d| d.checked_add(SHUTDOWN_GRACE));
        self.wait_for_workers(deadline);
        let stuck = self.threads.iter().filter(|t| !t.is_finished()).count();
        if stuck > 0 {
            // Said even without a logger: each keeps its OS thread (and maybe a core) for as
            // long as that code runs, for all the program knows for good.
            crate::warn_even_without_logger(&format!(
                "green: {stuck} worker(s) still busy {} ms after the shutdown began (blocking code that \
                 does not return, or a loop without a tick?); the runtime is dropped without waiting for them, \
                 and each goes on until that code returns. Use green::spawn_blocking for calls that must block",
                (timeout + SHUTDOWN_GRACE).as_millis()
            ));
            std::mem::forget(self.shared().clone());
        }
        for thread in self.threads.drain(..) {
            if !thread.is_finished() {
                continue; // detached: it ends on its own
            }
            let name = thread.thread().name().unwrap_or("?").to_owned();
            if thread.join().is_err() {
                log::error!(
                    "green: worker thread {name} panicked during shutdown (its message is above); unless a logger \
                     or panic hook panicked, this is a bug in green, please report it"
                );
            }
        }
        if let Some(mut monitor) = self.monitor.take() {
            if stuck > 0 {
                monitor.release(self.shared());
            } else {
                monitor.stop(self.shared());
            }
        }
        // The blocking pool stayed up while green threads unwound; now stop it and let its
        // running jobs end (see `crate::blocking`).
        // Dropped by one of the pool's own jobs: that job's thread cannot exit meanwhile.
        let from_a_job = crate::blocking::current_handle().is_some_and(|h| Arc::ptr_eq(&h.shared, self.shared()));
        let wait = self.blocking_wait.unwrap_or_else(|| self.shared().shutdown_timeout());
        let running = self.shared().blocking.shutdown(wait, from_a_job);
        if running > 0 {
            let message = format!(
                "green: the runtime's shutdown waited {} ms for {running} blocking job(s) (spawn_blocking) still \
                 running; they were left to finish on their own threads. A job that may block for good (a read of \
                 stdin, say) holds up the shutdown this long: Builder::shutdown_timeout sets the wait",
                wait.as_millis()
            );
            crate::warn_even_without_logger(&message);
        }
        // (Leaked green threads keep pointers into `Shared`; the worker that leaked them
        // already leaked a reference to it, `Core::leak_remaining`.)
    }
}
