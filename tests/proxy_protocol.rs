//! ftpgate behind Debian's HAProxy with the PROXY protocol (`send-proxy`, `send-proxy-v2`),
//! configured from packaging/examples/haproxy.cfg with loopback addresses: the client's real
//! address (127.0.0.2, 127.0.0.3, ... as sources) drives the audit, the access rules and the
//! per-user limits across two workers; data connections (passive and active) carry files
//! whose SHA-256 is checked on the backend's disk; a header from an untrusted address, a
//! malformed one, a LOCAL one and a flood of them are refused, recorded within a bound and
//! hold no file descriptor.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const HAPROXY: &str = "/usr/sbin/haproxy";
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/examples/haproxy.cfg"
);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// HAProxy in the foreground on the example's sections from `defaults` on, with the
/// example's addresses replaced: the virtual address by `front`, gate1 by `gate`, gate2
/// left out; the passive sections kept only when `passive` is given (the gate's range,
/// forwarded on `front`'s address).
struct Haproxy {
    _proc: ProcessGuard,
    _dir: tempfile::TempDir,
}

fn haproxy(front: SocketAddr, gate: SocketAddr, v1: bool, passive: Option<(u16, u16)>) -> Haproxy {
    let example = fs::read_to_string(EXAMPLE).expect("packaging/examples/haproxy.cfg");
    let start = example.find("\ndefaults").expect("a defaults section");
    let mut config = String::from("global\n    maxconn 4000\n");
    let mut skip = false;
    for line in example[start..].lines() {
        // The second host and, unless asked for, the passive sections go.
        if line.starts_with("frontend ftp_passive") || line.starts_with("backend ftpgate_passive") {
            skip = passive.is_none();
        } else if line.starts_with("frontend ") || line.starts_with("backend ") {
            skip = false;
        }
        if skip || line.contains("10.0.0.22") {
            continue;
        }
        let mut line = line
            .replace("203.0.113.10:21", &front.to_string())
            .replace("10.0.0.21:2121", &gate.to_string())
            .replace("port 2121", &format!("port {}", gate.port()))
            .replace("10.0.0.21", &gate.ip().to_string());
        if let Some((first, last)) = passive {
            line = line.replace(
                "203.0.113.10:50000-50999",
                &format!("{}:{first}-{last}", front.ip()),
            );
        }
        if v1 {
            line = line.replace("send-proxy-v2", "send-proxy");
        }
        config.push_str(&line);
        config.push('\n');
    }
    assert!(
        !config.contains("203.0.113") && !config.contains("10.0.0."),
        "every example address replaced:\n{config}"
    );
    let dir = temp_dir();
    let path = dir.path().join("haproxy.cfg");
    fs::write(&path, &config).expect("write haproxy.cfg");
    let check = run(
        Command::new(HAPROXY).arg("-c").arg("-f").arg(&path),
        CLIENT_TIMEOUT,
    );
    check.assert_success("haproxy -c on the example");
    let proc = ProcessGuard::spawn(
        "haproxy",
        Command::new(HAPROXY)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("haproxy.stderr")).expect("stderr")),
    );
    assert!(
        wait_until(START_TIMEOUT, || is_listening(front)),
        "haproxy listens on {front}"
    );
    Haproxy {
        _proc: proc,
        _dir: dir,
    }
}

/// ftpgate with two workers, its listener taking PROXY headers from 127.0.0.1 (HAProxy's
/// source), `ftp` limited to one session, 127.0.0.3 denied.
fn gate(vs: &Vsftpd, extra: impl FnOnce(FtpgateBuilder) -> FtpgateBuilder) -> Ftpgate {
    let builder = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .workers(2)
        .listener("proxy_protocol", json!(true))
        .listener("proxy_from", json!(["127.0.0.1/32"]))
        .set(&["users", "ftp", "limits", "sessions"], json!(1))
        .set(&["access", "deny_from"], json!(["127.0.0.3/32"]));
    extra(builder).start()
}

fn front() -> SocketAddr {
    SocketAddr::new(ip(1), free_port())
}

fn curl(source: IpAddr, args: &[&str]) -> Output {
    run(
        Command::new("curl")
            .args(["-sS", "--max-time", "60", "--interface"])
            .arg(source.to_string())
            .args(args),
        CLIENT_TIMEOUT,
    )
}

fn starts_from(gate: &Ftpgate, source: IpAddr) -> Vec<Value> {
    gate.audit_events()
        .into_iter()
        .filter(|e| {
            e["event"] == "session_start"
                && e["client"]
                    .as_str()
                    .and_then(|c| c.parse::<SocketAddr>().ok())
                    .is_some_and(|c| c.ip() == source)
        })
        .collect()
}

fn proxy_refusals(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event"] == "policy_violation" && e["kind"] == "proxy_protocol")
        .collect()
}

/// Passive download and active upload through HAProxy from 127.0.0.2; the audit names the
/// real address and HAProxy as `via`.
fn transfers_carry_the_real_address(v1: bool) {
    let vs = Vsftpd::start();
    let gate = gate(&vs, |b| b);
    let front = front();
    let _haproxy = haproxy(front, gate.addr(), v1, None);
    let client = ip(2);

    let data = random_bytes(BIG, 11);
    vs.put_file("pub/down.bin", &data);
    let dir = temp_dir();
    let got = dir.path().join("down.bin");
    // curl tries EPSV first: behind the balancer ftpgate refuses it (a 229 would send the
    // client to HAProxy's address; see ftpgate(8)) and curl falls back to PASV, whose 227
    // names ftpgate's passive address, which the client reaches directly.
    curl(
        client,
        &[
            "-o",
            got.to_str().expect("path"),
            &ftp_url(front, "/pub/down.bin"),
        ],
    )
    .assert_success("passive download through haproxy");
    assert_eq!(sha256_file(&got), sha256_bytes(&data));

    let up = dir.path().join("up.bin");
    let sent = write_random_file(&up, BIG, 12);
    curl(
        client,
        &[
            "-P",
            &client.to_string(),
            "-T",
            up.to_str().expect("path"),
            &ftp_url(front, "/pub/up.bin"),
        ],
    )
    .assert_success("active upload through haproxy (PORT names the real address)");
    assert_eq!(sha256_file(&vs.pub_dir().join("up.bin")), sent);

    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter()
            .filter(|e| e["event"] == "transfer" && e["result"] == "ok")
            .count()
            >= 2
    });
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "command" && e["verb"] == "EPSV" && e["reply"] == 502),
        "EPSV refused, then PASV: {events:?}"
    );
    let starts = starts_from(&gate, client);
    assert!(starts.len() >= 2, "two sessions from 127.0.0.2: {events:?}");
    for start in &starts {
        let via: SocketAddr = start["via"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("via in {start}"));
        assert_eq!(via.ip(), ip(1), "HAProxy's address");
    }
    let transfers: Vec<&Value> = events.iter().filter(|e| e["event"] == "transfer").collect();
    assert!(
        transfers.iter().all(|t| t["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.2:"))),
        "{transfers:?}"
    );
    assert!(transfers.iter().any(|t| t["sha256"] == sent.as_str()));
    assert!(
        transfers
            .iter()
            .any(|t| t["sha256"] == sha256_bytes(&data).as_str())
    );
}

#[test]
fn send_proxy_v2_passes_the_real_address_for_control_and_data() {
    transfers_carry_the_real_address(false);
}

#[test]
fn send_proxy_v1_passes_the_real_address_for_control_and_data() {
    transfers_carry_the_real_address(true);
}

/// The per-user cap holds across both workers, and an access rule on a real address
/// refuses it through HAProxy.
#[test]
fn limits_and_access_rules_apply_to_the_real_address() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, |b| b);
    let front = front();
    let _haproxy = haproxy(front, gate.addr(), false, None);

    let mut first = Ftp::connect_raw_from(front, ip(2));
    assert_eq!(first.read_reply().0, 220);
    first.login_ok("ftp", "x");
    let first_worker = starts_from(&gate, ip(2))[0]["worker"].to_string();
    // From other real addresses until one lands on the other worker: refused there too.
    let mut workers = BTreeSet::new();
    for n in 0..40u8 {
        let source = ip(10 + n);
        let mut second = Ftp::connect_raw_from(front, source);
        assert_eq!(second.read_reply().0, 220);
        assert_eq!(second.cmd("USER ftp").0, 331);
        let (code, text) = second.cmd("PASS x");
        assert_eq!(code, 421, "ftp's second session from {source}: {text}");
        gate.wait_audit(Duration::from_secs(10), |_| {
            !starts_from(&gate, source).is_empty()
        });
        let worker = starts_from(&gate, source)[0]["worker"].to_string();
        workers.insert(worker.clone());
        if worker != first_worker {
            break;
        }
    }
    assert!(
        workers.iter().any(|w| *w != first_worker),
        "a refused login on the other worker: {workers:?} vs {first_worker}"
    );
    assert_eq!(first.cmd("PWD").0, 257, "the first session is unaffected");

    // 127.0.0.3 is denied by its real address (HAProxy's own, 127.0.0.1, is not).
    let mut denied = Ftp::connect_raw_from(front, ip(3));
    assert_eq!(denied.read_reply().0, 421);
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| {
            e["event"] == "policy_violation"
                && e["client"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("127.0.0.3:"))
        })
    });
    let refusal = events
        .iter()
        .find(|e| {
            e["event"] == "policy_violation"
                && e["client"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("127.0.0.3:"))
        })
        .expect("refusal");
    assert_eq!(refusal["kind"], "access_rule", "{refusal}");
}

/// `passive.proxy_protocol`: data connections pass HAProxy too (EPSV works: the client
/// connects to HAProxy's address), accepted only when the header names the client.
#[test]
fn passive_data_through_the_balancer() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, |b| {
        b.set(&["passive", "proxy_protocol"], json!(true))
            .set(&["passive", "advertise"], json!("127.0.0.50"))
    });
    let front = SocketAddr::new(ip(50), free_port());
    let _haproxy = haproxy(front, gate.addr(), false, Some(gate.passive_range()));
    let data = random_bytes(BIG, 21);
    vs.put_file("pub/via.bin", &data);
    let dir = temp_dir();
    for epsv in [true, false] {
        let got = dir.path().join(format!("via-{epsv}.bin"));
        let mut args = vec!["-o", got.to_str().expect("path")];
        if !epsv {
            args.push("--disable-epsv");
        }
        let url = ftp_url(front, "/pub/via.bin");
        args.push(&url);
        curl(ip(2), &args).assert_success("download with data through haproxy");
        assert_eq!(sha256_file(&got), sha256_bytes(&data), "epsv {epsv}");
    }
    let up = dir.path().join("up.bin");
    let sent = write_random_file(&up, BIG, 22);
    curl(
        ip(2),
        &[
            "-T",
            up.to_str().expect("path"),
            &ftp_url(front, "/pub/up-via.bin"),
        ],
    )
    .assert_success("upload with data through haproxy");
    assert_eq!(sha256_file(&vs.pub_dir().join("up-via.bin")), sent);

    // Someone else (127.0.0.4) who reaches the passive port through HAProxy is a thief.
    let mut victim = Ftp::connect_raw_from(front, ip(2));
    assert_eq!(victim.read_reply().0, 220);
    victim.login_ok("anonymous", "x");
    let (code, text) = victim.cmd("EPSV");
    assert_eq!(code, 229, "{text}");
    let port: u16 = text
        .split("|||")
        .nth(1)
        .and_then(|p| {
            p.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("EPSV port in {text}"));
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(ip(4), 0).into())
        .expect("bind 127.0.0.4");
    socket
        .connect_timeout(&SocketAddr::new(front.ip(), port).into(), IO_TIMEOUT)
        .expect("connect through haproxy");
    let mut thief: TcpStream = socket.into();
    thief.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut buf = [0u8; 16];
    assert_eq!(
        thief.read(&mut buf).unwrap_or(0),
        0,
        "the thief gets nothing"
    );
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| {
            e["kind"] == "port_theft"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("127.0.0.4") && d.contains(" via 127.0.0.1:"))
        })
    });
    assert!(!events.is_empty());
}

/// Children of the supervisor: the worker processes.
fn workers_of(gate: &Ftpgate) -> Vec<u32> {
    let pid = gate.pid().expect("ftpgate runs");
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn open_fds(gate: &Ftpgate) -> usize {
    workers_of(gate)
        .iter()
        .map(|w| fs::read_dir(format!("/proc/{w}/fd")).map_or(0, |d| d.count()))
        .sum()
}

fn closed_without_greeting(mut stream: TcpStream) {
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!(
            "expected a close without greeting, got {other:?} {:?}",
            &buf[..8]
        ),
    }
}

fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .expect("bind");
    socket
        .connect_timeout(&to.into(), IO_TIMEOUT)
        .expect("connect");
    socket.into()
}

/// An untrusted peer, a malformed header, a LOCAL header, no header: closed before any
/// greeting, no backend contacted, each recorded.
#[test]
fn untrusted_malformed_and_local_headers_are_refused() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, |b| b);
    let connects = Vsftpd::connects(&vs.log());

    closed_without_greeting(connect_from(ip(2), gate.addr()));
    let mut bad = connect_from(ip(1), gate.addr());
    bad.write_all(b"PROXY TCP4 127.0.0.9 127.0.0.1 5000\r\nUSER ftp\r\n")
        .expect("send");
    closed_without_greeting(bad);
    let mut local = connect_from(ip(1), gate.addr());
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    local.write_all(&header).expect("send");
    closed_without_greeting(local);
    let mut plain = connect_from(ip(1), gate.addr());
    plain.write_all(b"USER ftp\r\n").expect("send");
    closed_without_greeting(plain);
    // A header from the trusted address names a client: a session for that client.
    let mut good = connect_from(ip(1), gate.addr());
    good.write_all(b"PROXY TCP4 127.0.0.9 127.0.0.1 5000 21\r\n")
        .expect("send");
    good.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut greeting = [0u8; 4];
    good.read_exact(&mut greeting).expect("greeting");
    assert_eq!(&greeting, b"220 ");

    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        proxy_refusals(ev).len() >= 4 && !starts_from(&gate, ip(9)).is_empty()
    });
    let details: Vec<String> = proxy_refusals(&events)
        .iter()
        .map(|e| format!("{} {}", e["client"], e["detail"]))
        .collect();
    let has = |client: &str, text: &str| {
        details
            .iter()
            .any(|d| d.contains(client) && d.contains(text))
    };
    assert!(has("127.0.0.2:", "not in proxy_from"), "{details:?}");
    assert!(has("127.0.0.1:", "malformed PROXY v1 line"), "{details:?}");
    assert!(has("127.0.0.1:", "LOCAL"), "{details:?}");
    assert!(has("127.0.0.1:", "no PROXY protocol header"), "{details:?}");
    assert_eq!(starts_from(&gate, ip(9))[0]["client"], "127.0.0.9:5000");
    assert_eq!(
        Vsftpd::connects(&vs.log()),
        connects,
        "no backend connection for a refused one"
    );
}

/// A flood of refused connections costs the audit trail a bounded number of lines (the
/// rest counted in the next), and a flood of silent ones from the balancer holds file
/// descriptors only until the header timeout.
#[test]
fn a_flood_is_bounded_in_audit_lines_and_file_descriptors() {
    let vs = Vsftpd::start();
    let gate = gate(&vs, |b| b);
    let started = Instant::now();
    let flood = 400;
    for _ in 0..flood {
        let stream = connect_from(ip(2), gate.addr());
        drop(stream);
    }
    // Wait until every one of them was handled: the last is refused like the others.
    let mut probe = connect_from(ip(2), gate.addr());
    probe.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut buf = [0u8; 8];
    assert_eq!(probe.read(&mut buf).unwrap_or(0), 0);
    let elapsed = started.elapsed().as_secs_f64();
    let events = gate.wait_audit(Duration::from_secs(5), |ev| !proxy_refusals(ev).is_empty());
    let recorded = proxy_refusals(&events).len() as f64;
    // Per worker: the burst, then the rate.
    let bound = 2.0 * (20.0 + 5.0 * (elapsed + 1.0));
    assert!(
        recorded <= bound,
        "{recorded} records for {flood} refusals in {elapsed:.1} s (bound {bound})"
    );
    assert!(recorded >= 1.0);
    // The rest are counted: a later record says how many it stands for.
    refuse_until_a_count_is_recorded(&gate);
    let events = gate.audit_events();
    let counted = proxy_refusals(&events).iter().any(|e| {
        e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("more refused before this one"))
    });
    assert!(
        counted || recorded as usize > flood,
        "{:?}",
        proxy_refusals(&events).last()
    );

    // Silent connections from the balancer: held, then closed at the header timeout.
    let baseline = open_fds(&gate);
    let silent: Vec<TcpStream> = (0..100).map(|_| connect_from(ip(1), gate.addr())).collect();
    assert!(
        wait_until(Duration::from_secs(3), || open_fds(&gate) >= baseline + 100),
        "ftpgate holds them while it waits: {} vs {baseline}",
        open_fds(&gate)
    );
    let held = Instant::now();
    for s in silent {
        closed_without_greeting(s);
    }
    let waited = held.elapsed();
    assert!(waited < Duration::from_secs(8), "closed after {waited:?}");
    assert!(
        wait_until(Duration::from_secs(5), || open_fds(&gate) <= baseline + 2),
        "descriptors released: {} vs {baseline}",
        open_fds(&gate)
    );
    let events = gate.audit_events();
    assert!(
        proxy_refusals(&events).iter().any(|e| e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no complete PROXY header within 5000 ms"))),
        "late headers recorded"
    );
}

/// After the bucket refilled (about a second), one more refusal is recorded with the count
/// of those that were not. Waits on a condition: new refusals until one is recorded.
fn refuse_until_a_count_is_recorded(gate: &Ftpgate) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        closed_without_greeting(connect_from(ip(2), gate.addr()));
        let events = gate.audit_events();
        if proxy_refusals(&events).iter().any(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("more refused before this one"))
        }) {
            return;
        }
        // The pause between two polls (the bucket refills at 5 a second).
        std::thread::sleep(Duration::from_millis(50));
    }
}
