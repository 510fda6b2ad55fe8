//! `metrics`: the HTTP port of the Prometheus metrics, on a loopback address only (the
//! metrics are not authenticated; a Prometheus elsewhere reaches them through a tunnel or a
//! node exporter's textfile collector fed by `ftpgate metrics`).

use std::net::SocketAddr;

use super::Checker;
use crate::policy::file::MetricsFile;
use crate::policy::locate::JsonPath;

impl Checker<'_> {
    pub(super) fn metrics(
        &mut self,
        raw: Option<&MetricsFile>,
        path: &JsonPath,
    ) -> Option<SocketAddr> {
        let text = raw?.listen.as_deref()?;
        let at = path.key("listen");
        let address = self.socket_addr(text, &at, "\"127.0.0.1:9464\"")?;
        if !address.ip().is_loopback() {
            self.bad(
                &at,
                format!(
                    "{text:?}: the metrics port must be on a loopback address \
                     (127.0.0.0/8 or ::1): it has no authentication"
                ),
            );
            return None;
        }
        Some(address)
    }
}
