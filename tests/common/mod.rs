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
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

mod pure_ftpd;
#[allow(unused_imports)] // not every test binary runs a pure-ftpd
pub use pure_ftpd::*;

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
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = run(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
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
            "2".as_ref(),
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
            "2".as_ref(),
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

// ---------------------------------------------------------------------------------------------
// vsftpd
// ---------------------------------------------------------------------------------------------

/// A private vsftpd on a free loopback port with anonymous login. Its anonymous root
/// ([`Vsftpd::root`]) is root-owned 0755 with a subfolder `pub/` owned by the ftp user, where
/// uploads, mkdir, rename and delete are allowed. vsftpd accepts both `anonymous` and `ftp` as
/// the anonymous user, without asking for a password (it answers 230 straight to USER).
pub struct Vsftpd {
    proc: ProcessGuard,
    addr: SocketAddr,
    pasv: (u16, u16),
    log: PathBuf,
    dir: TempDir,
}

impl Vsftpd {
    pub fn start() -> Vsftpd {
        Vsftpd::start_with("")
    }

    /// A vsftpd with extra configuration lines (e.g. its TLS settings).
    pub fn start_with(extra: &str) -> Vsftpd {
        let (ftp_uid, ftp_gid) =
            user_ids("ftp").expect("vsftpd's ftp_username user `ftp` must exist");
        let dir = temp_dir();
        let root = dir.path().join("root");
        let empty = dir.path().join("empty");
        for d in [&root, &empty] {
            fs::create_dir(d).expect("mkdir");
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let public = root.join("pub");
        fs::create_dir(&public).expect("mkdir pub");
        std::os::unix::fs::chown(&public, Some(ftp_uid), Some(ftp_gid)).expect("chown pub");
        let log = dir.path().join("vsftpd.log");
        let conf = dir.path().join("vsftpd.conf");
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let pasv = port_range(20);
            let config = format!(
                "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
                 background=NO\nseccomp_sandbox=NO\n\
                 anonymous_enable=YES\nlocal_enable=NO\nno_anon_password=YES\n\
                 anon_root={root}\nwrite_enable=YES\nanon_upload_enable=YES\n\
                 anon_mkdir_write_enable=YES\nanon_other_write_enable=YES\nanon_umask=022\n\
                 pasv_enable=YES\npasv_min_port={pmin}\npasv_max_port={pmax}\n\
                 port_enable=YES\nconnect_from_port_20=NO\n\
                 xferlog_enable=YES\nxferlog_std_format=NO\ndual_log_enable=NO\nsyslog_enable=NO\n\
                 log_ftp_protocol=YES\nvsftpd_log_file={log}\n\
                 secure_chroot_dir={empty}\n{extra}",
                root = root.display(),
                pmin = pasv.0,
                pmax = pasv.1,
                log = log.display(),
                empty = empty.display(),
            );
            fs::write(&conf, config).expect("write vsftpd.conf");
            let stderr = dir.path().join("vsftpd.stderr");
            let mut proc = ProcessGuard::spawn(
                "vsftpd",
                Command::new(VSFTPD)
                    .arg(&conf)
                    .stdin(Stdio::null())
                    .stdout(fs::File::create(dir.path().join("vsftpd.stdout")).expect("stdout"))
                    .stderr(fs::File::create(&stderr).expect("stderr")),
            );
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            if wait_until(START_TIMEOUT, || is_listening(addr) || !proc.is_running())
                && proc.is_running()
            {
                return Vsftpd {
                    proc,
                    addr,
                    pasv,
                    log,
                    dir,
                };
            }
            proc.stop();
            last_err = format!(
                "{}{}",
                read_lossy(&dir.path().join("vsftpd.stdout")),
                read_lossy(&stderr)
            );
        }
        panic!("vsftpd did not start: {last_err}");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The anonymous root (the FTP path `/`).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The writable folder (the FTP path `/pub`).
    pub fn pub_dir(&self) -> PathBuf {
        self.root().join("pub")
    }

    /// Creates `rel` (relative to the root) with `data`, owned by the ftp user, mode 0644.
    pub fn put_file(&self, rel: &str, data: &[u8]) -> PathBuf {
        let path = self.root().join(rel);
        fs::write(&path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        if let Some((uid, gid)) = user_ids("ftp") {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
        }
        path
    }

    /// The passive port range vsftpd itself uses.
    pub fn pasv_range(&self) -> (u16, u16) {
        self.pasv
    }

    /// The whole protocol log (every command and reply, every connection).
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    /// A mark for [`Vsftpd::log_since`]: the current length of the log.
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    /// The part of the log written after `mark`.
    pub fn log_since(&self, mark: usize) -> String {
        self.log().get(mark..).unwrap_or_default().to_string()
    }

    /// Number of client connections vsftpd has logged (`CONNECT:` lines) in `log`.
    pub fn connects(log: &str) -> usize {
        log.lines()
            .filter(|l| l.contains("] CONNECT: Client"))
            .count()
    }

    /// The commands (as received) in `log`, from its `FTP command:` lines.
    pub fn commands(log: &str) -> Vec<String> {
        log.lines()
            .filter_map(|l| l.split_once("FTP command: Client \""))
            .filter_map(|(_, rest)| rest.split_once("\", \""))
            .map(|(_, cmd)| cmd.strip_suffix('"').unwrap_or(cmd).to_string())
            .collect()
    }

    /// True when some command in `log` has the verb `verb` (case-insensitive).
    pub fn log_has_verb(log: &str, verb: &str) -> bool {
        Self::commands(log).iter().any(|c| {
            c.split(' ')
                .next()
                .is_some_and(|v| v.eq_ignore_ascii_case(verb))
        })
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- vsftpd {} protocol log (last 60 lines) ---\n{}",
                self.addr,
                tail(&self.log(), 60)
            );
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// pyftpdlib
// ---------------------------------------------------------------------------------------------

const PYFTPDLIB_SERVER: &str = r#"
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

root, pmin, pmax, logfile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
logging.basicConfig(filename=logfile, level=logging.DEBUG,
                    format="%(asctime)s %(levelname)s %(message)s")
auth = DummyAuthorizer()
auth.add_user("alice", "alice-pw", root, perm="elradfmwMT")
auth.add_user("bob", "bob-pw", root, perm="elr")

class Handler(FTPHandler):
    pass

Handler.authorizer = auth
Handler.passive_ports = list(range(pmin, pmax + 1))
Handler.banner = "pyftpdlib ready."
server = FTPServer(("127.0.0.1", 0), Handler)
print(server.address[1], flush=True)
server.serve_forever()
"#;

/// A private pyftpdlib server (it has MLSD/MLST) with virtual users `alice` / `alice-pw`
/// (all permissions) and `bob` / `bob-pw` (read-only), both rooted at [`Pyftpdlib::root`].
pub struct Pyftpdlib {
    proc: ProcessGuard,
    addr: SocketAddr,
    log: PathBuf,
    dir: TempDir,
}

impl Pyftpdlib {
    pub const ALICE: (&'static str, &'static str) = ("alice", "alice-pw");
    pub const BOB: (&'static str, &'static str) = ("bob", "bob-pw");

    pub fn start() -> Pyftpdlib {
        let dir = temp_dir();
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("mkdir root");
        let script = dir.path().join("server.py");
        fs::write(&script, PYFTPDLIB_SERVER).expect("write server.py");
        let log = dir.path().join("pyftpdlib.log");
        let (pmin, pmax) = port_range(20);
        let mut proc = ProcessGuard::spawn(
            "pyftpdlib",
            Command::new(PYTHON)
                .arg(&script)
                .arg(&root)
                .arg(pmin.to_string())
                .arg(pmax.to_string())
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(fs::File::create(dir.path().join("stderr")).expect("stderr")),
        );
        let stdout = proc.child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server can never block on a full pipe.
            let _ = io::copy(&mut reader, &mut io::sink());
        });
        let port: u16 = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) if line.trim().parse::<u16>().is_ok() => line.trim().parse().unwrap(),
            other => {
                proc.stop();
                panic!(
                    "pyftpdlib did not start ({other:?}): {}",
                    read_lossy(&dir.path().join("stderr"))
                );
            }
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        assert!(
            wait_until(START_TIMEOUT, || is_listening(addr)),
            "pyftpdlib not listening on {addr}"
        );
        Pyftpdlib {
            proc,
            addr,
            log,
            dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The users' root folder (the FTP path `/`); owned by root, the server runs as root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// pyftpdlib's debug log (commands appear as `<- VERB arg`).
    pub fn log(&self) -> String {
        read_lossy(&self.log)
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }
}

// ---------------------------------------------------------------------------------------------
// ftpgate
// ---------------------------------------------------------------------------------------------

/// Builds a policy in the v1 contract shape and starts `ftpgate --config` on it.
#[derive(Clone, Debug)]
pub struct FtpgateBuilder {
    backends: Vec<(String, Vec<SocketAddr>)>,
    roles: Vec<(String, Vec<String>)>,
    users: Vec<(String, String, String)>,
    timeouts: (u64, u64, u64),
    workers: u32,
    /// Extra policy settings: (path of keys, value), merged into the document last.
    settings: Vec<(Vec<String>, Value)>,
    /// Listen on [::1] instead of 127.0.0.1.
    ipv6: bool,
    /// FTPS: the main listener explicit (AUTH TLS), a second one implicit, with a test
    /// certificate generated for the run.
    ftps: bool,
}

impl Default for FtpgateBuilder {
    fn default() -> Self {
        FtpgateBuilder {
            backends: Vec::new(),
            roles: Vec::new(),
            users: Vec::new(),
            timeouts: (30, 300, 900),
            workers: 1,
            settings: Vec::new(),
            ipv6: false,
            ftps: false,
        }
    }
}

impl FtpgateBuilder {
    pub fn backend(mut self, name: &str, server: SocketAddr) -> Self {
        self.backends.push((name.to_string(), vec![server]));
        self
    }

    pub fn role(mut self, name: &str, allow: &[&str]) -> Self {
        self.roles.push((
            name.to_string(),
            allow.iter().map(|v| v.to_string()).collect(),
        ));
        self
    }

    /// The roles "full" ([`FULL`]) and "read-only" ([`READ_ONLY`]).
    pub fn standard_roles(self) -> Self {
        self.role("full", FULL).role("read-only", READ_ONLY)
    }

    pub fn user(mut self, name: &str, role: &str, backend: &str) -> Self {
        self.users
            .push((name.to_string(), role.to_string(), backend.to_string()));
        self
    }

    /// Sets `value` at the key path `path` of the policy (objects are created on the way),
    /// e.g. `.set(&["defaults", "limits", "sessions_per_ip"], json!(2))`.
    pub fn set(mut self, path: &[&str], value: Value) -> Self {
        self.settings
            .push((path.iter().map(|k| k.to_string()).collect(), value));
        self
    }

    /// FTPS toward clients: explicit TLS on the main listener, implicit TLS on a second
    /// one ([`Ftpgate::implicit_addr`]), with a self-signed certificate for 127.0.0.1.
    pub fn ftps(mut self) -> Self {
        self.ftps = true;
        self
    }

    /// Makes the gateway listen on [::1] (the backends stay where they are).
    pub fn listen_ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// Worker processes (1: the gateway runs in one process, no supervisor).
    pub fn workers(mut self, workers: u32) -> Self {
        self.workers = workers;
        self
    }

    /// Login, idle and session timeouts in seconds.
    pub fn timeouts(mut self, login: u64, idle: u64, session: u64) -> Self {
        self.timeouts = (login, idle, session);
        self
    }

    /// The policy document for the given listener, passive range and audit file.
    pub fn policy(&self, listen: SocketAddr, passive: (u16, u16), audit: &Path) -> Value {
        let mut backends = serde_json::Map::new();
        for (name, servers) in &self.backends {
            let servers: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
            backends.insert(name.clone(), json!({ "servers": servers }));
        }
        let mut roles = serde_json::Map::new();
        for (name, allow) in &self.roles {
            roles.insert(name.clone(), json!({ "allow": allow }));
        }
        let mut users = serde_json::Map::new();
        for (name, role, backend) in &self.users {
            users.insert(name.clone(), json!({ "role": role, "backend": backend }));
        }
        let (login, idle, session) = self.timeouts;
        let mut policy = json!({
            "workers": self.workers,
            "listeners": [ { "address": listen.to_string() } ],
            "passive": { "ports": format!("{}-{}", passive.0, passive.1), "advertise": "127.0.0.1" },
            "backends": backends,
            "roles": roles,
            "users": users,
            "defaults": { "timeouts": { "login": login, "idle": idle, "session": session } },
            "audit": { "file": audit.to_string_lossy() },
        });
        self.apply_settings(&mut policy);
        policy
    }

    fn apply_settings(&self, policy: &mut Value) {
        for (path, value) in &self.settings {
            let mut node: &mut Value = policy;
            for (i, key) in path.iter().enumerate() {
                if i + 1 == path.len() {
                    node[key.as_str()] = value.clone();
                } else {
                    if !node[key.as_str()].is_object() {
                        node[key.as_str()] = json!({});
                    }
                    node = &mut node[key.as_str()];
                }
            }
        }
    }

    /// Starts ftpgate (or, under `FTPGATE_TEST_DIRECT=1`, nothing) and waits for its listener.
    pub fn start(self) -> Ftpgate {
        let dir = temp_dir();
        let audit = dir.path().join("audit.jsonl");
        let stderr = dir.path().join("ftpgate.stderr");
        let config = dir.path().join("ftpgate.json");
        if direct_mode() {
            let addr = self
                .backends
                .first()
                .and_then(|(_, servers)| servers.first().copied())
                .expect("direct mode needs a backend");
            return Ftpgate {
                proc: None,
                implicit: None,
                addr,
                passive: (0, 0),
                audit,
                stderr,
                config,
                dir,
            };
        }
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let addr = if self.ipv6 {
                let port = TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0))
                    .and_then(|l| l.local_addr())
                    .expect("bind [::1]:0")
                    .port();
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))
            } else {
                SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()))
            };
            let passive = port_range(20);
            let mut policy = self.policy(addr, passive, &audit);
            let mut implicit = None;
            if self.ftps {
                let (cert, key) = generate_certificate(dir.path());
                let implicit_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
                policy["listeners"] = json!([
                    { "address": addr.to_string(), "tls": "explicit" },
                    { "address": implicit_addr.to_string(), "tls": "implicit" },
                ]);
                policy["tls"] = json!({
                    "certificate": cert.to_string_lossy(),
                    "private_key": key.to_string_lossy(),
                });
                self.apply_settings(&mut policy);
                implicit = Some(implicit_addr);
            }
            fs::write(
                &config,
                serde_json::to_string_pretty(&policy).expect("serialise policy"),
            )
            .expect("write policy");
            let mut proc = ProcessGuard::spawn(
                "ftpgate",
                Command::new(env!("CARGO_BIN_EXE_ftpgate"))
                    .arg("--config")
                    .arg(&config)
                    .env("RUST_LOG", "debug")
                    .stdin(Stdio::null())
                    .stdout(fs::File::create(dir.path().join("ftpgate.stdout")).expect("stdout"))
                    .stderr(fs::File::create(&stderr).expect("stderr")),
            );
            if wait_until(START_TIMEOUT, || is_listening(addr) || !proc.is_running())
                && proc.is_running()
            {
                // The first round of FEAT probes opens a connection to every backend server
                // at start: let it end, so that a test sees no probe in its backend's logs
                // and FEAT before login already lists what was learned. Not an error if it
                // takes longer (a backend that never answers): the test goes on.
                let probes = first_probe_round(&policy);
                wait_until(START_TIMEOUT, || {
                    probes_done(&read_lossy(&stderr)) >= probes || !proc.is_running()
                });
                return Ftpgate {
                    proc: Some(proc),
                    implicit,
                    addr,
                    passive,
                    audit,
                    stderr,
                    config,
                    dir,
                };
            }
            let status = proc.stop();
            last_err = format!("exit {status:?}\n{}", read_lossy(&stderr));
        }
        panic!("ftpgate did not start listening: {last_err}");
    }
}

/// How many FEAT probes the workers make in their first round for `policy`: one per server
/// of every pool whose `feature_probe` is not false, in every worker.
fn first_probe_round(policy: &Value) -> usize {
    let workers = policy["workers"].as_u64().map_or_else(
        || thread::available_parallelism().map_or(1, |n| n.get()),
        |n| n as usize,
    );
    let servers: usize = policy["backends"].as_object().map_or(0, |pools| {
        pools
            .values()
            .filter(|pool| pool["feature_probe"] != Value::Bool(false))
            .map(|pool| pool["servers"].as_array().map_or(0, Vec::len))
            .sum()
    });
    workers * servers
}

/// The FEAT probes that ended (learned or failed) in ftpgate's log (RUST_LOG=debug).
pub fn probes_done(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains("FEAT probe of ") && (l.contains(") done:") || l.contains(") failed:"))
        })
        .count()
}

/// A running ftpgate (see [`FtpgateBuilder`]).
pub struct Ftpgate {
    proc: Option<ProcessGuard>,
    /// The implicit FTPS listener (with [`FtpgateBuilder::ftps`]).
    implicit: Option<SocketAddr>,
    addr: SocketAddr,
    passive: (u16, u16),
    audit: PathBuf,
    stderr: PathBuf,
    config: PathBuf,
    dir: TempDir,
}

impl Ftpgate {
    /// The implicit FTPS listener; panics unless built with [`FtpgateBuilder::ftps`].
    pub fn implicit_addr(&self) -> SocketAddr {
        self.implicit.expect("built without .ftps()")
    }

    pub fn builder() -> FtpgateBuilder {
        FtpgateBuilder::default()
    }

    /// The standard setup in front of a vsftpd: roles full/read-only, `anonymous` -> full,
    /// `ftp` -> read-only, both on backend "vsftpd".
    pub fn for_vsftpd(vs: &Vsftpd) -> Ftpgate {
        Ftpgate::builder()
            .backend("vsftpd", vs.addr())
            .standard_roles()
            .user("anonymous", "full", "vsftpd")
            .user("ftp", "read-only", "vsftpd")
            .start()
    }

    /// The standard setup in front of pyftpdlib: `alice` -> full, `bob` -> read-only.
    pub fn for_pyftpdlib(py: &Pyftpdlib) -> Ftpgate {
        Ftpgate::builder()
            .backend("pyftpd", py.addr())
            .standard_roles()
            .user("alice", "full", "pyftpd")
            .user("bob", "read-only", "pyftpd")
            .start()
    }

    /// Where clients connect: ftpgate's listener, or the backend in direct mode.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn is_direct(&self) -> bool {
        self.proc.is_none()
    }

    pub fn passive_range(&self) -> (u16, u16) {
        self.passive
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn audit_path(&self) -> &Path {
        &self.audit
    }

    /// ftpgate's stderr (its log, RUST_LOG=debug) so far.
    pub fn stderr_log(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// The lines of ftpgate's answer to `FEAT` before login (without the first and last).
    pub fn feat_before_login(&self) -> Vec<String> {
        let mut c = Ftp::connect(self.addr);
        let (code, text) = c.cmd("FEAT");
        assert_eq!(code, 211, "FEAT before login: {text}");
        assert_eq!(c.cmd("QUIT").0, 221);
        let lines: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        lines
            .get(1..lines.len().saturating_sub(1))
            .unwrap_or_default()
            .to_vec()
    }

    /// True while the ftpgate process runs (always true in direct mode).
    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().is_none_or(|p| p.is_running())
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid())
    }

    /// The raw lines of the audit file (empty if it does not exist yet).
    pub fn audit_lines(&self) -> Vec<String> {
        read_lossy(&self.audit)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Every complete audit line, parsed. Panics on a line that is not a JSON object.
    /// A last line without its newline yet (being written) is left out.
    pub fn audit_events(&self) -> Vec<Value> {
        let text = read_lossy(&self.audit);
        let complete = match text.rfind('\n') {
            Some(end) => &text[..=end],
            None => "",
        };
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"));
                assert!(v.is_object(), "audit line is not a JSON object: {l}");
                v
            })
            .collect()
    }

    /// Waits until `pred` holds for the audit events; returns them. Panics after `timeout`.
    pub fn wait_audit(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let mut events = Vec::new();
        let ok = wait_until(timeout, || {
            events = self.audit_events();
            pred(&events)
        });
        assert!(
            ok,
            "audit condition not met within {timeout:?}; events:\n{}\n--- ftpgate stderr ---\n{}",
            events
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            self.stderr_log()
        );
        events
    }

    /// Stops ftpgate now (SIGTERM, then SIGKILL) and returns its exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        self.proc.as_mut().map(ProcessGuard::stop)
    }

    /// Panics unless ftpgate is still running and still serves a normal session: anonymous
    /// login (the standard vsftpd setup), PWD, a directory listing over PASV, QUIT.
    pub fn assert_healthy(&mut self) {
        if let Some(p) = self.proc.as_mut() {
            assert!(
                p.is_running(),
                "ftpgate exited: {:?}\n{}",
                p.try_status().map(|s| (s.code(), s.signal())),
                read_lossy(&self.stderr)
            );
        }
        let mut c = Ftp::connect(self.addr);
        assert_eq!(c.login("anonymous", "x").0, 230);
        assert_eq!(c.cmd("PWD").0, 257);
        let (code, listing) = c.list("NLST /pub");
        assert_eq!(code, 226, "NLST after login");
        let _ = listing;
        assert_eq!(c.cmd("QUIT").0, 221);
        if let Some(p) = self.proc.as_mut() {
            assert!(p.is_running(), "ftpgate exited after a normal session");
        }
    }
}

impl Drop for Ftpgate {
    fn drop(&mut self) {
        if thread::panicking() && !self.is_direct() {
            eprintln!(
                "--- ftpgate {} stderr (last 200 lines) ---\n{}\n--- audit (last 40 lines) ---\n{}",
                self.addr,
                tail(&self.stderr_log(), 200),
                tail(&read_lossy(&self.audit), 40)
            );
        }
    }
}

/// Panics unless `line` is JSON in which no object repeats a key (serde_json's `Value` would
/// silently keep the last one; a SIEM may keep the first, or reject the line).
pub fn assert_unique_keys(line: &str) {
    if let Err(e) = serde_json::from_str::<UniqueKeys>(line) {
        panic!("{e}: {line}");
    }
}

/// Deserialises any JSON value, failing on an object with a repeated key.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

// ---------------------------------------------------------------------------------------------
// Raw control client
// ---------------------------------------------------------------------------------------------

/// One FTP reply: its code and its full text (all lines, joined with '\n', codes included).
pub type Reply = (u16, String);

/// A raw FTP control connection over std TCP with read timeouts: exact bytes out, parsed
/// (multi-line aware) replies in.
pub struct Ftp {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// The greeting read by [`Ftp::connect`].
    pub greeting: Reply,
}

const MAX_REPLY_LINE: u64 = 64 * 1024;

impl Ftp {
    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> Ftp {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        Ftp {
            stream,
            reader,
            greeting: (0, String::new()),
        }
    }

    /// Connects and reads the greeting, which must be 220.
    /// Like [`connect_raw`](Self::connect_raw), from the local address `source` (another
    /// loopback address, e.g. 127.0.0.2), without reading the greeting.
    pub fn connect_raw_from(addr: SocketAddr, source: IpAddr) -> Ftp {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .unwrap_or_else(|e| panic!("bind {source}: {e}"));
        socket
            .connect_timeout(&addr.into(), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr} from {source}: {e}"));
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        Ftp {
            stream,
            reader,
            greeting: (0, String::new()),
        }
    }

    pub fn connect(addr: SocketAddr) -> Ftp {
        let mut c = Ftp::connect_raw(addr);
        c.greeting = c.read_reply();
        assert_eq!(c.greeting.0, 220, "greeting: {}", c.greeting.1);
        c
    }

    /// A second handle on the control connection, for a writer thread.
    pub fn try_clone_stream(&self) -> TcpStream {
        self.stream.try_clone().expect("clone control stream")
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.stream.peer_addr().expect("peer addr")
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("timeout");
    }

    /// Writes exactly `bytes` in one write call.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .expect("send on control connection");
    }

    /// Writes exactly `bytes`, reporting errors (the peer may already have closed).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// One line without its CRLF; `Ok(None)` at EOF.
    pub fn try_read_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// The next reply; `Ok(None)` if the connection closed before one started.
    pub fn try_read_reply(&mut self) -> io::Result<Option<Reply>> {
        let Some(first) = self.try_read_line()? else {
            return Ok(None);
        };
        let code: u16 = first
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not a reply line: {first:?}")))?;
        let mut text = first.clone();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let line = self.try_read_line()?.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("EOF inside multi-line reply: {text}"),
                    )
                })?;
                text.push('\n');
                text.push_str(&line);
                if line.starts_with(&end) || line == code.to_string() {
                    break;
                }
            }
        }
        Ok(Some((code, text)))
    }

    /// The next reply. Panics on timeout, EOF or garbage.
    pub fn read_reply(&mut self) -> Reply {
        match self.try_read_reply() {
            Ok(Some(reply)) => reply,
            Ok(None) => panic!("control connection closed while waiting for a reply"),
            Err(e) => panic!("no reply: {e}"),
        }
    }

    /// Sends `line` + CRLF and reads the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    /// USER, then PASS if asked for one (vsftpd's anonymous answers 230 to USER directly).
    /// Returns the last reply.
    pub fn login(&mut self, user: &str, pass: &str) -> Reply {
        let reply = self.cmd(&format!("USER {user}"));
        if reply.0 == 331 {
            self.cmd(&format!("PASS {pass}"))
        } else {
            reply
        }
    }

    /// Login that must succeed (230).
    pub fn login_ok(&mut self, user: &str, pass: &str) {
        let (code, text) = self.login(user, pass);
        assert_eq!(code, 230, "login as {user}: {text}");
    }

    /// PASV, then a data connection to the address in the 227 reply.
    pub fn pasv_connect(&mut self) -> TcpStream {
        let (code, text) = self.cmd("PASV");
        assert_eq!(code, 227, "PASV: {text}");
        let addr = parse_227(&text).unwrap_or_else(|| panic!("cannot parse 227: {text}"));
        data_connect(addr)
    }

    /// EPSV, then a data connection to the control peer's address and the port in the 229.
    pub fn epsv_connect(&mut self) -> TcpStream {
        let (code, text) = self.cmd("EPSV");
        assert_eq!(code, 229, "EPSV: {text}");
        let port = parse_229(&text).unwrap_or_else(|| panic!("cannot parse 229: {text}"));
        data_connect(SocketAddr::new(self.peer_addr().ip(), port))
    }

    /// Listens on 127.0.0.1:0 and sends PORT for it (must get 200).
    pub fn port_listen(&mut self) -> TcpListener {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind data listener");
        let port = listener.local_addr().expect("addr").port();
        let (code, text) = self.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff));
        assert_eq!(code, 200, "PORT: {text}");
        listener
    }

    /// A download-type command (RETR, LIST, NLST, MLSD) over PASV: returns the final reply
    /// code and the bytes received. Panics unless the preliminary reply is 125/150.
    pub fn transfer_in(&mut self, line: &str) -> (u16, Vec<u8>) {
        let mut data = self.pasv_connect();
        let (code, text) = self.cmd(line);
        assert!(matches!(code, 125 | 150), "{line}: {text}");
        let mut buf = Vec::new();
        data.read_to_end(&mut buf).expect("read data connection");
        drop(data);
        let (code, _) = self.read_reply();
        (code, buf)
    }

    /// An upload-type command (STOR, APPE) over PASV: returns the final reply code.
    pub fn transfer_out(&mut self, line: &str, data: &[u8]) -> u16 {
        let mut conn = self.pasv_connect();
        let (code, text) = self.cmd(line);
        assert!(matches!(code, 125 | 150), "{line}: {text}");
        conn.write_all(data).expect("write data connection");
        drop(conn);
        self.read_reply().0
    }

    /// RETR over PASV; panics unless it ends with 226.
    pub fn retr(&mut self, path: &str) -> Vec<u8> {
        let (code, data) = self.transfer_in(&format!("RETR {path}"));
        assert_eq!(code, 226, "RETR {path}");
        data
    }

    /// STOR over PASV; panics unless it ends with 226.
    pub fn stor(&mut self, path: &str, data: &[u8]) {
        assert_eq!(
            self.transfer_out(&format!("STOR {path}"), data),
            226,
            "STOR {path}"
        );
    }

    /// A listing command (e.g. "LIST /pub", "NLST") over PASV: final code and the listing.
    pub fn list(&mut self, line: &str) -> (u16, String) {
        let (code, data) = self.transfer_in(line);
        (code, String::from_utf8_lossy(&data).into_owned())
    }

    /// Reads until the server closes the connection; returns what came. Panics after `timeout`.
    pub fn read_to_eof(&mut self, timeout: Duration) -> String {
        self.set_read_timeout(timeout);
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("connection not closed within {timeout:?}: {e}"),
        }
        String::from_utf8_lossy(&rest).into_owned()
    }
}

fn data_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("data connection to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// Accepts one connection on `listener` within `timeout`.
pub fn accept_within(listener: &TcpListener, timeout: Duration) -> TcpStream {
    listener.set_nonblocking(true).expect("nonblocking");
    let mut conn = None;
    let ok = wait_until(timeout, || match listener.accept() {
        Ok((s, _)) => {
            conn = Some(s);
            true
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    });
    assert!(ok, "no connection within {timeout:?}");
    let s = conn.expect("accepted");
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// The address in a 227 reply: "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)".
pub fn parse_227(text: &str) -> Option<SocketAddr> {
    let start = text.find('(')? + 1;
    let end = start + text[start..].find(')')?;
    let n: Vec<u8> = text[start..end]
        .split(',')
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    if n.len() != 6 {
        return None;
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Some(SocketAddr::from((
        ip,
        u16::from(n[4]) << 8 | u16::from(n[5]),
    )))
}

/// The port in a 229 reply: "229 Entering Extended Passive Mode (|||port|)".
pub fn parse_229(text: &str) -> Option<u16> {
    let start = text.find("(|||")? + 4;
    let end = start + text[start..].find('|')?;
    text[start..end].parse().ok()
}

// ---------------------------------------------------------------------------------------------
// External clients
// ---------------------------------------------------------------------------------------------

/// curl with `-sS --max-time 120` and `args` (add `-v` to see the protocol on stderr).
pub fn curl(args: &[&str]) -> Output {
    run(
        Command::new("curl")
            .args(["-sS", "--max-time", "120"])
            .args(args),
        CLIENT_TIMEOUT,
    )
}

/// The commands curl sent, from its `-v` output (lines "> VERB ...").
pub fn curl_sent(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(str::to_string)
        .collect()
}

/// True when one of `sent` has the verb `verb`.
pub fn sent_verb(sent: &[String], verb: &str) -> bool {
    sent.iter().any(|c| {
        c.split(' ')
            .next()
            .is_some_and(|v| v.eq_ignore_ascii_case(verb))
    })
}

/// /usr/bin/python3 (which has pyftpdlib; `python3` on PATH may not) running `script`.
pub fn python(script: &str, args: &[&str]) -> Output {
    run(
        Command::new(PYTHON).arg("-c").arg(script).args(args),
        CLIENT_TIMEOUT,
    )
}

/// A Python ftplib transfer. argv: host port user password mode(pasv|port) action(put|get)
/// remote local. With debuglevel 1, ftplib prints every command it sends as `*cmd* '...'`.
pub const FTPLIB_TRANSFER: &str = r#"
import ftplib, sys
host, port, user, password, mode, action, remote, local = sys.argv[1:9]
f = ftplib.FTP()
f.set_debuglevel(1)
f.connect(host, int(port), timeout=30)
f.login(user, password)
f.set_pasv(mode == "pasv")
if action == "put":
    with open(local, "rb") as fh:
        print(f.storbinary("STOR " + remote, fh))
else:
    with open(local, "wb") as fh:
        print(f.retrbinary("RETR " + remote, fh.write))
print(f.quit())
"#;

/// Runs [`FTPLIB_TRANSFER`].
#[allow(clippy::too_many_arguments)]
pub fn ftplib_transfer(
    addr: SocketAddr,
    user: &str,
    password: &str,
    passive: bool,
    upload: bool,
    remote: &str,
    local: &Path,
) -> Output {
    let port = addr.port().to_string();
    let host = addr.ip().to_string();
    let local = local.to_string_lossy();
    python(
        FTPLIB_TRANSFER,
        &[
            &host,
            &port,
            user,
            password,
            if passive { "pasv" } else { "port" },
            if upload { "put" } else { "get" },
            remote,
            &local,
        ],
    )
}

/// The commands ftplib sent, from its debuglevel-1 output (lines "*cmd* '...'").
pub fn ftplib_sent(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("*cmd* '"))
        .map(|c| c.strip_suffix('\'').unwrap_or(c).to_string())
        .collect()
}

/// `lftp -d -c` with bounded retries and timeouts, stopping at the first failed command,
/// then `commands`. With -d, lftp logs every command it sends on stderr as `---> VERB ...`.
pub fn lftp(commands: &str) -> Output {
    let script = format!(
        "set net:max-retries 1; set net:timeout 10; set net:reconnect-interval-base 1; \
         set cmd:fail-exit yes; set xfer:clobber yes; {commands}"
    );
    run(
        Command::new("lftp").arg("-d").arg("-c").arg(script),
        CLIENT_TIMEOUT,
    )
}

/// The commands lftp sent, from its -d output.
pub fn lftp_sent(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("---> "))
        .map(str::to_string)
        .collect()
}
