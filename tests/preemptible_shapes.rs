//! `#[green::preemptible]` on the shapes of code a user writes: generic functions and methods,
//! `impl Trait`, closures and an `async` block inside, early returns, labels, `let else`,
//! loops over every kind of iterator, and ranges at the limits of their types under budgets
//! small enough that every few iterations spend one. Each compiles and computes what the same
//! code without the attribute does.

// The shapes are what is tested: a labeled block or a `loop` bound to a name before it is
// returned, an assignment spelled out, a boxed argument, an index loop.
#![allow(clippy::let_and_return, clippy::assign_op_pattern, clippy::boxed_local, clippy::needless_range_loop)]

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;

#[green::preemptible]
fn idx_sum(arr: &[u8; 10]) -> u32 {
    let mut t = 0u32;
    for i in 0..10 {
        t += arr[i] as u32;
    }
    t
}

#[green::preemptible]
fn idx_sum_n(v: &[u8], n: usize) -> u32 {
    let mut t = 0u32;
    for i in 0..n {
        t += u32::from(v[i]);
    }
    t
}

#[green::preemptible]
fn by_value(v: Vec<String>) -> usize {
    let mut n = 0;
    for s in v {
        n += s.len();
    }
    n
}

#[green::preemptible]
fn refs_of_refs(v: &[&str]) -> usize {
    let mut n = 0;
    for &s in v {
        n += s.len();
    }
    for s in v.iter() {
        n += s.len();
    }
    n
}

#[green::preemptible]
fn map_iter(m: &HashMap<u32, u32>) -> u32 {
    let mut t = 0;
    for (k, v) in m {
        t += k * v;
    }
    for (_, v) in m.iter() {
        t += *v;
    }
    t
}

#[green::preemptible]
fn generic_iter<I: IntoIterator<Item = u64>>(it: I) -> u64 {
    let mut t = 0u64;
    for x in it {
        t = t.wrapping_add(x);
    }
    t
}

#[green::preemptible]
fn generic_slice<T: Copy + Into<u64>>(v: &[T]) -> u64 {
    let mut t = 0u64;
    for &x in v {
        t += x.into();
    }
    t
}

#[green::preemptible]
fn returns_impl(v: &[u32]) -> impl Iterator<Item = u32> + '_ {
    let mut skip = 0;
    while skip < v.len() && v[skip] == 0 {
        skip += 1;
    }
    v[skip..].iter().copied()
}

#[green::preemptible]
fn early(v: &[i64]) -> Result<i64, String> {
    let mut t = 0i64;
    for &x in v {
        if x < 0 {
            return Err(format!("negative {x}"));
        }
        t = t.checked_add(x).ok_or("overflow")?;
    }
    Ok(t)
}

#[green::preemptible]
fn labeled(grid: &[Vec<u8>]) -> Option<(usize, usize)> {
    let mut found = None;
    'rows: for (r, row) in grid.iter().enumerate() {
        for (c, &cell) in row.iter().enumerate() {
            if cell == 9 {
                found = Some((r, c));
                break 'rows;
            }
            if cell == 7 {
                continue 'rows;
            }
        }
    }
    found
}

#[green::preemptible]
fn labeled_block(v: &[u32]) -> u32 {
    let r = 'blk: {
        for &x in v {
            if x > 10 {
                break 'blk x;
            }
        }
        0
    };
    r
}

#[green::preemptible]
fn while_let_stack(mut stack: Vec<u32>) -> u32 {
    let mut t = 0;
    while let Some(x) = stack.pop() {
        if x > 1 {
            stack.push(x / 2);
            stack.push(x / 2);
        } else {
            t += 1;
        }
    }
    t
}

#[green::preemptible]
/// # Safety
///
/// `p` points at `n` readable `u32`s.
unsafe fn unsafe_sum(p: *const u32, n: usize) -> u32 {
    let mut t = 0;
    for i in 0..n {
        // SAFETY: `i < n`, and the caller promises `n` values at `p`.
        t += unsafe { *p.add(i) };
    }
    t
}

#[green::preemptible]
fn fib(n: u32) -> u64 {
    if n < 2 { n as u64 } else { fib(n - 1) + fib(n - 2) }
}

#[green::preemptible]
fn with_closures(v: &[u32]) -> Vec<u32> {
    let f = |x: u32| -> u32 {
        let mut y = x;
        while y > 100 {
            y /= 2;
        }
        y
    };
    let g = move |x: &u32| for _ in 0..*x {};
    v.iter().for_each(g);
    v.iter().map(|&x| f(x)).collect()
}

#[green::preemptible]
fn async_block() -> impl std::future::Future<Output = u32> {
    async {
        let mut t = 0;
        for i in 0..10u32 {
            t += i;
        }
        t
    }
}

struct S {
    data: Vec<u32>,
}

impl S {
    #[green::preemptible]
    fn total(&self) -> u32 {
        let mut t = 0;
        for x in &self.data {
            t += x;
        }
        t
    }
    #[green::preemptible]
    fn bump(&mut self) {
        for x in &mut self.data {
            *x += 1;
        }
        for x in self.data.iter_mut() {
            *x += 1;
        }
    }
    #[green::preemptible]
    fn consume(self) -> u32 {
        let mut t = 0;
        for x in self.data {
            t += x;
        }
        t
    }
    #[green::preemptible]
    pub(crate) fn generic_method<T: Debug>(&self, t: T) -> String {
        let mut s = String::new();
        for _ in 0..self.data.len() {
            s.push_str(&format!("{t:?}"));
        }
        s
    }
}

trait Summer {
    #[green::preemptible]
    fn sum_to(&self, n: u64) -> u64 {
        let mut t = 0;
        for i in 0..n {
            t += i;
        }
        t
    }
}
impl Summer for S {}

#[green::preemptible]
fn chars_and_bytes(s: &str) -> (usize, usize) {
    let mut digits = 0;
    for b in s.as_bytes() {
        if b.is_ascii_digit() {
            digits += 1;
        }
    }
    let mut upper = 0;
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            upper += 1;
        }
    }
    (digits, upper)
}

#[green::preemptible]
fn array_by_value() -> u32 {
    let mut t = 0;
    for x in [1u32, 2, 3] {
        t += x;
    }
    for x in &[4u32, 5] {
        t += x;
    }
    t
}

#[green::preemptible]
fn inclusive_and_rev(n: u8) -> u32 {
    let mut t = 0u32;
    for i in 0..=n {
        t += i as u32;
    }
    for i in (0..n).rev() {
        t += i as u32;
    }
    for i in (0..n).step_by(2) {
        t += i as u32;
    }
    t
}

#[green::preemptible]
fn let_else_in_loop(v: &[Option<u32>]) -> u32 {
    let mut t = 0;
    for x in v {
        let Some(x) = x else { continue };
        t += x;
    }
    t
}

#[green::preemptible]
fn mut_pattern(v: &[u32]) -> u32 {
    let mut best = 0;
    for mut x in v.iter().copied() {
        x = x.max(1);
        best = best.max(x);
    }
    best
}

#[green::preemptible]
fn loop_value(mut n: u32) -> u32 {
    let steps = loop {
        if n == 1 {
            break 0;
        }
        n = n / 2;
        if n < 3 {
            break n;
        }
    };
    steps
}

#[green::preemptible]
fn for_in_match_arm(v: &[u32], mode: u8) -> u32 {
    match mode {
        0 => {
            let mut t = 0;
            for x in v {
                t += x
            }
            t
        }
        _ => 0,
    }
}

#[green::preemptible]
fn for_as_tail_expr(v: &mut [u32]) {
    for x in v.iter_mut() {
        *x *= 2
    }
}

#[green::preemptible]
fn for_inferred_elem(n: usize) -> Vec<u64> {
    let mut out = vec![0; n];
    for i in 0..n {
        out[i] = i as u64 * 3;
    }
    out
}

#[green::preemptible]
fn nested_fn_item(n: u32) -> u32 {
    fn inner(n: u32) -> u32 {
        n + 1
    }
    let mut t = 0;
    for i in 0..n {
        t += inner(i);
    }
    t
}

#[green::preemptible]
fn range_of_var_type(lo: i16, hi: i16) -> i32 {
    let mut t = 0i32;
    for i in lo..hi {
        t += i32::from(i);
    }
    t
}

#[green::preemptible]
fn vec_deque(d: &std::collections::VecDeque<u32>) -> u32 {
    let mut t = 0;
    for x in d {
        t += x;
    }
    t
}

#[green::preemptible]
fn boxed_slice(b: Box<[u32]>) -> u32 {
    let mut t = 0;
    for x in b.iter() {
        t += x;
    }
    for x in &*b {
        t += x;
    }
    t
}

#[green::preemptible]
fn slice_of_vec_field(v: &Vec<Vec<u32>>) -> u32 {
    let mut t = 0;
    for row in v {
        for x in row {
            t += x;
        }
    }
    t
}

#[green::preemptible]
fn impl_trait_arg(it: impl Iterator<Item = u32>) -> u32 {
    let mut t = 0;
    for x in it {
        t += x;
    }
    t
}

#[green::preemptible]
fn dyn_iter(it: &mut dyn Iterator<Item = u32>) -> u32 {
    let mut t = 0;
    for x in it {
        t += x;
    }
    t
}

#[green::preemptible]
fn where_clause<T>(v: &[T]) -> usize
where
    T: PartialEq + Default,
{
    let mut n = 0;
    for x in v {
        if *x == T::default() {
            n += 1;
        }
    }
    n
}

#[green::preemptible]
fn lifetimes<'a>(v: &'a [&'a str], key: &str) -> Option<&'a str> {
    for s in v {
        if s.len() == key.len() {
            return Some(s);
        }
    }
    None
}

#[green::preemptible]
fn const_generic<const N: usize>(a: [u32; N]) -> u32 {
    let mut t = 0;
    for x in a {
        t += x;
    }
    for x in &a {
        t += x;
    }
    t
}

#[green::preemptible]
extern "C" fn extern_c(n: u32) -> u32 {
    let mut t = 0;
    for i in 0..n {
        t += i;
    }
    t
}

#[test]
fn all_compile_and_compute() {
    assert_eq!(idx_sum(&[1; 10]), 10);
    assert_eq!(idx_sum_n(&[2; 5], 5), 10);
    assert_eq!(by_value(vec!["ab".into(), "c".into()]), 3);
    assert_eq!(refs_of_refs(&["ab", "c"]), 6);
    assert_eq!(generic_iter(vec![1, 2, 3]), 6);
    assert_eq!(generic_slice(&[1u8, 2, 3]), 6);
    assert_eq!(returns_impl(&[0, 0, 3, 4]).sum::<u32>(), 7);
    assert_eq!(early(&[1, 2]), Ok(3));
    assert_eq!(early(&[1, -2]), Err("negative -2".into()));
    assert_eq!(early(&[i64::MAX, 1]), Err("overflow".into()));
    assert_eq!(labeled(&[vec![1, 7, 9], vec![0, 9]]), Some((1, 1)));
    assert_eq!(labeled_block(&[1, 20, 30]), 20);
    assert_eq!(labeled_block(&[1]), 0);
    assert_eq!(while_let_stack(vec![8]), 8);
    // SAFETY: three values at the pointer.
    assert_eq!(unsafe { unsafe_sum([1u32, 2, 3].as_ptr(), 3) }, 6);
    let map: HashMap<u32, u32> = [(1, 2), (3, 4)].into_iter().collect();
    assert_eq!(map_iter(&map), 2 + 12 + 2 + 4);
    let mut future = std::pin::pin!(async_block());
    let polled = future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
    assert_eq!(polled, std::task::Poll::Ready(45));
    assert_eq!(fib(20), 6765);
    assert_eq!(with_closures(&[1000, 5]), vec![62, 5]);
    let mut s = S { data: vec![1, 2, 3] };
    assert_eq!(s.total(), 6);
    s.bump();
    assert_eq!(s.total(), 12);
    assert_eq!(s.sum_to(5), 10);
    assert_eq!(s.generic_method(1u8).len(), 3);
    assert_eq!(s.consume(), 12);
    assert_eq!(chars_and_bytes("A1b2C"), (2, 2));
    assert_eq!(array_by_value(), 15);
    assert_eq!(inclusive_and_rev(4), 10 + 6 + 2);
    assert_eq!(let_else_in_loop(&[Some(1), None, Some(3)]), 4);
    assert_eq!(mut_pattern(&[0, 5, 2]), 5);
    assert_eq!(loop_value(100), 1);
    assert_eq!(for_in_match_arm(&[1, 2], 0), 3);
    let mut v = [1, 2];
    for_as_tail_expr(&mut v);
    assert_eq!(v, [2, 4]);
    assert_eq!(for_inferred_elem(3), vec![0, 3, 6]);
    assert_eq!(nested_fn_item(3), 6);
    assert_eq!(range_of_var_type(-2, 3), 0);
    assert_eq!(vec_deque(&[1, 2].into_iter().collect()), 3);
    assert_eq!(boxed_slice(vec![1, 2].into_boxed_slice()), 6);
    assert_eq!(slice_of_vec_field(&vec![vec![1], vec![2, 3]]), 6);
    assert_eq!(impl_trait_arg([1, 2].into_iter()), 3);
    assert_eq!(dyn_iter(&mut [1, 2].into_iter()), 3);
    assert_eq!(where_clause(&[0, 1, 0]), 2);
    assert_eq!(lifetimes(&["a", "bb"], "xx"), Some("bb"));
    assert_eq!(const_generic([1, 2]), 6);
    assert_eq!(extern_c(4), 6);
}

#[green::preemptible]
fn count_i8(lo: i8, hi: i8) -> (u32, i64) {
    let mut n = 0u32;
    let mut s = 0i64;
    for i in lo..hi {
        n += 1;
        s += i as i64;
    }
    (n, s)
}

#[green::preemptible]
fn count_i16(lo: i16, hi: i16) -> (u32, i64) {
    let mut n = 0u32;
    let mut s = 0i64;
    for i in lo..hi {
        n += 1;
        s += i as i64;
    }
    (n, s)
}

#[green::preemptible]
fn count_u64(lo: u64, hi: u64) -> u64 {
    let mut n = 0u64;
    for _ in lo..hi {
        n += 1;
    }
    n
}

#[test]
fn edge_ranges_under_small_budgets() {
    for budget in [1, 2, 3, 5, 7, 100, 1024] {
        let rt = green::Runtime::builder().workers(1).budget(budget).build().unwrap();
        rt.block_on(|| {
            let _sleeper = green::spawn(|| green::sleep(std::time::Duration::from_millis(50)));
            for _ in 0..3 {
                assert_eq!(count_i8(i8::MIN, i8::MAX), (255, (-128..127).sum::<i64>()));
                assert_eq!(count_i16(i16::MIN, i16::MAX), (65535, (-32768..32767).sum::<i64>()));
                assert_eq!(count_i16(-3, 3), (6, -3));
                assert_eq!(count_i16(3, -3), (0, 0));
                assert_eq!(count_u64(u64::MAX - 100_000, u64::MAX), 100_000);
            }
        });
    }
}
