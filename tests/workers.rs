//! One worker process per core: the supervisor starts the workers, they share the listener
//! through SO_REUSEPORT, a worker that dies is restarted, and SIGTERM stops them all.

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
