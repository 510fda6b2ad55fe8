//! The audit trail: a typed event stream written as JSON lines.
//!
//! The audit trail is not diagnostics: it never goes through `log`. Every event is one JSON
//! object on one line, serialised by serde_json, so no filename, username or argument can
//! break a line or forge a field. `PASS` arguments never reach this module.
//!
//! Sinks ([`AuditSink`], in `sink.rs`): a file opened in append mode, syslog over a Unix
//! datagram socket in RFC 5424 format (`syslog.rs`), or stderr when the policy names neither.
//! Every event goes to each configured sink. A sink that fails loses events: they are counted
//! and reported to that sink with an `audit_loss` event when it is back, and the policy's
//! `audit.on_failure` says whether new sessions are refused meanwhile. No sink ever blocks the
//! event loop on a peer (syslog is a non-blocking datagram socket) and nothing is queued:
//! memory stays bounded whatever the sinks do.

mod chain;
mod file_out;
mod sink;
mod syslog;
pub mod verify;

pub use chain::read_key;
pub use sink::AuditSink;

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// A transfer event's `"digest": "none"`: the digest was off for the transfer (one byte in
/// the event, so that the record stays small).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DigestOff {
    #[serde(rename = "none")]
    None,
}

/// What the control state machine asks the shell to record. The shell adds the envelope
/// (time, session, worker, client, user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditRecord {
    SessionStart {
        server: String,
        /// The load balancer the connection came through (PROXY protocol); `client` is
        /// then the address its header named.
        #[serde(skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
    /// The user is in the envelope.
    Login {
        result: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        backend: Option<String>,
        /// The server of the pool the session connected to (`ip:port`); absent when no
        /// backend was contacted.
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
        /// The routing target of `USER name@target` (`routing.user_at_host`), as given.
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    Command {
        verb: String,
        arg: String,
        /// The argument's original bytes in hex, present only when they are not UTF-8
        /// (`arg` then shows them with U+FFFD): nothing the client sent is lost.
        #[serde(skip_serializing_if = "Option::is_none")]
        arg_hex: Option<String>,
        /// The full path the command names (see [`crate::ftp::path`]): the argument resolved
        /// against the working directory. Absent for commands that name no file or folder.
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        decision: &'static str,
        reply: u16,
        /// A line ftpgate could not parse: its raw bytes in hex (at most
        /// [`crate::limits::MAX_AUDITED_LINE_BYTES`] of them) and its whole length.
        #[serde(skip_serializing_if = "Option::is_none")]
        line_hex: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        line_bytes: Option<u64>,
    },
    Transfer {
        verb: &'static str,
        arg: String,
        /// As for `Command`.
        #[serde(skip_serializing_if = "Option::is_none")]
        arg_hex: Option<Box<str>>,
        /// As for `Command`; a listing without an argument names the working directory.
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        direction: &'static str,
        bytes: u64,
        result: &'static str,
        duration_ms: u64,
        /// SHA-256 (hex) of the bytes that crossed ftpgate, as they crossed; on a failed or
        /// aborted transfer, of the part that crossed.
        #[serde(skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// "none" when the digest is off (`audit.digest` or the user's `audit_digest`), in
        /// place of `sha256`.
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<DigestOff>,
        /// `verify_uploads`: what the backend said of the stored file (boxed: rare, and the
        /// record travels in every action).
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        backend_check: Option<Box<BackendCheck>>,
        /// Both data connections' address pairs, as ftpgate saw them when the relay began
        /// (boxed: absent when no relay ran).
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        data_addresses: Option<Box<DataAddresses>>,
        /// Filecopy mode: the absolute path of the copy of the bytes that crossed (for a
        /// transfer that did not complete, of the part that crossed).
        #[serde(skip_serializing_if = "Option::is_none")]
        filecopy: Option<String>,
        /// Filecopy mode: why the copy failed (the transfer failed with it unless the policy
        /// says `on_failure: "continue"`).
        #[serde(skip_serializing_if = "Option::is_none")]
        filecopy_error: Option<Box<str>>,
        /// When the data came over TLS and its stream ended: "clean" (close_notify) or
        /// "truncated" (a TCP close without it, which anyone on the path could forge).
        #[serde(skip_serializing_if = "Option::is_none")]
        tls_end: Option<&'static str>,
    },
    /// A TLS handshake finished: on the control or a data connection, toward the client
    /// or the backend.
    Tls {
        channel: &'static str,
        side: &'static str,
        version: String,
        cipher: String,
        resumed: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        alpn: Option<String>,
        /// The key algorithm of the certificate ftpgate gave the client ("RSA", "ECDSA"),
        /// on the client's control connection (`tls.certificates` chooses per client).
        #[serde(skip_serializing_if = "Option::is_none")]
        certificate_key: Option<&'static str>,
    },
    PolicyViolation {
        kind: &'static str,
        detail: String,
    },
    /// Something the policy allowed for this user only, against a rule ftpgate otherwise
    /// enforces (`tls_session_reuse_bridge`: a data connection that did not resume the
    /// control TLS session, accepted under the user's `tls_session_reuse: "bridge"`).
    PolicyException {
        kind: &'static str,
        detail: String,
    },
    SessionEnd {
        reason: String,
        duration_ms: u64,
        /// Control and data together.
        bytes_in: u64,
        bytes_out: u64,
        control_bytes_in: u64,
        control_bytes_out: u64,
        /// File data of every transfer, completed or not.
        data_bytes_in: u64,
        data_bytes_out: u64,
        /// The session's transfers by result (`ok`, `aborted`, `client_gone`, ...).
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        transfers: BTreeMap<&'static str, u64>,
        /// Commands before login that repeated one already recorded (same verb, decision
        /// and reply), by verb: counted instead of recorded one by one.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        repeated_commands: BTreeMap<String, u64>,
        /// Connections from other addresses to this session's passive ports, all refused;
        /// the first few are also `port_theft` violations of their own.
        #[serde(skip_serializing_if = "is_zero")]
        port_theft_attempts: u64,
    },
}

impl AuditRecord {
    /// The event's kind: its `event` field, and the MSGID of its syslog message.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditRecord::SessionStart { .. } => "session_start",
            AuditRecord::Login { .. } => "login",
            AuditRecord::Command { .. } => "command",
            AuditRecord::Transfer { .. } => "transfer",
            AuditRecord::Tls { .. } => "tls",
            AuditRecord::PolicyViolation { .. } => "policy_violation",
            AuditRecord::PolicyException { .. } => "policy_exception",
            AuditRecord::SessionEnd { .. } => "session_end",
        }
    }

    /// The syslog severity: notice (5) for a policy violation or exception, info (6) for the
    /// rest.
    pub fn severity(&self) -> u8 {
        match self {
            AuditRecord::PolicyViolation { .. } | AuditRecord::PolicyException { .. } => {
                syslog::NOTICE
            }
            _ => syslog::INFO,
        }
    }
}

/// The syslog severities of worker events ([`AuditSink::emit_worker_event`]).
pub mod syslog_severity {
    pub use super::syslog::{INFO, NOTICE, WARNING};
}

pub(crate) fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

/// `text` cut to at most `max` bytes, at a character boundary, marked with `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The envelope every event carries.
#[derive(Serialize)]
struct Envelope<'a> {
    ts: &'a str,
    session: &'a str,
    worker: u32,
    client: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    /// The user name's original bytes in hex when they are not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    user_hex: Option<&'a str>,
    #[serde(flatten)]
    record: &'a AuditRecord,
}

/// The SHA-256 a backend gave for a stored file (`HASH`, `verify_uploads`) and whether it
/// equals the one of the bytes relayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendCheck {
    pub backend_sha256: String,
    pub backend_sha256_match: bool,
}

/// The two data connections of a transfer, each by its two ends (`ip:port`): the client's
/// connection (the client's end, ftpgate's end) and the backend's (ftpgate's end, the
/// backend's end). An end the socket could no longer name is left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DataAddresses {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_client: Option<std::net::SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_client_gate: Option<std::net::SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_backend_gate: Option<std::net::SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_backend: Option<std::net::SocketAddr>,
}

/// Who the event is about.
pub struct AuditContext<'a> {
    pub session: &'a str,
    pub client: &'a str,
    pub user: Option<&'a str>,
    pub user_hex: Option<&'a str>,
}

/// Formats a time as RFC 3339 in UTC with milliseconds: `2026-11-21T13:32:05.123Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    rfc3339_stack(t).as_str().to_owned()
}

/// Short text formatted on the stack (the per-event fields of the audit trail, without an
/// allocation): what does not fit in `N` bytes is cut, at a character boundary.
pub struct StackText<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    pub fn format(args: std::fmt::Arguments<'_>) -> StackText<N> {
        let mut out = StackText {
            buf: [0; N],
            len: 0,
        };
        let _ = std::fmt::Write::write_fmt(&mut out, args);
        out
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

impl<const N: usize> std::fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = N - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        let end = self.len + take;
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..end), s.as_bytes().get(..take))
        {
            dst.copy_from_slice(src);
            self.len = end;
        }
        if take < s.len() {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// [`rfc3339_utc`] on the stack (every audit event carries one). 40 bytes hold any year a
/// `SystemTime` can: the year of i64::MAX seconds has 12 digits, 12 + 20 characters.
pub type Rfc3339 = StackText<40>;

/// [`rfc3339_utc`] without an allocation.
pub fn rfc3339_stack(t: SystemTime) -> Rfc3339 {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let millis = since.subsec_millis();
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    StackText::format(format_args!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    ))
}

/// The UTC calendar date of a time: (year, month, day).
pub fn utc_date(t: SystemTime) -> (i64, u32, u32) {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    civil_from_days((secs / 86_400) as i64)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339_utc(t), "2026-11-18T11:06:40.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_utc(leap), "2000-02-29T00:00:00.000Z");
        // The latest time the system can hold still fits the stack buffer whole.
        let far = UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 2);
        let text = rfc3339_utc(far);
        assert!(text.ends_with(".000Z") && text.len() > 24, "{text}");
        assert_eq!(rfc3339_stack(t).as_str(), "2026-11-18T11:06:40.123Z");
        // Text that does not fit is cut at a character boundary, never split.
        let cut = StackText::<5>::format(format_args!("ab\u{e9}\u{e9}"));
        assert_eq!(cut.as_str(), "ab\u{e9}");
    }

    #[test]
    fn records_serialise_as_one_line_with_the_event_tag() {
        let record = AuditRecord::Command {
            verb: "RETR".into(),
            arg: "a\"b\nc".into(),
            arg_hex: None,
            path: Some("/in/a\"b\nc".into()),
            decision: "allow",
            reply: 226,
            line_hex: None,
            line_bytes: None,
        };
        let envelope = Envelope {
            ts: "t",
            session: "s",
            worker: 0,
            client: "127.0.0.1:1",
            user: Some("u"),
            user_hex: None,
            record: &record,
        };
        let text = serde_json::to_string(&envelope).expect("serialise");
        assert!(!text.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).expect("parse");
        assert_eq!(v["event"], "command");
        assert_eq!(v["arg"], "a\"b\nc");
        assert_eq!(v["path"], "/in/a\"b\nc");
        assert_eq!(v["reply"], 226);
        assert_eq!(v["user"], "u");
    }

    #[test]
    fn path_is_left_out_when_there_is_none() {
        let record = AuditRecord::Transfer {
            verb: "STOU",
            arg: String::new(),
            arg_hex: None,
            path: None,
            direction: "upload",
            bytes: 1,
            result: "ok",
            duration_ms: 2,
            sha256: None,
            digest: None,
            backend_check: None,
            data_addresses: None,
            filecopy: None,
            filecopy_error: None,
            tls_end: None,
        };
        let text = serde_json::to_string(&record).expect("serialise");
        assert!(!text.contains("\"path\""), "{text}");
    }

    #[test]
    fn a_transfer_without_digest_says_so_and_has_no_sha256() {
        let record = AuditRecord::Transfer {
            verb: "RETR",
            arg: "f".to_owned(),
            arg_hex: None,
            path: Some("/f".to_owned()),
            direction: "download",
            bytes: 3,
            result: "ok",
            duration_ms: 1,
            sha256: None,
            digest: Some(DigestOff::None),
            backend_check: None,
            data_addresses: None,
            filecopy: None,
            filecopy_error: None,
            tls_end: None,
        };
        let value = serde_json::to_value(&record).expect("serialise");
        assert_eq!(value["digest"], "none");
        assert!(value.get("sha256").is_none(), "{value}");
    }
}
