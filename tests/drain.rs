//! SIGTERM drains: idle sessions get 421 at once, a transfer in flight finishes (up to
//! `drain_timeout`), what is left at the deadline gets 426 for its transfer, then 421, and
//! is recorded with result `shutdown`, the process exits 0 as soon as nothing is in flight,
//! and a second SIGTERM stops at once.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn gate(vs: &Vsftpd, workers: u32, drain_timeout: u64) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .workers(workers)
        .set(&["drain_timeout"], json!(drain_timeout))
        .start()
}

fn signal(gate: &Ftpgate, signal: i32) {
    let pid = gate.pid().expect("ftpgate pid") as i32;
    // SAFETY: kill(2) takes plain integers; the pid is our own child.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Waits for ftpgate to exit and returns when it did, with its exit code.
fn wait_exit(gate: &mut Ftpgate, timeout: Duration) -> (Instant, Option<i32>) {
    assert!(
        wait_until(timeout, || !gate.is_running()),
        "ftpgate still running after {timeout:?}:\n{}",
        gate.stderr_log()
    );
    let at = Instant::now();
    (at, gate.stop().and_then(|s| s.code()))
}

/// A logged-in session that reads the reply ftpgate sends it unasked, within `timeout`.
fn unsolicited_reply(c: &mut Ftp, timeout: Duration) -> Option<(u16, String)> {
    c.set_read_timeout(timeout);
    c.try_read_reply().ok().flatten()
}

#[test]
fn sigterm_lets_an_upload_finish_and_closes_an_idle_session_at_once() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs, 2, 30);
    let data = random_bytes(64 * 1024 * 1024, 41);

    let mut idle = Ftp::connect(gate.addr());
    idle.login_ok("ftp", "x");
    let mut up = Ftp::connect(gate.addr());
    up.login_ok("anonymous", "x");
    let ours = [idle.local_addr().to_string(), up.local_addr().to_string()];
    assert_eq!(up.cmd("TYPE I").0, 200);
    let mut sink = up.pasv_connect();
    up.send(b"STOR /pub/drained.bin\r\n");
    assert_eq!(up.read_reply().0, 150);
    // A quarter crosses before the stop, the rest after it.
    let quarter = data.len() / 4;
    sink.write_all(&data[..quarter]).expect("first part");

    signal(&gate, libc::SIGTERM);
    let told = Instant::now();
    let (code, text) = unsolicited_reply(&mut idle, Duration::from_secs(5))
        .expect("the idle session is told at once");
    assert_eq!(code, 421, "{text}");
    assert!(
        told.elapsed() < Duration::from_secs(3),
        "421 took {:?}",
        told.elapsed()
    );
    // No new sessions meanwhile.
    assert!(
        wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(
            gate.addr()
        )
        .is_err()),
        "the listeners close"
    );

    sink.write_all(&data[quarter..])
        .expect("the rest during the drain");
    drop(sink);
    assert_eq!(up.read_reply().0, 226, "the upload in flight finishes");
    let finished = Instant::now();
    // Then that session closes too (421) and the process exits, at once.
    let (code, _) = unsolicited_reply(&mut up, Duration::from_secs(5)).expect("421");
    assert_eq!(code, 421);
    let (exited, status) = wait_exit(&mut gate, Duration::from_secs(10));
    // (Hashing 64 MiB in a debug build takes a while: only after the exit is measured.)
    let stored = std::fs::read(vs.pub_dir().join("drained.bin")).expect("stored");
    assert_eq!(sha256_bytes(&stored), sha256_bytes(&data));
    assert_eq!(status, Some(0), "a clean exit after the drain");
    assert!(
        exited.saturating_duration_since(finished) < Duration::from_secs(1),
        "exit {:?} after the upload's end:\n{}",
        exited.saturating_duration_since(finished),
        gate.stderr_log()
    );

    let events = gate.audit_events();
    // (A connection of the wait above that raced the listeners' close may have had a
    // session too, ended by its client: only the two sessions of this test count.)
    let ends: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "session_end")
        .filter(|e| ours.iter().any(|c| e["client"] == c.as_str()))
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(ends, ["worker_stopping", "worker_stopping"], "{events:?}");
    let transfer = events
        .iter()
        .find(|e| e["event"] == "transfer")
        .expect("the upload's transfer event");
    assert_eq!(transfer["result"], "ok");
    assert_eq!(transfer["bytes"], data.len() as u64);
    assert_eq!(transfer["sha256"], sha256_bytes(&data));
}

#[test]
fn at_the_drain_timeout_a_stalled_download_is_cut_and_recorded_as_shutdown() {
    let vs = Vsftpd::start();
    let data = random_bytes(32 * 1024 * 1024, 42);
    vs.put_file("pub/stall.bin", &data);
    let mut gate = gate(&vs, 1, 2);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut source = c.pasv_connect();
    c.send(b"RETR /pub/stall.bin\r\n");
    assert_eq!(c.read_reply().0, 150);
    // Some bytes arrive, then the client stops reading: the relay stalls on backpressure.
    let mut first = vec![0u8; 64 * 1024];
    source.read_exact(&mut first).expect("first bytes");

    let stopped = Instant::now();
    signal(&gate, libc::SIGTERM);
    let (code, _) =
        unsolicited_reply(&mut c, Duration::from_secs(10)).expect("426 at the deadline");
    assert_eq!(code, 426, "the transfer's answer first");
    let waited = stopped.elapsed();
    let (code, _) = unsolicited_reply(&mut c, Duration::from_secs(5)).expect("then 421");
    assert_eq!(code, 421);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "the transfer had its drain_timeout of 2 s, not more: {waited:?}"
    );
    let (_, status) = wait_exit(&mut gate, Duration::from_secs(10));
    assert_eq!(status, Some(0));
    let events = gate.audit_events();
    let transfer = events
        .iter()
        .find(|e| e["event"] == "transfer")
        .expect("the cut download still has its transfer event");
    assert_eq!(transfer["result"], "shutdown");
    let bytes = transfer["bytes"].as_u64().expect("bytes");
    assert!(
        bytes >= first.len() as u64 && bytes < data.len() as u64,
        "{bytes}"
    );
    let end = events
        .iter()
        .find(|e| e["event"] == "session_end")
        .expect("session_end");
    assert_eq!(end["reason"], "worker_stopping");
}

#[test]
fn a_second_sigterm_stops_at_once() {
    let vs = Vsftpd::start();
    let data = random_bytes(32 * 1024 * 1024, 43);
    vs.put_file("pub/stall.bin", &data);
    let mut gate = gate(&vs, 2, 600);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut source = c.pasv_connect();
    c.send(b"RETR /pub/stall.bin\r\n");
    assert_eq!(c.read_reply().0, 150);
    let mut first = vec![0u8; 64 * 1024];
    source.read_exact(&mut first).expect("first bytes");

    signal(&gate, libc::SIGTERM);
    // The transfer is in flight: the first SIGTERM waits for it (up to 600 s).
    assert!(gate.is_running());
    assert!(
        wait_until(Duration::from_secs(5), || gate
            .stderr_log()
            .contains("draining")),
        "{}",
        gate.stderr_log()
    );
    let second = Instant::now();
    signal(&gate, libc::SIGTERM);
    let (exited, status) = wait_exit(&mut gate, Duration::from_secs(10));
    assert!(
        exited.saturating_duration_since(second) < Duration::from_secs(3),
        "{:?}",
        exited.saturating_duration_since(second)
    );
    assert_eq!(status, Some(0));
    let transfer = gate
        .wait_audit(Duration::from_secs(5), |ev| {
            ev.iter().any(|e| e["event"] == "transfer")
        })
        .into_iter()
        .find(|e| e["event"] == "transfer")
        .expect("transfer event");
    assert_eq!(transfer["result"], "shutdown");
}

#[test]
fn drain_timeout_is_checked_by_the_loader() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, 1, 30);
    let mut policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gate.config_path()).expect("policy"))
            .expect("json");
    for (value, message) in [
        (json!(0), "drain_timeout: must be at least 1 second"),
        (
            json!(3601),
            "drain_timeout: 3601 is too long; the most is 3600 seconds",
        ),
        (
            json!("30s"),
            "drain_timeout: \"30s\": write a number of seconds",
        ),
    ] {
        policy["drain_timeout"] = value;
        let path = gate.config_path().with_extension("bad.json");
        std::fs::write(&path, policy.to_string()).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftpgate"))
            .args(["--check", "--config"])
            .arg(&path)
            .output()
            .expect("run --check");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
    }
}
