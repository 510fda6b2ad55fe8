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
//! directory.
//!
//! SECURITY: nothing inside the copy directory is followed. The writer opens the copy
//! directory itself (the operator's path) and then walks `YYYY`, `MM` and `DD` through
//! directory descriptors, each created with mkdirat(2) (mode 0750) and opened with
//! `O_DIRECTORY|O_NOFOLLOW` relative to the one before; the copy is created relative to the
//! day directory with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0640 (never an existing file, never
//! through a symbolic link). A symbolic link planted anywhere in the dated layout makes that
//! copy fail with a reason that says so (the transfer then gets the policy's `on_failure`
//! outcome), and nothing is written outside the copy directory. Retention lists and deletes
//! through directory descriptors too (unlinkat(2)), so it never follows a link out of it.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::audit::utc_date;
use crate::limits::{
    FILECOPY_QUEUE_BYTES, FILECOPY_QUEUE_MESSAGES, FILECOPY_RETENTION_BATCH,
    FILECOPY_RETENTION_LISTING, FILECOPY_SYNC_BYTES, MAX_FILECOPY_NAME,
};
use crate::os::{self, DirStream, EntryKind};

/// Mode of the dated directories (less the umask).
const DIR_MODE: u32 = 0o750;
/// Mode of a copy, exactly.
const COPY_MODE: u32 = 0o640;

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
    /// The day directory the copy is in, to fsync its entry at the end.
    dir: File,
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
            Ok((file, dir)) => {
                open.insert(
                    id,
                    OpenCopy {
                        owner: target.owner,
                        path: target.path,
                        file,
                        dir,
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

/// Creates the dated directories (0750) and the copy (0640) for a path made by
/// [`copy_path`], never through a symbolic link: returns the copy and its day directory.
fn create_copy(path: &Path) -> io::Result<(File, File)> {
    let (root, dated, name) = split_copy_path(path)?;
    match create_in(root, &dated, name) {
        // Another worker's retention pass removed an empty day directory in between.
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_in(root, &dated, name),
        other => other,
    }
}

/// `ROOT/YYYY/MM/DD/NAME` split into the copy directory, the three dated names and the
/// file name, each a plain name (never `..`, `.` or a root).
fn split_copy_path(path: &Path) -> io::Result<(&Path, [&OsStr; 3], &OsStr)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not DIRECTORY/YYYY/MM/DD/NAME", path.display()),
        )
    };
    let mut parts = [OsStr::new(""); 4];
    let mut rest = path;
    for part in parts.iter_mut().rev() {
        let mut components = rest.components();
        match components.next_back() {
            Some(Component::Normal(name)) => *part = name,
            _ => return Err(bad()),
        }
        rest = components.as_path();
    }
    let [year, month, day, name] = parts;
    if rest.as_os_str().is_empty() {
        return Err(bad());
    }
    Ok((rest, [year, month, day], name))
}

fn create_in(root: &Path, dated: &[&OsStr; 3], name: &OsStr) -> io::Result<(File, File)> {
    let mut dir = match os::open_dir(root) {
        // A copy directory that a reload named, or that was removed: made again, as the
        // worker makes it at start (the operator's path, checked by the policy loader).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(root)?;
            os::open_dir(root)?
        }
        other => other?,
    };
    let mut inside = PathBuf::new();
    for part in dated {
        inside.push(part);
        match os::mkdir_at(dir.as_fd(), part, DIR_MODE) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        dir = os::open_dir_at(dir.as_fd(), part)
            .map_err(|e| explain(dir.as_fd(), part, &inside, true, e))?;
    }
    inside.push(name);
    let file = os::create_file_at(dir.as_fd(), name, COPY_MODE)
        .map_err(|e| explain(dir.as_fd(), name, &inside, false, e))?;
    // Exactly 0640 whatever the umask.
    file.set_permissions(fs::Permissions::from_mode(COPY_MODE))?;
    Ok((file, File::from(dir)))
}

/// Why `name` in `dir` (at `inside` in the copy directory) could not be opened as a
/// directory (`want_dir`) or created as the copy: a symbolic link or something else in the
/// way is named as such; any other error is kept.
fn explain(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    inside: &Path,
    want_dir: bool,
    err: io::Error,
) -> io::Error {
    let inside = inside.display();
    let message = match os::stat_at(dir, name).map(|stat| stat.kind) {
        Ok(EntryKind::Symlink) => format!(
            "a symbolic link was found at {inside} in the copy directory; copies are never \
             written through one"
        ),
        Ok(EntryKind::Dir) if want_dir => return err,
        Ok(_) if want_dir => format!("{inside} in the copy directory is not a directory"),
        Ok(_) => format!("{inside} already exists in the copy directory"),
        Err(_) => return err,
    };
    io::Error::new(err.kind(), message)
}

/// fsyncs the copy and its directory entry.
fn finish_copy(copy: &OpenCopy) -> io::Result<()> {
    copy.file.sync_all()?;
    copy.dir.sync_all()
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
/// left alone), only regular files are deleted, and symbolic links are never followed: every
/// directory below `directory` is opened with `O_NOFOLLOW` relative to its parent's
/// descriptor and every deletion is an unlinkat(2) relative to its directory's descriptor.
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
    let Ok(mut root) = os::open_dir(directory).and_then(DirStream::from_fd) else {
        pass.finished = true;
        return pass;
    };
    for (year, year_name) in numbered(&mut root, 4, 0, 9999) {
        if year > cy {
            break;
        }
        let Ok(mut year_dir) = DirStream::open_at(root.as_fd(), &year_name) else {
            continue;
        };
        for (month, month_name) in numbered(&mut year_dir, 2, 1, 12) {
            if (year, month) > (cy, i64::from(cm)) {
                break;
            }
            let Ok(mut month_dir) = DirStream::open_at(year_dir.as_fd(), &month_name) else {
                continue;
            };
            for (day, day_name) in numbered(&mut month_dir, 2, 1, 31) {
                if (year, month, day) >= cutoff_date {
                    break;
                }
                let Ok(mut day_dir) = DirStream::open_at(month_dir.as_fd(), &day_name) else {
                    continue;
                };
                while let Some(name) = day_dir.next_name() {
                    if left == 0 {
                        return pass;
                    }
                    left -= 1;
                    let old = os::stat_at(day_dir.as_fd(), &name)
                        .is_ok_and(|stat| stat.kind == EntryKind::File && stat.modified < cutoff);
                    if old && os::remove_file_at(day_dir.as_fd(), &name).is_ok() {
                        pass.removed += 1;
                    }
                }
                drop(day_dir);
                let _ = os::remove_dir_at(month_dir.as_fd(), &day_name); // only when empty
            }
            drop(month_dir);
            if (year, month) < (cy, i64::from(cm)) {
                let _ = os::remove_dir_at(year_dir.as_fd(), &month_name);
            }
        }
        drop(year_dir);
        if year < cy {
            let _ = os::remove_dir_at(root.as_fd(), &year_name);
        }
    }
    pass.finished = true;
    pass
}

/// The names in `dir` made of exactly `digits` digits with a value in `min..=max`, sorted by
/// value, from the first [`FILECOPY_RETENTION_LISTING`] entries. Whether each is a directory
/// (and not a link to one) is settled when it is opened.
fn numbered(dir: &mut DirStream, digits: usize, min: i64, max: i64) -> Vec<(i64, OsString)> {
    let mut found = Vec::new();
    for _ in 0..FILECOPY_RETENTION_LISTING {
        let Some(name) = dir.next_name() else {
            break;
        };
        let Some(text) = name.to_str() else {
            continue;
        };
        if text.len() != digits || !text.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(value) = text.parse::<i64>() {
            if (min..=max).contains(&value) {
                found.push((value, name));
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests;
