//! The semantic checks of issue 12: access rules that another rule makes redundant or that
//! can never match, a passive range smaller than the sessions that can hold a port at once,
//! and certificates that expire soon.
//!
//! A client passes the global rules (`access`) and then the user's own (`users.NAME`); in
//! each set deny lists win and a non-empty allow list must match. So a network is
//! *shadowed* when another network of the same list, or of the global deny list for a
//! user's deny list, already contains it: deleting it changes nothing. An allow entry *never
//! matches* when a deny list that is checked too contains all of it, or (for a user's
//! allow list) when it lies outside every network of a non-empty global allow list: nobody
//! it names can get in. Two networks either are disjoint or one contains the other, so
//! "outside every network" is exact.

use crate::limits::{LINT_CERTIFICATE_DAYS, LINT_UNLIMITED_COUNT, PASSIVE_PORTS_PER_SESSION};
use crate::policy::locate::JsonPath;
use crate::policy::{AccessRules, Cidr, Workers};

use super::{Context, Finding, KeyType, checks::add};

/// The rule sets of the policy: the global one and each user's, with their paths.
fn rule_sets<'a>(cx: &Context<'a>) -> Vec<(JsonPath, &'a AccessRules, bool)> {
    let mut sets = vec![(JsonPath::root().key("access"), &cx.policy.access, true)];
    for user in cx.policy.users.values() {
        sets.push((
            JsonPath::root().key("users").key(&user.name),
            &user.access,
            false,
        ));
    }
    sets
}

/// Networks another of the same list contains (the first of two equal ones is kept), and a
/// user's denied networks that the global deny list already refuses.
pub fn shadowed_networks(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let global = &cx.policy.access;
    for (path, rules, is_global) in rule_sets(cx) {
        for (key, list) in [
            ("allow_from", &rules.allow_from),
            ("deny_from", &rules.deny_from),
        ] {
            for (i, net) in list.iter().enumerate() {
                let wider = list
                    .iter()
                    .enumerate()
                    .find(|&(j, other)| j != i && other.covers(net) && (other != net || j < i));
                if let Some((j, other)) = wider {
                    add(
                        found,
                        "rule-shadowed",
                        path.key(key).index(i),
                        format!(
                            "{net} is inside {other} ({key}[{j}]) of the same list: this \
                             entry changes nothing; remove it, or narrow the other"
                        ),
                    );
                    continue;
                }
                if key == "deny_from" && !is_global {
                    if let Some((j, other)) = covering(&global.deny_from, net) {
                        add(
                            found,
                            "rule-shadowed",
                            path.key(key).index(i),
                            format!(
                                "{net} is inside {other} (access.deny_from[{j}]), which \
                                 refuses it for every user already: this entry changes nothing"
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// The first network of `list` that contains `net`, with its index.
fn covering<'a>(list: &'a [Cidr], net: &Cidr) -> Option<(usize, &'a Cidr)> {
    list.iter().enumerate().find(|(_, other)| other.covers(net))
}

/// Allow entries nobody can pass: inside a deny list that is checked too, outside the
/// global allow list, or a country or AS number that a deny list names as well.
pub fn never_matching(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let global = &cx.policy.access;
    for (path, rules, is_global) in rule_sets(cx) {
        for (i, net) in rules.allow_from.iter().enumerate() {
            let reason = if let Some((j, deny)) = covering(&rules.deny_from, net) {
                Some(format!(
                    "it is inside {deny} of deny_from[{j}], and deny lists win"
                ))
            } else if let Some((j, deny)) = covering(&global.deny_from, net).filter(|_| !is_global)
            {
                Some(format!(
                    "it is inside {deny} of access.deny_from[{j}], checked first for every user"
                ))
            } else if !is_global
                && !global.allow_from.is_empty()
                && !global
                    .allow_from
                    .iter()
                    .any(|g| g.covers(net) || net.covers(g))
            {
                Some(
                    "it lies outside every network of access.allow_from, which every client \
                     must pass first"
                        .to_owned(),
                )
            } else {
                None
            };
            if let Some(reason) = reason {
                add(
                    found,
                    "rule-never-matches",
                    path.key("allow_from").index(i),
                    format!("{net} can never let a client in: {reason}; remove or fix one of them"),
                );
            }
        }
        for (i, code) in rules.allow_countries.iter().enumerate() {
            let denied = rules.deny_countries.contains(code)
                || (!is_global && global.deny_countries.contains(code));
            if denied {
                add(
                    found,
                    "rule-never-matches",
                    path.key("allow_countries").index(i),
                    format!(
                        "{}: the country is in deny_countries too, and deny lists win: \
                         nobody from it can get in",
                        crate::policy::country_name(*code)
                    ),
                );
            }
        }
        for (i, asn) in rules.allow_asns.iter().enumerate() {
            let denied =
                rules.deny_asns.contains(asn) || (!is_global && global.deny_asns.contains(asn));
            if denied {
                add(
                    found,
                    "rule-never-matches",
                    path.key("allow_asns").index(i),
                    format!(
                        "{asn}: the AS number is in deny_asns too, and deny lists win: \
                         nobody from it can get in"
                    ),
                );
            }
        }
    }
}

/// The passive ports one worker draws from: its slice of the range (`PassivePorts::slice`).
/// With `"auto"` the number of workers is the host's, unknown here: the whole range counts.
fn ports_per_worker(total: u32, workers: Workers) -> u32 {
    match workers {
        Workers::Count(n) => {
            let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
            if total < n { total } else { total / n }
        }
        Workers::Auto => total,
    }
}

/// A passive range smaller than what the session limits let sessions hold at once. A
/// logged-in session holds at most [`PASSIVE_PORTS_PER_SESSION`] port (from PASV/EPSV to the
/// data connection), so:
/// - one client address may have `sessions_per_ip` sessions, all landing on one worker:
///   with fewer ports in a worker's slice, one client (a partner's parallel batch, or a
///   hostile one sending PASV and never connecting) leaves the others 425;
/// - when every user has `limits.sessions`, their sum (at most `sessions_total`) is the
///   number of sessions that can transfer at once: the whole range should hold them
///   (unless `passive.shared`: then sessions of different addresses share a port).
///
/// `sessions_total` alone is not compared: its default (10000) is a safety cap, not a load
/// the default range (1000 ports) is meant for.
pub fn passive_range_too_small(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let policy = cx.policy;
    let (first, last) = policy.passive.ports;
    let total = u32::from(last.saturating_sub(first)) + 1;
    let limits = &policy.defaults.limits;
    let per_worker = ports_per_worker(total, policy.workers);
    let per_ip = limits
        .sessions_per_ip
        .saturating_mul(PASSIVE_PORTS_PER_SESSION);
    let path = JsonPath::root().key("passive").key("ports");
    // An unlimited sessions_per_ip is warned about as such (`unlimited`).
    if per_worker < per_ip && limits.sessions_per_ip < LINT_UNLIMITED_COUNT {
        let slice = if per_worker < total {
            format!("{per_worker} per worker ({total} in all)")
        } else {
            format!("{total}")
        };
        add(
            found,
            "passive-range",
            path,
            format!(
                "{first}-{last}: {slice} passive ports, but one client address may have \
                 {} sessions (sessions_per_ip), each holding a passive port from PASV to \
                 its data connection: one client can take every port and leave others \
                 425; widen the range or lower sessions_per_ip",
                limits.sessions_per_ip
            ),
        );
        return;
    }
    if policy.passive.shared {
        // Sessions of different addresses share the ports: only one address's count is a
        // demand on the range.
        return;
    }
    let per_user: Option<u32> = policy.users.values().try_fold(0u32, |sum, user| {
        Some(sum.saturating_add(user.limits.sessions.filter(|&s| s < LINT_UNLIMITED_COUNT)?))
    });
    let Some(per_user) = per_user.filter(|_| !policy.users.is_empty()) else {
        return;
    };
    let sessions = per_user.min(limits.sessions_total);
    let demand = sessions.saturating_mul(PASSIVE_PORTS_PER_SESSION);
    if total < demand {
        add(
            found,
            "passive-range",
            path,
            format!(
                "{first}-{last}: {total} passive ports, but the users' session limits let \
                 {sessions} sessions run at once, each holding a passive port from PASV to \
                 its data connection: at the peak, transfers get 425; widen the range to \
                 at least {demand} ports"
            ),
        );
    }
}

/// Certificates the policy names that have expired or expire within
/// [`LINT_CERTIFICATE_DAYS`] days: the one shown to clients, and the pinned and client
/// certificates toward backends.
pub fn certificates_expiring(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let mut named = Vec::new();
    if let Some(tls) = &cx.policy.tls {
        for (i, identity) in tls.identities.iter().enumerate() {
            named.push((
                tls.identity_path(i).key("certificate"),
                &identity.certificate,
            ));
        }
    }
    for backend in cx.policy.backends.values() {
        let path = JsonPath::root().key("backends").key(&backend.name);
        let settings = &backend.tls_settings;
        if let Some(pinned) = &settings.pinned_certificate {
            named.push((path.key("pinned_certificate"), pinned));
        }
        if let Some(client) = &settings.client_certificate {
            named.push((path.key("client_certificate"), client));
        }
    }
    let now = cx.host.now();
    for (path, file) in named {
        let Some(not_after) = cx.host.certificate_not_after(file) else {
            continue;
        };
        let left = not_after.saturating_sub(now);
        let reason = if left <= 0 {
            format!(
                "{}: the certificate expired {} ago; TLS peers refuse it",
                file.display(),
                days(left.saturating_neg() / 86_400)
            )
        } else if left < LINT_CERTIFICATE_DAYS * 86_400 {
            format!(
                "{}: the certificate expires in {} (within {LINT_CERTIFICATE_DAYS}); \
                 renew it before TLS peers refuse it",
                file.display(),
                days(left / 86_400)
            )
        } else {
            continue;
        };
        add(found, "certificate-expiry", path, reason);
    }
}

/// `tls.certificates` in an order that defeats it: a certificate with the key type of one
/// listed before it is never chosen (each client gets the first it can verify), and a
/// certificate with an ECDSA or EdDSA key listed after an RSA one is shown only to the
/// clients that refuse RSA, which are practically none: every client then pays for the RSA
/// handshake (about 40 times the CPU of an ECDSA P-256 signature in ring).
pub fn certificate_order(cx: &Context<'_>, found: &mut Vec<Finding>) {
    let Some(tls) = &cx.policy.tls else {
        return;
    };
    if tls.identities.len() < 2 {
        return;
    }
    let types: Vec<Option<KeyType>> = tls
        .identities
        .iter()
        .map(|identity| cx.host.certificate_key_type(&identity.certificate))
        .collect();
    for (i, (identity, key)) in tls.identities.iter().zip(&types).enumerate() {
        let Some(key) = *key else {
            continue;
        };
        let earlier = |wanted: KeyType| types[..i].iter().position(|t| *t == Some(wanted));
        let path = tls.identity_path(i).key("certificate");
        let file = identity.certificate.display();
        if let Some(j) = earlier(key) {
            add(
                found,
                "certificate-never-chosen",
                path,
                format!(
                    "{file}: an {} certificate like {}'s, which comes first: every client \
                     that could verify this one gets that one, so this one is never shown",
                    key.name(),
                    tls.identity_path(j)
                ),
            );
        } else if key != KeyType::Rsa {
            if let Some(j) = earlier(KeyType::Rsa) {
                add(
                    found,
                    "certificate-order",
                    path,
                    format!(
                        "{file}: this {} certificate comes after the RSA one of {}, which \
                         nearly every client accepts: only clients that refuse RSA get this \
                         one, and the others pay for RSA handshakes; list it first",
                        key.name(),
                        tls.identity_path(j)
                    ),
                );
            }
        }
    }
}

/// `1 day`, `3 days` (`less than a day` for 0).
fn days(n: i64) -> String {
    match n {
        0 => "less than a day".to_owned(),
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    }
}
