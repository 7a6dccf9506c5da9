//! The budget: cooperative preemption by counting ticks.
//!
//! An interpreter can count the opcodes a task runs and pause it after N of them. Rust code
//! has no interpreter, so `green` counts *ticks*: every runtime operation (spawn, join, sleep,
//! and the I/O and sync calls built on them) charges [`OP_TICKS`], an I/O call that copies data
//! (a stream's or a datagram socket's read, peek or write, a read of stdin, a file's read made in
//! place) one more per [`BYTES_PER_TICK`] bytes it moved ([`tick_bytes`]), and user code can
//! charge one with [`tick`] in a long loop.
//!
//! The fast path is a thread-local decrement and a branch (a thread-local is sound here: a
//! started green thread never changes OS thread, rule 1 of docs/design.md). When the budget
//! runs out, and only then, the runtime reads the clock: if the green thread's time slice is
//! over *and* another green thread on its worker is waiting (ready, woken from elsewhere, not
//! yet started, due by timer, or with its socket ready), it yields. A lone CPU-bound green
//! thread therefore never yields for nothing.
//!
//! A forced yield is never a cancellation point, and never happens while unwinding or inside a
//! [`no_yield`] section.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use crate::runtime::context::{self, Suspend};
use crate::runtime::stats::WorkerStats;

/// Ticks one runtime operation costs. An operation (a syscall, a queue handoff) takes on the
/// order of a microsecond, a user `tick()` usually marks a loop iteration of nanoseconds; this
/// weight makes about 64 operations spend the default budget, close to tokio's 128.
pub(crate) const OP_TICKS: u32 = 16;

thread_local! {
    /// Ticks left before the clock is looked at. Reset by the worker at every resume.
    static BUDGET: Cell<u32> = const { Cell::new(crate::runtime::DEFAULT_BUDGET) };
    /// Back-edges of a `#[preemptible]` loop per charge: the smaller of [`EDGES_PER_CHARGE`]
    /// and the budget `BUDGET` was last reset to ([`edge_batch`]).
    static EDGE_BATCH: Cell<u32> = const { Cell::new(EDGES_PER_CHARGE) };
    /// The green threads of this worker thread with `no_yield` sections open, by id, and how
    /// many each has open; almost always empty. A section is its green thread's own: while that
    /// one is parked inside it, the others here keep their forced yields. (Kept here rather than
    /// saved and restored at every switch, which cost the yield round trip 10%; looked at only
    /// when a budget runs out.)
    static NO_YIELD: RefCell<Vec<(u64, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Spends one unit of the green thread's budget; may yield to others waiting on its worker.
///
/// Call it in long CPU-bound loops so they share their worker. It costs a thread-local
/// decrement and a branch; the rest happens only when the budget runs out. Outside a green
/// thread it does nothing useful and costs as little.
///
/// The clock is looked at only once the budget (1024 ticks by default) is spent, so a tick
/// belongs where a few microseconds of work or less separate two of them: a loop that ticks
/// once per 5 ms step holds its worker for 5 s between yields, and the monitor reports it as a
/// loop without ticks. Tick inside the step, or give such a green thread a budget of a few
/// ticks ([`Builder::budget`](crate::Builder::budget)).
///
/// ```
/// green::run(|| {
///     let mut sum = 0u64;
///     for i in 0..1_000_000u64 {
///         green::tick();
///         sum = sum.wrapping_add(i * i);
///     }
///     assert!(sum > 0);
/// });
/// ```
#[inline]
pub fn tick() {
    charge(1);
}

/// Back-edges of a `#[preemptible]` loop counted (in a register) before they are charged as
/// that many ticks at once. A tick per back-edge is a load and a store of a thread-local, a
/// dependency through memory that slowed a tight branchy loop by 14%; a local counter is one
/// fused decrement-and-branch. The branch is mispredicted once per charge, so charges are
/// rare: at 32 back-edges per charge a tight branchy loop ran 8% slower, at 256 4%. The
/// budget (1,024 ticks by default) is then spent in four charges. A batch is never more than
/// the green thread's budget ([`edge_batch`]), so a long loop still looks at the clock after
/// about the same number of iterations as with a tick each, a small budget included. Back-edges
/// counted but not charged when a call returns are dropped; the tick at the entry of every
/// annotated function, and of every closure in it that has loops, is what a short loop called
/// over and over spends instead.
#[doc(hidden)]
pub const EDGES_PER_CHARGE: u32 = 256;

/// Counts one loop back-edge of a `#[preemptible]` function in `edges`, the function's own
/// counter (which starts at [`edge_batch`] and counts down: a decrement and a branch on zero
/// are one fused instruction), and charges that batch when it reaches zero.
#[doc(hidden)]
#[inline(always)]
pub fn back_edge(edges: &mut u32) {
    *edges -= 1;
    if *edges == 0 {
        *edges = charge_edge_batch();
    }
}

/// Back-edges a `#[preemptible]` counter counts before a charge: [`EDGES_PER_CHARGE`], or the
/// running green thread's budget if that is smaller (kept beside the budget, set with it at
/// every resume). A green thread given a budget of 16 ticks looks at the clock every 16
/// iterations of its loops, not every 256.
#[doc(hidden)]
#[inline(always)]
pub fn edge_batch() -> u32 {
    EDGE_BATCH.with(Cell::get)
}

/// Charges a complete batch of back-edges; returns the next batch. Out of line and cold: the
/// loop around the counter keeps no more than a call.
#[cold]
#[inline(never)]
fn charge_edge_batch() -> u32 {
    charge(edge_batch());
    edge_batch()
}

/// A runtime operation's tick.
#[inline]
pub(crate) fn tick_op() {
    charge(OP_TICKS);
}

/// [`tick_op`], telling whether this tick spent the budget (once in a budget's worth of
/// operations): for a call that is a cancellation point but may never wait, to look then at
/// what a wait would have seen.
#[inline]
pub(crate) fn tick_op_spent() -> bool {
    charge(OP_TICKS)
}

/// Spends the ticks of `bytes` moved by an I/O call, beyond the call's own ([`tick_op`]): one
/// per [`BYTES_PER_TICK`]. A call is charged as about a microsecond of work, but a call that
/// copies 64 KiB through a socket takes tens of microseconds: charged as one call, a green
/// thread always ready with bulk data ran some 64 such calls (milliseconds) before its budget
/// was spent, while a small request beside it on its worker waited.
///
/// The bytes never spend the budget themselves: they leave at most [`OP_TICKS`], so that the
/// next operation's tick spends it ([`tick_op_spent`]), yields there if others wait, and looks
/// at the caller's cancellation and deadline. Spent here, a read or write of 4 KiB (16 ticks for
/// the call, 16 for its bytes: 32 of them are the default budget exactly) or of 64 KiB always
/// left the spend to its bytes, and a bulk transfer that never waited never looked.
#[inline]
pub(crate) fn tick_bytes(bytes: usize) {
    let ticks = bytes / BYTES_PER_TICK;
    if ticks > 0 {
        let ticks = u32::try_from(ticks).unwrap_or(u32::MAX);
        BUDGET.with(|b| {
            let left = b.get();
            b.set(left.saturating_sub(ticks).max(left.min(OP_TICKS)));
        });
    }
}

/// Bytes an I/O call moves per tick charged ([`tick_bytes`]).
pub(crate) const BYTES_PER_TICK: usize = 256;

/// Spends `ticks` units at once: what `#[preemptible]` charges for a chunk of a loop it counts
/// in batches (see `iter::chunked`).
#[inline]
pub(crate) fn tick_n(ticks: u32) {
    charge(ticks);
}

/// Spends `ticks`; true if they spent the budget (and its end was dealt with: a forced yield if
/// others wait, a refill).
#[inline]
fn charge(ticks: u32) -> bool {
    let left = BUDGET.with(Cell::get);
    if left > ticks {
        BUDGET.with(|b| b.set(left - ticks));
        false
    } else {
        budget_spent();
        true
    }
}

/// Ticks left in the running green thread's budget.
#[inline]
pub(crate) fn budget_left() -> u32 {
    BUDGET.with(Cell::get)
}

pub(crate) fn reset_budget(ticks: u32) {
    BUDGET.with(|b| b.set(ticks));
    EDGE_BATCH.with(|b| b.set(ticks.min(EDGES_PER_CHARGE)));
}

#[cold]
#[inline(never)]
fn budget_spent() {
    let must_yield = context::with_core(|core| {
        let Some(core) = core else {
            reset_budget(crate::runtime::DEFAULT_BUDGET);
            return false;
        };
        let (budget, time_slice) = core.current_budget_and_slice();
        reset_budget(budget);
        let stats = core.stats();
        if !core.in_green_thread() {
            // Code on the worker's own stack (a destructor the worker runs): nobody's ticks.
            WorkerStats::bump(&stats.checkpoints);
            return false;
        }
        let acct = &core.resume_acct;
        acct.refills.set(acct.refills.get() + 1);
        if std::thread::panicking() || in_no_yield(core.with_current(|h| h.map_or(0, |h| h.id.get()))) {
            // Ticks that cannot yield let nobody else in: with others here, the worker stays
            // held as by a loop without ticks, and the monitor must see it so.
            let held = !core.nothing_else_here();
            WorkerStats::bump(if held { &stats.unyielding_checks } else { &stats.checkpoints });
            return false;
        }
        WorkerStats::bump(&stats.checkpoints);
        // Alone on its worker (nothing queued, no timer, no fd waited on), a green thread has
        // nobody to yield to, and nothing can become ready here without first showing up in
        // what `nothing_else_here` looks at: the clock is read only to start the slice, once
        // per resume. A lone CPU-bound loop thus pays a few loads per budget, not a clock read.
        if core.nothing_else_here() {
            if core.slice_start.get().is_none() {
                core.slice_start.set(Some(Instant::now()));
            }
            return false;
        }
        let now = Instant::now();
        // The reading also keeps the coarse clock that stamps parks fresh on a busy worker.
        core.shared.refresh_clock(now);
        let start = core.slice_start.get().unwrap_or_else(|| {
            core.slice_start.set(Some(now));
            now
        });
        let slice = now.duration_since(start);
        // During a shutdown the worker must get back at every spent budget (capped meanwhile,
        // `Core::budget_cap`) to enforce its timeout on a green thread that swallows its
        // cancellation, however long a slice that one was given.
        let must_yield = (slice >= time_slice || core.shared.is_shutting_down()) && core.others_waiting(now);
        acct.longest_slice.set(acct.longest_slice.get().max(slice));
        if must_yield {
            WorkerStats::bump(&core.stats().forced_yields);
            acct.forced_yields.set(acct.forced_yields.get() + 1);
        }
        must_yield
    });
    if must_yield {
        context::suspend(Suspend::ForcedYield);
    }
}

/// Turns ticks into counting only, until the guard is dropped: no forced yield happens while it
/// lives.
///
/// Use it around code that holds something a neighbour on the same worker may need and cannot
/// wait for by parking: a `std::sync::MutexGuard`, a `RefCell` borrow of a thread-local. A
/// forced yield there could let a green thread on the same worker block the whole worker on
/// that mutex, or panic on that borrow.
///
/// The section is the calling green thread's own: should it park inside one (a
/// blocking-looking call), the other green threads of its worker keep their forced yields
/// meanwhile.
///
/// Keep sections short: while one computes, the others on its worker wait as behind a loop
/// without ticks, and the monitor reports a section that holds them past the blocking
/// threshold ([`runtime::Builder::blocking_threshold`](crate::runtime::Builder::blocking_threshold)) as such.
///
/// ```
/// use std::sync::Mutex;
/// static TOTAL: Mutex<u64> = Mutex::new(0);
///
/// green::run(|| {
///     let _no_yield = green::no_yield();
///     let mut total = TOTAL.lock().unwrap();
///     for i in 0..10_000 {
///         green::tick(); // counts, never yields while the guard lives
///         *total += i;
///     }
/// });
/// ```
pub fn no_yield() -> NoYield {
    // Outside a green thread there are no forced yields to turn off.
    let owner = context::with_core(|core| core.and_then(|c| c.with_current(|h| h.map(|h| h.id.get())))).unwrap_or(0);
    if owner != 0 {
        NO_YIELD.with(|open| {
            let mut open = open.borrow_mut();
            match open.iter_mut().find(|(id, _)| *id == owner) {
                Some((_, depth)) => *depth += 1,
                None => open.push((owner, 1)),
            }
        });
    }
    NoYield { owner, _not_send: std::marker::PhantomData }
}

/// True if the green thread `id` has a `no_yield` section open.
/// Green thread `id` finished on this worker: a section it left open (its guard leaked with
/// `mem::forget`) ends with it, or every spent budget here would go on scanning its entry.
#[inline]
pub(crate) fn end_no_yield(id: u64) {
    let _ = NO_YIELD.try_with(|open| {
        let mut open = open.borrow_mut();
        if !open.is_empty() {
            open.retain(|(owner, _)| *owner != id);
        }
    });
}

fn in_no_yield(id: u64) -> bool {
    NO_YIELD.try_with(|open| open.borrow().iter().any(|(owner, _)| *owner == id)).unwrap_or(false)
}

/// Guard returned by [`no_yield`]. Leaked with `mem::forget`, it shields its green thread for
/// the rest of that green thread's life (and no longer).
#[derive(Debug)]
#[must_use = "the section ends when the guard is dropped"]
pub struct NoYield {
    /// The id of the green thread whose section this is (0: none, outside a green thread).
    owner: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for NoYield {
    fn drop(&mut self) {
        if self.owner == 0 {
            return;
        }
        let _ = NO_YIELD.try_with(|open| {
            let mut open = open.borrow_mut();
            if let Some(at) = open.iter().position(|(id, _)| *id == self.owner) {
                open[at].1 -= 1;
                if open[at].1 == 0 {
                    open.swap_remove(at);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    /// A section whose guard was leaked ends with its green thread: nothing of it stays in the
    /// worker's list.
    #[test]
    fn a_leaked_no_yield_section_ends_with_its_green_thread() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let left = rt.block_on(|| {
            crate::spawn(|| std::mem::forget(super::no_yield())).join().unwrap();
            super::NO_YIELD.with(|open| open.borrow().len())
        });
        assert_eq!(left, 0, "the leaked section's entry outlived its green thread");
    }

    /// A stream's read or write spends a tick per 256 bytes it moved besides the call's own: a
    /// 64 KiB write is charged as what it costs, not as one small call.
    #[test]
    fn a_stream_call_spends_ticks_by_the_bytes_it_moves() {
        use std::io::{Read, Write};
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let charged = rt.block_on(|| {
            crate::Builder::new()
                .budget(crate::runtime::MAX_BUDGET)
                .spawn(|| {
                    let listener = crate::net::TcpListener::bind("127.0.0.1:0").unwrap();
                    let mut writer = crate::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                    let (mut reader, _) = listener.accept().unwrap();
                    let (chunk, mut got) = (vec![7u8; 64 * 1024], vec![0u8; 64 * 1024]);
                    let before = super::budget_left();
                    let wrote = writer.write(&chunk).unwrap();
                    let after_write = super::budget_left();
                    // Data queued before the read is timed, so that it does not park (a park
                    // refills the budget: the difference would underflow).
                    reader.peek(&mut [0u8]).unwrap();
                    let before_read = super::budget_left();
                    let read = reader.read(&mut got).unwrap();
                    let after_read = super::budget_left();
                    (wrote, before - after_write, read, before_read - after_read)
                })
                .unwrap()
                .join()
                .unwrap()
        });
        let (wrote, write_ticks, read, read_ticks) = charged;
        let expected = |bytes: usize| super::OP_TICKS + (bytes / super::BYTES_PER_TICK) as u32;
        assert!(wrote > 0 && read > 0);
        assert!(write_ticks >= expected(wrote), "{wrote} bytes written for {write_ticks} ticks");
        assert!(read_ticks >= expected(read), "{read} bytes read for {read_ticks} ticks");
    }

    /// A peek copies as a read does, and is charged alike: a green thread that peeks at a full
    /// receive queue over and over is as busy as one that reads it.
    #[test]
    fn a_peek_spends_ticks_by_the_bytes_it_copies() {
        use std::io::Write;
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let (peeked, ticks) = rt.block_on(|| {
            crate::Builder::new()
                .budget(crate::runtime::MAX_BUDGET)
                .spawn(|| {
                    let listener = crate::net::TcpListener::bind("127.0.0.1:0").unwrap();
                    let mut writer = crate::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                    let (reader, _) = listener.accept().unwrap();
                    writer.write_all(&[7u8; 16 * 1024]).unwrap();
                    let mut got = vec![0u8; 16 * 1024];
                    // All of it queued first, so that the peek below does not park (a park
                    // refills the budget and spoils the count).
                    while reader.peek(&mut got).unwrap() < got.len() {
                        crate::time::sleep(std::time::Duration::from_millis(1));
                    }
                    let before = super::budget_left();
                    let peeked = reader.peek(&mut got).unwrap();
                    (peeked, before - super::budget_left())
                })
                .unwrap()
                .join()
                .unwrap()
        });
        let expected = super::OP_TICKS + (peeked / super::BYTES_PER_TICK) as u32;
        assert_eq!(peeked, 16 * 1024);
        assert!(ticks >= expected, "{peeked} bytes peeked for {ticks} ticks");
    }

    /// Datagrams are charged by their bytes as streams are: UDP and Unix datagram sockets,
    /// each way.
    #[test]
    fn a_datagram_spends_ticks_by_its_bytes() {
        use crate::reactor::Direction;
        use std::os::fd::AsFd;
        const SIZE: usize = 16 * 1024;
        fn measure(send: impl FnOnce(&[u8]) -> usize, ready: impl Fn() -> bool, recv: impl FnOnce(&mut [u8]) -> usize) {
            let before = super::budget_left();
            let sent = send(&[7u8; SIZE]);
            let send_ticks = before - super::budget_left();
            // The datagram queued before the receive is timed, so that it does not park (a
            // park refills the budget and spoils the count).
            while !ready() {
                crate::time::sleep(std::time::Duration::from_millis(1));
            }
            let mut got = vec![0u8; SIZE];
            let before = super::budget_left();
            let received = recv(&mut got);
            let recv_ticks = before - super::budget_left();
            let expected = super::OP_TICKS + (SIZE / super::BYTES_PER_TICK) as u32;
            assert_eq!((sent, received), (SIZE, SIZE));
            assert!(send_ticks >= expected, "{sent} bytes sent for {send_ticks} ticks");
            assert!(recv_ticks >= expected, "{received} bytes received for {recv_ticks} ticks");
        }
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            crate::Builder::new()
                .budget(crate::runtime::MAX_BUDGET)
                .spawn(|| {
                    let a = crate::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                    let b = crate::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                    let to = b.local_addr().unwrap();
                    let ready = || crate::io::ready_now(b.as_fd(), Direction::Read).unwrap();
                    measure(|d| a.send_to(d, to).unwrap(), ready, |buf| b.recv_from(buf).unwrap().0);

                    let (a, b) = crate::net::unix::UnixDatagram::pair().unwrap();
                    let ready = || crate::io::ready_now(b.as_fd(), Direction::Read).unwrap();
                    measure(|d| a.send(d).unwrap(), ready, |buf| b.recv(buf).unwrap());
                })
                .unwrap()
                .join()
                .unwrap()
        });
    }
}
