//! Who may come in, as pure decisions: a new connection (audit trail, global access rules,
//! bans, session limits), a known user's login before any backend is contacted (the user's
//! access rules and time windows, the backend-connect queue, the user's session cap), and a
//! data connection (its source address, its TLS session).
//!
//! The shell reads the facts (counters, the clock, the audit sink's state) and performs the
//! outcome; the decisions themselves live here, with their unit tests. A refusal is a
//! [`Refusal`]: what the client is told, what the audit trail records, and whether it counts
//! as a failed login.

use std::net::IpAddr;
use std::time::Duration;

pub use crate::ftp::address::same_ip;
use crate::limits::DATA_TLS_BRIDGE_WINDOW;
use crate::policy::{Policy, TlsSessionReuse, windows_allow};

/// Why a connection or a login is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `audit.on_failure` is "refuse_sessions" and no sink takes events.
    AuditUnavailable,
    /// A global access rule (address, country, AS) refused the connection.
    AccessRule(String),
    /// The address is banned after too many failed logins.
    Banned(IpAddr),
    /// `defaults.limits.sessions_total` is reached.
    SessionsTotal(u32),
    /// `defaults.limits.sessions_per_ip` is reached for the address.
    SessionsPerIp(u32, IpAddr),
    /// The user's own access rules refused the login.
    UserAccess { user: String, rule: String },
    /// The login came outside the user's time windows.
    OutsideTimeWindows { user: String },
    /// The worker has `sessions_waiting_for_backend` sessions connecting to backends.
    WaitingForBackend(u32),
    /// The user has its `limits.sessions` logged in.
    UserSessions { user: String, cap: u32 },
}

impl Refusal {
    /// The text of the reply: 421 for a connection refused at once and for a limit at login;
    /// a login refused by the user's rules gets the same 530 as a wrong password.
    pub fn reply_text(&self) -> &'static str {
        match self {
            Refusal::AuditUnavailable => "Audit trail unavailable; try again later.",
            Refusal::AccessRule(_) => "Access denied from your address.",
            Refusal::Banned(_) => "Too many failed logins; try again later.",
            Refusal::SessionsTotal(_) => "Too many sessions; try again later.",
            Refusal::SessionsPerIp(..) => "Too many sessions from your address.",
            Refusal::UserAccess { .. } | Refusal::OutsideTimeWindows { .. } => "Login incorrect.",
            Refusal::WaitingForBackend(_) => {
                "Too many sessions waiting for a server; try again later."
            }
            Refusal::UserSessions { .. } => "Too many sessions for this user.",
        }
    }

    /// The `kind` of its `policy_violation` event.
    pub fn audit_kind(&self) -> &'static str {
        match self {
            Refusal::AuditUnavailable => "audit_unavailable",
            Refusal::AccessRule(_)
            | Refusal::UserAccess { .. }
            | Refusal::OutsideTimeWindows { .. } => "access_rule",
            Refusal::Banned(_) => "failed_logins",
            Refusal::SessionsTotal(_)
            | Refusal::SessionsPerIp(..)
            | Refusal::WaitingForBackend(_)
            | Refusal::UserSessions { .. } => "limit",
        }
    }

    /// The `detail` of its `policy_violation` event: the rule that refused.
    pub fn detail(&self) -> String {
        match self {
            Refusal::AuditUnavailable => "the audit trail is unavailable".to_string(),
            Refusal::AccessRule(rule) => format!("access: {rule}"),
            Refusal::Banned(ip) => format!("{ip} is banned after too many failed logins"),
            Refusal::SessionsTotal(n) => format!("limits.sessions_total {n} reached"),
            Refusal::SessionsPerIp(n, ip) => {
                format!("limits.sessions_per_ip {n} reached for {ip}")
            }
            Refusal::UserAccess { user, rule } => format!("user {user}: {rule}"),
            Refusal::OutsideTimeWindows { user } => {
                format!("user {user}: outside its time windows")
            }
            Refusal::WaitingForBackend(n) => {
                format!("limits.sessions_waiting_for_backend {n} reached")
            }
            Refusal::UserSessions { user, cap } => {
                format!("limits.sessions {cap} reached for user {user}")
            }
        }
    }

    /// Whether it counts toward `failed_logins_per_ip` like a wrong password (so that it
    /// cannot be told apart from one): the user's own rules do, limits do not.
    pub fn counts_as_failed_login(&self) -> bool {
        matches!(
            self,
            Refusal::UserAccess { .. } | Refusal::OutsideTimeWindows { .. }
        )
    }

    /// Whether the session is closed with 421 (a limit) rather than answered like a wrong
    /// password.
    pub fn closes_session(&self) -> bool {
        !self.counts_as_failed_login()
    }
}

/// What the shell knows when a client connects.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionFacts {
    /// An audit sink takes events (or the policy says to go on without one).
    pub audit_accepting: bool,
    /// The address is banned (in any worker).
    pub banned: bool,
    /// Sessions open in all workers.
    pub sessions_total: u64,
    /// Sessions open from this address in all workers.
    pub sessions_from_ip: u64,
}

/// A new connection from `ip`: in this order, the audit trail, the global access rules, a
/// ban, the session limits.
pub fn admit_connection(
    policy: &Policy,
    ip: IpAddr,
    facts: &ConnectionFacts,
) -> Result<(), Refusal> {
    // SECURITY: no session without its audit trail (audit.on_failure "refuse_sessions").
    if !facts.audit_accepting {
        return Err(Refusal::AuditUnavailable);
    }
    // SECURITY: the global access rules (source CIDR, country, ASN) come first.
    if let Err(rule) = policy.access.check(ip, policy.geo.as_deref()) {
        return Err(Refusal::AccessRule(rule.to_string()));
    }
    // SECURITY: an address banned for failed logins is refused before it may try again.
    if facts.banned {
        return Err(Refusal::Banned(ip));
    }
    let limits = &policy.defaults.limits;
    if facts.sessions_total >= u64::from(limits.sessions_total) {
        return Err(Refusal::SessionsTotal(limits.sessions_total));
    }
    if facts.sessions_from_ip >= u64::from(limits.sessions_per_ip) {
        return Err(Refusal::SessionsPerIp(limits.sessions_per_ip, ip));
    }
    Ok(())
}

/// What the shell knows when a known user's login is about to contact a backend.
#[derive(Clone, Copy, Debug)]
pub struct LoginFacts {
    /// Wall-clock seconds since the epoch (time windows).
    pub unix_now: i64,
    /// Sessions of this worker connecting to a backend.
    pub waiting_for_backend: u32,
    /// The user's logged-in sessions in all workers.
    pub user_sessions: u64,
}

/// The login of `user` from `ip`, before any backend is contacted: the user's access rules,
/// its time windows, the worker's backend-connect queue, the user's session cap. A name the
/// policy does not know is not refused here (it fails later, like a wrong password, without
/// a backend).
pub fn admit_login(
    policy: &Policy,
    user: &str,
    ip: IpAddr,
    facts: &LoginFacts,
) -> Result<(), Refusal> {
    let Some(entry) = policy.user(user) else {
        return Ok(());
    };
    // SECURITY: the user's own access rules and time windows, before any backend.
    if let Err(rule) = entry.access.check(ip, policy.geo.as_deref()) {
        return Err(Refusal::UserAccess {
            user: user.to_string(),
            rule: rule.to_string(),
        });
    }
    if !windows_allow(&entry.time_windows, facts.unix_now) {
        return Err(Refusal::OutsideTimeWindows {
            user: user.to_string(),
        });
    }
    let queue = policy.defaults.limits.sessions_waiting_for_backend;
    if facts.waiting_for_backend >= queue {
        return Err(Refusal::WaitingForBackend(queue));
    }
    if let Some(cap) = entry.limits.sessions {
        if facts.user_sessions >= u64::from(cap) {
            return Err(Refusal::UserSessions {
                user: user.to_string(),
                cap,
            });
        }
    }
    Ok(())
}

/// Dry run (`enforce: false` for this user): whether `refusal` of its login is one the dry
/// run lets through, recorded as `would_deny`. Only the user's own access rules and time
/// windows; the limits (a full backend queue, the user's session cap) stay enforced, like
/// every protection.
pub fn dry_run_lets_through(policy: &Policy, user: &str, refusal: &Refusal) -> bool {
    policy.user(user).is_some_and(|u| !u.enforce)
        && matches!(
            refusal,
            Refusal::UserAccess { .. } | Refusal::OutsideTimeWindows { .. }
        )
}

/// SECURITY: port theft. A connection to a passive port is the client's only when it comes
/// from the client's own control-connection address.
pub fn data_source_allowed(peer: IpAddr, client: IpAddr) -> bool {
    same_ip(peer, client)
}

/// What ftpgate knows when a client's protected data connection finished its handshake.
#[derive(Clone, Copy, Debug)]
pub struct DataTlsFacts {
    /// Whether the handshake resumed the control connection's session; `None` for a data
    /// connection without TLS (nothing to check).
    pub resumed: Option<bool>,
    /// The user's `tls_session_reuse`.
    pub reuse: TlsSessionReuse,
    /// The data connection's peer address (`None` if the socket no longer knows it).
    pub peer: Option<IpAddr>,
    /// The control connection's peer address.
    pub control_peer: IpAddr,
    /// How long ago ftpgate started the transfer the connection is for (the transfer
    /// command had come and the backend had answered its PASV); `None` when no transfer
    /// was started.
    pub since_transfer: Option<Duration>,
}

/// Whether a protected data connection may carry the transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataTlsVerdict {
    /// It resumed the control session, it has no TLS, or the user does not require reuse.
    Accept,
    /// A fresh handshake accepted for a `"bridge"` user: to be audited as a policy exception.
    Bridged,
    /// A fresh handshake where reuse is required, or outside the bridge's conditions.
    Refuse,
}

/// A protected data connection must resume the control connection's TLS session
/// (vsftpd's require_ssl_reuse) unless the user's policy says otherwise: `false` accepts
/// any handshake; `"bridge"` accepts a fresh one only from the control connection's own
/// address and at most [`DATA_TLS_BRIDGE_WINDOW`] after the transfer started (the clients
/// that cannot resume start their handshake right after the 150), so a thief has neither
/// another address nor time: it would have to be on the client's address and complete its
/// handshake in that moment, the same exposure as plain FTP's passive port.
pub fn data_tls_acceptable(facts: &DataTlsFacts) -> DataTlsVerdict {
    match (facts.resumed, facts.reuse) {
        (None | Some(true), _) | (Some(false), TlsSessionReuse::Off) => DataTlsVerdict::Accept,
        (Some(false), TlsSessionReuse::Required) => DataTlsVerdict::Refuse,
        (Some(false), TlsSessionReuse::Bridge) => {
            // SECURITY: the bridge is for the client's own connection only: its address,
            // and the moment its transfer command asked for it.
            let own_address = facts.peer.is_some_and(|p| same_ip(p, facts.control_peer));
            let in_window = facts
                .since_transfer
                .is_some_and(|d| d <= DATA_TLS_BRIDGE_WINDOW);
            if own_address && in_window {
                DataTlsVerdict::Bridged
            } else {
                DataTlsVerdict::Refuse
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_policy;

    fn policy(extra: &str) -> Policy {
        let text = format!(
            r#"{{
  "listeners": [ {{ "address": "127.0.0.1:2121" }} ],
  "backends": {{ "b": {{ "servers": ["127.0.0.1:21"] }} }},
  "roles": {{ "ro": {{ "allow": ["RETR"] }} }},
  "users": {{
    "alice": {{ "role": "ro", "backend": "b", "limits": {{ "sessions": 2 }} }},
    "office": {{ "role": "ro", "backend": "b", "allow_from": ["10.0.0.0/8"] }},
    "night": {{ "role": "ro", "backend": "b",
               "time_windows": [ {{ "days": "mon-sun", "hours": "22:00-23:00", "utc_offset": "Z" }} ] }}
  }},
  "defaults": {{ "limits": {{ "sessions_total": 100, "sessions_per_ip": 3,
                              "sessions_waiting_for_backend": 5 }} }}
  {extra}
}}"#
        );
        match parse_policy(&text) {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        }
    }

    const OPEN: ConnectionFacts = ConnectionFacts {
        audit_accepting: true,
        banned: false,
        sessions_total: 0,
        sessions_from_ip: 0,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_connection_is_checked_in_order_and_each_refusal_says_why() {
        let p = policy(r#", "access": { "deny_from": ["192.0.2.0/24"] }"#);
        let client = ip("198.51.100.7");
        assert_eq!(admit_connection(&p, client, &OPEN), Ok(()));
        let cases = [
            (
                ConnectionFacts {
                    audit_accepting: false,
                    banned: true,
                    ..OPEN
                },
                Refusal::AuditUnavailable,
            ),
            (
                ConnectionFacts {
                    banned: true,
                    sessions_total: 100,
                    ..OPEN
                },
                Refusal::Banned(client),
            ),
            (
                ConnectionFacts {
                    sessions_total: 100,
                    sessions_from_ip: 3,
                    ..OPEN
                },
                Refusal::SessionsTotal(100),
            ),
            (
                ConnectionFacts {
                    sessions_from_ip: 3,
                    ..OPEN
                },
                Refusal::SessionsPerIp(3, client),
            ),
        ];
        for (facts, refusal) in cases {
            assert_eq!(admit_connection(&p, client, &facts), Err(refusal));
        }
        let denied = admit_connection(&p, ip("192.0.2.9"), &OPEN).expect_err("denied");
        assert!(matches!(denied, Refusal::AccessRule(_)));
        assert_eq!(denied.reply_text(), "Access denied from your address.");
        assert_eq!(denied.audit_kind(), "access_rule");
        assert!(
            denied.detail().starts_with("access: "),
            "{}",
            denied.detail()
        );
    }

    #[test]
    fn connection_refusals_close_and_never_count_as_failed_logins() {
        for r in [
            Refusal::AuditUnavailable,
            Refusal::AccessRule("x".into()),
            Refusal::Banned(ip("192.0.2.1")),
            Refusal::SessionsTotal(1),
            Refusal::SessionsPerIp(1, ip("192.0.2.1")),
        ] {
            assert!(r.closes_session(), "{r:?}");
            assert!(!r.counts_as_failed_login(), "{r:?}");
        }
        assert_eq!(
            Refusal::SessionsPerIp(20, ip("192.0.2.7")).detail(),
            "limits.sessions_per_ip 20 reached for 192.0.2.7"
        );
        assert_eq!(
            Refusal::Banned(ip("192.0.2.7")).detail(),
            "192.0.2.7 is banned after too many failed logins"
        );
    }

    const LOGIN: LoginFacts = LoginFacts {
        unix_now: 1_795_000_000, // 2026-11-18 11:06:40 UTC, a Wednesday
        waiting_for_backend: 0,
        user_sessions: 0,
    };

    #[test]
    fn a_login_is_checked_against_the_users_own_rules_then_the_limits() {
        let p = policy("");
        let client = ip("198.51.100.7");
        assert_eq!(admit_login(&p, "alice", client, &LOGIN), Ok(()));
        assert_eq!(
            admit_login(&p, "nobody", client, &LOGIN),
            Ok(()),
            "unknown names fail later, without a backend"
        );
        let office = admit_login(&p, "office", client, &LOGIN).expect_err("outside 10/8");
        assert!(matches!(office, Refusal::UserAccess { .. }));
        assert!(office.counts_as_failed_login());
        assert_eq!(office.reply_text(), "Login incorrect.");
        assert_eq!(admit_login(&p, "office", ip("10.1.2.3"), &LOGIN), Ok(()));
        let night = admit_login(&p, "night", client, &LOGIN).expect_err("11:06 is not 22-23");
        assert_eq!(
            night,
            Refusal::OutsideTimeWindows {
                user: "night".into()
            }
        );
        assert!(night.counts_as_failed_login());
        let at_22 = LoginFacts {
            unix_now: 1_795_000_000 - 11 * 3600 - 400 + 22 * 3600 + 60,
            ..LOGIN
        };
        assert_eq!(admit_login(&p, "night", client, &at_22), Ok(()));
        let queue = LoginFacts {
            waiting_for_backend: 5,
            ..LOGIN
        };
        let full = admit_login(&p, "alice", client, &queue).expect_err("queue full");
        assert_eq!(full, Refusal::WaitingForBackend(5));
        assert!(full.closes_session());
        let capped = LoginFacts {
            user_sessions: 2,
            ..LOGIN
        };
        let cap = admit_login(&p, "alice", client, &capped).expect_err("cap");
        assert_eq!(cap.detail(), "limits.sessions 2 reached for user alice");
        assert_eq!(cap.audit_kind(), "limit");
        assert_eq!(cap.reply_text(), "Too many sessions for this user.");
    }

    #[test]
    fn a_data_connection_must_come_from_the_clients_address() {
        assert!(data_source_allowed(ip("192.0.2.7"), ip("192.0.2.7")));
        assert!(data_source_allowed(ip("::ffff:192.0.2.7"), ip("192.0.2.7")));
        assert!(!data_source_allowed(ip("192.0.2.8"), ip("192.0.2.7")));
        assert!(!data_source_allowed(ip("::1"), ip("127.0.0.1")));
    }

    fn facts(resumed: Option<bool>, reuse: TlsSessionReuse) -> DataTlsFacts {
        DataTlsFacts {
            resumed,
            reuse,
            peer: Some(ip("192.0.2.7")),
            control_peer: ip("192.0.2.7"),
            since_transfer: Some(Duration::from_millis(40)),
        }
    }

    #[test]
    fn a_protected_data_connection_must_resume_unless_the_user_allows_otherwise() {
        use DataTlsVerdict::*;
        use TlsSessionReuse::*;
        let table = [
            (None, Required, Accept),
            (None, Bridge, Accept),
            (Some(true), Required, Accept),
            (Some(true), Bridge, Accept),
            (Some(true), Off, Accept),
            (Some(false), Required, Refuse),
            (Some(false), Off, Accept),
            (Some(false), Bridge, Bridged),
        ];
        for (resumed, reuse, verdict) in table {
            assert_eq!(
                data_tls_acceptable(&facts(resumed, reuse)),
                verdict,
                "{resumed:?} {reuse:?}"
            );
        }
    }

    #[test]
    fn the_bridge_takes_only_the_clients_own_address_in_the_window() {
        let bridged = |f: DataTlsFacts| data_tls_acceptable(&f);
        let base = facts(Some(false), TlsSessionReuse::Bridge);
        assert_eq!(bridged(base), DataTlsVerdict::Bridged);
        // The window's edge is inside; just after it is not.
        let edge = DataTlsFacts {
            since_transfer: Some(DATA_TLS_BRIDGE_WINDOW),
            ..base
        };
        assert_eq!(bridged(edge), DataTlsVerdict::Bridged);
        let late = DataTlsFacts {
            since_transfer: Some(DATA_TLS_BRIDGE_WINDOW + Duration::from_millis(1)),
            ..base
        };
        assert_eq!(bridged(late), DataTlsVerdict::Refuse);
        // Ahead of any transfer command: nothing asked for this connection yet.
        let early = DataTlsFacts {
            since_transfer: None,
            ..base
        };
        assert_eq!(bridged(early), DataTlsVerdict::Refuse);
        // Another address (an active connection to an FXP peer, say), or none known.
        let foreign = DataTlsFacts {
            peer: Some(ip("192.0.2.8")),
            ..base
        };
        assert_eq!(bridged(foreign), DataTlsVerdict::Refuse);
        let unknown = DataTlsFacts { peer: None, ..base };
        assert_eq!(bridged(unknown), DataTlsVerdict::Refuse);
        // The same address written as IPv4-mapped IPv6 is the same client.
        let mapped = DataTlsFacts {
            peer: Some(ip("::ffff:192.0.2.7")),
            ..base
        };
        assert_eq!(bridged(mapped), DataTlsVerdict::Bridged);
    }

    #[test]
    fn a_dry_run_lets_through_the_users_rules_but_not_the_limits() {
        let p = policy(r#", "enforce": false"#);
        let client = ip("192.0.2.7");
        let office = admit_login(&p, "office", client, &LOGIN).expect_err("outside 10/8");
        assert!(dry_run_lets_through(&p, "office", &office));
        let night = admit_login(&p, "night", client, &LOGIN).expect_err("not 22-23");
        assert!(dry_run_lets_through(&p, "night", &night));
        let cap = Refusal::UserSessions {
            user: "alice".into(),
            cap: 2,
        };
        assert!(!dry_run_lets_through(&p, "alice", &cap), "limits stay");
        assert!(!dry_run_lets_through(
            &p,
            "alice",
            &Refusal::WaitingForBackend(5)
        ));
        // Enforced (the default): nothing is let through.
        let p = policy("");
        assert!(!dry_run_lets_through(&p, "office", &office));
    }
}
