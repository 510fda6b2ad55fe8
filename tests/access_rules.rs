//! Access rules for real, from other loopback source addresses: source CIDR lists (global
//! and per user), country and ASN rules from the operator's prefix table, time windows, and
//! the per-user FXP exception. Every refusal is a protocol reply and an audit event naming
//! the rule; the backend never sees a refused login; other sessions go on.

mod common;

use std::net::{IpAddr, TcpListener};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn builder(vs: &Vsftpd) -> FtpgateBuilder {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
}

fn prefix_table() -> String {
    format!("{}/tests/data/prefixes.tsv", env!("CARGO_MANIFEST_DIR"))
}

/// The greeting code of a connection from `source`.
fn greeting_from(gate: &Ftpgate, source: &str) -> u16 {
    let mut c = Ftp::connect_raw_from(gate.addr(), ip(source));
    c.read_reply().0
}

fn violation_with(gate: &Ftpgate, needle: &str) -> bool {
    let events = gate.wait_audit(std::time::Duration::from_secs(5), |ev| {
        ev.iter().any(|e| {
            e["event"] == "policy_violation"
                && e["detail"].as_str().is_some_and(|d| d.contains(needle))
        })
    });
    events.iter().any(|e| {
        e["event"] == "policy_violation" && e["detail"].as_str().is_some_and(|d| d.contains(needle))
    })
}

/// USER/PASS from `source`; returns the PASS reply code.
fn login_from(gate: &Ftpgate, source: &str, user: &str) -> u16 {
    let mut c = Ftp::connect_raw_from(gate.addr(), ip(source));
    assert_eq!(c.read_reply().0, 220);
    assert_eq!(c.cmd(&format!("USER {user}")).0, 331);
    c.cmd("PASS x").0
}

#[test]
fn global_deny_from_refuses_at_connect_with_421() {
    let vs = Vsftpd::start();
    let mut gate = builder(&vs)
        .set(&["access", "deny_from"], json!(["127.0.0.2/32"]))
        .start();
    assert_eq!(greeting_from(&gate, "127.0.0.2"), 421);
    assert!(violation_with(&gate, "deny_from 127.0.0.2/32"));
    assert_eq!(greeting_from(&gate, "127.0.0.3"), 220);
    gate.assert_healthy();
}

#[test]
fn global_allow_from_refuses_everyone_else() {
    let vs = Vsftpd::start();
    let mut gate = builder(&vs)
        .set(
            &["access", "allow_from"],
            json!(["127.0.0.1/32", "::1/128"]),
        )
        .start();
    assert_eq!(greeting_from(&gate, "127.0.0.5"), 421);
    assert!(violation_with(&gate, "allow_from"));
    gate.assert_healthy();
}

#[test]
fn a_user_deny_from_refuses_that_user_only_and_the_backend_never_sees_it() {
    let vs = Vsftpd::start();
    let mut gate = builder(&vs)
        .set(&["users", "ftp", "deny_from"], json!(["127.0.0.2/32"]))
        .start();
    let mark = vs.log_mark();
    assert_eq!(login_from(&gate, "127.0.0.2", "ftp"), 530);
    assert_eq!(
        Vsftpd::connects(&vs.log_since(mark)),
        0,
        "no backend connection for a refused login"
    );
    assert!(violation_with(&gate, "deny_from 127.0.0.2/32"));
    assert_eq!(login_from(&gate, "127.0.0.2", "anonymous"), 230);
    assert_eq!(login_from(&gate, "127.0.0.3", "ftp"), 230);
    gate.assert_healthy();
}

#[test]
fn country_and_asn_rules_use_the_prefix_table() {
    let vs = Vsftpd::start();
    let mut gate = builder(&vs)
        .set(&["access", "prefix_table"], json!(prefix_table()))
        .set(&["access", "deny_countries"], json!(["KP"]))
        .set(&["users", "ftp", "allow_asns"], json!([64500]))
        .start();
    // 127.0.0.3 is KP in the table: refused at connect.
    assert_eq!(greeting_from(&gate, "127.0.0.3"), 421);
    assert!(violation_with(&gate, "deny_countries KP"));
    // ftp may only come from AS64500 (127.0.0.1); 127.0.0.2 is AS64501.
    assert_eq!(login_from(&gate, "127.0.0.2", "ftp"), 530);
    assert!(violation_with(&gate, "allow_asns"));
    assert_eq!(login_from(&gate, "127.0.0.1", "ftp"), 230);
    // Addresses the table does not know are not denied by a deny rule.
    assert_eq!(greeting_from(&gate, "127.0.5.5"), 220);
    gate.assert_healthy();
}

/// A window of `days`/`hours` in UTC that starts `from_now_minutes` from now and lasts
/// `length_minutes` (all days).
fn window(from_now_minutes: i64, length_minutes: i64) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64;
    let minute_of_day = (now / 60) % 1440;
    let start = (minute_of_day + from_now_minutes).rem_euclid(1440);
    let end = (start + length_minutes).rem_euclid(1440);
    json!({
        "days": "all",
        "hours": format!("{:02}:{:02}-{:02}:{:02}", start / 60, start % 60, end / 60, end % 60),
        "utc_offset": "+00:00"
    })
}

#[test]
fn time_windows_allow_logins_only_inside_them() {
    let vs = Vsftpd::start();
    let mut gate = builder(&vs)
        // ftp: a window that opens in two hours; anonymous: one open now (±1 h).
        .set(&["users", "ftp", "time_windows"], json!([window(120, 60)]))
        .set(
            &["users", "anonymous", "time_windows"],
            json!([window(-60, 120)]),
        )
        .start();
    assert_eq!(login_from(&gate, "127.0.0.1", "ftp"), 530);
    assert!(violation_with(&gate, "time windows"));
    assert_eq!(login_from(&gate, "127.0.0.1", "anonymous"), 230);
    gate.assert_healthy();
}

#[test]
fn allow_fxp_to_lets_a_listed_address_receive_data_and_nothing_else() {
    let vs = Vsftpd::start();
    let data = random_bytes(50_000, 31);
    vs.put_file("pub/fxp.bin", &data);
    let mut gate = builder(&vs)
        .set(
            &["users", "anonymous", "allow_fxp_to"],
            json!(["127.0.0.7/32"]),
        )
        .start();
    let partner = TcpListener::bind("127.0.0.7:0").expect("bind partner");
    let port = partner.local_addr().expect("addr").port();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    // Not listed: still refused.
    assert_eq!(
        c.cmd(&format!("PORT 127,0,0,8,{},{}", port >> 8, port & 0xff))
            .0,
        501
    );
    // Listed: accepted, and the partner receives the file.
    assert_eq!(
        c.cmd(&format!("PORT 127,0,0,7,{},{}", port >> 8, port & 0xff))
            .0,
        200
    );
    c.send(b"RETR /pub/fxp.bin\r\n");
    let mut conn = accept_within(&partner, IO_TIMEOUT);
    assert_eq!(c.read_reply().0, 150);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(got, data);
    // The read-only user has no exception.
    let mut r = Ftp::connect(gate.addr());
    r.login_ok("ftp", "x");
    assert_eq!(
        r.cmd(&format!("PORT 127,0,0,7,{},{}", port >> 8, port & 0xff))
            .0,
        501
    );
    gate.assert_healthy();
}

#[test]
fn ipv6_clients_are_matched_by_ipv6_rules_and_transfer_over_epsv() {
    let vs = Vsftpd::start();
    let data = random_bytes(200_000, 33);
    vs.put_file("pub/six.bin", &data);
    let gate = builder(&vs)
        .listen_ipv6()
        .set(&["access", "allow_from"], json!(["::1/128"]))
        .set(&["users", "ftp", "deny_from"], json!(["::1/128"]))
        // An IPv4 network never matches an IPv6 client.
        .set(&["users", "anonymous", "deny_from"], json!(["127.0.0.0/8"]))
        .start();
    assert!(gate.addr().is_ipv6());
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER ftp").0, 331);
    assert_eq!(c.cmd("PASS x").0, 530);
    assert!(violation_with(&gate, "deny_from ::1/128"));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    // PASV is IPv4-only; EPSV works, and EPRT names the client's own IPv6 address.
    assert_eq!(c.cmd("PASV").0, 425);
    let mut conn = c.epsv_connect();
    assert_eq!(c.cmd("RETR /pub/six.bin").0, 150);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(got, data);
    let listener = TcpListener::bind("[::1]:0").expect("bind ::1");
    let port = listener.local_addr().expect("addr").port();
    assert_eq!(c.cmd(&format!("EPRT |2|::1|{port}|")).0, 200);
    c.send(b"RETR /pub/six.bin\r\n");
    let mut conn = accept_within(&listener, IO_TIMEOUT);
    assert_eq!(c.read_reply().0, 150);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(got, data);
}
