//! What `#[green::preemptible]` costs in hot loops: each loop plain and annotated, side by side.
//!
//! # What it measures
//!
//! Each loop below exists thirty-two times, from the same tokens: plain and with
//! `#[green::preemptible]`, each in sixteen places in the binary. All run on a lone green thread
//! of a one-worker runtime, so the budget runs out and the clock is read as in real use, but no
//! forced yield ever happens (nobody else waits): what is measured is the cost of counting.
//!
//! - `chain`: a dependent arithmetic chain (a multiply, an add, a shift and a xor per step,
//!   about 6 cycles of latency) in a `while` loop: one tick per iteration.
//! - `sum`: a sum of 65,536 `u32`s over a slice, which LLVM vectorises (about 8 items a cycle).
//!   The body is light, so the macro runs it as a plain vectorised loop over sub-slices (one
//!   here: a chunk holds as many items as a budget pays for), and charges the budget once per
//!   chunk.
//! - `branchy/for`: a byte classifier over 8 KiB of text with a `match` and data-dependent
//!   branches: a light `for` body again, counted by chunks.
//! - `branchy/while`: Collatz steps of many numbers, `while n != 1` with an unpredictable
//!   branch: the worst case, one tick per iteration of a loop whose iteration is about two
//!   cycles.
//!
//! The overhead of each is `preemptible / plain - 1` of the two sides' medians over their
//! sixteen places, each place counted by its median round (41 rounds, alternating with every
//! other place). Target: 3% or less (Go measured 7.8% for its loop back-edge checks).
//!
//! Run with `cargo bench --bench tick -- --warm-up-time 1 --measurement-time 3`.
//!
//! These loops are a few instructions each, so their speed also depends on where the linker
//! puts them (a loop that straddles a 32-byte boundary can run at half speed; the branchy
//! loops' branch prediction depends on their addresses). Two functions with identical inner
//! loops measured 592 and 318 ns in one build, and the same code 11.2 and 12.7 µs in another.
//! Hence the places: the table prints each side's fastest and slowest place next to its median.
//! Compare within a run, run more than once, and if two figures disagree wildly, look at the
//! code of both, or pin the loop alignment for all with
//! `RUSTFLAGS="-C llvm-args=-align-loops=64"`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};

/// Defines the four loops, each `#[inline(never)]` and with the given attribute if any. Each
/// module below expands it once: every loop exists in [`PLACES`] places per side, interleaved,
/// from the same tokens. How fast a few-instruction loop runs also depends on where it sits in
/// the binary, so each side counts by the median over its places, and neither side's figure
/// rests on one draw of placement.
macro_rules! loops {
    ($(#[$attr:meta])?) => {
        use super::Inputs;

        #[inline(never)]
        $(#[$attr])?
        pub fn chain(steps: u64, seed: u64) -> u64 {
            let mut x = seed;
            let mut i = 0;
            while i < steps {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                x ^= x >> 29;
                i += 1;
            }
            x ^ PLACE
        }

        #[inline(never)]
        $(#[$attr])?
        pub fn sum(values: &[u32]) -> u32 {
            let mut total = 0u32;
            for &v in values {
                total = total.wrapping_add(v);
            }
            total ^ PLACE as u32
        }

        #[inline(never)]
        $(#[$attr])?
        pub fn classify(text: &[u8]) -> u64 {
            let (mut spaces, mut digits, mut upper, mut other) = (0u64, 0u64, 0u64, 0u64);
            for &b in text {
                match b {
                    b' ' | b'\n' => spaces += 1,
                    b'0'..=b'9' => digits += 1,
                    b'A'..=b'Z' => upper += 3,
                    _ => other ^= u64::from(b),
                }
            }
            spaces ^ (digits << 16) ^ (upper << 32) ^ (other << 48) ^ PLACE
        }

        #[inline(never)]
        $(#[$attr])?
        pub fn collatz(starts: &[u32]) -> u64 {
            let mut steps = 0u64;
            let mut i = 0;
            while i < starts.len() {
                let mut n = u64::from(starts[i]);
                while n > 1 {
                    n = if n & 1 == 0 { n / 2 } else { 3 * n + 1 };
                    steps += 1;
                }
                i += 1;
            }
            steps ^ PLACE
        }

        /// The four loops on their inputs, in the order of [`super::LOOPS`].
        pub fn calls(inputs: &Inputs) -> [super::Call<'_>; 4] {
            [
                Box::new(|| chain(black_box(10_000), 7)),
                Box::new(|| u64::from(sum(black_box(&inputs.values)))),
                Box::new(|| classify(black_box(&inputs.text))),
                Box::new(|| collatz(black_box(&inputs.starts))),
            ]
        }
    };
}

/// Places of each side in the binary.
const PLACES: usize = 16;

/// The loops' names, in the order of each module's `calls`.
const LOOPS: [&str; 4] = ["chain", "sum", "branchy/for", "branchy/while"];

/// Declares the places, each a pair of modules (plain, preemptible) expanded from `loops!`,
/// interleaved so that neither side gets all the early or all the late addresses, and
/// `places`, which lists their loops.
macro_rules! places {
    ($($place:literal $plain:ident $preemptible:ident),*) => {
        $(
            mod $plain {
                use std::hint::black_box;
                /// Makes each place's code differ from the others', so that the compiler does not
                /// merge the copies into one function (it does, identical ones).
                const PLACE: u64 = $place;
                loops!();
            }
            mod $preemptible {
                use std::hint::black_box;
                const PLACE: u64 = $place;
                loops!(#[green::preemptible]);
            }
        )*

        /// Each place's loops, plain and preemptible.
        fn places(inputs: &Inputs) -> Vec<([Call<'_>; 4], [Call<'_>; 4])> {
            vec![$(($plain::calls(inputs), $preemptible::calls(inputs))),*]
        }
    };
}

places!(
    1 plain_1 preemptible_1, 2 plain_2 preemptible_2, 3 plain_3 preemptible_3, 4 plain_4 preemptible_4,
    5 plain_5 preemptible_5, 6 plain_6 preemptible_6, 7 plain_7 preemptible_7, 8 plain_8 preemptible_8,
    9 plain_9 preemptible_9, 10 plain_10 preemptible_10, 11 plain_11 preemptible_11, 12 plain_12 preemptible_12,
    13 plain_13 preemptible_13, 14 plain_14 preemptible_14, 15 plain_15 preemptible_15, 16 plain_16 preemptible_16
);

/// A pseudo-random sequence (xorshift), so the inputs are the same on every run.
fn pseudo_random(len: usize) -> Vec<u32> {
    let mut x = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
        .collect()
}

/// Times `iters` calls of `f` inside a green thread of `rt`.
fn on_green_thread<R>(rt: &green::Runtime, iters: u64, f: impl Fn() -> R + Send + Sync) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        start.elapsed()
    })
}

/// The inputs of the four loops, the same on every run.
struct Inputs {
    /// For `sum`: 65,536 pseudo-random `u32`s (256 KiB).
    values: Vec<u32>,
    /// For `branchy/for`: 8 KiB of text drawn from 67 characters.
    text: Vec<u8>,
    /// For `branchy/while`: 256 starting numbers below 2^20.
    starts: Vec<u32>,
}

impl Inputs {
    fn new() -> Inputs {
        let inputs = Inputs {
            values: pseudo_random(65_536),
            text: pseudo_random(8192)
                .into_iter()
                .map(|r| b" \n0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,;"[r as usize % 67])
                .collect(),
            starts: pseudo_random(256).into_iter().map(|r| 1 + (r >> 12)).collect(),
        };
        // Every place of every loop computes the same thing.
        for (plain, preemptible) in places(&inputs) {
            for (a, b) in plain.iter().zip(&preemptible) {
                assert_eq!(a(), b());
            }
        }
        inputs
    }
}

/// One of the loops, called on its input.
type Call<'a> = Box<dyn Fn() -> u64 + Sync + 'a>;

/// Criterion's figures: the first place of each side.
fn tick(c: &mut Criterion) {
    // The plain loops run for long without a tick, on purpose: no monitor warning about it.
    let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().expect("runtime");
    let inputs = Inputs::new();
    let (plain, preemptible) = places(&inputs).swap_remove(0);
    let mut group = c.benchmark_group("tick");
    for (i, name) in LOOPS.iter().enumerate() {
        for (side, call) in [("plain", &plain[i]), ("preemptible", &preemptible[i])] {
            group.bench_function(format!("{name}/{side}"), |b| {
                b.iter_custom(|iters| on_green_thread(&rt, iters, call));
            });
        }
    }
    group.finish();
}

/// Rounds of each variant in [`print_overheads`]; odd, for a median.
const ROUNDS: usize = 41;

/// Prints each loop's overhead measured the robust way for a shared machine. Every variant
/// (each place of each side) runs [`ROUNDS`] rounds of about 2 ms, the variants alternating and
/// each round starting at the next one, and counts by its median round. A side counts by the
/// median over its places: a function does not choose where it lands, and the fastest place
/// would flatter the side whose places vary more. The fastest and slowest places are printed
/// beside it, and the fastest-against-fastest figure for comparison. Criterion's figures
/// follow, one function at a time.
fn print_overheads(inputs: &Inputs) {
    // The plain loops run for long without a tick, on purpose: no monitor warning about it.
    let rt = green::Runtime::builder().workers(1).blocking_threshold(None).build().expect("runtime");
    let places = places(inputs);
    eprintln!("#[preemptible] overhead: each loop in {PLACES} places per side, {ROUNDS} alternating rounds of about");
    eprintln!("2 ms per place; ns per call, the median over places of each place's median round, with the");
    eprintln!("fastest and slowest place. The overhead compares the two medians; the last column compares");
    eprintln!("the fastest place of each side instead:");
    eprintln!(
        "  {:14} {:>26} {:>26} {:>9} {:>9}",
        "loop", "plain (fastest-slowest)", "preemptible (f.-s.)", "overhead", "fastest"
    );
    for (i, name) in LOOPS.iter().enumerate() {
        let variants: Vec<&Call<'_>> =
            places.iter().map(|(plain, _)| &plain[i]).chain(places.iter().map(|(_, pre)| &pre[i])).collect();
        let per_round = {
            let start = Instant::now();
            let mut calls = 0u64;
            while start.elapsed() < Duration::from_millis(2) {
                black_box(variants[0]());
                calls += 1;
            }
            calls
        };
        // times[v][r]: variant v in round r.
        let mut times = vec![Vec::with_capacity(ROUNDS); variants.len()];
        for round in 0..ROUNDS {
            // Each round starts at another variant, so that none always runs first.
            for k in 0..variants.len() {
                let v = (round + k) % variants.len();
                times[v].push(on_green_thread(&rt, per_round, variants[v]));
            }
        }
        let ns = |d: Duration| d.as_secs_f64() * 1e9 / per_round as f64;
        let place_ns: Vec<f64> = times.iter().map(|t| ns(median(t))).collect();
        let (plain, preemptible) = place_ns.split_at(PLACES);
        let side = |places: &[f64]| {
            let mut sorted = places.to_vec();
            sorted.sort_by(f64::total_cmp);
            let mid = sorted.len() / 2;
            ((sorted[mid - 1] + sorted[mid]) / 2.0, sorted[0], sorted[sorted.len() - 1])
        };
        let ((plain_median, plain_min, plain_max), (pre_median, pre_min, pre_max)) = (side(plain), side(preemptible));
        let overhead = (pre_median / plain_median - 1.0) * 100.0;
        let fastest = (pre_min / plain_min - 1.0) * 100.0;
        eprintln!(
            "  {name:14} {:>26} {:>26} {overhead:+8.1}% {fastest:+8.1}%",
            format!("{plain_median:.0} ({plain_min:.0}-{plain_max:.0})"),
            format!("{pre_median:.0} ({pre_min:.0}-{pre_max:.0})"),
        );
    }
}

/// The median of `times`.
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn main() {
    // Only under `cargo bench`, not when the bench target is merely tested.
    if std::env::args().any(|a| a == "--bench") {
        print_overheads(&Inputs::new());
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

criterion_group!(benches, tick);
