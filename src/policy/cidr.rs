//! Source-address rules: `"10.0.0.0/8"`, `"2001:db8::/32"`, or a bare address (/32, /128).
//!
//! Pure parsing and matching. A network written with host bits set (`"10.0.0.1/8"`) is an
//! error rather than silently widened or narrowed: it is almost always a typo.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `address/prefix`, if the prefix fits the family and no host bit is set.
    pub fn new(network: IpAddr, prefix: u8) -> Option<Cidr> {
        let cidr = Cidr { network, prefix };
        match network {
            IpAddr::V4(v4) if prefix <= 32 && u32::from(v4) & !mask_v4(prefix) == 0 => Some(cidr),
            IpAddr::V6(v6) if prefix <= 128 && u128::from(v6) & !mask_v6(prefix) == 0 => Some(cidr),
            _ => None,
        }
    }

    /// Parses `ADDRESS/PREFIX` or a bare address. The message says what is wrong.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let Ok(network) = address.parse::<IpAddr>() else {
            return Err(format!(
                "{text:?} is not an address or network (e.g. \"198.51.100.0/24\", \"2001:db8::/32\", \"192.0.2.7\")"
            ));
        };
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(digits) => {
                let canonical = digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'));
                match digits.parse::<u8>() {
                    Ok(prefix) if canonical && prefix <= max => prefix,
                    _ => {
                        return Err(format!(
                            "{text:?}: the prefix length must be a number from 0 to {max}"
                        ));
                    }
                }
            }
        };
        Cidr::new(network, prefix).ok_or_else(|| {
            let masked = Cidr::masked(network, prefix);
            format!("{text:?} has host bits set; did you mean \"{masked}\"?")
        })
    }

    /// The network of `address/prefix` with the host bits cleared.
    fn masked(address: IpAddr, prefix: u8) -> Cidr {
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(prefix))),
        };
        Cidr { network, prefix }
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, as
    /// a dual-stack socket reports IPv4 peers) matches IPv4 networks. The reverse does not
    /// hold: an IPv6 network never contains a plain IPv4 address, so `"::/0"` means "every
    /// IPv6 client" and nothing more.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => self.contains_v4(net, ip),
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| self.contains_v4(net, ip)),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(ip) & mask == u128::from(net) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }

    /// Whether every address of `other` is in this network (an IPv4 network covers the
    /// IPv4-mapped IPv6 networks of its addresses, as [`Cidr::contains`] matches them).
    pub fn covers(&self, other: &Cidr) -> bool {
        let prefix = match (self.network, other.network) {
            (IpAddr::V4(_), IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
                other.prefix.checked_sub(96)
            }
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => None,
            _ => Some(other.prefix),
        };
        prefix.is_some_and(|prefix| prefix >= self.prefix) && self.contains(other.network)
    }

    fn contains_v4(&self, net: Ipv4Addr, ip: Ipv4Addr) -> bool {
        let mask = mask_v4(self.prefix);
        u32::from(ip) & mask == u32::from(net) & mask
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        Cidr::parse(text)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn cidr(text: &str) -> Cidr {
        Cidr::parse(text).expect("test network")
    }

    #[test]
    fn parses_networks_and_bare_addresses() {
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("10.0.0.0/8").prefix(), 8);
        assert_eq!(cidr("10.0.0.0/8").network(), ip("10.0.0.0"));
        assert_eq!(cidr("192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(cidr("::1").to_string(), "::1/128");
        assert_eq!(cidr("::1/128").to_string(), "::1/128");
        assert_eq!(cidr("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(cidr("::/0").to_string(), "::/0");
        assert_eq!(
            "198.51.100.0/24".parse::<Cidr>(),
            Ok(cidr("198.51.100.0/24"))
        );
    }

    #[test]
    fn refuses_garbage() {
        let err = |s: &str| Cidr::parse(s).expect_err(s);
        assert!(err("").contains("is not an address"));
        assert!(err("10.0.0/8").contains("is not an address"));
        assert!(err("localhost").contains("is not an address"));
        assert!(err("fe80::1%eth0").contains("is not an address"));
        assert!(err("10.0.0.0/33").contains("from 0 to 32"));
        assert!(err("::/129").contains("from 0 to 128"));
        assert!(err("10.0.0.0/").contains("from 0 to 32"));
        assert!(err("10.0.0.0/-1").contains("from 0 to 32"));
        assert!(err("10.0.0.0/+8").contains("from 0 to 32"));
        assert!(err("10.0.0.0/08").contains("from 0 to 32"));
        assert!(err("10.0.0.0/8/8").contains("from 0 to 32"));
        assert!(err("10.0.0.0/ 8").contains("from 0 to 32"));
        assert_eq!(
            err("10.0.0.1/8"),
            "\"10.0.0.1/8\" has host bits set; did you mean \"10.0.0.0/8\"?"
        );
        assert!(err("2001:db8::1/32").contains("did you mean \"2001:db8::/32\"?"));
        assert_eq!(Cidr::new(ip("10.0.0.0"), 33), None);
        assert_eq!(Cidr::new(ip("10.0.0.1"), 24), None);
    }

    #[test]
    fn matches_v4() {
        let net = cidr("198.51.100.0/24");
        assert!(net.contains(ip("198.51.100.0")));
        assert!(net.contains(ip("198.51.100.255")));
        assert!(!net.contains(ip("198.51.101.0")));
        assert!(!net.contains(ip("198.51.99.255")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!cidr("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(cidr("10.0.0.0/8").contains(ip("10.255.255.255")));
        assert!(
            !cidr("10.0.0.0/8").contains(ip("::a00:1")),
            "IPv4-compatible is not mapped"
        );
    }

    #[test]
    fn matches_v6() {
        let net = cidr("2001:db8::/32");
        assert!(net.contains(ip("2001:db8::1")));
        assert!(net.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!net.contains(ip("2001:db9::")));
        assert!(cidr("::1/128").contains(ip("::1")));
        assert!(!cidr("::1/128").contains(ip("::2")));
        assert!(cidr("::/0").contains(ip("fe80::1")));
        assert!(
            !cidr("::/0").contains(ip("192.0.2.7")),
            "v6 networks never hold plain v4"
        );
        assert!(!cidr("2001:db8::/32").contains(ip("10.0.0.1")));
    }

    #[test]
    fn mapped_addresses_match_v4_networks() {
        let net = cidr("198.51.100.0/24");
        assert!(net.contains(ip("::ffff:198.51.100.77")));
        assert!(!net.contains(ip("::ffff:198.51.101.77")));
        assert!(cidr("0.0.0.0/0").contains(ip("::ffff:1.2.3.4")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(cidr("::ffff:0:0/96").contains(ip("::ffff:1.2.3.4")));
    }
}
