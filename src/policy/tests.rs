//! Loader tests: the model a valid file becomes, and every error with its exact position.
//!
//! Positions are checked two ways: literally for a few small documents, and with [`at`],
//! which finds a marker in the document by plain string search (independent of the
//! scanner under test).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::*;
use crate::limits;

/// The smallest useful policy: one listener, one backend, one role, one user.
const MINIMAL: &str = r#"{
  "listeners": [{ "address": "0.0.0.0:2121" }],
  "backends": { "files": { "servers": ["10.0.0.11:21"] } },
  "roles": { "download": { "allow": ["RETR", "LIST", "CWD", "PWD"] } },
  "users": { "alice": { "role": "download", "backend": "files" } }
}"#;

/// DESIGN.md §2, verbatim.
const DESIGN_EXAMPLE: &str = r#"{
  "workers": "auto",
  "listeners": [
    { "address": "0.0.0.0:21", "tls": "explicit" },
    { "address": "0.0.0.0:990", "tls": "implicit", "require": "all" },
    { "address": "10.0.0.2:2121", "tls": "none", "proxy_protocol": true }
  ],
  "passive": { "ports": "50000-50999", "advertise": "203.0.113.10" },
  "tls": { "certificate": "/etc/ftpgate/tls/cert.pem", "private_key": "/etc/ftpgate/tls/key.pem",
           "require": "none" },
  "backends": {
    "edi": { "servers": ["10.0.0.11:21", "10.0.0.12:21"], "balance": "round-robin",
             "tls": "none", "source_address": "10.0.0.2" }
  },
  "roles": {
    "read-only":   { "allow": ["RETR", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT",
                               "CWD", "CDUP", "PWD"] },
    "upload-only": { "allow": ["STOR", "CWD", "CDUP", "PWD", "MKD", "LIST"] }
  },
  "users": {
    "partner-acme": { "role": "upload-only", "backend": "edi",
                      "allow_from": ["198.51.100.0/24"],
                      "limits": { "max_file_size": "2GiB", "rate": "5MiB/s", "sessions": 4 } }
  },
  "routing": { "user_at_host": false, "targets": { "mainframe": "edi" } },
  "defaults": {
    "timeouts": { "login": 30, "idle": 300, "session": 900 },
    "limits": { "sessions_total": 10000, "sessions_per_ip": 20, "failed_logins_per_ip": 10 }
  },
  "audit": { "syslog": { "facility": "authpriv" }, "file": "/var/log/ftpgate/audit.jsonl",
             "mode": "filecopy",
             "filecopy": { "directory": "/var/lib/ftpgate/copies", "retention_days": 365 } }
}"#;

fn parse(doc: &str) -> Policy {
    match parse_policy(doc) {
        Ok(policy) => policy,
        Err(errors) => panic!("unexpected errors: {errors:#?}"),
    }
}

fn errors(doc: &str) -> Vec<String> {
    match parse_policy(doc) {
        Ok(_) => panic!("the document was accepted:\n{doc}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Line and column of the first occurrence of `needle` (or of its `nth` occurrence).
fn at_nth(doc: &str, needle: &str, nth: usize) -> (usize, usize) {
    let offset = doc
        .match_indices(needle)
        .nth(nth)
        .map(|(offset, _)| offset)
        .unwrap_or_else(|| panic!("{needle:?} not in the document"));
    let before = &doc[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn at(doc: &str, needle: &str) -> (usize, usize) {
    at_nth(doc, needle, 0)
}

/// `LINE:COLUMN: message` for an error at `needle`.
fn err_at(doc: &str, needle: &str, message: &str) -> String {
    let (line, column) = at(doc, needle);
    format!("{line}:{column}: {message}")
}

/// MINIMAL with `extra` members added at the top level (on the last line).
fn minimal_with(extra: &str) -> String {
    let body = MINIMAL.strip_suffix("\n}").expect("MINIMAL ends with }");
    format!("{body},\n{extra}\n}}")
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

// ---------------------------------------------------------------------------------------
// Valid documents

#[test]
fn minimal_policy_builds_the_expected_model() {
    let policy = parse(MINIMAL);
    let builtin = Timeouts {
        login: limits::DEFAULT_LOGIN_TIMEOUT,
        idle: limits::DEFAULT_IDLE_TIMEOUT,
        session: limits::DEFAULT_SESSION_TIMEOUT,
    };
    let expected = Policy {
        workers: Workers::Auto,
        listeners: vec![Listener {
            address: addr("0.0.0.0:2121"),
            tls: TlsMode::None,
            require: TlsRequire::None,
            proxy_protocol: false,
        }],
        passive: Passive {
            ports: limits::DEFAULT_PASSIVE_PORTS,
            advertise: None,
        },
        backends: BTreeMap::from([(
            "files".to_owned(),
            Backend {
                name: "files".to_owned(),
                servers: vec![addr("10.0.0.11:21")],
                balance: Balance::RoundRobin,
                tls: TlsMode::None,
                source_address: None,
            },
        )]),
        roles: BTreeMap::from([(
            "download".to_owned(),
            Role {
                name: "download".to_owned(),
                allow: [Verb::Retr, Verb::List, Verb::Cwd, Verb::Pwd]
                    .into_iter()
                    .collect(),
            },
        )]),
        users: BTreeMap::from([(
            "alice".to_owned(),
            User {
                name: "alice".to_owned(),
                role: "download".to_owned(),
                backend: "files".to_owned(),
                allow_from: Vec::new(),
                deny_from: Vec::new(),
                limits: UserLimits::default(),
                timeouts: builtin,
            },
        )]),
        defaults: Defaults {
            timeouts: builtin,
            limits: GlobalLimits {
                sessions_total: limits::DEFAULT_SESSIONS_TOTAL,
                sessions_per_ip: limits::DEFAULT_SESSIONS_PER_IP,
                failed_logins_per_ip: limits::DEFAULT_FAILED_LOGINS_PER_IP,
            },
        },
        audit: AuditPolicy {
            file: None,
            syslog: None,
            mode: AuditMode::Monitor,
            filecopy: None,
        },
        routing: Routing::default(),
        tls: None,
    };
    assert_eq!(policy, expected);
}

#[test]
fn policy_lookups() {
    let policy = parse(MINIMAL);
    let alice = policy.user("alice").expect("alice");
    assert!(
        policy.user("Alice").is_none(),
        "user names are case-sensitive"
    );
    assert!(policy.user("bob").is_none());
    let role = policy.role_of(alice);
    assert_eq!(role.name, "download");
    assert!(role.permits(Verb::Retr));
    assert!(role.permits(Verb::Cwd));
    assert!(!role.permits(Verb::Stor));
    assert!(
        !role.permits(Verb::User),
        "plumbing is never the role's business"
    );
    assert_eq!(
        policy.backend_of(alice).map(|b| b.servers.clone()),
        Some(vec![addr("10.0.0.11:21")])
    );

    // A user from elsewhere: no panic, a role that permits nothing, no backend.
    let mut stranger = alice.clone();
    stranger.role = "ghost".to_owned();
    stranger.backend = "nowhere".to_owned();
    let role = policy.role_of(&stranger);
    assert!(Verb::ALL.iter().all(|&verb| !role.permits(verb)));
    assert!(policy.backend_of(&stranger).is_none());
}

#[test]
fn verb_sets() {
    let mut set = VerbSet::default();
    assert!(set.is_empty());
    for &verb in Verb::ALL {
        assert!(!set.contains(verb));
        set.insert(verb);
        assert!(set.contains(verb));
    }
    assert_eq!(set.len(), Verb::ALL.len());
    assert_eq!(set.iter().collect::<Vec<_>>(), Verb::ALL.to_vec());
    let pair: VerbSet = [Verb::Stor, Verb::Retr, Verb::Stor].into_iter().collect();
    assert_eq!(pair.len(), 2);
    assert_eq!(
        pair.iter().collect::<Vec<_>>(),
        vec![Verb::Retr, Verb::Stor]
    );
    assert_eq!(format!("{pair:?}"), r#"{"RETR", "STOR"}"#);
    assert_ne!(pair, VerbSet::EMPTY);
}

#[test]
fn a_full_supported_policy() {
    let doc = r#"{
  "workers": 4,
  "listeners": [
    { "address": "0.0.0.0:21", "tls": "none", "require": "none", "proxy_protocol": false },
    { "address": "[::]:21" }
  ],
  "passive": { "ports": "40000-40009", "advertise": "203.0.113.10" },
  "backends": {
    "edi": { "servers": ["10.0.0.11:21", "[2001:db8::12]:2121"], "balance": "first-available",
             "tls": "none" }
  },
  "roles": {
    "read-only": { "allow": ["retr", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT",
                             "XCWD", "CDUP", "XPWD"] },
    "nothing": { "allow": [] }
  },
  "users": {
    "partner-acme": { "role": "read-only", "backend": "edi", "allow_from": [], "deny_from": [],
                      "limits": {}, "timeouts": { "idle": 60 } },
    "guest": { "role": "nothing", "backend": "edi" }
  },
  "routing": { "user_at_host": false, "targets": { "mainframe": "edi" } },
  "defaults": { "timeouts": { "login": 20, "session": 3600 }, "limits": {} },
  "audit": { "file": "/var/log/ftpgate/audit.jsonl", "mode": "monitor" }
}"#;
    let policy = parse(doc);
    assert_eq!(policy.workers, Workers::Count(4));
    assert_eq!(policy.listeners.len(), 2);
    assert_eq!(policy.listeners[1].address, addr("[::]:21"));
    assert_eq!(policy.passive.ports, (40000, 40009));
    assert_eq!(
        policy.passive.advertise,
        Some("203.0.113.10".parse().unwrap())
    );
    let edi = &policy.backends["edi"];
    assert_eq!(edi.balance, Balance::FirstAvailable);
    assert_eq!(edi.servers[1], addr("[2001:db8::12]:2121"));
    let read_only = &policy.roles["read-only"];
    assert!(read_only.permits(Verb::Retr) && read_only.permits(Verb::Cwd));
    assert!(read_only.permits(Verb::Pwd) && !read_only.permits(Verb::Stor));
    assert_eq!(read_only.allow.len(), 11);
    assert!(policy.roles["nothing"].allow.is_empty());
    // Timeouts: the user's own, else defaults.timeouts, else the built-in default.
    let acme = &policy.users["partner-acme"];
    assert_eq!(
        acme.timeouts,
        Timeouts {
            login: 20,
            idle: 60,
            session: 3600
        }
    );
    let guest = &policy.users["guest"];
    assert_eq!(
        guest.timeouts,
        Timeouts {
            login: 20,
            idle: limits::DEFAULT_IDLE_TIMEOUT,
            session: 3600
        }
    );
    assert_eq!(policy.defaults.timeouts, guest.timeouts);
    assert_eq!(policy.routing.targets["mainframe"], "edi");
    assert!(!policy.routing.user_at_host);
    assert_eq!(
        policy.audit.file,
        Some(PathBuf::from("/var/log/ftpgate/audit.jsonl"))
    );

    let summary = policy.summary();
    for expected in [
        "workers: 4",
        "  0.0.0.0:21 tls none",
        "  [::]:21 tls none",
        "passive: ports 40000-40009 (10 ports), advertise 203.0.113.10",
        "  edi: 10.0.0.11:21, [2001:db8::12]:2121 (first-available)",
        "  read-only: CWD CDUP RETR PWD LIST NLST STAT SIZE MDTM MLSD MLST",
        "  nothing: (no commands beyond login and plumbing)",
        "  partner-acme: role read-only, backend edi, timeouts login 20s, idle 60s, session 3600s",
        "defaults: timeouts login 20s, idle 300s, session 3600s; sessions 10000 total, 20 per IP",
        "routing: USER name@target off",
        "  mainframe -> edi",
        "audit: monitor to file /var/log/ftpgate/audit.jsonl",
    ] {
        assert!(summary.contains(expected), "{expected:?} not in\n{summary}");
    }
}

#[test]
fn summary_of_the_minimal_policy() {
    let summary = parse(MINIMAL).summary();
    assert_eq!(
        summary,
        "workers: auto (one per CPU core)
listeners:
  0.0.0.0:2121 tls none
passive: ports 50000-50999 (1000 ports), advertise the address each client connected to
backends:
  files: 10.0.0.11:21 (round-robin)
roles:
  download: CWD RETR PWD LIST
users:
  alice: role download, backend files, timeouts login 30s, idle 300s, session 900s
defaults: timeouts login 30s, idle 300s, session 900s; sessions 10000 total, 20 per IP; 10 failed logins per IP
audit: monitor to stderr
"
    );
    assert!(summary.lines().count() < 25, "one screen");
}

#[test]
fn summary_cuts_long_lists() {
    let users: Vec<String> = (0..60)
        .map(|i| format!("\"u{i:02}\": {{ \"role\": \"download\", \"backend\": \"files\" }}"))
        .collect();
    let doc = MINIMAL.replace(
        r#""alice": { "role": "download", "backend": "files" }"#,
        &users.join(",\n"),
    );
    let summary = parse(&doc).summary();
    assert!(summary.contains("  u49: role download"));
    assert!(!summary.contains("u50"));
    assert!(summary.contains("  ... and 10 more"));
}

#[test]
fn byte_order_mark_is_skipped() {
    let doc = format!("\u{feff}{MINIMAL}");
    parse(&doc);
    let bad = "\u{feff}{\"listeners\": 5}";
    assert_eq!(
        errors(bad),
        ["1:15: listeners: invalid type: integer `5`, expected a sequence"]
    );
}

// ---------------------------------------------------------------------------------------
// DESIGN.md §2

#[test]
fn design_example_is_refused_only_for_features_not_enforced_yet() {
    let doc = DESIGN_EXAMPLE;
    let unsupported = |needle: &str, nth: usize, key: &str, hint: &str| {
        let (line, column) = at_nth(doc, needle, nth);
        format!("{line}:{column}: {key} is not supported by this version of ftpgate yet{hint}")
    };
    let expected = vec![
        unsupported("\"explicit\"", 0, "listeners[0].tls", "; use \"none\""),
        unsupported("\"implicit\"", 0, "listeners[1].tls", "; use \"none\""),
        unsupported("\"all\"", 0, "listeners[1].require", "; remove it"),
        unsupported("true", 0, "listeners[2].proxy_protocol", "; remove it"),
        unsupported(
            "\"tls\": { \"certificate\"",
            0,
            "tls",
            "; remove the section",
        ),
        unsupported(
            "\"source_address\"",
            0,
            "backends.edi.source_address",
            "; remove it",
        ),
        unsupported(
            "\"allow_from\"",
            0,
            "users.partner-acme.allow_from",
            "; remove it",
        ),
        unsupported("\"limits\"", 0, "users.partner-acme.limits", "; remove it"),
        unsupported("\"limits\"", 1, "defaults.limits", "; remove it"),
        unsupported("\"syslog\"", 0, "audit.syslog", "; use \"file\""),
        unsupported("\"filecopy\",", 0, "audit.mode", "; use \"monitor\""),
        unsupported("\"filecopy\": {", 0, "audit.filecopy", "; remove it"),
    ];
    assert_eq!(errors(doc), expected);
    // Spot-check the positions literally.
    assert_eq!(expected[0].split(": ").next(), Some("4:39"));
    assert_eq!(expected[4].split(": ").next(), Some("9:3"));
}

#[test]
fn design_example_without_unsupported_keys_is_valid() {
    let doc = DESIGN_EXAMPLE
        .replace(r#""tls": "explicit""#, r#""tls": "none""#)
        .replace(r#""tls": "implicit", "require": "all""#, r#""tls": "none""#)
        .replace(r#", "proxy_protocol": true"#, "")
        .replace(
            r#""tls": { "certificate": "/etc/ftpgate/tls/cert.pem", "private_key": "/etc/ftpgate/tls/key.pem",
           "require": "none" },"#,
            "",
        )
        .replace(r#", "source_address": "10.0.0.2""#, "")
        .replace(
            r#"
                      "allow_from": ["198.51.100.0/24"],"#,
            "",
        )
        .replace(
            r#",
                      "limits": { "max_file_size": "2GiB", "rate": "5MiB/s", "sessions": 4 }"#,
            "",
        )
        .replace(
            r#",
    "limits": { "sessions_total": 10000, "sessions_per_ip": 20, "failed_logins_per_ip": 10 }"#,
            "",
        )
        .replace(r#""syslog": { "facility": "authpriv" }, "#, "")
        .replace(
            r#""mode": "filecopy",
             "filecopy": { "directory": "/var/lib/ftpgate/copies", "retention_days": 365 } }"#,
            r#""mode": "monitor" }"#,
        );
    let policy = parse(&doc);
    assert_eq!(policy.listeners.len(), 3);
    assert_eq!(policy.passive.ports, (50000, 50999));
    assert_eq!(policy.backends["edi"].servers.len(), 2);
    assert_eq!(policy.roles.len(), 2);
    assert_eq!(policy.users["partner-acme"].role, "upload-only");
    assert_eq!(policy.users["partner-acme"].timeouts.session, 900);
}

/// Each entry of `unsupported_yet`, alone in an otherwise valid policy.
#[test]
fn every_unsupported_key_is_refused_on_its_own() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            r#"{ "address": "0.0.0.0:2121" }"#,
            r#"{ "address": "0.0.0.0:2121", "tls": "explicit" }"#,
            "\"explicit\"",
            "listeners[0].tls",
        ),
        (
            r#"{ "address": "0.0.0.0:2121" }"#,
            r#"{ "address": "0.0.0.0:2121", "tls": "implicit" }"#,
            "\"implicit\"",
            "listeners[0].tls",
        ),
        (
            r#"{ "address": "0.0.0.0:2121" }"#,
            r#"{ "address": "0.0.0.0:2121", "require": "login" }"#,
            "\"login\"",
            "listeners[0].require",
        ),
        (
            r#"{ "address": "0.0.0.0:2121" }"#,
            r#"{ "address": "0.0.0.0:2121", "proxy_protocol": true }"#,
            "true",
            "listeners[0].proxy_protocol",
        ),
        (
            r#""servers": ["10.0.0.11:21"]"#,
            r#""servers": ["10.0.0.11:21"], "tls": "explicit""#,
            "\"explicit\"",
            "backends.files.tls",
        ),
        (
            r#""servers": ["10.0.0.11:21"]"#,
            r#""servers": ["10.0.0.11:21"], "source_address": "10.0.0.2""#,
            "\"source_address\"",
            "backends.files.source_address",
        ),
        (
            r#""backend": "files""#,
            r#""backend": "files", "allow_from": ["10.0.0.0/8"]"#,
            "\"allow_from\"",
            "users.alice.allow_from",
        ),
        (
            r#""backend": "files""#,
            r#""backend": "files", "deny_from": ["10.0.0.0/8"]"#,
            "\"deny_from\"",
            "users.alice.deny_from",
        ),
        (
            r#""backend": "files""#,
            r#""backend": "files", "limits": { "sessions": 2 }"#,
            "\"limits\"",
            "users.alice.limits",
        ),
        (
            r#""backend": "files""#,
            r#""backend": "files", "limits": { "rate": "1MiB/s" }"#,
            "\"limits\"",
            "users.alice.limits",
        ),
        (
            r#""backend": "files""#,
            r#""backend": "files", "limits": { "max_file_size": 1000 }"#,
            "\"limits\"",
            "users.alice.limits",
        ),
    ];
    for &(from, to, needle, key) in cases {
        let doc = MINIMAL.replace(from, to);
        assert_ne!(doc, MINIMAL, "{from} not in MINIMAL");
        let message = format!("{key} is not supported by this version of ftpgate yet");
        let errors = errors(&doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let (line, column) = at(&doc, needle);
        assert!(
            errors[0].starts_with(&format!("{line}:{column}: {message}")),
            "{errors:?} vs {line}:{column}: {message}"
        );
    }

    let top_level: &[(&str, &str, &str)] = &[
        (
            r#""tls": { "certificate": "/c.pem", "private_key": "/k.pem" }"#,
            "\"tls\"",
            "tls",
        ),
        (
            r#""routing": { "user_at_host": true }"#,
            "true",
            "routing.user_at_host",
        ),
        (
            r#""defaults": { "limits": { "sessions_per_ip": 5 } }"#,
            "\"limits\"",
            "defaults.limits",
        ),
        (r#""audit": { "syslog": {} }"#, "\"syslog\"", "audit.syslog"),
    ];
    for &(extra, needle, key) in top_level {
        let doc = minimal_with(extra);
        let (line, column) = at(&doc, needle);
        let expected =
            format!("{line}:{column}: {key} is not supported by this version of ftpgate yet");
        let errors = errors(&doc);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with(&expected), "{errors:?} vs {expected}");
    }

    // audit filecopy: the mode and the section are both refused.
    let doc = minimal_with(
        r#""audit": { "mode": "filecopy", "filecopy": { "directory": "/var/lib/copies" } }"#,
    );
    let errors = errors(&doc);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with(&err_at(
        &doc,
        "\"filecopy\",",
        "audit.mode is not supported by this version of ftpgate yet"
    )));
    assert!(errors[1].starts_with(&err_at(
        &doc,
        "\"filecopy\": {",
        "audit.filecopy is not supported by this version of ftpgate yet"
    )));
}

#[test]
fn default_values_of_unsupported_keys_are_accepted() {
    let doc = MINIMAL
        .replace(
            r#"{ "address": "0.0.0.0:2121" }"#,
            r#"{ "address": "0.0.0.0:2121", "tls": "none", "require": "none",
                  "proxy_protocol": false }"#,
        )
        .replace(
            r#""servers": ["10.0.0.11:21"]"#,
            r#""servers": ["10.0.0.11:21"], "tls": "none""#,
        )
        .replace(
            r#""backend": "files""#,
            r#""backend": "files", "allow_from": [], "deny_from": [], "limits": {}"#,
        );
    let doc = format!(
        "{},\n{}\n}}",
        doc.strip_suffix("\n}").expect("ends with }"),
        r#""routing": { "user_at_host": false }, "defaults": { "limits": {} },
  "audit": { "mode": "monitor" }"#
    );
    let policy = parse(&doc);
    assert!(!policy.listeners[0].proxy_protocol);
    assert!(policy.users["alice"].allow_from.is_empty());
}

// ---------------------------------------------------------------------------------------
// Syntax, unknown keys, JSON types

/// The errors of a fragment of a policy, without those that only say it is a fragment: no
/// listener, a user without role or backend, a backend without servers, a section that is
/// not supported yet.
fn errors_besides_gaps(doc: &str) -> Vec<String> {
    errors(doc)
        .into_iter()
        .filter(|e| {
            !e.contains(": listeners: at least one listener is required")
                && !e.contains("\" is missing")
                && !e.contains(" is not supported by this version of ftpgate yet")
        })
        .collect()
}

#[test]
fn syntax_errors_have_positions() {
    assert_eq!(errors(""), ["1:1: EOF while parsing a value"]);
    assert_eq!(errors("{\n"), ["2:1: EOF while parsing an object"]);
    assert_eq!(errors("{} x"), ["1:4: trailing characters"]);
    assert_eq!(
        errors("{\n  \"listeners\": [,]\n}"),
        ["2:17: expected value"]
    );
    assert_eq!(errors("{\"workers\": 1,}"), ["1:15: trailing comma"]);
    // Columns count characters, not bytes.
    assert_eq!(
        errors("{\"users\": {\"é\": {\"role\": \"x\" \"backend\": \"y\"}}}"),
        ["1:30: expected `,` or `}`"]
    );
    // Deep nesting is refused by type long before serde_json's recursion limit.
    let deep = format!("{{\"listeners\": {}", "[".repeat(100_000));
    assert_eq!(
        errors(&deep),
        ["1:16: listeners[0]: invalid type: sequence, expected an object"]
    );
    let deep = "[".repeat(100_000);
    assert_eq!(
        errors(&deep),
        ["1:1: invalid type: sequence, expected an object"]
    );
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{ "listener": [] }"#,
            "\"listener\"",
            "listener: unknown field `listener`, expected one of `workers`, `listeners`, \
             `passive`, `tls`, `backends`, `roles`, `users`, `routing`, `defaults`, `audit`",
        ),
        (
            r#"{ "listeners": [{ "address": "0.0.0.0:21", "tsl": "none" }] }"#,
            "\"tsl\"",
            "listeners[0].tsl: unknown field `tsl`, expected one of `address`, `tls`, \
             `require`, `proxy_protocol`",
        ),
        (
            r#"{ "passive": { "port": "50000-50999" } }"#,
            "\"port\"",
            "passive.port: unknown field `port`, expected `ports` or `advertise`",
        ),
        (
            r#"{ "tls": { "cert": "/c.pem" } }"#,
            "\"cert\"",
            "tls.cert: unknown field `cert`, expected one of `certificate`, `private_key`, \
             `require`",
        ),
        (
            r#"{ "backends": { "edi": { "server": [] } } }"#,
            "\"server\"",
            "backends.edi.server: unknown field `server`, expected one of `servers`, \
             `balance`, `tls`, `source_address`",
        ),
        (
            r#"{ "roles": { "ro": { "allow": [], "deny": [] } } }"#,
            "\"deny\"",
            "roles.ro.deny: unknown field `deny`, expected `allow`",
        ),
        (
            r#"{ "users": { "bob": { "rolle": "ro" } } }"#,
            "\"rolle\"",
            "users.bob.rolle: unknown field `rolle`, expected one of `role`, `backend`, \
             `allow_from`, `deny_from`, `limits`, `timeouts`",
        ),
        (
            r#"{ "users": { "bob": { "limits": { "max_size": 1 } } } }"#,
            "\"max_size\"",
            "users.bob.limits.max_size: unknown field `max_size`, expected one of \
             `max_file_size`, `rate`, `sessions`",
        ),
        (
            r#"{ "users": { "bob": { "timeouts": { "idel": 1 } } } }"#,
            "\"idel\"",
            "users.bob.timeouts.idel: unknown field `idel`, expected one of `login`, `idle`, \
             `session`",
        ),
        (
            r#"{ "routing": { "user_at": true } }"#,
            "\"user_at\"",
            "routing.user_at: unknown field `user_at`, expected `user_at_host` or `targets`",
        ),
        (
            r#"{ "defaults": { "timeout": {} } }"#,
            "\"timeout\"",
            "defaults.timeout: unknown field `timeout`, expected `timeouts` or `limits`",
        ),
        (
            r#"{ "defaults": { "timeouts": { "login": 5, "logout": 5 } } }"#,
            "\"logout\"",
            "defaults.timeouts.logout: unknown field `logout`, expected one of `login`, \
             `idle`, `session`",
        ),
        (
            r#"{ "defaults": { "limits": { "sessions": 5 } } }"#,
            "\"sessions\"",
            "defaults.limits.sessions: unknown field `sessions`, expected one of \
             `sessions_total`, `sessions_per_ip`, `failed_logins_per_ip`",
        ),
        (
            r#"{ "audit": { "files": "/x" } }"#,
            "\"files\"",
            "audit.files: unknown field `files`, expected one of `syslog`, `file`, `mode`, \
             `filecopy`",
        ),
        (
            r#"{ "audit": { "syslog": { "facilty": "ftp" } } }"#,
            "\"facilty\"",
            "audit.syslog.facilty: unknown field `facilty`, expected `facility` or `app_name`",
        ),
        (
            r#"{ "audit": { "filecopy": { "dir": "/x" } } }"#,
            "\"dir\"",
            "audit.filecopy.dir: unknown field `dir`, expected `directory` or \
             `retention_days`",
        ),
    ];
    for &(doc, needle, message) in cases {
        assert_eq!(
            errors_besides_gaps(doc),
            [err_at(doc, needle, message)],
            "{doc}"
        );
    }
    // Over several lines, with a multi-byte character before the key.
    let doc = "{\n  \"users\": {\n    \"zoë\": { \"role\": \"ro\",\n      \"rôle\": \"x\" } },\n  \
               \"roles\": { \"ro\": { \"allow\": [] } } }";
    assert_eq!(
        errors_besides_gaps(doc),
        [
            "4:7: users.zoë.rôle: unknown field `rôle`, expected one of `role`, `backend`, \
          `allow_from`, `deny_from`, `limits`, `timeouts`"
        ]
    );
}

#[test]
fn json_type_errors_point_at_the_value() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{ "listeners": { "address": "0.0.0.0:21" } }"#,
            "{ \"address\"",
            "listeners: invalid type: map, expected a sequence",
        ),
        (
            r#"{ "listeners": [ "0.0.0.0:21" ] }"#,
            "\"0.0.0.0:21\"",
            "listeners[0]: invalid type: string \"0.0.0.0:21\", expected an object",
        ),
        (
            r#"{ "listeners": [ { "address": 21 } ] }"#,
            "21",
            "listeners[0].address: invalid type: integer `21`, expected a string",
        ),
        (
            r#"{ "listeners": [ { "address": "0.0.0.0:21", "proxy_protocol": "yes" } ] }"#,
            "\"yes\"",
            "listeners[0].proxy_protocol: invalid type: string \"yes\", expected a boolean",
        ),
        (
            r#"{ "passive": [ "50000-50999" ] }"#,
            "[ \"50000",
            "passive: invalid type: sequence, expected an object",
        ),
        (
            r#"{ "roles": { "ro": { "allow": "RETR" } } }"#,
            "\"RETR\"",
            "roles.ro.allow: invalid type: string \"RETR\", expected a sequence",
        ),
        (
            r#"{ "users": { "bob": 5 } }"#,
            "5",
            "users.bob: invalid type: integer `5`, expected an object",
        ),
        (
            r#"{ "users": { "bob": { "timeouts": { "idle": true } } } }"#,
            "true",
            "users.bob.timeouts.idle: invalid type: boolean `true`, expected a number or a string",
        ),
        (
            r#"{ "users": { "bob": { "timeouts": { "idle": [] } } } }"#,
            "[]",
            "users.bob.timeouts.idle: invalid type: sequence, expected a number or a string",
        ),
        (
            r#"{ "routing": { "targets": { "mf": 1 } } }"#,
            "1",
            "routing.targets.mf: invalid type: integer `1`, expected a string",
        ),
        (
            r#"{ "workers": {} }"#,
            "{}",
            "workers: invalid type: map, expected a number or a string",
        ),
        (
            r#"["listeners"]"#,
            "[",
            "invalid type: sequence, expected an object",
        ),
        (
            r#"{ "listeners": [{ "address": "0.0.0.0:21", "address": "0.0.0.0:22" }] }"#,
            "\"address\": \"0.0.0.0:22",
            "listeners[0].address is defined twice (first at line 1, column 19)",
        ),
    ];
    for &(doc, needle, message) in cases {
        assert_eq!(
            errors_besides_gaps(doc),
            [err_at(doc, needle, message)],
            "{doc}"
        );
    }
}

/// The example of the bug report: an unknown key used to hide every other error.
#[test]
fn an_unknown_key_hides_no_other_error() {
    let doc = r#"{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:2121" } ],
  "backends": { "b": { "servers": ["127.0.0.1:21"] } },
  "roles": {
    "broken": { "allow": ["RETR", "FROBNICATE"] }
  },
  "users": { "u": { "role": "broken", "backend": "nope" } },
  "colour": "blue"
}"#;
    assert_eq!(
        errors(doc),
        [
            "6:35: roles.broken.allow[1]: \"FROBNICATE\" is not an FTP command ftpgate knows",
            "8:50: users.u.backend: no backend named \"nope\" in \"backends\" (defined: \"b\")",
            "9:3: colour: unknown field `colour`, expected one of `workers`, `listeners`, \
             `passive`, `tls`, `backends`, `roles`, `users`, `routing`, `defaults`, `audit`",
        ]
    );
}

#[test]
fn unknown_keys_at_every_level_and_validation_errors_in_one_run() {
    let doc = r#"{
  "colour": "blue",
  "listeners": [{ "address": "0.0.0.0:2121", "tsl": "none" }, { "address": "0.0.0.0" }],
  "backends": { "files": { "servers": ["10.0.0.11:21"], "weight": 2 } },
  "roles": { "download": { "allow": ["RETR", "FETCH"], "deny": ["STOR"] } },
  "users": {
    "alice": { "role": "download", "backend": "files",
               "timeouts": { "idel": 5, "login": 0 } },
    "bob": { "role": "upload", "backend": "files", "rolle": "x" }
  },
  "defaults": { "timeout": {}, "limits": { "sessions": 1 } },
  "audit": { "file": "relative.jsonl", "files": "/x" }
}"#;
    let expected = [
        err_at(
            doc,
            "\"colour\"",
            "colour: unknown field `colour`, expected one of `workers`, `listeners`, \
             `passive`, `tls`, `backends`, `roles`, `users`, `routing`, `defaults`, `audit`",
        ),
        err_at(
            doc,
            "\"tsl\"",
            "listeners[0].tsl: unknown field `tsl`, expected one of `address`, `tls`, \
             `require`, `proxy_protocol`",
        ),
        err_at(
            doc,
            "\"0.0.0.0\"",
            "listeners[1].address: \"0.0.0.0\" has no port; write IP:PORT, e.g. \"0.0.0.0:21\"",
        ),
        err_at(
            doc,
            "\"weight\"",
            "backends.files.weight: unknown field `weight`, expected one of `servers`, \
             `balance`, `tls`, `source_address`",
        ),
        err_at(
            doc,
            "\"FETCH\"",
            "roles.download.allow[1]: \"FETCH\" is not an FTP command ftpgate knows",
        ),
        err_at(
            doc,
            "\"deny\"",
            "roles.download.deny: unknown field `deny`, expected `allow`",
        ),
        err_at(
            doc,
            "\"idel\"",
            "users.alice.timeouts.idel: unknown field `idel`, expected one of `login`, \
             `idle`, `session`",
        ),
        err_at(
            doc,
            "0 }",
            "users.alice.timeouts.login: must be at least 1 second",
        ),
        err_at(
            doc,
            "\"upload\"",
            "users.bob.role: no role named \"upload\" in \"roles\" (defined: \"download\")",
        ),
        err_at(
            doc,
            "\"rolle\"",
            "users.bob.rolle: unknown field `rolle`, expected one of `role`, `backend`, \
             `allow_from`, `deny_from`, `limits`, `timeouts`",
        ),
        err_at(
            doc,
            "\"timeout\"",
            "defaults.timeout: unknown field `timeout`, expected `timeouts` or `limits`",
        ),
        err_at(
            doc,
            "\"sessions\"",
            "defaults.limits.sessions: unknown field `sessions`, expected one of \
             `sessions_total`, `sessions_per_ip`, `failed_logins_per_ip`",
        ),
        err_at(
            doc,
            "\"relative.jsonl\"",
            "audit.file: \"relative.jsonl\" must be an absolute path (starting with /)",
        ),
        err_at(
            doc,
            "\"files\": \"/x\"",
            "audit.files: unknown field `files`, expected one of `syslog`, `file`, `mode`, \
             `filecopy`",
        ),
    ];
    assert_eq!(errors(doc), expected);
    // A few positions literally.
    assert!(expected[0].starts_with("2:3: "), "{}", expected[0]);
    assert!(expected[1].starts_with("3:46: "), "{}", expected[1]);
    assert!(expected[9].starts_with("9:52: "), "{}", expected[9]);
    assert!(expected[13].starts_with("12:40: "), "{}", expected[13]);
}

#[test]
fn a_type_error_in_one_user_and_an_unknown_key_in_another() {
    let doc = MINIMAL.replace(
        r#""alice": { "role": "download", "backend": "files" }"#,
        r#""alice": { "role": ["download"], "backend": "files" },
             "bob": { "role": "download", "backend": "files", "colour": "blue" },
             "carol": { "role": "download", "backend": "filez" }"#,
    );
    assert_eq!(
        errors(&doc),
        [
            err_at(
                &doc,
                "[\"download\"]",
                "users.alice.role: invalid type: sequence, expected a string",
            ),
            err_at(
                &doc,
                "\"colour\"",
                "users.bob.colour: unknown field `colour`, expected one of `role`, `backend`, \
                 `allow_from`, `deny_from`, `limits`, `timeouts`",
            ),
            err_at(
                &doc,
                "\"filez\"",
                "users.carol.backend: no backend named \"filez\" in \"backends\" \
                 (defined: \"files\")",
            ),
        ]
    );
}

#[test]
fn a_wrong_value_hides_nothing_else_and_causes_nothing_else() {
    // A wrong element keeps the indexes of those after it.
    let doc = MINIMAL.replace(ALLOW, r#""allow": [5, "FETCH", "RETR"]"#);
    assert_eq!(
        errors(&doc),
        [
            err_at(
                &doc,
                "5,",
                "roles.download.allow[0]: invalid type: integer `5`, expected a string",
            ),
            err_at(
                &doc,
                "\"FETCH\"",
                "roles.download.allow[1]: \"FETCH\" is not an FTP command ftpgate knows",
            ),
        ]
    );
    // A wrong section or entry is not reported again as missing, and the names it holds
    // are not reported as undefined.
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            r#""listeners": [{ "address": "0.0.0.0:2121" }]"#,
            r#""listeners": { "address": "0.0.0.0:2121" }"#,
            "{ \"address\"",
            "listeners: invalid type: map, expected a sequence",
        ),
        (
            r#""files": { "servers": ["10.0.0.11:21"] }"#,
            r#""files": ["10.0.0.11:21"]"#,
            "[\"10.0.0.11:21\"]",
            "backends.files: invalid type: sequence, expected an object",
        ),
        (
            r#"{ "files": { "servers": ["10.0.0.11:21"] } }"#,
            r#"[{ "files": { "servers": ["10.0.0.11:21"] } }]"#,
            "[{ \"files\"",
            "backends: invalid type: sequence, expected a map",
        ),
        (
            r#""servers": ["10.0.0.11:21"]"#,
            r#""servers": "10.0.0.11:21""#,
            "\"10.0.0.11:21\"",
            "backends.files.servers: invalid type: string \"10.0.0.11:21\", expected a sequence",
        ),
        (
            r#""role": "download""#,
            r#""role": null"#,
            "\"role\": null",
            "users.alice: \"role\" is missing",
        ),
        (
            r#""role": "download""#,
            r#""role": true"#,
            "true",
            "users.alice.role: invalid type: boolean `true`, expected a string",
        ),
        (
            r#"{ "role": "download", "backend": "files" }"#,
            r#"{ "role": "download", "backend": "files", "timeouts": { "idle": "5m", "x": 1 } }"#,
            "\"x\"",
            "users.alice.timeouts.x: unknown field `x`, expected one of `login`, `idle`, \
             `session`",
        ),
    ];
    for &(from, to, needle, message) in cases {
        let doc = MINIMAL.replacen(from, to, 1);
        assert_ne!(doc, MINIMAL, "{from:?} not in MINIMAL");
        let mut found = errors(&doc);
        found.retain(|e| !e.contains("\"5m\""));
        assert_eq!(found, [err_at(&doc, needle, message)], "{doc}");
    }
}

#[test]
fn control_characters_in_messages_are_escaped() {
    let doc = "{ \"users\": { \"bob\": { \"r\\u001b[31m\": 1 } } }";
    let errors = errors(doc);
    assert!(errors.iter().all(|e| !e.contains('\u{1b}')), "{errors:?}");
    let unknown: Vec<&String> = errors
        .iter()
        .filter(|e| e.contains("unknown field"))
        .collect();
    assert_eq!(unknown.len(), 1, "{errors:?}");
    assert!(unknown[0].contains("\\u{1b}[31m"), "{errors:?}");
}

// ---------------------------------------------------------------------------------------
// Validation errors, one by one

/// Replaces `from` by `to` in MINIMAL and expects exactly one error at `needle`.
fn expect_one(from: &str, to: &str, needle: &str, message: &str) {
    let doc = MINIMAL.replacen(from, to, 1);
    assert_ne!(doc, MINIMAL, "{from:?} not in MINIMAL");
    assert_eq!(errors(&doc), [err_at(&doc, needle, message)], "{doc}");
}

const LISTENER: &str = r#"{ "address": "0.0.0.0:2121" }"#;
const SERVERS: &str = r#""servers": ["10.0.0.11:21"]"#;
const ALLOW: &str = r#""allow": ["RETR", "LIST", "CWD", "PWD"]"#;
const ALICE: &str = r#"{ "role": "download", "backend": "files" }"#;

#[test]
fn minimal_positions_literally() {
    // Exact line:column on a small document, counted by hand.
    let doc = MINIMAL.replace("0.0.0.0:2121", "0.0.0.0");
    assert_eq!(
        errors(&doc),
        ["2:30: listeners[0].address: \"0.0.0.0\" has no port; write IP:PORT, e.g. \"0.0.0.0:21\""]
    );
    let doc = MINIMAL.replace(r#""role": "download""#, r#""role": "upload""#);
    assert_eq!(
        errors(&doc),
        ["5:33: users.alice.role: no role named \"upload\" in \"roles\" (defined: \"download\")"]
    );
    let doc = MINIMAL.replace(r#""role": "download", "#, "");
    assert_eq!(errors(&doc), ["5:14: users.alice: \"role\" is missing"]);
}

#[test]
fn workers_errors() {
    for bad in ["0", "257", "-1", "1.5", "\"many\"", "\"AUTO\"", "\"4\""] {
        let doc = minimal_with(&format!("\"workers\": {bad}"));
        assert_eq!(
            errors(&doc),
            ["6:12: workers: must be \"auto\" or a number of worker processes from 1 to 256"],
            "{bad}"
        );
    }
    assert_eq!(
        parse(&minimal_with("\"workers\": 256")).workers,
        Workers::Count(256)
    );
    assert_eq!(
        parse(&minimal_with("\"workers\": 1")).workers,
        Workers::Count(1)
    );
    assert_eq!(
        parse(&minimal_with("\"workers\": \"auto\"")).workers,
        Workers::Auto
    );
    assert_eq!(
        parse(&minimal_with("\"workers\": null")).workers,
        Workers::Auto
    );
}

#[test]
fn listener_errors() {
    let doc = MINIMAL.replace(r#"[{ "address": "0.0.0.0:2121" }]"#, "[]");
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "[]",
            "listeners: at least one listener is required, e.g. [{ \"address\": \"0.0.0.0:21\" }]"
        )]
    );
    let doc = MINIMAL.replace(
        "  \"listeners\": [{ \"address\": \"0.0.0.0:2121\" }],\n",
        "",
    );
    assert_eq!(
        errors(&doc),
        [
            "1:1: listeners: at least one listener is required, e.g. [{ \"address\": \"0.0.0.0:21\" }]"
        ]
    );
    expect_one(
        LISTENER,
        "{ }",
        "{ }",
        "listeners[0]: \"address\" is missing (e.g. \"0.0.0.0:21\")",
    );
    expect_one(
        "0.0.0.0:2121",
        "localhost:21",
        "\"localhost:21\"",
        "listeners[0].address: \"localhost:21\": use an IP address; ftpgate does not resolve names",
    );
    expect_one(
        "0.0.0.0:2121",
        "0.0.0.0:0",
        "\"0.0.0.0:0\"",
        "listeners[0].address: \"0.0.0.0:0\": port 0 is not allowed",
    );
    expect_one(
        "0.0.0.0:2121",
        "::1:21",
        "\"::1:21\"",
        "listeners[0].address: \"::1:21\" has no port; write IP:PORT, e.g. \"[::1:21]:21\"",
    );
    expect_one(
        "0.0.0.0:2121",
        "0.0.0.0:99999",
        "\"0.0.0.0:99999\"",
        "listeners[0].address: \"0.0.0.0:99999\" is not an IP:PORT address (e.g. \"0.0.0.0:21\" or \"[::1]:21\")",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "tls": "explict" }"#,
        "\"explict\"",
        "listeners[0].tls: unknown value \"explict\"; expected \"none\", \"explicit\" or \"implicit\"",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121", "require": "always" }"#,
        "\"always\"",
        "listeners[0].require: unknown value \"always\"; expected \"none\", \"login\" or \"all\"",
    );
    expect_one(
        LISTENER,
        r#"{ "address": "0.0.0.0:2121" }, { "address": "0.0.0.0:2121" }"#,
        "\"0.0.0.0:2121\" }]",
        "listeners[1].address: 0.0.0.0:2121 is already used by listeners[0]",
    );
}

#[test]
fn passive_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "\"50000\"",
            "\"50000\" is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\"",
        ),
        (
            "\"a-b\"",
            "\"a-b\" is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\"",
        ),
        (
            "\"+5000-6000\"",
            "\"+5000-6000\" is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\"",
        ),
        (
            "\"\"",
            "\"\" is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\"",
        ),
        (
            "\"1000-2000\"",
            "\"1000-2000\": passive ports must be 1024 or higher (no privileged ports)",
        ),
        (
            "\"60000-70000\"",
            "\"60000-70000\": ports go from 1024 to 65535",
        ),
        (
            "\"50999-50000\"",
            "\"50999-50000\": the first port is higher than the last",
        ),
        (
            "\"2000-2200\"",
            "the range contains the port of listener 0.0.0.0:2121",
        ),
    ];
    for &(ports, message) in cases {
        let doc = minimal_with(&format!("\"passive\": {{ \"ports\": {ports} }}"));
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                &format!("{ports} }}"),
                &format!("passive.ports: {message}")
            )],
            "{ports}"
        );
    }
    let policy = parse(&minimal_with(r#""passive": { "ports": "1024-1024" }"#));
    assert_eq!(policy.passive.ports, (1024, 1024));
    let policy = parse(&minimal_with(r#""passive": { "ports": "60000 - 65535" }"#));
    assert_eq!(policy.passive.ports, (60000, 65535));

    let cases: &[(&str, &str)] = &[
        (
            "\"nat.example.com\"",
            "\"nat.example.com\": use an IP address; ftpgate does not resolve names",
        ),
        ("\"203.0.113\"", "\"203.0.113\" is not an IP address"),
        (
            "\"0.0.0.0\"",
            "0.0.0.0 cannot be advertised; name the address clients connect to",
        ),
        (
            "\"2001:db8::1\"",
            "must be an IPv4 address: it only goes into 227 replies to PASV (EPSV replies carry no address)",
        ),
    ];
    for &(advertise, message) in cases {
        let doc = minimal_with(&format!("\"passive\": {{ \"advertise\": {advertise} }}"));
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                advertise,
                &format!("passive.advertise: {message}")
            )],
            "{advertise}"
        );
    }

    // Four workers cannot share two ports.
    let doc = minimal_with(r#""workers": 4, "passive": { "ports": "50000-50001" }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "4,",
            "workers: 4 workers cannot share the 2 passive ports of passive.ports: each worker needs at least one"
        )]
    );
}

#[test]
fn backend_errors() {
    expect_one(
        SERVERS,
        r#""servers": ["ftp.example.com:21"]"#,
        "\"ftp.example.com:21\"",
        "backends.files.servers[0]: \"ftp.example.com:21\": use an IP address; ftpgate does not resolve names",
    );
    expect_one(
        SERVERS,
        r#""servers": ["backend-1"]"#,
        "\"backend-1\"",
        "backends.files.servers[0]: \"backend-1\": use an IP address; ftpgate does not resolve names",
    );
    expect_one(
        SERVERS,
        r#""servers": ["10.0.0.11"]"#,
        "\"10.0.0.11\"",
        "backends.files.servers[0]: \"10.0.0.11\" has no port; write IP:PORT, e.g. \"10.0.0.11:21\"",
    );
    expect_one(
        SERVERS,
        r#""servers": ["10.0.0.11:21", "10.0.0.11:21"]"#,
        "\"10.0.0.11:21\"]",
        "backends.files.servers[1]: 10.0.0.11:21 is listed twice",
    );
    expect_one(
        SERVERS,
        r#""servers": []"#,
        "[]",
        "backends.files.servers: at least one server is required",
    );
    expect_one(
        SERVERS,
        r#""balance": "first-available""#,
        "\"files\": {",
        "backends.files: \"servers\" is missing (e.g. [\"10.0.0.11:21\"])",
    );
    let doc = MINIMAL.replace(
        SERVERS,
        r#""servers": ["10.0.0.11:21"], "balance": "random""#,
    );
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"random\"",
            "backends.files.balance: unknown value \"random\"; expected \"round-robin\" or \"first-available\""
        )]
    );
    expect_one(
        SERVERS,
        r#""servers": ["10.0.0.11:21"], "tls": "TLS""#,
        "\"TLS\"",
        "backends.files.tls: unknown value \"TLS\"; expected \"none\", \"explicit\" or \"implicit\"",
    );
    let doc = MINIMAL.replace(r#""files": {"#, r#""": {"#);
    assert_eq!(
        errors(&doc),
        [
            err_at(
                &doc,
                r#""": {"#,
                "backends.\"\": a backend name cannot be empty"
            ),
            err_at(
                &doc,
                "\"files\"",
                "users.alice.backend: no backend named \"files\" in \"backends\" (defined: \"\")",
            ),
        ]
    );
}

#[test]
fn role_errors() {
    expect_one(
        ALLOW,
        r#""allow": ["RETR", "LIST", "FETCH", "PWD"]"#,
        "\"FETCH\"",
        "roles.download.allow[2]: \"FETCH\" is not an FTP command ftpgate knows",
    );
    expect_one(
        ALLOW,
        r#""allow": ["RETR", "NOOP"]"#,
        "\"NOOP\"",
        "roles.download.allow[1]: NOOP is protocol plumbing handled by ftpgate itself; remove it from the role",
    );
    expect_one(
        ALLOW,
        r#""allow": ["pasv", "RETR"]"#,
        "\"pasv\"",
        "roles.download.allow[0]: PASV is protocol plumbing handled by ftpgate itself; remove it from the role",
    );
    expect_one(
        ALLOW,
        r#""allow": ["RETR", "LIST", "retr"]"#,
        "\"retr\"",
        "roles.download.allow[2]: RETR is listed twice",
    );
    expect_one(
        ALLOW,
        r#""allow": ["CWD", "XCWD"]"#,
        "\"XCWD\"",
        "roles.download.allow[1]: XCWD is another name for CWD, which is already listed",
    );
    expect_one(
        ALLOW,
        r#""allow": ["RETR "]"#,
        "\"RETR \"",
        "roles.download.allow[0]: \"RETR \" is not an FTP command ftpgate knows",
    );
    expect_one(
        ALLOW,
        "",
        "\"download\": {",
        "roles.download: \"allow\" is missing (the commands the role permits, e.g. [\"RETR\", \"LIST\"])",
    );
    // Every plumbing verb is refused, and every other verb is accepted.
    for &verb in Verb::ALL {
        let doc = MINIMAL.replace(ALLOW, &format!("\"allow\": [\"{}\"]", verb.name()));
        assert_eq!(parse_policy(&doc).is_ok(), !verb.is_plumbing(), "{verb}");
    }
}

#[test]
fn user_errors() {
    expect_one(
        ALICE,
        r#"{ "role": "download", "backend": "ftp" }"#,
        "\"ftp\"",
        "users.alice.backend: no backend named \"ftp\" in \"backends\" (defined: \"files\")",
    );
    expect_one(
        ALICE,
        r#"{ "role": "download" }"#,
        "\"alice\"",
        "users.alice: \"backend\" is missing",
    );
    expect_one(
        r#""alice": {"#,
        r#""alice ": {"#,
        "\"alice \"",
        "users.\"alice \": a user name cannot begin or end with white space",
    );
    expect_one(
        r#""alice": {"#,
        r#""al\tice": {"#,
        r#""al\tice""#,
        "users.\"al\\tice\": a user name cannot contain control characters",
    );
    // No roles at all.
    let doc = MINIMAL.replace(
        r#""roles": { "download": { "allow": ["RETR", "LIST", "CWD", "PWD"] } },"#,
        "",
    );
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"download\"",
            "users.alice.role: no role named \"download\" in \"roles\" (none is defined)"
        )]
    );
}

#[test]
fn timeout_errors() {
    let cases: &[(&str, &str)] = &[
        ("0", "must be at least 1 second"),
        ("-5", "must be a whole number of seconds, at least 1"),
        ("2.5", "must be a whole number of seconds, at least 1"),
        (
            "\"5m\"",
            "\"5m\": write a number of seconds without quotes or units, e.g. 300",
        ),
        (
            "2592001",
            "2592001 is too long; the most is 2592000 seconds (30 days)",
        ),
        (
            "18446744073709551615",
            "18446744073709551615 is too long; the most is 2592000 seconds (30 days)",
        ),
        (
            "99999999999999999999999",
            "too long; the most is 2592000 seconds (30 days)",
        ),
    ];
    for &(value, message) in cases {
        let doc = MINIMAL.replace(
            ALICE,
            &format!(
                r#"{{ "role": "download", "backend": "files", "timeouts": {{ "idle": {value} }} }}"#
            ),
        );
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                &format!("{value} }}"),
                &format!("users.alice.timeouts.idle: {message}")
            )],
            "{value}"
        );
        let doc = minimal_with(&format!(
            r#""defaults": {{ "timeouts": {{ "session": {value} }} }}"#
        ));
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                &format!("{value} }}"),
                &format!("defaults.timeouts.session: {message}")
            )],
            "{value}"
        );
    }
    let doc = minimal_with(r#""defaults": { "timeouts": { "login": 2592000 } }"#);
    assert_eq!(parse(&doc).users["alice"].timeouts.login, 2_592_000);
}

#[test]
fn routing_errors() {
    let doc = minimal_with(
        r#""routing": { "targets": { "mainframe": "edi", "a@b": "files", "": "files" } }"#,
    );
    assert_eq!(
        errors(&doc),
        [
            err_at(
                &doc,
                "\"edi\"",
                "routing.targets.mainframe: no backend named \"edi\" in \"backends\" (defined: \"files\")"
            ),
            err_at(
                &doc,
                "\"a@b\"",
                "routing.targets.\"a@b\": a target name cannot contain '@' (USER name@target)"
            ),
            err_at(
                &doc,
                "\"\": \"files\"",
                "routing.targets.\"\": a target name cannot be empty"
            ),
        ]
    );
    let policy = parse(&minimal_with(
        r#""routing": { "targets": { "mf": "files" } }"#,
    ));
    assert_eq!(policy.routing.targets["mf"], "files");
}

#[test]
fn audit_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#""audit": { "file": "audit.jsonl" }"#,
            "\"audit.jsonl\"",
            "audit.file: \"audit.jsonl\" must be an absolute path (starting with /)",
        ),
        (
            r#""audit": { "file": "" }"#,
            "\"\" }",
            "audit.file: \"\" must be an absolute path (starting with /)",
        ),
        (
            r#""audit": { "file": "/var/log/a\nb" }"#,
            "\"/var",
            "audit.file: a path cannot contain control characters",
        ),
        (
            r#""audit": { "mode": "full" }"#,
            "\"full\"",
            "audit.mode: unknown value \"full\"; expected \"monitor\" or \"filecopy\"",
        ),
    ];
    for &(extra, needle, message) in cases {
        let doc = minimal_with(extra);
        assert_eq!(errors(&doc), [err_at(&doc, needle, message)], "{extra}");
    }
    let policy = parse(&minimal_with(
        r#""audit": { "file": "/var/log/ftpgate/audit.jsonl" }"#,
    ));
    assert_eq!(
        policy.audit.file,
        Some(PathBuf::from("/var/log/ftpgate/audit.jsonl"))
    );
    assert!(
        policy
            .summary()
            .contains("audit: monitor to file /var/log/ftpgate/audit.jsonl\n")
    );
}

#[test]
fn repeated_keys_are_refused() {
    // serde_json would silently keep the second "alice".
    let doc = MINIMAL.replace(
        ALICE,
        r#"{ "role": "download", "backend": "files" },
    "alice": { "role": "download", "backend": "files" }"#,
    );
    let (line, column) = at(&doc, "\"alice\"");
    assert_eq!(
        errors(&doc),
        [{
            let (again_line, again_column) = at_nth(&doc, "\"alice\"", 1);
            format!(
                "{again_line}:{again_column}: users.alice is defined twice \
                 (first at line {line}, column {column})"
            )
        }]
    );
    let doc = minimal_with(r#""routing": { "targets": { "mf": "files", "mf": "files" } }"#);
    assert_eq!(errors(&doc).len(), 1);
}

#[test]
fn many_errors_are_reported_together_in_file_order() {
    let doc = r#"{
  "workers": 0,
  "listeners": [{ "address": "0.0.0.0" }, { "address": "0.0.0.0:21", "tls": "explicit" }],
  "passive": { "ports": "100-200" },
  "backends": { "edi": { "servers": ["edi.example.com:21"], "balance": "random" } },
  "roles": { "ro": { "allow": ["RETR", "USER", "RETR", "GET"] } },
  "users": {
    "bob": { "role": "rw", "backend": "edi", "timeouts": { "idle": 0 } },
    "eve": { "backend": "nowhere" }
  },
  "routing": { "targets": { "x": "y" } },
  "audit": { "mode": "filecopy" }
}"#;
    let errors = errors(doc);
    let expected = [
        err_at(
            doc,
            "0,",
            "workers: must be \"auto\" or a number of worker processes from 1 to 256",
        ),
        err_at(
            doc,
            "\"0.0.0.0\"",
            "listeners[0].address: \"0.0.0.0\" has no port; write IP:PORT, e.g. \"0.0.0.0:21\"",
        ),
        err_at(
            doc,
            "\"explicit\"",
            "listeners[1].tls is not supported by this version of ftpgate yet; use \"none\"",
        ),
        err_at(
            doc,
            "\"100-200\"",
            "passive.ports: \"100-200\": passive ports must be 1024 or higher (no privileged ports)",
        ),
        err_at(
            doc,
            "\"edi.example.com:21\"",
            "backends.edi.servers[0]: \"edi.example.com:21\": use an IP address; ftpgate does not resolve names",
        ),
        err_at(
            doc,
            "\"random\"",
            "backends.edi.balance: unknown value \"random\"; expected \"round-robin\" or \"first-available\"",
        ),
        err_at(
            doc,
            "\"USER\"",
            "roles.ro.allow[1]: USER is protocol plumbing handled by ftpgate itself; remove it from the role",
        ),
        err_at(
            doc,
            "\"RETR\", \"GET",
            "roles.ro.allow[2]: RETR is listed twice",
        ),
        err_at(
            doc,
            "\"GET\"",
            "roles.ro.allow[3]: \"GET\" is not an FTP command ftpgate knows",
        ),
        err_at(
            doc,
            "\"rw\"",
            "users.bob.role: no role named \"rw\" in \"roles\" (defined: \"ro\")",
        ),
        err_at(
            doc,
            "0 }",
            "users.bob.timeouts.idle: must be at least 1 second",
        ),
        err_at(doc, "\"eve\"", "users.eve: \"role\" is missing"),
        err_at(
            doc,
            "\"nowhere\"",
            "users.eve.backend: no backend named \"nowhere\" in \"backends\" (defined: \"edi\")",
        ),
        err_at(
            doc,
            "\"y\"",
            "routing.targets.x: no backend named \"y\" in \"backends\" (defined: \"edi\")",
        ),
        err_at(
            doc,
            "\"filecopy\"",
            "audit.mode is not supported by this version of ftpgate yet; use \"monitor\"",
        ),
    ];
    assert_eq!(errors, expected);
}

// ---------------------------------------------------------------------------------------
// Robustness

/// Every error has a position inside the document (or just past its end).
fn check_positions(doc: &str) {
    if let Err(errors) = parse_policy(doc) {
        assert!(!errors.is_empty());
        let lines = doc.split('\n').count();
        for error in errors {
            assert!(error.line >= 1 && error.line <= lines, "{error} in {doc:?}");
            assert!(error.column >= 1, "{error} in {doc:?}");
            assert!(!error.message.is_empty());
        }
    }
}

#[test]
fn every_prefix_of_a_valid_document_is_handled() {
    for doc in [MINIMAL, DESIGN_EXAMPLE] {
        let ends: Vec<usize> = doc.char_indices().map(|(i, _)| i).collect();
        for &end in &ends {
            let prefix = &doc[..end];
            assert!(parse_policy(prefix).is_err(), "{prefix:?}");
            check_positions(prefix);
        }
    }
}

/// A tiny deterministic generator (Knuth's MMIX LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Lcg(0x5eed);
    // Random bytes, decoded leniently.
    for _ in 0..2000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check_positions(&String::from_utf8_lossy(&bytes));
    }
    // Random sequences of JSON-ish tokens, which get much further into the parser.
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\n",
        " ",
        "é",
        "0",
        "-1",
        "1.5e9",
        "true",
        "null",
        "\"listeners\"",
        "\"address\"",
        "\"0.0.0.0:21\"",
        "\"users\"",
        "\"role\"",
        "\"backends\"",
        "\"servers\"",
        "\"roles\"",
        "\"allow\"",
        "\"RETR\"",
        "\"limits\"",
        "\"rate\"",
        "\"5MiB/s\"",
        "\"passive\"",
        "\"ports\"",
        "\"1-2\"",
        "\"\\u00e9\"",
    ];
    for _ in 0..5000 {
        let len = rng.below(40);
        let doc: String = (0..len).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        check_positions(&doc);
    }
    // Single-character mutations of valid documents.
    for base in [MINIMAL, DESIGN_EXAMPLE] {
        let chars: Vec<char> = base.chars().collect();
        for _ in 0..3000 {
            let mut mutated = chars.clone();
            let i = rng.below(mutated.len());
            match rng.below(3) {
                0 => {
                    mutated.remove(i);
                }
                1 => mutated.insert(i, TOKENS[rng.below(TOKENS.len())].chars().next().unwrap()),
                _ => mutated[i] = char::from(b' ' + rng.below(95) as u8),
            }
            check_positions(&mutated.into_iter().collect::<String>());
        }
    }
}

// ---------------------------------------------------------------------------------------
// load_policy

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftpgate-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

#[test]
fn load_policy_reads_files() {
    let path = temp_file("good.json", MINIMAL.as_bytes());
    assert_eq!(load_policy(&path), parse_policy(MINIMAL));
    let _ = std::fs::remove_file(&path);

    let path = temp_file("bad.json", b"{\n  \"workers\": 0,\n  \"listeners\": []\n}");
    let errors: Vec<String> = load_policy(&path)
        .expect_err("bad")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].starts_with("2:14: workers:"), "{errors:?}");
    assert!(errors[1].starts_with("3:16: listeners:"), "{errors:?}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn load_policy_io_errors_are_at_zero() {
    let missing = std::env::temp_dir().join("ftpgate-no-such-policy.json");
    let errors = load_policy(&missing).expect_err("missing");
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].column), (0, 0));
    // The caller names the file (FILE:0:0: message); the message does not repeat it.
    assert!(
        !errors[0].message.contains("ftpgate-no-such-policy"),
        "{errors:?}"
    );
    let os_error = std::fs::metadata(&missing).expect_err("missing");
    assert_eq!(errors[0].message, os_error.to_string());
    assert!(errors[0].to_string().starts_with("0:0: "));

    let errors = load_policy(&std::env::temp_dir()).expect_err("directory");
    assert_eq!(errors[0].to_string(), "0:0: not a regular file");

    let big = vec![b' '; limits::MAX_POLICY_BYTES as usize + 1];
    let path = temp_file("big.json", &big);
    let errors = load_policy(&path).expect_err("too big");
    assert!(
        errors[0].message.contains("larger than 4194304 bytes"),
        "{errors:?}"
    );
    let _ = std::fs::remove_file(&path);

    let path = temp_file("latin1.json", b"{\n  \"users\": { \"j\xf6rg\": {} }\n}");
    let errors = load_policy(&path).expect_err("not UTF-8");
    assert_eq!(
        errors[0].to_string(),
        "2:16: the file is not valid UTF-8 here"
    );
    let _ = std::fs::remove_file(&path);
}

#[cfg(unix)]
#[test]
fn load_policy_refuses_world_writable_files() {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_file("open.json", MINIMAL.as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let errors = load_policy(&path).expect_err("world-writable");
    assert!(
        errors[0]
            .message
            .ends_with("the file is writable by every user (mode 0666); run chmod o-w on it"),
        "{errors:?}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    assert!(load_policy(&path).is_ok());
    let _ = std::fs::remove_file(&path);
}
