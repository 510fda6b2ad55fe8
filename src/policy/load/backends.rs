//! `backends`: the pools of backend servers (addresses, balance, the source address toward
//! them, TLS toward them with its certificate checks, the FEAT probe).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use crate::limits::DEFAULT_FEATURE_PROBE;
use crate::policy::file::{BackendFile, HealthCheckFile, Object};
use crate::policy::locate::JsonPath;
use crate::policy::{Backend, BackendTls, Balance, HealthCheck, TlsMode};

use super::checker::Checker;

impl Checker<'_> {
    pub(super) fn backends(
        &mut self,
        raw: Option<&BTreeMap<String, Object<BackendFile>>>,
        path: &JsonPath,
    ) -> BTreeMap<String, Backend> {
        let mut backends = BTreeMap::new();
        for (name, Object(raw)) in raw.into_iter().flatten() {
            let path = path.key(name);
            self.name(&path, name, "backend");
            let mut servers: Vec<SocketAddr> = Vec::new();
            let mut seen: HashSet<SocketAddr> = HashSet::new();
            match &raw.servers {
                None => self.missing(&path, "servers", " (e.g. [\"10.0.0.11:21\"])"),
                Some(list) if list.is_empty() => {
                    self.bad(&path.key("servers"), "at least one server is required")
                }
                Some(list) => {
                    for (i, text) in list.iter().enumerate() {
                        let path = path.key("servers").index(i);
                        let Some(server) = self.socket_addr(text, &path, "\"10.0.0.11:21\"") else {
                            continue;
                        };
                        if !seen.insert(server) {
                            self.bad(&path, format!("{server} is listed twice"));
                        }
                        servers.push(server);
                    }
                }
            }
            let balance = self.choice(
                raw.balance.as_ref(),
                &path.key("balance"),
                Balance::SPELLINGS,
            );
            let tls = self.choice(raw.tls.as_ref(), &path.key("tls"), TlsMode::SPELLINGS);
            let source_address = raw.source_address.as_ref().and_then(|text| {
                let path = path.key("source_address");
                let ip = self.ip(text, &path)?;
                if ip.is_unspecified() {
                    self.bad(
                        &path,
                        format!("{ip} pins nothing; leave source_address out"),
                    );
                    return None;
                }
                if let Some(server) = servers.iter().find(|s| s.is_ipv4() != ip.is_ipv4()) {
                    self.bad(
                        &path,
                        format!("{ip} cannot reach {server}: the address families differ"),
                    );
                }
                Some(ip)
            });
            let tls_settings = BackendTls {
                ca_file: raw
                    .ca_file
                    .as_ref()
                    .and_then(|t| self.absolute_path(t, &path.key("ca_file"))),
                pinned_certificate: raw
                    .pinned_certificate
                    .as_ref()
                    .and_then(|t| self.absolute_path(t, &path.key("pinned_certificate"))),
                client_certificate: raw
                    .client_certificate
                    .as_ref()
                    .and_then(|t| self.absolute_path(t, &path.key("client_certificate"))),
                client_key: raw
                    .client_key
                    .as_ref()
                    .and_then(|t| self.absolute_path(t, &path.key("client_key"))),
                server_name: raw.server_name.clone(),
            };
            if raw.client_certificate.is_some() != raw.client_key.is_some() {
                let key = if raw.client_certificate.is_some() {
                    "client_key"
                } else {
                    "client_certificate"
                };
                self.missing(
                    &path,
                    key,
                    " (client_certificate and client_key go together)",
                );
            }
            let tls_on = tls.is_some_and(|t| t != TlsMode::None);
            if !tls_on && tls_settings != BackendTls::default() {
                self.bad(
                    &path,
                    "ca_file, pinned_certificate, client_certificate, client_key and server_name need \"tls\": \"explicit\" or \"implicit\"",
                );
            }
            backends.insert(
                name.clone(),
                Backend {
                    name: name.clone(),
                    servers,
                    balance: balance.unwrap_or_default(),
                    tls: tls.unwrap_or_default(),
                    source_address,
                    tls_settings,
                    feature_probe: raw.feature_probe.unwrap_or(DEFAULT_FEATURE_PROBE),
                    health_check: self.health_check(raw.health_check.as_ref(), &path),
                    verify_uploads: raw.verify_uploads.unwrap_or(false),
                },
            );
        }
        backends
    }

    /// `health_check`: on with the defaults unless it is `false`.
    fn health_check(
        &mut self,
        raw: Option<&HealthCheckFile>,
        path: &JsonPath,
    ) -> Option<HealthCheck> {
        let path = path.key("health_check");
        let mut check = HealthCheck::default();
        match raw {
            None | Some(HealthCheckFile::Toggle(true)) => {}
            Some(HealthCheckFile::Toggle(false)) => return None,
            Some(HealthCheckFile::Settings(settings)) => {
                if let Some(value) = &settings.interval {
                    check.interval = self
                        .seconds(value, &path.key("interval"))
                        .unwrap_or(check.interval);
                }
                if let Some(value) = &settings.timeout {
                    check.timeout = self
                        .seconds(value, &path.key("timeout"))
                        .unwrap_or(check.timeout);
                }
            }
        }
        Some(check)
    }
}
