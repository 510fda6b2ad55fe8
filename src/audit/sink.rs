//! Where audit events go, and what happens when a destination fails.
//!
//! An [`AuditSink`] holds one channel per destination the policy names: the file, syslog, or
//! stderr when it names neither. Every event is serialised once and offered to each channel.
//!
//! A channel whose write fails is *broken*: from then on each event is counted as lost
//! (with the time of the first and the last) instead of being tried, and at most once a
//! second the channel is tried again — the file reopened, the syslog socket reconnected —
//! by the next event, the next new connection ([`AuditSink::accepting_sessions`]) or the
//! worker's tick. The first thing a channel that is back receives is an `audit_loss` event
//! with the count and the time range lost; only when that write succeeds is the channel
//! healthy again. While any channel is broken and the policy says `refuse_sessions`, new
//! sessions are refused. Nothing is queued: memory stays bounded whatever the destinations do.
//!
//! Syslog holds a few messages (bounded) while the daemon's queue is full and sends them in
//! order as soon as it has room (see `syslog.rs`); only what does not fit is lost.
//!
//! The file is also followed by name: at most once a second the path's inode is compared with
//! the open file's, and a file that logrotate moved away or deleted is replaced by a new one
//! at the path, without waiting for SIGHUP (`file_out.rs`).

use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::chain::Chain;
use super::file_out::{FileOut, framed};
use super::syslog::{self, Header, Meta, SyslogOut};
use super::{AuditContext, AuditRecord, Envelope, rfc3339_stack, rfc3339_utc};
use crate::limits::{AUDIT_RETRY_INTERVAL_MS, SYSLOG_BACKLOG_RETRY_MS};
use crate::policy::{AuditFailure, AuditPolicy, SyslogPolicy};

/// How often a broken channel is tried again, and how often the file's path is checked.
pub(super) const RETRY: Duration = Duration::from_millis(AUDIT_RETRY_INTERVAL_MS);

/// The worker-level event that reports lost events to the channel that lost them.
#[derive(Serialize)]
struct LossEvent<'a> {
    ts: &'a str,
    worker: u32,
    event: &'static str,
    /// "file", "syslog" or "stderr".
    sink: &'static str,
    lost: u64,
    first_lost: &'a str,
    last_lost: &'a str,
    error: &'a str,
    /// With `audit.integrity`: the worker's chain, and the seqs of its lines this channel
    /// lost (the first and the last), so that `verify-audit` can tell the gap from a deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost_seq_first: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost_seq_last: Option<u64>,
}

/// Events a channel could not take, not yet reported to it.
#[derive(Clone, Debug)]
struct Loss {
    count: u64,
    first: SystemTime,
    last: SystemTime,
    /// Why the first of them was lost.
    error: String,
    /// The first and the last seq of the chain lost, when there is a chain.
    seqs: Option<(u64, u64)>,
}

/// A destination.
enum Out {
    File(FileOut),
    Syslog(SyslogOut),
    Stderr,
}

impl Out {
    fn name(&self) -> &'static str {
        match self {
            Out::File(_) => "file",
            Out::Syslog(_) => "syslog",
            Out::Stderr => "stderr",
        }
    }

    fn write(&mut self, meta: &Meta<'_>, json: &[u8], scratch: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Out::File(file) => file.write_line(json, scratch),
            Out::Syslog(syslog) => syslog.send(meta, json, scratch),
            Out::Stderr => {
                let line = framed(json, false, scratch);
                io::stderr().lock().write_all(line)
            }
        }
    }

    /// What a failed write means for the destination itself.
    fn after_failure(&mut self, e: &io::Error) {
        if let Out::Syslog(syslog) = self {
            if syslog::peer_gone(e) {
                syslog.disconnect();
            }
        }
    }

    /// Gets a broken destination ready to be written again (reopen; reconnect and send
    /// the held messages, which must all go before the loss is reported).
    fn restore(&mut self) -> io::Result<()> {
        match self {
            Out::File(file) => file.follow_now(),
            Out::Syslog(syslog) => {
                if !syslog.is_connected() {
                    syslog.connect()?;
                }
                syslog.flush()?;
                if syslog.backlog_len() > 0 {
                    return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                }
                Ok(())
            }
            Out::Stderr => Ok(()),
        }
    }
}

/// One destination and its health.
struct Channel {
    out: Out,
    /// Why it is broken; `None` while healthy.
    broken: Option<String>,
    /// Lost events not yet reported to this channel.
    loss: Option<Loss>,
    /// When a broken channel may be tried again.
    next_retry: Instant,
    /// When the syslog socket may be reconnected at once after the daemon went away.
    next_reconnect: Instant,
}

/// What each channel needs to write an `audit_loss` event.
struct Scratch<'a> {
    worker: u32,
    chain: Option<&'a str>,
    buf: &'a mut Vec<u8>,
    json: &'a mut Vec<u8>,
}

impl Channel {
    fn new(out: Out, now: Instant) -> Channel {
        Channel {
            out,
            broken: None,
            loss: None,
            next_retry: now,
            next_reconnect: now,
        }
    }

    fn broken(out: Out, error: &io::Error, now: Instant) -> Channel {
        let mut channel = Channel::new(out, now);
        channel.fail(error, now);
        channel
    }

    /// Marks the channel broken (logging the first failure of an outage).
    fn fail(&mut self, error: &io::Error, now: Instant) {
        self.out.after_failure(error);
        if self.broken.is_none() {
            log::error!(
                "audit {} unavailable, events are being lost until it is back: {}",
                self.describe(),
                error
            );
            self.broken = Some(error.to_string());
            self.next_retry = now + RETRY;
        }
    }

    fn describe(&self) -> String {
        match &self.out {
            Out::File(file) => format!("file {}", file.path.display()),
            Out::Syslog(syslog) => format!("syslog socket {}", syslog.path.display()),
            Out::Stderr => "stderr".to_owned(),
        }
    }

    /// Counts one lost event (`seq`: its place in the chain, if it had one).
    fn lose(&mut self, wall: SystemTime, why: &str, seq: Option<u64>) {
        let error = self.broken.as_deref().unwrap_or(why);
        match &mut self.loss {
            Some(loss) => {
                loss.count += 1;
                loss.last = wall;
                if let Some(seq) = seq {
                    let first = loss.seqs.map_or(seq, |(first, _)| first);
                    loss.seqs = Some((first, seq));
                }
            }
            None => {
                self.loss = Some(Loss {
                    count: 1,
                    first: wall,
                    last: wall,
                    error: error.to_owned(),
                    seqs: seq.map(|seq| (seq, seq)),
                })
            }
        }
    }

    /// Housekeeping before an event or a new session: follow the file's path, and try a
    /// broken channel again when it is due. Never waits.
    fn maintain(&mut self, now: Instant, scratch: &mut Scratch<'_>) {
        if self.broken.is_none() {
            let followed = match &mut self.out {
                Out::File(file) => file.follow(now),
                Out::Syslog(syslog) => syslog.flush(),
                Out::Stderr => Ok(()),
            };
            if let Err(e) = followed {
                self.fail(&e, now);
            }
            return;
        }
        if now < self.next_retry {
            return;
        }
        self.next_retry = now + RETRY;
        // One attempt per RETRY in all: no immediate reconnect right after this one.
        self.next_reconnect = now + RETRY;
        if let Out::File(file) = &mut self.out {
            file.next_check = now + RETRY;
        }
        if let Err(e) = self.out.restore() {
            log::debug!("audit {} still unavailable: {e}", self.describe());
            return;
        }
        if let Err(e) = self.report_loss(scratch) {
            self.out.after_failure(&e);
            log::debug!("audit {} still unavailable: {e}", self.describe());
            return;
        }
        self.broken = None;
    }

    /// Writes the pending `audit_loss` event, if any; the loss is forgotten once written.
    fn report_loss(&mut self, scratch: &mut Scratch<'_>) -> io::Result<()> {
        let Some(loss) = &self.loss else {
            log::warn!("audit {} is back; no event was lost", self.describe());
            return Ok(());
        };
        let ts = rfc3339_utc(SystemTime::now());
        let first = rfc3339_utc(loss.first);
        let last = rfc3339_utc(loss.last);
        let event = LossEvent {
            ts: &ts,
            worker: scratch.worker,
            event: "audit_loss",
            sink: self.out.name(),
            lost: loss.count,
            first_lost: &first,
            last_lost: &last,
            error: &loss.error,
            chain: loss.seqs.and(scratch.chain),
            lost_seq_first: loss.seqs.map(|(first, _)| first),
            lost_seq_last: loss.seqs.map(|(_, last)| last),
        };
        scratch.json.clear();
        serde_json::to_writer(&mut *scratch.json, &event).map_err(io::Error::other)?;
        let meta = Meta {
            kind: "audit_loss",
            severity: syslog::WARNING,
            ts: &ts,
        };
        self.out.write(&meta, scratch.json, scratch.buf)?;
        log::warn!(
            "audit {} is back; {} events were lost between {first} and {last}",
            self.describe(),
            loss.count
        );
        self.loss = None;
        Ok(())
    }

    /// Offers one event to the channel: written, or counted as lost.
    fn deliver(
        &mut self,
        meta: &Meta<'_>,
        json: &[u8],
        now: Instant,
        wall: SystemTime,
        seq: Option<u64>,
        scratch: &mut Scratch<'_>,
    ) {
        if self.broken.is_some() {
            self.lose(wall, "", seq);
            return;
        }
        if self.loss.is_some() {
            // Lost while the channel stayed healthy (an event that could not be serialised):
            // reported before the next event.
            if let Err(e) = self.report_loss(scratch) {
                self.fail(&e, now);
                self.lose(wall, "", seq);
                return;
            }
        }
        let Err(e) = self.out.write(meta, json, scratch.buf) else {
            return;
        };
        // A syslog daemon that was restarted has a new socket: reconnect and resend once,
        // at most once per RETRY, so that a restart costs no event.
        if let Out::Syslog(syslog) = &mut self.out {
            if syslog::peer_gone(&e) && now >= self.next_reconnect {
                self.next_reconnect = now + RETRY;
                if syslog.connect().is_ok() && syslog.send(meta, json, scratch.buf).is_ok() {
                    return;
                }
            }
        }
        self.fail(&e, now);
        self.lose(wall, "", seq);
    }
}

/// The audit trail of one worker: every configured destination and the failure policy.
pub struct AuditSink {
    channels: Vec<Channel>,
    on_failure: AuditFailure,
    worker: u32,
    hostname: Option<String>,
    /// The event being written, as JSON without a newline.
    json: Vec<u8>,
    /// Framing of one write (the line, the datagram).
    buf: Vec<u8>,
    /// The JSON of an `audit_loss` event.
    loss_json: Vec<u8>,
    lost: u64,
    /// `audit.integrity`: this worker's hash chain.
    chain: Option<Chain>,
}

impl AuditSink {
    /// Opens the destinations `policy` names: the file (an error here is returned: a worker
    /// that cannot open its audit file does not start), syslog (a daemon that is not there
    /// yet only makes the channel start broken), or stderr when it names neither.
    pub fn open(policy: &AuditPolicy, worker: u32) -> io::Result<AuditSink> {
        let now = Instant::now();
        let mut sink = AuditSink {
            channels: Vec::new(),
            on_failure: policy.on_failure,
            worker,
            hostname: crate::os::hostname(),
            json: Vec::with_capacity(512),
            buf: Vec::with_capacity(1024),
            loss_json: Vec::with_capacity(256),
            lost: 0,
            chain: match &policy.integrity {
                Some(integrity) => Some(Chain::new(worker, integrity, now)?),
                None => None,
            },
        };
        if let Some(path) = &policy.file {
            sink.channels
                .push(Channel::new(Out::File(FileOut::open(path, now)?), now));
        }
        if let Some(syslog) = &policy.syslog {
            let channel = sink.syslog_channel(syslog, now);
            sink.channels.push(channel);
        }
        if sink.channels.is_empty() {
            sink.channels.push(Channel::new(Out::Stderr, now));
        }
        Ok(sink)
    }

    fn syslog_channel(&self, policy: &SyslogPolicy, now: Instant) -> Channel {
        let header = Header::new(policy, self.hostname.as_deref(), std::process::id());
        let mut out = SyslogOut::new(&policy.socket, header);
        match out.connect() {
            Ok(()) => Channel::new(Out::Syslog(out), now),
            Err(e) => Channel::broken(Out::Syslog(out), &e, now),
        }
    }

    /// SIGHUP: reopens the file (logrotate's postrotate) and reconnects to syslog (a
    /// restarted daemon). Returns the first error, already accounted for.
    pub fn reopen(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let mut first_error = None;
        for channel in &mut self.channels {
            let result = match &mut channel.out {
                Out::File(file) => {
                    file.next_check = now + RETRY;
                    file.reopen()
                }
                Out::Syslog(syslog) => syslog.connect(),
                Out::Stderr => Ok(()),
            };
            match result {
                // A broken channel reports its loss at once.
                Ok(()) => channel.next_retry = now,
                Err(e) => {
                    channel.fail(&e, now);
                    first_error.get_or_insert(e);
                }
            }
        }
        self.maintain(now);
        first_error.map_or(Ok(()), Err)
    }

    /// A reloaded policy: destinations that stay keep their state (and their unreported
    /// losses); new ones are opened; removed ones are closed, with an error for any loss
    /// they can no longer report.
    pub fn apply(&mut self, policy: &AuditPolicy) {
        let now = Instant::now();
        self.on_failure = policy.on_failure;
        let mut old = std::mem::take(&mut self.channels);
        let mut take = |pred: &dyn Fn(&Out) -> bool| {
            old.iter()
                .position(|c| pred(&c.out))
                .map(|i| old.swap_remove(i))
        };
        let mut channels = Vec::new();
        if let Some(path) = &policy.file {
            let kept = take(&|out| matches!(out, Out::File(f) if f.path == *path));
            channels.push(kept.unwrap_or_else(|| match FileOut::open(path, now) {
                Ok(file) => Channel::new(Out::File(file), now),
                Err(e) => Channel::broken(Out::File(FileOut::closed(path, now)), &e, now),
            }));
        }
        if let Some(syslog) = &policy.syslog {
            let header = Header::new(syslog, self.hostname.as_deref(), std::process::id());
            let kept = take(&|out| matches!(out, Out::Syslog(s) if s.path == syslog.socket));
            channels.push(match kept {
                Some(mut channel) => {
                    if let Out::Syslog(out) = &mut channel.out {
                        out.header = header;
                    }
                    channel
                }
                None => self.syslog_channel(syslog, now),
            });
        }
        if channels.is_empty() {
            let kept = take(&|out| matches!(out, Out::Stderr));
            channels.push(kept.unwrap_or_else(|| Channel::new(Out::Stderr, now)));
        }
        for gone in old {
            if let Out::Syslog(syslog) = &gone.out {
                if syslog.backlog_len() > 0 {
                    log::error!(
                        "audit {} removed from the policy with {} events not yet sent",
                        gone.describe(),
                        syslog.backlog_len()
                    );
                }
            }
            if let Some(loss) = &gone.loss {
                log::error!(
                    "audit {} removed from the policy with {} lost events unreported \
                     (since {}): {}",
                    gone.describe(),
                    loss.count,
                    rfc3339_utc(loss.first),
                    loss.error
                );
            }
        }
        self.channels = channels;
        match (&mut self.chain, &policy.integrity) {
            (Some(chain), Some(integrity)) => chain.apply(integrity),
            (None, Some(integrity)) => match Chain::new(self.worker, integrity, now) {
                Ok(chain) => self.chain = Some(chain),
                Err(e) => log::error!("audit integrity cannot start: {e}"),
            },
            (_, None) => self.chain = None,
        }
    }

    /// Whether a new session may start: always with `on_failure: "continue"`, otherwise
    /// only while every destination takes events. Tries broken destinations again (at most
    /// once a second), so a destination that is back lets the session in.
    pub fn accepting_sessions(&mut self, now: Instant) -> bool {
        self.maintain(now);
        self.on_failure == AuditFailure::Continue
            || self.channels.iter().all(|c| c.broken.is_none())
    }

    /// How soon the worker should call [`tick`](Self::tick), even when idle: soon while
    /// syslog messages wait for room, about once a second while a destination is broken
    /// or has a loss to report, never otherwise.
    pub fn next_tick(&self) -> Option<Duration> {
        let held = self
            .channels
            .iter()
            .any(|c| matches!(&c.out, Out::Syslog(s) if s.backlog_len() > 0));
        let sinks = if held {
            Some(Duration::from_millis(SYSLOG_BACKLOG_RETRY_MS))
        } else if self.wants_tick() {
            Some(RETRY)
        } else {
            None
        };
        let checkpoint = self
            .chain
            .as_ref()
            .and_then(|c| c.until_due(Instant::now()));
        match (sinks, checkpoint) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn wants_tick(&self) -> bool {
        self.channels
            .iter()
            .any(|c| c.broken.is_some() || c.loss.is_some())
    }

    /// The worker's periodic call: sends held syslog messages, brings back destinations and
    /// reports their losses.
    pub fn tick(&mut self, now: Instant) {
        self.maintain(now);
        self.checkpoint_if_due(now);
    }

    /// Writes the chain's checkpoint when one is due.
    fn checkpoint_if_due(&mut self, now: Instant) {
        if self.chain.as_ref().is_some_and(|c| c.due(now)) {
            self.checkpoint(now);
        }
    }

    /// Writes the chain's checkpoint now.
    fn checkpoint(&mut self, now: Instant) {
        let Some(chain) = &self.chain else {
            return;
        };
        let wall = SystemTime::now();
        let ts = rfc3339_utc(wall);
        let serialised = chain.checkpoint(self.worker, &ts, &mut self.json);
        if let Err(e) = &serialised {
            log::error!("audit checkpoint lost: {e}");
        }
        let meta = Meta {
            kind: super::chain::CHECKPOINT_EVENT,
            severity: syslog::INFO,
            ts: &ts,
        };
        self.broadcast(&meta, serialised.is_ok(), true, now, wall);
    }

    fn maintain(&mut self, now: Instant) {
        let mut scratch = Scratch {
            worker: self.worker,
            chain: self.chain.as_ref().map(|c| c.position().0),
            buf: &mut self.buf,
            json: &mut self.loss_json,
        };
        for channel in &mut self.channels {
            channel.maintain(now, &mut scratch);
        }
    }

    /// Events lost since start, over all destinations.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Writes an event about the worker rather than a session (it carries its own `ts`,
    /// `worker` and `event` fields), to every destination and, with `audit.integrity`, as a
    /// link of the chain like every other line: `verify-audit` refuses unchained lines among
    /// chained ones. `severity`: a syslog severity (`syslog::INFO`, ...).
    pub fn emit_worker_event<T: Serialize>(&mut self, kind: &'static str, severity: u8, event: &T) {
        let wall = SystemTime::now();
        self.write_event(kind, severity, rfc3339_stack(wall).as_str(), wall, event);
    }

    pub fn emit(&mut self, ctx: &AuditContext<'_>, record: &AuditRecord) {
        let wall = SystemTime::now();
        let stamp = rfc3339_stack(wall);
        let ts = stamp.as_str();
        let envelope = Envelope {
            ts,
            session: ctx.session,
            worker: self.worker,
            client: ctx.client,
            user: ctx.user,
            user_hex: ctx.user_hex,
            record,
        };
        self.write_event(record.kind(), record.severity(), ts, wall, &envelope);
    }

    /// Serialises `event` (as the chain's next link, with `audit.integrity`) and offers it
    /// to every destination.
    fn write_event<T: Serialize>(
        &mut self,
        kind: &'static str,
        severity: u8,
        ts: &str,
        wall: SystemTime,
        event: &T,
    ) {
        let now = Instant::now();
        self.json.clear();
        let serialised = match &self.chain {
            Some(chain) => chain.serialise(event, &mut self.json),
            None => serde_json::to_writer(&mut self.json, event),
        };
        if let Err(e) = &serialised {
            log::error!("audit event lost: it could not be serialised: {e}");
        }
        self.maintain(now);
        let meta = Meta { kind, severity, ts };
        self.broadcast(&meta, serialised.is_ok(), false, now, wall);
        self.checkpoint_if_due(now);
    }

    /// Offers the line in `self.json` (when `serialised`) to every channel, and makes it the
    /// chain's new end: a line a channel loses is still part of the chain (that channel's
    /// `audit_loss` names its seq).
    fn broadcast(
        &mut self,
        meta: &Meta<'_>,
        serialised: bool,
        checkpoint: bool,
        now: Instant,
        wall: SystemTime,
    ) {
        let seq = match (&self.chain, serialised) {
            (Some(chain), true) => Some(chain.position().1),
            _ => None,
        };
        let mut scratch = Scratch {
            worker: self.worker,
            chain: self.chain.as_ref().map(|c| c.position().0),
            buf: &mut self.buf,
            json: &mut self.loss_json,
        };
        for channel in &mut self.channels {
            let before = channel.loss.as_ref().map_or(0, |l| l.count);
            if serialised {
                channel.deliver(meta, &self.json, now, wall, seq, &mut scratch);
            } else {
                channel.lose(wall, "an event could not be serialised", None);
            }
            if channel.loss.as_ref().map_or(0, |l| l.count) > before {
                self.lost += 1;
            }
        }
        if let (Some(chain), true) = (&mut self.chain, serialised) {
            chain.advance(&self.json, checkpoint, now);
        }
    }
}

/// A worker that stops (its sink is dropped when the event loop returns) checkpoints the
/// lines it wrote since its last checkpoint, so that a clean stop leaves no unkeyed tail.
impl Drop for AuditSink {
    fn drop(&mut self) {
        let now = Instant::now();
        if self
            .chain
            .as_ref()
            .is_some_and(|c| c.until_due(now).is_some())
        {
            self.checkpoint(now);
        }
    }
}

#[cfg(test)]
#[path = "sink_tests.rs"]
mod tests;
