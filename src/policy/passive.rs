//! `passive`: the passive ports toward clients and the address their replies advertise,
//! by the client's network.

use std::net::IpAddr;

use super::Cidr;

/// Passive data connections toward clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passive {
    /// Inclusive range, `1024 <= first <= last`.
    pub ports: (u16, u16),
    /// The IPv4 address put in 227 replies (NAT) for clients no rule of
    /// `advertise_by_network` names; `None`: the address the client connected to.
    pub advertise: Option<IpAddr>,
    /// `passive.advertise` by the client's network (inside and outside a NAT), first match
    /// first; a rule without an address means the address the client connected to.
    pub advertise_by_network: Vec<AdvertiseRule>,
    /// Data connections also pass the load balancers (`passive.proxy_protocol`): a passive
    /// data connection from one of these networks carries a PROXY header, and is the
    /// client's only when the header's source is the client's real address. Empty: data
    /// connections come from the clients themselves.
    pub proxy_from: Vec<Cidr>,
    /// `passive.shared`: one passive port serves several sessions at once, told apart by
    /// the client's address (a session of each address at a time on each port). For
    /// partners whose firewalls name a handful of ports, and for the single data port of a
    /// container (`"ports": "50000"`, one worker).
    pub shared: bool,
}

/// One rule of `passive.advertise` by network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvertiseRule {
    pub from: Vec<Cidr>,
    pub address: Option<IpAddr>,
}

impl Passive {
    /// The address 227 replies give `client` (before [`crate::session`]'s IPv4 check):
    /// the first rule whose networks hold it, else `advertise`.
    pub fn advertise_for(&self, client: IpAddr) -> Option<IpAddr> {
        let client = match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        };
        self.advertise_by_network
            .iter()
            .find(|rule| rule.from.iter().any(|c| c.contains(client)))
            .map_or(self.advertise, |rule| rule.address)
    }
}
