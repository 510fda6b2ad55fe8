//! Session counters shared by all worker processes: sessions in total, per source address
//! and per user, and failed logins per source address (with bans).
//!
//! Each worker owns one block of a shared memory region and is the only writer of it; a
//! count is the sum over all blocks. No locks and no cross-process CAS loops: a writer
//! stores with atomics, readers load with atomics. A reader racing a writer may see a count
//! one session stale, so a limit can be overshot by at most one session per worker at the
//! same instant — the price of never blocking the event loop. A worker that restarts zeroes
//! its own block, so a crashed worker's sessions stop counting at once.
//!
//! Keys are 64-bit hashes of the address or user name (0 marks a free slot). Tables use
//! linear probing with a bounded probe length; a slot whose count fell to zero may be
//! reused by another key. When a table is full, the caller is told so and refuses the
//! session (fail closed: memory stays bounded under an address-spraying attack).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::os::SharedRegion;

/// Slots of the per-address table of one worker.
const IP_SLOTS: usize = 1 << 14;
/// Slots of the per-user table of one worker.
const USER_SLOTS: usize = 1 << 12;
/// Slots of the failed-login table of one worker.
const FAIL_SLOTS: usize = 1 << 14;
/// Longest probe sequence before a table counts as full for a key.
const MAX_PROBE: usize = 64;

const TOTAL_WORDS: usize = 8; // the total, padded to a cache line
const IP_WORDS: usize = IP_SLOTS * 2; // key, count
const USER_WORDS: usize = USER_SLOTS * 2; // key, count
const FAIL_WORDS: usize = FAIL_SLOTS * 4; // key, count, window start, banned until

/// 64-bit words of one worker's block.
pub const BLOCK_WORDS: usize = TOTAL_WORDS + IP_WORDS + USER_WORDS + FAIL_WORDS;

/// The table is full: refuse rather than grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

pub fn ip_key(ip: IpAddr) -> u64 {
    let canonical = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nonzero_hash(&canonical)
}

pub fn user_key(name: &str) -> u64 {
    nonzero_hash(&("user", name))
}

fn nonzero_hash(value: &impl Hash) -> u64 {
    // DefaultHasher::new() uses fixed keys: the same value hashes the same in every worker
    // of this binary, which is what a shared table needs.
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish().max(1)
}

/// The view of the shared region from one worker.
pub struct SharedCounters {
    region: SharedRegion,
    worker: usize,
    workers: usize,
}

impl SharedCounters {
    /// `region` holds `workers` blocks; this worker owns block `worker` and clears it.
    pub fn new(region: SharedRegion, worker: usize, workers: usize) -> Option<SharedCounters> {
        if workers == 0 || worker >= workers || region.words().len() < workers * BLOCK_WORDS {
            return None;
        }
        let counters = SharedCounters {
            region,
            worker,
            workers,
        };
        for word in counters.block(worker) {
            word.store(0, Ordering::Relaxed);
        }
        Some(counters)
    }

    /// Counters private to this process (one worker, no supervisor).
    pub fn private() -> SharedCounters {
        SharedCounters {
            region: SharedRegion::heap(BLOCK_WORDS),
            worker: 0,
            workers: 1,
        }
    }

    fn block(&self, worker: usize) -> &[AtomicU64] {
        let words = self.region.words();
        let start = worker * BLOCK_WORDS;
        words.get(start..start + BLOCK_WORDS).unwrap_or(&[])
    }

    fn section(&self, worker: usize, offset: usize, len: usize) -> &[AtomicU64] {
        self.block(worker).get(offset..offset + len).unwrap_or(&[])
    }

    fn ips(&self, worker: usize) -> &[AtomicU64] {
        self.section(worker, TOTAL_WORDS, IP_WORDS)
    }

    fn users(&self, worker: usize) -> &[AtomicU64] {
        self.section(worker, TOTAL_WORDS + IP_WORDS, USER_WORDS)
    }

    fn fails(&self, worker: usize) -> &[AtomicU64] {
        self.section(worker, TOTAL_WORDS + IP_WORDS + USER_WORDS, FAIL_WORDS)
    }

    /// Sessions open in all workers.
    pub fn sessions_total(&self) -> u64 {
        (0..self.workers)
            .filter_map(|w| self.block(w).first())
            .map(|t| t.load(Ordering::Relaxed))
            .sum()
    }

    /// Sessions open from `ip` in all workers.
    pub fn sessions_from(&self, ip: IpAddr) -> u64 {
        let key = ip_key(ip);
        (0..self.workers)
            .map(|w| table_get(self.ips(w), 2, key))
            .sum()
    }

    /// Logged-in sessions of `user` in all workers.
    pub fn sessions_of(&self, user: &str) -> u64 {
        let key = user_key(user);
        (0..self.workers)
            .map(|w| table_get(self.users(w), 2, key))
            .sum()
    }

    /// Counts a new session from `ip`.
    pub fn open_session(&self, ip: IpAddr) -> Result<(), TableFull> {
        table_add(self.ips(self.worker), 2, ip_key(ip))?;
        if let Some(total) = self.block(self.worker).first() {
            total.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Uncounts a session opened with [`open_session`](Self::open_session).
    pub fn close_session(&self, ip: IpAddr) {
        table_sub(self.ips(self.worker), 2, ip_key(ip));
        if let Some(total) = self.block(self.worker).first() {
            let _ = total.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
        }
    }

    pub fn open_user(&self, user: &str) -> Result<(), TableFull> {
        table_add(self.users(self.worker), 2, user_key(user))
    }

    pub fn close_user(&self, user: &str) {
        table_sub(self.users(self.worker), 2, user_key(user));
    }

    /// Records a failed login from `ip` at `now` (unix seconds). Returns true when the
    /// address has now reached `threshold` failures within `window` seconds in all workers
    /// together, and bans it until `now + ban`.
    pub fn record_failed_login(
        &self,
        ip: IpAddr,
        now: u64,
        window: u64,
        threshold: u32,
        ban: u64,
    ) -> Result<bool, TableFull> {
        let key = ip_key(ip);
        let table = self.fails(self.worker);
        let slot = find_or_claim(table, 4, key, |slot| {
            // A slot may be reused once its window is over and its ban has expired.
            let start = slot[2].load(Ordering::Relaxed);
            let until = slot[3].load(Ordering::Relaxed);
            now.saturating_sub(start) > window && until <= now
        })
        .ok_or(TableFull)?;
        let start = slot[2].load(Ordering::Relaxed);
        if now.saturating_sub(start) > window {
            slot[1].store(0, Ordering::Relaxed);
            slot[2].store(now, Ordering::Relaxed);
        }
        slot[1].fetch_add(1, Ordering::Relaxed);
        let failures: u64 = (0..self.workers)
            .filter_map(|w| find(self.fails(w), 4, key))
            .filter(|s| now.saturating_sub(s[2].load(Ordering::Relaxed)) <= window)
            .map(|s| s[1].load(Ordering::Relaxed))
            .sum();
        if threshold > 0 && failures >= u64::from(threshold) {
            slot[3].store(now.saturating_add(ban), Ordering::Relaxed);
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether `ip` is banned at `now` by any worker.
    pub fn is_banned(&self, ip: IpAddr, now: u64) -> bool {
        let key = ip_key(ip);
        (0..self.workers)
            .filter_map(|w| find(self.fails(w), 4, key))
            .any(|s| s[3].load(Ordering::Relaxed) > now)
    }
}

/// The slot of `key` in a table of `width`-word slots (word 0 is the key), if present.
fn find(table: &[AtomicU64], width: usize, key: u64) -> Option<&[AtomicU64]> {
    let slots = table.len() / width;
    if slots == 0 {
        return None;
    }
    let start = (key as usize) % slots;
    for i in 0..MAX_PROBE.min(slots) {
        let index = (start + i) % slots;
        let slot = table.get(index * width..index * width + width)?;
        match slot[0].load(Ordering::Relaxed) {
            k if k == key => return Some(slot),
            0 => return None,
            _ => {}
        }
    }
    None
}

/// The slot of `key`, claiming a free or reusable slot when it has none (owner only).
fn find_or_claim(
    table: &[AtomicU64],
    width: usize,
    key: u64,
    reusable: impl Fn(&[AtomicU64]) -> bool,
) -> Option<&[AtomicU64]> {
    if let Some(slot) = find(table, width, key) {
        return Some(slot);
    }
    let slots = table.len() / width;
    if slots == 0 {
        return None;
    }
    let start = (key as usize) % slots;
    for i in 0..MAX_PROBE.min(slots) {
        let index = (start + i) % slots;
        let slot = table.get(index * width..index * width + width)?;
        let current = slot[0].load(Ordering::Relaxed);
        if current == 0 || reusable(slot) {
            for word in &slot[1..] {
                word.store(0, Ordering::Relaxed);
            }
            slot[0].store(key, Ordering::Release);
            return Some(slot);
        }
    }
    None
}

fn table_get(table: &[AtomicU64], width: usize, key: u64) -> u64 {
    find(table, width, key).map_or(0, |s| s[1].load(Ordering::Relaxed))
}

fn table_add(table: &[AtomicU64], width: usize, key: u64) -> Result<(), TableFull> {
    let slot =
        find_or_claim(table, width, key, |s| s[1].load(Ordering::Relaxed) == 0).ok_or(TableFull)?;
    slot[1].fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn table_sub(table: &[AtomicU64], width: usize, key: u64) {
    if let Some(slot) = find(table, width, key) {
        let _ = slot[1].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(1))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_workers() -> (SharedCounters, SharedCounters) {
        let region = SharedRegion::anonymous_shared(2 * BLOCK_WORDS).expect("region");
        let a = SharedCounters::new(region.clone_mapping(), 0, 2).expect("worker 0");
        let b = SharedCounters::new(region, 1, 2).expect("worker 1");
        (a, b)
    }

    #[test]
    fn counts_are_summed_over_workers() {
        let (a, b) = two_workers();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        a.open_session(ip).expect("room");
        b.open_session(ip).expect("room");
        b.open_session(other).expect("room");
        assert_eq!(a.sessions_total(), 3);
        assert_eq!(b.sessions_from(ip), 2);
        assert_eq!(a.sessions_from(other), 1);
        b.close_session(ip);
        assert_eq!(a.sessions_from(ip), 1);
        assert_eq!(a.sessions_total(), 2);
        a.open_user("alice").expect("room");
        b.open_user("alice").expect("room");
        assert_eq!(a.sessions_of("alice"), 2);
        assert_eq!(a.sessions_of("bob"), 0);
        a.close_user("alice");
        assert_eq!(b.sessions_of("alice"), 1);
    }

    #[test]
    fn mapped_and_plain_ipv4_are_one_address() {
        let c = SharedCounters::private();
        c.open_session("127.0.0.1".parse().expect("ip"))
            .expect("room");
        assert_eq!(c.sessions_from("::ffff:127.0.0.1".parse().expect("ip")), 1);
    }

    #[test]
    fn a_restarted_worker_starts_from_zero() {
        let region = SharedRegion::anonymous_shared(2 * BLOCK_WORDS).expect("region");
        let a = SharedCounters::new(region.clone_mapping(), 0, 2).expect("worker 0");
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        a.open_session(ip).expect("room");
        let reader = SharedCounters::new(region.clone_mapping(), 1, 2).expect("worker 1");
        assert_eq!(reader.sessions_total(), 1);
        let _restarted = SharedCounters::new(region, 0, 2).expect("worker 0 again");
        assert_eq!(reader.sessions_total(), 0);
        assert_eq!(reader.sessions_from(ip), 0);
    }

    #[test]
    fn failed_logins_ban_across_workers_and_the_ban_expires() {
        let (a, b) = two_workers();
        let ip: IpAddr = "198.51.100.7".parse().expect("ip");
        let now = 1_000_000;
        assert_eq!(a.record_failed_login(ip, now, 300, 3, 600), Ok(false));
        assert_eq!(b.record_failed_login(ip, now + 1, 300, 3, 600), Ok(false));
        assert!(!a.is_banned(ip, now + 1));
        assert_eq!(a.record_failed_login(ip, now + 2, 300, 3, 600), Ok(true));
        assert!(
            b.is_banned(ip, now + 3),
            "the ban is seen by the other worker"
        );
        assert!(b.is_banned(ip, now + 601));
        assert!(!b.is_banned(ip, now + 603), "the ban expires");
        // Failures outside the window do not add up.
        let other: IpAddr = "198.51.100.8".parse().expect("ip");
        assert_eq!(a.record_failed_login(other, now, 10, 2, 600), Ok(false));
        assert_eq!(
            a.record_failed_login(other, now + 100, 10, 2, 600),
            Ok(false)
        );
    }

    #[test]
    fn a_full_table_refuses_instead_of_growing() {
        let c = SharedCounters::private();
        let mut refused = 0;
        for i in 0..(IP_SLOTS as u32 + 100) {
            let ip = IpAddr::from(i.to_be_bytes());
            if c.open_session(ip).is_err() {
                refused += 1;
            }
        }
        assert!(
            refused >= 100,
            "at least the overflow is refused: {refused}"
        );
        // Closed sessions free their slots for others.
        for i in 0..(IP_SLOTS as u32 + 100) {
            c.close_session(IpAddr::from(i.to_be_bytes()));
        }
        assert!(c.open_session("203.0.113.1".parse().expect("ip")).is_ok());
    }
}
