//! A worker's run queue: a FIFO ring of ready green threads.
//!
//! Every yield pushes one entry and pops one, so this is on the switch path. A power-of-two
//! ring with free-running head and tail counters makes both a mask and a store, where
//! `VecDeque` pays for its general wrap-around arithmetic.

/// A ready green thread: its slot, and the value of the worker's `spawned` count when it was
/// queued (`Core::next_ready` orders it against unstarted green threads with it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ready {
    pub(crate) slot: usize,
    pub(crate) ticket: u64,
}

#[derive(Debug)]
pub(crate) struct RunQueue {
    /// Length a power of two (or zero before the first push).
    buf: Box<[Ready]>,
    /// Position of the front entry; only ever grows (wrapping).
    head: usize,
    /// Position after the back entry; only ever grows (wrapping).
    tail: usize,
}

impl RunQueue {
    pub(crate) fn new() -> RunQueue {
        RunQueue { buf: Box::default(), head: 0, tail: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.tail.wrapping_sub(self.head)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    #[inline]
    pub(crate) fn push_back(&mut self, entry: Ready) {
        if self.len() == self.buf.len() {
            self.grow();
        }
        let mask = self.buf.len() - 1;
        self.buf[self.tail & mask] = entry;
        self.tail = self.tail.wrapping_add(1);
    }

    #[inline]
    pub(crate) fn front(&self) -> Option<Ready> {
        if self.is_empty() {
            return None;
        }
        Some(self.buf[self.head & (self.buf.len() - 1)])
    }

    #[cfg(test)]
    fn pop_front(&mut self) -> Option<Ready> {
        let entry = self.front()?;
        self.skip_front();
        Some(entry)
    }

    /// Drops the front entry, which the caller has seen with `front`.
    #[inline]
    pub(crate) fn skip_front(&mut self) {
        debug_assert!(!self.is_empty());
        self.head = self.head.wrapping_add(1);
    }

    /// The entries, front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Ready> + '_ {
        let mask = self.buf.len().wrapping_sub(1);
        (0..self.len()).map(move |i| self.buf[self.head.wrapping_add(i) & mask])
    }

    /// Moves the entries for which `first` is true to the front, keeping the order within
    /// each part (a shutdown's holders-first order, `Core::cancel_all`).
    #[cold]
    pub(crate) fn move_to_front(&mut self, mut first: impl FnMut(Ready) -> bool) {
        let (mut entries, back): (Vec<Ready>, Vec<Ready>) = self.iter().partition(|&entry| first(entry));
        entries.extend(back);
        let mask = self.buf.len().wrapping_sub(1);
        for (i, entry) in entries.into_iter().enumerate() {
            self.buf[self.head.wrapping_add(i) & mask] = entry;
        }
    }

    #[cold]
    fn grow(&mut self) {
        let capacity = (self.buf.len() * 2).max(16);
        let mut buf = vec![Ready::default(); capacity].into_boxed_slice();
        for (i, entry) in self.iter().enumerate() {
            buf[i] = entry;
        }
        self.tail = self.len();
        self.head = 0;
        self.buf = buf;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_across_wrap_and_growth() {
        let mut queue = RunQueue::new();
        let mut expected = std::collections::VecDeque::new();
        let mut next = 0;
        // Pushes outpace pops, so the ring wraps and grows several times with entries in it.
        for round in 0..200 {
            for _ in 0..3 {
                let entry = Ready { slot: next, ticket: round };
                queue.push_back(entry);
                expected.push_back(entry);
                next += 1;
            }
            for _ in 0..2 {
                assert_eq!(queue.pop_front(), expected.pop_front());
            }
            assert_eq!(queue.len(), expected.len());
            assert!(queue.iter().eq(expected.iter().copied()));
        }
        while let Some(entry) = expected.pop_front() {
            assert_eq!(queue.pop_front(), Some(entry));
        }
        assert!(queue.is_empty());
        assert_eq!(queue.pop_front(), None);
    }

    #[test]
    fn move_to_front_is_a_stable_partition_across_wrap() {
        let mut queue = RunQueue::new();
        for slot in 0..12 {
            queue.push_back(Ready { slot, ticket: 0 });
        }
        for _ in 0..10 {
            queue.pop_front();
        }
        // Wraps: head near the end of the 16-entry ring.
        for slot in 12..20 {
            queue.push_back(Ready { slot, ticket: 0 });
        }
        queue.move_to_front(|r| r.slot % 3 == 0);
        let order: Vec<usize> = queue.iter().map(|r| r.slot).collect();
        assert_eq!(order, [12, 15, 18, 10, 11, 13, 14, 16, 17, 19]);
        RunQueue::new().move_to_front(|_| true);
    }
}
