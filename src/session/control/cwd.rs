//! The backend's working directory, for the full paths of the audit trail: ftpgate's own
//! PWD after login, then every successful CWD/CDUP followed lexically.

use super::*;

impl ControlFsm {
    /// Sends ftpgate's own PWD to the backend; see [`Phase::AwaitPwd`].
    pub(super) fn ask_pwd(&mut self, out: &mut Vec<Action>) {
        out.push(Action::SendServer(Command::new(Verb::Pwd, b"")));
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
        self.phase = Phase::AwaitPwd;
    }

    /// The backend's reply to ftpgate's PWD. Only a `/` path is tracked: an error, or a path
    /// of another shape (a z/OS data set prefix), leaves the working directory unknown.
    pub(super) fn on_pwd_reply(&mut self, reply: &Reply) {
        self.cwd = if reply.code == codes::PATHNAME_CREATED {
            parse_pwd_reply(reply.text())
                .filter(|p| p.starts_with('/') && p.len() <= MAX_TRACKED_PATH)
                .map(|p| resolve("/", &p))
        } else {
            None
        };
    }

    /// Follows a successful CWD or CDUP (lexically, see [`crate::ftp::path`]). Returns true
    /// when the new directory cannot be computed here and must be asked for with PWD: CWD
    /// without an argument or to `~...` (the server's home), SMNT.
    pub(super) fn follow_cwd(&mut self, verb: Verb, arg: &[u8]) -> bool {
        let target = match verb {
            Verb::Cwd => lossy(arg),
            Verb::Cdup => "..".to_string(),
            Verb::Smnt => return true,
            _ => return false,
        };
        if target.is_empty() || target.starts_with('~') {
            return true;
        }
        let base = match &self.cwd {
            Some(cwd) => cwd.as_str(),
            None if target.starts_with('/') => "/",
            // Relative to an unknown directory: still unknown.
            None => return false,
        };
        let cwd = resolve(base, &target);
        self.cwd = (cwd.len() <= MAX_TRACKED_PATH).then_some(cwd);
        false
    }

    /// The full path a command names, for the audit trail: the path part of its argument
    /// ([`named_path`]) resolved against the working directory. While the working directory
    /// is unknown, a relative argument is logged as given behind a `?` (`?file.csv`).
    /// `None` before login and for commands that name no path.
    pub(super) fn audit_path(&self, verb: Verb, arg: &[u8]) -> Option<String> {
        if !self.is_logged_in() {
            return None;
        }
        let arg = lossy(arg);
        let named = named_path(verb, &arg)?;
        Some(match &self.cwd {
            Some(cwd) => resolve(cwd, named),
            None if named.starts_with('/') => resolve("/", named),
            None => format!("?{named}"),
        })
    }

    /// The reply to ftpgate's own PWD: it sets the working directory and the client never
    /// sees it.
    pub(super) fn on_own_pwd_reply(&mut self, reply: Reply, out: &mut Vec<Action>) {
        if reply.is_preliminary() {
            self.phase = Phase::AwaitPwd;
            return;
        }
        // ftpgate's own command: the client never sees its reply.
        self.on_pwd_reply(&reply);
        self.enter_ready(out);
    }
}
