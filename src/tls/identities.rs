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

use std::sync::Arc;

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
}

impl ResolvesServerCert for Identities {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // With one certificate there is nothing to choose (and nothing to allocate:
        // `choose_scheme` boxes a signer).
        if self.keys.len() == 1 {
            return self.keys.first().cloned();
        }
        let offered = hello.signature_schemes();
        self.keys
            .iter()
            .find(|key| key.key.choose_scheme(offered).is_some())
            .or(self.keys.first())
            .cloned()
    }
}
