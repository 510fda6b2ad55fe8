//! Session counters shared by all worker processes: sessions in total, per source address
//! and per user, and failed logins per source address (with bans).
//!
//! The region starts with a header (a magic word and a 128-bit secret key drawn from the
//! kernel when the supervisor, or the single process, starts), then holds one block per
//! worker. Each worker is the only writer of its block; a count is the sum over all blocks.
//! No locks and no cross-process CAS loops: a writer stores with atomics, readers load with
//! atomics. A reader racing a writer may see a count one session stale, so a limit can be
//! overshot by at most one session per worker at the same instant — the price of never
//! blocking the event loop. A worker that restarts zeroes its own block, so a crashed
//! worker's sessions stop counting at once; the header (the key) survives it.
//!
//! Keys are SipHash-2-4 of the address or user name under the secret key (0 marks a free
//! slot), so nobody outside can compute addresses that collide. Tables use linear probing
//! with a bounded probe length ([`COUNTER_MAX_PROBE`]); a slot whose count fell to zero may
//! be reused by another key.
//!
//! SECURITY: a full table (or a full probe window) never refuses anybody: memory stays
//! bounded and the counts fail toward an overflow that cannot be attributed.
//! - A session whose address finds no slot counts toward `sessions_total` (the worker's
//!   total) and in the worker's overflow count, not toward any address.
//! - A login whose user finds no slot is not counted toward that user's cap.
//! - A failed login whose address finds no slot takes the slot of an address with a single
//!   failure and no ban (the oldest in its probe window), so spraying single failures from
//!   many addresses cannot stop the counting of an address that keeps failing; when there
//!   is none, the failure is not counted and bans nobody.
//!
//! Counts are never attributed to the wrong key, so an overflow can only under-count an
//! address or user (let it open a few more sessions), never refuse or ban one that is under
//! its limits. Closing a session decrements its address's count if positive, else the
//! overflow: the per-address count stays at most the address's real number of sessions and
//! the overflow never leaks (see `close_balances_whatever_the_order`). Each overflow is
//! audited (a `policy_violation` of kind `counter_overflow`, taken by the session with
//! [`SharedCounters::take_notice`]) and logged at most once per
//! [`COUNTER_OVERFLOW_LOG_SECONDS`].

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::audit::AuditRecord;
use crate::limits::{
    COUNTER_ADDRESS_SLOTS as IP_SLOTS, COUNTER_FAILED_LOGIN_SLOTS as FAIL_SLOTS,
    COUNTER_MAX_PROBE as MAX_PROBE, COUNTER_OVERFLOW_LOG_SECONDS, COUNTER_USER_SLOTS as USER_SLOTS,
};
use crate::os::SharedRegion;
use crate::siphash::siphash24;

/// Words of the region before the first block: magic, the key's two words, padding to a
/// cache line.
const HEADER_WORDS: usize = 8;
/// Marks a region whose header holds a key (version 1 of this layout).
const MAGIC: u64 = u64::from_be_bytes(*b"ftpgCnt1");

// The first words of a block (a cache line): the worker's own totals.
/// Sessions open in this worker.
const W_TOTAL: usize = 0;
/// Of them, sessions not counted per address (no slot).
const W_IP_OVERFLOW: usize = 1;
/// Logged-in sessions not counted per user (no slot).
const W_USER_OVERFLOW: usize = 2;
/// Failed logins not counted since the worker started (no slot).
const W_FAIL_UNRECORDED: usize = 3;
/// Failed-login slots taken from an address with a single failure since the worker started.
const W_FAIL_EVICTED: usize = 4;
/// Transfers in flight in this worker (relays running), for the supervisor's `worker_lost`.
const W_TRANSFERS: usize = 5;

const TOTAL_WORDS: usize = 8;
const IP_WORDS: usize = IP_SLOTS * 2; // key, count
const USER_WORDS: usize = USER_SLOTS * 2; // key, count
const FAIL_WORDS: usize = FAIL_SLOTS * 4; // key, count, window start, banned until

/// 64-bit words of one worker's block.
pub const BLOCK_WORDS: usize = TOTAL_WORDS + IP_WORDS + USER_WORDS + FAIL_WORDS;

/// The sessions and transfers worker `worker` held, read from `region` (the supervisor's
/// mapping of the workers' shared table) after the worker died, before its successor
/// clears its block.
pub fn worker_load(region: &SharedRegion, worker: usize) -> (u64, u64) {
    let start = HEADER_WORDS + worker * BLOCK_WORDS;
    let word = |i: usize| {
        region
            .words()
            .get(start + i)
            .map_or(0, |w| w.load(Ordering::Relaxed))
    };
    (word(W_TOTAL), word(W_TRANSFERS))
}

/// 64-bit words of the region for `workers` workers (the header and one block each).
pub fn region_words(workers: usize) -> usize {
    HEADER_WORDS + workers * BLOCK_WORDS
}

/// Creates the region for `workers` workers as a memfd (inherited by the workers) with a
/// fresh secret key from the kernel in its header. Called once by the supervisor.
pub fn create_region_fd(workers: usize) -> std::io::Result<std::os::fd::OwnedFd> {
    let words = region_words(workers);
    let fd = SharedRegion::create_memfd(words)?;
    let region = SharedRegion::from_fd(std::os::fd::AsRawFd::as_raw_fd(&fd), words)?;
    write_header(&region, crate::os::random_key()?);
    Ok(fd)
}

/// An anonymous shared region for `workers` workers with a fresh key (inherited by fork;
/// used by tests).
pub fn anonymous_region(workers: usize) -> std::io::Result<SharedRegion> {
    let region = SharedRegion::anonymous_shared(region_words(workers))?;
    write_header(&region, crate::os::random_key()?);
    Ok(region)
}

fn write_header(region: &SharedRegion, key: [u64; 2]) {
    let words = region.words();
    if let (Some(magic), Some(k0), Some(k1)) = (words.first(), words.get(1), words.get(2)) {
        k0.store(key[0], Ordering::Relaxed);
        k1.store(key[1], Ordering::Relaxed);
        magic.store(MAGIC, Ordering::Release);
    }
}

/// Whether a count went where it belongs or into the overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Counted for its address or user.
    Attributed,
    /// No slot: counted only in this worker's overflow (sessions: toward the total).
    Overflow,
}

/// What this worker could not attribute, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overflow {
    /// Open sessions counted toward the total but not per address.
    pub sessions: u64,
    /// Logged-in sessions not counted per user.
    pub users: u64,
    /// Failed logins not counted since the worker started.
    pub failed_logins: u64,
    /// Failed-login slots taken from an address with a single failure.
    pub evicted: u64,
}

/// The kinds of overflow reported to the log (and, but for evictions, to the audit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Report {
    Addresses = 0,
    Users = 1,
    FailedLogins = 2,
    Evicted = 3,
}

const REPORTS: usize = 4;

/// The rate limit on the log lines of one kind of report.
#[derive(Default)]
struct LogLimit {
    last: Cell<Option<Instant>>,
    since: Cell<u64>,
}

/// The view of the shared region from one worker.
pub struct SharedCounters {
    region: SharedRegion,
    worker: usize,
    workers: usize,
    key: [u64; 2],
    /// Reports whose audit record the session has not taken yet (one bit per `Report`).
    pending: Cell<u8>,
    logs: [LogLimit; REPORTS],
}

impl SharedCounters {
    /// `region` holds the header and `workers` blocks; this worker owns block `worker` and
    /// clears it. None when the region is too small or has no key in its header.
    pub fn new(region: SharedRegion, worker: usize, workers: usize) -> Option<SharedCounters> {
        if workers == 0 || worker >= workers || region.words().len() < region_words(workers) {
            return None;
        }
        let header = region.words();
        if header.first()?.load(Ordering::Acquire) != MAGIC {
            return None;
        }
        let key = [
            header.get(1)?.load(Ordering::Relaxed),
            header.get(2)?.load(Ordering::Relaxed),
        ];
        let counters = SharedCounters {
            region,
            worker,
            workers,
            key,
            pending: Cell::new(0),
            logs: Default::default(),
        };
        for word in counters.block(worker) {
            word.store(0, Ordering::Relaxed);
        }
        Some(counters)
    }

    /// Counters private to this process (one worker, no supervisor), with their own key.
    pub fn private() -> std::io::Result<SharedCounters> {
        let region = SharedRegion::heap(region_words(1));
        write_header(&region, crate::os::random_key()?);
        SharedCounters::new(region, 0, 1)
            .ok_or_else(|| std::io::Error::other("the counter region has no key"))
    }

    fn block(&self, worker: usize) -> &[AtomicU64] {
        let words = self.region.words();
        let start = HEADER_WORDS + worker * BLOCK_WORDS;
        words.get(start..start + BLOCK_WORDS).unwrap_or(&[])
    }

    fn word(&self, index: usize) -> Option<&AtomicU64> {
        self.block(self.worker).get(index)
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

    /// The table key of an address: IPv4-mapped IPv6 is the IPv4 address.
    fn ip_key(&self, ip: IpAddr) -> u64 {
        let mut bytes = [0u8; 17];
        let len = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => put(&mut bytes, 4, &v4.octets()),
                None => put(&mut bytes, 6, &v6.octets()),
            },
            IpAddr::V4(v4) => put(&mut bytes, 4, &v4.octets()),
        };
        siphash24(self.key[0], self.key[1], &bytes[..len]).max(1)
    }

    fn user_key(&self, name: &str) -> u64 {
        // Another key for another table (domain separation).
        siphash24(self.key[0], self.key[1] ^ USER_DOMAIN, name.as_bytes()).max(1)
    }

    /// A relay started in this worker.
    pub fn transfer_started(&self) {
        if let Some(w) = self.word(W_TRANSFERS) {
            w.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A relay of this worker ended.
    pub fn transfer_ended(&self) {
        if let Some(w) = self.word(W_TRANSFERS) {
            let _ = w.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Sessions open in all workers.
    pub fn sessions_total(&self) -> u64 {
        (0..self.workers)
            .filter_map(|w| self.block(w).get(W_TOTAL))
            .map(|t| t.load(Ordering::Relaxed))
            .sum()
    }

    /// Sessions open from `ip` in all workers (those counted per address).
    pub fn sessions_from(&self, ip: IpAddr) -> u64 {
        let key = self.ip_key(ip);
        (0..self.workers)
            .map(|w| table_get(self.ips(w), 2, key))
            .sum()
    }

    /// Logged-in sessions of `user` in all workers (those counted per user).
    pub fn sessions_of(&self, user: &str) -> u64 {
        let key = self.user_key(user);
        (0..self.workers)
            .map(|w| table_get(self.users(w), 2, key))
            .sum()
    }

    /// Counts a new session from `ip`: toward the total always, toward the address when
    /// the table has room for it.
    pub fn open_session(&self, ip: IpAddr) -> Counted {
        increment(self.word(W_TOTAL));
        if table_add(self.ips(self.worker), 2, self.ip_key(ip)) {
            return Counted::Attributed;
        }
        increment(self.word(W_IP_OVERFLOW));
        self.report(Report::Addresses);
        Counted::Overflow
    }

    /// Uncounts a session opened with [`open_session`](Self::open_session).
    pub fn close_session(&self, ip: IpAddr) {
        if !table_sub(self.ips(self.worker), 2, self.ip_key(ip)) {
            decrement(self.word(W_IP_OVERFLOW));
        }
        decrement(self.word(W_TOTAL));
    }

    /// Counts a logged-in session of `user` (in the overflow when the table has no room).
    pub fn open_user(&self, user: &str) -> Counted {
        if table_add(self.users(self.worker), 2, self.user_key(user)) {
            return Counted::Attributed;
        }
        increment(self.word(W_USER_OVERFLOW));
        self.report(Report::Users);
        Counted::Overflow
    }

    pub fn close_user(&self, user: &str) {
        if !table_sub(self.users(self.worker), 2, self.user_key(user)) {
            decrement(self.word(W_USER_OVERFLOW));
        }
    }

    /// Records a failed login from `ip` at `now` (unix seconds). Returns true when the
    /// address has now reached `threshold` failures within `window` seconds in all workers
    /// together, and bans it until `now + ban`. A failure the table has no room for is not
    /// counted (false).
    pub fn record_failed_login(
        &self,
        ip: IpAddr,
        now: u64,
        window: u64,
        threshold: u32,
        ban: u64,
    ) -> bool {
        let key = self.ip_key(ip);
        let table = self.fails(self.worker);
        let claimed = find_or_claim(table, 4, key, |slot| {
            // A slot may be reused once its window is over and its ban has expired.
            let start = slot[2].load(Ordering::Relaxed);
            let until = slot[3].load(Ordering::Relaxed);
            now.saturating_sub(start) > window && until <= now
        });
        let slot = match claimed {
            Some(slot) => slot,
            None => match evict_single_failure(table, key, now) {
                Some(slot) => {
                    increment(self.word(W_FAIL_EVICTED));
                    self.report(Report::Evicted);
                    slot
                }
                None => {
                    increment(self.word(W_FAIL_UNRECORDED));
                    self.report(Report::FailedLogins);
                    return false;
                }
            },
        };
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
            return true;
        }
        false
    }

    /// Whether `ip` is banned at `now` by any worker.
    pub fn is_banned(&self, ip: IpAddr, now: u64) -> bool {
        let key = self.ip_key(ip);
        (0..self.workers)
            .filter_map(|w| find(self.fails(w), 4, key))
            .any(|s| s[3].load(Ordering::Relaxed) > now)
    }

    /// What this worker could not attribute (see [`Overflow`]).
    pub fn overflow(&self) -> Overflow {
        let get = |i| self.word(i).map_or(0, |w| w.load(Ordering::Relaxed));
        Overflow {
            sessions: get(W_IP_OVERFLOW),
            users: get(W_USER_OVERFLOW),
            failed_logins: get(W_FAIL_UNRECORDED),
            evicted: get(W_FAIL_EVICTED),
        }
    }

    /// The audit record of a count the last calls could not attribute (a `policy_violation`
    /// of kind `counter_overflow`), each once; None when there is none left. The session
    /// that made the calls takes them right after (at most one per table).
    pub fn take_notice(&self) -> Option<AuditRecord> {
        let pending = self.pending.get();
        let report = [Report::Addresses, Report::Users, Report::FailedLogins]
            .into_iter()
            .find(|r| pending & (1 << *r as u8) != 0)?;
        self.pending.set(pending & !(1 << report as u8));
        let detail = match report {
            Report::Addresses => format!(
                "no room in the shared table of addresses ({IP_SLOTS} per worker): this \
                 session counts toward sessions_total only, not toward sessions_per_ip"
            ),
            Report::Users => format!(
                "no room in the shared table of users ({USER_SLOTS} per worker): this \
                 session does not count toward the user's limits.sessions"
            ),
            Report::FailedLogins | Report::Evicted => format!(
                "no room in the shared table of failed logins ({FAIL_SLOTS} per worker): \
                 this failed login was not counted"
            ),
        };
        Some(AuditRecord::PolicyViolation {
            kind: "counter_overflow",
            detail,
        })
    }

    /// Notes an overflow for the audit (but an eviction) and the rate-limited log.
    fn report(&self, report: Report) {
        if report != Report::Evicted {
            self.pending.set(self.pending.get() | (1 << report as u8));
        }
        let Some(limit) = self.logs.get(report as usize) else {
            return;
        };
        let count = limit.since.get().saturating_add(1);
        let now = Instant::now();
        let due = limit.last.get().is_none_or(|last| {
            now.saturating_duration_since(last) >= Duration::from_secs(COUNTER_OVERFLOW_LOG_SECONDS)
        });
        if !due {
            limit.since.set(count);
            return;
        }
        limit.since.set(0);
        limit.last.set(Some(now));
        let (what, slots) = match report {
            Report::Addresses => (
                "sessions counted toward sessions_total only, not per address",
                IP_SLOTS,
            ),
            Report::Users => ("logins not counted toward their user's cap", USER_SLOTS),
            Report::FailedLogins => ("failed logins not counted", FAIL_SLOTS),
            Report::Evicted => (
                "failed-login slots taken from addresses with a single failure",
                FAIL_SLOTS,
            ),
        };
        log::warn!(
            "worker {}: shared counter table full ({slots} slots, probe window {MAX_PROBE}): \
             {count} {what} since the last report (an address-spraying attack?)",
            self.worker
        );
    }
}

/// Mixed into the key of the user table.
const USER_DOMAIN: u64 = u64::from_be_bytes(*b"usertabl");

fn put(buf: &mut [u8; 17], tag: u8, octets: &[u8]) -> usize {
    buf[0] = tag;
    buf[1..1 + octets.len()].copy_from_slice(octets);
    1 + octets.len()
}

fn increment(word: Option<&AtomicU64>) {
    if let Some(word) = word {
        word.fetch_add(1, Ordering::Relaxed);
    }
}

fn decrement(word: Option<&AtomicU64>) {
    if let Some(word) = word {
        let _ = word.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(1))
        });
    }
}

/// The slots of the probe window of `key` in a table of `width`-word slots.
fn window(table: &[AtomicU64], width: usize, key: u64) -> impl Iterator<Item = &[AtomicU64]> {
    let slots = table.len() / width;
    let start = if slots == 0 {
        0
    } else {
        (key % slots as u64) as usize
    };
    (0..MAX_PROBE.min(slots)).filter_map(move |i| {
        let index = (start + i) % slots;
        table.get(index * width..index * width + width)
    })
}

/// The slot of `key` in a table of `width`-word slots (word 0 is the key), if present.
fn find(table: &[AtomicU64], width: usize, key: u64) -> Option<&[AtomicU64]> {
    for slot in window(table, width, key) {
        match slot[0].load(Ordering::Relaxed) {
            k if k == key => return Some(slot),
            0 => return None,
            _ => {}
        }
    }
    None
}

/// Gives `slot` to `key` with its other words zeroed (owner only).
fn claim(slot: &[AtomicU64], key: u64) -> &[AtomicU64] {
    for word in &slot[1..] {
        word.store(0, Ordering::Relaxed);
    }
    slot[0].store(key, Ordering::Release);
    slot
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
    window(table, width, key)
        .find(|slot| slot[0].load(Ordering::Relaxed) == 0 || reusable(slot))
        .map(|slot| claim(slot, key))
}

/// In the failed-login table, gives `key` the slot of the address in its probe window with a
/// single failure and no ban whose window started first (owner only). Only a count of one
/// is lost: an address that keeps failing keeps its slot.
fn evict_single_failure(table: &[AtomicU64], key: u64, now: u64) -> Option<&[AtomicU64]> {
    window(table, 4, key)
        .filter(|s| s[1].load(Ordering::Relaxed) <= 1 && s[3].load(Ordering::Relaxed) <= now)
        .min_by_key(|s| s[2].load(Ordering::Relaxed))
        .map(|slot| claim(slot, key))
}

fn table_get(table: &[AtomicU64], width: usize, key: u64) -> u64 {
    find(table, width, key).map_or(0, |s| s[1].load(Ordering::Relaxed))
}

/// Counts one more for `key`; false when the table has no room for it.
fn table_add(table: &[AtomicU64], width: usize, key: u64) -> bool {
    match find_or_claim(table, width, key, |s| s[1].load(Ordering::Relaxed) == 0) {
        Some(slot) => {
            slot[1].fetch_add(1, Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// Counts one less for `key`; false when it had no positive count (it was in the overflow).
fn table_sub(table: &[AtomicU64], width: usize, key: u64) -> bool {
    let Some(slot) = find(table, width, key) else {
        return false;
    };
    slot[1]
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
        .is_ok()
}

#[cfg(test)]
#[path = "counters_tests.rs"]
mod tests;
