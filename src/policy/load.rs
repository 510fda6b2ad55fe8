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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::ftp::command::Verb;
use crate::limits::{
    DEFAULT_FAILED_LOGINS_PER_IP, DEFAULT_FILECOPY_RETENTION_DAYS, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LOGIN_TIMEOUT, DEFAULT_PASSIVE_PORTS, DEFAULT_SESSION_TIMEOUT, DEFAULT_SESSIONS_PER_IP,
    DEFAULT_SESSIONS_TOTAL, DEFAULT_SYSLOG_APP_NAME, DEFAULT_SYSLOG_FACILITY, MAX_POLICY_BYTES,
    MAX_TIMEOUT_SECONDS, MAX_WORKERS,
};

use super::cidr::Cidr;
use super::file::{
    AuditFile, BackendFile, DefaultsFile, ListenerFile, Object, PassiveFile, PolicyFile, RoleFile,
    RoutingFile, Scalar, TimeoutsFile, TlsFile, UserFile,
};
use super::locate::{self, JsonPath, Seg, Target};
use super::schema::{self, Sifted};
use super::units::{parse_rate, parse_size};
use super::{
    AuditMode, AuditPolicy, Backend, Balance, Defaults, FilecopyPolicy, GlobalLimits, Listener,
    Passive, Policy, PolicyError, Role, Routing, SyslogPolicy, Timeouts, TlsMode, TlsPolicy,
    TlsRequire, User, UserLimits, VerbSet, Workers,
};

/// RFC 5424 limit on APP-NAME.
const MAX_APP_NAME_LEN: usize = 48;
/// How many defined names an "unknown name" error lists before "...".
const MAX_NAMES_LISTED: usize = 10;

const TLS_MODES: &[(&str, TlsMode)] = &[
    ("none", TlsMode::None),
    ("explicit", TlsMode::Explicit),
    ("implicit", TlsMode::Implicit),
];
const TLS_REQUIRES: &[(&str, TlsRequire)] = &[
    ("none", TlsRequire::None),
    ("login", TlsRequire::Login),
    ("all", TlsRequire::All),
];
const BALANCES: &[(&str, Balance)] = &[
    ("round-robin", Balance::RoundRobin),
    ("first-available", Balance::FirstAvailable),
];
const AUDIT_MODES: &[(&str, AuditMode)] = &[
    ("monitor", AuditMode::Monitor),
    ("filecopy", AuditMode::Filecopy),
];
const SYSLOG_FACILITIES: &[(&str, ())] = &[
    ("kern", ()),
    ("user", ()),
    ("mail", ()),
    ("daemon", ()),
    ("auth", ()),
    ("syslog", ()),
    ("lpr", ()),
    ("news", ()),
    ("uucp", ()),
    ("cron", ()),
    ("authpriv", ()),
    ("ftp", ()),
    ("local0", ()),
    ("local1", ()),
    ("local2", ()),
    ("local3", ()),
    ("local4", ()),
    ("local5", ()),
    ("local6", ()),
    ("local7", ()),
];

fn lookup<T: Copy>(table: &[(&str, T)], text: &str) -> Option<T> {
    table
        .iter()
        .find(|(name, _)| *name == text)
        .map(|&(_, value)| value)
}

/// Reads and validates the policy file at `path`.
///
/// The file must be a regular file of at most [`MAX_POLICY_BYTES`], not writable by other
/// users, in UTF-8. Problems reading it are one error at 0:0 with the OS error; like every
/// error, it does not name the file (the caller does, as in `FILE:0:0: message`).
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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        // SECURITY: a policy anyone can rewrite is no policy; refuse it as sshd refuses a
        // world-writable authorized_keys.
        if mode & 0o002 != 0 {
            return Err(at_zero(format!(
                "the file is writable by every user (mode {:04o}); run chmod o-w on it",
                mode & 0o7777
            )));
        }
    }
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
        Ok(text) => parse_policy(&text),
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

/// Parses and validates a policy document. On failure, every problem found, in file order.
pub fn parse_policy(text: &str) -> Result<Policy, Vec<PolicyError>> {
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
    let policy = check.policy(&raw);
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

/// A finished error. Control characters from the file are escaped so that `--check` output
/// cannot drive the operator's terminal.
fn positioned(line: usize, column: usize, message: &str) -> PolicyError {
    let mut clean = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            clean.extend(c.escape_debug());
        } else {
            clean.push(c);
        }
    }
    PolicyError {
        line,
        column,
        message: clean,
    }
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
fn unsupported_yet(raw: &PolicyFile) -> Vec<Unsupported> {
    let root = JsonPath::root();
    let mut found = Vec::new();
    let mut add = |path: JsonPath, target: Target, hint: &'static str| {
        found.push(Unsupported { path, target, hint });
    };
    let tls_on = |mode: &Option<String>| {
        mode.as_deref()
            .and_then(|m| lookup(TLS_MODES, m))
            .is_some_and(|m| m != TlsMode::None)
    };

    for (i, Object(listener)) in raw.listeners.iter().flatten().enumerate() {
        let path = root.key("listeners").index(i);
        if tls_on(&listener.tls) {
            add(path.key("tls"), Target::Value, "; use \"none\"");
        }
        let require = listener
            .require
            .as_deref()
            .and_then(|r| lookup(TLS_REQUIRES, r));
        if require.is_some_and(|r| r != TlsRequire::None) {
            add(path.key("require"), Target::Value, "; remove it");
        }
        if listener.proxy_protocol == Some(true) {
            add(path.key("proxy_protocol"), Target::Value, "; remove it");
        }
    }
    if raw.tls.is_some() {
        add(root.key("tls"), Target::Key, "; remove the section");
    }
    for (name, Object(backend)) in raw.backends.iter().flatten() {
        let path = root.key("backends").key(name);
        if tls_on(&backend.tls) {
            add(path.key("tls"), Target::Value, "; use \"none\"");
        }
        if backend.source_address.is_some() {
            add(path.key("source_address"), Target::Key, "; remove it");
        }
    }
    for (name, Object(user)) in raw.users.iter().flatten() {
        let path = root.key("users").key(name);
        if user
            .allow_from
            .as_ref()
            .is_some_and(|list| !list.is_empty())
        {
            add(path.key("allow_from"), Target::Key, "; remove it");
        }
        if user.deny_from.as_ref().is_some_and(|list| !list.is_empty()) {
            add(path.key("deny_from"), Target::Key, "; remove it");
        }
        if let Some(Object(limits)) = &user.limits {
            if limits.max_file_size.is_some() || limits.rate.is_some() || limits.sessions.is_some()
            {
                add(path.key("limits"), Target::Key, "; remove it");
            }
        }
    }
    if let Some(Object(routing)) = &raw.routing {
        if routing.user_at_host == Some(true) {
            add(
                root.key("routing").key("user_at_host"),
                Target::Value,
                "; remove it",
            );
        }
    }
    if let Some(Object(DefaultsFile {
        limits: Some(Object(limits)),
        ..
    })) = &raw.defaults
    {
        if limits.sessions_total.is_some()
            || limits.sessions_per_ip.is_some()
            || limits.failed_logins_per_ip.is_some()
        {
            add(
                root.key("defaults").key("limits"),
                Target::Key,
                "; remove it",
            );
        }
    }
    if let Some(Object(audit)) = &raw.audit {
        let path = root.key("audit");
        if audit.syslog.is_some() {
            add(path.key("syslog"), Target::Key, "; use \"file\"");
        }
        let mode = audit.mode.as_deref().and_then(|m| lookup(AUDIT_MODES, m));
        if mode == Some(AuditMode::Filecopy) {
            add(path.key("mode"), Target::Value, "; use \"monitor\"");
        }
        if audit.filecopy.is_some() {
            add(path.key("filecopy"), Target::Key, "; remove it");
        }
    }
    found
}

/// An error waiting for its position.
struct Pending {
    at: At,
    message: String,
}

enum At {
    Path(JsonPath, Target),
    Offset(usize),
}

/// Collects errors while the raw model is turned into a [`Policy`]. Each check reports what
/// it finds and returns a usable value anyway, so that later checks still run; the policy
/// built is thrown away if anything was reported.
struct Checker<'t> {
    text: &'t str,
    /// What validation found.
    pending: Vec<Pending>,
    /// What the sifting found (unknown keys, wrong JSON types): always reported.
    structural: Vec<Pending>,
    /// Where the sifting removed or replaced a wrong value: validation's complaints about
    /// these paths and anything under them are about the gap, not the file, and are dropped.
    broken: HashSet<Vec<Seg>>,
}

impl<'t> Checker<'t> {
    fn new(text: &'t str, sifted: Sifted) -> Checker<'t> {
        let structural = sifted
            .problems
            .into_iter()
            .map(|problem| Pending {
                at: At::Path(problem.path, problem.target),
                message: problem.message,
            })
            .collect();
        let broken = sifted
            .broken
            .iter()
            .map(|path| path.segments().to_vec())
            .collect();
        Checker {
            text,
            pending: Vec::new(),
            structural,
            broken,
        }
    }

    /// Whether the sifting removed or replaced the value at `path` or at one of its parents.
    fn is_broken(&self, path: &JsonPath) -> bool {
        let segments = path.segments();
        (0..=segments.len())
            .filter_map(|len| segments.get(..len))
            .any(|prefix| self.broken.contains(prefix))
    }

    /// An error that no later finding hides.
    fn structural(&mut self, path: &JsonPath, target: Target, message: String) {
        self.structural.push(Pending {
            at: At::Path(path.clone(), target),
            message,
        });
    }

    fn error(&mut self, path: &JsonPath, target: Target, message: String) {
        self.pending.push(Pending {
            at: At::Path(path.clone(), target),
            message,
        });
    }

    /// `path: message`, at the value.
    fn bad(&mut self, path: &JsonPath, message: impl fmt::Display) {
        self.error(path, Target::Value, format!("{path}: {message}"));
    }

    /// `path: message`, at the key.
    fn bad_key(&mut self, path: &JsonPath, message: impl fmt::Display) {
        self.error(path, Target::Key, format!("{path}: {message}"));
    }

    /// A required key is absent: reported on the object that should hold it.
    fn missing(&mut self, parent: &JsonPath, key: &str, example: &str) {
        let message = if parent.is_root() {
            format!("\"{key}\" is missing{example}")
        } else {
            format!("{parent}: \"{key}\" is missing{example}")
        };
        self.error(&parent.key(key), Target::Key, message);
    }

    /// The policy, or every error: those reported so far and the unsupported keys.
    fn finish(
        self,
        policy: Policy,
        unsupported: Vec<Unsupported>,
    ) -> Result<Policy, Vec<PolicyError>> {
        if self.pending.is_empty() && self.structural.is_empty() && unsupported.is_empty() {
            return Ok(policy);
        }
        Err(self.errors(unsupported))
    }

    /// Every error, placed and in file order. Validation's complaints about an unsupported
    /// key or anything inside it are dropped: they would only send the operator after
    /// details of something that must go anyway. So are its complaints about values the
    /// sifting took out (see `broken`).
    fn errors(mut self, unsupported: Vec<Unsupported>) -> Vec<PolicyError> {
        let refused: HashSet<&[Seg]> = unsupported.iter().map(|u| u.path.segments()).collect();
        let pending = std::mem::take(&mut self.pending);
        self.pending = pending
            .into_iter()
            .filter(|pending| match &pending.at {
                At::Path(path, _) => {
                    let segments = path.segments();
                    let under_refused = (0..=segments.len())
                        .filter_map(|len| segments.get(..len))
                        .any(|prefix| refused.contains(prefix));
                    !under_refused && !self.is_broken(path)
                }
                At::Offset(_) => true,
            })
            .collect();
        let structural = std::mem::take(&mut self.structural);
        self.pending.extend(structural);
        for unsupported in unsupported {
            let message = format!(
                "{} is not supported by this version of ftpgate yet{}",
                unsupported.path, unsupported.hint
            );
            self.error(&unsupported.path, unsupported.target, message);
        }
        let queries: Vec<(&[Seg], Target)> = self
            .pending
            .iter()
            .filter_map(|pending| match &pending.at {
                At::Path(path, target) => Some((path.segments(), *target)),
                At::Offset(_) => None,
            })
            .collect();
        let mut located = locate::locate_offsets(self.text, &queries).into_iter();
        let offsets: Vec<usize> = self
            .pending
            .iter()
            .map(|pending| match pending.at {
                At::Path(..) => located.next().flatten().unwrap_or(0),
                At::Offset(offset) => offset,
            })
            .collect();
        let positions = locate::line_cols(self.text, &offsets);
        let mut errors: Vec<PolicyError> = self
            .pending
            .iter()
            .zip(positions)
            .map(|(pending, (line, column))| positioned(line, column, &pending.message))
            .collect();
        errors.sort_by_key(|err| (err.line, err.column));
        errors.dedup();
        errors
    }

    /// Repeated keys: serde_json would keep the last one of a map without a word.
    fn duplicates(&mut self) {
        let duplicates = locate::duplicate_keys(self.text);
        let firsts: Vec<usize> = duplicates.iter().map(|dup| dup.first).collect();
        let positions = locate::line_cols(self.text, &firsts);
        for (dup, (line, column)) in duplicates.into_iter().zip(positions) {
            self.pending.push(Pending {
                at: At::Offset(dup.again),
                message: format!(
                    "{} is defined twice (first at line {line}, column {column})",
                    dup.path
                ),
            });
        }
    }

    fn policy(&mut self, raw: &PolicyFile) -> Policy {
        let root = JsonPath::root();
        let workers = self.workers(raw.workers.as_ref(), &root.key("workers"));
        // A `tls` section with a wrong type is there, just wrong.
        let have_tls = raw.tls.is_some() || self.is_broken(&root.key("tls"));
        let listeners = self.listeners(raw.listeners.as_deref(), &root.key("listeners"), have_tls);
        let passive = self.passive(raw.passive.as_ref().map(|o| &o.0), &root.key("passive"));
        let tls = raw
            .tls
            .as_ref()
            .and_then(|Object(tls)| self.tls(tls, &root.key("tls")));
        let backends = self.backends(raw.backends.as_ref(), &root.key("backends"));
        let roles = self.roles(raw.roles.as_ref(), &root.key("roles"));
        let defaults = self.defaults(raw.defaults.as_ref().map(|o| &o.0), &root.key("defaults"));
        let users = self.users(raw, &defaults);
        let routing = self.routing(raw.routing.as_ref().map(|o| &o.0), &backends);
        let audit = self.audit(raw.audit.as_ref().map(|o| &o.0), &root.key("audit"));

        self.ports_against_listeners(&passive, &listeners);
        if let Workers::Count(count) = workers {
            let (first, last) = passive.ports;
            let ports = usize::from(last.saturating_sub(first)) + 1;
            if count > ports {
                self.bad(
                    &root.key("workers"),
                    format!(
                        "{count} workers cannot share the {ports} passive ports of \
                         passive.ports: each worker needs at least one"
                    ),
                );
            }
        }

        Policy {
            workers,
            listeners,
            passive,
            backends,
            roles,
            users,
            defaults,
            audit,
            routing,
            tls,
        }
    }

    fn workers(&mut self, value: Option<&Scalar>, path: &JsonPath) -> Workers {
        match value {
            None => Workers::Auto,
            Some(Scalar::Text(text)) if text == "auto" => Workers::Auto,
            Some(Scalar::Unsigned(n)) if (1..=MAX_WORKERS as u64).contains(n) => {
                usize::try_from(*n).map_or(Workers::Auto, Workers::Count)
            }
            Some(_) => {
                self.bad(
                    path,
                    format!(
                        "must be \"auto\" or a number of worker processes from 1 to {MAX_WORKERS}"
                    ),
                );
                Workers::Auto
            }
        }
    }

    /// `have_certificate`: the file has a `tls` section, which TLS listeners need.
    fn listeners(
        &mut self,
        raw: Option<&[Object<ListenerFile>]>,
        path: &JsonPath,
        have_certificate: bool,
    ) -> Vec<Listener> {
        let mut listeners: Vec<Listener> = Vec::new();
        let Some(raw) = raw.filter(|list| !list.is_empty()) else {
            self.bad(
                path,
                "at least one listener is required, e.g. [{ \"address\": \"0.0.0.0:21\" }]",
            );
            return listeners;
        };
        let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
        for (i, Object(listener)) in raw.iter().enumerate() {
            let path = path.index(i);
            let tls = self.choice(listener.tls.as_ref(), &path.key("tls"), TLS_MODES);
            let require = self.choice(
                listener.require.as_ref(),
                &path.key("require"),
                TLS_REQUIRES,
            );
            if tls.is_some_and(|t| t != TlsMode::None) && !have_certificate {
                self.bad(
                    &path.key("tls"),
                    format!(
                        "{:?} needs the \"tls\" section (certificate and private_key)",
                        tls.unwrap_or_default().name()
                    ),
                );
            }
            let plain = listener.tls.is_none() || tls == Some(TlsMode::None);
            if plain && require.is_some_and(|r| r != TlsRequire::None) {
                self.bad(
                    &path.key("require"),
                    "requires TLS, but this listener has \"tls\": \"none\"",
                );
            }
            let Some(text) = &listener.address else {
                self.missing(&path, "address", " (e.g. \"0.0.0.0:21\")");
                continue;
            };
            let address_path = path.key("address");
            let Some(address) = self.socket_addr(text, &address_path, "\"0.0.0.0:21\"") else {
                continue;
            };
            if let Some(first) = seen.get(&address) {
                self.bad(
                    &address_path,
                    format!("{address} is already used by listeners[{first}]"),
                );
            }
            seen.entry(address).or_insert(i);
            listeners.push(Listener {
                address,
                tls: tls.unwrap_or_default(),
                require: require.unwrap_or_default(),
                proxy_protocol: listener.proxy_protocol.unwrap_or(false),
            });
        }
        listeners
    }

    fn ports_against_listeners(&mut self, passive: &Passive, listeners: &[Listener]) {
        let (first, last) = passive.ports;
        for listener in listeners {
            if (first..=last).contains(&listener.address.port()) {
                self.bad(
                    &JsonPath::root().key("passive").key("ports"),
                    format!(
                        "the range contains the port of listener {}",
                        listener.address
                    ),
                );
            }
        }
    }

    fn passive(&mut self, raw: Option<&PassiveFile>, path: &JsonPath) -> Passive {
        let mut passive = Passive {
            ports: DEFAULT_PASSIVE_PORTS,
            advertise: None,
        };
        let Some(raw) = raw else {
            return passive;
        };
        if let Some(text) = &raw.ports {
            if let Some(ports) = self.port_range(text, &path.key("ports")) {
                passive.ports = ports;
            }
        }
        if let Some(text) = &raw.advertise {
            let path = path.key("advertise");
            match self.ip(text, &path) {
                Some(IpAddr::V4(v4)) if v4.is_unspecified() => self.bad(
                    &path,
                    "0.0.0.0 cannot be advertised; name the address clients connect to",
                ),
                Some(IpAddr::V6(_)) => self.bad(
                    &path,
                    "must be an IPv4 address: it only goes into 227 replies to PASV \
                     (EPSV replies carry no address)",
                ),
                Some(ip) => passive.advertise = Some(ip),
                None => {}
            }
        }
        passive
    }

    fn port_range(&mut self, text: &str, path: &JsonPath) -> Option<(u16, u16)> {
        let number = |s: &str| {
            let s = s.trim_matches(' ');
            if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<u32>().ok()
        };
        let range = text
            .split_once('-')
            .and_then(|(first, last)| Some((number(first)?, number(last)?)));
        let Some((first, last)) = range else {
            self.bad(
                path,
                format!("{text:?} is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\""),
            );
            return None;
        };
        let (Ok(first), Ok(last)) = (u16::try_from(first), u16::try_from(last)) else {
            self.bad(path, format!("{text:?}: ports go from 1024 to 65535"));
            return None;
        };
        if first < 1024 {
            self.bad(
                path,
                format!("{text:?}: passive ports must be 1024 or higher (no privileged ports)"),
            );
            return None;
        }
        if first > last {
            self.bad(
                path,
                format!("{text:?}: the first port is higher than the last"),
            );
            return None;
        }
        Some((first, last))
    }

    fn tls(&mut self, raw: &TlsFile, path: &JsonPath) -> Option<TlsPolicy> {
        let certificate = self.required_path(raw.certificate.as_ref(), path, "certificate");
        let private_key = self.required_path(raw.private_key.as_ref(), path, "private_key");
        let require = self.choice(raw.require.as_ref(), &path.key("require"), TLS_REQUIRES);
        Some(TlsPolicy {
            certificate: certificate?,
            private_key: private_key?,
            require: require.unwrap_or_default(),
        })
    }

    fn backends(
        &mut self,
        raw: Option<&BTreeMap<String, Object<BackendFile>>>,
        path: &JsonPath,
    ) -> BTreeMap<String, Backend> {
        let mut backends = BTreeMap::new();
        for (name, Object(raw)) in raw.into_iter().flatten() {
            let path = path.key(name);
            self.name(&path, name, "backend");
            let mut servers: Vec<SocketAddr> = Vec::new();
            let mut seen: HashSet<SocketAddr> = HashSet::new();
            match &raw.servers {
                None => self.missing(&path, "servers", " (e.g. [\"10.0.0.11:21\"])"),
                Some(list) if list.is_empty() => {
                    self.bad(&path.key("servers"), "at least one server is required")
                }
                Some(list) => {
                    for (i, text) in list.iter().enumerate() {
                        let path = path.key("servers").index(i);
                        let Some(server) = self.socket_addr(text, &path, "\"10.0.0.11:21\"") else {
                            continue;
                        };
                        if !seen.insert(server) {
                            self.bad(&path, format!("{server} is listed twice"));
                        }
                        servers.push(server);
                    }
                }
            }
            let balance = self.choice(raw.balance.as_ref(), &path.key("balance"), BALANCES);
            let tls = self.choice(raw.tls.as_ref(), &path.key("tls"), TLS_MODES);
            let source_address = raw.source_address.as_ref().and_then(|text| {
                let path = path.key("source_address");
                let ip = self.ip(text, &path)?;
                if ip.is_unspecified() {
                    self.bad(
                        &path,
                        format!("{ip} pins nothing; leave source_address out"),
                    );
                    return None;
                }
                if let Some(server) = servers.iter().find(|s| s.is_ipv4() != ip.is_ipv4()) {
                    self.bad(
                        &path,
                        format!("{ip} cannot reach {server}: the address families differ"),
                    );
                }
                Some(ip)
            });
            backends.insert(
                name.clone(),
                Backend {
                    name: name.clone(),
                    servers,
                    balance: balance.unwrap_or_default(),
                    tls: tls.unwrap_or_default(),
                    source_address,
                },
            );
        }
        backends
    }

    fn roles(
        &mut self,
        raw: Option<&BTreeMap<String, Object<RoleFile>>>,
        path: &JsonPath,
    ) -> BTreeMap<String, Role> {
        let mut roles = BTreeMap::new();
        for (name, Object(raw)) in raw.into_iter().flatten() {
            let path = path.key(name);
            self.name(&path, name, "role");
            let mut allow = VerbSet::EMPTY;
            match &raw.allow {
                None => self.missing(
                    &path,
                    "allow",
                    " (the commands the role permits, e.g. [\"RETR\", \"LIST\"])",
                ),
                Some(list) => {
                    for (i, entry) in list.iter().enumerate() {
                        let path = path.key("allow").index(i);
                        self.allow_entry(entry, &path, &mut allow);
                    }
                }
            }
            roles.insert(
                name.clone(),
                Role {
                    name: name.clone(),
                    allow,
                },
            );
        }
        roles
    }

    fn allow_entry(&mut self, entry: &str, path: &JsonPath, allow: &mut VerbSet) {
        match Verb::from_name(entry.as_bytes()) {
            None => self.bad(
                path,
                format!("{entry:?} is not an FTP command ftpgate knows"),
            ),
            Some(verb) if verb.is_plumbing() => self.bad(
                path,
                format!(
                    "{} is protocol plumbing handled by ftpgate itself; remove it from the role",
                    verb.name()
                ),
            ),
            Some(verb) if allow.contains(verb) => {
                if entry.eq_ignore_ascii_case(verb.name()) {
                    self.bad(path, format!("{} is listed twice", verb.name()));
                } else {
                    self.bad(
                        path,
                        format!(
                            "{entry} is another name for {}, which is already listed",
                            verb.name()
                        ),
                    );
                }
            }
            Some(verb) => allow.insert(verb),
        }
    }

    fn defaults(&mut self, raw: Option<&DefaultsFile>, path: &JsonPath) -> Defaults {
        let builtin = Timeouts {
            login: DEFAULT_LOGIN_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
            session: DEFAULT_SESSION_TIMEOUT,
        };
        let mut limits = GlobalLimits {
            sessions_total: DEFAULT_SESSIONS_TOTAL,
            sessions_per_ip: DEFAULT_SESSIONS_PER_IP,
            failed_logins_per_ip: DEFAULT_FAILED_LOGINS_PER_IP,
        };
        let Some(raw) = raw else {
            return Defaults {
                timeouts: builtin,
                limits,
            };
        };
        let timeouts = self.timeouts(
            raw.timeouts.as_ref().map(|o| &o.0),
            &path.key("timeouts"),
            builtin,
        );
        if let Some(Object(raw)) = &raw.limits {
            let path = path.key("limits");
            let fields = [
                (
                    &raw.sessions_total,
                    "sessions_total",
                    &mut limits.sessions_total,
                ),
                (
                    &raw.sessions_per_ip,
                    "sessions_per_ip",
                    &mut limits.sessions_per_ip,
                ),
                (
                    &raw.failed_logins_per_ip,
                    "failed_logins_per_ip",
                    &mut limits.failed_logins_per_ip,
                ),
            ];
            for (value, key, slot) in fields {
                if let Some(n) = value.as_ref().and_then(|v| self.count(v, &path.key(key))) {
                    *slot = n;
                }
            }
        }
        Defaults { timeouts, limits }
    }

    fn timeouts(
        &mut self,
        raw: Option<&TimeoutsFile>,
        path: &JsonPath,
        fallback: Timeouts,
    ) -> Timeouts {
        let mut timeouts = fallback;
        let Some(raw) = raw else {
            return timeouts;
        };
        let fields = [
            (&raw.login, "login", &mut timeouts.login),
            (&raw.idle, "idle", &mut timeouts.idle),
            (&raw.session, "session", &mut timeouts.session),
        ];
        for (value, key, slot) in fields {
            if let Some(seconds) = value.as_ref().and_then(|v| self.seconds(v, &path.key(key))) {
                *slot = seconds;
            }
        }
        timeouts
    }

    fn users(&mut self, raw: &PolicyFile, defaults: &Defaults) -> BTreeMap<String, User> {
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
        let mut users = BTreeMap::new();
        for (name, Object(user)) in raw.users.iter().flatten() {
            let path = root.key("users").key(name);
            users.insert(
                name.clone(),
                self.user(name, user, &path, &role_names, &backend_names, defaults),
            );
        }
        users
    }

    fn user(
        &mut self,
        name: &str,
        raw: &UserFile,
        path: &JsonPath,
        role_names: &BTreeSet<&str>,
        backend_names: &BTreeSet<&str>,
        defaults: &Defaults,
    ) -> User {
        self.name(path, name, "user");
        let role = self.reference(raw.role.as_ref(), path, "role", "roles", role_names);
        let backend = self.reference(
            raw.backend.as_ref(),
            path,
            "backend",
            "backends",
            backend_names,
        );
        let allow_from = self.cidrs(raw.allow_from.as_deref(), &path.key("allow_from"));
        let deny_from = self.cidrs(raw.deny_from.as_deref(), &path.key("deny_from"));
        let mut limits = UserLimits::default();
        if let Some(Object(raw)) = &raw.limits {
            let path = path.key("limits");
            if let Some(value) = &raw.max_file_size {
                limits.max_file_size = self.size(value, &path.key("max_file_size"));
            }
            if let Some(value) = &raw.rate {
                limits.rate = self.rate(value, &path.key("rate"));
            }
            if let Some(value) = &raw.sessions {
                limits.sessions = self.count(value, &path.key("sessions"));
            }
        }
        let timeouts = self.timeouts(
            raw.timeouts.as_ref().map(|o| &o.0),
            &path.key("timeouts"),
            defaults.timeouts,
        );
        User {
            name: name.to_owned(),
            role,
            backend,
            allow_from,
            deny_from,
            limits,
            timeouts,
        }
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

    fn cidrs(&mut self, raw: Option<&[String]>, path: &JsonPath) -> Vec<Cidr> {
        let mut cidrs = Vec::new();
        for (i, text) in raw.into_iter().flatten().enumerate() {
            match Cidr::parse(text) {
                Ok(cidr) => cidrs.push(cidr),
                Err(message) => self.bad(&path.index(i), message),
            }
        }
        cidrs
    }

    fn routing(
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

    fn audit(&mut self, raw: Option<&AuditFile>, path: &JsonPath) -> AuditPolicy {
        let mut audit = AuditPolicy {
            file: None,
            syslog: None,
            mode: AuditMode::Monitor,
            filecopy: None,
        };
        let Some(raw) = raw else {
            return audit;
        };
        if let Some(text) = &raw.file {
            audit.file = self.absolute_path(text, &path.key("file"));
        }
        if let Some(Object(syslog)) = &raw.syslog {
            let path = path.key("syslog");
            let facility = match &syslog.facility {
                Some(facility) => {
                    self.choice(Some(facility), &path.key("facility"), SYSLOG_FACILITIES);
                    facility.clone()
                }
                None => DEFAULT_SYSLOG_FACILITY.to_owned(),
            };
            let app_name = match &syslog.app_name {
                Some(name) => {
                    let printable = name.bytes().all(|b| b.is_ascii_graphic());
                    if name.is_empty() || name.len() > MAX_APP_NAME_LEN || !printable {
                        self.bad(
                            &path.key("app_name"),
                            format!(
                                "{name:?}: use 1 to {MAX_APP_NAME_LEN} printable ASCII \
                                 characters without spaces (RFC 5424 APP-NAME)"
                            ),
                        );
                    }
                    name.clone()
                }
                None => DEFAULT_SYSLOG_APP_NAME.to_owned(),
            };
            audit.syslog = Some(SyslogPolicy { facility, app_name });
        }
        let mode_path = path.key("mode");
        audit.mode = self
            .choice(raw.mode.as_ref(), &mode_path, AUDIT_MODES)
            .unwrap_or_default();
        let mut filecopy = None;
        if let Some(Object(raw_copy)) = &raw.filecopy {
            let path = path.key("filecopy");
            let directory = raw_copy
                .directory
                .as_ref()
                .and_then(|text| self.absolute_path(text, &path.key("directory")));
            let retention_days = raw_copy
                .retention_days
                .as_ref()
                .and_then(|value| self.count(value, &path.key("retention_days")))
                .unwrap_or(DEFAULT_FILECOPY_RETENTION_DAYS);
            if audit.mode != AuditMode::Filecopy && !self.is_broken(&mode_path) {
                self.bad_key(&path, "has no effect unless audit.mode is \"filecopy\"");
            }
            filecopy = directory.map(|directory| FilecopyPolicy {
                directory,
                retention_days,
            });
            if raw_copy.directory.is_none() && audit.mode == AuditMode::Filecopy {
                self.missing(&path, "directory", " (where the copies go)");
            }
        } else if audit.mode == AuditMode::Filecopy && !self.is_broken(&path.key("filecopy")) {
            self.bad(&mode_path, "\"filecopy\" needs audit.filecopy.directory");
        }
        if audit.mode == AuditMode::Filecopy {
            audit.filecopy = filecopy;
        }
        audit
    }

    /// A name used as a key of `users`, `roles`, `backends` or `routing.targets`.
    fn name(&mut self, path: &JsonPath, name: &str, what: &str) {
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

    fn choice<T: Copy>(
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

    fn required_path(
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

    fn absolute_path(&mut self, text: &str, path: &JsonPath) -> Option<PathBuf> {
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

    fn socket_addr(&mut self, text: &str, path: &JsonPath, example: &str) -> Option<SocketAddr> {
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

    fn ip(&mut self, text: &str, path: &JsonPath) -> Option<IpAddr> {
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

    fn seconds(&mut self, value: &Scalar, path: &JsonPath) -> Option<u64> {
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

    fn count(&mut self, value: &Scalar, path: &JsonPath) -> Option<u32> {
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

    fn size(&mut self, value: &Scalar, path: &JsonPath) -> Option<u64> {
        self.amount(value, path, parse_size, "bytes")
    }

    fn rate(&mut self, value: &Scalar, path: &JsonPath) -> Option<u64> {
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
fn listing(defined: &BTreeSet<&str>) -> String {
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

/// The checks behind keys that `unsupported_yet` refuses today: they run anyway (so they are
/// ready when the features land) but their findings are hidden behind "not supported", so
/// they are tested here, before that filter.
#[cfg(test)]
mod tests {
    use super::*;

    /// The policy built and the messages found, ignoring `unsupported_yet`.
    fn validate(doc: &str) -> (Policy, Vec<String>) {
        let Object(raw) =
            serde_json::from_str::<Object<PolicyFile>>(doc).expect("well-formed test document");
        let mut check = Checker::new(doc, Sifted::default());
        let policy = check.policy(&raw);
        (
            policy,
            check.pending.into_iter().map(|p| p.message).collect(),
        )
    }

    fn with(extra: &str) -> String {
        format!(
            r#"{{ "listeners": [{{ "address": "0.0.0.0:21" }}],
  "backends": {{ "b": {{ "servers": ["10.0.0.1:21"] }} }},
  "roles": {{ "r": {{ "allow": ["RETR"] }} }},
  "users": {{ "u": {{ "role": "r", "backend": "b" {extra} }} }} }}"#
        )
    }

    #[test]
    fn user_limits_and_networks() {
        let (policy, messages) = validate(&with(
            r#", "limits": { "max_file_size": "2GiB", "rate": "5MiB/s", "sessions": 4 },
                 "allow_from": ["198.51.100.0/24", "::ffff:0:0/96"], "deny_from": ["198.51.100.7"]"#,
        ));
        assert_eq!(messages, Vec::<String>::new());
        let user = &policy.users["u"];
        assert_eq!(
            user.limits,
            UserLimits {
                max_file_size: Some(2 << 30),
                rate: Some(5 << 20),
                sessions: Some(4)
            }
        );
        assert_eq!(user.allow_from.len(), 2);
        assert!(user.allow_from[0].contains("198.51.100.9".parse().unwrap()));
        assert_eq!(user.deny_from[0].to_string(), "198.51.100.7/32");
        let summary = policy.summary();
        assert!(
            summary.contains(
                "from 198.51.100.0/24 ::ffff:0.0.0.0/96, not from 198.51.100.7/32, files up to \
             2147483648 bytes, 5242880 bytes/s, 4 sessions"
            ),
            "{summary}"
        );

        let (policy, messages) = validate(&with(
            r#", "limits": { "max_file_size": 1000, "rate": 10 }"#,
        ));
        assert_eq!(messages, Vec::<String>::new());
        assert_eq!(policy.users["u"].limits.max_file_size, Some(1000));
        assert_eq!(policy.users["u"].limits.rate, Some(10));

        let (_, messages) = validate(&with(
            r#", "limits": { "max_file_size": "2GB/s", "rate": "5MiB", "sessions": 0 },
                 "allow_from": ["10.0.0.1/8", "bogus"], "deny_from": ["::/129"]"#,
        ));
        assert_eq!(
            messages,
            [
                "users.u.allow_from[0]: \"10.0.0.1/8\" has host bits set; did you mean \"10.0.0.0/8\"?",
                "users.u.allow_from[1]: \"bogus\" is not an address or network (e.g. \"198.51.100.0/24\", \"2001:db8::/32\", \"192.0.2.7\")",
                "users.u.deny_from[0]: \"::/129\": the prefix length must be a number from 0 to 128",
                "users.u.limits.max_file_size: unknown unit \"GB/s\" in \"2GB/s\"; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB",
                "users.u.limits.rate: \"5MiB\" is not a rate: write bytes per second with \"/s\", e.g. \"5MiB/s\"",
                "users.u.limits.sessions: must be at least 1",
            ]
        );
        let (_, messages) = validate(&with(
            r#", "limits": { "max_file_size": 0, "rate": -1, "sessions": 4294967296 }"#,
        ));
        assert_eq!(
            messages,
            [
                "users.u.limits.max_file_size: must be greater than 0 (leave the key out for no limit)",
                "users.u.limits.rate: must be a whole number of bytes per second, or a string such as \"10MiB\"",
                "users.u.limits.sessions: 4294967296 is too large; the most is 4294967295",
            ]
        );
        let (_, messages) = validate(&with(
            r#", "limits": { "max_file_size": "0MiB", "sessions": "4" }"#,
        ));
        assert_eq!(
            messages,
            [
                "users.u.limits.max_file_size: must be greater than 0 (leave the key out for no limit)",
                "users.u.limits.sessions: \"4\": write a number without quotes, e.g. 20",
            ]
        );
    }

    #[test]
    fn global_limits() {
        let doc = with("").replacen(
            "{ \"listeners\"",
            r#"{ "defaults": { "limits": { "sessions_total": 5, "sessions_per_ip": 2, "failed_logins_per_ip": 3 } }, "listeners""#,
            1,
        );
        let (policy, messages) = validate(&doc);
        assert_eq!(messages, Vec::<String>::new());
        assert_eq!(
            policy.defaults.limits,
            GlobalLimits {
                sessions_total: 5,
                sessions_per_ip: 2,
                failed_logins_per_ip: 3
            }
        );
        let doc = with("").replacen(
            "{ \"listeners\"",
            r#"{ "defaults": { "limits": { "sessions_total": 0, "sessions_per_ip": 1.5 } }, "listeners""#,
            1,
        );
        assert_eq!(
            validate(&doc).1,
            [
                "defaults.limits.sessions_total: must be at least 1",
                "defaults.limits.sessions_per_ip: must be a whole number, at least 1",
            ]
        );
    }

    #[test]
    fn tls_section_and_listener_tls() {
        let doc = with("").replacen(
            "{ \"listeners\": [{ \"address\": \"0.0.0.0:21\" }]",
            r#"{ "tls": { "certificate": "/etc/c.pem", "private_key": "/etc/k.pem", "require": "login" },
                "listeners": [{ "address": "0.0.0.0:21", "tls": "explicit", "require": "all" },
                              { "address": "0.0.0.0:990", "tls": "implicit", "proxy_protocol": true }]"#,
            1,
        );
        let (policy, messages) = validate(&doc);
        assert_eq!(messages, Vec::<String>::new());
        assert_eq!(
            policy.tls,
            Some(TlsPolicy {
                certificate: PathBuf::from("/etc/c.pem"),
                private_key: PathBuf::from("/etc/k.pem"),
                require: TlsRequire::Login,
            })
        );
        assert_eq!(policy.listeners[0].tls, TlsMode::Explicit);
        assert_eq!(policy.listeners[0].require, TlsRequire::All);
        assert_eq!(policy.listeners[1].tls, TlsMode::Implicit);
        assert!(policy.listeners[1].proxy_protocol);
        let summary = policy.summary();
        assert!(
            summary.contains("  0.0.0.0:21 tls explicit, require all\n"),
            "{summary}"
        );
        assert!(
            summary.contains("  0.0.0.0:990 tls implicit, PROXY protocol\n"),
            "{summary}"
        );
        assert!(summary.contains("tls: certificate /etc/c.pem, key /etc/k.pem, require login\n"));

        let doc = with("").replacen(
            "{ \"listeners\": [{ \"address\": \"0.0.0.0:21\" }]",
            r#"{ "tls": { "certificate": "c.pem" },
                "listeners": [{ "address": "0.0.0.0:21", "require": "login" }]"#,
            1,
        );
        assert_eq!(
            validate(&doc).1,
            [
                "listeners[0].require: requires TLS, but this listener has \"tls\": \"none\"",
                "tls.certificate: \"c.pem\" must be an absolute path (starting with /)",
                "tls: \"private_key\" is missing",
            ]
        );
        let doc = with("").replacen(
            "\"0.0.0.0:21\" }",
            "\"0.0.0.0:21\", \"tls\": \"implicit\" }",
            1,
        );
        assert_eq!(
            validate(&doc).1,
            [
                "listeners[0].tls: \"implicit\" needs the \"tls\" section (certificate and private_key)"
            ]
        );
    }

    #[test]
    fn backend_tls_and_source_address() {
        let doc = with("").replacen(
            r#""servers": ["10.0.0.1:21"]"#,
            r#""servers": ["10.0.0.1:21"], "tls": "implicit", "source_address": "10.0.0.2""#,
            1,
        );
        let (policy, messages) = validate(&doc);
        assert_eq!(messages, Vec::<String>::new());
        assert_eq!(policy.backends["b"].tls, TlsMode::Implicit);
        assert_eq!(
            policy.backends["b"].source_address,
            Some("10.0.0.2".parse().unwrap())
        );
        assert!(
            policy
                .summary()
                .contains("  b: 10.0.0.1:21 (round-robin, tls implicit, from 10.0.0.2)\n")
        );

        for (source, message) in [
            (
                "\"2001:db8::2\"",
                "backends.b.source_address: 2001:db8::2 cannot reach 10.0.0.1:21: the address families differ",
            ),
            (
                "\"0.0.0.0\"",
                "backends.b.source_address: 0.0.0.0 pins nothing; leave source_address out",
            ),
            (
                "\"gw.local\"",
                "backends.b.source_address: \"gw.local\": use an IP address; ftpgate does not resolve names",
            ),
        ] {
            let doc = with("").replacen(
                r#""servers": ["10.0.0.1:21"]"#,
                &format!(r#""servers": ["10.0.0.1:21"], "source_address": {source}"#),
                1,
            );
            assert_eq!(validate(&doc).1, [message]);
        }
    }

    #[test]
    fn audit_sinks_and_filecopy() {
        let doc = with("").replacen(
            "{ \"listeners\"",
            r#"{ "audit": { "syslog": { "facility": "local3", "app_name": "gw1" }, "mode": "filecopy",
                 "filecopy": { "directory": "/var/lib/copies", "retention_days": 30 } }, "listeners""#,
            1,
        );
        let (policy, messages) = validate(&doc);
        assert_eq!(messages, Vec::<String>::new());
        assert_eq!(
            policy.audit,
            AuditPolicy {
                file: None,
                syslog: Some(SyslogPolicy {
                    facility: "local3".to_owned(),
                    app_name: "gw1".to_owned()
                }),
                mode: AuditMode::Filecopy,
                filecopy: Some(FilecopyPolicy {
                    directory: PathBuf::from("/var/lib/copies"),
                    retention_days: 30
                }),
            }
        );
        let summary = policy.summary();
        assert!(summary.contains("audit: filecopy to syslog (facility local3, app-name gw1)\n"));
        assert!(summary.contains("  copies in /var/lib/copies, kept 30 days\n"));

        let doc = with("").replacen(
            "{ \"listeners\"",
            r#"{ "audit": { "syslog": {}, "mode": "filecopy", "filecopy": {} }, "listeners""#,
            1,
        );
        let (policy, messages) = validate(&doc);
        assert_eq!(
            messages,
            ["audit.filecopy: \"directory\" is missing (where the copies go)"]
        );
        assert_eq!(
            policy.audit.syslog,
            Some(SyslogPolicy {
                facility: DEFAULT_SYSLOG_FACILITY.to_owned(),
                app_name: DEFAULT_SYSLOG_APP_NAME.to_owned()
            })
        );

        for (audit, message) in [
            (
                r#"{ "mode": "filecopy" }"#,
                "audit.mode: \"filecopy\" needs audit.filecopy.directory",
            ),
            (
                r#"{ "filecopy": { "directory": "/x" } }"#,
                "audit.filecopy: has no effect unless audit.mode is \"filecopy\"",
            ),
            (
                r#"{ "syslog": { "facility": "local8" } }"#,
                "audit.syslog.facility: unknown value \"local8\"; expected \"kern\", \"user\", \"mail\", \"daemon\", \"auth\", \"syslog\", \"lpr\", \"news\", \"uucp\", \"cron\", \"authpriv\", \"ftp\", \"local0\", \"local1\", \"local2\", \"local3\", \"local4\", \"local5\", \"local6\" or \"local7\"",
            ),
            (
                r#"{ "syslog": { "app_name": "ftp gate" } }"#,
                "audit.syslog.app_name: \"ftp gate\": use 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)",
            ),
            (
                r#"{ "mode": "filecopy", "filecopy": { "directory": "/x", "retention_days": 0 } }"#,
                "audit.filecopy.retention_days: must be at least 1",
            ),
        ] {
            let doc = with("").replacen(
                "{ \"listeners\"",
                &format!("{{ \"audit\": {audit}, \"listeners\""),
                1,
            );
            assert_eq!(validate(&doc).1, [message], "{audit}");
        }
    }

    #[test]
    fn routing_user_at_host() {
        let doc = with("").replacen(
            "{ \"listeners\"",
            r#"{ "routing": { "user_at_host": true, "targets": { "mf": "b" } }, "listeners""#,
            1,
        );
        let (policy, messages) = validate(&doc);
        assert_eq!(messages, Vec::<String>::new());
        assert!(policy.routing.user_at_host);
        assert!(
            policy
                .summary()
                .contains("routing: USER name@target on\n  mf -> b\n")
        );
    }

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
