//! Each warning: given by a policy that triggers it, at the right line:column, and absent
//! from one that differs only by what makes it dangerous.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::*;

/// A host with the addresses of 127.0.0.0/8, ::1 and 192.0.2.1, on which files can be
/// created only under /var/log/ftpgate.
struct FakeHost;

impl Host for FakeHost {
    fn has_address(&self, address: SocketAddr) -> bool {
        let ip = address.ip();
        ip.is_unspecified() || ip.is_loopback() || ip == IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
    }

    fn cannot_create(&self, path: &Path) -> Option<String> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        (dir != Path::new("/var/log/ftpgate"))
            .then(|| format!("the directory {} does not exist", dir.display()))
    }

    /// Certificates named `/etc/ftpgate/tls/expires-in-N.pem` expire N days from now; any
    /// other file expires in a year.
    fn certificate_not_after(&self, path: &Path) -> Option<i64> {
        let name = path.file_name()?.to_str()?;
        let days: i64 = match name.strip_prefix("expires-in-") {
            Some(rest) => rest.strip_suffix(".pem")?.parse().ok()?,
            None => 365,
        };
        Some(FAKE_NOW + days * 86_400)
    }

    /// Certificates whose file name starts with `ecdsa` have an ECDSA P-256 key, `ed25519`
    /// an Ed25519 one, any other an RSA one.
    fn certificate_key_type(&self, path: &Path) -> Option<KeyType> {
        let name = path.file_name()?.to_str()?;
        Some(if name.starts_with("ecdsa") {
            KeyType::Ecdsa("P-256")
        } else if name.starts_with("ed25519") {
            KeyType::Ed25519
        } else {
            KeyType::Rsa
        })
    }

    fn now(&self) -> i64 {
        FAKE_NOW
    }
}

/// The fake host's clock: 2026-12-02 00:00:00 UTC.
const FAKE_NOW: i64 = 1_796_169_600;

/// Triggers nothing: loopback, no anonymous user, the defaults everywhere else.
const CLEAN: &str = r#"{
  "listeners": [{ "address": "127.0.0.1:2121" }],
  "backends": { "files": { "servers": ["10.0.0.11:21"] } },
  "roles": { "download": { "allow": ["RETR", "LIST", "CWD", "PWD"] },
             "upload": { "allow": ["STOR", "CWD", "PWD"] },
             "site": { "allow": ["RETR", "SITE"] } },
  "users": { "alice": { "role": "download", "backend": "files" } },
  "audit": { "file": "/var/log/ftpgate/audit.jsonl" }
}"#;

/// `CLEAN` with the first `from` replaced by `to`.
fn with(from: &str, to: &str) -> String {
    assert!(CLEAN.contains(from), "{from}");
    CLEAN.replacen(from, to, 1)
}

fn warnings(doc: &str) -> Vec<Warning> {
    // Any prefix table the policy names has one range.
    let read = |_: &Path| Ok(b"192.0.2.0/24 64500 DE\n".to_vec());
    let policy = match crate::policy::parse_policy_with(doc, &read) {
        Ok(policy) => policy,
        Err(errors) => panic!("{doc}\n{errors:?}"),
    };
    lint(&policy, doc, &FakeHost)
}

fn codes(doc: &str) -> Vec<&'static str> {
    warnings(doc).iter().map(|w| w.code).collect()
}

/// The 1-based line:column of the first `needle` in `doc`.
fn at(doc: &str, needle: &str) -> (usize, usize) {
    let offset = doc.find(needle).unwrap_or_else(|| panic!("{needle}"));
    locate::line_col(doc, offset)
}

/// The one warning of `doc`, which must be of kind `code`, at `needle`, its message
/// containing `words`.
fn one(doc: &str, code: &str, needle: &str, words: &str) {
    let found = warnings(doc);
    assert_eq!(found.len(), 1, "{doc}\n{found:#?}");
    let w = &found[0];
    assert_eq!(w.code, code, "{w:?}");
    assert_eq!((w.line, w.column), at(doc, needle), "{w:?}");
    assert!(w.message.contains(words), "{w:?}");
}

#[test]
fn the_clean_policy_gives_no_warning() {
    assert_eq!(warnings(CLEAN), []);
}

#[test]
fn wide_fxp_networks() {
    let user = r#""alice": { "role": "download", "backend": "files" }"#;
    for wide in [
        "0.0.0.0/0",
        "::/0",
        "10.0.0.0/8",
        "2001:db8::/32",
        "::ffff:0.0.0.0/96",
    ] {
        let doc = with(
            user,
            &format!(
                r#""alice": {{ "role": "download", "backend": "files",
                     "allow_fxp_to": ["192.0.2.0/24", "{wide}"] }}"#
            ),
        );
        one(
            &doc,
            "fxp-wide",
            &format!("\"{wide}\""),
            "users.alice.allow_fxp_to[1]: ",
        );
    }
    let doc = with(
        user,
        r#""alice": { "role": "download", "backend": "files",
             "allow_fxp_to": ["192.0.2.0/24", "10.0.0.0/9", "2001:db8::/33", "::ffff:10.0.0.0/105"] }"#,
    );
    assert_eq!(codes(&doc), [] as [&str; 0]);
    let w = &warnings(&with(
        user,
        r#""alice": { "role": "download", "backend": "files", "allow_fxp_to": ["0.0.0.0/0"] }"#,
    ))[0];
    assert!(w.message.contains("any of 2^32 addresses"), "{w:?}");
}

#[test]
fn tls_session_reuse_off() {
    let user = r#""alice": { "role": "download", "backend": "files" }"#;
    let doc = with(
        user,
        r#""alice": { "role": "download", "backend": "files", "tls_session_reuse": false }"#,
    );
    one(
        &doc,
        "tls-session-reuse",
        "false",
        "users.alice.tls_session_reuse: false:",
    );
    let doc = with(
        user,
        r#""alice": { "role": "download", "backend": "files", "tls_session_reuse": true }"#,
    );
    assert_eq!(codes(&doc), [] as [&str; 0]);
}

#[test]
fn write_commands_for_anonymous_users() {
    let user = r#""alice": { "role": "download", "backend": "files" }"#;
    for name in ["anonymous", "ftp", "Anonymous"] {
        let doc = with(
            user,
            &format!(r#"{user}, "{name}": {{ "role": "upload", "backend": "files" }}"#),
        );
        one(
            &doc,
            "anonymous-write",
            "\"upload\", \"backend\"",
            "may send STOR (role \"upload\")",
        );
        let doc = with(
            user,
            &format!(r#"{user}, "{name}": {{ "role": "site", "backend": "files" }}"#),
        );
        one(
            &doc,
            "anonymous-write",
            "\"site\", \"backend\"",
            "SITE commands",
        );
        let doc = with(
            user,
            &format!(r#"{user}, "{name}": {{ "role": "download", "backend": "files" }}"#),
        );
        assert_eq!(codes(&doc), [] as [&str; 0], "{name}");
    }
    // A named user may write.
    let doc = with(user, r#""alice": { "role": "upload", "backend": "files" }"#);
    assert_eq!(codes(&doc), [] as [&str; 0]);
}

#[test]
fn effectively_unlimited_limits() {
    let audit = r#""audit":"#;
    for (key, value) in [
        ("sessions_total", "4294967295"),
        ("sessions_per_ip", "1000000"),
        ("failed_logins_per_ip", "4294967295"),
        ("sessions_waiting_for_backend", "4294967295"),
        ("max_file_size", "\"1TiB\""),
        ("rate", "\"10GiB/s\""),
        ("user_rate", "4294967295"),
    ] {
        let doc = with(
            audit,
            &format!(r#""defaults": {{ "limits": {{ "{key}": {value} }} }}, "audit":"#),
        );
        one(
            &doc,
            "unlimited",
            value,
            &format!("defaults.limits.{key}: "),
        );
        assert!(warnings(&doc)[0].message.contains("effectively no limit"));
    }
    for (key, value) in [
        ("sessions_total", "999999"),
        ("max_file_size", "\"4294967295\""),
        ("rate", "\"1GiB/s\""),
    ] {
        let doc = with(
            audit,
            &format!(r#""defaults": {{ "limits": {{ "{key}": {value} }} }}, "audit":"#),
        );
        assert_eq!(codes(&doc), [] as [&str; 0], "{key}");
    }
    let user = r#""alice": { "role": "download", "backend": "files" }"#;
    for (key, value) in [
        ("sessions", "4294967295"),
        ("max_file_size", "\"2TiB\""),
        ("rate", "\"2GB/s\""),
        ("user_rate", "\"2GB/s\""),
    ] {
        let doc = with(
            user,
            &format!(
                r#""alice": {{ "role": "download", "backend": "files",
                     "limits": {{ "{key}": {value} }} }}"#
            ),
        );
        one(
            &doc,
            "unlimited",
            value,
            &format!("users.alice.limits.{key}: "),
        );
    }
    // The user's value comes from defaults: warned about once, there.
    let doc = with(
        audit,
        r#""defaults": { "limits": { "rate": "2GB/s" } }, "audit":"#,
    );
    assert_eq!(codes(&doc), ["unlimited"]);
}

#[test]
fn audit_on_stderr_that_may_be_lost() {
    let audit = r#""audit": { "file": "/var/log/ftpgate/audit.jsonl" }"#;
    let doc = with(audit, r#""audit": { "on_failure": "continue" }"#);
    one(&doc, "audit-lost", "\"continue\"", "audit.on_failure: ");
    for ok in [
        r#""audit": { "on_failure": "refuse_sessions" }"#,
        r#""audit": {}"#,
        r#""audit": { "file": "/var/log/ftpgate/audit.jsonl", "on_failure": "continue" }"#,
        r#""audit": { "syslog": {}, "on_failure": "continue" }"#,
    ] {
        assert_eq!(codes(&with(audit, ok)), [] as [&str; 0], "{ok}");
    }
}

#[test]
fn audit_file_in_a_missing_directory() {
    let doc = with(
        "/var/log/ftpgate/audit.jsonl",
        "/var/log/nowhere/audit.jsonl",
    );
    one(
        &doc,
        "audit-file",
        "\"/var/log/nowhere/",
        "the directory /var/log/nowhere does not exist",
    );
}

#[test]
fn listener_on_an_address_the_host_does_not_have() {
    let doc = with("127.0.0.1:2121", "192.0.2.1:2121");
    // 192.0.2.1 is the fake host's own, but not loopback: passwords in clear.
    assert_eq!(codes(&doc), ["clear-passwords"]);
    let doc = with(
        r#"[{ "address": "127.0.0.1:2121" }]"#,
        r#"[{ "address": "127.0.0.1:2121" }, { "address": "198.51.100.7:21", "tls": "implicit" }]"#,
    );
    let tls = r#""audit":"#;
    let doc = doc.replacen(
        tls,
        r#""tls": { "certificate": "/etc/ftpgate/cert.pem", "private_key": "/etc/ftpgate/key.pem" }, "audit":"#,
        1,
    );
    one(
        &doc,
        "listener-address",
        "\"198.51.100.7:21\"",
        "listeners[1].address: 198.51.100.7: this host has no such address",
    );
}

#[test]
fn passwords_in_clear_on_a_network_address() {
    let listener = r#"[{ "address": "127.0.0.1:2121" }]"#;
    let doc = with(
        listener,
        r#"[{ "address": "192.0.2.1:21" }, { "address": "[::1]:21" }]"#,
    );
    one(
        &doc,
        "clear-passwords",
        "\"192.0.2.1:21\"",
        "and alice may log in without TLS",
    );
    // Required on the listener or for the user, or only anonymous users: nothing to lose.
    let tls = r#""tls": { "certificate": "/c.pem", "private_key": "/k.pem" }, "audit":"#;
    for (listener_to, extra, user_to) in [
        (
            r#"[{ "address": "192.0.2.1:21", "tls": "explicit", "require": "login" }]"#,
            tls,
            r#""alice": { "role": "download", "backend": "files" }"#,
        ),
        (
            r#"[{ "address": "192.0.2.1:21", "tls": "implicit" }]"#,
            tls,
            r#""alice": { "role": "download", "backend": "files" }"#,
        ),
        (
            r#"[{ "address": "192.0.2.1:21", "tls": "explicit" }]"#,
            tls,
            r#""alice": { "role": "download", "backend": "files", "tls_require": "login" }"#,
        ),
        (
            r#"[{ "address": "192.0.2.1:21" }]"#,
            r#""audit":"#,
            r#""anonymous": { "role": "download", "backend": "files" }"#,
        ),
    ] {
        let doc = with(listener, listener_to)
            .replacen(r#""audit":"#, extra, 1)
            .replacen(
                r#""alice": { "role": "download", "backend": "files" }"#,
                user_to,
                1,
            );
        assert_eq!(codes(&doc), [] as [&str; 0], "{doc}");
    }
    // With AUTH TLS offered but not required, the fix is the requirement.
    let doc = with(
        listener,
        r#"[{ "address": "192.0.2.1:21", "tls": "explicit" }]"#,
    )
    .replacen(r#""audit":"#, tls, 1);
    one(
        &doc,
        "clear-passwords",
        "\"192.0.2.1:21\"",
        "give the listener \"require\": \"login\"",
    );
}

#[test]
fn wildcard_listener_without_passive_advertise() {
    let listener = r#"[{ "address": "127.0.0.1:2121" }]"#;
    let user = r#""alice": { "role": "download", "backend": "files" }"#;
    let anonymous = r#""anonymous": { "role": "download", "backend": "files" }"#;
    for wildcard in ["0.0.0.0:21", "[::]:21"] {
        let doc = with(listener, &format!(r#"[{{ "address": "{wildcard}" }}]"#))
            .replacen(user, anonymous, 1);
        one(
            &doc,
            "passive-advertise",
            &format!("\"{wildcard}\""),
            "no passive.advertise",
        );
        let doc = doc.replacen(
            r#""audit":"#,
            r#""passive": { "advertise": "203.0.113.7" }, "audit":"#,
            1,
        );
        assert_eq!(codes(&doc), [] as [&str; 0]);
    }
}

#[test]
fn warnings_come_in_file_order_and_print_with_their_code() {
    let doc = with(
        r#""alice": { "role": "download", "backend": "files" }"#,
        r#""alice": { "role": "download", "backend": "files", "tls_session_reuse": false,
                     "allow_fxp_to": ["0.0.0.0/0"] },
           "ftp": { "role": "upload", "backend": "files" }"#,
    )
    .replacen("127.0.0.1:2121", "0.0.0.0:2121", 1);
    let found = warnings(&doc);
    let order: Vec<&str> = found.iter().map(|w| w.code).collect();
    assert_eq!(
        order,
        [
            "clear-passwords",
            "passive-advertise",
            "tls-session-reuse",
            "fxp-wide",
            "anonymous-write"
        ]
    );
    let (line, column) = at(&doc, "\"0.0.0.0/0\"");
    assert!(
        found[3].to_string().starts_with(&format!(
            "{line}:{column}: warning: users.alice.allow_fxp_to[0]: "
        )),
        "{}",
        found[3]
    );
    assert!(found[3].to_string().ends_with(" [fxp-wide]"));
}

#[test]
fn the_system_host() {
    let host = SystemHost;
    assert!(host.has_address("127.0.0.1:21".parse().expect("addr")));
    assert!(host.has_address("0.0.0.0:21".parse().expect("addr")));
    // TEST-NET-3 is never a local address here.
    assert!(!host.has_address("203.0.113.254:21".parse().expect("addr")));
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(host.cannot_create(&dir.path().join("audit.jsonl")), None);
    let missing: PathBuf = dir.path().join("missing/audit.jsonl");
    let reason = host.cannot_create(&missing).expect("missing directory");
    assert!(reason.contains("does not exist"), "{reason}");
    let file = dir.path().join("file");
    std::fs::write(&file, b"").expect("write");
    assert_eq!(host.cannot_create(&file), None, "an existing file");
    let reason = host
        .cannot_create(&file.join("audit.jsonl"))
        .expect("under a file");
    assert!(reason.contains("is not a directory"), "{reason}");
}

#[test]
fn running_as_root_is_a_warning() {
    let root = with(
        r#""listeners""#,
        r#""user": "root",
  "listeners""#,
    );
    let found = warnings(&root);
    assert_eq!(
        found.iter().map(|w| w.code).collect::<Vec<_>>(),
        ["runs-as-root"]
    );
    assert_eq!((found[0].line, found[0].column), at(&root, r#""root""#));
    let unprivileged = with(
        r#""listeners""#,
        r#""user": "ftpgate",
  "listeners""#,
    );
    assert!(codes(&unprivileged).is_empty());
    assert!(
        codes(CLEAN).is_empty(),
        "the default, ftpgate, is no warning"
    );
}

#[test]
fn shadowed_networks_in_one_list_and_under_the_global_deny_list() {
    let user = r#""alice": { "role": "download", "backend": "files" }"#;
    let doc = with(
        user,
        r#""alice": { "role": "download", "backend": "files",
             "deny_from": ["10.0.0.0/8", "10.9.0.0/16"] }"#,
    );
    one(
        &doc,
        "rule-shadowed",
        "\"10.9.0.0/16\"",
        "inside 10.0.0.0/8 (deny_from[0])",
    );
    // The second of two equal networks is the redundant one.
    let doc = with(
        user,
        r#""alice": { "role": "download", "backend": "files",
             "allow_from": ["192.0.2.0/24", "198.51.100.0/24", "192.0.2.0/24"] }"#,
    );
    let found = warnings(&doc);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].code, "rule-shadowed");
    assert_eq!(found[0].line, at(&doc, "\"192.0.2.0/24\"").0);
    assert!(
        found[0].message.contains("users.alice.allow_from[2]"),
        "{found:?}"
    );
    // A user's deny entry the global deny list already refuses.
    let doc = with(
        r#""audit""#,
        r#""access": { "deny_from": ["203.0.113.0/24"] },
  "audit""#,
    )
    .replacen(
        user,
        r#""alice": { "role": "download", "backend": "files", "deny_from": ["203.0.113.128/25"] }"#,
        1,
    );
    one(
        &doc,
        "rule-shadowed",
        "\"203.0.113.128/25\"",
        "access.deny_from[0]",
    );
    // Overlap-free lists, and an IPv4 network beside an IPv6 one, are clean.
    let doc = with(
        user,
        r#""alice": { "role": "download", "backend": "files",
             "allow_from": ["10.0.0.0/9", "10.128.0.0/9", "::/0"], "deny_from": ["0.0.0.0/32"] }"#,
    );
    assert_eq!(codes(&doc), [] as [&str; 0]);
}

#[test]
fn allow_entries_that_can_never_match() {
    let user = r#""alice": { "role": "download", "backend": "files" }"#;
    let doc = with(
        user,
        r#""alice": { "role": "download", "backend": "files",
             "allow_from": ["10.1.2.0/24"], "deny_from": ["10.0.0.0/8"] }"#,
    );
    one(
        &doc,
        "rule-never-matches",
        "\"10.1.2.0/24\"",
        "inside 10.0.0.0/8 of deny_from[0]",
    );
    // Outside the global allow list.
    let doc = with(
        r#""audit""#,
        r#""access": { "allow_from": ["192.0.2.0/24"] },
  "audit""#,
    )
    .replacen(
        user,
        r#""alice": { "role": "download", "backend": "files", "allow_from": ["198.51.100.7", "192.0.2.0/25"] }"#,
        1,
    );
    one(
        &doc,
        "rule-never-matches",
        "\"198.51.100.7\"",
        "outside every network of access.allow_from",
    );
    // Countries and AS numbers both allowed and denied.
    let doc = with(
        user,
        r#""alice": { "role": "download", "backend": "files",
             "allow_countries": ["DE", "FR"], "deny_countries": ["fr"],
             "allow_asns": [64500], "deny_asns": ["AS64500"] }"#,
    )
    .replacen(
        r#""audit""#,
        r#""access": { "prefix_table": "/etc/ftpgate/prefixes.tsv" },
  "audit""#,
        1,
    );
    let found = warnings(&doc);
    assert_eq!(
        found
            .iter()
            .map(|w| (w.code, w.line, w.column))
            .collect::<Vec<_>>(),
        [
            (
                "rule-never-matches",
                at(&doc, "\"FR\"").0,
                at(&doc, "\"FR\"").1
            ),
            (
                "rule-never-matches",
                at(&doc, "64500]").0,
                at(&doc, "64500]").1
            ),
        ],
        "{found:#?}"
    );
}

#[test]
fn a_passive_range_smaller_than_the_sessions_that_can_hold_a_port() {
    let ports = |range: &str, extra: &str| {
        with(
            r#""audit""#,
            &format!(
                r#""passive": {{ "ports": "{range}" }},{extra}
  "audit""#
            ),
        )
    };
    // One address may hold sessions_per_ip (20 by default) ports.
    one(
        &ports("50000-50018", ""),
        "passive-range",
        "\"50000-50018\"",
        "19 passive ports",
    );
    assert_eq!(codes(&ports("50000-50019", "")), [] as [&str; 0]);
    let lower = r#" "defaults": { "limits": { "sessions_per_ip": 5 } },"#;
    assert_eq!(codes(&ports("50000-50004", lower)), [] as [&str; 0]);
    // Each worker has its own slice.
    let two = with(
        r#""listeners""#,
        r#""workers": 2,
  "listeners""#,
    );
    let doc = two.replacen(
        r#""audit""#,
        r#""passive": { "ports": "50000-50029" },
  "audit""#,
        1,
    );
    one(
        &doc,
        "passive-range",
        "\"50000-50029\"",
        "15 per worker (30 in all)",
    );
    // When every user has a session limit, the range should hold their sum.
    let limited = ports("50000-50019", "").replacen(
        r#""alice": { "role": "download", "backend": "files" }"#,
        r#""alice": { "role": "download", "backend": "files", "limits": { "sessions": 25 } },
             "bob": { "role": "download", "backend": "files", "limits": { "sessions": 5 } }"#,
        1,
    );
    one(
        &limited,
        "passive-range",
        "\"50000-50019\"",
        "30 sessions run at once",
    );
    // The defaults (1000 ports, 10000 sessions_total, 20 per address) are no warning.
    assert_eq!(codes(CLEAN), [] as [&str; 0]);
}

#[test]
fn certificates_that_expire_within_30_days() {
    let tls = |cert: &str| {
        with(
            r#""audit""#,
            &format!(
                r#""tls": {{ "certificate": "/etc/ftpgate/tls/{cert}", "private_key": "/etc/ftpgate/tls/key.pem" }},
  "audit""#
            ),
        )
    };
    let doc = tls("expires-in-12.pem");
    one(
        &doc,
        "certificate-expiry",
        "\"/etc/ftpgate/tls/expires-in-12.pem\"",
        "expires in 12 days",
    );
    one(
        &tls("expires-in--3.pem"),
        "certificate-expiry",
        "\"/etc/ftpgate/tls/expires-in--3.pem\"",
        "expired 3 days ago",
    );
    assert_eq!(codes(&tls("expires-in-30.pem")), [] as [&str; 0]);
    assert_eq!(codes(&tls("cert.pem")), [] as [&str; 0]);
    let pinned = with(
        r#""servers": ["10.0.0.11:21"] }"#,
        r#""servers": ["10.0.0.11:21"], "tls": "explicit", "pinned_certificate": "/etc/ftpgate/expires-in-1.pem" }"#,
    );
    one(
        &pinned,
        "certificate-expiry",
        "\"/etc/ftpgate/expires-in-1.pem\"",
        "backends.files.pinned_certificate",
    );
}

#[test]
fn certificates_listed_in_an_order_that_defeats_the_choice() {
    let list = |names: &[&str]| {
        let entries: Vec<String> = names
            .iter()
            .map(|n| {
                format!(
                    r#"{{ "certificate": "/etc/ftpgate/tls/{n}", "private_key": "/etc/ftpgate/tls/{n}.key" }}"#
                )
            })
            .collect();
        with(
            r#""audit""#,
            &format!(
                "\"tls\": {{ \"certificates\": [\n    {} ] }},\n  \"audit\"",
                entries.join(",\n    ")
            ),
        )
    };
    // The cheap key first, RSA for the rest: no warning.
    assert_eq!(codes(&list(&["ecdsa.pem", "rsa.pem"])), [] as [&str; 0]);
    assert_eq!(
        codes(&list(&["ed25519.pem", "ecdsa.pem", "rsa.pem"])),
        [] as [&str; 0]
    );
    one(
        &list(&["rsa.pem", "ecdsa.pem"]),
        "certificate-order",
        "\"/etc/ftpgate/tls/ecdsa.pem\"",
        "tls.certificates[1].certificate: /etc/ftpgate/tls/ecdsa.pem: this ECDSA P-256 \
         certificate comes after the RSA one of tls.certificates[0]",
    );
    one(
        &list(&["ecdsa.pem", "rsa.pem", "ecdsa-2.pem"]),
        "certificate-never-chosen",
        "\"/etc/ftpgate/tls/ecdsa-2.pem\"",
        "an ECDSA P-256 certificate like tls.certificates[0]'s, which comes first",
    );
    one(
        &list(&["rsa.pem", "rsa-2.pem"]),
        "certificate-never-chosen",
        "\"/etc/ftpgate/tls/rsa-2.pem\"",
        "tls.certificates[1].certificate: /etc/ftpgate/tls/rsa-2.pem: an RSA certificate",
    );
}

#[test]
fn the_checkpoint_key_beside_the_audit_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("audit.key");
    std::fs::write(&key, [3u8; 32]).expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let section = |file: &str| {
        format!(
            r#""audit": {{ "file": "{file}", "integrity": {{ "key_file": "{}" }} }}"#,
            key.display()
        )
    };
    let apart = with(
        r#""audit": { "file": "/var/log/ftpgate/audit.jsonl" }"#,
        &section("/var/log/ftpgate/audit.jsonl"),
    );
    assert_eq!(codes(&apart), [] as [&str; 0]);
    let beside_file = dir.path().join("audit.jsonl");
    let beside = with(
        r#""audit": { "file": "/var/log/ftpgate/audit.jsonl" }"#,
        &section(&beside_file.display().to_string()),
    );
    let found = warnings(&beside);
    let w = found
        .iter()
        .find(|w| w.code == "audit-key")
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert_eq!(
        (w.line, w.column),
        at(&beside, &format!("\"{}\" }}", key.display()))
    );
    assert!(w.message.contains("audit.integrity.key_file: "), "{w:?}");
    assert!(w.message.contains("forge checkpoints"), "{w:?}");
}
