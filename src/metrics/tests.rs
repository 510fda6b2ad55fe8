use super::*;

fn transfer(direction: &'static str, result: &'static str, bytes: u64, ms: u64) -> AuditRecord {
    AuditRecord::Transfer {
        verb: "RETR",
        arg: "a".into(),
        arg_hex: None,
        path: None,
        direction,
        bytes,
        result,
        duration_ms: ms,
        sha256: None,
        filecopy: None,
        filecopy_error: None,
        tls_end: None,
        digest: None,
        backend_check: None,
        data_addresses: None,
    }
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && s.labels
                    .iter()
                    .zip(labels)
                    .all(|((k, v), (k2, v2))| k == k2 && v == v2)
        })
        .map(|s| s.value)
}

#[test]
fn transfers_count_by_direction_and_result_with_bytes_and_durations() {
    let mut m = Metrics::new();
    m.observe(&transfer("download", "ok", 1000, 50), None);
    m.observe(&transfer("download", "ok", 24, 2000), None);
    m.observe(&transfer("upload", "timeout", 7, 40_000), None);
    let s = m.snapshot(&Gauges::default());
    let d = [("direction", "download"), ("result", "ok")];
    assert_eq!(value(&s, "ftpgate_transfers_total", &d), Some(2.0));
    assert_eq!(
        value(
            &s,
            "ftpgate_transfer_bytes_total",
            &[("direction", "download")]
        ),
        Some(1024.0)
    );
    let bucket = |le: &str| {
        value(
            &s,
            "ftpgate_transfer_duration_seconds_bucket",
            &[("direction", "download"), ("le", le)],
        )
    };
    assert_eq!(bucket("0.01"), Some(0.0));
    assert_eq!(bucket("0.1"), Some(1.0));
    assert_eq!(bucket("5"), Some(2.0));
    assert_eq!(bucket("+Inf"), Some(2.0));
    assert_eq!(
        value(
            &s,
            "ftpgate_transfer_duration_seconds_sum",
            &[("direction", "download")]
        ),
        Some(2.05)
    );
    // A transfer that failed is a data-connection failure of its cause.
    assert_eq!(
        value(
            &s,
            "ftpgate_data_connection_failures_total",
            &[("cause", "timeout")]
        ),
        Some(1.0)
    );
}

#[test]
fn refusals_count_by_kind_and_theft_is_a_data_connection_failure() {
    let mut m = Metrics::new();
    for _ in 0..3 {
        m.observe(
            &AuditRecord::PolicyViolation {
                kind: "port_theft",
                detail: "x".into(),
            },
            None,
        );
    }
    m.observe(
        &AuditRecord::Command {
            verb: "DELE".into(),
            arg: "f".into(),
            arg_hex: None,
            path: None,
            decision: "deny",
            reply: 550,
            line_hex: None,
            line_bytes: None,
        },
        None,
    );
    let s = m.snapshot(&Gauges::default());
    assert_eq!(
        value(&s, "ftpgate_refusals_total", &[("kind", "port_theft")]),
        Some(3.0)
    );
    assert_eq!(
        value(
            &s,
            "ftpgate_data_connection_failures_total",
            &[("cause", "theft")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "ftpgate_commands_total", &[("decision", "deny")]),
        Some(1.0)
    );
}

#[test]
fn workers_add_up_and_the_text_has_each_family_once() {
    let mut a = Metrics::new();
    let mut b = Metrics::new();
    a.observe(&transfer("download", "ok", 10, 1), None);
    b.observe(&transfer("download", "ok", 5, 1), None);
    let ga = Gauges {
        sessions: vec![("edi".into(), "pool".into()), ("edi".into(), "pool".into())],
        passive_total: 10,
        ..Gauges::default()
    };
    let gb = Gauges {
        sessions: vec![("edi".into(), "pool".into())],
        passive_total: 10,
        draining: true,
        ..Gauges::default()
    };
    let merged = merge(&[a.snapshot(&ga), b.snapshot(&gb)]);
    assert_eq!(
        value(
            &merged,
            "ftpgate_sessions",
            &[("user", "edi"), ("backend", "pool")]
        ),
        Some(3.0)
    );
    assert_eq!(value(&merged, "ftpgate_passive_ports", &[]), Some(20.0));
    assert_eq!(value(&merged, "ftpgate_draining", &[]), Some(1.0));
    let text = render(&merged);
    assert_eq!(
        text.matches("# TYPE ftpgate_transfer_duration_seconds histogram\n")
            .count(),
        1
    );
    assert!(text.contains("ftpgate_transfer_bytes_total{direction=\"download\"} 15\n"));
    assert!(text.contains(
        "ftpgate_transfer_duration_seconds_bucket{direction=\"download\",le=\"+Inf\"} 2\n"
    ));
    // Buckets stay in the order of their bounds.
    let first = text.find("le=\"0.01\"").expect("0.01");
    let later = text.find("le=\"21600\"").expect("21600");
    assert!(first < later);
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

#[test]
fn series_beyond_the_bound_are_counted_as_other() {
    let mut m = Metrics::new();
    for i in 0..MAX_METRIC_SERIES + 50 {
        m.observe(
            &AuditRecord::SessionEnd {
                reason: format!("r{i}"),
                duration_ms: 0,
                bytes_in: 0,
                bytes_out: 0,
                control_bytes_in: 0,
                control_bytes_out: 0,
                data_bytes_in: 0,
                data_bytes_out: 0,
                transfers: BTreeMap::new(),
                repeated_commands: BTreeMap::new(),
                port_theft_attempts: 0,
            },
            None,
        );
    }
    assert!(m.series <= MAX_METRIC_SERIES + 1);
    let s = m.snapshot(&Gauges::default());
    assert_eq!(
        value(&s, "ftpgate_sessions_ended_total", &[("reason", "other")]),
        Some(50.0)
    );
}
