//! Backend pools under active health checks, passive ejection and the sticky balance, with
//! real vsftpd backends: a dead server is taken out by the check before any client tries it;
//! a server that dies is ejected and comes back after it restarts; a sticky user returns to
//! its server across sessions, workers and restarts of ftpgate.

mod common;

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use serde_json::{Value, json};

use common::*;

const WAIT: Duration = Duration::from_secs(20);

/// A port on loopback nobody listens on.
fn dead_port() -> SocketAddr {
    let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = dead.local_addr().expect("addr");
    drop(dead);
    addr
}

/// ftpgate in front of a pool `p` of `servers`, with health checks every `interval` s.
fn gate(servers: &[SocketAddr], balance: &str, interval: u64, workers: u32) -> Ftpgate {
    let list: Vec<String> = servers.iter().map(ToString::to_string).collect();
    Ftpgate::builder()
        .backend("p", servers[0])
        .standard_roles()
        .user("anonymous", "full", "p")
        .user("ftp", "full", "p")
        .workers(workers)
        .set(&["backends", "p", "servers"], json!(list))
        .set(&["backends", "p", "balance"], json!(balance))
        .set(
            &["backends", "p", "health_check"],
            json!({ "interval": interval, "timeout": 2 }),
        )
        .start()
}

/// The `server` of every successful login in the audit trail, in order.
fn login_servers(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "login" && e["result"] == "ok")
        .map(|e| e["server"].as_str().unwrap_or("(none)").to_string())
        .collect()
}

/// One session: login, PWD, QUIT; returns after the QUIT's answer.
fn session(gate: &Ftpgate, user: &str) {
    let mut c = Ftp::connect(gate.addr());
    c.login_ok(user, "x");
    assert_eq!(c.cmd("PWD").0, 257);
    assert_eq!(c.cmd("QUIT").0, 221);
}

fn checks_failed(log: &str, server: SocketAddr) -> usize {
    let needle = format!("health check of {server} (pool p) failed: ");
    log.lines().filter(|l| l.contains(&needle)).count()
}

fn came_back(log: &str, server: SocketAddr) -> usize {
    let needle = format!("health check of {server} (pool p) passed: back in rotation");
    log.lines().filter(|l| l.contains(&needle)).count()
}

fn session_connects(log: &str, server: SocketAddr) -> usize {
    let needle = format!("connecting to backend {server}");
    log.lines().filter(|l| l.contains(&needle)).count()
}

#[test]
fn the_health_check_takes_a_dead_server_out_before_any_client_tries_it() {
    let vs = Vsftpd::start();
    let dead = dead_port();
    // The dead server first: first-available would try it first for every login.
    let gate = gate(&[dead, vs.addr()], "first-available", 30, 1);
    assert!(
        wait_until(WAIT, || checks_failed(&gate.stderr_log(), dead) >= 1),
        "no failed health check of {dead}:\n{}",
        gate.stderr_log()
    );
    for _ in 0..5 {
        session(&gate, "anonymous");
    }
    let events = gate.wait_audit(WAIT, |ev| login_servers(ev).len() >= 5);
    assert_eq!(
        login_servers(&events),
        vec![vs.addr().to_string(); 5],
        "every login on the live server"
    );
    let log = gate.stderr_log();
    assert_eq!(
        session_connects(&log, dead),
        0,
        "no session connect went to the dead server:\n{log}"
    );
    assert_eq!(session_connects(&log, vs.addr()), 5, "{log}");
    assert_eq!(checks_failed(&log, vs.addr()), 0, "{log}");
}

#[test]
fn a_server_that_dies_is_ejected_and_comes_back_after_it_restarts() {
    let mut first = Vsftpd::start();
    let second = Vsftpd::start();
    let gate = gate(&[first.addr(), second.addr()], "first-available", 1, 1);
    session(&gate, "anonymous");
    let events = gate.wait_audit(WAIT, |ev| !login_servers(ev).is_empty());
    assert_eq!(login_servers(&events), vec![first.addr().to_string()]);

    first.kill();
    assert!(
        wait_until(WAIT, || checks_failed(&gate.stderr_log(), first.addr())
            >= 1),
        "the dead server was not found out:\n{}",
        gate.stderr_log()
    );
    let connects_before = session_connects(&gate.stderr_log(), first.addr());
    for _ in 0..3 {
        session(&gate, "anonymous");
    }
    let events = gate.wait_audit(WAIT, |ev| login_servers(ev).len() >= 4);
    assert_eq!(
        login_servers(&events)[1..],
        vec![second.addr().to_string(); 3],
        "while it is down, the other server serves"
    );
    assert_eq!(
        session_connects(&gate.stderr_log(), first.addr()),
        connects_before,
        "no session tried the ejected server"
    );

    first.restart();
    assert!(
        wait_until(WAIT, || came_back(&gate.stderr_log(), first.addr()) >= 1),
        "the restarted server did not come back:\n{}",
        gate.stderr_log()
    );
    session(&gate, "anonymous");
    let events = gate.wait_audit(WAIT, |ev| login_servers(ev).len() >= 5);
    assert_eq!(
        login_servers(&events).last(),
        Some(&first.addr().to_string()),
        "back in rotation, first again"
    );
}

#[test]
fn a_session_connect_failure_ejects_the_server_without_health_checks() {
    let vs = Vsftpd::start();
    let dead = dead_port();
    let list = vec![dead.to_string(), vs.addr().to_string()];
    let gate = Ftpgate::builder()
        .backend("p", dead)
        .standard_roles()
        .user("anonymous", "full", "p")
        .set(&["backends", "p", "servers"], json!(list))
        .set(&["backends", "p", "balance"], json!("first-available"))
        .start();
    for _ in 0..4 {
        session(&gate, "anonymous");
    }
    let events = gate.wait_audit(WAIT, |ev| login_servers(ev).len() >= 4);
    assert_eq!(login_servers(&events), vec![vs.addr().to_string(); 4]);
    let log = gate.stderr_log();
    assert_eq!(
        session_connects(&log, dead),
        1,
        "tried once, then out of rotation for its back-off:\n{log}"
    );
    assert!(
        log.contains(&format!(
            "backend {dead} failed the session; out of rotation for 30 s"
        )),
        "{log}"
    );
}

/// Which of the two servers holds `name` in its `pub/`.
fn holder(a: &Vsftpd, b: &Vsftpd, name: &str) -> Vec<SocketAddr> {
    [a, b]
        .iter()
        .filter(|v| v.pub_dir().join(name).exists())
        .map(|v| v.addr())
        .collect()
}

#[test]
fn a_sticky_user_returns_to_its_server_across_sessions_workers_and_restarts() {
    let a = Vsftpd::start();
    let b = Vsftpd::start();
    let servers = [a.addr(), b.addr()];
    let mut seen: Vec<(String, String)> = Vec::new();
    for workers in [1, 2] {
        let gate = gate(&servers, "sticky", 30, workers);
        for round in 0..4 {
            for user in ["anonymous", "ftp"] {
                let mut c = Ftp::connect(gate.addr());
                c.login_ok(user, "x");
                assert_eq!(c.cmd("TYPE I").0, 200);
                let name = format!("{user}-{workers}-{round}.bin");
                c.stor(&format!("/pub/{name}"), &random_bytes(2048, round));
                assert_eq!(c.cmd("QUIT").0, 221);
            }
        }
        let events = gate.wait_audit(WAIT, |ev| login_servers(ev).len() >= 8);
        for e in events
            .iter()
            .filter(|e| e["event"] == "login" && e["result"] == "ok")
        {
            seen.push((
                e["user"].as_str().unwrap_or("").to_string(),
                e["server"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    for user in ["anonymous", "ftp"] {
        let servers: HashSet<&str> = seen
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, s)| s.as_str())
            .collect();
        assert_eq!(
            servers.len(),
            1,
            "{user} always on one server, with 1 and 2 workers and after a restart: {seen:?}"
        );
        let server: SocketAddr = servers
            .iter()
            .next()
            .and_then(|s| s.parse().ok())
            .expect("a server address");
        // The uploads are all on that server's disk, none on the other's.
        for workers in [1, 2] {
            for round in 0..4 {
                let name = format!("{user}-{workers}-{round}.bin");
                assert_eq!(holder(&a, &b, &name), vec![server], "{name}");
            }
        }
    }
}

/// A vsftpd with explicit TLS (`require_ssl_reuse`), its certificate signed by a CA of its
/// own: (server, that CA's certificate, the directory holding them).
fn tls_vsftpd() -> (Vsftpd, std::path::PathBuf, tempfile::TempDir) {
    let dir = temp_dir();
    let (ca, cert, key) = generate_ca_and_server(dir.path());
    let extra = format!(
        "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n\
         require_ssl_reuse=YES\nrsa_cert_file={}\nrsa_private_key_file={}\n",
        cert.display(),
        key.display(),
    );
    (Vsftpd::start_with(&extra), ca, dir)
}

#[test]
fn the_health_check_of_a_tls_pool_does_the_handshake_and_takes_out_a_server_that_fails_it() {
    // Two TLS servers; the pool trusts the CA of the second only, so the first one's
    // handshake fails: its check does AUTH TLS and the handshake, and takes it out.
    let (untrusted, _other_ca, _d1) = tls_vsftpd();
    let (trusted, ca, _d2) = tls_vsftpd();
    let list = vec![untrusted.addr().to_string(), trusted.addr().to_string()];
    let gate = Ftpgate::builder()
        .backend("p", untrusted.addr())
        .standard_roles()
        .user("anonymous", "full", "p")
        .set(&["backends", "p", "servers"], json!(list))
        .set(&["backends", "p", "balance"], json!("first-available"))
        .set(&["backends", "p", "tls"], json!("explicit"))
        .set(&["backends", "p", "ca_file"], json!(ca.to_string_lossy()))
        .set(
            &["backends", "p", "health_check"],
            json!({ "interval": 30, "timeout": 2 }),
        )
        .start();
    assert!(
        wait_until(WAIT, || checks_failed(&gate.stderr_log(), untrusted.addr())
            >= 1),
        "no failed health check of {}:\n{}",
        untrusted.addr(),
        gate.stderr_log()
    );
    assert!(
        wait_until(WAIT, || untrusted.log().contains("AUTH TLS")),
        "the check asked for TLS: {}",
        untrusted.log()
    );
    for _ in 0..3 {
        session(&gate, "anonymous");
    }
    let events = gate.wait_audit(WAIT, |ev| login_servers(ev).len() >= 3);
    assert_eq!(
        login_servers(&events),
        vec![trusted.addr().to_string(); 3],
        "every login on the server whose TLS verifies"
    );
    let log = gate.stderr_log();
    assert_eq!(session_connects(&log, untrusted.addr()), 0, "{log}");
    assert_eq!(checks_failed(&log, trusted.addr()), 0, "{log}");
}
