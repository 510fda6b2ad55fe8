//! From text to [`Policy`]: serde_json into a [`Value`], sifted by `schema.rs` into the raw
//! model of `file.rs`, then validation.
//!
//! Every problem is collected instead of stopping at the first, and each one names the
//! offending key or value by path and by line:column, so `ftpgate --check` can list them all
//! at once: unknown keys and wrong JSON types (from [`schema::sift`]), repeated keys, and
//! whatever validation finds in the rest. Only text that is not JSON at all stops the load
//! by itself, with serde_json's error placed where the text goes wrong.
//!
//! A typo or an unsupported control must never be silently ignored: unknown keys are refused
//! by [`schema::sift`], repeated keys by [`locate::duplicate_keys`], names must refer to
//! something that exists, and keys this build does not enforce yet are refused by
//! [`unsupported_yet`].
//!
//! This file is the driver: the entry points, the one error of a text that is not JSON, the
//! keys refused as not supported yet, and [`Checker::policy`], which validates the sections
//! in turn. The rest of the loader, by the part of the file each one checks:
//!
//! - `checker.rs`: the [`Checker`], which collects the errors and places them;
//! - `values.rs`: the checks of single values every section shares (names, choices from a
//!   table of spellings, paths, addresses, seconds, counts, sizes, rates, networks);
//! - `listeners.rs`: `workers`, `drain_timeout`, `user`, `listeners`, `passive` and `tls`;
//! - `backends.rs`: `backends`;
//! - `roles.rs`: `roles`;
//! - `users.rs`: `users`;
//! - `access.rs`: `access` (and a user's source-address rules), the prefix table, `routing`;
//! - `defaults.rs`: `defaults` (and a user's timeouts);
//! - `audit.rs`: `audit`;
//! - `metrics.rs`: `metrics`.

mod access;
mod audit;
mod backends;
mod checker;
mod defaults;
mod listeners;
mod metrics;
mod roles;
mod users;
mod values;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::limits::{MAX_POLICY_BYTES, MAX_PREFIX_TABLE_BYTES};
use crate::policy::access::{AccessRules, GeoTable};
use crate::policy::file::{Object, OneOrMany, PolicyFile};
use crate::policy::locate::{self, JsonPath, Target};
use crate::policy::perms::{self, FileUse};
use crate::policy::schema;
use crate::policy::{Policy, PolicyError};

use access::RawRules;
use checker::{Checker, positioned};

/// How the loader reads the files a policy names (the prefix table).
pub type ReadFile<'r> = &'r dyn Fn(&Path) -> io::Result<Vec<u8>>;

/// Reads and validates the policy file at `path`, and the prefix table it names.
///
/// The file must be a regular file of at most [`MAX_POLICY_BYTES`], in UTF-8, and pass the
/// owner and mode checks of `perms.rs` ([`perms::check_path`]): neither its group nor other
/// users may write it or its directory. Problems reading it are one error at 0:0 with the OS
/// error; like every error, it does not name the file (the caller does, as in
/// `FILE:0:0: message`); a permission problem names the path at fault, which may be the
/// target of a symbolic link. The prefix table is read by [`read_named_file`]; its problems
/// are errors at `access.prefix_table`. The files and directories the policy names (keys,
/// certificates, the prefix table, the filecopy directory) are checked too, each error at
/// the key that names the path.
pub fn load_policy(path: &Path) -> Result<Policy, Vec<PolicyError>> {
    let at_zero = |message: String| {
        vec![PolicyError {
            line: 0,
            column: 0,
            message,
        }]
    };
    let metadata = std::fs::metadata(path).map_err(|err| at_zero(err.to_string()))?;
    if !metadata.is_file() {
        return Err(at_zero("not a regular file".to_owned()));
    }
    // SECURITY: a policy someone else can rewrite is no policy; refuse it as sshd refuses
    // an authorized_keys file others can write (StrictModes).
    perms::check_path(path, FileUse::Trusted).map_err(at_zero)?;
    let too_large = || {
        at_zero(format!(
            "the file is larger than {MAX_POLICY_BYTES} bytes, the most a policy may have"
        ))
    };
    if metadata.len() > MAX_POLICY_BYTES {
        return Err(too_large());
    }
    let file = File::open(path).map_err(|err| at_zero(err.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| at_zero(err.to_string()))?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(too_large());
    }
    match String::from_utf8(bytes) {
        Ok(text) => parse_checked(&text, &read_named_file, Some(&perms::check_path)),
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let bytes = err.into_bytes();
            let prefix = bytes
                .get(..valid)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("");
            let (line, column) = locate::line_col(prefix, prefix.len());
            Err(vec![PolicyError {
                line,
                column,
                message: "the file is not valid UTF-8 here".to_owned(),
            }])
        }
    }
}

/// Reads a file the policy names (the prefix table), for [`load_policy`]: a regular file,
/// read up to one byte past [`MAX_PREFIX_TABLE_BYTES`] so that the loader can tell it is too
/// large. Its owner and mode are checked afterwards with the other named files
/// ([`perms::named_files`]).
pub fn read_named_file(path: &Path) -> io::Result<Vec<u8>> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_PREFIX_TABLE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Parses and validates a policy document without touching the file system: a policy that
/// names a prefix table is refused (use [`parse_policy_with`] or [`load_policy`]). On
/// failure, every problem found, in file order.
pub fn parse_policy(text: &str) -> Result<Policy, Vec<PolicyError>> {
    parse_policy_with(text, &|_: &Path| {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this caller reads no files (parse_policy); load the policy with load_policy",
        ))
    })
}

/// Parses and validates a policy document, reading the files it names (the prefix table)
/// with `read_file`. On failure, every problem found, in file order.
pub fn parse_policy_with(text: &str, read_file: ReadFile<'_>) -> Result<Policy, Vec<PolicyError>> {
    parse_checked(text, read_file, None)
}

/// How the loader checks the owner and mode of a path the policy names ([`perms::check_path`]
/// for [`load_policy`]).
type CheckPath<'r> = &'r dyn Fn(&Path, FileUse) -> Result<(), String>;

/// [`parse_policy_with`], and with `check_path`, the owner and mode checks of every path the
/// policy names, each error placed at the key that names the path.
fn parse_checked(
    text: &str,
    read_file: ReadFile<'_>,
    check_path: Option<CheckPath<'_>>,
) -> Result<Policy, Vec<PolicyError>> {
    // Editors on some systems start UTF-8 files with a byte-order mark; positions are
    // counted after it, as those editors show them.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut document = match serde_json::from_str::<Value>(text) {
        Ok(document) => document,
        Err(err) => return Err(vec![not_json(text, &err)]),
    };
    let sifted = schema::sift(&mut document);
    let mut check = Checker::new(text, sifted);
    check.duplicates();
    let raw = match Object::<PolicyFile>::deserialize(document) {
        Ok(Object(raw)) => raw,
        Err(err) => {
            // A document that is not an object: the sifting has taken out everything else
            // serde refuses. Were anything else ever to get here, it is still reported.
            check.structural(&JsonPath::root(), Target::Value, err.to_string());
            return Err(check.errors(Vec::new()));
        }
    };
    let policy = check.policy(&raw, read_file);
    if let Some(check_path) = check_path {
        for (path, file, use_) in perms::named_files(&policy) {
            if let Err(message) = check_path(file, use_) {
                check.bad_key(&path, message);
            }
        }
    }
    check.finish(policy, unsupported_yet(&raw))
}

/// Deepest nesting serde_json parses into a [`Value`] (its recursion limit).
const SERDE_JSON_MAX_DEPTH: usize = 128;

/// The one error of a text that is not JSON: serde_json's.
///
/// serde_json also refuses to nest deeper than its recursion limit. The raw model never
/// nests that deep, so for such a text the error of parsing straight into the raw model is
/// given instead: it names the first place where the nesting goes wrong.
fn not_json(text: &str, err: &serde_json::Error) -> PolicyError {
    if locate::nesting_depth(text) >= SERDE_JSON_MAX_DEPTH {
        if let Err(typed) = serde_json::from_str::<Object<PolicyFile>>(text) {
            if typed.is_data() {
                return serde_error(text, &typed);
            }
        }
    }
    serde_error(text, err)
}

/// A serde_json error, placed at the start of the token it concerns and prefixed with that
/// token's path.
fn serde_error(text: &str, err: &serde_json::Error) -> PolicyError {
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    // serde_json's column counts bytes; `after` is the byte offset it leads to.
    let after = locate::line_start(text, err.line()).map(|start| start + err.column());
    if err.is_data() {
        if let Some((start, path)) = after.and_then(|after| locate::token_at(text, after)) {
            let (line, column) = locate::line_col(text, start);
            let message = if path.is_root() {
                message.to_owned()
            } else {
                format!("{path}: {message}")
            };
            return positioned(line, column, &message);
        }
    }
    let (line, column) = match after {
        _ if err.is_eof() => locate::line_col(text, text.len()),
        // The offending character is the one at serde_json's 1-based column.
        Some(after) if err.column() > 0 => locate::line_col(text, after.saturating_sub(1)),
        Some(after) => locate::line_col(text, after),
        None => (err.line(), err.column().max(1)),
    };
    positioned(line, column, message)
}

/// A key that this build recognises but does not enforce yet, found in the file.
struct Unsupported {
    path: JsonPath,
    target: Target,
    hint: &'static str,
}

/// Every key the parser recognises but this build does not enforce yet.
///
/// SECURITY: a control that is accepted but not enforced lets an operator believe a
/// restriction is in place when it is not. So each of these is an error whenever it is
/// present with a value that asks for something (an empty list or `false` asks for
/// nothing). Remove entries here as the features land, and document them in ftpgate.json(5).
fn unsupported_yet(_raw: &PolicyFile) -> Vec<Unsupported> {
    // Every key of the v1 contract is implemented now. A key a later version documents
    // before it implements it is listed here (with the value that asks for something), so
    // that a policy never seems to enforce a control that is not there.
    Vec::new()
}

impl Checker<'_> {
    /// Validates the sections in turn, then what one section says about another.
    fn policy(&mut self, raw: &PolicyFile, read_file: ReadFile<'_>) -> Policy {
        let root = JsonPath::root();
        let workers = self.workers(raw.workers.as_ref(), &root.key("workers"));
        let drain_timeout =
            self.drain_timeout(raw.drain_timeout.as_ref(), &root.key("drain_timeout"));
        let user = self.run_as(raw.user.as_deref(), &root.key("user"));
        // A `tls` section with a wrong type is there, just wrong.
        let have_tls = raw.tls.is_some() || self.is_broken(&root.key("tls"));
        let listeners = self.listeners(raw.listeners.as_deref(), &root.key("listeners"), have_tls);
        let passive = self.passive(
            raw.passive.as_ref().map(|o| &o.0),
            &root.key("passive"),
            &listeners,
        );
        let tls = raw
            .tls
            .as_ref()
            .and_then(|Object(tls)| self.tls(tls, &root.key("tls")));
        if let Some(tls) = &tls {
            self.tls_against_listeners(tls, &listeners);
        }
        let backends = self.backends(raw.backends.as_ref(), &root.key("backends"));
        let roles = self.roles(raw.roles.as_ref(), &root.key("roles"));
        let defaults = self.defaults(raw.defaults.as_ref().map(|o| &o.0), &root.key("defaults"));
        let access_path = root.key("access");
        let raw_access = raw.access.as_ref().map(|Object(access)| access);
        let have_table = raw_access.is_some_and(|a| a.prefix_table.is_some())
            || self.is_broken(&access_path.key("prefix_table"));
        let access = match raw_access {
            Some(raw) => self.access_rules(RawRules::of_access(raw), &access_path, have_table),
            None => AccessRules::default(),
        };
        let table_path = access_path.key("prefix_table");
        let (prefix_table, geo) = match raw_access.and_then(|a| a.prefix_table.as_ref()) {
            Some(OneOrMany::One(text)) => {
                let (file, table) = self.prefix_table(text, &table_path, read_file);
                (file.into_iter().collect(), table.map(Arc::new))
            }
            // Several files (a country and an ASN database): asked in order, each for what
            // the ones before it do not know.
            Some(OneOrMany::Many(texts)) => {
                if texts.is_empty() {
                    self.bad(&table_path, "names no file");
                }
                let (mut files, mut tables, mut failed) = (Vec::new(), Vec::new(), false);
                for (i, text) in texts.iter().enumerate() {
                    let (file, table) = self.prefix_table(text, &table_path.index(i), read_file);
                    files.extend(file);
                    match table {
                        Some(table) => tables.push(table),
                        None => failed = true,
                    }
                }
                let geo = if failed {
                    None
                } else {
                    GeoTable::combine(tables).map(Arc::new)
                };
                (files, geo)
            }
            None => (Vec::new(), None),
        };
        let mut users = self.users(raw, &defaults, have_table);
        let routing = self.routing(raw.routing.as_ref().map(|o| &o.0), &backends);
        self.users_against_routing(&users, &routing);
        let audit = self.audit(raw.audit.as_ref().map(|o| &o.0), &root.key("audit"));
        let metrics_listen = self.metrics(raw.metrics.as_ref().map(|o| &o.0), &root.key("metrics"));
        // A user without its own `audit_digest` has the global one.
        for (name, crate::policy::file::Object(user)) in raw.users.iter().flatten() {
            if let (None, Some(loaded)) = (&user.audit_digest, users.get_mut(name)) {
                loaded.audit_digest = audit.digest;
            }
        }

        self.ports_against_listeners(&passive, &listeners);
        self.workers_against_ports(workers, &passive);

        Policy {
            workers,
            drain_timeout,
            user,
            listeners,
            passive,
            backends,
            roles,
            users,
            defaults,
            audit,
            routing,
            tls,
            access,
            geo,
            prefix_table,
            metrics_listen,
        }
    }
}

/// The policy built from `doc` and the messages validation found, before `unsupported_yet`
/// hides those about the keys it refuses: the checks behind these keys run anyway, so that
/// they are ready when the features land, and the policy tests see their findings here.
#[cfg(test)]
pub(super) fn validate_ignoring_unsupported(doc: &str) -> (Policy, Vec<String>) {
    let Object(raw) =
        serde_json::from_str::<Object<PolicyFile>>(doc).expect("well-formed test document");
    let mut check = Checker::new(doc, schema::Sifted::default());
    let policy = check.policy(&raw, &|_: &Path| Err(io::Error::other("no files")));
    (policy, check.messages())
}
