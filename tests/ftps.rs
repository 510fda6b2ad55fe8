//! FTPS toward clients, with real clients: curl (explicit --ssl-reqd and implicit ftps://),
//! Python ftplib's FTP_TLS (with and without TLS session reuse on data connections) and lftp
//! (ftp:ssl-force), in passive and active modes, 8 MiB each way with equal SHA-256; and the
//! attacks: STARTTLS command injection, ALPN other than ftp, plaintext on an implicit port.

mod common;

use serde_json::json;

use common::*;

fn setup() -> (Vsftpd, Ftpgate) {
    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .ftps()
        .start();
    (vs, gate)
}

fn url(addr: std::net::SocketAddr, scheme: &str, path: &str) -> String {
    format!("{scheme}://anonymous:x@{}:{}{path}", addr.ip(), addr.port())
}

fn curl_round_trip(
    gate: &Ftpgate,
    vs: &Vsftpd,
    scheme: &str,
    addr: std::net::SocketAddr,
    extra: &[&str],
    seed: u64,
) {
    let dir = temp_dir();
    let src = dir.path().join("up.bin");
    let sum = write_random_file(&src, BIG, seed);
    let name = format!("/pub/tls-{seed}.bin");
    let mut args = vec!["-k", "-T", src.to_str().expect("path")];
    args.extend_from_slice(extra);
    let up = url(addr, scheme, &name);
    args.push(&up);
    curl(&args).assert_success("curl upload");
    assert_eq!(
        sha256_file(&vs.root().join(name.trim_start_matches('/'))),
        sum
    );
    let dst = dir.path().join("down.bin");
    let mut args = vec!["-k", "-o", dst.to_str().expect("path")];
    args.extend_from_slice(extra);
    args.push(&up);
    curl(&args).assert_success("curl download");
    assert_eq!(sha256_file(&dst), sum);
    let _ = gate;
}

#[test]
fn curl_explicit_ftps_passive_8mib_both_ways() {
    let (vs, gate) = setup();
    curl_round_trip(&gate, &vs, "ftp", gate.addr(), &["--ssl-reqd"], 61);
}

#[test]
fn curl_implicit_ftps_8mib_both_ways() {
    let (vs, gate) = setup();
    curl_round_trip(&gate, &vs, "ftps", gate.implicit_addr(), &[], 62);
}

/// ftplib FTP_TLS whose data connections resume the control session (the override
/// TESTING.md describes: `Reusing` of [`PY_FTPS_REUSING`], run before it), or stock
/// FTP_TLS (no resumption) with `reuse = false`.
const FTPLIB_TLS: &str = r#"
import hashlib, sys
host, port, mode, reuse, src, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5], sys.argv[6]
f = (Reusing if reuse else ftplib.FTP_TLS)(context=ctx)
f.connect(host, port, timeout=30)
f.login("anonymous", "x")
f.prot_p()
f.set_pasv(mode == "pasv")
try:
    with open(src, "rb") as fh:
        f.storbinary("STOR " + name, fh)
    h = hashlib.sha256()
    f.retrbinary("RETR " + name, h.update)
    print("ok", h.hexdigest())
except ftplib.all_errors as e:
    print("error", e)
f.quit()
"#;

fn ftplib_tls(gate: &Ftpgate, mode: &str, reuse: bool, seed: u64) -> (String, String) {
    let dir = temp_dir();
    let src = dir.path().join("up.bin");
    let sum = write_random_file(&src, BIG, seed);
    let addr = gate.addr();
    let out = python(
        &format!("{PY_FTPS_REUSING}{FTPLIB_TLS}"),
        &[
            &addr.ip().to_string(),
            &addr.port().to_string(),
            mode,
            if reuse { "1" } else { "0" },
            src.to_str().expect("path"),
            &format!("/pub/py-{seed}.bin"),
        ],
    );
    (out.stdout_str(), sum)
}

#[test]
fn ftplib_ftp_tls_prot_p_passive_and_active_8mib() {
    let (_vs, gate) = setup();
    for (mode, seed) in [("pasv", 63), ("port", 64)] {
        let (stdout, sum) = ftplib_tls(&gate, mode, true, seed);
        assert_eq!(stdout.trim(), format!("ok {sum}"), "{mode}");
    }
}

#[test]
fn a_data_connection_that_does_not_resume_the_session_is_refused() {
    let (vs, gate) = setup();
    let (stdout, _) = ftplib_tls(&gate, "pasv", false, 65);
    assert!(
        stdout.starts_with("error"),
        "stock FTP_TLS must be refused: {stdout}"
    );
    assert!(
        !vs.root().join("pub/py-65.bin").exists()
            || std::fs::metadata(vs.root().join("pub/py-65.bin")).is_ok_and(|m| m.len() == 0),
        "nothing of the refused upload reached the backend"
    );
    let events = gate.wait_audit(std::time::Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e["kind"] == "tls_session_reuse")
    });
    assert!(
        events.iter().any(|e| e["kind"] == "tls_session_reuse"),
        "{events:?}"
    );
}

#[test]
fn lftp_ssl_force_passive_and_active_8mib() {
    let (vs, gate) = setup();
    for (passive, seed) in [(true, 66), (false, 67)] {
        let dir = temp_dir();
        let src = dir.path().join("up.bin");
        let sum = write_random_file(&src, BIG, seed);
        let dst = dir.path().join("down.bin");
        let out = lftp(&format!(
            "set ssl:verify-certificate no; set ftp:ssl-force true; set ftp:ssl-protect-data true; \
             set ftp:passive-mode {passive}; set net:max-retries 1; set net:timeout 20; \
             open -u anonymous,x ftp://127.0.0.1:{port}; put {src} -o /pub/lftp-{seed}.bin; \
             get /pub/lftp-{seed}.bin -o {dst}",
            port = gate.addr().port(),
            src = src.display(),
            dst = dst.display(),
        ));
        out.assert_success("lftp");
        assert_eq!(
            sha256_file(&vs.root().join(format!("pub/lftp-{seed}.bin"))),
            sum
        );
        assert_eq!(sha256_file(&dst), sum);
    }
}

/// Sends `AUTH TLS` and a USER in one write, then does the handshake and asks PWD.
const INJECTION: &str = r#"
import socket, ssl, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"AUTH TLS\r\nUSER anonymous\r\n")
print("auth", f.readline().decode().strip()[:3])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s)
t.sendall(b"PWD\r\n")
print("pwd", t.recv(4096).decode().strip()[:3])
"#;

#[test]
fn plaintext_after_auth_tls_in_the_same_write_is_discarded() {
    let (vs, gate) = setup();
    let mark = vs.log_mark();
    let addr = gate.addr();
    let out = python(
        INJECTION,
        &[&addr.ip().to_string(), &addr.port().to_string()],
    );
    let stdout = out.stdout_str();
    assert!(stdout.contains("auth 234"), "{stdout}");
    // The injected USER never ran: PWD before login is 530.
    assert!(stdout.contains("pwd 530"), "{stdout}");
    assert_eq!(
        Vsftpd::connects(&vs.log_since(mark)),
        0,
        "no backend was contacted"
    );
    let events = gate.wait_audit(std::time::Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e["kind"] == "starttls_injection")
    });
    assert!(
        events.iter().any(|e| e["kind"] == "starttls_injection"),
        "{events:?}"
    );
}

const ALPN: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(sys.argv[3].split(","))
try:
    t = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10))
    print("greeting", t.recv(4096).decode().strip()[:3])
except (ssl.SSLError, OSError) as e:
    print("refused", type(e).__name__)
"#;

#[test]
fn alpn_other_than_ftp_is_refused() {
    let (_vs, gate) = setup();
    let addr = gate.implicit_addr();
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());
    let http = python(ALPN, &[&host, &port, "http/1.1"]).stdout_str();
    assert!(http.starts_with("refused"), "ALPACA: {http}");
    let ftp = python(ALPN, &[&host, &port, "ftp"]).stdout_str();
    assert_eq!(ftp.trim(), "greeting 220");
    let mixed = python(ALPN, &[&host, &port, "http/1.1,ftp"]).stdout_str();
    assert_eq!(mixed.trim(), "greeting 220");
}

#[test]
fn plaintext_on_the_implicit_port_is_a_clean_close() {
    let (_vs, mut gate) = setup();
    let mut c = Ftp::connect_raw(gate.implicit_addr());
    let _ = c.try_send(b"USER anonymous\r\n");
    c.set_read_timeout(std::time::Duration::from_secs(10));
    match c.try_read_line() {
        Ok(None) | Err(_) => {}
        Ok(Some(line)) => assert!(
            !line.starts_with("2"),
            "no FTP greeting in plaintext: {line}"
        ),
    }
    gate.assert_healthy();
}

const CLEAR_DATA: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10))
f = t.makefile("rb")
def cmd(line):
    if line:
        t.sendall(line.encode() + b"\r\n")
    while True:
        reply = f.readline().decode()
        if reply[3:4] != "-":
            return reply[:3]
cmd("")
cmd("USER anonymous")
print(cmd("PASS x"), cmd("PBSZ 0"), cmd("PROT C"), cmd("PASV"), cmd("RETR /pub/f.txt"))
"#;

#[test]
fn required_tls_refuses_plain_logins_and_clear_data() {
    let vs = Vsftpd::start();
    vs.put_file("pub/f.txt", b"data");
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .ftps()
        .set(&["tls", "require"], json!("all"))
        .start();
    let mut c = Ftp::connect(gate.addr());
    let (code, text) = c.cmd("USER anonymous");
    assert_eq!(code, 530, "{text}");
    // curl without --ssl-reqd would not even try; with it, PROT P makes the transfer pass.
    let dir = temp_dir();
    let dst = dir.path().join("f.txt");
    curl(&[
        "-k",
        "--ssl-reqd",
        "-o",
        dst.to_str().expect("p"),
        &url(gate.addr(), "ftp", "/pub/f.txt"),
    ])
    .assert_success("curl with TLS");
    assert_eq!(std::fs::read(&dst).expect("read"), b"data");
    // On the implicit port, logged in: PROT C is refused, and so is a transfer without
    // PROT P; nothing was asked of the backend's data side.
    let addr = gate.implicit_addr();
    let out = python(
        CLEAR_DATA,
        &[&addr.ip().to_string(), &addr.port().to_string()],
    )
    .stdout_str();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["230", "200", "534", "227", "521"],
        "{out}"
    );
}

#[test]
fn check_refuses_a_key_that_does_not_match_the_certificate() {
    let dir = temp_dir();
    let (cert, _) = generate_certificate(dir.path());
    let other = temp_dir();
    let (_, wrong_key) = generate_certificate(other.path());
    let policy = dir.path().join("p.json");
    std::fs::write(
        &policy,
        serde_json::to_string_pretty(&json!({
            "listeners": [ { "address": "127.0.0.1:2121", "tls": "explicit" } ],
            "tls": { "certificate": cert.to_string_lossy(), "private_key": wrong_key.to_string_lossy() },
            "backends": { "b": { "servers": ["127.0.0.1:21"] } },
            "roles": { "r": { "allow": ["RETR"] } },
            "users": { "u": { "role": "r", "backend": "b" } }
        }))
        .expect("json"),
    )
    .expect("write");
    let out = ftpgate_check(&policy);
    assert_eq!(out.code(), Some(1), "{out:?}");
    // Reported at the certificate's value in the policy file.
    let text = std::fs::read_to_string(&policy).expect("read");
    let line = text
        .lines()
        .position(|l| l.contains("\"certificate\""))
        .expect("certificate line")
        + 1;
    assert!(
        out.stderr.contains(&format!(":{line}:")) && out.stderr.contains("tls"),
        "{}",
        out.stderr
    );
}

#[test]
fn per_user_tls_rules_tighten_and_relax() {
    let (_vs, gate) = {
        let vs = Vsftpd::start();
        let gate = Ftpgate::builder()
            .backend("vsftpd", vs.addr())
            .standard_roles()
            .user("anonymous", "full", "vsftpd")
            .user("ftp", "full", "vsftpd")
            .ftps()
            // ftp must use TLS; anonymous may use stock FTP_TLS (no session reuse).
            .set(&["users", "ftp", "tls_require"], json!("login"))
            .set(&["users", "anonymous", "tls_session_reuse"], json!(false))
            .start();
        (vs, gate)
    };
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER ftp").0, 331);
    assert_eq!(c.cmd("PASS x").0, 530, "plaintext login refused for ftp");
    let events = gate.wait_audit(std::time::Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e["kind"] == "tls_required")
    });
    assert!(
        events.iter().any(|e| e["kind"] == "tls_required"),
        "{events:?}"
    );
    let (stdout, sum) = ftplib_tls(&gate, "pasv", false, 68);
    assert_eq!(
        stdout.trim(),
        format!("ok {sum}"),
        "stock FTP_TLS allowed for anonymous"
    );
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections() {
    let (_vs, mut gate) = setup();
    let addr = gate.implicit_addr();
    let args = [addr.ip().to_string(), addr.port().to_string()];
    let before = python(PEER_CERT, &[&args[0], &args[1]]).stdout_str();
    // Replace the certificate and key files in place, then SIGHUP.
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gate.config_path()).expect("read"))
            .expect("json");
    let cert = std::path::PathBuf::from(policy["tls"]["certificate"].as_str().expect("cert"));
    let key = std::path::PathBuf::from(policy["tls"]["private_key"].as_str().expect("key"));
    let fresh = temp_dir();
    let (new_cert, new_key) = generate_certificate(fresh.path());
    std::fs::copy(&new_cert, &cert).expect("copy cert");
    std::fs::copy(&new_key, &key).expect("copy key");
    let pid = gate.pid().expect("pid");
    // SAFETY: kill(2) takes plain integers; the pid is the gateway this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGHUP) }, 0);
    assert!(
        wait_until(std::time::Duration::from_secs(10), || {
            let now = python(PEER_CERT, &[&args[0], &args[1]]).stdout_str();
            !now.trim().is_empty() && now != before
        }),
        "new connections present the new certificate"
    );
    gate.assert_healthy();
}

/// ftplib starts data-channel TLS only after the 150: a small file and a listing must still
/// arrive whole (ftpgate waits for the handshake before it closes the data connection).
/// After [`PY_FTPS_REUSING`].
const FTPLIB_SMALL: &str = r#"
import hashlib, sys
f = Reusing(context=ctx)
f.connect(sys.argv[1], int(sys.argv[2]), timeout=30)
f.login("anonymous", "x")
f.prot_p()
h = hashlib.sha256()
f.retrbinary("RETR /pub/small.bin", h.update)
names = f.nlst("/pub")
print(h.hexdigest(), " ".join(sorted(n.rsplit("/", 1)[-1] for n in names)))
f.quit()
"#;

#[test]
fn small_protected_downloads_and_listings_reach_clients_that_handshake_late() {
    let (vs, gate) = setup();
    let small = random_bytes(1000, 69);
    vs.put_file("pub/small.bin", &small);
    let addr = gate.addr();
    let out = python(
        &format!("{PY_FTPS_REUSING}{FTPLIB_SMALL}"),
        &[&addr.ip().to_string(), &addr.port().to_string()],
    );
    assert_eq!(
        out.stdout_str().trim(),
        format!("{} small.bin", sha256_bytes(&small)),
        "{out:?}"
    );
}
