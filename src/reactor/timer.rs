//! The timer heap that sets the poll timeout.
//!
//! An indexed binary min-heap with **at most one entry per (session slot, timer kind)**:
//! arming a timer that is already armed moves its entry (up or down the heap) instead of
//! pushing another, and cancelling removes the entry at once. So the heap never holds more
//! than `slots × kinds` entries, whatever the rate at which a peer makes a session re-arm
//! its timers (a client pipelining commands re-arms the idle timer with every one of them;
//! a lazily cancelled heap grew by one entry per command, hundreds of MB in seconds).
//!
//! Entries also carry the session's generation, so an entry left by a session that is gone
//! can never fire for the next session in the same slot (the reactor checks it).

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerEntry {
    pub deadline: Instant,
    pub slot: usize,
    pub generation: u64,
    pub kind: u8,
}

/// Position of an absent key in `positions`.
const ABSENT: u32 = u32::MAX;

pub struct TimerHeap {
    /// Timer kinds per slot (the key of an entry is `slot * kinds + kind`).
    kinds: usize,
    heap: Vec<TimerEntry>,
    /// Index into `heap` of each key's entry, `ABSENT` when it has none.
    positions: Vec<u32>,
}

impl TimerHeap {
    /// A heap for sessions with `kinds` timer kinds each.
    pub fn new(kinds: usize) -> TimerHeap {
        TimerHeap {
            kinds: kinds.max(1),
            heap: Vec::new(),
            positions: Vec::new(),
        }
    }

    fn key(&self, slot: usize, kind: u8) -> Option<usize> {
        let kind = usize::from(kind);
        if kind >= self.kinds {
            return None;
        }
        slot.checked_mul(self.kinds)?.checked_add(kind)
    }

    fn key_of(&self, entry: &TimerEntry) -> Option<usize> {
        self.key(entry.slot, entry.kind)
    }

    /// Arms the timer `(entry.slot, entry.kind)` for `entry.deadline`, replacing the
    /// deadline it had.
    pub fn set(&mut self, entry: TimerEntry) {
        let Some(key) = self.key_of(&entry) else {
            return;
        };
        if key >= self.positions.len() {
            self.positions.resize(key + 1, ABSENT);
        }
        match self.positions.get(key).copied() {
            Some(pos) if pos != ABSENT => {
                let pos = pos as usize;
                let Some(old) = self.heap.get_mut(pos) else {
                    return;
                };
                let earlier = entry.deadline < old.deadline;
                *old = entry;
                if earlier {
                    self.sift_up(pos);
                } else {
                    self.sift_down(pos);
                }
            }
            _ => {
                let pos = self.heap.len();
                self.heap.push(entry);
                self.place(pos);
                self.sift_up(pos);
            }
        }
    }

    /// Disarms the timer `(slot, kind)`; nothing happens when it is not armed.
    pub fn cancel(&mut self, slot: usize, kind: u8) {
        let Some(key) = self.key(slot, kind) else {
            return;
        };
        let Some(pos) = self.positions.get(key).copied().filter(|&p| p != ABSENT) else {
            return;
        };
        self.remove_at(pos as usize);
    }

    /// Disarms every timer of `slot` (its session is gone).
    pub fn cancel_slot(&mut self, slot: usize) {
        for kind in 0..self.kinds {
            if let Ok(kind) = u8::try_from(kind) {
                self.cancel(slot, kind);
            }
        }
    }

    /// Time until the earliest deadline, for the poll timeout (`None`: no timer pending).
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .first()
            .map(|e| e.deadline.saturating_duration_since(now))
    }

    /// Removes and returns one entry that is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<TimerEntry> {
        let first = *self.heap.first()?;
        if first.deadline > now {
            return None;
        }
        self.remove_at(0);
        Some(first)
    }

    /// Entries in the heap (at most slots × kinds).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn remove_at(&mut self, pos: usize) {
        let Some(removed) = self.heap.get(pos).copied() else {
            return;
        };
        if let Some(key) = self.key_of(&removed) {
            if let Some(p) = self.positions.get_mut(key) {
                *p = ABSENT;
            }
        }
        let last = self.heap.len() - 1;
        if pos != last {
            self.heap.swap(pos, last);
            self.heap.pop();
            self.place(pos);
            // The moved entry may belong above or below its new place.
            let pos = self.sift_up(pos);
            self.sift_down(pos);
        } else {
            self.heap.pop();
        }
    }

    /// Records the position of the entry at `pos`.
    fn place(&mut self, pos: usize) {
        let Some(key) = self.heap.get(pos).and_then(|e| self.key_of(e)) else {
            return;
        };
        if let Some(p) = self.positions.get_mut(key) {
            *p = pos as u32;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.place(a);
        self.place(b);
    }

    fn sift_up(&mut self, mut pos: usize) -> usize {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.heap[pos].deadline >= self.heap[parent].deadline {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
        pos
    }

    fn sift_down(&mut self, mut pos: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            let right = left + 1;
            let mut smallest = pos;
            if left < len && self.heap[left].deadline < self.heap[smallest].deadline {
                smallest = left;
            }
            if right < len && self.heap[right].deadline < self.heap[smallest].deadline {
                smallest = right;
            }
            if smallest == pos {
                return;
            }
            self.swap(pos, smallest);
            pos = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(t0: Instant, ms: u64, slot: usize, kind: u8) -> TimerEntry {
        TimerEntry {
            deadline: t0 + Duration::from_millis(ms),
            slot,
            generation: 1,
            kind,
        }
    }

    /// Every entry's position is recorded and the heap property holds.
    fn check(heap: &TimerHeap) {
        for (pos, e) in heap.heap.iter().enumerate() {
            let key = heap.key_of(e).unwrap();
            assert_eq!(heap.positions[key] as usize, pos);
            if pos > 0 {
                assert!(heap.heap[(pos - 1) / 2].deadline <= e.deadline);
            }
        }
        let present = heap.positions.iter().filter(|&&p| p != ABSENT).count();
        assert_eq!(present, heap.heap.len());
    }

    #[test]
    fn due_entries_come_out_in_deadline_order() {
        let t0 = Instant::now();
        let mut heap = TimerHeap::new(4);
        for (i, ms) in [30u64, 10, 20].iter().enumerate() {
            heap.set(entry(t0, *ms, i, 0));
        }
        assert_eq!(heap.next_timeout(t0), Some(Duration::from_millis(10)));
        assert!(heap.pop_due(t0).is_none());
        let now = t0 + Duration::from_millis(25);
        assert_eq!(heap.pop_due(now).map(|e| e.slot), Some(1));
        assert_eq!(heap.pop_due(now).map(|e| e.slot), Some(2));
        assert!(heap.pop_due(now).is_none());
        assert_eq!(heap.len(), 1);
        check(&heap);
    }

    #[test]
    fn rearming_replaces_the_entry_instead_of_adding_one() {
        let t0 = Instant::now();
        let mut heap = TimerHeap::new(4);
        // A client pipelining a million commands re-arms its idle timer a million times.
        for i in 0..1_000_000u64 {
            heap.set(entry(t0, 300_000 + i, 7, 1));
        }
        assert_eq!(heap.len(), 1);
        // Moving a deadline earlier works too.
        heap.set(entry(t0, 5, 7, 1));
        assert_eq!(heap.len(), 1);
        assert_eq!(heap.next_timeout(t0), Some(Duration::from_millis(5)));
        check(&heap);
    }

    #[test]
    fn cancel_removes_at_once_and_only_its_own_key() {
        let t0 = Instant::now();
        let mut heap = TimerHeap::new(3);
        heap.set(entry(t0, 10, 0, 0));
        heap.set(entry(t0, 20, 0, 1));
        heap.set(entry(t0, 30, 1, 0));
        heap.cancel(0, 0);
        heap.cancel(5, 2); // never armed
        heap.cancel(0, 9); // no such kind
        assert_eq!(heap.len(), 2);
        check(&heap);
        assert_eq!(heap.next_timeout(t0), Some(Duration::from_millis(20)));
        heap.cancel_slot(0);
        assert_eq!(heap.len(), 1);
        assert_eq!(
            heap.pop_due(t0 + Duration::from_secs(1)).map(|e| e.slot),
            Some(1)
        );
        assert!(heap.is_empty());
        check(&heap);
    }

    #[test]
    fn random_operations_keep_the_heap_and_its_index_consistent() {
        // A small deterministic generator (no dependency): a linear congruential sequence.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let t0 = Instant::now();
        let mut heap = TimerHeap::new(5);
        let mut model = std::collections::HashMap::new();
        for _ in 0..20_000 {
            let slot = (next() % 50) as usize;
            let kind = (next() % 5) as u8;
            match next() % 4 {
                0 | 1 => {
                    let ms = next() % 10_000;
                    heap.set(entry(t0, ms, slot, kind));
                    model.insert((slot, kind), ms);
                }
                2 => {
                    heap.cancel(slot, kind);
                    model.remove(&(slot, kind));
                }
                _ => {
                    let now = t0 + Duration::from_millis(next() % 10_000);
                    if let Some(e) = heap.pop_due(now) {
                        let ms = model.remove(&(e.slot, e.kind)).unwrap();
                        assert_eq!(e.deadline, t0 + Duration::from_millis(ms));
                        let min = model.values().min().copied();
                        // Nothing still in the heap was due earlier than what came out.
                        assert!(min.is_none_or(|m| m >= ms));
                    }
                }
            }
            assert!(heap.len() <= 50 * 5);
        }
        assert_eq!(heap.len(), model.len());
        check(&heap);
    }
}
