//! The audit trail (file sink, v0 fields): a scripted session produces session_start, login,
//! command (decision and reply code), transfer (direction, bytes) and session_end events, one
//! JSON object per line.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const EVENTS: &[&str] = &[
    "session_start",
    "login",
    "command",
    "transfer",
    "session_end",
];
const WAIT: Duration = Duration::from_secs(10);

/// Every event has the common fields.
fn assert_common_fields(events: &[Value]) {
    for e in events {
        let kind = e["event"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"event\": {e}"));
        assert!(EVENTS.contains(&kind), "unknown event kind: {e}");
        assert!(!e["ts"].is_null(), "no \"ts\": {e}");
        assert!(!e["session"].is_null(), "no \"session\": {e}");
        let client = e["client"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"client\": {e}"));
        assert!(
            client.contains("127.0.0.1"),
            "client is the peer address: {e}"
        );
    }
}

/// The events of the session in which `user` logged in with `result`, once its session_end
/// has been written.
fn session_of(gate: &Ftpgate, user: &str, result: &str) -> Vec<Value> {
    let find = |events: &[Value]| -> Option<Vec<Value>> {
        let session = events
            .iter()
            .find(|e| e["event"] == "login" && e["user"] == user && e["result"] == result)?
            .get("session")?
            .clone();
        let ours: Vec<Value> = events
            .iter()
            .filter(|e| e["session"] == session)
            .cloned()
            .collect();
        ours.iter()
            .any(|e| e["event"] == "session_end")
            .then_some(ours)
    };
    let all = gate.wait_audit(WAIT, |events| find(events).is_some());
    assert_common_fields(&all);
    find(&all).unwrap()
}

fn code(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

fn commands<'a>(events: &'a [Value], verb: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "command" && e["verb"] == verb)
        .collect()
}

fn transfers<'a>(events: &'a [Value], verb: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "transfer" && e["verb"] == verb)
        .collect()
}

/// session_start first, session_end (with a reason) last, login before any command, and the
/// user on every event from the login on.
fn assert_session_shape(events: &[Value], user: &str) {
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"session_start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"session_end"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "session_start").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "session_end").count(), 1);
    let reason = &events.last().unwrap()["reason"];
    assert!(
        reason.as_str().is_some_and(|r| !r.is_empty()),
        "session_end has a reason: {reason}"
    );
    let login = kinds
        .iter()
        .position(|k| *k == "login")
        .expect("a login event");
    for e in &events[login..] {
        assert_eq!(e["user"], user, "user on every event after login: {e}");
    }
}

#[test]
fn scripted_session_produces_the_v0_events() {
    let vs = Vsftpd::start();
    let size = 123_456;
    let data = random_bytes(size, 1);
    vs.put_file("pub/data.bin", &data);
    let gate = Ftpgate::for_vsftpd(&vs);

    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/data.bin"), data);
    assert_eq!(c.cmd("DELE /pub/data.bin").0, 550);
    assert_eq!(c.cmd("QUIT").0, 221);
    drop(c);

    let events = session_of(&gate, "ftp", "ok");
    assert_session_shape(&events, "ftp");

    let retr = commands(&events, "RETR");
    assert_eq!(retr.len(), 1, "{events:?}");
    assert_eq!(retr[0]["decision"], "allow", "{}", retr[0]);
    assert!(
        retr[0]["arg"]
            .as_str()
            .is_some_and(|a| a.contains("data.bin")),
        "{}",
        retr[0]
    );
    assert!(
        matches!(code(&retr[0]["reply"]), Some(125 | 150 | 226)),
        "RETR reply: {}",
        retr[0]
    );

    let dele = commands(&events, "DELE");
    assert_eq!(dele.len(), 1, "{events:?}");
    assert_eq!(dele[0]["decision"], "deny", "{}", dele[0]);
    assert_eq!(code(&dele[0]["reply"]), Some(550), "{}", dele[0]);
    assert_eq!(dele[0]["arg"], "/pub/data.bin", "{}", dele[0]);

    let transfer = transfers(&events, "RETR");
    assert_eq!(transfer.len(), 1, "{events:?}");
    let t = transfer[0];
    assert_eq!(t["direction"], "download", "{t}");
    assert_eq!(t["bytes"].as_u64(), Some(size as u64), "{t}");
    assert_eq!(t["result"], "ok", "{t}");
    assert!(
        t["arg"].as_str().is_some_and(|a| a.contains("data.bin")),
        "{t}"
    );

    // Every line of the file is one JSON object (audit_events panics otherwise), and no
    // object names a field twice.
    assert_eq!(gate.audit_lines().len(), gate.audit_events().len());
    for line in gate.audit_lines() {
        assert_unique_keys(&line);
    }
}

#[test]
fn upload_normalised_verbs_and_failed_login_are_audited() {
    let vs = Vsftpd::start();
    vs.put_file("pub/keep.txt", b"keep");
    let gate = Ftpgate::for_vsftpd(&vs);

    // Full user: an upload and an X-alias.
    let size = 77_777;
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    c.stor("/pub/up.bin", &random_bytes(size, 2));
    assert_eq!(c.cmd("XMKD /pub/newdir").0, 257);
    assert_eq!(c.cmd("QUIT").0, 221);
    drop(c);
    let events = session_of(&gate, "anonymous", "ok");
    assert_session_shape(&events, "anonymous");
    let stor = transfers(&events, "STOR");
    assert_eq!(stor.len(), 1, "{events:?}");
    assert_eq!(stor[0]["direction"], "upload", "{}", stor[0]);
    assert_eq!(stor[0]["bytes"].as_u64(), Some(size as u64), "{}", stor[0]);
    assert_eq!(stor[0]["result"], "ok", "{}", stor[0]);
    let mkd = commands(&events, "MKD");
    assert_eq!(mkd.len(), 1, "XMKD is audited as MKD: {events:?}");
    assert_eq!(mkd[0]["decision"], "allow");
    assert_eq!(code(&mkd[0]["reply"]), Some(257));
    assert!(commands(&events, "XMKD").is_empty());

    // Read-only user: lowercase dele is audited as DELE, denied.
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("dele /pub/keep.txt").0, 550);
    assert_eq!(c.cmd("QUIT").0, 221);
    drop(c);
    let events = session_of(&gate, "ftp", "ok");
    let dele = commands(&events, "DELE");
    assert_eq!(dele.len(), 1, "{events:?}");
    assert_eq!(dele[0]["decision"], "deny");
    assert_eq!(code(&dele[0]["reply"]), Some(550));

    // Unknown user: a failed login event.
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER mallory").0, 331);
    assert_eq!(c.cmd("PASS guess").0, 530);
    let _ = c.try_send(b"QUIT\r\n");
    drop(c);
    let events = session_of(&gate, "mallory", "failed");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"session_start"), "{kinds:?}");
    assert!(!kinds.contains(&"transfer"), "{kinds:?}");
}
