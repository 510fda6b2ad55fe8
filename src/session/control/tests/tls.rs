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
