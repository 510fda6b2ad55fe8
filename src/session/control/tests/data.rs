//! Event-script tests of the client's side of the data channel ([`ClientData`]): each state
//! and what moves it, and a transfer's start from each.

use super::*;
use crate::session::control::data::ClientData;

fn has_timer(actions: &[Action], kind: TimerKind) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::SetTimer(k, _) if *k == kind))
}

#[test]
fn pasv_opens_listens_then_the_connection_is_up_before_the_transfer() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    assert!(matches!(s.fsm.client, ClientData::Opening { .. }));
    let actions = s.event(Event::PassiveOpened(
        "192.0.2.1:50000".parse().expect("addr"),
    ));
    assert!(
        has_timer(&actions, TimerKind::DataConnect),
        "a listener is bounded in time"
    );
    assert_eq!(s.fsm.client, ClientData::Listening);
    // The client connects before it sends RETR (before it even read the 227, for some).
    let actions = s.event(Event::ClientDataConnected);
    assert!(actions.contains(&Action::CancelTimer(TimerKind::DataConnect)));
    assert!(s.fsm.client.ready());
    let actions = s.line("RETR f");
    assert_eq!(server_commands(&actions), vec!["PASV"]);
    assert!(
        !has_timer(&actions, TimerKind::DataConnect),
        "nothing to wait for on the client's side"
    );
}

#[test]
fn port_connects_only_when_a_transfer_asks_and_a_failure_uses_it_up() {
    let mut s = Script::logged_in("reader");
    assert_eq!(client_replies(&s.line("PORT 192,0,2,7,19,137")), vec![200]);
    assert_eq!(
        s.fsm.client,
        ClientData::Active("192.0.2.7:5001".parse().expect("addr"))
    );
    let actions = s.line("RETR f");
    assert!(actions.contains(&Action::ConnectClientData(
        "192.0.2.7:5001".parse().expect("addr")
    )));
    assert!(has_timer(&actions, TimerKind::DataConnect));
    assert_eq!(s.fsm.client, ClientData::Connecting);
    let actions = s.event(Event::ClientDataFailed);
    assert_eq!(client_replies(&actions), vec![425]);
    assert_eq!(s.fsm.client, ClientData::None);
    s.event(reply(227, "Entering Passive Mode (127,0,0,1,4,1)."));
    assert_eq!(
        client_replies(&s.line("RETR f")),
        vec![425],
        "a new PORT or PASV is needed"
    );
}

#[test]
fn an_idle_passive_port_closes_at_its_deadline() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "192.0.2.1:50000".parse().expect("addr"),
    ));
    let actions = s.event(Event::Timer(TimerKind::DataConnect));
    assert!(actions.contains(&Action::AbortData));
    assert_eq!(s.fsm.client, ClientData::None);
    assert_eq!(client_replies(&s.line("RETR f")), vec![425]);
}

#[test]
fn a_connection_refused_before_the_transfer_uses_the_passive_port_up() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "192.0.2.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataTlsPending);
    assert!(s.fsm.client.handshaking());
    s.event(Event::ClientDataFailed);
    assert_eq!(s.fsm.client, ClientData::None);
}

#[test]
fn a_backend_that_refuses_its_data_connection_fails_the_transfer_before_the_command() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "192.0.2.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataConnected);
    s.line("RETR f");
    s.event(reply(227, "Entering Passive Mode (127,0,0,1,4,1)."));
    // ABOR waits while the data connections are set up (it is not taken yet).
    assert!(!s.fsm.can_take_line(b"ABOR"));
    let actions = s.event(Event::ServerDataFailed);
    assert_eq!(client_replies(&actions), vec![425]);
    assert!(server_commands(&actions).is_empty(), "RETR never went out");
    assert_eq!(s.fsm.client, ClientData::None);
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn a_passive_reply_that_cannot_be_given_is_425_and_leaves_no_listener() {
    let mut s = Script::logged_in("reader");
    s.line("PASV");
    let actions = s.event(Event::PassiveOpened(
        "[2001:db8::1]:50000".parse().expect("addr"),
    ));
    assert_eq!(client_replies(&actions), vec![425], "PASV is IPv4 only");
    assert!(actions.contains(&Action::AbortData));
    assert_eq!(s.fsm.client, ClientData::None);
}

#[test]
fn behind_a_balancer_whose_clients_reach_the_passive_ports_directly_epsv_is_refused() {
    let (fsm, _) = ControlFsm::new(ControlConfig {
        epsv_reachable: false,
        ..config()
    });
    let mut s = Script {
        fsm,
        policy: policy(),
    };
    s.line("USER reader");
    s.line("PASS secret");
    s.event(Event::ServerConnected);
    s.event(reply(220, "hi"));
    s.event(reply(331, "pw"));
    s.event(reply(230, "in"));
    s.event(reply(257, "\"/\" is the current directory"));
    let actions = s.line("EPSV");
    assert_eq!(client_replies(&actions), vec![502]);
    assert!(!actions.contains(&Action::OpenPassive));
    // PASV still works: its 227 names the advertised address.
    assert!(s.line("PASV").contains(&Action::OpenPassive));
}
