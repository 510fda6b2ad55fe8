//! The relay of one transfer: bytes from the source data connection to the sink, through
//! one pooled buffer, with backpressure (a full buffer stops reading), the file size limit,
//! the rate buckets, the SHA-256 of what crossed and, in filecopy mode, the copy handed to
//! the worker's writer thread. [`pump`] moves bytes until a side would block, the budget of
//! the turn is spent or the transfer is over, and says which ([`Pump`]).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::control::{Direction, Side};
use super::splice_relay::{Spliced, pump_spliced};
use super::transport::{Conn, Ending, ReadStep};
use crate::filecopy::{Chunk, End, FileCopier, SendError, Target};
use crate::limits::FILECOPY_CHUNK;
use crate::reactor::pool::RelayBuffer;
use crate::services::rate::TokenBucket;

/// A data transfer in flight.
pub struct Relay {
    pub direction: Direction,
    pub client: Conn,
    pub server: Conn,
    pub buffer: RelayBuffer,
    pub bytes: u64,
    /// Bytes read from the source so far (may run one ahead of `bytes`).
    pub read: u64,
    pub source_eof: bool,
    /// How the source ended, once it did (clean or truncated TLS; plain TCP is clean).
    pub source_end: Option<Ending>,
    pub started: Instant,
    /// The user's file size limit.
    pub max_bytes: Option<u64>,
    pub session_bucket: Option<TokenBucket>,
    pub user_bucket: Option<Rc<RefCell<TokenBucket>>>,
    /// SHA-256 of the bytes written to the sink, computed on the relay buffer as it passes.
    pub digest: Option<Box<dyn rustls::crypto::hash::Context>>,
    /// Filecopy mode: the copy of the bytes written to the sink.
    pub copy: Option<RelayCopy>,
    /// The relay failed on TLS itself (a record that does not decrypt, an alert), not on
    /// the connection: the transfer's result is `tls_failed`.
    pub tls_failed: bool,
    /// The kernel moves the bytes (splice(2)); `buffer` stays unused. See `splice_relay`.
    pub spliced: Option<Spliced>,
    /// The relay may be spliced: it switches to splice(2) once it has read this many bytes
    /// and its buffer is empty ([`crate::limits::SPLICE_AFTER_BYTES`]).
    pub splice_after: Option<u64>,
    /// Both connections' ends, named when the relay began (a reset socket can no longer
    /// name its peer by the time the relay ends).
    pub addresses: crate::audit::DataAddresses,
}

/// The copy of one transfer in filecopy mode: the bytes the relay wrote to its sink, handed
/// to the worker's writer thread in chunks.
pub struct RelayCopy {
    pub id: u64,
    /// The copy's absolute path, for the transfer event.
    pub path: String,
    /// Where the copy goes, until the first chunk takes it to the writer.
    pub target: Option<Box<Target>>,
    /// Bytes written to the sink and not yet handed to the writer (at most
    /// [`FILECOPY_CHUNK`]).
    pub pending: Vec<u8>,
    /// The last chunk has left (`End::Finish`).
    pub finished: bool,
    /// The writer's report, when it came before the relay ended.
    pub result: Option<Result<String, String>>,
    /// The copy failed: nothing more is copied.
    pub error: Option<String>,
    /// `audit.filecopy.on_failure` is "abort".
    pub abort_on_failure: bool,
}

impl RelayCopy {
    pub fn copying(&self) -> bool {
        self.error.is_none() && !self.finished
    }

    /// Hands the pending bytes to the writer, ending the copy's stream with `end`. False
    /// when the writer's queue is full: the bytes stay here and the relay waits.
    pub fn hand_over(&mut self, copier: Option<&FileCopier>, end: End) -> bool {
        let Some(copier) = copier else {
            self.error = Some("no filecopy writer".to_owned());
            return true;
        };
        let chunk = Chunk {
            id: self.id,
            target: self.target.take(),
            bytes: std::mem::take(&mut self.pending),
            end,
        };
        match copier.try_send(chunk) {
            Ok(()) => {
                self.finished = end != End::More;
                true
            }
            Err(SendError::Busy(chunk)) => {
                self.target = chunk.target;
                self.pending = chunk.bytes;
                false
            }
            Err(SendError::Broken) => {
                self.error = Some("the filecopy writer stopped".to_owned());
                true
            }
        }
    }
}

pub enum Pump {
    Progress,
    Stalled,
    Done,
    Failed(Side),
    /// The source has more than the file size limit allows.
    OverLimit,
    /// A rate bucket is empty: resume after this long (the source stays marked readable).
    Throttled(Duration),
    /// The filecopy writer's queue is full: resume shortly (the source stays marked
    /// readable).
    CopyWait,
}

/// How many bytes the rate buckets let the relay read now; with the wait when none.
fn rate_allowance(relay: &mut Relay, now: Instant) -> (usize, Duration) {
    let mut allowed = u64::MAX;
    let mut wait = Duration::ZERO;
    if let Some(bucket) = relay.session_bucket.as_mut() {
        allowed = allowed.min(bucket.available(now));
        if allowed == 0 {
            wait = wait.max(bucket.wait_for(16 * 1024, now));
        }
    }
    if let Some(bucket) = relay.user_bucket.as_ref() {
        if let Ok(mut bucket) = bucket.try_borrow_mut() {
            let available = bucket.available(now);
            if available == 0 {
                wait = wait.max(bucket.wait_for(16 * 1024, now));
            }
            allowed = allowed.min(available);
        }
    }
    (usize::try_from(allowed).unwrap_or(usize::MAX), wait)
}

fn consume_rate(relay: &mut Relay, n: usize) {
    if let Some(bucket) = relay.session_bucket.as_mut() {
        bucket.consume(n as u64);
    }
    if let Some(bucket) = relay.user_bucket.as_ref() {
        if let Ok(mut bucket) = bucket.try_borrow_mut() {
            bucket.consume(n as u64);
        }
    }
}

/// Moves bytes from the relay's source to its sink until either side would block, the
/// budget is spent, or the source has ended and everything was written.
pub fn pump(
    relay: &mut Relay,
    budget: &mut usize,
    now: Instant,
    copier: Option<&FileCopier>,
) -> Pump {
    if relay.spliced.is_some() {
        return pump_spliced(relay, budget);
    }
    let mut progress = false;
    loop {
        let step = pump_buffered(relay, budget, now, copier);
        if !matches!(step, Pump::Progress) || !switch_to_splice(relay) {
            return match step {
                Pump::Stalled if progress => Pump::Progress,
                step => step,
            };
        }
        progress = true;
        if relay.spliced.is_some() {
            return match pump_spliced(relay, budget) {
                Pump::Stalled => Pump::Progress,
                step => step,
            };
        }
    }
}

/// Whether the relay has just switched to splice(2): it may, it has read enough, and its
/// buffer is empty (nothing read is left behind in it).
fn switch_to_splice(relay: &mut Relay) -> bool {
    let Some(after) = relay.splice_after else {
        return false;
    };
    if relay.read < after || !relay.buffer.is_empty() || relay.source_eof {
        return false;
    }
    relay.splice_after = None;
    relay.spliced = Spliced::new(relay.digest.is_some());
    relay.spliced.is_some()
}

/// The read/write path of [`pump`], through the pooled buffer.
fn pump_buffered(
    relay: &mut Relay,
    budget: &mut usize,
    now: Instant,
    copier: Option<&FileCopier>,
) -> Pump {
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
        let (source, sink) = match relay.direction {
            Direction::Download => (&mut relay.server, &mut relay.client),
            Direction::Upload => (&mut relay.client, &mut relay.server),
        };
        let mut moved = false;
        // A TLS sink still sends records our way (TLS 1.3 session tickets, alerts): take
        // them in, so that closing the socket later does not reset it with unread data and
        // destroy bytes the peer has not read yet.
        if sink.tls.is_some() {
            let mut scratch = [0u8; 256];
            for _ in 0..16 {
                match sink.read_into(&mut scratch) {
                    Ok(ReadStep::Data(_)) => {}
                    Ok(ReadStep::Blocked | ReadStep::Eof(_)) => break,
                    Err(e) => {
                        relay.tls_failed |= is_tls_error(&e);
                        return Pump::Failed(sink_side);
                    }
                }
            }
        }
        // Write what is buffered.
        if let Err(e) = sink.flush_tls() {
            relay.tls_failed |= is_tls_error(&e);
            return Pump::Failed(sink_side);
        }
        while !relay.buffer.is_empty() {
            // Filecopy: what is written is copied, so a write takes at most what the copy's
            // chunk has room for; a full chunk goes to the writer first (backpressure: when
            // its queue is full, nothing more is written or read until it drains).
            let mut limit = relay.buffer.data().len();
            if let Some(copy) = relay.copy.as_mut().filter(|c| c.copying()) {
                let room = FILECOPY_CHUNK.saturating_sub(copy.pending.len());
                if room == 0 {
                    if !copy.hand_over(copier, End::More) {
                        return Pump::CopyWait;
                    }
                    continue;
                }
                limit = limit.min(room);
            }
            let data = relay.buffer.data().get(..limit).unwrap_or(&[]);
            match sink.write_from(data) {
                Ok(0) => break,
                Ok(n) => {
                    let written = data.get(..n).unwrap_or(&[]);
                    if let Some(digest) = relay.digest.as_mut() {
                        digest.update(written);
                    }
                    if let Some(copy) = relay.copy.as_mut().filter(|c| c.copying()) {
                        if copy.pending.capacity() == 0 {
                            copy.pending.reserve_exact(FILECOPY_CHUNK);
                        }
                        copy.pending.extend_from_slice(written);
                    }
                    relay.buffer.consume(n);
                    relay.bytes += n as u64;
                    *budget = budget.saturating_sub(n);
                    moved = true;
                }
                Err(e) => {
                    relay.tls_failed |= is_tls_error(&e);
                    return Pump::Failed(sink_side);
                }
            }
        }
        if relay.source_eof && relay.buffer.is_empty() {
            // A TLS sink still in its handshake (ftplib and lftp start data-channel TLS only
            // after the 150) holds the data inside rustls: the end waits for the handshake.
            if sink.tls.as_ref().is_some_and(|t| t.is_handshaking()) {
                return if progress || moved {
                    Pump::Progress
                } else {
                    Pump::Stalled
                };
            }
            if let Some(copy) = relay.copy.as_mut().filter(|c| c.copying()) {
                if !copy.hand_over(copier, End::Finish) {
                    return Pump::CopyWait;
                }
            }
            let sink_done = match sink.finish_writes() {
                Ok(done) => done,
                Err(e) => {
                    relay.tls_failed |= is_tls_error(&e);
                    return Pump::Failed(sink_side);
                }
            };
            // A TLS source (the client's upload) gets our close_notify too: clients such as
            // ftplib wait for it (SSL_shutdown) before they read the final reply.
            let source_done = if source.tls.is_some() {
                source.finish_writes().unwrap_or(true)
            } else {
                true
            };
            return match (sink_done && source_done, progress || moved) {
                (true, _) => Pump::Done,
                (false, true) => Pump::Progress,
                (false, false) => Pump::Stalled,
            };
        }
        // Read more when there is room; backpressure: a full buffer stops reading.
        let source_ready = source.readable || source.tls.is_some();
        // A relay about to switch to splice(2) reads no more: its buffer drains first.
        let switching = relay.splice_after.is_some_and(|after| relay.read >= after);
        if !relay.source_eof && source_ready && !relay.buffer.is_full() && !switching {
            let (allowed, wait) = if relay.session_bucket.is_some() || relay.user_bucket.is_some() {
                rate_allowance(relay, now)
            } else {
                (usize::MAX, Duration::ZERO)
            };
            if allowed == 0 {
                return Pump::Throttled(wait);
            }
            let limit = match relay.max_bytes {
                Some(max) => usize::try_from(max.saturating_add(1).saturating_sub(relay.read))
                    .unwrap_or(usize::MAX),
                None => usize::MAX,
            };
            let (source, _) = match relay.direction {
                Direction::Download => (&mut relay.server, &mut relay.client),
                Direction::Upload => (&mut relay.client, &mut relay.server),
            };
            let space = relay.buffer.space();
            let take = space.len().min(allowed).min(limit);
            match source.read_into(&mut space[..take]) {
                Ok(ReadStep::Eof(ending)) => {
                    relay.source_eof = true;
                    relay.source_end = Some(ending);
                    moved = true;
                }
                Ok(ReadStep::Data(n)) => {
                    relay.buffer.fill(n);
                    relay.read += n as u64;
                    consume_rate(relay, n);
                    moved = true;
                    // SECURITY: the file size limit. Reads stop one byte past it, and that
                    // byte proves the file too large: stop before writing any of this read.
                    if relay.max_bytes.is_some_and(|max| relay.read > max) {
                        return Pump::OverLimit;
                    }
                }
                Ok(ReadStep::Blocked) => {}
                Err(e)
                    if e.kind() == io::ErrorKind::ConnectionReset
                        && source_side == Side::Server =>
                {
                    // A reset after the data is the backend's way of aborting; the
                    // control reply will say what happened.
                    relay.source_eof = true;
                    relay.source_end = Some(Ending::Truncated);
                    moved = true;
                }
                Err(e) => {
                    relay.tls_failed |= is_tls_error(&e);
                    return Pump::Failed(source_side);
                }
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

/// A TLS failure rather than a connection's: rustls reports bad records and alerts as
/// `InvalidData`.
fn is_tls_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
}
