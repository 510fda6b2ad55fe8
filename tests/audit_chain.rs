//! The tamper-evident audit trail end to end: two workers in front of a real vsftpd with
//! `audit.integrity`, a rotation (rename, then SIGUSR2: the reopen path logrotate's
//! postrotate uses), then `ftpgate verify-audit` over both files; then the files are
//! tampered with and verify-audit names exactly the first broken line. A worker that stops
//! checkpoints its tail. And the same chain
//! through syslog (RFC 5424, `@cee: `): the messages carry the file's lines byte for byte, and
//! a file of them as a syslog daemon writes it verifies too.

#[path = "common/audit.rs"]
mod audit;
mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use audit::*;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);
const RUN: Duration = Duration::from_secs(30);

fn session(gate: &Ftpgate) {
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("PWD").0, 257);
    assert_eq!(c.cmd("QUIT").0, 221);
    c.read_to_eof(Duration::from_secs(10));
}

fn workers_with(events: &[Value], event: &str) -> BTreeSet<u64> {
    events
        .iter()
        .filter(|e| e["event"] == event)
        .filter_map(|e| e["worker"].as_u64())
        .collect()
}

/// Sessions until both workers have written events to the file, then until each has written
/// a checkpoint after them.
fn fill(gate: &Ftpgate, path: &Path) {
    poll(WAIT, || {
        session(gate);
        (workers_with(&file_events(path), "session_end").len() == 2).then_some(())
    });
    poll(WAIT, || {
        let events = file_events(path);
        // The last line of each chain in the file is a checkpoint.
        let all_checked = (0..2).all(|w| {
            events
                .iter()
                .rev()
                .find(|e| e["worker"] == w && e["chain"].is_string())
                .is_some_and(|e| e["event"] == "audit_checkpoint")
        });
        all_checked.then_some(())
    });
}

fn verify(args: &[&Path]) -> Output {
    run(
        Command::new(env!("CARGO_BIN_EXE_ftpgate"))
            .arg("verify-audit")
            .args(args),
        RUN,
    )
}

#[test]
fn two_workers_chains_verify_across_a_rotation_and_tampering_is_located() {
    let keys = temp_dir();
    let key = keys.path().join("audit.key");
    fs::write(&key, random_bytes(32, 12)).expect("key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let vs = Vsftpd::start();
    let mut gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .workers(2)
        .set(
            &["audit", "integrity"],
            json!({ "key_file": key.to_string_lossy(), "checkpoint_interval": 1 }),
        )
        .start();
    let path = gate.audit_path().to_path_buf();
    let rotated = path.with_extension("jsonl.1");
    fill(&gate, &path);

    fs::rename(&path, &rotated).expect("rotate");
    let supervisor = gate.pid().expect("pid");
    ftpgate::os::send_signal(supervisor, ftpgate::os::SIGUSR2).expect("SIGUSR2");
    assert!(
        wait_until(WAIT, || path.exists()),
        "SIGUSR2 reopens the file"
    );
    fill(&gate, &path);
    gate.stop();

    // Every line is chained; each worker's chain goes on in the new file.
    let old = file_events(&rotated);
    let new = file_events(&path);
    assert!(old.iter().chain(&new).all(|e| e["chain"].is_string()));
    for w in 0..2 {
        let last_old = old.iter().rev().find(|e| e["worker"] == w).expect("old");
        let first_new = new.iter().find(|e| e["worker"] == w).expect("new");
        assert_eq!(first_new["chain"], last_old["chain"]);
        assert_eq!(
            first_new["seq"].as_u64(),
            last_old["seq"].as_u64().map(|s| s + 1)
        );
    }

    let key_arg = ["--key".as_ref(), key.as_path()];
    let ok = verify(&[&key_arg[..], &[&rotated, &path]].concat());
    assert_eq!(ok.code(), Some(0), "{}\n{}", ok.stdout_str(), ok.stderr);
    assert!(ok.stdout_str().contains("ok: "), "{}", ok.stdout_str());
    assert!(ok.stdout_str().contains(" 2 chains"), "{}", ok.stdout_str());
    // The new file alone: both chains start mid-file, which is said, not an error.
    let alone = verify(&[&key_arg[..], &[path.as_path()]].concat());
    assert_eq!(alone.code(), Some(0), "{}", alone.stdout_str());
    assert!(alone.stdout_str().contains("starts at seq"));
    // In the wrong order, the chains go backwards.
    let swapped = verify(&[&key_arg[..], &[&path, &rotated]].concat());
    assert_eq!(swapped.code(), Some(1), "{}", swapped.stdout_str());

    // One byte of a line in the middle of the new file: the next line of the same chain is
    // the broken link, and names the changed one.
    let text = fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let k = lines.len() / 2;
    let chain = new[k]["chain"].as_str().expect("chain").to_owned();
    let next = (k + 1..lines.len())
        .find(|&i| new[i]["chain"] == chain.as_str())
        .expect("a later line of the same chain");
    let ts = new[k]["ts"].as_str().expect("ts");
    let digit = ts.as_bytes()[22];
    let changed_ts = format!(
        "{}{}{}",
        &ts[..22],
        if digit == b'0' { '1' } else { '0' },
        &ts[23..]
    );
    let mut tampered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    tampered[k] = tampered[k].replacen(ts, &changed_ts, 1);
    assert_ne!(tampered[k], lines[k]);
    fs::write(&path, tampered.join("\n") + "\n").expect("tamper");
    let broken = verify(&[&key_arg[..], &[&rotated, &path]].concat());
    let out = broken.stdout_str();
    assert_eq!(broken.code(), Some(1), "{out}");
    let p = path.display();
    assert!(
        out.contains(&format!("{p}:{}: broken link in chain {chain}", next + 1)),
        "{out}"
    );
    assert!(out.contains(&format!("({p}:{})", k + 1)), "{out}");

    // A deleted line instead: the gap is named at the next line of its chain.
    let mut deleted: Vec<&str> = lines.clone();
    deleted.remove(k);
    fs::write(&path, deleted.join("\n") + "\n").expect("delete");
    let missing = verify(&[&key_arg[..], &[&rotated, &path]].concat());
    let out = missing.stdout_str();
    assert_eq!(missing.code(), Some(1), "{out}");
    let seq = new[k]["seq"].as_u64().expect("seq");
    assert!(
        out.contains(&format!(
            "{p}:{}: missing line: seq {seq} of chain {chain}",
            next
        )),
        "{out}"
    );

    // The intact file with another key: a checkpoint that does not verify.
    fs::write(&path, &text).expect("restore");
    let other = keys.path().join("other.key");
    fs::write(&other, random_bytes(32, 13)).expect("key");
    let wrong = verify(&["--key".as_ref(), other.as_path(), &rotated, &path]);
    assert_eq!(wrong.code(), Some(1), "{}", wrong.stdout_str());
    assert!(wrong.stdout_str().contains("made with another key"));

    // Usage errors are 2.
    assert_eq!(verify(&[]).code(), Some(2));
    assert_eq!(verify(&["--bogus".as_ref()]).code(), Some(2));
}

#[test]
fn the_chain_survives_syslog_and_a_syslog_file_verifies_like_the_audit_file() {
    let dir = temp_dir();
    let key = dir.path().join("audit.key");
    fs::write(&key, random_bytes(48, 21)).expect("key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).expect("chmod");
    let mut daemon = SyslogListener::bind(&dir.path().join("log"));
    let vs = Vsftpd::start();
    let mut gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .workers(1)
        .set(
            &["audit", "syslog"],
            json!({ "socket": daemon.path().to_string_lossy(), "cee": true,
                    "format": "rfc5424" }),
        )
        .set(
            &["audit", "integrity"],
            json!({ "key_file": key.to_string_lossy(), "checkpoint_interval": 3600 }),
        )
        .start();
    session(&gate);
    session(&gate);
    gate.wait_audit(WAIT, |e| {
        e.iter().filter(|e| e["event"] == "session_end").count() == 2
    });
    // Not due for an hour: the worker checkpoints its tail as it stops.
    assert!(
        gate.audit_events()
            .iter()
            .all(|e| e["event"] != "audit_checkpoint")
    );
    gate.stop();
    let file = gate.audit_events();
    assert_eq!(
        file.last().map(|e| &e["event"]),
        Some(&json!("audit_checkpoint"))
    );
    let messages = daemon.wait(WAIT, |m| m.len() >= file.len());
    // The same lines, byte for byte, after the cookie.
    let lines = gate.audit_lines();
    let msgs: Vec<&str> = messages
        .iter()
        .map(|m| m.msg.strip_prefix("@cee: ").unwrap_or(&m.msg))
        .collect();
    assert_eq!(msgs, lines);
    // As a syslog daemon would file them: its header, then the message.
    let syslog_file = dir.path().join("auth.log");
    let text: String = messages
        .iter()
        .map(|m| {
            format!(
                "Dec  2 14:00:00 {} {}[{}]: {}\n",
                m.hostname, m.app_name, m.procid, m.msg
            )
        })
        .collect();
    fs::write(&syslog_file, text).expect("write");
    let key_arg = ["--key".as_ref(), key.as_path()];
    for path in [gate.audit_path(), syslog_file.as_path()] {
        let out = verify(&[&key_arg[..], &[path]].concat());
        assert_eq!(out.code(), Some(0), "{}", out.stdout_str());
        assert!(
            out.stdout_str()
                .contains("1 chains, 1 checkpoints verified"),
            "{}",
            out.stdout_str()
        );
    }
}

#[test]
fn a_fifo_as_the_key_file_is_refused_at_once_not_waited_on() {
    let dir = temp_dir();
    let fifo = dir.path().join("audit.key");
    let made = run(Command::new("mkfifo").arg(&fifo), RUN);
    assert!(made.success(), "{}", made.stderr);
    let policy = json!({
        "listeners": [{ "address": "127.0.0.1:2121" }],
        "backends": { "files": { "servers": ["127.0.0.1:21"] } },
        "roles": { "read": { "allow": ["RETR"] } },
        "users": { "alice": { "role": "read", "backend": "files" } },
        "audit": { "file": dir.path().join("audit.jsonl").to_string_lossy(),
                   "integrity": { "key_file": fifo.to_string_lossy() } }
    });
    let config = dir.path().join("ftpgate.json");
    fs::write(&config, policy.to_string()).expect("policy");
    // `run` fails the test if --check does not finish: it must not block on the FIFO.
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_ftpgate"))
            .arg("--check")
            .arg("--config")
            .arg(&config),
        RUN,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("audit.integrity.key_file: ")
            && out.stderr.contains("not a regular file"),
        "{}",
        out.stderr
    );
}
