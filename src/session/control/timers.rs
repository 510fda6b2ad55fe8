//! The control machine's timers: login, idle (during a relay: a stalled transfer), the
//! session limit (and what it does to a transfer in flight), failed-login delay, data
//! connection and backend reply.

use super::*;

impl ControlFsm {
    pub(super) fn on_timer(&mut self, kind: TimerKind, out: &mut Vec<Action>) {
        match kind {
            TimerKind::Login if !self.is_logged_in() => self.on_login_timeout(out),
            TimerKind::Idle if self.is_logged_in() && self.transfer_step().is_none() => {
                self.fail_close("Timeout.", CloseReason::IdleTimeout, out)
            }
            // The shell passes the idle timer on during a relay only when no byte moved
            // for the idle time: the stalled transfer is cut and recorded as a timeout.
            TimerKind::Idle if matches!(self.transfer_step(), Some(TransferStep::Relaying(_))) => {
                self.fail_close(
                    "Timeout: the transfer stalled.",
                    CloseReason::IdleTimeout,
                    out,
                )
            }
            // Still setting up the transfer (its own timers bound that): look again later.
            TimerKind::Idle if self.transfer_step().is_some() => {
                if let Some(t) = self.user_timeouts() {
                    out.push(Action::SetTimer(TimerKind::Idle, secs(t.idle)));
                }
            }
            TimerKind::Session
                if self.transfer_step().is_some()
                    && self.user_timeouts().is_some_and(|t| {
                        t.session_during_transfer == crate::policy::DuringTransfer::Finish
                    }) =>
            {
                self.session_expired = true;
            }
            TimerKind::Session => self.fail_close(
                "Session time limit reached.",
                CloseReason::SessionTimeout,
                out,
            ),
            TimerKind::FailedLogin => {
                if let Some(attempt) = self.attempt() {
                    attempt.delay_over = true;
                }
                if let Phase::FailedLogin {
                    ban_pending,
                    expired,
                } = self.phase
                {
                    self.answer_failed_login(ban_pending, expired, out);
                }
            }
            TimerKind::DataConnect => match self.transfer_step() {
                Some(TransferStep::AwaitPasv | TransferStep::AwaitDataConnect { .. }) => {
                    self.client_data_failed(out)
                }
                Some(_) => {}
                None => {
                    // SECURITY: a passive port stays open only for a bounded time.
                    if self.client == ClientData::Listening {
                        self.abort_data(out);
                    }
                }
            },
            TimerKind::BackendReply if matches!(self.phase, Phase::VerifyUpload(_)) => {
                if let Phase::VerifyUpload(v) = std::mem::replace(&mut self.phase, Phase::Ready) {
                    self.verify_timed_out(v, out);
                }
            }
            TimerKind::BackendReply => {
                let waiting = match &self.phase {
                    Phase::Ready
                    | Phase::AwaitUser
                    | Phase::AwaitPass
                    | Phase::FailedLogin { .. } => false,
                    // While data moves the backend owes nothing until the relay is done.
                    Phase::Transfer(t) => match &t.step {
                        TransferStep::Relaying(stage) => matches!(stage, RelayStage::Relayed(_)),
                        _ => true,
                    },
                    _ => true,
                };
                if waiting {
                    self.fail_close(
                        "Service not available: the backend did not answer in time.",
                        CloseReason::BackendTimeout,
                        out,
                    );
                }
            }
            _ => {}
        }
    }
}
