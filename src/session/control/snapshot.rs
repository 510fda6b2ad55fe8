//! What the admin socket shows of a session's control machine (`ftpgate sessions`): its
//! working directory, backend server and the transfer in flight. Read-only.

use std::net::SocketAddr;

use super::{ControlFsm, Direction, Phase};

impl ControlFsm {
    /// The backend's working directory as tracked for the audit trail.
    pub fn cwd(&self) -> Option<&str> {
        self.cwd.as_deref()
    }

    /// The user's idle timeout, once logged in.
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        self.user_timeouts()
            .map(|t| std::time::Duration::from_secs(t.idle))
    }

    /// The backend server of the pool the session connected to.
    pub fn server(&self) -> Option<SocketAddr> {
        self.server
    }

    /// The transfer in flight: its verb, the full path it names (or its argument), and
    /// which way its data moves.
    pub fn transfer_in_flight(&self) -> Option<(&'static str, String, Direction)> {
        let Phase::Transfer(t) = &self.phase else {
            return None;
        };
        let path = self
            .audit_path(t.verb, &t.arg)
            .unwrap_or_else(|| String::from_utf8_lossy(&t.arg).into_owned());
        Some((t.verb.name(), path, t.direction))
    }
}
