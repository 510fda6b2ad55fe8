//! Audit-trail fixtures shared by tests/audit_sinks.rs and tests/audit_schema.rs: a syslog
//! daemon of our own (a Unix datagram socket in a temp dir, never the system's /dev/log) with
//! a strict RFC 5424 parser, a scripted session that produces every kind of session event,
//! and helpers to read the audit file(s) and count events per client.
//!
//! Included with `#[path = "common/audit.rs"] mod audit;` next to `mod common;`.

#![allow(dead_code)]

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Ftp, Ftpgate, Vsftpd, random_bytes, wait_until};

/// Every kind of event a session produces.
pub const SESSION_KINDS: &[&str] = &[
    "session_start",
    "login",
    "command",
    "transfer",
    "policy_violation",
    "session_end",
];

/// One syslog message, parsed.
#[derive(Clone, Debug)]
pub struct Message {
    pub raw: String,
    pub pri: u16,
    pub facility: u16,
    pub severity: u16,
    pub version: u8,
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    pub structured_data: String,
    /// MSG, as sent (with the `@cee: ` cookie if any).
    pub msg: String,
}

impl Message {
    /// The JSON event in MSG (after the cookie, if any).
    pub fn json(&self) -> Value {
        let text = self.msg.strip_prefix("@cee: ").unwrap_or(&self.msg);
        serde_json::from_str(text).unwrap_or_else(|e| panic!("MSG is not JSON ({e}): {}", self.raw))
    }
}

/// A header field: 1 to `max` printable US-ASCII characters (33-126), or the nil value `-`.
fn header_field<'a>(rest: &mut &'a str, name: &str, max: usize) -> Result<&'a str, String> {
    let end = rest
        .find(' ')
        .ok_or_else(|| format!("{name}: no space after it"))?;
    let field = &rest[..end];
    if field.is_empty() || field.len() > max || !field.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(format!(
            "{name}: {field:?} is not 1..{max} printable ASCII characters"
        ));
    }
    *rest = &rest[end + 1..];
    Ok(field)
}

/// Parses an RFC 5424 message strictly (section 6): PRI, VERSION 1, TIMESTAMP, HOSTNAME,
/// APP-NAME, PROCID, MSGID, STRUCTURED-DATA (only the nil value is accepted: ftpgate sends
/// none), MSG.
pub fn parse_rfc5424(raw: &str) -> Result<Message, String> {
    let rest = raw.strip_prefix('<').ok_or("no '<'")?;
    let close = rest.find('>').ok_or("no '>'")?;
    let pri_text = &rest[..close];
    if pri_text.is_empty()
        || pri_text.len() > 3
        || !pri_text.bytes().all(|b| b.is_ascii_digit())
        || (pri_text.len() > 1 && pri_text.starts_with('0'))
    {
        return Err(format!("PRI {pri_text:?}"));
    }
    let pri: u16 = pri_text.parse().map_err(|_| "PRI")?;
    if pri > 191 {
        return Err(format!("PRI {pri} > 191"));
    }
    let mut rest = &rest[close + 1..];
    let version = header_field(&mut rest, "VERSION", 2)?;
    if version != "1" {
        return Err(format!("VERSION {version:?}"));
    }
    let timestamp = header_field(&mut rest, "TIMESTAMP", 64)?.to_string();
    check_timestamp(&timestamp)?;
    let hostname = header_field(&mut rest, "HOSTNAME", 255)?.to_string();
    let app_name = header_field(&mut rest, "APP-NAME", 48)?.to_string();
    let procid = header_field(&mut rest, "PROCID", 128)?.to_string();
    let msgid = header_field(&mut rest, "MSGID", 32)?.to_string();
    let structured_data = header_field(&mut rest, "STRUCTURED-DATA", 1)?.to_string();
    if structured_data != "-" {
        return Err(format!("STRUCTURED-DATA {structured_data:?}"));
    }
    Ok(Message {
        raw: raw.to_string(),
        pri,
        facility: pri / 8,
        severity: pri % 8,
        version: 1,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        msg: rest.to_string(),
    })
}

/// ftpgate's timestamps: `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, milliseconds), a valid
/// RFC 5424 TIMESTAMP.
pub fn check_timestamp(ts: &str) -> Result<(), String> {
    let b = ts.as_bytes();
    let shape = b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    let num = |r: std::ops::Range<usize>| ts[r].parse::<u32>().unwrap_or(99);
    if !shape
        || !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return Err(format!("timestamp {ts:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ"));
    }
    Ok(())
}

/// A syslog daemon of our own on a Unix datagram socket: a thread reads every datagram as it
/// comes (the kernel queues only `net.unix.max_dgram_qlen` of them, 10 by default) and keeps
/// it. [`pause`](Self::pause) stops reading (a stuck daemon), [`close`](Self::close) closes
/// the socket (a dead one), [`reopen`](Self::reopen) binds the path again (a restarted one).
pub struct SyslogListener {
    inner: Arc<Mutex<Inner>>,
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    socket: Option<UnixDatagram>,
    reading: bool,
    stop: bool,
    received: Vec<String>,
}

fn bind_socket(path: &Path) -> UnixDatagram {
    let _ = std::fs::remove_file(path);
    let socket =
        UnixDatagram::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
    socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .expect("read timeout");
    socket
}

impl SyslogListener {
    pub fn bind(path: &Path) -> SyslogListener {
        let inner = Arc::new(Mutex::new(Inner {
            socket: Some(bind_socket(path)),
            reading: true,
            stop: false,
            received: Vec::new(),
        }));
        let shared = Arc::clone(&inner);
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                // The socket is used only under the lock, so close() really closes it.
                let mut state = shared.lock().expect("listener lock");
                if state.stop {
                    return;
                }
                let got = match (&state.socket, state.reading) {
                    (Some(socket), true) => match socket.recv(&mut buf) {
                        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::WouldBlock
                                    | ErrorKind::TimedOut
                                    | ErrorKind::Interrupted
                            ) =>
                        {
                            None
                        }
                        Err(e) => panic!("recv: {e}"),
                    },
                    _ => None,
                };
                match got {
                    Some(text) => {
                        state.received.push(text);
                        drop(state);
                        std::thread::yield_now();
                    }
                    None => {
                        drop(state);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        });
        SyslogListener {
            inner,
            path: path.to_path_buf(),
            thread: Some(thread),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("listener lock")
    }

    /// Stops reading: datagrams pile up in the kernel until its queue is full.
    pub fn pause(&mut self) {
        self.state().reading = false;
    }

    pub fn resume(&mut self) {
        self.state().reading = true;
    }

    /// Closes the socket (the daemon went away). The socket file stays: senders get
    /// ECONNREFUSED, as with a daemon that crashed.
    pub fn close(&mut self) {
        self.state().socket = None;
    }

    /// Binds the path again (a restarted daemon).
    pub fn reopen(&mut self) {
        let socket = bind_socket(&self.path);
        self.state().socket = Some(socket);
    }

    /// Every message received so far, parsed (panics on one that is not RFC 5424).
    pub fn messages(&mut self) -> Vec<Message> {
        // Parsed outside the lock: the reading thread must never wait (the kernel queues
        // only a few datagrams).
        let received = self.state().received.clone();
        received
            .iter()
            .map(|raw| parse_rfc5424(raw).unwrap_or_else(|e| panic!("not RFC 5424 ({e}): {raw}")))
            .collect()
    }

    /// Waits until `pred` holds for the messages received so far; returns them.
    pub fn wait(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&[Message]) -> bool,
    ) -> Vec<Message> {
        let mut messages = Vec::new();
        let ok = wait_until(timeout, || {
            messages = self.messages();
            pred(&messages)
        });
        assert!(
            ok,
            "syslog condition not met within {timeout:?}; received:\n{}",
            messages
                .iter()
                .map(|m| m.raw.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        messages
    }
}

impl Drop for SyslogListener {
    fn drop(&mut self) {
        if let Ok(mut state) = self.inner.lock() {
            state.stop = true;
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The clients of the scripted session, for picking their events.
pub struct Script {
    pub full: SocketAddr,
    pub failed: SocketAddr,
}

/// One session that produces session_start, login ok, command allow and deny (and one whose
/// argument is not UTF-8), transfer, a policy_violation (a bounce PORT) and session_end, and
/// one with a failed login. Needs the
/// standard vsftpd setup (`ftp` is read-only) and waits until both sessions have ended in
/// the events `events` returns.
pub fn scripted_sessions(vs: &Vsftpd, gate: &Ftpgate) -> Script {
    let data = random_bytes(50_000, 7);
    vs.put_file("pub/data.bin", &data);
    let mut c = Ftp::connect(gate.addr());
    let full = c.local_addr();
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/data.bin"), data);
    assert_eq!(c.cmd("DELE /pub/data.bin").0, 550, "read-only: denied");
    // An argument that is not UTF-8 (its event must still fit the schema).
    c.send(b"SIZE /pub/caf\xe9.bin\r\n");
    assert_eq!(c.read_reply().0, 550, "no such file");
    let (code, text) = c.cmd("PORT 127,0,0,1,0,21");
    assert!(code >= 500, "a bounce PORT is refused: {text}");
    assert_eq!(c.cmd("QUIT").0, 221);
    c.read_to_eof(Duration::from_secs(10));

    let mut c = Ftp::connect(gate.addr());
    let failed = c.local_addr();
    // A repeated command before login is counted in session_end's repeated_commands.
    assert_eq!(c.cmd("NOOP").0, 200);
    assert_eq!(c.cmd("NOOP").0, 200);
    assert_eq!(c.cmd("USER mallory").0, 331);
    assert_eq!(c.cmd("PASS guess").0, 530);
    assert_eq!(c.cmd("QUIT").0, 221);
    c.read_to_eof(Duration::from_secs(10));
    Script { full, failed }
}

/// The events of `client`.
pub fn of_client(events: &[Value], client: SocketAddr) -> Vec<&Value> {
    let client = client.to_string();
    events
        .iter()
        .filter(|e| e["client"] == client.as_str())
        .collect()
}

/// True once `client`'s session_end is among `events`.
pub fn ended(events: &[Value], client: SocketAddr) -> bool {
    of_client(events, client)
        .iter()
        .any(|e| e["event"] == "session_end")
}

/// The events of an audit file (a missing file has none; a line being written is left out).
pub fn file_events(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Sum of `lost` over the audit_loss events.
pub fn lost_reported(events: &[Value]) -> u64 {
    events
        .iter()
        .filter(|e| e["event"] == "audit_loss")
        .map(|e| e["lost"].as_u64().expect("lost is a number"))
        .sum()
}

/// Connects and reads the first reply: 220 (then QUIT and wait for the close) or 421 (the
/// connection is closed by ftpgate). Returns the reply and the client address.
pub fn knock(gate: &Ftpgate) -> ((u16, String), SocketAddr) {
    let mut c = Ftp::connect_raw(gate.addr());
    let client = c.local_addr();
    let reply = c.read_reply();
    if reply.0 == 220 {
        assert_eq!(c.cmd("QUIT").0, 221);
    }
    c.read_to_eof(Duration::from_secs(10));
    (reply, client)
}

/// Repeats `step` every 50 ms until it returns `Some`, for at most `timeout`.
pub fn poll<T>(timeout: Duration, mut step: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = step() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
