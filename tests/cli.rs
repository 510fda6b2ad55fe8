//! The command line: --version, --help, usage errors, and `--check` of valid and invalid
//! policies (errors as LINE:COLUMN: message, one per error, on stderr; exit 1).

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const FTPGATE: &str = env!("CARGO_BIN_EXE_ftpgate");

fn ftpgate(args: &[&str]) -> Output {
    run(Command::new(FTPGATE).args(args), Duration::from_secs(30))
}

fn check(path: &Path) -> Output {
    ftpgate(&["--check", "--config", &path.to_string_lossy()])
}

/// The (line, column, message) of every stderr line of the form `LINE:COLUMN: message`,
/// optionally prefixed with the file name and a colon.
fn positions(stderr: &str, file: &Path) -> Vec<(u32, u32, String)> {
    let file_prefix = format!("{}:", file.display());
    stderr
        .lines()
        .filter_map(|line| {
            let line = line.strip_prefix(&file_prefix).unwrap_or(line);
            let (l, rest) = line.split_once(':')?;
            let (c, msg) = rest.split_once(':')?;
            Some((
                l.trim().parse().ok()?,
                c.trim().parse().ok()?,
                msg.trim().to_string(),
            ))
        })
        .collect()
}

#[test]
fn version_prints_name_version_features_and_tls_provider() {
    for flag in ["--version", "-V"] {
        let out = ftpgate(&[flag]);
        out.assert_success(flag);
        let text = out.stdout_str();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some(format!("ftpgate {}", env!("CARGO_PKG_VERSION")).as_str()),
            "{text}"
        );
        let features = lines
            .iter()
            .find_map(|l| l.strip_prefix("features: "))
            .unwrap_or_else(|| panic!("no features line: {text}"));
        for feature in ["filecopy", "sd-notify", "ftps-client-side"] {
            assert!(features.split(' ').any(|f| f == feature), "{text}");
        }
        let tls = lines
            .iter()
            .find_map(|l| l.strip_prefix("tls: "))
            .unwrap_or_else(|| panic!("no tls line: {text}"));
        assert!(tls.contains("rustls") && tls.contains("ring"), "{text}");
        assert!(tls.contains("TLS 1.3") && tls.contains("TLS 1.2"), "{text}");
    }
}

#[test]
fn config_is_accepted_in_all_three_spellings() {
    let dir = temp_dir();
    let policy = Ftpgate::builder()
        .backend("vsftpd", "127.0.0.1:2100".parse().unwrap())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        .policy(
            "127.0.0.1:2121".parse().unwrap(),
            (40000, 40099),
            &dir.path().join("audit.jsonl"),
        );
    let path = dir.path().join("spellings.json");
    fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    let file = path.to_string_lossy().into_owned();
    let joined = format!("--config={file}");
    for args in [
        vec!["--check", "--config", file.as_str()],
        vec!["--check", "-c", file.as_str()],
        vec!["--check", joined.as_str()],
        vec![joined.as_str(), "--check"],
    ] {
        let out = ftpgate(&args);
        out.assert_success(&format!("{args:?}"));
        assert!(
            out.stdout_str().contains("spellings.json: OK"),
            "{args:?}: {out:?}"
        );
    }
    // The file given is the one read: a missing one is named in the error.
    let out = ftpgate(&["--check", "--config=/nonexistent/ftpgate.json"]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("/nonexistent/ftpgate.json"), "{out:?}");
    for bad in ["--config=", "--no-such=1", "--log-format=xml"] {
        let out = ftpgate(&["--check", bad]);
        assert_eq!(out.code(), Some(2), "{bad}: {out:?}");
    }
}

/// Starts ftpgate on a policy whose listener address is already taken (so it logs an error
/// and exits 1) with stderr in a file and `env`; returns what it wrote on stderr.
fn failed_start_log(args: &[&str], env: impl Fn(&Path) -> Vec<(String, String)>) -> String {
    let dir = temp_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap();
    let mut policy = Ftpgate::builder()
        .backend("vsftpd", "127.0.0.1:2100".parse().unwrap())
        .standard_roles()
        .user("ftp", "read-only", "vsftpd")
        // A passive range of its own (a fixed one could hold the listener's free port).
        .policy(listen, port_range(100), &dir.path().join("audit.jsonl"));
    keep_root(&mut policy);
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    let stderr_path = dir.path().join("stderr");
    let stderr = fs::File::create(&stderr_path).unwrap();
    let mut cmd = Command::new(FTPGATE);
    cmd.arg("--config")
        .arg(&path)
        .args(args)
        .env_remove("JOURNAL_STREAM")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    for (k, v) in env(&stderr_path) {
        cmd.env(k, v);
    }
    let mut proc = ProcessGuard::spawn("ftpgate", &mut cmd);
    let status = proc.wait_exit(Duration::from_secs(30));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "a listener in use fails the start"
    );
    drop(taken);
    fs::read_to_string(&stderr_path).unwrap()
}

fn assert_journal_form(log: &str) {
    let line = log
        .lines()
        .find(|l| l.contains("cannot listen"))
        .unwrap_or_else(|| panic!("no error line: {log}"));
    assert!(line.starts_with("<3>cannot listen on 127.0.0.1:"), "{log}");
    for line in log.lines() {
        let priority = line
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .map(|(p, _)| p);
        assert!(
            matches!(priority, Some("3" | "4" | "5" | "6" | "7")),
            "every line has a priority prefix: {line:?}"
        );
    }
}

#[test]
fn log_lines_carry_syslog_priorities_when_stderr_is_the_journal() {
    // What systemd sets: JOURNAL_STREAM=DEVICE:INODE of the stream that stderr is.
    let log = failed_start_log(&[], |stderr| {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(stderr).unwrap();
        vec![(
            "JOURNAL_STREAM".into(),
            format!("{}:{}", meta.dev(), meta.ino()),
        )]
    });
    assert_journal_form(&log);
    // The flag does the same without the variable.
    assert_journal_form(&failed_start_log(&["--log-format", "journal"], |_| vec![]));
}

#[test]
fn log_lines_carry_timestamps_and_levels_elsewhere() {
    // A JOURNAL_STREAM that names another stream (stderr redirected by the service) is not
    // the journal.
    for log in [
        failed_start_log(&[], |_| vec![("JOURNAL_STREAM".into(), "1:2".into())]),
        failed_start_log(&["--log-format=text"], |_| vec![]),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains("cannot listen"))
            .unwrap_or_else(|| panic!("no error line: {log}"));
        // [2026-11-21T13:52:12.170Z ERROR ftpgate] cannot listen on ...
        let (stamp, rest) = line
            .strip_prefix('[')
            .and_then(|l| l.split_once(' '))
            .unwrap_or_else(|| panic!("no timestamp: {line}"));
        assert_eq!(stamp.len(), "2026-11-21T13:52:12.170Z".len(), "{line}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{line}"
        );
        assert!(rest.starts_with("ERROR "), "{line}");
        assert!(!log.contains("<3>"), "{log}");
    }
}

#[test]
fn help_exits_0_and_documents_the_options() {
    let out = ftpgate(&["--help"]);
    out.assert_success("--help");
    let text = out.stdout_str();
    assert!(text.contains("--config"), "{text}");
    assert!(text.contains("--check"), "{text}");
}

#[test]
fn usage_error_exits_2() {
    let out = ftpgate(&["--no-such-option"]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(!out.stderr.trim().is_empty(), "a usage error says why");
    let out = ftpgate(&["--config"]);
    assert_eq!(out.code(), Some(2), "--config without a file: {out:?}");
}

#[test]
fn check_of_a_valid_policy_exits_0_with_a_summary() {
    let dir = temp_dir();
    let listen: SocketAddr = "127.0.0.1:2121".parse().unwrap();
    let policy = Ftpgate::builder()
        .backend("vsftpd", "127.0.0.1:2100".parse().unwrap())
        .standard_roles()
        .user("anonymous", "read-only", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .policy(listen, (40000, 40099), &dir.path().join("audit.jsonl"));
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    let out = check(&path);
    out.assert_success("--check of a valid policy");
    let summary = out.stdout_str();
    assert!(
        summary.contains("127.0.0.1:2121"),
        "summary names the listener: {summary}"
    );
    assert!(
        summary.contains("anonymous"),
        "summary names the users: {summary}"
    );
}

/// A policy with exactly two errors: an unknown verb on line 8 and an unknown key on line 13.
const TWO_ERRORS: &str = r#"{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:2121" } ],
  "passive": { "ports": "40000-40099", "advertise": "127.0.0.1" },
  "backends": { "vsftpd": { "servers": ["127.0.0.1:2100"] } },
  "roles": {
    "full": { "allow": ["RETR", "STOR", "LIST"] },
    "broken": { "allow": ["RETR", "FROBNICATE"] }
  },
  "users": { "anonymous": { "role": "full", "backend": "vsftpd" },
             "ftp": { "role": "broken", "backend": "vsftpd" } },
  "defaults": { "timeouts": { "login": 30, "idle": 300, "session": 900 } },
  "colour": "blue"
}
"#;

#[test]
fn check_reports_each_error_with_line_and_column() {
    let dir = temp_dir();
    let path = dir.path().join("bad.json");
    fs::write(&path, TWO_ERRORS).unwrap();
    let out = check(&path);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let errors = positions(&out.stderr, &path);
    let mut lines: Vec<u32> = errors.iter().map(|e| e.0).collect();
    lines.sort();
    assert_eq!(
        lines,
        [8, 13],
        "one LINE:COLUMN: per error:\n{}",
        out.stderr
    );
    assert!(errors.iter().all(|e| e.1 >= 1), "{errors:?}");
    let message = |line: u32| &errors.iter().find(|e| e.0 == line).unwrap().2;
    assert!(message(8).contains("FROBNICATE"), "{errors:?}");
    assert!(message(13).contains("colour"), "{errors:?}");
}

#[test]
fn check_refuses_a_plumbing_verb_in_a_role() {
    let dir = temp_dir();
    let path = dir.path().join("plumbing.json");
    let text = TWO_ERRORS
        .replace("\"FROBNICATE\"", "\"LIST\"")
        .replace("\"STOR\", \"LIST\"", "\"STOR\", \"PASV\"")
        .replace(",\n  \"colour\": \"blue\"", "");
    fs::write(&path, &text).unwrap();
    let out = check(&path);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let errors = positions(&out.stderr, &path);
    assert_eq!(
        errors.iter().map(|e| e.0).collect::<Vec<_>>(),
        [7],
        "{}",
        out.stderr
    );
    assert!(errors[0].2.contains("PASV"), "{errors:?}");
}

#[test]
fn check_reports_a_json_syntax_error_with_its_position() {
    let dir = temp_dir();
    let path = dir.path().join("syntax.json");
    fs::write(&path, "{\n  \"workers\": 1,\n  \"listeners\": [ ,\n}\n").unwrap();
    let out = check(&path);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let errors = positions(&out.stderr, &path);
    assert_eq!(errors.first().map(|e| e.0), Some(3), "{}", out.stderr);
}

#[test]
fn check_of_a_missing_file_fails() {
    let dir = temp_dir();
    let path = dir.path().join("does-not-exist.json");
    let out = check(&path);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("does-not-exist.json"), "{}", out.stderr);
}

#[test]
fn check_of_the_shipped_example_policy_exits_0() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/ftpgate.json");
    assert!(path.exists(), "{} is missing", path.display());
    check(&path).assert_success("--check etc/ftpgate.json");
}

#[test]
fn check_lists_the_users_that_run_unenforced() {
    let dir = temp_dir();
    let listen: SocketAddr = "127.0.0.1:2121".parse().unwrap();
    let policy = Ftpgate::builder()
        .backend("vsftpd", "127.0.0.1:2100".parse().unwrap())
        .standard_roles()
        .user("anonymous", "read-only", "vsftpd")
        .user("ftp", "read-only", "vsftpd")
        .set(&["enforce"], serde_json::json!(false))
        .set(&["users", "anonymous", "enforce"], serde_json::json!(true))
        .policy(listen, (40000, 40099), &dir.path().join("audit.jsonl"));
    let path = dir.path().join("ftpgate.json");
    fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    let out = check(&path);
    // A dry run is a decision, not a warning: exit 0.
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let stdout = out.stdout_str();
    assert!(
        stdout.starts_with(&format!(
            "{}: OK\ndry run (enforce false) for 1 of 2 users: ftp: ",
            path.display()
        )),
        "{stdout}"
    );
    // A wrong type is an error at its position.
    let text =
        fs::read_to_string(&path)
            .unwrap()
            .replacen("\"enforce\": false", "\"enforce\": \"no\"", 1);
    fs::write(&path, &text).unwrap();
    let out = check(&path);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let offset = text.find("\"no\"").unwrap();
    let line = text[..offset].matches('\n').count() as u32 + 1;
    let column = text[..offset].rsplit('\n').next().unwrap().chars().count() as u32 + 1;
    assert_eq!(
        positions(&out.stderr, &path),
        [(
            line,
            column,
            "enforce: invalid type: string \"no\", expected a boolean".to_owned()
        )],
        "{}",
        out.stderr
    );
}
