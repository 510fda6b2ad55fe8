//! TLS for ftpgate: rustls configurations built from the policy's PEM files, and the pump
//! that drives a rustls connection by hand over a non-blocking mio socket.
//!
//! PEM loading lives here and only here (rustls-pki-types' `PemObject`; the unmaintained
//! rustls-pemfile is not used). TLS 1.2 and 1.3 only, with the ring provider. The pump
//! follows the order of the rustls mio examples: `read_tls`, then `process_new_packets`
//! every time, then drain `reader()`; writes go through `writer()` and leave with
//! `write_tls` whenever `wants_write()`. After a protocol error a last `write_tls` sends the
//! alert ("last gasp").

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ResolvesServerCert, ServerSessionMemoryCache};

mod client_sessions;
mod identities;
use identities::Identities;
pub use identities::Remembered;
use rustls::sign::CertifiedKey;
use rustls::{Connection, HandshakeKind, ServerConfig, ServerConnection};

/// The only ALPN protocol ftpgate speaks; a client offering others is refused (ALPACA).
pub const ALPN_FTP: &[u8] = b"ftp";
/// Plaintext rustls may buffer in each direction before the relay stops feeding it.
const TLS_BUFFER_LIMIT: usize = 64 * 1024;
/// Sessions one control connection's cache holds for its data connections to resume.
const SESSION_CACHE_SIZE: usize = 16;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads a certificate chain and a private key from PEM files.
pub fn load_pem(
    certificate: &Path,
    private_key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| format!("{}: {e}", certificate.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", certificate.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in the file",
            certificate.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(private_key)
        .map_err(|e| format!("{}: {e}", private_key.display()))?;
    Ok((certs, key))
}

/// The server side: ftpgate toward clients (explicit AUTH TLS and implicit listeners).
#[derive(Clone)]
pub struct TlsServer {
    base: Arc<ServerConfig>,
    identities: Arc<Identities>,
}

/// Loads one certificate chain and its private key and checks that they match.
pub fn load_identity(certificate: &Path, private_key: &Path) -> Result<Arc<CertifiedKey>, String> {
    let (certs, key) = load_pem(certificate, private_key)?;
    CertifiedKey::from_der(certs, key, &provider())
        .map(Arc::new)
        .map_err(|e| format!("certificate and key: {e}"))
}

impl TlsServer {
    /// Builds the configuration from one certificate and key, checking that they match.
    pub fn load(certificate: &Path, private_key: &Path) -> Result<TlsServer, String> {
        TlsServer::new(vec![load_identity(certificate, private_key)?])
    }

    /// Builds the configuration from certificates in the order of preference: each client
    /// gets the first one it can verify (`identities.rs`).
    pub fn new(identities: Vec<Arc<CertifiedKey>>) -> Result<TlsServer, String> {
        if identities.is_empty() {
            return Err("no certificate".to_owned());
        }
        let identities = Arc::new(Identities::new(identities));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&identities) as Arc<dyn ResolvesServerCert>);
        // SECURITY: ALPACA. A client that offers ALPN must offer "ftp"; rustls refuses the
        // handshake when the offered protocols do not include it.
        config.alpn_protocols = vec![ALPN_FTP.to_vec()];
        Ok(TlsServer {
            base: Arc::new(config),
            identities,
        })
    }

    /// The configurations for one control session: its own session cache, so a data
    /// connection can resume only sessions of this control connection (vsftpd's
    /// require_ssl_reuse), never another client's.
    ///
    /// Tickets are stateless and encrypted under a key made for this session alone: a
    /// client may resume the control session for every data connection (OpenSSL clients
    /// offer the same session each time; single-use stateful tickets would refuse the
    /// second), and a ticket from any other session fails to decrypt and is not resumed.
    pub fn for_session(&self) -> Result<SessionTls, String> {
        let mut control = (*self.base).clone();
        control.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
        control.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| e.to_string())?;
        // The same cache and ticket key (both shared through their `Arc`s), so data
        // connections resume the control session; but no TLS 1.3 tickets of their own. A
        // ticket is a record the server sends after the handshake unasked: a client that
        // only writes on an upload connection (rclone) never reads it, and closing a socket
        // with unread bytes makes the kernel send a TCP reset, which destroys the tail of
        // the upload the client has written but ftpgate has not read yet. Data connections
        // have no use for tickets anyway: they resume with the control connection's.
        let mut data = control.clone();
        data.send_tls13_tickets = 0;
        // Only the control connection's choice is remembered: data connections resume it.
        let certificate = Arc::new(Remembered::new(Arc::clone(&self.identities)));
        control.cert_resolver = Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>;
        Ok(SessionTls {
            control: Arc::new(control),
            data: Arc::new(data),
            certificate,
        })
    }
}

/// One control session's TLS configurations toward its client (see
/// [`TlsServer::for_session`]).
#[derive(Clone)]
pub struct SessionTls {
    /// For the control connection: sends the TLS 1.3 tickets data connections resume with.
    pub control: Arc<ServerConfig>,
    /// For protected data connections: resumes the control session, sends no ticket.
    pub data: Arc<ServerConfig>,
    /// Which certificate the control connection was given.
    pub certificate: Arc<Remembered>,
}

/// A new server-side TLS connection.
pub fn accept(config: &Arc<ServerConfig>) -> io::Result<Box<Connection>> {
    let mut conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
    Ok(Box::new(Connection::Server(conn)))
}

/// Whether a finished handshake resumed an earlier session.
pub fn resumed(conn: &Connection) -> bool {
    conn.handshake_kind() == Some(HandshakeKind::Resumed)
}

/// The outcome of one TLS read.
#[derive(Debug, PartialEq, Eq)]
pub enum TlsRead {
    Data(usize),
    /// The peer sent close_notify: a clean end.
    Closed,
    /// TCP ended without close_notify (possible truncation).
    Truncated,
    /// Nothing more until the socket is readable again.
    Blocked,
}

/// The socket under rustls: remembers whether its last read came back short.
struct Reads<'s, S> {
    stream: &'s mut S,
    short: bool,
}

impl<S: Read> Read for Reads<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// Reads TLS records from `stream` into rustls (one read): how many bytes, and whether the
/// read returned less than rustls had room for. With edge-triggered epoll a short read
/// emptied the socket (every later arrival is an event), so the caller may mark it not
/// readable instead of paying for the read that would only say EAGAIN (about half the
/// reads of a short FTPS session), unless the peer's end was announced: then it reads on
/// to the end, which no further event would report.
pub fn read_records<S: Read>(tls: &mut Connection, stream: &mut S) -> io::Result<(usize, bool)> {
    let mut reads = Reads {
        stream,
        short: false,
    };
    let n = tls.read_tls(&mut reads)?;
    Ok((n, reads.short))
}

/// Reads plaintext into `out`. `readable` is the socket's readiness flag (cleared on
/// WouldBlock, and after a short read unless `to_end`: see [`read_records`]). Handshake
/// messages are processed and answered on the way.
pub fn read<S: Read + Write>(
    tls: &mut Connection,
    stream: &mut S,
    readable: &mut bool,
    writable: &mut bool,
    to_end: bool,
    out: &mut [u8],
) -> io::Result<TlsRead> {
    // Bounded: each turn either returns or consumes socket input.
    for _ in 0..64 {
        match tls.reader().read(out) {
            Ok(0) => return Ok(TlsRead::Closed),
            Ok(n) => return Ok(TlsRead::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(TlsRead::Truncated),
            Err(e) => return Err(e),
        }
        if !*readable {
            flush(tls, stream, writable)?;
            return Ok(TlsRead::Blocked);
        }
        match read_records(tls, stream) {
            Ok((0, _)) => {
                // TCP EOF: let rustls say whether close_notify came first.
                process(tls, stream, writable)?;
                return match tls.reader().read(out) {
                    Ok(0) => Ok(TlsRead::Closed),
                    Ok(n) => Ok(TlsRead::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(TlsRead::Truncated),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(TlsRead::Truncated),
                    Err(e) => Err(e),
                };
            }
            Ok((_, short)) => {
                if short && !to_end {
                    *readable = false;
                }
                process(tls, stream, writable)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // rustls's own plaintext buffer is full: drain reader() first (next turn).
            Err(e) if e.kind() == io::ErrorKind::Other => {}
            Err(e) => return Err(e),
        }
    }
    Ok(TlsRead::Blocked)
}

/// Processes received TLS records; on a protocol error sends the alert (last gasp).
fn process<S: Write>(tls: &mut Connection, stream: &mut S, writable: &mut bool) -> io::Result<()> {
    if let Err(e) = tls.process_new_packets() {
        let _ = tls.write_tls(stream);
        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
    }
    flush(tls, stream, writable)?;
    Ok(())
}

/// Hands plaintext to rustls and flushes what it can. Returns how many bytes rustls took
/// (0 when its buffer is full: wait for the socket to drain).
pub fn write<S: Write>(
    tls: &mut Connection,
    stream: &mut S,
    writable: &mut bool,
    data: &[u8],
) -> io::Result<usize> {
    flush(tls, stream, writable)?;
    let n = tls.writer().write(data)?;
    flush(tls, stream, writable)?;
    Ok(n)
}

/// Writes pending TLS records while the socket takes them. Ok(true) when something went.
pub fn flush<S: Write>(
    tls: &mut Connection,
    stream: &mut S,
    writable: &mut bool,
) -> io::Result<bool> {
    let mut progress = false;
    while tls.wants_write() && *writable {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => progress = true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *writable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(progress)
}

/// Whether rustls still holds records to send.
pub fn has_pending_output(tls: &Connection) -> bool {
    tls.wants_write()
}

/// Where the system's trusted CAs are (Debian's ca-certificates bundle; RHEL's as a fallback).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];
/// TLS sessions one control session keeps for its data connections to resume.
const CLIENT_SESSIONS: usize = 8;

/// The client side: ftpgate toward one backend pool.
#[derive(Clone)]
pub struct TlsClient {
    base: Arc<rustls::ClientConfig>,
    server_name: Option<rustls::pki_types::ServerName<'static>>,
    /// TLS 1.3 tickets the pool's sessions in this worker leave for each other's control
    /// connections (see `client_sessions`); clones share it.
    shared_sessions: Arc<rustls::client::ClientSessionMemoryCache>,
}

impl TlsClient {
    /// Builds the configuration for a backend: CA file (or the system bundle) or a pinned
    /// certificate, and an optional client certificate.
    pub fn load(settings: &crate::policy::BackendTls) -> Result<TlsClient, String> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?;
        let builder = match &settings.pinned_certificate {
            Some(path) => {
                let pinned = CertificateDer::from_pem_file(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                        pinned,
                        algorithms: provider.signature_verification_algorithms,
                    }))
            }
            None => {
                let mut roots = rustls::RootCertStore::empty();
                let bundle = match &settings.ca_file {
                    Some(path) => path.clone(),
                    None => SYSTEM_CA_BUNDLES
                        .iter()
                        .map(std::path::PathBuf::from)
                        .find(|p| p.exists())
                        .ok_or("no ca_file given and no system CA bundle found")?,
                };
                for cert in CertificateDer::pem_file_iter(&bundle)
                    .map_err(|e| format!("{}: {e}", bundle.display()))?
                {
                    let cert = cert.map_err(|e| format!("{}: {e}", bundle.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", bundle.display()))?;
                }
                if roots.is_empty() {
                    return Err(format!(
                        "{}: no CA certificate in the file",
                        bundle.display()
                    ));
                }
                builder.with_root_certificates(roots)
            }
        };
        let config = match (&settings.client_certificate, &settings.client_key) {
            (Some(cert), Some(key)) => {
                let (certs, key) = load_pem(cert, key)?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("client certificate and key: {e}"))?
            }
            _ => builder.with_no_client_auth(),
        };
        let server_name = match &settings.server_name {
            Some(name) => Some(
                rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| format!("server_name {name:?}: {e}"))?,
            ),
            None => None,
        };
        Ok(TlsClient {
            base: Arc::new(config),
            server_name,
            shared_sessions: client_sessions::SessionStore::shared(),
        })
    }

    /// A configuration for one control session: its own session store, so the data
    /// connections resume this control connection's session (vsftpd's
    /// require_ssl_reuse) and never another session's; the control connection may resume
    /// a session an earlier one left (`client_sessions`).
    pub fn for_session(&self) -> Arc<rustls::ClientConfig> {
        let mut config = (*self.base).clone();
        let store =
            client_sessions::SessionStore::new(CLIENT_SESSIONS, Arc::clone(&self.shared_sessions));
        config.resumption = rustls::client::Resumption::store(Arc::new(store));
        Arc::new(config)
    }

    /// The name to verify: the configured one, else the server's IP address.
    pub fn server_name(&self, ip: std::net::IpAddr) -> rustls::pki_types::ServerName<'static> {
        self.server_name
            .clone()
            .unwrap_or(rustls::pki_types::ServerName::IpAddress(ip.into()))
    }
}

/// A new client-side TLS connection toward a backend.
pub fn connect(
    config: &Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
) -> io::Result<Box<Connection>> {
    let mut conn =
        rustls::ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    conn.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
    Ok(Box::new(Connection::Client(conn)))
}

/// Accepts exactly one certificate (pinning): the backend must present this end-entity
/// certificate; no CA is consulted. Handshake signatures are still verified.
#[derive(Debug)]
struct PinnedCertificate {
    pinned: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        // SECURITY: byte-for-byte equality with the pinned certificate.
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What the audit trail records of a finished handshake.
pub struct Summary {
    pub version: String,
    pub cipher: String,
    pub resumed: bool,
    pub alpn: Option<String>,
}

/// The handshake's outcome, once it is done (`None` while it runs).
pub fn summary(conn: &Connection) -> Option<Summary> {
    if conn.is_handshaking() {
        return None;
    }
    let version = conn
        .protocol_version()
        .map_or_else(|| "unknown".to_string(), |v| format!("{v:?}"));
    let cipher = conn
        .negotiated_cipher_suite()
        .map_or_else(|| "unknown".to_string(), |c| format!("{:?}", c.suite()));
    Some(Summary {
        version,
        cipher,
        resumed: resumed(conn),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
    })
}

/// An incremental SHA-256 from the crypto provider rustls brings (ring: the CPU's SHA
/// instructions), for the audit trail's transfer digests. Never a hand-written hash.
pub fn sha256() -> Option<Box<dyn rustls::crypto::hash::Context>> {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    suite.tls13().map(|s| s.common.hash_provider.start())
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that has `left` bytes queued and then nothing (WouldBlock).
    struct Queued {
        left: usize,
        reads: usize,
    }

    impl Read for Queued {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            if self.left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = self.left.min(buf.len());
            buf[..n].fill(0x16);
            self.left -= n;
            Ok(n)
        }
    }

    fn client() -> Connection {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        Connection::Client(rustls::ClientConnection::new(Arc::new(config), name).expect("client"))
    }

    #[test]
    fn a_short_read_of_records_says_the_socket_was_emptied() {
        let mut tls = client();
        let mut socket = Queued { left: 5, reads: 0 };
        assert_eq!(
            read_records(&mut tls, &mut socket).expect("read"),
            (5, true)
        );
        assert_eq!(socket.reads, 1);
        // More queued than rustls has room for in one read: not short, the socket may hold
        // more.
        let mut tls = client();
        let mut socket = Queued {
            left: 1 << 20,
            reads: 0,
        };
        let (n, short) = read_records(&mut tls, &mut socket).expect("read");
        assert!(n > 0 && n < 1 << 20 && !short, "{n} bytes, short {short}");
    }

    #[test]
    fn sha256_matches_the_known_answer() {
        let mut ctx = sha256().expect("sha256");
        ctx.update(b"ab");
        ctx.update(b"c");
        assert_eq!(
            hex(ctx.finish().as_ref()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
