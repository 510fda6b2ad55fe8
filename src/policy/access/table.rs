//! The operator's prefix table: address ranges, each with a country and an AS number, parsed
//! from the text form or read from a MaxMind DB (`mmdb.rs`), and looked up in memory.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::limits::MAX_PREFIX_TABLE_ERRORS;
use crate::policy::cidr::Cidr;
use crate::policy::mmdb::MmdbTable;

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
    pub(in crate::policy) mmdb: Option<MmdbTable>,
    /// Further tables of `access.prefix_table` (e.g. a country and an ASN database), asked
    /// after this one for what it does not know.
    pub(in crate::policy) more: Vec<GeoTable>,
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
                more: Vec::new(),
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
        let mut entry = self.lookup_here(ip);
        // The further tables fill in what this one does not know (an ASN database beside a
        // country one); the first that knows a field wins.
        for table in &self.more {
            if entry.is_some_and(|e| e.asn.is_some() && e.country.is_some()) {
                break;
            }
            if let Some(found) = table.lookup(ip) {
                let e = entry.get_or_insert(GeoEntry {
                    asn: None,
                    country: None,
                });
                e.asn = e.asn.or(found.asn);
                e.country = e.country.or(found.country);
            }
        }
        entry
    }

    fn lookup_here(&self, ip: IpAddr) -> Option<GeoEntry> {
        if let Some(mmdb) = &self.mmdb {
            return mmdb.lookup(ip);
        }
        let key = key(ip);
        let after = self.ranges.partition_point(|range| range.start <= key);
        let range = self.ranges.get(after.checked_sub(1)?)?;
        (key <= range.end).then_some(range.entry)
    }

    /// One table of several: `tables[0]` asked first, the rest in order for what it does
    /// not know. None for none.
    pub fn combine(mut tables: Vec<GeoTable>) -> Option<GeoTable> {
        if tables.is_empty() {
            return None;
        }
        let mut first = tables.remove(0);
        first.more.extend(tables);
        Some(first)
    }

    /// Number of ranges (0 for a MaxMind DB).
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the table can place no address at all.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.mmdb.is_none() && self.more.iter().all(GeoTable::is_empty)
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
