//! Addresses and routes: the RTM_NEWADDR / RTM_NEWROUTE messages that give a
//! container interface its static addresses, default gateways and extra
//! routes, and the address dump that `status` and the bridge clash check read.

use std::io;
use std::net::IpAddr;

use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::Netlink;
use crate::spec::types::Cidr;

fn family(addr: &IpAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// RTM_NEWADDR for `cidr` on link `index`.
pub fn addr_msg(index: u32, cidr: &Cidr) -> RouteNetlinkMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(&cidr.addr);
    msg.header.prefix_len = cidr.prefix;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(cidr.addr));
    match cidr.addr {
        IpAddr::V4(_) => msg.attributes.push(AddressAttribute::Address(cidr.addr)),
        // A static address chosen by the manifest: skip duplicate address
        // detection, which would hold it "tentative" (unusable) for ~1 s.
        IpAddr::V6(_) => msg
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad)),
    }
    RouteNetlinkMessage::NewAddress(msg)
}

/// RTM_NEWROUTE to `to` via `via` (a gateway), or directly out of link
/// `oif` when `via` is None.
pub fn route_msg(oif: u32, to: Option<&Cidr>, via: Option<IpAddr>) -> RouteNetlinkMessage {
    let fam_of = to
        .map(|c| c.addr)
        .or(via)
        .unwrap_or(IpAddr::V4([0, 0, 0, 0].into()));
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(&fam_of);
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = if via.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    if let Some(to) = to {
        msg.header.destination_prefix_length = to.prefix;
        if to.prefix > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(to.addr)));
        }
    }
    if let Some(via) = via {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(via)));
    }
    msg.attributes.push(RouteAttribute::Oif(oif));
    RouteNetlinkMessage::NewRoute(msg)
}

/// Adds an address; EEXIST means it is already there, which is what we want.
pub fn add(nl: &mut Netlink, index: u32, cidr: &Cidr) -> io::Result<()> {
    nl.create(addr_msg(index, cidr))
}

/// Adds a route (default when `to` is None).
pub fn add_route(nl: &mut Netlink, oif: u32, to: Option<&Cidr>, via: IpAddr) -> io::Result<()> {
    nl.create(route_msg(oif, to, Some(via)))
}

/// Every address in the socket's namespace, as (ifindex, address/prefix).
pub fn list(nl: &mut Netlink) -> io::Result<Vec<(u32, Cidr)>> {
    let replies = nl.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
    let mut out = Vec::new();
    for reply in replies {
        if let RouteNetlinkMessage::NewAddress(m) = reply {
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the
            // peer on point-to-point links, so prefer LOCAL when present.
            let local = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let addr = local.or_else(|| {
                m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(addr) = addr {
                out.push((
                    m.header.index,
                    Cidr {
                        addr,
                        prefix: m.header.prefix_len,
                    },
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v6_addresses_skip_dad() {
        let cidr: Cidr = "fd00::2/64".parse().expect("cidr");
        let RouteNetlinkMessage::NewAddress(m) = addr_msg(3, &cidr) else {
            panic!("not an address")
        };
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert!(m
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        assert_eq!(m.header.prefix_len, 64);
    }

    #[test]
    fn default_route_has_no_destination() {
        let gw: IpAddr = "10.0.0.1".parse().expect("ip");
        let RouteNetlinkMessage::NewRoute(m) = route_msg(5, None, Some(gw)) else {
            panic!("not a route")
        };
        assert_eq!(m.header.destination_prefix_length, 0);
        assert!(!m
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
        assert!(m.attributes.contains(&RouteAttribute::Oif(5)));
        assert_eq!(m.header.address_family, AddressFamily::Inet);
    }

    #[test]
    fn extra_route_keeps_its_prefix() {
        let to: Cidr = "fd10::/48".parse().expect("cidr");
        let gw: IpAddr = "fd00::1".parse().expect("ip");
        let RouteNetlinkMessage::NewRoute(m) = route_msg(2, Some(&to), Some(gw)) else {
            panic!("not a route")
        };
        assert_eq!(m.header.destination_prefix_length, 48);
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
    }
}
