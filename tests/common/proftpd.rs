//! A private ProFTPD on a free loopback port, with mod_digest (it answers `HASH`, RFC draft
//! draft-bryan-ftpext-hash, and `XSHA256`).
//!
//! ProFTPD conflicts with vsftpd as a Debian package, so tests/run.sh does not install it: it
//! unpacks `proftpd-core` with `dpkg -x` into [`EXTRACTED`] (and installs the libraries it
//! needs); the server runs from there with `-n -c FILE`, its modules loaded from the unpacked
//! `usr/lib/proftpd`. A system-wide proftpd is used when there is no unpacked one.
//!
//! Anonymous login (`anonymous` or `ftp`, any password) into [`Proftpd::root`], whose `pub`
//! is writable; the session runs as the system user `ftp`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::{ProcessGuard, put_ftp_file, read_lossy, start_listening, temp_dir, user_ids};

/// Where tests/run.sh unpacks the proftpd-core package.
pub const EXTRACTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-servers/proftpd");

/// The proftpd binary and its module directory: unpacked by tests/run.sh, else installed.
fn binary() -> Option<(PathBuf, PathBuf)> {
    let unpacked = Path::new(EXTRACTED);
    [
        (
            unpacked.join("usr/sbin/proftpd"),
            unpacked.join("usr/lib/proftpd"),
        ),
        (
            PathBuf::from("/usr/sbin/proftpd"),
            PathBuf::from("/usr/lib/proftpd"),
        ),
    ]
    .into_iter()
    .find(|(server, modules)| server.is_file() && modules.join("mod_digest.so").is_file())
}

/// A running private proftpd, stopped on drop.
pub struct Proftpd {
    proc: ProcessGuard,
    addr: SocketAddr,
    dir: TempDir,
}

impl Proftpd {
    pub fn start() -> Proftpd {
        Proftpd::start_with("")
    }

    /// Like [`Proftpd::start`], with `anonymous` (configuration directives) added inside the
    /// `<Anonymous>` block, e.g. a `<Limit HASH>` that refuses one command.
    pub fn start_with(anonymous: &str) -> Proftpd {
        let Some((server, modules)) = binary() else {
            panic!(
                "proftpd is not there: run tests/run.sh once (it unpacks the Debian package \
                 into {EXTRACTED})"
            );
        };
        let (uid, gid) = user_ids("ftp").expect("the system user `ftp` must exist");
        let dir = temp_dir();
        let root = dir.path().join("root");
        let public = root.join("pub");
        fs::create_dir_all(&public).expect("mkdir root/pub");
        std::os::unix::fs::chown(&public, Some(uid), Some(gid)).expect("chown pub");
        let stderr = dir.path().join("proftpd.stderr");
        let conf = dir.path().join("proftpd.conf");
        let (proc, addr, _) = start_listening(
            "proftpd",
            |port, (pmin, pmax)| {
                let d = dir.path().display();
                let config = format!(
                    r#"ServerName "ftpgate test"
ServerType standalone
DefaultServer on
Port {port}
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
UseReverseDNS off
User nobody
Group nogroup
PidFile {d}/proftpd.pid
ScoreboardFile {d}/scoreboard
DelayTable {d}/delay
SystemLog {d}/system.log
TransferLog {d}/xfer.log
WtmpLog off
PassivePorts {pmin} {pmax}
ModulePath {modules}
LoadModule mod_digest.c
DigestEngine on
DigestAlgorithms all
<Anonymous {root}>
  User ftp
  Group {group}
  UserAlias anonymous ftp
  RequireValidShell off
  <Limit WRITE>
    AllowAll
  </Limit>
{anonymous}
</Anonymous>
"#,
                    modules = modules.display(),
                    root = root.display(),
                    group = group_name(gid),
                );
                fs::write(&conf, config).expect("write proftpd.conf");
                ProcessGuard::spawn(
                    "proftpd",
                    Command::new(&server)
                        .args(["-n", "-q", "-c"])
                        .arg(&conf)
                        .stdin(Stdio::null())
                        .stdout(
                            fs::File::create(dir.path().join("proftpd.stdout")).expect("stdout"),
                        )
                        .stderr(fs::File::create(&stderr).expect("stderr")),
                )
            },
            || read_lossy(&stderr),
        );
        Proftpd { proc, addr, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The anonymous root (the FTP path `/`); `pub` in it is writable.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Creates `rel` under the root with `data`, owned by the `ftp` user.
    pub fn put_file(&self, rel: &str, data: &[u8]) -> PathBuf {
        put_ftp_file(&self.root(), rel, data)
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }
}

/// The name of group `gid` (proftpd's `Group` takes a name).
fn group_name(gid: u32) -> String {
    fs::read_to_string("/etc/group")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                (f.len() > 2 && f[2] == gid.to_string()).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| "nogroup".to_owned())
}
