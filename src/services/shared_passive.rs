//! Shared passive ports (`passive.shared`): the worker, not a session, owns each passive
//! listener, and one port serves several sessions at once, one per client address. A
//! connection to the port goes to the session that waits for a connection from its source
//! address; from any other address it is a thief's (or a stray's), refused and recorded at
//! a bounded rate.
//!
//! SECURITY: the port-theft check is this table's lookup. A client address has at most one
//! session waiting on a port at a time ([`SharedPorts::waits`]; [`super::passive`] draws
//! another port for its next session), so a connection is never ambiguous: it belongs to
//! exactly one session or to none.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::SessionKey;
use super::rate::TokenBucket;
use super::sockets::bind_passive_shared;
use crate::limits::{
    MAX_SHARED_PASSIVE_LISTENERS, STRAY_DATA_REFUSAL_BURST, STRAY_DATA_REFUSALS_PER_SECOND,
};

/// The tokens the reactor sets aside for shared passive listeners (one per listener).
pub const TOKENS: usize = MAX_SHARED_PASSIVE_LISTENERS;

/// One shared passive listener and how many sessions wait on it.
struct Shared {
    listener: TcpListener,
    addr: SocketAddr,
    waiting: usize,
}

/// What one accept on a shared listener gave.
pub enum SharedAccept {
    /// A connection from `peer` to the port at `local`: for the session `to` (the one that
    /// waits for that address), or for nobody (`to` None: refused by the caller, which
    /// closes it). `waiting`: the sessions waiting on the port, for the record.
    Connection {
        stream: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        to: Option<SessionKey>,
        waiting: usize,
    },
    /// Nothing more to accept now (or the listener is gone).
    Done,
}

/// The worker's shared passive listeners, by (local address, port), and who waits on them.
pub struct SharedPorts {
    base: usize,
    listeners: Vec<Option<Shared>>,
    free: Vec<usize>,
    by_addr: HashMap<SocketAddr, usize>,
    /// The session waiting on a listener for a connection from a client address.
    waiters: HashMap<(SocketAddr, IpAddr), SessionKey>,
    /// Listeners with readiness not yet accepted up to WouldBlock.
    ready: Vec<usize>,
    /// Refused connections the audit may still record.
    records: TokenBucket,
    /// Refusals not recorded since the last one that was.
    unrecorded: u64,
}

impl SharedPorts {
    /// `base`: the first of the [`TOKENS`] tokens the reactor sets aside.
    pub fn new(base: usize, now: Instant) -> SharedPorts {
        SharedPorts {
            base,
            listeners: Vec::new(),
            free: Vec::new(),
            by_addr: HashMap::new(),
            waiters: HashMap::new(),
            ready: Vec::new(),
            records: TokenBucket::with_burst(
                STRAY_DATA_REFUSALS_PER_SECOND,
                STRAY_DATA_REFUSAL_BURST,
                now,
            ),
            unrecorded: 0,
        }
    }

    /// Whether a session of `client` waits on `addr` already (the port is not for it).
    pub fn waits(&self, addr: SocketAddr, client: IpAddr) -> bool {
        self.waiters.contains_key(&(addr, client))
    }

    /// Whether the worker has a listener open on `addr`.
    pub fn is_open(&self, addr: SocketAddr) -> bool {
        self.by_addr.contains_key(&addr)
    }

    /// Listeners open now.
    pub fn open_count(&self) -> usize {
        self.by_addr.len()
    }

    /// `who`, a session of `client` (canonical), waits on `addr`: on its listener if one is
    /// open, else on a new one bound there. `Ok(false)`: the port is taken by someone else
    /// (the caller draws another). The caller has checked [`waits`](Self::waits).
    pub fn join(
        &mut self,
        addr: SocketAddr,
        client: IpAddr,
        who: SessionKey,
        registry: &Registry,
    ) -> io::Result<bool> {
        if self.waits(addr, client) {
            return Ok(false);
        }
        let index = match self.by_addr.get(&addr) {
            Some(&index) => index,
            None => {
                if self.by_addr.len() >= MAX_SHARED_PASSIVE_LISTENERS {
                    return Ok(false);
                }
                let mut listener = match bind_passive_shared(addr) {
                    Ok(listener) => listener,
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => return Ok(false),
                    Err(e) => return Err(e),
                };
                let index = match self.free.pop() {
                    Some(index) => index,
                    None => {
                        self.listeners.push(None);
                        self.listeners.len() - 1
                    }
                };
                if let Err(e) =
                    registry.register(&mut listener, Token(self.base + index), Interest::READABLE)
                {
                    self.free.push(index);
                    return Err(e);
                }
                self.listeners[index] = Some(Shared {
                    listener,
                    addr,
                    waiting: 0,
                });
                self.by_addr.insert(addr, index);
                index
            }
        };
        if let Some(Some(shared)) = self.listeners.get_mut(index) {
            shared.waiting += 1;
        }
        self.waiters.insert((addr, client), who);
        Ok(true)
    }

    /// `who` no longer waits on `addr` (its connection came, or it gave up). The listener
    /// closes with its last waiter. Returns whether `who` was waiting there.
    pub fn leave(
        &mut self,
        addr: SocketAddr,
        client: IpAddr,
        who: SessionKey,
        registry: &Registry,
    ) -> bool {
        match self.waiters.get(&(addr, client)) {
            Some(key) if key.slot == who.slot && key.generation == who.generation => {}
            _ => return false,
        }
        self.waiters.remove(&(addr, client));
        let Some(&index) = self.by_addr.get(&addr) else {
            return true;
        };
        let last = match self.listeners.get_mut(index) {
            Some(Some(shared)) => {
                shared.waiting = shared.waiting.saturating_sub(1);
                shared.waiting == 0
            }
            _ => false,
        };
        if last {
            if let Some(mut shared) = self.listeners.get_mut(index).and_then(Option::take) {
                let _ = registry.deregister(&mut shared.listener);
            }
            self.by_addr.remove(&addr);
            self.ready.retain(|&i| i != index);
            self.free.push(index);
        }
        true
    }

    /// Whether `token` is a shared listener's; its readiness is noted for
    /// [`take_ready`](Self::take_ready).
    pub fn on_ready(&mut self, token: Token) -> bool {
        let Some(index) = token.0.checked_sub(self.base).filter(|&i| i < TOKENS) else {
            return false;
        };
        if matches!(self.listeners.get(index), Some(Some(_))) && !self.ready.contains(&index) {
            self.ready.push(index);
        }
        true
    }

    /// Whether some listener has connections left to accept (the loop must not sleep).
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The listeners to accept on this turn (the caller puts back those it did not drain).
    pub fn take_ready(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.ready)
    }

    /// Listener `index` still has connections: accept more next turn.
    pub fn still_ready(&mut self, index: usize) {
        if matches!(self.listeners.get(index), Some(Some(_))) && !self.ready.contains(&index) {
            self.ready.push(index);
        }
    }

    /// One accept on listener `index`, with the session its source address names.
    pub fn accept(&mut self, index: usize) -> io::Result<SharedAccept> {
        let Some(Some(shared)) = self.listeners.get(index) else {
            return Ok(SharedAccept::Done);
        };
        loop {
            match shared.listener.accept() {
                Ok((stream, peer)) => {
                    let client = crate::ftp::address::canonical_ip(peer.ip());
                    let to = self.waiters.get(&(shared.addr, client)).copied();
                    return Ok(SharedAccept::Connection {
                        stream,
                        peer,
                        local: shared.addr,
                        to,
                        waiting: shared.waiting,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(SharedAccept::Done);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A refused connection may be recorded (the bound allows it): Some(how many were not
    /// recorded since the last one), else None (counted only).
    pub fn record_refusal(&mut self, now: Instant) -> Option<u64> {
        if self.records.available(now) >= 1 {
            self.records.consume(1);
            Some(std::mem::take(&mut self.unrecorded))
        } else {
            self.unrecorded = self.unrecorded.saturating_add(1);
            None
        }
    }

    /// Closes every listener (the worker stops).
    pub fn close_all(&mut self, registry: &Registry) {
        for shared in self.listeners.iter_mut().filter_map(Option::take) {
            let mut listener = shared.listener;
            let _ = registry.deregister(&mut listener);
        }
        self.listeners.clear();
        self.free.clear();
        self.by_addr.clear();
        self.waiters.clear();
        self.ready.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn key(slot: usize) -> SessionKey {
        SessionKey {
            slot,
            generation: 1,
        }
    }

    fn client(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    /// A loopback port free a moment ago.
    fn free_addr() -> SocketAddr {
        let probe = std::net::TcpListener::bind((LOCAL, 0)).expect("bind");
        probe.local_addr().expect("addr")
    }

    #[test]
    fn one_listener_serves_many_addresses_one_session_each_and_closes_with_the_last() {
        let poll = mio::Poll::new().expect("poll");
        let mut ports = SharedPorts::new(1000, Instant::now());
        let addr = free_addr();
        assert!(
            ports
                .join(addr, client(1), key(1), poll.registry())
                .expect("join")
        );
        assert!(
            ports
                .join(addr, client(2), key(2), poll.registry())
                .expect("join")
        );
        assert_eq!(ports.open_count(), 1, "one listener for both");
        // The same address again: not on this port (its connection would be ambiguous).
        assert!(
            !ports
                .join(addr, client(1), key(3), poll.registry())
                .expect("join")
        );
        assert!(ports.waits(addr, client(1)));
        // Someone who is not the waiter cannot take its place away.
        assert!(!ports.leave(addr, client(1), key(3), poll.registry()));
        assert!(ports.waits(addr, client(1)));
        assert!(ports.leave(addr, client(1), key(1), poll.registry()));
        assert!(ports.is_open(addr), "client 2 still waits");
        assert!(ports.leave(addr, client(2), key(2), poll.registry()));
        assert!(!ports.is_open(addr), "closed with its last waiter");
        assert_eq!(ports.open_count(), 0);
        // The port is free again for anyone.
        std::net::TcpListener::bind(addr).expect("the port was released");
    }

    #[test]
    fn a_connection_goes_to_the_session_of_its_source_address_or_to_nobody() {
        let mut poll = mio::Poll::new().expect("poll");
        let mut ports = SharedPorts::new(1000, Instant::now());
        let addr = free_addr();
        assert!(
            ports
                .join(addr, LOCAL, key(7), poll.registry())
                .expect("join")
        );
        assert!(
            ports
                .join(addr, client(9), key(8), poll.registry())
                .expect("join")
        );
        let _conn = std::net::TcpStream::connect(addr).expect("connect");
        let mut events = mio::Events::with_capacity(8);
        // Bounded: the connection is local; a few polls at most.
        let mut index = None;
        for _ in 0..50 {
            poll.poll(&mut events, Some(std::time::Duration::from_millis(100)))
                .expect("poll");
            for event in events.iter() {
                assert!(ports.on_ready(event.token()), "a shared listener's token");
                index = Some(event.token().0 - 1000);
            }
            if index.is_some() {
                break;
            }
        }
        let index = index.expect("readiness");
        assert!(ports.has_ready());
        assert_eq!(ports.take_ready(), [index]);
        match ports.accept(index).expect("accept") {
            SharedAccept::Connection {
                to, waiting, local, ..
            } => {
                let to = to.expect("the session of 127.0.0.1");
                assert_eq!((to.slot, waiting, local), (7, 2, addr));
            }
            SharedAccept::Done => panic!("a connection was there"),
        }
        assert!(matches!(ports.accept(index), Ok(SharedAccept::Done)));
        // A token that is not a shared listener's is not claimed.
        assert!(!ports.on_ready(Token(999)));
        assert!(!ports.on_ready(Token(1000 + TOKENS)));
    }

    #[test]
    fn refusals_are_recorded_at_a_bounded_rate_and_the_rest_counted() {
        let now = Instant::now();
        let mut ports = SharedPorts::new(0, now);
        let mut recorded = 0;
        for _ in 0..100 {
            if ports.record_refusal(now).is_some() {
                recorded += 1;
            }
        }
        assert_eq!(recorded, STRAY_DATA_REFUSAL_BURST);
        let later = now + std::time::Duration::from_secs(1);
        assert_eq!(
            ports.record_refusal(later),
            Some(100 - STRAY_DATA_REFUSAL_BURST)
        );
    }
}
