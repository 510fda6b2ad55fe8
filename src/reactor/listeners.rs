//! The worker's listeners: accepting (bounded per turn, paused when descriptors run out),
//! the PROXY protocol's pending headers, a new session per client, and a reload's listener
//! changes (bound before anything changes, switched without touching sessions in flight).

use super::*;

impl Worker {
    /// Binds the listeners of `policy` this worker does not have yet. Nothing changes
    /// on failure (the sockets bound so far close): the reload is refused.
    pub(super) fn bind_new_listeners(
        &self,
        policy: &Policy,
    ) -> Result<Vec<(TcpListener, SocketAddr)>, String> {
        if self.stopping_since.is_some() {
            return Ok(Vec::new());
        }
        if policy.listeners.len() > MAX_LISTENERS {
            return Err(format!("more than {MAX_LISTENERS} listeners"));
        }
        let mut bound = Vec::new();
        for listener in &policy.listeners {
            let address = listener.address;
            if self.listeners.iter().any(|(_, a)| *a == address) {
                continue;
            }
            let socket = bind_control_listener(address).map_err(|e| {
                let hint = if address.port() < 1024 {
                    " (a port below 1024 needs CAP_NET_BIND_SERVICE; or restart ftpgate)"
                } else {
                    ""
                };
                format!("cannot listen on {address}: {e}{hint}")
            })?;
            bound.push((socket, address));
        }
        Ok(bound)
    }

    /// Serves the listeners of `policy`: those kept, the `bound` new ones; the others
    /// close. Sessions in flight are not touched; the next connection gets the new TLS
    /// mode of its listener.
    pub(super) fn switch_listeners(
        &mut self,
        policy: &Policy,
        mut bound: Vec<(TcpListener, SocketAddr)>,
    ) {
        if self.stopping_since.is_some() {
            return;
        }
        let registry = self.poll.registry();
        let mut old = std::mem::take(&mut self.listeners);
        for (socket, _) in &mut old {
            let _ = registry.deregister(socket);
        }
        self.listener_configs.clear();
        self.accept_pending.clear();
        for listener in &policy.listeners {
            let taken = match old.iter().position(|(_, a)| *a == listener.address) {
                Some(pos) => Some(old.swap_remove(pos)),
                None => bound
                    .iter()
                    .position(|(_, a)| *a == listener.address)
                    .map(|pos| bound.swap_remove(pos)),
            };
            let Some((mut socket, address)) = taken else {
                continue;
            };
            // Its token is its place in the list (what `accept` indexes).
            let token = Token(SPECIAL_BASE + self.listeners.len());
            if let Err(e) = registry.register(&mut socket, token, Interest::READABLE) {
                log::error!("cannot serve {address}: {e}");
                continue;
            }
            self.listeners.push((socket, address));
            self.listener_configs.push(ListenerConfig {
                tls: listener.tls,
                require: listener.require,
                proxy_protocol: listener.proxy_protocol,
            });
            // Connections may wait in the backlog: try each listener once.
            self.accept_pending.push(true);
        }
        for (_, address) in &old {
            log::info!("worker {}: no longer listening on {address}", self.index);
        }
    }

    pub(super) fn accept(&mut self, index: usize, now: Instant, touched: &mut Vec<usize>) {
        // Bounded per turn so one busy listener cannot starve the sessions.
        for _ in 0..MAX_ACCEPTS_PER_TURN {
            let Some((listener, _)) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    let Some(listener) = self.listener_configs.get(index).copied() else {
                        return;
                    };
                    if let Some(trusted) = self.proxy_from(index, listener) {
                        // SECURITY: only a balancer may say who the client is; anyone else
                        // is closed before a byte is read or sent.
                        if !trusted.iter().any(|c| c.contains(peer.ip())) {
                            drop(stream);
                            let detail = format!("connection from {peer}, not in proxy_from");
                            self.refuse_proxied(peer, detail, now);
                            continue;
                        }
                        let registry = self.poll.registry();
                        if let Err(detail) =
                            self.pending.hold(stream, peer, listener, registry, now)
                        {
                            self.refuse_proxied(peer, detail, now);
                        }
                        continue;
                    }
                    if let Some(slot) = self.create_session(stream, peer, None, listener, now) {
                        touched.push(slot);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(pending) = self.accept_pending.get_mut(index) {
                        *pending = false;
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    log::error!("out of file descriptors; pausing accept: {e}");
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) => {
                    // ECONNABORTED and friends concern one connection, not the listener.
                    log::warn!("accept failed: {e}");
                }
            }
        }
        // Work may be left on this listener: it stays pending and is tried next turn.
    }

    /// The balancers of listener `index` when it takes the PROXY protocol: the current
    /// policy's for the listener's address (fails closed, with none, when a reloaded policy
    /// no longer names the address), else `None`.
    pub(super) fn proxy_from(
        &self,
        index: usize,
        listener: ListenerConfig,
    ) -> Option<&[crate::policy::Cidr]> {
        let address = self.listeners.get(index)?.1;
        match self.policy.listeners.iter().find(|l| l.address == address) {
            Some(l) if l.proxy_protocol => Some(&l.proxy_from),
            Some(_) => None,
            None if listener.proxy_protocol => Some(&[]),
            None => None,
        }
    }

    /// The connections that wait for their PROXY header: sessions for those whose header
    /// came, refusals for the rest. Dropped when the worker stops accepting.
    pub(super) fn pending_headers(&mut self, now: Instant, touched: &mut Vec<usize>) {
        if self.stopping_since.is_some() {
            if !self.pending.is_empty() {
                self.pending.clear(self.poll.registry());
            }
            return;
        }
        for outcome in self.pending.progress(self.poll.registry(), now) {
            match outcome {
                pending::Outcome::Ready {
                    stream,
                    client,
                    balancer,
                    listener,
                } => {
                    if let Some(slot) =
                        self.create_session(stream, client, Some(balancer), listener, now)
                    {
                        touched.push(slot);
                    }
                }
                pending::Outcome::Refused { peer, detail } => {
                    self.refuse_proxied(peer, detail, now)
                }
                pending::Outcome::HealthCheck { peer } => {
                    log::debug!("health check from balancer {peer}");
                }
            }
        }
    }

    /// Records a connection closed for the PROXY protocol, while the rate bound allows
    /// (the rest are counted, and the count goes into the next record).
    pub(super) fn refuse_proxied(&mut self, peer: SocketAddr, detail: String, now: Instant) {
        log::debug!("connection from {peer} closed: {detail}");
        let Some(unrecorded) = self.pending.record_refusal(now) else {
            return;
        };
        let detail = if unrecorded > 0 {
            format!("{detail} ({unrecorded} more refused before this one, not recorded)")
        } else {
            detail
        };
        self.session_counter += 1;
        let session = format!("{}-{:x}", self.session_prefix, self.session_counter);
        let client = peer.to_string();
        let context = crate::audit::AuditContext {
            session: &session,
            client: &client,
            user: None,
            user_hex: None,
        };
        let record = crate::audit::AuditRecord::PolicyViolation {
            kind: "proxy_protocol",
            detail,
        };
        self.services.audit.emit(&context, &record);
        self.services.metrics.observe(&record, None);
    }

    /// `via`: the balancer the connection came through (`peer` is then the client's real
    /// address, from its PROXY header).
    pub(super) fn create_session(
        &mut self,
        stream: mio::net::TcpStream,
        peer: SocketAddr,
        via: Option<SocketAddr>,
        listener: ListenerConfig,
        now: Instant,
    ) -> Option<usize> {
        if self.admin.draining {
            // `ftpgate drain`: a clear answer, and the balancer's check sees it.
            use std::io::Write;
            let mut stream = stream;
            let _ = stream.write(b"421 Service not available: this gateway is draining.\r\n");
            log::debug!("connection from {peer} refused: draining");
            return None;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot {
                    session: None,
                    generation: 0,
                });
                self.slots.len() - 1
            }
        };
        if slot >= MAX_SLOTS {
            return None;
        }
        self.session_counter += 1;
        let id = format!("{}-{:x}", self.session_prefix, self.session_counter);
        let generation = self.slots[slot].generation + 1;
        let mut ctx = self.services.ctx(self.poll.registry(), now);
        match Session::new(
            id,
            stream,
            peer,
            via,
            SessionKey { slot, generation },
            Rc::clone(&self.policy),
            listener,
            &mut ctx,
        ) {
            Ok(session) => {
                log::debug!("session {} from {peer}", session.describe());
                self.slots[slot] = Slot {
                    session: Some(session),
                    generation,
                };
                Some(slot)
            }
            Err(e) => {
                log::warn!("cannot start a session for {peer}: {e}");
                self.free.push(slot);
                None
            }
        }
    }
}
