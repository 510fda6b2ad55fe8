//! Event-script tests of the control machine against hostile peers: commands classified by
//! what they do, backends that flood or speak out of turn, clients that flood before login,
//! login timing that must not tell names apart, protected data connections that must finish
//! their handshake before any file byte or transfer command.

use super::*;

fn audited_commands(actions: &[Action]) -> Vec<(String, u16, Option<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(AuditRecord::Command {
                verb, reply, path, ..
            }) => Some((verb.clone(), *reply, path.clone())),
            _ => None,
        })
        .collect()
}

fn violations(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(AuditRecord::PolicyViolation { kind, .. }) => Some(*kind),
            _ => None,
        })
        .collect()
}

fn closes(actions: &[Action]) -> Option<CloseReason> {
    actions.iter().find_map(|a| match a {
        Action::Close(r) => Some(*r),
        _ => None,
    })
}

#[test]
fn stat_with_a_path_needs_list_and_is_audited_with_its_path() {
    let mut s = Script::logged_in("auditor");
    let actions = s.line("STAT");
    assert_eq!(
        server_commands(&actions),
        vec!["STAT"],
        "status needs STAT only"
    );
    s.event(reply(211, "status"));
    let actions = s.line("STAT -la /etc");
    assert_eq!(client_replies(&actions), vec![550]);
    assert!(
        server_commands(&actions).is_empty(),
        "no listing without LIST"
    );
    assert_eq!(
        audited_commands(&actions),
        vec![("STAT".to_string(), 550, Some("/etc".to_string()))]
    );
}

#[test]
fn site_subcommands_need_what_they_do() {
    let mut s = Script::logged_in("auditor"); // STAT RETR SITE PWD: no STOR
    let actions = s.line("SITE CPTO /pub/copy");
    assert_eq!(client_replies(&actions), vec![550]);
    assert!(server_commands(&actions).is_empty());
    let actions = s.line("SITE EXEC /bin/sh");
    assert_eq!(client_replies(&actions), vec![502]);
    assert!(server_commands(&actions).is_empty());
    let actions = s.line("SITE FROBNICATE");
    assert_eq!(client_replies(&actions), vec![502]);
    let actions = s.line("SITE CHMOD 600 secret.txt");
    assert_eq!(server_commands(&actions), vec!["SITE CHMOD 600 secret.txt"]);
    let actions = s.event(reply(200, "ok"));
    assert_eq!(
        audited_commands(&actions),
        vec![("SITE".to_string(), 200, Some("/secret.txt".to_string()))]
    );
    let mut w = Script::logged_in("writer"); // RETR STOR SITE
    assert_eq!(
        server_commands(&w.line("SITE CPFR /a")),
        vec!["SITE CPFR /a"]
    );
}

#[test]
fn opts_is_forwarded_only_for_what_the_role_may_use() {
    let mut s = Script::logged_in("reader"); // no MLST, no MLSD
    assert_eq!(client_replies(&s.line("OPTS MLST type;size;")), vec![550]);
    assert_eq!(client_replies(&s.line("OPTS MODE Z")), vec![501]);
    assert_eq!(
        server_commands(&s.line("OPTS UTF8 ON")),
        vec!["OPTS UTF8 ON"]
    );
}

#[test]
fn pasv_is_audited_with_the_reply_the_client_got() {
    let mut s = Script::logged_in("reader");
    let actions = s.line("PASV");
    assert!(
        audited_commands(&actions).is_empty(),
        "not before the outcome"
    );
    let actions = s.event(Event::PassiveFailed);
    assert_eq!(client_replies(&actions), vec![425]);
    assert_eq!(
        audited_commands(&actions),
        vec![("PASV".to_string(), 425, None)]
    );
    s.line("EPSV");
    let actions = s.event(Event::PassiveOpened(
        "192.0.2.1:50000".parse().expect("addr"),
    ));
    assert_eq!(client_replies(&actions), vec![229]);
    assert_eq!(
        audited_commands(&actions),
        vec![("EPSV".to_string(), 229, None)]
    );
}

#[test]
fn a_backend_streaming_preliminary_replies_is_cut_off() {
    let mut s = Script::logged_in("reader");
    s.line("SIZE a");
    for _ in 0..crate::limits::MAX_PRELIMINARY_REPLIES {
        let actions = s.event(reply(150, "wait"));
        assert_eq!(client_replies(&actions), vec![150]);
    }
    let actions = s.event(reply(150, "wait"));
    assert_eq!(client_replies(&actions), vec![421]);
    assert_eq!(violations(&actions), vec!["backend_protocol"]);
    assert_eq!(closes(&actions), Some(CloseReason::ServerProtocolError));
}

#[test]
fn preliminary_replies_are_counted_per_command() {
    let mut s = Script::logged_in("reader");
    for _ in 0..3 {
        s.line("SIZE a");
        for _ in 0..crate::limits::MAX_PRELIMINARY_REPLIES {
            s.event(reply(150, "wait"));
        }
        let actions = s.event(reply(213, "1"));
        assert_eq!(client_replies(&actions), vec![213]);
    }
}

#[test]
fn an_unsolicited_backend_reply_closes_the_session() {
    let mut s = Script::logged_in("reader");
    let actions = s.event(reply(226, "surprise"));
    assert_eq!(client_replies(&actions), vec![421], "never relayed as is");
    assert_eq!(violations(&actions), vec!["backend_protocol"]);
    assert_eq!(closes(&actions), Some(CloseReason::ServerProtocolError));
}

#[test]
fn a_flood_before_login_is_summarised_then_closed() {
    let (mut s, _) = Script::new();
    let mut audited = 0;
    for _ in 0..crate::limits::MAX_COMMANDS_BEFORE_LOGIN {
        let actions = s.line("NOOP");
        assert_eq!(client_replies(&actions), vec![200]);
        audited += audited_commands(&actions).len();
    }
    assert_eq!(
        audited, 1,
        "a repeated command is counted, not recorded again"
    );
    let actions = s.line("NOOP");
    assert_eq!(client_replies(&actions), vec![421]);
    assert_eq!(violations(&actions), vec!["limit"]);
    assert_eq!(closes(&actions), Some(CloseReason::TooManyCommands));
    let repeated = s.fsm.take_repeated_commands();
    assert_eq!(
        repeated.get("NOOP").copied(),
        Some(u64::from(crate::limits::MAX_COMMANDS_BEFORE_LOGIN) - 1)
    );
}

#[test]
fn after_login_every_command_is_audited() {
    let mut s = Script::logged_in("reader");
    for _ in 0..100 {
        let actions = s.line("HELP");
        assert_eq!(audited_commands(&actions).len(), 1);
    }
    assert!(s.fsm.take_repeated_commands().is_empty());
}

#[test]
fn user_sets_no_timer_for_a_known_name() {
    let (mut s, _) = Script::new();
    let known = s.line("USER slow");
    let (mut t, _) = Script::new();
    let unknown = t.line("USER nobody");
    assert!(
        !known.iter().any(|a| matches!(a, Action::SetTimer(..))),
        "{known:?}"
    );
    assert_eq!(client_replies(&known), client_replies(&unknown));
    // After PASS the longer login timeout of the user gives its backend login more time.
    let actions = s.line("PASS pw");
    assert!(actions.contains(&Action::SetTimer(
        TimerKind::Login,
        Duration::from_secs(120)
    )));
}

#[test]
fn a_login_timeout_during_the_backend_login_answers_530_at_the_delay_then_closes() {
    let (mut s, _) = Script::new();
    s.line("USER reader");
    s.line("PASS pw");
    s.event(Event::ServerConnected);
    s.event(reply(220, "hello"));
    let actions = s.event(Event::Timer(TimerKind::Login));
    assert!(
        client_replies(&actions).is_empty(),
        "no sooner than the delay"
    );
    assert!(actions.contains(&Action::CloseServer));
    assert!(actions.contains(&Action::LoginFailed));
    let actions = s.event(Event::Timer(TimerKind::FailedLogin));
    assert_eq!(client_replies(&actions), vec![530, 421]);
    assert_eq!(closes(&actions), Some(CloseReason::LoginTimeout));
    // An unknown name whose login timeout passes at the same moment gets the same answer
    // at the same moment.
    let (mut u, _) = Script::new();
    u.line("USER nobody");
    u.line("PASS pw");
    assert!(client_replies(&u.event(Event::Timer(TimerKind::Login))).is_empty());
    assert_eq!(
        client_replies(&u.event(Event::Timer(TimerKind::FailedLogin))),
        vec![530, 421]
    );
}

#[test]
fn a_known_users_longer_login_timeout_ends_with_a_failed_login() {
    let (mut s, _) = Script::new();
    s.line("USER slow");
    s.line("PASS wrong");
    s.event(Event::ServerConnected);
    s.event(reply(220, "hello"));
    s.event(reply(331, "pw"));
    s.event(Event::Timer(TimerKind::FailedLogin));
    let actions = s.event(reply(530, "no"));
    assert_eq!(client_replies(&actions), vec![530]);
    assert!(
        actions.contains(&Action::SetTimer(TimerKind::Login, Duration::from_secs(30))),
        "back to the common login timeout: {actions:?}"
    );
}

/// A logged-in reader with PROT P, a passive port, and `RETR f` waiting for its data
/// connections.
fn protected_retr() -> Script {
    let mut s = Script::logged_in("reader");
    assert_eq!(client_replies(&s.line("AUTH TLS")), vec![234]);
    s.line("PBSZ 0");
    s.line("PROT P");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "192.0.2.1:50000".parse().expect("addr"),
    ));
    assert_eq!(server_commands(&s.line("RETR f")), vec!["PASV"]);
    s.event(reply(227, "Entering Passive Mode (10,0,0,1,4,1)."));
    s
}

#[test]
fn a_protected_data_connection_gets_the_command_only_after_its_handshake() {
    let mut s = protected_retr();
    let actions = s.event(Event::ClientDataTlsPending);
    assert!(server_commands(&actions).is_empty());
    // ftplib and lftp start TLS only after a 150: ftpgate sends its own.
    let actions = s.event(Event::ServerDataConnected);
    assert_eq!(client_replies(&actions), vec![150]);
    assert!(server_commands(&actions).is_empty(), "the backend waits");
    let actions = s.event(Event::ClientDataConnected);
    assert_eq!(server_commands(&actions), vec!["RETR f"]);
    let actions = s.event(reply(150, "Opening"));
    assert!(
        client_replies(&actions).is_empty(),
        "the client has its 150"
    );
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::StartRelay { .. }))
    );
}

#[test]
fn a_handshake_that_finishes_before_the_backend_is_ready_relays_the_backends_150() {
    let mut s = protected_retr();
    s.event(Event::ClientDataTlsPending);
    s.event(Event::ClientDataConnected); // curl: TLS at once
    let actions = s.event(Event::ServerDataConnected);
    assert_eq!(server_commands(&actions), vec!["RETR f"]);
    assert!(client_replies(&actions).is_empty());
    assert_eq!(client_replies(&s.event(reply(150, "Opening"))), vec![150]);
}

#[test]
fn a_refused_handshake_is_425_and_the_backend_never_sees_the_command() {
    let mut s = protected_retr();
    s.event(Event::ClientDataTlsPending);
    s.event(Event::ServerDataConnected);
    // The thief's fresh handshake does not resume the control session: the shell refuses.
    let actions = s.event(Event::ClientDataFailed);
    assert_eq!(client_replies(&actions), vec![425]);
    assert!(server_commands(&actions).is_empty());
    assert!(actions.contains(&Action::AbortData));
}

#[test]
fn a_connection_refused_before_the_transfer_leaves_no_pending_handshake() {
    let mut s = Script::logged_in("reader");
    s.line("AUTH TLS");
    s.line("PBSZ 0");
    s.line("PROT P");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "192.0.2.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataTlsPending);
    s.event(Event::ClientDataFailed); // refused in Ready
    s.line("RETR f");
    s.event(reply(227, "Entering Passive Mode (10,0,0,1,4,1)."));
    let actions = s.event(Event::ServerDataConnected);
    assert!(
        client_replies(&actions).is_empty(),
        "no 150 for a connection that was refused: {actions:?}"
    );
}

#[test]
fn events_the_phase_does_not_expect_change_nothing_and_are_reported() {
    let mut s = Script::logged_in("reader");
    for event in [
        Event::ServerConnected,
        Event::PassiveOpened("192.0.2.1:50000".parse().expect("addr")),
        Event::ServerDataConnected,
        Event::ClientDataConnected,
        Event::RelayDone(relayed(1)),
        Event::RelayStopped(relayed(1)),
        Event::LoginRefused(Refusal::SessionsTotal(1)),
    ] {
        let name = event.name();
        assert_eq!(
            s.event(event),
            vec![Action::Unexpected {
                event: name,
                phase: "Ready"
            }],
            "{name}"
        );
    }
    // The session goes on as if nothing came.
    assert_eq!(server_commands(&s.line("SIZE a")), vec!["SIZE a"]);
    let (mut fresh, _) = Script::new();
    assert!(matches!(
        fresh.event(reply(220, "out of the blue")).as_slice(),
        [Action::Unexpected {
            event: "ServerReply",
            phase: "AwaitUser"
        }]
    ));
}

fn malformed(line: &[u8]) -> Event {
    Event::ClientMalformed {
        error: match parse_command(line) {
            Err(e) => e,
            Ok(c) => panic!("{c:?} parses"),
        },
        line: line.to_vec(),
        len: line.len(),
    }
}

#[test]
fn a_line_with_control_bytes_is_recorded_with_its_raw_bytes_and_a_violation() {
    let mut s = Script::logged_in("reader");
    let line = b"RETR \xff\xfename\x01bad";
    let actions = s.event(malformed(line));
    assert_eq!(client_replies(&actions), vec![501]);
    let Some(Action::Audit(AuditRecord::Command {
        line_hex,
        line_bytes,
        decision,
        ..
    })) = actions
        .iter()
        .find(|a| matches!(a, Action::Audit(AuditRecord::Command { .. })))
    else {
        panic!("{actions:?}");
    };
    assert_eq!(line_hex.as_deref(), Some(crate::tls::hex(line).as_str()));
    assert_eq!(*line_bytes, Some(line.len() as u64));
    assert_eq!(*decision, "deny");
    assert_eq!(violations(&actions), vec!["malformed_command"]);
    // The session goes on.
    assert_eq!(client_replies(&s.line("NOOP")), Vec::<u16>::new());
}

#[test]
fn before_login_a_repeated_malformed_line_is_only_counted() {
    let (mut s, _) = Script::new();
    let first = s.event(malformed(b"US\x01ER x"));
    assert_eq!(violations(&first), vec!["malformed_command"]);
    let again = s.event(malformed(b"US\x02ER y"));
    assert!(violations(&again).is_empty(), "{again:?}");
    assert!(
        !again
            .iter()
            .any(|a| matches!(a, Action::Audit(AuditRecord::Command { .. }))),
        "{again:?}"
    );
}
