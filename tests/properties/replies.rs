//! Property tests: replies.

#![allow(unused_imports)]

use super::*;

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
