//! Positions in the policy text: a small, pure JSON scanner.
//!
//! serde_json tells where a syntax or type error is, but once the file has been deserialized
//! the positions are gone. The validator names what is wrong by path (`users.alice.role`,
//! `listeners[1].address`); this module walks the source text once and turns those paths back
//! into 1-based line:column positions (columns counted in characters), so every error points
//! at the offending key or value. It also finds duplicate keys (serde_json keeps the last one
//! of a map without a word) and snaps serde_json's positions to the start of the token they
//! fall in.
//!
//! The scanner is lenient (serde_json has already judged the syntax), never panics, never
//! recurses deeper than [`MAX_SCAN_DEPTH`], and stops quietly at the first thing it does not
//! understand, keeping what it found before.

use std::collections::HashMap;
use std::fmt;

/// Deepest nesting the scanner follows (serde_json refuses anything deeper than 128).
const MAX_SCAN_DEPTH: usize = 256;

/// One step of a path into the document: an object key or an array index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root to a key or value, e.g. `users.alice.role`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct JsonPath(Vec<Seg>);

impl JsonPath {
    /// The document itself.
    pub fn root() -> JsonPath {
        JsonPath(Vec::new())
    }

    /// This path followed by an object key.
    pub fn key(&self, key: &str) -> JsonPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        JsonPath(segs)
    }

    /// This path followed by an array index.
    pub fn index(&self, index: usize) -> JsonPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        JsonPath(segs)
    }

    pub fn segments(&self) -> &[Seg] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for JsonPath {
    /// `listeners[1].address`, `users."odd name".role`: keys that are not plain words are
    /// quoted and escaped, so a hostile key cannot put control characters on a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let plain = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
                    if plain {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Whether a position should point at a member's key or at its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Key,
    Value,
}

/// 1-based line and column (in characters) of a byte offset into `text`. Offsets past the
/// end or inside a character are moved back to the nearest character start.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    line_cols(text, &[offset]).pop().unwrap_or((1, 1))
}

/// [`line_col`] for many offsets, in one pass over the text (a file with thousands of errors
/// must not be scanned once per error).
pub fn line_cols(text: &str, offsets: &[usize]) -> Vec<(usize, usize)> {
    let mut order: Vec<(usize, usize)> = offsets.iter().copied().zip(0..).collect();
    order.sort_unstable();
    let mut positions = vec![(1, 1); offsets.len()];
    let mut chars = text.char_indices().peekable();
    let (mut line, mut column) = (1, 1);
    for (offset, index) in order {
        // Step over every character that ends at or before the offset.
        while let Some(&(start, c)) = chars.peek() {
            if start + c.len_utf8() > offset {
                break;
            }
            chars.next();
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        if let Some(position) = positions.get_mut(index) {
            *position = (line, column);
        }
    }
    positions
}

/// Byte offset where 1-based `line` starts, if the text has that many lines.
pub fn line_start(text: &str, line: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    if line == 1 {
        return Some(0);
    }
    text.bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .nth(line - 2)
        .map(|(i, _)| i + 1)
}

/// Line and column of the key or value at `path`. When the path does not exist, the position
/// of the nearest existing parent (its key if it has one); `(1, 1)` for an empty document.
pub fn locate(text: &str, path: &[Seg], target: Target) -> (usize, usize) {
    locate_all(text, &[(path, target)])
        .into_iter()
        .next()
        .unwrap_or((1, 1))
}

/// [`locate`] for many paths in one pass over the text.
pub fn locate_all(text: &str, queries: &[(&[Seg], Target)]) -> Vec<(usize, usize)> {
    let offsets: Vec<usize> = locate_offsets(text, queries)
        .into_iter()
        .map(|offset| offset.unwrap_or(0))
        .collect();
    line_cols(text, &offsets)
}

/// Byte offsets of the keys or values at `queries` (see [`locate`]); `None` when not even
/// the root exists.
pub fn locate_offsets(text: &str, queries: &[(&[Seg], Target)]) -> Vec<Option<usize>> {
    let mut wanted: HashMap<Vec<Seg>, Found> = HashMap::new();
    for (path, _) in queries {
        for len in 0..=path.len() {
            if let Some(prefix) = path.get(..len) {
                wanted.entry(prefix.to_vec()).or_default();
            }
        }
    }
    let mut finder = Finder { wanted };
    let _ = scan(text, &mut finder);
    let wanted = finder.wanted;

    queries
        .iter()
        .map(|(path, target)| {
            (0..=path.len()).rev().find_map(|len| {
                let found = path.get(..len).and_then(|prefix| wanted.get(prefix))?;
                if len == path.len() && *target == Target::Value {
                    found.value.or(found.key)
                } else {
                    found.key.or(found.value)
                }
            })
        })
        .collect()
}

/// A key that appears twice in one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// JsonPath of the repeated key (the object's path followed by the key).
    pub path: JsonPath,
    /// Byte offset of the first occurrence.
    pub first: usize,
    /// Byte offset of the repetition.
    pub again: usize,
}

/// Every repeated key in every object, in document order.
pub fn duplicate_keys(text: &str) -> Vec<Duplicate> {
    let mut finder = Duplicates(Vec::new());
    let _ = scan(text, &mut finder);
    finder.0
}

/// The deepest nesting of objects and arrays in `text`, strings skipped. Lenient: any text
/// is counted, JSON or not.
pub fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Start and path of the token serde_json's position falls in. `after` is the byte offset
/// serde_json's column leads to (line start + column): serde_json reports either the last
/// character it consumed (1-based, so the character is at `after - 1`) or, when it only
/// peeked at a value's first character, that character (0-based, at `after`).
pub fn token_at(text: &str, after: usize) -> Option<(usize, JsonPath)> {
    let mut snap = Snap {
        after,
        token: None,
        opened: None,
        closed: None,
    };
    let _ = scan(text, &mut snap);
    snap.token.or(snap.opened).or(snap.closed)
}

/// What the scanner reports, in document order. Offsets are bytes; ends are exclusive.
trait Visit {
    /// An object key; `path` ends with it.
    fn key(&mut self, _path: &[Seg], _start: usize, _end: usize) {}
    /// A string, number or literal value.
    fn scalar(&mut self, _path: &[Seg], _start: usize, _end: usize) {}
    /// An object or array begins.
    fn open(&mut self, _path: &[Seg], _start: usize) {}
    /// An object or array ends.
    fn close(&mut self, _path: &[Seg], _start: usize, _end: usize) {}
    /// A key repeated in the same object; `path` ends with it.
    fn duplicate(&mut self, _path: &[Seg], _first: usize, _again: usize) {}
}

#[derive(Default)]
struct Found {
    key: Option<usize>,
    value: Option<usize>,
}

/// Records where each wanted path is; the last occurrence wins, as it does in serde_json.
struct Finder {
    wanted: HashMap<Vec<Seg>, Found>,
}

impl Visit for Finder {
    fn key(&mut self, path: &[Seg], start: usize, _end: usize) {
        if let Some(found) = self.wanted.get_mut(path) {
            found.key = Some(start);
        }
    }
    fn scalar(&mut self, path: &[Seg], start: usize, _end: usize) {
        if let Some(found) = self.wanted.get_mut(path) {
            found.value = Some(start);
        }
    }
    fn open(&mut self, path: &[Seg], start: usize) {
        if let Some(found) = self.wanted.get_mut(path) {
            found.value = Some(start);
        }
    }
}

struct Duplicates(Vec<Duplicate>);

impl Visit for Duplicates {
    fn duplicate(&mut self, path: &[Seg], first: usize, again: usize) {
        self.0.push(Duplicate {
            path: JsonPath(path.to_vec()),
            first,
            again,
        });
    }
}

struct Snap {
    after: usize,
    token: Option<(usize, JsonPath)>,
    opened: Option<(usize, JsonPath)>,
    closed: Option<(usize, JsonPath)>,
}

impl Snap {
    fn token_contains(&mut self, path: &[Seg], start: usize, end: usize) {
        // The last consumed character is at `after - 1`.
        if start < self.after && self.after <= end {
            self.token = Some((start, JsonPath(path.to_vec())));
        }
    }
}

impl Visit for Snap {
    fn key(&mut self, path: &[Seg], start: usize, end: usize) {
        self.token_contains(path, start, end);
    }
    fn scalar(&mut self, path: &[Seg], start: usize, end: usize) {
        self.token_contains(path, start, end);
    }
    fn open(&mut self, path: &[Seg], start: usize) {
        if start == self.after {
            self.opened = Some((start, JsonPath(path.to_vec())));
        }
    }
    fn close(&mut self, path: &[Seg], start: usize, end: usize) {
        if end == self.after {
            self.closed = Some((start, JsonPath(path.to_vec())));
        }
    }
}

/// Walks one JSON value (the whole document). `Err(())` means "stopped early": the text is
/// not JSON from there on, or nests too deeply; whatever was reported before stands.
fn scan(text: &str, visit: &mut impl Visit) -> Result<(), ()> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        path: Vec::new(),
        depth: 0,
    };
    scanner.value(visit)
}

struct Scanner<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    path: Vec<Seg>,
    depth: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, visit: &mut impl Visit) -> Result<(), ()> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(b'{') => self.object(visit),
            Some(b'[') => self.array(visit),
            Some(b'"') => {
                self.string()?;
                visit.scalar(&self.path, start, self.pos);
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => {
                while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
                visit.scalar(&self.path, start, self.pos);
                Ok(())
            }
            Some(b't') => self.literal(b"true", visit),
            Some(b'f') => self.literal(b"false", visit),
            Some(b'n') => self.literal(b"null", visit),
            _ => Err(()),
        }
    }

    fn literal(&mut self, word: &[u8], visit: &mut impl Visit) -> Result<(), ()> {
        let start = self.pos;
        if self.bytes.get(start..start + word.len()) != Some(word) {
            return Err(());
        }
        self.pos += word.len();
        visit.scalar(&self.path, start, self.pos);
        Ok(())
    }

    /// Skips a string starting at the opening quote; `pos` ends after the closing quote.
    fn string(&mut self) -> Result<(), ()> {
        self.pos += 1;
        loop {
            match self.peek() {
                None => return Err(()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => self.pos += 2,
                Some(_) => self.pos += 1,
            }
        }
    }

    fn enter(&mut self) -> Result<(), ()> {
        if self.depth >= MAX_SCAN_DEPTH {
            return Err(());
        }
        self.depth += 1;
        Ok(())
    }

    fn object(&mut self, visit: &mut impl Visit) -> Result<(), ()> {
        let start = self.pos;
        self.enter()?;
        visit.open(&self.path, start);
        self.pos += 1;
        let mut seen: HashMap<String, usize> = HashMap::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek() != Some(b'"') {
                    return Err(());
                }
                let key_start = self.pos;
                self.string()?;
                let key_end = self.pos;
                let raw = self
                    .text
                    .get(key_start + 1..key_end.saturating_sub(1))
                    .unwrap_or("");
                let key = decode_string(raw);
                self.path.push(Seg::Key(key.clone()));
                match seen.get(&key) {
                    Some(&first) => visit.duplicate(&self.path, first, key_start),
                    None => {
                        seen.insert(key, key_start);
                    }
                }
                visit.key(&self.path, key_start, key_end);
                self.skip_ws();
                if self.peek() != Some(b':') {
                    return Err(());
                }
                self.pos += 1;
                self.value(visit)?;
                self.path.pop();
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(()),
                }
            }
        }
        self.depth -= 1;
        visit.close(&self.path, start, self.pos);
        Ok(())
    }

    fn array(&mut self, visit: &mut impl Visit) -> Result<(), ()> {
        let start = self.pos;
        self.enter()?;
        visit.open(&self.path, start);
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            let mut index = 0;
            loop {
                self.path.push(Seg::Index(index));
                self.value(visit)?;
                self.path.pop();
                index += 1;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(()),
                }
            }
        }
        self.depth -= 1;
        visit.close(&self.path, start, self.pos);
        Ok(())
    }
}

/// The text of a JSON string body (between the quotes) with its escapes resolved. Broken
/// escapes are kept or replaced by U+FFFD; this is only used to match keys.
fn decode_string(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let Some(high) = hex4(&mut chars) else {
                    out.push('\u{fffd}');
                    continue;
                };
                if (0xD800..0xDC00).contains(&high) {
                    // A high surrogate must be followed by `\u` and a low surrogate.
                    let mut lookahead = chars.clone();
                    let low = match (lookahead.next(), lookahead.next()) {
                        (Some('\\'), Some('u')) => hex4(&mut lookahead),
                        _ => None,
                    };
                    match low {
                        Some(low) if (0xDC00..0xE000).contains(&low) => {
                            let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            chars = lookahead;
                        }
                        _ => out.push('\u{fffd}'),
                    }
                } else {
                    out.push(char::from_u32(high).unwrap_or('\u{fffd}'));
                }
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut value = 0;
    for _ in 0..4 {
        value = value * 16 + chars.next()?.to_digit(16)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.to_owned())
    }

    const DOC: &str = r#"{
  "listeners": [
    { "address": "0.0.0.0:21" },
    { "address": "[::]:21", "tls": "none" }
  ],
  "users": {
    "caf\u00e9": { "role": "ro" },
    "bob":   {"role":"rw", "note": "a \"quoted\" ] } string"}
  },
  "n": -1.5e3, "t": true, "f": false, "z": null
}"#;

    #[test]
    fn locates_values_and_keys() {
        let at = |path: &[Seg], target| locate(DOC, path, target);
        assert_eq!(at(&[], Target::Value), (1, 1));
        assert_eq!(at(&[key("listeners")], Target::Key), (2, 3));
        assert_eq!(at(&[key("listeners")], Target::Value), (2, 16));
        let l1 = [key("listeners"), Seg::Index(1)];
        assert_eq!(at(&l1, Target::Value), (4, 5));
        assert_eq!(at(&l1, Target::Key), (4, 5), "an element has no key");
        let l1_tls = [key("listeners"), Seg::Index(1), key("tls")];
        assert_eq!(at(&l1_tls, Target::Key), (4, 29));
        assert_eq!(at(&l1_tls, Target::Value), (4, 36));
        // The escaped key matches its decoded form.
        let cafe = [key("users"), key("café"), key("role")];
        assert_eq!(at(&cafe, Target::Value), (7, 28));
        let bob = [key("users"), key("bob"), key("role")];
        assert_eq!(at(&bob, Target::Value), (8, 22));
        assert_eq!(at(&[key("z")], Target::Value), (10, 44));
        assert_eq!(at(&[key("n")], Target::Value), (10, 8));
    }

    #[test]
    fn falls_back_to_the_nearest_parent() {
        let missing = [key("users"), key("bob"), key("backend")];
        assert_eq!(
            locate(DOC, &missing, Target::Value),
            (8, 5),
            "the key \"bob\""
        );
        let deep = [key("listeners"), Seg::Index(0), key("tls"), key("x")];
        assert_eq!(locate(DOC, &deep, Target::Key), (3, 5), "element 0's brace");
        let absent = [key("nothing"), Seg::Index(3)];
        assert_eq!(locate(DOC, &absent, Target::Key), (1, 1), "the root");
        let past_end = [key("listeners"), Seg::Index(7)];
        assert_eq!(locate(DOC, &past_end, Target::Value), (2, 3));
        assert_eq!(locate("", &absent, Target::Key), (1, 1));
        assert_eq!(locate("   ", &[], Target::Value), (1, 1));
    }

    #[test]
    fn the_last_duplicate_wins_and_duplicates_are_reported() {
        let text = "{\"a\": 1,\n \"b\": {\"x\": 1, \"x\": 2},\n \"a\": 3}";
        assert_eq!(locate(text, &[key("a")], Target::Value), (3, 7));
        let dups = duplicate_keys(text);
        assert_eq!(dups.len(), 2);
        assert_eq!(dups[0].path.to_string(), "b.x");
        assert_eq!(line_col(text, dups[0].first), (2, 8));
        assert_eq!(line_col(text, dups[0].again), (2, 16));
        assert_eq!(dups[1].path.to_string(), "a");
        assert_eq!(line_col(text, dups[1].again), (3, 2));
        // Keys that only look alike after escaping are duplicates too.
        assert_eq!(duplicate_keys(r#"{"a": 1, "\u0061": 2}"#).len(), 1);
        assert!(duplicate_keys(r#"[{"a": 1}, {"a": 2}]"#).is_empty());
    }

    #[test]
    fn columns_count_characters() {
        let text = "{\"ü\": \"é\", \"k\": 1}";
        assert_eq!(locate(text, &[key("k")], Target::Key), (1, 12));
        assert_eq!(line_col(text, text.len()), (1, 19));
        // An offset inside a character moves back to its start.
        assert_eq!(line_col(text, 3), (1, 3));
        assert_eq!(line_col(text, 10_000), (1, 19));
        assert_eq!(line_col("a\r\nb", 3), (2, 1));
    }

    #[test]
    fn many_offsets_at_once() {
        // Bytes: a0 b1 \n2 ç3-4 d5 \n6 \n7 e8 f9; unsorted, repeated, inside a character,
        // past the end.
        let text = "ab\nçd\n\nef";
        let cases = [
            (11, (4, 3)),
            (0, (1, 1)),
            (4, (2, 1)),
            (3, (2, 1)),
            (5, (2, 2)),
            (7, (3, 1)),
            (8, (4, 1)),
            (3, (2, 1)),
            (100, (4, 3)),
            (9, (4, 2)),
        ];
        let offsets: Vec<usize> = cases.iter().map(|&(offset, _)| offset).collect();
        let expected: Vec<(usize, usize)> = cases.iter().map(|&(_, at)| at).collect();
        assert_eq!(line_cols(text, &offsets), expected);
        for (offset, at) in cases {
            assert_eq!(line_col(text, offset), at, "{offset}");
        }
        assert_eq!(line_cols("", &[0, 5]), [(1, 1), (1, 1)]);
        assert_eq!(line_cols(text, &[]), []);
    }

    #[test]
    fn line_starts() {
        let text = "ab\ncd\n\nef";
        assert_eq!(line_start(text, 0), None);
        assert_eq!(line_start(text, 1), Some(0));
        assert_eq!(line_start(text, 2), Some(3));
        assert_eq!(line_start(text, 3), Some(6));
        assert_eq!(line_start(text, 4), Some(7));
        assert_eq!(line_start(text, 5), None);
    }

    #[test]
    fn snaps_to_tokens() {
        let text = r#"{"a": [{"bb": "xyz"}, 12]}"#;
        // Last consumed character inside the key "bb" (its closing quote is at 11).
        let (start, path) = token_at(text, 12).expect("key");
        assert_eq!((start, path.to_string().as_str()), (8, "a[0].bb"));
        // Inside the string value.
        assert_eq!(token_at(text, 17).map(|t| t.0), Some(14));
        // Peeked at the start of a container.
        let (start, path) = token_at(text, 7).expect("object");
        assert_eq!((start, path.to_string().as_str()), (7, "a[0]"));
        // Just consumed a closing bracket.
        assert_eq!(token_at(text, 25).map(|t| t.0), Some(6));
        assert_eq!(token_at(text, 26).map(|t| t.0), Some(0));
        // The number 12.
        assert_eq!(token_at(text, 24).map(|t| t.0), Some(22));
        assert_eq!(token_at(text, 0), Some((0, JsonPath::root())));
        assert_eq!(token_at(text, 5), None, "between tokens");
    }

    #[test]
    fn nesting_depths() {
        assert_eq!(nesting_depth(""), 0);
        assert_eq!(nesting_depth("1"), 0);
        assert_eq!(nesting_depth(DOC), 3);
        assert_eq!(
            nesting_depth(r#"{"a": "[[[{", "b": [{}], "c": "\\\"["}"#),
            3
        );
        assert_eq!(nesting_depth("]]]}[["), 2);
        assert_eq!(nesting_depth(&"[".repeat(1000)), 1000);
    }

    #[test]
    fn decodes_escapes() {
        assert_eq!(decode_string(r#"a\"b\\c\/d\n"#), "a\"b\\c/d\n");
        assert_eq!(decode_string(r"\u00e9\ud83d\ude00"), "é😀");
        assert_eq!(decode_string(r"\ud83d"), "\u{fffd}");
        assert_eq!(decode_string(r"\ud83dx"), "\u{fffd}x");
        assert_eq!(decode_string(r"\u12"), "\u{fffd}");
        assert_eq!(decode_string("\\"), "\\");
    }

    #[test]
    fn paths_display_safely() {
        let path = JsonPath::root()
            .key("users")
            .key("a b\u{1b}[31m")
            .key("limits")
            .index(2);
        assert_eq!(path.to_string(), r#"users."a b\u{1b}[31m".limits[2]"#);
        assert_eq!(JsonPath::root().to_string(), "");
        assert_eq!(JsonPath::root().key("").to_string(), r#""""#);
    }

    #[test]
    fn survives_broken_and_deep_input() {
        for text in [
            "{",
            "[",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":[1,",
            "\"abc",
            "{\"a\\",
            "tru",
            "{]",
            "}",
            "\u{feff}{}",
            "{\"é",
            "[\"\\\u{e9}\"]",
        ] {
            let _ = locate_all(text, &[(&[key("a"), Seg::Index(0)], Target::Value)]);
            let _ = duplicate_keys(text);
            for after in 0..=text.len() + 1 {
                let _ = token_at(text, after);
            }
        }
        let deep = "[".repeat(100_000);
        assert_eq!(locate(&deep, &[Seg::Index(0)], Target::Value), (1, 2));
        let deep = "{\"a\":".repeat(100_000);
        let _ = duplicate_keys(&deep);
    }
}
