//! `defaults`: the timeouts every user starts from (a user's own `timeouts` are checked
//! here too) and the global limits (sessions, failed logins and bans, and the transfer
//! limits every user starts from), each filled in from the built-in defaults of `limits.rs`.

use crate::limits::{
    DEFAULT_BAN_SECONDS, DEFAULT_DATA_CONNECT_TIMEOUT, DEFAULT_FAILED_LOGIN_DELAY_MS,
    DEFAULT_FAILED_LOGIN_WINDOW, DEFAULT_FAILED_LOGINS_PER_IP, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LOGIN_TIMEOUT, DEFAULT_SESSION_TIMEOUT, DEFAULT_SESSIONS_PER_IP,
    DEFAULT_SESSIONS_TOTAL, DEFAULT_SESSIONS_WAITING_FOR_BACKEND, MAX_FAILED_LOGIN_DELAY_MS,
};
use crate::policy::file::{DefaultsFile, Object, TimeoutsFile};
use crate::policy::locate::JsonPath;
use crate::policy::{Defaults, DuringTransfer, GlobalLimits, Timeouts};

use super::checker::Checker;

impl Checker<'_> {
    pub(super) fn defaults(&mut self, raw: Option<&DefaultsFile>, path: &JsonPath) -> Defaults {
        let builtin = Timeouts {
            login: DEFAULT_LOGIN_TIMEOUT,
            idle: DEFAULT_IDLE_TIMEOUT,
            session: DEFAULT_SESSION_TIMEOUT,
            data_connect: DEFAULT_DATA_CONNECT_TIMEOUT,
            session_during_transfer: DuringTransfer::Finish,
        };
        let mut limits = GlobalLimits {
            sessions_total: DEFAULT_SESSIONS_TOTAL,
            sessions_per_ip: DEFAULT_SESSIONS_PER_IP,
            failed_logins_per_ip: DEFAULT_FAILED_LOGINS_PER_IP,
            failed_login_window: DEFAULT_FAILED_LOGIN_WINDOW,
            ban: DEFAULT_BAN_SECONDS,
            max_file_size: None,
            rate: None,
            user_rate: None,
            sessions_waiting_for_backend: DEFAULT_SESSIONS_WAITING_FOR_BACKEND,
            failed_login_delay_ms: DEFAULT_FAILED_LOGIN_DELAY_MS,
        };
        let Some(raw) = raw else {
            return Defaults {
                timeouts: builtin,
                limits,
            };
        };
        let timeouts = self.timeouts(
            raw.timeouts.as_ref().map(|o| &o.0),
            &path.key("timeouts"),
            builtin,
        );
        if let Some(Object(raw)) = &raw.limits {
            let path = path.key("limits");
            let fields = [
                (
                    &raw.sessions_total,
                    "sessions_total",
                    &mut limits.sessions_total,
                ),
                (
                    &raw.sessions_per_ip,
                    "sessions_per_ip",
                    &mut limits.sessions_per_ip,
                ),
                (
                    &raw.failed_logins_per_ip,
                    "failed_logins_per_ip",
                    &mut limits.failed_logins_per_ip,
                ),
                (
                    &raw.sessions_waiting_for_backend,
                    "sessions_waiting_for_backend",
                    &mut limits.sessions_waiting_for_backend,
                ),
                (
                    &raw.failed_login_delay_ms,
                    "failed_login_delay_ms",
                    &mut limits.failed_login_delay_ms,
                ),
            ];
            for (value, key, slot) in fields {
                if let Some(n) = value.as_ref().and_then(|v| self.count(v, &path.key(key))) {
                    *slot = n;
                }
            }
            if limits.failed_login_delay_ms > MAX_FAILED_LOGIN_DELAY_MS {
                let key = path.key("failed_login_delay_ms");
                self.bad(
                    &key,
                    format!(
                        "{} is too long; the most is {MAX_FAILED_LOGIN_DELAY_MS} (ms)",
                        limits.failed_login_delay_ms
                    ),
                );
                limits.failed_login_delay_ms = DEFAULT_FAILED_LOGIN_DELAY_MS;
            }
            let durations = [
                (
                    &raw.failed_login_window,
                    "failed_login_window",
                    &mut limits.failed_login_window,
                ),
                (&raw.ban, "ban", &mut limits.ban),
            ];
            for (value, key, slot) in durations {
                if let Some(n) = value.as_ref().and_then(|v| self.seconds(v, &path.key(key))) {
                    *slot = n;
                }
            }
            if let Some(value) = &raw.max_file_size {
                limits.max_file_size = self.size(value, &path.key("max_file_size"));
            }
            if let Some(value) = &raw.rate {
                limits.rate = self.rate(value, &path.key("rate"));
            }
            if let Some(value) = &raw.user_rate {
                limits.user_rate = self.rate(value, &path.key("user_rate"));
            }
        }
        Defaults { timeouts, limits }
    }

    pub(super) fn timeouts(
        &mut self,
        raw: Option<&TimeoutsFile>,
        path: &JsonPath,
        fallback: Timeouts,
    ) -> Timeouts {
        let mut timeouts = fallback;
        let Some(raw) = raw else {
            return timeouts;
        };
        let fields = [
            (&raw.login, "login", &mut timeouts.login),
            (&raw.idle, "idle", &mut timeouts.idle),
            (&raw.session, "session", &mut timeouts.session),
            (
                &raw.data_connect,
                "data_connect",
                &mut timeouts.data_connect,
            ),
        ];
        for (value, key, slot) in fields {
            if let Some(seconds) = value.as_ref().and_then(|v| self.seconds(v, &path.key(key))) {
                *slot = seconds;
            }
        }
        if let Some(choice) = self.choice(
            raw.session_during_transfer.as_ref(),
            &path.key("session_during_transfer"),
            &[
                ("finish", DuringTransfer::Finish),
                ("cut", DuringTransfer::Cut),
            ],
        ) {
            timeouts.session_during_transfer = choice;
        }
        timeouts
    }
}
