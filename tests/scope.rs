//! Scoped green threads borrow from the caller and are always joined, even when the green
//! thread that opened the scope is cancelled.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn children_borrow_and_mutate_disjoint_parts() {
    let mut data = vec![0u32; 64];
    green::run(|| {
        green::scope(|s| {
            for (i, chunk) in data.chunks_mut(8).enumerate() {
                s.spawn(move || {
                    for x in chunk.iter_mut() {
                        *x = i as u32;
                        green::yield_now();
                    }
                });
            }
        });
    });
    for (i, chunk) in data.chunks(8).enumerate() {
        assert!(chunk.iter().all(|&x| x == i as u32));
    }
}

#[test]
fn the_scope_waits_for_unjoined_children() {
    let finished = AtomicUsize::new(0);
    green::run(|| {
        green::scope(|s| {
            for _ in 0..50 {
                s.spawn(|| {
                    green::sleep(Duration::from_millis(2));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(finished.load(Ordering::SeqCst), 50);
    });
}

#[test]
fn an_unjoined_panicking_child_makes_the_scope_panic() {
    green::run(|| {
        let caught = std::panic::catch_unwind(|| {
            green::scope(|s| {
                s.spawn_with(green::Builder::new().name("parser".into()), || panic!("child fails")).unwrap();
            })
        });
        // The scope's panic names the child and says why.
        let text = common::panic_text(&*caught.unwrap_err());
        assert!(text.contains("\"parser\" panicked: child fails"), "{text}");
        let caught = std::panic::catch_unwind(|| {
            green::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| panic!("child fails"));
                }
            })
        });
        let text = common::panic_text(&*caught.unwrap_err());
        assert!(text.contains("and 2 more"), "{text}");
    });
}

#[test]
fn a_joined_panicking_child_does_not() {
    green::run(|| {
        let err = green::scope(|s| s.spawn(|| panic!("child fails")).join().unwrap_err());
        assert!(err.is_panic());
    });
}

/// An owner cancelled while its scope waits for the children (after `f` has returned) ends
/// cancelled, as one cancelled inside `f` does. The scope had cancelled the children, so the
/// work `f` left to them was never done; it returned what `f` had returned all the same, and
/// the owner, with no cancellation point after it, finished with `Ok` and that value.
#[test]
fn an_owner_cancelled_in_the_final_wait_ends_cancelled() {
    green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
        let started = Arc::new(AtomicUsize::new(0));
        let owner = green::spawn({
            let started = started.clone();
            move || {
                let mut squares = [0u64; 4];
                green::scope(|s| {
                    for (i, square) in squares.iter_mut().enumerate() {
                        let started = &started;
                        s.spawn(move || {
                            started.fetch_add(1, Ordering::SeqCst);
                            green::sleep(Duration::from_secs(3600));
                            *square = (i * i) as u64;
                        });
                    }
                });
                squares.iter().sum::<u64>()
            }
        });
        // One worker: the owner has returned from `f` and waits in the scope by now.
        while started.load(Ordering::SeqCst) < 4 {
            green::yield_now();
        }
        owner.cancel();
        let outcome = owner.join();
        assert!(outcome.as_ref().is_err_and(|e| e.is_cancelled()), "{outcome:?}");
    });
}

/// The green thread that opened the scope is cancelled by runtime shutdown while its children,
/// on the other worker, still borrow from its frame. The scope must cancel them and wait: each
/// child's destructor reads the borrowed data, and the data's own destructor runs last.
#[test]
fn a_cancelled_parent_waits_for_children_that_borrow_from_it() {
    struct Data {
        values: Vec<u64>,
        log: Arc<Mutex<Vec<String>>>,
    }
    impl Drop for Data {
        fn drop(&mut self) {
            self.log.lock().unwrap().push("data dropped".into());
        }
    }
    struct ChildGuard<'a> {
        data: &'a Data,
        index: usize,
    }
    impl Drop for ChildGuard<'_> {
        fn drop(&mut self) {
            // Reads the parent's frame: it must still be alive.
            let sum: u64 = self.data.values.iter().sum();
            self.data.log.lock().unwrap().push(format!("child {} saw {}", self.index, sum));
        }
    }

    let log = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    {
        let log = log.clone();
        let started = started.clone();
        drop(
            green::Builder::new()
                .worker(0)
                .spawn_on(rt.handle(), move || {
                    let data = Data { values: (1..=10).collect(), log };
                    green::scope(|s| {
                        for index in 0..4 {
                            let data = &data;
                            let started = &started;
                            s.spawn_with(green::Builder::new().worker(1), move || {
                                let _guard = ChildGuard { data, index };
                                started.fetch_add(1, Ordering::SeqCst);
                                green::sleep(Duration::from_secs(3600));
                            })
                            .unwrap();
                        }
                        green::sleep(Duration::from_secs(3600));
                    });
                })
                .unwrap(),
        );
    }
    while started.load(Ordering::SeqCst) < 4 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("data dropped"), "{log:?}");
    assert!(log[..4].iter().all(|l| l.ends_with("saw 55")), "{log:?}");
}

/// Regression: a spawn that failed (here, a worker index the runtime does not have; it used to
/// panic) left the scope's count of children up, and the scope waited forever.
#[test]
fn a_failed_spawn_does_not_leave_the_scope_waiting() {
    green::run(|| {
        let e = green::scope(|s| s.spawn_with(green::Builder::new().worker(99), || ()).unwrap_err());
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        let caught = std::panic::catch_unwind(|| {
            green::scope(|s| {
                s.spawn_with(green::Builder::new().worker(99), || ()).unwrap();
            })
        });
        assert!(caught.is_err());
    });
}

/// On a worker's own stack the scope could not wait for its children, and unwinding out of
/// that wait would leave them borrowing a dead frame. It refuses before its body runs.
#[test]
fn a_scope_refuses_to_open_on_the_worker_stack() {
    green::run(|| {
        let ran = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            green::on_worker_stack(|| {
                green::scope(|s| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    s.spawn(|| ran.fetch_add(1, Ordering::SeqCst));
                });
            })
        }));
        let message = common::panic_text(&*caught.unwrap_err());
        assert!(message.contains("green::scope inside green::on_worker_stack"), "{message}");
        green::sleep(Duration::from_millis(20));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "neither the body nor a child may have run");
    });
}

/// `green::timeout` bounds a scope as it bounds a `join`: whether the deadline passes in the
/// body (an explicit join) or in the scope's final wait, the children are cancelled, the
/// scope waits for them, and the `green::timeout` returns `Elapsed` long before the children
/// would have finished.
#[test]
fn the_caller_deadline_bounds_a_scope() {
    green::run(|| {
        for join_in_body in [true, false] {
            let borrowed = vec![1u32, 2, 3];
            let cancelled = AtomicUsize::new(0);
            let start = std::time::Instant::now();
            /// Counts the child's end, reading the borrowed data as it goes.
            struct Leaving<'a>(&'a [u32], &'a AtomicUsize);
            impl Drop for Leaving<'_> {
                fn drop(&mut self) {
                    assert_eq!(self.0.iter().sum::<u32>(), 6);
                    self.1.fetch_add(1, Ordering::SeqCst);
                }
            }
            let r = green::timeout(Duration::from_millis(30), || {
                green::scope(|s| {
                    // Made here and moved in: a child cancelled before it starts (the deadline
                    // may pass first on a loaded machine) ends by dropping it unrun, and counts.
                    let leaving = Leaving(&borrowed, &cancelled);
                    let child = s.spawn(move || {
                        let _leaving = leaving;
                        green::sleep(Duration::from_secs(60));
                    });
                    if join_in_body {
                        let _ = child.join();
                    }
                })
            });
            assert_eq!(r, Err(green::Elapsed), "join in body: {join_in_body}");
            assert!(start.elapsed() < Duration::from_secs(30), "join in body: {join_in_body}");
            assert_eq!(cancelled.load(Ordering::SeqCst), 1, "the child ended before the scope returned");
        }
    });
}

/// A child spawned into a scope after its children were cancelled (here by a destructor that
/// runs as a cancelled child unwinds) is cancelled too: the deadline still bounds the scope.
#[test]
fn a_child_spawned_after_the_scope_cancelled_its_children_is_cancelled_too() {
    green::run(|| {
        let start = std::time::Instant::now();
        let r = green::timeout(Duration::from_millis(30), || {
            green::scope(|s| {
                s.spawn(|| {
                    /// Spawns a long child into the scope when dropped.
                    struct SpawnsOnDrop<'scope, 'env>(&'scope green::Scope<'scope, 'env>);
                    impl Drop for SpawnsOnDrop<'_, '_> {
                        fn drop(&mut self) {
                            self.0.spawn(|| green::sleep(Duration::from_secs(20)));
                        }
                    }
                    let _spawns = SpawnsOnDrop(s);
                    green::sleep(Duration::from_secs(20));
                });
            })
        });
        assert_eq!(r, Err(green::Elapsed));
        assert!(start.elapsed() < Duration::from_secs(10), "the scope waited {:?} for its late child", start.elapsed());
    });
}

/// A green thread that opens a scope in a destructor while unwinding cannot park for its
/// children: it aborts with a message that says so, instead of an internal error (or a
/// dangling borrow).
#[test]
fn a_scope_that_must_wait_while_unwinding_aborts_with_a_clear_message() {
    if !common::child::is_child() {
        let out = common::child::run_child(
            "a_scope_that_must_wait_while_unwinding_aborts_with_a_clear_message",
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("opened a green::scope while unwinding"), "{stderr}");
        assert!(!stderr.contains("internal error"), "{stderr}");
        return;
    }
    /// Opens a scope with a slow child in its destructor.
    struct ScopeOnDrop;
    impl Drop for ScopeOnDrop {
        fn drop(&mut self) {
            green::scope(|s| {
                s.spawn(|| green::sleep(Duration::from_secs(60)));
            });
        }
    }
    green::run(|| {
        let _ = green::spawn(|| {
            let _guard = ScopeOnDrop;
            panic!("expected in this test: unwinding into a scope");
        })
        .join();
    });
}

/// A scoped green thread that overruns can be cancelled: `wait_timeout` keeps the handle,
/// where a `join` inside `green::timeout` consumes it, and the scope then waits for the green
/// thread to end by itself (here, a minute).
#[test]
fn wait_timeout_keeps_a_scoped_handle_to_cancel_it() {
    green::run(|| {
        let borrowed = [1u32, 2, 3];
        let start = std::time::Instant::now();
        let (quick_finished, slow_finished, slow) = green::scope(|s| {
            let mut quick = s.spawn(|| borrowed.iter().sum::<u32>());
            let mut slow = s.spawn(|| {
                green::sleep(Duration::from_secs(60));
                borrowed.len()
            });
            let quick_finished = quick.wait_timeout(Duration::from_secs(30));
            assert_eq!(quick.join().unwrap(), 6);
            let slow_finished = slow.wait_timeout(Duration::from_millis(20));
            if !slow_finished {
                slow.cancel();
            }
            (quick_finished, slow_finished, slow.join())
        });
        assert!(quick_finished);
        assert!(!slow_finished);
        assert!(slow.unwrap_err().is_cancelled());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(20), "returned early, after {waited:?}");
        assert!(waited < Duration::from_secs(30), "the scope waited {waited:?} for its cancelled green thread");
    });
}

/// A deadline that unwinds the body goes on as `Elapsed`, as the body's own panic would, and a
/// child's unjoined panic is only printed; one that comes in the final wait, after the body
/// returned, gives way to that panic.
#[test]
fn an_unjoined_panic_gives_way_to_a_deadline_in_the_body_only() {
    green::run(|| {
        let in_body = green::timeout(Duration::from_millis(50), || {
            green::scope(|s| {
                s.spawn(|| panic!("expected in this test: a child fails"));
                let slow = s.spawn(|| green::sleep(Duration::from_secs(60)));
                let _ = slow.join();
            })
        });
        assert_eq!(in_body, Err(green::Elapsed));
        let in_final_wait = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            green::timeout(Duration::from_secs(2), || {
                green::scope(|s| {
                    let failing = s.spawn(|| panic!("expected in this test: a child fails"));
                    s.spawn(|| green::sleep(Duration::from_secs(60)));
                    while !failing.is_finished() {
                        green::yield_now();
                    }
                })
            })
        }));
        let text = common::panic_text(&*in_final_wait.unwrap_err());
        assert!(text.contains("no one joined panicked") && text.contains("a child fails"), "{text}");
    });
}
