//! A private vsftpd per test: anonymous login, its own port, root and log.

#![allow(unused_imports)]

use super::*;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// A private vsftpd on a free loopback port with anonymous login. Its anonymous root
/// ([`Vsftpd::root`]) is root-owned 0755 with a subfolder `pub/` owned by the ftp user, where
/// uploads, mkdir, rename and delete are allowed. vsftpd accepts both `anonymous` and `ftp` as
/// the anonymous user, without asking for a password (it answers 230 straight to USER).
pub struct Vsftpd {
    proc: ProcessGuard,
    /// The configuration it was started with, for [`Vsftpd::restart`].
    conf: PathBuf,
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
        let stderr = dir.path().join("vsftpd.stderr");
        let (proc, addr, pasv) = start_listening(
            "vsftpd",
            |port, pasv| {
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
                ProcessGuard::spawn(
                    "vsftpd",
                    Command::new(VSFTPD)
                        .arg(&conf)
                        .stdin(Stdio::null())
                        .stdout(fs::File::create(dir.path().join("vsftpd.stdout")).expect("stdout"))
                        .stderr(fs::File::create(&stderr).expect("stderr")),
                )
            },
            || {
                format!(
                    "{}{}",
                    read_lossy(&dir.path().join("vsftpd.stdout")),
                    read_lossy(&stderr)
                )
            },
        );
        Vsftpd {
            proc,
            conf,
            addr,
            pasv,
            log,
            dir,
        }
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
        put_ftp_file(&self.root(), rel, data)
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

    /// vsftpd's pid (its listener process).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Kills vsftpd (by its pid) and waits until its port refuses connections.
    pub fn kill(&mut self) {
        self.proc.stop();
        assert!(
            wait_until(START_TIMEOUT, || !is_listening(self.addr)),
            "vsftpd still listening on {} after its kill",
            self.addr
        );
    }

    /// Starts vsftpd again on the same port, with the same root and log.
    pub fn restart(&mut self) {
        let dir = self.dir.path();
        self.proc = ProcessGuard::spawn(
            "vsftpd",
            Command::new(VSFTPD)
                .arg(&self.conf)
                .stdin(Stdio::null())
                .stdout(fs::File::create(dir.join("vsftpd.stdout")).expect("stdout"))
                .stderr(fs::File::create(dir.join("vsftpd.stderr")).expect("stderr")),
        );
        assert!(
            wait_until(START_TIMEOUT, || is_listening(self.addr)
                || !self.proc.is_running())
                && self.proc.is_running(),
            "vsftpd did not restart on {}",
            self.addr
        );
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
