//! The policy: the model ftpgate runs on, loaded from `/etc/ftpgate/ftpgate.json`.
//!
//! This module owns the validated runtime model ([`Policy`] and its parts), the loader
//! ([`parse_policy`], [`load_policy`]) that turns the file into it with every error located
//! by line and column, and the one-screen [`Policy::summary`] printed by `ftpgate --check`.
//! It is pure apart from [`load_policy`] reading the file and the prefix table it names and
//! checking the owners and modes of the files and directories the policy names (`perms.rs`;
//! [`parse_policy_with`] takes the reader as an argument and checks no modes; [`parse_policy`]
//! reads nothing): no sockets, no clock, no name resolution, no global state. A `Policy` is
//! immutable once built; a reload builds a new one.
//!
//! Besides the model, it holds the pure decisions taken from it: [`AccessRules::check`]
//! (networks, countries, AS numbers, through the operator's [`GeoTable`]) and
//! [`TimeWindow::contains`] / [`windows_allow`] (days and hours at a fixed UTC offset or in an IANA time zone).
//!
//! Loading is two-staged (sozu's FileConfig → Config): `file.rs` mirrors the JSON with serde;
//! `schema.rs` holds the parsed JSON to it first, reporting every unknown key and wrongly
//! typed value instead of stopping at the first; `load/` validates the rest into this model,
//! one file per section of the policy file (`load/mod.rs` lists them), collecting all errors
//! and placing them with `locate.rs`. Keys that are recognised but not yet enforced by this
//! build are refused in one place, `load/mod.rs::unsupported_yet`. The values an enum of the
//! model can be spelled with are one table next to the enum (`SPELLINGS`), which the loader
//! parses with and `name()` writes with.

mod access;
mod cidr;
pub mod explain;
mod file;
pub mod jail;
pub mod lint;
mod load;
pub mod locate;
mod mmdb;
mod passive;
pub use passive::{AdvertiseRule, Passive};
mod perms;
pub mod reload;
mod schema;
mod summary;
#[cfg(test)]
mod tests;
mod time;
mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::ftp::command::Verb;
use crate::policy::locate::JsonPath;

pub use access::{AccessRules, Denial, GeoEntry, GeoTable, country_name};
pub use cidr::Cidr;
// Moved to `crate::limits`; re-exported so that `policy::MAX_WORKERS` and the like still work.
pub use crate::limits::{
    DEFAULT_FILECOPY_RETENTION_DAYS, DEFAULT_SYSLOG_APP_NAME, DEFAULT_SYSLOG_FACILITY,
    DEFAULT_SYSLOG_SOCKET, MAX_TIMEOUT_SECONDS, MAX_WORKERS,
};
pub use load::{load_policy, parse_policy, parse_policy_with};
pub use time::{TimeWindow, Zone, windows_allow};
pub use units::{parse_rate, parse_size};

/// The validated policy. Every name it refers to exists, every address parsed, every default
/// is filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub workers: Workers,
    /// Seconds a stopping worker lets transfers in flight finish (`drain_timeout`).
    pub drain_timeout: u64,
    /// The account ftpgate runs as when started as root (`user`): the listeners are bound,
    /// then root is given up for it.
    pub user: String,
    /// At least one.
    pub listeners: Vec<Listener>,
    pub passive: Passive,
    pub backends: BTreeMap<String, Backend>,
    pub roles: BTreeMap<String, Role>,
    pub users: BTreeMap<String, User>,
    pub defaults: Defaults,
    pub audit: AuditPolicy,
    pub routing: Routing,
    /// The certificate for client-side FTPS; `None` when the file has no `tls` section.
    pub tls: Option<TlsPolicy>,
    /// Source-address rules for every session (`access`), checked before the user's own.
    pub access: AccessRules,
    /// The prefix table of `access.prefix_table`, loaded; `None` when the file names none.
    pub geo: Option<Arc<GeoTable>>,
    /// Where the prefix table was read from: one file, or several (a country and an ASN
    /// database), asked in this order.
    pub prefix_table: Vec<PathBuf>,
    /// `metrics.listen`: the loopback address of the metrics' HTTP port (worker 0).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// How many worker processes to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    /// One per CPU core.
    Auto,
    /// Exactly this many, 1 to [`MAX_WORKERS`].
    Count(usize),
}

/// TLS on a listener or toward a backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain FTP.
    #[default]
    None,
    /// Plain at first, upgraded by `AUTH TLS`.
    Explicit,
    /// TLS from the first byte.
    Implicit,
}

impl TlsMode {
    /// The policy file's spelling of each variant, in the order errors list them.
    pub const SPELLINGS: &'static [(&'static str, TlsMode)] = &[
        ("none", TlsMode::None),
        ("explicit", TlsMode::Explicit),
        ("implicit", TlsMode::Implicit),
    ];

    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        spelling(TlsMode::SPELLINGS, self)
    }
}

/// What must happen under TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsRequire {
    /// Nothing.
    #[default]
    None,
    /// No USER before `AUTH TLS`.
    Login,
    /// Login and every data channel.
    All,
}

impl TlsRequire {
    /// The policy file's spelling of each variant, in the order errors list them.
    pub const SPELLINGS: &'static [(&'static str, TlsRequire)] = &[
        ("none", TlsRequire::None),
        ("login", TlsRequire::Login),
        ("all", TlsRequire::All),
    ];

    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        spelling(TlsRequire::SPELLINGS, self)
    }
}

/// Whether a user's protected data connections must resume the control connection's TLS
/// session (a user's `tls_session_reuse`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsSessionReuse {
    /// `true`: they must (vsftpd's require_ssl_reuse); a fresh handshake is refused.
    #[default]
    Required,
    /// `false`: any handshake is accepted.
    Off,
    /// `"bridge"`: for clients that cannot resume (stock Python ftplib, Apache Commons
    /// Net, many .NET and Java tools): a fresh handshake is accepted only from the control
    /// connection's address and within `DATA_TLS_BRIDGE_WINDOW` of the transfer command,
    /// and audited as a policy exception.
    Bridge,
}

impl TlsSessionReuse {
    /// The string spellings (the booleans are `Required` and `Off`).
    pub const SPELLINGS: &'static [(&'static str, TlsSessionReuse)] =
        &[("bridge", TlsSessionReuse::Bridge)];

    /// The policy file's spelling, as JSON text.
    pub fn name(self) -> &'static str {
        match self {
            TlsSessionReuse::Required => "true",
            TlsSessionReuse::Off => "false",
            TlsSessionReuse::Bridge => "\"bridge\"",
        }
    }
}

/// How a backend pool picks a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balance {
    #[default]
    RoundRobin,
    FirstAvailable,
    /// The same server for the same user name while it is healthy (rendezvous hashing of
    /// the name over the pool's healthy servers), so an interrupted upload can be resumed
    /// with `REST` on the server that holds its first part.
    Sticky,
}

impl Balance {
    /// The policy file's spelling of each variant, in the order errors list them.
    pub const SPELLINGS: &'static [(&'static str, Balance)] = &[
        ("round-robin", Balance::RoundRobin),
        ("first-available", Balance::FirstAvailable),
        ("sticky", Balance::Sticky),
    ];

    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        spelling(Balance::SPELLINGS, self)
    }
}

/// How much the audit trail keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditMode {
    /// Events with full paths, no copies.
    #[default]
    Monitor,
    /// Also a copy of every transferred file.
    Filecopy,
}

impl AuditMode {
    /// The policy file's spelling of each variant, in the order errors list them.
    pub const SPELLINGS: &'static [(&'static str, AuditMode)] = &[
        ("monitor", AuditMode::Monitor),
        ("filecopy", AuditMode::Filecopy),
    ];

    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        spelling(AuditMode::SPELLINGS, self)
    }
}

/// What the audit computes over the bytes of each transfer (`audit.digest`, a user's
/// `audit_digest`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditDigest {
    /// SHA-256 of the bytes that crossed, in the transfer event (about 0.6 s of CPU per GiB
    /// on a core with SHA instructions).
    #[default]
    Sha256,
    /// No digest: the transfer event says `"digest": "none"`, and a plaintext relay without
    /// filecopy or rate limit is spliced by the kernel (the bytes never enter ftpgate).
    None,
}

impl AuditDigest {
    /// The policy file's spelling of each variant, in the order errors list them.
    pub const SPELLINGS: &'static [(&'static str, AuditDigest)] =
        &[("sha256", AuditDigest::Sha256), ("none", AuditDigest::None)];

    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        spelling(AuditDigest::SPELLINGS, self)
    }
}

/// The name of `value` in a table of spellings (an enum's `SPELLINGS`, [`SYSLOG_FACILITIES`]).
///
/// Each value the policy file can spell has one table, next to its type: the loader parses
/// with it (and lists it in "expected ..." errors), and `name()` writes with it, so a spelling
/// is written once. Every variant has exactly one entry (the test
/// `every_variant_is_spelled_exactly_once`), so the `"?"` is never seen.
fn spelling<T: Copy + PartialEq>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|&&(_, v)| v == value)
        .map_or("?", |&(name, _)| name)
}

/// One listening socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub address: SocketAddr,
    pub tls: TlsMode,
    pub require: TlsRequire,
    /// Expect a PROXY protocol v1/v2 header before the FTP greeting.
    pub proxy_protocol: bool,
    /// The load balancers' addresses: the only ones a connection to a `proxy_protocol`
    /// listener may come from (never empty when `proxy_protocol` is on).
    pub proxy_from: Vec<Cidr>,
}

/// A pool of backend servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    /// At least one; IP addresses only (ftpgate never resolves names).
    pub servers: Vec<SocketAddr>,
    pub balance: Balance,
    pub tls: TlsMode,
    /// Local address to connect from.
    pub source_address: Option<IpAddr>,
    /// TLS toward this backend: how its certificate is checked and what ftpgate shows.
    pub tls_settings: BackendTls,
    /// Each worker asks the pool's servers for their `FEAT` (before login, then
    /// periodically) to learn what `FEAT` may advertise before login (`crate::features`).
    pub feature_probe: bool,
    /// Active health checks of the pool's servers (`None`: `"health_check": false`).
    pub health_check: Option<HealthCheck>,
    /// After each upload ftpgate asks the server for the file's SHA-256 (`HASH`, else
    /// `XSHA256`) and records whether it equals the one of the bytes relayed (`verify_uploads`).
    pub verify_uploads: bool,
}

/// How each worker checks a pool's servers: every `interval` seconds it connects to each
/// one (from the pool's source address), waits for the 220 greeting and, toward a TLS
/// pool, completes the TLS handshake (after `AUTH TLS` for an explicit pool); every step
/// has `timeout` seconds. A server that fails is out of rotation until a check succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval: u64,
    pub timeout: u64,
}

impl Default for HealthCheck {
    fn default() -> HealthCheck {
        HealthCheck {
            interval: crate::limits::DEFAULT_HEALTH_CHECK_INTERVAL,
            timeout: crate::limits::DEFAULT_HEALTH_CHECK_TIMEOUT,
        }
    }
}

/// Certificate checks and client identity for TLS toward a backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendTls {
    /// PEM bundle of trusted CAs; `None`: the system store (/etc/ssl/certs).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate the backend must present exactly (pinning, in place of CA checks).
    pub pinned_certificate: Option<PathBuf>,
    /// Client certificate and key ftpgate presents, when the backend asks for one.
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Name checked in the backend's certificate (and sent as SNI when it is a DNS
    /// name); `None`: the server's IP address.
    pub server_name: Option<String>,
}

/// A set of verbs, one bit per [`Verb`].
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct VerbSet(u64);

// Every verb must have a bit.
const _: () = assert!(Verb::ALL.len() <= 64);

impl VerbSet {
    pub const EMPTY: VerbSet = VerbSet(0);

    fn bit(verb: Verb) -> u64 {
        1u64.checked_shl(u32::from(verb as u8)).unwrap_or(0)
    }

    pub fn contains(self, verb: Verb) -> bool {
        self.0 & VerbSet::bit(verb) != 0
    }

    pub fn insert(&mut self, verb: Verb) {
        self.0 |= VerbSet::bit(verb);
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The verbs in the set, in [`Verb::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Verb> {
        Verb::ALL
            .iter()
            .copied()
            .filter(move |&verb| self.contains(verb))
    }
}

impl FromIterator<Verb> for VerbSet {
    fn from_iter<I: IntoIterator<Item = Verb>>(iter: I) -> VerbSet {
        let mut set = VerbSet::EMPTY;
        for verb in iter {
            set.insert(verb);
        }
        set
    }
}

impl fmt::Debug for VerbSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Verb::name)).finish()
    }
}

/// A named set of permitted commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// Never contains protocol plumbing (see [`Verb::is_plumbing`]).
    pub allow: VerbSet,
}

impl Role {
    /// Whether the role lets the user send `verb`. Plumbing verbs are not the role's business:
    /// the session decides them by its own rules, and this returns `false` for them.
    pub fn permits(&self, verb: Verb) -> bool {
        self.allow.contains(verb)
    }
}

/// Login, idle, session and data-connection timeouts in seconds, each at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub login: u64,
    pub idle: u64,
    pub session: u64,
    /// How long a data connection (passive accept or active connect) may take to come up.
    pub data_connect: u64,
    /// What the session time limit does to a transfer in flight.
    pub session_during_transfer: DuringTransfer,
}

/// `timeouts.session_during_transfer`: when the session's time is up during a transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DuringTransfer {
    /// The transfer ends (however it ends), then the session closes with 421.
    #[default]
    Finish,
    /// The transfer is cut at once (recorded with result `timeout`), then 421.
    Cut,
}

/// Per-user limits, resolved: the user's own value, else the one of `defaults.limits`.
/// `None` means no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserLimits {
    /// Bytes per transferred file.
    pub max_file_size: Option<u64>,
    /// Bytes per second, for each session of the user.
    pub rate: Option<u64>,
    /// Bytes per second, shared by all sessions of the user.
    pub user_rate: Option<u64>,
    /// Concurrent sessions of this user (no default: only the user's own value).
    pub sessions: Option<u32>,
}

/// One user: the policy key read from USER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Names an entry of [`Policy::roles`].
    pub role: String,
    /// Names an entry of [`Policy::backends`].
    pub backend: String,
    /// The user's source-address rules, checked after [`Policy::access`].
    pub access: AccessRules,
    /// When the user may log in; empty: at any time.
    pub time_windows: Vec<TimeWindow>,
    /// Networks PORT/EPRT may name besides the client's own address (FXP; dangerous: it
    /// lets the user make ftpgate connect there). Ports below 1024 stay refused.
    pub allow_fxp_to: Vec<Cidr>,
    /// The user's own TLS requirement; it can only tighten the listener's.
    pub tls_require: TlsRequire,
    /// Whether data connections under TLS must resume the control connection's TLS session
    /// (vsftpd's require_ssl_reuse). Required by default.
    pub tls_session_reuse: TlsSessionReuse,
    /// The user's `audit_digest`, else `audit.digest`.
    pub audit_digest: AuditDigest,
    pub limits: UserLimits,
    /// The user's own values, else `defaults.timeouts`, else the built-in defaults.
    pub timeouts: Timeouts,
    /// `paths`: the path prefixes the user's commands may name; None: no jail.
    pub jail: Option<jail::Jail>,
    /// `false`: a dry run for this user (its own `enforce`, else the top-level one, else
    /// `true`). Commands the role or the user's rules would refuse are forwarded and
    /// audited as `would_deny` with the rule; protections against attacks stay enforced.
    pub enforce: bool,
}

impl User {
    /// Whether the user may log in at `unix_seconds` (see [`windows_allow`]).
    pub fn in_time_window(&self, unix_seconds: i64) -> bool {
        windows_allow(&self.time_windows, unix_seconds)
    }
}

/// Global limits (`defaults.limits`), shared by all workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalLimits {
    pub sessions_total: u32,
    pub sessions_per_ip: u32,
    /// Failed logins from one IP within `failed_login_window` that get it banned.
    pub failed_logins_per_ip: u32,
    /// Seconds within which failed logins are counted.
    pub failed_login_window: u64,
    /// Seconds a banned IP gets 421.
    pub ban: u64,
    /// Defaults for [`UserLimits`].
    pub max_file_size: Option<u64>,
    pub rate: Option<u64>,
    pub user_rate: Option<u64>,
    /// Sessions per worker whose backend connection is being set up.
    pub sessions_waiting_for_backend: u32,
    /// Milliseconds from PASS to the reply of a failed login, whatever the backend's own
    /// delay up to then (known and unknown names alike).
    pub failed_login_delay_ms: u32,
}

/// `defaults`, resolved against the built-in defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    pub timeouts: Timeouts,
    pub limits: GlobalLimits,
}

/// Where the audit trail goes and what it keeps. With neither `file` nor `syslog`, audit
/// events go to stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPolicy {
    pub file: Option<PathBuf>,
    pub syslog: Option<SyslogPolicy>,
    pub mode: AuditMode,
    /// `audit.digest`: the default of every user's `audit_digest`.
    pub digest: AuditDigest,
    /// What a sink that cannot take events means for new sessions.
    pub on_failure: AuditFailure,
    /// Present exactly when `mode` is [`AuditMode::Filecopy`].
    pub filecopy: Option<FilecopyPolicy>,
    /// `audit.integrity`: the hash chain and its keyed checkpoints; `None` when the policy
    /// has no such section (lines then carry no chain fields).
    pub integrity: Option<IntegrityPolicy>,
}

/// `audit.integrity`: every line chained to the previous one of its worker, and a keyed
/// checkpoint every `checkpoint_interval_s` seconds (see `audit/chain.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrityPolicy {
    pub key_file: PathBuf,
    /// The key, read when the policy was loaded.
    pub key: AuditKey,
    pub checkpoint_interval_s: u64,
}

/// The checkpoint key's bytes; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey(Arc<[u8]>);

impl AuditKey {
    pub fn new(bytes: Vec<u8>) -> AuditKey {
        AuditKey(bytes.into())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({} bytes)", self.0.len())
    }
}

/// `audit.syslog`: RFC 5424 messages over a Unix datagram socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogPolicy {
    /// The facility code (authpriv is 10, local0 is 16); see [`SYSLOG_FACILITIES`].
    pub facility: u8,
    /// RFC 5424 APP-NAME: 1 to 48 printable ASCII characters.
    pub app_name: String,
    /// The syslog daemon's datagram socket, `/dev/log` unless the policy names another.
    pub socket: PathBuf,
    /// Prefix the JSON with the `@cee: ` cookie (rsyslog's mmjsonparse).
    pub cee: bool,
    /// The header: RFC 5424, or the local format of syslog(3) that journald parses.
    pub format: SyslogFormat,
}

/// `audit.syslog.format`: how the header of a syslog message is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyslogFormat {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`: for a daemon configured to
    /// parse it (rsyslog's imuxsock with `useSpecialParser="off"`, syslog-ng's
    /// `syslog-protocol`).
    Rfc5424,
    /// `<PRI>APP-NAME[PROCID]: MSG`, as syslog(3) writes to /dev/log (RFC 3164 without the
    /// timestamp and host name, which the local daemon adds): what journald and rsyslog's
    /// default socket input parse, so the default (a stock Debian host files it under its
    /// tag in /var/log/auth.log).
    #[default]
    Rfc3164,
}

impl SyslogFormat {
    /// The policy file's spelling of each variant, in the order errors list them.
    pub const SPELLINGS: &'static [(&'static str, SyslogFormat)] = &[
        ("rfc5424", SyslogFormat::Rfc5424),
        ("rfc3164", SyslogFormat::Rfc3164),
    ];

    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        spelling(SyslogFormat::SPELLINGS, self)
    }
}

impl SyslogPolicy {
    /// The facility's name as the policy file writes it.
    pub fn facility_name(&self) -> &'static str {
        spelling(SYSLOG_FACILITIES, self.facility)
    }
}

/// The syslog facilities `audit.syslog.facility` may name, with their codes (RFC 5424
/// section 6.2.1 and the Linux `<syslog.h>` numbering of authpriv and ftp).
pub const SYSLOG_FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// `audit.on_failure`: what happens to new sessions while an audit sink cannot take events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditFailure {
    /// New sessions get 421 until every sink is back (the default).
    #[default]
    RefuseSessions,
    /// Sessions go on; the lost events are counted and reported when the sink is back.
    Continue,
}

impl AuditFailure {
    /// The policy file's spelling of each variant, in the order errors list them.
    pub const SPELLINGS: &'static [(&'static str, AuditFailure)] = &[
        ("refuse_sessions", AuditFailure::RefuseSessions),
        ("continue", AuditFailure::Continue),
    ];

    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        spelling(AuditFailure::SPELLINGS, self)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilecopyPolicy {
    pub directory: PathBuf,
    pub retention_days: u32,
    pub on_failure: CopyFailure,
}

/// What a transfer whose copy failed becomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CopyFailure {
    /// The transfer fails: the client gets 451.
    #[default]
    Abort,
    /// The transfer goes on; its event carries the copy's error.
    Continue,
}

impl CopyFailure {
    /// The policy file's spelling of each variant, in the order errors list them.
    pub const SPELLINGS: &'static [(&'static str, CopyFailure)] = &[
        ("abort", CopyFailure::Abort),
        ("continue", CopyFailure::Continue),
    ];

    /// The policy file's spelling.
    pub fn name(self) -> &'static str {
        spelling(CopyFailure::SPELLINGS, self)
    }
}

/// `USER name@target` routing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    pub user_at_host: bool,
    /// Target name → backend name (an entry of [`Policy::backends`]).
    pub targets: BTreeMap<String, String>,
}

/// The certificates and keys for client-side FTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPolicy {
    /// In the order of preference: each client gets the first one it can verify (so an
    /// ECDSA certificate listed before an RSA one serves every client that accepts ECDSA,
    /// and the RSA one the rest). Never empty.
    pub identities: Vec<TlsIdentity>,
    /// The file spelled them as `certificates: [...]` rather than as one
    /// `certificate`/`private_key` pair (it decides where errors are reported).
    pub listed: bool,
    pub require: TlsRequire,
}

/// One certificate chain and its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsIdentity {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
}

impl TlsPolicy {
    /// One pair (the common case).
    pub fn single(certificate: PathBuf, private_key: PathBuf, require: TlsRequire) -> TlsPolicy {
        TlsPolicy {
            identities: vec![TlsIdentity {
                certificate,
                private_key,
            }],
            listed: false,
            require,
        }
    }

    /// Where identity `i` is in the file: `tls` itself, or `tls.certificates[i]`.
    pub fn identity_path(&self, i: usize) -> JsonPath {
        let tls = JsonPath::root().key("tls");
        if self.listed {
            tls.key("certificates").index(i)
        } else {
            tls
        }
    }
}

/// What `role_of` answers for a user whose role is missing, which validation rules out.
static NO_ROLE: Role = Role {
    name: String::new(),
    allow: VerbSet::EMPTY,
};

impl Policy {
    /// The user named exactly `name` (user names are case-sensitive).
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// The user's role. Validation guarantees it exists; should it not (a `User` from another
    /// policy), the answer is a role that permits nothing.
    pub fn role_of(&self, user: &User) -> &Role {
        self.roles.get(&user.role).unwrap_or(&NO_ROLE)
    }

    /// The users whose policy is not enforced (`enforce: false`, a dry run), by name.
    pub fn unenforced_users(&self) -> Vec<&str> {
        self.users
            .values()
            .filter(|user| !user.enforce)
            .map(|user| user.name.as_str())
            .collect()
    }

    /// What `--check` prints about dry runs after `OK`: a line naming the unenforced users
    /// followed by an empty line, or just the empty line.
    pub fn unenforced_note(&self) -> String {
        let users = self.unenforced_users();
        if users.is_empty() {
            return String::new();
        }
        format!(
            "dry run (enforce false) for {} of {} users: {}: what their role refuses is \
             forwarded and audited as would_deny\n",
            users.len(),
            self.users.len(),
            users.join(", ")
        )
    }

    /// The user's backend pool (always `Some` for users of this policy).
    pub fn backend_of(&self, user: &User) -> Option<&Backend> {
        self.backends.get(&user.backend)
    }
}

/// One problem in the policy file, at a 1-based line and column (in characters). I/O
/// problems, which have no position, are at 0:0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for PolicyError {}
