//! The audit trail's schema, etc/audit-schema.json (JSON Schema, draft 2020-12): every kind
//! of event ftpgate emits — from a scripted session through ftpgate against a real vsftpd,
//! to the file and to syslog, and an `audit_loss` after a syslog outage — validates against
//! it, every kind it describes is emitted, and man/ftpgate.json.5 documents every kind and
//! every field it lists.
//!
//! The validator here implements the part of JSON Schema the file uses (`$ref` to `$defs`,
//! `oneOf`, `type`, `properties`, `required`, `additionalProperties: false`, `const`, `enum`,
//! `minimum`, `maximum`, `minLength`, `maxLength`, and the annotations) and refuses any other
//! keyword, so the file cannot grow a constraint this test silently ignores. A field the code
//! emits that the schema does not list fails the test: add it to the schema and to the man
//! page.

#[path = "common/audit.rs"]
mod audit;
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use audit::*;
use common::*;
use serde_json::{Map, Value, json};

const WAIT: Duration = Duration::from_secs(10);
const SCHEMA: &str = include_str!("../etc/audit-schema.json");
const MAN: &str = include_str!("../man/ftpgate.json.5");

/// Fields every event may have (documented once, in the envelope part of the man page).
const ENVELOPE: &[&str] = &[
    "ts", "session", "worker", "client", "user", "user_hex", "event", "chain", "seq", "prev",
];

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "title",
    "description",
    "examples",
    "format",
];

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("etc/audit-schema.json is JSON")
}

fn resolve<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let name = reference
        .strip_prefix("#/$defs/")
        .unwrap_or_else(|| panic!("only local $defs references: {reference}"));
    root["$defs"]
        .get(name)
        .unwrap_or_else(|| panic!("no $defs/{name}"))
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other:?} in the schema"),
    }
}

/// Validates `value` against `schema`; the errors, with their JSON pointers.
fn validate(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(keywords) = schema.as_object() else {
        panic!("{at}: a schema must be an object: {schema}");
    };
    for (keyword, argument) in keywords {
        match keyword.as_str() {
            "$ref" => validate(
                root,
                resolve(root, argument.as_str().expect("$ref is a string")),
                value,
                at,
                errors,
            ),
            "oneOf" => {
                let branches = argument.as_array().expect("oneOf is a list");
                let passing = branches
                    .iter()
                    .filter(|branch| {
                        let mut errs = Vec::new();
                        validate(root, branch, value, at, &mut errs);
                        errs.is_empty()
                    })
                    .count();
                if passing != 1 {
                    errors.push(format!(
                        "{at}: matches {passing} of the oneOf branches, not 1"
                    ));
                    // Say why, for the branch of the same kind.
                    for branch in branches {
                        let def = branch
                            .get("$ref")
                            .and_then(Value::as_str)
                            .map_or(branch, |r| resolve(root, r));
                        if def["properties"]["event"]["const"] == value["event"] {
                            validate(root, def, value, at, errors);
                        }
                    }
                }
            }
            "type" => {
                let expected = argument.as_str().expect("type is a string");
                if !type_matches(expected, value) {
                    errors.push(format!("{at}: {value} is not of type {expected}"));
                }
            }
            "const" => {
                if value != argument {
                    errors.push(format!("{at}: {value} is not {argument}"));
                }
            }
            "enum" => {
                if !argument.as_array().expect("enum is a list").contains(value) {
                    errors.push(format!("{at}: {value} is not one of {argument}"));
                }
            }
            "minLength" | "maxLength" => {
                let bound = argument.as_u64().expect("a count") as usize;
                if let Some(text) = value.as_str() {
                    let n = text.chars().count();
                    let ok = if keyword == "minLength" {
                        n >= bound
                    } else {
                        n <= bound
                    };
                    if !ok {
                        errors.push(format!("{at}: {value} is beyond the {keyword} {bound}"));
                    }
                }
            }
            "minimum" | "maximum" => {
                let bound = argument.as_f64().expect("a number");
                if let Some(n) = value.as_f64() {
                    let ok = if keyword == "minimum" {
                        n >= bound
                    } else {
                        n <= bound
                    };
                    if !ok {
                        errors.push(format!("{at}: {value} is beyond the {keyword} {bound}"));
                    }
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for key in argument.as_array().expect("required is a list") {
                        let key = key.as_str().expect("a key");
                        if !object.contains_key(key) {
                            errors.push(format!("{at}: \"{key}\" is missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    let properties = argument.as_object().expect("properties is an object");
                    for (key, sub) in properties {
                        if let Some(v) = object.get(key) {
                            validate(root, sub, v, &format!("{at}/{key}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                let allowed = keywords
                    .get("properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if let Some(object) = value.as_object() {
                    for (key, v) in object {
                        if allowed.contains_key(key) {
                            continue;
                        }
                        if argument == &json!(false) {
                            errors.push(format!("{at}: \"{key}\" is not allowed"));
                        } else {
                            // A schema every other property must match (a map's values).
                            validate(root, argument, v, &format!("{at}/{key}"), errors);
                        }
                    }
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            other => panic!("{at}: the schema uses {other:?}, which this test does not check"),
        }
    }
}

fn check(root: &Value, event: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    validate(root, root, event, "", &mut errors);
    errors
}

/// The event kinds of the schema: the `const` of each `oneOf` branch's "event".
fn kinds(root: &Value) -> Vec<(String, Map<String, Value>)> {
    root["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .map(|branch| {
            let def = resolve(root, branch["$ref"].as_str().expect("$ref"));
            let kind = def["properties"]["event"]["const"]
                .as_str()
                .expect("each branch fixes \"event\"")
                .to_string();
            let props = def["properties"].as_object().expect("properties").clone();
            (kind, props)
        })
        .collect()
}

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let root = schema();
    let good = json!({"ts": "2026-11-21T13:52:12.170Z", "session": "s", "worker": 0,
                      "client": "127.0.0.1:1", "event": "session_start", "server": "127.0.0.1:21"});
    assert_eq!(check(&root, &good), Vec::<String>::new());
    let mut extra = good.clone();
    extra["colour"] = json!("red");
    assert!(!check(&root, &extra).is_empty(), "an unknown field");
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("server");
    assert!(!check(&root, &missing).is_empty(), "a missing field");
    let mut wrong = good.clone();
    wrong["worker"] = json!("0");
    assert!(!check(&root, &wrong).is_empty(), "a wrong type");
    let mut unknown = good.clone();
    unknown["event"] = json!("session_pause");
    assert!(!check(&root, &unknown).is_empty(), "an unknown kind");
    let loss = json!({"ts": "t", "worker": 1, "event": "audit_loss", "sink": "file", "lost": 0,
                      "first_lost": "t", "last_lost": "t", "error": "e"});
    assert!(!check(&root, &loss).is_empty(), "lost is at least 1");
    let bad_result = json!({"ts": "t", "session": "s", "worker": 0, "client": "c",
                            "event": "login", "result": "maybe"});
    assert!(!check(&root, &bad_result).is_empty(), "an enum");
    let end = json!({"ts": "2026-11-21T13:52:12.170Z", "session": "s", "worker": 0,
                     "client": "c", "event": "session_end", "reason": "quit",
                     "duration_ms": 1, "bytes_in": 0, "bytes_out": 0,
                     "control_bytes_in": 0, "control_bytes_out": 0, "data_bytes_in": 0,
                     "data_bytes_out": 0, "repeated_commands": { "NOOP": 3 }});
    assert_eq!(check(&root, &end), Vec::<String>::new());
    let mut bad_count = end.clone();
    bad_count["repeated_commands"]["NOOP"] = json!("three");
    assert!(
        !check(&root, &bad_count).is_empty(),
        "a map's values are checked"
    );
}

#[test]
fn every_event_kind_ftpgate_emits_matches_the_schema() {
    let root = schema();
    let vs = Vsftpd::start();
    let dir = temp_dir();
    let mut daemon = SyslogListener::bind(&dir.path().join("log"));
    // audit.integrity on: every event carries its chain fields, and audit_checkpoint comes.
    let key = dir.path().join("audit.key");
    std::fs::write(&key, random_bytes(32, 5)).expect("key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .set(
            &["audit", "syslog"],
            json!({ "socket": daemon.path().to_string_lossy(), "facility": "local0",
                    "format": "rfc5424" }),
        )
        .set(&["audit", "on_failure"], json!("continue"))
        .set(
            &["audit", "integrity"],
            json!({ "key_file": key.to_string_lossy(), "checkpoint_interval": 1 }),
        )
        .set(
            &["users", "anonymous", "tls_session_reuse"],
            json!("bridge"),
        )
        .ftps()
        .start();
    let script = scripted_sessions(&vs, &gate);
    // tls: an FTPS session (ftplib, explicit AUTH TLS, PROT P, a protected download whose
    // data connection resumes the control session); then one with stock FTP_TLS, whose
    // fresh data handshake the bridge lets through.
    vs.put_file("pub/tls.bin", b"protected");
    let out = python(
        &format!(
            "{PY_FTPS_REUSING}{}",
            r#"
import sys
f = Reusing(context=ctx)
f.connect(sys.argv[1], int(sys.argv[2]), timeout=30)
f.login("anonymous", "x")
f.prot_p()
chunks = []
f.retrbinary("RETR /pub/tls.bin", chunks.append)
print(b"".join(chunks).decode())
f.quit()
# policy_exception: stock FTP_TLS does not resume; the user's tls_session_reuse is "bridge".
g = ftplib.FTP_TLS(context=ctx)
g.connect(sys.argv[1], int(sys.argv[2]), timeout=30)
g.login("anonymous", "x")
g.prot_p()
chunks = []
g.retrbinary("RETR /pub/tls.bin", chunks.append)
print(b"".join(chunks).decode())
g.quit()
"#
        ),
        &[
            &gate.addr().ip().to_string(),
            &gate.addr().port().to_string(),
        ],
    );
    assert_eq!(out.stdout_str().trim(), "protected\nprotected", "{out:?}");
    // policy_reload: SIGHUP with the file as it is.
    let hup = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(gate.pid().expect("pid").to_string())
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let file = gate.wait_audit(WAIT, |e| {
        e.iter().any(|e| e["event"] == "policy_reload")
            && ended(e, script.full)
            && ended(e, script.failed)
            && e.iter()
                .any(|e| e["event"] == "tls" && e["channel"] == "data")
            && e.iter().any(|e| e["event"] == "policy_exception")
            && e.iter().any(|e| e["event"] == "audit_checkpoint")
    });
    let data_tls = file
        .iter()
        .find(|e| e["event"] == "tls" && e["channel"] == "data")
        .expect("tls event of the data connection");
    assert_eq!(data_tls["resumed"], true, "{data_tls}");
    assert!(
        file.iter()
            .any(|e| e["event"] == "session_end" && e["repeated_commands"]["NOOP"] == 1),
        "the repeated NOOP before login is counted"
    );
    assert!(
        file.iter()
            .any(|e| e["event"] == "tls" && e["channel"] == "control" && e["side"] == "client"),
        "{file:?}"
    );

    // audit_loss: syslog goes away for a session and comes back.
    daemon.close();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("QUIT").0, 221);
    c.read_to_eof(WAIT);
    daemon.reopen();
    let messages = daemon.wait(WAIT, |m| m.iter().any(|m| m.msgid == "audit_loss"));

    let mut events = file.clone();
    events.extend(messages.iter().map(Message::json));
    events.extend(a_lost_worker(&vs));
    let mut seen = BTreeSet::new();
    for event in &events {
        let errors = check(&root, event);
        assert!(errors.is_empty(), "{event}\n{errors:#?}");
        check_timestamp(event["ts"].as_str().expect("ts")).expect("ts");
        if let Some(kind) = event["event"].as_str() {
            seen.insert(kind.to_string());
        }
    }
    let described: BTreeSet<String> = kinds(&root).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        seen, described,
        "the scripted sessions produce every kind the schema describes, and no other"
    );
    let loss = events
        .iter()
        .find(|e| e["event"] == "audit_loss")
        .expect("audit_loss");
    check_timestamp(loss["first_lost"].as_str().expect("first_lost")).expect("first_lost");
    check_timestamp(loss["last_lost"].as_str().expect("last_lost")).expect("last_lost");
}

/// The text of the man page section `.SS name` (up to the next .SS or .SH).
/// worker_lost: a gate of two workers, one of them killed with SIGKILL; the supervisor's
/// event (and the rest of that trail).
fn a_lost_worker(vs: &Vsftpd) -> Vec<Value> {
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .workers(2)
        .start();
    let supervisor = gate.pid().expect("pid").to_string();
    let out = std::process::Command::new("pgrep")
        .args(["-P", &supervisor])
        .output()
        .expect("pgrep");
    let child = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .expect("a worker");
    let killed = std::process::Command::new("kill")
        .args(["-9", &child])
        .status()
        .expect("kill");
    assert!(killed.success());
    gate.wait_audit(WAIT, |e| e.iter().any(|e| e["event"] == "worker_lost"))
}

fn man_section<'a>(name: &str) -> Option<&'a str> {
    let heading = format!("\n.SS {name}\n");
    let start = MAN.find(&heading)? + heading.len();
    let rest = &MAN[start..];
    let end = [rest.find("\n.SS "), rest.find("\n.SH ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Whether `section` documents `field` on a bold line (.B, .BR, .TP tags), as a word.
fn documents(section: &str, field: &str) -> bool {
    section.lines().any(|line| {
        (line.starts_with(".B ") || line.starts_with(".BR "))
            && line
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|word| word == field)
    })
}

#[test]
fn the_man_page_documents_every_kind_and_field_of_the_schema() {
    let root = schema();
    let trail = MAN
        .split("\n.SH AUDIT TRAIL\n")
        .nth(1)
        .expect("an AUDIT TRAIL section");
    let intro = &trail[..trail.find("\n.SS ").expect("subsections")];
    for field in ENVELOPE {
        assert!(
            documents(intro, field),
            "envelope field {field} not documented"
        );
    }
    assert!(
        intro.contains("etc/audit\\-schema.json"),
        "the man page names the schema file"
    );
    let kinds = kinds(&root);
    assert!(kinds.len() >= 7);
    for (kind, properties) in kinds {
        let section =
            man_section(&kind).unwrap_or_else(|| panic!("no .SS {kind} in ftpgate.json(5)"));
        for field in properties.keys() {
            if ENVELOPE.contains(&field.as_str()) {
                continue;
            }
            assert!(
                documents(section, field),
                "field {field} of {kind} is not documented in .SS {kind}"
            );
        }
    }
}
