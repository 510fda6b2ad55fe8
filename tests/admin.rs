//! The admin socket and its commands: `ftpgate sessions` (table and `--json`), `ftpgate
//! kill` (one session, all of a user's), `ftpgate drain`/`resume`, and its bounds against a
//! local process that abuses it (connections that send nothing, an oversized request).

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

use ftpgate::limits::{ADMIN_TIMEOUT_MS, MAX_ADMIN_CONNECTIONS, MAX_ADMIN_REQUEST_BYTES};

fn ftpgate(gate: &Ftpgate, args: &[&str]) -> Output {
    let dir = gate.admin_dir();
    let (command, rest) = args.split_first().expect("a command");
    Command::new(env!("CARGO_BIN_EXE_ftpgate"))
        .arg(command)
        .arg("--admin")
        .arg(&dir)
        .args(rest)
        .output()
        .expect("run ftpgate")
}

fn sessions(gate: &Ftpgate) -> Vec<Value> {
    let out = ftpgate(gate, &["sessions", "--json"]);
    assert!(
        out.status.success(),
        "sessions: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn wait_admin_socket(gate: &Ftpgate, workers: usize) {
    let dir = gate.admin_dir();
    assert!(
        wait_until(Duration::from_secs(10), || {
            (0..workers).all(|i| dir.join(format!("worker-{i}.sock")).exists())
        }),
        "admin sockets in {}: {:?}",
        dir.display(),
        std::fs::read_dir(&dir).map(|d| d.count())
    );
}

#[test]
fn sessions_lists_each_session_with_user_backend_and_working_directory() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    wait_admin_socket(&gate, 1);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("CWD /pub").0, 250);
    let mut other = Ftp::connect(gate.addr());
    let listed = sessions(&gate);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let mine = listed
        .iter()
        .find(|s| s["client"] == c.local_addr().to_string())
        .expect("the logged-in session is listed");
    assert_eq!(mine["user"], "anonymous");
    assert_eq!(mine["backend"], "vsftpd");
    assert_eq!(mine["server"], vs.addr().to_string());
    assert_eq!(mine["cwd"], "/pub");
    assert!(mine["transfer"].is_null());
    let waiting = listed
        .iter()
        .find(|s| s["client"] == other.local_addr().to_string())
        .expect("the session before login is listed");
    assert!(waiting["user"].is_null());
    // The id is the one its audit events carry.
    let events = gate.audit_events();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "login" && e["session"] == mine["id"]),
        "{events:?}"
    );
    let table = ftpgate(&gate, &["sessions"]);
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains("anonymous"), "{table}");
    assert!(table.contains("/pub"), "{table}");
    assert_eq!(other.cmd("QUIT").0, 221);
    assert_eq!(c.cmd("QUIT").0, 221);
}

/// A 4 MiB download of /pub/slow.bin held to 512 KiB/s, read until `at_least` bytes came:
/// the backend, the gateway, the control connection, the data connection and the bytes read.
fn slow_download(at_least: usize) -> (Vsftpd, Ftpgate, Ftp, std::net::TcpStream, usize) {
    let vs = Vsftpd::start();
    vs.put_file("pub/slow.bin", &random_bytes(4 * 1024 * 1024, 5));
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["users", "anonymous", "limits", "rate"], json!("512KiB/s"))
        .start();
    wait_admin_socket(&gate, 1);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut data = c.pasv_connect();
    c.send(b"RETR /pub/slow.bin\r\n");
    assert_eq!(c.read_reply().0, 150);
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < at_least {
        let n = data.read(&mut buf).expect("data");
        assert!(n > 0, "the data connection ended early");
        got += n;
    }
    (vs, gate, c, data, got)
}

#[test]
fn a_transfer_in_flight_shows_its_path_and_bytes() {
    let (_vs, gate, _c, _data, _got) = slow_download(256 * 1024);
    let listed = sessions(&gate);
    let transfer = &listed[0]["transfer"];
    assert_eq!(transfer["verb"], "RETR", "{listed:?}");
    assert_eq!(transfer["path"], "/pub/slow.bin");
    assert_eq!(transfer["direction"], "download");
    let bytes = transfer["bytes"].as_u64().expect("bytes");
    assert!((128 * 1024..4 * 1024 * 1024).contains(&bytes), "{bytes}");
    assert!(transfer["rate"].as_u64().expect("rate") > 0);
}

#[test]
fn kill_closes_one_session_with_421_and_leaves_the_others() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    wait_admin_socket(&gate, 1);
    let mut victim = Ftp::connect(gate.addr());
    victim.login_ok("anonymous", "x");
    let mut bystander = Ftp::connect(gate.addr());
    bystander.login_ok("ftp", "x");
    let listed = sessions(&gate);
    let id = listed
        .iter()
        .find(|s| s["user"] == "anonymous")
        .and_then(|s| s["id"].as_str())
        .expect("victim listed")
        .to_owned();
    let out = ftpgate(&gate, &["kill", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "killed 1 session\n");
    assert_eq!(victim.read_reply().0, 421);
    assert_eq!(victim.read_to_eof(Duration::from_secs(5)), "");
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter()
            .any(|e| e["event"] == "session_end" && e["session"] == id.as_str())
    });
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "session_end" && e["session"] == id.as_str())
    );
    assert_eq!(bystander.cmd("NOOP").0, 200);
    // An id nobody has: nothing killed, exit 1.
    let out = ftpgate(&gate, &["kill", "no-such-session"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "killed 0 sessions\n");
    assert_eq!(sessions(&gate).len(), 1);
}

/// `ftpgate kill` on a session with a download in flight: the transfer is answered 426
/// (RFC 959: the data connection closed, the transfer aborted), then the session 421; the
/// audit trail has the transfer, cut by the kill, and the session's end.
#[test]
fn kill_ends_a_transfer_in_flight_with_426_and_records_it() {
    let (_vs, gate, mut c, mut data, got) = slow_download(128 * 1024);
    let id = sessions(&gate)[0]["id"].as_str().expect("id").to_owned();
    let out = ftpgate(&gate, &["kill", &id]);
    assert!(out.status.success(), "{out:?}");
    let (code, text) = c.read_reply();
    assert_eq!(code, 426, "{text}");
    assert_eq!(c.read_reply().0, 421);
    assert_eq!(c.read_to_eof(Duration::from_secs(5)), "");
    // The data connection is closed too, short of the file.
    data.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    assert!(got + rest.len() < 4 * 1024 * 1024);
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter()
            .any(|e| e["event"] == "session_end" && e["session"] == id.as_str())
    });
    let transfer = events
        .iter()
        .find(|e| e["event"] == "transfer" && e["session"] == id.as_str())
        .expect("the transfer event");
    assert_eq!(transfer["result"], "killed", "{transfer}");
    assert_eq!(transfer["path"], "/pub/slow.bin");
    let bytes = transfer["bytes"].as_u64().expect("bytes");
    assert!(bytes >= got as u64 && bytes < 4 * 1024 * 1024, "{bytes}");
    let retr = events
        .iter()
        .find(|e| e["event"] == "command" && e["verb"] == "RETR")
        .expect("the RETR command event");
    assert_eq!(retr["reply"], 426, "{retr}");
    let end = events
        .iter()
        .find(|e| e["event"] == "session_end" && e["session"] == id.as_str())
        .expect("session_end");
    assert_eq!(end["reason"], "killed");
}

#[test]
fn kill_user_closes_every_session_of_that_user() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    wait_admin_socket(&gate, 1);
    let mut a = Ftp::connect(gate.addr());
    a.login_ok("ftp", "x");
    let mut b = Ftp::connect(gate.addr());
    b.login_ok("ftp", "x");
    let mut other = Ftp::connect(gate.addr());
    other.login_ok("anonymous", "x");
    let out = ftpgate(&gate, &["kill", "--user", "ftp"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "killed 2 sessions\n");
    assert_eq!(a.read_reply().0, 421);
    assert_eq!(b.read_reply().0, 421);
    assert_eq!(other.cmd("NOOP").0, 200);
    assert!(wait_until(Duration::from_secs(5), || sessions(&gate).len() == 1));
}

#[test]
fn drain_answers_new_connections_421_until_resume() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    wait_admin_socket(&gate, 1);
    let mut before = Ftp::connect(gate.addr());
    before.login_ok("anonymous", "x");
    let out = ftpgate(&gate, &["drain"]);
    assert!(out.status.success(), "{out:?}");
    let mut refused = Ftp::connect_raw(gate.addr());
    assert_eq!(refused.read_reply().0, 421);
    // The session in flight goes on.
    assert_eq!(before.cmd("NOOP").0, 200);
    let table = String::from_utf8_lossy(&ftpgate(&gate, &["sessions"]).stdout).into_owned();
    assert!(table.contains("draining"), "{table}");
    let out = ftpgate(&gate, &["resume"]);
    assert!(out.status.success(), "{out:?}");
    let mut after = Ftp::connect(gate.addr());
    after.login_ok("anonymous", "x");
    assert_eq!(after.cmd("QUIT").0, 221);
}

#[test]
fn the_admin_socket_is_the_service_users_alone() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    wait_admin_socket(&gate, 1);
    let dir = gate.admin_dir();
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("worker-0.sock")), 0o600);
}

#[test]
fn every_worker_answers_and_the_listing_merges_them() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .workers(2)
        .start();
    wait_admin_socket(&gate, 2);
    let mut clients: Vec<Ftp> = (0..6).map(|_| Ftp::connect(gate.addr())).collect();
    for c in &mut clients {
        c.login_ok("anonymous", "x");
    }
    let listed = sessions(&gate);
    assert_eq!(listed.len(), 6, "{listed:?}");
    for c in &clients {
        assert!(
            listed
                .iter()
                .any(|s| s["client"] == c.local_addr().to_string())
        );
    }
}

/// A local process that opens admin connections and sends nothing holds at most
/// MAX_ADMIN_CONNECTIONS of them, each for at most ADMIN_TIMEOUT_MS; the gateway's sessions
/// are not touched and the admin socket answers again afterwards.
#[test]
fn silent_admin_connections_are_bounded_in_number_and_time() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    wait_admin_socket(&gate, 1);
    let socket = gate.admin_dir().join("worker-0.sock");
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let extra = 4;
    let started = Instant::now();
    let mut held: Vec<UnixStream> = (0..MAX_ADMIN_CONNECTIONS + extra)
        .map(|_| UnixStream::connect(&socket).expect("connect"))
        .collect();
    // The ones beyond the bound are closed at once: end of file well before the timeout.
    let closed_early = |s: &mut UnixStream| {
        s.set_read_timeout(Some(Duration::from_millis(ADMIN_TIMEOUT_MS / 2)))
            .expect("timeout");
        let mut b = [0u8; 1];
        matches!(s.read(&mut b), Ok(0) | Err(_))
            && started.elapsed() < Duration::from_millis(ADMIN_TIMEOUT_MS)
    };
    let mut early = 0;
    for s in held.iter_mut().skip(MAX_ADMIN_CONNECTIONS) {
        if closed_early(s) {
            early += 1;
        }
    }
    assert_eq!(early, extra);
    // The sessions go on meanwhile.
    assert_eq!(c.cmd("NOOP").0, 200);
    // The held ones are closed at the timeout (end of file), not before half of it.
    for s in held.iter_mut().take(MAX_ADMIN_CONNECTIONS) {
        s.set_read_timeout(Some(Duration::from_millis(ADMIN_TIMEOUT_MS * 3)))
            .expect("timeout");
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).expect("eof"), 0);
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(ADMIN_TIMEOUT_MS / 2),
        "closed after {waited:?}"
    );
    // And the admin socket answers again.
    assert_eq!(sessions(&gate).len(), 1);
    assert_eq!(c.cmd("NOOP").0, 200);
}

#[test]
fn an_oversized_or_unknown_request_gets_an_error_reply() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::for_vsftpd(&vs);
    wait_admin_socket(&gate, 1);
    let socket = gate.admin_dir().join("worker-0.sock");
    let ask = |request: &[u8]| -> Value {
        let mut s = UnixStream::connect(&socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request).expect("send");
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).expect("reply");
        serde_json::from_slice(&reply).expect("a JSON reply")
    };
    let mut long = vec![b'k'; MAX_ADMIN_REQUEST_BYTES + 100];
    long.push(b'\n');
    let reply = ask(&long);
    let error = reply["error"].as_str().expect("error");
    assert!(error.contains("longer than"), "{reply}");
    let reply = ask(b"reboot\n");
    assert_eq!(reply["error"], "unknown request \"reboot\"");
    let reply = ask(b"kill\n");
    assert_eq!(reply["error"], "kill needs an argument");
    assert_eq!(sessions(&gate).len(), 0);
}
