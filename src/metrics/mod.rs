//! Metrics in the Prometheus text format (`ftpgate metrics`, the admin socket's `metrics`).
//!
//! Counted from the audit trail's own events ([`Metrics::observe`]): every number here is
//! the count of something the audit trail recorded, so the two cannot disagree. Gauges
//! (sessions by user and backend, passive ports in use) are read off the worker when asked
//! ([`Metrics::snapshot`] takes them as [`Gauges`]).
//!
//! Each worker keeps its own; a snapshot is a list of samples, and the samples of several
//! workers add up by name and labels (histogram buckets, sums and counts too), which is
//! what [`merge`] does before [`render`] prints the text format. Label values come from the
//! policy (backend names, known users) or from ftpgate's own fixed words, never from what a
//! client sends; their number is bounded by [`MAX_METRIC_SERIES`] per worker all the same
//! (a series beyond it is counted under the label value `other`).
//!
//! Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::limits::MAX_METRIC_SERIES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "ftpgate_sessions_started_total",
        kind: Kind::Counter,
        help: "Client connections admitted to a session (session_start events).",
    },
    Family {
        name: "ftpgate_sessions_ended_total",
        kind: Kind::Counter,
        help: "Sessions ended, by reason (session_end events).",
    },
    Family {
        name: "ftpgate_sessions",
        kind: Kind::Gauge,
        help: "Live sessions, by user and backend pool (empty before login).",
    },
    Family {
        name: "ftpgate_logins_total",
        kind: Kind::Counter,
        help: "Logins, by result and backend pool.",
    },
    Family {
        name: "ftpgate_commands_total",
        kind: Kind::Counter,
        help: "Commands recorded, by decision (allow, deny).",
    },
    Family {
        name: "ftpgate_refusals_total",
        kind: Kind::Counter,
        help: "Policy violations refused, by kind (policy_violation events).",
    },
    Family {
        name: "ftpgate_policy_exceptions_total",
        kind: Kind::Counter,
        help: "Exceptions the policy allowed for a user, by kind.",
    },
    Family {
        name: "ftpgate_transfers_total",
        kind: Kind::Counter,
        help: "Transfers, by direction and result.",
    },
    Family {
        name: "ftpgate_transfer_bytes_total",
        kind: Kind::Counter,
        help: "Bytes of file data relayed, by direction.",
    },
    Family {
        name: "ftpgate_transfer_duration_seconds",
        kind: Kind::Histogram,
        help: "Duration of transfers, by direction.",
    },
    Family {
        name: "ftpgate_command_duration_seconds",
        kind: Kind::Histogram,
        help: "Time from a command's arrival to its final reply, commands recorded in the audit trail.",
    },
    Family {
        name: "ftpgate_tls_handshakes_total",
        kind: Kind::Counter,
        help: "TLS handshakes completed, by channel, side and resumption.",
    },
    Family {
        name: "ftpgate_tls_client_certificates_total",
        kind: Kind::Counter,
        help: "Certificates given to clients on control connections, by key algorithm (tls.certificates).",
    },
    Family {
        name: "ftpgate_tls_handshake_failures_total",
        kind: Kind::Counter,
        help: "TLS handshakes that failed (an error, or the peer's end, before they finished), by channel and side.",
    },
    Family {
        name: "ftpgate_data_connection_failures_total",
        kind: Kind::Counter,
        help: "Data connections that failed, by cause.",
    },
    Family {
        name: "ftpgate_passive_ports_in_use",
        kind: Kind::Gauge,
        help: "Passive ports held by sessions.",
    },
    Family {
        name: "ftpgate_passive_ports",
        kind: Kind::Gauge,
        help: "Passive ports the workers may use.",
    },
    Family {
        name: "ftpgate_passive_ports_exhausted_total",
        kind: Kind::Counter,
        help: "Passive port requests refused because every port was in use.",
    },
    Family {
        name: "ftpgate_audit_lost_events_total",
        kind: Kind::Counter,
        help: "Audit events a sink failed to write.",
    },
    Family {
        name: "ftpgate_metrics_workers_missing",
        kind: Kind::Gauge,
        help: "Workers whose numbers this answer of the metrics port lacks (no answer in time).",
    },
    Family {
        name: "ftpgate_draining",
        kind: Kind::Gauge,
        help: "Workers draining (ftpgate drain).",
    },
];

/// Upper bounds of the transfer duration buckets, in seconds.
const TRANSFER_BUCKETS: &[f64] = &[
    0.01, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0, 21600.0,
];
/// Upper bounds of the command duration buckets (a command's arrival to its final reply
/// leaving for the client), in seconds.
const COMMAND_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 5.0, 30.0,
];

/// The bucket bounds of a histogram family.
fn buckets_of(name: &str) -> &'static [f64] {
    if name == "ftpgate_command_duration_seconds" {
        COMMAND_BUCKETS
    } else {
        TRANSFER_BUCKETS
    }
}

type Labels = Vec<(&'static str, String)>;

/// Label values as an event gives them (borrowed: looking a series up allocates nothing).
type LabelRefs<'a> = [(&'static str, &'a str)];

/// Whether the stored `labels` are `wanted`.
fn same(labels: &Labels, wanted: &LabelRefs<'_>) -> bool {
    labels.len() == wanted.len()
        && labels
            .iter()
            .zip(wanted)
            .all(|((k, v), (k2, v2))| k == k2 && v == v2)
}

fn owned_labels(wanted: &LabelRefs<'_>) -> Labels {
    wanted.iter().map(|&(k, v)| (k, v.to_owned())).collect()
}

/// The `other` series of a family whose labels are `wanted`'s names.
fn other_labels(wanted: &LabelRefs<'_>) -> Labels {
    wanted
        .iter()
        .map(|&(k, _)| (k, "other".to_owned()))
        .collect()
}

/// Whether the stored `labels` are the `other` series for `wanted`'s names.
fn is_other_of(labels: &Labels, wanted: &LabelRefs<'_>) -> bool {
    labels.len() == wanted.len()
        && labels
            .iter()
            .zip(wanted)
            .all(|((k, v), (k2, _))| k == k2 && v == "other")
}

#[derive(Clone, Debug, Default)]
struct Histogram {
    /// One count per bound of [`buckets_of`] the family.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// One worker's counters and histograms: by family, its series in the order they first
/// appeared. A family has a handful of series (its label values are ftpgate's own words
/// and the policy's backend names; [`MAX_METRIC_SERIES`] in all), so a series is found by
/// a short scan that borrows the event's values: counting an event allocates nothing once
/// its series exists.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: BTreeMap<&'static str, Vec<(Labels, u64)>>,
    histograms: BTreeMap<&'static str, Vec<(Labels, Histogram)>>,
    series: usize,
}

/// What the worker reads off itself when asked.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    /// (user, backend) of each live session: "" before login or for a user the policy does
    /// not know.
    pub sessions: Vec<(String, String)>,
    pub passive_in_use: u64,
    pub passive_total: u64,
    pub passive_exhausted: u64,
    pub audit_lost: u64,
    pub draining: bool,
}

/// One sample: a family's name (with `_bucket`, `_sum` or `_count` for a histogram), its
/// labels and its value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Adds `by` to a counter; a new series beyond [`MAX_METRIC_SERIES`] has its label
    /// values replaced by `other`.
    fn add(&mut self, name: &'static str, labels: &LabelRefs<'_>, by: u64) {
        let full = self.series >= MAX_METRIC_SERIES;
        let family = self.counters.entry(name).or_default();
        if let Some((_, value)) = family.iter_mut().find(|(l, _)| same(l, labels)) {
            *value += by;
            return;
        }
        if !full {
            family.push((owned_labels(labels), by));
            self.series += 1;
        } else if let Some((_, value)) = family.iter_mut().find(|(l, _)| is_other_of(l, labels)) {
            *value += by;
        } else {
            family.push((other_labels(labels), by));
            self.series += 1;
        }
    }

    fn observe_duration(&mut self, name: &'static str, labels: &LabelRefs<'_>, seconds: f64) {
        let full = self.series >= MAX_METRIC_SERIES;
        let family = self.histograms.entry(name).or_default();
        let found = family
            .iter()
            .position(|(l, _)| same(l, labels))
            .or_else(|| {
                full.then(|| family.iter().position(|(l, _)| is_other_of(l, labels)))
                    .flatten()
            });
        let at = match found {
            Some(at) => at,
            None => {
                let key = if full {
                    other_labels(labels)
                } else {
                    owned_labels(labels)
                };
                family.push((key, Histogram::default()));
                self.series += 1;
                family.len() - 1
            }
        };
        let Some((_, h)) = family.get_mut(at) else {
            return;
        };
        let bounds = buckets_of(name);
        if h.buckets.len() != bounds.len() {
            h.buckets = vec![0; bounds.len()];
        }
        for (bucket, &bound) in h.buckets.iter_mut().zip(bounds) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// A command took `seconds` from its arrival to its final reply.
    pub fn observe_command(&mut self, seconds: f64) {
        self.observe_duration("ftpgate_command_duration_seconds", &[], seconds);
    }

    /// A TLS handshake failed on `channel` ("control", "data") toward `side` ("client",
    /// "backend"): no audit event says so (the session's or transfer's end does, by its
    /// own cause).
    pub fn observe_tls_failure(&mut self, channel: &'static str, side: &'static str) {
        self.add(
            "ftpgate_tls_handshake_failures_total",
            &[("channel", channel), ("side", side)],
            1,
        );
    }

    /// Counts one audit event. `backend` is the session's backend pool, when known.
    pub fn observe(&mut self, record: &AuditRecord, backend: Option<&str>) {
        match record {
            AuditRecord::SessionStart { .. } => self.add("ftpgate_sessions_started_total", &[], 1),
            AuditRecord::SessionEnd { reason, .. } => self.add(
                "ftpgate_sessions_ended_total",
                &[("reason", reason.as_str())],
                1,
            ),
            AuditRecord::Login {
                result,
                backend: pool,
                ..
            } => {
                let pool = pool.as_deref().or(backend).unwrap_or("");
                self.add(
                    "ftpgate_logins_total",
                    &[("result", result), ("backend", pool)],
                    1,
                );
            }
            AuditRecord::Command { decision, .. } => {
                self.add("ftpgate_commands_total", &[("decision", decision)], 1)
            }
            AuditRecord::PolicyViolation { kind, .. } => {
                self.add("ftpgate_refusals_total", &[("kind", kind)], 1);
                let cause = match *kind {
                    "port_theft" => Some("theft"),
                    "tls_session_reuse" => Some("tls_not_resumed"),
                    "bounce" => Some("bounce"),
                    _ => None,
                };
                if let Some(cause) = cause {
                    self.add(
                        "ftpgate_data_connection_failures_total",
                        &[("cause", cause)],
                        1,
                    );
                }
            }
            AuditRecord::PolicyException { kind, .. } => {
                self.add("ftpgate_policy_exceptions_total", &[("kind", kind)], 1)
            }
            AuditRecord::Transfer {
                direction,
                bytes,
                result,
                duration_ms,
                ..
            } => {
                self.add(
                    "ftpgate_transfers_total",
                    &[("direction", direction), ("result", result)],
                    1,
                );
                self.add(
                    "ftpgate_transfer_bytes_total",
                    &[("direction", direction)],
                    *bytes,
                );
                self.observe_duration(
                    "ftpgate_transfer_duration_seconds",
                    &[("direction", direction)],
                    *duration_ms as f64 / 1000.0,
                );
                if !matches!(*result, "ok" | "aborted") {
                    self.add(
                        "ftpgate_data_connection_failures_total",
                        &[("cause", result)],
                        1,
                    );
                }
            }
            AuditRecord::Tls {
                channel,
                side,
                resumed,
                certificate_key,
                ..
            } => {
                self.add(
                    "ftpgate_tls_handshakes_total",
                    &[
                        ("channel", channel),
                        ("side", side),
                        ("resumed", if *resumed { "true" } else { "false" }),
                    ],
                    1,
                );
                if let Some(key) = certificate_key {
                    self.add("ftpgate_tls_client_certificates_total", &[("key", key)], 1);
                }
            }
        }
    }

    /// The worker's samples, with `gauges` read off it now.
    pub fn snapshot(&self, gauges: &Gauges) -> Vec<Sample> {
        let mut out = Vec::new();
        let owned = |labels: &Labels| -> Vec<(String, String)> {
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect()
        };
        // Sorted by labels within each family, as the families are by name: a stable text.
        for (name, family) in &self.counters {
            let mut series: Vec<&(Labels, u64)> = family.iter().collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            for (labels, value) in series {
                out.push(Sample {
                    name: (*name).to_owned(),
                    labels: owned(labels),
                    value: *value as f64,
                });
            }
        }
        let histograms = self.histograms.iter().flat_map(|(name, family)| {
            let mut series: Vec<&(Labels, Histogram)> = family.iter().collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            series.into_iter().map(move |(labels, h)| (name, labels, h))
        });
        for (name, labels, h) in histograms {
            for (count, &bound) in h.buckets.iter().zip(buckets_of(name)) {
                let mut l = owned(labels);
                l.push(("le".into(), format_value(bound)));
                out.push(Sample {
                    name: format!("{name}_bucket"),
                    labels: l,
                    value: *count as f64,
                });
            }
            let mut l = owned(labels);
            l.push(("le".into(), "+Inf".into()));
            out.push(Sample {
                name: format!("{name}_bucket"),
                labels: l,
                value: h.count as f64,
            });
            out.push(Sample {
                name: format!("{name}_sum"),
                labels: owned(labels),
                value: h.sum,
            });
            out.push(Sample {
                name: format!("{name}_count"),
                labels: owned(labels),
                value: h.count as f64,
            });
        }
        let mut by_user: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (user, backend) in &gauges.sessions {
            *by_user.entry((user, backend)).or_default() += 1;
        }
        for ((user, backend), n) in by_user {
            out.push(Sample {
                name: "ftpgate_sessions".into(),
                labels: vec![
                    ("user".into(), user.to_owned()),
                    ("backend".into(), backend.to_owned()),
                ],
                value: n as f64,
            });
        }
        let plain = |name: &str, value: u64| Sample {
            name: name.to_owned(),
            labels: Vec::new(),
            value: value as f64,
        };
        out.push(plain("ftpgate_passive_ports_in_use", gauges.passive_in_use));
        out.push(plain("ftpgate_passive_ports", gauges.passive_total));
        out.push(plain(
            "ftpgate_passive_ports_exhausted_total",
            gauges.passive_exhausted,
        ));
        out.push(plain("ftpgate_audit_lost_events_total", gauges.audit_lost));
        out.push(plain("ftpgate_draining", u64::from(gauges.draining)));
        out
    }
}

/// The samples of several workers added up by name and labels, in the order they first
/// appear (a histogram's buckets stay in the order of their bounds).
pub fn merge(workers: &[Vec<Sample>]) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut at: std::collections::HashMap<(String, Vec<(String, String)>), usize> =
        std::collections::HashMap::new();
    for samples in workers {
        for s in samples {
            let key = (s.name.clone(), s.labels.clone());
            match at.get(&key) {
                Some(&i) => out[i].value += s.value,
                None => {
                    at.insert(key, out.len());
                    out.push(s.clone());
                }
            }
        }
    }
    out
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The Prometheus text exposition format (version 0.0.4) of `samples`: every family with
/// its HELP and TYPE, the samples of each family together.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    for family in FAMILIES {
        let mine: Vec<&Sample> = samples
            .iter()
            .filter(|s| {
                s.name == family.name
                    || (family.kind == Kind::Histogram
                        && s.name
                            .strip_prefix(family.name)
                            .is_some_and(|rest| matches!(rest, "_bucket" | "_sum" | "_count")))
            })
            .collect();
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        out.push_str(&format!("# HELP {} {}\n", family.name, family.help));
        out.push_str(&format!("# TYPE {} {kind}\n", family.name));
        for s in mine {
            out.push_str(&s.name);
            if !s.labels.is_empty() {
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                out.push('{');
                out.push_str(&labels.join(","));
                out.push('}');
            }
            out.push(' ');
            out.push_str(&format_value(s.value));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests;
