//! Owners and modes of the files the policy makes ftpgate trust: the policy file itself, the
//! prefix table, certificates, CA files and pins, private keys, and the filecopy directory.
//! [`load_policy`](super::load_policy) runs these checks, so `ftpgate --check`, the start and
//! every SIGHUP reload refuse the same things.
//!
//! SECURITY: whoever can rewrite one of these files decides who may connect, which backend
//! is trusted, or learns the private key; whoever can write the directory a file is in can
//! replace the file (rename a file of their own over it), sticky bit or not. The rule is
//! OpenSSH's StrictModes (`safe_path` in misc.c): a trusted file and the directory it is in
//! must belong to root or to the user ftpgate runs as, and neither their group nor other
//! users may write them (mode & 022). As in sshd, only the directory that holds the file is
//! checked, not every directory up to `/`. A private key must in addition give other users
//! no permission at all (mode & 007); its group may read it, so that a key owned by root can
//! be read by the service's group (0640 root:ftpgate, like Debian's ssl-cert convention).
//! The filecopy directory (and the directory it is in, or will be created in) must not be
//! writable by its group or by other users: the copies are evidence. Its owner is not
//! checked, since it belongs to the user ftpgate runs as, which root's `--check` cannot know.
//!
//! A symbolic link is followed to its target, and the directory of each link on the way is
//! checked as well as the target and its directory. Only mode bits and owners are read
//! (stat(2), lstat(2)), never access(2): root passes every access(2) test, and the checks
//! are about other users, not about the one running the check.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::limits::MAX_SYMLINK_HOPS;
use crate::os;

use super::Policy;
use super::locate::JsonPath;

/// What a path the policy names is for, which decides what is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileUse {
    /// A file whose contents ftpgate trusts (the policy, the prefix table, a certificate,
    /// a CA file or pin): a regular file owned by root or by ftpgate's user, not writable
    /// by its group or by other users, in a directory of the same kind.
    Trusted,
    /// A private key (TLS, the audit checkpoint key): [`FileUse::Trusted`], and no
    /// permission at all for other users.
    Secret,
    /// The filecopy directory: a directory that neither its group nor other users can
    /// write, in such a directory; any owner.
    CopyDirectory,
}

/// The mode bits and owner of a file or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    mode: u32,
    uid: u32,
}

impl Stat {
    fn of(meta: &Metadata) -> Stat {
        Stat {
            mode: meta.mode(),
            uid: meta.uid(),
        }
    }
}

/// Every path of `policy` that these checks cover, with the key that names it and its use.
/// A prefix table that could not be loaded is left out: its error is already reported.
pub fn named_files(policy: &Policy) -> Vec<(JsonPath, &Path, FileUse)> {
    let root = JsonPath::root();
    let mut files = Vec::new();
    if let Some(tls) = &policy.tls {
        for (i, identity) in tls.identities.iter().enumerate() {
            let path = tls.identity_path(i);
            files.push((
                path.key("certificate"),
                identity.certificate.as_path(),
                FileUse::Trusted,
            ));
            files.push((
                path.key("private_key"),
                identity.private_key.as_path(),
                FileUse::Secret,
            ));
        }
    }
    for (name, backend) in &policy.backends {
        let path = root.key("backends").key(name);
        let tls = &backend.tls_settings;
        for (key, file, use_) in [
            ("ca_file", &tls.ca_file, FileUse::Trusted),
            (
                "pinned_certificate",
                &tls.pinned_certificate,
                FileUse::Trusted,
            ),
            (
                "client_certificate",
                &tls.client_certificate,
                FileUse::Trusted,
            ),
            ("client_key", &tls.client_key, FileUse::Secret),
        ] {
            if let Some(file) = file {
                files.push((path.key(key), file.as_path(), use_));
            }
        }
    }
    if policy.geo.is_some() {
        let key = root.key("access").key("prefix_table");
        let several = policy.prefix_table.len() > 1;
        for (i, table) in policy.prefix_table.iter().enumerate() {
            let at = if several { key.index(i) } else { key.clone() };
            files.push((at, table.as_path(), FileUse::Trusted));
        }
    }
    if let Some(integrity) = &policy.audit.integrity {
        files.push((
            root.key("audit").key("integrity").key("key_file"),
            integrity.key_file.as_path(),
            FileUse::Secret,
        ));
    }
    if let Some(filecopy) = &policy.audit.filecopy {
        files.push((
            root.key("audit").key("filecopy").key("directory"),
            filecopy.directory.as_path(),
            FileUse::CopyDirectory,
        ));
    }
    files
}

/// Checks the owner and mode of `named` (after its symbolic links) and of the directory of
/// the file and of every link on the way, for `use_`. The error is one sentence that names
/// the path at fault and the command that fixes it.
///
/// A file that does not exist passes: whoever reads it reports that (the TLS loader, the
/// prefix table reader). A filecopy directory that does not exist yet is judged by the
/// directory it will be created in.
pub fn check_path(named: &Path, use_: FileUse) -> Result<(), String> {
    check_path_as(named, use_, os::effective_uid())
}

fn check_path_as(named: &Path, use_: FileUse, me: u32) -> Result<(), String> {
    let io_error = |path: &Path, err: io::Error| format!("{}: {err}", path.display());
    // A relative path (`--config ftpgate.json`) is taken from the working directory without
    // resolving any link, so that the directory of a link named that way is checked too.
    let absolute = std::path::absolute(named).map_err(|err| io_error(named, err))?;
    let named = absolute.as_path();
    let mut current = absolute.clone();
    let mut link: Option<PathBuf> = None;
    for _ in 0..=MAX_SYMLINK_HOPS {
        let parent = current.parent().filter(|p| !p.as_os_str().is_empty());
        let (Some(parent), Some(name)) = (parent, current.file_name()) else {
            // `/`, or a path that ends in `..`: what it resolves to.
            let real = match fs::canonicalize(&current) {
                Ok(real) => real,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    return absent(named, use_, me);
                }
                Err(err) => return Err(io_error(&current, err)),
            };
            if real.parent().is_none() {
                let meta = fs::metadata(&real).map_err(|err| io_error(&real, err))?;
                return judge_target(&real, named, &meta, use_, me);
            }
            current = real;
            continue;
        };
        let parent = match fs::canonicalize(parent) {
            Ok(parent) => parent,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return absent(named, use_, me),
            Err(err) => return Err(io_error(parent, err)),
        };
        let entry = parent.join(name);
        let meta = match fs::symlink_metadata(&entry) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return absent(named, use_, me),
            Err(err) => return Err(io_error(&entry, err)),
        };
        let dir_meta = fs::metadata(&parent).map_err(|err| io_error(&parent, err))?;
        let is_link = meta.file_type().is_symlink();
        let holds = if is_link {
            format!("the symbolic link {}", entry.display())
        } else {
            entry.display().to_string()
        };
        let what = match (is_link, use_) {
            (true, _) => "the link",
            (false, FileUse::CopyDirectory) => "the copy directory",
            (false, _) => "the file",
        };
        judge_dir(
            &format!("{} (the directory of {holds})", parent.display()),
            &parent,
            Stat::of(&dir_meta),
            what,
            use_,
            me,
        )?;
        if !is_link {
            return judge_target(&entry, named, &meta, use_, me);
        }
        let target = fs::read_link(&entry).map_err(|err| io_error(&entry, err))?;
        link.get_or_insert(entry);
        current = parent.join(target);
    }
    let first = link.unwrap_or_else(|| named.to_path_buf());
    Err(format!(
        "{}: more than {MAX_SYMLINK_HOPS} symbolic links lead from it",
        first.display()
    ))
}

/// The file or directory at the end of the links.
fn judge_target(
    path: &Path,
    named: &Path,
    meta: &Metadata,
    use_: FileUse,
    me: u32,
) -> Result<(), String> {
    let desc = if path == named {
        path.display().to_string()
    } else {
        format!("{} (where {} leads)", path.display(), named.display())
    };
    if use_ == FileUse::CopyDirectory {
        if !meta.is_dir() {
            return Err(format!("{desc}: not a directory"));
        }
    } else if !meta.is_file() {
        return Err(format!("{desc}: not a regular file"));
    }
    judge_file(&desc, path, Stat::of(meta), use_, me)
}

/// A path that does not exist: fine for a file (its reader says so); a copy directory is
/// judged by the nearest directory that exists above it, where ftpgate will create it.
fn absent(named: &Path, use_: FileUse, me: u32) -> Result<(), String> {
    if use_ != FileUse::CopyDirectory {
        return Ok(());
    }
    for ancestor in named.ancestors().skip(1) {
        let meta = match fs::metadata(ancestor) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(format!("{}: {err}", ancestor.display())),
        };
        let real = fs::canonicalize(ancestor).unwrap_or_else(|_| ancestor.to_path_buf());
        if !meta.is_dir() {
            return Err(format!(
                "{}: not a directory, so ftpgate cannot create {} in it",
                real.display(),
                named.display()
            ));
        }
        return judge_dir(
            &format!(
                "{} (where ftpgate will create {})",
                real.display(),
                named.display()
            ),
            &real,
            Stat::of(&meta),
            "the copy directory",
            use_,
            me,
        );
    }
    Ok(())
}

/// Who besides the owner may do what the rules refuse, in words, and the `chmod` argument
/// that takes it away; `None` when nothing is refused. `secret`: other users may not even
/// read.
fn too_open(mode: u32, secret: bool) -> Option<(String, String)> {
    let group = mode & 0o020 != 0;
    let (read, write) = (mode & 0o004 != 0, mode & 0o002 != 0);
    let others = if secret {
        match (read, write, mode & 0o001 != 0) {
            (true, true, _) => Some("read and write it"),
            (true, false, _) => Some("read it"),
            (false, true, _) => Some("write it"),
            (false, false, true) => Some("open it"),
            (false, false, false) => None,
        }
    } else {
        write.then_some("write it")
    };
    let others_spec = if secret { "o-rwx" } else { "o-w" };
    match (group, others) {
        (false, None) => None,
        (true, None) => Some(("its group can write it".to_owned(), "g-w".to_owned())),
        (false, Some(what)) => Some((format!("every user can {what}"), others_spec.to_owned())),
        (true, Some("write it")) if !secret => Some((
            "its group and every user can write it".to_owned(),
            "go-w".to_owned(),
        )),
        (true, Some(what)) => Some((
            format!("its group can write it and every user can {what}"),
            format!("g-w,{others_spec}"),
        )),
    }
}

/// `uid` may own what ftpgate trusts: root, or the user ftpgate runs as.
fn trusted_owner(uid: u32, me: u32) -> bool {
    uid == 0 || uid == me
}

/// The file (or copy directory) itself.
fn judge_file(desc: &str, path: &Path, stat: Stat, use_: FileUse, me: u32) -> Result<(), String> {
    let path = path.display();
    if use_ != FileUse::CopyDirectory && !trusted_owner(stat.uid, me) {
        return Err(format!(
            "{desc}: owned by uid {}, which is neither root nor the user ftpgate runs as \
             (uid {me}) and could change it at any time; run chown root {path}",
            stat.uid
        ));
    }
    if let Some((who, spec)) = too_open(stat.mode, use_ == FileUse::Secret) {
        let what = match use_ {
            FileUse::Trusted => "",
            FileUse::Secret => ", and it is a private key",
            FileUse::CopyDirectory => ", and it holds the audit copies",
        };
        return Err(format!(
            "{desc}: {who} (mode {:04o}){what}; run chmod {spec} {path}",
            stat.mode & 0o7777
        ));
    }
    Ok(())
}

/// A directory that holds a trusted file, a link on the way to one, or the copy directory:
/// whoever may write it can replace `what`.
fn judge_dir(
    desc: &str,
    dir: &Path,
    stat: Stat,
    what: &str,
    use_: FileUse,
    me: u32,
) -> Result<(), String> {
    let dir = dir.display();
    let elsewhere = match use_ {
        FileUse::CopyDirectory => "choose a copy directory elsewhere".to_owned(),
        _ => format!("keep {what} in a directory that only root can write"),
    };
    if use_ != FileUse::CopyDirectory && !trusted_owner(stat.uid, me) {
        return Err(format!(
            "{desc}: owned by uid {}, which is neither root nor the user ftpgate runs as \
             (uid {me}) and could replace {what}; run chown root {dir} or {elsewhere}",
            stat.uid
        ));
    }
    if let Some((who, spec)) = too_open(stat.mode, false) {
        return Err(format!(
            "{desc}: {who} (mode {:04o}) and so replace {what}; run chmod {spec} {dir} or \
             {elsewhere}",
            stat.mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn stat(mode: u32, uid: u32) -> Stat {
        Stat { mode, uid }
    }

    fn file(mode: u32, uid: u32, use_: FileUse) -> Result<(), String> {
        judge_file("/k.pem", Path::new("/k.pem"), stat(mode, uid), use_, 1000)
    }

    #[test]
    fn trusted_files_may_be_read_by_anyone_and_written_by_their_owner_only() {
        for mode in [0o100600, 0o100640, 0o100644, 0o100444, 0o100755] {
            assert_eq!(file(mode, 0, FileUse::Trusted), Ok(()), "{mode:o}");
        }
        assert_eq!(
            file(0o100664, 0, FileUse::Trusted),
            Err("/k.pem: its group can write it (mode 0664); run chmod g-w /k.pem".to_owned())
        );
        assert_eq!(
            file(0o100646, 1000, FileUse::Trusted),
            Err("/k.pem: every user can write it (mode 0646); run chmod o-w /k.pem".to_owned())
        );
        assert_eq!(
            file(0o100666, 0, FileUse::Trusted),
            Err(
                "/k.pem: its group and every user can write it (mode 0666); run chmod go-w \
                 /k.pem"
                    .to_owned()
            )
        );
    }

    #[test]
    fn private_keys_give_other_users_nothing_and_their_group_at_most_read() {
        for mode in [0o100600, 0o100640, 0o100400, 0o100440] {
            assert_eq!(file(mode, 1000, FileUse::Secret), Ok(()), "{mode:o}");
        }
        let refused = |mode: u32| file(mode, 0, FileUse::Secret).expect_err("refused");
        assert_eq!(
            refused(0o100644),
            "/k.pem: every user can read it (mode 0644), and it is a private key; run chmod \
             o-rwx /k.pem"
        );
        assert!(refused(0o100602).contains("every user can write it (mode 0602)"));
        assert!(refused(0o100606).contains("every user can read and write it"));
        assert!(refused(0o100601).contains("every user can open it"));
        assert_eq!(
            refused(0o100660),
            "/k.pem: its group can write it (mode 0660), and it is a private key; run chmod \
             g-w /k.pem"
        );
        assert_eq!(
            refused(0o100666),
            "/k.pem: its group can write it and every user can read and write it (mode \
             0666), and it is a private key; run chmod g-w,o-rwx /k.pem"
        );
    }

    #[test]
    fn trusted_files_and_their_directories_belong_to_root_or_to_ftpgate() {
        assert_eq!(file(0o100600, 0, FileUse::Secret), Ok(()));
        assert_eq!(file(0o100600, 1000, FileUse::Secret), Ok(()));
        assert_eq!(
            file(0o100600, 1001, FileUse::Secret),
            Err(
                "/k.pem: owned by uid 1001, which is neither root nor the user ftpgate runs \
                 as (uid 1000) and could change it at any time; run chown root /k.pem"
                    .to_owned()
            )
        );
        let dir = |mode: u32, uid: u32, use_: FileUse| {
            judge_dir(
                "/d (x)",
                Path::new("/d"),
                stat(mode, uid),
                "the file",
                use_,
                1000,
            )
        };
        assert_eq!(dir(0o40755, 0, FileUse::Trusted), Ok(()));
        assert_eq!(dir(0o40750, 1000, FileUse::Secret), Ok(()));
        assert_eq!(
            dir(0o40755, 1001, FileUse::Trusted),
            Err(
                "/d (x): owned by uid 1001, which is neither root nor the user ftpgate runs \
                 as (uid 1000) and could replace the file; run chown root /d or keep the \
                 file in a directory that only root can write"
                    .to_owned()
            )
        );
        // The copy directory belongs to whichever user ftpgate runs as.
        assert_eq!(dir(0o40750, 1001, FileUse::CopyDirectory), Ok(()));
        assert_eq!(
            file(0o40750, 1001, FileUse::CopyDirectory),
            Ok(()),
            "any owner"
        );
    }

    #[test]
    fn directories_that_others_can_write_are_refused_sticky_or_not() {
        let dir = |mode: u32| {
            judge_dir(
                "/tmp (the directory of /tmp/k.pem)",
                Path::new("/tmp"),
                stat(mode, 0),
                "the file",
                FileUse::Trusted,
                0,
            )
        };
        assert_eq!(dir(0o40755), Ok(()));
        assert_eq!(dir(0o40700), Ok(()));
        assert_eq!(
            dir(0o41777),
            Err(
                "/tmp (the directory of /tmp/k.pem): its group and every user can write it \
                 (mode 1777) and so replace the file; run chmod go-w /tmp or keep the file in \
                 a directory that only root can write"
                    .to_owned()
            )
        );
        assert!(dir(0o40775).is_err_and(|e| e.contains("its group can write it (mode 0775)")));
        assert!(dir(0o42775).is_err(), "setgid changes nothing");
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// A private directory (0700) in which the test lays out its files.
    fn scratch() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        chmod(dir.path(), 0o700);
        dir
    }

    #[test]
    fn a_file_in_an_open_directory_or_behind_a_link_from_one_is_refused() {
        let top = scratch();
        let me = os::effective_uid();
        let good = top.path().join("good");
        let open = top.path().join("open");
        fs::create_dir(&good).expect("mkdir");
        fs::create_dir(&open).expect("mkdir");
        chmod(&good, 0o755);
        chmod(&open, 0o777);
        let key = good.join("key.pem");
        fs::write(&key, b"k").expect("write");
        chmod(&key, 0o600);
        assert_eq!(check_path_as(&key, FileUse::Secret, me), Ok(()));

        // A link to the good key from the open directory: the link can be replaced.
        let link = open.join("key.pem");
        symlink(&key, &link).expect("symlink");
        let err = check_path_as(&link, FileUse::Secret, me).expect_err("open dir");
        assert!(
            err.starts_with(&format!(
                "{} (the directory of the symbolic link {}): its group and every user can \
                 write it (mode 0777) and so replace the link",
                open.display(),
                link.display()
            )),
            "{err}"
        );

        // A link from the good directory to a key in the open one: the target is judged.
        let far = open.join("far.pem");
        fs::write(&far, b"k").expect("write");
        chmod(&far, 0o600);
        let relative = good.join("relative.pem");
        symlink("../open/far.pem", &relative).expect("symlink");
        let err = check_path_as(&relative, FileUse::Secret, me).expect_err("open target dir");
        assert!(
            err.starts_with(&format!(
                "{} (the directory of {}): its group and every user can write it",
                open.display(),
                far.display()
            )),
            "{err}"
        );
        chmod(&open, 0o755);
        assert_eq!(check_path_as(&relative, FileUse::Secret, me), Ok(()));
        // The target's own mode, named as reached through the link.
        chmod(&far, 0o644);
        assert_eq!(
            check_path_as(&relative, FileUse::Secret, me),
            Err(format!(
                "{} (where {} leads): every user can read it (mode 0644), and it is a \
                 private key; run chmod o-rwx {}",
                far.display(),
                relative.display(),
                far.display()
            ))
        );
        assert_eq!(check_path_as(&relative, FileUse::Trusted, me), Ok(()));

        // A directory is not a key; a missing key is left to its reader.
        assert!(
            check_path_as(&good, FileUse::Secret, me)
                .is_err_and(|e| e.ends_with(": not a regular file"))
        );
        assert_eq!(
            check_path_as(&good.join("missing.pem"), FileUse::Secret, me),
            Ok(())
        );
        // A loop of links ends.
        let a = good.join("a");
        let b = good.join("b");
        symlink(&b, &a).expect("symlink");
        symlink(&a, &b).expect("symlink");
        assert!(
            check_path_as(&a, FileUse::Trusted, me)
                .is_err_and(|e| e.contains("symbolic links lead from it"))
        );
    }

    #[test]
    fn the_copy_directory_and_where_it_will_be_created() {
        let top = scratch();
        let me = os::effective_uid();
        let copies = top.path().join("copies");
        // Missing: judged by the directory it will be created in.
        assert_eq!(check_path_as(&copies, FileUse::CopyDirectory, me), Ok(()));
        chmod(top.path(), 0o777);
        let err = check_path_as(&copies.join("a/b"), FileUse::CopyDirectory, me)
            .expect_err("open parent");
        assert!(
            err.starts_with(&format!(
                "{} (where ftpgate will create {}): its group and every user can write it \
                 (mode 0777) and so replace the copy directory",
                top.path().display(),
                copies.join("a/b").display()
            )),
            "{err}"
        );
        chmod(top.path(), 0o755);
        fs::create_dir(&copies).expect("mkdir");
        for (mode, ok) in [(0o750, true), (0o755, true), (0o770, false), (0o757, false)] {
            chmod(&copies, mode);
            let result = check_path_as(&copies, FileUse::CopyDirectory, me);
            assert_eq!(result.is_ok(), ok, "{mode:o}: {result:?}");
        }
        chmod(&copies, 0o777);
        assert_eq!(
            check_path_as(&copies, FileUse::CopyDirectory, me),
            Err(format!(
                "{}: its group and every user can write it (mode 0777), and it holds the \
                 audit copies; run chmod go-w {}",
                copies.display(),
                copies.display()
            ))
        );
        chmod(&copies, 0o750);
        let file = top.path().join("file");
        fs::write(&file, b"").expect("write");
        assert_eq!(
            check_path_as(&file, FileUse::CopyDirectory, me),
            Err(format!("{}: not a directory", file.display()))
        );
    }
}
