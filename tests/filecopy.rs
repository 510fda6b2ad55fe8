//! The `filecopy` audit mode against a real vsftpd: byte-identical copies in both directions
//! with the SHA-256 of the transfer event, dated paths and names, mode 0640, hostile names
//! that stay inside the copy directory, a copy that cannot be written (on_failure "abort"
//! and "continue"), symbolic links planted in the dated layout (never followed), and retention.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// ftpgate in front of `vs` in filecopy mode, copies under `copies`, with `settings` merged
/// into `audit.filecopy`.
fn gate(vs: &Vsftpd, copies: &Path, settings: Value) -> Ftpgate {
    let mut filecopy = json!({ "directory": copies.to_string_lossy() });
    if let (Some(target), Some(extra)) = (filecopy.as_object_mut(), settings.as_object()) {
        for (key, value) in extra {
            target.insert(key.clone(), value.clone());
        }
    }
    Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .set(&["audit", "mode"], json!("filecopy"))
        .set(&["audit", "filecopy"], filecopy)
        .start()
}

/// Today's UTC day directory name, with yesterday's and tomorrow's for a run across
/// midnight.
fn utc_days() -> Vec<String> {
    ["yesterday", "now", "tomorrow"]
        .iter()
        .map(|when| {
            let out = run(
                Command::new("date").args(["-u", "-d", when, "+%Y/%m/%d"]),
                Duration::from_secs(10),
            );
            out.stdout_str().trim().to_owned()
        })
        .collect()
}

/// The transfer events; each has only fields (and a result) that etc/audit-schema.json
/// lists for transfers.
fn transfers(events: &[Value]) -> Vec<&Value> {
    let schema: Value =
        serde_json::from_str(include_str!("../etc/audit-schema.json")).expect("schema");
    let transfer = &schema["$defs"]["transfer"]["properties"];
    let found: Vec<&Value> = events.iter().filter(|e| e["event"] == "transfer").collect();
    for event in &found {
        for key in event.as_object().expect("object").keys() {
            assert!(
                transfer.get(key).is_some(),
                "{key} is not in the schema: {event}"
            );
        }
        let results = transfer["result"]["enum"].as_array().expect("enum");
        assert!(results.contains(&event["result"]), "{event}");
    }
    found
}

/// Every regular file under `dir`, recursively (symbolic links are not followed).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                stack.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// STOR with a raw argument (any bytes but CR/LF), over PASV: the final reply.
fn stor_raw(c: &mut Ftp, arg: &[u8], data: &[u8]) -> Reply {
    let mut conn = c.pasv_connect();
    let mut line = b"STOR ".to_vec();
    line.extend_from_slice(arg);
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    let (code, text) = c.read_reply();
    assert!(matches!(code, 125 | 150), "STOR {arg:?}: {code} {text}");
    conn.write_all(data).expect("write data connection");
    drop(conn);
    c.read_reply()
}

/// Checks the copy an event names: inside `copies`, under a day directory, named after the
/// session and the transfer's number, mode 0640, and holding exactly `data`.
fn check_copy(event: &Value, copies: &Path, n: u64, name: &str, data: &[u8]) -> PathBuf {
    let path = PathBuf::from(
        event["filecopy"]
            .as_str()
            .unwrap_or_else(|| panic!("no filecopy in {event}")),
    );
    let session = event["session"].as_str().expect("session");
    let rel = path
        .strip_prefix(copies)
        .unwrap_or_else(|_| panic!("{} is outside {}", path.display(), copies.display()));
    let day = rel
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        utc_days().contains(&day),
        "{day} is not today's UTC date (YYYY/MM/DD)"
    );
    assert_eq!(
        rel.file_name().and_then(|f| f.to_str()),
        Some(format!("{session}-{n}-{name}").as_str())
    );
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(bytes == data, "{} differs from the data", path.display());
    assert_eq!(event["sha256"], sha256_bytes(&bytes), "{event}");
    let mode = fs::symlink_metadata(&path)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640, "{}", path.display());
    assert!(fs::symlink_metadata(&path).expect("stat").is_file());
    path
}

#[test]
fn copies_are_byte_identical_in_both_directions() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let down = random_bytes(3 * 1024 * 1024 + 17, 201);
    let up = random_bytes(1024 * 1024 + 5, 202);
    vs.put_file("pub/down.bin", &down);
    let gate = gate(&vs, &copies, json!({}));
    assert!(copies.is_dir(), "the copy directory is created at start");
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/down.bin"), down);
    c.stor("/pub/up.bin", &up);
    c.stor("/pub/empty.bin", b"");
    // A listing is not a file: no copy.
    assert_eq!(c.list("NLST /pub").0, 226);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| transfers(ev).len() >= 4);
    let t = transfers(&events);
    let mut stored = vec![
        check_copy(t[0], &copies, 1, "down.bin", &down),
        check_copy(t[1], &copies, 2, "up.bin", &up),
        check_copy(t[2], &copies, 3, "empty.bin", b""),
    ];
    assert_eq!(t[0]["sha256"], sha256_bytes(&down));
    assert_eq!(t[1]["sha256"], sha256_bytes(&up));
    assert_eq!(t[0]["direction"], "download");
    assert_eq!(t[1]["direction"], "upload");
    assert!(t.iter().take(3).all(|e| e["result"] == "ok"));
    assert_eq!(t[3]["verb"], "NLST");
    assert!(t[3].get("filecopy").is_none(), "{}", t[3]);
    stored.sort();
    assert_eq!(
        files_under(&copies),
        stored,
        "exactly one copy per file transfer"
    );
    // Directories are 0750 (the umask may take more away, never add).
    let day_dir = stored[0].parent().expect("day");
    let mode = fs::metadata(day_dir).expect("stat").permissions().mode();
    assert_eq!(mode & 0o7777 & !0o750, 0, "{mode:o}");
}

#[test]
fn hostile_names_stay_inside_the_copy_directory() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let secret = random_bytes(4096, 211);
    vs.put_file("pub/passwd", &secret);
    let gate = gate(&vs, &copies, json!({}));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    // vsftpd's anonymous root is a chroot: the ..s stop at its top.
    assert_eq!(c.retr("../../../../pub/passwd"), secret);
    let cases: Vec<(&[u8], &str)> = vec![
        (b"/pub/../pub/..\\..\\..\\evil", "_.._.._evil"),
        (
            "/pub/evil name \"quoted\"\u{2028}\u{85}.txt".as_bytes(),
            "evil_name__quoted______.txt",
        ),
        (b"/pub/caf\xe9\x85\xfe.bin", "caf___.bin"),
        (b"/pub/...", "unnamed"),
        (b"/pub/.hidden", "hidden"),
    ];
    let mut datas = Vec::new();
    for (i, (arg, _)) in cases.iter().enumerate() {
        let data = random_bytes(1000 + i, 220 + i as u64);
        let (code, text) = stor_raw(&mut c, arg, &data);
        assert_eq!(code, 226, "STOR {arg:?}: {text}");
        datas.push(data);
    }
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| transfers(ev).len() > cases.len());
    let t = transfers(&events);
    let mut stored = vec![check_copy(t[0], &copies, 1, "passwd", &secret)];
    for (i, (_, name)) in cases.iter().enumerate() {
        stored.push(check_copy(t[i + 1], &copies, i as u64 + 2, name, &datas[i]));
    }
    stored.sort();
    assert_eq!(files_under(&copies), stored);
    // Nothing anywhere else in the temp root.
    let mut all = files_under(root.path());
    all.retain(|p| !p.starts_with(&copies));
    assert!(all.is_empty(), "files outside the copy directory: {all:?}");
    let canonical = fs::canonicalize(&copies).expect("canonical");
    for path in &stored {
        assert!(
            fs::canonicalize(path)
                .expect("canonical")
                .starts_with(&canonical)
        );
        let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8");
        assert!(!name.starts_with('.'));
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
            "{name}"
        );
    }
}

/// Puts a regular file where today's (and yesterday's and tomorrow's) day directory would
/// go: creating the copy fails even for root.
fn block_day_directories(copies: &Path) {
    for day in utc_days() {
        let path = copies.join(day);
        fs::create_dir_all(path.parent().expect("month")).expect("mkdir");
        fs::write(&path, b"not a directory").expect("write");
    }
}

#[test]
fn a_failed_copy_fails_the_transfer_by_default() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let down = random_bytes(BIG, 231);
    vs.put_file("pub/down.bin", &down);
    block_day_directories(&copies);
    let gate = gate(&vs, &copies, json!({}));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    // The relay may be cut as soon as the copy fails: the data connections may end early.
    let mut data = c.pasv_connect();
    let (code, text) = c.cmd("RETR /pub/down.bin");
    assert!(matches!(code, 125 | 150), "{text}");
    let _ = data.read_to_end(&mut Vec::new());
    drop(data);
    assert_eq!(c.read_reply().0, 451, "RETR with a copy that failed");
    let up = random_bytes(200 * 1024, 232);
    let mut data = c.pasv_connect();
    let (code, text) = c.cmd("STOR /pub/up.bin");
    assert!(matches!(code, 125 | 150), "{text}");
    let _ = data.write_all(&up);
    drop(data);
    let (code, text) = c.read_reply();
    assert_eq!(code, 451, "STOR with a copy that failed: {text}");
    assert!(
        text.ends_with("Local error: the audit copy failed."),
        "{text}"
    );
    // The session goes on.
    assert_eq!(c.cmd("NOOP").0, 200);
    assert_eq!(c.list("NLST /pub").0, 226);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| transfers(ev).len() >= 3);
    let t = transfers(&events);
    for event in &t[..2] {
        assert_eq!(event["result"], "copy_failed", "{event}");
        let error = event["filecopy_error"].as_str().unwrap_or_default();
        assert!(error.contains("cannot create"), "{event}");
        assert!(event.get("filecopy").is_none(), "{event}");
    }
    let commands: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "command" && (e["verb"] == "RETR" || e["verb"] == "STOR"))
        .collect();
    assert!(commands.iter().all(|e| e["reply"] == 451), "{commands:?}");
    assert_eq!(t[2]["result"], "ok");
    // Nothing was written under the copy directory but the blocking files.
    let days = utc_days();
    let blockers: Vec<PathBuf> = days.iter().map(|d| copies.join(d)).collect();
    assert!(files_under(&copies).iter().all(|p| blockers.contains(p)));
}

#[test]
fn a_failed_copy_is_recorded_and_the_transfer_goes_on_with_continue() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let down = random_bytes(300 * 1024 + 3, 241);
    vs.put_file("pub/down.bin", &down);
    block_day_directories(&copies);
    let gate = gate(&vs, &copies, json!({ "on_failure": "continue" }));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    assert_eq!(c.retr("/pub/down.bin"), down);
    let up = random_bytes(200 * 1024, 242);
    c.stor("/pub/up.bin", &up);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| transfers(ev).len() >= 2);
    for event in transfers(&events) {
        assert_eq!(event["result"], "ok", "{event}");
        assert!(event["filecopy_error"].is_string(), "{event}");
        assert!(event.get("filecopy").is_none(), "{event}");
    }
    assert_eq!(sha256_file(&vs.pub_dir().join("up.bin")), sha256_bytes(&up));
}

#[test]
fn retention_deletes_old_copies() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let day = Duration::from_secs(86_400);
    let old_dir = copies.join("2001/02/03");
    fs::create_dir_all(&old_dir).expect("mkdir");
    let old = old_dir.join("6b01a20b-261d-1-1-old.bin");
    let kept = old_dir.join("6b01a20b-261d-1-2-recent.bin");
    for (path, age) in [(&old, 3 * day), (&kept, Duration::ZERO)] {
        let file = fs::File::create(path).expect("create");
        file.set_modified(SystemTime::now() - age)
            .expect("set_modified");
    }
    // Not in the dated layout: never touched.
    let foreign = copies.join("README");
    fs::write(&foreign, b"x").expect("write");
    fs::File::options()
        .write(true)
        .open(&foreign)
        .and_then(|f| f.set_modified(SystemTime::now() - 30 * day))
        .expect("set_modified");
    let mut gate = gate(&vs, &copies, json!({ "retention_days": 1 }));
    assert!(
        wait_until(WAIT, || !old.exists()),
        "the old copy was not deleted\n{}",
        gate.stderr_log()
    );
    assert!(kept.exists(), "a copy younger than retention_days stays");
    assert!(foreign.exists());
    fs::remove_file(&kept).expect("rm");
    // A transfer still works and lands in today's directory.
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    let data = random_bytes(10_000, 251);
    c.stor("/pub/after.bin", &data);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| !transfers(ev).is_empty());
    check_copy(transfers(&events)[0], &copies, 1, "after.bin", &data);
    gate.assert_healthy();
}

#[test]
fn a_filecopy_transfer_does_not_stall_other_sessions() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let big = random_bytes(64 * 1024 * 1024, 261);
    vs.put_file("pub/big.bin", &big);
    let gate = gate(&vs, &copies, json!({}));
    let addr = gate.addr();
    let downloader = std::thread::spawn(move || {
        let mut c = Ftp::connect(addr);
        c.login_ok("anonymous", "x");
        assert_eq!(c.cmd("TYPE I").0, 200);
        let mut data = c.pasv_connect();
        let (code, text) = c.cmd("RETR /pub/big.bin");
        assert!(matches!(code, 125 | 150), "{text}");
        let mut got = Vec::new();
        data.read_to_end(&mut got).expect("read");
        drop(data);
        assert_eq!(c.read_reply().0, 226);
        got
    });
    let mut other = Ftp::connect(gate.addr());
    other.login_ok("anonymous", "x");
    let mut slowest = Duration::ZERO;
    while !downloader.is_finished() {
        let t0 = std::time::Instant::now();
        assert_eq!(other.cmd("NOOP").0, 200);
        slowest = slowest.max(t0.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = downloader.join().expect("downloader");
    assert!(got == big, "download differs");
    assert!(
        slowest < Duration::from_secs(2),
        "a NOOP took {slowest:?} during a filecopy transfer"
    );
    let events = gate.wait_audit(WAIT, |ev| !transfers(ev).is_empty());
    check_copy(transfers(&events)[0], &copies, 1, "big.bin", &big);
}

#[test]
fn an_aborted_transfer_keeps_the_part_that_crossed() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let big = random_bytes(64 * 1024 * 1024, 271);
    vs.put_file("pub/huge.bin", &big);
    let gate = gate(&vs, &copies, json!({}));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let mut data = c.pasv_connect();
    let (code, text) = c.cmd("RETR /pub/huge.bin");
    assert_eq!(code, 150, "{text}");
    let mut first = [0u8; 4096];
    data.read_exact(&mut first).expect("some data flows");
    c.send(b"ABOR\r\n");
    let (code, text) = c.read_reply();
    assert!(code == 426 || code == 226, "{code} {text}");
    let (code, text) = c.read_reply();
    assert!(code == 226 || code == 225, "{code} {text}");
    let mut rest = Vec::new();
    let _ = data.read_to_end(&mut rest);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| !transfers(ev).is_empty());
    let event = transfers(&events)[0];
    assert_eq!(event["result"], "aborted", "{event}");
    let bytes = event["bytes"].as_u64().expect("bytes") as usize;
    assert!(bytes < big.len(), "the transfer was cut short");
    let path = PathBuf::from(event["filecopy"].as_str().expect("filecopy"));
    // Nobody waits for the copy of an aborted transfer: it lands shortly after.
    assert!(
        wait_until(WAIT, || fs::metadata(&path)
            .is_ok_and(|m| m.len() == bytes as u64)),
        "{} does not hold the {bytes} bytes that crossed",
        path.display()
    );
    assert_eq!(fs::read(&path).expect("read"), &big[..bytes]);
    assert_eq!(event["sha256"], sha256_bytes(&big[..bytes]));
}

#[test]
fn every_worker_copies_its_transfers() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let filecopy = json!({ "directory": copies.to_string_lossy() });
    let gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .workers(2)
        .set(&["audit", "mode"], json!("filecopy"))
        .set(&["audit", "filecopy"], filecopy)
        .start();
    let mut datas = Vec::new();
    for i in 0..6u64 {
        let data = random_bytes(50_000 + i as usize, 280 + i);
        let mut c = Ftp::connect(gate.addr());
        c.login_ok("anonymous", "x");
        assert_eq!(c.cmd("TYPE I").0, 200);
        c.stor(&format!("/pub/w{i}.bin"), &data);
        assert_eq!(c.cmd("QUIT").0, 221);
        datas.push(data);
    }
    let events = gate.wait_audit(WAIT, |ev| transfers(ev).len() >= datas.len());
    let mut stored = Vec::new();
    for event in transfers(&events) {
        let i: usize = event["arg"]
            .as_str()
            .and_then(|a| a.strip_prefix("/pub/w"))
            .and_then(|a| a.strip_suffix(".bin"))
            .and_then(|n| n.parse().ok())
            .expect("index");
        stored.push(check_copy(
            event,
            &copies,
            1,
            &format!("w{i}.bin"),
            &datas[i],
        ));
    }
    stored.sort();
    assert_eq!(files_under(&copies), stored);
}

/// STOR over PASV where the relay may be cut early (a copy that fails aborts it): the final
/// reply.
fn stor_cut(c: &mut Ftp, path: &str, data: &[u8]) -> Reply {
    let mut conn = c.pasv_connect();
    let (code, text) = c.cmd(&format!("STOR {path}"));
    assert!(matches!(code, 125 | 150), "STOR {path}: {code} {text}");
    let _ = conn.write_all(data);
    drop(conn);
    c.read_reply()
}

/// Whether `dir` holds nothing at all (no file, no directory, no link).
fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).expect("read_dir").next().is_none()
}

/// The `filecopy_error` of a transfer event names a symbolic link found at one of `places`
/// (relative to the copy directory).
fn names_a_link(event: &Value, places: &[String]) -> bool {
    let error = event["filecopy_error"].as_str().unwrap_or_default();
    places.iter().any(|place| {
        error.contains(&format!(
            "a symbolic link was found at {place} in the copy directory; copies are never \
             written through one"
        ))
    })
}

#[test]
fn a_symlinked_day_directory_fails_the_copy_and_nothing_is_written_through_it() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let outside = root.path().join("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    let days = utc_days();
    for day in &days {
        let path = copies.join(day);
        fs::create_dir_all(path.parent().expect("month")).expect("mkdir");
        std::os::unix::fs::symlink(&outside, &path).expect("symlink");
    }
    let gate = gate(&vs, &copies, json!({}));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let up = random_bytes(100 * 1024, 291);
    let (code, text) = stor_cut(&mut c, "/pub/linked.bin", &up);
    assert_eq!(code, 451, "{text}");
    assert!(
        text.ends_with("Local error: the audit copy failed."),
        "{text}"
    );
    let events = gate.wait_audit(WAIT, |ev| !transfers(ev).is_empty());
    let event = transfers(&events)[0];
    assert_eq!(event["result"], "copy_failed", "{event}");
    assert!(names_a_link(event, &days), "{event}");
    assert!(event.get("filecopy").is_none(), "{event}");
    assert!(is_empty_dir(&outside), "a copy went through the link");

    // With the links gone, the next copy lands in a real day directory.
    for day in &days {
        fs::remove_file(copies.join(day)).expect("rm link");
    }
    let data = random_bytes(10_000, 292);
    c.stor("/pub/after.bin", &data);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| transfers(ev).len() >= 2);
    let path = check_copy(transfers(&events)[1], &copies, 2, "after.bin", &data);
    assert!(
        !fs::symlink_metadata(path.parent().expect("day"))
            .expect("stat")
            .is_symlink()
    );
    assert!(is_empty_dir(&outside));
}

#[test]
fn a_symlinked_year_directory_is_recorded_and_the_transfer_goes_on_with_continue() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let outside = root.path().join("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    fs::create_dir_all(&copies).expect("mkdir");
    let mut years: Vec<String> = utc_days().iter().map(|d| d[..4].to_owned()).collect();
    years.dedup();
    for year in &years {
        std::os::unix::fs::symlink(&outside, copies.join(year)).expect("symlink");
    }
    let gate = gate(&vs, &copies, json!({ "on_failure": "continue" }));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    let up = random_bytes(50 * 1024, 293);
    c.stor("/pub/year.bin", &up);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| !transfers(ev).is_empty());
    let event = transfers(&events)[0];
    assert_eq!(event["result"], "ok", "{event}");
    assert!(names_a_link(event, &years), "{event}");
    assert!(event.get("filecopy").is_none(), "{event}");
    assert!(
        is_empty_dir(&outside),
        "a month directory was made through the link"
    );
    assert_eq!(
        sha256_file(&vs.pub_dir().join("year.bin")),
        sha256_bytes(&up)
    );
}

#[test]
fn a_symlink_planted_as_the_copy_name_fails_the_copy_and_its_target_is_not_created() {
    let vs = Vsftpd::start();
    let root = temp_dir();
    let copies = root.path().join("copies");
    let outside = root.path().join("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    let days = utc_days();
    for day in &days {
        fs::create_dir_all(copies.join(day)).expect("mkdir");
    }
    let gate = gate(&vs, &copies, json!({}));
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("TYPE I").0, 200);
    // The copy's name is predictable from the session id (in the audit trail) and the
    // transfer's number: plant a dangling link under it in every candidate day directory.
    let events = gate.wait_audit(WAIT, |ev| ev.iter().any(|e| e["event"] == "session_start"));
    let session = events
        .iter()
        .find(|e| e["event"] == "session_start")
        .and_then(|e| e["session"].as_str())
        .expect("session id")
        .to_owned();
    let name = format!("{session}-1-planted.bin");
    let victim = outside.join("victim");
    let places: Vec<String> = days.iter().map(|d| format!("{d}/{name}")).collect();
    for place in &places {
        std::os::unix::fs::symlink(&victim, copies.join(place)).expect("symlink");
    }
    let up = random_bytes(64 * 1024, 294);
    let (code, text) = stor_cut(&mut c, "/pub/planted.bin", &up);
    assert_eq!(code, 451, "{text}");
    let events = gate.wait_audit(WAIT, |ev| !transfers(ev).is_empty());
    let event = transfers(&events)[0];
    assert_eq!(event["result"], "copy_failed", "{event}");
    assert!(names_a_link(event, &places), "{event}");
    assert!(is_empty_dir(&outside), "the link's target was created");
    // The next transfer has another number, hence another name: its copy works.
    let data = random_bytes(20_000, 295);
    c.stor("/pub/next.bin", &data);
    assert_eq!(c.cmd("QUIT").0, 221);
    let events = gate.wait_audit(WAIT, |ev| transfers(ev).len() >= 2);
    check_copy(transfers(&events)[1], &copies, 2, "next.bin", &data);
    assert!(is_empty_dir(&outside));
}
