//! The data connections: the passive listener (port-theft check), the active connect to the
//! client, the connect to the backend's data port, a protected connection's TLS handshake and
//! its session-reuse check, the relay, and its end with the report of what crossed.

use super::*;
use crate::policy::TlsSessionReuse;

impl Session {
    pub(super) fn open_passive(&mut self, ctx: &mut WorkerCtx<'_>) {
        self.abort_data(ctx);
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
                    self.push(Event::PassiveFailed);
                    return;
                }
                self.passive = Some(listener);
                // passive.advertise is an IPv4 address for 227 replies; a client on IPv6
                // gets ftpgate's own address (and 227 is refused for it: EPSV only).
                let local = self.local_addr.ip();
                let on_ipv4 = match local {
                    std::net::IpAddr::V4(_) => true,
                    std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
                };
                let ip = match self.policy.passive.advertise {
                    Some(advertise) if on_ipv4 => advertise,
                    _ => local,
                };
                self.push(Event::PassiveOpened(SocketAddr::new(ip, port)));
            }
            Err(e) => {
                log::warn!("{} no passive port available: {e}", self.id);
                self.push(Event::PassiveFailed);
            }
        }
    }

    pub(super) fn connect_server_data(&mut self, port: u16, ctx: &mut WorkerCtx<'_>) {
        let Some(server) = self.server.as_ref() else {
            self.push(Event::ServerDataFailed);
            return;
        };
        // SECURITY: the backend's data address is its control address with the port it
        // named; the address inside 227/229 is never used.
        let addr = SocketAddr::new(server.addr.ip(), port);
        if port == 0 {
            self.push(Event::ServerDataFailed);
            return;
        }
        let connected = match self.server_source {
            Some(source) => sockets::connect_from(source, addr),
            None => TcpStream::connect(addr),
        };
        match connected {
            Ok(mut stream) => {
                if ctx
                    .registry
                    .register(
                        &mut stream,
                        token(self.slot, self.generation, SocketRole::ServerData),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .is_err()
                {
                    self.push(Event::ServerDataFailed);
                    return;
                }
                let mut conn = Conn::new(stream, true);
                // Toward a TLS backend data connections are protected (PROT P) and resume
                // the control connection's session.
                if let Some((config, client, _)) = self.server_tls.as_ref() {
                    match tls::connect(config, client.server_name(addr.ip())) {
                        Ok(tls) => conn.tls = Some(tls),
                        Err(e) => {
                            log::warn!("{} cannot start data TLS toward {addr}: {e}", self.id);
                            let _ = ctx.registry.deregister(&mut conn.stream);
                            self.push(Event::ServerDataFailed);
                            return;
                        }
                    }
                }
                self.server_data = Some(conn);
                self.set_deadline(
                    TIMER_SERVER_DATA_CONNECT,
                    Duration::from_secs(DEFAULT_CONNECT_TIMEOUT),
                    ctx,
                );
            }
            Err(e) => {
                log::warn!("{} backend data connect to {addr} failed: {e}", self.id);
                self.push(Event::ServerDataFailed);
            }
        }
    }

    pub(super) fn start_relay(
        &mut self,
        direction: Direction,
        max_bytes: Option<u64>,
        ctx: &mut WorkerCtx<'_>,
    ) {
        let (Some(server), Some(client)) = (self.server_data.take(), self.client_data.take())
        else {
            self.abort_data(ctx);
            self.push(Event::RelayFailed {
                report: RelayReport::default(),
                side: Side::Server,
            });
            return;
        };
        self.cancel_deadline(TIMER_SERVER_DATA_CONNECT, ctx);
        let Some(buffer) = ctx.pool.checkout() else {
            log::warn!("{} relay buffer pool exhausted", self.id);
            for mut conn in [server, client] {
                let _ = ctx.registry.deregister(&mut conn.stream);
            }
            self.push(Event::RelayFailed {
                report: RelayReport::default(),
                side: Side::Server,
            });
            return;
        };
        let limits = self
            .fsm
            .user()
            .and_then(|u| self.policy.user(&u.name))
            .map(|u| (u.name.clone(), u.limits.rate, u.limits.user_rate));
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
        self.relay = Some(Relay {
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
            digest: tls::sha256(),
            copy: None,
        });
        self.awaiting_copy = None;
        let copy = self.new_copy(ctx);
        if let Some(relay) = self.relay.as_mut() {
            relay.copy = copy;
        }
    }

    /// Active mode: connects to the client's validated PORT/EPRT address from the address
    /// the client reached ftpgate on.
    pub(super) fn connect_client_data(&mut self, addr: SocketAddr, ctx: &mut WorkerCtx<'_>) {
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
                Ok(()) => self.client_data = Some(conn),
                Err(_) => {
                    let _ = ctx.registry.deregister(&mut conn.stream);
                    self.push(Event::ClientDataFailed);
                }
            },
            None => self.push(Event::ClientDataFailed),
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
        if let Some(mut conn) = self.client_data.take() {
            let _ = ctx.registry.deregister(&mut conn.stream);
        }
    }

    pub(super) fn drop_server_data(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(mut conn) = self.server_data.take() {
            let _ = ctx.registry.deregister(&mut conn.stream);
        }
        self.cancel_deadline(TIMER_SERVER_DATA_CONNECT, ctx);
    }

    pub(super) fn abort_data(&mut self, ctx: &mut WorkerCtx<'_>) {
        let _ = self.stop_data(ctx);
    }

    /// Closes the passive listener and every data connection, and stops the relay (or the
    /// wait for its copy). Returns what crossed when a relay had started.
    pub(super) fn stop_data(&mut self, ctx: &mut WorkerCtx<'_>) -> Option<RelayReport> {
        // Data connections end here: their finished handshakes are recorded first.
        self.report_tls(ctx);
        if let Some(mut listener) = self.passive.take() {
            let _ = ctx.registry.deregister(&mut listener);
            ctx.passive
                .release(&listener, self.client_addr.ip(), ctx.now);
        }
        self.drop_client_data(ctx);
        self.drop_server_data(ctx);
        let mut report = None;
        if let Some(mut relay) = self.relay.take() {
            let copy = relay.copy.take();
            let mut r = self.relay_report(relay, ctx);
            if let Some(copy) = copy {
                match Session::abandon_copy(copy, ctx) {
                    CopyNote::Stored(path) => r.filecopy = Some(path),
                    CopyNote::Failed(reason) => r.filecopy_error = Some(reason),
                }
            }
            report = Some(r);
        }
        if let Some(wait) = self.awaiting_copy.take() {
            // Stopped while the copy (complete) was being written: nobody waits for it.
            self.cancel_deadline(TIMER_COPY_RESULT, ctx);
            let mut r = wait.report;
            r.filecopy = Some(wait.path);
            report = Some(r);
        }
        report
    }

    /// Ends `relay` (both connections deregistered and closed) and says what crossed; its
    /// copy, if any, is the caller's.
    pub(super) fn relay_report(
        &mut self,
        mut relay: Relay,
        ctx: &mut WorkerCtx<'_>,
    ) -> RelayReport {
        let _ = ctx.registry.deregister(&mut relay.server.stream);
        let _ = ctx.registry.deregister(&mut relay.client.stream);
        match relay.direction {
            Direction::Download => self.bytes_out += relay.bytes,
            Direction::Upload => self.bytes_in += relay.bytes,
        }
        let source_tls = match relay.direction {
            Direction::Download => relay.server.tls.is_some(),
            Direction::Upload => relay.client.tls.is_some(),
        };
        RelayReport {
            bytes: relay.bytes,
            duration_ms: self.transfer_started.take().map_or(0, |t| {
                ctx.now.saturating_duration_since(t).as_millis() as u64
            }),
            sha256: relay.digest.take().map(|d| tls::hex(d.finish().as_ref())),
            tls_end: relay.source_end.filter(|_| source_tls).map(Ending::as_str),
            filecopy: None,
            filecopy_error: None,
        }
    }

    pub(super) fn accept_passive(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let mut progress = false;
        // Bounded: a listener has a small backlog; stop after a handful per turn.
        for _ in 0..MAX_PASSIVE_ACCEPTS_PER_TURN {
            let Some(listener) = self.passive.as_ref() else {
                return progress;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    progress = true;
                    // SECURITY: port theft. Only the client's own address may connect to a
                    // passive port; anyone else is closed at once and recorded.
                    if !admission::data_source_allowed(peer.ip(), self.client_addr.ip()) {
                        self.theft_attempts = self.theft_attempts.saturating_add(1);
                        // Recorded one by one up to a bound, then only counted (in
                        // session_end): an intruder cannot fill the audit trail.
                        if self.theft_attempts <= MAX_THEFT_EVENTS_PER_SESSION {
                            log::warn!(
                                "{} passive connection from foreign {peer} refused",
                                self.id
                            );
                            let record = AuditRecord::PolicyViolation {
                                kind: "port_theft",
                                detail: format!("data connection from {peer}"),
                            };
                            self.audit(ctx, &record);
                        }
                        drop(stream);
                        continue;
                    }
                    sockets::tune_data_socket(&stream);
                    // One connection per passive port: the listener closes now.
                    if let Some(mut listener) = self.passive.take() {
                        let _ = ctx.registry.deregister(&mut listener);
                        ctx.passive
                            .release(&listener, self.client_addr.ip(), ctx.now);
                    }
                    self.drop_client_data(ctx);
                    if let Some(mut conn) = self.register_client_data(stream, false, ctx) {
                        if self.protect_client_data(&mut conn).is_err() {
                            let _ = ctx.registry.deregister(&mut conn.stream);
                            self.dispatch(Event::ClientDataFailed, ctx);
                            continue;
                        }
                        let protected = conn.tls.is_some();
                        self.client_data = Some(conn);
                        self.dispatch(client_data_up(protected), ctx);
                    }
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
        let Some(conn) = self.client_data.as_mut() else {
            return false;
        };
        if !conn.connecting {
            // Before the relay: drive a TLS handshake the client starts early (curl does,
            // before it sends RETR/STOR).
            let result = conn.handshake();
            let done = conn.tls.as_ref().is_some_and(|t| !t.is_handshaking());
            return match result {
                Ok(progress) => {
                    if done && !conn.tls_checked {
                        conn.tls_checked = true;
                        let acceptable = self
                            .client_data
                            .as_ref()
                            .is_some_and(|c| self.data_tls_acceptable(c, ctx));
                        if !acceptable {
                            self.refuse_data_tls(ctx);
                            self.drop_client_data(ctx);
                            self.dispatch(Event::ClientDataFailed, ctx);
                            return true;
                        }
                        // Only now may file data cross it (and the backend get the
                        // transfer command).
                        self.report_tls(ctx);
                        self.dispatch(Event::ClientDataConnected, ctx);
                        return true;
                    }
                    progress
                }
                Err(e) => {
                    log::info!("{} data connection TLS failed: {e}", self.id);
                    self.drop_client_data(ctx);
                    self.dispatch(Event::ClientDataFailed, ctx);
                    true
                }
            };
        }
        match conn.finish_connect() {
            None => false,
            Some(Ok(())) => {
                sockets::tune_data_socket(&conn.stream);
                let protected = conn.tls.is_some();
                self.dispatch(client_data_up(protected), ctx);
                true
            }
            Some(Err(e)) => {
                log::info!("{} active data connect failed: {e}", self.id);
                self.drop_client_data(ctx);
                self.dispatch(Event::ClientDataFailed, ctx);
                true
            }
        }
    }

    pub(super) fn progress_server_data(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(conn) = self.server_data.as_mut() else {
            return false;
        };
        if !conn.connecting {
            return false;
        }
        match conn.finish_connect() {
            None => false,
            Some(Ok(())) => {
                sockets::tune_data_socket(&conn.stream);
                self.cancel_deadline(TIMER_SERVER_DATA_CONNECT, ctx);
                self.dispatch(Event::ServerDataConnected, ctx);
                true
            }
            Some(Err(e)) => {
                log::warn!("{} backend data connect failed: {e}", self.id);
                self.drop_server_data(ctx);
                self.dispatch(Event::ServerDataFailed, ctx);
                true
            }
        }
    }

    pub(super) fn progress_relay(&mut self, ctx: &mut WorkerCtx<'_>, budget: &mut usize) -> bool {
        let Some(relay) = self.relay.as_mut() else {
            return false;
        };
        let mut progress = false;
        // The client's data TLS: its handshake may run during the relay (ftplib wraps the
        // socket after the 150), and records may wait to go out on either side.
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
            let report = self.stop_data(ctx).unwrap_or_default();
            self.dispatch(Event::RelayFailed { report, side }, ctx);
            return true;
        }
        let handshake_done = relay
            .client
            .tls
            .as_ref()
            .is_some_and(|t| !t.is_handshaking());
        if handshake_done && !relay.client.tls_checked {
            relay.client.tls_checked = true;
            let acceptable = self
                .relay
                .as_ref()
                .is_some_and(|r| self.data_tls_acceptable(&r.client, ctx));
            if !acceptable {
                self.refuse_data_tls(ctx);
                let report = self.stop_data(ctx).unwrap_or_default();
                self.dispatch(
                    Event::RelayFailed {
                        report,
                        side: Side::Client,
                    },
                    ctx,
                );
                return true;
            }
        }
        let Some(relay) = self.relay.as_mut() else {
            return false;
        };
        let outcome = pump(relay, budget, ctx.now, ctx.copier);
        match outcome {
            Pump::Progress => progress = true,
            Pump::Stalled => {}
            Pump::Done => {
                let elapsed = ctx.now.saturating_duration_since(relay.started);
                log::debug!(
                    "{} relay done: {} bytes {} in {elapsed:?}",
                    self.id,
                    relay.bytes,
                    relay.direction.as_str()
                );
                // The copy is settled apart: the final reply waits for it.
                let copy = relay.copy.take();
                let report = self.stop_data(ctx).unwrap_or_default();
                match copy {
                    Some(copy) => self.copy_relayed(copy, report, ctx),
                    None => self.dispatch(Event::RelayDone(report), ctx),
                }
                return true;
            }
            Pump::Failed(side) => {
                let report = self.stop_data(ctx).unwrap_or_default();
                self.dispatch(Event::RelayFailed { report, side }, ctx);
                return true;
            }
            Pump::OverLimit => {
                log::info!(
                    "{} transfer stopped at the file size limit ({} bytes)",
                    self.id,
                    relay.bytes
                );
                let report = self.stop_data(ctx).unwrap_or_default();
                self.dispatch(Event::RelayOverLimit(report), ctx);
                return true;
            }
            Pump::Throttled(wait) => {
                if self.deadlines[TIMER_RATE as usize].is_none() {
                    self.set_deadline(TIMER_RATE, wait, ctx);
                }
                return progress;
            }
            Pump::CopyWait => {
                if self.deadlines[TIMER_COPY as usize].is_none() {
                    self.set_deadline(TIMER_COPY, Duration::from_millis(FILECOPY_RETRY_MS), ctx);
                }
                return progress;
            }
        }
        progress
    }

    pub(super) fn refuse_data_tls(&mut self, ctx: &mut WorkerCtx<'_>) {
        log::warn!(
            "{} data connection did not resume the control TLS session",
            self.id
        );
        self.audit(
            ctx,
            &AuditRecord::PolicyViolation {
                kind: "tls_session_reuse",
                detail: "data connection TLS did not resume the control session".into(),
            },
        );
    }

    /// Records each TLS handshake once it is done: which connection, the protocol version,
    /// the cipher suite, whether the session was resumed, the ALPN protocol.
    pub(super) fn report_tls(&mut self, ctx: &mut WorkerCtx<'_>) {
        let mut records = Vec::new();
        let relay = self.relay.as_mut();
        let (client_data, server_data) = match relay {
            Some(r) => (Some(&mut r.client), Some(&mut r.server)),
            None => (self.client_data.as_mut(), self.server_data.as_mut()),
        };
        let conns = [
            ("control", "client", Some(&mut self.client.conn)),
            (
                "control",
                "backend",
                self.server.as_mut().map(|s| &mut s.conn),
            ),
            ("data", "client", client_data),
            ("data", "backend", server_data),
        ];
        for (channel, side, conn) in conns {
            let Some(conn) = conn else { continue };
            if conn.tls_reported {
                continue;
            }
            let Some(summary) = conn.tls.as_ref().and_then(|t| tls::summary(t)) else {
                continue;
            };
            conn.tls_reported = true;
            records.push(AuditRecord::Tls {
                channel,
                side,
                version: summary.version,
                cipher: summary.cipher,
                resumed: summary.resumed,
                alpn: summary.alpn,
            });
        }
        for record in records {
            self.audit(ctx, &record);
        }
    }

    /// Wraps a client data connection in TLS when the client asked for PROT P.
    pub(super) fn protect_client_data(&self, conn: &mut Conn) -> io::Result<()> {
        if self.fsm.data_protected() {
            if let Some(config) = self.tls_config.as_ref() {
                conn.tls = Some(tls::accept(&config.data)?);
            }
        }
        Ok(())
    }

    /// Whether a finished data-connection handshake passes the session-reuse rule
    /// ([`admission::data_tls_acceptable`]); a handshake let through by the user's
    /// `tls_session_reuse: "bridge"` is recorded as a policy exception.
    pub(super) fn data_tls_acceptable(&self, conn: &Conn, ctx: &mut WorkerCtx<'_>) -> bool {
        let reuse = self
            .fsm
            .user()
            .and_then(|u| self.policy.user(&u.name))
            .map_or(TlsSessionReuse::Required, |u| u.tls_session_reuse);
        let facts = admission::DataTlsFacts {
            resumed: conn.tls.as_ref().map(|t| tls::resumed(t)),
            reuse,
            peer: conn.stream.peer_addr().ok().map(|a| a.ip()),
            control_peer: self.client_addr.ip(),
            since_transfer: self
                .transfer_started
                .map(|t| ctx.now.saturating_duration_since(t)),
        };
        match admission::data_tls_acceptable(&facts) {
            admission::DataTlsVerdict::Accept => true,
            admission::DataTlsVerdict::Refuse => false,
            admission::DataTlsVerdict::Bridged => {
                log::info!(
                    "{} data connection did not resume the control TLS session; accepted \
                     (tls_session_reuse \"bridge\")",
                    self.id
                );
                let record = AuditRecord::PolicyException {
                    kind: "tls_session_reuse_bridge",
                    detail: "data connection TLS did not resume the control session; \
                             accepted from the control connection's address within the \
                             bridge window"
                        .into(),
                };
                self.audit(ctx, &record);
                true
            }
        }
    }
}
