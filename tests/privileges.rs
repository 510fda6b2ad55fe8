//! Started as root, ftpgate binds its listeners (a port below 1024 here) and then gives root
//! up for the policy's `user`, with no capability left, in every process (supervisor and
//! workers; a worker restarted later still serves the privileged port); without that
//! account it refuses to run as root. The tests run as root (tests/run.sh).

mod common;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(15);

/// A port below 1024 that nothing on 127.0.0.1 listens on.
fn free_privileged_port() -> u16 {
    (700..1000)
        .find(|&port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok())
        .expect("a free port below 1024 on 127.0.0.1")
}

/// The fields of /proc/PID/status that say who a process is and what it may do.
fn identity(pid: u32) -> Vec<(String, String)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| {
            matches!(
                *k,
                "Uid" | "Gid" | "Groups" | "CapInh" | "CapPrm" | "CapEff" | "CapAmb" | "NoNewPrivs"
            )
        })
        .map(|(k, v)| {
            (
                k.to_string(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn assert_unprivileged(pid: u32, uid: u32, gid: u32) {
    let id = identity(pid);
    let get = |k: &str| {
        id.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} in {id:?}"))
    };
    assert_eq!(
        get("Uid"),
        format!("{uid} {uid} {uid} {uid}"),
        "pid {pid}: {id:?}"
    );
    assert_eq!(
        get("Gid"),
        format!("{gid} {gid} {gid} {gid}"),
        "pid {pid}: {id:?}"
    );
    assert_eq!(get("Groups"), gid.to_string(), "pid {pid}: {id:?}");
    for cap in ["CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(get(cap), "0000000000000000", "pid {pid} {cap}: {id:?}");
    }
    assert_eq!(get("NoNewPrivs"), "1", "pid {pid}: {id:?}");
}

struct Started {
    proc: ProcessGuard,
    addr: SocketAddr,
    stderr: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// ftpgate as root in front of `vs` on a privileged port, the policy's `user` set to
/// `user`. Its directory and audit file are the account's, as the packages arrange.
fn start(vs: &Vsftpd, workers: u32, user: &str) -> Started {
    let dir = temp_dir();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let audit = dir.path().join("audit.jsonl");
    fs::write(&audit, b"").expect("audit file");
    if let Some((uid, gid)) = user_ids(user) {
        std::os::unix::fs::chown(&audit, Some(uid), Some(gid)).expect("chown");
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_privileged_port()));
    let mut policy = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "read-only", "vsftpd")
        .workers(workers)
        .policy(addr, port_range(20), &audit);
    policy["user"] = serde_json::json!(user);
    let config = dir.path().join("ftpgate.json");
    fs::write(
        &config,
        serde_json::to_string_pretty(&policy).expect("json"),
    )
    .expect("write");
    let stderr = dir.path().join("stderr");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftpgate"));
    cmd.arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).expect("stderr"));
    let proc = ProcessGuard::spawn("ftpgate", &mut cmd);
    Started {
        proc,
        addr,
        stderr,
        _dir: dir,
    }
}

fn download_works(vs: &Vsftpd, addr: SocketAddr, seed: u64) {
    let data = random_bytes(300_000, seed);
    vs.put_file(&format!("pub/p{seed}.bin"), &data);
    let out = curl(&["-s", "-S", &ftp_url(addr, &format!("/pub/p{seed}.bin"))]);
    out.assert_success("a download on the privileged port");
    assert_eq!(sha256_bytes(&out.stdout), sha256_bytes(&data));
}

#[test]
fn as_root_it_binds_a_privileged_port_then_runs_as_the_policy_user_with_no_capabilities() {
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests need root (tests/run.sh)"
    );
    let (uid, gid) = user_ids("nobody").expect("the nobody account");
    for workers in [1, 2] {
        let vs = Vsftpd::start();
        let mut gate = start(&vs, workers, "nobody");
        assert!(
            wait_for_port(gate.addr, WAIT),
            "listening on {}:\n{}",
            gate.addr,
            fs::read_to_string(&gate.stderr).unwrap_or_default()
        );
        download_works(&vs, gate.addr, u64::from(workers));
        let pid = gate.proc.pid();
        assert_unprivileged(pid, uid, gid);
        if workers == 2 {
            assert!(wait_until(WAIT, || children(pid).len() == 2));
            let kids = children(pid);
            for &child in &kids {
                assert_unprivileged(child, uid, gid);
            }
            // A worker that dies is restarted by the (unprivileged) supervisor and still
            // serves the privileged port: it inherits the socket bound as root.
            // SAFETY: kill(2) takes plain integers; the pid is our own grandchild.
            assert_eq!(unsafe { libc::kill(kids[0] as i32, libc::SIGKILL) }, 0);
            assert!(
                wait_until(WAIT, || {
                    let now = children(pid);
                    now.len() == 2 && !now.contains(&kids[0])
                }),
                "restarted"
            );
            for child in children(pid) {
                assert_unprivileged(child, uid, gid);
            }
            for seed in 10..14 {
                download_works(&vs, gate.addr, seed);
            }
        }
        let log = fs::read_to_string(&gate.stderr).unwrap_or_default();
        assert!(
            log.contains(&format!("running as nobody (uid {uid}, gid {gid})")),
            "{log}"
        );
        assert_eq!(gate.proc.stop().code(), Some(0));
    }
}

#[test]
fn without_its_account_ftpgate_refuses_to_run_as_root() {
    let vs = Vsftpd::start();
    let mut gate = start(&vs, 1, "ftpgate-no-such-user");
    let status = gate.proc.wait_exit(WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(1));
    let log = fs::read_to_string(&gate.stderr).unwrap_or_default();
    assert!(
        log.contains(
            "ftpgate refuses to run as root without an unprivileged account to give root up \
             for: the user \"ftpgate-no-such-user\""
        ),
        "{log}"
    );
}
