//! The filecopy writer and retention, against a real file system (temporary directories).

use super::*;
use std::time::UNIX_EPOCH;

#[test]
fn names_keep_only_the_last_segment_and_safe_bytes() {
    assert_eq!(copy_name(b"report.csv"), "report.csv");
    assert_eq!(copy_name(b"/in/2026/report.csv"), "report.csv");
    assert_eq!(copy_name(b"../../etc/passwd"), "passwd");
    assert_eq!(copy_name(b"dir/"), "dir");
    assert_eq!(copy_name(b".."), "unnamed");
    assert_eq!(copy_name(b"../.."), "unnamed");
    assert_eq!(copy_name(b"."), "unnamed");
    assert_eq!(copy_name(b""), "unnamed");
    assert_eq!(copy_name(b"/"), "unnamed");
    assert_eq!(copy_name(b"...hidden"), "hidden");
    assert_eq!(
        copy_name(b"evil name \"quoted\"\r\n"),
        "evil_name__quoted___"
    );
    assert_eq!(copy_name(b"a\0b"), "a_b");
    assert_eq!(copy_name(b"..\\..\\boot.ini"), "_.._boot.ini");
    assert_eq!(copy_name(b"caf\xc3\xa9\xff.txt"), "caf___.txt");
    assert_eq!(copy_name(b"-rf"), "-rf");
    let long = vec![b'x'; 300];
    assert_eq!(copy_name(&long).len(), MAX_FILECOPY_NAME);
}

#[test]
fn names_never_contain_a_separator_or_start_with_a_dot() {
    for bytes in [
        &b"\x00/\x01."[..],
        b"\n..",
        b"a/.b",
        b"\xff\xfe/..\x00",
        b"x/./.",
    ] {
        let name = copy_name(bytes);
        assert!(!name.is_empty(), "{bytes:?}");
        assert!(!name.starts_with('.'), "{bytes:?} -> {name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
            "{bytes:?} -> {name}"
        );
    }
}

#[test]
fn paths_are_dated_in_utc() {
    // 2026-11-18T11:06:40Z
    let when = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let path = copy_path(Path::new("/copies"), when, "6b01a20b-261d-1", 3, b"/x/a b");
    assert_eq!(path, Path::new("/copies/2026/11/18/6b01a20b-261d-1-3-a_b"));
}

fn write_at(path: &Path, age: Duration) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = File::create(path).expect("create");
    file.set_modified(SystemTime::now() - age)
        .expect("set_modified");
}

#[test]
fn retention_deletes_old_copies_and_their_empty_directories_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let day = Duration::from_secs(86_400);
    let old = root.join("2001/02/03/s-1-old");
    let also_old = root.join("2001/02/04/s-2-old");
    let (y, m, d) = utc_date(SystemTime::now());
    let today = root.join(format!("{y:04}/{m:02}/{d:02}"));
    let recent = today.join("s-3-new");
    // Old by its time, but in today's directory: not looked at.
    let odd = today.join("s-4-odd");
    write_at(&old, 40 * day);
    write_at(&also_old, 40 * day);
    write_at(&recent, Duration::ZERO);
    write_at(&odd, 40 * day);
    // Not ours: left alone.
    let foreign = root.join("lost+found/x");
    write_at(&foreign, 40 * day);
    let pass = remove_expired(root, 30, SystemTime::now(), 100);
    assert_eq!(
        pass,
        Expired {
            removed: 2,
            finished: true
        }
    );
    assert!(!old.exists() && !also_old.exists());
    assert!(!root.join("2001").exists(), "empty dated directories go");
    assert!(recent.exists() && odd.exists() && foreign.exists());
}

#[test]
fn retention_work_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let age = Duration::from_secs(10 * 86_400);
    for i in 0..5 {
        write_at(&root.join(format!("2001/02/03/s-{i}-x")), age);
    }
    let pass = remove_expired(root, 1, SystemTime::now(), 3);
    assert_eq!(
        pass,
        Expired {
            removed: 3,
            finished: false
        }
    );
    let pass = remove_expired(root, 1, SystemTime::now(), 3);
    assert_eq!(
        pass,
        Expired {
            removed: 2,
            finished: true
        }
    );
    assert!(!root.join("2001").exists());
}

#[test]
fn retention_does_not_follow_symbolic_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let victim = outside.path().join("victim");
    write_at(&victim, Duration::from_secs(90 * 86_400));
    let day_dir = dir.path().join("2001/02/03");
    fs::create_dir_all(&day_dir).expect("mkdir");
    std::os::unix::fs::symlink(&victim, day_dir.join("link")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("2001/02/04")).expect("symlink");
    // A whole dated tree outside, reached through a year that is a link.
    let far = tempfile::tempdir().expect("tempdir");
    let far_copy = far.path().join("01/01/s-1-x");
    write_at(&far_copy, Duration::from_secs(90 * 86_400));
    std::os::unix::fs::symlink(far.path(), dir.path().join("2002")).expect("symlink");
    remove_expired(dir.path(), 1, SystemTime::now(), 100);
    assert!(victim.exists());
    assert!(
        far_copy.exists(),
        "retention followed a year that is a link"
    );
    assert!(
        dir.path().join("2002").is_symlink(),
        "links are not removed either"
    );
}

#[test]
fn copy_paths_split_into_root_dated_names_and_file_name() {
    let (root, dated, name) =
        split_copy_path(Path::new("/var/copies/2026/11/18/s-1-a")).expect("split");
    assert_eq!(root, Path::new("/var/copies"));
    assert_eq!(
        dated,
        [OsStr::new("2026"), OsStr::new("11"), OsStr::new("18")]
    );
    assert_eq!(name, OsStr::new("s-1-a"));
    for bad in [
        "2026/11/18/x",
        "11/18/x",
        "/c/2026/../18/x",
        "/c/2026/11/18/..",
    ] {
        assert!(split_copy_path(Path::new(bad)).is_err(), "{bad}");
    }
}

/// The report of one copy of `bytes` to `path`, written by a fresh writer.
fn copy_once(path: &Path, bytes: &[u8]) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    let copier = FileCopier::spawn(0, tx, Box::new(|| {})).expect("spawn");
    let owner = Owner {
        slot: 0,
        generation: 1,
    };
    let id = copier.new_id();
    copier
        .try_send(Chunk {
            id,
            target: Some(Box::new(Target {
                owner,
                path: path.to_path_buf(),
            })),
            bytes: bytes.to_vec(),
            end: End::Finish,
        })
        .expect("send");
    let mut reports = collect(&rx, 1);
    drop(copier);
    reports.remove(0).result
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).expect("read_dir").next().is_none()
}

#[test]
fn a_copy_directory_that_does_not_exist_is_created() {
    // A reload may name a new directory; the worker made only the old one at start.
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("new/copies");
    let path = copy_path(&root, SystemTime::now(), "s", 1, b"a.bin");
    assert_eq!(
        copy_once(&path, b"new").as_deref(),
        Ok(path.to_str().expect("utf-8"))
    );
    assert_eq!(fs::read(&path).expect("read"), b"new");
}

#[test]
fn a_symbolic_link_in_the_dated_layout_fails_the_copy_and_writes_nothing_outside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let path = copy_path(dir.path(), SystemTime::now(), "s", 1, b"a.bin");
    let day_dir = path.parent().expect("day");
    let month_dir = day_dir.parent().expect("month");
    let year_dir = month_dir.parent().expect("year");
    let inside = |p: &Path| {
        p.strip_prefix(dir.path())
            .expect("inside")
            .display()
            .to_string()
    };

    // The day directory is a link.
    fs::create_dir_all(month_dir).expect("mkdir");
    std::os::unix::fs::symlink(outside.path(), day_dir).expect("symlink");
    let reason = copy_once(&path, b"x").expect_err("refused");
    assert_eq!(
        reason,
        format!(
            "cannot create {}: a symbolic link was found at {} in the copy directory; \
             copies are never written through one",
            path.display(),
            inside(day_dir)
        )
    );
    assert!(is_empty_dir(outside.path()));

    // The year directory is a link: nothing is created through it either.
    fs::remove_dir_all(year_dir).expect("rm");
    std::os::unix::fs::symlink(outside.path(), year_dir).expect("symlink");
    let reason = copy_once(&path, b"x").expect_err("refused");
    assert!(
        reason.contains(&format!(
            "a symbolic link was found at {} ",
            inside(year_dir)
        )),
        "{reason}"
    );
    assert!(is_empty_dir(outside.path()));

    // A link planted as the copy's own name, dangling or not.
    fs::remove_file(year_dir).expect("rm");
    fs::create_dir_all(day_dir).expect("mkdir");
    let victim = outside.path().join("victim");
    std::os::unix::fs::symlink(&victim, &path).expect("symlink");
    let reason = copy_once(&path, b"x").expect_err("refused");
    assert!(
        reason.contains(&format!("a symbolic link was found at {} ", inside(&path))),
        "{reason}"
    );
    assert!(
        is_empty_dir(outside.path()),
        "the dangling link's target was created"
    );
    fs::write(&victim, b"keep").expect("write");
    assert!(copy_once(&path, b"x").is_err());
    assert_eq!(fs::read(&victim).expect("read"), b"keep");

    // Once the link is gone, the copy is written.
    fs::remove_file(&path).expect("rm");
    assert_eq!(
        copy_once(&path, b"fine").as_deref(),
        Ok(path.to_str().expect("utf-8"))
    );
    assert_eq!(fs::read(&path).expect("read"), b"fine");
}

fn collect(rx: &mpsc::Receiver<Report>, n: usize) -> Vec<Report> {
    (0..n)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("report"))
        .collect()
}

#[test]
fn the_writer_stores_chunks_and_reports_each_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tx, rx) = mpsc::channel();
    let copier = FileCopier::spawn(0, tx, Box::new(|| {})).expect("spawn");
    let owner = Owner {
        slot: 1,
        generation: 2,
    };
    let path = copy_path(dir.path(), SystemTime::now(), "s", 1, b"a.bin");
    let id = copier.new_id();
    copier
        .try_send(Chunk {
            id,
            target: Some(Box::new(Target {
                owner,
                path: path.clone(),
            })),
            bytes: b"hello ".to_vec(),
            end: End::More,
        })
        .expect("send");
    copier
        .try_send(Chunk {
            id,
            target: None,
            bytes: b"world".to_vec(),
            end: End::Finish,
        })
        .expect("send");
    // The same name again: never overwritten.
    let again = copier.new_id();
    copier.send_or_queue(Chunk {
        id: again,
        target: Some(Box::new(Target {
            owner,
            path: path.clone(),
        })),
        bytes: b"x".to_vec(),
        end: End::Abandon,
    });
    let reports = collect(&rx, 2);
    assert_eq!(reports[0].id, id);
    assert_eq!(reports[0].owner, owner);
    assert_eq!(
        reports[0].result.as_deref(),
        Ok(path.to_str().expect("utf-8"))
    );
    assert_eq!(reports[1].id, again);
    assert!(reports[1].result.is_err());
    drop(copier);
    assert_eq!(fs::read(&path).expect("read"), b"hello world");
    let mode = fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    let day_dir = path.parent().expect("parent");
    let mode = fs::metadata(day_dir).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o750 & !umask_bits());
}

/// The process umask, read without changing it (from /proc).
fn umask_bits() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

#[test]
fn a_copy_that_cannot_be_created_is_reported_and_its_chunks_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A regular file where the day directory should be.
    let path = copy_path(dir.path(), SystemTime::now(), "s", 1, b"a");
    let day_dir = path.parent().expect("parent");
    fs::create_dir_all(day_dir.parent().expect("month")).expect("mkdir");
    fs::write(day_dir, b"").expect("file");
    let (tx, rx) = mpsc::channel();
    let copier = FileCopier::spawn(0, tx, Box::new(|| {})).expect("spawn");
    let owner = Owner {
        slot: 0,
        generation: 1,
    };
    let id = copier.new_id();
    for (target, end) in [
        (
            Some(Box::new(Target {
                owner,
                path: path.clone(),
            })),
            End::More,
        ),
        (None, End::Finish),
    ] {
        copier
            .try_send(Chunk {
                id,
                target,
                bytes: vec![1; 10],
                end,
            })
            .expect("send");
    }
    let reports = collect(&rx, 1);
    assert!(reports[0].result.is_err(), "{:?}", reports[0]);
    drop(copier);
    assert!(rx.try_recv().is_err(), "one report per copy");
}
