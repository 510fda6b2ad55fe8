//! MLSD and MLST relayed through ftpgate to pyftpdlib (vsftpd has neither), for the full user
//! `alice` and the read-only user `bob`.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::*;
use serde_json::Value;

struct Setup {
    gate: Ftpgate,
    py: Pyftpdlib,
}

fn setup() -> Setup {
    let py = Pyftpdlib::start();
    fs::write(py.root().join("a.txt"), b"12345").unwrap();
    fs::write(py.root().join("data.bin"), random_bytes(70_000, 1)).unwrap();
    fs::create_dir(py.root().join("sub")).unwrap();
    let gate = Ftpgate::for_pyftpdlib(&py);
    Setup { gate, py }
}

fn login(s: &Setup, (user, pass): (&str, &str)) -> Ftp {
    let mut c = Ftp::connect(s.gate.addr());
    c.login_ok(user, pass);
    c
}

/// Parses MLSD lines ("fact=value;fact=value; name") into name -> facts (lower-case keys).
fn parse_mlsd(listing: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    listing
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (facts, name) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("MLSD line {line:?}"));
            let facts = facts
                .split(';')
                .filter(|f| !f.is_empty())
                .map(|f| {
                    let (k, v) = f.split_once('=').unwrap_or((f, ""));
                    (k.to_ascii_lowercase(), v.to_string())
                })
                .collect();
            (name.to_string(), facts)
        })
        .collect()
}

fn assert_standard_listing(listing: &str) {
    let entries = parse_mlsd(listing);
    let a = entries
        .get("a.txt")
        .unwrap_or_else(|| panic!("no a.txt in {listing}"));
    assert_eq!(a.get("type").map(String::as_str), Some("file"), "{listing}");
    assert_eq!(a.get("size").map(String::as_str), Some("5"), "{listing}");
    assert!(a.contains_key("modify"), "{listing}");
    let data = entries
        .get("data.bin")
        .unwrap_or_else(|| panic!("no data.bin in {listing}"));
    assert_eq!(
        data.get("size").map(String::as_str),
        Some("70000"),
        "{listing}"
    );
    let sub = entries
        .get("sub")
        .unwrap_or_else(|| panic!("no sub in {listing}"));
    assert_eq!(
        sub.get("type").map(String::as_str),
        Some("dir"),
        "{listing}"
    );
}

#[test]
fn mlsd_lists_files_with_facts_for_the_full_user() {
    let s = setup();
    let mut c = login(&s, Pyftpdlib::ALICE);
    let (code, listing) = c.list("MLSD /");
    assert_eq!(code, 226);
    assert_standard_listing(&listing);
    assert_eq!(c.cmd("QUIT").0, 221);
}

#[test]
fn mlsd_lists_files_for_the_read_only_user() {
    let s = setup();
    let mut c = login(&s, Pyftpdlib::BOB);
    let (code, listing) = c.list("MLSD");
    assert_eq!(code, 226);
    assert_standard_listing(&listing);
}

#[test]
fn mlst_answers_250_with_the_facts() {
    let s = setup();
    for user in [Pyftpdlib::ALICE, Pyftpdlib::BOB] {
        let mut c = login(&s, user);
        let (code, text) = c.cmd("MLST /a.txt");
        assert_eq!(code, 250, "{}: {text}", user.0);
        assert!(
            text.lines().count() >= 3,
            "MLST is a multi-line reply: {text}"
        );
        let fact_line = text
            .lines()
            .find(|l| l.starts_with(' '))
            .unwrap_or_else(|| panic!("no fact line in {text}"));
        let entries = parse_mlsd(fact_line.trim_start());
        let (name, facts) = entries.iter().next().unwrap();
        assert!(name.ends_with("a.txt"), "{text}");
        assert_eq!(facts.get("size").map(String::as_str), Some("5"), "{text}");
        assert_eq!(
            facts.get("type").map(String::as_str),
            Some("file"),
            "{text}"
        );
    }
}

const FTPLIB_MLSD: &str = r#"
import ftplib, json, sys
host, port, user, password = sys.argv[1:5]
f = ftplib.FTP()
f.connect(host, int(port), timeout=30)
f.login(user, password)
print(json.dumps(dict(f.mlsd("/"))))
f.quit()
"#;

#[test]
fn ftplib_mlsd_through_the_proxy() {
    let s = setup();
    let addr = s.gate.addr();
    let out = python(
        FTPLIB_MLSD,
        &[
            &addr.ip().to_string(),
            &addr.port().to_string(),
            "alice",
            "alice-pw",
        ],
    );
    out.assert_success("ftplib mlsd");
    let entries: Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    assert_eq!(entries["a.txt"]["type"], "file", "{entries}");
    assert_eq!(entries["a.txt"]["size"], "5", "{entries}");
    assert_eq!(entries["sub"]["type"], "dir", "{entries}");
}

#[test]
fn read_only_user_cannot_write_but_full_user_can() {
    let s = setup();
    let mut bob = login(&s, Pyftpdlib::BOB);
    assert_eq!(bob.cmd("TYPE I").0, 200);
    let (code, text) = bob.cmd("STOR /bob.txt");
    assert_eq!(code, 550, "STOR as bob: {text}");
    assert_eq!(bob.cmd("DELE /a.txt").0, 550);
    assert_eq!(bob.cmd("MKD /bobdir").0, 550);
    // A forwarded command as a barrier: anything sent before it has reached the server.
    assert_eq!(bob.cmd("PWD").0, 257);
    assert!(!s.py.root().join("bob.txt").exists());
    assert!(s.py.root().join("a.txt").exists());
    assert!(!s.py.root().join("bobdir").exists());
    let log = s.py.log();
    assert!(
        log.contains("[bob] <- PWD"),
        "the server log shows bob's session:\n{log}"
    );
    for refused in ["STOR", "DELE", "MKD"] {
        assert!(
            !log.contains(&format!("[bob] <- {refused}")),
            "{refused} reached the backend:\n{log}"
        );
    }

    let mut alice = login(&s, Pyftpdlib::ALICE);
    assert_eq!(alice.cmd("TYPE I").0, 200);
    alice.stor("/alice.bin", &random_bytes(50_000, 2));
    assert_eq!(
        sha256_file(&s.py.root().join("alice.bin")),
        sha256_bytes(&random_bytes(50_000, 2))
    );
    let (code, listing) = alice.list("MLSD /");
    assert_eq!(code, 226);
    assert!(parse_mlsd(&listing).contains_key("alice.bin"), "{listing}");
}
