//! Property tests: line framing and telnet filtering.

#![allow(unused_imports)]

use super::*;

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
