//! The PROXY protocol (HAProxy's, versions 1 and 2), receiving side. Pure: bytes in, a
//! header or a verdict out.
//!
//! A load balancer in front of ftpgate (HAProxy with `send-proxy`/`send-proxy-v2`, a cloud
//! L4 balancer) opens its connection to ftpgate with one header that names the client's
//! real address; then the client's own bytes follow. ftpgate reads the header before
//! anything else on the connection (the reactor's `pending` connections for control
//! listeners, the session's data shell for passive ports), and everything it decides about
//! the client (access rules, limits, bans, bounce and theft checks, the audit) uses the
//! address from the header.
//!
//! [`parse`] looks at the bytes received so far and says whether they hold a complete
//! header (and how long it is, so the caller consumes exactly that and leaves the client's
//! bytes), need more bytes, or can never become a valid header. It never reads past
//! [`MAX_PROXY_HEADER_BYTES`], so a caller that peeks at most that many bytes always gets an
//! answer.
//!
//! Version 1 is one text line, `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or
//! `PROXY UNKNOWN ...\r\n`, at most [`V1_MAX_BYTES`] bytes with the CRLF. Version 2 is binary:
//! a 12-byte signature, version and command, family and transport, a 16-bit length, then the
//! addresses and optional TLVs (skipped, but each must lie within the header).
//!
//! SECURITY: the header is trusted only from a configured balancer's address; that check is
//! the caller's. What this module guarantees is that nothing it accepts is ambiguous: strict
//! spacing and decimal numbers in v1, exact lengths in v2, no address family mismatch.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::limits::MAX_PROXY_HEADER_BYTES;

/// Longest version 1 header, with its CRLF (the specification's 107 bytes).
pub const V1_MAX_BYTES: usize = 107;
/// The version 2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version and command, family, length.
const V2_FIXED: usize = 16;
const V1_PREFIX: &[u8] = b"PROXY ";

// A version 2 header with IPv6 addresses and no TLV must fit.
const _: () = assert!(MAX_PROXY_HEADER_BYTES >= V2_FIXED + 36);
const _: () = assert!(MAX_PROXY_HEADER_BYTES >= V1_MAX_BYTES);

/// What a complete header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// A proxied TCP connection: the client's address, and the address the client connected
    /// to (on the balancer).
    Tcp {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// Version 2 `LOCAL`: the balancer speaks for itself (a health check), no client.
    Local,
    /// Version 1 `UNKNOWN`, or version 2 `PROXY` for something other than TCP over IPv4
    /// or IPv6 (UDP, a Unix socket, an unspecified family): no client address ftpgate can use.
    Unknown,
}

/// Why bytes can never be a valid header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Neither `PROXY ` nor the version 2 signature.
    NoHeader,
    /// A version 1 line longer than 107 bytes without its CRLF.
    V1TooLong,
    /// A version 1 line that does not have the specified form.
    V1Syntax,
    /// Version 2 with a version other than 2 or a command other than LOCAL and PROXY.
    V2Version,
    /// Version 2 whose length does not fit its addresses, or exceeds
    /// [`MAX_PROXY_HEADER_BYTES`].
    V2Length,
    /// Version 2 TLVs that run past the header.
    V2Tlv,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::NoHeader => "no PROXY protocol header",
            Malformed::V1TooLong => "PROXY v1 line longer than 107 bytes",
            Malformed::V1Syntax => "malformed PROXY v1 line",
            Malformed::V2Version => "PROXY v2 header with an unknown version or command",
            Malformed::V2Length => "PROXY v2 header with a wrong or too large length",
            Malformed::V2Tlv => "PROXY v2 TLV past the end of the header",
        })
    }
}

/// What the bytes received so far are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A prefix of a valid header: wait for more bytes.
    Incomplete,
    /// A complete header of `length` bytes; what follows is the client's.
    Complete { header: Header, length: usize },
    /// Never a valid header, whatever follows.
    Invalid(Malformed),
}

/// Parses the start of a connection. `bytes` may hold more than the header (the client's
/// first bytes); only the first [`MAX_PROXY_HEADER_BYTES`] are looked at.
pub fn parse(bytes: &[u8]) -> Parsed {
    let bytes = &bytes[..bytes.len().min(MAX_PROXY_HEADER_BYTES)];
    let Some(&first) = bytes.first() else {
        return Parsed::Incomplete;
    };
    if first == V2_SIGNATURE[0] {
        parse_v2(bytes)
    } else if first == V1_PREFIX[0] {
        parse_v1(bytes)
    } else {
        Parsed::Invalid(Malformed::NoHeader)
    }
}

/// A prefix check that tells "not yet" from "never".
fn starts(bytes: &[u8], prefix: &[u8]) -> Option<bool> {
    let n = bytes.len().min(prefix.len());
    if bytes[..n] != prefix[..n] {
        return None;
    }
    Some(bytes.len() >= prefix.len())
}

fn parse_v1(bytes: &[u8]) -> Parsed {
    match starts(bytes, V1_PREFIX) {
        None => return Parsed::Invalid(Malformed::NoHeader),
        Some(false) => return Parsed::Incomplete,
        Some(true) => {}
    }
    let window = &bytes[..bytes.len().min(V1_MAX_BYTES)];
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return if window.len() >= V1_MAX_BYTES {
            Parsed::Invalid(Malformed::V1TooLong)
        } else if window.iter().all(|&b| (0x20..0x7f).contains(&b)) {
            Parsed::Incomplete
        } else {
            Parsed::Invalid(Malformed::V1Syntax)
        };
    };
    // A bare LF, or a CR not followed by LF, is not the line's end.
    if window[cr] != b'\r' {
        return Parsed::Invalid(Malformed::V1Syntax);
    }
    match window.get(cr + 1) {
        None if cr + 1 >= V1_MAX_BYTES => return Parsed::Invalid(Malformed::V1TooLong),
        None => return Parsed::Incomplete,
        Some(b'\n') => {}
        Some(_) => return Parsed::Invalid(Malformed::V1Syntax),
    }
    let length = cr + 2;
    let Ok(line) = std::str::from_utf8(&window[V1_PREFIX.len()..cr]) else {
        return Parsed::Invalid(Malformed::V1Syntax);
    };
    if !line.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Parsed::Invalid(Malformed::V1Syntax);
    }
    // "UNKNOWN" may be followed by anything (the specification tells the receiver to
    // ignore it).
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        return Parsed::Complete {
            header: Header::Unknown,
            length,
        };
    }
    match v1_addresses(line) {
        Some((source, destination)) => Parsed::Complete {
            header: Header::Tcp {
                source,
                destination,
            },
            length,
        },
        None => Parsed::Invalid(Malformed::V1Syntax),
    }
}

/// `TCP4 SRC DST SPORT DPORT` with single spaces, addresses of the named family.
fn v1_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut fields = line.split(' ');
    let protocol = fields.next()?;
    let (src, dst) = (fields.next()?, fields.next()?);
    let (sport, dport) = (port(fields.next()?)?, port(fields.next()?)?);
    if fields.next().is_some() {
        return None;
    }
    let (src, dst): (IpAddr, IpAddr) = match protocol {
        "TCP4" => (
            IpAddr::V4(src.parse::<Ipv4Addr>().ok()?),
            IpAddr::V4(dst.parse::<Ipv4Addr>().ok()?),
        ),
        "TCP6" => (
            IpAddr::V6(src.parse::<Ipv6Addr>().ok()?),
            IpAddr::V6(dst.parse::<Ipv6Addr>().ok()?),
        ),
        _ => return None,
    };
    Some((SocketAddr::new(src, sport), SocketAddr::new(dst, dport)))
}

/// A decimal port, digits only, no leading zero (the form HAProxy writes).
fn port(text: &str) -> Option<u16> {
    let digits = text.as_bytes();
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits.len() > 1 && digits[0] == b'0' {
        return None;
    }
    text.parse().ok()
}

fn parse_v2(bytes: &[u8]) -> Parsed {
    match starts(bytes, &V2_SIGNATURE) {
        None => return Parsed::Invalid(Malformed::NoHeader),
        Some(false) => return Parsed::Incomplete,
        Some(true) => {}
    }
    let Some(&version_command) = bytes.get(12) else {
        return Parsed::Incomplete;
    };
    let local = match version_command {
        0x20 => true,
        0x21 => false,
        _ => return Parsed::Invalid(Malformed::V2Version),
    };
    let (Some(&family), Some(&hi), Some(&lo)) = (bytes.get(13), bytes.get(14), bytes.get(15))
    else {
        return Parsed::Incomplete;
    };
    let length = V2_FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    if length > MAX_PROXY_HEADER_BYTES {
        return Parsed::Invalid(Malformed::V2Length);
    }
    // The address block's size for each family (the transport is the low nibble).
    let addresses = match family >> 4 {
        0x1 => 12,
        0x2 => 36,
        0x3 => 216,
        _ => 0,
    };
    if !local && length < V2_FIXED + addresses {
        return Parsed::Invalid(Malformed::V2Length);
    }
    let Some(header_bytes) = bytes.get(..length) else {
        return Parsed::Incomplete;
    };
    let body = &header_bytes[V2_FIXED..];
    if local {
        // The receiver ignores a LOCAL header's addresses and TLVs.
        return Parsed::Complete {
            header: Header::Local,
            length,
        };
    }
    if !tlvs_fit(&body[addresses..]) {
        return Parsed::Invalid(Malformed::V2Tlv);
    }
    let header = match family {
        // TCP over IPv4 / IPv6 (transport 1: STREAM).
        0x11 => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[at],
                    body[at + 1],
                    body[at + 2],
                    body[at + 3],
                ))
            };
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Header::Tcp {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }
        0x21 => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&body[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Header::Tcp {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        _ => Header::Unknown,
    };
    Parsed::Complete { header, length }
}

/// Whether `tlvs` is a sequence of complete type-length-value entries.
fn tlvs_fit(mut tlvs: &[u8]) -> bool {
    while !tlvs.is_empty() {
        let [_, hi, lo, rest @ ..] = tlvs else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let Some(next) = rest.get(len..) else {
            return false;
        };
        tlvs = next;
    }
    true
}

#[cfg(test)]
mod tests;
