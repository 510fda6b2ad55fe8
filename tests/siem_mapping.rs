//! packaging/examples/siem-mapping.txt maps every field of the audit trail to ECS and to
//! Zeek's ftp.log: every field of every event in etc/audit-schema.json has a row (its own, or
//! a "*" row for the envelope), every row names a field the schema has, and no row is there
//! twice; each row's Zeek column is a field of ftp.log or "-", and every ftp.log field is
//! either a row's or named in the file's header as one ftpgate does not give. A field added
//! to the schema without a row here fails this test.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const MAPPING: &str = include_str!("../packaging/examples/siem-mapping.txt");
const SCHEMA: &str = include_str!("../etc/audit-schema.json");

/// The fields of Zeek's ftp.log (Zeek 6, base/protocols/ftp/info.zeek).
const ZEEK_FTP_LOG: &[&str] = &[
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "user",
    "password",
    "command",
    "arg",
    "mime_type",
    "file_size",
    "reply_code",
    "reply_msg",
    "data_channel.passive",
    "data_channel.orig_h",
    "data_channel.resp_h",
    "data_channel.resp_p",
    "fuid",
];

/// (event, field) -> Zeek ftp.log field, for the rows that have one.
fn zeek_rows() -> BTreeMap<(String, String), String> {
    let mut rows = BTreeMap::new();
    for (n, line) in MAPPING.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&zeek) = words.get(3) else {
            panic!(
                "line {}: EVENT FIELD ECS-FIELD ZEEK-FIELD expected: {line}",
                n + 1
            );
        };
        if zeek == "-" {
            continue;
        }
        assert!(
            ZEEK_FTP_LOG.contains(&zeek),
            "line {}: {zeek:?} is not a field of Zeek's ftp.log",
            n + 1
        );
        rows.insert((words[0].to_owned(), words[1].to_owned()), zeek.to_owned());
    }
    rows
}

#[test]
fn every_zeek_ftp_log_field_is_mapped_or_said_to_be_missing() {
    let mapped: BTreeSet<String> = zeek_rows().into_values().collect();
    let header: String = MAPPING
        .lines()
        .filter(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    for field in ZEEK_FTP_LOG {
        // A row's field, the port of an address a row maps (split ip, port), or named in
        // the header.
        let by_row = mapped.contains(*field)
            || field
                .strip_suffix("_p")
                .is_some_and(|base| mapped.contains(&format!("{base}_h")));
        assert!(
            by_row || header.contains(field),
            "siem-mapping.txt says nothing of Zeek's ftp.log field {field}"
        );
    }
    let rows = zeek_rows();
    assert_eq!(rows[&("*".into(), "session".into())], "uid");
    assert_eq!(
        rows[&("transfer".into(), "data_client".into())],
        "data_channel.orig_h"
    );
    assert_eq!(rows[&("command".into(), "reply".into())], "reply_code");
}

/// (event, field) -> ECS field.
fn rows() -> BTreeMap<(String, String), String> {
    let mut rows = BTreeMap::new();
    for (n, line) in MAPPING.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(event), Some(field), Some(ecs)) = (words.next(), words.next(), words.next())
        else {
            panic!("line {}: EVENT FIELD ECS-FIELD expected: {line}", n + 1);
        };
        let valid = ecs == "@timestamp"
            || ecs.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        assert!(valid, "line {}: {ecs:?} is not an ECS field name", n + 1);
        let old = rows.insert((event.to_owned(), field.to_owned()), ecs.to_owned());
        assert!(old.is_none(), "line {}: {event} {field} twice", n + 1);
    }
    rows
}

/// Every event kind of the schema and its fields.
fn schema_fields() -> BTreeMap<String, BTreeSet<String>> {
    let schema: Value = serde_json::from_str(SCHEMA).expect("schema");
    let mut kinds = BTreeMap::new();
    for (_, def) in schema["$defs"].as_object().expect("$defs") {
        let Some(props) = def["properties"].as_object() else {
            continue;
        };
        let Some(kind) = props.get("event").and_then(|e| e["const"].as_str()) else {
            continue;
        };
        kinds.insert(kind.to_owned(), props.keys().cloned().collect());
    }
    assert!(kinds.len() >= 9, "{kinds:?}");
    kinds
}

#[test]
fn every_field_of_the_schema_has_a_row() {
    let rows = rows();
    let mut missing = Vec::new();
    for (kind, fields) in schema_fields() {
        for field in fields {
            let own = rows.contains_key(&(kind.clone(), field.clone()));
            let envelope = rows.contains_key(&("*".to_owned(), field.clone()));
            if !own && !envelope {
                missing.push(format!("{kind} {field}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "packaging/examples/siem-mapping.txt has no row for: {missing:#?}"
    );
}

#[test]
fn every_row_names_a_field_of_the_schema() {
    let kinds = schema_fields();
    for (event, field) in rows().keys() {
        let known = if event == "*" {
            kinds.values().any(|fields| fields.contains(field))
        } else {
            kinds
                .get(event)
                .is_some_and(|fields| fields.contains(field))
        };
        assert!(
            known,
            "siem-mapping.txt: {event} {field} is not in the schema"
        );
    }
}

#[test]
fn rows_are_read_with_their_ecs_targets() {
    // A check of this test's own reading of the file.
    let rows = rows();
    assert_eq!(rows[&("*".into(), "ts".into())], "@timestamp");
    assert_eq!(rows[&("*".into(), "client".into())], "client.address");
    assert_eq!(
        rows[&("transfer".into(), "sha256".into())],
        "file.hash.sha256"
    );
}
