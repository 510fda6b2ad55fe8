//! Control-channel byte streams: Telnet filtering and line framing.
//!
//! This module owns two small state machines that sit between a socket buffer and the
//! parsers in [`crate::ftp::command`] and [`crate::ftp::reply`]:
//!
//! - [`TelnetFilter`] removes Telnet commands from a byte stream in place (RFC 854, as the
//!   FTP control connection uses it, RFC 959 §4.1.3). `IAC IAC` becomes one 0xFF data byte;
//!   `IAC WILL/WONT/DO/DONT <option>` is dropped (3 bytes); `IAC <anything else>` (IP, DM,
//!   AO, AYT, NOP, ...) is dropped (2 bytes), which turns the `IAC IP IAC DM ABOR` that
//!   clients send to abort a transfer into a plain `ABOR` line. ftpgate never answers Telnet
//!   option negotiation; it refuses every option by silence, as vsftpd does (vsftpd never
//!   negotiates either). Run one filter per control stream: on the client's commands and on
//!   the backend's replies (servers such as vsftpd send a 0xFF data byte as `IAC IAC`).
//!   Subnegotiation (`IAC SB ... IAC SE`) is not used by FTP; only its two-byte framing
//!   commands are removed.
//! - [`LineFramer`] cuts a byte stream into lines with a hard length cap, without allocating.
//!
//! The line discipline, decided once here: **a line ends at LF; one CR immediately before it
//! is removed; a bare CR elsewhere stays in the line** (and `parse_command` then refuses it
//! as a control byte); **a bare LF ends a line like CRLF** (vsftpd and most servers accept
//! it). A line whose content exceeds the cap is reported once as [`Framed::TooLong`] and
//! its bytes are thrown away up to and including its LF, however many reads that takes.
//!
//! Nothing here does I/O, allocates, or panics on any input.

/// Telnet "interpret as command".
const IAC: u8 = 255;
/// Telnet WILL; WILL, WONT, DO and DONT (251..=254) are followed by one option byte.
const WILL: u8 = 251;
/// Telnet DONT, the last of the option-negotiation commands.
const DONT: u8 = 254;

/// Where the filter is inside a Telnet sequence; kept across calls because a sequence may be
/// split between two reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum TelnetState {
    /// Plain data.
    #[default]
    Data,
    /// Just saw IAC.
    Iac,
    /// Just saw IAC WILL/WONT/DO/DONT; the next byte is the option and is dropped.
    Option,
}

/// Removes Telnet commands from a control stream, in place, keeping state between reads.
#[derive(Clone, Debug, Default)]
pub struct TelnetFilter {
    state: TelnetState,
}

impl TelnetFilter {
    /// A filter at the start of a stream.
    pub fn new() -> Self {
        TelnetFilter::default()
    }

    /// Rewrites `bytes` in place to the data they carry and returns the new length; the
    /// caller keeps `bytes[..n]`. The output is never longer than the input. An incomplete
    /// sequence at the end is remembered and completed by the next call.
    pub fn filter(&mut self, bytes: &mut [u8]) -> usize {
        let mut written = 0;
        for read in 0..bytes.len() {
            let Some(&b) = bytes.get(read) else {
                break;
            };
            if let Some(out) = self.step(b) {
                // `written <= read < bytes.len()`, so this slot always exists.
                if let Some(slot) = bytes.get_mut(written) {
                    *slot = out;
                    written += 1;
                }
            }
        }
        written
    }

    /// Feeds one byte; returns the data byte it yields, if any.
    fn step(&mut self, b: u8) -> Option<u8> {
        match self.state {
            TelnetState::Data if b == IAC => {
                self.state = TelnetState::Iac;
                None
            }
            TelnetState::Data => Some(b),
            TelnetState::Iac if b == IAC => {
                self.state = TelnetState::Data;
                Some(IAC)
            }
            TelnetState::Iac if (WILL..=DONT).contains(&b) => {
                self.state = TelnetState::Option;
                None
            }
            TelnetState::Iac | TelnetState::Option => {
                self.state = TelnetState::Data;
                None
            }
        }
    }
}

/// The outcome of one [`LineFramer::next_line`] call. In every case the caller drops
/// `consumed` bytes from the front of its buffer after handling the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framed {
    /// A complete line: its content is `buf[..line_end]` (the LF and one CR before it
    /// excluded); `consumed` covers the line ending too.
    Line { line_end: usize, consumed: usize },
    /// The current line is longer than the cap. Reported once per line; the rest of the line
    /// is discarded by later calls.
    TooLong { consumed: usize },
    /// No complete line yet. `consumed` is 0, or the number of bytes of an over-long line
    /// that were discarded. **If `consumed > 0`, call again after dropping them:** complete
    /// lines may be waiting behind the discarded bytes. Only `Incomplete { consumed: 0 }`
    /// means "wait for more input".
    Incomplete { consumed: usize },
}

/// Cuts a byte stream into lines of at most `max_line` content bytes. Holds no buffer: the
/// caller owns the bytes and passes everything it has buffered on each call.
///
/// Usage: `loop { match framer.next_line(buf) { ... } }`, dropping `consumed` bytes after
/// each result, until `Incomplete { consumed: 0 }`.
#[derive(Clone, Debug)]
pub struct LineFramer {
    max_line: usize,
    /// Inside an over-long line already reported: drop bytes up to and including the next LF.
    discarding: bool,
}

impl LineFramer {
    /// A framer for lines of at most `max_line` bytes, not counting the line ending.
    pub fn new(max_line: usize) -> Self {
        LineFramer {
            max_line,
            discarding: false,
        }
    }

    /// The cap this framer was built with.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// True while the rest of an over-long line is being thrown away.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Looks for the next line at the front of `buf` (all currently buffered bytes).
    pub fn next_line(&mut self, buf: &[u8]) -> Framed {
        let lf = buf.iter().position(|&b| b == b'\n');
        if self.discarding {
            return match lf {
                Some(at) => {
                    self.discarding = false;
                    Framed::Incomplete { consumed: at + 1 }
                }
                None => Framed::Incomplete {
                    consumed: buf.len(),
                },
            };
        }
        match lf {
            Some(at) => {
                let line_end = if at > 0 && buf.get(at - 1) == Some(&b'\r') {
                    at - 1
                } else {
                    at
                };
                // SECURITY: hard cap on line length (vsftpd VSFTP_MAX_COMMAND_LINE); the
                // whole over-long line, ending included, goes in one step.
                if line_end > self.max_line {
                    Framed::TooLong { consumed: at + 1 }
                } else {
                    Framed::Line {
                        line_end,
                        consumed: at + 1,
                    }
                }
            }
            None => {
                // A trailing CR may be the first half of the CRLF still to come: it does not
                // count toward the content yet.
                let pending = match buf.last() {
                    Some(b'\r') => buf.len() - 1,
                    _ => buf.len(),
                };
                // SECURITY: a peer that never sends LF cannot make the caller hold more than
                // one line's worth of bytes.
                if pending > self.max_line {
                    self.discarding = true;
                    Framed::TooLong {
                        consumed: buf.len(),
                    }
                } else {
                    Framed::Incomplete { consumed: 0 }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a filter over `chunks` (one call per chunk) and returns the concatenated output.
    fn filter_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut filter = TelnetFilter::new();
        let mut out = Vec::new();
        for chunk in chunks {
            let mut bytes = chunk.to_vec();
            let n = filter.filter(&mut bytes);
            assert!(n <= bytes.len());
            out.extend_from_slice(bytes.get(..n).unwrap_or_default());
        }
        out
    }

    #[test]
    fn telnet_table() {
        let table: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"NOOP\r\n", b"NOOP\r\n"),
            // IAC IAC is one 0xFF data byte.
            (b"RETR \xff\xff\r\n", b"RETR \xff\r\n"),
            (b"\xff\xff\xff\xff", b"\xff\xff"),
            // ABOR with IP and Synch (RFC 959 4.1.3).
            (b"\xff\xf4\xff\xf2ABOR\r\n", b"ABOR\r\n"),
            // Option negotiation is dropped, option byte included.
            (b"\xff\xfb\x01NOOP", b"NOOP"),
            (b"\xff\xfc\xffNOOP", b"NOOP"),
            (b"\xff\xfd\x18\xff\xfe\x01QUIT", b"QUIT"),
            // The option byte may itself be 0xFF; it is not an IAC then.
            (b"\xff\xfd\xffA", b"A"),
            // Other two-byte commands.
            (b"A\xff\xf1B", b"AB"),
            (b"A\xff\xf6B", b"AB"),
            (b"A\xff\xf0B\xff\xfaC", b"ABC"),
            (b"A\xff\x00B", b"AB"),
            (b"A\xff\rB", b"AB"),
            // Trailing lone IAC is held, not emitted.
            (b"A\xff", b"A"),
            // High bytes that are not IAC pass.
            (b"\xc3\xa9\xfe\xfb", b"\xc3\xa9\xfe\xfb"),
        ];
        for &(input, expected) in table {
            assert_eq!(filter_chunks(&[input]), expected, "{input:?}");
        }
    }

    #[test]
    fn telnet_sequences_split_across_reads() {
        let whole: &[u8] = b"A\xff\xffB\xff\xfb\x01C\xff\xf4\xff\xf2D\xff\xff";
        let expected = filter_chunks(&[whole]);
        assert_eq!(expected, b"A\xffBCD\xff");
        // Every way of cutting the input in two gives the same output.
        for cut in 0..=whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(filter_chunks(&[a, b]), expected, "cut at {cut}");
        }
        // One byte per read.
        let singles: Vec<&[u8]> = whole.chunks(1).collect();
        assert_eq!(filter_chunks(&singles), expected);
    }

    #[test]
    fn telnet_state_survives_empty_reads() {
        assert_eq!(filter_chunks(&[b"\xff", b"", b"\xfd", b"", b"\x01X"]), b"X");
    }

    #[test]
    fn telnet_hostile_sweep() {
        // Every command byte after an IAC, followed by awkward bytes: no panic, and exactly
        // the data bytes RFC 854 says are there.
        for a in 0..=u8::MAX {
            for b in [0u8, 1, 0x0a, 0x0d, b'b', 0xf0, 0xf4, 0xfa, 0xfb, 0xfe, 0xff] {
                let input = [b'x', IAC, a, b, b'y', b'y'];
                // What follows the IAC sequence when `b` is back in data position.
                let tail: &[u8] = if b == IAC { b"y" } else { &[b, b'y', b'y'] };
                let mut expected = vec![b'x'];
                if a == IAC {
                    expected.push(IAC);
                    expected.extend_from_slice(tail);
                } else if (WILL..=DONT).contains(&a) {
                    expected.extend_from_slice(b"yy");
                } else {
                    expected.extend_from_slice(tail);
                }
                assert_eq!(filter_chunks(&[&input]), expected, "{a:#x} {b:#x}");
            }
        }
    }

    /// Drives a framer the way the session does: `reads` arrive one after another into a
    /// buffer; after each read the framer is called until it waits. Returns the events as
    /// (kind, line content).
    fn frame(max_line: usize, reads: &[&[u8]]) -> Vec<(&'static str, Vec<u8>)> {
        let mut framer = LineFramer::new(max_line);
        let mut buf: Vec<u8> = Vec::new();
        let mut events = Vec::new();
        for read in reads {
            buf.extend_from_slice(read);
            loop {
                let (consumed, stop) = match framer.next_line(&buf) {
                    Framed::Line { line_end, consumed } => {
                        assert!(line_end < consumed && consumed <= buf.len());
                        let line = buf.get(..line_end).unwrap_or_default().to_vec();
                        events.push(("line", line));
                        (consumed, false)
                    }
                    Framed::TooLong { consumed } => {
                        events.push(("too long", Vec::new()));
                        (consumed, false)
                    }
                    Framed::Incomplete { consumed } => (consumed, consumed == 0),
                };
                assert!(consumed <= buf.len());
                buf.drain(..consumed);
                if stop {
                    break;
                }
            }
            // Memory stays bounded: never more than one line, its CR and nothing else held.
            assert!(buf.len() <= max_line + 1, "held {} bytes", buf.len());
        }
        events
    }

    fn lines(items: &[&[u8]]) -> Vec<(&'static str, Vec<u8>)> {
        items
            .iter()
            .map(|item| {
                if item == b"!" {
                    ("too long", Vec::new())
                } else {
                    ("line", item.to_vec())
                }
            })
            .collect()
    }

    /// (max_line, reads, expected lines; `b"!"` marks TooLong)
    type FramingCase = (usize, &'static [&'static [u8]], &'static [&'static [u8]]);

    #[test]
    fn framing_table() {
        let table: &[FramingCase] = &[
            (10, &[b"NOOP\r\n"], &[b"NOOP"]),
            (10, &[b"NOOP\n"], &[b"NOOP"]),
            (10, &[b"\r\n"], &[b""]),
            (10, &[b"\n"], &[b""]),
            (10, &[b"A\r\nB\nC\r\n"], &[b"A", b"B", b"C"]),
            (10, &[b"NO", b"OP\r", b"\n"], &[b"NOOP"]),
            (10, &[b"NOOP"], &[]),
            (10, &[b"NOOP\r"], &[]),
            // Only one CR before LF is removed; a bare CR stays in the line.
            (10, &[b"A\r\r\n"], &[b"A\r"]),
            (10, &[b"A\rB\r\n"], &[b"A\rB"]),
            (10, &[b"\r\r\r\n"], &[b"\r\r"]),
            // NUL is not the framer's business.
            (10, &[b"A\0B\n"], &[b"A\0B"]),
            // Exactly at the cap, with and without the CR.
            (4, &[b"ABCD\r\n"], &[b"ABCD"]),
            (4, &[b"ABCD\n"], &[b"ABCD"]),
            (4, &[b"ABCD\r", b"\n"], &[b"ABCD"]),
            (4, &[b"ABCD", b"\r", b"\n"], &[b"ABCD"]),
            // One over the cap, LF in the same read: TooLong once, next line fine.
            (4, &[b"ABCDE\r\nNOOP\r\n"], &[b"!", b"NOOP"]),
            (4, &[b"ABCD\r\r\nNOOP\n"], &[b"!", b"NOOP"]),
            // Over the cap without LF: TooLong once, then discarded across reads.
            (4, &[b"ABCDE"], &[b"!"]),
            (4, &[b"ABCDE", b"FGH", b"IJ\r\nNOOP\r\n"], &[b"!", b"NOOP"]),
            (4, &[b"ABCDE", b"\n", b"X\n"], &[b"!", b"X"]),
            (
                4,
                &[b"ABCD\rE", b"xxxxxxxxxx", b"\nQUIT\n"],
                &[b"!", b"QUIT"],
            ),
            // The discarded tail may carry something that looks like a command: it is gone.
            (4, &[b"AAAAAAAA", b"DELE x\r\nPWD\r\n"], &[b"!", b"PWD"]),
            // Several over-long lines in a row.
            (
                2,
                &[b"AAAA\nBBBB\nCC\nDDDDDD", b"DD\nE\n"],
                &[b"!", b"!", b"CC", b"!", b"E"],
            ),
            // Cap 0: only empty lines pass.
            (0, &[b"\r\n\nA\n"], &[b"", b"", b"!"]),
        ];
        for &(max_line, reads, expected) in table {
            assert_eq!(
                frame(max_line, reads),
                lines(expected),
                "max {max_line} reads {reads:?}"
            );
        }
    }

    #[test]
    fn framing_is_independent_of_read_boundaries() {
        let stream: &[u8] = b"USER a\r\nPASS b\nAAAAAAAAAAAAAAAAAAAA\r\nA\rB\r\n\r\nQUIT\r\n";
        let expected = frame(8, &[stream]);
        assert_eq!(
            expected,
            lines(&[b"USER a", b"PASS b", b"!", b"A\rB", b"", b"QUIT"])
        );
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(frame(8, &[a, b]), expected, "cut at {cut}");
        }
        let singles: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frame(8, &singles), expected);
    }

    #[test]
    fn raw_results() {
        let mut framer = LineFramer::new(4);
        assert_eq!(framer.max_line(), 4);
        assert_eq!(framer.next_line(b""), Framed::Incomplete { consumed: 0 });
        assert_eq!(
            framer.next_line(b"AB\r\nCD"),
            Framed::Line {
                line_end: 2,
                consumed: 4
            }
        );
        assert_eq!(framer.next_line(b"ABCDEF"), Framed::TooLong { consumed: 6 });
        assert!(framer.is_discarding());
        assert_eq!(framer.next_line(b""), Framed::Incomplete { consumed: 0 });
        assert_eq!(framer.next_line(b"GHI"), Framed::Incomplete { consumed: 3 });
        assert_eq!(
            framer.next_line(b"J\r\nOK\r\n"),
            Framed::Incomplete { consumed: 3 }
        );
        assert!(!framer.is_discarding());
        assert_eq!(
            framer.next_line(b"OK\r\n"),
            Framed::Line {
                line_end: 2,
                consumed: 4
            }
        );
    }

    #[test]
    fn framing_hostile_sweep() {
        // Every byte value at every position of a short stream, through a tiny cap: no
        // panic, results always inside the buffer.
        for b in 0..=u8::MAX {
            for max_line in 0..4 {
                let stream = [b, b'\r', b, b'\n', b, b, b, b, b'\n', b];
                let mut framer = LineFramer::new(max_line);
                let mut rest: &[u8] = &stream;
                for _ in 0..64 {
                    let consumed = match framer.next_line(rest) {
                        Framed::Line { line_end, consumed } => {
                            assert!(line_end <= consumed);
                            consumed
                        }
                        Framed::TooLong { consumed } | Framed::Incomplete { consumed } => consumed,
                    };
                    assert!(consumed <= rest.len());
                    rest = rest.get(consumed..).unwrap_or_default();
                    if consumed == 0 {
                        break;
                    }
                }
            }
        }
    }
}
