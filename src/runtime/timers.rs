//! A worker's timers: a min-heap of deadlines, each naming a green thread homed here by its
//! slot and the occupant count of that slot (no reference to the task: a green thread that
//! finishes during a timed wait is freed at once, whatever its entries' deadlines).
//!
//! Entries are never removed early. What a popped entry means is decided by the green
//! thread's [`SlotTimer`], kept in its slot: one entry speaks for it and is re-armed lazily, so
//! a green thread that parks with a deadline over and over, as a read with a timeout does,
//! pushes an entry about once per timeout rather than once per park.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// A deadline as the timers keep it: nanoseconds since the runtime's epoch, plus one. Eight
/// bytes where an `Instant` takes sixteen (a slot keeps two), and exact: `Instant` counts
/// nanoseconds too, so one deadline is before another exactly when its instant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(NonZeroU64);

struct Entry {
    deadline: Deadline,
    /// Insertion order, so equal deadlines fire first-in first-out.
    order: u64,
    slot: u32,
    occupant: u32,
}

/// An entry taken off the heap by [`Timers::pop_due`].
pub(crate) struct Due {
    pub(crate) deadline: Deadline,
    pub(crate) slot: usize,
    /// [`SlotTimer::occupant`] when it was pushed.
    pub(crate) occupant: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap and we want the earliest deadline on top.
        (other.deadline, other.order).cmp(&(self.deadline, self.order))
    }
}

/// The timer heap of one worker. Touched only by that worker.
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    next_order: u64,
    /// What deadlines count from: the runtime's start.
    epoch: Instant,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").field("len", &self.heap.len()).finish()
    }
}

impl Timers {
    /// Timers whose deadlines count from `epoch`: instants before it all count as the epoch.
    pub(crate) fn new(epoch: Instant) -> Timers {
        Timers { heap: BinaryHeap::new(), next_order: 0, epoch }
    }

    /// `at` as a deadline (saturated at about 584 years after the epoch).
    pub(crate) fn deadline(&self, at: Instant) -> Deadline {
        let nanos = u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1);
        Deadline(NonZeroU64::MIN.saturating_add(nanos))
    }

    /// The instant of `deadline`.
    pub(crate) fn instant(&self, deadline: Deadline) -> Instant {
        self.epoch + Duration::from_nanos(deadline.0.get() - 1)
    }

    /// Adds an entry due at `deadline` for the green thread in `slot`, its `occupant`.
    ///
    /// # Panics
    ///
    /// If `slot` is past `u32::MAX`: four billion started green threads on one worker.
    pub(crate) fn insert(&mut self, deadline: Deadline, slot: usize, occupant: u32) {
        let order = self.next_order;
        self.next_order += 1;
        let slot = u32::try_from(slot).expect("green: a slot index past u32");
        self.heap.push(Entry { deadline, order, slot, occupant });
    }

    /// The earliest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| self.instant(e.deadline))
    }

    /// True if some entry is due at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.heap.peek().is_some_and(|e| e.deadline <= self.deadline(now))
    }

    /// Takes the earliest entry if it is due at `now` (a deadline from [`Timers::deadline`]).
    /// Entries due at the same instant come out in the order they went in.
    pub(crate) fn pop_due(&mut self, now: Deadline) -> Option<Due> {
        if self.heap.peek().is_none_or(|e| e.deadline > now) {
            return None;
        }
        let Entry { deadline, slot, occupant, .. } = self.heap.pop().expect("peeked");
        Some(Due { deadline, slot: slot as usize, occupant })
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every entry (shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}

/// A green thread's timer, armed lazily: one heap entry speaks for it, early or on time, and
/// one more may wait behind it for later use.
///
/// A timed park records its deadline in `wait` and pushes an entry only if none is armed at
/// that deadline or before. An entry that comes due before the wait's deadline is pushed again
/// at that deadline, if the wait is still on. So a green thread that parks with a deadline
/// again and again (a read with a timeout, once per message) pushes about one entry per
/// timeout, and the heap holds about one entry per such green thread, where one entry per park
/// would pile up, each kept until its deadline: a million at 50,000 reads a second with a
/// 20-second timeout.
///
/// A deadline earlier than the armed one (a short sleep between two such reads) needs an entry
/// of its own; the armed one is kept as the `spare` and speaks for the green thread again once
/// the earlier one has come due, so that alternating long and short waits keep two entries,
/// not one per round. Invariant: `armed < spare` when both are set, and each names an entry in
/// the heap.
#[derive(Default)]
pub(crate) struct SlotTimer {
    /// The deadline of the heap entry that speaks for this green thread. An entry popped with
    /// another deadline was superseded, or belongs to a green thread that had the slot before:
    /// it is dropped.
    armed: Option<Deadline>,
    /// A later entry, superseded by `armed`, that takes over when `armed` comes due.
    spare: Option<Deadline>,
    /// The deadline of its latest timed wait, if it has not been seen to end.
    wait: Option<Deadline>,
    /// That wait's sequence number.
    wait_seq: u32,
    /// Counts the green threads that have had this slot, wrapping. Entries carry it, so one
    /// left by an earlier green thread speaks for nobody. (For a false match, one slot would
    /// have to change hands four billion times while an entry waited, and that entry's
    /// deadline equal the new green thread's armed one to the nanosecond; the worst it could
    /// do is wake a timed wait early, which every timed wait but `park_timeout` re-checks, and
    /// that one may return early anyway.)
    occupant: u32,
}

/// What the worker does for a green thread's timer entry that came due.
pub(crate) enum Fired {
    /// Nothing: the entry spoke for nobody, or for a wait that is over or still covered.
    Nothing,
    /// Wake the wait with this sequence number: its deadline has come.
    Wake(u32),
    /// Push an entry at this deadline: it came early for a wait still on.
    Push(Deadline),
}

impl SlotTimer {
    /// Clears the timer for the next green thread to take the slot.
    pub(crate) fn next_occupant(&mut self) {
        *self = SlotTimer { occupant: self.occupant.wrapping_add(1), ..SlotTimer::default() };
    }

    /// See the field.
    pub(crate) fn occupant(&self) -> u32 {
        self.occupant
    }

    /// A timed wait `seq` until `deadline` begins. True if an entry at `deadline` must be pushed.
    pub(crate) fn begin(&mut self, deadline: Deadline, seq: u32) -> bool {
        self.wait = Some(deadline);
        self.wait_seq = seq;
        if self.armed.is_some_and(|armed| armed <= deadline) {
            return false;
        }
        self.arm(deadline);
        true
    }

    /// `deadline`, earlier than the armed entry if any, will be armed; the armed entry becomes
    /// the spare unless there is one (which is later still: the invariant).
    fn arm(&mut self, deadline: Deadline) {
        if self.spare.is_none() {
            self.spare = self.armed;
        }
        self.armed = Some(deadline);
    }

    /// An entry of this slot's `occupant`, due at `deadline`, came off the heap at `now`;
    /// `seq_now` reads the green thread's wait sequence number now.
    pub(crate) fn fired(
        &mut self,
        occupant: u32,
        deadline: Deadline,
        now: Deadline,
        seq_now: impl FnOnce() -> u32,
    ) -> Fired {
        if occupant != self.occupant || self.armed != Some(deadline) {
            return Fired::Nothing;
        }
        self.armed = self.spare.take();
        let Some(wait) = self.wait else { return Fired::Nothing };
        if wait <= now {
            self.wait = None;
            return Fired::Wake(self.wait_seq);
        }
        if seq_now() != self.wait_seq {
            // The sequence moves on as a wait ends: this one is over.
            self.wait = None;
            return Fired::Nothing;
        }
        if self.armed.is_some_and(|armed| armed <= wait) {
            return Fired::Nothing; // The spare, armed now, covers the wait.
        }
        self.arm(wait);
        Fired::Push(wait)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BinaryHeap;
    use std::num::NonZeroU64;

    use super::{Deadline, Fired, SlotTimer};

    fn at(nanos: u64) -> Deadline {
        Deadline(NonZeroU64::new(nanos).expect("not 0"))
    }

    /// One green thread's timer against a model heap, over a pseudo-random run of timed waits
    /// that end early or time out, long and short: no wait is woken before its deadline or
    /// missed after it, and the heap never holds more than a few entries for it.
    #[test]
    fn a_slot_timer_wakes_each_wait_on_time_with_few_entries() {
        let mut timer = SlotTimer::default();
        let mut heap: BinaryHeap<std::cmp::Reverse<Deadline>> = BinaryHeap::new();
        let (mut now, mut seq, mut rng) = (1u64, 0u32, 0x2545_f491_4f6c_dd1du64);
        let mut most = 0;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // A wait of 10 or 1,000,000 ticks, ending early or not.
            let length = if rng % 3 == 0 { 10 } else { 1_000_000 };
            let deadline = now + length;
            if timer.begin(at(deadline), seq) {
                heap.push(std::cmp::Reverse(at(deadline)));
            }
            most = most.max(heap.len());
            let ends_early = rng % 5 != 0;
            let end = if ends_early { now + rng % length } else { deadline };
            // The worker fires what is due up to the end of the wait.
            let mut woken = None;
            while let Some(&std::cmp::Reverse(due)) = heap.peek() {
                if due > at(end) {
                    break;
                }
                heap.pop();
                let fired_at = due.max(at(now));
                match timer.fired(0, due, fired_at, || seq) {
                    Fired::Nothing => {}
                    Fired::Wake(s) => {
                        assert_eq!(s, seq, "a wake for a wait that is over");
                        assert!(fired_at >= at(deadline), "woken before its deadline");
                        woken = Some(fired_at);
                    }
                    Fired::Push(d) => {
                        assert!(d > fired_at, "pushed again at a deadline that has passed");
                        heap.push(std::cmp::Reverse(d));
                    }
                }
            }
            if ends_early && end < deadline {
                assert_eq!(woken, None, "woken by its timer before its deadline");
            } else {
                assert_eq!(woken, Some(at(deadline)), "its timer did not wake it at its deadline");
            }
            // Either way the wait ends, and the sequence moves on.
            seq = seq.wrapping_add(1);
            now = end + 1;
        }
        assert!(most <= 3, "the heap held {most} entries for one green thread");
    }
}
