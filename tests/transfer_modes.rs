//! Transfers through ftpgate in every data-channel mode the client can choose (PASV, EPSV,
//! PORT, EPRT) with real clients (curl, Python ftplib, lftp) against vsftpd: the bytes that
//! arrive on the backend's disk and back at the client are exactly the bytes that were sent.

mod common;

use std::fs;
use std::path::PathBuf;

use common::*;
use tempfile::TempDir;

struct Setup {
    // Field order is drop order: ftpgate stops before its backend.
    gate: Ftpgate,
    vs: Vsftpd,
    local: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let vs = Vsftpd::start();
        let gate = Ftpgate::for_vsftpd(&vs);
        Setup {
            gate,
            vs,
            local: temp_dir(),
        }
    }

    fn local(&self, name: &str) -> PathBuf {
        self.local.path().join(name)
    }

    fn url(&self, remote: &str) -> String {
        ftp_url(self.gate.addr(), remote)
    }
}

/// Which data-channel command the client must (and must not) have used.
struct Mode {
    args: &'static [&'static str],
    uses: &'static str,
    not: &'static str,
}

const PASV: Mode = Mode {
    args: &["--ftp-pasv", "--disable-epsv"],
    uses: "PASV",
    not: "EPSV",
};
const EPSV: Mode = Mode {
    args: &["--ftp-pasv"],
    uses: "EPSV",
    not: "PASV",
};
const PORT: Mode = Mode {
    args: &["-P", "127.0.0.1", "--disable-eprt"],
    uses: "PORT",
    not: "EPRT",
};
const EPRT: Mode = Mode {
    args: &["-P", "127.0.0.1"],
    uses: "EPRT",
    not: "PORT",
};

fn check_mode(sent: &[String], mode: &Mode, what: &str, log: &str) {
    assert!(
        sent_verb(sent, mode.uses),
        "{what}: client never sent {}: {sent:?}\n{log}",
        mode.uses
    );
    assert!(
        !sent_verb(sent, mode.not),
        "{what}: client fell back to {} (so {} failed): {sent:?}\n{log}",
        mode.not,
        mode.uses
    );
}

/// Upload then download an 8 MiB random file with curl in `mode`.
fn curl_round_trip(mode: &Mode, seed: u64) {
    let s = Setup::new();
    let name = format!("curl-{}.bin", mode.uses.to_lowercase());
    let src = s.local("src.bin");
    let sha = write_random_file(&src, BIG, seed);

    let mut args: Vec<&str> = vec!["-v", "-u", "anonymous:x"];
    args.extend_from_slice(mode.args);
    let url = s.url(&format!("/pub/{name}"));
    let src_str = src.to_string_lossy().into_owned();
    let up = curl(&[args.as_slice(), &["-T", &src_str, &url]].concat());
    up.assert_success("curl upload");
    check_mode(&curl_sent(&up.stderr), mode, "upload", &up.stderr);
    let on_disk = s.vs.pub_dir().join(&name);
    assert_eq!(
        sha256_file(&on_disk),
        sha,
        "backend copy differs from the upload"
    );

    let dst = s.local("dst.bin");
    let dst_str = dst.to_string_lossy().into_owned();
    let down = curl(&[args.as_slice(), &["-o", &dst_str, &url]].concat());
    down.assert_success("curl download");
    check_mode(&curl_sent(&down.stderr), mode, "download", &down.stderr);
    assert_eq!(fs::metadata(&dst).unwrap().len(), BIG as u64);
    assert_eq!(sha256_file(&dst), sha, "download differs from the upload");
}

#[test]
fn curl_pasv_upload_and_download_8mib() {
    curl_round_trip(&PASV, 1);
}

#[test]
fn curl_epsv_upload_and_download_8mib() {
    curl_round_trip(&EPSV, 2);
}

#[test]
fn curl_port_upload_and_download_8mib() {
    curl_round_trip(&PORT, 3);
}

#[test]
fn curl_eprt_upload_and_download_8mib() {
    curl_round_trip(&EPRT, 4);
}

/// Upload then download an 8 MiB random file with Python ftplib (PASV or PORT).
fn ftplib_round_trip(passive: bool, seed: u64) {
    let s = Setup::new();
    let verb = if passive { "PASV" } else { "PORT" };
    let remote = format!("/pub/ftplib-{}.bin", verb.to_lowercase());
    let src = s.local("src.bin");
    let sha = write_random_file(&src, BIG, seed);

    let up = ftplib_transfer(
        s.gate.addr(),
        "anonymous",
        "x",
        passive,
        true,
        &remote,
        &src,
    );
    up.assert_success("ftplib upload");
    let sent = ftplib_sent(&up.stdout_str());
    assert!(
        sent_verb(&sent, verb),
        "ftplib did not use {verb}: {sent:?}"
    );
    assert!(up.stdout_str().contains("226"), "{}", up.stdout_str());
    assert_eq!(sha256_file(&s.vs.root().join(&remote[1..])), sha);

    let dst = s.local("dst.bin");
    let down = ftplib_transfer(
        s.gate.addr(),
        "anonymous",
        "x",
        passive,
        false,
        &remote,
        &dst,
    );
    down.assert_success("ftplib download");
    let sent = ftplib_sent(&down.stdout_str());
    assert!(
        sent_verb(&sent, verb),
        "ftplib did not use {verb}: {sent:?}"
    );
    assert_eq!(sha256_file(&dst), sha);
}

#[test]
fn ftplib_pasv_upload_and_download_8mib() {
    ftplib_round_trip(true, 5);
}

#[test]
fn ftplib_port_upload_and_download_8mib() {
    ftplib_round_trip(false, 6);
}

/// Upload then download an 8 MiB random file with lftp (passive: PASV; active: PORT).
fn lftp_round_trip(passive: bool, seed: u64) {
    let s = Setup::new();
    let verb = if passive { "PASV" } else { "PORT" };
    let name = format!("lftp-{}.bin", verb.to_lowercase());
    let src = s.local("src.bin");
    let dst = s.local("dst.bin");
    let sha = write_random_file(&src, BIG, seed);
    let out = lftp(&format!(
        "set ftp:passive-mode {}; set ftp:prefer-epsv no; \
         open -u anonymous,x ftp://{addr}; put {src} -o /pub/{name}; get /pub/{name} -o {dst}",
        if passive { "on" } else { "off" },
        addr = s.gate.addr(),
        src = src.display(),
        dst = dst.display(),
    ));
    out.assert_success("lftp put/get");
    let sent = lftp_sent(&out.stderr);
    assert!(sent_verb(&sent, verb), "lftp did not use {verb}: {sent:?}");
    assert_eq!(sha256_file(&s.vs.pub_dir().join(&name)), sha);
    assert_eq!(sha256_file(&dst), sha);
}

#[test]
fn lftp_pasv_upload_and_download_8mib() {
    lftp_round_trip(true, 7);
}

#[test]
fn lftp_port_upload_and_download_8mib() {
    lftp_round_trip(false, 8);
}

#[test]
fn zero_byte_file_round_trip() {
    let s = Setup::new();
    let src = s.local("empty");
    fs::write(&src, b"").unwrap();
    let url = s.url("/pub/empty.bin");
    let src_str = src.to_string_lossy().into_owned();
    curl(&["-u", "anonymous:x", "--ftp-pasv", "-T", &src_str, &url]).assert_success("upload");
    let on_disk = s.vs.pub_dir().join("empty.bin");
    assert_eq!(fs::metadata(&on_disk).expect("uploaded file").len(), 0);

    // curl to stdout: exactly nothing.
    let down = curl(&["-u", "anonymous:x", "--ftp-pasv", &url]);
    down.assert_success("download");
    assert!(down.stdout.is_empty(), "{} bytes", down.stdout.len());

    // ftplib, active mode, to a file: created and empty.
    let dst = s.local("empty.out");
    ftplib_transfer(
        s.gate.addr(),
        "anonymous",
        "x",
        false,
        false,
        "/pub/empty.bin",
        &dst,
    )
    .assert_success("ftplib download");
    assert_eq!(fs::metadata(&dst).unwrap().len(), 0);

    // Raw client: 150, no data, 226.
    let mut c = Ftp::connect(s.gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert!(c.retr("/pub/empty.bin").is_empty());
    assert_eq!(c.cmd("QUIT").0, 221);
}

#[test]
fn filename_with_spaces_round_trip() {
    let s = Setup::new();
    let src = s.local("src.bin");
    let sha = write_random_file(&src, 100_000, 9);
    let src_str = src.to_string_lossy().into_owned();

    // curl: the URL carries %20, the command carries spaces.
    let url = s.url("/pub/name with  spaces.bin");
    let up = curl(&[
        "-v",
        "-u",
        "anonymous:x",
        "--ftp-pasv",
        "-T",
        &src_str,
        &url,
    ]);
    up.assert_success("curl upload");
    assert!(
        curl_sent(&up.stderr)
            .iter()
            .any(|c| c == "STOR name with  spaces.bin"),
        "{}",
        up.stderr
    );
    assert_eq!(
        sha256_file(&s.vs.pub_dir().join("name with  spaces.bin")),
        sha
    );
    let down = curl(&["-u", "anonymous:x", "--ftp-pasv", &url]);
    down.assert_success("curl download");
    assert_eq!(sha256_bytes(&down.stdout), sha);

    // ftplib, a path with spaces in the directory and the name.
    let dir = s.vs.pub_dir().join("a dir");
    fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(
        &dir,
        user_ids("ftp").map(|u| u.0),
        user_ids("ftp").map(|u| u.1),
    )
    .unwrap();
    let remote = "/pub/a dir/ftplib name.bin";
    ftplib_transfer(s.gate.addr(), "anonymous", "x", true, true, remote, &src)
        .assert_success("ftplib upload");
    assert_eq!(sha256_file(&dir.join("ftplib name.bin")), sha);
    let dst = s.local("back.bin");
    ftplib_transfer(s.gate.addr(), "anonymous", "x", true, false, remote, &dst)
        .assert_success("ftplib download");
    assert_eq!(sha256_file(&dst), sha);
}
