//! Green-thread-local storage: [`green_local!`](crate::green_local) and [`LocalKey`].
//!
//! A `std` `thread_local!` belongs to the OS thread, so every green thread on one worker shares
//! it. `green_local!` gives each green thread its own value instead, created on first use and
//! dropped when the green thread ends, on its own stack. On a plain OS thread it falls back to
//! one value per OS thread.
//!
//! The values of a green thread live in a small list kept in its header, keyed by the address
//! of the `static` that declares them. Only the green thread itself ever touches that list.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::fmt;
use std::ptr::NonNull;

use crate::runtime::context;
use crate::runtime::task::Header;

/// Declares green-thread-local statics, with the syntax of [`std::thread_local!`].
///
/// Each green thread gets its own value, made on first use. A `std::thread_local!` in a green
/// thread belongs to its worker's OS thread instead, and every green thread on that worker
/// shares it. On a plain OS thread, a `green_local!` holds one value per OS thread, as std's
/// does. Code a worker runs for no green thread reaches the worker thread's value, which lives
/// as long as the worker: for instance the destructors of what a closure captured, when its
/// green thread was cancelled before it started. Code in
/// [`on_worker_stack`](crate::on_worker_stack) runs for its caller, and reaches the caller's
/// value.
///
/// A green thread's values are dropped when it ends, after its body, on its own stack, the
/// latest made first. As with std's, a destructor may use the values not dropped yet. It may
/// also use a local not used before: that value is made then, and dropped in its turn. A value
/// already dropped gives an [`AccessError`](crate::AccessError). A destructor that panics is
/// caught and logged, where std's would abort the process. In a green thread that was
/// cancelled ([`JoinHandle::cancel`](crate::JoinHandle::cancel), the runtime's shutdown), a
/// destructor that waits (a lock, a receive, a sleep) is unwound at that wait by the
/// cancellation, and logged: drop such a value before the body ends.
///
/// ```
/// use std::cell::Cell;
///
/// green::green_local! {
///     static COUNTER: Cell<u32> = Cell::new(0);
/// }
///
/// green::run(|| {
///     COUNTER.with(|c| c.set(10));
///     let other = green::spawn(|| COUNTER.with(|c| c.get())).join().unwrap();
///     assert_eq!(other, 0); // a new green thread starts with its own value
///     assert_eq!(COUNTER.with(|c| c.get()), 10);
/// });
/// ```
#[macro_export]
macro_rules! green_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::LocalKey<$t> = {
            fn __green_local_init() -> $t {
                $init
            }
            $crate::LocalKey::__new(__green_local_init)
        };
        $crate::green_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::green_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}

/// A key to green-thread-local values, declared with [`green_local!`](crate::green_local)
/// (which has an example); the counterpart of [`std::thread::LocalKey`], with the same
/// methods.
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// The value was already destroyed: the green thread (or OS thread) is ending and a
/// destructor of another local tried to use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessError;

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("green-thread-local value accessed after it was destroyed")
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn __new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Calls `f` with this green thread's value, creating it first if needed.
    ///
    /// # Panics
    ///
    /// If the value was already destroyed (see [`LocalKey::try_with`]), or if the initializer
    /// panics.
    #[track_caller]
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(r) => r,
            Err(AccessError) => panic!(
                "green: green-thread-local value of type {} used after it was destroyed (its thread is ending, \
                 and a destructor of its locals used it); use try_with in destructors",
                std::any::type_name::<T>()
            ),
        }
    }

    /// Calls `f` with this green thread's value, or returns an error if it was already
    /// destroyed.
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        self.try_with_init(self.init, f)
    }

    /// Puts `value` in: as the first value (`wrap`ped, without the declared initializer), or
    /// into the one there (`put`).
    fn set_or_init<V>(&'static self, value: V, wrap: impl FnOnce(V) -> T, put: impl FnOnce(&T, V)) {
        let value = Cell::new(Some(value));
        self.try_with_init(
            || wrap(value.take().expect(internal_error!("a green-thread-local value to set was taken twice"))),
            |current| {
                if let Some(value) = value.take() {
                    put(current, value);
                }
            },
        )
        .unwrap_or_else(|AccessError| {
            panic!(
                "green: green-thread-local value of type {} set after it was destroyed (its thread's locals are \
                 being destroyed); use try_with in destructors",
                std::any::type_name::<T>()
            )
        });
    }

    /// [`try_with`](LocalKey::try_with), with `init` instead of the declared initializer if
    /// the value is not there yet.
    fn try_with_init<F, R>(&'static self, init: impl FnOnce() -> T, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let key = self as *const Self as usize;
        let value = match with_map(|map| map.get(key))? {
            Some(value) => value,
            None => {
                // The initializer runs with no borrow of the map: it may use other locals,
                // park, or be switched out at a tick while others use theirs.
                let mut fresh: Option<Box<dyn Any>> = Some(Box::new(init()));
                // If it initialised this very key meanwhile, the first value stays, and the
                // fresh one is dropped here, after the borrow of the map has ended: its
                // destructor is user code, which may use locals too.
                let stayed = with_map(|map| map.insert(key, &mut fresh));
                drop(fresh);
                stayed?
            }
        };
        // SAFETY: the value lives in a heap box owned by the map of the running green thread
        // (or OS thread); entries are only removed by `destroy`, which runs when that thread
        // ends, after all its code (including this call) has returned.
        let value = unsafe { value.as_ref() };
        // Keys are the addresses of statics; should two of different types ever share one,
        // this says so instead of misreading the value.
        let value = value
            .downcast_ref::<T>()
            .expect(internal_error!("two green_local! keys of different types share an address"));
        Ok(f(value))
    }
}

/// The shortcuts std has for `Cell` locals.
///
/// ```
/// use std::cell::Cell;
///
/// green::green_local! {
///     static DEPTH: Cell<u32> = Cell::new(0);
/// }
///
/// green::run(|| {
///     DEPTH.set(3);
///     assert_eq!(DEPTH.replace(4), 3);
///     assert_eq!(DEPTH.get(), 4);
///     assert_eq!(DEPTH.take(), 4);
///     assert_eq!(green::spawn(|| DEPTH.get()).join().unwrap(), 0);
/// });
/// ```
impl<T: 'static> LocalKey<Cell<T>> {
    /// Sets the value; if it was not there yet, it starts as `value` without running the
    /// declared initializer.
    ///
    /// # Panics
    ///
    /// If the value was destroyed (used from a destructor of another local as the green thread
    /// ends), as each of these `Cell` methods does; [`LocalKey::try_with`] tells instead.
    pub fn set(&'static self, value: T) {
        self.set_or_init(value, Cell::new, Cell::set);
    }

    /// A copy of the value.
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes the value, leaving `T::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces the value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

/// The shortcuts std has for `RefCell` locals.
///
/// ```
/// use std::cell::RefCell;
///
/// green::green_local! {
///     static SEEN: RefCell<Vec<u32>> = RefCell::new(Vec::new());
/// }
///
/// green::run(|| {
///     SEEN.with_borrow_mut(|seen| seen.push(1));
///     SEEN.with_borrow(|seen| assert_eq!(seen, &[1]));
///     assert_eq!(SEEN.replace(vec![2]), [1]);
///     assert_eq!(SEEN.take(), [2]);
/// });
/// ```
impl<T: 'static> LocalKey<RefCell<T>> {
    /// Calls `f` with a shared borrow of the value.
    ///
    /// # Panics
    ///
    /// If the value is mutably borrowed, or was destroyed.
    pub fn with_borrow<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        self.with(|cell| f(&cell.borrow()))
    }

    /// Calls `f` with a mutable borrow of the value.
    ///
    /// # Panics
    ///
    /// If the value is borrowed, or was destroyed.
    pub fn with_borrow_mut<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&mut T) -> R,
    {
        self.with(|cell| f(&mut cell.borrow_mut()))
    }

    /// Sets the value; if it was not there yet, it starts as `value` without running the
    /// declared initializer.
    ///
    /// # Panics
    ///
    /// If the value is borrowed, or was destroyed.
    pub fn set(&'static self, value: T) {
        self.set_or_init(value, RefCell::new, |cell, value| *cell.borrow_mut() = value);
    }

    /// Takes the value, leaving `T::default()`.
    ///
    /// # Panics
    ///
    /// If the value is borrowed, or was destroyed.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces the value, returning the old one.
    ///
    /// # Panics
    ///
    /// If the value is borrowed, or was destroyed.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|cell| cell.replace(value))
    }
}

/// The values of one green thread (or OS thread).
#[derive(Default)]
pub(crate) struct LocalMap {
    entries: Vec<(usize, NonNull<dyn Any>)>,
    destruction: Destruction,
}

/// How far [`destroy`] has gone with a map.
#[derive(Default)]
enum Destruction {
    /// The thread is running: a value is made at first use.
    #[default]
    NotStarted,
    /// The thread is ending, and destructors run. A value of a key not listed here is still
    /// made at first use (as std makes one), and destroyed in its turn; the listed keys' values
    /// are gone. Each key is listed once, so the destruction ends.
    Running { destroyed: Vec<usize> },
    /// Every value is gone: no more are made, or none would be destroyed.
    Over,
}

impl LocalMap {
    fn get(&mut self, key: usize) -> Result<Option<NonNull<dyn Any>>, AccessError> {
        if let Some((_, value)) = self.entries.iter().find(|(k, _)| *k == key) {
            return Ok(Some(*value));
        }
        match &self.destruction {
            Destruction::NotStarted => Ok(None),
            Destruction::Running { destroyed } if !destroyed.contains(&key) => Ok(None),
            Destruction::Running { .. } | Destruction::Over => Err(AccessError),
        }
    }

    /// Takes `value` for `key` unless there is one already; returns the one that stays. A
    /// value not taken stays in `value`, for the caller to drop once no borrow of the map is
    /// live.
    fn insert(&mut self, key: usize, value: &mut Option<Box<dyn Any>>) -> Result<NonNull<dyn Any>, AccessError> {
        if let Some(existing) = self.get(key)? {
            return Ok(existing);
        }
        let value = NonNull::from(Box::leak(
            value.take().expect(internal_error!("a green-thread-local value to insert was taken twice")),
        ));
        self.entries.push((key, value));
        Ok(value)
    }

    /// Takes out the value to destroy next, the latest made; `None` once there is none left,
    /// after which no more are made.
    fn pop(&mut self) -> Option<Box<dyn Any>> {
        let Some((key, value)) = self.entries.pop() else {
            self.destruction = Destruction::Over;
            return None;
        };
        match &mut self.destruction {
            Destruction::Running { destroyed } => destroyed.push(key),
            _ => self.destruction = Destruction::Running { destroyed: vec![key] },
        }
        // SAFETY: every entry came from `Box::leak` in `insert` and is removed once.
        Some(unsafe { Box::from_raw(value.as_ptr()) })
    }
}

/// The values of one green thread, in its header: a map allocated at first use and reached only
/// through the one raw pointer kept here. (Not a `Box`: each `&mut` taken through a box would
/// invalidate the pointer that `destroy` keeps while a destructor uses the map.)
#[derive(Debug)]
pub(crate) struct Locals(Cell<*mut LocalMap>);

impl Locals {
    pub(crate) const fn new() -> Locals {
        Locals(Cell::new(std::ptr::null_mut()))
    }

    /// The map, allocated if this is the first use.
    fn get_or_create(&self) -> *mut LocalMap {
        if self.0.get().is_null() {
            self.0.set(Box::into_raw(Box::default()));
        }
        self.0.get()
    }
}

impl Drop for Locals {
    fn drop(&mut self) {
        let map = self.0.get();
        if !map.is_null() {
            // SAFETY: allocated by `Box::into_raw` in `get_or_create`, freed only here.
            drop(unsafe { Box::from_raw(map) });
        }
    }
}

/// Per-OS-thread storage for plain OS threads.
struct OsLocals(UnsafeCell<LocalMap>);

impl Drop for OsLocals {
    fn drop(&mut self) {
        // std counts `OS_LOCALS` as gone from here on: the values' destructors reach the map
        // through `DESTROYING` instead, to use the values not destroyed yet.
        let map = self.0.get();
        let _ = DESTROYING.try_with(|d| d.set(map));
        // SAFETY: the OS thread is ending; the map is ours.
        unsafe { destroy(map, None) };
        let _ = DESTROYING.try_with(|d| d.set(std::ptr::null_mut()));
    }
}

thread_local! {
    static OS_LOCALS: OsLocals = OsLocals(UnsafeCell::new(LocalMap::default()));
    /// This OS thread's map while `OsLocals::drop` destroys it; null otherwise. A `const`
    /// local without a destructor, so it stays readable while the other locals are dropped.
    static DESTROYING: std::cell::Cell<*mut LocalMap> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Runs `f` with the map of the running green thread, or of this OS thread. `f` runs no user
/// code and does not switch green threads, so the borrow of the map cannot overlap another.
fn with_map<R>(f: impl FnOnce(&mut LocalMap) -> Result<R, AccessError>) -> Result<R, AccessError> {
    let map = context::with_core(|core| core.and_then(|c| c.with_current(|h| h.map(|h| h.locals.get_or_create()))));
    match map {
        // SAFETY: the running green thread's map is touched only by that green thread (module
        // docs), and only inside `with_map`, whose `f` neither re-enters it nor switches away.
        Some(map) => f(unsafe { &mut *map }),
        None => match OS_LOCALS.try_with(|locals| locals.0.get()) {
            // SAFETY: as above, for this OS thread's map.
            Ok(map) => f(unsafe { &mut *map }),
            Err(_) => match DESTROYING.try_with(std::cell::Cell::get) {
                // SAFETY: the map `OsLocals::drop` is destroying, alive until it clears the
                // pointer; `destroy` holds no borrow of it while a destructor runs.
                Ok(map) if !map.is_null() => f(unsafe { &mut *map }),
                _ => Err(AccessError),
            },
        },
    }
}

/// Drops every value of `map`, one at a time, so a destructor may still use the others.
/// `owner` is the green thread whose values they are (`None`: an OS thread's).
///
/// # Safety
///
/// `map` is valid, and the thread that owns it is ending: no borrow of it is live, except the
/// short ones that destructors make through `with_map`.
unsafe fn destroy(map: *mut LocalMap, owner: Option<&Header>) {
    loop {
        // SAFETY: per the contract; the borrow ends before the value's destructor runs.
        let Some(value) = (unsafe { &mut *map }).pop() else { break };
        let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value))) else {
            continue;
        };
        let whose = owner.map_or_else(|| "a plain OS thread".to_owned(), |h| format!("green thread {}", h.describe()));
        if payload.is::<crate::runtime::task::Cancelled>() {
            // The body has ended, but the cancellation stays: a wait in the destructor unwinds.
            log::warn!(
                "green: a green-thread-local destructor of {whose} was cut short: it waited after its green \
                 thread was cancelled, and the cancellation unwound it. A value whose destructor must wait is \
                 better dropped (or taken out) before the green thread ends"
            );
        } else {
            log::warn!(
                "green: a green-thread-local destructor of {whose} panicked (its message is above); the panic \
                 was caught, and the other locals are destroyed all the same"
            );
        }
    }
}

/// Drops the locals of the running green thread, whose header is `header`. Called by the task
/// as its body ends, on its own stack.
///
/// # Safety
///
/// `header` is the running green thread's own.
pub(crate) unsafe fn destroy_current(header: &Header) {
    let map = header.locals.0.get();
    if map.is_null() {
        return;
    }
    // SAFETY: the running green thread's own map, touched only by it; it is ending, and the map
    // stays allocated (it is freed only with the header, after this). Destructors reach it
    // through the same raw pointer, so their borrows do not invalidate this one.
    unsafe { destroy(map, Some(header)) };
}
