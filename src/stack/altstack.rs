//! A worker thread's alternate signal stack, on which the overflow handler runs.
//!
//! When a stack overflows, the faulting stack has no room for a signal frame, so the kernel can
//! only deliver SIGSEGV on an alternate stack (`SA_ONSTACK`). `sigaltstack` is per thread, and
//! std sets one only on threads it spawns, only in some configurations, and small (`SIGSTKSZ`).
//! So every worker installs its own for as long as it runs: if the thread already has one at
//! least as large, that one is kept; otherwise ours replaces it until [`AltStack`] drops, which
//! puts the previous one back and unmaps ours.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr;

use super::sys;

/// Bytes of alternate stack at least: 64 KiB. The handler itself needs about 1 KiB, but it
/// forwards faults that are not ours to the previous handler (std's formats a message with the
/// thread's name; crash reporters need more), and the kernel's signal frame holds the full
/// register state (about 3 KiB with AVX-512, more with AMX).
const ALTSTACK_MIN: usize = 64 * 1024;

/// Bytes added to what the kernel says a signal frame needs, for the handlers themselves.
const ALTSTACK_HEADROOM: usize = 32 * 1024;

/// This thread's alternate signal stack, installed while this value lives.
///
/// `!Send`: it describes the thread that made it, and must be dropped on that thread, before the
/// thread exits (keep it in a local of the worker's main function).
pub(crate) struct AltStack {
    /// Our mapping (`address`, `length`: a guard page, then the stack), or `None` when the
    /// thread's own alternate stack was large enough and was kept.
    mapping: Option<(usize, usize)>,
    /// The thread's alternate stack setting before ours, restored on drop.
    previous: libc::stack_t,
    /// `sigaltstack` is per thread.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for AltStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AltStack").field("mapping", &self.mapping).finish_non_exhaustive()
    }
}

impl AltStack {
    /// Makes sure this thread has an alternate signal stack large enough for the overflow
    /// handler while the returned value lives.
    pub(crate) fn install() -> io::Result<AltStack> {
        let size = altstack_size();
        // 1. What does the thread have now?
        let mut previous = MaybeUninit::<libc::stack_t>::zeroed();
        // SAFETY: a null new stack only reads the current setting into `previous`.
        if unsafe { libc::sigaltstack(ptr::null(), previous.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigaltstack succeeded and filled it in (and zeroes are valid anyway).
        let previous = unsafe { previous.assume_init() };
        let enabled = previous.ss_flags & libc::SS_DISABLE == 0;
        // 2. Large enough: keep it.
        if enabled && previous.ss_size >= size {
            return Ok(AltStack { mapping: None, previous, _not_send: PhantomData });
        }
        // 3. Otherwise map ours, a guard page below it, and install it.
        let guard = sys::page_size();
        let len = guard + size;
        let addr = sys::map_anon(len)?;
        // SAFETY: the mapping was just made and holds nothing.
        let guarded = unsafe { sys::protect_none(addr, guard) };
        let stack = libc::stack_t { ss_sp: (addr + guard) as *mut libc::c_void, ss_flags: 0, ss_size: size };
        // SAFETY: `stack` describes `size` bytes of read-write memory we own until drop.
        let installed = guarded.and_then(|()| match unsafe { libc::sigaltstack(&stack, ptr::null_mut()) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        });
        if let Err(e) = installed {
            // SAFETY: the mapping is ours and was not installed.
            unsafe { sys::unmap(addr, len) };
            return Err(e);
        }
        Ok(AltStack { mapping: Some((addr, len)), previous, _not_send: PhantomData })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let Some((addr, len)) = self.mapping else {
            return;
        };
        // 1. If ours is still the thread's alternate stack, put the previous setting back.
        let mut current = MaybeUninit::<libc::stack_t>::zeroed();
        // SAFETY: a null new stack only reads the current setting.
        let rc = unsafe { libc::sigaltstack(ptr::null(), current.as_mut_ptr()) };
        // SAFETY: filled in by sigaltstack, or all zeroes, valid either way.
        let current = unsafe { current.assume_init() };
        if rc == 0 && current.ss_sp as usize == addr + sys::page_size() {
            let restore = if self.previous.ss_flags & libc::SS_DISABLE == 0 {
                libc::stack_t { ss_flags: 0, ..self.previous }
            } else {
                libc::stack_t { ss_sp: ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 }
            };
            // SAFETY: `restore` is the setting the thread had before (its memory is still its
            // owner's: AltStack is dropped on its thread before the thread exits), or disabled.
            if unsafe { libc::sigaltstack(&restore, ptr::null_mut()) } != 0 {
                // Still ours (we are running on it?): leak the mapping rather than unmap it.
                log::warn!("green: cannot restore the alternate signal stack: {}", io::Error::last_os_error());
                return;
            }
        }
        // 2. Unmap ours: it is no longer the thread's alternate stack.
        // SAFETY: the mapping is ours, and not installed (step 1), so no signal runs on it.
        unsafe { sys::unmap(addr, len) };
    }
}

/// Bytes of alternate stack: what the kernel says a signal frame needs (`AT_MINSIGSTKSZ`, or
/// `SIGSTKSZ` if larger), plus headroom for the handlers, at least [`ALTSTACK_MIN`], in pages.
fn altstack_size() -> usize {
    // SAFETY: getauxval has no preconditions; it returns 0 for an unknown entry.
    let kernel_min = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize;
    let need = kernel_min.max(libc::SIGSTKSZ) + ALTSTACK_HEADROOM;
    sys::round_to_pages(need.max(ALTSTACK_MIN))
}
