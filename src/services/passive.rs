//! This worker's slice of the passive port range: ports drawn at random, never one with an
//! open listener, not one just released to the same client address (a bounded quarantine).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::Registry;
use mio::net::TcpListener;

use super::SessionKey;
use super::shared_passive::SharedPorts;
use super::sockets::bind_passive;
use crate::ftp::address::canonical_ip;
use crate::limits::{PASSIVE_QUARANTINE_SECONDS, PASSIVE_RANDOM_TRIES};

/// This worker's slice of the passive port range, handed out at random.
///
/// SECURITY: a port is drawn from kernel randomness (a buffered source: no system call per
/// PASV most of the time), so that someone behind the client's own address (NAT) cannot
/// guess the next one and connect first. A port with an open listener is never handed out
/// (the kernel refuses the bind anyway), and a port released by a session of a client is
/// not handed to that client's address again for [`PASSIVE_QUARANTINE_SECONDS`] — unless
/// every other free port of the slice was too: then the one released longest ago is used
/// rather than refusing the transfer (a quarantine that refuses would let a same-address
/// attacker deny the client every port).
pub struct PassivePorts {
    first: u16,
    last: u16,
    /// Ports of the slice with a listener open (bit `i`: port `first + i`). A hint for
    /// speed: the bind is the authority, and a bit left set by a listener that was dropped
    /// without [`release`](Self::release) is reclaimed once the port binds again.
    in_use: Vec<u64>,
    quarantine: Quarantine,
    random: crate::os::RandomSource,
    /// Requests refused because no port of the slice could be bound (`ftpgate metrics`).
    exhausted: u64,
    /// `passive.shared`: the worker's listeners, each serving several sessions.
    shared: Option<SharedPorts>,
}

impl PassivePorts {
    pub fn new(first: u16, last: u16) -> PassivePorts {
        let (first, last) = if first <= last {
            (first, last)
        } else {
            (last, first)
        };
        let size = usize::from(last - first) + 1;
        PassivePorts {
            first,
            last,
            in_use: vec![0; size.div_ceil(64)],
            quarantine: Quarantine::new(size),
            random: crate::os::RandomSource::new(),
            exhausted: 0,
            shared: None,
        }
    }

    /// The worker owns the listeners and shares each port among sessions of different
    /// client addresses (`passive.shared`); `base` is the first of the reactor's
    /// [`shared_passive::TOKENS`](super::shared_passive::TOKENS) tokens for them.
    pub fn with_sharing(mut self, base: usize, now: Instant) -> PassivePorts {
        self.shared = Some(SharedPorts::new(base, now));
        self
    }

    /// The slice of `first..=last` that worker `index` of `count` uses.
    pub fn slice(first: u16, last: u16, index: usize, count: usize) -> PassivePorts {
        let total = usize::from(last.saturating_sub(first)) + 1;
        let count = count.max(1);
        if total < count {
            return PassivePorts::new(first, last);
        }
        let per = total / count;
        let start = usize::from(first) + per * index.min(count - 1);
        let end = if index + 1 >= count {
            usize::from(last)
        } else {
            start + per - 1
        };
        PassivePorts::new(
            u16::try_from(start).unwrap_or(first),
            u16::try_from(end).unwrap_or(last),
        )
    }

    pub fn range(&self) -> (u16, u16) {
        (self.first, self.last)
    }

    /// Ports of the slice with a listener open now (shared: the worker's listeners).
    pub fn in_use(&self) -> u64 {
        if let Some(shared) = &self.shared {
            return shared.open_count() as u64;
        }
        self.in_use.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Requests refused so far because the slice was exhausted.
    pub fn exhausted(&self) -> u64 {
        self.exhausted
    }

    pub fn size(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    fn bit(&self, port: u16) -> Option<(usize, u64)> {
        let i = usize::from(port.checked_sub(self.first)?);
        (port <= self.last).then_some((i / 64, 1u64 << (i % 64)))
    }

    fn is_in_use(&self, port: u16) -> bool {
        self.bit(port)
            .and_then(|(w, b)| self.in_use.get(w).map(|word| word & b != 0))
            .unwrap_or(false)
    }

    fn mark(&mut self, port: u16, used: bool) {
        if let Some((w, b)) = self.bit(port) {
            if let Some(word) = self.in_use.get_mut(w) {
                if used {
                    *word |= b;
                } else {
                    *word &= !b;
                }
            }
        }
    }

    /// The `n`-th port of the slice (`n` below its size).
    fn nth(&self, n: u64) -> u16 {
        self.first.saturating_add(u16::try_from(n).unwrap_or(0))
    }

    /// Binds a listener on `ip` at a random free port of the slice, for a session of
    /// `client`. Errors: `AddrInUse` when no port of the slice can be bound, or the error of
    /// the socket calls (e.g. out of descriptors, no randomness).
    pub fn open(
        &mut self,
        ip: IpAddr,
        client: IpAddr,
        now: Instant,
    ) -> io::Result<(TcpListener, u16)> {
        let client = canonical_ip(client);
        let drawn = self.draw(client, now, |ports, port| {
            if ports.is_in_use(port) {
                return Ok(None);
            }
            Ok(ports.try_bind(ip, port)?.map(|listener| (listener, port)))
        })?;
        if let Some(found) = drawn {
            return Ok(found);
        }
        // Ports marked in use whose listener may be gone without a release (a few only).
        let size = self.size();
        let start = self.random.below(size)?;
        let mut tried = 0;
        for i in 0..size {
            let port = self.nth((start + i) % size);
            if !self.is_in_use(port) {
                continue;
            }
            if tried >= PASSIVE_RANDOM_TRIES {
                break;
            }
            tried += 1;
            if let Some(listener) = self.try_bind(ip, port)? {
                log::warn!("passive port {port} was marked in use without a listener");
                return Ok((listener, port));
            }
        }
        self.exhausted += 1;
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "passive range exhausted",
        ))
    }

    /// `passive.shared`: a place for `who`, a session of `client`, on a random port of the
    /// slice where no other session of that address waits (joining the worker's listener
    /// there, or binding it on `ip`). Errors: `AddrInUse` when every port of the slice has
    /// a session of `client` waiting (or cannot be bound), or the socket calls' error.
    pub fn join(
        &mut self,
        ip: IpAddr,
        client: IpAddr,
        who: SessionKey,
        registry: &Registry,
        now: Instant,
    ) -> io::Result<u16> {
        let client = canonical_ip(client);
        let drawn = self.draw(client, now, |ports, port| {
            let Some(shared) = ports.shared.as_mut() else {
                return Err(io::Error::other("passive ports are not shared"));
            };
            let addr = SocketAddr::new(ip, port);
            Ok(shared.join(addr, client, who, registry)?.then_some(port))
        })?;
        drawn.ok_or_else(|| {
            self.exhausted += 1;
            io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("every shared passive port already waits for a connection from {client}"),
            )
        })
    }

    /// `who` (a session of `client`) stops waiting on its shared port `port` of `ip` at
    /// `now`: the port is in quarantine for that client's address.
    pub fn leave(
        &mut self,
        ip: IpAddr,
        port: u16,
        client: IpAddr,
        who: SessionKey,
        registry: &Registry,
        now: Instant,
    ) {
        let client = canonical_ip(client);
        let Some(shared) = self.shared.as_mut() else {
            return;
        };
        if shared.leave(SocketAddr::new(ip, port), client, who, registry) {
            if let Some(i) = port.checked_sub(self.first) {
                self.quarantine.insert(usize::from(i), client, now);
            }
        }
    }

    /// The worker's shared listeners (`passive.shared`), None when each session has its own.
    pub fn shared(&mut self) -> Option<&mut SharedPorts> {
        self.shared.as_mut()
    }

    pub fn shared_ref(&self) -> Option<&SharedPorts> {
        self.shared.as_ref()
    }

    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Draws a port for `client` (canonical) and claims it with `claim` (None: not this
    /// one): random ports first, then a walk of the whole slice skipping the ports released
    /// to `client` lately, then those by the oldest release. None when no port could be
    /// claimed.
    fn draw<T>(
        &mut self,
        client: IpAddr,
        now: Instant,
        mut claim: impl FnMut(&mut Self, u16) -> io::Result<Option<T>>,
    ) -> io::Result<Option<T>> {
        // A port handed out forgets its last release: its next one is recorded anew, and
        // the quarantined ports are the free ones, so the oldest release is one to take.
        let mut claim = |ports: &mut Self, port: u16| {
            let found = claim(ports, port)?;
            if found.is_some() {
                if let Some(i) = port.checked_sub(ports.first) {
                    ports.quarantine.clear(usize::from(i));
                }
            }
            Ok::<_, io::Error>(found)
        };
        let size = self.size();
        // Random ports first: in a slice with room, the first one almost always binds.
        for _ in 0..PASSIVE_RANDOM_TRIES {
            let draw = self.random.below(size)?;
            let port = self.nth(draw);
            if self.released_to(port, client, now).is_some() {
                continue;
            }
            if let Some(found) = claim(self, port)? {
                return Ok(Some(found));
            }
        }
        // A crowded slice: walk it from a random point (bounded by its size), taking the
        // first free port out of quarantine. No allocation, no sort: one array look-up
        // per port.
        let start = self.random.below(size)?;
        let mut quarantined = false;
        for i in 0..size {
            let port = self.nth((start + i) % size);
            if self.released_to(port, client, now).is_some() {
                quarantined = true;
                continue;
            }
            if let Some(found) = claim(self, port)? {
                return Ok(Some(found));
            }
        }
        if !quarantined {
            return Ok(None);
        }
        // Every free port was released to this client lately: the oldest release first,
        // for a bounded number of tries (each a walk of the slice; a try fails only when
        // the port is taken meanwhile).
        let mut after: Option<(u32, u16)> = None;
        for _ in 0..PASSIVE_RANDOM_TRIES {
            let mut oldest: Option<(u32, u16)> = None;
            for n in 0..size {
                let port = self.nth(n);
                let Some(at) = self.released_to(port, client, now) else {
                    continue;
                };
                let key = (at, port);
                if after.is_some_and(|a| key <= a) || oldest.is_some_and(|o| key >= o) {
                    continue;
                }
                oldest = Some(key);
            }
            let Some(key) = oldest else {
                break;
            };
            if let Some(found) = claim(self, key.1)? {
                log::debug!(
                    "passive port {} reused for {client} within its quarantine",
                    key.1
                );
                return Ok(Some(found));
            }
            after = Some(key);
        }
        Ok(None)
    }

    /// When (in [`Quarantine`] ticks) `port` was released by a session of `client`, if
    /// that is within the quarantine.
    fn released_to(&self, port: u16, client: IpAddr, now: Instant) -> Option<u32> {
        let i = usize::from(port.checked_sub(self.first)?);
        self.quarantine.released(i, client, now)
    }

    /// Binds `port`, marking it in use; None when it is taken (by anyone).
    fn try_bind(&mut self, ip: IpAddr, port: u16) -> io::Result<Option<TcpListener>> {
        match bind_passive(SocketAddr::new(ip, port)) {
            Ok(listener) => {
                self.mark(port, true);
                Ok(Some(listener))
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The session of `client` closed `listener` (one from [`open`](Self::open)) at `now`:
    /// its port is free again, and in quarantine for that client's address.
    pub fn release(&mut self, listener: &TcpListener, client: IpAddr, now: Instant) {
        let Ok(port) = listener.local_addr().map(|a| a.port()) else {
            return;
        };
        if self.bit(port).is_none() {
            return;
        }
        self.mark(port, false);
        self.quarantine
            .insert(usize::from(port - self.first), canonical_ip(client), now);
    }
}

/// Each port's last release: by which client address, and when. One small record per port
/// of the slice, so memory is fixed by the slice's size and a look-up is an index.
///
/// Only the last release counts: a port released by one client and then by another is in
/// quarantine for the second only. The first client's late connection to it, if any, met
/// the second client's listener meanwhile and was refused there as port theft.
struct Quarantine {
    /// By port offset: the client that released it and when, in ticks of
    /// [`Quarantine::TICK`] since `base` (0: never).
    last: Vec<Option<(IpAddr, u32)>>,
    base: Instant,
}

impl Quarantine {
    /// The clock of the records: a u32 of 100 ms ticks lasts 13 years.
    const TICK_MS: u128 = 100;

    fn new(size: usize) -> Quarantine {
        Quarantine {
            last: vec![None; size],
            base: Instant::now(),
        }
    }

    fn ticks(&self, at: Instant) -> u32 {
        let ms = at.saturating_duration_since(self.base).as_millis();
        // 1 + : tick 0 is "never", and a release at `base` is still one.
        u32::try_from(ms / Self::TICK_MS).map_or(u32::MAX, |t| t.saturating_add(1))
    }

    fn insert(&mut self, i: usize, ip: IpAddr, now: Instant) {
        let at = self.ticks(now);
        if let Some(slot) = self.last.get_mut(i) {
            *slot = Some((ip, at));
        }
    }

    fn clear(&mut self, i: usize) {
        if let Some(slot) = self.last.get_mut(i) {
            *slot = None;
        }
    }

    /// When port offset `i` was released by a session of `ip` (in ticks), if that is
    /// within the quarantine.
    fn released(&self, i: usize, ip: IpAddr, now: Instant) -> Option<u32> {
        let (by, at) = (*self.last.get(i)?)?;
        let window = u32::try_from(u128::from(PASSIVE_QUARANTINE_SECONDS) * 1000 / Self::TICK_MS)
            .unwrap_or(u32::MAX);
        (by == ip && self.ticks(now).saturating_sub(at) < window).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn passive_slices_cover_the_range_without_overlap() {
        let a = PassivePorts::slice(50000, 50999, 0, 2);
        let b = PassivePorts::slice(50000, 50999, 1, 2);
        assert_eq!(a.range(), (50000, 50499));
        assert_eq!(b.range(), (50500, 50999));
        let tiny = PassivePorts::slice(50000, 50000, 1, 4);
        assert_eq!(tiny.range(), (50000, 50000));
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A client address for the passive tests (the listener is on 127.0.0.1 either way).
    fn client(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    /// `len` consecutive loopback ports that were free a moment ago, above the ephemeral
    /// range (61000-65535) where the integration tests' ranges never are.
    fn free_block(len: u16) -> (u16, u16) {
        // Tests of this binary run in parallel: each call starts at another block.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let slots = (65_535 - 61_000) / u32::from(len);
        let offset = std::process::id().wrapping_mul(2_654_435_761);
        let first = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for k in first..first + slots {
            let lo = 61_000 + (offset.wrapping_add(k.wrapping_mul(7919)) % slots) * u32::from(len);
            let (lo, hi) = (lo as u16, (lo + u32::from(len) - 1) as u16);
            if (lo..=hi).all(|p| std::net::TcpListener::bind((LOCAL, p)).is_ok()) {
                return (lo, hi);
            }
        }
        panic!("no free block of {len} ports");
    }

    #[test]
    fn passive_ports_skip_ports_in_use() {
        let busy = std::net::TcpListener::bind((LOCAL, 0)).expect("bind");
        let port = busy.local_addr().expect("addr").port();
        let now = Instant::now();
        let mut only_busy = PassivePorts::new(port, port);
        let err = only_busy
            .open(LOCAL, client(1), now)
            .expect_err("the only port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(busy);
        let (_listener, got) = only_busy.open(LOCAL, client(1), now).expect("free again");
        assert_eq!(got, port);
    }

    #[test]
    fn no_passive_port_is_handed_out_twice_while_in_use() {
        let (lo, hi) = free_block(20);
        let mut ports = PassivePorts::new(lo, hi);
        let now = Instant::now();
        let mut held = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        // Bounded: at most twice the slice.
        for _ in 0..40 {
            match ports.open(LOCAL, client(1), now) {
                Ok((listener, port)) => {
                    assert!((lo..=hi).contains(&port), "{port} outside {lo}-{hi}");
                    assert!(seen.insert(port), "{port} handed out twice");
                    held.push(listener);
                }
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
                    break;
                }
            }
        }
        assert!(held.len() >= 15, "most of the slice: {}", held.len());
        assert!(held.len() <= 20);
        // One released: that one is free again (for another client: no quarantine).
        let listener = held.pop().expect("one");
        let port = listener.local_addr().expect("addr").port();
        ports.release(&listener, client(1), now);
        drop(listener);
        let (_again, got) = ports.open(LOCAL, client(2), now).expect("a free port");
        assert_eq!(got, port);
    }

    #[test]
    fn a_released_port_is_not_given_to_the_same_client_within_the_quarantine() {
        let (lo, hi) = free_block(3);
        let mut ports = PassivePorts::new(lo, hi);
        let t = Instant::now();
        let c = client(7);
        let (first, a) = ports.open(LOCAL, c, t).expect("port");
        ports.release(&first, c, t);
        drop(first);
        let (second, b) = ports.open(LOCAL, c, t).expect("port");
        assert_ne!(a, b, "not the port just released");
        ports.release(&second, c, t + Duration::from_secs(1));
        drop(second);
        let (third, last) = ports
            .open(LOCAL, c, t + Duration::from_secs(2))
            .expect("port");
        assert!(last != a && last != b, "the only port out of quarantine");
        ports.release(&third, c, t + Duration::from_secs(2));
        drop(third);
        // Every port of the slice was released to this client: the oldest release is used
        // rather than refusing the transfer.
        let (fourth, got) = ports
            .open(LOCAL, c, t + Duration::from_secs(3))
            .expect("port");
        assert_eq!(got, a, "released longest ago");
        ports.release(&fourth, c, t + Duration::from_secs(3));
        drop(fourth);
        // Another client is not held back by this client's quarantine (any port will do).
        let (other, _) = ports.open(LOCAL, client(8), t).expect("port");
        ports.release(&other, client(8), t);
        drop(other);
        // Once the quarantine is over, it is forgotten.
        let later = t + Duration::from_secs(PASSIVE_QUARANTINE_SECONDS + 4);
        assert!(ports.open(LOCAL, c, later).is_ok());
        assert!(ports.released_to(a, c, later).is_none());
    }

    #[test]
    fn random_passive_ports_cover_the_slice_and_are_not_a_sequence() {
        let (lo, hi) = free_block(20);
        let mut ports = PassivePorts::new(lo, hi);
        let now = Instant::now();
        let mut seen = std::collections::BTreeSet::new();
        let mut order = Vec::new();
        for i in 0..400u32 {
            let c = IpAddr::from(i.to_be_bytes()); // another client each time
            let (listener, port) = ports.open(LOCAL, c, now).expect("port");
            seen.insert(port);
            order.push(port);
            ports.release(&listener, c, now);
        }
        assert_eq!(seen.len(), 20, "every port of the slice: {seen:?}");
        let successors = order.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(
            successors < 100,
            "{successors} of 399 in sequence (random: about 20)"
        );
    }

    #[test]
    fn a_port_dropped_without_release_is_reclaimed() {
        let (lo, hi) = free_block(1);
        let mut ports = PassivePorts::new(lo, hi);
        let now = Instant::now();
        let (listener, port) = ports.open(LOCAL, client(1), now).expect("port");
        drop(listener); // a session that never called release
        let (_again, got) = ports.open(LOCAL, client(1), now).expect("reclaimed");
        assert_eq!(got, port);
    }

    #[test]
    fn the_quarantine_is_one_record_per_port_and_keeps_the_last_release() {
        let t = Instant::now();
        let mut q = Quarantine::new(4);
        assert_eq!(q.last.len(), 4, "memory fixed by the slice");
        assert!(std::mem::size_of::<Option<(IpAddr, u32)>>() <= 24);
        q.insert(1, client(1), t);
        assert!(q.released(1, client(1), t).is_some());
        assert!(q.released(1, client(2), t).is_none(), "another client");
        assert!(q.released(0, client(1), t).is_none(), "another port");
        // Released again by another client: the quarantine is that client's now.
        q.insert(1, client(2), t + Duration::from_secs(1));
        assert!(
            q.released(1, client(1), t + Duration::from_secs(1))
                .is_none()
        );
        assert!(
            q.released(1, client(2), t + Duration::from_secs(1))
                .is_some()
        );
        let end = t + Duration::from_secs(PASSIVE_QUARANTINE_SECONDS + 1);
        assert!(
            q.released(1, client(2), end).is_none(),
            "over after the window"
        );
        // Out of the slice: nothing recorded, nothing found.
        q.insert(9, client(1), t);
        assert!(q.released(9, client(1), t).is_none());
    }

    /// One client that opened and released every port of a crowded slice is still served
    /// at once (the oldest release), and the walk that finds it allocates nothing.
    #[test]
    fn a_client_that_used_every_port_gets_the_oldest_release() {
        // More ports than the tries of the oldest-first fallback.
        const N: u16 = PASSIVE_RANDOM_TRIES as u16 + 8;
        let (lo, hi) = free_block(N);
        let mut ports = PassivePorts::new(lo, hi);
        let t = Instant::now();
        let c = client(9);
        let mut order = Vec::new();
        for k in 0..u64::from(N) {
            let at = t + Duration::from_millis(200 * k);
            let (listener, port) = ports.open(LOCAL, c, at).expect("port");
            assert!(!order.contains(&port), "out of quarantine first");
            order.push(port);
            ports.release(&listener, c, at);
        }
        // Every port released to this client: the oldest release first, then the next
        // oldest, however many of them are in use again (a port handed out is no longer in
        // quarantine), until the slice is full.
        let at = t + Duration::from_secs(10);
        let mut held = Vec::new();
        for &expected in &order {
            let (listener, got) = ports.open(LOCAL, c, at).expect("a free port");
            assert_eq!(got, expected, "released longest ago");
            held.push(listener);
        }
        let err = ports.open(LOCAL, c, at).expect_err("all in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(held);
    }
}
