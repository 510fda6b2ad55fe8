//! Property tests: strategies.

#![allow(unused_imports)]

use super::*;

/// Verb spellings: every known name and alias, random letter runs (unknown verbs, too long
/// verbs), and odd shapes (digits, punctuation, empty).
pub(crate) fn verb_spelling() -> impl Strategy<Value = Vec<u8>> {
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
pub(crate) fn arg_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        12 => 0x20u8..0x7f,
        3 => 0x80u8..=0xff,
        1 => any::<u8>(),
    ]
}

/// Whole command lines, from raw noise to well-formed, lengths up to twice the cap.
pub(crate) fn command_line() -> impl Strategy<Value = Vec<u8>> {
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

pub(crate) fn any_verb() -> impl Strategy<Value = Verb> {
    select(Verb::ALL)
}

/// Control streams for the framer and the Telnet filter: mostly line-ish bytes with the
/// interesting ones (CR, LF, IAC and the Telnet commands) over-represented.
pub(crate) fn stream_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => select(&b"ab "[..]),
        3 => Just(b'\r'),
        3 => Just(b'\n'),
        3 => Just(IAC),
        2 => 0xf0u8..=0xfe,
        1 => any::<u8>(),
    ]
}

pub(crate) fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => vec(stream_byte(), 0..200),
        1 => vec(any::<u8>(), 0..200),
    ]
}

pub(crate) fn cuts() -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 0..10)
}

/// One line from a backend: reply-shaped (a code, a separator, text) or noise, of any length
/// up to past the line cap.
pub(crate) fn backend_line() -> impl Strategy<Value = Vec<u8>> {
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

pub(crate) fn reply_code() -> impl Strategy<Value = u16> {
    100u16..=599
}

pub(crate) fn v4_addr() -> impl Strategy<Value = SocketAddrV4> {
    (any::<[u8; 4]>(), 1u16..=u16::MAX).prop_map(|(ip, port)| SocketAddrV4::new(ip.into(), port))
}

pub(crate) fn v6_ip() -> impl Strategy<Value = Ipv6Addr> {
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
pub(crate) fn address_text() -> impl Strategy<Value = Vec<u8>> {
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
pub(crate) fn number_list() -> impl Strategy<Value = Vec<u8>> {
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
pub(crate) fn policy_char() -> impl Strategy<Value = char> {
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
pub(crate) enum Edit {
    Delete(Index),
    Insert(Index, char),
    Replace(Index, char),
    /// Duplicates a slice of the text at another place (repeats keys, sections).
    Copy(Index, Index, Index),
}

pub(crate) fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => any::<Index>().prop_map(Edit::Delete),
        3 => (any::<Index>(), policy_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        3 => (any::<Index>(), policy_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        1 => (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(a, b, c)| Edit::Copy(a, b, c)),
    ]
}

pub(crate) fn apply_edits(text: &str, edits: &[Edit]) -> String {
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
pub(crate) const POLICY_KEYS: &[&str] = &[
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
pub(crate) fn policy_scalar() -> impl Strategy<Value = serde_json::Value> {
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
pub(crate) fn policy_value() -> impl Strategy<Value = serde_json::Value> {
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
pub(crate) enum JsonEdit {
    Replace(Index, serde_json::Value),
    Insert(Index, &'static str, serde_json::Value),
    Remove(Index, Index),
}

pub(crate) fn json_edit() -> impl Strategy<Value = JsonEdit> {
    prop_oneof![
        3 => (any::<Index>(), policy_value()).prop_map(|(at, v)| JsonEdit::Replace(at, v)),
        3 => (any::<Index>(), select(POLICY_KEYS), policy_value())
            .prop_map(|(at, k, v)| JsonEdit::Insert(at, k, v)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(at, which)| JsonEdit::Remove(at, which)),
    ]
}

pub(crate) fn count_nodes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The node with preorder number `n` (0 is `value` itself).
pub(crate) fn nth_node(value: &mut serde_json::Value, n: usize) -> Option<&mut serde_json::Value> {
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

pub(crate) fn apply_json_edit(document: &mut serde_json::Value, edit: &JsonEdit) {
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
pub(crate) fn check_policy_errors(text: &str) -> Result<(), TestCaseError> {
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
