//! End-to-end integrity (`backends.NAME.verify_uploads`): after an upload ProFTPD stored,
//! ftpgate asks it for the file's SHA-256 (`HASH`, mod_digest, or else `XSHA256`) and records
//! in the transfer event whether it equals the SHA-256 of the bytes relayed; the client is
//! not held up, and a client's own `HASH` or `XSHA256` needs RETR.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn verifying_gate(pro: &Proftpd) -> Ftpgate {
    Ftpgate::builder()
        .backend("proftpd", pro.addr())
        .standard_roles()
        .user("anonymous", "full", "proftpd")
        .user("ftp", "read-only", "proftpd")
        .set(&["backends", "proftpd", "verify_uploads"], json!(true))
        .start()
}

/// The first transfer event, once it is there.
fn first_transfer(gate: &Ftpgate) -> serde_json::Value {
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().any(|e| e["event"] == "transfer")
    });
    events
        .into_iter()
        .find(|e| e["event"] == "transfer")
        .expect("transfer")
}

#[test]
fn an_upload_is_checked_against_the_digest_the_backend_computes() {
    let pro = Proftpd::start();
    let gate = verifying_gate(&pro);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let up = random_bytes(3 * 1024 * 1024 + 7, 91);
    c.stor("/pub/up.bin", &up);
    // The next command waits for ftpgate's own HASH, then is served.
    assert_eq!(c.cmd("NOOP").0, 200);
    let t = first_transfer(&gate);
    let digest = sha256_bytes(&up);
    assert_eq!(t["sha256"], digest.as_str(), "{t}");
    assert_eq!(t["backend_sha256"], digest.as_str(), "{t}");
    assert_eq!(t["backend_sha256_match"], true, "{t}");
    assert_eq!(sha256_file(&pro.root().join("pub/up.bin")), digest);
    // A download is not checked.
    assert_eq!(c.retr("/pub/up.bin"), up);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().filter(|e| e["event"] == "transfer").count() >= 2
    });
    let down = events
        .iter()
        .filter(|e| e["event"] == "transfer")
        .nth(1)
        .expect("download");
    assert!(down.get("backend_sha256").is_none(), "{down}");
}

#[test]
fn a_clients_own_hash_needs_retr_and_is_relayed() {
    let pro = Proftpd::start();
    pro.put_file("pub/a.txt", b"hello world\n");
    let gate = verifying_gate(&pro);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    assert_eq!(
        c.cmd("OPTS HASH SHA-256").0,
        501,
        "OPTS HASH is ftpgate's own"
    );
    let (code, text) = c.cmd("HASH /pub/a.txt");
    assert_eq!(code, 213, "{text}");
    assert!(
        text.contains("a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447")
            || text.contains("22596363b3de40b06f981fb85d82312e8c0ed511"),
        "{text}"
    );
    assert_eq!(c.cmd("QUIT").0, 221);
}

/// A backend whose administrator refuses `HASH` (here ProFTPD with `<Limit HASH>`) is asked
/// the older way, `XSHA256`, and the upload is still checked; a client's own `XSHA256`
/// needs RETR like `HASH`.
#[test]
fn where_hash_is_refused_the_upload_is_checked_with_xsha256() {
    let pro = Proftpd::start_with("  <Limit HASH>\n    DenyAll\n  </Limit>");
    let gate = verifying_gate(&pro);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let up = random_bytes(1024 * 1024 + 3, 92);
    c.stor("/pub/x.bin", &up);
    assert_eq!(c.cmd("NOOP").0, 200);
    let t = first_transfer(&gate);
    let digest = sha256_bytes(&up);
    assert_eq!(t["backend_sha256"], digest.as_str(), "{t}");
    assert_eq!(t["backend_sha256_match"], true, "{t}");
    // The backend did refuse HASH: the client's own is answered 552 by ProFTPD.
    let (code, text) = c.cmd("HASH /pub/x.bin");
    assert_eq!(code, 552, "{text}");
    let (code, text) = c.cmd("XSHA256 /pub/x.bin");
    assert_eq!(code, 250, "{text}");
    assert!(text.to_ascii_lowercase().contains(&digest), "{text}");
    assert_eq!(c.cmd("QUIT").0, 221);

    // A role without RETR may not ask.
    let gate = Ftpgate::builder()
        .backend("proftpd", pro.addr())
        .role("list-only", &["LIST", "PWD", "CWD"])
        .user("ftp", "list-only", "proftpd")
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    let (code, text) = c.cmd("XSHA256 /pub/x.bin");
    assert_eq!(code, 550, "{text}");
    assert_eq!(c.cmd("QUIT").0, 221);
}
