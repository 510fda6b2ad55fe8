//! `ftpgate explain` through the binary: the decision and its rule at FILE:LINE:COLUMN,
//! readable and `--json`, the exit statuses (0 allowed, 4 denied, 1 a policy that does not
//! load, 2 a usage error).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const FTPGATE: &str = env!("CARGO_BIN_EXE_ftpgate");

const POLICY: &str = r#"{
  "listeners": [{ "address": "127.0.0.1:2121" }],
  "backends": { "files": { "servers": ["127.0.0.1:21"] } },
  "roles": { "read": { "allow": ["LIST", "RETR"] } },
  "users": { "alice": { "role": "read", "backend": "files",
                        "time_windows": [{ "days": "mon-fri", "hours": "08:00-18:00", "tz": "Europe/Berlin" }] } }
}
"#;

fn explain(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(FTPGATE);
    cmd.arg("explain").arg("--config").arg(config).args(args);
    run(&mut cmd, Duration::from_secs(30))
}

fn at(needle: &str) -> (usize, usize) {
    let offset = POLICY.find(needle).expect("needle");
    let before = &POLICY[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

#[test]
fn explain_allowed_denied_and_json() {
    let dir = temp_dir();
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, POLICY).expect("write policy");
    let file = path.display().to_string();
    let common = [
        "--user",
        "alice",
        "--from",
        "192.0.2.7",
        "--at",
        "2026-12-02T10:00:00+01:00",
    ];

    let out = explain(&path, &[&common[..], &["RETR /a/b"]].concat());
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let stdout = out.stdout_str();
    let (line, column) = at("\"RETR\"");
    assert!(stdout.starts_with("decision: ALLOW\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("{file}:{line}:{column} roles.read.allow[1]")),
        "{stdout}"
    );
    assert!(
        stdout.contains("backend: files (round-robin, tls none)"),
        "{stdout}"
    );
    assert!(stdout.contains("users.alice.time_windows[0]"), "{stdout}");

    let out = explain(&path, &[&common[..], &["--json", "STOR /a/b"]].concat());
    assert_eq!(out.code(), Some(4), "{}", out.stderr);
    let trace: serde_json::Value = serde_json::from_str(&out.stdout_str()).expect("json");
    assert_eq!(trace["decision"], "deny");
    assert_eq!(trace["reply"], "550 Permission denied.");
    let steps = trace["steps"].as_array().expect("steps");
    let last = steps.last().expect("a step");
    let (line, column) = at("\"allow\"");
    assert_eq!(last["rule"], "roles.read.allow");
    assert_eq!(
        (last["line"].as_u64(), last["column"].as_u64()),
        (Some(line as u64), Some(column as u64))
    );
    assert_eq!(trace["backend"]["pool"], "files");

    // Saturday: outside the time window, in Berlin time.
    let out = explain(
        &path,
        &[
            "--user",
            "alice",
            "--from",
            "192.0.2.7",
            "--at",
            "2026-12-05T10:00:00Z",
            "RETR x",
        ],
    );
    assert_eq!(out.code(), Some(4), "{}", out.stderr);
    assert!(
        out.stdout_str().contains("DENY  time_windows"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn explain_usage_and_policy_errors() {
    let dir = temp_dir();
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, POLICY).expect("write policy");
    for args in [
        &["--user", "alice", "--from", "192.0.2.7"][..],
        &["--user", "alice", "--from", "not-an-ip", "RETR x"],
        &[
            "--user",
            "alice",
            "--from",
            "192.0.2.7",
            "--at",
            "tomorrow",
            "RETR x",
        ],
        &[
            "--user",
            "alice",
            "--from",
            "192.0.2.7",
            "--frobnicate",
            "RETR x",
        ],
    ] {
        let out = explain(&path, args);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("Usage: ftpgate explain"),
            "{}",
            out.stderr
        );
    }
    fs::write(
        &path,
        POLICY.replace("\"read\", \"backend\"", "\"reed\", \"backend\""),
    )
    .expect("write");
    let out = explain(&path, &["--user", "alice", "--from", "192.0.2.7", "RETR x"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("no role named \"reed\""),
        "{}",
        out.stderr
    );
}

/// What `ftpgate explain` says for a command is what the running gateway does with it, for
/// the same policy file, user and address: the same decision in the audit trail, the same
/// refusal text on the wire, and a refused command never reaches the backend.
#[test]
fn explain_agrees_with_the_running_gateway() {
    let vs = Vsftpd::start();
    let inbox = vs.pub_dir().join("in");
    fs::create_dir_all(&inbox).expect("mkdir");
    let (uid, gid) = user_ids("ftp").expect("the ftp user");
    std::os::unix::fs::chown(&inbox, Some(uid), Some(gid)).expect("chown");
    vs.put_file("pub/in/a.txt", b"alpha\n");
    vs.put_file("pub/in/b.txt", b"beta\n");
    vs.put_file("pub/out.txt", b"outside the jail\n");
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .user("anonymous", "full", "vsftpd")
        .set(&["users", "ftp", "paths"], serde_json::json!(["/pub/in"]))
        .start();
    let cases: &[(&str, &str)] = &[
        ("ftp", "SIZE /pub/in/a.txt"),
        ("ftp", "MDTM /pub/in/a.txt"),
        ("ftp", "DELE /pub/in/a.txt"),
        ("ftp", "MKD /pub/in/new"),
        ("ftp", "RNFR /pub/in/a.txt"),
        ("ftp", "SIZE /pub/out.txt"),
        ("ftp", "CWD /pub/in/../.."),
        ("ftp", "SITE CHMOD 777 /pub/in/a.txt"),
        ("ftp", "CWD /pub/in"),
        ("anonymous", "DELE /pub/in/b.txt"),
        ("anonymous", "SIZE /pub/out.txt"),
    ];
    let mut denied = 0;
    for &(user, line) in cases {
        let out = explain(
            gate.config_path(),
            &["--json", "--user", user, "--from", "127.0.0.1", line],
        );
        let trace: serde_json::Value = serde_json::from_str(&out.stdout_str())
            .unwrap_or_else(|e| panic!("{line}: {e}: {} {}", out.stdout_str(), out.stderr));
        let decision = trace["decision"].as_str().expect("decision").to_owned();
        assert_eq!(
            out.code(),
            Some(if decision == "allow" { 0 } else { 4 }),
            "{line}"
        );

        let mut c = Ftp::connect(gate.addr());
        let me = c.local_addr().to_string();
        c.login_ok(user, "x");
        let (code, text) = c.cmd(line);
        assert_eq!(c.cmd("QUIT").0, 221);
        let verb = line.split(' ').next().expect("verb");
        let events = gate.wait_audit(Duration::from_secs(5), |ev| {
            ev.iter()
                .any(|e| e["event"] == "session_end" && e["client"] == me.as_str())
        });
        let event = events
            .iter()
            .find(|e| e["event"] == "command" && e["client"] == me.as_str() && e["verb"] == verb)
            .unwrap_or_else(|| panic!("no command event for {line}"));
        assert_eq!(event["decision"], decision.as_str(), "{line}: {event}");
        if decision == "deny" {
            denied += 1;
            assert!(code >= 500, "{line}: {code}");
            assert_eq!(trace["reply"].as_str(), Some(text.as_str()), "{line}");
        } else {
            assert!(
                trace.get("reply").is_none_or(|r| r.is_null()),
                "{line}: {trace}"
            );
        }
    }
    assert!(denied >= 5, "the cases include refusals: {denied}");
    // The refused DELE never reached vsftpd; the allowed one did.
    assert!(vs.root().join("pub/in/a.txt").exists());
    assert!(!vs.root().join("pub/in/b.txt").exists());
}
