//! What several benches measure alike.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::Instant;

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;

/// Benches, as `name`, a ping-pong round trip between the bench thread and a partner OS thread
/// through two `std::sync::mpsc` channels: what a user would write without green threads.
pub fn os_ping_pong(group: &mut BenchmarkGroup<'_, WallTime>, name: &str) {
    let (ping_tx, ping_rx) = mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = mpsc::channel::<u64>();
    let partner = std::thread::spawn(move || {
        for token in ping_rx {
            if pong_tx.send(token).is_err() {
                break;
            }
        }
    });
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                ping_tx.send(i).expect("partner alive");
                black_box(pong_rx.recv().expect("partner alive"));
            }
            start.elapsed()
        })
    });
    drop(ping_tx);
    partner.join().expect("OS partner");
}
