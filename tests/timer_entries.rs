//! Timed waits keep one or two timer entries per green thread: a wait that ends early leaves
//! its entry to be re-armed for the next wait, rather than one more entry per park. And the
//! lazy re-arming loses no timeout: a lost one hangs a test here. (Every timed wait checks its
//! own deadline again when it wakes, so an early wake from the timers would not show through
//! these calls; the model test in `src/runtime/timers.rs` checks the timers' own timing.)

mod io_util;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use green::net::{TcpListener, TcpStream};

/// How long a test may take before it counts as hung (a lost wakeup), instead of hanging the run.
const LIMIT: Duration = Duration::from_secs(60);

/// Timer entries on the only worker, as it published them when it last went idle.
fn timer_entries() -> usize {
    // A short sleep lets the worker go idle, and it publishes its counters as it does.
    green::sleep(Duration::from_millis(5));
    let metrics = green::Handle::current().metrics();
    assert_eq!(metrics.workers.len(), 1);
    metrics.workers[0].timers
}

/// A connected pair whose server side echoes until end of stream, after `delay` per message.
fn echo_pair(delay: Duration) -> (TcpStream, green::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let echo = green::spawn(move || {
        let mut buf = [0u8; 64];
        loop {
            match server.read(&mut buf).unwrap() {
                0 => return,
                n => {
                    if !delay.is_zero() {
                        green::sleep(delay);
                    }
                    server.write_all(&buf[..n]).unwrap();
                }
            }
        }
    });
    (client, echo)
}

/// Timer entries after 2,000 echoes over a connection whose reads have a 60 s timeout, with
/// `between` run after each echo, less those before.
fn entries_after_timed_echoes(between: fn()) -> usize {
    io_util::runtime(1).block_on(|| {
        let (mut client, echo) = echo_pair(Duration::ZERO);
        client.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let before = timer_entries();
        for i in 0..2_000u32 {
            client.write_all(&i.to_le_bytes()).unwrap();
            let mut back = [0u8; 4];
            client.read_exact(&mut back).unwrap();
            assert_eq!(u32::from_le_bytes(back), i);
            between();
        }
        let after = timer_entries();
        drop(client);
        echo.join().unwrap();
        after.saturating_sub(before)
    })
}

#[test]
fn reads_with_a_timeout_keep_one_timer_entry_not_one_per_read() {
    // One entry speaks for the client's reads; the other is the sleep that measures.
    let added = entries_after_timed_echoes(|| {});
    assert!(added <= 2, "{added} more timer entries after 2,000 timed reads");
}

#[test]
fn timed_reads_between_short_sleeps_keep_two_timer_entries() {
    // A deadline earlier than the read's needs its own entry, and the read's entry must serve
    // the next read rather than be left behind.
    let added = entries_after_timed_echoes(|| green::sleep(Duration::from_micros(1)));
    assert!(added <= 3, "{added} more timer entries after 2,000 timed reads, each followed by a short sleep");
}

#[test]
fn deadlines_stepping_down_past_the_spare_do_not_pile_up() {
    // After each timed read (60 s): a 5 s receive that a message cuts short, then a short
    // sleep. The sleep's deadline is earlier than the receive's while the read's entry is kept
    // as the spare, so each round leaves the receive's entry to speak for nobody until its
    // deadline; the worker drops those once they are most of the heap.
    let added = entries_after_timed_echoes(|| {
        let (tx, rx) = green::sync::mpmc::channel::<()>();
        let sender = green::spawn(move || tx.send(()).unwrap());
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        sender.join().unwrap();
        green::sleep(Duration::from_micros(1));
    });
    assert!(added <= 140, "{added} more timer entries after 2,000 rounds of three waits");
}

#[test]
fn a_timeout_re_armed_after_early_waits_still_comes_in_full() {
    const TIMEOUT: Duration = Duration::from_millis(80);
    io_util::runtime(1).block_on(|| {
        let (mut client, echo) = echo_pair(Duration::from_millis(10));
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        // Reads that end early, for well over one timeout: the first read's entry comes due
        // while a later read waits, and is pushed again for it.
        let start = Instant::now();
        let mut i = 0u8;
        while start.elapsed() < TIMEOUT * 3 {
            client.write_all(&[i]).unwrap();
            let mut back = [0u8; 1];
            client.read_exact(&mut back).unwrap();
            assert_eq!(back[0], i);
            i = i.wrapping_add(1);
        }
        // Now nothing comes: the read times out, a full timeout after it began.
        let began = Instant::now();
        let err = client.read(&mut [0u8; 1]).unwrap_err();
        let waited = began.elapsed();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        assert!(waited >= TIMEOUT, "timed out after {waited:?}, before its {TIMEOUT:?}");
        assert!(waited < TIMEOUT * 50, "timed out after {waited:?}");
        drop(client);
        echo.join().unwrap();
    });
}

#[test]
fn a_shorter_deadline_after_a_longer_one_fires_on_time() {
    io_util::runtime(1).block_on(|| {
        let me = green::current();
        // A long timed park ended early leaves its entry armed far ahead...
        let waker = green::spawn(move || me.unpark());
        let began = Instant::now();
        green::park_timeout(Duration::from_secs(30));
        assert!(began.elapsed() < Duration::from_secs(10), "the unpark did not end the park");
        waker.join().unwrap();
        // ...and a shorter one after it must not wait for that entry.
        for short in [Duration::from_millis(40), Duration::from_millis(20)] {
            let began = Instant::now();
            green::sleep(short);
            let slept = began.elapsed();
            assert!(slept >= short, "slept {slept:?} for {short:?}");
            assert!(slept < Duration::from_secs(5), "slept {slept:?} for {short:?}");
        }
        // A longer deadline after the shorter ones still fires.
        let began = Instant::now();
        green::park_timeout(Duration::from_millis(60));
        let parked = began.elapsed();
        assert!(parked >= Duration::from_millis(60) && parked < Duration::from_secs(5), "parked {parked:?}");
    });
}

/// Green threads on two workers mixing sleeps, parks with a timeout (the first cut short by
/// an unpark from the main green thread) and channel receives with a timeout that peers' sends
/// cut short, so that entries are left behind, superseded and re-armed in every order: every
/// wait ends (a lost re-arm hangs a receive here), and none that times out returns before its
/// timeout (which the calls themselves make sure of).
#[test]
fn mixed_timed_waits_cut_short_from_other_threads_all_end() {
    io_util::bounded(LIMIT, || {
        use green::sync::mpmc::{self, RecvTimeoutError};
        const THREADS: u64 = 64;
        const ROUNDS: u64 = 60;
        io_util::runtime(2).block_on(|| {
            let (tx, rx) = mpmc::channel::<u64>();
            let handles: Vec<_> = (0..THREADS)
                .map(|id| {
                    let (tx, rx) = (tx.clone(), rx.clone());
                    green::spawn(move || {
                        let mut rng = io_util::Rng::new(id + 1);
                        let mut early = Vec::new();
                        for _ in 0..ROUNDS {
                            let timeout = Duration::from_micros(rng.range(50, 2_000) as u64);
                            let began = Instant::now();
                            match rng.range(0, 3) {
                                0 => {
                                    green::sleep(timeout);
                                    if began.elapsed() < timeout {
                                        early.push(("sleep", timeout, began.elapsed()));
                                    }
                                }
                                1 => {
                                    // Ends by its timeout or by a message a peer sent; only a
                                    // timeout is checked.
                                    if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(timeout)
                                        && began.elapsed() < timeout
                                    {
                                        early.push(("recv_timeout", timeout, began.elapsed()));
                                    }
                                }
                                _ => {
                                    // May end early by design (an unpark, or spuriously): nothing
                                    // to check but that it returns; it leaves an entry behind.
                                    green::park_timeout(timeout);
                                    // Now and then, cut a peer's receive short: most receives
                                    // must time out, after earlier ones were cut short.
                                    if rng.range(0, 4) == 0 {
                                        tx.send(id).unwrap();
                                    }
                                }
                            }
                        }
                        early
                    })
                })
                .collect();
            for handle in &handles {
                handle.thread().unpark();
            }
            for handle in handles {
                let early = handle.join().unwrap();
                assert!(early.is_empty(), "timed waits that returned early: {early:?}");
            }
        });
    });
}
