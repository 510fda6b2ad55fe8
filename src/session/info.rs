//! A session as the admin socket shows it (`ftpgate sessions`), and an operator's kill.

use std::time::Instant;

use super::Session;
use crate::admin::{SessionInfo, TransferInfo};
use crate::services::WorkerCtx;

impl Session {
    /// Whether the relay in flight moved a byte since the idle timer last looked (and
    /// remembers where it is now): read from its source, or taken by its sink's peer (what
    /// was written minus what the kernel still holds unacknowledged, so a slow reader that
    /// drains the socket buffers counts as moving). False without a relay.
    pub(super) fn relay_moved_since_idle_mark(&mut self) -> bool {
        let Some(relay) = self.sockets.relay.as_ref() else {
            return false;
        };
        let sink = match relay.direction {
            crate::session::control::Direction::Download => &relay.client.stream,
            crate::session::control::Direction::Upload => &relay.server.stream,
        };
        let taken = crate::os::unacknowledged_bytes(sink)
            .map_or(relay.bytes, |queued| relay.bytes.saturating_sub(queued));
        // Both counts only grow during a relay: their sum changes exactly when one moved.
        let mark = relay.read.wrapping_add(taken);
        let moved = mark != self.idle_mark;
        self.idle_mark = mark;
        moved
    }

    /// The session's id (the `session` of its audit events).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The logged-in (or announced) user.
    pub fn user_name(&self) -> Option<&str> {
        self.fsm.user().map(|u| u.name.as_str())
    }

    /// The (user, backend) labels of `ftpgate_sessions`: both empty before login, and for a
    /// user the policy does not know (a name a client chose is never a label).
    pub fn metric_labels(&self) -> (String, String) {
        match self.fsm.user() {
            Some(u) if self.fsm.is_logged_in() => match &u.known {
                Some(k) => (u.name.clone(), k.backend.clone()),
                None => (String::new(), String::new()),
            },
            _ => (String::new(), String::new()),
        }
    }

    /// What `ftpgate sessions` lists of this session, worker `worker`'s, at `now`.
    pub fn info(&self, worker: usize, now: Instant) -> SessionInfo {
        let user = self.fsm.user();
        let transfer = self
            .fsm
            .transfer_in_flight()
            .map(|(verb, path, direction)| {
                let (bytes, seconds) = match self.sockets.relay.as_ref() {
                    Some(relay) => (
                        relay.bytes,
                        now.saturating_duration_since(relay.started).as_secs_f64(),
                    ),
                    None => (0, 0.0),
                };
                TransferInfo {
                    verb: verb.to_owned(),
                    path,
                    direction: direction.as_str().to_owned(),
                    bytes,
                    seconds,
                    rate: if seconds > 0.0 {
                        (bytes as f64 / seconds) as u64
                    } else {
                        0
                    },
                }
            });
        SessionInfo {
            id: self.id.clone(),
            worker,
            user: user.map(|u| u.name.clone()),
            client: self.client_addr.to_string(),
            backend: user
                .and_then(|u| u.known.as_ref())
                .map(|k| k.backend.clone()),
            server: self.fsm.server().map(|s| s.to_string()),
            cwd: self.fsm.cwd().map(str::to_owned),
            transfer,
            age_seconds: now.saturating_duration_since(self.started).as_secs(),
        }
    }

    /// An operator killed the session (`ftpgate kill`): 421 now, a transfer in flight is
    /// cut and recorded, the session and its backend connection close.
    pub fn kill(&mut self, ctx: &mut WorkerCtx<'_>) {
        self.dispatch(crate::session::control::Event::Kill, ctx);
    }
}
