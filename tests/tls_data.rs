//! Protected data connections as the clients that partners run treat them:
//! - a client that only writes on an upload connection and closes it without reading (Go's
//!   crypto/tls under rclone does) over TLS 1.3: the upload is stored whole, and the data
//!   connection still resumed the control session (ftpgate sends no session ticket there);
//! - a client that cannot resume the control session on data connections (Python's stock
//!   `ftplib.FTP_TLS`), through ftpgate to a vsftpd that requires reuse
//!   (`require_ssl_reuse=YES`): served for a user with `tls_session_reuse: "bridge"` (and
//!   audited as a policy exception), refused with 426 for a strict user.

mod common;

use std::time::Duration;

use serde_json::Value;

use common::*;

/// A TLS 1.3 client (Python's ssl over memory BIOs, so that it controls every read of the
/// socket) that logs in with AUTH TLS, PROT P, and uploads `src` as `name` in passive mode
/// the way Go's crypto/tls does under rclone: connect, STOR, wait for the 150, handshake
/// (resuming the control session), write everything, send close_notify and close the
/// socket without ever reading after the handshake. Prints the final reply and whether the
/// data connection resumed.
const WRITE_ONLY_UPLOAD: &str = r#"
import ftplib, socket, ssl, sys
host, port, src, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.maximum_version = ssl.TLSVersion.TLSv1_3
f = ftplib.FTP_TLS(context=ctx)
f.connect(host, port, timeout=30)
f.login("anonymous", "x")
f.prot_p()
f.voidcmd("TYPE I")
addr = ftplib.parse227(f.sendcmd("PASV"))
sock = socket.create_connection((host, addr[1]), timeout=30)
resp = f.sendcmd("STOR " + name)
if not resp.startswith("1"):
    print("refused", resp)
    sys.exit(0)
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, session=f.sock.session)
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        sock.sendall(outgoing.read())
        chunk = sock.recv(65536)
        if not chunk:
            print("handshake eof")
            sys.exit(0)
        incoming.write(chunk)
sock.sendall(outgoing.read())
with open(src, "rb") as fh:
    while True:
        block = fh.read(65536)
        if not block:
            break
        tls.write(block)
        sock.sendall(outgoing.read())
try:
    tls.unwrap()
except ssl.SSLWantReadError:
    pass  # close_notify is written; the peer's is never read
sock.sendall(outgoing.read())
sock.close()
try:
    final = f.voidresp()
except ftplib.all_errors as e:
    final = "error " + str(e)
print("reused" if tls.session_reused else "fresh", final)
f.quit()
"#;

#[test]
fn a_tls_1_3_upload_whose_client_never_reads_is_stored_whole_and_resumed() {
    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .ftps()
        .start();
    let dir = temp_dir();
    let src = dir.path().join("up.bin");
    for seed in [161u64, 162, 163] {
        let sum = write_random_file(&src, BIG, seed);
        let name = format!("/pub/write-only-{seed}.bin");
        let addr = gate.addr();
        let out = python(
            WRITE_ONLY_UPLOAD,
            &[
                &addr.ip().to_string(),
                &addr.port().to_string(),
                src.to_str().expect("path"),
                &name,
            ],
        );
        let stdout = out.stdout_str();
        assert!(
            stdout.starts_with("reused 226"),
            "seed {seed}: {stdout}{}\n{}",
            out.stderr,
            gate.stderr_log()
        );
        assert_eq!(
            sha256_file(&vs.root().join(name.trim_start_matches('/'))),
            sum,
            "seed {seed}: the backend's file is the whole upload"
        );
    }
    if gate.is_direct() {
        return;
    }
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter().filter(|e| e["event"] == "transfer").count() >= 3
    });
    let data_tls: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "tls" && e["channel"] == "data" && e["side"] == "client")
        .collect();
    assert_eq!(data_tls.len(), 3, "{events:?}");
    for e in data_tls {
        assert_eq!(e["resumed"], true, "{e}");
        assert_eq!(e["version"], "TLSv1_3", "{e}");
    }
    for e in events.iter().filter(|e| e["event"] == "transfer") {
        assert_eq!(e["result"], "ok", "{e}");
        assert_eq!(e["bytes"], BIG as u64, "{e}");
    }
}
