//! `green::select!`: ready, empty, closed and timed-out arms, sends, `default`, fairness, many
//! channels, and selects racing each other across workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::sync::mpmc::{self, RecvError, SendError};

mod common;
use common::bounded;

#[test]
fn a_ready_arm_runs_at_once() {
    green::run(|| {
        let (tx, rx) = mpmc::channel();
        let (_tx2, rx2) = mpmc::channel::<u8>();
        tx.send(1).unwrap();
        let got = green::select! {
            recv(rx2) -> _ => panic!("empty"),
            recv(rx) -> v => v.unwrap(),
        };
        assert_eq!(got, 1);
    });
}

#[test]
fn an_empty_select_waits_for_a_message() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (tx_a, rx_a) = mpmc::channel::<u32>();
            let (tx_b, rx_b) = mpmc::channel::<u32>();
            green::spawn(move || {
                green::sleep(Duration::from_millis(5));
                tx_b.send(2).unwrap();
                drop(tx_a);
            });
            let got = green::select! {
                recv(rx_a) -> v => ("a", v),
                recv(rx_b) -> v => ("b", v),
            };
            assert_eq!(got, ("b", Ok(2)));
        });
    });
}

#[test]
fn a_closed_channel_is_ready_with_its_error() {
    green::run(|| {
        let (tx, rx) = mpmc::channel::<u32>();
        let (_keep, rx_open) = mpmc::channel::<u32>();
        drop(tx);
        let got = green::select! {
            recv(rx_open) -> _ => unreachable!(),
            recv(rx) -> v => v,
        };
        assert_eq!(got, Err(RecvError));

        let (tx, rx) = mpmc::sync_channel::<String>(0);
        drop(rx);
        let got = green::select! {
            send(tx, "x".to_string()) -> r => r,
        };
        assert_eq!(got, Err(SendError("x".to_string())));
    });
}

#[test]
fn timeout_arm() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (_tx, rx) = mpmc::channel::<u32>();
            let start = Instant::now();
            let got = green::select! {
                recv(rx) -> _ => "message",
                timeout(Duration::from_millis(20)) => "timed out",
            };
            assert_eq!(got, "timed out");
            assert!(start.elapsed() >= Duration::from_millis(20));
            // A message before the timeout wins.
            let (tx, rx) = mpmc::channel::<u32>();
            green::spawn(move || {
                green::sleep(Duration::from_millis(2));
                tx.send(4).unwrap();
            });
            let got = green::select! {
                recv(rx) -> v => v.unwrap(),
                timeout(Duration::from_secs(10)) => 0,
            };
            assert_eq!(got, 4);
        });
    });
}

#[test]
fn default_arm() {
    green::run(|| {
        let (tx, rx) = mpmc::channel::<u32>();
        let got = green::select! {
            recv(rx) -> _ => "message",
            default => "nothing ready",
        };
        assert_eq!(got, "nothing ready");
        tx.send(1).unwrap();
        let got = green::select! {
            recv(rx) -> _ => "message",
            default => "nothing ready",
        };
        assert_eq!(got, "message");
        // Only a default.
        let only = green::select! { default => 5 };
        assert_eq!(only, 5);
    });
}

#[test]
fn send_arms_on_full_channels_wait_for_room() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (tx1, rx1) = mpmc::sync_channel::<u32>(1);
            let (tx2, rx2) = mpmc::sync_channel::<u32>(0);
            tx1.send(0).unwrap();
            let reader = green::spawn(move || {
                green::sleep(Duration::from_millis(5));
                rx2.recv().unwrap()
            });
            let which = green::select! {
                send(tx1, 10) -> r => { r.unwrap(); 1 }
                send(tx2, 20) -> r => { r.unwrap(); 2 }
            };
            assert_eq!(which, 2);
            assert_eq!(reader.join().unwrap(), 20);
            // The value of the arm that did not run was dropped, not sent.
            assert_eq!(rx1.try_recv(), Ok(0));
            assert!(rx1.try_recv().is_err());
        });
    });
}

#[test]
fn bodies_may_break_and_return() {
    fn first_even(rx: &mpmc::Receiver<u32>) -> Option<u32> {
        loop {
            green::select! {
                recv(rx) -> v => {
                    let v = v.ok()?;
                    if v % 2 == 0 {
                        return Some(v);
                    }
                    continue;
                }
            }
        }
    }
    green::run(|| {
        let (tx, rx) = mpmc::channel();
        for v in [1, 3, 4, 5] {
            tx.send(v).unwrap();
        }
        drop(tx);
        assert_eq!(first_even(&rx), Some(4));
        assert_eq!(first_even(&rx), None);
    });
}

/// When several arms are ready, each is chosen about equally often.
#[test]
fn fairness_when_several_are_ready() {
    green::run(|| {
        const ROUNDS: usize = 6_000;
        let channels: Vec<_> = (0..3).map(|_| mpmc::channel::<()>()).collect();
        for (tx, _) in &channels {
            for _ in 0..ROUNDS {
                tx.send(()).unwrap();
            }
        }
        let (rx0, rx1, rx2) = (&channels[0].1, &channels[1].1, &channels[2].1);
        let mut counts = [0usize; 3];
        for _ in 0..ROUNDS {
            let i = green::select! {
                recv(rx0) -> _ => 0,
                recv(rx1) -> _ => 1,
                recv(rx2) -> _ => 2,
            };
            counts[i] += 1;
        }
        for c in counts {
            assert!((1_700..=2_300).contains(&c), "unfair: {counts:?}");
        }
    });
}

#[test]
fn many_channels() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let channels: Vec<_> = (0..8).map(|_| mpmc::channel::<usize>()).collect();
            let senders: Vec<_> = channels.iter().map(|(tx, _)| tx.clone()).collect();
            // One message at a time: the next is sent once the select took the previous, so
            // however late the select runs it never finds two ready (and picks one at random).
            let (ack_tx, ack_rx) = mpmc::channel::<()>();
            green::spawn(move || {
                for (i, tx) in senders.iter().enumerate().rev() {
                    green::sleep(Duration::from_micros(200));
                    tx.send(i).unwrap();
                    ack_rx.recv().unwrap();
                }
            });
            let r: Vec<_> = channels.iter().map(|(_, rx)| rx).collect();
            let mut got = Vec::new();
            for _ in 0..8 {
                got.push(green::select! {
                    recv(r[0]) -> v => v.unwrap(),
                    recv(r[1]) -> v => v.unwrap(),
                    recv(r[2]) -> v => v.unwrap(),
                    recv(r[3]) -> v => v.unwrap(),
                    recv(r[4]) -> v => v.unwrap(),
                    recv(r[5]) -> v => v.unwrap(),
                    recv(r[6]) -> v => v.unwrap(),
                    recv(r[7]) -> v => v.unwrap(),
                });
                ack_tx.send(()).unwrap();
            }
            assert_eq!(got, [7, 6, 5, 4, 3, 2, 1, 0]);
        });
    });
}

/// Selecting receivers and plain receivers share channels with producers on both workers and
/// an OS thread: every message is received exactly once, and none is left behind.
#[test]
fn selects_and_plain_receivers_race_across_workers() {
    bounded(Duration::from_secs(60), || {
        const N: usize = 20_000;
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        let (tx_a, rx_a) = mpmc::sync_channel::<usize>(4);
        let (tx_b, rx_b) = mpmc::sync_channel::<usize>(0);
        let seen = Arc::new((0..2 * N).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
        let mut consumers = Vec::new();
        for _ in 0..3 {
            let (rx_a, rx_b, seen) = (rx_a.clone(), rx_b.clone(), seen.clone());
            consumers.push(rt.spawn(move || {
                let (mut a_open, mut b_open) = (true, true);
                while a_open || b_open {
                    green::select! {
                        recv(rx_a) -> v => match v {
                            Ok(v) => { seen[v].fetch_add(1, Ordering::Relaxed); }
                            Err(_) => a_open = false,
                        },
                        recv(rx_b) -> v => match v {
                            Ok(v) => { seen[v].fetch_add(1, Ordering::Relaxed); }
                            Err(_) => b_open = false,
                        },
                    }
                    if !a_open && b_open {
                        while let Ok(v) = rx_b.recv() {
                            seen[v].fetch_add(1, Ordering::Relaxed);
                        }
                        b_open = false;
                    } else if a_open && !b_open {
                        while let Ok(v) = rx_a.recv() {
                            seen[v].fetch_add(1, Ordering::Relaxed);
                        }
                        a_open = false;
                    }
                }
            }));
        }
        {
            let (rx_a, seen) = (rx_a.clone(), seen.clone());
            consumers.push(rt.spawn(move || {
                for v in rx_a.iter() {
                    seen[v].fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        drop((rx_a, rx_b));
        let producer_a = rt.spawn(move || (0..N).for_each(|i| tx_a.send(i).unwrap()));
        let producer_b = std::thread::spawn(move || (N..2 * N).for_each(|i| tx_b.send(i).unwrap()));
        producer_a.join().unwrap();
        producer_b.join().unwrap();
        consumers.into_iter().for_each(|c| c.join().unwrap());
        let wrong: Vec<_> = (0..2 * N).filter(|&i| seen[i].load(Ordering::Relaxed) != 1).take(5).collect();
        assert!(wrong.is_empty(), "messages not received exactly once: {wrong:?}");
    });
}

/// Two selects that each send to the other's receive arm on rendezvous channels: they must
/// meet, not deadlock, and not complete both arms.
#[test]
fn selects_meet_on_rendezvous_channels() {
    bounded(Duration::from_secs(30), || {
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        for _ in 0..200 {
            let (tx_ab, rx_ab) = mpmc::sync_channel::<u32>(0);
            let (tx_ba, rx_ba) = mpmc::sync_channel::<u32>(0);
            let a = rt.spawn(move || {
                green::select! {
                    send(tx_ab, 1) -> r => { r.unwrap(); "sent" }
                    recv(rx_ba) -> v => { assert_eq!(v, Ok(2)); "received" }
                }
            });
            let b = rt.spawn(move || {
                green::select! {
                    send(tx_ba, 2) -> r => { r.unwrap(); "sent" }
                    recv(rx_ab) -> v => { assert_eq!(v, Ok(1)); "received" }
                }
            });
            let (a, b) = (a.join().unwrap(), b.join().unwrap());
            assert_ne!(a, b, "both sides {a}");
        }
    });
}

#[test]
fn select_from_an_os_thread() {
    bounded(Duration::from_secs(20), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        let (tx, rx) = mpmc::channel::<u32>();
        let (_tx2, rx2) = mpmc::channel::<u32>();
        rt.spawn(move || {
            green::sleep(Duration::from_millis(5));
            tx.send(8).unwrap();
        });
        let got = green::select! {
            recv(rx2) -> _ => 0,
            recv(rx) -> v => v.unwrap(),
            timeout(Duration::from_secs(10)) => 1,
        };
        assert_eq!(got, 8);
    });
}

/// Two send arms on one channel, both waiting: the arm the select reports is the one whose
/// value the receiver got, and the other arm's value is not lost (it stays with its arm).
#[test]
fn two_send_arms_on_one_channel_report_the_value_that_was_taken() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            for capacity in [0, 1] {
                for round in 0..20 {
                    let (tx, rx) = mpmc::sync_channel::<&str>(capacity);
                    if capacity == 1 {
                        tx.send("filler").unwrap(); // full: both arms must wait
                    }
                    let receiver = green::spawn(move || {
                        green::sleep(Duration::from_millis(1));
                        let first = rx.recv().unwrap();
                        let second = if capacity == 1 { Some(rx.recv().unwrap()) } else { None };
                        (first, second)
                    });
                    let sent = green::select! {
                        send(tx, "a") -> r => { r.unwrap(); "a" },
                        send(tx, "b") -> r => { r.unwrap(); "b" },
                    };
                    let (first, second) = receiver.join().unwrap();
                    let received = if capacity == 1 {
                        assert_eq!(first, "filler");
                        second.unwrap()
                    } else {
                        first
                    };
                    assert_eq!(sent, received, "capacity {capacity}, round {round}: the select reported the other arm");
                }
            }
        });
    });
}

/// Operations per timed batch of the scaling tests below.
const TRIPS: usize = 50_000;

/// `handlers` green threads each select on one shared channel (a shutdown signal) and an inbox
/// of their own, the shape of a server's connection handlers; returns the fastest of three
/// batches of [`TRIPS`] round trips through them, one handler at a time.
fn shared_channel_round_trip(handlers: usize) -> Duration {
    common::runtime(1).block_on(|| {
        let (stop_tx, stop_rx) = mpmc::channel::<()>();
        let (done_tx, done_rx) = mpmc::channel::<usize>();
        let (inboxes, joins): (Vec<_>, Vec<_>) = (0..handlers)
            .map(|_| {
                let (tx, rx) = mpmc::channel::<usize>();
                let (stop_rx, done_tx) = (stop_rx.clone(), done_tx.clone());
                let join = green::spawn(move || {
                    loop {
                        green::select! {
                            recv(stop_rx) -> _ => return,
                            recv(rx) -> v => done_tx.send(v.unwrap()).unwrap(),
                        }
                    }
                });
                (tx, join)
            })
            .unzip();
        let fastest = fastest_of_three(|| {
            for i in 0..TRIPS {
                inboxes[i % handlers].send(i).unwrap();
                assert_eq!(done_rx.recv(), Ok(i));
            }
        });
        drop(stop_tx);
        joins.into_iter().for_each(|j| j.join().unwrap());
        fastest
    })
}

/// The shortest of three timed runs of `batch`: a moment of the machine's noise in one run does
/// not count.
fn fastest_of_three(mut batch: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            batch();
            start.elapsed()
        })
        .min()
        .unwrap()
}

/// A wake of a select costs about the same with thousands of other selects waiting on one of
/// its channels as with a few. Each wake used to withdraw the select's entry from every one of
/// its channels by scanning all their entries: with 5,000 handlers a round trip took 60 times
/// as long as with 10.
#[test]
fn a_wake_does_not_scan_every_select_waiting_on_a_shared_channel() {
    bounded(Duration::from_secs(120), || {
        let few = shared_channel_round_trip(10);
        let many = shared_channel_round_trip(5_000);
        assert!(many < few * 20, "{TRIPS} round trips: {many:?} with 5,000 handlers, {few:?} with 10");
    });
}

/// `producers` green threads each select on sending to one bounded channel and on a shared
/// shutdown channel; returns the fastest of three batches of [`TRIPS`] receives from it.
fn fan_in(producers: usize) -> Duration {
    common::runtime(1).block_on(|| {
        let (stop_tx, stop_rx) = mpmc::channel::<()>();
        let (out_tx, out_rx) = mpmc::sync_channel::<usize>(16);
        let joins: Vec<_> = (0..producers)
            .map(|p| {
                let (stop_rx, out_tx) = (stop_rx.clone(), out_tx.clone());
                green::spawn(move || {
                    let mut sent = 0;
                    loop {
                        green::select! {
                            send(out_tx, p) -> r => { r.unwrap(); sent += 1; }
                            recv(stop_rx) -> _ => return sent,
                        }
                    }
                })
            })
            .collect();
        let fastest = fastest_of_three(|| {
            for _ in 0..TRIPS {
                assert!(out_rx.recv().unwrap() < producers);
            }
        });
        drop(stop_tx);
        let sent: usize = joins.into_iter().map(|j| j.join().unwrap()).sum();
        assert_eq!(sent, 3 * TRIPS + out_rx.try_iter().count(), "every completed send arm was received once");
        fastest
    })
}

/// A send arm that completes costs about the same with thousands of other selects offering on
/// its channel as with a few. The select used to look for its offer after every wake, scanning
/// all the offers queued behind it even when a receiver had taken it out.
#[test]
fn a_completed_send_arm_does_not_scan_the_offers_behind_it() {
    bounded(Duration::from_secs(120), || {
        let few = fan_in(10);
        let many = fan_in(5_000);
        assert!(many < few * 20, "{TRIPS} receives: {many:?} from 5,000 producers, {few:?} from 10");
    });
}

/// A select waiting to send on a full channel gets its value back in the error when the last
/// receiver goes.
#[test]
fn a_waiting_send_arm_gets_its_value_back_when_the_receivers_go() {
    bounded(Duration::from_secs(20), || {
        common::runtime(2).block_on(|| {
            for cap in [0, 1] {
                let (tx, rx) = mpmc::sync_channel::<String>(cap);
                (0..cap).for_each(|_| tx.send("queued".to_string()).unwrap());
                let (_keep, quiet) = mpmc::channel::<u8>();
                let sender = green::spawn(move || {
                    green::select! {
                        recv(quiet) -> _ => unreachable!(),
                        send(tx, "mine".to_string()) -> r => r,
                    }
                });
                green::sleep(Duration::from_millis(20)); // parked by now, most likely
                drop(rx);
                assert_eq!(sender.join().unwrap(), Err(SendError("mine".to_string())), "capacity {cap}");
            }
        });
    });
}

/// Selects that leave their channels' waiting lists out of order, as many at once: consumers on
/// workers and OS threads select on a shared data channel, an inbox of their own and a shared
/// shutdown channel that never fires (its list fills with entries of selects that left), some
/// with short timeouts, some on the data channel twice, one cancelled midway; producers send
/// plainly, from a select, and from a select with two send arms. Every message is received
/// exactly once, on a buffered and on a rendezvous channel.
#[test]
fn selects_leaving_out_of_order_lose_and_duplicate_nothing() {
    bounded(Duration::from_secs(120), || {
        const PRODUCERS: usize = 4;
        const PER_PRODUCER: usize = 20_000;
        const CONSUMERS: usize = 6;
        const N: usize = (PRODUCERS + 1) * PER_PRODUCER;
        let rt = green::Runtime::builder().workers(2).build().unwrap();
        for capacity in [0, 3] {
            let (data_tx, data_rx) = mpmc::sync_channel::<usize>(capacity);
            let (quit_tx, quit_rx) = mpmc::channel::<()>();
            let seen = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
            let (mut inbox_txs, mut inbox_rxs) = (Vec::new(), Vec::new());
            for _ in 0..CONSUMERS {
                let (tx, rx) = mpmc::channel::<usize>();
                inbox_txs.push(tx);
                inbox_rxs.push(rx);
            }
            // One consumer: the data channel and the shutdown channel, `timed` with a short
            // timeout arm (it leaves its lists often, from anywhere in them).
            let consume = |data_rx: mpmc::Receiver<usize>,
                           inbox: mpmc::Receiver<usize>,
                           quit_rx: mpmc::Receiver<()>,
                           seen: Arc<Vec<AtomicUsize>>,
                           timed: bool| {
                move || {
                    let mut rounds = 0u64;
                    loop {
                        rounds += 1;
                        let wait = Duration::from_micros(rounds % 50);
                        let got = if timed {
                            green::select! {
                                recv(data_rx) -> v => v.map_err(|_| true),
                                recv(inbox) -> v => v.map_err(|_| false),
                                recv(quit_rx) -> _ => unreachable!("nobody sends on the shutdown channel"),
                                timeout(wait) => continue,
                            }
                        } else {
                            green::select! {
                                recv(quit_rx) -> _ => unreachable!("nobody sends on the shutdown channel"),
                                recv(data_rx) -> v => v.map_err(|_| true),
                                recv(inbox) -> v => v.map_err(|_| false),
                                // Twice on one channel: two entries under one token.
                                recv(data_rx) -> v => v.map_err(|_| true),
                            }
                        };
                        match got {
                            Ok(v) => {
                                seen[v].fetch_add(1, Ordering::Relaxed);
                            }
                            // One channel is closed, so every producer is done: drain the other.
                            Err(data_closed) => {
                                let rest = if data_closed { inbox.iter() } else { data_rx.iter() };
                                rest.for_each(|v| {
                                    seen[v].fetch_add(1, Ordering::Relaxed);
                                });
                                break;
                            }
                        }
                    }
                }
            };
            let mut green_consumers = Vec::new();
            let mut os_consumers = Vec::new();
            for (i, inbox) in inbox_rxs.into_iter().enumerate() {
                let body = consume(data_rx.clone(), inbox, quit_rx.clone(), seen.clone(), i % 2 == 1);
                if i < 2 {
                    os_consumers.push(std::thread::spawn(body));
                } else {
                    green_consumers.push(rt.spawn(body));
                }
            }
            // Cancelled midway: a message a channel chose it for goes to another receiver.
            let progress = Arc::new(AtomicUsize::new(0));
            let cancelled = {
                let (data_rx, quit_rx, seen, progress) =
                    (data_rx.clone(), quit_rx.clone(), seen.clone(), progress.clone());
                rt.spawn(move || {
                    loop {
                        green::select! {
                            recv(data_rx) -> v => match v {
                                Ok(v) => {
                                    seen[v].fetch_add(1, Ordering::Relaxed);
                                    progress.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => return,
                            },
                            recv(quit_rx) -> _ => unreachable!("nobody sends on the shutdown channel"),
                        }
                    }
                })
            };
            let mut producers = Vec::new();
            for p in 0..PRODUCERS {
                let (data_tx, quit_rx, inbox_txs) = (data_tx.clone(), quit_rx.clone(), inbox_txs.clone());
                producers.push(rt.spawn(move || {
                    for v in p * PER_PRODUCER..(p + 1) * PER_PRODUCER {
                        match v % 3 {
                            0 => data_tx.send(v).unwrap(),
                            1 => green::select! {
                                send(data_tx, v) -> r => r.unwrap(),
                                recv(quit_rx) -> _ => unreachable!("nobody sends on the shutdown channel"),
                            },
                            _ => green::select! {
                                send(inbox_txs[v % CONSUMERS], v) -> r => r.unwrap(),
                                send(data_tx, v) -> r => r.unwrap(),
                            },
                        }
                    }
                }));
            }
            let os_producer = {
                let (data_tx, quit_rx) = (data_tx.clone(), quit_rx.clone());
                let inbox_txs = inbox_txs.clone(); // Closed with the data channel, as near as may be.
                std::thread::spawn(move || {
                    let _inboxes = inbox_txs;
                    for v in PRODUCERS * PER_PRODUCER..N {
                        green::select! {
                            send(data_tx, v) -> r => r.unwrap(),
                            recv(quit_rx) -> _ => unreachable!("nobody sends on the shutdown channel"),
                        }
                    }
                })
            };
            drop((data_tx, data_rx, inbox_txs, quit_rx));
            let start = Instant::now();
            while progress.load(Ordering::Relaxed) < 500 && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(1));
            }
            cancelled.cancel();
            producers.into_iter().for_each(|p| p.join().unwrap());
            os_producer.join().unwrap();
            green_consumers.into_iter().for_each(|c| c.join().unwrap());
            os_consumers.into_iter().for_each(|c| c.join().unwrap());
            let _ = cancelled.join();
            drop(quit_tx);
            let wrong: Vec<_> = (0..N)
                .filter(|&i| seen[i].load(Ordering::Relaxed) != 1)
                .take(5)
                .map(|i| (i, seen[i].load(Ordering::Relaxed)))
                .collect();
            assert!(wrong.is_empty(), "capacity {capacity}: messages not received exactly once: {wrong:?}");
        }
    });
}

/// A result bound to a name with a leading underscore is the caller's own pattern: the
/// expansion's `let` of it must not read as a binding without effect (clippy's pedantic
/// `no_effect_underscore_binding` fired on it; `cargo clippy --all-targets` checks this).
#[test]
#[deny(clippy::no_effect_underscore_binding)]
fn an_underscore_named_result_is_no_useless_binding() {
    green::run(|| {
        let (tx, rx) = mpmc::channel::<u8>();
        drop(tx);
        let closed = green::select! {
            recv(rx) -> _msg => true,
            default => false,
        };
        assert!(closed, "a disconnected channel's arm is ready");
    });
}

/// A channel given as a temporary, as the docs allow (`recv` takes a `Receiver` as well as a
/// `&Receiver`): it lives until the select ends. Bound by a `let` in the expansion, it was
/// dropped while still borrowed, and the select did not compile (E0716).
#[test]
fn a_channel_given_as_a_temporary_lives_through_the_select() {
    fn receiver_of(rx: &mpmc::Receiver<u32>) -> mpmc::Receiver<u32> {
        rx.clone()
    }
    green::run(|| {
        let (tx, rx) = mpmc::channel::<u32>();
        let sent = green::select! {
            send(tx.clone(), 1) -> sent => sent.is_ok(),
        };
        assert!(sent);
        let got = green::select! {
            recv(rx.clone()) -> msg => msg,
            default => Err(RecvError),
        };
        assert_eq!(got, Ok(1));
        tx.send(2).unwrap();
        let got = green::select! {
            recv(receiver_of(&rx)) -> msg => msg,
            timeout(Duration::from_secs(10)) => Err(RecvError),
        };
        assert_eq!(got, Ok(2));
    });
}

/// An empty `select!` waits for good: a deadline (or a cancellation) ends it, by unwinding.
#[test]
fn an_empty_select_waits_until_a_deadline_or_a_cancellation() {
    green::run(|| {
        let start = Instant::now();
        let outcome = green::timeout(Duration::from_millis(20), || green::select! {});
        assert!(outcome.is_err(), "an empty select! returned");
        assert!(start.elapsed() >= Duration::from_millis(20), "it ended early: {:?}", start.elapsed());
        let waiter = green::spawn(|| green::select! {});
        green::sleep(Duration::from_millis(5));
        waiter.cancel();
        assert!(waiter.join().unwrap_err().is_cancelled());
    });
}
