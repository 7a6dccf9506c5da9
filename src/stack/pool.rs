//! A worker's own free stacks: the hot path.
//!
//! `take` pops the most recently given stack of the class (its top pages are the likeliest to
//! be still in cache and in RAM); `give` pushes. Neither locks, allocates (each class's list is
//! allocated once, at its first use) nor makes a system call. Only a miss goes to the arena, and
//! only a pool that grew past its high watermark trims: it hands the oldest stacks back to the
//! arena, which discards their pages so the memory returns to the OS.

use std::io;
use std::sync::Arc;

use super::arena::StackArena;
use super::class::{NUM_CLASSES, SizeClass};
use super::green_stack::GreenStack;

/// Free stacks a pool keeps per class before trimming: 64.
///
/// A worker that finishes and starts green threads in bursts of up to 64 reuses warm stacks
/// without a lock or a system call. What they hold is the pages their green threads touched,
/// typically one or two each, so about half a MiB per worker; at worst (every kept stack touched
/// to the bottom) 16 MiB at the default size, which [`POOL_HIGH_BYTES`] bounds for larger classes.
const POOL_HIGH: usize = 64;

/// Usable bytes of free stacks a pool keeps per class before trimming: 16 MiB. Lowers the
/// watermark for classes above 256 KiB (16 stacks of 1 MiB, 2 of 8 MiB).
const POOL_HIGH_BYTES: usize = 16 << 20;

/// The watermark is never below 2, so that a green thread that finishes while another starts
/// does not trim and refill on every spawn.
const POOL_MIN_HIGH: usize = 2;

/// The high watermark of `class`. A trim keeps half of it: the hysteresis makes a pool that
/// hovers around the watermark trim once per `high / 2` gives, not on every one, and the arena's
/// lock is taken once per batch.
#[inline]
fn high_watermark(class: SizeClass) -> usize {
    // Class sizes are powers of two: a shift, not a division, on every give.
    (POOL_HIGH_BYTES >> class.bytes().trailing_zeros()).clamp(POOL_MIN_HIGH, POOL_HIGH)
}

/// A worker's cache of free stacks, per size class. Lives on one worker thread.
#[derive(Debug)]
pub(crate) struct StackPool {
    /// Where misses come from and trims go.
    arena: Arc<StackArena>,
    /// Free stacks per class, most recently given last.
    free: [Vec<GreenStack>; NUM_CLASSES],
}

impl StackPool {
    /// An empty pool drawing on `arena`.
    pub(crate) fn new(arena: Arc<StackArena>) -> StackPool {
        StackPool { arena, free: std::array::from_fn(|_| Vec::new()) }
    }

    /// A stack with at least `size` usable bytes (sizes round up to a power of two, at least
    /// 16 KiB). Fails if `size` is over 1 GiB, or if no memory or mapping is left, with an error
    /// that says which and what to do.
    #[inline]
    pub(crate) fn take(&mut self, size: usize) -> io::Result<GreenStack> {
        let class = SizeClass::of(size)?;
        // Try the pool.
        if let Some(stack) = self.free[class.index()].pop() {
            self.arena.note_pooled(&stack, false);
            return Ok(stack);
        }
        // Try the arena: a trimmed slot, a new slot, or a new chunk.
        self.arena.take(class)
    }

    /// Takes back a stack that no coroutine uses any more.
    #[inline]
    pub(crate) fn give(&mut self, stack: GreenStack) {
        stack.clear_owner();
        self.arena.note_pooled(&stack, true);
        let class = stack.class();
        let high = high_watermark(class);
        let list = &mut self.free[class.index()];
        if list.capacity() == 0 {
            list.reserve_exact(high + 1);
        }
        list.push(stack);
        // Above the watermark: hand the oldest stacks back to the arena, keeping half.
        if list.len() > high {
            let n = list.len() - high / 2;
            self.arena.release_from(list, n);
        }
    }

    /// Free stacks of `class` in this pool.
    #[cfg(test)]
    pub(super) fn pooled(&self, class: SizeClass) -> usize {
        self.free[class.index()].len()
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        // Everything goes back to the arena, so that it can unmap its chunks when it drops.
        for list in &mut self.free {
            let n = list.len();
            self.arena.release_from(list, n);
        }
    }
}
