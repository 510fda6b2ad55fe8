//! The checks of [`super::CHECKS`], one function per kind of warning.

use std::net::IpAddr;

use crate::ftp::command::Verb;
use crate::limits::{
    LINT_UNLIMITED_COUNT, LINT_UNLIMITED_FILE_SIZE, LINT_UNLIMITED_RATE, LINT_WIDEST_FXP_PREFIX_V4,
    LINT_WIDEST_FXP_PREFIX_V6,
};
use crate::policy::locate::{JsonPath, Target};
use crate::policy::{AuditFailure, Cidr, TlsMode, TlsRequire};

use super::{Context, Finding};

/// The commands that change the backend's files, and SITE, which runs whatever the server
/// offers (vsftpd's CHMOD, proftpd's SYMLINK and CPFR/CPTO).
pub const WRITE_VERBS: &[Verb] = &[
    Verb::Stor,
    Verb::Stou,
    Verb::Appe,
    Verb::Dele,
    Verb::Rmd,
    Verb::Mkd,
    Verb::Rnfr,
    Verb::Rnto,
    Verb::Mfmt,
    Verb::Site,
];

/// The user names FTP clients send for anonymous access (RFC 1635); any case.
pub fn is_anonymous(name: &str) -> bool {
    name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp")
}

/// At most this many names in one warning; the rest are counted.
const MAX_NAMES: usize = 5;

/// `a, b and c`, or `a, b, c, d, e and 3 more`.
fn names(list: &[&str]) -> String {
    let shown: Vec<&str> = list.iter().copied().take(MAX_NAMES).collect();
    let more = list.len().saturating_sub(MAX_NAMES);
    match (shown.split_last(), more) {
        (None, _) => String::new(),
        (Some((last, [])), 0) => (*last).to_owned(),
        (Some((last, rest)), 0) => format!("{} and {last}", rest.join(", ")),
        (Some(_), more) => format!("{} and {more} more", shown.join(", ")),
    }
}

pub(super) fn add(found: &mut Vec<Finding>, code: &'static str, path: JsonPath, reason: String) {
    found.push(Finding {
        code,
        path,
        target: Target::Value,
        reason,
    });
}

/// A listener on an address this host does not have: binding fails with EADDRNOTAVAIL
/// and ftpgate does not start (or a reload is refused).
pub fn listener_not_local(cx: &Context<'_>, found: &mut Vec<Finding>) {
    for (i, listener) in cx.policy.listeners.iter().enumerate() {
        if !cx.host.has_address(listener.address) {
            add(
                found,
                "listener-address",
                JsonPath::root().key("listeners").index(i).key("address"),
                format!(
                    "{}: this host has no such address, so binding it fails \
                     (EADDRNOTAVAIL) and ftpgate will not start; use an address of this \
                     host, or 0.0.0.0 or [::] for all of them",
                    listener.address.ip()
                ),
            );
        }
    }
}

/// A listener reachable from the network where users may log in without TLS: their
/// passwords cross the network in clear. Anonymous users have no secret to lose.
pub fn clear_passwords(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let policy = cx.policy;
    let global = policy
        .tls
        .as_ref()
        .map_or(TlsRequire::None, |tls| tls.require);
    for (i, listener) in policy.listeners.iter().enumerate() {
        if listener.address.ip().is_loopback() || listener.tls == TlsMode::Implicit {
            continue;
        }
        let in_clear: Vec<&str> = policy
            .users
            .values()
            .filter(|user| !is_anonymous(&user.name))
            .filter(|user| listener.require.max(global).max(user.tls_require) == TlsRequire::None)
            .map(|user| user.name.as_str())
            .collect();
        if in_clear.is_empty() {
            continue;
        }
        let fix = if listener.tls == TlsMode::None {
            "give the listener \"tls\": \"explicit\" and \"require\": \"login\""
        } else {
            "give the listener \"require\": \"login\""
        };
        add(
            found,
            "clear-passwords",
            JsonPath::root().key("listeners").index(i).key("address"),
            format!(
                "{}: plain FTP on an address other than loopback, and {} may log in \
                 without TLS (no tls_require): their passwords cross the network in \
                 clear; {fix}, or set tls_require for those users",
                listener.address,
                names(&in_clear)
            ),
        );
    }
}

/// A wildcard listener with no `passive.advertise`: 227 replies carry the address the
/// client connected to, which behind NAT is one the client cannot reach.
pub fn wildcard_without_advertise(cx: &Context<'_>, found: &mut Vec<Finding>) {
    if cx.policy.passive.advertise.is_some() || !cx.policy.passive.advertise_by_network.is_empty() {
        return;
    }
    for (i, listener) in cx.policy.listeners.iter().enumerate() {
        if listener.address.ip().is_unspecified() {
            add(
                found,
                "passive-advertise",
                JsonPath::root().key("listeners").index(i).key("address"),
                format!(
                    "{}: a wildcard listener and no passive.advertise: passive replies \
                     (227) carry the address each client connected to, which behind NAT is \
                     a private address the client cannot reach; set passive.advertise to \
                     the public IPv4 address (not needed when clients reach ftpgate \
                     without NAT)",
                    listener.address
                ),
            );
        }
    }
}

/// Anonymous users whose role lets them change files or send SITE.
pub fn anonymous_writes(cx: &Context<'_>, found: &mut Vec<Finding>) {
    for user in cx.policy.users.values() {
        if !is_anonymous(&user.name) {
            continue;
        }
        let role = cx.policy.role_of(user);
        let writes: Vec<&str> = WRITE_VERBS
            .iter()
            .filter(|&&verb| role.permits(verb))
            .map(|verb| verb.name())
            .collect();
        if writes.is_empty() {
            continue;
        }
        add(
            found,
            "anonymous-write",
            JsonPath::root().key("users").key(&user.name).key("role"),
            format!(
                "the anonymous user {:?} may send {} (role {:?}): anyone can change the \
                 backend's files{}; give anonymous users a read-only role",
                user.name,
                writes.join(", "),
                role.name,
                if role.permits(Verb::Site) {
                    " and run the server's SITE commands"
                } else {
                    ""
                }
            ),
        );
    }
}

/// Networks of `allow_fxp_to` so wide that FXP becomes the bounce attack the protection
/// exists for.
pub fn wide_fxp(cx: &Context<'_>, found: &mut Vec<Finding>) {
    for user in cx.policy.users.values() {
        for (i, cidr) in user.allow_fxp_to.iter().enumerate() {
            if let Some(addresses) = too_wide(cidr) {
                add(
                    found,
                    "fxp-wide",
                    JsonPath::root()
                        .key("users")
                        .key(&user.name)
                        .key("allow_fxp_to")
                        .index(i),
                    format!(
                        "{cidr}: PORT and EPRT may make ftpgate connect to any of {addresses} \
                         addresses: FXP this wide is the FTP bounce attack; name only the \
                         other server's network"
                    ),
                );
            }
        }
    }
}

/// How many addresses a too-wide FXP network spans (`2^N`), or `None` when it is narrow
/// enough. IPv4 networks written in IPv6 (`::ffff:0:0/96`) count as IPv4.
fn too_wide(cidr: &Cidr) -> Option<String> {
    let prefix = cidr.prefix();
    let (prefix, widest, bits) = match cidr.network() {
        IpAddr::V4(_) => (prefix, LINT_WIDEST_FXP_PREFIX_V4, 32u32),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() && prefix >= 96 => {
            (prefix - 96, LINT_WIDEST_FXP_PREFIX_V4, 32)
        }
        IpAddr::V6(_) => (prefix, LINT_WIDEST_FXP_PREFIX_V6, 128),
    };
    (prefix <= widest).then(|| format!("2^{}", bits.saturating_sub(u32::from(prefix))))
}

/// A user whose TLS data connections need not resume the control connection's session.
pub fn no_session_reuse(cx: &Context<'_>, found: &mut Vec<Finding>) {
    for user in cx.policy.users.values() {
        if user.tls_session_reuse == crate::policy::TlsSessionReuse::Off {
            add(
                found,
                "tls-session-reuse",
                JsonPath::root()
                    .key("users")
                    .key(&user.name)
                    .key("tls_session_reuse"),
                "false: TLS data connections need not resume the control connection's TLS \
                 session, so whoever connects to the passive port first can take the \
                 transfer (vsftpd's require_ssl_reuse); for clients that cannot resume, \
                 \"bridge\" accepts them only from the client's address right after the 150"
                    .to_owned(),
            );
        }
    }
}

/// Limits so large they limit nothing.
pub fn unlimited(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let global = &cx.policy.defaults.limits;
    let defaults = JsonPath::root().key("defaults").key("limits");
    let counts = [
        ("sessions_total", global.sessions_total),
        ("sessions_per_ip", global.sessions_per_ip),
        ("failed_logins_per_ip", global.failed_logins_per_ip),
        (
            "sessions_waiting_for_backend",
            global.sessions_waiting_for_backend,
        ),
    ];
    for (key, value) in counts {
        if value >= LINT_UNLIMITED_COUNT {
            add(
                found,
                "unlimited",
                defaults.key(key),
                unlimited_reason(value.into(), LINT_UNLIMITED_COUNT.into(), ""),
            );
        }
    }
    let sizes = [
        (
            "max_file_size",
            global.max_file_size,
            LINT_UNLIMITED_FILE_SIZE,
            " bytes",
        ),
        ("rate", global.rate, LINT_UNLIMITED_RATE, " bytes/s"),
        (
            "user_rate",
            global.user_rate,
            LINT_UNLIMITED_RATE,
            " bytes/s",
        ),
    ];
    for (key, value, threshold, unit) in sizes {
        if let Some(value) = value.filter(|&v| v >= threshold) {
            add(
                found,
                "unlimited",
                defaults.key(key),
                unlimited_reason(value, threshold, unit),
            );
        }
    }
    for user in cx.policy.users.values() {
        let path = JsonPath::root().key("users").key(&user.name).key("limits");
        let limits = &user.limits;
        if let Some(value) = limits.sessions.filter(|&v| v >= LINT_UNLIMITED_COUNT) {
            add(
                found,
                "unlimited",
                path.key("sessions"),
                unlimited_reason(value.into(), LINT_UNLIMITED_COUNT.into(), ""),
            );
        }
        // A value equal to the default's comes from `defaults` (warned about there).
        let sizes = [
            (
                "max_file_size",
                limits.max_file_size,
                global.max_file_size,
                LINT_UNLIMITED_FILE_SIZE,
                " bytes",
            ),
            (
                "rate",
                limits.rate,
                global.rate,
                LINT_UNLIMITED_RATE,
                " bytes/s",
            ),
            (
                "user_rate",
                limits.user_rate,
                global.user_rate,
                LINT_UNLIMITED_RATE,
                " bytes/s",
            ),
        ];
        for (key, value, default, threshold, unit) in sizes {
            if let Some(value) = value.filter(|&v| v >= threshold && Some(v) != default) {
                add(
                    found,
                    "unlimited",
                    path.key(key),
                    unlimited_reason(value, threshold, unit),
                );
            }
        }
    }
}

fn unlimited_reason(value: u64, threshold: u64, unit: &str) -> String {
    format!(
        "{value}{unit} is effectively no limit (at least {threshold}{unit}); leave the key out \
         if no limit is meant, or give a real bound"
    )
}

/// The audit trail on stderr with `on_failure: "continue"`: when stderr cannot take the
/// events, sessions go on unaudited.
pub fn audit_may_be_lost(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let audit = &cx.policy.audit;
    if audit.file.is_none() && audit.syslog.is_none() && audit.on_failure == AuditFailure::Continue
    {
        add(
            found,
            "audit-lost",
            JsonPath::root().key("audit").key("on_failure"),
            "\"continue\" with the audit trail on stderr (no file, no syslog): when stderr \
             cannot take events (a full pipe, a stopped journal), sessions go on and their \
             events are lost; use \"refuse_sessions\", or an audit file or syslog"
                .to_owned(),
        );
    }
}

/// An audit file whose directory does not exist: ftpgate does not create directories, so
/// it cannot open the file at start.
pub fn audit_file_cannot_be_created(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let Some(file) = &cx.policy.audit.file else {
        return;
    };
    if let Some(reason) = cx.host.cannot_create(file) {
        add(
            found,
            "audit-file",
            JsonPath::root().key("audit").key("file"),
            format!(
                "{}: {reason}, so ftpgate cannot open the audit file at start (it creates \
                 the file, not its directory)",
                file.display()
            ),
        );
    }
}

/// The checkpoint key of `audit.integrity` in the audit file's directory: whoever may read
/// the trail there (the log group, a log shipper) may read the key beside it, and forge
/// checkpoints.
pub fn audit_key_beside_trail(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let audit = &cx.policy.audit;
    let (Some(integrity), Some(file)) = (&audit.integrity, &audit.file) else {
        return;
    };
    if integrity.key_file.parent() == file.parent() {
        add(
            found,
            "audit-key",
            JsonPath::root()
                .key("audit")
                .key("integrity")
                .key("key_file"),
            format!(
                "{}: the checkpoint key is in the audit file's directory: whoever reads or \
                 ships the trail there may find the key and forge checkpoints; keep it apart, \
                 e.g. in /etc/ftpgate",
                integrity.key_file.display()
            ),
        );
    }
}

/// `"user": "root"`: started as root, ftpgate keeps every privilege instead of giving it up
/// once its listeners are bound.
pub fn runs_as_root(cx: &Context<'_>, found: &mut Vec<Finding>) {
    if cx.policy.user == "root" {
        add(
            found,
            "runs-as-root",
            JsonPath::root().key("user"),
            "root: started as root, ftpgate keeps every privilege (a flaw in a session would \
             be root's); name an unprivileged account such as ftpgate"
                .to_owned(),
        );
    }
}
