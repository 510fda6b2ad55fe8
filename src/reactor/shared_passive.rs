//! The shared passive ports' accepts (`passive.shared`): the worker owns those listeners,
//! and each connection goes to the session that waits on the port for its source address,
//! or is refused and recorded (at a bounded rate) when none does.

use super::*;
use crate::limits::MAX_PASSIVE_ACCEPTS_PER_TURN;
use crate::services::shared_passive::SharedAccept;

impl Worker {
    /// Accepts on the shared listeners that reported readiness, a bounded number per
    /// listener per turn (the rest next turn: the loop does not sleep meanwhile).
    pub(super) fn shared_passive_accepts(&mut self, now: Instant, touched: &mut Vec<usize>) {
        if self.accept_paused_until.is_some_and(|t| t > now) {
            return;
        }
        let Some(shared) = self.services.passive.shared() else {
            return;
        };
        for index in shared.take_ready() {
            let mut drained = false;
            for _ in 0..MAX_PASSIVE_ACCEPTS_PER_TURN {
                let accepted = match self.services.passive.shared().map(|s| s.accept(index)) {
                    Some(Ok(accepted)) => accepted,
                    Some(Err(e))
                        if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) =>
                    {
                        // Out of descriptors: accepting pauses, this listener is kept ready.
                        log::warn!("shared passive accept paused: {e}");
                        self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                        break;
                    }
                    Some(Err(e)) => {
                        log::warn!("shared passive accept failed: {e}");
                        drained = true;
                        break;
                    }
                    None => return,
                };
                let SharedAccept::Connection {
                    stream,
                    peer,
                    local,
                    to,
                    waiting,
                } = accepted
                else {
                    drained = true;
                    break;
                };
                let mut ctx = self.services.ctx(self.poll.registry(), now);
                let session = to.and_then(|key| match self.slots.get_mut(key.slot) {
                    Some(Slot {
                        session: Some(session),
                        generation,
                    }) if *generation == key.generation => Some((key.slot, session)),
                    _ => None,
                });
                match session {
                    Some((slot, session)) => {
                        session.on_shared_connection(stream, peer, local, &mut ctx);
                        touched.push(slot);
                    }
                    None => {
                        drop(stream);
                        self.refuse_stray_data(peer, local, waiting, now);
                    }
                }
            }
            if !drained {
                if let Some(shared) = self.services.passive.shared() {
                    shared.still_ready(index);
                }
            }
        }
    }

    /// A connection to shared port `local` from an address no session waits for there
    /// (a thief, or a client too late or too early): closed, and recorded while the rate
    /// bound allows (the rest are counted, and the count goes into the next record).
    fn refuse_stray_data(
        &mut self,
        peer: SocketAddr,
        local: SocketAddr,
        waiting: usize,
        now: Instant,
    ) {
        log::warn!(
            "connection from {peer} to shared passive port {local} refused: no session waits for it"
        );
        let Some(unrecorded) = self
            .services
            .passive
            .shared()
            .and_then(|shared| shared.record_refusal(now))
        else {
            return;
        };
        let mut detail = format!(
            "data connection from {peer} to shared passive port {}: no session waits for \
             that address there ({waiting} waiting for others)",
            local.port()
        );
        if unrecorded > 0 {
            detail.push_str(&format!(
                " ({unrecorded} more refused before this one, not recorded)"
            ));
        }
        self.session_counter += 1;
        let session = format!("{}-{:x}", self.session_prefix, self.session_counter);
        let client = peer.to_string();
        let context = crate::audit::AuditContext {
            session: &session,
            client: &client,
            user: None,
            user_hex: None,
        };
        let record = crate::audit::AuditRecord::PolicyViolation {
            kind: "port_theft",
            detail,
        };
        self.services.audit.emit(&context, &record);
        self.services.metrics.observe(&record, None);
    }
}
