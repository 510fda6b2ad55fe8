//! End-to-end test harness: real FTP servers behind a real `ftpgate` process, driven by real
//! FTP clients (curl, lftp, Python ftplib) and by a raw control-channel client.
//!
//! Every test builds its own fixtures (own temp dir, own ports, own passive ranges), so the
//! tests of one binary can run in parallel threads and several test binaries can run at once.
//! Every process a fixture starts is owned by a [`ProcessGuard`] and is stopped on drop, also
//! when the test panics. Every wait polls a condition under a deadline; the only sleeps are the
//! short pauses between two polls.
//!
//! `FTPGATE_TEST_DIRECT=1` makes [`FtpgateBuilder::start`] start nothing and point
//! [`Ftpgate::addr`] at the first backend, so the fixtures and the transfer tests can be checked
//! against the real servers alone. Refusal, audit and CLI tests fail in that mode by design.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tempfile::TempDir;

mod client;
mod gate;
mod proftpd;
mod pure_ftpd;
mod pyftpdlib;
mod vsftpd;
pub use client::*;
#[allow(unused_imports)] // not every test binary runs a gate (prefix_mmdb)
pub use gate::*;
#[allow(unused_imports)] // not every test binary runs a proftpd
pub use proftpd::*;
#[allow(unused_imports)] // not every test binary runs a pure-ftpd
pub use pure_ftpd::*;
pub use pyftpdlib::*;
pub use vsftpd::*;

/// How long a server may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Read timeout of the raw control client and of its data connections.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);
/// Upper bound for one run of an external client (curl, lftp, python).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Grace period between SIGTERM and SIGKILL when a fixture stops a process.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two polls of a condition.
const POLL: Duration = Duration::from_millis(10);

/// Size of the large random test file.
pub const BIG: usize = 8 * 1024 * 1024;

/// The non-plumbing verbs of the "full" role.
pub const FULL: &[&str] = &[
    "RETR", "STOR", "APPE", "STOU", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT", "CWD",
    "CDUP", "PWD", "MKD", "RMD", "DELE", "RNFR", "RNTO", "SITE",
];
/// The verbs of the "read-only" role.
pub const READ_ONLY: &[&str] = &[
    "RETR", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT", "CWD", "CDUP", "PWD",
];

const PYTHON: &str = "/usr/bin/python3";
const VSFTPD: &str = "/usr/sbin/vsftpd";

/// True when `FTPGATE_TEST_DIRECT=1`: clients talk to the backend directly.
pub fn direct_mode() -> bool {
    std::env::var("FTPGATE_TEST_DIRECT").is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------------------------------------
// Ports and waiting
// ---------------------------------------------------------------------------------------------

/// The IPv6 twin of [`is_listening`], from /proc/net/tcp6.
fn is_listening_v6(ip: std::net::Ipv6Addr, port: u16) -> bool {
    // /proc prints the address as four 32-bit words, each in host (little-endian) order.
    let octets = ip.octets();
    let want: String = octets
        .chunks(4)
        .map(|w| format!("{:08X}", u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
        .collect();
    let want = format!("{want}:{port:04X}");
    let Ok(table) = fs::read_to_string("/proc/net/tcp6") else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 3 && f[3] == "0A" && f[1] == want
    })
}

/// A self-signed certificate and key for 127.0.0.1/localhost, made with openssl(1) in `dir`.
pub fn generate_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    generate_named_certificate(dir, "cert", &["-newkey", "rsa:2048"], "localhost")
}

/// A self-signed ECDSA P-256 certificate and key for 127.0.0.1/localhost, named `CN=cn`.
pub fn generate_ecdsa_certificate(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    generate_named_certificate(dir, &format!("{cn}-cert"), &key, cn)
}

/// A self-signed certificate made with openssl(1) in `dir` as `STEM.pem` and `STEM.key`
/// (`cert.pem`/`key.pem` for the stem "cert"), with the key `newkey` asks for.
pub fn generate_named_certificate(
    dir: &Path,
    stem: &str,
    newkey: &[&str],
    cn: &str,
) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{stem}.pem"));
    let key = if stem == "cert" {
        dir.join("key.pem")
    } else {
        dir.join(format!("{stem}.key"))
    };
    let out = run(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(newkey)
            .args(["-nodes", "-days", "365"])
            .arg("-subj")
            .arg(format!("/CN={cn}"))
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        Duration::from_secs(60),
    );
    out.assert_success("openssl req");
    (cert, key)
}

/// A test CA and a server certificate it signed for 127.0.0.1, made with openssl(1) in
/// `dir`: (CA certificate, server certificate, server key).
pub fn generate_ca_and_server(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let ext = dir.join("server.ext");
    fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n",
    )
    .expect("write ext");
    let steps: [Vec<&std::ffi::OsStr>; 3] = [
        vec![
            "req".as_ref(),
            "-x509".as_ref(),
            "-newkey".as_ref(),
            "rsa:2048".as_ref(),
            "-nodes".as_ref(),
            "-days".as_ref(),
            "365".as_ref(),
            "-subj".as_ref(),
            "/CN=ftpgate test CA".as_ref(),
            "-addext".as_ref(),
            "basicConstraints=critical,CA:TRUE".as_ref(),
            "-addext".as_ref(),
            "keyUsage=critical,keyCertSign,cRLSign".as_ref(),
            "-keyout".as_ref(),
            ca_key.as_os_str(),
            "-out".as_ref(),
            ca.as_os_str(),
        ],
        vec![
            "req".as_ref(),
            "-newkey".as_ref(),
            "rsa:2048".as_ref(),
            "-nodes".as_ref(),
            "-subj".as_ref(),
            "/CN=127.0.0.1".as_ref(),
            "-keyout".as_ref(),
            key.as_os_str(),
            "-out".as_ref(),
            csr.as_os_str(),
        ],
        vec![
            "x509".as_ref(),
            "-req".as_ref(),
            "-in".as_ref(),
            csr.as_os_str(),
            "-CA".as_ref(),
            ca.as_os_str(),
            "-CAkey".as_ref(),
            ca_key.as_os_str(),
            "-CAcreateserial".as_ref(),
            "-days".as_ref(),
            "365".as_ref(),
            "-extfile".as_ref(),
            ext.as_os_str(),
            "-out".as_ref(),
            cert.as_os_str(),
        ],
    ];
    for args in steps {
        run(
            Command::new("openssl").args(&args).current_dir(dir),
            Duration::from_secs(60),
        )
        .assert_success("openssl");
    }
    (ca, cert, key)
}

/// A loopback port that was free a moment ago (from the kernel's ephemeral range).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

const RANGE_FIRST: u32 = 20_000;
const RANGE_LAST: u32 = 32_000; // below the ephemeral range (32768-60999), so free_port() never hits it
static NEXT_RANGE: AtomicU32 = AtomicU32::new(0);

/// A block of `len` consecutive loopback ports, all free right now, below the ephemeral range.
/// Blocks are handed out by a process-wide counter starting at an offset derived from the pid,
/// so parallel tests and parallel test binaries rarely meet; a block with a busy port is skipped.
pub fn port_range(len: u16) -> (u16, u16) {
    let len = u32::from(len.max(1));
    let slots = (RANGE_LAST - RANGE_FIRST) / len;
    let offset = std::process::id().wrapping_mul(2_654_435_761) % slots;
    for _ in 0..slots {
        let k = NEXT_RANGE.fetch_add(1, Ordering::Relaxed);
        let lo = RANGE_FIRST + ((offset + k) % slots) * len;
        let hi = lo + len - 1;
        let all_free =
            (lo..=hi).all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p as u16)).is_ok());
        if all_free {
            return (lo as u16, hi as u16);
        }
    }
    panic!("no free block of {len} ports in {RANGE_FIRST}-{RANGE_LAST}");
}

/// Starts a server that listens on 127.0.0.1 at a port of its own, with a passive range of
/// 20 ports: up to three attempts, each on a fresh free port and range (another process may
/// take the port between [`free_port`] and the server's bind). `spawn(port, range)` starts
/// one attempt; an attempt has succeeded once the port listens and the process still runs.
/// Panics with `log()` (what the last attempt wrote) when none came up.
pub fn start_listening(
    name: &str,
    mut spawn: impl FnMut(u16, (u16, u16)) -> ProcessGuard,
    log: impl Fn() -> String,
) -> (ProcessGuard, SocketAddr, (u16, u16)) {
    let mut last_err = String::new();
    for _attempt in 0..3 {
        let port = free_port();
        let range = port_range(20);
        let mut proc = spawn(port, range);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if wait_until(START_TIMEOUT, || is_listening(addr) || !proc.is_running())
            && proc.is_running()
        {
            return (proc, addr, range);
        }
        proc.stop();
        last_err = log();
    }
    panic!("{name} did not start: {last_err}");
}

/// Creates `rel` under `root` with `data`, owned by the system user `ftp` (the servers'
/// session user) when there is one.
pub fn put_ftp_file(root: &Path, rel: &str, data: &[u8]) -> PathBuf {
    let path = root.join(rel);
    fs::write(&path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    if let Some((uid, gid)) = user_ids("ftp") {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
    }
    path
}

/// Polls `cond` until it is true or `timeout` has passed; returns whether it became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Waits until a TCP connection to `addr` succeeds. This opens (and closes) connections, so
/// the server sees them; fixtures use [`is_listening`] instead, which opens none.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    wait_until(timeout, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })
}

/// True when some socket is in LISTEN state on `addr` (or on the wildcard address with the
/// same port), read from /proc/net/tcp, so no connection is made (a probe connection would show
/// up in the server's log and in ftpgate's audit trail).
pub fn is_listening(addr: SocketAddr) -> bool {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => return is_listening_v6(ip, addr.port()),
    };
    let want = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(ip.octets()),
        addr.port()
    );
    let any = format!("00000000:{:04X}", addr.port());
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 3 && f[3] == "0A" && (f[1] == want || f[1] == any)
    })
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// Owns a child process started in its own process group. On drop (also while a test panics)
/// the group gets SIGTERM, then SIGKILL if the leader has not exited after [`STOP_TIMEOUT`],
/// and the leader is reaped.
pub struct ProcessGuard {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl ProcessGuard {
    pub fn spawn(name: &str, cmd: &mut Command) -> ProcessGuard {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        ProcessGuard {
            name: name.to_string(),
            child,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout, when it was spawned with `Stdio::piped()` (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has exited (reaps it).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
            }
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Sends `signal` to the process (not to its group). No-op once it has been reaped.
    pub fn signal(&mut self, signal: i32) {
        if self.is_running() {
            // SAFETY: kill(2) on the pid of our own, not yet reaped child.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_status().is_some());
        self.status
    }

    /// SIGTERM to the group, SIGKILL to the group after [`STOP_TIMEOUT`], reap the leader.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.try_status() {
            return status;
        }
        // The leader is not reaped yet, so its pid is still its process group id and cannot
        // belong to anyone else.
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: kill(2) on the process group of our own, not yet reaped child.
        unsafe {
            libc::kill(group, libc::SIGTERM);
        }
        if let Some(status) = self.wait_exit(STOP_TIMEOUT) {
            return status;
        }
        // SAFETY: as above; the leader is still not reaped.
        unsafe {
            libc::kill(group, libc::SIGKILL);
        }
        let status = self.child.wait().expect("wait for killed child");
        self.status = Some(status);
        status
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What an external client printed and how it ended.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_str(),
            self.stderr
        )
    }
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics with everything the client said unless it exited 0.
    pub fn assert_success(&self, what: &str) -> &Output {
        assert!(
            self.success(),
            "{what} failed with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_str(),
            self.stderr
        );
        self
    }
}

/// Runs `cmd` to completion with piped output, killing it (and panicking) after `timeout`.
/// `ftpgate --check --config POLICY` (30 s at most).
pub fn ftpgate_check(policy: &Path) -> Output {
    run(
        Command::new(env!("CARGO_BIN_EXE_ftpgate"))
            .arg("--check")
            .arg("--config")
            .arg(policy),
        Duration::from_secs(30),
    )
}

pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut guard = ProcessGuard::spawn(&format!("{cmd:?}"), cmd);
    let mut out = guard.child.stdout.take().expect("piped stdout");
    let mut err = guard.child.stderr.take().expect("piped stderr");
    let out_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_thread = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let Some(status) = guard.wait_exit(timeout) else {
        let name = guard.name().to_string();
        guard.stop();
        let stderr = err_thread.join().unwrap_or_default();
        panic!(
            "{name} did not finish within {timeout:?}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Files and hashes
// ---------------------------------------------------------------------------------------------

/// `len` deterministic pseudo-random bytes (splitmix64 seeded with `seed`).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `len` random bytes to `path` and returns their SHA-256 (hex).
pub fn write_random_file(path: &Path, len: usize, seed: u64) -> String {
    let data = random_bytes(len, seed);
    fs::write(path, &data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    sha256_bytes(&data)
}

pub fn sha256_bytes(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_file(path: &Path) -> String {
    let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    sha256_bytes(&data)
}

/// A private temp dir, mode 0755 (servers that drop privileges must be able to enter it).
///
/// The first call also masks group and other write permission out of the umask of the test
/// process (and so of every ftpgate it starts): ftpgate refuses a policy, certificate or copy
/// directory that its group can write, and with a umask of 002 every file a test writes
/// would be one.
pub fn temp_dir() -> TempDir {
    static UMASK: std::sync::Once = std::sync::Once::new();
    UMASK.call_once(|| {
        // SAFETY: umask(2) takes and returns plain mode bits; the second call puts back the
        // old mask with the write bits for group and others added.
        unsafe {
            let old = libc::umask(0o022);
            libc::umask(old | 0o022);
        }
    });
    let dir = tempfile::Builder::new()
        .prefix("ftpgate-test-")
        .tempdir()
        .expect("create temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
    dir
}

/// uid and gid of a system user, from /etc/passwd.
pub fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// An `ftp://` URL for `path` on `addr` (spaces percent-encoded).
pub fn ftp_url(addr: SocketAddr, path: &str) -> String {
    format!(
        "ftp://{addr}/{}",
        path.trim_start_matches('/').replace(' ', "%20")
    )
}
