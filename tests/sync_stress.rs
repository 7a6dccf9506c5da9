//! Bounded stress of park/wake races: ping-pong across workers and OS threads, timeouts racing
//! with sends, cancellations racing with wakes, selects racing with plain receivers. Each test
//! would hang (and fail its time bound) on a lost wakeup, and counts every message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use green::sync::mpmc::{self, RecvTimeoutError};
use green::sync::{Condvar, Mutex};

mod common;
use common::bounded;

fn runtime() -> green::Runtime {
    green::Runtime::builder().workers(2).build().unwrap()
}

#[test]
fn ping_pong_across_workers_and_os_threads() {
    bounded(Duration::from_secs(60), || {
        const ROUNDS: u32 = 20_000;
        let rt = runtime();
        for cap in [0, 1] {
            let (ping_tx, ping_rx) = mpmc::sync_channel::<u32>(cap);
            let (pong_tx, pong_rx) = mpmc::sync_channel::<u32>(cap);
            let a = green::Builder::new()
                .worker(0)
                .spawn_on(rt.handle(), move || {
                    for i in 0..ROUNDS {
                        ping_tx.send(i).unwrap();
                        assert_eq!(pong_rx.recv(), Ok(i));
                    }
                })
                .unwrap();
            let b = green::Builder::new()
                .worker(1)
                .spawn_on(rt.handle(), move || {
                    for v in ping_rx.iter() {
                        pong_tx.send(v).unwrap();
                    }
                })
                .unwrap();
            a.join().unwrap();
            b.join().unwrap();
        }
        // Green thread against an OS thread.
        let (ping_tx, ping_rx) = mpmc::sync_channel::<u32>(0);
        let (pong_tx, pong_rx) = mpmc::sync_channel::<u32>(0);
        let g = rt.spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v + 1).unwrap();
            }
        });
        for i in 0..ROUNDS / 4 {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv(), Ok(i + 1));
        }
        drop(ping_tx);
        g.join().unwrap();
    });
}

/// Receivers with tiny timeouts race with senders: every message is received exactly once.
#[test]
fn timeouts_racing_with_sends() {
    bounded(Duration::from_secs(60), || {
        const PER_SENDER: u64 = 5_000;
        let rt = runtime();
        let (tx, rx) = mpmc::sync_channel::<u64>(2);
        let sum = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let receivers: Vec<_> = (0..4)
            .map(|i| {
                let (rx, sum, count) = (rx.clone(), sum.clone(), count.clone());
                rt.spawn(move || {
                    loop {
                        match rx.recv_timeout(Duration::from_micros(1 + 20 * i)) {
                            Ok(v) => {
                                sum.fetch_add(v, Ordering::Relaxed);
                                count.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                })
            })
            .collect();
        drop(rx);
        let senders: Vec<_> = (0..3u64)
            .map(|s| {
                let tx = tx.clone();
                rt.spawn(move || {
                    for i in 0..PER_SENDER {
                        // Mix timed and plain sends.
                        let v = s * PER_SENDER + i;
                        if i % 2 == 0 {
                            let mut v = v;
                            loop {
                                match tx.send_timeout(v, Duration::from_micros(5)) {
                                    Ok(()) => break,
                                    Err(e) => v = e.into_inner(),
                                }
                            }
                        } else {
                            tx.send(v).unwrap();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        senders.into_iter().for_each(|s| s.join().unwrap());
        receivers.into_iter().for_each(|r| r.join().unwrap());
        let n = 3 * PER_SENDER;
        assert_eq!(count.load(Ordering::Relaxed), n);
        assert_eq!(sum.load(Ordering::Relaxed), n * (n - 1) / 2);
    });
}

/// Receivers are cancelled at random moments while messages flow; what one was handed as it
/// was cancelled goes to another: nothing is lost, nothing is received twice.
#[test]
fn cancellations_racing_with_wakes() {
    bounded(Duration::from_secs(60), || {
        const MESSAGES: u64 = 4_000;
        let rt = runtime();
        let (tx, rx) = mpmc::sync_channel::<u64>(1);
        let received = Arc::new(AtomicU64::new(0));
        let sum = Arc::new(AtomicU64::new(0));
        let spawn_receiver = |rx: mpmc::Receiver<u64>, received: Arc<AtomicU64>, sum: Arc<AtomicU64>| {
            rt.spawn(move || {
                while let Ok(v) = rx.recv() {
                    received.fetch_add(1, Ordering::SeqCst);
                    sum.fetch_add(v, Ordering::SeqCst);
                }
            })
        };
        // Steady receivers that are never cancelled, so the channel always drains.
        let steady: Vec<_> = (0..2).map(|_| spawn_receiver(rx.clone(), received.clone(), sum.clone())).collect();
        let sender = rt.spawn(move || {
            for v in 0..MESSAGES {
                tx.send(v).unwrap();
            }
        });
        // Victims: started and cancelled over and over while the sender runs.
        let mut cancelled = 0;
        while !sender.is_finished() {
            let victims: Vec<_> = (0..4).map(|_| spawn_receiver(rx.clone(), received.clone(), sum.clone())).collect();
            std::thread::sleep(Duration::from_micros(200));
            for v in &victims {
                v.cancel();
            }
            for v in victims {
                if v.join().is_err() {
                    cancelled += 1;
                }
            }
        }
        sender.join().unwrap();
        drop(rx);
        steady.into_iter().for_each(|s| s.join().unwrap());
        assert_eq!(received.load(Ordering::SeqCst), MESSAGES, "after {cancelled} cancellations");
        assert_eq!(sum.load(Ordering::SeqCst), MESSAGES * (MESSAGES - 1) / 2);
    });
}

/// A condition variable ping-pong between green threads on both workers and an OS thread:
/// a turn counter passed around with `notify_all`.
#[test]
fn condvar_turns() {
    bounded(Duration::from_secs(60), || {
        const PLAYERS: usize = 3;
        const TURNS: usize = 3_000;
        let rt = runtime();
        let state = Arc::new((Mutex::new(0usize), Condvar::new()));
        let play = |me: usize, state: Arc<(Mutex<usize>, Condvar)>| {
            move || {
                let (turn, cv) = &*state;
                let mut t = turn.lock().unwrap();
                loop {
                    t = cv.wait_while(t, |t| *t < TURNS && *t % PLAYERS != me).unwrap();
                    if *t >= TURNS {
                        return;
                    }
                    *t += 1;
                    cv.notify_all();
                }
            }
        };
        let a = green::Builder::new().worker(0).spawn_on(rt.handle(), play(0, state.clone())).unwrap();
        let b = green::Builder::new().worker(1).spawn_on(rt.handle(), play(1, state.clone())).unwrap();
        let c = std::thread::spawn(play(2, state.clone()));
        a.join().unwrap();
        b.join().unwrap();
        c.join().unwrap();
        assert_eq!(*state.0.lock().unwrap(), TURNS);
    });
}

/// Selects with short timeouts against plain receivers and senders on both workers.
#[test]
fn selects_with_timeouts_racing() {
    bounded(Duration::from_secs(60), || {
        const N: usize = 10_000;
        let rt = runtime();
        let (tx_a, rx_a) = mpmc::sync_channel::<usize>(0);
        let (tx_b, rx_b) = mpmc::channel::<usize>();
        let got = Arc::new(AtomicUsize::new(0));
        let selectors: Vec<_> = (0..3)
            .map(|_| {
                let (rx_a, rx_b, got) = (rx_a.clone(), rx_b.clone(), got.clone());
                rt.spawn(move || {
                    let mut open = 2;
                    while open > 0 {
                        green::select! {
                            recv(rx_a) -> v => if v.is_ok() { got.fetch_add(1, Ordering::SeqCst); } else { open = 0; },
                            recv(rx_b) -> v => if v.is_ok() { got.fetch_add(1, Ordering::SeqCst); } else { open = 0; },
                            timeout(Duration::from_micros(30)) => {},
                        }
                    }
                    // One side closed: drain both with plain receives.
                    for _ in rx_a.iter() {
                        got.fetch_add(1, Ordering::SeqCst);
                    }
                    for _ in rx_b.iter() {
                        got.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let plain = {
            let (rx_a, got) = (rx_a.clone(), got.clone());
            rt.spawn(move || {
                for _ in rx_a.iter() {
                    got.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        drop((rx_a, rx_b));
        let sa = rt.spawn(move || (0..N).for_each(|i| tx_a.send(i).unwrap()));
        let sb = std::thread::spawn(move || (0..N).for_each(|i| tx_b.send(i).unwrap()));
        sa.join().unwrap();
        sb.join().unwrap();
        selectors.into_iter().for_each(|s| s.join().unwrap());
        plain.join().unwrap();
        assert_eq!(got.load(Ordering::SeqCst), 2 * N);
    });
}
