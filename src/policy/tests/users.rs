//! `users`: references to roles and backends, time windows and FXP networks
//! (`load/users.rs`).

use super::*;

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
fn time_windows() {
    let doc = with_alice(
        r#", "time_windows": [
      { "days": "mon-fri", "hours": "08:00-18:00", "utc_offset": "+01:00" },
      { "days": ["sat"], "hours": "22:00-02:00", "utc_offset": "-05:30" },
      { "days": ["Sun", "wednesday", "fri-mon"], "hours": "00:00-24:00", "utc_offset": "Z" },
      { "days": "daily", "hours": "12:00-13:00", "utc_offset": "+14:00" } ]"#,
        "",
    );
    let policy = parse(&doc);
    let alice = &policy.users["alice"];
    let week = [true, true, true, true, true, false, false];
    assert_eq!(
        alice.time_windows,
        vec![
            TimeWindow {
                days: week,
                start_minute: 8 * 60,
                end_minute: 18 * 60,
                zone: Zone::Fixed(60)
            },
            TimeWindow {
                days: [false, false, false, false, false, true, false],
                start_minute: 22 * 60,
                end_minute: 2 * 60,
                zone: Zone::Fixed(-330)
            },
            TimeWindow {
                days: [true, false, true, false, true, true, true],
                start_minute: 0,
                end_minute: 24 * 60,
                zone: Zone::Fixed(0)
            },
            TimeWindow {
                days: [true; 7],
                start_minute: 12 * 60,
                end_minute: 13 * 60,
                zone: Zone::Fixed(840)
            },
        ]
    );
    // Tuesday 1970-01-06 (day 5) 10:00 UTC: 11:00 at +01:00.
    let tuesday_10 = 5 * 86_400 + 10 * 3600;
    assert!(alice.in_time_window(tuesday_10));
    assert!(windows_allow(&alice.time_windows, tuesday_10));
    // Tuesday 20:00 UTC: outside every window.
    assert!(!alice.in_time_window(5 * 86_400 + 20 * 3600));
    // No windows: always.
    let doc = with_alice(r#", "time_windows": []"#, "");
    assert!(parse(&doc).users["alice"].in_time_window(5 * 86_400 + 20 * 3600));
    assert!(parse(MINIMAL).users["alice"].time_windows.is_empty());

    let summary = policy.summary();
    assert!(
        summary.contains(
            ", at mon-fri 08:00-18:00 +01:00 or sat 22:00-02:00 -05:30 or \
             mon,wed,fri-sun 00:00-24:00 +00:00 or all 12:00-13:00 +14:00\n"
        ),
        "{summary}"
    );
}

#[test]
fn time_window_errors() {
    const GOOD: &str = r#"{ "days": "mon-fri", "hours": "08:00-18:00", "utc_offset": "+01:00" }"#;
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            r#""days": "mon-fri""#,
            r#""days": "weekdays""#,
            "\"weekdays\"",
            "users.alice.time_windows[0].days: \"weekdays\" is not a day or range of days; use \
             a day (\"sat\"), a range (\"mon-fri\", \"fri-mon\"), \"all\" or \"daily\"; days \
             are mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            r#""days": "mon-fri""#,
            r#""days": ["mon", "funday"]"#,
            "\"funday\"",
            "users.alice.time_windows[0].days[1]: \"funday\" is not a day or range of days; \
             use a day (\"sat\"), a range (\"mon-fri\", \"fri-mon\"), \"all\" or \"daily\"; \
             days are mon, tue, wed, thu, fri, sat, sun",
        ),
        (
            r#""days": "mon-fri""#,
            r#""days": []"#,
            "[]",
            "users.alice.time_windows[0].days: at least one day is required, e.g. [\"sat\", \"sun\"]",
        ),
        (
            r#""days": "mon-fri""#,
            r#""days": 1"#,
            "1,",
            "users.alice.time_windows[0].days: invalid type: integer `1`, expected a string \
             or a list of strings",
        ),
        (
            r#""days": "mon-fri""#,
            r#""days": ["mon", 2]"#,
            "[\"mon\", 2]",
            "users.alice.time_windows[0].days: invalid type: integer `2`, expected a string",
        ),
        (
            r#""hours": "08:00-18:00""#,
            r#""hours": "8-18""#,
            "\"8-18\"",
            "users.alice.time_windows[0].hours: \"8-18\" is not a span of hours; write \
             \"HH:MM-HH:MM\" in 24-hour time, e.g. \"08:00-18:00\" (the end is exclusive; \
             \"22:00-02:00\" runs past midnight; \"00:00-24:00\" is the whole day)",
        ),
        (
            r#""hours": "08:00-18:00""#,
            r#""hours": "08:00-08:00""#,
            "\"08:00-08:00\"",
            "users.alice.time_windows[0].hours: \"08:00-08:00\": the window is empty (start \
             and end are the same); \"00:00-24:00\" is the whole day",
        ),
        (
            r#""hours": "08:00-18:00""#,
            r#""hours": "24:00-01:00""#,
            "\"24:00-01:00\"",
            "users.alice.time_windows[0].hours: \"24:00-01:00\": a window cannot start at \
             24:00; use 00:00",
        ),
        (
            r#""utc_offset": "+01:00""#,
            r#""utc_offset": "CET""#,
            "\"CET\"",
            "users.alice.time_windows[0].utc_offset: \"CET\" is not an offset from UTC; write \
             \"+HH:MM\" or \"-HH:MM\" (e.g. \"+01:00\"), or \"Z\" for UTC; the offset is \
             fixed, with no daylight saving time (for that, give an IANA time zone in \"tz\" \
             instead)",
        ),
        (
            r#""utc_offset": "+01:00""#,
            r#""utc_offset": "+15:00""#,
            "\"+15:00\"",
            "users.alice.time_windows[0].utc_offset: \"+15:00\": offsets from UTC go from \
             -14:00 to +14:00",
        ),
        (
            r#", "utc_offset": "+01:00""#,
            "",
            "{ \"days\"",
            "users.alice.time_windows[0]: \"tz\" is missing (an IANA time zone such as \
             \"Europe/Berlin\"; or \"utc_offset\", a fixed offset such as \"+01:00\" or \"Z\")",
        ),
        (
            r#""days": "mon-fri", "#,
            "",
            "{ \"hours\"",
            "users.alice.time_windows[0]: \"days\" is missing (e.g. \"mon-fri\", [\"sat\", \
             \"sun\"] or \"all\")",
        ),
        (
            r#", "hours": "08:00-18:00""#,
            "",
            "{ \"days\"",
            "users.alice.time_windows[0]: \"hours\" is missing (e.g. \"08:00-18:00\"; \
             \"00:00-24:00\" for the whole day)",
        ),
        (
            r#""utc_offset": "+01:00""#,
            r#""utc_offset": "+01:00", "tz": "Europe/Berlin""#,
            "\"tz\"",
            "users.alice.time_windows[0].tz: give either tz (a time zone) or utc_offset (a \
             fixed offset), not both",
        ),
        (
            r#""utc_offset": "+01:00""#,
            r#""tz": "Europe/Berlinn""#,
            "\"Europe/Berlinn\"",
            "users.alice.time_windows[0].tz: \"Europe/Berlinn\" is not a time zone of the \
             system's time-zone database (/usr/share/zoneinfo); use an IANA name such as \
             \"Europe/Berlin\", \"America/New_York\" or \"UTC\"",
        ),
        (
            r#""utc_offset": "+01:00""#,
            r#""tz": "../../../etc/passwd""#,
            "\"../../../etc/passwd\"",
            "users.alice.time_windows[0].tz: \"../../../etc/passwd\" is not a time zone of the \
             system's time-zone database (/usr/share/zoneinfo); use an IANA name such as \
             \"Europe/Berlin\", \"America/New_York\" or \"UTC\"",
        ),
        (
            r#""utc_offset": "+01:00""#,
            r#""tz": 1"#,
            "1 }",
            "users.alice.time_windows[0].tz: invalid type: integer `1`, expected a string",
        ),
        (
            r#""utc_offset": "+01:00""#,
            r#""utc_offset": 1"#,
            "1 }",
            "users.alice.time_windows[0].utc_offset: invalid type: integer `1`, expected a string",
        ),
    ];
    for &(from, to, needle, message) in cases {
        let window = GOOD.replacen(from, to, 1);
        assert_ne!(window, GOOD, "{from}");
        let doc = with_alice(&format!(r#", "time_windows": [{window}]"#), "");
        assert_eq!(errors(&doc), [err_at(&doc, needle, message)], "{window}");
    }
    // Not a list, not an object.
    let doc = with_alice(&format!(r#", "time_windows": {GOOD}"#), "");
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "{ \"days\"",
            "users.alice.time_windows: invalid type: map, expected a sequence"
        )]
    );
    let doc = with_alice(r#", "time_windows": ["mon-fri"]"#, "");
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"mon-fri\"",
            "users.alice.time_windows[0]: invalid type: string \"mon-fri\", expected an object"
        )]
    );
    // Every problem of every window at once, with the indexes kept.
    let doc = with_alice(
        r#", "time_windows": [
      { "days": "mox", "hours": "8", "utc_offset": "+1" },
      5,
      { "days": "sat", "hours": "22:00-02:00", "utc_offset": "Z" },
      {} ]"#,
        "",
    );
    let found = errors(&doc);
    assert_eq!(found.len(), 7, "{found:?}");
    assert!(
        found[0].contains("time_windows[0].days: \"mox\""),
        "{found:?}"
    );
    assert!(
        found[1].contains("time_windows[0].hours: \"8\""),
        "{found:?}"
    );
    assert!(
        found[2].contains("time_windows[0].utc_offset: \"+1\""),
        "{found:?}"
    );
    assert!(
        found[3].contains("time_windows[1]: invalid type"),
        "{found:?}"
    );
    assert!(
        found[4].contains("time_windows[3]: \"days\" is missing"),
        "{found:?}"
    );
    assert!(
        found[5].contains("time_windows[3]: \"hours\" is missing"),
        "{found:?}"
    );
    assert!(
        found[6].contains("time_windows[3]: \"tz\" is missing"),
        "{found:?}"
    );
}

#[test]
fn allow_fxp_to() {
    let doc = with_alice(r#", "allow_fxp_to": ["192.0.2.0/24", "2001:db8::7"]"#, "");
    let policy = parse(&doc);
    let alice = &policy.users["alice"];
    assert_eq!(
        alice.allow_fxp_to,
        vec![
            Cidr::parse("192.0.2.0/24").unwrap(),
            Cidr::parse("2001:db8::7/128").unwrap()
        ]
    );
    assert!(alice.allow_fxp_to[0].contains(ip("192.0.2.99")));
    assert!(
        policy
            .summary()
            .contains(", PORT/EPRT also to 192.0.2.0/24 2001:db8::7/128\n"),
        "{}",
        policy.summary()
    );
    assert!(parse(MINIMAL).users["alice"].allow_fxp_to.is_empty());

    let doc = with_alice(
        r#", "allow_fxp_to": ["192.0.2.1/24", 7, "ftp.example.com"]"#,
        "",
    );
    assert_eq!(
        errors(&doc),
        [
            err_at(
                &doc,
                "\"192.0.2.1/24\"",
                "users.alice.allow_fxp_to[0]: \"192.0.2.1/24\" has host bits set; did you mean \
                 \"192.0.2.0/24\"?"
            ),
            err_at(
                &doc,
                "7,",
                "users.alice.allow_fxp_to[1]: invalid type: integer `7`, expected a string"
            ),
            err_at(
                &doc,
                "\"ftp.example.com\"",
                "users.alice.allow_fxp_to[2]: \"ftp.example.com\" is not an address or network \
                 (e.g. \"198.51.100.0/24\", \"2001:db8::/32\", \"192.0.2.7\")"
            ),
        ]
    );
}

#[test]
fn time_windows_in_a_named_zone() {
    let doc = with_alice(
        r#", "time_windows": [
      { "days": "mon-fri", "hours": "08:00-18:00", "tz": "Europe/Berlin" },
      { "days": "sat", "hours": "09:00-12:00", "utc_offset": "+01:00" } ]"#,
        "",
    );
    let policy = parse(&doc);
    let alice = &policy.users["alice"];
    assert!(matches!(
        &alice.time_windows[0].zone,
        Zone::Named { name, .. } if name == "Europe/Berlin"
    ));
    assert_eq!(alice.time_windows[1].zone, Zone::Fixed(60));
    // Monday 2026-03-30 06:30 UTC is 08:30 CEST (summer time): inside; a fixed +01:00
    // would have said 07:30.
    assert!(alice.in_time_window(1_774_828_800 + 6 * 3600 + 30 * 60));
    assert!(!alice.in_time_window(1_774_828_800 + 16 * 3600));
    // Monday 2026-03-23 06:30 UTC is 07:30 CET (winter time): outside.
    assert!(!alice.in_time_window(1_774_224_000 + 6 * 3600 + 30 * 60));
    let summary = policy.summary();
    assert!(
        summary.contains(", at mon-fri 08:00-18:00 Europe/Berlin or sat 09:00-12:00 +01:00\n"),
        "{summary}"
    );
}

#[test]
fn tls_session_reuse_is_true_false_or_bridge() {
    assert_eq!(
        parse(MINIMAL).users["alice"].tls_session_reuse,
        TlsSessionReuse::Required,
        "required by default"
    );
    for (written, reuse) in [
        ("true", TlsSessionReuse::Required),
        ("false", TlsSessionReuse::Off),
        ("\"bridge\"", TlsSessionReuse::Bridge),
    ] {
        let doc = with_alice(&format!(r#", "tls_session_reuse": {written}"#), "");
        let policy = parse(&doc);
        assert_eq!(policy.users["alice"].tls_session_reuse, reuse, "{written}");
        assert_eq!(reuse.name(), written);
        // `--check` spells out an exception to the default.
        let summary = policy.summary();
        let expected = match reuse {
            TlsSessionReuse::Required => None,
            TlsSessionReuse::Bridge => Some(", unresumed data TLS bridged"),
            TlsSessionReuse::Off => Some(", unresumed data TLS accepted"),
        };
        assert_eq!(
            summary.contains("unresumed data TLS"),
            expected.is_some(),
            "{summary}"
        );
        if let Some(text) = expected {
            assert!(summary.contains(text), "{summary}");
        }
    }
    let doc = with_alice(r#", "tls_session_reuse": "yes""#, "");
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"yes\"",
            "users.alice.tls_session_reuse: unknown value \"yes\"; expected true, false or \
             \"bridge\""
        )]
    );
    let doc = with_alice(r#", "tls_session_reuse": 1"#, "");
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "1 }",
            "users.alice.tls_session_reuse: invalid type: integer `1`, expected true, false or \
             \"bridge\""
        )]
    );
}

#[test]
fn a_users_paths_make_a_jail() {
    let doc = MINIMAL.replacen(
        ALICE,
        r#"{ "role": "download", "backend": "files", "paths": ["/in/", "/out/a"] }"#,
        1,
    );
    let jail = parse(&doc).users["alice"].jail.clone().expect("a jail");
    assert_eq!(jail.prefixes(), ["/in", "/out/a"]);
    assert_eq!(parse(MINIMAL).users["alice"].jail, None);
    for (paths, needle, message) in [
        (
            r#"[]"#,
            "[]",
            "users.alice.paths: names no path: the user could reach nothing (remove the key for no jail)",
        ),
        (
            r#"["in"]"#,
            "\"in\"",
            "users.alice.paths[0]: \"in\" must be an absolute path (starting with /)",
        ),
        (
            r#"["/in/*"]"#,
            "\"/in/*\"",
            "users.alice.paths[0]: \"/in/*\": a backslash, ~ or glob characters cannot be in a path prefix",
        ),
        (
            r#"["/in/../etc"]"#,
            "\"/in/../etc\"",
            "users.alice.paths[0]: \"/in/../etc\": write the path without . or ..",
        ),
    ] {
        expect_one(
            ALICE,
            &format!(r#"{{ "role": "download", "backend": "files", "paths": {paths} }}"#),
            needle,
            message,
        );
    }
}

#[test]
fn enforce_top_level_and_per_user() {
    assert!(parse(MINIMAL).users["alice"].enforce, "enforced by default");
    assert_eq!(parse(MINIMAL).unenforced_note(), "");
    let dry = parse(&with_alice("", r#""enforce": false"#));
    assert!(
        !dry.users["alice"].enforce,
        "the top-level value is the default"
    );
    assert_eq!(dry.unenforced_users(), ["alice"]);
    assert!(
        dry.unenforced_note().contains("for 1 of 1 users: alice"),
        "{}",
        dry.unenforced_note()
    );
    let own = parse(&with_alice(r#", "enforce": true"#, r#""enforce": false"#));
    assert!(own.users["alice"].enforce, "the user's own value wins");
    let doc = with_alice(r#", "enforce": "no""#, "");
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"no\"",
            "users.alice.enforce: invalid type: string \"no\", expected a boolean"
        )]
    );
}
