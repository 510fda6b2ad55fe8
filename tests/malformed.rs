//! Malformed input from the client and a misbehaving backend: ftpgate answers with the right
//! error, keeps the session (or closes only that one, with 421), and keeps serving others.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use common::*;

const BAD_ADDRESSES: &[&str] = &[
    "PORT 1,2,3",
    "PORT 999,0,0,1,4,1",
    "EPRT |1|999.0.0.1|5000|",
    "EPRT |1|127.0.0.1|0|",
    "EPRT garbage",
];

/// A backend that greets 220, answers USER 331 and PASS 230 (anything else before login: 530),
/// then closes the control connection on the first command after login. Serves one
/// connection; the handle returns the lines it received.
fn closing_backend() -> (SocketAddr, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind fake backend");
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let mut received = Vec::new();
        let stream = accept_within(&listener, Duration::from_secs(30));
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let _ = writer.write_all(b"220 fake backend ready\r\n");
        let mut logged_in = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = line.trim_end().to_string();
            received.push(line.clone());
            if logged_in {
                break; // close mid-session, without a reply
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "USER" => b"331 password please\r\n",
                "PASS" => {
                    logged_in = true;
                    b"230 logged in\r\n"
                }
                _ => b"530 login first\r\n",
            };
            let _ = writer.write_all(reply);
        }
        received
    });
    (addr, handle)
}

fn gate_with_fake(vs: &Vsftpd, fake: SocketAddr) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .backend("fake", fake)
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .user("mallory", "full", "fake")
        // The fake serves one connection: no FEAT probe may take it.
        .set(
            &["backends", "fake", "feature_probe"],
            serde_json::Value::Bool(false),
        )
        .start()
}

fn over_long_lines(gate: &Ftpgate) {
    // Before login.
    let mut c = Ftp::connect(gate.addr());
    let mut line = vec![b'A'; 5000];
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    let (code, text) = c.read_reply();
    assert_eq!(code, 500, "over-long line before login: {text}");
    assert_eq!(c.cmd("NOOP").0, 200, "session continues after the 500");
    c.login_ok("anonymous", "x");

    // After login: a long argument on a real verb, and a line far beyond any buffer.
    let mut line = b"RETR /pub/".to_vec();
    line.extend(std::iter::repeat_n(b'x', 5000));
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    assert_eq!(c.read_reply().0, 500, "over-long RETR");
    assert_eq!(c.cmd("NOOP").0, 200);
    let mut line = vec![b'B'; 100_000];
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    assert_eq!(c.read_reply().0, 500, "100 KB line");
    let (code, text) = c.cmd("NOOP");
    assert_eq!(code, 200, "exactly one 500 per over-long line: {text}");
    assert_eq!(c.cmd("PWD").0, 257);
    assert_eq!(c.cmd("QUIT").0, 221);
}

fn bad_port_and_eprt(gate: &Ftpgate) {
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    for line in BAD_ADDRESSES {
        let (code, text) = c.cmd(line);
        assert_eq!(code, 501, "{line}: {text}");
    }
    // The session still transfers.
    let (code, _) = c.list("LIST /pub");
    assert_eq!(code, 226);
    assert_eq!(c.cmd("QUIT").0, 221);
}

fn backend_closes_mid_session(gate: &Ftpgate, fake: thread::JoinHandle<Vec<String>>) {
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("mallory", "pw");
    // The backend closes on the first command it gets after login (ftpgate may send one of
    // its own first, in which case the 421 may already be waiting).
    let _ = c.try_send(b"PWD\r\n");
    let (code, text) = c.read_reply();
    assert_eq!(code, 421, "backend closed mid-session: {text}");
    c.read_to_eof(Duration::from_secs(10));
    let received = fake.join().expect("fake backend thread");
    assert!(
        received.iter().any(|l| l.starts_with("USER mallory")),
        "the fake backend saw {received:?}"
    );
}

#[test]
fn over_long_line_is_500_and_the_session_continues() {
    let vs = Vsftpd::start();
    let mut gate = Ftpgate::for_vsftpd(&vs);
    over_long_lines(&gate);
    gate.assert_healthy();
}

#[test]
fn bad_port_and_eprt_arguments_are_501() {
    let vs = Vsftpd::start();
    let mut gate = Ftpgate::for_vsftpd(&vs);
    bad_port_and_eprt(&gate);
    gate.assert_healthy();
}

#[test]
fn backend_closing_mid_session_gives_421() {
    let vs = Vsftpd::start();
    let (fake_addr, fake) = closing_backend();
    let mut gate = gate_with_fake(&vs, fake_addr);
    backend_closes_mid_session(&gate, fake);
    gate.assert_healthy();
}

#[test]
fn all_of_it_on_one_gate_then_a_normal_session() {
    let vs = Vsftpd::start();
    vs.put_file("pub/after.bin", &random_bytes(500_000, 1));
    let (fake_addr, fake) = closing_backend();
    let mut gate = gate_with_fake(&vs, fake_addr);
    over_long_lines(&gate);
    bad_port_and_eprt(&gate);
    backend_closes_mid_session(&gate, fake);
    gate.assert_healthy();
    // A real client, a real transfer.
    let out = curl(&["-u", "anonymous:x", &ftp_url(gate.addr(), "/pub/after.bin")]);
    out.assert_success("curl download after the abuse");
    assert_eq!(
        sha256_bytes(&out.stdout),
        sha256_bytes(&random_bytes(500_000, 1))
    );
    assert!(gate.is_running(), "ftpgate died: {}", gate.stderr_log());
}

/// A line with control bytes is recorded with its raw bytes (hex, bounded) and a
/// `malformed_command` violation, not as an empty command.
#[test]
fn a_line_with_control_bytes_is_audited_with_its_raw_bytes() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    // (0xFF would begin a Telnet command, which the line filter takes out first.)
    c.send(b"RETR \xe9name\x01bad\r\n");
    assert_eq!(c.read_reply().0, 501);
    let mut long = b"STOR ".to_vec();
    long.extend(std::iter::repeat_n(b'\x02', 400));
    long.extend(b"\r\n");
    c.send(&long);
    assert_eq!(c.read_reply().0, 501);
    assert_eq!(c.cmd("NOOP").0, 200);
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter()
            .filter(|e| e["event"] == "policy_violation" && e["kind"] == "malformed_command")
            .count()
            >= 2
    });
    let commands: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "command" && e.get("line_hex").is_some())
        .collect();
    assert_eq!(commands.len(), 2, "{events:?}");
    assert_eq!(commands[0]["line_hex"], "5245545220e96e616d6501626164");
    assert_eq!(commands[0]["line_bytes"], 14);
    // The long one is kept to its first 256 bytes, its length said in full.
    assert_eq!(
        commands[1]["line_hex"].as_str().map(str::len),
        Some(2 * 256)
    );
    assert_eq!(commands[1]["line_bytes"], 405);
}
