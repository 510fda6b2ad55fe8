//! Unit tests of the command parser, the verb table and the encoding toward the backend.

use super::*;

fn cmd(verb: Verb, arg: &[u8]) -> Result<Command, CommandError> {
    Ok(Command::new(verb, arg))
}

#[test]
fn all_lists_every_variant_in_order() {
    // `Verb` is repr(u8) with implicit discriminants 0..n; a variant missing from ALL, a
    // duplicate or a wrong order shows up as a mismatch here.
    for (i, &verb) in Verb::ALL.iter().enumerate() {
        assert_eq!(verb as usize, i, "{verb:?} out of place in Verb::ALL");
    }
    assert_eq!(Verb::ALL.len(), Verb::Xsha256 as usize + 1);
}

#[test]
fn names_round_trip() {
    for &verb in Verb::ALL {
        let name = verb.name();
        assert!(name.len() <= MAX_VERB_LEN);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{name}"
        );
        assert_eq!(Verb::from_name(name.as_bytes()), Some(verb));
        assert_eq!(
            Verb::from_name(name.to_ascii_lowercase().as_bytes()),
            Some(verb)
        );
        assert_eq!(verb.to_string(), name);
    }
}

#[test]
fn names_are_distinct_from_each_other_and_from_aliases() {
    for (i, a) in Verb::ALL.iter().enumerate() {
        for b in Verb::ALL.iter().skip(i + 1) {
            assert_ne!(a.name(), b.name());
        }
        for (alias, _) in ALIASES {
            assert_ne!(a.name(), *alias);
        }
    }
}

#[test]
fn from_name_table() {
    let table: &[(&[u8], Option<Verb>)] = &[
        (b"USER", Some(Verb::User)),
        (b"user", Some(Verb::User)),
        (b"uSeR", Some(Verb::User)),
        (b"XCWD", Some(Verb::Cwd)),
        (b"xcwd", Some(Verb::Cwd)),
        (b"XCUP", Some(Verb::Cdup)),
        (b"XPWD", Some(Verb::Pwd)),
        (b"xMkD", Some(Verb::Mkd)),
        (b"XRMD", Some(Verb::Rmd)),
        (b"CCC", Some(Verb::Ccc)),
        (b"", None),
        (b"US", None),
        (b"USERS", None),
        (b"XDEL", None),
        (b"USER ", None),
        (b" USER", None),
        (b"U\0SER", None),
        (b"\xc3\x9cSER", None),
        (b"RETRRETRRETR", None),
    ];
    for &(name, expected) in table {
        assert_eq!(Verb::from_name(name), expected, "{name:?}");
    }
}

#[test]
fn verb_classes() {
    use Verb::*;
    // (verb, plumbing, file action, transfer, upload)
    let table: &[(Verb, bool, bool, bool, bool)] = &[
        (User, true, false, false, false),
        (Pass, true, false, false, false),
        (Acct, false, false, false, false),
        (Cwd, false, true, false, false),
        (Cdup, false, true, false, false),
        (Smnt, false, true, false, false),
        (Quit, true, false, false, false),
        (Rein, false, false, false, false),
        (Port, true, false, false, false),
        (Pasv, true, false, false, false),
        (Type, true, false, false, false),
        (Stru, true, false, false, false),
        (Mode, true, false, false, false),
        (Retr, false, true, true, false),
        (Stor, false, true, true, true),
        (Stou, false, true, true, true),
        (Appe, false, true, true, true),
        (Allo, false, false, false, false),
        (Rest, true, false, false, false),
        (Rnfr, false, true, false, false),
        (Rnto, false, true, false, false),
        (Abor, true, false, false, false),
        (Dele, false, true, false, false),
        (Rmd, false, true, false, false),
        (Mkd, false, true, false, false),
        (Pwd, false, false, false, false),
        (List, false, true, true, false),
        (Nlst, false, true, true, false),
        (Site, false, false, false, false),
        (Syst, true, false, false, false),
        (Stat, false, false, false, false),
        (Help, true, false, false, false),
        (Noop, true, false, false, false),
        (Feat, true, false, false, false),
        (Opts, true, false, false, false),
        (Auth, true, false, false, false),
        (Pbsz, true, false, false, false),
        (Prot, true, false, false, false),
        (Ccc, true, false, false, false),
        (Eprt, true, false, false, false),
        (Epsv, true, false, false, false),
        (Size, false, true, false, false),
        (Mdtm, false, true, false, false),
        (Mlsd, false, true, true, false),
        (Mlst, false, true, false, false),
        (Mfmt, false, true, false, false),
        (Lang, false, false, false, false),
        (Host, false, false, false, false),
        (Hash, false, true, false, false),
        (Xsha256, false, true, false, false),
    ];
    assert_eq!(table.len(), Verb::ALL.len(), "table must cover every verb");
    for &(verb, plumbing, file, transfer, upload) in table {
        assert_eq!(verb.is_plumbing(), plumbing, "{verb} plumbing");
        assert_eq!(verb.is_file_action(), file, "{verb} file action");
        assert_eq!(verb.is_transfer(), transfer, "{verb} transfer");
        assert_eq!(verb.is_upload(), upload, "{verb} upload");
    }
    for &verb in Verb::ALL {
        // Invariants between the classes.
        assert!(!verb.is_upload() || verb.is_transfer(), "{verb}");
        assert!(!verb.is_transfer() || verb.is_file_action(), "{verb}");
        assert!(!(verb.is_plumbing() && verb.is_file_action()), "{verb}");
    }
}

#[test]
fn parse_table() {
    let long_arg = vec![b'a'; MAX_COMMAND_LINE - 5];
    let mut max_line = b"RETR ".to_vec();
    max_line.extend_from_slice(&long_arg);
    assert_eq!(max_line.len(), MAX_COMMAND_LINE);
    let mut too_long = max_line.clone();
    too_long.push(b'a');
    let spaces_too_long = vec![b' '; MAX_COMMAND_LINE + 1];

    let table: &[(&[u8], Result<Command, CommandError>)] = &[
        // Ordinary commands.
        (b"USER alice", cmd(Verb::User, b"alice")),
        (b"user alice", cmd(Verb::User, b"alice")),
        (b"QUIT", cmd(Verb::Quit, b"")),
        (b"noop", cmd(Verb::Noop, b"")),
        (b"TYPE I", cmd(Verb::Type, b"I")),
        (b"PORT 10,0,0,1,4,1", cmd(Verb::Port, b"10,0,0,1,4,1")),
        (b"EPRT |2|::1|5282|", cmd(Verb::Eprt, b"|2|::1|5282|")),
        (b"XCWD /tmp", cmd(Verb::Cwd, b"/tmp")),
        (b"xpwd", cmd(Verb::Pwd, b"")),
        (b"XMKD new", cmd(Verb::Mkd, b"new")),
        (b"OPTS UTF8 ON", cmd(Verb::Opts, b"UTF8 ON")),
        // The argument is everything after the first space, spaces included.
        (b"RETR  leading", cmd(Verb::Retr, b" leading")),
        (b"RETR trailing ", cmd(Verb::Retr, b"trailing ")),
        (b"STOR a b  c", cmd(Verb::Stor, b"a b  c")),
        (b"NOOP ", cmd(Verb::Noop, b"")),
        (b"CWD   ", cmd(Verb::Cwd, b"  ")),
        // UTF-8 and other high bytes are allowed in the argument (RFC 2640).
        (
            "RETR r\u{e9}sum\u{e9}.pdf".as_bytes(),
            cmd(Verb::Retr, "r\u{e9}sum\u{e9}.pdf".as_bytes()),
        ),
        (b"RETR \xff\xfe", cmd(Verb::Retr, b"\xff\xfe")),
        // Length.
        (&max_line, cmd(Verb::Retr, &long_arg)),
        (&too_long, Err(CommandError::TooLong)),
        (&spaces_too_long, Err(CommandError::TooLong)),
        // Empty.
        (b"", Err(CommandError::Empty)),
        (b" ", Err(CommandError::Empty)),
        (b"    ", Err(CommandError::Empty)),
        // Control bytes anywhere.
        (b"RETR a\0b", Err(CommandError::ControlByte)),
        (b"RETR a\rDELE b", Err(CommandError::ControlByte)),
        (b"RETR a\nDELE b", Err(CommandError::ControlByte)),
        (b"RETR a\r", Err(CommandError::ControlByte)),
        (b"RETR a\x7f", Err(CommandError::ControlByte)),
        (b"RETR \x1b[31m", Err(CommandError::ControlByte)),
        (b"\tRETR a", Err(CommandError::ControlByte)),
        (b"RE\0TR a", Err(CommandError::ControlByte)),
        (b"\0", Err(CommandError::ControlByte)),
        (b"NOOP\r", Err(CommandError::ControlByte)),
        // Verb shape.
        (b" USER alice", Err(CommandError::BadVerb)),
        (b"US3R alice", Err(CommandError::BadVerb)),
        (b"xsha256 /a", Ok(Command::new(Verb::Xsha256, b"/a"))),
        (b"XSHA512 /a", Err(CommandError::BadVerb)),
        (b"USER_ alice", Err(CommandError::BadVerb)),
        (b"\xc3\x9cSER a", Err(CommandError::BadVerb)),
        (b"ABCDEFGHI", Err(CommandError::BadVerb)),
        (b"\xff\xf4\xff\xf2ABOR", Err(CommandError::BadVerb)),
        (b"123", Err(CommandError::BadVerb)),
        (b"<script>", Err(CommandError::BadVerb)),
        // Unknown verbs, echoed in a safe form.
        (b"XDEL a", Err(CommandError::Unknown("XDEL".into()))),
        (b"abcdefgh", Err(CommandError::Unknown("ABCDEFGH".into()))),
        (b"Get file", Err(CommandError::Unknown("GET".into()))),
        (b"CLNT x", Err(CommandError::Unknown("CLNT".into()))),
    ];
    for (line, expected) in table {
        assert_eq!(&parse_command(line), expected, "{:?}", line);
    }
}

#[test]
fn every_verb_parses_with_and_without_argument() {
    for &verb in Verb::ALL {
        let name = verb.name();
        assert_eq!(parse_command(name.as_bytes()), cmd(verb, b""));
        let line = format!("{} x y", name.to_ascii_lowercase());
        assert_eq!(parse_command(line.as_bytes()), cmd(verb, b"x y"));
    }
}

#[test]
fn every_single_byte_line_is_handled() {
    // Hostile input sweep: no panic, and a control byte is never accepted.
    for b in 0..=u8::MAX {
        let line = [b'R', b'E', b'T', b'R', b' ', b, b'x'];
        let result = parse_command(&line);
        if is_control(b) {
            assert_eq!(result, Err(CommandError::ControlByte), "{b:#x}");
        } else {
            assert_eq!(result, cmd(Verb::Retr, &[b, b'x']), "{b:#x}");
        }
        let _ = parse_command(&[b]);
        let _ = parse_command(&[b, b' ', b]);
    }
}

#[test]
fn unknown_name_is_safe_to_echo() {
    let table: &[(&[u8], &str)] = &[
        (b"abc", "ABC"),
        (b"a-b.c", "ABC"),
        (b"\r\n230 ok", "230OK"),
        (b"abcdefghijklmnop", "ABCDEFGH"),
        (b"\xff\xfe", ""),
        (b"Zz9", "ZZ9"),
    ];
    for &(name, expected) in table {
        assert_eq!(echo_safe_verb(name), expected);
    }
}

#[test]
fn encode_table() {
    let table: &[(Command, &[u8])] = &[
        (Command::new(Verb::Quit, b""), b"QUIT\r\n"),
        (Command::new(Verb::User, b"alice"), b"USER alice\r\n"),
        (Command::new(Verb::Cwd, b" a b "), b"CWD  a b \r\n"),
        (Command::new(Verb::Mkd, b"x"), b"MKD x\r\n"),
        (
            Command::new(Verb::Retr, "\u{e9}".as_bytes()),
            "RETR \u{e9}\r\n".as_bytes(),
        ),
        (Command::new(Verb::Retr, b"\xff"), b"RETR \xff\r\n"),
        // Hostile arguments built outside the parser cannot split the line.
        (
            Command::new(Verb::Retr, b"a\r\nDELE b"),
            b"RETR a  DELE b\r\n",
        ),
        (Command::new(Verb::Retr, b"a\0\x7f"), b"RETR a  \r\n"),
    ];
    for (command, expected) in table {
        let mut out = b"prefix".to_vec();
        command.encode(&mut out);
        assert_eq!(out.get(6..), Some(*expected), "{command:?}");
    }
}

#[test]
fn parse_then_encode_round_trips() {
    let lines: &[&[u8]] = &[
        b"USER alice",
        b"RETR  two  spaces ",
        b"STOR \xc3\xa9t\xc3\xa9",
        b"LIST",
        b"EPSV ALL",
    ];
    for &line in lines {
        let command = parse_command(line).expect("valid line");
        let mut out = Vec::new();
        command.encode(&mut out);
        let mut expected = line.to_vec();
        expected.extend_from_slice(b"\r\n");
        assert_eq!(out, expected);
    }
    // Aliases and case are normalised.
    let mut out = Vec::new();
    parse_command(b"xcup").expect("valid").encode(&mut out);
    assert_eq!(out, b"CDUP\r\n");
}

#[test]
fn arg_str() {
    assert_eq!(Command::new(Verb::Retr, b"a b").arg_str(), Some("a b"));
    assert_eq!(Command::new(Verb::Retr, b"").arg_str(), Some(""));
    assert_eq!(
        Command::new(Verb::Retr, "\u{e9}".as_bytes()).arg_str(),
        Some("\u{e9}")
    );
    assert_eq!(Command::new(Verb::Retr, b"\xff").arg_str(), None);
    assert_eq!(Command::new(Verb::Retr, b"\xc3").arg_str(), None);
}

#[test]
fn debug_redacts_password() {
    let pass = format!("{:?}", Command::new(Verb::Pass, b"hunter2"));
    assert!(!pass.contains("hunter2"), "{pass}");
    assert!(pass.contains("redacted"), "{pass}");
    let user = format!("{:?}", Command::new(Verb::User, b"alice"));
    assert!(user.contains("alice"), "{user}");
}

#[test]
fn error_display() {
    let table: &[(CommandError, &str)] = &[
        (CommandError::Empty, "empty command line"),
        (CommandError::TooLong, "command line too long"),
        (CommandError::BadVerb, "malformed command verb"),
        (CommandError::Unknown("XYZ".into()), "unknown command XYZ"),
        (
            CommandError::ControlByte,
            "control character in command line",
        ),
    ];
    for (error, text) in table {
        assert_eq!(error.to_string(), *text);
    }
}
