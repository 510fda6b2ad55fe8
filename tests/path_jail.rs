//! A user's path jail (`users.NAME.paths`): commands that name a path outside the allowed
//! prefixes (after `..` and absolute paths are normalised against the tracked working
//! directory) are refused with 550 before they reach the backend, which never sees them and
//! whose file system stays as it was; the directories above a prefix can be entered and
//! listed; everything inside works.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use serde_json::json;

/// `pub/in`, writable by vsftpd's anonymous user.
fn inbox(vs: &Vsftpd) {
    let dir = vs.pub_dir().join("in");
    fs::create_dir_all(&dir).expect("mkdir");
    let (uid, gid) = user_ids("ftp").expect("the ftp user");
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown");
}

fn jailed_gate(vs: &Vsftpd) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["users", "anonymous", "paths"], json!(["/pub/in"]))
        .start()
}

#[test]
fn inside_the_jail_everything_works() {
    let vs = Vsftpd::start();
    inbox(&vs);
    let data = random_bytes(200 * 1024, 81);
    vs.put_file("pub/in/a.bin", &data);
    let gate = jailed_gate(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/in/a.bin"), data);
    assert_eq!(c.cmd("CWD /pub/in").0, 250);
    let up = random_bytes(50 * 1024, 82);
    c.stor("b.bin", &up);
    assert_eq!(
        sha256_file(&vs.pub_dir().join("in/b.bin")),
        sha256_bytes(&up)
    );
    assert_eq!(c.cmd("MKD sub").0, 257);
    // The directories above the prefix: entered and listed, nothing more.
    assert_eq!(c.cmd("CDUP").0, 250);
    let (code, listing) = c.list("LIST");
    assert_eq!(code, 226);
    assert!(listing.contains("in"), "{listing}");
    assert_eq!(c.cmd("QUIT").0, 221);
}

#[test]
fn paths_outside_are_refused_before_the_backend_sees_them() {
    let vs = Vsftpd::start();
    inbox(&vs);
    vs.put_file("pub/secret.txt", b"not for partners");
    let gate = jailed_gate(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("CWD /pub/in").0, 250);
    let mark = vs.log_mark();
    for line in [
        "RETR ../secret.txt",
        "RETR /pub/in/../secret.txt",
        "DELE /pub/secret.txt",
        "RNFR /pub/secret.txt",
        "STOR ../planted.txt",
        "MKD /pub/new",
        "CWD /etc",
        "SIZE ..\\secret.txt",
        "NLST /pub/*/x",
    ] {
        let reply = c.cmd(line);
        assert_eq!(reply.0, 550, "{line}: {reply:?}");
    }
    // Nothing of it reached vsftpd, and its file system is as it was.
    let log = vs.log_since(mark);
    for verb in [
        "RETR", "DELE", "RNFR", "STOR", "MKD", "SIZE", "NLST", "PASV", "EPSV",
    ] {
        assert!(
            !Vsftpd::log_has_verb(&log, verb),
            "{verb} reached vsftpd:\n{log}"
        );
    }
    assert!(
        !Vsftpd::commands(&log).iter().any(|c| c.starts_with("CWD")),
        "{log}"
    );
    assert!(vs.pub_dir().join("secret.txt").exists());
    assert!(!vs.pub_dir().join("planted.txt").exists());
    assert!(!vs.pub_dir().join("new").exists());
    // Each refusal is audited with the path it resolved to.
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter()
            .filter(|e| e["event"] == "policy_violation" && e["kind"] == "path_jail")
            .count()
            >= 9
    });
    let details: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "policy_violation" && e["kind"] == "path_jail")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(details.len(), 9, "{details:?}");
    assert_eq!(
        details[0],
        "RETR /pub/secret.txt is outside the user's paths"
    );
    assert!(
        details.iter().any(|d| d.contains("a backslash")),
        "{details:?}"
    );
    // The session goes on.
    assert_eq!(c.cmd("PWD").0, 257);
    assert_eq!(c.cmd("QUIT").0, 221);
}
