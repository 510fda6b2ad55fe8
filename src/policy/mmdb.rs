//! The prefix table from a MaxMind DB file (`.mmdb`): GeoLite2 / GeoIP2 and DB-IP country
//! and ASN databases, read with the `maxminddb` crate.
//!
//! The file is read into memory when the policy is loaded and checked whole
//! ([`maxminddb::Reader::verify`]), so a look-up at connect or login is a walk down the
//! database's search tree in memory, and a corrupt file is refused at load instead of
//! answering wrongly later. A record gives the country from `country.iso_code` (else
//! `registered_country.iso_code`, as for anonymous proxies and satellite providers in
//! GeoLite2) and the AS number from `autonomous_system_number`; a database that has one of
//! them leaves the other unknown, as a TSV line with `-` would.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use maxminddb::Reader;
use serde::Deserialize;

use super::access::{GeoEntry, GeoTable, parse_country};

/// The marker before the metadata section of every MaxMind DB file (the format's spec),
/// searched for in the last [`METADATA_SEARCH_BYTES`] of the file.
const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";
/// The metadata section is at most 128 KiB from the end of the file (the format's spec).
const METADATA_SEARCH_BYTES: usize = 128 * 1024;

/// Whether `bytes` look like a MaxMind DB file rather than the text form of the table.
pub fn is_maxmind_db(bytes: &[u8]) -> bool {
    let tail = bytes.len().saturating_sub(METADATA_SEARCH_BYTES);
    bytes.get(tail..).is_some_and(|tail| {
        tail.windows(METADATA_MARKER.len())
            .any(|w| w == METADATA_MARKER)
    })
}

/// The file's bytes, shared between the reader and comparisons.
#[derive(Clone)]
struct Bytes(Arc<[u8]>);

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A loaded MaxMind DB.
#[derive(Clone)]
pub struct MmdbTable {
    bytes: Arc<[u8]>,
    reader: Arc<Reader<Bytes>>,
}

impl PartialEq for MmdbTable {
    /// Two tables are equal when their files are.
    fn eq(&self, other: &MmdbTable) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for MmdbTable {}

impl fmt::Debug for MmdbTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The part of a record ftpgate reads; every other field is skipped.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    #[serde(borrow)]
    registered_country: Option<Country<'a>>,
    autonomous_system_number: Option<u32>,
}

#[derive(Deserialize)]
struct Country<'a> {
    iso_code: Option<&'a str>,
}

impl MmdbTable {
    /// Opens and checks a MaxMind DB read into `bytes`.
    pub fn open(bytes: Vec<u8>) -> Result<MmdbTable, String> {
        tree_fits(&bytes)?;
        let bytes: Arc<[u8]> = Arc::from(bytes);
        let reader = Reader::from_source(Bytes(Arc::clone(&bytes)))
            .map_err(|err| format!("not a valid MaxMind DB: {err}"))?;
        reader
            .verify()
            .map_err(|err| format!("not a valid MaxMind DB: {err}"))?;
        Ok(MmdbTable {
            bytes,
            reader: Arc::new(reader),
        })
    }

    /// What the database says about `ip`; `None` when it has no record for it. A record
    /// that cannot be decoded (not the shape of a country or ASN database) counts as none.
    pub fn lookup(&self, ip: IpAddr) -> Option<GeoEntry> {
        // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; the database files
        // IPv4 under its own subtree, which not every writer aliases there.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        let found = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        let country = [record.country, record.registered_country]
            .into_iter()
            .flatten()
            .find_map(|c| c.iso_code.and_then(parse_country));
        let asn = record.autonomous_system_number.filter(|&asn| asn != 0);
        (country.is_some() || asn.is_some()).then_some(GeoEntry { asn, country })
    }

    /// `MaxMind DB GeoLite2-Country, built 2026-12-01`, for the summary.
    pub fn describe(&self) -> String {
        let meta = &self.reader.metadata;
        let days = i64::try_from(meta.build_epoch / 86_400).unwrap_or(0);
        let (y, m, d) = civil_from_days(days);
        format!(
            "MaxMind DB {:?}, built {y:04}-{m:02}-{d:02}",
            meta.database_type
        )
    }
}

impl GeoTable {
    /// The table of a MaxMind DB file.
    pub fn from_mmdb(mmdb: MmdbTable) -> GeoTable {
        let mut table = GeoTable::default();
        table.mmdb = Some(mmdb);
        table
    }

    /// `6 ranges`, or what the MaxMind DB is, for the summary.
    pub fn describe(&self) -> String {
        let mut text = self.describe_one();
        for more in &self.more {
            text.push_str("; then ");
            text.push_str(&more.describe_one());
        }
        text
    }

    fn describe_one(&self) -> String {
        match &self.mmdb {
            Some(mmdb) => mmdb.describe(),
            None => format!("{} ranges", self.len()),
        }
    }
}

/// Checks that the search tree the metadata announces fits before the metadata.
///
/// maxminddb 0.27 trusts `node_count` and `record_size` and indexes (and subtracts) without
/// checking when the file is shorter than the tree (a truncated download): it panics in
/// `Reader::from_source` or `verify`. So the two numbers are read here first, from their
/// encoding in the metadata map (a key string, then an unsigned integer of up to 4 bytes:
/// the format's spec, section "Data Section"), and a tree that does not fit is refused.
fn tree_fits(bytes: &[u8]) -> Result<(), String> {
    let marker = bytes
        .windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)
        .ok_or("not a valid MaxMind DB: no metadata marker")?;
    let metadata = bytes.get(marker..).unwrap_or(&[]);
    let number = |key: &[u8]| -> Option<u64> {
        let at = metadata.windows(key.len()).position(|w| w == key)? + key.len();
        let control = *metadata.get(at)?;
        if !matches!(control & 0xE0, 0xA0 | 0xC0) {
            return None;
        }
        let len = usize::from(control & 0x1F);
        let digits = metadata.get(at + 1..at + 1 + len).filter(|_| len <= 4)?;
        Some(digits.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))
    };
    // A UTF-8 string key of 10 / 11 bytes (type 2: 0x40 | length), then a uint16 (type 5,
    // 0xA0 | length) or uint32 (type 6, 0xC0 | length).
    let nodes = number(b"\x4Anode_count");
    let record_size = number(b"\x4Brecord_size");
    let (Some(nodes), Some(record_size)) = (nodes, record_size) else {
        return Err("not a valid MaxMind DB: no node_count or record_size in its metadata".into());
    };
    if !matches!(record_size, 24 | 28 | 32) {
        return Err(format!("not a valid MaxMind DB: record size {record_size}"));
    }
    // The tree, the 16-byte separator, then the data section.
    let tree = nodes.saturating_mul(record_size) / 4 + 16;
    if tree > marker as u64 {
        return Err(format!(
            "not a valid MaxMind DB: its search tree ({tree} bytes) is larger than the file \
             before its metadata ({marker} bytes); is it cut short?"
        ));
    }
    Ok(())
}

/// The calendar date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_a_database_from_text_and_refuses_a_broken_one() {
        assert!(!is_maxmind_db(b"127.0.0.1/32 64500 DE\n"));
        assert!(!is_maxmind_db(b""));
        let mut fake = vec![0u8; 64];
        fake.extend_from_slice(METADATA_MARKER);
        fake.extend_from_slice(b"garbage");
        assert!(is_maxmind_db(&fake));
        let err = MmdbTable::open(fake).expect_err("not a database");
        assert!(err.starts_with("not a valid MaxMind DB: "), "{err}");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
