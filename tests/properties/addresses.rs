//! Property tests: addresses.

#![allow(unused_imports)]

use super::*;

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
