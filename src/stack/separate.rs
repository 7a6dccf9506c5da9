//! One mapping per stack, under a soft cap: the fallback when guard installs are unavailable
//! (Linux before 6.13, locked memory) or [`StackLayout::Separate`](super::StackLayout) is forced.
//!
//! Each stack is `mmap` + `mprotect(PROT_NONE)` on its low end: two kernel mappings. The kernel
//! allows a process `vm.max_map_count` mappings (65530 by default), and past that limit *every*
//! `mmap` fails: large `malloc`s, thread creation, `dlopen`. So this module stops short of it: it
//! counts the process's mappings once (lines of `/proc/self/maps`), adds two per live separate
//! stack, and refuses a new stack once that would leave fewer than [`MAP_RESERVE`] mappings, with
//! an error that says what happened and what to do. The rest of the process keeps working.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::class::SizeClass;
use super::green_stack::{GreenStack, Kind};
use super::registry::{self, RegionDesc};
use super::sys;

/// Kernel mappings one separate stack costs: its guard and its stack.
const MAPS_PER_STACK: usize = 2;

/// Mappings kept free for the rest of the process below `vm.max_map_count`: 1,024.
///
/// What else needs mappings while green threads run: glibc `malloc` of large blocks (one each),
/// its per-thread arenas (two each), OS threads (two each: stack and guard), `dlopen` (about five
/// per library), the runtime's own worker threads and alternate signal stacks. A thousand covers
/// a process that keeps doing all of that at a normal rate, at a cost of 500 green threads out of
/// about 32,000.
const MAP_RESERVE: usize = 1024;

/// The smallest class worth `MADV_NOHUGEPAGE`: a transparent huge page needs a 2 MiB aligned
/// extent inside one mapping, so smaller separate stacks can never get one.
const HUGE_PAGE: usize = 2 << 20;

/// Separate stacks mapped in the process (in use or pooled), over all arenas.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The soft cap on separate stacks, computed when an arena first needs them.
#[derive(Debug)]
pub(super) struct SeparateLimit {
    /// `vm.max_map_count` when the cap was computed.
    max_map_count: usize,
    /// Most separate stacks the process may have mapped, compared with [`LIVE`].
    cap: usize,
    /// Test override: most separate stacks this arena may have mapped.
    arena_cap: Option<usize>,
    /// Separate stacks of this arena mapped now.
    live_here: AtomicUsize,
    /// Separate stacks of this arena in its pools (mapped, free): [`SeparateLimit::admit`]
    /// does not count them as used. Changed by the pools as stacks enter and leave them.
    pooled: AtomicUsize,
}

impl SeparateLimit {
    /// Counts the mappings the process has now, other than separate stacks, and derives the cap.
    pub(super) fn new(arena_cap: Option<usize>) -> SeparateLimit {
        let max_map_count = sys::max_map_count();
        let maps = sys::count_maps().unwrap_or_else(|e| {
            log::debug!("green: cannot count mappings ({e}); relying on mmap errors alone");
            0
        });
        let others = maps.saturating_sub(MAPS_PER_STACK * LIVE.load(Ordering::Relaxed));
        let cap = max_map_count.saturating_sub(MAP_RESERVE).saturating_sub(others) / MAPS_PER_STACK;
        log::debug!(
            "green: one mapping per stack; {maps} mappings now, vm.max_map_count = \
             {max_map_count}: at most {cap} separate stacks"
        );
        SeparateLimit { max_map_count, cap, arena_cap, live_here: AtomicUsize::new(0), pooled: AtomicUsize::new(0) }
    }

    /// Maps a separate stack of `class` with `guard` bytes of guard, if the cap allows.
    pub(super) fn map(&self, class: SizeClass, guard: usize) -> io::Result<GreenStack> {
        // 1. Count the stack in, or refuse with the cap's error.
        let live = LIVE.fetch_add(1, Ordering::Relaxed) + 1;
        let here = self.live_here.fetch_add(1, Ordering::Relaxed) + 1;
        let (before, over) = match self.arena_cap {
            Some(cap) => (here - 1, here > cap),
            None => (live - 1, live > self.cap),
        };
        if over {
            self.count_out();
            return Err(self.cap_error(before));
        }
        // 2. Map it; on failure, count it out again.
        map_stack(class, guard).map_err(|e| {
            self.count_out();
            self.map_error(e, guard + class.bytes())
        })
    }

    /// Whether one more stack could be in use now without passing the cap, counting the pooled
    /// ones as available: an early, cheap check for spawn. [`SeparateLimit::map`] decides.
    pub(super) fn admit(&self) -> io::Result<()> {
        let pooled = self.pooled.load(Ordering::Relaxed);
        let (in_use, cap) = match self.arena_cap {
            Some(cap) => (self.live_here.load(Ordering::Relaxed).saturating_sub(pooled), cap),
            None => (LIVE.load(Ordering::Relaxed).saturating_sub(pooled), self.cap),
        };
        if in_use >= cap {
            return Err(self.cap_error(in_use));
        }
        Ok(())
    }

    /// A separate stack of this arena entered (`true`) or left (`false`) a pool.
    pub(super) fn pooled(&self, entered: bool) {
        if entered {
            self.pooled.fetch_add(1, Ordering::Relaxed);
        } else {
            self.pooled.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Unmaps a separate stack of this arena that was in a pool.
    pub(super) fn unmap(&self, stack: GreenStack) {
        let Kind::Separate(region) = stack.kind() else {
            panic!(internal_error!("a stack that shares its mapping was unmapped on its own"));
        };
        let (start, len) = stack.span();
        registry::unregister(region);
        stack.into_slot();
        // SAFETY: the stack was consumed, so nothing runs on its memory; it is a mapping of its
        // own (map_stack), unregistered above so the handler no longer looks at it.
        unsafe { sys::unmap(start, len) };
        self.count_out();
        self.pooled(false);
    }

    /// Separate stacks of this arena mapped now.
    #[cfg(test)]
    pub(super) fn live_here(&self) -> usize {
        self.live_here.load(Ordering::Relaxed)
    }

    fn count_out(&self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        self.live_here.fetch_sub(1, Ordering::Relaxed);
    }

    /// The soft cap's error: what, the values, what to do.
    #[cold]
    fn cap_error(&self, live: usize) -> io::Error {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "green: cannot map another green-thread stack: {live} stacks are live, each in \
                 its own mapping (2 kernel mappings per stack), and one more would leave the \
                 process fewer than {MAP_RESERVE} mappings below its limit vm.max_map_count = \
                 {}. Raise the limit (sysctl -w vm.max_map_count=262144), or use fewer green \
                 threads (stacks are packed into a few mappings on Linux 6.13+ unless \
                 StackLayout::Separate is chosen)",
                self.max_map_count
            ),
        )
    }

    /// An `mmap`/`mprotect` failure, with the mapping count when it is the likely cause.
    #[cold]
    fn map_error(&self, e: io::Error, len: usize) -> io::Error {
        if e.raw_os_error().is_none() {
            return e; // already explained (the registry is full)
        }
        if e.raw_os_error() != Some(libc::ENOMEM) {
            return io::Error::new(e.kind(), format!("green: mapping a green-thread stack of {len} bytes failed: {e}"));
        }
        let maps = sys::count_maps().map_or_else(|_| "an unknown number of".into(), |n| n.to_string());
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "green: mapping a green-thread stack of {len} bytes failed: {e}{}; the process has \
                 {maps} mappings (limit vm.max_map_count = {}) and {} green-thread stacks in \
                 mappings of their own. If the mappings are near the limit, raise it \
                 (sysctl -w vm.max_map_count=262144) or use fewer green threads; otherwise the \
                 system is out of memory or address space (see ulimit -v and vm.overcommit_memory)",
                crate::rlimit::Limit::address_space_note(),
                sys::max_map_count(),
                LIVE.load(Ordering::Relaxed)
            ),
        )
    }
}

/// Maps `guard | stack`, makes the guard inaccessible, registers it.
fn map_stack(class: SizeClass, guard: usize) -> io::Result<GreenStack> {
    let len = guard + class.bytes();
    let start = sys::map_anon(len)?;
    if class.bytes() >= HUGE_PAGE {
        sys::no_huge_pages(start, len);
    }
    // SAFETY: the mapping was just made and holds nothing; its low `guard` bytes become the guard.
    let guarded = unsafe { sys::protect_none(start, guard) };
    let registered = guarded.and_then(|()| {
        let desc = RegionDesc { start, slot_size: len, guard, slots: 1 };
        registry::register(desc, None)
    });
    match registered {
        Ok((region, owner)) => {
            let kind = Kind::Separate(region);
            // SAFETY: `[start, start + len)` is a fresh mapping with an inaccessible guard of
            // `guard` bytes under `class.bytes()` of read-write stack, registered with `owner`;
            // it is unmapped only by `SeparateLimit::unmap`, when the stack is given back.
            let stack = unsafe { GreenStack::from_raw(start, start + len, owner, class, kind) };
            Ok(stack)
        }
        Err(e) => {
            // SAFETY: the mapping is ours, never handed out, and not registered.
            unsafe { sys::unmap(start, len) };
            Err(e)
        }
    }
}
