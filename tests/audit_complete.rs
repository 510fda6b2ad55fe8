//! The audit is complete whatever ends a transfer: fault injection over loopback, each case
//! checking the one `transfer` event against what the client saw (bytes, SHA-256 of the
//! received prefix) and the `session_end` that follows (reason, prompt).
//!
//! The session time limit during a download, with `timeouts.session_during_transfer`
//! "finish" (the default) and "cut"; a stalled download (the client stops reading) cut by
//! the idle timeout; the client vanishing mid-transfer (noticed at once, not at a timeout);
//! the backend's session process killed mid-transfer; ABOR; an operator's `ftpgate kill`.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

/// A gate in front of `vs` whose user `ftp` reads at `rate`, with the given timeouts.
fn slow_gate(vs: &Vsftpd, rate: &str, idle: u64, session: u64, during: &str) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .timeouts(30, idle, session)
        .set(&["users", "ftp", "limits", "rate"], json!(rate))
        .set(
            &["users", "ftp", "timeouts", "session_during_transfer"],
            json!(during),
        )
        .start()
}

/// Starts `RETR path` over PASV and returns the data connection (the 150 read).
fn start_download(c: &mut Ftp, path: &str) -> TcpStream {
    assert_eq!(c.cmd("TYPE I").0, 200);
    let data = c.pasv_connect();
    c.send(format!("RETR {path}\r\n").as_bytes());
    let (code, text) = c.read_reply();
    assert_eq!(code, 150, "{text}");
    data
}

/// Reads the data connection to its end (or `limit` bytes); what came.
fn read_data(data: &mut TcpStream, limit: usize) -> Vec<u8> {
    data.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < limit {
        match data.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// The one transfer event and the session_end of the session whose client port is `me`.
fn ends(gate: &Ftpgate, me: &str) -> (Value, Value) {
    let events = gate.wait_audit(Duration::from_secs(30), |ev| {
        ev.iter()
            .any(|e| e["event"] == "session_end" && e["client"] == me)
    });
    let mine: Vec<&Value> = events.iter().filter(|e| e["client"] == me).collect();
    let transfers: Vec<&&Value> = mine.iter().filter(|e| e["event"] == "transfer").collect();
    assert_eq!(transfers.len(), 1, "exactly one transfer event: {mine:?}");
    let end = mine
        .iter()
        .find(|e| e["event"] == "session_end")
        .expect("session_end");
    // The transfer command has its command event too.
    let verb = &transfers[0]["verb"];
    assert!(
        mine.iter()
            .any(|e| e["event"] == "command" && &e["verb"] == verb),
        "{mine:?}"
    );
    ((*transfers[0]).clone(), (*end).clone())
}

/// `session_end`'s totals add up: the data is the transfer's, control and data make the
/// whole, and the transfer is counted under its result.
fn assert_totals(end: &Value, transfer: &Value) {
    let n = |k: &str| end[k].as_u64().unwrap_or_else(|| panic!("{k} in {end}"));
    assert_eq!(
        Some(n("data_bytes_out")),
        transfer["bytes"].as_u64(),
        "{end}"
    );
    assert_eq!(n("data_bytes_in"), 0, "{end}");
    assert_eq!(n("bytes_out"), n("control_bytes_out") + n("data_bytes_out"));
    assert_eq!(n("bytes_in"), n("control_bytes_in") + n("data_bytes_in"));
    assert!(
        n("control_bytes_in") > 0 && n("control_bytes_out") > 0,
        "{end}"
    );
    let result = transfer["result"].as_str().expect("result");
    assert_eq!(end["transfers"], json!({ result: 1 }), "{end}");
}

fn assert_prefix(transfer: &Value, got: &[u8], file: &[u8]) {
    assert_eq!(&file[..got.len()], got, "what came is a prefix of the file");
    assert_eq!(
        transfer["bytes"].as_u64(),
        Some(got.len() as u64),
        "{transfer}"
    );
    assert_eq!(
        transfer["sha256"].as_str(),
        Some(sha256_bytes(got).as_str()),
        "{transfer}"
    );
}

#[test]
fn the_session_limit_lets_a_download_finish_by_default_then_closes() {
    let vs = Vsftpd::start();
    let file = random_bytes(3 * MIB, 1);
    vs.put_file("pub/f.bin", &file);
    let gate = slow_gate(&vs, "1MiB/s", 60, 1, "finish");
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("ftp", "x");
    let mut data = start_download(&mut c, "/pub/f.bin");
    let got = read_data(&mut data, usize::MAX);
    assert_eq!(sha256_bytes(&got), sha256_bytes(&file), "the whole file");
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(c.read_reply().0, 421);
    let (transfer, end) = ends(&gate, &me);
    assert_eq!(transfer["result"], "ok");
    assert_prefix(&transfer, &got, &file);
    assert_eq!(end["reason"], "session_timeout");
    assert_totals(&end, &transfer);
}

#[test]
fn the_session_limit_cuts_a_download_when_told_and_records_the_prefix() {
    let vs = Vsftpd::start();
    let file = random_bytes(4 * MIB, 2);
    vs.put_file("pub/f.bin", &file);
    let gate = slow_gate(&vs, "1MiB/s", 60, 1, "cut");
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("ftp", "x");
    let started = Instant::now();
    let mut data = start_download(&mut c, "/pub/f.bin");
    let got = read_data(&mut data, usize::MAX);
    assert!(got.len() < file.len(), "cut: {} bytes", got.len());
    assert!(started.elapsed() < Duration::from_secs(4));
    let (transfer, end) = ends(&gate, &me);
    assert_eq!(transfer["result"], "timeout");
    assert_prefix(&transfer, &got, &file);
    assert_eq!(end["reason"], "session_timeout");
    assert_totals(&end, &transfer);
}

#[test]
fn a_download_the_client_stops_reading_is_cut_at_the_idle_timeout() {
    let vs = Vsftpd::start();
    let file = random_bytes(32 * MIB, 3);
    vs.put_file("pub/f.bin", &file);
    let gate = slow_gate(&vs, "1GiB/s", 2, 600, "finish");
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("ftp", "x");
    let mut data = start_download(&mut c, "/pub/f.bin");
    // Read a little, then nothing: the socket buffers fill and the relay stalls.
    let first = read_data(&mut data, 256 * 1024);
    let started = Instant::now();
    let (transfer, end) = ends(&gate, &me);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "cut after {:?}",
        started.elapsed()
    );
    assert_eq!(transfer["result"], "timeout");
    assert_eq!(end["reason"], "idle_timeout");
    // What ftpgate sent is more than the client read (the buffers), less than the file.
    let sent = transfer["bytes"].as_u64().expect("bytes") as usize;
    assert!(sent >= first.len() && sent < file.len(), "{sent}");
    let mut rest = first;
    rest.extend(read_data(&mut data, usize::MAX));
    assert_prefix(&transfer, &rest, &file);
}

#[test]
fn a_client_that_vanishes_mid_download_is_noticed_at_once() {
    let vs = Vsftpd::start();
    let file = random_bytes(8 * MIB, 4);
    vs.put_file("pub/f.bin", &file);
    let gate = slow_gate(&vs, "1MiB/s", 600, 600, "finish");
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("ftp", "x");
    let mut data = start_download(&mut c, "/pub/f.bin");
    let got = read_data(&mut data, 300 * 1024);
    let started = Instant::now();
    drop(data);
    drop(c);
    let (transfer, end) = ends(&gate, &me);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(transfer["result"], "client_gone", "{transfer}");
    let sent = transfer["bytes"].as_u64().expect("bytes") as usize;
    assert!(sent >= got.len() && sent < file.len(), "{sent}");
    assert_eq!(end["reason"], "client_closed");
    assert_totals(&end, &transfer);
}

/// The vsftpd processes serving sessions: the children of its listener process.
fn vsftpd_session_pids(vs: &Vsftpd) -> Vec<u32> {
    let out = Command::new("pgrep")
        .arg("-P")
        .arg(vs.pid().to_string())
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn a_backend_session_killed_mid_download_is_recorded_as_backend_gone() {
    let vs = Vsftpd::start();
    let file = random_bytes(8 * MIB, 5);
    vs.put_file("pub/f.bin", &file);
    let gate = slow_gate(&vs, "1MiB/s", 600, 600, "finish");
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("ftp", "x");
    let mut data = start_download(&mut c, "/pub/f.bin");
    let mut got = read_data(&mut data, 300 * 1024);
    let pids = vsftpd_session_pids(&vs);
    assert!(!pids.is_empty(), "vsftpd serves the session in a child");
    // SIGKILL the backend session's processes at once: vsftpd forks twice per session (a
    // privileged child and the grandchild that serves the user). The child goes first, so
    // it cannot report its grandchild's death ("500 OOPS: child died") on the control
    // connection: the backend is gone, it did not answer.
    let mut victims: Vec<String> = pids.iter().map(u32::to_string).collect();
    for pid in &pids {
        let out = Command::new("pgrep")
            .arg("-P")
            .arg(pid.to_string())
            .output()
            .expect("pgrep");
        victims.extend(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned),
        );
    }
    let status = Command::new("kill")
        .arg("-9")
        .args(&victims)
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 {victims:?}");
    got.extend(read_data(&mut data, usize::MAX));
    let (transfer, end) = ends(&gate, &me);
    assert_eq!(transfer["result"], "backend_gone", "{transfer}");
    assert_prefix(&transfer, &got, &file);
    assert_eq!(end["reason"], "backend_closed");
    assert_totals(&end, &transfer);
}

#[test]
fn abor_and_an_operators_kill_each_say_so() {
    let vs = Vsftpd::start();
    let file = random_bytes(8 * MIB, 6);
    vs.put_file("pub/f.bin", &file);
    let gate = slow_gate(&vs, "1MiB/s", 600, 600, "finish");

    let mut c = Ftp::connect(gate.addr());
    let aborter = c.local_addr().to_string();
    c.login_ok("ftp", "x");
    let mut data = start_download(&mut c, "/pub/f.bin");
    let mut got = read_data(&mut data, 200 * 1024);
    c.send(b"ABOR\r\n");
    got.extend(read_data(&mut data, usize::MAX));
    // RFC 959: 426 (or 226, if it had all gone) for the transfer, then 225/226 for ABOR.
    let first = c.read_reply().0;
    assert!(matches!(first, 426 | 226), "{first}");
    let second = c.read_reply().0;
    assert!(matches!(second, 225 | 226), "{second}");
    assert_eq!(c.cmd("QUIT").0, 221);
    let (transfer, _) = ends(&gate, &aborter);
    assert_eq!(transfer["result"], "aborted");
    assert_prefix(&transfer, &got, &file);

    let mut k = Ftp::connect(gate.addr());
    let killed = k.local_addr().to_string();
    k.login_ok("ftp", "x");
    let mut data = start_download(&mut k, "/pub/f.bin");
    let mut got = read_data(&mut data, 200 * 1024);
    let id = gate
        .audit_events()
        .iter()
        .find(|e| e["event"] == "session_start" && e["client"] == killed.as_str())
        .and_then(|e| e["session"].as_str().map(str::to_owned))
        .expect("the session's id");
    let out = Command::new(env!("CARGO_BIN_EXE_ftpgate"))
        .arg("kill")
        .arg("--admin")
        .arg(gate.admin_dir())
        .arg(&id)
        .output()
        .expect("ftpgate kill");
    assert!(out.status.success(), "{out:?}");
    got.extend(read_data(&mut data, usize::MAX));
    assert_eq!(k.read_reply().0, 426, "the transfer's answer first");
    assert_eq!(k.read_reply().0, 421);
    let (transfer, end) = ends(&gate, &killed);
    assert_eq!(transfer["result"], "killed");
    assert_prefix(&transfer, &got, &file);
    assert_eq!(end["reason"], "killed");
    assert_totals(&end, &transfer);
}

/// The idle time during a transfer runs from the last byte that moved: a client that reads
/// slowly but steadily (on the spliced path: no digest, no rate limit) outlives it.
#[test]
fn a_slow_but_moving_download_outlives_the_idle_timeout() {
    let vs = Vsftpd::start();
    let file = random_bytes(16 * MIB, 7);
    vs.put_file("pub/f.bin", &file);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .timeouts(30, 1, 600)
        .set(&["audit", "digest"], json!("none"))
        .start();
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("ftp", "x");
    let mut data = start_download(&mut c, "/pub/f.bin");
    // About 3.5 s of reading, a piece every 100 ms: longer than the idle time in all, never
    // idle that long.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3500) {
        let n = data.read(&mut buf).expect("data");
        assert!(n > 0, "the transfer was cut after {:?}", started.elapsed());
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(100));
    }
    got.extend(read_data(&mut data, usize::MAX));
    // The reply and QUIT come first: the idle time (1 s) runs again from the 226, and hashing
    // 16 MiB in a debug build of the tests can take longer than that.
    assert_eq!(c.read_reply().0, 226);
    assert_eq!(c.cmd("QUIT").0, 221);
    assert_eq!(got.len(), file.len(), "{:?}", gate.audit_events());
    assert_eq!(sha256_bytes(&got), sha256_bytes(&file));
    let (transfer, _) = ends(&gate, &me);
    assert_eq!(transfer["result"], "ok");
    assert_eq!(transfer["digest"], "none");
}

/// An upload the client stops feeding (its data connection open) is cut at the idle time:
/// one transfer event with what crossed, the backend keeps exactly that.
#[test]
fn a_stalled_upload_is_cut_at_the_idle_timeout() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .timeouts(30, 2, 900)
        .start();
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut data = c.pasv_connect();
    let (code, text) = c.cmd("STOR /pub/stalled.bin");
    assert_eq!(code, 150, "{text}");
    let sent = random_bytes(100_000, 1405);
    std::io::Write::write_all(&mut data, &sent).expect("upload the first part");
    c.set_read_timeout(Duration::from_secs(30));
    let (code, text) = c.read_reply();
    assert_eq!(code, 426, "the transfer's answer first: {text}");
    let (code, text) = c.read_reply();
    assert_eq!(code, 421, "{text}");
    let (transfer, end) = ends(&gate, &me);
    assert_eq!(transfer["result"], "timeout", "{transfer}");
    assert_eq!(transfer["direction"], "upload");
    assert_eq!(transfer["bytes"].as_u64(), Some(sent.len() as u64));
    assert_eq!(
        transfer["sha256"].as_str(),
        Some(sha256_bytes(&sent).as_str())
    );
    assert_eq!(end["reason"], "idle_timeout");
    assert_eq!(end["data_bytes_in"].as_u64(), Some(sent.len() as u64));
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read(vs.pub_dir().join("stalled.bin"))
                .is_ok_and(|stored| sha256_bytes(&stored) == sha256_bytes(&sent))
        }),
        "the backend kept what crossed"
    );
    drop(data);
}

/// The pid of worker `index` of the gate whose supervisor is `supervisor`.
fn worker_pid(supervisor: u32, index: usize, count: usize) -> Option<u32> {
    let out = Command::new("pgrep")
        .arg("-P")
        .arg(supervisor.to_string())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&format!("{index}/{count}")))
        })
}

/// A worker killed with SIGKILL mid-transfer cannot write its events: the supervisor
/// records `worker_lost` with the sessions and transfers it carried, and starts another.
#[test]
fn a_worker_killed_mid_transfer_is_recorded_by_the_supervisor() {
    let vs = Vsftpd::start();
    let file = random_bytes(8 * MIB, 8);
    vs.put_file("pub/f.bin", &file);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .workers(2)
        .set(&["users", "ftp", "limits", "rate"], json!("1MiB/s"))
        .start();
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("ftp", "x");
    let mut data = start_download(&mut c, "/pub/f.bin");
    read_data(&mut data, 200 * 1024);
    let events = gate.audit_events();
    let worker = events
        .iter()
        .find(|e| e["event"] == "session_start" && e["client"] == me.as_str())
        .and_then(|e| e["worker"].as_u64())
        .expect("the session's worker") as usize;
    let pid = worker_pid(gate.pid().expect("pid"), worker, 2).expect("the worker's pid");
    let status = Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let events = gate.wait_audit(Duration::from_secs(20), |ev| {
        ev.iter().any(|e| e["event"] == "worker_lost")
    });
    let lost = events
        .iter()
        .find(|e| e["event"] == "worker_lost")
        .expect("worker_lost");
    assert_eq!(lost["worker"].as_u64(), Some(worker as u64), "{lost}");
    assert_eq!(lost["sessions"], 1, "{lost}");
    assert_eq!(lost["transfers"], 1, "{lost}");
    assert!(
        lost["status"].as_str().is_some_and(|s| s.contains("9")),
        "{lost}"
    );
    // The gateway goes on: a new session is served.
    let mut again = Ftp::connect(gate.addr());
    again.login_ok("ftp", "x");
    assert_eq!(again.cmd("QUIT").0, 221);
}

/// A protected upload whose client puts bytes that are no TLS record on the data connection
/// (a forged or broken record): the relay fails on TLS itself, result `tls_failed`, with
/// what crossed before it; the session goes on.
#[test]
fn a_broken_tls_record_on_the_data_connection_is_tls_failed() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .ftps()
        .start();
    let script = format!(
        "{PY_FTPS_REUSING}{}",
        r#"
import ftplib, os, ssl, sys, time
f = Reusing(context=ctx)
f.connect(sys.argv[1], int(sys.argv[2]), timeout=30)
f.login("anonymous", "x")
f.prot_p()
f.voidcmd("TYPE I")
conn = f.transfercmd("STOR /pub/broken.bin")
conn.sendall(b"a" * 5000)
# Until the backend has stored them (bounded wait on a condition, not a guess).
deadline = time.time() + 10
while time.time() < deadline:
    try:
        if os.path.getsize(sys.argv[3]) == 5000:
            break
    except OSError:
        pass
    time.sleep(0.02)
# An application-data record header and 32 bytes that no key encrypted.
os.write(conn.fileno(), b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
try:
    print(f.voidresp())
except ftplib.all_errors as e:
    print(e)
print(f.sendcmd("NOOP"))
"#
    );
    let addr = gate.addr();
    let stored = vs.pub_dir().join("broken.bin");
    let out = python(
        &script,
        &[
            &addr.ip().to_string(),
            &addr.port().to_string(),
            stored.to_str().expect("path"),
        ],
    );
    let stdout = out.stdout_str();
    assert!(stdout.contains("426"), "{out:?}");
    assert!(stdout.contains("200"), "the session goes on: {out:?}");
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| e["event"] == "transfer")
    });
    let t = events
        .iter()
        .find(|e| e["event"] == "transfer")
        .expect("transfer");
    assert_eq!(t["result"], "tls_failed", "{t}");
    assert_eq!(t["direction"], "upload");
    assert_eq!(t["bytes"], 5000, "{t}");
    assert_eq!(
        t["sha256"].as_str(),
        Some(sha256_bytes(&[b'a'; 5000]).as_str())
    );
}

/// The session limit with "cut" during an upload: one transfer event with result `timeout`
/// whose bytes and SHA-256 are exactly what the backend stored.
#[test]
fn the_session_limit_cuts_an_upload_when_told_and_the_backend_keeps_what_crossed() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .timeouts(30, 60, 1)
        .set(&["users", "anonymous", "limits", "rate"], json!("1MiB/s"))
        .set(
            &["users", "anonymous", "timeouts", "session_during_transfer"],
            json!("cut"),
        )
        .start();
    let mut c = Ftp::connect(gate.addr());
    let me = c.local_addr().to_string();
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut data = c.pasv_connect();
    let (code, text) = c.cmd("STOR /pub/cut.bin");
    assert_eq!(code, 150, "{text}");
    let file = random_bytes(8 * MIB, 9);
    // The write fails once ftpgate cuts the data connection.
    let _ = std::io::Write::write_all(&mut data, &file);
    c.set_read_timeout(Duration::from_secs(30));
    assert_eq!(c.read_reply().0, 426, "the transfer's answer first");
    assert_eq!(c.read_reply().0, 421);
    let (transfer, end) = ends(&gate, &me);
    assert_eq!(transfer["result"], "timeout", "{transfer}");
    assert_eq!(end["reason"], "session_timeout");
    let sent = transfer["bytes"].as_u64().expect("bytes") as usize;
    assert!(sent > 0 && sent < file.len(), "{sent}");
    assert_eq!(
        transfer["sha256"].as_str(),
        Some(sha256_bytes(&file[..sent]).as_str())
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read(vs.pub_dir().join("cut.bin"))
                .is_ok_and(|stored| stored.len() == sent && stored[..] == file[..sent])
        }),
        "the backend keeps exactly what crossed"
    );
}

/// A protected download whose client resets its TLS data connection (SO_LINGER 0): one
/// transfer event, `client_gone`, with the bytes ftpgate had sent; the session goes on.
#[test]
fn a_reset_tls_data_connection_is_client_gone_and_the_session_goes_on() {
    let vs = Vsftpd::start();
    vs.put_file("pub/big.bin", &random_bytes(16 * MIB, 10));
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["users", "anonymous", "limits", "rate"], json!("2MiB/s"))
        .ftps()
        .start();
    let script = format!(
        "{PY_FTPS_REUSING}{}",
        r#"
import ftplib, socket, ssl, struct, sys
f = Reusing(context=ctx)
f.connect(sys.argv[1], int(sys.argv[2]), timeout=30)
f.login("anonymous", "x")
f.prot_p()
f.voidcmd("TYPE I")
conn = f.transfercmd("RETR /pub/big.bin")
got = 0
while got < 256 * 1024:
    got += len(conn.recv(65536))
# A reset, not a close: no close_notify, no FIN.
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
try:
    print(f.voidresp())
except ftplib.all_errors as e:
    print(e)
print(f.sendcmd("NOOP"))
"#
    );
    let addr = gate.addr();
    let out = python(&script, &[&addr.ip().to_string(), &addr.port().to_string()]);
    let stdout = out.stdout_str();
    assert!(stdout.contains("426"), "{out:?}");
    assert!(stdout.contains("200"), "the session goes on: {out:?}");
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| e["event"] == "transfer")
    });
    let transfers: Vec<&Value> = events.iter().filter(|e| e["event"] == "transfer").collect();
    assert_eq!(transfers.len(), 1, "{events:?}");
    let t = transfers[0];
    assert_eq!(t["result"], "client_gone", "{t}");
    let bytes = t["bytes"].as_u64().expect("bytes");
    assert!((256 * 1024..16 * MIB as u64).contains(&bytes), "{t}");
    assert!(t["sha256"].is_string(), "{t}");
}
