//! rule 3 of docs/design.md for `green::sync`: a green thread whose destructors run blocking-looking
//! operations while it unwinds (a cancellation or a panic) never parks: each operation tries
//! once, then returns its error, or, where its API has none, aborts naming the green threads
//! involved (checked in a child process).

use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use green::sync::mpmc::{self, RecvError, RecvTimeoutError, SendError, SendTimeoutError};
use green::sync::{Condvar, Mutex, RwLock, Semaphore, TryLockError, WaitGroup, oneshot};

mod common;
use common::bounded;

const HOUR: Duration = Duration::from_secs(3600);

/// Everything the destructor needs, with each primitive in a state where the operation would
/// have to wait.
struct Primitives {
    rx_empty: mpmc::Receiver<u32>,
    _tx_keep: mpmc::Sender<u32>,
    tx_full: mpmc::Sender<u32>,
    _rx_keep: mpmc::Receiver<u32>,
    held: Arc<Mutex<()>>,
    held_rw: Arc<RwLock<()>>,
    free: Mutex<u32>,
    cv: Condvar,
    sem: Semaphore,
    wg: WaitGroup,
    oneshot_rx: Option<oneshot::Receiver<u32>>,
    _oneshot_tx: oneshot::Sender<u32>,
}

/// Runs every operation while unwinding and records what each returned.
struct Unwinder {
    p: Primitives,
    results: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Unwinder {
    fn drop(&mut self) {
        assert!(std::thread::panicking());
        let oneshot_rx = self.p.oneshot_rx.take().unwrap();
        let p = &self.p;
        let mut r = Vec::new();
        r.push(format!("recv {:?}", p.rx_empty.recv()));
        r.push(format!("recv_timeout {:?}", p.rx_empty.recv_timeout(HOUR)));
        r.push(format!("send {:?}", p.tx_full.send(1)));
        r.push(format!("send_timeout {:?}", p.tx_full.send_timeout(2, HOUR)));
        r.push(format!("try_lock_for {}", matches!(p.held.try_lock_for(HOUR), Err(TryLockError::WouldBlock))));
        r.push(format!("try_write_for {}", matches!(p.held_rw.try_write_for(HOUR), Err(TryLockError::WouldBlock))));
        let guard = p.free.lock().unwrap(); // free: taken at once
        let (guard, waited) = p.cv.wait_timeout(guard, HOUR).unwrap();
        r.push(format!("wait_timeout {} {}", waited.timed_out(), *guard));
        drop(guard);
        r.push(format!("try_acquire_for {}", p.sem.try_acquire_for(HOUR).is_none()));
        r.push(format!("wait_timeout(wg) {}", p.wg.wait_timeout(HOUR)));
        let with_timeout = green::select! {
            recv(p.rx_empty) -> v => format!("{v:?}"),
            timeout(HOUR) => "timeout".to_string(),
        };
        r.push(format!("select+timeout {with_timeout}"));
        let without = green::select! {
            recv(p.rx_empty) -> v => format!("{v:?}"),
        };
        r.push(format!("select {without}"));
        r.push(format!("oneshot recv_timeout {:?}", oneshot_rx.recv_timeout(HOUR)));
        r.push(format!("oneshot recv {:?}", oneshot_rx.recv()));
        r.push(format!("timeout(recv) {:?}", green::timeout(HOUR, || p.rx_empty.recv())));
        self.results.lock().unwrap().extend(r);
    }
}

/// The primitives, and the green thread holding the locks until its sender is dropped.
fn primitives(rt: &green::Runtime) -> (Primitives, Holder) {
    let (tx_keep, rx_empty) = mpmc::channel();
    let (tx_full, rx_keep) = mpmc::sync_channel(1);
    tx_full.send(0).unwrap();
    let held = Arc::new(Mutex::new(()));
    let held_rw = Arc::new(RwLock::new(()));
    let (h, hr) = (held.clone(), held_rw.clone());
    // Another green thread holds the locks for the whole test: until it is released.
    let (release, released) = oneshot::channel::<()>();
    let holder = rt.spawn(move || {
        let _g = h.lock().unwrap();
        let _w = hr.read().unwrap();
        let _ = released.recv();
    });
    while held.try_lock().is_ok() || held_rw.try_write().is_ok() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let wg = WaitGroup::new();
    wg.add(1);
    let (oneshot_tx, oneshot_rx) = oneshot::channel();
    let p = Primitives {
        rx_empty,
        _tx_keep: tx_keep,
        tx_full,
        _rx_keep: rx_keep,
        held,
        held_rw,
        free: Mutex::new(5),
        cv: Condvar::new(),
        sem: Semaphore::new(0),
        wg,
        oneshot_rx: Some(oneshot_rx),
        _oneshot_tx: oneshot_tx,
    };
    (p, Holder { release, holder })
}

/// Holds the locks until `finish`.
struct Holder {
    release: oneshot::Sender<()>,
    holder: green::JoinHandle<()>,
}

impl Holder {
    fn finish(self) {
        drop(self.release);
        self.holder.join().unwrap();
    }
}

fn expected() -> Vec<String> {
    vec![
        format!("recv {:?}", Err::<u32, _>(RecvError)),
        format!("recv_timeout {:?}", Err::<u32, _>(RecvTimeoutError::Timeout)),
        format!("send {:?}", Err::<(), _>(SendError(1))),
        format!("send_timeout {:?}", Err::<(), _>(SendTimeoutError::Timeout(2))),
        "try_lock_for true".into(),
        "try_write_for true".into(),
        "wait_timeout true 5".into(),
        "try_acquire_for true".into(),
        "wait_timeout(wg) false".into(),
        "select+timeout timeout".into(),
        format!("select {:?}", Err::<u32, _>(RecvError)),
        format!("oneshot recv_timeout {:?}", Err::<u32, _>(RecvTimeoutError::Timeout)),
        format!("oneshot recv {:?}", Err::<u32, _>(RecvError)),
        format!("timeout(recv) {:?}", Ok::<_, green::Elapsed>(Err::<u32, _>(RecvError))),
    ]
}

#[test]
fn a_cancelled_green_thread_never_parks_in_its_destructors() {
    bounded(Duration::from_secs(30), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let (p, holder) = primitives(&rt);
        let results = Arc::new(std::sync::Mutex::new(Vec::new()));
        let unwinder = Unwinder { p, results: results.clone() };
        let (started_tx, started) = std::sync::mpsc::channel();
        let victim = rt.spawn(move || {
            let _unwinder = unwinder;
            started_tx.send(()).unwrap();
            green::sleep(HOUR);
        });
        // Cancelled before it starts, it would never run: its closure, and the unwinder with it,
        // would be dropped by the worker, not by an unwinding green thread.
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        let start = Instant::now();
        victim.cancel();
        assert!(victim.join().unwrap_err().is_cancelled());
        // A wait in a destructor would last an hour: any bound far below that, and far above a
        // loaded machine's delays, tells the two apart.
        assert!(start.elapsed() < Duration::from_secs(10), "the destructor waited {:?}", start.elapsed());
        assert_eq!(*results.lock().unwrap(), expected());
        holder.finish();
    });
}

#[test]
fn a_panicking_green_thread_never_parks_in_its_destructors() {
    bounded(Duration::from_secs(30), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let (p, holder) = primitives(&rt);
        let results = Arc::new(std::sync::Mutex::new(Vec::new()));
        let unwinder = Unwinder { p, results: results.clone() };
        let start = Instant::now();
        let victim = rt.spawn(move || {
            let _unwinder = unwinder;
            panic!("on purpose");
        });
        assert!(victim.join().unwrap_err().is_panic());
        assert!(start.elapsed() < Duration::from_secs(10), "the destructor waited {:?}", start.elapsed());
        assert_eq!(*results.lock().unwrap(), expected());
        holder.finish();
    });
}

// ---- aborts, in a child process --------------------------------------------------------

fn in_child() -> bool {
    common::child::is_child()
}

/// Runs test `name` of this binary in a child process, without core dumps; returns its output.
fn run_child(name: &str) -> Output {
    common::child::run_child(name, Duration::from_secs(60))
}

fn assert_aborted(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "not aborted; stderr:\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
}

struct LocksInDrop(Arc<Mutex<()>>);

impl Drop for LocksInDrop {
    fn drop(&mut self) {
        let _g = self.0.lock();
    }
}

#[test]
fn lock_while_unwinding_aborts_naming_both_green_threads() {
    if !in_child() {
        let output = run_child("lock_while_unwinding_aborts_naming_both_green_threads");
        assert_aborted(&output, &["\"unwinder\"", "tried to lock a green::sync::Mutex while unwinding", "holds it"]);
        return;
    }
    // One worker: the holder shares the unwinder's, and cannot run while it waits.
    green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
        let m = Arc::new(Mutex::new(()));
        let m2 = m.clone();
        let holder = green::Builder::new()
            .name("holder".into())
            .spawn(move || {
                let _g = m2.lock().unwrap();
                green::sleep(HOUR);
            })
            .unwrap();
        while m.try_lock().is_ok() {
            green::yield_now();
        }
        let guard = LocksInDrop(m.clone());
        let unwinder = green::Builder::new()
            .name("unwinder".into())
            .spawn(move || {
                let _guard = guard;
                panic!("unwind with a lock to take");
            })
            .unwrap();
        let _ = unwinder.join();
        drop(holder);
    });
    unreachable!("the child should have aborted");
}

/// A holder on another worker lets go without the unwinder's worker: the unwinder waits for
/// it without parking, and its destructor gets the lock.
#[test]
fn lock_while_unwinding_waits_for_a_holder_on_another_worker() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let m = Arc::new(Mutex::new(0u32));
    let (m2, m3) = (m.clone(), m.clone());
    let holder = green::Builder::new()
        .worker(1)
        .spawn_on(rt.handle(), move || {
            let mut g = m2.lock().unwrap();
            // Long enough for the unwinder to find it held, short against the 5 s bound.
            green::sleep(Duration::from_millis(100));
            *g += 1;
        })
        .unwrap();
    let unwinder = green::Builder::new()
        .worker(0)
        .spawn_on(rt.handle(), move || {
            while m3.try_lock().is_ok() {
                green::yield_now();
            }
            let _guard = IncrementsInDrop(m3);
            panic!("unwind with a lock held on the other worker");
        })
        .unwrap();
    let start = Instant::now();
    assert!(unwinder.join().unwrap_err().is_panic());
    holder.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 2, "the holder's increment and the destructor's");
    assert!(start.elapsed() < Duration::from_secs(4), "took {:?}", start.elapsed());
}

/// Worker 0 of another runtime is another worker: a holder there lets go while the unwinder
/// waits, as one on another worker of the same runtime does. (The holder's worker was told
/// by its number alone, which each runtime repeats, and the unwinder aborted.) In a child
/// process, which aborted.
#[test]
fn lock_while_unwinding_waits_for_a_holder_on_another_runtime() {
    if !in_child() {
        assert_succeeded(&run_child("lock_while_unwinding_waits_for_a_holder_on_another_runtime"));
        return;
    }
    let holders = green::Runtime::builder().workers(1).build().unwrap();
    let unwinders = green::Runtime::builder().workers(1).build().unwrap();
    let m = Arc::new(Mutex::new(0u32));
    let (m2, m3) = (m.clone(), m.clone());
    let holder = holders.spawn(move || {
        let mut g = m2.lock().unwrap();
        // Long enough for the unwinder to find it held, short against the 5 s bound.
        green::sleep(Duration::from_millis(100));
        *g += 1;
    });
    let unwinder = unwinders.spawn(move || {
        while m3.try_lock().is_ok() {
            green::yield_now();
        }
        let _guard = IncrementsInDrop(m3);
        panic!("unwind with a lock held on another runtime");
    });
    assert!(unwinder.join().unwrap_err().is_panic());
    holder.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 2, "the holder's increment and the destructor's");
}

struct IncrementsInDrop(Arc<Mutex<u32>>);

impl Drop for IncrementsInDrop {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }
}

/// Spawns on `rt` a green thread whose destructor increments `m`, parked for an hour.
fn spawn_incrementer(rt: &green::Runtime, m: &Arc<Mutex<u32>>) {
    let m = m.clone();
    rt.spawn(move || {
        let _guard = IncrementsInDrop(m);
        green::sleep(HOUR);
    });
}

/// Spawns on `rt` a green thread that locks `m` and sleeps for an hour holding it; returns
/// once it holds it.
fn spawn_holder(rt: &green::Runtime, m: &Arc<Mutex<u32>>) {
    let m = m.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    rt.spawn(move || {
        let _g = m.lock().unwrap();
        held_tx.send(()).unwrap();
        green::sleep(HOUR);
    });
    held_rx.recv_timeout(Duration::from_secs(10)).unwrap();
}

fn assert_succeeded(output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed ({:?}); stderr:\n{stderr}", output.status);
}

/// A shutdown cancels lock holders first: a destructor that locks, in a green thread cancelled
/// by the shutdown, finds the lock let go by the holder's own unwinding, on a shared worker.
#[test]
fn shutdown_cancels_lock_holders_first() {
    let m = Arc::new(Mutex::new(0u32));
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    // Started first, so it comes first among the worker's green threads.
    spawn_incrementer(&rt, &m);
    spawn_holder(&rt, &m);
    assert!(rt.shutdown_timeout(Duration::from_secs(10)).is_ok());
    assert_eq!(*m.lock().unwrap(), 1, "the destructor ran, and got the lock");
}

/// As above, with a third green thread queued for the lock long enough that the holder's unlock
/// hands the lock to it (`MUTEX_HANDOFF_AFTER`) rather than freeing it. That waiter comes after
/// the destructor's green thread, and shares its worker: it cannot take the lock while the
/// destructor waits for it, so the destructor takes the lock from it (in a child process: an
/// abort after a 5 s wait without that).
#[test]
fn shutdown_lets_a_destructor_lock_a_mutex_handed_to_a_waiter_behind_it() {
    if !in_child() {
        let start = Instant::now();
        assert_succeeded(&run_child("shutdown_lets_a_destructor_lock_a_mutex_handed_to_a_waiter_behind_it"));
        assert!(start.elapsed() < Duration::from_secs(4), "took {:?}", start.elapsed());
        return;
    }
    let m = Arc::new(Mutex::new(0u32));
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    // Started first, so it comes first among the worker's green threads that hold no lock.
    spawn_incrementer(&rt, &m);
    spawn_holder(&rt, &m);
    let m4 = m.clone();
    rt.spawn(move || *m4.lock().unwrap() += 10);
    // Queued for well over MUTEX_HANDOFF_AFTER: the holder's unlock hands it the lock.
    std::thread::sleep(green::sync::MUTEX_HANDOFF_AFTER * 20);
    assert!(rt.shutdown_timeout(Duration::from_secs(10)).is_ok());
    // The waiter was cancelled before it could take the lock: only the destructor counted.
    assert_eq!(*m.lock().unwrap(), 1, "the destructor ran, and got the lock");
}

struct WaitsInDrop(Arc<(Mutex<()>, Condvar)>);

impl Drop for WaitsInDrop {
    fn drop(&mut self) {
        let g = self.0.0.lock().unwrap();
        let _g = self.0.1.wait(g);
    }
}

#[test]
fn condvar_wait_while_unwinding_aborts() {
    if !in_child() {
        let output = run_child("condvar_wait_while_unwinding_aborts");
        assert_aborted(&output, &["\"waiter\"", "green::sync::Condvar::wait while unwinding"]);
        return;
    }
    green::run(|| {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let guard = WaitsInDrop(pair);
        let h = green::Builder::new()
            .name("waiter".into())
            .spawn(move || {
                let _guard = guard;
                panic!("unwind into a condvar wait");
            })
            .unwrap();
        let _ = h.join();
    });
    unreachable!("the child should have aborted");
}

/// A join in a destructor while the green thread unwinds (a cancellation here) cannot wait:
/// it returns `is_unfinished` at once if the other has not finished, which goes on, detached;
/// a finished one is joined as usual.
#[test]
fn join_while_unwinding_returns_unfinished_and_the_other_goes_on() {
    use std::sync::atomic::{AtomicBool, Ordering};
    struct JoinsInDrop {
        running: Option<green::JoinHandle<u32>>,
        finished: Option<green::JoinHandle<u32>>,
        results: Arc<std::sync::Mutex<Vec<String>>>,
    }
    impl Drop for JoinsInDrop {
        fn drop(&mut self) {
            let running = self.running.take().unwrap().join();
            let finished = self.finished.take().unwrap().join();
            let mut r = self.results.lock().unwrap();
            r.push(match running {
                Err(e) if e.is_unfinished() => format!("unfinished: {e}"),
                other => format!("unexpected: {other:?}"),
            });
            r.push(format!("{finished:?}"));
        }
    }
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let went_on = Arc::new(AtomicBool::new(false));
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let (r2, w2) = (results.clone(), went_on.clone());
    let outcome = rt.block_on(move || {
        let running = green::spawn(move || {
            green::sleep(Duration::from_millis(50));
            w2.store(true, Ordering::SeqCst);
            1
        });
        let finished = green::spawn(|| 2);
        while !finished.is_finished() {
            green::yield_now();
        }
        let guard = JoinsInDrop { running: Some(running), finished: Some(finished), results: r2 };
        let victim = green::spawn(move || {
            let _guard = guard;
            green::sleep(HOUR);
        });
        green::sleep(Duration::from_millis(5));
        victim.cancel();
        let cancelled = victim.join().unwrap_err().is_cancelled();
        // The detached one still finishes.
        bounded_wait(|| went_on.load(Ordering::SeqCst));
        cancelled
    });
    assert!(outcome);
    let results = results.lock().unwrap();
    assert!(results[0].starts_with("unfinished: green thread") && results[0].contains("detached"), "{results:?}");
    assert_eq!(results[1], "Ok(2)");
}

/// Sleeps in steps until `done`, for at most 10 s.
fn bounded_wait(done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "not done within 10 s");
        green::sleep(Duration::from_millis(1));
    }
}

/// As `shutdown_cancels_lock_holders_first`, with the green thread whose destructor locks
/// already in the run queue when the shutdown begins (it yields in a loop), ahead of the parked
/// holder: the holder must still unwind first (in a child process: an abort without that).
#[test]
fn shutdown_cancels_lock_holders_first_even_behind_a_ready_green_thread() {
    if !in_child() {
        assert_succeeded(&run_child("shutdown_cancels_lock_holders_first_even_behind_a_ready_green_thread"));
        return;
    }
    let m = Arc::new(Mutex::new(0u32));
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    spawn_holder(&rt, &m);
    let m3 = m.clone();
    rt.spawn(move || {
        let _guard = IncrementsInDrop(m3);
        loop {
            green::yield_now();
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(rt.shutdown_timeout(Duration::from_secs(10)).is_ok());
    assert_eq!(*m.lock().unwrap(), 1, "the destructor ran, and got the lock");
}
