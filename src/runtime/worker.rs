//! The worker: one OS thread that runs green threads, and the only code that resumes or drops
//! their coroutines (rule 2 of docs/design.md).
//!
//! # Where work comes from
//!
//! A worker looks for something to do in this order:
//!
//! 1. its run queue: started green threads homed here that are ready (yielded, or woken by a
//!    green thread on this worker);
//! 2. its inbox: started green threads homed here that another thread woke, and its timers;
//! 3. unstarted green threads: its `spawn_local` queue, those pinned to it, its own deque, the
//!    runtime's injector, then a batch stolen from a random peer.
//!
//! Every [`MAINTENANCE_INTERVAL`] turns it also drains the inbox and timers and starts one
//! unstarted green thread even though its run queue is not empty, so that two green threads
//! yielding to each other forever cannot starve anything else queued here.
//!
//! Started green threads are never stolen (rule 1): only the unstarted ones in the deques
//! are, since nothing of them lives on a stack yet.
//!
//! # Idle
//!
//! With nothing to do the worker spins for [`SPIN_TIME`], then sleeps in its poller until the
//! next timer. Whoever gives it work while it sleeps notifies the poller (`shared.rs`).
//!
//! # Shutdown (rule 7)
//!
//! Once the runtime shuts down, each worker cancels each of its started green threads (they
//! unwind at their next cancellation point, on this worker, while every queue, timer and the
//! poller keep working), drops unstarted ones, and keeps running until no green thread is left
//! in the runtime. Past the shutdown timeout it leaks what is left instead of dropping it on the
//! wrong stack, with a warning.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::num::NonZeroU64;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corosensei::stack::Stack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use crossbeam_deque::{Steal, Worker};

use super::context::{Enter, Suspend};
use super::dump::{
    Answer, ChannelWait, Edge, SlotInfo, SlotView, Tally, WaitFor, render_backtrace, render_green_thread, state_of,
};
use super::run_queue::{Ready, RunQueue};
use super::shared::{Remote, Shared};
use super::stats::WorkerStats;
use super::task::{Header, NO_HOME, ParkKind, TaskRef};
use super::timers::{Fired, SlotTimer, Timers};
use crate::park::ParkReason;
use crate::reactor::CoreIo;
use crate::stack::{AltStack, GreenStack, StackPool};
use crate::thread::JoinError;

/// Turns between forced looks at the inbox, timers and unstarted green threads. Prime, so it
/// does not beat in step with loops in user code; small enough that a yield loop delays others
/// by a few microseconds at most, large enough that the extra looks cost nothing measurable.
pub(crate) const MAINTENANCE_INTERVAL: u32 = 61;

/// Forced maintenances between two looks of a busy worker at its stack pool's trimming
/// (`StackPool::maintain` reads the clock, about 23 ns here): every 17 × 61 = 1,037 turns that
/// is nothing, and still many times a second, which the pool's one-second trimming age needs.
pub(crate) const STACK_TRIM_EVERY: u32 = 17;

/// `pause` instructions between two looks for work of a spinning idle worker.
const SPINS_PER_LOOK: u32 = 4;

/// Looks for work between two polls of the OS by a spinning idle worker (with fd waiters).
const LOOKS_PER_POLL: u32 = 8;

/// Finished green threads a busy worker may leave uncounted in `shared.live` (so that its
/// spawns can take their places without touching the shared counter); past this, maintenance
/// counts them out. Idle and exiting workers count out everything.
const MAX_FINISHED_UNCOUNTED: usize = 1024;

/// The next [`Core::uid`].
/// Green threads a shutdown-timeout leak warning names; the rest it counts. A runtime dropped
/// with a million green threads left would otherwise write one line of megabytes.
const LEAKED_NAMED: usize = 20;

static NEXT_UID: AtomicUsize = AtomicUsize::new(0);

/// How long an idle worker spins before it sleeps. Waking a sleeping vCPU costs about 22 µs
/// here, so work that arrives within this time is taken at a fraction of that cost; longer
/// would burn a core for nothing when the runtime is really idle.
pub(crate) const SPIN_TIME: Duration = Duration::from_micros(25);

type Co = Coroutine<(), Suspend, (), GreenStack>;
type GreenYielder = Yielder<(), Suspend>;

/// A started green thread's coroutine, owned by its home worker.
struct Slot {
    /// The green thread; `None` while the slot is free.
    live: Option<Live>,
    /// The coroutine's yielder, published by the body at its first resume.
    yielder: *const GreenYielder,
    /// About where its stack pointer was when it last switched out (0 before it first did):
    /// where its resume will touch its stack first. See [`Core::prefetch_next`].
    stack_hint: usize,
    /// Its timed wait and its entry in the timer heap.
    timer: SlotTimer,
    /// What dumps show about it.
    info: SlotInfo,
}

/// The green thread in a slot and its coroutine.
struct Live {
    task: TaskRef,
    co: Co,
}

enum Work {
    Resume(usize),
    Start(TaskRef),
    /// The runtime has shut down and this worker is done.
    Exit,
}

/// A worker's own state. Lives on its OS thread and is touched by nothing else.
///
/// Green threads running on this worker reach it through `context::with_core`. The only
/// `RefCell` the loop holds across a resume is `slots`, which green threads never touch;
/// everything they use (`run_queue`, `local_new`, `timers`, ...) is borrowed only briefly.
pub(crate) struct Core {
    /// This worker's number, the index of its `Remote`.
    pub(crate) index: usize,
    /// A number no other worker of the process has, in any runtime (`index` repeats in each):
    /// for a lock's note of where its holder runs, which may be another runtime's worker.
    pub(crate) uid: usize,
    /// The runtime's shared state.
    pub(crate) shared: Arc<Shared>,
    /// `shared.remotes[index]`, without the bounds check on every switch.
    remote: NonNull<Remote>,
    /// `shared.config.budget`.
    budget: u32,
    /// The most ticks any green thread's budget holds here: unlimited, until the shutdown
    /// starts; then the default budget, so that a green thread given a huge one still gives
    /// the worker back often enough to enforce the shutdown timeout.
    budget_cap: Cell<u32>,
    /// Started green threads ready to run: slot, and the value of `spawned` when it was
    /// queued (see `next_ready`).
    run_queue: RefCell<RunQueue>,
    /// Unstarted green threads queued on this worker so far (`deque` and `local_new`).
    spawned: Cell<u64>,
    /// Of those, how many this worker took out to start (stolen ones are not counted).
    taken: Cell<u64>,
    /// Unstarted green threads spawned here; peers steal from its other end.
    deque: Worker<TaskRef>,
    /// Unstarted green threads with `!Send` closures (`spawn_local`): never stolen.
    local_new: RefCell<VecDeque<TaskRef>>,
    /// Started green threads, by slot.
    slots: RefCell<Vec<Slot>>,
    /// Free entries of `slots`.
    free_slots: RefCell<Vec<usize>>,
    /// This worker's stacks.
    stacks: RefCell<StackPool>,
    /// This worker's timers.
    timers: RefCell<Timers>,
    /// The header of the green thread running now, if any. Its slot's `TaskRef` keeps it alive
    /// while it runs.
    current: Cell<Option<NonNull<Header>>>,
    /// The running green thread's yielder while it runs on its own stack; null between
    /// resumes and inside `on_worker_stack`. Non-null exactly when a green thread may suspend.
    yielder: Cell<*const GreenYielder>,
    /// Set by the running green thread as it switches out: an address in its last frame
    /// before the switch (`Slot::stack_hint`).
    suspended_at: Cell<usize>,
    /// The deadline of the park being requested (`park`), for the worker to arm.
    park_deadline: Cell<Option<Instant>>,
    /// `config.park_backtraces`.
    park_backtraces: bool,
    /// The backtrace the parking green thread took (`park`), for the worker to keep.
    park_backtrace: RefCell<Option<std::backtrace::Backtrace>>,
    /// With `park_backtraces`: where each parked green thread parked, by slot. Beside the
    /// slots rather than in them, so that runtimes without it pay nothing per green thread.
    parked_at: RefCell<std::collections::HashMap<usize, std::backtrace::Backtrace>>,
    /// When the running green thread's time slice began: set the first time its budget ran
    /// out, cleared at every resume (the clock is read only when the budget runs out).
    pub(crate) slice_start: Cell<Option<Instant>>,
    /// Green threads finished here and not yet subtracted from `shared.live` (see `complete`).
    finished_uncounted: Cell<usize>,
    /// The slot of the green thread the budget just made yield, while the maintenance that lets
    /// others go first runs: it is ready, though not queued yet.
    forced_out: Cell<Option<usize>>,
    /// Turns left until the next forced maintenance (`MAINTENANCE_INTERVAL`).
    turns_left: Cell<u32>,
    /// Forced maintenances left until the next look at the stack pool (`STACK_TRIM_EVERY`).
    maintenances_left: Cell<u32>,
    /// What the running green thread's budget did during this resume (`coop.rs` reports to
    /// it; the worker folds it into the slot when `refills` is not zero).
    pub(crate) resume_acct: ResumeAccounting,
    /// xorshift state for picking a steal victim.
    rng: Cell<u64>,
    /// When shutdown gives up and leaks; set when this worker first sees the shutdown.
    shutdown_deadline: Cell<Option<Instant>>,
    /// The coarse clock (ms) when the shutdown began here: green threads still in a park they
    /// began before it had not run since their cancellation (`leak_remaining`).
    shutdown_began_ms: Cell<u64>,
    /// The green thread whose end shuts the runtime down (`green::run`), if any.
    main: Cell<Option<NonZeroU64>>,
    /// This worker's side of its reactor: event buffer, time of the last OS poll.
    io: CoreIo,
}

impl Core {
    pub(crate) fn new(index: usize, shared: Arc<Shared>, deque: Worker<TaskRef>) -> Core {
        let stacks = StackPool::new(shared.stacks.clone());
        let io = CoreIo::new(shared.remotes[index].reactor.clone());
        let park_backtraces = shared.config.park_backtraces;
        let timers = Timers::new(shared.epoch);
        Core {
            index,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            remote: NonNull::from(&shared.remotes[index]),
            budget: shared.config.budget,
            budget_cap: Cell::new(u32::MAX),
            shared,
            run_queue: RefCell::new(RunQueue::new()),
            spawned: Cell::new(0),
            taken: Cell::new(0),
            deque,
            local_new: RefCell::new(VecDeque::new()),
            slots: RefCell::new(Vec::new()),
            free_slots: RefCell::new(Vec::new()),
            stacks: RefCell::new(stacks),
            timers: RefCell::new(timers),
            current: Cell::new(None),
            yielder: Cell::new(std::ptr::null()),
            suspended_at: Cell::new(0),
            park_deadline: Cell::new(None),
            park_backtraces,
            park_backtrace: RefCell::new(None),
            parked_at: RefCell::new(std::collections::HashMap::new()),
            slice_start: Cell::new(None),
            finished_uncounted: Cell::new(0),
            forced_out: Cell::new(None),
            turns_left: Cell::new(MAINTENANCE_INTERVAL),
            maintenances_left: Cell::new(STACK_TRIM_EVERY),
            resume_acct: ResumeAccounting::default(),
            rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407)),
            shutdown_deadline: Cell::new(None),
            shutdown_began_ms: Cell::new(0),
            main: Cell::new(None),
            io,
        }
    }

    // ---- what green threads ask of their worker -----------------------------------------

    /// This worker's shared side.
    pub(crate) fn remote(&self) -> &Remote {
        // SAFETY: `remote` points into `shared.remotes`, a boxed slice (never resized) that
        // lives as long as `shared`, which `self` holds.
        unsafe { self.remote.as_ref() }
    }

    /// This worker's published counters.
    pub(crate) fn stats(&self) -> &WorkerStats {
        &self.remote().stats
    }

    /// True while a green thread runs on its own stack on this worker.
    #[inline]
    pub(crate) fn in_green_thread(&self) -> bool {
        !self.yielder.get().is_null()
    }

    /// Switches from the running green thread back to this worker, asking for `why`.
    ///
    /// # Panics
    ///
    /// If no green thread runs on its own stack here.
    #[inline]
    pub(crate) fn suspend(&self, why: Suspend) {
        let yielder = self.yielder.get();
        assert!(!yielder.is_null(), internal_error!("suspend outside a green thread"));
        let here = 0u8;
        self.suspended_at.set(std::ptr::addr_of!(here) as usize);
        // SAFETY: a non-null `yielder` belongs to the green thread running right now on this
        // thread, on its own stack; its coroutine (and so its yielder, which lives on that
        // coroutine's stack) is alive while its code runs, which it does: we are that code.
        unsafe { (*yielder).suspend(why) };
    }

    /// Parks the running green thread until woken, or until `deadline` if given.
    ///
    /// # Panics
    ///
    /// If no green thread runs on its own stack here.
    #[inline]
    pub(crate) fn park(&self, kind: ParkKind, deadline: Option<Instant>, reason: ParkReason) {
        if self.park_backtraces {
            self.record_park_backtrace();
        }
        self.park_deadline.set(deadline);
        self.suspend(Suspend::Park { kind, reason });
    }

    #[cold]
    fn record_park_backtrace(&self) {
        *self.park_backtrace.borrow_mut() = Some(std::backtrace::Backtrace::force_capture());
    }

    /// Moves the running green thread onto the worker's stack (`on_worker_stack`): returns its
    /// yielder and marks it as unable to suspend until `leave_parent_stack`. `None` when
    /// already there (`on_parent_stack` starts at the parent's saved stack pointer: a second
    /// call from the worker's stack would overwrite the frames of the first) or not in a green
    /// thread.
    pub(crate) fn enter_parent_stack(&self) -> Option<*const GreenYielder> {
        let yielder = self.yielder.replace(std::ptr::null());
        (!yielder.is_null()).then_some(yielder)
    }

    /// Ends what `enter_parent_stack` began, with the yielder it returned.
    pub(crate) fn leave_parent_stack(&self, yielder: *const GreenYielder) {
        self.yielder.set(yielder);
    }

    /// The running green thread's header, without counting a reference: valid while that
    /// green thread runs.
    #[inline]
    pub(crate) fn current_header(&self) -> Option<NonNull<Header>> {
        self.current.get()
    }

    /// The running green thread.
    pub(crate) fn current(&self) -> Option<TaskRef> {
        let header = self.current.get()?;
        // SAFETY: `current` is the header of the slot being resumed, whose `TaskRef` keeps the
        // task alive until the resume returns and `current` is cleared.
        Some(unsafe { TaskRef::from_header(header) })
    }

    /// Calls `f` with the running green thread's header, without counting a reference.
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(Option<&Header>) -> R) -> R {
        // SAFETY: as in `current`, the header is alive while `current` is set, and the borrow
        // does not escape `f`. `f` may switch away, but the green thread whose header it is
        // cannot finish (and be freed) while it is inside `f`.
        f(self.current.get().map(|header| unsafe { header.as_ref() }))
    }

    /// The first `Some` that `f` returns for a started green thread of this worker other than
    /// the running one; `None` if there is none, or no green thread runs here on its own stack.
    /// For a running green thread that blocks its worker (an unwinding lock call) and must know
    /// whether a holder it would wait for is one of those, which cannot run meanwhile.
    /// Unstarted green threads are not visited: they have run no code.
    ///
    /// It reads the slot table while [`Core::resume`] holds it borrowed across the switch:
    /// through raw pointers, never a reference to the table's elements as a whole, and never
    /// touching the running green thread's own slot, the only one `resume` holds a reference
    /// into. Rare paths only: it visits every slot.
    pub(crate) fn find_other_green_thread<R>(&self, mut f: impl FnMut(&Header) -> Option<R>) -> Option<R> {
        if !self.in_green_thread() {
            return None;
        }
        // SAFETY: `current` is set while a green thread runs (`in_green_thread`), and its slot
        // keeps its header alive.
        let own = unsafe { self.current.get()?.as_ref() }.slot();
        let table = self.slots.as_ptr();
        // SAFETY: only this thread touches `slots`, and the worker is inside `resume` (the
        // running green thread is us), which does not change the table while we run: the
        // vector is not resized, and `resume` writes to it (to the slot `own` alone) only after
        // the switch back. Its borrow is a raw pointer
        // inside the `RefMut`, and the one reference it holds derived from it is to the slot
        // `own`, which we skip. Reading the vector's length and buffer address takes no
        // reference to its elements.
        let (base, len) = unsafe { ((*table).as_ptr(), (*table).len()) };
        (0..len).filter(|&index| index != own).find_map(|index| {
            // SAFETY: `index < len`, and no reference into that slot is alive (see above); the
            // `TaskRef` in it keeps the header alive while we read it, as nothing else runs here.
            let slot = unsafe { &*base.add(index) };
            slot.live.as_ref().and_then(|live| f(live.task.header()))
        })
    }

    /// The running green thread's budget and time slice: its own, or the runtime's.
    pub(crate) fn current_budget_and_slice(&self) -> (u32, Duration) {
        self.with_current(|header| {
            let (budget, slice_us) = header.map_or((0, 0), |h| (h.budget, h.time_slice_us));
            let budget = if budget == 0 { self.budget } else { budget }.min(self.budget_cap.get());
            let slice = match slice_us {
                0 => self.shared.config.time_slice,
                us => Duration::from_micros(u64::from(us)),
            };
            (budget, slice)
        })
    }

    /// True if the running green thread has been cancelled.
    #[inline]
    pub(crate) fn current_is_cancelled(&self) -> bool {
        self.with_current(|header| header.is_some_and(Header::is_cancelled))
    }

    /// Queues an unstarted green thread spawned on this worker. Peers may steal it.
    pub(crate) fn push_new(&self, task: TaskRef) {
        // A sleeping peer needs a wake only when the deque goes from empty to not empty: a
        // peer that went to sleep since then saw it not empty (it looks after announcing its
        // sleep) and would not have slept, and one that slept before was woken by that push.
        // Counted after the push: only this worker pushes, so one task now means none just
        // before, even if a peer stole the last one between a look and the push.
        self.deque.push(task);
        self.spawned.set(self.spawned.get() + 1);
        if self.deque.len() == 1 {
            self.shared.wake_one_sleeper();
        }
    }

    /// Queues an unstarted green thread that must start on this worker.
    pub(crate) fn push_new_local(&self, task: TaskRef) {
        task.header().set_home(self.index);
        self.local_new.borrow_mut().push_back(task);
        self.spawned.set(self.spawned.get() + 1);
    }

    /// Makes a green thread homed here, just made `ACTIVE` (from `PARKED`), ready.
    pub(crate) fn push_ready(&self, header: &Header) {
        debug_assert_eq!(header.home(), self.index);
        self.push_ready_slot(header.slot());
    }

    /// True if nothing but the running green thread can run on this worker now or become ready
    /// without first appearing here: empty run queue, inbox, local and own queues, no timer,
    /// no green thread waiting on an fd, no shutdown. Cheaper than `others_waiting`: no clock.
    pub(crate) fn nothing_else_here(&self) -> bool {
        !self.queued_here()
            && self.timers.borrow().len() == 0
            && !self.io.has_waiters()
            && !self.shared.is_shutting_down()
    }

    /// True if a green thread waits in one of the queues this worker takes from, peers'
    /// deques aside: its run queue, inbox, `spawn_local` queue, pinned queue, own deque, or
    /// the runtime's injector (pinned and injected ones are reached at the loop's forced look
    /// at unstarted green threads, even when every worker is busy).
    fn queued_here(&self) -> bool {
        let remote = self.remote();
        !self.run_queue.borrow().is_empty()
            || !self.local_new.borrow().is_empty()
            || !remote.inbox.is_empty()
            || !remote.pinned.is_empty()
            || !self.deque.is_empty()
            || !self.shared.injector.is_empty()
    }

    /// Would anyone else on this worker run if the current green thread yielded now? Looks at
    /// the queues and the timers without waiting (the budget's question, docs/design.md "Budget").
    /// During shutdown the worker itself is waiting: it must get back to enforce the shutdown
    /// timeout on a green thread that swallows its cancellation; so is a dump's caller, which
    /// the worker answers between two green threads.
    pub(crate) fn others_waiting(&self, now: Instant) -> bool {
        // Green threads whose sockets are ready count too: a poll that does not wait moves
        // them to the run queue (or their home's inbox).
        self.io.poll_if_due(now);
        self.shared.is_shutting_down()
            || self.queued_here()
            || self.timers.borrow().is_due(now)
            || self.remote().dump_pending.load(Ordering::Relaxed)
    }

    // ---- the loop ----------------------------------------------------------------------

    /// Runs the worker until the runtime has shut down and no green thread is left. `main`,
    /// if given, is started first and its end starts the shutdown.
    pub(crate) fn run(&self, main: Option<TaskRef>) {
        let _enter = Enter::new(self);
        // SAFETY: gettid has no preconditions.
        self.stats().tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
        let _altstack = match AltStack::install() {
            Ok(alt) => Some(alt),
            Err(e) => {
                log::warn!(
                    "green: worker {}: no alternate signal stack ({e}); a stack overflow will not be reported by name",
                    self.index
                );
                None
            }
        };
        if let Some(main) = main {
            self.main.set(Some(main.header().id));
            self.push_new_local(main);
        }
        loop {
            match self.next_work() {
                Some(Work::Resume(slot)) => self.resume(slot),
                Some(Work::Start(task)) => self.start(task),
                Some(Work::Exit) => break,
                None => {
                    if self.shared.is_shutting_down() && self.shutdown_finished() {
                        break;
                    }
                    self.idle();
                }
            }
        }
    }

    fn next_work(&self) -> Option<Work> {
        let turns_left = self.turns_left.get() - 1;
        self.turns_left.set(turns_left);
        if turns_left == 0 {
            self.turns_left.set(MAINTENANCE_INTERVAL);
            let maintenances_left = self.maintenances_left.get() - 1;
            self.maintenances_left.set(maintenances_left);
            if maintenances_left == 0 {
                self.maintenances_left.set(STACK_TRIM_EVERY);
                self.stacks.borrow_mut().maintain(Instant::now());
            }
            self.maintenance();
            // A busy worker learns of the shutdown here (an idle one in `run`).
            if self.shared.is_shutting_down() && self.shutdown_finished() {
                return Some(Work::Exit);
            }
            if let Some(task) = self.find_unstarted() {
                return Some(Work::Start(task));
            }
        }
        if let Some(work) = self.next_ready() {
            return Some(work);
        }
        self.maintenance();
        if let Some(work) = self.next_ready() {
            return Some(work);
        }
        self.find_unstarted().map(Work::Start)
    }

    /// The front of the run queue, unless green threads spawned here before it became ready
    /// are still waiting to start: then one of those. Green threads thus run in about the order
    /// they became runnable, whether new or woken. A parent that spawns children and joins them
    /// finds them finished instead of parking once per child, and a new green thread is never
    /// held up by a crowd of ready ones that arrived after it.
    fn next_ready(&self) -> Option<Work> {
        let mut run_queue = self.run_queue.borrow_mut();
        let Ready { slot, ticket } = run_queue.front()?;
        if ticket > self.taken.get() && (!self.deque.is_empty() || !self.local_new.borrow().is_empty()) {
            drop(run_queue);
            if let Some(task) = self.find_unstarted() {
                return Some(Work::Start(task));
            }
            run_queue = self.run_queue.borrow_mut();
        }
        run_queue.skip_front();
        Some(Work::Resume(slot))
    }

    fn push_ready_slot(&self, slot: usize) {
        self.run_queue.borrow_mut().push_back(Ready { slot, ticket: self.spawned.get() });
    }

    /// Moves woken green threads from the inbox and the timers to the run queue; on shutdown,
    /// cancels this worker's green threads once.
    fn maintenance(&self) {
        if self.finished_uncounted.get() > MAX_FINISHED_UNCOUNTED {
            self.count_out_finished();
        }
        let remote = self.remote();
        // For the monitor's reports: how many wait behind the green thread it may find stuck.
        // Published here, not at every resume: a hint needs no more.
        let waiting = self.run_queue.borrow().len() + self.deque.len() + self.local_new.borrow().len();
        remote.stats.ready.store(waiting, Ordering::Relaxed);
        remote.stats.timers.store(self.timers.borrow().len(), Ordering::Relaxed);
        if remote.dump_pending.load(Ordering::Acquire) {
            self.answer_dump();
        }
        if self.io.has_waiters() {
            let now = Instant::now();
            self.io.poll_if_due(now);
            self.shared.refresh_clock(now);
        }
        while !remote.inbox.is_empty() {
            match remote.inbox.steal() {
                Steal::Success(task) => self.push_ready(task.header()),
                Steal::Empty => break,
                Steal::Retry => continue,
            }
        }
        if self.timers.borrow().len() > 0 {
            let now = Instant::now();
            self.fire_timers(now);
            // The coarse clock stamps parks: a busy worker keeps it fresh with the readings it
            // makes anyway (the monitor, which also refreshes it, may be off).
            self.shared.refresh_clock(now);
        }
        if self.shared.is_shutting_down() && self.shutdown_deadline.get().is_none() {
            self.shutdown_deadline.set(Some(crate::time::far_deadline(self.shared.shutdown_timeout())));
            self.shared.refresh_clock(Instant::now());
            self.shutdown_began_ms.set(self.shared.coarse_ms());
            self.budget_cap.set(crate::runtime::DEFAULT_BUDGET);
            self.cancel_all();
        }
    }

    /// Finds an unstarted green thread: local queue, pinned queue, own deque, injector, a
    /// random peer. During shutdown, what it finds is dropped unstarted instead.
    fn find_unstarted(&self) -> Option<TaskRef> {
        loop {
            let task = self.find_unstarted_once()?;
            // A green thread cancelled before it started never starts.
            if !self.shared.is_shutting_down() && !task.header().is_cancelled() {
                return Some(task);
            }
            self.abandon(task, None);
        }
    }

    fn find_unstarted_once(&self) -> Option<TaskRef> {
        if let Some(task) = self.local_new.borrow_mut().pop_front() {
            self.taken.set(self.taken.get() + 1);
            return Some(task);
        }
        let remote = self.remote();
        if !remote.pinned.is_empty()
            && let Some(task) = steal_one(|| remote.pinned.steal())
        {
            return Some(task);
        }
        if let Some(task) = self.deque.pop() {
            self.taken.set(self.taken.get() + 1);
            return Some(task);
        }
        if !self.shared.injector.is_empty()
            && let Some(task) = steal_one(|| self.shared.injector.steal_batch_and_pop(&self.deque))
        {
            WorkerStats::bump(&self.stats().steals);
            return Some(task);
        }
        let peers = self.shared.stealers.len();
        if peers > 1 {
            let start = self.next_random() as usize % peers;
            for k in 0..peers {
                let victim = (start + k) % peers;
                if victim == self.index {
                    continue;
                }
                let stealer = &self.shared.stealers[victim];
                if !stealer.is_empty()
                    && let Some(task) = steal_one(|| stealer.steal_batch_and_pop(&self.deque))
                {
                    WorkerStats::bump(&self.stats().steals);
                    return Some(task);
                }
            }
        }
        None
    }

    fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// Is there anything to do without sleeping?
    fn has_work(&self) -> bool {
        self.has_work_at(Instant::now())
    }

    /// [`has_work`](Core::has_work), with the time read by the caller.
    fn has_work_at(&self, now: Instant) -> bool {
        self.queued_here()
            || self.shared.stealers.iter().any(|s| !s.is_empty())
            || self.timers.borrow().is_due(now)
            // Announced by a notify alone, which a poll that does not wait may have taken.
            || self.remote().dump_pending.load(Ordering::Acquire)
            || (self.shared.is_shutting_down()
                && (self.shutdown_deadline.get().is_none() || self.shared.live.load(Ordering::SeqCst) == 0))
    }

    /// Spins briefly, then sleeps in the poller until woken or the next timer is due.
    fn idle(&self) {
        // Sockets first: readiness already there is found by a poll that does not wait,
        // much cheaper than spinning past it and then sleeping in the poller.
        if self.io.poll_now() {
            return;
        }
        let spin_start = Instant::now();
        self.publish_idle_since(spin_start);
        for round in 1u32.. {
            // A `pause` takes about 25 ns here: four of them between looks keep a message from
            // another worker waiting 0.1 µs, not the 1.6 µs that 64 cost (two-worker channel
            // round trip 2.2 -> 0.7 µs).
            for _ in 0..SPINS_PER_LOOK {
                std::hint::spin_loop();
            }
            let now = Instant::now();
            if self.has_work_at(now) {
                self.count_idle(spin_start, now);
                return;
            }
            // Keep asking the OS too, less often (a system call each time): a message that
            // arrives now is taken in a couple of microseconds instead of after the spin, and no
            // wakeup is paid.
            if round.is_multiple_of(LOOKS_PER_POLL) && self.io.poll_now() {
                self.count_idle(spin_start, now);
                return;
            }
            if now.duration_since(spin_start) >= SPIN_TIME {
                break;
            }
        }
        // Give back stacks unused for a while before sleeping, and wake to give back the rest.
        let trim_due = {
            let mut stacks = self.stacks.borrow_mut();
            stacks.maintain(Instant::now());
            stacks.next_maintain()
        };
        let remote = self.remote();
        remote.stats.timers.store(self.timers.borrow().len(), Ordering::Relaxed);
        self.count_out_finished();
        remote.sleeping.store(true, Ordering::SeqCst);
        self.shared.sleepers.fetch_add(1, Ordering::SeqCst);
        if !self.has_work() {
            let deadline = [self.timers.borrow().next_deadline(), self.shutdown_deadline.get(), trim_due]
                .into_iter()
                .flatten()
                .min();
            // A signal does not end the wait (it is retried).
            if let Err(e) = self.io.wait(deadline) {
                log::error!("green: worker {}: waiting for I/O readiness (epoll_wait) failed: {e}", self.index);
            }
        }
        remote.sleeping.store(false, Ordering::SeqCst);
        self.shared.sleepers.fetch_sub(1, Ordering::SeqCst);
        WorkerStats::bump(&remote.stats.sleeps);
        let now = Instant::now();
        self.shared.refresh_clock(now);
        self.count_idle(spin_start, now);
        self.shared.monitor.worker_awake();
    }

    /// Publishes that the worker has had nothing to run since `since`, so that readers of its
    /// idle time count the stretch in progress too.
    fn publish_idle_since(&self, since: Instant) {
        let nanos = u64::try_from(since.saturating_duration_since(self.shared.epoch).as_nanos()).unwrap_or(u64::MAX);
        self.stats().idle_since.store(nanos.saturating_add(1), Ordering::Relaxed);
    }

    /// Adds the time from `since` to `now`, spent spinning or asleep with nothing to run, to
    /// the worker's published idle time, and ends the stretch in progress. A poll that does
    /// not wait and finds work counts as work: the time is what a busier runtime would have
    /// had to spare. The stretch ends before the total grows (`Release`): a reader that sees
    /// the new total does not count the stretch twice.
    fn count_idle(&self, since: Instant, now: Instant) {
        let stats = self.stats();
        let nanos = u64::try_from(now.duration_since(since).as_nanos()).unwrap_or(u64::MAX);
        stats.idle_since.store(0, Ordering::Relaxed);
        stats.idle_nanos.store(stats.idle_nanos.load(Ordering::Relaxed).saturating_add(nanos), Ordering::Release);
    }

    // ---- running green threads ---------------------------------------------------------

    /// First resume: home it here, give it a stack and a slot, run it.
    fn start(&self, task: TaskRef) {
        WorkerStats::bump(&self.stats().started);
        let header = task.header();
        if header.home() == NO_HOME {
            header.set_home(self.index);
        }
        let size = match header.stack_size {
            0 => self.shared.config.stack_size,
            n => n as usize,
        };
        let mut stack = match self.stacks.borrow_mut().take(size) {
            Ok(stack) => stack,
            Err(e) => {
                // Out of memory, thousands may fail in a row: the 1st, 2nd, 4th, 8th... are
                // logged (each join handle has its own error).
                static FAILED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let failed = FAILED.fetch_add(1, Ordering::Relaxed) + 1;
                if failed.is_power_of_two() {
                    log::error!(
                        "green: green thread {} could not start: {e} ({failed} failed to start so far)",
                        header.describe()
                    );
                }
                self.abandon(task, Some(e));
                return;
            }
        };
        // SAFETY: the name is an `Arc<str>` in the header, which the slot (or `current`) keeps
        // alive until the coroutine has returned and the stack is given back in `resume`.
        unsafe { stack.set_owner(header.id.get(), header.name.as_deref()) };
        let (limit, base) = (stack.limit().get(), stack.base().get());
        let info = SlotInfo {
            stack_base: base,
            // At most the largest size class (1 GiB) and its guard: well within a `u32`.
            stack_len: u32::try_from(base - limit).unwrap_or(u32::MAX),
            since_ms: self.shared.coarse_ms(),
            ..SlotInfo::default()
        };
        let body_task = SlotTask(task.as_ptr());
        let co = Co::with_stack(stack, move |yielder: &GreenYielder, ()| {
            crate::runtime::context::with_core(|core| {
                core.expect(internal_error!("a green thread started outside its worker thread")).yielder.set(yielder);
            });
            let body_task = body_task;
            // SAFETY: the slot holds the task's `TaskRef` until after the coroutine has
            // returned, so the pointee outlives this body. `run` is called once, on the home
            // worker, and `abandon` is never called for a task that was started.
            unsafe { crate::runtime::task::run_raw(body_task.0) };
        });
        let index = match self.free_slots.borrow_mut().pop() {
            Some(i) => i,
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Slot {
                    live: None,
                    yielder: std::ptr::null(),
                    stack_hint: 0,
                    timer: SlotTimer::default(),
                    info: SlotInfo::default(),
                });
                slots.len() - 1
            }
        };
        task.header().set_slot(index);
        // Field by field: the slot is large, and a whole `Slot` built first would be copied.
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[index];
        slot.live = Some(Live { task, co });
        slot.yielder = std::ptr::null();
        slot.stack_hint = 0;
        // `slot.timer` is ready for this green thread: cleared as the last one finished.
        slot.info = info;
        drop(slots);
        self.resume(index);
    }

    fn resume(&self, mut index: usize) {
        // The slot stays borrowed while green threads run: green threads never change the slot
        // table (they use `current`; an unwinding lock call reads the other slots through raw
        // pointers, `find_other_green_thread`), so the borrow cannot conflict, and the coroutine
        // does not move.
        let mut slots = self.slots.borrow_mut();
        let stats = self.stats();
        loop {
            self.prefetch_next(&slots);
            let slot = &mut slots[index];
            let Some(live) = &mut slot.live else {
                panic!(internal_error!("a worker resumed a green thread that had already ended"))
            };
            let header = live.task.as_ptr();
            let budget = match live.task.header().budget {
                0 => self.budget,
                own => own,
            }
            .min(self.budget_cap.get());
            self.current.set(Some(header));
            self.yielder.set(slot.yielder);
            self.slice_start.set(None);
            crate::coop::reset_budget(budget);
            WorkerStats::bump(&stats.switches);
            // Release: a reader that sees the pointer sees the header it points to.
            stats.running.store(header.as_ptr(), Ordering::Release);
            // Parked no more, before it runs: a green thread that reads the metrics is not among
            // the parked ones. (The rest of the park's bookkeeping waits until after the resume.)
            if let Some(reason) = slot.info.parked {
                WorkerStats::add(&stats.parked_now[reason as usize], -1);
                if slot.info.timed {
                    WorkerStats::add(&stats.timed_parked, -1);
                }
                if slot.info.lock_wait {
                    WorkerStats::add(&stats.lock_parked, -1);
                }
            }

            let result = live.co.resume(());
            if let CoroutineResult::Yield(_) = result {
                slot.stack_hint = self.suspended_at.get();
            }

            // The body publishes its yielder at its first resume; keep it for the next ones.
            slot.yielder = self.yielder.replace(std::ptr::null());
            slot.info.ticks += u64::from(budget.saturating_sub(crate::coop::budget_left()));
            if slot.info.parked.take().is_some() {
                slot.info.lock_wait = false;
                self.end_park(index, &mut slot.info);
            }
            if self.resume_acct.refills.get() != 0 {
                self.resume_acct.fold_into(&mut slot.info, budget);
            }
            // A yield or a park with a started green thread ready next and nothing else due goes
            // straight to that one, as one turn: the common turn of a yield loop or a channel
            // ping-pong, without the way round through `run` (what `next_work` would pick, it
            // picks). Returning to `run` would also cost a mispredicted return, its call having
            // been made on this side of a stack switch.
            let next = match result {
                CoroutineResult::Yield(Suspend::Yield) => {
                    // A green thread that yields before its budget runs out never reaches the
                    // budget's look at the sockets, and the loop's comes every 61 turns: with
                    // long turns (50 sends each), a receiver beside it waited milliseconds for
                    // the poll, its queue overflowing. Once the sockets are due, make the next
                    // turn the loop's full look. (The clock only when sockets wait here: a yield
                    // loop alone pays one load.)
                    if self.io.has_waiters() && self.io.poll_due(Instant::now()) {
                        self.turns_left.set(1);
                    }
                    self.swap_with_next_ready(index)
                }
                // The one waiting may be a due timer, the inbox or a green thread not started
                // yet, which only `next_work`'s look finds: not the front of the run queue.
                CoroutineResult::Yield(Suspend::ForcedYield) => None,
                CoroutineResult::Yield(Suspend::Park { kind, reason }) => {
                    self.commit_park(index, slot, kind, reason);
                    self.take_next_ready()
                }
                CoroutineResult::Return(()) => None,
            };
            if let Some(next) = next {
                index = next;
                continue;
            }
            stats.running.store(std::ptr::null_mut(), Ordering::Relaxed);
            self.current.set(None);
            drop(slots);
            match result {
                CoroutineResult::Yield(Suspend::Yield) => self.push_ready_slot(index),
                CoroutineResult::Yield(Suspend::ForcedYield) => {
                    // It yielded because someone else waits: let whoever a due timer or the
                    // inbox made ready go before it, and make the next turn the loop's full
                    // look (unstarted green threads too). Without this, the worker resumed it
                    // again at once and the others waited for the every-61-turns look: 61
                    // more time slices.
                    // A dump answered meanwhile shows it ready, as it is.
                    self.forced_out.set(Some(index));
                    self.maintenance();
                    self.forced_out.set(None);
                    self.push_ready_slot(index);
                    self.turns_left.set(1);
                }
                CoroutineResult::Yield(Suspend::Park { .. }) => {}
                CoroutineResult::Return(()) => self.finish(index),
            }
            return;
        }
    }

    /// Starts loading what the green thread after the one about to run will touch first: its
    /// header, the top of its stack where it switched out, and the word at its stack's base
    /// where each resume stores the way back. With a thousand green threads parked on
    /// sockets, those lines and their pages are cold, and the resume that finds them missing
    /// stalls on them (the first instruction after the switch took 27% of a busy echo
    /// server's user time); fetched now, they arrive while the current one runs. A hint only:
    /// a wrong address costs nothing.
    #[inline]
    fn prefetch_next(&self, slots: &[Slot]) {
        let Some(next) = self.run_queue.borrow().front() else { return };
        let Some(Slot { live: Some(live), stack_hint, info, .. }) = slots.get(next.slot) else { return };
        prefetch(live.task.as_ptr().as_ptr() as usize);
        prefetch(info.stack_base.wrapping_sub(16));
        if *stack_hint != 0 {
            for offset in [0, 64, 128, 192] {
                prefetch(stack_hint.wrapping_sub(offset));
            }
        }
    }

    /// For a green thread in `index` that just yielded: if `next_work` would now resume the
    /// started green thread at the front of the run queue (no maintenance due, no unstarted
    /// green thread queued before it), queues `index` behind and returns that one's slot, as
    /// one turn of the loop.
    #[inline]
    fn swap_with_next_ready(&self, index: usize) -> Option<usize> {
        let next = self.take_next_ready()?;
        self.push_ready_slot(index);
        Some(next)
    }

    /// The slot of the started green thread `next_work` would resume now, taken off the run
    /// queue, if nothing else is due: no maintenance this turn, and no unstarted green thread
    /// queued before it (see `next_ready`).
    #[inline]
    fn take_next_ready(&self) -> Option<usize> {
        let turns_left = self.turns_left.get();
        if turns_left <= 1 {
            return None;
        }
        let mut run_queue = self.run_queue.borrow_mut();
        let front = run_queue.front()?;
        if front.ticket > self.taken.get() {
            return None;
        }
        self.turns_left.set(turns_left - 1);
        run_queue.skip_front();
        Some(front.slot)
    }

    /// Bookkeeping after the first resume that follows a park.
    #[inline]
    fn end_park(&self, index: usize, info: &mut SlotInfo) {
        info.since_ms = self.shared.coarse_ms();
        if self.park_backtraces {
            self.parked_at.borrow_mut().remove(&index);
        }
    }

    /// The green thread in `index` asked to park (rule 4 of docs/design.md): arm its timer, then
    /// commit the park, or run it again if a wake came first.
    fn commit_park(&self, index: usize, slot: &mut Slot, kind: ParkKind, reason: ParkReason) {
        let stats = self.stats();
        WorkerStats::bump(&stats.parks[reason as usize]);
        let task =
            &slot.live.as_ref().expect(internal_error!("a green thread that had already ended asked to park")).task;
        let header = task.header();
        let deadline = self.park_deadline.take();
        if let Some(deadline) = deadline {
            self.arm_timer(&mut slot.timer, index, deadline, header.seq());
        }
        let parked = header.commit_park(kind);
        let backtrace = if self.park_backtraces { self.park_backtrace.borrow_mut().take() } else { None };
        if parked {
            slot.info.parked = Some(reason);
            slot.info.timed = deadline.is_some();
            slot.info.since_ms = self.shared.coarse_ms();
            WorkerStats::add(&stats.parked_now[reason as usize], 1);
            if slot.info.timed {
                WorkerStats::add(&stats.timed_parked, 1);
            }
            // A green lock's wait: its record is made before the park and taken back after it.
            slot.info.lock_wait =
                reason == ParkReason::Sync && !header.waits_for_lock.load(Ordering::Relaxed).is_null();
            if slot.info.lock_wait {
                WorkerStats::add(&stats.lock_parked, 1);
            }
            if let Some(backtrace) = backtrace {
                self.parked_at.borrow_mut().insert(index, backtrace);
            }
        } else {
            self.push_ready_slot(index);
        }
    }

    /// Records the timed wait `seq` of the green thread in `index` until `deadline`, and makes
    /// sure an entry at that deadline or before speaks for it (see [`SlotTimer`]).
    fn arm_timer(&self, timer: &mut SlotTimer, index: usize, deadline: Instant, seq: u32) {
        let mut timers = self.timers.borrow_mut();
        let deadline = timers.deadline(deadline);
        let begun = timer.begin(deadline, seq);
        if begun.orphaned {
            timers.orphaned(1);
        }
        if begun.push {
            timers.insert(deadline, index, timer.occupant());
        }
    }

    /// Wakes the green threads whose timed waits are over at `now`, and pushes again the entries
    /// that came due early for a wait still on; drops the entries that speak for nobody once
    /// they are most of the heap.
    fn fire_timers(&self, now: Instant) {
        let mut slots = self.slots.borrow_mut();
        let mut timers = self.timers.borrow_mut();
        let now = timers.deadline(now);
        while let Some(due) = timers.pop_due(now) {
            // A free slot's entries spoke for a green thread that has finished.
            let Some(Slot { live: Some(live), timer, .. }) = slots.get_mut(due.slot) else {
                timers.orphan_popped();
                continue;
            };
            let header = live.task.header();
            match timer.fired(due.occupant, due.deadline, now, || header.seq()) {
                Fired::Orphan => timers.orphan_popped(),
                Fired::Nothing => {}
                Fired::Wake(seq) => {
                    if header.wake(seq) {
                        self.push_ready_slot(due.slot);
                    }
                }
                Fired::Push(deadline) => timers.insert(deadline, due.slot, due.occupant),
            }
        }
        if timers.wants_compaction() {
            timers.compact(|slot, occupant, deadline| {
                slots.get(slot).is_some_and(|s| s.live.is_some() && s.timer.is_named(occupant, deadline))
            });
        }
    }

    /// The green thread in `index` returned: free its stack and slot, then complete it.
    #[inline(never)]
    fn finish(&self, index: usize) {
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[index];
        let Live { task, co } = slot.live.take().expect(internal_error!("a green thread ended twice"));
        slot.yielder = std::ptr::null();
        let orphaned = slot.timer.next_occupant();
        drop(slots);
        if orphaned > 0 {
            self.timers.borrow_mut().orphaned(orphaned);
        }
        self.stacks.borrow_mut().give(co.into_stack());
        self.free_slots.borrow_mut().push(index);
        crate::coop::end_no_yield(task.header().id.get());
        self.complete(task);
    }

    /// Drops an unstarted green thread's closure (shutdown, or no stack for it).
    fn abandon(&self, task: TaskRef, error: Option<io::Error>) {
        let error = match error {
            Some(e) => JoinError::failed_to_start(task.header(), e),
            None if task.header().is_cancelled() => JoinError::cancelled(task.header()),
            None => JoinError::dropped_unstarted(task.header()),
        };
        // SAFETY: the task came out of a queue of unstarted green threads, which hands each to
        // exactly one worker; it was never run.
        unsafe { task.abandon(error) };
        self.complete(task);
    }

    /// The green thread is over: publish, wake its joiner, count it out.
    fn complete(&self, task: TaskRef) {
        // The monitor may be reading this task's header through `stats.running`.
        self.stats().wait_for_readers();
        let header = task.header();
        if header.set_done() {
            crate::thread::outcome_released(&task);
        }
        if self.main.get() == Some(header.id) {
            self.shared.begin_shutdown();
        }
        // Counted out later, in a batch, or never: a spawn on this worker takes its place
        // (`take_finished_credit`). That saves two atomic operations on a line every worker
        // writes, per green thread. During shutdown the count must reach zero promptly.
        self.finished_uncounted.set(self.finished_uncounted.get() + 1);
        if self.shared.is_shutting_down() {
            self.count_out_finished();
        }
    }

    /// Uses one finished green thread not yet counted out to count a new one in (`admit`).
    pub(crate) fn take_finished_credit(&self) -> bool {
        let n = self.finished_uncounted.get();
        if n == 0 {
            return false;
        }
        self.finished_uncounted.set(n - 1);
        true
    }

    /// Subtracts the green threads finished here from `shared.live`.
    fn count_out_finished(&self) {
        let n = self.finished_uncounted.replace(0);
        if n > 0 {
            self.shared.tasks_finished(n);
        }
    }

    // ---- dumps -------------------------------------------------------------------------

    /// Answers a pending dump request with this worker's green threads: each one's spawn site
    /// and state for the summary (cheap: no syscall, an allocation at most), and a line for the
    /// first `max_listed` and for those that hold green locks (a few syscalls each).
    fn answer_dump(&self) {
        let remote = self.remote();
        remote.dump_pending.store(false, Ordering::Release);
        // Every request posted so far (several callers may dump at once), answered alike but
        // for how many lines each lists.
        let requests =
            remote.dump.lock().unwrap_or_else(|e| e.into_inner()).as_mut().map(std::mem::take).unwrap_or_default();
        if requests.is_empty() {
            return;
        }
        let started = Instant::now();
        // The dump's heading reads `live`, which counts the green threads finished here and not
        // yet counted out: without this, a dump just after a `block_on` could say "1 live" and
        // list none.
        self.count_out_finished();
        for request in &requests {
            request.take_up(self.index);
        }
        let max_listed = requests.iter().map(|r| r.max_listed).max().unwrap_or(0);
        // The monitor's looks want the wait-for graph alone: no lines, no summary.
        let edges_only = requests.iter().all(|r| r.edges_only);
        let describe = |header: &Header| {
            if edges_only && !requests.iter().any(|r| r.named.contains(&header.id.get())) {
                String::new()
            } else {
                header.describe()
            }
        };
        let mut edges = Vec::new();
        // The coarse clock may be stale (refreshed by the monitor, which may be off, and by
        // workers that read the time): a dump is rare enough to read it afresh.
        self.shared.refresh_clock(started);
        let now_ms = self.shared.coarse_ms();
        let ready: std::collections::HashSet<usize> = self.run_queue.borrow().iter().map(|ready| ready.slot).collect();
        let mut answer = Answer::default();
        let slots = self.slots.borrow();
        let unstarted = self.deque.len() + self.local_new.borrow().len() + remote.pinned.len();
        let mut run: Option<(&'static std::panic::Location<'static>, std::borrow::Cow<'static, str>, Tally)> = None;
        for (index, slot) in slots.iter().enumerate() {
            let Some(Live { task, .. }) = &slot.live else { continue };
            answer.started += 1;
            // A look at the wait-for graph has no use for the others' headers: a million green
            // threads parked on I/O cost it a walk over the slots alone.
            if edges_only && !(slot.info.lock_wait || slot.info.parked == Some(ParkReason::Join)) {
                continue;
            }
            let header = task.header();
            // Parked by the state word, not by the slot's record: a green thread woken into
            // this worker's inbox is no longer waiting (a lock may even have been granted to
            // it: its holder cell would name itself). The number of its wait comes from the
            // same load: an edge's number is that of the wait it was seen parked in, never of
            // one begun after a wake that came between two loads.
            let parked_seq = header.parked_seq();
            let woken = slot.info.parked.is_some() && parked_seq.is_none();
            let parked = slot.info.parked.is_some() && !woken && !ready.contains(&index);
            // Read only while it is parked: then the frame that waits holds what the record
            // names (a join's target; for I/O, the borrow that keeps the fd open), and takes
            // the record back before it returns.
            let waiting_on = if parked {
                crate::park::WaitingOn::decode(header.waiting_on.load(Ordering::Relaxed))
            } else {
                crate::park::WaitingOn::Nothing
            };
            let edge = |to: u64, what: WaitFor| Edge {
                from: header.id.get(),
                to,
                who: describe(header),
                what,
                timed: slot.info.timed,
                seq: parked_seq.unwrap_or(0),
                shares_guards: header.shares_locally.load(Ordering::Relaxed),
            };
            if let crate::park::WaitingOn::Join(joining) = waiting_on {
                edges.push(edge(joining, WaitFor::Join));
            }
            let lock = header.waits_for_lock.load(Ordering::Relaxed);
            let lock_holder = if parked && !lock.is_null() {
                // SAFETY: the green thread is parked in the lock wait that set the pointer (it
                // clears it before that wait returns, and cannot run while this worker dumps),
                // and its frame there borrows the lock, so the holder cell is alive.
                Some(unsafe { &*lock }.load(Ordering::Relaxed))
            } else {
                None
            };
            if let Some(holder) =
                lock_holder.filter(|&h| h != 0 && h != crate::sync::wait::OS_THREAD && h != header.id.get())
            {
                edges.push(edge(holder, WaitFor::Lock));
            }
            if edges_only {
                continue;
            }
            let channel = match waiting_on {
                crate::park::WaitingOn::Channel(primitive, handles) => {
                    // SAFETY: the green thread is parked in the channel operation that recorded
                    // the address, whose frame borrows a handle of the channel; it takes the
                    // record back (`park::Recorded`) before the park returns, and cannot resume
                    // while this worker dumps (`park::ChannelHandles`).
                    let counts = unsafe { handles.as_ref() };
                    Some(ChannelWait {
                        id: handles.as_ptr().addr(),
                        sending: primitive == crate::park::Primitive::ChannelSend,
                        senders: counts.senders.load(Ordering::Relaxed),
                        receivers: counts.receivers.load(Ordering::Relaxed),
                    })
                }
                _ => None,
            };
            if let Some(wait) = &channel {
                answer.channels.entry(wait.id).or_default().add(wait, || header.describe());
            }
            let view = SlotView {
                ready: ready.contains(&index) || woken || self.forced_out.get() == Some(index),
                lock_holder,
                waiting_on,
                channel,
                stack_size: match header.stack_size {
                    0 => self.shared.config.stack_size,
                    n => n as usize,
                },
            };
            let state = state_of(&slot.info, &view);
            let listed = answer.listed.len() < max_listed;
            let holds_locks = header.locks_held.load(Ordering::Relaxed) > 0;
            if listed || holds_locks {
                let mut line = String::new();
                render_green_thread(&mut line, header, &slot.info, &view, &state, now_ms);
                if let Some(backtrace) = self.parked_at.borrow().get(&index).filter(|_| parked) {
                    render_backtrace(&mut line, backtrace);
                }
                if holds_locks {
                    answer.holders.push((header.id.get(), line.clone()));
                }
                if listed {
                    answer.listed.push(line);
                }
            }
            // Green threads come in runs of one spawn site and state (a server spawns its
            // handlers one after another): a run is hashed into the groups once.
            let this = Tally { count: 1, longest_ms: now_ms.saturating_sub(slot.info.since_ms) };
            match &mut run {
                Some((site, run_state, tally)) if std::ptr::eq(*site, header.spawned_at) && *run_state == state => {
                    tally.add(this)
                }
                _ => {
                    if let Some((site, state, tally)) = run.replace((header.spawned_at, state, this)) {
                        answer.groups.entry((site, state)).or_default().add(tally);
                    }
                }
            }
        }
        if let Some((site, state, tally)) = run {
            answer.groups.entry((site, state)).or_default().add(tally);
        }
        answer.heading = format!(
            "worker {}: {} started green thread(s), {unstarted} queued unstarted, {} timer(s)\n",
            self.index,
            answer.started,
            self.timers.borrow().len()
        );
        // The request that lists most takes the answer itself, after the others have their
        // copies: a full dump of a million green threads lists some 170 MB, not to be copied
        // while no green thread runs here (not for a look that came with it, which lists none).
        let last = requests.iter().enumerate().max_by_key(|(_, r)| r.max_listed).map_or(0, |(i, _)| i);
        let others = requests.iter().enumerate().filter(|&(i, _)| i != last);
        for (i, request) in others.chain(std::iter::once((last, &requests[last]))) {
            for edge in &edges {
                request.edge(edge.clone());
            }
            let mut mine = if i == last { std::mem::take(&mut answer) } else { answer.with_listed(request.max_listed) };
            mine.listed.truncate(request.max_listed);
            request.answered_in(started.elapsed());
            request.answer(self.index, mine);
        }
    }

    // ---- shutdown ----------------------------------------------------------------------

    /// Cancels every started green thread of this worker, those that hold green locks first
    /// (`Header::locks_held`): they unwind first and let go of their locks, which a destructor
    /// of another may need, and which it could not wait for while it unwinds (rule 3).
    fn cancel_all(&self) {
        let slots = self.slots.borrow();
        let holds = |index: usize| {
            slots
                .get(index)
                .and_then(|slot| slot.live.as_ref())
                .is_some_and(|Live { task, .. }| task.header().locks_held.load(Ordering::Relaxed) > 0)
        };
        for (index, slot) in slots.iter().enumerate() {
            if let Some(Live { task, .. }) = &slot.live
                && task.header().cancel()
            {
                self.push_ready_slot(index);
            }
        }
        // Those just pushed, and those that were ready already (not parked: `cancel` did not
        // push them): the holders among them go first.
        self.run_queue.borrow_mut().move_to_front(|ready| holds(ready.slot));
    }

    /// True when this worker may exit: nothing left anywhere, or the deadline passed (then
    /// whatever is left here is leaked, loudly).
    fn shutdown_finished(&self) -> bool {
        if self.shutdown_deadline.get().is_none() {
            self.maintenance();
            return false;
        }
        self.count_out_finished();
        // SeqCst: see `Shared::is_shutting_down_after_counting`.
        if self.shared.live.load(Ordering::SeqCst) == 0 {
            return true;
        }
        if self.shutdown_deadline.get().is_some_and(|d| Instant::now() >= d) {
            self.leak_remaining();
            return true;
        }
        false
    }

    fn leak_remaining(&self) {
        let mut slots = self.slots.borrow_mut();
        let (mut names, mut leaked, mut unreached) = (Vec::new(), 0usize, 0usize);
        let began_ms = self.shutdown_began_ms.get();
        for slot in slots.iter_mut() {
            if let Some(Live { task, co }) = slot.live.take() {
                leaked += 1;
                // Still in the park it was in before the shutdown began: woken by its
                // cancellation, it had not run since. (One that caught the cancellation and
                // parked again parked after the start; one that computes is not parked.)
                if slot.info.parked.is_some() && slot.info.since_ms < began_ms {
                    unreached += 1;
                }
                if names.len() < LEAKED_NAMED {
                    names.push(task.header().describe());
                }
                // Dropping the coroutine here would unwind it outside the rules of 3.7; leak
                // its stack and everything on it instead.
                std::mem::forget(co);
                std::mem::forget(task);
            }
        }
        self.shared.leaked.store(true, Ordering::Release);
        // The leaked headers point at `Shared`: it must outlive them, whoever drops the runtime.
        std::mem::forget(self.shared.clone());
        if leaked > 0 {
            if leaked > names.len() {
                names.push(format!("and {} more", leaked - names.len()));
            }
            // Cancelling a green thread (its wake, its unwind) takes some microseconds: a
            // million sleepers take seconds, and those the timeout cut off did nothing wrong.
            let unreached = if unreached > 0 {
                format!(
                    " {unreached} of them had not run since their cancellation: the worker had not got to them \
                     yet (each takes some microseconds to cancel and unwind), so a longer Builder::shutdown_timeout \
                     would have let them end."
                )
            } else {
                String::new()
            };
            crate::warn_even_without_logger(&format!(
                "green: worker {}: {} green thread(s) did not end within the shutdown timeout of {:?} and were \
                 leaked with their stacks and whatever they own (sockets, files): {}. A green thread ends at its \
                 next cancellation point once cancelled; one that catches the cancellation (catch_unwind around \
                 a blocking-looking call) and goes on, runs blocking code, or only computes (a tick is no \
                 cancellation point: a loop can stop when green::is_cancelled() says so), does not. \
                 Builder::shutdown_timeout sets the wait.{unreached}",
                self.index,
                leaked,
                self.shared.shutdown_timeout(),
                names.join(", ")
            ));
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Dump requests posted since the last look at them (or during a panic of the loop)
        // would otherwise wait for an answer that never comes.
        super::dump::close_dump_queue(self.remote(), self.index);
        // Unstarted `spawn_local` green threads (only a loop that ended abnormally leaves any):
        // their closures may be `!Send`, so they are dropped here, not by whichever thread
        // drops the last reference (a join handle can be anywhere).
        while let Some(task) = self.local_new.get_mut().pop_front() {
            self.abandon(task, None);
        }
        self.count_out_finished();
        // Green threads still in slots here means the loop ended abnormally (a panic in the
        // runtime itself): dropping their coroutines would unwind them outside the rules of
        // rule 7 of docs/design.md, with corosensei's payload; leak them instead.
        if self.slots.get_mut().iter().any(|s| s.live.is_some()) {
            self.leak_remaining();
        }
        if self.shared.leaked.load(Ordering::Acquire) {
            // Leaked green threads may still point into this worker's stacks.
            let stacks = std::mem::replace(self.stacks.get_mut(), StackPool::new(self.shared.stacks.clone()));
            std::mem::forget(stacks);
        }
        self.timers.get_mut().clear();
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").field("index", &self.index).finish_non_exhaustive()
    }
}

/// What the budget saw during one resume of a green thread. Only the budget's slow path
/// writes it, and it counts a refill first, so a resume that left `refills` at zero left all of
/// it untouched.
#[derive(Debug, Default)]
pub(crate) struct ResumeAccounting {
    /// Times its budget ran out and was refilled.
    pub(crate) refills: Cell<u64>,
    /// Yields the budget forced.
    pub(crate) forced_yields: Cell<u32>,
    /// Its longest slice measured when the budget ran out.
    pub(crate) longest_slice: Cell<Duration>,
}

impl ResumeAccounting {
    /// Adds what was counted to the slot's figures and starts over.
    #[cold]
    fn fold_into(&self, info: &mut SlotInfo, budget: u32) {
        info.ticks = info.ticks.saturating_add(u64::from(budget).saturating_mul(self.refills.take()));
        info.forced_yields = info.forced_yields.saturating_add(self.forced_yields.take());
        let longest_us = u32::try_from(self.longest_slice.take().as_micros()).unwrap_or(u32::MAX);
        info.longest_slice_us = info.longest_slice_us.max(longest_us);
    }
}

/// The task pointer a coroutine body runs; see `Core::start`.
struct SlotTask(NonNull<Header>);

fn steal_one(mut steal: impl FnMut() -> Steal<TaskRef>) -> Option<TaskRef> {
    loop {
        match steal() {
            Steal::Success(task) => return Some(task),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

/// Asks the CPU to bring the cache line at `addr` in, if it can; never faults.
#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing into the program and never faults, whatever
    // the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}
