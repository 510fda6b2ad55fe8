//! Filecopy mode, the session's side: the copy of a transfer that starts, the chunks handed
//! to the worker's writer thread, and the final reply held until the copy is on the disk.

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

    /// A relay ended before its copy was finished (failed, aborted, or the session closes):
    /// what was copied is kept (the writer fsyncs it) and nobody waits for it. Returns what
    /// the transfer event says of the copy.
    pub(super) fn abandon_copy(copy: RelayCopy, ctx: &WorkerCtx<'_>) -> CopyNote {
        let RelayCopy {
            id,
            path,
            target,
            pending,
            finished,
            result,
            error,
            ..
        } = copy;
        match (error, result) {
            (Some(reason), _) | (None, Some(Err(reason))) => CopyNote::Failed(reason),
            (None, Some(Ok(path))) => CopyNote::Stored(path),
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
                CopyNote::Stored(path)
            }
        }
    }

    /// The relay moved every byte: the final reply waits for the copy's report.
    pub(super) fn copy_relayed(
        &mut self,
        copy: RelayCopy,
        report: RelayReport,
        ctx: &mut WorkerCtx<'_>,
    ) {
        let abort = copy.abort_on_failure;
        match (copy.error, copy.result) {
            (Some(reason), _) => self.copy_settled(Err(reason), report, abort, ctx),
            (None, Some(result)) => self.copy_settled(result, report, abort, ctx),
            (None, None) => {
                self.awaiting_copy = Some(AwaitCopy {
                    id: copy.id,
                    path: copy.path,
                    report,
                    abort_on_failure: abort,
                });
                self.set_deadline(
                    TIMER_COPY_RESULT,
                    Duration::from_secs(FILECOPY_RESULT_TIMEOUT),
                    ctx,
                );
            }
        }
    }

    /// The copy of a relay that moved every byte is settled: the transfer ends.
    pub(super) fn copy_settled(
        &mut self,
        result: Result<String, String>,
        mut report: RelayReport,
        abort_on_failure: bool,
        ctx: &mut WorkerCtx<'_>,
    ) {
        self.cancel_deadline(TIMER_COPY_RESULT, ctx);
        match result {
            Ok(path) => {
                report.filecopy = Some(path);
                self.dispatch(Event::RelayDone(report), ctx);
            }
            Err(reason) => {
                log::error!("{} audit copy failed: {reason}", self.id);
                report.filecopy_error = Some(reason);
                if abort_on_failure {
                    self.dispatch(Event::RelayCopyFailed(report), ctx);
                } else {
                    self.dispatch(Event::RelayDone(report), ctx);
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
        if self.awaiting_copy.as_ref().is_some_and(|w| w.id == id) {
            if let Some(wait) = self.awaiting_copy.take() {
                self.copy_settled(result, wait.report, wait.abort_on_failure, ctx);
            }
            return None;
        }
        let Some(relay) = self
            .relay
            .as_mut()
            .filter(|r| r.copy.as_ref().is_some_and(|c| c.id == id))
        else {
            return Some(result);
        };
        let Some(copy) = relay.copy.as_mut() else {
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
                    let report = self.stop_data(ctx).unwrap_or_default();
                    self.dispatch(Event::RelayCopyFailed(report), ctx);
                }
            }
        }
        None
    }
}
