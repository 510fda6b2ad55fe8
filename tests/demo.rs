//! `./demo/run.sh`, the README's run command, from the checkout: started with this build's
//! binary, the curl lines it prints run as printed (an allowed download, byte for byte; a
//! refused upload that never reaches vsftpd), then stopped with SIGINT (Ctrl-C), leaving no
//! process, no listener and no PAM file behind.

// The shared helpers; the gate builder is not needed here (the demo starts its own).
#[allow(unused_imports)]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// The printed curl line whose comment starts with `comment`, as arguments.
fn printed_curl(lines: &[String], comment: &str) -> Vec<String> {
    let line = lines
        .iter()
        .find_map(|l| {
            let (command, note) = l.trim().split_once('#')?;
            (command.starts_with("curl ") && note.trim().starts_with(comment)).then_some(command)
        })
        .unwrap_or_else(|| panic!("no curl line for {comment:?} in {lines:#?}"));
    line.split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn demo_serves_an_allowed_download_refuses_an_upload_and_stops_on_ctrl_c() {
    let dir = temp_dir();
    let work = dir.path().join("demo");
    let port = free_port();
    let mut demo = ProcessGuard::spawn(
        "demo/run.sh",
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/run.sh"))
            .env("FTPGATE_BIN", env!("CARGO_BIN_EXE_ftpgate"))
            .env("DEMO_PORT", port.to_string())
            .env("DEMO_DIR", &work)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("demo.stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("demo.stderr")).unwrap()),
    );
    // Everything up to the audit trail's heading, within the deadline.
    let stdout_path = dir.path().join("demo.stdout");
    let read = || std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let ready = wait_until(WAIT, || {
        read().contains("The audit trail, as it is written") || !demo.is_running()
    });
    assert!(
        ready && demo.is_running(),
        "the demo did not get ready:\n{}\n{}",
        read(),
        std::fs::read_to_string(dir.path().join("demo.stderr")).unwrap_or_default()
    );
    let printed: Vec<String> = read().lines().map(str::to_string).collect();
    let gate = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert!(is_listening(gate), "{printed:#?}");
    let tree = work.join("tree");

    // The allowed download, as printed: the bytes of the sample file.
    let mut args = printed_curl(&printed, "download: allowed");
    let downloaded = dir.path().join("daily.csv");
    args.extend(["-o".to_string(), downloaded.to_string_lossy().into_owned()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(&refs).assert_success("the demo's allowed download");
    assert_eq!(
        sha256_file(&downloaded),
        sha256_file(&tree.join("reports/daily.csv"))
    );

    // The refused upload, as printed: 550, and nothing reached vsftpd.
    let args = printed_curl(&printed, "upload: refused");
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = curl(&refs);
    assert!(!out.success(), "the read-only partner uploaded: {out:?}");
    assert!(out.stderr.contains("550"), "{out:?}");
    assert!(!tree.join("incoming/invoice.txt").exists());
    let vsftpd_log = || std::fs::read_to_string(work.join("vsftpd.log")).unwrap_or_default();
    // The demo's vsftpd logs the protocol: the download went through it, the upload not.
    assert!(
        wait_until(WAIT, || vsftpd_log().contains("\"RETR daily.csv\"")),
        "{}",
        vsftpd_log()
    );
    let vsftpd_log = vsftpd_log();
    assert!(!vsftpd_log.contains("STOR"), "{vsftpd_log}");
    let audit = std::fs::read_to_string(work.join("audit.jsonl")).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"verb\":\"STOR\"")
            && l.contains("\"decision\":\"deny\"")
            && l.contains("\"user\":\"partner-reader\"")),
        "{audit}"
    );

    // Ctrl-C: both servers stop, the PAM file goes.
    let vsftpd_port = printed
        .iter()
        .find_map(|l| l.split_once("in front of vsftpd on 127.0.0.1:"))
        .and_then(|(_, rest)| rest.trim_end_matches('.').parse::<u16>().ok())
        .expect("the vsftpd port in the output");
    demo.signal(libc::SIGINT);
    let status = demo.wait_exit(WAIT).expect("the demo stops on SIGINT");
    assert!(status.success(), "{status:?}");
    assert!(!is_listening(gate), "ftpgate still listens");
    assert!(
        !is_listening(SocketAddr::from((Ipv4Addr::LOCALHOST, vsftpd_port))),
        "vsftpd still listens"
    );
    let pam_left = std::fs::read_dir("/etc/pam.d")
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy() == format!("ftpgate-demo-{}", demo.pid()));
    assert!(!pam_left, "the demo's PAM service is left behind");
}
