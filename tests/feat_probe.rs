//! FEAT before login: what ftpgate learned by probing its backend pools at start.
//!
//! lftp reads FEAT once, right after connecting, before login; through ftpgate it must see
//! `MLST` where every pool has it, and then list directories with `MLSD` (against pure-ftpd
//! and pyftpdlib), but not where a pool lacks it (vsftpd). Implicit-TLS pools are probed over
//! TLS, explicit ones in plain text before AUTH; a pool that cannot be reached, or whose probe
//! is turned off, counts as ftpgate's static list.

mod common;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use serde_json::{Value, json};

use common::*;

fn mlst_line(feat: &[String]) -> Option<&String> {
    feat.iter().find(|l| l.starts_with("MLST"))
}

/// `cls -l /` with lftp as `user` through `gate`; returns the commands lftp sent and what
/// it printed.
fn lftp_cls(gate: &Ftpgate, (user, pass): (&str, &str)) -> (Vec<String>, String) {
    let out = lftp(&format!(
        "open -u {user},{pass} ftp://127.0.0.1:{}; cls -l /",
        gate.addr().port()
    ));
    out.assert_success("lftp cls");
    (lftp_sent(&out.stderr), out.stdout_str())
}

fn has_verb(sent: &[String], verb: &str) -> bool {
    sent.iter()
        .any(|c| c.split(' ').next().is_some_and(|v| v == verb))
}

/// The decisions of the audit trail's command events for `verb`.
fn audited(events: &[Value], verb: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "command" && e["verb"] == verb)
        .map(|e| e["decision"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn lftp_lists_with_mlsd_through_ftpgate_to_pure_ftpd() {
    let pure = PureFtpd::start();
    pure.put_file("report.csv", b"a;b\n1;2\n");
    pure.put_file("data.bin", &random_bytes(10_000, 3));
    let gate = Ftpgate::builder()
        .backend("pure", pure.addr())
        .standard_roles()
        .user("carol", "full", "pure")
        .start();
    let feat = gate.feat_before_login();
    let mlst = mlst_line(&feat).unwrap_or_else(|| panic!("no MLST before login: {feat:?}"));
    for fact in ["type", "size", "modify"] {
        assert!(mlst.to_ascii_lowercase().contains(fact), "{mlst}");
    }
    if !gate.is_direct() {
        // What ftpgate does not relay is not advertised (pure-ftpd lists PRET, ESTA...).
        for absent in ["PRET", "ESTA", "ESTP", "IDLE", "AUTH TLS"] {
            assert!(!feat.iter().any(|l| l == absent), "{absent}: {feat:?}");
        }
    }
    let (sent, listing) = lftp_cls(&gate, PureFtpd::CAROL);
    assert!(has_verb(&sent, "MLSD"), "lftp used MLSD: {sent:?}");
    assert!(!has_verb(&sent, "LIST"), "{sent:?}");
    assert!(
        listing.contains("report.csv") && listing.contains("data.bin"),
        "{listing}"
    );
    assert!(
        listing.contains("10000"),
        "the sizes came with it: {listing}"
    );
    if !gate.is_direct() {
        let events = gate.wait_audit(IO_TIMEOUT, |ev| {
            ev.iter().any(|e| e["event"] == "session_end")
        });
        assert_eq!(audited(&events, "MLSD"), ["allow"], "relayed to pure-ftpd");
    }
}

#[test]
fn lftp_lists_with_mlsd_through_ftpgate_to_pyftpdlib() {
    let py = Pyftpdlib::start();
    fs::write(py.root().join("a.txt"), b"12345").expect("write");
    fs::create_dir(py.root().join("sub")).expect("mkdir");
    let gate = Ftpgate::for_pyftpdlib(&py);
    let feat = gate.feat_before_login();
    assert!(mlst_line(&feat).is_some(), "no MLST before login: {feat:?}");
    let (sent, listing) = lftp_cls(&gate, Pyftpdlib::ALICE);
    assert!(has_verb(&sent, "MLSD"), "lftp used MLSD: {sent:?}");
    assert!(
        listing.contains("a.txt") && listing.contains("sub"),
        "{listing}"
    );
    let log = py.log();
    assert!(
        log.contains("[alice] <- MLSD"),
        "pyftpdlib got the MLSD:\n{log}"
    );
    assert!(!log.contains("[alice] <- LIST"), "{log}");
}

#[test]
fn a_vsftpd_pool_keeps_mlst_out_of_feat_before_login() {
    let vs = Vsftpd::start();
    let py = Pyftpdlib::start();
    fs::write(py.root().join("a.txt"), b"12345").expect("write");
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .backend("pyftpd", py.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("alice", "full", "pyftpd")
        .start();
    if gate.is_direct() {
        return;
    }
    // Before USER the pool is unknown: only what both pools offer. TVFS (not in ftpgate's
    // static list) shows that both were learned.
    let feat = gate.feat_before_login();
    assert!(feat.iter().any(|l| l == "TVFS"), "{feat:?}");
    assert!(mlst_line(&feat).is_none(), "vsftpd has no MLST: {feat:?}");
    // So lftp lists alice's pyftpdlib directory with LIST, and it still works.
    let (sent, listing) = lftp_cls(&gate, Pyftpdlib::ALICE);
    assert!(!has_verb(&sent, "MLSD"), "{sent:?}");
    assert!(has_verb(&sent, "LIST"), "{sent:?}");
    assert!(listing.contains("a.txt"), "{listing}");
    // After login, FEAT is pyftpdlib's own (filtered), MLST included, as before.
    let mut c = Ftp::connect(gate.addr());
    c.login_ok(Pyftpdlib::ALICE.0, Pyftpdlib::ALICE.1);
    let (code, text) = c.cmd("FEAT");
    assert_eq!(code, 211, "{text}");
    assert!(text.contains("MLST"), "{text}");
}

/// A port nobody listens on (bound, then released).
fn dead_port() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    listener.local_addr().expect("addr")
}

/// ftpgate's own lines plus its static list: the answer when nothing could be learned.
const STATIC_ANSWER: &[&str] = &[
    "EPRT",
    "EPSV",
    "PASV",
    "MDTM",
    "REST STREAM",
    "SIZE",
    "UTF8",
];

#[test]
fn a_pool_that_cannot_be_probed_counts_as_the_static_list() {
    let py = Pyftpdlib::start();
    let gate = Ftpgate::builder()
        .backend("pyftpd", py.addr())
        .backend("gone", dead_port())
        .standard_roles()
        .user("alice", "full", "pyftpd")
        .start();
    if gate.is_direct() {
        return;
    }
    assert_eq!(gate.feat_before_login(), STATIC_ANSWER);
    let log = gate.stderr_log();
    assert!(
        log.contains("(pool gone) failed:"),
        "the failed probe is logged:\n{log}"
    );
    assert!(log.contains("(pool pyftpd) done:"), "{log}");
}

#[test]
fn feature_probe_false_leaves_the_backend_alone() {
    let py = Pyftpdlib::start();
    let gate = Ftpgate::builder()
        .backend("pyftpd", py.addr())
        .standard_roles()
        .user("alice", "full", "pyftpd")
        .set(&["backends", "pyftpd", "feature_probe"], Value::Bool(false))
        .start();
    if gate.is_direct() {
        return;
    }
    assert_eq!(gate.feat_before_login(), STATIC_ANSWER);
    assert_eq!(probes_done(&gate.stderr_log()), 0);
    assert!(
        !py.log().contains("FEAT"),
        "no probe reached the backend:\n{}",
        py.log()
    );
}

#[test]
fn tls_pools_are_probed_implicit_over_tls_and_explicit_before_auth() {
    let dir = temp_dir();
    let (ca, cert, key) = generate_ca_and_server(dir.path());
    let vsftpd_tls = |implicit: bool| {
        Vsftpd::start_with(&format!(
            "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\n\
             force_anon_data_ssl=YES\nrsa_cert_file={}\nrsa_private_key_file={}\n\
             implicit_ssl={}\n",
            cert.display(),
            key.display(),
            if implicit { "YES" } else { "NO" },
        ))
    };
    let implicit = vsftpd_tls(true);
    let explicit = vsftpd_tls(false);
    let ca = json!(ca.to_string_lossy());
    let gate = Ftpgate::builder()
        .backend("implicit", implicit.addr())
        .backend("explicit", explicit.addr())
        .standard_roles()
        .user("anonymous", "full", "implicit")
        .user("ftp", "full", "explicit")
        .set(&["backends", "implicit", "tls"], json!("implicit"))
        .set(&["backends", "implicit", "ca_file"], ca.clone())
        .set(&["backends", "explicit", "tls"], json!("explicit"))
        .set(&["backends", "explicit", "ca_file"], ca)
        .start();
    if gate.is_direct() {
        return;
    }
    let feat = gate.feat_before_login();
    assert!(
        feat.iter().any(|l| l == "TVFS"),
        "both pools learned: {feat:?}\n{}",
        gate.stderr_log()
    );
    // The backends' own TLS lines are not ftpgate's (this listener has no TLS).
    assert!(!feat.iter().any(|l| l.starts_with("AUTH")), "{feat:?}");
    // Each backend's first command is the probe's FEAT: the implicit one read it over TLS
    // (vsftpd logs nothing of a failed handshake), the explicit one in plain text, before
    // any AUTH.
    for (name, vs) in [("implicit", &implicit), ("explicit", &explicit)] {
        let commands = Vsftpd::commands(&vs.log());
        assert_eq!(
            commands.first().map(String::as_str),
            Some("FEAT"),
            "{name}: {commands:?}"
        );
    }
}
