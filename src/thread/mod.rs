//! Green threads: spawning, identity, parking, yielding. The API mirrors `std::thread`, under
//! std's names too, so most code written against `std::thread` ports by changing its `use`:
//!
//! ```
//! use green::thread;
//! use std::time::Duration;
//!
//! green::run(|| {
//!     let fetcher = thread::Builder::new()
//!         .name("fetcher".into())
//!         .spawn(|| {
//!             thread::sleep(Duration::from_millis(1));
//!             thread::current().name().map(String::from)
//!         })
//!         .unwrap();
//!     let name: thread::Result<Option<String>> = fetcher.join();
//!     assert_eq!(name.unwrap().as_deref(), Some("fetcher"));
//!     let total = thread::scope(|s| s.spawn(|| 1 + 1).join().unwrap());
//!     assert_eq!(total, 2);
//! });
//! ```
//!
//! The green-named items are also at the crate's root (`green::spawn`, `green::sleep`, ...);
//! std's aliases (`Thread`, `ThreadId`, `Result`) and `available_parallelism`, `panicking` are
//! only here.
//!
//! Where it differs: a join fails with a [`JoinError`] (a green thread can also be cancelled,
//! or fail to start), not with the panic's payload itself, so code that looks into the payload
//! (`e.downcast_ref::<&str>()`, `std::panic::resume_unwind(e)`) takes it out first with
//! [`JoinError::into_panic`]. A join in a destructor while the joiner unwinds (a panic, a
//! cancellation, the runtime's shutdown) cannot wait as std's does: if the other has not
//! finished, it returns at once with [`JoinError::is_unfinished`]. Thread-locals are declared
//! with [`green_local!`](crate::green_local).
//! Stacks are smaller: 256 KiB by default (std gives `main` 8 MiB and its threads 2 MiB), so
//! deep recursion may need [`Builder::stack_size`], or
//! `Runtime::builder().stack_size(..)` for every green thread, `green::run`'s `"main"`
//! included. A green thread that overflows is named on stderr with the size to ask for.
//! [`available_parallelism`] and [`panicking`] are std's own: the first counts the CPUs the
//! process may run on, not the runtime's workers (for those, [`Handle::workers`]); the second
//! is right for the calling green thread, since one that unwinds never switches out.
//!
//! Not here: std's `Builder::spawn_unchecked`. Its contract (join before the borrowed data
//! goes) is not enough for a green thread: a join is a cancellation point, ends at a
//! [`crate::timeout`] deadline, and returns at once while the joiner unwinds, and each of these
//! would free the data under a green thread still using it. [`scope`] waits through all three.
//!
//! # Panic messages
//!
//! The first runtime of the process installs a panic hook that prints which green thread
//! panicked (`green thread 7 "name" panicked (on worker):`, since std's own message names the
//! worker's OS thread) and then calls the hook that was there before, for every panic. A hook
//! set after a runtime has started replaces it as usual: set yours then (inside
//! [`crate::run`], for instance) to silence or redirect green threads' panics too.

mod join;

use std::fmt;
use std::io;
use std::num::NonZeroU64;
use std::panic::Location;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

pub use self::join::{JoinError, JoinHandle};
pub use crate::local::{AccessError, LocalKey};
pub use crate::scope::{Scope, ScopedJoinHandle, scope};
pub use crate::time::{sleep, sleep_until};
pub use std::thread::{available_parallelism, panicking};

/// std's name for [`GreenThread`].
pub type Thread = GreenThread;

/// std's name for [`GreenThreadId`].
pub type ThreadId = GreenThreadId;

/// std's `thread::Result`: what a join gives, here with a [`JoinError`] (which holds the
/// panic payload, or says the green thread was cancelled, could not start, or had not finished
/// when a green thread that unwinds joined it).
pub type Result<T> = std::result::Result<T, JoinError>;
use crate::park::{self, ParkReason, cancellation_point};
use crate::runtime::Handle;
use crate::runtime::context::{self, Suspend};
use crate::runtime::shared::Shared;
use crate::runtime::task::{NO_HOME, ParkKind, Spec, Task, TaskRef};
use crate::runtime::worker::Core;
use crate::scope::ScopeData;
use corosensei::Yielder;

/// Message for `spawn` and friends outside a runtime.
const SPAWN_OUTSIDE: &str = "green: spawn called outside a green runtime. Call it from a green thread (inside \
    green::run(..) or Runtime::block_on(..)), or spawn through a Handle (Runtime::handle()) from \
    other threads";

/// Message for `spawn_local` outside a green thread.
const SPAWN_LOCAL_OUTSIDE: &str = "green: spawn_local called outside a green thread: its closure need not be Send, \
    so it starts on the caller's worker, and this thread is none (a plain OS thread, or a job of the blocking \
    pool). Call it from a green thread, or give green::spawn (Handle::spawn from other threads) a Send closure";

/// A green thread's unique identifier, like [`std::thread::ThreadId`]. Never reused within a
/// process. A plain OS thread's handle ([`current`] there) has one too, from the same sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GreenThreadId(NonZeroU64);

impl GreenThreadId {
    /// The id as a number (never 0).
    pub fn as_u64(&self) -> NonZeroU64 {
        self.0
    }
}

impl fmt::Display for GreenThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A handle to a green thread, like [`std::thread::Thread`]: its identity, and the other half
/// of [`park`].
///
/// [`current`] called on a plain OS thread gives a handle to that OS thread, as std's does:
/// its id (from the same sequence as green threads' ids, so never equal to one), its name, and
/// an `unpark` that wakes its [`park`].
#[derive(Clone)]
pub struct GreenThread {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Green(TaskRef),
    Os { thread: std::thread::Thread, id: GreenThreadId },
}

// A handle: a panic cannot leave what it refers to half-changed.
impl UnwindSafe for GreenThread {}
impl RefUnwindSafe for GreenThread {}

impl GreenThread {
    pub(crate) fn new(task: TaskRef) -> GreenThread {
        GreenThread { inner: Inner::Green(task) }
    }

    /// A handle to the calling OS thread, with an id of its own, kept for its lifetime.
    fn this_os_thread() -> GreenThread {
        thread_local! {
            static OS_ID: std::cell::Cell<Option<NonZeroU64>> = const { std::cell::Cell::new(None) };
        }
        let id = OS_ID.with(|cell| match cell.get() {
            Some(id) => id,
            None => {
                let id = crate::runtime::task::next_id();
                cell.set(Some(id));
                id
            }
        });
        GreenThread { inner: Inner::Os { thread: std::thread::current(), id: GreenThreadId(id) } }
    }

    /// The green thread's id (or, for a plain OS thread's handle, that thread's).
    pub fn id(&self) -> GreenThreadId {
        match &self.inner {
            Inner::Green(task) => GreenThreadId(task.header().id),
            Inner::Os { id, .. } => *id,
        }
    }

    /// The name given with [`Builder::name`], if any (the first green thread of [`crate::run`]
    /// is named `"main"`); for a plain OS thread's handle, that thread's name.
    pub fn name(&self) -> Option<&str> {
        match &self.inner {
            Inner::Green(task) => task.header().name.as_deref(),
            Inner::Os { thread, .. } => thread.name(),
        }
    }

    /// Makes the green thread's park token available, like [`std::thread::Thread::unpark`]: if
    /// it is parked in [`park`], it wakes; otherwise its next `park` returns at once.
    ///
    /// ```
    /// green::run(|| {
    ///     let parked = green::spawn(|| green::park());
    ///     parked.thread().unpark();
    ///     parked.join().unwrap();
    /// });
    /// ```
    pub fn unpark(&self) {
        match &self.inner {
            Inner::Green(task) => {
                if task.header().unpark() {
                    park::schedule_ref(task);
                }
            }
            Inner::Os { thread, .. } => thread.unpark(),
        }
    }
}

impl fmt::Debug for GreenThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenThread").field("id", &self.id()).field("name", &self.name()).finish()
    }
}

/// The green thread that calls it; on a plain OS thread, a handle to that OS thread (as std's
/// `current` gives everywhere). [`try_current`] tells the two apart.
///
/// # Panics
///
/// On a worker's own stack (inside [`on_worker_stack`], or a destructor the worker runs),
/// where there is neither a green thread nor a plain thread whose `park` an `unpark` could wake.
///
/// ```
/// let name = green::run(|| {
///     green::Builder::new().name("fetcher-a".into()).spawn(|| green::current().name().map(String::from)).unwrap().join().unwrap()
/// });
/// assert_eq!(name.as_deref(), Some("fetcher-a"));
///
/// // On an OS thread: its own name and id, and an unpark that wakes its park.
/// let os = std::thread::Builder::new().name("plain".into()).spawn(|| {
///     let me = green::current();
///     assert_eq!(me.id(), green::current().id());
///     me.unpark();
///     green::park(); // the token is there: returns at once
///     me.name().map(String::from)
/// }).unwrap();
/// assert_eq!(os.join().unwrap().as_deref(), Some("plain"));
/// ```
#[track_caller]
pub fn current() -> GreenThread {
    match context::with_core(|core| core.map(|c| c.current())) {
        Some(Some(task)) => GreenThread::new(task),
        None => GreenThread::this_os_thread(),
        Some(None) => panic!(
            "green::current() called on a worker's own stack (inside green::on_worker_stack, or a destructor \
             the worker runs): no green thread runs there; use green::try_current()"
        ),
    }
}

/// The green thread that calls it, or `None` on a plain OS thread.
///
/// ```
/// assert!(green::try_current().is_none());
/// green::run(|| assert!(green::try_current().is_some()));
/// ```
pub fn try_current() -> Option<GreenThread> {
    context::with_core(|core| core.and_then(|c| c.current())).map(GreenThread::new)
}

/// Spawns a green thread, like [`std::thread::spawn`], on the caller's runtime (inside a
/// [`spawn_blocking`](crate::spawn_blocking) job, the pool's runtime).
///
/// The closure starts on whichever worker gets to it first (an idle worker steals it), and
/// then stays on that worker for life. Its result, or its panic, is delivered to
/// [`JoinHandle::join`]. Once the runtime is shutting down, the closure is dropped unrun
/// before `spawn` returns ([`Builder::spawn`] says what that means for locks).
///
/// # Panics
///
/// Outside a runtime (use [`Handle::spawn`] there), or if no stack can be had for it (use
/// [`Builder::spawn`] to get that as an error).
///
/// ```
/// green::run(|| {
///     let handles: Vec<_> = (0..10).map(|i| green::spawn(move || i * i)).collect();
///     let squares: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
///     assert_eq!(squares[9], 81);
/// });
/// ```
///
/// The closure must be `Send`: it may start on another worker.
///
/// ```compile_fail
/// green::run(|| {
///     let not_send = std::rc::Rc::new(1);
///     green::spawn(move || *not_send + 1).join().unwrap();
/// });
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(handle) => handle,
        Err(e) => panic!("{e}"),
    }
}

/// Spawns a green thread whose closure need not be `Send`: it runs on the caller's worker.
///
/// # Panics
///
/// Outside a green thread or a worker of a runtime: on a plain OS thread, and in a
/// [`spawn_blocking`](crate::spawn_blocking) job too, where [`spawn`] works.
///
/// ```
/// use std::rc::Rc;
/// green::run(|| {
///     let shared = Rc::new(5);
///     let mine = shared.clone();
///     let doubled = green::spawn_local(move || *mine * 2).join().unwrap();
///     assert_eq!(doubled, 10);
/// });
/// ```
#[track_caller]
pub fn spawn_local<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: Send + 'static,
{
    if !context::with_core(|core| core.is_some()) {
        panic!("{SPAWN_LOCAL_OUTSIDE}");
    }
    let spec = Builder::new().spec(Location::caller(), None);
    let task = context::with_core(|core| {
        let core = core.expect(internal_error!("spawn_local left its worker thread"));
        // SAFETY: `F` and `T` are `'static`, so nothing dangles. The closure may be `!Send`: it
        // is touched only on this worker, because `push_new_local` puts it in this worker's
        // local queue, which no peer steals from, and `admit` drops it here if it refuses it.
        let (erased, typed) = unsafe { Task::allocate(f, spec, &core.shared) };
        // Values that are not `Send` (a lock guard among them) may now pass between the two:
        // a relock of a green lock no longer tells who holds it (`sync::wait::relock_id`).
        erased.header().shares_locally.store(true, std::sync::atomic::Ordering::Relaxed);
        core.with_current(|h| {
            if let Some(h) = h {
                h.shares_locally.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
        if admit(&core.shared, &erased) {
            core.push_new_local(erased);
        }
        typed
    });
    JoinHandle::new(task)
}

/// Settings for one green thread, like [`std::thread::Builder`].
///
/// ```
/// green::run(|| {
///     let handle = green::Builder::new()
///         .name("parser".into())
///         .stack_size(1 << 20)
///         .spawn(|| green::current().name().unwrap().len())?;
///     assert_eq!(handle.join().unwrap(), 6);
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a Builder does nothing until you call spawn()"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    worker: Option<usize>,
    /// Start on a worker chosen by [`Builder::spread`] (unless `worker` is set).
    spread: bool,
    /// Ticks, 0 for the runtime's budget.
    budget: u32,
    /// Microseconds, 0 for the runtime's time slice.
    time_slice_us: u32,
    /// Where the user's spawn call is, once known (captured by the outermost `track_caller`
    /// function, before any closure hides it).
    spawned_at: Option<&'static Location<'static>>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the green thread. The name appears in panic messages, stack overflow reports, the
    /// monitor's reports of a blocked worker, [dumps](crate::Handle::dump), [`JoinError`]s and
    /// [`GreenThread::name`]: a name per connection (`format!("conn {peer}")`) tells which
    /// client a report is about. A `String`, as std's `Builder::name` takes, so that
    /// `.name("parser".into())` reads the same with either.
    ///
    /// ```
    /// green::run(|| {
    ///     let handle = green::Builder::new().name("conn 127.0.0.1:4000".into()).spawn(|| panic!("bad request"))?;
    ///     let error = handle.join().unwrap_err();
    ///     assert_eq!(error.name(), Some("conn 127.0.0.1:4000"));
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Usable stack size in bytes, instead of the runtime's default. Rounded up to the stack
    /// allocator's size class. More than 1 GiB makes the spawn fail.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the green thread on worker `index` (counted from 0) instead of wherever it is
    /// stolen to first. A started green thread stays on its worker, so this pins it there for
    /// life; nor is it stolen before it starts: it waits for that worker even while another is
    /// idle. An index the runtime does not have makes the spawn fail.
    ///
    /// ```
    /// green::Runtime::builder().workers(2).run(|| {
    ///     let on_1 = green::Builder::new().worker(1).spawn(|| 1).unwrap();
    ///     assert_eq!(on_1.join().unwrap(), 1);
    ///     let err = green::Builder::new().worker(2).spawn(|| ()).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker(mut self, index: usize) -> Builder {
        self.worker = Some(index);
        self
    }

    /// Starts the green thread on the next worker in turn (round robin over the runtime's
    /// workers), not wherever it is taken first. [`worker`](Builder::worker) takes precedence.
    ///
    /// For long-lived green threads spawned from one place, the handlers of an accept loop
    /// above all. A green thread never moves once started, and a plain spawn leaves it to
    /// be started by the spawner's worker unless an idle one steals it first; an accept loop
    /// parks in its next `accept` at once, so its worker usually starts the handler before an
    /// idle peer wakes, and busy connections pile up on one worker. The price: a handler
    /// starts a wake-up later (some tens of µs when its worker slept), and a spawn that is
    /// joined at once crosses workers. (One listener per worker, bound with
    /// [`TcpListener::bind_reuse_port`](crate::net::TcpListener::bind_reuse_port), spreads
    /// connections without either.)
    ///
    /// The turn is the runtime's, not the caller's: the next worker may be the caller's own,
    /// and a spread green thread is never stolen. A parent that spawns spread children and
    /// then computes, without parking or yielding, holds up those that landed on its worker
    /// until it does. Spread children whose parent waits for them rather than computing beside
    /// them (docs/design.md, "CPU-parallel work").
    ///
    /// ```
    /// green::Runtime::builder().workers(2).run(|| {
    ///     let handlers: Vec<_> = (0..8)
    ///         .map(|i| green::Builder::new().spread().spawn(move || i * 2).unwrap())
    ///         .collect();
    ///     let sum: i32 = handlers.into_iter().map(|h| h.join().unwrap()).sum();
    ///     assert_eq!(sum, 56);
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spread(mut self) -> Builder {
        self.spread = true;
        self
    }

    /// Ticks this green thread may spend before the runtime looks at the clock, instead of the
    /// runtime's [budget](crate::runtime::Builder::budget); more than
    /// [`MAX_BUDGET`](crate::runtime::MAX_BUDGET) counts as that.
    ///
    /// # Panics
    ///
    /// If `ticks` is 0.
    ///
    /// ```
    /// green::run(|| {
    ///     // A loop of cheap ticks may look at the clock less often.
    ///     let job = green::Builder::new()
    ///         .budget(16 * 1024)
    ///         .spawn(|| (0..100_000u64).map(|i| { green::tick(); i }).sum::<u64>())
    ///         .unwrap();
    ///     assert_eq!(job.join().unwrap(), 4_999_950_000);
    /// });
    /// ```
    #[track_caller]
    pub fn budget(mut self, ticks: u32) -> Builder {
        assert!(ticks > 0, "green: the budget must be at least one tick, got budget(0)");
        self.budget = ticks.min(crate::runtime::MAX_BUDGET);
        self
    }

    /// How long this green thread may run, once its budget is spent, before it yields to
    /// others waiting on its worker, instead of the runtime's
    /// [time slice](crate::runtime::Builder::time_slice). Kept to whole microseconds, at least
    /// one and at most about 71 minutes.
    ///
    /// ```
    /// use std::time::Duration;
    /// green::run(|| {
    ///     // A background job that should give way to the others more often.
    ///     let job = green::Builder::new()
    ///         .time_slice(Duration::from_micros(10))
    ///         .spawn(|| (0..1000u64).sum::<u64>())
    ///         .unwrap();
    ///     assert_eq!(job.join().unwrap(), 499_500);
    /// });
    /// ```
    pub fn time_slice(mut self, slice: Duration) -> Builder {
        self.time_slice_us = slice.as_micros().clamp(1, u128::from(u32::MAX)) as u32;
        self
    }

    /// Spawns the green thread on the caller's runtime: the one [`Handle::try_current`] gives,
    /// so a job on the [blocking pool](crate::spawn_blocking) spawns on the pool's runtime.
    ///
    /// # Errors
    ///
    /// - Outside a runtime: kind [`Other`](io::ErrorKind::Other) (use [`Builder::spawn_on`]
    ///   there).
    /// - [`Builder::worker`] names a worker the runtime does not have, or
    ///   [`Builder::stack_size`] asks for more than the largest stack (1 GiB): kind
    ///   [`InvalidInput`](io::ErrorKind::InvalidInput).
    /// - The stack layout in use can hold no more stacks (the per-stack layout stops below the
    ///   kernel's `vm.max_map_count`); the error says which limit and how to raise it.
    ///
    /// An error found only when the green thread starts (memory) comes from
    /// [`JoinHandle::join`] instead.
    ///
    /// # Spawning as the runtime shuts down
    ///
    /// Once its runtime has begun to shut down, a spawn still returns `Ok`, but the green thread
    /// never runs: `f` is dropped on the caller's thread before the spawn returns, and the
    /// handle's [`join`](JoinHandle::join) reports a cancellation. An accept loop can be in that
    /// window when a shutdown begins. So do not hold a lock across a spawn that a destructor of
    /// something `f` captured takes (a guard that takes a connection out of a registry, say):
    /// with std's `Mutex`, that drop then waits for good for the lock its own thread holds.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// struct Flag(Arc<AtomicBool>);
    /// impl Drop for Flag {
    ///     fn drop(&mut self) {
    ///         self.0.store(true, Ordering::SeqCst);
    ///     }
    /// }
    ///
    /// let rt = green::Runtime::builder().workers(1).build()?;
    /// let handle = rt.handle().clone();
    /// drop(rt);
    /// let dropped = Arc::new(AtomicBool::new(false));
    /// let flag = Flag(dropped.clone());
    /// let job = green::Builder::new().spawn_on(&handle, move || drop(flag))?;
    /// assert!(dropped.load(Ordering::SeqCst), "dropped unrun, before spawn_on returned");
    /// assert!(job.join().unwrap_err().is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let builder = self.at(Location::caller());
        context::with_core(|core| match core {
            // SAFETY: `F` and `T` are `'static`, so nothing can dangle however long it runs.
            Some(core) => unsafe { spawn_scoped(&core.shared, builder, None, f) },
            // A pool thread belongs to its runtime as `Handle::try_current` has it.
            None => match crate::blocking::current_handle() {
                // SAFETY: as above.
                Some(handle) => unsafe { spawn_scoped(&handle.shared, builder, None, f) },
                None => Err(io::Error::other(SPAWN_OUTSIDE)),
            },
        })
    }

    /// Spawns the green thread on the runtime of `handle`, from any thread.
    ///
    /// # Errors
    ///
    /// As for [`Builder::spawn`], except that it works from any thread.
    ///
    /// ```
    /// let rt = green::Runtime::builder().workers(1).build()?;
    /// let job = green::Builder::new().name("from-main".into()).spawn_on(rt.handle(), || 7)?;
    /// assert_eq!(job.join().unwrap(), 7); // an OS thread's join blocks it
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn_on<F, T>(self, handle: &Handle, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: `F` and `T` are `'static`, so nothing can dangle however long it runs.
        unsafe { spawn_scoped(&handle.shared, self.at(Location::caller()), None, f) }
    }

    /// Records the spawn site, unless an outer caller already did.
    #[inline]
    pub(crate) fn at(mut self, location: &'static Location<'static>) -> Builder {
        self.spawned_at.get_or_insert(location);
        self
    }

    #[inline]
    pub(crate) fn spec(self, at: &'static Location<'static>, scope: Option<Arc<ScopeData>>) -> Spec {
        Spec {
            name: self.name.map(shared_name),
            stack_size: self.stack_size.unwrap_or(0),
            budget: self.budget,
            time_slice_us: self.time_slice_us,
            spawned_at: at,
            home: self.worker.unwrap_or(NO_HOME),
            scope,
        }
    }
}

/// A green thread's name as the header keeps it. Out of line: most green threads have none.
#[cold]
fn shared_name(name: String) -> Arc<str> {
    Arc::from(name)
}

/// Spawns without the `'static` bounds.
///
/// # Safety
///
/// Whatever `f` and its result borrow must stay valid until the green thread has finished
/// (its join handle reports it finished) or the runtime has shut down.
///
/// # Errors
///
/// As for [`Builder::spawn`].
#[track_caller]
pub(crate) unsafe fn spawn_unchecked<'a, F, T>(handle: &Handle, builder: Builder, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    // SAFETY: forwarded; no scope.
    unsafe { spawn_scoped(&handle.shared, builder, None, f) }
}

/// Spawns, optionally in a scope.
///
/// # Safety
///
/// As for [`spawn_unchecked`].
///
/// # Errors
///
/// As for [`Builder::spawn`].
#[track_caller]
pub(crate) unsafe fn spawn_scoped<'a, F, T>(
    shared: &Arc<Shared>,
    mut builder: Builder,
    scope: Option<Arc<ScopeData>>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    // A spread green thread is pinned to the worker chosen for it now.
    builder.worker = builder.worker.or_else(|| builder.spread.then(|| shared.spread_target()));
    let pin = builder.worker;
    if let Some(w) = pin
        && w >= shared.remotes.len()
    {
        return Err(no_such_worker(w, shared.remotes.len()));
    }
    if let Some(bytes) = builder.stack_size {
        crate::stack::check_size(bytes)?;
    }
    // Fail early, with the layout's own error, when no stack could be had for it now.
    shared.stacks.admit()?;
    let at = builder.spawned_at.unwrap_or(Location::caller());
    let spec = builder.spec(at, scope);
    // SAFETY: the caller promises the borrows outlive the task.
    let (erased, typed) = unsafe { Task::allocate(f, spec, shared) };
    if admit(shared, &erased) {
        context::with_core(|core| match (core, pin) {
            (Some(core), Some(w)) if w == core.index && Arc::ptr_eq(&core.shared, shared) => {
                core.push_new_local(erased)
            }
            (_, Some(w)) => {
                shared.remotes[w].pinned.push(erased);
                shared.remotes[w].wake_if_sleeping();
            }
            (Some(core), None) if Arc::ptr_eq(&core.shared, shared) => core.push_new(erased),
            (_, None) => {
                shared.injector.push(erased);
                shared.wake_one_sleeper();
            }
        });
    }
    crate::coop::tick_op();
    Ok(JoinHandle::new(typed))
}

#[cold]
fn no_such_worker(w: usize, workers: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "green: Builder::worker({w}), but this runtime has {workers} worker(s), numbered from 0; \
             pick one below {workers}, or build the runtime with .workers({})",
            w + 1
        ),
    )
}

/// Counts a new green thread in. If the runtime is shutting down it is dropped unrun instead
/// (and `false` returned), so nothing is queued that no worker would ever look at.
#[inline]
fn admit(shared: &Shared, task: &TaskRef) -> bool {
    // A worker of this runtime that has finished green threads it has not yet counted out
    // lets the new one take the place of one of them: `live` stays the same, and stays above
    // zero while this spawn runs, as the increment would make it.
    let counted =
        context::with_core(|core| core.is_some_and(|c| std::ptr::eq(&*c.shared, shared) && c.take_finished_credit()));
    if !counted {
        shared.live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    if !shared.is_shutting_down_after_counting() {
        return true;
    }
    refuse(shared, task);
    false
}

/// Drops a green thread that `admit` refused, unrun.
#[cold]
fn refuse(shared: &Shared, task: &TaskRef) {
    // SAFETY: the task was never queued, so no worker can run it.
    unsafe { task.abandon(JoinError::dropped_unstarted(task.header())) };
    if task.header().set_done() {
        outcome_released(task);
    }
    shared.task_finished();
}

/// Makes the main green thread of [`crate::runtime::Builder::run`] (queued by the caller).
///
/// # Safety
///
/// It must run on the calling thread's worker and finish before `f`'s borrows end.
#[track_caller]
pub(crate) unsafe fn new_main_task<'a, F>(handle: &Handle, f: F) -> JoinHandle<()>
where
    F: FnOnce() + 'a,
{
    let spec = Builder::new().name("main".into()).spec(Location::caller(), None);
    // SAFETY: the caller promises the borrows outlive the task.
    let (_queue_ref, typed) = unsafe { Task::allocate(f, spec, &handle.shared) };
    handle.shared.live.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    JoinHandle::new(typed)
}

/// Called by the last owner of a green thread's outcome (the completion or the join handle,
/// see `Header::release_handle`) once it is done with it: drops an outcome nobody took and
/// tells the scope, if any.
pub(crate) fn outcome_released(task: &TaskRef) {
    // SAFETY: the caller is the last owner of the outcome, as `Header::set_done` or
    // `Header::release_handle` told it (or a join that saw DONE, which owns it outright).
    let unseen_panic = unsafe { task.drop_output() };
    if let Some(scope) = &task.header().scope {
        scope.child_done(unseen_panic);
    }
}

/// Gives other green threads on this worker a turn, like [`std::thread::yield_now`]. On a
/// plain OS thread it calls `std::thread::yield_now`.
///
/// This is a cancellation point, and it unwinds to an enclosing [`crate::timeout`] whose
/// deadline has passed: a loop that computes can call it now and then to be stoppable by both.
///
/// It returns at once, yielding nothing, in a green thread that is unwinding and on a
/// worker's own stack ([`crate::on_worker_stack`]): there is no green thread to switch out.
///
/// ```
/// green::run(|| {
///     let other = green::spawn(|| 1);
///     while !other.is_finished() {
///         green::yield_now();
///     }
/// });
/// ```
// Inline on purpose: after a switch back into a green thread, every `ret` of a frame entered
// before the switch is mispredicted (the return-address predictor holds the other stack's
// calls). Inlined into the caller's loop, the yield leaves one frame fewer to return from: a
// round trip went from 54 to 19 ns. `always`: with the deadline's look LLVM kept it out of
// line (24 -> 40 ns).
#[inline(always)]
pub fn yield_now() {
    let unwind = context::with_core(|core| match core {
        None => {
            std::thread::yield_now();
            false
        }
        // On the worker's own stack, or unwinding: nothing to yield to.
        Some(core) if !core.in_green_thread() || std::thread::panicking() => false,
        Some(core) if core.current_is_cancelled() => true,
        Some(core) => {
            core.suspend(Suspend::Yield);
            false
        }
    });
    if unwind {
        cancellation_point();
    } else if crate::deadline::any_in_force() {
        // Where a computation under `green::timeout` can end; one thread-local read when no
        // deadline is in force on this thread.
        yield_deadline();
    }
}

/// The deadline half of [`yield_now`], out of line: the inlined part stays small.
#[cold]
#[inline(never)]
fn yield_deadline() {
    crate::deadline::raise_if_passed();
}

/// Blocks the green thread until its token is made available by [`GreenThread::unpark`],
/// with the semantics of [`std::thread::park`] (including spurious returns: call it in a loop
/// that checks a condition). On a plain OS thread it is `std::thread::park`.
///
/// This is a cancellation point. While its green thread unwinds it returns at once. Inside
/// [`crate::timeout`] it returns at the deadline (a spurious return), and the next
/// blocking-looking call unwinds to the `timeout`.
///
/// # Panics
///
/// Inside [`on_worker_stack`], where no green thread can park.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// green::run(|| {
///     let flag = Arc::new(AtomicBool::new(false));
///     let waiter = {
///         let flag = flag.clone();
///         green::spawn(move || {
///             while !flag.load(Ordering::Acquire) {
///                 green::park();
///             }
///         })
///     };
///     flag.store(true, Ordering::Release);
///     waiter.thread().unpark();
///     waiter.join().unwrap();
/// });
/// ```
#[inline]
pub fn park() {
    park_inner(None);
}

/// Like [`park`], but returns after `timeout` at the latest, like
/// [`std::thread::park_timeout`]. A timeout too long to reach is no limit.
///
/// As with [`park`], a return says nothing about why: check the condition, and the time, in a
/// loop. A cancellation point; panics inside [`on_worker_stack`].
///
/// ```
/// use std::time::{Duration, Instant};
///
/// green::run(|| {
///     let start = Instant::now();
///     let wait = Duration::from_millis(5);
///     // Nobody unparks: returns once the time is up (or spuriously, so check the clock).
///     while start.elapsed() < wait {
///         green::park_timeout(wait.saturating_sub(start.elapsed()));
///     }
///     assert!(start.elapsed() >= wait);
/// });
/// ```
#[inline]
pub fn park_timeout(timeout: Duration) {
    park_inner(Instant::now().checked_add(timeout));
}

/// Inlined into `park` and `park_timeout`, and they into their callers: a frame left across the
/// switch costs a mispredicted return after it (docs/benchmarks.md).
#[inline(always)]
fn park_inner(deadline: Option<Instant>) {
    cancellation_point();
    // Inside `green::timeout`, the park ends at its deadline too: a spurious return, as park
    // allows, after which the caller's next park (or other blocking call) unwinds to the timeout.
    let deadline = park::effective_deadline(deadline);
    let me = context::with_core(|core| core.filter(|c| c.in_green_thread()).and_then(|c| c.current_header()));
    let Some(me) = me else {
        if context::with_core(|c| c.is_some()) {
            panic!(
                "green::park called {}: a green thread cannot park there; park outside that closure or destructor",
                on_worker_stack_where!()
            );
        }
        match deadline {
            Some(d) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
        return;
    };
    // SAFETY: the running green thread's header, which its slot keeps alive while it runs; we
    // are that green thread.
    if crate::park::must_not_wait() || unsafe { me.as_ref() }.take_token() {
        return;
    }
    // A timed park's timer is armed for the current wait sequence, which moves on as the park
    // ends, however it ends.
    match deadline {
        None => context::park(ParkKind::User, None, ParkReason::User),
        Some(deadline) => context::park(ParkKind::UserTimed, Some(deadline), ParkReason::User),
    }
}

/// True if the calling green thread has been cancelled (by [`JoinHandle::cancel`] or runtime
/// shutdown). Its next blocking-looking call will unwind it; a loop that only computes (ticks
/// are not cancellation points) can look here to stop early, or call [`yield_now`], which
/// also ends it at an expired [`crate::timeout`] deadline. False on a plain OS thread.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// green::run(|| {
///     let started = Arc::new(AtomicBool::new(false));
///     let computer = {
///         let started = started.clone();
///         green::spawn(move || {
///             started.store(true, Ordering::Release);
///             let mut rounds = 0u64;
///             while !green::is_cancelled() {
///                 rounds += 1;
///                 green::tick(); // shares the worker, but never unwinds
///             }
///             rounds
///         })
///     };
///     while !started.load(Ordering::Acquire) {
///         green::yield_now();
///     }
///     computer.cancel();
///     // It stopped on its own rather than unwinding, so the join gives its value.
///     assert!(computer.join().is_ok());
///     assert!(!green::is_cancelled());
/// });
/// ```
pub fn is_cancelled() -> bool {
    context::with_core(|core| core.is_some_and(|c| c.current_is_cancelled()))
}

/// Runs `f` on the worker's own large stack, for a call that needs more stack than the green
/// thread has: deep recursion, a big buffer on the stack, C code with unknown needs. The
/// workers a runtime starts have 8 MiB; worker 0 of [`crate::run`] and
/// [`Builder::run`](crate::runtime::Builder::run) is the calling thread, with the stack that
/// thread has (8 MiB for `main` on most Linux systems, 2 MiB for a `std::thread`). On a plain
/// OS thread it just calls `f`.
///
/// The green thread cannot park inside `f`: blocking-looking calls there panic (and I/O does
/// one non-blocking attempt), since the worker's stack is the one all green threads switch back
/// to. Keep `f` short.
///
/// ```
/// green::run(|| {
///     let sum = green::on_worker_stack(|| {
///         let big = [1u8; 1 << 20]; // 1 MiB on the stack
///         big.iter().map(|&b| b as u32).sum::<u32>()
///     });
///     assert_eq!(sum, 1 << 20);
/// });
/// ```
pub fn on_worker_stack<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send,
{
    let yielder = context::with_core(|core| core.and_then(Core::enter_parent_stack));
    // On a plain OS thread, or already on the worker's stack (a nested call): just call it, in
    // a frame of its own. Were `f` inlined here, its locals (the big buffer it was moved off the
    // green stack for) would join this function's frame, which is on the green stack.
    let Some(yielder) = yielder else { return call_in_own_frame(f) };
    struct Leave(*const Yielder<(), Suspend>);
    impl Drop for Leave {
        fn drop(&mut self) {
            context::with_core(|core| {
                core.expect(internal_error!("on_worker_stack left its worker thread")).leave_parent_stack(self.0)
            });
        }
    }
    let _leave = Leave(yielder);
    // SAFETY: `enter_parent_stack` returned the yielder of the green thread running now on
    // this thread (this code, so its coroutine and yielder are alive for the call), and only
    // while it runs on its own stack, so the parent stack it switches to is not already in use
    // by an outer `on_worker_stack`.
    unsafe { (*yielder).on_parent_stack(f) }
}

/// Calls `f` in a frame that is never merged into the caller's.
#[inline(never)]
fn call_in_own_frame<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Installs, once per process, the panic hook that names green threads.
///
/// For a panic on a green thread it prints `green thread 7 "name" panicked (on worker):`, since
/// std's report names only the worker's OS thread, and then hands the panic to the hook that
/// was set before, as it does every other panic: std's report follows, or the user's own hook
/// (a logger, a crash reporter) sees it. A hook set after the runtime starts replaces this one
/// as usual.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(task) = context::with_core(|core| core.and_then(|c| c.current())) {
                let worker = std::thread::current();
                eprintln!("green thread {} panicked (on {}):", task.header().describe(), worker.name().unwrap_or("?"));
            }
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<GreenThread>();
        send_sync::<GreenThreadId>();
        send_sync::<Builder>();
        send_sync::<JoinHandle<u32>>();
        send_sync::<JoinError>();
        send_sync::<Handle>();
        send_sync::<crate::Runtime>();
    }

    /// As std's: a closure that holds them may go through `catch_unwind` as it is.
    #[test]
    fn handles_and_sync_primitives_are_unwind_safe() {
        use std::panic::{RefUnwindSafe, UnwindSafe};
        fn both<T: UnwindSafe + RefUnwindSafe>() {}
        both::<crate::sync::Mutex<u8>>();
        both::<crate::sync::RwLock<u8>>();
        both::<crate::sync::Condvar>();
        both::<crate::sync::Barrier>();
        both::<crate::sync::Semaphore>();
        both::<crate::sync::WaitGroup>();
        both::<crate::sync::OnceLock<u8>>();
        both::<crate::sync::LazyLock<u8>>();
        both::<crate::sync::mpmc::Sender<u8>>();
        both::<crate::sync::mpmc::Receiver<u8>>();
        both::<crate::sync::oneshot::Sender<u8>>();
        both::<crate::sync::oneshot::Receiver<u8>>();
        both::<GreenThread>();
        both::<Handle>();
        both::<crate::Runtime>();
    }
}
