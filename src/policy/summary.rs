//! The one-screen summary `ftpgate --check` prints for a valid policy.
//!
//! Plain text, one fact per line, in the order of the file's sections. Long lists are cut
//! after [`MAX_SUMMARY_ENTRIES`] entries so the summary stays readable; names and paths have
//! been checked for control characters by the loader.

use std::fmt::Write;

use super::{Policy, Timeouts, User, Workers};

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
                write!(out, ", PROXY protocol")?;
            }
            writeln!(out)?;
        }

        let (first, last) = self.passive.ports;
        write!(
            out,
            "passive: ports {first}-{last} ({} ports), advertise ",
            u32::from(last.saturating_sub(first)) + 1
        )?;
        match self.passive.advertise {
            Some(ip) => writeln!(out, "{ip}")?,
            None => writeln!(out, "the address each client connected to")?,
        }

        if let Some(tls) = &self.tls {
            writeln!(
                out,
                "tls: certificate {}, key {}, require {}",
                tls.certificate.display(),
                tls.private_key.display(),
                tls.require.name()
            )?;
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
        let limits = &self.defaults.limits;
        writeln!(
            out,
            "; sessions {} total, {} per IP; {} failed logins per IP",
            limits.sessions_total, limits.sessions_per_ip, limits.failed_logins_per_ip
        )?;

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
            sinks.push(format!(
                "syslog (facility {}, app-name {})",
                syslog.facility, syslog.app_name
            ));
        }
        if sinks.is_empty() {
            sinks.push("stderr".to_owned());
        }
        writeln!(out, "{}", sinks.join(" and "))?;
        if let Some(filecopy) = &self.audit.filecopy {
            writeln!(
                out,
                "  copies in {}, kept {} days",
                filecopy.directory.display(),
                filecopy.retention_days
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
    if !user.allow_from.is_empty() {
        let nets: Vec<String> = user.allow_from.iter().map(|c| c.to_string()).collect();
        write!(out, ", from {}", nets.join(" "))?;
    }
    if !user.deny_from.is_empty() {
        let nets: Vec<String> = user.deny_from.iter().map(|c| c.to_string()).collect();
        write!(out, ", not from {}", nets.join(" "))?;
    }
    if let Some(size) = user.limits.max_file_size {
        write!(out, ", files up to {size} bytes")?;
    }
    if let Some(rate) = user.limits.rate {
        write!(out, ", {rate} bytes/s")?;
    }
    if let Some(sessions) = user.limits.sessions {
        write!(out, ", {sessions} sessions")?;
    }
    writeln!(out)
}

fn write_timeouts(out: &mut String, timeouts: &Timeouts) -> std::fmt::Result {
    write!(
        out,
        "timeouts login {}s, idle {}s, session {}s",
        timeouts.login, timeouts.idle, timeouts.session
    )
}

fn more(out: &mut String, total: usize) -> std::fmt::Result {
    if total > MAX_SUMMARY_ENTRIES {
        writeln!(out, "  ... and {} more", total - MAX_SUMMARY_ENTRIES)?;
    }
    Ok(())
}
