//! Hostile peers against the shared counters: nobody can steer the tables' hash, and a full
//! table refuses nobody. The attacks come over loopback from many 127.x.y.z source
//! addresses (every address of 127.0.0.0/8 is local on Linux); the victim is 127.0.0.1.
//!
//! - On main (fixed public hash keys, 64 probes, a full table refused or banned), 64
//!   connections from computed addresses made 127.0.0.1 get `421 Too many sessions`, and 64
//!   single failed logins from them got its logins banned. The same attack now changes
//!   nothing for the victim.
//! - More single failed logins from distinct addresses than the failed-login table has slots
//!   (`COUNTER_FAILED_LOGIN_SLOTS`): the table is full, the victim still logs in and
//!   transfers, and an address that keeps failing is still banned.
//! - More logins held at once (against a backend that never answers) than the user table has
//!   slots: the victim still logs in, and each login the table had no room for is a
//!   `counter_overflow` policy violation in the audit trail.

mod common;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Instant;

use serde_json::{Value, json};

use common::*;
use ftpgate::limits::{COUNTER_ADDRESS_SLOTS, COUNTER_FAILED_LOGIN_SLOTS, COUNTER_MAX_PROBE};

const VICTIM: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn gate(vs: &Vsftpd, failed_logins_per_ip: u32) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .user("anonymous", "full", "vsftpd")
        .set(
            &["defaults", "limits", "failed_logins_per_ip"],
            json!(failed_logins_per_ip),
        )
        .start()
}

/// The slot main's tables gave an address: `DefaultHasher::new()` (fixed keys) of the
/// address, modulo the table size.
fn main_slot(ip: IpAddr) -> u64 {
    let mut h = DefaultHasher::new();
    ip.hash(&mut h);
    h.finish().max(1) % COUNTER_ADDRESS_SLOTS as u64
}

/// A plain TCP connection to `addr` from the local address `source`.
fn connect_from(addr: SocketAddr, source: IpAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket
        .connect_timeout(&addr.into(), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect from {source}: {e}"));
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
}

/// Reads replies until one with a code in `until` (or the end); returns its code.
fn reply_code(reader: &mut BufReader<TcpStream>, until: &[&str]) -> Option<u16> {
    let mut line = String::new();
    // Bounded: greeting, 331, 530 — a handful of lines.
    for _ in 0..16 {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(code) = until.iter().find(|c| line.starts_with(*c)) {
            return code.trim().parse().ok();
        }
    }
    None
}

/// One failed login (an unknown user: no backend involved) from each of `sources`, all at
/// once (the 530s come after ftpgate's failed-login delay); returns the final codes.
fn failed_logins_from(addr: SocketAddr, sources: &[IpAddr]) -> Vec<Option<u16>> {
    let mut conns = Vec::with_capacity(sources.len());
    for source in sources {
        let mut stream = connect_from(addr, *source);
        stream
            .write_all(b"USER sprayer\r\nPASS wrong\r\n")
            .expect("send");
        conns.push(BufReader::new(stream));
    }
    conns
        .iter_mut()
        .map(|c| reply_code(c, &["530 ", "421 "]))
        .collect()
}

/// The victim's normal day: a failed login is a 530 (not a ban), then a login, a download
/// whose SHA-256 matches, and QUIT.
fn victim_is_served(gate: &Ftpgate, data: &[u8]) {
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER nobody").0, 331);
    let (code, text) = c.cmd("PASS wrong");
    assert_eq!(
        code, 530,
        "a failed login of the victim is counted, not a ban: {text}"
    );
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(sha256_bytes(&c.retr("/pub/v.bin")), sha256_bytes(data));
    assert_eq!(c.cmd("QUIT").0, 221);
}

/// The audit's policy violations (the other events are not parsed: there are many).
fn violations(gate: &Ftpgate) -> Vec<Value> {
    gate.audit_lines()
        .iter()
        .filter(|l| l.contains("\"policy_violation\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn the_addresses_that_filled_the_victims_probe_window_on_main_no_longer_hurt_it() {
    // 64 addresses of 127.0.0.0/8 whose slot on main was 127.0.0.1's.
    let target = main_slot(VICTIM);
    let attack: Vec<IpAddr> = (0x7f00_0002u32..0x7fff_fffe)
        .map(|n| IpAddr::from(n.to_be_bytes()))
        .filter(|ip| main_slot(*ip) == target)
        .take(COUNTER_MAX_PROBE)
        .collect();
    assert_eq!(attack.len(), COUNTER_MAX_PROBE);
    let vs = Vsftpd::start();
    let data = random_bytes(300 * 1024, 71);
    vs.put_file("pub/v.bin", &data);
    let mut gate = gate(&vs, 10);
    // 64 sessions held open from those addresses.
    let mut held: Vec<Ftp> = attack
        .iter()
        .map(|ip| Ftp::connect_raw_from(gate.addr(), *ip))
        .collect();
    for c in &mut held {
        assert_eq!(c.read_reply().0, 220);
    }
    // And a single failed login from each of them.
    for c in &mut held {
        c.send(b"USER sprayer\r\nPASS wrong\r\n");
    }
    for c in &mut held {
        assert_eq!(c.read_reply().0, 331);
        assert_eq!(c.read_reply().0, 530);
    }
    // On main: 421 Too many sessions, then 421 Too many failed logins.
    victim_is_served(&gate, &data);
    let violations = violations(&gate);
    assert!(
        violations.iter().all(|v| v["kind"] != "limit"
            && v["kind"] != "failed_logins"
            && v["kind"] != "counter_overflow"),
        "64 addresses do not fill a table whose hash they cannot compute: {violations:?}"
    );
    drop(held);
    gate.assert_healthy();
}

/// The `n`-th sprayed source address: 127.10.0.0 and up (never 127.0.0.1 nor 127.9.9.9).
fn sprayed(n: usize) -> IpAddr {
    IpAddr::from((0x7f0a_0000u32 + n as u32).to_be_bytes())
}

#[test]
fn more_failed_logins_from_distinct_addresses_than_the_table_holds_leave_the_victim_served() {
    let limit = ftpgate::os::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    // One connection per address at a time, a batch at once; ftpgate holds as many.
    let batch = 2048.min((limit as usize).saturating_sub(256) / 2).max(64);
    let spray = COUNTER_FAILED_LOGIN_SLOTS + 2048;
    let vs = Vsftpd::start();
    let data = random_bytes(300 * 1024, 72);
    vs.put_file("pub/v.bin", &data);
    let mut gate = gate(&vs, 3);
    let started = Instant::now();
    let sources: Vec<IpAddr> = (0..spray).map(sprayed).collect();
    for chunk in sources.chunks(batch) {
        let codes = failed_logins_from(gate.addr(), chunk);
        assert!(
            codes.iter().all(|c| *c == Some(530)),
            "a single failed login is a 530 for everyone: {:?}",
            codes.iter().find(|c| **c != Some(530))
        );
    }
    eprintln!(
        "{spray} failed logins from {spray} addresses (table: {COUNTER_FAILED_LOGIN_SLOTS} \
         slots per worker) in {:.1} s, {batch} at a time",
        started.elapsed().as_secs_f64()
    );
    // The table was full: the log says so (rate-limited), naming its size.
    let log = gate.stderr_log();
    let full = format!("shared counter table full ({COUNTER_FAILED_LOGIN_SLOTS} slots");
    let reports = log.matches(&full).count();
    assert!(reports >= 1, "the full table is reported");
    assert!(reports < 20, "rate-limited, not once per login: {reports}");
    // The victim is served.
    victim_is_served(&gate, &data);
    // An address that keeps failing is still counted and banned at its third failure.
    let brute = IpAddr::from([127, 9, 9, 9]);
    let mut c = Ftp::connect_raw_from(gate.addr(), brute);
    assert_eq!(c.read_reply().0, 220);
    for attempt in 1..=3 {
        assert_eq!(c.cmd("USER root").0, 331);
        let (code, text) = c.cmd("PASS guess");
        let expected = if attempt < 3 { 530 } else { 421 };
        assert_eq!(code, expected, "attempt {attempt}: {text}");
    }
    let mut again = Ftp::connect_raw_from(gate.addr(), brute);
    assert_eq!(again.read_reply().0, 421, "banned");
    // Nobody else was banned or refused.
    let violations = violations(&gate);
    let refused: Vec<&Value> = violations
        .iter()
        .filter(|v| v["kind"] == "failed_logins" || v["kind"] == "limit")
        .collect();
    assert!(
        refused.iter().all(|v| v["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.9.9.9:"))),
        "only the address that kept failing: {refused:?}"
    );
    assert!(!refused.is_empty());
    // And a normal session works after.
    gate.assert_healthy();
}

#[test]
fn a_full_user_table_still_lets_the_victim_log_in_and_says_so_in_the_audit() {
    ftpgate::os::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    let vs = Vsftpd::start();
    let data = random_bytes(300 * 1024, 73);
    vs.put_file("pub/v.bin", &data);
    // A backend whose accept queue is full: connects to it hang (SYN-SENT) for ftpgate's
    // backend connect timeout (10 s), and meanwhile each login stays counted for its user.
    let stuck =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    stuck
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .expect("bind");
    stuck.listen(0).expect("listen");
    let stuck_addr = stuck.local_addr().expect("addr").as_socket().expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&stuck_addr, std::time::Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    // More users at once than the user table has slots (4096 per worker).
    let users = ftpgate::limits::COUNTER_USER_SLOTS + 256;
    let mut builder = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .backend("stuck", stuck_addr)
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .user("anonymous", "full", "vsftpd")
        .set(
            &["defaults", "limits", "sessions_waiting_for_backend"],
            json!(users + 100),
        );
    for i in 0..users {
        builder = builder.user(&format!("s{i}"), "read-only", "stuck");
    }
    let mut gate = builder.start();
    let started = Instant::now();
    let mut held = Vec::with_capacity(users);
    for i in 0..users {
        let source = IpAddr::from((0x7f14_0000u32 + i as u32).to_be_bytes());
        let mut stream = connect_from(gate.addr(), source);
        stream
            .write_all(format!("USER s{i}\r\nPASS x\r\n").as_bytes())
            .expect("send");
        held.push(stream);
    }
    let overflowed = |gate: &Ftpgate| {
        violations(gate)
            .into_iter()
            .filter(|v| v["kind"] == "counter_overflow")
            .collect::<Vec<Value>>()
    };
    assert!(
        wait_until(std::time::Duration::from_secs(8), || !overflowed(&gate)
            .is_empty()),
        "the user table overflowed"
    );
    // The victim logs in while the table is full (on main: 421 Too many sessions).
    victim_is_served(&gate, &data);
    assert!(
        started.elapsed().as_secs() < 10,
        "all within the backend connect timeout: {:?}",
        started.elapsed()
    );
    let events = overflowed(&gate);
    assert!(
        events.iter().all(|e| e["session"].is_string()
            && e["client"].is_string()
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("shared table of users"))),
        "{events:?}"
    );
    assert!(
        violations(&gate).iter().all(|v| v["kind"] != "limit"),
        "nobody refused for a full table"
    );
    eprintln!(
        "{users} logins held at once: {} counted in the overflow, in {:.1} s",
        events.len(),
        started.elapsed().as_secs_f64()
    );
    drop(held);
    drop(fillers);
    gate.assert_healthy();
}
