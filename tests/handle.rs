//! Reaching a runtime from outside: Handle::spawn from OS threads, Handle::current inside.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn handle_spawn_from_os_threads() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let handle = rt.handle().clone();
            let count = count.clone();
            std::thread::spawn(move || {
                let hs: Vec<_> = (0..250)
                    .map(|i| {
                        let count = count.clone();
                        handle.spawn(move || {
                            count.fetch_add(1, Ordering::Relaxed);
                            t * 1000 + i
                        })
                    })
                    .collect();
                hs.into_iter().enumerate().for_each(|(i, h)| assert_eq!(h.join().unwrap(), t * 1000 + i));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count.load(Ordering::Relaxed), 1000);
}

#[test]
fn handle_current_inside_and_not_outside() {
    assert!(green::Handle::try_current().is_none());
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let workers = rt.block_on(|| green::Handle::current().workers());
    assert_eq!(workers, 2);
}

#[test]
fn spawn_outside_a_runtime_panics_with_advice() {
    let err = std::panic::catch_unwind(|| green::spawn(|| ())).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("outside a green runtime") && msg.contains("Handle"), "{msg}");
}

#[test]
fn starting_a_runtime_inside_a_green_thread_panics() {
    green::run(|| {
        let err = green::spawn(|| green::run(|| ())).join().unwrap_err();
        assert!(err.is_panic());
        assert!(err.to_string().contains("cannot start or block on a runtime"), "{err}");
    });
}

#[test]
fn spawn_after_shutdown_is_cancelled() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    drop(rt);
    let err = handle.spawn(|| 1).join().unwrap_err();
    assert!(err.is_cancelled());
}

#[test]
fn pinned_green_threads_start_on_their_worker() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        for w in 0..2 {
            let name = green::Builder::new()
                .worker(w)
                .spawn(|| std::thread::current().name().map(String::from))
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(name, Some(format!("green-worker-{w}")));
        }
    });
}

/// A library that starts a runtime of its own cannot do it on a green thread; the panic points
/// to `spawn_blocking`, whose jobs run on plain OS threads, and there it works.
#[test]
fn a_runtime_started_inside_a_green_thread_is_told_about_spawn_blocking() {
    fn library_call() -> u32 {
        green::run(|| green::spawn(|| 2).join().unwrap())
    }
    green::run(|| {
        let err = green::spawn(library_call).join().unwrap_err();
        assert!(err.to_string().contains("green::spawn_blocking"), "{err}");
        assert_eq!(green::spawn_blocking(library_call).join().unwrap(), 2);
    });
}

/// `block_on` inside a green thread, of its own runtime or another one, would block the
/// worker: the panic says what waits without blocking it (a spawn on that runtime and a join),
/// which works. (It used to say `green::spawn`, which spawns on the caller's runtime only.)
#[test]
fn block_on_inside_a_green_thread_is_told_about_spawn_and_join() {
    let outer = green::Runtime::builder().workers(1).build().unwrap();
    let inner = Arc::new(green::Runtime::builder().workers(1).build().unwrap());
    let on_inner = inner.clone();
    let err = outer.spawn(move || on_inner.block_on(|| 1)).join().unwrap_err();
    assert!(err.to_string().contains("Runtime::block_on") && err.to_string().contains(".join()"), "{err}");
    let on_inner = inner.clone();
    assert_eq!(outer.block_on(move || on_inner.spawn(|| 2).join().unwrap()), 2);
    let on_inner = inner.clone();
    let err = inner.spawn(move || on_inner.block_on(|| 3)).join().unwrap_err();
    assert!(err.to_string().contains("Runtime::block_on"), "{err}");
}

/// `shutdown_timeout` inside a green thread, of its own runtime or another one, would block the
/// worker: the panic names the call, and says the runtime was dropped instead.
#[test]
fn shutdown_timeout_inside_a_green_thread_panics_naming_it() {
    let other = green::Runtime::builder().workers(1).build().unwrap();
    let own = green::Runtime::builder().workers(1).build().unwrap();
    let slot = Arc::new(std::sync::Mutex::new(Some(own)));
    let taken = slot.clone();
    let joined = slot.lock().unwrap().as_ref().unwrap().spawn(move || {
        let own = taken.lock().unwrap().take().unwrap();
        own.shutdown_timeout(Duration::from_secs(1))
    });
    let err = joined.join().unwrap_err();
    assert!(err.to_string().contains("shutdown_timeout") && err.to_string().contains("dropped"), "{err}");
    let third = green::Runtime::builder().workers(1).build().unwrap();
    let err = other.spawn(move || third.shutdown_timeout(Duration::from_secs(1))).join().unwrap_err();
    assert!(err.to_string().contains("shutdown_timeout"), "{err}");
}

/// `Handle::block_on` from a thread that holds only the handle: the closure may borrow, its
/// result comes back; once the runtime is gone, the panic says so.
#[test]
fn a_handle_blocks_on_a_closure_from_an_os_thread() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    let words = ["borrowed", "by", "the", "green", "thread"].map(String::from);
    let count = std::thread::scope(|s| s.spawn(|| handle.block_on(|| words.len())).join().unwrap());
    assert_eq!(count, 5);
    drop(rt);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.block_on(|| 1))).unwrap_err();
    let message = err.downcast_ref::<String>().map(String::as_str).unwrap_or("(not a string)");
    assert!(message.starts_with("green: block_on:") && message.contains("shut"), "{message}");
}

/// A runtime that shuts down while `Handle::block_on` runs a closure on it: the closure is
/// cancelled, and the panic on the blocked thread says that the runtime shut down, not only
/// that some green thread was cancelled.
#[test]
fn block_on_names_a_shutdown_during_the_closure() {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let handle = rt.handle().clone();
    let (started, has_started) = std::sync::mpsc::channel();
    let words = ["borrowed", "while", "the", "runtime", "shuts", "down"].map(String::from);
    let result = std::thread::scope(|s| {
        let blocked = s.spawn(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handle.block_on(|| {
                    started.send(()).unwrap();
                    green::sleep(Duration::from_secs(3600));
                    words.len()
                })
            }))
        });
        has_started.recv().unwrap();
        drop(rt);
        blocked.join().unwrap()
    });
    let err = result.unwrap_err();
    let message = err.downcast_ref::<String>().map(String::as_str).unwrap_or("(not a string)");
    assert!(message.starts_with("green: block_on: the runtime shut down"), "{message}");
    assert_eq!(words.len(), 6);
}
