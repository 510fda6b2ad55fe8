//! How ftpgate reads a TLS socket (`ftpgate::tls::read`), against a real rustls client over
//! loopback: a read of records that comes back short leaves the socket marked not readable,
//! so the read that would only say EAGAIN is never made (edge-triggered epoll reports the
//! next arrival); once the peer's end was announced (`to_end`), reads go on to the end,
//! which no further event would report: the last bytes, close_notify and the FIN that came
//! together are all read without another readiness event.

mod common;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ftpgate::tls::{self, TlsRead, TlsServer};

use common::*;

/// The server's socket, counting the reads that found nothing (EAGAIN).
struct Counted {
    stream: TcpStream,
    would_block: usize,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.stream.read(buf);
        if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.would_block += 1;
        }
        r
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

#[test]
fn a_short_tls_read_needs_no_eagain_read_and_an_announced_end_is_read_to_the_end() {
    let dir = temp_dir();
    let (ca, cert, key) = generate_ca_and_server(dir.path());
    let server = TlsServer::load(&cert, &key).expect("server config");
    // The data connections' configuration: no session tickets, so the client, which never
    // reads after its handshake, closes with nothing unread (no reset).
    let config = server.for_session().expect("session config").data;
    let (ca_certs, _) = tls::load_pem(&ca, &key).expect("pem");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_certs[0].clone()).expect("root");
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (go_on, wait) = mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let conn = rustls::ClientConnection::new(Arc::new(client_config), name).expect("client");
        let sock = TcpStream::connect(addr).expect("connect");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(b"hello\n").expect("write hello");
        tls.flush().expect("flush");
        wait.recv_timeout(Duration::from_secs(15)).expect("go on");
        tls.write_all(b"bye").expect("write bye");
        tls.conn.send_close_notify();
        tls.flush().expect("close_notify");
        let _ = tls.sock.shutdown(std::net::Shutdown::Write);
        // Dropped here: everything is in the server's receive queue when the thread ends.
    });

    let (sock, _) = listener.accept().expect("accept");
    sock.set_nonblocking(true).expect("nonblocking");
    let mut stream = Counted {
        stream: sock,
        would_block: 0,
    };
    let mut conn = tls::accept(&config).expect("server connection");
    let mut out = [0u8; 64];

    // The handshake and "hello": each time the socket has nothing, wait as if for an event.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut readable, mut writable) = (true, true);
    let mut got = Vec::new();
    while got.len() < 6 {
        assert!(Instant::now() < deadline, "no hello after 15 s: {got:?}");
        let before = stream.would_block;
        match tls::read(
            &mut conn,
            &mut stream,
            &mut readable,
            &mut writable,
            false,
            &mut out,
        )
        .expect("read")
        {
            TlsRead::Data(n) => {
                got.extend_from_slice(&out[..n]);
                assert!(
                    !readable,
                    "the short read of the data emptied the socket: it is not readable"
                );
                assert_eq!(
                    stream.would_block, before,
                    "no EAGAIN read on the way to the data"
                );
            }
            TlsRead::Blocked => {
                thread::sleep(Duration::from_millis(5));
                readable = true;
                writable = true;
            }
            other => panic!("{other:?} before the hello"),
        }
    }
    assert_eq!(got, b"hello\n");

    // "bye", close_notify and the FIN arrive together, and the event that reports them says
    // the peer's end came: one readiness, and reads go on until the clean end.
    go_on.send(()).expect("signal");
    client.join().expect("client thread");
    readable = true;
    let mut tail = Vec::new();
    let mut end = None;
    for _ in 0..16 {
        match tls::read(
            &mut conn,
            &mut stream,
            &mut readable,
            &mut writable,
            true,
            &mut out,
        )
        .expect("read")
        {
            TlsRead::Data(n) => {
                tail.extend_from_slice(&out[..n]);
                assert!(
                    readable,
                    "after the announced end the socket stays readable"
                );
            }
            other => {
                end = Some(other);
                break;
            }
        }
    }
    assert_eq!(tail, b"bye");
    assert_eq!(
        end,
        Some(TlsRead::Closed),
        "the clean end was read without a new event"
    );
}
