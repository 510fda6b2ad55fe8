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
