//! What a reload (SIGHUP) can apply to a running gateway, and what needs a restart.
//!
//! A reload is applied whole or not at all: a new policy that changes a key only a restart
//! can change is refused as a whole, with the change named, and the old policy stays.
//! Everything else applies to new sessions at once (sessions in flight keep the policy they
//! started with), listeners included: added ones are bound, removed ones closed, a changed
//! TLS mode serves the next connection.

use super::{Policy, Workers};

/// The keys only a restart can change, and why (for `--check` and the refusal's log line).
pub const RESTART_KEYS: &[(&str, &str)] = &[
    (
        "workers",
        "the number of worker processes is fixed at start",
    ),
    (
        "passive.ports",
        "each worker serves a slice of the passive range, fixed at start",
    ),
    (
        "passive.shared",
        "who owns a passive port (a session, or the worker for its sessions) is fixed at start",
    ),
    ("user", "root is given up at start, for good"),
    ("metrics.listen", "worker 0 binds the metrics port at start"),
];

/// The changes from `old` to `new` that a reload cannot apply, each as `key: old -> new`.
/// Empty: `new` can be reloaded.
pub fn restart_needed(old: &Policy, new: &Policy) -> Vec<String> {
    let mut changes = Vec::new();
    if old.workers != new.workers {
        changes.push(format!(
            "workers: {} -> {}",
            workers_name(old.workers),
            workers_name(new.workers)
        ));
    }
    if old.user != new.user {
        changes.push(format!("user: {} -> {}", old.user, new.user));
    }
    if old.metrics_listen != new.metrics_listen {
        let name = |a: Option<std::net::SocketAddr>| a.map_or("none".to_owned(), |a| a.to_string());
        changes.push(format!(
            "metrics.listen: {} -> {}",
            name(old.metrics_listen),
            name(new.metrics_listen)
        ));
    }
    if old.passive.ports != new.passive.ports {
        let (a, b) = old.passive.ports;
        let (c, d) = new.passive.ports;
        changes.push(format!("passive.ports: {a}-{b} -> {c}-{d}"));
    }
    if old.passive.shared != new.passive.shared {
        changes.push(format!(
            "passive.shared: {} -> {}",
            old.passive.shared, new.passive.shared
        ));
    }
    changes
}

fn workers_name(workers: Workers) -> String {
    match workers {
        Workers::Auto => "auto".to_owned(),
        Workers::Count(n) => n.to_string(),
    }
}

/// The `--check` line that says what a reload applies.
pub fn reload_note() -> String {
    let keys: Vec<&str> = RESTART_KEYS.iter().map(|(k, _)| *k).collect();
    let list = match keys.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    format!(
        "reload (SIGHUP, systemctl reload): applies every key, listeners included, except \
         {list} (a restart)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_policy;

    fn policy(extra: &str) -> Policy {
        let doc = format!(
            r#"{{ "listeners": [ {{ "address": "127.0.0.1:2121" }} ],
                 "backends": {{ "b": {{ "servers": ["127.0.0.1:21"] }} }},
                 "roles": {{ "r": {{ "allow": ["RETR"] }} }},
                 "users": {{ "u": {{ "role": "r", "backend": "b" }} }} {extra} }}"#
        );
        match parse_policy(&doc) {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn listeners_users_and_limits_reload_but_workers_and_passive_ports_need_a_restart() {
        let base = policy(r#", "workers": 2, "passive": { "ports": "50000-50099" }"#);
        let reloadable = policy(
            r#", "workers": 2, "passive": { "ports": "50000-50099", "advertise": "192.0.2.1" },
               "drain_timeout": 5"#,
        );
        assert_eq!(restart_needed(&base, &reloadable), Vec::<String>::new());
        let more_workers = policy(r#", "workers": 4, "passive": { "ports": "50000-50099" }"#);
        assert_eq!(restart_needed(&base, &more_workers), ["workers: 2 -> 4"]);
        let ports = policy(r#", "workers": "auto", "passive": { "ports": "51000-51099" }"#);
        assert_eq!(
            restart_needed(&base, &ports),
            [
                "workers: 2 -> auto",
                "passive.ports: 50000-50099 -> 51000-51099"
            ]
        );
        let shared =
            policy(r#", "workers": 2, "passive": { "ports": "50000-50099", "shared": true }"#);
        assert_eq!(
            restart_needed(&base, &shared),
            ["passive.shared: false -> true"]
        );
        assert!(
            reload_note()
                .contains("except workers, passive.ports, passive.shared, user and metrics.listen")
        );
    }
}
