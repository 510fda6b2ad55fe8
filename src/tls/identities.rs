//! Which certificate a client gets when the policy lists several (`tls.certificates`).
//!
//! An RSA-2048 signature costs ring about 0.5 ms on the machines this is measured on, an
//! ECDSA P-256 one about 0.013 ms, and every full handshake toward a client makes one. An
//! operator who lists an ECDSA certificate first and an RSA one after it gives every client
//! that accepts ECDSA the cheap handshake, and keeps the old clients that only know RSA
//! (HAProxy and nginx serve RSA and ECDSA side by side the same way).
//!
//! The choice is made per ClientHello, in the operator's order: the first certificate whose
//! key can make one of the signatures the client offered to verify. rustls has already
//! narrowed that offer to what the cipher suites in common allow (for TLS 1.2, an ECDHE-RSA
//! suite needs an RSA key; TLS 1.3 suites do not depend on the key), so a client that
//! offers ECDSA signatures but only ECDHE-RSA suites gets the RSA certificate. When none
//! fits, the first is given and rustls refuses the handshake with its usual alert, as with
//! a single certificate.

//!
//! Each control session gets a [`Remembered`] resolver over the shared list: it records which
//! certificate its control connection was given, for the audit trail's `tls` event (rustls
//! has no accessor for the certificate a connection sent). An operator reads there which
//! partners still need the RSA certificate before retiring it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::SignatureAlgorithm;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The policy's certificates, in its order of preference (never empty).
#[derive(Debug)]
pub(super) struct Identities {
    keys: Vec<Arc<CertifiedKey>>,
}

impl Identities {
    pub(super) fn new(keys: Vec<Arc<CertifiedKey>>) -> Self {
        Identities { keys }
    }

    /// The index of the certificate `hello` gets.
    fn choose(&self, hello: &ClientHello<'_>) -> usize {
        // With one certificate there is nothing to choose (and nothing to allocate:
        // `choose_scheme` boxes a signer).
        if self.keys.len() == 1 {
            return 0;
        }
        let offered = hello.signature_schemes();
        self.keys
            .iter()
            .position(|key| key.key.choose_scheme(offered).is_some())
            .unwrap_or(0)
    }

    /// The key algorithm of certificate `index`, as the audit trail names it.
    fn key_name(&self, index: usize) -> Option<&'static str> {
        let key = self.keys.get(index)?;
        Some(match key.key.algorithm() {
            SignatureAlgorithm::RSA => "RSA",
            SignatureAlgorithm::ECDSA => "ECDSA",
            SignatureAlgorithm::ED25519 => "Ed25519",
            SignatureAlgorithm::ED448 => "Ed448",
            _ => "other",
        })
    }
}

impl ResolvesServerCert for Identities {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let index = self.choose(&hello);
        self.keys.get(index).cloned()
    }
}

/// No certificate chosen yet.
const NONE: usize = usize::MAX;

/// One control connection's resolver: the shared list, and which certificate it gave.
#[derive(Debug)]
pub struct Remembered {
    identities: Arc<Identities>,
    chosen: AtomicUsize,
}

impl Remembered {
    pub(super) fn new(identities: Arc<Identities>) -> Self {
        Remembered {
            identities,
            chosen: AtomicUsize::new(NONE),
        }
    }

    /// The key algorithm ("RSA", "ECDSA", "Ed25519") of the certificate this connection was
    /// given; `None` before its ClientHello.
    pub fn key_name(&self) -> Option<&'static str> {
        self.identities
            .key_name(self.chosen.load(Ordering::Relaxed))
    }
}

impl ResolvesServerCert for Remembered {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let index = self.identities.choose(&hello);
        self.chosen.store(index, Ordering::Relaxed);
        self.identities.keys.get(index).cloned()
    }
}
