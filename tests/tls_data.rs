//! Protected data connections as the clients that partners run treat them:
//! - a client that only writes on an upload connection and closes it without reading (Go's
//!   crypto/tls under rclone does) over TLS 1.3: the upload is stored whole, and the data
//!   connection still resumed the control session (ftpgate sends no session ticket there);
//! - a client that cannot resume the control session on data connections (Python's stock
//!   `ftplib.FTP_TLS`), through ftpgate to a vsftpd that requires reuse
//!   (`require_ssl_reuse=YES`): served for a user with `tls_session_reuse: "bridge"` (and
//!   audited as a policy exception), refused (425 after ftpgate's 150) for a strict user.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

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

/// Python's stock `ftplib.FTP_TLS` (its data connections never resume the control
/// session), PROT P, passive: uploads `src` as `name`, downloads it back and prints
/// `ok <sha256>`, or `error <reply>` at the first failure.
const STOCK_FTP_TLS: &str = r#"
import ftplib, hashlib, ssl, sys
host, port, user, src, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
f = ftplib.FTP_TLS(context=ctx)
f.connect(host, port, timeout=30)
f.login(user, "x")
f.prot_p()
try:
    if src != "-":
        with open(src, "rb") as fh:
            f.storbinary("STOR " + name, fh)
    h = hashlib.sha256()
    f.retrbinary("RETR " + name, h.update)
    print("ok", h.hexdigest())
except ftplib.all_errors as e:
    print("error", e)
f.quit()
"#;

/// A vsftpd that requires TLS and session reuse on data connections (its default), and an
/// ftpgate before it with FTPS toward clients: `anonymous` has `tls_session_reuse:
/// "bridge"`, `ftp` the default (required). vsftpd takes both names as its anonymous user.
fn bridge_setup() -> (Vsftpd, Ftpgate, tempfile::TempDir) {
    let dir = temp_dir();
    let (ca, cert, key) = generate_ca_and_server(dir.path());
    let vs = Vsftpd::start_with(&format!(
        "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n\
         require_ssl_reuse=YES\nrsa_cert_file={}\nrsa_private_key_file={}\n",
        cert.display(),
        key.display(),
    ));
    let gate = Ftpgate::builder()
        .backend("secure", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "secure")
        .user("ftp", "full", "secure")
        .set(&["backends", "secure", "tls"], json!("explicit"))
        .set(
            &["backends", "secure", "ca_file"],
            json!(ca.to_string_lossy()),
        )
        .set(
            &["users", "anonymous", "tls_session_reuse"],
            json!("bridge"),
        )
        .ftps()
        .start();
    (vs, gate, dir)
}

#[test]
fn stock_ftplib_is_served_through_the_bridge_by_a_backend_that_requires_reuse() {
    let (vs, gate, _dir) = bridge_setup();
    let dir = temp_dir();
    let src = dir.path().join("up.bin");
    let sum = write_random_file(&src, BIG, 171);
    let addr = gate.addr();
    let out = python(
        STOCK_FTP_TLS,
        &[
            &addr.ip().to_string(),
            &addr.port().to_string(),
            "anonymous",
            src.to_str().expect("path"),
            "/pub/bridged.bin",
        ],
    );
    assert_eq!(
        out.stdout_str().trim(),
        format!("ok {sum}"),
        "{out:?}\n{}",
        gate.stderr_log()
    );
    assert_eq!(sha256_file(&vs.root().join("pub/bridged.bin")), sum);
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter().filter(|e| e["event"] == "transfer").count() >= 2
    });
    // Each of the two protected data connections is one audited exception.
    let exceptions: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "policy_exception")
        .collect();
    assert_eq!(exceptions.len(), 2, "{events:?}");
    for e in &exceptions {
        assert_eq!(e["kind"], "tls_session_reuse_bridge", "{e}");
        assert_eq!(e["user"], "anonymous", "{e}");
    }
    assert_eq!(
        tls_resumed(&events, "data", "client"),
        [false, false],
        "the client did not resume"
    );
    assert_eq!(
        tls_resumed(&events, "data", "backend"),
        [true, true],
        "ftpgate resumed toward vsftpd"
    );
    for e in events.iter().filter(|e| e["event"] == "transfer") {
        assert_eq!(e["result"], "ok", "{e}");
        assert_eq!(e["sha256"], sum.as_str(), "{e}");
    }
    assert!(
        !events.iter().any(|e| e["event"] == "policy_violation"),
        "{events:?}"
    );
}

#[test]
fn stock_ftplib_is_refused_for_a_user_that_requires_reuse() {
    let (vs, gate, _dir) = bridge_setup();
    vs.put_file("pub/strict.bin", &random_bytes(64 * 1024, 172));
    let mark = vs.log_mark();
    let addr = gate.addr();
    let out = python(
        STOCK_FTP_TLS,
        &[
            &addr.ip().to_string(),
            &addr.port().to_string(),
            "ftp",
            "-",
            "/pub/strict.bin",
        ],
    );
    // ftpgate's own 150 went out (the client waits for it before its handshake); the fresh
    // handshake is then refused before any byte moves: 425, as ftpgate(8) documents (426
    // is for a transfer that had begun).
    let stdout = out.stdout_str();
    assert!(stdout.starts_with("error 425"), "{stdout}\n{out:?}");
    let events = gate.wait_audit(Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e["kind"] == "tls_session_reuse")
    });
    assert!(
        !events.iter().any(|e| e["event"] == "policy_exception"),
        "{events:?}"
    );
    // The backend never saw the transfer command.
    let log = vs.log_since(mark);
    assert!(!Vsftpd::log_has_verb(&log, "RETR"), "{log}");
}
