//! Transfer events carry the SHA-256 of the bytes that crossed ftpgate, in both directions,
//! computed on the relay buffers as they pass.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn transfer_events_carry_the_sha256_of_the_bytes_that_crossed() {
    let vs = Vsftpd::start();
    let down = random_bytes(3 * 1024 * 1024 + 17, 91);
    let up = random_bytes(1024 * 1024 + 5, 92);
    vs.put_file("pub/down.bin", &down);
    let gate = Ftpgate::for_vsftpd(&vs);
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/down.bin"), down);
    c.stor("/pub/up.bin", &up);
    let empty: &[u8] = b"";
    c.stor("/pub/empty.bin", empty);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter().filter(|e| e["event"] == "transfer").count() >= 3
    });
    let transfers: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "transfer").collect();
    let digest_of = |verb: &str, arg: &str| {
        transfers
            .iter()
            .find(|e| e["verb"] == verb && e["arg"] == arg)
            .and_then(|e| e["sha256"].as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        digest_of("RETR", "/pub/down.bin"),
        Some(sha256_bytes(&down))
    );
    assert_eq!(digest_of("STOR", "/pub/up.bin"), Some(sha256_bytes(&up)));
    assert_eq!(
        digest_of("STOR", "/pub/empty.bin"),
        Some(sha256_bytes(empty))
    );
    assert_eq!(
        sha256_file(&vs.root().join("pub/up.bin")),
        sha256_bytes(&up),
        "and that is what the backend stored"
    );
}
