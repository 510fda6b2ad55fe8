//! The backend's control connection: connecting to the user's pool (server after server,
//! from the pool's source address, with TLS where the pool uses it), reading and parsing its
//! replies (bounded, and not while the client's output is full), writing commands to it.

use super::*;

impl Session {
    pub(super) fn connect_server(&mut self, ctx: &mut WorkerCtx<'_>) {
        let backend = self
            .fsm
            .user()
            .and_then(|u| u.known.as_ref())
            .and_then(|k| self.policy.backends.get(&k.backend));
        let Some(backend) = backend else {
            self.push(Event::ServerUnavailable);
            return;
        };
        self.server_source = backend.source_address;
        self.server_tls = None;
        if backend.tls != crate::policy::TlsMode::None {
            let Some(client) = ctx.backend_tls.get(&backend.name) else {
                log::error!(
                    "{} backend {} has no usable TLS configuration",
                    self.id,
                    backend.name
                );
                self.push(Event::ServerUnavailable);
                return;
            };
            self.server_tls = Some((client.for_session(), client.clone(), backend.tls));
            self.fsm.set_server_tls(match backend.tls {
                crate::policy::TlsMode::Implicit => control::ServerTls::Implicit,
                _ => control::ServerTls::Explicit,
            });
        }
        // The user whose policy applies (without `@target`): the sticky balance's key.
        let user = self.fsm.user().map_or("", |u| u.name.as_str());
        let mut candidates = ctx.backends.candidates(backend, user, ctx.now);
        candidates.reverse(); // popped from the end
        self.try_next_server(candidates, ctx);
    }

    pub(super) fn try_next_server(
        &mut self,
        mut remaining: Vec<SocketAddr>,
        ctx: &mut WorkerCtx<'_>,
    ) {
        while let Some(addr) = remaining.pop() {
            let connected = match self.server_source {
                Some(source) => sockets::connect_from(source, addr),
                None => TcpStream::connect(addr),
            };
            match connected {
                Ok(mut stream) => {
                    if let Err(e) = ctx.registry.register(
                        &mut stream,
                        token(self.slot, self.generation, SocketRole::ServerCtrl),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("{} cannot register backend socket: {e}", self.id);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    log::debug!("{} connecting to backend {addr}", self.id);
                    ctx.backends.start_waiting();
                    let mut conn = Conn::new(stream, true);
                    if let Some((config, client, crate::policy::TlsMode::Implicit)) =
                        self.server_tls.as_ref()
                    {
                        match tls::connect(config, client.server_name(addr.ip())) {
                            Ok(tls) => conn.tls = Some(tls),
                            Err(e) => {
                                log::warn!("{} cannot start TLS toward {addr}: {e}", self.id);
                                continue;
                            }
                        }
                    }
                    self.server = Some(ServerCtrl {
                        conn,
                        addr,
                        input: Vec::new(),
                        output: Vec::new(),
                        telnet: TelnetFilter::new(),
                        framer: LineFramer::new(MAX_REPLY_LINE),
                        parser: ReplyParser::new(),
                        remaining,
                    });
                    self.set_deadline(
                        TIMER_SERVER_CONNECT,
                        Duration::from_secs(DEFAULT_CONNECT_TIMEOUT),
                        ctx,
                    );
                    return;
                }
                Err(e) => {
                    log::warn!("{} backend {addr} connect failed: {e}", self.id);
                    self.server_failed(addr, ctx);
                }
            }
        }
        self.push(Event::ServerUnavailable);
    }

    /// The login on the backend succeeded: its server is back in rotation if it was out.
    pub(super) fn server_healthy(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(server) = self.server.as_ref() {
            if ctx.backends.mark_up(server.addr, ctx.now) {
                log::info!("{} backend {} is back in rotation", self.id, server.addr);
            }
        }
    }

    /// The backend failed the session before the login (greeting, TLS): out of rotation.
    pub(super) fn server_failed(&mut self, addr: SocketAddr, ctx: &mut WorkerCtx<'_>) {
        let wait = ctx.backends.mark_down(addr, ctx.now);
        log::warn!(
            "{} backend {addr} failed the session; out of rotation for {} s",
            self.id,
            wait.as_secs()
        );
    }

    pub(super) fn server_connect_failed(&mut self, ctx: &mut WorkerCtx<'_>) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        ctx.backends.stop_waiting();
        let _ = ctx.registry.deregister(&mut server.conn.stream);
        self.server_failed(server.addr, ctx);
        self.cancel_deadline(TIMER_SERVER_CONNECT, ctx);
        let remaining = std::mem::take(&mut server.remaining);
        self.try_next_server(remaining, ctx);
    }

    pub(super) fn close_server(&mut self, ctx: &mut WorkerCtx<'_>) {
        if let Some(mut server) = self.server.take() {
            super::tls_events::count_tls_failure(
                &self.id,
                "control",
                "backend",
                &mut server.conn,
                ctx,
            );
            if server.conn.connecting {
                ctx.backends.stop_waiting();
            }
            let _ = ctx.registry.deregister(&mut server.conn.stream);
            self.cancel_deadline(TIMER_SERVER_CONNECT, ctx);
        }
    }

    pub(super) fn progress_server(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(server) = self.server.as_mut() else {
            return false;
        };
        if server.conn.connecting {
            match server.conn.finish_connect() {
                None => return false,
                Some(Ok(())) => {
                    ctx.backends.stop_waiting();
                    log::debug!("{} connected to backend {}", self.id, server.addr);
                    let addr = server.addr;
                    self.cancel_deadline(TIMER_SERVER_CONNECT, ctx);
                    self.fsm.set_server(addr);
                    self.dispatch(Event::ServerConnected, ctx);
                    return true;
                }
                Some(Err(e)) => {
                    log::warn!("{} backend {} connect failed: {e}", self.id, server.addr);
                    self.server_connect_failed(ctx);
                    self.run_events(ctx);
                    return true;
                }
            }
        }
        let mut progress = false;
        let mut chunk = [0u8; 4096];
        loop {
            let Some(server) = self.server.as_mut() else {
                return progress;
            };
            // Backpressure: replies for a client that does not read stay in the backend's
            // socket (and the backend's own buffers), not in ftpgate's memory.
            if !server.conn.readable
                || server.input.len() > MAX_REPLY_LINE
                || self.client.output.len() >= MAX_CLIENT_OUTPUT
            {
                return progress;
            }
            let step = read_some(&mut server.conn, &mut chunk);
            match step {
                Ok(ReadStep::Data(n)) => {
                    let kept = server.telnet.filter(&mut chunk[..n]);
                    server.input.extend_from_slice(&chunk[..kept]);
                    progress = true;
                    if !self.parse_server_replies(ctx) {
                        return true;
                    }
                }
                Ok(ReadStep::Blocked) => return progress,
                Err(e) if e.kind() == io::ErrorKind::InvalidData && self.server_tls.is_some() => {
                    log::warn!("{} TLS toward the backend failed: {e}", self.id);
                    let addr = server.addr;
                    self.server_failed(addr, ctx);
                    self.audit(
                        ctx,
                        &AuditRecord::PolicyViolation {
                            kind: "backend_tls",
                            detail: e.to_string(),
                        },
                    );
                    self.close_server(ctx);
                    if self.closing.is_none() {
                        self.dispatch(Event::ServerTlsFailed, ctx);
                    }
                    return true;
                }
                Ok(ReadStep::Eof(_)) | Err(_) => {
                    self.close_server(ctx);
                    if self.closing.is_none() {
                        self.dispatch(Event::ServerClosed, ctx);
                    }
                    return true;
                }
            }
        }
    }

    /// Feeds complete reply lines to the parser and complete replies to the machine.
    /// Returns false when the backend connection was dropped.
    pub(super) fn parse_server_replies(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        loop {
            let Some(server) = self.server.as_mut() else {
                return false;
            };
            let reply = match server.framer.next_line(&server.input) {
                Framed::Line { line_end, consumed } => {
                    let line = server.input.get(..line_end).unwrap_or(&[]);
                    let parsed = server.parser.push_line(line);
                    server.input.drain(..consumed.min(server.input.len()));
                    match parsed {
                        Ok(Some(reply)) => reply,
                        Ok(None) => continue,
                        Err(e) => {
                            log::warn!("{} backend sent an invalid reply: {e}", self.id);
                            self.close_server(ctx);
                            self.dispatch(Event::ServerProtocolError, ctx);
                            return false;
                        }
                    }
                }
                Framed::TooLong { .. } => {
                    log::warn!("{} backend reply line too long", self.id);
                    self.close_server(ctx);
                    self.dispatch(Event::ServerProtocolError, ctx);
                    return false;
                }
                Framed::Incomplete { consumed } => {
                    if consumed > 0 {
                        server.input.drain(..consumed.min(server.input.len()));
                        continue;
                    }
                    if server.input.is_empty() && server.input.capacity() > 0 {
                        server.input = Vec::new();
                    }
                    return true;
                }
            };
            log::debug!("{} <- backend {}", self.id, reply.code);
            self.dispatch(Event::ServerReply(reply), ctx);
        }
    }

    pub(super) fn flush_server(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let Some(server) = self.server.as_mut() else {
            return false;
        };
        match flush(&mut server.conn, &mut server.output) {
            Ok(progress) => progress,
            Err(e) => {
                log::info!("{} backend write failed: {e}", self.id);
                self.close_server(ctx);
                if self.closing.is_none() {
                    self.dispatch(Event::ServerClosed, ctx);
                }
                true
            }
        }
    }

    /// The backend answered AUTH TLS with 234: TLS on its control connection from here.
    pub(super) fn start_server_tls(&mut self) {
        let (Some(server), Some((config, client, _))) =
            (self.server.as_mut(), self.server_tls.as_ref())
        else {
            return;
        };
        // Nothing the backend sent after its 234 is trusted.
        server.input.clear();
        match tls::connect(config, client.server_name(server.addr.ip())) {
            Ok(tls) => {
                server.conn.tls = Some(tls);
                server.conn.readable = true;
            }
            Err(e) => {
                log::warn!("{} cannot start TLS toward the backend: {e}", self.id);
                self.push(Event::ServerTlsFailed);
            }
        }
    }
}
