//! `users`: each user's role and backend (which must exist), time windows, FXP networks,
//! TLS requirement, limits and timeouts. A user's source-address rules are checked as those
//! of `access` (`access.rs`) and its timeouts as those of `defaults` (`defaults.rs`).

use std::collections::{BTreeMap, BTreeSet};

use crate::policy::file::{BoolOrWord, Object, OneOrMany, PolicyFile, TimeWindowFile, UserFile};
use crate::policy::locate::JsonPath;
use crate::policy::time::{TimeWindow, Zone, parse_days, parse_hours, parse_offset};
use crate::policy::{AuditDigest, Defaults, TlsRequire, TlsSessionReuse, User, UserLimits};

use super::access::RawRules;
use super::checker::Checker;
use super::values::{listing, lookup};

/// What every user is checked against.
struct UserContext<'a> {
    role_names: &'a BTreeSet<&'a str>,
    backend_names: &'a BTreeSet<&'a str>,
    defaults: &'a Defaults,
    /// The top-level `enforce` (default `true`).
    enforce: bool,
    /// The file names a prefix table (or tried to), which country and AS rules need.
    have_table: bool,
}

impl Checker<'_> {
    /// `have_table`: the file names a prefix table (or tried to), which country and AS rules
    /// need.
    pub(super) fn users(
        &mut self,
        raw: &PolicyFile,
        defaults: &Defaults,
        have_table: bool,
    ) -> BTreeMap<String, User> {
        let root = JsonPath::root();
        let role_names: BTreeSet<&str> = raw
            .roles
            .iter()
            .flatten()
            .map(|(n, _)| n.as_str())
            .collect();
        let backend_names: BTreeSet<&str> = raw
            .backends
            .iter()
            .flatten()
            .map(|(n, _)| n.as_str())
            .collect();
        let context = UserContext {
            role_names: &role_names,
            backend_names: &backend_names,
            defaults,
            enforce: raw.enforce.unwrap_or(true),
            have_table,
        };
        let mut users = BTreeMap::new();
        for (name, Object(user)) in raw.users.iter().flatten() {
            let path = root.key("users").key(name);
            users.insert(name.clone(), self.user(name, user, &path, &context));
        }
        users
    }

    fn user(
        &mut self,
        name: &str,
        raw: &UserFile,
        path: &JsonPath,
        context: &UserContext<'_>,
    ) -> User {
        self.name(path, name, "user");
        let role = self.reference(raw.role.as_ref(), path, "role", "roles", context.role_names);
        let backend = self.reference(
            raw.backend.as_ref(),
            path,
            "backend",
            "backends",
            context.backend_names,
        );
        let access = self.access_rules(RawRules::of_user(raw), path, context.have_table);
        let mut time_windows = Vec::new();
        for (i, Object(window)) in raw.time_windows.iter().flatten().enumerate() {
            if let Some(window) = self.time_window(window, &path.key("time_windows").index(i)) {
                time_windows.push(window);
            }
        }
        let allow_fxp_to = self.cidrs(raw.allow_fxp_to.as_deref(), &path.key("allow_fxp_to"));
        let jail = raw
            .paths
            .as_deref()
            .map(|paths| self.jail(paths, &path.key("paths")));
        let tls_require = self
            .choice(
                raw.tls_require.as_ref(),
                &path.key("tls_require"),
                TlsRequire::SPELLINGS,
            )
            .unwrap_or_default();
        let tls_session_reuse = match &raw.tls_session_reuse {
            None | Some(BoolOrWord::Bool(true)) => TlsSessionReuse::Required,
            Some(BoolOrWord::Bool(false)) => TlsSessionReuse::Off,
            Some(BoolOrWord::Word(word)) => {
                let path = path.key("tls_session_reuse");
                match lookup(TlsSessionReuse::SPELLINGS, word) {
                    Some(reuse) => reuse,
                    None => {
                        self.bad(
                            &path,
                            format!("unknown value {word:?}; expected true, false or \"bridge\""),
                        );
                        TlsSessionReuse::Required
                    }
                }
            }
        };
        // Resolved against `audit.digest` once that is loaded (see `load`).
        let audit_digest = self
            .choice(
                raw.audit_digest.as_ref(),
                &path.key("audit_digest"),
                AuditDigest::SPELLINGS,
            )
            .unwrap_or_default();
        let global = &context.defaults.limits;
        let mut limits = UserLimits {
            max_file_size: global.max_file_size,
            rate: global.rate,
            user_rate: global.user_rate,
            sessions: None,
        };
        if let Some(Object(raw)) = &raw.limits {
            let path = path.key("limits");
            if let Some(value) = &raw.max_file_size {
                limits.max_file_size = self.size(value, &path.key("max_file_size"));
            }
            if let Some(value) = &raw.rate {
                limits.rate = self.rate(value, &path.key("rate"));
            }
            if let Some(value) = &raw.user_rate {
                limits.user_rate = self.rate(value, &path.key("user_rate"));
            }
            if let Some(value) = &raw.sessions {
                limits.sessions = self.count(value, &path.key("sessions"));
            }
        }
        let timeouts = self.timeouts(
            raw.timeouts.as_ref().map(|o| &o.0),
            &path.key("timeouts"),
            context.defaults.timeouts,
        );
        User {
            name: name.to_owned(),
            role,
            backend,
            access,
            time_windows,
            allow_fxp_to,
            tls_require,
            tls_session_reuse,
            audit_digest,
            limits,
            timeouts,
            jail,
            enforce: raw.enforce.unwrap_or(context.enforce),
        }
    }

    /// One entry of a user's `time_windows`; `None` if anything in it is wrong or missing.
    fn time_window(&mut self, raw: &TimeWindowFile, path: &JsonPath) -> Option<TimeWindow> {
        let mut days = [false; 7];
        let days_path = path.key("days");
        let days_ok = match &raw.days {
            None => {
                self.missing(
                    path,
                    "days",
                    " (e.g. \"mon-fri\", [\"sat\", \"sun\"] or \"all\")",
                );
                false
            }
            Some(OneOrMany::One(text)) => match parse_days(text, &mut days) {
                Ok(()) => true,
                Err(message) => {
                    self.bad(&days_path, message);
                    false
                }
            },
            Some(OneOrMany::Many(list)) if list.is_empty() => {
                self.bad(
                    &days_path,
                    "at least one day is required, e.g. [\"sat\", \"sun\"]",
                );
                false
            }
            Some(OneOrMany::Many(list)) => {
                let mut ok = true;
                for (i, text) in list.iter().enumerate() {
                    if let Err(message) = parse_days(text, &mut days) {
                        self.bad(&days_path.index(i), message);
                        ok = false;
                    }
                }
                ok
            }
        };
        let hours = match &raw.hours {
            None => {
                self.missing(
                    path,
                    "hours",
                    " (e.g. \"08:00-18:00\"; \"00:00-24:00\" for the whole day)",
                );
                None
            }
            Some(text) => parse_hours(text)
                .map_err(|message| self.bad(&path.key("hours"), message))
                .ok(),
        };
        // Exactly one of `utc_offset` (fixed) and `tz` (IANA, with daylight saving time).
        let zone = match (&raw.utc_offset, &raw.tz) {
            // A wrongly typed one is there, just wrong (and reported as such).
            (None, None)
                if self.is_broken(&path.key("utc_offset")) || self.is_broken(&path.key("tz")) =>
            {
                None
            }
            (None, None) => {
                self.missing(
                    path,
                    "tz",
                    " (an IANA time zone such as \"Europe/Berlin\"; or \"utc_offset\", a \
                     fixed offset such as \"+01:00\" or \"Z\")",
                );
                None
            }
            (Some(_), Some(_)) => {
                self.bad_key(
                    &path.key("tz"),
                    "give either tz (a time zone) or utc_offset (a fixed offset), not both",
                );
                None
            }
            (Some(text), None) => parse_offset(text)
                .map(Zone::Fixed)
                .map_err(|message| self.bad(&path.key("utc_offset"), message))
                .ok(),
            (None, Some(name)) => Zone::named(name)
                .map_err(|message| self.bad(&path.key("tz"), message))
                .ok(),
        };
        let (start_minute, end_minute) = hours?;
        let zone = zone?;
        days_ok.then_some(TimeWindow {
            days,
            start_minute,
            end_minute,
            zone,
        })
    }

    /// A required name that must be a key of `section`.
    fn reference(
        &mut self,
        value: Option<&String>,
        parent: &JsonPath,
        key: &str,
        section: &str,
        defined: &BTreeSet<&str>,
    ) -> String {
        let Some(value) = value else {
            self.missing(parent, key, "");
            return String::new();
        };
        // When the section itself had to be taken out, what it defines is unknown.
        if !defined.contains(value.as_str()) && !self.is_broken(&JsonPath::root().key(section)) {
            self.bad(
                &parent.key(key),
                format!(
                    "no {key} named {value:?} in \"{section}\" ({})",
                    listing(defined)
                ),
            );
        }
        value.clone()
    }
}

impl Checker<'_> {
    /// `paths`: absolute, without `.`, `..`, a backslash or glob characters, at least one.
    fn jail(&mut self, paths: &[String], path: &JsonPath) -> crate::policy::jail::Jail {
        if paths.is_empty() {
            self.bad(
                path,
                "names no path: the user could reach nothing (remove the key for no jail)",
            );
        }
        for (i, text) in paths.iter().enumerate() {
            let at = path.index(i);
            if !text.starts_with('/') {
                self.bad(
                    &at,
                    format!("{text:?} must be an absolute path (starting with /)"),
                );
            } else if text.contains('\\') || text.contains(['*', '?', '[', '{', '~']) {
                self.bad(
                    &at,
                    format!(
                        "{text:?}: a backslash, ~ or glob characters cannot be in a path prefix"
                    ),
                );
            } else if text.split('/').any(|s| s == "." || s == "..") {
                self.bad(&at, format!("{text:?}: write the path without . or .."));
            }
        }
        crate::policy::jail::Jail::new(paths.iter().map(String::as_str))
    }
}
