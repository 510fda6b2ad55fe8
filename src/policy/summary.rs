//! The one-screen summary `ftpgate --check` prints for a valid policy.
//!
//! Plain text, one fact per line, in the order of the file's sections. Long lists are cut
//! after [`MAX_SUMMARY_ENTRIES`] entries so the summary stays readable; names and paths have
//! been checked for control characters by the loader.

use std::fmt::Write;

use super::{
    AccessRules, AuditFailure, Policy, SyslogFormat, Timeouts, TlsSessionReuse, User, UserLimits,
    Workers, country_name,
};

/// Entries shown per section (backends, roles, users, routing targets) before "... and N more".
const MAX_SUMMARY_ENTRIES: usize = 50;

impl Policy {
    /// A human-readable digest of what this policy will do.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_summary(&mut out);
        out
    }

    fn write_summary(&self, out: &mut String) -> std::fmt::Result {
        match self.workers {
            Workers::Auto => writeln!(out, "workers: auto (one per CPU core)")?,
            Workers::Count(n) => writeln!(out, "workers: {n}")?,
        }

        writeln!(out, "listeners:")?;
        for listener in &self.listeners {
            write!(out, "  {} tls {}", listener.address, listener.tls.name())?;
            if listener.require != Default::default() {
                write!(out, ", require {}", listener.require.name())?;
            }
            if listener.proxy_protocol {
                let from: Vec<String> = listener.proxy_from.iter().map(|c| c.to_string()).collect();
                write!(out, ", PROXY protocol from {}", from.join(" "))?;
            }
            writeln!(out)?;
        }

        let (first, last) = self.passive.ports;
        write!(
            out,
            "passive: ports {first}-{last} ({} ports{}), advertise ",
            u32::from(last.saturating_sub(first)) + 1,
            if self.passive.shared {
                ", shared by client address"
            } else {
                ""
            }
        )?;
        for rule in &self.passive.advertise_by_network {
            let from: Vec<String> = rule.from.iter().map(|c| c.to_string()).collect();
            match rule.address {
                Some(ip) => write!(out, "{ip} to {}; ", from.join(" "))?,
                None => write!(out, "the address connected to for {}; ", from.join(" "))?,
            }
        }
        if !self.passive.advertise_by_network.is_empty() {
            write!(out, "else ")?;
        }
        match self.passive.advertise {
            Some(ip) => write!(out, "{ip}")?,
            None => write!(out, "the address each client connected to")?,
        }
        if self.passive.proxy_from.is_empty() {
            writeln!(out)?;
        } else {
            let from: Vec<String> = self
                .passive
                .proxy_from
                .iter()
                .map(|c| c.to_string())
                .collect();
            writeln!(out, ", PROXY protocol from {}", from.join(" "))?;
        }

        if let Some(tls) = &self.tls {
            match tls.identities.as_slice() {
                [one] => write!(
                    out,
                    "tls: certificate {}, key {}",
                    one.certificate.display(),
                    one.private_key.display()
                )?,
                several => {
                    write!(out, "tls: certificates")?;
                    for (i, identity) in several.iter().enumerate() {
                        let comma = if i == 0 { "" } else { "," };
                        write!(
                            out,
                            "{comma} {} (key {})",
                            identity.certificate.display(),
                            identity.private_key.display()
                        )?;
                    }
                }
            }
            writeln!(out, ", require {}", tls.require.name())?;
        }

        writeln!(out, "backends:")?;
        for backend in self.backends.values().take(MAX_SUMMARY_ENTRIES) {
            let servers: Vec<String> = backend.servers.iter().map(|s| s.to_string()).collect();
            write!(
                out,
                "  {}: {} ({}",
                backend.name,
                servers.join(", "),
                backend.balance.name()
            )?;
            if backend.tls != Default::default() {
                write!(out, ", tls {}", backend.tls.name())?;
            }
            if let Some(source) = backend.source_address {
                write!(out, ", from {source}")?;
            }
            if !backend.feature_probe {
                write!(out, ", no FEAT probe")?;
            }
            writeln!(out, ")")?;
        }
        more(out, self.backends.len())?;

        writeln!(out, "roles:")?;
        for role in self.roles.values().take(MAX_SUMMARY_ENTRIES) {
            let verbs: Vec<&str> = role.allow.iter().map(|verb| verb.name()).collect();
            if verbs.is_empty() {
                writeln!(
                    out,
                    "  {}: (no commands beyond login and plumbing)",
                    role.name
                )?;
            } else {
                writeln!(out, "  {}: {}", role.name, verbs.join(" "))?;
            }
        }
        more(out, self.roles.len())?;

        let mut access = String::new();
        write_rules(&mut access, &self.access)?;
        if !access.is_empty() {
            writeln!(out, "access: {}", access.trim_start_matches(", "))?;
        }
        if !self.prefix_table.is_empty() {
            let what = self
                .geo
                .as_ref()
                .map_or_else(|| "0 ranges".to_owned(), |geo| geo.describe());
            let files: Vec<String> = self
                .prefix_table
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            writeln!(out, "prefix table: {} ({what})", files.join(", "))?;
        }

        writeln!(out, "users:")?;
        if self.users.is_empty() {
            writeln!(out, "  (none: every login will fail)")?;
        }
        for user in self.users.values().take(MAX_SUMMARY_ENTRIES) {
            write_user(out, user)?;
        }
        more(out, self.users.len())?;

        write!(out, "defaults: ")?;
        write_timeouts(out, &self.defaults.timeouts)?;
        writeln!(out)?;
        let limits = &self.defaults.limits;
        write!(
            out,
            "limits: sessions {} total, {} per IP, {} waiting for a backend per worker; \
             {} failed logins per IP within {}s: banned for {}s",
            limits.sessions_total,
            limits.sessions_per_ip,
            limits.sessions_waiting_for_backend,
            limits.failed_logins_per_ip,
            limits.failed_login_window,
            limits.ban
        )?;
        let mut transfer = String::new();
        write_limits(
            &mut transfer,
            &UserLimits {
                max_file_size: limits.max_file_size,
                rate: limits.rate,
                user_rate: limits.user_rate,
                sessions: None,
            },
        )?;
        if !transfer.is_empty() {
            write!(out, ";{}", transfer.trim_start_matches(','))?;
        }
        writeln!(out)?;

        if self.routing.user_at_host || !self.routing.targets.is_empty() {
            let state = if self.routing.user_at_host {
                "on"
            } else {
                "off"
            };
            writeln!(out, "routing: USER name@target {state}")?;
            for (target, backend) in self.routing.targets.iter().take(MAX_SUMMARY_ENTRIES) {
                writeln!(out, "  {target} -> {backend}")?;
            }
            more(out, self.routing.targets.len())?;
        }

        write!(out, "audit: {} to ", self.audit.mode.name())?;
        let mut sinks = Vec::new();
        if let Some(file) = &self.audit.file {
            sinks.push(format!("file {}", file.display()));
        }
        if let Some(syslog) = &self.audit.syslog {
            let mut text = format!(
                "syslog (facility {}, app-name {}",
                syslog.facility_name(),
                syslog.app_name
            );
            if syslog.socket != std::path::Path::new(crate::limits::DEFAULT_SYSLOG_SOCKET) {
                text.push_str(&format!(", socket {}", syslog.socket.display()));
            }
            if syslog.cee {
                text.push_str(", @cee cookie");
            }
            if syslog.format != SyslogFormat::default() {
                text.push_str(&format!(", format {}", syslog.format.name()));
            }
            text.push(')');
            sinks.push(text);
        }
        if sinks.is_empty() {
            sinks.push("stderr".to_owned());
        }
        writeln!(out, "{}", sinks.join(" and "))?;
        match self.audit.on_failure {
            AuditFailure::RefuseSessions => {
                writeln!(out, "  if a sink fails: new sessions are refused (421)")?
            }
            AuditFailure::Continue => writeln!(
                out,
                "  if a sink fails: sessions continue, lost events are counted"
            )?,
        }
        if let Some(filecopy) = &self.audit.filecopy {
            writeln!(
                out,
                "  copies in {}, kept {} days, a failed copy: {}",
                filecopy.directory.display(),
                filecopy.retention_days,
                filecopy.on_failure.name()
            )?;
        }
        if let Some(integrity) = &self.audit.integrity {
            writeln!(
                out,
                "  integrity: hash-chained lines, a keyed checkpoint {}s after new lines (key {})",
                integrity.checkpoint_interval_s,
                integrity.key_file.display()
            )?;
        }
        Ok(())
    }
}

fn write_user(out: &mut String, user: &User) -> std::fmt::Result {
    write!(
        out,
        "  {}: role {}, backend {}, ",
        user.name, user.role, user.backend
    )?;
    write_timeouts(out, &user.timeouts)?;
    write_rules(out, &user.access)?;
    if !user.time_windows.is_empty() {
        let windows: Vec<String> = user.time_windows.iter().map(|w| w.to_string()).collect();
        write!(out, ", at {}", windows.join(" or "))?;
    }
    if !user.allow_fxp_to.is_empty() {
        let nets: Vec<String> = user.allow_fxp_to.iter().map(|c| c.to_string()).collect();
        write!(out, ", PORT/EPRT also to {}", nets.join(" "))?;
    }
    // Exceptions to a default check are spelled out, like allow_fxp_to above.
    match user.tls_session_reuse {
        TlsSessionReuse::Required => {}
        TlsSessionReuse::Bridge => write!(out, ", unresumed data TLS bridged")?,
        TlsSessionReuse::Off => write!(out, ", unresumed data TLS accepted")?,
    }
    write_limits(out, &user.limits)?;
    writeln!(out)
}

/// `, from N, not from N, countries C, not countries C, AS A, not AS A`, for the rules that
/// are there.
fn write_rules(out: &mut String, rules: &AccessRules) -> std::fmt::Result {
    let lists: [(&str, Vec<String>); 6] = [
        (
            "from",
            rules.allow_from.iter().map(|c| c.to_string()).collect(),
        ),
        (
            "not from",
            rules.deny_from.iter().map(|c| c.to_string()).collect(),
        ),
        (
            "countries",
            rules
                .allow_countries
                .iter()
                .map(|&c| country_name(c))
                .collect(),
        ),
        (
            "not countries",
            rules
                .deny_countries
                .iter()
                .map(|&c| country_name(c))
                .collect(),
        ),
        (
            "AS",
            rules.allow_asns.iter().map(|a| a.to_string()).collect(),
        ),
        (
            "not AS",
            rules.deny_asns.iter().map(|a| a.to_string()).collect(),
        ),
    ];
    for (label, items) in lists {
        if !items.is_empty() {
            write!(out, ", {label} {}", items.join(" "))?;
        }
    }
    Ok(())
}

fn write_limits(out: &mut String, limits: &UserLimits) -> std::fmt::Result {
    if let Some(size) = limits.max_file_size {
        write!(out, ", files up to {size} bytes")?;
    }
    if let Some(rate) = limits.rate {
        write!(out, ", {rate} bytes/s per session")?;
    }
    if let Some(rate) = limits.user_rate {
        write!(out, ", {rate} bytes/s per user")?;
    }
    if let Some(sessions) = limits.sessions {
        write!(out, ", {sessions} sessions")?;
    }
    Ok(())
}

fn write_timeouts(out: &mut String, timeouts: &Timeouts) -> std::fmt::Result {
    write!(
        out,
        "timeouts login {}s, idle {}s, session {}s, data connect {}s",
        timeouts.login, timeouts.idle, timeouts.session, timeouts.data_connect
    )
}

fn more(out: &mut String, total: usize) -> std::fmt::Result {
    if total > MAX_SUMMARY_ENTRIES {
        writeln!(out, "  ... and {} more", total - MAX_SUMMARY_ENTRIES)?;
    }
    Ok(())
}
