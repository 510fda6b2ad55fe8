//! The few places where ftpgate calls the operating system directly.
//!
//! Everything `unsafe` in the crate lives here, each block with a SAFETY comment. Signal
//! handlers only set a flag and write one byte to a self-pipe that the event loop polls
//! (nginx's rule: no work inside a handler).

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Set by SIGTERM and SIGINT: stop accepting, drain, exit.
pub static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
/// Set by SIGHUP: reload the policy and reopen the audit file.
pub static RELOAD_REQUESTED: AtomicBool = AtomicBool::new(false);
/// Set by SIGCHLD in the supervisor.
pub static CHILD_EXITED: AtomicBool = AtomicBool::new(false);

static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    match signal {
        libc::SIGTERM | libc::SIGINT => STOP_REQUESTED.store(true, Ordering::SeqCst),
        libc::SIGHUP => RELOAD_REQUESTED.store(true, Ordering::SeqCst),
        libc::SIGCHLD => CHILD_EXITED.store(true, Ordering::SeqCst),
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

/// Installs the handlers for SIGTERM, SIGINT, SIGHUP and SIGCHLD and makes `wake` the pipe
/// they write to. `wake` must stay open for the life of the process.
pub fn install_signal_handlers(wake: &impl AsRawFd) -> io::Result<()> {
    WAKE_FD.store(wake.as_raw_fd(), Ordering::SeqCst);
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD] {
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
pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub use libc::{SIGHUP, SIGKILL, SIGTERM};

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
    pub fn create_memfd(words: usize) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        let name = c"ftpgate-counters";
        // SAFETY: memfd_create takes a valid NUL-terminated name and flags; the returned
        // descriptor is checked and then owned by the OwnedFd.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
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

/// Closes a descriptor this process inherited and no longer needs.
pub fn close_fd(fd: i32) {
    // SAFETY: close(2) on a plain descriptor number; an invalid one only returns EBADF.
    unsafe {
        libc::close(fd);
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
