//! The trace of [`explain`]: each decision, the rule that made it at its line:column, the
//! backend and the limits.

use super::*;
use crate::policy::parse_policy;

const POLICY: &str = r#"{
  "listeners": [{ "address": "127.0.0.1:2121" }],
  "backends": { "files": { "servers": ["127.0.0.1:21"] },
                "archive": { "servers": ["127.0.0.2:21", "127.0.0.3:21"], "balance": "first-available" } },
  "routing": { "user_at_host": true, "targets": { "old": "archive" } },
  "roles": { "read": { "allow": ["LIST", "RETR", "XCWD"] } },
  "access": { "deny_from": ["198.51.100.0/24", "10.9.0.0/16"] },
  "users": { "alice": { "role": "read", "backend": "files",
                        "allow_from": ["192.0.2.0/24", "10.0.0.0/8"],
                        "time_windows": [{ "days": "mon-fri", "hours": "08:00-18:00", "utc_offset": "+01:00" }],
                        "limits": { "sessions": 4 } } },
  "defaults": { "timeouts": { "idle": 120 } }
}"#;

/// Wednesday 2026-12-02 10:00 at +01:00.
const WEDNESDAY_10: i64 = 1_796_202_000;

fn trace(user: &str, from: &str, at: i64, command: &str) -> Trace {
    let policy = parse_policy(POLICY).unwrap_or_else(|e| panic!("{e:?}"));
    let from = from.parse().expect("address");
    explain(
        &policy,
        POLICY,
        &Query {
            user,
            from,
            at,
            cwd: "/",
            command,
        },
    )
}

/// 1-based line:column of the first `needle` in the policy.
fn at(needle: &str) -> (usize, usize) {
    let offset = POLICY.find(needle).unwrap_or_else(|| panic!("{needle}"));
    locate::line_col(POLICY, offset)
}

fn last(trace: &Trace) -> &Step {
    trace.steps.last().expect("a step")
}

#[test]
fn an_allowed_download_names_every_rule_the_backend_and_the_limits() {
    let t = trace("alice", "192.0.2.7", WEDNESDAY_10, "RETR /a/b");
    assert_eq!(t.decision, Decision::Allow);
    assert_eq!(t.reply, None);
    let checks: Vec<(&str, Decision)> = t.steps.iter().map(|s| (s.check, s.decision)).collect();
    assert_eq!(
        checks,
        [
            ("user", Decision::Allow),
            ("access", Decision::Allow),
            ("user_access", Decision::Allow),
            ("time_windows", Decision::Allow),
            ("role", Decision::Allow),
        ]
    );
    let role = last(&t);
    assert_eq!(role.rule, "roles.read.allow[1]");
    assert_eq!((role.line, role.column), at("\"RETR\""));
    assert_eq!(t.steps[3].rule, "users.alice.time_windows[0]");
    let backend = t.backend.as_ref().expect("backend");
    assert_eq!(backend.pool, "files");
    assert_eq!(backend.rule, "users.alice.backend");
    assert_eq!((backend.line, backend.column), at("\"files\",\n"));
    let sessions = t
        .limits
        .iter()
        .find(|l| l.name == "sessions")
        .expect("sessions");
    assert_eq!(sessions.value, "4");
    assert_eq!((sessions.line, sessions.column), at("4 }"));
    let idle = t
        .limits
        .iter()
        .find(|l| l.name == "timeouts.idle")
        .expect("idle");
    assert_eq!(
        (idle.value.as_str(), idle.rule.as_str()),
        ("120 s", "defaults.timeouts.idle")
    );
    let login = t
        .limits
        .iter()
        .find(|l| l.name == "timeouts.login")
        .expect("login");
    assert_eq!((login.rule.as_str(), login.line), ("built-in default", 0));
    // An X-alias is found under its normal name.
    let t = trace("alice", "192.0.2.7", WEDNESDAY_10, "CWD /a");
    assert_eq!(last(&t).rule, "roles.read.allow[2]");
}

#[test]
fn each_refusal_stops_at_its_rule() {
    // The role: a file action gets 550.
    let t = trace("alice", "192.0.2.7", WEDNESDAY_10, "STOR /a/b");
    assert_eq!(t.decision, Decision::Deny);
    assert_eq!(t.reply.as_deref(), Some("550 Permission denied."));
    assert_eq!(last(&t).rule, "roles.read.allow");
    assert_eq!((last(&t).line, last(&t).column), at("\"allow\""));
    // The global deny list, at the entry that matched.
    let t = trace("alice", "10.9.1.1", WEDNESDAY_10, "RETR /a/b");
    assert_eq!(
        t.reply.as_deref(),
        Some("421 Access denied from your address.")
    );
    assert_eq!(last(&t).rule, "access.deny_from[1]");
    assert_eq!((last(&t).line, last(&t).column), at("\"10.9.0.0/16\""));
    // The user's allow list, which nothing matched.
    let t = trace("alice", "203.0.113.9", WEDNESDAY_10, "RETR /a/b");
    assert_eq!(
        (last(&t).check, last(&t).rule.as_str()),
        ("user_access", "users.alice.allow_from")
    );
    assert_eq!(t.reply.as_deref(), Some("530 Login incorrect."));
    // Outside the time windows (Saturday).
    let t = trace("alice", "192.0.2.7", WEDNESDAY_10 + 3 * 86_400, "RETR /a/b");
    assert_eq!(
        (last(&t).check, last(&t).decision),
        ("time_windows", Decision::Deny)
    );
    assert_eq!(t.steps.len(), 4, "the role is not reached");
    // An unknown user: no backend, 530.
    let t = trace("mallory", "192.0.2.7", WEDNESDAY_10, "RETR /a/b");
    assert_eq!(t.reply.as_deref(), Some("530 Login incorrect."));
    assert_eq!(t.backend, None);
    assert!(t.limits.is_empty());
    // A command the session refuses before any policy.
    let t = trace("alice", "192.0.2.7", WEDNESDAY_10, "FROB x");
    assert_eq!(t.decision, Decision::Deny);
    assert_eq!(last(&t).rule, "built-in");
}

#[test]
fn a_routed_user_gets_the_targets_pool() {
    let t = trace("alice@old", "192.0.2.7", WEDNESDAY_10, "LIST");
    assert_eq!(t.decision, Decision::Allow);
    let backend = t.backend.as_ref().expect("backend");
    assert_eq!(backend.pool, "archive");
    assert_eq!(backend.rule, "routing.targets.old");
    assert_eq!(backend.balance, "first-available");
    assert_eq!(backend.servers, ["127.0.0.2:21", "127.0.0.3:21"]);
    let t = trace("alice@nowhere", "192.0.2.7", WEDNESDAY_10, "LIST");
    assert_eq!(t.decision, Decision::Deny);
    assert_eq!(last(&t).check, "routing");
    // Plumbing is the session's business, not the role's.
    let t = trace("alice", "192.0.2.7", WEDNESDAY_10, "PASV");
    assert_eq!(t.decision, Decision::Allow);
    assert!(last(&t).detail.contains("plumbing"), "{:?}", last(&t));
}

#[test]
fn the_readable_form_and_the_time_argument() {
    let t = trace("alice", "192.0.2.7", WEDNESDAY_10, "STOR /a/b");
    let text = t.render("p.json");
    let (line, column) = at("\"allow\"");
    assert!(
        text.starts_with("decision: DENY (550 Permission denied.)\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "DENY  role         p.json:{line}:{column} roles.read.allow"
        )),
        "{text}"
    );
    assert!(
        text.contains("backend: files (round-robin, tls none)"),
        "{text}"
    );
    assert_eq!(cli::parse_at("2026-12-02T10:00:00+01:00"), Ok(WEDNESDAY_10));
    assert_eq!(cli::parse_at("2026-12-02T09:00:00Z"), Ok(WEDNESDAY_10));
    assert!(cli::parse_at("yesterday").is_err());
    assert_eq!(rfc3339(WEDNESDAY_10), "2026-12-02T09:00:00Z");
}

#[test]
fn a_dry_run_would_deny_what_the_role_refuses() {
    let doc = POLICY.replacen(
        r#""limits": { "sessions": 4 } }"#,
        r#""limits": { "sessions": 4 }, "enforce": false }"#,
        1,
    );
    assert_ne!(doc, POLICY);
    let policy = parse_policy(&doc).unwrap_or_else(|e| panic!("{e:?}"));
    let query = |command| Query {
        user: "alice",
        from: "192.0.2.7".parse().expect("address"),
        at: WEDNESDAY_10,
        cwd: "/",
        command,
    };
    let t = explain(&policy, &doc, &query("STOR /a/b"));
    assert_eq!(t.decision, Decision::WouldDeny);
    assert_eq!(t.reply.as_deref(), Some("550 Permission denied."));
    assert_eq!(last(&t).decision, Decision::WouldDeny);
    assert!(last(&t).detail.contains("would_deny"), "{:?}", last(&t));
    assert!(
        t.render("p.json")
            .starts_with("decision: WOULD DENY (550 Permission denied. when enforced")
    );
    // What no role can allow is denied under a dry run too.
    let t = explain(&policy, &doc, &query("SITE EXEC /bin/sh"));
    assert_eq!(t.decision, Decision::Deny);
    // And the access rules stay enforced.
    let mut q = query("RETR /a");
    q.from = "10.9.1.1".parse().expect("address");
    assert_eq!(explain(&policy, &doc, &q).decision, Decision::Deny);
}

#[test]
fn the_path_jail_is_a_step_of_its_own_against_the_working_directory() {
    let doc = r#"{
  "listeners": [{ "address": "127.0.0.1:2121" }],
  "backends": { "files": { "servers": ["127.0.0.1:21"] } },
  "roles": { "read": { "allow": ["RETR", "CWD"] } },
  "users": { "bob": { "role": "read", "backend": "files", "paths": ["/in"] },
             "eve": { "role": "read", "backend": "files", "paths": ["/in"], "enforce": false } }
}"#;
    let policy = parse_policy(doc).unwrap_or_else(|e| panic!("{e:?}"));
    let query = |user, cwd, command| Query {
        user,
        from: "192.0.2.7".parse().expect("address"),
        at: WEDNESDAY_10,
        cwd,
        command,
    };
    let t = explain(&policy, doc, &query("bob", "/", "RETR /in/a"));
    assert_eq!(t.decision, Decision::Allow);
    let last = t.steps.last().expect("a step");
    assert_eq!((last.check, last.decision), ("paths", Decision::Allow));
    assert_eq!(last.rule, "users.bob.paths");
    assert_eq!((last.line, last.column), (5, 59));

    let t = explain(&policy, doc, &query("bob", "/in", "RETR ../etc/passwd"));
    assert_eq!(t.decision, Decision::Deny);
    assert_eq!(
        t.reply.as_deref(),
        Some("550 Permission denied: outside your directories.")
    );
    let last = t.steps.last().expect("a step");
    assert_eq!((last.check, last.decision), ("paths", Decision::Deny));
    assert!(last.detail.contains("/etc/passwd"), "{}", last.detail);
    // From inside the jail, a relative name is inside.
    let t = explain(&policy, doc, &query("bob", "/in", "RETR a"));
    assert_eq!(t.decision, Decision::Allow);
    // A role refusal comes first: no jail step.
    let t = explain(&policy, doc, &query("bob", "/", "DELE /etc/x"));
    assert_eq!(t.steps.last().map(|s| s.check), Some("role"));
    // A dry run forwards what the jail refuses.
    let t = explain(&policy, doc, &query("eve", "/", "RETR /etc/passwd"));
    assert_eq!(t.decision, Decision::WouldDeny);
    assert_eq!(
        t.steps.last().map(|s| (s.check, s.decision)),
        Some(("paths", Decision::WouldDeny))
    );
}
