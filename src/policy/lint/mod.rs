//! Warnings of `ftpgate --check`: settings that are valid but dangerous.
//!
//! The loader refuses what is wrong; this module looks at a policy the loader accepted and
//! names what is allowed but probably not meant: FXP toward most of the Internet, data
//! connections that need not resume the control connection's TLS session, write commands for
//! anonymous users, limits that limit nothing, an audit trail that may be lost, a listener
//! address the host does not have, passwords in clear over the network, passive replies
//! without an address for NAT. Each warning names the key or value by path and by
//! line:column, like the loader's errors, and says why it is dangerous.
//!
//! Every check is a pure function of the loaded [`Policy`] and of a [`Host`], which answers
//! the two questions about the machine (does it have this address, can a file be created
//! there); [`SystemHost`] asks the real one, tests pass their own. A check adds [`Finding`]s
//! by path; [`lint`] places them all in the source text in one pass and sorts them. A new
//! warning is a new function in [`CHECKS`]; what it needs from outside the policy goes into
//! [`Host`]. The semantic checks (`semantic.rs`: access rules shadowed by another or that can
//! never match, a passive range smaller than the sessions that can hold a port at once,
//! certificates that expire within [`crate::limits::LINT_CERTIFICATE_DAYS`] days, a list of
//! certificates in which one can never be chosen or an RSA one hides a cheaper one) are
//! such functions. Roles naming unknown commands and users naming missing roles or backends are
//! not warnings: the loader refuses them.

mod checks;
mod host;
mod semantic;
#[cfg(test)]
mod tests;
mod x509;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use super::Policy;
use super::locate::{self, JsonPath, Target};

pub use host::SystemHost;
pub use x509::KeyType;

/// What a check may ask about the machine `--check` runs on.
pub trait Host {
    /// Whether a socket can be bound to `address` here (its IP is one of this host's, or the
    /// wildcard); the port is not tried.
    fn has_address(&self, address: SocketAddr) -> bool;
    /// Why a file cannot be created at `path`, if it cannot be (its directory is missing or
    /// is not a directory); `None` when it exists or could be created.
    fn cannot_create(&self, path: &Path) -> Option<String>;
    /// The earliest end of validity (`notAfter`, Unix seconds) of the certificates in the
    /// PEM file at `path`; `None` when it cannot be read (`--check` reports that itself).
    fn certificate_not_after(&self, path: &Path) -> Option<i64>;
    /// The key type of the first certificate (the end-entity one) in the PEM file at
    /// `path`; `None` when it cannot be read or is of no type [`KeyType`] knows.
    fn certificate_key_type(&self, path: &Path) -> Option<KeyType>;
    /// The time now, in Unix seconds.
    fn now(&self) -> i64;
}

/// One warning, placed in the source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line and column (in characters) of the key or value warned about.
    pub line: usize,
    pub column: usize,
    /// A short, stable name of the kind of warning (`"fxp-wide"`), for scripts and tests.
    pub code: &'static str,
    /// `path: reason`.
    pub message: String,
}

impl fmt::Display for Warning {
    /// `LINE:COLUMN: warning: PATH: REASON [CODE]`, to follow the file name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: warning: {} [{}]",
            self.line, self.column, self.message, self.code
        )
    }
}

/// A warning before it is placed: what a check reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub path: JsonPath,
    pub target: Target,
    pub reason: String,
}

/// What every check sees.
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub host: &'a dyn Host,
}

/// One check: adds its findings.
type Check = fn(&Context<'_>, &mut Vec<Finding>);

/// Every check, in the order of the sections they look at.
const CHECKS: &[Check] = &[
    checks::listener_not_local,
    checks::clear_passwords,
    checks::wildcard_without_advertise,
    checks::anonymous_writes,
    checks::wide_fxp,
    checks::no_session_reuse,
    checks::unlimited,
    checks::audit_may_be_lost,
    checks::audit_file_cannot_be_created,
    checks::audit_key_beside_trail,
    checks::runs_as_root,
    semantic::shadowed_networks,
    semantic::never_matching,
    semantic::passive_range_too_small,
    semantic::certificates_expiring,
    semantic::certificate_order,
];

/// The findings of every check, in no particular order.
pub fn findings(policy: &Policy, host: &dyn Host) -> Vec<Finding> {
    let context = Context { policy, host };
    let mut found = Vec::new();
    for check in CHECKS {
        check(&context, &mut found);
    }
    found
}

/// The warnings about `policy`, loaded from `text`, in file order.
pub fn lint(policy: &Policy, text: &str, host: &dyn Host) -> Vec<Warning> {
    // Positions are counted after a byte-order mark, as the loader counts them.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let found = findings(policy, host);
    let queries: Vec<(&[locate::Seg], Target)> = found
        .iter()
        .map(|f| (f.path.segments(), f.target))
        .collect();
    let positions = locate::locate_all(text, &queries);
    let mut warnings: Vec<Warning> = found
        .into_iter()
        .zip(positions)
        .map(|(f, (line, column))| Warning {
            line,
            column,
            code: f.code,
            message: format!("{}: {}", f.path, f.reason),
        })
        .collect();
    warnings.sort_by_key(|w| (w.line, w.column));
    warnings
}
