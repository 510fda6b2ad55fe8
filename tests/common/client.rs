//! The raw control-channel client: exact bytes out, parsed replies in.

#![allow(unused_imports)]

use super::*;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// One FTP reply: its code and its full text (all lines, joined with '\n', codes included).
pub type Reply = (u16, String);

/// A raw FTP control connection over std TCP with read timeouts: exact bytes out, parsed
/// (multi-line aware) replies in.
pub struct Ftp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// The greeting read by [`Ftp::connect`].
    pub greeting: Reply,
}

const MAX_REPLY_LINE: u64 = 64 * 1024;

impl Ftp {
    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> Ftp {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        Ftp {
            stream,
            reader,
            greeting: (0, String::new()),
        }
    }

    /// Connects and reads the greeting, which must be 220.
    /// Like [`connect_raw`](Self::connect_raw), from the local address `source` (another
    /// loopback address, e.g. 127.0.0.2), without reading the greeting.
    pub fn connect_raw_from(addr: SocketAddr, source: IpAddr) -> Ftp {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .unwrap_or_else(|e| panic!("bind {source}: {e}"));
        socket
            .connect_timeout(&addr.into(), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr} from {source}: {e}"));
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        Ftp {
            stream,
            reader,
            greeting: (0, String::new()),
        }
    }

    pub fn connect(addr: SocketAddr) -> Ftp {
        let mut c = Ftp::connect_raw(addr);
        c.greeting = c.read_reply();
        assert_eq!(c.greeting.0, 220, "greeting: {}", c.greeting.1);
        c
    }

    /// A second handle on the control connection, for a writer thread.
    pub fn try_clone_stream(&self) -> TcpStream {
        self.stream.try_clone().expect("clone control stream")
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.stream.peer_addr().expect("peer addr")
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("timeout");
    }

    /// Writes exactly `bytes` in one write call.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .expect("send on control connection");
    }

    /// Writes exactly `bytes`, reporting errors (the peer may already have closed).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// One line without its CRLF; `Ok(None)` at EOF.
    pub fn try_read_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// The next reply; `Ok(None)` if the connection closed before one started.
    pub fn try_read_reply(&mut self) -> io::Result<Option<Reply>> {
        let Some(first) = self.try_read_line()? else {
            return Ok(None);
        };
        let code: u16 = first
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not a reply line: {first:?}")))?;
        let mut text = first.clone();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let line = self.try_read_line()?.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("EOF inside multi-line reply: {text}"),
                    )
                })?;
                text.push('\n');
                text.push_str(&line);
                if line.starts_with(&end) || line == code.to_string() {
                    break;
                }
            }
        }
        Ok(Some((code, text)))
    }

    /// The next reply. Panics on timeout, EOF or garbage.
    pub fn read_reply(&mut self) -> Reply {
        match self.try_read_reply() {
            Ok(Some(reply)) => reply,
            Ok(None) => panic!("control connection closed while waiting for a reply"),
            Err(e) => panic!("no reply: {e}"),
        }
    }

    /// Sends `line` + CRLF and reads the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    /// USER, then PASS if asked for one (vsftpd's anonymous answers 230 to USER directly).
    /// Returns the last reply.
    pub fn login(&mut self, user: &str, pass: &str) -> Reply {
        let reply = self.cmd(&format!("USER {user}"));
        if reply.0 == 331 {
            self.cmd(&format!("PASS {pass}"))
        } else {
            reply
        }
    }

    /// Login that must succeed (230).
    pub fn login_ok(&mut self, user: &str, pass: &str) {
        let (code, text) = self.login(user, pass);
        assert_eq!(code, 230, "login as {user}: {text}");
    }

    /// PASV, then a data connection to the address in the 227 reply.
    pub fn pasv_connect(&mut self) -> TcpStream {
        let (code, text) = self.cmd("PASV");
        assert_eq!(code, 227, "PASV: {text}");
        let addr = parse_227(&text).unwrap_or_else(|| panic!("cannot parse 227: {text}"));
        data_connect(addr)
    }

    /// EPSV, then a data connection to the control peer's address and the port in the 229.
    pub fn epsv_connect(&mut self) -> TcpStream {
        let (code, text) = self.cmd("EPSV");
        assert_eq!(code, 229, "EPSV: {text}");
        let port = parse_229(&text).unwrap_or_else(|| panic!("cannot parse 229: {text}"));
        data_connect(SocketAddr::new(self.peer_addr().ip(), port))
    }

    /// Listens on 127.0.0.1:0 and sends PORT for it (must get 200).
    pub fn port_listen(&mut self) -> TcpListener {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind data listener");
        let port = listener.local_addr().expect("addr").port();
        let (code, text) = self.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff));
        assert_eq!(code, 200, "PORT: {text}");
        listener
    }

    /// A download-type command (RETR, LIST, NLST, MLSD) over PASV: returns the final reply
    /// code and the bytes received. Panics unless the preliminary reply is 125/150.
    pub fn transfer_in(&mut self, line: &str) -> (u16, Vec<u8>) {
        let mut data = self.pasv_connect();
        let (code, text) = self.cmd(line);
        assert!(matches!(code, 125 | 150), "{line}: {text}");
        let mut buf = Vec::new();
        data.read_to_end(&mut buf).expect("read data connection");
        drop(data);
        let (code, _) = self.read_reply();
        (code, buf)
    }

    /// An upload-type command (STOR, APPE) over PASV: returns the final reply code.
    /// An upload the far end cuts off (a size limit closes the data connection with
    /// bytes unread, so the kernel answers the rest with a reset) is not a client error:
    /// the reply on the control connection says what happened, and callers assert it.
    pub fn transfer_out(&mut self, line: &str, data: &[u8]) -> u16 {
        let mut conn = self.pasv_connect();
        let (code, text) = self.cmd(line);
        assert!(matches!(code, 125 | 150), "{line}: {text}");
        if let Err(e) = conn.write_all(data) {
            assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ),
                "write data connection: {e}"
            );
        }
        drop(conn);
        self.read_reply().0
    }

    /// RETR over PASV; panics unless it ends with 226.
    pub fn retr(&mut self, path: &str) -> Vec<u8> {
        let (code, data) = self.transfer_in(&format!("RETR {path}"));
        assert_eq!(code, 226, "RETR {path}");
        data
    }

    /// STOR over PASV; panics unless it ends with 226.
    pub fn stor(&mut self, path: &str, data: &[u8]) {
        assert_eq!(
            self.transfer_out(&format!("STOR {path}"), data),
            226,
            "STOR {path}"
        );
    }

    /// A listing command (e.g. "LIST /pub", "NLST") over PASV: final code and the listing.
    pub fn list(&mut self, line: &str) -> (u16, String) {
        let (code, data) = self.transfer_in(line);
        (code, String::from_utf8_lossy(&data).into_owned())
    }

    /// Reads until the server closes the connection; returns what came. Panics after `timeout`.
    pub fn read_to_eof(&mut self, timeout: Duration) -> String {
        self.set_read_timeout(timeout);
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("connection not closed within {timeout:?}: {e}"),
        }
        String::from_utf8_lossy(&rest).into_owned()
    }
}

fn data_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("data connection to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// Accepts one connection on `listener` within `timeout`.
pub fn accept_within(listener: &TcpListener, timeout: Duration) -> TcpStream {
    listener.set_nonblocking(true).expect("nonblocking");
    let mut conn = None;
    let ok = wait_until(timeout, || match listener.accept() {
        Ok((s, _)) => {
            conn = Some(s);
            true
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    });
    assert!(ok, "no connection within {timeout:?}");
    let s = conn.expect("accepted");
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// The address in a 227 reply: "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)".
pub fn parse_227(text: &str) -> Option<SocketAddr> {
    let start = text.find('(')? + 1;
    let end = start + text[start..].find(')')?;
    let n: Vec<u8> = text[start..end]
        .split(',')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    if n.len() != 6 {
        return None;
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Some(SocketAddr::from((
        ip,
        u16::from(n[4]) << 8 | u16::from(n[5]),
    )))
}

/// The port in a 229 reply: "229 Entering Extended Passive Mode (|||port|)".
pub fn parse_229(text: &str) -> Option<u16> {
    let start = text.find("(|||")? + 4;
    let end = start + text[start..].find('|')?;
    text[start..end].parse().ok()
}

// ---------------------------------------------------------------------------------------------
// External clients
// ---------------------------------------------------------------------------------------------

/// curl with `-sS --max-time 120` and `args` (add `-v` to see the protocol on stderr).
pub fn curl(args: &[&str]) -> Output {
    run(
        Command::new("curl")
            .args(["-sS", "--max-time", "120"])
            .args(args),
        CLIENT_TIMEOUT,
    )
}

/// The commands curl sent, from its `-v` output (lines "> VERB ...").
pub fn curl_sent(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(str::to_string)
        .collect()
}

/// True when one of `sent` has the verb `verb`.
pub fn sent_verb(sent: &[String], verb: &str) -> bool {
    sent.iter().any(|c| {
        c.split(' ')
            .next()
            .is_some_and(|v| v.eq_ignore_ascii_case(verb))
    })
}

/// /usr/bin/python3 (which has pyftpdlib; `python3` on PATH may not) running `script`.
pub fn python(script: &str, args: &[&str]) -> Output {
    run(
        Command::new(PYTHON).arg("-c").arg(script).args(args),
        CLIENT_TIMEOUT,
    )
}

/// Python that defines `Reusing`, an `ftplib.FTP_TLS` whose protected data connections
/// resume the control connection's TLS session (stock FTP_TLS does not; see TESTING.md), and
/// `ctx`, a client context that trusts the test certificate. Scripts start with it.
pub const PY_FTPS_REUSING: &str = r#"import ftplib, ssl
class Reusing(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
"#;

/// A Python ftplib transfer. argv: host port user password mode(pasv|port) action(put|get)
/// remote local. With debuglevel 1, ftplib prints every command it sends as `*cmd* '...'`.
pub const FTPLIB_TRANSFER: &str = r#"
import ftplib, sys
host, port, user, password, mode, action, remote, local = sys.argv[1:9]
f = ftplib.FTP()
f.set_debuglevel(1)
f.connect(host, int(port), timeout=30)
f.login(user, password)
f.set_pasv(mode == "pasv")
if action == "put":
    with open(local, "rb") as fh:
        print(f.storbinary("STOR " + remote, fh))
else:
    with open(local, "wb") as fh:
        print(f.retrbinary("RETR " + remote, fh.write))
print(f.quit())
"#;

/// Runs [`FTPLIB_TRANSFER`].
#[allow(clippy::too_many_arguments)]
pub fn ftplib_transfer(
    addr: SocketAddr,
    user: &str,
    password: &str,
    passive: bool,
    upload: bool,
    remote: &str,
    local: &Path,
) -> Output {
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let local = local.to_string_lossy();
    python(
        FTPLIB_TRANSFER,
        &[
            &host,
            &port,
            user,
            password,
            if passive { "pasv" } else { "port" },
            if upload { "put" } else { "get" },
            remote,
            &local,
        ],
    )
}

/// The commands ftplib sent, from its debuglevel-1 output (lines "*cmd* '...'").
pub fn ftplib_sent(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("*cmd* '"))
        .map(|c| c.strip_suffix('\'').unwrap_or(c).to_string())
        .collect()
}

/// `lftp -d -c` with bounded retries and timeouts, stopping at the first failed command,
/// then `commands`. With -d, lftp logs every command it sends on stderr as `---> VERB ...`.
pub fn lftp(commands: &str) -> Output {
    let script = format!(
        "set net:max-retries 1; set net:timeout 10; set net:reconnect-interval-base 1; \
         set cmd:fail-exit yes; set xfer:clobber yes; {commands}"
    );
    run(
        Command::new("lftp").arg("-d").arg("-c").arg(script),
        CLIENT_TIMEOUT,
    )
}

/// The commands lftp sent, from its -d output.
pub fn lftp_sent(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("---> "))
        .map(str::to_string)
        .collect()
}

/// argv: host port. The SHA-256 of the DER certificate an implicit-FTPS listener presents to
/// Python's default TLS client.
pub const PEER_CERT: &str = r#"
import hashlib, socket, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10))
print(hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest())
"#;
