//! ftpgate under test: a policy built in the v1 contract shape, the process, its log and
//! audit trail.

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
    /// Keys added to the main listener's entry (e.g. `proxy_protocol`, `proxy_from`).
    listener: serde_json::Map<String, Value>,
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
            listener: serde_json::Map::new(),
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
    /// Sets `key` in the main listener's entry, e.g. `.listener("proxy_protocol", json!(true))`.
    pub fn listener(mut self, key: &str, value: Value) -> Self {
        self.listener.insert(key.to_owned(), value);
        self
    }

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
            // Health checks off unless a test asks for them (`.set(...)`): no test sees a
            // check's connection in its backend's log in the middle of what it asserts.
            backends.insert(
                name.clone(),
                json!({ "servers": servers, "health_check": false }),
            );
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
        let mut listener = self.listener.clone();
        listener.insert("address".to_owned(), json!(listen.to_string()));
        let mut policy = json!({
            "workers": self.workers,
            "listeners": [ listener ],
            "passive": { "ports": format!("{}-{}", passive.0, passive.1), "advertise": "127.0.0.1" },
            "backends": backends,
            "roles": roles,
            "users": users,
            "defaults": { "timeouts": { "login": login, "idle": idle, "session": session } },
            "audit": { "file": audit.to_string_lossy() },
        });
        // `FTPGATE_TEST_DIGEST=none` (tests/run.sh's second pass of the transfer suites):
        // the digest off, so plaintext relays are spliced. A test's own setting wins.
        if std::env::var("FTPGATE_TEST_DIGEST").is_ok_and(|v| v == "none") {
            policy["audit"]["digest"] = json!("none");
        }
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
            keep_root(&mut policy);
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
                    .arg("--admin")
                    .arg(dir.path().join("admin"))
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
/// The tests start ftpgate as root and let it keep root (`"user": "root"`): their files
/// (policies, keys, audit trails) are root's. tests/privileges.rs gives root up instead.
pub fn keep_root(policy: &mut Value) {
    policy["user"] = json!("root");
}

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

    /// The directory of the workers' admin sockets (`--admin`).
    pub fn admin_dir(&self) -> PathBuf {
        self.dir.path().join("admin")
    }

    /// `ftpgate metrics --admin DIR`: the workers' numbers in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_ftpgate"))
            .arg("metrics")
            .arg("--admin")
            .arg(self.admin_dir())
            .output()
            .expect("run ftpgate metrics");
        assert!(
            out.status.success(),
            "{:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
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

/// Whether each `tls` audit event of `channel` ("control", "data") on `side` ("client",
/// "backend") resumed a session, in the order of the trail.
pub fn tls_resumed(events: &[serde_json::Value], channel: &str, side: &str) -> Vec<bool> {
    events
        .iter()
        .filter(|e| e["event"] == "tls" && e["channel"] == channel && e["side"] == side)
        .map(|e| e["resumed"] == true)
        .collect()
}
