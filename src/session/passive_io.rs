//! The passive side of a data channel: the listener a PASV/EPSV opens (a port of its own,
//! or the worker's shared port with `passive.shared`), the connections accepted there, the
//! PROXY headers of those that come through a balancer (`passive.proxy_protocol`), and what
//! the data machine's verdict on each connection means for the sockets. The rest of the
//! data channel's I/O (connects, TLS, the relay) is `data_io.rs`'s.

use super::data::{Acceptance, Input};
use super::*;
use crate::limits::MAX_PENDING_DATA_PROXY_HEADERS;

impl Session {
    pub(super) fn open_passive(&mut self, ctx: &mut WorkerCtx<'_>) {
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
    pub(super) fn join_shared_port(&mut self, ctx: &mut WorkerCtx<'_>) {
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

    pub(super) fn close_listener(&mut self, ctx: &mut WorkerCtx<'_>) {
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

    /// Performs the data machine's verdict on a connection to the passive port.
    pub(super) fn on_acceptance(
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
    pub(super) fn progress_proxied(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
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
