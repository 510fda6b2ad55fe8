use super::*;
use proptest::prelude::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("address")
}

fn tcp(source: &str, destination: &str) -> Header {
    Header::Tcp {
        source: addr(source),
        destination: addr(destination),
    }
}

/// A version 2 header: command (0 LOCAL, 1 PROXY), family byte, body.
fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x20 | command);
    out.push(family);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn v4_body(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut body = src.to_vec();
    body.extend_from_slice(&dst);
    body.extend_from_slice(&sport.to_be_bytes());
    body.extend_from_slice(&dport.to_be_bytes());
    body
}

#[test]
fn version_1_lines() {
    let cases: &[(&[u8], Parsed)] = &[
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 21\r\n",
            Parsed::Complete {
                header: tcp("192.0.2.7:56324", "198.51.100.1:21"),
                length: 44,
            },
        ),
        (
            b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 2121\r\nUSER x\r\n",
            Parsed::Complete {
                header: tcp("[2001:db8::7]:4000", "[2001:db8::1]:2121"),
                length: 46,
            },
        ),
        (
            b"PROXY UNKNOWN\r\n",
            Parsed::Complete {
                header: Header::Unknown,
                length: 15,
            },
        ),
        (
            b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
            Parsed::Complete {
                header: Header::Unknown,
                length: 35,
            },
        ),
        (b"", Parsed::Incomplete),
        (b"P", Parsed::Incomplete),
        (b"PROXY", Parsed::Incomplete),
        (b"PROXY TCP4 192.0.2.7 19", Parsed::Incomplete),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r",
            Parsed::Incomplete,
        ),
        // Malformed, whatever would follow.
        (b"USER alice\r\n", Parsed::Invalid(Malformed::NoHeader)),
        (b"PROXZ", Parsed::Invalid(Malformed::NoHeader)),
        (b"proxy TCP4", Parsed::Invalid(Malformed::NoHeader)),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\rX",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP6 192.0.2.7 198.51.100.1 1 2\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 021 2\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 +21 2\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (
            b"PROXY TCP4 192.0.2.7 198.51.100.1 1 2\0\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
        (b"PROXY TCP4 \xff", Parsed::Invalid(Malformed::V1Syntax)),
        (
            b"PROXY TCP4 0192.0.2.7 198.51.100.1 1 2\r\n",
            Parsed::Invalid(Malformed::V1Syntax),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            parse(bytes),
            *expected,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn a_version_1_line_ends_within_107_bytes() {
    // The longest line the specification allows is exactly 107 bytes.
    let longest = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(longest.len(), V1_MAX_BYTES);
    assert!(matches!(
        parse(longest),
        Parsed::Complete { length: 107, .. }
    ));
    let mut endless = b"PROXY UNKNOWN ".to_vec();
    endless.resize(V1_MAX_BYTES, b'a');
    assert_eq!(parse(&endless), Parsed::Invalid(Malformed::V1TooLong));
    endless.truncate(V1_MAX_BYTES - 1);
    assert_eq!(
        parse(&endless),
        Parsed::Incomplete,
        "106 bytes: one more may be the CR"
    );
    endless.push(b'\r');
    assert_eq!(
        parse(&endless),
        Parsed::Invalid(Malformed::V1TooLong),
        "no room for the LF"
    );
}

#[test]
fn version_2_headers() {
    let proxy4 = v2(
        1,
        0x11,
        &v4_body([192, 0, 2, 7], [198, 51, 100, 1], 56324, 21),
    );
    assert_eq!(
        parse(&proxy4),
        Parsed::Complete {
            header: tcp("192.0.2.7:56324", "198.51.100.1:21"),
            length: 28
        }
    );
    // The client's bytes after the header are not part of it.
    let mut with_data = proxy4.clone();
    with_data.extend_from_slice(b"\x16\x03\x01");
    assert!(matches!(
        parse(&with_data),
        Parsed::Complete { length: 28, .. }
    ));
    // Every prefix of a valid header is incomplete, never invalid.
    for n in 0..proxy4.len() {
        assert_eq!(
            parse(&proxy4[..n]),
            Parsed::Incomplete,
            "prefix of {n} bytes"
        );
    }

    let mut body6 = Vec::new();
    body6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    body6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    body6.extend_from_slice(&4000u16.to_be_bytes());
    body6.extend_from_slice(&21u16.to_be_bytes());
    assert_eq!(
        parse(&v2(1, 0x21, &body6)),
        Parsed::Complete {
            header: tcp("[2001:db8::7]:4000", "[2001:db8::1]:21"),
            length: 52
        }
    );

    // TLVs are skipped; the header's length covers them.
    let mut tlvs = v4_body([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
    tlvs.extend_from_slice(&[0x01, 0x00, 0x03, b'f', b't', b'p']); // ALPN
    tlvs.extend_from_slice(&[0x04, 0x00, 0x00]); // NOOP, empty
    assert_eq!(
        parse(&v2(1, 0x11, &tlvs)),
        Parsed::Complete {
            header: tcp("10.0.0.1:1", "10.0.0.2:2"),
            length: 16 + 12 + 9
        }
    );

    // LOCAL: the balancer itself, whatever the family says.
    assert_eq!(
        parse(&v2(0, 0x00, &[])),
        Parsed::Complete {
            header: Header::Local,
            length: 16
        }
    );
    assert_eq!(
        parse(&v2(0, 0x11, &v4_body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2))),
        Parsed::Complete {
            header: Header::Local,
            length: 28
        }
    );
    // PROXY for what is not TCP over IP: no usable client.
    for family in [0x00, 0x12, 0x22, 0x31] {
        let body = vec![0u8; 216];
        assert!(
            matches!(
                parse(&v2(1, family, &body)),
                Parsed::Complete {
                    header: Header::Unknown,
                    ..
                }
            ),
            "family {family:#x}"
        );
    }
}

#[test]
fn malformed_version_2_headers() {
    let good = v4_body([192, 0, 2, 7], [198, 51, 100, 1], 1, 2);
    let mut wrong_version = v2(1, 0x11, &good);
    wrong_version[12] = 0x11;
    let mut wrong_command = v2(1, 0x11, &good);
    wrong_command[12] = 0x22;
    let mut wrong_signature = v2(1, 0x11, &good);
    wrong_signature[7] = b'q';
    let mut too_long = v2(1, 0x11, &good);
    too_long[14..16].copy_from_slice(&(MAX_PROXY_HEADER_BYTES as u16).to_be_bytes());
    let mut tlv_overrun = good.clone();
    tlv_overrun.extend_from_slice(&[0x01, 0x00, 0x09, b'x']);
    let mut tlv_cut = good.clone();
    tlv_cut.extend_from_slice(&[0x01, 0x00]);
    let cases: Vec<(Vec<u8>, Malformed)> = vec![
        (wrong_version, Malformed::V2Version),
        (wrong_command, Malformed::V2Version),
        (wrong_signature, Malformed::NoHeader),
        (too_long, Malformed::V2Length),
        (v2(1, 0x11, &good[..11]), Malformed::V2Length),
        (v2(1, 0x21, &good), Malformed::V2Length),
        (v2(1, 0x11, &tlv_overrun), Malformed::V2Tlv),
        (v2(1, 0x11, &tlv_cut), Malformed::V2Tlv),
    ];
    for (bytes, expected) in cases {
        assert_eq!(parse(&bytes), Parsed::Invalid(expected), "{bytes:?}");
    }
    // A declared length that exceeds the bound is refused before its bytes come.
    let mut huge = V2_SIGNATURE.to_vec();
    huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
    assert_eq!(parse(&huge), Parsed::Invalid(Malformed::V2Length));
}

fn v1_line() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(s, d, sp, dp)| {
            format!(
                "PROXY TCP4 {} {} {sp} {dp}\r\n",
                Ipv4Addr::from(s),
                Ipv4Addr::from(d)
            )
            .into_bytes()
        })
}

proptest! {
    /// Any bytes: an answer, never a panic, and a complete header's length lies within
    /// the bytes and the bound.
    #[test]
    fn any_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Parsed::Complete { length, .. } = parse(&bytes) {
            prop_assert!(length <= bytes.len() && length <= MAX_PROXY_HEADER_BYTES);
        }
    }

    /// Bytes after the signature, whatever they are: an answer, never a panic.
    #[test]
    fn any_version_2_body_gets_an_answer(rest in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend_from_slice(&rest);
        if let Parsed::Complete { length, .. } = parse(&bytes) {
            prop_assert!(length <= bytes.len() && length <= MAX_PROXY_HEADER_BYTES);
        }
    }

    /// A valid line round-trips its addresses, every prefix is incomplete, and the client's
    /// bytes after it do not change the answer.
    #[test]
    fn version_1_round_trips(line in v1_line(), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        let Parsed::Complete { header, length } = parse(&line) else {
            return Err(TestCaseError::fail("not complete"));
        };
        prop_assert_eq!(length, line.len());
        let tcp = matches!(header, Header::Tcp { .. });
        prop_assert!(tcp);
        for n in 0..line.len() {
            prop_assert_eq!(parse(&line[..n]), Parsed::Incomplete);
        }
        let mut more = line.clone();
        more.extend_from_slice(&tail);
        prop_assert_eq!(parse(&more), Parsed::Complete { header, length });
    }

    /// One byte of a valid line changed: never a different valid header of another length
    /// that would swallow the client's bytes, never a panic.
    #[test]
    fn a_changed_byte_is_refused_or_still_one_line(line in v1_line(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut changed = line.clone();
        let i = at.index(changed.len());
        changed[i] = byte;
        match parse(&changed) {
            Parsed::Complete { length, .. } => prop_assert!(length <= changed.len()),
            Parsed::Incomplete | Parsed::Invalid(_) => {}
        }
    }
}
