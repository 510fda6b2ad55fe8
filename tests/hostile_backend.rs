//! Backends that misbehave on purpose (no real server can be made to): a 227 naming a third
//! party, endless or over-long replies, garbage instead of a greeting. ftpgate must connect
//! data only to the backend's control address, cut bounded replies off with 421, and keep
//! serving everyone else.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::*;

/// What the fake backend does after login, given the command line it received.
type Script = fn(&str, &mut TcpStream, &TcpListener) -> bool;

/// A one-connection backend: greets with `greeting`, logs in any USER/PASS, then runs
/// `script` for each command until it returns false. Its passive listener (for scripts that
/// need one) is `data` on 127.0.0.1.
fn fake_backend(greeting: &'static [u8], script: Script) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind fake backend");
    let addr = listener.local_addr().expect("addr");
    let handle = thread::spawn(move || {
        let data = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind data");
        let stream = accept_within(&listener, Duration::from_secs(30));
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        if writer.write_all(greeting).is_err() {
            return;
        }
        let mut logged_in = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end().to_string();
            if !logged_in {
                let reply: &[u8] = if line.starts_with("USER") {
                    b"331 password\r\n"
                } else {
                    logged_in = true;
                    b"230 in\r\n"
                };
                if writer.write_all(reply).is_err() {
                    return;
                }
                continue;
            }
            if !script(&line, &mut writer, &data) {
                return;
            }
        }
    });
    (addr, handle)
}

fn gate_for(vs: &Vsftpd, fake: SocketAddr) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .backend("fake", fake)
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("mallory", "full", "fake")
        // The fake serves one connection: no FEAT probe may take it.
        .set(
            &["backends", "fake", "feature_probe"],
            serde_json::Value::Bool(false),
        )
        .start()
}

#[test]
fn the_address_in_a_backend_227_is_ignored() {
    let vs = Vsftpd::start();
    // A third party on 127.0.0.2 that must never be contacted.
    let third = TcpListener::bind(("127.0.0.2", 0)).expect("bind third party");
    third.set_nonblocking(true).expect("nonblocking");
    let third_port = third.local_addr().expect("addr").port();
    // The fake names 127.0.0.2 in its 227, with the port of its real listener on 127.0.0.1,
    // so only a gateway that ignores the address reaches the file.
    fn script(line: &str, w: &mut TcpStream, data: &TcpListener) -> bool {
        let port = data.local_addr().expect("addr").port();
        if line == "PASV" {
            let reply = format!(
                "227 Entering Passive Mode (127,0,0,2,{},{}).\r\n",
                port >> 8,
                port & 0xff
            );
            return w.write_all(reply.as_bytes()).is_ok();
        }
        if line.starts_with("RETR") {
            let mut conn = accept_within(data, Duration::from_secs(10));
            let _ = w.write_all(b"150 here it comes\r\n");
            let _ = conn.write_all(b"the real file");
            drop(conn);
            return w.write_all(b"226 done\r\n").is_ok();
        }
        w.write_all(b"200 ok\r\n").is_ok()
    }
    let (fake, handle) = fake_backend(b"220 fake\r\n", script);
    let mut gate = gate_for(&vs, fake);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("mallory", "x");
    let mut conn = c.pasv_connect();
    assert_eq!(c.cmd("RETR f").0, 150);
    let mut got = Vec::new();
    conn.read_to_end(&mut got).expect("read");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(got, b"the real file");
    assert!(
        matches!(third.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the third party named in the 227 was never contacted (port {third_port})"
    );
    assert_eq!(c.cmd("QUIT").0, 221);
    let _ = handle.join();
    gate.assert_healthy();
}

#[test]
fn an_endless_multiline_reply_is_cut_off_with_421() {
    let vs = Vsftpd::start();
    fn script(_line: &str, w: &mut TcpStream, _data: &TcpListener) -> bool {
        if w.write_all(b"257-start\r\n").is_err() {
            return false;
        }
        // Far more than the reply limit; the gateway stops reading and closes.
        let line = [b'x'; 1000];
        for _ in 0..100_000 {
            if w.write_all(&line)
                .and_then(|()| w.write_all(b"\r\n"))
                .is_err()
            {
                return false;
            }
        }
        false
    }
    let (fake, handle) = fake_backend(b"220 fake\r\n", script);
    let mut gate = gate_for(&vs, fake);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("mallory", "x");
    let (code, text) = c.cmd("PWD");
    assert_eq!(code, 421, "{text}");
    assert!(
        text.len() < 200,
        "none of the endless reply reached the client"
    );
    let _ = handle.join();
    gate.assert_healthy();
}

#[test]
fn an_over_long_reply_line_is_cut_off_with_421() {
    let vs = Vsftpd::start();
    fn script(_line: &str, w: &mut TcpStream, _data: &TcpListener) -> bool {
        let junk = vec![b'7'; 1024 * 1024];
        let _ = w.write_all(&junk);
        false
    }
    let (fake, handle) = fake_backend(b"220 fake\r\n", script);
    let mut gate = gate_for(&vs, fake);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("mallory", "x");
    assert_eq!(c.cmd("NOOP").0, 421);
    let _ = handle.join();
    gate.assert_healthy();
}

#[test]
fn a_garbage_greeting_fails_the_login_with_421() {
    let vs = Vsftpd::start();
    fn script(_line: &str, _w: &mut TcpStream, _data: &TcpListener) -> bool {
        false
    }
    let (fake, handle) = fake_backend(b"SSH-2.0-OpenSSH_9.2\r\n", script);
    let mut gate = gate_for(&vs, fake);
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER mallory").0, 331);
    let (code, text) = c.cmd("PASS x");
    assert_eq!(code, 421, "{text}");
    let _ = handle.join();
    gate.assert_healthy();
}

#[test]
fn an_unreachable_backend_fails_the_login_with_421() {
    let vs = Vsftpd::start();
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let mut gate = gate_for(&vs, addr);
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER mallory").0, 331);
    let (code, text) = c.cmd("PASS x");
    assert_eq!(code, 421, "{text}");
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e["event"] == "login")
    });
    assert!(
        events.iter().any(|e| e["event"] == "login"
            && e["result"] == "failed"
            && e["reason"] == "backend_unavailable"),
        "{events:?}"
    );
    gate.assert_healthy();
}
