//! A per-thread cache of task allocations.
//!
//! Every spawn allocates one task and every finished green thread frees one. Spawning in
//! batches (a thousand children, then joining them) keeps more tasks alive than the system
//! allocator's per-thread cache holds, so each allocation and free took its slow path: about
//! 400 instructions of a spawn's 1,700 here. This cache keeps freed blocks per size class on the
//! thread that freed them and hands them out again on that thread, without a lock.
//!
//! Blocks are plain global-allocator blocks of their class's size; any thread may cache or
//! free any of them, so a task freed on another thread than the one that allocated it is fine.
//! A thread's cache is bounded ([`CACHE_BYTES_PER_CLASS`]) and freed when the thread exits.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ptr::{self, NonNull};

/// Size classes are multiples of this many bytes.
const CLASS_BYTES: usize = 64;
/// Number of classes: blocks up to 512 bytes are cached; larger tasks (a closure that captures
/// a big value) go straight to the global allocator.
const CLASSES: usize = 8;
/// Alignment of every cached block. Tasks that need more bypass the cache.
const CLASS_ALIGN: usize = 16;
/// Bytes a thread keeps per class: 256 KiB, 4,096 blocks of the smallest class. Enough for a
/// batch of a few thousand short green threads; bounded so a thread that only frees (a joining
/// OS thread) cannot hoard memory.
const CACHE_BYTES_PER_CLASS: usize = 256 * 1024;

/// A thread's cached blocks: per class, a list threaded through the free blocks themselves
/// (each holds the address of the next in its first word), and its length.
struct Cache {
    heads: [Cell<*mut u8>; CLASSES],
    lens: [Cell<usize>; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for class in 0..CLASSES {
            let mut block = self.heads[class].replace(ptr::null_mut());
            while !block.is_null() {
                // SAFETY: `block` is a cached block (see `deallocate`): its first word holds the
                // next one, and it was allocated with its class's layout.
                unsafe {
                    let next = block.cast::<*mut u8>().read();
                    alloc::dealloc(block, class_layout(class));
                    block = next;
                }
            }
        }
    }
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            lens: [const { Cell::new(0) }; CLASSES],
        }
    };
}

#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_ALIGN || layout.size() == 0 || layout.size() > CLASS_BYTES * CLASSES {
        return None;
    }
    Some(layout.size().div_ceil(CLASS_BYTES) - 1)
}

#[inline]
fn class_layout(class: usize) -> Layout {
    Layout::from_size_align((class + 1) * CLASS_BYTES, CLASS_ALIGN)
        .expect(internal_error!("no valid memory layout for an allocation size class of green threads"))
}

/// Allocates a block for `layout` (non-zero size).
#[inline]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    assert!(layout.size() > 0, internal_error!("a zero-sized allocation for a green thread"));
    let Some(class) = class_of(layout) else { return allocate_global(layout) };
    let cached = CACHE
        .try_with(|cache| {
            let block = cache.heads[class].get();
            if !block.is_null() {
                // SAFETY: a cached block holds the address of the next one in its first word
                // (`deallocate`), and nothing else uses it while it is cached.
                cache.heads[class].set(unsafe { block.cast::<*mut u8>().read() });
                cache.lens[class].set(cache.lens[class].get() - 1);
            }
            block
        })
        .unwrap_or(ptr::null_mut());
    match NonNull::new(cached) {
        Some(block) => block,
        None => allocate_global(class_layout(class)),
    }
}

#[cold]
fn allocate_global(layout: Layout) -> NonNull<u8> {
    // SAFETY: `layout` has a non-zero size (tasks always hold a header).
    let block = unsafe { alloc::alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Frees a block from [`allocate`].
///
/// # Safety
///
/// `block` came from `allocate(layout)` with this same `layout`, and is not used afterwards.
#[inline]
pub(crate) unsafe fn deallocate(block: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: allocated with exactly this layout (it has no class).
        unsafe { alloc::dealloc(block.as_ptr(), layout) };
        return;
    };
    let kept = CACHE
        .try_with(|cache| {
            let len = cache.lens[class].get();
            if len >= CACHE_BYTES_PER_CLASS / class_layout(class).size() {
                return false;
            }
            // SAFETY: the block is ours now and at least one word large and aligned (its class
            // layout), so it can hold the address of the next cached block.
            unsafe { block.as_ptr().cast::<*mut u8>().write(cache.heads[class].get()) };
            cache.heads[class].set(block.as_ptr());
            cache.lens[class].set(len + 1);
            true
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: blocks with a class are allocated with the class's layout.
        unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_on_the_same_thread() {
        let layout = Layout::from_size_align(100, 8).unwrap();
        let a = allocate(layout);
        // SAFETY: `a` came from `allocate(layout)`.
        unsafe { deallocate(a, layout) };
        let b = allocate(Layout::from_size_align(120, 16).unwrap()); // same class
        assert_eq!(a, b);
        // SAFETY: `b` came from `allocate` with a layout of the same class.
        unsafe { deallocate(b, Layout::from_size_align(120, 16).unwrap()) };
    }

    #[test]
    fn large_and_overaligned_blocks_bypass_the_cache() {
        assert_eq!(class_of(Layout::from_size_align(4096, 8).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 64).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 8).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(65, 8).unwrap()), Some(1));
    }
}
