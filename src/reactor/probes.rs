//! The socket side of the `FEAT` probes: connects to the backends the
//! [`FeatureBook`] names, feeds each connection's readiness to its [`FeatProbe`] and carries
//! out what the machine asks (send, close), then hands the result back to the book.
//!
//! The worker's event loop calls [`Prober::on_ready`] for the probe tokens (a range of its
//! own, two tokens per pool: the low bit is a generation, so an event for a probe that was
//! replaced in the same pool is dropped), [`Prober::tick`] once per turn, and asks
//! [`Prober::next_timeout`] for the poll timeout. Nothing here blocks: connects are
//! non-blocking, every socket is drained to `WouldBlock` (at most
//! [`MAX_FEATURE_PROBE_ITERATIONS`] per turn), and each step of a probe has its deadline.
//! A pool has at most one probe connection at a time: the book learns a result when the
//! connection is closed, and only then names the pool's next server.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::features::{
    FeatProbe, Feature, FeatureBook, ProbeAction, ProbeError, ProbeEvent, ProbeStep, ProbeTarget,
};
use crate::limits::{FEATURE_PROBE_READ_CHUNK, MAX_FEATURE_PROBE_ITERATIONS, MAX_PROBED_POOLS};
use crate::policy::{Policy, TlsMode};
use crate::session::net;
use crate::tls::{self, TlsClient};

/// Tokens a [`Prober`] uses from its base: two per pool.
pub const PROBE_TOKENS: usize = 2 * MAX_PROBED_POOLS;

/// One probe connection.
struct Live {
    target: ProbeTarget,
    token: Token,
    stream: TcpStream,
    /// Implicit-TLS pools: TLS from the first byte.
    tls: Option<Box<rustls::Connection>>,
    connecting: bool,
    readable: bool,
    writable: bool,
    /// Bytes queued toward the server (`FEAT`, `QUIT`: a few bytes).
    output: Vec<u8>,
    fsm: FeatProbe,
    /// The machine's result, handed to the book when the connection is closed.
    result: Option<Result<Vec<Feature>, ProbeError>>,
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
        if !self.writable {
            return None;
        }
        match self.stream.take_error() {
            Ok(Some(e)) | Err(e) => return Some(Err(e)),
            Ok(None) => {}
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connecting = false;
                Some(Ok(()))
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                self.writable = false;
                None
            }
            Err(e) => Some(Err(e)),
        }
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
    fn apply(&mut self, event: ProbeEvent<'_>, now: Instant) -> bool {
        let mut close = false;
        for action in self.fsm.on_event(event, now) {
            match action {
                ProbeAction::Send(bytes) => self.output.extend_from_slice(bytes),
                ProbeAction::Finished(result) => self.result = Some(result),
                ProbeAction::Close => close = true,
            }
        }
        close
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
                Ok(Read1::Blocked) => break,
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
}

impl Prober {
    /// A prober for `policy`'s pools, using tokens from `base` on; every pool is due at once.
    pub fn new(base: usize, policy: &Policy, now: Instant) -> Prober {
        let pools = policy.backends.len().min(MAX_PROBED_POOLS);
        if policy.backends.len() > MAX_PROBED_POOLS {
            log::warn!(
                "{} backend pools: the FEAT of those after the first {MAX_PROBED_POOLS} is not \
                 probed (they count as the static feature list)",
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
                    let result = live
                        .result
                        .take()
                        .unwrap_or(Err(ProbeError::Closed(ProbeStep::Connect)));
                    self.report(&live.target, &result);
                    let next = self.book.finish(pool, result, now);
                    self.start(next, now, registry, backend_tls);
                }
            }
        }
        if !self.stopped {
            for target in self.book.start_due(now) {
                self.start(Some(target), now, registry, backend_tls);
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
                    log::debug!("FEAT probe of {} (pool {}) started", t.addr, t.name);
                    if let Some(slot) = self.live.get_mut(pool) {
                        *slot = Some(Live {
                            target: t,
                            token,
                            stream,
                            tls,
                            connecting: true,
                            readable: true,
                            writable: true,
                            output: Vec::new(),
                            fsm: FeatProbe::new(now),
                            result: None,
                        });
                    }
                    return;
                }
                Err(e) => {
                    let result = Err(ProbeError::Io {
                        step: ProbeStep::Connect,
                        error: e.to_string(),
                    });
                    self.report(&t, &result);
                    target = self.book.finish(pool, result, now);
                }
            }
        }
    }

    fn report(&self, target: &ProbeTarget, result: &Result<Vec<Feature>, ProbeError>) {
        match result {
            Ok(features) => log::debug!(
                "FEAT probe of {} (pool {}) done: {}",
                target.addr,
                target.name,
                features
                    .iter()
                    .map(Feature::line)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => log::info!(
                "FEAT probe of {} (pool {}) failed: {e}{}",
                target.addr,
                target.name,
                if self.book.is_learned(target.pool) {
                    " (keeping what the pool said before)"
                } else {
                    ""
                }
            ),
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
