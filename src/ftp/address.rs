//! Data-connection addresses on the control channel: PORT and EPRT arguments, 227 and 229
//! replies, and the EPSV argument.
//!
//! This module owns the text formats of RFC 959 (`h1,h2,h3,h4,p1,p2`), RFC 2428
//! (`<d><af><d><addr><d><port><d>`, `(|||port|)`) and RFC 1123 §4.1.2.6 (how to find the
//! numbers in a 227 reply), parsed strictly and formatted canonically. It only turns text
//! into addresses and back: whether an address is acceptable (bounce and port-theft checks,
//! port >= 1024) is decided by the session, not here. Every port parser refuses port 0, which
//! can never name a data connection. No I/O, no panics on any input.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::ftp::codes;
use crate::ftp::reply::Reply;

/// Why an address argument or reply could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// Not the expected shape (missing fields, stray characters, bad delimiter).
    Syntax,
    /// A number out of range or too long (octet > 255, port 0 or > 65535).
    BadNumber,
    /// An EPRT/EPSV address family other than 1 (IPv4) or 2 (IPv6), or an address that does
    /// not belong to the family named. Answered with 522 (RFC 2428).
    BadFamily,
    /// A well-formed address ftpgate refuses to use: an IPv4-mapped or IPv4-embedded IPv6
    /// address in EPRT family 2.
    Unsupported,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Syntax => f.write_str("malformed address"),
            AddressError::BadNumber => f.write_str("address number out of range"),
            AddressError::BadFamily => f.write_str("network protocol not supported"),
            AddressError::Unsupported => f.write_str("address form not supported"),
        }
    }
}

impl std::error::Error for AddressError {}

/// The argument of EPSV (RFC 2428 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: any family, the one of the control connection.
    Any,
    /// `EPSV 1` or `EPSV 2`: the family the client asks for.
    Family(u8),
    /// `EPSV ALL`: from now on only EPSV may open data connections.
    All,
}

/// Parses a PORT argument `h1,h2,h3,h4,p1,p2`: six decimal numbers of 1 to 3 digits, each
/// 0-255, separated by single commas. Leading and trailing spaces are tolerated; nothing
/// else is (no signs, no inner spaces). Port 0 is refused.
pub fn parse_port_arg(arg: &[u8]) -> Result<SocketAddrV4, AddressError> {
    let arg = trim_spaces(arg);
    let mut numbers = [0u8; 6];
    let mut fields = arg.split(|&b| b == b',');
    for slot in &mut numbers {
        let field = fields.next().ok_or(AddressError::Syntax)?;
        *slot = parse_octet(field)?;
    }
    if fields.next().is_some() {
        return Err(AddressError::Syntax);
    }
    socket_v4(numbers)
}

/// Formats `addr` as a PORT argument (`h1,h2,h3,h4,p1,p2`).
pub fn format_port_arg(addr: SocketAddrV4) -> String {
    let [h1, h2, h3, h4] = addr.ip().octets();
    let [p1, p2] = addr.port().to_be_bytes();
    format!("{h1},{h2},{h3},{h4},{p1},{p2}")
}

/// Parses an EPRT argument `<d><af><d><addr><d><port><d>` (RFC 2428 §2), e.g.
/// `|1|132.235.1.2|6275|` or `|2|1080::8:800:200C:417A|5282|`.
///
/// The delimiter is any printable ASCII character (33-126) that cannot occur in the fields:
/// not a letter, digit, `.`, `:` or `%`. Family 1 needs a dotted-quad IPv4 address, family
/// 2 an IPv6 address; other families are [`AddressError::BadFamily`]. Leading and trailing
/// spaces are tolerated.
pub fn parse_eprt_arg(arg: &[u8]) -> Result<SocketAddr, AddressError> {
    let arg = trim_spaces(arg);
    let (&delimiter, rest) = arg.split_first().ok_or(AddressError::Syntax)?;
    if !is_delimiter(delimiter) {
        return Err(AddressError::Syntax);
    }
    // `rest` is `af d addr d port d`: exactly four pieces, the last one empty.
    let mut fields = rest.split(|&b| b == delimiter);
    let (Some(af), Some(addr), Some(port), Some(b""), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(AddressError::Syntax);
    };
    let family = parse_family(af)?;
    let port = parse_port_number(port)?;
    let addr = std::str::from_utf8(addr).map_err(|_| AddressError::Syntax)?;
    match family {
        1 => {
            // Rust's parser is strict: four decimal octets, no leading zeros (no octal
            // ambiguity), no shorthand forms.
            let ip: Ipv4Addr = addr.parse().map_err(|_| AddressError::Syntax)?;
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        _ => {
            if addr.parse::<Ipv4Addr>().is_ok() {
                return Err(AddressError::BadFamily);
            }
            let ip: Ipv6Addr = addr.parse().map_err(|_| AddressError::Syntax)?;
            // SECURITY: an IPv4 address must not hide in family 2 (::ffff:a.b.c.d or
            // ::a.b.c.d): the address checks compare like with like, and a disguised
            // IPv4 target is how a bounce check gets confused.
            if addr.contains('.') || ip.to_ipv4_mapped().is_some() {
                return Err(AddressError::Unsupported);
            }
            Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
        }
    }
}

/// Formats `addr` as an EPRT argument: `|1|1.2.3.4|5282|` or `|2|::1|5282|`. The IPv6 scope
/// and flow information are not part of the format and are dropped.
pub fn format_eprt_arg(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) => format!("|1|{}|{}|", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("|2|{}|{}|", v6.ip(), v6.port()),
    }
}

/// Finds the address in the text of a 227 reply. Following RFC 1123 §4.1.2.6 the numbers
/// are searched for rather than expected at a fixed place: the first run of six
/// comma-separated numbers counts, with or without parentheses
/// (`Entering Passive Mode (127,0,0,1,195,80).`, `=127,0,0,1,195,80`).
pub fn parse_pasv_reply(text: &[u8]) -> Result<SocketAddrV4, AddressError> {
    let mut start = 0;
    while let Some(rest) = text.get(start..) {
        let Some(offset) = rest.iter().position(u8::is_ascii_digit) else {
            break;
        };
        let candidate = rest.get(offset..).unwrap_or_default();
        match scan_six_numbers(candidate) {
            Scan::Found(result) => return result,
            Scan::NotHere(skip) => start += offset + skip.max(1),
        }
    }
    Err(AddressError::Syntax)
}

/// Builds the 227 reply advertising `addr`.
pub fn format_pasv_reply(addr: SocketAddrV4) -> Reply {
    Reply::new(
        codes::ENTERING_PASSIVE,
        &format!("Entering Passive Mode ({}).", format_port_arg(addr)),
    )
}

/// Finds the port in the text of a 229 reply, `Entering Extended Passive Mode (|||6446|)`:
/// after the first `(` come three delimiters, the port and the delimiter again (RFC 2428
/// §3). The address fields must be empty.
pub fn parse_epsv_reply(text: &[u8]) -> Result<u16, AddressError> {
    let open = text
        .iter()
        .position(|&b| b == b'(')
        .ok_or(AddressError::Syntax)?;
    let inner = text.get(open + 1..).unwrap_or_default();
    let [d1, d2, d3, rest @ ..] = inner else {
        return Err(AddressError::Syntax);
    };
    if !is_delimiter(*d1) || d2 != d1 || d3 != d1 {
        return Err(AddressError::Syntax);
    }
    let end = rest
        .iter()
        .position(|b| b == d1)
        .ok_or(AddressError::Syntax)?;
    parse_port_number(rest.get(..end).unwrap_or_default())
}

/// Builds the 229 reply advertising `port`.
pub fn format_epsv_reply(port: u16) -> Reply {
    Reply::new(
        codes::ENTERING_EXT_PASSIVE,
        &format!("Entering Extended Passive Mode (|||{port}|)"),
    )
}

/// Parses the argument of EPSV: nothing (`Any`), `1` or `2` (`Family`), `ALL` in any case
/// (`All`). Another number is [`AddressError::BadFamily`] (522); anything else is
/// [`AddressError::Syntax`]. Leading and trailing spaces are tolerated.
pub fn parse_epsv_arg(arg: &[u8]) -> Result<EpsvArg, AddressError> {
    let arg = trim_spaces(arg);
    if arg.is_empty() {
        return Ok(EpsvArg::Any);
    }
    if arg.eq_ignore_ascii_case(b"ALL") {
        return Ok(EpsvArg::All);
    }
    parse_family(arg).map(EpsvArg::Family)
}

/// Strips ASCII spaces at both ends.
fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// An RFC 2428 delimiter that cannot be confused with the content of a field.
fn is_delimiter(b: u8) -> bool {
    (33..=126).contains(&b) && !b.is_ascii_alphanumeric() && !matches!(b, b'.' | b':' | b'%')
}

/// Parses an address-family number: 1 or 2. Other numbers are `BadFamily`.
fn parse_family(field: &[u8]) -> Result<u8, AddressError> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Err(AddressError::Syntax);
    }
    match field {
        b"1" => Ok(1),
        b"2" => Ok(2),
        _ => Err(AddressError::BadFamily),
    }
}

/// Parses a decimal field of digits only, at most `max_digits` long, into a value up to
/// `max`. Empty or non-digit is `Syntax`; too long or too big is `BadNumber`.
fn parse_decimal(field: &[u8], max_digits: usize, max: u32) -> Result<u32, AddressError> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Err(AddressError::Syntax);
    }
    if field.len() > max_digits {
        return Err(AddressError::BadNumber);
    }
    let value = field
        .iter()
        .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
    if value > max {
        return Err(AddressError::BadNumber);
    }
    Ok(value)
}

/// One PORT/227 number: 1 to 3 digits, 0-255.
fn parse_octet(field: &[u8]) -> Result<u8, AddressError> {
    let value = parse_decimal(field, 3, 255)?;
    u8::try_from(value).map_err(|_| AddressError::BadNumber)
}

/// A TCP port in decimal: 1 to 5 digits, 1-65535.
fn parse_port_number(field: &[u8]) -> Result<u16, AddressError> {
    let value = parse_decimal(field, 5, 65535)?;
    match u16::try_from(value) {
        Ok(0) | Err(_) => Err(AddressError::BadNumber),
        Ok(port) => Ok(port),
    }
}

/// The socket address named by six PORT numbers; port 0 is refused.
fn socket_v4(numbers: [u8; 6]) -> Result<SocketAddrV4, AddressError> {
    let [h1, h2, h3, h4, p1, p2] = numbers;
    let port = u16::from_be_bytes([p1, p2]);
    if port == 0 {
        return Err(AddressError::BadNumber);
    }
    Ok(SocketAddrV4::new(Ipv4Addr::new(h1, h2, h3, h4), port))
}

/// Result of looking for six numbers at one place in a 227 text.
enum Scan {
    /// Six comma-separated numbers start here; their value, or why they are unusable.
    Found(Result<SocketAddrV4, AddressError>),
    /// No six-number group starts here; skip this many bytes before looking again.
    NotHere(usize),
}

/// Reads `n,n,n,n,n,n` at the start of `text` (which begins with a digit). Each run of
/// digits is one number; a run longer than three digits makes the group unusable.
fn scan_six_numbers(text: &[u8]) -> Scan {
    let mut numbers = [0u8; 6];
    let mut pos = 0;
    let mut bad_number = false;
    for (i, slot) in numbers.iter_mut().enumerate() {
        let rest = text.get(pos..).unwrap_or_default();
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Scan::NotHere(pos);
        }
        match parse_octet(rest.get(..digits).unwrap_or_default()) {
            Ok(value) => *slot = value,
            Err(_) => bad_number = true,
        }
        pos += digits;
        if i < 5 {
            if text.get(pos) != Some(&b',') {
                return Scan::NotHere(pos);
            }
            pos += 1;
        }
    }
    if bad_number {
        return Scan::Found(Err(AddressError::BadNumber));
    }
    Scan::Found(socket_v4(numbers))
}

/// `ip` in its canonical form: an IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, how a dual
/// stack socket shows an IPv4 peer) as the IPv4 address it carries.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether two addresses are the same host, across IPv4 and IPv4-mapped IPv6 forms.
pub fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical_ip(a) == canonical_ip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::from(a), port)
    }

    fn v6(text: &str, port: u16) -> SocketAddr {
        let ip: Ipv6Addr = text.parse().expect("test address");
        SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0))
    }

    #[test]
    fn port_arg_table() {
        use AddressError::*;
        let table: &[(&[u8], Result<SocketAddrV4, AddressError>)] = &[
            (b"127,0,0,1,195,80", Ok(v4([127, 0, 0, 1], 50000))),
            (b"10,0,0,9,4,1", Ok(v4([10, 0, 0, 9], 1025))),
            (b"255,255,255,255,255,255", Ok(v4([255; 4], 65535))),
            (b"0,0,0,0,0,1", Ok(v4([0; 4], 1))),
            (b"  1,2,3,4,5,6  ", Ok(v4([1, 2, 3, 4], 1286))),
            (b"001,002,003,004,000,021", Ok(v4([1, 2, 3, 4], 21))),
            // Port 0.
            (b"1,2,3,4,0,0", Err(BadNumber)),
            // Numbers out of range or too long.
            (b"256,0,0,1,4,1", Err(BadNumber)),
            (b"1,2,3,4,5,999", Err(BadNumber)),
            (b"0001,2,3,4,5,6", Err(BadNumber)),
            (b"1,2,3,4,5,99999999999999999999999", Err(BadNumber)),
            // Shape.
            (b"", Err(Syntax)),
            (b"   ", Err(Syntax)),
            (b"1,2,3,4,5", Err(Syntax)),
            (b"1,2,3,4,5,6,7", Err(Syntax)),
            (b"1,2,3,4,5,6,", Err(Syntax)),
            (b",1,2,3,4,5,6", Err(Syntax)),
            (b"1,2,,3,4,5", Err(Syntax)),
            (b"1, 2,3,4,5,6", Err(Syntax)),
            (b"+1,2,3,4,5,6", Err(Syntax)),
            (b"-1,2,3,4,5,6", Err(Syntax)),
            (b"1.2.3.4.5.6", Err(Syntax)),
            (b"0x7f,0,0,1,4,1", Err(Syntax)),
            (b"1,2,3,4,5,6\r", Err(Syntax)),
            (b"\t1,2,3,4,5,6", Err(Syntax)),
            (b"1,2,3,4,5,6\0", Err(Syntax)),
            (b"(1,2,3,4,5,6)", Err(Syntax)),
            ("1,2,3,4,5,\u{664}".as_bytes(), Err(Syntax)),
        ];
        for &(arg, expected) in table {
            assert_eq!(parse_port_arg(arg), expected, "{:?}", arg);
        }
    }

    #[test]
    fn eprt_arg_table() {
        use AddressError::*;
        let table: &[(&[u8], Result<SocketAddr, AddressError>)] = &[
            (
                b"|1|132.235.1.2|6275|",
                Ok(SocketAddr::V4(v4([132, 235, 1, 2], 6275))),
            ),
            (
                b"|2|1080::8:800:200C:417A|5282|",
                Ok(v6("1080::8:800:200c:417a", 5282)),
            ),
            (b"|2|::1|65535|", Ok(v6("::1", 65535))),
            (b"|2|::|1|", Ok(v6("::", 1))),
            (
                b" !1!10.0.0.1!1024! ",
                Ok(SocketAddr::V4(v4([10, 0, 0, 1], 1024))),
            ),
            (
                b"#1#10.0.0.1#01024#",
                Ok(SocketAddr::V4(v4([10, 0, 0, 1], 1024))),
            ),
            // Families.
            (b"|3|1.2.3.4|21|", Err(BadFamily)),
            (b"|0|1.2.3.4|21|", Err(BadFamily)),
            (b"|12|1.2.3.4|21|", Err(BadFamily)),
            (b"|2|1.2.3.4|21|", Err(BadFamily)),
            (b"|x|1.2.3.4|21|", Err(Syntax)),
            (b"||1.2.3.4|21|", Err(Syntax)),
            // Address does not fit the family.
            (b"|1|::1|21|", Err(Syntax)),
            (b"|1|1.2.3|21|", Err(Syntax)),
            (b"|1|1.2.3.4.5|21|", Err(Syntax)),
            (b"|1|01.2.3.4|21|", Err(Syntax)),
            (b"|1|0x7f.0.0.1|21|", Err(Syntax)),
            (b"|1|2130706433|21|", Err(Syntax)),
            (b"|1|256.0.0.1|21|", Err(Syntax)),
            (b"|1| 1.2.3.4|21|", Err(Syntax)),
            (b"|1||21|", Err(Syntax)),
            (b"|2|fe80::1%eth0|21|", Err(Syntax)),
            (b"|2|[::1]|21|", Err(Syntax)),
            (b"|2|::g|21|", Err(Syntax)),
            // IPv4 hidden in family 2.
            (b"|2|::ffff:1.2.3.4|21|", Err(Unsupported)),
            (b"|2|::ffff:102:304|21|", Err(Unsupported)),
            (b"|2|::1.2.3.4|21|", Err(Unsupported)),
            // Ports.
            (b"|1|1.2.3.4|0|", Err(BadNumber)),
            (b"|1|1.2.3.4|65536|", Err(BadNumber)),
            (b"|1|1.2.3.4|123456|", Err(BadNumber)),
            (b"|1|1.2.3.4||", Err(Syntax)),
            (b"|1|1.2.3.4|+21|", Err(Syntax)),
            (b"|1|1.2.3.4|2 1|", Err(Syntax)),
            // Shape and delimiters.
            (b"", Err(Syntax)),
            (b"|", Err(Syntax)),
            (b"||||", Err(Syntax)),
            (b"|1|1.2.3.4|21", Err(Syntax)),
            (b"|1|1.2.3.4|21||", Err(Syntax)),
            (b"|1|1.2.3.4|21|x", Err(Syntax)),
            (b"|1|1.2.3.4!21!", Err(Syntax)),
            (b"111.2.3.4121", Err(Syntax)),
            (b"a1a1.2.3.4a21a", Err(Syntax)),
            (b".1.1.2.3.4.21.", Err(Syntax)),
            (b":2:::1:21:", Err(Syntax)),
            (b"\x7f1\x7f1.2.3.4\x7f21\x7f", Err(Syntax)),
            (b" 1 1.2.3.4 21 ", Err(Syntax)),
            (b"\xff1\xff1.2.3.4\xff21\xff", Err(Syntax)),
            (b"|1|1.2.3.\xc3\xa9|21|", Err(Syntax)),
        ];
        for &(arg, expected) in table {
            assert_eq!(parse_eprt_arg(arg), expected, "{:?}", arg);
        }
    }

    #[test]
    fn pasv_reply_table() {
        use AddressError::*;
        let table: &[(&[u8], Result<SocketAddrV4, AddressError>)] = &[
            (
                b"Entering Passive Mode (127,0,0,1,195,80).",
                Ok(v4([127, 0, 0, 1], 50000)),
            ),
            (b"=127,0,0,1,195,80", Ok(v4([127, 0, 0, 1], 50000))),
            (b"127,0,0,1,195,80", Ok(v4([127, 0, 0, 1], 50000))),
            (
                b"Entering Passive Mode 127,0,0,1,195,80",
                Ok(v4([127, 0, 0, 1], 50000)),
            ),
            // Digits before the address do not stop the search.
            (b"Mode 2 (10,1,2,3,4,5) ok", Ok(v4([10, 1, 2, 3], 1029))),
            (b"1,2,3 then 9,8,7,6,5,4", Ok(v4([9, 8, 7, 6], 1284))),
            (b"v1.2 (1,2,3,4,5,6)", Ok(v4([1, 2, 3, 4], 1286))),
            // Trailing junk after the sixth number is ignored.
            (b"(1,2,3,4,5,6,7)", Ok(v4([1, 2, 3, 4], 1286))),
            // Unusable numbers.
            (b"(1,2,3,4,0,0)", Err(BadNumber)),
            (b"(256,2,3,4,5,6)", Err(BadNumber)),
            (b"(1,2,3,4,5,6000)", Err(BadNumber)),
            // Nothing there.
            (b"", Err(Syntax)),
            (b"Entering Passive Mode", Err(Syntax)),
            (b"(1,2,3,4,5)", Err(Syntax)),
            (b"(1,2,3,4,5,)", Err(Syntax)),
            (b"(1, 2, 3, 4, 5, 6)", Err(Syntax)),
            (b"(1.2.3.4.5.6)", Err(Syntax)),
            (b"99999999999999999999999999999", Err(Syntax)),
            (b"1,2,3,4,5,", Err(Syntax)),
        ];
        for &(text, expected) in table {
            assert_eq!(parse_pasv_reply(text), expected, "{:?}", text);
        }
    }

    #[test]
    fn epsv_reply_table() {
        use AddressError::*;
        let table: &[(&[u8], Result<u16, AddressError>)] = &[
            (b"Entering Extended Passive Mode (|||6446|)", Ok(6446)),
            (b"Entering Extended Passive Mode (|||6446|).", Ok(6446)),
            (b"(|||1|)", Ok(1)),
            (b"(|||65535|)", Ok(65535)),
            (b"ok (!!!6446!)", Ok(6446)),
            (b"(|||0|)", Err(BadNumber)),
            (b"(|||65536|)", Err(BadNumber)),
            (b"(|||1234567|)", Err(BadNumber)),
            (b"(|||6446)", Err(Syntax)),
            (b"(||6446|)", Err(Syntax)),
            (b"(|1|::1|6446|)", Err(Syntax)),
            (b"(|||6446!)", Err(Syntax)),
            (b"(|!|6446|)", Err(Syntax)),
            (b"(1116446|)", Err(Syntax)),
            (b"(|||x|)", Err(Syntax)),
            (b"(||||)", Err(Syntax)),
            (b"Entering Extended Passive Mode |||6446|", Err(Syntax)),
            (b"(", Err(Syntax)),
            (b"(||", Err(Syntax)),
            (b"", Err(Syntax)),
        ];
        for &(text, expected) in table {
            assert_eq!(parse_epsv_reply(text), expected, "{:?}", text);
        }
    }

    #[test]
    fn epsv_arg_table() {
        use AddressError::*;
        let table: &[(&[u8], Result<EpsvArg, AddressError>)] = &[
            (b"", Ok(EpsvArg::Any)),
            (b"   ", Ok(EpsvArg::Any)),
            (b"1", Ok(EpsvArg::Family(1))),
            (b"2", Ok(EpsvArg::Family(2))),
            (b" 2 ", Ok(EpsvArg::Family(2))),
            (b"ALL", Ok(EpsvArg::All)),
            (b"all", Ok(EpsvArg::All)),
            (b"aLl", Ok(EpsvArg::All)),
            (b"0", Err(BadFamily)),
            (b"3", Err(BadFamily)),
            (b"01", Err(BadFamily)),
            (b"99999999999999999999", Err(BadFamily)),
            (b"ALLX", Err(Syntax)),
            (b"AL", Err(Syntax)),
            (b"A LL", Err(Syntax)),
            (b"-1", Err(Syntax)),
            (b"1 2", Err(Syntax)),
            (b"|||", Err(Syntax)),
            (b"ALL\0", Err(Syntax)),
        ];
        for &(arg, expected) in table {
            assert_eq!(parse_epsv_arg(arg), expected, "{:?}", arg);
        }
    }

    /// A deterministic spread of IPv4 addresses and ports for round trips.
    fn sample_v4() -> Vec<SocketAddrV4> {
        let octets = [0u8, 1, 9, 10, 99, 100, 127, 128, 192, 199, 200, 254, 255];
        let ports = [1u16, 20, 21, 255, 256, 1023, 1024, 50000, 65534, 65535];
        let mut out = Vec::new();
        for (i, &a) in octets.iter().enumerate() {
            for (j, &port) in ports.iter().enumerate() {
                let b = octets[(i + j) % octets.len()];
                let c = octets[(i * 3 + j) % octets.len()];
                let d = octets[(i + j * 5) % octets.len()];
                out.push(v4([a, b, c, d], port));
            }
        }
        out
    }

    fn sample_v6() -> Vec<SocketAddr> {
        let ips = [
            "::1",
            "::",
            "2001:db8::1",
            "fe80::1",
            "1080::8:800:200c:417a",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:db8:0:1:1:1:1:1",
            "::2:3:4:5:6:7:8",
            "64:ff9b::1",
        ];
        let mut out = Vec::new();
        for ip in ips {
            for port in [1u16, 21, 1024, 6446, 65535] {
                out.push(v6(ip, port));
            }
        }
        out
    }

    #[test]
    fn round_trips_v4() {
        for addr in sample_v4() {
            let port_arg = format_port_arg(addr);
            assert_eq!(parse_port_arg(port_arg.as_bytes()), Ok(addr), "{port_arg}");

            let eprt = format_eprt_arg(SocketAddr::V4(addr));
            assert_eq!(
                parse_eprt_arg(eprt.as_bytes()),
                Ok(SocketAddr::V4(addr)),
                "{eprt}"
            );

            let reply = format_pasv_reply(addr);
            assert_eq!(reply.code, codes::ENTERING_PASSIVE);
            assert_eq!(parse_pasv_reply(reply.text()), Ok(addr), "{reply:?}");

            let reply = format_epsv_reply(addr.port());
            assert_eq!(reply.code, codes::ENTERING_EXT_PASSIVE);
            assert_eq!(parse_epsv_reply(reply.text()), Ok(addr.port()));
        }
    }

    #[test]
    fn round_trips_v6() {
        for addr in sample_v6() {
            let eprt = format_eprt_arg(addr);
            assert_eq!(parse_eprt_arg(eprt.as_bytes()), Ok(addr), "{eprt}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(
            format_port_arg(v4([127, 0, 0, 1], 50000)),
            "127,0,0,1,195,80"
        );
        assert_eq!(
            format_eprt_arg(SocketAddr::V4(v4([1, 2, 3, 4], 5282))),
            "|1|1.2.3.4|5282|"
        );
        assert_eq!(format_eprt_arg(v6("::1", 5282)), "|2|::1|5282|");
        let scoped = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 21, 7, 3));
        assert_eq!(format_eprt_arg(scoped), "|2|::1|21|");

        let mut wire = Vec::new();
        format_pasv_reply(v4([127, 0, 0, 1], 50000)).encode(&mut wire);
        assert_eq!(
            wire,
            b"227 Entering Passive Mode (127,0,0,1,195,80).\r\n".to_vec()
        );
        let mut wire = Vec::new();
        format_epsv_reply(6446).encode(&mut wire);
        assert_eq!(
            wire,
            b"229 Entering Extended Passive Mode (|||6446|)\r\n".to_vec()
        );
    }

    #[test]
    fn hostile_sweep() {
        // Every byte at every position of valid inputs: no panic, and any accepted result
        // formats back to an argument that parses to the same address.
        let seeds: &[&[u8]] = &[
            b"1,2,3,4,5,6",
            b"|1|1.2.3.4|21|",
            b"|2|::1|21|",
            b"(|||21|)",
        ];
        for seed in seeds {
            for pos in 0..seed.len() {
                for b in 0..=u8::MAX {
                    let mut input = seed.to_vec();
                    input[pos] = b;
                    if let Ok(addr) = parse_port_arg(&input) {
                        assert_eq!(parse_port_arg(format_port_arg(addr).as_bytes()), Ok(addr));
                    }
                    if let Ok(addr) = parse_eprt_arg(&input) {
                        assert_eq!(parse_eprt_arg(format_eprt_arg(addr).as_bytes()), Ok(addr));
                    }
                    if let Ok(addr) = parse_pasv_reply(&input) {
                        assert_eq!(parse_port_arg(format_port_arg(addr).as_bytes()), Ok(addr));
                    }
                    if let Ok(port) = parse_epsv_reply(&input) {
                        assert_ne!(port, 0);
                    }
                    let _ = parse_epsv_arg(&input);
                }
            }
        }
    }

    #[test]
    fn pasv_scan_is_bounded_on_long_input() {
        // A long run of digit groups that never completes: must terminate and fail.
        let text: Vec<u8> = b"1,2,3,4,5 "
            .iter()
            .copied()
            .cycle()
            .take(64 * 1024)
            .collect();
        assert_eq!(parse_pasv_reply(&text), Err(AddressError::Syntax));
    }

    #[test]
    fn error_display() {
        let table: &[(AddressError, &str)] = &[
            (AddressError::Syntax, "malformed address"),
            (AddressError::BadNumber, "address number out of range"),
            (AddressError::BadFamily, "network protocol not supported"),
            (AddressError::Unsupported, "address form not supported"),
        ];
        for (error, text) in table {
            assert_eq!(error.to_string(), *text);
        }
    }

    #[test]
    fn mapped_addresses_are_the_same_host() {
        let v4: IpAddr = "127.0.0.1".parse().expect("v4");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("mapped");
        assert!(same_ip(v4, mapped));
        assert_eq!(canonical_ip(mapped), v4);
        assert!(!same_ip(v4, "127.0.0.2".parse().expect("v4")));
        assert!(!same_ip("::1".parse().expect("v6"), v4));
    }
}
