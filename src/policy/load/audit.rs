//! `audit`: where the audit trail goes (a file, syslog with its facility, APP-NAME, socket
//! and format), what it keeps (`mode`, and for `filecopy` the copies' directory, retention
//! and what a failed copy means) and what a failing sink means (`on_failure`).

use std::path::PathBuf;

use crate::limits::{
    DEFAULT_AUDIT_CHECKPOINT_INTERVAL_S, DEFAULT_FILECOPY_RETENTION_DAYS, DEFAULT_SYSLOG_APP_NAME,
    DEFAULT_SYSLOG_FACILITY, DEFAULT_SYSLOG_SOCKET, MAX_AUDIT_CHECKPOINT_INTERVAL_S,
    MAX_UNIX_SOCKET_PATH,
};
use crate::policy::file::{AuditFile, IntegrityFile, Object};
use crate::policy::locate::JsonPath;
use crate::policy::{
    AuditDigest, AuditFailure, AuditKey, AuditMode, AuditPolicy, CopyFailure, FilecopyPolicy,
    IntegrityPolicy, SYSLOG_FACILITIES, SyslogFormat, SyslogPolicy,
};

use super::checker::Checker;
use super::values::lookup;

/// RFC 5424 limit on APP-NAME.
const MAX_APP_NAME_LEN: usize = 48;

impl Checker<'_> {
    pub(super) fn audit(&mut self, raw: Option<&AuditFile>, path: &JsonPath) -> AuditPolicy {
        let mut audit = AuditPolicy {
            file: None,
            syslog: None,
            mode: AuditMode::Monitor,
            digest: AuditDigest::Sha256,
            on_failure: AuditFailure::RefuseSessions,
            filecopy: None,
            integrity: None,
        };
        let Some(raw) = raw else {
            return audit;
        };
        if let Some(text) = &raw.file {
            audit.file = self.absolute_path(text, &path.key("file"));
        }
        if let Some(Object(syslog)) = &raw.syslog {
            let path = path.key("syslog");
            let default_facility = lookup(SYSLOG_FACILITIES, DEFAULT_SYSLOG_FACILITY).unwrap_or(10);
            let facility = self
                .choice(
                    syslog.facility.as_ref(),
                    &path.key("facility"),
                    SYSLOG_FACILITIES,
                )
                .unwrap_or(default_facility);
            let app_name = match &syslog.app_name {
                Some(name) => {
                    let printable = name.bytes().all(|b| b.is_ascii_graphic());
                    if name.is_empty() || name.len() > MAX_APP_NAME_LEN || !printable {
                        self.bad(
                            &path.key("app_name"),
                            format!(
                                "{name:?}: use 1 to {MAX_APP_NAME_LEN} printable ASCII \
                                 characters without spaces (RFC 5424 APP-NAME)"
                            ),
                        );
                    }
                    name.clone()
                }
                None => DEFAULT_SYSLOG_APP_NAME.to_owned(),
            };
            let socket = match &syslog.socket {
                Some(text) => {
                    let socket_path = path.key("socket");
                    let socket = self.absolute_path(text, &socket_path);
                    if socket.is_some() && text.len() > MAX_UNIX_SOCKET_PATH {
                        self.bad(
                            &socket_path,
                            format!(
                                "{} bytes is too long for a Unix socket path; the most is \
                                 {MAX_UNIX_SOCKET_PATH}",
                                text.len()
                            ),
                        );
                    }
                    socket.unwrap_or_default()
                }
                None => PathBuf::from(DEFAULT_SYSLOG_SOCKET),
            };
            audit.syslog = Some(SyslogPolicy {
                facility,
                app_name,
                socket,
                cee: syslog.cee.unwrap_or(false),
                format: self
                    .choice(
                        syslog.format.as_ref(),
                        &path.key("format"),
                        SyslogFormat::SPELLINGS,
                    )
                    .unwrap_or_default(),
            });
        }
        audit.on_failure = self
            .choice(
                raw.on_failure.as_ref(),
                &path.key("on_failure"),
                AuditFailure::SPELLINGS,
            )
            .unwrap_or_default();
        let mode_path = path.key("mode");
        audit.mode = self
            .choice(raw.mode.as_ref(), &mode_path, AuditMode::SPELLINGS)
            .unwrap_or_default();
        audit.digest = self
            .choice(
                raw.digest.as_ref(),
                &path.key("digest"),
                AuditDigest::SPELLINGS,
            )
            .unwrap_or_default();
        let mut filecopy = None;
        if let Some(Object(raw_copy)) = &raw.filecopy {
            let path = path.key("filecopy");
            let directory = raw_copy
                .directory
                .as_ref()
                .and_then(|text| self.absolute_path(text, &path.key("directory")));
            let retention_days = raw_copy
                .retention_days
                .as_ref()
                .and_then(|value| self.count(value, &path.key("retention_days")))
                .unwrap_or(DEFAULT_FILECOPY_RETENTION_DAYS);
            let on_failure = self
                .choice(
                    raw_copy.on_failure.as_ref(),
                    &path.key("on_failure"),
                    CopyFailure::SPELLINGS,
                )
                .unwrap_or_default();
            if audit.mode != AuditMode::Filecopy && !self.is_broken(&mode_path) {
                self.bad_key(&path, "has no effect unless audit.mode is \"filecopy\"");
            }
            filecopy = directory.map(|directory| FilecopyPolicy {
                directory,
                retention_days,
                on_failure,
            });
            if raw_copy.directory.is_none() && audit.mode == AuditMode::Filecopy {
                self.missing(&path, "directory", " (where the copies go)");
            }
        } else if audit.mode == AuditMode::Filecopy && !self.is_broken(&path.key("filecopy")) {
            self.bad(&mode_path, "\"filecopy\" needs audit.filecopy.directory");
        }
        if audit.mode == AuditMode::Filecopy {
            audit.filecopy = filecopy;
        }
        if let Some(Object(raw_integrity)) = &raw.integrity {
            audit.integrity = self.integrity(raw_integrity, &path.key("integrity"));
        }
        audit
    }

    /// `audit.integrity`: `key_file` (required; read now, mode checked) and
    /// `checkpoint_interval` (seconds, 1 to [`MAX_AUDIT_CHECKPOINT_INTERVAL_S`]).
    fn integrity(&mut self, raw: &IntegrityFile, path: &JsonPath) -> Option<IntegrityPolicy> {
        let interval_path = path.key("checkpoint_interval");
        let checkpoint_interval_s = match &raw.checkpoint_interval {
            Some(value) => match self.seconds(value, &interval_path) {
                Some(n) if n > MAX_AUDIT_CHECKPOINT_INTERVAL_S => {
                    self.bad(
                        &interval_path,
                        format!(
                            "{n} is too long; the most is {MAX_AUDIT_CHECKPOINT_INTERVAL_S} \
                             seconds (the lines after the last checkpoint are not keyed)"
                        ),
                    );
                    None
                }
                other => other,
            },
            None => Some(DEFAULT_AUDIT_CHECKPOINT_INTERVAL_S),
        };
        let Some(text) = &raw.key_file else {
            self.missing(
                path,
                "key_file",
                " (the checkpoint key, e.g. /etc/ftpgate/audit.key)",
            );
            return None;
        };
        let key_path = path.key("key_file");
        let key_file = self.absolute_path(text, &key_path)?;
        let key = match crate::audit::read_key(&key_file, true) {
            Ok(key) => key,
            Err(error) => {
                self.bad(&key_path, error);
                return None;
            }
        };
        Some(IntegrityPolicy {
            key_file,
            key: AuditKey::new(key),
            checkpoint_interval_s: checkpoint_interval_s?,
        })
    }
}
