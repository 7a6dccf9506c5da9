//! The runtime-wide source of stacks: packed chunks per size class, trimmed free slots, and the
//! fallback to separate stacks.
//!
//! # Chunks
//!
//! A chunk is one `MAP_NORESERVE` mapping: an owner table, then `n` slots of one class (the
//! layout is drawn in the module docs of [`super`]). Slots are carved in address order, and a
//! slot's guard is installed the first time it is handed out (about 0.6 µs), so a chunk costs
//! nothing but address space until used. A mapping cannot grow in place, so when the newest
//! chunk of a class is used up, a new one is mapped, twice as large as the one before:
//!
//! - the first chunk of a class is [`FIRST_CHUNK_BYTES`] (64 MiB: 204 stacks of the default
//!   256 KiB), so a small program reserves no more address space than one glibc malloc arena;
//! - doubling keeps the number of chunks logarithmic: 100,000 default stacks fit in 9 chunks,
//!   1,000,000 in 14, against a `vm.max_map_count` of 65530;
//! - a chunk is at most [`MAX_CHUNK_BYTES`] (64 GiB), so one growth step never reserves an
//!   absurd amount of address space, and if the kernel refuses a chunk (strict overcommit,
//!   `ulimit -v`), the request is halved until it fits.
//!
//! # States of a slot
//!
//! - **uncarved**: never handed out, no guard, untouched.
//! - **out**: handed out (in a pool or under a green thread), guard installed. Counted in
//!   `outstanding`.
//! - **free**: back in the arena's free list, guard installed, pages discarded. Reused first.
//!
//! uncarved → out (carve + guard install), out → free (pool trim or pool drop), free → out.
//! A slot never goes back to uncarved; chunks are unmapped only when the arena drops with no
//! slot out.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::class::{NUM_CLASSES, SizeClass};
use super::green_stack::{GreenStack, Kind};
use super::registry::{self, RegionDesc, RegionId, SlotOwner};
use super::separate::SeparateLimit;
use super::{StackConfig, StackLayout, sys};

/// Address space of the first chunk of a class: 64 MiB (204 stacks of 256 KiB + 64 KiB guard).
/// As much as one glibc malloc arena reserves: unremarkable for a small program.
const FIRST_CHUNK_BYTES: usize = 64 << 20;

/// Address space of a chunk at most: 64 GiB (about 209,000 default stacks). Bounds what one
/// growth step reserves; a million default stacks still need only 14 chunks.
const MAX_CHUNK_BYTES: usize = 64 << 30;

/// Largest guard accepted: a guard larger than this protects against nothing a smaller one does
/// not, and is more likely a unit mistake.
const MAX_GUARD_BYTES: usize = 1 << 30;

/// The runtime-wide source of stack memory, shared by its workers' pools.
#[derive(Debug)]
pub(crate) struct StackArena {
    /// Bytes of guard below each stack, whole pages. Fixed at creation.
    guard: usize,
    /// Whether new stacks come from packed chunks. Set at creation from the layout and the
    /// probe; cleared for good if a guard install fails later (every new stack is then
    /// separate). Read without the lock.
    packed: AtomicBool,
    /// The soft cap for separate stacks, made at creation if separate from the start, else
    /// when first needed.
    separate: OnceLock<SeparateLimit>,
    /// `StackConfig::separate_cap`, for a late `separate`.
    separate_cap: Option<usize>,
    /// Packed slots out (in pools or under green threads). Chunks are unmapped at drop only if
    /// it is zero. Changed under `classes`' lock; atomic so that drop and tests can read it.
    outstanding: AtomicUsize,
    /// Per class: chunks, carving cursor, free slots. Locked on a pool miss or a pool trim, never
    /// on a pool hit.
    classes: Mutex<[ClassState; NUM_CLASSES]>,
}

/// The packed slots of one size class.
#[derive(Debug, Default)]
struct ClassState {
    /// Chunks, oldest first.
    chunks: Vec<Chunk>,
    /// Slots of the newest chunk carved so far; the rest are uncarved.
    carved: usize,
    /// Free slots: guard installed, pages discarded. Reused before carving.
    free: Vec<GreenStack>,
}

/// One packed mapping.
#[derive(Debug)]
struct Chunk {
    /// Start of the mapping: the owner table.
    base: usize,
    /// Length of the mapping.
    len: usize,
    /// Its registry entry.
    region: RegionId,
    /// Address of slot 0.
    first: usize,
    /// Number of slots.
    slots: usize,
    /// Bytes per slot: guard plus stack.
    slot_size: usize,
}

impl StackArena {
    /// An arena for one runtime. Probes `MADV_GUARD_INSTALL` (once per process) for
    /// [`StackLayout::Auto`].
    pub(crate) fn new(config: StackConfig) -> io::Result<Arc<StackArena>> {
        if config.guard_size > MAX_GUARD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "green: a stack guard of {} bytes was requested; at most {MAX_GUARD_BYTES} \
                     bytes (1 GiB) are supported",
                    config.guard_size
                ),
            ));
        }
        let packed = match config.layout {
            StackLayout::Auto => sys::guard_installs_supported(),
            StackLayout::Separate => false,
        };
        let arena = StackArena {
            guard: sys::round_to_pages(config.guard_size.max(1)),
            packed: AtomicBool::new(packed),
            separate: OnceLock::new(),
            separate_cap: config.separate_cap,
            outstanding: AtomicUsize::new(0),
            classes: Mutex::new(std::array::from_fn(|_| ClassState::default())),
        };
        if !packed {
            arena.separate();
        }
        Ok(Arc::new(arena))
    }

    /// A stack of `class` for a pool that has none.
    pub(super) fn take(&self, class: SizeClass) -> io::Result<GreenStack> {
        if self.packed.load(Ordering::Relaxed)
            && let Some(stack) = self.take_packed(class)?
        {
            return Ok(stack);
        }
        self.separate().map(class, self.guard)
    }

    /// Whether a green thread spawned now could get a stack, as far as can be known without
    /// taking one: in the separate layout, an error (the soft cap's, naming `vm.max_map_count`)
    /// once the stacks in use reach the cap. Cheap (a few atomic loads), so spawn can call it to
    /// fail early; `take` still decides, at the green thread's first resume.
    pub(crate) fn admit(&self) -> io::Result<()> {
        if self.packed.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.separate().admit()
    }

    /// `stack` entered (`true`) or left (`false`) a pool of this arena.
    #[inline]
    pub(super) fn note_pooled(&self, stack: &GreenStack, entered: bool) {
        if stack.kind() != Kind::Packed {
            self.separate().pooled(entered);
        }
    }

    /// Gives the first `n` stacks of `list`, a pool's free list, back: packed ones have their
    /// pages discarded and go to the free list, separate ones are unmapped (their mappings are
    /// the scarce resource).
    pub(super) fn release_from(&self, list: &mut Vec<GreenStack>, n: usize) {
        // Discard pages before taking the lock: about a µs each.
        for stack in &list[..n] {
            if stack.kind() == Kind::Packed {
                stack.discard();
            }
        }
        let mut classes = None;
        for stack in list.drain(..n) {
            match stack.kind() {
                Kind::Packed => {
                    let classes = classes.get_or_insert_with(|| self.lock());
                    classes[stack.class().index()].free.push(stack);
                    self.outstanding.fetch_sub(1, Ordering::Relaxed);
                }
                Kind::Separate(_) => self.separate().unmap(stack),
            }
        }
    }

    /// Whether new stacks come from packed chunks.
    #[cfg(test)]
    pub(super) fn is_packed(&self) -> bool {
        self.packed.load(Ordering::Relaxed)
    }

    /// Packed slots out now.
    #[cfg(test)]
    pub(super) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Chunks mapped for `class`.
    #[cfg(test)]
    pub(super) fn chunks(&self, class: SizeClass) -> usize {
        self.lock()[class.index()].chunks.len()
    }

    /// Address and length of each chunk of `class`.
    #[cfg(test)]
    pub(super) fn chunk_spans(&self, class: SizeClass) -> Vec<(usize, usize)> {
        let classes = self.lock();
        classes[class.index()].chunks.iter().map(|c| (c.base, c.len)).collect()
    }

    /// Separate stacks of this arena mapped now.
    #[cfg(test)]
    pub(super) fn separate_live(&self) -> usize {
        self.separate.get().map_or(0, SeparateLimit::live_here)
    }

    /// A packed stack, or `None` if guard installs turned out not to work (fall back).
    fn take_packed(&self, class: SizeClass) -> io::Result<Option<GreenStack>> {
        let (start, slot_size, owner) = {
            let mut classes = self.lock();
            let state = &mut classes[class.index()];
            // 1. A free slot: guard in place, pages discarded.
            if let Some(stack) = state.free.pop() {
                self.outstanding.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(stack));
            }
            // 2. The next uncarved slot of the newest chunk; map a new chunk if there is none.
            if state.chunks.last().is_none_or(|chunk| state.carved == chunk.slots) {
                let chunk = map_chunk(class, self.guard, state.chunks.len())?;
                state.chunks.push(chunk);
                state.carved = 0;
            }
            let chunk = state.chunks.last().expect(internal_error!("no stack mapping right after one was made"));
            let slot = state.carved;
            state.carved += 1;
            (chunk.first + slot * chunk.slot_size, chunk.slot_size, chunk.owner(slot))
        };
        // 3. Install its guard, outside the lock: the slot is ours alone now.
        // SAFETY: the slot was never handed out, so nothing uses its memory; the guard range
        // lies inside its chunk's mapping.
        if let Err(e) = unsafe { sys::install_guard(start, self.guard) } {
            // The slot stays carved but is never handed out: it has no guard.
            if e.raw_os_error() == Some(libc::EINVAL) {
                log::warn!(
                    "green: MADV_GUARD_INSTALL failed ({e}) although the probe succeeded (locked \
                     memory?); new stacks get one mapping each from now on"
                );
                self.packed.store(false, Ordering::Relaxed);
                return Ok(None);
            }
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "green: installing the {} KiB guard of a {} KiB green-thread stack at {start:#x} failed: {e}; \
                     the system may be out of memory",
                    self.guard / 1024,
                    class.bytes() / 1024
                ),
            ));
        }
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the slot `[start, start + slot_size)` lies in a registered chunk, its low
        // `guard` bytes now fault on access and the rest is read-write stack of `class`; its
        // owner entry is `owner`; the chunk stays mapped while the slot is out (Drop).
        Ok(Some(unsafe { GreenStack::from_raw(start, start + slot_size, owner, class, Kind::Packed) }))
    }

    fn separate(&self) -> &SeparateLimit {
        self.separate.get_or_init(|| SeparateLimit::new(self.separate_cap))
    }

    fn lock(&self) -> MutexGuard<'_, [ClassState; NUM_CLASSES]> {
        // Nothing under this lock can leave the state half-changed by a panic that matters:
        // at worst a carved slot is lost.
        self.classes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Chunk {
    /// The owner entry of slot `slot`.
    fn owner(&self, slot: usize) -> NonNull<SlotOwner> {
        debug_assert!(slot < self.slots);
        let table = self.base as *mut SlotOwner;
        NonNull::new(table.wrapping_add(slot)).expect(internal_error!("a stack mapping at address 0"))
    }
}

/// Slots in the `index`-th chunk of a class: `first << index`, at most `most` (`first <= most`).
/// A shift that would push bits out is past `most`, so it is never made.
fn chunk_slots(first: usize, most: usize, index: usize) -> usize {
    if index <= (most / first).max(1).ilog2() as usize { (first << index).min(most) } else { most }
}

#[cfg(test)]
#[test]
fn chunk_slots_double_up_to_the_most_and_stay_there() {
    assert_eq!(chunk_slots(3, 100, 0), 3);
    assert_eq!(chunk_slots(3, 100, 5), 96);
    assert_eq!(chunk_slots(3, 100, 6), 100);
    for index in [7, 62, 63, 64, 1_000, usize::MAX] {
        assert_eq!(chunk_slots(3, 100, index), 100, "chunk {index}");
    }
    assert_eq!(chunk_slots(1, 1, 70), 1);
    assert_eq!(chunk_slots(1 << 20, usize::MAX >> 1, 62), usize::MAX >> 1);
}

/// Maps the `index`-th chunk of `class` and registers it; halves the request while the kernel
/// refuses it.
fn map_chunk(class: SizeClass, guard: usize, index: usize) -> io::Result<Chunk> {
    let slot_size = guard + class.bytes();
    let first = (FIRST_CHUNK_BYTES / slot_size).max(1);
    let most = (MAX_CHUNK_BYTES / slot_size).max(1);
    let mut slots = chunk_slots(first, most, index);
    loop {
        let table = sys::round_to_pages(slots * size_of::<SlotOwner>());
        let len = table + slots * slot_size;
        match sys::map_anon(len) {
            Ok(base) => {
                sys::no_huge_pages(base, len);
                // The owner table is the fresh (zeroed) start of the mapping: all-zero owners
                // are valid, empty ones.
                let owners =
                    NonNull::new(base as *mut SlotOwner).expect(internal_error!("mmap returned address 0 for stacks"));
                let desc = RegionDesc { start: base + table, slot_size, guard, slots };
                return match registry::register(desc, Some(owners)) {
                    Ok((region, _)) => Ok(Chunk { base, len, region, first: base + table, slots, slot_size }),
                    Err(e) => {
                        // SAFETY: the chunk was never registered nor handed out.
                        unsafe { sys::unmap(base, len) };
                        Err(e)
                    }
                };
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) && slots > 1 => slots /= 2,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "green: mapping {len} bytes for green-thread stacks failed: {e}{}; the \
                         system is out of memory or address space (see ulimit -v and \
                         vm.overcommit_memory), or the process is out of mappings \
                         (vm.max_map_count: raise it with sysctl -w vm.max_map_count=262144)",
                        crate::rlimit::Limit::address_space_note()
                    ),
                ));
            }
        }
    }
}

impl Drop for StackArena {
    fn drop(&mut self) {
        let outstanding = *self.outstanding.get_mut();
        let classes = self.classes.get_mut().unwrap_or_else(PoisonError::into_inner);
        for state in classes.iter_mut() {
            // The free slots are part of their chunks: no separate release.
            state.free.drain(..).for_each(GreenStack::into_slot);
            if outstanding != 0 {
                continue;
            }
            for chunk in state.chunks.drain(..) {
                registry::unregister(chunk.region);
                // SAFETY: no slot of the chunk is out (outstanding == 0) and the free ones were
                // consumed above, so nothing uses its memory; it was unregistered just before.
                unsafe { sys::unmap(chunk.base, chunk.len) };
            }
        }
        if outstanding != 0 {
            log::warn!(
                "green: {outstanding} green-thread stacks were not given back when the runtime \
                 ended (green threads leaked at its shutdown); their memory stays mapped (leaked) in case \
                 something still uses it"
            );
        }
    }
}
