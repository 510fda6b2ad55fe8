//! Session limits (total, per source address, per user — global across worker processes)
//! and the temporary ban after failed logins. Each refused session gets 421 and an audit
//! event; sessions already open are unaffected.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;

use common::*;

fn builder(vs: &Vsftpd) -> FtpgateBuilder {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
}

/// The greeting of a new connection: 220, or 421 (then the gateway closes it).
fn greeting(gate: &Ftpgate) -> (u16, Ftp) {
    let mut c = Ftp::connect_raw(gate.addr());
    let (code, _) = c.read_reply();
    (code, c)
}

fn assert_closed(c: &mut Ftp) {
    c.set_read_timeout(Duration::from_secs(10));
    assert!(
        matches!(c.try_read_line(), Ok(None) | Err(_)),
        "the refused connection is closed"
    );
}

fn violations(gate: &Ftpgate, kind: &str) -> usize {
    gate.audit_events()
        .iter()
        .filter(|e| e["event"] == "policy_violation" && e["kind"] == kind)
        .count()
}

#[test]
fn sessions_per_ip_beyond_the_limit_get_421_and_the_others_go_on() {
    let vs = Vsftpd::start();
    let mut gate = builder(&vs)
        .set(&["defaults", "limits", "sessions_per_ip"], json!(2))
        .start();
    let (c1, mut a) = greeting(&gate);
    let (c2, mut b) = greeting(&gate);
    assert_eq!((c1, c2), (220, 220));
    let (code, mut refused) = greeting(&gate);
    assert_eq!(code, 421);
    assert_closed(&mut refused);
    assert_eq!(violations(&gate, "limit"), 1);
    // The open sessions are unaffected.
    a.login_ok("anonymous", "x");
    b.login_ok("ftp", "x");
    assert_eq!(a.cmd("NOOP").0, 200);
    // Closing one makes room again.
    assert_eq!(b.cmd("QUIT").0, 221);
    drop(b);
    assert!(wait_until(Duration::from_secs(10), || {
        let (code, _c) = greeting(&gate);
        code == 220
    }));
    assert_eq!(a.cmd("QUIT").0, 221);
    drop(a);
    gate.assert_healthy();
}

#[test]
fn sessions_total_is_global_across_workers() {
    let vs = Vsftpd::start();
    let gate = builder(&vs)
        .workers(2)
        .set(&["defaults", "limits", "sessions_total"], json!(4))
        .start();
    let pid = gate.pid().expect("pid");
    assert!(wait_until(START_TIMEOUT, || {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .is_ok_and(|c| c.split_whitespace().count() == 2)
    }));
    let mut open = Vec::new();
    for _ in 0..4 {
        let (code, c) = greeting(&gate);
        assert_eq!(code, 220);
        open.push(c);
    }
    // Whichever worker the kernel hands them to, the next ones are over the total.
    for _ in 0..6 {
        let (code, mut c) = greeting(&gate);
        assert_eq!(code, 421);
        assert_closed(&mut c);
    }
    let workers: std::collections::BTreeSet<u64> = gate
        .audit_events()
        .iter()
        .filter(|e| e["event"] == "session_start")
        .filter_map(|e| e["worker"].as_u64())
        .collect();
    assert_eq!(
        workers.len(),
        2,
        "both workers took connections: {workers:?}"
    );
    drop(open);
}

#[test]
fn a_user_over_its_session_cap_gets_421_at_login() {
    let vs = Vsftpd::start();
    let mut gate = builder(&vs)
        .set(&["users", "ftp", "limits", "sessions"], json!(1))
        .start();
    let mut first = Ftp::connect(gate.addr());
    first.login_ok("ftp", "x");
    let mut second = Ftp::connect(gate.addr());
    assert_eq!(second.cmd("USER ftp").0, 331);
    let (code, text) = second.cmd("PASS x");
    assert_eq!(code, 421, "{text}");
    assert_closed(&mut second);
    // Another user is not affected, nor is the first session.
    let mut other = Ftp::connect(gate.addr());
    other.login_ok("anonymous", "x");
    assert_eq!(first.cmd("PWD").0, 257);
    assert_eq!(first.cmd("QUIT").0, 221);
    drop(first);
    // Once the first session is gone, the user may log in again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = Ftp::connect(gate.addr());
        assert_eq!(again.cmd("USER ftp").0, 331);
        match again.cmd("PASS x").0 {
            230 => break,
            421 if Instant::now() < deadline => continue,
            code => panic!("login after the first session ended: {code}"),
        }
    }
    assert!(violations(&gate, "limit") >= 1);
    gate.assert_healthy();
}

#[test]
fn failed_logins_ban_the_address_until_the_ban_expires() {
    let vs = Vsftpd::start();
    let mut gate = builder(&vs)
        .set(&["defaults", "limits", "failed_logins_per_ip"], json!(3))
        // Longer than the failed-login delay (3 s), which the ban's 421 waits for.
        .set(&["defaults", "limits", "ban"], json!(6))
        .start();
    let mut c = Ftp::connect(gate.addr());
    let mut banned_at = Instant::now();
    for attempt in 1..=3 {
        banned_at = Instant::now();
        assert_eq!(c.cmd("USER nobody").0, 331);
        let (code, text) = c.cmd("PASS wrong");
        if attempt < 3 {
            assert_eq!(code, 530, "attempt {attempt}: {text}");
        } else {
            assert_eq!(code, 421, "the third failure bans: {text}");
        }
    }
    assert_closed(&mut c);
    // A new connection from the banned address is refused at once.
    let (code, mut refused) = greeting(&gate);
    assert_eq!(code, 421);
    assert_closed(&mut refused);
    assert!(violations(&gate, "failed_logins") >= 2);
    // The ban expires.
    assert!(
        wait_until(Duration::from_secs(20), || greeting(&gate).0 == 220),
        "ban lifted"
    );
    assert!(banned_at.elapsed() >= Duration::from_secs(5));
    gate.assert_healthy();
}

#[test]
fn max_file_size_stops_uploads_with_552_and_downloads_with_426() {
    let vs = Vsftpd::start();
    let limit = 1024 * 1024;
    let exact = random_bytes(limit, 41);
    let big = random_bytes(2 * limit, 42);
    vs.put_file("pub/exact.bin", &exact);
    vs.put_file("pub/big.bin", &big);
    let mut gate = builder(&vs)
        .set(
            &["users", "anonymous", "limits", "max_file_size"],
            json!("1MiB"),
        )
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    // A file of exactly the limit passes.
    assert_eq!(
        sha256_bytes(&c.retr("/pub/exact.bin")),
        sha256_bytes(&exact)
    );
    // A larger download is cut off.
    let (code, got) = c.transfer_in("RETR /pub/big.bin");
    assert_eq!(code, 426);
    assert!(
        got.len() <= limit,
        "no byte past the limit reached the client: {}",
        got.len()
    );
    // A larger upload is refused with 552 and stored only in part.
    let code = c.transfer_out("STOR /pub/up.bin", &big);
    assert_eq!(code, 552);
    let stored = std::fs::metadata(vs.root().join("pub/up.bin")).map_or(0, |m| m.len());
    assert!(
        stored <= limit as u64,
        "the backend got at most the limit: {stored}"
    );
    assert_eq!(c.cmd("NOOP").0, 200, "the session goes on");
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter()
            .filter(|e| e["event"] == "transfer" && e["result"] == "size_limit")
            .count()
            >= 2
    });
    let cut: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "transfer" && e["result"] == "size_limit")
        .collect();
    assert_eq!(cut.len(), 2, "{events:?}");
    assert!(
        cut.iter().any(|e| e["direction"] == "upload"
            && e["bytes"].as_u64().is_some_and(|b| b <= limit as u64))
    );
    gate.assert_healthy();
}

/// Downloads `path` and returns (bytes, seconds).
fn timed_retr(gate: &Ftpgate, user: &str, path: &str) -> (usize, f64) {
    let mut c = Ftp::connect(gate.addr());
    c.login_ok(user, "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let start = Instant::now();
    let got = c.retr(path);
    (got.len(), start.elapsed().as_secs_f64())
}

#[test]
fn a_session_rate_limit_holds_within_ten_percent_over_five_seconds() {
    let vs = Vsftpd::start();
    let rate = 1024 * 1024;
    vs.put_file("pub/five.bin", &random_bytes(5 * rate, 43));
    let gate = builder(&vs)
        .set(&["users", "ftp", "limits", "rate"], json!("1MiB/s"))
        .start();
    let (bytes, secs) = timed_retr(&gate, "ftp", "/pub/five.bin");
    let measured = bytes as f64 / secs;
    let err = (measured - rate as f64).abs() / rate as f64;
    assert!(
        err < 0.10,
        "{measured:.0} B/s over {secs:.2} s for a limit of {rate} B/s"
    );
}

#[test]
fn a_user_rate_limit_is_shared_by_the_users_sessions() {
    let vs = Vsftpd::start();
    let rate = 1024 * 1024;
    vs.put_file("pub/half.bin", &random_bytes(5 * rate / 2, 44));
    let gate = builder(&vs)
        .set(&["users", "ftp", "limits", "user_rate"], json!("1MiB/s"))
        .start();
    let start = Instant::now();
    std::thread::scope(|s| {
        let a = s.spawn(|| timed_retr(&gate, "ftp", "/pub/half.bin"));
        let b = s.spawn(|| timed_retr(&gate, "ftp", "/pub/half.bin"));
        let (a, b) = (a.join().expect("a"), b.join().expect("b"));
        let total = (a.0 + b.0) as f64;
        let secs = start.elapsed().as_secs_f64();
        let measured = total / secs;
        let err = (measured - rate as f64).abs() / rate as f64;
        assert!(
            err < 0.10,
            "{measured:.0} B/s together over {secs:.2} s for {rate} B/s"
        );
    });
}

#[test]
fn sessions_waiting_for_a_backend_are_capped() {
    let vs = Vsftpd::start();
    // A backend whose accept queue is full: connects to it hang in SYN-SENT.
    let stuck =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    stuck
        .bind(&std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)).into())
        .expect("bind");
    stuck.listen(0).expect("listen");
    let stuck_addr = stuck.local_addr().expect("addr").as_socket().expect("inet");
    let mut fillers = Vec::new();
    // Fill the queue (never accepted) until a connect no longer completes at once.
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&stuck_addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    let mut gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .backend("stuck", stuck_addr)
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("slow", "full", "stuck")
        .set(
            &["defaults", "limits", "sessions_waiting_for_backend"],
            json!(1),
        )
        .start();
    let mut first = Ftp::connect(gate.addr());
    assert_eq!(first.cmd("USER slow").0, 331);
    first.send(b"PASS x\r\n"); // stays waiting for the stuck backend
    // Wait until the first session's backend connect is under way (its PASS was read).
    assert!(wait_until(Duration::from_secs(10), || gate
        .stderr_log()
        .contains(&format!("connecting to backend {stuck_addr}"))));
    let mut second = Ftp::connect(gate.addr());
    assert_eq!(second.cmd("USER slow").0, 331);
    let (code, text) = second.cmd("PASS x");
    assert_eq!(code, 421, "{text}");
    assert!(violations(&gate, "limit") >= 1);
    // Once the waiting session is gone, sessions log in again.
    drop(first);
    drop(fillers);
    gate.assert_healthy();
}
