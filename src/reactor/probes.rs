//! The socket side of the `FEAT` probes and health checks: connects to the backends the
//! [`FeatureBook`] names, feeds each connection's readiness to its [`FeatProbe`] and carries
//! out what the machine asks (send, start TLS, close), then hands the `FEAT` result back to
//! the book and the health verdict to the worker's [`BackendBook`] (a pool with
//! `health_check`): a server that fails is out of rotation until a check succeeds.
//!
//! The worker's event loop calls [`Prober::on_ready`] for the probe tokens (a range of its
//! own, two tokens per pool: the low bit is a generation, so an event for a probe that was
//! replaced in the same pool is dropped), [`Prober::tick`] once per turn, and asks
//! [`Prober::next_timeout`] for the poll timeout. Nothing here blocks: connects are
//! non-blocking, every socket is drained to `WouldBlock` (at most
//! [`MAX_FEATURE_PROBE_ITERATIONS`] per turn), and each step of a probe has its deadline.
//! A pool has at most one probe connection at a time: the book learns a result when the
//! connection is closed, and only then names the pool's next server.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::features::{
    FeatProbe, Feature, FeatureBook, ProbeAction, ProbeError, ProbeEvent, ProbeStep, ProbeTarget,
};
use crate::limits::{FEATURE_PROBE_READ_CHUNK, MAX_FEATURE_PROBE_ITERATIONS, MAX_PROBED_POOLS};
use crate::policy::{Policy, TlsMode};
use crate::services::backends::BackendBook;
use crate::services::sockets as net;
use crate::tls::{self, TlsClient};

/// Tokens a [`Prober`] uses from its base: two per pool.
pub const PROBE_TOKENS: usize = 2 * MAX_PROBED_POOLS;

/// One probe connection.
struct Live {
    target: ProbeTarget,
    token: Token,
    stream: TcpStream,
    /// Implicit-TLS pools: TLS from the first byte; explicit ones after `AUTH TLS`.
    tls: Option<Box<rustls::Connection>>,
    /// The pool's TLS settings, for `AUTH TLS` (explicit-TLS pools under health checks).
    tls_client: Option<TlsClient>,
    connecting: bool,
    readable: bool,
    writable: bool,
    /// Bytes queued toward the server (`FEAT`, `QUIT`: a few bytes).
    output: Vec<u8>,
    fsm: FeatProbe,
    /// The machine's `FEAT` result, handed to the book when the connection is closed.
    result: Option<Result<Vec<Feature>, ProbeError>>,
    /// The machine's health verdict, handed to the backend book.
    verdict: Option<Result<(), ProbeError>>,
}

/// What reading once gave.
enum Read1 {
    Data(usize),
    Eof,
    Blocked,
}

impl Live {
    /// mio's non-blocking connect protocol: writable, then `take_error`, then `peer_addr`.
    fn finish_connect(&mut self) -> Option<io::Result<()>> {
        let done = net::finish_connect(&self.stream, &mut self.writable);
        if matches!(done, Some(Ok(()))) {
            self.connecting = false;
        }
        done
    }

    /// Writes what is queued (through TLS where there is TLS) while the socket takes it.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(conn) = self.tls.as_mut() {
            while !self.output.is_empty() {
                let n = tls::write(conn, &mut self.stream, &mut self.writable, &self.output)?;
                if n == 0 {
                    break;
                }
                self.output.drain(..n);
            }
            tls::flush(conn, &mut self.stream, &mut self.writable)?;
            return Ok(());
        }
        while !self.output.is_empty() && self.writable {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<Read1> {
        if let Some(conn) = self.tls.as_mut() {
            return Ok(
                match tls::read(
                    conn,
                    &mut self.stream,
                    &mut self.readable,
                    &mut self.writable,
                    // A probe reads to WouldBlock, as on its plaintext path.
                    true,
                    buf,
                )? {
                    tls::TlsRead::Data(n) => Read1::Data(n),
                    tls::TlsRead::Closed | tls::TlsRead::Truncated => Read1::Eof,
                    tls::TlsRead::Blocked => Read1::Blocked,
                },
            );
        }
        loop {
            if !self.readable {
                return Ok(Read1::Blocked);
            }
            match self.stream.read(buf) {
                Ok(0) => return Ok(Read1::Eof),
                Ok(n) => return Ok(Read1::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Feeds one event to the machine and queues what it asks. True when it asked to close.
    fn apply(&mut self, event: ProbeEvent, now: Instant) -> bool {
        let mut close = false;
        let mut start_tls = false;
        for action in self.fsm.on_event(event, now) {
            match action {
                ProbeAction::Send(bytes) => self.output.extend_from_slice(bytes),
                ProbeAction::Finished(result) => self.result = Some(result),
                ProbeAction::Healthy(verdict) => self.verdict = Some(verdict),
                ProbeAction::StartTls => start_tls = true,
                ProbeAction::Close => close = true,
            }
        }
        if start_tls && !close {
            let started = match self.tls_client.as_ref() {
                Some(client) => tls::connect(
                    &client.for_session(),
                    client.server_name(self.target.addr.ip()),
                ),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no TLS configuration",
                )),
            };
            match started {
                Ok(conn) => {
                    self.tls = Some(conn);
                    self.readable = true;
                }
                Err(e) => return self.apply(ProbeEvent::Failed(&e), now),
            }
        }
        close
    }

    /// The handshake after `AUTH TLS` is over: tells the machine. True when it asked to
    /// close.
    fn check_handshake(&mut self, now: Instant) -> Option<bool> {
        let done =
            self.fsm.is_handshaking() && self.tls.as_ref().is_some_and(|c| !c.is_handshaking());
        done.then(|| self.apply(ProbeEvent::TlsEstablished, now))
    }

    /// Moves the probe as far as the socket allows. Returns `Some(again)` while it stays
    /// open (`again`: the per-turn cap was hit with work left), `None` once it is to close.
    fn drive(&mut self, now: Instant, buf: &mut [u8]) -> Option<bool> {
        for _ in 0..MAX_FEATURE_PROBE_ITERATIONS {
            if self.connecting {
                let close = match self.finish_connect() {
                    None => break,
                    Some(Ok(())) => self.apply(ProbeEvent::Connected, now),
                    Some(Err(e)) => self.apply(ProbeEvent::Failed(&e), now),
                };
                if close {
                    return None;
                }
                continue;
            }
            if let Err(e) = self.flush() {
                self.apply(ProbeEvent::Failed(&e), now);
                return None;
            }
            let close = match self.read_some(buf) {
                Ok(Read1::Blocked) => match self.check_handshake(now) {
                    Some(close) => close,
                    None => break,
                },
                Ok(Read1::Data(n)) => {
                    self.apply(ProbeEvent::Received(buf.get(..n).unwrap_or_default()), now)
                }
                Ok(Read1::Eof) => self.apply(ProbeEvent::Eof, now),
                Err(e) => self.apply(ProbeEvent::Failed(&e), now),
            };
            if close {
                return None;
            }
        }
        if let Err(e) = self.flush() {
            self.apply(ProbeEvent::Failed(&e), now);
            return None;
        }
        if self.fsm.deadline().is_some_and(|d| d <= now) && self.apply(ProbeEvent::Deadline, now) {
            return None;
        }
        // Work is left when the loop ended on its cap rather than on a blocked socket.
        Some(!self.connecting && self.readable)
    }

    /// Last words: the queued bytes (QUIT) where the socket takes them, close_notify under
    /// TLS, then the write side shut. Never waits.
    fn close(&mut self, registry: &Registry) {
        let _ = self.flush();
        if let Some(conn) = self.tls.as_mut() {
            conn.send_close_notify();
            let _ = tls::flush(conn, &mut self.stream, &mut self.writable);
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        let _ = registry.deregister(&mut self.stream);
    }
}

/// The worker's probes and the feature book they feed.
pub struct Prober {
    /// The first token of this prober's range ([`PROBE_TOKENS`] long).
    base: usize,
    book: FeatureBook,
    /// The probe connection of each pool (index: the pool's index in the book).
    live: Vec<Option<Live>>,
    /// Each pool's generation bit, flipped for every new connection.
    bits: Vec<bool>,
    /// A probe stopped on the per-turn cap: the next turn must not wait.
    again: bool,
    /// The worker is stopping: no new probes.
    stopped: bool,
    /// Servers whose last probe failed: a failure is logged at info the first time, then
    /// at debug until the server answers again (so a server that stays down does not fill
    /// the log every 30 seconds).
    failing: HashSet<SocketAddr>,
}

impl Prober {
    /// A prober for `policy`'s pools, using tokens from `base` on; every pool is due at once.
    pub fn new(base: usize, policy: &Policy, now: Instant) -> Prober {
        let pools = policy.backends.len().min(MAX_PROBED_POOLS);
        if policy.backends.len() > MAX_PROBED_POOLS {
            log::warn!(
                "{} backend pools: those after the first {MAX_PROBED_POOLS} are neither probed \
                 for FEAT (they count as the static feature list) nor health-checked",
                policy.backends.len()
            );
        }
        Prober {
            base,
            book: FeatureBook::new(policy, now),
            live: (0..pools).map(|_| None).collect(),
            bits: vec![false; pools],
            again: false,
            stopped: false,
            failing: HashSet::new(),
        }
    }

    /// Whether `token` is one of this prober's.
    pub fn owns(&self, token: Token) -> bool {
        token
            .0
            .checked_sub(self.base)
            .is_some_and(|i| i < PROBE_TOKENS)
    }

    /// Readiness for a probe token. Stale tokens (a closed or replaced probe) are dropped.
    pub fn on_ready(&mut self, token: Token, event: &mio::event::Event) {
        let Some(index) = token.0.checked_sub(self.base).map(|i| i / 2) else {
            return;
        };
        if let Some(Some(live)) = self.live.get_mut(index) {
            if live.token == token {
                live.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
                live.writable |= event.is_writable() || event.is_write_closed() || event.is_error();
            }
        }
    }

    /// Once per turn of the event loop: drives the open probes, hands the results of the
    /// closed ones to the book, and starts the probes that are due.
    pub fn tick(
        &mut self,
        now: Instant,
        registry: &Registry,
        backend_tls: &HashMap<String, TlsClient>,
        backends: &mut BackendBook,
    ) {
        self.again = false;
        let mut buf = [0u8; FEATURE_PROBE_READ_CHUNK];
        for pool in 0..self.live.len() {
            let Some(Some(live)) = self.live.get_mut(pool) else {
                continue;
            };
            match live.drive(now, &mut buf) {
                Some(again) => self.again |= again,
                None => {
                    let Some(mut live) = self.live.get_mut(pool).and_then(Option::take) else {
                        continue;
                    };
                    live.close(registry);
                    let lost = ProbeError::Closed(ProbeStep::Connect);
                    let result = live.result.take().unwrap_or(Err(lost.clone()));
                    let verdict = live.verdict.take().unwrap_or(Err(lost));
                    let next = self.done(&live.target, result, verdict, now, backends);
                    self.start(next, now, registry, backend_tls, backends);
                }
            }
        }
        if !self.stopped {
            for target in self.book.start_due(now) {
                self.start(Some(target), now, registry, backend_tls, backends);
            }
        }
    }

    /// Opens the probe for `target`; a server that cannot even be connected to counts as a
    /// failed probe, and the pool's next server (if any) is tried at once.
    fn start(
        &mut self,
        mut target: Option<ProbeTarget>,
        now: Instant,
        registry: &Registry,
        backend_tls: &HashMap<String, TlsClient>,
        backends: &mut BackendBook,
    ) {
        while let Some(t) = target.take() {
            let pool = t.pool;
            let Some(bit) = self.bits.get_mut(pool) else {
                return;
            };
            *bit = !*bit;
            let token = Token(self.base + 2 * pool + usize::from(*bit));
            match open(&t, token, registry, backend_tls) {
                Ok((stream, tls)) => {
                    log::debug!(
                        "probe of {} (pool {}) started: {:?}",
                        t.addr,
                        t.name,
                        t.plan
                    );
                    let fsm = FeatProbe::with_plan(t.plan, now);
                    let tls_client = t
                        .plan
                        .auth_tls
                        .then(|| backend_tls.get(&t.name).cloned())
                        .flatten();
                    if let Some(slot) = self.live.get_mut(pool) {
                        *slot = Some(Live {
                            target: t,
                            token,
                            stream,
                            tls,
                            tls_client,
                            connecting: true,
                            readable: true,
                            writable: true,
                            output: Vec::new(),
                            fsm,
                            result: None,
                            verdict: None,
                        });
                    }
                    return;
                }
                Err(e) => {
                    let error = ProbeError::Io {
                        step: ProbeStep::Connect,
                        error: e.to_string(),
                    };
                    target = self.done(&t, Err(error.clone()), Err(error), now, backends);
                }
            }
        }
    }

    /// The probe of `target` ended: its `FEAT` result to the feature book (when it asked),
    /// its health verdict to the backend book (when the pool has health checks). Returns
    /// the pool's next probe of this round.
    fn done(
        &mut self,
        target: &ProbeTarget,
        result: Result<Vec<Feature>, ProbeError>,
        verdict: Result<(), ProbeError>,
        now: Instant,
        backends: &mut BackendBook,
    ) -> Option<ProbeTarget> {
        if target.health {
            match &verdict {
                Ok(()) => {
                    if backends.mark_up(target.addr, now) {
                        log::info!(
                            "health check of {} (pool {}) passed: back in rotation",
                            target.addr,
                            target.name
                        );
                    } else {
                        log::debug!(
                            "health check of {} (pool {}) passed",
                            target.addr,
                            target.name
                        );
                    }
                }
                Err(e) => {
                    if backends.check_failed(target.addr, now) {
                        log::warn!(
                            "health check of {} (pool {}) failed: {e}; out of rotation until a \
                             check passes",
                            target.addr,
                            target.name
                        );
                    } else {
                        log::debug!(
                            "health check of {} (pool {}) failed again: {e}",
                            target.addr,
                            target.name
                        );
                    }
                }
            }
        }
        if !target.plan.feat {
            return self.book.finish_probe(target.pool, None, now);
        }
        self.report(target, &result);
        self.book.finish_probe(target.pool, Some(result), now)
    }

    fn report(&mut self, target: &ProbeTarget, result: &Result<Vec<Feature>, ProbeError>) {
        match result {
            Ok(features) => {
                let level = if self.failing.remove(&target.addr) {
                    log::Level::Info
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "FEAT probe of {} (pool {}) done: {}",
                    target.addr,
                    target.name,
                    features
                        .iter()
                        .map(Feature::line)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Err(e) => {
                let level = if self.failing.insert(target.addr) {
                    log::Level::Info
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "FEAT probe of {} (pool {}) failed: {e}{}",
                    target.addr,
                    target.name,
                    if self.book.is_learned(target.pool) {
                        " (keeping what the pool said before)"
                    } else {
                        ""
                    }
                );
            }
        }
    }

    /// How long the loop may sleep for the probes' sake (`None`: as long as it likes).
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.again {
            return Some(Duration::ZERO);
        }
        let probes = self.live.iter().flatten().filter_map(|l| l.fsm.deadline());
        let round = if self.stopped {
            None
        } else {
            self.book.next_round()
        };
        probes
            .chain(round)
            .min()
            .map(|at| at.saturating_duration_since(now))
    }

    /// The backend feature lines to advertise before login, once after they changed
    /// (logged).
    pub fn take_changed(&mut self) -> Option<Rc<[String]>> {
        let changed = self.book.take_changed()?;
        log::info!("FEAT before login now offers: {}", changed.join(", "));
        Some(changed)
    }

    /// The backend feature lines to advertise before login.
    pub fn offered(&self) -> Rc<[String]> {
        Rc::clone(self.book.offered())
    }

    /// A new policy: the probes out are dropped, what the remaining servers said is kept,
    /// and every pool is probed again at once.
    pub fn reload(&mut self, policy: &Policy, now: Instant, registry: &Registry) {
        self.close_all(registry);
        let mut fresh = Prober::new(self.base, policy, now);
        fresh.book.carry_over(&self.book);
        fresh.stopped = self.stopped;
        fresh.failing = std::mem::take(&mut self.failing);
        fresh
            .failing
            .retain(|addr| policy.backends.values().any(|b| b.servers.contains(addr)));
        *self = fresh;
    }

    /// The worker is stopping: the probes out are dropped and no new ones start.
    pub fn stop(&mut self, registry: &Registry) {
        self.close_all(registry);
        self.stopped = true;
    }

    fn close_all(&mut self, registry: &Registry) {
        for live in self.live.iter_mut().filter_map(Option::take) {
            let mut live = live;
            live.close(registry);
        }
    }
}

/// Starts the connect for `target` (from its pool's `source_address`) and registers it.
fn open(
    target: &ProbeTarget,
    token: Token,
    registry: &Registry,
    backend_tls: &HashMap<String, TlsClient>,
) -> io::Result<(TcpStream, Option<Box<rustls::Connection>>)> {
    let tls = match target.tls {
        TlsMode::Implicit => {
            let client = backend_tls.get(&target.name).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no TLS configuration")
            })?;
            Some(tls::connect(
                &client.for_session(),
                client.server_name(target.addr.ip()),
            )?)
        }
        // Explicit pools answer FEAT before AUTH: the probe stays in plain text.
        TlsMode::None | TlsMode::Explicit => None,
    };
    let mut stream = match target.source {
        Some(source) => net::connect_from(source, target.addr)?,
        None => TcpStream::connect(target.addr)?,
    };
    registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
    Ok((stream, tls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::thread;

    use mio::{Events, Poll};

    use crate::policy::parse_policy;

    /// A scripted backend for one probe: greeting, `feat` for FEAT, and (after `quit_delay`)
    /// 221 for QUIT; then waits for the close. Returns when it accepted the connection and
    /// when it was about to answer QUIT. Gives up after 10 seconds.
    fn backend(
        feat: &'static str,
        quit_delay: Duration,
    ) -> (SocketAddr, thread::JoinHandle<Option<(Instant, Instant)>>) {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = thread::spawn(move || {
            listener.set_nonblocking(true).ok()?;
            let give_up = Instant::now() + Duration::from_secs(10);
            let stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(_) if Instant::now() < give_up => thread::sleep(Duration::from_millis(5)),
                    Err(_) => return None,
                }
            };
            let accepted = Instant::now();
            stream.set_nonblocking(false).ok()?;
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .ok()?;
            let mut writer = stream.try_clone().ok()?;
            let mut reader = BufReader::new(stream);
            writer.write_all(b"220 scripted\r\n").ok()?;
            let mut line = String::new();
            reader.read_line(&mut line).ok()?;
            assert_eq!(line, "FEAT\r\n");
            writer.write_all(feat.as_bytes()).ok()?;
            line.clear();
            reader.read_line(&mut line).ok()?;
            assert_eq!(line, "QUIT\r\n");
            thread::sleep(quit_delay);
            let quitting = Instant::now();
            writer.write_all(b"221 bye\r\n").ok()?;
            // The prober closes once it has the 221.
            line.clear();
            let _ = reader.read_line(&mut line);
            Some((accepted, quitting))
        });
        (addr, handle)
    }

    #[test]
    fn the_servers_of_a_pool_are_probed_one_after_the_other() {
        let (first, first_log) = backend(
            "211-F\r\n MLST type*;size*;modify*;\r\n SIZE\r\n PRET\r\n211 End\r\n",
            Duration::from_millis(200),
        );
        let (second, second_log) = backend(
            "211-F\r\n MLST type*;size;perm*;\r\n SIZE\r\n TVFS\r\n211 End\r\n",
            Duration::ZERO,
        );
        let text = format!(
            r#"{{ "listeners": [ {{ "address": "127.0.0.1:2121" }} ],
                 "backends": {{ "p": {{ "servers": ["{first}", "{second}"] }} }},
                 "roles": {{ "r": {{ "allow": ["LIST"] }} }},
                 "users": {{ "u": {{ "role": "r", "backend": "p" }} }} }}"#
        );
        let policy = match parse_policy(&text) {
            Ok(p) => p,
            Err(errors) => panic!("test policy invalid: {errors:?}"),
        };
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(64);
        let mut prober = Prober::new(1000, &policy, Instant::now());
        assert!(prober.owns(Token(1000)) && prober.owns(Token(1000 + PROBE_TOKENS - 1)));
        assert!(!prober.owns(Token(999)) && !prober.owns(Token(1000 + PROBE_TOKENS)));
        let give_up = Instant::now() + Duration::from_secs(10);
        while Instant::now() < give_up
            && !(first_log.is_finished()
                && second_log.is_finished()
                && prober.book.next_round().is_some())
        {
            prober.tick(
                Instant::now(),
                poll.registry(),
                &HashMap::new(),
                &mut BackendBook::new(),
            );
            let wait = prober
                .next_timeout(Instant::now())
                .map_or(Duration::from_millis(50), |t| {
                    t.min(Duration::from_millis(50))
                });
            poll.poll(&mut events, Some(wait)).expect("poll");
            for event in events.iter() {
                assert!(prober.owns(event.token()), "{event:?}");
                prober.on_ready(event.token(), event);
            }
        }
        let first_log = first_log.join().expect("first backend").expect("probed");
        let second_log = second_log.join().expect("second backend").expect("probed");
        assert!(
            second_log.0 > first_log.1,
            "the second server was probed only after the first one's probe ended"
        );
        assert!(
            prober.live.iter().all(Option::is_none),
            "both probes closed"
        );
        assert_eq!(
            &*prober.offered(),
            ["MLST type*;size;", "SIZE"],
            "what both servers have, only what ftpgate relays"
        );
        assert!(prober.take_changed().is_some());
        let next = prober.next_timeout(Instant::now()).expect("a next round");
        let interval = Duration::from_secs(crate::limits::DEFAULT_HEALTH_CHECK_INTERVAL);
        assert!(
            next <= interval && next > interval - Duration::from_secs(5),
            "the next round is the health check's: {next:?}"
        );
    }
}
