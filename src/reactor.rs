//! The reactor: each worker's poller, the fds registered with it, and the green threads
//! waiting on them.
//!
//! # Job
//!
//! A socket call that would block (`WouldBlock` from a non-blocking syscall) parks the green
//! thread instead, and the reactor wakes it when the fd is ready. Each worker's
//! `polling::Poller` (in its [`Remote`](crate::runtime::shared::Remote)) is at once its idle
//! sleep, the way other threads wake it (`notify`), and its readiness source.
//!
//! # Objects
//!
//! - [`Source`]: the one owner of an fd's registration (rule 5 of docs/design.md). Every socket type
//!   holds one next to the fd and drops it first: its `Drop` deletes the fd from the poller
//!   before the fd is closed.
//! - `State`: what a source shares with the reactor: the fd number, a readiness *tick* per
//!   direction, and under a mutex the registration and a FIFO list of waiters per direction
//!   (std lets several threads accept on one listener or read through `&TcpStream`).
//! - [`Reactor`]: one per worker: the poller, a table from poller keys to states, and (Linux)
//!   the timerfd that ends the worker's sleeps.
//! - [`CoreIo`]: the worker's side: its event buffers, when it last polled the OS, and the
//!   deadline its timer is armed for.
//!
//! # Keys
//!
//! A key is a table index and a generation. Removing an entry bumps its generation, so an
//! event collected before its fd was deleted (and maybe reused by a new socket) finds a
//! generation that does not match and is ignored. The highest index, `INDEX_MASK`, is never a
//! table's: no key is `usize::MAX`, which `polling` reserves for `notify`, and `INDEX_MASK`
//! itself (generation 0) is the key of the worker's own timer (Linux).
//!
//! # Modes
//!
//! - *Edge* (epoll and kqueue, the default): the fd is registered once for both directions,
//!   edge-triggered. No `epoll_ctl` per park.
//! - *Oneshot* (portable; `GREEN_POLL_MODE=oneshot` forces it for measurement): interest is
//!   armed for the directions that have waiters; an event disarms the whole fd, and the
//!   dispatcher re-arms whatever is still waited for.
//!
//! # The protocol of one wait
//!
//! 1. The green thread reads the direction's tick, then tries the non-blocking syscall.
//! 2. On `WouldBlock` it calls [`park::wait_for`]; its register closure runs on the green thread,
//!    under the source's lock: if the tick moved since step 1, an event came in after the
//!    attempt, so it does not park and retries. Otherwise it registers the fd with this
//!    worker's poller if it is not registered anywhere yet, pushes its waiter, and (oneshot)
//!    arms the interest. Arming and registering report readiness that is already there.
//! 3. The worker commits the park after the switch (rule 4); a wake that raced in is seen.
//! 4. The worker that owns the poller gets an event: under the source's lock it bumps the
//!    ticks of the ready directions and takes one waiter per ready direction (all of them on
//!    error or hang-up), re-arms in oneshot mode, and wakes them after the lock (through
//!    [`Waiter::wake`], which goes through the home worker's inbox if needed).
//! 5. The woken green thread takes its entry out of the list if it is still there (a timeout,
//!    a cancellation, or a spurious wake) and retries the syscall before anything else; a
//!    cancelled one unwinds instead, and first hands a readiness it was given to the next
//!    waiter.
//!
//! # States of one direction of a source
//!
//! | state | meaning | next |
//! |---|---|---|
//! | unregistered | no green thread has parked on the fd yet | the first park registers it: *waiting* |
//! | idle | registered, no waiter queued | a park: *waiting* |
//! | waiting | waiters queued (oneshot: interest armed) | an event takes one: *waiting* or *idle*; a timed-out or cancelled waiter takes itself out |
//!
//! The tick is a counter beside these states, not a state: it orders a green thread's
//! attempt against the last event, which is all the re-check of step 2 needs.
//!
//! # Rejected
//!
//! - Keys that are pointers to the state: a stale event would touch freed memory.
//! - Waking every waiter of a direction per event: a listener with a hundred acceptors would
//!   wake a hundred green threads per connection. One per event, and the baton in edge mode.
//! - Registering at socket creation: an `epoll_ctl` for every socket, most of which (a
//!   request answered at once) never wait, and on a worker chosen before anything is known.
//! - Believing a short stream read without knowing whether the peer's FIN had come: a FIN
//!   that arrived with the last data, its event already dispatched, leaves end of file pending
//!   with no event to come, and the reader parks forever (`tests/tcp_split.rs` hung). Events
//!   that say so (`EPOLLRDHUP`) are what make it safe (next section).
//! - Asking the kernel how much every read left (`TCP_INQ` and its control message): exact,
//!   but a `recvmsg` with a control message costs about 0.1 µs more per read than a plain
//!   `recv` here (440 against 325 ns for one that would block), and more with data to copy:
//!   `perf record` of an echo server at 1,000 connections put 3.6% of its samples in the
//!   kernel paths only `recvmsg` takes. It is used only where a short read cannot tell (next
//!   section).
//!
//! # Drained reads
//!
//! An echo server's loop reads a request, writes the answer, and reads again; that second
//! read finds nothing and says `WouldBlock`, a system call per request that only leads to
//! the park. A TCP read that comes back short (it took something, and less than one call
//! could take into its buffers) found the receive queue empty: the kernel copies what is
//! queued until the buffers are full. Such a read stores the tick it read before the call as
//! the source's *drained* mark, and the next read whose tick is still the marked one parks at
//! once. Only TCP: other stream sockets stop short for other reasons (a Unix socket at a
//! message that carries fds), so a `TcpStream` made from a socket it did not open asks the
//! kernel once which protocol it speaks.
//!
//! A read that fills its buffers cannot tell, and code that reads exact sizes (`read_exact`
//! of a frame or a length prefix) fills them every time. On Linux, whenever a full read is
//! followed by one that would block, the stream reads with `recvmsg` and `TCP_INQ`, whose
//! control message counts the bytes left (a FIN counts as one), and a read that left none
//! stores the mark too. Eight short reads in a row take it back to plain `recv`, about 0.1 µs
//! cheaper per read (`net/sys.rs`, `StreamReads`). Why nothing is lost:
//!
//! - Data queued after the kernel stopped copying (or counted what it left) raises an edge, and its event bumps the
//!   tick: the park's re-check sees the new tick, or the dispatcher finds the waiter and wakes
//!   it. Either way the read is tried. That includes segments that arrived during the read
//!   and waited in the socket's backlog: the read returns without them, and releasing the
//!   socket queues them and raises the edge.
//! - A FIN, or urgent data (the kernel stops a read at the urgent mark), raises an edge too,
//!   but it may have come with the data the short read took, its event dispatched before the
//!   read: then nothing would follow. So the events must say. In edge mode on Linux an fd is
//!   registered with `EPOLLRDHUP`, and an event reports the fd's whole state as it was
//!   collected: one that saw a FIN or urgent data sets the source's *ended* flag for good
//!   (before the tick moves), and an ended source stores no mark. A reset or an error reports
//!   a hang-up or an error, which sets *ended* too.
//! - `polling`'s own wait does not say: a readable event from it sets *read end unknown*,
//!   which also stops marks, until an event that says comes. A worker sleeps in that wait only
//!   if it could not make or arm its own timer, and collects with it what is left after
//!   `polling`'s notification. Oneshot mode registers through `polling`, so there every
//!   readable event is of that kind; so is every event elsewhere than Linux.
//! - A read that returns end of stream stores no mark; neither does any read after the stream
//!   was shut down for reading (`TcpStream::shutdown`, through any clone), whose event may
//!   have been dispatched already. A shutdown made through the raw fd is not seen: do it
//!   through the stream.
//! - An fd not registered anywhere gets no events, but it is registered at the park, and
//!   registering reports the readiness that is there already.
//! - Only the first attempt of a call is skipped: a park that cannot happen (a plain thread
//!   blocks in `poll(2)`, level-triggered; unwinding and the worker's stack make one attempt)
//!   and a deadline that passed both lead to the attempt the call would have made anyway.
//!
//! What changes for the user: after a drained read, data that arrived but whose event the
//! owning worker has not dispatched yet is read after that dispatch, not at once (a worker
//! stuck in blocking code delays it, as it delays every parked reader). With `SO_RCVLOWAT`
//! set, the kernel raises no edge below the mark, so a read waits for that many bytes, as a
//! blocking std read does. A socket whose reads the kernel redirects (kernel TLS, a BPF
//! sockmap), set up through the raw fd, is not supported: read it through std.
//!
//! # Invariants
//!
//! - A waiter is taken out of a list either by the dispatcher (which wakes it) or by its own
//!   green thread after the park; one that was taken and woken always retries the syscall, or
//!   (cancelled) wakes the next waiter, so a readiness is never spent on nobody. In edge mode
//!   nothing re-reports a level that is still there, so a call that succeeds while others wait
//!   wakes the next one (the baton).
//! - The fd of a registered state is open: the owner deletes the registration (under the
//!   lock) before it closes the fd, and the dispatcher touches the fd only under the lock
//!   while the registration is there.
//! - An fd is registered with at most one reactor: the one of the worker whose green thread
//!   first parked on it. Waiters homed on other workers are woken through their inboxes. When
//!   a worker exits, its reactor closes: its waiters are woken and the fds move to the poller
//!   of whichever worker parks on them next.
//! - Nothing here parks while unwinding or on a worker's own stack (rule 3): there the call
//!   returns an error that says why. On a plain OS thread it blocks in `poll(2)`, like std.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use polling::{Event, Events, PollMode, Poller};

use crate::park::{self, ParkReason, Waiter};
use crate::runtime::context;

/// How long a busy worker with fd waiters goes without asking the OS for readiness. A poll
/// that finds nothing is one `epoll_wait` on Linux (through `polling`'s wait, five system
/// calls on epoll, about 1 µs here): every 40 µs that is 2.5% of a core at most, and a socket
/// waits at most about this long behind green threads that only yield (`may` starves them,
/// measured). Well under the 50 µs default time slice.
pub(crate) const IO_POLL_INTERVAL: Duration = Duration::from_micros(40);

/// The first pause of a [`Source::write_rechecked`] wait before it tries again without an
/// event; each next pause doubles, up to [`RECHECK_MAX`]. A write that waits for room for
/// seconds thus costs a system call per half second, and a shutdown that no event reports is
/// seen within that time.
const RECHECK_FIRST: Duration = Duration::from_millis(10);
/// The longest pause of a [`Source::write_rechecked`] wait.
const RECHECK_MAX: Duration = Duration::from_millis(500);

/// Message when an I/O call would have to park while its green thread unwinds.
/// The error of an I/O call that would wait in a cancelled green thread of a `panic = "abort"`
/// build (`park::cancelled_without_unwind`).
pub(crate) const CANCELLED_WITHOUT_UNWIND: &str = "green: this I/O call would block in a cancelled green thread (its \
    runtime shuts down, or JoinHandle::cancel), and with panic = \"abort\" a cancellation cannot unwind it: every wait \
    that is a cancellation point fails at once instead. Return on this error; a green thread that goes on waiting is \
    left behind, with a warning, when its runtime's shutdown times out";

pub(crate) const WHILE_UNWINDING: &str = "green: this I/O call would block, and a green thread that is unwinding (a panic, \
    a cancellation, or a green::timeout deadline) never parks (it would carry the unwinding into every green thread \
    of its worker); it made one non-blocking attempt. In a destructor do only what cannot block, or finish the I/O \
    before the unwinding starts";

/// Message when an I/O call would have to park on a worker's own stack.
pub(crate) const ON_WORKER_STACK: &str = concat!(
    "green: this I/O call would block, and it runs ",
    on_worker_stack_where!(),
    ", where a green thread cannot park; it made one non-blocking attempt. Do the I/O outside that closure or \
     destructor"
);

/// Why an I/O call may not wait here, if it may not: on a worker's own stack, or in a green
/// thread that unwinds (rule 3 of docs/design.md). A plain thread may always wait.
pub(crate) fn cannot_park() -> Option<&'static str> {
    context::with_core(|core| match core {
        Some(core) if !core.in_green_thread() => Some(ON_WORKER_STACK),
        Some(_) if std::thread::panicking() => Some(WHILE_UNWINDING),
        Some(_) if park::cancelled_without_unwind() => Some(CANCELLED_WITHOUT_UNWIND),
        _ => None,
    })
}

/// Events one poll that does not wait collects at most (`CoreIo::poll_nonblocking`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const RAW_EVENTS: usize = 1024;

/// Bits of a key that hold the table index; the generation sits above them.
const INDEX_BITS: u32 = usize::BITS / 2;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;

/// A direction of readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Readable: data, a connection to accept, end of stream.
    Read = 0,
    /// Writable: room in the send buffer, a finished connect.
    Write = 1,
}

impl Direction {
    /// `read` or `write`, as a dump says it.
    pub(crate) fn verb(self) -> &'static str {
        match self {
            Direction::Read => "read",
            Direction::Write => "write",
        }
    }
}

/// How fds are registered; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Edge,
    Oneshot,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks but an allocation failure, which aborts.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---- the per-worker reactor ------------------------------------------------------------

/// One worker's poller and the fds registered with it. Shared: any thread registers,
/// arms, deletes; only the owning worker waits on the poller and dispatches.
#[derive(Debug)]
pub(crate) struct Reactor {
    /// The poller. Only the owning worker calls `wait` (one waiter at a time is all `polling`
    /// allows); `add`, `modify`, `delete` and `notify` come from any thread.
    pub(crate) poller: Poller,
    /// Edge or oneshot, fixed at creation.
    mode: Mode,
    /// Key → state of every fd registered here. Locked briefly to register, delete, and look
    /// up an event's key; never while a source's lock is wanted by the holder (order: a
    /// source's lock, then this one).
    table: Mutex<Table>,
    /// Waiters queued on fds registered here, over all of them: a busy worker polls the OS
    /// only when this is not zero. Changed under the sources' locks; read as a hint.
    waiters: AtomicUsize,
    /// Set once when the owning worker exits: nobody polls this reactor any more, and an fd
    /// registered here moves to the next worker that parks on it.
    closed: AtomicBool,
    /// The owning worker's timer for its sleeps, registered with the poller under
    /// [`TIMER_KEY`] (Linux; `None` if it could not be made). Made with the poller, so that a
    /// runtime has all its fds open once it is built.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    timer: Option<std::os::fd::OwnedFd>,
}

#[derive(Debug, Default)]
struct Table {
    entries: Vec<Entry>,
    free: Vec<usize>,
}

#[derive(Debug)]
struct Entry {
    generation: usize,
    state: Option<Arc<State>>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poller = Poller::new()?;
        let mode = if poller.supports_edge() && !oneshot_forced() { Mode::Edge } else { Mode::Oneshot };
        Ok(Reactor {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            timer: sleep_timer(&poller)
                .inspect_err(|e| {
                    log::warn!(
                        "green: no timerfd for a worker's sleeps ({e}): they go through polling's wait, five \
                         system calls each, and a TCP read after one of them always makes its own system call"
                    )
                })
                .ok(),
            poller,
            mode,
            table: Mutex::new(Table::default()),
            waiters: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        })
    }

    /// Registers `fd` under `key` for both directions, edge-triggered. On Linux this asks
    /// `epoll_ctl` directly, adding `EPOLLRDHUP` to what `polling` would ask for: the events
    /// `CoreIo::poll_raw` collects then say whether the peer has closed its side, which lets a
    /// short read count as drained (see "Drained reads").
    ///
    /// # Safety
    ///
    /// `fd` is open, and stays open until it is deleted from this poller.
    unsafe fn add_edge(&self, fd: RawFd, key: usize) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::fd::AsRawFd;
            let events = libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
            let mut event = libc::epoll_event { events: events as u32, u64: key as u64 };
            // SAFETY: the epoll fd is the poller's, open while `self` lives; `fd` is open (the
            // caller's promise); `event` is a valid `epoll_event` for the call.
            let r = unsafe { libc::epoll_ctl(self.poller.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
            if r == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        // SAFETY: the caller's promise.
        unsafe {
            self.poller.add_with_mode(fd, Event::all(key), PollMode::Edge)
        }
    }

    /// True once the owning worker has exited (see `closed`).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn insert(&self, state: Arc<State>) -> usize {
        let mut table = lock(&self.table);
        let index = match table.free.pop() {
            Some(index) => index,
            None => {
                table.entries.push(Entry { generation: 0, state: None });
                table.entries.len() - 1
            }
        };
        assert!(index < INDEX_MASK, "green: {INDEX_MASK} or more fds waited on through one worker at once");
        let entry = &mut table.entries[index];
        entry.state = Some(state);
        entry.generation << INDEX_BITS | index
    }

    fn remove(&self, key: usize) {
        let mut table = lock(&self.table);
        let index = key & INDEX_MASK;
        let entry = &mut table.entries[index];
        if entry.generation << INDEX_BITS | index == key && entry.state.take().is_some() {
            // A later event with the old key finds another generation and is ignored.
            entry.generation = (entry.generation + 1) & (usize::MAX >> INDEX_BITS);
            table.free.push(index);
        }
    }

    fn lookup(&self, key: usize) -> Option<Arc<State>> {
        let table = lock(&self.table);
        let index = key & INDEX_MASK;
        let entry = table.entries.get(index)?;
        (entry.generation << INDEX_BITS | index == key).then(|| entry.state.clone()).flatten()
    }

    /// Handles the events of one poll: bumps ticks, takes waiters, re-arms (oneshot), and
    /// wakes what it took. Returns how many waiters it woke.
    fn dispatch(&self, events: impl Iterator<Item = Readiness>, woken: &mut Vec<Waiter>) -> usize {
        for event in events {
            // A stale key (the fd was deleted after the event was collected) finds nothing.
            let Some(state) = self.lookup(event.key) else { continue };
            let mut inner = lock(&state.inner);
            // The source may have left this reactor since (closed, then moved).
            match &inner.registration {
                Some(reg) if reg.key == event.key && std::ptr::eq(&*reg.reactor, self) => {}
                _ => continue,
            }
            let all = event.hangup_or_error;
            // Before the tick moves: a reader that sees the new tick sees this too.
            if all || event.read_end == Some(true) {
                state.ended.store(true, Ordering::Relaxed);
            }
            match event.read_end {
                // An event reports the fd's whole state as it was collected: one that says
                // nothing of an end says none had come by then.
                Some(_) => state.read_end_unknown.store(false, Ordering::Relaxed),
                None if event.readable => state.read_end_unknown.store(true, Ordering::Relaxed),
                None => {}
            }
            if self.mode == Mode::Oneshot {
                inner.armed = [false; 2];
            }
            for (dir, ready) in [(Direction::Read, event.readable), (Direction::Write, event.writable)] {
                if ready {
                    state.ticks[dir as usize].fetch_add(1, Ordering::Release);
                    let take = if all { usize::MAX } else { 1 };
                    inner.take_waiters(&state, self, dir, take, woken);
                }
            }
            if self.mode == Mode::Oneshot
                && let Err(e) = inner.arm(&state)
            {
                // Cannot happen to a registered, open fd; wake its waiters so they see it.
                log::error!(
                    "green: could not watch fd {} again for readiness: {e}; was it closed by other code while green \
                     used it? Its waiters are woken to see",
                    state.fd
                );
                for dir in [Direction::Read, Direction::Write] {
                    inner.take_waiters(&state, self, dir, usize::MAX, woken);
                }
            }
        }
        let n = woken.len();
        for waiter in woken.drain(..) {
            waiter.wake();
        }
        n
    }

    /// The owning worker exits: nobody will poll here again. Wakes every waiter of every fd
    /// registered here; each retries, and parks on its own worker's poller if need be.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let states: Vec<Arc<State>> = lock(&self.table).entries.iter().filter_map(|e| e.state.clone()).collect();
        let mut woken = Vec::new();
        for state in states {
            let mut inner = lock(&state.inner);
            if inner.registration.as_ref().is_some_and(|r| std::ptr::eq(&*r.reactor, self)) {
                for dir in [Direction::Read, Direction::Write] {
                    state.ticks[dir as usize].fetch_add(1, Ordering::Release);
                    inner.take_waiters(&state, self, dir, usize::MAX, &mut woken);
                }
            }
        }
        for waiter in woken {
            waiter.wake();
        }
    }
}

/// One fd's readiness, from `polling`'s events or straight from `epoll_wait`.
#[derive(Debug, Clone, Copy)]
struct Readiness {
    key: usize,
    readable: bool,
    writable: bool,
    /// Hang-up or error: every waiter of a ready direction is woken, not one.
    hangup_or_error: bool,
    /// Whether the peer has closed its side or urgent data waits (`EPOLLRDHUP`, `EPOLLPRI`),
    /// where the event says so: events taken straight from `epoll_wait` for an fd registered
    /// here in edge mode. `None` for `polling`'s events, which do not say.
    read_end: Option<bool>,
}

impl From<Event> for Readiness {
    fn from(event: Event) -> Readiness {
        Readiness {
            key: event.key,
            readable: event.readable,
            writable: event.writable,
            hangup_or_error: event.is_interrupt() || event.is_err() == Some(true),
            read_end: None,
        }
    }
}

/// `GREEN_POLL_MODE=oneshot` selects the portable mode even where edge-triggered works;
/// `edge` (or nothing) leaves the choice to the platform; either in any case, as the other
/// variables' words are. Another value is warned about, once.
fn oneshot_forced() -> bool {
    static FORCED: OnceLock<bool> = OnceLock::new();
    *FORCED.get_or_init(|| {
        let Some(value) = std::env::var_os("GREEN_POLL_MODE") else { return false };
        let value = value.to_string_lossy();
        match value.trim().to_ascii_lowercase().as_str() {
            "oneshot" => true,
            "edge" | "" => false,
            _ => {
                crate::warn_even_without_logger(&format!(
                    "green: GREEN_POLL_MODE={} is neither `oneshot` nor `edge`; the edge-triggered mode is \
                     kept where the platform has it",
                    value.trim()
                ));
                false
            }
        }
    })
}

// ---- the worker's side -----------------------------------------------------------------

/// What a worker keeps for its reactor. Touched only by the worker's own thread (also from
/// its green threads, through the budget). Dropping it (the worker exits) closes the reactor.
pub(crate) struct CoreIo {
    reactor: Arc<Reactor>,
    /// Reused buffer for poller events.
    events: RefCell<Events>,
    /// Reused buffer for the events of a poll that does not wait (`poll_nonblocking`).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    raw_events: RefCell<Vec<libc::epoll_event>>,
    /// Reused buffer for the waiters one dispatch wakes.
    woken: RefCell<Vec<Waiter>>,
    /// When this worker last asked the OS for readiness.
    last_poll: Cell<Instant>,
    /// The deadline the reactor's timer is armed for, if any (it may have passed and fired).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    armed: Cell<Option<Instant>>,
}

/// The poller key of a worker's own timer: index `INDEX_MASK` is never a table index.
#[cfg(any(target_os = "linux", target_os = "android"))]
const TIMER_KEY: usize = INDEX_MASK;

impl CoreIo {
    pub(crate) fn new(reactor: Arc<Reactor>) -> CoreIo {
        CoreIo {
            reactor,
            events: RefCell::new(Events::new()),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            raw_events: RefCell::new(Vec::with_capacity(RAW_EVENTS)),
            woken: RefCell::new(Vec::new()),
            last_poll: Cell::new(Instant::now()),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            armed: Cell::new(None),
        }
    }

    /// Sleeps in the poller until an fd is ready, a notify, or `deadline`; then wakes the
    /// green threads whose fds are ready.
    ///
    /// On Linux the sleep asks `epoll_wait` directly, as a poll that does not wait does (see
    /// [`poll_nonblocking`](CoreIo::poll_nonblocking)), and the deadline is the worker's own
    /// timerfd, armed only when the deadline changes: one or two system calls, where
    /// `polling`'s wait makes five (it arms its timerfd for every timeout, and clears and
    /// re-arms its notification). And these events say whether a peer's end came (see
    /// "Drained reads"). A timerfd is exact; a timeout given to `epoll_wait` itself may end
    /// late by the thread's timer slack (50 µs by default).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(timer) = &self.reactor.timer {
            if let Some(deadline) = deadline {
                let now = Instant::now();
                if deadline <= now {
                    return self.poll_raw(false).map(drop);
                }
                if self.armed.get() != Some(deadline) {
                    if let Err(e) = arm(timer, deadline - now) {
                        log::warn!(
                            "green: could not arm a worker's timerfd ({e}); this sleep goes through polling's wait"
                        );
                        return self.poll(Some(deadline - now)).map(drop);
                    }
                    self.armed.set(Some(deadline));
                }
            }
            // With no deadline a timer still armed may wake the sleep for nothing: harmless.
            return self.poll_raw(true).map(drop);
        }
        self.poll(deadline.map(|d| d.saturating_duration_since(Instant::now()))).map(drop)
    }

    /// True if green threads wait on fds registered here.
    pub(crate) fn has_waiters(&self) -> bool {
        self.reactor.waiters.load(Ordering::Relaxed) > 0
    }

    /// For a worker that ran out of work: if green threads wait on fds here, polls without
    /// waiting (however recently it polled) and wakes whoever is ready. Returns true if it
    /// woke anyone.
    pub(crate) fn poll_now(&self) -> bool {
        if !self.has_waiters() {
            return false;
        }
        match self.poll_nonblocking() {
            Ok(n) => n > 0,
            Err(e) => {
                log::error!("green: waiting for I/O readiness (epoll_wait) failed: {e}");
                false
            }
        }
    }

    /// True if the OS was last asked at least [`IO_POLL_INTERVAL`] before `now`. Callers ask
    /// [`has_waiters`](CoreIo::has_waiters) first, which spares them the clock when nobody waits.
    pub(crate) fn poll_due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_poll.get()) >= IO_POLL_INTERVAL
    }

    /// For a busy worker: if green threads wait on fds here and the OS was last asked more
    /// than [`IO_POLL_INTERVAL`] ago, polls without waiting and wakes whoever is ready.
    /// Returns true if it woke anyone.
    pub(crate) fn poll_if_due(&self, now: Instant) -> bool {
        if !self.has_waiters() || !self.poll_due(now) {
            return false;
        }
        match self.poll_nonblocking() {
            Ok(n) => n > 0,
            Err(e) => {
                log::error!("green: waiting for I/O readiness (epoll_wait) failed: {e}");
                false
            }
        }
    }

    fn poll(&self, timeout: Option<Duration>) -> io::Result<usize> {
        // A wake inside a dispatch never polls again, so this borrow cannot be taken twice.
        // (Skipping a poll would be harmless but for `poll_raw`'s hand-back, which must run once
        // it has taken `polling`'s notification; it releases both borrows first.)
        let (Ok(mut events), Ok(mut woken)) = (self.events.try_borrow_mut(), self.woken.try_borrow_mut()) else {
            return Ok(0);
        };
        events.clear();
        let result = self.reactor.poller.wait(&mut events, timeout);
        self.last_poll.set(Instant::now());
        result?;
        // The worker's timer may be among the events (after a notification's hand-back): its
        // key is never a table's; it only ends sleeps.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let ready = events.iter().filter(|e| e.key != TIMER_KEY).map(Readiness::from);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let ready = events.iter().map(Readiness::from);
        Ok(self.reactor.dispatch(ready, &mut woken))
    }

    /// A poll that does not wait.
    ///
    /// `polling`'s wait costs five system calls on epoll (it arms a timerfd, and clears and
    /// re-arms its notification eventfd, each time); a busy or spinning worker polls often, so
    /// on Linux this asks `epoll_wait` directly, one system call. Only when that reports
    /// `polling`'s own notification or timer (key `usize::MAX`) does it also run `polling`'s wait,
    /// which clears and re-arms them (and resets the flag that lets `notify` write again), exactly
    /// as if it had collected the event itself. Only this worker ever waits on this poller.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn poll_nonblocking(&self) -> io::Result<usize> {
        self.poll_raw(false)
    }

    /// Asks `epoll_wait` directly for events, without waiting or (`sleep`) until one comes,
    /// and wakes whoever is ready; see [`poll_nonblocking`](CoreIo::poll_nonblocking).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn poll_raw(&self, sleep: bool) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let (Ok(mut raw), Ok(mut woken)) = (self.raw_events.try_borrow_mut(), self.woken.try_borrow_mut()) else {
            return Ok(0);
        };
        raw.clear();
        let timeout_ms = if sleep { -1 } else { 0 };
        let n = loop {
            // SAFETY: the buffer has room for `capacity` events, which the kernel writes at most;
            // the epoll fd is the poller's, open while `reactor` lives.
            let n = unsafe {
                libc::epoll_wait(
                    self.reactor.poller.as_raw_fd(),
                    raw.as_mut_ptr(),
                    raw.capacity() as libc::c_int,
                    timeout_ms,
                )
            };
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        // SAFETY: `epoll_wait` returned `n`, at most the `capacity` it was given, and wrote
        // that many entries from the start of the buffer; `epoll_event` is plain data.
        unsafe { raw.set_len(n) };
        self.last_poll.set(Instant::now());
        let polling_has_news = raw.iter().any(|ev| ev.u64 as usize == usize::MAX);
        // Only edge mode registers for `EPOLLRDHUP` (oneshot's arming goes through `polling`).
        let says_read_end = self.reactor.mode == Mode::Edge;
        // The timer's event only ends a sleep: edge-triggered, it needs no read.
        let ready = raw.iter().filter(|ev| !matches!(ev.u64 as usize, usize::MAX | TIMER_KEY)).map(|ev| {
            let flags = ev.events as libc::c_int;
            Readiness {
                key: ev.u64 as usize,
                readable: flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLPRI) != 0,
                writable: flags & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) != 0,
                hangup_or_error: flags & (libc::EPOLLHUP | libc::EPOLLERR) != 0,
                read_end: says_read_end.then_some(flags & (libc::EPOLLRDHUP | libc::EPOLLPRI) != 0),
            }
        });
        let mut woke = self.reactor.dispatch(ready, &mut woken);
        drop((raw, woken));
        if polling_has_news {
            debug_assert!(self.events.try_borrow_mut().is_ok() && self.woken.try_borrow_mut().is_ok());
            woke += self.poll(Some(Duration::ZERO))?;
        }
        Ok(woke)
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn poll_nonblocking(&self) -> io::Result<usize> {
        self.poll(Some(Duration::ZERO))
    }
}

impl Drop for CoreIo {
    fn drop(&mut self) {
        self.reactor.close();
    }
}

impl std::fmt::Debug for CoreIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreIo").field("last_poll", &self.last_poll.get()).finish_non_exhaustive()
    }
}

/// A timerfd on the monotonic clock (`Instant`'s), registered with `poller` edge-triggered
/// under [`TIMER_KEY`]: each expiry is one event, and nothing needs to read it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn sleep_timer(poller: &Poller) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: timerfd_create takes no pointers.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just made and is owned by nothing else.
    let timer = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut event = libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET) as u32, u64: TIMER_KEY as u64 };
    // SAFETY: both fds are open; `event` is a valid `epoll_event` for the call. The timer stays
    // registered until it is closed, which removes it from the epoll set.
    if unsafe { libc::epoll_ctl(poller.as_raw_fd(), libc::EPOLL_CTL_ADD, timer.as_raw_fd(), &mut event) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(timer)
}

/// Arms `timer` to expire once, `after` from now; `after` is not zero (that would disarm it).
/// A duration too long for `time_t` disarms it: it never expires.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn arm(timer: &std::os::fd::OwnedFd, after: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    debug_assert!(!after.is_zero());
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    let value = match libc::time_t::try_from(after.as_secs()) {
        Ok(secs) => libc::timespec { tv_sec: secs, tv_nsec: after.subsec_nanos() as _ },
        Err(_) => zero,
    };
    let spec = libc::itimerspec { it_interval: zero, it_value: value };
    // SAFETY: the fd is open, `spec` is a valid itimerspec, and a null old value is allowed.
    if unsafe { libc::timerfd_settime(timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ---- a source -----------------------------------------------------------------------------

/// What a source shares with the reactors.
#[derive(Debug)]
struct State {
    /// The fd. Open while `registration` is set (see the module invariants).
    fd: RawFd,
    /// Per direction, bumped by every event that reports it ready (under `inner`'s lock).
    /// A green thread reads it before its syscall; if it moved by the time it would park, an
    /// event came in between and it retries instead.
    ticks: [AtomicU32; 2],
    /// Per direction, the length of `inner.waiters` (written under the lock): lets a
    /// successful call see without the lock whether anyone waits behind it.
    queued: [AtomicUsize; 2],
    /// [`drained_mark`] of the read tick seen before the last read that reported the receive
    /// queue empty (no data, and no FIN, behind it); 0 for none. See "Drained reads".
    drained: AtomicU64,
    /// Set (for good) by the first event that reports a hang-up, an error, the peer's end of
    /// stream or urgent data: from then on a drained read is not believed, since the event
    /// that would follow it has come already.
    ended: AtomicBool,
    /// True while the last readable event came from `polling`, which does not say whether it
    /// reported the peer's end of stream: a drained read is not believed until an event that
    /// says comes. See "Drained reads".
    read_end_unknown: AtomicBool,
    inner: Mutex<Inner>,
}

impl State {
    /// The state of `fd`, not registered anywhere, with no event seen.
    fn new(fd: RawFd) -> State {
        State {
            fd,
            ticks: [AtomicU32::new(0), AtomicU32::new(0)],
            queued: [AtomicUsize::new(0), AtomicUsize::new(0)],
            drained: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            read_end_unknown: AtomicBool::new(false),
            inner: Mutex::new(Inner::default()),
        }
    }
}

/// The value of `State::drained` for read tick `tick`: never 0.
fn drained_mark(tick: u32) -> u64 {
    1 << 32 | u64::from(tick)
}

#[derive(Debug, Default)]
struct Inner {
    /// Where the fd is registered, if anywhere yet.
    registration: Option<Registration>,
    /// Waiters per direction, in arrival order, each with its token (increasing, so each list
    /// is sorted by token).
    waiters: [WaitList; 2],
    /// The next token.
    next_token: u64,
    /// Oneshot mode: the directions armed in the poller now (as far as we know: an event that
    /// is not dispatched yet has disarmed them already, and its dispatch re-arms).
    armed: [bool; 2],
}

/// The waiters of one direction of a source, in arrival order, each with its token. One at a
/// time is the common case (a connection's one reader): that one is kept inline, beside the
/// source's other state, and only a second makes the list allocate. A list per source in its
/// own allocation cost a connection 96 bytes (112 with the allocator's header) and each park
/// and wake one more cache line.
#[derive(Debug, Default)]
struct WaitList {
    /// The oldest waiter; `None` only when the list is empty.
    first: Option<(u64, Waiter)>,
    /// The waiters behind it, once there have been two at a time. Boxed so that a list that
    /// never had two costs one word here, not a `VecDeque`'s four.
    #[expect(clippy::box_collection, reason = "one word inline instead of four, for a rare case")]
    rest: Option<Box<VecDeque<(u64, Waiter)>>>,
}

impl WaitList {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.as_ref().map_or(0, |rest| rest.len())
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Queues `waiter` last; `token` must be larger than any queued.
    #[inline]
    fn push_back(&mut self, token: u64, waiter: Waiter) {
        if self.first.is_none() {
            self.first = Some((token, waiter));
        } else {
            self.push_behind(token, waiter);
        }
    }

    /// A second waiter or more: out of line, as rare.
    #[cold]
    #[inline(never)]
    fn push_behind(&mut self, token: u64, waiter: Waiter) {
        self.rest.get_or_insert_default().push_back((token, waiter));
    }

    fn pop_front(&mut self) -> Option<Waiter> {
        let (_, waiter) = self.first.take()?;
        self.first = self.rest.as_mut().and_then(|rest| rest.pop_front());
        Some(waiter)
    }

    /// Takes out the waiter queued with `token`, if it is still here.
    fn remove(&mut self, token: u64) -> bool {
        if self.first.as_ref().is_some_and(|(t, _)| *t == token) {
            self.pop_front();
            return true;
        }
        let Some(rest) = &mut self.rest else { return false };
        match rest.binary_search_by_key(&token, |(t, _)| *t) {
            Ok(i) => rest.remove(i).is_some(),
            Err(_) => false,
        }
    }
}

#[derive(Debug)]
struct Registration {
    reactor: Arc<Reactor>,
    key: usize,
}

impl Inner {
    /// Moves up to `n` waiters of `dir` to `woken`.
    fn take_waiters(&mut self, state: &State, reactor: &Reactor, dir: Direction, n: usize, woken: &mut Vec<Waiter>) {
        let list = &mut self.waiters[dir as usize];
        let mut took = 0;
        while took < n
            && let Some(waiter) = list.pop_front()
        {
            woken.push(waiter);
            took += 1;
        }
        state.queued[dir as usize].store(list.len(), Ordering::Release);
        reactor.waiters.fetch_sub(took, Ordering::Relaxed);
    }

    /// Oneshot mode: arms the directions that have waiters.
    fn arm(&mut self, state: &State) -> io::Result<()> {
        let want = [!self.waiters[0].is_empty(), !self.waiters[1].is_empty()];
        let Some(reg) = &self.registration else { return Ok(()) };
        if reg.reactor.mode != Mode::Oneshot || want == [false, false] {
            return Ok(());
        }
        // SAFETY: the fd is open while the registration is set (module invariants), and the
        // borrow ends with this call.
        let fd = unsafe { BorrowedFd::borrow_raw(state.fd) };
        reg.reactor.poller.modify_with_mode(fd, Event::new(reg.key, want[0], want[1]), PollMode::Oneshot)?;
        self.armed = want;
        Ok(())
    }
}

/// The owner of one fd's registration with a reactor. Create it next to the fd and drop it
/// before the fd is closed; see the module docs.
#[derive(Debug)]
pub(crate) struct Source {
    state: Arc<State>,
}

/// What one park attempt found.
enum Parked {
    /// Parked, or found a reason not to: retry the syscall.
    Retry,
    /// Could not park: this error.
    Failed(io::Error),
}

impl Source {
    /// A source for `fd`, not registered anywhere yet.
    ///
    /// The caller keeps `fd` open until the source is dropped.
    pub(crate) fn new(fd: RawFd) -> Source {
        Source { state: Arc::new(State::new(fd)) }
    }

    /// Runs `op` (a non-blocking syscall) until it does not return `WouldBlock`, parking in
    /// between; after `timeout`, returns `on_timeout()`. Ticks once, and every park is a
    /// cancellation point.
    #[inline]
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        on_timeout: fn() -> io::Error,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_hinted(dir, timeout, None, on_timeout, || op().map(|r| (r, false)))
    }

    /// [`io`](Source::io) for a write whose failure may come with no event: it also tries again
    /// after pauses of [`RECHECK_FIRST`] doubling to [`RECHECK_MAX`] while it waits. A Unix
    /// stream whose sending side is shut down (by this end, or by the peer's `shutdown(Read)`)
    /// while a write waits for room is reported neither writable nor hung up, so such a write
    /// would wait for good where std's returns `BrokenPipe`; a try that gives the error ends it.
    #[inline]
    pub(crate) fn write_rechecked<R>(
        &self,
        timeout: Option<Duration>,
        on_timeout: fn() -> io::Error,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_hinted(Direction::Write, timeout, Some(RECHECK_FIRST), on_timeout, || op().map(|r| (r, false)))
    }

    /// [`io`](Source::io) for a stream read that can tell whether it left the receive queue
    /// empty: `op` returns that flag beside its result. A FIN, urgent data or an error that
    /// came with the data is the events' to report (see "Drained reads"). After such a read, the next one parks at once, without the system
    /// call that would only have said `WouldBlock`, unless an event came in since (see
    /// "Drained reads" in the module docs).
    pub(crate) fn read_hinted<R>(
        &self,
        timeout: Option<Duration>,
        on_timeout: fn() -> io::Error,
        op: impl FnMut() -> io::Result<(R, bool)>,
    ) -> io::Result<R> {
        self.io_hinted(Direction::Read, timeout, None, on_timeout, op)
    }

    /// `recheck`: the first pause after which a wait tries `op` again without an event, doubling
    /// to [`RECHECK_MAX`] (see [`write_rechecked`](Source::write_rechecked)); `None` for none.
    #[inline]
    fn io_hinted<R>(
        &self,
        dir: Direction,
        timeout: Option<Duration>,
        mut recheck: Option<Duration>,
        on_timeout: fn() -> io::Error,
        mut op: impl FnMut() -> io::Result<(R, bool)>,
    ) -> io::Result<R> {
        if crate::coop::tick_op_spent() {
            self.checkpoint(on_timeout)?;
        }
        let state = &*self.state;
        let tick = &state.ticks[dir as usize];
        let mut deadline = None;
        // Only the first attempt may be skipped; any later one runs (a wait that could not
        // park, or a deadline that passed, gets the attempt it would have made otherwise).
        let mut may_skip = dir == Direction::Read;
        loop {
            let seen = tick.load(Ordering::Acquire);
            let skip = may_skip && state.drained.load(Ordering::Relaxed) == drained_mark(seen);
            may_skip = false;
            if !skip {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    result => {
                        if state.queued[dir as usize].load(Ordering::Acquire) > 0 {
                            self.pass_baton(dir);
                        }
                        return result.map(|(r, drained)| {
                            if dir == Direction::Read {
                                self.note_read(seen, drained);
                            }
                            r
                        });
                    }
                }
            }
            // The socket's own timeout, or the caller's `green::timeout` deadline if earlier: at
            // either, this call returns its timeout error (std's kind for it) rather than unwind.
            // One look at the clock per attempt: on the first, the reading that sets the
            // deadline also serves the check.
            let mut now = None;
            let (deadline, green_deadline) = *deadline.get_or_insert_with(|| {
                let own = timeout.and_then(|t| now.insert(Instant::now()).checked_add(t));
                let deadline = park::effective_deadline(own);
                (deadline, deadline != own)
            });
            if deadline.is_some_and(|d| now.unwrap_or_else(Instant::now) >= d) {
                if skip {
                    continue;
                }
                let e = on_timeout();
                // The same kind; an `Elapsed` inside tells the `green::timeout` deadline apart
                // from the socket's own timeout.
                return Err(if green_deadline { crate::deadline::elapsed_error(e.kind()) } else { e });
            }
            // With a recheck, the park also ends at the next try (the error deadline stays
            // `deadline`: ending there is only a try).
            let park_until = match recheck {
                None => deadline,
                Some(pause) => {
                    recheck = Some((pause * 2).min(RECHECK_MAX));
                    let next = now.unwrap_or_else(Instant::now).checked_add(pause);
                    [deadline, next].into_iter().flatten().min()
                }
            };
            match self.wait(dir, seen, park_until) {
                Ok(()) => {}
                Err(_) if skip => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// What a call that never has to wait looks at once per budget: a green thread reading from
    /// a peer that always has more (a bulk transfer over loopback, a proxy's fast side) would
    /// otherwise never see its cancellation or its `green::timeout` deadline, which only a wait
    /// looked at. Cancelled, it unwinds (under `panic = "abort"` it returns the error a wait
    /// gives there, [`CANCELLED_WITHOUT_UNWIND`]); past the deadline, the call returns its timeout error
    /// as at a wait, once (`deadline::budget_look` says when a later one unwinds).
    #[cold]
    #[inline(never)]
    fn checkpoint(&self, on_timeout: fn() -> io::Error) -> io::Result<()> {
        park::check_cancelled();
        // Where nothing unwinds (rule 7 under panic = "abort"), the cancellation fails the call
        // as it fails one that would wait.
        if park::cancelled_without_unwind() {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, CANCELLED_WITHOUT_UNWIND));
        }
        if crate::deadline::budget_look() {
            return Err(io::Error::new(on_timeout().kind(), crate::deadline::Elapsed));
        }
        Ok(())
    }

    /// After a read that saw tick `seen` and succeeded: stores the drained mark if it drained
    /// the queue (and the source has not ended), or clears one that is there. The clearing is
    /// not needed for the argument, but a mark that never outlives the reads after it cannot
    /// match a tick that wrapped around. Writes never touch the mark.
    #[inline]
    fn note_read(&self, seen: u32, drained: bool) {
        let state = &*self.state;
        if drained && !state.ended.load(Ordering::Relaxed) && !state.read_end_unknown.load(Ordering::Relaxed) {
            state.drained.store(drained_mark(seen), Ordering::Relaxed);
        } else if state.drained.load(Ordering::Relaxed) != 0 {
            state.drained.store(0, Ordering::Relaxed);
        }
    }

    /// Waits once until `dir` may be ready (a readiness event after tick `seen`), `deadline`,
    /// or a spurious wake. The caller retries its syscall whatever happened.
    pub(crate) fn wait(&self, dir: Direction, seen: u32, deadline: Option<Instant>) -> io::Result<()> {
        self.wait_as(self.state.fd, dir, seen, deadline)
    }

    /// [`Source::wait`] for a source that watches a duplicate of `shown`, the caller's fd:
    /// dumps name `shown`, the fd the caller knows (it borrows it for the wait, so it is open
    /// while the green thread parks here).
    pub(crate) fn wait_as(&self, shown: RawFd, dir: Direction, seen: u32, deadline: Option<Instant>) -> io::Result<()> {
        enum Where {
            Os,
            Green,
            Cannot(&'static str),
        }
        let here = context::with_core(|core| match core {
            None => Where::Os,
            Some(core) if !core.in_green_thread() => Where::Cannot(ON_WORKER_STACK),
            Some(_) if std::thread::panicking() => Where::Cannot(WHILE_UNWINDING),
            Some(_) if park::cancelled_without_unwind() => Where::Cannot(CANCELLED_WITHOUT_UNWIND),
            Some(_) => Where::Green,
        });
        match here {
            Where::Os => poll_fd(self.state.fd, dir, deadline),
            Where::Cannot(why) => Err(io::Error::new(io::ErrorKind::WouldBlock, why)),
            Where::Green => {
                park::check_cancelled();
                // A caller that did not fold the `green::timeout` deadline into its own has no
                // timeout error for it: unwind to the `timeout`, as other calls without one do.
                let effective = park::effective_deadline(deadline);
                if effective != deadline {
                    park::cancellation_point();
                }
                // Until that deadline too, should it pass before the park: the retry then
                // meets it at this cancellation point. (Not unwinding, checked above: this is
                // `park::honoured_deadline`.)
                match self.park(shown, dir, seen, effective) {
                    Parked::Retry => Ok(()),
                    Parked::Failed(e) => Err(e),
                }
            }
        }
    }

    /// Whether an event has reported a hang-up, an error, or the end of reading (`EPOLLRDHUP`)
    /// for this source: its `ended` flag, set for good. A call that sees a tick sees the flag
    /// the same event set. Never set on a plain thread (no events), in oneshot mode or
    /// elsewhere than Linux (events that do not say) except by a hang-up or an error.
    pub(crate) fn ended(&self) -> bool {
        self.state.ended.load(Ordering::Relaxed)
    }

    /// The current tick of `dir`, to pass to [`Source::wait`] after a `WouldBlock`.
    pub(crate) fn tick(&self, dir: Direction) -> u32 {
        self.state.ticks[dir as usize].load(Ordering::Acquire)
    }

    fn park(&self, shown: RawFd, dir: Direction, seen: u32, deadline: Option<Instant>) -> Parked {
        let state = &*self.state;
        let mut token = None;
        let mut failed = None;
        // For dumps, set as the park is decided: the fd this green thread waits on (the caller's
        // borrow of the socket, or of the fd a duplicate was made of, keeps it open meanwhile).
        let mut _edge = None;
        park::wait_for(
            ParkReason::Io,
            |waiter| {
                context::with_core(|core| {
                    let core = core.expect(internal_error!("an I/O wait parked outside a worker thread"));
                    let reactor = &core.shared.remotes[core.index].reactor;
                    let mut inner = lock(&state.inner);
                    if state.ticks[dir as usize].load(Ordering::Relaxed) != seen {
                        return false; // An event came after the attempt: retry it.
                    }
                    if let Err(e) = self.ensure_registered(&mut inner, reactor, dir) {
                        failed = Some(e);
                        return false;
                    }
                    let t = inner.next_token;
                    inner.next_token += 1;
                    let list = &mut inner.waiters[dir as usize];
                    list.push_back(t, waiter);
                    state.queued[dir as usize].store(list.len(), Ordering::Release);
                    let reg = inner.registration.as_ref().expect(internal_error!("an I/O wait lost its registration"));
                    reg.reactor.waiters.fetch_add(1, Ordering::Relaxed);
                    if reg.reactor.mode == Mode::Oneshot
                        && !inner.armed[dir as usize]
                        && let Err(e) = inner.arm(state)
                    {
                        self.remove_waiter(&mut inner, dir, t);
                        failed = Some(e);
                        return false;
                    }
                    token = Some(t);
                    _edge = Some(park::WaitEdge::io(core, shown, dir));
                    true
                })
            },
            deadline,
        );
        // Woken by a timeout, a cancellation or spuriously, our entry is still there. An empty
        // list (the usual case: the dispatcher took us) cannot hold it: skip the lock.
        let taken = token.is_some_and(|t| {
            state.queued[dir as usize].load(Ordering::Acquire) == 0
                || !self.remove_waiter(&mut lock(&state.inner), dir, t)
        });
        if let Some(e) = failed {
            return Parked::Failed(e);
        }
        // A cancelled green thread unwinds from the park (rule 7 of docs/design.md) instead of
        // retrying: the retry could take a connection, a datagram or data, which its unwinding
        // frame would then drop while another green thread waits for it. A readiness it was
        // handed goes on to the next waiter, as after a call that succeeds.
        if token.is_some() && park::cancelled_here() {
            if taken {
                self.pass_baton(dir);
            }
            park::check_cancelled();
        }
        Parked::Retry
    }

    /// Takes the waiter queued with `token` out of its list; false if it was not there (the
    /// dispatcher, a baton or a closing reactor took it).
    fn remove_waiter(&self, inner: &mut Inner, dir: Direction, token: u64) -> bool {
        let list = &mut inner.waiters[dir as usize];
        if !list.remove(token) {
            return false;
        }
        self.state.queued[dir as usize].store(list.len(), Ordering::Release);
        if let Some(reg) = &inner.registration {
            reg.reactor.waiters.fetch_sub(1, Ordering::Relaxed);
        }
        true
    }

    /// Registers the fd with `reactor` (the current worker's) unless it is registered with a
    /// live one already; moves it off a closed one.
    #[inline]
    fn ensure_registered(&self, inner: &mut Inner, reactor: &Arc<Reactor>, dir: Direction) -> io::Result<()> {
        match &inner.registration {
            Some(reg) if !reg.reactor.closed.load(Ordering::SeqCst) => Ok(()),
            _ => self.register(inner, reactor, dir),
        }
    }

    /// [`Source::ensure_registered`] once it is known to be needed: out of line, so that the
    /// park of a registered source (every park but a source's first) keeps a small frame.
    #[cold]
    #[inline(never)]
    fn register(&self, inner: &mut Inner, reactor: &Arc<Reactor>, dir: Direction) -> io::Result<()> {
        if inner.registration.is_some() {
            self.deregister(inner);
        }
        let key = reactor.insert(self.state.clone());
        // Oneshot: this direction, and any other whose waiters stayed queued while the fd moved
        // off a closed reactor (nothing else would arm it for them).
        let want = [
            dir == Direction::Read || !inner.waiters[0].is_empty(),
            dir == Direction::Write || !inner.waiters[1].is_empty(),
        ];
        let added = match reactor.mode {
            // SAFETY: the fd is open now, and `Source`'s owner keeps it open until the source
            // is dropped, whose `deregister` deletes it from this poller first (rule 5).
            Mode::Edge => unsafe { reactor.add_edge(self.state.fd, key) },
            // SAFETY: as above.
            Mode::Oneshot => unsafe {
                reactor.poller.add_with_mode(self.state.fd, Event::new(key, want[0], want[1]), PollMode::Oneshot)
            },
        };
        if let Err(e) = added {
            reactor.remove(key);
            return Err(registration_error(self.state.fd, e));
        }
        inner.armed = if reactor.mode == Mode::Edge { [true, true] } else { want };
        let queued: usize = inner.waiters.iter().map(WaitList::len).sum();
        reactor.waiters.fetch_add(queued, Ordering::Relaxed);
        inner.registration = Some(Registration { reactor: reactor.clone(), key });
        Ok(())
    }

    /// Deletes the registration, if any. Waiters stay queued (counted nowhere) until they
    /// take themselves out or are moved with the fd.
    fn deregister(&self, inner: &mut Inner) {
        if let Some(reg) = inner.registration.take() {
            // SAFETY: the fd is open while the registration is set (module invariants).
            let fd = unsafe { BorrowedFd::borrow_raw(self.state.fd) };
            if let Err(e) = reg.reactor.poller.delete(fd) {
                log::error!(
                    "green: could not stop watching fd {} for readiness: {e}; was it closed by other code while \
                     green used it?",
                    self.state.fd
                );
            }
            reg.reactor.remove(reg.key);
            let queued: usize = inner.waiters.iter().map(WaitList::len).sum();
            reg.reactor.waiters.fetch_sub(queued, Ordering::Relaxed);
            inner.armed = [false; 2];
        }
    }

    /// Edge mode's baton: a call succeeded while others wait in the same direction. Nothing
    /// will report the readiness that may be left, so wake the next one; it retries.
    fn pass_baton(&self, dir: Direction) {
        let mut woken = Vec::new();
        {
            let mut inner = lock(&self.state.inner);
            let Some(reg) = &inner.registration else { return };
            if reg.reactor.mode != Mode::Edge {
                return; // Oneshot re-arms while waiters remain: the poller reports it.
            }
            let reactor = reg.reactor.clone();
            inner.take_waiters(&self.state, &reactor, dir, 1, &mut woken);
        }
        for waiter in woken {
            waiter.wake();
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let mut inner = lock(&self.state.inner);
        self.deregister(&mut inner);
        inner.waiters = Default::default();
    }
}

/// The error for an fd the poller refuses.
fn registration_error(fd: RawFd, e: io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) => io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "green: fd {fd} cannot be waited on: epoll does not support it (EPERM; regular files and \
                 directories are always ready). Read it directly, or with green::spawn_blocking for slow media"
            ),
        ),
        Some(libc::ENOSPC) => io::Error::new(
            e.kind(),
            format!(
                "green: fd {fd} cannot be registered with epoll: this user's limit of watched fds \
                 (fs.epoll.max_user_watches) is reached ({e}); close idle sockets, or raise it: \
                 sysctl -w fs.epoll.max_user_watches=N"
            ),
        ),
        Some(libc::ENOMEM) => io::Error::new(
            e.kind(),
            format!("green: fd {fd} cannot be registered with epoll: the kernel is out of memory ({e})"),
        ),
        // Kept as it is, so that callers can tell `EEXIST` (see `io.rs`).
        _ => e,
    }
}

/// Blocks this OS thread in `poll(2)` until `fd` is ready in `dir`, `deadline` passes, or a
/// signal interrupts; the caller retries its syscall either way.
pub(crate) fn poll_fd(fd: RawFd, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut pollfd = libc::pollfd { fd, events, revents: 0 };
    let timeout_ms = match deadline {
        None => -1,
        Some(d) => {
            // Round up, so that a wait does not end a little before its deadline.
            let left = d.saturating_duration_since(Instant::now());
            left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
        }
    };
    // SAFETY: `pollfd` is a valid array of one element for the duration of the call.
    let rc = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if pollfd.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inline first waiter and the allocated rest behave as one FIFO list: order kept
    /// across the seam, removal by token from either part, the next in line moving up.
    #[test]
    fn a_wait_list_is_one_fifo_across_its_inline_first_and_its_rest() {
        let thread = std::thread::current();
        let mut list = WaitList::default();
        assert!(list.is_empty() && list.pop_front().is_none() && !list.remove(0));
        for token in 1..=5 {
            list.push_back(token, Waiter::Os(thread.clone()));
        }
        assert_eq!(list.len(), 5);
        assert!(list.remove(3), "from the rest");
        assert!(!list.remove(3), "only once");
        assert!(list.remove(1), "the first");
        assert_eq!(list.first.as_ref().map(|(t, _)| *t), Some(2), "the next moved up");
        assert_eq!(list.len(), 3);
        let mut tokens = Vec::new();
        while let Some((t, _)) = list.first.as_ref() {
            tokens.push(*t);
            list.pop_front();
        }
        assert_eq!(tokens, [2, 4, 5]);
        assert!(list.is_empty());
        assert_eq!(list.len(), 0);
        // Empty again, the next waiter goes inline.
        list.push_back(6, Waiter::Os(thread));
        assert_eq!((list.len(), list.first.as_ref().map(|(t, _)| *t)), (1, Some(6)));
    }

    /// A poll that does not wait, or a sleep taken straight from `epoll_wait`, that collects
    /// `polling`'s notification hands it back to `polling`, so the next `notify` still wakes a
    /// sleeping worker; a timed sleep lasts its time. The same through `polling`'s own wait,
    /// which a worker without its timerfd uses (and every platform but Linux).
    #[test]
    fn a_notification_seen_by_a_poll_that_does_not_wait_is_not_lost() {
        fn wait(io: &CoreIo, timeout: Option<Duration>) -> io::Result<()> {
            io.wait(timeout.map(|t| Instant::now() + t))
        }
        fn polling_wait(io: &CoreIo, timeout: Option<Duration>) -> io::Result<()> {
            io.poll(timeout).map(drop)
        }
        type Sleep = fn(&CoreIo, Option<Duration>) -> io::Result<()>;
        for (name, sleep) in [("wait", wait as Sleep), ("polling's wait", polling_wait)] {
            let io = CoreIo::new(Arc::new(Reactor::new().unwrap()));
            for _ in 0..3 {
                io.reactor.poller.notify().unwrap();
                assert_eq!(io.poll_nonblocking().unwrap(), 0);
                // Consumed: a poll now finds nothing.
                let start = Instant::now();
                sleep(&io, Some(Duration::from_millis(20))).unwrap();
                assert!(
                    start.elapsed() >= Duration::from_millis(20),
                    "{name}: early, or a notification reported twice"
                );
                // And the next one wakes a sleep at once, which hands it back in turn.
                io.reactor.poller.notify().unwrap();
                let start = Instant::now();
                sleep(&io, Some(Duration::from_secs(10))).unwrap();
                assert!(start.elapsed() < Duration::from_secs(5), "{name}: a notify after a poll was lost");
                io.reactor.poller.notify().unwrap();
                let start = Instant::now();
                sleep(&io, None).unwrap();
                assert!(start.elapsed() < Duration::from_secs(5), "{name}: a notify after a sleep was lost");
            }
        }
    }

    /// The worker's timer follows its deadline: a sleep ends at its own deadline even when the
    /// timer was armed for a later one, not before it, and a deadline already passed does not
    /// sleep at all.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_sleep_ends_at_its_own_deadline_whatever_the_timer_was_armed_for() {
        let io = CoreIo::new(Arc::new(Reactor::new().unwrap()));
        assert!(io.reactor.timer.is_some(), "a worker has its own timer on Linux");
        // Armed a minute ahead; a notify ends that sleep.
        io.reactor.poller.notify().unwrap();
        io.wait(Some(Instant::now() + Duration::from_secs(60))).unwrap();
        // An earlier deadline: the timer is re-armed, and nothing else can end the sleep.
        let deadline = Instant::now() + Duration::from_millis(20);
        io.wait(Some(deadline)).unwrap();
        let woke = Instant::now();
        assert!(woke >= deadline, "woke {:?} early", deadline - woke);
        assert!(woke < deadline + Duration::from_secs(10), "slept on to the minute's deadline");
        // The same deadline, passed (it fired): no sleep.
        let start = Instant::now();
        io.wait(Some(deadline)).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "a passed deadline slept");
        // A later one after the timer fired: armed again.
        let later = Instant::now() + Duration::from_millis(20);
        io.wait(Some(later)).unwrap();
        assert!(Instant::now() >= later, "woke early after the timer had fired");
    }

    /// Deadlines far beyond what the timer can count (a century, and 2^62 s, past the kernel's
    /// limit) arm it without an error and never end the sleep: a notify does.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_deadline_centuries_away_arms_the_timer_and_never_ends_the_sleep() {
        for far in [Duration::from_secs(100 * 365 * 24 * 3600), Duration::from_secs(1 << 62)] {
            let io = CoreIo::new(Arc::new(Reactor::new().unwrap()));
            let start = Instant::now();
            let deadline = start.checked_add(far).expect("Instant reaches 2^62 s ahead on 64-bit Linux");
            let reactor = io.reactor.clone();
            let notifier = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                reactor.poller.notify().unwrap();
            });
            io.wait(Some(deadline)).unwrap();
            notifier.join().unwrap();
            assert_eq!(io.armed.get(), Some(deadline), "{far:?}: not armed");
            assert!(start.elapsed() >= Duration::from_millis(50), "{far:?}: the sleep ended before the notify");
        }
    }

    /// The drained mark belongs to the read side: a write between two reads leaves it, so an
    /// echo loop's next read still parks without its `WouldBlock` call; a read that leaves
    /// something behind clears it.
    #[test]
    fn only_reads_set_and_clear_the_drained_mark() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;

        let (a, b) = UnixStream::pair().unwrap();
        let source = Source::new(a.as_raw_fd());
        let timed_out = || io::Error::from(io::ErrorKind::TimedOut);
        let mark = drained_mark(source.tick(Direction::Read));
        assert_eq!(source.read_hinted(None, timed_out, || Ok((3, true))).unwrap(), 3);
        assert_eq!(source.state.drained.load(Ordering::Relaxed), mark, "a drained read leaves its mark");
        assert_eq!(source.io(Direction::Write, None, timed_out, || Ok(5)).unwrap(), 5);
        assert_eq!(source.state.drained.load(Ordering::Relaxed), mark, "a write must not clear the read mark");
        // With the mark at the current tick the next read waits before it tries (on this plain
        // thread in poll(2)), so give it something to find.
        (&b).write_all(b"x").unwrap();
        let mut calls = 0;
        let n = source
            .read_hinted(None, timed_out, || {
                calls += 1;
                Ok((1, false))
            })
            .unwrap();
        assert_eq!((n, calls), (1, 1));
        assert_eq!(source.state.drained.load(Ordering::Relaxed), 0, "a read that left data clears the mark");
    }

    /// Edge mode on Linux: events from `epoll_wait` itself say whether the peer's end came, and
    /// a drained read is believed only while the last readable event said it had not; one from
    /// `polling`'s wait says nothing, and stops marks until one that says comes; one that says
    /// it came stops them for good.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn what_events_say_of_the_read_end_decides_whether_a_drained_read_is_believed() {
        use std::io::Write;
        use std::net::Shutdown;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;

        // Edge mode even when the tests run with GREEN_POLL_MODE=oneshot.
        let reactor = Arc::new(Reactor { mode: Mode::Edge, ..Reactor::new().unwrap() });
        let io = CoreIo::new(reactor.clone());
        let (a, b) = UnixStream::pair().unwrap();
        let source = Source::new(a.as_raw_fd());
        source.ensure_registered(&mut lock(&source.state.inner), &reactor, Direction::Read).unwrap();
        let state = &*source.state;
        let drained_read = || {
            let seen = source.tick(Direction::Read);
            source.note_read(seen, true);
            state.drained.load(Ordering::Relaxed) == drained_mark(seen)
        };
        // Registering reports the writable socket: an event that says no end came.
        assert_eq!(io.poll_nonblocking().unwrap(), 0);
        assert!(!state.read_end_unknown.load(Ordering::Relaxed));
        assert!(drained_read(), "no end came: believed");
        // Data, collected by `polling`'s wait.
        (&b).write_all(b"x").unwrap();
        io.poll(Some(Duration::from_secs(5))).unwrap();
        assert!(state.read_end_unknown.load(Ordering::Relaxed), "polling's event says nothing of the end");
        assert!(!drained_read(), "unknown: not believed");
        // More data, collected by `epoll_wait` itself.
        (&b).write_all(b"y").unwrap();
        io.poll_nonblocking().unwrap();
        assert!(!state.read_end_unknown.load(Ordering::Relaxed));
        assert!(drained_read(), "said again that no end came: believed");
        // The peer's end.
        b.shutdown(Shutdown::Write).unwrap();
        io.poll_nonblocking().unwrap();
        assert!(state.ended.load(Ordering::Relaxed), "EPOLLRDHUP ends the source");
        assert!(!drained_read(), "after the end: never believed");
        drop(source);
    }

    #[test]
    fn keys_are_never_the_notify_key_and_stale_keys_find_nothing() {
        let reactor = Reactor::new().unwrap();
        let a = Arc::new(State::new(0));
        let k1 = reactor.insert(a.clone());
        assert_ne!(k1, usize::MAX);
        assert!(reactor.lookup(k1).is_some());
        reactor.remove(k1);
        assert!(reactor.lookup(k1).is_none(), "a removed key must find nothing");
        let k2 = reactor.insert(a.clone());
        assert_eq!(k1 & INDEX_MASK, k2 & INDEX_MASK, "the slot is reused");
        assert_ne!(k1, k2, "with another generation");
        assert!(reactor.lookup(k1).is_none(), "the stale key must not find the new entry");
        assert!(reactor.lookup(k2).is_some());
        reactor.remove(k1); // removing with a stale key does nothing
        assert!(reactor.lookup(k2).is_some());
    }

    #[test]
    fn a_stale_event_after_fd_reuse_wakes_nobody() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;

        let reactor = Arc::new(Reactor::new().unwrap());
        let register = |source: &Source| {
            let mut inner = lock(&source.state.inner);
            source.ensure_registered(&mut inner, &reactor, Direction::Read).unwrap();
            inner.registration.as_ref().unwrap().key
        };
        // 1. An fd registered, made readable, and its event collected but not dispatched.
        let (a, b) = UnixStream::pair().unwrap();
        let source_a = Source::new(a.as_raw_fd());
        let old_key = register(&source_a);
        (&b).write_all(b"x").unwrap();
        let mut events = Events::new();
        reactor.poller.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(events.iter().map(|e| e.key).collect::<Vec<_>>(), [old_key]);
        // 2. The fd is deleted and closed, and its number reused by a new socket that has a
        //    waiter. (`dup3` reuses the number atomically: unit tests run in parallel, and a
        //    number left free for a moment could go to another test.)
        let old_fd = a.as_raw_fd();
        drop(source_a);
        let (fresh, d) = UnixStream::pair().unwrap();
        // SAFETY: both fds are open and ours; `old_fd`'s file (a's socket) is closed by dup3,
        // and `a` is forgotten below, so nothing closes `old_fd` twice.
        assert!(unsafe { libc::dup3(fresh.as_raw_fd(), old_fd, libc::O_CLOEXEC) } == old_fd);
        std::mem::forget(a);
        drop(fresh);
        // SAFETY: `old_fd` is open (a duplicate of the fresh socket) and owned by nothing else.
        let c = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(old_fd) };
        let source_c = Source::new(c.as_raw_fd());
        let new_key = register(&source_c);
        assert_eq!(new_key & INDEX_MASK, old_key & INDEX_MASK, "the table slot is reused");
        assert_ne!(new_key, old_key);
        {
            let mut inner = lock(&source_c.state.inner);
            inner.waiters[0].push_back(0, Waiter::Os(std::thread::current()));
            source_c.state.queued[0].store(1, Ordering::Release);
        }
        // 3. The stale event is dispatched: it finds another generation and wakes nobody.
        let mut woken = Vec::new();
        assert_eq!(reactor.dispatch(events.iter().map(Readiness::from), &mut woken), 0);
        assert_eq!(source_c.tick(Direction::Read), 0);
        assert_eq!(source_c.state.queued[0].load(Ordering::Acquire), 1);
        // 4. An event of the new socket does wake its waiter.
        (&d).write_all(b"y").unwrap();
        events.clear();
        reactor.poller.wait(&mut events, Some(Duration::from_secs(5))).unwrap();
        assert_eq!(reactor.dispatch(events.iter().map(Readiness::from), &mut woken), 1);
        assert_eq!(source_c.tick(Direction::Read), 1);
        drop(b);
    }
}
