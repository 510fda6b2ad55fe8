//! `workers`, `drain_timeout`, `user`, `listeners`, `passive` and `tls`: what ftpgate listens on, the passive ports
//! it hands out, the certificate of client-side FTPS, and what these say about each other
//! (a TLS listener needs the certificate, a global TLS requirement needs TLS listeners,
//! passive ports are not listener ports, each worker needs a passive port).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::limits::{
    DEFAULT_DRAIN_TIMEOUT_SECONDS, DEFAULT_PASSIVE_PORTS, DEFAULT_RUN_AS,
    MAX_DRAIN_TIMEOUT_SECONDS, MAX_LISTENERS, MAX_TLS_CERTIFICATES, MAX_WORKERS,
};
use crate::policy::file::{AdvertiseFile, ListenerFile, Object, PassiveFile, Scalar, TlsFile};
use crate::policy::locate::JsonPath;
use crate::policy::{
    AdvertiseRule, Cidr, Listener, Passive, TlsIdentity, TlsMode, TlsPolicy, TlsRequire, Workers,
};

use super::checker::Checker;

impl Checker<'_> {
    /// `drain_timeout`: seconds, at most [`MAX_DRAIN_TIMEOUT_SECONDS`].
    pub(super) fn drain_timeout(&mut self, value: Option<&Scalar>, path: &JsonPath) -> u64 {
        let Some(value) = value else {
            return DEFAULT_DRAIN_TIMEOUT_SECONDS;
        };
        match self.seconds(value, path) {
            Some(n) if n > MAX_DRAIN_TIMEOUT_SECONDS => {
                self.bad(
                    path,
                    format!("{n} is too long; the most is {MAX_DRAIN_TIMEOUT_SECONDS} seconds"),
                );
                DEFAULT_DRAIN_TIMEOUT_SECONDS
            }
            Some(n) => n,
            None => DEFAULT_DRAIN_TIMEOUT_SECONDS,
        }
    }

    /// `user`: an account name as `useradd` takes it (at most 32 characters: letters,
    /// digits, `_`, `-`, `.`, not starting with a digit, `-` or `.`).
    pub(super) fn run_as(&mut self, value: Option<&str>, path: &JsonPath) -> String {
        let Some(name) = value else {
            return DEFAULT_RUN_AS.to_owned();
        };
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !valid {
            self.bad(
                path,
                format!(
                    "{name:?} is not an account name (letters, digits, _ - and ., at most 32, \
                     starting with a letter or _)"
                ),
            );
            return DEFAULT_RUN_AS.to_owned();
        }
        name.to_owned()
    }

    pub(super) fn workers(&mut self, value: Option<&Scalar>, path: &JsonPath) -> Workers {
        match value {
            None => Workers::Auto,
            Some(Scalar::Text(text)) if text == "auto" => Workers::Auto,
            Some(Scalar::Unsigned(n)) if (1..=MAX_WORKERS as u64).contains(n) => {
                usize::try_from(*n).map_or(Workers::Auto, Workers::Count)
            }
            Some(_) => {
                self.bad(
                    path,
                    format!(
                        "must be \"auto\" or a number of worker processes from 1 to {MAX_WORKERS}"
                    ),
                );
                Workers::Auto
            }
        }
    }

    /// `have_certificate`: the file has a `tls` section, which TLS listeners need.
    pub(super) fn listeners(
        &mut self,
        raw: Option<&[Object<ListenerFile>]>,
        path: &JsonPath,
        have_certificate: bool,
    ) -> Vec<Listener> {
        let mut listeners: Vec<Listener> = Vec::new();
        let Some(raw) = raw.filter(|list| !list.is_empty()) else {
            self.bad(
                path,
                "at least one listener is required, e.g. [{ \"address\": \"0.0.0.0:21\" }]",
            );
            return listeners;
        };
        if raw.len() > MAX_LISTENERS {
            self.bad(path, format!("at most {MAX_LISTENERS} listeners"));
        }
        let mut seen: HashMap<SocketAddr, usize> = HashMap::new();
        for (i, Object(listener)) in raw.iter().enumerate() {
            let path = path.index(i);
            let tls = self.choice(listener.tls.as_ref(), &path.key("tls"), TlsMode::SPELLINGS);
            let require = self.choice(
                listener.require.as_ref(),
                &path.key("require"),
                TlsRequire::SPELLINGS,
            );
            if tls.is_some_and(|t| t != TlsMode::None) && !have_certificate {
                self.bad(
                    &path.key("tls"),
                    format!(
                        "{:?} needs the \"tls\" section (certificate and private_key)",
                        tls.unwrap_or_default().name()
                    ),
                );
            }
            let plain = listener.tls.is_none() || tls == Some(TlsMode::None);
            if plain && require.is_some_and(|r| r != TlsRequire::None) {
                self.bad(
                    &path.key("require"),
                    "requires TLS, but this listener has \"tls\": \"none\"",
                );
            }
            let Some(text) = &listener.address else {
                self.missing(&path, "address", " (e.g. \"0.0.0.0:21\")");
                continue;
            };
            let address_path = path.key("address");
            let Some(address) = self.socket_addr(text, &address_path, "\"0.0.0.0:21\"") else {
                continue;
            };
            if let Some(first) = seen.get(&address) {
                self.bad(
                    &address_path,
                    format!("{address} is already used by listeners[{first}]"),
                );
            }
            seen.entry(address).or_insert(i);
            let proxy_protocol = listener.proxy_protocol.unwrap_or(false);
            let proxy_from = self.proxy_from(
                proxy_protocol,
                listener.proxy_from.as_deref(),
                &path,
                "the load balancers' addresses, e.g. [\"10.0.0.5/32\"]",
            );
            listeners.push(Listener {
                address,
                tls: tls.unwrap_or_default(),
                require: require.unwrap_or_default(),
                proxy_protocol,
                proxy_from,
            });
        }
        listeners
    }

    /// `proxy_from` of an object whose `proxy_protocol` is `on`: required and not empty
    /// then (SECURITY: a header from anyone would let anyone claim any address), refused
    /// otherwise (it would do nothing).
    fn proxy_from(
        &mut self,
        on: bool,
        raw: Option<&[String]>,
        path: &JsonPath,
        example: &str,
    ) -> Vec<Cidr> {
        let key = path.key("proxy_from");
        match (on, raw) {
            (true, None) => {
                self.bad(
                    &path.key("proxy_protocol"),
                    format!("needs \"proxy_from\": {example}"),
                );
                Vec::new()
            }
            (true, Some([])) => {
                self.bad(&key, format!("must name at least one network: {example}"));
                Vec::new()
            }
            (true, Some(list)) => self.cidrs(Some(list), &key),
            (false, Some(_)) => {
                self.bad_key(&key, "only applies with \"proxy_protocol\": true");
                Vec::new()
            }
            (false, None) => Vec::new(),
        }
    }

    pub(super) fn ports_against_listeners(&mut self, passive: &Passive, listeners: &[Listener]) {
        let (first, last) = passive.ports;
        for listener in listeners {
            if (first..=last).contains(&listener.address.port()) {
                self.bad(
                    &JsonPath::root().key("passive").key("ports"),
                    format!(
                        "the range contains the port of listener {}",
                        listener.address
                    ),
                );
            }
        }
    }

    /// Each worker gets its own slice of the passive ports, so there can be no more workers
    /// than ports.
    pub(super) fn workers_against_ports(&mut self, workers: Workers, passive: &Passive) {
        if let Workers::Count(count) = workers {
            let (first, last) = passive.ports;
            let ports = usize::from(last.saturating_sub(first)) + 1;
            if count > ports {
                self.bad(
                    &JsonPath::root().key("workers"),
                    format!(
                        "{count} workers cannot share the {ports} passive ports of \
                         passive.ports: each worker needs at least one"
                    ),
                );
            }
        }
    }

    /// `listeners`: the validated listeners, whose balancers `passive.proxy_protocol`
    /// trusts when `passive.proxy_from` names none.
    pub(super) fn passive(
        &mut self,
        raw: Option<&PassiveFile>,
        path: &JsonPath,
        listeners: &[Listener],
    ) -> Passive {
        let mut passive = Passive {
            ports: DEFAULT_PASSIVE_PORTS,
            advertise: None,
            advertise_by_network: Vec::new(),
            proxy_from: Vec::new(),
            shared: false,
        };
        let Some(raw) = raw else {
            return passive;
        };
        passive.shared = raw.shared.unwrap_or(false);
        if passive.shared && raw.proxy_protocol.unwrap_or(false) {
            // Behind a balancer every data connection comes from the balancer's address:
            // a shared port could tell its sessions apart only after each PROXY header,
            // which the port's owner (the worker, not a session) does not read.
            self.bad(
                &path.key("shared"),
                "cannot be combined with \"proxy_protocol\": true (data connections through \
                 a balancer all come from its address; a shared port tells sessions apart by \
                 the client's address)",
            );
        }
        let proxy_protocol = raw.proxy_protocol.unwrap_or(false);
        let balancers: Vec<Cidr> = listeners
            .iter()
            .flat_map(|l| l.proxy_from.iter().copied())
            .collect();
        passive.proxy_from = match (proxy_protocol, raw.proxy_from.as_deref()) {
            // The control listeners' balancers carry the data connections too.
            (true, None) if !balancers.is_empty() => balancers,
            (on, list) => self.proxy_from(
                on,
                list,
                path,
                "the balancers that forward the passive ports (none of the listeners has \
                 \"proxy_protocol\" to borrow them from)",
            ),
        };
        if let Some(text) = &raw.ports {
            if let Some(ports) = self.port_range(text, &path.key("ports")) {
                passive.ports = ports;
            }
        }
        match &raw.advertise {
            None => {}
            Some(AdvertiseFile::One(text)) => {
                passive.advertise = self.advertised(text, &path.key("advertise"));
            }
            Some(AdvertiseFile::ByNetwork(rules)) => {
                let path = path.key("advertise");
                for (i, rule) in rules.iter().enumerate() {
                    let at = path.index(i);
                    let address = rule
                        .address
                        .as_deref()
                        .and_then(|text| self.advertised(text, &at.key("address")));
                    match &rule.from {
                        None if i + 1 < rules.len() => self.bad(
                            &at,
                            "a rule without \"from\" takes every client: it must be the \
                             last one (the rules after it would never match)",
                        ),
                        None => passive.advertise = address,
                        Some(list) => {
                            let from = self.cidrs(Some(list), &at.key("from"));
                            if list.is_empty() {
                                self.bad(&at.key("from"), "names no network");
                            }
                            passive
                                .advertise_by_network
                                .push(AdvertiseRule { from, address });
                        }
                    }
                }
            }
        }
        passive
    }

    /// An address for 227 replies: IPv4, not 0.0.0.0.
    fn advertised(&mut self, text: &str, path: &JsonPath) -> Option<IpAddr> {
        match self.ip(text, path) {
            Some(IpAddr::V4(v4)) if v4.is_unspecified() => {
                self.bad(
                    path,
                    "0.0.0.0 cannot be advertised; name the address clients connect to",
                );
                None
            }
            Some(IpAddr::V6(_)) => {
                self.bad(
                    path,
                    "must be an IPv4 address: it only goes into 227 replies to PASV \
                     (EPSV replies carry no address)",
                );
                None
            }
            other => other,
        }
    }

    fn port_range(&mut self, text: &str, path: &JsonPath) -> Option<(u16, u16)> {
        let number = |s: &str| {
            let s = s.trim_matches(' ');
            if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<u32>().ok()
        };
        // "FIRST-LAST", or one port ("50000": the single data port of `shared`).
        let range = match text.split_once('-') {
            Some((first, last)) => number(first).zip(number(last)),
            None => number(text).map(|port| (port, port)),
        };
        let Some((first, last)) = range else {
            self.bad(
                path,
                format!(
                    "{text:?} is not a port range; write \"FIRST-LAST\", e.g. \"50000-50999\", \
                     or one port"
                ),
            );
            return None;
        };
        let (Ok(first), Ok(last)) = (u16::try_from(first), u16::try_from(last)) else {
            self.bad(path, format!("{text:?}: ports go from 1024 to 65535"));
            return None;
        };
        if first < 1024 {
            self.bad(
                path,
                format!("{text:?}: passive ports must be 1024 or higher (no privileged ports)"),
            );
            return None;
        }
        if first > last {
            self.bad(
                path,
                format!("{text:?}: the first port is higher than the last"),
            );
            return None;
        }
        Some((first, last))
    }

    /// `tls`: one `certificate`/`private_key` pair, or a `certificates` list of them in the
    /// order of preference, never both.
    pub(super) fn tls(&mut self, raw: &TlsFile, path: &JsonPath) -> Option<TlsPolicy> {
        let require = self.choice(
            raw.require.as_ref(),
            &path.key("require"),
            TlsRequire::SPELLINGS,
        );
        let Some(list) = &raw.certificates else {
            let identity = self.tls_identity(&raw.certificate, &raw.private_key, path);
            return Some(TlsPolicy {
                identities: vec![identity?],
                listed: false,
                require: require.unwrap_or_default(),
            });
        };
        let list_path = path.key("certificates");
        if raw.certificate.is_some() || raw.private_key.is_some() {
            self.bad(
                &list_path,
                "give either \"certificate\" and \"private_key\" or \"certificates\", \
                 not both",
            );
        }
        if list.is_empty() {
            self.bad(&list_path, "needs at least one certificate and key");
        } else if list.len() > MAX_TLS_CERTIFICATES {
            self.bad(
                &list_path,
                format!(
                    "at most {MAX_TLS_CERTIFICATES} certificates (one per key type is all a \
                     client ever chooses from)"
                ),
            );
        }
        let mut identities = Vec::with_capacity(list.len());
        for (i, Object(entry)) in list.iter().enumerate() {
            let at = list_path.index(i);
            identities.push(self.tls_identity(&entry.certificate, &entry.private_key, &at));
        }
        Some(TlsPolicy {
            identities: identities.into_iter().collect::<Option<Vec<_>>>()?,
            listed: true,
            require: require.unwrap_or_default(),
        })
    }

    fn tls_identity(
        &mut self,
        certificate: &Option<String>,
        private_key: &Option<String>,
        path: &JsonPath,
    ) -> Option<TlsIdentity> {
        let certificate = self.required_path(certificate.as_ref(), path, "certificate");
        let private_key = self.required_path(private_key.as_ref(), path, "private_key");
        Some(TlsIdentity {
            certificate: certificate?,
            private_key: private_key?,
        })
    }

    /// A global TLS requirement would lock everyone out of a plain listener (AUTH gets
    /// 502 there): refuse the combination rather than serve a listener nobody can use.
    pub(super) fn tls_against_listeners(&mut self, tls: &TlsPolicy, listeners: &[Listener]) {
        if tls.require != TlsRequire::None {
            for (i, listener) in listeners.iter().enumerate() {
                if listener.tls == TlsMode::None {
                    self.bad(
                        &JsonPath::root().key("tls").key("require"),
                        format!(
                            "{:?} also applies to listeners[{i}] ({}), which has no TLS: \
                             nobody could log in there; put \"require\" on the TLS \
                             listeners instead",
                            tls.require.name(),
                            listener.address
                        ),
                    );
                }
            }
        }
    }
}
