//! The worker's admin socket (`worker-<index>.sock` in the admin directory; see
//! [`crate::admin`] for the protocol): at most [`MAX_ADMIN_CONNECTIONS`] connections, each
//! with [`ADMIN_TIMEOUT_MS`] to send one request line of at most
//! [`MAX_ADMIN_REQUEST_BYTES`] and read its reply (at most [`MAX_ADMIN_REPLY_BYTES`]). The
//! requests themselves are answered by the worker (`answer_admin`), which owns the sessions.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};

use super::*;
use crate::admin::{Reply, Request, RequestError};
use crate::limits::{
    ADMIN_TIMEOUT_MS, MAX_ADMIN_CONNECTIONS, MAX_ADMIN_REPLY_BYTES, MAX_ADMIN_REQUEST_BYTES,
};

/// Tokens of the admin socket: its listener, then one per connection.
pub(super) const TOKENS: usize = 1 + MAX_ADMIN_CONNECTIONS;

struct Conn {
    stream: UnixStream,
    request: Vec<u8>,
    /// The reply, once the worker gave it, and how much of it has left.
    reply: Option<(Vec<u8>, usize)>,
    /// A request line is complete and waits for the worker's answer.
    asked: bool,
    deadline: Instant,
    ready: bool,
}

pub(super) struct AdminServer {
    listener: Option<UnixListener>,
    path: Option<PathBuf>,
    conns: Vec<Option<Conn>>,
    listener_ready: bool,
    base: usize,
    /// `ftpgate drain`: new connections get 421 until `ftpgate resume`.
    pub(super) draining: bool,
}

/// Where the admin socket goes and whether `--admin` named it (a default directory that
/// does not exist only means no admin socket; a named one that fails is worth a warning).
#[derive(Clone, Debug)]
pub struct AdminConfig {
    pub dir: PathBuf,
    pub explicit: bool,
}

impl AdminServer {
    pub(super) fn none(base: usize) -> AdminServer {
        AdminServer {
            listener: None,
            path: None,
            conns: (0..MAX_ADMIN_CONNECTIONS).map(|_| None).collect(),
            listener_ready: false,
            base,
            draining: false,
        }
    }

    /// Binds worker `index`'s socket in `config.dir`. A failure leaves the worker without
    /// an admin socket (logged), never without its sessions.
    pub(super) fn open(
        config: Option<&AdminConfig>,
        index: usize,
        registry: &mio::Registry,
        base: usize,
    ) -> AdminServer {
        let mut server = AdminServer::none(base);
        let Some(config) = config else {
            return server;
        };
        if !config.explicit && !config.dir.is_dir() {
            log::debug!(
                "no admin socket: {} does not exist (--admin)",
                config.dir.display()
            );
            return server;
        }
        let path = config.dir.join(crate::admin::socket_name(index));
        match bind(&config.dir, &path) {
            Ok(mut listener) => {
                if let Err(e) = registry.register(&mut listener, Token(base), Interest::READABLE) {
                    log::warn!("no admin socket: {e}");
                    return server;
                }
                log::debug!("admin socket {}", path.display());
                server.listener = Some(listener);
                server.path = Some(path);
                server.listener_ready = true;
            }
            Err(e) => log::warn!("no admin socket at {}: {e}", path.display()),
        }
        server
    }

    pub(super) fn owns(&self, token: Token) -> bool {
        token.0 >= self.base && token.0 < self.base + TOKENS
    }

    pub(super) fn on_ready(&mut self, token: Token) {
        match token.0 - self.base {
            0 => self.listener_ready = true,
            i => {
                if let Some(Some(conn)) = self.conns.get_mut(i - 1) {
                    conn.ready = true;
                }
            }
        }
    }

    /// Accepts and reads: the connections whose request line is complete, with it.
    pub(super) fn requests(
        &mut self,
        now: Instant,
        registry: &mio::Registry,
    ) -> Vec<(usize, Result<Request, RequestError>)> {
        self.accept(now, registry);
        let mut out = Vec::new();
        for (i, slot) in self.conns.iter_mut().enumerate() {
            let Some(conn) = slot.as_mut() else { continue };
            if !conn.ready || conn.asked || conn.reply.is_some() {
                continue;
            }
            conn.ready = false;
            match read_line(conn) {
                Ok(Some(line)) => {
                    conn.asked = true;
                    out.push((i, Request::parse(&line)));
                }
                Ok(None) => {}
                Err(()) => close(slot, registry),
            }
        }
        out
    }

    fn accept(&mut self, now: Instant, registry: &mio::Registry) {
        let Some(listener) = self.listener.as_ref() else {
            return;
        };
        if !self.listener_ready {
            return;
        }
        // Bounded: the slots, plus the connections closed at once for want of one.
        for _ in 0..2 * MAX_ADMIN_CONNECTIONS {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let Some(i) = self.conns.iter().position(Option::is_none) else {
                        // Every slot busy: closed at once (the command line reports it).
                        drop(stream);
                        continue;
                    };
                    let token = Token(self.base + 1 + i);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if registry.register(&mut stream, token, interest).is_err() {
                        continue;
                    }
                    self.conns[i] = Some(Conn {
                        stream,
                        request: Vec::new(),
                        reply: None,
                        asked: false,
                        deadline: now + Duration::from_millis(ADMIN_TIMEOUT_MS),
                        ready: true,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.listener_ready = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("admin socket: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// The worker's reply to connection `i`'s request.
    pub(super) fn answer(&mut self, i: usize, reply: Reply) {
        if let Some(Some(conn)) = self.conns.get_mut(i) {
            conn.reply = Some((reply.encode(MAX_ADMIN_REPLY_BYTES), 0));
            conn.ready = true;
        }
    }

    /// Writes the replies, closes the connections that are done or out of time.
    pub(super) fn flush(&mut self, now: Instant, registry: &mio::Registry) {
        for slot in self.conns.iter_mut() {
            let Some(conn) = slot.as_mut() else { continue };
            if now >= conn.deadline {
                close(slot, registry);
                continue;
            }
            let Some((reply, written)) = conn.reply.as_mut() else {
                continue;
            };
            if !conn.ready {
                continue;
            }
            conn.ready = false;
            if write_out(&mut conn.stream, reply, written) {
                close(slot, registry);
            }
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().flatten().map(|c| c.deadline).min()
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `out` from `*written` on as far as the socket takes it; true once it is all out
/// or the peer is gone (nothing more to do), false when the socket is full.
pub(super) fn write_out(stream: &mut impl Write, out: &[u8], written: &mut usize) -> bool {
    loop {
        match stream.write(out.get(*written..).unwrap_or(&[])) {
            Ok(0) => return true,
            Ok(n) => {
                *written += n;
                if *written >= out.len() {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

fn close(slot: &mut Option<Conn>, registry: &mio::Registry) {
    if let Some(mut conn) = slot.take() {
        let _ = registry.deregister(&mut conn.stream);
    }
}

/// Reads what is there: Ok(Some(line)) once a line (or the whole request, at end of file)
/// is in, Ok(None) for more later, Err to close (nothing sent, or a read error).
fn read_line(conn: &mut Conn) -> Result<Option<Vec<u8>>, ()> {
    let mut buf = [0u8; 256];
    loop {
        if let Some(end) = conn.request.iter().position(|&b| b == b'\n') {
            conn.request.truncate(end);
            return Ok(Some(std::mem::take(&mut conn.request)));
        }
        if conn.request.len() > MAX_ADMIN_REQUEST_BYTES {
            // Parsed as too long: the reply says so.
            return Ok(Some(std::mem::take(&mut conn.request)));
        }
        match conn.stream.read(&mut buf) {
            Ok(0) if conn.request.is_empty() => return Err(()),
            Ok(0) => return Ok(Some(std::mem::take(&mut conn.request))),
            Ok(n) => conn.request.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}

/// Binds the socket at `path` (0600), in `dir` (created 0700 when missing). A socket file
/// left by a worker that died is replaced; one a live process answers on is not.
fn bind(dir: &Path, path: &Path) -> io::Result<UnixListener> {
    if !dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        // The other workers start at the same moment: one of them creates it.
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            other => other?,
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another ftpgate answers on it",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

impl Worker {
    /// Serves the admin socket once per turn: reads requests, answers them, writes.
    pub(super) fn admin_turn(&mut self, now: Instant, touched: &mut Vec<usize>) {
        let requests = self.admin.requests(now, self.poll.registry());
        for (i, request) in requests {
            let reply = match request {
                Ok(request) => self.answer_admin(&request, now, touched),
                Err(e) => Reply {
                    worker: self.index,
                    error: Some(e.to_string()),
                    ..Reply::default()
                },
            };
            self.admin.answer(i, reply);
        }
        self.admin.flush(now, self.poll.registry());
    }

    /// This worker's metrics samples, with its gauges read now.
    pub(super) fn metrics_samples(&self) -> Vec<crate::metrics::Sample> {
        let gauges = crate::metrics::Gauges {
            sessions: self
                .slots
                .iter()
                .filter_map(|s| s.session.as_ref())
                .map(|s| s.metric_labels())
                .collect(),
            passive_in_use: self.services.passive.in_use(),
            passive_total: self.services.passive.size(),
            passive_exhausted: self.services.passive.exhausted(),
            audit_lost: self.services.audit.lost(),
            draining: self.admin.draining,
        };
        self.services.metrics.snapshot(&gauges)
    }

    fn answer_admin(&mut self, request: &Request, now: Instant, touched: &mut Vec<usize>) -> Reply {
        let mut reply = Reply {
            worker: self.index,
            ..Reply::default()
        };
        match request {
            Request::Sessions => {
                let sessions = self
                    .slots
                    .iter()
                    .filter_map(|s| s.session.as_ref())
                    .map(|s| s.info(self.index, now))
                    .collect();
                reply.sessions = Some(sessions);
            }
            Request::Kill(_) | Request::KillUser(_) => {
                let mut killed = 0;
                for slot in 0..self.slots.len() {
                    let Some(session) = self.slots[slot].session.as_mut() else {
                        continue;
                    };
                    let hit = match request {
                        Request::Kill(id) => session.id() == id,
                        Request::KillUser(user) => session.user_name() == Some(user.as_str()),
                        _ => false,
                    };
                    if !hit {
                        continue;
                    }
                    let mut ctx = self.services.ctx(self.poll.registry(), now);
                    session.kill(&mut ctx);
                    touched.push(slot);
                    killed += 1;
                    log::info!(
                        "worker {}: session {} killed by an operator",
                        self.index,
                        session.id()
                    );
                }
                reply.killed = Some(killed);
            }
            Request::Metrics => reply.metrics = Some(self.metrics_samples()),
            Request::Drain => {
                if !self.admin.draining {
                    log::info!(
                        "worker {}: draining (ftpgate drain): new connections get 421",
                        self.index
                    );
                }
                self.admin.draining = true;
            }
            Request::Resume => {
                if self.admin.draining {
                    log::info!(
                        "worker {}: taking new sessions again (ftpgate resume)",
                        self.index
                    );
                }
                self.admin.draining = false;
            }
        }
        reply.draining = self.admin.draining;
        reply
    }
}
