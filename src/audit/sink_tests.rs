//! Unit tests of the audit sinks.

use super::*;
use crate::policy::AuditMode;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ftpgate-sink-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn policy(file: Option<&Path>, syslog: Option<&Path>, on_failure: AuditFailure) -> AuditPolicy {
    AuditPolicy {
        file: file.map(Path::to_path_buf),
        syslog: syslog.map(|socket| SyslogPolicy {
            facility: 10,
            app_name: "ftpgate".to_owned(),
            socket: socket.to_path_buf(),
            cee: false,
            format: crate::policy::SyslogFormat::Rfc5424,
        }),
        mode: AuditMode::Monitor,
        digest: crate::policy::AuditDigest::Sha256,
        on_failure,
        filecopy: None,
        integrity: None,
    }
}

fn emit(sink: &mut AuditSink, n: usize) {
    for _ in 0..n {
        sink.emit(
            &AuditContext {
                session: "s",
                client: "127.0.0.1:1",
                user: None,
                user_hex: None,
            },
            &AuditRecord::SessionStart {
                server: "127.0.0.1:21".to_owned(),
                via: None,
            },
        );
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn received(daemon: &UnixDatagram) -> Vec<String> {
    daemon.set_nonblocking(true).expect("nonblocking");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = daemon.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

#[test]
fn file_outage_refuses_sessions_then_reports_the_loss() {
    let dir = TempDir::new("file");
    let path = dir.0.join("audit.jsonl");
    let mut sink =
        AuditSink::open(&policy(Some(&path), None, AuditFailure::RefuseSessions), 3).expect("open");
    let start = Instant::now();
    emit(&mut sink, 2);
    assert!(sink.accepting_sessions(start));
    assert_eq!(sink.next_tick(), None);

    // Rotated away and replaced by a directory: the next check cannot reopen it.
    std::fs::rename(&path, dir.0.join("audit.jsonl.1")).expect("rename");
    std::fs::create_dir(&path).expect("mkdir");
    assert!(
        sink.accepting_sessions(start),
        "not checked again within a second"
    );
    let later = start + RETRY;
    assert!(!sink.accepting_sessions(later));
    assert!(sink.wants_tick());
    emit(&mut sink, 5);
    assert_eq!(sink.lost(), 5);
    assert!(!sink.accepting_sessions(later + RETRY), "still a directory");

    std::fs::remove_dir(&path).expect("rmdir");
    assert!(sink.accepting_sessions(later + RETRY * 2));
    assert!(!sink.wants_tick());
    emit(&mut sink, 1);
    let events = lines(&path);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["event"], "audit_loss");
    assert_eq!(events[0]["lost"], 5);
    assert_eq!(events[0]["sink"], "file");
    assert_eq!(events[0]["worker"], 3);
    assert!(events[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(events[0]["first_lost"].as_str() <= events[0]["last_lost"].as_str());
    assert_eq!(events[1]["event"], "session_start");
    assert_eq!(lines(&dir.0.join("audit.jsonl.1")).len(), 2);
}

#[test]
fn write_failures_count_and_continue_accepts_sessions() {
    let dir = TempDir::new("full");
    let path = dir.0.join("audit.jsonl");
    let mut sink =
        AuditSink::open(&policy(Some(&path), None, AuditFailure::Continue), 0).expect("open");
    // Writes to /dev/full fail with ENOSPC.
    std::fs::remove_file(&path).expect("rm");
    std::os::unix::fs::symlink("/dev/full", &path).expect("symlink");
    let t = Instant::now() + RETRY;
    assert!(sink.accepting_sessions(t));
    emit(&mut sink, 3);
    assert_eq!(sink.lost(), 3);
    assert!(sink.wants_tick());
    assert!(
        sink.accepting_sessions(t + RETRY),
        "continue: sessions go on"
    );
    std::fs::remove_file(&path).expect("rm symlink");
    sink.tick(t + RETRY * 2);
    assert!(!sink.wants_tick());
    let events = lines(&path);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event"], "audit_loss");
    assert_eq!(events[0]["lost"], 3);
    assert!(
        events[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left")),
        "{}",
        events[0]
    );
}

#[test]
fn syslog_down_then_up_and_both_sinks_get_every_event() {
    let dir = TempDir::new("syslog");
    let path = dir.0.join("audit.jsonl");
    let socket = dir.0.join("log");
    let mut sink = AuditSink::open(
        &policy(Some(&path), Some(&socket), AuditFailure::RefuseSessions),
        0,
    )
    .expect("open");
    assert!(!sink.accepting_sessions(Instant::now()), "no daemon yet");
    emit(&mut sink, 4);
    assert_eq!(sink.lost(), 4);
    assert_eq!(lines(&path).len(), 4, "the file got them");

    let daemon = UnixDatagram::bind(&socket).expect("bind");
    assert!(
        !sink.accepting_sessions(Instant::now()),
        "not retried within a second"
    );
    assert!(sink.accepting_sessions(Instant::now() + RETRY * 2));
    emit(&mut sink, 1);
    let messages = received(&daemon);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].starts_with("<84>1 "), "{}", messages[0]);
    assert!(messages[0].contains(" audit_loss - {"), "{}", messages[0]);
    assert!(messages[0].contains("\"lost\":4"), "{}", messages[0]);
    assert!(messages[1].starts_with("<86>1 "), "{}", messages[1]);

    // A daemon that does not read: its queue fills, then the backlog, then events are
    // lost; nothing blocks.
    emit(&mut sink, 200);
    let lost = sink.lost() - 4;
    // The kernel queued net.unix.max_dgram_qlen (+1) of them, the backlog 64.
    assert!(lost > 0 && lost <= 200 - crate::limits::MAX_SYSLOG_BACKLOG as u64);
    assert!(sink.next_tick().is_some());
    assert!(!sink.accepting_sessions(Instant::now()));
    // The daemon reads again: the backlog goes first, then the loss is reported.
    let mut messages = Vec::new();
    let mut t = Instant::now();
    for _ in 0..50 {
        messages.extend(received(&daemon));
        t += RETRY;
        if sink.accepting_sessions(t) {
            break;
        }
    }
    messages.extend(received(&daemon));
    let (loss, events) = messages.split_last().expect("messages");
    assert_eq!(events.len() as u64 + lost, 200);
    assert!(events.iter().all(|m| m.contains(" session_start - ")));
    assert!(loss.contains(&format!("\"lost\":{lost}")), "{loss}");
    assert!(loss.contains("Resource temporarily unavailable"), "{loss}");
    assert_eq!(sink.next_tick(), None);
    assert_eq!(lines(&path).len(), 4 + 1 + 200, "the file lost nothing");
}

#[test]
fn a_restarted_syslog_daemon_costs_no_event() {
    let dir = TempDir::new("restart");
    let socket = dir.0.join("log");
    let daemon = UnixDatagram::bind(&socket).expect("bind");
    let mut sink = AuditSink::open(
        &policy(None, Some(&socket), AuditFailure::RefuseSessions),
        0,
    )
    .expect("open");
    emit(&mut sink, 1);
    assert_eq!(received(&daemon).len(), 1);
    // A new socket at the same path: the old connection is refused, a new one is made
    // and the event resent.
    drop(daemon);
    std::fs::remove_file(&socket).expect("rm socket");
    let daemon = UnixDatagram::bind(&socket).expect("bind again");
    emit(&mut sink, 1);
    assert_eq!(received(&daemon).len(), 1);
    assert_eq!(sink.lost(), 0);
    assert!(sink.accepting_sessions(Instant::now()));
    // Not twice within a second: a second restart right away costs an event, which is
    // reported once the daemon takes events again.
    drop(daemon);
    std::fs::remove_file(&socket).expect("rm socket");
    let daemon = UnixDatagram::bind(&socket).expect("bind again");
    emit(&mut sink, 1);
    assert_eq!(sink.lost(), 1);
    assert!(!sink.accepting_sessions(Instant::now()));
    sink.tick(Instant::now() + RETRY);
    let messages = received(&daemon);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("\"lost\":1"), "{}", messages[0]);
}

#[test]
fn stderr_when_nothing_is_configured_and_reload_switches_sinks() {
    let dir = TempDir::new("reload");
    let mut sink =
        AuditSink::open(&policy(None, None, AuditFailure::RefuseSessions), 0).expect("open");
    assert!(matches!(
        sink.channels[..],
        [Channel {
            out: Out::Stderr,
            ..
        }]
    ));
    let path = dir.0.join("a.jsonl");
    sink.apply(&policy(Some(&path), None, AuditFailure::Continue));
    emit(&mut sink, 1);
    assert_eq!(lines(&path).len(), 1);
    assert_eq!(sink.on_failure, AuditFailure::Continue);
    // A file that cannot be opened after a reload: broken, not fatal.
    let bad = dir.0.join("missing-dir/a.jsonl");
    sink.apply(&policy(Some(&bad), None, AuditFailure::RefuseSessions));
    assert!(!sink.accepting_sessions(Instant::now()));
    sink.reopen().expect_err("still missing");
}

#[test]
fn with_integrity_lines_are_chained_losses_name_their_seqs_and_checkpoints_verify() {
    use crate::policy::{AuditKey, IntegrityPolicy};
    let dir = TempDir::new("chain");
    let path = dir.0.join("audit.jsonl");
    let rotated = dir.0.join("audit.jsonl.1");
    let key = vec![5u8; 32];
    let mut policy = policy(Some(&path), None, AuditFailure::Continue);
    policy.integrity = Some(IntegrityPolicy {
        key_file: dir.0.join("key"),
        key: AuditKey::new(key.clone()),
        checkpoint_interval_s: 1,
    });
    let mut sink = AuditSink::open(&policy, 1).expect("open");
    let start = Instant::now();
    emit(&mut sink, 2);
    let due = sink.next_tick().expect("a checkpoint is pending");
    assert!(due <= Duration::from_secs(1), "{due:?}");
    std::fs::rename(&path, &rotated).expect("rename");
    std::fs::create_dir(&path).expect("mkdir");
    sink.accepting_sessions(start + RETRY);
    emit(&mut sink, 5);
    assert_eq!(sink.lost(), 5);
    std::fs::remove_dir(&path).expect("rmdir");
    sink.accepting_sessions(start + RETRY * 2);
    emit(&mut sink, 1);
    sink.tick(Instant::now() + Duration::from_secs(2));
    assert_eq!(sink.next_tick(), None, "nothing after the checkpoint");

    let events = lines(&path);
    assert_eq!(events[0]["event"], "audit_loss");
    assert_eq!(
        (&events[0]["lost_seq_first"], &events[0]["lost_seq_last"]),
        (&serde_json::json!(2), &serde_json::json!(6))
    );
    assert_eq!(events[0]["chain"], events[1]["chain"]);
    assert_eq!(events[1]["seq"], 7);
    assert_eq!(events[2]["event"], "audit_checkpoint");
    let files: Vec<(String, Vec<u8>)> = [&rotated, &path]
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).expect("read")))
        .collect();
    let report = super::super::verify::verify(&files, std::slice::from_ref(&key));
    assert_eq!(report.finding, None, "{:?}", report.notes);
    assert_eq!(report.checkpoints_verified, 1);
    assert!(report.notes.iter().any(|n| n.contains("lost 5 lines")));
}

#[test]
fn a_dropped_sink_checkpoints_its_unkeyed_lines() {
    use crate::policy::{AuditKey, IntegrityPolicy};
    let dir = TempDir::new("drop");
    let path = dir.0.join("audit.jsonl");
    let mut policy = policy(Some(&path), None, AuditFailure::Continue);
    policy.integrity = Some(IntegrityPolicy {
        key_file: dir.0.join("key"),
        key: AuditKey::new(vec![6; 32]),
        checkpoint_interval_s: 3600,
    });
    let mut sink = AuditSink::open(&policy, 0).expect("open");
    emit(&mut sink, 2);
    assert_eq!(lines(&path).len(), 2, "not due for an hour");
    drop(sink);
    let events = lines(&path);
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["event"], "audit_checkpoint");
    assert_eq!(events[2]["seq"], 2);
    // Nothing pending: no checkpoint of nothing.
    let sink = AuditSink::open(&policy, 0).expect("open");
    drop(sink);
    assert_eq!(lines(&path).len(), 3);
}

#[test]
fn worker_events_are_links_of_the_chain_too() {
    use crate::policy::{AuditKey, IntegrityPolicy};
    let dir = TempDir::new("worker-event");
    let path = dir.0.join("audit.jsonl");
    let mut policy = policy(Some(&path), None, AuditFailure::Continue);
    policy.integrity = Some(IntegrityPolicy {
        key_file: dir.0.join("key"),
        key: AuditKey::new(vec![6; 32]),
        checkpoint_interval_s: 3600,
    });
    let mut sink = AuditSink::open(&policy, 0).expect("open");
    emit(&mut sink, 1);
    let event = serde_json::json!({"ts": "t", "worker": 0, "event": "policy_reload"});
    sink.emit_worker_event("policy_reload", syslog::INFO, &event);
    emit(&mut sink, 1);
    drop(sink);
    let events = lines(&path);
    assert_eq!(events[1]["event"], "policy_reload");
    assert_eq!(events[1]["seq"], 1);
    let files = vec![("a".to_owned(), std::fs::read(&path).expect("read"))];
    let report = super::super::verify::verify(&files, &[vec![6; 32]]);
    assert_eq!(report.finding, None);
    assert_eq!(report.checkpoints_verified, 1);
}
