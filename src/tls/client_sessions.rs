//! The TLS session store of one FTP session's connections toward its backend, over a store
//! the worker's sessions share.
//!
//! Data connections must resume their control connection's session (vsftpd's
//! `require_ssl_reuse`, ProFTPD's default): each FTP session keeps its own tickets, and only
//! its data connections use them. The control connection itself may resume a session an
//! earlier FTP session left toward the same backend (as HAProxy reuses its sessions toward
//! its servers): the backend then skips its certificate signature, ftpgate the certificate
//! check, and the handshake keeps its fresh (EC)DHE key exchange (rustls resumes TLS 1.3
//! with `psk_dhe_ke` only). Only TLS 1.3 tickets are shared; TLS 1.2 sessions stay with
//! their FTP session.
//!
//! rustls asks that a store return each ticket at most once, so each ticket lives in one
//! place: the first one a session receives (its control handshake's) stays with the session
//! for its data connections, every further one while the session still holds one goes to
//! the shared store for the next session's control connection, and what the session did not
//! use moves there when it ends (a backend such as OpenSSL sends two tickets after a full
//! handshake but one after a resumption: without the move every other session would find the
//! shared store empty). Both stores are bounded by rustls (8 tickets per server name,
//! [`SHARED_BACKEND_TLS_SERVERS`] names).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rustls::NamedGroup;
use rustls::client::Tls13ClientSessionValue;
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue};
use rustls::pki_types::ServerName;

use crate::limits::SHARED_BACKEND_TLS_SERVERS;

/// One FTP session's store (see the module).
#[derive(Debug)]
pub struct SessionStore {
    own: ClientSessionMemoryCache,
    /// Tickets in `own` (inserted minus taken; one server name per FTP session).
    own_tickets: AtomicUsize,
    shared: Arc<ClientSessionMemoryCache>,
    /// The first handshake (the control connection's) has asked for a session.
    asked: AtomicBool,
    /// The backend's name the tickets in `own` are for (one per FTP session).
    name: Mutex<Option<ServerName<'static>>>,
}

impl SessionStore {
    pub fn new(own_size: usize, shared: Arc<ClientSessionMemoryCache>) -> SessionStore {
        SessionStore {
            own: ClientSessionMemoryCache::new(own_size),
            own_tickets: AtomicUsize::new(0),
            shared,
            asked: AtomicBool::new(false),
            name: Mutex::new(None),
        }
    }

    /// A new shared store for one backend pool's sessions in one worker.
    pub fn shared() -> Arc<ClientSessionMemoryCache> {
        Arc::new(ClientSessionMemoryCache::new(SHARED_BACKEND_TLS_SERVERS))
    }
}

impl ClientSessionStore for SessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.shared.set_kx_hint(server_name.clone(), group);
        self.own.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.own
            .kx_hint(server_name)
            .or_else(|| self.shared.kx_hint(server_name))
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.own.set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.asked.store(true, Ordering::Relaxed);
        self.own.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.own.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        if self.own_tickets.load(Ordering::Relaxed) == 0 {
            self.own_tickets.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut name) = self.name.lock() {
                *name = Some(server_name.clone());
            }
            self.own.insert_tls13_ticket(server_name, value);
        } else {
            self.shared.insert_tls13_ticket(server_name, value);
        }
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let first = !self.asked.swap(true, Ordering::Relaxed);
        if let Some(ticket) = self.own.take_tls13_ticket(server_name) {
            let _ = self
                .own_tickets
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            return Some(ticket);
        }
        // Only the control connection resumes another FTP session's ticket: a data
        // connection must resume its own control session.
        if first {
            self.shared.take_tls13_ticket(server_name)
        } else {
            None
        }
    }
}

/// The tickets the FTP session did not use are left to the next sessions.
impl Drop for SessionStore {
    fn drop(&mut self) {
        let Some(name) = self.name.get_mut().ok().and_then(|n| n.take()) else {
            return;
        };
        while let Some(ticket) = self.own.take_tls13_ticket(&name) {
            self.shared.insert_tls13_ticket(name.clone(), ticket);
        }
    }
}
