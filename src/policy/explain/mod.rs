//! `ftpgate explain`: what the policy decides for one user, from one address, at one time,
//! for one command, and why.
//!
//! [`explain`] is a pure function of the loaded [`Policy`], the policy file's text (for the
//! line:column of each rule, through `locate.rs`) and a [`Query`]; it walks the checks in the
//! order a session meets them (the user, the global access rules, the user's, the time
//! windows, the role's permission for the command) and stops at the first that refuses, then
//! names the backend pool and the limits that apply. `cli.rs` parses the command line, loads
//! the file and prints the [`Trace`] as text or JSON.
//!
//! The decisions mirror the session's: `AccessRules::decide` and `TimeWindow::contains` are
//! the functions admission calls, `permission::needs` the one the control machine calls.
//! What the session decides by its own rules (PASV, PORT, TLS plumbing) and the counters
//! (sessions in use, bans) are outside a policy explanation and are said to be.

mod cli;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use serde::Serialize;

use crate::ftp::command::{Verb, parse_command};
use crate::ftp::permission::{self, Needs};

use super::locate::{self, JsonPath, Target};
use super::{AccessRules, Policy, User};

pub use cli::run;

/// What to explain.
#[derive(Clone, Debug)]
pub struct Query<'a> {
    /// As the client sends it in USER (`name@target` with `routing.user_at_host`).
    pub user: &'a str,
    pub from: IpAddr,
    /// Unix seconds.
    pub at: i64,
    /// The session's working directory, against which the user's path jail resolves
    /// relative paths (`/` right after login on most servers).
    pub cwd: &'a str,
    /// The command line, e.g. `RETR /a/b`.
    pub command: &'a str,
}

/// Allowed or denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    /// Denied by the role, but forwarded: the user's `enforce` is false (a dry run).
    WouldDeny,
}

/// One rule considered, with where it is in the policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What was checked: `"user"`, `"access"`, `"user_access"`, `"time_windows"`, `"role"`,
    /// `"paths"`.
    pub check: &'static str,
    /// The key or value in the file (`users.alice.deny_from[0]`).
    pub rule: String,
    /// 1-based; 0:0 for a built-in rule that has no place in the file.
    pub line: usize,
    pub column: usize,
    pub decision: Decision,
    pub detail: String,
}

/// The backend pool the session would use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendChoice {
    pub pool: String,
    /// Where the choice is made: the user's `backend`, or `routing.targets.T`.
    pub rule: String,
    pub line: usize,
    pub column: usize,
    pub servers: Vec<String>,
    pub balance: &'static str,
    pub tls: &'static str,
}

/// A limit that applies to the session, and where its value comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Limit {
    pub name: &'static str,
    pub value: String,
    /// The key that sets it, or `"built-in default"` (then at 0:0).
    pub rule: String,
    pub line: usize,
    pub column: usize,
}

/// The explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trace {
    pub decision: Decision,
    /// The reply a refusal gets; `None` when the command is allowed.
    pub reply: Option<String>,
    /// The rules considered, in order; the last one decided when the decision is `deny`.
    pub steps: Vec<Step>,
    /// `None` for an unknown user or target.
    pub backend: Option<BackendChoice>,
    pub limits: Vec<Limit>,
}

/// A step before it is placed in the text.
struct Pending {
    check: &'static str,
    path: JsonPath,
    target: Target,
    decision: Decision,
    detail: String,
}

/// The places of `paths` in `text`; 0:0 for the root path (a built-in rule).
fn places(text: &str, paths: &[(JsonPath, Target)]) -> Vec<(usize, usize)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let queries: Vec<(&[locate::Seg], Target)> =
        paths.iter().map(|(p, t)| (p.segments(), *t)).collect();
    locate::locate_all(text, &queries)
        .into_iter()
        .zip(paths)
        .map(|(place, (path, _))| if path.is_root() { (0, 0) } else { place })
        .collect()
}

/// Whether the document has a value at `path` (the loaded policy has lost that: a default
/// and a value equal to it look the same).
fn present(doc: &serde_json::Value, path: &JsonPath) -> bool {
    let mut node = doc;
    for seg in path.segments() {
        let next = match seg {
            locate::Seg::Key(key) => node.get(key.as_str()),
            locate::Seg::Index(i) => node.get(*i),
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

/// The user name and target of a USER argument (the session's `split_target`).
fn split_user<'a>(policy: &Policy, arg: &'a str) -> (&'a str, Option<&'a str>) {
    match arg.rsplit_once('@') {
        Some((name, target)) if policy.routing.user_at_host && !name.is_empty() => {
            (name, Some(target))
        }
        _ => (arg, None),
    }
}

/// The access-rule step of `rules` at `base` (`access` or `users.NAME`); `None` when there
/// are no rules.
fn access_step(
    policy: &Policy,
    rules: &AccessRules,
    base: JsonPath,
    check: &'static str,
    from: IpAddr,
) -> Option<Pending> {
    if rules.is_empty() {
        return None;
    }
    Some(match rules.decide(from, policy.geo.as_deref()) {
        Ok(()) => Pending {
            check,
            path: base,
            target: Target::Key,
            decision: Decision::Allow,
            detail: format!("{from} passes every rule"),
        },
        Err(denial) => {
            let path = base.key(denial.key);
            let (path, target) = match denial.index {
                Some(i) => (path.index(i), Target::Value),
                None => (path, Target::Key),
            };
            Pending {
                check,
                path,
                target,
                decision: Decision::Deny,
                detail: format!("{from}: {}", denial.text),
            }
        }
    })
}

/// The time-window step; `None` when the user may log in at any time.
fn time_step(user: &User, base: &JsonPath, at: i64) -> Option<Pending> {
    if user.time_windows.is_empty() {
        return None;
    }
    let path = base.key("time_windows");
    Some(
        match user.time_windows.iter().position(|w| w.contains(at)) {
            Some(i) => Pending {
                check: "time_windows",
                path: path.index(i),
                target: Target::Value,
                decision: Decision::Allow,
                detail: format!("{} is inside this window", rfc3339(at)),
            },
            None => Pending {
                check: "time_windows",
                path,
                target: Target::Key,
                decision: Decision::Deny,
                detail: format!("{} is outside every window", rfc3339(at)),
            },
        },
    )
}

/// `at` as RFC 3339 in UTC.
pub fn rfc3339(at: i64) -> String {
    jiff::Timestamp::from_second(at).map_or_else(|_| format!("@{at}"), |t| t.to_string())
}

/// The index in the role's `allow` array (as written) of the first of `verbs` it lists.
fn allow_index(doc: &serde_json::Value, role: &str, verbs: &[Verb]) -> Option<usize> {
    let list = doc.get("roles")?.get(role)?.get("allow")?.as_array()?;
    list.iter().position(|entry| {
        entry
            .as_str()
            .and_then(|name| Verb::from_name(name.as_bytes()))
            .is_some_and(|verb| verbs.contains(&verb))
    })
}

/// The role step for `command`, and the reply of a refusal.
fn role_step(
    policy: &Policy,
    doc: &serde_json::Value,
    user: &User,
    command: &str,
) -> (Pending, Option<String>) {
    let role = policy.role_of(user);
    let base = JsonPath::root().key("roles").key(&role.name);
    let pending = |path, target, decision, detail| Pending {
        check: "role",
        path,
        target,
        decision,
        detail,
    };
    let cmd = match parse_command(command.as_bytes()) {
        Ok(cmd) => cmd,
        Err(err) => {
            let step = pending(
                JsonPath::root(),
                Target::Key,
                Decision::Deny,
                format!("{command:?} is refused before any policy: {err}"),
            );
            return (step, Some("500 (malformed or unknown command)".to_owned()));
        }
    };
    let verb = cmd.verb;
    if verb.is_plumbing() {
        let step = pending(
            JsonPath::root(),
            Target::Key,
            Decision::Allow,
            format!(
                "{} is protocol plumbing, decided by the session's own rules (data-channel \
                 checks, TLS, login), not by the role",
                verb.name()
            ),
        );
        return (step, None);
    }
    let needs = permission::needs(verb, &cmd.arg);
    let granted = needs.granted(|v| role.permits(v));
    let (verbs, wanted) = match needs {
        Needs::All(verbs) => (verbs, "all of"),
        Needs::Any(verbs) => (verbs, "one of"),
        Needs::Never(text) => {
            let step = pending(
                JsonPath::root(),
                Target::Key,
                Decision::Deny,
                format!(
                    "{} is never forwarded, whatever the role: {text}",
                    verb.name()
                ),
            );
            return (step, Some(format!("502 {text}")));
        }
    };
    let names: Vec<&str> = verbs.iter().map(|v| v.name()).collect();
    let needed = format!("needs {wanted} {}", names.join(", "));
    if granted {
        let at = allow_index(doc, &role.name, verbs);
        let path = at.map_or_else(|| base.key("allow"), |i| base.key("allow").index(i));
        let step = pending(
            path,
            Target::Value,
            Decision::Allow,
            format!("{} {needed}; role {:?} allows it", verb.name(), role.name),
        );
        return (step, None);
    }
    let reply = if verb.is_file_action() || needs.touches_files() {
        "550 Permission denied."
    } else {
        "502 Command not permitted."
    };
    let step = pending(
        base.key("allow"),
        Target::Key,
        Decision::Deny,
        format!(
            "{} {needed}; role {:?} does not allow it",
            verb.name(),
            role.name
        ),
    );
    (step, Some(reply.to_owned()))
}

/// What the gateway answers a command its user's path jail refuses.
const JAIL_REFUSAL: &str = "550 Permission denied: outside your directories.";

/// The user's path jail on the command (`users.NAME.paths`), against `query.cwd`; None when
/// the user has none or the command names no path the jail looks at.
fn jail_step(user: &User, query: &Query<'_>) -> Option<Pending> {
    let jail = user.jail.as_ref()?;
    let cmd = parse_command(query.command.as_bytes()).ok()?;
    if cmd.verb.is_plumbing() {
        return None;
    }
    let path = JsonPath::root().key("users").key(&user.name).key("paths");
    let arg = String::from_utf8_lossy(&cmd.arg);
    Some(match jail.check(cmd.verb, &arg, Some(query.cwd)) {
        Ok(()) => Pending {
            check: "paths",
            path,
            target: Target::Key,
            decision: Decision::Allow,
            detail: format!(
                "{} {arg:?} from {:?} stays inside the user's paths",
                cmd.verb.name(),
                query.cwd
            ),
        },
        Err(refusal) => Pending {
            check: "paths",
            path,
            target: Target::Key,
            decision: Decision::Deny,
            detail: format!(
                "{} {} (from {:?})",
                cmd.verb.name(),
                refusal.detail(),
                query.cwd
            ),
        },
    })
}

/// The limits that apply to `user`'s sessions, with the key each comes from.
fn limits(policy: &Policy, doc: &serde_json::Value, user: &User) -> Vec<(Limit, JsonPath)> {
    let own = JsonPath::root().key("users").key(&user.name);
    let defaults = JsonPath::root().key("defaults");
    let mut out = Vec::new();
    let mut push = |name: &'static str, value: Option<String>, candidates: Vec<JsonPath>| {
        let Some(value) = value else { return };
        let path = candidates
            .into_iter()
            .find(|path| present(doc, path))
            .unwrap_or_else(JsonPath::root);
        let rule = if path.is_root() {
            "built-in default".to_owned()
        } else {
            path.to_string()
        };
        out.push((
            Limit {
                name,
                value,
                rule,
                line: 0,
                column: 0,
            },
            path,
        ));
    };
    let l = &user.limits;
    let g = &policy.defaults.limits;
    let own_limit = |key: &str| own.key("limits").key(key);
    let default_limit = |key: &str| defaults.key("limits").key(key);
    push(
        "sessions",
        l.sessions.map(|v| v.to_string()),
        vec![own_limit("sessions")],
    );
    for (name, value) in [
        ("max_file_size", l.max_file_size),
        ("rate", l.rate),
        ("user_rate", l.user_rate),
    ] {
        push(
            name,
            value.map(|v| v.to_string()),
            vec![own_limit(name), default_limit(name)],
        );
    }
    push(
        "sessions_per_ip",
        Some(g.sessions_per_ip.to_string()),
        vec![default_limit("sessions_per_ip")],
    );
    push(
        "sessions_total",
        Some(g.sessions_total.to_string()),
        vec![default_limit("sessions_total")],
    );
    let t = &user.timeouts;
    for (name, value) in [
        ("login", t.login),
        ("idle", t.idle),
        ("session", t.session),
        ("data_connect", t.data_connect),
    ] {
        push(
            match name {
                "login" => "timeouts.login",
                "idle" => "timeouts.idle",
                "session" => "timeouts.session",
                _ => "timeouts.data_connect",
            },
            Some(format!("{value} s")),
            vec![
                own.key("timeouts").key(name),
                defaults.key("timeouts").key(name),
            ],
        );
    }
    if user.tls_require != super::TlsRequire::None {
        push(
            "tls_require",
            Some(user.tls_require.name().to_owned()),
            vec![own.key("tls_require")],
        );
    }
    if !user.allow_fxp_to.is_empty() {
        let nets: Vec<String> = user.allow_fxp_to.iter().map(|c| c.to_string()).collect();
        push(
            "allow_fxp_to",
            Some(nets.join(", ")),
            vec![own.key("allow_fxp_to")],
        );
    }
    out
}

/// What the policy decides for `query` (see the module documentation). `text` is the
/// policy file `policy` was loaded from.
pub fn explain(policy: &Policy, text: &str, query: &Query<'_>) -> Trace {
    let doc: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .unwrap_or(serde_json::Value::Null);
    let mut pending: Vec<Pending> = Vec::new();
    let mut reply = None;
    let (name, target) = split_user(policy, query.user);
    let user = policy.user(name);
    let users = JsonPath::root().key("users");
    let mut backend: Option<(String, JsonPath)> = None;

    match user {
        None => {
            pending.push(Pending {
                check: "user",
                path: users.clone(),
                target: Target::Key,
                decision: Decision::Deny,
                detail: format!(
                    "no user named {name:?}: 331 like any name, then 530 after PASS \
                     (no backend is contacted)"
                ),
            });
            reply = Some("530 Login incorrect.".to_owned());
        }
        Some(user) => {
            let base = users.key(&user.name);
            pending.push(Pending {
                check: "user",
                path: base.clone(),
                target: Target::Key,
                decision: Decision::Allow,
                detail: format!("user {:?}, role {:?}", user.name, user.role),
            });
            match target {
                Some(t) => match policy.routing.targets.get(t) {
                    Some(pool) => {
                        backend = Some((
                            pool.clone(),
                            JsonPath::root().key("routing").key("targets").key(t),
                        ));
                    }
                    None => {
                        pending.push(Pending {
                            check: "routing",
                            path: JsonPath::root().key("routing").key("targets"),
                            target: Target::Key,
                            decision: Decision::Deny,
                            detail: format!(
                                "{t:?} is not a target of routing.targets: the login fails \
                                 like a wrong password"
                            ),
                        });
                        reply = Some("530 Login incorrect.".to_owned());
                    }
                },
                None => backend = Some((user.backend.clone(), base.key("backend"))),
            }
        }
    }

    let mut denied = reply.is_some();
    let mut would_deny = false;
    if let (Some(user), false) = (user, denied) {
        let base = users.key(&user.name);
        let steps = [
            access_step(
                policy,
                &policy.access,
                JsonPath::root().key("access"),
                "access",
                query.from,
            ),
            access_step(
                policy,
                &user.access,
                base.clone(),
                "user_access",
                query.from,
            ),
            time_step(user, &base, query.at),
        ];
        for (i, step) in steps.into_iter().flatten().enumerate() {
            if step.decision == Decision::Deny {
                // The global rules refuse the connection; the user's the login.
                reply = Some(if i == 0 && step.check == "access" {
                    "421 Access denied from your address.".to_owned()
                } else {
                    "530 Login incorrect.".to_owned()
                });
                pending.push(step);
                denied = true;
                break;
            }
            pending.push(step);
        }
        if !denied {
            let (mut step, refusal) = role_step(policy, &doc, user, query.command);
            // A dry run forwards what the role refuses (not what no role can allow).
            if refusal.is_some() && !user.enforce && !step.path.is_root() {
                step.decision = Decision::WouldDeny;
                step.detail
                    .push_str("; forwarded anyway, audited as would_deny: enforce is false");
                would_deny = true;
            }
            denied = refusal.is_some();
            reply = refusal;
            pending.push(step);
            if !denied || would_deny {
                if let Some(step) = jail_step(user, query) {
                    let refused = step.decision == Decision::Deny;
                    let mut step = step;
                    if refused && !user.enforce {
                        step.decision = Decision::WouldDeny;
                        step.detail.push_str(
                            "; forwarded anyway, audited as would_deny: enforce is false",
                        );
                        would_deny = true;
                        reply.get_or_insert_with(|| JAIL_REFUSAL.to_owned());
                    } else if refused {
                        denied = true;
                        reply = Some(JAIL_REFUSAL.to_owned());
                    }
                    pending.push(step);
                }
            }
        }
    }

    let limit_rows = user.map(|u| limits(policy, &doc, u)).unwrap_or_default();
    let mut paths: Vec<(JsonPath, Target)> =
        pending.iter().map(|p| (p.path.clone(), p.target)).collect();
    if let Some((_, path)) = &backend {
        paths.push((path.clone(), Target::Value));
    }
    paths.extend(limit_rows.iter().map(|(_, p)| (p.clone(), Target::Value)));
    let mut at = places(text, &paths).into_iter();
    let steps = pending
        .into_iter()
        .map(|p| {
            let (line, column) = at.next().unwrap_or((0, 0));
            Step {
                check: p.check,
                rule: if p.path.is_root() {
                    "built-in".to_owned()
                } else {
                    p.path.to_string()
                },
                line,
                column,
                decision: p.decision,
                detail: p.detail,
            }
        })
        .collect();
    let backend = backend.and_then(|(pool, path)| {
        let (line, column) = at.next().unwrap_or((0, 0));
        let b = policy.backends.get(&pool)?;
        Some(BackendChoice {
            pool,
            rule: path.to_string(),
            line,
            column,
            servers: b.servers.iter().map(|s| s.to_string()).collect(),
            balance: b.balance.name(),
            tls: b.tls.name(),
        })
    });
    let limits = limit_rows
        .into_iter()
        .map(|(mut limit, _)| {
            let (line, column) = at.next().unwrap_or((0, 0));
            if limit.rule != "built-in default" {
                limit.line = line;
                limit.column = column;
            }
            limit
        })
        .collect();
    Trace {
        decision: if would_deny {
            Decision::WouldDeny
        } else if denied {
            Decision::Deny
        } else {
            Decision::Allow
        },
        reply,
        steps,
        backend,
        limits,
    }
}

impl Trace {
    /// The readable form: one line per rule, `FILE:LINE:COLUMN` where it has a place.
    pub fn render(&self, file: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let place = |line: usize, column: usize| {
            if line == 0 {
                "(built-in)".to_owned()
            } else {
                format!("{file}:{line}:{column}")
            }
        };
        let decision = match self.decision {
            Decision::Allow => "ALLOW".to_owned(),
            Decision::Deny => format!("DENY ({})", self.reply.as_deref().unwrap_or("refused")),
            Decision::WouldDeny => format!(
                "WOULD DENY ({} when enforced; forwarded: enforce is false)",
                self.reply.as_deref().unwrap_or("refused")
            ),
        };
        let _ = writeln!(out, "decision: {decision}");
        let _ = writeln!(out, "rules:");
        for step in &self.steps {
            let verdict = match step.decision {
                Decision::Allow => "pass",
                Decision::Deny => "DENY",
                Decision::WouldDeny => "WOULD",
            };
            let _ = writeln!(
                out,
                "  {verdict:<5} {:<12} {} {}: {}",
                step.check,
                place(step.line, step.column),
                step.rule,
                step.detail
            );
        }
        match &self.backend {
            Some(b) => {
                let _ = writeln!(
                    out,
                    "backend: {} ({}, tls {}) {} {}: {}",
                    b.pool,
                    b.balance,
                    b.tls,
                    place(b.line, b.column),
                    b.rule,
                    b.servers.join(", ")
                );
            }
            None => {
                let _ = writeln!(out, "backend: none");
            }
        }
        if !self.limits.is_empty() {
            let _ = writeln!(out, "limits:");
        }
        for limit in &self.limits {
            let from = if limit.line == 0 {
                limit.rule.clone()
            } else {
                format!("{} {}", place(limit.line, limit.column), limit.rule)
            };
            let _ = writeln!(out, "  {:<22} {:<14} {from}", limit.name, limit.value);
        }
        out
    }
}
