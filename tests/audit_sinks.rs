//! The audit sinks: syslog (RFC 5424 and the default local form over our own Unix datagram
//! socket, a real rsyslogd in the stock Debian configuration too, never the system's
//! /dev/log), the file (followed across a logrotate rename, with and without SIGHUP), both at
//! once, and what happens when a sink fails: `audit.on_failure` "refuse_sessions" (421 until
//! it is back) and "continue", the loss counted and reported with an `audit_loss` event, and a
//! syslog daemon that stops reading never stalling the gateway.

#[path = "common/audit.rs"]
mod audit;
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use audit::*;
use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const AUDIT_UNAVAILABLE: &str = "421 Audit trail unavailable; try again later.";

fn severity_of(kind: &str) -> u16 {
    match kind {
        "policy_violation" => 5,
        "audit_loss" => 4,
        _ => 6,
    }
}

/// What ftpgate puts in HOSTNAME: the host name, printable ASCII without spaces.
fn hostname() -> String {
    let name = ftpgate::os::hostname().unwrap_or_default();
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(255)
        .collect();
    if clean.is_empty() { "-".into() } else { clean }
}

fn start_gate(vs: &Vsftpd, audit: Value) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .set(&["audit"], audit)
        .start()
}

/// How many events of each client are in `events`.
fn per_client(events: &[Value]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for e in events {
        if let Some(client) = e["client"].as_str() {
            *counts.entry(client.to_string()).or_default() += 1;
        }
    }
    counts
}

#[test]
fn syslog_and_file_get_every_event_with_an_rfc5424_header() {
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let mut daemon = SyslogListener::bind(&dir.path().join("log"));
    let file = dir.path().join("audit.jsonl");
    let gate = start_gate(
        &vs,
        json!({
            "file": file.to_string_lossy(),
            "syslog": { "facility": "local3", "app_name": "ftpgate-test",
                        "socket": daemon.path().to_string_lossy(), "format": "rfc5424" }
        }),
    );
    let script = scripted_sessions(&vs, &gate);
    let messages = daemon.wait(WAIT, |m| {
        let events: Vec<Value> = m.iter().map(Message::json).collect();
        ended(&events, script.full) && ended(&events, script.failed)
    });

    let pid = gate.pid().expect("ftpgate runs").to_string();
    let host = hostname();
    for m in &messages {
        let event = m.json();
        let kind = event["event"].as_str().expect("event kind");
        assert_eq!(m.facility, 19, "local3: {}", m.raw);
        assert_eq!(m.severity, severity_of(kind), "{}", m.raw);
        assert_eq!(m.pri, 19 * 8 + severity_of(kind));
        assert_eq!(m.version, 1);
        assert_eq!(m.app_name, "ftpgate-test");
        assert_eq!(m.procid, pid, "PROCID is the worker's pid");
        assert_eq!(m.hostname, host);
        assert_eq!(m.msgid, kind, "MSGID is the event kind");
        assert_eq!(
            event["ts"],
            m.timestamp.as_str(),
            "TIMESTAMP is the event's ts"
        );
        assert!(
            !m.msg.starts_with("@cee"),
            "no cookie unless asked: {}",
            m.raw
        );
        assert!(m.msg.starts_with('{') && !m.msg.contains('\n'), "{}", m.raw);
    }
    let events: Vec<Value> = messages.iter().map(Message::json).collect();
    for kind in SESSION_KINDS {
        assert!(
            events.iter().any(|e| e["event"] == *kind),
            "no {kind} in syslog: {events:#?}"
        );
    }
    let logins: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "login")
        .filter_map(|e| e["result"].as_str())
        .collect();
    assert!(
        logins.contains(&"ok") && logins.contains(&"failed"),
        "{logins:?}"
    );
    let decisions: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "command")
        .filter_map(|e| e["decision"].as_str())
        .collect();
    assert!(decisions.contains(&"allow") && decisions.contains(&"deny"));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "policy_violation" && e["kind"] == "bounce"),
        "{events:#?}"
    );

    // Every event went to both sinks, identical.
    let in_file = wait_for_file(&file, events.len());
    assert_eq!(in_file, events, "the file and syslog got the same events");
    assert!(
        !gate.stderr_log().contains("\"event\":"),
        "nothing on stderr"
    );
}

/// Waits until `path` holds `n` events; returns them.
fn wait_for_file(path: &std::path::Path, n: usize) -> Vec<Value> {
    poll(WAIT, || {
        let events = file_events(path);
        (events.len() >= n).then_some(events)
    })
}

#[test]
fn cee_cookie_default_facility_and_syslog_alone() {
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let mut daemon = SyslogListener::bind(&dir.path().join("log"));
    let gate = start_gate(
        &vs,
        json!({ "syslog": { "socket": daemon.path().to_string_lossy(), "cee": true,
                            "format": "rfc5424" } }),
    );
    let mut c = Ftp::connect(gate.addr());
    let client = c.local_addr();
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("QUIT").0, 221);
    c.read_to_eof(WAIT);
    let messages = daemon.wait(WAIT, |m| {
        let events: Vec<Value> = m.iter().map(Message::json).collect();
        ended(&events, client)
    });
    assert!(messages.len() >= 3, "{messages:#?}");
    for m in &messages {
        assert_eq!(m.facility, 10, "authpriv by default: {}", m.raw);
        assert_eq!(m.pri, 86, "authpriv.info: {}", m.raw);
        assert_eq!(m.app_name, "ftpgate", "the default APP-NAME");
        assert!(m.msg.starts_with("@cee: {"), "the cookie: {}", m.raw);
        let event = m.json();
        assert_eq!(event["event"], m.msgid.as_str());
    }
    // Syslog alone: no file, nothing on stderr.
    assert!(!gate.audit_path().exists());
    assert!(!gate.stderr_log().contains("\"event\":"));
}

/// A session that logs in and quits; returns its client address once it has ended.
fn short_session(gate: &Ftpgate) -> SocketAddr {
    let mut c = Ftp::connect(gate.addr());
    let client = c.local_addr();
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("QUIT").0, 221);
    c.read_to_eof(WAIT);
    client
}

#[test]
fn file_sink_follows_a_logrotate_rename_without_sighup() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    let path = gate.audit_path().to_path_buf();
    let rotated = path.with_extension("jsonl.1");
    let first = short_session(&gate);
    gate.wait_audit(WAIT, |e| ended(e, first));

    fs::rename(&path, &rotated).expect("rotate");
    // Within about a second ftpgate notices the rename and writes to a new file at the path.
    let started = Instant::now();
    let mut sessions = Vec::new();
    poll(WAIT, || {
        sessions.push(short_session(&gate));
        file_events(&path)
            .iter()
            .any(|e| e["event"] == "session_start")
            .then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let mode = fs::metadata(&path).expect("new file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the new file is created like the first");

    // Nothing lost or doubled across the two files: every session has all of its events.
    let last = short_session(&gate);
    let new = gate.wait_audit(WAIT, |e| ended(e, last));
    assert!(ended(&new, last));
    assert!(
        of_client(&file_events(&rotated), last).is_empty(),
        "after the switch everything goes to the new file"
    );
    let mut all = file_events(&rotated);
    all.extend(new);
    let counts = per_client(&all);
    let expected = counts[&first.to_string()];
    for client in sessions.iter().chain([&last]) {
        assert_eq!(
            counts.get(&client.to_string()),
            Some(&expected),
            "{client}: {all:#?}"
        );
    }
    assert_eq!(lost_reported(&all), 0);
    assert!(all.iter().all(|e| e["event"] != "audit_loss"));
}

#[test]
fn file_sink_is_reopened_at_once_on_sighup() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    let path = gate.audit_path().to_path_buf();
    let rotated = path.with_extension("jsonl.1");
    let first = short_session(&gate);
    gate.wait_audit(WAIT, |e| ended(e, first));
    fs::rename(&path, &rotated).expect("rotate");
    ftpgate::os::send_signal(gate.pid().expect("pid"), ftpgate::os::SIGHUP).expect("SIGHUP");
    assert!(
        wait_until(WAIT, || path.exists()),
        "SIGHUP reopens the file at once"
    );
    let next = short_session(&gate);
    let events = gate.wait_audit(WAIT, |e| ended(e, next));
    assert_eq!(
        of_client(&events, next).len(),
        of_client(&file_events(&rotated), first).len()
    );
    assert!(of_client(&file_events(&rotated), next).is_empty());
}

/// Runs `knock` until a connection gets `code`; returns the replies and clients of every
/// attempt, the last one with `code`.
fn knock_until(gate: &Ftpgate, code: u16) -> Vec<((u16, String), SocketAddr)> {
    let mut attempts = Vec::new();
    poll(WAIT, || {
        let attempt = knock(gate);
        let done = attempt.0.0 == code;
        attempts.push(attempt);
        done.then_some(())
    });
    attempts
}

#[test]
fn unwritable_audit_file_refuses_sessions_until_it_is_back_then_reports_the_loss() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    let path = gate.audit_path().to_path_buf();
    let rotated = path.with_extension("jsonl.1");
    let (reply, first) = knock(&gate);
    assert_eq!(reply.0, 220);
    let before = gate.wait_audit(WAIT, |e| ended(e, first));
    let per_quit_session = of_client(&before, first).len() as u64;
    assert_eq!(
        per_quit_session, 3,
        "session_start, command QUIT, session_end"
    );

    // Rotated, and a directory where the file was: open(2) fails with EISDIR (also for
    // root, which file modes would not stop).
    fs::rename(&path, &rotated).expect("rotate");
    fs::create_dir(&path).expect("a directory in the way");
    let outage = knock_until(&gate, 421);
    assert_eq!(outage.last().expect("an attempt").0.1, AUDIT_UNAVAILABLE);
    // It stays refused while the file cannot be opened.
    let mut attempts = outage;
    for _ in 0..3 {
        let attempt = knock(&gate);
        assert_eq!(attempt.0.0, 421, "{:?}", attempt.0);
        attempts.push(attempt);
    }
    let log = gate.stderr_log();
    assert!(
        log.contains("events are being lost until it is back") && log.contains("Is a directory"),
        "{log}"
    );

    fs::remove_dir(&path).expect("rmdir");
    let recovery = knock_until(&gate, 220);
    let last = recovery.last().expect("an attempt").1;
    attempts.extend(recovery);

    let new = gate.wait_audit(WAIT, |e| ended(e, last));
    assert_eq!(
        new[0]["event"], "audit_loss",
        "the first line of the new file: {new:#?}"
    );
    let loss = &new[0];
    assert_eq!(loss["sink"], "file");
    assert!(
        loss["error"]
            .as_str()
            .is_some_and(|e| e.contains("Is a directory")),
        "{loss}"
    );
    assert!(
        loss["first_lost"].as_str() <= loss["last_lost"].as_str(),
        "{loss}"
    );
    assert!(loss.get("session").is_none() && loss.get("client").is_none());

    // Every event of the attempts is in one of the files, or counted as lost.
    let mut all = file_events(&rotated);
    all.extend(new.iter().cloned());
    let counts = per_client(&all);
    let mut expected_lost = 0;
    for ((code, _), client) in &attempts {
        // A refused connection has session_start, policy_violation, session_end.
        assert!(*code == 220 || *code == 421);
        let present = counts.get(&client.to_string()).copied().unwrap_or(0);
        assert!(present <= 3, "{client}: {present}");
        expected_lost += 3 - present;
    }
    assert!(
        expected_lost >= 3 * 3,
        "at least the refused sessions' events"
    );
    assert_eq!(lost_reported(&all), expected_lost, "{all:#?}");
}

#[test]
fn continue_policy_accepts_sessions_during_an_outage_and_still_reports_the_loss() {
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let path = dir.path().join("audit.jsonl");
    let gate = start_gate(
        &vs,
        json!({ "file": path.to_string_lossy(), "on_failure": "continue" }),
    );
    let rotated = path.with_extension("jsonl.1");
    let first = short_session(&gate);
    let before = gate_events(&path, first);
    let per_session = of_client(&before, first).len() as u64;

    // Writes to /dev/full fail with ENOSPC: a full disk.
    fs::rename(&path, &rotated).expect("rotate");
    std::os::unix::fs::symlink("/dev/full", &path).expect("symlink");
    let mut outage = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        outage.push(short_session(&gate));
    }
    assert!(
        gate.stderr_log().contains("No space left on device"),
        "{}",
        gate.stderr_log()
    );
    fs::remove_file(&path).expect("rm the symlink");
    // Back by itself within about a second, even without traffic.
    let new = poll(WAIT, || {
        let events = file_events(&path);
        (!events.is_empty()).then_some(events)
    });
    assert_eq!(new[0]["event"], "audit_loss", "{new:#?}");
    assert_eq!(new[0]["sink"], "file");
    assert!(
        new[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device")),
        "{}",
        new[0]
    );
    let counts = per_client(&file_events(&rotated));
    let expected_lost: u64 = outage
        .iter()
        .map(|c| per_session - counts.get(&c.to_string()).copied().unwrap_or(0))
        .sum();
    assert!(
        expected_lost >= per_session,
        "a whole session at least was lost"
    );
    assert_eq!(lost_reported(&new), expected_lost);
    let after = short_session(&gate);
    let events = gate_events(&path, after);
    assert_eq!(of_client(&events, after).len() as u64, per_session);
}

/// The events of `path` once `client`'s session has ended there.
fn gate_events(path: &std::path::Path, client: SocketAddr) -> Vec<Value> {
    poll(WAIT, || {
        let events = file_events(path);
        ended(&events, client).then_some(events)
    })
}

#[test]
fn syslog_outage_refuses_sessions_then_reports_the_loss_to_syslog() {
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let mut daemon = SyslogListener::bind(&dir.path().join("log"));
    let gate = start_gate(
        &vs,
        json!({ "syslog": { "socket": daemon.path().to_string_lossy(), "format": "rfc5424" } }),
    );
    let (reply, first) = knock(&gate);
    assert_eq!(reply.0, 220);
    daemon.wait(WAIT, |m| {
        ended(&m.iter().map(Message::json).collect::<Vec<_>>(), first)
    });

    // The daemon dies: its socket file stays, sends get ECONNREFUSED.
    daemon.close();
    let mut attempts = knock_until(&gate, 421);
    assert_eq!(attempts.last().expect("attempt").0.1, AUDIT_UNAVAILABLE);
    attempts.push(knock(&gate));
    assert_eq!(attempts.last().expect("attempt").0.0, 421);

    daemon.reopen();
    let recovery = knock_until(&gate, 220);
    let last = recovery.last().expect("attempt").1;
    attempts.extend(recovery);
    let messages = daemon.wait(WAIT, |m| {
        ended(&m.iter().map(Message::json).collect::<Vec<_>>(), last)
    });
    let events: Vec<Value> = messages.iter().map(Message::json).collect();
    let losses: Vec<&Message> = messages
        .iter()
        .filter(|m| m.msgid == "audit_loss")
        .collect();
    assert_eq!(losses.len(), 1, "{messages:#?}");
    assert_eq!(losses[0].severity, 4, "warning");
    let loss = losses[0].json();
    assert_eq!(loss["sink"], "syslog");
    assert!(
        loss["error"]
            .as_str()
            .is_some_and(|e| e.contains("Connection refused")),
        "{loss}"
    );
    let counts = per_client(&events);
    let expected_lost: u64 = attempts
        .iter()
        .map(|(_, c)| 3 - counts.get(&c.to_string()).copied().unwrap_or(0))
        .sum();
    assert_eq!(loss["lost"].as_u64(), Some(expected_lost), "{events:#?}");
}

#[test]
fn a_syslog_daemon_that_stops_reading_never_stalls_the_gateway() {
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let mut daemon = SyslogListener::bind(&dir.path().join("log"));
    let gate = start_gate(
        &vs,
        json!({ "syslog": { "socket": daemon.path().to_string_lossy(), "format": "rfc5424" },
                "on_failure": "continue" }),
    );
    let first = short_session(&gate);
    let messages = daemon.wait(WAIT, |m| {
        ended(&m.iter().map(Message::json).collect::<Vec<_>>(), first)
    });
    let per_session = messages.len() as u64;

    // The daemon stops reading (its queue holds net.unix.max_dgram_qlen datagrams): sessions
    // go on at full speed and the events that do not fit are lost.
    daemon.pause();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let mut c = Ftp::connect(gate.addr());
        clients.push(c.local_addr());
        c.login_ok("anonymous", "x");
        let (code, _) = c.list("LIST /pub");
        assert_eq!(code, 226);
        assert_eq!(c.cmd("QUIT").0, 221);
        c.read_to_eof(WAIT);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a session took {:?}",
            started.elapsed()
        );
    }
    // Reading again: the loss is reported, and with what arrived it adds up.
    daemon.resume();
    let messages = daemon.wait(WAIT, |m| m.iter().any(|m| m.msgid == "audit_loss"));
    let events: Vec<Value> = messages.iter().map(Message::json).collect();
    let loss = events
        .iter()
        .find(|e| e["event"] == "audit_loss")
        .expect("audit_loss");
    assert!(
        loss["error"]
            .as_str()
            .is_some_and(|e| e.contains("Resource temporarily unavailable")),
        "{loss}"
    );
    let counts = per_client(&events);
    let per_listing_session = per_session + 3; // + command PASV, command LIST, transfer
    let received: u64 = clients
        .iter()
        .map(|c| counts.get(&c.to_string()).copied().unwrap_or(0))
        .sum();
    assert_eq!(
        received + lost_reported(&events),
        per_listing_session * clients.len() as u64,
        "{events:#?}"
    );
}

/// A real rsyslog (when installed; the suite does not install a system logger): RFC 5424
/// through an imuxsock input with the regular parser, and the local "rfc3164" form through
/// one with its default parser (what /dev/log gets), both with mmjsonparse finding the JSON
/// after the `@cee:` cookie. rsyslogd runs in the foreground with its own configuration and
/// private sockets; the system's /dev/log is never touched.
#[test]
fn rsyslog_parses_both_formats_and_the_json() {
    const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
    assert!(
        std::path::Path::new(RSYSLOGD).exists(),
        "{RSYSLOGD} is not installed: tests/run.sh installs the rsyslog package"
    );
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let d = dir.path();
    let conf = format!(
        r#"global(workDirectory="{d}" maxMessageSize="64k")
module(load="imuxsock" sysSock.use="off")
module(load="mmjsonparse")
template(name="fields" type="string"
         string="%syslogfacility%|%syslogseverity%|%app-name%|%procid%|%msgid%|%$!all-json%\n")
ruleset(name="rfc5424") {{
    action(type="mmjsonparse")
    action(type="omfile" file="{d}/rfc5424.out" template="fields")
}}
ruleset(name="rfc3164") {{
    action(type="mmjsonparse")
    action(type="omfile" file="{d}/rfc3164.out" template="fields")
}}
input(type="imuxsock" socket="{d}/rfc5424.sock" useSpecialParser="off" ruleset="rfc5424")
input(type="imuxsock" socket="{d}/rfc3164.sock" ruleset="rfc3164")
"#,
        d = d.display()
    );
    fs::write(d.join("rsyslog.conf"), conf).expect("write rsyslog.conf");
    let _rsyslogd = ProcessGuard::spawn(
        "rsyslogd",
        std::process::Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdin(std::process::Stdio::null())
            .stdout(fs::File::create(d.join("rsyslogd.out")).expect("stdout"))
            .stderr(fs::File::create(d.join("rsyslogd.err")).expect("stderr")),
    );
    assert!(
        wait_until(WAIT, || d.join("rfc5424.sock").exists()
            && d.join("rfc3164.sock").exists()),
        "rsyslogd did not start: {}",
        fs::read_to_string(d.join("rsyslogd.err")).unwrap_or_default()
    );

    for format in ["rfc5424", "rfc3164"] {
        let file = d.join(format!("{format}.jsonl"));
        let socket = d.join(format!("{format}.sock"));
        let gate = start_gate(
            &vs,
            json!({ "file": file.to_string_lossy(),
                    "syslog": { "socket": socket.to_string_lossy(), "facility": "local4",
                                "cee": true, "format": format } }),
        );
        let script = scripted_sessions(&vs, &gate);
        let expected = poll(WAIT, || {
            let events = file_events(&file);
            (ended(&events, script.full) && ended(&events, script.failed)).then_some(events)
        });
        let out = d.join(format!("{format}.out"));
        let lines = poll(WAIT, || {
            let text = fs::read_to_string(&out).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            (lines.len() >= expected.len()).then_some(lines)
        });
        assert_eq!(lines.len(), expected.len(), "{format}: {lines:#?}");
        let pid = gate.pid().expect("pid").to_string();
        for (line, event) in lines.iter().zip(&expected) {
            let fields: Vec<&str> = line.splitn(6, '|').collect();
            assert_eq!(fields.len(), 6, "{line}");
            let kind = event["event"].as_str().expect("kind");
            assert_eq!(fields[0], "20", "local4: {line}");
            assert_eq!(fields[1], severity_of(kind).to_string(), "{line}");
            assert_eq!(fields[2], "ftpgate", "APP-NAME / TAG: {line}");
            assert_eq!(fields[3], pid, "PROCID: {line}");
            if format == "rfc5424" {
                assert_eq!(fields[4], kind, "MSGID: {line}");
            }
            let parsed: Value = serde_json::from_str(fields[5])
                .unwrap_or_else(|e| panic!("{format}: not JSON ({e}): {line}"));
            assert_eq!(
                &parsed, event,
                "{format}: mmjsonparse found the whole event"
            );
        }
    }
}

/// The default syslog settings (no `format`, no facility, no cookie) against rsyslog in
/// the configuration a stock Debian 12 host runs: `/etc/rsyslog.conf` of the rsyslog
/// package, line for line, except that imuxsock's system socket is a private path instead
/// of /dev/log, the spool directory and the log files are under the test's directory, and
/// what needs the host (imklog's kernel log, `:omusrmsg:*` writing emergencies to every
/// terminal, the /etc/rsyslog.d include) is left out. The events land in auth.log (the
/// default facility authpriv), each under the tag `ftpgate[PID]:`, and the text after the
/// tag is the event's JSON: what an operator's `grep ftpgate /var/log/auth.log | cut`
/// or a SIEM's syslog parser gets.
#[test]
fn stock_debian_rsyslog_files_the_default_format_under_its_tag() {
    const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
    assert!(
        std::path::Path::new(RSYSLOGD).exists(),
        "{RSYSLOGD} is not installed: tests/run.sh installs the rsyslog package"
    );
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let d = dir.path();
    let conf = format!(
        r#"# Debian 12's /etc/rsyslog.conf (rsyslog 8.2302), socket and paths moved.
module(load="imuxsock" SysSock.Name="{d}/log") # provides support for local system logging
$FileOwner root
$FileGroup adm
$FileCreateMode 0640
$DirCreateMode 0755
$Umask 0022
$WorkDirectory {d}
*.*;auth,authpriv.none		-{d}/syslog
auth,authpriv.*			{d}/auth.log
cron.*				-{d}/cron.log
kern.*				-{d}/kern.log
mail.*				-{d}/mail.log
user.*				-{d}/user.log
"#,
        d = d.display()
    );
    fs::write(d.join("rsyslog.conf"), conf).expect("write rsyslog.conf");
    let _rsyslogd = ProcessGuard::spawn(
        "rsyslogd",
        std::process::Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdin(std::process::Stdio::null())
            .stdout(fs::File::create(d.join("rsyslogd.out")).expect("stdout"))
            .stderr(fs::File::create(d.join("rsyslogd.err")).expect("stderr")),
    );
    assert!(
        wait_until(WAIT, || d.join("log").exists()),
        "rsyslogd did not start: {}",
        fs::read_to_string(d.join("rsyslogd.err")).unwrap_or_default()
    );
    let file = d.join("audit.jsonl");
    let gate = start_gate(
        &vs,
        json!({ "file": file.to_string_lossy(),
                "syslog": { "socket": d.join("log").to_string_lossy() } }),
    );
    let script = scripted_sessions(&vs, &gate);
    let expected = poll(WAIT, || {
        let events = file_events(&file);
        (ended(&events, script.full) && ended(&events, script.failed)).then_some(events)
    });
    let tag = format!(" ftpgate[{}]: ", gate.pid().expect("pid"));
    let lines = poll(WAIT, || {
        let text = fs::read_to_string(d.join("auth.log")).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.contains(&tag))
            .map(str::to_string)
            .collect();
        (lines.len() >= expected.len()).then_some(lines)
    });
    assert_eq!(lines.len(), expected.len(), "{lines:#?}");
    for (line, event) in lines.iter().zip(&expected) {
        let (_, json) = line.split_once(&tag).expect("tag");
        let parsed: Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("the text after the tag is not JSON ({e}): {line}"));
        assert_eq!(&parsed, event, "{line}");
    }
    // authpriv only: nothing in the general log (auth,authpriv.none).
    let general = fs::read_to_string(d.join("syslog")).unwrap_or_default();
    assert!(!general.contains("ftpgate"), "{general}");
}
