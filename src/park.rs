//! Parking: the one primitive that joins, sleeps, sync and I/O are built on.
//!
//! A wait list holds [`Waiter`]s. A waiter is inert (rule 2 of docs/design.md): for a green thread it
//! is its task reference plus the sequence number of the wait it was made for, never the
//! coroutine; for an OS thread it is the `std::thread::Thread` to unpark. Waking one from any
//! thread is safe at any time: a stale green waker is ignored, and a green thread is pushed to
//! its home worker only by whoever wins its `PARKED → ACTIVE` transition.
//!
//! Every wait built on this loops on its own condition: a park may end early (a stale OS-level
//! unpark, a cancellation, a `green::timeout` deadline) and the condition decides.
//!
//! # Deadlines
//!
//! [`crate::timeout`] gives the calling green thread (or OS thread) a deadline. [`wait_for`] honours
//! it for every caller: it arms its timer at the earlier of its own deadline and that one (while
//! the latter is still ahead, so a caller that ignores an expired deadline does not spin). A wait
//! that has a timeout error of its own (`recv_timeout`, an I/O read) takes
//! [`effective_deadline`] and returns that error when it passes; one that has none calls
//! [`cancellation_point`], which unwinds to the `green::timeout` once its deadline has passed.
//!
//! # Runtime unwinds and poisoning
//!
//! Cancellation and expired deadlines unwind with the runtime's own payloads. Green locks must
//! not be poisoned by those, only by panics, so [`runtime_unwind`] marks the unwinding green
//! thread (on its OS thread: a green thread never parks while unwinding, so nothing else runs
//! there until the unwind is caught) and [`is_runtime_unwind`] tells a guard's `Drop` which kind
//! of unwinding it is in.

use std::any::Any;
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use crate::runtime::context;
use crate::runtime::task::{Cancelled, Header, ParkKind, TaskRef};

/// Why a green thread parks: counted per worker (`Handle::metrics`) and shown in dumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParkReason {
    /// `JoinHandle::join`, or a scope waiting for its children.
    Join,
    /// `green::sleep`.
    Sleep,
    /// `green::park` / `park_timeout`.
    User,
    /// A channel, lock or other `green::sync` primitive.
    Sync,
    /// A socket or another fd.
    Io,
    /// A job on the blocking pool.
    Blocking,
    /// A Unix signal (`green::signal::Signals`).
    Signal,
    /// Anything else.
    Other,
}

impl ParkReason {
    /// Number of reasons.
    pub(crate) const COUNT: usize = 8;
    /// Every reason, in index order.
    pub(crate) const ALL: [ParkReason; ParkReason::COUNT] = [
        ParkReason::Join,
        ParkReason::Sleep,
        ParkReason::User,
        ParkReason::Sync,
        ParkReason::Io,
        ParkReason::Blocking,
        ParkReason::Signal,
        ParkReason::Other,
    ];

    /// A short name for reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ParkReason::Join => "join",
            ParkReason::Sleep => "sleep",
            ParkReason::User => "park",
            ParkReason::Sync => "sync",
            ParkReason::Io => "io",
            ParkReason::Blocking => "blocking",
            ParkReason::Signal => "signal",
            ParkReason::Other => "other",
        }
    }
}

/// The `green::sync` primitive a green thread parks on (its [`ParkReason::Sync`] wait), named
/// in dumps: a thousand consumers idle on a channel and one green thread stuck on a condition
/// variable no longer share the line `parked (sync)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Primitive {
    /// `Receiver::recv` and its timed forms: the channel is empty.
    ChannelRecv = 1,
    /// `Sender::send` on a bounded channel that is full (or a rendezvous one).
    ChannelSend,
    /// `green::sync::Select`, over several channels.
    Select,
    /// `sync::oneshot::Receiver::recv`.
    OneshotRecv,
    /// `Mutex::lock`.
    Mutex,
    /// `RwLock::read` or `write`.
    RwLock,
    /// `Condvar::wait` and its forms.
    Condvar,
    /// `Barrier::wait`.
    Barrier,
    /// `Semaphore::acquire`.
    Semaphore,
    /// `WaitGroup::wait`.
    WaitGroup,
}

impl Primitive {
    const ALL: [Primitive; 10] = [
        Primitive::ChannelRecv,
        Primitive::ChannelSend,
        Primitive::Select,
        Primitive::OneshotRecv,
        Primitive::Mutex,
        Primitive::RwLock,
        Primitive::Condvar,
        Primitive::Barrier,
        Primitive::Semaphore,
        Primitive::WaitGroup,
    ];

    /// The state a dump gives a green thread parked on it. Spelled out, not formatted: a
    /// million consumers idle on a channel would cost a million allocations per dump otherwise.
    pub(crate) fn state(self) -> &'static str {
        match self {
            Primitive::ChannelRecv => "parked (sync, channel recv)",
            Primitive::ChannelSend => "parked (sync, channel send)",
            Primitive::Select => "parked (sync, select)",
            // Parked means unwoken, and so the sender is alive and has not sent: a receive that
            // waits for good names the one handle that could end it.
            Primitive::OneshotRecv => "parked (sync, oneshot recv; its sender lives, unsent)",
            Primitive::Mutex => "parked (sync, mutex)",
            Primitive::RwLock => "parked (sync, rwlock)",
            Primitive::Condvar => "parked (sync, condvar)",
            Primitive::Barrier => "parked (sync, barrier)",
            Primitive::Semaphore => "parked (sync, semaphore)",
            Primitive::WaitGroup => "parked (sync, wait group)",
        }
    }
}

/// Something to wake when a wait is over.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    /// A green thread, in its wait number `seq`.
    Green { task: TaskRef, seq: u32 },
    /// A plain OS thread, blocked in `std::thread::park`.
    Os(std::thread::Thread),
}

impl Waiter {
    /// Wakes the waiter. Safe to call from any thread, any number of times.
    pub(crate) fn wake(self) {
        match self {
            Waiter::Green { task, seq } => {
                if task.header().wake(seq) {
                    schedule(task);
                }
            }
            Waiter::Os(thread) => thread.unpark(),
        }
    }
}

/// Pushes a green thread that the caller just made `ACTIVE` (from `PARKED`) to its home worker: straight
/// onto the run queue when the caller runs on that worker, else into its inbox.
pub(crate) fn schedule(task: TaskRef) {
    if !schedule_here(task.header()) {
        task.header().shared_arc().push_woken(task);
    }
}

/// [`schedule`] for a green thread the caller holds a reference to: counts another only when
/// the green thread goes to another worker's inbox.
#[inline]
pub(crate) fn schedule_ref(task: &TaskRef) {
    if !schedule_here(task.header()) {
        task.header().shared_arc().push_woken(task.clone());
    }
}

/// [`schedule`]'s local half: pushes the green thread onto the caller's run queue if the
/// caller runs on its home worker. False if it does not (nothing was pushed).
#[inline]
fn schedule_here(header: &Header) -> bool {
    let home = header.home();
    context::with_core(|core| match core {
        Some(core) if core.index == home && header.belongs_to(&core.shared) => {
            core.push_ready(header);
            true
        }
        _ => false,
    })
}

/// A waiter kept in a wait list *without* a counted reference to its green thread.
///
/// Sound only under a protocol that the list's owner keeps (docs/design.md, "Waiters that
/// count no reference"): the list lives under an internal lock; the waiting operation leaves
/// only after it has removed its entry under that lock, or after it has seen its outcome,
/// which the waker publishes (under the lock) after [`LockedWaiter::wake_locked`]. While the
/// entry is in the list, its green thread is therefore inside that operation and alive.
#[derive(Debug)]
pub(crate) enum LockedWaiter {
    /// A green thread, in its wait number `seq`.
    Green { header: NonNull<Header>, seq: u32 },
    /// A plain OS thread, blocked in `std::thread::park`.
    Os(std::thread::Thread),
}

impl LockedWaiter {
    /// Makes the wake transition now; the returned [`Woken`] must be finished once the lock is
    /// released.
    ///
    /// # Safety
    ///
    /// Called under the internal lock of the list that held this waiter, before the waiting
    /// operation can see its outcome (see the type's docs): its green thread is alive.
    #[inline]
    pub(crate) unsafe fn wake_locked(&self) -> Option<Woken> {
        match self {
            LockedWaiter::Green { header, seq } => {
                // SAFETY: alive, by the caller's contract.
                let won = unsafe { header.as_ref() }.wake(*seq);
                won.then_some(Woken::Green(*header))
            }
            LockedWaiter::Os(thread) => Some(Woken::Os(thread.clone())),
        }
    }
}

/// A wake decided under an internal lock, to be finished after it is released: a green thread
/// whose `PARKED → ACTIVE` transition the caller won (so it cannot run, or finish, until it is
/// pushed), an OS thread to unpark, or an ordinary waiter.
#[must_use = "a woken green thread that is not pushed never runs again"]
#[derive(Debug)]
pub(crate) enum Woken {
    Green(NonNull<Header>),
    Os(std::thread::Thread),
    Waiter(Waiter),
}

impl Woken {
    /// Pushes or unparks. Call after the internal lock is released.
    #[inline(always)]
    pub(crate) fn finish(self) {
        match self {
            // SAFETY: the caller won this green thread's `PARKED → ACTIVE` transition, and
            // only it pushes the green thread: until then it cannot run, so it is alive.
            Woken::Green(header) if schedule_here(unsafe { header.as_ref() }) => {}
            other => other.finish_elsewhere(),
        }
    }

    /// [`Woken::finish`] for all but a green thread pushed onto the caller's own run queue.
    #[inline(never)]
    fn finish_elsewhere(self) {
        match self {
            Woken::Green(header) => {
                // SAFETY: as in `finish`; the count taken here travels with the inbox entry.
                let task = unsafe { TaskRef::from_header(header) };
                task.header().shared_arc().push_woken(task);
            }
            Woken::Os(thread) => thread.unpark(),
            Woken::Waiter(waiter) => waiter.wake(),
        }
    }
}

/// One round of a wait, for `reason` (in metrics and dumps): makes a waiter for the caller (a
/// green thread or an OS thread) and hands it to `register`; if that returns true (the waiter
/// was stored), blocks until woken, until `deadline`, or spuriously. The caller loops on its
/// condition.
///
/// Green threads park (the worker runs others meanwhile); OS threads use `std::thread::park`.
/// This is not a cancellation point by itself; see [`cancellation_point`].
///
/// The caller's `green::timeout` deadline, while still ahead, also ends the wait (see the
/// module docs).
#[inline]
pub(crate) fn wait_for(reason: ParkReason, register: impl FnOnce(Waiter) -> bool, deadline: Option<Instant>) {
    wait_counted(reason, WaitingOn::Nothing, register, deadline);
}

/// [`wait_for`] with [`ParkReason::Sync`] on `primitive`, which dumps show while it waits.
#[inline]
pub(crate) fn wait_sync(primitive: Primitive, register: impl FnOnce(Waiter) -> bool, deadline: Option<Instant>) {
    wait_counted(ParkReason::Sync, WaitingOn::Sync(primitive), register, deadline);
}

/// [`wait_with`] with a [`Waiter`], which counts a reference to the green thread's task.
#[inline(always)]
fn wait_counted(reason: ParkReason, what: WaitingOn, register: impl FnOnce(Waiter) -> bool, deadline: Option<Instant>) {
    wait_with(
        reason,
        what,
        // SAFETY: `from_header` needs a live task: `wait_with` passes the running green
        // thread's header, and that green thread's slot holds a counted reference to its task
        // while it runs.
        |header, seq| Waiter::Green { task: unsafe { TaskRef::from_header(header) }, seq },
        Waiter::Os,
        register,
        deadline,
    );
}

/// [`wait_sync`] on a channel (`ChannelSend`), whose handle counts are `handles`: dumps name
/// the channel by their address and show the counts while the caller waits (see
/// [`ChannelHandles`] for why reading them then is sound).
#[inline]
pub(crate) fn wait_channel(
    primitive: Primitive,
    handles: &ChannelHandles,
    register: impl FnOnce(Waiter) -> bool,
    deadline: Option<Instant>,
) {
    wait_counted(ParkReason::Sync, WaitingOn::Channel(primitive, NonNull::from(handles)), register, deadline);
}

/// [`wait_channel`] with a [`LockedWaiter`], which counts no reference: for wait lists that
/// keep its protocol (a channel's receivers, `ChannelRecv`).
#[inline(always)]
pub(crate) fn wait_channel_locked(
    primitive: Primitive,
    handles: &ChannelHandles,
    register: impl FnOnce(LockedWaiter) -> bool,
    deadline: Option<Instant>,
) {
    wait_with(
        ParkReason::Sync,
        WaitingOn::Channel(primitive, NonNull::from(handles)),
        |header, seq| LockedWaiter::Green { header, seq },
        LockedWaiter::Os,
        register,
        deadline,
    );
}

/// `what` is recorded in the header's `waiting_on` word for the park and put back as it was
/// before this returns, or unwinds (`Nothing`: the word is left alone, for the caller's own
/// [`WaitEdge`]).
/// A channel's [`ChannelHandles`] in it are read by dumps for exactly that long, while the
/// caller's frame borrows the channel.
#[inline(always)]
fn wait_with<W>(
    reason: ParkReason,
    what: WaitingOn,
    green: impl FnOnce(NonNull<Header>, u32) -> W,
    os: impl FnOnce(std::thread::Thread) -> W,
    register: impl FnOnce(W) -> bool,
    deadline: Option<Instant>,
) {
    let deadline = match crate::deadline::current() {
        Some(d) if deadline.is_none_or(|own| d < own) && Instant::now() < d => Some(d),
        _ => deadline,
    };
    if let Some(header) =
        context::with_core(|core| core.filter(|c| c.in_green_thread()).and_then(|c| c.current_header()))
    {
        // SAFETY: the running green thread's header, alive while it runs.
        let me = unsafe { header.as_ref() };
        let seq = me.begin_wait();
        if register(green(header, seq)) {
            assert_can_park();
            // The same two relaxed stores whatever is recorded: a channel's address travels in
            // the word with its primitive.
            let _recorded = (what != WaitingOn::Nothing).then(|| Recorded::set(me, what));
            context::park(ParkKind::Internal, deadline, reason);
        } else {
            me.end_wait();
        }
    } else if context::with_core(|core| core.is_some()) {
        // On a worker thread but not in a green thread: inside `on_worker_stack`, or a
        // destructor the worker runs. Blocking here would block every green thread of the
        // worker, maybe on one of them: refuse.
        panic!(
            "green: a blocking-looking call {} cannot wait: it would block the whole worker. Move the wait out \
             of that closure or destructor",
            on_worker_stack_where!()
        );
    } else if register(os(std::thread::current())) {
        match deadline {
            Some(deadline) => std::thread::park_timeout(deadline.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
    }
}

/// A `waiting_on` word set for one park by [`wait_with`], put back as it was when dropped: as
/// the park returns, or if it ever unwound. A word left set would name, at the green thread's
/// next park that records nothing (a sleep), a channel that may be gone by then; a word
/// cleared instead of put back would wipe a [`WaitEdge`] the park was made under.
struct Recorded<'a> {
    me: &'a Header,
    before: u64,
}

impl<'a> Recorded<'a> {
    #[inline(always)]
    fn set(me: &'a Header, what: WaitingOn) -> Recorded<'a> {
        // Only this green thread writes its word: a load and a store, not a swap.
        let before = me.waiting_on.load(Ordering::Relaxed);
        me.waiting_on.store(what.encode(), Ordering::Relaxed);
        Recorded { me, before }
    }
}

impl Drop for Recorded<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.me.waiting_on.store(self.before, Ordering::Relaxed);
    }
}

/// Rule 3 of docs/design.md: a green thread never parks while unwinding. Waits check this first and
/// choose a non-blocking path; reaching a park anyway is a bug in the runtime.
#[inline]
fn assert_can_park() {
    if std::thread::panicking() {
        crate::abort_with(internal_error!("a green thread tried to park while unwinding"));
    }
}

/// If the running green thread has been cancelled, unwinds it with the runtime's own payload
/// (no panic hook runs); if the caller's `green::timeout` deadline has passed, unwinds to that
/// `green::timeout`. Does nothing while unwinding or on the worker's own stack; on an OS thread
/// only the deadline applies.
///
/// Waits that have a timeout error of their own call [`check_cancelled`] instead and return
/// that error at [`effective_deadline`].
pub(crate) fn cancellation_point() {
    check_cancelled();
    crate::deadline::raise_if_passed();
}

/// The cancellation half of [`cancellation_point`]: unwinds a cancelled green thread, and
/// nothing else. Under `panic = "abort"` nothing can unwind: a cancelled green thread goes on,
/// and its waits stop instead ([`cancelled_without_unwind`]).
#[inline]
pub(crate) fn check_cancelled() {
    if cfg!(panic = "abort") {
        return;
    }
    let cancelled = cancelled_here();
    if cancelled || RUNTIME_UNWIND.with(Cell::get) != 0 {
        check_cancelled_slow(cancelled);
    }
}

/// For a wait that found a green thread of the runtime's cancelled, which only the runtime's
/// shutdown does (a waiter of the blocking pool, a helper nobody else can reach): unwinds the
/// caller as cancelled if the runtime is shutting down. Its worker would cancel it at its next
/// look, but the caller may have been running since before the shutdown began, and not been
/// cancelled yet: it unwinds now as it would then, rather than report the helper's end as an
/// error. Does nothing while unwinding (rule 3), outside a green thread, or with no shutdown.
pub(crate) fn unwind_if_shutting_down() {
    check_cancelled();
    let shutting_down =
        context::with_core(|core| core.is_some_and(|c| c.in_green_thread() && c.shared.is_shutting_down()));
    if shutting_down && !std::thread::panicking() && !cfg!(panic = "abort") {
        runtime_unwind(Box::new(Cancelled));
    }
}

/// Rule 7 of docs/design.md under `panic = "abort"`, where nothing unwinds: a cancelled green
/// thread runs on, and every wait that is a cancellation point stops at once with the result
/// it gives a green thread that unwinds (rule 3: an error, a timeout, a join that says
/// unfinished, a sleep that returns), so that the code ends by its own error handling; one
/// that goes on regardless is left, with a warning, when its runtime's shutdown times out.
/// Always false where panics unwind.
#[inline(always)]
pub(crate) fn cancelled_without_unwind() -> bool {
    cfg!(panic = "abort") && cancelled_here()
}

/// A cancellation point must not wait here: its green thread unwinds (rule 3), or is cancelled
/// and cannot unwind ([`cancelled_without_unwind`]).
#[inline(always)]
pub(crate) fn must_not_wait() -> bool {
    std::thread::panicking() || cancelled_without_unwind()
}

/// True if the caller is a green thread that has been cancelled.
#[inline]
pub(crate) fn cancelled_here() -> bool {
    context::with_core(|core| core.is_some_and(|c| c.in_green_thread() && c.current_is_cancelled()))
}

#[cold]
fn check_cancelled_slow(cancelled: bool) {
    if std::thread::panicking() {
        return;
    }
    clear_runtime_unwind();
    if cancelled {
        runtime_unwind(Box::new(Cancelled));
    }
}

/// The deadline to park until for a wait that has just looked at the caller's
/// `green::timeout` deadline and unwinds to it once it has passed (its loop runs
/// [`cancellation_point`] before each park): the earlier of `own` and that deadline, kept even
/// when it passes between that look and the park. ([`wait_for`] leaves out a deadline that has
/// passed already, for the waits that ignore it, and such a wait would then park past it: to
/// its own end, or for good.) While unwinding the deadline cannot unwind the caller, and only
/// `own` counts.
#[inline]
pub(crate) fn honoured_deadline(own: Option<Instant>) -> Option<Instant> {
    if std::thread::panicking() { own } else { effective_deadline(own) }
}

/// The earlier of `deadline` and the caller's `green::timeout` deadline.
#[inline]
pub(crate) fn effective_deadline(deadline: Option<Instant>) -> Option<Instant> {
    match (deadline, crate::deadline::current()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

thread_local! {
    /// Who on this OS thread is unwinding with a runtime payload (`Cancelled`, a deadline):
    /// [`unwinder_key`] of the green thread, or 0 for none.
    static RUNTIME_UNWIND: Cell<u64> = const { Cell::new(0) };
}

/// A key for the code running here: its green thread's id, or `u64::MAX` on an OS thread.
fn unwinder_key() -> u64 {
    context::with_core(|core| core.and_then(|c| c.with_current(|h| h.map(|h| h.id.get())))).unwrap_or(u64::MAX)
}

/// Unwinds the caller with one of the runtime's own payloads (no panic hook runs), marking the
/// unwind as the runtime's so that green locks are not poisoned by it.
pub(crate) fn runtime_unwind(payload: Box<dyn Any + Send>) -> ! {
    #[cfg(panic = "abort")]
    crate::abort_with(&unwind_refused(&*payload));
    #[cfg(not(panic = "abort"))]
    {
        RUNTIME_UNWIND.with(|u| u.set(unwinder_key()));
        std::panic::resume_unwind(payload)
    }
}

/// Why the process aborts when a runtime unwind (`payload`) is due under `panic = "abort"`:
/// `resume_unwind` would abort it without a word there (no panic hook runs for it), so that
/// dropping a runtime, or the end of `green::run`, with a green thread parked looked like a
/// crash. Names the green thread, what was to unwind it, and what to do instead.
#[cfg_attr(not(panic = "abort"), allow(dead_code))]
pub(crate) fn unwind_refused(payload: &(dyn Any + Send)) -> String {
    let who = context::with_core(|core| core.and_then(|c| c.with_current(|h| h.map(|h| h.describe()))))
        .map_or_else(|| "code outside any green thread".to_owned(), |who| format!("green thread {who}"));
    let why = if payload.is::<Cancelled>() {
        "was cancelled (its runtime is shutting down: dropped, or the closure of green::run returned; or \
         JoinHandle::cancel)"
    } else if crate::deadline::is_unwind(payload) {
        "reached its green::timeout deadline in a call with no timeout error of its own"
    } else {
        "was to unwind with the runtime's own payload"
    };
    format!(
        "green: {who} {why}; that unwinds it, which a build with panic = \"abort\" cannot do: the process \
         aborts. With panic = \"abort\", end every green thread before its runtime shuts down (join it, \
         or have it stop on a flag or channel), and give green::timeout only calls with a timeout error of their \
         own; or build with panic = \"unwind\""
    )
}

/// True while the caller unwinds with a runtime payload (cancellation or an expired deadline)
/// rather than a panic. Green locks poison only on a panic.
///
/// Exact except in one case: code that catches a runtime unwind and then panics before it calls
/// into the runtime again is taken to be still in the runtime unwind.
pub(crate) fn is_runtime_unwind() -> bool {
    std::thread::panicking() && RUNTIME_UNWIND.with(Cell::get) == unwinder_key()
}

/// Forgets a runtime unwind that has been caught. Called wherever the runtime sees its caller
/// not unwinding.
pub(crate) fn clear_runtime_unwind() {
    if RUNTIME_UNWIND.with(Cell::get) != 0 && !std::thread::panicking() {
        RUNTIME_UNWIND.with(|u| u.set(0));
    }
}

/// The live handles of a channel (`green::sync::mpmc`): counted by the channel, and shown by
/// dumps for the green threads parked on it, whose `waiting_on` word records its address
/// ([`WaitingOn::Channel`]); the address names the channel there, so that waiters on one
/// channel are seen to share it.
///
/// # Why a dump may read it
///
/// The address is recorded by [`wait_with`] just before the green thread parks and replaced by
/// what was there before ([`Recorded`]) before the park returns, inside the channel operation (`recv`, `send`),
/// whose frame borrows the `Sender` or `Receiver` and so keeps the channel, and these counts in
/// it, alive. A dump reads the word only on the green thread's home worker, between two
/// resumptions, and only while the green thread is parked (its slot says so and it is neither
/// queued nor woken): a started green thread runs on that worker alone (rule 1 of
/// docs/design.md), so it cannot resume, leave the operation and drop its handle while the
/// worker dumps; even a wake that races in only queues it. So whenever the dump sees the
/// record, the counts are alive.
#[derive(Debug)]
pub(crate) struct ChannelHandles {
    /// Live `Sender`s. The last one to go disconnects.
    pub(crate) senders: AtomicUsize,
    /// Live `Receiver`s. The last one to go disconnects.
    pub(crate) receivers: AtomicUsize,
}

impl ChannelHandles {
    /// A new channel's: one sender, one receiver.
    pub(crate) fn new() -> ChannelHandles {
        ChannelHandles { senders: AtomicUsize::new(1), receivers: AtomicUsize::new(1) }
    }
}

/// What a green thread waits on, as its header's `waiting_on` word holds it for dumps while it
/// waits: the green thread it joins, the fd and direction of its I/O, or the `green::sync`
/// primitive, with the channel for a channel's (a lock's holder is recorded apart, in
/// `waits_for_lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitingOn {
    /// Nothing recorded (the word is 0).
    Nothing,
    /// The end of the green thread with this id.
    Join(u64),
    /// Readiness of an fd in a direction.
    Io(std::os::fd::RawFd, crate::reactor::Direction),
    /// A `green::sync` primitive.
    Sync(Primitive),
    /// A channel's primitive (`ChannelRecv`, `ChannelSend`) on the channel whose handles these
    /// are. Read through only as [`ChannelHandles`] says. An address that does not fit the word
    /// (none does on the 64-bit platforms the runtime runs on, whose user addresses have 57
    /// bits at most) is left out: the word says `Sync` then.
    Channel(Primitive, NonNull<ChannelHandles>),
}

/// Marks the word of a [`WaitingOn::Io`]: green thread ids count up from 1 and never reach it
/// (nor [`SYNC_WAIT`]).
const IO_WAIT: u64 = 1 << 63;
/// Marks the word of a [`WaitingOn::Sync`] or [`WaitingOn::Channel`], whose low byte is the
/// primitive; a channel's address, shifted right by [`CHANNEL_SHIFT`], takes the
/// [`CHANNEL_BITS`] bits above it (all 0 for `Sync`).
const SYNC_WAIT: u64 = 1 << 62;
/// The low bits of a [`ChannelHandles`] address, always 0 by its alignment.
const CHANNEL_SHIFT: u32 = std::mem::align_of::<ChannelHandles>().trailing_zeros();
/// Bits of a channel's shifted address in the word: those between the primitive's byte and
/// [`SYNC_WAIT`].
const CHANNEL_BITS: u32 = 62 - 8;

impl WaitingOn {
    #[inline(always)]
    fn encode(self) -> u64 {
        match self {
            WaitingOn::Nothing => 0,
            WaitingOn::Join(id) => id,
            WaitingOn::Io(fd, dir) => IO_WAIT | (dir as u64) << 32 | u64::from(fd as u32),
            WaitingOn::Sync(primitive) => SYNC_WAIT | primitive as u64,
            WaitingOn::Channel(primitive, handles) => {
                let shifted = (handles.as_ptr().expose_provenance() >> CHANNEL_SHIFT) as u64;
                let channel = if shifted >> CHANNEL_BITS == 0 { shifted << 8 } else { 0 };
                SYNC_WAIT | channel | primitive as u64
            }
        }
    }

    /// The `WaitingOn` a header's `waiting_on` word holds.
    pub(crate) fn decode(word: u64) -> WaitingOn {
        match word {
            0 => WaitingOn::Nothing,
            word if word & (IO_WAIT | SYNC_WAIT) == SYNC_WAIT => {
                let Some(primitive) = Primitive::ALL.into_iter().find(|p| *p as u64 == word & 0xff) else {
                    return WaitingOn::Nothing;
                };
                // `encode` made the address from a pointer, and the bits hold it whole.
                let addr = ((word & !SYNC_WAIT) >> 8) as usize;
                match NonNull::new(std::ptr::with_exposed_provenance_mut(addr << CHANNEL_SHIFT)) {
                    Some(handles) => WaitingOn::Channel(primitive, handles),
                    None => WaitingOn::Sync(primitive),
                }
            }
            word if word & IO_WAIT == 0 => WaitingOn::Join(word),
            word => {
                let dir = if word >> 32 & 1 == 0 {
                    crate::reactor::Direction::Read
                } else {
                    crate::reactor::Direction::Write
                };
                WaitingOn::Io(word as u32 as i32, dir)
            }
        }
    }
}

/// Records, for dumps and the deadlock report, what the running green thread waits for (the
/// green thread it joins or the lock it waits for, edges of the wait-for graph; the fd of its
/// I/O), until dropped. Does nothing on an OS thread or the worker's own stack.
///
/// Made by the waiting green thread in the frame that waits, and dropped there (on unwinding
/// too), so what it points at outlives it.
pub(crate) struct WaitEdge(Option<NonNull<Header>>);

impl WaitEdge {
    /// The running green thread joins `target`.
    pub(crate) fn join(target: &Header) -> WaitEdge {
        WaitEdge::record(|me| me.waiting_on.store(WaitingOn::Join(target.id.get()).encode(), Ordering::Relaxed))
    }

    /// The green thread running on `core` (the caller's worker, which the I/O park has in hand
    /// already) waits for `fd` to be ready in `dir`.
    pub(crate) fn io(
        core: &crate::runtime::worker::Core,
        fd: std::os::fd::RawFd,
        dir: crate::reactor::Direction,
    ) -> WaitEdge {
        WaitEdge::record_on(Some(core), |me| me.waiting_on.store(WaitingOn::Io(fd, dir).encode(), Ordering::Relaxed))
    }

    /// The running green thread waits for the lock whose holder cell is `holder`.
    pub(crate) fn lock(holder: &AtomicU64) -> WaitEdge {
        WaitEdge::record(|me| me.waits_for_lock.store(std::ptr::from_ref(holder).cast_mut(), Ordering::Relaxed))
    }

    fn record(set: impl FnOnce(&Header)) -> WaitEdge {
        context::with_core(|core| WaitEdge::record_on(core, set))
    }

    /// [`WaitEdge::record`] on `core`, this thread's worker if any.
    fn record_on(core: Option<&crate::runtime::worker::Core>, set: impl FnOnce(&Header)) -> WaitEdge {
        let me = core.filter(|c| c.in_green_thread()).and_then(|c| c.current_header());
        if let Some(me) = me {
            // SAFETY: `current_header` is the running green thread's, which its slot keeps
            // alive while it runs; we are that green thread.
            set(unsafe { me.as_ref() });
        }
        WaitEdge(me)
    }
}

impl Drop for WaitEdge {
    fn drop(&mut self) {
        if let Some(me) = self.0 {
            // SAFETY: made and dropped by the same green thread within one frame on its own
            // stack (see `record`), so its header is still alive.
            let me = unsafe { me.as_ref() };
            me.waiting_on.store(0, Ordering::Relaxed);
            me.waits_for_lock.store(std::ptr::null_mut(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::Direction;

    /// The message an abort build gives instead of a silent abort (checked here, where the
    /// suite's unwinding build can reach it): what happened to whom, and what to do.
    #[test]
    fn a_refused_unwind_says_what_and_what_to_do() {
        let text = unwind_refused(&Cancelled);
        assert!(text.contains("code outside any green thread was cancelled"), "{text}");
        assert!(text.contains("panic = \"abort\"") && text.contains("end every green thread"), "{text}");
    }

    #[test]
    fn every_waiting_on_comes_back_from_its_word() {
        let mut all = vec![WaitingOn::Nothing, WaitingOn::Join(1), WaitingOn::Join((1 << 62) - 1)];
        all.extend([(0, Direction::Read), (i32::MAX, Direction::Write)].map(|(fd, dir)| WaitingOn::Io(fd, dir)));
        all.extend(Primitive::ALL.map(WaitingOn::Sync));
        let handles = ChannelHandles::new();
        all.extend(
            [Primitive::ChannelRecv, Primitive::ChannelSend].map(|p| WaitingOn::Channel(p, NonNull::from(&handles))),
        );
        for what in all {
            assert_eq!(WaitingOn::decode(what.encode()), what);
        }
        // A word no encoding makes reads as nothing rather than as a wrong primitive.
        assert_eq!(WaitingOn::decode(SYNC_WAIT | 0xff), WaitingOn::Nothing);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_channel_address_too_high_for_the_word_is_left_out() {
        // Never dereferenced: only encoded.
        let high = NonNull::new(std::ptr::without_provenance_mut::<ChannelHandles>(1 << 60)).unwrap();
        let word = WaitingOn::Channel(Primitive::ChannelRecv, high).encode();
        assert_eq!(WaitingOn::decode(word), WaitingOn::Sync(Primitive::ChannelRecv));
    }
}
