//! Filecopy mode, the session's side: the copy of a transfer that starts, the chunks handed
//! to the worker's writer thread, and the final reply held until the copy is on the disk.

use super::data::{CopyState, Input};
use super::*;

impl Session {
    /// Filecopy mode: the copy of the file transfer that starts (none for a listing).
    pub(super) fn new_copy(&mut self, ctx: &WorkerCtx<'_>) -> Option<RelayCopy> {
        let audit = &self.policy.audit;
        let settings = audit
            .filecopy
            .as_ref()
            .filter(|_| audit.mode == crate::policy::AuditMode::Filecopy)?;
        let arg = self.fsm.transfer_file()?;
        self.copies += 1;
        let path = filecopy::copy_path(
            &settings.directory,
            std::time::SystemTime::now(),
            &self.id,
            self.copies,
            arg,
        );
        let error = match ctx.copier {
            Some(_) => None,
            None => {
                log::error!("{} no filecopy writer in this worker", self.id);
                Some("no filecopy writer".to_owned())
            }
        };
        Some(RelayCopy {
            id: ctx.copier.map_or(0, FileCopier::new_id),
            path: path.to_string_lossy().into_owned(),
            target: Some(Box::new(Target {
                owner: Owner {
                    slot: self.slot,
                    generation: self.generation,
                },
                path,
            })),
            pending: Vec::new(),
            finished: false,
            result: None,
            error,
            abort_on_failure: settings.on_failure == crate::policy::CopyFailure::Abort,
        })
    }

    /// Where the copy of a relay that is being closed stands. A copy that was not finished
    /// (the relay failed, was aborted, or the session closes) is abandoned: what was copied
    /// is kept (the writer fsyncs it) and nobody waits for it. A finished one whose report
    /// has not come yet is `Writing`: a transfer that moved every byte waits for it.
    pub(super) fn settle_copy(copy: RelayCopy, ctx: &WorkerCtx<'_>) -> CopyState {
        let RelayCopy {
            id,
            path,
            target,
            pending,
            finished,
            result,
            error,
            abort_on_failure,
        } = copy;
        match (error, result) {
            (Some(reason), _) | (None, Some(Err(reason))) => CopyState::Failed {
                reason,
                abort_on_failure,
            },
            (None, Some(Ok(path))) => CopyState::Stored(path),
            (None, None) => {
                if !finished {
                    if let Some(copier) = ctx.copier {
                        copier.send_or_queue(Chunk {
                            id,
                            target,
                            bytes: pending,
                            end: End::Abandon,
                        });
                    }
                }
                CopyState::Writing {
                    id,
                    path,
                    abort_on_failure,
                }
            }
        }
    }

    /// The filecopy writer's report on copy `id`. Returns it when this session no longer
    /// waits for it (its transfer was aborted or failed).
    pub fn on_copy_report(
        &mut self,
        id: u64,
        result: Result<String, String>,
        ctx: &mut WorkerCtx<'_>,
    ) -> Option<Result<String, String>> {
        if self.data.settling_copy() == Some(id) {
            if let Err(reason) = &result {
                log::error!("{} audit copy failed: {reason}", self.id);
            }
            self.data_input(Input::CopySettled(result), ctx);
            self.run_events(ctx);
            return None;
        }
        let Some(copy) = self
            .sockets
            .relay
            .as_mut()
            .and_then(|r| r.copy.as_mut())
            .filter(|c| c.id == id)
        else {
            return Some(result);
        };
        match result {
            // The last chunk is written; the relay is still closing its connections.
            Ok(path) => copy.result = Some(Ok(path)),
            Err(reason) => {
                log::error!("{} audit copy failed: {reason}", self.id);
                copy.error = Some(reason);
                copy.pending = Vec::new();
                copy.target = None;
                if copy.abort_on_failure {
                    // SECURITY: no transfer without its copy: stop it now.
                    self.fail_relay_for_copy(ctx);
                    self.run_events(ctx);
                }
            }
        }
        None
    }
}
