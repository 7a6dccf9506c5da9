//! A green thread's shared header and its type-erased task cell.
//!
//! # The objects
//!
//! A spawn makes one allocation, a `Task<F, T>` from the runtime's per-thread cache of size
//! classes (`alloc.rs`), reference-counted by hand through [`TaskRef`]. It holds:
//!
//! - the [`Header`]: id, name, the scheduling state word, the cancellation flag, the join
//!   waiter. Anything may hold a reference to it ([`TaskRef`]): run queues, timers, wait lists,
//!   join handles. Holding one never keeps a coroutine alive: the coroutine lives in the home
//!   worker's slot table and nowhere else (rule 2 of docs/design.md).
//! - the stage: first the closure, then its outcome, then nothing. Only the home worker touches
//!   the closure; the outcome passes to the join handle through the `DONE` state (release /
//!   acquire).
//!
//! # The state word
//!
//! One `AtomicU64`: `seq << 32 | flags`. The low two bits are the lifecycle:
//!
//! - `ACTIVE`: running on its home worker, or in a run queue, or not started yet. Whoever holds
//!   its queue entry (or is running it) has the sole right to resume it. Running and queued
//!   are deliberately one state: a wake does the same thing to both (it sets a bit), so the
//!   worker needs no atomic operation to resume or requeue a green thread.
//! - `PARKED`: suspended, in no run queue; wakers (or the user's `unpark`) may schedule it.
//! - `DONE`: finished; the outcome is published. Terminal.
//!
//! Flag bits sit above the lifecycle:
//!
//! - `TOKEN`: the user-level park token of `green::park` (std's semantics: an `unpark` before
//!   `park` makes that `park` return at once).
//! - `NOTIFIED`: an internal waker for the current wait sequence fired while the green thread
//!   was not parked. Internal waits (join, sleep, sync, I/O) use this bit, never `TOKEN`, so a
//!   user's token is never eaten by a runtime wait, and a runtime wake never ends a user park.
//! - the park mask: set together with `PARKED`, which of `TOKEN` and `NOTIFIED` end this park
//!   (`TOKEN` for `green::park`, `NOTIFIED` for an internal wait, both for
//!   `green::park_timeout`, whose timer is an internal waker).
//! - `JOIN_WAITING`: the joiner stored a waiter in `join_waiter`; whoever makes the green
//!   thread `DONE` while this bit is set takes and wakes it.
//! - `HANDLE_GONE`: the join handle was dropped without joining. The outcome has two owners,
//!   the completion and the handle; of the two atomic operations that set `DONE` and
//!   `HANDLE_GONE`, the second finds the other bit set and its caller drops the outcome nobody
//!   took. A handle that joins saw `DONE` first, so it owns the outcome outright and needs no
//!   atomic operation to give it up.
//!
//! `seq` numbers the green thread's internal waits. A waker remembers the sequence it was made
//! for, and a wake whose sequence is stale is ignored, so a waker left behind in some wait list
//! can never cut a later wait short. The sequence moves on as a wait ends, in the same atomic
//! operation: the wake that ends a park, the commit that finds the park already ended, or
//! `end_wait` for a wait that gave out wakers and did not park. It never moves while its green
//! thread runs, so starting a wait costs no atomic operation.
//!
//! # Transitions
//!
//! | from | event | to | who |
//! |---|---|---|---|
//! | `ACTIVE` | park committed, an ending bit set | `ACTIVE`, bit cleared, `seq` + 1, requeued | home worker, after the switch |
//! | `ACTIVE` | park committed, no ending bit set | `PARKED` | home worker, after the switch |
//! | `ACTIVE` | wake or unpark | `ACTIVE`, bit set | any thread |
//! | `PARKED` | wake or unpark that ends this park | `ACTIVE`, `seq` + 1; the waker pushes it | any thread |
//! | `PARKED` | other wake or unpark | `PARKED`, bit set | any thread |
//! | `ACTIVE` | body returned | `DONE` | home worker |
//!
//! A `PARKED → ACTIVE` transition is won by exactly one CAS, and its winner is the only one
//! who pushes the green thread to its home worker: a green thread is never queued twice and
//! never resumed while it runs.

use std::alloc::Layout;
use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::panic::{self, AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::local::Locals;
use crate::park::Waiter;
use crate::runtime::shared::Shared;
use crate::scope::ScopeData;
use crate::thread::JoinError;

const LIFECYCLE: u64 = 0b11;
const ACTIVE: u64 = 0;
const PARKED: u64 = 1;
const DONE: u64 = 2;
const TOKEN: u64 = 1 << 3;
const NOTIFIED: u64 = 1 << 4;
const JOIN_WAITING: u64 = 1 << 7;
const HANDLE_GONE: u64 = 1 << 8;
/// While `PARKED`: the bits (`TOKEN`, `NOTIFIED`) that end this park, shifted up by this much.
const PARK_SHIFT: u32 = 2;
const PARK_MASK: u64 = (TOKEN | NOTIFIED) << PARK_SHIFT;
/// The wait sequence: the upper 32 bits of the state word. It wraps after 2^32 waits of one
/// green thread, so a waker left behind in some list that long could match a later wait and
/// end it early; every wait loops on its own condition, so such a wake is only spurious.
const SEQ_SHIFT: u32 = 32;
const SEQ_ONE: u64 = 1 << SEQ_SHIFT;

/// Sentinel for "no home worker yet".
pub(crate) const NO_HOME: usize = usize::MAX;

/// What a parked green thread waits for, as seen by the park commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParkKind {
    /// `green::park`: ended by `unpark` (the `TOKEN` bit).
    User,
    /// `green::park_timeout`: ended by `unpark` or by its timer.
    UserTimed,
    /// A runtime wait: ended by a waker of the current sequence (the `NOTIFIED` bit).
    Internal,
}

impl ParkKind {
    /// The bits that end this kind of park.
    fn bits(self) -> u64 {
        match self {
            ParkKind::User => TOKEN,
            ParkKind::UserTimed => TOKEN | NOTIFIED,
            ParkKind::Internal => NOTIFIED,
        }
    }
}

/// The shared part of a green thread.
#[repr(C)]
pub(crate) struct Header {
    /// References to this task: `TaskRef`s and join handles. The last one frees the task.
    refs: AtomicUsize,
    /// The operations of the task's concrete type.
    vtable: &'static Vtable,
    /// Unique within the process, never 0.
    pub(crate) id: NonZeroU64,
    /// The name given at spawn, if any.
    pub(crate) name: Option<Arc<str>>,
    /// Where `spawn` was called.
    pub(crate) spawned_at: &'static Location<'static>,
    /// Usable stack size requested at spawn (0: the runtime's default), saturated at
    /// `u32::MAX` (which no size class holds: the start fails with the allocator's error).
    pub(crate) stack_size: u32,
    /// Its budget in ticks (0: the runtime's).
    pub(crate) budget: u32,
    /// The state word described in the module docs.
    state: AtomicU64,
    /// Index of the home worker, `NO_HOME` until first resumed (or pinned at spawn). Written
    /// once, before the first resume, by the worker that starts it.
    home: AtomicUsize,
    /// Index in the home worker's slot table. Read and written only by the home worker.
    slot: AtomicUsize,
    /// The runtime this green thread belongs to.
    ///
    /// Raw so that spawning and waking do not touch a shared reference count. Valid while the
    /// green thread is not `DONE`: a runtime's `Shared` outlives every green thread that has not
    /// finished (shutdown waits for them, and leaks `Shared` together with any stack it has to
    /// leak). Wakers use it only after winning a `PARKED → ACTIVE` transition, which proves
    /// the green thread was not `DONE`.
    shared: *const Shared,
    /// Set by `cancel`; read at cancellation points.
    cancelled: AtomicBool,
    /// It called `spawn_local`, or `spawn_local` made it: `!Send` values (an `Rc`, a lock
    /// guard) may pass between it and other green threads of its worker, so a green lock whose
    /// holder cell holds its id may be held through a guard another one has now
    /// (`sync::wait::relock_id`), and a wait cycle through such a lock may break (dumps and the
    /// monitor's looks read it on its home worker while it is parked). Set before it runs (a
    /// child) or by itself (a parent).
    pub(crate) shares_locally: AtomicBool,
    /// Its time slice in µs (0: the runtime's). Beside `cancelled`, in what would be padding.
    pub(crate) time_slice_us: u32,
    /// Who waits in `join`, if anyone. Written only by the joiner while `JOIN_WAITING` is clear
    /// and the green thread is not `DONE`; read only by whoever sets `DONE` while
    /// `JOIN_WAITING` is set (see `register_joiner` and `set_done`).
    join_waiter: UnsafeCell<Option<Waiter>>,
    /// The scope this green thread was spawned in, if any.
    pub(crate) scope: Option<Arc<ScopeData>>,
    /// What it waits on right now, for dumps, as `park::WaitingOn` encodes it (0: nothing): the
    /// green thread it joins, an edge of the wait-for graph that dumps show and the deadlock
    /// report follows; the fd and direction of its I/O; or the `green::sync` primitive it parks
    /// on, with the channel's address for a channel's (read through by dumps only while it is
    /// parked there: `park::ChannelHandles`). Written by this green thread only.
    pub(crate) waiting_on: AtomicU64,
    /// While it waits for a green lock: that lock's holder cell (a green thread id, 0 or
    /// `sync::wait::OS_THREAD`), the other kind of wait-for edge. Written by this green thread
    /// only; read by dumps on its home worker, and only while it is parked in that wait (its
    /// frame borrows the lock then, so the cell is alive).
    pub(crate) waits_for_lock: AtomicPtr<AtomicU64>,
    /// Guards of green `Mutex`es and `RwLock`s it holds (`sync::wait::take_held`, `release_held`). Written by
    /// this green thread only (a plain load and store); read by its home worker at shutdown,
    /// which cancels holders first: their unwinding lets go of what the others' destructors
    /// may need, and a green thread cannot wait for a lock while it unwinds (rule 3).
    pub(crate) locks_held: AtomicU32,
    /// Its green-thread-local values. Touched only by the green thread itself, on its worker,
    /// and emptied when its body ends there, so values that are not `Send` never leave it.
    pub(crate) locals: Locals,
}

// SAFETY: `shared` is only dereferenced under the validity argument on the field (the pointee is
// `Sync`); `locals` is touched by one thread only, as documented on it, and is empty whenever
// another thread could drop the header; `join_waiter` is handed between the joiner and the
// completer through the `JOIN_WAITING` bit, as documented on it; every other field is
// `Send + Sync` on its own.
unsafe impl Send for Header {}
// SAFETY: as for `Send`.
unsafe impl Sync for Header {}

/// Spawn-time description of a green thread.
pub(crate) struct Spec {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) stack_size: usize,
    pub(crate) budget: u32,
    pub(crate) time_slice_us: u32,
    pub(crate) spawned_at: &'static Location<'static>,
    pub(crate) home: usize,
    pub(crate) scope: Option<Arc<ScopeData>>,
}

/// Ids are handed to each thread in blocks of this many, so that spawning on several workers
/// does not contend on one counter.
const ID_BLOCK: u64 = 1024;

pub(crate) fn next_id() -> NonZeroU64 {
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        /// The next id of this thread's block, and the end of the block.
        static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
            end = next + ID_BLOCK;
        }
        ids.set((next + 1, end));
        NonZeroU64::new(next).expect("green: the green thread ids ran out (2^64 - 1 of them)")
    })
}

impl Header {
    #[inline(always)]
    fn new(spec: Spec, shared: &Arc<Shared>, vtable: &'static Vtable) -> Header {
        Header {
            // One reference for the queue, one for the join handle (`Task::allocate`).
            refs: AtomicUsize::new(2),
            vtable,
            id: next_id(),
            name: spec.name,
            spawned_at: spec.spawned_at,
            stack_size: u32::try_from(spec.stack_size).unwrap_or(u32::MAX),
            budget: spec.budget,
            time_slice_us: spec.time_slice_us,
            state: AtomicU64::new(ACTIVE),
            home: AtomicUsize::new(spec.home),
            slot: AtomicUsize::new(usize::MAX),
            shared: Arc::as_ptr(shared),
            cancelled: AtomicBool::new(false),
            shares_locally: AtomicBool::new(false),
            join_waiter: UnsafeCell::new(None),
            scope: spec.scope,
            waiting_on: AtomicU64::new(0),
            waits_for_lock: AtomicPtr::new(std::ptr::null_mut()),
            locks_held: AtomicU32::new(0),
            locals: Locals::new(),
        }
    }

    /// A counted reference to the runtime, for a waker that hands the green thread over and
    /// then still touches the runtime (the green thread may finish, and the runtime be freed,
    /// the moment it is in the inbox).
    ///
    /// Only for a green thread that is known not to be `DONE`, as for [`Header::shared`].
    pub(crate) fn shared_arc(&self) -> Arc<Shared> {
        // SAFETY: `shared` came from `Arc::as_ptr` of an `Arc<Shared>` that is still alive (the
        // green thread is not DONE, see the field docs), so taking one more count is valid.
        unsafe {
            Arc::increment_strong_count(self.shared);
            Arc::from_raw(self.shared)
        }
    }

    /// True if this green thread belongs to the runtime `shared`. Compares addresses only.
    pub(crate) fn belongs_to(&self, shared: &Shared) -> bool {
        std::ptr::eq(self.shared, shared)
    }

    pub(crate) fn home(&self) -> usize {
        self.home.load(Ordering::Relaxed)
    }

    pub(crate) fn set_home(&self, worker: usize) {
        self.home.store(worker, Ordering::Relaxed);
    }

    pub(crate) fn slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed)
    }

    pub(crate) fn set_slot(&self, slot: usize) {
        self.slot.store(slot, Ordering::Relaxed);
    }

    // ---- cancellation -------------------------------------------------------------------

    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Marks the green thread cancelled and wakes whatever wait it is in. Returns the green
    /// thread when the caller must schedule it.
    #[must_use]
    pub(crate) fn cancel(&self) -> bool {
        self.cancelled.store(true, Ordering::Release);
        self.transition_wake(None, TOKEN | NOTIFIED)
    }

    // ---- the state word -----------------------------------------------------------------

    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) & LIFECYCLE == DONE
    }

    /// The sequence number of the wait it is parked in, while parked: not yet woken (a green
    /// thread woken into its home's inbox is `ACTIVE` already, though its worker has not seen
    /// it). One load of the state word, so a wake between two loads cannot pass the number of
    /// the next wait off as this one's.
    pub(crate) fn parked_seq(&self) -> Option<u32> {
        let s = self.state.load(Ordering::Acquire);
        (s & LIFECYCLE == PARKED).then_some((s >> SEQ_SHIFT) as u32)
    }

    /// The sequence number of the current internal wait.
    #[inline]
    pub(crate) fn seq(&self) -> u32 {
        (self.state.load(Ordering::Relaxed) >> SEQ_SHIFT) as u32
    }

    /// Called by the running green thread before it registers wakers for a new internal wait:
    /// the sequence number to give them. No atomic operation: the sequence moves on when a
    /// wait ends (the transition out of it, or [`Header::end_wait`]), never while its green
    /// thread runs, so the running green thread reads a settled value.
    #[inline]
    pub(crate) fn begin_wait(&self) -> u32 {
        self.seq()
    }

    /// Called by the running green thread when it gave out wakers for a wait but did not
    /// park: ends that wait, so its wakers are stale, and drops a notification they made.
    pub(crate) fn end_wait(&self) {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let next = (s & !NOTIFIED).wrapping_add(SEQ_ONE);
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
    }

    /// Consumes the user park token if it is set. Called by the running green thread.
    pub(crate) fn take_token(&self) -> bool {
        self.state.fetch_and(!TOKEN, Ordering::AcqRel) & TOKEN != 0
    }

    /// Wake for an internal wait made at `seq`. Returns true when the caller won the
    /// `PARKED → ACTIVE` transition and must push the green thread to its home worker.
    #[must_use]
    #[inline]
    pub(crate) fn wake(&self, seq: u32) -> bool {
        self.transition_wake(Some(seq), NOTIFIED)
    }

    /// The user's `unpark`. Returns true when the caller must schedule the green thread.
    #[must_use]
    pub(crate) fn unpark(&self) -> bool {
        self.transition_wake(None, TOKEN)
    }

    #[inline]
    fn transition_wake(&self, seq: Option<u32>, bits: u64) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if seq.is_some_and(|seq| (s >> SEQ_SHIFT) as u32 != seq) {
                return false; // A stale waker: that wait is over.
            }
            // Does this wake end the park in progress? Cancellation sends both bits.
            let ends_park = ((s & PARK_MASK) >> PARK_SHIFT) & bits != 0;
            let next = match s & LIFECYCLE {
                DONE => return false,
                // The park, and so the wait, ends: its other wakers become stale.
                PARKED if ends_park => ((s & !(LIFECYCLE | PARK_MASK | NOTIFIED)) | ACTIVE).wrapping_add(SEQ_ONE),
                _ if s & bits == bits => return false, // Already notified.
                _ => s | bits,
            };
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return next & LIFECYCLE == ACTIVE && s & LIFECYCLE == PARKED,
                Err(actual) => s = actual,
            }
        }
    }

    /// Home worker, after the green thread suspended to park: commits the park, or, if the
    /// wake it waits for already came, consumes it and reports that the green thread must run
    /// again (returns false). Rule 4 of docs/design.md.
    #[inline]
    pub(crate) fn commit_park(&self, kind: ParkKind) -> bool {
        let bits = kind.bits();
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            debug_assert_eq!(s & LIFECYCLE, ACTIVE);
            let (next, parked) = if s & bits != 0 {
                // The wait ends without parking: its other wakers become stale.
                (((s & !(bits | LIFECYCLE)) | ACTIVE).wrapping_add(SEQ_ONE), false)
            } else {
                ((s & !LIFECYCLE) | PARKED | (bits << PARK_SHIFT), true)
            };
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return parked,
                Err(actual) => s = actual,
            }
        }
    }

    /// Home worker: the body returned (or the unstarted closure was dropped). Publishes the
    /// outcome and wakes the joiner. Returns true if the join handle is already gone: the
    /// caller then owns the outcome and must drop it (`thread::outcome_released`).
    #[must_use]
    pub(crate) fn set_done(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let next = (s & !(LIFECYCLE | TOKEN | NOTIFIED | PARK_MASK | JOIN_WAITING)) | DONE;
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => s = actual,
            }
        }
        if s & JOIN_WAITING != 0 {
            // SAFETY: we saw JOIN_WAITING as we set DONE: the joiner finished writing the waiter
            // before it set the bit (release; our CAS acquires), and never writes it once DONE.
            let waiter = unsafe { (*self.join_waiter.get()).take() };
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        }
        s & HANDLE_GONE != 0
    }

    /// The join handle is dropped without joining. Returns true if the green thread is
    /// already `DONE`: the caller then owns the outcome and must drop it.
    #[must_use]
    pub(crate) fn release_handle(&self) -> bool {
        self.state.fetch_or(HANDLE_GONE, Ordering::AcqRel) & LIFECYCLE == DONE
    }

    /// The joiner: registers `waiter` to be woken when this green thread finishes. Returns
    /// false (and registers nothing) if it already has. Only the holder of the join handle
    /// calls this, so there is one joiner at a time.
    pub(crate) fn register_joiner(&self, waiter: Waiter) -> bool {
        // 1. Take back the waiter cell: clear JOIN_WAITING (left over from an earlier round of
        //    the caller's wait loop), unless the green thread is done.
        let mut s = self.state.load(Ordering::Acquire);
        while s & JOIN_WAITING != 0 {
            if s & LIFECYCLE == DONE {
                return false;
            }
            match self.state.compare_exchange_weak(s, s & !JOIN_WAITING, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => s &= !JOIN_WAITING,
                Err(actual) => s = actual,
            }
        }
        if s & LIFECYCLE == DONE {
            return false;
        }
        // 2. Store the waiter: with the bit clear, `set_done` does not read the cell.
        // SAFETY: JOIN_WAITING is clear, so `set_done` does not read the cell; and we are the
        // only joiner: only the join handle's holder calls this (`wait_done` and
        // `join_uncancellable`, reached from `join(self)`, which consumes the handle, and
        // `wait_timeout(&mut self)`, which borrows it exclusively).
        unsafe { *self.join_waiter.get() = Some(waiter) };
        // 3. Publish it, unless the green thread finished meanwhile (then it never looked).
        loop {
            if s & LIFECYCLE == DONE {
                // SAFETY: DONE was set without JOIN_WAITING, so the completer did not touch it.
                drop(unsafe { (*self.join_waiter.get()).take() });
                return false;
            }
            match self.state.compare_exchange_weak(s, s | JOIN_WAITING, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
    }

    /// A short human description: `7` or `7 "name"`.
    pub(crate) fn describe(&self) -> String {
        match &self.name {
            Some(name) => format!("{} \"{}\"", self.id, name),
            None => format!("{}", self.id),
        }
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("spawned_at", &self.spawned_at)
            .field("state", &format_args!("{:#x}", self.state.load(Ordering::Relaxed)))
            .finish_non_exhaustive()
    }
}

/// The operations of one concrete task type, `Task<F, T>`, behind a type-erased pointer.
struct Vtable {
    /// Runs the closure to completion; see [`run_raw`].
    run: unsafe fn(NonNull<Header>),
    /// Drops the unstarted closure; see [`TaskRef::abandon`].
    abandon: unsafe fn(NonNull<Header>, JoinError),
    /// Drops the outcome nobody took; see [`TaskRef::drop_output`].
    drop_output: unsafe fn(NonNull<Header>) -> Option<JoinError>,
    /// Moves the outcome into `*mut Option<Result<T, JoinError>>`; see [`JoinRef::take_output`].
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops the task in place and frees its memory.
    dealloc: unsafe fn(NonNull<Header>),
}

/// A counted reference to a green thread's task, type-erased.
///
/// Like an `Arc`, with two differences: the count lives in the [`Header`], and the memory comes
/// from the per-thread cache of `alloc.rs` (a spawn is dominated by allocation otherwise).
pub(crate) struct TaskRef {
    ptr: NonNull<Header>,
}

// SAFETY: a `TaskRef` gives shared access to the `Header` (which is `Sync`) and, through the
// vtable, to the stage under the protocol documented on `Task::stage`; the count is atomic.
unsafe impl Send for TaskRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// The shared header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the task is alive while this reference counts it.
        unsafe { self.ptr.as_ref() }
    }

    /// The address of the header, for a reference that does not count (see `from_header`).
    pub(crate) fn as_ptr(&self) -> NonNull<Header> {
        self.ptr
    }

    /// A new counted reference to the task of `header`.
    ///
    /// # Safety
    ///
    /// `header` belongs to a live task (some other counted reference exists for the duration
    /// of the call).
    pub(crate) unsafe fn from_header(header: NonNull<Header>) -> TaskRef {
        // SAFETY: per the contract the task is alive.
        let old = unsafe { header.as_ref() }.refs.fetch_add(1, Ordering::Relaxed);
        // As `Arc`: references leaked with `mem::forget` (of a `GreenThread`, say) must not
        // wrap the count, which would free a live task. Unreachable on 64-bit targets.
        if old > isize::MAX as usize {
            std::process::abort();
        }
        TaskRef { ptr: header }
    }

    /// Drops the closure of a green thread that never started; `error` becomes its outcome.
    ///
    /// # Safety
    ///
    /// As for `run`: at most once, instead of `run`.
    pub(crate) unsafe fn abandon(&self, error: JoinError) {
        // SAFETY: forwarded.
        unsafe { (self.header().vtable.abandon)(self.ptr, error) }
    }

    /// Drops the outcome if no one took it. Returns the error if that outcome was a panic
    /// nobody saw (scopes report those), with the payload dropped.
    ///
    /// # Safety
    ///
    /// Called only by whoever released the last output share.
    pub(crate) unsafe fn drop_output(&self) -> Option<JoinError> {
        // SAFETY: forwarded.
        unsafe { (self.header().vtable.drop_output)(self.ptr) }
    }
}

/// Runs the closure of the task of `header` to completion on the current (green) stack,
/// catching its panic or cancellation into the outcome.
///
/// # Safety
///
/// Called at most once, by the home worker, on the green thread's own stack, not together with
/// `abandon`, and the task is alive for the whole call.
pub(crate) unsafe fn run_raw(header: NonNull<Header>) {
    // SAFETY: forwarded; the vtable is the task's own.
    unsafe { (header.as_ref().vtable.run)(header) }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        // SAFETY: `self` counts the task, so it is alive.
        unsafe { TaskRef::from_header(self.ptr) }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Synchronize with every other reference's release before freeing (as `Arc` does).
        std::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: this was the last reference; the vtable frees the task it belongs to.
        unsafe { (self.header().vtable.dealloc)(self.ptr) }
    }
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.header().fmt(f)
    }
}

/// A counted reference that knows the task's output type: what a join handle holds.
pub(crate) struct JoinRef<T> {
    task: TaskRef,
    _output: PhantomData<fn() -> T>,
}

impl<T> JoinRef<T> {
    pub(crate) fn task(&self) -> &TaskRef {
        &self.task
    }

    /// Takes the outcome.
    ///
    /// # Safety
    ///
    /// Only after `is_done()` was observed, at most once, by the holder of the join handle's
    /// output share.
    pub(crate) unsafe fn take_output(&self) -> Result<T, JoinError> {
        let mut out: Option<Result<T, JoinError>> = None;
        // SAFETY: this reference was made by `Task::<F, T>::allocate` for this very `T`, so the
        // vtable writes a `Result<T, JoinError>` into `out`; the rest is the caller's contract.
        unsafe { (self.task.header().vtable.take_output)(self.task.ptr, (&raw mut out).cast()) };
        out.expect(internal_error!("a green thread's outcome was taken twice, or before it finished"))
    }
}

enum Stage<F, T> {
    Pending(F),
    Finished(Result<T, JoinError>),
    Consumed,
}

/// The single allocation behind a green thread. `repr(C)` with the header first, so a pointer
/// to the task is a pointer to its header and back.
#[repr(C)]
pub(crate) struct Task<F, T> {
    header: Header,
    /// Who may touch it: the home worker until `DONE`, then the holder of the last output
    /// share (see `JoinRef::take_output` and `TaskRef::drop_output`).
    ///
    /// `F` is touched only by the worker that starts the task (`spawn` requires `F: Send` to
    /// move it there; `spawn_local` keeps the task on the spawning worker, so a `!Send` closure
    /// never changes threads); `T: Send` moves to whoever joins.
    stage: UnsafeCell<Stage<F, T>>,
}

/// Payload used to unwind a cancelled green thread (rule 7 of docs/design.md). Raised with
/// `resume_unwind`, so no panic hook runs.
pub(crate) struct Cancelled;

/// Turns a caught unwind payload into a join error.
pub(crate) fn join_error_from(payload: Box<dyn Any + Send>, header: &Header) -> JoinError {
    if payload.is::<Cancelled>() { JoinError::cancelled(header) } else { JoinError::panicked(header, payload) }
}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T,
    T: Send,
{
    const VTABLE: Vtable = Vtable {
        run: Self::run,
        abandon: Self::abandon,
        drop_output: Self::drop_output,
        take_output: Self::take_output,
        dealloc: Self::dealloc,
    };

    /// Allocates a task holding `f`. Returns two references: one for a queue, one for the join
    /// handle.
    ///
    /// # Safety
    ///
    /// Whatever `f` and its result borrow must stay valid until the task has finished (or
    /// been abandoned): the references returned are `'static` whatever `F` and `T` are.
    pub(crate) unsafe fn allocate(f: F, spec: Spec, shared: &Arc<Shared>) -> (TaskRef, JoinRef<T>) {
        let layout = Layout::new::<Self>();
        let ptr = super::alloc::allocate(layout).cast::<Self>();
        // Written field by field, straight into the block (a whole `Task` built on the stack
        // first would be copied).
        // SAFETY: `ptr` is a fresh block with the layout of `Self`; both fields are written
        // before anything reads the task.
        unsafe {
            (&raw mut (*ptr.as_ptr()).header).write(Header::new(spec, shared, &Self::VTABLE));
            (&raw mut (*ptr.as_ptr()).stage).write(UnsafeCell::new(Stage::Pending(f)));
        }
        let header = ptr.cast::<Header>();
        (TaskRef { ptr: header }, JoinRef { task: TaskRef { ptr: header }, _output: PhantomData })
    }

    /// # Safety
    ///
    /// `header` is the header of a live `Task<F, T>`.
    unsafe fn stage<'a>(header: NonNull<Header>) -> &'a UnsafeCell<Stage<F, T>> {
        // SAFETY: `repr(C)` puts the header at offset 0, so this is the task's address.
        unsafe { &(*header.cast::<Self>().as_ptr()).stage }
    }

    unsafe fn run(header: NonNull<Header>) {
        // SAFETY: the caller is the home worker running this task once (`run_raw`); no one
        // else touches `stage` before DONE.
        let stage = unsafe { &mut *Self::stage(header).get() };
        let Stage::Pending(f) = std::mem::replace(stage, Stage::Consumed) else {
            panic!(internal_error!("a green thread was started twice"));
        };
        let outcome = panic::catch_unwind(AssertUnwindSafe(f));
        // SAFETY: the task is alive for the call.
        let outcome = outcome.map_err(|payload| join_error_from(payload, unsafe { header.as_ref() }));
        // SAFETY: the header is alive for the call, and this is its green thread, ending.
        unsafe { crate::local::destroy_current(header.as_ref()) };
        // SAFETY: as above; the state is still ACTIVE.
        unsafe { *Self::stage(header).get() = Stage::Finished(outcome) };
    }

    unsafe fn abandon(header: NonNull<Header>, error: JoinError) {
        // SAFETY: the caller holds the task's only queue entry (it was never queued, or was
        // popped from a queue by exactly one worker) and it never ran, so no one else touches
        // `stage`; the join handle reads it only after DONE, which comes after this.
        let stage = unsafe { &mut *Self::stage(header).get() };
        let old = std::mem::replace(stage, Stage::Finished(Err(error)));
        // Dropping a user closure may panic; the runtime must carry on.
        if panic::catch_unwind(AssertUnwindSafe(move || drop(old))).is_err() {
            // SAFETY: the task is alive for the call.
            let header = unsafe { header.as_ref() };
            log::warn!(
                "green: dropping the closure of unstarted green thread {} panicked (its message is above); the \
                 panic was caught. A value it captured has a destructor that panics",
                header.describe()
            );
        }
    }

    unsafe fn drop_output(header: NonNull<Header>) -> Option<JoinError> {
        // SAFETY: the caller released the last output share, so no one else can reach `stage`.
        let old = std::mem::replace(unsafe { &mut *Self::stage(header).get() }, Stage::Consumed);
        let unseen_panic = match old {
            Stage::Finished(Err(e)) if e.is_panic() => Some(e),
            old => {
                if panic::catch_unwind(AssertUnwindSafe(move || drop(old))).is_err() {
                    // SAFETY: the task is alive for the call.
                    let header = unsafe { header.as_ref() };
                    log::warn!(
                        "green: dropping the result of green thread {} panicked (its message is above); the \
                         panic was caught. The value it returned has a destructor that panics",
                        header.describe()
                    );
                }
                None
            }
        };
        unseen_panic.map(JoinError::without_payload)
    }

    unsafe fn take_output(header: NonNull<Header>, out: *mut ()) {
        // SAFETY: DONE was observed with acquire ordering, so the home worker's write is
        // visible and it will not touch `stage` again; the join handle takes it once.
        match std::mem::replace(unsafe { &mut *Self::stage(header).get() }, Stage::Consumed) {
            // SAFETY: `out` points at an `Option<Result<T, JoinError>>` (`JoinRef::take_output`).
            Stage::Finished(outcome) => unsafe { *out.cast::<Option<Result<T, JoinError>>>() = Some(outcome) },
            _ => panic!(internal_error!("a green thread's outcome was taken twice, or before it finished")),
        }
    }

    unsafe fn dealloc(header: NonNull<Header>) {
        let task = header.cast::<Self>();
        // SAFETY: the last reference is gone: drop the task in place, then free its block, which
        // `allocate` got for this layout.
        unsafe {
            std::ptr::drop_in_place(task.as_ptr());
            super::alloc::deallocate(task.cast(), Layout::new::<Self>());
        }
    }
}
