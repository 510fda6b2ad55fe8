//! The timer heap that sets the poll timeout.
//!
//! Entries carry the session slot, the session's generation and a timer kind. Cancelling is
//! lazy: the session keeps its current deadline per kind, and an entry that no longer
//! matches (the session is gone, or the deadline moved) is dropped when it comes due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerEntry {
    pub deadline: Instant,
    pub slot: usize,
    pub generation: u64,
    pub kind: u8,
}

#[derive(Default)]
pub struct TimerHeap {
    heap: BinaryHeap<Reverse<TimerEntry>>,
}

impl TimerHeap {
    pub fn new() -> TimerHeap {
        TimerHeap::default()
    }

    pub fn push(&mut self, entry: TimerEntry) {
        self.heap.push(Reverse(entry));
    }

    /// Time until the earliest deadline, for the poll timeout (`None`: no timer pending).
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse(e)| e.deadline.saturating_duration_since(now))
    }

    /// Removes and returns one entry that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerEntry> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.deadline <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_come_out_in_deadline_order() {
        let t0 = Instant::now();
        let mut heap = TimerHeap::new();
        for (i, ms) in [30u64, 10, 20].iter().enumerate() {
            heap.push(TimerEntry {
                deadline: t0 + Duration::from_millis(*ms),
                slot: i,
                generation: 1,
                kind: 0,
            });
        }
        assert_eq!(heap.next_timeout(t0), Some(Duration::from_millis(10)));
        assert!(heap.pop_due(t0).is_none());
        let now = t0 + Duration::from_millis(25);
        assert_eq!(heap.pop_due(now).map(|e| e.slot), Some(1));
        assert_eq!(heap.pop_due(now).map(|e| e.slot), Some(2));
        assert!(heap.pop_due(now).is_none());
        assert_eq!(heap.len(), 1);
    }
}
