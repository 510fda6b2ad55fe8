//! `passive.shared`: one passive port serves several sessions at once, told apart by the
//! client's address; the single data port of a container (`"ports": "P"`). Two clients from
//! different loopback addresses share the one port with their files intact, a thief from a
//! third address is refused (audited) while both wait and after, a second session of the same
//! address gets 425 while the first waits (a connection from that address could not be told
//! apart) and the port again once the first is done; real clients (curl and Python ftplib)
//! through the one port at once; two workers, each with its own shared port.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};

use common::*;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";
const THIEF: &str = "127.0.0.3";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

/// A data connection to `addr` from the local address `source`.
fn connect_from(addr: SocketAddr, source: &str) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("socket");
    socket
        .bind(&SocketAddr::new(ip(source), 0).into())
        .unwrap_or_else(|e| panic!("bind {source}: {e}"));
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect {addr} from {source}: {e}"));
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

/// A logged-in session from `source`, binary type.
fn session_from(gate: &Ftpgate, source: &str) -> Ftp {
    let mut c = Ftp::connect_raw_from(gate.addr(), ip(source));
    assert_eq!(c.read_reply().0, 220);
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    c
}

/// PASV: the address of the 227 reply.
fn pasv(c: &mut Ftp) -> SocketAddr {
    let (code, text) = c.cmd("PASV");
    assert_eq!(code, 227, "PASV: {text}");
    parse_227(&text).unwrap_or_else(|| panic!("227: {text}"))
}

/// A gate in front of `vs` whose passive ports are `lo-hi`, shared, with `workers`.
fn shared_gate(vs: &Vsftpd, lo: u16, hi: u16, workers: u32) -> Ftpgate {
    let ports = if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo}-{hi}")
    };
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "full", "vsftpd")
        .workers(workers)
        .set(&["passive", "ports"], json!(ports))
        .set(&["passive", "shared"], json!(true))
        .start()
}

/// The connection is closed by ftpgate without a byte (a refused data connection).
fn assert_refused(mut stream: TcpStream) {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("a refused connection got {other:?}"),
    }
}

fn port_thefts(events: &[Value], from: &str) -> usize {
    events
        .iter()
        .filter(|e| {
            e["event"] == "policy_violation"
                && e["kind"] == "port_theft"
                && e["client"].as_str().is_some_and(|c| c.starts_with(from))
        })
        .count()
}

#[test]
fn two_clients_share_one_passive_port_with_their_files_intact_and_a_thief_is_refused() {
    let vs = Vsftpd::start();
    let down = random_bytes(3 * 1024 * 1024 + 17, 81);
    vs.put_file("pub/down.bin", &down);
    let up = random_bytes(2 * 1024 * 1024 + 5, 82);
    let (port, _) = port_range(1);
    let gate = shared_gate(&vs, port, port, 1);

    let mut a = session_from(&gate, A);
    let mut b = session_from(&gate, B);
    let at_a = pasv(&mut a);
    let at_b = pasv(&mut b);
    assert_eq!(at_a.port(), port, "the one data port");
    assert_eq!(at_b.port(), port, "the same port for the other address");

    // While both wait, a third address connects to the port: refused, recorded.
    assert_refused(connect_from(at_a, THIEF));
    gate.wait_audit(Duration::from_secs(10), |ev| port_thefts(ev, THIEF) == 1);

    // B's connection first, then A's: each reaches its own session.
    let mut data_b = connect_from(at_b, B);
    let mut data_a = connect_from(at_a, A);
    let (code, text) = a.cmd("RETR /pub/down.bin");
    assert!(matches!(code, 125 | 150), "RETR: {text}");
    let (code, text) = b.cmd("STOR /pub/up.bin");
    assert!(matches!(code, 125 | 150), "STOR: {text}");
    // Both transfers in flight at once over the one port.
    let writer = std::thread::spawn(move || {
        data_b.write_all(&up).expect("upload");
        drop(data_b);
        up
    });
    let mut got = Vec::new();
    data_a.read_to_end(&mut got).expect("download");
    let up = writer.join().expect("writer");
    assert_eq!(a.read_reply().0, 226);
    assert_eq!(b.read_reply().0, 226);
    assert_eq!(sha256_bytes(&got), sha256_bytes(&down), "A's download");
    assert_eq!(
        sha256_file(&vs.root().join("pub/up.bin")),
        sha256_bytes(&up),
        "B's upload as the backend keeps it"
    );

    // Nobody waits now: the port has no listener at all (the worker closed it with its last
    // waiter), so a connection is refused by the kernel.
    let err = std::net::TcpStream::connect(at_a).expect_err("no listener");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // A waits again; the thief tries again: refused and recorded; A's transfer is intact.
    let again = pasv(&mut a);
    assert_eq!(again.port(), port);
    assert_refused(connect_from(again, THIEF));
    let mut conn = connect_from(again, A);
    let (code, _) = a.cmd("RETR /pub/down.bin");
    assert!(matches!(code, 125 | 150));
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("download");
    assert_eq!(a.read_reply().0, 226);
    assert_eq!(sha256_bytes(&got), sha256_bytes(&down));
    let events = gate.wait_audit(Duration::from_secs(10), |ev| port_thefts(ev, THIEF) == 2);
    let theft = events
        .iter()
        .find(|e| e["kind"] == "port_theft")
        .expect("theft event");
    let detail = theft["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("shared passive port {port}")),
        "{detail}"
    );
    // B reads back its upload through the port (from its own address).
    let at_b = pasv(&mut b);
    let mut conn = connect_from(at_b, B);
    let (code, _) = b.cmd("RETR /pub/up.bin");
    assert!(matches!(code, 125 | 150));
    let mut back = Vec::new();
    conn.read_to_end(&mut back).expect("read back");
    assert_eq!(b.read_reply().0, 226);
    assert_eq!(sha256_bytes(&back), sha256_bytes(&up));
    // The transfer events: every one ok, with its digest.
    let transfers: Vec<&Value> = events.iter().filter(|e| e["event"] == "transfer").collect();
    assert!(transfers.len() >= 2, "{transfers:?}");
    assert!(
        transfers.iter().all(|e| e["result"] == "ok"),
        "{transfers:?}"
    );
    // Each names its data connection: from its own client's address, to the one port.
    let mut sources = std::collections::BTreeSet::new();
    for e in &transfers {
        let end = |key: &str| -> SocketAddr {
            let text = e[key].as_str().unwrap_or_else(|| panic!("{key}: {e}"));
            text.parse().unwrap_or_else(|err| panic!("{key}: {err}"))
        };
        assert_eq!(end("data_client_gate").port(), port, "{e}");
        sources.insert(end("data_client").ip().to_string());
    }
    let both: std::collections::BTreeSet<String> = [A.to_owned(), B.to_owned()].into();
    assert_eq!(sources, both, "{transfers:?}");
    assert_eq!(a.cmd("QUIT").0, 221);
    assert_eq!(b.cmd("QUIT").0, 221);
}

#[test]
fn a_second_session_of_one_address_waits_for_its_turn_on_a_single_data_port() {
    let vs = Vsftpd::start();
    let data = random_bytes(200 * 1024, 83);
    vs.put_file("pub/d.bin", &data);
    let (port, _) = port_range(1);
    let gate = shared_gate(&vs, port, port, 1);

    let mut first = session_from(&gate, A);
    let mut second = session_from(&gate, A);
    let at = pasv(&mut first);
    assert_eq!(at.port(), port);
    // A connection from A could not be told apart: the second session of A gets 425.
    let (code, text) = second.cmd("PASV");
    assert_eq!(code, 425, "{text}");
    let (code, text) = second.cmd("EPSV");
    assert_eq!(code, 425, "{text}");
    // Another address is not held back.
    let mut other = session_from(&gate, B);
    assert_eq!(pasv(&mut other).port(), port);
    // The first transfers; then the second has the port.
    let mut conn = connect_from(at, A);
    let (code, _) = first.cmd("RETR /pub/d.bin");
    assert!(matches!(code, 125 | 150));
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read");
    assert_eq!(first.read_reply().0, 226);
    assert_eq!(got, data);
    // (`retr` connects from 127.0.0.1: A's address.)
    assert_eq!(
        sha256_bytes(&second.retr("/pub/d.bin")),
        sha256_bytes(&data)
    );
    // The session that gave up its wait (QUIT without connecting) frees the port for A.
    assert_eq!(other.cmd("QUIT").0, 221);
    assert_eq!(first.cmd("QUIT").0, 221);
    assert_eq!(second.cmd("QUIT").0, 221);
    let events = gate.audit_events();
    assert_eq!(port_thefts(&events, ""), 0, "no connection was refused");
}

/// curl from 127.0.0.1 and Python ftplib from 127.0.0.2, each downloading through the one
/// data port at the same time, several times over.
#[test]
fn real_clients_from_two_addresses_download_through_one_data_port_at_once() {
    let vs = Vsftpd::start();
    let data = random_bytes(4 * 1024 * 1024, 84);
    vs.put_file("pub/big.bin", &data);
    let (port, _) = port_range(1);
    let gate = shared_gate(&vs, port, port, 1);
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("ftp://ftp:x@{}/pub/big.bin", gate.addr());
    let out = dir.path().join("curl.bin");
    let out_arg = out.to_string_lossy().into_owned();
    let gate_addr = gate.addr();
    let script = r#"
import ftplib, hashlib, sys
host, port = sys.argv[1], int(sys.argv[2])
for _ in range(3):
    f = ftplib.FTP()
    f.source_address = ("127.0.0.2", 0)
    f.connect(host, port, timeout=30, source_address=("127.0.0.2", 0))
    f.login("ftp", "x")
    h = hashlib.sha256()
    f.retrbinary("RETR /pub/big.bin", h.update)
    print(h.hexdigest())
    f.quit()
"#;
    let py = std::thread::spawn(move || {
        python(
            script,
            &[&gate_addr.ip().to_string(), &gate_addr.port().to_string()],
        )
    });
    for _ in 0..3 {
        let curl_out = curl(&["-sS", "--ftp-pasv", "--disable-epsv", "-o", &out_arg, &url]);
        assert!(curl_out.status.success(), "curl: {}", curl_out.stderr);
        assert_eq!(sha256_file(&out), sha256_bytes(&data));
    }
    let py = py.join().expect("python");
    assert!(py.status.success(), "ftplib: {}", py.stderr);
    let digests = String::from_utf8_lossy(&py.stdout).into_owned();
    let lines: Vec<&str> = digests.lines().collect();
    assert_eq!(lines.len(), 3, "{digests}");
    assert!(lines.iter().all(|l| *l == sha256_bytes(&data)), "{digests}");
    let events = gate.audit_events();
    let ok = events
        .iter()
        .filter(|e| e["event"] == "transfer" && e["result"] == "ok")
        .count();
    assert_eq!(ok, 6, "six downloads recorded ok");
    assert_eq!(port_thefts(&events, ""), 0);
}

/// Two workers: each owns one port of a two-port range; sessions land on either and
/// transfer through their worker's shared port.
#[test]
fn two_workers_each_share_their_own_port() {
    let vs = Vsftpd::start();
    let data = random_bytes(300 * 1024, 85);
    vs.put_file("pub/w.bin", &data);
    let (lo, hi) = port_range(2);
    let gate = shared_gate(&vs, lo, hi, 2);
    let mut seen = std::collections::BTreeSet::new();
    // Bounded: 12 sessions from two addresses; the kernel spreads them over the workers.
    for i in 0..12 {
        let source = if i % 2 == 0 { A } else { B };
        let mut c = session_from(&gate, source);
        let at = pasv(&mut c);
        assert!((lo..=hi).contains(&at.port()), "{at} outside {lo}-{hi}");
        seen.insert(at.port());
        let mut conn = connect_from(at, source);
        let (code, _) = c.cmd("RETR /pub/w.bin");
        assert!(matches!(code, 125 | 150));
        let mut got = Vec::new();
        conn.read_to_end(&mut got).expect("read");
        assert_eq!(c.read_reply().0, 226);
        assert_eq!(got, data);
        assert_eq!(c.cmd("QUIT").0, 221);
    }
    let events = gate.audit_events();
    let workers: std::collections::BTreeSet<u64> = events
        .iter()
        .filter(|e| e["event"] == "session_start")
        .filter_map(|e| e["worker"].as_u64())
        .collect();
    // Each worker that served a session used its own port: as many ports as workers.
    assert_eq!(
        seen.len(),
        workers.len(),
        "ports {seen:?}, workers {workers:?}"
    );
}

/// A flood of connections from a third address to a shared port while a client waits: every
/// one refused, the audit trail takes at most the burst plus the rate over the flood's time
/// (`STRAY_DATA_REFUSAL_BURST`, `STRAY_DATA_REFUSALS_PER_SECOND`), with the count of the
/// unrecorded ones in a later record, and the waiting client's transfer is intact.
#[test]
fn a_flood_of_strays_on_a_shared_port_costs_a_bounded_audit_and_the_client_transfers() {
    use ftpgate::limits::{STRAY_DATA_REFUSAL_BURST, STRAY_DATA_REFUSALS_PER_SECOND};
    let vs = Vsftpd::start();
    let data = random_bytes(512 * 1024, 86);
    vs.put_file("pub/f.bin", &data);
    let (port, _) = port_range(1);
    let gate = shared_gate(&vs, port, port, 1);
    let mut c = session_from(&gate, A);
    let at = pasv(&mut c);
    let started = std::time::Instant::now();
    let flood = 300u64;
    for _ in 0..flood {
        assert_refused(connect_from(at, THIEF));
    }
    let elapsed = started.elapsed().as_secs() + 1;
    let mut conn = connect_from(at, A);
    let (code, _) = c.cmd("RETR /pub/f.bin");
    assert!(matches!(code, 125 | 150));
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("download");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(sha256_bytes(&got), sha256_bytes(&data));
    // One more, a second later: recorded, carrying the count of those not recorded.
    wait_until(Duration::from_secs(5), || {
        started.elapsed() >= Duration::from_secs(elapsed)
    });
    let at = pasv(&mut c);
    assert_refused(connect_from(at, THIEF));
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| {
            e["kind"] == "port_theft"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("not recorded"))
        })
    });
    let recorded = port_thefts(&events, THIEF) as u64;
    let bound = STRAY_DATA_REFUSAL_BURST + STRAY_DATA_REFUSALS_PER_SECOND * (elapsed + 1);
    assert!(
        recorded <= bound && recorded < flood,
        "{recorded} records for {flood} refusals (bound {bound})"
    );
    let unrecorded: u64 = events
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .filter_map(|d| {
            let (_, tail) = d.split_once(" (")?;
            let tail = tail.strip_suffix(" more refused before this one, not recorded)")?;
            tail.rsplit(" (").next()?.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(
        recorded + unrecorded,
        flood + 1,
        "every refusal recorded or counted"
    );
    // The session goes on.
    assert_eq!(c.cmd("NOOP").0, 200);
}

/// FTPS through a shared port: curl (PROT P, from 127.0.0.1) uploads and downloads while
/// Python's FTP_TLS from 127.0.0.2 downloads through the same port; the protected data
/// connections resume the control session on the one port as on a port of their own.
#[test]
fn protected_transfers_of_two_addresses_share_one_data_port() {
    let vs = Vsftpd::start();
    let data = random_bytes(2 * 1024 * 1024, 87);
    vs.put_file("pub/t.bin", &data);
    let (port, _) = port_range(1);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "full", "vsftpd")
        .workers(1)
        .ftps()
        .set(&["passive", "ports"], json!(format!("{port}")))
        .set(&["passive", "shared"], json!(true))
        .start();
    let addr = gate.addr();
    let script = format!(
        "{PY_FTPS_REUSING}{}",
        r#"
import hashlib, sys
for _ in range(3):
    f = Reusing(context=ctx)
    f.connect(sys.argv[1], int(sys.argv[2]), timeout=30, source_address=("127.0.0.2", 0))
    f.login("ftp", "x")
    f.prot_p()
    h = hashlib.sha256()
    f.retrbinary("RETR /pub/t.bin", h.update)
    print(h.hexdigest())
    f.quit()
"#
    );
    let py = std::thread::spawn(move || {
        python(&script, &[&addr.ip().to_string(), &addr.port().to_string()])
    });
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("up.bin");
    std::fs::write(&src, &data).expect("write");
    let up = format!("ftp://ftp:x@{addr}/pub/tls-up.bin");
    let dst = dir.path().join("down.bin");
    for _ in 0..2 {
        curl(&[
            "-sS",
            "-k",
            "--ssl-reqd",
            "--disable-epsv",
            "-T",
            src.to_str().expect("p"),
            &up,
        ])
        .assert_success("curl upload");
        curl(&[
            "-sS",
            "-k",
            "--ssl-reqd",
            "--disable-epsv",
            "-o",
            dst.to_str().expect("p"),
            &up,
        ])
        .assert_success("curl download");
        assert_eq!(sha256_file(&dst), sha256_bytes(&data));
    }
    assert_eq!(
        sha256_file(&vs.root().join("pub/tls-up.bin")),
        sha256_bytes(&data)
    );
    let py = py.join().expect("python");
    assert!(py.status.success(), "FTP_TLS: {}", py.stderr);
    let out = String::from_utf8_lossy(&py.stdout).into_owned();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().all(|l| l == sha256_bytes(&data)), "{out}");
    let events = gate.audit_events();
    let data_tls = events
        .iter()
        .filter(|e| e["event"] == "tls" && e["channel"] == "data")
        .count();
    assert!(data_tls >= 7, "every data connection protected: {data_tls}");
    assert_eq!(port_thefts(&events, ""), 0);
}
