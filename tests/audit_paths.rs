//! Full paths in the audit trail: ftpgate learns the backend's working directory with its own
//! PWD after login (never shown to the client), follows successful CWD/CDUP, and logs every
//! command and transfer that names a file or folder with the resolved path. After each CWD
//! the client asks the backend itself (PWD) to prove that the path ftpgate computed is where
//! the backend really is.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// The events of `user`'s (only) successful session, once its session_end is written.
fn session_of(gate: &Ftpgate, user: &str) -> Vec<Value> {
    let find = |events: &[Value]| -> Option<Vec<Value>> {
        let session = events
            .iter()
            .find(|e| e["event"] == "login" && e["user"] == user && e["result"] == "ok")?
            .get("session")?
            .clone();
        let ours: Vec<Value> = events
            .iter()
            .filter(|e| e["session"] == session)
            .cloned()
            .collect();
        ours.iter()
            .any(|e| e["event"] == "session_end")
            .then_some(ours)
    };
    let all = gate.wait_audit(WAIT, |events| find(events).is_some());
    for line in gate.audit_lines() {
        assert_unique_keys(&line);
    }
    find(&all).unwrap_or_default()
}

/// The command and transfer events after the login, in order, as (event, verb, arg, path or
/// "-").
fn path_events(events: &[Value]) -> Vec<(String, String, String, String)> {
    events
        .iter()
        .skip_while(|e| e["event"] != "login")
        .filter(|e| e["event"] == "command" || e["event"] == "transfer")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
            (s("event"), s("verb"), s("arg"), s("path"))
        })
        .collect()
}

fn ev(event: &str, verb: &str, arg: &str, path: &str) -> (String, String, String, String) {
    (
        event.to_string(),
        verb.to_string(),
        arg.to_string(),
        path.to_string(),
    )
}

/// Sends `CWD arg` (must get 250), then PWD (the backend's own answer, which must be `want`).
fn cwd(c: &mut Ftp, arg: &str, want: &str) {
    let (code, text) = c.cmd(&format!("CWD {arg}"));
    assert_eq!(code, 250, "CWD {arg}: {text}");
    pwd_is(c, want);
}

fn pwd_is(c: &mut Ftp, want: &str) {
    let (code, text) = c.cmd("PWD");
    assert_eq!(code, 257, "PWD: {text}");
    assert!(
        text.contains(&format!("\"{want}\"")),
        "the backend is in {text}, ftpgate should log {want}"
    );
}

fn mkdir_for_ftp(path: &std::path::Path) {
    fs::create_dir_all(path).expect("mkdir");
    if let Some((uid, gid)) = user_ids("ftp") {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

#[test]
fn vsftpd_session_paths_follow_cwd_cdup_and_normalisation() {
    let vs = Vsftpd::start();
    mkdir_for_ftp(&vs.pub_dir().join("in/2026"));
    mkdir_for_ftp(&vs.pub_dir().join("2026"));
    let data = random_bytes(4321, 7);
    vs.put_file("pub/in/2026/file.csv", &data);
    // A file of another size under /pub/2026: the SIZE reply proves where the backend is.
    vs.put_file("pub/2026/file.csv", b"other");
    let gate = Ftpgate::for_vsftpd(&vs);

    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    pwd_is(&mut c, "/");
    assert_eq!(c.cmd("TYPE I").0, 200);
    cwd(&mut c, "/pub", "/pub");
    cwd(&mut c, "in/2026", "/pub/in/2026");
    assert_eq!(c.retr("file.csv"), data);
    let (code, text) = c.cmd("CDUP");
    assert_eq!(code, 250, "CDUP: {text}");
    pwd_is(&mut c, "/pub/in");
    // A failed CWD leaves the directory where it was.
    assert_eq!(c.cmd("CWD nowhere").0, 550);
    pwd_is(&mut c, "/pub/in");
    cwd(&mut c, "../2026/./", "/pub/2026");
    let (code, text) = c.cmd("SIZE file.csv");
    assert_eq!((code, text.as_str()), (213, "213 5"), "SIZE in /pub/2026");
    cwd(&mut c, "/pub//in", "/pub/in");
    let (code, listing) = c.list("LIST 2026");
    assert_eq!(code, 226);
    assert!(listing.contains("file.csv"), "{listing}");
    let (code, listing) = c.list("LIST -la");
    assert_eq!(code, 226);
    assert!(listing.contains("2026"), "{listing}");
    cwd(&mut c, "../../..", "/");
    assert_eq!(c.cmd("QUIT").0, 221);
    drop(c);
    if gate.is_direct() {
        return;
    }

    let events = session_of(&gate, "anonymous");
    assert_eq!(
        path_events(&events),
        vec![
            ev("command", "PWD", "", "-"),
            ev("command", "TYPE", "I", "-"),
            ev("command", "CWD", "/pub", "/pub"),
            ev("command", "PWD", "", "-"),
            ev("command", "CWD", "in/2026", "/pub/in/2026"),
            ev("command", "PWD", "", "-"),
            ev("command", "PASV", "", "-"),
            ev("command", "RETR", "file.csv", "/pub/in/2026/file.csv"),
            ev("transfer", "RETR", "file.csv", "/pub/in/2026/file.csv"),
            ev("command", "CDUP", "", "/pub/in"),
            ev("command", "PWD", "", "-"),
            ev("command", "CWD", "nowhere", "/pub/in/nowhere"),
            ev("command", "PWD", "", "-"),
            ev("command", "CWD", "../2026/./", "/pub/2026"),
            ev("command", "PWD", "", "-"),
            ev("command", "SIZE", "file.csv", "/pub/2026/file.csv"),
            ev("command", "CWD", "/pub//in", "/pub/in"),
            ev("command", "PWD", "", "-"),
            ev("command", "PASV", "", "-"),
            ev("command", "LIST", "2026", "/pub/in/2026"),
            ev("transfer", "LIST", "2026", "/pub/in/2026"),
            ev("command", "PASV", "", "-"),
            ev("command", "LIST", "-la", "/pub/in"),
            ev("transfer", "LIST", "-la", "/pub/in"),
            ev("command", "CWD", "../../..", "/"),
            ev("command", "PWD", "", "-"),
            ev("command", "QUIT", "", "-"),
        ],
        "ftpgate's own PWD after login is not a client command and is not in the trail"
    );
    // The failed CWD is recorded with the backend's refusal.
    let failed = events
        .iter()
        .find(|e| e["event"] == "command" && e["arg"] == "nowhere")
        .expect("the failed CWD");
    assert_eq!(failed["reply"], 550, "{failed}");
    // The gateway's own PWD reached the backend: one PWD more than the client sent.
    let log = vs.log();
    let pwds = Vsftpd::commands(&log)
        .iter()
        .filter(|c| c.as_str() == "PWD")
        .count();
    assert_eq!(pwds, 9, "8 from the client, 1 from ftpgate:\n{log}");
}

#[test]
fn pyftpdlib_session_paths_for_uploads_and_mlsd() {
    let py = Pyftpdlib::start();
    fs::create_dir_all(py.root().join("out/2026")).expect("mkdir");
    fs::write(py.root().join("out/2026/a.txt"), b"aaa").expect("write");
    let gate = Ftpgate::for_pyftpdlib(&py);

    let (user, pass) = Pyftpdlib::ALICE;
    let mut c = Ftp::connect(gate.addr());
    c.login_ok(user, pass);
    assert_eq!(c.cmd("TYPE I").0, 200);
    cwd(&mut c, "out", "/out");
    c.stor("2026/up.bin", b"uploaded");
    cwd(&mut c, "./2026//", "/out/2026");
    let (code, listing) = c.list("MLSD");
    assert_eq!(code, 226);
    assert!(listing.contains("up.bin"), "{listing}");
    let (code, text) = c.cmd("MLST a.txt");
    assert_eq!(code, 250, "{text}");
    assert_eq!(c.cmd("RNFR up.bin").0, 350);
    assert_eq!(c.cmd("RNTO ../moved.bin").0, 250);
    assert_eq!(c.cmd("XCUP").0, 250);
    pwd_is(&mut c, "/out");
    assert_eq!(c.cmd("DELE /out/moved.bin").0, 250);
    assert_eq!(c.cmd("QUIT").0, 221);
    drop(c);
    assert!(py.root().join("out/2026/a.txt").exists());
    assert!(!py.root().join("out/moved.bin").exists());
    if gate.is_direct() {
        return;
    }

    let events = session_of(&gate, user);
    let got: Vec<_> = path_events(&events)
        .into_iter()
        .filter(|(_, verb, _, _)| !matches!(verb.as_str(), "PWD" | "PASV" | "TYPE" | "QUIT"))
        .collect();
    assert_eq!(
        got,
        vec![
            ev("command", "CWD", "out", "/out"),
            ev("command", "STOR", "2026/up.bin", "/out/2026/up.bin"),
            ev("transfer", "STOR", "2026/up.bin", "/out/2026/up.bin"),
            ev("command", "CWD", "./2026//", "/out/2026"),
            ev("command", "MLSD", "", "/out/2026"),
            ev("transfer", "MLSD", "", "/out/2026"),
            ev("command", "MLST", "a.txt", "/out/2026/a.txt"),
            ev("command", "RNFR", "up.bin", "/out/2026/up.bin"),
            ev("command", "RNTO", "../moved.bin", "/out/moved.bin"),
            ev("command", "CDUP", "", "/out"),
            ev("command", "DELE", "/out/moved.bin", "/out/moved.bin"),
        ]
    );
}

/// A backend whose login directory is not `/` (a non-chrooted account): answers USER/PASS,
/// PWD with `"/home/edi"`, any CWD with 250 and SIZE with 213.
#[test]
fn a_login_directory_other_than_the_root_prefixes_every_path() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind fake backend");
    let backend = listener.local_addr().expect("addr");
    let handle = thread::spawn(move || {
        let stream = accept_within(&listener, Duration::from_secs(30));
        let mut w = stream.try_clone().expect("clone");
        let mut r = BufReader::new(stream);
        let _ = w.write_all(b"220 fake\r\n");
        let mut seen = Vec::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return seen,
                Ok(_) => {}
            }
            let line = line.trim_end().to_string();
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "USER" => b"331 pw\r\n",
                "PASS" => b"230 in\r\n",
                "PWD" => b"257 \"/home/edi\" is the current directory\r\n",
                "CWD" => b"250 ok\r\n",
                "SIZE" => b"213 42\r\n",
                "QUIT" => b"221 bye\r\n",
                _ => b"502 no\r\n",
            };
            seen.push(line);
            if w.write_all(reply).is_err() {
                return seen;
            }
        }
    });
    let gate = Ftpgate::builder()
        .backend("fake", backend)
        .standard_roles()
        .user("edi", "read-only", "fake")
        // The fake serves one connection: no FEAT probe may take it.
        .set(&["backends", "fake", "feature_probe"], Value::Bool(false))
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("edi", "pw");
    assert_eq!(c.cmd("SIZE report.csv").0, 213);
    assert_eq!(c.cmd("CWD ../shared/in").0, 250);
    assert_eq!(c.cmd("SIZE x.csv").0, 213);
    assert_eq!(c.cmd("QUIT").0, 221);
    drop(c);
    let seen = handle.join().expect("fake backend");
    if gate.is_direct() {
        return;
    }
    assert_eq!(
        seen,
        [
            "USER edi",
            "PASS pw",
            "PWD",
            "SIZE report.csv",
            "CWD ../shared/in",
            "SIZE x.csv",
            "QUIT"
        ],
        "ftpgate's PWD goes right after the login"
    );
    let events = session_of(&gate, "edi");
    let got: Vec<_> = path_events(&events)
        .into_iter()
        .filter(|(_, verb, _, _)| verb != "QUIT")
        .collect();
    assert_eq!(
        got,
        vec![
            ev("command", "SIZE", "report.csv", "/home/edi/report.csv"),
            ev("command", "CWD", "../shared/in", "/home/shared/in"),
            ev("command", "SIZE", "x.csv", "/home/shared/in/x.csv"),
        ]
    );
}
