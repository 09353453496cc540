//! Addresses and routes: the RTM_NEWADDR / RTM_NEWROUTE messages that give a
//! container interface its static addresses, default gateways and extra
//! routes, and the address dump that `status` and the bridge clash check read.

use std::io;
use std::net::IpAddr;

use super::codec::{self, Request, RtMsg};
use super::netlink::Netlink;
use super::reply::{self, attrs};
use crate::model::Cidr;

fn family(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        codec::AF_INET
    } else {
        codec::AF_INET6
    }
}

/// The address bytes as the kernel stores them (network order, 4 or 16).
fn octets(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// RTM_NEWADDR for `cidr` on link `index`.
pub fn addr_msg(index: u32, cidr: &Cidr) -> Request {
    let header = codec::ifaddrmsg(family(&cidr.addr), cidr.prefix, index);
    let mut req = Request::new(libc::RTM_NEWADDR, &header);
    req.attr(libc::IFA_LOCAL, &octets(&cidr.addr));
    match cidr.addr {
        IpAddr::V4(_) => req.attr(libc::IFA_ADDRESS, &octets(&cidr.addr)),
        // A static address chosen by the manifest: skip duplicate address
        // detection, which would hold it "tentative" (unusable) for ~1 s.
        IpAddr::V6(_) => req.attr_u32(libc::IFA_FLAGS, libc::IFA_F_NODAD),
    };
    req
}

/// RTM_NEWROUTE to `to` via `via` (a gateway), or directly out of link
/// `oif` when `via` is None.
pub fn route_msg(oif: u32, to: Option<&Cidr>, via: Option<IpAddr>) -> Request {
    let fam_of = to
        .map(|c| c.addr)
        .or(via)
        .unwrap_or(IpAddr::V4([0, 0, 0, 0].into()));
    let header = RtMsg {
        family: family(&fam_of),
        dst_len: to.map_or(0, |c| c.prefix),
        table: libc::RT_TABLE_MAIN,
        protocol: libc::RTPROT_STATIC,
        scope: if via.is_some() {
            libc::RT_SCOPE_UNIVERSE
        } else {
            libc::RT_SCOPE_LINK
        },
        kind: libc::RTN_UNICAST,
    };
    let mut req = Request::new(libc::RTM_NEWROUTE, &header.bytes());
    if let Some(to) = to.filter(|c| c.prefix > 0) {
        req.attr(libc::RTA_DST, &octets(&to.addr));
    }
    if let Some(via) = via {
        req.attr(libc::RTA_GATEWAY, &octets(&via));
    }
    req.attr_u32(libc::RTA_OIF, oif);
    req
}

/// An IFA_LOCAL / IFA_ADDRESS value of `family`: 4 or 16 bytes.
fn ip_of(family: u8, value: &[u8]) -> Option<IpAddr> {
    match family {
        codec::AF_INET => <[u8; 4]>::try_from(value).ok().map(IpAddr::from),
        codec::AF_INET6 => <[u8; 16]>::try_from(value).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Reads an RTM_NEWADDR body into (ifindex, address/prefix); None for an
/// address without IFA_LOCAL / IFA_ADDRESS.
fn parse_addr(body: &[u8]) -> io::Result<Option<(u32, Cidr)>> {
    let bad = |e| io::Error::new(io::ErrorKind::InvalidData, e);
    let header = reply::parse_ifaddrmsg(body).map_err(bad)?;
    let attrs = attrs(&body[codec::IFADDRMSG_LEN..]).map_err(bad)?;
    let find = |kind: u16| {
        attrs
            .iter()
            .filter(|a| a.kind == kind)
            .find_map(|a| ip_of(header.family, a.value))
    };
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the
    // peer on point-to-point links, so prefer LOCAL when present.
    let addr = find(libc::IFA_LOCAL).or_else(|| find(libc::IFA_ADDRESS));
    Ok(addr.map(|addr| {
        (
            header.index,
            Cidr {
                addr,
                prefix: header.prefix,
            },
        )
    }))
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
    // ifaddrmsg with family AF_UNSPEC: IPv4 and IPv6 in one dump.
    let req = Request::new(libc::RTM_GETADDR, &codec::ifaddrmsg(0, 0, 0));
    let mut out = Vec::new();
    for reply in nl.dump(req)? {
        if reply.kind == libc::RTM_NEWADDR {
            out.extend(parse_addr(&reply.body)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::net::codec::ne::{h16, h32};

    #[test]
    fn v4_address_has_local_and_address() {
        let cidr: Cidr = "10.1.2.3/24".parse().expect("cidr");
        let req = addr_msg(3, &cidr);
        assert_eq!(req.kind(), 20); // RTM_NEWADDR
        let expected = [
            vec![2, 24, 0, 0], // AF_INET, prefix, flags, scope
            h32(3),
            h16(8),
            h16(2), // IFA_LOCAL
            vec![10, 1, 2, 3],
            h16(8),
            h16(1), // IFA_ADDRESS
            vec![10, 1, 2, 3],
        ]
        .concat();
        assert_eq!(req.body(), expected.as_slice());
    }

    #[test]
    fn v6_addresses_skip_dad() {
        let cidr: Cidr = "fd00::2/64".parse().expect("cidr");
        let req = addr_msg(3, &cidr);
        let expected = [
            vec![10, 64, 0, 0], // AF_INET6
            h32(3),
            h16(20),
            h16(2),
            vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            h16(8),
            h16(8), // IFA_FLAGS
            h32(2), // IFA_F_NODAD
        ]
        .concat();
        assert_eq!(req.body(), expected.as_slice());
    }

    #[test]
    fn default_route_has_no_destination() {
        let gw: IpAddr = "10.0.0.1".parse().expect("ip");
        let req = route_msg(5, None, Some(gw));
        assert_eq!(req.kind(), 24); // RTM_NEWROUTE
        let expected = [
            // family, dst_len, src_len, tos, table main, proto static,
            // scope universe, type unicast, flags
            vec![2, 0, 0, 0, 254, 4, 0, 1],
            h32(0),
            h16(8),
            h16(5), // RTA_GATEWAY
            vec![10, 0, 0, 1],
            h16(8),
            h16(4), // RTA_OIF
            h32(5),
        ]
        .concat();
        assert_eq!(req.body(), expected.as_slice());
    }

    #[test]
    fn extra_route_keeps_its_prefix() {
        let to: Cidr = "fd10::/48".parse().expect("cidr");
        let gw: IpAddr = "fd00::1".parse().expect("ip");
        let req = route_msg(2, Some(&to), Some(gw));
        let mut dst = vec![0; 16];
        dst[..2].copy_from_slice(&[0xfd, 0x10]);
        let mut via = vec![0; 16];
        via[0] = 0xfd;
        via[15] = 1;
        let expected = [
            vec![10, 48, 0, 0, 254, 4, 0, 1],
            h32(0),
            h16(20),
            h16(1), // RTA_DST
            dst,
            h16(20),
            h16(5),
            via,
            h16(8),
            h16(4),
            h32(2),
        ]
        .concat();
        assert_eq!(req.body(), expected.as_slice());
        // Without a gateway the route is on-link (scope link).
        let onlink = route_msg(2, Some(&to), None);
        assert_eq!(onlink.body()[6], 253);
    }

    #[test]
    fn address_replies_prefer_local() {
        let body = [
            vec![2, 32, 0, 0],
            h32(7),
            h16(8),
            h16(1), // IFA_ADDRESS: the peer
            vec![10, 0, 0, 9],
            h16(8),
            h16(2), // IFA_LOCAL: ours
            vec![10, 0, 0, 1],
        ]
        .concat();
        let want: Cidr = "10.0.0.1/32".parse().expect("cidr");
        assert_eq!(parse_addr(&body).expect("parse"), Some((7, want)));
        // Only IFA_ADDRESS (IPv6 sends just that).
        let mut v6 = vec![0; 16];
        v6[15] = 1;
        let body = [vec![10, 128, 0, 0], h32(1), h16(20), h16(1), v6].concat();
        let want: Cidr = "::1/128".parse().expect("cidr");
        assert_eq!(parse_addr(&body).expect("parse"), Some((1, want)));
        // No address attribute at all; a cut header.
        assert_eq!(
            parse_addr(&[vec![2, 8, 0, 0], h32(1)].concat()).expect("parse"),
            None
        );
        assert!(parse_addr(&[2, 8, 0]).is_err());
    }
}
