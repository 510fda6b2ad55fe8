//! `defaults` and a user's own timeouts and limits (`load/defaults.rs`).

use super::*;

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
        let doc = MINIMAL.replace(
            ALICE,
            &format!(
                r#"{{ "role": "download", "backend": "files", "timeouts": {{ "data_connect": {value} }} }}"#
            ),
        );
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                &format!("{value} }}"),
                &format!("users.alice.timeouts.data_connect: {message}")
            )],
            "{value}"
        );
        let doc = minimal_with(&format!(
            r#""defaults": {{ "timeouts": {{ "data_connect": {value} }} }}"#
        ));
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                &format!("{value} }}"),
                &format!("defaults.timeouts.data_connect: {message}")
            )],
            "{value}"
        );
    }
    let doc = minimal_with(r#""defaults": { "timeouts": { "login": 2592000 } }"#);
    assert_eq!(parse(&doc).users["alice"].timeouts.login, 2_592_000);
}

#[test]
fn limits_defaults_and_per_user() {
    let doc = MINIMAL.replace(
        r#""alice": { "role": "download", "backend": "files" }"#,
        r#""alice": { "role": "download", "backend": "files" },
    "bob": { "role": "download", "backend": "files",
             "limits": { "max_file_size": 1000, "rate": "1KiB/s", "user_rate": "2KiB/s",
                         "sessions": 3 },
             "timeouts": { "data_connect": 5 } }"#,
    );
    let doc = format!(
        "{},\n{}\n}}",
        doc.strip_suffix("\n}").expect("ends with }"),
        r#""defaults": { "timeouts": { "data_connect": 12 },
    "limits": { "sessions_total": 500, "sessions_per_ip": 5, "failed_logins_per_ip": 3,
                "failed_login_window": 60, "ban": 3600, "max_file_size": "2GiB",
                "rate": "5MiB/s", "user_rate": "10MiB/s", "sessions_waiting_for_backend": 50 } }"#
    );
    let policy = parse(&doc);
    assert_eq!(
        policy.defaults.limits,
        GlobalLimits {
            sessions_total: 500,
            sessions_per_ip: 5,
            failed_logins_per_ip: 3,
            failed_login_window: 60,
            ban: 3600,
            max_file_size: Some(2 << 30),
            rate: Some(5 << 20),
            user_rate: Some(10 << 20),
            sessions_waiting_for_backend: 50,
            failed_login_delay_ms: limits::DEFAULT_FAILED_LOGIN_DELAY_MS,
        }
    );
    assert_eq!(policy.defaults.timeouts.data_connect, 12);
    // alice has no limits of her own: the defaults'.
    let alice = &policy.users["alice"];
    assert_eq!(
        alice.limits,
        UserLimits {
            max_file_size: Some(2 << 30),
            rate: Some(5 << 20),
            user_rate: Some(10 << 20),
            sessions: None,
        }
    );
    assert_eq!(alice.timeouts.data_connect, 12);
    let bob = &policy.users["bob"];
    assert_eq!(
        bob.limits,
        UserLimits {
            max_file_size: Some(1000),
            rate: Some(1024),
            user_rate: Some(2048),
            sessions: Some(3),
        }
    );
    assert_eq!(bob.timeouts.data_connect, 5);
    assert_eq!(bob.timeouts.idle, limits::DEFAULT_IDLE_TIMEOUT);

    let summary = policy.summary();
    for expected in [
        "defaults: timeouts login 30s, idle 300s, session 900s, data connect 12s\n",
        "limits: sessions 500 total, 5 per IP, 50 waiting for a backend per worker; 3 failed \
         logins per IP within 60s: banned for 3600s; files up to 2147483648 bytes, 5242880 \
         bytes/s per session, 10485760 bytes/s per user\n",
        "  bob: role download, backend files, timeouts login 30s, idle 300s, session 900s, \
         data connect 5s, files up to 1000 bytes, 1024 bytes/s per session, 2048 bytes/s per \
         user, 3 sessions\n",
    ] {
        assert!(summary.contains(expected), "{expected:?} not in\n{summary}");
    }

    // A user's own value overrides one default and leaves the others.
    let doc = with_alice(
        r#", "limits": { "rate": 10 }"#,
        r#""defaults": { "limits": { "max_file_size": 99 } }"#,
    );
    let limits = parse(&doc).users["alice"].limits;
    assert_eq!(
        limits,
        UserLimits {
            max_file_size: Some(99),
            rate: Some(10),
            user_rate: None,
            sessions: None
        }
    );
}

#[test]
fn limits_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("sessions_total", "0", "must be at least 1"),
        (
            "sessions_per_ip",
            "1.5",
            "must be a whole number, at least 1",
        ),
        (
            "failed_logins_per_ip",
            "-1",
            "must be a whole number, at least 1",
        ),
        (
            "sessions_waiting_for_backend",
            "4294967296",
            "4294967296 is too large; the most is 4294967295",
        ),
        ("failed_login_window", "0", "must be at least 1 second"),
        (
            "ban",
            "\"10m\"",
            "\"10m\": write a number of seconds without quotes or units, e.g. 300",
        ),
        (
            "ban",
            "2592001",
            "2592001 is too long; the most is 2592000 seconds (30 days)",
        ),
        (
            "max_file_size",
            "\"2GB/s\"",
            "unknown unit \"GB/s\" in \"2GB/s\"; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB",
        ),
        (
            "max_file_size",
            "0",
            "must be greater than 0 (leave the key out for no limit)",
        ),
        (
            "rate",
            "\"5MiB\"",
            "\"5MiB\" is not a rate: write bytes per second with \"/s\", e.g. \"5MiB/s\"",
        ),
        (
            "user_rate",
            "-1",
            "must be a whole number of bytes per second, or a string such as \"10MiB\"",
        ),
        (
            "user_rate",
            "\"0/s\"",
            "must be greater than 0 (leave the key out for no limit)",
        ),
    ];
    for &(key, value, message) in cases {
        let doc = minimal_with(&format!(
            r#""defaults": {{ "limits": {{ "{key}": {value} }} }}"#
        ));
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                &format!("{value} }}"),
                &format!("defaults.limits.{key}: {message}")
            )],
            "{key}: {value}"
        );
    }
    let user_cases: &[(&str, &str, &str)] = &[
        ("sessions", "0", "must be at least 1"),
        (
            "sessions",
            "\"4\"",
            "\"4\": write a number without quotes, e.g. 20",
        ),
        (
            "max_file_size",
            "\"1.5GiB\"",
            "\"1.5GiB\": use a whole number with a smaller unit instead of a fraction, e.g. \
             \"1536MiB\"",
        ),
        (
            "rate",
            "\"fast\"",
            "\"fast\" is not a rate: write bytes per second with \"/s\", e.g. \"5MiB/s\"",
        ),
        (
            "user_rate",
            "\"x/s\"",
            "\"x\" is not a rate: expected a whole number of bytes, optionally with a unit, \
             e.g. \"5MiB/s\"",
        ),
        (
            "user_rate",
            "true",
            "invalid type: boolean `true`, expected a number or a string",
        ),
    ];
    for &(key, value, message) in user_cases {
        let doc = with_alice(&format!(r#", "limits": {{ "{key}": {value} }}"#), "");
        assert_eq!(
            errors(&doc),
            [err_at(
                &doc,
                &format!("{value} }}"),
                &format!("users.alice.limits.{key}: {message}")
            )],
            "{key}: {value}"
        );
    }
    // A wrong default does not make every user's limit wrong too.
    let doc = with_alice(
        r#", "limits": { "sessions": 2 }"#,
        r#""defaults": { "limits": { "rate": "1MiB" } }"#,
    );
    assert_eq!(errors(&doc).len(), 1, "{:?}", errors(&doc));
}
