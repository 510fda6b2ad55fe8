//! Event-script tests of transfers: passive and active data connections, the relay, REST,
//! ABOR, failures on either side, filecopy failures.

use super::*;

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
    let actions = s.event(Event::RelayDone(relayed(42)));
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
    assert!(client_replies(&s.event(Event::RelayDone(relayed(7)))).is_empty());
    assert_eq!(client_replies(&s.event(reply(226, "ok"))), vec![226]);
}

/// A reader's RETR of `name` up to the relay.
fn relaying_download(name: &str) -> Script {
    relaying_download_as("reader", name)
}

fn relaying_download_as(user: &str, name: &str) -> Script {
    let mut s = Script::logged_in(user);
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
    let actions = s.event(Event::RelayCopyFailed(relayed(9)));
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
        client_replies(&s.event(Event::RelayCopyFailed(relayed(0)))),
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
    // The relay stops first; the transfer's record waits for what it says crossed.
    let actions = s.line("ABOR");
    assert_eq!(actions.last(), Some(&Action::StopRelay));
    assert!(server_commands(&actions).is_empty());
    assert!(
        s.line("ABOR").is_empty(),
        "a second ABOR while the relay stops is not a second abort"
    );
    let actions = s.event(Event::RelayStopped(RelayReport {
        bytes: 1234,
        sha256: Some("ab".repeat(32)),
        ..RelayReport::default()
    }));
    assert!(actions.contains(&Action::AbortData));
    assert_eq!(server_commands(&actions), vec!["ABOR"]);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Audit(AuditRecord::Transfer {
            bytes: 1234,
            result: "aborted",
            sha256: Some(_),
            ..
        })
    )));
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
        report: relayed(10),
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
fn a_backend_failure_during_the_relay_stops_it_and_records_what_crossed() {
    let mut s = relaying_download("reader");
    let actions = s.event(reply(451, "Local error in processing."));
    assert_eq!(
        actions,
        vec![Action::StopRelay],
        "nothing before the report"
    );
    let report = RelayReport {
        bytes: 777,
        duration_ms: 12,
        sha256: Some("cd".repeat(32)),
        tls_end: Some("truncated"),
        ..RelayReport::default()
    };
    let actions = s.event(Event::RelayStopped(report));
    assert_eq!(client_replies(&actions), vec![451]);
    let transfers: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(AuditRecord::Transfer {
                bytes,
                result,
                duration_ms,
                tls_end,
                sha256,
                ..
            }) => Some((*bytes, *result, *duration_ms, *tls_end, sha256.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        transfers,
        vec![(777, "failed", 12, Some("truncated"), true)],
        "one record, whole"
    );
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn a_relay_report_that_comes_unasked_changes_nothing() {
    let mut s = relaying_download("reader");
    assert_eq!(
        s.event(Event::RelayStopped(relayed(5))),
        vec![Action::Unexpected {
            event: "RelayStopped",
            phase: "Transfer"
        }]
    );
    assert!(!s.fsm.can_take_line(b"NOOP"), "the transfer goes on");
}

fn transfer_records(actions: &[Action]) -> Vec<(u64, &'static str)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(AuditRecord::Transfer { bytes, result, .. }) => Some((*bytes, *result)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_session_that_ends_during_the_relay_records_the_transfer_first() {
    let mut s = relaying_download("big");
    let actions = s.event(Event::ClientClosed);
    assert_eq!(
        actions,
        vec![Action::StopRelay],
        "the close waits for the report"
    );
    let actions = s.event(Event::RelayStopped(relayed(4096)));
    assert_eq!(transfer_records(&actions), vec![(4096, "client_gone")]);
    assert!(actions.contains(&Action::Close(CloseReason::ClientClosed)));
    assert!(s.fsm.is_closed());
}

#[test]
fn quit_during_the_relay_answers_221_and_records_what_crossed() {
    let mut s = relaying_download("big");
    assert!(s.fsm.can_take_line(b"QUIT"));
    let actions = s.line("QUIT");
    assert_eq!(client_replies(&actions), vec![221]);
    assert_eq!(actions.last(), Some(&Action::StopRelay));
    let actions = s.event(Event::RelayStopped(relayed(10)));
    assert_eq!(transfer_records(&actions), vec![(10, "quit")]);
    assert!(actions.contains(&Action::Close(CloseReason::Quit)));
}

#[test]
fn a_session_that_ends_after_the_relay_but_before_the_final_reply_records_it_at_once() {
    let mut s = relaying_download_as("cutter", "big");
    s.event(Event::RelayDone(relayed(77)));
    let actions = s.event(Event::Timer(TimerKind::Session));
    // The transfer's own answer first (its record says 426), then the session's.
    assert_eq!(client_replies(&actions), vec![426, 421]);
    assert_eq!(transfer_records(&actions), vec![(77, "timeout")]);
    assert!(actions.contains(&Action::Close(CloseReason::SessionTimeout)));
}

#[test]
fn each_end_of_a_session_gives_the_cut_transfer_its_own_result() {
    for (event, result, reason) in [
        (
            Event::ClientClosed,
            "client_gone",
            CloseReason::ClientClosed,
        ),
        (
            Event::ServerClosed,
            "backend_gone",
            CloseReason::ServerClosed,
        ),
        (
            Event::Timer(TimerKind::Session),
            "timeout",
            CloseReason::SessionTimeout,
        ),
        (
            Event::Timer(TimerKind::Idle),
            "timeout",
            CloseReason::IdleTimeout,
        ),
        (
            Event::DrainDeadline,
            "shutdown",
            CloseReason::WorkerStopping,
        ),
        (Event::Kill, "killed", CloseReason::Killed),
    ] {
        let name = format!("{event:?}");
        let mut s = relaying_download_as("cutter", "big");
        // The relay is stopped first: its report makes the record.
        let actions = s.event(event);
        assert_eq!(
            actions.last(),
            Some(&Action::StopRelay),
            "{name}: {actions:?}"
        );
        assert_eq!(transfer_records(&actions), vec![], "{name}");
        let actions = s.event(Event::RelayStopped(relayed(123)));
        assert_eq!(transfer_records(&actions), vec![(123, result)], "{name}");
        assert!(
            actions.contains(&Action::Close(reason)),
            "{name}: {actions:?}"
        );
    }
}

#[test]
fn a_relay_that_fails_on_tls_itself_is_tls_failed() {
    let mut s = relaying_download("big");
    let actions = s.event(Event::RelayFailed {
        report: RelayReport {
            bytes: 3,
            tls_failed: true,
            ..RelayReport::default()
        },
        side: Side::Client,
    });
    assert_eq!(transfer_records(&actions), vec![(3, "tls_failed")]);
    assert_eq!(client_replies(&actions), vec![426]);
}

#[test]
fn a_relay_that_fails_says_which_side_went() {
    for (side, result) in [
        (Side::Client, "client_gone"),
        (Side::Server, "backend_gone"),
    ] {
        let mut s = relaying_download("big");
        let actions = s.event(Event::RelayFailed {
            report: relayed(9),
            side,
        });
        assert_eq!(transfer_records(&actions), vec![(9, result)]);
        assert_eq!(client_replies(&actions), vec![426]);
    }
}

#[test]
fn by_default_the_session_time_limit_lets_the_transfer_in_flight_finish() {
    let mut s = relaying_download("big");
    let actions = s.event(Event::Timer(TimerKind::Session));
    assert!(client_replies(&actions).is_empty(), "{actions:?}");
    assert!(!actions.contains(&Action::StopRelay));
    assert!(!s.fsm.is_closed());
    s.event(Event::RelayDone(relayed(5000)));
    let actions = s.event(reply(226, "Transfer complete"));
    // The transfer ends well and is recorded so; then the limit: 421 and the close.
    assert_eq!(transfer_records(&actions), vec![(5000, "ok")]);
    assert_eq!(client_replies(&actions), vec![226, 421]);
    assert!(actions.contains(&Action::Close(CloseReason::SessionTimeout)));
    assert!(s.fsm.is_closed());
}

const OURS: &str = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";

/// A verifier's STOR whose relay moved 12 bytes with the digest OURS, up to the 226.
fn verified_upload() -> (Script, Vec<Action>) {
    let mut s = Script::logged_in("verifier");
    s.line("PASV");
    s.event(Event::PassiveOpened(
        "127.0.0.1:50000".parse().expect("addr"),
    ));
    s.event(Event::ClientDataConnected);
    s.line("STOR up.bin");
    s.event(reply(227, "(127,0,0,1,4,1)"));
    s.event(Event::ServerDataConnected);
    s.event(reply(150, "Ok to send data."));
    s.event(Event::RelayDone(RelayReport {
        bytes: 12,
        sha256: Some(OURS.into()),
        ..RelayReport::default()
    }));
    let actions = s.event(reply(226, "Transfer complete."));
    (s, actions)
}

fn backend_match(actions: &[Action]) -> Vec<(Option<bool>, Option<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(AuditRecord::Transfer { backend_check, .. }) => {
                Some(match backend_check {
                    Some(c) => (Some(c.backend_sha256_match), Some(c.backend_sha256.clone())),
                    None => (None, None),
                })
            }
            _ => None,
        })
        .collect()
}

#[test]
fn an_upload_whose_backend_digest_differs_is_recorded_as_a_mismatch() {
    let (mut s, actions) = verified_upload();
    // The client has its 226 at once; the record waits for the backend's digest.
    assert_eq!(client_replies(&actions), vec![226]);
    assert_eq!(server_commands(&actions), vec!["OPTS HASH SHA-256"]);
    assert!(backend_match(&actions).is_empty());
    assert!(!s.fsm.can_take_line(b"NOOP"), "commands wait");
    let actions = s.event(reply(200, "SHA-256"));
    assert_eq!(server_commands(&actions), vec!["HASH up.bin"]);
    let other = "0".repeat(64);
    let actions = s.event(reply(213, &format!("SHA-256 0-12 {other} up.bin")));
    assert_eq!(backend_match(&actions), vec![(Some(false), Some(other))]);
    assert!(client_replies(&actions).is_empty());
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn a_backend_that_cannot_hash_leaves_the_record_without_the_comparison() {
    let (mut s, _) = verified_upload();
    // Neither HASH nor XSHA256: three questions at most, then the record goes.
    let actions = s.event(reply(501, "Unknown option"));
    assert_eq!(server_commands(&actions), vec!["XSHA256 up.bin"]);
    assert!(backend_match(&actions).is_empty());
    let actions = s.event(reply(500, "Unknown command"));
    assert_eq!(backend_match(&actions), vec![(None, None)]);
    assert!(s.fsm.can_take_line(b"NOOP"));
    // A positive HASH reply that names no whole-file SHA-256 is not asked again.
    let (mut s, _) = verified_upload();
    s.event(reply(200, "SHA-256"));
    let actions = s.event(reply(213, &format!("SHA-256 0-5 {OURS} up.bin")));
    assert!(server_commands(&actions).is_empty());
    assert_eq!(backend_match(&actions), vec![(None, None)]);
    // A matching digest, for contrast.
    let (mut s, _) = verified_upload();
    s.event(reply(200, "SHA-256"));
    let actions = s.event(reply(213, &format!("SHA-256 0-12 {OURS} up.bin")));
    assert_eq!(
        backend_match(&actions),
        vec![(Some(true), Some(OURS.into()))]
    );
}

#[test]
fn a_refused_hash_falls_back_to_xsha256() {
    // ProFTPD with HASH limited away: OPTS is fine, HASH is refused, XSHA256 answers.
    let (mut s, _) = verified_upload();
    s.event(reply(200, "SHA-256"));
    let actions = s.event(reply(552, "HASH: Permission denied"));
    assert_eq!(server_commands(&actions), vec!["XSHA256 up.bin"]);
    assert!(backend_match(&actions).is_empty());
    let upper = OURS.to_ascii_uppercase();
    let actions = s.event(Event::ServerReply(Reply::multi(
        250,
        &["Computing SHA256 digest", &upper],
    )));
    assert_eq!(
        backend_match(&actions),
        vec![(Some(true), Some(OURS.into()))]
    );
    assert!(s.fsm.can_take_line(b"NOOP"));
}

#[test]
fn the_waiting_record_is_written_whatever_ends_the_wait() {
    // No answer in time: recorded without the comparison; the owed reply is swallowed.
    let (mut s, _) = verified_upload();
    let actions = s.event(Event::Timer(TimerKind::BackendReply));
    assert_eq!(backend_match(&actions), vec![(None, None)]);
    assert!(client_replies(&s.event(reply(213, "late"))).is_empty());
    // The client going away meanwhile.
    let (mut s, _) = verified_upload();
    let actions = s.event(Event::ClientClosed);
    assert_eq!(backend_match(&actions), vec![(None, None)]);
    assert!(s.fsm.is_closed());
}
