//! The probe of one backend server: a small state machine, events in, actions out. It is
//! both the `FEAT` probe (what ftpgate may advertise before login) and the pool's health
//! check; a [`ProbePlan`] says which parts a conversation has.
//!
//! connect, read the greeting (`220`, after any `120`), send `FEAT` and read its answer
//! (when the plan asks), send `AUTH TLS` and complete the TLS handshake (when the plan asks:
//! a health check of an explicit-TLS pool), send `QUIT`, wait for the `221` (or the close),
//! close. Every step has the plan's deadline; the whole conversation reads at most
//! [`MAX_FEATURE_PROBE_BYTES`] and every reply goes through the bounded [`ReplyParser`].
//! The machine does no I/O and reads no clock: the reactor's glue (`reactor::probes`) feeds
//! it socket events and `now`, and performs its actions.
//!
//! Two results, each given once, as soon as it is known: the `FEAT` answer
//! ([`ProbeAction::Finished`], only when the plan asks for `FEAT`) and the health verdict
//! ([`ProbeAction::Healthy`]: the server greeted, and where asked completed TLS). At the
//! first failure the results not given yet are given as errors and the machine asks to
//! close at once; once both are known, `QUIT` goes out and the machine asks to close once it
//! is answered.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::features::{Feature, parse_feat_reply};
use crate::ftp::codes;
use crate::ftp::line::{Framed, LineFramer, TelnetFilter};
use crate::ftp::reply::{Reply, ReplyError, ReplyParser};
use crate::limits::{FEATURE_PROBE_STEP_TIMEOUT, MAX_FEATURE_PROBE_BYTES, MAX_REPLY_LINE};

/// What one conversation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbePlan {
    /// Ask for `FEAT` after the greeting.
    pub feat: bool,
    /// Then `AUTH TLS` and the handshake (a health check of an explicit-TLS pool).
    pub auth_tls: bool,
    /// Each step's deadline.
    pub step_timeout: Duration,
}

impl ProbePlan {
    /// The `FEAT` probe alone, with [`FEATURE_PROBE_STEP_TIMEOUT`].
    pub fn feat_only() -> ProbePlan {
        ProbePlan {
            feat: true,
            auth_tls: false,
            step_timeout: Duration::from_secs(FEATURE_PROBE_STEP_TIMEOUT),
        }
    }
}

/// The step a probe is in (or failed in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeStep {
    /// The TCP connect (and, toward an implicit-TLS pool, the handshake that goes with the
    /// first read).
    Connect,
    /// Waiting for the `220` greeting.
    Greeting,
    /// Waiting for the answer to `FEAT`.
    Feat,
    /// Waiting for the answer to `AUTH TLS`.
    Auth,
    /// The TLS handshake after `AUTH TLS`.
    Handshake,
    /// Waiting for the answer to `QUIT` (the results are already known).
    Quit,
}

impl fmt::Display for ProbeStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeStep::Connect => "connect",
            ProbeStep::Greeting => "greeting",
            ProbeStep::Feat => "FEAT",
            ProbeStep::Auth => "AUTH TLS",
            ProbeStep::Handshake => "TLS handshake",
            ProbeStep::Quit => "QUIT",
        })
    }
}

/// Why a probe learned nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// The step's deadline passed.
    Timeout(ProbeStep),
    /// The server answered with this code (a greeting other than 220, a FEAT answer that is
    /// neither 2xx nor 500/502, an `AUTH TLS` answer other than 234).
    Refused { step: ProbeStep, code: u16 },
    /// Bytes that are not an FTP reply.
    Garbage(ProbeStep),
    /// A line or reply over the limits, or more than [`MAX_FEATURE_PROBE_BYTES`] in all.
    Oversize(ProbeStep),
    /// The server closed the connection.
    Closed(ProbeStep),
    /// The socket failed (connect refused, reset, TLS error...).
    Io { step: ProbeStep, error: String },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::Timeout(step) => write!(f, "no answer in time ({step})"),
            ProbeError::Refused { step, code } => write!(f, "{step} answered {code}"),
            ProbeError::Garbage(step) => write!(f, "not an FTP reply ({step})"),
            ProbeError::Oversize(step) => write!(f, "reply too long ({step})"),
            ProbeError::Closed(step) => write!(f, "connection closed ({step})"),
            ProbeError::Io { step, error } => write!(f, "{step}: {error}"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// What the socket did.
#[derive(Debug)]
pub enum ProbeEvent<'a> {
    /// The non-blocking connect completed.
    Connected,
    /// Bytes read from the server (plaintext, after TLS where there is TLS).
    Received(&'a [u8]),
    /// The TLS handshake asked for with [`ProbeAction::StartTls`] completed.
    TlsEstablished,
    /// The server closed its side.
    Eof,
    /// A read, write or the connect failed (a TLS error included).
    Failed(&'a io::Error),
    /// The deadline ([`FeatProbe::deadline`]) passed.
    Deadline,
}

/// What the glue must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAction {
    /// Queue these bytes toward the server.
    Send(&'static [u8]),
    /// The `FEAT` result: the server's features as it sent them (not yet filtered), or why
    /// there are none. Given exactly once, only when the plan asks for `FEAT`.
    Finished(Result<Vec<Feature>, ProbeError>),
    /// The health verdict: the server greeted with 220 and (where the plan asks) completed
    /// TLS, or why not. Given exactly once. A `FEAT` that is refused does not make a server
    /// unhealthy: it answered.
    Healthy(Result<(), ProbeError>),
    /// Start TLS on the connection now (after the server's 234), then report
    /// [`ProbeEvent::TlsEstablished`] once the handshake is done.
    StartTls,
    /// Close the connection (after sending what is queued, where the socket takes it).
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeState {
    Connecting,
    AwaitGreeting,
    AwaitFeat,
    AwaitAuth,
    Handshaking,
    AwaitQuit,
    Closed,
}

impl ProbeState {
    fn step(self) -> ProbeStep {
        match self {
            ProbeState::Connecting => ProbeStep::Connect,
            ProbeState::AwaitGreeting => ProbeStep::Greeting,
            ProbeState::AwaitFeat => ProbeStep::Feat,
            ProbeState::AwaitAuth => ProbeStep::Auth,
            ProbeState::Handshaking => ProbeStep::Handshake,
            ProbeState::AwaitQuit | ProbeState::Closed => ProbeStep::Quit,
        }
    }
}

/// The probe of one server, from the connect to the close.
#[derive(Debug)]
pub struct FeatProbe {
    plan: ProbePlan,
    state: ProbeState,
    deadline: Instant,
    /// The `FEAT` result is owed (the plan asks for it and it was not given yet).
    feat_owed: bool,
    /// The health verdict is owed.
    health_owed: bool,
    telnet: TelnetFilter,
    framer: LineFramer,
    parser: ReplyParser,
    /// Bytes of a line not yet complete (at most one line: [`MAX_REPLY_LINE`]).
    pending: Vec<u8>,
    /// Bytes received so far, for [`MAX_FEATURE_PROBE_BYTES`].
    received: usize,
}

impl FeatProbe {
    /// A `FEAT` probe ([`ProbePlan::feat_only`]) whose connect was started at `now`.
    pub fn new(now: Instant) -> FeatProbe {
        FeatProbe::with_plan(ProbePlan::feat_only(), now)
    }

    /// A probe doing what `plan` says, whose connect was started at `now`.
    pub fn with_plan(plan: ProbePlan, now: Instant) -> FeatProbe {
        FeatProbe {
            plan,
            state: ProbeState::Connecting,
            deadline: now + plan.step_timeout,
            feat_owed: plan.feat,
            health_owed: true,
            telnet: TelnetFilter::new(),
            framer: LineFramer::new(MAX_REPLY_LINE),
            parser: ReplyParser::new(),
            pending: Vec::new(),
            received: 0,
        }
    }

    /// When the current step times out (`None` once closed).
    pub fn deadline(&self) -> Option<Instant> {
        (self.state != ProbeState::Closed).then_some(self.deadline)
    }

    /// True once the machine asked to close.
    pub fn is_closed(&self) -> bool {
        self.state == ProbeState::Closed
    }

    /// True while the connect is in progress.
    pub fn is_connecting(&self) -> bool {
        self.state == ProbeState::Connecting
    }

    /// True while the TLS handshake after `AUTH TLS` is awaited.
    pub fn is_handshaking(&self) -> bool {
        self.state == ProbeState::Handshaking
    }

    /// Feeds one event; returns what to do.
    pub fn on_event(&mut self, event: ProbeEvent, now: Instant) -> Vec<ProbeAction> {
        let mut out = Vec::new();
        let step = self.state.step();
        match (self.state, event) {
            (ProbeState::Closed, _) => {}
            (ProbeState::Connecting, ProbeEvent::Connected) => {
                self.enter(ProbeState::AwaitGreeting, now)
            }
            (_, ProbeEvent::Connected) => {}
            (ProbeState::Handshaking, ProbeEvent::TlsEstablished) => {
                self.healthy_then_quit(now, &mut out)
            }
            (_, ProbeEvent::TlsEstablished) => {}
            (state, ProbeEvent::Received(bytes)) => {
                if state == ProbeState::Connecting {
                    // Bytes can only come over a connected socket.
                    self.enter(ProbeState::AwaitGreeting, now);
                }
                self.on_bytes(bytes, now, &mut out);
            }
            (
                ProbeState::AwaitQuit,
                ProbeEvent::Eof | ProbeEvent::Failed(_) | ProbeEvent::Deadline,
            ) => {
                self.close(&mut out);
            }
            (_, ProbeEvent::Eof) => self.fail(ProbeError::Closed(step), &mut out),
            (_, ProbeEvent::Failed(e)) => self.fail(
                ProbeError::Io {
                    step,
                    error: e.to_string(),
                },
                &mut out,
            ),
            (_, ProbeEvent::Deadline) => self.fail(ProbeError::Timeout(step), &mut out),
        }
        out
    }

    fn enter(&mut self, state: ProbeState, now: Instant) {
        self.state = state;
        self.deadline = now + self.plan.step_timeout;
    }

    fn close(&mut self, out: &mut Vec<ProbeAction>) {
        self.state = ProbeState::Closed;
        self.pending = Vec::new();
        out.push(ProbeAction::Close);
    }

    /// Reports `error` for the results still owed, and closes.
    fn fail(&mut self, error: ProbeError, out: &mut Vec<ProbeAction>) {
        if std::mem::take(&mut self.feat_owed) {
            out.push(ProbeAction::Finished(Err(error.clone())));
        }
        if std::mem::take(&mut self.health_owed) {
            out.push(ProbeAction::Healthy(Err(error)));
        }
        self.close(out);
    }

    /// After the greeting and `FEAT`: `AUTH TLS` where the plan asks, else the verdict.
    fn after_feat(&mut self, now: Instant, out: &mut Vec<ProbeAction>) {
        if self.plan.auth_tls {
            out.push(ProbeAction::Send(b"AUTH TLS\r\n"));
            self.enter(ProbeState::AwaitAuth, now);
        } else {
            self.healthy_then_quit(now, out);
        }
    }

    fn healthy_then_quit(&mut self, now: Instant, out: &mut Vec<ProbeAction>) {
        if std::mem::take(&mut self.health_owed) {
            out.push(ProbeAction::Healthy(Ok(())));
        }
        out.push(ProbeAction::Send(b"QUIT\r\n"));
        self.enter(ProbeState::AwaitQuit, now);
    }

    fn on_bytes(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<ProbeAction>) {
        self.received = self.received.saturating_add(bytes.len());
        // SECURITY: a backend (or whatever answers at its address) cannot make a probe hold
        // or read more than MAX_FEATURE_PROBE_BYTES.
        if self.received > MAX_FEATURE_PROBE_BYTES {
            return self.fail(ProbeError::Oversize(self.state.step()), out);
        }
        let start = self.pending.len();
        self.pending.extend_from_slice(bytes);
        let kept = self
            .pending
            .get_mut(start..)
            .map_or(0, |new| self.telnet.filter(new));
        self.pending.truncate(start + kept);
        let mut at = 0;
        while self.state != ProbeState::Closed {
            let rest = self.pending.get(at..).unwrap_or_default();
            match self.framer.next_line(rest) {
                Framed::Line { line_end, consumed } => {
                    let line = rest.get(..line_end).unwrap_or_default().to_vec();
                    at += consumed;
                    match self.parser.push_line(&line) {
                        Ok(Some(reply)) => self.on_reply(reply, now, out),
                        Ok(None) => {}
                        Err(ReplyError::Malformed) => {
                            self.fail(ProbeError::Garbage(self.state.step()), out)
                        }
                        Err(ReplyError::LineTooLong | ReplyError::TooLong) => {
                            self.fail(ProbeError::Oversize(self.state.step()), out)
                        }
                    }
                }
                Framed::TooLong { .. } => {
                    self.fail(ProbeError::Oversize(self.state.step()), out);
                }
                Framed::Incomplete { consumed: 0 } => break,
                Framed::Incomplete { consumed } => at += consumed,
            }
        }
        if self.state == ProbeState::Closed {
            return;
        }
        self.pending.drain(..at.min(self.pending.len()));
    }

    fn on_reply(&mut self, reply: Reply, now: Instant, out: &mut Vec<ProbeAction>) {
        if reply.is_preliminary() {
            // 120 "ready in n minutes" before the 220; nothing else comes before a final
            // reply. The step's deadline does not move.
            return;
        }
        match self.state {
            ProbeState::AwaitGreeting if reply.code == codes::SERVICE_READY => {
                if self.plan.feat {
                    out.push(ProbeAction::Send(b"FEAT\r\n"));
                    self.enter(ProbeState::AwaitFeat, now);
                } else {
                    self.after_feat(now, out);
                }
            }
            ProbeState::AwaitGreeting => self.fail(
                ProbeError::Refused {
                    step: ProbeStep::Greeting,
                    code: reply.code,
                },
                out,
            ),
            ProbeState::AwaitFeat => {
                let result = parse_feat_reply(&reply).ok_or(ProbeError::Refused {
                    step: ProbeStep::Feat,
                    code: reply.code,
                });
                self.feat_owed = false;
                out.push(ProbeAction::Finished(result));
                self.after_feat(now, out);
            }
            ProbeState::AwaitAuth if reply.code == codes::AUTH_OK => {
                // Nothing the server sent after its 234 is read as plaintext.
                self.pending.clear();
                out.push(ProbeAction::StartTls);
                self.enter(ProbeState::Handshaking, now);
            }
            ProbeState::AwaitAuth => {
                if std::mem::take(&mut self.health_owed) {
                    out.push(ProbeAction::Healthy(Err(ProbeError::Refused {
                        step: ProbeStep::Auth,
                        code: reply.code,
                    })));
                }
                out.push(ProbeAction::Send(b"QUIT\r\n"));
                self.enter(ProbeState::AwaitQuit, now);
            }
            ProbeState::AwaitQuit => self.close(out),
            // Bytes before the handshake is done are no reply (the glue reads TLS records
            // from the 234 on, and plaintext only once the handshake is over).
            ProbeState::Handshaking | ProbeState::Connecting | ProbeState::Closed => {}
        }
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
