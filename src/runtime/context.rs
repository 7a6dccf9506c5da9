//! Where am I? The per-OS-thread pointer to the worker running here, and the switch back to it.
//!
//! Thread-locals are sound here by construction (rule 1 of docs/design.md): a started green thread
//! never leaves its worker's OS thread, so an address LLVM cached before a suspend is still
//! the right one after it.

use std::cell::Cell;
use std::ptr;
use std::time::Instant;

use super::task::ParkKind;
use super::worker::Core;
use crate::park::ParkReason;

thread_local! {
    /// The worker whose loop runs on this OS thread; null elsewhere.
    static CORE: Cell<*const Core> = const { Cell::new(ptr::null()) };
}

/// Why a green thread hands control back to its worker.
///
/// Small enough to travel through the switch in a register; a park's deadline, which is not,
/// goes through the worker (`Core::park`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Suspend {
    /// Run me again after the others that are ready.
    Yield,
    /// A forced yield (the budget's): someone else waits on this worker, maybe where only the
    /// worker's look at its inbox, timers and unstarted green threads finds them. Take that
    /// look now, then run me again after the others.
    ForcedYield,
    /// Park until woken, or until the deadline given to `Core::park` (rule 4 of docs/design.md: the
    /// worker arms the timer and commits the park after the switch).
    Park { kind: ParkKind, reason: ParkReason },
}

/// Marks this OS thread as running `core`'s loop while the guard lives.
pub(crate) struct Enter(());

impl Enter {
    pub(crate) fn new(core: &Core) -> Enter {
        CORE.with(|c| {
            assert!(c.get().is_null(), "{}", crate::runtime::NESTED_RUNTIME);
            c.set(core);
        });
        Enter(())
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CORE.with(|c| c.set(ptr::null()));
    }
}

/// Calls `f` with the worker running on this OS thread, if any.
#[inline(always)]
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    let core = CORE.with(Cell::get);
    // SAFETY: a non-null pointer was set by `Enter::new` from a `&Core` that outlives the
    // `Enter` guard, which is dropped (clearing it) before the worker loop returns; all code that
    // can observe it runs inside that loop on this thread. The borrow does not escape `f`.
    f(unsafe { core.as_ref() })
}

/// The id of the green thread running on this OS thread, or 0. Async-signal-safe: it reads a
/// `const` thread-local without a destructor, a `Cell` that only this thread writes, and the
/// header's id, which never changes.
pub(crate) fn running_id() -> u64 {
    // SAFETY: `current_header` is the running green thread's header, alive while it runs (and a
    // signal handler that calls this interrupts it, on this thread).
    with_core(|core| core.and_then(Core::current_header).map_or(0, |h| unsafe { h.as_ref() }.id.get()))
}

/// True when the caller runs on a green thread (rather than a plain OS thread or a worker's
/// own stack).
#[inline]
pub(crate) fn in_green_thread() -> bool {
    with_core(|core| core.is_some_and(Core::in_green_thread))
}

/// Switches from the current green thread back to its worker, asking for `why`.
///
/// Panics if called outside a green thread or on the worker's own stack.
pub(crate) fn suspend(why: Suspend) {
    with_core(|core| core.expect(internal_error!("suspend outside a green thread")).suspend(why));
}

/// Parks the current green thread until woken, or until `deadline` if given.
///
/// Panics if called outside a green thread or on the worker's own stack.
#[inline]
pub(crate) fn park(kind: ParkKind, deadline: Option<Instant>, reason: ParkReason) {
    with_core(|core| core.expect(internal_error!("park outside a green thread")).park(kind, deadline, reason));
}
