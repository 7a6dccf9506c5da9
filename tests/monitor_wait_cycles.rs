//! The monitor finds green threads deadlocked on each other (green locks, joins) while the
//! rest of the runtime runs on, as in a server whose accept loop never lets it be quiet: it
//! reports each cycle once while it lasts, and never a wait that moves or has a deadline. Its
//! own test binary: it installs the process's logger (the tests tell their reports apart by the
//! green threads' names).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use green::sync::{Barrier, Mutex};

mod common;
use common::warnings;

/// With this threshold the monitor looks at the wait-for graph every second (its least).
const THRESHOLD: Duration = Duration::from_millis(25);

fn runtime() -> green::Runtime {
    warnings::install();
    green::Runtime::builder()
        .workers(2)
        .blocking_threshold(THRESHOLD)
        .shutdown_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn named<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> green::JoinHandle<T> {
    green::Builder::new().name(name.to_owned()).spawn(f).unwrap()
}

/// The deadlock reports whose text names every one of `names`.
fn reports_naming(names: &[&str]) -> Vec<String> {
    warnings::logged()
        .iter()
        .filter(|l| l.starts_with("green: deadlock: ") && names.iter().all(|n| l.contains(&format!("\"{n}\""))))
        .cloned()
        .collect()
}

/// Two green threads named `names` that take two green locks in opposite orders, meeting in
/// between: each then waits for good for the lock the other holds. Spawned on the runtime of
/// the calling green thread.
fn lock_cycle(names: [&str; 2]) -> [green::JoinHandle<()>; 2] {
    let (a, b) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
    let both = Arc::new(Barrier::new(2));
    [(names[0], a.clone(), b.clone()), (names[1], b, a)].map(|(name, first, second)| {
        let both = both.clone();
        named(name, move || {
            let _first = first.lock().unwrap();
            both.wait();
            drop(second.lock().unwrap());
        })
    })
}

/// Waits on this OS thread, 12 s at most (two or three looks a second apart, generously for a
/// loaded machine), for a deadlock report naming every one of `names`: how many there are
/// then, and how long it waited.
fn await_report(names: &[&str]) -> (usize, Duration) {
    let start = Instant::now();
    while reports_naming(names).is_empty() && start.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(20));
    }
    (reports_naming(names).len(), start.elapsed())
}

/// What keeps the runtime from ever being quiet: a green thread in `accept` on a loopback
/// listener, and one that sleeps in short steps until `stop`.
fn keep_busy(stop: &Arc<AtomicBool>) -> [green::JoinHandle<()>; 2] {
    let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let acceptor = named("acceptor", move || while listener.accept().is_ok() {});
    let stop = stop.clone();
    let ticker = named("ticker", move || {
        while !stop.load(Ordering::Relaxed) {
            green::sleep(Duration::from_millis(5));
        }
    });
    [acceptor, ticker]
}

#[test]
fn a_lock_cycle_and_a_join_cycle_in_a_busy_runtime_are_reported_once_each() {
    let rt = runtime();
    let (lock_report, join_report, later, metrics) = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = keep_busy(&stop);

        let lockers = lock_cycle(["left", "right"]);

        // Two green threads that join each other.
        let (to_b, handle_of_a) = green::sync::oneshot::channel::<green::JoinHandle<()>>();
        let joiner_b = named("join-b", move || {
            let _ = handle_of_a.recv().unwrap().join();
        });
        let joiner_a = named("join-a", move || {
            let _ = joiner_b.join();
        });
        assert!(to_b.send(joiner_a).is_ok());

        // Two looks a second apart see each cycle; generous for a loaded machine.
        let start = Instant::now();
        while (reports_naming(&["left", "right"]).is_empty() || reports_naming(&["join-a", "join-b"]).is_empty())
            && start.elapsed() < Duration::from_secs(30)
        {
            green::sleep(Duration::from_millis(20));
        }
        let lock_report = reports_naming(&["left", "right"]);
        let join_report = reports_naming(&["join-a", "join-b"]);
        // Three more looks: a cycle that lasts is not reported again.
        green::sleep(Duration::from_millis(3500));
        let later = (reports_naming(&["left", "right"]).len(), reports_naming(&["join-a", "join-b"]).len());
        let metrics = green::Handle::current().metrics();

        for locker in &lockers {
            locker.cancel();
        }
        stop.store(true, Ordering::Relaxed);
        for handle in &busy {
            handle.cancel();
        }
        (lock_report, join_report, later, metrics)
    });
    drop(rt);
    let all = warnings::logged().clone();
    assert_eq!(lock_report.len(), 1, "the lock cycle was not reported once: {all:#?}");
    assert!(lock_report[0].contains("waits for a lock held by"), "{}", lock_report[0]);
    // How long the waits have lasted at least (never less than the second between two looks),
    // and what to do.
    let lasted = lock_report[0].split(" ms at least").next().and_then(|s| s.rsplit(' ').next());
    assert!(lasted.and_then(|ms| ms.parse::<u64>().ok()).is_some_and(|ms| ms >= 1000), "{}", lock_report[0]);
    assert!(lock_report[0].contains("take green locks in one order"), "{}", lock_report[0]);
    assert!(!lock_report[0].contains("acceptor") && !lock_report[0].contains("ticker"), "{}", lock_report[0]);
    assert_eq!(join_report.len(), 1, "the join cycle was not reported once: {all:#?}");
    assert!(join_report[0].contains("joins green thread"), "{}", join_report[0]);
    assert_eq!(later, (1, 1), "a lasting cycle was reported again: {all:#?}");
    assert!(metrics.deadlocks >= 2, "Metrics::deadlocks: {metrics}");
    assert!(metrics.to_string().contains("deadlock(s) reported"), "{metrics}");
    // The runtime was never quiet: no report of a possible deadlock came.
    assert_eq!(metrics.possible_deadlocks, 0, "{metrics}");
}

#[test]
fn waits_that_move_or_have_a_deadline_are_not_reported() {
    let rt = runtime();
    let timed_out = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = keep_busy(&stop);

        // A lock passed around among four green threads, each holding it 30 ms: waits that
        // last across looks, but each is for a different holder, and every holder lets go.
        let shared = Arc::new(Mutex::new(0u64));
        let movers: Vec<_> = (0..4)
            .map(|i| {
                let shared = shared.clone();
                let stop = stop.clone();
                named(&format!("mover-{i}"), move || {
                    while !stop.load(Ordering::Relaxed) {
                        let mut n = shared.lock().unwrap();
                        *n += 1;
                        green::sleep(Duration::from_millis(30));
                    }
                })
            })
            .collect();

        // A cycle in which one wait has a deadline: it breaks by itself.
        let (a, b) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
        let both = Arc::new(Barrier::new(2));
        let timed = {
            let (a, b, both) = (a.clone(), b.clone(), both.clone());
            named("timed-left", move || {
                let _a = a.lock().unwrap();
                both.wait();
                b.try_lock_for(Duration::from_secs(5)).is_err()
            })
        };
        let untimed = named("timed-right", move || {
            let _b = b.lock().unwrap();
            both.wait();
            drop(a.lock().unwrap());
        });

        // Four looks at least.
        green::sleep(Duration::from_millis(4500));
        stop.store(true, Ordering::Relaxed);
        for mover in movers {
            mover.join().unwrap();
        }
        let timed_out = timed.join().unwrap();
        untimed.join().unwrap();
        for handle in &busy {
            handle.cancel();
        }
        timed_out
    });
    drop(rt);
    let all = warnings::logged().clone();
    assert!(timed_out, "the timed wait of the cycle did not time out");
    for name in ["mover-0", "mover-1", "mover-2", "mover-3", "timed-left", "timed-right"] {
        assert!(reports_naming(&[name]).is_empty(), "{name} was reported in a deadlock: {all:#?}");
    }
}

/// A lock guard passed on by `spawn_local`: the lock's holder cell still names the green thread
/// that took it, parked in a wait that closes a cycle, but the guard's new owner runs on and
/// drops it. No deadlock: nothing may call it one.
#[test]
fn a_cycle_through_a_guard_passed_on_by_spawn_local_is_not_reported() {
    static FIRST: Mutex<()> = Mutex::new(());
    static SECOND: Mutex<()> = Mutex::new(());
    let rt = runtime();
    let metrics = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let busy = keep_busy(&stop);
        let both = Arc::new(Barrier::new(2));
        // Takes SECOND, then waits for FIRST, which "giver" took.
        let taker = {
            let both = both.clone();
            named("local-taker", move || {
                let _second = SECOND.lock().unwrap();
                both.wait();
                drop(FIRST.lock().unwrap());
            })
        };
        // Takes FIRST, hands its guard to a green thread of its worker that drops it 3.5 s
        // later, and waits for SECOND meanwhile.
        let giver = named("local-giver", move || {
            let guard = std::rc::Rc::new(std::cell::RefCell::new(Some(FIRST.lock().unwrap())));
            let kept = guard.clone();
            let keeper = green::spawn_local(move || {
                green::sleep(Duration::from_millis(3500));
                kept.borrow_mut().take();
            });
            drop(guard);
            both.wait();
            drop(SECOND.lock().unwrap());
            keeper.join().unwrap();
        });
        taker.join().unwrap();
        giver.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        for handle in &busy {
            handle.cancel();
        }
        green::Handle::current().metrics()
    });
    drop(rt);
    let all = warnings::logged().clone();
    assert!(reports_naming(&["local-giver"]).is_empty(), "a passing wait was reported as a deadlock: {all:#?}");
    assert_eq!(metrics.deadlocks, 0, "{metrics}");
}

/// The looks at the wait-for graph wake the workers: they must not keep a runtime in which
/// nothing can wake anything from ever being quiet long enough for the report of a possible
/// deadlock (here green threads that join one another down to one that waits for a message
/// only an OS thread could send).
#[test]
fn looks_at_the_wait_for_graph_do_not_hide_a_possible_deadlock() {
    let rt = runtime();
    let (tx, rx) = green::sync::mpmc::channel::<u32>();
    let last = green::Builder::new().name("quiet-receiver".to_owned());
    let last = rt.block_on(|| last.spawn(move || rx.recv().is_ok()).unwrap());
    let middle = rt.spawn(move || drop(last.join()));
    let first = rt.spawn(move || drop(middle.join()));
    // The first report needs a second of quiet; generous for a loaded machine.
    let start = Instant::now();
    while rt.handle().metrics().possible_deadlocks == 0 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let metrics = rt.handle().metrics();
    drop(tx);
    rt.block_on(|| first.join()).unwrap();
    drop(rt);
    assert!(metrics.possible_deadlocks >= 1, "no possible deadlock was reported in 15 s: {metrics}");
}

/// A server at rest: its workers asleep between looks, woken by each. The looks come at their
/// pace, not spread out by how long the monitor slept before it collected the answers.
#[test]
fn a_lock_cycle_in_an_idle_server_is_reported_in_a_few_looks() {
    let rt = runtime();
    let listener = rt.block_on(|| green::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let acceptor = rt.spawn(move || while listener.accept().is_ok() {});
    let lockers = rt.block_on(|| lock_cycle(["idle-left", "idle-right"]));
    // Watched from this OS thread: the runtime has nothing else to do.
    let (found, waited) = await_report(&["idle-left", "idle-right"]);
    for handle in lockers.iter().chain([&acceptor]) {
        handle.cancel();
    }
    drop(rt);
    assert_eq!(found, 1, "the cycle was not reported in {waited:?}: {:#?}", *warnings::logged());
}

/// A worker that comes to each look late, busy in green threads that hold it 200 ms at a time:
/// the look costs it no more for that, and the next comes at its pace, not a hundred times
/// the wait later.
#[test]
fn a_worker_slow_to_come_to_a_look_does_not_spread_the_looks_out() {
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    // One per worker, wherever they land.
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let stop = stop.clone();
            rt.block_on(|| {
                named(&format!("slow-slices-{i}"), move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(200));
                        green::sleep(Duration::from_millis(1));
                    }
                })
            })
        })
        .collect();
    let lockers = rt.block_on(|| lock_cycle(["slow-left", "slow-right"]));
    // Each look answered within 200 ms: well within the 12 s, and well short of the 20 s that
    // looks spread out by their answers' wait make.
    let (found, waited) = await_report(&["slow-left", "slow-right"]);
    for handle in &lockers {
        handle.cancel();
    }
    stop.store(true, Ordering::Relaxed);
    for handle in slow {
        rt.block_on(|| handle.join()).unwrap();
    }
    drop(rt);
    assert_eq!(found, 1, "the cycle was not reported in {waited:?}: {:#?}", *warnings::logged());
}

/// A look that a worker held up past its answer's timeout is given up; the next look that is
/// answered must still know the cycle it reported before, and not report it again.
#[test]
fn a_lasting_cycle_is_not_reported_again_after_a_look_given_up() {
    let rt = runtime();
    let listener = rt.block_on(|| green::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let acceptor = rt.spawn(move || while listener.accept().is_ok() {});
    let names = ["given-up-left", "given-up-right"];
    let lockers = rt.block_on(|| lock_cycle(names));
    let (first, _) = await_report(&names);
    // A green thread that holds its worker 2.5 s: a look posted meanwhile is not taken up in
    // its second and is given up. Then three more looks.
    let blocker = rt.spawn(|| std::thread::sleep(Duration::from_millis(2500)));
    rt.block_on(|| blocker.join()).unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    let later = reports_naming(&names).len();
    for handle in lockers.iter().chain([&acceptor]) {
        handle.cancel();
    }
    drop(rt);
    let all = warnings::logged().clone();
    assert_eq!(first, 1, "the cycle was not reported: {all:#?}");
    assert_eq!(later, 1, "the cycle was reported again after a look was given up: {all:#?}");
}
