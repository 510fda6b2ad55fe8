//! Event-script tests of the control machine: feed events, compare the actions.

use super::*;
use crate::ftp::reply::Reply;
use crate::policy::{Policy, parse_policy};

const POLICY: &str = r#"{
  "listeners": [ { "address": "127.0.0.1:2121" } ],
  "backends": { "b": { "servers": ["127.0.0.1:21"] } },
  "roles": {
    "ro": { "allow": ["RETR", "LIST", "NLST", "SIZE", "MDTM", "CWD", "CDUP", "PWD"] },
    "rw": { "allow": ["RETR", "STOR", "LIST", "DELE", "MKD", "CWD", "PWD", "SITE"] },
    "status": { "allow": ["STAT", "RETR", "SITE", "PWD"] }
  },
  "users": {
    "reader": { "role": "ro", "backend": "b" },
    "writer": { "role": "rw", "backend": "b", "timeouts": { "idle": 120 } },
    "auditor": { "role": "status", "backend": "b" },
    "slow": { "role": "ro", "backend": "b", "timeouts": { "login": 120 } }
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

fn reply(code: u16, text: &str) -> Event<'static> {
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
        self.fsm
            .on_event(Event::ClientLine(line.as_bytes()), &self.policy)
    }

    fn event(&mut self, event: Event<'_>) -> Vec<Action> {
        self.fsm.on_event(event, &self.policy)
    }

    /// A full login of `user` against a backend that accepts it and whose working directory
    /// is `/`.
    fn logged_in(user: &str) -> Script {
        Script::logged_in_at(user, reply(257, "\"/\" is the current directory"))
    }

    /// A full login of `user`, the backend answering ftpgate's own PWD with `pwd_reply`.
    fn logged_in_at(user: &str, pwd_reply: Event<'_>) -> Script {
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
fn passive_download_holds_the_final_reply_until_the_relay_is_done() {
    let mut s = Script::logged_in("reader");
    let actions = s.line("PASV");
    assert!(actions.contains(&Action::OpenPassive));
    assert!(
        client_replies(&actions).is_empty(),
        "227 waits for the listener"
    );
    assert!(
        server_commands(&actions).is_empty(),
        "the backend is not asked yet"
    );
    let actions = s.event(Event::PassiveOpened(
        "203.0.113.5:50001".parse().expect("addr"),
    ));
    let Some(Action::SendClient(r)) = actions.first() else {
        panic!("no 227: {actions:?}")
    };
    assert_eq!(r.code, 227);
    assert_eq!(
        r.lines[0],
        b"227 Entering Passive Mode (203,0,113,5,195,81).".to_vec()
    );
    assert_eq!(server_commands(&s.line("RETR big.bin")), vec!["PASV"]);
    let actions = s.event(reply(227, "Entering Passive Mode (10,9,9,9,200,1)."));
    // The backend's address is ignored: only the port travels.
    assert!(actions.contains(&Action::ConnectServerData(200 * 256 + 1)));
    assert!(
        server_commands(&s.event(Event::ServerDataConnected)).is_empty(),
        "the command waits for the client's data connection"
    );
    assert_eq!(
        server_commands(&s.event(Event::ClientDataConnected)),
        vec!["RETR big.bin"]
    );
    let actions = s.event(reply(150, "Opening"));
    assert_eq!(client_replies(&actions), vec![150]);
    assert!(actions.contains(&Action::StartRelay {
        direction: Direction::Download,
        max_bytes: None,
    }));
    let actions = s.event(reply(226, "Transfer complete."));
    assert!(client_replies(&actions).is_empty(), "226 is held");
    let actions = s.event(Event::RelayDone { bytes: 42 });
    assert_eq!(client_replies(&actions), vec![226]);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Audit(AuditRecord::Transfer {
            bytes: 42,
            result: "ok",
            direction: "download",
            ..
        })
    )));
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn relay_done_before_the_final_reply_waits_for_it() {
    let mut s = Script::logged_in("writer");
    s.line("PORT 192,0,2,7,19,137");
    let actions = s.line("STOR up.bin");
    assert!(actions.contains(&Action::ConnectClientData(
        "192.0.2.7:5001".parse().expect("addr")
    )));
    s.event(reply(227, "(127,0,0,1,4,1)"));
    s.event(Event::ClientDataConnected);
    assert_eq!(
        server_commands(&s.event(Event::ServerDataConnected)),
        vec!["STOR up.bin"]
    );
    let actions = s.event(reply(150, "Ok to send data."));
    assert!(actions.contains(&Action::StartRelay {
        direction: Direction::Upload,
        max_bytes: None,
    }));
    assert!(client_replies(&s.event(Event::RelayDone { bytes: 7 })).is_empty());
    assert_eq!(client_replies(&s.event(reply(226, "ok"))), vec![226]);
}

/// A reader's RETR of `name` up to the relay.
fn relaying_download(name: &str) -> Script {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataConnected);
    s.line(&format!("RETR {name}"));
    s.event(reply(227, "(127,0,0,1,4,1)"));
    s.event(Event::ServerDataConnected);
    s.event(reply(150, "Opening"));
    s
}

#[test]
fn a_failed_audit_copy_fails_the_transfer_with_451() {
    // The backend's 226 came first and is held; then the copy failed.
    let mut s = relaying_download("dir/a.bin");
    assert_eq!(s.fsm.transfer_file(), Some(&b"dir/a.bin"[..]));
    assert!(client_replies(&s.event(reply(226, "ok"))).is_empty());
    let actions = s.event(Event::RelayCopyFailed { bytes: 9 });
    assert_eq!(client_replies(&actions), vec![451]);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Audit(AuditRecord::Transfer {
            bytes: 9,
            result: "copy_failed",
            ..
        })
    )));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Audit(AuditRecord::Command { reply: 451, .. })))
    );
    assert!(s.fsm.can_take_line(b"NOOP"));
    assert_eq!(s.fsm.transfer_file(), None);

    // The copy failed before the backend's final reply: that reply is swallowed.
    let mut s = relaying_download("b.bin");
    assert_eq!(
        client_replies(&s.event(Event::RelayCopyFailed { bytes: 0 })),
        vec![451]
    );
    assert!(client_replies(&s.event(reply(226, "ok"))).is_empty());
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn listings_have_no_transfer_file() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataConnected);
    s.line("LIST /");
    assert_eq!(s.fsm.transfer_file(), None);
}

#[test]
fn rest_is_held_and_sent_after_the_data_connection() {
    let mut s = Script::logged_in("reader");
    let actions = s.line("REST 1000");
    assert_eq!(client_replies(&actions), vec![350]);
    assert!(server_commands(&actions).is_empty());
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataConnected);
    s.line("RETR f");
    s.event(reply(227, "(127,0,0,1,4,1)"));
    assert_eq!(
        server_commands(&s.event(Event::ServerDataConnected)),
        vec!["REST 1000"]
    );
    assert_eq!(
        server_commands(&s.event(reply(350, "Restart"))),
        vec!["RETR f"]
    );
}

#[test]
fn transfer_without_port_or_pasv_gets_425() {
    let mut s = Script::logged_in("reader");
    let actions = s.line("RETR f");
    assert_eq!(client_replies(&actions), vec![425]);
    assert!(server_commands(&actions).is_empty());
}

#[test]
fn backend_error_before_the_data_flows_is_relayed() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataConnected);
    s.line("RETR missing");
    s.event(reply(227, "(127,0,0,1,4,1)"));
    s.event(Event::ServerDataConnected);
    let actions = s.event(reply(550, "Failed to open file."));
    assert_eq!(client_replies(&actions), vec![550]);
    assert!(actions.contains(&Action::AbortData));
}

#[test]
fn abor_during_a_relay_relays_both_backend_replies() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataConnected);
    s.line("RETR big");
    s.event(reply(227, "(127,0,0,1,4,1)"));
    s.event(Event::ServerDataConnected);
    s.event(reply(150, "Opening"));
    assert!(s.fsm.can_take_line(b"ABOR"));
    assert!(!s.fsm.can_take_line(b"NOOP"));
    let actions = s.line("ABOR");
    assert!(actions.contains(&Action::AbortData));
    assert_eq!(server_commands(&actions), vec!["ABOR"]);
    assert_eq!(client_replies(&s.event(reply(426, "aborted"))), vec![426]);
    assert_eq!(client_replies(&s.event(reply(226, "ABOR ok"))), vec![226]);
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn client_data_failure_answers_426_and_swallows_the_backend_reply() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataConnected);
    s.line("RETR big");
    s.event(reply(227, "(127,0,0,1,4,1)"));
    s.event(Event::ServerDataConnected);
    s.event(reply(150, "Opening"));
    let actions = s.event(Event::RelayFailed {
        bytes: 10,
        side: Side::Client,
    });
    assert_eq!(client_replies(&actions), vec![426]);
    assert!(client_replies(&s.event(reply(426, "Failure writing"))).is_empty());
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn backend_closing_gives_421_and_closes() {
    let mut s = Script::logged_in("reader");
    let actions = s.event(Event::ServerClosed);
    assert_eq!(client_replies(&actions), vec![421]);
    assert!(actions.contains(&Action::Close(CloseReason::ServerClosed)));
    assert!(s.fsm.is_closed());
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
fn active_connect_failure_is_425_and_the_backend_never_sees_the_command() {
    let mut s = Script::logged_in("writer");
    s.line("PORT 192,0,2,7,19,137");
    s.line("STOR up.bin");
    let actions = s.event(Event::ClientDataFailed);
    assert_eq!(client_replies(&actions), vec![425]);
    assert!(server_commands(&actions).is_empty());
    // The backend's 227 for ftpgate's own PASV is still owed: swallowed, not relayed.
    let actions = s.event(reply(227, "(127,0,0,1,4,1)"));
    assert!(client_replies(&actions).is_empty());
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ConnectServerData(_)))
    );
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn passive_client_that_never_connects_gets_425_after_the_timeout() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    let actions = s.line("RETR f");
    assert!(actions.contains(&Action::SetTimer(
        TimerKind::DataConnect,
        Duration::from_secs(30)
    )));
    s.event(reply(227, "(127,0,0,1,4,1)"));
    s.event(Event::ServerDataConnected);
    let actions = s.event(Event::Timer(TimerKind::DataConnect));
    assert_eq!(client_replies(&actions), vec![425]);
    assert!(
        server_commands(&actions).is_empty(),
        "RETR never reached the backend"
    );
    assert!(actions.contains(&Action::AbortData));
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
    let actions = s.event(Event::LoginRefused {
        text: "Too many sessions for this user.",
        rule: "deny_from 192.0.2.0/24".into(),
        limit: false,
    });
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
    let actions = s.event(Event::LoginRefused {
        text: "Too many sessions for this user.",
        rule: "limits.sessions 1".into(),
        limit: true,
    });
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
    let (_, actions) = ControlFsm::refused(config(), "limit", "x".into(), "Too many.");
    assert_eq!(client_replies(&actions), vec![421]);
    assert!(actions.contains(&Action::Close(CloseReason::Refused)));
}

fn tls_config(require: crate::policy::TlsRequire) -> ControlConfig {
    ControlConfig {
        tls_require: require,
        ..config()
    }
}

#[test]
fn auth_tls_answers_234_and_starts_tls_once() {
    let (fsm, _) = ControlFsm::new(config());
    let mut s = Script {
        fsm,
        policy: policy(),
    };
    assert_eq!(
        client_replies(&s.line("PBSZ 0")),
        vec![503],
        "PBSZ needs AUTH"
    );
    let actions = s.line("AUTH TLS");
    assert_eq!(client_replies(&actions), vec![234]);
    assert_eq!(
        actions.last(),
        Some(&Action::StartClientTls),
        "after the 234 is queued"
    );
    assert_eq!(client_replies(&s.line("AUTH TLS")), vec![503]);
    assert_eq!(
        client_replies(&s.line("PROT P")),
        vec![503],
        "PROT needs PBSZ"
    );
    assert_eq!(client_replies(&s.line("PBSZ 0")), vec![200]);
    assert_eq!(client_replies(&s.line("PROT S")), vec![536]);
    assert_eq!(client_replies(&s.line("PROT P")), vec![200]);
    assert!(s.fsm.data_protected());
    assert_eq!(client_replies(&s.line("PROT C")), vec![200]);
    assert!(!s.fsm.data_protected());
    assert_eq!(client_replies(&s.line("CCC")), vec![534]);
}

#[test]
fn auth_is_refused_where_tls_is_not_configured() {
    let (fsm, _) = ControlFsm::new(ControlConfig {
        tls_available: false,
        ..config()
    });
    let mut s = Script {
        fsm,
        policy: policy(),
    };
    let actions = s.line("AUTH TLS");
    assert_eq!(client_replies(&actions), vec![502]);
    assert!(!actions.contains(&Action::StartClientTls));
}

#[test]
fn tls_required_for_login_refuses_user_before_auth() {
    let (fsm, _) = ControlFsm::new(tls_config(crate::policy::TlsRequire::Login));
    let mut s = Script {
        fsm,
        policy: policy(),
    };
    let actions = s.line("USER reader");
    assert_eq!(client_replies(&actions), vec![530]);
    s.line("AUTH TLS");
    assert_eq!(client_replies(&s.line("USER reader")), vec![331]);
}

#[test]
fn tls_required_for_all_refuses_prot_c_and_clear_transfers() {
    let (fsm, _) = ControlFsm::new(ControlConfig {
        tls_implicit: true,
        ..tls_config(crate::policy::TlsRequire::All)
    });
    let mut s = Script {
        fsm,
        policy: policy(),
    };
    s.line("USER reader");
    s.line("PASS pw");
    s.event(Event::ServerConnected);
    s.event(reply(220, "hi"));
    s.event(reply(331, "pw"));
    s.event(reply(230, "in"));
    s.event(reply(257, "\"/\""));
    assert_eq!(client_replies(&s.line("PBSZ 0")), vec![200]);
    assert_eq!(client_replies(&s.line("PROT C")), vec![534]);
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    let actions = s.line("RETR f");
    assert_eq!(client_replies(&actions), vec![521]);
    assert!(server_commands(&actions).is_empty());
    assert_eq!(client_replies(&s.line("PROT P")), vec![200]);
    assert_eq!(server_commands(&s.line("RETR f")), vec!["PASV"]);
}

// ----- working directory and audit paths -----------------------------------------------------

/// The `path` of every command and transfer event in `actions`, as (event, verb, path).
fn audit_paths(actions: &[Action]) -> Vec<(&'static str, String, Option<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(AuditRecord::Command { verb, path, .. }) => {
                Some(("command", verb.clone(), path.clone()))
            }
            Action::Audit(AuditRecord::Transfer { verb, path, .. }) => {
                Some(("transfer", verb.to_string(), path.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The path of the one command event in `actions`.
fn command_path(actions: &[Action]) -> Option<String> {
    let events = audit_paths(actions);
    assert_eq!(events.len(), 1, "{actions:?}");
    events.into_iter().next().and_then(|(_, _, path)| path)
}

impl Script {
    /// Sends a forwarded command, answers it with `code`; returns the path it was logged with.
    fn forwarded(&mut self, line: &str, code: u16) -> Option<String> {
        let sent = server_commands(&self.line(line));
        assert_eq!(sent.len(), 1, "{line} forwarded: {sent:?}");
        let actions = self.event(reply(code, "done"));
        assert_eq!(client_replies(&actions), vec![code], "{line}");
        assert!(
            server_commands(&actions).is_empty(),
            "{line}: nothing more to the backend"
        );
        command_path(&actions)
    }

    /// A complete passive download of `line`; returns the command and transfer events.
    fn download(&mut self, line: &str) -> Vec<(&'static str, String, Option<String>)> {
        self.line("PASV");
        self.event(Event::PassiveOpened(
            "203.0.113.5:50001".parse().expect("addr"),
        ));
        assert_eq!(server_commands(&self.line(line)), vec!["PASV"]);
        self.event(reply(227, "Entering Passive Mode (10,9,9,9,200,1)."));
        self.event(Event::ServerDataConnected);
        assert_eq!(
            server_commands(&self.event(Event::ClientDataConnected)),
            vec![line]
        );
        self.event(reply(150, "Opening"));
        self.event(reply(226, "Transfer complete."));
        let actions = self.event(Event::RelayDone { bytes: 3 });
        assert_eq!(client_replies(&actions), vec![226]);
        audit_paths(&actions)
    }
}

fn some(path: &str) -> Option<String> {
    Some(path.to_string())
}

#[test]
fn the_pwd_after_login_is_swallowed_and_commands_wait_for_it() {
    let (mut s, _) = Script::new();
    s.line("USER reader");
    s.line("PASS pw");
    s.event(Event::ServerConnected);
    s.event(reply(220, "hi"));
    s.event(reply(331, "pw"));
    let actions = s.event(reply(230, "in"));
    assert_eq!(
        client_replies(&actions),
        vec![230],
        "the login is answered at once"
    );
    assert_eq!(server_commands(&actions), vec!["PWD"]);
    assert!(actions.contains(&Action::SetTimer(
        TimerKind::BackendReply,
        Duration::from_secs(60)
    )));
    assert!(!s.fsm.can_take_line(b"SIZE f"), "the next command waits");
    assert!(s.fsm.can_take_line(b"QUIT"));
    assert!(s.event(reply(150, "odd")).is_empty(), "a 1xx keeps waiting");
    let actions = s.event(reply(257, "\"/home/edi\" is the current directory"));
    assert!(client_replies(&actions).is_empty(), "never relayed");
    assert!(server_commands(&actions).is_empty());
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Audit(_))),
        "ftpgate's own command is not a client command: {actions:?}"
    );
    assert!(s.fsm.can_take_line(b"SIZE f"));
    assert_eq!(
        s.forwarded("SIZE file.csv", 213),
        some("/home/edi/file.csv")
    );
}

#[test]
fn a_backend_that_never_answers_the_pwd_times_out() {
    let (mut s, _) = Script::new();
    s.line("USER reader");
    s.line("PASS pw");
    s.event(Event::ServerConnected);
    s.event(reply(220, "hi"));
    s.event(reply(331, "pw"));
    s.event(reply(230, "in"));
    let actions = s.event(Event::Timer(TimerKind::BackendReply));
    assert_eq!(client_replies(&actions), vec![421]);
    assert!(s.fsm.is_closed());
}

#[test]
fn cwd_then_retr_and_listings_are_logged_with_the_full_path() {
    let mut s = Script::logged_in("reader");
    assert_eq!(s.forwarded("CWD /in/2026", 250), some("/in/2026"));
    let events = s.download("RETR file.csv");
    assert_eq!(
        events,
        vec![
            ("command", "RETR".to_string(), some("/in/2026/file.csv")),
            ("transfer", "RETR".to_string(), some("/in/2026/file.csv")),
        ]
    );
    let events = s.download("LIST -la");
    assert_eq!(events[0].2, some("/in/2026"), "LIST options are not a path");
    assert_eq!(events[1].2, some("/in/2026"));
    let events = s.download("NLST -l ../2025");
    assert_eq!(events[1].2, some("/in/2025"));
}

#[test]
fn xcwd_and_xcup_are_followed_like_cwd_and_cdup() {
    let mut s = Script::logged_in("reader");
    assert_eq!(s.forwarded("XCWD in", 250), some("/in"));
    assert_eq!(s.forwarded("xcwd 2026", 250), some("/in/2026"));
    assert_eq!(s.forwarded("XCUP", 250), some("/in"));
    assert_eq!(s.forwarded("SIZE f", 213), some("/in/f"));
}

#[test]
fn cdup_and_dot_dot_never_go_above_the_root() {
    let mut s = Script::logged_in("reader");
    assert_eq!(s.forwarded("CWD /in/2026", 250), some("/in/2026"));
    assert_eq!(s.forwarded("CDUP", 250), some("/in"));
    assert_eq!(s.forwarded("CDUP", 250), some("/"));
    assert_eq!(s.forwarded("CDUP", 250), some("/"), "CDUP at the root");
    assert_eq!(s.forwarded("CWD ../../..", 250), some("/"));
    assert_eq!(s.forwarded("SIZE ../../x", 213), some("/x"));
    assert_eq!(s.forwarded("CWD in/./2026/../2025", 250), some("/in/2025"));
    assert_eq!(s.forwarded("MDTM f", 213), some("/in/2025/f"));
}

#[test]
fn absolute_arguments_and_repeated_slashes_are_normalised() {
    let mut s = Script::logged_in("reader");
    assert_eq!(s.forwarded("CWD /in", 250), some("/in"));
    assert_eq!(s.forwarded("SIZE //out///a.txt", 213), some("/out/a.txt"));
    assert_eq!(s.forwarded("CWD in//2026/", 250), some("/in/in/2026"));
    assert_eq!(s.forwarded("MDTM ./f", 213), some("/in/in/2026/f"));
    assert_eq!(s.forwarded("CWD //", 250), some("/"));
    assert_eq!(s.forwarded("SIZE f", 213), some("/f"));
}

#[test]
fn a_failed_cwd_leaves_the_directory_unchanged() {
    let mut s = Script::logged_in("reader");
    assert_eq!(s.forwarded("CWD /in", 250), some("/in"));
    assert_eq!(
        s.forwarded("CWD nope", 550),
        some("/in/nope"),
        "the event names what was asked for"
    );
    assert_eq!(s.forwarded("CDUP", 550), some("/"));
    assert_eq!(s.forwarded("SIZE f", 213), some("/in/f"));
    // A denied command carries the path too; a refused one never changes the directory.
    let mut w = Script::logged_in("writer");
    assert_eq!(w.forwarded("CWD /in", 250), some("/in"));
    let actions = w.line("CDUP");
    assert_eq!(client_replies(&actions), vec![550], "CDUP not in the role");
    assert_eq!(command_path(&actions), some("/"));
    assert_eq!(command_path(&w.line("RMD old")), some("/in/old"));
    assert_eq!(w.forwarded("DELE f", 250), some("/in/f"));
}

#[test]
fn commands_that_name_no_path_and_commands_before_login_have_none() {
    let (mut s, _) = Script::new();
    assert_eq!(command_path(&s.line("RETR /x")), None, "before login");
    let mut s = Script::logged_in("reader");
    assert_eq!(s.forwarded("NOOP", 200), None);
    assert_eq!(s.forwarded("PWD", 257), None);
    assert_eq!(s.forwarded("CWD", 550), None, "CWD without argument");
    assert_eq!(s.forwarded("TYPE I", 200), None);
}

#[test]
fn a_client_pwd_is_relayed_and_does_not_change_the_directory() {
    let mut s = Script::logged_in("reader");
    assert_eq!(s.forwarded("CWD /in", 250), some("/in"));
    let actions = s.line("PWD");
    assert_eq!(server_commands(&actions), vec!["PWD"]);
    assert_eq!(
        client_replies(&s.event(reply(257, "\"/elsewhere\""))),
        vec![257]
    );
    assert_eq!(s.forwarded("SIZE f", 213), some("/in/f"));
}

#[test]
fn an_unknown_directory_logs_relative_paths_behind_a_question_mark() {
    for pwd in [
        reply(550, "PWD not permitted"),
        reply(257, "\"'USER1.'\" is working directory."),
        reply(257, "no quotes and no path"),
    ] {
        let mut s = Script::logged_in_at("reader", pwd);
        assert_eq!(s.forwarded("SIZE file.csv", 213), some("?file.csv"));
        assert_eq!(s.forwarded("CWD sub", 250), some("?sub"));
        assert_eq!(s.forwarded("CDUP", 250), some("?.."));
        assert_eq!(s.forwarded("SIZE /abs/f", 213), some("/abs/f"));
        let events = s.download("LIST");
        assert_eq!(events[1].2, some("?"));
        // An absolute CWD makes the directory known again.
        assert_eq!(s.forwarded("CWD /out/../in", 250), some("/in"));
        assert_eq!(s.forwarded("SIZE f", 213), some("/in/f"));
    }
}

#[test]
fn the_pwd_reply_is_normalised() {
    let mut s = Script::logged_in_at("reader", reply(257, "\"/home//edi/\" is cwd"));
    assert_eq!(s.forwarded("SIZE f", 213), some("/home/edi/f"));
    let mut s = Script::logged_in_at("reader", reply(257, "\"/a \"\"q\"\"\" is cwd"));
    assert_eq!(s.forwarded("SIZE f", 213), some("/a \"q\"/f"));
}

#[test]
fn a_cwd_whose_target_is_the_servers_choice_asks_pwd_again() {
    let mut s = Script::logged_in("reader");
    assert_eq!(s.forwarded("CWD /in", 250), some("/in"));
    s.line("CWD ~");
    let actions = s.event(reply(250, "ok"));
    assert_eq!(client_replies(&actions), vec![250]);
    assert_eq!(server_commands(&actions), vec!["PWD"]);
    assert!(!s.fsm.can_take_line(b"SIZE f"));
    let actions = s.event(reply(257, "\"/home/reader\""));
    assert!(client_replies(&actions).is_empty());
    assert_eq!(s.forwarded("SIZE f", 213), some("/home/reader/f"));
    // A failed one does not.
    s.line("CWD ~nobody");
    let actions = s.event(reply(550, "no"));
    assert!(server_commands(&actions).is_empty());
    assert_eq!(s.forwarded("SIZE f", 213), some("/home/reader/f"));
}

#[test]
fn an_over_long_directory_becomes_unknown() {
    let mut s = Script::logged_in("reader");
    let deep = "d".repeat(3000);
    assert!(s.forwarded(&format!("CWD {deep}"), 250).is_some());
    s.forwarded(&format!("CWD {deep}"), 250);
    assert_eq!(s.forwarded("SIZE f", 213), some("?f"));
    assert_eq!(s.forwarded("CWD /in", 250), some("/in"));
    assert_eq!(s.forwarded("SIZE f", 213), some("/in/f"));
}

#[test]
fn non_utf8_arguments_are_recoverable_from_the_audit_event() {
    let mut s = Script::logged_in("reader");
    let actions = s
        .fsm
        .on_event(Event::ClientLine(b"SIZE caf\xe9 \"x\"\\"), &s.policy);
    let record = actions.iter().find_map(|a| match a {
        Action::SendServer(_) => None,
        Action::Audit(r) => Some(r.clone()),
        _ => None,
    });
    // SIZE is forwarded; its command event comes with the reply.
    assert!(record.is_none(), "{actions:?}");
    let actions = s.event(reply(213, "4"));
    let Some(Action::Audit(AuditRecord::Command { arg, arg_hex, .. })) = actions
        .iter()
        .find(|a| matches!(a, Action::Audit(AuditRecord::Command { .. })))
    else {
        panic!("no command event: {actions:?}")
    };
    assert!(arg.contains('\u{fffd}'));
    assert_eq!(arg_hex.as_deref(), Some("636166e9202278225c"));
    let line = serde_json::to_string(&AuditRecord::Command {
        verb: "SIZE".into(),
        arg: arg.clone(),
        arg_hex: arg_hex.clone(),
        path: None,
        decision: "allow",
        reply: 213,
    })
    .expect("json");
    assert!(!line.contains('\n'));
}

#[test]
fn a_non_utf8_user_name_keeps_its_bytes() {
    let (mut s, _) = Script::new();
    s.fsm
        .on_event(Event::ClientLine(b"USER j\xf6rg"), &s.policy);
    let user = s.fsm.user().expect("user");
    assert_eq!(user.name_hex.as_deref(), Some("6af67267"));
    assert!(user.name.contains('\u{fffd}'));
}

#[path = "control_hostile_tests.rs"]
mod hostile;
