//! Transfers: the backend's passive port, both data connections up (a protected one with its
//! TLS handshake accepted) before the backend sees the command, the relay, the final reply
//! held until the client's data connection is closed, ABOR, and the replies still owed by the
//! backend after a failed or aborted transfer.

use super::*;

/// A transfer in progress and how far it got.
#[derive(Debug)]
pub(super) struct Transfer {
    pub(super) verb: Verb,
    pub(super) arg: Vec<u8>,
    pub(super) direction: Direction,
    pub(super) rest: Option<u64>,
    pub(super) step: TransferStep,
    /// ftpgate sent the client its own 150 (a protected data connection waiting for its
    /// handshake): the backend's preliminary reply is not relayed.
    pub(super) own_preliminary: bool,
}

#[derive(Debug)]
pub(super) enum TransferStep {
    /// PASV/EPSV sent to the backend.
    AwaitPasv,
    /// Connecting to the backend's data port (`server_ready` once it is up) and waiting
    /// for the client's data connection; the command goes to the backend only when both are
    /// up, so a client that never connects costs the backend nothing (no empty file from a
    /// failed STOR).
    AwaitDataConnect { server_ready: bool },
    /// REST sent to the backend.
    AwaitRest,
    /// The transfer command sent; waiting for 1xx.
    AwaitPreliminary,
    /// Data moves; the stage says what happened since.
    Relaying(RelayStage),
}

/// How far a relaying transfer got: the relay's end and the backend's final reply come in
/// either order, and the transfer ends when both are there.
#[derive(Debug)]
pub(super) enum RelayStage {
    /// Data moves; the backend's final reply has not come.
    Moving,
    /// The backend's positive final reply came first; it waits for the relay to finish.
    Held(Reply),
    /// The relay finished first, with what it reports; the final reply is awaited.
    Relayed(RelayReport),
    /// The relay is being stopped (StopRelay sent): how the transfer ends once the shell
    /// reports what crossed, and whether the backend's final reply had come (`held`).
    Stopping { why: Stopping, held: bool },
}

/// Why a running relay is being stopped.
#[derive(Debug)]
pub(super) enum Stopping {
    /// The client sent ABOR.
    Abort,
    /// The backend's final reply says the transfer failed; it goes to the client.
    BackendFailed(Reply),
    /// The session ends (QUIT, a timeout, a side gone): the record, then the close.
    Close(CloseReason),
}

fn direction_of(verb: Verb) -> Direction {
    if verb.is_upload() {
        Direction::Upload
    } else {
        Direction::Download
    }
}

impl ControlFsm {
    /// The stage of a relaying transfer.
    pub(super) fn relay_stage(&mut self) -> Option<&mut RelayStage> {
        match &mut self.phase {
            Phase::Transfer(t) => match &mut t.step {
                TransferStep::Relaying(stage) => Some(stage),
                _ => None,
            },
            _ => None,
        }
    }

    pub(super) fn start_transfer(&mut self, cmd: Command, out: &mut Vec<Action>) {
        if self.tls_required() == TlsRequire::All && !self.tls.data_protected() {
            return self.local(
                &cmd,
                "deny",
                codes::DATA_NOT_PROTECTED,
                "Data connections must be encrypted: use PROT P.",
                out,
            );
        }
        if matches!(self.client, ClientData::None | ClientData::Opening { .. }) {
            return self.local(
                &cmd,
                "deny",
                codes::CANT_OPEN_DATA,
                "Use PORT or PASV first.",
                out,
            );
        }
        let server_ipv6 = self.server_ipv6;
        out.push(Action::SendServer(if server_ipv6 {
            Command::new(Verb::Epsv, b"")
        } else {
            Command::new(Verb::Pasv, b"")
        }));
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
        out.push(Action::CancelTimer(TimerKind::Idle));
        if let ClientData::Active(addr) = self.client {
            self.client = ClientData::Connecting;
            out.push(Action::ConnectClientData(addr));
        }
        if !self.client.ready() {
            out.push(Action::SetTimer(
                TimerKind::DataConnect,
                secs(self.data_connect_timeout()),
            ));
        }
        self.phase = Phase::Transfer(Box::new(Transfer {
            verb: cmd.verb,
            direction: direction_of(cmd.verb),
            arg: cmd.arg,
            rest: self.rest.take(),
            step: TransferStep::AwaitPasv,
            own_preliminary: false,
        }));
    }

    /// The client's data connection failed or did not come in time, before the backend saw
    /// the transfer command: 425, and the backend's PASV reply (if still owed) is swallowed.
    pub(super) fn client_data_failed(&mut self, out: &mut Vec<Action>) {
        let owed = match self.transfer_step() {
            Some(TransferStep::AwaitPasv) => 1,
            Some(TransferStep::AwaitDataConnect { .. }) => 0,
            _ => return,
        };
        self.end_transfer_with_code("failed", None, codes::CANT_OPEN_DATA, out);
        self.reply(
            codes::CANT_OPEN_DATA,
            "Failed to establish data connection.",
            out,
        );
        self.drain(owed, false, out);
    }

    /// Sends REST (if any) or the transfer command once both data connections are up.
    ///
    /// SECURITY: a protected client data connection counts as up only once its TLS
    /// handshake is finished and accepted, so a thief's connection never gets a byte and the
    /// backend never sees the command for it. A client that waits for the 150 before its
    /// handshake gets ftpgate's own 150 first (and the backend's is then not relayed).
    pub(super) fn maybe_send_transfer_command(&mut self, out: &mut Vec<Action>) {
        let client_ready = self.client.ready();
        let tls_pending = self.client.handshaking();
        let timeout = self.data_connect_timeout();
        let Phase::Transfer(t) = &mut self.phase else {
            return;
        };
        if !matches!(
            t.step,
            TransferStep::AwaitDataConnect { server_ready: true }
        ) {
            return;
        }
        if !client_ready {
            if tls_pending && !t.own_preliminary {
                t.own_preliminary = true;
                out.push(Action::SendClient(Reply::new(
                    codes::DATA_OPENING,
                    "Opening data connection.",
                )));
                out.push(Action::SetTimer(TimerKind::DataConnect, secs(timeout)));
            }
            return;
        }
        match t.rest {
            Some(offset) if offset > 0 => {
                t.step = TransferStep::AwaitRest;
                out.push(Action::SendServer(Command::new(
                    Verb::Rest,
                    offset.to_string().as_bytes(),
                )));
            }
            _ => {
                t.step = TransferStep::AwaitPreliminary;
                out.push(Action::SendServer(Command::new(t.verb, &t.arg)));
            }
        }
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
    }

    pub(super) fn on_server_data_connected(&mut self, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &mut self.phase else {
            return;
        };
        if !matches!(t.step, TransferStep::AwaitDataConnect { .. }) {
            return;
        }
        t.step = TransferStep::AwaitDataConnect { server_ready: true };
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        self.maybe_send_transfer_command(out);
    }

    pub(super) fn on_transfer_reply(&mut self, reply: Reply, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &mut self.phase else {
            return;
        };
        match &mut t.step {
            TransferStep::AwaitPasv => {
                let port = if reply.code == codes::ENTERING_PASSIVE {
                    parse_pasv_reply(reply.text()).ok().map(|a| a.port())
                } else if reply.code == codes::ENTERING_EXT_PASSIVE {
                    parse_epsv_reply(reply.text()).ok()
                } else {
                    None
                };
                match port {
                    // SECURITY: the address inside the backend's 227/229 is ignored; the
                    // shell connects to the backend's control address at this port.
                    Some(port) => {
                        t.step = TransferStep::AwaitDataConnect {
                            server_ready: false,
                        };
                        out.push(Action::ConnectServerData(port));
                    }
                    None => self.transfer_failed(
                        Reply::new(
                            codes::CANT_OPEN_DATA,
                            "Cannot open data connection to the server.",
                        ),
                        None,
                        out,
                    ),
                }
            }
            TransferStep::AwaitDataConnect { .. } => {
                // A reply before we sent anything: the backend is confused.
                self.transfer_failed(reply, None, out);
            }
            TransferStep::AwaitRest => {
                if reply.code == codes::PENDING_FURTHER {
                    t.step = TransferStep::AwaitPreliminary;
                    out.push(Action::SendServer(Command::new(t.verb, &t.arg)));
                    out.push(Action::SetTimer(
                        TimerKind::BackendReply,
                        secs(self.config.backend_reply_timeout),
                    ));
                } else {
                    self.transfer_failed(reply, None, out);
                }
            }
            TransferStep::AwaitPreliminary => {
                if reply.is_preliminary() {
                    t.step = TransferStep::Relaying(RelayStage::Moving);
                    if !t.own_preliminary {
                        out.push(Action::SendClient(reply));
                    }
                    out.push(Action::CancelTimer(TimerKind::BackendReply));
                    // The idle time now runs from the last byte that moved (the shell
                    // looks at the relay when it fires): a stalled transfer is cut.
                    let idle = self
                        .user
                        .as_ref()
                        .and_then(|u| u.known.as_ref())
                        .map(|k| k.timeouts.idle);
                    if let Some(idle) = idle {
                        out.push(Action::SetTimer(TimerKind::Idle, secs(idle)));
                    }
                    let max_bytes = self
                        .user
                        .as_ref()
                        .and_then(|u| u.known.as_ref())
                        .and_then(|k| k.max_file_size)
                        // Listings are not files: the size limit does not cut them.
                        .filter(|_| !matches!(t.verb, Verb::List | Verb::Nlst | Verb::Mlsd));
                    out.push(Action::StartRelay {
                        direction: t.direction,
                        max_bytes,
                    });
                } else {
                    self.transfer_failed(reply, None, out);
                }
            }
            TransferStep::Relaying(stage) => {
                if reply.is_preliminary() {
                    out.push(Action::SendClient(reply));
                    return;
                }
                let positive = reply.is_positive_completion();
                match std::mem::replace(stage, RelayStage::Moving) {
                    RelayStage::Relayed(report) if positive => {
                        self.transfer_finished(reply, report, out)
                    }
                    RelayStage::Relayed(report) => self.transfer_failed(reply, Some(report), out),
                    RelayStage::Moving | RelayStage::Held(_) if positive => {
                        *stage = RelayStage::Held(reply)
                    }
                    moving @ (RelayStage::Moving | RelayStage::Held(_)) => {
                        // The data still moves: stop it, and end once it says what crossed.
                        *stage = RelayStage::Stopping {
                            why: Stopping::BackendFailed(reply),
                            held: matches!(moving, RelayStage::Held(_)),
                        };
                        out.push(Action::StopRelay);
                    }
                    // Stopping already: its end decides.
                    stopping @ RelayStage::Stopping { .. } => *stage = stopping,
                }
            }
        }
    }

    pub(super) fn on_relay_done(&mut self, report: RelayReport, out: &mut Vec<Action>) {
        let Some(stage) = self.relay_stage() else {
            return;
        };
        match std::mem::replace(stage, RelayStage::Moving) {
            RelayStage::Held(reply) => self.transfer_finished(reply, report, out),
            RelayStage::Moving => {
                *stage = RelayStage::Relayed(report);
                out.push(Action::SetTimer(
                    TimerKind::BackendReply,
                    secs(self.config.backend_reply_timeout),
                ));
            }
            other => *stage = other,
        }
    }

    /// The backend's final replies still owed once the relay ended early: none when its
    /// final reply came already.
    fn replies_owed(&self) -> u8 {
        match &self.phase {
            Phase::Transfer(t)
                if matches!(
                    t.step,
                    TransferStep::Relaying(
                        RelayStage::Held(_) | RelayStage::Stopping { held: true, .. }
                    )
                ) =>
            {
                0
            }
            _ => 1,
        }
    }

    /// The file size limit stopped the relay: 552 for an upload (the backend keeps the part
    /// it received; the transfer event reports it), 426 for a download. The backend's own
    /// final reply to the cut transfer is swallowed.
    pub(super) fn on_relay_over_limit(&mut self, report: RelayReport, out: &mut Vec<Action>) {
        let Phase::Transfer(t) = &self.phase else {
            return;
        };
        let owed = self.replies_owed();
        let upload = t.direction == Direction::Upload;
        out.push(Action::Audit(AuditRecord::PolicyViolation {
            kind: "limit",
            detail: format!("max_file_size exceeded after {} bytes", report.bytes),
        }));
        let code = if upload {
            codes::EXCEEDED_STORAGE
        } else {
            codes::TRANSFER_ABORTED
        };
        self.end_transfer_with_code("size_limit", Some(report), code, out);
        self.reply(code, "File size limit exceeded; transfer aborted.", out);
        self.drain(owed, false, out);
    }

    /// Filecopy mode: the audit copy failed and the policy's `on_failure` is "abort": 451 to
    /// the client and result "copy_failed". The backend's own final reply is swallowed.
    pub(super) fn on_relay_copy_failed(&mut self, report: RelayReport, out: &mut Vec<Action>) {
        if self.relay_stage().is_none() {
            return;
        }
        let owed = self.replies_owed();
        self.end_transfer_with_code("copy_failed", Some(report), codes::LOCAL_ERROR, out);
        self.reply(
            codes::LOCAL_ERROR,
            "Local error: the audit copy failed.",
            out,
        );
        self.drain(owed, false, out);
    }

    pub(super) fn on_relay_failed(
        &mut self,
        report: RelayReport,
        side: Side,
        out: &mut Vec<Action>,
    ) {
        if self.transfer_step().is_none() {
            return;
        }
        let owed = self.replies_owed();
        let (text, result) = match side {
            _ if report.tls_failed => (
                "TLS failure on the data connection; transfer aborted.",
                "tls_failed",
            ),
            Side::Client => ("Connection closed; transfer aborted.", "client_gone"),
            Side::Server => (
                "Connection to the server failed; transfer aborted.",
                "backend_gone",
            ),
        };
        self.end_transfer_with_code(result, Some(report), codes::TRANSFER_ABORTED, out);
        self.reply(codes::TRANSFER_ABORTED, text, out);
        self.drain(owed, false, out);
    }

    /// The relay that StopRelay stopped reported what crossed: the transfer ends as decided.
    pub(super) fn on_relay_stopped(&mut self, report: RelayReport, out: &mut Vec<Action>) {
        let Some(stage) = self.relay_stage() else {
            return;
        };
        match std::mem::replace(stage, RelayStage::Moving) {
            RelayStage::Stopping {
                why: Stopping::Abort,
                held,
            } => self.aborted(report, held, out),
            RelayStage::Stopping {
                why: Stopping::BackendFailed(reply),
                ..
            } => self.transfer_failed(reply, Some(report), out),
            RelayStage::Stopping {
                why: Stopping::Close(reason),
                ..
            } => {
                // Cut by the session's end: the result says what ended it.
                self.end_transfer_with_code(
                    reason.transfer_result(),
                    Some(report),
                    codes::TRANSFER_ABORTED,
                    out,
                );
                self.close(reason, out);
            }
            other => *stage = other,
        }
    }

    /// The transfer ended well: the held or just-arrived final reply goes to the client.
    pub(super) fn transfer_finished(
        &mut self,
        reply: Reply,
        report: RelayReport,
        out: &mut Vec<Action>,
    ) {
        let code = reply.code;
        let verify = self.verifies_upload().then(|| match &self.phase {
            Phase::Transfer(t) => t.arg.clone(),
            _ => Vec::new(),
        });
        let before = out.len();
        self.end_transfer_with_code("ok", Some(report), code, out);
        out.push(Action::SendClient(reply));
        if let Some(arg) = verify {
            // The record waits for the backend's digest (when there is one to compare).
            let at = out.iter().skip(before).position(|a| {
                matches!(
                    a,
                    Action::Audit(AuditRecord::Transfer {
                        sha256: Some(_),
                        ..
                    })
                )
            });
            if let Some(Action::Audit(record)) = at.map(|i| out.remove(before + i)) {
                return self.start_verify(record, arg, out);
            }
        }
        self.enter_ready(out);
    }

    /// The transfer ended badly before or during the relay; `reply` goes to the client.
    pub(super) fn transfer_failed(
        &mut self,
        reply: Reply,
        report: Option<RelayReport>,
        out: &mut Vec<Action>,
    ) {
        let code = reply.code;
        self.end_transfer_with_code("failed", report, code, out);
        out.push(Action::SendClient(reply));
        self.enter_ready(out);
    }

    /// Closes the data side and records the command and the transfer, whole: what crossed
    /// comes from the relay's report (none when the relay never started).
    pub(super) fn end_transfer_with_code(
        &mut self,
        result: &'static str,
        report: Option<RelayReport>,
        code: u16,
        out: &mut Vec<Action>,
    ) {
        self.abort_data(out);
        out.push(Action::CancelTimer(TimerKind::DataConnect));
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        self.client = ClientData::None;
        let Phase::Transfer(t) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return;
        };
        let decision = "allow";
        self.audit_command(t.verb.name(), &t.arg, decision, code, out);
        let report = report.unwrap_or_default();
        out.push(Action::Audit(AuditRecord::Transfer {
            verb: t.verb.name(),
            arg: lossy(&t.arg),
            arg_hex: hex_unless_utf8(&t.arg).map(String::into_boxed_str),
            path: self.audit_path(t.verb, &t.arg),
            direction: t.direction.as_str(),
            bytes: report.bytes,
            result,
            duration_ms: report.duration_ms,
            sha256: report.sha256,
            digest: report.digest,
            backend_check: None,
            data_addresses: report.addresses,
            filecopy: report.filecopy,
            filecopy_error: report.filecopy_error.map(String::into_boxed_str),
            tls_end: report.tls_end,
        }));
    }

    /// ABOR during the relay: the relay stops first (its report makes the record), unless it
    /// already ended.
    pub(super) fn abort_transfer(&mut self, cmd: &Command, out: &mut Vec<Action>) {
        match self.relay_stage() {
            None | Some(RelayStage::Stopping { .. }) => return, // ABOR again while handled
            Some(_) => {}
        }
        self.audit_command(cmd.verb.name(), b"", "allow", codes::DATA_CLOSE_OK, out);
        let Some(stage) = self.relay_stage() else {
            return;
        };
        let held = matches!(stage, RelayStage::Held(_));
        match std::mem::replace(
            stage,
            RelayStage::Stopping {
                why: Stopping::Abort,
                held,
            },
        ) {
            RelayStage::Relayed(report) => self.aborted(report, false, out),
            _ => out.push(Action::StopRelay),
        }
    }

    /// The transfer was aborted with ABOR and `report` says what crossed; `had_final`: the
    /// backend's final reply had come.
    fn aborted(&mut self, report: RelayReport, had_final: bool, out: &mut Vec<Action>) {
        self.end_transfer_with_code("aborted", Some(report), codes::TRANSFER_ABORTED, out);
        out.push(Action::SendServer(Command::new(Verb::Abor, b"")));
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
        if had_final {
            // The backend already finished; the client still gets the RFC 959 pair: 426 for
            // the transfer it aborted, then the backend's reply to ABOR.
            self.reply(
                codes::TRANSFER_ABORTED,
                "Connection closed; transfer aborted.",
                out,
            );
            self.drain(1, true, out);
        } else {
            // The backend answers both: 426 (or 226) for the transfer, then 226 for ABOR.
            self.drain(2, true, out);
        }
    }

    pub(super) fn drain(&mut self, replies: u8, relay: bool, out: &mut Vec<Action>) {
        if replies == 0 {
            self.enter_ready(out);
        } else {
            self.phase = Phase::Draining { replies, relay };
            out.push(Action::SetTimer(
                TimerKind::BackendReply,
                secs(self.config.backend_reply_timeout),
            ));
        }
    }

    pub(super) fn enter_ready(&mut self, out: &mut Vec<Action>) {
        self.phase = Phase::Ready;
        if self.session_expired {
            // The transfer the session's time limit let finish has: now the limit.
            return self.fail_close(
                "Session time limit reached.",
                CloseReason::SessionTimeout,
                out,
            );
        }
        out.push(Action::CancelTimer(TimerKind::BackendReply));
        if let Some(t) = self.user_timeouts() {
            out.push(Action::SetTimer(TimerKind::Idle, secs(t.idle)));
        }
    }

    /// A reply the backend still owed for an aborted or failed transfer: relayed or not, as
    /// the transfer's end decided.
    pub(super) fn on_draining_reply(
        &mut self,
        replies: u8,
        relay: bool,
        reply: Reply,
        out: &mut Vec<Action>,
    ) {
        if reply.is_preliminary() {
            if relay {
                out.push(Action::SendClient(reply));
            }
            self.phase = Phase::Draining { replies, relay };
            return;
        }
        if relay {
            out.push(Action::SendClient(reply));
        }
        self.drain(replies.saturating_sub(1), relay, out);
    }
}
