//! Event scripts for the data-channel machine: every transition, the port-theft and
//! session-reuse decisions, the relay's end in each way, filecopy settling, ABOR (a stop) in
//! each state.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::limits::DATA_TLS_BRIDGE_WINDOW;
use crate::policy::TlsSessionReuse;
use crate::session::control::{Direction, Event, RelayReport, Side};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

fn addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

fn fsm() -> DataFsm {
    DataFsm::new(CLIENT)
}

fn measure(bytes: u64) -> Measure {
    Measure {
        bytes,
        sha256: Some("ab".repeat(32)),
        digest: None,
        tls_end: None,
        tls_failed: false,
        copy: CopyState::None,
        addresses: Some(Box::new(crate::audit::DataAddresses {
            data_client: "192.0.2.7:40000".parse().ok(),
            ..Default::default()
        })),
    }
}

/// A machine listening on a passive port for the client.
fn listening() -> DataFsm {
    let mut m = fsm();
    assert_eq!(m.on(Input::OpenPassive), vec![Output::OpenListener]);
    let advertised = addr(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 50000);
    assert_eq!(
        m.on(Input::ListenerOpened(advertised)),
        vec![Output::Control(Event::PassiveOpened(advertised))]
    );
    m
}

/// Both connections up, the transfer begun at `t0`.
fn ready(t0: Instant) -> DataFsm {
    let mut m = listening();
    assert_eq!(m.on_accepted(addr(CLIENT, 40000)), Acceptance::Take);
    assert_eq!(
        m.on(Input::ClientUp { protected: false }),
        vec![Output::Control(Event::ClientDataConnected)]
    );
    let out = m.on(Input::ConnectServer {
        port: 30000,
        now: t0,
    });
    assert_eq!(out[0], Output::ConnectServer(30000));
    assert!(matches!(
        out[1],
        Output::SetTimer(DataTimer::ServerConnect, _)
    ));
    assert_eq!(
        m.on(Input::ServerUp),
        vec![
            Output::CancelTimer(DataTimer::ServerConnect),
            Output::Control(Event::ServerDataConnected)
        ]
    );
    m
}

fn relaying(t0: Instant) -> DataFsm {
    let mut m = ready(t0);
    assert_eq!(
        m.on(Input::StartRelay {
            direction: Direction::Download,
            max_bytes: None,
        }),
        vec![Output::StartRelay {
            direction: Direction::Download,
            max_bytes: None
        }]
    );
    assert!(m.relaying());
    m
}

#[test]
fn a_passive_port_opens_and_the_client_is_told_its_address() {
    let m = listening();
    assert_eq!(
        m.state(),
        &State::Setup {
            client: ClientLeg::Listening,
            server: ServerLeg::Absent
        }
    );
}

#[test]
fn no_passive_port_is_a_failed_pasv() {
    let mut m = fsm();
    m.on(Input::OpenPassive);
    assert_eq!(
        m.on(Input::ListenerFailed),
        vec![Output::Control(Event::PassiveFailed)]
    );
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn a_new_pasv_closes_what_was_open_first() {
    let mut m = listening();
    assert_eq!(
        m.on(Input::OpenPassive),
        vec![Output::CloseAll, Output::OpenListener]
    );
    // A new PASV while the backend's data connection is on its way cancels its timer too.
    let t0 = Instant::now();
    let mut m = listening();
    m.on(Input::ConnectServer { port: 1, now: t0 });
    assert_eq!(
        m.on(Input::OpenPassive),
        vec![
            Output::CancelTimer(DataTimer::ServerConnect),
            Output::CloseAll,
            Output::OpenListener
        ]
    );
}

#[test]
fn a_connection_from_another_address_is_refused_and_recorded_up_to_the_bound() {
    let mut m = listening();
    let thief = addr(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 40001);
    for n in 1..=MAX_THEFT_EVENTS_PER_SESSION {
        match m.on_accepted(thief) {
            Acceptance::Refuse(Some(record)) => match *record {
                AuditRecord::PolicyViolation { kind, detail } => {
                    assert_eq!(kind, "port_theft");
                    assert!(detail.contains("203.0.113.9"), "{detail}");
                }
                other => panic!("attempt {n}: {other:?}"),
            },
            other => panic!("attempt {n}: {other:?}"),
        }
    }
    // Beyond the bound: refused, counted, not recorded.
    assert_eq!(m.on_accepted(thief), Acceptance::Refuse(None));
    assert_eq!(m.theft_attempts(), MAX_THEFT_EVENTS_PER_SESSION + 1);
    // The client still gets its port.
    assert_eq!(m.on_accepted(addr(CLIENT, 40002)), Acceptance::Take);
}

/// `passive.proxy_protocol`: a connection from a balancer is judged by its PROXY header,
/// the client's real address the only one accepted; other peers as without balancers.
#[test]
fn through_a_balancer_the_header_must_name_the_client() {
    let balancer = addr(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 33000);
    let with_balancers = || {
        let mut m = fsm().with_balancers(vec!["10.0.0.0/29".parse().unwrap()]);
        assert_eq!(m.on(Input::OpenPassive), vec![Output::OpenListener]);
        let advertised = addr(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)), 50000);
        m.on(Input::ListenerOpened(advertised));
        m
    };
    let mut m = with_balancers();
    assert_eq!(m.on_accepted(balancer), Acceptance::ReadHeader);
    // The header names someone else: theft through the balancer, recorded as such.
    let thief = addr(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)), 40001);
    match m.on_proxied(balancer, Ok(thief)) {
        Acceptance::Refuse(Some(record)) => assert_eq!(
            *record,
            AuditRecord::PolicyViolation {
                kind: "port_theft",
                detail: "data connection from 203.0.113.9:40001 via 10.0.0.5:33000".to_owned()
            }
        ),
        other => panic!("{other:?}"),
    }
    // A malformed header, LOCAL, too late: refused under the same bound.
    match m.on_proxied(balancer, Err("malformed PROXY v1 line".to_owned())) {
        Acceptance::Refuse(Some(record)) => assert_eq!(
            *record,
            AuditRecord::PolicyViolation {
                kind: "proxy_protocol",
                detail: "data connection via 10.0.0.5:33000: malformed PROXY v1 line".to_owned()
            }
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.theft_attempts(), 2);
    for _ in 2..MAX_THEFT_EVENTS_PER_SESSION {
        assert!(matches!(
            m.on_proxied(balancer, Ok(thief)),
            Acceptance::Refuse(Some(_))
        ));
    }
    assert_eq!(
        m.on_proxied(balancer, Err("late".to_owned())),
        Acceptance::Refuse(None),
        "beyond the bound: counted only"
    );
    // The client's real address in the header: its connection, and the transfer goes on.
    assert_eq!(
        m.on_proxied(balancer, Ok(addr(CLIENT, 40000))),
        Acceptance::Take
    );
    assert_eq!(
        m.on(Input::ClientUp { protected: false }),
        vec![Output::Control(Event::ClientDataConnected)]
    );

    // The client straight to the port is still the client; a stranger straight is a thief.
    let mut m = with_balancers();
    assert_eq!(m.on_accepted(addr(CLIENT, 40000)), Acceptance::Take);
    let mut m = with_balancers();
    assert!(matches!(m.on_accepted(thief), Acceptance::Refuse(Some(_))));
    // Without balancers the balancer's address is a stranger like any other.
    let mut m = listening();
    assert!(matches!(
        m.on_accepted(balancer),
        Acceptance::Refuse(Some(_))
    ));
}

#[test]
fn the_client_on_ipv4_mapped_ipv6_is_the_client() {
    let mut m = DataFsm::new(CLIENT);
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 10).to_ipv6_mapped());
    assert_eq!(m.on_accepted(addr(mapped, 1)), Acceptance::Take);
    let mut m = DataFsm::new(IpAddr::V6(Ipv6Addr::LOCALHOST));
    let other = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    assert!(matches!(
        m.on_accepted(addr(other, 1)),
        Acceptance::Refuse(_)
    ));
}

#[test]
fn a_client_that_connects_before_the_227_is_read_is_ready_for_the_transfer() {
    // The accept happens before any transfer command: the connection waits, ready.
    let t0 = Instant::now();
    let mut m = ready(t0);
    assert_eq!(
        m.state(),
        &State::Setup {
            client: ClientLeg::Ready,
            server: ServerLeg::Ready { since: t0 }
        }
    );
    assert!(matches!(
        m.on(Input::StartRelay {
            direction: Direction::Upload,
            max_bytes: Some(5)
        })[..],
        [Output::StartRelay {
            direction: Direction::Upload,
            max_bytes: Some(5)
        }]
    ));
}

#[test]
fn a_protected_connection_carries_data_only_after_a_resumed_handshake() {
    let mut m = listening();
    assert_eq!(
        m.on(Input::ClientUp { protected: true }),
        vec![Output::Control(Event::ClientDataTlsPending)]
    );
    assert_eq!(
        m.on(Input::ClientHandshakeDone {
            resumed: true,
            reuse: TlsSessionReuse::Required,
            peer: Some(CLIENT),
            now: Instant::now(),
        }),
        vec![Output::Control(Event::ClientDataConnected)]
    );
}

#[test]
fn a_handshake_that_does_not_resume_is_refused_where_the_policy_requires_reuse() {
    let mut m = listening();
    m.on(Input::ClientUp { protected: true });
    let out = m.on(Input::ClientHandshakeDone {
        resumed: false,
        reuse: TlsSessionReuse::Required,
        peer: Some(CLIENT),
        now: Instant::now(),
    });
    assert!(matches!(
        &out[0],
        Output::Audit(AuditRecord::PolicyViolation {
            kind: "tls_session_reuse",
            ..
        })
    ));
    assert_eq!(
        out[1..],
        [Output::DropClient, Output::Control(Event::ClientDataFailed)]
    );
    // Where the user's policy turns the check off, it is accepted.
    let mut m = listening();
    m.on(Input::ClientUp { protected: true });
    assert_eq!(
        m.on(Input::ClientHandshakeDone {
            resumed: false,
            reuse: TlsSessionReuse::Off,
            peer: Some(CLIENT),
            now: Instant::now(),
        }),
        vec![Output::Control(Event::ClientDataConnected)]
    );
}

#[test]
fn a_failed_handshake_fails_the_client_connection() {
    let mut m = listening();
    m.on(Input::ClientUp { protected: true });
    assert_eq!(
        m.on(Input::ClientFailed),
        vec![Output::DropClient, Output::Control(Event::ClientDataFailed)]
    );
    // The port is used up: a later connection is nobody's (a new PASV is needed).
    assert_eq!(m.on(Input::ClientUp { protected: false }), vec![]);
}

#[test]
fn active_mode_connects_when_the_transfer_asks() {
    let mut m = fsm();
    let port = addr(CLIENT, 40100);
    assert_eq!(
        m.on(Input::ConnectClient(port)),
        vec![Output::ConnectClient(port)]
    );
    assert_eq!(
        m.on(Input::ClientUp { protected: false }),
        vec![Output::Control(Event::ClientDataConnected)]
    );
    let mut m = fsm();
    m.on(Input::ConnectClient(port));
    assert_eq!(
        m.on(Input::ClientFailed),
        vec![Output::DropClient, Output::Control(Event::ClientDataFailed)]
    );
}

#[test]
fn the_backend_data_port_fails_or_times_out() {
    let t0 = Instant::now();
    let mut m = listening();
    m.on(Input::ConnectServer { port: 2, now: t0 });
    assert_eq!(
        m.on(Input::ServerFailed),
        vec![
            Output::CancelTimer(DataTimer::ServerConnect),
            Output::DropServer,
            Output::Control(Event::ServerDataFailed)
        ]
    );
    let mut m = listening();
    m.on(Input::ConnectServer { port: 2, now: t0 });
    assert_eq!(
        m.on(Input::Timer(DataTimer::ServerConnect)),
        vec![
            Output::CancelTimer(DataTimer::ServerConnect),
            Output::DropServer,
            Output::Control(Event::ServerDataFailed)
        ]
    );
    // A stale timer once the connection is up changes nothing.
    let mut m = ready(t0);
    assert_eq!(m.on(Input::Timer(DataTimer::ServerConnect)), vec![]);
}

#[test]
fn port_zero_from_the_backend_is_no_port() {
    let mut m = listening();
    let out = m.on(Input::ConnectServer {
        port: 0,
        now: Instant::now(),
    });
    assert!(!out.contains(&Output::ConnectServer(0)));
    assert_eq!(out.last(), Some(&Output::Control(Event::ServerDataFailed)));
}

#[test]
fn a_relay_without_both_connections_ready_fails_instead_of_relaying_half() {
    let mut m = listening();
    m.on(Input::ClientUp { protected: true }); // handshake not done
    m.on(Input::ConnectServer {
        port: 3,
        now: Instant::now(),
    });
    m.on(Input::ServerUp);
    let out = m.on(Input::StartRelay {
        direction: Direction::Download,
        max_bytes: None,
    });
    assert_eq!(out[0], Output::CloseAll);
    assert_eq!(
        out[1],
        Output::Control(Event::RelayFailed {
            report: RelayReport::default(),
            side: Side::Server
        })
    );
}

#[test]
fn a_relay_that_ends_well_reports_bytes_digest_and_duration() {
    let t0 = Instant::now();
    let mut m = relaying(t0);
    let out = m.on(Input::RelayEnded {
        end: RelayEnd::Done,
        measure: Measure {
            tls_end: Some("clean"),
            ..measure(1234)
        },
        now: t0 + Duration::from_millis(250),
    });
    assert_eq!(
        out,
        vec![Output::Control(Event::RelayDone(RelayReport {
            bytes: 1234,
            duration_ms: 250,
            sha256: Some("ab".repeat(32)),
            digest: None,
            tls_end: Some("clean"),
            filecopy: None,
            filecopy_error: None,
            tls_failed: false,
            addresses: measure(0).addresses,
        }))]
    );
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn a_backend_that_closes_first_fails_the_relay_on_its_side() {
    let t0 = Instant::now();
    let mut m = relaying(t0);
    let out = m.on(Input::RelayEnded {
        end: RelayEnd::Failed(Side::Server),
        measure: Measure {
            tls_end: Some("truncated"),
            ..measure(10)
        },
        now: t0,
    });
    match &out[..] {
        [Output::Control(Event::RelayFailed { report, side })] => {
            assert_eq!(*side, Side::Server);
            assert_eq!(report.bytes, 10);
            assert_eq!(report.tls_end, Some("truncated"));
        }
        other => panic!("{other:?}"),
    }
    // A backend connection that fails during the relay (not through the pump) asks the
    // shell to end the relay on that side.
    let mut m = relaying(t0);
    assert_eq!(
        m.on(Input::ServerFailed),
        vec![Output::FailRelay(Side::Server)]
    );
    assert_eq!(
        m.on(Input::ClientFailed),
        vec![Output::FailRelay(Side::Client)]
    );
}

#[test]
fn a_handshake_that_does_not_resume_during_the_relay_fails_it() {
    let t0 = Instant::now();
    let mut m = relaying(t0);
    let out = m.on(Input::ClientHandshakeDone {
        resumed: false,
        reuse: TlsSessionReuse::Required,
        peer: Some(CLIENT),
        now: Instant::now(),
    });
    assert!(matches!(out[0], Output::Audit(_)));
    assert_eq!(out[1], Output::FailRelay(Side::Client));
    let mut m = relaying(t0);
    assert_eq!(
        m.on(Input::ClientHandshakeDone {
            resumed: true,
            reuse: TlsSessionReuse::Required,
            peer: Some(CLIENT),
            now: Instant::now(),
        }),
        vec![]
    );
}

#[test]
fn the_size_limit_ends_the_relay() {
    let t0 = Instant::now();
    let mut m = relaying(t0);
    let out = m.on(Input::RelayEnded {
        end: RelayEnd::OverLimit,
        measure: measure(99),
        now: t0,
    });
    assert!(matches!(&out[..], [Output::Control(Event::RelayOverLimit(r))] if r.bytes == 99));
}

#[test]
fn abor_in_each_state_reports_what_crossed() {
    let t0 = Instant::now();
    // Idle and listening: nothing crossed.
    for mut m in [fsm(), listening()] {
        assert_eq!(
            m.on(Input::Closed {
                stop: true,
                measure: None,
                now: t0
            }),
            vec![Output::Control(Event::RelayStopped(RelayReport::default()))]
        );
        assert_eq!(m.state(), &State::Idle);
    }
    // The backend's data connection on its way: its timer is cancelled.
    let mut m = listening();
    m.on(Input::ConnectServer { port: 4, now: t0 });
    assert_eq!(
        m.on(Input::Closed {
            stop: true,
            measure: None,
            now: t0
        }),
        vec![
            Output::CancelTimer(DataTimer::ServerConnect),
            Output::Control(Event::RelayStopped(RelayReport::default()))
        ]
    );
    // Relaying: the relay's measure.
    let mut m = relaying(t0);
    let out = m.on(Input::Closed {
        stop: true,
        measure: Some(measure(77)),
        now: t0 + Duration::from_millis(5),
    });
    assert!(matches!(
        &out[..],
        [Output::Control(Event::RelayStopped(r))] if r.bytes == 77 && r.duration_ms == 5
    ));
    // Settling: the report that waited for the copy, with the copy's path.
    let mut m = settling(t0, true);
    let out = m.on(Input::Closed {
        stop: true,
        measure: None,
        now: t0,
    });
    assert_eq!(out[0], Output::CancelTimer(DataTimer::CopyResult));
    assert!(matches!(
        &out[1],
        Output::Control(Event::RelayStopped(r)) if r.filecopy.as_deref() == Some("/copies/1")
    ));
    // AbortData (not a stop) reports nothing to the control machine.
    let mut m = relaying(t0);
    assert_eq!(
        m.on(Input::Closed {
            stop: false,
            measure: Some(measure(1)),
            now: t0
        }),
        vec![]
    );
}

fn settling(t0: Instant, abort_on_failure: bool) -> DataFsm {
    let mut m = relaying(t0);
    let out = m.on(Input::RelayEnded {
        end: RelayEnd::Done,
        measure: Measure {
            copy: CopyState::Writing {
                id: 7,
                path: "/copies/1".into(),
                abort_on_failure,
            },
            ..measure(5)
        },
        now: t0,
    });
    assert!(matches!(
        out[..],
        [Output::SetTimer(DataTimer::CopyResult, _)]
    ));
    assert_eq!(m.settling_copy(), Some(7));
    m
}

#[test]
fn a_finished_transfer_waits_for_its_copy_then_reports_it() {
    let t0 = Instant::now();
    let mut m = settling(t0, true);
    let out = m.on(Input::CopySettled(Ok("/copies/1.done".into())));
    assert_eq!(out[0], Output::CancelTimer(DataTimer::CopyResult));
    assert!(matches!(
        &out[1],
        Output::Control(Event::RelayDone(r)) if r.filecopy.as_deref() == Some("/copies/1.done")
    ));
    assert_eq!(m.settling_copy(), None);
}

#[test]
fn a_filecopy_that_fails_fails_the_transfer_or_not_as_the_policy_says() {
    let t0 = Instant::now();
    // Settling, on_failure abort: the transfer fails.
    let mut m = settling(t0, true);
    let out = m.on(Input::CopySettled(Err("disk full".into())));
    assert!(matches!(
        &out[1],
        Output::Control(Event::RelayCopyFailed(r))
            if r.filecopy_error.as_deref() == Some("disk full") && r.filecopy.is_none()
    ));
    // Settling, on_failure continue: the transfer is done, the failure recorded.
    let mut m = settling(t0, false);
    let out = m.on(Input::CopySettled(Err("disk full".into())));
    assert!(matches!(
        &out[1],
        Output::Control(Event::RelayDone(r)) if r.filecopy_error.as_deref() == Some("disk full")
    ));
    // The copy never reports: the timeout is its failure.
    let mut m = settling(t0, true);
    let out = m.on(Input::Timer(DataTimer::CopyResult));
    assert!(matches!(
        &out[1],
        Output::Control(Event::RelayCopyFailed(r))
            if r.filecopy_error.as_deref().is_some_and(|e| e.contains("did not reach the disk"))
    ));
    // The writer failed before the relay's end.
    let mut m = relaying(t0);
    let failed = |abort_on_failure| Measure {
        copy: CopyState::Failed {
            reason: "EIO".into(),
            abort_on_failure,
        },
        ..measure(3)
    };
    let out = m.on(Input::RelayEnded {
        end: RelayEnd::Done,
        measure: failed(true),
        now: t0,
    });
    assert!(matches!(
        &out[..],
        [Output::Control(Event::RelayCopyFailed(_))]
    ));
    let mut m = relaying(t0);
    let out = m.on(Input::RelayEnded {
        end: RelayEnd::Done,
        measure: failed(false),
        now: t0,
    });
    assert!(
        matches!(&out[..], [Output::Control(Event::RelayDone(r))] if r.filecopy_error.is_some())
    );
    // The writer's failure stopped the relay (on_failure abort).
    let mut m = relaying(t0);
    let out = m.on(Input::RelayEnded {
        end: RelayEnd::CopyFailed,
        measure: failed(true),
        now: t0,
    });
    assert!(matches!(
        &out[..],
        [Output::Control(Event::RelayCopyFailed(_))]
    ));
}

#[test]
fn a_relay_cut_short_keeps_the_part_of_its_copy_that_crossed() {
    let t0 = Instant::now();
    let mut m = relaying(t0);
    let out = m.on(Input::RelayEnded {
        end: RelayEnd::Failed(Side::Client),
        measure: Measure {
            copy: CopyState::Writing {
                id: 1,
                path: "/copies/part".into(),
                abort_on_failure: true,
            },
            ..measure(4)
        },
        now: t0,
    });
    assert!(matches!(
        &out[..],
        [Output::Control(Event::RelayFailed { report, .. })]
            if report.filecopy.as_deref() == Some("/copies/part")
    ));
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn inputs_that_do_not_fit_the_state_change_nothing() {
    let mut m = fsm();
    assert_eq!(m.on(Input::ServerUp), vec![]);
    assert_eq!(m.on(Input::ClientUp { protected: false }), vec![]);
    assert_eq!(m.on(Input::ListenerOpened(addr(CLIENT, 1))), vec![]);
    assert_eq!(m.on(Input::CopySettled(Ok(String::new()))), vec![]);
    assert_eq!(
        m.on(Input::RelayEnded {
            end: RelayEnd::Done,
            measure: measure(1),
            now: Instant::now()
        }),
        vec![]
    );
    assert_eq!(m.state(), &State::Idle);
}

#[test]
fn the_advertised_address_is_the_configured_one_for_ipv4_clients_only() {
    let local4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let public = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    assert_eq!(advertised_ip(local4, Some(public)), public);
    assert_eq!(advertised_ip(local4, None), local4);
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
    assert_eq!(advertised_ip(mapped, Some(public)), public);
    let local6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(advertised_ip(local6, Some(public)), local6);
}

#[test]
fn a_bridge_user_s_fresh_handshake_is_taken_only_from_the_client_in_the_window() {
    let t0 = Instant::now();
    // A transfer began at t0 (the backend's data connection asked for); the client's
    // protected connection came up and finished a fresh handshake.
    let setup = || {
        let mut m = listening();
        m.on(Input::ClientUp { protected: true });
        m.on(Input::ConnectServer { port: 5, now: t0 });
        m
    };
    let done = |peer: IpAddr, after: Duration| Input::ClientHandshakeDone {
        resumed: false,
        reuse: TlsSessionReuse::Bridge,
        peer: Some(peer),
        now: t0 + after,
    };
    let mut m = setup();
    let out = m.on(done(CLIENT, Duration::from_millis(300)));
    assert!(matches!(
        &out[0],
        Output::Audit(AuditRecord::PolicyException {
            kind: "tls_session_reuse_bridge",
            ..
        })
    ));
    assert_eq!(out[1], Output::Control(Event::ClientDataConnected));
    // Too late after the transfer began: refused like a strict user's.
    let mut m = setup();
    let out = m.on(done(
        CLIENT,
        DATA_TLS_BRIDGE_WINDOW + Duration::from_millis(1),
    ));
    assert!(
        out.contains(&Output::Control(Event::ClientDataFailed)),
        "{out:?}"
    );
    // From another address: refused.
    let mut m = setup();
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    let out = m.on(done(other, Duration::from_millis(1)));
    assert!(
        out.contains(&Output::Control(Event::ClientDataFailed)),
        "{out:?}"
    );
    // Before any transfer began (the client connected after PASV, ahead of RETR): no window.
    let mut m = listening();
    m.on(Input::ClientUp { protected: true });
    let out = m.on(done(CLIENT, Duration::ZERO));
    assert!(
        out.contains(&Output::Control(Event::ClientDataFailed)),
        "{out:?}"
    );
}
