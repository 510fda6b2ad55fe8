//! The TLS events of a session's four connections (control and data, client and backend
//! sides): each finished handshake recorded once in the audit trail (a `tls` event), each
//! failed one counted once (`ftpgate_tls_handshake_failures_total`).

use super::*;

impl Session {
    /// Records each TLS handshake once it is done: which connection, the protocol version,
    /// the cipher suite, whether the session was resumed, the ALPN protocol, and on the
    /// client's control connection the key algorithm of the certificate it was given.
    pub(super) fn report_tls(&mut self, ctx: &mut WorkerCtx<'_>) {
        let mut records = Vec::new();
        let (client_data, server_data) = match self.sockets.relay.as_mut() {
            Some(r) => (Some(&mut r.client), Some(&mut r.server)),
            None => (self.sockets.client.as_mut(), self.sockets.server.as_mut()),
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
            count_tls_failure(&self.id, channel, side, conn, ctx);
            if conn.tls_reported {
                continue;
            }
            let Some(summary) = conn.tls.as_ref().and_then(|t| tls::summary(t)) else {
                continue;
            };
            conn.tls_reported = true;
            let certificate_key = match (channel, side) {
                ("control", "client") => self
                    .tls_config
                    .as_ref()
                    .and_then(|c| c.certificate.key_name()),
                _ => None,
            };
            records.push(AuditRecord::Tls {
                channel,
                side,
                version: summary.version,
                cipher: summary.cipher,
                resumed: summary.resumed,
                alpn: summary.alpn,
                certificate_key,
            });
        }
        for record in records {
            self.audit(ctx, &record);
        }
    }
}

/// Counts the failed TLS handshake of `conn` (once), on `channel` ("control", "data") toward
/// `side` ("client", "backend").
pub(super) fn count_tls_failure(
    id: &str,
    channel: &'static str,
    side: &'static str,
    conn: &mut Conn,
    ctx: &mut WorkerCtx<'_>,
) {
    if conn.take_handshake_failure() {
        log::info!("{id} TLS handshake failed ({channel} connection, {side} side)");
        ctx.metrics.observe_tls_failure(channel, side);
    }
}
