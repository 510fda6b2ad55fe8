//! Data-channel behaviour through ftpgate against a real vsftpd: ABOR during a transfer,
//! data connections that fail (425/426), bounce and port-theft attempts, and that a
//! legitimate session on the same gateway still works after each of them.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;

fn setup() -> (Vsftpd, Ftpgate) {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    (vs, gate)
}

/// A full, normal transfer on a fresh session: the gateway is still healthy.
fn assert_gateway_still_serves(vs: &Vsftpd, gate: &mut Ftpgate) {
    let data = random_bytes(100_000, 77);
    vs.put_file("pub/after.bin", &data);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(sha256_bytes(&c.retr("/pub/after.bin")), sha256_bytes(&data));
    assert_eq!(c.cmd("QUIT").0, 221);
    gate.assert_healthy();
}

#[test]
fn abor_during_a_download_gets_the_transfer_reply_then_226_and_the_session_continues() {
    let (vs, mut gate) = setup();
    // Large enough that the transfer is still running when ABOR arrives (the client does not
    // read the data connection, so the relay stalls on backpressure).
    let data = random_bytes(64 * 1024 * 1024, 3);
    vs.put_file("pub/huge.bin", &data);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut data_conn = c.pasv_connect();
    let (code, text) = c.cmd("RETR /pub/huge.bin");
    assert_eq!(code, 150, "{text}");
    let mut first = [0u8; 4096];
    data_conn
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("timeout");
    data_conn.read_exact(&mut first).expect("some data flows");
    // ABOR the way ftplib's abort() does: Telnet IP + Synch, then ABOR.
    c.send(b"\xff\xf4\xff\xf2ABOR\r\n");
    let (first_code, first_text) = c.read_reply();
    assert!(
        first_code == 426 || first_code == 226,
        "transfer reply after ABOR: {first_code} {first_text}"
    );
    let (second_code, second_text) = c.read_reply();
    assert!(
        second_code == 226 || second_code == 225,
        "ABOR reply: {second_code} {second_text}"
    );
    // The client's data connection was closed by the gateway, short of the whole file.
    let mut rest = Vec::new();
    let _ = data_conn.read_to_end(&mut rest);
    assert!(4096 + rest.len() < data.len(), "transfer was cut short");
    // The control session goes on.
    assert_eq!(c.cmd("NOOP").0, 200);
    let small = random_bytes(10_000, 4);
    vs.put_file("pub/small.bin", &small);
    assert_eq!(c.retr("/pub/small.bin"), small);
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter()
            .any(|e| e["event"] == "transfer" && e["result"] == "aborted")
    });
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "transfer" && e["result"] == "aborted"),
        "the aborted transfer is audited: {events:?}"
    );
    drop(c);
    assert_gateway_still_serves(&vs, &mut gate);
}

#[test]
fn active_connect_refused_gives_425_and_the_backend_never_sees_the_command() {
    let (vs, mut gate) = setup();
    vs.put_file("pub/f.txt", b"hello");
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    // A port on the client's own address where nothing listens.
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let (code, text) = c.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff));
    assert_eq!(code, 200, "{text}");
    let mark = vs.log_mark();
    let (code, text) = c.cmd("STOR /pub/never.txt");
    assert_eq!(code, 425, "{text}");
    assert!(
        !vs.root().join("pub/never.txt").exists(),
        "no file on the backend"
    );
    assert!(
        !Vsftpd::log_has_verb(&vs.log_since(mark), "STOR"),
        "STOR never reached the backend: {}",
        vs.log_since(mark)
    );
    assert_eq!(c.cmd("NOOP").0, 200);
    drop(c);
    assert_gateway_still_serves(&vs, &mut gate);
}

#[test]
fn client_that_closes_its_data_connection_mid_download_gets_426() {
    let (vs, mut gate) = setup();
    vs.put_file("pub/huge.bin", &random_bytes(32 * 1024 * 1024, 5));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut data_conn = c.pasv_connect();
    assert_eq!(c.cmd("RETR /pub/huge.bin").0, 150);
    let mut some = [0u8; 1024];
    data_conn.read_exact(&mut some).expect("data flows");
    // Reset rather than FIN so the gateway's next write fails at once.
    let sock = socket2::SockRef::from(&data_conn);
    sock.set_linger(Some(Duration::ZERO)).expect("linger");
    drop(data_conn);
    let (code, text) = c.read_reply();
    assert_eq!(code, 426, "{text}");
    assert_eq!(c.cmd("NOOP").0, 200);
    drop(c);
    assert_gateway_still_serves(&vs, &mut gate);
}

#[test]
fn port_naming_another_host_is_refused_and_never_connected() {
    let (vs, mut gate) = setup();
    vs.put_file("pub/f.txt", b"secret");
    // The bounce target listens on another loopback address and counts connections.
    let target = TcpListener::bind(("127.0.0.2", 0)).expect("bind 127.0.0.2");
    target.set_nonblocking(true).expect("nonblocking");
    let port = target.local_addr().expect("addr").port();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let (code, text) = c.cmd(&format!("PORT 127,0,0,2,{},{}", port >> 8, port & 0xff));
    assert_eq!(code, 501, "{text}");
    let (code, text) = c.cmd(&format!("EPRT |1|127.0.0.2|{port}|"));
    assert_eq!(code, 501, "{text}");
    let (code, text) = c.cmd("PORT 127,0,0,1,0,21");
    assert_eq!(code, 501, "privileged port: {text}");
    // A transfer attempt now has no data connection set up.
    let (code, _) = c.cmd("RETR /pub/f.txt");
    assert_eq!(code, 425);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        matches!(target.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "no connection was ever made to the bounce target"
    );
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e["event"] == "policy_violation")
    });
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "policy_violation" && e["kind"] == "bounce"),
        "{events:?}"
    );
    drop(c);
    assert_gateway_still_serves(&vs, &mut gate);
}

#[test]
fn passive_port_accepts_only_the_client_address() {
    let (vs, mut gate) = setup();
    let data = random_bytes(200_000, 9);
    vs.put_file("pub/f.bin", &data);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let (code, text) = c.cmd("PASV");
    assert_eq!(code, 227, "{text}");
    let addr: SocketAddr = parse_227(&text).expect("227 address");
    // The thief connects first, from another loopback address.
    let thief =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    thief
        .bind(&SocketAddr::from(([127, 0, 0, 3], 0)).into())
        .expect("bind 127.0.0.3");
    thief
        .connect(&addr.into())
        .expect("TCP handshake completes");
    let mut thief: TcpStream = thief.into();
    thief.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut buf = [0u8; 16];
    let stolen = thief.read(&mut buf);
    assert!(
        matches!(stolen, Ok(0)) || stolen.is_err(),
        "the thief is closed at once without data: {stolen:?}"
    );
    // The legitimate client still gets the file.
    let mut data_conn = TcpStream::connect(addr).expect("legit data connection");
    let (code, _) = c.cmd("RETR /pub/f.bin");
    assert_eq!(code, 150);
    let mut got = Vec::new();
    data_conn.read_to_end(&mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(sha256_bytes(&got), sha256_bytes(&data));
    let events = gate.audit_events();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "policy_violation" && e["kind"] == "port_theft"),
        "{events:?}"
    );
    drop(c);
    assert_gateway_still_serves(&vs, &mut gate);
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let (vs, mut gate) = setup();
    vs.put_file("pub/a.txt", b"12345");
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    c.send(b"TYPE I\r\nSIZE /pub/a.txt\r\nNOOP\r\nFOO\r\nPWD\r\nSIZE /pub/missing\r\n");
    let codes: Vec<u16> = (0..6).map(|_| c.read_reply().0).collect();
    assert_eq!(codes, vec![200, 213, 200, 502, 257, 550]);
    let mut s = c;
    s.send(b"QUIT\r\n");
    assert_eq!(s.read_reply().0, 221);
    let _ = s.try_send(b"NOOP\r\n");
    drop(s);
    assert_gateway_still_serves(&vs, &mut gate);
}

#[test]
fn epsv_and_eprt_work_on_the_client_side() {
    let (vs, mut gate) = setup();
    let data = random_bytes(300_000, 11);
    vs.put_file("pub/e.bin", &data);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut conn = c.epsv_connect();
    assert_eq!(c.cmd("RETR /pub/e.bin").0, 150);
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(got, data);
    // EPRT with an unsupported network protocol: 522 (RFC 2428).
    let (code, text) = c.cmd("EPRT |9|x|1|");
    assert_eq!(code, 522, "{text}");
    // EPRT to the client itself, then an upload through it.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    assert_eq!(c.cmd(&format!("EPRT |1|127.0.0.1|{port}|")).0, 200);
    c.send(b"STOR /pub/up.bin\r\n");
    let mut conn = accept_within(&listener, IO_TIMEOUT);
    assert_eq!(c.read_reply().0, 150);
    conn.write_all(&data).expect("upload");
    drop(conn);
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(
        sha256_file(&vs.root().join("pub/up.bin")),
        sha256_bytes(&data)
    );
    drop(c);
    assert_gateway_still_serves(&vs, &mut gate);
}
