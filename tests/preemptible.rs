//! `#[green::preemptible]` keeps the meaning of the function it rewrites, and makes a busy loop
//! share its worker.
//!
//! Most tests define a function twice from the same tokens, plain and annotated, and check that
//! both compute the same thing on the same inputs: loops of every kind, labels, `break` with a
//! value, `continue`, early `return`, `?`, closures, and the chunked form of light `for` loops
//! over slices, ranges and other iterators (at and around the chunk boundaries).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Items of a slice or range per chunk (`green::__private`'s `CHUNK`); tests go around it.
const CHUNK: usize = 65536;
/// Items per chunk of any other iterator (`ANY_CHUNK`, with the default budget).
const ANY_CHUNK: usize = 64;

/// Defines `$plain` and `$annotated` from one function, so both compile the same code but for
/// the attribute.
macro_rules! twins {
    ($plain:ident, $annotated:ident, fn $(<$($g:tt),*>)? ($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        fn $plain $(<$($g),*>)? ($($arg: $ty),*) -> $ret $body

        #[green::preemptible]
        fn $annotated $(<$($g),*>)? ($($arg: $ty),*) -> $ret $body
    };
}

/// Runs `f` on a green thread of a one-worker runtime.
fn on_green<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let rt = green::Runtime::builder().workers(1).build().expect("runtime");
    rt.block_on(f)
}

// ---- loops of every kind, labels, values ------------------------------------------------------

twins!(nested_plain, nested_annotated, fn(n: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    'rows: for i in 0..n {
        let mut j = 0;
        'cols: while j < n {
            j += 1;
            if (i + j) % 3 == 0 {
                continue 'cols;
            }
            if j > i + 2 {
                continue 'rows;
            }
            if i * j > 40 {
                break 'rows;
            }
            out.push((i, j));
        }
    }
    out
});

#[test]
fn nested_loops_with_labels() {
    for n in [0, 1, 5, 12] {
        assert_eq!(nested_plain(n), on_green(|| nested_annotated(n)));
    }
}

twins!(values_plain, values_annotated, fn(limit: u64) -> (u64, u64, u64) {
    // Loops as expressions, with `break value`.
    let mut k = 0u64;
    let first_square = loop {
        k += 1;
        let found = 'search: loop {
            if k * k > limit {
                break 'search Some(k);
            }
            if k.is_multiple_of(5) {
                break 'search None;
            }
            k += 1;
        };
        if let Some(k) = found {
            break k;
        }
    };
    // `break 'outer value` from an inner loop.
    let mut i = 0u64;
    let pair = 'outer: loop {
        i += 1;
        for j in 0..i {
            if (i * i + j) % 7 == 3 {
                break 'outer i * 100 + j;
            }
        }
    };
    // `while let` draining a stack.
    let mut stack = vec![limit];
    let mut visited = 0u64;
    while let Some(top) = stack.pop() {
        visited += 1;
        if top > 1 {
            stack.push(top / 2);
            stack.push(top / 3);
        }
    }
    (first_square, pair, visited)
});

#[test]
fn loops_as_expressions_and_while_let() {
    for limit in [0, 1, 10, 1000] {
        assert_eq!(values_plain(limit), on_green(|| values_annotated(limit)));
    }
}

twins!(early_plain, early_annotated, fn(words: &[&str]) -> Result<u64, String> {
    let mut total = 0u64;
    for w in words {
        let n: u64 = w.parse().map_err(|e| format!("{w}: {e}"))?;
        if n == 0 {
            return Ok(u64::MAX);
        }
        let mut m = n;
        loop {
            if m == 1 {
                break;
            }
            m = if m & 1 == 0 { m / 2 } else { 3 * m + 1 };
            total += 1;
        }
    }
    Ok(total)
});

#[test]
fn early_return_and_question_mark() {
    for words in [&["3", "7", "27"][..], &["5", "x", "6"], &["4", "0", "9"], &[]] {
        assert_eq!(early_plain(words), on_green(|| early_annotated(words)));
    }
}

fn call_twice(f: impl Fn(u64) -> u64, n: u64) -> u64 {
    f(n) + f(n / 2)
}

twins!(closures_plain, closures_annotated, fn(n: u64) -> u64 {
    let collatz = |mut m: u64| {
        let mut steps = 0;
        while m > 1 {
            m = if m & 1 == 0 { m / 2 } else { 3 * m + 1 };
            steps += 1;
        }
        steps
    };
    let mut total = 0;
    let mut add = |x: u64| {
        for _ in 0..x % 5 {
            total += x;
        }
    };
    (1..n).for_each(|i| add(collatz(i)));
    // A closure with a loop stays `Fn`: it counts in a counter of its own, not one it captures.
    let sum_below = |k: u64| {
        let (mut s, mut j) = (0, 0);
        while j < k {
            s += j;
            j += 1;
        }
        s
    };
    total += call_twice(sum_below, n);
    // A nested function is not rewritten, but still works.
    fn triangle(n: u64) -> u64 {
        let mut s = 0;
        for i in 0..=n {
            s += i;
        }
        s
    }
    total + triangle(n)
});

#[test]
fn closures_and_nested_functions() {
    for n in [0, 1, 50, 300] {
        assert_eq!(closures_plain(n), on_green(|| closures_annotated(n)));
    }
}

twins!(consts_plain, consts_annotated, fn() -> usize {
    // Loops in constant contexts are left alone (a tick cannot run at compile time).
    const N: usize = {
        let mut n = 0;
        while n < 3 {
            n += 1;
        }
        n
    };
    let a = [1u8; {
        let mut m = 0;
        loop {
            m += 2;
            if m > 4 {
                break m;
            }
        }
    }];
    let b = const {
        let mut k = 0;
        while k < 5 {
            k += 1;
        }
        k
    };
    N + a.len() + b
});

// A light loop (cut into chunks) whose body holds constant contexts with jumps of their own:
// those jumps stay where they are, the loop's labels being out of their scope.
twins!(consts_in_light_loop_plain, consts_in_light_loop_annotated, fn(values: &[u32]) -> u32 {
    let mut total = 0;
    for v in values {
        total += *v + const {
            let mut i = 0u32;
            loop {
                i += 1;
                if i == 3 {
                    break;
                }
            }
            i
        };
        total += [0u8; {
            let mut n = 0;
            'count: loop {
                n += 1;
                if n < 2 {
                    continue 'count;
                }
                break n;
            }
        }]
        .len() as u32;
    }
    total
});

#[test]
fn constant_contexts() {
    assert_eq!(consts_plain(), 14);
    assert_eq!(on_green(consts_annotated), 14);
    let values = [1, 2, 3];
    assert_eq!(consts_in_light_loop_plain(&values), 21);
    assert_eq!(on_green(|| consts_in_light_loop_annotated(&values)), 21);
}

struct Accumulator {
    total: u64,
}

impl Accumulator {
    #[green::preemptible]
    fn add_all(&mut self, values: &[u64]) -> &mut Self {
        for v in values {
            self.total += v;
        }
        self
    }
}

trait Scaled {
    fn values(&self) -> Vec<u64>;

    #[green::preemptible]
    fn scaled_sum(&self, k: u64) -> u64 {
        let mut s = 0;
        for v in self.values() {
            s += v * k;
        }
        s
    }
}

impl Scaled for Accumulator {
    fn values(&self) -> Vec<u64> {
        vec![self.total, 1, 2]
    }
}

#[green::preemptible]
fn generic_max<T: PartialOrd + Copy>(items: &[T]) -> Option<T> {
    let mut best: Option<T> = None;
    for &x in items {
        match best {
            Some(b) if b >= x => {}
            _ => best = Some(x),
        }
    }
    best
}

#[test]
fn methods_trait_defaults_and_generics() {
    on_green(|| {
        let mut acc = Accumulator { total: 0 };
        assert_eq!(acc.add_all(&[1, 2, 3]).add_all(&[4]).total, 10);
        assert_eq!(acc.scaled_sum(2), 26);
        assert_eq!(generic_max(&[3.5, -1.0, 9.25, 2.0]), Some(9.25));
        assert_eq!(generic_max::<u8>(&[]), None);
    });
}

// ---- light `for` loops: the chunked form -------------------------------------------------------

twins!(slice_plain, slice_annotated, fn(v: &[u32]) -> (u32, usize, u32) {
    let mut sum = 0u32;
    for &x in v {
        sum = sum.wrapping_add(x);
    }
    let mut count = 0;
    for x in v.iter() {
        if *x % 3 == 0 {
            continue;
        }
        count += 1;
    }
    let mut last_small = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > 4_000_000_000 {
            break;
        }
        last_small = x.wrapping_add(i as u32);
    }
    (sum, count, last_small)
});

/// Pseudo-random values (xorshift).
fn pseudo_random(len: usize, mut x: u32) -> Vec<u32> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
        .collect()
}

#[test]
fn light_loops_over_slices() {
    for len in [0, 1, 63, 64, 65, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
        let v = pseudo_random(len, 0x1234_5678);
        assert_eq!(slice_plain(&v), on_green(|| slice_annotated(&v)), "len {len}");
    }
}

twins!(slice_mut_plain, slice_mut_annotated, fn(v: &mut Vec<u64>, a: &mut [u64; 5]) -> u64 {
    for x in v.iter_mut() {
        *x = x.wrapping_mul(3);
    }
    for x in &mut *v {
        *x ^= 1;
    }
    for x in &mut a[..] {
        *x += 1;
    }
    for x in a {
        *x *= 2;
    }
    let mut s = 0u64;
    for x in &*v {
        s = s.wrapping_add(*x);
    }
    s
});

#[test]
fn light_loops_over_mutable_slices() {
    for len in [0, 5, CHUNK + 3] {
        let (mut v1, mut a1) = ((0..len as u64).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        let (mut v2, mut a2) = (v1.clone(), a1);
        let plain = slice_mut_plain(&mut v1, &mut a1);
        let annotated = on_green(|| slice_mut_annotated(&mut v2, &mut a2));
        assert_eq!((plain, &v1, a1), (annotated, &v2, a2), "len {len}");
    }
}

twins!(ranges_plain, ranges_annotated, fn(n: u64) -> Vec<i128> {
    let mut out = Vec::new();
    let mut acc = 0i128;
    for i in 0..n {
        acc += i as i128;
    }
    out.push(acc);
    // Signed, negative, and across zero.
    let mut acc = 0i128;
    for i in -(n as i64)..(n as i64 / 2) {
        acc = acc * 3 % 1_000_003 + i as i128;
    }
    out.push(acc);
    // The whole of a small type, and an empty and a reversed range.
    let mut acc = 0i128;
    for b in 0u8..255 {
        acc += b as i128;
    }
    for i in -128i8..127 {
        acc += i as i128;
    }
    for _ in std::hint::black_box(5u32)..5 {
        acc += 1000;
    }
    for _ in std::hint::black_box(10u32)..3 {
        acc += 1000;
    }
    out.push(acc);
    // Near the top of the type.
    let mut acc = 0i128;
    for x in (u64::MAX - n)..u64::MAX {
        acc += (x % 1000) as i128;
    }
    for x in (i32::MAX - n as i32)..i32::MAX {
        acc += (x % 7) as i128;
    }
    out.push(acc);
    // Labelled: `break 'label` and `continue 'label` in a chunked loop.
    let mut acc = 0i128;
    'scan: for i in 0..n {
        if i % 5 == 0 {
            continue 'scan;
        }
        if i > 3 * CHUNK as u64 / 2 {
            break 'scan;
        }
        acc += i as i128;
    }
    out.push(acc);
    out
});

#[test]
fn light_loops_over_ranges() {
    for n in [0, 1, 64, CHUNK as u64 - 1, CHUNK as u64, CHUNK as u64 + 1, 2 * CHUNK as u64 + 5] {
        assert_eq!(ranges_plain(n), on_green(|| ranges_annotated(n)), "n {n}");
    }
}

/// An iterator that is not fused: it panics if called again after it returned `None`, as a
/// `for` loop never does. Counts its calls.
struct Strict<'a> {
    left: usize,
    done: bool,
    calls: &'a Cell<usize>,
}

impl Iterator for Strict<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        assert!(!self.done, "next() called after None");
        self.calls.set(self.calls.get() + 1);
        if self.left == 0 {
            self.done = true;
            return None;
        }
        self.left -= 1;
        Some(self.left)
    }
}

twins!(strict_plain, strict_annotated, fn(n: usize, stop: usize) -> (usize, usize) {
    let calls = Cell::new(0);
    let mut sum = 0;
    for x in (Strict { left: n, done: false, calls: &calls }) {
        if x == stop {
            break;
        }
        sum += x;
    }
    (sum, calls.get())
});

#[test]
fn light_loops_over_other_iterators_call_next_exactly_as_before() {
    for n in [0, 1, ANY_CHUNK - 1, ANY_CHUNK, ANY_CHUNK + 1, 2 * ANY_CHUNK, 1000] {
        for stop in [usize::MAX, 0, n / 2] {
            assert_eq!(strict_plain(n, stop), on_green(|| strict_annotated(n, stop)), "n {n} stop {stop}");
        }
    }
}

twins!(others_plain, others_annotated, fn(text: &str, map: &BTreeMap<u32, u32>) -> (u32, u32, u64) {
    let mut upper = 0;
    for c in text.chars() {
        if c.is_ascii_uppercase() {
            upper += 1;
        }
    }
    let mut weighted = 0;
    for (k, v) in map {
        weighted += k * v;
    }
    let mut bytes = 0u64;
    for b in text.bytes().rev() {
        let Some(d) = (b as char).to_digit(10) else { continue };
        bytes = bytes * 10 + d as u64;
        if bytes > 1_000_000 {
            break;
        }
    }
    (upper, weighted, bytes)
});

#[test]
fn light_loops_over_other_iterators() {
    let text: String = (0..500).map(|i| ["Ab", "9", "xY", " 1"][i % 4]).collect();
    let map: BTreeMap<u32, u32> = (0..300).map(|i| (i, i % 17)).collect();
    assert_eq!(others_plain(&text, &map), on_green(|| others_annotated(&text, &map)));
}

twins!(question_plain, question_annotated, fn(v: &[Option<u32>]) -> Option<u32> {
    let mut s = 0u32;
    for x in v {
        s = s.checked_add((*x)?)?;
    }
    Some(s)
});

#[test]
fn light_loops_with_question_mark() {
    let mut v: Vec<Option<u32>> = (0..CHUNK as u32 + 10).map(Some).collect();
    assert_eq!(question_plain(&v), on_green(|| question_annotated(&v)));
    v[CHUNK + 3] = None;
    assert_eq!(question_plain(&v), None);
    assert_eq!(on_green(|| question_annotated(&v)), None);
    assert_eq!(question_annotated(&[Some(u32::MAX), Some(1)]), None);
}

twins!(temporaries_plain, temporaries_annotated, fn(m: &Mutex<Vec<u32>>) -> u32 {
    // The guard is a temporary of the loop's expression: it must live as long as the loop.
    let mut s = 0;
    for x in m.lock().unwrap().iter() {
        s += x;
    }
    s
});

#[test]
fn temporaries_of_the_loop_expression_live_as_long_as_the_loop() {
    let m = Mutex::new((0..100).collect::<Vec<u32>>());
    assert_eq!(temporaries_plain(&m), on_green(|| temporaries_annotated(&m)));
}

// ---- sharing the worker -------------------------------------------------------------------------

/// Longest a test waits for the other green thread before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// Spins until `flag` is set, or until `PATIENCE` has passed; returns whether it was set.
#[green::preemptible]
fn spin_until_set(flag: &AtomicBool) -> bool {
    let start = Instant::now();
    while !flag.load(Ordering::Acquire) {
        if start.elapsed() > PATIENCE {
            return false;
        }
    }
    true
}

/// On a one-worker runtime: a green thread that sleeps `delay` and then sets a flag, beside
/// `busy`, which runs until it sees the flag (or gives up) and returns whether it did.
fn beside_a_sleeper(delay: Duration, busy: impl FnOnce(&AtomicBool) -> bool + Send) -> bool {
    let rt = green::Runtime::builder().workers(1).build().expect("runtime");
    rt.block_on(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let sleeper = {
            let flag = flag.clone();
            green::spawn(move || {
                green::sleep(delay);
                flag.store(true, Ordering::Release);
            })
        };
        let saw = busy(&flag);
        sleeper.join().expect("sleeper");
        saw
    })
}

#[test]
fn a_tight_preemptible_loop_lets_a_sleeper_in_on_one_worker() {
    let set = beside_a_sleeper(Duration::from_millis(5), spin_until_set);
    assert!(set, "the sleeper never ran while the preemptible loop spun on the only worker");
}

/// Light arithmetic, in a chunked `for` loop over a range.
#[green::preemptible]
fn burn(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    x
}

#[test]
fn a_chunked_light_loop_lets_a_sleeper_in_on_one_worker() {
    let woke = beside_a_sleeper(Duration::from_millis(2), |flag| {
        // Only `burn` ticks: this loop around it does not, so the sleeper gets in only if the
        // chunked loop inside `burn` shares the worker.
        let start = Instant::now();
        while !flag.load(Ordering::Acquire) && start.elapsed() < PATIENCE {
            std::hint::black_box(burn(std::hint::black_box(1 << 20)));
        }
        flag.load(Ordering::Acquire)
    });
    assert!(woke, "the sleeper never ran while a chunked preemptible loop burned on the only worker");
}

/// A short loop in a closure, called over and over by an iterator adapter: the closure's own
/// back-edges never reach a charge, and the function's entry tick runs once.
#[green::preemptible]
fn short_loops_in_a_closure(flag: &AtomicBool) -> bool {
    let start = Instant::now();
    std::iter::repeat(())
        .map(|()| {
            let mut k = 0u32;
            while k < 100 {
                k = std::hint::black_box(k + 1);
            }
        })
        .take_while(|()| !flag.load(Ordering::Acquire) && start.elapsed() < PATIENCE)
        .for_each(drop);
    flag.load(Ordering::Acquire)
}

#[test]
fn a_closure_s_short_loop_called_over_and_over_lets_a_sleeper_in() {
    let woke = beside_a_sleeper(Duration::from_millis(1), short_loops_in_a_closure);
    assert!(woke, "the sleeper never ran while a closure's short loop ran over and over on the only worker");
}

// ---- which chunk source a light loop gets -------------------------------------------------------

/// The chunk source the expansion picks for `iterable`, by name.
macro_rules! source_of {
    ($iterable:expr) => {{
        #[allow(unused_imports)]
        use green::__private::{ForChunksAny as _, ForChunksSliceOrRange as _};
        let source = (&&green::__private::ForChunks::new($iterable)).__green_for_chunks();
        let name = std::any::type_name_of_val(&source);
        let path = name.split('<').next().unwrap_or(name);
        path.rsplit("::").next().unwrap_or(path).to_owned()
    }};
}

#[test]
fn slices_and_ranges_are_cut_into_sub_slices_and_sub_ranges() {
    let mut v = vec![1u32, 2, 3];
    let mut a = [1u8; 4];
    assert_eq!(source_of!(&v[..]), "SliceSource");
    assert_eq!(source_of!(&v), "SliceSource");
    assert_eq!(source_of!(v.iter()), "SliceSource");
    assert_eq!(source_of!(&a), "SliceSource");
    assert_eq!(source_of!(&mut v[..]), "SliceMutSource");
    assert_eq!(source_of!(&mut v), "SliceMutSource");
    assert_eq!(source_of!(v.iter_mut()), "SliceMutSource");
    assert_eq!(source_of!(&mut a), "SliceMutSource");
    assert_eq!(source_of!(0..10), "RangeSource");
    assert_eq!(source_of!(0u8..10), "RangeSource");
    assert_eq!(source_of!(-5i64..5), "RangeSource");
    // Everything else goes through the counting adapter.
    assert_eq!(source_of!(0..=10), "AnySource");
    assert_eq!(source_of!(v.iter().enumerate()), "AnySource");
    assert_eq!(source_of!(v.clone()), "AnySource");
    assert_eq!(source_of!("abc".chars()), "AnySource");
    assert_eq!(source_of!('a'..'e'), "AnySource");
}
