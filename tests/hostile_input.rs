//! Hostile input from clients: control bytes, Telnet sequences, odd line endings, floods of
//! pipelined commands, a passive port left waiting — and a transfer in flight on the same
//! gateway that must come through all of it intact.

mod common;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use common::*;

fn gate(vs: &Vsftpd) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .start()
}

#[test]
fn control_bytes_in_arguments_get_501_and_never_reach_the_backend() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let mark = vs.log_mark();
    for line in [
        &b"MKD /pub/a\x00b\r\n"[..],
        b"MKD /pub/a\rDELE x\r\n",
        b"MKD /pub/\x1b[31mred\r\n",
        b"MKD /pub/tab\there\r\n",
        b"MKD /pub/del\x7f\r\n",
    ] {
        c.send(line);
        let (code, text) = c.read_reply();
        assert_eq!(code, 501, "{:?}: {text}", String::from_utf8_lossy(line));
    }
    // One PWD round trip later, the backend's log shows none of them.
    assert_eq!(c.cmd("PWD").0, 257);
    let log = vs.log_since(mark);
    assert!(!Vsftpd::log_has_verb(&log, "MKD"), "{log}");
    assert!(!Vsftpd::log_has_verb(&log, "DELE"), "{log}");
    let entries: Vec<_> = std::fs::read_dir(vs.root().join("pub"))
        .expect("read pub")
        .collect();
    assert!(entries.is_empty(), "nothing was created: {entries:?}");
    gate.assert_healthy();
}

#[test]
fn telnet_sequences_are_removed_before_parsing() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    // IAC IP inside the argument, IAC WILL ECHO before the verb.
    c.send(b"\xff\xfb\x01MKD /pub/a\xff\xf4b\r\n");
    let (code, text) = c.read_reply();
    assert_eq!(code, 257, "{text}");
    assert!(vs.root().join("pub/ab").is_dir(), "the directory is 'ab'");
    // IAC IP IAC DM then NOOP, as ftplib sends before ABOR.
    c.send(b"\xff\xf4\xff\xf2NOOP\r\n");
    assert_eq!(c.read_reply().0, 200);
    gate.assert_healthy();
}

#[test]
fn bare_lf_ends_a_line_and_a_bare_cr_is_refused() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.send(b"USER anonymous\n");
    assert_eq!(c.read_reply().0, 331);
    c.send(b"PASS x\n");
    assert_eq!(c.read_reply().0, 230);
    c.send(b"NO\rOP\r\n");
    assert_eq!(c.read_reply().0, 501);
    c.send(b"PWD\r\r\n");
    assert_eq!(
        c.read_reply().0,
        501,
        "a CR before CRLF is a bare CR inside the line"
    );
    c.send(b"PWD\r\n");
    assert_eq!(c.read_reply().0, 257);
    gate.assert_healthy();
}

#[test]
fn a_flood_of_pipelined_commands_is_answered_in_full_and_in_order() {
    let vs = Vsftpd::start();
    let mut gate = gate(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let count = 3000;
    // The writer sends everything without reading; the gateway must apply backpressure
    // (stop reading) rather than buffer without bound, and lose nothing.
    let mut writer = c.try_clone_stream();
    let sender = thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..count {
            if i % 2 == 0 {
                batch.extend_from_slice(b"NOOP\r\n");
            } else {
                batch.extend_from_slice(b"FOO\r\n");
            }
        }
        writer.write_all(&batch).expect("send the flood");
    });
    for i in 0..count {
        let (code, text) = c.read_reply();
        let want = if i % 2 == 0 { 200 } else { 502 };
        assert_eq!(code, want, "reply {i}: {text}");
    }
    sender.join().expect("sender");
    assert_eq!(c.cmd("QUIT").0, 221);
    gate.assert_healthy();
}

#[test]
fn a_passive_port_closes_when_nobody_connects_in_time() {
    let vs = Vsftpd::start();
    vs.put_file("pub/f.txt", b"data");
    let mut gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["defaults", "timeouts", "data_connect"], json!(1))
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let (code, text) = c.cmd("PASV");
    assert_eq!(code, 227);
    let addr = parse_227(&text).expect("227");
    assert!(
        wait_until(Duration::from_secs(10), || !is_listening(addr)),
        "the passive port closes after the data connect timeout"
    );
    assert_eq!(c.cmd("RETR /pub/f.txt").0, 425);
    gate.assert_healthy();
}

#[test]
fn a_transfer_in_flight_survives_attacks_on_the_same_gateway() {
    let vs = Vsftpd::start();
    let data = random_bytes(3 * 1024 * 1024, 51);
    vs.put_file("pub/steady.bin", &data);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        // The victim's download is slowed so the attacks happen while it runs.
        .set(&["users", "ftp", "limits", "rate"], json!("1MiB/s"))
        .set(&["defaults", "limits", "failed_logins_per_ip"], json!(3))
        .set(&["defaults", "limits", "ban"], json!(1))
        .start();
    let addr = gate.addr();
    let victim = thread::spawn(move || {
        let mut c = Ftp::connect(addr);
        c.login_ok("ftp", "x");
        assert_eq!(c.cmd("TYPE I").0, 200);
        let started = Instant::now();
        let got = c.retr("/pub/steady.bin");
        (got, started.elapsed())
    });
    // The attacks, from another source address so the ban does not hit the victim.
    let attacker = "127.0.0.9".parse().expect("ip");
    for _ in 0..3 {
        let mut a = Ftp::connect_raw_from(addr, attacker);
        if a.read_reply().0 != 220 {
            continue;
        }
        let mut long = vec![b'A'; 10_000];
        long.extend_from_slice(b"\r\n");
        a.send(&long);
        assert_eq!(a.read_reply().0, 500);
        assert_eq!(a.cmd("PORT 10,0,0,1,4,1").0, 530);
        a.send(b"\x00\xff\xff\xff\r\n");
        let _ = a.read_reply();
        assert_eq!(a.cmd("USER nobody").0, 331);
        let _ = a.cmd("PASS wrong");
    }
    let (got, took) = victim.join().expect("victim");
    assert_eq!(
        sha256_bytes(&got),
        sha256_bytes(&data),
        "the transfer in flight is intact"
    );
    assert!(
        took > Duration::from_secs(1),
        "the attacks ran during the transfer: {took:?}"
    );
    let mut c = Ftp::connect(addr);
    c.login_ok("anonymous", "x");
    let mut conn = c.pasv_connect();
    assert_eq!(c.cmd("LIST /pub").0, 150);
    let mut listing = String::new();
    conn.read_to_string(&mut listing).expect("list");
    assert_eq!(c.read_reply().0, 226);
    assert!(listing.contains("steady.bin"));
}
