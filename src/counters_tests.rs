//! Tests of the shared counters (`counters.rs`), including tables filled by 10,000+ keys.

use super::*;

fn two_workers() -> (SharedCounters, SharedCounters) {
    let region = anonymous_region(2).expect("region");
    let a = SharedCounters::new(region.clone_mapping(), 0, 2).expect("worker 0");
    let b = SharedCounters::new(region, 1, 2).expect("worker 1");
    (a, b)
}

/// One worker whose key is `key` (to play the attacker who knows it).
fn with_key(key: [u64; 2]) -> SharedCounters {
    let region = SharedRegion::heap(region_words(1));
    write_header(&region, key);
    SharedCounters::new(region, 0, 1).expect("counters")
}

fn private() -> SharedCounters {
    SharedCounters::private().expect("counters")
}

/// The `n`-th address of a spray (10.0.0.0/8 and beyond, never 192.0.2.0/24).
fn sprayed(n: u32) -> IpAddr {
    IpAddr::from((0x0a00_0000u32 + n).to_be_bytes())
}

const VICTIM: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

/// Four times more keys than the largest table has slots: with a bounded probe window a
/// table is only sure to be full (every window taken, the victim's too) well beyond its
/// size; at 1.2 times it (20,000 keys) a random key left a free slot there now and then.
const SPRAY: u32 = 4
    * (if IP_SLOTS > FAIL_SLOTS {
        IP_SLOTS
    } else {
        FAIL_SLOTS
    }) as u32;

#[test]
fn counts_are_summed_over_workers() {
    let (a, b) = two_workers();
    let ip: IpAddr = "192.0.2.1".parse().expect("ip");
    let other: IpAddr = "192.0.2.2".parse().expect("ip");
    assert_eq!(a.open_session(ip), Counted::Attributed);
    assert_eq!(b.open_session(ip), Counted::Attributed);
    assert_eq!(b.open_session(other), Counted::Attributed);
    assert_eq!(a.sessions_total(), 3);
    assert_eq!(b.sessions_from(ip), 2);
    assert_eq!(a.sessions_from(other), 1);
    b.close_session(ip);
    assert_eq!(a.sessions_from(ip), 1);
    assert_eq!(a.sessions_total(), 2);
    assert_eq!(a.open_user("alice"), Counted::Attributed);
    assert_eq!(b.open_user("alice"), Counted::Attributed);
    assert_eq!(a.sessions_of("alice"), 2);
    assert_eq!(a.sessions_of("bob"), 0);
    a.close_user("alice");
    assert_eq!(b.sessions_of("alice"), 1);
    assert_eq!(a.take_notice(), None, "nothing overflowed");
}

#[test]
fn mapped_and_plain_ipv4_are_one_address() {
    let c = private();
    c.open_session("127.0.0.1".parse().expect("ip"));
    assert_eq!(c.sessions_from("::ffff:127.0.0.1".parse().expect("ip")), 1);
    assert_eq!(c.sessions_from("::1".parse().expect("ip")), 0);
}

#[test]
fn a_restarted_worker_starts_from_zero_and_keeps_the_key() {
    let region = anonymous_region(2).expect("region");
    let a = SharedCounters::new(region.clone_mapping(), 0, 2).expect("worker 0");
    let ip: IpAddr = "192.0.2.1".parse().expect("ip");
    a.open_session(ip);
    let reader = SharedCounters::new(region.clone_mapping(), 1, 2).expect("worker 1");
    assert_eq!(reader.sessions_total(), 1);
    assert_eq!(reader.sessions_from(ip), 1, "both workers use the same key");
    let restarted = SharedCounters::new(region, 0, 2).expect("worker 0 again");
    assert_eq!(reader.sessions_total(), 0);
    assert_eq!(reader.sessions_from(ip), 0);
    assert_eq!(restarted.key, a.key);
}

#[test]
fn every_boot_draws_another_key_and_a_region_without_one_is_refused() {
    let one = SharedCounters::new(anonymous_region(1).expect("region"), 0, 1).expect("one");
    let two = SharedCounters::new(anonymous_region(1).expect("region"), 0, 1).expect("two");
    assert_ne!(one.key, two.key);
    assert_ne!(one.ip_key(VICTIM), two.ip_key(VICTIM));
    let blank = SharedRegion::anonymous_shared(region_words(1)).expect("region");
    assert!(
        SharedCounters::new(blank, 0, 1).is_none(),
        "no magic, no key"
    );
    let small = anonymous_region(1).expect("region");
    assert!(
        SharedCounters::new(small, 0, 2).is_none(),
        "too small for two"
    );
}

#[test]
fn failed_logins_ban_across_workers_and_the_ban_expires() {
    let (a, b) = two_workers();
    let ip: IpAddr = "198.51.100.7".parse().expect("ip");
    let now = 1_000_000;
    assert!(!a.record_failed_login(ip, now, 300, 3, 600));
    assert!(!b.record_failed_login(ip, now + 1, 300, 3, 600));
    assert!(!a.is_banned(ip, now + 1));
    assert!(a.record_failed_login(ip, now + 2, 300, 3, 600));
    assert!(
        b.is_banned(ip, now + 3),
        "the ban is seen by the other worker"
    );
    assert!(b.is_banned(ip, now + 601));
    assert!(!b.is_banned(ip, now + 603), "the ban expires");
    // Failures outside the window do not add up.
    let other: IpAddr = "198.51.100.8".parse().expect("ip");
    assert!(!a.record_failed_login(other, now, 10, 2, 600));
    assert!(!a.record_failed_login(other, now + 100, 10, 2, 600));
}

/// 64 addresses whose keys under `key` start at the victim's slot: on main (fixed public
/// hash keys) anybody could compute them, and they filled the victim's probe window.
fn colliding_addresses(key: [u64; 2]) -> Vec<IpAddr> {
    let attacker = with_key(key);
    let slot = |ip| (attacker.ip_key(ip) % IP_SLOTS as u64) as usize;
    let target = slot(VICTIM);
    let found: Vec<IpAddr> = (0..4_000_000u32)
        .map(sprayed)
        .filter(|ip| slot(*ip) == target)
        .take(MAX_PROBE)
        .collect();
    assert_eq!(found.len(), MAX_PROBE, "enough colliding addresses");
    found
}

#[test]
fn addresses_computed_for_a_known_key_do_not_collide_under_the_secret_one() {
    let known = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
    let attack = colliding_addresses(known);
    // Against the key they were computed for, they fill the victim's window: the victim is
    // still served, counted in the overflow only.
    let steered = with_key(known);
    for ip in &attack {
        assert_eq!(steered.open_session(*ip), Counted::Attributed);
    }
    assert_eq!(steered.open_session(VICTIM), Counted::Overflow);
    assert_eq!(steered.sessions_total(), attack.len() as u64 + 1);
    assert_eq!(steered.sessions_from(VICTIM), 0, "not attributed");
    assert_eq!(steered.overflow().sessions, 1);
    // Against the secret key of a real start, they land anywhere.
    let c = private();
    for ip in &attack {
        c.open_session(*ip);
        assert!(!c.record_failed_login(*ip, 1_000, 300, 3, 600));
    }
    assert_eq!(c.open_session(VICTIM), Counted::Attributed);
    assert_eq!(c.sessions_from(VICTIM), 1);
    assert!(!c.record_failed_login(VICTIM, 1_000, 300, 3, 600));
    assert!(!c.is_banned(VICTIM, 1_001));
    assert_eq!(c.overflow(), Overflow::default());
}

#[test]
fn a_full_address_table_never_refuses_and_balances_when_sessions_close() {
    let c = private();
    let mut overflowed = 0;
    for n in 0..SPRAY {
        if c.open_session(sprayed(n)) == Counted::Overflow {
            overflowed += 1;
        }
    }
    assert!(
        overflowed >= u64::from(SPRAY) - IP_SLOTS as u64,
        "at most one slot per address: {overflowed}"
    );
    assert_eq!(c.overflow().sessions, overflowed);
    // The victim arrives last, in a full table: served and counted toward the total.
    assert_eq!(c.open_session(VICTIM), Counted::Overflow);
    assert_eq!(c.sessions_total(), u64::from(SPRAY) + 1);
    let notice = c.take_notice().expect("an audit record");
    assert!(
        matches!(&notice, AuditRecord::PolicyViolation { kind: "counter_overflow", detail }
            if detail.contains("sessions_total only")),
        "{notice:?}"
    );
    assert_eq!(c.take_notice(), None, "once");
    // Whatever order they close in, nothing leaks.
    for n in (0..SPRAY).rev() {
        c.close_session(sprayed(n));
    }
    c.close_session(VICTIM);
    assert_eq!(c.sessions_total(), 0);
    assert_eq!(c.overflow().sessions, 0);
    // The slots are free again: the victim is counted per address.
    assert_eq!(c.open_session(VICTIM), Counted::Attributed);
    assert_eq!(c.sessions_from(VICTIM), 1);
}

/// A small deterministic generator for the interleaving test.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn close_balances_whatever_the_order() {
    let c = private();
    // Fill the table, so that the tested addresses go to the overflow until fillers leave.
    let fillers: Vec<IpAddr> = (0..IP_SLOTS as u32).map(sprayed).collect();
    for ip in &fillers {
        c.open_session(*ip);
    }
    assert!(c.overflow().sessions > 0, "the table is full");
    let mut filler_open = vec![true; fillers.len()];
    let tested: Vec<IpAddr> = (0..40u8).map(|i| IpAddr::from([203, 0, 113, i])).collect();
    let mut live = vec![0u64; tested.len()];
    let mut total = filler_open.len() as u64;
    let mut rng = Lcg(7);
    for _ in 0..20_000 {
        match rng.next(4) {
            0 | 1 => {
                let i = rng.next(tested.len() as u64) as usize;
                c.open_session(tested[i]);
                live[i] += 1;
                total += 1;
            }
            2 => {
                let i = rng.next(tested.len() as u64) as usize;
                if live[i] > 0 {
                    c.close_session(tested[i]);
                    live[i] -= 1;
                    total -= 1;
                }
            }
            _ => {
                // A filler leaves (its slot may go to a tested address) or comes back.
                let f = rng.next(fillers.len() as u64) as usize;
                if filler_open[f] {
                    c.close_session(fillers[f]);
                    total -= 1;
                } else {
                    c.open_session(fillers[f]);
                    total += 1;
                }
                filler_open[f] = !filler_open[f];
            }
        }
        assert_eq!(c.sessions_total(), total);
    }
    for (i, ip) in tested.iter().enumerate() {
        assert!(
            c.sessions_from(*ip) <= live[i],
            "never over-counted: {ip} {} > {}",
            c.sessions_from(*ip),
            live[i]
        );
        for _ in 0..live[i] {
            c.close_session(*ip);
        }
    }
    for (f, open) in filler_open.iter().enumerate() {
        if *open {
            c.close_session(fillers[f]);
        }
    }
    assert_eq!(c.sessions_total(), 0);
    assert_eq!(c.overflow().sessions, 0, "the overflow does not leak");
    for ip in &tested {
        assert_eq!(c.sessions_from(*ip), 0);
    }
}

#[test]
fn a_full_user_table_never_refuses_a_login() {
    let c = private();
    let names: Vec<String> = (0..SPRAY).map(|n| format!("sprayed-{n}")).collect();
    let overflowed = names
        .iter()
        .filter(|n| c.open_user(n) == Counted::Overflow)
        .count();
    assert!(overflowed >= names.len() - USER_SLOTS, "{overflowed}");
    assert_eq!(c.open_user("alice"), Counted::Overflow);
    assert!(c.sessions_of("alice") <= 1);
    assert!(matches!(
        c.take_notice(),
        Some(AuditRecord::PolicyViolation {
            kind: "counter_overflow",
            ..
        })
    ));
    for n in &names {
        c.close_user(n);
    }
    c.close_user("alice");
    assert_eq!(c.overflow().users, 0);
    assert_eq!(c.open_user("alice"), Counted::Attributed);
    assert_eq!(c.sessions_of("alice"), 1);
}

#[test]
fn single_failures_from_many_addresses_do_not_stop_the_counting_of_one_that_keeps_failing() {
    let c = private();
    let now = 1_000_000;
    let (window, threshold, ban) = (300, 3, 600);
    let attacker: IpAddr = "198.51.100.66".parse().expect("ip");
    assert!(!c.record_failed_login(attacker, now, window, threshold, ban));
    assert!(!c.record_failed_login(attacker, now, window, threshold, ban));
    for n in 0..SPRAY {
        assert!(
            !c.record_failed_login(sprayed(n), now + 1, window, threshold, ban),
            "a single failure bans nobody"
        );
    }
    assert!(c.overflow().evicted > 0, "the table was full");
    // The address with two failures kept its slot: the third bans it.
    assert!(c.record_failed_login(attacker, now + 2, window, threshold, ban));
    assert!(c.is_banned(attacker, now + 3));
    // The victim was never banned, and its own failures count.
    assert!(!c.is_banned(VICTIM, now + 3));
    assert!(!c.record_failed_login(VICTIM, now + 3, window, threshold, ban));
    assert!(!c.record_failed_login(VICTIM, now + 3, window, threshold, ban));
    assert!(c.record_failed_login(VICTIM, now + 3, window, threshold, ban));
    assert!((0..SPRAY).all(|n| !c.is_banned(sprayed(n), now + 3)));
}

#[test]
fn a_failed_login_table_full_of_repeat_failures_does_not_count_and_never_bans() {
    let c = private();
    let now = 1_000_000;
    let (window, threshold, ban) = (300, 10, 600);
    for n in 0..SPRAY {
        for _ in 0..2 {
            c.record_failed_login(sprayed(n), now, window, threshold, ban);
        }
    }
    let before = c.overflow().failed_logins;
    assert!(
        before > 0,
        "the table is full of addresses with two failures"
    );
    let _ = c.take_notice();
    // The victim finds no room: its failures are not counted, it is never banned, and the
    // failure is reported.
    for i in 1..=20 {
        assert!(!c.record_failed_login(VICTIM, now, window, threshold, ban));
        assert_eq!(c.overflow().failed_logins, before + i, "not counted");
    }
    assert!(!c.is_banned(VICTIM, now + 1));
    assert!(matches!(
        c.take_notice(),
        Some(AuditRecord::PolicyViolation { kind: "counter_overflow", detail })
            if detail.contains("failed login was not counted")
    ));
    // Once the window is over, the slots are reusable and counting resumes.
    let later = now + window + 1;
    assert!(!c.record_failed_login(VICTIM, later, window, 2, ban));
    assert!(c.record_failed_login(VICTIM, later, window, 2, ban));
}

#[test]
fn the_tables_are_bounded_by_the_block() {
    // The whole region is fixed at start whatever the traffic: header and blocks.
    assert_eq!(
        BLOCK_WORDS,
        TOTAL_WORDS + 2 * IP_SLOTS + 2 * USER_SLOTS + 4 * FAIL_SLOTS
    );
    assert_eq!(region_words(4), HEADER_WORDS + 4 * BLOCK_WORDS);
    const { assert!(BLOCK_WORDS * 8 < 1024 * 1024, "under 1 MiB per worker") };
}
