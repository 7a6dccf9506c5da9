//! Channel ping-pong round trip: two green threads, against two OS threads with std's `mpsc`.
//!
//! # What it measures
//!
//! One round trip: A sends a token on one channel, B receives it and sends it back on another,
//! A receives it. Each side parks in `recv` while the other runs, so a round trip is two sends,
//! two receives, two parks and two wakes. Criterion reports time per round trip.
//!
//! All green cases run on one two-worker runtime (a second runtime per case would only add
//! idle workers):
//!
//! - `green/one_worker`: both green threads pinned to worker 0 (`green::Builder::worker`). A
//!   wake pushes the other green thread onto the same worker's run queue: no cross-CPU traffic.
//! - `green/two_workers`: A pinned to worker 0, B to worker 1. Every wake crosses CPUs through
//!   the other worker's inbox; an idle worker spins briefly before sleeping, so the wake usually
//!   finds it awake.
//! - `green/placed`: both spawned, unpinned, from one green thread; the scheduler places them
//!   (each may be stolen by the idle worker before it starts).
//! - `green/one_worker_rendezvous`: as `one_worker`, with zero-capacity channels.
//! - `os/std_mpsc`: two OS threads and two `std::sync::mpsc` channels: what a user would write
//!   without green threads.
//!
//! Targets (issue 4, this machine): one worker ≤ 100 ns, two workers ≤ 1 µs, placed by the
//! scheduler ≤ 200 ns.
//!
//! Run with `cargo bench --bench channel -- --warm-up-time 1 --measurement-time 3`.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use green::sync::mpmc;

/// Where the two green threads run.
#[derive(Clone, Copy)]
enum Placement {
    /// Pinned to these workers.
    Pinned(usize, usize),
    /// Spawned unpinned from one green thread.
    Scheduler,
}

/// `iters` round trips from A's side, once B has answered a first ping (so both have started
/// and set up before the clock starts). Returns the time of the round trips only.
fn measure(iters: u64, ping: mpmc::Sender<u64>, pong: mpmc::Receiver<u64>) -> Duration {
    ping.send(0).expect("partner alive");
    pong.recv().expect("partner alive");
    let start = Instant::now();
    for i in 0..iters {
        ping.send(i).expect("partner alive");
        black_box(pong.recv().expect("partner alive"));
    }
    start.elapsed()
}

/// B: echoes until A hangs up.
fn echo(ping: mpmc::Receiver<u64>, pong: mpmc::Sender<u64>) {
    for token in ping.iter() {
        if pong.send(token).is_err() {
            break;
        }
    }
}

fn green_round_trips(rt: &green::Runtime, placement: Placement, cap: Option<usize>, iters: u64) -> Duration {
    let channel = || match cap {
        Some(cap) => mpmc::sync_channel::<u64>(cap),
        None => mpmc::channel::<u64>(),
    };
    let (ping_tx, ping_rx) = channel();
    let (pong_tx, pong_rx) = channel();
    match placement {
        Placement::Pinned(a, b) => {
            let partner =
                green::Builder::new().worker(b).spawn_on(rt.handle(), move || echo(ping_rx, pong_tx)).expect("spawn B");
            let elapsed = green::Builder::new()
                .worker(a)
                .spawn_on(rt.handle(), move || measure(iters, ping_tx, pong_rx))
                .expect("spawn A")
                .join()
                .expect("A");
            partner.join().expect("B");
            elapsed
        }
        Placement::Scheduler => rt.block_on(move || {
            let partner = green::spawn(move || echo(ping_rx, pong_tx));
            let elapsed = green::spawn(move || measure(iters, ping_tx, pong_rx)).join().expect("A");
            partner.join().expect("B");
            elapsed
        }),
    }
}

fn channel(c: &mut Criterion) {
    let mut group = c.benchmark_group("channel");
    let rt = green::Runtime::builder().workers(2).build().expect("runtime");
    let cases = [
        ("green/one_worker", Placement::Pinned(0, 0), None),
        ("green/two_workers", Placement::Pinned(0, 1), None),
        ("green/placed", Placement::Scheduler, None),
        ("green/one_worker_rendezvous", Placement::Pinned(0, 0), Some(0)),
    ];
    for (name, placement, cap) in cases {
        group.bench_function(name, |b| b.iter_custom(|iters| green_round_trips(&rt, placement, cap, iters)));
    }
    drop(rt);

    common::os_ping_pong(&mut group, "os/std_mpsc");
    group.finish();
}

criterion_group! {
    name = benches;
    // Short by default: the machine has two cores and is shared. Command-line flags override.
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = channel
}
criterion_main!(benches);
