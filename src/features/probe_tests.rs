//! Event-script tests of the probe machine (`probe.rs`).
use super::*;

fn step_timeout() -> Duration {
    Duration::from_secs(FEATURE_PROBE_STEP_TIMEOUT)
}

fn features(lines: &[&str]) -> Vec<Feature> {
    lines
        .iter()
        .filter_map(|l| Feature::parse(l.as_bytes()))
        .collect()
}

/// A probe that is connected and has its greeting, at `t0`.
fn greeted(t0: Instant) -> FeatProbe {
    let mut p = FeatProbe::new(t0);
    assert!(p.on_event(ProbeEvent::Connected, t0).is_empty());
    let actions = p.on_event(ProbeEvent::Received(b"220 ready\r\n"), t0);
    assert_eq!(actions, vec![ProbeAction::Send(b"FEAT\r\n")]);
    p
}

#[test]
fn greeting_feat_quit_close() {
    let t0 = Instant::now();
    let mut p = FeatProbe::new(t0);
    assert_eq!(p.deadline(), Some(t0 + step_timeout()));
    assert!(p.is_connecting());
    let t1 = t0 + Duration::from_secs(1);
    assert!(p.on_event(ProbeEvent::Connected, t1).is_empty());
    assert_eq!(p.deadline(), Some(t1 + step_timeout()));
    // A multi-line greeting (pure-ftpd's) in two reads, cut inside a line.
    assert!(
        p.on_event(
            ProbeEvent::Received(b"220---- Welcome ----\r\n220-You are"),
            t1
        )
        .is_empty()
    );
    let t2 = t1 + Duration::from_secs(1);
    let actions = p.on_event(ProbeEvent::Received(b" user 1\r\n220 Bye in 15\r\n"), t2);
    assert_eq!(actions, vec![ProbeAction::Send(b"FEAT\r\n")]);
    assert_eq!(p.deadline(), Some(t2 + step_timeout()));
    let feat = b"211-Extensions supported:\r\n UTF8\r\n MLST type*;size*;modify*;\r\n\
                 REST STREAM\r\n AUTH TLS\r\n211 End.\r\n";
    let (a, b) = feat.split_at(30);
    assert!(p.on_event(ProbeEvent::Received(a), t2).is_empty());
    let actions = p.on_event(ProbeEvent::Received(b), t2);
    assert_eq!(
        actions,
        vec![
            ProbeAction::Finished(Ok(features(&[
                "UTF8",
                "MLST type*;size*;modify*;",
                "REST STREAM",
                "AUTH TLS",
            ]))),
            ProbeAction::Healthy(Ok(())),
            ProbeAction::Send(b"QUIT\r\n"),
        ]
    );
    let actions = p.on_event(ProbeEvent::Received(b"221-Goodbye.\r\n221 Logout.\r\n"), t2);
    assert_eq!(actions, vec![ProbeAction::Close]);
    assert!(p.is_closed());
    assert_eq!(p.deadline(), None);
    // Nothing after the close.
    assert!(
        p.on_event(ProbeEvent::Received(b"garbage\r\n"), t2)
            .is_empty()
    );
    assert!(p.on_event(ProbeEvent::Deadline, t2).is_empty());
}

#[test]
fn a_120_before_the_greeting_is_waited_through() {
    let t0 = Instant::now();
    let mut p = FeatProbe::new(t0);
    p.on_event(ProbeEvent::Connected, t0);
    let later = t0 + Duration::from_secs(3);
    assert!(
        p.on_event(ProbeEvent::Received(b"120 in 1 minute\r\n"), later)
            .is_empty()
    );
    assert_eq!(
        p.deadline(),
        Some(t0 + step_timeout()),
        "the deadline stays"
    );
    let actions = p.on_event(ProbeEvent::Received(b"220 now\r\n"), later);
    assert_eq!(actions, vec![ProbeAction::Send(b"FEAT\r\n")]);
}

#[test]
fn a_server_without_feat_has_no_features() {
    let t0 = Instant::now();
    for answer in [
        &b"500 FEAT not understood\r\n"[..],
        b"502 Not implemented\r\n",
    ] {
        let mut p = greeted(t0);
        let actions = p.on_event(ProbeEvent::Received(answer), t0);
        assert_eq!(
            actions,
            vec![
                ProbeAction::Finished(Ok(Vec::new())),
                ProbeAction::Healthy(Ok(())),
                ProbeAction::Send(b"QUIT\r\n")
            ]
        );
    }
    // A single-line 211: no extensions either.
    let mut p = greeted(t0);
    let actions = p.on_event(ProbeEvent::Received(b"211 No features\r\n"), t0);
    assert_eq!(
        actions.first(),
        Some(&ProbeAction::Finished(Ok(Vec::new())))
    );
}

#[test]
fn refusals_are_errors() {
    let t0 = Instant::now();
    let mut p = FeatProbe::new(t0);
    p.on_event(ProbeEvent::Connected, t0);
    let actions = p.on_event(ProbeEvent::Received(b"421 Too many users\r\n"), t0);
    assert_eq!(
        actions,
        vec![
            ProbeAction::Finished(Err(ProbeError::Refused {
                step: ProbeStep::Greeting,
                code: 421
            })),
            ProbeAction::Healthy(Err(ProbeError::Refused {
                step: ProbeStep::Greeting,
                code: 421
            })),
            ProbeAction::Close
        ]
    );
    assert!(p.is_closed());

    // FEAT refused for want of a login: nothing learned, but a polite QUIT.
    let mut p = greeted(t0);
    let actions = p.on_event(ProbeEvent::Received(b"530 Login first\r\n"), t0);
    assert_eq!(
        actions,
        vec![
            ProbeAction::Finished(Err(ProbeError::Refused {
                step: ProbeStep::Feat,
                code: 530
            })),
            ProbeAction::Healthy(Ok(())),
            ProbeAction::Send(b"QUIT\r\n")
        ]
    );
    // The server closes instead of answering QUIT: just close.
    assert_eq!(p.on_event(ProbeEvent::Eof, t0), vec![ProbeAction::Close]);
}

#[test]
fn every_step_has_its_deadline() {
    let t0 = Instant::now();
    let late = t0 + step_timeout();
    let mut p = FeatProbe::new(t0);
    assert_eq!(
        p.on_event(ProbeEvent::Deadline, late),
        vec![
            ProbeAction::Finished(Err(ProbeError::Timeout(ProbeStep::Connect))),
            ProbeAction::Healthy(Err(ProbeError::Timeout(ProbeStep::Connect))),
            ProbeAction::Close
        ]
    );
    let mut p = FeatProbe::new(t0);
    p.on_event(ProbeEvent::Connected, t0);
    assert_eq!(
        p.on_event(ProbeEvent::Deadline, late).first(),
        Some(&ProbeAction::Finished(Err(ProbeError::Timeout(
            ProbeStep::Greeting
        ))))
    );
    let mut p = greeted(t0);
    assert_eq!(
        p.on_event(ProbeEvent::Deadline, late).first(),
        Some(&ProbeAction::Finished(Err(ProbeError::Timeout(
            ProbeStep::Feat
        ))))
    );
    // After the result only the close is owed.
    let mut p = greeted(t0);
    p.on_event(ProbeEvent::Received(b"211 none\r\n"), t0);
    assert_eq!(
        p.on_event(ProbeEvent::Deadline, late),
        vec![ProbeAction::Close]
    );
}

#[test]
fn garbage_closed_and_failed_connections() {
    let t0 = Instant::now();
    let mut p = FeatProbe::new(t0);
    p.on_event(ProbeEvent::Connected, t0);
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"SSH-2.0-OpenSSH_9.2\r\n"), t0),
        vec![
            ProbeAction::Finished(Err(ProbeError::Garbage(ProbeStep::Greeting))),
            ProbeAction::Healthy(Err(ProbeError::Garbage(ProbeStep::Greeting))),
            ProbeAction::Close
        ]
    );
    // Garbage inside the FEAT answer: a line that ends it with another code is just a
    // line; a first line without a code is garbage.
    let mut p = greeted(t0);
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"hello\r\n"), t0).first(),
        Some(&ProbeAction::Finished(Err(ProbeError::Garbage(
            ProbeStep::Feat
        ))))
    );
    let mut p = greeted(t0);
    assert_eq!(
        p.on_event(ProbeEvent::Eof, t0),
        vec![
            ProbeAction::Finished(Err(ProbeError::Closed(ProbeStep::Feat))),
            ProbeAction::Healthy(Err(ProbeError::Closed(ProbeStep::Feat))),
            ProbeAction::Close
        ]
    );
    let mut p = FeatProbe::new(t0);
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    let actions = p.on_event(ProbeEvent::Failed(&refused), t0);
    assert!(matches!(
        actions.first(),
        Some(ProbeAction::Finished(Err(ProbeError::Io {
            step: ProbeStep::Connect,
            ..
        })))
    ));
    assert_eq!(actions.last(), Some(&ProbeAction::Close));
}

#[test]
fn oversize_lines_replies_and_totals_are_refused() {
    let t0 = Instant::now();
    // One line longer than a reply line may be, without its end yet.
    let mut p = FeatProbe::new(t0);
    p.on_event(ProbeEvent::Connected, t0);
    let long = vec![b'2'; MAX_REPLY_LINE + 10];
    assert_eq!(
        p.on_event(ProbeEvent::Received(&long), t0).first(),
        Some(&ProbeAction::Finished(Err(ProbeError::Oversize(
            ProbeStep::Greeting
        ))))
    );
    // An endless multi-line FEAT answer of short lines: the limits stop it.
    let mut p = greeted(t0);
    let mut actions = p.on_event(ProbeEvent::Received(b"211-Features:\r\n"), t0);
    let chunk = b" XFEAT\r\n".repeat(512);
    for _ in 0..(MAX_FEATURE_PROBE_BYTES / chunk.len() + 2) {
        if p.is_closed() {
            break;
        }
        actions = p.on_event(ProbeEvent::Received(&chunk), t0);
    }
    assert!(p.is_closed(), "the probe stopped reading");
    assert_eq!(
        actions,
        vec![
            ProbeAction::Finished(Err(ProbeError::Oversize(ProbeStep::Feat))),
            ProbeAction::Healthy(Err(ProbeError::Oversize(ProbeStep::Feat))),
            ProbeAction::Close
        ]
    );
}

#[test]
fn feat_lines_are_bounded_and_printable() {
    let t0 = Instant::now();
    let mut p = greeted(t0);
    let mut answer = b"211-Features:\r\n SIZE\r\n MDTM\x01\r\n \xc3\xa9T\r\n".to_vec();
    answer.extend_from_slice(b" MLST ");
    answer.extend(std::iter::repeat_n(b'x', crate::limits::MAX_FEATURE_LINE));
    answer.extend_from_slice(b"\r\n\r\n211 End\r\n");
    let actions = p.on_event(ProbeEvent::Received(&answer), t0);
    assert_eq!(
        actions.first(),
        Some(&ProbeAction::Finished(Ok(features(&["SIZE"])))),
        "control bytes, non-ASCII, over-long and empty lines are dropped"
    );
    // Telnet option negotiation inside a line is removed.
    let mut p = greeted(t0);
    let actions = p.on_event(
        ProbeEvent::Received(b"211-F\r\n U\xff\xfb\x01TF8\r\n211 End\r\n"),
        t0,
    );
    assert_eq!(
        actions.first(),
        Some(&ProbeAction::Finished(Ok(features(&["UTF8"]))))
    );
}

fn health(auth_tls: bool) -> ProbePlan {
    ProbePlan {
        feat: false,
        auth_tls,
        step_timeout: Duration::from_secs(3),
    }
}

#[test]
fn a_health_check_is_the_greeting_then_quit() {
    let t0 = Instant::now();
    let mut p = FeatProbe::with_plan(health(false), t0);
    assert_eq!(p.deadline(), Some(t0 + Duration::from_secs(3)));
    p.on_event(ProbeEvent::Connected, t0);
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0),
        vec![ProbeAction::Healthy(Ok(())), ProbeAction::Send(b"QUIT\r\n")],
        "no FEAT asked"
    );
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"221 bye\r\n"), t0),
        vec![ProbeAction::Close]
    );
    // A refused connect: unhealthy, no FEAT result owed.
    let mut p = FeatProbe::with_plan(health(false), t0);
    let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
    let actions = p.on_event(ProbeEvent::Failed(&refused), t0);
    assert!(matches!(
        actions.as_slice(),
        [
            ProbeAction::Healthy(Err(ProbeError::Io {
                step: ProbeStep::Connect,
                ..
            })),
            ProbeAction::Close
        ]
    ));
    // 421 (too many users, shutting down): unhealthy.
    let mut p = FeatProbe::with_plan(health(false), t0);
    p.on_event(ProbeEvent::Connected, t0);
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"421 bye\r\n"), t0),
        vec![
            ProbeAction::Healthy(Err(ProbeError::Refused {
                step: ProbeStep::Greeting,
                code: 421
            })),
            ProbeAction::Close
        ]
    );
}

#[test]
fn an_explicit_tls_health_check_completes_the_handshake() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(1);
    let mut p = FeatProbe::with_plan(
        ProbePlan {
            feat: true,
            ..health(true)
        },
        t0,
    );
    p.on_event(ProbeEvent::Connected, t0);
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0),
        vec![ProbeAction::Send(b"FEAT\r\n")]
    );
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"211 none\r\n"), t0),
        vec![
            ProbeAction::Finished(Ok(Vec::new())),
            ProbeAction::Send(b"AUTH TLS\r\n")
        ],
        "FEAT in plaintext first, then the upgrade"
    );
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"234 go\r\n"), t1),
        vec![ProbeAction::StartTls]
    );
    assert!(p.is_handshaking());
    assert_eq!(p.deadline(), Some(t1 + Duration::from_secs(3)));
    assert_eq!(
        p.on_event(ProbeEvent::TlsEstablished, t1),
        vec![ProbeAction::Healthy(Ok(())), ProbeAction::Send(b"QUIT\r\n")]
    );
    // The handshake never completes: unhealthy at its deadline.
    let mut p = FeatProbe::with_plan(health(true), t0);
    p.on_event(ProbeEvent::Connected, t0);
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0),
        vec![ProbeAction::Send(b"AUTH TLS\r\n")]
    );
    p.on_event(ProbeEvent::Received(b"234 go\r\n"), t0);
    assert_eq!(
        p.on_event(ProbeEvent::Deadline, t0 + Duration::from_secs(3)),
        vec![
            ProbeAction::Healthy(Err(ProbeError::Timeout(ProbeStep::Handshake))),
            ProbeAction::Close
        ]
    );
    // A certificate the pool does not trust: the TLS error is the verdict.
    let mut p = FeatProbe::with_plan(health(true), t0);
    p.on_event(ProbeEvent::Connected, t0);
    p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0);
    p.on_event(ProbeEvent::Received(b"234 go\r\n"), t0);
    let bad = io::Error::new(io::ErrorKind::InvalidData, "invalid peer certificate");
    let actions = p.on_event(ProbeEvent::Failed(&bad), t0);
    assert!(matches!(
        actions.as_slice(),
        [
            ProbeAction::Healthy(Err(ProbeError::Io {
                step: ProbeStep::Handshake,
                ..
            })),
            ProbeAction::Close
        ]
    ));
    // AUTH TLS refused: unhealthy, a polite QUIT.
    let mut p = FeatProbe::with_plan(health(true), t0);
    p.on_event(ProbeEvent::Connected, t0);
    p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0);
    assert_eq!(
        p.on_event(ProbeEvent::Received(b"530 no TLS here\r\n"), t0),
        vec![
            ProbeAction::Healthy(Err(ProbeError::Refused {
                step: ProbeStep::Auth,
                code: 530
            })),
            ProbeAction::Send(b"QUIT\r\n")
        ]
    );
    // A stray TlsEstablished outside the handshake is ignored.
    let mut p = FeatProbe::with_plan(health(true), t0);
    assert!(p.on_event(ProbeEvent::TlsEstablished, t0).is_empty());
}
