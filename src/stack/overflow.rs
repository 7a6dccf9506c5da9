//! The SIGSEGV/SIGBUS handler that turns a green thread's stack overflow into a message naming
//! it (rule 6 of docs/design.md), and leaves every other fault to whoever handled it before.
//!
//! # Protocol
//!
//! 1. Installed once per process, never removed: for each of SIGSEGV and SIGBUS, swap ours in
//!    with `SA_SIGINFO | SA_ONSTACK` (the faulting stack has no room left: the handler runs on
//!    the thread's [`AltStack`](super::AltStack)) and keep the action it replaced. One call
//!    reads and replaces, so a handler another thread installs meanwhile is kept, not lost; a
//!    fault in the moment before it is published goes to the default action.
//! 2. A signal sent by `kill` or `raise` (`si_code` at most 0) is no fault: it goes straight to
//!    step 4, and its address field (the sender's pid and uid) is not looked up.
//! 3. On a fault, look `si_addr` up in the [`registry`]. It is an overflow if the
//!    address is in a guard, the thread's stack pointer is in (or just below) that slot, *and*
//!    the slot's owner is the green thread running on this thread: a stray write into somebody
//!    else's guard is not this thread's overflow.
//! 4. Overflow: write the message with `write(2)` and `abort()`. The handler only reads atomics
//!    and formats digits by hand into a buffer on its own stack: no allocation, no lock, no
//!    `std::fmt`, all async-signal-safe.
//! 5. Anything else goes to the previous action exactly as the kernel would have run it: its
//!    `SA_SIGINFO` function with the original arguments, its plain handler with the signal
//!    number (either after its `SA_RESETHAND`, `sa_mask` and `SA_NODEFER` have been applied as
//!    the kernel applies them), or, for `SIG_DFL` and `SIG_IGN`, `SIG_DFL` restored and a
//!    return, so the faulting instruction runs again and the default action ends the process.
//!    (The kernel forces the default for a synchronous fault that is ignored, too.) A sent
//!    signal that was ignored stays ignored; one whose action was the default is raised again.
//!    std's own handler, which reports overflows of OS thread stacks, is reached this way.

use std::cell::UnsafeCell;
use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use super::registry::{self, Hit};

/// How far below a slot's guard the stack pointer may be when a fault hits the guard: 1 MiB. A
/// frame that moves the stack pointer past the whole guard at once (C code without stack-clash
/// probes, `alloca`) and then writes upwards into it is still an overflow of that slot; no
/// realistic frame is larger.
const SP_SLACK: usize = 1 << 20;

/// Bytes of the green thread's name that the message shows at most.
const MAX_NAME: usize = 128;

/// log2 of the largest stack size the hint suggests (the largest size class, 1 GiB).
const MAX_HINT_SHIFT: u32 = 30;

static INSTALL: Once = Once::new();
static PREV_SEGV: Previous = Previous::new();
static PREV_BUS: Previous = Previous::new();

/// The action a signal had before ours. Written once, as ours is installed, then only read.
struct Previous {
    /// Set (release) once `action` is written; the handler reads `action` only after seeing it.
    ready: AtomicBool,
    /// The previous action.
    action: UnsafeCell<MaybeUninit<libc::sigaction>>,
}

// SAFETY: `action` is written once, inside INSTALL, before `ready` is set with release ordering,
// and read only after `ready` is seen with acquire ordering; after that nobody writes it.
unsafe impl Sync for Previous {}

impl Previous {
    const fn new() -> Previous {
        Previous { ready: AtomicBool::new(false), action: UnsafeCell::new(MaybeUninit::uninit()) }
    }

    fn get(&self) -> Option<&libc::sigaction> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: `ready` is set only after `action` was initialised, and it is never written
        // again (see the Sync impl).
        Some(unsafe { (*self.action.get()).assume_init_ref() })
    }
}

/// Installs the process-wide SIGSEGV/SIGBUS handler that reports green-thread stack overflows.
/// Idempotent; the handler is never removed.
pub(crate) fn install_overflow_handler() {
    INSTALL.call_once(|| {
        for (signal, previous) in [(libc::SIGSEGV, &PREV_SEGV), (libc::SIGBUS, &PREV_BUS)] {
            if let Err(e) = install(signal, previous) {
                log::warn!(
                    "green: cannot install the handler for signal {signal} ({e}); a green \
                     thread's stack overflow will be a bare crash"
                );
            }
        }
    });
}

/// Swaps ours in for `signal` and keeps the action it replaced in `previous`. Runs once
/// (INSTALL).
fn install(signal: libc::c_int, previous: &Previous) -> io::Result<()> {
    // SAFETY: all-zero bytes are a valid sigaction (no flags, empty mask, SIG_DFL).
    let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    action.sa_sigaction = handler as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: `handler` has the SA_SIGINFO signature and is async-signal-safe (module docs);
    // `old` is valid for writes.
    if unsafe { libc::sigaction(signal, &action, old.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigaction succeeded and filled `old`; this is the only write to `action`, inside
    // INSTALL, before `ready` is set. Until then the handler forwards to the default.
    unsafe { *previous.action.get() = old };
    previous.ready.store(true, Ordering::Release);
    Ok(())
}

/// The signal handler. Async-signal-safe.
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t.
    let sent = unsafe { (*info).si_code } <= 0;
    // SAFETY: as above; for a fault (not a sent signal) its address field is the fault address.
    let addr = if sent { 0 } else { unsafe { (*info).si_addr() as usize } };
    // 1. An overflow of a green thread's stack on this thread? Its stack pointer is in (or just
    // below) the slot whose guard was hit, and that slot's owner is the green thread running
    // here: a stray write into another slot's guard from a neighbouring stack is not an
    // overflow of that one, whose name another worker may be freeing.
    if let Some(hit) = (!sent).then(|| registry::lookup(addr)).flatten().filter(|hit| {
        stack_pointer_in_slot(context, hit) && {
            // SAFETY: the owner table is mapped while its region is registered (registry
            // module docs), and `id` reads one atomic of it.
            let owner = unsafe { (*hit.owner).id() };
            owner != 0 && owner == crate::runtime::context::running_id()
        }
    }) {
        report(&hit);
        // SAFETY: abort is async-signal-safe and ends the process.
        unsafe { libc::abort() };
    }
    // 2. No: forward it, leaving errno as the interrupted code had it.
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's lifetime.
    let errno = unsafe { *libc::__errno_location() };
    forward(signal, info, context, sent);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Whether the interrupted stack pointer lies in the hit slot, or at most [`SP_SLACK`] below it.
/// True where the architecture's context layout is not known here.
fn stack_pointer_in_slot(context: *mut libc::c_void, hit: &Hit) -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    // SAFETY: with SA_SIGINFO the third argument is the interrupted thread's ucontext_t.
    let sp = unsafe { (*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs[libc::REG_RSP as usize] } as usize;
    #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
    // SAFETY: with SA_SIGINFO the third argument is the interrupted thread's ucontext_t.
    let sp = unsafe { (*context.cast::<libc::ucontext_t>()).uc_mcontext.sp } as usize;
    #[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    let sp = {
        let _ = context;
        return true;
    };
    sp <= hit.slot_top && sp >= hit.slot_start.saturating_sub(SP_SLACK)
}

/// Writes the overflow message to stderr.
fn report(hit: &Hit) {
    let usable = hit.slot_top - hit.slot_start - hit.guard;
    // SAFETY: the fault is this thread's overflow of this slot (its stack pointer is there, and
    // the owner entry names the green thread running on this thread); its name stays valid until the
    // stack is given back, which cannot happen while the green thread runs. The owner table is
    // mapped while its region is registered (registry module docs).
    let (id, name) = unsafe { (*hit.owner).read() };
    let mut msg = Message::new();
    msg.push(b"green: stack overflow in ");
    if id == 0 {
        msg.push(b"a green thread");
    } else {
        msg.push(b"green thread ");
        msg.push_u64(id);
    }
    if let Some(name) = name {
        msg.push(b" \"");
        msg.push(&name[..name.len().min(MAX_NAME)]);
        msg.push(b"\"");
    }
    msg.push(b" (stack ");
    msg.push_u64((usable / 1024) as u64);
    msg.push(b" KiB, guard ");
    msg.push_u64((hit.guard / 1024) as u64);
    // Suggest four times the size: twice is often not enough for deep recursion.
    let current = usable.next_power_of_two().trailing_zeros();
    if current >= MAX_HINT_SHIFT {
        msg.push(
            b" KiB)\ngreen: it had the largest stack a green thread can have; run such deep \
            recursion on an OS thread (std::thread::Builder::stack_size) or make it iterative\n",
        );
    } else {
        msg.push(b" KiB)\ngreen: give it a larger stack: green::Builder::new().stack_size(1 << ");
        msg.push_u64(u64::from((current + 2).min(MAX_HINT_SHIFT)));
        msg.push(
            b").spawn(..), or Runtime::builder().stack_size(..) for all (for green::run's \
            and #[green::main]'s \"main\": Runtime::builder().stack_size(..).run(..))\n",
        );
    }
    msg.write_to_stderr();
}

/// Hands a fault that is not ours to the previous action; `sent`: the signal came from `kill`
/// or `raise`, not from a fault.
fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void, sent: bool) {
    let previous = if signal == libc::SIGSEGV { &PREV_SEGV } else { &PREV_BUS };
    let previous = previous.get();
    let target = previous.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if target == libc::SIG_IGN && sent {
        // Sent, not a fault, and ignored before us: it stays ignored.
    } else if target == libc::SIG_DFL || target == libc::SIG_IGN {
        // Restore the default; returning runs the faulting instruction again, which now ends
        // the process as it would have without us. A signal sent by kill() does not come back
        // by itself: raise it again (it is blocked until we return).
        // SAFETY: all-zero bytes are a valid sigaction: SIG_DFL, no flags, empty mask.
        let default: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: sigaction and raise are async-signal-safe; `default` is a valid action.
        unsafe {
            libc::sigaction(signal, &default, ptr::null_mut());
            if sent {
                libc::raise(signal);
            }
        }
    } else if let Some(previous) = previous {
        deliver_as(signal, previous);
        // SAFETY: `target` is neither SIG_DFL nor SIG_IGN (the branches above), so it is the
        // function `previous` was installed with, its flags `previous.sa_flags`; this runs in
        // our SIGSEGV/SIGBUS handler for `signal`, with the kernel's `info` and `context`.
        unsafe { crate::signal::handler::call_handler(target, previous.sa_flags, signal, info, context) };
    }
}

/// Before the previous handler runs: makes the signal's action and this thread's signal mask
/// what the kernel would have made them had it delivered the signal to that handler itself.
/// Ours runs with only the signal itself blocked, and stays installed.
///
/// - `SA_RESETHAND`: the action goes back to the default as the handler is entered. A crash
///   handler that relies on this returns to let the fault happen again and end the process;
///   called through ours, still installed, it would be called again and again, forever.
/// - Its `sa_mask` is blocked as well, and with `SA_NODEFER` the signal itself is unblocked: a
///   handler that probes memory may take a nested fault, which a blocked SIGSEGV turns into the
///   end of the process.
///
/// Our handler's return restores the interrupted code's mask from the signal frame, as the
/// previous handler's own return would have. Async-signal-safe: `sigaction`, `sigemptyset`,
/// `sigaddset` and `pthread_sigmask` are.
fn deliver_as(signal: libc::c_int, previous: &libc::sigaction) {
    if previous.sa_flags & libc::SA_RESETHAND != 0 {
        // SAFETY: all-zero bytes are a valid sigaction: SIG_DFL, no flags, empty mask.
        let default: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `default` is a valid action; sigaction is async-signal-safe.
        unsafe { libc::sigaction(signal, &default, ptr::null_mut()) };
    }
    // SAFETY: `sa_mask` is a valid signal set (filled by sigaction); a null old set is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &previous.sa_mask, ptr::null_mut()) };
    if previous.sa_flags & libc::SA_NODEFER != 0 {
        let mut only = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises `only`, sigaddset adds a valid signal number to it, and
        // pthread_sigmask reads it; a null old set is allowed.
        unsafe {
            libc::sigemptyset(only.as_mut_ptr());
            libc::sigaddset(only.as_mut_ptr(), signal);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, only.as_ptr(), ptr::null_mut());
        }
    }
}

/// A message built on the handler's stack, truncated if too long.
struct Message {
    /// Room for the longest report: a 128-byte name, 20-digit figures and the hints.
    buf: [u8; 768],
    len: usize,
}

impl Message {
    fn new() -> Message {
        Message { buf: [0; 768], len: 0 }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    /// Pushes `n` in decimal.
    fn push_u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    /// Writes the message to fd 2 with `write(2)`, retrying short writes and EINTR.
    fn write_to_stderr(&self) {
        let mut rest = &self.buf[..self.len];
        while !rest.is_empty() {
            // SAFETY: `rest` is valid for reads of its length; write is async-signal-safe.
            let n = unsafe { libc::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                rest = &rest[n as usize..];
            } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Message;

    #[test]
    fn message_formats_digits_and_truncates() {
        let mut msg = Message::new();
        msg.push(b"id ");
        msg.push_u64(0);
        msg.push(b" ");
        msg.push_u64(18_446_744_073_709_551_615);
        assert_eq!(&msg.buf[..msg.len], b"id 0 18446744073709551615");
        msg.push(&[b'x'; 1000]);
        assert_eq!(msg.len, msg.buf.len());
    }
}
