use super::*;

fn session(id: &str, age: u64) -> SessionInfo {
    SessionInfo {
        id: id.to_owned(),
        worker: 0,
        user: Some("partner".into()),
        client: "127.0.0.1:40000".into(),
        backend: Some("edi".into()),
        server: Some("127.0.0.1:21".into()),
        cwd: Some("/in".into()),
        transfer: None,
        age_seconds: age,
    }
}

#[test]
fn requests_parse_with_their_arguments() {
    assert_eq!(Request::parse(b"sessions"), Ok(Request::Sessions));
    assert_eq!(Request::parse(b"sessions\r"), Ok(Request::Sessions));
    assert_eq!(
        Request::parse(b"kill 5f-1-3"),
        Ok(Request::Kill("5f-1-3".into()))
    );
    assert_eq!(
        Request::parse(b"kill-user partner"),
        Ok(Request::KillUser("partner".into()))
    );
    assert_eq!(Request::parse(b"drain"), Ok(Request::Drain));
    assert_eq!(Request::parse(b"resume"), Ok(Request::Resume));
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    assert_eq!(
        Request::parse(b"kill"),
        Err(RequestError::MissingArgument("kill"))
    );
    assert_eq!(
        Request::parse(b"kill-user  "),
        Err(RequestError::MissingArgument("kill-user"))
    );
    assert_eq!(Request::parse(b"\xff\xfe"), Err(RequestError::NotUtf8));
    assert_eq!(
        Request::parse(b"shutdown now"),
        Err(RequestError::Unknown("shutdown".into()))
    );
    let long = vec![b'a'; MAX_ADMIN_REQUEST_BYTES + 1];
    assert_eq!(Request::parse(&long), Err(RequestError::TooLong));
    // An unknown verb is quoted only in part: a reply cannot be made to echo a flood.
    let verb = vec![b'x'; 200];
    match Request::parse(&verb) {
        Err(RequestError::Unknown(v)) => assert_eq!(v.len(), 32),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_request_survives_its_own_line() {
    for request in [
        Request::Sessions,
        Request::Kill("a-b-1".into()),
        Request::KillUser("edi partner".into()),
        Request::Drain,
        Request::Resume,
    ] {
        assert_eq!(Request::parse(request.line().as_bytes()), Ok(request));
    }
}

#[test]
fn a_reply_round_trips_through_json() {
    let reply = Reply {
        worker: 1,
        draining: true,
        sessions: Some(vec![session("a", 3)]),
        ..Reply::default()
    };
    let line = reply.clone().encode(1 << 20);
    assert_eq!(line.last(), Some(&b'\n'));
    let back: Reply = serde_json::from_slice(&line).expect("json");
    assert_eq!(back, reply);
}

#[test]
fn a_listing_too_long_for_the_bound_is_cut_and_says_so() {
    let sessions: Vec<SessionInfo> = (0..1000).map(|i| session(&format!("s{i}"), i)).collect();
    let max = 10_000;
    let line = Reply {
        sessions: Some(sessions),
        ..Reply::default()
    }
    .encode(max);
    assert!(line.len() <= max, "{} bytes", line.len());
    let back: Reply = serde_json::from_slice(&line).expect("json");
    assert!(back.truncated);
    let kept = back.sessions.expect("sessions").len();
    assert!(kept > 10 && kept < 1000, "{kept}");
}

#[test]
fn the_table_lists_oldest_first_with_transfers() {
    let mut busy = session("b", 5);
    busy.transfer = Some(TransferInfo {
        verb: "RETR".into(),
        path: "/out/orders.edi".into(),
        direction: "download".into(),
        bytes: 3 * 1024 * 1024,
        seconds: 2.0,
        rate: 1536 * 1024,
    });
    let table = table(&[busy, session("a", 4000)]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(lines[1].starts_with("a "), "{table}");
    assert!(lines[1].ends_with("1h06m"), "{table}");
    assert!(
        lines[2].contains("RETR /out/orders.edi 3.0 MiB 1.5 MiB/s"),
        "{table}"
    );
    assert!(lines[2].contains("edi (127.0.0.1:21)"), "{table}");
}

#[test]
fn long_cells_are_cut_with_a_mark() {
    assert_eq!(fit("abcdef", 4), "abc…");
    assert_eq!(fit("abc", 4), "abc");
    assert_eq!(human_age(65), "1m05s");
    assert_eq!(human_bytes(512), "512 B");
}
