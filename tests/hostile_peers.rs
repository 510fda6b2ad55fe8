//! One hostile client or backend must not hurt the gateway or anyone else on it. Each test
//! performs an attack over loopback, measures the bound that holds it (the worker's resident
//! memory, its timer heap through the SIGUSR1 stats line, a victim's latency, the audit
//! trail's growth, what the backend saw) and then shows a normal session still works.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The worker's resident memory in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Asks the worker for its stats line (SIGUSR1) and returns its figures.
fn stats(gate: &Ftpgate) -> HashMap<String, u64> {
    let pid = gate.pid().expect("ftpgate pid");
    let before = gate.stderr_log().matches("stats: ").count();
    let status = Command::new("kill")
        .arg("-USR1")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let mut line = String::new();
    let found = wait_until(Duration::from_secs(10), || {
        let log = gate.stderr_log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("stats: ")).collect();
        if lines.len() > before {
            line = lines.last().map(|l| l.to_string()).unwrap_or_default();
            true
        } else {
            false
        }
    });
    assert!(found, "no stats line after SIGUSR1");
    let figures = line.split("stats: ").nth(1).unwrap_or("");
    figures
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// Writes `line` in a loop for `duration` (or until the connection breaks), as fast as the
/// socket takes it. Returns the number of lines written.
fn flood(stream: &mut TcpStream, line: &[u8], duration: Duration) -> u64 {
    let batch: Vec<u8> = line.repeat(256);
    let deadline = Instant::now() + duration;
    let mut lines = 0;
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    while Instant::now() < deadline {
        match stream.write(&batch) {
            Ok(n) => lines += (n / line.len()) as u64,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    lines
}

/// Reads and discards everything on `stream` in a thread until `stop` or the end.
fn drain_in_background(stream: TcpStream, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut stream = stream;
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut buf = [0u8; 65536];
        let mut total = 0u64;
        while !stop.load(Ordering::SeqCst) {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(_) => {}
            }
        }
        total
    })
}

/// The gate most tests here put in front of `vs`: roles full and read-only, `anonymous` full.
fn vsftpd_gate(vs: &Vsftpd) -> FtpgateBuilder {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
}

/// A normal session on the same gateway still works: login, PWD, a listing, QUIT.
fn assert_serves(gate: &mut Ftpgate, (user, pass): (&str, &str)) {
    assert!(gate.is_running(), "ftpgate exited:\n{}", gate.stderr_log());
    let mut c = Ftp::connect(gate.addr());
    c.login_ok(user, pass);
    assert_eq!(c.cmd("PWD").0, 257);
    let (code, _) = c.list("NLST");
    assert_eq!(code, 226);
    assert_eq!(c.cmd("QUIT").0, 221);
}

#[test]
fn a_command_flood_after_login_grows_neither_the_timer_heap_nor_the_worker() {
    let py = Pyftpdlib::start();
    let mut gate = Ftpgate::for_pyftpdlib(&py);
    let pid = gate.pid().expect("pid");
    let mut c = Ftp::connect(gate.addr());
    c.login_ok(Pyftpdlib::BOB.0, Pyftpdlib::BOB.1);
    let before = rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = drain_in_background(c.try_clone_stream(), Arc::clone(&stop));
    // Every HELP re-arms the idle timer (main grew by one heap entry per command: 460 MB
    // in 15 s). HELP is answered by ftpgate itself, so nothing slows the flood down.
    let mut stream = c.try_clone_stream();
    let sent = flood(&mut stream, b"HELP\r\n", Duration::from_secs(4));
    let figures = stats(&gate);
    let after = rss_kib(pid);
    stop.store(true, Ordering::SeqCst);
    let received = reader.join().expect("reader");
    assert!(sent > 1000, "the flood sent only {sent} lines");
    assert!(received > 0, "the flooder got its replies");
    // At most one entry per session and timer kind, whatever the command rate.
    let timers = figures["timers"];
    assert!(
        timers <= 13,
        "timer heap holds {timers} entries: {figures:?}"
    );
    assert!(
        after < before + 16 * 1024,
        "the worker grew from {before} KiB to {after} KiB"
    );
    drop(stream);
    drop(c);
    assert_serves(&mut gate, Pyftpdlib::ALICE);
}

#[test]
fn a_flood_before_login_is_closed_and_summarised_in_the_audit_trail() {
    let vs = Vsftpd::start();
    let mut gate = Ftpgate::for_vsftpd(&vs);
    let c = Ftp::connect(gate.addr());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = drain_in_background(c.try_clone_stream(), Arc::clone(&stop));
    let mut stream = c.try_clone_stream();
    let audit_before = gate.audit_lines().len();
    flood(&mut stream, b"NOOP\r\n", Duration::from_secs(2));
    let events = gate.wait_audit(Duration::from_secs(10), |events| {
        events.iter().any(|e| e["event"] == "session_end")
    });
    stop.store(true, Ordering::SeqCst);
    let _ = reader.join();
    let end = events
        .iter()
        .find(|e| e["event"] == "session_end")
        .expect("session_end");
    assert_eq!(end["reason"], "too_many_commands");
    assert_eq!(end["repeated_commands"]["NOOP"], json!(49));
    let noops = events
        .iter()
        .filter(|e| e["event"] == "command" && e["verb"] == "NOOP")
        .count();
    assert_eq!(noops, 1, "one line for the kind, a count for the repeats");
    let violations: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "policy_violation")
        .collect();
    assert_eq!(violations.len(), 1, "audited once: {violations:?}");
    // session_start, one NOOP, the violation, session_end: the flood cost four lines.
    let grown = gate.audit_lines().len() - audit_before;
    assert!(grown <= 5, "the audit trail grew by {grown} lines");
    drop(stream);
    drop(c);
    gate.assert_healthy();
}

#[test]
fn a_flooding_session_does_not_slow_another_sessions_commands() {
    let py = Pyftpdlib::start();
    let mut gate = Ftpgate::for_pyftpdlib(&py);
    let mut victim = Ftp::connect(gate.addr());
    victim.login_ok(Pyftpdlib::BOB.0, Pyftpdlib::BOB.1);
    let round_trip = |c: &mut Ftp| {
        let t = Instant::now();
        assert_eq!(c.cmd("PWD").0, 257);
        t.elapsed()
    };
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let unloaded = median((0..20).map(|_| round_trip(&mut victim)).collect());
    let mut flooder = Ftp::connect(gate.addr());
    flooder.login_ok(Pyftpdlib::ALICE.0, Pyftpdlib::ALICE.1);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = drain_in_background(flooder.try_clone_stream(), Arc::clone(&stop));
    let mut stream = flooder.try_clone_stream();
    let flood_started = Instant::now();
    let flooding = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut sent = 0;
            while !stop.load(Ordering::SeqCst) {
                sent += flood(&mut stream, b"HELP\r\n", Duration::from_millis(200));
            }
            sent
        })
    };
    thread::sleep(Duration::from_millis(300)); // the flood is under way (not a wait for state)
    let loaded: Vec<Duration> = (0..40).map(|_| round_trip(&mut victim)).collect();
    let worst = loaded.iter().max().copied().unwrap_or_default();
    let loaded = median(loaded);
    stop.store(true, Ordering::SeqCst);
    let sent = flooding.join().expect("flooder");
    let _ = reader.join();
    assert!(sent > 1000, "the flood sent only {sent} lines");
    assert!(
        loaded < unloaded + Duration::from_millis(5),
        "the victim's PWD took {loaded:?} (median) under the flood, {unloaded:?} without"
    );
    assert!(
        worst < Duration::from_millis(250),
        "the victim's slowest PWD took {worst:?}"
    );
    // The flooder is logged in, so each command it got processed is audited; and it got
    // them processed at a bounded rate: the burst, then MAX_COMMANDS_PER_SECOND.
    let helps = gate
        .audit_events()
        .iter()
        .filter(|e| e["event"] == "command" && e["verb"] == "HELP")
        .count() as u64;
    let seconds = flood_started.elapsed().as_secs_f64();
    let ceiling = 1000.0 + 1000.0 * seconds + 100.0;
    assert!(helps >= 1000, "{helps} HELPs audited: fewer than the burst");
    assert!(
        (helps as f64) <= ceiling,
        "{helps} HELPs processed in {seconds:.2} s: over the command rate"
    );
    drop(flooder);
    assert_serves(&mut gate, Pyftpdlib::ALICE);
}

/// A backend that logs in anyone and answers `STAT` with a 60 KiB multi-line reply, and
/// `SIZE` with an endless stream of preliminary replies.
fn flooding_backend() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&written);
    thread::spawn(move || {
        // A few connections at most (one per test session), each in its own thread.
        for _ in 0..4 {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let counter = Arc::clone(&counter);
            thread::spawn(move || serve_flooding(stream, &counter));
        }
    });
    (addr, written)
}

fn serve_flooding(stream: TcpStream, written: &AtomicU64) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(20)));
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let _ = writer.write_all(b"220 flood\r\n");
    let mut big = b"211-status\r\n".to_vec();
    while big.len() < 60 * 1024 {
        big.extend_from_slice(b" a status line that is not short at all, padding padding\r\n");
    }
    big.extend_from_slice(b"211 end\r\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply: &[u8] = match line.split_whitespace().next().unwrap_or("") {
            "USER" => b"331 pw\r\n",
            "PASS" => b"230 in\r\n",
            "PWD" => b"257 \"/\"\r\n",
            "STAT" => &big,
            "SIZE" => {
                // Endless 1xx: stop when ftpgate hangs up or after the deadline.
                while Instant::now() < deadline {
                    if writer.write_all(b"150 still thinking\r\n").is_err() {
                        return;
                    }
                    written.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
            _ => b"200 ok\r\n",
        };
        if writer.write_all(reply).is_err() {
            return;
        }
        written.fetch_add(1, Ordering::SeqCst);
    }
}

fn gate_with_flooder(backend: SocketAddr, vs: &Vsftpd) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .backend("flood", backend)
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("mallory", "full", "flood")
        // The fake serves sessions only (no FEAT probe connections).
        .set(&["backends", "flood", "feature_probe"], json!(false))
        .start()
}

#[test]
fn a_backend_streaming_preliminary_replies_is_cut_off_with_421() {
    let vs = Vsftpd::start();
    let (backend, written) = flooding_backend();
    let mut gate = gate_with_flooder(backend, &vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("mallory", "x");
    c.send(b"SIZE x\r\n");
    let mut codes = Vec::new();
    loop {
        let (code, _) = c.read_reply();
        codes.push(code);
        if code >= 200 || codes.len() > 100 {
            break;
        }
    }
    assert_eq!(codes.last(), Some(&421), "{codes:?}");
    assert!(
        codes.len() <= 18,
        "{} replies reached the client",
        codes.len()
    );
    let events = gate.wait_audit(Duration::from_secs(10), |events| {
        events
            .iter()
            .any(|e| e["event"] == "session_end" && e["reason"] == "backend_protocol_error")
    });
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "policy_violation" && e["kind"] == "backend_protocol")
    );
    assert!(written.load(Ordering::SeqCst) > 0);
    gate.assert_healthy();
}

#[test]
fn replies_for_a_client_that_does_not_read_stay_out_of_the_gateway() {
    let vs = Vsftpd::start();
    let (backend, written) = flooding_backend();
    let mut gate = gate_with_flooder(backend, &vs);
    let pid = gate.pid().expect("pid");
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("mallory", "x");
    let before = rss_kib(pid);
    // 2,000 pipelined STATs, each answered with 60 KiB (120 MB in all), never read.
    let stat = b"STAT\r\n".repeat(2000);
    let mut stream = c.try_clone_stream();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = stream.write_all(&stat);
    // Wait until the backend can write no more (its socket toward ftpgate is full).
    let mut last = 0;
    let mut stable_since = Instant::now();
    let settled = wait_until(Duration::from_secs(20), || {
        let now = written.load(Ordering::SeqCst);
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        stable_since.elapsed() > Duration::from_millis(500)
    });
    assert!(settled);
    let figures = stats(&gate);
    let after = rss_kib(pid);
    let replies = written.load(Ordering::SeqCst);
    assert!(
        replies < 200,
        "the backend got {replies} STATs out: ftpgate kept reading"
    );
    // The client output is bounded (64 KiB plus the reply in hand), whatever is queued.
    let buffered = figures["session_buffers"];
    assert!(
        buffered < 512 * 1024,
        "sessions hold {buffered} bytes: {figures:?}"
    );
    assert!(
        after < before + 16 * 1024,
        "the worker grew from {before} KiB to {after} KiB"
    );
    drop(stream);
    drop(c);
    gate.assert_healthy();
}

#[test]
fn stat_with_a_path_is_a_listing_the_role_must_allow() {
    let vs = Vsftpd::start();
    vs.put_file("pub/secret-name.txt", b"x");
    let mut gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .role("status", &["STAT", "RETR", "CWD", "PWD"])
        .user("anonymous", "status", "vsftpd")
        .user("ftp", "full", "vsftpd")
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let mark = vs.log_mark();
    let (code, text) = c.cmd("STAT /pub");
    assert_eq!(code, 550, "{text}");
    assert!(!text.contains("secret-name"), "{text}");
    let (code, text) = c.cmd("SITE EXEC /bin/sh");
    assert_eq!(code, 502, "{text}");
    let (code, _) = c.cmd("STAT");
    assert_eq!(code, 211, "STAT alone is the session's status");
    let log = vs.log_since(mark);
    let commands = Vsftpd::commands(&log);
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("STAT /") || c.starts_with("SITE")),
        "the backend saw {commands:?}"
    );
    let events = gate.wait_audit(Duration::from_secs(5), |events| {
        events
            .iter()
            .any(|e| e["event"] == "command" && e["verb"] == "STAT" && e["reply"] == 550)
    });
    let stat = events
        .iter()
        .find(|e| e["event"] == "command" && e["verb"] == "STAT" && e["reply"] == 550)
        .expect("STAT event");
    assert_eq!(stat["path"], "/pub");
    assert_eq!(stat["decision"], "deny");
    assert_serves(&mut gate, ("ftp", "x"));
}

#[test]
fn a_pasv_that_finds_no_port_is_audited_with_its_425() {
    let vs = Vsftpd::start();
    let (first, _) = port_range(1);
    let mut gate = vsftpd_gate(&vs)
        .set(&["passive", "ports"], json!(format!("{first}-{first}")))
        .start();
    let mut a = Ftp::connect(gate.addr());
    a.login_ok("anonymous", "x");
    assert_eq!(a.cmd("PASV").0, 227, "the only port");
    let mut b = Ftp::connect(gate.addr());
    b.login_ok("anonymous", "x");
    assert_eq!(b.cmd("PASV").0, 425);
    let events = gate.wait_audit(Duration::from_secs(5), |events| {
        events
            .iter()
            .any(|e| e["event"] == "command" && e["verb"] == "PASV" && e["reply"] == 425)
    });
    let pasv: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "command" && e["verb"] == "PASV")
        .map(|e| e["reply"].clone())
        .collect();
    assert_eq!(pasv, vec![json!(227), json!(425)]);
    drop(a);
    drop(b);
    gate.assert_healthy();
}

/// Seconds from PASS to the 530 for `user`.
fn failed_login_time(gate: &Ftpgate, user: &str) -> Duration {
    let mut c = Ftp::connect(gate.addr());
    let (code, _) = c.cmd(&format!("USER {user}"));
    assert_eq!(code, 331);
    let t = Instant::now();
    let (code, _) = c.cmd("PASS wrong-password");
    assert_eq!(code, 530);
    t.elapsed()
}

#[test]
fn known_and_unknown_names_fail_at_the_same_moment() {
    // pyftpdlib answers a wrong password after its own delay (3 s by default); a backend
    // delay up to the policy's must not show.
    let py = Pyftpdlib::start();
    let gate = Ftpgate::builder()
        .backend("pyftpd", py.addr())
        .standard_roles()
        .user("bob", "read-only", "pyftpd")
        .set(
            &["defaults", "limits", "failed_login_delay_ms"],
            json!(3500),
        )
        .set(&["users", "bob", "timeouts"], json!({ "login": 60 }))
        .start();
    let known = failed_login_time(&gate, "bob");
    let unknown = failed_login_time(&gate, "nobody-here");
    for t in [known, unknown] {
        assert!(t >= Duration::from_millis(3500), "{t:?}");
    }
    let gap = known.abs_diff(unknown);
    assert!(
        gap < Duration::from_millis(300),
        "known {known:?} vs unknown {unknown:?}"
    );
}

#[test]
fn a_thiefs_fresh_tls_handshake_gets_no_byte_and_the_backend_no_command() {
    let vs = Vsftpd::start();
    let data = random_bytes(4 * 1024 * 1024, 9);
    vs.put_file("pub/big.bin", &data);
    let mut gate = vsftpd_gate(&vs).ftps().start();
    let mark = vs.log_mark();
    // The client and the thief share the client's address. The thief connects to the
    // passive port first and does a fresh (not resumed) TLS handshake; then it reads.
    let script = r#"
import ftplib, socket, ssl, sys, threading
host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx, timeout=20)
f.connect(host, port)
f.auth()
f.login("anonymous", "x")
f.prot_p()
h, p = ftplib.parse227(f.sendcmd("PASV"))
thief = socket.create_connection((h, p), timeout=20)
f.putcmd("RETR /pub/big.bin")
stolen = 0
try:
    t = ctx.wrap_socket(thief)
    while True:
        chunk = t.recv(65536)
        if not chunk:
            break
        stolen += len(chunk)
except (ssl.SSLError, OSError):
    pass
replies = []
while True:
    line = f.getline()
    replies.append(line[:3])
    if line[:3] != "150":
        break
print("stolen", stolen)
print("replies", " ".join(replies))
"#;
    let out = run(
        Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(gate.addr().ip().to_string())
            .arg(gate.addr().port().to_string()),
        CLIENT_TIMEOUT,
    );
    out.assert_success("thief script");
    let stdout = out.stdout_str();
    assert!(stdout.contains("stolen 0\n"), "{stdout}");
    assert!(
        stdout.contains("replies 150 425") || stdout.contains("replies 425"),
        "{stdout}"
    );
    let commands = Vsftpd::commands(&vs.log_since(mark));
    assert!(
        !commands.iter().any(|c| c.starts_with("RETR")),
        "the backend saw {commands:?}"
    );
    let events = gate.wait_audit(Duration::from_secs(5), |events| {
        events
            .iter()
            .any(|e| e["event"] == "policy_violation" && e["kind"] == "tls_session_reuse")
    });
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "transfer" && e["result"] == "ok")
    );
    gate.assert_healthy();
}

#[test]
fn an_intruder_hammering_a_passive_port_is_counted_not_logged_line_by_line() {
    let vs = Vsftpd::start();
    let data = random_bytes(100_000, 3);
    vs.put_file("pub/f.bin", &data);
    let mut gate = Ftpgate::for_vsftpd(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let (code, text) = c.cmd("PASV");
    assert_eq!(code, 227, "{text}");
    let addr: SocketAddr = parse_227(&text).expect("227 address");
    const ATTEMPTS: u32 = 30;
    for _ in 0..ATTEMPTS {
        let thief = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        thief
            .bind(&SocketAddr::from(([127, 0, 0, 3], 0)).into())
            .expect("bind 127.0.0.3");
        thief.connect(&addr.into()).expect("TCP handshake");
        let mut thief: TcpStream = thief.into();
        thief.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let mut buf = [0u8; 16];
        // ftpgate closes it without a byte; waiting for that keeps the count exact.
        let stolen = thief.read(&mut buf);
        assert!(matches!(stolen, Ok(0)) || stolen.is_err(), "{stolen:?}");
    }
    // The client's own data connection still works.
    let mut data_conn = TcpStream::connect(addr).expect("data connection");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.cmd("RETR /pub/f.bin").0, 150);
    let mut got = Vec::new();
    data_conn.read_to_end(&mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(sha256_bytes(&got), sha256_bytes(&data));
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(Duration::from_secs(10), |events| {
        events.iter().any(|e| e["event"] == "session_end")
    });
    let logged = events
        .iter()
        .filter(|e| e["event"] == "policy_violation" && e["kind"] == "port_theft")
        .count();
    assert_eq!(logged, 8, "recorded one by one up to the bound");
    let end = events
        .iter()
        .find(|e| e["event"] == "session_end")
        .expect("session_end");
    assert_eq!(end["port_theft_attempts"], json!(ATTEMPTS));
    gate.assert_healthy();
}

/// Uploads `data` over FTPS with a data connection that resumes the control session, and
/// ends it with close_notify (`clean`) or with a bare TCP close (a truncation).
fn ftps_upload(gate: &Ftpgate, name: &str, data: &[u8], clean: bool) -> String {
    let dir = temp_dir();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, data).expect("write data");
    let script = r#"
import ftplib, socket, ssl, sys
host, port, path, name, clean = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx, timeout=20)
f.connect(host, port)
f.auth()
f.login("anonymous", "x")
f.prot_p()
f.voidcmd("TYPE I")
raw, _ = ftplib.FTP.ntransfercmd(f, "STOR " + name)
conn = ctx.wrap_socket(raw, server_hostname=host, session=f.sock.session)
conn.sendall(open(path, "rb").read())
if clean:
    conn.unwrap().close()
else:
    # No close_notify: SSLSocket.shutdown drops TLS and sends a bare TCP FIN.
    conn.shutdown(socket.SHUT_WR)
print(f.voidresp())
conn.close()
"#;
    let out = run(
        Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(gate.addr().ip().to_string())
            .arg(gate.addr().port().to_string())
            .arg(&file)
            .arg(name)
            .arg(if clean { "1" } else { "0" }),
        CLIENT_TIMEOUT,
    );
    out.assert_success("ftps upload");
    out.stdout_str()
}

#[test]
fn the_transfer_event_says_whether_a_tls_upload_ended_cleanly_or_was_truncated() {
    let vs = Vsftpd::start();
    let mut gate = vsftpd_gate(&vs).ftps().start();
    let data = random_bytes(300_000, 5);
    assert!(ftps_upload(&gate, "/pub/clean.bin", &data, true).starts_with("226"));
    assert!(ftps_upload(&gate, "/pub/cut.bin", &data, false).starts_with("226"));
    let events = gate.wait_audit(Duration::from_secs(10), |events| {
        events
            .iter()
            .filter(|e| e["event"] == "transfer" && e["direction"] == "upload")
            .count()
            == 2
    });
    let ends: Vec<(String, String, u64)> = events
        .iter()
        .filter(|e| e["event"] == "transfer" && e["direction"] == "upload")
        .map(|e| {
            (
                e["path"].as_str().unwrap_or("").to_string(),
                e["tls_end"].as_str().unwrap_or("none").to_string(),
                e["bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        ends,
        vec![
            ("/pub/clean.bin".to_string(), "clean".to_string(), 300_000),
            ("/pub/cut.bin".to_string(), "truncated".to_string(), 300_000),
        ]
    );
    assert_eq!(
        sha256_file(&vs.root().join("pub/clean.bin")),
        sha256_bytes(&data)
    );
    gate.assert_healthy();
}

#[test]
fn a_client_that_hangs_up_mid_transfer_still_leaves_a_transfer_record() {
    let vs = Vsftpd::start();
    let data = random_bytes(4 * 1024 * 1024, 11);
    vs.put_file("pub/slow.bin", &data);
    let mut gate = vsftpd_gate(&vs)
        .set(&["users", "anonymous", "limits", "rate"], json!("1MiB/s"))
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut data_conn = c.pasv_connect();
    assert_eq!(c.cmd("RETR /pub/slow.bin").0, 150);
    let mut first = vec![0u8; 64 * 1024];
    data_conn.read_exact(&mut first).expect("the first bytes");
    // Hang up the control connection while the relay runs.
    drop(c);
    let events = gate.wait_audit(Duration::from_secs(20), |events| {
        events.iter().any(|e| e["event"] == "session_end")
    });
    let transfer = events
        .iter()
        .find(|e| e["event"] == "transfer")
        .expect("a transfer record for the cut download");
    assert_eq!(transfer["result"], "client_gone");
    let bytes = transfer["bytes"].as_u64().unwrap_or(0);
    assert!(
        bytes >= first.len() as u64 && bytes < data.len() as u64,
        "{transfer}"
    );
    assert!(transfer["sha256"].is_string(), "{transfer}");
    drop(data_conn);
    gate.assert_healthy();
}
