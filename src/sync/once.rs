//! One-time initialization that parks: [`OnceLock`], [`LazyLock`] and [`Once`].
//!
//! std's versions block the OS thread of whoever arrives while another initializes. On a worker
//! that is the whole worker, and if the initializer is a green thread of that same worker that
//! parked (a read, a sleep, a lock), it never runs again: the worker hangs. Here the late
//! arrivals park on a green [`Mutex`] held by the initializer, so the worker runs on and the
//! initializer finishes.
//!
//! Once a value is there, reading it is one atomic load, as in std.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::{Condvar, Mutex, TryLockError};
use crate::runtime::task::Cancelled;

/// A cell written once, like [`std::sync::OnceLock`], whose waiters park instead of blocking
/// their worker.
///
/// While one caller runs the initializer, others wait for it; if the initializer panics (or
/// its green thread is cancelled), the cell stays empty and the next caller runs its own.
/// Waiting for the initializer is a cancellation point (nothing else is). While the caller
/// unwinds ([while unwinding](crate::sync#while-unwinding)) that wait does what
/// [`Mutex::lock`] does: up to 5 s for an initializer on another worker or an OS thread, an
/// abort if it runs on the caller's worker; [`OnceLock::wait`] on an empty cell aborts. A cell
/// already written is read without waiting. An initializer that initializes its own cell
/// deadlocks.
///
/// ```
/// use std::time::Duration;
/// use green::sync::OnceLock;
///
/// static GREETING: OnceLock<String> = OnceLock::new();
///
/// green::run(|| {
///     let readers: Vec<_> = (0..4)
///         .map(|_| {
///             green::spawn(|| {
///                 // The first to arrive sleeps (parks) while initializing; the others park
///                 // until it is done, and the worker keeps running all of them.
///                 GREETING.get_or_init(|| {
///                     green::sleep(Duration::from_millis(5));
///                     "hello".to_owned()
///                 })
///                 .len()
///             })
///         })
///         .collect();
///     assert!(readers.into_iter().all(|r| r.join().unwrap() == 5));
/// });
/// ```
pub struct OnceLock<T> {
    /// Set, with `Release`, once `value` is written; never cleared while shared.
    done: AtomicBool,
    /// Held by whoever runs an initializer.
    init: Mutex<()>,
    /// Notified, under `init`, once `done` is set: for [`OnceLock::wait`].
    ready: Condvar,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, under `init`, before `done` is set with `Release`; it is
// read only after `done` is seen with `Acquire`, and through `&mut self` or by value otherwise.
// Sharing the cell shares `&T` (so `T: Sync`) and lets another thread write it or take it out
// (so `T: Send`), as for std's `OnceLock`.
unsafe impl<T: Sync + Send> Sync for OnceLock<T> {}
// SAFETY: the cell owns its `T`.
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for OnceLock<T> {}
impl<T: UnwindSafe> UnwindSafe for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            done: AtomicBool::new(false),
            init: Mutex::new(()),
            ready: Condvar::new(),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, if it is there; never waits.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        if self.done.load(Ordering::Acquire) {
            // SAFETY: `done` is set only after the value was written, and never cleared while
            // the cell is shared.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, if it is there, mutably.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if *self.done.get_mut() {
            // SAFETY: written, and `&mut self` excludes every other access.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    /// The value, waiting until some other caller has initialized the cell, like std's
    /// `OnceLock::wait` (parking a green thread, blocking an OS thread). A cancellation point;
    /// inside [`crate::timeout`] it unwinds at the deadline. A green thread that unwinds and
    /// finds the cell empty cannot wait ([while unwinding](crate::sync#while-unwinding)): the
    /// process aborts, naming it.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// green::run(|| {
    ///     let cell = Arc::new(green::sync::OnceLock::new());
    ///     let waiter = green::spawn({
    ///         let cell = cell.clone();
    ///         move || *cell.wait()
    ///     });
    ///     green::sleep(std::time::Duration::from_millis(5));
    ///     cell.set(7).unwrap();
    ///     assert_eq!(waiter.join().unwrap(), 7);
    /// });
    /// ```
    pub fn wait(&self) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        // No forced yield while this waiter holds `init` (from here until `ready.wait` lets go
        // of it): a neighbour on this worker that unwinds and initializes the empty cell would
        // find it held by a green thread of its own worker, and abort.
        let _no_yield = crate::coop::no_yield();
        let mut turn = self.lock_init();
        while !self.done.load(Ordering::Acquire) {
            turn = self.ready.wait(turn).unwrap_or_else(|e| e.into_inner());
        }
        drop(turn);
        self.get().expect(internal_error!("a green::sync::OnceLock was reported ready while empty"))
    }

    /// Writes `value` if the cell is empty; otherwise gives it back. May wait for an
    /// initializer that is running.
    ///
    /// ```
    /// let mut cell = green::sync::OnceLock::new();
    /// assert_eq!(cell.get(), None);
    /// assert_eq!(cell.set(1), Ok(()));
    /// assert_eq!(cell.set(2), Err(2));
    /// assert_eq!(cell.get(), Some(&1));
    /// assert_eq!(cell.take(), Some(1));
    /// ```
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect(internal_error!("a green::sync::OnceLock initializer ran twice")));
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value, running `f` to make it if the cell is empty. If another caller is running its
    /// initializer, waits for it (parking a green thread, blocking an OS thread).
    ///
    /// # Panics
    ///
    /// Resumes the panic of `f`; the cell stays empty.
    pub fn get_or_init<F>(&self, f: F) -> &T
    where
        F: FnOnce() -> T,
    {
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(f())) {
            Ok(value) => value,
        }
    }

    /// The value, running `f` to make it if the cell is empty; if `f` fails, the cell stays
    /// empty and its error is returned. (std has this unstable, as `get_or_try_init`.)
    pub fn get_or_try_init<F, E>(&self, f: F) -> Result<&T, E>
    where
        F: FnOnce() -> Result<T, E>,
    {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        self.initialize(f)
    }

    #[cold]
    fn initialize<F, E>(&self, f: F) -> Result<&T, E>
    where
        F: FnOnce() -> Result<T, E>,
    {
        // A poisoned lock only means an earlier initializer panicked: it wrote nothing. Only a
        // wait for another initializer is a cancellation point, so try without waiting first.
        let _turn = match self.init.try_lock() {
            Ok(turn) => turn,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => self.lock_init(),
        };
        if let Some(value) = self.get() {
            return Ok(value);
        }
        let value = f()?;
        // SAFETY: empty (`done` is false, checked under `init`, which every writer holds), and
        // no reader looks before `done` is set.
        unsafe { (*self.value.get()).write(value) };
        self.done.store(true, Ordering::Release);
        self.ready.notify_all();
        // SAFETY: just written.
        Ok(unsafe { (*self.value.get()).assume_init_ref() })
    }

    /// Takes `init`, waiting for an initializer that holds it (a poisoned lock only means an
    /// earlier initializer panicked: it wrote nothing).
    fn lock_init(&self) -> super::MutexGuard<'_, ()> {
        self.init
            .lock_as("green::sync::OnceLock (or LazyLock, Once), waiting for another initializer,", || {
                format!(
                    "green: {} would wait for a green::sync::OnceLock (or LazyLock, Once) initializer while \
                     unwinding; it cannot park then (see green::sync, \"While unwinding\"). Initialize it before the \
                     panic, or use get() in destructors",
                    crate::sync::wait::describe_current()
                )
            })
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The value, if there is one, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        if std::mem::replace(self.done.get_mut(), false) {
            // SAFETY: written, and no longer marked so: it is read out once.
            Some(unsafe { self.value.get_mut().assume_init_read() })
        } else {
            None
        }
    }

    /// The value, if there is one.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if *self.done.get_mut() {
            // SAFETY: written, and dropped once: the cell goes away.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> OnceLock<T> {
        OnceLock {
            done: AtomicBool::new(true),
            init: Mutex::new(()),
            ready: Condvar::new(),
            value: UnsafeCell::new(MaybeUninit::new(value)),
        }
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> OnceLock<T> {
        match self.get() {
            Some(value) => OnceLock::from(value.clone()),
            None => OnceLock::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(value) => d.field(value),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

/// A value made on first use, like [`std::sync::LazyLock`], whose waiters park instead of
/// blocking their worker (see [`OnceLock`]).
///
/// If the initializer panics, the `LazyLock` is poisoned: every later use panics. So it is if
/// the initializer's green thread is cancelled, or its [`green::timeout`](crate::timeout)
/// passes, before the initializer returns: the initializer is gone with that unwind, and the
/// panic of a later use says which happened. For a `static` shared by the whole process, that
/// means one caller's deadline (or a runtime shut down while one of its green threads runs the
/// initializer) breaks it for every later user, other runtimes and OS threads included. Where
/// the initializer may wait (I/O, a lock, a sleep), prefer a [`OnceLock`] and
/// [`get_or_init`](OnceLock::get_or_init): a caller that is cancelled takes only its own
/// initializer with it, and the next caller runs its own.
///
/// ```
/// use std::collections::HashMap;
/// use green::sync::LazyLock;
///
/// static PORTS: LazyLock<HashMap<&str, u16>> = LazyLock::new(|| HashMap::from([("http", 80), ("https", 443)]));
///
/// green::run(|| {
///     let https = green::spawn(|| PORTS["https"]).join().unwrap();
///     assert_eq!(https, 443);
///     assert_eq!(PORTS.len(), 2);
/// });
/// ```
pub struct LazyLock<T, F = fn() -> T> {
    cell: OnceLock<T>,
    /// The initializer, until it is taken to run (under the cell's `init` lock).
    init: UnsafeCell<Option<F>>,
    /// Why the initializer is gone without a value: [`NOT_LOST`], [`PANICKED`] or
    /// [`UNWOUND`].
    lost: AtomicU8,
}

const NOT_LOST: u8 = 0;
/// The initializer panicked.
const PANICKED: u8 = 1;
/// The initializer was unwound by the runtime: a cancellation, or a `green::timeout` deadline.
const UNWOUND: u8 = 2;

#[cold]
fn poisoned(lost: u8) -> ! {
    match lost {
        UNWOUND => panic!(
            "green::sync::LazyLock: its initializer was cancelled, or its green::timeout passed, before it \
             returned; the initializer went with that unwind, so the value can never be made (poisoned)"
        ),
        _ => panic!("green::sync::LazyLock: its initializer panicked earlier (poisoned)"),
    }
}

// SAFETY: `init` is touched only by the one caller that runs the cell's initializer (under its
// lock) or through `&mut self`/by value; it moves to that caller's thread, hence `F: Send`. The
// value is shared as in `OnceLock`.
unsafe impl<T: Sync + Send, F: Send> Sync for LazyLock<T, F> {}

impl<T: RefUnwindSafe + UnwindSafe, F: UnwindSafe> RefUnwindSafe for LazyLock<T, F> {}

impl<T, F: FnOnce() -> T> LazyLock<T, F> {
    /// A `LazyLock` that runs `f` on first use.
    pub const fn new(f: F) -> LazyLock<T, F> {
        LazyLock { cell: OnceLock::new(), init: UnsafeCell::new(Some(f)), lost: AtomicU8::new(NOT_LOST) }
    }

    /// Makes the value if it is not there yet, and returns it.
    ///
    /// # Panics
    ///
    /// If the initializer panics (its panic), or was lost before (poisoned: see the type's
    /// docs).
    pub fn force(this: &LazyLock<T, F>) -> &T {
        this.cell.get_or_init(|| {
            // SAFETY: this runs under the cell's `init` lock, at most one caller at a time,
            // and the only other access to `init` needs `&mut self`.
            let Some(f) = (unsafe { (*this.init.get()).take() }) else { poisoned(this.lost.load(Ordering::Relaxed)) };
            match std::panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(value) => value,
                Err(payload) => {
                    let runtime = payload.is::<Cancelled>() || crate::deadline::is_unwind(&*payload);
                    this.lost.store(if runtime { UNWOUND } else { PANICKED }, Ordering::Relaxed);
                    // The runtime's own unwinds go on as such, panics as panics.
                    if runtime { crate::park::runtime_unwind(payload) } else { std::panic::resume_unwind(payload) }
                }
            }
        })
    }

    /// Makes the value if it is not there yet, and returns it mutably, as std's `force_mut`.
    /// The `&mut` borrow proves nobody else is initializing or reading it: nothing waits.
    ///
    /// # Panics
    ///
    /// As [`LazyLock::force`].
    ///
    /// ```
    /// use green::sync::LazyLock;
    ///
    /// let mut lazy = LazyLock::new(|| vec![1]);
    /// LazyLock::force_mut(&mut lazy).push(2);
    /// assert_eq!(*lazy, [1, 2]);
    /// ```
    pub fn force_mut(this: &mut LazyLock<T, F>) -> &mut T {
        LazyLock::force(this);
        this.cell.get_mut().expect(internal_error!("a green::sync::LazyLock is empty after its initializer returned"))
    }

    /// The value, if it has been made; never runs the initializer nor waits for it, as std's
    /// `LazyLock::get`. `None` while another caller is initializing, or after the initializer
    /// was lost (poisoned).
    ///
    /// ```
    /// use green::sync::LazyLock;
    ///
    /// let lazy = LazyLock::new(|| 7);
    /// assert_eq!(LazyLock::get(&lazy), None);
    /// assert_eq!(*lazy, 7);
    /// assert_eq!(LazyLock::get(&lazy), Some(&7));
    /// ```
    pub fn get(this: &LazyLock<T, F>) -> Option<&T> {
        this.cell.get()
    }

    /// The value mutably, if it has been made; never runs the initializer, as std's
    /// `LazyLock::get_mut`.
    ///
    /// ```
    /// use green::sync::LazyLock;
    ///
    /// let mut lazy = LazyLock::new(|| 7);
    /// assert_eq!(LazyLock::get_mut(&mut lazy), None);
    /// LazyLock::force(&lazy);
    /// *LazyLock::get_mut(&mut lazy).unwrap() += 1;
    /// assert_eq!(*lazy, 8);
    /// ```
    pub fn get_mut(this: &mut LazyLock<T, F>) -> Option<&mut T> {
        this.cell.get_mut()
    }

    /// The value, or the initializer if it never ran (`Err` holds it then).
    ///
    /// # Panics
    ///
    /// If the initializer panicked, or was cancelled or timed out (poisoned).
    pub fn into_inner(this: LazyLock<T, F>) -> Result<T, F> {
        let LazyLock { cell, init, lost } = this;
        match (cell.into_inner(), init.into_inner()) {
            (Some(value), _) => Ok(value),
            (None, Some(f)) => Err(f),
            (None, None) => poisoned(lost.into_inner()),
        }
    }
}

impl<T, F: FnOnce() -> T> Deref for LazyLock<T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        LazyLock::force(self)
    }
}

impl<T, F: FnOnce() -> T> DerefMut for LazyLock<T, F> {
    fn deref_mut(&mut self) -> &mut T {
        LazyLock::force_mut(self)
    }
}

impl<T: Default> Default for LazyLock<T> {
    fn default() -> LazyLock<T> {
        LazyLock::new(T::default)
    }
}

impl<T: fmt::Debug, F> fmt::Debug for LazyLock<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("LazyLock");
        match self.cell.get() {
            Some(value) => d.field(value),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

/// Runs a closure once, like [`std::sync::Once`], parking those who arrive meanwhile (see
/// [`OnceLock`]).
///
/// Unlike std's, it is never poisoned: if the closure panics (or its green thread is cancelled,
/// or its deadline passes), the `Once` stays not completed and the next caller runs its own
/// closure, where std's `Once` would panic. Every call is thus what std calls a forced one;
/// [`call_once_force`](Once::call_once_force) is there for code ported from std, and its
/// [`OnceState`] never says poisoned.
///
/// ```
/// use green::sync::Once;
///
/// static SETUP: Once = Once::new();
///
/// green::run(|| {
///     let runs = std::sync::atomic::AtomicUsize::new(0);
///     for _ in 0..3 {
///         SETUP.call_once(|| {
///             runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         });
///     }
///     assert_eq!(runs.into_inner(), 1);
///     assert!(SETUP.is_completed());
/// });
/// ```
#[derive(Default)]
pub struct Once(OnceLock<()>);

impl Once {
    /// A `Once` that has not run.
    pub const fn new() -> Once {
        Once(OnceLock::new())
    }

    /// Runs `f` if no call has completed yet; otherwise returns at once. If another call is
    /// running, waits for it.
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        self.0.get_or_init(f);
    }

    /// As [`call_once`](Once::call_once), with std's signature for a call that runs even after
    /// an earlier closure panicked, which every call here does: `f` gets a [`OnceState`] whose
    /// [`is_poisoned`](OnceState::is_poisoned) is false.
    ///
    /// ```
    /// use green::sync::Once;
    ///
    /// static INIT: Once = Once::new();
    ///
    /// green::run(|| {
    ///     let first = std::panic::catch_unwind(|| INIT.call_once(|| panic!("the first try fails")));
    ///     assert!(first.is_err());
    ///     INIT.call_once_force(|state| assert!(!state.is_poisoned(), "a green Once is never poisoned"));
    ///     assert!(INIT.is_completed());
    /// });
    /// ```
    pub fn call_once_force<F: FnOnce(&OnceState)>(&self, f: F) {
        self.0.get_or_init(|| f(&OnceState { _private: () }));
    }

    /// True once a call has completed.
    pub fn is_completed(&self) -> bool {
        self.0.get().is_some()
    }

    /// Waits until a call has completed, without running one, like std's `Once::wait`; as
    /// [`OnceLock::wait`] while unwinding.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// green::run(|| {
    ///     let once = Arc::new(green::sync::Once::new());
    ///     let waiter = green::spawn({
    ///         let once = once.clone();
    ///         move || once.wait()
    ///     });
    ///     once.call_once(|| {});
    ///     waiter.join().unwrap();
    ///     assert!(once.is_completed());
    /// });
    /// ```
    pub fn wait(&self) {
        self.0.wait();
    }

    /// As [`wait`](Once::wait), with std's name for a wait that ignores poisoning: a green
    /// `Once` is never poisoned, so the two are the same.
    ///
    /// ```
    /// let once = green::sync::Once::new();
    /// once.call_once(|| {});
    /// once.wait_force();
    /// ```
    pub fn wait_force(&self) {
        self.0.wait();
    }
}

/// What [`Once::call_once_force`] tells its closure, as std's `OnceState` does; a green `Once`
/// is never poisoned.
#[derive(Debug)]
pub struct OnceState {
    _private: (),
}

impl OnceState {
    /// Always false: an earlier closure that panicked leaves a green `Once` as it found it.
    pub fn is_poisoned(&self) -> bool {
        false
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").field("completed", &self.is_completed()).finish()
    }
}
