//! `"enforce": false` end to end, against a real vsftpd: a STOR the role refuses goes
//! through, the file is on the backend, and the audit trail says `would_deny` with the
//! rule; the same policy enforced refuses it with 550 and the backend's files are
//! unchanged; and a bounce PORT is refused either way (protections are never a dry run).

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// vsftpd's anonymous users: `ftp` has the read-only role, with `enforce` as given.
fn gate(vs: &Vsftpd, enforce: bool) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .set(&["users", "ftp", "enforce"], json!(enforce))
        .start()
}

/// Every file under `dir`, with its contents, sorted by path.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let data = fs::read(&path).expect("read");
                out.push((path.display().to_string(), data));
            }
        }
    }
    out.sort();
    out
}

fn command_events<'a>(events: &'a [Value], verb: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "command" && e["verb"] == verb)
        .collect()
}

#[test]
fn a_refused_stor_goes_through_unenforced_and_is_audited_as_would_deny() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs, false);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    c.stor("/pub/dry.txt", b"dry run upload");
    assert_eq!(
        fs::read(vs.root().join("pub/dry.txt")).expect("the file is on the backend"),
        b"dry run upload"
    );
    // Protections stay: a PORT naming another host is refused, as when enforced.
    let target = TcpListener::bind(("127.0.0.2", 0)).expect("bind 127.0.0.2");
    let port = target.local_addr().expect("addr").port();
    let (code, text) = c.cmd(&format!("PORT 127,0,0,2,{},{}", port >> 8, port & 0xff));
    assert_eq!(code, 501, "{text}");
    assert_eq!(c.cmd("QUIT").0, 221);
    drop(c);
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| e["event"] == "session_end")
    });
    let stor = command_events(&events, "STOR");
    assert_eq!(stor.len(), 1, "{events:#?}");
    assert_eq!(stor[0]["decision"], "would_deny", "{:?}", stor[0]);
    assert_eq!(stor[0]["reply"], 226, "{:?}", stor[0]);
    let exception = events
        .iter()
        .find(|e| e["event"] == "policy_exception" && e["kind"] == "would_deny")
        .unwrap_or_else(|| panic!("no would_deny exception: {events:#?}"));
    let detail = exception["detail"].as_str().unwrap_or("");
    assert!(detail.contains("roles.read-only.allow"), "{detail}");
    assert!(detail.contains("STOR"), "{detail}");
    // Commands the role allows stay plain allows; the bounce stays a violation.
    assert!(
        command_events(&events, "PASV")
            .iter()
            .all(|e| e["decision"] == "allow"),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "policy_violation" && e["kind"] == "bounce"),
        "{events:#?}"
    );
    gate.stop();
}

#[test]
fn the_same_stor_enforced_gets_550_and_changes_nothing() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs, true);
    let before = tree(&vs.root());
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    let (code, text) = c.cmd("STOR /pub/dry.txt");
    assert_eq!(code, 550, "{text}");
    assert_eq!(c.cmd("QUIT").0, 221);
    drop(c);
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| e["event"] == "session_end")
    });
    assert_eq!(
        tree(&vs.root()),
        before,
        "the backend's files are unchanged"
    );
    let stor = command_events(&events, "STOR");
    assert_eq!(stor.len(), 1, "{events:#?}");
    assert_eq!(
        (&stor[0]["decision"], &stor[0]["reply"]),
        (&json!("deny"), &json!(550))
    );
    assert!(
        !events.iter().any(|e| e["kind"] == "would_deny"),
        "{events:#?}"
    );
    gate.stop();
}

/// The user's own access rules at login: unenforced, a login from outside `allow_from` goes
/// through and is audited as `would_deny` with the rule; enforced, it is refused.
#[test]
fn a_login_the_users_access_rules_refuse_goes_through_unenforced() {
    let vs = Vsftpd::start();
    for enforce in [false, true] {
        let gate = Ftpgate::builder()
            .backend("vsftpd", vs.addr())
            .standard_roles()
            .user("ftp", "read-only", "vsftpd")
            .set(&["users", "ftp", "allow_from"], json!(["10.0.0.0/8"]))
            .set(&["users", "ftp", "enforce"], json!(enforce))
            .start();
        let mut c = Ftp::connect(gate.addr());
        assert_eq!(c.cmd("USER ftp").0, 331);
        let (code, text) = c.cmd("PASS x");
        if enforce {
            assert_ne!(code, 230, "{text}");
            continue;
        }
        assert_eq!(code, 230, "{text}");
        assert_eq!(c.cmd("PWD").0, 257);
        let events = gate.wait_audit(Duration::from_secs(5), |ev| {
            ev.iter().any(|e| e["event"] == "login")
        });
        let would = events
            .iter()
            .find(|e| e["event"] == "policy_exception" && e["kind"] == "would_deny")
            .expect("a would_deny exception");
        let detail = would["detail"].as_str().unwrap_or("");
        assert!(detail.contains("allow_from"), "{detail}");
        assert!(
            detail.ends_with("logged in because enforce is false"),
            "{detail}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "login" && e["result"] == "ok"),
            "{events:?}"
        );
    }
}
