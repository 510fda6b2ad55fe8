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
mod tests {
    use super::*;

    fn step_timeout() -> Duration {
        Duration::from_secs(FEATURE_PROBE_STEP_TIMEOUT)
    }

    fn features(lines: &[&str]) -> Vec<Feature> {
        lines
            .iter()
            .filter_map(|l| Feature::parse(l.as_bytes()))
            .collect()
    }

    /// A probe that is connected and has its greeting, at `t0`.
    fn greeted(t0: Instant) -> FeatProbe {
        let mut p = FeatProbe::new(t0);
        assert!(p.on_event(ProbeEvent::Connected, t0).is_empty());
        let actions = p.on_event(ProbeEvent::Received(b"220 ready\r\n"), t0);
        assert_eq!(actions, vec![ProbeAction::Send(b"FEAT\r\n")]);
        p
    }

    #[test]
    fn greeting_feat_quit_close() {
        let t0 = Instant::now();
        let mut p = FeatProbe::new(t0);
        assert_eq!(p.deadline(), Some(t0 + step_timeout()));
        assert!(p.is_connecting());
        let t1 = t0 + Duration::from_secs(1);
        assert!(p.on_event(ProbeEvent::Connected, t1).is_empty());
        assert_eq!(p.deadline(), Some(t1 + step_timeout()));
        // A multi-line greeting (pure-ftpd's) in two reads, cut inside a line.
        assert!(
            p.on_event(
                ProbeEvent::Received(b"220---- Welcome ----\r\n220-You are"),
                t1
            )
            .is_empty()
        );
        let t2 = t1 + Duration::from_secs(1);
        let actions = p.on_event(ProbeEvent::Received(b" user 1\r\n220 Bye in 15\r\n"), t2);
        assert_eq!(actions, vec![ProbeAction::Send(b"FEAT\r\n")]);
        assert_eq!(p.deadline(), Some(t2 + step_timeout()));
        let feat = b"211-Extensions supported:\r\n UTF8\r\n MLST type*;size*;modify*;\r\n\
                     REST STREAM\r\n AUTH TLS\r\n211 End.\r\n";
        let (a, b) = feat.split_at(30);
        assert!(p.on_event(ProbeEvent::Received(a), t2).is_empty());
        let actions = p.on_event(ProbeEvent::Received(b), t2);
        assert_eq!(
            actions,
            vec![
                ProbeAction::Finished(Ok(features(&[
                    "UTF8",
                    "MLST type*;size*;modify*;",
                    "REST STREAM",
                    "AUTH TLS",
                ]))),
                ProbeAction::Healthy(Ok(())),
                ProbeAction::Send(b"QUIT\r\n"),
            ]
        );
        let actions = p.on_event(ProbeEvent::Received(b"221-Goodbye.\r\n221 Logout.\r\n"), t2);
        assert_eq!(actions, vec![ProbeAction::Close]);
        assert!(p.is_closed());
        assert_eq!(p.deadline(), None);
        // Nothing after the close.
        assert!(
            p.on_event(ProbeEvent::Received(b"garbage\r\n"), t2)
                .is_empty()
        );
        assert!(p.on_event(ProbeEvent::Deadline, t2).is_empty());
    }

    #[test]
    fn a_120_before_the_greeting_is_waited_through() {
        let t0 = Instant::now();
        let mut p = FeatProbe::new(t0);
        p.on_event(ProbeEvent::Connected, t0);
        let later = t0 + Duration::from_secs(3);
        assert!(
            p.on_event(ProbeEvent::Received(b"120 in 1 minute\r\n"), later)
                .is_empty()
        );
        assert_eq!(
            p.deadline(),
            Some(t0 + step_timeout()),
            "the deadline stays"
        );
        let actions = p.on_event(ProbeEvent::Received(b"220 now\r\n"), later);
        assert_eq!(actions, vec![ProbeAction::Send(b"FEAT\r\n")]);
    }

    #[test]
    fn a_server_without_feat_has_no_features() {
        let t0 = Instant::now();
        for answer in [
            &b"500 FEAT not understood\r\n"[..],
            b"502 Not implemented\r\n",
        ] {
            let mut p = greeted(t0);
            let actions = p.on_event(ProbeEvent::Received(answer), t0);
            assert_eq!(
                actions,
                vec![
                    ProbeAction::Finished(Ok(Vec::new())),
                    ProbeAction::Healthy(Ok(())),
                    ProbeAction::Send(b"QUIT\r\n")
                ]
            );
        }
        // A single-line 211: no extensions either.
        let mut p = greeted(t0);
        let actions = p.on_event(ProbeEvent::Received(b"211 No features\r\n"), t0);
        assert_eq!(
            actions.first(),
            Some(&ProbeAction::Finished(Ok(Vec::new())))
        );
    }

    #[test]
    fn refusals_are_errors() {
        let t0 = Instant::now();
        let mut p = FeatProbe::new(t0);
        p.on_event(ProbeEvent::Connected, t0);
        let actions = p.on_event(ProbeEvent::Received(b"421 Too many users\r\n"), t0);
        assert_eq!(
            actions,
            vec![
                ProbeAction::Finished(Err(ProbeError::Refused {
                    step: ProbeStep::Greeting,
                    code: 421
                })),
                ProbeAction::Healthy(Err(ProbeError::Refused {
                    step: ProbeStep::Greeting,
                    code: 421
                })),
                ProbeAction::Close
            ]
        );
        assert!(p.is_closed());

        // FEAT refused for want of a login: nothing learned, but a polite QUIT.
        let mut p = greeted(t0);
        let actions = p.on_event(ProbeEvent::Received(b"530 Login first\r\n"), t0);
        assert_eq!(
            actions,
            vec![
                ProbeAction::Finished(Err(ProbeError::Refused {
                    step: ProbeStep::Feat,
                    code: 530
                })),
                ProbeAction::Healthy(Ok(())),
                ProbeAction::Send(b"QUIT\r\n")
            ]
        );
        // The server closes instead of answering QUIT: just close.
        assert_eq!(p.on_event(ProbeEvent::Eof, t0), vec![ProbeAction::Close]);
    }

    #[test]
    fn every_step_has_its_deadline() {
        let t0 = Instant::now();
        let late = t0 + step_timeout();
        let mut p = FeatProbe::new(t0);
        assert_eq!(
            p.on_event(ProbeEvent::Deadline, late),
            vec![
                ProbeAction::Finished(Err(ProbeError::Timeout(ProbeStep::Connect))),
                ProbeAction::Healthy(Err(ProbeError::Timeout(ProbeStep::Connect))),
                ProbeAction::Close
            ]
        );
        let mut p = FeatProbe::new(t0);
        p.on_event(ProbeEvent::Connected, t0);
        assert_eq!(
            p.on_event(ProbeEvent::Deadline, late).first(),
            Some(&ProbeAction::Finished(Err(ProbeError::Timeout(
                ProbeStep::Greeting
            ))))
        );
        let mut p = greeted(t0);
        assert_eq!(
            p.on_event(ProbeEvent::Deadline, late).first(),
            Some(&ProbeAction::Finished(Err(ProbeError::Timeout(
                ProbeStep::Feat
            ))))
        );
        // After the result only the close is owed.
        let mut p = greeted(t0);
        p.on_event(ProbeEvent::Received(b"211 none\r\n"), t0);
        assert_eq!(
            p.on_event(ProbeEvent::Deadline, late),
            vec![ProbeAction::Close]
        );
    }

    #[test]
    fn garbage_closed_and_failed_connections() {
        let t0 = Instant::now();
        let mut p = FeatProbe::new(t0);
        p.on_event(ProbeEvent::Connected, t0);
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"SSH-2.0-OpenSSH_9.2\r\n"), t0),
            vec![
                ProbeAction::Finished(Err(ProbeError::Garbage(ProbeStep::Greeting))),
                ProbeAction::Healthy(Err(ProbeError::Garbage(ProbeStep::Greeting))),
                ProbeAction::Close
            ]
        );
        // Garbage inside the FEAT answer: a line that ends it with another code is just a
        // line; a first line without a code is garbage.
        let mut p = greeted(t0);
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"hello\r\n"), t0).first(),
            Some(&ProbeAction::Finished(Err(ProbeError::Garbage(
                ProbeStep::Feat
            ))))
        );
        let mut p = greeted(t0);
        assert_eq!(
            p.on_event(ProbeEvent::Eof, t0),
            vec![
                ProbeAction::Finished(Err(ProbeError::Closed(ProbeStep::Feat))),
                ProbeAction::Healthy(Err(ProbeError::Closed(ProbeStep::Feat))),
                ProbeAction::Close
            ]
        );
        let mut p = FeatProbe::new(t0);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let actions = p.on_event(ProbeEvent::Failed(&refused), t0);
        assert!(matches!(
            actions.first(),
            Some(ProbeAction::Finished(Err(ProbeError::Io {
                step: ProbeStep::Connect,
                ..
            })))
        ));
        assert_eq!(actions.last(), Some(&ProbeAction::Close));
    }

    #[test]
    fn oversize_lines_replies_and_totals_are_refused() {
        let t0 = Instant::now();
        // One line longer than a reply line may be, without its end yet.
        let mut p = FeatProbe::new(t0);
        p.on_event(ProbeEvent::Connected, t0);
        let long = vec![b'2'; MAX_REPLY_LINE + 10];
        assert_eq!(
            p.on_event(ProbeEvent::Received(&long), t0).first(),
            Some(&ProbeAction::Finished(Err(ProbeError::Oversize(
                ProbeStep::Greeting
            ))))
        );
        // An endless multi-line FEAT answer of short lines: the limits stop it.
        let mut p = greeted(t0);
        let mut actions = p.on_event(ProbeEvent::Received(b"211-Features:\r\n"), t0);
        let chunk = b" XFEAT\r\n".repeat(512);
        for _ in 0..(MAX_FEATURE_PROBE_BYTES / chunk.len() + 2) {
            if p.is_closed() {
                break;
            }
            actions = p.on_event(ProbeEvent::Received(&chunk), t0);
        }
        assert!(p.is_closed(), "the probe stopped reading");
        assert_eq!(
            actions,
            vec![
                ProbeAction::Finished(Err(ProbeError::Oversize(ProbeStep::Feat))),
                ProbeAction::Healthy(Err(ProbeError::Oversize(ProbeStep::Feat))),
                ProbeAction::Close
            ]
        );
    }

    #[test]
    fn feat_lines_are_bounded_and_printable() {
        let t0 = Instant::now();
        let mut p = greeted(t0);
        let mut answer = b"211-Features:\r\n SIZE\r\n MDTM\x01\r\n \xc3\xa9T\r\n".to_vec();
        answer.extend_from_slice(b" MLST ");
        answer.extend(std::iter::repeat_n(b'x', crate::limits::MAX_FEATURE_LINE));
        answer.extend_from_slice(b"\r\n\r\n211 End\r\n");
        let actions = p.on_event(ProbeEvent::Received(&answer), t0);
        assert_eq!(
            actions.first(),
            Some(&ProbeAction::Finished(Ok(features(&["SIZE"])))),
            "control bytes, non-ASCII, over-long and empty lines are dropped"
        );
        // Telnet option negotiation inside a line is removed.
        let mut p = greeted(t0);
        let actions = p.on_event(
            ProbeEvent::Received(b"211-F\r\n U\xff\xfb\x01TF8\r\n211 End\r\n"),
            t0,
        );
        assert_eq!(
            actions.first(),
            Some(&ProbeAction::Finished(Ok(features(&["UTF8"]))))
        );
    }

    fn health(auth_tls: bool) -> ProbePlan {
        ProbePlan {
            feat: false,
            auth_tls,
            step_timeout: Duration::from_secs(3),
        }
    }

    #[test]
    fn a_health_check_is_the_greeting_then_quit() {
        let t0 = Instant::now();
        let mut p = FeatProbe::with_plan(health(false), t0);
        assert_eq!(p.deadline(), Some(t0 + Duration::from_secs(3)));
        p.on_event(ProbeEvent::Connected, t0);
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0),
            vec![ProbeAction::Healthy(Ok(())), ProbeAction::Send(b"QUIT\r\n")],
            "no FEAT asked"
        );
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"221 bye\r\n"), t0),
            vec![ProbeAction::Close]
        );
        // A refused connect: unhealthy, no FEAT result owed.
        let mut p = FeatProbe::with_plan(health(false), t0);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let actions = p.on_event(ProbeEvent::Failed(&refused), t0);
        assert!(matches!(
            actions.as_slice(),
            [
                ProbeAction::Healthy(Err(ProbeError::Io {
                    step: ProbeStep::Connect,
                    ..
                })),
                ProbeAction::Close
            ]
        ));
        // 421 (too many users, shutting down): unhealthy.
        let mut p = FeatProbe::with_plan(health(false), t0);
        p.on_event(ProbeEvent::Connected, t0);
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"421 bye\r\n"), t0),
            vec![
                ProbeAction::Healthy(Err(ProbeError::Refused {
                    step: ProbeStep::Greeting,
                    code: 421
                })),
                ProbeAction::Close
            ]
        );
    }

    #[test]
    fn an_explicit_tls_health_check_completes_the_handshake() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let mut p = FeatProbe::with_plan(
            ProbePlan {
                feat: true,
                ..health(true)
            },
            t0,
        );
        p.on_event(ProbeEvent::Connected, t0);
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0),
            vec![ProbeAction::Send(b"FEAT\r\n")]
        );
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"211 none\r\n"), t0),
            vec![
                ProbeAction::Finished(Ok(Vec::new())),
                ProbeAction::Send(b"AUTH TLS\r\n")
            ],
            "FEAT in plaintext first, then the upgrade"
        );
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"234 go\r\n"), t1),
            vec![ProbeAction::StartTls]
        );
        assert!(p.is_handshaking());
        assert_eq!(p.deadline(), Some(t1 + Duration::from_secs(3)));
        assert_eq!(
            p.on_event(ProbeEvent::TlsEstablished, t1),
            vec![ProbeAction::Healthy(Ok(())), ProbeAction::Send(b"QUIT\r\n")]
        );
        // The handshake never completes: unhealthy at its deadline.
        let mut p = FeatProbe::with_plan(health(true), t0);
        p.on_event(ProbeEvent::Connected, t0);
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0),
            vec![ProbeAction::Send(b"AUTH TLS\r\n")]
        );
        p.on_event(ProbeEvent::Received(b"234 go\r\n"), t0);
        assert_eq!(
            p.on_event(ProbeEvent::Deadline, t0 + Duration::from_secs(3)),
            vec![
                ProbeAction::Healthy(Err(ProbeError::Timeout(ProbeStep::Handshake))),
                ProbeAction::Close
            ]
        );
        // A certificate the pool does not trust: the TLS error is the verdict.
        let mut p = FeatProbe::with_plan(health(true), t0);
        p.on_event(ProbeEvent::Connected, t0);
        p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0);
        p.on_event(ProbeEvent::Received(b"234 go\r\n"), t0);
        let bad = io::Error::new(io::ErrorKind::InvalidData, "invalid peer certificate");
        let actions = p.on_event(ProbeEvent::Failed(&bad), t0);
        assert!(matches!(
            actions.as_slice(),
            [
                ProbeAction::Healthy(Err(ProbeError::Io {
                    step: ProbeStep::Handshake,
                    ..
                })),
                ProbeAction::Close
            ]
        ));
        // AUTH TLS refused: unhealthy, a polite QUIT.
        let mut p = FeatProbe::with_plan(health(true), t0);
        p.on_event(ProbeEvent::Connected, t0);
        p.on_event(ProbeEvent::Received(b"220 hi\r\n"), t0);
        assert_eq!(
            p.on_event(ProbeEvent::Received(b"530 no TLS here\r\n"), t0),
            vec![
                ProbeAction::Healthy(Err(ProbeError::Refused {
                    step: ProbeStep::Auth,
                    code: 530
                })),
                ProbeAction::Send(b"QUIT\r\n")
            ]
        );
        // A stray TlsEstablished outside the handshake is ignored.
        let mut p = FeatProbe::with_plan(health(true), t0);
        assert!(p.on_event(ProbeEvent::TlsEstablished, t0).is_empty());
    }
}
