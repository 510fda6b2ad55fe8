//! A SIGHUP: the new policy, applied whole or not at all (listeners bound before anything
//! changes, restart-only keys refused), and the `policy_reload` audit event that says what
//! became of it.

use super::*;

impl Worker {
    /// SIGHUP: new sessions get the new policy; a bad file keeps the old one. The audit
    /// file is reopened (logrotate) and syslog reconnected; a new policy's audit settings
    /// take effect at once.
    /// Err carries the reasons a new policy was refused (the first for the `STATUS=` line,
    /// all for the `policy_reload` audit event).
    pub(super) fn reload(&mut self) -> Result<(), Vec<String>> {
        if let Err(e) = self.services.audit.reopen() {
            log::error!("cannot reopen the audit trail: {e}");
        }
        let Some(path) = self.policy_path.as_ref() else {
            return Ok(());
        };
        match crate::policy::load_policy(path) {
            Ok(policy) => match load_tls(&policy)
                .and_then(|t| Ok((t, load_backend_tls(&policy)?)))
                .map_err(|e| e.to_string())
                .and_then(|(tls, backend_tls)| {
                    // Whole or nothing: what needs a restart refuses the file, and new
                    // listeners are bound before anything changes.
                    let restart = crate::policy::reload::restart_needed(&self.policy, &policy);
                    if !restart.is_empty() {
                        return Err(format!(
                            "{} needs a restart (systemctl restart ftpgate)",
                            restart.join(", ")
                        ));
                    }
                    let bound = self.bind_new_listeners(&policy)?;
                    Ok((tls, backend_tls, bound))
                }) {
                Ok((tls, backend_tls, bound)) => {
                    log::info!("policy reloaded from {}", path.display());
                    self.switch_listeners(&policy, bound);
                    self.services.tls = tls;
                    self.services.backend_tls = backend_tls;
                    self.services.audit.apply(&policy.audit);
                    self.probes
                        .reload(&policy, Instant::now(), self.poll.registry());
                    self.policy = Rc::new(policy);
                    if let Err(e) = self.start_copier() {
                        // Transfers of the new policy's sessions fail (or go on, by its
                        // on_failure) with this error in their events.
                        log::error!("{e}");
                    }
                    Ok(())
                }
                Err(e) => {
                    log::error!("policy reload refused, keeping the old policy: {e}");
                    Err(vec![e])
                }
            },
            Err(errors) => {
                for e in &errors {
                    log::error!(
                        "policy reload refused, keeping the old policy: {}: {e}",
                        path.display()
                    );
                }
                Err(errors
                    .iter()
                    .map(|e| format!("{}:{e}", path.display()))
                    .collect())
            }
        }
    }

    /// The `policy_reload` audit event of this worker: the result, the SHA-256 of the file
    /// as it is now, and the first errors of a refused one (bounded).
    pub(super) fn audit_reload(&mut self, outcome: &Result<(), Vec<String>>) {
        #[derive(serde::Serialize)]
        struct PolicyReload<'a> {
            ts: String,
            worker: u32,
            event: &'static str,
            result: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            file: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            sha256: Option<String>,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            errors: &'a [String],
            #[serde(skip_serializing_if = "crate::audit::is_zero_usize")]
            errors_total: usize,
        }
        use crate::limits::{MAX_RELOAD_ERROR_BYTES, MAX_RELOAD_ERRORS};
        let sha256 = self.policy_path.as_ref().and_then(|p| {
            let bytes = std::fs::read(p).ok()?;
            let mut digest = crate::tls::sha256()?;
            digest.update(&bytes);
            Some(crate::tls::hex(digest.finish().as_ref()))
        });
        let errors: Vec<String> = match outcome {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .iter()
                .take(MAX_RELOAD_ERRORS)
                .map(|e| crate::audit::cut(e, MAX_RELOAD_ERROR_BYTES))
                .collect(),
        };
        let event = PolicyReload {
            ts: crate::audit::rfc3339_utc(SystemTime::now()),
            worker: self.index as u32,
            event: "policy_reload",
            result: if outcome.is_ok() { "ok" } else { "refused" },
            file: self.policy_path.as_ref().map(|p| p.display().to_string()),
            sha256,
            errors: &errors,
            errors_total: outcome.as_ref().err().map_or(0, Vec::len),
        };
        let severity = if outcome.is_ok() {
            crate::audit::syslog_severity::NOTICE
        } else {
            crate::audit::syslog_severity::WARNING
        };
        self.services
            .audit
            .emit_worker_event("policy_reload", severity, &event);
    }
}
