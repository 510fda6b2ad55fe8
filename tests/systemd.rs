//! ftpgate under systemd's protocols, without systemd: readiness and reload notifications
//! on a `NOTIFY_SOCKET` the test binds (a path and an abstract name, one worker and a
//! supervisor with two), the packaged unit's `ExecReload=` commands run as systemd would
//! (a broken policy fails the reload and the gateway never gets SIGHUP), and SIGUSR2
//! reopening the audit file without reloading the policy.

mod common;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tempfile::TempDir;

const FTPGATE: &str = env!("CARGO_BIN_EXE_ftpgate");
const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/packaging/systemd/ftpgate.service"
);
const WAIT: Duration = Duration::from_secs(20);

/// A test's NOTIFY_SOCKET: bound by the test, read with a deadline.
struct NotifySocket {
    socket: UnixDatagram,
    /// The value of NOTIFY_SOCKET.
    name: String,
}

impl NotifySocket {
    fn at_path(dir: &Path) -> NotifySocket {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket {
            socket,
            name: path.to_string_lossy().into_owned(),
        }
    }

    fn abstract_name() -> NotifySocket {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("ftpgate-test-notify-{}-{}", std::process::id(), free_port());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind the abstract notify socket");
        NotifySocket {
            socket,
            name: format!("@{name}"),
        }
    }

    /// The next datagram within `timeout`, or None.
    fn next(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read timeout");
            match self.socket.recv(&mut buf) {
                Ok(n) => return Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("notify socket: {e}"),
            }
        }
    }

    /// Waits for a datagram with the line `line`; returns every datagram seen up to it.
    fn wait_for(&self, line: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(message) = self.next(left) else {
                break;
            };
            let found = message.lines().any(|l| l == line);
            seen.push(message);
            if found {
                return seen;
            }
        }
        panic!("no {line:?} on NOTIFY_SOCKET within {timeout:?}; got {seen:?}");
    }

    /// Panics if any datagram arrives within `quiet`.
    fn assert_silent(&self, quiet: Duration, why: &str) {
        if let Some(message) = self.next(quiet) {
            panic!("{why}: unexpected notification {message:?}");
        }
    }
}

/// ftpgate started by hand with a test NOTIFY_SOCKET, in front of a real vsftpd.
struct Gate {
    proc: ProcessGuard,
    addr: SocketAddr,
    config: PathBuf,
    audit: PathBuf,
    stderr: PathBuf,
    _dir: TempDir,
}

impl Gate {
    fn start(vs: &Vsftpd, workers: u32, notify: &NotifySocket) -> Gate {
        let dir = temp_dir();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let audit = dir.path().join("audit.jsonl");
        let config = dir.path().join("ftpgate.json");
        let stderr = dir.path().join("ftpgate.stderr");
        let mut policy = Ftpgate::builder()
            .backend("vsftpd", vs.addr())
            .standard_roles()
            .user("anonymous", "read-only", "vsftpd")
            .workers(workers)
            .policy(addr, port_range(20), &audit);
        keep_root(&mut policy);
        fs::write(&config, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
        let proc = ProcessGuard::spawn(
            "ftpgate",
            Command::new(FTPGATE)
                .arg("--config")
                .arg(&config)
                .env("NOTIFY_SOCKET", &notify.name)
                .env_remove("JOURNAL_STREAM")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&stderr).unwrap()),
        );
        Gate {
            proc,
            addr,
            config,
            audit,
            stderr,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

fn assert_ready_after_bind(workers: u32, notify: NotifySocket) {
    let vs = Vsftpd::start();
    let mut gate = Gate::start(&vs, workers, &notify);
    let seen = notify.wait_for("READY=1", WAIT);
    // Every listener is bound when READY=1 is sent: a connection succeeds at once.
    assert!(
        is_listening(gate.addr),
        "READY=1 before {} listens",
        gate.addr
    );
    let ready = seen.last().unwrap();
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_else(|| panic!("READY=1 without STATUS=: {ready:?}"));
    assert!(status.contains(&gate.addr.to_string()), "{status}");
    assert_eq!(
        seen.iter().filter(|m| m.contains("READY=1")).count(),
        1,
        "{seen:?}"
    );
    // Told once, not once per worker.
    notify.assert_silent(Duration::from_millis(500), "after READY=1");
    assert!(gate.proc.is_running());

    // SIGHUP: RELOADING=1 (with the monotonic time systemd 253 wants), then READY=1.
    gate.proc.signal(libc::SIGHUP);
    let reloading = notify.next(WAIT).expect("RELOADING=1 after SIGHUP");
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC: {reloading:?}"));
    assert!(usec.parse::<u64>().is_ok_and(|v| v > 0), "{usec}");
    let after = notify.wait_for("READY=1", WAIT);
    assert!(
        after.last().unwrap().contains("policy reloaded"),
        "{after:?}"
    );
    assert!(
        wait_until(WAIT, || gate.log().matches("policy reloaded").count()
            == workers as usize),
        "{}",
        gate.log()
    );
    // SIGTERM: STOPPING=1.
    gate.proc.signal(libc::SIGTERM);
    notify.wait_for("STOPPING=1", WAIT);
    assert!(gate.proc.wait_exit(WAIT).is_some_and(|s| s.success()));
}

#[test]
fn one_worker_notifies_ready_reloading_and_stopping_on_a_socket_path() {
    let dir = temp_dir();
    assert_ready_after_bind(1, NotifySocket::at_path(dir.path()));
}

#[test]
fn the_supervisor_notifies_once_all_workers_are_ready_on_an_abstract_socket() {
    assert_ready_after_bind(2, NotifySocket::abstract_name());
}

/// The unit's `ExecReload=` command lines, in order, with the packaged paths replaced by
/// the test's binary and policy, `$MAINPID` by `pid` (what systemd substitutes) and `$$` by
/// `$` (systemd's escape). Each is run by `sh -c`: the lines use only the quoting that
/// systemd and the shell read alike (words, and `/bin/sh -c '...'`).
fn exec_reload_commands(binary: &str, config: &Path, pid: u32) -> Vec<String> {
    let unit = fs::read_to_string(UNIT).expect("read the unit");
    let commands: Vec<String> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ExecReload="))
        .map(|cmd| {
            cmd.replace("/usr/sbin/ftpgate", binary)
                .replace("/etc/ftpgate/ftpgate.json", &config.to_string_lossy())
                .replace("${MAINPID}", &pid.to_string())
                .replace("$MAINPID", &pid.to_string())
                .replace("$$", "$")
        })
        .collect();
    assert!(
        commands.len() >= 2,
        "ExecReload= checks the file, then signals: {commands:?}"
    );
    commands
}

/// Runs the commands as systemd runs ExecReload= lines: in order, the first failure fails
/// the reload and the rest do not run. Returns the exit code of the last command run.
fn run_reload(commands: &[String]) -> i32 {
    for command in commands {
        // systemd ignores the exit status of a command prefixed with "-": none may be.
        assert!(!command.starts_with('-'), "{command}");
        let out = run(Command::new("/bin/sh").arg("-c").arg(command), WAIT);
        match out.code() {
            Some(0) => {}
            code => return code.unwrap_or(-1),
        }
    }
    0
}

#[test]
fn exec_reload_fails_on_a_broken_policy_and_never_signals() {
    let vs = Vsftpd::start();
    let notify = NotifySocket::abstract_name();
    let mut gate = Gate::start(&vs, 1, &notify);
    notify.wait_for("READY=1", WAIT);
    let good = fs::read_to_string(&gate.config).unwrap();

    // A policy that does not validate: ExecReload fails, ftpgate gets no SIGHUP.
    fs::write(&gate.config, good.replace("\"roles\"", "\"rolez\"")).unwrap();
    let commands = exec_reload_commands(FTPGATE, &gate.config, gate.proc.pid());
    let code = run_reload(&commands);
    assert_ne!(code, 0, "the reload of a broken policy must fail");
    notify.assert_silent(Duration::from_secs(1), "a refused file reached ftpgate");
    assert!(!gate.log().contains("reload"), "{}", gate.log());
    assert!(gate.proc.is_running());
    // The gateway still serves with the policy it has.
    let out = curl(&[&ftp_url(gate.addr, "/")]);
    out.assert_success("a listing after the refused reload");

    // The good file back: the same commands succeed and the reload is notified.
    fs::write(&gate.config, &good).unwrap();
    assert_eq!(run_reload(&commands), 0);
    let seen = notify.wait_for("READY=1", WAIT);
    assert!(
        seen.iter().any(|m| m.lines().any(|l| l == "RELOADING=1")),
        "{seen:?}"
    );
    assert!(
        wait_until(WAIT, || gate.log().contains("policy reloaded")),
        "{}",
        gate.log()
    );

    // A file with warnings only (`--check` exits 3) is still a valid policy: it reloads.
    let mut warned: serde_json::Value = serde_json::from_str(&good).unwrap();
    let users = warned["users"].as_object_mut().expect("users");
    for user in users.values_mut() {
        user["allow_fxp_to"] = serde_json::json!(["0.0.0.0/0"]);
    }
    fs::write(&gate.config, warned.to_string()).unwrap();
    let check = run(
        Command::new(FTPGATE)
            .args(["--check", "--config"])
            .arg(&gate.config),
        WAIT,
    );
    assert_eq!(check.code(), Some(3), "warnings only");
    assert_eq!(run_reload(&commands), 0, "a policy with warnings reloads");
}

#[test]
fn sigusr2_reopens_the_audit_file_without_reloading_the_policy() {
    let vs = Vsftpd::start();
    let data = random_bytes(20_000, 13);
    vs.put_file("pub/rotate.bin", &data);
    let notify = NotifySocket::abstract_name();
    let mut gate = Gate::start(&vs, 1, &notify);
    notify.wait_for("READY=1", WAIT);
    let url = ftp_url(gate.addr, "/pub/rotate.bin");
    let download = |dir: &Path, name: &str| {
        let out_path = dir.join(name);
        curl(&["-o", &out_path.to_string_lossy(), &url]).assert_success("download");
        assert_eq!(sha256_file(&out_path), sha256_bytes(&data));
    };
    let scratch = temp_dir();
    download(scratch.path(), "first");
    let transfers = |path: &Path| {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"event\":\"transfer\""))
            .count()
    };
    assert!(wait_until(WAIT, || transfers(&gate.audit) == 1));

    // logrotate's move, then its postrotate signal.
    let rotated = gate.audit.with_extension("jsonl.1");
    fs::rename(&gate.audit, &rotated).unwrap();
    gate.proc.signal(libc::SIGUSR2);
    assert!(
        wait_until(WAIT, || gate.log().contains("audit trail reopened")),
        "{}",
        gate.log()
    );
    download(scratch.path(), "second");
    assert!(
        wait_until(WAIT, || transfers(&gate.audit) == 1),
        "the next transfer lands in a new file at the original path"
    );
    assert_eq!(
        transfers(&rotated),
        1,
        "the rotated file keeps only the old one"
    );
    // The policy was not reloaded: no log line, no RELOADING=1.
    assert!(!gate.log().contains("reload"), "{}", gate.log());
    notify.assert_silent(Duration::from_millis(500), "SIGUSR2 is no reload");
    assert!(gate.proc.is_running());
}
