//! Commands after login: the role check (by what a command does, see
//! `crate::ftp::permission`), commands answered locally, commands forwarded to the backend
//! and their replies, FEAT filtering.

use super::*;

pub(crate) const FILTERED_FEATURES: &[&str] = &[
    "AUTH", "PBSZ", "PROT", "CCC", "HOST", "EPRT", "EPSV", "PASV", "SPSV", "LPSV", "LPRT", "ADAT",
    "MIC", "CONF", "ENC",
];

/// ftpgate's own FEAT answer before login (no backend is known yet): its own features and
/// `backend`, what every pool offers.
pub(super) fn local_features(tls: bool, backend: &[String]) -> Reply {
    feat_reply(tls, backend)
}

/// `211` with ftpgate's own features first (TLS when it can terminate it, the data-connection
/// commands it handles itself), then `relayed`; each line with its leading space (RFC 2389).
fn feat_reply(tls: bool, relayed: &[String]) -> Reply {
    let mut lines: Vec<&str> = Vec::with_capacity(relayed.len() + 6);
    if tls {
        lines.extend(["AUTH TLS", "PBSZ", "PROT"]);
    }
    lines.extend(["EPRT", "EPSV", "PASV"]);
    lines.extend(relayed.iter().map(String::as_str));
    Reply::features(codes::SYSTEM_STATUS, "Features:", &lines, "End")
}

/// Whether a role may use the command a feature line names (`MFMT`, `MDTM`, `SIZE`,
/// `MLST`); features that name no command (`UTF8`, `TVFS`, `REST STREAM`) are kept.
///
/// A client believes FEAT: told about a command the role refuses, it uses it and fails
/// where the backend alone would have served it (rclone sets an uploaded file's time with
/// `MFMT` when it is advertised, and fails the upload on the 550); not told, it does without.
fn role_may_use(keyword: &str, allow: VerbSet) -> bool {
    match keyword {
        // RFC 3659 §7.8: the MLST feature announces both MLST and MLSD.
        "MLST" => allow.contains(Verb::Mlst) || allow.contains(Verb::Mlsd),
        keyword => match Verb::from_name(keyword.as_bytes()) {
            Some(verb) if !verb.is_plumbing() => {
                permission::needs(verb, b"").granted(|v| allow.contains(v))
            }
            _ => true,
        },
    }
}

/// The backend's FEAT answer, minus what ftpgate handles itself (TLS, data-connection
/// setup, HOST) and what the user's role may not use (`allow`), plus what ftpgate offers
/// itself.
pub(super) fn filter_features(
    reply: Reply,
    tls: bool,
    fallback: &[String],
    allow: Option<VerbSet>,
) -> Reply {
    if !reply.is_positive_completion() || !reply.is_multiline() {
        return local_features(tls, fallback);
    }
    let mut features: Vec<String> = Vec::new();
    let count = reply.lines.len();
    for line in reply.lines.iter().take(count.saturating_sub(1)).skip(1) {
        let text = String::from_utf8_lossy(line);
        let keyword = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if keyword.is_empty() || FILTERED_FEATURES.contains(&keyword.as_str()) {
            continue;
        }
        if allow.is_some_and(|allow| !role_may_use(&keyword, allow)) {
            continue;
        }
        features.push(text.trim().to_string());
    }
    feat_reply(tls, &features)
}

impl ControlFsm {
    /// `raw`: a line that did not parse, as the client sent it (bounded) and its length.
    pub(super) fn on_client_command(
        &mut self,
        command: Result<Command, CommandError>,
        raw: Option<(&[u8], usize)>,
        policy: &Policy,
        out: &mut Vec<Action>,
    ) {
        if !self.count_before_login(out) {
            return;
        }
        let cmd = match command {
            Ok(cmd) => cmd,
            Err(err) => {
                let (code, text) = match &err {
                    CommandError::Empty => (codes::SYNTAX_ERROR, "Empty command.".to_string()),
                    CommandError::TooLong => {
                        (codes::SYNTAX_ERROR, "Command line too long.".to_string())
                    }
                    CommandError::BadVerb => (
                        codes::SYNTAX_ERROR,
                        "Syntax error, command unrecognized.".to_string(),
                    ),
                    CommandError::ControlByte => (
                        codes::SYNTAX_ERROR_ARGS,
                        "Control characters are not allowed in commands.".to_string(),
                    ),
                    CommandError::Unknown(verb) if self.is_logged_in() => (
                        codes::NOT_IMPLEMENTED,
                        format!("Command {verb} not implemented."),
                    ),
                    CommandError::Unknown(_) => (
                        codes::NOT_LOGGED_IN,
                        "Please login with USER and PASS.".to_string(),
                    ),
                };
                self.reply(code, &text, out);
                if let Some((line, len)) = raw {
                    return self.audit_malformed(&err, line, len, code, out);
                }
                let verb = match &err {
                    CommandError::Unknown(v) => v.clone(),
                    _ => String::new(),
                };
                self.audit_command(&verb, b"", "deny", code, out);
                return;
            }
        };
        if cmd.verb == Verb::Quit {
            if self.is_logged_in() {
                out.push(Action::SendServer(Command::new(Verb::Quit, b"")));
            }
            self.local(&cmd, "allow", codes::CLOSING_CONTROL, "Goodbye.", out);
            self.close(CloseReason::Quit, out);
            return;
        }
        if let Phase::Transfer(_) = self.phase {
            if cmd.verb == Verb::Abor {
                self.abort_transfer(&cmd, out);
            }
            return;
        }
        if self.is_logged_in() {
            if let Some(t) = self.user_timeouts() {
                out.push(Action::SetTimer(TimerKind::Idle, secs(t.idle)));
            }
            self.on_command_logged_in(cmd, policy, out);
        } else {
            self.on_command_before_login(cmd, policy, out);
        }
    }

    pub(super) fn on_command_logged_in(
        &mut self,
        cmd: Command,
        policy: &Policy,
        out: &mut Vec<Action>,
    ) {
        let _ = policy;
        let Some(allow) = self
            .user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .map(|k| k.allow)
        else {
            return self.local(
                &cmd,
                "deny",
                codes::NOT_LOGGED_IN,
                "Please login with USER and PASS.",
                out,
            );
        };
        match cmd.verb {
            Verb::User => self.local(
                &cmd,
                "deny",
                codes::NOT_LOGGED_IN,
                "Can't change to another user.",
                out,
            ),
            Verb::Pass => self.local(&cmd, "deny", codes::LOGGED_IN, "Already logged in.", out),
            Verb::Noop | Verb::Syst => self.forward(cmd, false, out),
            Verb::Opts => self.on_opts_logged_in(cmd, &allow, out),
            Verb::Feat => self.forward(cmd, true, out),
            Verb::Type => {
                let arg = String::from_utf8_lossy(&cmd.arg).to_ascii_uppercase();
                if matches!(arg.trim(), "A" | "A N" | "I" | "L 8" | "L8") {
                    self.forward(cmd, false, out)
                } else {
                    self.local(
                        &cmd,
                        "deny",
                        codes::NOT_IMPLEMENTED_PARAM,
                        "Unsupported TYPE.",
                        out,
                    )
                }
            }
            Verb::Mode => {
                if cmd.arg.eq_ignore_ascii_case(b"S") {
                    self.local(&cmd, "allow", codes::COMMAND_OK, "Mode set to S.", out)
                } else {
                    self.local(
                        &cmd,
                        "deny",
                        codes::NOT_IMPLEMENTED_PARAM,
                        "Only MODE S is supported.",
                        out,
                    )
                }
            }
            Verb::Stru => {
                if cmd.arg.eq_ignore_ascii_case(b"F") {
                    self.local(&cmd, "allow", codes::COMMAND_OK, "Structure set to F.", out)
                } else {
                    self.local(
                        &cmd,
                        "deny",
                        codes::NOT_IMPLEMENTED_PARAM,
                        "Only STRU F is supported.",
                        out,
                    )
                }
            }
            Verb::Help => self.local(&cmd, "allow", codes::HELP, "Help OK.", out),
            Verb::Pasv => self.on_pasv(&cmd, out),
            Verb::Epsv => self.on_epsv(&cmd, out),
            Verb::Port => self.on_port(&cmd, out),
            Verb::Eprt => self.on_eprt(&cmd, out),
            Verb::Rest => match std::str::from_utf8(&cmd.arg)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                Some(offset) => {
                    self.rest = Some(offset);
                    let text = format!("Restart position accepted ({offset}).");
                    self.local(&cmd, "allow", codes::PENDING_FURTHER, &text, out);
                }
                None => self.local(
                    &cmd,
                    "deny",
                    codes::SYNTAX_ERROR_ARGS,
                    "REST needs a byte offset.",
                    out,
                ),
            },
            Verb::Abor => self.local(
                &cmd,
                "allow",
                codes::DATA_CLOSE_OK,
                "No transfer to ABOR.",
                out,
            ),
            Verb::Auth => self.on_auth(&cmd, out),
            Verb::Pbsz | Verb::Prot | Verb::Ccc => self.on_tls_command(&cmd, out),
            // SECURITY: REIN, ACCT and HOST would change the identity or the target of the
            // backend session behind the policy's back; they are never forwarded.
            Verb::Rein | Verb::Acct | Verb::Host => self.local(
                &cmd,
                "deny",
                codes::NOT_IMPLEMENTED,
                "Command not permitted.",
                out,
            ),
            verb => {
                // SECURITY: commands are classified by what they do, not by their name
                // (STAT with a path is a listing, SITE CPTO writes a file).
                let needs = permission::needs(verb, &cmd.arg);
                let granted = needs.granted(|v| allow.contains(v));
                // Dry run: what the role refuses goes through, audited as would_deny with
                // the rule. `Needs::Never` (SITE EXEC and the like) is no role's to grant.
                let dry_run = !granted && !matches!(needs, Needs::Never(_)) && !self.enforced();
                if dry_run {
                    self.audit_would_deny(&cmd, out);
                }
                if granted || dry_run {
                    if let Err(refusal) = self.jailed(verb, &cmd.arg) {
                        let detail = format!("{} {}", verb.name(), refusal.detail());
                        if self.enforced() {
                            out.push(Action::Audit(AuditRecord::PolicyViolation {
                                kind: "path_jail",
                                detail,
                            }));
                            return self.local(
                                &cmd,
                                "deny",
                                codes::FILE_UNAVAILABLE,
                                "Permission denied: outside your directories.",
                                out,
                            );
                        }
                        // Dry run: the jail's refusal is recorded, the command goes on.
                        out.push(Action::Audit(AuditRecord::PolicyException {
                            kind: "would_deny",
                            detail: format!(
                                "users.paths: {detail}; forwarded because enforce is false"
                            ),
                        }));
                        self.would_deny = Some(verb.name());
                    }
                    if verb.is_transfer() {
                        self.start_transfer(cmd, out)
                    } else {
                        self.forward(cmd, false, out)
                    }
                } else if let Needs::Never(text) = needs {
                    self.local(&cmd, "deny", codes::NOT_IMPLEMENTED, text, out)
                } else if verb.is_file_action() || needs.touches_files() {
                    self.local(
                        &cmd,
                        "deny",
                        codes::FILE_UNAVAILABLE,
                        "Permission denied.",
                        out,
                    )
                } else {
                    self.local(
                        &cmd,
                        "deny",
                        codes::NOT_IMPLEMENTED,
                        "Command not permitted.",
                        out,
                    )
                }
            }
        }
    }

    /// The user's path jail on `verb arg`, against the tracked working directory.
    fn jailed(&self, verb: Verb, arg: &[u8]) -> Result<(), crate::policy::jail::JailRefusal> {
        let Some(jail) = self
            .user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .and_then(|k| k.jail.as_ref())
        else {
            return Ok(());
        };
        jail.check(verb, &String::from_utf8_lossy(arg), self.cwd.as_deref())
    }

    /// OPTS after login: UTF8 goes to the backend (it changes how the backend encodes
    /// names), MLST only for a role that lists; anything else is not understood.
    pub(super) fn on_opts_logged_in(
        &mut self,
        cmd: Command,
        allow: &VerbSet,
        out: &mut Vec<Action>,
    ) {
        let (option, _) = permission::first_word(&cmd.arg);
        if option == "UTF8"
            || permission::needs(Verb::Opts, &cmd.arg).granted(|v| allow.contains(v))
        {
            return self.forward(cmd, false, out);
        }
        if option == "MLST" && !self.enforced() {
            self.audit_would_deny(&cmd, out);
            return self.forward(cmd, false, out);
        }
        let (code, text) = if option == "MLST" {
            (codes::FILE_UNAVAILABLE, "Permission denied.")
        } else {
            (codes::SYNTAX_ERROR_ARGS, "Option not understood.")
        };
        self.local(&cmd, "deny", code, text, out)
    }

    pub(super) fn forward(&mut self, cmd: Command, feat: bool, out: &mut Vec<Action>) {
        out.push(Action::SendServer(Command::new(cmd.verb, &cmd.arg)));
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
        self.phase = Phase::Forwarded {
            verb: cmd.verb,
            arg: cmd.arg,
            feat,
        };
    }

    /// The backend broke the protocol in a way that could only desynchronise or flood the
    /// client: 421, recorded, closed.
    pub(super) fn backend_violation(&mut self, detail: String, out: &mut Vec<Action>) {
        out.push(Action::Audit(AuditRecord::PolicyViolation {
            kind: "backend_protocol",
            detail,
        }));
        self.fail_close(
            "Service not available, remote server sent an invalid reply.",
            CloseReason::ServerProtocolError,
            out,
        );
    }

    /// The backend's reply to a forwarded command: relayed (FEAT filtered), recorded, and the
    /// working directory followed.
    pub(super) fn on_forwarded_reply(
        &mut self,
        verb: Verb,
        arg: Vec<u8>,
        feat: bool,
        reply: Reply,
        out: &mut Vec<Action>,
    ) {
        if reply.is_preliminary() {
            out.push(Action::SendClient(reply));
            self.phase = Phase::Forwarded { verb, arg, feat };
            return;
        }
        let code = reply.code;
        let reply = if feat {
            let allow = self
                .user
                .as_ref()
                .and_then(|u| u.known.as_ref())
                .map(|k| k.allow);
            filter_features(
                reply,
                self.config.tls_available,
                &self.config.features,
                allow,
            )
        } else {
            reply
        };
        out.push(Action::SendClient(reply));
        self.audit_command(verb.name(), &arg, "allow", code, out);
        if code / 100 == 2 && self.follow_cwd(verb, &arg) {
            return self.ask_pwd(out);
        }
        self.enter_ready(out);
    }

    /// Whether the logged-in user's policy is enforced (`enforce`, true unless a dry run).
    fn enforced(&self) -> bool {
        self.user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .is_none_or(|k| k.enforce)
    }

    /// Records a refusal a dry run lets through: a `policy_exception` naming the rule now,
    /// and `would_deny` in the command's own event once it is answered.
    fn audit_would_deny(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        let role = self
            .user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .map_or("", |k| k.role.as_str());
        out.push(Action::Audit(AuditRecord::PolicyException {
            kind: "would_deny",
            detail: format!(
                "roles.{role}.allow: role {role:?} does not allow {}; forwarded because \
                 enforce is false",
                cmd.verb.name()
            ),
        }));
        self.would_deny = Some(cmd.verb.name());
    }
}
