//! The metrics on a loopback HTTP port (`metrics.listen`), for a Prometheus that scrapes
//! the gateway. Worker 0 alone listens; on `GET /metrics` it asks the other workers for
//! their samples over their admin sockets (non-blocking, like everything in the loop, for at
//! most [`METRICS_GATHER_TIMEOUT_MS`]), adds them to its own and answers. A worker that does
//! not answer in time is left out and counted in `ftpgate_metrics_workers_missing`.
//!
//! One scrape at a time (Prometheus scrapes a target serially); a connection that comes
//! while one is served gets 503 at once. A request is read up to
//! [`MAX_METRICS_REQUEST_BYTES`] and within [`METRICS_GATHER_TIMEOUT_MS`] too.

use std::io::{Read, Write};
use std::path::PathBuf;

use mio::net::UnixStream;

use super::*;
use crate::admin::Reply;
use crate::limits::{MAX_METRICS_REQUEST_BYTES, MAX_WORKERS, METRICS_GATHER_TIMEOUT_MS};
use crate::metrics::Sample;

/// Tokens: the listener, the scrape's connection, one per other worker.
pub(super) const TOKENS: usize = 2 + MAX_WORKERS;

/// A question to another worker's admin socket.
struct Peer {
    stream: UnixStream,
    request: &'static [u8],
    sent: usize,
    reply: Vec<u8>,
    done: bool,
}

enum Stage {
    Reading(Vec<u8>),
    Gathering { peers: Vec<Peer> },
    Writing { out: Vec<u8>, written: usize },
}

struct Scrape {
    stream: TcpStream,
    stage: Stage,
    deadline: Instant,
}

pub(super) struct MetricsHttp {
    listener: Option<TcpListener>,
    listener_ready: bool,
    scrape: Option<Scrape>,
    base: usize,
    /// Where the other workers' admin sockets are.
    admin_dir: Option<PathBuf>,
    workers: usize,
}

use mio::net::TcpStream;

impl MetricsHttp {
    pub(super) fn none(base: usize) -> MetricsHttp {
        MetricsHttp {
            listener: None,
            listener_ready: false,
            scrape: None,
            base,
            admin_dir: None,
            workers: 1,
        }
    }

    /// Worker 0 binds `listen` (which must be a loopback address); the other workers serve
    /// no HTTP. A failure is logged and leaves the gateway without the HTTP port.
    pub(super) fn open(
        listen: Option<SocketAddr>,
        index: usize,
        workers: usize,
        admin_dir: Option<PathBuf>,
        registry: &mio::Registry,
        base: usize,
    ) -> MetricsHttp {
        let mut http = MetricsHttp::none(base);
        let Some(listen) = listen else {
            return http;
        };
        if index != 0 {
            return http;
        }
        if !listen.ip().is_loopback() {
            log::error!("metrics.listen {listen}: not a loopback address; no metrics port");
            return http;
        }
        match TcpListener::bind(listen) {
            Ok(mut listener) => {
                if let Err(e) = registry.register(&mut listener, Token(base), Interest::READABLE) {
                    log::error!("metrics port {listen}: {e}");
                    return http;
                }
                log::info!("metrics on http://{listen}/metrics");
                http.listener = Some(listener);
                http.listener_ready = true;
                http.admin_dir = admin_dir;
                http.workers = workers.clamp(1, MAX_WORKERS);
            }
            Err(e) => log::error!("cannot serve metrics on {listen}: {e}"),
        }
        http
    }

    pub(super) fn owns(&self, token: Token) -> bool {
        token.0 >= self.base && token.0 < self.base + TOKENS
    }

    pub(super) fn on_ready(&mut self, token: Token) {
        if token.0 == self.base {
            self.listener_ready = true;
        }
        // The scrape and its peers are tried every turn they exist (a few sockets).
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.scrape.as_ref().map(|s| s.deadline)
    }

    fn accept(&mut self, now: Instant, registry: &mio::Registry) {
        if !self.listener_ready {
            return;
        }
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        for _ in 0..8 {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    if self.scrape.is_some() {
                        let _ = stream.write(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                        continue;
                    }
                    let token = Token(self.base + 1);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if registry.register(&mut stream, token, interest).is_err() {
                        continue;
                    }
                    self.scrape = Some(Scrape {
                        stream,
                        stage: Stage::Reading(Vec::new()),
                        deadline: now + Duration::from_millis(METRICS_GATHER_TIMEOUT_MS),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.listener_ready = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn close(&mut self, registry: &mio::Registry) {
        if let Some(mut scrape) = self.scrape.take() {
            let _ = registry.deregister(&mut scrape.stream);
            if let Stage::Gathering { peers } = &mut scrape.stage {
                for p in peers {
                    let _ = registry.deregister(&mut p.stream);
                }
            }
        }
    }
}

/// What the request asks: Ok for `GET /metrics`, or the status line to answer with.
fn route(head: &[u8]) -> Result<(), &'static str> {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(b"");
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or(b"");
    let target = parts.next().unwrap_or(b"");
    if method != b"GET" && method != b"HEAD" {
        return Err("405 Method Not Allowed");
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
    if path != b"/metrics" {
        return Err("404 Not Found");
    }
    Ok(())
}

fn response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads what is there; Err when the peer is gone or the read failed.
fn read_some(stream: &mut impl Read, into: &mut Vec<u8>, max: usize) -> Result<bool, ()> {
    let mut buf = [0u8; 4096];
    loop {
        if into.len() > max {
            return Ok(true);
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}

impl Worker {
    /// Serves the metrics port once per turn.
    pub(super) fn metrics_turn(&mut self, now: Instant) {
        self.metrics_http.accept(now, self.poll.registry());
        let Some(mut scrape) = self.metrics_http.scrape.take() else {
            return;
        };
        if self.scrape_step(&mut scrape, now) {
            self.metrics_http.scrape = Some(scrape);
        } else {
            self.metrics_http.scrape = Some(scrape);
            self.metrics_http.close(self.poll.registry());
        }
    }

    /// Moves one scrape on; false when it is over (answered, gone or out of time).
    fn scrape_step(&mut self, scrape: &mut Scrape, now: Instant) -> bool {
        let timed_out = now >= scrape.deadline;
        if let Stage::Reading(head) = &mut scrape.stage {
            let Ok(eof) = read_some(&mut scrape.stream, head, MAX_METRICS_REQUEST_BYTES) else {
                return false;
            };
            let complete =
                head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n");
            if head.len() > MAX_METRICS_REQUEST_BYTES {
                scrape.stage = Stage::Writing {
                    out: response("431 Request Header Fields Too Large", ""),
                    written: 0,
                };
            } else if complete {
                scrape.stage = match route(head) {
                    Err(status) => Stage::Writing {
                        out: response(status, ""),
                        written: 0,
                    },
                    Ok(()) => Stage::Gathering {
                        peers: self
                            .metrics_http
                            .ask_peers(self.index, self.poll.registry()),
                    },
                };
            } else if eof || timed_out {
                return false;
            }
        }
        if let Stage::Gathering { peers } = &mut scrape.stage {
            for peer in peers.iter_mut().filter(|p| !p.done) {
                peer.done = peer_step(peer);
            }
            if timed_out || peers.iter().all(|p| p.done) {
                let mut workers: Vec<Vec<Sample>> = vec![self.metrics_samples()];
                let mut missing = self.metrics_http.workers.saturating_sub(1 + peers.len());
                for peer in peers.iter_mut() {
                    let _ = self.poll.registry().deregister(&mut peer.stream);
                    match serde_json::from_slice::<Reply>(&peer.reply)
                        .ok()
                        .and_then(|r| r.metrics)
                    {
                        Some(samples) => workers.push(samples),
                        None => missing += 1,
                    }
                }
                let mut samples = crate::metrics::merge(&workers);
                samples.push(Sample {
                    name: "ftpgate_metrics_workers_missing".into(),
                    labels: Vec::new(),
                    value: missing as f64,
                });
                let body = crate::metrics::render(&samples);
                scrape.stage = Stage::Writing {
                    out: response("200 OK", &body),
                    written: 0,
                };
            }
        }
        if let Stage::Writing { out, written } = &mut scrape.stage {
            let done = super::admin::write_out(&mut scrape.stream, out, written);
            // A reader too slow for twice the deadline loses the rest.
            let late = now >= scrape.deadline + Duration::from_millis(METRICS_GATHER_TIMEOUT_MS);
            return !(done || late);
        }
        true
    }
}

impl MetricsHttp {
    /// Connects to every other worker's admin socket and queues the `metrics` request.
    fn ask_peers(&mut self, me: usize, registry: &mio::Registry) -> Vec<Peer> {
        let Some(dir) = self.admin_dir.as_ref() else {
            return Vec::new();
        };
        let mut peers = Vec::new();
        for i in (0..self.workers).filter(|&i| i != me) {
            let path = dir.join(crate::admin::socket_name(i));
            let Ok(mut stream) = UnixStream::connect(&path) else {
                continue;
            };
            let token = Token(self.base + 2 + peers.len());
            let interest = Interest::READABLE | Interest::WRITABLE;
            if registry.register(&mut stream, token, interest).is_err() {
                continue;
            }
            peers.push(Peer {
                stream,
                request: b"metrics\n",
                sent: 0,
                reply: Vec::new(),
                done: false,
            });
        }
        peers
    }
}

/// Sends the request and reads the reply as far as the socket allows; true once done.
fn peer_step(peer: &mut Peer) -> bool {
    while peer.sent < peer.request.len() {
        match peer.stream.write(&peer.request[peer.sent..]) {
            Ok(0) => return true,
            Ok(n) => peer.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    read_some(
        &mut peer.stream,
        &mut peer.reply,
        crate::limits::MAX_ADMIN_REPLY_BYTES,
    )
    .unwrap_or(true)
}
