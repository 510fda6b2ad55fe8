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

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::audit::AuditRecord;
use crate::ftp::address::{
    EpsvArg, format_epsv_reply, format_pasv_reply, parse_eprt_arg, parse_epsv_arg,
    parse_epsv_reply, parse_pasv_reply, parse_port_arg,
};
use crate::ftp::codes;
use crate::ftp::command::{Command, CommandError, Verb, parse_command};
use crate::ftp::path::{MAX_TRACKED_PATH, named_path, parse_pwd_reply, resolve};
use crate::ftp::permission::{self, Needs};
use crate::ftp::reply::Reply;
use crate::limits::{MAX_COMMANDS_BEFORE_LOGIN, MAX_PRELIMINARY_REPLIES};
use crate::policy::{Cidr, Policy, Timeouts, TlsRequire, VerbSet};
use std::collections::BTreeMap;

/// Timers the control machine sets. The shell keeps one deadline per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TimerKind {
    /// From connect to a successful login.
    Login = 0,
    /// No command while no transfer moves.
    Idle = 1,
    /// The whole session.
    Session = 2,
    /// A failed login is answered only when this fires (same delay for every user).
    FailedLogin = 3,
    /// A client data connection must come up in time (passive accept or active connect).
    DataConnect = 4,
    /// The backend must answer a command in time.
    BackendReply = 5,
}

impl TimerKind {
    pub const COUNT: usize = 6;
    pub const ALL: [TimerKind; TimerKind::COUNT] = [
        TimerKind::Login,
        TimerKind::Idle,
        TimerKind::Session,
        TimerKind::FailedLogin,
        TimerKind::DataConnect,
        TimerKind::BackendReply,
    ];

    pub fn from_index(i: u8) -> Option<TimerKind> {
        TimerKind::ALL.get(i as usize).copied()
    }
}

/// Which way file data moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Backend to client: RETR, LIST, NLST, MLSD.
    Download,
    /// Client to backend: STOR, STOU, APPE.
    Upload,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Download => "download",
            Direction::Upload => "upload",
        }
    }
}

/// Which side of a data connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// How the client wants its next data connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientDataMode {
    None,
    /// The shell holds a passive listener for the client.
    Passive,
    /// ftpgate connects to this address (validated against the control peer).
    Active(SocketAddr),
}

/// Why a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Quit,
    ClientClosed,
    ServerClosed,
    ServerProtocolError,
    BackendUnavailable,
    LoginTimeout,
    IdleTimeout,
    SessionTimeout,
    BackendTimeout,
    /// The worker stopped and closed sessions left at its drain deadline.
    WorkerStopping,
    /// An access rule or a limit refused the session.
    Refused,
    /// Too many failed logins from this address.
    Banned,
    /// Too many commands before login.
    TooManyCommands,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Quit => "quit",
            CloseReason::ClientClosed => "client_closed",
            CloseReason::ServerClosed => "backend_closed",
            CloseReason::ServerProtocolError => "backend_protocol_error",
            CloseReason::BackendUnavailable => "backend_unavailable",
            CloseReason::LoginTimeout => "login_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::SessionTimeout => "session_timeout",
            CloseReason::BackendTimeout => "backend_timeout",
            CloseReason::WorkerStopping => "worker_stopping",
            CloseReason::Refused => "refused",
            CloseReason::Banned => "banned",
            CloseReason::TooManyCommands => "too_many_commands",
        }
    }
}

/// Inputs to the machine.
#[derive(Debug)]
pub enum Event<'a> {
    /// One framed, Telnet-filtered command line from the client.
    ClientLine(&'a [u8]),
    /// The client sent a line longer than the limit (it has been discarded).
    ClientLineTooLong,
    ClientClosed,
    ServerConnected,
    /// No server of the user's backend pool could be reached.
    ServerUnavailable,
    ServerReply(Reply),
    ServerClosed,
    /// The backend sent something that is not an FTP reply, or too much of it.
    ServerProtocolError,
    /// The shell opened a passive listener for the client at this (advertised) address.
    PassiveOpened(SocketAddr),
    PassiveFailed,
    ServerDataConnected,
    ServerDataFailed,
    /// The client's data connection is ready for file data: accepted or connected, and
    /// for a protected one its TLS handshake finished and accepted.
    ClientDataConnected,
    /// A protected client data connection is up at the TCP level; its TLS handshake has not
    /// finished (clients such as ftplib and lftp start it only after the 150).
    ClientDataTlsPending,
    /// The active-mode connection to the client failed.
    ClientDataFailed,
    /// The relay moved every byte and closed both data connections cleanly.
    RelayDone {
        bytes: u64,
    },
    /// The transfer went past the user's file size limit and was stopped.
    RelayOverLimit {
        bytes: u64,
    },
    /// A data connection failed during the relay.
    RelayFailed {
        bytes: u64,
        side: Side,
    },
    /// Filecopy mode: the copy of the transfer failed and the policy says a failed copy
    /// fails the transfer (the relay is over or was stopped).
    RelayCopyFailed {
        bytes: u64,
    },
    Timer(TimerKind),
    /// The shell's admission check refused the login of this known user (access rule, time
    /// window, session cap) before any backend was contacted; `rule` says which.
    LoginRefused {
        /// The reply text for a limit (421); access-rule refusals get the plain 530.
        text: &'static str,
        rule: String,
        limit: bool,
    },
    /// This address reached the failed-login limit and is banned for a while.
    Banned,
    /// TLS toward the backend failed (certificate not trusted, handshake error).
    ServerTlsFailed,
}

/// Outputs of the machine, performed in order by the shell.
#[derive(Debug, PartialEq)]
pub enum Action {
    SendClient(Reply),
    SendServer(Command),
    /// Connect to the user's backend pool.
    ConnectServer,
    /// Close the backend control connection (a failed login).
    CloseServer,
    /// Open a passive listener for the client (replacing any previous one).
    OpenPassive,
    ConnectServerData(u16),
    /// Connect to the client for an active-mode transfer (PORT/EPRT, validated).
    ConnectClientData(SocketAddr),
    /// Start relaying between the two data connections, which are both up.
    StartRelay {
        direction: Direction,
        /// The user's file size limit: the relay stops beyond it.
        max_bytes: Option<u64>,
    },
    /// Close every data connection and the passive listener.
    AbortData,
    /// Arms a timer `Duration` from now; the Login and Session timers count from the
    /// session's start instead.
    SetTimer(TimerKind, Duration),
    CancelTimer(TimerKind),
    Audit(AuditRecord),
    /// Flush what was sent to the client, then close the session.
    Close(CloseReason),
    /// Once the reply just queued (234) has left in plaintext, start TLS on the client's
    /// control connection; whatever the client sent after AUTH is discarded.
    StartClientTls,
    /// The backend accepted AUTH TLS: start TLS on the backend control connection before
    /// the next command goes out.
    StartServerTls,
    /// The login succeeded: count the user's session.
    LoginSucceeded,
    /// The login failed: count it against the client's address.
    LoginFailed,
}

/// What the machine knows of the user after USER.
#[derive(Clone, Debug)]
pub struct UserContext {
    pub name: String,
    /// The name's original bytes in hex when they are not UTF-8 (`name` is then lossy).
    pub name_hex: Option<String>,
    /// `None`: not in the policy (the login will fail without contacting any backend).
    pub known: Option<KnownUser>,
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
}

/// A transfer in progress and how far it got.
#[derive(Debug)]
struct Transfer {
    verb: Verb,
    arg: Vec<u8>,
    direction: Direction,
    rest: Option<u64>,
    step: TransferStep,
    /// The backend's positive final reply, waiting for the relay to finish.
    held: Option<Reply>,
    /// The relay finished with this many bytes before the final reply came.
    relayed: Option<u64>,
    /// The backend's data connection is up.
    server_ready: bool,
    /// ftpgate sent the client its own 150 (a protected data connection waiting for its
    /// handshake): the backend's preliminary reply is not relayed.
    own_preliminary: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferStep {
    /// PASV/EPSV sent to the backend.
    AwaitPasv,
    /// Connecting to the backend's data port and waiting for the client's data connection;
    /// the command goes to the backend only when both are up, so a client that never
    /// connects costs the backend nothing (no empty file from a failed STOR).
    AwaitDataConnect,
    /// REST sent to the backend.
    AwaitRest,
    /// The transfer command sent; waiting for 1xx.
    AwaitPreliminary,
    /// Data moves.
    Relaying,
}

/// Where the session is.
#[derive(Debug)]
enum Phase {
    AwaitUser,
    AwaitPass,
    /// A failed login; 530 goes out when the FailedLogin timer fires.
    FailedLogin,
    Connecting {
        pass: Vec<u8>,
    },
    AwaitGreeting {
        pass: Vec<u8>,
    },
    /// AUTH TLS sent to a backend with explicit TLS.
    AwaitServerAuth {
        pass: Vec<u8>,
    },
    AwaitUserReply {
        pass: Vec<u8>,
    },
    AwaitPassReply,
    /// Logged in, no command in flight.
    Ready,
    /// ftpgate's own PWD is in flight (after login, or after a CWD whose target it cannot
    /// compute). Its reply sets the working directory and is not relayed; client commands
    /// wait for it.
    AwaitPwd,
    /// A command forwarded to the backend; its final reply is relayed.
    Forwarded {
        verb: Verb,
        arg: Vec<u8>,
        feat: bool,
    },
    Transfer(Box<Transfer>),
    /// The backend's final replies still owed for an aborted or failed transfer: relay them
    /// (`relay`) or swallow them, then back to Ready.
    Draining {
        replies: u8,
        relay: bool,
    },
    Closed,
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
}

/// The control state machine.
#[derive(Debug)]
pub struct ControlFsm {
    config: ControlConfig,
    phase: Phase,
    user: Option<UserContext>,
    logged_in: bool,
    /// The backend's working directory for the audit trail's paths: from ftpgate's PWD
    /// after login, then followed through successful CWD/CDUP. `None` while unknown.
    cwd: Option<String>,
    data_mode: ClientDataMode,
    rest: Option<u64>,
    epsv_all: bool,
    /// Which reply the client's pending PASV/EPSV wants once the listener is open.
    /// Its argument is audited with the reply the client actually gets (227/229 or 425).
    pending_passive: Option<(PassiveKind, Vec<u8>)>,
    /// Toward an IPv6 backend, ftpgate asks for EPSV instead of PASV.
    server_ipv6: bool,
    /// The client's data connection is up (passive: accepted; active: connected).
    client_data_connected: bool,
    /// The client's protected data connection is up at the TCP level and its TLS handshake
    /// not done yet: no file byte may cross it, and the backend gets no transfer command,
    /// until the shell has seen the handshake finish and accepted it (session reuse).
    client_data_tls_pending: bool,
    /// The failed-login delay since the last PASS has passed.
    login_delay_over: bool,
    /// The address was banned while a failed login waited for its delay.
    ban_pending: bool,
    /// Command lines taken before login (bounded: [`MAX_COMMANDS_BEFORE_LOGIN`]).
    commands_before_login: u32,
    /// (verb, decision, reply) of the commands recorded before login.
    audited_before_login: Vec<(String, &'static str, u16)>,
    /// Commands before login that repeated a recorded one, by verb (for `session_end`).
    repeated: BTreeMap<String, u64>,
    /// Preliminary (1xx) replies since the backend's last final reply.
    preliminaries: u32,
    /// The login timeout passed after PASS: the session closes once the 530 is out.
    login_expired: bool,
    /// A known user's longer login timeout replaced the common one at PASS.
    login_extended: bool,
    /// The control connection is under TLS (implicit, or after AUTH TLS).
    tls_active: bool,
    /// PBSZ was given (RFC 4217 wants it before PROT).
    pbsz_done: bool,
    /// PROT P: every data connection is TLS.
    data_protected: bool,
    /// TLS toward the backend (told by the shell when it connects).
    server_tls: ServerTls,
    /// Replies still owed to ftpgate's own PBSZ/PROT toward the backend.
    server_setup_replies: u8,
}

/// TLS toward the backend control connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTls {
    None,
    /// AUTH TLS after the greeting.
    Explicit,
    /// TLS from the first byte (the shell starts it at connect).
    Implicit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PassiveKind {
    Pasv,
    Epsv,
}

impl PassiveKind {
    fn verb(self) -> &'static str {
        match self {
            PassiveKind::Pasv => "PASV",
            PassiveKind::Epsv => "EPSV",
        }
    }
}

pub(crate) const FILTERED_FEATURES: &[&str] = &[
    "AUTH", "PBSZ", "PROT", "CCC", "HOST", "EPRT", "EPSV", "PASV", "SPSV", "LPSV", "LPRT", "ADAT",
    "MIC", "CONF", "ENC",
];

fn direction_of(verb: Verb) -> Direction {
    if verb.is_upload() {
        Direction::Upload
    } else {
        Direction::Download
    }
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// Compares addresses across IPv4 and IPv4-mapped IPv6 forms.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// ftpgate's own FEAT answer before login (no backend is known yet): its own features and
/// `backend`, what every pool offers.
fn local_features(tls: bool, backend: &[String]) -> Reply {
    let mut lines = vec!["Features:"];
    if tls {
        lines.extend(["AUTH TLS", "PBSZ", "PROT"]);
    }
    lines.extend(["EPRT", "EPSV", "PASV"]);
    lines.extend(backend.iter().map(String::as_str));
    lines.push("End");
    Reply::multi(codes::SYSTEM_STATUS, &lines)
}

/// The backend's FEAT answer, minus what ftpgate handles itself (TLS, data-connection
/// setup, HOST), plus what ftpgate offers itself.
fn filter_features(reply: Reply, tls: bool, fallback: &[String]) -> Reply {
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
        features.push(text.trim().to_string());
    }
    let mut lines: Vec<&str> = vec!["Features:"];
    if tls {
        lines.extend(["AUTH TLS", "PBSZ", "PROT"]);
    }
    lines.extend(["EPRT", "EPSV", "PASV"]);
    lines.extend(features.iter().map(String::as_str));
    lines.push("End");
    Reply::multi(codes::SYSTEM_STATUS, &lines)
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
        let tls_active = config.tls_implicit;
        let fsm = ControlFsm {
            config,
            phase: Phase::AwaitUser,
            user: None,
            logged_in: false,
            cwd: None,
            data_mode: ClientDataMode::None,
            rest: None,
            epsv_all: false,
            pending_passive: None,
            server_ipv6: false,
            client_data_connected: false,
            client_data_tls_pending: false,
            login_delay_over: false,
            ban_pending: false,
            login_expired: false,
            preliminaries: 0,
            commands_before_login: 0,
            audited_before_login: Vec::new(),
            repeated: BTreeMap::new(),
            login_extended: false,
            tls_active,
            pbsz_done: false,
            data_protected: false,
            server_tls: ServerTls::None,
            server_setup_replies: 0,
        };
        (fsm, actions)
    }

    /// A session refused at connect time (access rule, session limit, ban): 421 with `text`,
    /// the violation recorded, then close.
    pub fn refused(
        config: ControlConfig,
        kind: &'static str,
        detail: String,
        text: &str,
    ) -> (ControlFsm, Vec<Action>) {
        let (mut fsm, _) = ControlFsm::new(config);
        fsm.phase = Phase::Closed;
        let actions = vec![
            Action::SendClient(Reply::new(codes::SERVICE_NOT_AVAILABLE, text)),
            Action::Audit(AuditRecord::PolicyViolation { kind, detail }),
            Action::Close(CloseReason::Refused),
        ];
        (fsm, actions)
    }

    /// Whether data connections are TLS (PROT P).
    pub fn data_protected(&self) -> bool {
        self.data_protected
    }

    /// Told by the shell when it connects to a backend.
    pub fn set_server_tls(&mut self, tls: ServerTls) {
        self.server_tls = tls;
    }

    /// Told by the shell once it knows the backend's address family.
    pub fn set_server_ipv6(&mut self, ipv6: bool) {
        self.server_ipv6 = ipv6;
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
        self.logged_in
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the machine can take `line` now. While a command is in flight further lines
    /// wait in the client's input buffer (pipelining), except QUIT at any time and ABOR
    /// during a relay.
    pub fn can_take_line(&self, line: &[u8]) -> bool {
        match &self.phase {
            Phase::AwaitUser | Phase::AwaitPass | Phase::Ready => true,
            Phase::Closed => false,
            Phase::Transfer(t) if t.step == TransferStep::Relaying => {
                matches!(parse_command(line), Ok(c) if matches!(c.verb, Verb::Abor | Verb::Quit))
            }
            _ => matches!(parse_command(line), Ok(c) if c.verb == Verb::Quit),
        }
    }

    /// Feeds one event; returns the actions to perform, in order.
    pub fn on_event(&mut self, event: Event<'_>, policy: &Policy) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.phase, Phase::Closed) {
            return out;
        }
        match event {
            Event::ClientLine(line) => self.on_client_line(line, policy, &mut out),
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
                self.data_mode = ClientDataMode::None;
                if let Some((kind, arg)) = self.pending_passive.take() {
                    self.audit_command(kind.verb(), &arg, "allow", codes::CANT_OPEN_DATA, &mut out);
                }
                out.push(Action::SendClient(Reply::new(
                    codes::CANT_OPEN_DATA,
                    "Cannot open passive connection.",
                )));
            }
            Event::ServerDataConnected => self.on_server_data_connected(&mut out),
            Event::ServerDataFailed => {
                if self.transfer_step() == Some(TransferStep::AwaitDataConnect) {
                    self.transfer_failed(
                        Reply::new(codes::CANT_OPEN_DATA, "Cannot open data connection."),
                        0,
                        &mut out,
                    );
                }
            }
            Event::ClientDataConnected => {
                self.client_data_connected = true;
                self.client_data_tls_pending = false;
                out.push(Action::CancelTimer(TimerKind::DataConnect));
                self.maybe_send_transfer_command(&mut out);
            }
            Event::ClientDataTlsPending => {
                self.client_data_tls_pending = true;
                if self.transfer_step().is_none() {
                    // Accepted ahead of the transfer command: the passive port has done its
                    // job; the handshake is bounded once a transfer waits for it.
                    out.push(Action::CancelTimer(TimerKind::DataConnect));
                }
                self.maybe_send_transfer_command(&mut out);
            }
            Event::ClientDataFailed => {
                self.client_data_connected = false;
                self.client_data_tls_pending = false;
                if self.transfer_step().is_none() && self.data_mode == ClientDataMode::Passive {
                    // The passive port took its one connection and it was refused (a thief,
                    // a handshake that failed): a transfer needs a new PASV.
                    self.data_mode = ClientDataMode::None;
                }
                self.client_data_failed(&mut out)
            }
            Event::RelayDone { bytes } => self.on_relay_done(bytes, &mut out),
            Event::RelayOverLimit { bytes } => self.on_relay_over_limit(bytes, &mut out),
            Event::RelayCopyFailed { bytes } => self.on_relay_copy_failed(bytes, &mut out),
            Event::LoginRefused { text, rule, limit } => {
                self.on_login_refused(text, rule, limit, &mut out)
            }
            Event::Banned => {
                out.push(Action::Audit(AuditRecord::PolicyViolation {
                    kind: "failed_logins",
                    detail: "too many failed logins; address banned".into(),
                }));
                if matches!(self.phase, Phase::FailedLogin) {
                    // The 421 waits for the failed-login delay like the 530 would have.
                    self.ban_pending = true;
                } else {
                    self.close_banned(&mut out);
                }
            }
            Event::RelayFailed { bytes, side } => self.on_relay_failed(bytes, side, &mut out),
            Event::ServerTlsFailed => {
                if !self.logged_in {
                    self.audit_login("failed", Some("backend_tls"), &mut out);
                }
                self.fail_close(
                    "Service not available: no trusted TLS connection to the server.",
                    CloseReason::ServerProtocolError,
                    &mut out,
                );
            }
            Event::Timer(kind) => self.on_timer(kind, &mut out),
        }
        out
    }

    fn transfer_step(&self) -> Option<TransferStep> {
        match &self.phase {
            Phase::Transfer(t) => Some(t.step),
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

    fn audit_command(
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
        if !self.logged_in && verb != "USER" && verb != "PASS" {
            let seen = self
                .audited_before_login
                .iter()
                .any(|(v, d, r)| v == verb && *d == decision && *r == reply);
            if seen {
                *self.repeated.entry(verb.to_string()).or_default() += 1;
                return;
            }
            self.audited_before_login
                .push((verb.to_string(), decision, reply));
        }
        out.push(Action::Audit(AuditRecord::Command {
            verb: verb.to_string(),
            arg: lossy(arg),
            arg_hex: hex_unless_utf8(arg),
            path: Verb::from_name(verb.as_bytes()).and_then(|v| self.audit_path(v, arg)),
            decision,
            reply,
        }));
    }

    fn audit_login(
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
            reason,
        }));
    }

    /// Closes every data connection and the passive listener.
    fn abort_data(&mut self, out: &mut Vec<Action>) {
        self.client_data_connected = false;
        self.client_data_tls_pending = false;
        out.push(Action::AbortData);
    }

    fn close(&mut self, reason: CloseReason, out: &mut Vec<Action>) {
        self.abort_data(out);
        out.push(Action::Close(reason));
        self.phase = Phase::Closed;
    }

    fn fail_close(&mut self, text: &str, reason: CloseReason, out: &mut Vec<Action>) {
        self.reply(codes::SERVICE_NOT_AVAILABLE, text, out);
        self.close(reason, out);
    }

    // ----- client commands -------------------------------------------------------------

    /// Counts a command line before login; false (and the session closes) beyond the limit.
    fn count_before_login(&mut self, out: &mut Vec<Action>) -> bool {
        if self.logged_in {
            return true;
        }
        self.commands_before_login = self.commands_before_login.saturating_add(1);
        if self.commands_before_login <= MAX_COMMANDS_BEFORE_LOGIN {
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

    fn on_client_line(&mut self, line: &[u8], policy: &Policy, out: &mut Vec<Action>) {
        if !self.count_before_login(out) {
            return;
        }
        let cmd = match parse_command(line) {
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
                    CommandError::Unknown(verb) if self.logged_in => (
                        codes::NOT_IMPLEMENTED,
                        format!("Command {verb} not implemented."),
                    ),
                    CommandError::Unknown(_) => (
                        codes::NOT_LOGGED_IN,
                        "Please login with USER and PASS.".to_string(),
                    ),
                };
                self.reply(code, &text, out);
                let verb = match &err {
                    CommandError::Unknown(v) => v.clone(),
                    _ => String::new(),
                };
                self.audit_command(&verb, b"", "deny", code, out);
                return;
            }
        };
        if cmd.verb == Verb::Quit {
            if self.logged_in {
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
        if self.logged_in {
            if let Some(t) = self.user_timeouts() {
                out.push(Action::SetTimer(TimerKind::Idle, secs(t.idle)));
            }
            self.on_command_logged_in(cmd, policy, out);
        } else {
            self.on_command_before_login(cmd, policy, out);
        }
    }

    /// The user's data connect timeout once known, else the default.
    fn data_connect_timeout(&self) -> u64 {
        self.user_timeouts()
            .map_or(self.config.data_connect_timeout, |t| t.data_connect)
    }

    fn user_timeouts(&self) -> Option<&Timeouts> {
        self.user.as_ref()?.known.as_ref().map(|k| &k.timeouts)
    }

    fn on_command_before_login(&mut self, cmd: Command, policy: &Policy, out: &mut Vec<Action>) {
        match cmd.verb {
            Verb::User if self.config.tls_require != TlsRequire::None && !self.tls_active => self
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
                let name = lossy(&cmd.arg);
                let known = policy.user(&name).and_then(|u| {
                    let role = policy.roles.get(&u.role)?;
                    Some(KnownUser {
                        role: u.role.clone(),
                        allow: role.allow,
                        backend: u.backend.clone(),
                        timeouts: u.timeouts,
                        max_file_size: u.limits.max_file_size,
                        allow_fxp_to: u.allow_fxp_to.clone(),
                        tls_require: u.tls_require,
                    })
                });
                // SECURITY: the login timeout stays the same for every name until PASS
                // (a known user's own one from here on would tell the name exists).
                // SECURITY: the same 331 for every name, known or not (no user enumeration).
                self.user = Some(UserContext {
                    name,
                    name_hex: hex_unless_utf8(&cmd.arg),
                    known,
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
                let tls_refused = self.tls_required() != TlsRequire::None && !self.tls_active;
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
                self.login_delay_over = false;
                out.push(Action::SetTimer(
                    TimerKind::FailedLogin,
                    Duration::from_millis(self.config.failed_login_delay_ms),
                ));
                if known {
                    // A user's own login timeout may give a slow backend login more time;
                    // it never shortens the common one (a sooner 421 would tell).
                    if let Some(login) = self.user_timeouts().map(|t| t.login) {
                        if login > self.config.login_timeout {
                            self.login_extended = true;
                            out.push(Action::SetTimer(TimerKind::Login, secs(login)));
                        }
                    }
                    self.phase = Phase::Connecting { pass: cmd.arg };
                    out.push(Action::ConnectServer);
                } else {
                    // SECURITY: no backend is contacted for a name the policy does not know,
                    // nor for one that must use TLS and did not.
                    let reason = if tls_refused {
                        "tls_required"
                    } else {
                        "unknown_user"
                    };
                    self.audit_login("failed", Some(reason), out);
                    out.push(Action::LoginFailed);
                    self.start_failed_login(out);
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

    /// The TLS level the session must meet: the listener's and global requirement,
    /// tightened by the user's own once known.
    fn tls_required(&self) -> TlsRequire {
        let user = self
            .user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .map_or(TlsRequire::None, |k| k.tls_require);
        self.config.tls_require.max(user)
    }

    /// AUTH TLS (and its aliases): 234, then the shell starts TLS once the reply is out.
    fn on_auth(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        let mechanism = String::from_utf8_lossy(&cmd.arg)
            .trim()
            .to_ascii_uppercase();
        if !self.config.tls_available {
            return self.local(
                cmd,
                "deny",
                codes::NOT_IMPLEMENTED,
                "TLS is not enabled on this gateway.",
                out,
            );
        }
        if self.tls_active {
            return self.local(cmd, "deny", codes::BAD_SEQUENCE, "Already using TLS.", out);
        }
        if !matches!(mechanism.as_str(), "TLS" | "SSL" | "TLS-C" | "TLS-P") {
            return self.local(
                cmd,
                "deny",
                codes::NOT_IMPLEMENTED_PARAM,
                "Unknown AUTH mechanism; use AUTH TLS.",
                out,
            );
        }
        self.tls_active = true;
        if mechanism == "TLS-P" || mechanism == "SSL" {
            // RFC 4217 §4: the historical AUTH SSL and TLS-P imply protected data.
            self.data_protected = true;
        }
        self.local(
            cmd,
            "allow",
            codes::AUTH_OK,
            "Proceed with negotiation.",
            out,
        );
        out.push(Action::StartClientTls);
    }

    /// PBSZ, PROT and CCC (RFC 4217).
    fn on_tls_command(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        if !self.tls_active {
            return self.local(cmd, "deny", codes::BAD_SEQUENCE, "Use AUTH TLS first.", out);
        }
        let arg = String::from_utf8_lossy(&cmd.arg)
            .trim()
            .to_ascii_uppercase();
        match cmd.verb {
            Verb::Pbsz => {
                self.pbsz_done = true;
                self.local(cmd, "allow", codes::COMMAND_OK, "PBSZ=0", out)
            }
            Verb::Prot if !self.pbsz_done => {
                self.local(cmd, "deny", codes::BAD_SEQUENCE, "PBSZ first.", out)
            }
            Verb::Prot if arg == "P" => {
                self.data_protected = true;
                self.local(cmd, "allow", codes::COMMAND_OK, "PROT now Private.", out)
            }
            Verb::Prot if arg == "C" => {
                if self.tls_required() == TlsRequire::All {
                    return self.local(
                        cmd,
                        "deny",
                        codes::REQUEST_DENIED_POLICY,
                        "PROT C refused: data connections must be protected.",
                        out,
                    );
                }
                self.data_protected = false;
                self.local(cmd, "allow", codes::COMMAND_OK, "PROT now Clear.", out)
            }
            Verb::Prot if arg == "S" || arg == "E" => self.local(
                cmd,
                "deny",
                codes::PROT_LEVEL_NOT_SUPPORTED,
                "PROT S and E are not supported.",
                out,
            ),
            Verb::Prot => self.local(
                cmd,
                "deny",
                codes::NOT_IMPLEMENTED_PARAM,
                "PROT needs C or P.",
                out,
            ),
            // SECURITY: CCC would drop the control channel back to plaintext.
            _ => self.local(
                cmd,
                "deny",
                codes::REQUEST_DENIED_POLICY,
                "CCC is not permitted.",
                out,
            ),
        }
    }

    fn local_opts(&mut self, cmd: &Command, out: &mut Vec<Action>) {
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
    fn start_failed_login(&mut self, out: &mut Vec<Action>) {
        if self.login_delay_over {
            self.answer_failed_login(out);
        } else {
            self.phase = Phase::FailedLogin;
        }
    }

    fn close_banned(&mut self, out: &mut Vec<Action>) {
        self.fail_close(
            "Too many failed logins; try again later.",
            CloseReason::Banned,
            out,
        );
    }

    fn answer_failed_login(&mut self, out: &mut Vec<Action>) {
        if self.ban_pending {
            return self.close_banned(out);
        }
        self.phase = Phase::AwaitUser;
        self.user = None;
        self.reply(codes::NOT_LOGGED_IN, "Login incorrect.", out);
        if self.login_expired {
            // The login timeout passed while the failure waited for its delay: the 530
            // first, as for any name, then the timeout.
            return self.fail_close("Login timeout.", CloseReason::LoginTimeout, out);
        }
        if std::mem::take(&mut self.login_extended) {
            out.push(Action::SetTimer(
                TimerKind::Login,
                secs(self.config.login_timeout),
            ));
        }
    }

    fn on_command_logged_in(&mut self, cmd: Command, policy: &Policy, out: &mut Vec<Action>) {
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
                if needs.granted(|v| allow.contains(v)) {
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

    /// OPTS after login: UTF8 goes to the backend (it changes how the backend encodes
    /// names), MLST only for a role that lists; anything else is not understood.
    fn on_opts_logged_in(&mut self, cmd: Command, allow: &VerbSet, out: &mut Vec<Action>) {
        let (option, _) = permission::first_word(&cmd.arg);
        if option == "UTF8"
            || permission::needs(Verb::Opts, &cmd.arg).granted(|v| allow.contains(v))
        {
            return self.forward(cmd, false, out);
        }
        let (code, text) = if option == "MLST" {
            (codes::FILE_UNAVAILABLE, "Permission denied.")
        } else {
            (codes::SYNTAX_ERROR_ARGS, "Option not understood.")
        };
        self.local(&cmd, "deny", code, text, out)
    }

    fn forward(&mut self, cmd: Command, feat: bool, out: &mut Vec<Action>) {
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

    fn on_pasv(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        if self.epsv_all {
            return self.local(
                cmd,
                "deny",
                codes::BAD_SEQUENCE,
                "Only EPSV is allowed after EPSV ALL.",
                out,
            );
        }
        self.data_mode = ClientDataMode::None;
        self.client_data_connected = false;
        self.client_data_tls_pending = false;
        self.pending_passive = Some((PassiveKind::Pasv, Vec::new()));
        out.push(Action::OpenPassive);
    }

    fn on_epsv(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        match parse_epsv_arg(&cmd.arg) {
            Ok(EpsvArg::All) => {
                self.epsv_all = true;
                self.local(cmd, "allow", codes::COMMAND_OK, "EPSV ALL ok.", out)
            }
            Ok(EpsvArg::Family(af)) if af != self.client_family() => self.local(
                cmd,
                "deny",
                codes::EXT_NETWORK_PROTOCOL_NOT_SUPPORTED,
                if self.client_family() == 1 {
                    "Network protocol not supported, use (1)"
                } else {
                    "Network protocol not supported, use (2)"
                },
                out,
            ),
            Ok(_) => {
                self.data_mode = ClientDataMode::None;
                self.pending_passive = Some((PassiveKind::Epsv, cmd.arg.clone()));
                out.push(Action::OpenPassive);
            }
            Err(crate::ftp::address::AddressError::BadFamily) => self.local(
                cmd,
                "deny",
                codes::EXT_NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1,2)",
                out,
            ),
            Err(_) => self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Bad EPSV argument.",
                out,
            ),
        }
    }

    fn client_family(&self) -> u8 {
        match self.config.client_ip {
            IpAddr::V4(_) => 1,
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => 1,
            IpAddr::V6(_) => 2,
        }
    }

    fn on_passive_opened(&mut self, addr: SocketAddr, out: &mut Vec<Action>) {
        let Some((kind, arg)) = self.pending_passive.take() else {
            return;
        };
        let reply = match (kind, addr) {
            (PassiveKind::Pasv, SocketAddr::V4(v4)) => format_pasv_reply(v4),
            (PassiveKind::Pasv, SocketAddr::V6(v6)) => match v6.ip().to_ipv4_mapped() {
                Some(ip) => format_pasv_reply(std::net::SocketAddrV4::new(ip, v6.port())),
                None => {
                    self.abort_data(out);
                    self.audit_command("PASV", b"", "allow", codes::CANT_OPEN_DATA, out);
                    return self.reply(codes::CANT_OPEN_DATA, "PASV is IPv4 only; use EPSV.", out);
                }
            },
            (PassiveKind::Epsv, addr) => format_epsv_reply(addr.port()),
        };
        self.data_mode = ClientDataMode::Passive;
        let code = reply.code;
        out.push(Action::SendClient(reply));
        self.audit_command(kind.verb(), &arg, "allow", code, out);
        out.push(Action::SetTimer(
            TimerKind::DataConnect,
            secs(self.data_connect_timeout()),
        ));
    }

    fn on_port(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        if self.epsv_all {
            return self.local(
                cmd,
                "deny",
                codes::BAD_SEQUENCE,
                "Only EPSV is allowed after EPSV ALL.",
                out,
            );
        }
        match parse_port_arg(&cmd.arg) {
            Ok(addr) => self.set_active(cmd, SocketAddr::V4(addr), out),
            Err(_) => self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Illegal PORT command.",
                out,
            ),
        }
    }

    fn on_eprt(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        if self.epsv_all {
            return self.local(
                cmd,
                "deny",
                codes::BAD_SEQUENCE,
                "Only EPSV is allowed after EPSV ALL.",
                out,
            );
        }
        match parse_eprt_arg(&cmd.arg) {
            Ok(addr) => self.set_active(cmd, addr, out),
            Err(crate::ftp::address::AddressError::BadFamily) => self.local(
                cmd,
                "deny",
                codes::EXT_NETWORK_PROTOCOL_NOT_SUPPORTED,
                "Network protocol not supported, use (1,2)",
                out,
            ),
            Err(_) => self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Illegal EPRT command.",
                out,
            ),
        }
    }

    fn set_active(&mut self, cmd: &Command, addr: SocketAddr, out: &mut Vec<Action>) {
        // SECURITY: no bounce, no FXP. The data connection may only go back to the client's
        // own control-connection address, and never to a privileged port.
        let fxp_allowed = self
            .user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .is_some_and(|k| k.allow_fxp_to.iter().any(|c| c.contains(addr.ip())));
        if !(same_ip(addr.ip(), self.config.client_ip) || fxp_allowed) || addr.port() < 1024 {
            out.push(Action::Audit(AuditRecord::PolicyViolation {
                kind: "bounce",
                detail: format!("{} named {addr}", cmd.verb.name()),
            }));
            return self.local(
                cmd,
                "deny",
                codes::SYNTAX_ERROR_ARGS,
                "Illegal PORT command: address not permitted.",
                out,
            );
        }
        self.abort_data(out);
        self.data_mode = ClientDataMode::Active(addr);
        let text = format!(
            "{} command successful. Consider using PASV.",
            cmd.verb.name()
        );
        self.local(cmd, "allow", codes::COMMAND_OK, &text, out);
    }

    // ----- transfers -------------------------------------------------------------------

    fn start_transfer(&mut self, cmd: Command, out: &mut Vec<Action>) {
        if self.tls_required() == TlsRequire::All && !self.data_protected {
            return self.local(
                &cmd,
                "deny",
                codes::DATA_NOT_PROTECTED,
                "Data connections must be encrypted: use PROT P.",
                out,
            );
        }
        if self.data_mode == ClientDataMode::None {
            return self.local(
                &cmd,
                "deny",
                codes::CANT_OPEN_DATA,
                "Use PORT or PASV first.",
                out,
            );
        }
        let server_ipv6 = self.server_ipv6;
        out.push(Action::SendServer(if server_ipv6 {
            Command::new(Verb::Epsv, b"")
        } else {
            Command::new(Verb::Pasv, b"")
        }));
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
        out.push(Action::CancelTimer(TimerKind::Idle));
        if let ClientDataMode::Active(addr) = self.data_mode {
            self.client_data_connected = false;
            self.client_data_tls_pending = false;
            out.push(Action::ConnectClientData(addr));
        }
        if !self.client_data_connected {
            out.push(Action::SetTimer(
                TimerKind::DataConnect,
                secs(self.data_connect_timeout()),
            ));
        }
        self.phase = Phase::Transfer(Box::new(Transfer {
            verb: cmd.verb,
            direction: direction_of(cmd.verb),
            arg: cmd.arg,
            rest: self.rest.take(),
            step: TransferStep::AwaitPasv,
            held: None,
            relayed: None,
            server_ready: false,
            own_preliminary: false,
        }));
    }

    /// The client's data connection failed or did not come in time, before the backend saw
    /// the transfer command: 425, and the backend's PASV reply (if still owed) is swallowed.
    fn client_data_failed(&mut self, out: &mut Vec<Action>) {
        let owed = match self.transfer_step() {
            Some(TransferStep::AwaitPasv) => 1,
            Some(TransferStep::AwaitDataConnect) => 0,
            _ => return,
        };
        self.end_transfer_with_code("failed", 0, codes::CANT_OPEN_DATA, out);
        self.reply(
            codes::CANT_OPEN_DATA,
            "Failed to establish data connection.",
            out,
        );
        self.drain(owed, false, out);
    }

    /// Sends REST (if any) or the transfer command once both data connections are up.
    ///
    /// SECURITY: a protected client data connection counts as up only once its TLS
    /// handshake is finished and accepted, so a thief's connection never gets a byte and the
    /// backend never sees the command for it. A client that waits for the 150 before its
    /// handshake gets ftpgate's own 150 first (and the backend's is then not relayed).
    fn maybe_send_transfer_command(&mut self, out: &mut Vec<Action>) {
        let client_ready = self.client_data_connected;
        let tls_pending = self.client_data_tls_pending;
        let timeout = self.data_connect_timeout();
        let Phase::Transfer(t) = &mut self.phase else {
            return;
        };
        if t.step != TransferStep::AwaitDataConnect || !t.server_ready {
            return;
        }
        if !client_ready {
            if tls_pending && !t.own_preliminary {
                t.own_preliminary = true;
                out.push(Action::SendClient(Reply::new(
                    codes::DATA_OPENING,
                    "Opening data connection.",
                )));
                out.push(Action::SetTimer(TimerKind::DataConnect, secs(timeout)));
            }
            return;
        }
        match t.rest {
            Some(offset) if offset > 0 => {
                t.step = TransferStep::AwaitRest;
                out.push(Action::SendServer(Command::new(
                    Verb::Rest,
                    offset.to_string().as_bytes(),
                )));
            }
            _ => {
                t.step = TransferStep::AwaitPreliminary;
                out.push(Action::SendServer(Command::new(t.verb, &t.arg)));
            }
        }
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
    }

    fn on_server_data_connected(&mut self, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &mut self.phase else {
            return;
        };
        if t.step != TransferStep::AwaitDataConnect {
            return;
        }
        t.server_ready = true;
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        self.maybe_send_transfer_command(out);
    }

    fn on_transfer_reply(&mut self, reply: Reply, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &mut self.phase else {
            return;
        };
        match t.step {
            TransferStep::AwaitPasv => {
                let port = if reply.code == codes::ENTERING_PASSIVE {
                    parse_pasv_reply(reply.text()).ok().map(|a| a.port())
                } else if reply.code == codes::ENTERING_EXT_PASSIVE {
                    parse_epsv_reply(reply.text()).ok()
                } else {
                    None
                };
                match port {
                    // SECURITY: the address inside the backend's 227/229 is ignored; the
                    // shell connects to the backend's control address at this port.
                    Some(port) => {
                        t.step = TransferStep::AwaitDataConnect;
                        out.push(Action::ConnectServerData(port));
                    }
                    None => self.transfer_failed(
                        Reply::new(
                            codes::CANT_OPEN_DATA,
                            "Cannot open data connection to the server.",
                        ),
                        0,
                        out,
                    ),
                }
            }
            TransferStep::AwaitDataConnect => {
                // A reply before we sent anything: the backend is confused.
                self.transfer_failed(reply, 0, out);
            }
            TransferStep::AwaitRest => {
                if reply.code == codes::PENDING_FURTHER {
                    t.step = TransferStep::AwaitPreliminary;
                    out.push(Action::SendServer(Command::new(t.verb, &t.arg)));
                    out.push(Action::SetTimer(
                        TimerKind::BackendReply,
                        secs(self.config.backend_reply_timeout),
                    ));
                } else {
                    self.transfer_failed(reply, 0, out);
                }
            }
            TransferStep::AwaitPreliminary => {
                if reply.is_preliminary() {
                    t.step = TransferStep::Relaying;
                    if !t.own_preliminary {
                        out.push(Action::SendClient(reply));
                    }
                    out.push(Action::CancelTimer(TimerKind::BackendReply));
                    let max_bytes = self
                        .user
                        .as_ref()
                        .and_then(|u| u.known.as_ref())
                        .and_then(|k| k.max_file_size)
                        // Listings are not files: the size limit does not cut them.
                        .filter(|_| !matches!(t.verb, Verb::List | Verb::Nlst | Verb::Mlsd));
                    out.push(Action::StartRelay {
                        direction: t.direction,
                        max_bytes,
                    });
                } else {
                    self.transfer_failed(reply, 0, out);
                }
            }
            TransferStep::Relaying => {
                if reply.is_preliminary() {
                    out.push(Action::SendClient(reply));
                } else if reply.is_positive_completion() {
                    match t.relayed {
                        Some(bytes) => self.transfer_finished(reply, bytes, out),
                        None => t.held = Some(reply),
                    }
                } else {
                    let bytes = t.relayed.unwrap_or(0);
                    self.transfer_failed(reply, bytes, out);
                }
            }
        }
    }

    fn on_relay_done(&mut self, bytes: u64, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &mut self.phase else {
            return;
        };
        if t.step != TransferStep::Relaying {
            return;
        }
        match t.held.take() {
            Some(reply) => self.transfer_finished(reply, bytes, out),
            None => {
                t.relayed = Some(bytes);
                out.push(Action::SetTimer(
                    TimerKind::BackendReply,
                    secs(self.config.backend_reply_timeout),
                ));
            }
        }
    }

    /// The file size limit stopped the relay: 552 for an upload (the backend keeps the part
    /// it received; the transfer event reports it), 426 for a download. The backend's own
    /// final reply to the cut transfer is swallowed.
    fn on_relay_over_limit(&mut self, bytes: u64, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &self.phase else {
            return;
        };
        let owed = if t.held.is_some() { 0 } else { 1 };
        let upload = t.direction == Direction::Upload;
        out.push(Action::Audit(AuditRecord::PolicyViolation {
            kind: "limit",
            detail: format!("max_file_size exceeded after {bytes} bytes"),
        }));
        let code = if upload {
            codes::EXCEEDED_STORAGE
        } else {
            codes::TRANSFER_ABORTED
        };
        self.end_transfer_with_code("size_limit", bytes, code, out);
        self.reply(code, "File size limit exceeded; transfer aborted.", out);
        self.drain(owed, false, out);
    }

    /// Filecopy mode: the audit copy failed and the policy's `on_failure` is "abort": 451 to
    /// the client and result "copy_failed". The backend's own final reply is swallowed.
    fn on_relay_copy_failed(&mut self, bytes: u64, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &self.phase else {
            return;
        };
        if t.step != TransferStep::Relaying {
            return;
        }
        let owed = if t.held.is_some() { 0 } else { 1 };
        self.end_transfer_with_code("copy_failed", bytes, codes::LOCAL_ERROR, out);
        self.reply(
            codes::LOCAL_ERROR,
            "Local error: the audit copy failed.",
            out,
        );
        self.drain(owed, false, out);
    }

    fn on_relay_failed(&mut self, bytes: u64, side: Side, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &self.phase else {
            return;
        };
        let owed = if t.held.is_some() { 0 } else { 1 };
        let text = match side {
            Side::Client => "Connection closed; transfer aborted.",
            Side::Server => "Connection to the server failed; transfer aborted.",
        };
        self.end_transfer("failed", bytes, out);
        self.reply(codes::TRANSFER_ABORTED, text, out);
        self.drain(owed, false, out);
    }

    /// The transfer ended well: the held or just-arrived final reply goes to the client.
    fn transfer_finished(&mut self, reply: Reply, bytes: u64, out: &mut Vec<Action>) {
        let code = reply.code;
        self.end_transfer_with_code("ok", bytes, code, out);
        out.push(Action::SendClient(reply));
        self.enter_ready(out);
    }

    /// The transfer ended badly before or during the relay; `reply` goes to the client.
    fn transfer_failed(&mut self, reply: Reply, bytes: u64, out: &mut Vec<Action>) {
        let code = reply.code;
        let relaying = self.transfer_step() == Some(TransferStep::Relaying);
        let before_command = matches!(
            self.transfer_step(),
            Some(TransferStep::AwaitPasv | TransferStep::AwaitDataConnect)
        );
        if relaying || !before_command {
            self.end_transfer_with_code("failed", bytes, code, out);
        } else {
            self.end_transfer_with_code("failed", 0, code, out);
        }
        out.push(Action::SendClient(reply));
        self.enter_ready(out);
    }

    fn end_transfer(&mut self, result: &'static str, bytes: u64, out: &mut Vec<Action>) {
        self.end_transfer_with_code(result, bytes, codes::TRANSFER_ABORTED, out);
    }

    /// Closes the data side and records the command and the transfer.
    fn end_transfer_with_code(
        &mut self,
        result: &'static str,
        bytes: u64,
        code: u16,
        out: &mut Vec<Action>,
    ) {
        self.abort_data(out);
        out.push(Action::CancelTimer(TimerKind::DataConnect));
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        self.data_mode = ClientDataMode::None;
        let Phase::Transfer(t) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return;
        };
        let decision = "allow";
        self.audit_command(t.verb.name(), &t.arg, decision, code, out);
        out.push(Action::Audit(AuditRecord::Transfer {
            verb: t.verb.name(),
            arg: lossy(&t.arg),
            arg_hex: hex_unless_utf8(&t.arg),
            path: self.audit_path(t.verb, &t.arg),
            direction: t.direction.as_str(),
            bytes,
            result,
            duration_ms: 0,
            sha256: None,
            filecopy: None,
            filecopy_error: None,
        }));
    }

    fn abort_transfer(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &self.phase else {
            return;
        };
        let had_final = t.held.is_some();
        let bytes = t.relayed.unwrap_or(0);
        self.end_transfer("aborted", bytes, out);
        out.push(Action::SendServer(Command::new(Verb::Abor, b"")));
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
        self.audit_command(cmd.verb.name(), b"", "allow", codes::DATA_CLOSE_OK, out);
        if had_final {
            // The backend already finished; the client still gets the RFC 959 pair: 426 for
            // the transfer it aborted, then the backend's reply to ABOR.
            self.reply(
                codes::TRANSFER_ABORTED,
                "Connection closed; transfer aborted.",
                out,
            );
            self.drain(1, true, out);
        } else {
            // The backend answers both: 426 (or 226) for the transfer, then 226 for ABOR.
            self.drain(2, true, out);
        }
    }

    fn drain(&mut self, replies: u8, relay: bool, out: &mut Vec<Action>) {
        if replies == 0 {
            self.enter_ready(out);
        } else {
            self.phase = Phase::Draining { replies, relay };
            out.push(Action::SetTimer(
                TimerKind::BackendReply,
                secs(self.config.backend_reply_timeout),
            ));
        }
    }

    fn enter_ready(&mut self, out: &mut Vec<Action>) {
        self.phase = Phase::Ready;
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        if let Some(t) = self.user_timeouts() {
            out.push(Action::SetTimer(TimerKind::Idle, secs(t.idle)));
        }
    }

    // ----- working directory (audit paths) ---------------------------------------------

    /// Sends ftpgate's own PWD to the backend; see [`Phase::AwaitPwd`].
    fn ask_pwd(&mut self, out: &mut Vec<Action>) {
        out.push(Action::SendServer(Command::new(Verb::Pwd, b"")));
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
        self.phase = Phase::AwaitPwd;
    }

    /// The backend's reply to ftpgate's PWD. Only a `/` path is tracked: an error, or a path
    /// of another shape (a z/OS data set prefix), leaves the working directory unknown.
    fn on_pwd_reply(&mut self, reply: &Reply) {
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
    fn follow_cwd(&mut self, verb: Verb, arg: &[u8]) -> bool {
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
    fn audit_path(&self, verb: Verb, arg: &[u8]) -> Option<String> {
        if !self.logged_in {
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

    // ----- backend events --------------------------------------------------------------

    fn on_server_connected(&mut self, out: &mut Vec<Action>) {
        if let Phase::Connecting { pass } = std::mem::replace(&mut self.phase, Phase::Closed) {
            self.phase = Phase::AwaitGreeting { pass };
            out.push(Action::SetTimer(
                TimerKind::BackendReply,
                secs(self.config.backend_reply_timeout),
            ));
        }
    }

    fn send_server_user(&self, out: &mut Vec<Action>) {
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

    /// The backend broke the protocol in a way that could only desynchronise or flood the
    /// client: 421, recorded, closed.
    fn backend_violation(&mut self, detail: String, out: &mut Vec<Action>) {
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
        // The replies to ftpgate's own PBSZ/PROT toward a TLS backend come first.
        if self.server_setup_replies > 0 && !reply.is_preliminary() {
            self.server_setup_replies -= 1;
            if !reply.is_positive_completion() {
                self.fail_close(
                    "Service not available: the server refused protected data connections.",
                    CloseReason::BackendUnavailable,
                    out,
                );
            }
            return;
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
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
            Phase::Forwarded { verb, arg, feat } => {
                if reply.is_preliminary() {
                    out.push(Action::SendClient(reply));
                    self.phase = Phase::Forwarded { verb, arg, feat };
                    return;
                }
                let code = reply.code;
                let reply = if feat {
                    filter_features(reply, self.config.tls_available, &self.config.features)
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
            Phase::AwaitPwd => {
                if reply.is_preliminary() {
                    self.phase = Phase::AwaitPwd;
                    return;
                }
                // ftpgate's own command: the client never sees its reply.
                self.on_pwd_reply(&reply);
                self.enter_ready(out);
            }
            Phase::Transfer(t) => {
                self.phase = Phase::Transfer(t);
                self.on_transfer_reply(reply, out);
            }
            Phase::Draining { replies, relay } => {
                if reply.is_preliminary() {
                    if relay {
                        out.push(Action::SendClient(reply));
                    }
                    self.phase = Phase::Draining { replies, relay };
                    return;
                }
                if relay {
                    out.push(Action::SendClient(reply));
                }
                self.drain(replies.saturating_sub(1), relay, out);
            }
            Phase::Ready => {
                // SECURITY: an unsolicited backend reply is never relayed (it would
                // desynchronise the client's view of which reply answers which command),
                // and a backend that sends them is not trusted with the session.
                self.phase = Phase::Ready;
                self.backend_violation(format!("unsolicited reply {}", reply.code), out);
            }
            other => self.phase = other,
        }
    }

    fn login_succeeded(&mut self, reply: Reply, out: &mut Vec<Action>) {
        // Toward a TLS backend every data connection is protected too (RFC 4217). These go
        // before anything else ftpgate sends after login; their replies are swallowed by
        // `server_setup_replies` in on_server_reply, which keeps the order.
        if self.server_tls != ServerTls::None {
            out.push(Action::SendServer(Command::new(Verb::Pbsz, b"0")));
            out.push(Action::SendServer(Command::new(Verb::Prot, b"P")));
            self.server_setup_replies = 2;
        }
        self.logged_in = true;
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

    fn backend_refused_login(&mut self, out: &mut Vec<Action>) {
        out.push(Action::CloseServer);
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        self.audit_login("failed", Some("backend_refused"), out);
        out.push(Action::LoginFailed);
        self.start_failed_login(out);
    }

    /// The shell refused a known user's login before contacting the backend.
    fn on_login_refused(
        &mut self,
        text: &'static str,
        rule: String,
        limit: bool,
        out: &mut Vec<Action>,
    ) {
        if !matches!(self.phase, Phase::Connecting { .. }) {
            return;
        }
        out.push(Action::Audit(AuditRecord::PolicyViolation {
            kind: if limit { "limit" } else { "access_rule" },
            detail: rule,
        }));
        if limit {
            self.audit_login("failed", Some("limit"), out);
            self.fail_close(text, CloseReason::Refused, out);
        } else {
            // Refused like a wrong password (530 after the delay, and counted like one):
            // the rule is in the audit trail, not in the reply.
            self.audit_login("failed", Some("access_rule"), out);
            out.push(Action::LoginFailed);
            self.start_failed_login(out);
        }
    }

    /// The login timeout. Once PASS was given the failure is answered like any failed login
    /// (530 at the failed-login delay) and only then the session closes, so the moment of
    /// the answer does not tell whether the name exists or how slow its backend is.
    fn on_login_timeout(&mut self, out: &mut Vec<Action>) {
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
        match phase {
            Phase::FailedLogin => {
                self.login_expired = true;
                self.phase = Phase::FailedLogin;
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

    fn backend_login_timed_out(&mut self, out: &mut Vec<Action>) {
        self.login_expired = true;
        out.push(Action::CloseServer);
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        self.audit_login("failed", Some("login_timeout"), out);
        out.push(Action::LoginFailed);
        self.start_failed_login(out);
    }

    fn on_timer(&mut self, kind: TimerKind, out: &mut Vec<Action>) {
        match kind {
            TimerKind::Login if !self.logged_in => self.on_login_timeout(out),
            TimerKind::Idle if self.logged_in && self.transfer_step().is_none() => {
                self.fail_close("Timeout.", CloseReason::IdleTimeout, out)
            }
            TimerKind::Session => self.fail_close(
                "Session time limit reached.",
                CloseReason::SessionTimeout,
                out,
            ),
            TimerKind::FailedLogin => {
                self.login_delay_over = true;
                if matches!(self.phase, Phase::FailedLogin) {
                    self.answer_failed_login(out);
                }
            }
            TimerKind::DataConnect => match self.transfer_step() {
                Some(TransferStep::AwaitPasv | TransferStep::AwaitDataConnect) => {
                    self.client_data_failed(out)
                }
                Some(_) => {}
                None => {
                    // SECURITY: a passive port stays open only for a bounded time.
                    if self.data_mode == ClientDataMode::Passive && !self.client_data_connected {
                        self.data_mode = ClientDataMode::None;
                        self.abort_data(out);
                    }
                }
            },
            TimerKind::BackendReply => {
                let waiting = match &self.phase {
                    Phase::Ready | Phase::AwaitUser | Phase::AwaitPass | Phase::FailedLogin => {
                        false
                    }
                    // While data moves the backend owes nothing until the relay is done.
                    Phase::Transfer(t) if t.step == TransferStep::Relaying => t.relayed.is_some(),
                    _ => true,
                };
                if waiting {
                    self.fail_close(
                        "Service not available: the backend did not answer in time.",
                        CloseReason::BackendTimeout,
                        out,
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
