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
use std::cell::RefCell;
use std::ptr::NonNull;

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

struct Cache {
    free: [Vec<NonNull<u8>>; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, list) in self.free.iter_mut().enumerate() {
            for block in list.drain(..) {
                // SAFETY: every cached block was allocated with its class's layout (`allocate`,
                // or a task freed through `deallocate` with the same class).
                unsafe { alloc::dealloc(block.as_ptr(), class_layout(class)) };
            }
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache { free: Default::default() });
}

fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > CLASS_ALIGN || layout.size() == 0 || layout.size() > CLASS_BYTES * CLASSES {
        return None;
    }
    Some(layout.size().div_ceil(CLASS_BYTES) - 1)
}

fn class_layout(class: usize) -> Layout {
    Layout::from_size_align((class + 1) * CLASS_BYTES, CLASS_ALIGN).expect("valid class layout")
}

/// Allocates a block for `layout` (non-zero size).
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    assert!(layout.size() > 0, "green: internal error: a zero-sized task allocation");
    let (layout, cached) = match class_of(layout) {
        Some(class) => {
            let cached = CACHE.try_with(|c| c.borrow_mut().free[class].pop()).ok().flatten();
            (class_layout(class), cached)
        }
        None => (layout, None),
    };
    if let Some(block) = cached {
        return block;
    }
    // SAFETY: `layout` has a non-zero size (tasks always hold a header).
    let block = unsafe { alloc::alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| alloc::handle_alloc_error(layout))
}

/// Frees a block from [`allocate`].
///
/// # Safety
///
/// `block` came from `allocate(layout)` with this same `layout`, and is not used afterwards.
pub(crate) unsafe fn deallocate(block: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: allocated with exactly this layout (it has no class).
        unsafe { alloc::dealloc(block.as_ptr(), layout) };
        return;
    };
    let keep = CACHE
        .try_with(|c| {
            let mut cache = c.borrow_mut();
            let list = &mut cache.free[class];
            let max = CACHE_BYTES_PER_CLASS / class_layout(class).size();
            if list.len() >= max {
                return false;
            }
            if list.capacity() == 0 {
                list.reserve_exact(max);
            }
            list.push(block);
            true
        })
        .unwrap_or(false);
    if !keep {
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
