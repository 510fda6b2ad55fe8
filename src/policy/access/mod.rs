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

//!
//! `table.rs` owns the prefix table (its text form, its parser and its look-ups); this file
//! owns the rules and the decision taken with them.

mod table;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use super::cidr::Cidr;

pub use table::{GeoEntry, GeoTable};
pub(crate) use table::{parse_asn, parse_country};

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
