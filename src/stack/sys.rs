//! The memory system calls the stack module makes, each wrapped once.
//!
//! Functions that can destroy or hide memory somebody may still use are `unsafe fn`; the ones
//! that only create memory or read process facts are safe.

use std::fs::File;
use std::io::{self, Read};
use std::ptr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `madvise` advice that installs guard regions (Linux 6.13+): page-table markers that fault
/// on any access, without splitting the mapping. `libc` has no constant for it yet.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// `vm.max_map_count` when `/proc/sys/vm/max_map_count` cannot be read: the kernel default.
pub(super) const DEFAULT_MAX_MAP_COUNT: usize = 65530;

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = if page > 0 { page as usize } else { 4096 };
    PAGE.store(page, Ordering::Relaxed);
    page
}

/// Rounds `n` up to a whole number of pages.
pub(super) fn round_to_pages(n: usize) -> usize {
    let page = page_size();
    n.div_ceil(page) * page
}

/// Maps `len` bytes of fresh private anonymous read-write memory, without reserving swap for
/// it (`MAP_NORESERVE`: a million stacks are far more than RAM; only touched pages count).
pub(super) fn map_anon(len: usize) -> io::Result<usize> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a new anonymous mapping at an address the kernel chooses overlaps nothing that
    // exists, so it cannot invalidate any memory the program uses.
    let addr = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(addr as usize)
}

/// Unmaps `[addr, addr + len)`.
///
/// # Safety
///
/// The range was mapped by [`map_anon`] and nothing uses memory in it any more, nor will.
pub(super) unsafe fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller guarantees the range is ours and unused.
    let rc = unsafe { libc::munmap(addr as *mut libc::c_void, len) };
    debug_assert_eq!(rc, 0, "munmap of a stack mapping failed: {}", io::Error::last_os_error());
}

/// Makes `[addr, addr + len)` a guard with `MADV_GUARD_INSTALL`; `EINVAL` means the kernel (or
/// this mapping, if locked) does not support it.
///
/// # Safety
///
/// The range lies in a mapping from [`map_anon`] and holds nothing anybody will read: its
/// contents are discarded and any later access faults.
pub(super) unsafe fn install_guard(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller guarantees the range is ours and unused.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `[addr, addr + len)` inaccessible with `mprotect(PROT_NONE)` (splits the mapping).
///
/// # Safety
///
/// As for [`install_guard`].
pub(super) unsafe fn protect_none(addr: usize, len: usize) -> io::Result<()> {
    // SAFETY: the caller guarantees the range is ours and unused.
    let rc = unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the pages of `[addr, addr + len)` back to the OS (`MADV_DONTNEED`); they read as zero
/// afterwards. Guard installs in the range survive. The kernel refuses for memory the process
/// has locked (`mlock`, `mlockall`: `EINVAL`): the pages then stay, contents and all, which
/// nothing relies on, and the refusal is logged once.
///
/// # Safety
///
/// The range lies in a mapping from [`map_anon`] and nobody needs its contents.
pub(super) unsafe fn discard(addr: usize, len: usize) {
    // SAFETY: the caller guarantees the range is ours and its contents are dead.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if rc != 0 {
        static LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            log::warn!(
                "green: cannot give unused stack memory back to the OS ({}): free stacks keep their pages \
                 (memory locked with mlockall refuses MADV_DONTNEED)",
                io::Error::last_os_error()
            );
        }
    }
}

/// Asks the kernel not to back `[addr, addr + len)` with transparent huge pages: a 2 MiB page
/// would span several stacks and back all of them as soon as one is touched. Advisory only.
pub(super) fn no_huge_pages(addr: usize, len: usize) {
    // SAFETY: MADV_NOHUGEPAGE only changes how pages will be backed, never their contents or
    // accessibility, so it cannot affect memory safety whatever the range.
    let rc = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
    if rc != 0 {
        log::debug!("green: MADV_NOHUGEPAGE failed: {}", io::Error::last_os_error());
    }
}

/// Whether `MADV_GUARD_INSTALL` works in this process, probed once (on a scratch mapping).
pub(super) fn guard_installs_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let page = page_size();
        let Ok(addr) = map_anon(2 * page) else {
            return false;
        };
        // SAFETY: the scratch mapping was just made and holds nothing.
        let result = unsafe { install_guard(addr, page) };
        // SAFETY: the scratch mapping is ours and nothing else knows its address.
        unsafe { unmap(addr, 2 * page) };
        match result {
            Ok(()) => true,
            Err(e) => {
                log::debug!("green: MADV_GUARD_INSTALL unsupported ({e}); one mapping per stack");
                false
            }
        }
    })
}

/// The number of mappings this process has now (lines of `/proc/self/maps`).
pub(super) fn count_maps() -> io::Result<usize> {
    let mut file = File::open("/proc/self/maps")?;
    let mut buf = [0u8; 64 * 1024];
    let mut lines = 0;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(lines),
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The kernel's limit on mappings per process (`vm.max_map_count`).
pub(super) fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_MAP_COUNT)
}
