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
use std::time::Instant;

use super::task::TaskRef;

struct Entry {
    deadline: Instant,
    /// Insertion order, so equal deadlines fire first-in first-out.
    order: u64,
    task: TaskRef,
    slot: usize,
}

/// An entry taken off the heap by [`Timers::pop_due`].
pub(crate) struct Due {
    pub(crate) deadline: Instant,
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
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    next_order: u64,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers").field("len", &self.heap.len()).finish()
    }
}

impl Timers {
    /// Adds an entry for `task`, started in `slot`, due at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, task: TaskRef, slot: usize) {
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Entry { deadline, order, task, slot });
    }

    /// The earliest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.deadline)
    }

    /// True if some entry is due at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|d| d <= now)
    }

    /// Takes the earliest entry if it is due at `now`. Entries due at the same instant come
    /// out in the order they went in.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Due> {
        if !self.is_due(now) {
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
