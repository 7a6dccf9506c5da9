//! Size classes: requested stack sizes round up to a power of two.
//!
//! Stacks of one class are interchangeable, so a pool can hand any of them to any green thread
//! that asked for that class or less, and a packed chunk can hold slots of one size. Rounding up
//! to a power of two wastes at most half of the usable bytes, and only as address space: pages
//! that are never touched cost nothing.

use std::io;

use super::sys;

/// log2 of the smallest class: 32 KiB. A green thread must have room to panic: std's panic
/// hook, printing a backtrace (`RUST_BACKTRACE=1`), takes more than 16 KiB of stack (measured
/// here, release and debug builds alike: a panic on a 16 KiB stack overflowed it, on 32 KiB it
/// did not). With less, a panic that would have been a `JoinError` aborted the process, and
/// only when backtraces were on. A smaller class would save address space only: untouched
/// pages cost no memory.
const MIN_SHIFT: u32 = 15;

/// log2 of the largest class: 1 GiB. Larger stacks are no use for green threads (an OS thread
/// is the better tool), and the bound keeps the class table small.
const MAX_SHIFT: u32 = 30;

/// How many classes there are.
pub(super) const NUM_CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;

/// A size class: stacks of `bytes()` usable bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SizeClass(u8);

impl SizeClass {
    /// The smallest class whose stacks have at least `size` usable bytes.
    #[inline]
    pub(super) fn of(size: usize) -> io::Result<SizeClass> {
        let size = size.max(1 << MIN_SHIFT);
        // ceil(log2(size)); size >= 2, so size - 1 >= 1.
        let shift = usize::BITS - (size - 1).leading_zeros();
        if shift > MAX_SHIFT {
            return Err(too_large(size));
        }
        Ok(SizeClass((shift - MIN_SHIFT) as u8))
    }

    /// The index of this class in per-class tables, below [`NUM_CLASSES`].
    #[inline]
    pub(super) fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Usable bytes of a stack of this class (at least one page, where pages are 64 KiB).
    #[inline]
    pub(super) fn bytes(self) -> usize {
        (1usize << (MIN_SHIFT + u32::from(self.0))).max(sys::page_size())
    }
}

#[cold]
fn too_large(size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "green: a green thread stack of {size} bytes was requested, more than the largest \
             supported ({} bytes, 1 GiB); use an OS thread for such deep recursion",
            1usize << MAX_SHIFT
        ),
    )
}
