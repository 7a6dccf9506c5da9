//! `Handle::dump`: every live green thread, what it is doing, and what it waits for.
//!
//! Only a worker may look at its own green threads (their slots are its alone), so a dump is a
//! request that each worker answers at its next turn of maintenance: the caller posts it to
//! every worker, wakes the sleeping ones, and waits up to [`ANSWER_TIMEOUT`] (parking, if it is
//! a green thread, so that its own worker can answer too). A worker that does not answer in
//! time is busy in one green thread: the dump says which, from what the worker publishes for
//! the monitor.
//!
//! To print a dump of a running server without changing its code, set `GREEN_DUMP_SIGNAL` to
//! the name of a signal (`USR1`, say) before the runtime starts: its handler only wakes a small
//! dump thread, which renders the dump and writes it to stderr.
//!
//! A suspended green thread's stack cannot be walked safely from another stack, so backtraces
//! of parked green threads are taken by each green thread as it parks, when the runtime is
//! built with `park_backtraces(true)` (or `GREEN_PARK_BACKTRACES=1`): several µs per park.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Handle;
use crate::park::{self, ParkReason, Waiter};

/// How long a dump waits for a worker to take up its request: one that has not by then is
/// busy in a green thread that does not yield.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a dump waits, past [`ANSWER_TIMEOUT`], for a worker that has taken up its request
/// to finish its answer. Answering runs no user code, so it ends; with a million green threads
/// on one worker it takes about a second (most of it listing lines: a capped dump is quicker).
/// The bound is only a backstop.
const ANSWER_FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Green threads listed by a dump printed on the dump signal, by the monitor's report of a
/// possible deadlock and by [`ShutdownTimedOut`](crate::ShutdownTimedOut): the summary counts
/// every green thread; past this many lines a server's stderr gets a note instead of one line
/// per green thread (a million make about 170 MB).
pub(crate) const REPORT_LISTED: usize = 1000;

/// Bookkeeping a worker keeps per started green thread, for dumps.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SlotInfo {
    /// Why it is parked, if it is.
    pub(crate) parked: Option<ParkReason>,
    /// Its park has a deadline (counted in the worker's `timed_parked`).
    pub(crate) timed: bool,
    /// Its park is a green lock's wait (counted in the worker's `lock_parked`).
    pub(crate) lock_wait: bool,
    /// The runtime's coarse clock (ms) when it last parked, or last ran after a park (or
    /// started): a green thread that only yields shows how long it has been busy.
    pub(crate) since_ms: u64,
    /// Ticks it has spent.
    pub(crate) ticks: u64,
    /// Its stack's highest address (corosensei's `base`).
    pub(crate) stack_base: usize,
    /// Bytes from its stack's lowest address (corosensei's `limit`) to `stack_base`.
    pub(crate) stack_len: u32,
    /// Yields the budget forced on it (saturating).
    pub(crate) forced_yields: u32,
    /// Its longest slice seen when its budget ran out, in µs (a lower bound of the real
    /// longest; saturating at about 71 minutes).
    pub(crate) longest_slice_us: u32,
}

impl SlotInfo {
    /// Its stack: lowest and highest address.
    pub(crate) fn stack(&self) -> (usize, usize) {
        (self.stack_base - self.stack_len as usize, self.stack_base)
    }
}

/// One dump request, shared by the caller and the workers.
#[derive(Debug)]
pub(crate) struct DumpRequest {
    /// Green threads to list at most, over all workers (`usize::MAX`: all).
    pub(crate) max_listed: usize,
    /// Only the wait-for graph's edges are wanted (the monitor's [`WaitLook`]): no lines, no
    /// summary, no syscalls; the answers are bare headings.
    pub(crate) edges_only: bool,
    /// For a look ([`DumpRequest::edges_only`]): the green threads whose edges carry their
    /// description, the others' being left empty (a million lock waiters would cost a million
    /// strings at every look otherwise).
    pub(crate) named: std::collections::HashSet<u64>,
    /// One answer per worker.
    answers: Mutex<Vec<Option<Answer>>>,
    /// Per worker: it has taken the request up (it answers without running a green thread in
    /// between, so it will answer).
    taken: Vec<AtomicBool>,
    /// When the request was made.
    asked: Instant,
    /// Per worker: how long after `asked` it took the request up, in ms.
    taken_after_ms: Vec<AtomicU64>,
    /// Workers that have not answered yet.
    remaining: AtomicUsize,
    /// The caller, parked until `remaining` is 0.
    waiter: Mutex<Option<Waiter>>,
    /// Edges of the wait-for graph the workers saw.
    edges: Mutex<Vec<Edge>>,
    /// The longest a worker took over its answer, in ns: what the request cost a worker, not
    /// counting the wait for one busy in a green thread to come to it.
    longest_answer_ns: AtomicU64,
}

/// What a parked green thread waits for from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitFor {
    /// To finish (a join).
    Join,
    /// To release a lock it holds.
    Lock,
}

/// An edge of the wait-for graph: green thread `from` (described as `who`) waits for `to`.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) who: String,
    pub(crate) what: WaitFor,
    /// The wait has a deadline: it ends by itself.
    pub(crate) timed: bool,
    /// The number of `from`'s wait (`Header::seq`): an edge seen twice with the same number
    /// is one wait that lasted from the first look to the second.
    pub(crate) seq: u32,
    /// `from` shares values with other green threads of its worker (`Header::shares_locally`):
    /// a lock guard it took may be another's now, so a lock whose holder cell names `from` may
    /// be let go of while `from` waits.
    pub(crate) shares_guards: bool,
}

impl DumpRequest {
    fn new(workers: usize, max_listed: usize, edges_only: bool) -> DumpRequest {
        DumpRequest {
            max_listed,
            edges_only,
            named: std::collections::HashSet::new(),
            answers: Mutex::new(vec![None; workers]),
            taken: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            asked: Instant::now(),
            taken_after_ms: (0..workers).map(|_| AtomicU64::new(0)).collect(),
            remaining: AtomicUsize::new(workers),
            waiter: Mutex::new(None),
            edges: Mutex::new(Vec::new()),
            longest_answer_ns: AtomicU64::new(0),
        }
    }

    /// An edge a worker saw: one of its parked green threads waits for another.
    pub(crate) fn edge(&self, edge: Edge) {
        self.edges.lock().unwrap_or_else(|e| e.into_inner()).push(edge);
    }

    /// Worker `worker` has taken the request up and is answering.
    pub(crate) fn take_up(&self, worker: usize) {
        let after = u64::try_from(self.asked.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.taken_after_ms[worker].store(after, Ordering::Relaxed);
        self.taken[worker].store(true, Ordering::Release);
    }

    /// True while a worker that has taken the request up has not answered yet.
    fn answering(&self) -> bool {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        (0..answers.len()).any(|w| answers[w].is_none() && self.taken[w].load(Ordering::Acquire))
    }

    /// A worker took `took` over its answer, from taking the request up (before
    /// [`DumpRequest::answer`]).
    pub(crate) fn answered_in(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.longest_answer_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// A worker's answer.
    pub(crate) fn answer(&self, worker: usize, answer: Answer) {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())[worker] = Some(answer);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waiter = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        }
    }
}

/// The spawn site and state of a green thread: its group in the summary.
pub(crate) type Group = (&'static Location<'static>, Cow<'static, str>);

/// What the summary says of one group: how many green threads it has, and the longest time one
/// of them has been in its state (parked: since its park began; ready or running: since it last
/// parked). A group of handlers all parked in a read for minutes (clients that never send), or
/// one whose oldest member is as old as the process (green threads that never end), stands out
/// from one that comes and goes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tally {
    /// Green threads in the group.
    pub(crate) count: usize,
    /// The longest time in ms one of them has been in the group's state.
    pub(crate) longest_ms: u64,
}

impl Tally {
    /// Adds `other` (more of the same group) to this one.
    pub(crate) fn add(&mut self, other: Tally) {
        self.count += other.count;
        self.longest_ms = self.longest_ms.max(other.longest_ms);
    }
}

/// One worker's answer to a dump request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer {
    /// Its opening line (`worker 0: 3 started green thread(s), ...`), newline included.
    pub(crate) heading: String,
    /// The lines of the green threads it lists, each with its backtrace if any: the first
    /// `max_listed` of the request.
    pub(crate) listed: Vec<String>,
    /// Its started green threads, listed or not.
    pub(crate) started: usize,
    /// How many of them share each spawn site and state, listed or not, and the longest in it.
    pub(crate) groups: HashMap<Group, Tally>,
    /// The line of each green thread that holds a green lock, listed or not (by id): a lock
    /// holder opens the dump with its line.
    pub(crate) holders: Vec<(u64, String)>,
    /// The channels its parked green threads wait on, listed or not, by [`ChannelWait::id`].
    pub(crate) channels: HashMap<usize, ChannelTally>,
}

impl Answer {
    /// An answer that is only its heading (a worker that cannot answer, or has exited).
    fn only(heading: String) -> Answer {
        Answer { heading, ..Answer::default() }
    }

    /// A copy with at most the first `max_listed` of its lines.
    pub(crate) fn with_listed(&self, max_listed: usize) -> Answer {
        Answer {
            heading: self.heading.clone(),
            listed: self.listed[..self.listed.len().min(max_listed)].to_vec(),
            started: self.started,
            groups: self.groups.clone(),
            holders: self.holders.clone(),
            channels: self.channels.clone(),
        }
    }
}

/// The channel a parked green thread waits on, as its worker read it for the dump (see
/// `park::ChannelHandles` for why it may).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChannelWait {
    /// The address of the channel's handle counts: the channel's name in the dump, the same
    /// for every green thread waiting on it while it lives.
    pub(crate) id: usize,
    /// It waits to send (the channel is full, or a rendezvous), not to receive.
    pub(crate) sending: bool,
    /// Live `Sender`s, as read.
    pub(crate) senders: usize,
    /// Live `Receiver`s, as read.
    pub(crate) receivers: usize,
}

impl ChannelWait {
    /// What the line of a green thread waiting on it ends with: the channel, and who could end
    /// the wait. A consumer waiting for good on a channel whose sender was kept alive (in a
    /// struct, a clone never dropped) shows here that a sender lives, not only that it waits.
    fn describe(&self, out: &mut String) {
        use std::fmt::Write;
        let Self { id, senders, receivers, .. } = *self;
        let _ = write!(out, "; waits on channel {id:#x}: ");
        let _ = match (self.sending, senders, receivers) {
            (false, 0, _) => write!(
                out,
                "no sender alive: the receive ends once a message handed to another receiver is taken or given back; \
                 {receivers} receiver(s)"
            ),
            (false, ..) => write!(
                out,
                "{senders} sender(s) alive: a receive ends only when one sends or the last is dropped; {receivers} \
                 receiver(s)"
            ),
            (true, ..) => write!(
                out,
                "{receivers} receiver(s) alive: a send ends only when one receives or the last is dropped; {senders} \
                 sender(s)"
            ),
        };
    }
}

/// Waiters that a dump names per channel, at most: enough to find who shares a channel.
const CHANNEL_WAITERS_NAMED: usize = 5;

/// The green threads parked on one channel, for the dump's closing section on channels that
/// several wait on.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelTally {
    /// Green threads parked in a receive on it.
    pub(crate) receiving: usize,
    /// Green threads parked in a send on it.
    pub(crate) sending: usize,
    /// Live `Sender`s and `Receiver`s, as one of its workers read them.
    pub(crate) senders: usize,
    pub(crate) receivers: usize,
    /// The first [`CHANNEL_WAITERS_NAMED`] waiters (`5 "consumer"`).
    pub(crate) named: Vec<String>,
}

impl ChannelTally {
    /// One more waiter, described by `who` (called for the first few only: a million
    /// consumers on one channel cost no allocation each).
    pub(crate) fn add(&mut self, wait: &ChannelWait, who: impl FnOnce() -> String) {
        if wait.sending {
            self.sending += 1;
        } else {
            self.receiving += 1;
        }
        (self.senders, self.receivers) = (wait.senders, wait.receivers);
        if self.named.len() < CHANNEL_WAITERS_NAMED {
            self.named.push(who());
        }
    }

    /// Adds the waiters another worker saw on the same channel.
    fn merge(&mut self, other: &ChannelTally) {
        self.receiving += other.receiving;
        self.sending += other.sending;
        (self.senders, self.receivers) = (other.senders, other.receivers);
        let room = CHANNEL_WAITERS_NAMED.saturating_sub(self.named.len());
        self.named.extend(other.named.iter().take(room).cloned());
    }
}

/// A snapshot of every live green thread of a runtime, from [`Handle::dump`]. Print it with
/// `{}`.
///
/// ```
/// green::run(|| {
///     let sleeper = green::Builder::new().name("napper".into()).spawn(|| green::sleep(std::time::Duration::from_secs(60))).unwrap();
///     green::sleep(std::time::Duration::from_millis(5));
///     let dump = green::Handle::current().dump().to_string();
///     assert!(dump.contains("\"napper\"") && dump.contains("parked (sleep)"), "{dump}");
///     sleeper.cancel();
/// });
/// ```
#[derive(Debug, Clone)]
pub struct Dump {
    text: String,
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What the worker knows of a green thread besides its header and slot info, for its line.
pub(crate) struct SlotView {
    /// In the run queue.
    pub(crate) ready: bool,
    /// Parked waiting for a lock: the holder recorded in the lock (a green thread id, 0 or
    /// `sync::wait::OS_THREAD`).
    pub(crate) lock_holder: Option<u64>,
    /// Parked: the green thread it joins, or the fd and direction of its I/O, as it recorded
    /// them (`Nothing` when it is not parked).
    pub(crate) waiting_on: park::WaitingOn,
    /// Parked on a channel: which, and its live handles.
    pub(crate) channel: Option<ChannelWait>,
    /// Usable stack size.
    pub(crate) stack_size: usize,
}

/// A green thread's state as its line and the summary name it: `ready`, `running`, `parked
/// (sleep)`, `parked (io, read)`, `parked (mutex held by green thread 5 "cache")`...
pub(crate) fn state_of(info: &SlotInfo, view: &SlotView) -> Cow<'static, str> {
    use park::WaitingOn;
    match (view.ready, info.parked, view.lock_holder, view.waiting_on) {
        (true, ..) => Cow::Borrowed("ready"),
        (false, Some(ParkReason::Join), _, WaitingOn::Join(joining)) => {
            Cow::Owned(format!("parked (join of green thread {joining})"))
        }
        // No holder recorded: a lock released since the wait began, or an `RwLock` held for
        // reading (readers are not recorded one by one). Neither is "nobody".
        (false, Some(_), Some(0), waiting_on) => Cow::Borrowed(match waiting_on {
            park::WaitingOn::Sync(park::Primitive::Mutex) => "parked (mutex just released)",
            park::WaitingOn::Sync(park::Primitive::RwLock) => "parked (rwlock held for reading, or just released)",
            _ => "parked (lock just released, or held by readers)",
        }),
        (false, Some(_), Some(holder), waiting_on) => {
            let lock = match waiting_on {
                park::WaitingOn::Sync(park::Primitive::Mutex) => "mutex held",
                park::WaitingOn::Sync(park::Primitive::RwLock) => "rwlock held for writing",
                _ => "lock held",
            };
            Cow::Owned(format!("parked ({lock} by {})", crate::sync::wait::describe_holder(holder)))
        }
        // The direction is part of the state, so that the summary of a dump sets a handler
        // blocked writing to a peer that stopped reading apart from the thousands that wait to
        // read a request.
        (false, Some(ParkReason::Io), None, WaitingOn::Io(_, dir)) => Cow::Borrowed(match dir {
            crate::reactor::Direction::Read => "parked (io, read)",
            crate::reactor::Direction::Write => "parked (io, write)",
        }),
        (false, Some(ParkReason::Sync), None, WaitingOn::Sync(primitive) | WaitingOn::Channel(primitive, _)) => {
            Cow::Borrowed(primitive.state())
        }
        // Spelled out, not formatted: a million green threads asleep cost a million allocations
        // otherwise (`ParkReason::name` gives the same words).
        (false, Some(reason), None, _) => Cow::Borrowed(match reason {
            ParkReason::Join => "parked (join)",
            ParkReason::Sleep => "parked (sleep)",
            ParkReason::User => "parked (park)",
            ParkReason::Sync => "parked (sync)",
            ParkReason::Io => "parked (io)",
            ParkReason::Blocking => "parked (blocking)",
            ParkReason::Signal => "parked (signal)",
            // The only other park: a dump's caller, waiting for the workers' answers.
            ParkReason::Other => "parked (taking a dump)",
        }),
        (false, None, ..) => Cow::Borrowed("running"),
    }
}

/// Formats one green thread's line, in state `state` (from [`state_of`]). Only for the lines
/// a dump prints: it reads the stack's resident pages and describes an fd waited on, a few
/// syscalls each.
pub(crate) fn render_green_thread(
    out: &mut String,
    header: &super::task::Header,
    info: &SlotInfo,
    view: &SlotView,
    state: &str,
    now_ms: u64,
) {
    use std::fmt::Write;
    // `since_ms` is the start of its park, or its first run after it: a green thread that runs
    // on, yielding, is "ready" or "running" long after it has last waited for anything. One
    // woken and not run since has waited from the start of its park, first for its wake and
    // then for its turn, in shares the worker does not know: its line says when the park
    // began, not how long it lasted.
    let (how_long, ago) = match (info.parked, view.ready) {
        (Some(_), false) => ("for", ""),
        (Some(_), true) => ("(woken) from a park begun", " ago"),
        (None, _) => ("and not parked for", ""),
    };
    let _ = write!(
        out,
        "  green thread {} spawned at {}: {state} {how_long} {} ms{ago}; {} ticks, {} forced yields, longest slice >= {} us",
        header.describe(),
        header.spawned_at,
        now_ms.saturating_sub(info.since_ms),
        info.ticks,
        info.forced_yields,
        info.longest_slice_us,
    );
    let (low, high) = info.stack();
    if let Some(pages) = resident_pages(low, high) {
        let _ = write!(out, ", {pages} stack pages touched of {} KiB", view.stack_size / 1024);
    }
    if header.is_cancelled() {
        out.push_str(", cancelled");
    }
    if let (Some(ParkReason::Io), park::WaitingOn::Io(fd, dir)) = (info.parked, view.waiting_on) {
        let _ = write!(out, "; waits to {} fd {fd} ({})", dir.verb(), crate::net::describe_fd(fd));
    }
    if let Some(channel) = &view.channel {
        channel.describe(out);
    }
    out.push('\n');
}

/// Appends a parked green thread's backtrace (taken as it parked), indented under its line:
/// the frames from where it parked down to its entry ([`green_thread_frames`]).
pub(crate) fn render_backtrace(out: &mut String, backtrace: &std::backtrace::Backtrace) {
    out.push_str("    parked at:\n");
    let text = backtrace.to_string();
    let (frames, trimmed) = green_thread_frames(&text);
    for line in &frames {
        out.push_str("      ");
        out.push_str(line);
        out.push('\n');
    }
    if trimmed && frames.is_empty() {
        // Release builds without debug info inline the green thread's closure, and the green
        // call it made, into the runtime's frames.
        out.push_str(
            "      (no frame between the runtime's own: inlined; a build with line tables shows them, see \
             runtime::Builder::park_backtraces)\n",
        );
    } else if trimmed {
        out.push_str("      (the runtime's frames above and below left out)\n");
    }
}

/// The lines of a park backtrace's frames that belong to the green thread, and whether any
/// were left out. Every green thread's backtrace opens with the same frames of the runtime's
/// park (from the worker's `record_park_backtrace`, which takes it, through `green::park`) and
/// ends with the same of its entry (`Task::run`, std's `catch_unwind`, the coroutine's frames
/// from corosensei's down to the worker's loop and `thread_start`): fifteen to twenty frames
/// that a thousand parked green threads would print a thousand times. What is kept runs from
/// the green call that parks (`Mutex::lock`, `Receiver::recv`) to the green thread's closure.
///
/// The frames are found in std's text (`Backtrace::frames` is not stable), by their symbol and,
/// for inlined frames whose symbol is short (`park`, `{closure#0}`), by their file. Only the
/// runtime's frames are matched, and only at the two ends; a text in which the two markers
/// (`record_park_backtrace` at the top, a corosensei frame below) are not found is kept whole.
fn green_thread_frames(text: &str) -> (Vec<&str>, bool) {
    let lines: Vec<&str> = text.lines().collect();
    // A frame opens with its number (`  12: symbol`); its `at file:line` lines follow.
    let opens_frame = |line: &str| {
        let line = line.trim_start();
        line.split_once(": ").is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| opens_frame(lines[i])).collect();
    // Frame `f`'s symbol and its first `at` line (empty if none).
    let frame = |f: usize| {
        let symbol = lines[starts[f]].trim_start().split_once(": ").map_or("", |(_, s)| s);
        let end = starts.get(f + 1).copied().unwrap_or(lines.len());
        let at = lines[starts[f] + 1..end].first().map_or("", |l| l.trim_start());
        (symbol, at)
    };
    let Some(top) = (0..starts.len()).position(|f| frame(f).0.contains("record_park_backtrace")) else {
        return (lines, false);
    };
    let Some(bottom) = (0..starts.len()).position(|f| frame(f).0.contains("corosensei")) else {
        return (lines, false);
    };
    // The runtime's park and entry: its modules `runtime` and `park`, by symbol or by file.
    let runtime = |f: usize| {
        let (symbol, at) = frame(f);
        let symbol = symbol.trim_start_matches('<');
        symbol.starts_with("green::runtime::")
            || symbol.starts_with("green::park::")
            || (at.starts_with("at ") && (at.contains("/src/runtime/") || at.contains("/src/park.rs:")))
    };
    // std's `catch_unwind` around the green thread's closure, in the entry.
    let unwind = |f: usize| {
        let (symbol, at) = frame(f);
        ["catch_unwind", "do_call", "__rust_try", "AssertUnwindSafe"].iter().any(|s| symbol.contains(s))
            || at.contains("/panic/unwind_safe.rs:")
    };
    // The entry itself, which the park's frames stop above.
    let entry = |f: usize| {
        let (symbol, at) = frame(f);
        symbol.trim_start_matches('<').starts_with("green::runtime::task::") || at.contains("/src/runtime/task.rs:")
    };
    let mut first = top + 1;
    while first < bottom && runtime(first) && !entry(first) {
        first += 1;
    }
    // The entry: the first frame of the runtime below the park's, and std's frames above it.
    let mut last = (first..bottom).find(|&f| runtime(f)).unwrap_or(bottom);
    while last > first && unwind(last - 1) {
        last -= 1;
    }
    (lines[starts[first]..starts[last]].to_vec(), true)
}

/// Pages of `[low, high)` that are resident, or `None` if the kernel will not say.
pub(crate) fn resident_pages(low: usize, high: usize) -> Option<usize> {
    let page = crate::stack::page_size();
    let start = low & !(page - 1);
    let len = high.checked_sub(start)?;
    let pages = len.div_ceil(page);
    let mut vec = vec![0u8; pages];
    // SAFETY: mincore only reads the page tables of `[start, start + len)` (an unmapped range
    // gives ENOMEM, not undefined behaviour) and writes one byte per page into `vec`, which has
    // exactly that many.
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, len, vec.as_mut_ptr()) };
    (rc == 0).then(|| vec.iter().filter(|b| *b & 1 == 1).count())
}

impl Handle {
    /// Every live green thread of the runtime with its id, name, spawn site, state (running,
    /// ready, parked and on what), for how long, ticks used, forced yields, longest slice and
    /// stack pages touched; and the green threads queued unstarted (each worker's, on its
    /// heading; those spawned from outside the workers and not yet taken by one, on the
    /// dump's first line). With 50 green threads or
    /// more it opens with a summary: how many share each spawn site and state, the ten largest
    /// groups first (ten thousand handlers parked in the same read make one line there, and the
    /// few green threads doing something else stand out), each with the longest time one of
    /// them has been so (`parked (io, read), the longest for 600000 ms`: handlers whose clients
    /// stopped sending ten minutes ago, or green threads that never end).
    ///
    /// A parked green thread's line says how long it has been parked; a ready or running one's,
    /// how long it has gone without parking (`ready and not parked for 2711 ms`: a relay whose
    /// sockets always have data, taking its turns, its forced yields counted beside), or, if
    /// it was woken and has not run since, how long ago its park began (`ready (woken) from a
    /// park begun 300 ms ago`: the park and the wait for a turn after the wake together).
    ///
    /// Each worker answers for its own green threads, and runs none of them while it does
    /// (about 2 µs per green thread listed, a few more for one parked in I/O: tens of ms for
    /// ten thousand; [`Handle::dump_capped`] lists fewer). A green thread that computes with
    /// ticks is made to yield at the end of its time slice, as when others wait, and the worker
    /// answers then; one in blocking code or a loop without ticks holds its worker: a worker
    /// that has not taken the request up within a second is shown as not answering, with the
    /// green thread that holds it. One that took it up late (100 ms or more) says so under its
    /// heading, with the green thread it was running when asked: by the time it answers, that
    /// green thread may have ended.
    ///
    /// The caller waits for the answers: a green thread parks, a plain OS thread blocks, within
    /// about a second (30 s more at most while a worker that took the request up finishes its
    /// answer). A green thread that is cancelled meanwhile, or whose
    /// [`green::timeout`](crate::timeout) deadline passes, stops waiting and gets what has come:
    /// the workers not heard from yet say they were not waited for, and why. The dump does not
    /// unwind; the next cancellation point does. Called while the green thread unwinds, or on a
    /// worker's own stack, it waits without parking, and that worker's part of the dump says it
    /// could not answer.
    ///
    /// A green thread parked on a `green::sync` primitive names it: `parked (sync, channel
    /// recv)`, `(sync, condvar)`, `(sync, barrier)` and so on. One waiting for a green lock shows
    /// who holds it: `parked (mutex held by green thread 5 "cache")` (readers are not named one
    /// by one: an `RwLock` held by readers, or a lock just released, shows as such); a green
    /// thread joining another shows which. One parked on a channel (a receive, or a send on a
    /// full channel) names the channel by an address that is the same for every green thread
    /// waiting on it, with its live senders and receivers: `waits on channel 0x7f3368003648: 1
    /// sender(s) alive: a receive ends only when one sends or the last is dropped; 1
    /// receiver(s)` is a consumer that a sender kept alive somewhere holds up. Channels that
    /// several green threads wait on close the dump, the most waited on first, each with its
    /// first few waiters. The green threads holding a lock that others wait for open the dump, each with
    /// how many wait and its own line (so what it is doing while they wait is seen at once). A
    /// cycle of such waits is named as a deadlock on a line of its own, or, when one of its
    /// waits has a deadline (`try_lock_for`, `JoinHandle::wait_timeout`, a wait inside
    /// [`green::timeout`](crate::timeout)), as a wait cycle that lasts until that wait ends, and
    /// when a lock of it is held by a green thread that may have passed the guard on
    /// ([`spawn_local`](crate::spawn_local)), as one that lasts unless that guard is dropped. A green
    /// thread parked in I/O ends its line with the fd it waits on and what the fd is: `waits to
    /// read fd 9 (socket 127.0.0.1:7880, peer 127.0.0.1:51234)`, a listening socket, a pipe.
    /// With [park backtraces](crate::runtime::Builder::park_backtraces) on, each parked green
    /// thread's backtrace follows its line.
    ///
    /// # A dump on a signal
    ///
    /// With the environment variable `GREEN_DUMP_SIGNAL` set to a signal's name (`USR1`,
    /// `USR2`, `HUP`, `WINCH` or `QUIT`, with or without `SIG`) when a runtime is built, a small
    /// thread of the runtime writes its dump to stderr each time that signal comes: `kill -USR1
    /// <pid>` shows what a running server's green threads are doing without a change to its code.
    /// `INT` and `TERM` work too, with a warning: while a runtime runs, they no longer end the
    /// process. Each runtime of a process prints its own dump, headed by its worker threads' name.
    /// While no runtime listens (before the first is built, after the last is dropped) the signal
    /// has its default action: all but `WINCH` end the process. Such a dump lists 1000 green
    /// threads at most after its summary, as [`Handle::dump_capped`] does: a million would write
    /// some 170 MB to stderr. `GREEN_DUMP_LISTED`, set to a number or to `all`, changes how many.
    pub fn dump(&self) -> Dump {
        self.dump_capped(usize::MAX)
    }

    /// A [dump](Handle::dump) that lists at most `max_listed` green threads: the summary still
    /// counts every one, and the lock holders and deadlocks still open it, but past the first
    /// `max_listed` lines a note says how many green threads were left out. `dump_capped(0)` is
    /// the summary alone (it always opens a capped dump that leaves green threads out, whatever
    /// their number).
    ///
    /// With a hundred thousand green threads a full dump is some 17 MB of text, and each line
    /// costs its worker a few syscalls (the stack's resident pages; the address of a socket
    /// waited on) while it runs no green thread: a capped dump spends them on the lines it
    /// prints only. Dumps printed on the dump signal, the monitor's report of a possible deadlock
    /// and [`ShutdownTimedOut`](crate::ShutdownTimedOut) list 1000 green threads at most
    /// (`GREEN_DUMP_LISTED` changes it for the signal's dumps, see [`Handle::dump`]).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// green::run(|| {
    ///     let sleepers: Vec<_> = (0..60).map(|_| green::spawn(|| green::sleep(Duration::from_secs(60)))).collect();
    ///     green::sleep(Duration::from_millis(20));
    ///     let dump = green::Handle::current().dump_capped(10).to_string();
    ///     assert!(dump.contains("by spawn site and state: "), "{dump}");
    ///     assert!(dump.contains("not listed"), "{dump}");
    ///     for sleeper in &sleepers {
    ///         sleeper.cancel();
    ///     }
    /// });
    /// ```
    pub fn dump_capped(&self, max_listed: usize) -> Dump {
        self.dump_answered_within(max_listed, ANSWER_TIMEOUT)
    }

    /// [`dump_capped`](Handle::dump_capped), waiting `answer_timeout` (rather than
    /// [`ANSWER_TIMEOUT`]) for each worker to take the request up: a caller with a deadline of
    /// its own names a worker held by a green thread as busy in it sooner.
    pub(crate) fn dump_answered_within(&self, max_listed: usize, answer_timeout: Duration) -> Dump {
        let shared = &self.shared;
        let workers = shared.remotes.len();
        let request = Arc::new(DumpRequest::new(workers, max_listed, false));
        shared.refresh_clock(Instant::now());
        // A caller that cannot park (a green thread unwinding, code on a worker's own stack)
        // holds its worker, which therefore cannot answer if it is one of this runtime's; the
        // others are waited for without parking. (On another runtime's worker the caller holds
        // none of these: its worker's number means nothing here.)
        let (cannot_park, own_worker) = super::context::with_core(|core| match core {
            Some(core) if !core.in_green_thread() || park::must_not_wait() => {
                (true, Arc::ptr_eq(&core.shared, shared).then_some(core.index))
            }
            _ => (false, None),
        });
        post(shared, &request, own_worker);
        // What each worker runs as it is asked: one slow to take the request up was held by it,
        // and that green thread may have finished by the time the worker answers.
        let running_when_asked: Vec<Option<String>> = shared
            .remotes
            .iter()
            .map(|remote| {
                remote.stats.with_running(|h| h.map(|h| format!("{} spawned at {}", h.describe(), h.spawned_at)))
            })
            .collect();
        // Each worker has `answer_timeout` to take the request up; past it, those that have
        // are answering (they run no green thread meanwhile, so they will finish) and are
        // waited for, up to `ANSWER_FINISH_TIMEOUT` more. Only the last answer wakes the
        // caller: past the first timeout it also looks every `POLL_ANSWERING`.
        let first = Instant::now() + answer_timeout;
        let last = first + ANSWER_FINISH_TIMEOUT;
        // Why the caller stopped waiting before every worker answered, if it did: a green thread
        // cancelled, or past its `green::timeout` deadline (its park ends there), takes what has
        // come and goes on, to unwind at its next cancellation point.
        let mut gave_up = None;
        while request.remaining.load(Ordering::Acquire) > 0 {
            let now = Instant::now();
            if now >= first && (now >= last || !request.answering()) {
                break;
            }
            if !cannot_park {
                if park::cancelled_here() {
                    gave_up = Some("the dump's caller was cancelled");
                    break;
                }
                if crate::deadline::passed() {
                    gave_up = Some("the dump's caller reached its green::timeout deadline");
                    break;
                }
            }
            let until = if now < first { first } else { last.min(now + POLL_ANSWERING) };
            if cannot_park {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            park::wait_for(
                ParkReason::Other,
                |waiter| {
                    let mut slot = request.waiter.lock().unwrap_or_else(|e| e.into_inner());
                    if request.remaining.load(Ordering::Acquire) == 0 {
                        return false;
                    }
                    *slot = Some(waiter);
                    true
                },
                Some(until),
            );
        }
        withdraw(shared, &request);
        // Taken, not copied (a full dump's lines may be 170 MB); a worker that answers later
        // fills its place for nobody.
        let answers: Vec<Option<Answer>> =
            request.answers.lock().unwrap_or_else(|e| e.into_inner()).iter_mut().map(Option::take).collect();
        // The worker threads' name tells apart the dumps of two runtimes of one process (each
        // prints its own on the dump signal).
        let mut text = format!(
            "green runtime dump: {} live green thread(s), {} worker(s) (threads \"{}-*\")",
            shared.live.load(Ordering::Relaxed),
            workers,
            shared.config.thread_name
        );
        // Spawned from outside the workers (an OS thread, `Runtime::spawn`) and not yet taken
        // by one: counted live, but on no worker's list.
        let injected = shared.injector.len();
        if injected > 0 {
            text.push_str(&format!(", {injected} unstarted in the shared queue"));
        }
        text.push('\n');
        // A saturated pool leaves green threads parked (blocking) that are only queued: the
        // pool's numbers tell that from slow jobs.
        text.push_str(&format!("blocking pool: {}\n", shared.blocking.load()));
        let started: usize = answers.iter().flatten().map(|a| a.started).sum();
        let listed: usize = answers.iter().flatten().map(|a| a.listed.len()).sum();
        let mut groups: HashMap<&Group, Tally> = HashMap::new();
        for (group, tally) in answers.iter().flatten().flat_map(|a| a.groups.iter()) {
            groups.entry(group).or_default().add(*tally);
        }
        // A dump that leaves green threads out opens with the summary whatever their number:
        // it is all there is of them.
        text.push_str(&summary(groups, listed.min(max_listed) < started));
        let edges = request.edges.lock().unwrap_or_else(|e| e.into_inner()).clone();
        text.push_str(&lock_holders(&edges, &answers));
        let mut channels: HashMap<usize, ChannelTally> = HashMap::new();
        for (id, tally) in answers.iter().flatten().flat_map(|a| a.channels.iter()) {
            channels.entry(*id).or_default().merge(tally);
        }
        let mut room = max_listed;
        let mut left_out = 0;
        for (index, answer) in answers.into_iter().enumerate() {
            match (answer, gave_up) {
                (Some(answer), _) => {
                    text.push_str(&answer.heading);
                    let after = request.taken_after_ms[index].load(Ordering::Relaxed);
                    if request.taken[index].load(Ordering::Acquire) && after >= LATE_TAKE_UP.as_millis() as u64 {
                        text.push_str(&late_take_up(after, running_when_asked[index].as_deref()));
                    }
                    let shown = answer.listed.len().min(room);
                    for line in &answer.listed[..shown] {
                        text.push_str(line);
                    }
                    room -= shown;
                    left_out += answer.started - shown;
                }
                (None, Some(why)) => text.push_str(&format!("worker {index}: not waited for: {why}\n")),
                (None, None) => {
                    let stats = &shared.remotes[index].stats;
                    let busy =
                        stats.with_running(|h| h.map(|h| format!("{} spawned at {}", h.describe(), h.spawned_at)));
                    text.push_str(&format!(
                        "worker {index}: did not answer within {} ms; busy in green thread {}\n",
                        answer_timeout.as_millis(),
                        busy.as_deref().unwrap_or("(none: outside any green thread)")
                    ));
                }
            }
        }
        if left_out > 0 {
            text.push_str(&format!(
                "({left_out} green thread(s) not listed: this dump lists {max_listed} at most; Handle::dump lists \
                 every one, and GREEN_DUMP_LISTED=all does for the dump signal)\n"
            ));
        }
        text.push_str(&shared_channels(channels));
        for WaitCycle { text: cycle, timed, guard_passed, .. } in wait_cycles(&edges) {
            if timed {
                text.push_str(&format!("wait cycle, until a timed wait in it ends: {cycle}\n"));
            } else if guard_passed {
                text.push_str(&format!(
                    "wait cycle, unless a lock guard passed to another green thread (spawn_local) is dropped: \
                     {cycle}\n"
                ));
            } else {
                text.push_str(&format!("deadlock: {cycle}\n"));
            }
        }
        Dump { text }
    }
}

/// Posts `request` to every worker of `shared` and wakes them, but to `own_worker` (the
/// caller's, which cannot answer while the caller holds it: answered here with a line that says
/// so).
fn post(shared: &super::shared::Shared, request: &Arc<DumpRequest>, own_worker: Option<usize>) {
    for (index, remote) in shared.remotes.iter().enumerate() {
        if own_worker == Some(index) {
            request.answer(
                index,
                Answer::only(format!(
                    "worker {index}: cannot answer: the dump was asked for on it by code that cannot park (a green \
                     thread unwinding, or the worker's own stack)\n"
                )),
            );
            continue;
        }
        // Its worker has exited (the runtime is shut down): nobody would answer. Looked at
        // under the queue's lock, which the worker closes as it exits (`close_dump_queue`): a
        // request is either in the queue before that, and answered then, or not posted.
        match remote.dump.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(queue) if !remote.reactor.is_closed() => queue.push(request.clone()),
            _ => {
                request.answer(index, exited(index));
                continue;
            }
        }
        remote.dump_pending.store(true, Ordering::Release);
        remote.sleeping.store(false, Ordering::SeqCst);
        remote.notify();
    }
}

/// Takes `request` out of the workers' queues: one that did not answer in time must not keep
/// it (nor answer it later).
fn withdraw(shared: &super::shared::Shared, request: &Arc<DumpRequest>) {
    for remote in shared.remotes.iter() {
        if let Some(queue) = remote.dump.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            queue.retain(|r| !Arc::ptr_eq(r, request));
        }
    }
}

/// The monitor's look at the wait-for graph of a running runtime: a request for edges only,
/// posted without waiting for the answers, which the monitor collects at a later turn of its
/// loop ([`WaitLook::outcome`]), so that a worker slow to answer never holds up its watch on
/// the others. Each worker walks its green threads without a syscall or a line of text.
pub(crate) struct WaitLook {
    request: Arc<DumpRequest>,
}

impl WaitLook {
    /// Posts a look to every worker of `shared`, whose edges describe the green threads
    /// `named` only.
    pub(crate) fn start(shared: &super::shared::Shared, named: std::collections::HashSet<u64>) -> WaitLook {
        let request = Arc::new(DumpRequest { named, ..DumpRequest::new(shared.remotes.len(), 0, true) });
        post(shared, &request, None);
        WaitLook { request }
    }

    /// When the look was posted: no worker saw anything for it earlier.
    pub(crate) fn asked(&self) -> Instant {
        self.request.asked
    }

    /// What the look cost the worker that took longest over it, once answered: its walk over
    /// its green threads, not the wait for it to come to the look, nor the monitor's own for
    /// the answers.
    pub(crate) fn cost(&self) -> Duration {
        Duration::from_nanos(self.request.longest_answer_ns.load(Ordering::Relaxed))
    }

    /// The edges every worker saw, once all have answered; `Some(None)` if one has not taken
    /// the look up within [`ANSWER_TIMEOUT`] (busy in a green thread: the look is given up,
    /// as a partial graph could show a cycle with an edge missing no more than it could hide
    /// one); `None` while answers are still to come.
    pub(crate) fn outcome(&self, shared: &super::shared::Shared) -> Option<Option<Vec<Edge>>> {
        let request = &self.request;
        if request.remaining.load(Ordering::Acquire) == 0 {
            return Some(Some(std::mem::take(&mut *request.edges.lock().unwrap_or_else(|e| e.into_inner()))));
        }
        let waited = request.asked.elapsed();
        if waited < ANSWER_TIMEOUT || (waited < ANSWER_TIMEOUT + ANSWER_FINISH_TIMEOUT && request.answering()) {
            return None;
        }
        withdraw(shared, request);
        Some(None)
    }
}

/// The deadlocks that two looks at the wait-for graph, `before` and then `now`, show: cycles of
/// waits without a deadline each of which is, by its wait number, the same wait in both looks.
/// A single look could join waits seen at different moments (the workers answer one after
/// another, and a lock may change hands in between); waits that lasted from one look to the
/// next, each for a green thread that holds what the next one wants, make a cycle that nothing
/// inside it can break. Not so when a lock's holder may have passed its guard on to a green
/// thread outside the cycle (`spawn_local`), which may drop it: such a cycle is left out. Each
/// comes with its green threads' ids, in cycle order, and whether `now` described every one of
/// them.
pub(crate) fn lasting_deadlocks(before: &[Edge], now: &[Edge]) -> Vec<(Vec<u64>, String, bool)> {
    let seen: std::collections::HashSet<(u64, u64, u32)> =
        before.iter().filter(|e| !e.timed).map(|e| (e.from, e.to, e.seq)).collect();
    let lasting: Vec<Edge> =
        now.iter().filter(|e| !e.timed && seen.contains(&(e.from, e.to, e.seq))).cloned().collect();
    let named: std::collections::HashSet<u64> = lasting.iter().filter(|e| !e.who.is_empty()).map(|e| e.from).collect();
    wait_cycles(&lasting)
        .into_iter()
        .filter(|cycle| !cycle.guard_passed)
        .map(|cycle| {
            let all_named = cycle.ids.iter().all(|id| named.contains(id));
            (cycle.ids, cycle.text, all_named)
        })
        .collect()
}

/// The answer for worker `index`, which has exited.
fn exited(index: usize) -> Answer {
    Answer::only(format!("worker {index}: exited (the runtime has shut down)\n"))
}

/// Worker `index` exits: closes its queue of dump requests (`remote.dump`), so that no request
/// is posted there any more, and answers those still in it, which it will not look at again.
pub(crate) fn close_dump_queue(remote: &super::shared::Remote, index: usize) {
    let requests = remote.dump.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    for request in requests {
        request.answer(index, exited(index));
    }
}

/// A worker that takes a dump request up this long after it was made was held meanwhile (by
/// blocking code or a loop without ticks in a green thread; an idle worker wakes in µs and a
/// busy one answers at the end of its time slice): its heading says so. The monitor's default
/// threshold, so that what the dump calls late the monitor would report too.
const LATE_TAKE_UP: Duration = Duration::from_millis(100);

/// The line under the heading of a worker that took the request up `after_ms` after it was
/// made, while running the green thread described as `running` when asked (if any): the dump
/// was taken after that green thread let go, and shows nothing of it otherwise.
fn late_take_up(after_ms: u64, running: Option<&str>) -> String {
    match running {
        Some(who) => format!(
            "  (this worker took the dump up only after {after_ms} ms: when it was asked, it was running green \
             thread {who}, which held it without reaching a scheduling point; the monitor's reports say in what)\n"
        ),
        None => format!(
            "  (this worker took the dump up only after {after_ms} ms, though it ran no green thread when asked: the \
             machine is busy, or it was listing a large dump)\n"
        ),
    }
}

/// How often a dump past [`ANSWER_TIMEOUT`] looks whether a worker it waits for is still
/// answering (one that never took the request up would not wake it).
const POLL_ANSWERING: Duration = Duration::from_millis(20);

/// Green threads before the dump opens with a summary of them by spawn site and state.
const SUMMARY_FROM: usize = 50;

/// Groups shown in the summary, the largest first.
const SUMMARY_GROUPS: usize = 10;

/// A few lines that open a dump of many green threads: how many share each spawn site and
/// state, the largest groups first, each with the longest time one of them has been so
/// (`1000 × spawned at src/main.rs:40:9: parked (io, read), the longest for 612000 ms`). Ten
/// thousand connection handlers make ten thousand lines that say the same; the few green
/// threads that do something else, or a group that has waited far longer than a request takes,
/// are what the reader looks for. Empty for fewer than [`SUMMARY_FROM`] green threads, unless
/// `always` (a dump that leaves some out).
fn summary(groups: HashMap<&Group, Tally>, always: bool) -> String {
    let threads: usize = groups.values().map(|t| t.count).sum();
    if threads < SUMMARY_FROM && !always {
        return String::new();
    }
    let mut largest: Vec<(String, usize)> = groups
        .into_iter()
        .map(|((site, state), t)| (format!("spawned at {site}: {state}, the longest for {} ms", t.longest_ms), t.count))
        .collect();
    largest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut text = format!(
        "by spawn site and state: {threads} green threads in {} group(s){}\n",
        largest.len(),
        if largest.len() > SUMMARY_GROUPS { format!(", the {SUMMARY_GROUPS} largest") } else { String::new() }
    );
    for (group, count) in largest.into_iter().take(SUMMARY_GROUPS) {
        text.push_str(&format!("  {count} × {group}\n"));
    }
    text
}

/// Lock holders shown at the head of a dump, the most waited for first.
const LOCK_HOLDERS_SHOWN: usize = 5;

/// Lines that open a dump with the green threads holding a lock others wait for, the most
/// waited for first, each with its own line of the dump (what it is doing), so that three
/// hundred handlers `parked (mutex held by green thread 1025)` lead at once to what 1025 does:
/// `lock held by green thread 1025 (299 waiting): green thread 1025 spawned at ...: parked (io,
/// read) ...; waits to read fd 149 (socket ..., peer ...)`. Empty when no green thread waits
/// for a lock a green thread holds.
fn lock_holders(edges: &[Edge], answers: &[Option<Answer>]) -> String {
    let mut waiting: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for edge in edges.iter().filter(|e| e.what == WaitFor::Lock) {
        *waiting.entry(edge.to).or_default() += 1;
    }
    let mut holders: Vec<(u64, usize)> = waiting.into_iter().collect();
    holders.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut text = String::new();
    for &(holder, count) in holders.iter().take(LOCK_HOLDERS_SHOWN) {
        // Its line, kept by its worker (listed or not) because it holds a lock; or, for a
        // holder whose count of locks held does not show it, among the lines listed.
        let prefix = format!("  green thread {holder} ");
        let line = answers
            .iter()
            .flatten()
            .flat_map(|a| a.holders.iter())
            .find(|(id, _)| *id == holder)
            .map(|(_, line)| line.as_str())
            .or_else(|| {
                let listed = answers.iter().flatten().flat_map(|a| a.listed.iter());
                listed.map(String::as_str).find(|l| l.starts_with(&prefix))
            })
            .and_then(|line| line.lines().next());
        let doing = match line {
            Some(line) => line.trim_start().to_owned(),
            // Not in any answer: it runs on a worker that did not answer (busy in it, maybe),
            // or the dump is capped.
            None => format!("green thread {holder}: not listed (its worker did not answer, or the dump is capped)"),
        };
        text.push_str(&format!("lock held by green thread {holder} ({count} waiting): {doing}\n"));
    }
    if holders.len() > LOCK_HOLDERS_SHOWN {
        text.push_str(&format!("(and {} more lock holder(s) with waiters)\n", holders.len() - LOCK_HOLDERS_SHOWN));
    }
    text
}

/// Channels shown in the closing section on channels that several green threads wait on, the
/// most waited on first.
const SHARED_CHANNELS_SHOWN: usize = 10;

/// Lines that close a dump with the channels that several green threads are parked on, the
/// most waited on first, each with its live handles and its first few waiters: `channel
/// 0x5612a4c0: 40 parked (40 receiving, 0 sending); 1 sender(s) and 40 receiver(s) alive;
/// green threads 7 "worker", 8 "worker", ...`. Forty workers idle on a job queue whose one
/// sender is kept alive somewhere show as one stuck channel, not forty lines to compare. The
/// channel's counts are as one worker read them, and two channels of the same address (one
/// dropped and another made there while the workers answered) would be taken as one. Empty
/// when no channel has two waiters.
fn shared_channels(channels: HashMap<usize, ChannelTally>) -> String {
    let mut shared: Vec<(usize, ChannelTally)> =
        channels.into_iter().filter(|(_, t)| t.receiving + t.sending >= 2).collect();
    if shared.is_empty() {
        return String::new();
    }
    shared.sort_by(|a, b| (b.1.receiving + b.1.sending).cmp(&(a.1.receiving + a.1.sending)).then(a.0.cmp(&b.0)));
    let mut text = String::from("channels that several green threads are parked on, the most waited on first:\n");
    for (id, tally) in shared.iter().take(SHARED_CHANNELS_SHOWN) {
        let parked = tally.receiving + tally.sending;
        let more = parked - tally.named.len();
        text.push_str(&format!(
            "  channel {id:#x}: {parked} parked ({} receiving, {} sending); {} sender(s) and {} receiver(s) alive; \
             green threads {}{}\n",
            tally.receiving,
            tally.sending,
            tally.senders,
            tally.receivers,
            tally.named.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() },
        ));
    }
    if shared.len() > SHARED_CHANNELS_SHOWN {
        text.push_str(&format!(
            "(and {} more channel(s) with several waiters)\n",
            shared.len() - SHARED_CHANNELS_SHOWN
        ));
    }
    text
}

/// A cycle of the wait-for graph.
struct WaitCycle {
    /// Its green threads, in the order of its waits.
    ids: Vec<u64>,
    /// `green thread 5 "a" joins green thread 6 "b", which ...`.
    text: String,
    /// One of its waits has a deadline: it breaks by itself.
    timed: bool,
    /// One of its locks is held, by its holder cell, by a green thread that shares values with
    /// others of its worker ([`Edge::shares_guards`]): the guard may be one of theirs now, and
    /// dropped, so the cycle may break.
    guard_passed: bool,
}

/// The cycles of the wait-for graph, each as `green thread 5 "a" joins green thread 6 "b",
/// which waits for a lock held by green thread 5 "a"`, and whether one of its waits has a
/// deadline (then the cycle breaks by itself: no deadlock) or a lock guard that may have been
/// passed on ([`WaitCycle::guard_passed`]). A parked green thread waits for at
/// most one other (it is parked in one join or one lock), so following the edges from each
/// node finds every cycle.
fn wait_cycles(edges: &[Edge]) -> Vec<WaitCycle> {
    use std::collections::{HashMap, HashSet};
    let next: HashMap<u64, (u64, WaitFor, bool)> = edges.iter().map(|e| (e.from, (e.to, e.what, e.timed))).collect();
    let names: HashMap<u64, &str> = edges.iter().map(|e| (e.from, e.who.as_str())).collect();
    let sharing: HashSet<u64> = edges.iter().filter(|e| e.shares_guards).map(|e| e.from).collect();
    let mut reported: HashSet<u64> = HashSet::new();
    let mut cycles = Vec::new();
    for edge in edges {
        // Walk from `edge.from` until a repeat or a dead end.
        let mut seen = Vec::new();
        let mut at = edge.from;
        while let Some(&(to, ..)) = next.get(&at) {
            if let Some(pos) = seen.iter().position(|&s| s == at) {
                let cycle = &seen[pos..];
                if cycle.iter().all(|id| !reported.contains(id)) {
                    reported.extend(cycle.iter().copied());
                    let timed = cycle.iter().any(|id| next[id].2);
                    let guard_passed = cycle.iter().any(|id| {
                        let (to, what, _) = next[id];
                        what == WaitFor::Lock && sharing.contains(&to)
                    });
                    let text = describe_cycle(cycle, &next, &names);
                    cycles.push(WaitCycle { ids: cycle.to_vec(), text, timed, guard_passed });
                }
                break;
            }
            seen.push(at);
            at = to;
        }
    }
    cycles
}

fn describe_cycle(
    cycle: &[u64],
    next: &std::collections::HashMap<u64, (u64, WaitFor, bool)>,
    names: &std::collections::HashMap<u64, &str>,
) -> String {
    let name = |id: &u64| names.get(id).copied().unwrap_or("?");
    let mut line = format!("green thread {}", name(&cycle[0]));
    for (i, id) in cycle.iter().enumerate() {
        let (to, what, timed) = next[id];
        let verb = match (what, timed) {
            (WaitFor::Join, false) => "joins",
            (WaitFor::Join, true) => "joins, with a deadline,",
            (WaitFor::Lock, false) => "waits for a lock held by",
            (WaitFor::Lock, true) => "waits, with a deadline, for a lock held by",
        };
        let joint = if i == 0 { " " } else { ", which " };
        line.push_str(&format!("{joint}{verb} green thread {}", name(&to)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::{Edge, WaitFor, green_thread_frames, lasting_deadlocks};

    fn edge(from: u64, to: u64, seq: u32, timed: bool, named: bool) -> Edge {
        let who = if named { format!("{from} \"g{from}\"") } else { String::new() };
        Edge { from, to, who, what: WaitFor::Lock, timed, seq, shares_guards: false }
    }

    #[test]
    fn a_cycle_is_lasting_only_when_each_of_its_waits_is_the_same_in_both_looks() {
        let before = [edge(1, 2, 7, false, false), edge(2, 1, 3, false, false), edge(3, 1, 1, false, false)];
        let same = [edge(1, 2, 7, false, true), edge(2, 1, 3, false, true), edge(3, 1, 2, false, true)];
        let found = lasting_deadlocks(&before, &same);
        assert_eq!(found.len(), 1, "{found:?}");
        let (ids, text, named) = &found[0];
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2]);
        assert!(named);
        assert!(text.contains("\"g1\"") && text.contains("\"g2\"") && !text.contains("g3"), "{text}");
        // Green thread 2 waited again in between (a new wait number): two waits that met.
        let rewaited = [edge(1, 2, 7, false, true), edge(2, 1, 4, false, true)];
        assert!(lasting_deadlocks(&before, &rewaited).is_empty());
        // The holder changed hands in between.
        let moved = [edge(1, 3, 7, false, true), edge(2, 1, 3, false, true)];
        assert!(lasting_deadlocks(&before, &moved).is_empty());
        // A wait with a deadline ends by itself.
        let timed = [edge(1, 2, 7, true, true), edge(2, 1, 3, false, true)];
        assert!(lasting_deadlocks(&before, &timed).is_empty());
        // A look that described nobody: found, to be looked at again with names.
        let unnamed = [edge(1, 2, 7, false, false), edge(2, 1, 3, false, false)];
        assert!(matches!(lasting_deadlocks(&before, &unnamed).as_slice(), [(_, _, false)]));
        // Green thread 2 may have passed the guard of the lock 1 waits for to another green
        // thread of its worker (`spawn_local`), which may drop it.
        let mut passed = same.clone();
        passed[1].shares_guards = true;
        assert!(lasting_deadlocks(&before, &passed).is_empty());
        // Green thread 3 shares values, but it holds no lock of the cycle.
        let mut outside = same.clone();
        outside[2].shares_guards = true;
        assert_eq!(lasting_deadlocks(&before, &outside).len(), 1);
    }

    /// std's text of a park backtrace from a build with line tables: inlined frames have short
    /// names and a file.
    const LINE_TABLES: &str = "   0: record_park_backtrace
             at /src/green/src/runtime/worker.rs:297:50
   1: park
             at /src/green/src/runtime/worker.rs:289:18
   2: wait_sync<green::sync::mutex::{impl#6}::acquire_slow::{closure_env#0}<i32>>
             at /src/green/src/park.rs:295:5
   3: lock<i32>
             at /src/green/src/sync/mutex.rs:231:14
   4: {closure#0}
             at ./src/bin/server.rs:13:93
   5: call_once<(), server::main::{closure#0}::{closure_env#0}>
             at /rustc/0/library/core/src/panic/unwind_safe.rs:274:9
   6: catch_unwind<(), core::panic::unwind_safe::AssertUnwindSafe<server::main::{closure#0}>>
             at /rustc/0/library/std/src/panicking.rs:544:19
   7: run<server::main::{closure#0}::{closure_env#0}, ()>
             at /src/green/src/runtime/task.rs:729:23
   8: coroutine_func<(), green::runtime::context::Suspend, (), corosensei::X>
             at /registry/corosensei-0.3.4/src/coroutine.rs:243:30
   9: stack_init_trampoline
  10: thread_start";

    #[test]
    fn a_park_backtrace_keeps_the_frames_from_the_green_call_to_the_closure() {
        let (frames, trimmed) = green_thread_frames(LINE_TABLES);
        assert!(trimmed);
        assert_eq!(frames.first().map(|l| l.trim()), Some("3: lock<i32>"), "{frames:#?}");
        assert_eq!(frames.last().map(|l| l.trim()), Some("at ./src/bin/server.rs:13:93"), "{frames:#?}");
    }

    #[test]
    fn a_park_backtrace_with_every_frame_inlined_keeps_none() {
        let text = "   0: green::runtime::worker::Core::record_park_backtrace
   1: green::runtime::task::Task<F,T>::run
   2: __rust_try
   3: corosensei::coroutine::Coroutine<Input,Yield,Return,Stack>::with_stack_unchecked::coroutine_func";
        assert_eq!(green_thread_frames(text), (vec![], true));
    }

    #[test]
    fn a_backtrace_in_another_shape_is_kept_whole() {
        let text = "disabled backtrace";
        assert_eq!(green_thread_frames(text), (vec![text], false));
        let other = LINE_TABLES.replace("corosensei", "coroutines");
        let (frames, trimmed) = green_thread_frames(&other);
        assert!(!trimmed && frames.len() == LINE_TABLES.lines().count());
    }
}
