//! A private pyftpdlib per test: virtual users alice and bob.

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
