//! The machine's interface: the events it takes, the actions it returns, and the small
//! types they carry (timer kinds, directions, close reasons).

use std::net::SocketAddr;
use std::time::Duration;

use crate::audit::AuditRecord;
use crate::ftp::command::{Command, CommandError};
use crate::ftp::reply::Reply;
use crate::session::admission::Refusal;

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

    /// The sides a transfer this way reads from and writes to: (source, sink).
    pub fn sides(self) -> (Side, Side) {
        match self {
            Direction::Download => (Side::Server, Side::Client),
            Direction::Upload => (Side::Client, Side::Server),
        }
    }
}

/// Which side of a data connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
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
    /// An operator killed the session (`ftpgate kill`).
    Killed,
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
            CloseReason::Killed => "killed",
        }
    }

    /// The `result` of a transfer the session's end cut: what ended it.
    pub fn transfer_result(self) -> &'static str {
        match self {
            CloseReason::Quit => "quit",
            CloseReason::ClientClosed => "client_gone",
            CloseReason::ServerClosed => "backend_gone",
            CloseReason::ServerProtocolError => "backend_error",
            CloseReason::LoginTimeout
            | CloseReason::IdleTimeout
            | CloseReason::SessionTimeout
            | CloseReason::BackendTimeout => "timeout",
            CloseReason::WorkerStopping => "shutdown",
            CloseReason::Killed => "killed",
            CloseReason::BackendUnavailable
            | CloseReason::Refused
            | CloseReason::Banned
            | CloseReason::TooManyCommands => "aborted",
        }
    }
}

/// Inputs to the machine.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// One framed, Telnet-filtered command line from the client.
    ClientCommand(Result<Command, CommandError>),
    /// The client sent a line longer than the limit (it has been discarded).
    ClientLineTooLong,
    /// A line that is no command (a control byte, a malformed verb): the parse error, the
    /// line's first [`crate::limits::MAX_AUDITED_LINE_BYTES`] bytes and its length.
    ClientMalformed {
        error: CommandError,
        line: Vec<u8>,
        len: usize,
    },
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
    /// The relay moved every byte and closed both data connections cleanly (and in filecopy
    /// mode its copy is on the disk, or failed under `on_failure: "continue"`).
    RelayDone(RelayReport),
    /// The transfer went past the user's file size limit and was stopped.
    RelayOverLimit(RelayReport),
    /// A data connection failed during the relay.
    RelayFailed {
        report: RelayReport,
        side: Side,
    },
    /// Filecopy mode: the copy of the transfer failed and the policy says a failed copy
    /// fails the transfer (the relay is over or was stopped).
    RelayCopyFailed(RelayReport),
    /// The relay was stopped as [`Action::StopRelay`] asked; what had crossed by then.
    RelayStopped(RelayReport),
    Timer(TimerKind),
    /// The shell's admission check refused the login of this known user (access rule, time
    /// window, session cap) before any backend was contacted.
    LoginRefused(Refusal),
    /// This address reached the failed-login limit and is banned for a while.
    Banned,
    /// TLS toward the backend failed (certificate not trusted, handshake error).
    ServerTlsFailed,
    /// The worker stops (SIGTERM): the session closes with 421 as soon as nothing is in
    /// flight (at once when idle; after the command or transfer in progress otherwise).
    WorkerStopping,
    /// The worker's drain deadline passed: 421 now, a transfer in flight is cut (and
    /// recorded with result `shutdown`).
    DrainDeadline,
    /// An operator killed the session (`ftpgate kill`): 421 now, a transfer in flight is
    /// cut and recorded with result `killed`.
    Kill,
}

impl Event {
    /// The event's name, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            Event::ClientCommand(_) => "ClientCommand",
            Event::ClientMalformed { .. } => "ClientMalformed",
            Event::ClientLineTooLong => "ClientLineTooLong",
            Event::ClientClosed => "ClientClosed",
            Event::ServerConnected => "ServerConnected",
            Event::ServerUnavailable => "ServerUnavailable",
            Event::ServerReply(_) => "ServerReply",
            Event::ServerClosed => "ServerClosed",
            Event::ServerProtocolError => "ServerProtocolError",
            Event::PassiveOpened(_) => "PassiveOpened",
            Event::PassiveFailed => "PassiveFailed",
            Event::ServerDataConnected => "ServerDataConnected",
            Event::ServerDataFailed => "ServerDataFailed",
            Event::ClientDataConnected => "ClientDataConnected",
            Event::ClientDataTlsPending => "ClientDataTlsPending",
            Event::ClientDataFailed => "ClientDataFailed",
            Event::RelayDone(_) => "RelayDone",
            Event::RelayOverLimit(_) => "RelayOverLimit",
            Event::RelayFailed { .. } => "RelayFailed",
            Event::RelayCopyFailed(_) => "RelayCopyFailed",
            Event::RelayStopped(_) => "RelayStopped",
            Event::Timer(_) => "Timer",
            Event::LoginRefused(_) => "LoginRefused",
            Event::Banned => "Banned",
            Event::ServerTlsFailed => "ServerTlsFailed",
            Event::WorkerStopping => "WorkerStopping",
            Event::DrainDeadline => "DrainDeadline",
            Event::Kill => "Kill",
        }
    }
}

/// What crossed a transfer's data connections, measured by the shell and carried by the event
/// that ends the relay, so that the transfer's audit record is made once and whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Bytes written to the sink.
    pub bytes: u64,
    /// From the backend data connection's request to the end of the relay.
    pub duration_ms: u64,
    /// SHA-256 (hex) of the bytes written to the sink.
    pub sha256: Option<String>,
    /// "none" when the user's `audit_digest` is "none" (and `sha256` is absent).
    pub digest: Option<crate::audit::DigestOff>,
    /// How the data's source ended when it was TLS and reached its end: "clean"
    /// (close_notify) or "truncated" (a bare TCP close, which anyone on the path can forge).
    pub tls_end: Option<&'static str>,
    /// Filecopy mode: the copy's path, or why it failed.
    pub filecopy: Option<String>,
    pub filecopy_error: Option<String>,
    /// A relay that failed did so on TLS itself (a record that does not decrypt, an alert),
    /// not on its connection.
    pub tls_failed: bool,
    /// Both data connections' address pairs, when the relay ran.
    pub addresses: Option<Box<crate::audit::DataAddresses>>,
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
    /// An event came that the machine's phase does not expect (a bug, or a peer doing
    /// something out of order): it changed nothing, and the shell logs it.
    Unexpected {
        event: &'static str,
        phase: &'static str,
    },
    /// Stop the relay now (ABOR, a failure reply from the backend) and report what crossed
    /// with [`Event::RelayStopped`]; the transfer's record waits for it.
    StopRelay,
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
    /// The backend server failed before the login (its greeting, or `AUTH TLS` toward it):
    /// take it out of rotation for a while (`services::backends`).
    ServerFailed(SocketAddr),
    /// The login succeeded: count the user's session (and the server is healthy).
    LoginSucceeded,
    /// The login failed: count it against the client's address.
    LoginFailed,
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
