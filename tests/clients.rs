//! The clients partners run, through ftpgate to vsftpd and to pure-ftpd, in plain FTP and
//! FTPS where the client has it, each operation checked by SHA-256 on the backend's disk:
//! rclone (MLSD listings and modification times, uploads over TLS 1.3), Apache Commons Net
//! (through a small Java driver: its strict FEAT parsing, MLSD, FTPS through the
//! `tls_session_reuse` bridge), wget (downloads, explicit FTPS), GNU inetutils `ftp`
//! (passive and active) and Node's basic-ftp (explicit and implicit FTPS; installed with npm
//! into target/test-clients/ by tests/run.sh). `FTPGATE_TEST_DIRECT=1` runs the plain cases against the backends
//! directly. The table in ftpgate(8), CLIENTS, says what each needs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use common::*;

/// One backend behind its own ftpgate (FTPS toward clients, the backend in plain FTP).
struct Target {
    name: &'static str,
    gate: Ftpgate,
    /// The folder uploads land in, on the backend's disk.
    disk: PathBuf,
    /// The same folder as the client names it.
    remote: &'static str,
    user: &'static str,
    pass: &'static str,
    _vsftpd: Option<Vsftpd>,
    _pure: Option<PureFtpd>,
}

impl Target {
    fn vsftpd(bridge: bool) -> Target {
        let vs = Vsftpd::start();
        let gate = gate("vsftpd", vs.addr(), "anonymous", bridge);
        Target {
            name: "vsftpd",
            gate,
            disk: vs.pub_dir(),
            remote: "/pub",
            user: "anonymous",
            pass: "x",
            _vsftpd: Some(vs),
            _pure: None,
        }
    }

    fn pure_ftpd(bridge: bool) -> Target {
        let pure = PureFtpd::start();
        let (user, pass) = PureFtpd::CAROL;
        let gate = gate("pure", pure.addr(), user, bridge);
        Target {
            name: "pure-ftpd",
            gate,
            disk: pure.root(),
            remote: "",
            user,
            pass,
            _vsftpd: None,
            _pure: Some(pure),
        }
    }

    /// Both backends.
    fn all(bridge: bool) -> [Target; 2] {
        [Target::vsftpd(bridge), Target::pure_ftpd(bridge)]
    }

    /// Plain FTP, and FTPS unless the clients talk to the (plain) backends directly.
    fn tls_modes(&self) -> &'static [bool] {
        if self.gate.is_direct() {
            &[false]
        } else {
            &[false, true]
        }
    }

    fn host(&self) -> String {
        self.gate.addr().ip().to_string()
    }

    fn port(&self) -> String {
        self.gate.addr().port().to_string()
    }

    /// `name` in the upload folder, as the client names it.
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.remote)
    }

    /// Writes `name` on the backend's disk, owned by its ftp user, and returns its path.
    fn put(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.disk.join(name);
        fs::write(&path, data).expect("write backend file");
        if let Some((uid, gid)) = user_ids("ftp") {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
        }
        path
    }

    /// The verbs ftpgate's audit trail recorded for this backend's sessions so far.
    fn audited_verbs(&self) -> Vec<String> {
        self.gate
            .audit_events()
            .iter()
            .filter(|e| e["event"] == "command" || e["event"] == "transfer")
            .filter_map(|e| e["verb"].as_str().map(str::to_string))
            .collect()
    }
}

fn gate(backend: &str, addr: std::net::SocketAddr, user: &str, bridge: bool) -> Ftpgate {
    let mut b = Ftpgate::builder()
        .backend(backend, addr)
        .standard_roles()
        .user(user, "full", backend)
        .ftps();
    if bridge {
        b = b.set(&["users", user, "tls_session_reuse"], json!("bridge"));
    }
    b.start()
}

/// A file's modification time in whole seconds since the epoch.
fn mtime(path: &Path) -> u64 {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime")
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Sets a file's modification time to `secs` since the epoch.
fn set_mtime(path: &Path, secs: u64) {
    let file = fs::File::options().write(true).open(path).expect("open");
    file.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .expect("set mtime");
}

// ---------------------------------------------------------------------------------------------
// rclone
// ---------------------------------------------------------------------------------------------

/// rclone with an on-the-fly `:ftp:` remote for `t` (configured by environment variables),
/// explicit FTPS when `tls`.
fn rclone(t: &Target, tls: bool, args: &[&str]) -> Output {
    let obscured = run(
        Command::new("rclone").args(["obscure", t.pass]),
        CLIENT_TIMEOUT,
    );
    obscured.assert_success("rclone obscure");
    let config = temp_dir();
    run(
        Command::new("rclone")
            .args(args)
            .args(["--retries", "1", "--low-level-retries", "1", "-v"])
            .env("RCLONE_CONFIG", config.path().join("none.conf"))
            .env("RCLONE_FTP_HOST", t.host())
            .env("RCLONE_FTP_PORT", t.port())
            .env("RCLONE_FTP_USER", t.user)
            .env("RCLONE_FTP_PASS", obscured.stdout_str().trim())
            .env(
                "RCLONE_FTP_EXPLICIT_TLS",
                if tls { "true" } else { "false" },
            )
            .env("RCLONE_FTP_NO_CHECK_CERTIFICATE", "true"),
        CLIENT_TIMEOUT,
    )
}

/// The entry `name` of an `rclone lsjson` listing.
fn lsjson_entry(out: &Output, name: &str) -> Value {
    let list: Value = serde_json::from_str(&out.stdout_str())
        .unwrap_or_else(|e| panic!("lsjson output is not JSON ({e}): {out:?}"));
    list.as_array()
        .and_then(|l| l.iter().find(|e| e["Name"] == name).cloned())
        .unwrap_or_else(|| panic!("{name} not listed: {out:?}"))
}

#[test]
fn rclone_uploads_downloads_and_lists_with_the_right_times() {
    let dir = temp_dir();
    for t in Target::all(false) {
        for &tls in t.tls_modes() {
            let what = format!("{} tls={tls}", t.name);
            let seed = 201 + u64::from(tls) + if t.name == "vsftpd" { 0 } else { 10 };
            // An upload of 5 MiB (the size the truncated TLS 1.3 uploads were seen at).
            let src = dir.path().join("up.bin");
            let sum = write_random_file(&src, 5 * 1024 * 1024, seed);
            let name = format!("rclone-{seed}.bin");
            let remote = format!(":ftp:{}", t.path(&name));
            let up = rclone(&t, tls, &["copyto", src.to_str().expect("path"), &remote]);
            up.assert_success(&format!("rclone upload {what}"));
            let stored = t.disk.join(&name);
            assert_eq!(
                sha256_file(&stored),
                sum,
                "{what}: {} of {} bytes stored\n{up:?}\n{}",
                fs::metadata(&stored).map_or(0, |m| m.len()),
                5 * 1024 * 1024,
                t.gate.audit_lines().join("\n")
            );
            // A new local name each time: rclone skips a copy whose target looks the same.
            let dst = dir.path().join(format!("down-{seed}.bin"));
            rclone(&t, tls, &["copyto", &remote, dst.to_str().expect("path")])
                .assert_success(&format!("rclone download {what}"));
            assert_eq!(sha256_file(&dst), sum, "{what}");

            // A file with a known time to the second, years old: LIST shows only its date
            // (rclone then reports 00:00:00); MLSD's modify fact and MDTM have the second.
            let listed = format!("dated-{seed}.txt");
            let path = t.put(&listed, b"dated");
            let when = 1_614_834_367; // 2021-03-04T05:06:07Z
            set_mtime(&path, when);
            let out = rclone(&t, tls, &["lsjson", &format!(":ftp:{}", t.remote)]);
            out.assert_success(&format!("rclone lsjson {what}"));
            let entry = lsjson_entry(&out, &listed);
            assert_eq!(entry["Size"], 5, "{what}: {entry}");
            let expected = rfc3339(when);
            let got = entry["ModTime"].as_str().unwrap_or_default();
            assert_eq!(got, expected, "{what}: rclone's time of the file");
            assert_eq!(mtime(&path), when);
        }
        if t.gate.is_direct() {
            continue;
        }
        let verbs = t.audited_verbs();
        if t.name == "pure-ftpd" {
            // pure-ftpd has MLSD: rclone saw it in FEAT (RFC 2389 form) and listed with it.
            assert!(verbs.iter().any(|v| v == "MLSD"), "{}: {verbs:?}", t.name);
            assert!(!verbs.iter().any(|v| v == "LIST"), "{}: {verbs:?}", t.name);
        } else {
            // vsftpd has no MLSD: LIST, as directly, and MDTM (advertised in FEAT) for
            // the seconds.
            assert!(verbs.iter().any(|v| v == "LIST"), "{}: {verbs:?}", t.name);
            assert!(verbs.iter().any(|v| v == "MDTM"), "{}: {verbs:?}", t.name);
        }
        let events = t.gate.audit_events();
        for e in events.iter().filter(|e| e["event"] == "transfer") {
            assert_eq!(e["result"], "ok", "{}: {e}", t.name);
        }
        // Protected data connections (rclone resumes the control session) carried no
        // exception: rclone needs no bridge.
        assert!(
            events
                .iter()
                .filter(|e| e["event"] == "tls" && e["channel"] == "data")
                .all(|e| e["resumed"] == true),
            "{}: {events:?}",
            t.name
        );
    }
}

/// `secs` since the epoch as RFC 3339 UTC (`2026-12-02T03:04:00Z`), without a date crate.
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Apache Commons Net
// ---------------------------------------------------------------------------------------------

const COMMONS_NET_JAR: &str = "/usr/share/java/commons-net.jar";

/// A small driver for Apache Commons Net's FTPClient / FTPSClient (explicit). argv: host
/// port user password plain|ftps pasv|active local remote dir. Prints what the client
/// learned from FEAT, then stores `local` as `remote`, retrieves it, lists `dir` (MLSD when
/// FEAT offers MLST, else LIST) and asks MDTM.
const NET_DRIVER: &str = r#"
import java.io.*;
import java.security.MessageDigest;
import org.apache.commons.net.ftp.*;
import org.apache.commons.net.util.TrustManagerUtils;

public class NetDriver {
    static void fail(String what, FTPClient c) {
        System.out.println("error " + what + " " + c.getReplyString().trim());
        System.exit(1);
    }
    public static void main(String[] a) throws Exception {
        boolean tls = a[4].equals("ftps");
        FTPClient c;
        if (tls) {
            FTPSClient s = new FTPSClient(false);
            s.setTrustManager(TrustManagerUtils.getAcceptAllTrustManager());
            c = s;
        } else {
            c = new FTPClient();
        }
        c.setConnectTimeout(30000);
        c.setDefaultTimeout(30000);
        c.connect(a[0], Integer.parseInt(a[1]));
        if (!c.login(a[2], a[3])) fail("login", c);
        if (tls) {
            ((FTPSClient) c).execPBSZ(0);
            ((FTPSClient) c).execPROT("P");
        }
        if (a[5].equals("pasv")) c.enterLocalPassiveMode(); else c.enterLocalActiveMode();
        if (!c.setFileType(FTP.BINARY_FILE_TYPE)) fail("type", c);
        boolean mlst = c.hasFeature("MLST");
        System.out.println("features MDTM=" + c.hasFeature("MDTM") + " SIZE=" + c.hasFeature("SIZE")
            + " MLST=" + mlst + " EPSV=" + c.hasFeature("EPSV"));
        try (InputStream in = new FileInputStream(a[6])) {
            if (!c.storeFile(a[7], in)) fail("stor", c);
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        if (!c.retrieveFile(a[7], out)) fail("retr", c);
        StringBuilder hex = new StringBuilder();
        for (byte b : MessageDigest.getInstance("SHA-256").digest(out.toByteArray())) {
            hex.append(String.format("%02x", b));
        }
        System.out.println("retrieved " + hex);
        FTPFile[] files = mlst ? c.mlistDir(a[8]) : c.listFiles(a[8]);
        String base = a[7].substring(a[7].lastIndexOf('/') + 1);
        for (FTPFile f : files) {
            if (f != null && f.getName().equals(base)) System.out.println("listed " + f.getName() + " " + f.getSize());
        }
        System.out.println("mdtm " + c.getModificationTime(a[7]));
        c.logout();
        c.disconnect();
    }
}
"#;

/// Compiles [`NET_DRIVER`] into `dir` (once per test).
fn compile_net_driver(dir: &Path) {
    let src = dir.join("NetDriver.java");
    fs::write(&src, NET_DRIVER).expect("write NetDriver.java");
    run(
        Command::new("javac")
            .args(["-cp", COMMONS_NET_JAR, "-d"])
            .arg(dir)
            .arg(&src),
        CLIENT_TIMEOUT,
    )
    .assert_success("javac NetDriver.java");
}

fn commons_net(classes: &Path, t: &Target, tls: bool, passive: bool, args: &[&str]) -> Output {
    let cp = format!("{}:{COMMONS_NET_JAR}", classes.display());
    run(
        Command::new("java")
            .args(["-cp", &cp, "NetDriver"])
            .args([&t.host(), &t.port(), t.user, t.pass])
            .arg(if tls { "ftps" } else { "plain" })
            .arg(if passive { "pasv" } else { "active" })
            .args(args),
        CLIENT_TIMEOUT,
    )
}

#[test]
fn commons_net_sees_the_features_and_transfers_plain_and_through_the_bridge() {
    let classes = temp_dir();
    compile_net_driver(classes.path());
    let dir = temp_dir();
    for t in Target::all(true) {
        for &tls in t.tls_modes() {
            for passive in [true, false] {
                let what = format!("{} tls={tls} passive={passive}", t.name);
                let seed = 301 + u64::from(tls) * 2 + u64::from(passive);
                let seed = seed + if t.name == "vsftpd" { 0 } else { 10 };
                let src = dir.path().join("up.bin");
                let sum = write_random_file(&src, BIG, seed);
                let name = format!("net-{seed}.bin");
                let remote = t.path(&name);
                let listing_dir = if t.remote.is_empty() { "/" } else { t.remote };
                let out = commons_net(
                    classes.path(),
                    &t,
                    tls,
                    passive,
                    &[src.to_str().expect("path"), &remote, listing_dir],
                );
                out.assert_success(&format!("commons-net {what}"));
                let stdout = out.stdout_str();
                assert_eq!(sha256_file(&t.disk.join(&name)), sum, "{what}");
                assert!(
                    stdout.contains(&format!("retrieved {sum}")),
                    "{what}: {stdout}"
                );
                // FEAT parsed the strict way: a feature line starts with a space.
                let mlst = t.name == "pure-ftpd";
                assert!(
                    stdout.contains(&format!(
                        "features MDTM=true SIZE=true MLST={mlst} EPSV=true"
                    )),
                    "{what}: {stdout}"
                );
                assert!(
                    stdout.contains(&format!("listed {name} {BIG}")),
                    "{what}: {stdout}"
                );
                let mdtm = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("mdtm "))
                    .unwrap_or_default();
                // "213 YYYYMMDDHHMMSS": the backend's own answer, relayed.
                let expected = rfc3339(mtime(&t.disk.join(&name)));
                let digits: String = expected.chars().filter(char::is_ascii_digit).collect();
                assert!(mdtm.contains(&digits), "{what}: {mdtm} vs {expected}");
            }
        }
        if t.gate.is_direct() {
            continue;
        }
        let events = t.gate.audit_events();
        if t.name == "pure-ftpd" {
            let verbs = t.audited_verbs();
            assert!(verbs.iter().any(|v| v == "MLSD"), "{verbs:?}");
        }
        // Commons Net does not resume the control session on its data connections: every
        // protected one went through the bridge, and was recorded as such.
        let fresh = events
            .iter()
            .filter(|e| e["event"] == "tls" && e["channel"] == "data" && e["resumed"] == false)
            .count();
        let bridged = events
            .iter()
            .filter(|e| e["event"] == "policy_exception" && e["kind"] == "tls_session_reuse_bridge")
            .count();
        assert!(fresh > 0, "{}: {events:?}", t.name);
        assert_eq!(fresh, bridged, "{}: {events:?}", t.name);
    }
}

// ---------------------------------------------------------------------------------------------
// wget and GNU inetutils ftp
// ---------------------------------------------------------------------------------------------

#[test]
fn wget_downloads_plain_and_over_explicit_ftps() {
    let dir = temp_dir();
    for t in Target::all(false) {
        for &tls in t.tls_modes() {
            let what = format!("{} tls={tls}", t.name);
            let seed = 401 + u64::from(tls) + if t.name == "vsftpd" { 0 } else { 10 };
            let name = format!("wget-{seed}.bin");
            let data = random_bytes(BIG, seed);
            t.put(&name, &data);
            let dst = dir.path().join(&name);
            let scheme = if tls { "ftps" } else { "ftp" };
            let url = format!(
                "{scheme}://{}:{}@{}:{}{}",
                t.user,
                t.pass,
                t.host(),
                t.port(),
                t.path(&name)
            );
            let out = run(
                Command::new("wget")
                    .args(["-q", "--tries=1", "--timeout=30", "--no-check-certificate"])
                    .arg("-O")
                    .arg(&dst)
                    .arg(&url),
                CLIENT_TIMEOUT,
            );
            out.assert_success(&format!("wget {what}"));
            assert_eq!(sha256_file(&dst), sha256_bytes(&data), "{what}");
        }
    }
}

/// GNU inetutils ftp, driven by a script on its standard input.
fn inetutils_ftp(t: &Target, passive: bool, script: &str, dir: &Path) -> Output {
    let commands = dir.join("ftp-commands");
    fs::write(&commands, script).expect("write script");
    let mode = if passive { "-p" } else { "-A" };
    run(
        Command::new("sh").arg("-c").arg(format!(
            "exec /usr/bin/inetutils-ftp -n -v {mode} {} {} < '{}'",
            t.host(),
            t.port(),
            commands.display()
        )),
        CLIENT_TIMEOUT,
    )
}

#[test]
fn inetutils_ftp_puts_and_gets_passive_and_active() {
    let dir = temp_dir();
    for t in Target::all(false) {
        for passive in [true, false] {
            let what = format!("{} passive={passive}", t.name);
            let seed = 501 + u64::from(passive) + if t.name == "vsftpd" { 0 } else { 10 };
            let src = dir.path().join("up.bin");
            let sum = write_random_file(&src, BIG, seed);
            let dst = dir.path().join("down.bin");
            let _ = fs::remove_file(&dst);
            let name = format!("inet-{seed}.bin");
            let script = format!(
                "user {} {}\nbinary\nput {} {}\nget {} {}\nquit\n",
                t.user,
                t.pass,
                src.display(),
                t.path(&name),
                t.path(&name),
                dst.display()
            );
            let out = inetutils_ftp(&t, passive, &script, dir.path());
            out.assert_success(&format!("inetutils ftp {what}"));
            let stdout = out.stdout_str();
            assert!(stdout.contains("226"), "{what}: {stdout}");
            assert_eq!(sha256_file(&t.disk.join(&name)), sum, "{what}: {stdout}");
            assert_eq!(sha256_file(&dst), sum, "{what}: {stdout}");
        }
        if !t.gate.is_direct() {
            let verbs = t.audited_verbs();
            // Active mode reached ftpgate as PORT or EPRT, passive as PASV or EPSV.
            assert!(
                verbs.iter().any(|v| v == "PORT" || v == "EPRT"),
                "{}: {verbs:?}",
                t.name
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Node basic-ftp
// ---------------------------------------------------------------------------------------------

/// Where tests/run.sh installs basic-ftp with npm.
const BASIC_FTP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/test-clients/node_modules/basic-ftp"
);

/// basic-ftp (passive only). argv: host port user password plain|explicit|implicit local
/// remote dir. Uploads, downloads back (printing the SHA-256), lists `dir` (MLSD when FEAT
/// offers MLST) and asks MDTM.
const BASIC_FTP_DRIVER: &str = r#"
const ftp = require(process.env.BASIC_FTP);
const crypto = require("crypto");
const { Writable } = require("stream");
(async () => {
    const [host, port, user, password, mode, local, remote, dir] = process.argv.slice(1);
    const secure = mode === "explicit" ? true : mode === "implicit" ? "implicit" : false;
    const c = new ftp.Client(30000);
    try {
        await c.access({ host, port: Number(port), user, password, secure,
                         secureOptions: { rejectUnauthorized: false } });
        await c.uploadFrom(local, remote);
        const chunks = [];
        await c.downloadTo(new Writable({ write(chunk, _, done) { chunks.push(chunk); done(); } }), remote);
        console.log("retrieved " + crypto.createHash("sha256").update(Buffer.concat(chunks)).digest("hex"));
        const base = remote.split("/").pop();
        for (const f of await c.list(dir)) {
            if (f.name === base) console.log("listed " + f.name + " " + f.size);
        }
        console.log("lastmod " + (await c.lastMod(remote)).toISOString());
    } catch (e) {
        console.log("error " + e.message);
        process.exitCode = 1;
    }
    c.close();
})();
"#;

#[test]
fn basic_ftp_transfers_plain_and_over_explicit_and_implicit_ftps() {
    assert!(
        Path::new(BASIC_FTP).join("package.json").is_file(),
        "basic-ftp is not installed: run tests/run.sh (it installs it into {BASIC_FTP})"
    );
    let dir = temp_dir();
    for t in Target::all(false) {
        let modes: &[&str] = if t.gate.is_direct() {
            &["plain"]
        } else {
            &["plain", "explicit", "implicit"]
        };
        for (i, &mode) in modes.iter().enumerate() {
            let what = format!("{} {mode}", t.name);
            let seed = 601 + i as u64 + if t.name == "vsftpd" { 0 } else { 10 };
            let src = dir.path().join("up.bin");
            let sum = write_random_file(&src, BIG, seed);
            let name = format!("node-{seed}.bin");
            let addr = if mode == "implicit" {
                t.gate.implicit_addr()
            } else {
                t.gate.addr()
            };
            let listing_dir = if t.remote.is_empty() { "/" } else { t.remote };
            let out = run(
                Command::new("node")
                    .arg("-e")
                    .arg(BASIC_FTP_DRIVER)
                    .arg("--")
                    .args([&addr.ip().to_string(), &addr.port().to_string()])
                    .args([t.user, t.pass, mode])
                    .arg(&src)
                    .args([&t.path(&name), listing_dir])
                    .env("BASIC_FTP", BASIC_FTP),
                CLIENT_TIMEOUT,
            );
            out.assert_success(&format!("basic-ftp {what}"));
            let stdout = out.stdout_str();
            assert_eq!(sha256_file(&t.disk.join(&name)), sum, "{what}: {stdout}");
            assert!(
                stdout.contains(&format!("retrieved {sum}")),
                "{what}: {stdout}"
            );
            assert!(
                stdout.contains(&format!("listed {name} {BIG}")),
                "{what}: {stdout}"
            );
            let expected = rfc3339(mtime(&t.disk.join(&name)));
            assert!(
                stdout.contains(&format!("lastmod {}.000Z", &expected[..19])),
                "{what}: {stdout} vs {expected}"
            );
        }
        if t.gate.is_direct() {
            continue;
        }
        let events = t.gate.audit_events();
        if t.name == "pure-ftpd" {
            let verbs = t.audited_verbs();
            assert!(verbs.iter().any(|v| v == "MLSD"), "{verbs:?}");
        }
        // basic-ftp resumes the control session on its data connections: no bridge.
        let data_tls: Vec<&Value> = events
            .iter()
            .filter(|e| e["event"] == "tls" && e["channel"] == "data")
            .collect();
        assert!(!data_tls.is_empty(), "{}: {events:?}", t.name);
        assert!(
            data_tls.iter().all(|e| e["resumed"] == true),
            "{}: {data_tls:?}",
            t.name
        );
    }
}
