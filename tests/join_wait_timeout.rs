//! `JoinHandle::wait_timeout`: waiting for a green thread with a time limit, keeping the handle
//! to cancel it or join it afterwards.

use std::time::{Duration, Instant};

use green::sync::mpsc;

/// Generous upper bound for waits that should end at once.
const SOON: Duration = Duration::from_secs(10);

#[test]
fn times_out_then_cancels_and_joins_the_same_handle() {
    green::run(|| {
        let mut stuck = green::spawn(|| green::sleep(Duration::from_secs(3600)));
        let start = Instant::now();
        assert!(!stuck.wait_timeout(Duration::from_millis(20)));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(20), "returned early, after {waited:?}");
        assert!(waited < SOON, "took {waited:?}");
        assert!(!stuck.is_finished());
        stuck.cancel();
        assert!(stuck.join().unwrap_err().is_cancelled());
    });
}

#[test]
fn returns_true_when_the_green_thread_finishes_first_and_join_gives_its_value() {
    green::run(|| {
        let (go, wait) = mpsc::channel::<()>();
        let mut worker = green::spawn(move || {
            wait.recv().unwrap();
            7
        });
        assert!(!worker.wait_timeout(Duration::from_millis(5)));
        go.send(()).unwrap();
        let start = Instant::now();
        assert!(worker.wait_timeout(SOON));
        assert!(start.elapsed() < SOON);
        assert!(worker.is_finished());
        assert_eq!(worker.join().unwrap(), 7);
    });
}

#[test]
fn a_finished_green_thread_needs_no_wait_even_with_a_zero_timeout() {
    green::run(|| {
        let mut done = green::spawn(|| 1);
        while !done.is_finished() {
            green::yield_now();
        }
        assert!(done.wait_timeout(Duration::ZERO));
        assert_eq!(done.join().unwrap(), 1);
    });
}

#[test]
fn works_from_an_os_thread() {
    let rt = green::Runtime::new().unwrap();
    let mut sleeper = rt.spawn(|| green::sleep(Duration::from_millis(20)));
    assert!(!sleeper.wait_timeout(Duration::ZERO));
    assert!(sleeper.wait_timeout(SOON));
    sleeper.join().unwrap();
}

#[test]
fn the_green_timeout_deadline_ends_it_with_false_and_the_handle_survives() {
    green::run(|| {
        let mut stuck = green::spawn(|| green::sleep(Duration::from_secs(3600)));
        let got = green::timeout(Duration::from_millis(10), || stuck.wait_timeout(Duration::from_secs(3600)));
        assert_eq!(got, Ok(false));
        stuck.cancel();
        assert!(stuck.join().unwrap_err().is_cancelled());
    });
}

#[test]
fn a_cancelled_waiter_unwinds_from_it() {
    green::run(|| {
        let mut stuck = green::spawn(|| green::sleep(Duration::from_secs(3600)));
        let target = stuck.thread().clone();
        let waiter = green::spawn(move || {
            stuck.wait_timeout(Duration::from_secs(3600));
            stuck // not reached
        });
        while !green::Handle::current().dump().to_string().contains(&format!("join of green thread {}", target.id())) {
            green::sleep(Duration::from_millis(1));
        }
        waiter.cancel();
        assert!(waiter.join().unwrap_err().is_cancelled());
    });
}

#[test]
fn while_unwinding_it_returns_at_once_instead_of_parking() {
    struct WaitOnDrop(Option<green::JoinHandle<()>>, std::sync::Arc<std::sync::Mutex<Option<(bool, Duration)>>>);
    impl Drop for WaitOnDrop {
        fn drop(&mut self) {
            let mut h = self.0.take().unwrap();
            let start = Instant::now();
            let finished = h.wait_timeout(Duration::from_secs(3600));
            *self.1.lock().unwrap() = Some((finished, start.elapsed()));
            h.cancel();
        }
    }
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    green::run(move || {
        let parent = green::spawn(move || {
            let _guard = WaitOnDrop(Some(green::spawn(|| green::sleep(Duration::from_secs(3600)))), record);
            panic!("unwinds through wait_timeout");
        });
        assert!(parent.join().unwrap_err().is_panic());
    });
    let (finished, took) = seen.lock().unwrap().expect("the destructor ran");
    assert!(!finished);
    assert!(took < SOON, "took {took:?}");
}

/// On the worker's own stack while unwinding (a destructor inside `on_worker_stack`), it
/// returns at once, as `join` does there; it used to panic, and a panic while unwinding aborts
/// the process.
#[test]
fn on_the_worker_stack_while_unwinding_it_returns_at_once() {
    struct WaitOnDrop<'a>(&'a mut green::JoinHandle<()>, &'a mut Option<(bool, Duration)>);
    impl Drop for WaitOnDrop<'_> {
        fn drop(&mut self) {
            let start = Instant::now();
            let finished = self.0.wait_timeout(Duration::from_secs(3600));
            *self.1 = Some((finished, start.elapsed()));
        }
    }
    green::run(|| {
        let mut stuck = green::spawn(|| green::sleep(Duration::from_secs(3600)));
        let mut seen = None;
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            green::on_worker_stack(|| {
                let _guard = WaitOnDrop(&mut stuck, &mut seen);
                panic!("unwinds on the worker's stack");
            })
        }));
        assert!(unwound.is_err());
        let (finished, took) = seen.expect("the destructor ran");
        assert!(!finished);
        assert!(took < SOON, "took {took:?}");
        stuck.cancel();
        assert!(stuck.join().unwrap_err().is_cancelled());
    });
}
