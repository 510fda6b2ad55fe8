//! One transport for plain and TLS sockets: a non-blocking mio socket with its last known
//! readiness, and rustls over it when the connection is FTPS (driven by hand, see `tls`).
//!
//! Every read and write goes through [`Conn`], whatever the protocol: a read says what it
//! brought ([`ReadStep`]: bytes, would-block, or the end, clean or truncated), a write how
//! much it took (0: would block), and errors are `io::Error`s. Readiness follows mio's
//! edge-triggered contract: a flag is cleared when the socket returned `WouldBlock`, or
//! when a read (of plaintext, or of TLS records into rustls) came back short before the
//! peer's end was announced (see [`Conn::peer_closed`]).

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;

use crate::services::sockets;
use crate::tls;

/// A socket and its last known readiness.
pub struct Conn {
    pub(super) stream: TcpStream,
    pub(super) readable: bool,
    pub(super) writable: bool,
    /// A non-blocking connect is in progress.
    pub(super) connecting: bool,
    /// TLS over this socket (FTPS), driven by hand (see `tls`).
    pub(super) tls: Option<Box<rustls::Connection>>,
    /// close_notify was queued (TLS) before the write side is shut.
    pub(super) closing_tls: bool,
    /// The TLS session was checked against the data-connection reuse rule.
    pub(super) tls_checked: bool,
    /// The finished TLS handshake was recorded in the audit trail (a `tls` event), or its
    /// failure counted (`ftpgate_tls_handshake_failures_total`).
    pub(super) tls_reported: bool,
    /// The TLS handshake failed: an error, or the peer's end, before it finished.
    tls_broken: bool,
    /// A readiness event said the peer's end (FIN or reset) has come. Until then a read
    /// that returns less than it asked for emptied the socket: the read that would only
    /// say EAGAIN is skipped, and the next arrival (data or the end) wakes the session
    /// through epoll. After it, reads go on until the end is read.
    pub(super) peer_closed: bool,
}

impl Conn {
    pub fn new(stream: TcpStream, connecting: bool) -> Conn {
        Conn {
            stream,
            readable: true,
            writable: true,
            connecting,
            tls: None,
            closing_tls: false,
            tls_checked: false,
            tls_reported: false,
            tls_broken: false,
            peer_closed: false,
        }
    }

    /// A TLS handshake that failed and was not yet counted; marks it counted (each
    /// connection's failure is counted once).
    pub fn take_handshake_failure(&mut self) -> bool {
        let failed = self.tls_broken && !self.tls_reported;
        if failed {
            self.tls_reported = true;
        }
        failed
    }

    /// Notes a TLS handshake that `step` ended: bytes that are not TLS, a protocol error,
    /// or the peer's end (or reset) after the handshake began. A peer that leaves before it
    /// sent a ClientHello (a load balancer's TCP check of an implicit FTPS port, often a
    /// reset) started no handshake: that end is not a failure.
    fn note<T>(&mut self, step: io::Result<T>, ended: impl Fn(&T) -> bool) -> io::Result<T> {
        if let Some(tls) = self.tls.as_deref() {
            let started = match tls {
                rustls::Connection::Client(_) => true,
                rustls::Connection::Server(_) => tls.protocol_version().is_some(),
            };
            let failed = match &step {
                Err(e) => started || e.kind() == io::ErrorKind::InvalidData,
                Ok(value) => ended(value) && started,
            };
            if failed && tls.is_handshaking() {
                self.tls_broken = true;
            }
        }
        step
    }

    /// Reads plaintext (through TLS when it is on).
    pub fn read_into(&mut self, buf: &mut [u8]) -> io::Result<ReadStep> {
        if self.tls.is_none() {
            return read_plain(self, buf);
        }
        let step = self.read_tls(buf);
        self.note(step, |s| matches!(s, ReadStep::Eof(_)))
    }

    fn read_tls(&mut self, buf: &mut [u8]) -> io::Result<ReadStep> {
        let Some(tls) = self.tls.as_mut() else {
            return read_plain(self, buf);
        };
        Ok(
            match tls::read(
                tls,
                &mut self.stream,
                &mut self.readable,
                &mut self.writable,
                self.peer_closed,
                buf,
            )? {
                tls::TlsRead::Data(n) => ReadStep::Data(n),
                tls::TlsRead::Closed => ReadStep::Eof(Ending::Clean),
                tls::TlsRead::Truncated => ReadStep::Eof(Ending::Truncated),
                tls::TlsRead::Blocked => ReadStep::Blocked,
            },
        )
    }

    /// Writes plaintext (through TLS when it is on); Ok(0) when nothing more fits now.
    pub fn write_from(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(tls) = self.tls.as_mut() {
            let step = tls::write(tls, &mut self.stream, &mut self.writable, data);
            return self.note(step, |_| false);
        }
        loop {
            if !self.writable {
                return Ok(0);
            }
            match self.stream.write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    return Ok(0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends TLS records rustls has queued (handshake, alerts, tickets). Ok(true) on progress.
    pub fn flush_tls(&mut self) -> io::Result<bool> {
        let step = match self.tls.as_mut() {
            Some(tls) if !self.connecting => tls::flush(tls, &mut self.stream, &mut self.writable),
            _ => Ok(false),
        };
        self.note(step, |_| false)
    }

    /// Drives a TLS handshake without reading application data. Ok(true) on progress.
    pub fn handshake(&mut self) -> io::Result<bool> {
        let step = self.drive_handshake();
        self.note(step, |_| false)
    }

    fn drive_handshake(&mut self) -> io::Result<bool> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(false);
        };
        if self.connecting || !tls.is_handshaking() {
            return Ok(false);
        }
        let mut progress = tls::flush(tls, &mut self.stream, &mut self.writable)?;
        while self.readable && tls.is_handshaking() {
            match tls::read_records(tls, &mut self.stream) {
                Ok((0, _)) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok((_, short)) => {
                    progress = true;
                    if short && !self.peer_closed {
                        self.readable = false;
                    }
                    if let Err(e) = tls.process_new_packets() {
                        let _ = tls.write_tls(&mut self.stream);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                    tls::flush(tls, &mut self.stream, &mut self.writable)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(progress)
    }

    /// A TLS handshake that finished and was not yet checked against the data-connection
    /// reuse rule: whether it resumed a session. Marks it checked (each handshake is checked
    /// once).
    pub fn finished_unchecked_handshake(&mut self) -> Option<bool> {
        let tls = self.tls.as_ref()?;
        if self.tls_checked || tls.is_handshaking() {
            return None;
        }
        self.tls_checked = true;
        Some(tls::resumed(tls))
    }

    /// Ends the write side: close_notify first under TLS. Ok(true) once everything left.
    pub fn finish_writes(&mut self) -> io::Result<bool> {
        if let Some(tls) = self.tls.as_mut() {
            if !self.closing_tls {
                tls.send_close_notify();
                self.closing_tls = true;
            }
            tls::flush(tls, &mut self.stream, &mut self.writable)?;
            if tls.wants_write() {
                return Ok(false);
            }
        }
        let _ = self.stream.flush();
        let _ = self.stream.shutdown(Shutdown::Write);
        Ok(true)
    }

    /// Completes a non-blocking connect (mio's protocol: writable, then `take_error`, then
    /// `peer_addr`). Returns `Some(Ok)` when connected, `Some(Err)` on failure, `None` while
    /// still in progress.
    pub fn finish_connect(&mut self) -> Option<io::Result<()>> {
        if !self.connecting {
            return None;
        }
        let done = sockets::finish_connect(&self.stream, &mut self.writable);
        if matches!(done, Some(Ok(()))) {
            self.connecting = false;
        }
        done
    }
}

/// Writes as much of `out` as the socket takes. Ok(true) when something was written.
pub fn flush(conn: &mut Conn, out: &mut Vec<u8>) -> io::Result<bool> {
    if conn.connecting {
        return Ok(false);
    }
    let mut progress = conn.flush_tls()?;
    while !out.is_empty() {
        let n = conn.write_from(out)?;
        if n == 0 {
            break;
        }
        out.drain(..n);
        progress = true;
    }
    if out.is_empty() && out.capacity() > 4096 {
        *out = Vec::new();
    }
    Ok(progress)
}

/// What a read brought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// This many bytes of plaintext.
    Data(usize),
    /// The peer ended the stream: cleanly (TCP FIN in plain text; TLS close_notify), or, under
    /// TLS, with a bare TCP close that anyone on the path could have forged (truncation).
    Eof(Ending),
    /// Nothing more now (the readiness flag is cleared).
    Blocked,
}

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Clean,
    /// TLS without close_notify: the data may have been cut short by someone on the path.
    Truncated,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Clean => "clean",
            Ending::Truncated => "truncated",
        }
    }
}

/// Reads plaintext from `conn` (through TLS when it is on).
pub fn read_some(conn: &mut Conn, chunk: &mut [u8]) -> io::Result<ReadStep> {
    conn.read_into(chunk)
}

/// A short read leaves the socket marked not readable (see [`Conn::peer_closed`]): with
/// edge-triggered epoll every arrival after the read is an event, and the state at
/// registration is reported too, so the `EAGAIN` read after it would only cost a system
/// call (two per relayed command and reply).
fn read_plain(conn: &mut Conn, chunk: &mut [u8]) -> io::Result<ReadStep> {
    loop {
        match conn.stream.read(chunk) {
            Ok(0) => return Ok(ReadStep::Eof(Ending::Clean)),
            Ok(n) => {
                if n < chunk.len() && !conn.peer_closed {
                    conn.readable = false;
                }
                return Ok(ReadStep::Data(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.readable = false;
                return Ok(ReadStep::Blocked);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// A connected pair: the far end (std, blocking) and a Conn over the near end.
    fn pair() -> (std::net::TcpStream, Conn) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let far =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (near, _) = listener.accept().expect("accept");
        near.set_nonblocking(true).expect("nonblocking");
        (far, Conn::new(TcpStream::from_std(near), false))
    }

    /// Reads until `want` bytes came (the far end's write may arrive in pieces), bounded.
    fn read_exactly(conn: &mut Conn, chunk: &mut [u8], want: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = 0;
        while got < want && Instant::now() < deadline {
            conn.readable = true;
            if let Ok(ReadStep::Data(n)) = read_plain(conn, chunk) {
                got += n;
            }
        }
        got
    }

    #[test]
    fn a_short_read_marks_the_socket_drained_unless_the_end_was_announced() {
        let (mut far, mut conn) = pair();
        let mut chunk = [0u8; 64];
        far.write_all(b"NOOP\r\n").expect("write");
        assert_eq!(read_exactly(&mut conn, &mut chunk, 6), 6);
        assert!(!conn.readable, "a short read needs no EAGAIN read after it");
        // A full chunk may leave more in the socket: the socket stays readable.
        far.write_all(&[b'x'; 64]).expect("write");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut full = false;
        while !full && Instant::now() < deadline {
            conn.readable = true;
            full = matches!(read_plain(&mut conn, &mut chunk), Ok(ReadStep::Data(64)));
        }
        assert!(full && conn.readable);
        // Once an event announced the peer's end, a short read keeps reading to the end.
        conn.peer_closed = true;
        far.write_all(b"QUIT\r\n").expect("write");
        drop(far);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut data = 0;
        let mut ended = false;
        while !ended && Instant::now() < deadline {
            match read_plain(&mut conn, &mut chunk) {
                Ok(ReadStep::Data(n)) => {
                    data += n;
                    assert!(conn.readable, "reads go on after the peer's end came");
                }
                Ok(ReadStep::Eof(_)) => ended = true,
                Ok(ReadStep::Blocked) => conn.readable = true,
                Err(e) => panic!("read: {e}"),
            }
        }
        assert!(ended && data == 6, "{data} bytes, end read: {ended}");
    }
}
