//! A worker's timers: a min-heap of deadlines, each waking one internal wait.
//!
//! Entries are never removed early. A wait that ended for another reason leaves its entry
//! behind; when it fires, its wake carries a stale sequence number and is ignored (see
//! `task.rs`). This keeps `sleep` and every timed wait at one heap push, at the price of keeping
//! stale entries until their deadline.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::task::TaskRef;

struct Entry {
    deadline: Instant,
    /// Insertion order, so equal deadlines fire first-in first-out.
    order: u64,
    task: TaskRef,
    seq: u32,
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
    /// Arms a wake of `task`'s wait `seq` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, task: TaskRef, seq: u32) {
        let order = self.next_order;
        self.next_order += 1;
        self.heap.push(Entry { deadline, order, task, seq });
    }

    /// The earliest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.deadline)
    }

    /// True if some entry is due at `now`.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|d| d <= now)
    }

    /// Removes the entries due at `now`, calling `fire(task, seq)` for each in deadline order.
    pub(crate) fn fire_due(&mut self, now: Instant, mut fire: impl FnMut(TaskRef, u32)) {
        while self.is_due(now) {
            let entry = self.heap.pop().expect("peeked");
            fire(entry.task, entry.seq);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every entry (shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}
