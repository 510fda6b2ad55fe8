//! `ftpgate verify-audit [--key FILE]... FILE...`: checks the hash chains and keyed checkpoints
//! of audit files written with `audit.integrity` (see `chain.rs`).
//!
//! The files are given oldest first (`audit.log.2 audit.log.1 audit.log`); each worker's chain
//! is followed across them. The first problem ends the check and is reported with its file,
//! line, chain, and what was expected and found: a changed line (the next line's `prev` does
//! not match its hash), a missing line (a seq gap no `audit_loss` of that chain declared), a
//! line out of order, a checkpoint whose `mac` does not verify, a line that is not JSON, a
//! truncated last line, a line without chain fields among chained ones. Not problems, only
//! noted: the lines before the first chained line (integrity was turned on later), a chain
//! whose first line is not seq 0 (its beginning is in a file rotated away or not given), the
//! lines after a chain's last checkpoint (chained but not keyed), a gap an `audit_loss` line
//! declared (a destination was down). Without `--key`, checkpoints are not verified (noted).
//!
//! Exit status: 0 no problem, 1 a problem, 2 usage or a file that cannot be read.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use super::chain::{CHECKPOINT_EVENT, GENESIS, checkpoint_mac, key_id, read_key, sha256};
use crate::tls::hex;

/// Where a line is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    /// 1-based.
    pub line: usize,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The line's `prev` is not the hash of the chain's previous line (at `previous`): one
    /// of the two was changed.
    BrokenLink {
        chain: String,
        seq: u64,
        previous: Place,
        expected: String,
        found: String,
    },
    /// Seqs `from..=to` of the chain are missing before this line.
    Missing { chain: String, from: u64, to: u64 },
    /// The line's seq comes after a later one (`expected` was next).
    Reordered {
        chain: String,
        seq: u64,
        expected: u64,
    },
    /// The checkpoint's `mac` does not verify with the key.
    BadCheckpoint {
        chain: String,
        seq: u64,
        /// The checkpoint names another key than the one given.
        other_key: Option<String>,
    },
    /// The line is not a JSON object (edited, or torn by a failed write).
    NotJson,
    /// The file's last line has no newline: cut off.
    Truncated,
    /// A line without `chain`, `seq` and `prev` after chained lines.
    Unchained,
    /// `chain`, `seq` or `prev` is there but not well-formed.
    BadFields(String),
}

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub at: Place,
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.at)?;
        match &self.problem {
            Problem::BrokenLink {
                chain,
                seq,
                previous,
                expected,
                found,
            } => write!(
                f,
                "broken link in chain {chain} at seq {seq}: prev is {found}, but the chain's \
                 previous line ({previous}) hashes to {expected}: that line or this one was \
                 changed"
            ),
            Problem::Missing { chain, from, to } if from == to => {
                write!(f, "missing line: seq {from} of chain {chain} is not there")
            }
            Problem::Missing { chain, from, to } => {
                write!(
                    f,
                    "missing lines: seqs {from} to {to} of chain {chain} are not there"
                )
            }
            Problem::Reordered {
                chain,
                seq,
                expected,
            } => write!(
                f,
                "reordered line: seq {seq} of chain {chain} where seq {expected} was expected"
            ),
            Problem::BadCheckpoint {
                chain,
                seq,
                other_key: Some(id),
            } => write!(
                f,
                "checkpoint seq {seq} of chain {chain} was made with another key (key_id {id})"
            ),
            Problem::BadCheckpoint { chain, seq, .. } => write!(
                f,
                "checkpoint seq {seq} of chain {chain} does not verify: the lines before it \
                 were changed, or the checkpoint was"
            ),
            Problem::NotJson => write!(f, "not a JSON audit line (edited, or a torn write)"),
            Problem::Truncated => write!(f, "truncated last line (no newline)"),
            Problem::Unchained => write!(f, "line without chain fields among chained lines"),
            Problem::BadFields(what) => write!(f, "bad chain fields: {what}"),
        }
    }
}

/// The outcome of a check.
#[derive(Debug, Default)]
pub struct Report {
    pub finding: Option<Finding>,
    /// Things worth knowing that are not problems.
    pub notes: Vec<String>,
    pub lines: usize,
    pub chains: usize,
    pub checkpoints_verified: usize,
    pub checkpoints_unverified: usize,
}

/// Where a chain is.
struct Track {
    next_seq: u64,
    last_hash: String,
    last_at: Place,
    /// Seqs of the last checkpoint, and lines since it.
    checkpointed: bool,
    since_checkpoint: usize,
    /// Seq ranges `audit_loss` lines declared lost, not yet reached.
    declared: Vec<(u64, u64)>,
}

/// The JSON of a line: all of it, or from the first `{"` on for a line a syslog daemon wrote
/// with its own prefix (which has no `{"`).
fn json_part(line: &[u8]) -> &[u8] {
    if line.first() == Some(&b'{') {
        return line;
    }
    let needle = b"{\"";
    line.windows(needle.len())
        .position(|w| w == needle)
        .map_or(line, |i| &line[i..])
}

/// Checks `files` (name, contents), oldest first, with the checkpoint keys given (several
/// when the key was changed: each checkpoint names its key by `key_id`); none: checkpoints
/// are not verified.
pub fn verify(files: &[(String, Vec<u8>)], keys: &[Vec<u8>]) -> Report {
    let mut report = Report::default();
    let mut chains: HashMap<String, Track> = HashMap::new();
    // Every chained line's place, to tell a reordered line from a missing one.
    let mut seen: HashMap<(String, u64), Place> = HashMap::new();
    for (name, bytes) in files {
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            if let Ok(v) = serde_json::from_slice::<Value>(json_part(line)) {
                if let (Some(c), Some(s)) = (v["chain"].as_str(), v["seq"].as_u64()) {
                    if v["event"] != "audit_loss" {
                        let at = Place {
                            file: name.clone(),
                            line: i + 1,
                        };
                        seen.entry((c.to_owned(), s)).or_insert(at);
                    }
                }
            }
        }
    }
    let keys: Vec<(String, &[u8])> = keys
        .iter()
        .filter_map(|k| Some((key_id(k)?, k.as_slice())))
        .collect();
    let mut chained_seen = false;
    let mut skipped = 0usize;
    'files: for (name, bytes) in files {
        if bytes.is_empty() {
            continue;
        }
        let complete = bytes.ends_with(b"\n");
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let count = body.split(|b| *b == b'\n').count();
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            let at = Place {
                file: name.clone(),
                line: i + 1,
            };
            let fail = |problem| Finding {
                at: at.clone(),
                problem,
            };
            if !complete && i + 1 == count {
                report.finding = Some(fail(Problem::Truncated));
                break 'files;
            }
            report.lines += 1;
            let json = json_part(line);
            let Ok(v) = serde_json::from_slice::<Value>(json) else {
                report.finding = Some(fail(Problem::NotJson));
                break 'files;
            };
            if !v.is_object() {
                report.finding = Some(fail(Problem::NotJson));
                break 'files;
            }
            if v["event"] == "audit_loss" {
                if let (Some(c), Some(first), Some(last)) = (
                    v["chain"].as_str(),
                    v["lost_seq_first"].as_u64(),
                    v["lost_seq_last"].as_u64(),
                ) {
                    let lost = v["lost"].as_u64().unwrap_or(0);
                    report.notes.push(format!(
                        "{at}: a destination lost {lost} lines (seqs {first} to {last} of \
                         chain {c}): an audit_loss line, not keyed"
                    ));
                    if let Some(track) = chains.get_mut(c) {
                        track.declared.push((first, last));
                    }
                }
                continue;
            }
            let (chain, seq, prev) = match (&v["chain"], &v["seq"], &v["prev"]) {
                (Value::Null, Value::Null, Value::Null) => {
                    if chained_seen {
                        report.finding = Some(fail(Problem::Unchained));
                        break 'files;
                    }
                    skipped += 1;
                    continue;
                }
                (Value::String(c), s, Value::String(p)) if s.as_u64().is_some() => {
                    (c.clone(), s.as_u64().unwrap_or_default(), p.clone())
                }
                _ => {
                    report.finding = Some(fail(Problem::BadFields(
                        "chain (text), seq (number) and prev (hex) go together".into(),
                    )));
                    break 'files;
                }
            };
            chained_seen = true;
            let hash = sha256(&[json]).map(|h| hex(&h)).unwrap_or_default();
            match chains.get_mut(&chain) {
                None => {
                    if seq == 0 && prev != GENESIS {
                        report.finding = Some(fail(Problem::BadFields(format!(
                            "seq 0 of chain {chain} has prev {prev}, not {GENESIS}"
                        ))));
                        break 'files;
                    }
                    if seq > 0 {
                        report.notes.push(format!(
                            "{at}: chain {chain} starts at seq {seq}: its earlier lines are not \
                             in the files given (rotated away?)"
                        ));
                    }
                    chains.insert(
                        chain.clone(),
                        Track {
                            next_seq: seq,
                            last_hash: String::new(),
                            last_at: at.clone(),
                            checkpointed: false,
                            since_checkpoint: 0,
                            declared: Vec::new(),
                        },
                    );
                }
                Some(track) => {
                    if seq < track.next_seq {
                        report.finding = Some(fail(Problem::Reordered {
                            chain,
                            seq,
                            expected: track.next_seq,
                        }));
                        break 'files;
                    }
                    if seq > track.next_seq {
                        let (from, to) = (track.next_seq, seq - 1);
                        let declared = track.declared.iter().any(|&(a, b)| a <= from && to <= b);
                        if !declared {
                            // The next seq further on: this line came too early.
                            let problem = if seen.contains_key(&(chain.clone(), from)) {
                                Problem::Reordered {
                                    chain,
                                    seq,
                                    expected: from,
                                }
                            } else {
                                Problem::Missing { chain, from, to }
                            };
                            report.finding = Some(fail(problem));
                            break 'files;
                        }
                    } else if prev != track.last_hash {
                        report.finding = Some(fail(Problem::BrokenLink {
                            chain,
                            seq,
                            previous: track.last_at.clone(),
                            expected: track.last_hash.clone(),
                            found: prev,
                        }));
                        break 'files;
                    }
                    track.declared.retain(|&(_, b)| b >= seq);
                }
            }
            let Some(track) = chains.get_mut(&chain) else {
                continue;
            };
            if v["event"] == CHECKPOINT_EVENT {
                if keys.is_empty() {
                    report.checkpoints_unverified += 1;
                } else {
                    let named = v["key_id"].as_str();
                    let candidates: Vec<&[u8]> = keys
                        .iter()
                        .filter(|(id, _)| named.is_none_or(|n| n == id))
                        .map(|(_, k)| *k)
                        .collect();
                    let found = v["mac"].as_str();
                    let verified = candidates.iter().any(|k| {
                        found.is_some() && checkpoint_mac(k, &chain, seq, &prev).as_deref() == found
                    });
                    if !verified {
                        let other_key = named.filter(|_| candidates.is_empty()).map(str::to_owned);
                        report.finding = Some(fail(Problem::BadCheckpoint {
                            chain,
                            seq,
                            other_key,
                        }));
                        break 'files;
                    }
                    report.checkpoints_verified += 1;
                }
                track.checkpointed = true;
                track.since_checkpoint = 0;
            } else {
                track.since_checkpoint += 1;
            }
            track.next_seq = seq + 1;
            track.last_hash = hash;
            track.last_at = at;
        }
    }
    if skipped > 0 {
        report.notes.push(format!(
            "{skipped} lines before the first chained line were not checked"
        ));
    }
    let mut names: Vec<&String> = chains.keys().collect();
    names.sort();
    for name in names {
        let track = &chains[name];
        if track.since_checkpoint > 0 {
            report.notes.push(format!(
                "chain {name}: the last {} lines (to {}) come after its last checkpoint: \
                 chained, not keyed{}",
                track.since_checkpoint,
                track.last_at,
                if track.checkpointed {
                    ""
                } else {
                    " (the chain has no checkpoint)"
                }
            ));
        }
    }
    report.chains = chains.len();
    if keys.is_empty() && report.checkpoints_unverified > 0 {
        report.notes.push(format!(
            "{} checkpoints not verified: no --key given",
            report.checkpoints_unverified
        ));
    }
    report
}

const USAGE: &str = "Usage: ftpgate verify-audit [--key FILE]... FILE...
  FILE...     audit files, oldest first (audit.log.2 audit.log.1 audit.log)
  --key FILE  the policy's audit.integrity.key_file: checkpoints are verified;
              give it again for each earlier key the files were written with
Exit status: 0 no problem, 1 a problem found, 2 usage or a file that cannot be read.";

/// The command: `args` are those after `verify-audit`.
pub fn run(args: impl Iterator<Item = OsString>) -> ExitCode {
    let mut key_paths = Vec::new();
    let mut files = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--key") => match args.next() {
                Some(path) => key_paths.push(PathBuf::from(path)),
                None => return usage("--key needs a file name"),
            },
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some(option) if option.starts_with("--key=") => {
                key_paths.push(PathBuf::from(&option["--key=".len()..]));
            }
            Some(option) if option.starts_with('-') && option != "-" => {
                return usage(&format!("unknown option {option}"));
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        return usage("no audit file given");
    }
    let mut keys = Vec::new();
    for path in &key_paths {
        match read_key(path, false) {
            Ok(key) => keys.push(key),
            Err(e) => {
                eprintln!("ftpgate verify-audit: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut contents = Vec::new();
    for path in &files {
        match std::fs::read(path) {
            Ok(bytes) => contents.push((path.display().to_string(), bytes)),
            Err(e) => {
                eprintln!("ftpgate verify-audit: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    let report = verify(&contents, &keys);
    for note in &report.notes {
        println!("note: {note}");
    }
    match &report.finding {
        Some(finding) => {
            println!("{finding}");
            ExitCode::from(1)
        }
        None => {
            println!(
                "ok: {} lines, {} chains, {} checkpoints verified",
                report.lines, report.chains, report.checkpoints_verified
            );
            ExitCode::SUCCESS
        }
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("ftpgate verify-audit: {message}\n\n{USAGE}");
    ExitCode::from(2)
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
