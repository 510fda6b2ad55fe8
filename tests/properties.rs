//! Property-based tests of the pure parsers and codecs, on arbitrary and hostile input.
//!
//! Every parser in `ftp` and `policy` promises "no panic on any input, bounded memory", and
//! every formatter that has a parser as its inverse promises a round trip. These properties
//! check those promises on generated input: raw bytes, inputs biased toward the interesting
//! shapes (verbs, CR/LF/IAC, reply codes, JSON punctuation), arbitrary read boundaries, and
//! random edits of a valid policy, textual and structural. Independent reference models
//! (written here from the documented rules, not copied from `src/`) pin the exact output of
//! the line framer, the Telnet filter, the PORT argument parser and the 227 reply search.
//!
//! Case counts are kept moderate so the file runs in a few seconds in debug builds; set
//! `PROPTEST_CASES` to run more (see [`config`]).

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

use ftpgate::ftp::address::{
    AddressError, EpsvArg, format_eprt_arg, format_epsv_reply, format_pasv_reply, format_port_arg,
    parse_eprt_arg, parse_epsv_arg, parse_epsv_reply, parse_pasv_reply, parse_port_arg,
};
use ftpgate::ftp::command::{Command, CommandError, Verb, parse_command};
use ftpgate::ftp::line::{Framed, LineFramer, TelnetFilter};
use ftpgate::ftp::reply::{Reply, ReplyError, ReplyParser};
use ftpgate::limits::{
    MAX_COMMAND_LINE, MAX_REPLY_BYTES, MAX_REPLY_LINE, MAX_REPLY_LINES, MAX_VERB_LEN,
};
use ftpgate::policy::parse_policy;

const IAC: u8 = 0xff;

/// The smallest policy the loader accepts (one listener, one backend, one role, one user).
const MINIMAL_POLICY: &str = r#"{"listeners":[{"address":"0.0.0.0:2121"}],"backends":{"files":{"servers":["10.0.0.11:21"]}},"roles":{"download":{"allow":["RETR","LIST","CWD","PWD"]}},"users":{"alice":{"role":"download","backend":"files"}}}"#;

/// `default` cases, or `PROPTEST_CASES` times `default / 256` when that variable is set (so
/// `PROPTEST_CASES=25600` runs every property a hundred times longer).
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(default, |n| (n / 256).max(1).saturating_mul(default));
    ProptestConfig::with_cases(cases)
}

/// Config for the cheap properties.
fn cheap() -> ProptestConfig {
    config(256)
}

/// Config for the properties that build large inputs (multi-kilobyte lines, many lines).
fn heavy() -> ProptestConfig {
    config(48)
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Splits `bytes` at the given cut points (taken modulo its length, sorted, duplicates kept so
/// empty reads happen too).
fn split_at_cuts<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
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
enum Event {
    Line(Vec<u8>),
    TooLong,
}

/// Drives a [`LineFramer`] the way the session does: each read is appended to a buffer, then
/// the framer is called until it answers `Incomplete { consumed: 0 }`, dropping `consumed`
/// bytes after each answer. Checks the per-call contract on the way and returns the events.
fn frame(max_line: usize, reads: &[&[u8]]) -> Result<Vec<Event>, TestCaseError> {
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
fn model_frame(max_line: usize, stream: &[u8]) -> Vec<Event> {
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
fn telnet(reads: &[&[u8]]) -> Result<Vec<u8>, TestCaseError> {
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
fn model_telnet(input: &[u8]) -> (Vec<u8>, usize) {
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

fn encoded_reply(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    reply.encode(&mut out);
    out
}

/// The reply path toward a client, replayed on the receiving side: Telnet filter, framer with
/// the reply line cap, reply parser. Returns every parser result.
fn reparse_wire(wire: &[u8]) -> Result<Vec<Result<Option<Reply>, ReplyError>>, TestCaseError> {
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
fn check_reply_wire(wire: &[u8], lines: usize) -> Result<(), TestCaseError> {
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
fn model_port_arg(arg: &[u8]) -> Option<SocketAddrV4> {
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
fn model_pasv_reply(text: &[u8]) -> Result<SocketAddrV4, AddressError> {
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

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Verb spellings: every known name and alias, random letter runs (unknown verbs, too long
/// verbs), and odd shapes (digits, punctuation, empty).
fn verb_spelling() -> impl Strategy<Value = Vec<u8>> {
    let known: Vec<&'static str> = Verb::ALL
        .iter()
        .map(|v| v.name())
        .chain(["XCWD", "XCUP", "XPWD", "XMKD", "XRMD"])
        .collect();
    let shaped = prop_oneof![
        6 => select(known).prop_map(|s| s.as_bytes().to_vec()),
        2 => "[a-zA-Z]{1,12}".prop_map(String::into_bytes),
        1 => "[a-zA-Z0-9_\\-\\.\u{e9}]{0,10}".prop_map(String::into_bytes),
    ];
    // Random case, bit by bit.
    (shaped, any::<u64>()).prop_map(|(mut name, mask)| {
        for (i, b) in name.iter_mut().enumerate() {
            if mask >> (i % 64) & 1 == 1 {
                *b = b.to_ascii_lowercase();
            }
        }
        name
    })
}

/// Argument bytes: mostly printable and high bytes, now and then anything.
fn arg_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        12 => 0x20u8..0x7f,
        3 => 0x80u8..=0xff,
        1 => any::<u8>(),
    ]
}

/// Whole command lines, from raw noise to well-formed, lengths up to twice the cap.
fn command_line() -> impl Strategy<Value = Vec<u8>> {
    let structured = (
        verb_spelling(),
        prop_oneof![Just(&b""[..]), Just(&b" "[..]), Just(&b"  "[..])],
        prop_oneof![
            8 => vec(arg_byte(), 0..48),
            1 => vec(arg_byte(), MAX_COMMAND_LINE - 16..MAX_COMMAND_LINE + 16),
        ],
    )
        .prop_map(|(verb, sep, arg)| {
            let mut line = verb;
            if !arg.is_empty() || !sep.is_empty() {
                line.extend_from_slice(if sep.is_empty() { b" " } else { sep });
            }
            line.extend_from_slice(&arg);
            line
        });
    prop_oneof![
        6 => structured,
        1 => vec(any::<u8>(), 0..64),
        1 => vec(any::<u8>(), 0..=2 * MAX_COMMAND_LINE),
        1 => vec(select(&b" \t\r\nAaZz\x00\x7f\xff"[..]), 0..32),
    ]
}

fn any_verb() -> impl Strategy<Value = Verb> {
    select(Verb::ALL)
}

/// Control streams for the framer and the Telnet filter: mostly line-ish bytes with the
/// interesting ones (CR, LF, IAC and the Telnet commands) over-represented.
fn stream_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => select(&b"ab "[..]),
        3 => Just(b'\r'),
        3 => Just(b'\n'),
        3 => Just(IAC),
        2 => 0xf0u8..=0xfe,
        1 => any::<u8>(),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => vec(stream_byte(), 0..200),
        1 => vec(any::<u8>(), 0..200),
    ]
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 0..10)
}

/// One line from a backend: reply-shaped (a code, a separator, text) or noise, of any length
/// up to past the line cap.
fn backend_line() -> impl Strategy<Value = Vec<u8>> {
    let code = prop_oneof![
        8 => select(&["211", "220", "226", "150", "550", "421"][..]).prop_map(str::to_owned),
        2 => "[0-9]{3}",
        1 => "[0-9a-z ]{0,4}",
    ];
    let sep = select(vec![
        b" ".as_slice(),
        b"-".as_slice(),
        b"".as_slice(),
        b"x".as_slice(),
        b"\r".as_slice(),
    ]);
    let text = prop_oneof![
        10 => vec(any::<u8>(), 0..40),
        1 => vec(any::<u8>(), MAX_REPLY_LINE - 8..MAX_REPLY_LINE + 8),
    ];
    let shaped = (code, sep, text).prop_map(|(code, sep, text)| {
        let mut line = code.into_bytes();
        line.extend_from_slice(sep);
        line.extend_from_slice(&text);
        line
    });
    prop_oneof![
        5 => shaped,
        1 => vec(any::<u8>(), 0..16),
    ]
}

fn reply_code() -> impl Strategy<Value = u16> {
    100u16..=599
}

fn v4_addr() -> impl Strategy<Value = SocketAddrV4> {
    (any::<[u8; 4]>(), 1u16..=u16::MAX).prop_map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
}

fn v6_ip() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        4 => any::<[u16; 8]>().prop_map(Ipv6Addr::from),
        // Mostly zeros, so that `::` compression in every position is exercised.
        2 => vec(prop_oneof![3 => Just(0u16), 1 => any::<u16>()], 8).prop_map(|s| {
            let mut segments = [0u16; 8];
            segments.copy_from_slice(&s);
            Ipv6Addr::from(segments)
        }),
        1 => select(&[Ipv6Addr::UNSPECIFIED, Ipv6Addr::LOCALHOST][..]),
    ]
    .prop_filter("IPv4-mapped addresses are refused by design", |ip| {
        ip.to_ipv4_mapped().is_none()
    })
}

/// Text for the address parsers: their alphabet (digits, commas, delimiters, dots, colons,
/// parentheses, letters, spaces) with now and then any byte.
fn address_text() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => select(&b"0123456789"[..]),
        2 => select(&b",|!.:()% "[..]),
        1 => select(&b"abcfALL"[..]),
        1 => any::<u8>(),
    ];
    prop_oneof![
        4 => vec(byte, 0..48),
        1 => vec(any::<u8>(), 0..64),
    ]
}

/// Comma-separated number lists around the edges of the octet and port rules (leading zeros,
/// 255/256, four digits, empty fields), with a little noise around them.
fn number_list() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        4 => "[0-9]{1,2}",
        2 => "0{1,3}[0-9]{0,2}",
        2 => "2[45][0-9]",
        1 => "[0-9]{4,6}",
        1 => "",
    ];
    (
        " {0,2}|\\(|=|[a-z ]{0,3}",
        vec(field, 1..9),
        " {0,2}|\\)\\.?|,|[a-z]",
    )
        .prop_map(|(prefix, fields, suffix)| {
            format!("{prefix}{}{suffix}", fields.join(",")).into_bytes()
        })
}

/// Characters for policy mutations: JSON punctuation and the odd ones a loader must survive.
fn policy_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => select(&[
            '{', '}', '[', ']', '"', ':', ',', ' ', '\n', '\\', '0', '1', '9', '-', '.', 'e', 't',
            'n', 'a', 'u', '/', '*',
        ][..]),
        1 => select(&['\r', '\t', '\0', '\u{feff}', '\u{e9}', '\u{1f600}', '\u{7f}', '\u{2028}'][..]),
        1 => any::<char>(),
    ]
}

#[derive(Clone, Debug)]
enum Edit {
    Delete(Index),
    Insert(Index, char),
    Replace(Index, char),
    /// Duplicates a slice of the text at another place (repeats keys, sections).
    Copy(Index, Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => any::<Index>().prop_map(Edit::Delete),
        3 => (any::<Index>(), policy_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        3 => (any::<Index>(), policy_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(a, b, c)| Edit::Copy(a, b, c)),
    ]
}

fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        match edit {
            Edit::Delete(at) if !chars.is_empty() => {
                chars.remove(at.index(chars.len()));
            }
            Edit::Insert(at, c) => chars.insert(at.index(chars.len() + 1), *c),
            Edit::Replace(at, c) if !chars.is_empty() => {
                let at = at.index(chars.len());
                chars[at] = *c;
            }
            Edit::Copy(from, len, to) if !chars.is_empty() => {
                let from = from.index(chars.len());
                let len = len.index(chars.len() - from + 1).min(64);
                let piece: Vec<char> = chars[from..from + len].to_vec();
                let to = to.index(chars.len() + 1);
                chars.splice(to..to, piece);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Keys of the policy file (every level), plus near misses.
const POLICY_KEYS: &[&str] = &[
    "workers",
    "listeners",
    "passive",
    "tls",
    "backends",
    "roles",
    "users",
    "routing",
    "defaults",
    "audit",
    "access",
    "address",
    "require",
    "proxy_protocol",
    "ports",
    "advertise",
    "certificate",
    "private_key",
    "servers",
    "balance",
    "source_address",
    "allow",
    "role",
    "backend",
    "allow_from",
    "deny_from",
    "allow_countries",
    "deny_countries",
    "allow_asns",
    "deny_asns",
    "prefix_table",
    "time_windows",
    "days",
    "hours",
    "utc_offset",
    "allow_fxp_to",
    "limits",
    "timeouts",
    "max_file_size",
    "rate",
    "user_rate",
    "sessions",
    "login",
    "idle",
    "session",
    "data_connect",
    "user_at_host",
    "targets",
    "sessions_total",
    "sessions_per_ip",
    "failed_logins_per_ip",
    "failed_login_window",
    "ban",
    "syslog",
    "file",
    "mode",
    "filecopy",
    "facility",
    "app_name",
    "directory",
    "retention_days",
    "alice",
    "files",
    "download",
    "bob",
    "",
    " alice",
    "Users",
    "user",
    "a\"b",
    "\u{e9}",
    "\n",
];

/// Scalar values a policy might hold, right or wrong for the place they land in.
fn policy_scalar() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let strings = select(
        &[
            "0.0.0.0:2121",
            "[::1]:21",
            "10.0.0.11:21",
            "10.0.0.0/8",
            "::/0",
            "1.2.3.4/33",
            "RETR",
            "retr",
            "XCWD",
            "USER",
            "ALL",
            "files",
            "download",
            "alice",
            "nobody",
            "50000-50999",
            "2-1",
            "1MB",
            "10kB/s",
            "5 GiB",
            "-1",
            "mon",
            "mon-fri",
            "09:00-17:00",
            "+01:00",
            "round-robin",
            "first-available",
            "explicit",
            "implicit",
            "none",
            "login",
            "monitor",
            "filecopy",
            "authpriv",
            "local7",
            "auto",
            "",
            " ",
            "\u{0}",
            "\u{1b}[2J",
            "\u{feff}",
            "\u{e9}t\u{e9}",
            "\n",
            "/var/log/x",
        ][..],
    )
    .prop_map(|s| Value::String(s.to_owned()));
    let numbers = select(
        &[
            "0",
            "1",
            "-1",
            "8",
            "256",
            "257",
            "65535",
            "65536",
            "1.5",
            "1e300",
            "-0",
            "18446744073709551615",
            "18446744073709551616",
            "2592001",
        ][..],
    )
    .prop_map(|n| serde_json::from_str::<Value>(n).unwrap_or(Value::Null));
    prop_oneof![
        6 => strings,
        2 => "[ -~]{0,12}".prop_map(Value::String),
        3 => numbers,
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

/// Any JSON value a policy might hold: scalars, and lists and objects of them.
fn policy_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    policy_scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((select(POLICY_KEYS), inner), 0..4).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// A structural edit of a JSON document, at the node with a given preorder number.
#[derive(Clone, Debug)]
enum JsonEdit {
    Replace(Index, serde_json::Value),
    Insert(Index, &'static str, serde_json::Value),
    Remove(Index, Index),
}

fn json_edit() -> impl Strategy<Value = JsonEdit> {
    prop_oneof![
        3 => (any::<Index>(), policy_value()).prop_map(|(at, v)| JsonEdit::Replace(at, v)),
        3 => (any::<Index>(), select(POLICY_KEYS), policy_value())
            .prop_map(|(at, k, v)| JsonEdit::Insert(at, k, v)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(at, which)| JsonEdit::Remove(at, which)),
    ]
}

fn count_nodes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The node with preorder number `n` (0 is `value` itself).
fn nth_node(value: &mut serde_json::Value, n: usize) -> Option<&mut serde_json::Value> {
    use serde_json::Value;
    if n == 0 {
        return Some(value);
    }
    let mut n = n - 1;
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(map) => map.values_mut().collect(),
        _ => return None,
    };
    for child in children {
        let size = count_nodes(child);
        if n < size {
            return nth_node(child, n);
        }
        n -= size;
    }
    None
}

fn apply_json_edit(document: &mut serde_json::Value, edit: &JsonEdit) {
    use serde_json::Value;
    let (JsonEdit::Replace(at, _) | JsonEdit::Insert(at, ..) | JsonEdit::Remove(at, _)) = edit;
    let n = at.index(count_nodes(document));
    let Some(node) = nth_node(document, n) else {
        return;
    };
    match (edit, node) {
        (JsonEdit::Replace(_, v), node) => *node = v.clone(),
        (JsonEdit::Insert(_, k, v), Value::Object(map)) => {
            map.insert((*k).to_owned(), v.clone());
        }
        (JsonEdit::Insert(_, _, v), Value::Array(items)) => items.push(v.clone()),
        (JsonEdit::Remove(_, which), Value::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(which.index(map.len())).cloned();
            if let Some(key) = key {
                map.remove(&key);
            }
        }
        (JsonEdit::Remove(_, which), Value::Array(items)) if !items.is_empty() => {
            items.remove(which.index(items.len()));
        }
        _ => {}
    }
}

/// Checks the error contract of `parse_policy` on `text`: an error list is never empty, it is
/// in file order, and every error sits on a real position of the text (1-based, no further
/// than one line past its last line nor one column past the end of its line; there is no
/// I/O here, so never 0:0).
fn check_policy_errors(text: &str) -> Result<(), TestCaseError> {
    if let Err(errors) = parse_policy(text) {
        prop_assert!(!errors.is_empty(), "Err with no error for {:?}", text);
        let lines = text.matches('\n').count() + 1;
        // Positions are counted after a byte-order mark.
        let stripped = text.strip_prefix('\u{feff}').unwrap_or(text);
        let positions: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        prop_assert_eq!(positions, sorted, "errors not in file order for {:?}", text);
        for error in &errors {
            prop_assert!(
                error.line >= 1 && error.column >= 1,
                "error at {}:{} ({}) for {:?}",
                error.line,
                error.column,
                error.message,
                text
            );
            prop_assert!(
                error.line <= lines + 1,
                "error at line {} of a {}-line text ({}) for {:?}",
                error.line,
                lines,
                error.message,
                text
            );
            // Columns count characters, and the one past the end of a line is the furthest an
            // error can point (at an unexpected end of the text, say).
            if let Some(line_text) = stripped.split('\n').nth(error.line - 1) {
                let width = line_text.chars().count();
                prop_assert!(
                    error.column <= width + 1,
                    "error at {}:{} on a line of {} characters ({}) for {:?}",
                    error.line,
                    error.column,
                    width,
                    error.message,
                    text
                );
            }
            prop_assert!(!error.message.is_empty(), "empty message for {:?}", text);
            prop_assert!(
                !error.message.chars().any(|c| c.is_control()),
                "control character in message {:?}",
                error.message
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cheap())]

    /// parse_command never panics, honours its length cap, and what it accepts is clean and
    /// re-encodes to the same command.
    #[test]
    fn parse_command_contract(line in command_line()) {
        let result = parse_command(&line);
        if line.len() > MAX_COMMAND_LINE {
            prop_assert_eq!(result, Err(CommandError::TooLong));
            return Ok(());
        }
        match result {
            Ok(command) => {
                prop_assert!(!command.arg.iter().any(|&b| is_control(b)), "{:?}", command);
                prop_assert_eq!(Verb::from_name(command.verb.name().as_bytes()), Some(command.verb));
                // The argument is everything after the first space, byte for byte.
                let space = line.iter().position(|&b| b == b' ');
                let expected_arg = space.map_or(&[][..], |s| &line[s + 1..]);
                prop_assert_eq!(&command.arg[..], expected_arg);
                // The verb is matched case-insensitively.
                let name = &line[..space.unwrap_or(line.len())];
                prop_assert_eq!(Verb::from_name(&name.to_ascii_uppercase()), Some(command.verb));
                prop_assert_eq!(Verb::from_name(&name.to_ascii_lowercase()), Some(command.verb));
                // encode() gives one CRLF-terminated line that parses back to the command.
                let mut wire = Vec::new();
                command.encode(&mut wire);
                prop_assert!(wire.ends_with(b"\r\n"));
                let body = &wire[..wire.len() - 2];
                prop_assert!(!body.iter().any(|&b| is_control(b)), "{:?}", wire);
                prop_assert!(body.len() <= line.len(), "encoding grew {:?}", line);
                prop_assert_eq!(parse_command(body), Ok(command));
            }
            Err(CommandError::TooLong) => prop_assert!(false, "TooLong for {} bytes", line.len()),
            Err(CommandError::Empty) => {
                prop_assert!(line.iter().all(|&b| b == b' '), "Empty for {:?}", line);
            }
            Err(CommandError::ControlByte) => {
                prop_assert!(line.iter().any(|&b| is_control(b)), "ControlByte for {:?}", line);
            }
            Err(CommandError::BadVerb) => {
                prop_assert!(!line.iter().any(|&b| is_control(b)));
            }
            Err(CommandError::Unknown(name)) => {
                prop_assert!(!line.iter().any(|&b| is_control(b)));
                prop_assert!(!name.is_empty() && name.len() <= MAX_VERB_LEN, "{:?}", name);
                prop_assert!(
                    name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                    "unsafe echo {:?}",
                    name
                );
            }
        }
    }

    /// Near the cap: a well-formed line is accepted up to exactly MAX_COMMAND_LINE bytes and
    /// refused as TooLong one byte later, whatever the verb.
    #[test]
    fn command_length_boundary(verb in any_verb(), len in MAX_COMMAND_LINE - 4..=MAX_COMMAND_LINE + 4, fill in 0x21u8..0x7f) {
        let mut line = verb.name().as_bytes().to_vec();
        line.push(b' ');
        line.resize(len, fill);
        let result = parse_command(&line);
        if len <= MAX_COMMAND_LINE {
            let expected = Command::new(verb, &line[verb.name().len() + 1..]);
            prop_assert_eq!(result, Ok(expected));
        } else {
            prop_assert_eq!(result, Err(CommandError::TooLong));
        }
    }

    /// encode() of any command, even one built with control bytes in its argument, is a
    /// single line that parses back to the command with those bytes made spaces.
    #[test]
    fn command_encode_is_one_safe_line(verb in any_verb(), arg in vec(any::<u8>(), 0..64)) {
        let command = Command::new(verb, &arg);
        let mut wire = b"junk".to_vec();
        command.encode(&mut wire);
        prop_assert!(wire.starts_with(b"junk"), "encode must append");
        let wire = &wire[4..];
        prop_assert!(wire.ends_with(b"\r\n"));
        let body = &wire[..wire.len() - 2];
        prop_assert!(!body.iter().any(|&b| is_control(b)), "{:?}", wire);
        let cleaned: Vec<u8> = arg.iter().map(|&b| if is_control(b) { b' ' } else { b }).collect();
        prop_assert_eq!(parse_command(body), Ok(Command::new(verb, &cleaned)));
        // Debug never shows a password.
        if verb == Verb::Pass && arg.len() >= 4 && arg.iter().all(u8::is_ascii_alphanumeric) {
            let debug = format!("{command:?}");
            let secret = String::from_utf8_lossy(&arg).into_owned();
            prop_assert!(!debug.contains(&secret), "{}", debug);
        }
    }

    /// Verb::from_name on arbitrary bytes: no panic, and a hit is a name or alias of that verb
    /// (case aside), so it is at most MAX_VERB_LEN ASCII letters.
    #[test]
    fn verb_from_name_total(name in prop_oneof![verb_spelling(), vec(any::<u8>(), 0..12)]) {
        if let Some(verb) = Verb::from_name(&name) {
            prop_assert!(!name.is_empty() && name.len() <= MAX_VERB_LEN);
            prop_assert!(name.iter().all(u8::is_ascii_alphabetic), "{:?}", name);
            let upper = name.to_ascii_uppercase();
            let is_alias = upper.starts_with(b"X") && upper.len() == 4;
            prop_assert!(upper == verb.name().as_bytes() || is_alias, "{:?} -> {:?}", name, verb);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Line framing and Telnet filtering
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cheap())]

    /// The framer's events do not depend on read boundaries, match the reference model of the
    /// line discipline, never carry a line over the cap, and never make the caller hold more
    /// than one line and its CR.
    #[test]
    fn framer_split_invariance(
        max_line in prop_oneof![3 => 0usize..12, 1 => 12usize..64],
        stream in stream(),
        cuts in cuts(),
    ) {
        let expected = model_frame(max_line, &stream);
        let whole = frame(max_line, &[&stream])?;
        prop_assert_eq!(&whole, &expected, "whole stream {:?}", stream);
        let reads = split_at_cuts(&stream, &cuts);
        prop_assert_eq!(frame(max_line, &reads)?, expected, "reads {:?}", reads);
    }

    /// One byte per read is the hardest split.
    #[test]
    fn framer_byte_by_byte(max_line in 0usize..8, stream in stream()) {
        let reads: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(frame(max_line, &reads)?, model_frame(max_line, &stream));
    }

    /// A single call on an arbitrary buffer, in either state: results stay inside the buffer.
    #[test]
    fn framer_single_call_in_bounds(max_line in 0usize..16, prefix in stream(), buf in stream()) {
        let mut framer = LineFramer::new(max_line);
        // Put the framer in whatever state `prefix` leaves it in.
        let _ = framer.next_line(&prefix);
        match framer.next_line(&buf) {
            Framed::Line { line_end, consumed } => {
                prop_assert!(line_end < consumed && consumed <= buf.len());
                prop_assert!(line_end <= max_line);
                prop_assert_eq!(buf[consumed - 1], b'\n');
            }
            Framed::TooLong { consumed } | Framed::Incomplete { consumed } => {
                prop_assert!(consumed <= buf.len());
            }
        }
    }

    /// The Telnet filter's output does not depend on read boundaries and matches the RFC 854
    /// model; it never grows, and every 0xFF it lets through came from an IAC IAC pair.
    #[test]
    fn telnet_split_invariance(input in stream(), cuts in cuts()) {
        let (expected, pairs) = model_telnet(&input);
        let whole = telnet(&[&input])?;
        prop_assert_eq!(&whole, &expected, "input {:?}", input);
        prop_assert!(whole.len() <= input.len());
        let iacs_out = whole.iter().filter(|&&b| b == IAC).count();
        prop_assert_eq!(iacs_out, pairs, "lone IAC let through from {:?}", input);
        let reads = split_at_cuts(&input, &cuts);
        prop_assert_eq!(telnet(&reads)?, whole.clone(), "reads {:?}", reads);
        let singles: Vec<&[u8]> = input.chunks(1).collect();
        prop_assert_eq!(telnet(&singles)?, whole);
    }

    /// Data without IAC passes unchanged; data escaped the way Reply::encode escapes it comes
    /// back exactly.
    #[test]
    fn telnet_escape_round_trip(data in vec(any::<u8>(), 0..200), cuts in cuts()) {
        if !data.contains(&IAC) {
            prop_assert_eq!(telnet(&[&data])?, data.clone());
        }
        let escaped: Vec<u8> = data
            .iter()
            .flat_map(|&b| if b == IAC { vec![IAC, IAC] } else { vec![b] })
            .collect();
        let reads = split_at_cuts(&escaped, &cuts);
        prop_assert_eq!(telnet(&reads)?, data);
    }
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cheap())]

    /// Arbitrary backend lines: no panic; a reply returned is well-formed (valid code, its
    /// lines within every limit, the first and last lines shaped as RFC 959 says); the bytes
    /// held between replies never exceed the limits; after an error the parser is idle.
    #[test]
    fn reply_parser_contract(lines in vec(backend_line(), 0..40)) {
        let mut parser = ReplyParser::new();
        prop_assert!(parser.is_idle());
        // What the parser must be holding, counted on this side.
        let mut held_bytes = 0usize;
        let mut held_lines = 0usize;
        for line in &lines {
            let result = parser.push_line(line);
            match &result {
                Ok(None) => {
                    held_bytes += line.len() + 2;
                    held_lines += 1;
                }
                Ok(Some(reply)) => {
                    let total: usize = reply.lines.iter().map(|l| l.len() + 2).sum();
                    prop_assert_eq!(reply.lines.len(), held_lines + 1);
                    prop_assert!(total <= MAX_REPLY_BYTES, "{} bytes", total);
                    prop_assert!(reply.lines.len() <= MAX_REPLY_LINES);
                    prop_assert!(reply.lines.iter().all(|l| l.len() <= MAX_REPLY_LINE));
                    prop_assert!((100..600).contains(&reply.code), "code {}", reply.code);
                    let code = reply.code.to_string().into_bytes();
                    let first = &reply.lines[0];
                    let last = &reply.lines[reply.lines.len() - 1];
                    prop_assert!(first.starts_with(&code));
                    prop_assert!(last.starts_with(&code));
                    prop_assert!(matches!(last.get(3), None | Some(b' ')), "{:?}", last);
                    if reply.is_multiline() {
                        prop_assert_eq!(first.get(3), Some(&b'-'));
                    }
                    prop_assert_eq!(last, line);
                    held_bytes = 0;
                    held_lines = 0;
                }
                Err(_) => {
                    held_bytes = 0;
                    held_lines = 0;
                }
            }
            prop_assert_eq!(parser.is_idle(), held_lines == 0, "{:?}", result);
            prop_assert!(held_bytes <= MAX_REPLY_BYTES, "holding {} bytes", held_bytes);
            prop_assert!(held_lines <= MAX_REPLY_LINES, "holding {} lines", held_lines);
            if line.len() > MAX_REPLY_LINE {
                prop_assert_eq!(result, Err(ReplyError::LineTooLong));
            }
        }
    }

    /// Reply::new and Reply::multi, encoded and sent through the receiving path (Telnet filter,
    /// framer, parser), come back as the same reply: same code, same lines.
    #[test]
    fn reply_build_encode_parse_round_trip(
        code in reply_code(),
        texts in vec(prop_oneof![
            4 => "[ -~]{0,30}",
            1 => "[0-9]{3}[ -]?.{0,10}",
            1 => ".{0,30}",
        ], 0..12),
        single in any::<bool>(),
    ) {
        let reply = if single {
            Reply::new(code, texts.first().map_or("", String::as_str))
        } else {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Reply::multi(code, &refs)
        };
        prop_assert_eq!(reply.code, code);
        let expected_lines = if single { 1 } else { texts.len().max(1) };
        prop_assert_eq!(reply.lines.len(), expected_lines);
        let wire = encoded_reply(&reply);
        check_reply_wire(&wire, reply.lines.len())?;
        let results = reparse_wire(&wire)?;
        let (last, rest) = results.split_last().expect("at least one line");
        prop_assert!(rest.iter().all(|r| r == &Ok(None)), "{:?}", results);
        prop_assert_eq!(last, &Ok(Some(reply)));
    }

    /// encode() of any reply, however its lines were built: every line ends with CRLF, there
    /// is no bare CR or LF or other control byte inside a line, 0xFF is always doubled, and
    /// there are as many wire lines as reply lines (one for none).
    #[test]
    fn reply_encode_never_breaks_lines(
        code in any::<u16>(),
        lines in vec(vec(any::<u8>(), 0..40), 0..8),
    ) {
        let reply = Reply { code, lines };
        let wire = encoded_reply(&reply);
        check_reply_wire(&wire, reply.lines.len())?;
    }

    /// A reply the parser accepted from a backend, encoded toward the client, is one reply to
    /// a client that parses it the same way: same code, same number of lines.
    #[test]
    fn relayed_reply_stays_one_reply(
        code in reply_code(),
        first_sep in select(vec![b" ".as_slice(), b"".as_slice(), b"-".as_slice()]),
        first in vec(any::<u8>(), 0..30),
        middle in vec(prop_oneof![
            2 => vec(any::<u8>(), 0..30),
            // Lines that look like a reply end: an end line with any code, or our own code.
            1 => (reply_code(), vec(any::<u8>(), 0..10)).prop_map(|(c, t)| {
                let mut l = format!("{c} ").into_bytes();
                l.extend_from_slice(&t);
                l
            }),
        ], 0..8),
        last in vec(any::<u8>(), 0..30),
    ) {
        let code_text = code.to_string().into_bytes();
        let mut backend_lines = Vec::new();
        let mut line = code_text.clone();
        line.extend_from_slice(first_sep);
        // Right after the code only ' ', '-' or the end of the line is well-formed.
        if !first_sep.is_empty() {
            line.extend_from_slice(&first);
        }
        backend_lines.push(line);
        if first_sep == b"-" {
            backend_lines.extend(middle.iter().cloned());
            let mut line = code_text.clone();
            line.push(b' ');
            line.extend_from_slice(&last);
            backend_lines.push(line);
        }
        let mut parser = ReplyParser::new();
        let mut received = None;
        for line in &backend_lines {
            if let Some(reply) = parser.push_line(line).expect("well-formed reply") {
                received = Some(reply);
                break;
            }
        }
        let received = received.expect("the last line ends the reply");
        prop_assert_eq!(received.code, code);
        let wire = encoded_reply(&received);
        check_reply_wire(&wire, received.lines.len())?;
        let results = reparse_wire(&wire)?;
        let (last, rest) = results.split_last().expect("at least one line");
        prop_assert!(rest.iter().all(|r| r == &Ok(None)), "{:?}", results);
        match last {
            Ok(Some(again)) => {
                prop_assert_eq!(again.code, received.code);
                prop_assert_eq!(again.lines.len(), received.lines.len());
            }
            other => prop_assert!(false, "client side got {:?} for {:?}", other, wire),
        }
    }
}

proptest! {
    #![proptest_config(heavy())]

    /// A multi-line reply of `count` lines of `len` bytes each is accepted exactly when it fits
    /// every limit, and refused with TooLong (never held past the limit) otherwise.
    #[test]
    fn reply_size_limits(
        count in prop_oneof![0usize..40, MAX_REPLY_LINES - 4..MAX_REPLY_LINES + 4],
        len in prop_oneof![0usize..8, 1000usize..=MAX_REPLY_LINE],
    ) {
        // Bound the work of one case: the many-lines cases use short lines.
        let len = if count > 100 { len.min(20) } else { len };
        let mut lines: Vec<Vec<u8>> = Vec::with_capacity(count + 2);
        let mut first = b"211-".to_vec();
        first.resize(len.max(4), b'a');
        lines.push(first);
        lines.extend(std::iter::repeat_n(vec![b'x'; len], count));
        let mut last = b"211 ".to_vec();
        last.resize(len.max(4), b'z');
        lines.push(last);
        let total: usize = lines.iter().map(|l| l.len() + 2).sum();
        let fits = lines.len() <= MAX_REPLY_LINES && total <= MAX_REPLY_BYTES;

        let mut parser = ReplyParser::new();
        let mut outcome = None;
        for (i, line) in lines.iter().enumerate() {
            match parser.push_line(line) {
                Ok(None) => prop_assert!(i + 1 < lines.len(), "last line did not end the reply"),
                Ok(Some(reply)) => {
                    prop_assert_eq!(i + 1, lines.len(), "reply ended early");
                    outcome = Some(Ok(reply));
                    break;
                }
                Err(err) => {
                    outcome = Some(Err(err));
                    break;
                }
            }
        }
        prop_assert!(parser.is_idle());
        match outcome {
            Some(Ok(reply)) => {
                prop_assert!(fits, "accepted {} lines, {} bytes", lines.len(), total);
                prop_assert_eq!(reply.lines, lines);
            }
            Some(Err(err)) => {
                prop_assert!(!fits, "refused {} lines, {} bytes: {:?}", lines.len(), total, err);
                prop_assert_eq!(err, ReplyError::TooLong);
            }
            None => prop_assert!(false, "no outcome"),
        }
    }

    /// A hostile backend that never ends its multi-line reply: long lines or many short ones.
    /// The parser gives up with TooLong before holding more than the limits, then is idle.
    #[test]
    fn endless_reply_is_cut(len in prop_oneof![0usize..4, MAX_REPLY_LINE - 8..=MAX_REPLY_LINE]) {
        let mut parser = ReplyParser::new();
        prop_assert_eq!(parser.push_line(b"150-start"), Ok(None));
        let mut held_bytes = b"150-start".len() + 2;
        let mut held_lines = 1;
        let line = vec![b'.'; len];
        loop {
            match parser.push_line(&line) {
                Ok(None) => {
                    held_bytes += len + 2;
                    held_lines += 1;
                    prop_assert!(held_bytes <= MAX_REPLY_BYTES);
                    prop_assert!(held_lines <= MAX_REPLY_LINES);
                }
                Ok(Some(reply)) => prop_assert!(false, "reply ended by {:?}", reply.lines.last()),
                Err(err) => {
                    prop_assert_eq!(err, ReplyError::TooLong);
                    break;
                }
            }
        }
        prop_assert!(parser.is_idle());
        // The next reply is parsed normally.
        prop_assert_eq!(parser.push_line(b"226 ok"), Ok(Some(Reply::new(226, "ok"))));
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cheap())]

    #[test]
    fn port_arg_round_trip(addr in v4_addr(), lead in 0usize..3, trail in 0usize..3) {
        let text = format_port_arg(addr);
        prop_assert_eq!(parse_port_arg(text.as_bytes()), Ok(addr));
        let padded = format!("{}{}{}", " ".repeat(lead), text, " ".repeat(trail));
        prop_assert_eq!(parse_port_arg(padded.as_bytes()), Ok(addr));
    }

    #[test]
    fn port_zero_is_refused(ip in any::<[u8; 4]>()) {
        let text = format_port_arg(SocketAddrV4::new(ip.into(), 0));
        prop_assert!(parse_port_arg(text.as_bytes()).is_err());
        let eprt = format_eprt_arg(SocketAddr::V4(SocketAddrV4::new(ip.into(), 0)));
        prop_assert!(parse_eprt_arg(eprt.as_bytes()).is_err());
        prop_assert!(parse_pasv_reply(format_pasv_reply(SocketAddrV4::new(ip.into(), 0)).text()).is_err());
        prop_assert!(parse_epsv_reply(format_epsv_reply(0).text()).is_err());
    }

    #[test]
    fn eprt_v4_round_trip(addr in v4_addr()) {
        let addr = SocketAddr::V4(addr);
        prop_assert_eq!(parse_eprt_arg(format_eprt_arg(addr).as_bytes()), Ok(addr));
    }

    #[test]
    fn eprt_v6_round_trip(ip in v6_ip(), port in 1u16..=u16::MAX) {
        let addr = SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0));
        let text = format_eprt_arg(addr);
        prop_assert_eq!(parse_eprt_arg(text.as_bytes()), Ok(addr), "{}", text);
    }

    /// An IPv4 address never gets through EPRT family 2, whichever way it is written: mapped
    /// (dotted or hex, compressed or not) or IPv4-compatible.
    #[test]
    fn eprt_v6_hiding_v4_is_refused(ip in any::<[u8; 4]>(), port in 1u16..=u16::MAX, form in 0usize..5) {
        let v4 = std::net::Ipv4Addr::from(ip);
        let [a, b, c, d] = ip;
        let hex = format!("{:x}:{:x}", u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        let text = match form {
            0 => format!("::ffff:{v4}"),
            1 => format!("::ffff:{hex}"),
            2 => format!("0:0:0:0:0:FFFF:{hex}"),
            3 => format!("::{v4}"),
            _ => v4.to_ipv6_mapped().to_string(),
        };
        let arg = format!("|2|{text}|{port}|");
        prop_assert_eq!(parse_eprt_arg(arg.as_bytes()), Err(AddressError::Unsupported), "{}", arg);
        // The plain dotted quad in family 2 is the wrong family.
        let arg = format!("|2|{v4}|{port}|");
        prop_assert_eq!(parse_eprt_arg(arg.as_bytes()), Err(AddressError::BadFamily), "{}", arg);
    }

    /// The EPRT and 229 port fields: 1 to 5 digits (leading zeros allowed), 1 to 65535.
    #[test]
    fn eprt_and_epsv_port_fields(
        addr in prop_oneof![
            v4_addr().prop_map(SocketAddr::V4),
            (v6_ip(), 1u16..).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))),
        ],
        port in prop_oneof!["[0-9]{1,6}", "0{1,3}[0-9]{1,5}", "6553[0-9]", "[0-9]{0,3}[^0-9|]{1,2}"],
    ) {
        let expected = (port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()))
            .then(|| port.parse::<u16>().ok())
            .flatten()
            .filter(|&p| p != 0);
        let (family, ip) = match addr {
            SocketAddr::V4(v4) => (1, v4.ip().to_string()),
            SocketAddr::V6(v6) => (2, v6.ip().to_string()),
        };
        let arg = format!("|{family}|{ip}|{port}|");
        let parsed = parse_eprt_arg(arg.as_bytes()).ok().map(|a| a.port());
        prop_assert_eq!(parsed, expected, "{}", arg);
        if let Some(p) = parsed {
            prop_assert_eq!(parse_eprt_arg(arg.as_bytes()).map(|a| a.ip()), Ok(addr.ip()));
            prop_assert!(p != 0);
        }
        let text = format!("Entering Extended Passive Mode (|||{port}|)");
        prop_assert_eq!(parse_epsv_reply(text.as_bytes()).ok(), expected, "{}", text);
    }

    /// Any RFC 2428 delimiter may be used, not only `|`.
    #[test]
    fn eprt_other_delimiters(addr in v4_addr(), d in select(&b"!#$&'()*+,-/;<=>?@[]^_`{}|~\""[..])) {
        let d = char::from(d);
        let text = format!("{d}1{d}{}{d}{}{d}", addr.ip(), addr.port());
        prop_assert_eq!(parse_eprt_arg(text.as_bytes()), Ok(SocketAddr::V4(addr)), "{}", text);
    }

    #[test]
    fn pasv_reply_round_trip(addr in v4_addr()) {
        let reply = format_pasv_reply(addr);
        prop_assert_eq!(reply.code, 227);
        prop_assert_eq!(parse_pasv_reply(reply.text()), Ok(addr));
        // The whole line parses too: the code is not mistaken for the first number.
        prop_assert_eq!(parse_pasv_reply(&reply.lines[0]), Ok(addr));
        check_reply_wire(&encoded_reply(&reply), 1)?;
    }

    #[test]
    fn epsv_reply_round_trip(port in 1u16..=u16::MAX) {
        let reply = format_epsv_reply(port);
        prop_assert_eq!(reply.code, 229);
        prop_assert_eq!(parse_epsv_reply(reply.text()), Ok(port));
        prop_assert_eq!(parse_epsv_reply(&reply.lines[0]), Ok(port));
        check_reply_wire(&encoded_reply(&reply), 1)?;
    }

    /// Every address parser on arbitrary text: no panic; whatever is accepted never has port
    /// 0, and formats to a canonical text that parses back to the same value.
    #[test]
    fn address_parsers_total(text in address_text()) {
        if let Ok(addr) = parse_port_arg(&text) {
            prop_assert!(addr.port() != 0);
            prop_assert_eq!(parse_port_arg(format_port_arg(addr).as_bytes()), Ok(addr));
        }
        if let Ok(addr) = parse_eprt_arg(&text) {
            prop_assert!(addr.port() != 0);
            if let SocketAddr::V6(v6) = addr {
                prop_assert!(v6.ip().to_ipv4_mapped().is_none(), "mapped address accepted from {:?}", text);
            }
            prop_assert_eq!(parse_eprt_arg(format_eprt_arg(addr).as_bytes()), Ok(addr));
        }
        if let Ok(addr) = parse_pasv_reply(&text) {
            prop_assert!(addr.port() != 0);
            prop_assert_eq!(parse_pasv_reply(format_pasv_reply(addr).text()), Ok(addr));
        }
        if let Ok(port) = parse_epsv_reply(&text) {
            prop_assert!(port != 0);
        }
        match parse_epsv_arg(&text) {
            Ok(EpsvArg::Family(f)) => prop_assert!(f == 1 || f == 2),
            Ok(EpsvArg::Any) => prop_assert!(text.iter().all(|&b| b == b' ')),
            Ok(EpsvArg::All) | Err(_) => {}
        }
    }

    /// PORT arguments and 227 texts are accepted exactly as the reference models say, with
    /// the same value (and for 227, the same error).
    #[test]
    fn port_and_pasv_match_models(text in prop_oneof![
        address_text(),
        vec(prop_oneof![
            8 => select(&b"0123456789"[..]),
            4 => Just(b','),
            1 => select(&b" (x"[..]),
        ], 0..40),
        number_list(),
    ]) {
        prop_assert_eq!(parse_port_arg(&text).ok(), model_port_arg(&text), "{:?}", String::from_utf8_lossy(&text));
        prop_assert_eq!(parse_pasv_reply(&text), model_pasv_reply(&text), "{:?}", String::from_utf8_lossy(&text));
    }

    /// Arbitrary EPRT-shaped arguments: delimiter, family, address text, port.
    #[test]
    fn eprt_shaped_total(
        d in any::<u8>(),
        af in "[0-9]{0,2}",
        addr in "[0-9a-fA-F:.%]{0,24}",
        port in "[0-9]{0,6}",
    ) {
        let mut text = vec![d];
        for field in [af.as_bytes(), addr.as_bytes(), port.as_bytes()] {
            text.extend_from_slice(field);
            text.push(d);
        }
        if let Ok(parsed) = parse_eprt_arg(&text) {
            prop_assert!(parsed.port() != 0);
            prop_assert_eq!(parse_eprt_arg(format_eprt_arg(parsed).as_bytes()), Ok(parsed));
        }
    }

    #[test]
    fn epsv_arg_accepts_exactly(lead in 0usize..3, trail in 0usize..3, word in select(&["", "1", "2", "ALL", "all", "aLl"][..])) {
        let text = format!("{}{}{}", " ".repeat(lead), word, " ".repeat(trail));
        let expected = match word {
            "" => EpsvArg::Any,
            "1" => EpsvArg::Family(1),
            "2" => EpsvArg::Family(2),
            _ => EpsvArg::All,
        };
        prop_assert_eq!(parse_epsv_arg(text.as_bytes()), Ok(expected));
    }
}

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

#[test]
fn minimal_policy_parses() {
    let policy = parse_policy(MINIMAL_POLICY).expect("the minimal policy is valid");
    assert_eq!(policy.listeners.len(), 1);
    assert!(policy.users.contains_key("alice"));
    assert!(policy.backends.contains_key("files"));
    assert!(policy.roles.contains_key("download"));
}

proptest! {
    #![proptest_config(cheap())]

    /// The minimal policy reformatted (pretty-printed, indented with tabs, CRLF line ends, a
    /// byte-order mark) still parses to the same policy.
    #[test]
    fn valid_policy_reformatted_parses(pretty in any::<bool>(), crlf in any::<bool>(), bom in any::<bool>(), tabs in any::<bool>()) {
        let value: serde_json::Value = serde_json::from_str(MINIMAL_POLICY).expect("valid JSON");
        let mut text = if pretty {
            serde_json::to_string_pretty(&value).expect("serialise")
        } else {
            MINIMAL_POLICY.to_owned()
        };
        if tabs {
            text = text.replace("  ", "\t");
        }
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        if bom {
            text.insert(0, '\u{feff}');
        }
        let expected = parse_policy(MINIMAL_POLICY).expect("valid");
        prop_assert_eq!(parse_policy(&text), Ok(expected));
    }

    /// Random edits of the valid policy: no panic, and every error is placed inside the text.
    #[test]
    fn mutated_policy_errors_are_placed(edits in vec(edit(), 1..6)) {
        let text = apply_edits(MINIMAL_POLICY, &edits);
        check_policy_errors(&text)?;
    }

    /// The same on a pretty-printed policy, so that errors fall on many different lines.
    #[test]
    fn mutated_pretty_policy_errors_are_placed(edits in vec(edit(), 1..6)) {
        let value: serde_json::Value = serde_json::from_str(MINIMAL_POLICY).expect("valid JSON");
        let pretty = serde_json::to_string_pretty(&value).expect("serialise");
        let text = apply_edits(&pretty, &edits);
        check_policy_errors(&text)?;
    }

    /// Structural edits of the valid policy (values of the wrong type or out of range,
    /// unknown or misplaced keys, removed sections), written compactly or pretty-printed:
    /// the document stays JSON, so these reach validation and the locating of errors by
    /// path. No panic, every error placed.
    #[test]
    fn json_edited_policy_errors_are_placed(edits in vec(json_edit(), 1..5), pretty in any::<bool>()) {
        let mut document: serde_json::Value = serde_json::from_str(MINIMAL_POLICY).expect("valid JSON");
        for edit in &edits {
            apply_json_edit(&mut document, edit);
        }
        let text = if pretty {
            serde_json::to_string_pretty(&document)
        } else {
            serde_json::to_string(&document)
        }
        .expect("serialise");
        check_policy_errors(&text)?;
    }

    /// Arbitrary text, and text made of JSON punctuation: no panic, errors placed.
    #[test]
    fn arbitrary_policy_text(text in prop_oneof![
        any::<String>(),
        vec(policy_char(), 0..64).prop_map(|c| c.into_iter().collect::<String>()),
    ]) {
        check_policy_errors(&text)?;
    }
}

proptest! {
    #![proptest_config(config(32))]

    /// Deep nesting, where serde_json's recursion limit kicks in: no stack overflow, errors
    /// placed. The nesting is put where the model expects an object, a list or a string.
    #[test]
    fn deeply_nested_policy(
        depth in prop_oneof![1usize..8, 120usize..140, 400usize..600],
        opener in select(&["[", "{\"a\":", "{\"listeners\":"][..]),
        closed in any::<bool>(),
        inside in select(&["listeners", "backends", "users", "roles"][..]),
    ) {
        let nest = opener.repeat(depth);
        let close: String = if closed {
            opener.chars().rev().filter_map(|c| match c {
                '[' => Some(']'),
                '{' => Some('}'),
                _ => None,
            }).collect::<String>().repeat(depth)
        } else {
            String::new()
        };
        check_policy_errors(&format!("{nest}1{close}"))?;
        check_policy_errors(&format!("{{\"{inside}\":{nest}1{close}}}"))?;
        check_policy_errors(&format!("{{\"{inside}\":\n{nest}\n1{close}}}"))?;
    }
}
