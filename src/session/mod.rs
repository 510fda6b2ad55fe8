//! The session shell: the sockets, buffers, readiness and timers of one FTP session.
//!
//! This is the only module that holds sockets and protocol state together. It turns socket
//! readiness into [`control::Event`]s for the pure control machine and performs the
//! [`control::Action`]s it returns. It never decides policy: every decision is the
//! machine's.
//!
//! Readiness follows the edge-triggered contract of mio: every socket is registered once for
//! READABLE | WRITABLE, the last reported readiness is remembered per socket, and a socket is
//! read or written until `WouldBlock` before its flag is cleared. [`Session::drive`] loops
//! over all sockets until no step makes progress, so an edge is never lost.

mod admission;
pub mod control;
pub mod net;
pub mod rate;
mod relay;
mod transport;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::audit::{AuditContext, AuditRecord, AuditSink};
use crate::counters::SharedCounters;
use crate::filecopy::{self, Chunk, End, FileCopier, Owner, Target};
use crate::ftp::command::Verb;
use crate::ftp::line::{Framed, LineFramer, TelnetFilter};
use crate::ftp::reply::ReplyParser;
use crate::limits::{
    CLOSE_LINGER_SECONDS, COMMAND_BURST, DEFAULT_BACKEND_REPLY_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
    FILECOPY_RESULT_TIMEOUT, FILECOPY_RETRY_MS, MAX_CLIENT_INPUT, MAX_CLIENT_OUTPUT,
    MAX_COMMAND_LINE, MAX_COMMANDS_PER_SECOND, MAX_COMMANDS_PER_TURN, MAX_DRIVE_ITERATIONS,
    MAX_PASSIVE_ACCEPTS_PER_TURN, MAX_RELAY_BYTES_PER_TURN, MAX_REPLY_LINE,
    MAX_THEFT_EVENTS_PER_SESSION,
};
use crate::policy::Policy;
use crate::reactor::pool::BufferPool;
use crate::reactor::timer::{TimerEntry, TimerHeap};
use crate::tls;
use admission::{ConnectionFacts, LoginFacts, Refusal};
use control::{
    Action, CloseReason, ControlConfig, ControlFsm, Direction, Event, RelayReport, Side, TimerKind,
};
use net::{BackendBook, PassivePorts};
use rate::TokenBucket;
use relay::{Pump, Relay, RelayCopy, pump};
use transport::{Conn, Ending, ReadStep, flush, read_some};

/// The sockets of a session, encoded in the low bits of its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum SocketRole {
    ClientCtrl = 0,
    ServerCtrl = 1,
    PassiveListener = 2,
    ClientData = 3,
    ServerData = 4,
}

/// Bits of a token that carry the socket role.
pub const ROLE_BITS: usize = 3;

impl SocketRole {
    pub fn from_bits(bits: usize) -> Option<SocketRole> {
        match bits {
            0 => Some(SocketRole::ClientCtrl),
            1 => Some(SocketRole::ServerCtrl),
            2 => Some(SocketRole::PassiveListener),
            3 => Some(SocketRole::ClientData),
            4 => Some(SocketRole::ServerData),
            _ => None,
        }
    }
}

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

/// Everything of the worker a session needs while it runs, lent for one call.
pub struct WorkerCtx<'a> {
    pub registry: &'a Registry,
    pub timers: &'a mut TimerHeap,
    pub pool: &'a BufferPool,
    pub audit: &'a mut AuditSink,
    pub passive: &'a mut PassivePorts,
    pub backends: &'a mut BackendBook,
    pub counters: &'a SharedCounters,
    /// Rate buckets shared by all sessions of a user in this worker.
    pub user_buckets: &'a mut HashMap<String, Rc<RefCell<TokenBucket>>>,
    /// TLS toward clients, when the policy configures it.
    pub tls: Option<&'a tls::TlsServer>,
    /// TLS toward each backend pool that uses it, by backend name.
    pub backend_tls: &'a HashMap<String, tls::TlsClient>,
    /// The filecopy writer of this worker, once a policy asked for filecopy.
    pub copier: Option<&'a FileCopier>,
    /// The backend features `FEAT` advertises before login (`features::FeatureBook`).
    pub features: &'a Rc<[String]>,
    pub now: Instant,
}

/// Where a session lives in the reactor's slab: its slot and the slot's generation.
#[derive(Clone, Copy, Debug)]
pub struct SessionKey {
    pub slot: usize,
    pub generation: u64,
}

/// What a session needs to know of the listener that accepted it.
#[derive(Clone, Copy, Debug)]
pub struct ListenerConfig {
    pub tls: crate::policy::TlsMode,
    pub require: crate::policy::TlsRequire,
}

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

/// A transfer that moved all its bytes and waits for its copy to reach the disk before the
/// final reply goes to the client.
struct AwaitCopy {
    id: u64,
    path: String,
    /// What the relay reported; the copy's outcome completes it.
    report: RelayReport,
    abort_on_failure: bool,
}

/// What the transfer event says of the copy.
enum CopyNote {
    /// The copy's path (complete, or the part that crossed for a transfer that did not end
    /// well).
    Stored(String),
    Failed(String),
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
    passive: Option<TcpListener>,
    /// The client's data connection before the relay starts (accepted or connecting).
    client_data: Option<Conn>,
    server_data: Option<Conn>,
    relay: Option<Relay>,
    deadlines: [Option<Instant>; TIMER_SLOTS],
    closing: Option<CloseReason>,
    /// This session's TLS configuration (its own session cache: data connections resume
    /// this control connection's session and no other).
    tls_config: Option<Arc<rustls::ServerConfig>>,
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
    /// Filecopy mode: the finished relay whose copy is still being written.
    awaiting_copy: Option<AwaitCopy>,
    /// When the running transfer began (its backend data connection was requested).
    transfer_started: Option<Instant>,
    bytes_in: u64,
    bytes_out: u64,
    /// Connections from other addresses to this session's passive ports (refused).
    theft_attempts: u32,
    /// Commands this session may have processed ([`MAX_COMMANDS_PER_SECOND`]).
    command_bucket: TokenBucket,
    events: VecDeque<OwnedEvent>,
}

/// Events the shell raises for itself while performing actions.
enum OwnedEvent {
    Fsm(Event<'static>),
}

fn token(slot: usize, role: SocketRole) -> Token {
    Token((slot << ROLE_BITS) | role as usize)
}

impl Session {
    /// A session for a freshly accepted client. Registers the client socket and sends the
    /// greeting.
    pub fn new(
        id: String,
        mut stream: TcpStream,
        client_addr: SocketAddr,
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
        net::tune_control_socket(&stream);
        ctx.registry.register(
            &mut stream,
            token(slot, SocketRole::ClientCtrl),
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
        };
        // Implicit FTPS: TLS from the first byte; plaintext is a failed handshake and a clean
        // close. Set up before the session is counted, so that a failure here leaks no count.
        let client_tls = match (implicit, tls_config.as_ref()) {
            (true, Some(config)) => Some(tls::accept(config)?),
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
            passive: None,
            client_data: None,
            server_data: None,
            relay: None,
            deadlines: [None; TIMER_SLOTS],
            closing: None,
            tls_config,
            tls_upgrade: false,
            server_tls: None,
            server_source: None,
            counted,
            counted_user: None,
            transfer_started: None,
            copies: 0,
            awaiting_copy: None,
            bytes_in: 0,
            bytes_out: 0,
            theft_attempts: 0,
            command_bucket: TokenBucket::with_burst(
                MAX_COMMANDS_PER_SECOND,
                COMMAND_BURST,
                ctx.now,
            ),
            events: VecDeque::new(),
        };
        session.audit(
            ctx,
            &AuditRecord::SessionStart {
                server: local_addr.to_string(),
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
            SocketRole::ClientData => match self.relay.as_mut() {
                Some(r) => Some(&mut r.client),
                None => self.client_data.as_mut(),
            },
            SocketRole::ServerData => match self.relay.as_mut() {
                Some(r) => Some(&mut r.server),
                None => self.server_data.as_mut(),
            },
        };
        if let Some(conn) = conn {
            conn.readable |= readable;
            conn.writable |= writable;
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
                self.drop_server_data(ctx);
                self.push(Event::ServerDataFailed);
            }
            TIMER_CLOSE_LINGER => {
                self.client.output.clear();
            }
            // The drive that follows resumes the relay, or the commands.
            TIMER_RATE | TIMER_COPY | TIMER_COMMANDS => {}
            TIMER_COPY_RESULT => {
                if let Some(wait) = self.awaiting_copy.take() {
                    let reason = format!(
                        "{} did not reach the disk within {FILECOPY_RESULT_TIMEOUT} s",
                        wait.path
                    );
                    self.copy_settled(Err(reason), wait.report, wait.abort_on_failure, ctx);
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
        self.abort_data(ctx);
        self.close_server(ctx);
        if self.counted {
            ctx.counters.close_session(self.client_addr.ip());
            self.counted = false;
        }
        if let Some(user) = self.counted_user.take() {
            ctx.counters.close_user(&user);
        }
        let _ = ctx.registry.deregister(&mut self.client.conn.stream);
        let _ = self.client.conn.stream.shutdown(Shutdown::Both);
        ctx.timers.cancel_slot(self.slot);
        let record = AuditRecord::SessionEnd {
            reason,
            duration_ms: ctx.now.saturating_duration_since(self.started).as_millis() as u64,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            repeated_commands: self.fsm.take_repeated_commands(),
            port_theft_attempts: u64::from(self.theft_attempts),
        };
        self.audit(ctx, &record);
    }

    /// Closes the session at once (worker stopping).
    pub fn force_close(&mut self) {
        if self.closing.is_none() {
            self.closing = Some(CloseReason::WorkerStopping);
        }
        self.client.output.clear();
    }

    fn audit(&self, ctx: &mut WorkerCtx<'_>, record: &AuditRecord) {
        let client = self.client_addr.to_string();
        let user = self.fsm.user().map(|u| u.name.as_str());
        let user_hex = self.fsm.user().and_then(|u| u.name_hex.as_deref());
        let actx = AuditContext {
            session: &self.id,
            client: &client,
            user,
            user_hex,
        };
        ctx.audit.emit(&actx, record);
    }

    fn push(&mut self, event: Event<'static>) {
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

    fn dispatch(&mut self, event: Event<'_>, ctx: &mut WorkerCtx<'_>) {
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
                    Ok(()) => self.connect_server(ctx),
                    Err(refusal) => {
                        log::info!("{} login refused: {}", self.id, refusal.detail());
                        self.push(Event::LoginRefused(refusal));
                    }
                },
                // The user's session was counted when its login was admitted.
                Action::LoginSucceeded => {}
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
                Action::OpenPassive => self.open_passive(ctx),
                Action::ConnectServerData(port) => {
                    self.transfer_started = Some(ctx.now);
                    self.connect_server_data(port, ctx)
                }
                Action::ConnectClientData(addr) => self.connect_client_data(addr, ctx),
                Action::StartRelay {
                    direction,
                    max_bytes,
                } => self.start_relay(direction, max_bytes, ctx),
                Action::AbortData => self.abort_data(ctx),
                Action::SetTimer(kind, after) => self.set_deadline(kind as u8, after, ctx),
                Action::CancelTimer(kind) => self.cancel_deadline(kind as u8, ctx),
                Action::StartClientTls => self.tls_upgrade = true,
                Action::StartServerTls => self.start_server_tls(),
                Action::Audit(record) => self.audit(ctx, &record),
                Action::StopRelay => {
                    // What crossed travels in the event the machine waits for.
                    let report = self.stop_data(ctx).unwrap_or_default();
                    self.push(Event::RelayStopped(report));
                }
                Action::Close(reason) => {
                    if self.closing.is_none() {
                        self.closing = Some(reason);
                        self.abort_data(ctx);
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
    fn admit_user(&mut self, ctx: &WorkerCtx<'_>) -> Result<(), Refusal> {
        let Some(name) = self.fsm.user().map(|u| u.name.clone()) else {
            return Ok(());
        };
        let facts = LoginFacts {
            unix_now: i64::try_from(unix_now()).unwrap_or(i64::MAX),
            waiting_for_backend: ctx.backends.waiting(),
            user_sessions: ctx.counters.sessions_of(&name),
        };
        admission::admit_login(&self.policy, &name, self.client_addr.ip(), &facts)?;
        // SECURITY: a full table never refuses (see counters): not counted per user.
        ctx.counters.open_user(&name);
        self.counted_user = Some(name);
        Ok(())
    }

    fn connect_server(&mut self, ctx: &mut WorkerCtx<'_>) {
        let backend = self
            .fsm
            .user()
            .and_then(|u| u.known.as_ref())
            .and_then(|k| self.policy.backends.get(&k.backend));
        let Some(backend) = backend else {
            self.push(Event::ServerUnavailable);
            return;
        };
        self.server_source = backend.source_address;
        self.server_tls = None;
        if backend.tls != crate::policy::TlsMode::None {
            let Some(client) = ctx.backend_tls.get(&backend.name) else {
                log::error!(
                    "{} backend {} has no usable TLS configuration",
                    self.id,
                    backend.name
                );
                self.push(Event::ServerUnavailable);
                return;
            };
            self.server_tls = Some((client.for_session(), client.clone(), backend.tls));
            self.fsm.set_server_tls(match backend.tls {
                crate::policy::TlsMode::Implicit => control::ServerTls::Implicit,
                _ => control::ServerTls::Explicit,
            });
        }
        let mut candidates = ctx.backends.candidates(backend, ctx.now);
        candidates.reverse(); // popped from the end
        self.try_next_server(candidates, ctx);
    }

    fn try_next_server(&mut self, mut remaining: Vec<SocketAddr>, ctx: &mut WorkerCtx<'_>) {
        while let Some(addr) = remaining.pop() {
            let connected = match self.server_source {
                Some(source) => net::connect_from(source, addr),
                None => TcpStream::connect(addr),
            };
            match connected {
                Ok(mut stream) => {
                    if let Err(e) = ctx.registry.register(
                        &mut stream,
                        token(self.slot, SocketRole::ServerCtrl),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("{} cannot register backend socket: {e}", self.id);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    log::debug!("{} connecting to backend {addr}", self.id);
                    ctx.backends.start_waiting();
                    let mut conn = Conn::new(stream, true);
                    if let Some((config, client, crate::policy::TlsMode::Implicit)) =
                        self.server_tls.as_ref()
                    {
                        match tls::connect(config, client.server_name(addr.ip())) {
                            Ok(tls) => conn.tls = Some(tls),
                            Err(e) => {
                                log::warn!("{} cannot start TLS toward {addr}: {e}", self.id);
                                continue;
                            }
                        }
                    }
                    self.server = Some(ServerCtrl {
                        conn,
                        addr,
                        input: Vec::new(),
                        output: Vec::new(),
                        telnet: TelnetFilter::new(),
                        framer: LineFramer::new(MAX_REPLY_LINE),
                        parser: ReplyParser::new(),
                        remaining,
                    });
                    self.set_deadline(
                        TIMER_SERVER_CONNECT,
                        Duration::from_secs(DEFAULT_CONNECT_TIMEOUT),
                        ctx,
                    );
                    return;
                }
                Err(e) => {
                    log::warn!("{} backend {addr} connect failed: {e}", self.id);
                    ctx.backends.mark_down(addr, ctx.now);
                }
            }
        }
        self.push(Event::ServerUnavailable);
    }

    fn server_connect_failed(&mut self, ctx: &mut WorkerCtx<'_>) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        ctx.backends.stop_waiting();
        let _ = ctx.registry.deregister(&mut server.conn.stream);
        ctx.backends.mark_down(server.addr, ctx.now);
        self.cancel_deadline(TIMER_SERVER_CONNECT, ctx);
        let remaining = std::mem::take(&mut server.remaining);
        self.try_next_server(remaining, ctx);
    }

    fn close_server(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(mut server) = self.server.take() {
            if server.conn.connecting {
                ctx.backends.stop_waiting();
            }
            let _ = ctx.registry.deregister(&mut server.conn.stream);
            self.cancel_deadline(TIMER_SERVER_CONNECT, ctx);
        }
    }

    fn open_passive(&mut self, ctx: &mut WorkerCtx<'_>) {
        self.abort_data(ctx);
        match ctx
            .passive
            .open(self.local_addr.ip(), self.client_addr.ip(), ctx.now)
        {
            Ok((mut listener, port)) => {
                if let Err(e) = ctx.registry.register(
                    &mut listener,
                    token(self.slot, SocketRole::PassiveListener),
                    Interest::READABLE,
                ) {
                    log::warn!("{} cannot register passive listener: {e}", self.id);
                    self.push(Event::PassiveFailed);
                    return;
                }
                self.passive = Some(listener);
                // passive.advertise is an IPv4 address for 227 replies; a client on IPv6
                // gets ftpgate's own address (and 227 is refused for it: EPSV only).
                let local = self.local_addr.ip();
                let on_ipv4 = match local {
                    std::net::IpAddr::V4(_) => true,
                    std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
                };
                let ip = match self.policy.passive.advertise {
                    Some(advertise) if on_ipv4 => advertise,
                    _ => local,
                };
                self.push(Event::PassiveOpened(SocketAddr::new(ip, port)));
            }
            Err(e) => {
                log::warn!("{} no passive port available: {e}", self.id);
                self.push(Event::PassiveFailed);
            }
        }
    }

    fn connect_server_data(&mut self, port: u16, ctx: &mut WorkerCtx<'_>) {
        let Some(server) = self.server.as_ref() else {
            self.push(Event::ServerDataFailed);
            return;
        };
        // SECURITY: the backend's data address is its control address with the port it
        // named; the address inside 227/229 is never used.
        let addr = SocketAddr::new(server.addr.ip(), port);
        if port == 0 {
            self.push(Event::ServerDataFailed);
            return;
        }
        let connected = match self.server_source {
            Some(source) => net::connect_from(source, addr),
            None => TcpStream::connect(addr),
        };
        match connected {
            Ok(mut stream) => {
                if ctx
                    .registry
                    .register(
                        &mut stream,
                        token(self.slot, SocketRole::ServerData),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .is_err()
                {
                    self.push(Event::ServerDataFailed);
                    return;
                }
                let mut conn = Conn::new(stream, true);
                // Toward a TLS backend data connections are protected (PROT P) and resume
                // the control connection's session.
                if let Some((config, client, _)) = self.server_tls.as_ref() {
                    match tls::connect(config, client.server_name(addr.ip())) {
                        Ok(tls) => conn.tls = Some(tls),
                        Err(e) => {
                            log::warn!("{} cannot start data TLS toward {addr}: {e}", self.id);
                            let _ = ctx.registry.deregister(&mut conn.stream);
                            self.push(Event::ServerDataFailed);
                            return;
                        }
                    }
                }
                self.server_data = Some(conn);
                self.set_deadline(
                    TIMER_SERVER_DATA_CONNECT,
                    Duration::from_secs(DEFAULT_CONNECT_TIMEOUT),
                    ctx,
                );
            }
            Err(e) => {
                log::warn!("{} backend data connect to {addr} failed: {e}", self.id);
                self.push(Event::ServerDataFailed);
            }
        }
    }

    fn start_relay(
        &mut self,
        direction: Direction,
        max_bytes: Option<u64>,
        ctx: &mut WorkerCtx<'_>,
    ) {
        let (Some(server), Some(client)) = (self.server_data.take(), self.client_data.take())
        else {
            self.abort_data(ctx);
            self.push(Event::RelayFailed {
                report: RelayReport::default(),
                side: Side::Server,
            });
            return;
        };
        self.cancel_deadline(TIMER_SERVER_DATA_CONNECT, ctx);
        let Some(buffer) = ctx.pool.checkout() else {
            log::warn!("{} relay buffer pool exhausted", self.id);
            for mut conn in [server, client] {
                let _ = ctx.registry.deregister(&mut conn.stream);
            }
            self.push(Event::RelayFailed {
                report: RelayReport::default(),
                side: Side::Server,
            });
            return;
        };
        let limits = self
            .fsm
            .user()
            .and_then(|u| self.policy.user(&u.name))
            .map(|u| (u.name.clone(), u.limits.rate, u.limits.user_rate));
        let (session_bucket, user_bucket) = match limits {
            Some((name, rate, user_rate)) => (
                rate.map(|r| TokenBucket::new(r, ctx.now)),
                user_rate.map(|r| {
                    Rc::clone(
                        ctx.user_buckets
                            .entry(name)
                            .or_insert_with(|| Rc::new(RefCell::new(TokenBucket::new(r, ctx.now)))),
                    )
                }),
            ),
            None => (None, None),
        };
        self.relay = Some(Relay {
            direction,
            client,
            server,
            buffer,
            bytes: 0,
            read: 0,
            source_eof: false,
            source_end: None,
            started: ctx.now,
            max_bytes,
            session_bucket,
            user_bucket,
            digest: tls::sha256(),
            copy: None,
        });
        self.awaiting_copy = None;
        let copy = self.new_copy(ctx);
        if let Some(relay) = self.relay.as_mut() {
            relay.copy = copy;
        }
    }

    /// Filecopy mode: the copy of the file transfer that starts (none for a listing).
    fn new_copy(&mut self, ctx: &WorkerCtx<'_>) -> Option<RelayCopy> {
        let audit = &self.policy.audit;
        let settings = audit
            .filecopy
            .as_ref()
            .filter(|_| audit.mode == crate::policy::AuditMode::Filecopy)?;
        let arg = self.fsm.transfer_file()?;
        self.copies += 1;
        let path = filecopy::copy_path(
            &settings.directory,
            std::time::SystemTime::now(),
            &self.id,
            self.copies,
            arg,
        );
        let error = match ctx.copier {
            Some(_) => None,
            None => {
                log::error!("{} no filecopy writer in this worker", self.id);
                Some("no filecopy writer".to_owned())
            }
        };
        Some(RelayCopy {
            id: ctx.copier.map_or(0, FileCopier::new_id),
            path: path.to_string_lossy().into_owned(),
            target: Some(Box::new(Target {
                owner: Owner {
                    slot: self.slot,
                    generation: self.generation,
                },
                path,
            })),
            pending: Vec::new(),
            finished: false,
            result: None,
            error,
            abort_on_failure: settings.on_failure == crate::policy::CopyFailure::Abort,
        })
    }

    /// A relay ended before its copy was finished (failed, aborted, or the session closes):
    /// what was copied is kept (the writer fsyncs it) and nobody waits for it. Returns what
    /// the transfer event says of the copy.
    fn abandon_copy(copy: RelayCopy, ctx: &WorkerCtx<'_>) -> CopyNote {
        let RelayCopy {
            id,
            path,
            target,
            pending,
            finished,
            result,
            error,
            ..
        } = copy;
        match (error, result) {
            (Some(reason), _) | (None, Some(Err(reason))) => CopyNote::Failed(reason),
            (None, Some(Ok(path))) => CopyNote::Stored(path),
            (None, None) => {
                if !finished {
                    if let Some(copier) = ctx.copier {
                        copier.send_or_queue(Chunk {
                            id,
                            target,
                            bytes: pending,
                            end: End::Abandon,
                        });
                    }
                }
                CopyNote::Stored(path)
            }
        }
    }

    /// The relay moved every byte: the final reply waits for the copy's report.
    fn copy_relayed(&mut self, copy: RelayCopy, report: RelayReport, ctx: &mut WorkerCtx<'_>) {
        let abort = copy.abort_on_failure;
        match (copy.error, copy.result) {
            (Some(reason), _) => self.copy_settled(Err(reason), report, abort, ctx),
            (None, Some(result)) => self.copy_settled(result, report, abort, ctx),
            (None, None) => {
                self.awaiting_copy = Some(AwaitCopy {
                    id: copy.id,
                    path: copy.path,
                    report,
                    abort_on_failure: abort,
                });
                self.set_deadline(
                    TIMER_COPY_RESULT,
                    Duration::from_secs(FILECOPY_RESULT_TIMEOUT),
                    ctx,
                );
            }
        }
    }

    /// The copy of a relay that moved every byte is settled: the transfer ends.
    fn copy_settled(
        &mut self,
        result: Result<String, String>,
        mut report: RelayReport,
        abort_on_failure: bool,
        ctx: &mut WorkerCtx<'_>,
    ) {
        self.cancel_deadline(TIMER_COPY_RESULT, ctx);
        match result {
            Ok(path) => {
                report.filecopy = Some(path);
                self.dispatch(Event::RelayDone(report), ctx);
            }
            Err(reason) => {
                log::error!("{} audit copy failed: {reason}", self.id);
                report.filecopy_error = Some(reason);
                if abort_on_failure {
                    self.dispatch(Event::RelayCopyFailed(report), ctx);
                } else {
                    self.dispatch(Event::RelayDone(report), ctx);
                }
            }
        }
    }

    /// The filecopy writer's report on copy `id`. Returns it when this session no longer
    /// waits for it (its transfer was aborted or failed).
    pub fn on_copy_report(
        &mut self,
        id: u64,
        result: Result<String, String>,
        ctx: &mut WorkerCtx<'_>,
    ) -> Option<Result<String, String>> {
        if self.awaiting_copy.as_ref().is_some_and(|w| w.id == id) {
            if let Some(wait) = self.awaiting_copy.take() {
                self.copy_settled(result, wait.report, wait.abort_on_failure, ctx);
            }
            return None;
        }
        let Some(relay) = self
            .relay
            .as_mut()
            .filter(|r| r.copy.as_ref().is_some_and(|c| c.id == id))
        else {
            return Some(result);
        };
        let Some(copy) = relay.copy.as_mut() else {
            return Some(result);
        };
        match result {
            // The last chunk is written; the relay is still closing its connections.
            Ok(path) => copy.result = Some(Ok(path)),
            Err(reason) => {
                log::error!("{} audit copy failed: {reason}", self.id);
                copy.error = Some(reason);
                copy.pending = Vec::new();
                copy.target = None;
                if copy.abort_on_failure {
                    // SECURITY: no transfer without its copy: stop it now.
                    let report = self.stop_data(ctx).unwrap_or_default();
                    self.dispatch(Event::RelayCopyFailed(report), ctx);
                }
            }
        }
        None
    }

    /// Active mode: connects to the client's validated PORT/EPRT address from the address
    /// the client reached ftpgate on.
    fn connect_client_data(&mut self, addr: SocketAddr, ctx: &mut WorkerCtx<'_>) {
        self.drop_client_data(ctx);
        let conn = match net::connect_from(self.local_addr.ip(), addr) {
            Ok(stream) => self.register_client_data(stream, true, ctx),
            Err(e) => {
                log::info!("{} active data connect to {addr} failed: {e}", self.id);
                None
            }
        };
        match conn {
            Some(mut conn) => match self.protect_client_data(&mut conn) {
                Ok(()) => self.client_data = Some(conn),
                Err(_) => {
                    let _ = ctx.registry.deregister(&mut conn.stream);
                    self.push(Event::ClientDataFailed);
                }
            },
            None => self.push(Event::ClientDataFailed),
        }
    }

    fn register_client_data(
        &mut self,
        mut stream: TcpStream,
        connecting: bool,
        ctx: &mut WorkerCtx<'_>,
    ) -> Option<Conn> {
        ctx.registry
            .register(
                &mut stream,
                token(self.slot, SocketRole::ClientData),
                Interest::READABLE | Interest::WRITABLE,
            )
            .ok()?;
        Some(Conn::new(stream, connecting))
    }

    fn drop_client_data(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(mut conn) = self.client_data.take() {
            let _ = ctx.registry.deregister(&mut conn.stream);
        }
    }

    fn drop_server_data(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(mut conn) = self.server_data.take() {
            let _ = ctx.registry.deregister(&mut conn.stream);
        }
        self.cancel_deadline(TIMER_SERVER_DATA_CONNECT, ctx);
    }

    fn abort_data(&mut self, ctx: &mut WorkerCtx<'_>) {
        let _ = self.stop_data(ctx);
    }

    /// Closes the passive listener and every data connection, and stops the relay (or the
    /// wait for its copy). Returns what crossed when a relay had started.
    fn stop_data(&mut self, ctx: &mut WorkerCtx<'_>) -> Option<RelayReport> {
        // Data connections end here: their finished handshakes are recorded first.
        self.report_tls(ctx);
        if let Some(mut listener) = self.passive.take() {
            let _ = ctx.registry.deregister(&mut listener);
            ctx.passive
                .release(&listener, self.client_addr.ip(), ctx.now);
        }
        self.drop_client_data(ctx);
        self.drop_server_data(ctx);
        let mut report = None;
        if let Some(mut relay) = self.relay.take() {
            let copy = relay.copy.take();
            let mut r = self.relay_report(relay, ctx);
            if let Some(copy) = copy {
                match Session::abandon_copy(copy, ctx) {
                    CopyNote::Stored(path) => r.filecopy = Some(path),
                    CopyNote::Failed(reason) => r.filecopy_error = Some(reason),
                }
            }
            report = Some(r);
        }
        if let Some(wait) = self.awaiting_copy.take() {
            // Stopped while the copy (complete) was being written: nobody waits for it.
            self.cancel_deadline(TIMER_COPY_RESULT, ctx);
            let mut r = wait.report;
            r.filecopy = Some(wait.path);
            report = Some(r);
        }
        report
    }

    /// Ends `relay` (both connections deregistered and closed) and says what crossed; its
    /// copy, if any, is the caller's.
    fn relay_report(&mut self, mut relay: Relay, ctx: &mut WorkerCtx<'_>) -> RelayReport {
        let _ = ctx.registry.deregister(&mut relay.server.stream);
        let _ = ctx.registry.deregister(&mut relay.client.stream);
        match relay.direction {
            Direction::Download => self.bytes_out += relay.bytes,
            Direction::Upload => self.bytes_in += relay.bytes,
        }
        let source_tls = match relay.direction {
            Direction::Download => relay.server.tls.is_some(),
            Direction::Upload => relay.client.tls.is_some(),
        };
        RelayReport {
            bytes: relay.bytes,
            duration_ms: self.transfer_started.take().map_or(0, |t| {
                ctx.now.saturating_duration_since(t).as_millis() as u64
            }),
            sha256: relay.digest.take().map(|d| tls::hex(d.finish().as_ref())),
            tls_end: relay.source_end.filter(|_| source_tls).map(Ending::as_str),
            filecopy: None,
            filecopy_error: None,
        }
    }

    // ----- I/O steps -------------------------------------------------------------------

    fn read_client(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let _ = ctx;
        let mut progress = false;
        let mut chunk = [0u8; 2048];
        while self.closing.is_none()
            && !self.tls_upgrade
            && !self.client.eof
            && (self.client.conn.readable || self.client.conn.tls.is_some())
            && self.client.input.len() < MAX_CLIENT_INPUT
        {
            let room = (MAX_CLIENT_INPUT - self.client.input.len()).min(chunk.len());
            match read_some(&mut self.client.conn, &mut chunk[..room]) {
                Ok(ReadStep::Data(n)) => {
                    self.bytes_in += n as u64;
                    let kept = self.client.telnet.filter(&mut chunk[..n]);
                    self.client.input.extend_from_slice(&chunk[..kept]);
                    progress = true;
                }
                Ok(ReadStep::Eof(_)) => {
                    self.client.eof = true;
                    progress = true;
                }
                Ok(ReadStep::Blocked) => break,
                Err(e) => {
                    log::debug!("{} client read error: {e}", self.id);
                    self.client.eof = true;
                    progress = true;
                }
            }
        }
        progress
    }

    /// Runs the complete command lines the client sent, at most `budget` of them (fairness)
    /// and as many as the command rate allows.
    fn process_client_lines(&mut self, ctx: &mut WorkerCtx<'_>, budget: &mut usize) -> bool {
        let mut progress = false;
        let mut throttled = false;
        let mut line = Vec::new();
        while self.closing.is_none()
            && !self.tls_upgrade
            && self.client.output.len() < MAX_CLIENT_OUTPUT
            && *budget > 0
        {
            match self.client.framer.next_line(&self.client.input) {
                Framed::Line { line_end, consumed } => {
                    let text = self.client.input.get(..line_end).unwrap_or(&[]);
                    if !self.fsm.can_take_line(text) {
                        break;
                    }
                    if self.command_bucket.available(ctx.now) == 0 {
                        // The line waits in the input buffer (and the next ones in the
                        // socket) until the bucket refills.
                        throttled = true;
                        if self.deadlines[TIMER_COMMANDS as usize].is_none() {
                            let wait = self.command_bucket.wait_for(1, ctx.now);
                            self.set_deadline(TIMER_COMMANDS, wait, ctx);
                        }
                        break;
                    }
                    self.command_bucket.consume(1);
                    *budget -= 1;
                    line.clear();
                    line.extend_from_slice(text);
                    self.client
                        .input
                        .drain(..consumed.min(self.client.input.len()));
                    self.dispatch(Event::ClientLine(&line), ctx);
                    progress = true;
                }
                Framed::TooLong { consumed } => {
                    self.client
                        .input
                        .drain(..consumed.min(self.client.input.len()));
                    self.command_bucket.consume(1);
                    *budget = budget.saturating_sub(1);
                    self.dispatch(Event::ClientLineTooLong, ctx);
                    progress = true;
                }
                Framed::Incomplete { consumed } => {
                    if consumed == 0 {
                        break;
                    }
                    // The end of a discarded over-long line: more lines may follow.
                    self.client
                        .input
                        .drain(..consumed.min(self.client.input.len()));
                    progress = true;
                }
            }
        }
        if self.client.input.is_empty() && self.client.input.capacity() > 0 {
            self.client.input = Vec::new();
        }
        // Lines held back for fairness or by the rate still run before the end of file.
        let held_back = throttled || *budget == 0;
        if self.client.eof && self.closing.is_none() && !progress && !held_back {
            self.dispatch(Event::ClientClosed, ctx);
            progress = true;
        }
        progress
    }

    fn progress_server(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(server) = self.server.as_mut() else {
            return false;
        };
        if server.conn.connecting {
            match server.conn.finish_connect() {
                None => return false,
                Some(Ok(())) => {
                    ctx.backends.stop_waiting();
                    log::debug!("{} connected to backend {}", self.id, server.addr);
                    let ipv6 = server.addr.is_ipv6();
                    self.cancel_deadline(TIMER_SERVER_CONNECT, ctx);
                    self.fsm.set_server_ipv6(ipv6);
                    self.dispatch(Event::ServerConnected, ctx);
                    return true;
                }
                Some(Err(e)) => {
                    log::warn!("{} backend {} connect failed: {e}", self.id, server.addr);
                    self.server_connect_failed(ctx);
                    self.run_events(ctx);
                    return true;
                }
            }
        }
        let mut progress = false;
        let mut chunk = [0u8; 4096];
        loop {
            let Some(server) = self.server.as_mut() else {
                return progress;
            };
            // Backpressure: replies for a client that does not read stay in the backend's
            // socket (and the backend's own buffers), not in ftpgate's memory.
            if !server.conn.readable
                || server.input.len() > MAX_REPLY_LINE
                || self.client.output.len() >= MAX_CLIENT_OUTPUT
            {
                return progress;
            }
            let step = read_some(&mut server.conn, &mut chunk);
            match step {
                Ok(ReadStep::Data(n)) => {
                    let kept = server.telnet.filter(&mut chunk[..n]);
                    server.input.extend_from_slice(&chunk[..kept]);
                    progress = true;
                    if !self.parse_server_replies(ctx) {
                        return true;
                    }
                }
                Ok(ReadStep::Blocked) => return progress,
                Err(e) if e.kind() == io::ErrorKind::InvalidData && self.server_tls.is_some() => {
                    log::warn!("{} TLS toward the backend failed: {e}", self.id);
                    self.audit(
                        ctx,
                        &AuditRecord::PolicyViolation {
                            kind: "backend_tls",
                            detail: e.to_string(),
                        },
                    );
                    self.close_server(ctx);
                    if self.closing.is_none() {
                        self.dispatch(Event::ServerTlsFailed, ctx);
                    }
                    return true;
                }
                Ok(ReadStep::Eof(_)) | Err(_) => {
                    self.close_server(ctx);
                    if self.closing.is_none() {
                        self.dispatch(Event::ServerClosed, ctx);
                    }
                    return true;
                }
            }
        }
    }

    /// Feeds complete reply lines to the parser and complete replies to the machine.
    /// Returns false when the backend connection was dropped.
    fn parse_server_replies(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        loop {
            let Some(server) = self.server.as_mut() else {
                return false;
            };
            let reply = match server.framer.next_line(&server.input) {
                Framed::Line { line_end, consumed } => {
                    let line = server.input.get(..line_end).unwrap_or(&[]);
                    let parsed = server.parser.push_line(line);
                    server.input.drain(..consumed.min(server.input.len()));
                    match parsed {
                        Ok(Some(reply)) => reply,
                        Ok(None) => continue,
                        Err(e) => {
                            log::warn!("{} backend sent an invalid reply: {e}", self.id);
                            self.close_server(ctx);
                            self.dispatch(Event::ServerProtocolError, ctx);
                            return false;
                        }
                    }
                }
                Framed::TooLong { .. } => {
                    log::warn!("{} backend reply line too long", self.id);
                    self.close_server(ctx);
                    self.dispatch(Event::ServerProtocolError, ctx);
                    return false;
                }
                Framed::Incomplete { consumed } => {
                    if consumed > 0 {
                        server.input.drain(..consumed.min(server.input.len()));
                        continue;
                    }
                    if server.input.is_empty() && server.input.capacity() > 0 {
                        server.input = Vec::new();
                    }
                    return true;
                }
            };
            log::debug!("{} <- backend {}", self.id, reply.code);
            self.dispatch(Event::ServerReply(reply), ctx);
        }
    }

    fn accept_passive(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let mut progress = false;
        // Bounded: a listener has a small backlog; stop after a handful per turn.
        for _ in 0..MAX_PASSIVE_ACCEPTS_PER_TURN {
            let Some(listener) = self.passive.as_ref() else {
                return progress;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    progress = true;
                    // SECURITY: port theft. Only the client's own address may connect to a
                    // passive port; anyone else is closed at once and recorded.
                    if !admission::data_source_allowed(peer.ip(), self.client_addr.ip()) {
                        self.theft_attempts = self.theft_attempts.saturating_add(1);
                        // Recorded one by one up to a bound, then only counted (in
                        // session_end): an intruder cannot fill the audit trail.
                        if self.theft_attempts <= MAX_THEFT_EVENTS_PER_SESSION {
                            log::warn!(
                                "{} passive connection from foreign {peer} refused",
                                self.id
                            );
                            let record = AuditRecord::PolicyViolation {
                                kind: "port_theft",
                                detail: format!("data connection from {peer}"),
                            };
                            self.audit(ctx, &record);
                        }
                        drop(stream);
                        continue;
                    }
                    net::tune_data_socket(&stream);
                    // One connection per passive port: the listener closes now.
                    if let Some(mut listener) = self.passive.take() {
                        let _ = ctx.registry.deregister(&mut listener);
                        ctx.passive
                            .release(&listener, self.client_addr.ip(), ctx.now);
                    }
                    self.drop_client_data(ctx);
                    if let Some(mut conn) = self.register_client_data(stream, false, ctx) {
                        if self.protect_client_data(&mut conn).is_err() {
                            let _ = ctx.registry.deregister(&mut conn.stream);
                            self.dispatch(Event::ClientDataFailed, ctx);
                            continue;
                        }
                        let protected = conn.tls.is_some();
                        self.client_data = Some(conn);
                        self.dispatch(client_data_up(protected), ctx);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return progress,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("{} passive accept failed: {e}", self.id);
                    return progress;
                }
            }
        }
        progress
    }

    fn progress_client_data(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(conn) = self.client_data.as_mut() else {
            return false;
        };
        if !conn.connecting {
            // Before the relay: drive a TLS handshake the client starts early (curl does,
            // before it sends RETR/STOR).
            let result = conn.handshake();
            let done = conn.tls.as_ref().is_some_and(|t| !t.is_handshaking());
            return match result {
                Ok(progress) => {
                    if done && !conn.tls_checked {
                        conn.tls_checked = true;
                        let acceptable = self
                            .client_data
                            .as_ref()
                            .is_some_and(|c| self.data_tls_acceptable(c));
                        if !acceptable {
                            self.refuse_data_tls(ctx);
                            self.drop_client_data(ctx);
                            self.dispatch(Event::ClientDataFailed, ctx);
                            return true;
                        }
                        // Only now may file data cross it (and the backend get the
                        // transfer command).
                        self.report_tls(ctx);
                        self.dispatch(Event::ClientDataConnected, ctx);
                        return true;
                    }
                    progress
                }
                Err(e) => {
                    log::info!("{} data connection TLS failed: {e}", self.id);
                    self.drop_client_data(ctx);
                    self.dispatch(Event::ClientDataFailed, ctx);
                    true
                }
            };
        }
        match conn.finish_connect() {
            None => false,
            Some(Ok(())) => {
                net::tune_data_socket(&conn.stream);
                let protected = conn.tls.is_some();
                self.dispatch(client_data_up(protected), ctx);
                true
            }
            Some(Err(e)) => {
                log::info!("{} active data connect failed: {e}", self.id);
                self.drop_client_data(ctx);
                self.dispatch(Event::ClientDataFailed, ctx);
                true
            }
        }
    }

    fn progress_server_data(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(conn) = self.server_data.as_mut() else {
            return false;
        };
        if !conn.connecting {
            return false;
        }
        match conn.finish_connect() {
            None => false,
            Some(Ok(())) => {
                net::tune_data_socket(&conn.stream);
                self.cancel_deadline(TIMER_SERVER_DATA_CONNECT, ctx);
                self.dispatch(Event::ServerDataConnected, ctx);
                true
            }
            Some(Err(e)) => {
                log::warn!("{} backend data connect failed: {e}", self.id);
                self.drop_server_data(ctx);
                self.dispatch(Event::ServerDataFailed, ctx);
                true
            }
        }
    }

    fn progress_relay(&mut self, ctx: &mut WorkerCtx<'_>, budget: &mut usize) -> bool {
        let Some(relay) = self.relay.as_mut() else {
            return false;
        };
        let mut progress = false;
        // The client's data TLS: its handshake may run during the relay (ftplib wraps the
        // socket after the 150), and records may wait to go out on either side.
        let client_tls = relay
            .client
            .handshake()
            .and_then(|_| relay.client.flush_tls());
        let source_tls = relay
            .server
            .handshake()
            .and_then(|_| relay.server.flush_tls());
        if client_tls.is_err() || source_tls.is_err() {
            let side = if client_tls.is_err() {
                Side::Client
            } else {
                Side::Server
            };
            let report = self.stop_data(ctx).unwrap_or_default();
            self.dispatch(Event::RelayFailed { report, side }, ctx);
            return true;
        }
        let handshake_done = relay
            .client
            .tls
            .as_ref()
            .is_some_and(|t| !t.is_handshaking());
        if handshake_done && !relay.client.tls_checked {
            relay.client.tls_checked = true;
            let acceptable = self
                .relay
                .as_ref()
                .is_some_and(|r| self.data_tls_acceptable(&r.client));
            if !acceptable {
                self.refuse_data_tls(ctx);
                let report = self.stop_data(ctx).unwrap_or_default();
                self.dispatch(
                    Event::RelayFailed {
                        report,
                        side: Side::Client,
                    },
                    ctx,
                );
                return true;
            }
        }
        let Some(relay) = self.relay.as_mut() else {
            return false;
        };
        let outcome = pump(relay, budget, ctx.now, ctx.copier);
        match outcome {
            Pump::Progress => progress = true,
            Pump::Stalled => {}
            Pump::Done => {
                let elapsed = ctx.now.saturating_duration_since(relay.started);
                log::debug!(
                    "{} relay done: {} bytes {} in {elapsed:?}",
                    self.id,
                    relay.bytes,
                    relay.direction.as_str()
                );
                // The copy is settled apart: the final reply waits for it.
                let copy = relay.copy.take();
                let report = self.stop_data(ctx).unwrap_or_default();
                match copy {
                    Some(copy) => self.copy_relayed(copy, report, ctx),
                    None => self.dispatch(Event::RelayDone(report), ctx),
                }
                return true;
            }
            Pump::Failed(side) => {
                let report = self.stop_data(ctx).unwrap_or_default();
                self.dispatch(Event::RelayFailed { report, side }, ctx);
                return true;
            }
            Pump::OverLimit => {
                log::info!(
                    "{} transfer stopped at the file size limit ({} bytes)",
                    self.id,
                    relay.bytes
                );
                let report = self.stop_data(ctx).unwrap_or_default();
                self.dispatch(Event::RelayOverLimit(report), ctx);
                return true;
            }
            Pump::Throttled(wait) => {
                if self.deadlines[TIMER_RATE as usize].is_none() {
                    self.set_deadline(TIMER_RATE, wait, ctx);
                }
                return progress;
            }
            Pump::CopyWait => {
                if self.deadlines[TIMER_COPY as usize].is_none() {
                    self.set_deadline(TIMER_COPY, Duration::from_millis(FILECOPY_RETRY_MS), ctx);
                }
                return progress;
            }
        }
        progress
    }

    fn flush_server(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(server) = self.server.as_mut() else {
            return false;
        };
        match flush(&mut server.conn, &mut server.output) {
            Ok(progress) => progress,
            Err(e) => {
                log::info!("{} backend write failed: {e}", self.id);
                self.close_server(ctx);
                if self.closing.is_none() {
                    self.dispatch(Event::ServerClosed, ctx);
                }
                true
            }
        }
    }

    fn flush_client(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        match flush(&mut self.client.conn, &mut self.client.output) {
            Ok(progress) => {
                if self.tls_upgrade && self.client.output.is_empty() {
                    self.start_client_tls(ctx);
                    return true;
                }
                progress
            }
            Err(e) => {
                log::debug!("{} client write failed: {e}", self.id);
                self.client.output.clear();
                if self.closing.is_none() {
                    self.dispatch(Event::ClientClosed, ctx);
                }
                true
            }
        }
    }

    /// AUTH TLS: the 234 has left in plaintext; from here on the control connection is TLS.
    fn start_client_tls(&mut self, ctx: &mut WorkerCtx<'_>) {
        self.tls_upgrade = false;
        // SECURITY: STARTTLS command injection (CVE-2011-0411 class). Whatever the client
        // sent after AUTH TLS before the handshake is plaintext nobody authenticated: it is
        // discarded, never run as commands.
        if !self.client.input.is_empty() {
            let detail = format!(
                "{} plaintext bytes after AUTH TLS discarded",
                self.client.input.len()
            );
            log::warn!("{} {detail}", self.id);
            self.audit(
                ctx,
                &AuditRecord::PolicyViolation {
                    kind: "starttls_injection",
                    detail,
                },
            );
            self.client.input = Vec::new();
        }
        self.client.framer = LineFramer::new(MAX_COMMAND_LINE);
        self.client.telnet = TelnetFilter::new();
        match self.tls_config.as_ref().map(tls::accept) {
            Some(Ok(conn)) => {
                self.client.conn.tls = Some(conn);
                // The ClientHello may already wait in the socket.
                self.client.conn.readable = true;
            }
            _ => {
                log::error!("{} cannot start TLS", self.id);
                self.client.output.clear();
                self.closing = Some(CloseReason::ClientClosed);
            }
        }
    }

    fn refuse_data_tls(&mut self, ctx: &mut WorkerCtx<'_>) {
        log::warn!(
            "{} data connection did not resume the control TLS session",
            self.id
        );
        self.audit(
            ctx,
            &AuditRecord::PolicyViolation {
                kind: "tls_session_reuse",
                detail: "data connection TLS did not resume the control session".into(),
            },
        );
    }

    /// Records each TLS handshake once it is done: which connection, the protocol version,
    /// the cipher suite, whether the session was resumed, the ALPN protocol.
    fn report_tls(&mut self, ctx: &mut WorkerCtx<'_>) {
        let mut records = Vec::new();
        let relay = self.relay.as_mut();
        let (client_data, server_data) = match relay {
            Some(r) => (Some(&mut r.client), Some(&mut r.server)),
            None => (self.client_data.as_mut(), self.server_data.as_mut()),
        };
        let conns = [
            ("control", "client", Some(&mut self.client.conn)),
            (
                "control",
                "backend",
                self.server.as_mut().map(|s| &mut s.conn),
            ),
            ("data", "client", client_data),
            ("data", "backend", server_data),
        ];
        for (channel, side, conn) in conns {
            let Some(conn) = conn else { continue };
            if conn.tls_reported {
                continue;
            }
            let Some(summary) = conn.tls.as_ref().and_then(|t| tls::summary(t)) else {
                continue;
            };
            conn.tls_reported = true;
            records.push(AuditRecord::Tls {
                channel,
                side,
                version: summary.version,
                cipher: summary.cipher,
                resumed: summary.resumed,
                alpn: summary.alpn,
            });
        }
        for record in records {
            self.audit(ctx, &record);
        }
    }

    /// The backend answered AUTH TLS with 234: TLS on its control connection from here.
    fn start_server_tls(&mut self) {
        let (Some(server), Some((config, client, _))) =
            (self.server.as_mut(), self.server_tls.as_ref())
        else {
            return;
        };
        // Nothing the backend sent after its 234 is trusted.
        server.input.clear();
        match tls::connect(config, client.server_name(server.addr.ip())) {
            Ok(tls) => {
                server.conn.tls = Some(tls);
                server.conn.readable = true;
            }
            Err(e) => {
                log::warn!("{} cannot start TLS toward the backend: {e}", self.id);
                self.push(Event::ServerTlsFailed);
            }
        }
    }

    /// Wraps a client data connection in TLS when the client asked for PROT P.
    fn protect_client_data(&self, conn: &mut Conn) -> io::Result<()> {
        if self.fsm.data_protected() {
            if let Some(config) = self.tls_config.as_ref() {
                conn.tls = Some(tls::accept(config)?);
            }
        }
        Ok(())
    }

    /// Whether a finished data-connection handshake passes the session-reuse rule
    /// ([`admission::data_tls_acceptable`]).
    fn data_tls_acceptable(&self, conn: &Conn) -> bool {
        let required = self
            .fsm
            .user()
            .and_then(|u| self.policy.user(&u.name))
            .is_none_or(|u| u.tls_session_reuse);
        admission::data_tls_acceptable(conn.tls.as_ref().map(|t| tls::resumed(t)), required)
    }

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

/// The event for a client data connection that came up: ready at once in plain text; a
/// protected one only once its TLS handshake is finished and accepted.
fn client_data_up(protected: bool) -> Event<'static> {
    if protected {
        Event::ClientDataTlsPending
    } else {
        Event::ClientDataConnected
    }
}
