//! DESIGN.md §2, and the keys refused because this build does not enforce them yet
//! (`load/mod.rs::unsupported_yet`).

use super::*;

/// The example leaves out the balancers' addresses that a PROXY listener needs (a header
/// from anyone would let anyone claim any address): that is its only error.
#[test]
fn design_example_is_refused_only_for_its_proxy_listener_without_proxy_from() {
    let doc = DESIGN_EXAMPLE;
    let (line, column) = at_nth(doc, "true", 0);
    let expected = vec![format!(
        "{line}:{column}: listeners[2].proxy_protocol: needs \"proxy_from\": the load \
         balancers' addresses, e.g. [\"10.0.0.5/32\"]"
    )];
    assert_eq!(errors(doc), expected);
    // Spot-check the position literally.
    assert_eq!(expected[0].split(": ").next(), Some("6:68"));
    let with_balancers = DESIGN_EXAMPLE.replace(
        r#""proxy_protocol": true"#,
        r#""proxy_protocol": true, "proxy_from": ["10.0.0.5/32"]"#,
    );
    let policy = parse(&with_balancers);
    assert!(policy.listeners[2].proxy_protocol);
    assert_eq!(
        policy.listeners[2].proxy_from,
        ["10.0.0.5/32".parse().unwrap()]
    );
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
        .replace(r#", "source_address": "10.0.0.2""#, "");
    let policy = parse(&doc);
    assert_eq!(policy.listeners.len(), 3);
    assert_eq!(policy.passive.ports, (50000, 50999));
    assert_eq!(policy.backends["edi"].servers.len(), 2);
    assert_eq!(policy.roles.len(), 2);
    let acme = &policy.users["partner-acme"];
    assert_eq!(acme.role, "upload-only");
    assert_eq!(acme.timeouts.session, 900);
    assert_eq!(acme.access.allow_from.len(), 1);
    assert!(acme.access.allow_from[0].contains("198.51.100.7".parse().unwrap()));
    assert_eq!(
        acme.limits,
        UserLimits {
            max_file_size: Some(2 << 30),
            rate: Some(5 << 20),
            user_rate: None,
            sessions: Some(4),
        }
    );
    assert_eq!(policy.defaults.limits.sessions_total, 10_000);
    assert_eq!(policy.defaults.limits.sessions_per_ip, 20);
    assert_eq!(policy.defaults.limits.failed_logins_per_ip, 10);
    assert_eq!(
        policy.audit.syslog,
        Some(SyslogPolicy {
            facility: 10,
            app_name: "ftpgate".to_owned(),
            socket: PathBuf::from("/dev/log"),
            cee: false,
            format: SyslogFormat::Rfc3164,
        })
    );
    assert_eq!(policy.audit.on_failure, AuditFailure::RefuseSessions);
    assert_eq!(policy.audit.mode, AuditMode::Filecopy);
    assert_eq!(
        policy.audit.filecopy,
        Some(FilecopyPolicy {
            directory: PathBuf::from("/var/lib/ftpgate/copies"),
            retention_days: 365,
            on_failure: CopyFailure::Abort,
        })
    );
}

/// Each entry of `unsupported_yet`, alone in an otherwise valid policy.
#[test]
fn no_key_of_the_contract_is_refused_as_not_supported_any_more() {
    // PROXY protocol and USER name@target were the last ones: both are accepted now.
    let doc = MINIMAL.replace(
        r#"{ "address": "0.0.0.0:2121" }"#,
        r#"{ "address": "0.0.0.0:2121", "proxy_protocol": true, "proxy_from": ["10.0.0.5/32"] }"#,
    );
    let doc = format!(
        "{},\n{}\n}}",
        doc.strip_suffix("\n}").expect("ends with }"),
        r#""routing": { "user_at_host": true, "targets": { "mainframe": "files" } }"#
    );
    let policy = parse(&doc);
    assert!(policy.listeners[0].proxy_protocol);
    assert_eq!(
        policy.listeners[0].proxy_from,
        ["10.0.0.5/32".parse().unwrap()]
    );
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
    assert!(policy.users["alice"].access.is_empty());
}
