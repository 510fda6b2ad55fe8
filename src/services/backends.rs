//! The worker's memory of backend pools: whose turn it is, which servers are out of
//! rotation and until when, how many sessions are connecting.
//!
//! A server is taken out of rotation when it fails: a session's connect, its greeting or the
//! TLS toward it ([`BackendBook::mark_down`], passive ejection), or a health check
//! ([`BackendBook::check_failed`], active). A passive failure keeps it out for a back-off
//! that starts at [`BACKEND_DOWN_SECONDS`] and doubles with each failure in a row, up to
//! [`BACKEND_BACKOFF_MAX_SECONDS`]; a failed health check keeps it out until a check
//! succeeds (at most [`BACKEND_BACKOFF_MAX_SECONDS`] if the checks stop, e.g. after a reload
//! turned them off). A successful health check or login brings it back at once
//! ([`BackendBook::mark_up`]).
//!
//! The state is per worker: each worker runs its own health checks (`reactor::probes`), so
//! no state is shared between processes; a server that fails is found by every worker within
//! one check interval. Out-of-rotation servers are still tried, after the others: a login
//! must not fail because the book is pessimistic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::limits::{BACKEND_BACKOFF_MAX_SECONDS, BACKEND_DOWN_SECONDS};
use crate::policy::{Backend, Balance};

/// What the book knows of one server that failed.
#[derive(Clone, Copy, Debug)]
struct Failing {
    /// Failures in a row (passive or active), for the back-off.
    failures: u32,
    /// Out of rotation until then.
    until: Instant,
}

/// The worker's memory of backend pools: whose turn it is, and who failed recently.
#[derive(Default)]
pub struct BackendBook {
    next: HashMap<String, usize>,
    failing: HashMap<SocketAddr, Failing>,
    /// Sessions whose backend connection is in progress.
    waiting: u32,
}

/// The back-off after `failures` failures in a row: [`BACKEND_DOWN_SECONDS`] doubled for
/// each failure after the first, at most [`BACKEND_BACKOFF_MAX_SECONDS`].
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let secs = BACKEND_DOWN_SECONDS
        .saturating_mul(1u64 << doublings)
        .min(BACKEND_BACKOFF_MAX_SECONDS);
    Duration::from_secs(secs)
}

/// The rendezvous (highest random weight) score of `server` for `user`: a fixed hash, the
/// same in every worker and after every restart (no per-process seed), so a user lands on
/// the same server everywhere; removing a server moves only the users that were on it.
pub fn rendezvous_score(user: &str, server: SocketAddr) -> u64 {
    // FNV-1a over the name, a separator, and the server's address as text...
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let server = server.to_string();
    for b in user
        .as_bytes()
        .iter()
        .chain(&[0u8])
        .chain(server.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // ...then the splitmix64 finaliser, so close inputs give unrelated scores.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl BackendBook {
    pub fn new() -> BackendBook {
        BackendBook::default()
    }

    /// The servers of `backend` in the order to try them for `user`: round-robin,
    /// first-available or sticky (rendezvous) order, with the servers out of rotation moved
    /// to the end (still tried, last).
    pub fn candidates(&mut self, backend: &Backend, user: &str, now: Instant) -> Vec<SocketAddr> {
        let servers = &backend.servers;
        if servers.is_empty() {
            return Vec::new();
        }
        let order: Vec<SocketAddr> = match backend.balance {
            Balance::RoundRobin => {
                let next = self.next.entry(backend.name.clone()).or_insert(0);
                let start = *next % servers.len();
                *next = next.wrapping_add(1);
                (0..servers.len())
                    .filter_map(|i| servers.get((start + i) % servers.len()).copied())
                    .collect()
            }
            Balance::FirstAvailable => servers.clone(),
            Balance::Sticky => {
                let mut order = servers.clone();
                // Highest score first; the address breaks a (practically impossible) tie.
                order.sort_by_key(|&s| (std::cmp::Reverse(rendezvous_score(user, s)), s));
                order
            }
        };
        self.forget_old(now);
        let (mut up, down): (Vec<_>, Vec<_>) = order.into_iter().partition(|&s| self.is_up(s, now));
        up.extend(down);
        up
    }

    /// Whether `addr` is in rotation.
    pub fn is_up(&self, addr: SocketAddr, now: Instant) -> bool {
        self.failing.get(&addr).is_none_or(|f| f.until <= now)
    }

    pub fn waiting(&self) -> u32 {
        self.waiting
    }

    pub fn start_waiting(&mut self) {
        self.waiting = self.waiting.saturating_add(1);
    }

    pub fn stop_waiting(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }

    /// A session's connect, greeting or TLS toward `addr` failed: out of rotation for the
    /// back-off of its failures in a row. Returns the back-off.
    pub fn mark_down(&mut self, addr: SocketAddr, now: Instant) -> Duration {
        let failures = self.count_failure(addr, now);
        let wait = backoff(failures);
        self.set_until(addr, failures, now + wait);
        wait
    }

    /// A health check of `addr` failed: out of rotation until a check succeeds (at most
    /// [`BACKEND_BACKOFF_MAX_SECONDS`], should the checks stop). True when the server was
    /// in rotation until now.
    pub fn check_failed(&mut self, addr: SocketAddr, now: Instant) -> bool {
        let was_up = self.is_up(addr, now);
        let failures = self.count_failure(addr, now);
        self.set_until(
            addr,
            failures,
            now + Duration::from_secs(BACKEND_BACKOFF_MAX_SECONDS),
        );
        was_up
    }

    /// A health check or a login on `addr` succeeded: back in rotation, its failures
    /// forgotten. True when it was out of rotation until now.
    pub fn mark_up(&mut self, addr: SocketAddr, now: Instant) -> bool {
        self.failing.remove(&addr).is_some_and(|f| f.until > now)
    }

    fn count_failure(&self, addr: SocketAddr, now: Instant) -> u32 {
        match self.failing.get(&addr) {
            // A failure long after the last back-off ended starts a new series.
            Some(f) if !self.is_stale(f, now) => f.failures.saturating_add(1),
            _ => 1,
        }
    }

    fn set_until(&mut self, addr: SocketAddr, failures: u32, until: Instant) {
        let entry = self
            .failing
            .entry(addr)
            .or_insert(Failing { failures, until });
        entry.failures = failures;
        entry.until = entry.until.max(until);
    }

    fn is_stale(&self, f: &Failing, now: Instant) -> bool {
        now > f.until + Duration::from_secs(BACKEND_BACKOFF_MAX_SECONDS)
    }

    fn forget_old(&mut self, now: Instant) {
        let limit = Duration::from_secs(BACKEND_BACKOFF_MAX_SECONDS);
        self.failing.retain(|_, f| now <= f.until + limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn backend(balance: Balance, n: u16) -> Backend {
        Backend {
            name: "pool".into(),
            servers: (0..n)
                .map(|i| SocketAddr::from(([127, 0, 0, 1], 2000 + i)))
                .collect(),
            balance,
            tls: Default::default(),
            source_address: None,
            tls_settings: Default::default(),
            feature_probe: true,
            health_check: Some(Default::default()),
            verify_uploads: false,
        }
    }
    fn ports(list: &[SocketAddr]) -> Vec<u16> {
        list.iter().map(|a| a.port()).collect()
    }
    #[test]
    fn round_robin_rotates_and_skips_failed_servers() {
        let mut book = BackendBook::new();
        let b = backend(Balance::RoundRobin, 3);
        let now = Instant::now();
        assert_eq!(book.candidates(&b, "u", now)[0].port(), 2000);
        assert_eq!(book.candidates(&b, "u", now)[0].port(), 2001);
        book.mark_down(b.servers[2], now);
        let order = ports(&book.candidates(&b, "u", now));
        assert_eq!(order, vec![2000, 2001, 2002], "failed server goes last");
        let later = now + Duration::from_secs(BACKEND_DOWN_SECONDS + 1);
        assert_eq!(
            ports(&book.candidates(&b, "u", later)),
            vec![2000, 2001, 2002]
        );
    }
    #[test]
    fn first_available_always_starts_at_the_first_server() {
        let mut book = BackendBook::new();
        let b = backend(Balance::FirstAvailable, 2);
        let now = Instant::now();
        assert_eq!(book.candidates(&b, "u", now)[0].port(), 2000);
        assert_eq!(book.candidates(&b, "u", now)[0].port(), 2000);
        book.mark_down(b.servers[0], now);
        assert_eq!(ports(&book.candidates(&b, "u", now)), vec![2001, 2000]);
    }
    #[test]
    fn the_back_off_doubles_with_failures_in_a_row_and_is_bounded() {
        assert_eq!(backoff(1), Duration::from_secs(BACKEND_DOWN_SECONDS));
        assert_eq!(backoff(2), Duration::from_secs(2 * BACKEND_DOWN_SECONDS));
        assert_eq!(backoff(3), Duration::from_secs(4 * BACKEND_DOWN_SECONDS));
        assert_eq!(
            backoff(40),
            Duration::from_secs(BACKEND_BACKOFF_MAX_SECONDS)
        );
        assert_eq!(
            backoff(u32::MAX),
            Duration::from_secs(BACKEND_BACKOFF_MAX_SECONDS)
        );
        let mut book = BackendBook::new();
        let b = backend(Balance::FirstAvailable, 2);
        let s = b.servers[0];
        let mut now = Instant::now();
        assert_eq!(book.mark_down(s, now), backoff(1));
        // Back in rotation when its back-off ends; failing again doubles it.
        now += backoff(1);
        assert!(book.is_up(s, now));
        assert_eq!(book.mark_down(s, now), backoff(2));
        assert!(!book.is_up(s, now + backoff(2) - Duration::from_secs(1)));
        // A failure long after the series ended starts a new one.
        now += backoff(2) + Duration::from_secs(BACKEND_BACKOFF_MAX_SECONDS + 1);
        assert_eq!(book.mark_down(s, now), backoff(1));
        // A successful login forgets the series.
        assert!(book.mark_up(s, now));
        assert!(book.is_up(s, now));
        assert_eq!(book.mark_down(s, now), backoff(1));
    }
    #[test]
    fn a_failed_health_check_holds_the_server_out_until_a_check_succeeds() {
        let mut book = BackendBook::new();
        let b = backend(Balance::RoundRobin, 2);
        let dead = b.servers[1];
        let now = Instant::now();
        assert!(book.check_failed(dead, now), "it was up until now");
        assert!(!book.check_failed(dead, now), "already out");
        // Longer than any passive back-off, while the checks keep failing.
        let later = now + Duration::from_secs(BACKEND_BACKOFF_MAX_SECONDS - 1);
        for _ in 0..4 {
            assert_eq!(book.candidates(&b, "u", later)[0], b.servers[0]);
        }
        assert!(book.mark_up(dead, later), "a good check brings it back");
        assert!(book.is_up(dead, later));
        // Every server down: all still tried (the order stays the balance's).
        book.check_failed(b.servers[0], later);
        book.check_failed(b.servers[1], later);
        assert_eq!(book.candidates(&b, "u", later).len(), 2);
    }
    #[test]
    fn sticky_keeps_a_user_on_one_server_while_it_is_up() {
        let mut book = BackendBook::new();
        let b = backend(Balance::Sticky, 4);
        let now = Instant::now();
        let first = book.candidates(&b, "alice", now);
        for _ in 0..10 {
            assert_eq!(book.candidates(&b, "alice", now), first, "deterministic");
        }
        // Another book (another worker, or after a restart) agrees.
        assert_eq!(BackendBook::new().candidates(&b, "alice", now), first);
        // Its server out of rotation: the next in its own order, the others keep theirs.
        book.check_failed(first[0], now);
        let moved = book.candidates(&b, "alice", now);
        assert_eq!(moved[0], first[1]);
        assert_eq!(moved.last(), Some(&first[0]), "still tried, last");
        book.mark_up(first[0], now);
        assert_eq!(
            book.candidates(&b, "alice", now),
            first,
            "back when healthy"
        );
        // Users spread over the servers.
        let mut used = std::collections::HashSet::new();
        for i in 0..64 {
            used.insert(book.candidates(&b, &format!("user{i}"), now)[0]);
        }
        assert_eq!(used.len(), 4, "64 names use all four servers");
        // A user whose server stays: removing another server does not move it.
        let smaller = Backend {
            servers: b
                .servers
                .iter()
                .copied()
                .filter(|s| *s != first[3])
                .collect(),
            ..b.clone()
        };
        assert_eq!(book.candidates(&smaller, "alice", now)[0], first[0]);
    }
    #[test]
    fn rendezvous_scores_are_fixed() {
        // The same numbers in every process and every release: a change here moves every
        // sticky user of every fleet at the next upgrade.
        let s = SocketAddr::from(([10, 0, 0, 11], 21));
        assert_eq!(rendezvous_score("alice", s), rendezvous_score("alice", s));
        assert_ne!(rendezvous_score("alice", s), rendezvous_score("alicf", s));
        assert_eq!(rendezvous_score("alice", s), 0xaf71_2d10_8dd5_86b3);
    }
}
