//! A stopping worker: its sessions told once that it stops (idle ones close at once with
//! 421), once more at the drain deadline, and closed at once on a second SIGTERM.

use super::*;

impl Worker {
    /// A stopping worker tells its sessions once that it stops (idle ones close at once
    /// with 421, the others after what is in flight), and once more at the drain deadline
    /// (421 now, transfers cut and recorded).
    pub(super) fn tell_sessions(&mut self, now: Instant, touched: &mut Vec<usize>) {
        let Some(since) = self.stopping_since else {
            return;
        };
        let deadline =
            now.saturating_duration_since(since) >= Duration::from_secs(self.policy.drain_timeout);
        if self.sessions_told && (self.deadline_told || !deadline) {
            return;
        }
        if deadline && !self.deadline_told {
            let live = self.slots.iter().filter(|s| s.session.is_some()).count();
            if live > 0 {
                log::warn!(
                    "worker {}: closing {live} sessions at the drain deadline",
                    self.index
                );
            }
        }
        for slot in 0..self.slots.len() {
            let mut ctx = self.services.ctx(self.poll.registry(), now);
            let Some(session) = self.slots[slot].session.as_mut() else {
                continue;
            };
            if !self.sessions_told {
                session.stop(&mut ctx);
            }
            if deadline && !self.deadline_told {
                session.drain_deadline(&mut ctx);
            }
            touched.push(slot);
        }
        self.sessions_told = true;
        self.deadline_told |= deadline;
    }

    /// Closes every session now: a transfer in flight is cut and recorded (result
    /// `shutdown`), each session records its end.
    pub(super) fn close_all(&mut self, now: Instant) {
        for slot in 0..self.slots.len() {
            let mut ctx = self.services.ctx(self.poll.registry(), now);
            if let Some(session) = self.slots[slot].session.as_mut() {
                session.drain_deadline(&mut ctx);
                session.force_close();
                self.remove(slot, now);
            }
        }
    }
}
