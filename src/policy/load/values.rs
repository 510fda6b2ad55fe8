//! The checks of single values that every section of the policy file shares: a name used as
//! a key, a value from a table of spellings (an enum's `SPELLINGS`), absolute paths, IP
//! addresses with and without a port, seconds, counts, sizes, rates and lists of networks;
//! and the small text helpers of their messages.
//!
//! Each check reports what is wrong at the value's path and returns `None` (or leaves the
//! value out), so that the section goes on with the rest.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::limits::MAX_TIMEOUT_SECONDS;
use crate::policy::cidr::Cidr;
use crate::policy::file::Scalar;
use crate::policy::locate::JsonPath;
use crate::policy::units::{parse_rate, parse_size};

use super::checker::Checker;

/// How many defined names an "unknown name" error lists before "...".
const MAX_NAMES_LISTED: usize = 10;

/// The value spelled `text` in `table`.
pub(super) fn lookup<T: Copy>(table: &[(&str, T)], text: &str) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| *name == text)
        .map(|&(_, value)| value)
}

impl Checker<'_> {
    /// A name used as a key of `users`, `roles`, `backends` or `routing.targets`.
    pub(super) fn name(&mut self, path: &JsonPath, name: &str, what: &str) {
        if name.is_empty() {
            self.bad_key(path, format!("a {what} name cannot be empty"));
        } else if name.chars().any(char::is_control) {
            self.bad_key(
                path,
                format!("a {what} name cannot contain control characters"),
            );
        } else if name.trim() != name {
            self.bad_key(
                path,
                format!("a {what} name cannot begin or end with white space"),
            );
        }
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        value: Option<&String>,
        path: &JsonPath,
        table: &[(&str, T)],
    ) -> Option<T> {
        let text = value?;
        let found = lookup(table, text);
        if found.is_none() {
            let names: Vec<String> = table.iter().map(|(name, _)| format!("{name:?}")).collect();
            self.bad(
                path,
                format!("unknown value {text:?}; expected {}", or_list(&names)),
            );
        }
        found
    }

    pub(super) fn required_path(
        &mut self,
        value: Option<&String>,
        parent: &JsonPath,
        key: &str,
    ) -> Option<PathBuf> {
        match value {
            Some(text) => self.absolute_path(text, &parent.key(key)),
            None => {
                self.missing(parent, key, "");
                None
            }
        }
    }

    pub(super) fn absolute_path(&mut self, text: &str, path: &JsonPath) -> Option<PathBuf> {
        if text.chars().any(char::is_control) {
            self.bad(path, "a path cannot contain control characters");
        } else if !text.starts_with('/') {
            self.bad(
                path,
                format!("{text:?} must be an absolute path (starting with /)"),
            );
        } else {
            return Some(PathBuf::from(text));
        }
        None
    }

    pub(super) fn socket_addr(
        &mut self,
        text: &str,
        path: &JsonPath,
        example: &str,
    ) -> Option<SocketAddr> {
        match text.parse::<SocketAddr>() {
            Ok(address) if address.port() == 0 => {
                self.bad(path, format!("{text:?}: port 0 is not allowed"));
                None
            }
            Ok(address) => Some(address),
            Err(_) => {
                let message = if looks_like_host_name(text) {
                    format!("{text:?}: use an IP address; ftpgate does not resolve names")
                } else if let Ok(IpAddr::V6(ip)) = text.parse::<IpAddr>() {
                    format!("{text:?} has no port; write IP:PORT, e.g. \"[{ip}]:21\"")
                } else if text.parse::<IpAddr>().is_ok() {
                    format!("{text:?} has no port; write IP:PORT, e.g. {example}")
                } else {
                    format!("{text:?} is not an IP:PORT address (e.g. {example} or \"[::1]:21\")")
                };
                self.bad(path, message);
                None
            }
        }
    }

    pub(super) fn ip(&mut self, text: &str, path: &JsonPath) -> Option<IpAddr> {
        match text.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let message = if looks_like_host_name(text) {
                    format!("{text:?}: use an IP address; ftpgate does not resolve names")
                } else {
                    format!("{text:?} is not an IP address")
                };
                self.bad(path, message);
                None
            }
        }
    }

    pub(super) fn seconds(&mut self, value: &Scalar, path: &JsonPath) -> Option<u64> {
        match value {
            Scalar::Unsigned(0) => self.bad(path, "must be at least 1 second"),
            Scalar::Unsigned(n) if *n > MAX_TIMEOUT_SECONDS => self.bad(
                path,
                format!("{n} is too long; the most is {MAX_TIMEOUT_SECONDS} seconds (30 days)"),
            ),
            Scalar::Unsigned(n) => return Some(*n),
            Scalar::Float(value) if beyond_u64(*value) => self.bad(
                path,
                format!("too long; the most is {MAX_TIMEOUT_SECONDS} seconds (30 days)"),
            ),
            Scalar::Negative(_) | Scalar::Float(_) => {
                self.bad(path, "must be a whole number of seconds, at least 1")
            }
            Scalar::Text(text) => self.bad(
                path,
                format!("{text:?}: write a number of seconds without quotes or units, e.g. 300"),
            ),
        }
        None
    }

    pub(super) fn count(&mut self, value: &Scalar, path: &JsonPath) -> Option<u32> {
        match value {
            Scalar::Unsigned(0) => self.bad(path, "must be at least 1"),
            Scalar::Unsigned(n) => match u32::try_from(*n) {
                Ok(n) => return Some(n),
                Err(_) => self.bad(path, format!("{n} is too large; the most is {}", u32::MAX)),
            },
            Scalar::Float(value) if beyond_u64(*value) => {
                self.bad(path, format!("too large; the most is {}", u32::MAX))
            }
            Scalar::Negative(_) | Scalar::Float(_) => {
                self.bad(path, "must be a whole number, at least 1")
            }
            Scalar::Text(text) => self.bad(
                path,
                format!("{text:?}: write a number without quotes, e.g. 20"),
            ),
        }
        None
    }

    pub(super) fn size(&mut self, value: &Scalar, path: &JsonPath) -> Option<u64> {
        self.amount(value, path, parse_size, "bytes")
    }

    pub(super) fn rate(&mut self, value: &Scalar, path: &JsonPath) -> Option<u64> {
        self.amount(value, path, parse_rate, "bytes per second")
    }

    fn amount(
        &mut self,
        value: &Scalar,
        path: &JsonPath,
        parse: fn(&str) -> Result<u64, String>,
        unit: &str,
    ) -> Option<u64> {
        let amount = match value {
            Scalar::Unsigned(n) => Ok(*n),
            Scalar::Float(value) if beyond_u64(*value) => Err("too large".to_owned()),
            Scalar::Negative(_) | Scalar::Float(_) => Err(format!(
                "must be a whole number of {unit}, or a string such as \"10MiB\""
            )),
            Scalar::Text(text) => parse(text),
        };
        match amount {
            Ok(0) => self.bad(
                path,
                "must be greater than 0 (leave the key out for no limit)",
            ),
            Ok(n) => return Some(n),
            Err(message) => self.bad(path, message),
        }
        None
    }

    pub(super) fn cidrs(&mut self, raw: Option<&[String]>, path: &JsonPath) -> Vec<Cidr> {
        let mut cidrs = Vec::new();
        for (i, text) in raw.into_iter().flatten().enumerate() {
            match Cidr::parse(text) {
                Ok(cidr) => cidrs.push(cidr),
                Err(message) => self.bad(&path.index(i), message),
            }
        }
        cidrs
    }
}

/// A JSON integer too large for u64, which serde_json hands over as a float.
fn beyond_u64(value: f64) -> bool {
    value >= 18_446_744_073_709_551_616.0
}

/// `"a", "b" or "c"`.
fn or_list(names: &[String]) -> String {
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// `defined: "a", "b"` or `none is defined`, for "no such name" errors.
pub(super) fn listing(defined: &BTreeSet<&str>) -> String {
    if defined.is_empty() {
        return "none is defined".to_owned();
    }
    let mut names: Vec<String> = defined
        .iter()
        .take(MAX_NAMES_LISTED)
        .map(|name| format!("{name:?}"))
        .collect();
    if defined.len() > MAX_NAMES_LISTED {
        names.push("...".to_owned());
    }
    format!("defined: {}", names.join(", "))
}

/// `ftp.example.com:21` or `backend-1`: a name where an address belongs.
fn looks_like_host_name(text: &str) -> bool {
    let host = match text.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => text,
    };
    !host.is_empty()
        && host.bytes().any(|b| b.is_ascii_alphabetic())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(or_list(&[]), "");
        assert_eq!(or_list(&["\"a\"".to_owned()]), "\"a\"");
        assert_eq!(
            or_list(&["a".to_owned(), "b".to_owned(), "c".to_owned()]),
            "a, b or c"
        );
        let many: BTreeSet<&str> = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"].into();
        assert_eq!(
            listing(&many),
            "defined: \"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\", \"h\", \"i\", \"j\", ..."
        );
        assert!(looks_like_host_name("ftp.example.com:21"));
        assert!(looks_like_host_name("backend-1"));
        assert!(looks_like_host_name("localhost"));
        assert!(!looks_like_host_name("10.0.0.1:21"));
        assert!(!looks_like_host_name("[::1]:21"));
        assert!(!looks_like_host_name("::1"));
        assert!(!looks_like_host_name("fe80::1"));
        assert!(!looks_like_host_name(""));
    }
}
