//! A private pure-ftpd (it has MLSD/MLST) on a free loopback port.
//!
//! pure-ftpd conflicts with vsftpd as a Debian package, so tests/run.sh does not install it:
//! it runs `apt-get download pure-ftpd` and unpacks the package with `dpkg -x` into
//! [`EXTRACTED`] (under the repository's `target/`), and installs the libraries it needs. A
//! system-wide pure-ftpd (`/usr/sbin/pure-ftpd`) is used when there is no unpacked one.
//!
//! One virtual user, `carol` / `carol-pw`, from a puredb made with `pure-pw mkdb` out of a
//! passwd line with a SHA-512 crypt hash (pure-pw's own default, argon2id, takes seconds per
//! login), chrooted into [`PureFtpd::root`] and running as the system user `ftp`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::{ProcessGuard, put_ftp_file, read_lossy, start_listening, temp_dir, user_ids};

/// Where tests/run.sh unpacks the pure-ftpd package (`usr/sbin/pure-ftpd`, `usr/bin/pure-pw`).
pub const EXTRACTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-servers/pure-ftpd");

/// SHA-512 crypt of `carol-pw` (`openssl passwd -6 -salt ftpgatetest carol-pw`).
const CAROL_HASH: &str = "$6$ftpgatetest$W3ugHrC.AjaVXC6vu4UIQDnb7v94lDtvJxd00pzKHp1zI5Yjt7MuyjO9N.luPLc4edkPwi9LkhiVdwOG3JiCQ1";

/// The pure-ftpd and pure-pw binaries: unpacked by tests/run.sh, else installed.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let unpacked = Path::new(EXTRACTED);
    [
        (
            unpacked.join("usr/sbin/pure-ftpd"),
            unpacked.join("usr/bin/pure-pw"),
        ),
        (
            PathBuf::from("/usr/sbin/pure-ftpd"),
            PathBuf::from("/usr/bin/pure-pw"),
        ),
    ]
    .into_iter()
    .find(|(server, pw)| server.is_file() && pw.is_file())
}

/// A running private pure-ftpd, stopped on drop.
pub struct PureFtpd {
    proc: ProcessGuard,
    addr: SocketAddr,
    dir: TempDir,
}

impl PureFtpd {
    pub const CAROL: (&'static str, &'static str) = ("carol", "carol-pw");

    pub fn start() -> PureFtpd {
        let Some((server, pure_pw)) = binaries() else {
            panic!(
                "pure-ftpd is not there: run tests/run.sh once (it unpacks the Debian package \
                 into {EXTRACTED})"
            );
        };
        let (uid, gid) = user_ids("ftp").expect("the system user `ftp` must exist");
        let dir = temp_dir();
        let root = dir.path().join("root");
        fs::create_dir(&root).expect("mkdir root");
        std::os::unix::fs::chown(&root, Some(uid), Some(gid)).expect("chown root");
        let passwd = dir.path().join("pure.passwd");
        let db = dir.path().join("pure.pdb");
        fs::write(
            &passwd,
            format!(
                "{}:{CAROL_HASH}:{uid}:{gid}::{}/./::::::::::::\n",
                Self::CAROL.0,
                root.display()
            ),
        )
        .expect("write pure.passwd");
        let made = Command::new(&pure_pw)
            .arg("mkdb")
            .arg(&db)
            .arg("-f")
            .arg(&passwd)
            .stdin(Stdio::null())
            .output()
            .expect("run pure-pw");
        assert!(
            made.status.success(),
            "pure-pw mkdb: {}",
            String::from_utf8_lossy(&made.stderr)
        );
        let stderr = dir.path().join("pure-ftpd.stderr");
        let (proc, addr, _) = start_listening(
            "pure-ftpd",
            |port, (pmin, pmax)| {
                ProcessGuard::spawn(
                    "pure-ftpd",
                    Command::new(&server)
                        .arg("-S")
                        .arg(format!("127.0.0.1,{port}"))
                        .arg("-l")
                        .arg(format!("puredb:{}", db.display()))
                        // Virtual users only, chrooted, no DNS, no syslog, uid 1 and up.
                        .args(["-E", "-A", "-H", "-f", "none", "-u", "1"])
                        .arg("-p")
                        .arg(format!("{pmin}:{pmax}"))
                        .arg("-g")
                        .arg(dir.path().join("pure-ftpd.pid"))
                        .stdin(Stdio::null())
                        .stdout(
                            fs::File::create(dir.path().join("pure-ftpd.stdout")).expect("stdout"),
                        )
                        .stderr(fs::File::create(&stderr).expect("stderr")),
                )
            },
            || read_lossy(&stderr),
        );
        PureFtpd { proc, addr, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// carol's root (the FTP path `/`), owned by the `ftp` user.
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
