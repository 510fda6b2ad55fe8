//! ftpgate's own login: the commands it answers before login, PASS and the failed-login
//! delay, the backend login (greeting, AUTH TLS toward the backend, USER/PASS relayed) and the
//! login timeout. Nothing reaches a backend before PASS of a known user.

use std::time::Duration;

use super::*;
use crate::policy::Routing;

/// What `USER` named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum UserTarget {
    /// A user name alone (or `routing.user_at_host` is off: the `@` is part of the name).
    Plain(String),
    /// `USER name@target` with `routing.user_at_host` on: `target` as given, not yet
    /// checked against `routing.targets` (the caller refuses one that is not there).
    Routed { name: String, target: String },
}

/// Splits `USER name@target` at the last `@` when `routing.user_at_host` is on (a target
/// name cannot contain `@`, and the loader refuses user names with `@` while it is on).
pub(super) fn split_target(arg: &str, routing: &Routing) -> UserTarget {
    if !routing.user_at_host {
        return UserTarget::Plain(arg.to_string());
    }
    match arg.rsplit_once('@') {
        Some((name, target)) => UserTarget::Routed {
            name: name.to_string(),
            target: target.to_string(),
        },
        None => UserTarget::Plain(arg.to_string()),
    }
}

impl ControlFsm {
    /// Counts a command line before login; false (and the session closes) beyond the limit.
    pub(super) fn count_before_login(&mut self, out: &mut Vec<Action>) -> bool {
        let Login::Pending(before) = &mut self.login else {
            return true;
        };
        before.commands = before.commands.saturating_add(1);
        if before.commands <= MAX_COMMANDS_BEFORE_LOGIN {
            return true;
        }
        // SECURITY: nobody may keep a session (and the loop, and the audit trail) busy
        // without logging in.
        out.push(Action::Audit(AuditRecord::PolicyViolation {
            kind: "limit",
            detail: format!("more than {MAX_COMMANDS_BEFORE_LOGIN} commands before login"),
        }));
        self.fail_close(
            "Too many commands without a login.",
            CloseReason::TooManyCommands,
            out,
        );
        false
    }

    pub(super) fn on_command_before_login(
        &mut self,
        cmd: Command,
        policy: &Policy,
        out: &mut Vec<Action>,
    ) {
        match cmd.verb {
            Verb::User if self.config.tls_require != TlsRequire::None && !self.tls.active() => self
                .local(
                    &cmd,
                    "deny",
                    codes::NOT_LOGGED_IN,
                    "TLS required: use AUTH TLS before USER.",
                    out,
                ),
            Verb::User => {
                if cmd.arg.is_empty() {
                    return self.local(
                        &cmd,
                        "deny",
                        codes::SYNTAX_ERROR_ARGS,
                        "USER needs a name.",
                        out,
                    );
                }
                let (name, target) = match split_target(&lossy(&cmd.arg), &policy.routing) {
                    UserTarget::Plain(name) => (name, None),
                    UserTarget::Routed { name, target } => (name, Some(target)),
                };
                // SECURITY: a target is only ever a name of routing.targets, never a host or
                // an address (no open proxy): anything else leaves the user unknown, and the
                // login fails like a wrong password without contacting any backend.
                let routed = target.as_ref().map(|t| policy.routing.targets.get(t));
                let known = policy.user(&name).and_then(|u| {
                    let role = policy.roles.get(&u.role)?;
                    let backend = match routed {
                        None => u.backend.clone(),
                        Some(None) => return None,
                        Some(Some(pool)) => pool.clone(),
                    };
                    let verify_uploads = policy
                        .backends
                        .get(&backend)
                        .is_some_and(|b| b.verify_uploads);
                    Some(KnownUser {
                        role: u.role.clone(),
                        allow: role.allow,
                        backend,
                        timeouts: u.timeouts,
                        max_file_size: u.limits.max_file_size,
                        allow_fxp_to: u.allow_fxp_to.clone(),
                        tls_require: u.tls_require,
                        jail: u.jail.clone(),
                        verify_uploads,
                        enforce: u.enforce,
                    })
                });
                // SECURITY: the login timeout stays the same for every name until PASS
                // (a known user's own one from here on would tell the name exists).
                // SECURITY: the same 331 for every name, known or not (no user enumeration).
                self.user = Some(UserContext {
                    name,
                    name_hex: hex_unless_utf8(&cmd.arg),
                    known,
                    target,
                });
                self.phase = Phase::AwaitPass;
                self.local(
                    &cmd,
                    "allow",
                    codes::NEED_PASSWORD,
                    "Please specify the password.",
                    out,
                );
            }
            Verb::Pass => {
                if !matches!(self.phase, Phase::AwaitPass) {
                    return self.local(
                        &cmd,
                        "deny",
                        codes::BAD_SEQUENCE,
                        "Login with USER first.",
                        out,
                    );
                }
                // SECURITY: a user who requires TLS never logs in (nor sends a password to
                // a backend) over plaintext; refused like a wrong password.
                let tls_refused = self.tls_required() != TlsRequire::None && !self.tls.active();
                if tls_refused {
                    if let Some(u) = self.user.as_ref() {
                        out.push(Action::Audit(AuditRecord::PolicyViolation {
                            kind: "tls_required",
                            detail: format!("user {} requires TLS", u.name),
                        }));
                    }
                }
                let known = !tls_refused && self.user.as_ref().is_some_and(|u| u.known.is_some());
                // SECURITY: every failed login is answered no sooner than the delay after
                // PASS, known user or not, so timing does not tell which names exist.
                if let Some(attempt) = self.attempt() {
                    *attempt = LoginAttempt::default();
                }
                out.push(Action::SetTimer(
                    TimerKind::FailedLogin,
                    Duration::from_millis(self.config.failed_login_delay_ms),
                ));
                if known {
                    // A user's own login timeout may give a slow backend login more time;
                    // it never shortens the common one (a sooner 421 would tell).
                    if let Some(login) = self.user_timeouts().map(|t| t.login) {
                        if login > self.config.login_timeout {
                            if let Some(attempt) = self.attempt() {
                                attempt.extended = true;
                            }
                            out.push(Action::SetTimer(TimerKind::Login, secs(login)));
                        }
                    }
                    self.phase = Phase::Connecting { pass: cmd.arg };
                    out.push(Action::ConnectServer);
                } else {
                    // SECURITY: no backend is contacted for a name the policy does not know,
                    // nor for one that must use TLS and did not.
                    let unknown_target = self
                        .user
                        .as_ref()
                        .and_then(|u| u.target.as_ref())
                        .is_some_and(|t| !policy.routing.targets.contains_key(t));
                    let reason = if tls_refused {
                        "tls_required"
                    } else if unknown_target {
                        "unknown_target"
                    } else {
                        "unknown_user"
                    };
                    self.audit_login("failed", Some(reason), out);
                    out.push(Action::LoginFailed);
                    self.start_failed_login(false, out);
                }
            }
            Verb::Noop => self.local(&cmd, "allow", codes::COMMAND_OK, "NOOP ok.", out),
            Verb::Syst => self.local(&cmd, "allow", codes::SYSTEM_TYPE, "UNIX Type: L8", out),
            Verb::Feat => {
                out.push(Action::SendClient(local_features(
                    self.config.tls_available,
                    &self.config.features,
                )));
                self.audit_command("FEAT", b"", "allow", codes::SYSTEM_STATUS, out);
            }
            Verb::Opts => self.local_opts(&cmd, out),
            Verb::Help => self.local(&cmd, "allow", codes::HELP, "Help OK.", out),
            Verb::Auth => self.on_auth(&cmd, out),
            Verb::Pbsz | Verb::Prot | Verb::Ccc => self.on_tls_command(&cmd, out),
            _ => self.local(
                &cmd,
                "deny",
                codes::NOT_LOGGED_IN,
                "Please login with USER and PASS.",
                out,
            ),
        }
    }

    pub(super) fn local_opts(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        let arg = String::from_utf8_lossy(&cmd.arg).to_ascii_uppercase();
        if arg.trim() == "UTF8 ON" || arg.trim() == "UTF8" {
            self.local(cmd, "allow", codes::COMMAND_OK, "Always in UTF8 mode.", out);
        } else {
            self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Option not understood.",
                out,
            );
        }
    }

    /// The login failed: 530 goes out when the delay that started at PASS is over.
    /// `expired`: the login timeout passed already (the session closes after the 530).
    pub(super) fn start_failed_login(&mut self, expired: bool, out: &mut Vec<Action>) {
        if self.attempt().is_some_and(|a| a.delay_over) {
            self.answer_failed_login(false, expired, out);
        } else {
            self.phase = Phase::FailedLogin {
                ban_pending: false,
                expired,
            };
        }
    }

    pub(super) fn close_banned(&mut self, out: &mut Vec<Action>) {
        self.fail_close(
            "Too many failed logins; try again later.",
            CloseReason::Banned,
            out,
        );
    }

    pub(super) fn answer_failed_login(
        &mut self,
        ban_pending: bool,
        expired: bool,
        out: &mut Vec<Action>,
    ) {
        if ban_pending {
            return self.close_banned(out);
        }
        self.phase = Phase::AwaitUser;
        self.user = None;
        self.reply(codes::NOT_LOGGED_IN, "Login incorrect.", out);
        if expired {
            // The login timeout passed while the failure waited for its delay: the 530
            // first, as for any name, then the timeout.
            return self.fail_close("Login timeout.", CloseReason::LoginTimeout, out);
        }
        if self
            .attempt()
            .is_some_and(|a| std::mem::take(&mut a.extended))
        {
            out.push(Action::SetTimer(
                TimerKind::Login,
                secs(self.config.login_timeout),
            ));
        }
    }

    pub(super) fn on_server_connected(&mut self, out: &mut Vec<Action>) {
        if let Phase::Connecting { pass } = std::mem::replace(&mut self.phase, Phase::Closed) {
            self.phase = Phase::AwaitGreeting { pass };
            out.push(Action::SetTimer(
                TimerKind::BackendReply,
                secs(self.config.backend_reply_timeout),
            ));
        }
    }

    /// The server the session is connected to failed it (passive ejection).
    fn server_failed(&self, out: &mut Vec<Action>) {
        if let Some(server) = self.server {
            out.push(Action::ServerFailed(server));
        }
    }

    pub(super) fn send_server_user(&self, out: &mut Vec<Action>) {
        let name = self
            .user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_default();
        out.push(Action::SendServer(Command::new(
            Verb::User,
            name.as_bytes(),
        )));
    }

    pub(super) fn login_succeeded(&mut self, reply: Reply, out: &mut Vec<Action>) {
        // Toward a TLS backend every data connection is protected too (RFC 4217): PBSZ and
        // PROT go first, and the client is told 230 only once the backend accepted both, so
        // a backend that refuses protected data fails the login, not the first transfer.
        if self.server_tls != ServerTls::None {
            out.push(Action::SendServer(Command::new(Verb::Pbsz, b"0")));
            out.push(Action::SendServer(Command::new(Verb::Prot, b"P")));
            out.push(Action::SetTimer(
                TimerKind::BackendReply,
                secs(self.config.backend_reply_timeout),
            ));
            self.phase = Phase::AwaitServerProtection { reply, owed: 2 };
            return;
        }
        self.complete_login(reply, out);
    }

    /// A reply to ftpgate's own PBSZ or PROT toward a TLS backend; `held` is the backend's
    /// 230, for the client once both are accepted.
    pub(super) fn on_server_protection_reply(
        &mut self,
        held: Reply,
        owed: u8,
        reply: Reply,
        out: &mut Vec<Action>,
    ) {
        if reply.is_preliminary() {
            self.phase = Phase::AwaitServerProtection { reply: held, owed };
            return;
        }
        if !reply.is_positive_completion() {
            self.audit_login("failed", Some("backend_tls"), out);
            return self.fail_close(
                "Service not available: the server refused protected data connections.",
                CloseReason::BackendUnavailable,
                out,
            );
        }
        if owed > 1 {
            self.phase = Phase::AwaitServerProtection {
                reply: held,
                owed: owed - 1,
            };
        } else {
            out.push(Action::CancelTimer(TimerKind::BackendReply));
            self.complete_login(held, out);
        }
    }

    /// The login is done: the backend's 230 goes to the client.
    fn complete_login(&mut self, reply: Reply, out: &mut Vec<Action>) {
        self.login = Login::Done;
        out.push(Action::LoginSucceeded);
        out.push(Action::CancelTimer(TimerKind::Login));
        if let Some(t) = self.user_timeouts() {
            // The user's own session limit, counted from the start of the session.
            out.push(Action::SetTimer(TimerKind::Session, secs(t.session)));
        }
        out.push(Action::SendClient(reply));
        self.audit_login("ok", None, out);
        // The working directory the paths in the audit trail start from.
        self.ask_pwd(out);
    }

    pub(super) fn backend_refused_login(&mut self, out: &mut Vec<Action>) {
        out.push(Action::CloseServer);
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        self.audit_login("failed", Some("backend_refused"), out);
        out.push(Action::LoginFailed);
        self.start_failed_login(false, out);
    }

    /// The shell refused a known user's login before contacting the backend.
    pub(super) fn on_login_refused(&mut self, refusal: Refusal, out: &mut Vec<Action>) {
        if !matches!(self.phase, Phase::Connecting { .. }) {
            return;
        }
        out.push(Action::Audit(AuditRecord::PolicyViolation {
            kind: refusal.audit_kind(),
            detail: refusal.detail(),
        }));
        if refusal.closes_session() {
            self.audit_login("failed", Some("limit"), out);
            self.fail_close(refusal.reply_text(), CloseReason::Refused, out);
        } else {
            // Refused like a wrong password (530 after the delay, and counted like one):
            // the rule is in the audit trail, not in the reply.
            self.audit_login("failed", Some("access_rule"), out);
            out.push(Action::LoginFailed);
            self.start_failed_login(false, out);
        }
    }

    /// The login timeout. Once PASS was given the failure is answered like any failed login
    /// (530 at the failed-login delay) and only then the session closes, so the moment of
    /// the answer does not tell whether the name exists or how slow its backend is.
    pub(super) fn on_login_timeout(&mut self, out: &mut Vec<Action>) {
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
        match phase {
            Phase::FailedLogin { ban_pending, .. } => {
                self.phase = Phase::FailedLogin {
                    ban_pending,
                    expired: true,
                };
            }
            Phase::Connecting { mut pass }
            | Phase::AwaitGreeting { mut pass }
            | Phase::AwaitServerAuth { mut pass }
            | Phase::AwaitUserReply { mut pass } => {
                pass.iter_mut().for_each(|b| *b = 0);
                self.backend_login_timed_out(out);
            }
            Phase::AwaitPassReply => self.backend_login_timed_out(out),
            other => {
                self.phase = other;
                self.fail_close("Login timeout.", CloseReason::LoginTimeout, out);
            }
        }
    }

    pub(super) fn backend_login_timed_out(&mut self, out: &mut Vec<Action>) {
        out.push(Action::CloseServer);
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        self.audit_login("failed", Some("login_timeout"), out);
        out.push(Action::LoginFailed);
        self.start_failed_login(true, out);
    }

    /// A reply during the backend login: the greeting, AUTH TLS toward the backend, then the
    /// replies to the user name and the password.
    pub(super) fn on_login_reply(&mut self, phase: Phase, reply: Reply, out: &mut Vec<Action>) {
        match phase {
            Phase::AwaitGreeting { pass } => {
                if reply.is_preliminary() {
                    self.phase = Phase::AwaitGreeting { pass };
                } else if reply.code == codes::SERVICE_READY
                    && self.server_tls == ServerTls::Explicit
                {
                    // TLS toward the backend first: nothing, not even the user name, goes
                    // to it in plaintext.
                    out.push(Action::SendServer(Command::new(Verb::Auth, b"TLS")));
                    self.phase = Phase::AwaitServerAuth { pass };
                } else if reply.code == codes::SERVICE_READY {
                    self.send_server_user(out);
                    self.phase = Phase::AwaitUserReply { pass };
                } else {
                    self.server_failed(out);
                    self.audit_login("failed", Some("backend_refused"), out);
                    self.fail_close(
                        "Service not available.",
                        CloseReason::BackendUnavailable,
                        out,
                    );
                }
            }
            Phase::AwaitServerAuth { pass } => {
                if reply.code == codes::AUTH_OK {
                    out.push(Action::StartServerTls);
                    self.send_server_user(out);
                    self.phase = Phase::AwaitUserReply { pass };
                } else {
                    self.server_failed(out);
                    self.audit_login("failed", Some("backend_tls"), out);
                    self.fail_close(
                        "Service not available: the server refused TLS.",
                        CloseReason::BackendUnavailable,
                        out,
                    );
                }
            }
            Phase::AwaitUserReply { mut pass } => {
                if reply.code == codes::NEED_PASSWORD {
                    out.push(Action::SendServer(Command::new(Verb::Pass, &pass)));
                    pass.iter_mut().for_each(|b| *b = 0);
                    self.phase = Phase::AwaitPassReply;
                } else if reply.code == codes::LOGGED_IN {
                    pass.iter_mut().for_each(|b| *b = 0);
                    self.login_succeeded(reply, out);
                } else {
                    pass.iter_mut().for_each(|b| *b = 0);
                    self.backend_refused_login(out);
                }
            }
            Phase::AwaitPassReply => {
                if reply.code == codes::LOGGED_IN || reply.code == codes::COMMAND_SUPERFLUOUS {
                    self.login_succeeded(reply, out);
                } else if reply.is_preliminary() {
                    self.phase = Phase::AwaitPassReply;
                } else {
                    self.backend_refused_login(out);
                }
            }
            other => self.phase = other,
        }
    }
}
