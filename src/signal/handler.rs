//! The process-wide edge of signal waiting: the self-pipe, the handler, and the previous
//! actions. All of the signal module's `unsafe` code is here.
//!
//! # Protocol
//!
//! 1. [`open_pipe`], once: a pipe, close-on-exec at both ends, its write end non-blocking so
//!    the handler can never block. The write end is published in [`PIPE_WRITE`], then the
//!    process that reads it in [`PIPE_PID`]. Once more in a child made by `fork` without
//!    `exec`, when it first listens: the parent's pipe is read by the parent's thread, which
//!    the child does not have.
//! 2. [`install`], once per signal, only after the pipe exists: keep the current action in
//!    [`PREVIOUS`] (published before ours is installed, so the handler always finds it), then
//!    swap ours in with `SA_SIGINFO | SA_ONSTACK` (`SA_ONSTACK`: a worker may be on a small
//!    green stack when the signal lands, so run on its alternate signal stack). The swap
//!    returns what it replaced: if another thread installed an action between the read and
//!    the swap, that one is published instead, so it is chained to rather than lost. Over a
//!    handler, ours keeps that handler's mask and its `SA_RESTART` choice (it runs inside
//!    ours); over the default or an ignored action, ours sets `SA_RESTART` (a slow system call
//!    the signal interrupts is restarted rather than failing with `EINTR`).
//! 3. The handler is async-signal-safe: it sets the signal's bit in [`CAUGHT`] (and its
//!    unheard bit too if nobody listened for it in [`LISTENING`] then, and the action before
//!    ours was the default), writes one byte to the pipe (if the pipe is full the byte is
//!    dropped: bytes only wake the reader, the bits say what came), calls the previous handler
//!    if that was a function (one installed with `SA_RESETHAND` once: as the kernel would, it
//!    puts the default back in [`PREVIOUS`] as it calls it), and leaves `errno` as it found it.
//!    No allocation, no lock. In a child made by `fork` without `exec`, which has our handler
//!    but not the thread that reads the pipe (the process id says), until it opens a pipe of
//!    its own it does what the action before ours would have done: the child can still be
//!    ended by the signal.
//! 4. The reader blocks in [`wait_caught`]: a `read` of the pipe, then a swap of [`CAUGHT`]. The
//!    handler sets the bit before it writes the byte, so a signal is either in the bits the
//!    reader takes or still has its byte in the pipe: none is lost.
//! 5. [`default_action`], for a signal that arrived while nobody listened and its action
//!    before us was the default (its unheard bit; one that arrived while a listener was alive
//!    goes with that listener, even if it is gone by the time the reader gets to it): if that
//!    default ends the process, restore it and raise the signal again, so the process ends
//!    exactly as it would have without us. Only while ours is still the installed action: a
//!    handler installed over ours since (which chains to ours, as `signal-hook` does) decides
//!    what the signal does now.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// Signal numbers handled here are below this (the bits of one `u64` word would allow 64; the
/// supported signals are all below 32 on every Unix).
pub(super) const MAX_SIGNAL: usize = 32;

/// Bit `n` is set when signal `n` was caught and the reader has not taken it yet; bit
/// `MAX_SIGNAL + n` too if it was caught while its bit in [`LISTENING`] was clear and its
/// [`PREVIOUS`] action was the default. One word, so that the reader takes both halves with one
/// swap.
static CAUGHT: AtomicU64 = AtomicU64::new(0);

/// Bit `n` is set while some `Signals` listens for signal `n`. Written by the signal module
/// with its registry locked, whenever a listener comes or goes; read by the handler.
static LISTENING: AtomicU64 = AtomicU64::new(0);

/// The pipe's write end, or -1 before [`open_pipe`]. Never closed once set.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// The process that opened the pipe and reads it; a child made by `fork` has another id
/// until it opens its own.
static PIPE_PID: AtomicI32 = AtomicI32::new(0);

/// Per signal: the `sa_sigaction` of the action before ours (`SIG_DFL` until installed).
/// Written once by [`install`] before ours is installed; then only read, but for a one-shot
/// handler (`SA_RESETHAND`), which [`chain`] replaces with `SIG_DFL` as it calls it.
static PREVIOUS: [AtomicUsize; MAX_SIGNAL] = [const { AtomicUsize::new(libc::SIG_DFL) }; MAX_SIGNAL];

/// Per signal: the `sa_flags` of the action before ours. Written with [`PREVIOUS`].
static PREVIOUS_FLAGS: [AtomicI32; MAX_SIGNAL] = [const { AtomicI32::new(0) }; MAX_SIGNAL];

fn bit(signal: libc::c_int) -> u64 {
    1 << signal
}

/// What the reader takes from [`CAUGHT`]: the signals caught, as bits (bit `n` for signal `n`),
/// and those of them caught while nobody listened, with the default action before ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Caught {
    /// Every signal caught.
    pub(super) all: u64,
    /// Caught (at least once) while no `Signals` listened for it and its action before ours was
    /// the default: those that take the default action if nobody listens now either.
    pub(super) unheard: u64,
}

/// Publishes the signals some `Signals` listens for now, as bits. Call with the signal module's
/// registry locked, after each listener comes and before each goes.
pub(super) fn set_listening(bits: u64) {
    LISTENING.store(bits, Ordering::Release);
}

/// True if this process reads the published pipe: false before [`open_pipe`], and in a child
/// made by `fork` without `exec` until it calls [`open_pipe`] itself.
pub(super) fn pipe_is_ours() -> bool {
    // SAFETY: getpid has no preconditions.
    PIPE_PID.load(Ordering::Acquire) == unsafe { libc::getpid() }
}

/// Has `prepare` called in the thread that calls `fork`, before the fork, and `after` in it
/// after, in both the parent and the child. Call once.
pub(super) fn around_fork(prepare: extern "C" fn(), after: extern "C" fn()) -> io::Result<()> {
    // SAFETY: pthread_atfork only keeps the three function pointers, which are `'static` and
    // take no arguments.
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(after), Some(after)) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Step 1: makes the self-pipe and publishes its write end; returns its read end. Call once,
/// and again in a child made by `fork` without `exec` (with the signal module's registry
/// locked): the parent's ends stay open there, unused.
pub(super) fn open_pipe() -> io::Result<OwnedFd> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_SETFL with O_NONBLOCK on a descriptor we own.
    if unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // What the parent had caught before a fork is the parent's to deliver. The handler leaves
    // the bits alone until the pid below is this process's.
    CAUGHT.store(0, Ordering::Relaxed);
    // The write end lives for the rest of the process: the handler may use it at any time. It
    // is published first, so that a handler that finds its own pid finds this pipe too.
    PIPE_WRITE.store(std::os::fd::IntoRawFd::into_raw_fd(write), Ordering::Release);
    // SAFETY: getpid has no preconditions.
    PIPE_PID.store(unsafe { libc::getpid() }, Ordering::Release);
    Ok(read)
}

/// Step 2: keeps `signal`'s current action, then swaps ours in. Call once per signal, after
/// [`open_pipe`], with the signal module's registry locked.
pub(super) fn install(signal: libc::c_int) -> io::Result<()> {
    assert!((signal as usize) < MAX_SIGNAL, internal_error!("signal {} is out of range"), signal);
    // 1. The current action: the one to chain to, or to restore.
    let old = swap_action(signal, None)?;
    publish_previous(signal, &old);
    // 2. Ours, swapped in: what it replaced is what ours stands in front of.
    let replaced = swap_action(signal, Some(&our_action(&old)))?;
    if (replaced.sa_sigaction, replaced.sa_flags) != (old.sa_sigaction, old.sa_flags) {
        publish_previous(signal, &replaced);
    }
    Ok(())
}

/// Makes `old` the action that [`handler`] chains to and [`default_action`] consults.
fn publish_previous(signal: libc::c_int, old: &libc::sigaction) {
    PREVIOUS_FLAGS[signal as usize].store(old.sa_flags, Ordering::Relaxed);
    PREVIOUS[signal as usize].store(old.sa_sigaction, Ordering::Release);
}

/// True if `signal`'s installed action is the default: in a child made by `fork`, what
/// [`as_if_absent`] leaves after a signal the default did not end the child for.
pub(super) fn is_default(signal: libc::c_int) -> io::Result<bool> {
    Ok(swap_action(signal, None)?.sa_sigaction == libc::SIG_DFL)
}

/// Installs `new` for `signal` if given, and returns the action it replaced (or the current
/// one).
fn swap_action(signal: libc::c_int, new: Option<&libc::sigaction>) -> io::Result<libc::sigaction> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    let new = new.map_or(ptr::null(), ptr::from_ref);
    // SAFETY: `new` is null (only read the current action) or a valid action whose handler, if
    // it is ours, has the SA_SIGINFO signature and is async-signal-safe (module docs); `old` is
    // valid for writes.
    if unsafe { libc::sigaction(signal, new, old.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sigaction succeeded and filled `old`.
    Ok(unsafe { old.assume_init() })
}

/// Our action, in front of `old` (module docs, step 2).
fn our_action(old: &libc::sigaction) -> libc::sigaction {
    // SAFETY: all-zero bytes are a valid sigaction (no flags, empty mask, SIG_DFL).
    let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    action.sa_sigaction = handler as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    if old.sa_sigaction == libc::SIG_DFL || old.sa_sigaction == libc::SIG_IGN {
        action.sa_flags |= libc::SA_RESTART;
    } else {
        action.sa_flags |= old.sa_flags & libc::SA_RESTART;
        action.sa_mask = old.sa_mask;
    }
    action
}

/// Step 3: the handler.
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's lifetime.
    let errno = unsafe { *libc::__errno_location() };
    if (signal as usize) < MAX_SIGNAL {
        // SAFETY: getpid is async-signal-safe.
        if unsafe { libc::getpid() } != PIPE_PID.load(Ordering::Acquire) {
            // A child made by fork that has not listened yet: nobody reads the pipe here.
            as_if_absent(signal, info, context);
        } else {
            // Read before `chain`, which may put the default back for a one-shot handler: that
            // default is for the next signal, not this one.
            let unheard = LISTENING.load(Ordering::Acquire) & bit(signal) == 0
                && PREVIOUS[signal as usize].load(Ordering::Acquire) == libc::SIG_DFL;
            let unheard = if unheard { bit(signal) } else { 0 };
            CAUGHT.fetch_or(bit(signal) | unheard << MAX_SIGNAL, Ordering::AcqRel);
            let fd = PIPE_WRITE.load(Ordering::Acquire);
            if fd >= 0 {
                let byte = signal as u8;
                // SAFETY: write is async-signal-safe; `fd` is the pipe's write end, open for the
                // rest of the process; the buffer is one valid byte. A full pipe (EAGAIN) is fine.
                unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
            }
            chain(signal, info, context);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// In a child made by `fork` without `exec`: does what the action before ours would have done.
/// The default is restored and the signal raised again; it is blocked until this handler
/// returns, and then taken with the default action (ending the child, for the signals whose
/// default does). An ignored signal stays ignored; a handler is called.
fn as_if_absent(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    if PREVIOUS[signal as usize].load(Ordering::Acquire) != libc::SIG_DFL {
        chain(signal, info, context);
        return;
    }
    // SAFETY: all-zero bytes are a valid sigaction: SIG_DFL, no flags, empty mask. sigaction
    // and raise are async-signal-safe.
    unsafe {
        let default: libc::sigaction = MaybeUninit::zeroed().assume_init();
        libc::sigaction(signal, &default, ptr::null_mut());
        libc::raise(signal);
    }
}

/// Calls the handler that was installed before ours, if it was a function. A one-shot handler
/// (`SA_RESETHAND`) is called once: the kernel resets such an action to the default as it
/// calls it, and so does this for the action behind ours.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let target = PREVIOUS[signal as usize].load(Ordering::Acquire);
    if target == libc::SIG_DFL || target == libc::SIG_IGN {
        return;
    }
    let flags = PREVIOUS_FLAGS[signal as usize].load(Ordering::Relaxed);
    if flags & libc::SA_RESETHAND != 0
        && PREVIOUS[signal as usize]
            .compare_exchange(target, libc::SIG_DFL, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        // The same signal, on another thread, got to it first.
        return;
    }
    // SAFETY: `target` is neither SIG_DFL nor SIG_IGN (checked above), so it is the function
    // its owner installed with `flags` (both kept by `install` from the same sigaction), and
    // this runs inside our handler for `signal`, with the kernel's `info` and `context`.
    unsafe { call_handler(target, flags, signal, info, context) };
}

/// Calls the signal handler function `target` of an action whose flags were `flags`, as the
/// kernel would have: with `info` and `context` if `SA_SIGINFO` is set, with the signal alone
/// otherwise. Shared with the stack overflow handler, which passes faults on the same way.
///
/// # Safety
///
/// `target` must be a handler function (not `SIG_DFL` or `SIG_IGN`) installed with `flags`,
/// and the caller a signal handler for `signal` whose `info` and `context` came from the kernel.
pub(crate) unsafe fn call_handler(
    target: libc::sighandler_t,
    flags: libc::c_int,
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO, `sa_sigaction` is a function of this signature (the caller's
        // contract), installed to be called exactly like this from a signal handler.
        let function: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(target) };
        function(signal, info, context);
    } else {
        // SAFETY: without SA_SIGINFO, `sa_handler` (the same field) is a plain handler.
        let function: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(target) };
        function(signal);
    }
}

/// Step 4: blocks until a byte arrives on the pipe's read end `pipe`, then returns the signals
/// caught since the last call (possibly none).
///
/// # Errors
///
/// If the read fails for another reason than an interruption.
pub(super) fn wait_caught(pipe: &OwnedFd) -> io::Result<Caught> {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: `buf` is valid for writes of its length; `pipe` is an open descriptor.
        let n = unsafe { libc::read(std::os::fd::AsRawFd::as_raw_fd(pipe), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            let word = CAUGHT.swap(0, Ordering::AcqRel);
            let low = (1 << MAX_SIGNAL) - 1;
            return Ok(Caught { all: word & low, unheard: word >> MAX_SIGNAL });
        }
        let error = io::Error::last_os_error();
        if n < 0 && error.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        // End of file cannot happen (the write end is never closed); report it like an error.
        return Err(if n == 0 { io::Error::from(io::ErrorKind::UnexpectedEof) } else { error });
    }
}

/// Step 5: `signal` came while nobody listened for it. If its action before us was the
/// default, and `terminates` (its default ends the process), restores the default and raises
/// it on this thread: the process ends as it would have without us. Call with the signal
/// module's registry locked, so that no listener appears meanwhile.
pub(super) fn default_action(signal: libc::c_int, terminates: bool) {
    if !terminates || PREVIOUS[signal as usize].load(Ordering::Acquire) != libc::SIG_DFL {
        // Ignored before, or a handler that `chain` already called: nothing more to do.
        return;
    }
    // Ours must still be the installed action: a handler installed over it since decides.
    let ours = match swap_action(signal, None) {
        Ok(current) if current.sa_sigaction == handler as *const () as libc::sighandler_t => current,
        Ok(_) => return,
        Err(e) => {
            log::error!(
                "green: could not read the action of signal {signal}: {e}; its default action was not taken. This \
                 is a bug in green, please report it"
            );
            return;
        }
    };
    // SAFETY: all-zero bytes are a valid sigaction: SIG_DFL, no flags, empty mask. The signal
    // set is initialised by sigemptyset before use. raise sends the signal to this thread, which
    // has just unblocked it, so it is delivered (and its default action taken) before raise
    // returns.
    unsafe {
        let default: libc::sigaction = MaybeUninit::zeroed().assume_init();
        libc::sigaction(signal, &default, ptr::null_mut());
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, set.as_ptr(), ptr::null_mut());
        libc::raise(signal);
    }
    // Still here (something kept the default from ending the process): take the signal back.
    if let Err(e) = swap_action(signal, Some(&ours)) {
        log::error!(
            "green: could not reinstall the handler for signal {signal}: {e}; its default action stays \
             installed. This is a bug in green, please report it"
        );
    }
}
