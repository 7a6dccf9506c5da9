//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod child;
pub mod slow_logger;
pub mod warnings;

/// A small xorshift generator, for tests that jitter their timing or draw random programs:
/// the same seed gives the same numbers.
pub struct Rng(pub u64);

impl Rng {
    /// A generator from any seed, 0 included (the state must not be 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform enough in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `p` times in a hundred.
    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    /// Up to `max` µs.
    pub fn micros(&mut self, max: u64) -> Duration {
        Duration::from_micros(self.below(max + 1))
    }
}

/// Counts its drops in the shared counter: proof that a destructor ran, and ran once.
pub struct Counted(pub Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A runtime with `n` workers.
pub fn runtime(workers: usize) -> green::Runtime {
    green::Runtime::builder().workers(workers).build().expect("runtime")
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// The fds open in this process, as `/proc/self/fd` lists them (the listing opens one more
/// while it reads: the same in every count).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

/// Processes whose command line holds `marker`, zombies aside (theirs is empty).
pub fn running_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(marker))
        .count()
}

/// On one worker, runs `f` while a green thread beside it counts 1 ms sleeps; returns what `f`
/// returned and the count: a count near zero means `f` held the worker.
pub fn beside_a_ticker<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> (R, usize) {
    beside_a_counted_ticker(|ticks| {
        let result = f();
        (result, ticks.load(Ordering::Relaxed))
    })
}

/// On one worker, runs `f` beside a green thread that counts 1 ms sleeps in the counter `f` is
/// given: a count that does not grow across a call means the call held the worker.
pub fn beside_a_counted_ticker<R: Send + 'static>(f: impl FnOnce(&AtomicUsize) -> R + Send + 'static) -> R {
    green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            green::spawn(move || {
                loop {
                    green::sleep(Duration::from_millis(1));
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let result = green::spawn(move || f(&ticks)).join().unwrap();
        ticker.cancel();
        assert!(ticker.join().is_err());
        result
    })
}

/// Rounds of a call made in the moment between the start of a runtime's shutdown and its
/// worker's cancelling of the caller. In each round a green thread of a one-worker runtime runs
/// `green_thread(round)`, which prepares what it needs, calls the `hold` it is given (which
/// keeps the worker, without parking, until the shutdown has begun: a spawn is then refused,
/// finished at once), then makes the call and gives what it returned as text; meanwhile the
/// runtime is dropped. Returns how many rounds reached the call (a round's green thread may
/// instead be cancelled before it, if its budget runs out in between) and the texts of the
/// calls that returned.
pub fn calls_made_as_the_shutdown_begins<F>(rounds: usize, green_thread: impl Fn(usize) -> F) -> (usize, Vec<String>)
where
    F: FnOnce(&dyn Fn()) -> String + Send + 'static,
{
    let (mut reached, mut returned) = (0, Vec::new());
    for round in 0..rounds {
        let (running_tx, running_rx) = std::sync::mpsc::channel();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let call = green_thread(round);
        rt.spawn(move || {
            let hold = || {
                running_tx.send(()).unwrap();
                while !green::spawn(|| ()).is_finished() {
                    std::thread::sleep(Duration::from_micros(200));
                }
                seen_tx.send("reached".to_string()).unwrap();
            };
            let got = call(&hold);
            seen_tx.send(got).unwrap();
        });
        running_rx.recv().unwrap();
        drop(rt);
        let seen: Vec<String> = seen_rx.try_iter().collect();
        reached += usize::from(seen.first().is_some_and(|s| s == "reached"));
        returned.extend(seen.into_iter().skip(1));
    }
    (reached, returned)
}

/// The text of a panic payload (`panic!` with a literal gives a `&str`, with arguments a
/// `String`); empty for any other payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Runs `f` on its own thread and fails the test if it has not finished within `limit`, so a
/// lost wakeup or a deadlock fails instead of hanging the run. (The thread is left behind if it
/// hangs: the test fails anyway.)
pub fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the test did not finish within {limit:?}: a lost wakeup or a deadlock"),
    }
}

/// The names of this process's threads that start with `prefix`.
pub fn threads_named(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect()
}
