//! TLS toward the backend: a vsftpd with `ssl_enable=YES` and `require_ssl_reuse=YES`
//! (explicit and implicit) behind ftpgate, reached by plain and by FTPS clients, 8 MiB each
//! way with equal SHA-256; a backend certificate that does not verify fails the login with
//! 421 and an audit event; a pinned certificate replaces the CA check.

mod common;

use std::path::{Path, PathBuf};

use serde_json::json;

use common::*;

struct TlsBackend {
    vs: Vsftpd,
    ca: PathBuf,
    cert: PathBuf,
    _dir: tempfile::TempDir,
}

fn tls_vsftpd(implicit: bool) -> TlsBackend {
    let dir = temp_dir();
    let (ca, cert, key) = generate_ca_and_server(dir.path());
    let extra = format!(
        "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n\
         require_ssl_reuse=YES\nrsa_cert_file={}\nrsa_private_key_file={}\nimplicit_ssl={}\n",
        cert.display(),
        key.display(),
        if implicit { "YES" } else { "NO" },
    );
    TlsBackend {
        vs: Vsftpd::start_with(&extra),
        ca,
        cert,
        _dir: dir,
    }
}

fn gate(backend: &TlsBackend, mode: &str, verify: (&str, &Path), ftps: bool) -> Ftpgate {
    let mut b = Ftpgate::builder()
        .backend("secure", backend.vs.addr())
        .standard_roles()
        .user("anonymous", "full", "secure")
        .set(&["backends", "secure", "tls"], json!(mode))
        .set(
            &["backends", "secure", verify.0],
            json!(verify.1.to_string_lossy()),
        );
    if ftps {
        b = b.ftps();
    }
    b.start()
}

fn round_trip(gate: &Ftpgate, backend: &TlsBackend, client_tls: bool, active: bool, seed: u64) {
    let dir = temp_dir();
    let src = dir.path().join("up.bin");
    let sum = write_random_file(&src, BIG, seed);
    let name = format!("pub/b-{seed}.bin");
    let url = format!("ftp://anonymous:x@127.0.0.1:{}/{name}", gate.addr().port());
    let mut args: Vec<&str> = vec!["-k"];
    if client_tls {
        args.push("--ssl-reqd");
    }
    if active {
        args.extend(["-P", "127.0.0.1"]);
    }
    let mut up = args.clone();
    up.extend(["-T", src.to_str().expect("path"), &url]);
    curl(&up).assert_success("upload through ftpgate to the TLS backend");
    assert_eq!(sha256_file(&backend.vs.root().join(&name)), sum);
    let dst = dir.path().join("down.bin");
    let mut down = args.clone();
    down.extend(["-o", dst.to_str().expect("path"), &url]);
    curl(&down).assert_success("download through ftpgate from the TLS backend");
    assert_eq!(sha256_file(&dst), sum);
}

#[test]
fn plain_clients_reach_an_explicit_tls_backend_that_requires_session_reuse() {
    let backend = tls_vsftpd(false);
    let gate = gate(&backend, "explicit", ("ca_file", &backend.ca), false);
    round_trip(&gate, &backend, false, false, 71);
    round_trip(&gate, &backend, false, true, 72);
    // The backend really spoke TLS: vsftpd logs the AUTH TLS it was sent.
    assert!(
        backend.vs.log().contains("AUTH TLS"),
        "{}",
        backend.vs.log()
    );
    // Four FTP sessions (an upload and a download each round trip), one after the other:
    // the first control connection toward the backend is a full handshake, every later one
    // resumes a TLS session an earlier FTP session left (vsftpd then skips its certificate
    // signature), and every data connection resumed (require_ssl_reuse let it through).
    let events = gate.wait_audit(std::time::Duration::from_secs(5), |ev| {
        ev.iter().filter(|e| e["event"] == "session_end").count() >= 4
    });
    assert_eq!(
        tls_resumed(&events, "control", "backend"),
        [false, true, true, true],
        "{events:?}"
    );
    let data = tls_resumed(&events, "data", "backend");
    assert!(data.len() >= 4 && data.iter().all(|r| *r), "{data:?}");
}

#[test]
fn ftps_clients_reach_an_implicit_tls_backend() {
    let backend = tls_vsftpd(true);
    let gate = gate(&backend, "implicit", ("ca_file", &backend.ca), true);
    round_trip(&gate, &backend, true, false, 73);
}

#[test]
fn a_pinned_certificate_replaces_the_ca_check() {
    let backend = tls_vsftpd(false);
    let gate = gate(
        &backend,
        "explicit",
        ("pinned_certificate", &backend.cert),
        false,
    );
    round_trip(&gate, &backend, false, false, 74);
}

#[test]
fn a_backend_certificate_that_does_not_verify_fails_the_login_with_421() {
    let backend = tls_vsftpd(false);
    // Another CA, which did not sign the backend's certificate.
    let other = temp_dir();
    let (wrong_ca, _, _) = generate_ca_and_server(other.path());
    let mut gate = gate(&backend, "explicit", ("ca_file", &wrong_ca), false);
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.cmd("USER anonymous").0, 331);
    let (code, text) = c.cmd("PASS x");
    assert_eq!(code, 421, "{text}");
    let events = gate.wait_audit(std::time::Duration::from_secs(5), |ev| {
        ev.iter().any(|e| e["kind"] == "backend_tls")
    });
    assert!(
        events.iter().any(|e| e["event"] == "policy_violation"
            && e["kind"] == "backend_tls"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("certificate"))),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "login" && e["reason"] == "backend_tls"),
        "{events:?}"
    );
    // The user name never crossed in plaintext: only AUTH TLS was sent before TLS failed.
    assert!(!backend.vs.log().contains("USER"), "{}", backend.vs.log());
    // Counted as a failed handshake of the control connection, backend side.
    let text = gate.metrics_text();
    assert!(
        text.lines()
            .any(|l| l
                == "ftpgate_tls_handshake_failures_total{channel=\"control\",side=\"backend\"} 1"),
        "{text}"
    );
    let _ = gate.stop();
}

#[test]
fn ftpgate_presents_its_client_certificate_to_a_backend_that_requires_one() {
    let dir = temp_dir();
    let (ca, cert, key) = generate_ca_and_server(dir.path());
    let extra = format!(
        "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n\
         require_ssl_reuse=YES\nrsa_cert_file={cert}\nrsa_private_key_file={key}\n\
         require_cert=YES\nvalidate_cert=YES\nca_certs_file={ca}\n",
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
    );
    let backend = TlsBackend {
        vs: Vsftpd::start_with(&extra),
        ca: ca.clone(),
        cert: cert.clone(),
        _dir: dir,
    };
    // Without a client certificate the backend refuses the TLS handshake.
    let mut without = gate(&backend, "explicit", ("ca_file", &backend.ca), false);
    let mut c = Ftp::connect(without.addr());
    assert_eq!(c.cmd("USER anonymous").0, 331);
    assert_eq!(c.cmd("PASS x").0, 421);
    let _ = without.stop();
    // With it (the test CA signed it for client use too), transfers work.
    let with = Ftpgate::builder()
        .backend("secure", backend.vs.addr())
        .standard_roles()
        .user("anonymous", "full", "secure")
        .set(&["backends", "secure", "tls"], json!("explicit"))
        .set(
            &["backends", "secure", "ca_file"],
            json!(ca.to_string_lossy()),
        )
        .set(
            &["backends", "secure", "client_certificate"],
            json!(cert.to_string_lossy()),
        )
        .set(
            &["backends", "secure", "client_key"],
            json!(backend._dir.path().join("server.key").to_string_lossy()),
        )
        .start();
    round_trip(&with, &backend, false, false, 75);
}

/// A TLS backend (explicit, threaded) that accepts the login but refuses `PROT P`, which
/// no real server does on purpose: ftpgate must find it before the client is told 230.
const REFUSES_PROT: &str = r#"
import socketserver, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
class H(socketserver.BaseRequestHandler):
    def send(self, line):
        self.f.write(line.encode() + b"\r\n")
    def handle(self):
        self.f = self.request.makefile("rwb", buffering=0)
        self.send("220 accepts logins, refuses protected data")
        while True:
            line = self.f.readline()
            if not line:
                return
            cmd = line.decode("latin-1").strip().upper()
            if cmd.startswith("AUTH TLS"):
                self.send("234 TLS")
                self.request = ctx.wrap_socket(self.request, server_side=True)
                self.f = self.request.makefile("rwb", buffering=0)
            elif cmd.startswith("USER"):
                self.send("331 Password.")
            elif cmd.startswith("PASS"):
                self.send("230 Logged in.")
            elif cmd.startswith("PBSZ"):
                self.send("200 PBSZ=0")
            elif cmd.startswith("PROT"):
                self.send("534 Protection level refused.")
            elif cmd.startswith("QUIT"):
                self.send("221 Bye.")
                return
            else:
                self.send("502 Not here.")
socketserver.ThreadingTCPServer.daemon_threads = True
srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

#[test]
fn a_tls_backend_that_refuses_prot_p_fails_the_login_before_the_client_gets_230() {
    use std::io::BufRead;
    let dir = temp_dir();
    let (_ca, cert, key) = generate_ca_and_server(dir.path());
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.arg("-c")
        .arg(REFUSES_PROT)
        .arg(&cert)
        .arg(&key)
        .stdout(std::process::Stdio::piped());
    let mut server = ProcessGuard::spawn("refuses-prot", &mut cmd);
    let stdout = server.take_stdout().expect("stdout");
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("port line");
    let port: u16 = first.trim().parse().expect("port");
    let backend: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let gate = Ftpgate::builder()
        .backend("secure", backend)
        .standard_roles()
        .user("anonymous", "full", "secure")
        .set(&["backends", "secure", "tls"], json!("explicit"))
        .set(
            &["backends", "secure", "pinned_certificate"],
            json!(cert.to_string_lossy()),
        )
        .set(&["backends", "secure", "feature_probe"], json!(false))
        .start();
    let mut c = Ftp::connect(gate.addr());
    let (code, text) = c.login("anonymous", "x");
    assert_eq!(
        code, 421,
        "no 230 before the backend accepted PROT P: {text}"
    );
    assert!(
        text.contains("refused protected data connections"),
        "{text}"
    );
    let events = gate.wait_audit(std::time::Duration::from_secs(10), |ev| {
        ev.iter().any(|e| e["event"] == "session_end")
    });
    assert!(
        events.iter().any(|e| e["event"] == "login"
            && e["result"] == "failed"
            && e["reason"] == "backend_tls"),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "login" && e["result"] == "ok"),
        "{events:?}"
    );
}
