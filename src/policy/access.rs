//! Source-address rules: networks, countries and autonomous systems, and the operator's
//! prefix table that maps addresses to the latter two.
//!
//! Everything here is pure: the table is parsed from text the loader has read, and a
//! decision ([`AccessRules::check`]) is a look-up in memory. ftpgate never asks the network
//! where an address is.
//!
//! Addresses are kept as `u128`, IPv4 mapped into `::ffff:0:0/96` as a dual-stack socket
//! reports IPv4 peers, so one sorted list of ranges serves both families and an IPv4 client
//! seen as `::ffff:192.0.2.7` finds the same entry as `192.0.2.7`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::limits::MAX_PREFIX_TABLE_ERRORS;

use super::cidr::Cidr;
use super::mmdb::MmdbTable;

/// Allow and deny rules on the client's address: global (`access`) or one user's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessRules {
    /// If not empty, the address must be in one of these networks.
    pub allow_from: Vec<Cidr>,
    /// The address must be in none of these networks.
    pub deny_from: Vec<Cidr>,
    /// If not empty, the prefix table must place the address in one of these countries
    /// (ISO 3166-1 alpha-2, upper case).
    pub allow_countries: Vec<[u8; 2]>,
    /// The prefix table must not place the address in any of these countries.
    pub deny_countries: Vec<[u8; 2]>,
    /// If not empty, the prefix table must place the address in one of these AS numbers.
    pub allow_asns: Vec<u32>,
    /// The prefix table must not place the address in any of these AS numbers.
    pub deny_asns: Vec<u32>,
}

impl AccessRules {
    /// Whether there is no rule at all (every address passes).
    pub fn is_empty(&self) -> bool {
        self.allow_from.is_empty()
            && self.deny_from.is_empty()
            && self.allow_countries.is_empty()
            && self.deny_countries.is_empty()
            && self.allow_asns.is_empty()
            && self.deny_asns.is_empty()
    }

    /// Whether any rule needs the prefix table.
    pub fn uses_table(&self) -> bool {
        !(self.allow_countries.is_empty()
            && self.deny_countries.is_empty()
            && self.allow_asns.is_empty()
            && self.deny_asns.is_empty())
    }

    /// Whether `ip` may connect. Deny lists win; a non-empty allow list must match. The
    /// error names the rule that refused: `"deny_from 10.9.0.0/16"`, `"allow_from (no
    /// match)"`, `"deny_countries KP"`, `"allow_countries (no match)"`, `"deny_asns 64666"`,
    /// `"allow_asns (no match)"`.
    ///
    /// An address the table does not know (or has no country or AS number for), or no table
    /// at all, matches no country or AS rule: an allow list refuses it, a deny list does not.
    pub fn check(&self, ip: IpAddr, geo: Option<&GeoTable>) -> Result<(), String> {
        let entry = if self.uses_table() {
            geo.and_then(|table| table.lookup(ip))
        } else {
            None
        };
        let country = entry.and_then(|e| e.country);
        let asn = entry.and_then(|e| e.asn);

        if let Some(net) = self.deny_from.iter().find(|net| net.contains(ip)) {
            return Err(format!("deny_from {net}"));
        }
        if let Some(code) = country.filter(|code| self.deny_countries.contains(code)) {
            return Err(format!("deny_countries {}", country_name(code)));
        }
        if let Some(asn) = asn.filter(|asn| self.deny_asns.contains(asn)) {
            return Err(format!("deny_asns {asn}"));
        }
        if !self.allow_from.is_empty() && !self.allow_from.iter().any(|net| net.contains(ip)) {
            return Err("allow_from (no match)".to_owned());
        }
        if !self.allow_countries.is_empty()
            && !country.is_some_and(|code| self.allow_countries.contains(&code))
        {
            return Err("allow_countries (no match)".to_owned());
        }
        if !self.allow_asns.is_empty() && !asn.is_some_and(|asn| self.allow_asns.contains(&asn)) {
            return Err("allow_asns (no match)".to_owned());
        }
        Ok(())
    }
}

/// A country code as text (`"DE"`); anything not ASCII shows as `?`.
pub fn country_name(code: [u8; 2]) -> String {
    code.iter()
        .map(|&b| {
            if b.is_ascii_alphabetic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// What the prefix table says about one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeoEntry {
    /// `None`: the table says the AS is unknown (`0` or `-`).
    pub asn: Option<u32>,
    /// ISO 3166-1 alpha-2, upper case; `None`: unknown (`--` or `-`).
    pub country: Option<[u8; 2]>,
}

/// One range of the table, inclusive at both ends.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u128,
    end: u128,
    entry: GeoEntry,
}

/// The operator's prefix table: sorted, non-overlapping address ranges, each with a country
/// and an AS number.
///
/// The text form, one range per line, fields separated by tabs (or spaces or commas),
/// `#` starting a comment, blank lines ignored:
///
/// ```text
/// # CIDR            ASN     COUNTRY
/// 192.0.2.0/24      64500   DE
/// # START           END             ASN     COUNTRY
/// 198.51.100.0      198.51.100.99   64501   FR
/// ```
///
/// ASN `0` or `-` is unknown, as is COUNTRY `--` or `-`. Ranges may not overlap.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GeoTable {
    /// Sorted by `start`; no two overlap.
    ranges: Vec<Range>,
    /// A MaxMind DB in place of the ranges (`mmdb.rs`).
    pub(super) mmdb: Option<MmdbTable>,
}

impl fmt::Debug for GeoTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("GeoTable");
        d.field("ranges", &self.ranges.len());
        if let Some(mmdb) = &self.mmdb {
            d.field("mmdb", mmdb);
        }
        d.finish()
    }
}

/// The key of an address: IPv4 (and IPv4-mapped IPv6) in `::ffff:0:0/96`.
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of a key, IPv4 where it is IPv4-mapped.
fn address(key: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(key);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// A field of the table quoted for a message, cut short if it is long.
fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", text.get(..cut).unwrap_or("")),
        None => format!("{text:?}"),
    }
}

impl GeoTable {
    /// Parses the text form (see [`GeoTable`]). On failure, the problems as (1-based line,
    /// message), in line order; after [`MAX_PREFIX_TABLE_ERRORS`] the rest are only counted
    /// in one last entry.
    pub fn parse(text: &str) -> Result<GeoTable, Vec<(usize, String)>> {
        let mut problems: Vec<(usize, String)> = Vec::new();
        // (range, line) in file order.
        let mut ranges: Vec<(Range, usize)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let content = line.split_once('#').map_or(line, |(before, _)| before);
            let fields: Vec<&str> = content
                .split(['\t', ' ', ',', '\r'])
                .filter(|field| !field.is_empty())
                .collect();
            if fields.is_empty() {
                continue;
            }
            match parse_line(&fields) {
                Ok(range) => ranges.push((range, number)),
                Err(message) => problems.push((number, message)),
            }
        }

        ranges.sort_by_key(|&(range, line)| (range.start, line));
        // The range reaching furthest so far, and its line.
        let mut reach: Option<(Range, usize)> = None;
        for &(range, line) in &ranges {
            if let Some((before, before_line)) = reach {
                if range.start <= before.end {
                    let (later, earlier, shown) = if line > before_line {
                        (line, before_line, before)
                    } else {
                        (before_line, line, range)
                    };
                    problems.push((
                        later,
                        format!(
                            "overlaps line {earlier} ({}-{})",
                            address(shown.start),
                            address(shown.end)
                        ),
                    ));
                }
                if range.end > before.end {
                    reach = Some((range, line));
                }
            } else {
                reach = Some((range, line));
            }
        }

        if problems.is_empty() {
            return Ok(GeoTable {
                ranges: ranges.into_iter().map(|(range, _)| range).collect(),
                mmdb: None,
            });
        }
        problems.sort_by_key(|&(line, _)| line);
        if problems.len() > MAX_PREFIX_TABLE_ERRORS {
            let rest = problems.split_off(MAX_PREFIX_TABLE_ERRORS);
            let first = rest.first().map_or(0, |&(line, _)| line);
            problems.push((
                first,
                format!(
                    "{} more problems from this line on are not listed",
                    rest.len()
                ),
            ));
        }
        Err(problems)
    }

    /// What the table says about `ip`: a binary search over the ranges, or a walk down
    /// the MaxMind DB's search tree.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoEntry> {
        if let Some(mmdb) = &self.mmdb {
            return mmdb.lookup(ip);
        }
        let key = key(ip);
        let after = self.ranges.partition_point(|range| range.start <= key);
        let range = self.ranges.get(after.checked_sub(1)?)?;
        (key <= range.end).then_some(range.entry)
    }

    /// Number of ranges (0 for a MaxMind DB).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the table can place no address at all.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.mmdb.is_none()
    }
}

/// One line's fields: `CIDR ASN COUNTRY` or `START END ASN COUNTRY`.
fn parse_line(fields: &[&str]) -> Result<Range, String> {
    let (start, end, asn, country) = match *fields {
        [cidr, asn, country] => {
            let cidr = Cidr::parse(cidr)?;
            let (start, end) = cidr_bounds(cidr);
            (start, end, asn, country)
        }
        [start, end, asn, country] => {
            let start_ip = table_address(start)?;
            let end_ip = table_address(end)?;
            if start_ip.is_ipv4() != end_ip.is_ipv4() {
                return Err(format!(
                    "{start_ip} and {end_ip} are of different address families"
                ));
            }
            let (start, end) = (key(start_ip), key(end_ip));
            if end < start {
                return Err(format!("end address {end_ip} before start {start_ip}"));
            }
            (start, end, asn, country)
        }
        _ => {
            return Err(format!(
                "expected 3 fields (CIDR ASN COUNTRY) or 4 (START END ASN COUNTRY), found {}",
                fields.len()
            ));
        }
    };
    Ok(Range {
        start,
        end,
        entry: GeoEntry {
            asn: table_asn(asn)?,
            country: table_country(country)?,
        },
    })
}

fn table_address(text: &str) -> Result<IpAddr, String> {
    text.parse::<IpAddr>()
        .map_err(|_| format!("{} is not an IP address", quoted(text)))
}

/// First and last key of a network.
fn cidr_bounds(cidr: Cidr) -> (u128, u128) {
    let (start, bits) = match cidr.network() {
        IpAddr::V4(v4) => (key(IpAddr::V4(v4)), 32 - u32::from(cidr.prefix())),
        IpAddr::V6(v6) => (u128::from(v6), 128 - u32::from(cidr.prefix())),
    };
    let hosts = 1u128.checked_shl(bits).map_or(u128::MAX, |n| n - 1);
    (start, start | hosts)
}

fn table_asn(text: &str) -> Result<Option<u32>, String> {
    if text == "-" {
        return Ok(None);
    }
    match parse_asn(text) {
        Some(0) => Ok(None),
        Some(asn) => Ok(Some(asn)),
        None => Err(format!(
            "{} is not an AS number (0 to 4294967295, \"AS64500\", or \"-\" for unknown)",
            quoted(text)
        )),
    }
}

fn table_country(text: &str) -> Result<Option<[u8; 2]>, String> {
    if text == "-" || text == "--" {
        return Ok(None);
    }
    parse_country(text).map(Some).ok_or_else(|| {
        format!(
            "{} is not a country code (two letters, or \"--\" for unknown)",
            quoted(text)
        )
    })
}

/// An AS number in plain form: `64500`, `AS64500` or `as64500`.
pub(crate) fn parse_asn(text: &str) -> Option<u32> {
    let digits = match text.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("AS") => text.get(2..)?,
        _ => text,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok()
}

/// Two ASCII letters, upper-cased.
pub(crate) fn parse_country(text: &str) -> Option<[u8; 2]> {
    match *text.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const SAMPLE: &str = include_str!("../../tests/data/prefixes.tsv");

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
        let geo = table(
            "# header\r\n\r\n   \n10.0.0.0/8, 64500, DE\r\n11.0.0.0/8 64501 FR # trailing\n\t\n",
        );
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
        let problems =
            GeoTable::parse("10.1.0.0/16 2 FR\n10.0.0.0/8 1 DE\n").expect_err("overlaps");
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
}
