//! Green-thread-local storage.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

mod common;

green::green_local! {
    static ID: Cell<usize> = Cell::new(0);
    static LOG: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

#[test]
fn each_green_thread_has_its_own_value() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let handles: Vec<_> = (1..=50)
            .map(|i| {
                green::spawn(move || {
                    ID.with(|id| id.set(i));
                    for _ in 0..3 {
                        green::yield_now(); // others on the same worker set theirs meanwhile
                        assert_eq!(ID.with(Cell::get), i);
                    }
                    LOG.with(|l| l.borrow_mut().push(i));
                    LOG.with(|l| l.borrow().clone())
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), vec![i + 1]);
        }
    });
}

struct CountsDrops(Arc<AtomicUsize>);
impl Drop for CountsDrops {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

green::green_local! {
    static GUARD: RefCell<Option<CountsDrops>> = RefCell::new(None);
}

#[test]
fn values_are_dropped_when_the_green_thread_ends() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    green::run(move || {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let d = d.clone();
                green::spawn(move || GUARD.with(|g| *g.borrow_mut() = Some(CountsDrops(d))))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(d.load(Ordering::Relaxed), 20);
    });
    assert_eq!(drops.load(Ordering::Relaxed), 20);
}

#[test]
fn os_threads_get_their_own_value_too() {
    ID.with(|id| id.set(99));
    let other = std::thread::spawn(|| ID.with(Cell::get)).join().unwrap();
    assert_eq!(other, 0);
    assert_eq!(ID.with(Cell::get), 99);
}

green::green_local! {
    static SLOW: u64 = {
        // An initializer that parks: others on the worker run meanwhile and use their locals.
        green::sleep(std::time::Duration::from_millis(20));
        7
    };
}

/// Regression: while one green thread's initializer parked, every other green thread on the
/// worker panicked on any green-local access.
#[test]
fn an_initializer_may_park_while_others_use_their_locals() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let slow = green::spawn(|| SLOW.with(|v| *v));
        let others: Vec<_> = (0..10)
            .map(|i| {
                green::spawn(move || {
                    ID.with(|id| id.set(i));
                    green::yield_now();
                    ID.with(Cell::get)
                })
            })
            .collect();
        assert_eq!(slow.join().unwrap(), 7);
        for (i, h) in others.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i);
        }
    });
}

/// Reads `SEEN`'s value in its destructor, and records it.
struct ReadsAnotherOnDrop(Arc<AtomicUsize>);

impl Drop for ReadsAnotherOnDrop {
    fn drop(&mut self) {
        let seen = SEEN.try_with(Cell::get).unwrap_or(0);
        self.0.store(seen, Ordering::SeqCst);
    }
}

green::green_local! {
    static SEEN: Cell<usize> = Cell::new(0);
    static READER: RefCell<Option<ReadsAnotherOnDrop>> = RefCell::new(None);
}

/// A destructor may use the values not destroyed yet (the later ones go first), on a green
/// thread and on a plain OS thread alike. (On an OS thread, std had marked the storage as gone
/// by then, and every access failed.)
#[test]
fn a_destructor_may_use_the_values_still_alive() {
    let use_both = |seen: Arc<AtomicUsize>| {
        SEEN.with(|s| s.set(5));
        READER.with(|r| *r.borrow_mut() = Some(ReadsAnotherOnDrop(seen)));
    };
    let on_green = Arc::new(AtomicUsize::new(0));
    let seen = on_green.clone();
    green::run(move || green::spawn(move || use_both(seen)).join().unwrap());
    let on_os = Arc::new(AtomicUsize::new(0));
    let seen = on_os.clone();
    std::thread::spawn(move || use_both(seen)).join().unwrap();
    assert_eq!((on_green.load(Ordering::SeqCst), on_os.load(Ordering::SeqCst)), (5, 5));
}

#[test]
fn set_gives_a_first_value_without_running_the_initializer() {
    static INITS: AtomicUsize = AtomicUsize::new(0);
    green::green_local! {
        static LEVEL: Cell<u32> = {
            INITS.fetch_add(1, Ordering::SeqCst);
            Cell::new(1)
        };
        static NAMES: RefCell<Vec<&'static str>> = {
            INITS.fetch_add(1, Ordering::SeqCst);
            RefCell::new(vec!["declared"])
        };
    }
    green::run(|| {
        LEVEL.set(9);
        NAMES.set(vec!["set"]);
        assert_eq!(LEVEL.get(), 9);
        NAMES.with_borrow(|names| assert_eq!(names, &["set"]));
        assert_eq!(INITS.load(Ordering::SeqCst), 0);
        // Set again over a value that is there: replaced, still no initializer.
        LEVEL.set(10);
        assert_eq!(LEVEL.replace(11), 10);
        assert_eq!(INITS.load(Ordering::SeqCst), 0);
        // Another green thread's first use runs it.
        let fresh = green::spawn(|| (LEVEL.get(), NAMES.take())).join().unwrap();
        assert_eq!(fresh, (1, vec!["declared"]));
        assert_eq!(INITS.load(Ordering::SeqCst), 2);
    });
}

/// A local's destructor runs after the body has ended; one that waits in a cancelled green
/// thread is unwound by the cancellation there. The warning says so and names the green thread,
/// rather than reporting a panic. (The one test of this binary that installs the logger.)
#[test]
fn a_local_destructor_cut_short_by_a_cancellation_is_told_as_one() {
    struct Waits;
    impl Drop for Waits {
        fn drop(&mut self) {
            green::sleep(Duration::from_millis(1));
        }
    }
    green::green_local! {
        static WAITS: RefCell<Option<Waits>> = RefCell::new(None);
    }
    common::warnings::install();
    green::run(|| {
        let holds = Arc::new(AtomicBool::new(false));
        let h = holds.clone();
        let sleeper = green::Builder::new()
            .name("holder".into())
            .spawn(move || {
                WAITS.set(Some(Waits));
                h.store(true, Ordering::SeqCst);
                green::sleep(Duration::from_secs(60));
            })
            .unwrap();
        // Cancelled before it starts, it would never run: no local, no destructor to tell of.
        while !holds.load(Ordering::SeqCst) {
            green::sleep(Duration::from_millis(1));
        }
        sleeper.cancel();
        assert!(sleeper.join().unwrap_err().is_cancelled());
    });
    let logged = common::warnings::logged();
    assert!(
        logged.iter().any(|l| l.contains("\"holder\"") && l.contains("cancel") && !l.contains("panicked")),
        "{logged:?}"
    );
}

/// What `a_destructor_may_use_a_local_not_made_yet` counts: 1 per use of `LATE` from a
/// destructor, 10 per `LATE` value destroyed after such a use.
static LATE_SEEN: AtomicUsize = AtomicUsize::new(0);

/// Uses `LATE`, never used by its thread before, when dropped.
struct UsesALateLocal;
impl Drop for UsesALateLocal {
    fn drop(&mut self) {
        if LATE.try_with(|l| l.set(l.get() + 1)).is_ok() {
            LATE_SEEN.fetch_add(1, Ordering::SeqCst);
        }
        // Its own value is being destroyed: that one is gone, as in std.
        assert!(FIRST.try_with(|_| ()).is_err());
    }
}

/// Made during the destruction, and destroyed in turn.
struct Late(Cell<usize>);
impl Drop for Late {
    fn drop(&mut self) {
        LATE_SEEN.fetch_add(10 * self.0.get(), Ordering::SeqCst);
    }
}
impl std::ops::Deref for Late {
    type Target = Cell<usize>;
    fn deref(&self) -> &Cell<usize> {
        &self.0
    }
}

green::green_local! {
    static FIRST: RefCell<Option<UsesALateLocal>> = RefCell::new(None);
    static LATE: Late = Late(Cell::new(0));
}

/// A destructor may use a local its thread never used, as std's may: the value is made then,
/// and destroyed in its turn. (It used to fail with `AccessError`, as if it had been destroyed.)
#[test]
fn a_destructor_may_use_a_local_not_made_yet() {
    let set = || FIRST.with(|f| *f.borrow_mut() = Some(UsesALateLocal));
    green::run(|| green::spawn(set).join().unwrap());
    // Used once (1), and that value's destructor then ran (10 * 1).
    assert_eq!(LATE_SEEN.swap(0, Ordering::SeqCst), 11, "on a green thread");
    std::thread::spawn(set).join().unwrap();
    assert_eq!(LATE_SEEN.load(Ordering::SeqCst), 11, "on an OS thread");
}

green::green_local! {
    static ON_THE_WORKER: Cell<u32> = const { Cell::new(0) };
}

/// The destructor of what a green thread cancelled before it started had captured runs on its
/// worker's own stack, in no green thread: it reaches the worker thread's value, kept from one
/// such destructor to the next, as a plain OS thread reaches its own. Code in
/// `on_worker_stack` is its caller's, and reaches the caller's value.
#[test]
fn code_the_worker_runs_for_no_green_thread_reaches_the_worker_thread_s_value() {
    struct Bump(Arc<AtomicUsize>);
    impl Drop for Bump {
        fn drop(&mut self) {
            let before = ON_THE_WORKER.with(|c| c.replace(c.get() + 1));
            self.0.store(before as usize + 1, Ordering::SeqCst);
        }
    }
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        for expected in 1..=2 {
            let seen = Arc::new(AtomicUsize::new(0));
            let bump = Bump(seen.clone());
            let never = green::spawn(move || drop(bump));
            never.cancel();
            assert!(never.join().unwrap_err().is_cancelled());
            assert_eq!(seen.load(Ordering::SeqCst), expected, "the worker thread's value, kept");
        }
        assert_eq!(ON_THE_WORKER.with(Cell::get), 0, "the green thread's own value");
        assert_eq!(green::on_worker_stack(|| ON_THE_WORKER.with(|c| c.replace(7))), 0);
        assert_eq!(ON_THE_WORKER.with(Cell::get), 7, "on_worker_stack reaches its caller's value");
    });
}
