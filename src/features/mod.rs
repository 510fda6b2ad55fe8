//! What ftpgate's `FEAT` answers before login, learned from the backends.
//!
//! Before `USER` the user, and so the backend pool, is unknown, but clients such as lftp read
//! `FEAT` once, right after connecting, and never again: a feature missing there (`MLST`
//! above all) is never used. So each worker asks every pool for its `FEAT` with a small probe
//! ([`probe`]) and advertises before login what **every** pool offers: the intersection of the
//! pools' sets, a pool not learned yet counting as the conservative [`STATIC_FEATURES`].
//!
//! The same connections are the pools' active health checks (`backends.NAME.health_check`):
//! a round of a pool with health checks comes every `interval` seconds, connects to each
//! server in turn, waits for the 220 greeting and, toward a TLS pool, completes the TLS
//! handshake (implicit: at connect; explicit: after `AUTH TLS`); it asks for `FEAT` only
//! when the feature schedule says so. The reactor's glue hands each health verdict to the
//! worker's `services::backends::BackendBook`.
//!
//! This module owns the pure part: parsing a `FEAT` reply into [`Feature`]s, keeping only the
//! extensions ftpgate relays ([`RELAYED_FEATURES`], never one of the control machine's
//! `FILTERED_FEATURES`), the intersection (fact lists such as `MLST type*;size*;` are
//! intersected fact by fact), and the [`FeatureBook`]: which server of which pool to probe
//! when, what each one answered, and the resulting lines. No I/O, no clock (`now` comes in as
//! an argument), no logging: the reactor's glue (`reactor::probes`) does those.

pub mod probe;

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::ftp::codes;
use crate::ftp::reply::Reply;
use crate::limits::{
    FEATURE_PROBE_INTERVAL, FEATURE_PROBE_RETRY, MAX_FEATURE_LINE, MAX_FEATURES, MAX_PROBED_POOLS,
};
use crate::policy::{HealthCheck, Policy, TlsMode};
use crate::session::control::FILTERED_FEATURES;

pub use probe::{FeatProbe, ProbeAction, ProbeError, ProbeEvent, ProbePlan, ProbeStep};

/// The backend features advertised before login for a pool whose `FEAT` is not known (not
/// probed yet, never answered, or beyond [`MAX_PROBED_POOLS`]): what ftpgate advertised for
/// every pool before it learned any. `MLST` is not among them: a client that believed it
/// would send `MLSD` to a backend that may not have it.
pub const STATIC_FEATURES: &[&str] = &["MDTM", "REST STREAM", "SIZE", "UTF8"];

/// The extensions ftpgate relays, by keyword: the only backend features advertised before
/// login. Others name commands ftpgate refuses (`PRET`, `IDLE`, `ESTA`, `ESTP`, `CLNT`,
/// `XCRC`...) or handles itself (`FILTERED_FEATURES`: TLS, `EPRT`/`EPSV`/`PASV`, `HOST`); a
/// client told about them before login would use them and fail. After login the backend's
/// own answer is relayed with only `FILTERED_FEATURES` removed, as before.
pub const RELAYED_FEATURES: &[&str] = &[
    "MDTM", "MFMT", "MLSD", "MLST", "REST", "SIZE", "TVFS", "UTF8",
];

/// Features whose parameter is a list of `;`-terminated items (RFC 3659 facts, `*` marking
/// the ones on by default): intersected item by item.
const LIST_FEATURES: &[&str] = &["MLST"];

/// One line of a `FEAT` reply, e.g. `MLST type*;size*;modify*;`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Feature {
    /// The feature label, upper-cased (`MLST`).
    pub keyword: String,
    /// The rest of the line, trimmed (`type*;size*;modify*;`); often empty.
    pub params: String,
}

impl Feature {
    /// Parses one feature line as a backend sends it (leading space, RFC 2389 §3.2).
    /// `None` for an empty line, one longer than [`MAX_FEATURE_LINE`], or one with bytes
    /// other than printable ASCII: such text is never shown to anyone before login.
    pub fn parse(line: &[u8]) -> Option<Feature> {
        if line.len() > MAX_FEATURE_LINE || !line.iter().all(|&b| (0x20..0x7f).contains(&b)) {
            return None;
        }
        let text = std::str::from_utf8(line).ok()?.trim();
        let (keyword, params) = text.split_once(' ').unwrap_or((text, ""));
        if keyword.is_empty() || !keyword.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        Some(Feature {
            keyword: keyword.to_ascii_uppercase(),
            params: params.trim().to_string(),
        })
    }

    /// The line as advertised: keyword, then the parameters after one space.
    pub fn line(&self) -> String {
        if self.params.is_empty() {
            self.keyword.clone()
        } else {
            format!("{} {}", self.keyword, self.params)
        }
    }
}

/// The features in a `FEAT` answer. `Some(empty)` for a server without `FEAT` (500 or 502,
/// RFC 2389 §3.2: it has no extensions) or with a single-line 211; `None` when the server
/// refused or failed (any other reply, 2xx other than 211 included): nothing was learned. Lines that [`Feature::parse`]
/// refuses are skipped; at most [`MAX_FEATURES`] are kept.
pub fn parse_feat_reply(reply: &Reply) -> Option<Vec<Feature>> {
    if reply.code == codes::SYNTAX_ERROR || reply.code == codes::NOT_IMPLEMENTED {
        return Some(Vec::new());
    }
    if reply.code != codes::SYSTEM_STATUS {
        return None;
    }
    let middle = reply.lines.len().saturating_sub(2);
    Some(
        reply
            .lines
            .iter()
            .skip(1)
            .take(middle)
            .filter_map(|line| Feature::parse(line))
            .take(MAX_FEATURES)
            .collect(),
    )
}

/// What of a server's features ftpgate may advertise before login: the relayed ones
/// ([`RELAYED_FEATURES`]), never a filtered one, without duplicates, sorted by keyword so
/// the answer does not depend on the order of the backends' lines.
pub fn advertised(features: Vec<Feature>) -> Vec<Feature> {
    let mut kept: Vec<Feature> = features
        .into_iter()
        .filter(|f| {
            RELAYED_FEATURES.contains(&f.keyword.as_str())
                && !FILTERED_FEATURES.contains(&f.keyword.as_str())
        })
        .collect();
    kept.sort();
    kept.dedup_by(|a, b| a.keyword == b.keyword && a.params.eq_ignore_ascii_case(&b.params));
    kept
}

/// The conservative set for a pool whose `FEAT` is not known ([`STATIC_FEATURES`]).
pub fn static_features() -> Vec<Feature> {
    STATIC_FEATURES
        .iter()
        .filter_map(|line| Feature::parse(line.as_bytes()))
        .collect()
}

/// The features both sets offer, in `a`'s order. Plain features must match in keyword and
/// parameters (`REST STREAM`, case-insensitively); list features ([`LIST_FEATURES`]: `MLST`)
/// keep the facts both name, spelled as in `a`, each marked `*` (on by default) only where
/// both mark it.
pub fn intersect(a: &[Feature], b: &[Feature]) -> Vec<Feature> {
    a.iter()
        .filter_map(|fa| {
            let mut same = b.iter().filter(|fb| fb.keyword == fa.keyword);
            if LIST_FEATURES.contains(&fa.keyword.as_str()) {
                let fb = same.next()?;
                return Some(Feature {
                    keyword: fa.keyword.clone(),
                    params: intersect_lists(&fa.params, &fb.params),
                });
            }
            same.any(|fb| fb.params.eq_ignore_ascii_case(&fa.params))
                .then(|| fa.clone())
        })
        .collect()
}

/// `type*;size*;modify*;` with `type;size*;perm*;` is `type;size*;`.
fn intersect_lists(a: &str, b: &str) -> String {
    let items = |list: &str| -> Vec<(String, bool)> {
        list.split(';')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| match item.strip_suffix('*') {
                Some(name) => (name.to_string(), true),
                None => (item.to_string(), false),
            })
            .collect()
    };
    let other = items(b);
    let mut out = String::new();
    for (name, on) in items(a) {
        if let Some((_, other_on)) = other.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            out.push_str(&name);
            if on && *other_on {
                out.push('*');
            }
            out.push(';');
        }
    }
    out
}

/// What every set offers ([`intersect`] over all of them). No set at all: the static list.
pub fn common<'a>(mut sets: impl Iterator<Item = &'a [Feature]>) -> Vec<Feature> {
    let Some(first) = sets.next() else {
        return static_features();
    };
    sets.fold(first.to_vec(), |acc, set| intersect(&acc, set))
}

/// One server of a pool, as far as its features go.
#[derive(Clone, Debug)]
struct ServerFeatures {
    addr: SocketAddr,
    /// What it advertised the last time it answered ([`advertised`] already applied);
    /// `None` until it answers once. A later failure keeps the last answer.
    learned: Option<Vec<Feature>>,
}

/// Where a pool is in its probing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    /// The next round starts at this instant.
    Waiting(Instant),
    /// A probe of `servers[server]` is out; `feat`: this round asks for `FEAT`; `failed`:
    /// a server of this round did not answer it.
    Probing {
        server: usize,
        feat: bool,
        failed: bool,
    },
    /// Beyond [`MAX_PROBED_POOLS`], or `feature_probe` and `health_check` both off: never
    /// probed, always the static list.
    Never,
}

/// One backend pool.
#[derive(Clone, Debug)]
struct PoolFeatures {
    name: String,
    tls: TlsMode,
    source: Option<IpAddr>,
    servers: Vec<ServerFeatures>,
    round: Round,
    feature_probe: bool,
    health: Option<HealthCheck>,
    /// When the next round asks for `FEAT`.
    feat_due: Instant,
}

impl PoolFeatures {
    /// The pool's features: what all of its servers that ever answered have in common
    /// (servers of one pool are meant to be replicas; one that never answered is taken to be
    /// like the others); the static list while none has answered.
    fn features(&self) -> Vec<Feature> {
        let mut learned = self.servers.iter().filter_map(|s| s.learned.as_deref());
        match learned.next() {
            None => static_features(),
            Some(first) => learned.fold(first.to_vec(), |acc, set| intersect(&acc, set)),
        }
    }
}

/// A probe the reactor should start: connect to `addr` (from `source`), then run a
/// [`FeatProbe`] on the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The pool's index in the book (and in the reactor's probe tokens).
    pub pool: usize,
    pub name: String,
    pub addr: SocketAddr,
    pub source: Option<IpAddr>,
    /// `Implicit`: TLS from the first byte. `Explicit` pools are probed in plain text,
    /// before `AUTH` (FEAT is public, RFC 2389 allows it before login), then upgraded with
    /// `AUTH TLS` when the probe is a health check.
    pub tls: TlsMode,
    /// What the conversation does: `FEAT` or not, `AUTH TLS` or not, each step's deadline.
    pub plan: ProbePlan,
    /// The verdict feeds the backend book (the pool has health checks).
    pub health: bool,
}

/// Every pool's learned features and probe schedule, and the lines ftpgate advertises before
/// login. At most one probe per pool is out at a time: the servers of a pool are probed one
/// after the other, a round every [`FEATURE_PROBE_INTERVAL`] seconds, or
/// [`FEATURE_PROBE_RETRY`] seconds after a round in which a server did not answer.
#[derive(Debug)]
pub struct FeatureBook {
    pools: Vec<PoolFeatures>,
    offered: Rc<[String]>,
    /// `offered` changed since the last [`FeatureBook::take_changed`].
    changed: bool,
}

impl FeatureBook {
    /// The pools of `policy`, all due for a first round at `now`.
    pub fn new(policy: &Policy, now: Instant) -> FeatureBook {
        let pools = policy
            .backends
            .values()
            .enumerate()
            .map(|(i, backend)| PoolFeatures {
                name: backend.name.clone(),
                tls: backend.tls,
                source: backend.source_address,
                servers: backend
                    .servers
                    .iter()
                    .map(|&addr| ServerFeatures {
                        addr,
                        learned: None,
                    })
                    .collect(),
                round: if i < MAX_PROBED_POOLS
                    && (backend.feature_probe || backend.health_check.is_some())
                {
                    Round::Waiting(now)
                } else {
                    Round::Never
                },
                feature_probe: backend.feature_probe,
                health: backend.health_check,
                feat_due: now,
            })
            .collect();
        let mut book = FeatureBook {
            pools,
            offered: Rc::from(Vec::new()),
            changed: false,
        };
        book.offered = book.compute();
        book
    }

    /// Keeps what `old` learned for the servers that are still there, in a pool of the same
    /// name and TLS mode (a policy reload): the answer before login stays what it was until
    /// new rounds say otherwise. A pool that did not change at all (servers, TLS mode, source
    /// address) keeps its schedule; the others, and those whose probe was out, are probed
    /// at once.
    pub fn carry_over(&mut self, old: &FeatureBook) {
        for pool in &mut self.pools {
            let Some(previous) = old
                .pools
                .iter()
                .find(|p| p.name == pool.name && p.tls == pool.tls)
            else {
                continue;
            };
            for server in &mut pool.servers {
                if let Some(known) = previous.servers.iter().find(|s| s.addr == server.addr) {
                    server.learned.clone_from(&known.learned);
                }
            }
            let same_servers = previous.servers.len() == pool.servers.len()
                && previous
                    .servers
                    .iter()
                    .zip(&pool.servers)
                    .all(|(a, b)| a.addr == b.addr);
            if let (Round::Waiting(_), Round::Waiting(at)) = (pool.round, previous.round) {
                if same_servers
                    && previous.source == pool.source
                    && previous.health == pool.health
                    && previous.feature_probe == pool.feature_probe
                {
                    pool.round = Round::Waiting(at);
                    pool.feat_due = previous.feat_due;
                }
            }
        }
        self.refresh();
    }

    /// The backend feature lines to advertise before login (ftpgate adds its own).
    pub fn offered(&self) -> &Rc<[String]> {
        &self.offered
    }

    /// The new lines, once, after they changed.
    pub fn take_changed(&mut self) -> Option<Rc<[String]>> {
        std::mem::take(&mut self.changed).then(|| Rc::clone(&self.offered))
    }

    /// Starts the rounds that are due: one probe per such pool.
    pub fn start_due(&mut self, now: Instant) -> Vec<ProbeTarget> {
        let mut targets = Vec::new();
        for i in 0..self.pools.len() {
            let Some(pool) = self.pools.get_mut(i) else {
                continue;
            };
            if matches!(pool.round, Round::Waiting(at) if at <= now) {
                if pool.servers.is_empty() {
                    pool.round = Round::Never;
                    continue;
                }
                pool.round = Round::Probing {
                    server: 0,
                    feat: pool.feature_probe && pool.feat_due <= now,
                    failed: false,
                };
                targets.extend(self.target(i));
            }
        }
        targets
    }

    /// Records the `FEAT` result of the probe out for `pool` (its current server) and
    /// returns the next server of the round to probe, if any. `Ok` carries the server's
    /// features as it sent them; `Err` keeps what it said last time.
    pub fn finish(
        &mut self,
        pool: usize,
        result: Result<Vec<Feature>, ProbeError>,
        now: Instant,
    ) -> Option<ProbeTarget> {
        self.finish_probe(pool, Some(result), now)
    }

    /// Records the end of the probe out for `pool`: `features` is its `FEAT` result when
    /// the round asked for one (`None` otherwise, or for a health check that did not ask).
    pub fn finish_probe(
        &mut self,
        pool: usize,
        features: Option<Result<Vec<Feature>, ProbeError>>,
        now: Instant,
    ) -> Option<ProbeTarget> {
        let entry = self.pools.get_mut(pool)?;
        let Round::Probing {
            server,
            feat,
            failed,
        } = entry.round
        else {
            return None;
        };
        let failed = match features {
            Some(Ok(features)) if feat => {
                if let Some(s) = entry.servers.get_mut(server) {
                    s.learned = Some(advertised(features));
                }
                failed
            }
            Some(Err(_)) if feat => true,
            _ => failed,
        };
        let next = server + 1;
        entry.round = if next < entry.servers.len() {
            Round::Probing {
                server: next,
                feat,
                failed,
            }
        } else {
            if feat {
                let wait = if failed {
                    FEATURE_PROBE_RETRY
                } else {
                    FEATURE_PROBE_INTERVAL
                };
                entry.feat_due = now + Duration::from_secs(wait);
            }
            let health = entry.health.map(|h| now + Duration::from_secs(h.interval));
            let feat_due = entry.feature_probe.then_some(entry.feat_due);
            match health.into_iter().chain(feat_due).min() {
                Some(at) => Round::Waiting(at),
                None => Round::Never,
            }
        };
        self.refresh();
        self.target(pool)
    }

    /// The probe `pool`'s round wants now, if it is probing.
    fn target(&self, pool: usize) -> Option<ProbeTarget> {
        let entry = self.pools.get(pool)?;
        let Round::Probing { server, feat, .. } = entry.round else {
            return None;
        };
        let addr = entry.servers.get(server)?.addr;
        let plan = match entry.health {
            Some(check) => ProbePlan {
                feat,
                auth_tls: entry.tls == TlsMode::Explicit,
                step_timeout: Duration::from_secs(check.timeout),
            },
            None => ProbePlan {
                feat,
                ..ProbePlan::feat_only()
            },
        };
        Some(ProbeTarget {
            pool,
            name: entry.name.clone(),
            addr,
            source: entry.source,
            tls: entry.tls,
            plan,
            health: entry.health.is_some(),
        })
    }

    /// When the next round is due (`None`: none waits, every pool is being probed or is
    /// never probed).
    pub fn next_round(&self) -> Option<Instant> {
        self.pools
            .iter()
            .filter_map(|p| match p.round {
                Round::Waiting(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// The name of pool `pool`, for the logs.
    pub fn pool_name(&self, pool: usize) -> &str {
        self.pools.get(pool).map_or("?", |p| p.name.as_str())
    }

    /// Whether any server of `pool` ever answered.
    pub fn is_learned(&self, pool: usize) -> bool {
        self.pools
            .get(pool)
            .is_some_and(|p| p.servers.iter().any(|s| s.learned.is_some()))
    }

    fn refresh(&mut self) {
        let offered = self.compute();
        if offered != self.offered {
            self.offered = offered;
            self.changed = true;
        }
    }

    fn compute(&self) -> Rc<[String]> {
        let sets: Vec<Vec<Feature>> = self.pools.iter().map(PoolFeatures::features).collect();
        let mut features = common(sets.iter().map(Vec::as_slice));
        features.sort();
        features.iter().map(Feature::line).collect()
    }
}

#[cfg(test)]
mod tests;
