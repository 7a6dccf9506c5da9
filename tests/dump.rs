//! `Handle::dump` lists every live green thread with its state and what it waits for.

use std::time::Duration;

mod common;

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: Duration = Duration::from_secs(60);

/// On a green thread: dumps its runtime every 10 ms until `done` holds for the text (or 10 s
/// pass), and returns the last dump.
fn dump_until(done: impl Fn(&str) -> bool) -> String {
    let start = std::time::Instant::now();
    let mut text = green::Handle::current().dump().to_string();
    while !done(&text) && start.elapsed() < Duration::from_secs(10) {
        green::sleep(Duration::from_millis(10));
        text = green::Handle::current().dump().to_string();
    }
    text
}

/// Dumps until the green thread named `name` shows as parked (not parked yet, it could not
/// show the state a test is after), and fails if it never does.
fn dump_until_parked(name: &str) {
    let quoted = format!("\"{name}\"");
    let parked = dump_until(|text| text.lines().any(|l| l.contains(&quoted) && l.contains("parked (")));
    assert!(parked.lines().any(|l| l.contains(&quoted) && l.contains("parked (")), "{parked}");
}

/// Holds worker 1 with blocking code (no tick, no park) for `how_long`, from a green thread
/// placed there; returns once that code runs. Wakes meant for worker 1 wait in its inbox
/// meanwhile. Call it from a green thread placed on worker 0 (`Builder::worker`), which would
/// otherwise be held too.
fn block_worker_1_for(how_long: Duration) -> green::JoinHandle<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let busy = Arc::new(AtomicBool::new(false));
    let blocker = {
        let busy = busy.clone();
        green::Builder::new()
            .worker(1)
            .spawn(move || {
                busy.store(true, Ordering::Release);
                std::thread::sleep(how_long);
            })
            .unwrap()
    };
    while !busy.load(Ordering::Acquire) {
        green::yield_now();
    }
    blocker
}

#[test]
fn the_dump_shows_each_green_thread_and_its_wait() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let text = rt.block_on(|| {
        let sleeper =
            green::Builder::new().name("sleeper".into()).spawn(|| green::sleep(Duration::from_secs(60))).unwrap();
        let parker = green::Builder::new().name("parker".into()).spawn(green::park).unwrap();
        let joiner = {
            let target =
                green::Builder::new().name("target".into()).spawn(|| green::sleep(Duration::from_secs(60))).unwrap();
            green::Builder::new().name("joiner".into()).spawn(move || target.join().is_ok()).unwrap()
        };
        // Look until all have parked (a loaded machine may take a while to run them).
        let text =
            dump_until(|text| ["parked (sleep)", "parked (park)", "parked (join"].iter().all(|s| text.contains(s)));
        for h in [&sleeper, &parker] {
            h.cancel();
        }
        joiner.cancel();
        let _ = (sleeper.join(), parker.join(), joiner.join());
        text
    });
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("\"{name}\"")))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_owned()
    };
    assert!(line("sleeper").contains("parked (sleep)"), "{text}");
    assert!(line("parker").contains("parked (park)"), "{text}");
    assert!(line("joiner").contains("parked (join of green thread"), "{text}");
    assert!(line("target").contains("tests/dump.rs"), "{text}");
    assert!(line("sleeper").contains("stack pages touched"), "{text}");
}

/// Two green threads that each wait for the other to finish: every worker goes to sleep with
/// nothing that could wake them, and the monitor reports a possible deadlock naming both.
#[test]
fn a_deadlock_of_two_green_threads_is_reported() {
    use std::sync::{Arc, Mutex};
    common::warnings::install();

    let rt = green::Runtime::builder().workers(2).shutdown_timeout(Duration::from_secs(5)).build().unwrap();
    // Each joins the other: a slot hands each the other's handle.
    let slot_a: Arc<Mutex<Option<green::JoinHandle<()>>>> = Arc::new(Mutex::new(None));
    let slot_b: Arc<Mutex<Option<green::JoinHandle<()>>>> = Arc::new(Mutex::new(None));
    let (sa, sb) = (slot_a.clone(), slot_b.clone());
    let a = green::Builder::new()
        .name("alpha".into())
        .spawn_on(rt.handle(), move || {
            loop {
                if let Some(other) = sb.lock().unwrap().take() {
                    let _ = other.join();
                    return;
                }
                green::yield_now();
            }
        })
        .unwrap();
    let b = green::Builder::new()
        .name("beta".into())
        .spawn_on(rt.handle(), move || {
            loop {
                if let Some(other) = sa.lock().unwrap().take() {
                    let _ = other.join();
                    return;
                }
                green::yield_now();
            }
        })
        .unwrap();
    *slot_a.lock().unwrap() = Some(a);
    *slot_b.lock().unwrap() = Some(b);
    let start = std::time::Instant::now();
    let reported = || common::warnings::count("possible deadlock") > 0;
    while !reported() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Once per episode: the report's own dump wakes the workers, which is no progress. (A
    // repeat came one quiet period, 1 s, after the first.)
    std::thread::sleep(Duration::from_millis(2500));
    drop(rt); // shutdown cancels both
    let logs = common::warnings::logged();
    let reports = logs.iter().filter(|l| l.contains("possible deadlock")).count();
    assert_eq!(reports, 1, "the episode was reported {reports} times");
    let report = logs.iter().find(|l| l.contains("possible deadlock")).unwrap_or_else(|| panic!("no report: {logs:?}"));
    assert!(report.contains("\"alpha\"") && report.contains("\"beta\""), "{report}");
    assert!(report.contains("parked (join of green thread"), "{report}");
    // The join cycle itself is named.
    assert!(report.contains("deadlock: green thread"), "{report}");
    // And what to look for, with how to see where each waits.
    assert!(report.contains("Usual causes: a channel whose senders are not all dropped"), "{report}");
    assert!(report.contains("GREEN_PARK_BACKTRACES=1"), "{report}");
    // Which, from a release build without debug info, name no line of the program's own.
    assert!(report.contains("debug = \"line-tables-only\""), "{report}");
}

/// Two green threads that each hold a lock the other waits for: the dump shows whom each waits
/// for and names the cycle.
#[test]
fn a_lock_order_deadlock_is_named_in_the_dump() {
    use std::sync::Arc;
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let text = rt.block_on(|| {
        let first = Arc::new(green::sync::Mutex::new(()));
        let second = Arc::new(green::sync::RwLock::new(()));
        let both_hold = Arc::new(green::sync::Barrier::new(2));
        let alpha = {
            let (first, second, both_hold) = (first.clone(), second.clone(), both_hold.clone());
            green::Builder::new()
                .name("alpha".into())
                .spawn(move || {
                    let _held = first.lock().unwrap();
                    both_hold.wait();
                    let _never = second.write().unwrap();
                })
                .unwrap()
        };
        let beta = {
            let (first, second, both_hold) = (first.clone(), second.clone(), both_hold.clone());
            green::Builder::new()
                .name("beta".into())
                .spawn(move || {
                    let _held = second.write().unwrap();
                    both_hold.wait();
                    let _never = first.lock().unwrap();
                })
                .unwrap()
        };
        // Both park in their second lock within a few ms; look until the dump shows it.
        let text = dump_until(|text| text.contains("deadlock:"));
        // A dump that lists nobody still names the cycle and both holders: their lines are
        // kept whatever the cap.
        let capped = green::Handle::current().dump_capped(0).to_string();
        let cycle = capped.lines().find(|l| l.starts_with("deadlock:")).unwrap_or_else(|| panic!("{capped}"));
        assert!(cycle.contains("\"alpha\"") && cycle.contains("\"beta\""), "{capped}");
        let holders = capped.lines().filter(|l| l.starts_with("lock held by green thread ")).collect::<Vec<_>>();
        assert_eq!(holders.len(), 2, "{capped}");
        assert!(holders.iter().all(|l| l.contains("(1 waiting): green thread ")), "{capped}");
        assert!(!capped.lines().any(|l| l.starts_with("  green thread ")), "{capped}");
        // Cancelling one may let the other take the lock and finish before its own cancel.
        alpha.cancel();
        beta.cancel();
        let _ = (alpha.join(), beta.join());
        text
    });
    let line = |name: &str| {
        text.lines()
            .find(|l| l.contains(&format!("\"{name}\"")) && l.contains("spawned at"))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_owned()
    };
    // Alpha holds the mutex and waits for the rwlock; beta the other way round.
    assert!(line("alpha").contains("parked (rwlock held for writing by green thread"), "{text}");
    assert!(line("beta").contains("parked (mutex held by green thread"), "{text}");
    let cycle = text.lines().find(|l| l.starts_with("deadlock:")).unwrap_or_else(|| panic!("no cycle in:\n{text}"));
    assert!(cycle.contains("\"alpha\"") && cycle.contains("\"beta\""), "{cycle}");
    assert!(cycle.contains("waits for a lock held by"), "{cycle}");
}

/// A cycle one of whose waits has a deadline breaks by itself: the dump names it a wait cycle
/// that lasts until that wait ends, not a deadlock.
#[test]
fn a_cycle_with_a_timed_wait_is_not_called_a_deadlock() {
    use std::sync::Arc;
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let text = rt.block_on(|| {
        let (first, second) = (Arc::new(green::sync::Mutex::new(())), Arc::new(green::sync::Mutex::new(())));
        let both_hold = Arc::new(green::sync::Barrier::new(2));
        let spawn =
            |name: &str, mine: Arc<green::sync::Mutex<()>>, theirs: Arc<green::sync::Mutex<()>>, timed: bool| {
                let both_hold = both_hold.clone();
                green::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        let _held = mine.lock().unwrap();
                        both_hold.wait();
                        // The timed one gives up after 2 s, and the other then gets its lock.
                        if timed {
                            assert!(theirs.try_lock_for(Duration::from_secs(2)).is_err());
                        } else {
                            drop(theirs.lock().unwrap());
                        }
                    })
                    .unwrap()
            };
        let patient = spawn("patient", first.clone(), second.clone(), true);
        let stubborn = spawn("stubborn", second, first, false);
        let text = dump_until(|text| text.contains("wait cycle") || text.contains("deadlock:"));
        patient.join().unwrap();
        stubborn.join().unwrap();
        text
    });
    assert!(!text.contains("deadlock:"), "{text}");
    let cycle = text
        .lines()
        .find(|l| l.starts_with("wait cycle, until a timed wait in it ends: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(cycle.contains("waits, with a deadline, for a lock held by"), "{cycle}");
    assert!(cycle.contains("\"patient\"") && cycle.contains("\"stubborn\""), "{cycle}");
}

/// A green thread parked on a `green::sync` primitive says which kind: a thousand consumers idle
/// on a channel and one green thread stuck on a condition variable do not share one line.
#[test]
fn the_dump_names_the_sync_primitive_each_green_thread_waits_on() {
    use green::sync::{Barrier, Condvar, Mutex, Semaphore, WaitGroup, mpmc, oneshot};
    use std::sync::Arc;
    common::bounded(LIMIT, || {
        green::run(|| {
            fn named<R>(name: &str, wait: impl FnOnce() -> R + Send + 'static) -> green::JoinHandle<()> {
                green::Builder::new().name(name.into()).spawn(move || drop(wait())).unwrap()
            }
            let (tx, rx) = mpmc::channel::<()>();
            let (full_tx, _full_rx) = mpmc::sync_channel::<()>(1);
            full_tx.try_send(()).unwrap();
            let (select_tx, select_rx) = mpmc::channel::<()>();
            let (once_tx, once_rx) = oneshot::channel::<()>();
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let barrier = Arc::new(Barrier::new(2));
            let semaphore = Arc::new(Semaphore::new(0));
            let group = Arc::new(WaitGroup::new());
            group.add(1);
            let (b, s, g) = (barrier.clone(), semaphore.clone(), group.clone());
            let waiters = vec![
                named("recv", move || rx.recv()),
                named("send", move || full_tx.send(())),
                named("select", move || green::select! { recv(select_rx) -> _ => {} }),
                named("oneshot", move || once_rx.recv()),
                named("condvar", move || {
                    let (lock, ready) = &*pair;
                    drop(ready.wait_while(lock.lock().unwrap(), |go| !*go));
                }),
                named("barrier", move || b.wait().is_leader()),
                named("semaphore", move || s.acquire().num_permits()),
                named("group", move || g.wait()),
            ];
            let expected = [
                ("recv", "parked (sync, channel recv)"),
                ("send", "parked (sync, channel send)"),
                ("select", "parked (sync, select)"),
                ("oneshot", "parked (sync, oneshot recv; its sender lives, unsent)"),
                ("condvar", "parked (sync, condvar)"),
                ("barrier", "parked (sync, barrier)"),
                ("semaphore", "parked (sync, semaphore)"),
                ("group", "parked (sync, wait group)"),
            ];
            let line_of = |text: &str, name: &str| {
                text.lines().find(|l| l.contains(&format!("\"{name}\"")) && l.contains("spawned at")).map(str::to_owned)
            };
            let text =
                dump_until(|t| expected.iter().all(|(n, state)| line_of(t, n).is_some_and(|l| l.contains(state))));
            for (name, state) in expected {
                let line = line_of(&text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
                assert!(line.contains(state), "{name} should be {state}:\n{text}");
            }
            for waiter in &waiters {
                waiter.cancel();
            }
            for waiter in waiters {
                assert!(waiter.join().is_err(), "a waiter ended without being cancelled:\n{text}");
            }
            drop((tx, select_tx, once_tx));
        });
    });
}

/// The channel named on the line of a green thread (`name`) parked on one: the address after
/// `waits on channel `.
fn channel_of(text: &str, name: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains(&format!("\"{name}\"")) && l.contains("spawned at"))?;
    let (_, rest) = line.split_once("; waits on channel ")?;
    rest.split_once(':').map(|(id, _)| id.to_owned())
}

/// A consumer waiting for good because a sender is kept alive elsewhere (here by a green
/// thread that holds it and sleeps; in a program, a struct or a clone never dropped) is shown
/// waiting on a channel that still has a sender, not just "parked (sync, channel recv)"; and a
/// sender parked on a full channel says how many receivers could take its message.
#[test]
fn a_receive_kept_waiting_by_a_live_sender_names_the_channel_and_its_sender() {
    use green::sync::mpmc;
    common::bounded(LIMIT, || {
        green::run(|| {
            let (tx, rx) = mpmc::channel::<u32>();
            let keeper = green::Builder::new()
                .name("keeper".into())
                .spawn(move || {
                    let _kept = tx;
                    green::sleep(Duration::from_secs(60));
                })
                .unwrap();
            let consumer = green::Builder::new().name("consumer".into()).spawn(move || rx.recv().is_ok()).unwrap();
            let (full_tx, full_rx) = mpmc::sync_channel::<u32>(1);
            full_tx.try_send(1).unwrap();
            let producer =
                green::Builder::new().name("producer".into()).spawn(move || full_tx.send(2).is_ok()).unwrap();
            let text = dump_until(|t| channel_of(t, "consumer").is_some() && channel_of(t, "producer").is_some());
            let line = |name: &str| {
                text.lines()
                    .find(|l| l.contains(&format!("\"{name}\"")) && l.contains("spawned at"))
                    .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
                    .to_owned()
            };
            let consumer_line = line("consumer");
            assert!(consumer_line.contains("parked (sync, channel recv)"), "{text}");
            let id = channel_of(&text, "consumer").unwrap_or_else(|| panic!("no channel named:\n{text}"));
            assert!(id.starts_with("0x") && id.len() > 2, "{text}");
            assert!(
                consumer_line.contains(
                    "1 sender(s) alive: a receive ends only when one sends or the last is dropped; 1 receiver(s)"
                ),
                "{text}"
            );
            let producer_line = line("producer");
            assert!(producer_line.contains("parked (sync, channel send)"), "{text}");
            assert!(
                producer_line
                    .contains("1 receiver(s) alive: a send ends only when one receives or the last is dropped"),
                "{text}"
            );
            assert_ne!(channel_of(&text, "producer"), Some(id), "two channels, one name:\n{text}");
            // One waiter per channel: no closing section.
            assert!(!text.contains("channels that several green threads are parked on"), "{text}");
            // The sleeping keeper waits on no channel.
            assert!(!line("keeper").contains("waits on channel"), "{text}");
            // The consumer first: the keeper's end would drop the sender and end its receive.
            consumer.cancel();
            assert!(consumer.join().is_err(), "the consumer ended without being cancelled:\n{text}");
            keeper.cancel();
            assert!(keeper.join().is_err());
            assert_eq!(full_rx.recv(), Ok(1));
            assert!(producer.join().unwrap());
        });
    });
}

/// Two receivers of one mpmc channel show the same channel, another channel's receiver a
/// different one, and the dump closes with the channel the two share.
#[test]
fn receivers_of_one_channel_show_the_same_channel() {
    use green::sync::mpmc;
    common::bounded(LIMIT, || {
        green::run(|| {
            let (tx, rx) = mpmc::channel::<()>();
            let (other_tx, other_rx) = mpmc::channel::<()>();
            let receivers: Vec<_> = [("first", rx.clone()), ("second", rx), ("other", other_rx)]
                .into_iter()
                .map(|(name, rx)| green::Builder::new().name(name.into()).spawn(move || rx.recv().is_ok()).unwrap())
                .collect();
            let names = ["first", "second", "other"];
            let text = dump_until(|t| names.iter().all(|n| channel_of(t, n).is_some()));
            let [first, second, other] = names.map(|n| channel_of(&text, n).unwrap_or_else(|| panic!("{n}:\n{text}")));
            assert_eq!(first, second, "{text}");
            assert_ne!(first, other, "{text}");
            assert!(
                text.lines()
                    .filter(|l| l.contains("spawned at"))
                    .any(|l| l.contains("\"first\"") && l.contains("1 sender(s) alive") && l.contains("2 receiver(s)")),
                "{text}"
            );
            let closing = text
                .lines()
                .skip_while(|l| *l != "channels that several green threads are parked on, the most waited on first:")
                .skip(1)
                .collect::<Vec<_>>();
            assert_eq!(closing.len(), 1, "only the shared channel closes the dump:\n{text}");
            let shared = closing[0];
            assert!(
                shared.starts_with(&format!(
                    "  channel {first}: 2 parked (2 receiving, 0 sending); 1 sender(s) and 2 receiver(s) alive; green \
                     threads "
                )),
                "{text}"
            );
            assert!(shared.contains("\"first\"") && shared.contains("\"second\""), "{text}");
            drop((tx, other_tx));
            for receiver in receivers {
                assert!(!receiver.join().unwrap(), "a receive got a message nobody sent:\n{text}");
            }
        });
    });
}

/// A writer queued behind readers waits for a lock that no single green thread holds: the dump
/// says it is held for reading (it used to say "held by nobody").
#[test]
fn a_writer_behind_readers_is_shown_waiting_for_readers() {
    use std::sync::Arc;
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let text = rt.block_on(|| {
        let lock = Arc::new(green::sync::RwLock::new(()));
        let read = lock.read().unwrap();
        let writer = {
            let lock = lock.clone();
            green::Builder::new().name("writer".into()).spawn(move || drop(lock.write().unwrap())).unwrap()
        };
        let text = dump_until(|text| text.lines().any(|l| l.contains("\"writer\"") && l.contains("parked (")));
        drop(read);
        writer.join().unwrap();
        text
    });
    let line = text.lines().find(|l| l.contains("\"writer\"")).unwrap_or_else(|| panic!("no writer in:\n{text}"));
    assert!(line.contains("parked (rwlock held for reading, or just released)"), "{text}");
    assert!(!line.contains("nobody"), "{text}");
}

/// Where each green thread parked, when the runtime records park backtraces.
#[test]
fn park_backtraces_show_where_each_green_thread_waits() {
    #[inline(never)]
    fn wait_in_a_function_with_a_findable_name(rx: green::sync::mpmc::Receiver<()>) {
        let _ = rx.recv();
    }
    let rt = green::Runtime::builder().workers(1).park_backtraces(true).build().unwrap();
    let text = rt.block_on(|| {
        let (tx, rx) = green::sync::mpmc::channel::<()>();
        let waiter = green::Builder::new()
            .name("waiter".into())
            .spawn(move || wait_in_a_function_with_a_findable_name(rx))
            .unwrap();
        // Look until it has parked.
        let text = dump_until(|text| text.contains("wait_in_a_function_with_a_findable_name"));
        drop(tx);
        waiter.join().unwrap();
        text
    });
    let at = text.find("\"waiter\"").unwrap_or_else(|| panic!("no waiter in:\n{text}"));
    let below = &text[at..];
    assert!(below.contains("parked at:"), "{text}");
    assert!(below.contains("wait_in_a_function_with_a_findable_name"), "{text}");
    // The frames that every green thread's backtrace shares, of the runtime that took it and
    // of the coroutine that runs the green thread, are left out.
    for runtime in [
        "record_park_backtrace",
        "green::park::",
        "green::runtime::",
        "catch_unwind",
        "corosensei",
        "stack_init_trampoline",
        "thread_start",
    ] {
        assert!(!below.contains(runtime), "{runtime} in:\n{text}");
    }
    assert!(below.contains("(the runtime's frames above and below left out)"), "{text}");
}

/// A green thread granted a lock while its worker is busy is no longer waiting: the dump must
/// not show it waiting for a lock it holds, nor call that a deadlock.
#[test]
fn a_green_thread_granted_a_lock_is_not_reported_waiting_for_itself() {
    use std::sync::Arc;
    let rt = green::Runtime::builder().workers(2).blocking_threshold(None).build().unwrap();
    // The scenario runs on worker 0, wherever `block_on` puts its own green thread.
    let scenario = move || {
        let lock = Arc::new(green::sync::RwLock::new(()));
        let held = lock.write().unwrap();
        // The waiter parks on worker 1.
        let waiter = {
            let lock = lock.clone();
            green::Builder::new().name("waiter".into()).worker(1).spawn(move || drop(lock.write().unwrap())).unwrap()
        };
        // Look until it has parked: not parked yet, it could not show the state in question.
        dump_until_parked("waiter");
        // Then worker 1 is kept busy, so the grant's wake waits in its inbox.
        let blocker = block_worker_1_for(Duration::from_millis(300));
        drop(held);
        let text = green::Handle::current().dump().to_string();
        waiter.join().unwrap();
        blocker.join().unwrap();
        text
    };
    let text = rt.block_on(|| green::Builder::new().worker(0).spawn(scenario).unwrap().join().unwrap());
    assert!(!text.contains("deadlock:"), "{text}");
    let line = text.lines().find(|l| l.contains("\"waiter\"")).unwrap_or_else(|| panic!("no waiter in:\n{text}"));
    assert!(!line.contains(" held"), "{text}");
}

/// A worker idle with a green thread waiting on a socket spins polling the OS, and such a poll
/// may take the notification a dump request sent: the worker must still see the request
/// before it sleeps. (It used to sleep through it, and the dump said the worker "did not
/// answer" after a second.)
#[test]
fn an_idle_worker_with_a_socket_waiter_answers_every_dump() {
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let (a, b) = green::net::unix::UnixStream::pair().unwrap();
        let reader = rt.spawn(move || std::io::Read::read(&mut &a, &mut [0; 8]).map(drop));
        while !rt.handle().dump().to_string().contains("parked (io") {
            std::thread::sleep(Duration::from_millis(1));
        }
        for round in 0..40 {
            // Let the worker go idle again: spinning, then asleep.
            std::thread::sleep(Duration::from_micros(200 * (round % 4)));
            let dump = rt.handle().dump().to_string();
            assert!(!dump.contains("did not answer"), "dump {round}:\n{dump}");
        }
        drop(b);
        reader.join().unwrap().unwrap();
    });
}

/// A green thread parked in I/O shows the fd it waits on and what the fd is: a connected
/// socket's two addresses, a listener, a pipe.
#[test]
fn a_green_thread_parked_in_io_shows_its_fd() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        rt.block_on(|| {
            let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut client = green::net::TcpStream::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            let (server_fd, listener_fd) = (server.as_raw_fd(), listener.as_raw_fd());
            let client_addr = client.local_addr().unwrap();
            let reader = green::Builder::new()
                .name("reader".into())
                .spawn(move || (&server).read(&mut [0; 8]).map(|n| (n, server)))
                .unwrap();
            let acceptor = green::Builder::new().name("acceptor".into()).spawn(move || listener.accept()).unwrap();
            let (pipe_read, mut pipe_write) = std::io::pipe().unwrap();
            let pipe_fd = pipe_read.as_raw_fd();
            let piper =
                green::Builder::new().name("piper".into()).spawn(move || green::io::wait_readable(&pipe_read)).unwrap();
            let text = dump_until(|text| text.matches("; waits to read fd ").count() == 3);
            let line = |name: &str| {
                text.lines().find(|l| l.contains(&format!("\"{name}\""))).unwrap_or_else(|| panic!("{text}")).to_owned()
            };
            let expected = format!("; waits to read fd {server_fd} (socket {addr}, peer {client_addr})");
            assert!(line("reader").ends_with(&expected), "{expected:?} in\n{text}");
            let expected = format!("; waits to read fd {listener_fd} (listening socket {addr})");
            assert!(line("acceptor").ends_with(&expected), "{expected:?} in\n{text}");
            // The readiness wait watches a duplicate of the caller's fd, but names the caller's
            // (the duplicate's number means nothing to the caller).
            let pipe = std::fs::read_link(format!("/proc/self/fd/{pipe_fd}")).unwrap();
            let expected = format!("; waits to read fd {pipe_fd} ({})", pipe.display());
            assert!(line("piper").ends_with(&expected), "{expected:?} in\n{text}");
            // Woken, they no longer say so.
            client.write_all(b"x").unwrap();
            let _second = green::net::TcpStream::connect(addr).unwrap();
            pipe_write.write_all(b"x").unwrap();
            assert_eq!(reader.join().unwrap().unwrap().0, 1);
            acceptor.join().unwrap().unwrap();
            piper.join().unwrap().unwrap();
            let text = green::Handle::current().dump().to_string();
            assert!(!text.contains("waits to read"), "{text}");
        });
    });
}

/// Two dumps at once: each caller gets every worker's answer (a worker used to keep one
/// request only, and the other caller waited a second for nothing), listing as many green
/// threads as it asked for (the worker answers both at one look).
#[test]
fn concurrent_dumps_are_both_answered() {
    let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().unwrap();
    let napping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let n = napping.clone();
    let napper = green::Builder::new()
        .name("napper".into())
        .spawn_on(rt.handle(), move || {
            n.store(true, std::sync::atomic::Ordering::SeqCst);
            green::sleep(Duration::from_secs(60));
        })
        .unwrap();
    assert!(common::eventually(Duration::from_secs(10), || napping.load(std::sync::atomic::Ordering::SeqCst)));
    let (started, running) = std::sync::mpsc::channel();
    // Holds the only worker (blocking it on purpose) while both requests are posted.
    let busy = rt.spawn(move || {
        started.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    });
    running.recv().unwrap();
    let dumpers: Vec<_> = [usize::MAX, 0]
        .into_iter()
        .enumerate()
        .map(|(i, listed)| {
            let handle = rt.handle().clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20 * i as u64));
                handle.dump_capped(listed).to_string()
            })
        })
        .collect();
    let dumps: Vec<String> = dumpers.into_iter().map(|dumper| dumper.join().unwrap()).collect();
    for dump in &dumps {
        assert!(!dump.contains("did not answer"), "{dump}");
    }
    assert!(dumps[0].contains("\"napper\" spawned at") && !dumps[0].contains("not listed"), "{}", dumps[0]);
    assert!(!dumps[1].lines().any(|l| l.starts_with("  green thread ")), "{}", dumps[1]);
    assert!(dumps[1].contains("green thread(s) not listed: this dump lists 0 at most"), "{}", dumps[1]);
    busy.join().unwrap();
    napper.cancel();
}

/// A dump asked for through a handle kept after its runtime was dropped answers at once,
/// saying the workers have exited (it used to wait a second for answers, then blame them).
#[test]
fn a_dump_after_the_runtime_is_gone_answers_at_once() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let handle = rt.handle().clone();
    drop(rt);
    let start = std::time::Instant::now();
    let dump = handle.dump().to_string();
    assert!(start.elapsed() < Duration::from_millis(500), "took {:?}", start.elapsed());
    assert_eq!(dump.matches("exited (the runtime has shut down)").count(), 2, "{dump}");
    assert!(!dump.contains("did not answer"), "{dump}");
}

/// Two runtimes of one process each print their own dump on the dump signal, both saying
/// "worker 0": the header names the runtime's worker threads, to tell them apart.
#[test]
fn a_dump_names_its_runtimes_worker_threads() {
    for name in ["alpha", "beta"] {
        let rt = green::Runtime::builder().workers(1).thread_name(name).build().unwrap();
        let dump = rt.handle().dump().to_string();
        let header = dump.lines().next().unwrap_or_default();
        assert!(header.contains(&format!("\"{name}-*\"")), "{dump}");
    }
}

/// `GREEN_DUMP_SIGNAL=USR1` prints a dump on that signal, naming the green threads, without a
/// line of code in the program. In a child process: the signal is the process's.
#[test]
fn the_dump_signal_prints_a_dump() {
    const NAME: &str = "the_dump_signal_prints_a_dump";
    if !common::child::is_child() {
        let out = common::child::run_child_with_env(NAME, Duration::from_secs(60), &[("GREEN_DUMP_SIGNAL", "USR1")]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {:?}\n{stderr}", out.status);
        assert!(stderr.contains("green runtime dump") && stderr.contains("\"napper\""), "{stderr}");
        return;
    }
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = started.clone();
    let napper = green::Builder::new()
        .name("napper".into())
        .spawn_on(rt.handle(), move || {
            s.store(true, std::sync::atomic::Ordering::SeqCst);
            green::sleep(Duration::from_secs(60));
        })
        .unwrap();
    // A dump names started green threads: wait until it has started.
    assert!(common::eventually(Duration::from_secs(10), || started.load(std::sync::atomic::Ordering::SeqCst)));
    assert!(
        common::eventually(Duration::from_secs(10), || green::signal::is_listening(green::signal::Signal::User1)),
        "the runtime does not listen for SIGUSR1"
    );
    let dump = raise_and_read_stderr(libc::SIGUSR1, |text| text.contains("\"napper\""));
    std::io::Write::write_all(&mut std::io::stderr(), dump.as_bytes()).unwrap();
    napper.cancel();
    drop(rt);
}

/// In a child: raises `signal` and returns what this process writes to stderr meanwhile, up to
/// the first time `until` holds for it (bounded by the parent, which kills a child after a
/// minute). The dumper prints from its own thread: a pipe stands in for stderr meanwhile.
fn raise_and_read_stderr(signal: libc::c_int, until: impl Fn(&str) -> bool) -> String {
    let (mut from_stderr, to_stderr) = std::io::pipe().unwrap();
    // SAFETY: dup and dup2 on fds this process holds open; no memory is involved.
    let stderr = unsafe { libc::dup(2) };
    assert!(stderr >= 0, "dup(2): {}", std::io::Error::last_os_error());
    // SAFETY: as above; fd 2 now refers to the pipe, which `to_stderr` keeps open too.
    assert!(unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&to_stderr), 2) } >= 0);
    drop(to_stderr);
    // SAFETY: raising a signal that a handler is installed for; no memory is involved.
    assert_eq!(unsafe { libc::raise(signal) }, 0);
    let mut dump = Vec::new();
    let mut chunk = [0; 4096];
    // Bounded by the parent, which kills this child after a minute.
    while !until(&String::from_utf8_lossy(&dump)) {
        let n = std::io::Read::read(&mut from_stderr, &mut chunk).unwrap();
        assert!(n > 0, "stderr closed before the dump came");
        dump.extend_from_slice(&chunk[..n]);
    }
    // SAFETY: puts the saved stderr back in its place, and closes the copy.
    unsafe {
        assert!(libc::dup2(stderr, 2) >= 0);
        libc::close(stderr);
    }
    String::from_utf8_lossy(&dump).into_owned()
}

/// `GREEN_DUMP_LISTED` sets how many green threads a dump on the signal lists (1000 without
/// it): a number (`_` allowed between digits), or `all`; anything else is said on stderr,
/// logger or not, and the 1000 stand.
#[test]
fn the_dump_listed_variable_caps_the_signal_dump() {
    const NAME: &str = "the_dump_listed_variable_caps_the_signal_dump";
    if !common::child::is_child() {
        for listed in ["0_2", "all", "lots"] {
            let env = [("GREEN_DUMP_SIGNAL", "USR1"), ("GREEN_DUMP_LISTED", listed)];
            let out = common::child::run_child_with_env(NAME, Duration::from_secs(60), &env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "GREEN_DUMP_LISTED={listed}: child failed: {:?}\n{stderr}", out.status);
            let warned = stderr.contains(
                "GREEN_DUMP_LISTED=lots is neither a number nor `all`; dumps on the signal \
                 list 1000 green threads at most",
            );
            assert_eq!(warned, listed == "lots", "GREEN_DUMP_LISTED={listed}: {stderr}");
        }
        return;
    }
    let listed = std::env::var("GREEN_DUMP_LISTED").unwrap();
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let nappers: Vec<_> = (0..5)
        .map(|i| {
            let started = started.clone();
            green::Builder::new()
                .name(format!("napper{i}"))
                .spawn_on(rt.handle(), move || {
                    started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    green::sleep(Duration::from_secs(60));
                })
                .unwrap()
        })
        .collect();
    assert!(common::eventually(Duration::from_secs(10), || started.load(std::sync::atomic::Ordering::SeqCst) == 5));
    assert!(
        common::eventually(Duration::from_secs(10), || green::signal::is_listening(green::signal::Signal::User1)),
        "the runtime does not listen for SIGUSR1"
    );
    // The dump ends with the note on what it left out, or with the last of the five.
    let complete = |text: &str| text.contains("for the dump signal)\n") || text.matches("\"napper").count() == 5;
    let dump = raise_and_read_stderr(libc::SIGUSR1, complete);
    let lines = dump.lines().filter(|l| l.starts_with("  green thread ")).count();
    match listed.as_str() {
        "0_2" => {
            assert_eq!(lines, 2, "{dump}");
            assert!(dump.contains("(3 green thread(s) not listed: this dump lists 2 at most"), "{dump}");
            assert!(dump.contains("  5 × spawned at tests/dump.rs:"), "{dump}");
        }
        _ => {
            assert_eq!(lines, 5, "{dump}");
            assert!(!dump.contains("not listed"), "{dump}");
        }
    }
    std::io::Write::write_all(&mut std::io::stderr(), dump.as_bytes()).unwrap();
    for napper in nappers {
        napper.cancel();
    }
    drop(rt);
}

/// What a child running test `name` (which starts and ends a runtime) writes to stderr with
/// `GREEN_DUMP_SIGNAL` set to `value`; the child must succeed.
fn stderr_with_dump_signal(name: &str, value: &str) -> String {
    let out = common::child::run_child_with_env(name, Duration::from_secs(60), &[("GREEN_DUMP_SIGNAL", value)]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {:?}\n{stderr}", out.status);
    stderr
}

/// A `GREEN_DUMP_SIGNAL` that names no signal green can wait for says so on stderr, logger or
/// not: otherwise the user finds out only when the signal ends the process instead.
#[test]
fn an_unknown_dump_signal_is_reported_without_a_logger() {
    const NAME: &str = "an_unknown_dump_signal_is_reported_without_a_logger";
    if !common::child::is_child() {
        let stderr = stderr_with_dump_signal(NAME, "USR3");
        assert!(stderr.contains("GREEN_DUMP_SIGNAL=USR3 names no signal"), "{stderr}");
        return;
    }
    green::run(|| {});
}

/// A `GREEN_DUMP_SIGNAL` of `INT` or `TERM` works, and says on stderr that the signal no longer
/// ends the process while a runtime runs: the way one stops a program is gone otherwise.
#[test]
fn a_dump_signal_that_stops_programs_is_warned_about() {
    const NAME: &str = "a_dump_signal_that_stops_programs_is_warned_about";
    if !common::child::is_child() {
        for name in ["INT", "sigterm"] {
            let stderr = stderr_with_dump_signal(NAME, name);
            assert!(stderr.contains("prints a dump and no longer ends the process"), "{name}: {stderr}");
        }
        let stderr = stderr_with_dump_signal(NAME, "USR1");
        assert!(!stderr.contains("no longer ends"), "USR1: {stderr}");
        return;
    }
    green::run(|| {});
}

/// `GREEN_PARK_BACKTRACES=1` turns park backtraces on without a line of code, as
/// `park_backtraces(true)` does. In a child process: the variable is read at build time.
#[test]
fn the_park_backtraces_variable_turns_them_on() {
    const NAME: &str = "the_park_backtraces_variable_turns_them_on";
    if !common::child::is_child() {
        let out = common::child::run_child_with_env(NAME, Duration::from_secs(60), &[("GREEN_PARK_BACKTRACES", "1")]);
        assert!(out.status.success(), "child failed: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        return;
    }
    let text = dump_of_a_parked_waiter();
    let at = text.find("\"waiter\"").unwrap_or_else(|| panic!("no waiter in:\n{text}"));
    assert!(text[at..].contains("parked at:"), "{text}");
}

/// A dump, from a runtime built with the default settings, of a green thread "waiter" parked
/// on a channel.
fn dump_of_a_parked_waiter() -> String {
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = green::sync::mpmc::channel::<()>();
        let waiter = green::Builder::new().name("waiter".into()).spawn(move || rx.recv()).unwrap();
        let text = dump_until(|text| text.lines().any(|l| l.contains("\"waiter\"") && l.contains("parked (")));
        drop(tx);
        let _ = waiter.join();
        text
    })
}

/// `GREEN_PARK_BACKTRACES=false` (or `off`, `no`) leaves park backtraces off, as `0` does: it
/// used to turn them on, as any value but `0` did.
#[test]
fn the_park_backtraces_variable_set_to_false_leaves_them_off() {
    const NAME: &str = "the_park_backtraces_variable_set_to_false_leaves_them_off";
    if !common::child::is_child() {
        for value in ["false", "OFF", "no"] {
            let out =
                common::child::run_child_with_env(NAME, Duration::from_secs(60), &[("GREEN_PARK_BACKTRACES", value)]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{value}: child failed: {:?}\n{stderr}", out.status);
        }
        return;
    }
    let text = dump_of_a_parked_waiter();
    let at = text.find("\"waiter\"").unwrap_or_else(|| panic!("no waiter in:\n{text}"));
    assert!(!text[at..].contains("parked at:"), "{text}");
}

/// A dump asked for by a destructor while its green thread unwinds cannot park: the worker it
/// holds says it cannot answer, the other worker answers, and nothing aborts.
#[test]
fn a_dump_from_a_green_thread_that_unwinds_does_not_park() {
    static TEXT: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    struct DumpsOnDrop;
    impl Drop for DumpsOnDrop {
        fn drop(&mut self) {
            *TEXT.lock().unwrap() = green::Handle::current().dump().to_string();
        }
    }
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let joined = rt.block_on(|| {
        green::spawn(|| {
            let _dumps = DumpsOnDrop;
            panic!("unwinding with a dump in a destructor");
        })
        .join()
    });
    assert!(joined.unwrap_err().is_panic());
    let text = TEXT.lock().unwrap().clone();
    assert!(text.contains("cannot answer: the dump was asked for on it by code that cannot park"), "{text}");
    assert!(text.matches("worker ").count() >= 2, "{text}");
}

/// A dump of many green threads opens with how many share each spawn site and state, the
/// largest group first.
#[test]
fn a_dump_of_many_green_threads_opens_with_a_summary() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let sleepers: Vec<_> = (0..60).map(|_| green::spawn(|| green::sleep(Duration::from_secs(60)))).collect();
            let (_tx, rx) = green::sync::mpmc::channel::<()>();
            let waiter = green::spawn(move || {
                let _ = rx.recv();
            });
            let text =
                dump_until(|t| t.matches("parked (sleep)").count() >= 60 && t.contains("parked (sync, channel recv)"));
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines[1].starts_with("blocking pool: "), "{text}");
            assert!(lines[2].starts_with("by spawn site and state: "), "{text}");
            assert!(
                lines[3].starts_with("  60 × spawned at tests/dump.rs:") && lines[3].contains(": parked (sleep), ")
            );
            assert!(lines.iter().any(
                |l| l.starts_with("  1 × spawned at tests/dump.rs:") && l.contains("parked (sync, channel recv), ")
            ));
            for sleeper in sleepers {
                sleeper.cancel();
            }
            waiter.cancel();
        });
    });
}

/// Each group of the summary says how long the longest of it has been in its state: handlers
/// parked in a read for far longer than a request takes (clients that never send), or green
/// threads as old as the server (a leak), show there without reading every line.
#[test]
fn the_summary_says_how_long_the_longest_of_each_group_has_been_so() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let old: Vec<_> = (0..50).map(|_| green::spawn(|| green::sleep(Duration::from_secs(60)))).collect();
            let waited = std::time::Instant::now();
            green::sleep(Duration::from_millis(300));
            let new: Vec<_> = (0..10).map(|_| green::spawn(green::park)).collect();
            let text =
                dump_until(|t| t.matches("parked (sleep)").count() >= 50 && t.matches("parked (park)").count() >= 10);
            let at_least = waited.elapsed().as_millis().min(300) as u64;
            let longest = |state: &str| -> u64 {
                let line = text
                    .lines()
                    .find(|l| l.starts_with("  ") && l.contains(" × spawned at tests/dump.rs:") && l.contains(state))
                    .unwrap_or_else(|| panic!("no summary line for {state}:\n{text}"));
                let ms = line.split(", the longest for ").nth(1).and_then(|r| r.strip_suffix(" ms"));
                ms.and_then(|ms| ms.parse().ok()).unwrap_or_else(|| panic!("no longest in {line:?}:\n{text}"))
            };
            let (sleeping, parked) = (longest(": parked (sleep), "), longest(": parked (park), "));
            assert!(sleeping >= at_least && sleeping < 60_000, "{sleeping} ms, at least {at_least}:\n{text}");
            assert!(parked < sleeping, "{parked} ms, not below {sleeping}:\n{text}");
            for handle in old.into_iter().chain(new) {
                handle.cancel();
            }
        });
    });
}

/// Among many green threads waiting to read, the one blocked writing to a peer that stopped
/// reading gets a line of its own in the summary: the direction is part of the state.
#[test]
fn a_blocked_writer_stands_out_from_readers_in_the_summary() {
    use std::io::{Read, Write};
    common::bounded(LIMIT, || {
        green::run(|| {
            let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (_client, (server, _)) = (green::net::TcpStream::connect(addr).unwrap(), listener.accept().unwrap());
            let (writing, (_not_reading, _)) =
                (green::net::TcpStream::connect(addr).unwrap(), listener.accept().unwrap());
            let server = std::sync::Arc::new(server);
            // 50 readers of one socket that nothing is written to.
            let readers: Vec<_> = (0..50)
                .map(|_| {
                    let server = server.clone();
                    green::spawn(move || (&*server).read(&mut [0; 8]))
                })
                .collect();
            // One writer to a peer that never reads: its socket buffers fill, and it parks.
            let writer = green::spawn(move || {
                let chunk = vec![0u8; 64 * 1024];
                loop {
                    if (&writing).write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
            let text = dump_until(|t| t.contains("parked (io, write)") && t.matches("parked (io, read)").count() >= 50);
            let summary = |count: &str, state: &str| {
                text.lines()
                    .any(|l| l.starts_with(&format!("  {count} × spawned at tests/dump.rs:")) && l.contains(state))
            };
            assert!(summary("50", ": parked (io, read), "), "{text}");
            assert!(summary("1", ": parked (io, write), "), "{text}");
            for reader in readers {
                reader.cancel();
            }
            writer.cancel();
        });
    });
}

/// A lock holder that others wait for opens the dump with what it is doing: here, holding a
/// green lock across a socket read that nothing answers.
#[test]
fn a_lock_holder_with_waiters_opens_the_dump_with_what_it_does() {
    use std::io::Read;
    common::bounded(LIMIT, || {
        green::run(|| {
            let listener = green::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let (_client, (server, _)) = (green::net::TcpStream::connect(addr).unwrap(), listener.accept().unwrap());
            let lock = std::sync::Arc::new(green::sync::Mutex::new(()));
            let lock2 = lock.clone();
            let holder = green::Builder::new()
                .name("holder".into())
                .spawn(move || {
                    let _guard = lock2.lock().unwrap();
                    (&server).read(&mut [0; 8])
                })
                .unwrap();
            // The holder first, then the waiters (one spawned before it locks would just run).
            while lock.try_lock().is_ok() {
                green::sleep(Duration::from_millis(1));
            }
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let lock = lock.clone();
                    green::spawn(move || drop(lock.lock()))
                })
                .collect();
            let text =
                dump_until(|t| t.contains("(3 waiting)") && t.contains("\"holder\"") && t.contains("(io, read)"));
            let line =
                text.lines().find(|l| l.starts_with("lock held by green thread ")).unwrap_or_else(|| panic!("{text}"));
            assert!(line.contains(" (3 waiting): green thread "), "{text}");
            assert!(line.contains("\"holder\" spawned at tests/dump.rs:"), "{text}");
            assert!(line.contains(": parked (io, read) for ") && line.contains("; waits to read fd "), "{text}");
            // The opening lines come before the workers' answers.
            assert!(text.find(line).unwrap() < text.find("\nworker 0:").unwrap(), "{text}");
            holder.cancel();
            for waiter in waiters {
                waiter.join().unwrap();
            }
            let _ = holder.join();
            let text = green::Handle::current().dump().to_string();
            assert!(!text.contains("lock held by green thread "), "{text}");
        });
    });
}

/// A capped dump lists as many green threads as asked, says how many it left out, and its
/// summary still counts every one (by spawn site and state, whatever a green thread's name).
#[test]
fn a_capped_dump_lists_so_many_and_counts_the_rest() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let sleepers: Vec<_> = (0..200)
                .map(|i| {
                    // A name that looks like a spawn site and a time must not confuse the summary.
                    let name = if i == 0 { "x spawned at y for 1 ms; z".to_owned() } else { format!("s{i}") };
                    green::Builder::new().name(name).spawn(|| green::sleep(Duration::from_secs(60))).unwrap()
                })
                .collect();
            dump_until(|t| t.matches("parked (sleep)").count() >= 200);
            let text = green::Handle::current().dump_capped(50).to_string();
            let listed = text.lines().filter(|l| l.starts_with("  green thread ")).count();
            assert_eq!(listed, 50, "{text}");
            let summary =
                text.lines().find(|l| l.contains(": parked (sleep), ") && l.starts_with("  200 × spawned at "));
            assert!(summary.is_some_and(|l| l.contains("tests/dump.rs:")), "{text}");
            // Every started green thread but the 50 listed (the main one too: it is running).
            let note =
                text.lines().find(|l| l.contains("green thread(s) not listed")).unwrap_or_else(|| panic!("{text}"));
            let left_out: usize = note.trim_start_matches('(').split(' ').next().unwrap().parse().unwrap();
            assert_eq!(left_out, 201 - 50, "{text}");
            assert!(note.contains("lists 50 at most"), "{text}");
            // The uncapped dump still lists every one, and says nothing is left out.
            let all = green::Handle::current().dump().to_string();
            assert!(all.lines().filter(|l| l.starts_with("  green thread ")).count() >= 201, "{all}");
            assert!(!all.contains("not listed"), "{all}");
            for sleeper in sleepers {
                sleeper.cancel();
            }
        });
    });
}

/// `dump_capped(0)` is the summary alone, even of a few green threads; the green thread that
/// holds a lock others wait for still opens it with its line.
#[test]
fn a_dump_capped_to_nothing_keeps_the_summary_and_the_lock_holders() {
    common::bounded(LIMIT, || {
        green::run(|| {
            let lock = std::sync::Arc::new(green::sync::Mutex::new(()));
            let holder = {
                let lock = lock.clone();
                green::Builder::new()
                    .name("holder".into())
                    .spawn(move || {
                        let _guard = lock.lock().unwrap();
                        green::sleep(Duration::from_secs(60));
                    })
                    .unwrap()
            };
            dump_until(|t| t.contains("\"holder\"") && t.contains("parked (sleep)"));
            let waiter = {
                let lock = lock.clone();
                green::spawn(move || drop(lock.lock()))
            };
            let text = dump_until(|t| t.contains("parked (mutex held by"));
            assert!(text.contains("parked (mutex held by"), "{text}");
            let text = green::Handle::current().dump_capped(0).to_string();
            assert_eq!(text.lines().filter(|l| l.starts_with("  green thread ")).count(), 0, "{text}");
            assert!(text.contains("by spawn site and state: 3 green threads"), "{text}");
            let holds =
                text.lines().find(|l| l.starts_with("lock held by green thread ")).unwrap_or_else(|| panic!("{text}"));
            assert!(holds.contains("(1 waiting): green thread ") && holds.contains("\"holder\""), "{text}");
            assert!(holds.contains("parked (sleep)"), "{text}");
            assert!(text.contains("3 green thread(s) not listed"), "{text}");
            holder.cancel();
            waiter.cancel();
            let _ = (holder.join(), waiter.join());
        });
    });
}

/// A dump of one runtime asked for on another runtime's worker stack, where the caller cannot
/// park, still hears every worker of the runtime it dumps: only the caller's own worker, in its
/// own runtime, cannot answer (a worker of the other runtime with the same number was skipped).
#[test]
fn a_dump_from_another_runtimes_worker_stack_hears_every_worker() {
    common::bounded(LIMIT, || {
        let dumped = green::Runtime::builder().workers(1).thread_name("dumped").build().unwrap();
        let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = started.clone();
        let napper = green::Builder::new()
            .name("napper".into())
            .spawn_on(dumped.handle(), move || {
                s.store(true, std::sync::atomic::Ordering::SeqCst);
                green::sleep(Duration::from_secs(60));
            })
            .unwrap();
        assert!(common::eventually(Duration::from_secs(10), || started.load(std::sync::atomic::Ordering::SeqCst)));
        let handle = dumped.handle().clone();
        let caller =
            green::Runtime::builder().workers(1).thread_name("caller").blocking_threshold(None).build().unwrap();
        let text = caller.block_on(move || green::on_worker_stack(move || handle.dump().to_string()));
        assert!(!text.contains("cannot answer"), "{text}");
        assert!(text.contains("\"napper\"") && text.contains("parked (sleep)"), "{text}");
        napper.cancel();
    });
}

/// A dump posted to a worker that exits before it looks at its requests hears at once that it
/// exited: the worker answers what is left as it exits. (It used to be waited for a second and
/// then blamed: "did not answer; busy in green thread (none: outside any green thread)".) The
/// request is posted while the exiting worker drops an unstarted green thread's closure, after
/// its last look at its requests.
#[test]
fn a_dump_posted_as_its_worker_exits_is_answered_at_once() {
    struct DumpsAsDropped {
        handle: green::Handle,
        dump: std::sync::mpsc::Sender<(String, Duration)>,
    }
    impl Drop for DumpsAsDropped {
        fn drop(&mut self) {
            // On the worker's own stack, after its last look at its requests: the dump comes
            // from another thread, posted while this destructor still holds the worker.
            let handle = self.handle.clone();
            let dump = self.dump.clone();
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                let text = handle.dump().to_string();
                let _ = dump.send((text, start.elapsed()));
            });
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().unwrap();
        let (started, running) = std::sync::mpsc::channel();
        // Holds the only worker while the green thread to drop is queued and the shutdown begins.
        let busy = rt.spawn(move || {
            started.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        });
        running.recv().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let guard = DumpsAsDropped { handle: rt.handle().clone(), dump: tx };
        let unstarted = rt.spawn(move || drop(guard));
        drop(rt);
        let (text, took) = rx.recv_timeout(Duration::from_secs(10)).expect("no dump");
        assert!(!text.contains("did not answer"), "{text}");
        assert!(text.contains("worker 0: exited"), "{text}");
        assert!(took < Duration::from_millis(900), "took {took:?}: {text}");
        drop((busy, unstarted));
    });
}

/// Green threads spawned from outside the workers wait in the runtime's shared queue until a
/// worker takes them: on no worker's list, they are counted in the dump's first line.
#[test]
fn green_threads_in_the_shared_queue_are_counted() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().unwrap();
    // The only worker is held, so nothing takes the queued ones.
    let (held, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let holder = {
        let (held, release) = (held.clone(), release.clone());
        rt.spawn(move || {
            held.store(true, Ordering::Release);
            while !release.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    while !held.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let queued: Vec<_> = (0..3).map(|_| rt.spawn(|| ())).collect();
    let text = rt.handle().dump_capped(0).to_string();
    release.store(true, Ordering::Release);
    holder.join().unwrap();
    for q in queued {
        q.join().unwrap();
    }
    let first = text.lines().next().unwrap_or_default();
    assert!(first.contains("3 unstarted in the shared queue"), "{text}");
}

/// A worker held by blocking code when a dump is asked for answers once it lets go, when the
/// green thread that held it may have ended: its heading says how late it took the dump up and
/// which green thread it was running when asked.
#[test]
fn a_worker_late_to_a_dump_names_what_it_ran_when_asked() {
    let rt = green::Runtime::builder().workers(2).build().unwrap();
    let scenario = || {
        let blocker = block_worker_1_for(Duration::from_millis(900));
        let text = green::Handle::current().dump().to_string();
        blocker.join().unwrap();
        text
    };
    // On worker 0: `block_on`'s green thread may start on either worker, and on worker 1 it
    // would be held with it, asking for the dump only once the blocking code had ended.
    let text = rt.block_on(|| green::Builder::new().worker(0).spawn(scenario).unwrap().join().unwrap());
    let heading = text.lines().position(|l| l.starts_with("worker 1: ")).unwrap_or_else(|| panic!("{text}"));
    let note = text.lines().nth(heading + 1).unwrap_or_else(|| panic!("{text}"));
    assert!(note.starts_with("  (this worker took the dump up only after "), "{text}");
    let ms: u64 = note["  (this worker took the dump up only after ".len()..]
        .split(' ')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!((100..60_000).contains(&ms), "{ms} ms:\n{text}");
    assert!(note.contains("it was running green thread ") && note.contains("spawned at tests/dump.rs:"), "{text}");
    // Worker 0, which the caller parks on, took it up at once.
    assert_eq!(text.matches("took the dump up").count(), 1, "{text}");
}

/// A green thread that ticks but never parks holds its worker only for a time slice at a time
/// when a dump waits: the worker answers between two slices, and shows it ready.
#[test]
fn a_worker_busy_with_a_ticking_green_thread_answers_between_two_slices() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let text = rt.block_on(|| {
        let (started, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let burner = {
            let (started, stop) = (started.clone(), stop.clone());
            green::Builder::new()
                .name("burner".into())
                .spawn(move || {
                    started.store(true, Ordering::Release);
                    let start = std::time::Instant::now();
                    // Alone on the worker once the test's green thread parks in the dump.
                    while !stop.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(10) {
                        green::tick();
                    }
                })
                .unwrap()
        };
        while !started.load(Ordering::Acquire) {
            green::yield_now();
        }
        let text = green::Handle::current().dump().to_string();
        stop.store(true, Ordering::Release);
        burner.join().unwrap();
        text
    });
    assert!(!text.contains("answer"), "the worker did not answer between two slices:\n{text}");
    let line = text.lines().find(|l| l.contains("\"burner\"")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(": ready and not parked for "), "{text}");
    // The caller, parked for the answers, says so.
    assert_eq!(text.matches(": parked (taking a dump) for ").count(), 1, "{text}");
}

/// A dump's caller past its `green::timeout` deadline, or cancelled, stops waiting for a worker
/// held by blocking code (which would answer only after the second's timeout), and says so.
#[test]
fn a_dump_caller_at_its_deadline_or_cancelled_stops_waiting() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let rt = green::Runtime::builder().workers(2).blocking_threshold(None).build().unwrap();
    // The scenario runs on worker 0, wherever `block_on` puts its own green thread (on worker
    // 1, it would wait behind the holder).
    let scenario = || {
        // Worker 1 is held in blocking code until released.
        let (held, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let holder = {
            let (held, release) = (held.clone(), release.clone());
            green::Builder::new()
                .worker(1)
                .spawn(move || {
                    held.store(true, Ordering::Release);
                    let start = std::time::Instant::now();
                    while !release.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(20) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .unwrap()
        };
        while !held.load(Ordering::Acquire) {
            green::sleep(Duration::from_millis(1));
        }
        // On worker 0, with a 50 ms deadline.
        let timed = green::Builder::new()
            .worker(0)
            .spawn(|| {
                let start = std::time::Instant::now();
                let text = green::timeout(Duration::from_millis(50), || green::Handle::current().dump().to_string());
                (text.expect("the dump itself does not unwind"), start.elapsed())
            })
            .unwrap()
            .join()
            .unwrap();
        // On worker 0, cancelled 50 ms in: it stops waiting, then unwinds at its next
        // cancellation point, handing the dump out first.
        // (A std channel: a green one's send is a cancellation point itself.)
        let (tx, rx) = std::sync::mpsc::channel();
        let cancelled = green::Builder::new()
            .worker(0)
            .spawn(move || {
                let start = std::time::Instant::now();
                let text = green::Handle::current().dump().to_string();
                tx.send((text, start.elapsed())).unwrap();
                green::yield_now();
            })
            .unwrap();
        green::sleep(Duration::from_millis(50));
        cancelled.cancel();
        assert!(cancelled.join().unwrap_err().is_cancelled());
        let by_cancel = rx.recv().unwrap();
        release.store(true, Ordering::Release);
        holder.join().unwrap();
        (timed, by_cancel)
    };
    let (dumped_by_timeout, dumped_by_cancel) =
        rt.block_on(move || green::Builder::new().worker(0).spawn(scenario).unwrap().join().unwrap());
    for ((text, took), why) in [
        (dumped_by_timeout, "worker 1: not waited for: the dump's caller reached its green::timeout deadline"),
        (dumped_by_cancel, "worker 1: not waited for: the dump's caller was cancelled"),
    ] {
        assert!(text.contains(why), "{text}");
        // Before, the caller waited out the second in which a worker may take the request up.
        assert!(took < Duration::from_millis(900), "took {took:?}:\n{text}");
    }
}

/// A green thread woken while its worker is held by blocking code has parked for a moment only,
/// then waited for a turn: its line says when its park began, not that it parked so long. (It
/// used to read "(woken) after a park of at least 300 ms", the wait for a turn taken for a park.)
#[test]
fn a_woken_green_thread_says_when_its_park_began_not_that_it_lasted() {
    use std::sync::Arc;
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(2).blocking_threshold(None).build().unwrap();
        let scenario = move || {
            let gate = Arc::new(green::sync::Semaphore::new(0));
            // Parks on worker 1 at once.
            let sleeper = {
                let gate = gate.clone();
                green::Builder::new().name("sleeper".into()).worker(1).spawn(move || gate.acquire().forget()).unwrap()
            };
            dump_until_parked("sleeper");
            // Worker 1 held by blocking code; the wake waits in its inbox meanwhile.
            let blocker = block_worker_1_for(Duration::from_millis(300));
            gate.add_permits(1);
            let text = green::Handle::current().dump().to_string();
            sleeper.join().unwrap();
            blocker.join().unwrap();
            text
        };
        let text = rt.block_on(|| green::Builder::new().worker(0).spawn(scenario).unwrap().join().unwrap());
        let line = text.lines().find(|l| l.contains("\"sleeper\"")).unwrap_or_else(|| panic!("no sleeper in:\n{text}"));
        assert!(!line.contains("at least"), "a wait for a turn told as a park:\n{text}");
        assert!(line.contains(": ready (woken) from a park begun ") && line.contains(" ms ago;"), "{text}");
        // The park began before the 300 ms of blocking code: the dump reads the clock afresh
        // (the coarse clock it used could be stale, with the monitor off: "10 ms" was seen).
        let begun: u64 =
            line.split("from a park begun ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
        assert!(begun >= 300, "a park begun before 300 ms of blocking code told as begun {begun} ms ago:\n{text}");
    });
}

/// A park begun after a long busy stretch is timed from its start, with the monitor off: the
/// coarse clock that stamps parks is refreshed by a busy worker that reads the time anyway
/// (for its timers or sockets), not only by the monitor and by idle workers. It used to stamp
/// the park with the time the worker last slept, a second too early here.
#[test]
fn a_park_after_a_busy_stretch_is_timed_from_its_start() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    common::bounded(LIMIT, || {
        let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().unwrap();
        let handle = rt.handle().clone();
        let gate = Arc::new(green::sync::Semaphore::new(0));
        let parking = Arc::new(AtomicBool::new(false));
        // A timer pending all along, as most servers have: the worker reads the clock for it.
        let sleeper = rt.spawn(|| green::sleep(Duration::from_secs(60)));
        let busy = {
            let (gate, parking) = (gate.clone(), parking.clone());
            green::Builder::new()
                .name("busy".into())
                .spawn_on(&handle, move || {
                    // A second of work that yields but never waits: the worker never sleeps.
                    let start = std::time::Instant::now();
                    while start.elapsed() < Duration::from_secs(1) {
                        green::yield_now();
                    }
                    parking.store(true, Ordering::Release);
                    gate.acquire().forget();
                })
                .unwrap()
        };
        while !parking.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = loop {
            let text = handle.dump().to_string();
            if text.lines().any(|l| l.contains("\"busy\"") && l.contains("parked (")) {
                break text;
            }
        };
        gate.add_permits(1);
        busy.join().unwrap();
        sleeper.cancel();
        let line = text.lines().find(|l| l.contains("\"busy\"")).unwrap();
        let parked: u64 = line.split(" for ").nth(1).and_then(|r| r.split(' ').next()).unwrap().parse().unwrap();
        // Dumped at once after the park began; a generous bound for a loaded machine, well under
        // the second of work before it.
        assert!(parked < 500, "a park begun just now told as {parked} ms long:\n{text}");
        drop(rt);
    });
}

/// A dump's count of live green threads is exact once every worker has answered: one taken
/// just after a `block_on` returned used to count its finished green thread, not yet counted
/// out by its worker, and said "1 live" while it listed none.
#[test]
fn a_dump_right_after_block_on_counts_no_live_green_thread() {
    let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().unwrap();
    for round in 0..50 {
        rt.block_on(|| ());
        let text = rt.handle().dump().to_string();
        assert!(text.starts_with("green runtime dump: 0 live green thread(s)"), "round {round}:\n{text}");
    }
}
