//! The data-channel state machine of one FTP session. Pure: no sockets, no clock (instants
//! come inside the inputs), no log.
//!
//! The control machine says what the client asked for (open a passive port, connect to a
//! PORT address, connect to the backend's data port, relay, stop); the shell says what the
//! sockets did (a connection accepted or connected, a TLS handshake finished, the relay
//! ended with what it measured). This machine holds where the data channel is and decides
//! what that means: whether an accepted connection is the client's or a thief's, whether a
//! finished handshake may carry file data, which event the control machine gets, and what
//! the transfer's record says of the bytes that crossed ([`RelayReport`]), which travels in
//! the control event that ends the transfer and nowhere else.
//!
//! States carry their data ([`State`]):
//! - `Idle`: nothing open;
//! - `Opening`: the shell opens a passive listener;
//! - `Setup`: the next transfer's connections on their way, each leg where it got to
//!   (listening, connecting, handshaking, ready; the backend's connecting or ready, with the
//!   instant the transfer began);
//! - `Relaying`: bytes move;
//! - `Settling`: every byte moved and the connections are closed; the filecopy of the
//!   transfer is still on its way to the disk, and the transfer ends when it is there.
//!
//! The shell performs the [`Output`]s in order and feeds back the [`Input`]s they cause.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::audit::AuditRecord;
use crate::limits::{
    DEFAULT_CONNECT_TIMEOUT, FILECOPY_RESULT_TIMEOUT, MAX_THEFT_EVENTS_PER_SESSION,
};
use crate::policy::{Cidr, TlsSessionReuse};
use crate::session::admission::{self, DataTlsFacts, DataTlsVerdict};
use crate::session::control::{Direction, Event, RelayReport, Side};

#[cfg(test)]
mod tests;

/// The data machine's own timers (the shell keeps one deadline per kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataTimer {
    /// The backend's data port must accept in time.
    ServerConnect,
    /// A finished transfer's copy must reach the disk in time.
    CopyResult,
}

/// How a relay ended, as the shell saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// Every byte moved and both connections closed cleanly.
    Done,
    /// A data connection failed.
    Failed(Side),
    /// The source had more than the user's file size limit.
    OverLimit,
    /// The filecopy writer reported a failure and the policy says a failed copy fails the
    /// transfer.
    CopyFailed,
}

/// Where the transfer's filecopy stood when the relay was closed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CopyState {
    /// No copy (not in filecopy mode, or a listing).
    #[default]
    None,
    /// On the disk (the writer reported it).
    Stored(String),
    /// Failed.
    Failed {
        reason: String,
        abort_on_failure: bool,
    },
    /// Handed to the writer, its report still to come. For a relay that did not end well
    /// the writer keeps the part that crossed and nobody waits for it.
    Writing {
        id: u64,
        path: String,
        abort_on_failure: bool,
    },
}

/// What the relay measured, handed over by the shell when it closed the relay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Measure {
    /// Bytes written to the sink.
    pub bytes: u64,
    pub sha256: Option<String>,
    /// "none" when the digest is off.
    pub digest: Option<crate::audit::DigestOff>,
    /// How a TLS source ended ("clean" or "truncated"), when it ended.
    pub tls_end: Option<&'static str>,
    /// The relay failed on TLS itself (see `RelayReport::tls_failed`).
    pub tls_failed: bool,
    pub copy: CopyState,
    /// Both data connections' address pairs, taken when the relay began.
    pub addresses: Option<Box<crate::audit::DataAddresses>>,
}

/// The client's data connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientLeg {
    /// Not asked for yet (PORT/EPRT: the connect comes with the transfer).
    Absent,
    /// ftpgate's passive listener waits for the client.
    Listening,
    /// Connecting to the client's PORT/EPRT address.
    Connecting,
    /// Up at the TCP level, protected, its TLS handshake not finished.
    Handshaking,
    /// May carry file data: plain, or its handshake finished and accepted.
    Ready,
}

/// The backend's data connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerLeg {
    Absent,
    /// Connecting to the backend's data port; the transfer began at `since`.
    Connecting {
        since: Instant,
    },
    Ready {
        since: Instant,
    },
}

impl ServerLeg {
    fn since(self) -> Option<Instant> {
        match self {
            ServerLeg::Absent => None,
            ServerLeg::Connecting { since } | ServerLeg::Ready { since } => Some(since),
        }
    }
}

/// Where the data channel is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Opening,
    Setup {
        client: ClientLeg,
        server: ServerLeg,
    },
    Relaying {
        since: Instant,
    },
    Settling {
        report: RelayReport,
        copy: u64,
        abort_on_failure: bool,
    },
}

/// Inputs: what the control machine asked for, and what the sockets did.
#[derive(Debug)]
pub enum Input {
    /// PASV/EPSV: a new passive listener (whatever was open closes first).
    OpenPassive,
    /// The shell opened the listener; the client is told this (advertised) address.
    ListenerOpened(SocketAddr),
    ListenerFailed,
    /// Active mode: connect to this (validated) address for the transfer that starts.
    ConnectClient(SocketAddr),
    /// The client's data connection is up at the TCP level (accepted after
    /// [`DataFsm::on_accepted`] said so, or the active connect finished), wrapped in TLS
    /// when `protected`.
    ClientUp {
        protected: bool,
    },
    /// The client's data connection failed (the active connect, its TLS setup or
    /// handshake).
    ClientFailed,
    /// The client's data-connection handshake finished at `now`: whether it resumed the
    /// control session, the user's `tls_session_reuse`, and the connection's peer address.
    ClientHandshakeDone {
        resumed: bool,
        reuse: TlsSessionReuse,
        peer: Option<IpAddr>,
        now: Instant,
    },
    /// The transfer begins at `now`: connect to the backend's data port.
    ConnectServer {
        port: u16,
        now: Instant,
    },
    ServerUp,
    ServerFailed,
    StartRelay {
        direction: Direction,
        max_bytes: Option<u64>,
    },
    /// The shell closed the relay that ended so, with what it measured.
    RelayEnded {
        end: RelayEnd,
        measure: Measure,
        now: Instant,
    },
    /// The writer's report on the copy the machine is settling.
    CopySettled(Result<String, String>),
    /// The control machine's AbortData (nothing reported) or StopRelay (what crossed is
    /// reported) was performed: everything is closed; `measure` is the relay's, if one ran.
    Closed {
        stop: bool,
        measure: Option<Measure>,
        now: Instant,
    },
    Timer(DataTimer),
}

/// Outputs, performed in order by the shell.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Close everything that is open (listener, connections, relay); feed nothing back.
    CloseAll,
    OpenListener,
    ConnectClient(SocketAddr),
    DropClient,
    ConnectServer(u16),
    DropServer,
    StartRelay {
        direction: Direction,
        max_bytes: Option<u64>,
    },
    /// The relay must end as failed on `side`: close it and report
    /// [`RelayEnd::Failed`] with what it measured.
    FailRelay(Side),
    SetTimer(DataTimer, Duration),
    CancelTimer(DataTimer),
    Audit(AuditRecord),
    /// Feed this event to the control machine.
    Control(Event),
}

/// What to do with a connection accepted on the passive listener.
#[derive(Debug, PartialEq)]
pub enum Acceptance {
    /// The client's: the listener closes (one connection per passive port) and the shell
    /// sets the connection up, then reports [`Input::ClientUp`] or [`Input::ClientFailed`].
    Take,
    /// Not the client's address: closed at once; recorded while the per-session bound
    /// allows ([`MAX_THEFT_EVENTS_PER_SESSION`]), counted always.
    Refuse(Option<Box<AuditRecord>>),
    /// From a load balancer (`passive.proxy_protocol`): the shell reads the connection's
    /// PROXY header and reports it with [`DataFsm::on_proxied`], which decides.
    ReadHeader,
}

/// The data-channel machine.
#[derive(Debug)]
pub struct DataFsm {
    state: State,
    /// The client's control-connection address: the only one its data connections may
    /// come from.
    client_ip: IpAddr,
    /// Connections from other addresses to this session's passive ports (refused).
    theft_attempts: u32,
    /// The balancers a passive data connection may come through, with a PROXY header
    /// naming the client (`passive.proxy_from`; empty: data connections come directly).
    balancers: Vec<Cidr>,
}

/// The address a 227/229 reply names for a passive port of ftpgate's listening on
/// `local`: `passive.advertise` (an IPv4 address, for ftpgate behind NAT) when the client
/// came over IPv4, else ftpgate's own address.
pub fn advertised_ip(local: IpAddr, advertise: Option<IpAddr>) -> IpAddr {
    let on_ipv4 = match local {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    };
    match advertise {
        Some(advertise) if on_ipv4 => advertise,
        _ => local,
    }
}

impl DataFsm {
    pub fn new(client_ip: IpAddr) -> DataFsm {
        DataFsm {
            state: State::Idle,
            client_ip,
            theft_attempts: 0,
            balancers: Vec::new(),
        }
    }

    /// Passive data connections from these networks carry a PROXY header
    /// (`passive.proxy_protocol`).
    pub fn with_balancers(mut self, balancers: Vec<Cidr>) -> DataFsm {
        self.balancers = balancers;
        self
    }

    #[cfg(test)]
    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn theft_attempts(&self) -> u32 {
        self.theft_attempts
    }

    /// Whether a relay runs (its sockets are the shell's relay).
    pub fn relaying(&self) -> bool {
        matches!(self.state, State::Relaying { .. })
    }

    /// The filecopy being settled, if any.
    pub fn settling_copy(&self) -> Option<u64> {
        match self.state {
            State::Settling { copy, .. } => Some(copy),
            _ => None,
        }
    }

    /// SECURITY: port theft. Only the client's own address may connect to a passive port,
    /// directly or, with `passive.proxy_protocol`, through a balancer whose PROXY header
    /// names that address ([`DataFsm::on_proxied`]).
    pub fn on_accepted(&mut self, peer: SocketAddr) -> Acceptance {
        // A balancer's connection is judged by its header, never by the balancer's own
        // address (which may be anyone's way in).
        if self.balancers.iter().any(|c| c.contains(peer.ip())) {
            return Acceptance::ReadHeader;
        }
        if admission::data_source_allowed(peer.ip(), self.client_ip) {
            return Acceptance::Take;
        }
        self.refuse("port_theft", format!("data connection from {peer}"))
    }

    /// The PROXY header of a passive data connection from balancer `via`: the client
    /// address it named, or why there is none (malformed, LOCAL, too late).
    pub fn on_proxied(
        &mut self,
        via: SocketAddr,
        header: Result<SocketAddr, String>,
    ) -> Acceptance {
        match header {
            Ok(source) if admission::data_source_allowed(source.ip(), self.client_ip) => {
                Acceptance::Take
            }
            Ok(source) => self.refuse(
                "port_theft",
                format!("data connection from {source} via {via}"),
            ),
            Err(why) => self.refuse(
                "proxy_protocol",
                format!("data connection via {via}: {why}"),
            ),
        }
    }

    /// A refused data connection: recorded one by one up to a bound, then only counted (in
    /// session_end): an intruder cannot fill the audit trail.
    fn refuse(&mut self, kind: &'static str, detail: String) -> Acceptance {
        self.theft_attempts = self.theft_attempts.saturating_add(1);
        let record = (self.theft_attempts <= MAX_THEFT_EVENTS_PER_SESSION)
            .then(|| Box::new(AuditRecord::PolicyViolation { kind, detail }));
        Acceptance::Refuse(record)
    }

    pub fn on(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::OpenPassive => {
                if self.state != State::Idle {
                    self.close_all(&mut out);
                }
                self.state = State::Opening;
                out.push(Output::OpenListener);
            }
            Input::ListenerOpened(addr) => {
                if self.state == State::Opening {
                    self.state = State::Setup {
                        client: ClientLeg::Listening,
                        server: ServerLeg::Absent,
                    };
                    out.push(Output::Control(Event::PassiveOpened(addr)));
                }
            }
            Input::ListenerFailed => {
                if self.state == State::Opening {
                    self.state = State::Idle;
                    out.push(Output::Control(Event::PassiveFailed));
                }
            }
            Input::ConnectClient(addr) => {
                let server = match self.state {
                    State::Setup { server, .. } => server,
                    _ => ServerLeg::Absent,
                };
                self.state = State::Setup {
                    client: ClientLeg::Connecting,
                    server,
                };
                out.push(Output::ConnectClient(addr));
            }
            Input::ClientUp { protected } => self.on_client_up(protected, &mut out),
            Input::ClientFailed => self.on_client_failed(&mut out),
            Input::ClientHandshakeDone {
                resumed,
                reuse,
                peer,
                now,
            } => {
                // The bridge's window opens when the transfer began (its backend data
                // connection was asked for).
                let since_transfer = match self.state {
                    State::Setup { server, .. } => server.since(),
                    State::Relaying { since } => Some(since),
                    _ => None,
                }
                .map(|since| now.saturating_duration_since(since));
                let facts = DataTlsFacts {
                    resumed: Some(resumed),
                    reuse,
                    peer,
                    control_peer: self.client_ip,
                    since_transfer,
                };
                self.on_handshake_done(admission::data_tls_acceptable(&facts), &mut out)
            }
            Input::ConnectServer { port, now } => {
                let client = match self.state {
                    State::Setup { client, .. } => client,
                    _ => ClientLeg::Absent,
                };
                self.state = State::Setup {
                    client,
                    server: ServerLeg::Connecting { since: now },
                };
                // SECURITY: the backend's data address is its control address with this
                // port (the shell never uses the address inside 227/229); port 0 is no port.
                if port == 0 {
                    self.on_server_failed(&mut out);
                } else {
                    out.push(Output::ConnectServer(port));
                    out.push(Output::SetTimer(
                        DataTimer::ServerConnect,
                        Duration::from_secs(DEFAULT_CONNECT_TIMEOUT),
                    ));
                }
            }
            Input::ServerUp => {
                if let State::Setup {
                    server: server @ ServerLeg::Connecting { .. },
                    ..
                } = &mut self.state
                {
                    if let Some(since) = server.since() {
                        *server = ServerLeg::Ready { since };
                    }
                    out.push(Output::CancelTimer(DataTimer::ServerConnect));
                    out.push(Output::Control(Event::ServerDataConnected));
                }
            }
            Input::ServerFailed => self.on_server_failed(&mut out),
            Input::StartRelay {
                direction,
                max_bytes,
            } => match self.state {
                State::Setup {
                    client: ClientLeg::Ready,
                    server: ServerLeg::Ready { since },
                } => {
                    self.state = State::Relaying { since };
                    out.push(Output::StartRelay {
                        direction,
                        max_bytes,
                    });
                }
                _ => {
                    // Both connections must be up before the backend sees the command;
                    // anything else is a bug: fail the transfer rather than relay half.
                    self.close_all(&mut out);
                    out.push(Output::Control(Event::RelayFailed {
                        report: RelayReport::default(),
                        side: Side::Server,
                    }));
                }
            },
            Input::RelayEnded { end, measure, now } => {
                self.on_relay_ended(end, measure, now, &mut out)
            }
            Input::CopySettled(result) => self.on_copy_settled(result, &mut out),
            Input::Closed { stop, measure, now } => {
                let report = match std::mem::replace(&mut self.state, State::Idle) {
                    State::Relaying { since } => measure.map(|m| report_of(m, since, now)),
                    State::Settling { report, .. } => {
                        out.push(Output::CancelTimer(DataTimer::CopyResult));
                        Some(report)
                    }
                    State::Setup { server, .. } => {
                        if matches!(server, ServerLeg::Connecting { .. }) {
                            out.push(Output::CancelTimer(DataTimer::ServerConnect));
                        }
                        None
                    }
                    State::Idle | State::Opening => None,
                };
                if stop {
                    out.push(Output::Control(Event::RelayStopped(
                        report.unwrap_or_default(),
                    )));
                }
            }
            Input::Timer(DataTimer::ServerConnect) => {
                if matches!(
                    self.state,
                    State::Setup {
                        server: ServerLeg::Connecting { .. },
                        ..
                    }
                ) {
                    self.on_server_failed(&mut out);
                }
            }
            Input::Timer(DataTimer::CopyResult) => {
                if let State::Settling { report, .. } = &self.state {
                    let reason = format!(
                        "{} did not reach the disk within {FILECOPY_RESULT_TIMEOUT} s",
                        report.filecopy.as_deref().unwrap_or("the copy")
                    );
                    self.on_copy_settled(Err(reason), &mut out);
                }
            }
        }
        out
    }

    fn close_all(&mut self, out: &mut Vec<Output>) {
        match self.state {
            State::Setup {
                server: ServerLeg::Connecting { .. },
                ..
            } => out.push(Output::CancelTimer(DataTimer::ServerConnect)),
            State::Settling { .. } => out.push(Output::CancelTimer(DataTimer::CopyResult)),
            _ => {}
        }
        self.state = State::Idle;
        out.push(Output::CloseAll);
    }

    fn on_client_up(&mut self, protected: bool, out: &mut Vec<Output>) {
        let State::Setup { client, .. } = &mut self.state else {
            return;
        };
        if !matches!(client, ClientLeg::Listening | ClientLeg::Connecting) {
            return;
        }
        if protected {
            *client = ClientLeg::Handshaking;
            out.push(Output::Control(Event::ClientDataTlsPending));
        } else {
            *client = ClientLeg::Ready;
            out.push(Output::Control(Event::ClientDataConnected));
        }
    }

    fn on_client_failed(&mut self, out: &mut Vec<Output>) {
        match &mut self.state {
            State::Setup { client, .. } if *client != ClientLeg::Absent => {
                // A passive port takes one connection: refused or broken, a transfer needs
                // a new PASV or PORT.
                *client = ClientLeg::Absent;
                out.push(Output::DropClient);
                out.push(Output::Control(Event::ClientDataFailed));
            }
            State::Relaying { .. } => out.push(Output::FailRelay(Side::Client)),
            _ => {}
        }
    }

    /// SECURITY: a protected data connection may carry file data only once its handshake
    /// resumed the control connection's TLS session where the user's policy requires it (a
    /// `"bridge"` user's fresh handshake only from the client's address, in the window after
    /// the transfer began, recorded as a policy exception), so a thief who raced the client
    /// to the port gets nothing.
    fn on_handshake_done(&mut self, verdict: DataTlsVerdict, out: &mut Vec<Output>) {
        let acceptable = verdict != DataTlsVerdict::Refuse;
        if verdict == DataTlsVerdict::Bridged
            && matches!(
                self.state,
                State::Setup {
                    client: ClientLeg::Handshaking,
                    ..
                } | State::Relaying { .. }
            )
        {
            out.push(Output::Audit(AuditRecord::PolicyException {
                kind: "tls_session_reuse_bridge",
                detail: "data connection TLS did not resume the control session; accepted \
                         from the control connection's address within the bridge window"
                    .into(),
            }));
        }
        let refusal = AuditRecord::PolicyViolation {
            kind: "tls_session_reuse",
            detail: "data connection TLS did not resume the control session".into(),
        };
        match &mut self.state {
            State::Setup { client, .. } if *client == ClientLeg::Handshaking => {
                if acceptable {
                    *client = ClientLeg::Ready;
                    out.push(Output::Control(Event::ClientDataConnected));
                } else {
                    out.push(Output::Audit(refusal));
                    *client = ClientLeg::Absent;
                    out.push(Output::DropClient);
                    out.push(Output::Control(Event::ClientDataFailed));
                }
            }
            State::Relaying { .. } if !acceptable => {
                out.push(Output::Audit(refusal));
                out.push(Output::FailRelay(Side::Client));
            }
            _ => {}
        }
    }

    fn on_server_failed(&mut self, out: &mut Vec<Output>) {
        match &mut self.state {
            State::Setup { server, .. } if *server != ServerLeg::Absent => {
                if matches!(server, ServerLeg::Connecting { .. }) {
                    out.push(Output::CancelTimer(DataTimer::ServerConnect));
                }
                *server = ServerLeg::Absent;
                out.push(Output::DropServer);
                out.push(Output::Control(Event::ServerDataFailed));
            }
            State::Relaying { .. } => out.push(Output::FailRelay(Side::Server)),
            _ => {}
        }
    }

    fn on_relay_ended(
        &mut self,
        end: RelayEnd,
        measure: Measure,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let State::Relaying { since } = self.state else {
            return;
        };
        self.state = State::Idle;
        let copy = measure.copy.clone();
        let report = report_of(measure, since, now);
        let event = match end {
            RelayEnd::Failed(side) => Event::RelayFailed { report, side },
            RelayEnd::OverLimit => Event::RelayOverLimit(report),
            RelayEnd::CopyFailed => Event::RelayCopyFailed(report),
            RelayEnd::Done => match copy {
                // The final reply waits for the copy to reach the disk.
                CopyState::Writing {
                    id,
                    abort_on_failure,
                    ..
                } => {
                    self.state = State::Settling {
                        report,
                        copy: id,
                        abort_on_failure,
                    };
                    out.push(Output::SetTimer(
                        DataTimer::CopyResult,
                        Duration::from_secs(FILECOPY_RESULT_TIMEOUT),
                    ));
                    return;
                }
                CopyState::Failed {
                    abort_on_failure: true,
                    ..
                } => Event::RelayCopyFailed(report),
                _ => Event::RelayDone(report),
            },
        };
        out.push(Output::Control(event));
    }

    fn on_copy_settled(&mut self, result: Result<String, String>, out: &mut Vec<Output>) {
        let State::Settling {
            mut report,
            abort_on_failure,
            ..
        } = std::mem::replace(&mut self.state, State::Idle)
        else {
            return;
        };
        out.push(Output::CancelTimer(DataTimer::CopyResult));
        let event = match result {
            Ok(path) => {
                report.filecopy = Some(path);
                Event::RelayDone(report)
            }
            Err(reason) => {
                report.filecopy = None;
                report.filecopy_error = Some(reason);
                if abort_on_failure {
                    Event::RelayCopyFailed(report)
                } else {
                    Event::RelayDone(report)
                }
            }
        };
        out.push(Output::Control(event));
    }
}

/// The transfer's record of what crossed: the relay's measure, its duration from the
/// transfer's beginning, and its copy (a copy still being written keeps its path: the
/// writer keeps the part that crossed, or, settling, the report waits for it).
fn report_of(measure: Measure, since: Instant, now: Instant) -> RelayReport {
    let (filecopy, filecopy_error) = match measure.copy {
        CopyState::None => (None, None),
        CopyState::Stored(path) => (Some(path), None),
        CopyState::Failed { reason, .. } => (None, Some(reason)),
        // Done: settled later; otherwise the writer keeps the part that crossed.
        CopyState::Writing { path, .. } => (Some(path), None),
    };
    RelayReport {
        bytes: measure.bytes,
        duration_ms: u64::try_from(now.saturating_duration_since(since).as_millis())
            .unwrap_or(u64::MAX),
        sha256: measure.sha256,
        digest: measure.digest,
        tls_end: measure.tls_end,
        tls_failed: measure.tls_failed,
        addresses: measure.addresses,
        filecopy,
        filecopy_error,
    }
}
