//! Robustness: every prefix of a valid document and random garbage give errors with
//! positions inside the document, never a panic.

use super::*;

/// Every error has a position inside the document (or just past its end).
fn check_positions(doc: &str) {
    if let Err(errors) = parse_policy(doc) {
        assert!(!errors.is_empty());
        let lines = doc.split('\n').count();
        for error in errors {
            assert!(error.line >= 1 && error.line <= lines, "{error} in {doc:?}");
            assert!(error.column >= 1, "{error} in {doc:?}");
            assert!(!error.message.is_empty());
        }
    }
}

#[test]
fn every_prefix_of_a_valid_document_is_handled() {
    for doc in [MINIMAL, DESIGN_EXAMPLE, NEW_KEYS] {
        let ends: Vec<usize> = doc.char_indices().map(|(i, _)| i).collect();
        for &end in &ends {
            let prefix = &doc[..end];
            assert!(parse_policy(prefix).is_err(), "{prefix:?}");
            check_positions(prefix);
        }
    }
}

/// A tiny deterministic generator (Knuth's MMIX LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Lcg(0x5eed);
    // Random bytes, decoded leniently.
    for _ in 0..2000 {
        let len = rng.below(64);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check_positions(&String::from_utf8_lossy(&bytes));
    }
    // Random sequences of JSON-ish tokens, which get much further into the parser.
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\n",
        " ",
        "é",
        "0",
        "-1",
        "1.5e9",
        "true",
        "null",
        "\"listeners\"",
        "\"address\"",
        "\"0.0.0.0:21\"",
        "\"users\"",
        "\"role\"",
        "\"backends\"",
        "\"servers\"",
        "\"roles\"",
        "\"allow\"",
        "\"RETR\"",
        "\"limits\"",
        "\"rate\"",
        "\"5MiB/s\"",
        "\"passive\"",
        "\"ports\"",
        "\"1-2\"",
        "\"\\u00e9\"",
        "\"access\"",
        "\"allow_countries\"",
        "\"DE\"",
        "\"time_windows\"",
        "\"days\"",
        "\"mon-fri\"",
        "\"hours\"",
        "\"22:00-02:00\"",
        "\"utc_offset\"",
        "\"+01:00\"",
    ];
    for _ in 0..5000 {
        let len = rng.below(40);
        let doc: String = (0..len).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        check_positions(&doc);
    }
    // Single-character mutations of valid documents.
    for base in [MINIMAL, DESIGN_EXAMPLE, NEW_KEYS] {
        let chars: Vec<char> = base.chars().collect();
        for _ in 0..3000 {
            let mut mutated = chars.clone();
            let i = rng.below(mutated.len());
            match rng.below(3) {
                0 => {
                    mutated.remove(i);
                }
                1 => mutated.insert(i, TOKENS[rng.below(TOKENS.len())].chars().next().unwrap()),
                _ => mutated[i] = char::from(b' ' + rng.below(95) as u8),
            }
            check_positions(&mutated.into_iter().collect::<String>());
        }
    }
}
