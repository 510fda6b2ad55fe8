//! Where the control machine is: its phases, each carrying what it needs, and how far the
//! login is.

use super::transfer::Transfer;
use super::*;

/// Where the session is.
#[derive(Debug)]
pub(super) enum Phase {
    AwaitUser,
    AwaitPass,
    /// A failed login; 530 goes out when the FailedLogin timer fires.
    FailedLogin {
        /// The address was banned meanwhile: the answer is 421 and the session closes.
        ban_pending: bool,
        /// The login timeout passed meanwhile: the session closes after the 530.
        expired: bool,
    },
    Connecting {
        pass: Vec<u8>,
    },
    AwaitGreeting {
        pass: Vec<u8>,
    },
    /// AUTH TLS sent to a backend with explicit TLS.
    AwaitServerAuth {
        pass: Vec<u8>,
    },
    AwaitUserReply {
        pass: Vec<u8>,
    },
    AwaitPassReply,
    /// The backend accepted the login; ftpgate's own PBSZ 0 and PROT P toward a TLS
    /// backend are answered first (`owed` replies), then `reply` (its 230) goes to the
    /// client.
    AwaitServerProtection {
        reply: Reply,
        owed: u8,
    },
    /// Logged in, no command in flight.
    Ready,
    /// ftpgate's own PWD is in flight (after login, or after a CWD whose target it cannot
    /// compute). Its reply sets the working directory and is not relayed; client commands
    /// wait for it.
    AwaitPwd,
    /// A command forwarded to the backend; its final reply is relayed.
    Forwarded {
        verb: Verb,
        arg: Vec<u8>,
        feat: bool,
    },
    Transfer(Box<Transfer>),
    /// An upload's 226 went to the client; its record waits for the backend's digest
    /// (`verify_uploads`, see `verify.rs`). Client commands wait.
    VerifyUpload(Box<super::verify::Verify>),
    /// The backend's final replies still owed for an aborted or failed transfer: relay them
    /// (`relay`) or swallow them, then back to Ready.
    Draining {
        replies: u8,
        relay: bool,
    },
    Closed,
}

/// How far the session's login is. Before it, what the bounds and the audit trail's
/// de-duplication of pre-login commands need; after it, nothing.
#[derive(Debug)]
pub(super) enum Login {
    Pending(BeforeLogin),
    Done,
}

#[derive(Debug, Default)]
pub(super) struct BeforeLogin {
    /// The attempt since the last PASS.
    pub(super) attempt: LoginAttempt,
    /// Command lines taken (bounded: [`MAX_COMMANDS_BEFORE_LOGIN`]).
    pub(super) commands: u32,
    /// (verb, decision, reply) of the commands recorded.
    pub(super) audited: Vec<(String, &'static str, u16)>,
}

/// What a login attempt needs to remember from its PASS to its answer.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LoginAttempt {
    /// The failed-login delay since PASS has passed: a failure is answered at once.
    pub(super) delay_over: bool,
    /// A known user's longer login timeout replaced the common one at PASS.
    pub(super) extended: bool,
}

impl Phase {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Phase::AwaitUser => "AwaitUser",
            Phase::AwaitPass => "AwaitPass",
            Phase::FailedLogin { .. } => "FailedLogin",
            Phase::Connecting { .. } => "Connecting",
            Phase::AwaitGreeting { .. } => "AwaitGreeting",
            Phase::AwaitServerAuth { .. } => "AwaitServerAuth",
            Phase::AwaitUserReply { .. } => "AwaitUserReply",
            Phase::AwaitPassReply => "AwaitPassReply",
            Phase::AwaitServerProtection { .. } => "AwaitServerProtection",
            Phase::Ready => "Ready",
            Phase::AwaitPwd => "AwaitPwd",
            Phase::Forwarded { .. } => "Forwarded",
            Phase::Transfer(_) => "Transfer",
            Phase::VerifyUpload(_) => "VerifyUpload",
            Phase::Draining { .. } => "Draining",
            Phase::Closed => "Closed",
        }
    }
}
