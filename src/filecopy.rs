//! The `filecopy` audit mode: a copy of every transferred file, in both directions, under
//! `DIRECTORY/YYYY/MM/DD/<session>-<n>-<name>`, and the retention that deletes old copies.
//!
//! The event loop never touches the disk. Each worker has one writer thread (not one per
//! session) — the only thread besides the event loop — fed through a bounded channel of owned
//! chunks: a relay copies the bytes it has just written to its sink into a chunk and hands
//! it over. The bytes queued for the writer are bounded ([`FILECOPY_QUEUE_BYTES`]); when
//! the queue is full, a relay keeps its chunk and stops reading its source until the writer
//! drains (backpressure on that relay only; bytes are never dropped). The writer reports
//! the outcome of every copy (the path, or why it failed) back through a second channel and
//! a wake-up of the event loop. Retention passes run on the writer thread too: they are
//! disk work, and running them between copies also orders them with the writer's own
//! directory creation.
//!
//! SECURITY: the file name comes from the client's argument. Only its last path segment
//! is used, every byte outside `[A-Za-z0-9._-]` becomes `_`, leading dots are stripped and
//! the result is cut to [`MAX_FILECOPY_NAME`] bytes ([`copy_name`]): no `/`, NUL, control
//! byte, `.` or `..` can reach the file system, so a copy cannot land outside its dated
//! directory. Copies are created with `O_CREAT|O_EXCL|O_NOFOLLOW` (never an existing file,
//! never through a symbolic link) and mode 0640; directories with mode 0750.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::audit::utc_date;
use crate::limits::{
    FILECOPY_QUEUE_BYTES, FILECOPY_QUEUE_MESSAGES, FILECOPY_RETENTION_BATCH, FILECOPY_SYNC_BYTES,
    MAX_FILECOPY_NAME,
};

/// The session a copy belongs to: its slot in the reactor and the slot's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub slot: usize,
    pub generation: u64,
}

/// The outcome of one copy, sent back to the event loop: the copy's path, or why it failed.
#[derive(Debug)]
pub struct Report {
    pub owner: Owner,
    pub id: u64,
    pub result: Result<String, String>,
}

/// How the message stream of one copy goes on after a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// More chunks follow.
    More,
    /// The transfer ended well: fsync the copy and report.
    Finish,
    /// The transfer failed or was aborted: keep what was copied (fsynced), nobody waits.
    Abandon,
}

/// Where a copy goes; travels with its first chunk.
#[derive(Debug)]
pub struct Target {
    pub owner: Owner,
    pub path: PathBuf,
}

/// Bytes of one copy, in order.
#[derive(Debug)]
pub struct Chunk {
    pub id: u64,
    /// Set on the first chunk of a copy only: the writer creates the file then.
    pub target: Option<Box<Target>>,
    pub bytes: Vec<u8>,
    pub end: End,
}

enum Message {
    Chunk(Chunk),
    Retention { directory: PathBuf, days: u32 },
}

/// Why a chunk did not go to the writer.
#[derive(Debug)]
pub enum SendError {
    /// The queue is full: keep the chunk and try again later.
    Busy(Chunk),
    /// The writer thread is gone (it cannot be: it only ends when the worker drops it).
    Broken,
}

/// Called by the writer after each report, to wake the event loop.
pub type Notify = Box<dyn Fn() + Send>;

/// The event loop's side of the writer thread of one worker.
pub struct FileCopier {
    tx: Option<SyncSender<Message>>,
    /// Chunk bytes sent and not yet written by the writer.
    in_flight: Arc<AtomicUsize>,
    /// Messages that must not wait in a relay (the last chunk of an aborted transfer) and
    /// found the channel full; sent before anything else on the next turn.
    backlog: RefCell<VecDeque<Message>>,
    next_id: Cell<u64>,
    thread: Option<JoinHandle<()>>,
}

impl FileCopier {
    /// Starts the writer thread of a worker. `reports` and `notify` carry each copy's
    /// outcome back to the event loop.
    pub fn spawn(worker: usize, reports: Sender<Report>, notify: Notify) -> io::Result<FileCopier> {
        let (tx, rx) = mpsc::sync_channel(FILECOPY_QUEUE_MESSAGES);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&in_flight);
        let thread = std::thread::Builder::new()
            .name(format!("filecopy-{worker}"))
            .spawn(move || run_writer(rx, &counter, &reports, &notify))?;
        Ok(FileCopier {
            tx: Some(tx),
            in_flight,
            backlog: RefCell::new(VecDeque::new()),
            next_id: Cell::new(0),
            thread: Some(thread),
        })
    }

    /// A new copy identifier, unique in this worker.
    pub fn new_id(&self) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }

    /// Hands a chunk to the writer unless the queue is full (bytes or messages) or older
    /// messages wait in the backlog: then the caller keeps it and stops reading its source.
    pub fn try_send(&self, chunk: Chunk) -> Result<(), SendError> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(SendError::Broken);
        };
        let len = chunk.bytes.len();
        let queued = self.in_flight.load(Ordering::Acquire);
        // An empty queue takes any chunk, so a relay always makes progress.
        let full = queued > 0 && queued.saturating_add(len) > FILECOPY_QUEUE_BYTES;
        if full || !self.backlog.borrow().is_empty() {
            return Err(SendError::Busy(chunk));
        }
        self.in_flight.fetch_add(len, Ordering::AcqRel);
        match tx.try_send(Message::Chunk(chunk)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(message)) => {
                self.in_flight.fetch_sub(len, Ordering::AcqRel);
                match message {
                    Message::Chunk(chunk) => Err(SendError::Busy(chunk)),
                    Message::Retention { .. } => Err(SendError::Broken),
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.in_flight.fetch_sub(len, Ordering::AcqRel);
                Err(SendError::Broken)
            }
        }
    }

    /// Hands a chunk to the writer now or, when the queue is full, as soon as it has room
    /// (the last chunk of a transfer that ended badly: no relay is left to hold it).
    pub fn send_or_queue(&self, chunk: Chunk) {
        self.in_flight
            .fetch_add(chunk.bytes.len(), Ordering::AcqRel);
        self.backlog.borrow_mut().push_back(Message::Chunk(chunk));
        self.flush_backlog();
    }

    /// Sends what waits in the backlog, in order, as far as the channel takes it.
    pub fn flush_backlog(&self) {
        let Some(tx) = self.tx.as_ref() else {
            return;
        };
        let mut backlog = self.backlog.borrow_mut();
        while let Some(message) = backlog.pop_front() {
            match tx.try_send(message) {
                Ok(()) => {}
                Err(TrySendError::Full(message)) => {
                    backlog.push_front(message);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    log::error!(
                        "the filecopy writer is gone; {} copies lost",
                        backlog.len() + 1
                    );
                    backlog.clear();
                    return;
                }
            }
        }
    }

    /// Messages waiting for room in the channel.
    pub fn backlog_len(&self) -> usize {
        self.backlog.borrow().len()
    }

    /// Asks the writer for one retention pass: copies under `directory` older than `days`
    /// days are deleted, at most [`FILECOPY_RETENTION_BATCH`] entries looked at. Skipped
    /// when the queue is full (the next tick asks again).
    pub fn retention(&self, directory: &Path, days: u32) {
        if let Some(tx) = self.tx.as_ref() {
            let _ = tx.try_send(Message::Retention {
                directory: directory.to_path_buf(),
                days,
            });
        }
    }
}

impl Drop for FileCopier {
    /// The worker is stopping: what is queued is written and fsynced before it exits.
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            for message in self.backlog.get_mut().drain(..) {
                if tx.send(message).is_err() {
                    break;
                }
            }
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the filecopy writer panicked");
            }
        }
    }
}

/// A copy being written.
struct OpenCopy {
    owner: Owner,
    path: PathBuf,
    file: File,
    /// Bytes written since the last `fdatasync`.
    unsynced: usize,
}

fn run_writer(
    rx: Receiver<Message>,
    in_flight: &AtomicUsize,
    reports: &Sender<Report>,
    notify: &Notify,
) {
    let mut open: HashMap<u64, OpenCopy> = HashMap::new();
    let report = |owner: Owner, id: u64, result: Result<String, String>| {
        if reports.send(Report { owner, id, result }).is_ok() {
            notify();
        }
    };
    // Ends when the worker drops its sender (after every relay has ended).
    for message in rx {
        match message {
            Message::Chunk(chunk) => {
                let len = chunk.bytes.len();
                write_chunk(&mut open, chunk, &report);
                in_flight.fetch_sub(len, Ordering::AcqRel);
            }
            Message::Retention { directory, days } => {
                let pass = remove_expired(
                    &directory,
                    days,
                    SystemTime::now(),
                    FILECOPY_RETENTION_BATCH,
                );
                if pass.removed > 0 || !pass.finished {
                    log::info!(
                        "filecopy retention: {} copies older than {days} days deleted{}",
                        pass.removed,
                        if pass.finished {
                            ""
                        } else {
                            ", more next time"
                        }
                    );
                }
            }
        }
    }
    for (_, copy) in open.drain() {
        let _ = copy.file.sync_all();
    }
}

fn write_chunk(
    open: &mut HashMap<u64, OpenCopy>,
    chunk: Chunk,
    report: &impl Fn(Owner, u64, Result<String, String>),
) {
    let Chunk {
        id,
        target,
        bytes,
        end,
    } = chunk;
    if let Some(target) = target {
        match create_copy(&target.path) {
            Ok(file) => {
                open.insert(
                    id,
                    OpenCopy {
                        owner: target.owner,
                        path: target.path,
                        file,
                        unsynced: 0,
                    },
                );
            }
            Err(e) => {
                let reason = format!("cannot create {}: {e}", target.path.display());
                report(target.owner, id, Err(reason));
                return;
            }
        }
    }
    // A copy that failed earlier has no entry: what follows of it is dropped (reported).
    let Some(copy) = open.get_mut(&id) else {
        return;
    };
    copy.unsynced += bytes.len();
    // A long copy goes to the disk as it is written, not all at once at its end: the
    // kernel would otherwise hold it dirty (up to a tenth of the memory) and the final
    // fsync, which the client's final reply waits for, would write it all.
    let synced = if copy.unsynced >= FILECOPY_SYNC_BYTES {
        copy.unsynced = 0;
        copy.file
            .write_all(&bytes)
            .and_then(|()| copy.file.sync_data())
    } else {
        copy.file.write_all(&bytes)
    };
    if let Err(e) = synced {
        if let Some(copy) = open.remove(&id) {
            let reason = format!("cannot write {}: {e}", copy.path.display());
            report(copy.owner, id, Err(reason));
        }
        return;
    }
    if end == End::More {
        return;
    }
    if let Some(copy) = open.remove(&id) {
        let result = finish_copy(&copy)
            .map(|()| copy.path.to_string_lossy().into_owned())
            .map_err(|e| format!("cannot sync {}: {e}", copy.path.display()));
        report(copy.owner, id, result);
    }
}

/// Creates the dated directories (0750) and the copy (0640, never an existing file, never
/// through a symbolic link).
fn create_copy(path: &Path) -> io::Result<File> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no directory"))?;
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
    let file = match open() {
        // Another worker's retention pass removed an empty day directory in between.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new().recursive(true).mode(0o750).create(dir)?;
            open()?
        }
        other => other?,
    };
    // Exactly 0640 whatever the umask.
    file.set_permissions(fs::Permissions::from_mode(0o640))?;
    Ok(file)
}

/// fsyncs the copy and its directory entry.
fn finish_copy(copy: &OpenCopy) -> io::Result<()> {
    copy.file.sync_all()?;
    if let Some(dir) = copy.path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The path of a copy: `DIRECTORY/YYYY/MM/DD/<session>-<n>-<name>`, dated in UTC.
pub fn copy_path(directory: &Path, when: SystemTime, session: &str, n: u64, arg: &[u8]) -> PathBuf {
    let (year, month, day) = utc_date(when);
    let session = sanitise(session.as_bytes());
    directory
        .join(format!("{year:04}"))
        .join(format!("{month:02}"))
        .join(format!("{day:02}"))
        .join(format!("{session}-{n}-{}", copy_name(arg)))
}

/// The name part of a copy from the client's argument: its last path segment, bytes
/// outside `[A-Za-z0-9._-]` replaced by `_`, leading dots stripped, at most
/// [`MAX_FILECOPY_NAME`] bytes; `unnamed` when nothing is left.
pub fn copy_name(arg: &[u8]) -> String {
    let last = arg
        .rsplit(|&b| b == b'/')
        .find(|segment| !segment.is_empty())
        .unwrap_or(&[]);
    sanitise(last)
}

fn sanitise(bytes: &[u8]) -> String {
    let mapped: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                char::from(b)
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches('.');
    // ASCII only: any byte index is a character boundary.
    let name = trimmed
        .get(..trimmed.len().min(MAX_FILECOPY_NAME))
        .unwrap_or("");
    if name.is_empty() {
        "unnamed".to_owned()
    } else {
        name.to_owned()
    }
}

/// What one retention pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expired {
    pub removed: usize,
    /// The pass looked at everything old enough (false: it stopped at its budget).
    pub finished: bool,
}

/// Deletes copies under `directory` whose modification time is more than `days` days before
/// `now`, oldest dated directories first, looking at `budget` entries at most; empty dated
/// directories are removed. Only the dated layout is walked (`YYYY/MM/DD`, anything else is
/// left alone), only regular files are deleted, and symbolic links are never followed.
/// A day directory is looked at only once the cutoff has passed its whole day, and it (and
/// its month and year) is removed only then: the directories copies are being written to
/// (today's) are never touched.
pub fn remove_expired(directory: &Path, days: u32, now: SystemTime, budget: usize) -> Expired {
    let age = Duration::from_secs(u64::from(days) * 86_400);
    let cutoff = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
    let (cy, cm, cd) = utc_date(cutoff);
    let cutoff_date = (cy, i64::from(cm), i64::from(cd));
    let mut pass = Expired::default();
    let mut left = budget;
    for (year, year_dir) in numbered(directory, 4, 0, 9999) {
        if year > cy {
            break;
        }
        for (month, month_dir) in numbered(&year_dir, 2, 1, 12) {
            if (year, month) > (cy, i64::from(cm)) {
                break;
            }
            for (day, day_dir) in numbered(&month_dir, 2, 1, 31) {
                if (year, month, day) >= cutoff_date {
                    break;
                }
                let Ok(entries) = fs::read_dir(&day_dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    if left == 0 {
                        return pass;
                    }
                    left -= 1;
                    // DirEntry::metadata does not follow symbolic links.
                    let old = entry.metadata().is_ok_and(|m| {
                        m.file_type().is_file() && m.modified().is_ok_and(|t| t < cutoff)
                    });
                    if old && fs::remove_file(entry.path()).is_ok() {
                        pass.removed += 1;
                    }
                }
                let _ = fs::remove_dir(&day_dir); // only when empty
            }
            if (year, month) < (cy, i64::from(cm)) {
                let _ = fs::remove_dir(&month_dir);
            }
        }
        if year < cy {
            let _ = fs::remove_dir(&year_dir);
        }
    }
    pass.finished = true;
    pass
}

/// The subdirectories of `dir` named by exactly `digits` digits in `min..=max`, sorted.
fn numbered(dir: &Path, digits: usize, min: i64, max: i64) -> Vec<(i64, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(i64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            if name.len() != digits || !name.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let value: i64 = name.parse().ok()?;
            (min..=max).contains(&value).then(|| (value, e.path()))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
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
        remove_expired(dir.path(), 1, SystemTime::now(), 100);
        assert!(victim.exists());
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
}
