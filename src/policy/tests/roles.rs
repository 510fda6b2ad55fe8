//! `roles` and the verb sets they hold (`load/roles.rs`).

use super::*;

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
