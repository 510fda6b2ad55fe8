//! `access` and `routing`: the source-address rules (networks, countries, AS numbers) of
//! every session and of each user, the prefix table they need, and the `USER name@target`
//! routing table, whose targets name backends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::limits::MAX_PREFIX_TABLE_BYTES;
use crate::policy::access::{AccessRules, GeoTable, parse_asn, parse_country};
use crate::policy::file::{AccessFile, RoutingFile, Scalar, UserFile};
use crate::policy::locate::JsonPath;
use crate::policy::mmdb::{MmdbTable, is_maxmind_db};
use crate::policy::{Backend, Routing, User};

use super::ReadFile;
use super::checker::Checker;
use super::values::listing;

/// The source-address rule lists of `access` or of a user, as written.
pub(super) struct RawRules<'a> {
    allow_from: Option<&'a [String]>,
    deny_from: Option<&'a [String]>,
    allow_countries: Option<&'a [String]>,
    deny_countries: Option<&'a [String]>,
    allow_asns: Option<&'a [Scalar]>,
    deny_asns: Option<&'a [Scalar]>,
}

impl<'a> RawRules<'a> {
    pub(super) fn of_access(raw: &'a AccessFile) -> RawRules<'a> {
        RawRules {
            allow_from: raw.allow_from.as_deref(),
            deny_from: raw.deny_from.as_deref(),
            allow_countries: raw.allow_countries.as_deref(),
            deny_countries: raw.deny_countries.as_deref(),
            allow_asns: raw.allow_asns.as_deref(),
            deny_asns: raw.deny_asns.as_deref(),
        }
    }

    pub(super) fn of_user(raw: &'a UserFile) -> RawRules<'a> {
        RawRules {
            allow_from: raw.allow_from.as_deref(),
            deny_from: raw.deny_from.as_deref(),
            allow_countries: raw.allow_countries.as_deref(),
            deny_countries: raw.deny_countries.as_deref(),
            allow_asns: raw.allow_asns.as_deref(),
            deny_asns: raw.deny_asns.as_deref(),
        }
    }
}

impl Checker<'_> {
    /// Source-address rules, global or a user's. Country and AS rules need the prefix table.
    pub(super) fn access_rules(
        &mut self,
        raw: RawRules<'_>,
        path: &JsonPath,
        have_table: bool,
    ) -> AccessRules {
        let mut rules = AccessRules {
            allow_from: self.cidrs(raw.allow_from, &path.key("allow_from")),
            deny_from: self.cidrs(raw.deny_from, &path.key("deny_from")),
            ..AccessRules::default()
        };
        for (list, key, slot) in [
            (
                raw.allow_countries,
                "allow_countries",
                &mut rules.allow_countries,
            ),
            (
                raw.deny_countries,
                "deny_countries",
                &mut rules.deny_countries,
            ),
        ] {
            for (i, text) in list.into_iter().flatten().enumerate() {
                match parse_country(text) {
                    Some(code) => slot.push(code),
                    None => self.bad(
                        &path.key(key).index(i),
                        format!(
                            "{text:?} is not a country code: use the two letters of \
                             ISO 3166-1, e.g. \"DE\""
                        ),
                    ),
                }
            }
        }
        for (list, key, slot) in [
            (raw.allow_asns, "allow_asns", &mut rules.allow_asns),
            (raw.deny_asns, "deny_asns", &mut rules.deny_asns),
        ] {
            for (i, value) in list.into_iter().flatten().enumerate() {
                if let Some(asn) = self.asn(value, &path.key(key).index(i)) {
                    slot.push(asn);
                }
            }
        }
        if !have_table {
            let lists = [
                (
                    "allow_countries",
                    raw.allow_countries.is_some_and(|l| !l.is_empty()),
                ),
                (
                    "deny_countries",
                    raw.deny_countries.is_some_and(|l| !l.is_empty()),
                ),
                ("allow_asns", raw.allow_asns.is_some_and(|l| !l.is_empty())),
                ("deny_asns", raw.deny_asns.is_some_and(|l| !l.is_empty())),
            ];
            for (key, used) in lists {
                if used {
                    self.bad_key(
                        &path.key(key),
                        "needs access.prefix_table (the operator's table of address \
                         ranges with their country and AS number)",
                    );
                }
            }
        }
        rules
    }

    fn asn(&mut self, value: &Scalar, path: &JsonPath) -> Option<u32> {
        let asn = match value {
            Scalar::Unsigned(n) => u32::try_from(*n).ok(),
            Scalar::Text(text) => match parse_asn(text) {
                Some(asn) => Some(asn),
                None => {
                    self.bad(
                        path,
                        format!("{text:?} is not an AS number; write 64500 or \"AS64500\""),
                    );
                    return None;
                }
            },
            Scalar::Negative(_) | Scalar::Float(_) => None,
        };
        match asn {
            Some(0) => self.bad(
                path,
                "0 is not an AS number; AS numbers go from 1 to 4294967295",
            ),
            Some(asn) => return Some(asn),
            None => self.bad(
                path,
                "must be an AS number from 1 to 4294967295, e.g. 64500 or \"AS64500\"",
            ),
        }
        None
    }

    /// Reads and parses the prefix table. Its problems are reported at `path` (the
    /// `prefix_table` value), naming the table's own line.
    pub(super) fn prefix_table(
        &mut self,
        text: &str,
        path: &JsonPath,
        read_file: ReadFile<'_>,
    ) -> (Option<PathBuf>, Option<GeoTable>) {
        let Some(file) = self.absolute_path(text, path) else {
            return (None, None);
        };
        let name = file.display().to_string();
        let bytes = match read_file(&file) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.bad(path, format!("{name}: {err}"));
                return (Some(file), None);
            }
        };
        if bytes.len() as u64 > MAX_PREFIX_TABLE_BYTES {
            self.bad(
                path,
                format!(
                    "{name} is larger than {MAX_PREFIX_TABLE_BYTES} bytes, the most a prefix \
                     table may have"
                ),
            );
            return (Some(file), None);
        }
        if is_maxmind_db(&bytes) {
            return match MmdbTable::open(bytes) {
                Ok(mmdb) => (Some(file), Some(GeoTable::from_mmdb(mmdb))),
                Err(message) => {
                    self.bad(path, format!("{name}: {message}"));
                    (Some(file), None)
                }
            };
        }
        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text,
            Err(err) => {
                let valid = bytes.get(..err.valid_up_to()).unwrap_or(&[]);
                let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
                self.bad(path, format!("{name} line {line}: not valid UTF-8"));
                return (Some(file), None);
            }
        };
        match GeoTable::parse(text) {
            Ok(table) if table.is_empty() => {
                self.bad(
                    path,
                    format!(
                        "{name} has no entries (every country and AS rule would match \
                         nothing)"
                    ),
                );
                (Some(file), None)
            }
            Ok(table) => (Some(file), Some(table)),
            Err(problems) => {
                for (line, message) in problems {
                    self.bad(path, format!("{name} line {line}: {message}"));
                }
                (Some(file), None)
            }
        }
    }

    pub(super) fn routing(
        &mut self,
        raw: Option<&RoutingFile>,
        backends: &BTreeMap<String, Backend>,
    ) -> Routing {
        let mut routing = Routing::default();
        let Some(raw) = raw else {
            return routing;
        };
        let path = JsonPath::root().key("routing").key("targets");
        routing.user_at_host = raw.user_at_host.unwrap_or(false);
        let names: BTreeSet<&str> = backends.keys().map(String::as_str).collect();
        for (target, backend) in raw.targets.iter().flatten() {
            let path = path.key(target);
            self.name(&path, target, "target");
            if target.contains('@') {
                self.bad_key(&path, "a target name cannot contain '@' (USER name@target)");
            }
            if !names.contains(backend.as_str())
                && !self.is_broken(&JsonPath::root().key("backends"))
            {
                self.bad(
                    &path,
                    format!(
                        "no backend named {backend:?} in \"backends\" ({})",
                        listing(&names)
                    ),
                );
            }
            routing.targets.insert(target.clone(), backend.clone());
        }
        routing
    }

    /// With `USER name@target` on, a user name with an `@` would be ambiguous (`bob@corp`:
    /// the user `bob@corp`, or `bob` routed to `corp`?): refused.
    pub(super) fn users_against_routing(
        &mut self,
        users: &BTreeMap<String, User>,
        routing: &Routing,
    ) {
        if !routing.user_at_host {
            return;
        }
        for name in users.keys().filter(|n| n.contains('@')) {
            self.bad_key(
                &JsonPath::root().key("users").key(name),
                "a user name cannot contain '@' while routing.user_at_host is on (USER name@target)",
            );
        }
    }
}
