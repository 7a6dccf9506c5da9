//! The blocking pool: OS threads for code that really blocks.
//!
//! A green thread must not block its worker: every other green thread on that worker would
//! wait too. Some code blocks anyway: a file read, a C library call, a host name lookup. The
//! pool gives such code an OS thread of its own, and the green thread that wants the result
//! parks until it is there.
//!
//! # Design
//!
//! - **The pool** ([`pool`]) belongs to the runtime: a FIFO queue and up to
//!   [`DEFAULT_MAX_BLOCKING_THREADS`] named OS threads (`green-blocking`), started on demand, each
//!   exiting after [`DEFAULT_BLOCKING_KEEP_ALIVE`] idle. When all threads are busy, jobs queue.
//! - **Results** travel through a one-shot slot ([`oneshot`]): the pool thread fills it and
//!   wakes the waiter with [`park::Waiter::wake`](crate::park::Waiter); the waiter is a parked
//!   green thread or a blocked OS thread, found by `park::wait` like every other wait.
//! - **[`spawn_blocking`] returns a [`JoinHandle`]**, the same type [`crate::spawn`] returns,
//!   so `join`, `cancel` and [`JoinError`](crate::JoinError) work as for any green thread. It
//!   does so by spawning a small green thread that waits on the slot and returns the job's
//!   value, or resumes its panic with the original payload (no panic hook runs a second time).
//!   A green thread costs a few hundred nanoseconds and a pooled stack, far less than the OS
//!   thread handoff it waits for; the alternative, a second kind of task that the runtime's
//!   task cell and join handle would have to know about, was rejected to keep those in one
//!   piece.
//! - **Pool threads reach the runtime**: each keeps a weak reference to it in a thread-local,
//!   which [`Handle::try_current`] consults ([`current_handle`]), so a blocking job can spawn
//!   green threads with `green::spawn` or through `Handle::current()`.
//! - **Name resolution** ([`resolve`]) goes through the pool, so a slow DNS server never stalls
//!   a worker.
//!
//! # Shutdown
//!
//! The pool stays up while the runtime cancels its green threads, so jobs queued before go on;
//! a job [`spawn_blocking`] is given from then on is dropped unrun, as a green thread spawned
//! then is (its join handle's green thread could not run). Once the workers have stopped,
//! dropping the [`Runtime`](crate::Runtime) shuts the pool down: it takes no more jobs, drops
//! the queued ones unrun, and waits for running ones to return, up to the runtime's
//! [shutdown timeout](crate::runtime::Builder::shutdown_timeout) (after
//! [`Runtime::shutdown_timeout(t)`](crate::Runtime::shutdown_timeout), what is left of `t`).
//! Running jobs are never interrupted (they are plain OS threads); past the timeout they are
//! left to finish on their own, with a warning. If all returned in time, the pool's threads are
//! joined, so their thread-locals' destructors have run when the drop returns.

mod oneshot;
mod pool;
// Called by the socket types' `connect` and `bind`; the allows can go once they do.
#[allow(dead_code)]
mod resolve;

use std::cell::RefCell;
use std::sync::Weak;
use std::time::Duration;

pub(crate) use self::pool::{Pool, PoolLoad};
#[allow(unused_imports)]
pub(crate) use self::resolve::resolve;
use crate::runtime::Handle;
use crate::runtime::shared::Shared;
use crate::thread::JoinHandle;

/// Default bound on the pool's threads: 512.
///
/// Blocking jobs mostly wait (on a disk, a DNS server, a lock in C code), so many may be in
/// flight at once, and a small bound would queue a quick job behind slow ones. Each thread
/// reserves a 2 MiB stack as address space but costs only the pages it touches (tens of KiB)
/// and a kernel task; 512 of them stay far below the usual limits on tasks per user and
/// `kernel.threads-max`, while a runaway producer of blocking jobs queues instead of exhausting
/// them. (tokio chose the same figure.) Change it with
/// [`runtime::Builder::max_blocking_threads`](crate::runtime::Builder::max_blocking_threads).
///
/// ```
/// assert_eq!(green::DEFAULT_MAX_BLOCKING_THREADS, 512);
/// ```
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;

/// Default time an idle pool thread waits for another job before it exits: 10 s.
///
/// Starting an OS thread costs 10–20 µs; a steady trickle of jobs (a lookup per accepted
/// connection) should find a thread waiting, not pay that each time. An idle thread holds its
/// touched stack pages and a kernel task, so after a burst they should not linger for long
/// either. Ten seconds spans the gaps of a trickle and gives the memory back soon after a
/// burst. Change it with
/// [`runtime::Builder::blocking_keep_alive`](crate::runtime::Builder::blocking_keep_alive).
///
/// ```
/// assert_eq!(green::DEFAULT_BLOCKING_KEEP_ALIVE, std::time::Duration::from_secs(10));
/// ```
pub const DEFAULT_BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Message for `spawn_blocking` outside a runtime.
const SPAWN_BLOCKING_OUTSIDE: &str = "green: spawn_blocking called outside a green runtime. Call it from a green \
    thread (inside green::run(..) or Runtime::block_on(..)) or from a job already on the blocking pool, or keep a \
    Handle (Runtime::handle()) and use Handle::spawn_blocking from other threads";

/// Settings of a runtime's blocking pool, from its builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockingConfig {
    /// Most threads the pool runs at once; at least 1.
    pub(crate) max_threads: usize,
    /// How long an idle thread waits for a job before it exits.
    pub(crate) keep_alive: Duration,
}

impl Default for BlockingConfig {
    fn default() -> BlockingConfig {
        BlockingConfig { max_threads: DEFAULT_MAX_BLOCKING_THREADS, keep_alive: DEFAULT_BLOCKING_KEEP_ALIVE }
    }
}

thread_local! {
    /// On a pool thread: the runtime it belongs to. Empty elsewhere.
    static POOL_RUNTIME: RefCell<Weak<Shared>> = const { RefCell::new(Weak::new()) };
}

/// Marks the calling thread as a pool thread of `runtime` (called once, when it starts).
fn set_pool_runtime(runtime: Weak<Shared>) {
    POOL_RUNTIME.with(|r| *r.borrow_mut() = runtime);
}

/// Runs `job` on the pool of the runtime of the green thread that calls it, and parks until it
/// has run, without being a cancellation point or ending at a `green::timeout` deadline: for
/// what must be done before the caller goes on, and must not hold its worker (a file's close
/// in a destructor, which a network file system or FUSE makes wait for its server or daemon).
/// The caller is a green thread that is not unwinding (rule 3 of docs/design.md). False if the
/// pool did not take `job` (the runtime is shutting down, or the pool can start no thread):
/// `job` has then been dropped unrun.
pub(crate) fn run_to_the_end(job: impl FnOnce() + Send + 'static) -> bool {
    let Some(shared) = crate::runtime::context::with_core(|c| c.map(|c| c.shared.clone())) else {
        return false;
    };
    let (tx, rx) = oneshot::channel::<()>();
    let submitted = shared.blocking.submit(Box::new(move || {
        job();
        tx.send(());
    }));
    submitted.is_ok() && rx.recv(false).is_some()
}

/// The runtime of the blocking-pool thread that calls it: `None` on any other thread, or once
/// that runtime is gone. [`Handle::try_current`] falls back to this.
pub(crate) fn current_handle() -> Option<Handle> {
    let shared = POOL_RUNTIME.try_with(|r| r.borrow().upgrade()).ok().flatten()?;
    Some(Handle { shared })
}

/// The name of the green thread that stands for a job of the pool: it waits for the job and
/// gives its result to `join`.
const JOB_WAITER: &str = "spawn_blocking job";

/// Runs `f` on the runtime's blocking pool, an OS thread where it may block as long as it
/// likes, and returns a [`JoinHandle`] for its result.
///
/// Use it for code that blocks its thread and cannot be made to park instead: file system
/// calls, a blocking C library, a CPU-heavy computation that would hog a worker. The pool
/// starts threads on demand, up to a bound ([`DEFAULT_MAX_BLOCKING_THREADS`] unless set with
/// [`runtime::Builder::max_blocking_threads`](crate::runtime::Builder::max_blocking_threads));
/// jobs beyond it wait in a queue, in order. Idle threads exit after a while
/// ([`DEFAULT_BLOCKING_KEEP_ALIVE`]).
///
/// [`JoinHandle::join`] parks the green thread that calls it (or blocks an OS thread) until `f`
/// returns. If `f` panics, `join` returns a [`JoinError`](crate::JoinError) whose
/// [`is_panic`](crate::JoinError::is_panic) is true and whose payload is the panic's. Inside
/// `f`, [`Handle::current`] is the runtime's handle, and [`crate::spawn`] spawns on it.
/// [`JoinHandle::cancel`] makes `join` report a cancellation at once, but cannot stop `f`: it
/// runs to the end, and its result is dropped. `f` runs on a thread named `green-blocking`.
/// The pool's threads are plain OS threads: a [`green_local!`](crate::green_local) read inside `f` is that thread's own value,
/// which stays from one job to the next on the same thread (std's `thread_local!` does the
/// same); pass what a job needs in its closure instead.
///
/// Callable from a green thread, a worker, or a job on the pool; from other OS threads use
/// [`Handle::spawn_blocking`]. A job that joins another blocking job holds its pool thread
/// while it waits: once every thread of the pool waits so, the jobs they wait for stay queued
/// for good (a deadlock the monitor cannot tell from long jobs). Inside a job, run such work
/// inline instead of through the pool.
///
/// Once the runtime is shutting down, `f` is dropped unrun and `join` reports a cancellation,
/// as for a green thread spawned then: a destructor of a green thread cancelled by the
/// shutdown cannot hand work to the pool (a file to flush, say); do such work in place.
///
/// # Panics
///
/// Outside a runtime, or if the pool has no thread and cannot start one.
///
/// ```
/// use std::time::Duration;
///
/// green::run(|| {
///     let reader = green::spawn_blocking(|| {
///         std::thread::sleep(Duration::from_millis(10)); // really blocks: but not a worker
///         std::fs::read_to_string("Cargo.toml").map(|text| text.len())
///     });
///     // The worker keeps running other green threads meanwhile.
///     let other = green::spawn(|| 2 + 2);
///     assert_eq!(other.join().unwrap(), 4);
///     assert!(reader.join().unwrap().unwrap() > 0);
///
///     let failed = green::spawn_blocking(|| panic!("disk on fire"));
///     let error = failed.join().unwrap_err();
///     assert!(error.is_panic());
///     assert_eq!(*error.into_panic().downcast::<&str>().unwrap(), "disk on fire");
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let Some(handle) = Handle::try_current() else { panic!("{SPAWN_BLOCKING_OUTSIDE}") };
    handle.spawn_blocking(f)
}

impl Handle {
    /// Runs `f` on this runtime's blocking pool, from any thread. See [`spawn_blocking`].
    ///
    /// If the runtime is shutting down, `f` is dropped unrun and [`JoinHandle::join`] reports a
    /// cancellation.
    ///
    /// # Panics
    ///
    /// If the pool has no thread and cannot start one. The jobs of other callers queued at that
    /// moment are dropped unrun too (no thread would run them); their joins report a panic that
    /// says why.
    ///
    /// ```
    /// let rt = green::Runtime::new()?;
    /// let handle = rt.handle().clone();
    /// let job = std::thread::spawn(move || handle.spawn_blocking(|| 6 * 7).join().unwrap());
    /// assert_eq!(job.join().unwrap(), 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<std::thread::Result<T>>();
        // 1. The green thread that stands for the job: it parks on the slot, then returns the
        //    value or resumes the panic. Spawned first, so that if this panics, `f` never ran.
        let shared = self.shared.clone();
        // Named, so that a dump, or the join's error once the runtime has shut down, says what it
        // stands for.
        let waiter = crate::thread::Builder::new()
            .name(JOB_WAITER.to_owned())
            .spawn_on(self, move || match rx.recv(true) {
                Some(Ok(value)) => value,
                Some(Err(payload)) => std::panic::resume_unwind(payload),
                // The job was dropped unrun: the runtime is shutting down (a cancellation), or
                // the pool could start no thread for the queue it was in (an error: say which).
                None if shared.is_shutting_down() => {
                    // As every cancellation unwinds (and, where panics abort, with a message).
                    crate::park::runtime_unwind(Box::new(crate::runtime::task::Cancelled))
                }
                None => {
                    // A caller whose pool could start no thread cancels this waiter before it
                    // drops the job, and reports the failure itself. The waiter may have passed
                    // its last look for a cancellation just before: look once more, so that the
                    // failure is not reported twice.
                    crate::park::check_cancelled();
                    panic!("green: spawn_blocking: the job was dropped unrun: {}", pool::Pool::why_dropped(false))
                }
            })
            .unwrap_or_else(|e| panic!("green: spawn_blocking: {e}"));
        // 2. A runtime that is shutting down drops new green threads unrun: then nobody waits
        //    for the job, so do not run it either.
        if waiter.is_finished() {
            return waiter;
        }
        // 3. The job: runs `f`, catching its panic, and fills the slot.
        let job = Box::new(move || tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))));
        if let Err((e, unrun)) = self.shared.blocking.submit_or_return(job) {
            // A shut-down pool drops the job: `waiter` reports a cancellation. A pool that
            // cannot start a thread is an error the caller should see now, like `spawn`'s; the
            // caller's panic reports it, so the waiter is cancelled rather than left to report it
            // again. Cancelled before the job is dropped: the drop wakes the waiter (it may have
            // started on another worker), and it then unwinds at its next look instead.
            if !self.shared.is_shutting_down() {
                waiter.cancel();
                drop(unrun);
                panic!("{e}");
            }
        }
        waiter
    }
}
