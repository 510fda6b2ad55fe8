//! The event loop of one worker process: one `mio::Poll`, sessions in a slab addressed by
//! token, a timer heap that sets the poll timeout, and the control listeners.
//!
//! The reactor knows nothing of FTP. It accepts connections, routes readiness to the
//! session that owns the socket, drives sessions, fires their timers and removes the ones
//! that finished. A session's slot is freed only after the event batch that closed it, so
//! a late event in the same batch can never reach a new session in a reused slot.
//!
//! This file holds the worker's state, its loop and its signals (reload included);
//! `listeners.rs` accepting and the listeners' changes at a reload, `reload.rs` a SIGHUP's
//! new policy and its audit event, `pending.rs` the
//! connections that wait for their PROXY header, `drain.rs` a stopping worker, `probes.rs`
//! the backends' FEAT probes and health checks, `timer.rs` the timer heap, `pool.rs` the
//! relay buffers.

mod admin;
mod drain;
mod listeners;
mod metrics_http;
pub mod pending;
pub mod pool;
pub mod probes;
mod reload;
mod shared_passive;
pub mod timer;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpListener;
use mio::unix::pipe;
use mio::{Events, Interest, Poll, Token};

use crate::audit::AuditSink;
use crate::counters::SharedCounters;
use crate::filecopy::{FileCopier, Report};
use crate::limits::{
    ACCEPT_BACKOFF_MS, CLOSE_LINGER_SECONDS, FILECOPY_RETENTION_INTERVAL, FILECOPY_RETRY_MS,
    MAX_ACCEPTS_PER_TURN, MAX_LISTENERS, MAX_RELAY_BUFFERS, RELAY_BUFFER_SIZE,
};
use crate::os;
use crate::policy::Policy;
use crate::services::backends::BackendBook;
use crate::services::passive::PassivePorts;
use crate::services::rate::TokenBucket;
use crate::services::sockets::bind_control_listener;
use crate::services::token::{MAX_SLOTS, MAX_TOKEN, SessionToken};

// The reactor's own tokens lie above every session token: first the pending PROXY
// connections', then the listeners' and the rest.
const _: () = assert!(MAX_TOKEN < PENDING_BASE);
const _: () = assert!(PENDING_BASE + pending::TOKENS <= SPECIAL_BASE);
/// The first token of the connections that wait for their PROXY header.
const PENDING_BASE: usize = MAX_TOKEN + 1;
/// The admin socket's tokens ([`admin::TOKENS`]), just below the special ones.
const ADMIN_BASE: usize = SPECIAL_BASE - admin::TOKENS;
/// The metrics port's tokens ([`metrics_http::TOKENS`]), below the admin socket's.
const METRICS_BASE: usize = ADMIN_BASE - metrics_http::TOKENS;
/// The shared passive listeners' tokens (`passive.shared`), above the pending ones.
const SHARED_PASSIVE_BASE: usize = PENDING_BASE + pending::TOKENS;
const _: () =
    assert!(SHARED_PASSIVE_BASE + crate::services::shared_passive::TOKENS <= METRICS_BASE);
use crate::services::{ListenerConfig, SessionKey, WorkerCtx};
use crate::session::{DriveOutcome, Session};
use crate::tls::{TlsClient, TlsServer};
pub use admin::AdminConfig;
use pool::BufferPool;
use std::cell::RefCell;
use std::collections::HashMap;
use timer::TimerHeap;

/// Tokens at and above this value are not sessions.
const SPECIAL_BASE: usize = usize::MAX - 4096;
/// The `FEAT` probes' tokens ([`probes::PROBE_TOKENS`] of them), above the listeners'
/// (`SPECIAL_BASE + i`, at most [`MAX_LISTENERS`]) and below the wake and copy tokens.
const PROBE_BASE: usize = SPECIAL_BASE + MAX_LISTENERS;
const _: () = assert!(PROBE_BASE + probes::PROBE_TOKENS < usize::MAX - 2);
const WAKE_TOKEN: Token = Token(usize::MAX - 1);
/// The filecopy writer has reports.
const COPY_TOKEN: Token = Token(usize::MAX - 2);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(ACCEPT_BACKOFF_MS);
const CLOSE_LINGER: Duration = Duration::from_secs(CLOSE_LINGER_SECONDS);

/// What a worker needs to start.
pub struct WorkerConfig {
    pub index: usize,
    pub count: usize,
    pub policy: Rc<Policy>,
    pub policy_path: Option<std::path::PathBuf>,
    /// Session counters shared with the other workers (private when there are none).
    pub counters: SharedCounters,
    /// Readiness and reload notifications: to systemd, or to the supervisor.
    pub notify: crate::notify::Notifier,
    /// Listeners bound before root was given up (see `privileges`), by address; the
    /// policy's other listeners are bound here.
    pub inherited: Vec<(SocketAddr, TcpListener)>,
    /// Where this worker's admin socket goes (`--admin`); None: no admin socket.
    pub admin: Option<AdminConfig>,
    /// The loopback HTTP port of the metrics (`metrics.listen`; worker 0 serves it).
    pub metrics_listen: Option<SocketAddr>,
}

struct Slot {
    session: Option<Session>,
    generation: u64,
}

pub struct Worker {
    poll: Poll,
    events: Events,
    listeners: Vec<(TcpListener, SocketAddr)>,
    /// Listeners that reported readiness and have not yet returned WouldBlock.
    accept_pending: Vec<bool>,
    /// What each listener asks of its sessions (TLS mode and requirement).
    listener_configs: Vec<ListenerConfig>,
    slots: Vec<Slot>,
    free: Vec<usize>,
    policy: Rc<Policy>,
    policy_path: Option<std::path::PathBuf>,
    notify: crate::notify::Notifier,
    /// What the worker lends its sessions on every call ([`WorkerCtx`]).
    services: Services,
    wake: pipe::Receiver,
    _wake_sender: pipe::Sender,
    /// The filecopy writer thread's reports.
    copy_reports: mpsc::Receiver<Report>,
    copy_report_sender: mpsc::Sender<Report>,
    copy_waker: Arc<mio::Waker>,
    /// When worker 0 next asks the writer for a retention pass.
    next_retention: Instant,
    index: usize,
    session_prefix: String,
    session_counter: u64,
    accept_paused_until: Option<Instant>,
    stopping_since: Option<Instant>,
    /// The sessions were told the worker stops (idle ones close at once).
    sessions_told: bool,
    /// The drain deadline passed and the sessions were told (421, transfers cut).
    deadline_told: bool,
    /// Sessions that stopped for fairness and must be driven again.
    again: Vec<usize>,
    /// The `FEAT` probes of the backend pools (what `FEAT` advertises before login).
    probes: probes::Prober,
    /// Connections to `proxy_protocol` listeners waiting for their PROXY header.
    pending: pending::Pending,
    /// The admin socket (`ftpgate sessions`, `kill`, `drain`).
    admin: admin::AdminServer,
    /// The metrics port (worker 0, `metrics.listen`).
    metrics_http: metrics_http::MetricsHttp,
}

/// The parts of the worker its sessions use, lent to one session at a time as a
/// [`WorkerCtx`].
struct Services {
    /// TLS toward clients, from the policy's `tls` section.
    tls: Option<TlsServer>,
    /// TLS toward the backends that use it, by backend name.
    backend_tls: HashMap<String, TlsClient>,
    timers: TimerHeap,
    pool: BufferPool,
    audit: AuditSink,
    metrics: crate::metrics::Metrics,
    passive: PassivePorts,
    backends: BackendBook,
    counters: SharedCounters,
    /// Per-user rate buckets, dropped when no session of the user holds them.
    user_buckets: HashMap<String, Rc<RefCell<TokenBucket>>>,
    /// Filecopy mode: the writer thread (started when a policy first asks for filecopy, kept
    /// for the life of the worker).
    copier: Option<FileCopier>,
    /// The backend features `FEAT` advertises before login, learned by the probes.
    features: Rc<[String]>,
}

impl Services {
    fn passive_has_ready(&self) -> bool {
        self.passive.shared_ref().is_some_and(|s| s.has_ready())
    }

    fn ctx<'a>(&'a mut self, registry: &'a mio::Registry, now: Instant) -> WorkerCtx<'a> {
        WorkerCtx {
            registry,
            timers: &mut self.timers,
            pool: &self.pool,
            audit: &mut self.audit,
            metrics: &mut self.metrics,
            passive: &mut self.passive,
            backends: &mut self.backends,
            counters: &self.counters,
            user_buckets: &mut self.user_buckets,
            tls: self.tls.as_ref(),
            backend_tls: &self.backend_tls,
            copier: self.copier.as_ref(),
            features: &self.features,
            now,
        }
    }
}

impl Worker {
    /// Binds the listeners and prepares the loop. Errors here stop the worker before it
    /// serves anyone.
    pub fn new(mut config: WorkerConfig) -> io::Result<Worker> {
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        let mut listener_configs = Vec::new();
        let tls = load_tls(&config.policy)?;
        let backend_tls = load_backend_tls(&config.policy)?;
        if config.policy.listeners.len() > MAX_LISTENERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("more than {MAX_LISTENERS} listeners"),
            ));
        }
        for (i, listener) in config.policy.listeners.iter().enumerate() {
            listener_configs.push(ListenerConfig {
                tls: listener.tls,
                require: listener.require,
                proxy_protocol: listener.proxy_protocol,
            });
            let inherited = config
                .inherited
                .iter()
                .position(|(a, _)| *a == listener.address)
                .map(|pos| config.inherited.swap_remove(pos).1);
            let mut socket = match inherited {
                Some(socket) => socket,
                None => bind_control_listener(listener.address).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot listen on {}: {e}", listener.address),
                    )
                })?,
            };
            poll.registry()
                .register(&mut socket, Token(SPECIAL_BASE + i), Interest::READABLE)?;
            listeners.push((socket, listener.address));
        }
        let (sender, mut receiver) = pipe::new()?;
        poll.registry()
            .register(&mut receiver, WAKE_TOKEN, Interest::READABLE)?;
        os::install_signal_handlers(&sender)?;
        let audit = AuditSink::open(&config.policy.audit, config.index as u32)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open the audit file: {e}")))?;
        let (first, last) = config.policy.passive.ports;
        let mut passive = PassivePorts::slice(first, last, config.index, config.count);
        if config.policy.passive.shared {
            passive = passive.with_sharing(SHARED_PASSIVE_BASE, Instant::now());
        }
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let (copy_report_sender, copy_reports) = mpsc::channel();
        let copy_waker = Arc::new(mio::Waker::new(poll.registry(), COPY_TOKEN)?);
        if let Some(filecopy) = &config.policy.audit.filecopy {
            // At start, before anyone is served (the event loop never touches the disk).
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(&filecopy.directory)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot create the filecopy directory {}: {e}",
                            filecopy.directory.display()
                        ),
                    )
                })?;
        }
        let probes = probes::Prober::new(PROBE_BASE, &config.policy, Instant::now());
        let admin = admin::AdminServer::open(
            config.admin.as_ref(),
            config.index,
            poll.registry(),
            ADMIN_BASE,
        );
        let metrics_http = metrics_http::MetricsHttp::open(
            config.metrics_listen,
            config.index,
            config.count,
            config.admin.as_ref().map(|a| a.dir.clone()),
            poll.registry(),
            METRICS_BASE,
        );
        let mut worker = Worker {
            poll,
            events: Events::with_capacity(1024),
            accept_pending: vec![false; listeners.len()],
            listener_configs,
            listeners,
            slots: Vec::new(),
            free: Vec::new(),
            policy: config.policy,
            policy_path: config.policy_path,
            notify: config.notify,
            services: Services {
                tls,
                backend_tls,
                timers: TimerHeap::new(crate::session::TIMER_SLOTS),
                pool: BufferPool::new(RELAY_BUFFER_SIZE, MAX_RELAY_BUFFERS),
                audit,
                metrics: crate::metrics::Metrics::new(),
                passive,
                backends: BackendBook::new(),
                counters: config.counters,
                user_buckets: HashMap::new(),
                copier: None,
                features: probes.offered(),
            },
            wake: receiver,
            _wake_sender: sender,
            index: config.index,
            session_prefix: format!("{started:x}-{:x}", std::process::id()),
            session_counter: 0,
            accept_paused_until: None,
            stopping_since: None,
            sessions_told: false,
            deadline_told: false,
            again: Vec::new(),
            copy_reports,
            copy_report_sender,
            copy_waker,
            next_retention: Instant::now(),
            probes,
            pending: pending::Pending::new(PENDING_BASE, Instant::now()),
            admin,
            metrics_http,
        };
        worker.start_copier()?;
        Ok(worker)
    }

    /// Starts the filecopy writer thread when the policy asks for filecopy and none runs.
    fn start_copier(&mut self) -> io::Result<()> {
        if self.services.copier.is_some() || self.policy.audit.filecopy.is_none() {
            return Ok(());
        }
        let waker = Arc::clone(&self.copy_waker);
        let notify = Box::new(move || {
            let _ = waker.wake();
        });
        let copier = FileCopier::spawn(self.index, self.copy_report_sender.clone(), notify)
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start the filecopy writer: {e}"))
            })?;
        self.services.copier = Some(copier);
        Ok(())
    }

    /// Routes the filecopy writer's reports to their sessions.
    fn copy_reports(&mut self, now: Instant, touched: &mut Vec<usize>) {
        while let Ok(report) = self.copy_reports.try_recv() {
            let Report { owner, id, result } = report;
            let mut ctx = self.services.ctx(self.poll.registry(), now);
            let unclaimed = match self.slots.get_mut(owner.slot) {
                Some(Slot {
                    session: Some(session),
                    generation,
                }) if *generation == owner.generation => {
                    touched.push(owner.slot);
                    session.on_copy_report(id, result, &mut ctx)
                }
                _ => Some(result),
            };
            // A copy nobody waits for (its transfer failed or was aborted): only a failure
            // is worth a word.
            if let Some(Err(reason)) = unclaimed {
                log::error!("audit copy of an ended transfer failed: {reason}");
            }
        }
    }

    /// Filecopy housekeeping once per turn: queued messages to the writer, and (worker 0)
    /// the retention pass once a minute.
    fn copy_tick(&mut self, now: Instant) {
        let Some(copier) = self.services.copier.as_ref() else {
            return;
        };
        copier.flush_backlog();
        if self.index == 0 && now >= self.next_retention {
            self.next_retention = now + Duration::from_secs(FILECOPY_RETENTION_INTERVAL);
            if let Some(filecopy) = &self.policy.audit.filecopy {
                copier.retention(&filecopy.directory, filecopy.retention_days);
            }
        }
    }

    /// The `STATUS=` line systemd shows: where the worker listens.
    fn status(&self) -> String {
        let addrs: Vec<String> = self.local_addrs().iter().map(|a| a.to_string()).collect();
        format!("worker {} serving on {}", self.index, addrs.join(", "))
    }

    /// The addresses the worker listens on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Runs until stopped by SIGTERM/SIGINT and drained.
    pub fn run(&mut self) -> io::Result<()> {
        log::info!(
            "worker {} listening on {:?}, passive ports {:?}",
            self.index,
            self.local_addrs(),
            self.services.passive.range()
        );
        self.notify.ready(&self.status());
        let mut touched: Vec<usize> = Vec::new();
        loop {
            let now = Instant::now();
            let timeout = self.poll_timeout(now);
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            touched.clear();
            touched.append(&mut self.again);
            let mut woken = false;
            for event in self.events.iter() {
                let token = event.token();
                if token == WAKE_TOKEN {
                    woken = true;
                } else if token == COPY_TOKEN {
                    // Reports are read below, every turn.
                } else if self.pending.on_ready(token) {
                    // Looked at below, with the accepts.
                } else if self
                    .services
                    .passive
                    .shared()
                    .is_some_and(|shared| shared.on_ready(token))
                {
                    // Accepted below, after the control listeners.
                } else if self.metrics_http.owns(token) {
                    self.metrics_http.on_ready(token);
                } else if self.admin.owns(token) {
                    self.admin.on_ready(token);
                } else if self.probes.owns(token) {
                    self.probes.on_ready(token, event);
                } else if token.0 >= SPECIAL_BASE {
                    if let Some(pending) = self.accept_pending.get_mut(token.0 - SPECIAL_BASE) {
                        *pending = true;
                    }
                } else if let Some(t) = SessionToken::decode(token) {
                    // A stale event (the slot's session ended and another took the slot)
                    // carries the old generation and is dropped.
                    if let Some(Slot {
                        session: Some(session),
                        generation,
                    }) = self.slots.get_mut(t.slot)
                    {
                        if t.is_current(*generation) {
                            session.on_ready(t.role, event);
                            touched.push(t.slot);
                        }
                    }
                }
            }
            if woken {
                self.drain_wake();
            }
            self.handle_signals(now);
            if self.stopping_since.is_some() && os::STOP_SIGNALS.load(Ordering::SeqCst) >= 2 {
                // A second SIGTERM: no more draining.
                log::warn!("worker {}: stopping at once", self.index);
                self.close_all(now);
                return Ok(());
            }
            self.tell_sessions(now, &mut touched);
            self.copy_reports(now, &mut touched);
            self.copy_tick(now);
            // Sends held syslog messages and brings back a failed audit sink (reporting its
            // loss) even when no event or connection comes along.
            self.services.audit.tick(now);
            self.probes.tick(
                now,
                self.poll.registry(),
                &self.services.backend_tls,
                &mut self.services.backends,
            );
            if let Some(features) = self.probes.take_changed() {
                self.services.features = features;
            }
            if self.stopping_since.is_none() && self.accept_paused_until.is_none_or(|t| t <= now) {
                self.accept_paused_until = None;
                for i in 0..self.listeners.len() {
                    if self.accept_pending.get(i).copied().unwrap_or(false) {
                        self.accept(i, now, &mut touched);
                    }
                }
            }
            self.pending_headers(now, &mut touched);
            self.shared_passive_accepts(now, &mut touched);
            self.admin_turn(now, &mut touched);
            self.metrics_turn(now);
            touched.sort_unstable();
            touched.dedup();
            let mut finished = Vec::new();
            for &slot in &touched {
                self.drive(slot, now, &mut finished);
            }
            while let Some(entry) = self.services.timers.pop_due(now) {
                let mut ctx = self.services.ctx(self.poll.registry(), now);
                let Some(Slot {
                    session: Some(session),
                    generation,
                }) = self.slots.get_mut(entry.slot)
                else {
                    continue;
                };
                if *generation != entry.generation {
                    continue;
                }
                session.on_timer(&entry, &mut ctx);
                self.drive(entry.slot, now, &mut finished);
            }
            for slot in finished {
                self.remove(slot, now);
            }
            if let Some(since) = self.stopping_since {
                let live = self.slots.iter().filter(|s| s.session.is_some()).count();
                if live == 0 {
                    log::info!("worker {} stopped", self.index);
                    return Ok(());
                }
                // The 421s of the deadline had their moment to leave: whatever is left goes.
                let drain = Duration::from_secs(self.policy.drain_timeout);
                if now.saturating_duration_since(since) > drain + CLOSE_LINGER {
                    log::warn!(
                        "worker {}: dropping {live} sessions after the drain",
                        self.index
                    );
                    self.close_all(now);
                    return Ok(());
                }
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let accept_now = self.stopping_since.is_none()
            && self.accept_paused_until.is_none()
            && self.accept_pending.iter().any(|&p| p);
        let shared_ready = self.accept_paused_until.is_none() && self.services.passive_has_ready();
        if !self.again.is_empty() || accept_now || shared_ready {
            return Some(Duration::ZERO);
        }
        let mut timeout = self.services.timers.next_timeout(now);
        if let Some(until) = self.accept_paused_until {
            let pause = until.saturating_duration_since(now);
            timeout = Some(timeout.map_or(pause, |t| t.min(pause)));
        }
        if self.stopping_since.is_some() {
            let tick = Duration::from_secs(1);
            timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
        }
        if let Some(tick) = self.services.audit.next_tick() {
            timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
        }
        if let Some(deadline) = self.metrics_http.next_deadline() {
            let tick = deadline.saturating_duration_since(now);
            timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
        }
        if let Some(deadline) = self.admin.next_deadline() {
            let tick = deadline.saturating_duration_since(now);
            timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
        }
        if let Some(deadline) = self.pending.next_deadline() {
            let tick = deadline.saturating_duration_since(now);
            timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
        }
        if let Some(tick) = self.probes.next_timeout(now) {
            timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
        }
        if let Some(copier) = self.services.copier.as_ref() {
            let mut tick = if copier.backlog_len() > 0 {
                Duration::from_millis(FILECOPY_RETRY_MS)
            } else {
                Duration::MAX
            };
            if self.index == 0 {
                tick = tick.min(self.next_retention.saturating_duration_since(now));
            }
            if tick < Duration::MAX {
                timeout = Some(timeout.map_or(tick, |t| t.min(tick)));
            }
        }
        timeout
    }

    fn drain_wake(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            match io::Read::read(&mut self.wake, &mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn handle_signals(&mut self, now: Instant) {
        if os::STOP_REQUESTED.load(Ordering::SeqCst) && self.stopping_since.is_none() {
            log::info!("worker {}: stopping, draining sessions", self.index);
            self.stopping_since = Some(now);
            for (listener, _) in &mut self.listeners {
                let _ = self.poll.registry().deregister(listener);
            }
            self.listeners.clear();
            self.accept_pending.clear();
            self.probes.stop(self.poll.registry());
            self.notify.stopping();
        }
        if os::RELOAD_REQUESTED.swap(false, Ordering::SeqCst) {
            self.notify.reloading();
            let outcome = self.reload();
            self.audit_reload(&outcome);
            let status = match outcome {
                Ok(()) => format!("{}; policy reloaded", self.status()),
                Err(why) => format!(
                    "{}; reload refused, old policy kept: {}",
                    self.status(),
                    why.first().map_or("", String::as_str)
                ),
            };
            self.notify.ready(&status);
        }
        if os::REOPEN_REQUESTED.swap(false, Ordering::SeqCst) {
            // logrotate's postrotate: the file only, the policy stays as it is.
            match self.services.audit.reopen() {
                Ok(()) => log::info!("worker {}: audit trail reopened", self.index),
                Err(e) => log::error!("cannot reopen the audit trail: {e}"),
            }
        }
        if os::STATS_REQUESTED.swap(false, Ordering::SeqCst) {
            self.log_stats();
        }
    }

    /// SIGUSR1: one line with what the worker holds, each figure bounded by a constant of
    /// `limits` (the attack tests read it to measure those bounds).
    fn log_stats(&self) {
        let sessions = self.slots.iter().filter_map(|s| s.session.as_ref());
        let (count, buffered) =
            sessions.fold((0usize, 0usize), |(n, b), s| (n + 1, b + s.buffered()));
        log::info!(
            "stats: worker={} sessions={count} slots={} timers={} relay_buffers={} session_buffers={buffered}",
            self.index,
            self.slots.len(),
            self.services.timers.len(),
            self.services.pool.in_use(),
        );
    }

    fn drive(&mut self, slot: usize, now: Instant, finished: &mut Vec<usize>) {
        let mut ctx = self.services.ctx(self.poll.registry(), now);
        let Some(Slot {
            session: Some(session),
            ..
        }) = self.slots.get_mut(slot)
        else {
            return;
        };
        match session.drive(&mut ctx) {
            DriveOutcome::Idle => {}
            DriveOutcome::Again => self.again.push(slot),
            DriveOutcome::Closed => {
                if !finished.contains(&slot) {
                    finished.push(slot);
                }
            }
        }
    }

    fn remove(&mut self, slot: usize, now: Instant) {
        let mut ctx = self.services.ctx(self.poll.registry(), now);
        let Some(entry) = self.slots.get_mut(slot) else {
            return;
        };
        if let Some(mut session) = entry.session.take() {
            session.finish(&mut ctx);
            entry.generation = session.generation();
            self.services
                .user_buckets
                .retain(|_, b| Rc::strong_count(b) > 1);
            self.again.retain(|&s| s != slot);
            self.free.push(slot);
        }
    }
}

/// Loads the certificates and keys the policy names (None: no TLS configured).
fn load_tls(policy: &Policy) -> io::Result<Option<TlsServer>> {
    let Some(tls) = &policy.tls else {
        return Ok(None);
    };
    let invalid =
        |at: String, e: String| io::Error::new(io::ErrorKind::InvalidData, format!("{at}: {e}"));
    let mut identities = Vec::with_capacity(tls.identities.len());
    for (i, identity) in tls.identities.iter().enumerate() {
        let key = crate::tls::load_identity(&identity.certificate, &identity.private_key)
            .map_err(|e| invalid(tls.identity_path(i).to_string(), e))?;
        identities.push(key);
    }
    TlsServer::new(identities)
        .map(Some)
        .map_err(|e| invalid("tls".to_owned(), e))
}

/// Loads the TLS settings of every backend that uses TLS (CA file or pin, client identity).
pub fn load_backend_tls(policy: &Policy) -> io::Result<HashMap<String, TlsClient>> {
    let mut clients = HashMap::new();
    for backend in policy.backends.values() {
        if backend.tls == crate::policy::TlsMode::None {
            continue;
        }
        let client = TlsClient::load(&backend.tls_settings).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("backends.{}: tls: {e}", backend.name),
            )
        })?;
        clients.insert(backend.name.clone(), client);
    }
    Ok(clients)
}
