//! Property tests: commands.

#![allow(unused_imports)]

use super::*;

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
    /// (case aside), so it is at most MAX_VERB_LEN ASCII letters (and digits: XSHA256).
    #[test]
    fn verb_from_name_total(name in prop_oneof![verb_spelling(), vec(any::<u8>(), 0..12)]) {
        if let Some(verb) = Verb::from_name(&name) {
            prop_assert!(!name.is_empty() && name.len() <= MAX_VERB_LEN);
            prop_assert!(name.iter().all(u8::is_ascii_alphanumeric), "{:?}", name);
            prop_assert!(
                name.iter().all(u8::is_ascii_alphabetic) || verb == Verb::Xsha256,
                "{:?}",
                name
            );
            let upper = name.to_ascii_uppercase();
            let is_alias = upper.starts_with(b"X") && upper.len() == 4;
            prop_assert!(upper == verb.name().as_bytes() || is_alias, "{:?} -> {:?}", name, verb);
        }
    }
}
