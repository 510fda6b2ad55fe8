//! `audit`: sinks, syslog, `on_failure`, `mode` and `filecopy` (`load/audit.rs`).

use super::*;

#[test]
fn filecopy_mode_and_its_settings() {
    let doc = minimal_with(
        r#""audit": { "mode": "filecopy", "filecopy": { "directory": "/var/lib/copies" } }"#,
    );
    let policy = parse(&doc);
    assert_eq!(policy.audit.mode, AuditMode::Filecopy);
    assert_eq!(
        policy.audit.filecopy,
        Some(FilecopyPolicy {
            directory: PathBuf::from("/var/lib/copies"),
            retention_days: limits::DEFAULT_FILECOPY_RETENTION_DAYS,
            on_failure: CopyFailure::Abort,
        })
    );
    let doc = minimal_with(
        r#""audit": { "mode": "filecopy",
             "filecopy": { "directory": "/c", "retention_days": 7, "on_failure": "continue" } }"#,
    );
    let copy = parse(&doc).audit.filecopy.expect("filecopy");
    assert_eq!(
        (copy.retention_days, copy.on_failure),
        (7, CopyFailure::Continue)
    );

    let doc = minimal_with(
        r#""audit": { "mode": "filecopy",
             "filecopy": { "directory": "copies", "retention_days": 0, "on_failure": "skip" } }"#,
    );
    assert_eq!(
        errors(&doc),
        [
            err_at(
                &doc,
                "\"copies\"",
                "audit.filecopy.directory: \"copies\" must be an absolute path (starting with /)"
            ),
            err_at(
                &doc,
                "0,",
                "audit.filecopy.retention_days: must be at least 1"
            ),
            err_at(
                &doc,
                "\"skip\"",
                "audit.filecopy.on_failure: unknown value \"skip\"; expected \"abort\" or \"continue\""
            ),
        ]
    );
    let doc = minimal_with(r#""audit": { "mode": "filecopy" }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"filecopy\"",
            "audit.mode: \"filecopy\" needs audit.filecopy.directory"
        )]
    );
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
fn audit_syslog_and_on_failure() {
    let doc = minimal_with(
        r#""audit": { "syslog": { "facility": "local5", "app_name": "gw-1",
                       "socket": "/run/ftpgate-test/log", "cee": true, "format": "rfc3164" },
             "file": "/var/log/ftpgate/audit.jsonl", "on_failure": "continue" }"#,
    );
    let policy = parse(&doc);
    assert_eq!(
        policy.audit.syslog,
        Some(SyslogPolicy {
            facility: 21,
            app_name: "gw-1".to_owned(),
            socket: PathBuf::from("/run/ftpgate-test/log"),
            cee: true,
            format: SyslogFormat::Rfc3164,
        })
    );
    assert_eq!(policy.audit.on_failure, AuditFailure::Continue);
    assert_eq!(
        policy.audit.file,
        Some(PathBuf::from("/var/log/ftpgate/audit.jsonl"))
    );
    let summary = policy.summary();
    assert!(
        summary.contains(
            "audit: monitor to file /var/log/ftpgate/audit.jsonl and syslog (facility local5, \
             app-name gw-1, socket /run/ftpgate-test/log, @cee cookie)\n  \
             if a sink fails: sessions continue, lost events are counted\n"
        ),
        "{summary}"
    );

    // The defaults: authpriv, "ftpgate", /dev/log, no cookie, the local (RFC 3164) form,
    // refuse new sessions.
    let policy = parse(&minimal_with(r#""audit": { "syslog": {} }"#));
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
    assert_eq!(policy.audit.file, None);
    assert_eq!(policy.audit.on_failure, AuditFailure::RefuseSessions);
    assert!(policy.summary().contains(
        "audit: monitor to syslog (facility authpriv, app-name ftpgate)\n  \
         if a sink fails: new sessions are refused (421)\n"
    ));
    let policy = parse(&minimal_with(
        r#""audit": { "on_failure": "refuse_sessions" }"#,
    ));
    assert_eq!(policy.audit.on_failure, AuditFailure::RefuseSessions);
    assert_eq!(policy.audit.syslog, None);

    // Every facility, with its RFC 5424 code.
    let facilities = [
        ("kern", 0),
        ("user", 1),
        ("mail", 2),
        ("daemon", 3),
        ("auth", 4),
        ("syslog", 5),
        ("lpr", 6),
        ("news", 7),
        ("uucp", 8),
        ("cron", 9),
        ("authpriv", 10),
        ("ftp", 11),
        ("local0", 16),
        ("local1", 17),
        ("local2", 18),
        ("local3", 19),
        ("local4", 20),
        ("local5", 21),
        ("local6", 22),
        ("local7", 23),
    ];
    for (name, code) in facilities {
        let doc = minimal_with(&format!(
            r#""audit": {{ "syslog": {{ "facility": "{name}" }} }}"#
        ));
        let syslog = parse(&doc).audit.syslog.expect("syslog");
        assert_eq!(syslog.facility, code, "{name}");
        assert_eq!(syslog.facility_name(), name);
    }
}

#[test]
fn audit_syslog_and_on_failure_errors() {
    let long_socket = format!("/{}", "s".repeat(107));
    let long_case = format!(r#""audit": {{ "syslog": {{ "socket": "{long_socket}" }} }}"#);
    let cases: &[(&str, &str, &str)] = &[
        (
            r#""audit": { "syslog": { "facility": "local8" } }"#,
            "\"local8\"",
            "audit.syslog.facility: unknown value \"local8\"; expected \"kern\", \"user\", \
             \"mail\", \"daemon\", \"auth\", \"syslog\", \"lpr\", \"news\", \"uucp\", \"cron\", \
             \"authpriv\", \"ftp\", \"local0\", \"local1\", \"local2\", \"local3\", \"local4\", \
             \"local5\", \"local6\" or \"local7\"",
        ),
        (
            r#""audit": { "syslog": { "facility": 10 } }"#,
            "10 }",
            "audit.syslog.facility: invalid type: integer `10`, expected a string",
        ),
        (
            r#""audit": { "syslog": { "app_name": "" } }"#,
            "\"\" }",
            "audit.syslog.app_name: \"\": use 1 to 48 printable ASCII characters without \
             spaces (RFC 5424 APP-NAME)",
        ),
        (
            r#""audit": { "syslog": { "socket": "dev/log" } }"#,
            "\"dev/log\"",
            "audit.syslog.socket: \"dev/log\" must be an absolute path (starting with /)",
        ),
        (
            &long_case,
            "\"/sss",
            "audit.syslog.socket: 108 bytes is too long for a Unix socket path; the most is 107",
        ),
        (
            r#""audit": { "syslog": { "cee": "yes" } }"#,
            "\"yes\"",
            "audit.syslog.cee: invalid type: string \"yes\", expected a boolean",
        ),
        (
            r#""audit": { "syslog": "/dev/log" }"#,
            "\"/dev/log\"",
            "audit.syslog: invalid type: string \"/dev/log\", expected an object",
        ),
        (
            r#""audit": { "syslog": { "format": "json" } }"#,
            "\"json\"",
            "audit.syslog.format: unknown value \"json\"; expected \"rfc5424\" or \"rfc3164\"",
        ),
        (
            r#""audit": { "on_failure": "ignore" }"#,
            "\"ignore\"",
            "audit.on_failure: unknown value \"ignore\"; expected \"refuse_sessions\" or \
             \"continue\"",
        ),
        (
            r#""audit": { "on_failure": false }"#,
            "false",
            "audit.on_failure: invalid type: boolean `false`, expected a string",
        ),
    ];
    for &(extra, needle, message) in cases {
        let doc = minimal_with(extra);
        assert_eq!(errors(&doc), [err_at(&doc, needle, message)], "{extra}");
    }
    // A 107-byte socket path is the longest accepted.
    let doc = minimal_with(&format!(
        r#""audit": {{ "syslog": {{ "socket": "/{}" }} }}"#,
        "s".repeat(106)
    ));
    assert_eq!(
        parse(&doc)
            .audit
            .syslog
            .expect("syslog")
            .socket
            .as_os_str()
            .len(),
        107
    );

    // Several problems of one section together, in file order, at literal positions.
    let doc = r#"{
  "listeners": [{ "address": "0.0.0.0:2121" }],
  "audit": { "syslog": { "facility": "local9", "app_name": "a b",
                         "socket": "log", "cee": 1 },
             "on_failure": "maybe" }
}"#;
    assert_eq!(
        errors(doc),
        [
            "3:38: audit.syslog.facility: unknown value \"local9\"; expected \"kern\", \"user\", \
             \"mail\", \"daemon\", \"auth\", \"syslog\", \"lpr\", \"news\", \"uucp\", \"cron\", \
             \"authpriv\", \"ftp\", \"local0\", \"local1\", \"local2\", \"local3\", \"local4\", \
             \"local5\", \"local6\" or \"local7\"",
            "3:60: audit.syslog.app_name: \"a b\": use 1 to 48 printable ASCII characters \
             without spaces (RFC 5424 APP-NAME)",
            "4:36: audit.syslog.socket: \"log\" must be an absolute path (starting with /)",
            "4:50: audit.syslog.cee: invalid type: integer `1`, expected a boolean",
            "5:28: audit.on_failure: unknown value \"maybe\"; expected \"refuse_sessions\" or \
             \"continue\"",
        ]
    );
}

#[test]
fn audit_sinks_and_filecopy() {
    let doc = with("").replacen(
        "{ \"listeners\"",
        r#"{ "audit": { "syslog": { "facility": "local3", "app_name": "gw1" }, "mode": "filecopy",
             "filecopy": { "directory": "/var/lib/copies", "retention_days": 30 } }, "listeners""#,
        1,
    );
    let (policy, messages) = validate(&doc);
    assert_eq!(messages, Vec::<String>::new());
    assert_eq!(
        policy.audit,
        AuditPolicy {
            file: None,
            syslog: Some(SyslogPolicy {
                facility: 19,
                app_name: "gw1".to_owned(),
                socket: PathBuf::from("/dev/log"),
                cee: false,
                format: SyslogFormat::Rfc3164,
            }),
            mode: AuditMode::Filecopy,
            digest: crate::policy::AuditDigest::Sha256,
            on_failure: AuditFailure::RefuseSessions,
            filecopy: Some(FilecopyPolicy {
                directory: PathBuf::from("/var/lib/copies"),
                retention_days: 30,
                on_failure: CopyFailure::Abort,
            }),
            integrity: None,
        }
    );
    let summary = policy.summary();
    assert!(summary.contains("audit: filecopy to syslog (facility local3, app-name gw1)\n"));
    assert!(summary.contains("  copies in /var/lib/copies, kept 30 days, a failed copy: abort\n"));

    let doc = with("").replacen(
        "{ \"listeners\"",
        r#"{ "audit": { "syslog": {}, "mode": "filecopy", "filecopy": {} }, "listeners""#,
        1,
    );
    let (policy, messages) = validate(&doc);
    assert_eq!(
        messages,
        ["audit.filecopy: \"directory\" is missing (where the copies go)"]
    );
    assert_eq!(
        policy.audit.syslog,
        Some(SyslogPolicy {
            facility: 10,
            app_name: DEFAULT_SYSLOG_APP_NAME.to_owned(),
            socket: PathBuf::from(DEFAULT_SYSLOG_SOCKET),
            cee: false,
            format: SyslogFormat::Rfc3164,
        })
    );

    for (audit, message) in [
        (
            r#"{ "mode": "filecopy" }"#,
            "audit.mode: \"filecopy\" needs audit.filecopy.directory",
        ),
        (
            r#"{ "filecopy": { "directory": "/x" } }"#,
            "audit.filecopy: has no effect unless audit.mode is \"filecopy\"",
        ),
        (
            r#"{ "syslog": { "facility": "local8" } }"#,
            "audit.syslog.facility: unknown value \"local8\"; expected \"kern\", \"user\", \"mail\", \"daemon\", \"auth\", \"syslog\", \"lpr\", \"news\", \"uucp\", \"cron\", \"authpriv\", \"ftp\", \"local0\", \"local1\", \"local2\", \"local3\", \"local4\", \"local5\", \"local6\" or \"local7\"",
        ),
        (
            r#"{ "syslog": { "app_name": "ftp gate" } }"#,
            "audit.syslog.app_name: \"ftp gate\": use 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)",
        ),
        (
            r#"{ "mode": "filecopy", "filecopy": { "directory": "/x", "retention_days": 0 } }"#,
            "audit.filecopy.retention_days: must be at least 1",
        ),
        (
            r#"{ "mode": "filecopy", "filecopy": { "directory": "/x", "on_failure": "ignore" } }"#,
            "audit.filecopy.on_failure: unknown value \"ignore\"; expected \"abort\" or \"continue\"",
        ),
    ] {
        let doc = with("").replacen(
            "{ \"listeners\"",
            &format!("{{ \"audit\": {audit}, \"listeners\""),
            1,
        );
        assert_eq!(validate(&doc).1, [message], "{audit}");
    }
}

#[test]
fn integrity_reads_its_key_checks_its_mode_and_bounds_the_interval() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("audit.key");
    std::fs::write(&key, [9u8; limits::MIN_AUDIT_KEY_BYTES]).expect("write");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let section = |extra: &str| {
        minimal_with(&format!(
            r#""audit": {{ "integrity": {{ "key_file": "{}"{extra} }} }}"#,
            key.display()
        ))
    };
    let integrity = parse(&section("")).audit.integrity.expect("integrity");
    assert_eq!(integrity.key.bytes(), &[9u8; limits::MIN_AUDIT_KEY_BYTES]);
    assert_eq!(
        integrity.checkpoint_interval_s,
        limits::DEFAULT_AUDIT_CHECKPOINT_INTERVAL_S
    );
    assert!(
        !format!("{integrity:?}").contains("9, 9"),
        "Debug shows no key"
    );
    let max = limits::MAX_AUDIT_CHECKPOINT_INTERVAL_S;
    let at_max = parse(&section(&format!(r#", "checkpoint_interval": {max}"#)));
    assert_eq!(
        at_max
            .audit
            .integrity
            .expect("integrity")
            .checkpoint_interval_s,
        max
    );
    let over = section(&format!(r#", "checkpoint_interval": {}"#, max + 1));
    let messages = errors(&over);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("audit.integrity.checkpoint_interval: 3601 is too long"));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let messages = errors(&section(""));
    assert!(
        messages[0].contains("audit.integrity.key_file: "),
        "{messages:?}"
    );
    assert!(messages[0].contains("mode 0644"), "{messages:?}");

    let missing = minimal_with(r#""audit": { "integrity": { "checkpoint_interval": 5 } }"#);
    assert!(errors(&missing)[0].contains("\"key_file\" is missing"));
}

#[test]
fn the_digest_is_sha256_unless_the_policy_or_the_user_says_none() {
    use crate::policy::AuditDigest;
    let policy = parse(&with(""));
    assert_eq!(policy.audit.digest, AuditDigest::Sha256);
    assert_eq!(policy.users["u"].audit_digest, AuditDigest::Sha256);
    let policy = parse(&with(r#", "audit_digest": "none""#));
    assert_eq!(policy.audit.digest, AuditDigest::Sha256);
    assert_eq!(policy.users["u"].audit_digest, AuditDigest::None);
    // The global value is every user's default; a user may turn it back on.
    let global = |user: &str| {
        let doc = with(user);
        let body = doc.strip_suffix(" }").expect("ends with }");
        format!("{body}, \"audit\": {{ \"digest\": \"none\" }} }}")
    };
    let policy = parse(&global(""));
    assert_eq!(policy.audit.digest, AuditDigest::None);
    assert_eq!(policy.users["u"].audit_digest, AuditDigest::None);
    let policy = parse(&global(r#", "audit_digest": "sha256""#));
    assert_eq!(policy.users["u"].audit_digest, AuditDigest::Sha256);
    assert_eq!(AuditDigest::None.name(), "none");
}

#[test]
fn a_misspelled_digest_is_an_error_at_its_place() {
    let doc = with(r#", "audit_digest": "md5""#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"md5\"",
            "users.u.audit_digest: unknown value \"md5\"; expected \"sha256\" or \"none\""
        )]
    );
    let doc = minimal_with(r#""audit": { "digest": "SHA-256" }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"SHA-256\"",
            "audit.digest: unknown value \"SHA-256\"; expected \"sha256\" or \"none\""
        )]
    );
}
