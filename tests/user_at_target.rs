//! `USER name@target` with `routing.user_at_host`: a target of `routing.targets` logs in to
//! its pool as the plain user; a host, an address or an unknown name gets the 530 of a wrong
//! password with no connection anywhere.

mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::*;

const WAIT: Duration = Duration::from_secs(20);

/// `home` and `edi` pools (one vsftpd each); `anonymous` belongs to `home`; the target `edi`
/// names the `edi` pool.
fn gate(home: &Vsftpd, edi: &Vsftpd) -> Ftpgate {
    Ftpgate::builder()
        .backend("home", home.addr())
        .backend("edi", edi.addr())
        .standard_roles()
        .user("anonymous", "full", "home")
        .set(
            &["routing"],
            json!({ "user_at_host": true, "targets": { "edi": "edi" } }),
        )
        .set(&["defaults", "limits", "failed_login_delay_ms"], json!(500))
        .start()
}

fn logins(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "login").collect()
}

#[test]
fn a_routing_target_logs_in_to_its_pool_as_the_plain_user() {
    let home = Vsftpd::start();
    let edi = Vsftpd::start();
    edi.put_file("pub/edi.txt", b"from edi\n");
    let gate = gate(&home, &edi);
    let home_mark = home.log_mark();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous@edi", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/edi.txt"), b"from edi\n", "the edi pool's file");
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| !logins(ev).is_empty());
    let login = logins(&events)[0].clone();
    assert_eq!(login["result"], "ok", "{login}");
    assert_eq!(login["user"], "anonymous", "the user's own policy applies");
    assert_eq!(login["target"], "edi");
    assert_eq!(login["backend"], "edi");
    assert_eq!(login["server"], edi.addr().to_string());
    let commands = Vsftpd::commands(&edi.log());
    assert!(
        commands.iter().any(|c| c == "USER anonymous"),
        "the backend saw USER without @target: {commands:?}"
    );
    assert!(!commands.iter().any(|c| c.contains('@')), "{commands:?}");
    assert_eq!(
        Vsftpd::connects(&home.log_since(home_mark)),
        0,
        "the user's own pool was not used"
    );
}

#[test]
fn hosts_addresses_and_unknown_targets_get_530_and_cause_no_connection() {
    let home = Vsftpd::start();
    let edi = Vsftpd::start();
    // Something listens on the port a client names: it must never get a connection.
    let bait = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    bait.set_nonblocking(true).expect("nonblocking");
    let bait_addr = bait.local_addr().expect("addr");
    let gate = gate(&home, &edi);
    let (home_mark, edi_mark) = (home.log_mark(), edi.log_mark());
    let givens = [
        "anonymous@10.0.0.1".to_string(),
        format!("anonymous@{bait_addr}"),
        "anonymous@127.0.0.1:22".to_string(),
        "anonymous@unknown".to_string(),
        "anonymous@home".to_string(),
    ];
    for given in &givens {
        let mut c = Ftp::connect(gate.addr());
        assert_eq!(c.cmd(&format!("USER {given}")).0, 331, "{given}");
        let sent = Instant::now();
        let reply = c.cmd("PASS x");
        assert_eq!(reply.0, 530, "{given}: {reply:?}");
        assert!(
            sent.elapsed() >= Duration::from_millis(450),
            "{given}: the 530 waited for the failed-login delay"
        );
        assert_eq!(c.cmd("QUIT").0, 221);
    }
    // The same answer as a wrong password: an unknown user, for comparison.
    let mut c = Ftp::connect(gate.addr());
    assert_eq!(c.login("mallory", "x").0, 530);
    assert_eq!(c.cmd("QUIT").0, 221);

    let events = gate.wait_audit(WAIT, |ev| logins(ev).len() > givens.len());
    for (given, login) in givens.iter().zip(logins(&events)) {
        let target = given.rsplit_once('@').map(|(_, t)| t).unwrap_or_default();
        assert_eq!(login["result"], "failed", "{login}");
        assert_eq!(login["reason"], "unknown_target", "{login}");
        assert_eq!(login["target"], target, "{login}");
        assert_eq!(login["user"], "anonymous", "{login}");
        assert!(login.get("server").is_none(), "no server: {login}");
    }
    match bait.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the named address got a connection: {other:?}"),
    }
    assert_eq!(Vsftpd::connects(&home.log_since(home_mark)), 0);
    assert_eq!(Vsftpd::connects(&edi.log_since(edi_mark)), 0);
    let log = gate.stderr_log();
    assert!(!log.contains("connecting to backend"), "{log}");
}
