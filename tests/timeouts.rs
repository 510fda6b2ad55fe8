//! Login, idle and session timeouts from the policy: the session gets 421 and is closed,
//! the audit trail says why, and other sessions are unaffected.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn gate(vs: &Vsftpd, login: u64, idle: u64, session: u64) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .timeouts(login, idle, session)
        .start()
}

/// Reads replies until 421 or EOF; returns the 421 text and when it came.
fn expect_421(c: &mut Ftp) -> (String, Instant) {
    c.set_read_timeout(Duration::from_secs(20));
    match c.try_read_reply() {
        Ok(Some((421, text))) => (text, Instant::now()),
        Ok(Some(other)) => panic!("unexpected reply before the timeout: {other:?}"),
        Ok(None) => panic!("closed without 421"),
        Err(e) => panic!("no 421: {e}"),
    }
}

fn end_reason(gate: &Ftpgate, reason: &str) -> bool {
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter()
            .any(|e| e["event"] == "session_end" && e["reason"] == reason)
    });
    events
        .iter()
        .any(|e| e["event"] == "session_end" && e["reason"] == reason)
}

#[test]
fn login_timeout_closes_a_session_that_never_logs_in() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs, 1, 300, 900);
    let start = Instant::now();
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER anonymous").0, 331);
    let (text, at) = expect_421(&mut c);
    let waited = at - start;
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?} {text}"
    );
    assert!(end_reason(&gate, "login_timeout"));
    gate.assert_healthy();
}

#[test]
fn idle_timeout_closes_an_idle_logged_in_session() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, 30, 1, 900);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let start = Instant::now();
    let (_, at) = expect_421(&mut c);
    assert!(at - start >= Duration::from_millis(900));
    assert!(end_reason(&gate, "idle_timeout"));
}

#[test]
fn idle_time_does_not_count_while_a_transfer_moves() {
    let vs = Vsftpd::start();
    let data = random_bytes(4 * 1024 * 1024, 8);
    vs.put_file("pub/slow.bin", &data);
    let gate = gate(&vs, 30, 1, 900);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut conn = c.pasv_connect();
    assert_eq!(c.cmd("RETR /pub/slow.bin").0, 150);
    // Read slowly for longer than the idle timeout.
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let started = Instant::now();
    let mut slept = false;
    loop {
        use std::io::Read;
        let n = conn.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if !slept && started.elapsed() < Duration::from_millis(2500) {
            // Pace the reader so the transfer spans more than two idle timeouts.
            std::thread::sleep(Duration::from_millis(30));
        } else {
            slept = true;
        }
    }
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(sha256_bytes(&got), sha256_bytes(&data));
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "the transfer outlasted the idle timeout"
    );
}

#[test]
fn session_timeout_closes_even_a_busy_session() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, 30, 300, 2);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let start = Instant::now();
    // Keep it busy: NOOPs never extend the session limit.
    let deadline = start + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no session timeout");
        c.send(b"NOOP\r\n");
        match c.try_read_reply() {
            Ok(Some((200, _))) => {}
            Ok(Some((421, _))) => break,
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(start.elapsed() >= Duration::from_millis(1500));
    assert!(end_reason(&gate, "session_timeout"));
}
