//! The few places where ftpgate calls the operating system directly.
//!
//! Everything `unsafe` in the crate lives here, each block with a SAFETY comment. Signal
//! handlers only set a flag and write one byte to a self-pipe that the event loop polls
//! (nginx's rule: no work inside a handler).

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

pub mod splice;

/// Set by SIGTERM and SIGINT: stop accepting, drain, exit.
pub static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
/// SIGTERM/SIGINT received so far: a second one means stop at once, without draining.
pub static STOP_SIGNALS: AtomicU32 = AtomicU32::new(0);
/// Set by SIGHUP: reload the policy and reopen the audit file.
pub static RELOAD_REQUESTED: AtomicBool = AtomicBool::new(false);
/// Set by SIGUSR1: log one line of the worker's resource counts (sessions, timers,
/// buffers), for operators and for the tests that measure the bounds.
pub static STATS_REQUESTED: AtomicBool = AtomicBool::new(false);
/// Set by SIGUSR2: reopen the audit file (logrotate's postrotate) without reloading the
/// policy.
pub static REOPEN_REQUESTED: AtomicBool = AtomicBool::new(false);
/// Set by SIGCHLD in the supervisor.
pub static CHILD_EXITED: AtomicBool = AtomicBool::new(false);

static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    match signal {
        libc::SIGTERM | libc::SIGINT => {
            STOP_SIGNALS.fetch_add(1, Ordering::SeqCst);
            STOP_REQUESTED.store(true, Ordering::SeqCst)
        }
        libc::SIGHUP => RELOAD_REQUESTED.store(true, Ordering::SeqCst),
        libc::SIGCHLD => CHILD_EXITED.store(true, Ordering::SeqCst),
        libc::SIGUSR1 => STATS_REQUESTED.store(true, Ordering::SeqCst),
        libc::SIGUSR2 => REOPEN_REQUESTED.store(true, Ordering::SeqCst),
        _ => {}
    }
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; `fd` is the non-blocking write end of the
        // self-pipe, kept open for the life of the process; the buffer is a live local byte.
        // A full pipe (EAGAIN) is fine: the loop is already due to wake up.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
}

/// Installs the handlers for SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 and SIGCHLD and makes
/// `wake` the pipe they write to. `wake` must stay open for the life of the process.
pub fn install_signal_handlers(wake: &impl AsRawFd) -> io::Result<()> {
    WAKE_FD.store(wake.as_raw_fd(), Ordering::SeqCst);
    for signal in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGCHLD,
    ] {
        // SAFETY: `action` is zero-initialised (a valid sigaction), then given a handler of
        // the right type and an empty mask; sigaction(2) copies it. SA_RESTART keeps
        // blocking calls of std from failing with EINTR.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid, exclusively borrowed `limit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the valid `limit`; raising soft up to hard is permitted.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// Asks the kernel to send SIGTERM to this process when its parent (the supervisor) dies,
/// so workers never outlive it.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to process `pid`.
/// Bytes written to the TCP socket `fd` that its peer has not acknowledged yet (SIOCOUTQ):
/// what a relay wrote minus this is what the peer has taken. None when the kernel will not
/// say.
pub fn unacknowledged_bytes(fd: &impl AsRawFd) -> Option<u64> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one c_int through the pointer, which points at a
    // live local of that type; the descriptor is borrowed, so it stays open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    (rc == 0).then(|| u64::try_from(queued).unwrap_or(0))
}

pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub use libc::{SIGHUP, SIGKILL, SIGTERM, SIGUSR1, SIGUSR2};

/// The host name (gethostname(2)), for the HOSTNAME field of syslog messages; `None` when it
/// cannot be read or is not UTF-8.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the valid, exclusively
    // borrowed buffer; a name that does not fit may be left without its NUL, which is why the
    // length is searched below within the buffer only.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf.get(..len)?.to_vec()).ok()
}

/// Fills `buf` with random bytes from the kernel (getrandom(2), the urandom source: it
/// blocks only at early boot, until the kernel's pool is initialised).
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    // Bounded: each call returns at least one byte or fails; EINTR is retried a few times.
    let mut interrupted = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into the valid, exclusively
        // borrowed buffer `rest`; the result is checked below.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted && interrupted < 16 {
                interrupted += 1;
                continue;
            }
            return Err(error);
        }
        if n == 0 {
            return Err(io::Error::other("getrandom returned no bytes"));
        }
        filled += n as usize;
    }
    Ok(())
}

/// 128 random bits from the kernel, as two words (a per-boot secret key).
pub fn random_key() -> io::Result<[u64; 2]> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes)?;
    let mut k0 = [0u8; 8];
    let mut k1 = [0u8; 8];
    k0.copy_from_slice(&bytes[..8]);
    k1.copy_from_slice(&bytes[8..]);
    Ok([u64::from_le_bytes(k0), u64::from_le_bytes(k1)])
}

/// Kernel randomness for frequent small draws (passive ports): read
/// [`RANDOM_BUFFER_BYTES`](crate::limits::RANDOM_BUFFER_BYTES) at a time, so that a PASV
/// costs no system call most of the time.
pub struct RandomSource {
    buf: [u8; crate::limits::RANDOM_BUFFER_BYTES],
    used: usize,
}

impl Default for RandomSource {
    fn default() -> Self {
        RandomSource::new()
    }
}

impl RandomSource {
    /// An empty source: the first draw reads the kernel.
    pub fn new() -> RandomSource {
        RandomSource {
            buf: [0; crate::limits::RANDOM_BUFFER_BYTES],
            used: crate::limits::RANDOM_BUFFER_BYTES,
        }
    }

    pub fn next_u64(&mut self) -> io::Result<u64> {
        if self.used + 8 > self.buf.len() {
            fill_random(&mut self.buf)?;
            self.used = 0;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.buf[self.used..self.used + 8]);
        // Used bytes are wiped: a later look at this memory does not tell past draws.
        self.buf[self.used..self.used + 8].fill(0);
        self.used += 8;
        Ok(u64::from_le_bytes(word))
    }

    /// A uniform number in `0..n` (`n` > 0; 0 for `n` == 0).
    pub fn below(&mut self, n: u64) -> io::Result<u64> {
        if n <= 1 {
            return Ok(0);
        }
        // Rejection sampling: only draws below the largest multiple of n are used. A draw
        // is rejected with probability < n / 2^64, so the bound is never reached in practice.
        let zone = u64::MAX - u64::MAX % n;
        let mut x = self.next_u64()?;
        for _ in 0..8 {
            if x < zone {
                break;
            }
            x = self.next_u64()?;
        }
        Ok(x % n)
    }
}

/// Memory shared by the worker processes (see `counters`), viewed as 64-bit atomics.
///
/// The supervisor creates it as a memfd that the workers inherit; a single worker without a
/// supervisor uses plain heap memory. Either way the words are only ever touched through
/// atomic operations.
#[derive(Clone)]
pub struct SharedRegion {
    backing: std::rc::Rc<Backing>,
}

enum Backing {
    Heap(Box<[std::sync::atomic::AtomicU64]>),
    Mapped {
        ptr: *mut std::sync::atomic::AtomicU64,
        words: usize,
    },
}

impl Drop for Backing {
    fn drop(&mut self) {
        if let Backing::Mapped { ptr, words } = *self {
            // SAFETY: `ptr` and the length come from one successful mmap of exactly
            // `words * 8` bytes, unmapped only here, once, when the last view is dropped.
            unsafe {
                libc::munmap(ptr.cast(), words * 8);
            }
        }
    }
}

impl SharedRegion {
    /// Zeroed private memory of `words` words.
    pub fn heap(words: usize) -> SharedRegion {
        let backing = (0..words)
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect();
        SharedRegion {
            backing: std::rc::Rc::new(Backing::Heap(backing)),
        }
    }

    /// An anonymous shared mapping (inherited by fork; used by tests).
    pub fn anonymous_shared(words: usize) -> io::Result<SharedRegion> {
        Self::map(-1, words, libc::MAP_SHARED | libc::MAP_ANONYMOUS)
    }

    /// Creates a memfd of `words` words for the workers to map; the descriptor is
    /// inherited by child processes (no close-on-exec). Returns its number.
    pub fn create_memfd(words: usize) -> io::Result<OwnedFd> {
        let name = c"ftpgate-counters";
        // SAFETY: memfd_create takes a valid NUL-terminated name and flags; the returned
        // descriptor is checked and then owned by the OwnedFd.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let len = libc::off_t::try_from(words * 8)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: ftruncate on a descriptor we own, with a checked length.
        if unsafe { libc::ftruncate(fd, len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(owned)
    }

    /// Maps the supervisor's memfd `fd` (inherited), of `words` words.
    pub fn from_fd(fd: i32, words: usize) -> io::Result<SharedRegion> {
        Self::map(fd, words, libc::MAP_SHARED)
    }

    fn map(fd: i32, words: usize, flags: i32) -> io::Result<SharedRegion> {
        if words == 0 {
            return Ok(Self::heap(0));
        }
        // SAFETY: a fresh mapping chosen by the kernel (null hint) of `words * 8` bytes,
        // read-write, shared; failure is checked below. The memory is zero-filled or comes
        // from the memfd, and is only ever accessed as AtomicU64 (same size and alignment
        // as u64; mmap returns page-aligned memory).
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                words * 8,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedRegion {
            backing: std::rc::Rc::new(Backing::Mapped {
                ptr: ptr.cast(),
                words,
            }),
        })
    }

    /// Another view of the same memory.
    pub fn clone_mapping(&self) -> SharedRegion {
        self.clone()
    }

    pub fn words(&self) -> &[std::sync::atomic::AtomicU64] {
        match &*self.backing {
            Backing::Heap(words) => words,
            // SAFETY: the mapping is live while `self.backing` is (it is unmapped only when
            // the last Rc drops), is `words` AtomicU64 long and suitably aligned, and every
            // access through the slice is atomic, so other processes writing the same memory
            // concurrently is not a data race.
            Backing::Mapped { ptr, words } => unsafe { std::slice::from_raw_parts(*ptr, *words) },
        }
    }
}

/// Lets `fd` survive `exec` (clears close-on-exec), for a descriptor a re-executed worker
/// inherits on purpose (the supervisor's notification socket).
pub fn set_inheritable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl(2) F_GETFD/F_SETFD on a descriptor kept open by the borrow; only the
    // FD_CLOEXEC bit of its flags is changed.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes ownership of the datagram socket `fd` that the supervisor passed down
/// (`--notify-fd`), after checking that it is an open socket; close-on-exec is set again
/// so that nothing this process starts inherits it.
pub fn inherited_datagram(fd: i32) -> io::Result<std::os::unix::net::UnixDatagram> {
    // SAFETY: fstat(2) into a zeroed stat buffer of the right type; an invalid descriptor
    // only returns EBADF.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a socket"),
        ));
    }
    // SAFETY: `fd` is an open socket (checked above) that this process inherited for this
    // purpose and that nothing else in the process owns.
    let socket = unsafe { std::os::unix::net::UnixDatagram::from_raw_fd(fd) };
    // SAFETY: fcntl(2) F_SETFD on the descriptor `socket` now owns.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(socket)
}

/// CLOCK_MONOTONIC in microseconds: the `MONOTONIC_USEC=` that systemd wants with
/// `RELOADING=1` (std's `Instant` reads the same clock but does not show its value).
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec into the live local `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec.unsigned_abs() * 1_000_000 + ts.tv_nsec.unsigned_abs() / 1_000
}

/// Closes a descriptor this process inherited and no longer needs.
pub fn close_fd(fd: i32) {
    // SAFETY: close(2) on a plain descriptor number; an invalid one only returns EBADF.
    unsafe {
        libc::close(fd);
    }
}

/// The effective user id of this process: the owner the policy's files may have besides root.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

// ---------------------------------------------------------------------------------------------
// Privileges

/// The uid and primary gid of the account `name` (getpwnam_r(3)); `None` if there is none.
pub fn lookup_user(name: &str) -> io::Result<Option<(u32, u32)>> {
    let c_name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a user name"))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-parameter (plain integers and null pointers).
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r writes the entry into `entry`, its strings into `buf` (whose length
    // it is given) and `&entry` or null into `found`; every pointer outlives the call and
    // nothing but the two integer fields is read afterwards.
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if found.is_null() {
        return Ok(None);
    }
    Ok(Some((entry.pw_uid, entry.pw_gid)))
}

/// Gives up root for good: the supplementary groups become `gid` alone, then the group and
/// user ids (real, effective and saved) become `gid` and `uid`. A process that changes its
/// uids away from 0 loses every capability (permitted, effective, ambient); no-new-privs
/// keeps an exec from bringing any back. Verified: the call fails if root can be regained.
pub fn drop_privileges(uid: u32, gid: u32) -> io::Result<()> {
    let groups = [gid as libc::gid_t];
    // SAFETY: setgroups(2) reads `groups.len()` ids from a live local array.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setresgid(2)/setresuid(2) take plain integers. The group first: once the uid
    // is not 0 any more, the group could not be changed.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integers and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: setuid(2) with a plain integer; it must fail now.
    if uid != 0 && unsafe { libc::setuid(0) } == 0 {
        return Err(io::Error::other("root could be regained after dropping it"));
    }
    Ok(())
}

/// Takes over listening socket `fd`, inherited from the supervisor, as a non-blocking
/// listener. Refuses a descriptor that is not a socket.
pub fn inherited_listener(fd: i32) -> io::Result<std::net::TcpListener> {
    // SAFETY: fstat(2) into a zeroed stat buffer of the right type; an invalid descriptor
    // only returns EBADF.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a socket"),
        ));
    }
    // SAFETY: `fd` is an open socket this process inherited for this purpose and nobody
    // else in the process owns it: the listener takes it over (and closes it).
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

// ---------------------------------------------------------------------------------------------
// Files through directory descriptors (the filecopy writer and its retention)
//
// SECURITY: every name given to these wrappers is one path component: no `/` (which would
// make the kernel walk further, through whatever symbolic links it meets), no NUL, not empty,
// not `.` or `..`. Directories are opened with O_DIRECTORY | O_NOFOLLOW and files created with
// O_CREAT | O_EXCL | O_NOFOLLOW, so a symbolic link in the place of a directory or a file makes
// the call fail instead of being followed.

/// `name` as a C string, if it is a single path component.
fn component(name: &OsStr) -> io::Result<CString> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a single file name"),
        ));
    }
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte"))
}

/// A descriptor returned by a system call, owned; or the call's error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by a successful call that created it; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens the directory at `path`. Symbolic links in `path` are followed: it is the operator's
/// path (the copy root), not one built from anything a client sent.
pub fn open_dir(path: &std::path::Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)?;
    Ok(OwnedFd::from(file))
}

/// Opens the subdirectory `name` of `dir`; fails (ELOOP) when `name` is a symbolic link and
/// (ENOTDIR) when it is not a directory.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let name = component(name)?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: openat(2) with a live directory descriptor, a valid NUL-terminated name and no
    // mode (O_CREAT is not set); the result is checked by `owned`.
    owned(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// Creates the directory `name` in `dir` with `mode` (less the umask).
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let name = component(name)?;
    // SAFETY: mkdirat(2) with a live directory descriptor and a valid NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })
}

/// Creates the file `name` in `dir` for writing, with `mode` (less the umask): never an
/// existing file, never through a symbolic link (EEXIST for both).
pub fn create_file_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<std::fs::File> {
    let name = component(name)?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: openat(2) with a live directory descriptor, a valid NUL-terminated name, and the
    // mode argument that O_CREAT requires (passed as the variadic unsigned int it promotes to).
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode as libc::c_uint) };
    owned(fd).map(std::fs::File::from)
}

/// What an entry of a directory is, its link not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// The type and modification time of an entry, as fstatat(2) with AT_SYMLINK_NOFOLLOW sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryStat {
    pub kind: EntryKind,
    pub modified: std::time::SystemTime,
}

/// The entry `name` of `dir`, a symbolic link described as itself.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<EntryStat> {
    let name = component(name)?;
    // SAFETY: `stat` is plain old data for which all-zero bytes are a valid value.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstatat(2) with a live directory descriptor and a valid NUL-terminated name
    // writes into the valid, exclusively borrowed `stat`.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut stat,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    let kind = match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => EntryKind::File,
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    let nanos = u32::try_from(stat.st_mtime_nsec).unwrap_or(0);
    let modified = match u64::try_from(stat.st_mtime) {
        Ok(secs) => std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos),
        Err(_) => {
            let before = std::time::Duration::from_secs(stat.st_mtime.unsigned_abs());
            std::time::UNIX_EPOCH
                .checked_sub(before)
                .unwrap_or(std::time::UNIX_EPOCH)
        }
    };
    Ok(EntryStat { kind, modified })
}

/// Removes the entry `name` of `dir` that is not a directory (a symbolic link itself, never
/// what it points to).
pub fn remove_file_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let name = component(name)?;
    // SAFETY: unlinkat(2) with a live directory descriptor and a valid NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })
}

/// Removes the subdirectory `name` of `dir` if it is empty (ENOTEMPTY otherwise, ENOTDIR for
/// anything that is not a directory, a symbolic link included).
pub fn remove_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let name = component(name)?;
    // SAFETY: unlinkat(2) with a live directory descriptor and a valid NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
}

/// The names in an open directory (readdir(3) over a descriptor), `.` and `..` left out.
pub struct DirStream {
    dir: std::ptr::NonNull<libc::DIR>,
}

impl DirStream {
    /// Reads the directory open at `fd`, which the stream takes over.
    pub fn from_fd(fd: OwnedFd) -> io::Result<DirStream> {
        // SAFETY: fdopendir(3) on a live descriptor we own; on success the stream owns it
        // (closedir closes it), so ownership is given up only then.
        let dir = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        match std::ptr::NonNull::new(dir) {
            Some(dir) => {
                let _ = fd.into_raw_fd();
                Ok(DirStream { dir })
            }
            None => Err(io::Error::last_os_error()),
        }
    }

    /// The subdirectory `name` of `dir`, never through a symbolic link (see [`open_dir_at`]).
    pub fn open_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<DirStream> {
        DirStream::from_fd(open_dir_at(dir, name)?)
    }

    /// The next name, `None` at the end (a read error ends the listing too: the callers only
    /// skip what they cannot see, and a later pass sees it).
    pub fn next_name(&mut self) -> Option<OsString> {
        loop {
            // SAFETY: the stream is open (closed only in Drop); readdir(3) returns null at the
            // end or on error, or an entry valid until the next readdir or closedir on this
            // stream, which cannot happen before the name is copied out below.
            let entry = unsafe { libc::readdir(self.dir.as_ptr()) };
            if entry.is_null() {
                return None;
            }
            // SAFETY: `entry` is a live dirent (above); d_name is NUL-terminated within it.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes != b"." && bytes != b".." {
                return Some(OsString::from_vec(bytes.to_vec()));
            }
        }
    }
}

impl AsFd for DirStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: dirfd(3) on the open stream returns its descriptor, which stays open until
        // the stream is closed in Drop, so for no longer than this borrow of `self`.
        unsafe { BorrowedFd::borrow_raw(libc::dirfd(self.dir.as_ptr())) }
    }
}

impl Drop for DirStream {
    fn drop(&mut self) {
        // SAFETY: the stream was opened by fdopendir and is closed exactly once, here.
        unsafe {
            libc::closedir(self.dir.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_randomness_fills_and_differs() {
        let mut a = [0u8; 600];
        let mut b = [0u8; 600];
        fill_random(&mut a).expect("getrandom");
        fill_random(&mut b).expect("getrandom");
        assert_ne!(a, b);
        assert_ne!(random_key().expect("key"), random_key().expect("key"));
    }

    #[test]
    fn the_buffered_source_is_uniform_enough_and_refills() {
        let mut random = RandomSource::new();
        let mut seen = [0u32; 10];
        // More draws than one buffer holds: the source refills itself.
        for _ in 0..10_000 {
            let x = random.below(10).expect("draw");
            seen[x as usize] += 1;
        }
        for (value, count) in seen.iter().enumerate() {
            assert!(
                (800..1200).contains(count),
                "{value} drawn {count} times of 10000"
            );
        }
        assert_eq!(random.below(1).expect("draw"), 0);
        assert_eq!(random.below(0).expect("draw"), 0);
    }
}
