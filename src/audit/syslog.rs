//! Syslog without a crate (nginx's `ngx_syslog.c` idea): the header written by hand, sent as
//! one datagram over a non-blocking Unix datagram socket connected to the syslog daemon's
//! socket (`/dev/log` unless the policy names another).
//!
//! ```text
//! <PRI>APP-NAME[PROCID]: MSG                                      (format "rfc3164", the default)
//! <86>ftpgate[4242]: {"ts":...,"event":"login",...}
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG           (format "rfc5424")
//! <86>1 2026-11-21T13:52:12.170Z gw1 ftpgate 4242 login - {"ts":...,"event":"login",...}
//! ```
//!
//! PRI is facility * 8 + severity; TIMESTAMP is the event's `ts`; MSGID is the event kind;
//! there is no STRUCTURED-DATA (`-`); MSG is the event's JSON object, optionally after the
//! `@cee: ` cookie that rsyslog's mmjsonparse looks for. No BOM is written: it would come
//! before the cookie, and JSON is plain UTF-8 anyway.
//!
//! The first form is what syslog(3) writes to `/dev/log` (without its local-time
//! timestamp, which the daemon supplies), hence the default: journald, which owns `/dev/log`
//! under systemd, and rsyslog's default socket parser do not parse RFC 5424 there and keep
//! its header as text. RFC 5424 is for a daemon input configured to parse it.
//!
//! The socket never blocks. A daemon that is busy (EAGAIN, ENOBUFS: its queue is full) gets
//! the message later, from a small bounded backlog sent in order once it has room; a daemon
//! that is down (ENOENT, ECONNREFUSED), or busy with the backlog full, costs the event, which
//! the caller counts.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::limits::{MAX_SYSLOG_BACKLOG, MAX_SYSLOG_BACKLOG_BYTES};
use crate::policy::{SyslogFormat, SyslogPolicy};

/// RFC 5424 severities used by the audit trail.
pub const WARNING: u8 = 4;
pub const NOTICE: u8 = 5;
pub const INFO: u8 = 6;

/// RFC 5424 field limits.
const MAX_HOSTNAME: usize = 255;
const MAX_APP_NAME: usize = 48;
const MAX_MSGID: usize = 32;

/// What the header needs to know about one event.
pub struct Meta<'a> {
    pub kind: &'a str,
    pub severity: u8,
    pub ts: &'a str,
}

/// The fixed parts of every header, checked once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub facility: u8,
    pub hostname: String,
    pub app_name: String,
    pub procid: u32,
    pub cee: bool,
    pub format: SyslogFormat,
}

impl Header {
    pub fn new(policy: &SyslogPolicy, hostname: Option<&str>, procid: u32) -> Header {
        let mut app_name = field(&policy.app_name, MAX_APP_NAME);
        if policy.format == SyslogFormat::Rfc3164 {
            // The TAG ends at '[' or ':'.
            app_name = app_name.replace(['[', ']', ':'], "_");
        }
        Header {
            facility: policy.facility.min(23),
            hostname: field(hostname.unwrap_or(""), MAX_HOSTNAME),
            app_name,
            procid,
            cee: policy.cee,
            format: policy.format,
        }
    }

    /// Appends the header (and the cookie) for one event to `out`; the JSON goes after it.
    pub fn write(&self, out: &mut Vec<u8>, meta: &Meta<'_>) {
        let pri = u16::from(self.facility) * 8 + u16::from(meta.severity.min(7));
        // Writing into a Vec cannot fail.
        let _ = match self.format {
            SyslogFormat::Rfc5424 => {
                let msgid = field(meta.kind, MAX_MSGID);
                let ts = if meta.ts.is_empty() { "-" } else { meta.ts };
                write!(
                    out,
                    "<{pri}>1 {ts} {} {} {} {msgid} - ",
                    self.hostname, self.app_name, self.procid
                )
            }
            SyslogFormat::Rfc3164 => write!(out, "<{pri}>{}[{}]: ", self.app_name, self.procid),
        };
        if self.cee {
            out.extend_from_slice(b"@cee: ");
        }
    }
}

/// An RFC 5424 header field: printable US-ASCII without spaces, at most `max` characters;
/// `-` (the nil value) when nothing is left.
fn field(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if clean.is_empty() {
        "-".to_owned()
    } else {
        clean
    }
}

/// The connection to the syslog daemon.
pub struct SyslogOut {
    pub path: PathBuf,
    pub header: Header,
    socket: Option<UnixDatagram>,
    /// Whole datagrams the daemon had no room for yet, oldest first.
    backlog: VecDeque<Vec<u8>>,
    backlog_bytes: usize,
}

impl SyslogOut {
    /// Not connected yet: call [`connect`](Self::connect).
    pub fn new(path: &Path, header: Header) -> SyslogOut {
        SyslogOut {
            path: path.to_path_buf(),
            header,
            socket: None,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
        }
    }

    /// Messages waiting for room in the daemon's queue.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    pub fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    /// A fresh non-blocking socket connected to the daemon's. Connecting a Unix datagram
    /// socket does not wait for anything: it fails at once when nobody listens there.
    pub fn connect(&mut self) -> io::Result<()> {
        self.socket = None;
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        socket.connect(&self.path)?;
        self.socket = Some(socket);
        Ok(())
    }

    pub fn disconnect(&mut self) {
        self.socket = None;
    }

    /// Sends one message: the header for `meta`, then `json`; after the backlog, and into
    /// it when the daemon's queue is full. `scratch` is reused. An error means the message
    /// is lost: the socket is worth nothing, or the daemon is busy and the backlog full.
    pub fn send(&mut self, meta: &Meta<'_>, json: &[u8], scratch: &mut Vec<u8>) -> io::Result<()> {
        scratch.clear();
        self.header.write(scratch, meta);
        scratch.extend_from_slice(json);
        self.flush()?;
        if self.backlog.is_empty() {
            match send_one(self.socket.as_ref(), scratch) {
                Ok(()) => return Ok(()),
                Err(e) if busy(&e) => {}
                Err(e) => return Err(e),
            }
        }
        if self.backlog.len() >= MAX_SYSLOG_BACKLOG
            || self.backlog_bytes + scratch.len() > MAX_SYSLOG_BACKLOG_BYTES
        {
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        self.backlog_bytes += scratch.len();
        self.backlog.push_back(scratch.clone());
        Ok(())
    }

    /// Sends the backlog, oldest first, until it is empty or the daemon's queue is full
    /// again (both Ok). An error means the socket is worth nothing.
    pub fn flush(&mut self) -> io::Result<()> {
        while let Some(datagram) = self.backlog.front() {
            match send_one(self.socket.as_ref(), datagram) {
                Ok(()) => {
                    self.backlog_bytes -= datagram.len();
                    self.backlog.pop_front();
                }
                Err(e) if busy(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn send_one(socket: Option<&UnixDatagram>, datagram: &[u8]) -> io::Result<()> {
    let Some(socket) = socket else {
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "not connected to the syslog socket",
        ));
    };
    loop {
        match socket.send(datagram) {
            Ok(n) if n == datagram.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("short datagram")),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The daemon is there but its queue is full.
pub fn busy(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS))
        || e.kind() == io::ErrorKind::WouldBlock
}

/// True for errors after which the socket is worth nothing: the daemon's socket is gone or
/// was replaced (a restarted daemon binds a new one), so a new connection is needed.
pub fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::ENOTCONN
                | libc::EPIPE
                | libc::ECONNRESET
                | libc::ENOENT
                | libc::EDESTADDRREQ
        )
    ) || e.kind() == io::ErrorKind::NotConnected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(facility: u8, cee: bool) -> SyslogPolicy {
        SyslogPolicy {
            facility,
            app_name: "ftpgate".to_owned(),
            socket: PathBuf::from("/dev/log"),
            cee,
            format: SyslogFormat::Rfc5424,
        }
    }

    fn header_text(header: &Header, kind: &str, severity: u8) -> String {
        let mut out = Vec::new();
        let meta = Meta {
            kind,
            severity,
            ts: "2026-11-21T13:52:12.170Z",
        };
        header.write(&mut out, &meta);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn header_is_rfc5424() {
        let header = Header::new(&policy(10, false), Some("gw1"), 4242);
        assert_eq!(
            header_text(&header, "login", INFO),
            "<86>1 2026-11-21T13:52:12.170Z gw1 ftpgate 4242 login - "
        );
        assert_eq!(
            header_text(&header, "policy_violation", NOTICE),
            "<85>1 2026-11-21T13:52:12.170Z gw1 ftpgate 4242 policy_violation - "
        );
        let local7 = Header::new(&policy(23, true), Some("gw1"), 1);
        assert_eq!(
            header_text(&local7, "audit_loss", WARNING),
            "<188>1 2026-11-21T13:52:12.170Z gw1 ftpgate 1 audit_loss - @cee: "
        );
        let kern = Header::new(&policy(0, false), Some("gw1"), 1);
        assert!(header_text(&kern, "x", INFO).starts_with("<6>1 "));
    }

    #[test]
    fn header_in_the_local_format() {
        let mut p = policy(10, false);
        p.format = SyslogFormat::Rfc3164;
        let header = Header::new(&p, Some("gw1"), 4242);
        assert_eq!(header_text(&header, "login", INFO), "<86>ftpgate[4242]: ");
        p.cee = true;
        p.facility = 16;
        p.app_name = "gw:ftp[1]".to_owned();
        let header = Header::new(&p, Some("gw1"), 7);
        assert_eq!(
            header_text(&header, "policy_violation", NOTICE),
            "<133>gw_ftp_1_[7]: @cee: "
        );
    }

    #[test]
    fn header_fields_are_printable_ascii_without_spaces() {
        let header = Header::new(&policy(1, false), Some("bad host\u{e9}"), 7);
        assert_eq!(header.hostname, "bad_host_");
        let header = Header::new(&policy(1, false), None, 7);
        assert_eq!(header.hostname, "-");
        let long = "h".repeat(300);
        assert_eq!(
            Header::new(&policy(1, false), Some(&long), 7)
                .hostname
                .len(),
            255
        );
        // Out-of-range numbers cannot produce an invalid PRI.
        let mut odd = Header::new(&policy(200, false), Some("h"), 7);
        assert_eq!(odd.facility, 23);
        odd.facility = 23;
        assert!(header_text(&odd, "x", 99).starts_with("<191>1 "));
        assert!(
            header_text(&odd, &"k".repeat(40), INFO).contains(&format!(" {} - ", "k".repeat(32)))
        );
    }

    #[test]
    fn sends_datagrams_and_reports_a_missing_daemon() {
        let dir = std::env::temp_dir().join(format!("ftpgate-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("log");
        let header = Header::new(&policy(10, true), Some("h"), 1);
        let mut out = SyslogOut::new(&path, header);
        let err = out.connect().expect_err("nobody listens yet");
        assert!(peer_gone(&err), "{err}");
        let meta = Meta {
            kind: "login",
            severity: INFO,
            ts: "t",
        };
        let mut scratch = Vec::new();
        let err = out
            .send(&meta, b"{}", &mut scratch)
            .expect_err("not connected");
        assert!(peer_gone(&err));

        let daemon = UnixDatagram::bind(&path).expect("bind");
        out.connect().expect("connect");
        out.send(&meta, b"{\"a\":1}", &mut scratch).expect("send");
        let mut buf = [0u8; 512];
        let n = daemon.recv(&mut buf).expect("recv");
        assert_eq!(
            std::str::from_utf8(&buf[..n]).expect("utf-8"),
            "<86>1 t h ftpgate 1 login - @cee: {\"a\":1}"
        );

        // A busy daemon: what does not fit waits in the backlog, in order.
        let mut sent = 0;
        while out.backlog_len() < 3 {
            out.send(&meta, format!("{sent}").as_bytes(), &mut scratch)
                .expect("queued or held");
            sent += 1;
        }
        let mut got = Vec::new();
        while got.len() < sent {
            if let Ok(n) = daemon.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            out.flush().expect("flush");
        }
        assert_eq!(out.backlog_len(), 0);
        for (i, message) in got.iter().enumerate() {
            assert!(
                message.ends_with(&format!(" - @cee: {i}")),
                "{i}: {message}"
            );
        }

        // A full queue and a full backlog: the send fails at once instead of blocking.
        let mut failed = None;
        for _ in 0..100_000 {
            if let Err(e) = out.send(&meta, &[b'x'; 1000], &mut scratch) {
                failed = Some(e);
                break;
            }
        }
        let failed = failed.expect("the queue filled up");
        assert!(
            matches!(failed.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)),
            "{failed}"
        );
        assert!(!peer_gone(&failed));

        // The daemon goes away: the socket file stays, nobody reads it.
        drop(daemon);
        let err = (0..1000)
            .find_map(|_| match out.send(&meta, b"{}", &mut scratch) {
                Err(e) if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) => {
                    Some(e)
                }
                _ => None,
            })
            .expect("the send fails");
        assert!(peer_gone(&err), "{err}");
        let err = out.connect().expect_err("the socket file is stale");
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
