//! `access`, the prefix table and `routing` (`load/access.rs`).

use super::*;

const ACCESS: &str = r#""access": { "allow_from": ["127.0.0.0/8", "::1"], "deny_from": ["127.0.0.9/32"],
            "allow_countries": ["DE", "fr", "US"], "deny_countries": ["KP"],
            "allow_asns": [64500, "AS64501", "as64502"], "deny_asns": [64666],
            "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#;

#[test]
fn access_rules_global_and_per_user() {
    let doc = with_alice(
        r#", "allow_from": ["127.0.0.0/29"], "deny_from": ["127.0.0.2"],
             "allow_countries": ["de", "US"], "deny_countries": ["fr"],
             "allow_asns": ["AS64500", 64502], "deny_asns": [64501]"#,
        ACCESS,
    );
    let policy = parse_with(&doc, SAMPLE_TABLE);
    let global = &policy.access;
    assert_eq!(
        global.allow_from,
        vec![
            Cidr::parse("127.0.0.0/8").unwrap(),
            Cidr::parse("::1/128").unwrap()
        ]
    );
    assert_eq!(global.deny_from, vec![Cidr::parse("127.0.0.9/32").unwrap()]);
    assert_eq!(global.allow_countries, vec![*b"DE", *b"FR", *b"US"]);
    assert_eq!(global.deny_countries, vec![*b"KP"]);
    assert_eq!(global.allow_asns, vec![64500, 64501, 64502]);
    assert_eq!(global.deny_asns, vec![64666]);
    assert_eq!(
        policy.prefix_table,
        [PathBuf::from("/etc/ftpgate/prefixes.tsv")]
    );
    let geo = policy.geo.as_deref().expect("the table is loaded");
    assert_eq!(geo.len(), 6);
    assert_eq!(
        geo.lookup(ip("127.0.0.3")),
        Some(GeoEntry {
            asn: Some(64666),
            country: Some(*b"KP")
        })
    );

    let alice = &policy.users["alice"];
    let user = &alice.access;
    assert_eq!(user.allow_from, vec![Cidr::parse("127.0.0.0/29").unwrap()]);
    assert_eq!(user.deny_from, vec![Cidr::parse("127.0.0.2/32").unwrap()]);
    assert_eq!(user.allow_countries, vec![*b"DE", *b"US"]);
    assert_eq!(user.deny_countries, vec![*b"FR"]);
    assert_eq!(user.allow_asns, vec![64500, 64502]);
    assert_eq!(user.deny_asns, vec![64501]);

    // Global first, then the user's: what the session will do.
    let verdict = |address: &str| {
        policy
            .access
            .check(ip(address), Some(geo))
            .and_then(|()| alice.access.check(ip(address), Some(geo)))
    };
    assert_eq!(verdict("127.0.0.1"), Ok(()));
    assert_eq!(policy.access.check(ip("::1"), Some(geo)), Ok(()));
    assert_eq!(
        verdict("::1"),
        Err("allow_from (no match)".to_owned()),
        "alice's own networks"
    );
    assert_eq!(verdict("::ffff:127.0.0.1"), Ok(()));
    assert_eq!(verdict("127.0.0.5"), Ok(()));
    assert_eq!(
        verdict("127.0.0.2"),
        Err("deny_from 127.0.0.2/32".to_owned())
    );
    assert_eq!(verdict("127.0.0.3"), Err("deny_countries KP".to_owned()));
    assert_eq!(
        verdict("127.0.0.9"),
        Err("deny_from 127.0.0.9/32".to_owned())
    );
    assert_eq!(
        verdict("127.0.1.1"),
        Err("allow_countries (no match)".to_owned())
    );
    assert_eq!(
        verdict("127.0.2.1"),
        Err("allow_countries (no match)".to_owned())
    );
    assert_eq!(verdict("10.0.0.1"), Err("allow_from (no match)".to_owned()));

    let summary = policy.summary();
    for expected in [
        "access: from 127.0.0.0/8 ::1/128, not from 127.0.0.9/32, countries DE FR US, \
         not countries KP, AS 64500 64501 64502, not AS 64666\n",
        "prefix table: /etc/ftpgate/prefixes.tsv (6 ranges)\n",
        "  alice: role download, backend files, timeouts login 30s, idle 300s, session 900s, \
         data connect 30s, from 127.0.0.0/29, not from 127.0.0.2/32, countries DE US, \
         not countries FR, AS 64500 64502, not AS 64501\n",
    ] {
        assert!(summary.contains(expected), "{expected:?} not in\n{summary}");
    }

    // Empty lists ask for nothing, and need no table.
    let doc = with_alice(
        r#", "allow_countries": [], "deny_asns": []"#,
        r#""access": { "allow_from": [], "deny_countries": [] }"#,
    );
    let policy = parse(&doc);
    assert!(policy.access.is_empty());
    assert!(policy.users["alice"].access.is_empty());
    assert_eq!(policy.geo, None);
    assert!(!policy.summary().contains("access:"));
    // A table without rules is loaded all the same.
    let doc = minimal_with(r#""access": { "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#);
    let policy = parse_with(&doc, SAMPLE_TABLE);
    assert_eq!(policy.geo.as_ref().map(|geo| geo.len()), Some(6));
    assert!(policy.access.is_empty());
    // Networks alone need no table.
    let doc = with_alice(
        r#", "deny_from": ["10.0.0.0/8"]"#,
        r#""access": { "allow_from": ["10.0.0.0/8"] }"#,
    );
    let policy = parse(&doc);
    assert_eq!(
        policy.access.check(ip("10.1.1.1"), None),
        Ok(()),
        "global allows"
    );
    assert_eq!(
        policy.users["alice"].access.check(ip("10.1.1.1"), None),
        Err("deny_from 10.0.0.0/8".to_owned())
    );
}

#[test]
fn access_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#""access": { "allow_from": ["10.0.0.1/8"] }"#,
            "\"10.0.0.1/8\"",
            "access.allow_from[0]: \"10.0.0.1/8\" has host bits set; did you mean \"10.0.0.0/8\"?",
        ),
        (
            r#""access": { "deny_from": ["10.0.0.0/8", "bogus"] }"#,
            "\"bogus\"",
            "access.deny_from[1]: \"bogus\" is not an address or network (e.g. \"198.51.100.0/24\", \"2001:db8::/32\", \"192.0.2.7\")",
        ),
        (
            r#""access": { "allow_countries": ["DEU"], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "\"DEU\"",
            "access.allow_countries[0]: \"DEU\" is not a country code: use the two letters of ISO 3166-1, e.g. \"DE\"",
        ),
        (
            r#""access": { "deny_countries": ["DE", "--"], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "\"--\"",
            "access.deny_countries[1]: \"--\" is not a country code: use the two letters of ISO 3166-1, e.g. \"DE\"",
        ),
        (
            r#""access": { "allow_asns": [0], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "0]",
            "access.allow_asns[0]: 0 is not an AS number; AS numbers go from 1 to 4294967295",
        ),
        (
            r#""access": { "allow_asns": ["AS0"], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "\"AS0\"",
            "access.allow_asns[0]: 0 is not an AS number; AS numbers go from 1 to 4294967295",
        ),
        (
            r#""access": { "deny_asns": [4294967296], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "4294967296",
            "access.deny_asns[0]: must be an AS number from 1 to 4294967295, e.g. 64500 or \"AS64500\"",
        ),
        (
            r#""access": { "deny_asns": [1, -5], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "-5",
            "access.deny_asns[1]: must be an AS number from 1 to 4294967295, e.g. 64500 or \"AS64500\"",
        ),
        (
            r#""access": { "deny_asns": [1.5], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "1.5",
            "access.deny_asns[0]: must be an AS number from 1 to 4294967295, e.g. 64500 or \"AS64500\"",
        ),
        (
            r#""access": { "deny_asns": ["ASX"], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "\"ASX\"",
            "access.deny_asns[0]: \"ASX\" is not an AS number; write 64500 or \"AS64500\"",
        ),
        (
            r#""access": { "deny_asns": [true], "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "true",
            "access.deny_asns[0]: invalid type: boolean `true`, expected a number or a string",
        ),
        (
            r#""access": { "allow_countries": "DE", "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
            "\"DE\"",
            "access.allow_countries: invalid type: string \"DE\", expected a sequence",
        ),
        (
            r#""access": { "allow_countries": ["DE"] }"#,
            "\"allow_countries\"",
            "access.allow_countries: needs access.prefix_table (the operator's table of \
             address ranges with their country and AS number)",
        ),
        (
            r#""access": { "deny_asns": [64666] }"#,
            "\"deny_asns\"",
            "access.deny_asns: needs access.prefix_table (the operator's table of address \
             ranges with their country and AS number)",
        ),
        (
            r#""access": { "prefix_table": "prefixes.tsv" }"#,
            "\"prefixes.tsv\"",
            "access.prefix_table: \"prefixes.tsv\" must be an absolute path (starting with /)",
        ),
        (
            r#""access": { "prefix_table": 5 }"#,
            "5",
            "access.prefix_table: invalid type: integer `5`, expected a string or a list of strings",
        ),
        (
            r#""access": { "prefix": "/etc/ftpgate/prefixes.tsv" }"#,
            "\"prefix\"",
            "access.prefix: unknown field `prefix`, expected one of `allow_from`, `deny_from`, \
             `allow_countries`, `deny_countries`, `allow_asns`, `deny_asns`, `prefix_table`",
        ),
        (
            r#""access": ["10.0.0.0/8"]"#,
            "[\"10.0.0.0/8\"]",
            "access: invalid type: sequence, expected an object",
        ),
    ];
    for &(extra, needle, message) in cases {
        let doc = minimal_with(extra);
        assert_eq!(
            errors_with(&doc, SAMPLE_TABLE.as_bytes()),
            [err_at(&doc, needle, message)],
            "{extra}"
        );
    }

    // A wrong prefix_table hides the "needs access.prefix_table" of the rules; in a list,
    // each file's error is at its own place.
    let doc = with_alice(
        r#", "allow_countries": ["DE"]"#,
        r#""access": { "deny_asns": [1], "prefix_table": ["/x"] }"#,
    );
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"/x\"",
            "access.prefix_table[0]: /x: this caller reads no files (parse_policy); load the policy with load_policy"
        )]
    );
    let doc = with_alice("", r#""access": { "prefix_table": [] }"#);
    assert_eq!(
        errors(&doc),
        [err_at(&doc, "[]", "access.prefix_table: names no file")]
    );

    // Per user: the same rules, the same messages under the user's path.
    let user_cases: &[(&str, &str, &str)] = &[
        (
            r#", "allow_countries": ["D"]"#,
            "\"D\"",
            "users.alice.allow_countries[0]: \"D\" is not a country code: use the two \
             letters of ISO 3166-1, e.g. \"DE\"",
        ),
        (
            r#", "deny_asns": ["AS 1"]"#,
            "\"AS 1\"",
            "users.alice.deny_asns[0]: \"AS 1\" is not an AS number; write 64500 or \"AS64500\"",
        ),
        (
            r#", "allow_asns": [-1]"#,
            "-1",
            "users.alice.allow_asns[0]: must be an AS number from 1 to 4294967295, e.g. 64500 \
             or \"AS64500\"",
        ),
        (
            r#", "deny_from": ["::/129"]"#,
            "\"::/129\"",
            "users.alice.deny_from[0]: \"::/129\": the prefix length must be a number from 0 to 128",
        ),
    ];
    for &(alice, needle, message) in user_cases {
        let doc = with_alice(
            alice,
            r#""access": { "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
        );
        assert_eq!(
            errors_with(&doc, SAMPLE_TABLE.as_bytes()),
            [err_at(&doc, needle, message)],
            "{alice}"
        );
    }
    let doc = with_alice(r#", "allow_countries": ["DE"], "deny_asns": [64666]"#, "");
    assert_eq!(
        errors(&doc),
        [
            err_at(
                &doc,
                "\"allow_countries\"",
                "users.alice.allow_countries: needs access.prefix_table (the operator's table \
                 of address ranges with their country and AS number)"
            ),
            err_at(
                &doc,
                "\"deny_asns\"",
                "users.alice.deny_asns: needs access.prefix_table (the operator's table of \
                 address ranges with their country and AS number)"
            ),
        ]
    );
}

#[test]
fn prefix_table_errors_name_the_table_line() {
    let doc = minimal_with(
        r#""workers": 0, "access": { "allow_countries": ["DE"],
  "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#,
    );
    let table = "# comment\n\
                 10.0.0.0/8\t64500\tDE\n\
                 10.0.0.9\t10.0.0.1\t1\tDE\n\
                 11.0.0.0/8\tx\tDE\n\
                 10.1.0.0/16\t64501\tFR\n";
    let at_table = |message: &str| {
        err_at(
            &doc,
            "\"/etc/ftpgate/prefixes.tsv\"",
            &format!("access.prefix_table: /etc/ftpgate/prefixes.tsv {message}"),
        )
    };
    assert_eq!(
        errors_with(&doc, table.as_bytes()),
        [
            err_at(
                &doc,
                "0,",
                "workers: must be \"auto\" or a number of worker processes from 1 to 256"
            ),
            at_table("line 3: end address 10.0.0.1 before start 10.0.0.9"),
            at_table(
                "line 4: \"x\" is not an AS number (0 to 4294967295, \"AS64500\", or \"-\" for unknown)"
            ),
            at_table("line 5: overlaps line 2 (10.0.0.0-10.255.255.255)"),
        ]
    );
    // The position, literally: the value on the last line of the document.
    assert!(
        errors_with(&doc, table.as_bytes())[1].starts_with("7:19: "),
        "{:?}",
        errors_with(&doc, table.as_bytes())
    );

    for (bytes, message) in [
        (
            &b""[..],
            "has no entries (every country and AS rule would match nothing)",
        ),
        (
            &b"# only comments\n\n"[..],
            "has no entries (every country and AS rule would match nothing)",
        ),
        (
            &b"10.0.0.0/8 1 DE\n11.0.0.0/8 1 \xffE\n"[..],
            "line 2: not valid UTF-8",
        ),
    ] {
        let doc = minimal_with(r#""access": { "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#);
        assert_eq!(
            errors_with(&doc, bytes),
            [err_at(
                &doc,
                "\"/etc",
                &format!("access.prefix_table: /etc/ftpgate/prefixes.tsv {message}")
            )]
        );
    }

    // Too large (zeroed memory is not touched until used).
    let doc = minimal_with(r#""access": { "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#);
    let huge = vec![0u8; limits::MAX_PREFIX_TABLE_BYTES as usize + 1];
    assert_eq!(
        errors_with(&doc, &huge),
        [err_at(
            &doc,
            "\"/etc",
            "access.prefix_table: /etc/ftpgate/prefixes.tsv is larger than 268435456 bytes, \
             the most a prefix table may have"
        )]
    );
    drop(huge);

    // A file that cannot be read.
    let doc = minimal_with(r#""access": { "prefix_table": "/etc/ftpgate/missing.tsv" }"#);
    assert_eq!(
        errors_with(&doc, b""),
        [err_at(
            &doc,
            "\"/etc",
            "access.prefix_table: /etc/ftpgate/missing.tsv: No such file or directory"
        )]
    );
    // parse_policy reads no files.
    let doc = minimal_with(r#""access": { "prefix_table": "/etc/ftpgate/prefixes.tsv" }"#);
    assert_eq!(
        errors(&doc),
        [err_at(
            &doc,
            "\"/etc",
            "access.prefix_table: /etc/ftpgate/prefixes.tsv: this caller reads no files \
             (parse_policy); load the policy with load_policy"
        )]
    );

    // Many bad lines: the first ones are listed, the rest counted.
    let bad: String = (0..50).map(|i| format!("bogus{i}\n")).collect();
    let found = errors_with(&doc, bad.as_bytes());
    assert_eq!(
        found.len(),
        limits::MAX_PREFIX_TABLE_ERRORS + 1,
        "{found:?}"
    );
    assert!(
        found[limits::MAX_PREFIX_TABLE_ERRORS]
            .ends_with("line 21: 30 more problems from this line on are not listed"),
        "{found:?}"
    );
}

#[test]
fn load_policy_reads_the_prefix_table() {
    let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/prefixes.tsv");
    let doc = minimal_with(&format!(
        r#""access": {{ "deny_countries": ["KP"], "prefix_table": {:?} }}"#,
        table.display().to_string()
    ));
    let path = temp_file("with-table.json", doc.as_bytes());
    let policy = load_policy(&path).expect("valid");
    assert_eq!(policy.prefix_table, std::slice::from_ref(&table));
    let geo = policy.geo.as_deref().expect("loaded");
    assert_eq!(geo.len(), 6);
    assert_eq!(
        policy.access.check(ip("127.0.0.3"), Some(geo)),
        Err("deny_countries KP".to_owned())
    );
    assert_eq!(policy.access.check(ip("127.0.0.1"), Some(geo)), Ok(()));
    let _ = std::fs::remove_file(&path);

    // A directory is not a table.
    let doc = minimal_with(&format!(
        r#""access": {{ "prefix_table": {:?} }}"#,
        std::env::temp_dir().display().to_string()
    ));
    let path = temp_file("dir-table.json", doc.as_bytes());
    let errors = load_policy(&path).expect_err("a directory");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.ends_with(": not a regular file"),
        "{errors:?}"
    );
    let _ = std::fs::remove_file(&path);
}

#[cfg(unix)]
#[test]
fn load_policy_refuses_a_world_writable_prefix_table() {
    use std::os::unix::fs::PermissionsExt;
    let table = temp_file("open.tsv", b"10.0.0.0/8\t64500\tDE\n");
    std::fs::set_permissions(&table, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let doc = minimal_with(&format!(
        r#""access": {{ "prefix_table": {:?} }}"#,
        table.display().to_string()
    ));
    let path = temp_file("open-table.json", doc.as_bytes());
    let errors = load_policy(&path).expect_err("world-writable");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let table_name = table.display();
    assert_eq!(
        errors[0].message,
        format!(
            "access.prefix_table: {table_name}: its group and every user can write it (mode \
             0666); run chmod go-w {table_name}"
        )
    );
    // At the key that names the file.
    let (line, column) = at(&doc, "\"prefix_table\"");
    assert_eq!((errors[0].line, errors[0].column), (line, column));
    std::fs::set_permissions(&table, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_eq!(
        load_policy(&path).expect("valid").geo.map(|geo| geo.len()),
        Some(1)
    );
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&table);
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
fn routing_user_at_host() {
    let doc = with("").replacen(
        "{ \"listeners\"",
        r#"{ "routing": { "user_at_host": true, "targets": { "mf": "b" } }, "listeners""#,
        1,
    );
    let (policy, messages) = validate(&doc);
    assert_eq!(messages, Vec::<String>::new());
    assert!(policy.routing.user_at_host);
    assert!(
        policy
            .summary()
            .contains("routing: USER name@target on\n  mf -> b\n")
    );
}
