//! packaging/fail2ban: the filter, run by the real `fail2ban-regex` (Debian package
//! fail2ban), on the audit trail of a real ftpgate session in front of vsftpd — the JSON lines
//! of the audit file, the RFC 5424 syslog messages as sent, and the same in the traditional
//! syslog file format with the `@cee: ` cookie — matches each failed login and the bounce
//! attempt with the client's address as the host, and nothing else (a successful login, the
//! other events). The jail names the filter. Skipped, loudly, without fail2ban-regex.
//!
//! packaging/crowdsec (no CrowdSec binary here): the parser, scenarios and acquisition are
//! parsed with PyYAML (Debian python3-yaml) and checked for structure and for agreeing with
//! each other, with the fail2ban filter and with the audit schema.

#[path = "common/audit.rs"]
mod audit;
mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use audit::*;
use common::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const FAILURES: usize = 3;
const FILTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/fail2ban/filter.d/ftpgate.conf"
);
const JAIL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/fail2ban/jail.d/ftpgate.conf"
);

fn have_fail2ban() -> bool {
    Command::new("fail2ban-regex")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The hosts fail2ban-regex finds in `log`, one per matched line.
fn matched_hosts(log: &Path) -> Vec<String> {
    let out = run(
        Command::new("fail2ban-regex")
            .args(["-o", "ip"])
            .arg(log)
            .arg(FILTER),
        Duration::from_secs(60),
    );
    assert!(out.success(), "fail2ban-regex: {}", out.stderr);
    out.stdout_str().lines().map(str::to_owned).collect()
}

#[test]
fn the_filter_matches_failed_logins_and_violations_in_every_form_of_the_trail() {
    if !have_fail2ban() {
        eprintln!("SKIPPED: fail2ban-regex is not installed (Debian package fail2ban)");
        return;
    }
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let mut daemon = SyslogListener::bind(&dir.path().join("log"));
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .set(
            &["audit", "syslog"],
            json!({ "socket": daemon.path().to_string_lossy(), "format": "rfc5424" }),
        )
        .set(&["defaults", "limits", "failed_login_delay_ms"], json!(1))
        .start();

    // A good session with a bounce attempt, then failed logins, each on its own connection.
    let mut c = Ftp::connect(gate.addr());
    let good = c.local_addr();
    c.login_ok("anonymous", "x");
    let (code, text) = c.cmd("PORT 127,0,0,1,0,21");
    assert!(code >= 500, "a bounce PORT is refused: {text}");
    assert_eq!(c.cmd("QUIT").0, 221);
    c.read_to_eof(WAIT);
    let mut failed = Vec::new();
    for _ in 0..FAILURES {
        let mut c = Ftp::connect(gate.addr());
        failed.push(c.local_addr());
        assert_eq!(c.cmd("USER mallory").0, 331);
        assert_eq!(c.cmd("PASS guess").0, 530);
        assert_eq!(c.cmd("QUIT").0, 221);
        c.read_to_eof(WAIT);
    }
    let events = gate.wait_audit(WAIT, |e| {
        ended(e, good) && failed.iter().all(|f| ended(e, *f))
    });
    let failures = events
        .iter()
        .filter(|e| e["event"] == "login" && e["result"] == "failed")
        .count();
    assert_eq!(failures, FAILURES, "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "login" && e["result"] == "ok"),
        "a successful login is in the trail, and must not match"
    );
    let expected = failures + 1; // and the bounce
    let host = good.ip().to_string();

    // The file.
    let hosts = matched_hosts(gate.audit_path());
    assert_eq!(hosts.len(), expected, "{hosts:?}");
    assert!(hosts.iter().all(|h| *h == host), "{hosts:?}");

    // Syslog: every message of the sessions, raw RFC 5424, and as rsyslog's traditional file
    // format writes it (local time header, "@cee: " before the JSON).
    let total = events.len();
    let messages = daemon.wait(WAIT, |m| m.len() >= total);
    let raw: String = messages.iter().map(|m| format!("{}\n", m.raw)).collect();
    let rfc5424 = dir.path().join("rfc5424.log");
    fs::write(&rfc5424, raw).expect("write");
    let hosts = matched_hosts(&rfc5424);
    assert_eq!(hosts.len(), expected, "{hosts:?}");
    assert!(hosts.iter().all(|h| *h == host));
    let traditional: String = messages
        .iter()
        .map(|m| {
            format!(
                "Dec  2 14:00:00 {} {}[{}]: @cee: {}\n",
                m.hostname,
                m.app_name,
                m.procid,
                m.msg.strip_prefix("@cee: ").unwrap_or(&m.msg)
            )
        })
        .collect();
    let rsyslog = dir.path().join("auth.log");
    fs::write(&rsyslog, traditional).expect("write");
    assert_eq!(matched_hosts(&rsyslog).len(), expected);

    // The jail uses the filter and is off until the administrator turns it on.
    let jail = fs::read_to_string(JAIL).expect("jail");
    assert!(jail.contains("[ftpgate]"));
    assert!(jail.contains("filter   = ftpgate"));
    assert!(jail.contains("enabled  = false"));
}

#[test]
fn the_filter_ignores_what_a_client_can_put_in_a_field() {
    if !have_fail2ban() {
        eprintln!("SKIPPED: fail2ban-regex is not installed (Debian package fail2ban)");
        return;
    }
    let dir = temp_dir();
    let log = dir.path().join("crafted.jsonl");
    // A user name that carries a fake client and event, as serde_json escapes it; a command
    // whose argument looks like a failed login; an IPv6 client; a port_theft (the client
    // there is the victim).
    let lines = [
        r#"{"ts":"2026-12-02T14:00:00.001Z","session":"a-1-1","worker":0,"client":"127.0.0.9:1","user":"x\",\"client\":\"192.0.2.66:1\",\"event\":\"login\",\"result\":\"failed","event":"login","result":"ok"}"#,
        r#"{"ts":"2026-12-02T14:00:00.002Z","session":"a-1-1","worker":0,"client":"127.0.0.9:1","event":"command","verb":"SITE","arg":"\"event\":\"login\",\"result\":\"failed\"","decision":"deny","reply":550}"#,
        r#"{"ts":"2026-12-02T14:00:00.003Z","session":"a-1-2","worker":1,"client":"[2001:db8::7]:50514","user":"mallory","event":"login","result":"failed","reason":"backend"}"#,
        r#"{"ts":"2026-12-02T14:00:00.004Z","session":"a-1-3","worker":1,"client":"127.0.0.8:1","user":"u","event":"policy_violation","kind":"port_theft","detail":"192.0.2.5:1"}"#,
    ];
    fs::write(&log, lines.join("\n") + "\n").expect("write");
    assert_eq!(matched_hosts(&log), ["2001:db8::7"]);
}

/// Checks packaging/crowdsec with PyYAML; prints "ok" or raises.
const CROWDSEC_CHECK: &str = r#"
import json, re, sys, yaml
base, f2b_filter, schema_path = sys.argv[1:4]
parser = yaml.safe_load(open(base + "/ftpgate-logs.yaml"))
scenarios = list(yaml.safe_load_all(open(base + "/ftpgate-scenarios.yaml")))
acquis = yaml.safe_load(open(base + "/acquis-ftpgate.yaml"))
for key in ("name", "description", "filter", "onsuccess", "nodes", "statics", "grok"):
    assert key in parser, "parser: no " + key
assert parser["onsuccess"] == "next_stage"
assert "'ftpgate'" in parser["filter"]
assert "%{IP:source_ip}" in parser["grok"]["pattern"] and parser["grok"]["expression"]
set_meta = {s["meta"] for s in parser["statics"] if "meta" in s}
assert {"service", "source_ip"} <= set_meta, set_meta
assert any(s.get("target") == "evt.StrTime" for s in parser["statics"])
log_types = set()
for node in parser["nodes"]:
    assert isinstance(node["filter"], str) and node["statics"], node
    log_types |= {s["value"] for s in node["statics"] if s.get("meta") == "log_type"}
assert log_types == {"ftp_failed_auth", "ftpgate_policy_violation"}, log_types
names = set()
kinds = set()
for sc in scenarios:
    for key in ("type", "name", "description", "filter", "groupby", "labels"):
        assert key in sc, sc.get("name", "?") + ": no " + key
    assert sc["name"] not in names
    names.add(sc["name"])
    assert sc["type"] in ("leaky", "trigger")
    assert sc["groupby"] == "evt.Meta.source_ip"
    if sc["type"] == "leaky":
        assert isinstance(sc["capacity"], int) and sc["capacity"] > 0
        assert re.fullmatch(r"\d+[smh]", sc["leakspeed"]), sc["leakspeed"]
    assert re.fullmatch(r"\d+[smh]", sc["blackhole"])
    assert sc["labels"]["remediation"] is True
    used = set(re.findall(r"log_type == '(\w+)'", sc["filter"]))
    assert used and used <= log_types, (sc["name"], used)
    for group in re.findall(r"violation_kind in \[([^\]]*)\]", sc["filter"]):
        kinds |= set(re.findall(r"'(\w+)'", group))
assert len(scenarios) == 2
f2b = open(f2b_filter).read()
f2b_kinds = set(re.search(r'"kind":"\(\?:([\w|]+)\)"', f2b).group(1).split("|"))
assert kinds == f2b_kinds, (kinds, f2b_kinds)
schema = json.load(open(schema_path))
known = set(schema["$defs"]["policy_violation"]["properties"]["kind"]["examples"])
assert kinds <= known, kinds - known
assert acquis["labels"]["type"] == "ftpgate" and acquis["filenames"]
print("ok")
"#;

#[test]
fn the_crowdsec_parser_and_scenarios_are_well_formed_and_agree() {
    let have_yaml = Command::new("python3")
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_yaml {
        eprintln!("SKIPPED: PyYAML is not installed (Debian package python3-yaml)");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = python(
        CROWDSEC_CHECK,
        &[
            &format!("{root}/packaging/crowdsec"),
            FILTER,
            &format!("{root}/etc/audit-schema.json"),
        ],
    );
    assert_eq!(out.stdout_str().trim(), "ok", "{}", out.stderr);
}
