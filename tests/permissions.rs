//! Owners and modes of the files the policy makes ftpgate trust, as `ftpgate --check`, the
//! start and a SIGHUP reload judge them (one loader): a policy file, a policy directory, a
//! private key (tls.private_key, a backend's client_key), its directory, a filecopy directory
//! that others could write, and symbolic links, which are fine only if their target and every
//! directory on the way pass. Each refusal with its exact message and line:column, and the
//! accepted counterparts.
//!
//! Only mode bits and owners count (the tests run as root in CI, and root passes every
//! access(2) check), so each case sets the modes it needs whatever the umask.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const FTPGATE: &str = env!("CARGO_BIN_EXE_ftpgate");

fn check(policy: &Path) -> Output {
    run(
        Command::new(FTPGATE)
            .arg("--check")
            .arg("--config")
            .arg(policy),
        Duration::from_secs(30),
    )
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

fn mkdir(path: &Path, mode: u32) -> PathBuf {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    chmod(path, mode);
    path.to_path_buf()
}

/// 1-based line and column (in characters) of the first `needle` in `text`.
fn at(text: &str, needle: &str) -> (usize, usize) {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} is not in the policy"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// A policy that names a certificate and key (tls), optionally a backend's TLS files, and a
/// filecopy directory, laid out in a private directory: everything at the modes that pass.
struct Layout {
    _dir: tempfile::TempDir,
    /// The temporary directory, canonical (the messages name canonical directories).
    base: PathBuf,
    policy: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    copies: PathBuf,
    /// CA file, client certificate and client key of backend "secure".
    client: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Layout {
    fn new() -> Layout {
        Self::build(false)
    }

    fn with_client_key() -> Layout {
        Self::build(true)
    }

    fn build(client: bool) -> Layout {
        let dir = temp_dir();
        let base = fs::canonicalize(dir.path()).expect("canonical");
        let tls = mkdir(&base.join("tls"), 0o755);
        let (cert, key) = generate_certificate(&tls);
        chmod(&cert, 0o644);
        chmod(&key, 0o600);
        let client = client.then(|| {
            let backend = mkdir(&base.join("backend"), 0o750);
            let (ca, ccert, ckey) = generate_ca_and_server(&backend);
            chmod(&ca, 0o644);
            chmod(&ccert, 0o644);
            chmod(&ckey, 0o600);
            (ca, ccert, ckey)
        });
        let layout = Layout {
            policy: base.join("ftpgate.json"),
            copies: base.join("copies"),
            _dir: dir,
            base,
            cert,
            key,
            client,
        };
        layout.write(&layout.text());
        layout
    }

    /// The policy, with the paths of this layout.
    fn text(&self) -> String {
        let backend = match &self.client {
            None => r#""files": { "servers": ["127.0.0.1:2100"] }"#.to_owned(),
            Some((ca, cert, key)) => format!(
                r#""files": {{ "servers": ["127.0.0.1:2100"], "tls": "explicit",
                 "ca_file": "{}",
                 "client_certificate": "{}",
                 "client_key": "{}" }}"#,
                ca.display(),
                cert.display(),
                key.display()
            ),
        };
        format!(
            r#"{{
  "workers": 1,
  "listeners": [ {{ "address": "127.0.0.1:2121", "tls": "explicit" }} ],
  "passive": {{ "ports": "40000-40099" }},
  "tls": {{ "certificate": "{cert}",
           "private_key": "{key}" }},
  "backends": {{ {backend} }},
  "roles": {{ "download": {{ "allow": ["RETR", "LIST"] }} }},
  "users": {{ "alice": {{ "role": "download", "backend": "files" }} }},
  "audit": {{ "mode": "filecopy",
             "filecopy": {{ "directory": "{copies}" }} }}
}}
"#,
            cert = self.cert.display(),
            key = self.key.display(),
            copies = self.copies.display(),
        )
    }

    fn write(&self, text: &str) {
        fs::write(&self.policy, text).expect("write policy");
        chmod(&self.policy, 0o644);
    }

    /// `--check` passes.
    fn passes(&self, what: &str) {
        let out = check(&self.policy);
        assert!(out.success(), "{what}: {out:?}");
    }

    /// `--check` fails with exactly these `LINE:COLUMN: message` lines after the file name.
    fn refuses(&self, what: &str, expected: &[String]) {
        let out = check(&self.policy);
        assert_eq!(out.code(), Some(1), "{what}: {out:?}");
        let prefix = format!("{}:", self.policy.display());
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .map(|l| l.strip_prefix(&prefix).unwrap_or(l))
            .collect();
        assert_eq!(lines, expected, "{what}");
    }

    /// `LINE:COLUMN: KEY: message` at the first `"key"` of the policy.
    fn at_key(&self, key: &str, path: &str, message: &str) -> String {
        let (line, column) = at(&self.text(), &format!("\"{key}\""));
        format!("{line}:{column}: {path}: {message}")
    }
}

#[test]
fn the_accepted_layout_passes() {
    let l = Layout::new();
    l.passes("0644 policy in a 0755 directory, 0600 key, copies to be created in a 0755 dir");
    chmod(&l.key, 0o640);
    l.passes("a key its group may read (0640 root:ftpgate)");
    chmod(&l.key, 0o400);
    l.passes("a read-only key");
    chmod(&l.policy, 0o600);
    l.passes("a 0600 policy");
    chmod(&l.policy, 0o444);
    l.passes("a read-only policy");
    mkdir(&l.copies, 0o750);
    l.passes("an existing 0750 copy directory");
    chmod(&l.copies, 0o755);
    l.passes("an existing 0755 copy directory");
    chmod(&l.base, 0o700);
    l.passes("a 0700 policy directory");
}

#[test]
fn a_policy_file_others_can_write_is_refused() {
    let l = Layout::new();
    let p = l.policy.display();
    chmod(&l.policy, 0o666);
    l.refuses(
        "0666 policy",
        &[format!(
            "0:0: {p}: its group and every user can write it (mode 0666); run chmod go-w {p}"
        )],
    );
    chmod(&l.policy, 0o646);
    l.refuses(
        "0646 policy",
        &[format!(
            "0:0: {p}: every user can write it (mode 0646); run chmod o-w {p}"
        )],
    );
    chmod(&l.policy, 0o664);
    l.refuses(
        "0664 policy",
        &[format!(
            "0:0: {p}: its group can write it (mode 0664); run chmod g-w {p}"
        )],
    );
}

#[test]
fn a_policy_directory_others_can_write_is_refused_sticky_or_not() {
    let l = Layout::new();
    let (p, d) = (l.policy.display(), l.base.display());
    for (mode, who, spec) in [
        (0o777, "its group and every user can write it", "go-w"),
        (0o1777, "its group and every user can write it", "go-w"),
        (0o1757, "every user can write it", "o-w"),
        (0o775, "its group can write it", "g-w"),
    ] {
        chmod(&l.base, mode);
        l.refuses(
            &format!("policy directory {mode:o}"),
            &[format!(
                "0:0: {d} (the directory of {p}): {who} (mode {mode:04o}) and so replace the \
                 file; run chmod {spec} {d} or keep the file in a directory that only root \
                 can write"
            )],
        );
    }
    chmod(&l.base, 0o755);
    l.passes("back to 0755");
}

#[test]
fn a_policy_behind_a_symbolic_link_is_judged_by_its_target_and_every_directory_on_the_way() {
    let l = Layout::new();
    let good = mkdir(&l.base.join("etc"), 0o755);
    let open = mkdir(&l.base.join("open"), 0o777);

    // From a good directory to the policy in a good directory: accepted.
    let link = good.join("ftpgate.json");
    symlink(&l.policy, &link).expect("symlink");
    let out = check(&link);
    assert!(out.success(), "{out:?}");

    // The target's own mode counts, named as reached through the link.
    chmod(&l.policy, 0o666);
    let out = check(&link);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let (p, n) = (l.policy.display(), link.display());
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "{n}:0:0: {p} (where {n} leads): its group and every user can write it (mode \
             0666); run chmod go-w {p}"
        )
    );
    chmod(&l.policy, 0o644);

    // The target in a directory others can write.
    let far = open.join("far.json");
    fs::copy(&l.policy, &far).expect("copy");
    chmod(&far, 0o644);
    let to_far = good.join("to-far.json");
    symlink("../open/far.json", &to_far).expect("symlink");
    let out = check(&to_far);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let (o, f) = (open.display(), far.display());
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "{}:0:0: {o} (the directory of {f}): its group and every user can write it \
             (mode 0777) and so replace the file; run chmod go-w {o} or keep the file in a \
             directory that only root can write",
            to_far.display()
        )
    );

    // The link itself in a directory others can write: they can replace the link.
    let open_link = open.join("ftpgate.json");
    symlink(&l.policy, &open_link).expect("symlink");
    let out = check(&open_link);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let ol = open_link.display();
    assert_eq!(
        out.stderr.trim_end(),
        format!(
            "{ol}:0:0: {o} (the directory of the symbolic link {ol}): its group and every \
             user can write it (mode 0777) and so replace the link; run chmod go-w {o} or \
             keep the link in a directory that only root can write"
        )
    );
}

#[test]
fn a_private_key_others_can_open_is_refused_at_its_key() {
    let l = Layout::new();
    let k = l.key.display();
    for (mode, who, spec) in [
        (0o644, "every user can read it", "o-rwx"),
        (0o604, "every user can read it", "o-rwx"),
        (0o602, "every user can write it", "o-rwx"),
        (0o660, "its group can write it", "g-w"),
        (
            0o666,
            "its group can write it and every user can read and write it",
            "g-w,o-rwx",
        ),
    ] {
        chmod(&l.key, mode);
        l.refuses(
            &format!("key {mode:o}"),
            &[l.at_key(
                "private_key",
                "tls.private_key",
                &format!(
                    "{k}: {who} (mode {mode:04o}), and it is a private key; run chmod {spec} {k}"
                ),
            )],
        );
    }
    chmod(&l.key, 0o600);
    l.passes("back to 0600");

    // Its directory.
    let tls = l.key.parent().expect("tls dir").to_path_buf();
    chmod(&tls, 0o1777);
    let t = tls.display();
    let dir_message = |path: &str, what: &Path| {
        l.at_key(
            if path == "tls.certificate" {
                "certificate"
            } else {
                "private_key"
            },
            path,
            &format!(
                "{t} (the directory of {}): its group and every user can write it (mode 1777) \
                 and so replace the file; run chmod go-w {t} or keep the file in a directory \
                 that only root can write",
                what.display()
            ),
        )
    };
    l.refuses(
        "the key's directory 1777",
        &[
            dir_message("tls.certificate", &l.cert),
            dir_message("tls.private_key", &l.key),
        ],
    );
    chmod(&tls, 0o755);
}

#[test]
fn a_private_key_behind_a_symbolic_link_is_judged_by_its_target() {
    let mut l = Layout::new();
    let keys = mkdir(&l.base.join("keys"), 0o700);
    let target = keys.join("real.pem");
    fs::rename(&l.key, &target).expect("move the key");
    let link = l.base.join("tls").join("key.pem");
    symlink(&target, &link).expect("symlink");
    l.key = link.clone();
    l.write(&l.text());
    l.passes("a 0600 key behind a link");
    chmod(&target, 0o644);
    let (t, n) = (target.display(), link.display());
    l.refuses(
        "a 0644 key behind a link",
        &[l.at_key(
            "private_key",
            "tls.private_key",
            &format!(
                "{t} (where {n} leads): every user can read it (mode 0644), and it is a private \
                 key; run chmod o-rwx {t}"
            ),
        )],
    );
    chmod(&target, 0o600);
    chmod(&keys, 0o777);
    let k = keys.display();
    l.refuses(
        "a key behind a link, in a 0777 directory",
        &[l.at_key(
            "private_key",
            "tls.private_key",
            &format!(
                "{k} (the directory of {t}): its group and every user can write it (mode 0777) \
                 and so replace the file; run chmod go-w {k} or keep the file in a directory \
                 that only root can write"
            ),
        )],
    );
}

#[test]
fn a_backend_client_key_others_can_read_is_refused_at_its_key() {
    let l = Layout::with_client_key();
    l.passes("a 0600 client key");
    let (_, _, key) = l.client.as_ref().expect("client");
    chmod(key, 0o640);
    l.passes("a 0640 client key");
    chmod(key, 0o604);
    let k = key.display();
    l.refuses(
        "a 0604 client key",
        &[l.at_key(
            "client_key",
            "backends.files.client_key",
            &format!(
                "{k}: every user can read it (mode 0604), and it is a private key; run chmod \
                 o-rwx {k}"
            ),
        )],
    );
}

#[test]
fn a_filecopy_directory_others_can_write_is_refused() {
    let l = Layout::new();
    let c = l.copies.display();
    mkdir(&l.copies, 0o777);
    l.refuses(
        "copies 0777",
        &[l.at_key(
            "directory",
            "audit.filecopy.directory",
            &format!(
                "{c}: its group and every user can write it (mode 0777), and it holds the audit \
                 copies; run chmod go-w {c}"
            ),
        )],
    );
    chmod(&l.copies, 0o770);
    l.refuses(
        "copies 0770",
        &[l.at_key(
            "directory",
            "audit.filecopy.directory",
            &format!(
                "{c}: its group can write it (mode 0770), and it holds the audit copies; run \
                 chmod g-w {c}"
            ),
        )],
    );
    chmod(&l.copies, 0o750);
    l.passes("copies 0750");

    // Not there yet: judged by where it will be created.
    let mut l = Layout::new();
    let open = mkdir(&l.base.join("spool"), 0o1777);
    l.copies = open.join("copies");
    l.write(&l.text());
    let (o, c) = (open.display(), l.copies.display());
    l.refuses(
        "copies to be created in a 1777 directory",
        &[l.at_key(
            "directory",
            "audit.filecopy.directory",
            &format!(
                "{o} (where ftpgate will create {c}): its group and every user can write it \
                 (mode 1777) and so replace the copy directory; run chmod go-w {o} or choose a \
                 copy directory elsewhere"
            ),
        )],
    );
    chmod(&open, 0o755);
    l.passes("copies to be created in a 0755 directory");
}

#[test]
fn every_problem_is_listed_in_file_order() {
    let l = Layout::new();
    chmod(&l.key, 0o644);
    mkdir(&l.copies, 0o777);
    let out = check(&l.policy);
    assert_eq!(out.code(), Some(1), "{out:?}");
    let (key_line, _) = at(&l.text(), "\"private_key\"");
    let (copies_line, _) = at(&l.text(), "\"directory\"");
    let lines: Vec<usize> = out
        .stderr
        .lines()
        .filter_map(|l| l.split(':').nth(1)?.parse().ok())
        .collect();
    assert_eq!(lines, [key_line, copies_line], "{}", out.stderr);
}

#[test]
fn files_owned_by_another_user_are_refused() {
    if ftpgate::os::effective_uid() != 0 {
        eprintln!("skipped: only root can give a file to another user");
        return;
    }
    let l = Layout::new();
    let k = l.key.display();
    std::os::unix::fs::chown(&l.key, Some(4242), None).expect("chown");
    l.refuses(
        "a key owned by uid 4242",
        &[l.at_key(
            "private_key",
            "tls.private_key",
            &format!(
                "{k}: owned by uid 4242, which is neither root nor the user ftpgate runs as \
                 (uid 0) and could change it at any time; run chown root {k}"
            ),
        )],
    );
    std::os::unix::fs::chown(&l.key, Some(0), None).expect("chown");
    let p = l.policy.display();
    std::os::unix::fs::chown(&l.policy, Some(4242), None).expect("chown");
    l.refuses(
        "a policy owned by uid 4242",
        &[format!(
            "0:0: {p}: owned by uid 4242, which is neither root nor the user ftpgate runs as \
             (uid 0) and could change it at any time; run chown root {p}"
        )],
    );
    std::os::unix::fs::chown(&l.policy, Some(0), None).expect("chown");
    // The copy directory belongs to whichever user ftpgate runs as: its owner is not judged.
    mkdir(&l.copies, 0o750);
    std::os::unix::fs::chown(&l.copies, Some(4242), None).expect("chown");
    l.passes("a copy directory owned by another user");
}

#[test]
fn the_start_refuses_what_check_refuses() {
    let l = Layout::new();
    chmod(&l.key, 0o644);
    let out = run(
        Command::new(FTPGATE).arg("--config").arg(&l.policy),
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), Some(1), "{out:?}");
    let k = l.key.display();
    let expected = format!(
        "{}:{}",
        l.policy.display(),
        l.at_key(
            "private_key",
            "tls.private_key",
            &format!(
                "{k}: every user can read it (mode 0644), and it is a private key; run chmod \
                 o-rwx {k}"
            ),
        )
    );
    assert!(
        out.stderr.lines().any(|line| line == expected),
        "{expected}\n{}",
        out.stderr
    );
}

#[test]
fn a_reload_refuses_a_key_others_can_read_and_keeps_the_old_policy() {
    let vs = Vsftpd::start();
    let mut gate = Ftpgate::builder()
        .backend("vsftpd", vs.addr())
        .standard_roles()
        .user("anonymous", "full", "vsftpd")
        .ftps()
        .start();
    let key = gate.config_path().with_file_name("key.pem");
    chmod(&key, 0o644);
    let pid = gate.pid().expect("pid");
    ftpgate::os::send_signal(pid, ftpgate::os::SIGHUP).expect("SIGHUP");
    let wanted = format!("{}: every user can read it (mode 0644)", key.display());
    assert!(
        wait_until(Duration::from_secs(10), || {
            gate.stderr_log()
                .lines()
                .any(|l| l.contains("policy reload refused") && l.contains(&wanted))
        }),
        "no refusal naming the key:\n{}",
        gate.stderr_log()
    );
    // The old policy goes on serving.
    let mut c = Ftp::connect(gate.addr());
    c.login_ok("anonymous", "x");
    assert_eq!(c.cmd("QUIT").0, 221);
    chmod(&key, 0o600);
    ftpgate::os::send_signal(pid, ftpgate::os::SIGHUP).expect("SIGHUP");
    assert!(
        wait_until(Duration::from_secs(10), || gate
            .stderr_log()
            .contains("policy reloaded")),
        "{}",
        gate.stderr_log()
    );
    gate.assert_healthy();
}
