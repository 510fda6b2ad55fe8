//! Event-script tests of the TLS commands and requirements.

use super::*;

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

/// A login of `reader` toward an implicit-TLS backend, up to the backend's 230.
fn login_toward_tls_backend() -> (Script, Vec<Action>) {
    let (mut s, _) = Script::new();
    s.fsm.set_server_tls(ServerTls::Implicit);
    s.line("USER reader");
    assert!(s.line("PASS secret").contains(&Action::ConnectServer));
    s.event(Event::ServerConnected);
    assert_eq!(
        server_commands(&s.event(reply(220, "hi"))),
        vec!["USER reader"]
    );
    assert_eq!(
        server_commands(&s.event(reply(331, "pw"))),
        vec!["PASS secret"]
    );
    let actions = s.event(reply(230, "in"));
    (s, actions)
}

#[test]
fn toward_a_tls_backend_the_client_gets_230_only_once_pbsz_and_prot_are_accepted() {
    let (mut s, actions) = login_toward_tls_backend();
    assert_eq!(server_commands(&actions), vec!["PBSZ 0", "PROT P"]);
    assert!(
        client_replies(&actions).is_empty(),
        "230 waits: {actions:?}"
    );
    assert!(!s.fsm.is_logged_in());
    assert!(!s.fsm.can_take_line(b"NOOP"), "commands wait for the login");
    assert!(client_replies(&s.event(reply(200, "PBSZ=0"))).is_empty());
    let actions = s.event(reply(200, "PROT now Private"));
    assert_eq!(client_replies(&actions), vec![230]);
    assert_eq!(server_commands(&actions), vec!["PWD"]);
    assert!(s.fsm.is_logged_in());
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Audit(AuditRecord::Login { result: "ok", .. })))
    );
}

#[test]
fn a_tls_backend_that_refuses_prot_fails_the_login_before_any_230() {
    for refusal in ["PBSZ", "PROT"] {
        let (mut s, _) = login_toward_tls_backend();
        let mut actions = Vec::new();
        if refusal == "PROT" {
            actions.extend(s.event(reply(200, "PBSZ=0")));
        }
        actions.extend(s.event(reply(534, "Protection level denied")));
        assert_eq!(
            client_replies(&actions),
            vec![421],
            "{refusal}: {actions:?}"
        );
        assert!(actions.iter().any(|a| matches!(
            a,
            Action::Audit(AuditRecord::Login {
                result: "failed",
                reason: Some("backend_tls"),
                ..
            })
        )));
        assert!(actions.contains(&Action::Close(CloseReason::BackendUnavailable)));
        assert!(!s.fsm.is_logged_in());
    }
}
