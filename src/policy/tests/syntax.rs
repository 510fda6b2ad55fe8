//! Document-wide checks: JSON syntax, unknown keys and wrong JSON types at every level
//! (`schema.rs`), repeated keys, and many errors of different sections reported together,
//! in file order, each at its position.

use super::*;

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
            "listener: unknown field `listener`, expected one of `workers`, `drain_timeout`, `user`, `listeners`, \
             `passive`, `tls`, `backends`, `roles`, `users`, `routing`, `defaults`, `audit`, \
             `access`, `enforce`, `metrics`",
        ),
        (
            r#"{ "listeners": [{ "address": "0.0.0.0:21", "tsl": "none" }] }"#,
            "\"tsl\"",
            "listeners[0].tsl: unknown field `tsl`, expected one of `address`, `tls`, \
             `require`, `proxy_protocol`, `proxy_from`",
        ),
        (
            r#"{ "passive": { "port": "50000-50999" } }"#,
            "\"port\"",
            "passive.port: unknown field `port`, expected one of `ports`, `advertise`, \
             `proxy_protocol`, `proxy_from`, `shared`",
        ),
        (
            r#"{ "tls": { "cert": "/c.pem" } }"#,
            "\"cert\"",
            "tls.cert: unknown field `cert`, expected one of `certificate`, `private_key`, \
             `certificates`, `require`",
        ),
        (
            r#"{ "backends": { "edi": { "server": [] } } }"#,
            "\"server\"",
            "backends.edi.server: unknown field `server`, expected one of `servers`, \
             `balance`, `tls`, `source_address`, `ca_file`, `pinned_certificate`, `client_certificate`, \
             `client_key`, `server_name`, `feature_probe`, `health_check`, `verify_uploads`",
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
             `allow_from`, `deny_from`, `allow_countries`, `deny_countries`, `allow_asns`, \
             `deny_asns`, `time_windows`, `allow_fxp_to`, `tls_require`, `tls_session_reuse`, `audit_digest`, `limits`, `timeouts`, `enforce`, `paths`",
        ),
        (
            r#"{ "users": { "bob": { "limits": { "max_size": 1 } } } }"#,
            "\"max_size\"",
            "users.bob.limits.max_size: unknown field `max_size`, expected one of \
             `max_file_size`, `rate`, `user_rate`, `sessions`",
        ),
        (
            r#"{ "users": { "bob": { "timeouts": { "idel": 1 } } } }"#,
            "\"idel\"",
            "users.bob.timeouts.idel: unknown field `idel`, expected one of `login`, `idle`, \
             `session`, `data_connect`, `session_during_transfer`",
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
             `idle`, `session`, `data_connect`, `session_during_transfer`",
        ),
        (
            r#"{ "defaults": { "limits": { "sessions": 5 } } }"#,
            "\"sessions\"",
            "defaults.limits.sessions: unknown field `sessions`, expected one of \
             `sessions_total`, `sessions_per_ip`, `failed_logins_per_ip`, \
             `failed_login_window`, `ban`, `max_file_size`, `rate`, `user_rate`, \
             `sessions_waiting_for_backend`, `failed_login_delay_ms`",
        ),
        (
            r#"{ "audit": { "files": "/x" } }"#,
            "\"files\"",
            "audit.files: unknown field `files`, expected one of `syslog`, `file`, `mode`, \
             `digest`, `filecopy`, `on_failure`, `integrity`",
        ),
        (
            r#"{ "audit": { "syslog": { "facilty": "ftp" } } }"#,
            "\"facilty\"",
            "audit.syslog.facilty: unknown field `facilty`, expected one of `facility`, \
             `app_name`, `socket`, `cee`, `format`",
        ),
        (
            r#"{ "audit": { "mode": "filecopy", "filecopy": { "dir": "/x" } } }"#,
            "\"dir\"",
            "audit.filecopy.dir: unknown field `dir`, expected one of `directory`, \
             `retention_days`, `on_failure`",
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
          `allow_from`, `deny_from`, `allow_countries`, `deny_countries`, `allow_asns`, \
             `deny_asns`, `time_windows`, `allow_fxp_to`, `tls_require`, `tls_session_reuse`, `audit_digest`, `limits`, `timeouts`, `enforce`, `paths`"
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
            "9:3: colour: unknown field `colour`, expected one of `workers`, `drain_timeout`, `user`, `listeners`, \
             `passive`, `tls`, `backends`, `roles`, `users`, `routing`, `defaults`, `audit`, \
             `access`, `enforce`, `metrics`",
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
            "colour: unknown field `colour`, expected one of `workers`, `drain_timeout`, `user`, `listeners`, \
             `passive`, `tls`, `backends`, `roles`, `users`, `routing`, `defaults`, `audit`, \
             `access`, `enforce`, `metrics`",
        ),
        err_at(
            doc,
            "\"tsl\"",
            "listeners[0].tsl: unknown field `tsl`, expected one of `address`, `tls`, \
             `require`, `proxy_protocol`, `proxy_from`",
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
             `balance`, `tls`, `source_address`, `ca_file`, `pinned_certificate`, `client_certificate`, \
             `client_key`, `server_name`, `feature_probe`, `health_check`, `verify_uploads`",
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
             `idle`, `session`, `data_connect`, `session_during_transfer`",
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
             `allow_from`, `deny_from`, `allow_countries`, `deny_countries`, `allow_asns`, \
             `deny_asns`, `time_windows`, `allow_fxp_to`, `tls_require`, `tls_session_reuse`, `audit_digest`, `limits`, `timeouts`, `enforce`, `paths`",
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
             `sessions_total`, `sessions_per_ip`, `failed_logins_per_ip`, \
             `failed_login_window`, `ban`, `max_file_size`, `rate`, `user_rate`, \
             `sessions_waiting_for_backend`, `failed_login_delay_ms`",
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
             `digest`, `filecopy`, `on_failure`, `integrity`",
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
                 `allow_from`, `deny_from`, `allow_countries`, `deny_countries`, `allow_asns`, \
             `deny_asns`, `time_windows`, `allow_fxp_to`, `tls_require`, `tls_session_reuse`, `audit_digest`, `limits`, `timeouts`, `enforce`, `paths`",
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
             `session`, `data_connect`, `session_during_transfer`",
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
            "listeners[1].tls: \"explicit\" needs the \"tls\" section (certificate and private_key)",
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
            "backends.edi.balance: unknown value \"random\"; expected \"round-robin\", \"first-available\" or \"sticky\"",
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
            "audit.mode: \"filecopy\" needs audit.filecopy.directory",
        ),
    ];
    assert_eq!(errors, expected);
}

/// Every new key at once, with one mistake each, all reported in one run in file order.
#[test]
fn new_keys_report_every_error_together() {
    let doc = r#"{
  "listeners": [{ "address": "0.0.0.0:2121" }],
  "backends": { "files": { "servers": ["10.0.0.11:21"] } },
  "roles": { "download": { "allow": ["RETR"] } },
  "users": { "alice": { "role": "download", "backend": "files",
      "allow_countries": ["XYZ"], "deny_asns": [0],
      "time_windows": [{ "days": "someday", "hours": "08:00-18:00", "utc_offset": "+01:00" }],
      "allow_fxp_to": ["nowhere"],
      "limits": { "user_rate": "fast", "sessions": 0 },
      "timeouts": { "data_connect": 0 } } },
  "defaults": { "limits": { "ban": 0, "failed_login_window": "5m" } },
  "access": { "deny_countries": ["K"], "prefix_table": "/etc/ftpgate/prefixes.tsv",
              "colour": "red" }
}"#;
    let found = errors_with(doc, b"10.0.0.0/8 x DE\n");
    let expected = [
        err_at(
            doc,
            "\"XYZ\"",
            "users.alice.allow_countries[0]: \"XYZ\" is not a country code: use the two \
             letters of ISO 3166-1, e.g. \"DE\"",
        ),
        err_at(
            doc,
            "0]",
            "users.alice.deny_asns[0]: 0 is not an AS number; AS numbers go from 1 to 4294967295",
        ),
        err_at(
            doc,
            "\"someday\"",
            "users.alice.time_windows[0].days: \"someday\" is not a day or range of days; use \
             a day (\"sat\"), a range (\"mon-fri\", \"fri-mon\"), \"all\" or \"daily\"; days \
             are mon, tue, wed, thu, fri, sat, sun",
        ),
        err_at(
            doc,
            "\"nowhere\"",
            "users.alice.allow_fxp_to[0]: \"nowhere\" is not an address or network (e.g. \
             \"198.51.100.0/24\", \"2001:db8::/32\", \"192.0.2.7\")",
        ),
        err_at(
            doc,
            "\"fast\"",
            "users.alice.limits.user_rate: \"fast\" is not a rate: write bytes per second \
             with \"/s\", e.g. \"5MiB/s\"",
        ),
        err_at(
            doc,
            "0 }",
            "users.alice.limits.sessions: must be at least 1",
        ),
        err_at(
            doc,
            "0 } } }",
            "users.alice.timeouts.data_connect: must be at least 1 second",
        ),
        err_at(
            doc,
            "0, \"failed",
            "defaults.limits.ban: must be at least 1 second",
        ),
        err_at(
            doc,
            "\"5m\"",
            "defaults.limits.failed_login_window: \"5m\": write a number of seconds without \
             quotes or units, e.g. 300",
        ),
        err_at(
            doc,
            "\"K\"",
            "access.deny_countries[0]: \"K\" is not a country code: use the two letters of \
             ISO 3166-1, e.g. \"DE\"",
        ),
        err_at(
            doc,
            "\"/etc",
            "access.prefix_table: /etc/ftpgate/prefixes.tsv line 1: \"x\" is not an AS number \
             (0 to 4294967295, \"AS64500\", or \"-\" for unknown)",
        ),
        err_at(
            doc,
            "\"colour\"",
            "access.colour: unknown field `colour`, expected one of `allow_from`, \
             `deny_from`, `allow_countries`, `deny_countries`, `allow_asns`, `deny_asns`, \
             `prefix_table`",
        ),
    ];
    assert_eq!(found, expected);
}
