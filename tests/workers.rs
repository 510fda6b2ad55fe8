//! One worker process per core: the supervisor starts the workers, they share the listener
//! through SO_REUSEPORT, a worker that dies is restarted (losing only its own sessions), and
//! SIGTERM stops them all.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use common::*;

fn gate_with_workers(vs: &Vsftpd, workers: u32) -> Ftpgate {
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .workers(workers)
        .start()
}

/// The worker processes of the supervisor `pid` (Linux /proc children list).
fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn two_workers_share_the_listener_and_both_serve() {
    let vs = Vsftpd::start();
    let data = random_bytes(1024 * 1024, 21);
    vs.put_file("pub/w.bin", &data);
    let gate = gate_with_workers(&vs, 2);
    let pid = gate.pid().expect("ftpgate pid");
    assert!(
        wait_until(START_TIMEOUT, || children(pid).len() == 2),
        "two worker processes: {:?}",
        children(pid)
    );
    // Many short sessions: the kernel spreads them over both workers.
    for _ in 0..32 {
        let mut c = Ftp::connect(gate.addr());
        assert_eq!(c.cmd("QUIT").0, 221);
    }
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("ftp", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(sha256_bytes(&c.retr("/pub/w.bin")), sha256_bytes(&data));
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(Duration::from_secs(10), |ev| {
        ev.iter().filter(|e| e["event"] == "session_end").count() >= 33
    });
    let workers: BTreeSet<u64> = events
        .iter()
        .filter(|e| e["event"] == "session_start")
        .filter_map(|e| e["worker"].as_u64())
        .collect();
    assert_eq!(workers, BTreeSet::from([0, 1]), "both workers served");
    let ids: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["event"] == "session_start")
        .filter_map(|e| e["session"].as_str())
        .collect();
    assert_eq!(ids.len(), 33, "session ids are unique across workers");
}

#[test]
fn a_killed_worker_is_restarted_and_sigterm_stops_everything() {
    let vs = Vsftpd::start();
    let mut gate = gate_with_workers(&vs, 2);
    let pid = gate.pid().expect("ftpgate pid");
    assert!(wait_until(START_TIMEOUT, || children(pid).len() == 2));
    let before = children(pid);
    let victim = before[0];
    // SAFETY: kill(2) takes plain integers; the pid is our own child worker.
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    assert!(
        wait_until(START_TIMEOUT, || {
            let now = children(pid);
            now.len() == 2 && !now.contains(&victim)
        }),
        "the supervisor restarts the worker: {:?}",
        children(pid)
    );
    gate.assert_healthy();
    let workers = children(pid);
    let status = gate.stop();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "clean exit on SIGTERM"
    );
    for w in workers {
        assert!(
            wait_until(Duration::from_secs(10), || !std::path::Path::new(&format!(
                "/proc/{w}"
            ))
            .exists()
                || fs::read_to_string(format!("/proc/{w}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))),
            "worker {w} is gone"
        );
    }
}

/// The worker process of a session, from its id (`<start>-<pid>-<n>`, in hexadecimal).
fn session_pid(id: &str) -> Option<u32> {
    u32::from_str_radix(id.split('-').nth(1)?, 16).ok()
}

/// The session_start event of the control connection `c` (matched by its client address).
fn session_of(gate: &Ftpgate, c: &Ftp) -> serde_json::Value {
    let me = c.local_addr().to_string();
    let is_mine =
        |e: &serde_json::Value| e["event"] == "session_start" && e["client"] == me.as_str();
    let events = gate.wait_audit(Duration::from_secs(10), |ev| ev.iter().any(is_mine));
    events.into_iter().find(is_mine).expect("session_start")
}

#[test]
fn a_killed_worker_loses_only_its_own_sessions() {
    let vs = Vsftpd::start();
    let big = random_bytes(24 * 1024 * 1024, 22);
    vs.put_file("pub/big.bin", &big);
    let small = random_bytes(64 * 1024, 23);
    vs.put_file("pub/small.bin", &small);
    // A rate limit stretches B's download over about three seconds.
    let mut gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .set(
            &["users", "ftp", "limits", "rate"],
            serde_json::json!("8MiB/s"),
        )
        .workers(2)
        .start();
    let pid = gate.pid().expect("ftpgate pid");
    assert!(wait_until(START_TIMEOUT, || children(pid).len() == 2));
    // Session A on one worker, session B on the other (the kernel spreads connections).
    let mut a = Ftp::connect(gate.addr());
    a.login_ok("ftp", "x");
    let a_start = session_of(&gate, &a);
    let a_pid = session_pid(a_start["session"].as_str().expect("id")).expect("pid");
    let mut b = None;
    for _ in 0..64 {
        let mut c = Ftp::connect(gate.addr());
        let start = session_of(&gate, &c);
        let id = start["session"].as_str().expect("id").to_string();
        if session_pid(&id) != Some(a_pid) {
            c.login_ok("ftp", "x");
            b = Some((c, id));
            break;
        }
        assert_eq!(c.cmd("QUIT").0, 221);
    }
    let (mut b, b_id) = b.expect("a session on the other worker");
    assert!(children(pid).contains(&a_pid), "A's worker is a child");
    assert_eq!(b.cmd("TYPE I").0, 200);
    let download = std::thread::spawn(move || {
        let got = b.transfer_in("RETR /pub/big.bin");
        (b, got)
    });
    // Once B's transfer is under way, A's worker is killed.
    assert!(
        wait_until(Duration::from_secs(10), || gate
            .stderr_log()
            .contains(&format!("{b_id} -> backend RETR"))),
        "B's download started"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(!download.is_finished(), "B is still in its transfer");
    ftpgate::os::send_signal(a_pid, ftpgate::os::SIGKILL).expect("kill A's worker");
    // A's session is gone with its worker...
    a.set_read_timeout(Duration::from_secs(10));
    assert!(
        matches!(a.try_read_line(), Ok(None) | Err(_)),
        "A's connection closed with its worker"
    );
    // ... B's file arrives whole, and B's session goes on.
    let (mut b, (code, got)) = download.join().expect("B's download");
    assert_eq!(code, 226);
    assert_eq!(got.len(), big.len());
    assert_eq!(sha256_bytes(&got), sha256_bytes(&big));
    assert_eq!(b.cmd("NOOP").0, 200);
    assert_eq!(b.cmd("QUIT").0, 221);
    // The supervisor restarts the killed worker, and new sessions work (on either worker).
    assert!(
        wait_until(START_TIMEOUT, || {
            let now = children(pid);
            now.len() == 2 && !now.contains(&a_pid)
        }),
        "the killed worker is restarted: {:?}",
        children(pid)
    );
    for _ in 0..4 {
        let mut c = Ftp::connect(gate.addr());
        c.login_ok("anonymous", "x");
        assert_eq!(c.cmd("TYPE I").0, 200);
        assert_eq!(
            sha256_bytes(&c.retr("/pub/small.bin")),
            sha256_bytes(&small)
        );
        assert_eq!(c.cmd("QUIT").0, 221);
    }
    gate.assert_healthy();
    assert!(
        gate.stderr_log().contains("restarting it"),
        "the supervisor says it restarted the worker"
    );
}
