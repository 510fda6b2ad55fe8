//! `ftpgate metrics`: the Prometheus text format, checked by Prometheus's own `promtool
//! check metrics` and parsed by the `prometheus_client` Python package; the values agree with
//! what the sessions did (and with the audit trail they are counted from), added up over
//! the workers.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn metrics_text(gate: &Ftpgate) -> String {
    gate.metrics_text()
}

/// Runs `program args` with `text` on its standard input.
fn fed(program: &str, args: &[&str], text: &str) -> std::process::Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (tests/run.sh installs it)"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

/// `promtool check metrics` on the text (Debian package prometheus): exit 0 and no lint
/// finding.
fn promtool_check(text: &str) {
    let out = fed("promtool", &["check", "metrics"], text);
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every sample as the Python client library's parser reads it: "name{k=v,...}" -> value,
/// labels sorted by name.
fn parsed(text: &str) -> HashMap<String, f64> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}}\t{s.value!r}")
"#;
    let out = fed("/usr/bin/python3", &["-c", script], text);
    assert!(
        out.status.success(),
        "prometheus_client refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn metrics_pass_promtool_and_count_what_the_sessions_did() {
    let vs = Vsftpd::start();
    let file = random_bytes(300_000, 7);
    vs.put_file("pub/m.bin", &file);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .workers(2)
        .start();
    let dir = gate.admin_dir();
    assert!(wait_until(Duration::from_secs(10), || {
        dir.join("worker-0.sock").exists() && dir.join("worker-1.sock").exists()
    }));
    // Two downloads, one refused command, one live session left open.
    for _ in 0..2 {
        let mut c = Ftp::connect(gate.addr());
        c.login_ok("ftp", "x");
        assert_eq!(c.cmd("TYPE I").0, 200);
        assert_eq!(c.retr("/pub/m.bin"), file);
        assert_eq!(c.cmd("DELE /pub/m.bin").0, 550);
        assert_eq!(c.cmd("QUIT").0, 221);
    }
    let mut live = Ftp::connect(gate.addr());
    live.login_ok("anonymous", "x");
    // The audit trail has both transfer events before the numbers are read.
    gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter().filter(|e| e["event"] == "session_end").count() >= 2
    });
    let text = metrics_text(&gate);
    promtool_check(&text);
    let m = parsed(&text);
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in\n{text}"))
    };
    assert_eq!(
        get("ftpgate_transfers_total{direction=download,result=ok}"),
        2.0
    );
    assert_eq!(
        get("ftpgate_transfer_bytes_total{direction=download}"),
        2.0 * file.len() as f64
    );
    assert_eq!(
        get("ftpgate_transfer_duration_seconds_count{direction=download}"),
        2.0
    );
    assert_eq!(get("ftpgate_commands_total{decision=deny}"), 2.0);
    assert_eq!(get("ftpgate_sessions{backend=vsftpd,user=anonymous}"), 1.0);
    assert_eq!(get("ftpgate_sessions_started_total{}"), 3.0);
    assert_eq!(get("ftpgate_sessions_ended_total{reason=quit}"), 2.0);
    assert_eq!(get("ftpgate_logins_total{backend=vsftpd,result=ok}"), 3.0);
    assert_eq!(get("ftpgate_passive_ports_in_use{}"), 0.0);
    assert_eq!(get("ftpgate_passive_ports{}"), 20.0);
    assert_eq!(get("ftpgate_draining{}"), 0.0);
    // The numbers are the audit trail's.
    let events = gate.audit_events();
    let transfers = events.iter().filter(|e| e["event"] == "transfer").count();
    assert_eq!(
        transfers as f64,
        get("ftpgate_transfers_total{direction=download,result=ok}")
    );
    // Every recorded command's time, from its arrival to its final reply.
    let commands = events.iter().filter(|e| e["event"] == "command").count();
    assert!(commands >= 6, "{commands}");
    assert_eq!(
        get("ftpgate_command_duration_seconds_count{}"),
        commands as f64
    );
    assert!(get("ftpgate_command_duration_seconds_sum{}") > 0.0);
    assert_eq!(
        get("ftpgate_command_duration_seconds_bucket{le=+Inf}"),
        commands as f64
    );
    assert_eq!(live.cmd("QUIT").0, 221);
}

#[test]
fn a_user_name_a_client_chose_never_becomes_a_label() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    let dir = gate.admin_dir();
    assert!(wait_until(Duration::from_secs(10), || dir
        .join("worker-0.sock")
        .exists()));
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER attacker\"{label}").0, 331);
    assert_eq!(c.cmd("PASS x").0, 530);
    let text = metrics_text(&gate);
    promtool_check(&text);
    assert!(!text.contains("attacker"), "{text}");
    let m = parsed(&text);
    assert_eq!(
        m.get("ftpgate_sessions{backend=,user=}"),
        Some(&1.0),
        "{text}"
    );
}

fn http_get(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_metrics_port_answers_a_scrape_with_every_workers_numbers() {
    let vs = Vsftpd::start();
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .workers(2)
        .set(
            &["metrics", "listen"],
            serde_json::json!(listen.to_string()),
        )
        .start();
    let dir = gate.admin_dir();
    assert!(wait_until(Duration::from_secs(10), || {
        dir.join("worker-0.sock").exists() && dir.join("worker-1.sock").exists()
    }));
    let mut clients: Vec<Ftp> = (0..6).map(|_| Ftp::connect(gate.addr())).collect();
    for c in &mut clients {
        c.login_ok("anonymous", "x");
    }
    // curl, as a scraper would fetch it.
    let out = curl(&["-sS", "-i", &format!("http://{listen}/metrics")]);
    assert!(out.status.success(), "{out:?}");
    let response = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    promtool_check(body);
    let m = parsed(body);
    // Six sessions over two workers: the answer adds up both.
    assert_eq!(
        m.get("ftpgate_sessions{backend=vsftpd,user=anonymous}"),
        Some(&6.0),
        "{body}"
    );
    assert_eq!(m.get("ftpgate_metrics_workers_missing{}"), Some(&0.0));
    assert_eq!(m.get("ftpgate_passive_ports{}"), Some(&20.0));
    // Other paths and methods get their status; the port still answers after them.
    assert!(
        http_get(listen, b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404")
    );
    assert!(
        http_get(listen, b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 405")
    );
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(
        b'a',
        ftpgate::limits::MAX_METRICS_REQUEST_BYTES + 10,
    ));
    assert!(http_get(listen, &huge).starts_with("HTTP/1.1 431"));
    let again = http_get(listen, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(again.starts_with("HTTP/1.1 200 OK"), "{again}");
    for c in &mut clients {
        assert_eq!(c.cmd("NOOP").0, 200);
    }
}

/// A scraper that connects and sends nothing holds the port for at most
/// METRICS_GATHER_TIMEOUT_MS; meanwhile another connection gets 503 at once, and the
/// sessions are not touched.
#[test]
fn a_silent_scrape_is_dropped_at_its_deadline() {
    use std::io::Read;
    use std::time::Instant;
    let vs = Vsftpd::start();
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(
            &["metrics", "listen"],
            serde_json::json!(listen.to_string()),
        )
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let started = Instant::now();
    let mut silent = std::net::TcpStream::connect(listen).expect("connect");
    // Let the worker take it as the scrape in progress before the second one comes.
    assert!(wait_until(Duration::from_secs(5), || {
        http_get(listen, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 503")
    }));
    assert_eq!(c.cmd("NOOP").0, 200);
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut b = [0u8; 1];
    assert_eq!(silent.read(&mut b).expect("closed"), 0);
    let held = started.elapsed();
    let bound = Duration::from_millis(ftpgate::limits::METRICS_GATHER_TIMEOUT_MS);
    assert!(held < bound + Duration::from_secs(2), "held {held:?}");
    let ok = http_get(listen, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
}

/// Events a sink could not write are counted in `ftpgate_audit_lost_events_total`.
#[test]
fn events_a_sink_lost_are_counted() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(
            &["audit", "syslog"],
            serde_json::json!({ "socket": "/nonexistent/ftpgate-test.sock" }),
        )
        .set(&["audit", "on_failure"], serde_json::json!("continue"))
        .start();
    let dir = gate.admin_dir();
    assert!(wait_until(Duration::from_secs(10), || dir
        .join("worker-0.sock")
        .exists()));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("QUIT").0, 221);
    gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e["event"] == "session_end")
    });
    let text = metrics_text(&gate);
    promtool_check(&text);
    let lost = parsed(&text)
        .get("ftpgate_audit_lost_events_total{}")
        .copied()
        .unwrap_or(0.0);
    // session_start, USER, login, QUIT, session_end at least, each lost to syslog.
    assert!(lost >= 5.0, "{lost}\n{text}");
}

/// TLS handshakes and their failures, by channel and side: a curl download over explicit
/// FTPS (control and data handshakes); bytes that are not TLS after `AUTH TLS`; a protected
/// data connection whose client sends text instead of a ClientHello (the session goes on);
/// and a TCP check of the implicit FTPS port, which starts no handshake and is no failure.
#[test]
fn tls_handshakes_and_their_failures_are_counted() {
    let vs = Vsftpd::start();
    vs.put_file("pub/t.bin", b"tls bytes\n");
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .ftps()
        .start();
    let addr = gate.addr();
    let url = format!("ftp://ftp:x@{}:{}/pub/t.bin", addr.ip(), addr.port());
    let out = curl(&["-k", "--ssl-reqd", &url]);
    out.assert_success("curl over FTPS");
    assert_eq!(out.stdout, b"tls bytes\n");

    let mut c = Ftp::connect(addr);
    assert_eq!(c.cmd("AUTH TLS").0, 234);
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    c.read_to_eof(Duration::from_secs(10));

    let script = format!(
        "{PY_FTPS_REUSING}{}",
        r#"
import socket, sys
f = ftplib.FTP_TLS(context=ctx)
f.connect(sys.argv[1], int(sys.argv[2]), timeout=10)
f.login("ftp", "x")
f.prot_p()
host, port = ftplib.parse227(f.sendcmd("PASV"))
s = socket.create_connection((host, port), timeout=10)
s.sendall(b"this is no ClientHello\r\n" * 4)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
print(f.sendcmd("NOOP"))
print(f.quit())
"#
    );
    let out = python(&script, &[&addr.ip().to_string(), &addr.port().to_string()]);
    out.assert_success("python FTP_TLS");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("200"), "{stdout}");

    let probe = std::net::TcpStream::connect(gate.implicit_addr()).expect("TCP check");
    drop(probe);

    gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().filter(|e| e["event"] == "session_end").count() >= 4
    });
    let text = metrics_text(&gate);
    promtool_check(&text);
    let m = parsed(&text);
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    assert_eq!(
        get("ftpgate_tls_handshake_failures_total{channel=control,side=client}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        get("ftpgate_tls_handshake_failures_total{channel=data,side=client}"),
        1.0,
        "{text}"
    );
    let failures: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("ftpgate_tls_handshake_failures_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(failures, 2.0, "the TCP check is no failure\n{text}");
    // curl's control connection and Python's; curl's data connection resumed.
    assert_eq!(
        get("ftpgate_tls_handshakes_total{channel=control,resumed=false,side=client}"),
        2.0,
        "{text}"
    );
    assert!(
        get("ftpgate_tls_handshakes_total{channel=data,resumed=true,side=client}") >= 1.0,
        "{text}"
    );
}
