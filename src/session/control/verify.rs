//! `verify_uploads`: after an upload the backend stored whole (`STOR` without `REST`), and
//! after its 226 went to the client, ftpgate asks the backend for the file's SHA-256
//! (`OPTS HASH SHA-256`, then `HASH name`; where either is refused, the older
//! `XSHA256 name`) and records in the transfer event whether it equals the SHA-256 of the
//! bytes relayed (`backend_sha256_match`): end-to-end integrity, the proof that what the
//! partner sent is what the server keeps. At most three commands per upload. Client commands
//! wait meanwhile; the transfer event waits too, and is written whatever happens (no answer
//! in time, a refusal, the session's end).

use super::*;
use crate::ftp::hash::{Method, digest_from_reply};

/// An upload's record waiting for the backend's digest.
#[derive(Debug)]
pub(super) struct Verify {
    pub(super) record: AuditRecord,
    /// The name as the client gave it (the backend's working directory is the client's).
    arg: Vec<u8>,
    /// The bytes relayed: the range the backend's answer must cover.
    size: u64,
    /// Which question is in flight.
    step: Step,
}

/// The questions, in the order they are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `OPTS HASH SHA-256`.
    Select,
    /// `HASH name`.
    Hash,
    /// `XSHA256 name`: the backend refused `OPTS HASH` or `HASH` (a server without
    /// draft-bryan-ftpext-hash, or one whose administrator limits `HASH` alone).
    Xsha256,
}

impl ControlFsm {
    /// Whether the transfer in flight is an upload its backend is to verify.
    pub(super) fn verifies_upload(&self) -> bool {
        let Phase::Transfer(t) = &self.phase else {
            return false;
        };
        let on = self
            .user
            .as_ref()
            .and_then(|u| u.known.as_ref())
            .is_some_and(|k| k.verify_uploads);
        on && t.verb == Verb::Stor && t.rest.is_none()
    }

    /// Asks the backend for the digest of the upload `record` describes.
    pub(super) fn start_verify(
        &mut self,
        record: AuditRecord,
        arg: Vec<u8>,
        out: &mut Vec<Action>,
    ) {
        let size = match &record {
            AuditRecord::Transfer { bytes, .. } => *bytes,
            _ => 0,
        };
        let v = Box::new(Verify {
            record,
            arg,
            size,
            step: Step::Select,
        });
        self.ask(v, Step::Select, out);
    }

    pub(super) fn on_verify_reply(&mut self, v: Box<Verify>, reply: Reply, out: &mut Vec<Action>) {
        if reply.is_preliminary() {
            self.phase = Phase::VerifyUpload(v);
            return;
        }
        match v.step {
            Step::Select if reply.is_positive_completion() => self.ask(v, Step::Hash, out),
            Step::Select => self.ask(v, Step::Xsha256, out),
            Step::Hash if !reply.is_positive_completion() => self.ask(v, Step::Xsha256, out),
            Step::Hash => {
                let method = Method::Hash;
                let digest = digest_from_reply(method, &reply, v.size);
                self.finish_verify(v, digest, out)
            }
            Step::Xsha256 => {
                let digest = digest_from_reply(Method::Xsha256, &reply, v.size);
                self.finish_verify(v, digest, out)
            }
        }
    }

    /// Sends the question `step` names and waits for its answer.
    fn ask(&mut self, mut v: Box<Verify>, step: Step, out: &mut Vec<Action>) {
        let verb = match step {
            Step::Select => Verb::Opts,
            Step::Hash => Verb::Hash,
            Step::Xsha256 => Verb::Xsha256,
        };
        let arg: &[u8] = if step == Step::Select {
            b"HASH SHA-256"
        } else {
            &v.arg
        };
        out.push(Action::SendServer(Command::new(verb, arg)));
        out.push(Action::SetTimer(
            TimerKind::BackendReply,
            secs(self.config.backend_reply_timeout),
        ));
        v.step = step;
        self.phase = Phase::VerifyUpload(v);
    }

    /// Writes the waiting record, with the backend's digest when there is one, and goes on.
    pub(super) fn finish_verify(
        &mut self,
        v: Box<Verify>,
        digest: Option<String>,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::Audit(with_backend_digest(v.record, digest)));
        self.enter_ready(out);
    }

    /// The backend did not answer in time: the record goes without the comparison, and the
    /// reply still owed is swallowed when it comes.
    pub(super) fn verify_timed_out(&mut self, v: Box<Verify>, out: &mut Vec<Action>) {
        out.push(Action::Audit(with_backend_digest(v.record, None)));
        self.drain(1, false, out);
    }
}

/// `record` with the backend's digest and whether it matches the relayed bytes' one.
pub(super) fn with_backend_digest(mut record: AuditRecord, digest: Option<String>) -> AuditRecord {
    if let (
        AuditRecord::Transfer {
            sha256,
            backend_check,
            ..
        },
        Some(digest),
    ) = (&mut record, digest)
    {
        *backend_check = Some(Box::new(crate::audit::BackendCheck {
            backend_sha256_match: sha256.as_deref() == Some(digest.as_str()),
            backend_sha256: digest,
        }));
    }
    record
}
