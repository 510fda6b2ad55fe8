//! Several certificates toward FTPS clients (`tls.certificates`): each client gets the first
//! one in the policy's order that it can verify. Real clients choose: Python's ssl (OpenSSL)
//! with TLS 1.3, and with TLS 1.2 limited to ECDHE-RSA suites; `openssl s_client` with TLS
//! 1.3 limited to RSA-PSS signatures; curl over explicit FTPS; each with a whole protected
//! download whose SHA-256 is the file's. And `--check` reports a key that does not match its
//! certificate at that entry of the list.

mod common;

use std::path::{Path, PathBuf};

use serde_json::json;

use common::*;

/// (ECDSA certificate, key), (RSA certificate, key), in `dir`.
fn two_certificates(dir: &Path) -> ((PathBuf, PathBuf), (PathBuf, PathBuf)) {
    let ecdsa = generate_ecdsa_certificate(dir, "ecdsa.test");
    let rsa = generate_named_certificate(dir, "rsa", &["-newkey", "rsa:2048"], "rsa.test");
    (ecdsa, rsa)
}

fn entry((cert, key): &(PathBuf, PathBuf)) -> serde_json::Value {
    json!({ "certificate": cert.to_string_lossy(), "private_key": key.to_string_lossy() })
}

fn gate_with(vs: &Vsftpd, list: serde_json::Value) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .ftps()
        .set(&["tls"], json!({ "certificates": list }))
        .start()
}

/// The `certificate_key` of every `tls` event of a client's control connection, in order;
/// waits until there are `n`. Panics if any other connection's event carries one.
fn certificate_keys(gate: &Ftpgate, n: usize) -> Vec<String> {
    let control = |e: &serde_json::Value| {
        e["event"] == "tls" && e["channel"] == "control" && e["side"] == "client"
    };
    let events = gate.wait_audit(std::time::Duration::from_secs(20), |events| {
        events.iter().filter(|e| control(e)).count() >= n
    });
    for e in events.iter().filter(|e| e["event"] == "tls" && !control(e)) {
        assert!(e.get("certificate_key").is_none(), "{e}");
    }
    events
        .iter()
        .filter(|e| control(e))
        .map(|e| e["certificate_key"].as_str().unwrap_or("(none)").to_owned())
        .collect()
}

/// The SHA-256 of the DER certificate in the PEM file `path`.
fn der_sha256(path: &Path) -> String {
    let out = run(
        std::process::Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(path),
        std::time::Duration::from_secs(30),
    );
    out.assert_success("openssl x509");
    sha256_bytes(&out.stdout)
}

/// After [`PY_FTPS_REUSING`]. argv: host port variant path. Logs in over explicit FTPS, PROT
/// P, downloads `path` over a data connection that resumes the control session, and prints
/// the SHA-256 of the control and of the data connection's certificate (DER) and of the
/// file. `tls12-rsa` limits the client to TLS 1.2 with ECDHE-RSA suites (its signature
/// algorithms still name ECDSA).
const FTPLIB_PEER: &str = r#"
import hashlib, sys
host, port, variant, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if variant == "tls12-rsa":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
seen = []
class Recording(Reusing):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = Reusing.ntransfercmd(self, cmd, rest)
        seen.append((hashlib.sha256(conn.getpeercert(True)).hexdigest(), conn.version()))
        return conn, size
f = Recording(context=ctx)
f.connect(host, port, timeout=30)
f.login("anonymous", "x")
f.prot_p()
h = hashlib.sha256()
f.retrbinary("RETR " + path, h.update)
control = hashlib.sha256(f.sock.getpeercert(True)).hexdigest()
print(control, f.sock.version(), seen[0][0], seen[0][1], h.hexdigest())
f.quit()
"#;

#[test]
fn each_client_gets_the_first_certificate_it_can_verify() {
    let vs = Vsftpd::start();
    let data = random_bytes(3 << 20, 81);
    vs.put_file("pub/f.bin", &data);
    let file_sum = sha256_bytes(&data);
    let dir = temp_dir();
    let (ecdsa, rsa) = two_certificates(dir.path());
    let (ecdsa_sum, rsa_sum) = (der_sha256(&ecdsa.0), der_sha256(&rsa.0));
    let mut gate = gate_with(&vs, json!([entry(&ecdsa), entry(&rsa)]));
    let addr = gate.addr();
    let (host, port) = (addr.ip().to_string(), addr.port().to_string());

    let ftplib = |variant: &str| {
        let script = format!("{PY_FTPS_REUSING}{FTPLIB_PEER}");
        let out = python(&script, &[&host, &port, variant, "/pub/f.bin"]);
        out.stdout_str()
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // OpenSSL's defaults: TLS 1.3, ECDSA among its signature algorithms: the first entry.
    assert_eq!(
        ftplib("default"),
        [
            ecdsa_sum.as_str(),
            "TLSv1.3",
            ecdsa_sum.as_str(),
            "TLSv1.3",
            file_sum.as_str()
        ],
        "a TLS 1.3 client that accepts ECDSA"
    );
    // The audit trail says which certificate each client got (rustls does not).
    assert_eq!(certificate_keys(&gate, 1), ["ECDSA"]);
    // TLS 1.2 with RSA suites only: the ECDSA certificate would leave no suite in common.
    assert_eq!(
        ftplib("tls12-rsa"),
        [
            rsa_sum.as_str(),
            "TLSv1.2",
            rsa_sum.as_str(),
            "TLSv1.2",
            file_sum.as_str()
        ],
        "a TLS 1.2 client with ECDHE-RSA suites only"
    );
    assert_eq!(certificate_keys(&gate, 2), ["ECDSA", "RSA"]);

    // TLS 1.3 with RSA-PSS as the only signature it verifies: the RSA certificate.
    let s_client = |sigalgs: &str| {
        let out = run(
            std::process::Command::new("openssl")
                .args([
                    "s_client",
                    "-starttls",
                    "ftp",
                    "-tls1_3",
                    "-sigalgs",
                    sigalgs,
                ])
                .arg("-connect")
                .arg(addr.to_string())
                .stdin(std::process::Stdio::null()),
            std::time::Duration::from_secs(30),
        );
        let pem = out.stdout_str();
        let begin = pem.find("-----BEGIN CERTIFICATE-----");
        let end = pem.find("-----END CERTIFICATE-----");
        match (begin, end) {
            (Some(b), Some(e)) => pem[b..e + "-----END CERTIFICATE-----".len()].to_owned(),
            _ => panic!("no certificate from s_client: {out:?}"),
        }
    };
    let file_pem = |path: &Path| {
        std::fs::read_to_string(path)
            .expect("read certificate")
            .trim()
            .to_owned()
    };
    assert_eq!(s_client("rsa_pss_rsae_sha256"), file_pem(&rsa.0));
    assert_eq!(certificate_keys(&gate, 3), ["ECDSA", "RSA", "RSA"]);
    assert_eq!(s_client("ecdsa_secp256r1_sha256"), file_pem(&ecdsa.0));
    assert_eq!(certificate_keys(&gate, 4), ["ECDSA", "RSA", "RSA", "ECDSA"]);

    // curl, explicit FTPS, a whole protected download, and the subject it was shown.
    let out_file = dir.path().join("down.bin");
    let url = format!("ftp://anonymous:x@{host}:{port}/pub/f.bin");
    let out = curl(&[
        "-v",
        "-k",
        "--ssl-reqd",
        "-o",
        out_file.to_str().expect("path"),
        &url,
    ]);
    out.assert_success("curl download");
    assert_eq!(sha256_file(&out_file), file_sum);
    assert!(out.stderr.contains("CN=ecdsa.test"), "{}", out.stderr);
    assert_eq!(
        certificate_keys(&gate, 5),
        ["ECDSA", "RSA", "RSA", "ECDSA", "ECDSA"]
    );
    // The same by key in the metrics: what is left to do before the RSA one can go.
    let metrics = gate.metrics_text();
    for line in [
        "ftpgate_tls_client_certificates_total{key=\"ECDSA\"} 3",
        "ftpgate_tls_client_certificates_total{key=\"RSA\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    gate.assert_healthy();
}

#[test]
fn the_policy_order_decides_not_the_key_type() {
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let (ecdsa, rsa) = two_certificates(dir.path());
    let rsa_sum = der_sha256(&rsa.0);
    // RSA first: every client accepts RSA, so every client gets it (`--check` warns).
    let mut gate = gate_with(&vs, json!([entry(&rsa), entry(&ecdsa)]));
    let addr = gate.implicit_addr();
    let out = python(
        PEER_CERT,
        &[&addr.ip().to_string(), &addr.port().to_string()],
    );
    assert_eq!(out.stdout_str().trim(), rsa_sum, "{out:?}");
    gate.assert_healthy();
}

/// Writes a policy listing two certificate entries ((certificate, key) each, in this order)
/// and runs `ftpgate --check` on it: (its output, the policy text, the policy's path). The
/// entries are on line 5.
fn check_two(
    dir: &Path,
    first: (&Path, &Path),
    second: (&Path, &Path),
) -> (Output, String, PathBuf) {
    let text = format!(
        r#"{{
  "listeners": [ {{ "address": "127.0.0.1:2121", "tls": "explicit" }} ],
  "tls": {{ "certificates": [
    {{ "certificate": "{}", "private_key": "{}" }},
    {{ "certificate": "{}", "private_key": "{}" }} ] }},
  "backends": {{ "b": {{ "servers": ["127.0.0.1:21"] }} }},
  "roles": {{ "r": {{ "allow": ["RETR"] }} }},
  "users": {{ "u": {{ "role": "r", "backend": "b" }} }},
  "audit": {{ "file": "{}" }}
}}
"#,
        first.0.display(),
        first.1.display(),
        second.0.display(),
        second.1.display(),
        dir.join("audit.jsonl").display()
    );
    let policy = dir.join("p.json");
    std::fs::write(&policy, &text).expect("write");
    let out = ftpgate_check(&policy);
    (out, text, policy)
}

/// The 1-based column of `path` (quoted) on line 5 of `text`.
fn column_on_line_5(text: &str, path: &Path) -> usize {
    text.lines()
        .nth(4)
        .and_then(|l| l.find(&format!("\"{}\"", path.display())))
        .expect("the entry on line 5")
        + 1
}

#[test]
fn check_reports_a_mismatched_key_at_its_entry() {
    let dir = temp_dir();
    let (ecdsa, rsa) = two_certificates(dir.path());
    // The ECDSA key under the RSA certificate.
    let (out, text, policy) = check_two(dir.path(), (&ecdsa.0, &ecdsa.1), (&rsa.0, &ecdsa.1));
    assert_eq!(out.code(), Some(1), "{out:?}");
    // Line 5, at the value of the second entry's "certificate".
    let column = column_on_line_5(&text, &rsa.0);
    let expected = format!("{}:5:{column}: tls.certificates[1]: ", policy.display());
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
    assert_eq!(
        out.stderr.matches(": tls.certificates[").count(),
        1,
        "{}",
        out.stderr
    );
}

/// Accepts any server certificate and records the end-entity one (handshake signatures are
/// still verified).
#[derive(Debug)]
struct Recorder {
    seen: std::sync::Mutex<Vec<Vec<u8>>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(end_entity.to_vec());
        }
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS 1.2 client that offers ECDSA signatures but only ECDHE-RSA cipher suites (a rustls
/// client names every signature scheme its verifier knows whatever its suites; OpenSSL
/// leaves ECDSA out then): the ECDSA certificate listed first would leave no suite in
/// common, so it gets the RSA one. Handshakes in memory against ftpgate's own server
/// configuration.
#[test]
fn a_tls12_client_with_rsa_suites_only_gets_the_rsa_certificate() {
    use rustls::crypto::ring::{cipher_suite, default_provider};
    let dir = temp_dir();
    let (ecdsa, rsa) = two_certificates(dir.path());
    let identities = [&ecdsa, &rsa]
        .iter()
        .map(|(cert, key)| ftpgate::tls::load_identity(cert, key).expect("identity"))
        .collect();
    let server = ftpgate::tls::TlsServer::new(identities).expect("server config");
    let config = server.for_session().expect("session config").control;

    let handshake = |suites: Vec<rustls::SupportedCipherSuite>| {
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: suites,
            ..default_provider()
        };
        let recorder = std::sync::Arc::new(Recorder {
            seen: std::sync::Mutex::new(Vec::new()),
            algorithms: provider.signature_verification_algorithms,
        });
        let client_config = rustls::ClientConfig::builder_with_provider(provider.into())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2")
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut client =
            rustls::ClientConnection::new(std::sync::Arc::new(client_config), name).expect("c");
        let mut server = rustls::ServerConnection::new(config.clone()).expect("server");
        for _ in 0..20 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            let mut wire = Vec::new();
            client.write_tls(&mut wire).expect("client write");
            server.read_tls(&mut wire.as_slice()).expect("server read");
            server.process_new_packets().expect("server handshake");
            let mut wire = Vec::new();
            server.write_tls(&mut wire).expect("server write");
            client.read_tls(&mut wire.as_slice()).expect("client read");
            client.process_new_packets().expect("client handshake");
        }
        assert!(!client.is_handshaking(), "handshake done");
        let seen = recorder.seen.lock().expect("seen").clone();
        let suite = client.negotiated_cipher_suite().map(|s| s.suite());
        (seen, suite)
    };
    let cert_der = |path: &Path| {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_file(path)
            .expect("certificate")
            .to_vec()
    };

    let (seen, suite) = handshake(vec![cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]);
    assert_eq!(seen, [cert_der(&rsa.0)]);
    assert_eq!(
        suite,
        Some(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
    );
    // The same client with ECDSA suites gets the first entry.
    let (seen, suite) = handshake(vec![
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ]);
    assert_eq!(seen, [cert_der(&ecdsa.0)]);
    assert_eq!(
        suite,
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
    );
}

/// `--check` on a list with RSA before ECDSA (the real key types, read from certificates
/// openssl made): the `certificate-order` warning at the ECDSA entry, exit 3; ECDSA first
/// is clean, exit 0.
#[test]
fn check_warns_when_rsa_hides_the_ecdsa_certificate() {
    let dir = temp_dir();
    let (ecdsa, rsa) = two_certificates(dir.path());
    let (out, _, _) = check_two(dir.path(), (&ecdsa.0, &ecdsa.1), (&rsa.0, &rsa.1));
    assert_eq!(out.code(), Some(0), "{out:?}");
    let (out, text, policy) = check_two(dir.path(), (&rsa.0, &rsa.1), (&ecdsa.0, &ecdsa.1));
    assert_eq!(out.code(), Some(3), "{out:?}");
    let column = column_on_line_5(&text, &ecdsa.0);
    let expected = format!(
        "{}:5:{column}: warning: tls.certificates[1].certificate: {}: this ECDSA P-256 \
         certificate comes after the RSA one of tls.certificates[0]",
        policy.display(),
        ecdsa.0.display()
    );
    assert!(out.stderr.contains(&expected), "{expected}\n{}", out.stderr);
    assert!(out.stderr.contains("[certificate-order]"), "{}", out.stderr);
}
