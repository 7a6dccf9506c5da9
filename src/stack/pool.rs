//! A worker's own free stacks: the hot path, and when they go back to the OS.
//!
//! # Job
//!
//! `take` pops the most recently given stack of the class (its top pages are the likeliest to
//! be still in cache and in RAM); `give` pushes. Neither locks, allocates (each class's list is
//! allocated once, at its first use), reads the clock nor makes a system call. Only a miss goes
//! to the arena. Stacks leave the pool for the arena, which discards their pages so the memory
//! returns to the OS, in two ways:
//!
//! - **by age**, in [`StackPool::maintain`]: a stack that sat in the pool unused for a whole
//!   trim interval ([`TRIM_AGE`]) goes back. This is the normal way.
//! - **by count**, in `give`: a class's list that passes a hard cap ([`POOL_CAP`],
//!   [`POOL_CAP_BYTES`], [`SEPARATE_POOL_CAP`]) hands its oldest quarter back at once. This only
//!   bounds a burst within one interval.
//!
//! # Trim intervals and the low-water mark
//!
//! The pool does not stamp stacks with times. It divides time into intervals of at least
//! [`TRIM_AGE`], ended by a `maintain` call ("a pass"), and keeps per class the **low-water
//! mark**: the fewest stacks the list held since the last pass. The list is a stack (LIFO), so
//! the `low` stacks at its bottom are exactly those that no `take` reached during the whole
//! interval: none of them was needed for at least `TRIM_AGE`.
//!
//! 1. `take`: pop; `low = min(low, len)`. One compare, no clock.
//! 2. `give`: push; `low` unchanged. If `len` passes the cap, release the oldest stacks down to
//!    three quarters of the cap and lower `low` by as many (they were the bottom of the list).
//! 3. `maintain(now)`, before the next pass is due: one `Instant` compare, nothing else.
//! 4. `maintain(now)`, when due: per class, release the `low` oldest stacks, then start a new
//!    interval: `low = len`, next pass at `now + TRIM_AGE`. (The first call only starts the
//!    first interval.)
//!
//! Invariant: `low <= len` for every class, so a miss (empty list) has `low == 0` already.
//!
//! A stack is thus released between `TRIM_AGE` and `2 * TRIM_AGE` after its last use, as long as
//! `maintain` is called often enough; a working set that is reused within every interval, however
//! large (up to the cap), is never trimmed. What is idle is the minimum over an interval, not
//! the count at an instant: gperftools' thread caches scavenge by the same low-water mark
//! (`lowater_`), and Go's `sync.Pool` frees what survived two GC epochs unused.
//!
//! # Who calls `maintain`
//!
//! The worker that owns the pool: before it sleeps, and every so often while busy. Before it
//! sleeps it also bounds its sleep by [`StackPool::next_maintain`], so that an idle worker wakes
//! to give its stacks back instead of keeping them until the next green thread arrives (an
//! allocator that only purges when next called, like mimalloc's delayed purge, keeps the memory
//! of an idle thread forever). Once the pool is empty there is nothing to wake for.
//!
//! # Rejected
//!
//! - *A count watermark alone* (the previous policy, 64 stacks): a cliff. A chain of 66 green
//!   threads repeated refaulted about 68 stacks per round (387 ns per spawn at depth 64, 2.2 µs
//!   at 66, 66,000 `madvise` calls for 1,000 chains).
//! - *A timestamp per stack, or reading the clock in `take`/`give`*: a clock read (20 to 40 ns
//!   through the vDSO) on the hot path, for a decision that needs one-second resolution.
//! - *Releasing everything idle at once when the worker sleeps*: a worker sleeps between any two
//!   bursts, even 50 µs apart; the next burst would refault every stack.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::arena::StackArena;
use super::class::{NUM_CLASSES, SizeClass};
use super::green_stack::{GreenStack, Kind};

/// How long a stack sits in the pool unused before it goes back to the OS: 1 s (it goes back
/// between 1 and 2 s after its last use).
///
/// Keeping a stack costs the pages its last green thread touched, usually one or two (4 to
/// 8 KiB). Trimming one that is needed again costs the `madvise` (about 1 µs) and then a page
/// fault that zeroes a page (2 to 5 µs), about ten times a whole pooled spawn. A second outlasts
/// the periods of ordinary bursty load (timer ticks, request bursts, batch loops of up to a few
/// hundred ms), so those stay warm, while the memory of a burst that is over returns within two
/// seconds, before anyone watching the RSS would wait for it. For scale: jemalloc decays dirty
/// pages over 10 s by default; mimalloc purges after 10 ms, but only when next called.
pub(super) const TRIM_AGE: Duration = Duration::from_secs(1);

/// Free packed stacks a pool keeps per class at most, whatever their age: 4,096.
///
/// Age decides in the normal case; this only bounds a burst within one interval, and a worker
/// that never calls `maintain`. A pooled stack holds the pages its last green thread touched
/// (usually one or two), so 4,096 default stacks hold 16 to 32 MiB per class per worker, memory
/// those green threads held anyway while they ran. Working sets up to this size (chains,
/// fan-outs, a few thousand connections per worker) are reused without a system call. The
/// list's room for them is reserved at the class's first use, so that `give` never allocates:
/// 4,097 × 40 bytes, 160 KiB of address space per class per worker, touched only as far as the
/// list grows.
const POOL_CAP: usize = 4096;

/// Usable bytes of free packed stacks a pool keeps per class at most: 1 GiB, i.e. 4,096 stacks
/// of the default 256 KiB, 1,024 of 1 MiB, 128 of 8 MiB. Bounds the worst case (every kept
/// stack touched to the bottom) for the larger classes.
const POOL_CAP_BYTES: usize = 1 << 30;

/// Free separate stacks a pool keeps per class at most: 256.
///
/// A separate stack costs two of the process's `vm.max_map_count` mappings whether in use or
/// pooled, and the soft cap counts pooled stacks as available only to the worker that holds
/// them. 256 covers a chain of 100 or a fan-out of a few hundred, while eight workers together
/// hold at most about 2,000 of the roughly 32,000 stacks the default limit allows.
const SEPARATE_POOL_CAP: usize = 256;

/// The cap is never below 2, so that a green thread that finishes while another starts does not
/// trim and refill on every spawn.
const POOL_MIN_CAP: usize = 2;

/// The cap on free stacks of `stack`'s kind and class. A trim on give keeps three quarters of
/// it: the hysteresis makes a pool that hovers around the cap trim once per `cap / 4` gives, not
/// on every one, takes the arena's lock once per batch, and bounds one trim to about 1,000
/// `madvise` calls (about 1 ms).
#[inline]
fn cap(stack: &GreenStack) -> usize {
    match stack.kind() {
        Kind::Packed => packed_cap(stack.class()),
        Kind::Separate(_) => SEPARATE_POOL_CAP,
    }
}

/// The cap on free packed stacks of `class`: [`POOL_CAP`], lowered by [`POOL_CAP_BYTES`] for
/// classes above 256 KiB.
#[inline]
pub(super) fn packed_cap(class: SizeClass) -> usize {
    // Class sizes are powers of two: a shift, not a division, on every give.
    (POOL_CAP_BYTES >> class.bytes().trailing_zeros()).clamp(POOL_MIN_CAP, POOL_CAP)
}

/// A worker's cache of free stacks, per size class. Lives on one worker thread.
#[derive(Debug)]
pub(crate) struct StackPool {
    /// Where misses come from and trims go.
    arena: Arc<StackArena>,
    /// Free stacks and low-water mark, per class.
    classes: [ClassPool; NUM_CLASSES],
    /// When the current trim interval ends: `maintain` does nothing before. `None` until the
    /// first `maintain`, which starts the first interval.
    next_pass: Option<Instant>,
}

/// The free stacks of one size class.
#[derive(Debug, Default)]
struct ClassPool {
    /// Free stacks, oldest first (most recently given last).
    free: Vec<GreenStack>,
    /// The fewest stacks `free` held since the last pass: its `low` oldest stacks were not taken
    /// during the whole interval. Always at most `free.len()`.
    low: usize,
}

impl ClassPool {
    /// Gives the `n` oldest stacks to `arena`, which discards their pages.
    fn release_oldest(&mut self, arena: &StackArena, n: usize) {
        arena.release_from(&mut self.free, n);
        // They were the bottom of the list: the low-water mark counted them first.
        self.low = self.low.saturating_sub(n);
    }
}

impl StackPool {
    /// An empty pool drawing on `arena`.
    pub(crate) fn new(arena: Arc<StackArena>) -> StackPool {
        StackPool { arena, classes: std::array::from_fn(|_| ClassPool::default()), next_pass: None }
    }

    /// A stack with at least `size` usable bytes (sizes round up to a power of two, at least
    /// 32 KiB). Fails if `size` is over 1 GiB, or if no memory or mapping is left, with an error
    /// that says which and what to do.
    #[inline]
    pub(crate) fn take(&mut self, size: usize) -> io::Result<GreenStack> {
        let class = SizeClass::of(size)?;
        let pool = &mut self.classes[class.index()];
        // Try the pool.
        if let Some(stack) = pool.free.pop() {
            pool.low = pool.low.min(pool.free.len());
            self.arena.note_pooled(&stack, false);
            return Ok(stack);
        }
        // Try the arena: a trimmed slot, a new slot, or a new chunk. (`low` is 0 already.)
        debug_assert_eq!(pool.low, 0);
        self.arena.take(class)
    }

    /// Takes back a stack that no coroutine uses any more.
    #[inline]
    pub(crate) fn give(&mut self, stack: GreenStack) {
        stack.clear_owner();
        self.arena.note_pooled(&stack, true);
        let cap = cap(&stack);
        let pool = &mut self.classes[stack.class().index()];
        if pool.free.capacity() == 0 {
            // Once per class: give never allocates after this.
            pool.free.reserve_exact(cap + 1);
        }
        pool.free.push(stack);
        // Above the cap: hand the oldest stacks back to the arena, keeping three quarters.
        if pool.free.len() > cap {
            let n = pool.free.len() - (cap - cap.div_ceil(4));
            pool.release_oldest(&self.arena, n);
        }
    }

    /// Gives back to the OS the stacks that sat unused for a whole trim interval ([`TRIM_AGE`]),
    /// if the interval is over at `now`; otherwise does nothing but compare `now` with its end.
    ///
    /// The owning worker calls it before it sleeps and every so often while busy (at least a
    /// few times per `TRIM_AGE`; more often costs only the compare). `now` is the caller's
    /// clock reading, so that the hot path never reads the clock and tests need not sleep. A
    /// pass that gives back `n` stacks costs about `n` µs (one `madvise` each, and one lock of
    /// the arena).
    #[inline]
    pub(crate) fn maintain(&mut self, now: Instant) {
        if self.next_pass.is_some_and(|due| now < due) {
            return;
        }
        self.pass(now);
    }

    /// When [`StackPool::maintain`] may next give stacks back: a sleeping worker should wake by
    /// then. `None` if the pool holds no stack (nothing to give back, no need to wake) or
    /// `maintain` was never called.
    pub(crate) fn next_maintain(&self) -> Option<Instant> {
        let holds = self.classes.iter().any(|pool| !pool.free.is_empty());
        self.next_pass.filter(|_| holds)
    }

    /// Ends the current trim interval at `now` and starts the next.
    #[cold]
    fn pass(&mut self, now: Instant) {
        let first = self.next_pass.is_none();
        for pool in &mut self.classes {
            // 1. Release what the whole interval did not need (the first call has no interval
            //    behind it: stacks given before it were never watched).
            if !first && pool.low > 0 {
                let n = pool.low;
                pool.release_oldest(&self.arena, n);
            }
            // 2. Watch every stack left during the next interval.
            pool.low = pool.free.len();
        }
        self.next_pass = Some(now + TRIM_AGE);
    }

    /// Free stacks of `class` in this pool.
    #[cfg(test)]
    pub(super) fn pooled(&self, class: SizeClass) -> usize {
        self.classes[class.index()].free.len()
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        // Everything goes back to the arena, so that it can unmap its chunks when it drops.
        for pool in &mut self.classes {
            let n = pool.free.len();
            pool.release_oldest(&self.arena, n);
        }
    }
}
