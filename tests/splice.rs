//! The spliced relay (splice(2) through a pipe, tee(2) for the digest): plaintext transfers
//! without filecopy or rate limit. The bytes that arrive are the bytes that were sent, in
//! both directions, with the digest on and off; the audit counts them; a transfer that needs
//! to see its bytes (filecopy, a rate limit, TLS) keeps the read/write path, and so does a
//! short one (under SPLICE_AFTER_BYTES, 128 KiB: the pipe would cost more than it saves).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// The transfer events, once `n` are there.
fn transfers(gate: &Ftpgate, n: usize) -> Vec<Value> {
    gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().filter(|e| e["event"] == "transfer").count() >= n
    })
    .into_iter()
    .filter(|e| e["event"] == "transfer")
    .collect()
}

/// How many relays ended on each path, from ftpgate's debug log.
fn paths(gate: &Ftpgate) -> (usize, usize) {
    let log = gate.stderr_log();
    let all = log.matches("relay done:").count();
    let rw = log.matches("(read/write)").count();
    (all - rw, rw)
}

fn round_trip(digest: &str) {
    let vs = Vsftpd::start();
    let down = random_bytes(5 * 1024 * 1024 + 333, 41);
    let up = random_bytes(3 * 1024 * 1024 + 7, 42);
    vs.put_file("pub/down.bin", &down);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["audit", "digest"], json!(digest))
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let got = c.retr("/pub/down.bin");
    assert_eq!(sha256_bytes(&got), sha256_bytes(&down), "download intact");
    c.stor("/pub/up.bin", &up);
    c.stor("/pub/empty.bin", b"");
    assert_eq!(c.cmd("QUIT").0, 221);
    assert_eq!(
        sha256_file(&vs.root().join("pub/up.bin")),
        sha256_bytes(&up),
        "upload intact on the backend"
    );
    let events = transfers(&gate, 3);
    let event = |arg: &str| {
        events
            .iter()
            .find(|e| e["arg"] == arg)
            .unwrap_or_else(|| panic!("no transfer event for {arg}: {events:?}"))
            .clone()
    };
    let (d, u, e) = (
        event("/pub/down.bin"),
        event("/pub/up.bin"),
        event("/pub/empty.bin"),
    );
    assert_eq!(d["bytes"], json!(down.len()));
    assert_eq!(u["bytes"], json!(up.len()));
    assert_eq!(e["bytes"], json!(0));
    for ev in [&d, &u, &e] {
        assert_eq!(ev["result"], "ok", "{ev}");
    }
    if digest == "none" {
        for ev in [&d, &u, &e] {
            assert_eq!(ev["digest"], "none", "{ev}");
            assert!(ev.get("sha256").is_none(), "{ev}");
        }
    } else {
        assert_eq!(d["sha256"], json!(sha256_bytes(&down)));
        assert_eq!(u["sha256"], json!(sha256_bytes(&up)));
        assert_eq!(e["sha256"], json!(sha256_bytes(b"")));
        assert!(d.get("digest").is_none(), "{d}");
    }
    // The empty file ends before SPLICE_AFTER_BYTES (128 KiB): no pipe for it.
    let (spliced, rw) = paths(&gate);
    assert_eq!((spliced, rw), (2, 1), "{}", gate.stderr_log());
}

#[test]
fn spliced_transfers_without_digest_are_intact_and_counted() {
    round_trip("none");
}

#[test]
fn spliced_transfers_with_the_tee_digest_are_intact_and_hashed() {
    round_trip("sha256");
}

#[test]
fn a_user_may_turn_the_digest_off_for_itself() {
    let vs = Vsftpd::start();
    let data = random_bytes(1024 * 1024 + 1, 43);
    vs.put_file("pub/f.bin", &data);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .set(&["audit", "digest"], json!("sha256"))
        .set(&["users", "ftp", "audit_digest"], json!("none"))
        .start();
    for user in ["anonymous", "ftp"] {
        let mut c = Ftp::connect(gate.addr());
        c.login_ok(user, "x");
        assert_eq!(c.cmd("TYPE I").0, 200);
        assert_eq!(c.retr("/pub/f.bin"), data);
        assert_eq!(c.cmd("QUIT").0, 221);
    }
    let events = transfers(&gate, 2);
    let of = |user: &str| {
        let session = events
            .iter()
            .find(|e| e["user"] == user)
            .unwrap_or_else(|| panic!("no transfer of {user}: {events:?}"));
        (session["sha256"].clone(), session["digest"].clone())
    };
    assert_eq!(of("anonymous"), (json!(sha256_bytes(&data)), Value::Null));
    assert_eq!(of("ftp"), (Value::Null, json!("none")));
}

#[test]
fn a_short_transfer_keeps_the_buffer_and_a_long_one_switches_mid_stream() {
    let vs = Vsftpd::start();
    let small = random_bytes(100 * 1024, 46);
    // Odd sizes: the switch happens after a partial buffer, the rest goes through the pipe.
    let large = random_bytes(128 * 1024 + 65_537, 47);
    vs.put_file("pub/small.bin", &small);
    vs.put_file("pub/large.bin", &large);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["audit", "digest"], json!("sha256"))
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(
        sha256_bytes(&c.retr("/pub/small.bin")),
        sha256_bytes(&small)
    );
    let events = transfers(&gate, 1);
    assert_eq!(paths(&gate), (0, 1), "the short one: read/write");
    assert_eq!(events[0]["sha256"], json!(sha256_bytes(&small)));
    assert_eq!(
        sha256_bytes(&c.retr("/pub/large.bin")),
        sha256_bytes(&large)
    );
    c.stor("/pub/large-up.bin", &large);
    let events = transfers(&gate, 3);
    assert_eq!(
        paths(&gate),
        (2, 1),
        "the long ones: spliced\n{}",
        gate.stderr_log()
    );
    for arg in ["/pub/large.bin", "/pub/large-up.bin"] {
        let event = events.iter().find(|e| e["arg"] == arg).expect("event");
        assert_eq!(event["sha256"], json!(sha256_bytes(&large)), "{event}");
        assert_eq!(event["bytes"], json!(large.len()), "{event}");
    }
    assert_eq!(
        sha256_file(&vs.root().join("pub/large-up.bin")),
        sha256_bytes(&large)
    );
}

#[test]
fn the_size_limit_holds_on_the_spliced_path() {
    let vs = Vsftpd::start();
    let data = random_bytes(2 * 1024 * 1024, 44);
    vs.put_file("pub/big.bin", &data);
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["audit", "digest"], json!("none"))
        .set(&["defaults", "limits", "max_file_size"], json!(1024 * 1024))
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let (code, got) = c.transfer_in("RETR /pub/big.bin");
    assert_ne!(code, 226, "a file over the limit does not complete");
    assert!(
        got.len() <= 1024 * 1024,
        "at most the limit crossed: {}",
        got.len()
    );
    assert_eq!(
        got[..],
        data[..got.len()],
        "what crossed is the file's start"
    );
    let events = transfers(&gate, 1);
    assert_eq!(events[0]["result"], "size_limit", "{}", events[0]);
    assert_eq!(events[0]["bytes"], json!(got.len()));
}

#[test]
fn filecopy_rate_limit_and_tls_keep_the_read_write_path() {
    let vs = Vsftpd::start();
    let data = random_bytes(512 * 1024 + 9, 45);
    vs.put_file("pub/f.bin", &data);
    let root = temp_dir();
    let copies = root.path().join("copies");
    // filecopy
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["audit", "digest"], json!("none"))
        .set(&["audit", "mode"], json!("filecopy"))
        .set(
            &["audit", "filecopy"],
            json!({ "directory": copies.to_string_lossy() }),
        )
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/f.bin"), data);
    let events = transfers(&gate, 1);
    assert!(events[0]["filecopy"].is_string(), "{}", events[0]);
    assert_eq!(paths(&gate), (0, 1), "filecopy: read/write");
    drop(gate);
    // a rate limit (high enough not to slow the test)
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["audit", "digest"], json!("none"))
        .set(&["defaults", "limits", "rate"], json!("100MiB/s"))
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/f.bin"), data);
    transfers(&gate, 1);
    assert_eq!(paths(&gate), (0, 1), "rate limit: read/write");
    drop(gate);
    // TLS toward the client
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["audit", "digest"], json!("none"))
        .ftps()
        .start();
    let dir = temp_dir();
    let dst = dir.path().join("f.bin");
    curl(&[
        "-k",
        "--ssl-reqd",
        "-o",
        dst.to_str().expect("path"),
        &format!("ftp://anonymous:x@{}/pub/f.bin", gate.addr()),
    ])
    .assert_success("curl with TLS");
    assert_eq!(sha256_file(&dst), sha256_bytes(&data));
    transfers(&gate, 1);
    assert_eq!(paths(&gate), (0, 1), "TLS: read/write");
}
