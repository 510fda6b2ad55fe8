//! Property tests: helpers.

#![allow(unused_imports)]

use super::*;

pub(crate) fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Splits `bytes` at the given cut points (taken modulo its length, sorted, duplicates kept so
/// empty reads happen too).
pub(crate) fn split_at_cuts<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for point in points {
        chunks.push(&bytes[start..point]);
        start = point;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// A framing event, as the caller sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Line(Vec<u8>),
    TooLong,
}

/// Drives a [`LineFramer`] the way the session does: each read is appended to a buffer, then
/// the framer is called until it answers `Incomplete { consumed: 0 }`, dropping `consumed`
/// bytes after each answer. Checks the per-call contract on the way and returns the events.
pub(crate) fn frame(max_line: usize, reads: &[&[u8]]) -> Result<Vec<Event>, TestCaseError> {
    let mut framer = LineFramer::new(max_line);
    prop_assert_eq!(framer.max_line(), max_line);
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        // Every call that does not stop consumes at least one byte, so this many calls are
        // always enough; more would mean the framer loops.
        let mut budget = buf.len() + 2;
        loop {
            prop_assert!(budget > 0, "framer does not make progress on {:?}", buf);
            budget -= 1;
            let result = framer.next_line(&buf);
            let (consumed, again) = match result {
                Framed::Line { line_end, consumed } => {
                    prop_assert!(line_end < consumed, "{:?}", result);
                    prop_assert!(consumed <= buf.len(), "{:?} on {} bytes", result, buf.len());
                    prop_assert!(line_end <= max_line, "line of {} > {}", line_end, max_line);
                    events.push(Event::Line(buf[..line_end].to_vec()));
                    (consumed, true)
                }
                Framed::TooLong { consumed } => {
                    prop_assert!(consumed > 0, "TooLong consuming nothing");
                    events.push(Event::TooLong);
                    (consumed, true)
                }
                Framed::Incomplete { consumed } => (consumed, consumed > 0),
            };
            prop_assert!(consumed <= buf.len(), "{:?} on {} bytes", result, buf.len());
            buf.drain(..consumed);
            if !again {
                break;
            }
        }
        // Bounded memory: the caller never has to hold more than one line and its CR.
        prop_assert!(
            buf.len() <= max_line + 1,
            "caller holds {} bytes with max_line {}",
            buf.len(),
            max_line
        );
    }
    Ok(events)
}

/// Reference model of the line discipline, written from the module documentation: a line
/// ends at LF, one CR before it is removed, a line whose content exceeds the cap is one
/// TooLong; an unterminated tail is TooLong once its content (a final CR not counted) exceeds
/// the cap, and nothing otherwise.
pub(crate) fn model_frame(max_line: usize, stream: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut segments = stream.split(|&b| b == b'\n').peekable();
    while let Some(segment) = segments.next() {
        let terminated = segments.peek().is_some();
        let content = segment.strip_suffix(b"\r").unwrap_or(segment);
        if content.len() > max_line {
            events.push(Event::TooLong);
        } else if terminated {
            events.push(Event::Line(content.to_vec()));
        }
    }
    events
}

/// Runs a Telnet filter over `reads`, one call per read, checking that no call grows its
/// input, and returns the concatenated output.
pub(crate) fn telnet(reads: &[&[u8]]) -> Result<Vec<u8>, TestCaseError> {
    let mut filter = TelnetFilter::new();
    let mut out = Vec::new();
    for read in reads {
        let mut bytes = read.to_vec();
        let n = filter.filter(&mut bytes);
        prop_assert!(n <= read.len(), "filter grew {} bytes to {}", read.len(), n);
        out.extend_from_slice(&bytes[..n]);
    }
    Ok(out)
}

/// Reference model of RFC 854 data extraction over a whole stream: IAC IAC is one 0xFF,
/// IAC WILL/WONT/DO/DONT <opt> is dropped, IAC <other> is dropped, a trailing incomplete
/// sequence yields nothing. Also returns how many IAC IAC pairs it decoded.
pub(crate) fn model_telnet(input: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut pairs = 0;
    let mut i = 0;
    while i < input.len() {
        if input[i] != IAC {
            out.push(input[i]);
            i += 1;
            continue;
        }
        match input.get(i + 1) {
            None => break,
            Some(&IAC) => {
                out.push(IAC);
                pairs += 1;
                i += 2;
            }
            Some(251..=254) => i += 3,
            Some(_) => i += 2,
        }
    }
    (out, pairs)
}

pub(crate) fn encoded_reply(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    reply.encode(&mut out);
    out
}

/// The reply path toward a client, replayed on the receiving side: Telnet filter, framer with
/// the reply line cap, reply parser. Returns every parser result.
pub(crate) fn reparse_wire(
    wire: &[u8],
) -> Result<Vec<Result<Option<Reply>, ReplyError>>, TestCaseError> {
    let data = telnet(&[wire])?;
    let mut results = Vec::new();
    let mut parser = ReplyParser::new();
    for event in frame(MAX_REPLY_LINE, &[&data])? {
        match event {
            Event::Line(line) => results.push(parser.push_line(&line)),
            Event::TooLong => results.push(Err(ReplyError::LineTooLong)),
        }
    }
    Ok(results)
}

/// Checks that `wire` is a well-formed encoding of `lines` reply lines: every line ends with
/// CRLF, no CR, LF or other control byte occurs inside a line, no intermediate line begins
/// with a digit, and every 0xFF is doubled.
pub(crate) fn check_reply_wire(wire: &[u8], lines: usize) -> Result<(), TestCaseError> {
    prop_assert!(wire.ends_with(b"\r\n"), "{:?}", wire);
    let body = &wire[..wire.len() - 2];
    let wire_lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    prop_assert_eq!(wire_lines.len(), lines.max(1), "{:?}", wire);
    for (i, line) in wire_lines.iter().enumerate() {
        let content = if i + 1 < wire_lines.len() {
            prop_assert!(line.ends_with(b"\r"), "bare LF in {:?}", wire);
            &line[..line.len() - 1]
        } else {
            line
        };
        prop_assert!(!content.contains(&b'\r'), "bare CR in {:?}", wire);
        // RFC 959 4.2: an intermediate line must not begin with a digit, or a client could
        // take it for the last line.
        if i > 0 && i + 1 < wire_lines.len() {
            prop_assert!(
                !content.first().is_some_and(u8::is_ascii_digit),
                "intermediate line {:?} begins with a digit in {:?}",
                content,
                wire
            );
        }
        prop_assert!(!content.iter().any(|&b| is_control(b)), "{:?}", wire);
        let mut bytes = content.iter();
        while let Some(&b) = bytes.next() {
            if b == IAC {
                prop_assert_eq!(bytes.next(), Some(&IAC), "lone IAC in {:?}", wire);
            }
        }
    }
    Ok(())
}

/// Reference model of the PORT argument: after trimming spaces, exactly six comma-separated
/// fields of 1 to 3 ASCII digits, each at most 255, port not 0.
pub(crate) fn model_port_arg(arg: &[u8]) -> Option<SocketAddrV4> {
    let start = arg.iter().position(|&b| b != b' ')?;
    let end = arg.iter().rposition(|&b| b != b' ')? + 1;
    let fields: Vec<&[u8]> = arg[start..end].split(|&b| b == b',').collect();
    if fields.len() != 6 {
        return None;
    }
    let mut numbers = [0u8; 6];
    for (slot, field) in numbers.iter_mut().zip(&fields) {
        if field.is_empty() || field.len() > 3 || !field.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *slot = std::str::from_utf8(field).ok()?.parse().ok()?;
    }
    let [h1, h2, h3, h4, p1, p2] = numbers;
    let port = u16::from_be_bytes([p1, p2]);
    (port != 0).then(|| SocketAddrV4::new([h1, h2, h3, h4].into(), port))
}

/// Reference model of the 227 search (RFC 1123 4.1.2.6): the text is a sequence of chains,
/// each a run of digit groups joined by single commas; the first chain of at least six groups
/// is the answer (its first six groups), an error if one of them is not an octet or the port
/// is 0. No such chain is a syntax error.
pub(crate) fn model_pasv_reply(text: &[u8]) -> Result<SocketAddrV4, AddressError> {
    let digit_run = |from: usize| {
        text[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut groups: Vec<&[u8]> = Vec::new();
        let mut j = i;
        loop {
            let n = digit_run(j);
            groups.push(&text[j..j + n]);
            j += n;
            if groups.len() == 6 {
                break;
            }
            if text.get(j) == Some(&b',') && text.get(j + 1).is_some_and(u8::is_ascii_digit) {
                j += 1;
            } else {
                break;
            }
        }
        if groups.len() == 6 {
            let mut numbers = [0u8; 6];
            for (slot, group) in numbers.iter_mut().zip(&groups) {
                let value: u32 = if group.len() > 3 {
                    u32::MAX
                } else {
                    std::str::from_utf8(group)
                        .ok()
                        .and_then(|g| g.parse().ok())
                        .unwrap_or(u32::MAX)
                };
                *slot = u8::try_from(value).map_err(|_| AddressError::BadNumber)?;
            }
            let [h1, h2, h3, h4, p1, p2] = numbers;
            let port = u16::from_be_bytes([p1, p2]);
            if port == 0 {
                return Err(AddressError::BadNumber);
            }
            return Ok(SocketAddrV4::new([h1, h2, h3, h4].into(), port));
        }
        i = j;
    }
    Err(AddressError::Syntax)
}
