//! Event-script tests of the control machine: feed events, compare the actions.

use super::*;
use crate::ftp::reply::Reply;
use crate::policy::{Policy, parse_policy};

const POLICY: &str = r#"{
  "listeners": [ { "address": "127.0.0.1:2121" } ],
  "backends": { "b": { "servers": ["127.0.0.1:21"] },
                "v": { "servers": ["127.0.0.1:21"], "verify_uploads": true } },
  "roles": {
    "ro": { "allow": ["RETR", "LIST", "NLST", "SIZE", "MDTM", "CWD", "CDUP", "PWD"] },
    "rw": { "allow": ["RETR", "STOR", "LIST", "DELE", "MKD", "CWD", "PWD", "SITE"] },
    "status": { "allow": ["STAT", "RETR", "SITE", "PWD"] },
    "lister": { "allow": ["RETR", "STOR", "MLSD", "MFMT"] }
  },
  "users": {
    "reader": { "role": "ro", "backend": "b" },
    "writer": { "role": "rw", "backend": "b", "timeouts": { "idle": 120 } },
    "auditor": { "role": "status", "backend": "b" },
    "slow": { "role": "ro", "backend": "b", "timeouts": { "login": 120 } },
    "lister": { "role": "lister", "backend": "b" },
    "cutter": { "role": "ro", "backend": "b",
                "timeouts": { "session_during_transfer": "cut" } },
    "trial": { "role": "ro", "backend": "b", "enforce": false },
    "verifier": { "role": "rw", "backend": "v" }
  }
}"#;

fn policy() -> Policy {
    match parse_policy(POLICY) {
        Ok(p) => p,
        Err(errors) => panic!("test policy invalid: {errors:?}"),
    }
}

fn config() -> ControlConfig {
    ControlConfig {
        client_ip: "192.0.2.7".parse().expect("ip"),
        login_timeout: 30,
        session_timeout: 900,
        failed_login_delay_ms: 1000,
        data_connect_timeout: 30,
        backend_reply_timeout: 60,
        tls_available: true,
        tls_implicit: false,
        tls_require: crate::policy::TlsRequire::None,
        features: crate::features::STATIC_FEATURES
            .iter()
            .map(|f| f.to_string())
            .collect(),
        epsv_reachable: true,
    }
}

/// Replies sent to the client, as (code, first line).
fn client_replies(actions: &[Action]) -> Vec<u16> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendClient(r) => Some(r.code),
            _ => None,
        })
        .collect()
}

fn server_commands(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendServer(c) => {
                let mut wire = Vec::new();
                c.encode(&mut wire);
                Some(String::from_utf8_lossy(&wire).trim_end().to_string())
            }
            _ => None,
        })
        .collect()
}

/// What a relay that moved `bytes` reports.
fn relayed(bytes: u64) -> RelayReport {
    RelayReport {
        bytes,
        ..RelayReport::default()
    }
}

fn reply(code: u16, text: &str) -> Event {
    Event::ServerReply(Reply::new(code, text))
}

struct Script {
    fsm: ControlFsm,
    policy: Policy,
}

impl Script {
    fn new() -> (Script, Vec<Action>) {
        let (fsm, actions) = ControlFsm::new(config());
        (
            Script {
                fsm,
                policy: policy(),
            },
            actions,
        )
    }

    fn line(&mut self, line: &str) -> Vec<Action> {
        self.fsm.on_event(
            Event::ClientCommand(parse_command(line.as_bytes())),
            &self.policy,
        )
    }

    fn event(&mut self, event: Event) -> Vec<Action> {
        self.fsm.on_event(event, &self.policy)
    }

    /// A full login of `user` against a backend that accepts it and whose working directory
    /// is `/`.
    fn logged_in(user: &str) -> Script {
        Script::logged_in_at(user, reply(257, "\"/\" is the current directory"))
    }

    /// A full login of `user`, the backend answering ftpgate's own PWD with `pwd_reply`.
    fn logged_in_at(user: &str, pwd_reply: Event) -> Script {
        let (mut s, _) = Script::new();
        assert_eq!(client_replies(&s.line(&format!("USER {user}"))), vec![331]);
        assert!(s.line("PASS secret").contains(&Action::ConnectServer));
        s.event(Event::ServerConnected);
        assert_eq!(
            server_commands(&s.event(reply(220, "hello"))),
            vec![format!("USER {user}")]
        );
        assert_eq!(
            server_commands(&s.event(reply(331, "pw"))),
            vec!["PASS secret"]
        );
        let actions = s.event(reply(230, "in"));
        assert_eq!(client_replies(&actions), vec![230]);
        assert_eq!(server_commands(&actions), vec!["PWD"], "ftpgate's own PWD");
        assert!(s.fsm.is_logged_in());
        let actions = s.event(pwd_reply);
        assert!(
            client_replies(&actions).is_empty(),
            "the PWD reply is swallowed"
        );
        assert!(server_commands(&actions).is_empty());
        assert!(s.fsm.can_take_line(b"NOOP"));
        s
    }
}

#[test]
fn greeting_and_session_timers_come_first() {
    let (_, actions) = Script::new();
    assert_eq!(client_replies(&actions), vec![220]);
    assert!(actions.contains(&Action::SetTimer(TimerKind::Login, Duration::from_secs(30))));
    assert!(actions.contains(&Action::SetTimer(
        TimerKind::Session,
        Duration::from_secs(900)
    )));
}

#[test]
fn unknown_user_gets_331_then_530_after_the_delay_without_a_backend() {
    let (mut s, _) = Script::new();
    let known = s.line("USER reader");
    let (mut t, _) = Script::new();
    let unknown = t.line("USER mallory");
    assert_eq!(client_replies(&known), vec![331]);
    assert_eq!(client_replies(&unknown), vec![331]);
    let texts = |a: &[Action]| -> Vec<Vec<Vec<u8>>> {
        a.iter()
            .filter_map(|x| match x {
                Action::SendClient(r) => Some(r.lines.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        texts(&known),
        texts(&unknown),
        "same 331 text: no enumeration"
    );
    let actions = t.line("PASS x");
    assert!(!actions.contains(&Action::ConnectServer));
    assert!(
        client_replies(&actions).is_empty(),
        "530 waits for the delay"
    );
    assert!(actions.contains(&Action::SetTimer(
        TimerKind::FailedLogin,
        Duration::from_millis(1000)
    )));
    let actions = t.event(Event::Timer(TimerKind::FailedLogin));
    assert_eq!(client_replies(&actions), vec![530]);
    assert!(server_commands(&actions).is_empty());
}

#[test]
fn commands_before_login_get_530_and_are_not_forwarded() {
    let (mut s, _) = Script::new();
    for line in [
        "RETR x",
        "STOR y",
        "DELE z",
        "CWD /",
        "LIST",
        "PASV",
        "PORT 1,2,3,4,5,6",
    ] {
        let actions = s.line(line);
        assert_eq!(client_replies(&actions), vec![530], "{line}");
        assert!(server_commands(&actions).is_empty(), "{line}");
    }
    assert_eq!(client_replies(&s.line("PASS x")), vec![503]);
    assert_eq!(client_replies(&s.line("NOOP")), vec![200]);
    assert_eq!(client_replies(&s.line("SYST")), vec![215]);
    assert_eq!(client_replies(&s.line("FEAT")), vec![211]);
}

#[test]
fn backend_refusing_the_password_gives_530_after_the_delay() {
    let (mut s, _) = Script::new();
    s.line("USER reader");
    s.line("PASS wrong");
    s.event(Event::ServerConnected);
    s.event(reply(220, "hi"));
    s.event(reply(331, "pw"));
    let actions = s.event(reply(530, "Login incorrect."));
    assert!(actions.contains(&Action::CloseServer));
    assert!(client_replies(&actions).is_empty());
    let actions = s.event(Event::Timer(TimerKind::FailedLogin));
    assert_eq!(client_replies(&actions), vec![530]);
    assert!(!s.fsm.is_logged_in());
}

#[test]
fn read_only_role_refuses_writes_locally() {
    let mut s = Script::logged_in("reader");
    for (line, code) in [
        ("STOR f", 550),
        ("DELE f", 550),
        ("dele f", 550),
        ("RNFR f", 550),
        ("MKD d", 550),
        ("XMKD d", 550),
        ("SITE CHMOD 777 f", 502),
        ("FOO bar", 502),
        ("REIN", 502),
        ("ACCT x", 502),
    ] {
        let actions = s.line(line);
        assert_eq!(client_replies(&actions), vec![code], "{line}");
        assert!(
            server_commands(&actions).is_empty(),
            "{line} must not be forwarded"
        );
    }
}

#[test]
fn permitted_commands_are_forwarded_and_their_reply_relayed() {
    let mut s = Script::logged_in("reader");
    let actions = s.line("xpwd");
    assert_eq!(server_commands(&actions), vec!["PWD"]);
    assert!(
        !s.fsm.can_take_line(b"NOOP"),
        "next command waits for the reply"
    );
    let actions = s.event(reply(257, "\"/\""));
    assert_eq!(client_replies(&actions), vec![257]);
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn port_must_name_the_client_and_an_unprivileged_port() {
    let mut s = Script::logged_in("writer");
    // 192.0.2.7 is the client (config()).
    for (line, code) in [
        ("PORT 10,0,0,9,0,21", 501),
        ("PORT 192,0,2,7,0,80", 501),
        ("EPRT |1|198.51.100.1|5000|", 501),
        ("PORT 1,2,3", 501),
        ("PORT 999,0,0,1,4,1", 501),
        ("EPRT garbage", 501),
        ("PORT 192,0,2,7,19,137", 200),
        ("EPRT |1|192.0.2.7|5001|", 200),
    ] {
        let actions = s.line(line);
        assert_eq!(client_replies(&actions), vec![code], "{line}");
        assert!(server_commands(&actions).is_empty());
    }
}

#[test]
fn malformed_lines_get_500_or_501_and_the_session_continues() {
    let mut s = Script::logged_in("reader");
    assert_eq!(
        client_replies(&s.event(Event::ClientLineTooLong)),
        vec![500]
    );
    assert_eq!(client_replies(&s.line("RETR a\u{0}b")), vec![501]);
    assert_eq!(client_replies(&s.line("")), vec![500]);
    assert_eq!(client_replies(&s.line("R3TR x")), vec![500]);
    assert_eq!(server_commands(&s.line("NOOP")), vec!["NOOP"]);
}

#[test]
fn feat_from_the_backend_is_filtered() {
    let mut s = Script::logged_in("reader");
    s.line("FEAT");
    let backend = Reply::multi(
        211,
        &[
            "Features:",
            "AUTH SSL",
            "PBSZ",
            "HOST",
            "MDTM",
            "EPSV",
            "SIZE",
            "End",
        ],
    );
    let actions = s.event(Event::ServerReply(backend));
    let Some(Action::SendClient(r)) = actions.first() else {
        panic!("no FEAT reply")
    };
    let text: Vec<String> = r
        .lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    assert!(text.iter().any(|l| l.trim() == "MDTM"));
    assert!(text.iter().any(|l| l.trim() == "EPSV"));
    // The backend's own TLS and HOST lines are gone; ftpgate's own TLS features (it
    // terminates TLS itself) appear once.
    assert!(
        !text
            .iter()
            .any(|l| l.contains("AUTH SSL") || l.contains("HOST"))
    );
    assert_eq!(text.iter().filter(|l| l.trim() == "AUTH TLS").count(), 1);
    assert_eq!(text.iter().filter(|l| l.trim() == "PBSZ").count(), 1);
    assert_rfc2389(r);
}

/// The strict reading of RFC 2389 §3.2 (rclone's and Commons Net's): `211-` first, `211 `
/// last, and every line between them exactly one space and then a feature.
fn assert_rfc2389(reply: &Reply) -> Vec<String> {
    let mut wire = Vec::new();
    reply.encode(&mut wire);
    let text = String::from_utf8(wire).expect("ASCII");
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert!(lines.len() >= 2, "{text:?}");
    assert!(lines[0].starts_with("211-"), "{text:?}");
    assert!(lines[lines.len() - 1].starts_with("211 "), "{text:?}");
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            let feature = l
                .strip_prefix(' ')
                .unwrap_or_else(|| panic!("{l:?} in {text:?}"));
            assert!(
                !feature.is_empty() && !feature.starts_with(' '),
                "{l:?} in {text:?}"
            );
            feature.to_string()
        })
        .collect()
}

#[test]
fn feat_is_in_rfc_2389_form_before_and_after_login() {
    let (mut s, _) = Script::new();
    let actions = s.line("FEAT");
    let Some(Action::SendClient(r)) = actions.first() else {
        panic!("no FEAT reply: {actions:?}")
    };
    let before = assert_rfc2389(r);
    assert!(before.iter().any(|f| f == "AUTH TLS"), "{before:?}");
    assert!(before.iter().any(|f| f == "MDTM"), "{before:?}");

    // A backend that writes its lines without the space (some do) is relayed in the form
    // RFC 2389 asks for, and one that writes two spaces gets one.
    let backend = || {
        Reply::multi(
            211,
            &[
                "Features:",
                "MDTM",
                "  MLST size*;modify*;",
                " MFMT",
                " SIZE",
                " UTF8",
                "End",
            ],
        )
    };
    let feat_after_login = |user: &str| -> Vec<String> {
        let mut s = Script::logged_in(user);
        s.line("FEAT");
        let actions = s.event(Event::ServerReply(backend()));
        let Some(Action::SendClient(r)) = actions.first() else {
            panic!("no FEAT reply: {actions:?}")
        };
        assert_rfc2389(r)
    };
    // reader ("ro": RETR LIST NLST SIZE MDTM CWD CDUP PWD): no MLSD/MLST, no MFMT.
    let after = feat_after_login("reader");
    for kept in ["MDTM", "SIZE", "UTF8", "EPSV"] {
        assert!(after.iter().any(|f| f == kept), "{kept}: {after:?}");
    }
    // Features naming a command the role refuses are not advertised: a client would use
    // them and fail.
    for dropped in ["MLST", "MFMT"] {
        assert!(
            !after.iter().any(|f| f.starts_with(dropped)),
            "{dropped}: {after:?}"
        );
    }
    // writer ("rw": no SIZE or MDTM either).
    let after = feat_after_login("writer");
    assert!(
        !after.iter().any(|f| f == "SIZE" || f == "MDTM"),
        "{after:?}"
    );
    assert!(after.iter().any(|f| f == "UTF8"), "{after:?}");
    // A role that lists with MLSD and sets times keeps MLST (one trimmed space) and MFMT.
    let after = feat_after_login("lister");
    assert!(after.iter().any(|f| f == "MFMT"), "{after:?}");
    assert!(!after.iter().any(|f| f == "MDTM"), "{after:?}");
}

#[test]
fn timers_close_with_421() {
    let (mut s, _) = Script::new();
    let actions = s.event(Event::Timer(TimerKind::Login));
    assert_eq!(client_replies(&actions), vec![421]);
    assert!(actions.contains(&Action::Close(CloseReason::LoginTimeout)));

    let mut s = Script::logged_in("writer");
    let actions = s.event(Event::Timer(TimerKind::Idle));
    assert!(actions.contains(&Action::Close(CloseReason::IdleTimeout)));
}

#[test]
fn quit_is_answered_at_any_time() {
    let mut s = Script::logged_in("reader");
    s.line("PWD");
    assert!(s.fsm.can_take_line(b"QUIT"));
    let actions = s.line("QUIT");
    assert_eq!(client_replies(&actions), vec![221]);
    assert!(actions.contains(&Action::Close(CloseReason::Quit)));
}

#[test]
fn a_backend_refusal_after_the_delay_is_answered_at_once() {
    let (mut s, _) = Script::new();
    s.line("USER reader");
    s.line("PASS wrong");
    s.event(Event::ServerConnected);
    s.event(reply(220, "hi"));
    s.event(reply(331, "pw"));
    // The delay runs out while the (slow) backend still checks the password.
    assert!(client_replies(&s.event(Event::Timer(TimerKind::FailedLogin))).is_empty());
    let actions = s.event(reply(530, "Login incorrect."));
    assert_eq!(client_replies(&actions), vec![530]);
}

#[test]
fn a_password_never_reaches_the_audit_trail() {
    let (mut s, _) = Script::new();
    let actions = s.line("PASS hunter2");
    let mut s2 = Script::logged_in("reader");
    let mut all = actions;
    all.extend(s2.line("PASS hunter2"));
    for a in &all {
        if let Action::Audit(record) = a {
            assert!(!format!("{record:?}").contains("hunter2"), "{record:?}");
        }
    }
    assert!(
        all.iter().any(
            |a| matches!(a, Action::Audit(AuditRecord::Command { verb, .. }) if verb == "PASS")
        )
    );
}

#[test]
fn an_access_rule_refusal_is_a_delayed_530_without_a_backend() {
    let (mut s, _) = Script::new();
    s.line("USER reader");
    assert!(s.line("PASS pw").contains(&Action::ConnectServer));
    let actions = s.event(Event::LoginRefused(Refusal::UserAccess {
        user: "reader".into(),
        rule: "deny_from 192.0.2.0/24".into(),
    }));
    assert!(
        client_replies(&actions).is_empty(),
        "530 waits for the delay"
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Audit(AuditRecord::PolicyViolation {
            kind: "access_rule",
            ..
        })
    )));
    assert_eq!(
        client_replies(&s.event(Event::Timer(TimerKind::FailedLogin))),
        vec![530]
    );
}

#[test]
fn a_session_cap_refusal_is_421_and_close() {
    let (mut s, _) = Script::new();
    s.line("USER reader");
    s.line("PASS pw");
    let actions = s.event(Event::LoginRefused(Refusal::UserSessions {
        user: "reader".into(),
        cap: 1,
    }));
    assert_eq!(client_replies(&actions), vec![421]);
    assert!(actions.contains(&Action::Close(CloseReason::Refused)));
}

#[test]
fn failed_logins_are_reported_and_a_ban_closes_with_421() {
    let (mut s, _) = Script::new();
    s.line("USER nobody");
    assert!(s.line("PASS x").contains(&Action::LoginFailed));
    // The ban waits for the failed-login delay, like the 530 it replaces.
    assert!(client_replies(&s.event(Event::Banned)).is_empty());
    let actions = s.event(Event::Timer(TimerKind::FailedLogin));
    assert_eq!(client_replies(&actions), vec![421]);
    assert!(actions.contains(&Action::Close(CloseReason::Banned)));
}

#[test]
fn a_refused_connection_gets_421_and_closes() {
    let (_, actions) = ControlFsm::refused(config(), &Refusal::SessionsTotal(1));
    assert_eq!(client_replies(&actions), vec![421]);
    assert!(actions.contains(&Action::Close(CloseReason::Refused)));
}

mod cwd;
mod data;
mod dry_run;
mod hostile;
mod routing;
mod tls;
mod transfer;
