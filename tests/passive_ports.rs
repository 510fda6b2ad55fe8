//! Passive ports are drawn at random within the worker's slice of the range: twenty PASV in
//! one session give twenty different ports of the serving worker's slice, not a sequence,
//! and the session still transfers afterwards.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use common::*;
use ftpgate::services::passive::PassivePorts;

#[test]
fn twenty_pasv_in_one_session_are_random_ports_of_the_workers_slice() {
    let vs = Vsftpd::start();
    let data = random_bytes(256 * 1024, 61);
    vs.put_file("pub/p.bin", &data);
    let (lo, hi) = port_range(200);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .workers(2)
        .set(&["passive", "ports"], json!(format!("{lo}-{hi}")))
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    // Which worker serves this session: its session_start carries our client port.
    let me = c.local_addr().to_string();
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter()
            .any(|e| e["event"] == "session_start" && e["client"] == me.as_str())
    });
    let worker = events
        .iter()
        .find(|e| e["event"] == "session_start" && e["client"] == me.as_str())
        .and_then(|e| e["worker"].as_u64())
        .expect("the session's worker") as usize;
    let (first, last) = PassivePorts::slice(lo, hi, worker, 2).range();
    assert_eq!(last - first + 1, 100, "half of the range each");
    let mut ports = Vec::new();
    for _ in 0..20 {
        let (code, text) = c.cmd("PASV");
        assert_eq!(code, 227, "{text}");
        let addr = parse_227(&text).unwrap_or_else(|| panic!("227: {text}"));
        ports.push(addr.port());
    }
    for port in &ports {
        assert!(
            (first..=last).contains(port),
            "{port} outside worker {worker}'s slice {first}-{last}: {ports:?}"
        );
    }
    // Each PASV closes the previous listener; a port released by this client is in
    // quarantine, so twenty PASV give twenty ports.
    let distinct: BTreeSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), 20, "{ports:?}");
    let successors = ports.windows(2).filter(|w| w[1] == w[0] + 1).count();
    assert!(successors < 5, "not a sequence: {ports:?}");
    let ascending = ports.windows(2).filter(|w| w[1] > w[0]).count();
    assert!((2..=17).contains(&ascending), "not sorted: {ports:?}");
    // The session works after all that.
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(sha256_bytes(&c.retr("/pub/p.bin")), sha256_bytes(&data));
    assert_eq!(c.cmd("QUIT").0, 221);
}

/// `passive.advertise` by network: a client inside names the address it connected to, one
/// from another network the rule's address; the transfer works for the inside one.
#[test]
fn passive_replies_advertise_by_the_clients_network() {
    let vs = Vsftpd::start();
    let data = random_bytes(100 * 1024, 62);
    vs.put_file("pub/a.bin", &data);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .set(
            &["passive", "advertise"],
            json!([
                { "from": ["127.0.0.2/32"], "address": "127.0.0.9" },
                { "from": ["127.0.0.0/8"] },
                { "address": "203.0.113.7" }
            ]),
        )
        .start();
    let mut inside = Ftp::connect(gate.addr());
    inside.login_ok("ftp", "x");
    let reply = inside.cmd("PASV");
    assert_eq!(reply.0, 227);
    let addr = parse_227(&reply.1).expect("227 address");
    assert_eq!(addr.ip().to_string(), "127.0.0.1", "{}", reply.1);
    assert_eq!(inside.cmd("QUIT").0, 221);

    let mut other = Ftp::connect_raw_from(gate.addr(), "127.0.0.2".parse().expect("ip"));
    assert_eq!(other.read_reply().0, 220);
    other.login_ok("ftp", "x");
    let reply = other.cmd("PASV");
    assert_eq!(reply.0, 227);
    let addr = parse_227(&reply.1).expect("227 address");
    assert_eq!(addr.ip().to_string(), "127.0.0.9", "{}", reply.1);

    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/a.bin"), data);
}
