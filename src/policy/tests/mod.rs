//! Loader tests: the model a valid file becomes, and every error with its exact position.
//!
//! Positions are checked two ways: literally for a few small documents, and with [`at`],
//! which finds a marker in the document by plain string search (independent of the
//! scanner under test).
//!
//! The tests sit next to what they test, as the loader's files do (`load/`): `listeners.rs`,
//! `backends.rs`, `roles.rs`, `users.rs`, `access.rs` (with `routing`), `defaults.rs` and
//! `audit.rs` test the sections of those names; `model.rs` the model of valid documents and
//! its summary; `design.rs` the example of DESIGN.md §2 and the keys not supported yet;
//! `syntax.rs` what concerns the whole document (JSON syntax, unknown keys, JSON types,
//! repeated keys, many errors at once); `load_policy.rs` reading the file; `robustness.rs`
//! truncated and random documents; `spellings.rs` the enums' tables of spellings. The
//! documents and helpers they share are here.

mod access;
mod audit;
mod backends;
mod defaults;
mod design;
mod listeners;
mod load_policy;
mod model;
mod robustness;
mod roles;
mod spellings;
mod syntax;
mod users;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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

/// Every key added with access rules, time windows, limits and FXP, valid (given the table).
const NEW_KEYS: &str = r#"{
  "listeners": [{ "address": "0.0.0.0:2121" }],
  "backends": { "files": { "servers": ["10.0.0.11:21"] } },
  "roles": { "download": { "allow": ["RETR", "LIST"] } },
  "users": { "alice": { "role": "download", "backend": "files",
      "allow_from": ["10.0.0.0/8"], "deny_from": ["10.9.0.0/16"],
      "allow_countries": ["DE"], "deny_countries": ["KP"],
      "allow_asns": [64500, "AS64501"], "deny_asns": [64666],
      "time_windows": [{ "days": "mon-fri", "hours": "08:00-18:00", "utc_offset": "+01:00" },
                       { "days": ["sat"], "hours": "22:00-02:00", "utc_offset": "-05:30" }],
      "allow_fxp_to": ["192.0.2.0/24"],
      "limits": { "max_file_size": "2GiB", "rate": "5MiB/s", "user_rate": "10MiB/s",
                  "sessions": 4 },
      "timeouts": { "data_connect": 20 } } },
  "defaults": {
    "timeouts": { "login": 30, "idle": 300, "session": 900, "data_connect": 30 },
    "limits": { "sessions_total": 10000, "sessions_per_ip": 20, "failed_logins_per_ip": 10,
                "failed_login_window": 300, "ban": 600, "max_file_size": "4GiB",
                "rate": "50MiB/s", "user_rate": "100MiB/s",
                "sessions_waiting_for_backend": 1000 } },
  "access": { "allow_from": ["10.0.0.0/8"], "deny_from": ["10.9.0.0/16"],
              "allow_countries": ["DE", "FR"], "deny_countries": ["KP"],
              "allow_asns": [64500], "deny_asns": [64666],
              "prefix_table": "/etc/ftpgate/prefixes.tsv" }
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

/// A reader of named files that serves `files` from memory.
fn files<'a>(files: &'a [(&'a str, &'a [u8])]) -> impl Fn(&Path) -> io::Result<Vec<u8>> + 'a {
    move |path: &Path| {
        files
            .iter()
            .find(|(name, _)| Path::new(name) == path)
            .map(|(_, bytes)| bytes.to_vec())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }
}

/// The sample table, as shipped in tests/data.
const SAMPLE_TABLE: &str = include_str!("../../../tests/data/prefixes.tsv");

fn parse_with(doc: &str, table: &str) -> Policy {
    let served = [("/etc/ftpgate/prefixes.tsv", table.as_bytes())];
    let read = files(&served);
    match parse_policy_with(doc, &read) {
        Ok(policy) => policy,
        Err(errors) => panic!("unexpected errors: {errors:#?}"),
    }
}

fn errors_with(doc: &str, table: &[u8]) -> Vec<String> {
    let served = [("/etc/ftpgate/prefixes.tsv", table)];
    let read = files(&served);
    match parse_policy_with(doc, &read) {
        Ok(_) => panic!("the document was accepted:\n{doc}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// MINIMAL with extra members for alice and extra top-level members.
fn with_alice(alice: &str, top: &str) -> String {
    let doc = MINIMAL.replace(
        ALICE,
        &format!(r#"{{ "role": "download", "backend": "files"{alice} }}"#),
    );
    if top.is_empty() {
        return doc;
    }
    let body = doc.strip_suffix("\n}").expect("ends with }");
    format!("{body},\n{top}\n}}")
}

fn ip(text: &str) -> std::net::IpAddr {
    text.parse().expect("test address")
}

/// A file of mode 0644 in a directory of mode 0755 (whatever the umask): what the loader's
/// owner and mode checks accept.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("ftpgate-policy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    path
}

/// The policy built and the messages found, ignoring `unsupported_yet`: for the checks behind
/// the keys it refuses today, which run anyway (so that they are ready when the features land)
/// but whose findings it hides behind "not supported".
fn validate(doc: &str) -> (Policy, Vec<String>) {
    load::validate_ignoring_unsupported(doc)
}

/// A small valid policy (user `u`, role `r`, backend `b`) with `extra` members for `u`.
fn with(extra: &str) -> String {
    format!(
        r#"{{ "listeners": [{{ "address": "0.0.0.0:21" }}],
  "backends": {{ "b": {{ "servers": ["10.0.0.1:21"] }} }},
  "roles": {{ "r": {{ "allow": ["RETR"] }} }},
  "users": {{ "u": {{ "role": "r", "backend": "b" {extra} }} }} }}"#
    )
}
