//! The command policy, proved on the backend's side: the read-only user `ftp` is refused every
//! write (550 for file actions, 502 otherwise), the refused commands never reach vsftpd (its
//! protocol log) and nothing changes on its disk. Before login only the login itself gets
//! through, and an unknown user learns nothing and never causes a backend connection.

mod common;

use std::fs;
use std::io::Read;
use std::time::{Duration, Instant};

use common::*;

struct Setup {
    gate: Ftpgate,
    vs: Vsftpd,
}

fn setup() -> Setup {
    let vs = Vsftpd::start();
    vs.put_file("pub/a.txt", b"file a");
    vs.put_file("pub/b.txt", b"file b");
    let gate = Ftpgate::for_vsftpd(&vs);
    Setup { gate, vs }
}

impl Setup {
    fn read_only(&self) -> Ftp {
        let mut c = Ftp::connect(self.gate.addr());
        c.login_ok("ftp", "x");
        c
    }

    /// The files of the setup are untouched and nothing else appeared in pub/.
    fn assert_disk_unchanged(&self) {
        let pub_dir = self.vs.pub_dir();
        assert_eq!(fs::read(pub_dir.join("a.txt")).unwrap(), b"file a");
        assert_eq!(fs::read(pub_dir.join("b.txt")).unwrap(), b"file b");
        let mut names: Vec<String> = fs::read_dir(&pub_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.txt", "b.txt"], "pub/ changed");
    }

    /// After `barrier` (a forwarded command whose reply came back, so everything sent before it
    /// has been handled), vsftpd's log since `mark` shows this session but none of `verbs`.
    fn assert_never_forwarded(&self, mark: usize, verbs: &[&str]) {
        let log = self.vs.log_since(mark);
        assert!(
            Vsftpd::log_has_verb(&log, "PWD"),
            "the backend log does not show the session at all:\n{log}"
        );
        for verb in verbs {
            assert!(
                !Vsftpd::log_has_verb(&log, verb),
                "{verb} reached the backend:\n{log}"
            );
        }
    }
}

/// Logs in as `ftp`, sends each line, expects its code, then proves nothing reached vsftpd and
/// nothing changed on disk.
fn assert_refused(lines: &[(&str, u16)], verbs_never_forwarded: &[&str]) {
    let s = setup();
    let mark = s.vs.log_mark();
    let mut c = s.read_only();
    for (line, code) in lines {
        let (got, text) = c.cmd(line);
        assert_eq!(got, *code, "{line:?} -> {text}");
    }
    assert_eq!(c.cmd("PWD").0, 257, "barrier");
    s.assert_never_forwarded(mark, verbs_never_forwarded);
    s.assert_disk_unchanged();
    assert_eq!(c.cmd("QUIT").0, 221);
}

#[test]
fn stor_is_refused_with_550() {
    let s = setup();
    let mark = s.vs.log_mark();
    let mut c = s.read_only();
    assert_eq!(c.cmd("TYPE I").0, 200);
    // As a client does it: data connection first, then STOR.
    let mut data = c.pasv_connect();
    let (code, text) = c.cmd("STOR /pub/new.txt");
    assert_eq!(code, 550, "{text}");
    // Whatever the client then sends on the data connection must not land anywhere.
    let _ = std::io::Write::write_all(&mut data, b"must not be stored");
    drop(data);
    assert_eq!(c.cmd("PWD").0, 257);
    s.assert_never_forwarded(mark, &["STOR"]);
    s.assert_disk_unchanged();

    // curl's upload fails the same way.
    let local = temp_dir();
    let src = local.path().join("up.txt");
    fs::write(&src, b"curl upload").unwrap();
    let out = curl(&[
        "-u",
        "ftp:x",
        "-T",
        &src.to_string_lossy(),
        &ftp_url(s.gate.addr(), "/pub/curl.txt"),
    ]);
    assert!(!out.success(), "curl upload as read-only user succeeded");
    s.assert_disk_unchanged();
}

#[test]
fn dele_is_refused_with_550() {
    assert_refused(&[("DELE /pub/a.txt", 550)], &["DELE"]);
}

#[test]
fn lowercase_dele_is_normalised_and_refused() {
    assert_refused(
        &[("dele /pub/a.txt", 550), ("DeLe /pub/b.txt", 550)],
        &["DELE"],
    );
}

#[test]
fn rnfr_and_rnto_are_refused_with_550() {
    assert_refused(
        &[("RNFR /pub/a.txt", 550), ("RNTO /pub/c.txt", 550)],
        &["RNFR", "RNTO"],
    );
}

#[test]
fn mkd_is_refused_with_550() {
    assert_refused(&[("MKD /pub/newdir", 550)], &["MKD", "XMKD"]);
}

#[test]
fn xmkd_is_refused_like_mkd() {
    assert_refused(
        &[("XMKD /pub/newdir", 550), ("xmkd /pub/newdir2", 550)],
        &["MKD", "XMKD"],
    );
}

#[test]
fn other_writes_are_refused() {
    assert_refused(
        &[
            ("RMD /pub", 550),
            ("XRMD /pub", 550),
            ("APPE /pub/a.txt", 550),
            ("STOU", 550),
            ("SITE CHMOD 777 /pub/a.txt", 502),
        ],
        &["RMD", "XRMD", "APPE", "STOU", "SITE"],
    );
}

#[test]
fn unknown_command_is_502_and_not_forwarded() {
    assert_refused(&[("FOO bar", 502), ("XYZZY", 502)], &["FOO", "XYZZY"]);
}

#[test]
fn retr_then_dele_in_one_write() {
    let s = setup();
    let content = random_bytes(300_000, 1);
    s.vs.put_file("pub/a.txt", &content);
    let mark = s.vs.log_mark();
    let mut c = s.read_only();
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut data = c.pasv_connect();
    c.send(b"RETR /pub/a.txt\r\nDELE /pub/b.txt\r\n");
    let (code, text) = c.read_reply();
    assert!(matches!(code, 125 | 150), "RETR: {text}");
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(sha256_bytes(&got), sha256_bytes(&content), "RETR data");
    assert_eq!(c.read_reply().0, 226, "RETR completes");
    let (code, text) = c.read_reply();
    assert_eq!(code, 550, "DELE: {text}");
    assert_eq!(c.cmd("PWD").0, 257);
    assert_eq!(fs::read(s.vs.pub_dir().join("b.txt")).unwrap(), b"file b");
    let log = s.vs.log_since(mark);
    assert!(
        Vsftpd::log_has_verb(&log, "RETR"),
        "RETR was not forwarded:\n{log}"
    );
    s.assert_never_forwarded(mark, &["DELE"]);
}

#[test]
fn missing_retr_then_dele_in_one_write() {
    let s = setup();
    let mark = s.vs.log_mark();
    let mut c = s.read_only();
    let _data = c.pasv_connect();
    c.send(b"RETR /pub/missing.txt\r\nDELE /pub/b.txt\r\n");
    let (code, text) = c.read_reply();
    assert_eq!(code, 550, "RETR of a missing file: {text}");
    let (code, text) = c.read_reply();
    assert_eq!(code, 550, "DELE: {text}");
    assert_eq!(c.cmd("PWD").0, 257);
    s.assert_never_forwarded(mark, &["DELE"]);
    s.assert_disk_unchanged();
}

#[test]
fn commands_before_login_get_530_and_are_never_forwarded() {
    let s = setup();
    let mark = s.vs.log_mark();
    let mut c = Ftp::connect(s.gate.addr());
    for line in [
        "RETR /pub/a.txt",
        "DELE /pub/a.txt",
        "CWD /pub",
        "LIST",
        "STOR /pub/x.txt",
        "MKD /pub/d",
        "PASV",
        "EPSV",
        "PORT 127,0,0,1,200,10",
    ] {
        let (code, text) = c.cmd(line);
        assert_eq!(code, 530, "{line} before login: {text}");
    }
    // What ftpgate answers itself is fine before login.
    assert_eq!(c.cmd("NOOP").0, 200);
    assert_eq!(c.cmd("SYST").0, 215);
    // FEAT before login lists what every pool offers, as learned by ftpgate's probe of
    // the pool at start (TVFS, which ftpgate's static list lacks): vsftpd has no MLST, so
    // neither does the answer.
    let (code, feat) = c.cmd("FEAT");
    assert_eq!(code, 211, "{feat}");
    assert!(feat.lines().any(|l| l.trim() == "TVFS"), "{feat}");
    assert!(!feat.contains("MLST"), "{feat}");
    assert_eq!(c.cmd("QUIT").0, 221);
    let log = s.vs.log_since(mark);
    assert_eq!(Vsftpd::connects(&log), 0, "backend contacted:\n{log}");

    // After USER but before PASS: still nothing but the login gets through.
    let mut c = Ftp::connect(s.gate.addr());
    assert_eq!(c.cmd("USER anonymous").0, 331);
    let (code, text) = c.cmd("RETR /pub/a.txt");
    assert_eq!(code, 530, "RETR after USER, before PASS: {text}");
    assert_eq!(c.cmd("DELE /pub/a.txt").0, 530);
    assert_eq!(c.cmd("QUIT").0, 221);
    let log = s.vs.log_since(mark);
    assert!(!Vsftpd::log_has_verb(&log, "RETR"), "{log}");
    assert!(!Vsftpd::log_has_verb(&log, "DELE"), "{log}");
    s.assert_disk_unchanged();
}

#[test]
fn unknown_user_gets_331_then_a_delayed_530_and_no_backend_connection() {
    let s = setup();
    let mark = s.vs.log_mark();

    let mut c = Ftp::connect(s.gate.addr());
    let (code, unknown_text) = c.cmd("USER nosuchuser");
    assert_eq!(code, 331, "{unknown_text}");
    let start = Instant::now();
    let (code, text) = c.cmd("PASS secret");
    let took = start.elapsed();
    assert_eq!(code, 530, "{text}");
    assert!(
        took >= Duration::from_millis(800),
        "530 came after {took:?}, without the ~1 s delay"
    );
    assert!(took < Duration::from_secs(5), "530 came after {took:?}");
    c.send(b"QUIT\r\n");
    drop(c);
    let log = s.vs.log_since(mark);
    assert_eq!(
        Vsftpd::connects(&log),
        0,
        "an unknown user caused a backend connection:\n{log}"
    );

    // No user enumeration: a known user gets the very same 331.
    let mut c = Ftp::connect(s.gate.addr());
    let (code, known_text) = c.cmd("USER anonymous");
    assert_eq!(code, 331);
    assert_eq!(
        known_text, unknown_text,
        "331 differs between known and unknown users"
    );
    let (code, _) = c.cmd("PASS x");
    assert_eq!(code, 230, "the known user logs in");
}
