//! The client's control connection: reading (bounded), framing and dispatching its command
//! lines (at most a budget per turn and at the session's command rate), writing replies, and
//! the switch to TLS after AUTH (STARTTLS injection refused).

use super::*;
use crate::ftp::command::CommandError;
use crate::limits::MAX_AUDITED_LINE_BYTES;

impl Session {
    pub(super) fn read_client(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        let _ = ctx;
        let mut progress = false;
        let mut chunk = [0u8; 2048];
        while self.closing.is_none()
            && !self.tls_upgrade
            && !self.client.eof
            && (self.client.conn.readable || self.client.conn.tls.is_some())
            && self.client.input.len() < MAX_CLIENT_INPUT
        {
            let room = (MAX_CLIENT_INPUT - self.client.input.len()).min(chunk.len());
            match read_some(&mut self.client.conn, &mut chunk[..room]) {
                Ok(ReadStep::Data(n)) => {
                    self.bytes_in += n as u64;
                    let kept = self.client.telnet.filter(&mut chunk[..n]);
                    self.client.input.extend_from_slice(&chunk[..kept]);
                    progress = true;
                }
                Ok(ReadStep::Eof(_)) => {
                    self.client.eof = true;
                    progress = true;
                }
                Ok(ReadStep::Blocked) => break,
                Err(e) => {
                    log::debug!("{} client read error: {e}", self.id);
                    self.client.eof = true;
                    progress = true;
                }
            }
        }
        progress
    }

    /// Runs the complete command lines the client sent, at most `budget` of them (fairness)
    /// and as many as the command rate allows.
    pub(super) fn process_client_lines(
        &mut self,
        ctx: &mut WorkerCtx<'_>,
        budget: &mut usize,
    ) -> bool {
        let mut progress = false;
        let mut throttled = false;
        while self.closing.is_none()
            && !self.tls_upgrade
            && self.client.output.len() < MAX_CLIENT_OUTPUT
            && *budget > 0
        {
            match self.client.framer.next_line(&self.client.input) {
                Framed::Line { line_end, consumed } => {
                    let text = self.client.input.get(..line_end).unwrap_or(&[]);
                    // Parsed once, here: the machine decides on the parsed command.
                    let command = parse_command(text);
                    // A line that is no command is recorded with its raw bytes (bounded).
                    let raw = matches!(
                        command,
                        Err(CommandError::BadVerb | CommandError::ControlByte)
                    )
                    .then(|| {
                        let kept = text.get(..MAX_AUDITED_LINE_BYTES).unwrap_or(text);
                        (kept.to_vec(), text.len())
                    });
                    if !self.fsm.can_take(&command) {
                        break;
                    }
                    if self.command_bucket.available(ctx.now) == 0 {
                        // The line waits in the input buffer (and the next ones in the
                        // socket) until the bucket refills.
                        throttled = true;
                        if self.deadlines[TIMER_COMMANDS as usize].is_none() {
                            let wait = self.command_bucket.wait_for(1, ctx.now);
                            self.set_deadline(TIMER_COMMANDS, wait, ctx);
                        }
                        break;
                    }
                    self.command_bucket.consume(1);
                    *budget -= 1;
                    self.client
                        .input
                        .drain(..consumed.min(self.client.input.len()));
                    self.command_since.set(Some(ctx.now));
                    let event = match (command, raw) {
                        (Err(error), Some((line, len))) => {
                            Event::ClientMalformed { error, line, len }
                        }
                        (command, _) => Event::ClientCommand(command),
                    };
                    self.dispatch(event, ctx);
                    progress = true;
                }
                Framed::TooLong { consumed } => {
                    self.client
                        .input
                        .drain(..consumed.min(self.client.input.len()));
                    self.command_bucket.consume(1);
                    *budget = budget.saturating_sub(1);
                    self.dispatch(Event::ClientLineTooLong, ctx);
                    progress = true;
                }
                Framed::Incomplete { consumed } => {
                    if consumed == 0 {
                        break;
                    }
                    // The end of a discarded over-long line: more lines may follow.
                    self.client
                        .input
                        .drain(..consumed.min(self.client.input.len()));
                    progress = true;
                }
            }
        }
        if self.client.input.is_empty() && self.client.input.capacity() > 0 {
            self.client.input = Vec::new();
        }
        // Lines held back for fairness or by the rate still run before the end of file.
        let held_back = throttled || *budget == 0;
        if self.client.eof && self.closing.is_none() && !progress && !held_back {
            self.dispatch(Event::ClientClosed, ctx);
            progress = true;
        }
        progress
    }

    pub(super) fn flush_client(&mut self, ctx: &mut WorkerCtx<'_>) -> bool {
        match flush(&mut self.client.conn, &mut self.client.output) {
            Ok(progress) => {
                if self.tls_upgrade && self.client.output.is_empty() {
                    self.start_client_tls(ctx);
                    return true;
                }
                progress
            }
            Err(e) => {
                log::debug!("{} client write failed: {e}", self.id);
                self.client.output.clear();
                if self.closing.is_none() {
                    self.dispatch(Event::ClientClosed, ctx);
                }
                true
            }
        }
    }

    /// AUTH TLS: the 234 has left in plaintext; from here on the control connection is TLS.
    pub(super) fn start_client_tls(&mut self, ctx: &mut WorkerCtx<'_>) {
        self.tls_upgrade = false;
        // SECURITY: STARTTLS command injection (CVE-2011-0411 class). Whatever the client
        // sent after AUTH TLS before the handshake is plaintext nobody authenticated: it is
        // discarded, never run as commands.
        if !self.client.input.is_empty() {
            let detail = format!(
                "{} plaintext bytes after AUTH TLS discarded",
                self.client.input.len()
            );
            log::warn!("{} {detail}", self.id);
            self.audit(
                ctx,
                &AuditRecord::PolicyViolation {
                    kind: "starttls_injection",
                    detail,
                },
            );
            self.client.input = Vec::new();
        }
        self.client.framer = LineFramer::new(MAX_COMMAND_LINE);
        self.client.telnet = TelnetFilter::new();
        match self.tls_config.as_ref().map(|c| tls::accept(&c.control)) {
            Some(Ok(conn)) => {
                self.client.conn.tls = Some(conn);
                // The ClientHello may already wait in the socket.
                self.client.conn.readable = true;
            }
            _ => {
                log::error!("{} cannot start TLS", self.id);
                self.client.output.clear();
                self.closing = Some(CloseReason::ClientClosed);
            }
        }
    }
}
