//! The prefix table from a MaxMind DB file: a `.mmdb` built here with the `mmdb-writer`
//! package from PyPI (installed by tests/run.sh into target/mmdb-venv) from the same ranges
//! as a TSV table gives the same access decisions for every address, and `--check` loads it.

mod common;

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use ftpgate::policy::{Policy, load_policy};

const FTPGATE: &str = env!("CARGO_BIN_EXE_ftpgate");

/// The ranges of both tables: (network or START-END, ASN, country); `-` is unknown.
const RANGES: &[(&str, &str, &str)] = &[
    ("127.0.0.1/32", "64500", "DE"),
    ("127.0.0.2/32", "64501", "FR"),
    ("127.0.0.3/32", "64666", "KP"),
    ("127.0.0.4-127.0.0.9", "64502", "US"),
    ("127.0.1.0/24", "-", "-"),
    ("127.0.2.0/23", "64500", "-"),
    ("127.0.4.0/22", "-", "FR"),
    ("10.0.0.0/8", "64503", "DE"),
    ("::1/128", "64500", "DE"),
    ("2001:db8::/32", "64666", "KP"),
    ("2001:db9::/48", "64501", "-"),
];

/// The Python of the venv run.sh made; the test fails (not skips) without it.
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mmdb-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: tests/run.sh installs mmdb-writer into it",
        python.display()
    );
    python
}

/// Writes the `.mmdb` of [`RANGES`] with mmdb-writer, as GeoLite2 country and ASN data in
/// one record (IPv4 in the IPv6 tree, as MaxMind's own databases).
fn write_mmdb(path: &Path) {
    write_mmdb_of(path, true, true);
}

/// Writes a `.mmdb` of [`RANGES`] with their countries, their AS numbers, or both (as
/// MaxMind ships them: a GeoLite2-Country and a GeoLite2-ASN file apart).
fn write_mmdb_of(path: &Path, countries: bool, asns: bool) {
    let kind = if countries { "Country" } else { "ASN" };
    let script = String::from(
        "import sys\n\
         from netaddr import IPSet, IPRange\n\
         from mmdb_writer import MMDBWriter, MmdbU32\n\
         w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type='GeoLite2-KIND',\n\
                        languages=['en'], description={'en': 'ftpgate test'})\n",
    );
    let mut script = script.replace("KIND", kind);
    for &(net, asn, country) in RANGES {
        let (asn, country) = (
            if asns { asn } else { "-" },
            if countries { country } else { "-" },
        );
        if asn == "-" && country == "-" {
            continue;
        }
        let set = match net.split_once('-') {
            Some((start, end)) => format!("IPSet(IPRange('{start}', '{end}'))"),
            None => format!("IPSet(['{net}'])"),
        };
        let mut record = Vec::new();
        if country != "-" {
            record.push(format!("'country': {{'iso_code': '{country}'}}"));
        }
        if asn != "-" {
            record.push(format!("'autonomous_system_number': MmdbU32({asn})"));
        }
        script.push_str(&format!(
            "w.insert_network({set}, {{{}}})\n",
            record.join(", ")
        ));
    }
    script.push_str("w.to_db_file(sys.argv[1])\n");
    let out = run(
        Command::new(python()).arg("-c").arg(&script).arg(path),
        Duration::from_secs(60),
    );
    out.assert_success("mmdb-writer");
}

fn write_tsv(path: &Path) {
    let mut text = String::from("# CIDR or START END, ASN, COUNTRY\n");
    for &(net, asn, country) in RANGES {
        let net = net.replace('-', "\t");
        let country = if country == "-" { "--" } else { country };
        text.push_str(&format!("{net}\t{asn}\t{country}\n"));
    }
    fs::write(path, text).expect("write table");
}

/// A policy whose global rules and users use the table every way.
fn policy_text(table: &Path) -> String {
    policy_with_tables(&format!("\"{}\"", table.display()))
}

/// The same, with `prefix_table` as written (a string or a list).
fn policy_with_tables(tables: &str) -> String {
    format!(
        r#"{{
  "listeners": [{{ "address": "127.0.0.1:2121" }}],
  "backends": {{ "files": {{ "servers": ["127.0.0.1:21"] }} }},
  "roles": {{ "read": {{ "allow": ["RETR"] }} }},
  "users": {{
    "de-only": {{ "role": "read", "backend": "files", "allow_countries": ["DE"] }},
    "not-kp": {{ "role": "read", "backend": "files", "deny_countries": ["KP"] }},
    "as64500": {{ "role": "read", "backend": "files", "allow_asns": [64500] }},
    "not-as64666": {{ "role": "read", "backend": "files", "deny_asns": ["AS64666"] }},
    "fr-or-as64501": {{ "role": "read", "backend": "files", "allow_countries": ["FR"],
                       "deny_asns": [64502] }}
  }},
  "access": {{ "deny_countries": ["KP"], "prefix_table": {tables} }}
}}
"#
    )
}

fn load(dir: &Path, name: &str, table: &Path) -> Policy {
    let path = dir.join(name);
    fs::write(&path, policy_text(table)).expect("write policy");
    load_policy(&path).unwrap_or_else(|errors| panic!("{name}: {errors:?}"))
}

/// Addresses in, between and around every range.
fn addresses() -> Vec<IpAddr> {
    let mut list: Vec<IpAddr> = Vec::new();
    for last in 0..=12u8 {
        list.push(IpAddr::from([127, 0, 0, last]));
    }
    for third in 0..=9u8 {
        for last in [0u8, 1, 128, 255] {
            list.push(IpAddr::from([127, 0, third, last]));
        }
    }
    for text in [
        "10.0.0.0",
        "10.255.255.255",
        "9.255.255.255",
        "11.0.0.0",
        "192.0.2.1",
        "::1",
        "::2",
        "::ffff:127.0.0.1",
        "::ffff:127.0.0.3",
        "::ffff:10.1.2.3",
        "2001:db8::1",
        "2001:db8:ffff::1",
        "2001:db7:ffff::1",
        "2001:db9::5",
        "2001:db9:1::5",
        "fe80::1",
    ] {
        list.push(text.parse().expect("address"));
    }
    list
}

#[test]
fn a_maxmind_db_gives_the_same_decisions_as_the_tsv_table() {
    let dir = temp_dir();
    let tsv = dir.path().join("prefixes.tsv");
    let mmdb = dir.path().join("GeoLite2-test.mmdb");
    write_tsv(&tsv);
    write_mmdb(&mmdb);
    let from_tsv = load(dir.path(), "tsv.json", &tsv);
    let from_mmdb = load(dir.path(), "mmdb.json", &mmdb);
    let (tsv_geo, mmdb_geo) = (from_tsv.geo.as_deref(), from_mmdb.geo.as_deref());
    assert!(tsv_geo.is_some() && mmdb_geo.is_some());

    let mut refused = 0;
    let mut allowed = 0;
    for ip in addresses() {
        let tsv_entry = tsv_geo.and_then(|g| g.lookup(ip));
        let mmdb_entry = mmdb_geo.and_then(|g| g.lookup(ip));
        // The TSV knows ranges with neither country nor AS; the database has no record
        // there. Either way, nothing to match.
        let known = |e: Option<ftpgate::policy::GeoEntry>| {
            e.filter(|e| e.asn.is_some() || e.country.is_some())
        };
        assert_eq!(known(tsv_entry), known(mmdb_entry), "{ip}");
        let global_tsv = from_tsv.access.check(ip, tsv_geo);
        let global_mmdb = from_mmdb.access.check(ip, mmdb_geo);
        assert_eq!(global_tsv, global_mmdb, "access, {ip}");
        for (name, user) in &from_tsv.users {
            let tsv_decision = user.access.check(ip, tsv_geo);
            let mmdb_decision = from_mmdb.users[name].access.check(ip, mmdb_geo);
            assert_eq!(tsv_decision, mmdb_decision, "{name}, {ip}");
            if tsv_decision.is_ok() {
                allowed += 1;
            } else {
                refused += 1;
            }
        }
    }
    // Both kinds of decision were taken, by country and by AS.
    assert!(
        allowed > 20 && refused > 20,
        "{allowed} allowed, {refused} refused"
    );
    let ip: IpAddr = "127.0.0.3".parse().expect("address");
    assert_eq!(
        from_mmdb.access.check(ip, mmdb_geo),
        Err("deny_countries KP".to_owned())
    );
    let ip: IpAddr = "10.1.2.3".parse().expect("address");
    assert_eq!(
        from_mmdb.users["as64500"].access.check(ip, mmdb_geo),
        Err("allow_asns (no match)".to_owned())
    );
    assert_eq!(
        from_mmdb.users["de-only"].access.check(ip, mmdb_geo),
        Ok(())
    );
}

#[test]
fn check_loads_a_maxmind_db_and_refuses_a_broken_one() {
    let dir = temp_dir();
    let mmdb = dir.path().join("GeoLite2-test.mmdb");
    write_mmdb(&mmdb);
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, policy_text(&mmdb)).expect("write policy");
    let out = run(
        Command::new(FTPGATE)
            .arg("--check")
            .arg("--config")
            .arg(&path),
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let stdout = out.stdout_str();
    assert!(
        stdout.contains(&format!(
            "prefix table: {} (MaxMind DB \"GeoLite2-Country\", built ",
            mmdb.display()
        )),
        "{stdout}"
    );
    // The same file cut short: refused at the prefix_table value, with the reader's reason.
    let bytes = fs::read(&mmdb).expect("read");
    let marker = b"\xAB\xCD\xEFMaxMind.com";
    let metadata = bytes
        .windows(marker.len())
        .rposition(|w| w == marker)
        .expect("metadata marker");
    let mut broken = bytes[..metadata / 3].to_vec();
    broken.extend_from_slice(&bytes[metadata..]);
    fs::write(&mmdb, broken).expect("write");
    let out = run(
        Command::new(FTPGATE)
            .arg("--check")
            .arg("--config")
            .arg(&path),
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let text = policy_text(&mmdb);
    let offset = text.find(&format!("\"{}", mmdb.display())).expect("value");
    let line = text[..offset].matches('\n').count() + 1;
    let column = text[..offset]
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .chars()
        .count()
        + 1;
    assert!(
        out.stderr.starts_with(&format!(
            "{}:{line}:{column}: access.prefix_table: {}: not a valid MaxMind DB: ",
            path.display(),
            mmdb.display()
        )),
        "{}",
        out.stderr
    );
}

/// A country database and an ASN database apart (as MaxMind ships GeoLite2), both named by
/// `prefix_table`: together they give the decisions of the one TSV table.
#[test]
fn a_country_and_an_asn_database_together_decide_like_one_table() {
    let dir = temp_dir();
    let tsv = dir.path().join("prefixes.tsv");
    let countries = dir.path().join("GeoLite2-Country.mmdb");
    let asns = dir.path().join("GeoLite2-ASN.mmdb");
    write_tsv(&tsv);
    write_mmdb_of(&countries, true, false);
    write_mmdb_of(&asns, false, true);
    let from_tsv = load(dir.path(), "tsv.json", &tsv);
    let path = dir.path().join("two.json");
    let list = format!("[\"{}\", \"{}\"]", countries.display(), asns.display());
    fs::write(&path, policy_with_tables(&list)).expect("write policy");
    let from_two = load_policy(&path).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(from_two.prefix_table, [countries.clone(), asns.clone()]);
    let (tsv_geo, two_geo) = (from_tsv.geo.as_deref(), from_two.geo.as_deref());
    let mut by_both = 0;
    for ip in addresses() {
        let known = |e: Option<ftpgate::policy::GeoEntry>| {
            e.filter(|e| e.asn.is_some() || e.country.is_some())
        };
        let entry = known(two_geo.and_then(|g| g.lookup(ip)));
        assert_eq!(known(tsv_geo.and_then(|g| g.lookup(ip))), entry, "{ip}");
        if entry.is_some_and(|e| e.asn.is_some() && e.country.is_some()) {
            by_both += 1;
        }
        assert_eq!(
            from_tsv.access.check(ip, tsv_geo),
            from_two.access.check(ip, two_geo),
            "access, {ip}"
        );
        for (name, user) in &from_tsv.users {
            assert_eq!(
                user.access.check(ip, tsv_geo),
                from_two.users[name].access.check(ip, two_geo),
                "{name}, {ip}"
            );
        }
    }
    assert!(by_both > 10, "addresses placed by both files: {by_both}");
    // --check names both.
    let out = run(
        Command::new(FTPGATE)
            .arg("--check")
            .arg("--config")
            .arg(&path),
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(&format!("{}, {}", countries.display(), asns.display())),
        "{stdout}"
    );
}
