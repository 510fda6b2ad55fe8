//! The [`Checker`]: collects every error of a policy file while the loader validates it, and
//! places each one at its line:column at the end.
//!
//! An error is recorded at a path of the document (its key or its value) or at a byte
//! offset, and placed by `locate.rs` only when all are known, in one pass over the text. At
//! that point the errors about values the sifting took out (`schema.rs`) and those inside keys
//! refused as not supported yet are dropped, so that each problem is reported once. The
//! checks themselves are `impl Checker` blocks in the files of the sections they check; those
//! that every section uses are in `values.rs`.

use std::collections::HashSet;
use std::fmt;

use crate::policy::locate::{self, JsonPath, Seg, Target};
use crate::policy::schema::Sifted;
use crate::policy::{Policy, PolicyError};

use super::Unsupported;

/// An error waiting for its position.
struct Pending {
    at: At,
    message: String,
}

enum At {
    Path(JsonPath, Target),
    Offset(usize),
}

/// Collects errors while the raw model is turned into a [`Policy`]. Each check reports what
/// it finds and returns a usable value anyway, so that later checks still run; the policy
/// built is thrown away if anything was reported.
pub(super) struct Checker<'t> {
    text: &'t str,
    /// What validation found.
    pending: Vec<Pending>,
    /// What the sifting found (unknown keys, wrong JSON types): always reported.
    structural: Vec<Pending>,
    /// Where the sifting removed or replaced a wrong value: validation's complaints about
    /// these paths and anything under them are about the gap, not the file, and are dropped.
    broken: HashSet<Vec<Seg>>,
}

impl<'t> Checker<'t> {
    pub(super) fn new(text: &'t str, sifted: Sifted) -> Checker<'t> {
        let structural = sifted
            .problems
            .into_iter()
            .map(|problem| Pending {
                at: At::Path(problem.path, problem.target),
                message: problem.message,
            })
            .collect();
        let broken = sifted
            .broken
            .iter()
            .map(|path| path.segments().to_vec())
            .collect();
        Checker {
            text,
            pending: Vec::new(),
            structural,
            broken,
        }
    }

    /// Whether the sifting removed or replaced the value at `path` or at one of its parents.
    pub(super) fn is_broken(&self, path: &JsonPath) -> bool {
        let segments = path.segments();
        (0..=segments.len())
            .filter_map(|len| segments.get(..len))
            .any(|prefix| self.broken.contains(prefix))
    }

    /// An error that no later finding hides.
    pub(super) fn structural(&mut self, path: &JsonPath, target: Target, message: String) {
        self.structural.push(Pending {
            at: At::Path(path.clone(), target),
            message,
        });
    }

    fn error(&mut self, path: &JsonPath, target: Target, message: String) {
        self.pending.push(Pending {
            at: At::Path(path.clone(), target),
            message,
        });
    }

    /// `path: message`, at the value.
    pub(super) fn bad(&mut self, path: &JsonPath, message: impl fmt::Display) {
        self.error(path, Target::Value, format!("{path}: {message}"));
    }

    /// `path: message`, at the key.
    pub(super) fn bad_key(&mut self, path: &JsonPath, message: impl fmt::Display) {
        self.error(path, Target::Key, format!("{path}: {message}"));
    }

    /// A required key is absent: reported on the object that should hold it.
    pub(super) fn missing(&mut self, parent: &JsonPath, key: &str, example: &str) {
        let message = if parent.is_root() {
            format!("\"{key}\" is missing{example}")
        } else {
            format!("{parent}: \"{key}\" is missing{example}")
        };
        self.error(&parent.key(key), Target::Key, message);
    }

    /// The policy, or every error: those reported so far and the unsupported keys.
    pub(super) fn finish(
        self,
        policy: Policy,
        unsupported: Vec<Unsupported>,
    ) -> Result<Policy, Vec<PolicyError>> {
        if self.pending.is_empty() && self.structural.is_empty() && unsupported.is_empty() {
            return Ok(policy);
        }
        Err(self.errors(unsupported))
    }

    /// Every error, placed and in file order. Validation's complaints about an unsupported
    /// key or anything inside it are dropped: they would only send the operator after
    /// details of something that must go anyway. So are its complaints about values the
    /// sifting took out (see `broken`).
    pub(super) fn errors(mut self, unsupported: Vec<Unsupported>) -> Vec<PolicyError> {
        let refused: HashSet<&[Seg]> = unsupported.iter().map(|u| u.path.segments()).collect();
        let pending = std::mem::take(&mut self.pending);
        self.pending = pending
            .into_iter()
            .filter(|pending| match &pending.at {
                At::Path(path, _) => {
                    let segments = path.segments();
                    let under_refused = (0..=segments.len())
                        .filter_map(|len| segments.get(..len))
                        .any(|prefix| refused.contains(prefix));
                    !under_refused && !self.is_broken(path)
                }
                At::Offset(_) => true,
            })
            .collect();
        let structural = std::mem::take(&mut self.structural);
        self.pending.extend(structural);
        for unsupported in unsupported {
            let message = format!(
                "{} is not supported by this version of ftpgate yet{}",
                unsupported.path, unsupported.hint
            );
            self.error(&unsupported.path, unsupported.target, message);
        }
        let queries: Vec<(&[Seg], Target)> = self
            .pending
            .iter()
            .filter_map(|pending| match &pending.at {
                At::Path(path, target) => Some((path.segments(), *target)),
                At::Offset(_) => None,
            })
            .collect();
        let mut located = locate::locate_offsets(self.text, &queries).into_iter();
        let offsets: Vec<usize> = self
            .pending
            .iter()
            .map(|pending| match pending.at {
                At::Path(..) => located.next().flatten().unwrap_or(0),
                At::Offset(offset) => offset,
            })
            .collect();
        let positions = locate::line_cols(self.text, &offsets);
        let mut errors: Vec<PolicyError> = self
            .pending
            .iter()
            .zip(positions)
            .map(|(pending, (line, column))| positioned(line, column, &pending.message))
            .collect();
        errors.sort_by_key(|err| (err.line, err.column));
        errors.dedup();
        errors
    }

    /// Repeated keys: serde_json would keep the last one of a map without a word.
    pub(super) fn duplicates(&mut self) {
        let duplicates = locate::duplicate_keys(self.text);
        let firsts: Vec<usize> = duplicates.iter().map(|dup| dup.first).collect();
        let positions = locate::line_cols(self.text, &firsts);
        for (dup, (line, column)) in duplicates.into_iter().zip(positions) {
            self.pending.push(Pending {
                at: At::Offset(dup.again),
                message: format!(
                    "{} is defined twice (first at line {line}, column {column})",
                    dup.path
                ),
            });
        }
    }

    /// What validation found so far, unplaced, in the order found (for
    /// [`super::validate_ignoring_unsupported`]).
    #[cfg(test)]
    pub(super) fn messages(self) -> Vec<String> {
        self.pending.into_iter().map(|p| p.message).collect()
    }
}

/// A finished error. Control characters from the file are escaped so that `--check` output
/// cannot drive the operator's terminal.
pub(super) fn positioned(line: usize, column: usize, message: &str) -> PolicyError {
    let mut clean = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            clean.extend(c.escape_debug());
        } else {
            clean.push(c);
        }
    }
    PolicyError {
        line,
        column,
        message: clean,
    }
}
