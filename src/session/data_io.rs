//! The data connections' I/O: the passive listener, the active connect to the client, the
//! connect to the backend's data port, a protected connection's TLS handshake, the relay and
//! its close with the measure of what crossed. What all of it means is the data machine's
//! (`data/`): this file feeds it what the sockets did and performs its [`Output`]s.

use super::data::{Acceptance, CopyState, DataTimer, Input, Measure, Output, RelayEnd};
use super::splice_relay;
use super::tls_events::count_tls_failure;
use super::*;
use crate::limits::MAX_PENDING_DATA_PROXY_HEADERS;
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

    fn open_passive(&mut self, ctx: &mut WorkerCtx<'_>) {
        if ctx.passive.is_shared() {
            self.join_shared_port(ctx);
            return;
        }
        match ctx
            .passive
            .open(self.local_addr.ip(), self.client_addr.ip(), ctx.now)
        {
            Ok((mut listener, port)) => {
                if let Err(e) = ctx.registry.register(
                    &mut listener,
                    token(self.slot, self.generation, SocketRole::PassiveListener),
                    Interest::READABLE,
                ) {
                    log::warn!("{} cannot register passive listener: {e}", self.id);
                    ctx.passive
                        .release(&listener, self.client_addr.ip(), ctx.now);
                    self.data_input(Input::ListenerFailed, ctx);
                    return;
                }
                self.sockets.listener = Some(listener);
                let ip = data::advertised_ip(
                    self.local_addr.ip(),
                    self.policy.passive.advertise_for(self.client_addr.ip()),
                );
                self.data_input(Input::ListenerOpened(SocketAddr::new(ip, port)), ctx);
            }
            Err(e) => {
                log::warn!("{} no passive port available: {e}", self.id);
                self.data_input(Input::ListenerFailed, ctx);
            }
        }
    }

    /// `passive.shared`: waits on one of the worker's ports for a connection from the
    /// client's address.
    fn join_shared_port(&mut self, ctx: &mut WorkerCtx<'_>) {
        let key = SessionKey {
            slot: self.slot,
            generation: self.generation,
        };
        let ip = self.local_addr.ip();
        match ctx
            .passive
            .join(ip, self.client_addr.ip(), key, ctx.registry, ctx.now)
        {
            Ok(port) => {
                self.sockets.shared_port = Some(port);
                let ip = data::advertised_ip(
                    ip,
                    self.policy.passive.advertise_for(self.client_addr.ip()),
                );
                self.data_input(Input::ListenerOpened(SocketAddr::new(ip, port)), ctx);
            }
            Err(e) => {
                log::warn!("{} no shared passive port available: {e}", self.id);
                self.data_input(Input::ListenerFailed, ctx);
            }
        }
    }

    /// A connection the worker accepted on shared port `local` from `peer`, for this
    /// session (the worker's table says it waits for that address there). The data
    /// machine judges it as it judges a connection to a listener of its own.
    pub fn on_shared_connection(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        ctx: &mut WorkerCtx<'_>,
    ) {
        if self.sockets.shared_port != Some(local.port()) {
            // Not waiting there (any more): the table and the session disagree, which
            // must not happen; the connection is nobody's.
            log::warn!(
                "{} shared passive connection from {peer} not expected",
                self.id
            );
            return;
        }
        let acceptance = self.data.on_accepted(peer);
        self.on_acceptance(acceptance, stream, peer, ctx);
    }

    fn close_listener(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(port) = self.sockets.shared_port.take() {
            let key = SessionKey {
                slot: self.slot,
                generation: self.generation,
            };
            ctx.passive.leave(
                self.local_addr.ip(),
                port,
                self.client_addr.ip(),
                key,
                ctx.registry,
                ctx.now,
            );
        }
        for (mut stream, _) in self.sockets.proxied.drain(..) {
            let _ = ctx.registry.deregister(&mut stream);
        }
        if let Some(mut listener) = self.sockets.listener.take() {
            let _ = ctx.registry.deregister(&mut listener);
            ctx.passive
                .release(&listener, self.client_addr.ip(), ctx.now);
        }
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

    fn register_client_data(
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

    fn drop_client_data(&mut self, ctx: &mut WorkerCtx<'_>) {
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

    /// Performs the data machine's verdict on a connection to the passive port.
    fn on_acceptance(
        &mut self,
        acceptance: Acceptance,
        mut stream: TcpStream,
        peer: SocketAddr,
        ctx: &mut WorkerCtx<'_>,
    ) {
        match acceptance {
            Acceptance::Refuse(record) => {
                drop(stream);
                if let Some(record) = record {
                    log::warn!("{} passive connection from foreign {peer} refused", self.id);
                    self.audit(ctx, &record);
                }
            }
            Acceptance::ReadHeader => {
                if self.sockets.proxied.len() >= MAX_PENDING_DATA_PROXY_HEADERS {
                    let why = format!(
                        "{MAX_PENDING_DATA_PROXY_HEADERS} connections already wait for their \
                         PROXY header"
                    );
                    let verdict = self.data.on_proxied(peer, Err(why));
                    self.on_acceptance(verdict, stream, peer, ctx);
                    return;
                }
                // Readiness comes as the client data connection's; the header is looked at
                // on every drive ([`Session::progress_proxied`]).
                let token = token(self.slot, self.generation, SocketRole::ClientData);
                match ctx
                    .registry
                    .register(&mut stream, token, Interest::READABLE)
                {
                    Ok(()) => self.sockets.proxied.push((stream, peer)),
                    Err(e) => {
                        let verdict = self.data.on_proxied(peer, Err(e.to_string()));
                        self.on_acceptance(verdict, stream, peer, ctx);
                    }
                }
            }
            Acceptance::Take => {
                sockets::tune_data_socket(&stream);
                // One connection per passive port: the listener closes now (and any other
                // connection from a balancer with it).
                self.close_listener(ctx);
                self.drop_client_data(ctx);
                let conn = self
                    .register_client_data(stream, false, ctx)
                    .and_then(|mut conn| match self.protect_client_data(&mut conn) {
                        Ok(()) => Some(conn),
                        Err(_) => {
                            let _ = ctx.registry.deregister(&mut conn.stream);
                            None
                        }
                    });
                match conn {
                    Some(conn) => {
                        let protected = conn.tls.is_some();
                        self.sockets.client = Some(conn);
                        self.data_input(Input::ClientUp { protected }, ctx);
                    }
                    None => self.data_input(Input::ClientFailed, ctx),
                }
            }
        }
    }

    /// The PROXY headers of passive connections from a balancer: each complete, malformed
    /// or closed one goes to the data machine, which takes the client's and refuses the rest.
    fn progress_proxied(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let mut progress = false;
        let mut i = 0;
        while i < self.sockets.proxied.len() {
            let (stream, via) = &mut self.sockets.proxied[i];
            let via = *via;
            let Some(header) = read_proxy_header(stream) else {
                i += 1;
                continue;
            };
            progress = true;
            let (mut stream, _) = self.sockets.proxied.swap_remove(i);
            let _ = ctx.registry.deregister(&mut stream);
            let peer = header.as_ref().map_or(via, |source| *source);
            let verdict = self.data.on_proxied(via, header);
            self.on_acceptance(verdict, stream, peer, ctx);
        }
        progress
    }

    pub(super) fn accept_passive(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let mut progress = self.progress_proxied(ctx);
        // Bounded: a listener has a small backlog; stop after a handful per turn.
        for _ in 0..MAX_PASSIVE_ACCEPTS_PER_TURN {
            let Some(listener) = self.sockets.listener.as_ref() else {
                return progress;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    progress = true;
                    let acceptance = self.data.on_accepted(peer);
                    // A balancer's header may be there already (its edge came before the
                    // registration): the next pass of the drive loop looks.
                    self.on_acceptance(acceptance, stream, peer, ctx);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return progress,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("{} passive accept failed: {e}", self.id);
                    return progress;
                }
            }
        }
        progress
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
    fn protect_client_data(&self, conn: &mut Conn) -> io::Result<()> {
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

/// A passive data connection's PROXY header: the client address it names, why there is
/// none, or `None` while it is incomplete. Peeked until complete, then exactly its bytes
/// are consumed (the client's data after it stays in the socket).
fn read_proxy_header(stream: &mut TcpStream) -> Option<Result<SocketAddr, String>> {
    use crate::proxy_protocol::{Header, Parsed, parse};
    let mut buf = [0u8; crate::limits::MAX_PROXY_HEADER_BYTES];
    let n = loop {
        match stream.peek(&mut buf) {
            Ok(0) => return Some(Err("closed before a PROXY header".to_owned())),
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(Err(format!("failed before a PROXY header: {e}"))),
        }
    };
    match parse(&buf[..n]) {
        Parsed::Incomplete => None,
        Parsed::Invalid(why) => Some(Err(why.to_string())),
        Parsed::Complete {
            header: Header::Local | Header::Unknown,
            ..
        } => Some(Err(
            "PROXY header without a client address (LOCAL or UNKNOWN)".to_owned(),
        )),
        Parsed::Complete {
            header: Header::Tcp { source, .. },
            length,
        } => {
            let mut done = 0;
            // Bounded: each pass reads at least a byte or ends.
            while done < length {
                match io::Read::read(stream, &mut buf[done..length]) {
                    Ok(0) => return Some(Err("closed inside its PROXY header".to_owned())),
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Some(Err(format!("reading the PROXY header: {e}"))),
                }
            }
            Some(Ok(source))
        }
    }
}
