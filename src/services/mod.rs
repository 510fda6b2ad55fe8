//! What a worker lends its sessions, and how it finds them again: the services that belong
//! to the worker, not to one session (passive ports, the backend book, rate buckets,
//! sockets as ftpgate sets them up), [`WorkerCtx`], the loan of all of them for one call,
//! and the token of a session's socket (slot, generation, role).
//!
//! The reactor owns the services and knows sessions only through `session::Session`'s
//! public API; sessions know the reactor only through [`WorkerCtx`].

pub mod backends;
pub mod passive;
pub mod rate;
pub mod shared_passive;
pub mod sockets;
pub mod token;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use mio::Registry;

use crate::audit::AuditSink;
use crate::counters::SharedCounters;
use crate::filecopy::FileCopier;
use crate::reactor::pool::BufferPool;
use crate::reactor::timer::TimerHeap;
use crate::tls;
use backends::BackendBook;
use passive::PassivePorts;
use rate::TokenBucket;

/// Everything of the worker a session needs while it runs, lent for one call.
pub struct WorkerCtx<'a> {
    pub registry: &'a Registry,
    pub timers: &'a mut TimerHeap,
    pub pool: &'a BufferPool,
    pub audit: &'a mut AuditSink,
    /// Counted from the audit events (`ftpgate metrics`).
    pub metrics: &'a mut crate::metrics::Metrics,
    pub passive: &'a mut PassivePorts,
    pub backends: &'a mut BackendBook,
    pub counters: &'a SharedCounters,
    /// Rate buckets shared by all sessions of a user in this worker.
    pub user_buckets: &'a mut HashMap<String, Rc<RefCell<TokenBucket>>>,
    /// TLS toward clients, when the policy configures it.
    pub tls: Option<&'a tls::TlsServer>,
    /// TLS toward each backend pool that uses it, by backend name.
    pub backend_tls: &'a HashMap<String, tls::TlsClient>,
    /// The filecopy writer of this worker, once a policy asked for filecopy.
    pub copier: Option<&'a FileCopier>,
    /// The backend features `FEAT` advertises before login (`features::FeatureBook`).
    pub features: &'a Rc<[String]>,
    pub now: Instant,
}

/// Where a session lives in the reactor's slab: its slot and the slot's generation.
#[derive(Clone, Copy, Debug)]
pub struct SessionKey {
    pub slot: usize,
    pub generation: u64,
}

/// What a session needs to know of the listener that accepted it.
#[derive(Clone, Copy, Debug)]
pub struct ListenerConfig {
    pub tls: crate::policy::TlsMode,
    pub require: crate::policy::TlsRequire,
    /// Connections carry a PROXY header first (the balancers are the policy's
    /// `proxy_from` for this listener's address).
    pub proxy_protocol: bool,
}
