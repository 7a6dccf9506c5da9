//! Channels: many producers and consumers across workers and OS threads, rendezvous handoff,
//! disconnection on both sides, timeouts, iterators, and ticks on a hot channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use green::sync::mpmc::{self, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};

mod common;
use common::bounded;

fn runtime(workers: usize) -> green::Runtime {
    green::Runtime::builder().workers(workers).build().expect("runtime")
}

/// Green producers and consumers on both workers, plus OS-thread producers and consumers, on
/// one channel: every message arrives exactly once.
fn many_to_many(cap: Option<usize>) {
    const PER_PRODUCER: u64 = 5_000;
    const GREEN_PRODUCERS: u64 = 6;
    const OS_PRODUCERS: u64 = 2;
    let (tx, rx) = match cap {
        Some(cap) => mpmc::sync_channel(cap),
        None => mpmc::channel(),
    };
    let rt = runtime(2);
    let mut producers = Vec::new();
    for p in 0..GREEN_PRODUCERS {
        let tx = tx.clone();
        producers.push(rt.spawn(move || {
            for i in 0..PER_PRODUCER {
                tx.send(p * PER_PRODUCER + i).unwrap();
            }
        }));
    }
    let os_producers: Vec<_> = (GREEN_PRODUCERS..GREEN_PRODUCERS + OS_PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..PER_PRODUCER {
                    tx.send(p * PER_PRODUCER + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consume = |rx: mpmc::Receiver<u64>| {
        let mut seen = vec![0u32; ((GREEN_PRODUCERS + OS_PRODUCERS) * PER_PRODUCER) as usize];
        for value in rx.iter() {
            seen[value as usize] += 1;
        }
        seen
    };
    let green_consumers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(move || consume(rx))
        })
        .collect();
    let os_consumer = {
        let rx = rx.clone();
        std::thread::spawn(move || consume(rx))
    };
    drop(rx);
    producers.into_iter().for_each(|p| p.join().unwrap());
    os_producers.into_iter().for_each(|p| p.join().unwrap());
    let mut total = os_consumer.join().unwrap();
    for consumer in green_consumers {
        for (t, s) in total.iter_mut().zip(consumer.join().unwrap()) {
            *t += s;
        }
    }
    assert!(total.iter().all(|&n| n == 1), "a message was lost or received twice");
}

#[test]
fn bounded_many_producers_many_consumers() {
    bounded(Duration::from_secs(60), || many_to_many(Some(8)));
}

#[test]
fn unbounded_many_producers_many_consumers() {
    bounded(Duration::from_secs(60), || many_to_many(None));
}

#[test]
fn rendezvous_many_producers_many_consumers() {
    bounded(Duration::from_secs(60), || many_to_many(Some(0)));
}

#[test]
fn rendezvous_send_returns_only_once_a_receiver_has_the_message() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (tx, rx) = mpmc::sync_channel(0);
            // Before the spawn: the receiver may start on the other worker at once, and its
            // 20 ms count from then.
            let start = Instant::now();
            let receiver = green::spawn(move || {
                green::sleep(Duration::from_millis(20));
                rx.recv().unwrap()
            });
            tx.send(9).unwrap();
            assert!(start.elapsed() >= Duration::from_millis(20), "send returned before the receiver came");
            assert_eq!(receiver.join().unwrap(), 9);
        });
    });
}

#[test]
fn rendezvous_try_send_needs_a_waiting_receiver() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (tx, rx) = mpmc::sync_channel::<u32>(0);
            assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
            let receiver = green::spawn(move || rx.recv().unwrap());
            // Let the receiver park in `recv`.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match tx.try_send(2) {
                    Ok(()) => break,
                    Err(TrySendError::Full(_)) if Instant::now() < deadline => green::sleep(Duration::from_millis(1)),
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(receiver.join().unwrap(), 2);
        });
    });
}

#[test]
fn rendezvous_between_os_thread_and_green_thread() {
    bounded(Duration::from_secs(20), || {
        let rt = runtime(2);
        let (tx, rx) = mpmc::sync_channel(0);
        let (back_tx, back_rx) = mpmc::sync_channel(0);
        let green_side = rt.spawn(move || {
            for _ in 0..1_000 {
                let v: u32 = rx.recv().unwrap();
                back_tx.send(v + 1).unwrap();
            }
        });
        for i in 0..1_000 {
            tx.send(i).unwrap();
            assert_eq!(back_rx.recv(), Ok(i + 1));
        }
        green_side.join().unwrap();
    });
}

#[test]
fn receivers_see_disconnection_after_the_last_message() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (tx, rx) = mpmc::sync_channel(4);
            let tx2 = tx.clone();
            tx.send(1).unwrap();
            tx2.send(2).unwrap();
            drop(tx);
            assert_eq!(rx.try_recv(), Ok(1));
            drop(tx2);
            assert_eq!(rx.recv(), Ok(2));
            assert_eq!(rx.recv(), Err(RecvError));
            assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
            assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Err(RecvTimeoutError::Disconnected));
        });
    });
}

#[test]
fn parked_receivers_wake_when_the_last_sender_goes() {
    bounded(Duration::from_secs(20), || {
        let rt = runtime(2);
        let (tx, rx) = mpmc::channel::<u32>();
        let parked = Arc::new(AtomicUsize::new(0));
        let receivers: Vec<_> = (0..8)
            .map(|_| {
                let (rx, parked) = (rx.clone(), parked.clone());
                rt.spawn(move || {
                    parked.fetch_add(1, Ordering::SeqCst);
                    rx.recv()
                })
            })
            .collect();
        let os_receiver = std::thread::spawn(move || rx.recv());
        while parked.load(Ordering::SeqCst) < 8 {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(10));
        drop(tx);
        for r in receivers {
            assert_eq!(r.join().unwrap(), Err(RecvError));
        }
        assert_eq!(os_receiver.join().unwrap(), Err(RecvError));
    });
}

#[test]
fn blocked_senders_get_their_values_back_when_the_receivers_go() {
    bounded(Duration::from_secs(20), || {
        let rt = runtime(2);
        for cap in [0, 1] {
            let (tx, rx) = mpmc::sync_channel::<String>(cap);
            if cap == 1 {
                tx.send("fills it".into()).unwrap();
            }
            let started = Arc::new(AtomicUsize::new(0));
            let senders: Vec<_> = (0..4)
                .map(|i| {
                    let (tx, started) = (tx.clone(), started.clone());
                    rt.spawn(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        tx.send(format!("value {i}"))
                    })
                })
                .collect();
            while started.load(Ordering::SeqCst) < 4 {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(10));
            drop(rx);
            let mut back: Vec<String> = senders.into_iter().map(|s| s.join().unwrap().unwrap_err().0).collect();
            back.sort();
            assert_eq!(back, ["value 0", "value 1", "value 2", "value 3"]);
            assert_eq!(tx.send("late".into()), Err(SendError("late".into())));
        }
    });
}

/// As with std, the last receiver takes the buffered messages with it: nobody could receive
/// them, and what they own must not wait for the last sender. A reply channel queued to a
/// server that is gone reports the disconnection at once.
#[test]
fn the_last_receiver_drops_the_buffered_messages() {
    bounded(Duration::from_secs(20), || {
        /// Counts its drops.
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        for cap in [None, Some(4)] {
            let (tx, rx) = match cap {
                None => mpmc::channel(),
                Some(n) => mpmc::sync_channel(n),
            };
            let dropped = Arc::new(AtomicUsize::new(0));
            for _ in 0..3 {
                tx.send(Counted(dropped.clone())).unwrap();
            }
            let second = rx.clone();
            drop(rx);
            assert_eq!(dropped.load(Ordering::SeqCst), 0, "another receiver could still take them");
            drop(second);
            assert_eq!(dropped.load(Ordering::SeqCst), 3, "{cap:?}: buffered messages outlived the last receiver");
            assert!(tx.send(Counted(dropped.clone())).is_err());
            assert_eq!(dropped.load(Ordering::SeqCst), 4);
        }

        // A message that holds the channel's last sender, whose drop locks the channel again:
        // it must be dropped after the lock is released.
        struct HoldsSender(#[allow(dead_code)] mpmc::Sender<HoldsSender>);
        let (tx, rx) = mpmc::channel();
        tx.send(HoldsSender(tx.clone())).unwrap();
        drop(tx);
        drop(rx);

        runtime(1).block_on(|| {
            let (requests, server) = mpmc::channel::<green::sync::oneshot::Sender<u32>>();
            let (reply_tx, reply_rx) = green::sync::oneshot::channel();
            requests.send(reply_tx).unwrap();
            drop(server);
            let start = Instant::now();
            assert_eq!(
                reply_rx.recv_timeout(Duration::from_secs(10)),
                Err(green::sync::oneshot::RecvTimeoutError::Disconnected)
            );
            assert!(start.elapsed() < Duration::from_secs(5));
        });
    });
}

#[test]
fn timeouts() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (tx, rx) = mpmc::sync_channel::<u32>(1);
            let start = Instant::now();
            assert_eq!(rx.recv_timeout(Duration::from_millis(20)), Err(RecvTimeoutError::Timeout));
            assert!(start.elapsed() >= Duration::from_millis(20));
            tx.send(1).unwrap();
            let start = Instant::now();
            assert_eq!(tx.send_timeout(2, Duration::from_millis(20)), Err(SendTimeoutError::Timeout(2)));
            assert!(start.elapsed() >= Duration::from_millis(20));
            assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_millis(20)), Ok(1));
            // A message that comes before the deadline is received.
            let tx2 = tx.clone();
            green::spawn(move || {
                green::sleep(Duration::from_millis(5));
                tx2.send(3).unwrap();
            });
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(3));
            // Zero and huge timeouts.
            assert_eq!(rx.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Timeout));
            tx.send(4).unwrap();
            assert_eq!(rx.recv_timeout(Duration::MAX), Ok(4));
        });
    });
}

#[test]
fn timed_out_receivers_leave_the_queue() {
    // Receivers that time out must not swallow later messages meant for others.
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (tx, rx) = mpmc::channel::<u32>();
            for _ in 0..50 {
                assert!(rx.recv_timeout(Duration::from_micros(100)).is_err());
            }
            let rx2 = rx.clone();
            let waiter = green::spawn(move || rx2.recv());
            green::sleep(Duration::from_millis(2));
            tx.send(5).unwrap();
            assert_eq!(waiter.join().unwrap(), Ok(5));
        });
    });
}

#[test]
fn iterators() {
    bounded(Duration::from_secs(20), || {
        green::run(|| {
            let (tx, rx) = mpmc::channel();
            for i in 0..5 {
                tx.send(i).unwrap();
            }
            assert_eq!(rx.try_iter().take(2).collect::<Vec<_>>(), [0, 1]);
            assert_eq!(rx.try_iter().collect::<Vec<_>>(), [2, 3, 4]);
            assert_eq!(rx.try_iter().count(), 0);
            green::spawn(move || (0..3).for_each(|i| tx.send(i).unwrap()));
            assert_eq!(rx.into_iter().sum::<i32>(), 3);
        });
    });
}

#[test]
fn len_capacity_and_fullness() {
    let (tx, rx) = mpmc::sync_channel(2);
    assert!(tx.is_empty() && rx.is_empty() && !tx.is_full());
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!((tx.len(), rx.len(), tx.capacity()), (2, 2, Some(2)));
    assert!(tx.is_full());
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(!tx.is_full());
}

/// A bounded channel serves waiting senders in order: no sender barges past a full buffer.
#[test]
fn waiting_senders_complete_in_order() {
    bounded(Duration::from_secs(20), || {
        green::Runtime::builder().workers(1).build().unwrap().block_on(|| {
            let (tx, rx) = mpmc::sync_channel(1);
            tx.send(0).unwrap();
            let senders: Vec<_> = (1..=5)
                .map(|i| {
                    let tx = tx.clone();
                    let h = green::spawn(move || tx.send(i).unwrap());
                    green::sleep(Duration::from_millis(1)); // let it park before the next one
                    h
                })
                .collect();
            let got: Vec<i32> = (0..=5).map(|_| rx.recv().unwrap()).collect();
            assert_eq!(got, [0, 1, 2, 3, 4, 5]);
            senders.into_iter().for_each(|s| s.join().unwrap());
        });
    });
}

/// Operations that never wait still tick: a green thread hammering an always-ready channel
/// lets its neighbour on the same worker run.
#[test]
fn a_hot_channel_does_not_starve_its_worker() {
    bounded(Duration::from_secs(20), || {
        let rt = green::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let hot = green::spawn(move || {
                let (tx, rx) = mpmc::channel();
                let mut n = 0u64;
                while !s.load(Ordering::Relaxed) {
                    tx.send(n).unwrap();
                    n = n.wrapping_add(rx.try_recv().unwrap());
                }
                n
            });
            // Runs only if the hot loop yields its worker.
            let neighbour = green::spawn(move || stop.store(true, Ordering::Relaxed));
            neighbour.join().unwrap();
            hot.join().unwrap();
        });
    });
}

#[test]
fn a_message_is_dropped_with_the_channel() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpmc::channel();
    tx.send(Counted(drops.clone())).unwrap();
    tx.send(Counted(drops.clone())).unwrap();
    // With the senders gone the messages can still be received: they stay.
    drop(tx);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}
