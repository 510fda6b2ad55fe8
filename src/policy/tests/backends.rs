//! `backends` (`load/backends.rs`).

use super::*;

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
            "backends.files.balance: unknown value \"random\"; expected \"round-robin\", \"first-available\" or \"sticky\""
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
fn backend_tls_and_source_address() {
    let doc = with("").replacen(
        r#""servers": ["10.0.0.1:21"]"#,
        r#""servers": ["10.0.0.1:21"], "tls": "implicit", "source_address": "10.0.0.2""#,
        1,
    );
    let (policy, messages) = validate(&doc);
    assert_eq!(messages, Vec::<String>::new());
    assert_eq!(policy.backends["b"].tls, TlsMode::Implicit);
    assert_eq!(
        policy.backends["b"].source_address,
        Some("10.0.0.2".parse().unwrap())
    );
    assert!(
        policy
            .summary()
            .contains("  b: 10.0.0.1:21 (round-robin, tls implicit, from 10.0.0.2)\n")
    );

    for (source, message) in [
        (
            "\"2001:db8::2\"",
            "backends.b.source_address: 2001:db8::2 cannot reach 10.0.0.1:21: the address families differ",
        ),
        (
            "\"0.0.0.0\"",
            "backends.b.source_address: 0.0.0.0 pins nothing; leave source_address out",
        ),
        (
            "\"gw.local\"",
            "backends.b.source_address: \"gw.local\": use an IP address; ftpgate does not resolve names",
        ),
    ] {
        let doc = with("").replacen(
            r#""servers": ["10.0.0.1:21"]"#,
            &format!(r#""servers": ["10.0.0.1:21"], "source_address": {source}"#),
            1,
        );
        assert_eq!(validate(&doc).1, [message]);
    }
}

#[test]
fn health_checks_are_on_by_default_and_configurable() {
    use crate::policy::{Balance, HealthCheck};
    let policy = parse_policy(MINIMAL).expect("valid");
    assert_eq!(
        policy.backends["files"].health_check,
        Some(HealthCheck::default())
    );
    let doc = MINIMAL.replace(
        SERVERS,
        r#""servers": ["10.0.0.11:21"], "balance": "sticky", "health_check": { "interval": 20, "timeout": 2 }"#,
    );
    let policy = parse_policy(&doc).expect("valid");
    let files = &policy.backends["files"];
    assert_eq!(files.balance, Balance::Sticky);
    assert_eq!(
        files.health_check,
        Some(HealthCheck {
            interval: 20,
            timeout: 2
        })
    );
    let doc = MINIMAL.replace(
        SERVERS,
        r#""servers": ["10.0.0.11:21"], "health_check": false"#,
    );
    assert_eq!(
        parse_policy(&doc).expect("valid").backends["files"].health_check,
        None
    );
    let doc = MINIMAL.replace(
        SERVERS,
        r#""servers": ["10.0.0.11:21"], "health_check": true"#,
    );
    assert_eq!(
        parse_policy(&doc).expect("valid").backends["files"].health_check,
        Some(HealthCheck::default())
    );
    expect_one(
        SERVERS,
        r#""servers": ["10.0.0.11:21"], "health_check": { "interval": 0 }"#,
        "0 }",
        "backends.files.health_check.interval: must be at least 1 second",
    );
    let doc = MINIMAL.replace(
        SERVERS,
        r#""servers": ["10.0.0.11:21"], "health_check": { "intervall": 5 }"#,
    );
    let found = errors(&doc);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("unknown field `intervall`"), "{found:?}");
    let doc = MINIMAL.replace(
        SERVERS,
        r#""servers": ["10.0.0.11:21"], "health_check": "yes""#,
    );
    let found = errors(&doc);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("health_check"), "{found:?}");
}

#[test]
fn user_names_with_an_at_sign_are_refused_while_user_at_host_is_on() {
    let doc = MINIMAL
        .replace(r#""alice": {"#, r#""alice@corp": {"#)
        .replacen(
            "{\n  \"listeners\"",
            r#"{ "routing": { "user_at_host": true, "targets": { "mf": "files" } },
  "listeners""#,
            1,
        );
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"alice@corp\"",
            "users.\"alice@corp\": a user name cannot contain '@' while routing.user_at_host is on (USER name@target)"
        )]
    );
    let off = doc.replace("\"user_at_host\": true", "\"user_at_host\": false");
    assert!(parse_policy(&off).is_ok(), "allowed while it is off");
}
