//! The spliced relay: for a plaintext transfer that needs no look at its bytes beyond the
//! SHA-256 (no TLS on either side, no filecopy, no rate limit), the kernel moves the pages
//! from the source socket into a pipe and from the pipe to the sink socket (splice(2)):
//! the bytes never enter ftpgate's memory, so the relay costs two system calls per pipe-full
//! instead of two copies of every byte.
//!
//! With `audit.digest` "sha256" the pipe's content is duplicated into a second pipe with
//! tee(2) (page references, not a copy) and read from there for the hash, as the bytes are
//! written to the sink: one copy (for the hash, which must read them anyway) instead of two.
//! The digest covers exactly the bytes written to the sink, as on the read/write path.
//!
//! The file size limit works as on the read/write path: a splice from the source takes at
//! most one byte more than the limit allows, and that byte proves the file too large.
//! [`MAX_RELAY_PIPES`] bounds the pipes of a worker; beyond it transfers take the read/write
//! path.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::AsFd;

use super::control::{Direction, Side};
use super::relay::{Pump, Relay};
use super::transport::Ending;
use crate::limits::{DIGEST_READ_BYTES, MAX_RELAY_PIPES, RELAY_PIPE_BYTES};
use crate::os::splice::{Pipe, splice, tee};

thread_local! {
    /// Spliced relays of this worker now (one worker is one thread of one process).
    static PIPES_IN_USE: Cell<usize> = const { Cell::new(0) };
    /// The buffer the digest reads the tee'd bytes into: one per worker, allocated at its
    /// first digest (a stack array would be zeroed, 64 KiB, at every write to the sink).
    static DIGEST_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The pipes of one spliced relay, counted toward [`MAX_RELAY_PIPES`] while they live.
pub struct Spliced {
    pipe: Pipe,
    /// Bytes in `pipe`, read from the source and not yet written to the sink.
    in_pipe: usize,
    /// The tee'd copy of `pipe` read for the digest (when there is one).
    hash: Option<Pipe>,
    /// Bytes in `hash` (written to the sink or still in `pipe`) not yet hashed.
    in_hash: usize,
}

impl Drop for Spliced {
    fn drop(&mut self) {
        PIPES_IN_USE.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Whether a relay with these properties may be spliced (the bytes need no look beyond the
/// optional digest).
pub fn eligible(tls: bool, copy: bool, rate_limited: bool) -> bool {
    !tls && !copy && !rate_limited
}

impl Spliced {
    /// The pipes of a new spliced relay (with a second one for the digest); `None` when the
    /// worker's pipes are all in use or the kernel refuses one (the read/write path then
    /// serves the transfer).
    pub fn new(digest: bool) -> Option<Spliced> {
        Spliced::with_cap(digest, MAX_RELAY_PIPES)
    }

    fn with_cap(digest: bool, cap: usize) -> Option<Spliced> {
        let taken = PIPES_IN_USE.with(|n| {
            if n.get() >= cap {
                false
            } else {
                n.set(n.get() + 1);
                true
            }
        });
        if !taken {
            return None;
        }
        let release = || PIPES_IN_USE.with(|n| n.set(n.get().saturating_sub(1)));
        let pipe = match Pipe::new(RELAY_PIPE_BYTES) {
            Ok(pipe) => pipe,
            Err(e) => {
                log::warn!("no pipe for a spliced relay ({e}): read/write path");
                release();
                return None;
            }
        };
        let hash = if digest {
            match Pipe::new(pipe.capacity()) {
                Ok(hash) if hash.capacity() >= pipe.capacity() => Some(hash),
                Ok(_) | Err(_) => {
                    release();
                    return None;
                }
            }
        } else {
            None
        };
        Some(Spliced {
            pipe,
            in_pipe: 0,
            hash,
            in_hash: 0,
        })
    }
}

/// Hashes `n` bytes from the tee'd pipe (they were just written to the sink).
fn hash_written(
    hash: &Pipe,
    in_hash: &mut usize,
    digest: &mut Option<Box<dyn rustls::crypto::hash::Context>>,
    n: usize,
) -> io::Result<()> {
    DIGEST_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < DIGEST_READ_BYTES {
            buf.resize(DIGEST_READ_BYTES, 0);
        }
        hash_into(hash, in_hash, digest, n, &mut buf[..DIGEST_READ_BYTES])
    })
}

/// [`hash_written`] through `buf`.
fn hash_into(
    hash: &Pipe,
    in_hash: &mut usize,
    digest: &mut Option<Box<dyn rustls::crypto::hash::Context>>,
    mut n: usize,
    buf: &mut [u8],
) -> io::Result<()> {
    while n > 0 {
        let want = n.min(buf.len());
        let got = hash.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(d) = digest.as_mut() {
            d.update(&buf[..got]);
        }
        n -= got;
        *in_hash = in_hash.saturating_sub(got);
    }
    Ok(())
}

/// [`super::relay::pump`] for a spliced relay.
pub fn pump_spliced(relay: &mut Relay, budget: &mut usize) -> Pump {
    let (source_side, sink_side) = relay.direction.sides();
    let mut progress = false;
    loop {
        if *budget == 0 {
            return if progress {
                Pump::Progress
            } else {
                Pump::Stalled
            };
        }
        let Relay {
            direction,
            client,
            server,
            spliced,
            digest,
            ..
        } = relay;
        let Some(sp) = spliced.as_mut() else {
            return Pump::Failed(source_side);
        };
        let (source, sink) = match direction {
            Direction::Download => (server, client),
            Direction::Upload => (client, server),
        };
        let mut moved = false;
        // Write what the pipe holds.
        while sp.in_pipe > 0 && sink.writable {
            let more = !relay.source_eof;
            match splice(sp.pipe.reader(), sink.stream.as_fd(), sp.in_pipe, more) {
                Ok(0) => return Pump::Failed(sink_side),
                Ok(n) => {
                    sp.in_pipe -= n;
                    relay.bytes += n as u64;
                    *budget = budget.saturating_sub(n);
                    moved = true;
                    if let Some(hash) = sp.hash.as_ref() {
                        if hash_written(hash, &mut sp.in_hash, digest, n).is_err() {
                            return Pump::Failed(source_side);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => sink.writable = false,
                Err(_) => return Pump::Failed(sink_side),
            }
        }
        if relay.source_eof && sp.in_pipe == 0 {
            return match sink.finish_writes() {
                Ok(true) => Pump::Done,
                Ok(false) if progress || moved => Pump::Progress,
                Ok(false) => Pump::Stalled,
                Err(_) => Pump::Failed(sink_side),
            };
        }
        // Read more when there is room. With a digest, only into an empty pipe: tee(2)
        // duplicates from the pipe's head, so each byte is tee'd exactly once.
        let room = sp.pipe.capacity().saturating_sub(sp.in_pipe);
        let may_fill = sp.hash.is_none() || sp.in_pipe == 0;
        if !relay.source_eof && source.readable && room > 0 && may_fill {
            let limit = match relay.max_bytes {
                Some(max) => usize::try_from(max.saturating_add(1).saturating_sub(relay.read))
                    .unwrap_or(usize::MAX),
                None => usize::MAX,
            };
            let take = room.min(limit);
            match splice(source.stream.as_fd(), sp.pipe.writer(), take, false) {
                Ok(0) => {
                    relay.source_eof = true;
                    relay.source_end = Some(Ending::Clean);
                    moved = true;
                }
                Ok(n) => {
                    sp.in_pipe += n;
                    relay.read += n as u64;
                    moved = true;
                    // SECURITY: the file size limit, as on the read/write path: nothing of
                    // this splice is written.
                    if relay.max_bytes.is_some_and(|max| relay.read > max) {
                        return Pump::OverLimit;
                    }
                    if let Some(hash) = sp.hash.as_ref() {
                        let mut teed = 0;
                        while teed < n {
                            match tee(sp.pipe.reader(), hash.writer(), n - teed) {
                                Ok(0) | Err(_) => return Pump::Failed(source_side),
                                Ok(k) => teed += k,
                            }
                        }
                        sp.in_hash += n;
                    }
                }
                // An empty pipe that cannot take anything means an empty socket; a pipe
                // with data may be out of page slots: the write above frees them.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if sp.in_pipe == 0 {
                        source.readable = false;
                    }
                }
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionReset
                        && source_side == Side::Server =>
                {
                    relay.source_eof = true;
                    relay.source_end = Some(Ending::Truncated);
                    moved = true;
                }
                Err(_) => return Pump::Failed(source_side),
            }
        }
        if !moved {
            return if progress {
                Pump::Progress
            } else {
                Pump::Stalled
            };
        }
        progress = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_uncopied_unlimited_relays_are_spliced() {
        assert!(eligible(false, false, false));
        assert!(!eligible(true, false, false));
        assert!(!eligible(false, true, false));
        assert!(!eligible(false, false, true));
    }

    #[test]
    fn the_pipe_cap_sends_transfers_to_the_read_write_path() {
        let first = Spliced::with_cap(false, 2).expect("first");
        let second = Spliced::with_cap(true, 2).expect("second");
        assert!(second.hash.is_some());
        assert!(Spliced::with_cap(false, 2).is_none(), "the cap holds");
        drop(first);
        let third = Spliced::with_cap(false, 2).expect("a freed pipe is reused");
        drop((second, third));
        assert_eq!(PIPES_IN_USE.with(Cell::get), 0);
    }

    #[test]
    fn the_pipe_size_and_cap_are_sane() {
        const {
            assert!(RELAY_PIPE_BYTES >= 64 * 1024 && RELAY_PIPE_BYTES <= 1024 * 1024);
            assert!(MAX_RELAY_PIPES >= 1);
            assert!(DIGEST_READ_BYTES >= 4096 && DIGEST_READ_BYTES <= 256 * 1024);
            // The switch to splice(2) comes after at least one full relay buffer.
            assert!(crate::limits::SPLICE_AFTER_BYTES >= crate::limits::RELAY_BUFFER_SIZE as u64);
        }
        let pipe = Spliced::with_cap(false, 1).expect("a pipe");
        assert!(pipe.pipe.capacity() >= 64 * 1024);
    }
}
