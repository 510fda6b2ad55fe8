//! The control-channel state machine of one FTP session. Pure: no sockets, no clock, no log.
//!
//! It takes [`Event`]s (a client command line, a backend reply, a connection that came up or
//! failed, a timer) and returns [`Action`]s (send this reply to the client, this command to
//! the backend, open a passive listener, start relaying data, record this audit event,
//! close). The session shell in `session/mod.rs` performs the actions and feeds back the
//! events they cause.
//!
//! The login is ftpgate's own: USER selects the user's policy and is answered locally (the
//! same 331 for known and unknown names: no enumeration); only after PASS of a known user is
//! the backend contacted, its greeting consumed and USER/PASS relayed. Before that nothing
//! reaches any backend.
//!
//! Data connections are split at the gateway. The client's PASV/EPSV/PORT/EPRT is answered
//! locally; when a transfer command arrives, ftpgate asks the backend for a passive port
//! (PASV, or EPSV toward an IPv6 backend), connects to it at the backend's *control* address,
//! sends REST if the client gave one, then the command, and starts the relay when the
//! backend's 1xx arrives. The backend's final reply is held until the relay has written and
//! closed the client's data connection.
//!
//! The machine is one type, [`ControlFsm`]; its `impl` is split by concern:
//! - `events.rs`: the interface ([`Event`], [`Action`] and what they carry);
//! - `phase.rs`: where the machine is ([`Phase`], each phase carrying what it needs, and
//!   how far the login is);
//! - this file: the session's settings and state, the public API, the dispatch of events
//!   and backend replies, the shared helpers, the timers;
//! - `login.rs`: ftpgate's own login and the backend login;
//! - `tls.rs`: AUTH, PBSZ, PROT, CCC;
//! - `commands.rs`: the role check and commands after login, forwarded replies, FEAT;
//! - `data.rs`: PASV, EPSV, PORT, EPRT;
//! - `transfer.rs`: transfers, from the backend's passive port to the final reply, and ABOR;
//! - `cwd.rs`: the working directory behind the audit trail's paths;
//! - `tests/`: event-script tests, one file per concern (`hostile.rs` for hostile peers).

mod audit;
mod commands;
mod cwd;
mod data;
mod events;
pub(super) mod login;
mod phase;
mod snapshot;
mod timers;
mod tls;
mod transfer;
mod verify;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::audit::AuditRecord;
use crate::ftp::address::{
    EpsvArg, format_epsv_reply, format_pasv_reply, parse_eprt_arg, parse_epsv_arg,
    parse_epsv_reply, parse_pasv_reply, parse_port_arg,
};
use crate::ftp::codes;
#[cfg(test)]
use crate::ftp::command::parse_command;
use crate::ftp::command::{Command, CommandError, Verb};
use crate::ftp::path::{MAX_TRACKED_PATH, named_path, parse_pwd_reply, resolve};
use crate::ftp::permission::{self, Needs};
use crate::ftp::reply::Reply;
use crate::limits::{MAX_COMMANDS_BEFORE_LOGIN, MAX_PRELIMINARY_REPLIES};
use crate::policy::{Cidr, Policy, Timeouts, TlsRequire, VerbSet};
use crate::session::admission::{Refusal, same_ip};

pub(crate) use commands::FILTERED_FEATURES;
use commands::local_features;
use data::ClientData;
pub use events::*;
use phase::{BeforeLogin, Login, LoginAttempt, Phase};
use tls::ClientTls;
use transfer::{RelayStage, Stopping, TransferStep};

/// What the machine knows of the user after USER.
#[derive(Clone, Debug)]
pub struct UserContext {
    pub name: String,
    /// The name's original bytes in hex when they are not UTF-8 (`name` is then lossy).
    pub name_hex: Option<String>,
    /// `None`: not in the policy (the login will fail without contacting any backend).
    pub known: Option<KnownUser>,
    /// The routing target of `USER name@target` (`routing.user_at_host`): `name` is then
    /// the user above and the backend pool is the target's.
    pub target: Option<String>,
}

#[derive(Clone, Debug)]
pub struct KnownUser {
    pub role: String,
    pub allow: VerbSet,
    pub backend: String,
    pub timeouts: Timeouts,
    pub max_file_size: Option<u64>,
    /// Addresses PORT/EPRT may name besides the client's own (the FXP exception).
    pub allow_fxp_to: Vec<Cidr>,
    /// The user's own TLS requirement (tightens the listener's).
    pub tls_require: TlsRequire,
    /// Ask the backend for each upload's SHA-256 (its pool's `verify_uploads`).
    pub verify_uploads: bool,
    /// The user's path jail (`paths`).
    pub jail: Option<crate::policy::jail::Jail>,
    /// `false`: dry run (the policy's `enforce`): what the role refuses is forwarded and
    /// audited as `would_deny`.
    pub enforce: bool,
}

/// Settings the shell gives the machine at creation.
#[derive(Clone, Debug)]
pub struct ControlConfig {
    pub client_ip: IpAddr,
    pub login_timeout: u64,
    pub session_timeout: u64,
    pub failed_login_delay_ms: u64,
    pub data_connect_timeout: u64,
    pub backend_reply_timeout: u64,
    /// TLS toward the client is configured: AUTH TLS may be used (explicit FTPS).
    pub tls_available: bool,
    /// The control connection is already under TLS (an implicit FTPS listener).
    pub tls_implicit: bool,
    /// What the listener and the global policy require.
    pub tls_require: TlsRequire,
    /// The backend features `FEAT` advertises before login: what every pool offers
    /// (`crate::features`).
    pub features: std::rc::Rc<[String]>,
    /// EPSV can reach ftpgate's passive ports: false behind a load balancer (PROXY protocol)
    /// whose clients reach the passive ports directly (a 229 names no address, so the
    /// client would connect to the balancer's); such clients get 502 and fall back to PASV,
    /// whose 227 names `passive.advertise`.
    pub epsv_reachable: bool,
}

/// The control state machine.
#[derive(Debug)]
pub struct ControlFsm {
    config: ControlConfig,
    phase: Phase,
    user: Option<UserContext>,
    login: Login,
    /// The backend's working directory for the audit trail's paths: from ftpgate's PWD
    /// after login, then followed through successful CWD/CDUP. `None` while unknown.
    cwd: Option<String>,
    /// The client's side of the data channel.
    client: ClientData,
    /// The client's REST offset, for the next transfer only (RFC 3659 §5).
    rest: Option<u64>,
    /// The client sent EPSV ALL: for the rest of the session only EPSV may set up data
    /// connections (RFC 2428 §4).
    epsv_all: bool,
    /// Toward an IPv6 backend, ftpgate asks for EPSV instead of PASV.
    server_ipv6: bool,
    /// The backend server the session connected to, for the login's audit record.
    server: Option<SocketAddr>,
    /// Commands before login that repeated a recorded one, by verb (for `session_end`).
    repeated: BTreeMap<String, u64>,
    /// The verb of a command the role refuses, forwarded under `enforce: false`: its
    /// command event says `would_deny` instead of `allow`.
    would_deny: Option<&'static str>,
    /// Preliminary (1xx) replies since the backend's last final reply.
    preliminaries: u32,
    /// TLS toward the client: whether the control connection is under it, and what PBSZ
    /// and PROT said.
    tls: ClientTls,
    /// TLS toward the backend (told by the shell when it connects).
    server_tls: ServerTls,
    /// The worker stops: close as soon as nothing is in flight.
    worker_stopping: bool,
    /// The session's time ran out during a transfer that may finish
    /// (`timeouts.session_during_transfer: "finish"`): 421 once it has.
    session_expired: bool,
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// The original bytes in hex when they are not valid UTF-8 (the audit's recoverable form).
fn hex_unless_utf8(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes)
        .is_err()
        .then(|| crate::tls::hex(bytes))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl ControlFsm {
    /// A new session: returns the machine and the actions for the greeting and timers.
    pub fn new(config: ControlConfig) -> (ControlFsm, Vec<Action>) {
        let actions = vec![
            Action::SendClient(Reply::new(codes::SERVICE_READY, "ftpgate ready.")),
            Action::SetTimer(TimerKind::Login, secs(config.login_timeout)),
            Action::SetTimer(TimerKind::Session, secs(config.session_timeout)),
        ];
        let tls = if config.tls_implicit {
            ClientTls::Secured {
                pbsz: false,
                private: false,
            }
        } else {
            ClientTls::Plain
        };
        let fsm = ControlFsm {
            config,
            phase: Phase::AwaitUser,
            user: None,
            login: Login::Pending(BeforeLogin::default()),
            cwd: None,
            rest: None,
            epsv_all: false,
            client: ClientData::None,
            server_ipv6: false,
            server: None,
            preliminaries: 0,
            repeated: BTreeMap::new(),
            would_deny: None,
            tls,
            server_tls: ServerTls::None,
            worker_stopping: false,
            session_expired: false,
        };
        (fsm, actions)
    }

    /// A session refused at connect time (audit trail, access rule, ban, session limit): 421
    /// with the refusal's text, the violation recorded, then close.
    pub fn refused(config: ControlConfig, refusal: &Refusal) -> (ControlFsm, Vec<Action>) {
        let (mut fsm, _) = ControlFsm::new(config);
        fsm.phase = Phase::Closed;
        let actions = vec![
            Action::SendClient(Reply::new(
                codes::SERVICE_NOT_AVAILABLE,
                refusal.reply_text(),
            )),
            Action::Audit(AuditRecord::PolicyViolation {
                kind: refusal.audit_kind(),
                detail: refusal.detail(),
            }),
            Action::Close(CloseReason::Refused),
        ];
        (fsm, actions)
    }

    /// Whether data connections are TLS (PROT P).
    pub fn data_protected(&self) -> bool {
        self.tls.data_protected()
    }

    /// Told by the shell when it connects to a backend.
    pub fn set_server_tls(&mut self, tls: ServerTls) {
        self.server_tls = tls;
    }

    /// Told by the shell once it is connected to a backend server (its address family
    /// decides PASV or EPSV toward it; the login's audit record names it).
    pub fn set_server(&mut self, server: SocketAddr) {
        self.server_ipv6 = server.is_ipv6();
        self.server = Some(server);
    }

    pub fn user(&self) -> Option<&UserContext> {
        self.user.as_ref()
    }

    /// The argument of the file transfer in progress (RETR, STOR, STOU, APPE); `None` for a
    /// listing or when no transfer runs. Filecopy mode names its copy after it.
    pub fn transfer_file(&self) -> Option<&[u8]> {
        match &self.phase {
            Phase::Transfer(t)
                if matches!(t.verb, Verb::Retr | Verb::Stor | Verb::Stou | Verb::Appe) =>
            {
                Some(&t.arg)
            }
            _ => None,
        }
    }

    /// The commands before login that were only counted, by verb (see `audit_command`);
    /// empty afterwards.
    pub fn take_repeated_commands(&mut self) -> BTreeMap<String, u64> {
        std::mem::take(&mut self.repeated)
    }

    pub fn is_logged_in(&self) -> bool {
        matches!(self.login, Login::Done)
    }

    /// The login attempt in progress (none once logged in).
    fn attempt(&mut self) -> Option<&mut LoginAttempt> {
        match &mut self.login {
            Login::Pending(before) => Some(&mut before.attempt),
            Login::Done => None,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the machine can take `line` now. While a command is in flight further lines
    /// wait in the client's input buffer (pipelining), except QUIT at any time and ABOR
    /// during a relay.
    pub fn can_take(&self, command: &Result<Command, CommandError>) -> bool {
        match &self.phase {
            Phase::AwaitUser | Phase::AwaitPass | Phase::Ready => true,
            Phase::Closed => false,
            Phase::Transfer(t) if matches!(t.step, TransferStep::Relaying(_)) => {
                matches!(command, Ok(c) if matches!(c.verb, Verb::Abor | Verb::Quit))
            }
            _ => matches!(command, Ok(c) if c.verb == Verb::Quit),
        }
    }

    /// [`can_take`](Self::can_take) for a raw line (tests).
    #[cfg(test)]
    pub fn can_take_line(&self, line: &[u8]) -> bool {
        self.can_take(&parse_command(line))
    }

    /// Feeds one event; returns the actions to perform, in order.
    pub fn on_event(&mut self, event: Event, policy: &Policy) -> Vec<Action> {
        let mut out = self.dispatch(event, policy);
        // A stopping worker: the session ends as soon as nothing is in flight.
        if self.worker_stopping && self.idle() {
            self.fail_close(
                "Service shutting down; please reconnect.",
                CloseReason::WorkerStopping,
                &mut out,
            );
        }
        out
    }

    /// Nothing in flight: no command waits for the backend, no transfer, no login step.
    fn idle(&self) -> bool {
        matches!(
            self.phase,
            Phase::Ready | Phase::AwaitUser | Phase::AwaitPass | Phase::FailedLogin { .. }
        )
    }

    fn dispatch(&mut self, event: Event, policy: &Policy) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.phase, Phase::Closed) {
            return out;
        }
        if !self.expects(&event) {
            out.push(Action::Unexpected {
                event: event.name(),
                phase: self.phase.name(),
            });
            return out;
        }
        match event {
            Event::ClientCommand(command) => {
                self.on_client_command(command, None, policy, &mut out)
            }
            Event::ClientMalformed { error, line, len } => {
                self.on_client_command(Err(error), Some((&line, len)), policy, &mut out)
            }
            Event::ClientLineTooLong => {
                if self.count_before_login(&mut out) {
                    out.push(Action::SendClient(Reply::new(
                        codes::SYNTAX_ERROR,
                        "Command line too long.",
                    )));
                }
            }
            Event::ClientClosed => self.close(CloseReason::ClientClosed, &mut out),
            Event::ServerConnected => self.on_server_connected(&mut out),
            Event::ServerUnavailable => {
                self.audit_login("failed", Some("backend_unavailable"), &mut out);
                self.fail_close(
                    "Service not available: the backend cannot be reached.",
                    CloseReason::BackendUnavailable,
                    &mut out,
                );
            }
            Event::ServerReply(reply) => self.on_server_reply(reply, &mut out),
            Event::ServerClosed => self.fail_close(
                "Service not available, remote server has closed connection.",
                CloseReason::ServerClosed,
                &mut out,
            ),
            Event::ServerProtocolError => self.fail_close(
                "Service not available, remote server sent an invalid reply.",
                CloseReason::ServerProtocolError,
                &mut out,
            ),
            Event::PassiveOpened(addr) => self.on_passive_opened(addr, &mut out),
            Event::PassiveFailed => {
                if let ClientData::Opening { kind, arg } =
                    std::mem::replace(&mut self.client, ClientData::None)
                {
                    self.audit_command(kind.verb(), &arg, "allow", codes::CANT_OPEN_DATA, &mut out);
                }
                out.push(Action::SendClient(Reply::new(
                    codes::CANT_OPEN_DATA,
                    "Cannot open passive connection.",
                )));
            }
            Event::ServerDataConnected => self.on_server_data_connected(&mut out),
            Event::ServerDataFailed => {
                if matches!(
                    self.transfer_step(),
                    Some(TransferStep::AwaitDataConnect { .. })
                ) {
                    self.transfer_failed(
                        Reply::new(codes::CANT_OPEN_DATA, "Cannot open data connection."),
                        None,
                        &mut out,
                    );
                }
            }
            Event::ClientDataConnected => {
                self.client = ClientData::Up { ready: true };
                out.push(Action::CancelTimer(TimerKind::DataConnect));
                self.maybe_send_transfer_command(&mut out);
            }
            Event::ClientDataTlsPending => {
                self.client = ClientData::Up { ready: false };
                if self.transfer_step().is_none() {
                    // Accepted ahead of the transfer command: the passive port has done its
                    // job; the handshake is bounded once a transfer waits for it.
                    out.push(Action::CancelTimer(TimerKind::DataConnect));
                }
                self.maybe_send_transfer_command(&mut out);
            }
            Event::ClientDataFailed => {
                // A passive port takes one connection; refused (a thief, a handshake that
                // failed) or broken, a transfer needs a new PASV or PORT.
                self.client = ClientData::None;
                self.client_data_failed(&mut out)
            }
            Event::RelayDone(report) => self.on_relay_done(report, &mut out),
            Event::RelayOverLimit(report) => self.on_relay_over_limit(report, &mut out),
            Event::RelayCopyFailed(report) => self.on_relay_copy_failed(report, &mut out),
            Event::RelayStopped(report) => self.on_relay_stopped(report, &mut out),
            Event::LoginRefused(refusal) => self.on_login_refused(refusal, &mut out),
            Event::Banned => {
                out.push(Action::Audit(AuditRecord::PolicyViolation {
                    kind: "failed_logins",
                    detail: "too many failed logins; address banned".into(),
                }));
                if let Phase::FailedLogin { ban_pending, .. } = &mut self.phase {
                    // The 421 waits for the failed-login delay like the 530 would have.
                    *ban_pending = true;
                } else {
                    self.close_banned(&mut out);
                }
            }
            Event::RelayFailed { report, side } => self.on_relay_failed(report, side, &mut out),
            Event::ServerTlsFailed => {
                if !self.is_logged_in() {
                    self.audit_login("failed", Some("backend_tls"), &mut out);
                }
                self.fail_close(
                    "Service not available: no trusted TLS connection to the server.",
                    CloseReason::ServerProtocolError,
                    &mut out,
                );
            }
            Event::Timer(kind) => self.on_timer(kind, &mut out),
            Event::WorkerStopping => self.worker_stopping = true,
            Event::DrainDeadline => self.fail_close(
                "Service shutting down.",
                CloseReason::WorkerStopping,
                &mut out,
            ),
            Event::Kill => self.fail_close(
                "Session closed by the gateway's operator.",
                CloseReason::Killed,
                &mut out,
            ),
        }
        out
    }

    /// Whether the machine, where it is (its phase, the client's data side, the transfer's
    /// step), expects `event`. Everything else is refused before any handler sees it.
    fn expects(&self, event: &Event) -> bool {
        let step = self.transfer_step();
        match event {
            Event::ClientCommand(_)
            | Event::ClientMalformed { .. }
            | Event::ClientLineTooLong
            | Event::ClientClosed
            | Event::ServerClosed
            | Event::ServerProtocolError
            | Event::ServerTlsFailed
            | Event::WorkerStopping
            | Event::DrainDeadline
            | Event::Kill
            | Event::Banned
            | Event::Timer(_) => true,
            Event::ServerConnected | Event::ServerUnavailable | Event::LoginRefused(_) => {
                matches!(self.phase, Phase::Connecting { .. })
            }
            // Unsolicited replies in Ready are the backend's violation, handled there.
            Event::ServerReply(_) => !matches!(
                self.phase,
                Phase::AwaitUser
                    | Phase::AwaitPass
                    | Phase::FailedLogin { .. }
                    | Phase::Connecting { .. }
            ),
            Event::PassiveOpened(_) | Event::PassiveFailed => {
                matches!(self.client, ClientData::Opening { .. })
            }
            Event::ServerDataConnected | Event::ServerDataFailed => {
                matches!(step, Some(TransferStep::AwaitDataConnect { .. }))
            }
            Event::ClientDataConnected | Event::ClientDataTlsPending => matches!(
                self.client,
                ClientData::Listening | ClientData::Connecting | ClientData::Up { ready: false }
            ),
            Event::ClientDataFailed => !matches!(
                self.client,
                ClientData::None | ClientData::Opening { .. } | ClientData::Active(_)
            ),
            Event::RelayDone(_)
            | Event::RelayOverLimit(_)
            | Event::RelayFailed { .. }
            | Event::RelayCopyFailed(_) => matches!(step, Some(TransferStep::Relaying(_))),
            Event::RelayStopped(_) => matches!(
                step,
                Some(TransferStep::Relaying(RelayStage::Stopping { .. }))
            ),
        }
    }

    fn transfer_step(&self) -> Option<&TransferStep> {
        match &self.phase {
            Phase::Transfer(t) => Some(&t.step),
            _ => None,
        }
    }

    fn reply(&self, code: u16, text: &str, out: &mut Vec<Action>) {
        out.push(Action::SendClient(Reply::new(code, text)));
    }

    /// Answers a command locally and records it.
    fn local(
        &mut self,
        cmd: &Command,
        decision: &'static str,
        code: u16,
        text: &str,
        out: &mut Vec<Action>,
    ) {
        self.reply(code, text, out);
        // SECURITY: a password never reaches the audit trail, even when mistyped as a
        // command at the wrong time.
        let arg: &[u8] = if cmd.verb == Verb::Pass {
            b""
        } else {
            &cmd.arg
        };
        self.audit_command(cmd.verb.name(), arg, decision, code, out);
    }

    /// Closes every data connection and the passive listener.
    fn abort_data(&mut self, out: &mut Vec<Action>) {
        self.client = ClientData::None;
        out.push(Action::AbortData);
    }

    fn close(&mut self, reason: CloseReason, out: &mut Vec<Action>) {
        // An upload's record still waiting for the backend's digest goes now, without it.
        if matches!(self.phase, Phase::VerifyUpload(_)) {
            if let Phase::VerifyUpload(v) = std::mem::replace(&mut self.phase, Phase::Ready) {
                out.push(Action::Audit(verify::with_backend_digest(v.record, None)));
            }
        }
        // A transfer cut by the session's end still gets its record, whole: a running relay
        // is stopped first (the close follows its report, see `on_relay_stopped`).
        if let Phase::Transfer(t) = &mut self.phase {
            let report = match &mut t.step {
                TransferStep::Relaying(stage) => match std::mem::replace(stage, RelayStage::Moving)
                {
                    RelayStage::Relayed(report) => Some(report),
                    RelayStage::Stopping { held, .. } => {
                        // Being stopped already (ABOR): the close follows its report.
                        *stage = RelayStage::Stopping {
                            why: Stopping::Close(reason),
                            held,
                        };
                        return;
                    }
                    other => {
                        let held = matches!(other, RelayStage::Held(_));
                        *stage = RelayStage::Stopping {
                            why: Stopping::Close(reason),
                            held,
                        };
                        out.push(Action::StopRelay);
                        return;
                    }
                },
                _ => None,
            };
            self.end_transfer_with_code(
                reason.transfer_result(),
                report,
                codes::TRANSFER_ABORTED,
                out,
            );
        }
        self.abort_data(out);
        out.push(Action::Close(reason));
        self.phase = Phase::Closed;
    }

    fn fail_close(&mut self, text: &str, reason: CloseReason, out: &mut Vec<Action>) {
        // A transfer in progress is answered first (RFC 959: 426, the data connection
        // closed and the transfer aborted), as its audit record says; then the session.
        if matches!(self.phase, Phase::Transfer(_)) {
            self.reply(
                codes::TRANSFER_ABORTED,
                "Connection closed; transfer aborted.",
                out,
            );
        }
        self.reply(codes::SERVICE_NOT_AVAILABLE, text, out);
        self.close(reason, out);
    }

    fn user_timeouts(&self) -> Option<&Timeouts> {
        self.user.as_ref()?.known.as_ref().map(|k| &k.timeouts)
    }

    fn on_server_reply(&mut self, reply: Reply, out: &mut Vec<Action>) {
        // SECURITY: a command gets one final reply and a few preliminary ones; a backend
        // that streams 1xx replies (while the client may not even read them) is cut off.
        if reply.is_preliminary() {
            self.preliminaries += 1;
            if self.preliminaries > MAX_PRELIMINARY_REPLIES {
                return self.backend_violation(
                    format!(
                        "more than {MAX_PRELIMINARY_REPLIES} preliminary replies to one command"
                    ),
                    out,
                );
            }
        } else {
            self.preliminaries = 0;
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
        match phase {
            Phase::AwaitGreeting { .. }
            | Phase::AwaitServerAuth { .. }
            | Phase::AwaitUserReply { .. }
            | Phase::AwaitPassReply => self.on_login_reply(phase, reply, out),
            Phase::AwaitServerProtection { reply: held, owed } => {
                self.on_server_protection_reply(held, owed, reply, out)
            }
            Phase::Forwarded { verb, arg, feat } => {
                self.on_forwarded_reply(verb, arg, feat, reply, out)
            }
            Phase::AwaitPwd => self.on_own_pwd_reply(reply, out),
            Phase::VerifyUpload(v) => self.on_verify_reply(v, reply, out),
            Phase::Transfer(t) => {
                self.phase = Phase::Transfer(t);
                self.on_transfer_reply(reply, out);
            }
            Phase::Draining { replies, relay } => {
                self.on_draining_reply(replies, relay, reply, out)
            }
            Phase::Ready => {
                // SECURITY: an unsolicited backend reply is never relayed (it would
                // desynchronise the client's view of which reply answers which command),
                // and a backend that sends them is not trusted with the session.
                self.phase = Phase::Ready;
                self.backend_violation(format!("unsolicited reply {}", reply.code), out);
            }
            // No backend connection in these phases: nothing can arrive.
            other => self.phase = other,
        }
    }
}

#[cfg(test)]
mod tests;
