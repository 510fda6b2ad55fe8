//! The data connections' I/O: the active connect to the client, the connect to the
//! backend's data port, a protected connection's TLS handshake, the relay and its close with
//! the measure of what crossed (the passive listener and what is accepted there:
//! `passive_io.rs`). What all of it means is the data machine's (`data/`): this file feeds it
//! what the sockets did and performs its [`Output`]s.

use super::data::{CopyState, DataTimer, Input, Measure, Output, RelayEnd};
use super::splice_relay;
use super::tls_events::count_tls_failure;
use super::*;
use crate::policy::{AuditDigest, TlsSessionReuse};

/// The sockets of the data channel. Which of them exist follows the data machine's state:
/// the listener while it listens, the connections while they are set up, then the relay
/// that owns both.
#[derive(Default)]
pub(super) struct DataSockets {
    pub(super) listener: Option<TcpListener>,
    /// `passive.shared`: the worker's port this session waits on instead (on the control
    /// connection's local address).
    pub(super) shared_port: Option<u16>,
    /// The client's data connection before the relay starts (accepted or connecting).
    pub(super) client: Option<Conn>,
    pub(super) server: Option<Conn>,
    pub(super) relay: Option<Relay>,
    /// Connections to the passive port from a balancer (`passive.proxy_protocol`), waiting
    /// for their PROXY header; at most [`MAX_PENDING_DATA_PROXY_HEADERS`], dropped with the
    /// listener (so held no longer than the data-connect timeout).
    pub(super) proxied: Vec<(TcpStream, SocketAddr)>,
}

fn timer_slot(timer: DataTimer) -> u8 {
    match timer {
        DataTimer::ServerConnect => TIMER_SERVER_DATA_CONNECT,
        DataTimer::CopyResult => TIMER_COPY_RESULT,
    }
}

impl Session {
    /// Feeds `input` to the data machine and performs what it returns. Control events are
    /// queued for the control machine.
    pub(super) fn data_input(&mut self, input: Input, ctx: &mut WorkerCtx<'_>) {
        let outputs = self.data.on(input);
        self.perform_data(outputs, ctx);
    }

    fn perform_data(&mut self, outputs: Vec<Output>, ctx: &mut WorkerCtx<'_>) {
        for output in outputs {
            match output {
                Output::CloseAll => {
                    let _ = self.close_data(ctx);
                }
                Output::OpenListener => self.open_passive(ctx),
                Output::ConnectClient(addr) => self.connect_client_data(addr, ctx),
                Output::DropClient => self.drop_client_data(ctx),
                Output::ConnectServer(port) => self.connect_server_data(port, ctx),
                Output::DropServer => self.drop_server_data(ctx),
                Output::StartRelay {
                    direction,
                    max_bytes,
                } => self.start_relay(direction, max_bytes, ctx),
                Output::FailRelay(side) => self.end_relay(RelayEnd::Failed(side), ctx),
                Output::SetTimer(timer, after) => self.set_deadline(timer_slot(timer), after, ctx),
                Output::CancelTimer(timer) => self.cancel_deadline(timer_slot(timer), ctx),
                Output::Audit(record) => {
                    if let AuditRecord::PolicyViolation {
                        kind: "tls_session_reuse",
                        ..
                    } = &record
                    {
                        log::warn!(
                            "{} data connection did not resume the control TLS session",
                            self.id
                        );
                    }
                    self.audit(ctx, &record)
                }
                Output::Control(event) => {
                    // A data connection that may carry file data: its handshake is
                    // recorded before anything crosses it.
                    self.report_tls(ctx);
                    self.push(event);
                }
            }
        }
    }

    /// The control machine's AbortData (`stop` false) or StopRelay (`stop` true: what
    /// crossed is reported to it).
    pub(super) fn close_data_for_control(&mut self, stop: bool, ctx: &mut WorkerCtx<'_>) {
        let measure = self.close_data(ctx);
        let now = ctx.now;
        self.data_input(Input::Closed { stop, measure, now }, ctx);
    }

    fn connect_server_data(&mut self, port: u16, ctx: &mut WorkerCtx<'_>) {
        self.drop_server_data(ctx);
        let Some(server) = self.server.as_ref() else {
            self.data_input(Input::ServerFailed, ctx);
            return;
        };
        // SECURITY: the backend's data address is its control address with the port it
        // named; the address inside 227/229 is never used.
        let addr = SocketAddr::new(server.addr.ip(), port);
        let connected = match self.server_source {
            Some(source) => sockets::connect_from(source, addr),
            None => TcpStream::connect(addr),
        };
        let mut stream = match connected {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("{} backend data connect to {addr} failed: {e}", self.id);
                self.data_input(Input::ServerFailed, ctx);
                return;
            }
        };
        if ctx
            .registry
            .register(
                &mut stream,
                token(self.slot, self.generation, SocketRole::ServerData),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.data_input(Input::ServerFailed, ctx);
            return;
        }
        let mut conn = Conn::new(stream, true);
        // Toward a TLS backend data connections are protected (PROT P) and resume the
        // control connection's session.
        if let Some((config, client, _)) = self.server_tls.as_ref() {
            match tls::connect(config, client.server_name(addr.ip())) {
                Ok(tls) => conn.tls = Some(tls),
                Err(e) => {
                    log::warn!("{} cannot start data TLS toward {addr}: {e}", self.id);
                    let _ = ctx.registry.deregister(&mut conn.stream);
                    self.data_input(Input::ServerFailed, ctx);
                    return;
                }
            }
        }
        self.sockets.server = Some(conn);
    }

    fn start_relay(
        &mut self,
        direction: Direction,
        max_bytes: Option<u64>,
        ctx: &mut WorkerCtx<'_>,
    ) {
        let (Some(server), Some(client)) = (self.sockets.server.take(), self.sockets.client.take())
        else {
            log::error!("{} relay without both data connections (bug)", self.id);
            self.end_relay(RelayEnd::Failed(Side::Server), ctx);
            return;
        };
        let Some(buffer) = ctx.pool.checkout() else {
            log::warn!("{} relay buffer pool exhausted", self.id);
            for mut conn in [server, client] {
                let _ = ctx.registry.deregister(&mut conn.stream);
            }
            self.end_relay(RelayEnd::Failed(Side::Server), ctx);
            return;
        };
        let limits = self
            .fsm
            .user()
            .and_then(|u| self.policy.user(&u.name))
            .map(|u| (u.name.clone(), u.limits.rate, u.limits.user_rate));
        let digest_on = self.audit_digest() == AuditDigest::Sha256;
        let (session_bucket, user_bucket) = match limits {
            Some((name, rate, user_rate)) => (
                rate.map(|r| TokenBucket::new(r, ctx.now)),
                user_rate.map(|r| {
                    Rc::clone(
                        ctx.user_buckets
                            .entry(name)
                            .or_insert_with(|| Rc::new(RefCell::new(TokenBucket::new(r, ctx.now)))),
                    )
                }),
            ),
            None => (None, None),
        };
        let copy = self.new_copy(ctx);
        let tls = server.tls.is_some() || client.tls.is_some();
        let rate_limited = session_bucket.is_some() || user_bucket.is_some();
        let splice_after = splice_relay::eligible(tls, copy.is_some(), rate_limited)
            .then_some(crate::limits::SPLICE_AFTER_BYTES);
        // Four system calls per transfer, not per byte: the SIEM's data-channel pairs.
        let addresses = crate::audit::DataAddresses {
            data_client: client.stream.peer_addr().ok(),
            data_client_gate: client.stream.local_addr().ok(),
            data_backend_gate: server.stream.local_addr().ok(),
            data_backend: server.stream.peer_addr().ok(),
        };
        self.sockets.relay = Some(Relay {
            direction,
            client,
            server,
            buffer,
            bytes: 0,
            read: 0,
            source_eof: false,
            source_end: None,
            started: ctx.now,
            max_bytes,
            session_bucket,
            user_bucket,
            digest: if digest_on { tls::sha256() } else { None },
            copy,
            spliced: None,
            tls_failed: false,
            splice_after,
            addresses,
        });
    }

    /// Active mode: connects to the client's validated PORT/EPRT address from the address
    /// the client reached ftpgate on.
    fn connect_client_data(&mut self, addr: SocketAddr, ctx: &mut WorkerCtx<'_>) {
        self.drop_client_data(ctx);
        let conn = match sockets::connect_from(self.local_addr.ip(), addr) {
            Ok(stream) => self.register_client_data(stream, true, ctx),
            Err(e) => {
                log::info!("{} active data connect to {addr} failed: {e}", self.id);
                None
            }
        };
        match conn {
            Some(mut conn) => match self.protect_client_data(&mut conn) {
                Ok(()) => self.sockets.client = Some(conn),
                Err(_) => {
                    let _ = ctx.registry.deregister(&mut conn.stream);
                    self.data_input(Input::ClientFailed, ctx);
                }
            },
            None => self.data_input(Input::ClientFailed, ctx),
        }
    }

    pub(super) fn register_client_data(
        &mut self,
        mut stream: TcpStream,
        connecting: bool,
        ctx: &mut WorkerCtx<'_>,
    ) -> Option<Conn> {
        ctx.registry
            .register(
                &mut stream,
                token(self.slot, self.generation, SocketRole::ClientData),
                Interest::READABLE | Interest::WRITABLE,
            )
            .ok()?;
        Some(Conn::new(stream, connecting))
    }

    pub(super) fn drop_client_data(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(mut conn) = self.sockets.client.take() {
            count_tls_failure(&self.id, "data", "client", &mut conn, ctx);
            let _ = ctx.registry.deregister(&mut conn.stream);
        }
    }

    fn drop_server_data(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(mut conn) = self.sockets.server.take() {
            count_tls_failure(&self.id, "data", "backend", &mut conn, ctx);
            let _ = ctx.registry.deregister(&mut conn.stream);
        }
    }

    /// Closes the passive listener, every data connection and the relay. Returns what the
    /// relay measured when one ran.
    pub(super) fn close_data(&mut self, ctx: &mut WorkerCtx<'_>) -> Option<Measure> {
        // Data connections end here: their finished handshakes are recorded first.
        self.report_tls(ctx);
        self.close_listener(ctx);
        self.drop_client_data(ctx);
        self.drop_server_data(ctx);
        let relay = self.sockets.relay.take()?;
        Some(self.measure(relay, ctx))
    }

    /// Closes the relay (when one runs) and tells the data machine how it ended.
    fn end_relay(&mut self, end: RelayEnd, ctx: &mut WorkerCtx<'_>) {
        let measure = match self.sockets.relay.take() {
            Some(relay) => {
                self.report_tls(ctx);
                self.measure(relay, ctx)
            }
            None => Measure::default(),
        };
        let now = ctx.now;
        self.data_input(Input::RelayEnded { end, measure, now }, ctx);
    }

    /// Ends `relay` (both connections deregistered and closed) and says what crossed and
    /// where its copy stands. A copy that was not finished is abandoned: the writer keeps
    /// the part that crossed.
    fn measure(&mut self, mut relay: Relay, ctx: &mut WorkerCtx<'_>) -> Measure {
        count_tls_failure(&self.id, "data", "client", &mut relay.client, ctx);
        count_tls_failure(&self.id, "data", "backend", &mut relay.server, ctx);
        let _ = ctx.registry.deregister(&mut relay.server.stream);
        let _ = ctx.registry.deregister(&mut relay.client.stream);
        match relay.direction {
            Direction::Download => self.data_out += relay.bytes,
            Direction::Upload => self.data_in += relay.bytes,
        }
        let source_tls = match relay.direction {
            Direction::Download => relay.server.tls.is_some(),
            Direction::Upload => relay.client.tls.is_some(),
        };
        let copy = match relay.copy.take() {
            None => CopyState::None,
            Some(copy) => Session::settle_copy(copy, ctx),
        };
        Measure {
            bytes: relay.bytes,
            sha256: relay.digest.take().map(|d| tls::hex(d.finish().as_ref())),
            digest: (self.audit_digest() == AuditDigest::None)
                .then_some(crate::audit::DigestOff::None),
            tls_end: relay.source_end.filter(|_| source_tls).map(Ending::as_str),
            tls_failed: relay.tls_failed,
            copy,
            addresses: Some(Box::new(relay.addresses)),
        }
    }

    pub(super) fn progress_client_data(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(conn) = self.sockets.client.as_mut() else {
            return false;
        };
        if conn.connecting {
            return match conn.finish_connect() {
                None => false,
                Some(Ok(())) => {
                    sockets::tune_data_socket(&conn.stream);
                    let protected = conn.tls.is_some();
                    self.data_input(Input::ClientUp { protected }, ctx);
                    true
                }
                Some(Err(e)) => {
                    log::info!("{} active data connect failed: {e}", self.id);
                    self.data_input(Input::ClientFailed, ctx);
                    true
                }
            };
        }
        // Before the relay: drive a TLS handshake the client starts early (curl does,
        // before it sends RETR/STOR) or after ftpgate's own 150 (ftplib, lftp).
        match conn.handshake() {
            Ok(progress) => {
                if let Some(resumed) = conn.finished_unchecked_handshake() {
                    let peer = conn.stream.peer_addr().ok().map(|a| a.ip());
                    self.client_handshake_done(resumed, peer, ctx);
                    return true;
                }
                progress
            }
            Err(e) => {
                log::info!("{} data connection TLS failed: {e}", self.id);
                self.data_input(Input::ClientFailed, ctx);
                true
            }
        }
    }

    /// The client data connection's TLS handshake finished: the data machine checks the
    /// session resumption (`resumed`) against the user's rule and the peer's address.
    fn client_handshake_done(
        &mut self,
        resumed: bool,
        peer: Option<std::net::IpAddr>,
        ctx: &mut WorkerCtx<'_>,
    ) {
        let reuse = self.session_reuse();
        let now = ctx.now;
        self.data_input(
            Input::ClientHandshakeDone {
                resumed,
                reuse,
                peer,
                now,
            },
            ctx,
        );
    }

    pub(super) fn progress_server_data(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(conn) = self.sockets.server.as_mut() else {
            return false;
        };
        if !conn.connecting {
            return false;
        }
        match conn.finish_connect() {
            None => false,
            Some(Ok(())) => {
                sockets::tune_data_socket(&conn.stream);
                self.data_input(Input::ServerUp, ctx);
                true
            }
            Some(Err(e)) => {
                log::warn!("{} backend data connect failed: {e}", self.id);
                self.data_input(Input::ServerFailed, ctx);
                true
            }
        }
    }

    pub(super) fn progress_relay(&mut self, ctx: &mut WorkerCtx<'_>, budget: &mut usize) -> bool {
        let Some(relay) = self.sockets.relay.as_mut() else {
            return false;
        };
        // TLS records may wait to go out on either side (and a handshake finish).
        let client_tls = relay
            .client
            .handshake()
            .and_then(|_| relay.client.flush_tls());
        let source_tls = relay
            .server
            .handshake()
            .and_then(|_| relay.server.flush_tls());
        if client_tls.is_err() || source_tls.is_err() {
            let side = if client_tls.is_err() {
                Side::Client
            } else {
                Side::Server
            };
            self.end_relay(RelayEnd::Failed(side), ctx);
            return true;
        }
        if let Some(resumed) = relay.client.finished_unchecked_handshake() {
            let peer = relay.client.stream.peer_addr().ok().map(|a| a.ip());
            self.client_handshake_done(resumed, peer, ctx);
            if !self.data.relaying() {
                return true;
            }
        }
        let Some(relay) = self.sockets.relay.as_mut() else {
            return false;
        };
        match pump(relay, budget, ctx.now, ctx.copier) {
            Pump::Progress => true,
            Pump::Stalled => false,
            Pump::Done => {
                log::debug!(
                    "{} relay done: {} bytes {} in {:?} ({})",
                    self.id,
                    relay.bytes,
                    relay.direction.as_str(),
                    ctx.now.saturating_duration_since(relay.started),
                    if relay.spliced.is_some() {
                        "spliced"
                    } else {
                        "read/write"
                    }
                );
                self.end_relay(RelayEnd::Done, ctx);
                true
            }
            Pump::Failed(side) => {
                self.end_relay(RelayEnd::Failed(side), ctx);
                true
            }
            Pump::OverLimit => {
                log::info!(
                    "{} transfer stopped at the file size limit ({} bytes)",
                    self.id,
                    relay.bytes
                );
                self.end_relay(RelayEnd::OverLimit, ctx);
                true
            }
            Pump::Throttled(wait) => {
                if self.deadlines[TIMER_RATE as usize].is_none() {
                    self.set_deadline(TIMER_RATE, wait, ctx);
                }
                false
            }
            Pump::CopyWait => {
                if self.deadlines[TIMER_COPY as usize].is_none() {
                    self.set_deadline(TIMER_COPY, Duration::from_millis(FILECOPY_RETRY_MS), ctx);
                }
                false
            }
        }
    }

    /// The filecopy writer reported a failure of the running relay's copy and the policy
    /// says a failed copy fails the transfer: no transfer without its copy.
    pub(super) fn fail_relay_for_copy(&mut self, ctx: &mut WorkerCtx<'_>) {
        self.end_relay(RelayEnd::CopyFailed, ctx);
    }

    /// Wraps a client data connection in TLS when the client asked for PROT P.
    pub(super) fn protect_client_data(&self, conn: &mut Conn) -> io::Result<()> {
        if self.fsm.data_protected() {
            if let Some(config) = self.tls_config.as_ref() {
                // Its own configuration: the control session's cache and ticket key, but
                // no TLS 1.3 tickets sent (a client that only writes never reads them, and
                // unread records turn its close into a reset that cuts an upload).
                conn.tls = Some(tls::accept(&config.data)?);
            }
        }
        Ok(())
    }

    /// The user's `audit_digest` (SHA-256 when there is no user).
    fn audit_digest(&self) -> AuditDigest {
        self.fsm
            .user()
            .and_then(|u| self.policy.user(&u.name))
            .map_or(self.policy.audit.digest, |u| u.audit_digest)
    }

    /// The user's `tls_session_reuse` (required by default, also before login).
    fn session_reuse(&self) -> TlsSessionReuse {
        self.fsm
            .user()
            .and_then(|u| self.policy.user(&u.name))
            .map_or(TlsSessionReuse::Required, |u| u.tls_session_reuse)
    }
}
