//! Green threads spawning green threads: the "generations" of the article, as a chain and as a
//! tree.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn chain(depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    green::spawn(move || chain(depth - 1)).join().unwrap() + 1
}

#[test]
fn a_chain_100_deep() {
    assert_eq!(green::run(|| chain(100)), 100);
}

/// Spawns `width` children, each of which spawns its own subtree, until `budget` runs out;
/// returns the number of green threads in the subtree rooted here (this one included).
fn tree(budget: Arc<AtomicUsize>, width: usize) -> usize {
    let mut children = Vec::with_capacity(width);
    for _ in 0..width {
        // Claim one green thread from the budget, or stop.
        if budget.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| b.checked_sub(1)).is_err() {
            break;
        }
        let budget = budget.clone();
        children.push(green::spawn(move || tree(budget, width)));
    }
    1 + children.into_iter().map(|c| c.join().unwrap()).sum::<usize>()
}

#[test]
fn a_tree_of_100_000() {
    const N: usize = 100_000;
    let total = green::run(|| tree(Arc::new(AtomicUsize::new(N - 1)), 10));
    assert_eq!(total, N);
}

#[test]
fn a_tree_of_100_000_on_one_worker() {
    const N: usize = 100_000;
    let rt = green::Runtime::builder().workers(1).build().unwrap();
    let total = rt.block_on(|| tree(Arc::new(AtomicUsize::new(N - 1)), 10));
    assert_eq!(total, N);
}
