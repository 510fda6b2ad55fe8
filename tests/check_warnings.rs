//! `ftpgate --check` warnings, run through the binary: every warning from a policy that
//! triggers it, each at its line:column, the exit statuses (0 clean, 1 errors, 3 warnings
//! only, 1 for warnings under `--strict`), and no warning from the shipped examples beyond
//! the ones they earn on purpose.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const FTPGATE: &str = env!("CARGO_BIN_EXE_ftpgate");

/// The exit status of `--check` for a valid policy with warnings only.
const EXIT_WARNINGS: i32 = 3;

fn check(path: &Path, strict: bool) -> Output {
    let mut cmd = Command::new(FTPGATE);
    cmd.arg("--check");
    if strict {
        cmd.arg("--strict");
    }
    cmd.arg("--config").arg(path);
    run(&mut cmd, Duration::from_secs(30))
}

/// (line, column, code) of every `FILE:LINE:COLUMN: warning: ... [code]` line of stderr.
fn warnings(out: &Output, file: &Path) -> Vec<(usize, usize, String)> {
    let prefix = format!("{}:", file.display());
    out.stderr
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (l, rest) = rest.split_once(':')?;
            let (c, rest) = rest.split_once(": warning: ")?;
            let code = rest.rsplit_once(" [")?.1.strip_suffix(']')?;
            Some((l.parse().ok()?, c.parse().ok()?, code.to_owned()))
        })
        .collect()
}

/// 1-based line:column (in characters) of the first `needle` in `text`.
fn at(text: &str, needle: &str) -> (usize, usize) {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in the policy"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// A policy with one of each warning but `audit-file` (which needs an audit file, while
/// `audit-lost` needs none), and the text each is at.
const DANGEROUS: &str = r#"{
  "listeners": [
    { "address": "0.0.0.0:2121" },
    { "address": "203.0.113.254:2121" }
  ],
  "backends": { "files": { "servers": ["127.0.0.1:21"] } },
  "roles": {
    "read": { "allow": ["RETR", "LIST", "CWD", "PWD"] },
    "site": { "allow": ["RETR", "LIST", "SITE", "STOR"] }
  },
  "users": {
    "anonymous": { "role": "site", "backend": "files" },
    "partner": { "role": "read", "backend": "files",
                 "allow_fxp_to": ["0.0.0.0/0"], "tls_session_reuse": false,
                 "limits": { "sessions": 4294967295 } }
  },
  "defaults": { "limits": { "sessions_total": 4294967295 } },
  "audit": { "on_failure": "continue" }
}
"#;

const EXPECTED: &[(&str, &str)] = &[
    ("\"0.0.0.0:2121\"", "clear-passwords"),
    ("\"0.0.0.0:2121\"", "passive-advertise"),
    ("\"203.0.113.254:2121\"", "listener-address"),
    ("\"203.0.113.254:2121\"", "clear-passwords"),
    ("\"site\", \"backend\"", "anonymous-write"),
    ("\"0.0.0.0/0\"", "fxp-wide"),
    ("false", "tls-session-reuse"),
    ("4294967295 } }", "unlimited"),
    ("4294967295 } },", "unlimited"),
    ("\"continue\"", "audit-lost"),
];

fn sorted(mut list: Vec<(usize, usize, String)>) -> Vec<(usize, usize, String)> {
    list.sort();
    list
}

#[test]
fn every_warning_with_its_position_and_exit_3() {
    let dir = temp_dir();
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, DANGEROUS).expect("write policy");
    let out = check(&path, false);
    assert_eq!(out.code(), Some(EXIT_WARNINGS), "{}", out.stderr);
    let expected: Vec<(usize, usize, String)> = EXPECTED
        .iter()
        .map(|&(needle, code)| {
            let (line, column) = at(DANGEROUS, needle);
            (line, column, code.to_owned())
        })
        .collect();
    assert_eq!(
        sorted(warnings(&out, &path)),
        sorted(expected),
        "{}",
        out.stderr
    );
    // Every stderr line is a warning, and each has a reason.
    for line in out.stderr.lines() {
        assert!(line.contains(": warning: "), "{line}");
        assert!(line.len() > 80, "{line}");
    }
    let stdout = out.stdout_str();
    assert!(
        stdout.starts_with(&format!("{}: OK (10 warnings)\n", path.display())),
        "{stdout}"
    );

    // With --strict the same policy is refused, with no summary.
    let out = check(&path, true);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert_eq!(warnings(&out, &path).len(), EXPECTED.len());
    assert!(
        out.stderr.contains("refused (10 warnings): --strict"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout_str(), "");
}

#[test]
fn an_audit_file_in_a_missing_directory() {
    let dir = temp_dir();
    let path = dir.path().join("ftpgate.json");
    let audit = dir.path().join("no-such-dir/audit.jsonl");
    let text = format!(
        r#"{{
  "listeners": [{{ "address": "127.0.0.1:2121" }}],
  "backends": {{ "files": {{ "servers": ["127.0.0.1:21"] }} }},
  "roles": {{ "read": {{ "allow": ["RETR"] }} }},
  "users": {{ "alice": {{ "role": "read", "backend": "files" }} }},
  "audit": {{ "file": "{}" }}
}}
"#,
        audit.display()
    );
    fs::write(&path, &text).expect("write policy");
    let out = check(&path, false);
    assert_eq!(out.code(), Some(EXIT_WARNINGS), "{}", out.stderr);
    let (line, column) = at(&text, &format!("\"{}", audit.display()));
    assert_eq!(
        warnings(&out, &path),
        [(line, column, "audit-file".to_owned())]
    );
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    // Once the directory is there, the policy is clean: exit 0, nothing on stderr.
    fs::create_dir(dir.path().join("no-such-dir")).expect("mkdir");
    let out = check(&path, true);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert!(
        out.stdout_str()
            .starts_with(&format!("{}: OK\n", path.display()))
    );
}

#[test]
fn errors_exit_1_and_come_without_warnings() {
    let dir = temp_dir();
    let path = dir.path().join("ftpgate.json");
    // A wrong role name next to a dangerous setting: errors only, exit 1.
    let text = DANGEROUS.replacen(r#""role": "read""#, r#""role": "reed""#, 1);
    fs::write(&path, text).expect("write policy");
    for strict in [false, true] {
        let out = check(&path, strict);
        assert_eq!(out.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains("no role named \"reed\""),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    }
}

/// The warnings each shipped example earns on purpose: the plain-FTP examples keep plain
/// FTP for partners that cannot do FTPS (their passwords cross the network in clear), one
/// has no NAT address, and the FTPS example has a legacy client that cannot resume TLS
/// sessions. An example may lose these (it is then cleaner); any other warning fails.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("etc/ftpgate.json", &[]),
    ("packaging/ftpgate.json", &["passive-advertise"]),
    (
        "packaging/examples/document-upload-only.json",
        &["clear-passwords", "passive-advertise"],
    ),
    ("packaging/examples/edi-partners.json", &["clear-passwords"]),
    (
        "packaging/examples/ftps-termination.json",
        &["tls-session-reuse"],
    ),
    (
        "packaging/examples/mainframe-readonly.json",
        &["clear-passwords"],
    ),
    (
        "packaging/examples/regulated-filecopy.json",
        &["clear-passwords"],
    ),
];

#[test]
fn the_shipped_examples_give_no_other_warning() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir();
    // The examples name system paths; the check runs on copies that name the same files
    // under the test's directory (which exist, as they do on an installed host).
    let (cert, key) = generate_certificate(dir.path());
    let (ecdsa_cert, ecdsa_key) = generate_ecdsa_certificate(dir.path(), "ecdsa");
    let log = dir.path().join("log");
    let copies = dir.path().join("copies");
    fs::create_dir(&log).expect("mkdir");
    fs::create_dir(&copies).expect("mkdir");
    fs::set_permissions(&copies, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let mut seen = BTreeSet::new();
    for &(example, allowed) in EXAMPLES {
        let text = fs::read_to_string(root.join(example)).expect("read example");
        let text = text
            .replace("/var/log/ftpgate", &log.display().to_string())
            .replace("/var/lib/ftpgate/copies", &copies.display().to_string())
            .replace("/etc/ftpgate/tls/cert.pem", &cert.display().to_string())
            .replace("/etc/ftpgate/tls/key.pem", &key.display().to_string())
            .replace(
                "/etc/ftpgate/tls/ecdsa.pem",
                &ecdsa_cert.display().to_string(),
            )
            .replace(
                "/etc/ftpgate/tls/ecdsa.key",
                &ecdsa_key.display().to_string(),
            )
            .replace(
                "/etc/ftpgate/tls/internal-ca.pem",
                &cert.display().to_string(),
            );
        let path = dir.path().join(example.replace('/', "_"));
        fs::write(&path, text).expect("write copy");
        let out = check(&path, false);
        let found = warnings(&out, &path);
        for (_, _, code) in &found {
            assert!(
                allowed.contains(&code.as_str()),
                "{example}: unexpected warning {code}:\n{}",
                out.stderr
            );
        }
        let expected_code = if found.is_empty() { 0 } else { EXIT_WARNINGS };
        assert_eq!(
            out.code(),
            Some(expected_code),
            "{example}:\n{}",
            out.stderr
        );
        seen.insert(example);
    }
    // Every shipped example is in the table.
    for entry in fs::read_dir(root.join("packaging/examples")).expect("list examples") {
        let name = entry.expect("entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".json") {
            let example = format!("packaging/examples/{name}");
            assert!(seen.contains(example.as_str()), "{example} is not checked");
        }
    }
}

#[test]
fn the_policy_the_end_to_end_tests_run_is_clean() {
    let dir = temp_dir();
    let policy = Ftpgate::builder()
        .backend("vsftpd", "127.0.0.1:2100".parse().expect("addr"))
        .standard_roles()
        .user("alice", "full", "vsftpd")
        .user("anonymous", "read-only", "vsftpd")
        .policy(
            "127.0.0.1:2121".parse().expect("addr"),
            // As many ports as the harness gives each gateway (`port_range(20)`).
            (40000, 40019),
            &dir.path().join("audit.jsonl"),
        );
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, serde_json::to_string_pretty(&policy).expect("json")).expect("write");
    let out = check(&path, true);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
}

/// The semantic warnings through the binary: a shadowed and a never-matching access rule, a
/// passive range one client address can empty, and a certificate that expires in two days
/// (made with openssl(1) for the test), each at its line:column, exit 3; and `--strict`
/// refuses the same file.
#[test]
fn semantic_warnings_at_their_positions() {
    let dir = temp_dir();
    let cert = dir.path().join("short.pem");
    let key = dir.path().join("short.key");
    run(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        Duration::from_secs(60),
    )
    .assert_success("openssl req");
    let audit = dir.path().join("audit.jsonl");
    let text = format!(
        r#"{{
  "listeners": [{{ "address": "127.0.0.1:2121" }}],
  "passive": {{ "ports": "50000-50009" }},
  "tls": {{ "certificate": "{}", "private_key": "{}" }},
  "backends": {{ "files": {{ "servers": ["127.0.0.1:21"] }} }},
  "roles": {{ "read": {{ "allow": ["RETR"] }} }},
  "users": {{ "alice": {{ "role": "read", "backend": "files",
                         "allow_from": ["10.1.0.0/16"],
                         "deny_from": ["10.0.0.0/8", "10.9.0.0/16"] }} }},
  "audit": {{ "file": "{}" }}
}}
"#,
        cert.display(),
        key.display(),
        audit.display()
    );
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, &text).expect("write policy");
    let out = check(&path, false);
    assert_eq!(out.code(), Some(EXIT_WARNINGS), "{}", out.stderr);
    let expected: Vec<(usize, usize, String)> = [
        ("\"50000-50009\"", "passive-range"),
        (&*format!("\"{}\"", cert.display()), "certificate-expiry"),
        ("\"10.1.0.0/16\"", "rule-never-matches"),
        ("\"10.9.0.0/16\"", "rule-shadowed"),
    ]
    .iter()
    .map(|&(needle, code)| {
        let (line, column) = at(&text, needle);
        (line, column, code.to_owned())
    })
    .collect();
    assert_eq!(warnings(&out, &path), expected, "{}", out.stderr);
    assert!(
        out.stderr.contains("expires in 1 day ") || out.stderr.contains("expires in 2 days"),
        "{}",
        out.stderr
    );
    let out = check(&path, true);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
}
