//! The session shell: the sockets, buffers, readiness and timers of one FTP session.
//!
//! This is the only module that holds sockets and protocol state together. It turns socket
//! readiness into [`control::Event`]s for the pure control machine and into inputs for the
//! pure data-channel machine (`data/`), and performs the actions they return. It decides no
//! policy: the protocol decisions are the machines', the admission decisions are pure
//! functions in `admission.rs`.
//!
//! The session is one type, [`Session`]; this file holds its state, its public API (what the
//! reactor calls), the drive loop, timers and the performing of the control machine's
//! actions. Its I/O is split by connection: `client_io.rs` (the client's control
//! connection), `backend_io.rs` (the backend's), `data_io.rs` (data connections, TLS on them,
//! the relay's start and close; it performs the data machine's outputs), `passive_io.rs`
//! (the passive listener or shared port, accepting, PROXY headers from a balancer),
//! `copy_io.rs` (filecopy). Below them: `transport.rs` (one socket type for plain and TLS),
//! `relay.rs` and `splice_relay.rs` (moving the bytes of a transfer), `admission.rs`,
//! `control/`, `data/`.
//!
//! Readiness follows the edge-triggered contract of mio: every socket is registered once for
//! READABLE | WRITABLE, the last reported readiness is remembered per socket, and a socket is
//! read or written until `WouldBlock` (or a short read before the peer's end was announced)
//! before its flag is cleared. [`Session::drive`] loops
//! over all sockets until no step makes progress, so an edge is never lost.

mod admission;
mod backend_io;
mod client_io;
pub mod control;
mod copy_io;
mod data;
mod data_io;
mod info;
mod passive_io;
mod relay;
mod splice_relay;
mod tls_events;
mod transport;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use crate::audit::{AuditContext, AuditRecord};
use crate::filecopy::{self, Chunk, End, FileCopier, Owner, Target};
use crate::ftp::command::{Verb, parse_command};
use crate::ftp::line::{Framed, LineFramer, TelnetFilter};
use crate::ftp::reply::ReplyParser;
use crate::limits::{
    CLOSE_LINGER_SECONDS, COMMAND_BURST, DEFAULT_BACKEND_REPLY_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    FILECOPY_RETRY_MS, MAX_CLIENT_INPUT, MAX_CLIENT_OUTPUT, MAX_COMMAND_LINE,
    MAX_COMMANDS_PER_SECOND, MAX_COMMANDS_PER_TURN, MAX_DRIVE_ITERATIONS,
    MAX_PASSIVE_ACCEPTS_PER_TURN, MAX_RELAY_BYTES_PER_TURN, MAX_REPLY_LINE,
};
use crate::policy::Policy;
use crate::reactor::timer::TimerEntry;
use crate::services::rate::TokenBucket;
use crate::services::token::{SessionToken, SocketRole};
use crate::services::{ListenerConfig, SessionKey, WorkerCtx, sockets};
use crate::tls;
use admission::{ConnectionFacts, LoginFacts, Refusal};
use control::{Action, CloseReason, ControlConfig, ControlFsm, Direction, Event, Side, TimerKind};
use relay::{Pump, Relay, RelayCopy, pump};
use transport::{Conn, Ending, ReadStep, flush, read_some};

/// Shell-level timers, after the control machine's own kinds.
const TIMER_SERVER_CONNECT: u8 = TimerKind::COUNT as u8;
const TIMER_SERVER_DATA_CONNECT: u8 = TimerKind::COUNT as u8 + 1;
const TIMER_CLOSE_LINGER: u8 = TimerKind::COUNT as u8 + 2;
/// The relay waits for its rate bucket to refill.
const TIMER_RATE: u8 = TimerKind::COUNT as u8 + 3;
/// The relay waits for room in the filecopy writer's queue.
const TIMER_COPY: u8 = TimerKind::COUNT as u8 + 4;
/// A finished transfer waits for its copy to reach the disk.
const TIMER_COPY_RESULT: u8 = TimerKind::COUNT as u8 + 5;
/// The client's commands wait for the session's command rate bucket.
const TIMER_COMMANDS: u8 = TimerKind::COUNT as u8 + 6;
pub const TIMER_SLOTS: usize = TimerKind::COUNT + 7;

const CLOSE_LINGER: Duration = Duration::from_secs(CLOSE_LINGER_SECONDS);

/// Wall-clock seconds, for limits shared between processes (bans) and time windows.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the reactor should do with a session after driving it.
#[derive(Debug, PartialEq, Eq)]
pub enum DriveOutcome {
    /// Waiting for readiness or timers.
    Idle,
    /// Stopped for fairness with work left: drive again next turn.
    Again,
    /// Finished: remove it.
    Closed,
}

/// The client's control connection.
struct ClientCtrl {
    conn: Conn,
    input: Vec<u8>,
    output: Vec<u8>,
    telnet: TelnetFilter,
    framer: LineFramer,
    eof: bool,
}

/// The backend's control connection.
struct ServerCtrl {
    conn: Conn,
    addr: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    telnet: TelnetFilter,
    framer: LineFramer,
    parser: ReplyParser,
    /// Servers of the pool still to try if this connect fails.
    remaining: Vec<SocketAddr>,
}

pub struct Session {
    id: String,
    slot: usize,
    generation: u64,
    started: Instant,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
    policy: Rc<Policy>,
    fsm: ControlFsm,
    client: ClientCtrl,
    server: Option<ServerCtrl>,
    /// The data channel's state machine, and the sockets it stands for.
    data: data::DataFsm,
    sockets: data_io::DataSockets,
    deadlines: [Option<Instant>; TIMER_SLOTS],
    closing: Option<CloseReason>,
    /// This session's TLS configurations, control and data (their own session cache: data
    /// connections resume this control connection's session and no other).
    tls_config: Option<tls::SessionTls>,
    /// AUTH TLS was answered: TLS starts once the 234 has left.
    tls_upgrade: bool,
    /// TLS toward the backend: this session's client configuration (its own session store,
    /// so data connections resume the control session) and the backend's settings.
    server_tls: Option<(
        Arc<rustls::ClientConfig>,
        tls::TlsClient,
        crate::policy::TlsMode,
    )>,
    /// The local address backend connections leave from (`source_address`).
    server_source: Option<std::net::IpAddr>,
    /// This session is counted in the shared session counters (per address and total).
    counted: bool,
    /// The logged-in user this session is counted for.
    counted_user: Option<String>,
    /// Filecopy mode: copies started in this session (the `<n>` of their names).
    copies: u64,
    /// Control bytes from and to the client.
    bytes_in: u64,
    bytes_out: u64,
    /// File data from and to the client, every transfer's.
    data_in: u64,
    data_out: u64,
    /// The session's transfers by result, for `session_end`.
    transfers: std::cell::RefCell<BTreeMap<&'static str, u64>>,
    /// Commands this session may have processed ([`MAX_COMMANDS_PER_SECOND`]).
    command_bucket: TokenBucket,
    events: VecDeque<OwnedEvent>,
    /// This session's transfer is counted in the shared table's transfers in flight.
    transfer_counted: std::cell::Cell<bool>,
    /// What the relay had read when the idle timer was last looked at (see `on_timer`).
    idle_mark: u64,
    /// When the command in progress arrived (`ftpgate_command_duration_seconds`, observed
    /// when its audit record is written).
    command_since: std::cell::Cell<Option<Instant>>,
}

/// Events the shell raises for itself while performing actions.
enum OwnedEvent {
    Fsm(Event),
}

fn token(slot: usize, generation: u64, role: SocketRole) -> Token {
    SessionToken {
        slot,
        generation,
        role,
    }
    .encode()
}

impl Session {
    /// A session for a freshly accepted client. Registers the client socket and sends the
    /// greeting.
    /// `client_addr` is the client's real address: the peer's, or for a connection through
    /// a load balancer (`via`) the one its PROXY header named.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        mut stream: TcpStream,
        client_addr: SocketAddr,
        via: Option<SocketAddr>,
        key: SessionKey,
        policy: Rc<Policy>,
        listener: ListenerConfig,
        ctx: &mut WorkerCtx<'_>,
    ) -> io::Result<Session> {
        use crate::policy::{TlsMode, TlsRequire};
        let SessionKey { slot, generation } = key;
        let local_addr = stream.local_addr()?;
        let tls_config = match (listener.tls, ctx.tls) {
            (TlsMode::None, _) | (_, None) => None,
            (_, Some(server)) => Some(server.for_session().map_err(io::Error::other)?),
        };
        let implicit = listener.tls == TlsMode::Implicit && tls_config.is_some();
        let global_require = policy.tls.as_ref().map_or(TlsRequire::None, |t| t.require);
        sockets::tune_control_socket(&stream);
        ctx.registry.register(
            &mut stream,
            token(slot, generation, SocketRole::ClientCtrl),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let timeouts = &policy.defaults.timeouts;
        let config = ControlConfig {
            client_ip: client_addr.ip(),
            login_timeout: timeouts.login,
            session_timeout: timeouts.session,
            failed_login_delay_ms: u64::from(policy.defaults.limits.failed_login_delay_ms),
            data_connect_timeout: timeouts.data_connect,
            backend_reply_timeout: DEFAULT_BACKEND_REPLY_TIMEOUT,
            tls_available: tls_config.is_some(),
            tls_implicit: implicit,
            tls_require: listener.require.max(global_require),
            features: Rc::clone(ctx.features),
            epsv_reachable: !listener.proxy_protocol || !policy.passive.proxy_from.is_empty(),
        };
        // Implicit FTPS: TLS from the first byte; plaintext is a failed handshake and a clean
        // close. Set up before the session is counted, so that a failure here leaks no count.
        let client_tls = match (implicit, tls_config.as_ref()) {
            (true, Some(config)) => Some(tls::accept(&config.control)?),
            _ => None,
        };
        let (fsm, actions, counted) = match admit(&policy, client_addr, ctx) {
            Ok(()) => {
                let (fsm, actions) = ControlFsm::new(config);
                (fsm, actions, true)
            }
            Err(refusal) => {
                log::info!("session from {client_addr} refused: {}", refusal.detail());
                let (fsm, actions) = ControlFsm::refused(config, &refusal);
                (fsm, actions, false)
            }
        };
        let balancers = policy.passive.proxy_from.clone();
        let mut session = Session {
            id,
            slot,
            generation,
            started: ctx.now,
            client_addr,
            local_addr,
            policy,
            fsm,
            client: ClientCtrl {
                conn: {
                    let mut conn = Conn::new(stream, false);
                    conn.tls = client_tls;
                    conn
                },
                input: Vec::new(),
                output: Vec::new(),
                telnet: TelnetFilter::new(),
                framer: LineFramer::new(MAX_COMMAND_LINE),
                eof: false,
            },
            server: None,
            data: data::DataFsm::new(client_addr.ip()).with_balancers(balancers),
            sockets: data_io::DataSockets::default(),
            deadlines: [None; TIMER_SLOTS],
            closing: None,
            tls_config,
            tls_upgrade: false,
            server_tls: None,
            server_source: None,
            counted,
            counted_user: None,
            copies: 0,
            bytes_in: 0,
            bytes_out: 0,
            data_in: 0,
            data_out: 0,
            transfers: std::cell::RefCell::new(BTreeMap::new()),
            command_bucket: TokenBucket::with_burst(
                MAX_COMMANDS_PER_SECOND,
                COMMAND_BURST,
                ctx.now,
            ),
            events: VecDeque::new(),
            command_since: std::cell::Cell::new(None),
            idle_mark: 0,
            transfer_counted: std::cell::Cell::new(false),
        };
        session.audit(
            ctx,
            &AuditRecord::SessionStart {
                server: local_addr.to_string(),
                via: via.map(|v| v.to_string()),
            },
        );
        session.apply(actions, ctx);
        Ok(session)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes this session holds in its control-channel buffers (for the worker's stats).
    pub fn buffered(&self) -> usize {
        let server = self
            .server
            .as_ref()
            .map_or(0, |s| s.input.capacity() + s.output.capacity());
        self.client.input.capacity() + self.client.output.capacity() + server
    }

    /// Called by the reactor for every mio event on one of this session's sockets.
    pub fn on_ready(&mut self, role: SocketRole, event: &mio::event::Event) {
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        let writable = event.is_writable() || event.is_write_closed() || event.is_error();
        let conn = match role {
            SocketRole::ClientCtrl => Some(&mut self.client.conn),
            SocketRole::ServerCtrl => self.server.as_mut().map(|s| &mut s.conn),
            SocketRole::PassiveListener => None,
            SocketRole::ClientData => match self.sockets.relay.as_mut() {
                Some(r) => Some(&mut r.client),
                None => self.sockets.client.as_mut(),
            },
            SocketRole::ServerData => match self.sockets.relay.as_mut() {
                Some(r) => Some(&mut r.server),
                None => self.sockets.server.as_mut(),
            },
        };
        if let Some(conn) = conn {
            conn.readable |= readable;
            conn.writable |= writable;
            conn.peer_closed |= event.is_read_closed() || event.is_error();
        }
        // Listener readiness needs no flag: accept is attempted on every drive until it
        // returns WouldBlock.
    }

    /// Called by the reactor when a timer entry of this session comes due.
    pub fn on_timer(&mut self, entry: &TimerEntry, ctx: &mut WorkerCtx<'_>) {
        let index = entry.kind as usize;
        if self.deadlines.get(index).copied().flatten() != Some(entry.deadline) {
            return; // cancelled or moved: a stale entry
        }
        self.deadlines[index] = None;
        match entry.kind {
            TIMER_SERVER_CONNECT => {
                log::info!("{} backend connect timed out", self.id);
                self.server_connect_failed(ctx);
            }
            TIMER_SERVER_DATA_CONNECT => {
                self.data_input(data::Input::Timer(data::DataTimer::ServerConnect), ctx);
            }
            TIMER_CLOSE_LINGER => {
                self.client.output.clear();
            }
            // The drive that follows resumes the relay, or the commands.
            TIMER_RATE | TIMER_COPY | TIMER_COMMANDS => {}
            TIMER_COPY_RESULT => {
                self.data_input(data::Input::Timer(data::DataTimer::CopyResult), ctx);
            }
            // During a relay the idle time runs from the last byte that moved: a transfer
            // that moves keeps the session, one that stalls for the idle time is cut.
            kind if kind == TimerKind::Idle as u8 && self.relay_moved_since_idle_mark() => {
                if let Some(idle) = self.fsm.idle_timeout() {
                    self.set_deadline(kind, idle, ctx);
                }
            }
            kind => {
                if let Some(kind) = TimerKind::from_index(kind) {
                    self.push(Event::Timer(kind));
                }
            }
        }
        self.run_events(ctx);
    }

    /// Performs every I/O step that can make progress. Called after readiness events, after
    /// timers, and again for sessions that stopped for fairness.
    pub fn drive(&mut self, ctx: &mut WorkerCtx<'_>) -> DriveOutcome {
        let mut budget = MAX_RELAY_BYTES_PER_TURN;
        let mut commands = MAX_COMMANDS_PER_TURN;
        for _ in 0..MAX_DRIVE_ITERATIONS {
            let mut progress = false;
            progress |= self.read_client(ctx);
            progress |= self.process_client_lines(ctx, &mut commands);
            progress |= self.progress_server(ctx);
            progress |= self.accept_passive(ctx);
            progress |= self.progress_server_data(ctx);
            progress |= self.progress_client_data(ctx);
            progress |= self.progress_relay(ctx, &mut budget);
            progress |= self.flush_server(ctx);
            progress |= self.flush_client(ctx);
            progress |= self.run_events(ctx);
            self.report_tls(ctx);
            if self.closing.is_some() && self.client.output.is_empty() {
                return DriveOutcome::Closed;
            }
            if budget == 0 || commands == 0 {
                // Fairness: the other sessions get their turn; this one goes on next turn.
                return DriveOutcome::Again;
            }
            if !progress {
                return DriveOutcome::Idle;
            }
        }
        log::error!(
            "{} session made progress {} times in one turn; closing it (bug)",
            self.id,
            MAX_DRIVE_ITERATIONS
        );
        DriveOutcome::Closed
    }

    /// Deregisters every socket and records the end of the session. The session is dropped
    /// by the reactor afterwards.
    pub fn finish(&mut self, ctx: &mut WorkerCtx<'_>) {
        let reason = self
            .closing
            .map_or("worker_stopping", |r| r.as_str())
            .to_string();
        self.close_data_for_control(false, ctx);
        self.close_server(ctx);
        if self.counted {
            ctx.counters.close_session(self.client_addr.ip());
            self.counted = false;
        }
        if let Some(user) = self.counted_user.take() {
            ctx.counters.close_user(&user);
        }
        if self.transfer_counted.replace(false) {
            ctx.counters.transfer_ended();
        }
        let _ = ctx.registry.deregister(&mut self.client.conn.stream);
        let _ = self.client.conn.stream.shutdown(Shutdown::Both);
        ctx.timers.cancel_slot(self.slot);
        let record = AuditRecord::SessionEnd {
            reason,
            duration_ms: ctx.now.saturating_duration_since(self.started).as_millis() as u64,
            bytes_in: self.bytes_in + self.data_in,
            bytes_out: self.bytes_out + self.data_out,
            control_bytes_in: self.bytes_in,
            control_bytes_out: self.bytes_out,
            data_bytes_in: self.data_in,
            data_bytes_out: self.data_out,
            transfers: self.transfers.take(),
            repeated_commands: self.fsm.take_repeated_commands(),
            port_theft_attempts: u64::from(self.data.theft_attempts()),
        };
        self.audit(ctx, &record);
    }

    /// The worker stops: the session closes with 421 as soon as nothing is in flight.
    pub fn stop(&mut self, ctx: &mut WorkerCtx<'_>) {
        self.dispatch(Event::WorkerStopping, ctx);
    }

    /// The worker's drain deadline passed: 421 now; a transfer in flight is cut and
    /// recorded.
    pub fn drain_deadline(&mut self, ctx: &mut WorkerCtx<'_>) {
        self.dispatch(Event::DrainDeadline, ctx);
    }

    /// Closes the session at once (worker stopping).
    pub fn force_close(&mut self) {
        if self.closing.is_none() {
            self.closing = Some(CloseReason::WorkerStopping);
        }
        self.client.output.clear();
    }

    fn audit(&self, ctx: &mut WorkerCtx<'_>, record: &AuditRecord) {
        // On the stack: an IPv6 address with its zone and port is at most 56 characters.
        let client = crate::audit::StackText::<64>::format(format_args!("{}", self.client_addr));
        let client = client.as_str();
        let user = self.fsm.user().map(|u| u.name.as_str());
        let user_hex = self.fsm.user().and_then(|u| u.name_hex.as_deref());
        let actx = AuditContext {
            session: &self.id,
            client,
            user,
            user_hex,
        };
        ctx.audit.emit(&actx, record);
        let backend = self.fsm.user().and_then(|u| u.known.as_ref());
        ctx.metrics
            .observe(record, backend.map(|k| k.backend.as_str()));
        if let AuditRecord::Transfer { result, .. } = record {
            *self.transfers.borrow_mut().entry(result).or_default() += 1;
            if self.transfer_counted.replace(false) {
                ctx.counters.transfer_ended();
            }
        }
        if let (AuditRecord::Command { .. }, Some(since)) = (record, self.command_since.take()) {
            let took = ctx.now.saturating_duration_since(since);
            ctx.metrics.observe_command(took.as_secs_f64());
        }
    }

    fn push(&mut self, event: Event) {
        self.events.push_back(OwnedEvent::Fsm(event));
    }

    /// Feeds queued shell events to the machine and performs the resulting actions.
    fn run_events(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let mut progress = false;
        // Bounded: every event is caused by an action, and actions come from events.
        for _ in 0..1024 {
            let Some(OwnedEvent::Fsm(event)) = self.events.pop_front() else {
                break;
            };
            let actions = self.fsm.on_event(event, &self.policy);
            self.apply(actions, ctx);
            progress = true;
        }
        progress
    }

    fn dispatch(&mut self, event: Event, ctx: &mut WorkerCtx<'_>) {
        let actions = self.fsm.on_event(event, &self.policy);
        self.apply(actions, ctx);
        self.run_events(ctx);
    }

    fn set_deadline(&mut self, kind: u8, after: Duration, ctx: &mut WorkerCtx<'_>) {
        let base = if kind == TimerKind::Session as u8 || kind == TimerKind::Login as u8 {
            self.started
        } else {
            ctx.now
        };
        let deadline = base.checked_add(after);
        if let Some(slot) = self.deadlines.get_mut(kind as usize) {
            *slot = deadline;
        }
        if let Some(deadline) = deadline {
            ctx.timers.set(TimerEntry {
                deadline,
                slot: self.slot,
                generation: self.generation,
                kind,
            });
        } else {
            ctx.timers.cancel(self.slot, kind);
        }
    }

    fn cancel_deadline(&mut self, kind: u8, ctx: &mut WorkerCtx<'_>) {
        if let Some(slot) = self.deadlines.get_mut(kind as usize) {
            *slot = None;
        }
        ctx.timers.cancel(self.slot, kind);
    }

    // ----- actions ---------------------------------------------------------------------

    fn apply(&mut self, actions: Vec<Action>, ctx: &mut WorkerCtx<'_>) {
        for action in actions {
            match action {
                Action::SendClient(reply) => {
                    if self.closing.is_none() {
                        let before = self.client.output.len();
                        reply.encode(&mut self.client.output);
                        self.bytes_out += (self.client.output.len() - before) as u64;
                    }
                }
                Action::SendServer(cmd) => {
                    if let Some(server) = self.server.as_mut() {
                        if cmd.verb == Verb::Pass {
                            log::debug!("{} -> backend PASS ****", self.id);
                        } else {
                            log::debug!(
                                "{} -> backend {} {}",
                                self.id,
                                cmd.verb.name(),
                                String::from_utf8_lossy(&cmd.arg)
                            );
                        }
                        cmd.encode(&mut server.output);
                    }
                }
                Action::ConnectServer => match self.admit_user(ctx) {
                    Ok(None) => self.connect_server(ctx),
                    Ok(Some(would_deny)) => {
                        let record = AuditRecord::PolicyException {
                            kind: "would_deny",
                            detail: format!(
                                "{}; logged in because enforce is false",
                                would_deny.detail()
                            ),
                        };
                        self.audit(ctx, &record);
                        self.connect_server(ctx)
                    }
                    Err(refusal) => {
                        log::info!("{} login refused: {}", self.id, refusal.detail());
                        self.push(Event::LoginRefused(refusal));
                    }
                },
                // The user's session was counted when its login was admitted.
                Action::LoginSucceeded => self.server_healthy(ctx),
                Action::ServerFailed(addr) => self.server_failed(addr, ctx),
                Action::LoginFailed => {
                    if let Some(user) = self.counted_user.take() {
                        ctx.counters.close_user(&user);
                    }
                    let limits = &self.policy.defaults.limits;
                    let banned = ctx.counters.record_failed_login(
                        self.client_addr.ip(),
                        unix_now(),
                        limits.failed_login_window,
                        limits.failed_logins_per_ip,
                        limits.ban,
                    );
                    if banned {
                        log::warn!(
                            "{} address {} banned after failed logins",
                            self.id,
                            self.client_addr.ip()
                        );
                        self.push(Event::Banned);
                    }
                }
                Action::CloseServer => self.close_server(ctx),
                Action::OpenPassive => self.data_input(data::Input::OpenPassive, ctx),
                Action::ConnectServerData(port) => {
                    let now = ctx.now;
                    self.data_input(data::Input::ConnectServer { port, now }, ctx)
                }
                Action::ConnectClientData(addr) => {
                    self.data_input(data::Input::ConnectClient(addr), ctx)
                }
                Action::StartRelay {
                    direction,
                    max_bytes,
                } => {
                    // Counted in the shared table until its record is written, so that a
                    // worker that dies is known to have carried it (`worker_lost`).
                    if !self.transfer_counted.replace(true) {
                        ctx.counters.transfer_started();
                    }
                    self.data_input(
                        data::Input::StartRelay {
                            direction,
                            max_bytes,
                        },
                        ctx,
                    )
                }
                Action::AbortData => self.close_data_for_control(false, ctx),
                Action::SetTimer(kind, after) => self.set_deadline(kind as u8, after, ctx),
                Action::CancelTimer(kind) => self.cancel_deadline(kind as u8, ctx),
                Action::StartClientTls => self.tls_upgrade = true,
                Action::StartServerTls => self.start_server_tls(),
                Action::Audit(record) => self.audit(ctx, &record),
                Action::Unexpected { event, phase } => {
                    log::warn!(
                        "{} protocol violation: {event} is not expected in phase {phase}; ignored",
                        self.id
                    );
                }
                // What crossed travels in the event the machine waits for (RelayStopped).
                Action::StopRelay => self.close_data_for_control(true, ctx),
                Action::Close(reason) => {
                    if self.closing.is_none() {
                        self.closing = Some(reason);
                        self.close_data_for_control(false, ctx);
                        if let Some(server) = self.server.as_mut() {
                            // Best effort: a QUIT queued for the backend goes out now.
                            let _ = flush(&mut server.conn, &mut server.output);
                        }
                        self.close_server(ctx);
                        self.set_deadline(TIMER_CLOSE_LINGER, CLOSE_LINGER, ctx);
                    }
                }
            }
        }
        // Counts the shared tables had no room for (at most one record per table).
        while let Some(record) = ctx.counters.take_notice() {
            self.audit(ctx, &record);
        }
    }

    /// The checks on a known user before any backend is contacted
    /// ([`admission::admit_login`]). Counts the user's session when admitted (the check and
    /// the count happen in one step of this single-threaded worker, so concurrent logins
    /// cannot both pass a cap).
    /// Ok(Some(refusal)): a dry run let the login through what would have refused it.
    fn admit_user(&mut self, ctx: &WorkerCtx<'_>) -> Result<Option<Refusal>, Refusal> {
        let Some(name) = self.fsm.user().map(|u| u.name.clone()) else {
            return Ok(None);
        };
        let facts = LoginFacts {
            unix_now: i64::try_from(unix_now()).unwrap_or(i64::MAX),
            waiting_for_backend: ctx.backends.waiting(),
            user_sessions: ctx.counters.sessions_of(&name),
        };
        let would_deny =
            match admission::admit_login(&self.policy, &name, self.client_addr.ip(), &facts) {
                Ok(()) => None,
                Err(refusal) if admission::dry_run_lets_through(&self.policy, &name, &refusal) => {
                    Some(refusal)
                }
                Err(refusal) => return Err(refusal),
            };
        // SECURITY: a full table never refuses (see counters): not counted per user.
        ctx.counters.open_user(&name);
        self.counted_user = Some(name);
        Ok(would_deny)
    }

    // ----- I/O steps -------------------------------------------------------------------

    /// The local address of this session's control connection, for diagnostics.
    pub fn describe(&self) -> String {
        format!("{} {} -> {}", self.id, self.client_addr, self.local_addr)
    }
}

/// The checks on a new connection, before the greeting ([`admission::admit_connection`]).
/// Counts the session when it is admitted.
fn admit(policy: &Policy, client: SocketAddr, ctx: &mut WorkerCtx<'_>) -> Result<(), Refusal> {
    let ip = client.ip();
    let facts = ConnectionFacts {
        audit_accepting: ctx.audit.accepting_sessions(ctx.now),
        banned: ctx.counters.is_banned(ip, unix_now()),
        sessions_total: ctx.counters.sessions_total(),
        sessions_from_ip: ctx.counters.sessions_from(ip),
    };
    admission::admit_connection(policy, ip, &facts)?;
    // SECURITY: a full table never refuses (see counters): counted toward the total only.
    ctx.counters.open_session(ip);
    Ok(())
}
