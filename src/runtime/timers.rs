//! A worker's timers: a min-heap of deadlines, each naming a green thread homed here by its
//! task and its slot.
//!
//! Entries are never removed early, and what a popped entry means is the worker's business:
//! it keeps at most one armed entry per green thread and re-arms it lazily (see
//! `Core::arm_timer` in `worker.rs`), so a green thread that parks with a deadline over and over,
//! as a read with a timeout does, pushes an entry about once per timeout rather than once per
//! park.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use super::task::TaskRef;

/// A deadline as the timers keep it: nanoseconds since the runtime's epoch, plus one. Eight
/// bytes where an `Instant` takes sixteen (a slot keeps two), and exact: `Instant` counts
/// nanoseconds too, so one deadline is before another exactly when its instant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline(NonZeroU64);

struct Entry {
    deadline: Deadline,
    /// Insertion order, so equal deadlines fire first-in first-out.
    order: u64,
    task: TaskRef,
    slot: usize,
}

/// An entry taken off the heap by [`Timers::pop_due`].
pub(crate) struct Due {
    pub(crate) deadline: Deadline,
    pub(crate) task: TaskRef,
    pub(crate) slot: usize,
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

impl Deadline {
    /// A deadline from its raw value, for tests that model the heap.
    #[cfg(test)]
    pub(crate) fn from_raw(raw: NonZeroU64) -> Deadline {
        Deadline(raw)
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

    /// Adds an entry for `task`, started in `slot`, due at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Deadline, task: TaskRef, slot: usize) {
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Entry { deadline, order, task, slot });
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
        let Entry { deadline, task, slot, .. } = self.heap.pop().expect("peeked");
        Some(Due { deadline, task, slot })
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every entry (shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}
