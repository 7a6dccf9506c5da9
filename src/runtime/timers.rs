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
/// bytes where an `Instant` takes sixteen (a slot keeps three), and exact: `Instant` counts
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
    /// Entries known to speak for nobody (superseded, or left by a green thread that
    /// finished) and not popped yet: when they are most of the heap, the worker drops them
    /// ([`Timers::wants_compaction`]).
    orphans: usize,
}

/// Orphaned entries below this many are left to come due: a compaction walks the whole heap.
const COMPACT_MIN: usize = 64;

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").field("len", &self.heap.len()).finish()
    }
}

impl Timers {
    /// Timers whose deadlines count from `epoch`: instants before it all count as the epoch.
    pub(crate) fn new(epoch: Instant) -> Timers {
        Timers { heap: BinaryHeap::new(), next_order: 0, epoch, orphans: 0 }
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
    /// If `slot` is past `u32::MAX`: more green threads started and alive at once on one
    /// worker than its slot table could hold.
    pub(crate) fn insert(&mut self, deadline: Deadline, slot: usize, occupant: u32) {
        let order = self.next_order;
        self.next_order += 1;
        let slot =
            u32::try_from(slot).expect("green: more than 2^32 green threads started and alive at once on one worker");
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
        let Entry { deadline, slot, occupant, .. } =
            self.heap.pop().expect(internal_error!("a timer found due a moment ago is gone"));
        Some(Due { deadline, slot: slot as usize, occupant })
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Counts `n` entries that speak for nobody from now on.
    pub(crate) fn orphaned(&mut self, n: usize) {
        self.orphans += n;
    }

    /// An entry that spoke for nobody came off the heap.
    pub(crate) fn orphan_popped(&mut self) {
        self.orphans = self.orphans.saturating_sub(1);
    }

    /// True when entries that speak for nobody are many and more than half the heap: a timed
    /// wait that keeps making its deadline earlier (a long read, then a shorter wait, then a
    /// shorter one still), or many green threads that finish during long timed waits, would
    /// otherwise grow it without bound until the deadlines come.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.orphans >= COMPACT_MIN && self.orphans * 2 > self.heap.len()
    }

    /// Keeps the entries for which `speaks(slot, occupant, deadline)` is true, and forgets the
    /// orphans: one pass over the heap, which `wants_compaction` spreads over as many pops.
    pub(crate) fn compact(&mut self, mut speaks: impl FnMut(usize, u32, Deadline) -> bool) {
        self.heap.retain(|e| speaks(e.slot as usize, e.occupant, e.deadline));
        self.orphans = 0;
    }

    /// Drops every entry (shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.orphans = 0;
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
/// not one per round. With a spare already kept, the armed entry is left to speak for nobody:
/// an orphan, which the worker counts and, once orphans are most of the heap, drops
/// ([`Timers::compact`]). Invariant: `armed < spare` when both are set, and each names an entry
/// in the heap.
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
    /// deadline equal the new green thread's armed one to the nanosecond. Even then it would
    /// do what the real entry, due at the same instant, does: nothing more.)
    occupant: u32,
}

/// What the start of a timed wait asks of the heap.
pub(crate) struct Begun {
    /// Push an entry at the wait's deadline.
    pub(crate) push: bool,
    /// An entry was left to speak for nobody.
    pub(crate) orphaned: bool,
}

/// What the worker does for a green thread's timer entry that came due.
pub(crate) enum Fired {
    /// Nothing: the entry spoke for nobody (an orphan).
    Orphan,
    /// Nothing: the entry spoke for a wait that is over, or that another entry covers.
    Nothing,
    /// Wake the wait with this sequence number: its deadline has come.
    Wake(u32),
    /// Push an entry at this deadline: it came early for a wait still on.
    Push(Deadline),
}

impl SlotTimer {
    /// Clears the timer for the next green thread to take the slot (or for none, as the last
    /// one finishes). Returns how many of the heap's entries were left to speak for nobody.
    pub(crate) fn next_occupant(&mut self) -> usize {
        let left = usize::from(self.armed.is_some()) + usize::from(self.spare.is_some());
        *self = SlotTimer { occupant: self.occupant.wrapping_add(1), ..SlotTimer::default() };
        left
    }

    /// True if an entry of `occupant` due at `deadline` speaks for this slot's green thread.
    pub(crate) fn is_named(&self, occupant: u32, deadline: Deadline) -> bool {
        occupant == self.occupant && (self.armed == Some(deadline) || self.spare == Some(deadline))
    }

    /// See the field.
    pub(crate) fn occupant(&self) -> u32 {
        self.occupant
    }

    /// A timed wait `seq` until `deadline` begins.
    pub(crate) fn begin(&mut self, deadline: Deadline, seq: u32) -> Begun {
        self.wait = Some(deadline);
        self.wait_seq = seq;
        if self.armed.is_some_and(|armed| armed <= deadline) {
            return Begun { push: false, orphaned: false };
        }
        let orphaned = self.arm(deadline);
        Begun { push: true, orphaned }
    }

    /// `deadline`, earlier than the armed entry if any, will be armed; the armed entry becomes
    /// the spare unless there is one (which is later still: the invariant), and is orphaned
    /// then. Returns true if it was.
    fn arm(&mut self, deadline: Deadline) -> bool {
        let orphaned = match self.spare {
            None => {
                self.spare = self.armed;
                false
            }
            Some(_) => self.armed.is_some(),
        };
        self.armed = Some(deadline);
        orphaned
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
            return Fired::Orphan;
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
        // No spare is kept here (it was just armed, or there was none): nothing is orphaned.
        self.arm(wait);
        Fired::Push(wait)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU64;
    use std::time::Instant;

    use super::{COMPACT_MIN, Deadline, Fired, SlotTimer, Timers};

    fn at(nanos: u64) -> Deadline {
        Deadline(NonZeroU64::new(nanos).expect("not 0"))
    }

    /// One green thread's timer in slot 0 against a real heap, as the worker drives them, over
    /// `rounds` timed waits: `wait(round)` gives each one's length in ticks and, if it ends
    /// early, after how many. No wait is woken before its deadline or missed after it.
    /// Returns the most entries the heap held, and how many compactions ran.
    fn drive(rounds: usize, mut wait: impl FnMut(usize) -> (u64, Option<u64>)) -> (usize, usize) {
        let mut timer = SlotTimer::default();
        timer.next_occupant();
        let mut timers = Timers::new(Instant::now());
        let (mut now, mut seq) = (1u64, 0u32);
        let (mut most, mut compactions) = (0, 0);
        for round in 0..rounds {
            let (length, early) = wait(round);
            let deadline = now + length;
            let begun = timer.begin(at(deadline), seq);
            if begun.orphaned {
                timers.orphaned(1);
            }
            if begun.push {
                timers.insert(at(deadline), 0, timer.occupant());
            }
            most = most.max(timers.len());
            let end = early.map_or(deadline, |after| now + after);
            // The worker fires what is due up to the end of the wait, then compacts if due.
            let mut woken = None;
            while let Some(due) = timers.pop_due(at(end)) {
                let fired_at = due.deadline.max(at(now));
                match timer.fired(due.occupant, due.deadline, fired_at, || seq) {
                    Fired::Orphan => timers.orphan_popped(),
                    Fired::Nothing => {}
                    Fired::Wake(s) => {
                        assert_eq!(s, seq, "a wake for a wait that is over");
                        assert!(fired_at >= at(deadline), "woken before its deadline");
                        woken = Some(fired_at);
                    }
                    Fired::Push(d) => {
                        assert!(d > fired_at, "pushed again at a deadline that has passed");
                        timers.insert(d, due.slot, due.occupant);
                    }
                }
            }
            if timers.wants_compaction() {
                timers.compact(|slot, occupant, deadline| slot == 0 && timer.is_named(occupant, deadline));
                compactions += 1;
            }
            if end < deadline {
                assert_eq!(woken, None, "woken by its timer before its deadline");
            } else {
                assert_eq!(woken, Some(at(deadline)), "its timer did not wake it at its deadline");
            }
            // Either way the wait ends, and the sequence moves on.
            seq = seq.wrapping_add(1);
            now = end + 1;
        }
        (most, compactions)
    }

    /// Long and short waits at random, four in five cut short at a random point: an armed
    /// entry and a spare, at most three entries, no compaction needed.
    #[test]
    fn long_and_short_waits_keep_a_few_entries() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let (most, compactions) = drive(20_000, |_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let length = if rng.is_multiple_of(3) { 10 } else { 1_000_000 };
            (length, (!rng.is_multiple_of(5)).then(|| (rng >> 8) % length))
        });
        assert!(most <= 3, "the heap held {most} entries for one green thread");
        assert_eq!(compactions, 0);
    }

    /// A long wait cut short, a shorter one cut short, then a short one that times out, over
    /// and over (a read with a 60 s timeout, a 5 s receive, a 1 ms sleep): each round orphans
    /// the middle wait's entry, long before its deadline. The compaction keeps the heap near
    /// `COMPACT_MIN` entries rather than one per round.
    #[test]
    fn deadlines_stepping_down_past_the_spare_are_kept_bounded_by_compaction() {
        let (most, compactions) = drive(30_000, |round| match round % 3 {
            0 => (60_000_000, Some(1)),
            1 => (5_000_000, Some(1)),
            _ => (1_000, None),
        });
        assert!(compactions > 0, "nothing was orphaned: the case is not exercised");
        assert!(most <= 2 * COMPACT_MIN + 3, "the heap held {most} entries for one green thread");
    }

    /// An entry left by the slot's previous green thread speaks for nobody, even one due at
    /// the same deadline as the new green thread's wait.
    #[test]
    fn an_entry_of_a_previous_occupant_is_an_orphan() {
        let mut timer = SlotTimer::default();
        timer.next_occupant();
        assert!(timer.begin(at(100), 7).push);
        let old = timer.occupant();
        assert_eq!(timer.next_occupant(), 1, "the armed entry is left behind");
        assert!(timer.begin(at(100), 0).push, "the new green thread arms its own entry");
        assert!(matches!(timer.fired(old, at(100), at(100), || 0), Fired::Orphan));
        assert!(matches!(timer.fired(timer.occupant(), at(100), at(100), || 0), Fired::Wake(0)));
    }
}
