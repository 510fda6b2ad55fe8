//! The admin socket's protocol: what `ftpgate sessions`, `ftpgate kill` and `ftpgate
//! drain` ask a worker, and what it answers. Pure: the reactor (`reactor/admin.rs`) does
//! the socket's I/O, `cli.rs` the command line's.
//!
//! Each worker process listens on its own Unix socket, `worker-<index>.sock` in the admin
//! directory (`--admin DIR`, default [`DEFAULT_ADMIN_DIR`]): workers are separate processes
//! with their own sessions, and a Unix stream socket cannot be shared the way SO_REUSEPORT
//! shares the TCP listeners. The command line asks every worker's socket and merges the
//! answers, so a worker that hangs cannot hold up the others' answers for more than the
//! admin timeout. The directory is the service user's (mode 0700) and each socket 0600:
//! whoever can connect may kill sessions, so only that user and root can.
//!
//! One request per connection: one line (at most [`MAX_ADMIN_REQUEST_BYTES`]), one JSON
//! reply, then the worker closes the connection.

pub mod cli;

use serde::{Deserialize, Serialize};

use crate::limits::MAX_ADMIN_REQUEST_BYTES;

/// Where the admin sockets are when `--admin` does not say (systemd's `RuntimeDirectory`).
pub const DEFAULT_ADMIN_DIR: &str = "/run/ftpgate";

/// The socket file of worker `index` in the admin directory.
pub fn socket_name(index: usize) -> String {
    format!("worker-{index}.sock")
}

/// Started as root: makes the admin directory the service user's (`owner`, mode 0700),
/// creating it when `--admin` named it. A default directory that does not exist stays
/// absent (no admin socket).
pub fn prepare_dir(
    dir: &std::path::Path,
    explicit: bool,
    owner: (u32, u32),
) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.is_dir() {
        if !explicit {
            return Ok(());
        }
        std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    }
    std::os::unix::fs::chown(dir, Some(owner.0), Some(owner.1))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// What an operator asks a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Every session of the worker.
    Sessions,
    /// Close the session with this id (the `session` of its audit events).
    Kill(String),
    /// Close every session of this user.
    KillUser(String),
    /// Stop taking new sessions (new connections get 421); sessions in flight go on.
    Drain,
    /// Take new sessions again after a drain.
    Resume,
    /// The worker's metrics samples (`ftpgate metrics` adds up the workers').
    Metrics,
}

/// Why a request line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    TooLong,
    NotUtf8,
    Unknown(String),
    MissingArgument(&'static str),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::TooLong => {
                write!(f, "request longer than {MAX_ADMIN_REQUEST_BYTES} bytes")
            }
            RequestError::NotUtf8 => write!(f, "request is not UTF-8"),
            RequestError::Unknown(verb) => write!(f, "unknown request {verb:?}"),
            RequestError::MissingArgument(verb) => write!(f, "{verb} needs an argument"),
        }
    }
}

impl Request {
    /// The request line as sent (without its newline).
    pub fn line(&self) -> String {
        match self {
            Request::Sessions => "sessions".to_owned(),
            Request::Kill(id) => format!("kill {id}"),
            Request::KillUser(user) => format!("kill-user {user}"),
            Request::Drain => "drain".to_owned(),
            Request::Resume => "resume".to_owned(),
            Request::Metrics => "metrics".to_owned(),
        }
    }

    /// Parses one request line (the bytes before the first newline; a trailing CR is
    /// dropped).
    pub fn parse(line: &[u8]) -> Result<Request, RequestError> {
        if line.len() > MAX_ADMIN_REQUEST_BYTES {
            return Err(RequestError::TooLong);
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
        let (verb, arg) = match text.split_once(' ') {
            Some((verb, arg)) => (verb, arg.trim()),
            None => (text, ""),
        };
        let needs = |name: &'static str| {
            if arg.is_empty() {
                Err(RequestError::MissingArgument(name))
            } else {
                Ok(arg.to_owned())
            }
        };
        match verb {
            "sessions" => Ok(Request::Sessions),
            "kill" => needs("kill").map(Request::Kill),
            "kill-user" => needs("kill-user").map(Request::KillUser),
            "drain" => Ok(Request::Drain),
            "resume" => Ok(Request::Resume),
            "metrics" => Ok(Request::Metrics),
            other => Err(RequestError::Unknown(other.chars().take(32).collect())),
        }
    }
}

/// A transfer in flight, as `ftpgate sessions` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferInfo {
    pub verb: String,
    /// The full path (or the argument when the working directory is unknown).
    pub path: String,
    /// `download` (RETR, listings) or `upload`.
    pub direction: String,
    pub bytes: u64,
    pub seconds: f64,
    /// Bytes per second since the transfer started.
    pub rate: u64,
}

/// One session, as `ftpgate sessions` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub worker: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub client: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The backend server of the pool (`ip:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferInfo>,
    pub age_seconds: u64,
}

/// A worker's reply to any request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub worker: usize,
    #[serde(default)]
    pub draining: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<SessionInfo>>,
    /// The listing was cut at [`crate::limits::MAX_ADMIN_REPLY_BYTES`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Sessions a `kill` or `kill-user` closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<crate::metrics::Sample>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// The reply as one JSON line, at most `max` bytes: a listing that does not fit loses
    /// its last sessions and says `truncated`.
    pub fn encode(mut self, max: usize) -> Vec<u8> {
        loop {
            let mut line = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
            line.push(b'\n');
            let Some(sessions) = self.sessions.as_mut() else {
                return line;
            };
            if line.len() <= max || sessions.is_empty() {
                return line;
            }
            // Drop a share proportional to the excess (at least one): a few passes at most.
            let excess = line.len() - max;
            let per = (line.len() / sessions.len()).max(1);
            let drop = excess.div_ceil(per).clamp(1, sessions.len());
            sessions.truncate(sessions.len() - drop);
            self.truncated = true;
        }
    }
}

/// Human-readable bytes (`12.3 MiB`).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `1h02m`, `3m05s`, `42s`.
fn human_age(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// Cuts `text` to `width` characters, marking the cut with `…`.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The table `ftpgate sessions` prints: one line per session, oldest first.
pub fn table(sessions: &[SessionInfo]) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "ID".into(),
        "USER".into(),
        "CLIENT".into(),
        "BACKEND".into(),
        "CWD".into(),
        "TRANSFER".into(),
        "AGE".into(),
    ]];
    let mut sorted: Vec<&SessionInfo> = sessions.iter().collect();
    sorted.sort_by(|a, b| b.age_seconds.cmp(&a.age_seconds).then(a.id.cmp(&b.id)));
    for s in sorted {
        let backend = match (&s.backend, &s.server) {
            (Some(b), Some(server)) => format!("{b} ({server})"),
            (Some(b), None) => b.clone(),
            _ => "-".into(),
        };
        let transfer = s.transfer.as_ref().map_or_else(
            || "-".into(),
            |t| {
                format!(
                    "{} {} {} {}/s",
                    t.verb,
                    fit(&t.path, 40),
                    human_bytes(t.bytes),
                    human_bytes(t.rate)
                )
            },
        );
        rows.push([
            s.id.clone(),
            fit(s.user.as_deref().unwrap_or("-"), 24),
            s.client.clone(),
            fit(&backend, 32),
            fit(s.cwd.as_deref().unwrap_or("-"), 32),
            transfer,
            human_age(s.age_seconds),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
