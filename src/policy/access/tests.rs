//! Tests of the prefix table and of the access rules.

use super::*;
use crate::limits::MAX_PREFIX_TABLE_ERRORS;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn table(text: &str) -> GeoTable {
    GeoTable::parse(text).unwrap_or_else(|e| panic!("{e:?}"))
}

fn entry(asn: u32, country: &str) -> Option<GeoEntry> {
    Some(GeoEntry {
        asn: Some(asn),
        country: parse_country(country),
    })
}

const SAMPLE: &str = include_str!("../../../tests/data/prefixes.tsv");

#[test]
fn the_sample_table() {
    let geo = table(SAMPLE);
    assert_eq!(geo.len(), 6);
    assert!(!geo.is_empty());
    assert_eq!(geo.lookup(ip("127.0.0.1")), entry(64500, "DE"));
    assert_eq!(geo.lookup(ip("127.0.0.2")), entry(64501, "FR"));
    assert_eq!(geo.lookup(ip("127.0.0.3")), entry(64666, "KP"));
    assert_eq!(geo.lookup(ip("127.0.0.4")), entry(64502, "US"));
    assert_eq!(geo.lookup(ip("127.0.0.9")), entry(64502, "US"));
    assert_eq!(geo.lookup(ip("127.0.0.10")), None);
    assert_eq!(geo.lookup(ip("127.0.0.0")), None);
    assert_eq!(geo.lookup(ip("::1")), entry(64500, "DE"));
    assert_eq!(geo.lookup(ip("::2")), None);
    assert_eq!(geo.lookup(ip("::ffff:127.0.0.2")), entry(64501, "FR"));
    assert_eq!(
        geo.lookup(ip("127.0.1.77")),
        Some(GeoEntry {
            asn: None,
            country: None
        })
    );
    assert_eq!(format!("{geo:?}"), "GeoTable { ranges: 6 }");
}

#[test]
fn lookups_at_the_edges() {
    let geo = table(
        "0.0.0.0/8\t1\tAA\n\
         10.0.0.0\t10.0.0.255\t2\tbb\n\
         255.255.255.255/32\t3\tCC\n\
         ::/128\t4\tDD\n\
         ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\tffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\t5\tEE\n\
         2001:db8::/32\t0\t--\n\
         2001:db9::/32\t-\t-\n\
         2001:dba::/32\tAS65000\tFR\n",
    );
    assert_eq!(geo.len(), 8);
    assert_eq!(geo.lookup(ip("0.0.0.0")), entry(1, "AA"));
    assert_eq!(geo.lookup(ip("0.255.255.255")), entry(1, "AA"));
    assert_eq!(geo.lookup(ip("1.0.0.0")), None);
    assert_eq!(geo.lookup(ip("9.255.255.255")), None);
    assert_eq!(geo.lookup(ip("10.0.0.0")), entry(2, "BB"), "upper-cased");
    assert_eq!(geo.lookup(ip("10.0.0.255")), entry(2, "BB"));
    assert_eq!(geo.lookup(ip("10.0.1.0")), None);
    assert_eq!(geo.lookup(ip("255.255.255.255")), entry(3, "CC"));
    assert_eq!(geo.lookup(ip("::ffff:255.255.255.255")), entry(3, "CC"));
    assert_eq!(geo.lookup(ip("::")), entry(4, "DD"));
    assert_eq!(geo.lookup(ip("::1")), None);
    assert_eq!(
        geo.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
        entry(5, "EE")
    );
    let unknown = Some(GeoEntry {
        asn: None,
        country: None,
    });
    assert_eq!(geo.lookup(ip("2001:db8::1")), unknown);
    assert_eq!(geo.lookup(ip("2001:db9:ffff::1")), unknown);
    assert_eq!(geo.lookup(ip("2001:dba::1")), entry(65000, "FR"));
    assert_eq!(GeoTable::default().lookup(ip("10.0.0.1")), None);
    // The whole address space in one line.
    let all = table("::/0 7 ZZ");
    assert_eq!(all.lookup(ip("10.0.0.1")), entry(7, "ZZ"));
    assert_eq!(all.lookup(ip("2001:db8::1")), entry(7, "ZZ"));
    let all_v4 = table("0.0.0.0/0 7 ZZ");
    assert_eq!(all_v4.lookup(ip("10.0.0.1")), entry(7, "ZZ"));
    assert_eq!(all_v4.lookup(ip("2001:db8::1")), None);
}

#[test]
fn separators_comments_and_blank_lines() {
    let geo =
        table("# header\r\n\r\n   \n10.0.0.0/8, 64500, DE\r\n11.0.0.0/8 64501 FR # trailing\n\t\n");
    assert_eq!(geo.len(), 2);
    assert_eq!(geo.lookup(ip("11.1.1.1")), entry(64501, "FR"));
    assert_eq!(table("").len(), 0);
    assert!(table("# nothing\n").is_empty());
}

#[test]
fn malformed_lines() {
    let text = "10.0.0.0/8\n\
                10.0.0.1/8 1 DE\n\
                x 1 DE\n\
                10.0.0.0/8 -1 DE\n\
                10.0.0.0/8 4294967296 DE\n\
                10.0.0.0/8 1 DEU\n\
                10.0.0.0/8 1 D1\n\
                10.0.0.9 10.0.0.1 1 DE\n\
                10.0.0.1 ::1 1 DE\n\
                10.0.0.1 10.0.0.x 1 DE\n\
                a b c d e\n";
    let problems = GeoTable::parse(text).expect_err("malformed");
    let expected: Vec<(usize, String)> = [
        (
            1,
            "expected 3 fields (CIDR ASN COUNTRY) or 4 (START END ASN COUNTRY), found 1",
        ),
        (
            2,
            "\"10.0.0.1/8\" has host bits set; did you mean \"10.0.0.0/8\"?",
        ),
        (
            3,
            "\"x\" is not an address or network (e.g. \"198.51.100.0/24\", \"2001:db8::/32\", \"192.0.2.7\")",
        ),
        (
            4,
            "\"-1\" is not an AS number (0 to 4294967295, \"AS64500\", or \"-\" for unknown)",
        ),
        (
            5,
            "\"4294967296\" is not an AS number (0 to 4294967295, \"AS64500\", or \"-\" for unknown)",
        ),
        (
            6,
            "\"DEU\" is not a country code (two letters, or \"--\" for unknown)",
        ),
        (
            7,
            "\"D1\" is not a country code (two letters, or \"--\" for unknown)",
        ),
        (8, "end address 10.0.0.1 before start 10.0.0.9"),
        (9, "10.0.0.1 and ::1 are of different address families"),
        (10, "\"10.0.0.x\" is not an IP address"),
        (
            11,
            "expected 3 fields (CIDR ASN COUNTRY) or 4 (START END ASN COUNTRY), found 5",
        ),
    ]
    .into_iter()
    .map(|(line, message)| (line, message.to_owned()))
    .collect();
    assert_eq!(problems, expected);
    // Long fields are cut in messages.
    let long = "9".repeat(1000);
    let problems = GeoTable::parse(&format!("10.0.0.0/8 {long} DE")).expect_err("long");
    assert!(problems[0].1.len() < 200, "{problems:?}");
    assert!(problems[0].1.contains("..."), "{problems:?}");
}

#[test]
fn overlaps_name_both_lines() {
    let problems = GeoTable::parse(
        "10.0.0.0/8 1 DE\n\
         11.0.0.0/8 1 DE\n\
         10.1.0.0/16 2 FR\n\
         ::ffff:11.0.0.0/104 3 US\n\
         12.0.0.0/8 4 KP\n\
         12.0.0.0/8 4 KP\n",
    )
    .expect_err("overlaps");
    assert_eq!(
        problems,
        [
            (3, "overlaps line 1 (10.0.0.0-10.255.255.255)".to_owned()),
            (4, "overlaps line 2 (11.0.0.0-11.255.255.255)".to_owned()),
            (6, "overlaps line 5 (12.0.0.0-12.255.255.255)".to_owned()),
        ]
    );
    // A later line that starts earlier and covers an earlier one.
    let problems = GeoTable::parse("10.1.0.0/16 2 FR\n10.0.0.0/8 1 DE\n").expect_err("overlaps");
    assert_eq!(
        problems,
        [(2, "overlaps line 1 (10.1.0.0-10.1.255.255)".to_owned())]
    );
    // A wide range overlapping several later ones is reported against each.
    let problems = GeoTable::parse("10.0.0.0/8 1 DE\n10.1.0.0/16 2 FR\n10.2.0.0/16 3 FR\n")
        .expect_err("overlaps");
    assert_eq!(problems.len(), 2, "{problems:?}");
    // Adjacent ranges are fine.
    assert_eq!(
        table("10.0.0.0 10.0.0.9 1 DE\n10.0.0.10 10.0.0.10 2 FR\n").len(),
        2
    );
}

#[test]
fn many_problems_are_cut() {
    let text: String = (0..100).map(|_| "bogus\n").collect();
    let problems = GeoTable::parse(&text).expect_err("bogus");
    assert_eq!(problems.len(), MAX_PREFIX_TABLE_ERRORS + 1);
    assert_eq!(
        problems.last(),
        Some(&(
            MAX_PREFIX_TABLE_ERRORS + 1,
            format!(
                "{} more problems from this line on are not listed",
                100 - MAX_PREFIX_TABLE_ERRORS
            )
        ))
    );
}

#[test]
fn garbage_never_panics() {
    let mut state = 0x1234_5678_u64;
    let pieces = [
        "10.0.0.0/8",
        "::1",
        " ",
        "\t",
        ",",
        "\n",
        "#",
        "1",
        "-",
        "--",
        "DE",
        "/",
        "é",
        "4294967295",
        "AS",
        "ffff::",
        "0.0.0.0",
    ];
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..(state % 30) {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            text.push_str(pieces[(state >> 33) as usize % pieces.len()]);
        }
        if let Ok(geo) = GeoTable::parse(&text) {
            let _ = geo.lookup(ip("10.0.0.1"));
            let _ = geo.lookup(ip("::1"));
        }
    }
}

#[test]
fn asns_and_countries() {
    assert_eq!(parse_asn("64500"), Some(64500));
    assert_eq!(parse_asn("AS64500"), Some(64500));
    assert_eq!(parse_asn("as64500"), Some(64500));
    assert_eq!(parse_asn("4294967295"), Some(u32::MAX));
    assert_eq!(parse_asn("4294967296"), None);
    assert_eq!(parse_asn("AS"), None);
    assert_eq!(parse_asn(""), None);
    assert_eq!(parse_asn("+1"), None);
    assert_eq!(parse_asn("AS-1"), None);
    assert_eq!(parse_asn("ASé"), None);
    assert_eq!(parse_asn("é"), None);
    assert_eq!(parse_country("de"), Some(*b"DE"));
    assert_eq!(parse_country("De"), Some(*b"DE"));
    assert_eq!(parse_country("D"), None);
    assert_eq!(parse_country("DEU"), None);
    assert_eq!(parse_country("é"), None);
    assert_eq!(country_name(*b"KP"), "KP");
    assert_eq!(country_name([0, b'A']), "?A");
}

fn rules(doc: &str) -> AccessRules {
    let mut rules = AccessRules::default();
    for part in doc.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, values) = part.split_once(' ').expect("KEY VALUES");
        let values = values.split(' ');
        match key {
            "allow_from" => rules.allow_from = values.map(|v| v.parse().unwrap()).collect(),
            "deny_from" => rules.deny_from = values.map(|v| v.parse().unwrap()).collect(),
            "allow_countries" => {
                rules.allow_countries = values.map(|v| parse_country(v).unwrap()).collect()
            }
            "deny_countries" => {
                rules.deny_countries = values.map(|v| parse_country(v).unwrap()).collect()
            }
            "allow_asns" => rules.allow_asns = values.map(|v| v.parse().unwrap()).collect(),
            "deny_asns" => rules.deny_asns = values.map(|v| v.parse().unwrap()).collect(),
            _ => panic!("{key}"),
        }
    }
    rules
}

#[test]
fn check_networks() {
    let empty = AccessRules::default();
    assert!(empty.is_empty() && !empty.uses_table());
    assert_eq!(empty.check(ip("203.0.113.1"), None), Ok(()));
    let r = rules("allow_from 10.0.0.0/8 192.0.2.0/24; deny_from 10.9.0.0/16");
    assert!(!r.is_empty() && !r.uses_table());
    assert_eq!(r.check(ip("10.1.2.3"), None), Ok(()));
    assert_eq!(r.check(ip("192.0.2.200"), None), Ok(()));
    assert_eq!(r.check(ip("::ffff:10.1.2.3"), None), Ok(()));
    assert_eq!(
        r.check(ip("10.9.0.1"), None),
        Err("deny_from 10.9.0.0/16".to_owned())
    );
    assert_eq!(
        r.check(ip("::ffff:10.9.0.1"), None),
        Err("deny_from 10.9.0.0/16".to_owned())
    );
    assert_eq!(
        r.check(ip("11.0.0.1"), None),
        Err("allow_from (no match)".to_owned())
    );
    assert_eq!(
        r.check(ip("2001:db8::1"), None),
        Err("allow_from (no match)".to_owned())
    );
    // Deny alone lets everything else through.
    let r = rules("deny_from 10.9.0.0/16");
    assert_eq!(r.check(ip("11.0.0.1"), None), Ok(()));
}

#[test]
fn check_countries_and_asns() {
    let geo = table(SAMPLE);
    let geo = Some(&geo);
    let r = rules("allow_countries DE FR US; deny_countries KP FR");
    assert!(r.uses_table());
    assert_eq!(r.check(ip("127.0.0.1"), geo), Ok(()));
    assert_eq!(r.check(ip("::1"), geo), Ok(()));
    assert_eq!(r.check(ip("127.0.0.5"), geo), Ok(()));
    assert_eq!(
        r.check(ip("127.0.0.2"), geo),
        Err("deny_countries FR".to_owned()),
        "deny wins over allow"
    );
    assert_eq!(
        r.check(ip("127.0.0.3"), geo),
        Err("deny_countries KP".to_owned())
    );
    assert_eq!(
        r.check(ip("127.0.0.200"), geo),
        Err("allow_countries (no match)".to_owned()),
        "not in the table: no country"
    );
    assert_eq!(
        r.check(ip("127.0.0.1"), None),
        Err("allow_countries (no match)".to_owned()),
        "no table: no country"
    );
    // Without an allow list, an unknown address passes the deny list.
    let r = rules("deny_countries KP; deny_asns 64666");
    assert_eq!(r.check(ip("127.0.0.200"), geo), Ok(()));
    assert_eq!(r.check(ip("127.0.0.3"), None), Ok(()));
    assert_eq!(
        r.check(ip("127.0.0.3"), geo),
        Err("deny_countries KP".to_owned())
    );

    let r = rules("allow_asns 64500 64502; deny_asns 64666");
    assert_eq!(r.check(ip("127.0.0.1"), geo), Ok(()));
    assert_eq!(r.check(ip("127.0.0.9"), geo), Ok(()));
    assert_eq!(
        r.check(ip("127.0.0.2"), geo),
        Err("allow_asns (no match)".to_owned())
    );
    assert_eq!(
        r.check(ip("127.0.0.3"), geo),
        Err("deny_asns 64666".to_owned())
    );
    assert_eq!(
        r.check(ip("10.0.0.1"), geo),
        Err("allow_asns (no match)".to_owned())
    );

    // Unknown AS and country in the table match no rule.
    let unknown = table("10.0.0.0/8 0 --");
    let r = rules("deny_asns 64666; deny_countries KP");
    assert_eq!(r.check(ip("10.0.0.1"), Some(&unknown)), Ok(()));
    let r = rules("allow_asns 64500");
    assert_eq!(
        r.check(ip("10.0.0.1"), Some(&unknown)),
        Err("allow_asns (no match)".to_owned())
    );

    // Every kind at once: denies are checked before allows.
    let r = rules(
        "allow_from 127.0.0.0/8; deny_from 127.0.0.4/32; allow_countries DE US; \
         deny_countries KP; allow_asns 64500 64502; deny_asns 64502",
    );
    assert_eq!(r.check(ip("127.0.0.1"), geo), Ok(()));
    assert_eq!(
        r.check(ip("127.0.0.4"), geo),
        Err("deny_from 127.0.0.4/32".to_owned())
    );
    assert_eq!(
        r.check(ip("127.0.0.5"), geo),
        Err("deny_asns 64502".to_owned())
    );
    assert_eq!(
        r.check(ip("127.0.0.3"), geo),
        Err("deny_countries KP".to_owned())
    );
    assert_eq!(
        r.check(ip("127.0.0.2"), geo),
        Err("allow_countries (no match)".to_owned())
    );
    assert_eq!(
        r.check(ip("10.0.0.1"), geo),
        Err("allow_from (no match)".to_owned())
    );
}
