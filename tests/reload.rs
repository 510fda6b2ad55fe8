//! SIGHUP reloads the policy whole or not at all: listeners added, removed or changed are
//! served without dropping sessions in flight; a file that does not validate, a listener
//! that cannot be bound, or a change only a restart can make (`workers`, `passive.ports`)
//! refuses the whole file and changes nothing.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn gate(vs: &Vsftpd, workers: u32) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .workers(workers)
        .start()
}

fn read_policy(gate: &Ftpgate) -> Value {
    serde_json::from_str(&std::fs::read_to_string(gate.config_path()).expect("policy"))
        .expect("json")
}

/// Writes `policy`, sends SIGHUP and waits until every worker said what it did with it
/// (`reloaded` or `refused` lines in the log, counted from before). Returns the log since.
fn reload(gate: &Ftpgate, policy: &str, workers: usize) -> String {
    let before = gate.stderr_log().len();
    std::fs::write(gate.config_path(), policy).expect("write policy");
    let pid = gate.pid().expect("pid") as i32;
    // SAFETY: kill(2) takes plain integers; the pid is our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let answered = |log: &str| {
        log.matches("policy reloaded from").count()
            + log
                .matches("policy reload refused, keeping the old policy")
                .count()
    };
    assert!(
        wait_until(WAIT, || {
            let log = gate.stderr_log();
            answered(log.get(before..).unwrap_or("")) >= workers
        }),
        "no answer to SIGHUP:\n{}",
        gate.stderr_log()
    );
    gate.stderr_log().get(before..).unwrap_or("").to_string()
}

fn free_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
}

fn serves(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect(addr) else {
        return false;
    };
    drop(stream);
    let mut c = Ftp::connect(addr);
    c.greeting.0 == 220 && c.cmd("QUIT").0 == 221
}

fn refuses(addr: SocketAddr) -> bool {
    TcpStream::connect(addr).is_err()
}

#[test]
fn sighup_adds_and_removes_listeners_without_dropping_a_session_in_flight() {
    for workers in [1, 2] {
        let vs = Vsftpd::start();
        let data = random_bytes(256 * 1024, 51);
        vs.put_file("pub/r.bin", &data);
        let mut gate = gate(&vs, workers);
        let first = gate.addr();
        // A session on the first listener, logged in across both reloads.
        let mut c = Ftp::connect(first);
        c.login_ok("ftp", "x");

        let added = free_addr();
        let mut policy = read_policy(&gate);
        policy["listeners"]
            .as_array_mut()
            .expect("listeners")
            .push(json!({ "address": added.to_string() }));
        let log = reload(&gate, &policy.to_string(), workers as usize);
        assert!(!log.contains("refused"), "{log}");
        assert!(
            wait_until(WAIT, || serves(added)),
            "the added listener serves"
        );
        assert!(serves(first), "the first one still does");
        assert_eq!(sha256_bytes(&c.retr("/pub/r.bin")), sha256_bytes(&data));

        // Only the added one left: the first closes, the session on it goes on.
        policy["listeners"] = json!([{ "address": added.to_string() }]);
        let log = reload(&gate, &policy.to_string(), workers as usize);
        assert!(!log.contains("refused"), "{log}");
        assert!(
            wait_until(WAIT, || refuses(first)),
            "the removed listener closes"
        );
        assert!(serves(added));
        assert_eq!(c.cmd("PWD").0, 257, "the session in flight is untouched");
        assert_eq!(sha256_bytes(&c.retr("/pub/r.bin")), sha256_bytes(&data));
        assert_eq!(c.cmd("QUIT").0, 221);
        gate.stop();
    }
}

#[test]
fn a_broken_file_a_listener_that_cannot_be_bound_or_a_restart_key_change_nothing() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs, 2);
    let first = gate.addr();
    let good = std::fs::read_to_string(gate.config_path()).expect("policy");

    // Not JSON at all.
    let log = reload(&gate, "{ \"listeners\": [", 2);
    assert!(log.contains("policy reload refused"), "{log}");
    assert!(serves(first));

    // A new listener that is free and one that is taken: neither is served.
    let free = free_addr();
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let taken_addr = taken.local_addr().expect("addr");
    let mut policy: Value = serde_json::from_str(&good).expect("json");
    let listeners = policy["listeners"].as_array_mut().expect("listeners");
    listeners.push(json!({ "address": free.to_string() }));
    listeners.push(json!({ "address": taken_addr.to_string() }));
    let log = reload(&gate, &policy.to_string(), 2);
    assert!(
        log.contains(&format!("cannot listen on {taken_addr}")),
        "{log}"
    );
    assert!(refuses(free), "nothing of the refused file applies");
    assert!(serves(first));
    drop(taken);

    // More workers, and a listener added in the same file: a restart is needed, so the
    // listener is not served either.
    let mut policy: Value = serde_json::from_str(&good).expect("json");
    policy["workers"] = json!(3);
    policy["listeners"]
        .as_array_mut()
        .expect("listeners")
        .push(json!({ "address": free.to_string() }));
    let log = reload(&gate, &policy.to_string(), 2);
    assert!(
        log.contains("workers: 2 -> 3 needs a restart"),
        "the log says which change needs a restart: {log}"
    );
    assert!(refuses(free));
    assert!(serves(first));
    gate.assert_healthy();
}

#[test]
fn check_says_what_a_reload_applies() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, 1);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftpgate"))
        .args(["--check", "--config"])
        .arg(gate.config_path())
        .output()
        .expect("--check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "reload (SIGHUP, systemctl reload): applies every key, listeners included, \
             except workers, passive.ports, passive.shared, user and metrics.listen (a restart)"
        ),
        "{stdout}"
    );
}

/// Whether a plain FTP client gets ftpgate's greeting at `addr` (an implicit FTPS listener
/// expects a TLS handshake first and sends nothing in clear).
fn greets_in_plain(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(stream);
    std::io::BufRead::read_line(&mut reader, &mut line).is_ok() && line.starts_with("220")
}

#[test]
fn a_listener_s_tls_mode_follows_the_reload_and_never_falls_back_to_plain() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .ftps()
        .start();
    let implicit = gate.implicit_addr();
    assert!(!greets_in_plain(implicit), "implicit FTPS: TLS first");
    let good = read_policy(&gate);

    // Dropping the `tls` section while a listener still says implicit: refused as a
    // whole (the old code served that listener in plain text until a restart).
    let mut no_tls = good.clone();
    no_tls.as_object_mut().expect("object").remove("tls");
    let log = reload(&gate, &no_tls.to_string(), 1);
    assert!(log.contains("policy reload refused"), "{log}");
    assert!(!greets_in_plain(implicit), "still TLS first");

    // The same address turned into a plain listener on purpose: the next connection is
    // plain.
    let mut plain = good.clone();
    for listener in plain["listeners"].as_array_mut().expect("listeners") {
        if listener["address"] == implicit.to_string() {
            listener["tls"] = json!("none");
        }
    }
    let log = reload(&gate, &plain.to_string(), 1);
    assert!(!log.contains("refused"), "{log}");
    assert!(greets_in_plain(implicit), "now plain, as the policy says");

    // And back to implicit.
    let log = reload(&gate, &good.to_string(), 1);
    assert!(!log.contains("refused"), "{log}");
    assert!(!greets_in_plain(implicit));
}

/// Each worker records every reload in the audit trail: the result, the SHA-256 of the file
/// it read, and the errors of a refused one with their line:column.
#[test]
fn every_reload_is_audited_with_the_files_digest_and_its_errors() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, 2);
    let good = std::fs::read_to_string(gate.config_path()).expect("policy");
    let reloads = |n: usize| {
        gate.wait_audit(WAIT, |ev| {
            ev.iter().filter(|e| e["event"] == "policy_reload").count() >= n
        })
        .into_iter()
        .filter(|e| e["event"] == "policy_reload")
        .collect::<Vec<Value>>()
    };
    reload(&gate, &good, 2);
    let events = reloads(2);
    assert_eq!(events.len(), 2, "one per worker: {events:?}");
    let digest = sha256_bytes(good.as_bytes());
    for e in &events {
        assert_eq!(e["result"], "ok", "{e}");
        assert_eq!(e["sha256"], digest.as_str(), "{e}");
        assert!(e.get("errors").is_none(), "{e}");
    }
    let mut broken: Value = serde_json::from_str(&good).expect("json");
    broken["users"]["ftp"]["role"] = json!("no-such-role");
    broken["colour"] = json!("blue");
    let text = serde_json::to_string_pretty(&broken).expect("json");
    reload(&gate, &text, 2);
    let events = reloads(4);
    let refused: Vec<&Value> = events.iter().filter(|e| e["result"] == "refused").collect();
    assert_eq!(refused.len(), 2, "{events:?}");
    for e in refused {
        assert_eq!(e["sha256"], sha256_bytes(text.as_bytes()).as_str());
        assert_eq!(e["errors_total"], 2, "{e}");
        let errors: Vec<&str> = e["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            errors.iter().any(|m| m.contains("colour: unknown field")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|m| m.contains("no role named \"no-such-role\"")),
            "{errors:?}"
        );
        // Each names the file and the place in it.
        let path = gate.config_path().display().to_string();
        assert!(
            errors.iter().all(|m| m.starts_with(&format!("{path}:"))),
            "{errors:?}"
        );
    }
}
