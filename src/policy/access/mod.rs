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
        self.decide(ip, geo).map_err(|denial| denial.text)
    }

    /// [`AccessRules::check`], naming the refusing rule by key and, for a deny list, by the
    /// index of the entry that matched (`ftpgate explain` places it in the file).
    pub fn decide(&self, ip: IpAddr, geo: Option<&GeoTable>) -> Result<(), Denial> {
        let entry = if self.uses_table() {
            geo.and_then(|table| table.lookup(ip))
        } else {
            None
        };
        let country = entry.and_then(|e| e.country);
        let asn = entry.and_then(|e| e.asn);
        let denial = |key: &'static str, index: Option<usize>, shown: String| Denial {
            key,
            index,
            text: format!("{key} {shown}"),
        };

        if let Some((i, net)) = self
            .deny_from
            .iter()
            .enumerate()
            .find(|(_, net)| net.contains(ip))
        {
            return Err(denial("deny_from", Some(i), net.to_string()));
        }
        if let Some(i) =
            country.and_then(|code| self.deny_countries.iter().position(|c| *c == code))
        {
            let shown = country.map(country_name).unwrap_or_default();
            return Err(denial("deny_countries", Some(i), shown));
        }
        if let Some(i) = asn.and_then(|asn| self.deny_asns.iter().position(|a| *a == asn)) {
            let shown = asn.map(|asn| asn.to_string()).unwrap_or_default();
            return Err(denial("deny_asns", Some(i), shown));
        }
        let no_match = "(no match)".to_owned();
        if !self.allow_from.is_empty() && !self.allow_from.iter().any(|net| net.contains(ip)) {
            return Err(denial("allow_from", None, no_match));
        }
        if !self.allow_countries.is_empty()
            && !country.is_some_and(|code| self.allow_countries.contains(&code))
        {
            return Err(denial("allow_countries", None, no_match));
        }
        if !self.allow_asns.is_empty() && !asn.is_some_and(|asn| self.allow_asns.contains(&asn)) {
            return Err(denial("allow_asns", None, no_match));
        }
        Ok(())
    }
}

/// The rule of an [`AccessRules`] that refused an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The key of the list: `"deny_from"`, `"allow_countries"`, ...
    pub key: &'static str,
    /// The entry of a deny list that matched; `None` for an allow list nothing matched.
    pub index: Option<usize>,
    /// What [`AccessRules::check`] answers: `"deny_from 10.9.0.0/16"`, `"allow_from (no
    /// match)"`.
    pub text: String,
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
