//! Valid documents: the model and the summary they become, and the lookups on it.

use super::*;

#[test]
fn minimal_policy_builds_the_expected_model() {
    let policy = parse(MINIMAL);
    let builtin = Timeouts {
        login: limits::DEFAULT_LOGIN_TIMEOUT,
        idle: limits::DEFAULT_IDLE_TIMEOUT,
        session: limits::DEFAULT_SESSION_TIMEOUT,
        data_connect: limits::DEFAULT_DATA_CONNECT_TIMEOUT,
        session_during_transfer: DuringTransfer::Finish,
    };
    let expected = Policy {
        workers: Workers::Auto,
        drain_timeout: limits::DEFAULT_DRAIN_TIMEOUT_SECONDS,
        user: limits::DEFAULT_RUN_AS.to_owned(),
        listeners: vec![Listener {
            address: addr("0.0.0.0:2121"),
            tls: TlsMode::None,
            require: TlsRequire::None,
            proxy_protocol: false,
            proxy_from: Vec::new(),
        }],
        passive: Passive {
            ports: limits::DEFAULT_PASSIVE_PORTS,
            advertise: None,
            advertise_by_network: Vec::new(),
            proxy_from: Vec::new(),
            shared: false,
        },
        backends: BTreeMap::from([(
            "files".to_owned(),
            Backend {
                name: "files".to_owned(),
                servers: vec![addr("10.0.0.11:21")],
                balance: Balance::RoundRobin,
                tls: TlsMode::None,
                source_address: None,
                tls_settings: BackendTls::default(),
                feature_probe: true,
                health_check: Some(Default::default()),
                verify_uploads: false,
            },
        )]),
        roles: BTreeMap::from([(
            "download".to_owned(),
            Role {
                name: "download".to_owned(),
                allow: [Verb::Retr, Verb::List, Verb::Cwd, Verb::Pwd]
                    .into_iter()
                    .collect(),
            },
        )]),
        users: BTreeMap::from([(
            "alice".to_owned(),
            User {
                name: "alice".to_owned(),
                role: "download".to_owned(),
                backend: "files".to_owned(),
                access: AccessRules::default(),
                time_windows: Vec::new(),
                allow_fxp_to: Vec::new(),
                tls_require: TlsRequire::None,
                tls_session_reuse: TlsSessionReuse::Required,
                audit_digest: crate::policy::AuditDigest::Sha256,
                limits: UserLimits::default(),
                timeouts: builtin,
                jail: None,
                enforce: true,
            },
        )]),
        defaults: Defaults {
            timeouts: builtin,
            limits: GlobalLimits {
                sessions_total: limits::DEFAULT_SESSIONS_TOTAL,
                sessions_per_ip: limits::DEFAULT_SESSIONS_PER_IP,
                failed_logins_per_ip: limits::DEFAULT_FAILED_LOGINS_PER_IP,
                failed_login_window: limits::DEFAULT_FAILED_LOGIN_WINDOW,
                ban: limits::DEFAULT_BAN_SECONDS,
                max_file_size: None,
                rate: None,
                user_rate: None,
                sessions_waiting_for_backend: limits::DEFAULT_SESSIONS_WAITING_FOR_BACKEND,
                failed_login_delay_ms: limits::DEFAULT_FAILED_LOGIN_DELAY_MS,
            },
        },
        audit: AuditPolicy {
            file: None,
            syslog: None,
            mode: AuditMode::Monitor,
            digest: crate::policy::AuditDigest::Sha256,
            on_failure: AuditFailure::RefuseSessions,
            filecopy: None,
            integrity: None,
        },
        routing: Routing::default(),
        tls: None,
        access: AccessRules::default(),
        geo: None,
        prefix_table: Vec::new(),
        metrics_listen: None,
    };
    assert_eq!(policy, expected);
    // The documented defaults.
    assert_eq!(limits::DEFAULT_FAILED_LOGIN_WINDOW, 300);
    assert_eq!(limits::DEFAULT_BAN_SECONDS, 600);
    assert_eq!(limits::DEFAULT_SESSIONS_WAITING_FOR_BACKEND, 1000);
    assert_eq!(limits::DEFAULT_DATA_CONNECT_TIMEOUT, 30);
}

#[test]
fn policy_lookups() {
    let policy = parse(MINIMAL);
    let alice = policy.user("alice").expect("alice");
    assert!(
        policy.user("Alice").is_none(),
        "user names are case-sensitive"
    );
    assert!(policy.user("bob").is_none());
    let role = policy.role_of(alice);
    assert_eq!(role.name, "download");
    assert!(role.permits(Verb::Retr));
    assert!(role.permits(Verb::Cwd));
    assert!(!role.permits(Verb::Stor));
    assert!(
        !role.permits(Verb::User),
        "plumbing is never the role's business"
    );
    assert_eq!(
        policy.backend_of(alice).map(|b| b.servers.clone()),
        Some(vec![addr("10.0.0.11:21")])
    );

    // A user from elsewhere: no panic, a role that permits nothing, no backend.
    let mut stranger = alice.clone();
    stranger.role = "ghost".to_owned();
    stranger.backend = "nowhere".to_owned();
    let role = policy.role_of(&stranger);
    assert!(Verb::ALL.iter().all(|&verb| !role.permits(verb)));
    assert!(policy.backend_of(&stranger).is_none());
}

#[test]
fn a_full_supported_policy() {
    let doc = r#"{
  "workers": 4,
  "listeners": [
    { "address": "0.0.0.0:21", "tls": "none", "require": "none", "proxy_protocol": false },
    { "address": "[::]:21" }
  ],
  "passive": { "ports": "40000-40009", "advertise": "203.0.113.10" },
  "backends": {
    "edi": { "servers": ["10.0.0.11:21", "[2001:db8::12]:2121"], "balance": "first-available",
             "tls": "none" }
  },
  "roles": {
    "read-only": { "allow": ["retr", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT",
                             "XCWD", "CDUP", "XPWD"] },
    "nothing": { "allow": [] }
  },
  "users": {
    "partner-acme": { "role": "read-only", "backend": "edi", "allow_from": [], "deny_from": [],
                      "limits": {}, "timeouts": { "idle": 60 } },
    "guest": { "role": "nothing", "backend": "edi" }
  },
  "routing": { "user_at_host": false, "targets": { "mainframe": "edi" } },
  "defaults": { "timeouts": { "login": 20, "session": 3600 }, "limits": {} },
  "audit": { "file": "/var/log/ftpgate/audit.jsonl", "mode": "monitor" }
}"#;
    let policy = parse(doc);
    assert_eq!(policy.workers, Workers::Count(4));
    assert_eq!(policy.listeners.len(), 2);
    assert_eq!(policy.listeners[1].address, addr("[::]:21"));
    assert_eq!(policy.passive.ports, (40000, 40009));
    assert_eq!(
        policy.passive.advertise,
        Some("203.0.113.10".parse().unwrap())
    );
    let edi = &policy.backends["edi"];
    assert_eq!(edi.balance, Balance::FirstAvailable);
    assert_eq!(edi.servers[1], addr("[2001:db8::12]:2121"));
    let read_only = &policy.roles["read-only"];
    assert!(read_only.permits(Verb::Retr) && read_only.permits(Verb::Cwd));
    assert!(read_only.permits(Verb::Pwd) && !read_only.permits(Verb::Stor));
    assert_eq!(read_only.allow.len(), 11);
    assert!(policy.roles["nothing"].allow.is_empty());
    // Timeouts: the user's own, else defaults.timeouts, else the built-in default.
    let acme = &policy.users["partner-acme"];
    assert_eq!(
        acme.timeouts,
        Timeouts {
            login: 20,
            idle: 60,
            session: 3600,
            data_connect: limits::DEFAULT_DATA_CONNECT_TIMEOUT,
            session_during_transfer: DuringTransfer::Finish,
        }
    );
    let guest = &policy.users["guest"];
    assert_eq!(
        guest.timeouts,
        Timeouts {
            login: 20,
            idle: limits::DEFAULT_IDLE_TIMEOUT,
            session: 3600,
            data_connect: limits::DEFAULT_DATA_CONNECT_TIMEOUT,
            session_during_transfer: DuringTransfer::Finish,
        }
    );
    assert_eq!(policy.defaults.timeouts, guest.timeouts);
    assert_eq!(policy.routing.targets["mainframe"], "edi");
    assert!(!policy.routing.user_at_host);
    assert_eq!(
        policy.audit.file,
        Some(PathBuf::from("/var/log/ftpgate/audit.jsonl"))
    );

    let summary = policy.summary();
    for expected in [
        "workers: 4",
        "  0.0.0.0:21 tls none",
        "  [::]:21 tls none",
        "passive: ports 40000-40009 (10 ports), advertise 203.0.113.10",
        "  edi: 10.0.0.11:21, [2001:db8::12]:2121 (first-available)",
        "  read-only: CWD CDUP RETR PWD LIST NLST STAT SIZE MDTM MLSD MLST",
        "  nothing: (no commands beyond login and plumbing)",
        "  partner-acme: role read-only, backend edi, timeouts login 20s, idle 60s, session 3600s, data connect 30s",
        "defaults: timeouts login 20s, idle 300s, session 3600s, data connect 30s\n",
        "limits: sessions 10000 total, 20 per IP, 1000 waiting for a backend per worker; 10 failed logins per IP within 300s: banned for 600s\n",
        "routing: USER name@target off",
        "  mainframe -> edi",
        "audit: monitor to file /var/log/ftpgate/audit.jsonl",
    ] {
        assert!(summary.contains(expected), "{expected:?} not in\n{summary}");
    }
}

#[test]
fn summary_of_the_minimal_policy() {
    let summary = parse(MINIMAL).summary();
    assert_eq!(
        summary,
        "workers: auto (one per CPU core)
listeners:
  0.0.0.0:2121 tls none
passive: ports 50000-50999 (1000 ports), advertise the address each client connected to
backends:
  files: 10.0.0.11:21 (round-robin)
roles:
  download: CWD RETR PWD LIST
users:
  alice: role download, backend files, timeouts login 30s, idle 300s, session 900s, data connect 30s
defaults: timeouts login 30s, idle 300s, session 900s, data connect 30s
limits: sessions 10000 total, 20 per IP, 1000 waiting for a backend per worker; 10 failed logins per IP within 300s: banned for 600s
audit: monitor to stderr
  if a sink fails: new sessions are refused (421)
"
    );
    assert!(summary.lines().count() < 25, "one screen");
}

#[test]
fn summary_cuts_long_lists() {
    let users: Vec<String> = (0..60)
        .map(|i| format!("\"u{i:02}\": {{ \"role\": \"download\", \"backend\": \"files\" }}"))
        .collect();
    let doc = MINIMAL.replace(
        r#""alice": { "role": "download", "backend": "files" }"#,
        &users.join(",\n"),
    );
    let summary = parse(&doc).summary();
    assert!(summary.contains("  u49: role download"));
    assert!(!summary.contains("u50"));
    assert!(summary.contains("  ... and 10 more"));
}

#[test]
fn byte_order_mark_is_skipped() {
    let doc = format!("\u{feff}{MINIMAL}");
    parse(&doc);
    let bad = "\u{feff}{\"listeners\": 5}";
    assert_eq!(
        errors(bad),
        ["1:15: listeners: invalid type: integer `5`, expected a sequence"]
    );
}

#[test]
fn every_new_key_at_once() {
    let policy = parse_with(NEW_KEYS, SAMPLE_TABLE);
    let alice = &policy.users["alice"];
    assert_eq!(alice.time_windows.len(), 2);
    assert_eq!(alice.allow_fxp_to.len(), 1);
    assert_eq!(alice.access.allow_asns, vec![64500, 64501]);
    assert_eq!(alice.limits.user_rate, Some(10 << 20));
    assert_eq!(alice.limits.max_file_size, Some(2 << 30));
    assert_eq!(alice.timeouts.data_connect, 20);
    assert_eq!(policy.defaults.limits.user_rate, Some(100 << 20));
    assert_eq!(policy.access.allow_countries, vec![*b"DE", *b"FR"]);
    assert!(policy.geo.is_some());
    assert!(policy.summary().lines().count() < 25, "one screen");
    // parse_policy reads no table: the one error is there.
    let found = errors(NEW_KEYS);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("this caller reads no files"), "{found:?}");
}
