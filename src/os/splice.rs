//! splice(2) and tee(2) through a pipe: the kernel moves a relay's pages from one socket to
//! the other without copying them into ftpgate (used for plaintext relays that need no look
//! at the bytes; see `session::splice_relay`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A non-blocking pipe: the kernel-side buffer of a spliced relay.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A pipe of (about) `size` bytes: the kernel rounds to pages and may refuse more than
    /// /proc/sys/fs/pipe-max-size, in which case the pipe keeps its default size.
    pub fn new(size: usize) -> io::Result<Pipe> {
        let mut fds = [-1 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created by pipe2 and nothing else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wanted = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int. A refusal (EPERM
        // above the system's maximum) leaves the default size, which is fine.
        unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, wanted) };
        // SAFETY: fcntl on a descriptor we own; F_GETPIPE_SZ takes no argument.
        let got = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let capacity = usize::try_from(got).unwrap_or(0);
        if capacity == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }

    /// The pipe's size in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn reader(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    pub fn writer(&self) -> BorrowedFd<'_> {
        self.write.as_fd()
    }

    /// Reads (consumes) up to `buf.len()` bytes from the pipe. WouldBlock when it is empty.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call and
            // the descriptor is ours.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(usize::try_from(n).unwrap_or(0));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Moves up to `len` bytes from `from` to `to` (one of them a pipe) without blocking.
/// Ok(0): `from` is at its end (a socket's peer shut its write side). WouldBlock: `from` has
/// nothing now or `to` is full.
pub fn splice(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    len: usize,
    more: bool,
) -> io::Result<usize> {
    let mut flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    if more {
        flags |= libc::SPLICE_F_MORE;
    }
    loop {
        // SAFETY: both descriptors are borrowed, so open for the call; null offsets mean
        // "the file position" (required for pipes and sockets). No memory is passed.
        let n = unsafe {
            libc::splice(
                from.as_raw_fd(),
                std::ptr::null_mut(),
                to.as_raw_fd(),
                std::ptr::null_mut(),
                len,
                flags,
            )
        };
        if n >= 0 {
            return Ok(usize::try_from(n).unwrap_or(0));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Duplicates up to `len` bytes at the head of pipe `from` into pipe `to` without consuming
/// them (the pages are shared, not copied). WouldBlock: `from` is empty or `to` is full.
pub fn tee(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: both descriptors are borrowed pipes, open for the call; no memory is passed.
        let n = unsafe {
            libc::tee(
                from.as_raw_fd(),
                to.as_raw_fd(),
                len,
                libc::SPLICE_F_NONBLOCK,
            )
        };
        if n >= 0 {
            return Ok(usize::try_from(n).unwrap_or(0));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_pipe_has_at_least_the_asked_size_when_allowed() {
        let pipe = Pipe::new(256 * 1024).expect("pipe");
        assert!(pipe.capacity() >= 64 * 1024, "{}", pipe.capacity());
    }

    #[test]
    fn splice_moves_bytes_through_the_pipe_and_tee_duplicates_them() {
        let (mut a, b) = UnixStream::pair().expect("pair");
        let (c, mut d) = UnixStream::pair().expect("pair");
        b.set_nonblocking(true).expect("nonblocking");
        let pipe = Pipe::new(64 * 1024).expect("pipe");
        let copy = Pipe::new(64 * 1024).expect("pipe");
        a.write_all(b"hello, pipe").expect("write");
        let n = splice(b.as_fd(), pipe.writer(), 1000, false).expect("splice in");
        assert_eq!(n, 11);
        assert_eq!(tee(pipe.reader(), copy.writer(), n).expect("tee"), 11);
        let out = splice(pipe.reader(), c.as_fd(), n, false).expect("splice out");
        assert_eq!(out, 11);
        let mut got = [0u8; 11];
        d.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello, pipe");
        let mut dup = [0u8; 32];
        let k = copy.read(&mut dup).expect("read copy");
        assert_eq!(&dup[..k], b"hello, pipe");
        // Nothing more: the source would block.
        let e = splice(b.as_fd(), pipe.writer(), 1000, false).expect_err("empty");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        drop(a);
        assert_eq!(
            splice(b.as_fd(), pipe.writer(), 1000, false).expect("eof"),
            0
        );
    }
}
