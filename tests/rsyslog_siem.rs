//! The shipped rsyslog drop-in `packaging/examples/rsyslog-siem.conf`, run by a real
//! rsyslogd (in the foreground, private sockets and work directory) with its SIEM address
//! pointed at a listener of this test: every audit event arrives there as one JSON line
//! (mmjsonparse), equal to the event in ftpgate's audit file.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const WAIT: Duration = Duration::from_secs(20);

#[test]
fn the_shipped_siem_drop_in_forwards_every_event_as_its_json() {
    assert!(
        Path::new(RSYSLOGD).exists(),
        "{RSYSLOGD} is not installed: tests/run.sh installs the rsyslog package"
    );
    let siem = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the SIEM");
    let port = siem.local_addr().expect("addr").port();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = siem.accept() {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        }
    });

    let dir = temp_dir();
    let d = dir.path();
    let snippet = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/rsyslog-siem.conf"),
    )
    .expect("the shipped drop-in");
    let shipped_target = r#"target="siem.example.net" port="6514""#;
    assert!(snippet.contains(shipped_target), "{snippet}");
    let snippet = snippet.replace(
        shipped_target,
        &format!(r#"target="127.0.0.1" port="{port}""#),
    );
    // Debian's own main configuration (socket and paths moved), the drop-in included last,
    // as /etc/rsyslog.d/*.conf are.
    let conf = format!(
        r#"module(load="imuxsock" SysSock.Name="{d}/log")
$WorkDirectory {d}
auth,authpriv.*			{d}/auth.log
{snippet}"#,
        d = d.display()
    );
    fs::write(d.join("rsyslog.conf"), &conf).expect("write rsyslog.conf");
    let check = Command::new(RSYSLOGD)
        .arg("-N1")
        .arg("-f")
        .arg(d.join("rsyslog.conf"))
        .output()
        .expect("rsyslogd -N1");
    assert!(
        check.status.success(),
        "rsyslogd -N1: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _rsyslogd = ProcessGuard::spawn(
        "rsyslogd",
        Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(fs::File::create(d.join("rsyslogd.out")).expect("stdout"))
            .stderr(fs::File::create(d.join("rsyslogd.err")).expect("stderr")),
    );
    assert!(
        wait_until(WAIT, || d.join("log").exists()),
        "rsyslogd did not start: {}",
        fs::read_to_string(d.join("rsyslogd.err")).unwrap_or_default()
    );

    let vs = Vsftpd::start();
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(
            &["audit", "syslog"],
            json!({ "socket": d.join("log").to_string_lossy() }),
        )
        .start();
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("DELE /nothing-here").0, 550);
    assert_eq!(c.cmd("QUIT").0, 221);
    let expected = gate.wait_audit(WAIT, |ev| ev.iter().any(|e| e["event"] == "session_end"));

    let mut received: Vec<Value> = Vec::new();
    while received.len() < expected.len() {
        let Ok(line) = lines_rx.recv_timeout(WAIT) else {
            break;
        };
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        received.push(event);
    }
    assert_eq!(
        received, expected,
        "the SIEM gets the audit file's events, in order"
    );
}
