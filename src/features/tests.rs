//! Feature parsing, filtering, intersection and the probe schedule of [`FeatureBook`].

use super::*;
use crate::policy::parse_policy;

fn set(lines: &[&str]) -> Vec<Feature> {
    lines
        .iter()
        .map(|l| Feature::parse(l.as_bytes()).unwrap_or_else(|| panic!("feature {l:?}")))
        .collect()
}

fn lines(features: &[Feature]) -> Vec<String> {
    features.iter().map(Feature::line).collect()
}

/// pure-ftpd 1.0.50's answer (Debian 12).
const PURE_FTPD: &[&str] = &[
    "UTF8",
    "EPRT",
    "IDLE",
    "MDTM",
    "SIZE",
    "MFMT",
    "REST STREAM",
    "MLST type*;size*;sizd*;modify*;UNIX.mode*;UNIX.uid*;UNIX.gid*;unique*;",
    "MLSD",
    "PRET",
    "AUTH TLS",
    "PBSZ",
    "PROT",
    "TVFS",
    "ESTA",
    "PASV",
    "EPSV",
    "ESTP",
];
/// pyftpdlib 1.5.7's answer.
const PYFTPDLIB: &[&str] = &[
    "EPRT",
    "EPSV",
    "MDTM",
    "MFMT",
    "MLST type*;perm*;size*;modify*;unique*;unix.mode;unix.uid;unix.gid;",
    "REST STREAM",
    "SIZE",
    "TVFS",
    "UTF8",
];
/// vsftpd 3.0.3's answer with TLS on.
const VSFTPD: &[&str] = &[
    "AUTH SSL",
    "AUTH TLS",
    "EPRT",
    "EPSV",
    "MDTM",
    "PASV",
    "PBSZ",
    "PROT",
    "REST STREAM",
    "SIZE",
    "TVFS",
    "UTF8",
];

#[test]
fn feature_lines_parse_and_print() {
    let f = Feature::parse(b" mlst type*;size*; ").expect("parses");
    assert_eq!(f.keyword, "MLST");
    assert_eq!(f.params, "type*;size*;");
    assert_eq!(f.line(), "MLST type*;size*;");
    assert_eq!(
        Feature::parse(b" REST  STREAM").map(|f| f.line()),
        Some("REST STREAM".into())
    );
    for bad in [
        &b""[..],
        b"   ",
        b"SI\tZE",
        b"-MDTM",
        b"MDTM\r",
        b"\xc3\xa9",
    ] {
        assert_eq!(Feature::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn feat_replies_parse_into_features_or_nothing() {
    let reply = Reply::multi(211, &["Features:", " SIZE", " MDTM", "End"]);
    assert_eq!(parse_feat_reply(&reply), Some(set(&["SIZE", "MDTM"])));
    assert_eq!(parse_feat_reply(&Reply::new(211, "none")), Some(Vec::new()));
    assert_eq!(
        parse_feat_reply(&Reply::new(500, "what?")),
        Some(Vec::new())
    );
    assert_eq!(parse_feat_reply(&Reply::new(502, "no")), Some(Vec::new()));
    assert_eq!(parse_feat_reply(&Reply::new(530, "login")), None);
    assert_eq!(parse_feat_reply(&Reply::new(421, "bye")), None);
    // Only 211 answers FEAT: a server that takes FEAT for something else taught nothing.
    assert_eq!(parse_feat_reply(&Reply::new(230, "logged in")), None);
    // At most MAX_FEATURES are kept.
    let many: Vec<String> = (0..MAX_FEATURES + 5).map(|i| format!(" X{i}")).collect();
    let mut all = vec!["Features:"];
    all.extend(many.iter().map(String::as_str));
    all.push("End");
    let parsed = parse_feat_reply(&Reply::multi(211, &all)).expect("2xx");
    assert_eq!(parsed.len(), MAX_FEATURES);
}

#[test]
fn only_relayed_features_are_advertised() {
    let kept = advertised(set(PURE_FTPD));
    assert_eq!(
        lines(&kept),
        vec![
            "MDTM",
            "MFMT",
            "MLSD",
            "MLST type*;size*;sizd*;modify*;UNIX.mode*;UNIX.uid*;UNIX.gid*;unique*;",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ],
        "TLS, EPRT/EPSV/PASV and the extensions ftpgate refuses (PRET, IDLE, ESTA, ESTP) go"
    );
    // Duplicates go too.
    assert_eq!(
        lines(&advertised(set(&["SIZE", "size", "UTF8"]))),
        vec!["SIZE", "UTF8"]
    );
}

#[test]
fn the_relayed_list_and_the_filtered_list_do_not_overlap() {
    for keyword in RELAYED_FEATURES {
        assert!(!FILTERED_FEATURES.contains(keyword), "{keyword}");
    }
    for line in STATIC_FEATURES {
        let f = Feature::parse(line.as_bytes()).expect("static line parses");
        assert!(RELAYED_FEATURES.contains(&f.keyword.as_str()), "{line}");
        assert_ne!(f.keyword, "MLST", "the static list never claims MLST");
    }
}

#[test]
fn intersection_keeps_what_both_offer_and_the_common_facts() {
    let pure = advertised(set(PURE_FTPD));
    let py = advertised(set(PYFTPDLIB));
    assert_eq!(
        lines(&intersect(&pure, &py)),
        vec![
            "MDTM",
            "MFMT",
            "MLST type*;size*;modify*;UNIX.mode;UNIX.uid;UNIX.gid;unique*;",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ],
        "facts compare without case; '*' only where both have it on"
    );
    let vs = advertised(set(VSFTPD));
    let all = common([pure.as_slice(), py.as_slice(), vs.as_slice()].into_iter());
    assert_eq!(
        lines(&all),
        vec!["MDTM", "REST STREAM", "SIZE", "TVFS", "UTF8"]
    );
    // Parameters must match for plain features.
    assert!(intersect(&set(&["REST STREAM"]), &set(&["REST BLOCK"])).is_empty());
    assert_eq!(
        lines(&intersect(&set(&["REST STREAM"]), &set(&["rest stream"]))),
        ["REST STREAM"]
    );
    // MLST with no fact in common is still MLST.
    assert_eq!(
        lines(&intersect(&set(&["MLST type;"]), &set(&["MLST size;"]))),
        ["MLST"]
    );
    // No pool at all: the static list.
    assert_eq!(lines(&common(std::iter::empty())), STATIC_FEATURES);
}

const TWO_POOLS: &str = r#"{
  "listeners": [ { "address": "127.0.0.1:2121" } ],
  "backends": {
    "a": { "servers": ["127.0.0.1:2001", "127.0.0.1:2002"], "source_address": "127.0.0.1",
           "health_check": false },
    "b": { "servers": ["127.0.0.1:2003"], "tls": "implicit", "health_check": false }
  },
  "roles": { "r": { "allow": ["LIST"] } },
  "users": { "u": { "role": "r", "backend": "a" }, "v": { "role": "r", "backend": "b" } }
}"#;

fn book(text: &str, now: Instant) -> FeatureBook {
    match parse_policy(text) {
        Ok(policy) => FeatureBook::new(&policy, now),
        Err(errors) => panic!("test policy invalid: {errors:?}"),
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_pool_not_learned_counts_as_the_static_list() {
    let t0 = Instant::now();
    let mut b = book(TWO_POOLS, t0);
    assert_eq!(&**b.offered(), STATIC_FEATURES);
    assert_eq!(b.take_changed(), None);
    let targets = b.start_due(t0);
    assert_eq!(
        targets,
        vec![
            ProbeTarget {
                pool: 0,
                name: "a".into(),
                addr: addr(2001),
                source: Some("127.0.0.1".parse().expect("ip")),
                tls: TlsMode::None,
                plan: ProbePlan::feat_only(),
                health: false,
            },
            ProbeTarget {
                pool: 1,
                name: "b".into(),
                addr: addr(2003),
                source: None,
                tls: TlsMode::Implicit,
                plan: ProbePlan::feat_only(),
                health: false,
            },
        ],
        "one probe per pool, its first server"
    );
    assert!(b.start_due(t0).is_empty(), "never two probes for one pool");
    // Pool a's first server answers like pyftpdlib: MLST is not advertised while pool b is
    // unknown (static list), and the facts of a's second server are not known yet.
    let next = b.finish(0, Ok(set(PYFTPDLIB)), t0);
    assert_eq!(
        next.map(|t| t.addr),
        Some(addr(2002)),
        "then the pool's next server"
    );
    assert_eq!(&**b.offered(), STATIC_FEATURES);
    assert!(b.is_learned(0) && !b.is_learned(1));
    // Pool b answers like pure-ftpd: now both are learned.
    assert_eq!(b.finish(1, Ok(set(PURE_FTPD)), t0), None);
    assert_eq!(
        &**b.offered(),
        [
            "MDTM",
            "MFMT",
            "MLST type*;size*;modify*;unique*;unix.mode;unix.uid;unix.gid;",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ]
    );
    assert!(b.take_changed().is_some());
    assert_eq!(b.take_changed(), None, "reported once");
    // Pool a's second server does not answer: the pool is what its first server said, and
    // the pool is tried again soon.
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(
        b.finish(0, Err(ProbeError::Timeout(ProbeStep::Connect)), t1),
        None
    );
    assert_eq!(b.take_changed(), None);
    assert_eq!(
        b.next_round(),
        Some(t1 + Duration::from_secs(FEATURE_PROBE_RETRY)),
        "the failed round of pool a is retried first"
    );
    let retry = t1 + Duration::from_secs(FEATURE_PROBE_RETRY);
    assert_eq!(b.start_due(retry).len(), 1, "pool a only");
    // The second server is back, without MLST: the pool (and so the answer) loses MLST.
    assert_eq!(
        b.finish(0, Ok(set(PYFTPDLIB)), retry).map(|t| t.addr),
        Some(addr(2002))
    );
    assert_eq!(b.finish(0, Ok(set(VSFTPD)), retry), None);
    let changed = b.take_changed().expect("MLST went");
    assert!(
        !changed.iter().any(|l| l.starts_with("MLST")),
        "{changed:?}"
    );
    assert_eq!(
        b.next_round(),
        Some(t0 + Duration::from_secs(FEATURE_PROBE_INTERVAL)),
        "pool b's next round, a successful one's interval later"
    );
}

#[test]
fn a_failure_keeps_what_the_server_said_last() {
    let t0 = Instant::now();
    let mut b = book(TWO_POOLS, t0);
    b.start_due(t0);
    b.finish(0, Ok(set(PYFTPDLIB)), t0);
    b.finish(0, Ok(set(PYFTPDLIB)), t0);
    b.finish(1, Ok(set(PYFTPDLIB)), t0);
    let learned = Rc::clone(b.offered());
    assert!(learned.iter().any(|l| l.starts_with("MLST")));
    let t1 = t0 + Duration::from_secs(FEATURE_PROBE_INTERVAL);
    assert_eq!(b.start_due(t1).len(), 2);
    let refused = ProbeError::Refused {
        step: ProbeStep::Greeting,
        code: 421,
    };
    b.finish(0, Err(refused.clone()), t1);
    b.finish(0, Err(refused.clone()), t1);
    b.finish(1, Err(refused), t1);
    assert_eq!(b.offered(), &learned);
    assert_eq!(
        b.next_round(),
        Some(t1 + Duration::from_secs(FEATURE_PROBE_RETRY))
    );
    // Results for a pool that has no probe out are ignored.
    assert_eq!(b.finish(0, Ok(Vec::new()), t1), None);
    assert_eq!(b.finish(7, Ok(Vec::new()), t1), None);
    assert_eq!(b.offered(), &learned);
}

#[test]
fn a_reload_keeps_what_the_remaining_servers_said() {
    let t0 = Instant::now();
    let mut old = book(TWO_POOLS, t0);
    old.start_due(t0);
    old.finish(0, Ok(set(PYFTPDLIB)), t0);
    old.finish(0, Ok(set(PYFTPDLIB)), t0);
    old.finish(1, Ok(set(PURE_FTPD)), t0);
    // Pool b changes its TLS mode, pool a loses a server.
    let changed = TWO_POOLS
        .replace(r#""127.0.0.1:2001", "#, "")
        .replace(r#""tls": "implicit""#, r#""tls": "none""#);
    let mut new = book(&changed, t0);
    new.carry_over(&old);
    assert!(new.is_learned(0), "2002 is still in pool a");
    assert!(
        !new.is_learned(1),
        "pool b's TLS mode changed: learned again"
    );
    assert_eq!(&**new.offered(), STATIC_FEATURES);
    assert_eq!(
        new.start_due(t0).len(),
        2,
        "both pools changed: probed again at once"
    );

    // An unchanged pool keeps its schedule; one whose probe was out is probed at once.
    let t1 = t0 + Duration::from_secs(10);
    let mut again = book(&changed, t1);
    again.carry_over(&new);
    assert_eq!(again.start_due(t1).len(), 2, "both probes were out");
    new.finish(0, Ok(set(PYFTPDLIB)), t0);
    let mut again = book(&changed, t1);
    again.carry_over(&new);
    let due: Vec<usize> = again.start_due(t1).into_iter().map(|t| t.pool).collect();
    assert_eq!(due, [1]);
    assert_eq!(
        again.next_round(),
        Some(t0 + Duration::from_secs(FEATURE_PROBE_INTERVAL))
    );
}

#[test]
fn a_pool_with_the_probe_off_is_never_probed_and_counts_as_static() {
    let t0 = Instant::now();
    let text = TWO_POOLS.replace(
        r#""tls": "implicit""#,
        r#""tls": "implicit", "feature_probe": false"#,
    );
    let policy = match parse_policy(&text) {
        Ok(p) => p,
        Err(errors) => panic!("test policy invalid: {errors:?}"),
    };
    assert!(policy.backends["a"].feature_probe, "on by default");
    assert!(!policy.backends["b"].feature_probe);
    let mut b = FeatureBook::new(&policy, t0);
    let due: Vec<usize> = b.start_due(t0).into_iter().map(|t| t.pool).collect();
    assert_eq!(due, [0]);
    b.finish(0, Ok(set(PYFTPDLIB)), t0);
    b.finish(0, Ok(set(PYFTPDLIB)), t0);
    assert_eq!(&**b.offered(), STATIC_FEATURES, "pool b is the static list");
    let later = t0 + Duration::from_secs(FEATURE_PROBE_INTERVAL * 10);
    assert_eq!(b.start_due(later).len(), 1, "pool a only, again");
    let wrong = TWO_POOLS.replace(
        r#""tls": "implicit""#,
        r#""tls": "implicit", "feature_probe": "no""#,
    );
    assert!(parse_policy(&wrong).is_err(), "a boolean");
}

/// The control machine answers FEAT before login with ftpgate's own lines and the book's,
/// each feature line with its leading space (RFC 2389 §3.2).
#[test]
fn feat_before_login_lists_the_learned_features() {
    use crate::session::control::{Action, ControlConfig, ControlFsm, Event};
    let policy = match parse_policy(TWO_POOLS) {
        Ok(p) => p,
        Err(errors) => panic!("test policy invalid: {errors:?}"),
    };
    let t0 = Instant::now();
    let mut b = FeatureBook::new(&policy, t0);
    b.start_due(t0);
    b.finish(0, Ok(set(PURE_FTPD)), t0);
    b.finish(0, Ok(set(PYFTPDLIB)), t0);
    b.finish(1, Ok(set(PYFTPDLIB)), t0);
    let feat = |tls: bool, features: Rc<[String]>| -> Vec<String> {
        let (mut fsm, _) = ControlFsm::new(ControlConfig {
            client_ip: "192.0.2.7".parse().expect("ip"),
            login_timeout: 30,
            session_timeout: 900,
            failed_login_delay_ms: 1000,
            data_connect_timeout: 30,
            backend_reply_timeout: 60,
            tls_available: tls,
            tls_implicit: false,
            tls_require: crate::policy::TlsRequire::None,
            features,
            epsv_reachable: true,
        });
        let actions = fsm.on_event(
            Event::ClientCommand(crate::ftp::command::parse_command(b"FEAT")),
            &policy,
        );
        let Some(Action::SendClient(reply)) = actions.first() else {
            panic!("no FEAT reply: {actions:?}")
        };
        assert_eq!(reply.code, 211);
        reply
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    };
    assert_eq!(
        feat(false, Rc::clone(b.offered())),
        [
            "211-Features:",
            " EPRT",
            " EPSV",
            " PASV",
            " MDTM",
            " MFMT",
            " MLST type*;size*;modify*;UNIX.mode;UNIX.uid;UNIX.gid;unique*;",
            " REST STREAM",
            " SIZE",
            " TVFS",
            " UTF8",
            "211 End",
        ]
    );
    let static_lines: Rc<[String]> = STATIC_FEATURES.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        feat(true, static_lines),
        [
            "211-Features:",
            " AUTH TLS",
            " PBSZ",
            " PROT",
            " EPRT",
            " EPSV",
            " PASV",
            " MDTM",
            " REST STREAM",
            " SIZE",
            " UTF8",
            "211 End",
        ],
        "nothing learned: the answer ftpgate always gave (now with RFC 2389's leading spaces)"
    );
}

#[test]
fn the_listeners_fit_below_the_probe_tokens() {
    let listeners: Vec<String> = (0..=crate::limits::MAX_LISTENERS)
        .map(|i| format!(r#"{{ "address": "127.0.0.1:{}" }}"#, 1024 + i))
        .collect();
    let text = TWO_POOLS.replace(
        r#"[ { "address": "127.0.0.1:2121" } ]"#,
        &format!("[{}]", listeners.join(",")),
    );
    let errors = match parse_policy(&text) {
        Ok(_) => panic!("{} listeners accepted", listeners.len()),
        Err(errors) => errors,
    };
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("at most 2048 listeners")),
        "{errors:?}"
    );
}

#[test]
fn health_check_rounds_come_every_interval_and_ask_for_feat_on_its_schedule() {
    let t0 = Instant::now();
    let text = TWO_POOLS
        .replace(
            r#""source_address": "127.0.0.1",
           "health_check": false"#,
            r#""source_address": "127.0.0.1",
           "health_check": { "interval": 7, "timeout": 2 }"#,
        )
        .replace(
            r#""tls": "implicit", "health_check": false"#,
            r#""tls": "explicit", "feature_probe": false"#,
        );
    let mut b = book(&text, t0);
    let targets = b.start_due(t0);
    assert_eq!(targets.len(), 2);
    let step = Duration::from_secs(2);
    assert_eq!(
        targets[0].plan,
        ProbePlan {
            feat: true,
            auth_tls: false,
            step_timeout: step
        }
    );
    assert!(targets[0].health);
    let step3 = Duration::from_secs(crate::limits::DEFAULT_HEALTH_CHECK_TIMEOUT);
    assert_eq!(
        targets[1].plan,
        ProbePlan {
            feat: false,
            auth_tls: true,
            step_timeout: step3
        },
        "explicit TLS pool: AUTH TLS, no FEAT (its probe is off)"
    );
    // Pool a's round: FEAT learned, the next round a health interval later, without FEAT.
    let next = b.finish_probe(0, Some(Ok(set(PYFTPDLIB))), t0);
    assert_eq!(next.as_ref().map(|t| t.addr), Some(addr(2002)));
    assert_eq!(b.finish_probe(0, Some(Ok(set(PYFTPDLIB))), t0), None);
    assert_eq!(b.finish_probe(1, None, t0), None);
    assert_eq!(b.next_round(), Some(t0 + Duration::from_secs(7)));
    let t1 = t0 + Duration::from_secs(7);
    let due = b.start_due(t1);
    assert_eq!(due.len(), 1, "pool b checks every 10 s (the default)");
    assert!(!due[0].plan.feat, "FEAT waits for its own interval");
    b.finish_probe(0, None, t1);
    b.finish_probe(0, None, t1);
    assert!(
        b.is_learned(0),
        "a round without FEAT keeps what was learned"
    );
    // Once the FEAT interval is over, a health round asks for FEAT again.
    let late = t0 + Duration::from_secs(FEATURE_PROBE_INTERVAL);
    let due = b.start_due(late);
    assert!(due[0].plan.feat);
    assert!(!due[1].plan.feat);
    // Health and FEAT both off: never probed.
    let off = TWO_POOLS.replace(
        r#""tls": "implicit", "health_check": false"#,
        r#""tls": "implicit", "health_check": false, "feature_probe": false"#,
    );
    let mut b = book(&off, t0);
    assert_eq!(b.start_due(t0).len(), 1, "pool a only");
}
