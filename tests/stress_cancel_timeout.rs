//! Randomized, seeded stress of cancellation and deadlines across the blocking-looking
//! operations: green threads run random programs (channels, `select!`, locks, a condition
//! variable, a semaphore, a barrier, `OnceLock`, a wait group, a oneshot, parks, sleeps, joins, TCP,
//! the blocking pool) while a
//! green thread and an OS thread cancel them at random moments and random steps run under short
//! `green::timeout` deadlines (nested, sometimes), the runtime is dumped over and over, and
//! sometimes shut down in the middle. Waits without a timeout of their own have a partner that
//! never stops (a feeder, a drainer, a notifier, a barrier partner), so each ends unless a wakeup
//! is lost; progress stalling for 10 s fails the run with a dump of the runtime. Every message
//! and every byte is checked (nothing lost, nothing twice), every critical section checks that
//! it is alone, an expired deadline never comes early, and fds and threads come back to their
//! starting counts after a clean shutdown.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::Elapsed;
use green::net::TcpStream;
use green::sync::mpmc::{self, Receiver, RecvTimeoutError, Sender};
use green::sync::{Barrier, Condvar, Mutex, OnceLock, RwLock, Semaphore, WaitGroup, oneshot};

mod common;
use common::{Rng, bounded};

/// A message's fingerprint, summed on both sides: a lost or duplicated message changes the sum.
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Byte `pos` of the stream every TCP pair carries.
fn pattern(pos: u64) -> u8 {
    (pos % 251) as u8
}

const ONCES: usize = 16;
const PERMITS: usize = 2;

#[derive(Default)]
struct Tally {
    count: AtomicU64,
    sum: AtomicU64,
}

impl Tally {
    fn add(&self, v: u64) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.sum.fetch_add(mix(v), Ordering::SeqCst);
    }
}

/// Decrements its counter when dropped, on every way out of a critical section.
struct Inside<'a>(&'a AtomicUsize);

impl<'a> Inside<'a> {
    /// Counts the caller in; panics if more than `max` are inside.
    fn enter(counter: &'a AtomicUsize, max: usize, what: &str) -> Inside<'a> {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let inside = Inside(counter);
        assert!(n <= max, "{n} inside {what} at once (at most {max})");
        inside
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the programs share, and the counters that check them.
struct World {
    /// A channel of capacity 1 and a rendezvous channel, each with a feeder and a drainer.
    bounded: (Sender<u64>, Receiver<u64>),
    rendezvous: (Sender<u64>, Receiver<u64>),
    /// The next message: every message is unique.
    unique: AtomicU64,
    /// Messages whose send returned `Ok`, and messages received.
    sent: Tally,
    received: Tally,
    /// A mutex and a read-write lock, with how many are inside each.
    mutex: Mutex<u64>,
    in_mutex: AtomicUsize,
    rw: RwLock<u64>,
    readers: AtomicUsize,
    writers: AtomicUsize,
    /// Bumped by a notifier every millisecond, with `notify_all`.
    generation: Mutex<u64>,
    cv: Condvar,
    /// `PERMITS` permits, and how many are held.
    sem: Semaphore,
    in_sem: AtomicUsize,
    /// A barrier of two; a partner keeps arriving.
    barrier: Barrier,
    /// Cells, with how many initializers run in each and how many finished.
    onces: Vec<OnceLock<u64>>,
    in_init: Vec<AtomicUsize>,
    inits: Vec<AtomicUsize>,
    /// Child green threads not finished yet.
    children: Arc<AtomicUsize>,
    /// Steps taken, for the watchdog.
    progress: AtomicU64,
    /// Set as the runtime starts to shut down: children and blocking jobs may be cancelled.
    shutting_down: AtomicBool,
    /// Steps that ran out of time.
    elapsed: AtomicU64,
    /// Tells the partners to stop, once the programs are done.
    stop: AtomicBool,
}

impl World {
    /// Checks a child's outcome: its value, or a cancellation by the shutdown.
    fn child<T: PartialEq + std::fmt::Debug>(&self, r: Result<T, green::JoinError>, expected: T) {
        match r {
            Ok(v) => assert_eq!(v, expected),
            Err(e) => assert!(e.is_cancelled() && self.shutting_down.load(Ordering::SeqCst), "{e}"),
        }
    }

    fn new() -> World {
        World {
            bounded: mpmc::sync_channel(1),
            rendezvous: mpmc::sync_channel(0),
            unique: AtomicU64::new(0),
            sent: Tally::default(),
            received: Tally::default(),
            mutex: Mutex::new(0),
            in_mutex: AtomicUsize::new(0),
            rw: RwLock::new(0),
            readers: AtomicUsize::new(0),
            writers: AtomicUsize::new(0),
            generation: Mutex::new(0),
            cv: Condvar::new(),
            sem: Semaphore::new(PERMITS),
            in_sem: AtomicUsize::new(0),
            barrier: Barrier::new(2),
            onces: (0..ONCES).map(|_| OnceLock::new()).collect(),
            in_init: (0..ONCES).map(|_| AtomicUsize::new(0)).collect(),
            inits: (0..ONCES).map(|_| AtomicUsize::new(0)).collect(),
            children: Arc::new(AtomicUsize::new(0)),
            progress: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            elapsed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    fn channel(&self, rendezvous: bool) -> &(Sender<u64>, Receiver<u64>) {
        if rendezvous { &self.rendezvous } else { &self.bounded }
    }

    fn tick(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }
}

/// A loopback pair and what went through it each way.
struct Pipe {
    tx: TcpStream,
    rx: TcpStream,
    written: AtomicU64,
    read: AtomicU64,
    /// The other way, from `rx` to `tx`.
    back_written: AtomicU64,
    back_read: AtomicU64,
}

/// Something to pause on inside a critical section: nothing, a yield, or a short sleep.
fn pause(rng: &mut Rng) {
    match rng.below(8) {
        0..=2 => {}
        3 | 4 => green::yield_now(),
        5 | 6 => green::sleep(rng.micros(200)),
        _ => green::sleep(rng.micros(1500)),
    }
}

/// The kinds of step.
const STEPS: u64 = 21;
/// The kinds of step an OS thread can take: those that need no runtime come first.
const OS_STEPS: u64 = 14;

/// Runs step `kind` once. `timed` says whether it runs under a `green::timeout`, which ends timed
/// operations early: their own "never early" checks apply only outside one.
fn step(world: &World, pipe: &mut Option<Pipe>, rng: &mut Rng, kind: u64, timed: bool) {
    match kind {
        0 | 1 => {
            let (tx, _) = world.channel(kind == 1);
            let v = world.unique.fetch_add(1, Ordering::SeqCst);
            if rng.percent(50) {
                tx.send(v).expect("a receiver is always there");
                world.sent.add(v);
            } else {
                let d = rng.micros(300);
                let start = Instant::now();
                match tx.send_timeout(v, d) {
                    Ok(()) => world.sent.add(v),
                    Err(e) => {
                        assert!(matches!(e, mpmc::SendTimeoutError::Timeout(_)), "{e:?}");
                        assert!(timed || start.elapsed() >= d, "send_timeout early");
                    }
                }
            }
        }
        2 | 3 => {
            let (_, rx) = world.channel(kind == 3);
            if rng.percent(50) {
                let v = rx.recv().expect("a sender is always there");
                world.received.add(v);
            } else {
                let d = rng.micros(300);
                let start = Instant::now();
                match rx.recv_timeout(d) {
                    Ok(v) => world.received.add(v),
                    Err(RecvTimeoutError::Timeout) => assert!(timed || start.elapsed() >= d, "recv_timeout early"),
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        4 => {
            let d = rng.micros(500);
            let (b, r) = (&world.bounded.1, &world.rendezvous.1);
            if rng.percent(50) {
                green::select! {
                    recv(b) -> v => world.received.add(v.unwrap()),
                    recv(r) -> v => world.received.add(v.unwrap()),
                    timeout(d) => {},
                }
            } else {
                let v = world.unique.fetch_add(1, Ordering::SeqCst);
                green::select! {
                    recv(b) -> v => world.received.add(v.unwrap()),
                    send(world.rendezvous.0, v) -> r => { r.unwrap(); world.sent.add(v) },
                    timeout(d) => {},
                }
            }
        }
        5 => {
            let mut g = world.mutex.lock().expect("never poisoned");
            let _inside = Inside::enter(&world.in_mutex, 1, "the mutex");
            *g += 1;
            pause(rng);
        }
        6 => {
            let d = rng.micros(300);
            let start = Instant::now();
            match world.mutex.try_lock_for(d) {
                Ok(mut g) => {
                    let _inside = Inside::enter(&world.in_mutex, 1, "the mutex");
                    *g += 1;
                    pause(rng);
                }
                Err(std::sync::TryLockError::WouldBlock) => {
                    assert!(timed || start.elapsed() >= d, "try_lock_for early")
                }
                Err(e) => panic!("{e}"),
            }
        }
        7 if rng.percent(30) => {
            let d = rng.micros(500);
            if rng.percent(50) {
                if let Ok(g) = world.rw.try_read_for(d) {
                    let _inside = Inside::enter(&world.readers, usize::MAX, "read");
                    assert_eq!(world.writers.load(Ordering::SeqCst), 0, "a writer beside a reader");
                    let _ = *g;
                    pause(rng);
                }
            } else if let Ok(mut g) = world.rw.try_write_for(d) {
                let _inside = Inside::enter(&world.writers, 1, "write");
                assert_eq!(world.readers.load(Ordering::SeqCst), 0, "a reader beside a writer");
                *g += 1;
                pause(rng);
            }
        }
        7 => {
            if rng.percent(70) {
                let g = world.rw.read().expect("never poisoned");
                let _inside = Inside::enter(&world.readers, usize::MAX, "read");
                assert_eq!(world.writers.load(Ordering::SeqCst), 0, "a writer beside a reader");
                let _ = *g;
                pause(rng);
                assert_eq!(world.writers.load(Ordering::SeqCst), 0, "a writer beside a reader");
            } else {
                let mut g = world.rw.write().expect("never poisoned");
                let _inside = Inside::enter(&world.writers, 1, "write");
                assert_eq!(world.readers.load(Ordering::SeqCst), 0, "a reader beside a writer");
                *g += 1;
                pause(rng);
                assert_eq!(world.readers.load(Ordering::SeqCst), 0, "a reader beside a writer");
            }
        }
        8 => {
            let g = world.generation.lock().expect("never poisoned");
            let seen = *g;
            if rng.percent(50) {
                let g = world.cv.wait_while(g, |g| *g == seen).expect("never poisoned");
                assert!(*g > seen);
            } else if rng.percent(30) {
                drop(g);
                if rng.percent(50) { world.cv.notify_one() } else { world.cv.notify_all() }
            } else if rng.percent(30) {
                let d = rng.micros(2000);
                let (g, _) = world.cv.wait_timeout_while(g, d, |g| *g == seen).expect("never poisoned");
                drop(g);
            } else {
                let d = rng.micros(2000);
                let start = Instant::now();
                let (g, r) = world.cv.wait_timeout(g, d).expect("never poisoned");
                if r.timed_out() {
                    assert!(timed || start.elapsed() >= d, "wait_timeout early");
                }
                drop(g);
            }
        }
        9 => {
            let n = 1 + rng.below(PERMITS as u64) as usize;
            let permit = match rng.below(3) {
                0 => Some(world.sem.acquire_many(n)),
                1 => world.sem.try_acquire_many_for(n, rng.micros(500)),
                _ => Some(world.sem.acquire()),
            };
            if let Some(permit) = permit {
                let _inside: Vec<_> =
                    (0..permit.num_permits()).map(|_| Inside::enter(&world.in_sem, PERMITS, "the semaphore")).collect();
                pause(rng);
            }
        }
        10 => {
            world.barrier.wait();
        }
        11 => {
            let i = rng.below(ONCES as u64) as usize;
            let d = rng.micros(300);
            let v = *world.onces[i].get_or_init(|| {
                let _inside = Inside::enter(&world.in_init[i], 1, "an initializer");
                green::sleep(d);
                world.inits[i].fetch_add(1, Ordering::SeqCst);
                i as u64 + 1000
            });
            assert_eq!(v, i as u64 + 1000);
        }
        12 => {
            let d = rng.micros(500);
            let start = Instant::now();
            green::sleep(d);
            assert!(start.elapsed() >= d, "sleep early");
        }
        13 => green::yield_now(),
        14 => {
            let d = rng.micros(400);
            let counter = ChildCounter::new(&world.children);
            let mut child = green::spawn(move || {
                let _counter = counter;
                green::sleep(d);
                7u32
            });
            if rng.percent(50) || child.wait_timeout(rng.micros(400)) {
                world.child(child.join(), 7);
            } else {
                if rng.percent(50) {
                    child.cancel();
                }
                match child.join() {
                    Ok(v) => assert_eq!(v, 7),
                    Err(e) => assert!(e.is_cancelled(), "{e}"),
                }
            }
        }
        15 => {
            let d = rng.micros(400);
            green::scope(|s| {
                let counter = ChildCounter::new(&world.children);
                let h = s.spawn(move || {
                    let _counter = counter;
                    green::sleep(d);
                    world.barrier.wait();
                });
                world.child(h.join(), ());
            });
        }
        16 if rng.percent(50) => tcp_step(pipe.as_mut().expect("a pipe"), rng),
        16 => tcp_both_ways(pipe.as_mut().expect("a pipe"), rng),
        17 => {
            let d = rng.micros(300);
            let job = green::spawn_blocking(move || {
                std::thread::sleep(d);
                5u8
            });
            world.child(job.join(), 5);
        }
        18 => {
            // A wait group of children, waited for with or without a timeout.
            let wg = Arc::new(WaitGroup::new());
            let n = 1 + rng.below(3) as usize;
            wg.add(n);
            for _ in 0..n {
                let (wg, d, counter) = (wg.clone(), rng.micros(300), ChildCounter::new(&world.children));
                green::spawn(move || {
                    let _counter = counter;
                    // Done on every way out, so that the wait ends.
                    let _done = DoneOnDrop(&wg);
                    green::sleep(d);
                });
            }
            if rng.percent(50) {
                wg.wait();
            } else {
                let _ = wg.wait_timeout(rng.micros(300));
            }
        }
        19 => {
            // A oneshot answered by a child.
            let (tx, rx) = oneshot::channel::<u64>();
            let (d, counter) = (rng.micros(300), ChildCounter::new(&world.children));
            green::spawn(move || {
                let _counter = counter;
                green::sleep(d);
                let _ = tx.send(11);
            });
            let r = if rng.percent(50) { rx.recv().ok() } else { rx.recv_timeout(rng.micros(300)).ok() };
            assert!(r.is_none_or(|v| v == 11));
        }
        20 => {
            // Parked until a child unparks us; a park may end early, so loop on the flag.
            let flag = Arc::new(AtomicBool::new(false));
            let (f, me, d, counter) =
                (flag.clone(), green::thread::current(), rng.micros(300), ChildCounter::new(&world.children));
            green::spawn(move || {
                let _counter = counter;
                green::sleep(d);
                f.store(true, Ordering::SeqCst);
                me.unpark();
            });
            while !flag.load(Ordering::SeqCst) {
                if rng.percent(50) { green::park() } else { green::park_timeout(rng.micros(300)) }
            }
        }
        _ => unreachable!(),
    }
}

/// Counts a wait group down when dropped.
struct DoneOnDrop<'a>(&'a WaitGroup);

impl Drop for DoneOnDrop<'_> {
    fn drop(&mut self) {
        self.0.done();
    }
}

/// Counts a child green thread in, and out when it ends (or is dropped unstarted).
struct ChildCounter(Arc<AtomicUsize>);

impl ChildCounter {
    fn new(counter: &Arc<AtomicUsize>) -> ChildCounter {
        counter.fetch_add(1, Ordering::SeqCst);
        ChildCounter(counter.clone())
    }
}

impl Drop for ChildCounter {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A child writes a few bytes after a short sleep while this green thread reads them, checking
/// every byte. Bytes left over by an interrupted step are read by the next.
fn tcp_step(pipe: &mut Pipe, rng: &mut Rng) {
    let k = 1 + rng.below(3000);
    let d = rng.micros(300);
    let target = pipe.written.load(Ordering::SeqCst) + k;
    let Pipe { tx, rx, written, read, .. } = &*pipe;
    green::scope(|s| {
        s.spawn(|| {
            green::sleep(d);
            assert!(write_pattern(tx, written, k), "no deadline here");
        });
        // The step's `green::timeout` may end it: the next step reads on from `read`.
        read_pattern(rx, read, target);
    });
}

/// Writes `k` bytes of the pattern on `s`, from `written` on, with `write` calls of up to 64 KiB.
/// Stops early (false) at an I/O error that says a deadline passed.
fn write_pattern(s: &TcpStream, written: &AtomicU64, k: u64) -> bool {
    let mut buf = Vec::new();
    let mut left = k;
    while left > 0 {
        let at = written.load(Ordering::SeqCst);
        buf.clear();
        buf.extend((at..at + left.min(65536)).map(pattern));
        let n = match (&*s).write(&buf) {
            Ok(n) => n as u64,
            Err(e) if Elapsed::is_in(&e) => return false,
            Err(e) => panic!("write: {e}"),
        };
        written.fetch_add(n, Ordering::SeqCst);
        left -= n;
    }
    true
}

/// Reads and checks the pattern on `s` until `read` reaches `target`. Stops early (false) at an
/// I/O error that says a deadline passed.
fn read_pattern(s: &TcpStream, read: &AtomicU64, target: u64) -> bool {
    let mut buf = vec![0u8; 65536];
    while read.load(Ordering::SeqCst) < target {
        let n = match (&*s).read(&mut buf) {
            Ok(n) => n,
            Err(e) if Elapsed::is_in(&e) => return false,
            Err(e) => panic!("read: {e}"),
        };
        assert!(n > 0, "the peer closed");
        let at = read.load(Ordering::SeqCst);
        for (i, &b) in buf[..n].iter().enumerate() {
            let pos = at + i as u64;
            assert_eq!(b, pattern(pos), "byte {pos}: bytes were lost or read twice");
        }
        read.fetch_add(n as u64, Ordering::SeqCst);
    }
    true
}

/// Both directions at once, with a reader and a writer on each socket: a child writes forward
/// on `tx` while another reads backward from it; this green thread writes backward on `rx`,
/// then reads forward. Enough bytes, sometimes, to fill the socket buffers.
fn tcp_both_ways(pipe: &mut Pipe, rng: &mut Rng) {
    let big = |rng: &mut Rng| if rng.percent(20) { 1 + rng.below(1 << 20) } else { 1 + rng.below(4000) };
    let (k, k2) = (big(rng), big(rng));
    let d = rng.micros(300);
    let target = pipe.written.load(Ordering::SeqCst) + k;
    let back_target = pipe.back_written.load(Ordering::SeqCst) + k2;
    let Pipe { tx, rx, written, read, back_written, back_read } = &*pipe;
    green::scope(|s| {
        s.spawn(|| {
            green::sleep(d);
            assert!(write_pattern(tx, written, k), "no deadline here");
        });
        let back = s.spawn(|| assert!(read_pattern(tx, back_read, back_target), "no deadline here"));
        if !write_pattern(rx, back_written, k2) {
            // The deadline passed: what was not written will not come.
            back.cancel();
            return;
        }
        read_pattern(rx, read, target);
    });
}

fn program(world: &World, mut rng: Rng, pipe: (std::net::TcpStream, std::net::TcpStream)) {
    let mut pipe = Some(Pipe {
        tx: TcpStream::from(pipe.0),
        rx: TcpStream::from(pipe.1),
        written: AtomicU64::new(0),
        read: AtomicU64::new(0),
        back_written: AtomicU64::new(0),
        back_read: AtomicU64::new(0),
    });
    for _ in 0..10 + rng.below(150) {
        let kind = rng.below(STEPS);
        if rng.percent(25) {
            under_deadline(world, &mut pipe, &mut rng, kind);
        } else {
            step(world, &mut pipe, &mut rng, kind, false);
        }
        world.tick();
    }
}

/// Runs step `kind` under a short `green::timeout`, sometimes with a nested one inside, and
/// checks that an expired one never ends early.
fn under_deadline(world: &World, pipe: &mut Option<Pipe>, rng: &mut Rng, kind: u64) {
    let d = rng.micros(400);
    let start = Instant::now();
    let r = if rng.percent(20) {
        let inner = rng.micros(400);
        green::timeout(d, || {
            let _ = green::timeout(inner, || step(world, pipe, rng, kind, true));
            step(world, pipe, rng, kind, true)
        })
    } else {
        green::timeout(d, || step(world, pipe, rng, kind, true))
    };
    if r == Err(Elapsed) {
        world.elapsed.fetch_add(1, Ordering::Relaxed);
        let took = start.elapsed();
        assert!(took >= d, "green::timeout({d:?}) ended after {took:?}");
    }
}

/// The same on a plain OS thread, with the steps that need no runtime: never cancelled, but
/// its waits and wakes cross to the workers.
fn os_program(world: &World, mut rng: Rng) {
    for _ in 0..10 + rng.below(150) {
        // The steps before `OS_STEPS` need no runtime.
        let kind = rng.below(OS_STEPS);
        if rng.percent(25) {
            under_deadline(world, &mut None, &mut rng, kind);
        } else {
            step(world, &mut None, &mut rng, kind, false);
        }
        world.tick();
    }
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The names of this process's threads, with what each is doing: for a report of one left over.
fn thread_names() -> String {
    let mut names = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        let state = read("stat").rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).map(str::to_owned);
        names.push(format!("{} ({}, wchan {})", read("comm").trim(), state.unwrap_or_default(), read("wchan").trim()));
    }
    names.join(", ")
}

/// Green threads that keep every untimed wait of the programs answerable until `stop`.
fn spawn_partners(rt: &green::Runtime, world: &Arc<World>) -> Vec<green::JoinHandle<()>> {
    let mut partners = Vec::new();
    for rendezvous in [false, true] {
        let w = world.clone();
        partners.push(rt.spawn(move || {
            let (tx, _) = w.channel(rendezvous);
            while !w.stop.load(Ordering::SeqCst) {
                let v = w.unique.fetch_add(1, Ordering::SeqCst);
                if tx.send_timeout(v, Duration::from_millis(2)).is_ok() {
                    w.sent.add(v);
                }
            }
        }));
        let w = world.clone();
        partners.push(rt.spawn(move || {
            let (_, rx) = w.channel(rendezvous);
            while !w.stop.load(Ordering::SeqCst) {
                if let Ok(v) = rx.recv_timeout(Duration::from_millis(2)) {
                    w.received.add(v);
                }
            }
        }));
    }
    let w = world.clone();
    partners.push(rt.spawn(move || {
        while !w.stop.load(Ordering::SeqCst) {
            green::sleep(Duration::from_millis(1));
            *w.generation.lock().unwrap() += 1;
            w.cv.notify_all();
        }
    }));
    let w = world.clone();
    partners.push(rt.spawn(move || {
        while !w.stop.load(Ordering::SeqCst) {
            let _ = green::timeout(Duration::from_millis(2), || w.barrier.wait());
        }
    }));
    partners
}

/// Loopback pairs made with std, converted on the green thread that uses them.
fn pairs(n: usize) -> Vec<(std::net::TcpStream, std::net::TcpStream)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (0..n)
        .map(|_| {
            let a = std::net::TcpStream::connect(addr).unwrap();
            let (b, _) = listener.accept().unwrap();
            (a, b)
        })
        .collect()
}

/// One run: `programs` green threads on `workers` workers, with cancellers, for `seed`.
fn run_seed(seed: u64, workers: usize, programs: usize) {
    let fds = common::open_fds();
    let os_threads = threads();
    let rt = green::Runtime::builder().workers(workers).build().unwrap();
    let world = Arc::new(World::new());
    let partners = spawn_partners(&rt, &world);
    let mut rng = Rng::new(seed);
    // Sometimes the runtime shuts down in the middle of it all.
    let shutdown_at = rng.percent(25).then(|| rng.micros(30_000));
    let handles: Arc<Vec<green::JoinHandle<()>>> = Arc::new(
        pairs(programs)
            .into_iter()
            .map(|pipe| {
                let w = world.clone();
                let r = Rng::new(rng.next());
                rt.spawn(move || program(&w, r, pipe))
            })
            .collect(),
    );
    // An OS thread's untimed wait would outlive the partners that a shutdown cancels.
    let os_programs: Vec<_> = (0..if shutdown_at.is_some() { 0 } else { 2 })
        .map(|_| {
            let (w, r) = (world.clone(), Rng::new(rng.next()));
            std::thread::spawn(move || os_program(&w, r))
        })
        .collect();
    let cancelling = Arc::new(AtomicBool::new(true));
    let green_canceller = {
        let (handles, cancelling, mut r) = (handles.clone(), cancelling.clone(), Rng::new(rng.next()));
        rt.spawn(move || {
            while cancelling.load(Ordering::SeqCst) {
                green::sleep(r.micros(1500));
                if r.percent(40) {
                    handles[r.below(handles.len() as u64) as usize].cancel();
                }
            }
        })
    };
    let os_canceller = {
        let (handles, cancelling, mut r) = (handles.clone(), cancelling.clone(), Rng::new(rng.next()));
        std::thread::spawn(move || {
            while cancelling.load(Ordering::SeqCst) {
                if r.percent(20) {
                    // A burst: no sleep, to land in the narrow windows of a wait.
                    for _ in 0..r.below(2000) {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::sleep(r.micros(1500));
                }
                if r.percent(40) {
                    handles[r.below(handles.len() as u64) as usize].cancel();
                }
            }
        })
    };
    let dumper = {
        let (h, cancelling) = (rt.handle().clone(), cancelling.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while cancelling.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(3));
                n += h.dump().to_string().len().min(1);
            }
            n
        })
    };
    let handle = rt.handle().clone();
    let mut rt = Some(rt);
    let started = Instant::now();
    // The watchdog: progress must not stop for 10 s while a program runs.
    let mut last = (world.progress.load(Ordering::Relaxed), Instant::now());
    while !handles.iter().all(|h| h.is_finished()) || !os_programs.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(2));
        if shutdown_at.is_some_and(|at| started.elapsed() >= at)
            && let Some(rt) = rt.take()
        {
            world.shutting_down.store(true, Ordering::SeqCst);
            rt.shutdown_timeout(Duration::from_secs(10)).expect("a clean shutdown in the middle");
        }
        let now = world.progress.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            let stuck = handles.iter().filter(|h| !h.is_finished()).map(|h| h.thread().id()).collect::<Vec<_>>();
            let os = os_programs.iter().filter(|h| !h.is_finished()).count();
            panic!(
                "seed {seed}, {workers} workers: no progress for 10 s; green threads stuck: {stuck:?}, OS threads \
                 stuck: {os}\n{}",
                handle.dump()
            );
        }
    }
    cancelling.store(false, Ordering::SeqCst);
    if let Err(e) = green_canceller.join() {
        assert!(shutdown_at.is_some() && e.is_cancelled(), "{e}");
    }
    os_canceller.join().unwrap();
    dumper.join().unwrap();
    let handles = Arc::try_unwrap(handles).unwrap_or_else(|_| unreachable!());
    let (mut done, mut cancelled) = (0, 0);
    for h in handles {
        match h.join() {
            Ok(_) => done += 1,
            Err(e) if e.is_cancelled() => cancelled += 1,
            Err(e) => panic!("seed {seed}, {workers} workers: {e}"),
        }
    }
    for p in os_programs {
        if let Err(e) = p.join() {
            panic!("seed {seed}, {workers} workers: an OS thread's program panicked: {}", common::panic_text(&*e));
        }
    }
    world.stop.store(true, Ordering::SeqCst);
    for p in partners {
        if let Err(e) = p.join() {
            assert!(shutdown_at.is_some() && e.is_cancelled(), "{e}");
        }
    }
    assert!(
        common::eventually(Duration::from_secs(10), || world.children.load(Ordering::SeqCst) == 0),
        "seed {seed}: {} children left",
        world.children.load(Ordering::SeqCst)
    );
    // What is still in the bounded channel was sent and never received.
    let mut left_over = 0;
    while let Ok(v) = world.bounded.1.try_recv() {
        world.received.add(v);
    }
    while let Ok(v) = world.rendezvous.1.try_recv() {
        left_over += 1;
        world.received.add(v);
    }
    let (sent, received) = (&world.sent, &world.received);
    assert_eq!(
        (sent.count.load(Ordering::SeqCst), sent.sum.load(Ordering::SeqCst)),
        (received.count.load(Ordering::SeqCst), received.sum.load(Ordering::SeqCst)),
        "seed {seed}, {workers} workers: messages sent and received differ (count, fingerprint); \
         shut down early: {shutdown_at:?}, {left_over} left in the rendezvous channel"
    );
    assert!(!world.mutex.is_poisoned() && !world.rw.is_poisoned() && !world.generation.is_poisoned());
    assert!(world.mutex.try_lock().is_ok() && world.rw.try_write().is_ok());
    assert_eq!(world.sem.available_permits(), PERMITS, "seed {seed}: permits lost");
    for i in 0..ONCES {
        let inits = world.inits[i].load(Ordering::SeqCst);
        assert_eq!(inits, world.onces[i].get().is_some() as usize, "seed {seed}: cell {i} initialized {inits} times");
    }
    if let Some(rt) = rt {
        rt.shutdown_timeout(Duration::from_secs(10)).expect("clean shutdown");
    }
    drop(handle);
    let (steps, elapsed) = (world.progress.load(Ordering::Relaxed), world.elapsed.load(Ordering::Relaxed));
    drop(world);
    assert!(
        common::eventually(Duration::from_secs(10), || common::open_fds() <= fds),
        "seed {seed}: fds {fds} -> {}",
        common::open_fds()
    );
    assert!(
        common::eventually(Duration::from_secs(10), || threads() <= os_threads),
        "seed {seed}: threads {os_threads} -> {}: {}",
        threads(),
        thread_names()
    );
    eprintln!(
        "seed {seed}, {workers} workers: {done} finished, {cancelled} cancelled, {} steps, {} timed out{}{}",
        steps,
        elapsed,
        if shutdown_at.is_some() { ", shut down early" } else { "" },
        if left_over > 0 { ", a message in flight in the rendezvous channel" } else { "" }
    );
}

/// A handful of fixed seeds on two workers and on one, a few of which shut the runtime down
/// in the middle.
#[test]
fn fixed_seeds() {
    bounded(Duration::from_secs(120), || {
        for seed in 0..16 {
            run_seed(seed, 2, 24);
        }
        for seed in 16..24 {
            run_seed(seed, 1, 24);
        }
    });
}

/// The same for as long as wanted, to hunt: `GREEN_STRESS_SEEDS=a..b` (default `0..1000`),
/// `GREEN_STRESS_WORKERS` (2), `GREEN_STRESS_PROGRAMS` (24), stopping after
/// `GREEN_STRESS_SECONDS` (600). Run it alone, in release mode:
/// `cargo test --release --test stress_cancel_timeout -- --ignored --nocapture`.
#[test]
#[ignore = "long; run by hand to hunt for races"]
fn many_seeds() {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let seeds = var("GREEN_STRESS_SEEDS", "0..1000");
    let (a, b) = seeds.split_once("..").expect("GREEN_STRESS_SEEDS is a range like 0..1000");
    let workers: usize = var("GREEN_STRESS_WORKERS", "2").parse().unwrap();
    let programs: usize = var("GREEN_STRESS_PROGRAMS", "24").parse().unwrap();
    let limit = Duration::from_secs(var("GREEN_STRESS_SECONDS", "600").parse().unwrap());
    let start = Instant::now();
    for seed in a.parse::<u64>().unwrap()..b.parse::<u64>().unwrap() {
        if start.elapsed() > limit {
            eprintln!("stopped after {limit:?}, before seed {seed}");
            break;
        }
        bounded(Duration::from_secs(120), move || run_seed(seed, workers, programs));
    }
}
