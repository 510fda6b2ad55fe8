//! What the control machine records of commands and logins: one event per command (before
//! login a repeat is only counted), the raw bytes of a line that is no command, the login's
//! outcome.

use super::*;

impl ControlFsm {
    pub(super) fn audit_command(
        &mut self,
        verb: &str,
        arg: &[u8],
        decision: &'static str,
        reply: u16,
        out: &mut Vec<Action>,
    ) {
        // Before login a command that repeats one already recorded (same verb, decision and
        // reply) is only counted: a flood costs the audit trail one line per kind and a
        // count in `session_end`, not a line per command. USER and PASS are always
        // recorded; after login every command is.
        if let Login::Pending(before) = &mut self.login {
            if verb != "USER" && verb != "PASS" {
                let seen = before
                    .audited
                    .iter()
                    .any(|(v, d, r)| v == verb && *d == decision && *r == reply);
                if seen {
                    *self.repeated.entry(verb.to_string()).or_default() += 1;
                    return;
                }
                before.audited.push((verb.to_string(), decision, reply));
            }
        }
        // A dry run's forwarded refusal (`enforce: false`) is recorded as what it would
        // have been.
        let decision = match self.would_deny {
            Some(denied) if denied == verb && decision == "allow" => {
                self.would_deny = None;
                "would_deny"
            }
            _ => decision,
        };
        out.push(Action::Audit(AuditRecord::Command {
            verb: verb.to_string(),
            arg: lossy(arg),
            arg_hex: hex_unless_utf8(arg),
            path: Verb::from_name(verb.as_bytes()).and_then(|v| self.audit_path(v, arg)),
            decision,
            reply,
            line_hex: None,
            line_bytes: None,
        }));
    }

    /// A line that is no command, recorded with its raw bytes (as many as
    /// [`crate::limits::MAX_AUDITED_LINE_BYTES`]) and a `malformed_command` violation; before
    /// login a repeat of one recorded is only counted, like every command.
    pub(super) fn audit_malformed(
        &mut self,
        error: &CommandError,
        line: &[u8],
        len: usize,
        reply: u16,
        out: &mut Vec<Action>,
    ) {
        let before = out.len();
        self.audit_command("", b"", "deny", reply, out);
        let Some(Action::Audit(AuditRecord::Command {
            line_hex,
            line_bytes,
            ..
        })) = out.get_mut(before)
        else {
            return; // counted as a repeat
        };
        let kept = line
            .get(..crate::limits::MAX_AUDITED_LINE_BYTES)
            .unwrap_or(line);
        *line_hex = Some(crate::tls::hex(kept));
        *line_bytes = Some(len as u64);
        out.push(Action::Audit(AuditRecord::PolicyViolation {
            kind: "malformed_command",
            detail: format!("{error} ({len} bytes)"),
        }));
    }

    pub(super) fn audit_login(
        &self,
        result: &'static str,
        reason: Option<&'static str>,
        out: &mut Vec<Action>,
    ) {
        let Some(user) = &self.user else { return };
        out.push(Action::Audit(AuditRecord::Login {
            result,
            role: user.known.as_ref().map(|k| k.role.clone()),
            backend: user.known.as_ref().map(|k| k.backend.clone()),
            server: self.server.map(|s| s.to_string()),
            target: user.target.clone(),
            reason,
        }));
    }
}
