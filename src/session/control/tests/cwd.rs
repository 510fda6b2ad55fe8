//! Event-script tests of the working-directory tracking behind the audit paths, and of
//! arguments that are not UTF-8.

use super::*;

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
        let actions = self.event(Event::RelayDone(relayed(3)));
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
    let actions = s.fsm.on_event(
        Event::ClientCommand(parse_command(b"SIZE caf\xe9 \"x\"\\")),
        &s.policy,
    );
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
        line_hex: None,
        line_bytes: None,
    })
    .expect("json");
    assert!(!line.contains('\n'));
}

#[test]
fn a_non_utf8_user_name_keeps_its_bytes() {
    let (mut s, _) = Script::new();
    s.fsm.on_event(
        Event::ClientCommand(parse_command(b"USER j\xf6rg")),
        &s.policy,
    );
    let user = s.fsm.user().expect("user");
    assert_eq!(user.name_hex.as_deref(), Some("6af67267"));
    assert!(user.name.contains('\u{fffd}'));
}
