use std::time::Instant;

use super::super::chain::Chain;
use super::*;
use crate::policy::{AuditKey, IntegrityPolicy};

const KEY: &[u8] = &[0x42; 32];

fn policy() -> IntegrityPolicy {
    IntegrityPolicy {
        key_file: "/k".into(),
        key: AuditKey::new(KEY.to_vec()),
        checkpoint_interval_s: 1,
    }
}

/// `n` events of one worker's chain, a checkpoint after every `every`th, as lines.
fn chain_lines(worker: u32, n: usize, every: usize) -> Vec<Vec<u8>> {
    let now = Instant::now();
    let mut chain = Chain::new(worker, &policy(), now).expect("chain");
    let mut lines = Vec::new();
    let mut out = Vec::new();
    for i in 0..n {
        let event = serde_json::json!({"ts": "t", "worker": worker, "event": "command", "i": i});
        chain.serialise(&event, &mut out).expect("serialise");
        chain.advance(&out, false, now);
        lines.push(out.clone());
        if (i + 1) % every == 0 {
            chain.checkpoint(worker, "t", &mut out).expect("checkpoint");
            chain.advance(&out, true, now);
            lines.push(out.clone());
        }
    }
    lines
}

fn file(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
    }
    bytes
}

fn one(lines: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    vec![("audit.log".to_owned(), file(lines))]
}

fn finding(report: &Report) -> &Finding {
    report.finding.as_ref().expect("a finding")
}

/// Two workers interleaved, split in three rotated files.
fn interleaved() -> Vec<Vec<u8>> {
    let a = chain_lines(0, 10, 4);
    let b = chain_lines(1, 7, 3);
    let mut all = Vec::new();
    let (mut ia, mut ib) = (a.into_iter(), b.into_iter());
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => break,
            (x, y) => all.extend(x.into_iter().chain(y)),
        }
    }
    all
}

#[test]
fn intact_interleaved_chains_across_rotated_files_pass() {
    let all = interleaved();
    let files = vec![
        ("audit.log.2".to_owned(), file(&all[..5])),
        ("audit.log.1".to_owned(), file(&all[5..12])),
        ("audit.log".to_owned(), file(&all[12..])),
    ];
    let report = verify(&files, &[KEY.to_vec()]);
    assert_eq!(report.finding, None, "{:?}", report.notes);
    assert_eq!(report.chains, 2);
    assert_eq!(report.checkpoints_verified, 2 + 2);
    assert_eq!(report.lines, all.len());
    // Worker 0's last 2 events and worker 1's last one come after a checkpoint.
    assert_eq!(report.notes.len(), 2, "{:?}", report.notes);
    let no_key = verify(&files, &[]);
    assert_eq!(no_key.finding, None);
    assert_eq!(no_key.checkpoints_unverified, 4);
}

#[test]
fn an_edited_byte_breaks_the_next_link() {
    let mut lines = chain_lines(0, 6, 100);
    let edited = String::from_utf8(lines[2].clone())
        .unwrap()
        .replace("\"i\":2", "\"i\":7");
    lines[2] = edited.into_bytes();
    let report = verify(&one(&lines), &[KEY.to_vec()]);
    let f = finding(&report);
    assert_eq!(f.at.line, 4);
    match &f.problem {
        Problem::BrokenLink { seq, previous, .. } => {
            assert_eq!(*seq, 3);
            assert_eq!(previous.line, 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(f.to_string().starts_with("audit.log:4: broken link"), "{f}");
}

#[test]
fn an_edit_with_a_rebuilt_chain_fails_the_checkpoint() {
    // The attacker recomputes every hash after the edit but has no key.
    let mut lines = chain_lines(0, 4, 4);
    let now = Instant::now();
    let mut forged = Chain::new(0, &policy(), now).unwrap();
    let mut out = Vec::new();
    let mut rebuilt = Vec::new();
    for (i, line) in lines.iter().take(4).enumerate() {
        let mut v: serde_json::Value = serde_json::from_slice(line).unwrap();
        let map = v.as_object_mut().unwrap();
        for k in ["chain", "seq", "prev"] {
            map.remove(k);
        }
        if i == 1 {
            map.insert("i".into(), 99.into());
        }
        forged.serialise(&v, &mut out).unwrap();
        forged.advance(&out, false, now);
        rebuilt.push(out.clone());
    }
    // The original checkpoint, re-linked by hand to the forged chain.
    let mut cp: serde_json::Value = serde_json::from_slice(&lines[4]).unwrap();
    let (id, seq) = forged.position();
    cp["chain"] = id.into();
    cp["seq"] = seq.into();
    cp["prev"] = hex(&sha256(&[&rebuilt[3]]).unwrap()).into();
    rebuilt.push(serde_json::to_vec(&cp).unwrap());
    lines = rebuilt;
    let report = verify(&one(&lines), &[KEY.to_vec()]);
    let f = finding(&report);
    assert_eq!(f.at.line, 5);
    assert!(matches!(
        f.problem,
        Problem::BadCheckpoint {
            seq: 4,
            other_key: None,
            ..
        }
    ));
    // Without the key the forgery is not seen: that is what the key is for.
    assert_eq!(verify(&one(&lines), &[]).finding, None);
}

#[test]
fn a_deleted_line_is_a_missing_seq() {
    let mut lines = chain_lines(0, 6, 100);
    lines.remove(3);
    let f = finding(&verify(&one(&lines), &[KEY.to_vec()])).clone();
    assert_eq!(f.at.line, 4);
    assert_eq!(
        f.problem,
        Problem::Missing {
            chain: chain_id(&lines[0]),
            from: 3,
            to: 3
        }
    );
}

fn chain_id(line: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
    v["chain"].as_str().unwrap().to_owned()
}

#[test]
fn swapped_lines_are_reordered() {
    let mut lines = chain_lines(0, 6, 100);
    lines.swap(2, 3);
    let f = finding(&verify(&one(&lines), &[KEY.to_vec()])).clone();
    assert_eq!(f.at.line, 3);
    assert!(
        matches!(
            f.problem,
            Problem::Reordered {
                seq: 3,
                expected: 2,
                ..
            }
        ),
        "{f}"
    );
    // Lines of different workers may interleave in any order.
    let mut two = chain_lines(0, 2, 100);
    two.extend(chain_lines(1, 2, 100));
    two.swap(1, 2);
    assert_eq!(verify(&one(&two), &[KEY.to_vec()]).finding, None);
}

#[test]
fn a_truncated_last_line_is_reported() {
    let lines = chain_lines(0, 3, 100);
    let mut bytes = file(&lines);
    bytes.truncate(bytes.len() - 10);
    let report = verify(&[("audit.log".to_owned(), bytes)], &[KEY.to_vec()]);
    assert_eq!(
        finding(&report).clone(),
        Finding {
            at: Place {
                file: "audit.log".into(),
                line: 3
            },
            problem: Problem::Truncated
        }
    );
}

#[test]
fn a_wrong_key_fails_the_first_checkpoint_and_names_the_other_key() {
    let lines = chain_lines(0, 4, 2);
    let report = verify(&one(&lines), &[vec![0x43; 32]]);
    let f = finding(&report);
    assert_eq!(f.at.line, 3);
    assert!(
        matches!(
            &f.problem,
            Problem::BadCheckpoint {
                seq: 2,
                other_key: Some(_),
                ..
            }
        ),
        "{f}"
    );
}

#[test]
fn a_chain_starting_mid_file_is_a_note_not_a_problem() {
    let lines = chain_lines(0, 6, 2);
    let report = verify(&one(&lines[4..]), &[KEY.to_vec()]);
    assert_eq!(report.finding, None);
    assert!(
        report.notes[0].contains("starts at seq 4"),
        "{:?}",
        report.notes
    );
}

#[test]
fn a_declared_loss_is_a_note_and_an_undeclared_gap_is_not() {
    let mut lines = chain_lines(0, 6, 100);
    let id = chain_id(&lines[0]);
    lines.drain(2..4);
    let loss = serde_json::json!({
        "ts": "t", "worker": 0, "event": "audit_loss", "sink": "file", "lost": 2,
        "first_lost": "t", "last_lost": "t", "error": "e",
        "chain": id, "lost_seq_first": 2, "lost_seq_last": 3,
    });
    lines.insert(2, serde_json::to_vec(&loss).unwrap());
    let report = verify(&one(&lines), &[KEY.to_vec()]);
    assert_eq!(report.finding, None);
    assert!(report.notes.iter().any(|n| n.contains("lost 2 lines")));
    // The next line after the declared gap must not have its own gap.
    lines.remove(3);
    let f = finding(&verify(&one(&lines), &[KEY.to_vec()])).clone();
    assert!(
        matches!(f.problem, Problem::Missing { from: 2, to: 4, .. }),
        "{f}"
    );
}

#[test]
fn unchained_lines_are_skipped_before_and_refused_among_chained_ones() {
    let plain = br#"{"ts":"t","worker":0,"event":"command"}"#.to_vec();
    let mut lines = vec![plain.clone()];
    lines.extend(chain_lines(0, 2, 100));
    let report = verify(&one(&lines), &[KEY.to_vec()]);
    assert_eq!(report.finding, None);
    lines.push(plain);
    let f = finding(&verify(&one(&lines), &[KEY.to_vec()])).clone();
    assert_eq!((f.at.line, f.problem), (4, Problem::Unchained));
    let garbage = vec![b"{\"ts\":".to_vec()];
    let f = finding(&verify(&one(&garbage), &[KEY.to_vec()])).clone();
    assert_eq!(f.problem, Problem::NotJson);
}

#[test]
fn syslog_prefixed_lines_are_checked_on_their_json() {
    let lines: Vec<Vec<u8>> = chain_lines(0, 3, 2)
        .into_iter()
        .map(|l| [b"Dec  2 14:00:00 host ftpgate[7]: ".to_vec(), l].concat())
        .collect();
    let report = verify(&one(&lines), &[KEY.to_vec()]);
    assert_eq!(report.finding, None);
    assert_eq!(report.checkpoints_verified, 1);
}

#[test]
fn after_a_key_change_each_checkpoint_is_verified_with_the_key_it_names() {
    let now = Instant::now();
    let mut chain = Chain::new(0, &policy(), now).unwrap();
    let mut lines = Vec::new();
    let mut out = Vec::new();
    for (i, key) in [KEY.to_vec(), vec![0x99; 40]].into_iter().enumerate() {
        let mut p = policy();
        p.key = AuditKey::new(key);
        chain.apply(&p);
        chain
            .serialise(&serde_json::json!({"event": "command", "i": i}), &mut out)
            .unwrap();
        chain.advance(&out, false, now);
        lines.push(out.clone());
        chain.checkpoint(0, "t", &mut out).unwrap();
        chain.advance(&out, true, now);
        lines.push(out.clone());
    }
    let both = verify(&one(&lines), &[vec![0x99; 40], KEY.to_vec()]);
    assert_eq!(both.finding, None);
    assert_eq!(both.checkpoints_verified, 2);
    // Only the first key: the second checkpoint names a key not given.
    let f = finding(&verify(&one(&lines), &[KEY.to_vec()])).clone();
    assert_eq!(f.at.line, 4);
    assert!(
        matches!(
            f.problem,
            Problem::BadCheckpoint {
                other_key: Some(_),
                ..
            }
        ),
        "{f}"
    );
}
