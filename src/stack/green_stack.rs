//! One green thread's stack: a handle to a guarded slot.

use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use corosensei::stack::{Stack, StackPointer};

use super::class::SizeClass;
use super::registry::{RegionId, SlotOwner};
use super::{sys, valgrind};

/// One green thread's stack: `guard | stack` between `start` and `top`, stack growing down.
///
/// A `GreenStack` owns its slot: nothing else uses the memory while the value exists. It is
/// given back with `StackPool::give`; dropping it instead leaks the slot (its memory stays
/// mapped, because something may still point into it) and logs a warning once.
#[derive(Debug)]
pub(crate) struct GreenStack {
    /// Lowest address of the slot: the first byte of its guard (corosensei's `limit`).
    start: NonZeroUsize,
    /// One past the highest address: where the first frame goes (corosensei's `base`).
    top: NonZeroUsize,
    /// This slot's owner entry, in its chunk's owner table or its registry entry; valid as long
    /// as the slot is mapped.
    owner: NonNull<SlotOwner>,
    /// The size class: usable bytes.
    class: SizeClass,
    /// Packed or separate, which decides how the slot goes back.
    kind: Kind,
    /// The slot's id as a stack registered with Valgrind; 0 when not running under it.
    valgrind: u32,
}

/// Where a stack's memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A slot of a packed chunk, guard installed with `MADV_GUARD_INSTALL`.
    Packed,
    /// A mapping of its own, guard made with `mprotect`, registered as this region.
    Separate(RegionId),
}

// SAFETY: a GreenStack is a unique handle to memory no other value refers to (the owner entry is
// only atomics, and the registry only reads it), so moving it to another thread is sound. The
// runtime keeps a started green thread's stack on one thread anyway (rule 1 of docs/design.md).
unsafe impl Send for GreenStack {}

impl GreenStack {
    /// Wraps a slot.
    ///
    /// # Safety
    ///
    /// `[start, top)` is a mapped slot of `class` no other value uses: a guard of
    /// `top - start - class.bytes()` bytes that faults on access, then `class.bytes()` bytes of
    /// read-write stack; it is registered in the registry with `owner` as its owner entry, and
    /// stays mapped until the slot is given back through the arena it came from. Under Valgrind,
    /// the slot is registered as a stack until [`GreenStack::into_slot`].
    pub(super) unsafe fn from_raw(
        start: usize,
        top: usize,
        owner: NonNull<SlotOwner>,
        class: SizeClass,
        kind: Kind,
    ) -> GreenStack {
        debug_assert!(top - start > class.bytes() && start.is_multiple_of(sys::page_size()));
        GreenStack {
            start: NonZeroUsize::new(start).expect(internal_error!("a green-thread stack at address 0")),
            top: NonZeroUsize::new(top).expect(internal_error!("a green-thread stack at address 0")),
            owner,
            class,
            kind,
            valgrind: valgrind::register(start, top),
        }
    }

    /// Names the green thread that runs on this stack, for the overflow message.
    ///
    /// # Safety
    ///
    /// `name`'s bytes must stay valid (not freed or moved) until this stack is given back with
    /// `StackPool::give` or `set_owner` is called again: the overflow handler may read them at
    /// any moment while a green thread runs on this stack.
    pub(crate) unsafe fn set_owner(&mut self, id: u64, name: Option<&str>) {
        // SAFETY: the caller keeps `name` valid until give() (which clears the owner) or the next
        // set_owner; `owner` is valid while this stack exists (from_raw).
        unsafe { self.owner.as_ref().set(id, name) };
    }

    /// Usable size in bytes (at least what was asked for).
    pub(crate) fn size(&self) -> usize {
        self.class.bytes()
    }

    /// The size class.
    pub(super) fn class(&self) -> SizeClass {
        self.class
    }

    /// Packed or separate.
    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// The lowest address (guard included) and the length of the slot.
    pub(super) fn span(&self) -> (usize, usize) {
        (self.start.get(), self.top.get() - self.start.get())
    }

    /// Forgets the green thread that ran here (its name may be freed now).
    pub(super) fn clear_owner(&self) {
        // SAFETY: `owner` is valid while this stack exists (from_raw).
        unsafe { self.owner.as_ref().clear() };
    }

    /// Gives the stack's pages back to the OS; the guard stays. The stack reads as zeros after
    /// (unless the memory is locked: see `sys::discard`).
    pub(super) fn discard(&self) {
        let usable = self.class.bytes();
        // SAFETY: `self` owns the slot, so no coroutine runs on it (a coroutine would own the
        // GreenStack) and its contents are dead; the range is the slot's stack part (from_raw).
        unsafe { sys::discard(self.top.get() - usable, usable) };
    }

    /// Consumes the handle without the leak warning (the arena took the slot back, to unmap
    /// it or for good): under Valgrind, the slot is no longer a stack.
    pub(super) fn into_slot(self) {
        valgrind::deregister(self.valgrind);
        std::mem::forget(self);
    }
}

// SAFETY: `base` and `limit` are the ends of a slot whose low `limit..limit+guard` bytes fault on
// access and whose remaining `class.bytes()` (>= 32 KiB > MIN_STACK_SIZE) bytes are read-write
// stack (from_raw); both are page-aligned, hence aligned to STACK_ALIGNMENT; the slot stays
// mapped while this value exists.
unsafe impl Stack for GreenStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.top
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.start
    }
}

impl Drop for GreenStack {
    fn drop(&mut self) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                "green: a {} KiB green-thread stack was dropped instead of given back to its \
                 pool; its memory stays mapped (leaked). Further leaks are not reported.",
                self.size() / 1024
            );
        }
    }
}
