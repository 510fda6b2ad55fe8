//! The audit file: one `write` per line, followed by name (a file logrotate moved away or
//! deleted is replaced by a new one at the path, at most once per retry interval), a line
//! torn by a short write followed by a newline before the next one. What a failed write
//! means for the trail (loss counting, retries, refusing sessions) is `sink.rs`'s.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::sink::RETRY;

/// The audit file, followed by name.
pub(super) struct FileOut {
    pub(super) path: PathBuf,
    file: Option<File>,
    /// Device and inode of the open file.
    identity: Option<(u64, u64)>,
    pub(super) next_check: Instant,
    /// The last write stopped inside a line: the next one starts on a new line.
    torn: bool,
}

impl FileOut {
    pub(super) fn open(path: &Path, now: Instant) -> io::Result<FileOut> {
        let mut out = FileOut::closed(path, now);
        out.reopen()?;
        Ok(out)
    }

    /// The file at `path`, not open (yet): its channel starts broken and retries.
    pub(super) fn closed(path: &Path, now: Instant) -> FileOut {
        FileOut {
            path: path.to_path_buf(),
            file: None,
            identity: None,
            next_check: now + RETRY,
            torn: false,
        }
    }

    /// Opens the path afresh; the old file is closed either way.
    pub(super) fn reopen(&mut self) -> io::Result<()> {
        self.file = None;
        self.identity = None;
        let file = open_append(&self.path)?;
        let meta = file.metadata()?;
        self.identity = Some((meta.dev(), meta.ino()));
        self.file = Some(file);
        Ok(())
    }

    /// Reopens the path if it no longer names the open file (renamed or removed by
    /// logrotate), at most once per [`RETRY`]. Ok when nothing had to be done.
    pub(super) fn follow(&mut self, now: Instant) -> io::Result<()> {
        if now < self.next_check {
            return Ok(());
        }
        self.next_check = now + RETRY;
        self.follow_now()
    }

    pub(super) fn follow_now(&mut self) -> io::Result<()> {
        let current = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if self.file.is_some() && current.is_some() && current == self.identity {
            return Ok(());
        }
        if self.file.is_some() {
            log::info!(
                "audit file {} was moved or removed; continuing in a new file",
                self.path.display()
            );
        }
        self.reopen()
    }

    /// One `write` per line, so that the lines of several workers never interleave.
    pub(super) fn write_line(&mut self, json: &[u8], scratch: &mut Vec<u8>) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the audit file is not open",
            ));
        };
        let line = framed(json, self.torn, scratch);
        loop {
            match file.write(line) {
                Ok(n) if n == line.len() => {
                    self.torn = false;
                    return Ok(());
                }
                Ok(n) => {
                    self.torn |= n > 0;
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The JSON with its newline (and a newline before it after a torn line).
pub(super) fn framed<'s>(json: &[u8], torn: bool, scratch: &'s mut Vec<u8>) -> &'s [u8] {
    scratch.clear();
    if torn {
        scratch.push(b'\n');
    }
    scratch.extend_from_slice(json);
    scratch.push(b'\n');
    scratch
}

/// Opens the audit file for appending, creating it with mode 0640. O_NONBLOCK: a FIFO put
/// at the path fails at once (ENXIO) instead of blocking the worker until a reader comes;
/// on regular files it changes nothing.
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}
