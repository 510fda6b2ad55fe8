//! FTP replies: the [`Reply`] value, its safe wire encoding, and the parser for replies
//! coming from a backend server.
//!
//! This module owns the reply format of RFC 959 §4.2: single-line replies (`"230 text"`),
//! multi-line replies (`"230-first"`, any lines, `"230 last"`), the limits on what a backend
//! may send (line length, reply size, line count), and the rules that keep ftpgate's own
//! output well-formed whatever a backend sends: no control bytes inside a line, 0xFF
//! Telnet-escaped, and no intermediate line that a client could mistake for the end of the
//! reply. It does no I/O and never panics on input.

use std::fmt;

use crate::limits::{MAX_REPLY_BYTES, MAX_REPLY_LINE, MAX_REPLY_LINES};

/// One FTP reply, as received from a backend or built by ftpgate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The wire lines without CRLF. The first line starts with `"<code>-"` (multi-line) or
    /// `"<code> "`; the last line starts with `"<code> "`; intermediate lines are as received.
    /// The bytes are data bytes: Telnet escaping is applied by [`Reply::encode`].
    pub lines: Vec<Vec<u8>>,
}

impl Reply {
    /// A single-line reply `"<code> <text>"`. Control bytes in `text` become spaces.
    ///
    /// `code` should be a three-digit code (see [`crate::ftp::codes`]).
    pub fn new(code: u16, text: &str) -> Reply {
        Reply {
            code,
            lines: vec![prefixed_line(code, b' ', text)],
        }
    }

    /// A multi-line reply: `"<code>-<first>"`, the middle lines (one space put in front of
    /// any that begins with a digit, RFC 959 §4.2), then `"<code> <last>"`. With zero or
    /// one line this is [`Reply::new`].
    pub fn multi(code: u16, lines: &[&str]) -> Reply {
        let (first, last, middle) = match lines {
            [] => return Reply::new(code, ""),
            [only] => return Reply::new(code, only),
            [first, middle @ .., last] => (first, last, middle),
        };
        let mut out = Vec::with_capacity(lines.len());
        out.push(prefixed_line(code, b'-', first));
        for line in middle {
            let mut bytes = Vec::with_capacity(line.len() + 1);
            if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                bytes.push(b' ');
            }
            bytes.extend(line.bytes().map(sanitize_byte));
            out.push(bytes);
        }
        out.push(prefixed_line(code, b' ', last));
        Reply { code, lines: out }
    }

    /// A `FEAT` answer in the form of RFC 2389 §3.2: `"<code>-<first>"`, then one line per
    /// feature with exactly one space in front (`" MLST size*;modify*;"`), then
    /// `"<code> <last>"`. The leading space is what marks a feature line: clients that
    /// parse `FEAT` strictly (rclone's FTP library, Apache Commons Net) see no features in
    /// lines without it. Features are trimmed first, so none gets two spaces.
    pub fn features(code: u16, first: &str, features: &[&str], last: &str) -> Reply {
        let mut out = Vec::with_capacity(features.len() + 2);
        out.push(prefixed_line(code, b'-', first));
        for feature in features {
            let feature = feature.trim();
            let mut bytes = Vec::with_capacity(feature.len() + 1);
            bytes.push(b' ');
            bytes.extend(feature.bytes().map(sanitize_byte));
            out.push(bytes);
        }
        out.push(prefixed_line(code, b' ', last));
        Reply { code, lines: out }
    }

    /// True if the reply has more than one line.
    pub fn is_multiline(&self) -> bool {
        self.lines.len() > 1
    }

    /// The text of the first line after the four-byte `"<code> "`/`"<code>-"` prefix; empty
    /// if there is none.
    pub fn text(&self) -> &[u8] {
        self.lines
            .first()
            .and_then(|line| line.get(4..))
            .unwrap_or_default()
    }

    /// The first digit of the code: 1 to 5 for any valid reply.
    pub fn class(&self) -> u8 {
        u8::try_from(self.code / 100).unwrap_or(u8::MAX)
    }

    /// 1xx: positive preliminary.
    pub fn is_preliminary(&self) -> bool {
        self.class() == 1
    }

    /// 2xx: positive completion.
    pub fn is_positive_completion(&self) -> bool {
        self.class() == 2
    }

    /// 3xx: positive intermediate.
    pub fn is_intermediate(&self) -> bool {
        self.class() == 3
    }

    /// 4xx: transient negative completion.
    pub fn is_transient_negative(&self) -> bool {
        self.class() == 4
    }

    /// 5xx: permanent negative completion.
    pub fn is_permanent_negative(&self) -> bool {
        self.class() == 5
    }

    /// Appends the wire form: each line followed by CRLF.
    ///
    /// Inside a line, control bytes become spaces and 0xFF is sent as `IAC IAC` (Telnet
    /// escaping, as vsftpd does). An intermediate line that begins with a digit gets one
    /// space in front. A reply without lines is sent as `"<code> "`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if self.lines.is_empty() {
            out.extend_from_slice(format!("{} \r\n", self.code).as_bytes());
            return;
        }
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            out.reserve(line.len() + 3);
            // SECURITY: a relayed intermediate line such as "226 done" would end the reply
            // early for the client while ftpgate still counts it as one reply: the two sides
            // would disagree about which reply answers which command.
            if i != 0 && i != last && line.first().is_some_and(u8::is_ascii_digit) {
                out.push(b' ');
            }
            for &b in line {
                // SECURITY: never emit a bare CR, LF or NUL inside reply text: a backend (or
                // an echoed file name) must not be able to forge extra reply lines.
                match b {
                    0xff => out.extend_from_slice(&[0xff, 0xff]),
                    b => out.push(sanitize_byte(b)),
                }
            }
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// `"<code><sep><text>"` with control bytes of `text` replaced.
fn prefixed_line(code: u16, sep: u8, text: &str) -> Vec<u8> {
    let code = code.to_string();
    let mut line = Vec::with_capacity(code.len() + 1 + text.len());
    line.extend_from_slice(code.as_bytes());
    line.push(sep);
    line.extend(text.bytes().map(sanitize_byte));
    line
}

/// Control bytes (below 0x20, and DEL) become spaces.
fn sanitize_byte(b: u8) -> u8 {
    if b < 0x20 || b == 0x7f { b' ' } else { b }
}

/// Why a backend reply was refused. Any of them ends the session with 421: the backend
/// stream can no longer be trusted to be in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// A first line that does not start with a valid code followed by ' ', '-' or nothing.
    Malformed,
    /// One line longer than [`MAX_REPLY_LINE`].
    LineTooLong,
    /// A multi-line reply over [`MAX_REPLY_BYTES`] or [`MAX_REPLY_LINES`].
    TooLong,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Malformed => f.write_str("malformed reply from server"),
            ReplyError::LineTooLong => f.write_str("reply line from server too long"),
            ReplyError::TooLong => f.write_str("reply from server too long"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// A multi-line reply being collected.
#[derive(Clone, Debug)]
struct Partial {
    code: u16,
    digits: [u8; 3],
    lines: Vec<Vec<u8>>,
    /// Wire bytes so far, CRLFs included.
    bytes: usize,
}

/// Assembles replies from the backend's lines (as cut by [`crate::ftp::line::LineFramer`]).
#[derive(Clone, Debug, Default)]
pub struct ReplyParser {
    partial: Option<Partial>,
}

impl ReplyParser {
    /// A parser waiting for the first line of a reply.
    pub fn new() -> Self {
        ReplyParser::default()
    }

    /// True when no partial multi-line reply is held.
    pub fn is_idle(&self) -> bool {
        self.partial.is_none()
    }

    /// Feeds one line (CRLF removed). Returns `Ok(Some(reply))` when the line completes a
    /// reply, `Ok(None)` inside a multi-line reply. After an error the parser is idle again.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let result = self.push_line_inner(line);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    fn push_line_inner(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        // SECURITY: every limit is checked before the line is stored, so a hostile backend
        // cannot make a session hold more than MAX_REPLY_BYTES.
        if line.len() > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let wire_len = line.len() + 2;
        match self.partial.as_mut() {
            None => {
                let (code, digits) = parse_code(line).ok_or(ReplyError::Malformed)?;
                match line.get(3) {
                    None | Some(b' ') => Ok(Some(Reply {
                        code,
                        lines: vec![line.to_vec()],
                    })),
                    Some(b'-') => {
                        if wire_len > MAX_REPLY_BYTES {
                            return Err(ReplyError::TooLong);
                        }
                        self.partial = Some(Partial {
                            code,
                            digits,
                            lines: vec![line.to_vec()],
                            bytes: wire_len,
                        });
                        Ok(None)
                    }
                    Some(_) => Err(ReplyError::Malformed),
                }
            }
            Some(partial) => {
                if partial.lines.len() >= MAX_REPLY_LINES
                    || partial.bytes.saturating_add(wire_len) > MAX_REPLY_BYTES
                {
                    return Err(ReplyError::TooLong);
                }
                partial.lines.push(line.to_vec());
                partial.bytes += wire_len;
                let ends = line.get(..3) == Some(&partial.digits[..])
                    && matches!(line.get(3), None | Some(b' '));
                if !ends {
                    return Ok(None);
                }
                Ok(self.partial.take().map(|partial| Reply {
                    code: partial.code,
                    lines: partial.lines,
                }))
            }
        }
    }
}

/// The reply code at the start of a first line: three ASCII digits, the first 1 to 5.
fn parse_code(line: &[u8]) -> Option<(u16, [u8; 3])> {
    let &[a, b, c] = line.get(..3)? else {
        return None;
    };
    if !(b'1'..=b'5').contains(&a) || !b.is_ascii_digit() || !c.is_ascii_digit() {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    Some((code, [a, b, c]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(reply: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(&mut out);
        out
    }

    fn reply(code: u16, lines: &[&[u8]]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|l| l.to_vec()).collect(),
        }
    }

    #[test]
    fn new_table() {
        let table: &[(u16, &str, &[u8])] = &[
            (200, "OK", b"200 OK\r\n"),
            (230, "Login successful.", b"230 Login successful.\r\n"),
            (221, "", b"221 \r\n"),
            // Control bytes in generated text become spaces.
            (550, "a\r\n230 fake", b"550 a  230 fake\r\n"),
            (550, "nul\0del\x7fesc\x1b", b"550 nul del esc \r\n"),
            (257, "\"/\u{e9}\"", "257 \"/\u{e9}\"\r\n".as_bytes()),
        ];
        for &(code, text, wire) in table {
            let reply = Reply::new(code, text);
            assert_eq!(reply.code, code);
            assert_eq!(reply.lines.len(), 1);
            assert!(!reply.is_multiline());
            assert_eq!(encoded(&reply), wire, "{text:?}");
        }
    }

    #[test]
    fn multi_table() {
        let table: &[(u16, &[&str], &[u8])] = &[
            (211, &[], b"211 \r\n"),
            (211, &["End"], b"211 End\r\n"),
            (211, &["Features:", "End"], b"211-Features:\r\n211 End\r\n"),
            (
                211,
                &["Features:", " EPRT", " EPSV", "UTF8", "End"],
                b"211-Features:\r\n EPRT\r\n EPSV\r\nUTF8\r\n211 End\r\n",
            ),
            // A middle line that begins with a digit is padded.
            (
                214,
                &["Help:", "226 looks like an end", "9", "End"],
                b"214-Help:\r\n 226 looks like an end\r\n 9\r\n214 End\r\n",
            ),
            // Empty middle line stays empty; control bytes are replaced.
            (214, &["a\nb", "", "c\rd"], b"214-a b\r\n\r\n214 c d\r\n"),
        ];
        for &(code, lines, wire) in table {
            let reply = Reply::multi(code, lines);
            assert_eq!(reply.is_multiline(), lines.len() > 1);
            assert_eq!(encoded(&reply), wire, "{lines:?}");
            // What ftpgate builds, ftpgate parses back to the same value.
            assert_eq!(parse_all(&wire_lines(wire)), vec![Ok(Some(reply))]);
        }
        assert_eq!(Reply::multi(200, &["x"]), Reply::new(200, "x"));
    }

    #[test]
    fn features_are_sent_as_rfc_2389_writes_them() {
        let reply = Reply::features(211, "Features:", &["EPSV", " MLST size*;", "UTF8 "], "End");
        assert_eq!(
            encoded(&reply),
            b"211-Features:\r\n EPSV\r\n MLST size*;\r\n UTF8\r\n211 End\r\n"
        );
        // Round trip: the parser keeps the space, as a backend's FEAT is received.
        assert_eq!(
            parse_all(&wire_lines(&encoded(&reply))),
            vec![Ok(Some(reply))]
        );
        // No features at all is still a well-formed multi-line 211.
        assert_eq!(
            encoded(&Reply::features(211, "Features:", &[], "End")),
            b"211-Features:\r\n211 End\r\n"
        );
        // Control bytes in a feature cannot start a line of their own.
        assert_eq!(
            encoded(&Reply::features(211, "F", &["A\r\n211 x"], "E")),
            b"211-F\r\n A  211 x\r\n211 E\r\n"
        );
    }

    #[test]
    fn encode_sanitises_relayed_lines() {
        let table: &[(Reply, &[u8])] = &[
            // Telnet escaping of 0xFF.
            (reply(257, &[b"257 \"/\xff\""]), b"257 \"/\xff\xff\"\r\n"),
            // Controls inside lines from a backend.
            (reply(250, &[b"250 a\rb\0c"]), b"250 a b c\r\n"),
            // Intermediate lines that begin with a digit are padded; first and last are not.
            (
                reply(150, &[b"150-x", b"226 Done", b"150 y"]),
                b"150-x\r\n 226 Done\r\n150 y\r\n",
            ),
            (
                reply(211, &[b"211-x", b" ok", b"211 end"]),
                b"211-x\r\n ok\r\n211 end\r\n",
            ),
            // Lines as received are otherwise kept.
            (reply(230, &[b"230"]), b"230\r\n"),
            // No lines at all: still one well-formed line.
            (reply(421, &[]), b"421 \r\n"),
        ];
        for (reply, wire) in table {
            assert_eq!(encoded(reply), *wire, "{reply:?}");
        }
    }

    #[test]
    fn accessors() {
        let table: &[(u16, u8, [bool; 5])] = &[
            (150, 1, [true, false, false, false, false]),
            (226, 2, [false, true, false, false, false]),
            (331, 3, [false, false, true, false, false]),
            (421, 4, [false, false, false, true, false]),
            (550, 5, [false, false, false, false, true]),
            (650, 6, [false, false, false, false, false]),
            (u16::MAX, u8::MAX, [false, false, false, false, false]),
        ];
        for &(code, class, flags) in table {
            let reply = Reply::new(code, "t");
            assert_eq!(reply.class(), class);
            let got = [
                reply.is_preliminary(),
                reply.is_positive_completion(),
                reply.is_intermediate(),
                reply.is_transient_negative(),
                reply.is_permanent_negative(),
            ];
            assert_eq!(got, flags, "{code}");
        }
        assert_eq!(Reply::new(230, "hello").text(), b"hello");
        assert_eq!(Reply::multi(230, &["first", "last"]).text(), b"first");
        assert_eq!(reply(230, &[b"230"]).text(), b"");
        assert_eq!(reply(230, &[b"230 "]).text(), b"");
        assert_eq!(reply(230, &[]).text(), b"");
    }

    /// Splits encoded wire bytes back into lines (for round trips).
    fn wire_lines(wire: &[u8]) -> Vec<Vec<u8>> {
        let text = wire.strip_suffix(b"\r\n").unwrap_or(wire);
        text.split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect()
    }

    fn parse_all(lines: &[Vec<u8>]) -> Vec<Result<Option<Reply>, ReplyError>> {
        let mut parser = ReplyParser::new();
        let mut results = Vec::new();
        for line in lines {
            match parser.push_line(line) {
                Ok(None) => {}
                other => results.push(other),
            }
        }
        results
    }

    #[test]
    fn parser_table() {
        type Expect = Result<Option<Reply>, ReplyError>;
        let table: &[(&[&[u8]], Expect, bool)] = &[
            (&[b"220 ready"], Ok(Some(reply(220, &[b"220 ready"]))), true),
            (&[b"200"], Ok(Some(reply(200, &[b"200"]))), true),
            (&[b"200 "], Ok(Some(reply(200, &[b"200 "]))), true),
            (
                &[b"150 \xff\x00"],
                Ok(Some(reply(150, &[b"150 \xff\x00"]))),
                true,
            ),
            (&[b"599 x"], Ok(Some(reply(599, &[b"599 x"]))), true),
            (&[b"100 x"], Ok(Some(reply(100, &[b"100 x"]))), true),
            (
                &[b"211-Features:", b" UTF8", b"211 End"],
                Ok(Some(reply(211, &[b"211-Features:", b" UTF8", b"211 End"]))),
                true,
            ),
            // Multi-line ending with the bare code.
            (
                &[b"211-a", b"211"],
                Ok(Some(reply(211, &[b"211-a", b"211"]))),
                true,
            ),
            // Lines that look like ends but are not (other code, '-' again, longer number).
            (
                &[
                    b"150-a", b"226 no", b"150-no", b"1500 no", b"15 no", b"", b"150 yes",
                ],
                Ok(Some(reply(
                    150,
                    &[
                        b"150-a", b"226 no", b"150-no", b"1500 no", b"15 no", b"", b"150 yes",
                    ],
                ))),
                true,
            ),
            // Incomplete multi-line: nothing yet, parser busy.
            (&[b"230-a", b"b"], Ok(None), false),
            // Malformed first lines.
            (&[b""], Err(ReplyError::Malformed), true),
            (&[b"20"], Err(ReplyError::Malformed), true),
            (&[b"2000 x"], Err(ReplyError::Malformed), true),
            (&[b"200x"], Err(ReplyError::Malformed), true),
            (&[b"200\tx"], Err(ReplyError::Malformed), true),
            (&[b"600 x"], Err(ReplyError::Malformed), true),
            (&[b"000 x"], Err(ReplyError::Malformed), true),
            (&[b"099 x"], Err(ReplyError::Malformed), true),
            (&[b" 200 x"], Err(ReplyError::Malformed), true),
            (&[b"2a0 x"], Err(ReplyError::Malformed), true),
            (&[b"hello"], Err(ReplyError::Malformed), true),
            (&[b"\xff\xff\xff x"], Err(ReplyError::Malformed), true),
            (&[b"+OK"], Err(ReplyError::Malformed), true),
        ];
        for &(lines, ref expected, idle) in table {
            let mut parser = ReplyParser::new();
            let mut last = Ok(None);
            for line in lines {
                last = parser.push_line(line);
            }
            assert_eq!(&last, expected, "{lines:?}");
            assert_eq!(parser.is_idle(), idle, "{lines:?}");
        }
    }

    #[test]
    fn parser_sequence_and_reuse() {
        let mut parser = ReplyParser::new();
        assert!(parser.is_idle());
        assert_eq!(parser.push_line(b"150-a"), Ok(None));
        assert!(!parser.is_idle());
        assert_eq!(
            parser.push_line(b"150 b"),
            Ok(Some(reply(150, &[b"150-a", b"150 b"])))
        );
        assert!(parser.is_idle());
        assert_eq!(
            parser.push_line(b"226 done"),
            Ok(Some(reply(226, &[b"226 done"])))
        );
        // After an error the parser starts afresh.
        assert_eq!(parser.push_line(b"garbage"), Err(ReplyError::Malformed));
        assert!(parser.is_idle());
        assert_eq!(
            parser.push_line(b"200 ok"),
            Ok(Some(reply(200, &[b"200 ok"])))
        );
    }

    #[test]
    fn parser_limits() {
        // One line at the limit passes, one over fails, in both positions.
        let mut at_limit = b"200 ".to_vec();
        at_limit.resize(MAX_REPLY_LINE, b'x');
        let mut over = at_limit.clone();
        over.push(b'x');

        let mut parser = ReplyParser::new();
        assert_eq!(
            parser.push_line(&at_limit),
            Ok(Some(reply(200, &[&at_limit])))
        );
        assert_eq!(parser.push_line(&over), Err(ReplyError::LineTooLong));
        assert!(parser.is_idle());

        let mut body = at_limit.clone();
        body[3] = b' ';
        body[0] = b'x';
        assert_eq!(parser.push_line(b"211-start"), Ok(None));
        assert_eq!(parser.push_line(&body), Ok(None));
        assert_eq!(parser.push_line(&over), Err(ReplyError::LineTooLong));
        assert!(parser.is_idle());

        // Too many lines: MAX_REPLY_LINES lines are fine, one more is not.
        let mut parser = ReplyParser::new();
        assert_eq!(parser.push_line(b"211-start"), Ok(None));
        for _ in 0..MAX_REPLY_LINES - 2 {
            assert_eq!(parser.push_line(b" x"), Ok(None));
        }
        match parser.push_line(b"211 end") {
            Ok(Some(reply)) => assert_eq!(reply.lines.len(), MAX_REPLY_LINES),
            other => panic!("expected a reply, got {other:?}"),
        }
        assert_eq!(parser.push_line(b"211-start"), Ok(None));
        for _ in 0..MAX_REPLY_LINES - 1 {
            assert_eq!(parser.push_line(b" x"), Ok(None));
        }
        assert_eq!(parser.push_line(b"211 end"), Err(ReplyError::TooLong));
        assert!(parser.is_idle());

        // Too many bytes: long lines hit MAX_REPLY_BYTES well before the line count.
        assert_eq!(parser.push_line(b"211-start"), Ok(None));
        let mut total = b"211-start".len() + 2;
        let mut result = Ok(None);
        let mut pushed = 0;
        while result == Ok(None) {
            result = parser.push_line(&body);
            pushed += 1;
            if result == Ok(None) {
                total += body.len() + 2;
            }
            assert!(pushed <= MAX_REPLY_LINES, "byte limit never hit");
        }
        assert_eq!(result, Err(ReplyError::TooLong));
        assert!(total <= MAX_REPLY_BYTES);
        assert!(total + body.len() + 2 > MAX_REPLY_BYTES);
        assert!(parser.is_idle());
        assert_eq!(
            parser.push_line(b"200 ok"),
            Ok(Some(reply(200, &[b"200 ok"])))
        );
    }

    #[test]
    fn parser_hostile_sweep() {
        // Every byte in every position of a short line: no panic; acceptance exactly when
        // the first line is well-formed.
        for b in 0..=u8::MAX {
            for line in [
                [b, b'0', b'0', b' '],
                [b'2', b, b'0', b' '],
                [b'2', b'0', b, b' '],
                [b'2', b'0', b'0', b],
            ] {
                let mut parser = ReplyParser::new();
                let result = parser.push_line(&line);
                let valid = parse_code(&line).is_some() && matches!(line[3], b' ' | b'-');
                assert_eq!(result.is_ok(), valid, "{line:?}");
                if valid {
                    let mut out = Vec::new();
                    if let Ok(Some(reply)) = result {
                        reply.encode(&mut out);
                        assert!(!out[..out.len() - 2].contains(&b'\n'));
                        assert!(!out[..out.len() - 2].contains(&b'\r'));
                    }
                }
            }
        }
    }

    #[test]
    fn encode_never_emits_stray_line_endings() {
        for b in 0..=u8::MAX {
            let r = reply(
                150,
                &[
                    &[b'1', b'5', b'0', b'-', b],
                    &[b, b'a'],
                    &[b'1', b'5', b'0', b' ', b],
                ],
            );
            let wire = encoded(&r);
            let lines = wire_lines(&wire);
            assert_eq!(lines.len(), 3, "{b:#x}");
            for line in &lines {
                assert!(!line.iter().any(|&c| c < 0x20 || c == 0x7f), "{b:#x}");
            }
            // The middle line never ends the reply for a client.
            assert!(!lines[1].first().is_some_and(u8::is_ascii_digit));
        }
    }

    #[test]
    fn error_display() {
        assert_eq!(
            ReplyError::Malformed.to_string(),
            "malformed reply from server"
        );
        assert_eq!(
            ReplyError::LineTooLong.to_string(),
            "reply line from server too long"
        );
        assert_eq!(
            ReplyError::TooLong.to_string(),
            "reply from server too long"
        );
    }
}
