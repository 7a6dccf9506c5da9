//! The process-wide registry of guarded regions, read by the overflow handler.
//!
//! The SIGSEGV handler must tell "this fault is in the guard of one of our stacks, run by green
//! thread N" from any other fault, on any thread, at any moment, including while another thread
//! maps a chunk. It may take no lock and allocate nothing, so the registry is a table of entries
//! made of atomics:
//!
//! - a **region** is a run of equal slots (guard + stack): a packed chunk, or one separate stack
//!   (a region of one slot). Its entry says where the slots start, how large a slot and its
//!   guard are, how many there are, and where the slots' [`SlotOwner`]s are.
//! - entries live in blocks of [`BLOCK_LEN`], allocated on demand and never freed, so a pointer
//!   to an entry never dangles. Writers (register, unregister) serialise on a mutex that also
//!   holds the free entry ids; the handler only reads.
//!
//! # States of an entry
//!
//! - **free**: `start == 0`, `seq` even. Never matches an address.
//! - **writing**: `seq` odd. A reader skips it (a seqlock: it reads `seq`, the fields, then `seq`
//!   again, and trusts the fields only if both reads agree and are even).
//! - **live**: `start != 0`, `seq` even. Its memory stays mapped until it is unregistered.
//!
//! Register: free → writing → live. Unregister: live → writing → free, and only then may the
//! owner unmap the region. A handler that read a live entry just before it was freed may read
//! the region's owner table after the unmap; that can only happen for a fault at an address in a
//! region that is being unmapped, which no green thread runs on any more.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Mutex, PoisonError};

/// Entries per block: 1024 entries of 72 bytes, one 72 KiB allocation.
const BLOCK_LEN: usize = 1024;

/// Blocks at most: 1,048,576 regions. A region is a chunk (a few dozen per runtime) or one
/// separate stack (about 32,000 at the default `vm.max_map_count`, 130,000 if it is raised to
/// 262144), so this is far more than a process can use, for 8 KiB of block pointers.
const MAX_BLOCKS: usize = 1024;

/// Who runs on one stack slot, for the overflow message.
///
/// Written by the worker that owns the slot (set when a green thread starts on it, cleared when
/// the stack is given back), read by the overflow handler. All-zero bytes are a valid, empty
/// owner, so chunk memory fresh from `mmap` serves as a table of them.
#[derive(Debug, Default)]
#[repr(C)]
pub(super) struct SlotOwner {
    /// The green thread's id; 0 while no green thread owns the slot. Stored last (release).
    id: AtomicU64,
    /// The green thread's name bytes (null if unnamed); valid while `id` is set to its id.
    name_ptr: AtomicPtr<u8>,
    /// Length of the name in bytes.
    name_len: AtomicUsize,
}

impl SlotOwner {
    /// Records green thread `id` (non-zero) and its name.
    ///
    /// # Safety
    ///
    /// `name`'s bytes must stay valid until [`SlotOwner::clear`] or the next `set`: the overflow
    /// handler may read them at any moment in between.
    pub(super) unsafe fn set(&self, id: u64, name: Option<&str>) {
        let (ptr, len) = name.map_or((ptr::null_mut(), 0), |n| (n.as_ptr().cast_mut(), n.len()));
        self.id.store(0, Ordering::Relaxed);
        self.name_ptr.store(ptr, Ordering::Relaxed);
        self.name_len.store(len, Ordering::Relaxed);
        self.id.store(id, Ordering::Release);
    }

    /// Forgets the owner.
    pub(super) fn clear(&self) {
        self.id.store(0, Ordering::Relaxed);
        self.name_len.store(0, Ordering::Relaxed);
        self.name_ptr.store(ptr::null_mut(), Ordering::Relaxed);
    }

    /// The owner's id (0: none), without its name. Async-signal-safe, from any thread.
    pub(super) fn id(&self) -> u64 {
        self.id.load(Ordering::Acquire)
    }

    /// The owner's id (0: none) and name. Async-signal-safe.
    ///
    /// # Safety
    ///
    /// The name given to the last `set` must still be valid, and no `set` or `clear` may run
    /// concurrently: true on the thread whose green thread runs on this slot, which is the only
    /// thread that changes the owner while the green thread lives.
    pub(super) unsafe fn read(&self) -> (u64, Option<&[u8]>) {
        let id = self.id.load(Ordering::Acquire);
        let ptr = self.name_ptr.load(Ordering::Relaxed);
        let len = self.name_len.load(Ordering::Relaxed);
        if id == 0 || ptr.is_null() {
            return (id, None);
        }
        // SAFETY: the caller guarantees the name recorded with `id` is still valid; it was a
        // `&str` of `len` bytes at `ptr`.
        (id, Some(unsafe { std::slice::from_raw_parts(ptr, len) }))
    }
}

/// Where a region's slots are. All addresses and sizes are page multiples.
#[derive(Debug, Clone, Copy)]
pub(super) struct RegionDesc {
    /// Address of slot 0 (the first byte of its guard).
    pub(super) start: usize,
    /// Bytes per slot: guard plus stack.
    pub(super) slot_size: usize,
    /// Bytes of guard at the low end of each slot.
    pub(super) guard: usize,
    /// Number of slots.
    pub(super) slots: usize,
}

/// A registered region, to unregister it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RegionId(u32);

/// What the handler learns about a fault in a guard.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hit {
    /// The slot's lowest address (its guard's first byte).
    pub(super) slot_start: usize,
    /// One past the slot's highest address (the stack's base).
    pub(super) slot_top: usize,
    /// Bytes of guard.
    pub(super) guard: usize,
    /// The slot's owner entry.
    pub(super) owner: *const SlotOwner,
}

/// One registry entry. Written only under [`WRITER`], following the seqlock in the module docs.
#[derive(Debug, Default)]
struct Region {
    /// Seqlock sequence: odd while the entry is being written.
    seq: AtomicUsize,
    /// [`RegionDesc::start`]; 0 while the entry is free.
    start: AtomicUsize,
    /// [`RegionDesc::slot_size`].
    slot_size: AtomicUsize,
    /// [`RegionDesc::guard`].
    guard: AtomicUsize,
    /// [`RegionDesc::slots`].
    slots: AtomicUsize,
    /// The region's table of `slots` owners.
    owners: AtomicPtr<SlotOwner>,
    /// Owner table of a region without its own (a separate stack): one entry, here.
    own: SlotOwner,
}

/// Block pointers; a block, once allocated, is never freed or replaced.
static BLOCKS: [AtomicPtr<Region>; MAX_BLOCKS] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_BLOCKS];

/// Entries ever handed out (ids below it may be live); readers scan `0..LEN`.
static LEN: AtomicUsize = AtomicUsize::new(0);

/// Serialises writers; holds the ids of free entries below `LEN`.
static WRITER: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// The entry with id `id`, if its block exists.
fn entry(id: usize) -> Option<&'static Region> {
    let block = BLOCKS.get(id / BLOCK_LEN)?.load(Ordering::Acquire);
    if block.is_null() {
        return None;
    }
    // SAFETY: a non-null block pointer comes from a leaked `Vec` of BLOCK_LEN entries (`new_block`, in
    // `register`), never freed, so every index below BLOCK_LEN is valid for 'static.
    Some(unsafe { &*block.add(id % BLOCK_LEN) })
}

/// Registers a region. `owners` is its owner table (`desc.slots` entries) if it has one; else
/// the entry's own single owner is used (so `desc.slots` must be 1). Returns the id and the
/// owner table.
pub(super) fn register(
    desc: RegionDesc,
    owners: Option<NonNull<SlotOwner>>,
) -> io::Result<(RegionId, NonNull<SlotOwner>)> {
    debug_assert!(desc.start != 0 && desc.guard < desc.slot_size);
    debug_assert!(owners.is_some() || desc.slots == 1);
    let mut free = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    let id = match free.pop() {
        Some(id) => id as usize,
        None => {
            // Take a new entry, allocating its block if it is the block's first.
            let id = LEN.load(Ordering::Relaxed);
            if id == BLOCK_LEN * MAX_BLOCKS {
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "green: cannot add another green-thread stack mapping: all {id} entries of the \
                     table the stack overflow handler reads are in use; use fewer green threads"
                    ),
                ));
            }
            if id.is_multiple_of(BLOCK_LEN) {
                let block = new_block().map_err(|()| block_error(id))?;
                BLOCKS[id / BLOCK_LEN].store(block, Ordering::Release);
            }
            LEN.store(id + 1, Ordering::Release);
            id
        }
    };
    let region = entry(id)
        .expect(internal_error!("a stack mapping's entry is missing from the table the overflow handler reads"));
    let owners = owners.unwrap_or(NonNull::from(&region.own));
    write(region, desc, owners.as_ptr());
    Ok((RegionId(id as u32), owners))
}

/// A new block of [`BLOCK_LEN`] free entries, leaked (blocks are never freed). Fails, rather
/// than aborting the process as a failed `Box` would, when the allocator has no memory: this
/// runs when a green thread starts, whose `join` can report the error.
fn new_block() -> Result<*mut Region, ()> {
    let mut block: Vec<Region> = Vec::new();
    block.try_reserve_exact(BLOCK_LEN).map_err(drop)?;
    block.extend((0..BLOCK_LEN).map(|_| Region::default()));
    Ok(block.leak().as_mut_ptr())
}

/// The error for a block that could not be allocated: what, how large, what to do.
#[cold]
fn block_error(id: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "green: cannot allocate {} KiB for the registry of green-thread stacks (entries from \
             {id}): out of memory{}; free memory, or use fewer green threads",
            BLOCK_LEN * size_of::<Region>() / 1024,
            crate::rlimit::Limit::address_space_note(),
        ),
    )
}

/// Unregisters a region; its memory may be unmapped afterwards.
pub(super) fn unregister(id: RegionId) {
    let mut free = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    let region = entry(id.0 as usize)
        .expect(internal_error!("a stack mapping's entry is missing from the table the overflow handler reads"));
    let empty = RegionDesc { start: 0, slot_size: 0, guard: 0, slots: 0 };
    write(region, empty, ptr::null_mut());
    region.own.clear();
    free.push(id.0);
}

/// Writes an entry as a seqlock writer. Callers hold [`WRITER`].
fn write(region: &Region, desc: RegionDesc, owners: *mut SlotOwner) {
    let seq = region.seq.load(Ordering::Relaxed);
    region.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    region.start.store(desc.start, Ordering::Relaxed);
    region.slot_size.store(desc.slot_size, Ordering::Relaxed);
    region.guard.store(desc.guard, Ordering::Relaxed);
    region.slots.store(desc.slots, Ordering::Relaxed);
    region.owners.store(owners, Ordering::Relaxed);
    region.seq.store(seq.wrapping_add(2), Ordering::Release);
}

/// Finds the guard that contains `addr`, if any. Async-signal-safe: atomics loads only.
pub(super) fn lookup(addr: usize) -> Option<Hit> {
    let len = LEN.load(Ordering::Acquire);
    for id in 0..len {
        let Some(region) = entry(id) else { continue };
        // Read the entry as a seqlock reader.
        let seq = region.seq.load(Ordering::Acquire);
        if seq % 2 == 1 {
            continue;
        }
        let start = region.start.load(Ordering::Relaxed);
        let slot_size = region.slot_size.load(Ordering::Relaxed);
        let guard = region.guard.load(Ordering::Relaxed);
        let slots = region.slots.load(Ordering::Relaxed);
        let owners = region.owners.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if region.seq.load(Ordering::Relaxed) != seq || start == 0 || addr < start {
            continue;
        }
        let offset = addr - start;
        let slot = offset / slot_size;
        if slot >= slots {
            continue;
        }
        // Inside this region: a guard, or the usable part of a stack (not an overflow).
        if offset - slot * slot_size >= guard {
            return None;
        }
        let slot_start = start + slot * slot_size;
        return Some(Hit { slot_start, slot_top: slot_start + slot_size, guard, owner: owners.wrapping_add(slot) });
    }
    None
}
