//! `green::sync::Semaphore`: permits are never exceeded under contention across workers and OS
//! threads, requests are served in order, timed acquires, and permits survive cancellations.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use green::sync::{Mutex, Semaphore};

/// Runs `f` on its own thread and fails the test if it has not finished within `limit`.
fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the test did not finish within {limit:?}: a lost wakeup or a deadlock"),
    }
}

#[test]
fn permits_are_never_exceeded() {
    bounded(Duration::from_secs(60), || {
        const PERMITS: usize = 3;
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let sem = Arc::new(Semaphore::new(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let work = |sem: Arc<Semaphore>, inside: Arc<AtomicUsize>, most: Arc<AtomicUsize>, many: usize| {
            move || {
                for round in 0..2_000 {
                    let _p = sem.acquire_many(many);
                    let now = inside.fetch_add(many, Ordering::SeqCst) + many;
                    most.fetch_max(now, Ordering::SeqCst);
                    assert!(now <= PERMITS, "{now} permits in use");
                    if round % 8 == 0 {
                        green::yield_now();
                    }
                    inside.fetch_sub(many, Ordering::SeqCst);
                }
            }
        };
        let handles: Vec<_> =
            (0..8).map(|i| rt.spawn(work(sem.clone(), inside.clone(), most.clone(), 1 + i % 2))).collect();
        let os = std::thread::spawn(work(sem.clone(), inside.clone(), most.clone(), 1));
        handles.into_iter().for_each(|h| h.join().unwrap());
        os.join().unwrap();
        assert_eq!(sem.available_permits(), PERMITS);
        assert!(most.load(Ordering::SeqCst) >= 2, "never concurrent");
    });
}

#[test]
fn requests_are_served_in_order() {
    bounded(Duration::from_secs(20), || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            let sem = Arc::new(Semaphore::new(0));
            let order = Arc::new(Mutex::new(Vec::new()));
            let waiters: Vec<_> = [3usize, 1, 2]
                .into_iter()
                .map(|n| {
                    let (sem, order) = (sem.clone(), order.clone());
                    let h = green::spawn(move || {
                        let p = sem.acquire_many(n);
                        order.lock().unwrap().push(n);
                        p.forget();
                    });
                    green::sleep(Duration::from_millis(1));
                    h
                })
                .collect();
            // Two permits: not enough for the first (3), and the smaller ones must not pass it.
            sem.add_permits(2);
            green::sleep(Duration::from_millis(2));
            assert!(order.lock().unwrap().is_empty());
            sem.add_permits(4);
            waiters.into_iter().for_each(|w| w.join().unwrap());
            assert_eq!(*order.lock().unwrap(), [3, 1, 2]);
            assert_eq!(sem.available_permits(), 0);
        });
    });
}

#[test]
fn timed_acquire_and_cancellation_keep_the_count() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let sem = Arc::new(Semaphore::new(1));
            let held = sem.acquire();
            assert!(sem.try_acquire_for(Duration::from_millis(5)).is_none());
            let waiters: Vec<_> = (0..4)
                .map(|_| {
                    let sem = sem.clone();
                    green::spawn(move || drop(sem.acquire()))
                })
                .collect();
            green::sleep(Duration::from_millis(2));
            for w in &waiters[..2] {
                w.cancel();
            }
            drop(held);
            for (i, w) in waiters.into_iter().enumerate() {
                assert_eq!(w.join().is_ok(), i >= 2);
            }
            assert_eq!(sem.available_permits(), 1);
            let r = green::timeout(Duration::from_millis(2), || {
                let _a = sem.acquire();
                let _b = sem.acquire();
            });
            assert_eq!(r, Err(green::Elapsed));
            assert_eq!(sem.available_permits(), 1);
        });
    });
}

/// A try that fails leaves the count as it was: it must not mint the permits it did not get.
#[test]
fn a_failed_try_acquire_leaves_the_permits_as_they_were() {
    let none = Semaphore::new(0);
    assert!(none.try_acquire().is_none());
    assert_eq!(none.available_permits(), 0);
    assert!(none.try_acquire().is_none(), "a failed try created a permit");
    let two = Semaphore::new(2);
    assert!(two.try_acquire_many(3).is_none());
    assert_eq!(two.available_permits(), 2);
    let held = two.try_acquire_many(2).unwrap();
    assert!(two.try_acquire().is_none());
    assert_eq!(two.available_permits(), 0);
    drop(held);
    assert_eq!(two.available_permits(), 2);
}

/// Owned permits move into spawned green threads and come back however those end: returned,
/// panicked, cancelled while parked, or forgotten.
#[test]
fn owned_permits_come_back_however_their_green_thread_ends() {
    bounded(Duration::from_secs(60), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        rt.block_on(|| {
            let sem = Arc::new(Semaphore::new(3));
            let ended = green::spawn({
                let permit = sem.clone().acquire_owned();
                move || permit.num_permits()
            });
            let panicked = green::spawn({
                let permit = sem.clone().acquire_many_owned(2);
                move || {
                    let _permit = permit;
                    panic!("on purpose");
                }
            });
            assert_eq!(ended.join().unwrap(), 1);
            assert!(panicked.join().unwrap_err().is_panic());
            assert_eq!(sem.available_permits(), 3);

            // Parked with its permit in hand, then cancelled.
            let gate = Arc::new(Semaphore::new(0));
            let parked = green::spawn({
                let (permit, gate) = (sem.clone().acquire_owned(), gate.clone());
                move || {
                    let _permit = permit;
                    gate.acquire().forget();
                }
            });
            assert_eq!(sem.available_permits(), 2);
            while green::Handle::current().metrics().parked("sync") == 0 {
                green::sleep(Duration::from_millis(1));
            }
            parked.cancel();
            assert!(parked.join().unwrap_err().is_cancelled());
            assert_eq!(sem.available_permits(), 3);

            // Too many, then all of them; a forgotten permit stays taken.
            assert!(sem.clone().try_acquire_many_owned(4).is_none());
            let all = sem.clone().try_acquire_many_owned(3).unwrap();
            assert!(sem.clone().try_acquire_owned().is_none());
            assert!(sem.clone().try_acquire_many_owned_for(2, Duration::from_millis(5)).is_none());
            assert!(Arc::ptr_eq(all.semaphore(), &sem));
            drop(all);
            sem.clone().try_acquire_owned().unwrap().forget();
            assert_eq!(sem.available_permits(), 2);
        });
    });
}

/// Permits go where green threads go: an owned one is `Send` and `'static`, as `green::spawn`
/// wants, and both kinds may be shared and are unwind safe, as the semaphore is.
#[test]
fn permits_are_send_sync_and_unwind_safe() {
    fn moves_into_spawn<T: Send + Sync + std::panic::UnwindSafe + 'static>() {}
    fn shared<T: Send + Sync + std::panic::UnwindSafe>() {}
    moves_into_spawn::<green::sync::OwnedSemaphorePermit>();
    moves_into_spawn::<green::sync::SemaphorePermit<'static>>();
    shared::<Semaphore>();
}
