//! Connections to a `proxy_protocol` listener that wait for their PROXY header, before any
//! session exists.
//!
//! A connection from outside the listener's `proxy_from` is closed as it is accepted. One
//! from a balancer is held here, registered for readability, until its header is complete
//! (the session is then created with the client's real address, and the balancer's as
//! `via`), malformed, or late ([`PROXY_HEADER_TIMEOUT_MS`]); one the balancer closes
//! before sending a byte is its TCP health check and is closed without a record. Nothing
//! is sent to it
//! meanwhile (no greeting before the header) and it is not counted as a session, so neither
//! per-address limits nor bans ever apply to a balancer's own address.
//!
//! The header is peeked, not read, until it is complete: then exactly its bytes are
//! consumed, and whatever the client sent after it (an implicit-FTPS ClientHello) stays in
//! the socket for the session.
//!
//! Bounds (an attacker that reaches a balancer can make it open connections at will): at
//! most [`MAX_PENDING_PROXY_HEADERS`] held per worker, each for at most the header timeout;
//! the refusals are recorded at most [`PROXY_REFUSALS_PER_SECOND`] a second (with a burst
//! of [`PROXY_REFUSAL_BURST`]), the rest only counted, and the count travels in the next
//! record.

use crate::services::ListenerConfig;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::limits::{
    MAX_PENDING_PROXY_HEADERS, MAX_PROXY_HEADER_BYTES, PROXY_HEADER_TIMEOUT_MS,
    PROXY_REFUSAL_BURST, PROXY_REFUSALS_PER_SECOND,
};
use crate::proxy_protocol::{self, Header, Parsed};
use crate::services::rate::TokenBucket;

/// Bits of a pending token that carry the slot index.
const INDEX_BITS: u32 = 16;
const _: () = assert!(MAX_PENDING_PROXY_HEADERS <= 1 << INDEX_BITS);
/// Bits of the slot's generation a token carries.
const GENERATION_BITS: u32 = 32;
/// How many tokens the pending connections use, from the base the reactor gives.
pub const TOKENS: usize = 1 << (INDEX_BITS + GENERATION_BITS);

const HEADER_TIMEOUT: Duration = Duration::from_millis(PROXY_HEADER_TIMEOUT_MS);

struct Conn {
    stream: TcpStream,
    /// The balancer's address.
    peer: SocketAddr,
    /// The settings of the listener that accepted it (kept here: a reload may reorder or
    /// remove listeners while the header is on its way).
    listener: ListenerConfig,
}

/// What became of a pending connection.
pub enum Outcome {
    /// Its header named a client: start a session for `client`, via `balancer`.
    Ready {
        stream: TcpStream,
        client: SocketAddr,
        balancer: SocketAddr,
        listener: ListenerConfig,
    },
    /// Closed; `detail` says why, for the audit (from the balancer's address `peer`).
    Refused { peer: SocketAddr, detail: String },
    /// The balancer closed without sending a byte: its TCP health check, nothing to record.
    HealthCheck { peer: SocketAddr },
}

/// The pending connections of one worker.
pub struct Pending {
    base: usize,
    slots: Vec<Option<Conn>>,
    generations: Vec<u32>,
    free: Vec<usize>,
    /// Slots in the order their deadlines fall (every connection gets the same timeout).
    order: VecDeque<(Instant, usize, u32)>,
    /// Slots with readiness to look at.
    ready: Vec<usize>,
    /// Refusal records the audit may still take ([`PROXY_REFUSALS_PER_SECOND`]).
    records: TokenBucket,
    /// Refusals not recorded since the last one that was.
    unrecorded: u64,
}

impl Pending {
    /// `base`: the first of the [`TOKENS`] tokens the reactor sets aside.
    pub fn new(base: usize, now: Instant) -> Pending {
        Pending {
            base,
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            order: VecDeque::new(),
            ready: Vec::new(),
            records: TokenBucket::with_burst(PROXY_REFUSALS_PER_SECOND, PROXY_REFUSAL_BURST, now),
            unrecorded: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn token(&self, index: usize, generation: u32) -> Token {
        Token(self.base + ((generation as usize) << INDEX_BITS | index))
    }

    /// Whether `token` is one of the pending connections'; if it is current, its
    /// readiness is noted for [`Pending::progress`].
    pub fn on_ready(&mut self, token: Token) -> bool {
        let Some(offset) = token.0.checked_sub(self.base).filter(|&o| o < TOKENS) else {
            return false;
        };
        let index = offset & ((1 << INDEX_BITS) - 1);
        let generation = (offset >> INDEX_BITS) as u32;
        if self.generations.get(index) == Some(&generation) && self.slot_live(index) {
            self.ready.push(index);
        }
        true
    }

    fn slot_live(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(Option::is_some)
    }

    /// Holds a connection from a balancer until its header comes. Refused when the table
    /// is full (the connection is dropped).
    pub fn hold(
        &mut self,
        mut stream: TcpStream,
        peer: SocketAddr,
        listener: ListenerConfig,
        registry: &Registry,
        now: Instant,
    ) -> Result<(), String> {
        if self.len() >= MAX_PENDING_PROXY_HEADERS {
            return Err(format!(
                "{MAX_PENDING_PROXY_HEADERS} connections already wait for their PROXY header"
            ));
        }
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(None);
                self.generations.push(0);
                self.slots.len() - 1
            }
        };
        let generation = self.generations[index].wrapping_add(1);
        self.generations[index] = generation;
        if let Err(e) = registry.register(
            &mut stream,
            self.token(index, generation),
            Interest::READABLE,
        ) {
            self.free.push(index);
            return Err(format!("cannot register the connection: {e}"));
        }
        let deadline = now + HEADER_TIMEOUT;
        self.slots[index] = Some(Conn {
            stream,
            peer,
            listener,
        });
        self.order.push_back((deadline, index, generation));
        // The header may be there already (its edge came before the registration).
        self.ready.push(index);
        Ok(())
    }

    /// Looks at every connection that had readiness, and at every late one.
    pub fn progress(&mut self, registry: &Registry, now: Instant) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let mut ready = std::mem::take(&mut self.ready);
        ready.sort_unstable();
        ready.dedup();
        for index in ready {
            match self.look(index) {
                None => {}
                Some(Err((peer, detail))) if detail.is_empty() => {
                    self.release(index, registry, Err((peer, detail)));
                    outcomes.push(Outcome::HealthCheck { peer });
                }
                Some(outcome) => outcomes.push(self.release(index, registry, outcome)),
            }
        }
        while let Some(&(deadline, index, generation)) = self.order.front() {
            if deadline > now {
                break;
            }
            self.order.pop_front();
            let current = self.generations.get(index) == Some(&generation);
            if current && let Some(conn) = self.slots.get(index).and_then(Option::as_ref) {
                let detail = format!(
                    "no complete PROXY header within {} ms",
                    PROXY_HEADER_TIMEOUT_MS
                );
                let peer = conn.peer;
                outcomes.push(self.release(index, registry, Err((peer, detail))));
            }
        }
        outcomes
    }

    /// The deadline of the oldest connection, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.order.front().map(|&(deadline, ..)| deadline)
    }

    /// Drops every pending connection (the worker stops accepting).
    pub fn clear(&mut self, registry: &Registry) {
        for index in 0..self.slots.len() {
            if let Some(mut conn) = self.slots[index].take() {
                let _ = registry.deregister(&mut conn.stream);
                self.free.push(index);
            }
        }
        self.order.clear();
        self.ready.clear();
    }

    /// Whether a refusal may be recorded now; if so, how many were not since the last.
    pub fn record_refusal(&mut self, now: Instant) -> Option<u64> {
        if self.records.available(now) >= 1 {
            self.records.consume(1);
            Some(std::mem::take(&mut self.unrecorded))
        } else {
            self.unrecorded = self.unrecorded.saturating_add(1);
            None
        }
    }

    /// Ok(client) for a complete header, Err for a refusal, None to wait.
    fn look(&mut self, index: usize) -> Option<Result<SocketAddr, (SocketAddr, String)>> {
        let conn = self.slots.get_mut(index)?.as_mut()?;
        let peer = conn.peer;
        let mut buf = [0u8; MAX_PROXY_HEADER_BYTES];
        let n = loop {
            match conn.stream.peek(&mut buf) {
                // Closed before a byte: an empty detail says "health check".
                Ok(0) => return Some(Err((peer, String::new()))),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Some(Err((peer, format!("failed before a PROXY header: {e}"))));
                }
            }
        };
        match proxy_protocol::parse(&buf[..n]) {
            Parsed::Incomplete => None,
            Parsed::Invalid(why) => Some(Err((peer, why.to_string()))),
            Parsed::Complete {
                header: Header::Local,
                ..
            } => Some(Err((
                peer,
                "PROXY v2 LOCAL (the balancer itself, no client)".to_owned(),
            ))),
            Parsed::Complete {
                header: Header::Unknown,
                ..
            } => Some(Err((
                peer,
                "PROXY header without a TCP client address (UNKNOWN)".to_owned(),
            ))),
            Parsed::Complete {
                header: Header::Tcp { source, .. },
                length,
            } => {
                // Consume exactly the header: the client's bytes stay for the session.
                match read_exactly(&mut conn.stream, &mut buf[..length]) {
                    Ok(()) => Some(Ok(source)),
                    Err(e) => Some(Err((peer, format!("reading the PROXY header: {e}")))),
                }
            }
        }
    }

    fn release(
        &mut self,
        index: usize,
        registry: &Registry,
        result: Result<SocketAddr, (SocketAddr, String)>,
    ) -> Outcome {
        let conn = self.slots.get_mut(index).and_then(Option::take);
        self.free.push(index);
        let Some(mut conn) = conn else {
            let (peer, detail) = result.err().unwrap_or_else(|| {
                (
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    "pending connection vanished".to_owned(),
                )
            });
            return Outcome::Refused { peer, detail };
        };
        let _ = registry.deregister(&mut conn.stream);
        match result {
            Ok(client) => Outcome::Ready {
                stream: conn.stream,
                client,
                balancer: conn.peer,
                listener: conn.listener,
            },
            Err((peer, detail)) => Outcome::Refused { peer, detail },
        }
    }
}

/// Reads exactly `buf.len()` bytes that a peek has shown to be there.
fn read_exactly(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    // Bounded: each pass reads at least a byte or fails.
    while done < buf.len() {
        match stream.read(&mut buf[done..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
