//! Links: build the rtnetlink messages for bridges, veth pairs, macvlan,
//! ipvlan and VLAN sub-interfaces, and the small changes made to a link
//! afterwards (alias mark, up, MTU, MAC, rename, move to a netns, delete).
//! Builders are pure functions returning data (unit-tested); the `do_*`
//! helpers send them through [`Netlink`].

use std::io;
use std::os::fd::RawFd;

use super::codec::{self, Request};
use super::netlink::{self, Netlink};
use super::reply::{self, attrs};
use crate::model::{IpvlanMode, Mac, MacvlanMode};

/// What berth needs to know about an existing link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// ifindex in the namespace it was read from.
    pub index: u32,
    /// IFLA_IFNAME.
    pub name: String,
    /// IFLA_IFALIAS: berth's ownership mark lives here.
    pub alias: Option<String>,
    /// IFLA_INFO_KIND (`bridge`, `veth`, ...), None for physical devices.
    pub kind: Option<String>,
    /// The Ethernet address, when the link has one.
    pub mac: Option<Mac>,
    /// IFF_UP is set.
    pub up: bool,
    /// IFLA_LINK_NETNSID: where a veth's peer lives. -1 (not assigned) when
    /// that namespace is already being dismantled, None when in this one.
    pub link_netnsid: Option<i32>,
}

impl Link {
    /// Reads an RTM_NEWLINK body (ifinfomsg + attributes); only the
    /// attributes berth uses are looked at.
    fn parse(body: &[u8]) -> io::Result<Link> {
        let bad = |e| io::Error::new(io::ErrorKind::InvalidData, e);
        let header = reply::parse_ifinfomsg(body).map_err(bad)?;
        let mut link = Link {
            index: header.index,
            name: String::new(),
            alias: None,
            kind: None,
            mac: None,
            up: header.flags & codec::IFF_UP != 0,
            link_netnsid: None,
        };
        for attr in attrs(&body[codec::IFINFOMSG_LEN..]).map_err(bad)? {
            match attr.kind {
                libc::IFLA_IFNAME => link.name = attr.string(),
                libc::IFLA_IFALIAS => link.alias = Some(attr.string()),
                libc::IFLA_LINK_NETNSID => link.link_netnsid = attr.i32(),
                libc::IFLA_ADDRESS if attr.value.len() == 6 => {
                    let mut b = [0u8; 6];
                    b.copy_from_slice(attr.value);
                    link.mac = Some(Mac(b));
                }
                libc::IFLA_LINKINFO => {
                    for info in attrs(attr.value).map_err(bad)? {
                        if info.kind == libc::IFLA_INFO_KIND {
                            link.kind = Some(info.string());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(link)
    }
}

/// The device kinds berth creates; each names the kernel module it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Linux bridge.
    Bridge,
    /// Virtual Ethernet pair.
    Veth,
    /// macvlan child of a parent.
    Macvlan,
    /// ipvlan child of a parent.
    Ipvlan,
    /// 802.1Q sub-interface.
    Vlan,
}

impl Kind {
    /// The kernel module (OpenWrt: kmod-*) that provides this kind.
    pub fn module(self) -> &'static str {
        match self {
            Kind::Bridge => "bridge",
            Kind::Veth => "veth",
            Kind::Macvlan => "macvlan",
            Kind::Ipvlan => "ipvlan",
            Kind::Vlan => "8021q",
        }
    }
}

/// Common settings of a new link.
#[derive(Debug, Clone, Default)]
pub struct NewLink {
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// Ethernet address; the kernel picks a random one when None.
    pub mac: Option<Mac>,
    /// MTU; the kernel default when None.
    pub mtu: Option<u32>,
    /// Create it up (IFF_UP in the header: no second message).
    pub up: bool,
    /// Create it directly inside this network namespace.
    pub netns_fd: Option<RawFd>,
}

/// RTM_NEWLINK with the common attributes of `new`, in the order the
/// kernel documentation lists them; the caller appends the kind-specific ones.
fn base(new: &NewLink) -> Request {
    let mut req = Request::new(libc::RTM_NEWLINK, &[]);
    base_into(&mut req, new, true);
    req
}

/// Writes `new`'s ifinfomsg and attributes into `req` (the whole message, or
/// the veth peer nest). `with_mac` is false for ipvlan, whose children
/// share the parent's MAC.
fn base_into(req: &mut Request, new: &NewLink, with_mac: bool) {
    // IFF_UP in the header creates the link up: no second message.
    let up = if new.up { codec::IFF_UP } else { 0 };
    req.raw(&codec::ifinfomsg(0, up, up));
    req.attr_str(libc::IFLA_IFNAME, &new.name);
    if let (Some(mac), true) = (new.mac, with_mac) {
        req.attr(libc::IFLA_ADDRESS, &mac.0);
    }
    if let Some(mtu) = new.mtu {
        req.attr_u32(libc::IFLA_MTU, mtu);
    }
    if let Some(fd) = new.netns_fd {
        req.attr(libc::IFLA_NET_NS_FD, &fd.to_ne_bytes());
    }
}

/// IFLA_LINKINFO with IFLA_INFO_KIND `kind` (no NUL, as iproute2 sends it)
/// and, when `data` writes anything, IFLA_INFO_DATA around it.
fn link_info(req: &mut Request, kind: &str, data: Option<&dyn Fn(&mut Request)>) {
    let info = req.begin_nest(libc::IFLA_LINKINFO);
    req.attr(libc::IFLA_INFO_KIND, kind.as_bytes());
    if let Some(data) = data {
        let nest = req.begin_nest(libc::IFLA_INFO_DATA);
        data(req);
        req.end_nest(nest);
    }
    req.end_nest(info);
}

/// A new bridge.
pub fn bridge_msg(new: &NewLink) -> Request {
    let mut req = base(new);
    link_info(&mut req, "bridge", None);
    req
}

/// A veth pair: `host` stays in the sending socket's namespace, enslaved to
/// `master`; `peer` is created directly in its own `netns_fd` (about 3 ms,
/// where creating on the host and moving costs 14-41 ms).
pub fn veth_msg(host: &NewLink, master: Option<u32>, peer: &NewLink) -> Request {
    let mut req = base(host);
    if let Some(master) = master {
        req.attr_u32(libc::IFLA_MASTER, master);
    }
    // VETH_INFO_PEER holds a whole ifinfomsg + attributes for the peer.
    link_info(
        &mut req,
        "veth",
        Some(&|r: &mut Request| {
            let nest = r.begin_nest(codec::VETH_INFO_PEER);
            base_into(r, peer, true);
            r.end_nest(nest);
        }),
    );
    req
}

/// A link on top of `parent` (IFLA_LINK, an ifindex in the sending
/// socket's namespace) whose IFLA_INFO_DATA holds one attribute.
fn child_msg(
    new: &NewLink,
    with_mac: bool,
    parent: u32,
    kind: &str,
    data: (u16, &[u8]),
) -> Request {
    let mut req = Request::new(libc::RTM_NEWLINK, &[]);
    base_into(&mut req, new, with_mac);
    req.attr_u32(libc::IFLA_LINK, parent);
    link_info(
        &mut req,
        kind,
        Some(&|r: &mut Request| {
            r.attr(data.0, data.1);
        }),
    );
    req
}

/// A macvlan child of `parent`.
pub fn macvlan_msg(new: &NewLink, parent: u32, mode: MacvlanMode) -> Request {
    // MACVLAN_MODE_* in if_link.h (a u32 attribute).
    let mode: u32 = match mode {
        MacvlanMode::Private => 1,
        MacvlanMode::Vepa => 2,
        MacvlanMode::Bridge => 4,
        MacvlanMode::Passthru => 8,
    };
    let data = (codec::IFLA_MACVLAN_MODE, &mode.to_ne_bytes()[..]);
    child_msg(new, true, parent, "macvlan", data)
}

/// An ipvlan child of `parent`; ipvlan children share the parent's MAC.
pub fn ipvlan_msg(new: &NewLink, parent: u32, mode: IpvlanMode) -> Request {
    // IPVLAN_MODE_* in if_link.h (a u16 attribute).
    let mode: u16 = match mode {
        IpvlanMode::L2 => 0,
        IpvlanMode::L3 => 1,
    };
    let data = (codec::IFLA_IPVLAN_MODE, &mode.to_ne_bytes()[..]);
    child_msg(new, false, parent, "ipvlan", data)
}

/// An 802.1Q sub-interface of `parent` with VLAN id `vid`.
pub fn vlan_msg(new: &NewLink, parent: u32, vid: u16) -> Request {
    let data = (codec::IFLA_VLAN_ID, &vid.to_ne_bytes()[..]);
    child_msg(new, true, parent, "vlan", data)
}

/// A change to an existing link, by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set IFLA_IFALIAS (the ownership mark).
    Alias(String),
    /// Set IFF_UP.
    Up,
    /// Set the MTU.
    Mtu(u32),
    /// Set the Ethernet address.
    Mac(Mac),
    /// Rename (the link must be down).
    Rename(String),
    /// Move into the network namespace of this fd.
    NetnsFd(RawFd),
    /// Move into the network namespace of this process.
    NetnsPid(u32),
}

/// RTM_SETLINK for one change.
pub fn set_msg(index: u32, change: &Change) -> Request {
    let (flags, mask) = match change {
        Change::Up => (codec::IFF_UP, codec::IFF_UP),
        _ => (0, 0),
    };
    let mut req = Request::new(libc::RTM_SETLINK, &codec::ifinfomsg(index, flags, mask));
    match change {
        Change::Alias(a) => req.attr_str(libc::IFLA_IFALIAS, a),
        Change::Up => &mut req,
        Change::Mtu(m) => req.attr_u32(libc::IFLA_MTU, *m),
        Change::Mac(m) => req.attr(libc::IFLA_ADDRESS, &m.0),
        Change::Rename(n) => req.attr_str(libc::IFLA_IFNAME, n),
        Change::NetnsFd(fd) => req.attr(libc::IFLA_NET_NS_FD, &fd.to_ne_bytes()),
        Change::NetnsPid(pid) => req.attr_u32(libc::IFLA_NET_NS_PID, *pid),
    };
    req
}

/// Applies one change to link `index`.
pub fn set(nl: &mut Netlink, index: u32, change: &Change) -> io::Result<()> {
    nl.request(set_msg(index, change))
}

/// Deletes link `index` (a veth deletes its peer too).
pub fn delete(nl: &mut Netlink, index: u32) -> io::Result<()> {
    nl.request(Request::new(
        libc::RTM_DELLINK,
        &codec::ifinfomsg(index, 0, 0),
    ))
}

/// RTM_GETLINK for the link called `name`.
fn find_msg(name: &str) -> Request {
    let mut req = Request::new(libc::RTM_GETLINK, &codec::ifinfomsg(0, 0, 0));
    req.attr_str(libc::IFLA_IFNAME, name);
    req
}

/// Looks a link up by name; `None` when there is no such link.
pub fn find(nl: &mut Netlink, name: &str) -> io::Result<Option<Link>> {
    match nl.get(find_msg(name)) {
        Ok(reply) if reply.kind == libc::RTM_NEWLINK => Link::parse(&reply.body).map(Some),
        Ok(_) => Ok(None),
        Err(e) if netlink::errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// RTM_GETNSID for `nsid`: rtgenmsg (AF_UNSPEC, padded to 4) + NETNSA_NSID.
fn nsid_msg(nsid: i32) -> Request {
    let mut req = Request::new(libc::RTM_GETNSID, &[0; 4]);
    req.attr(codec::NETNSA_NSID, &nsid.to_ne_bytes());
    req
}

/// Whether the namespace that `nsid` names (a veth's IFLA_LINK_NETNSID) is
/// still alive. RTM_GETNSID by id takes a reference with maybe_get_net(),
/// which fails (ENOENT) once the namespace's last user is gone and the
/// kernel's asynchronous teardown is pending. Unknown answers count as alive.
pub fn netns_alive(nl: &mut Netlink, nsid: i32) -> bool {
    if nsid < 0 {
        return false;
    }
    !matches!(nl.get(nsid_msg(nsid)), Err(e) if netlink::errno(&e) == Some(libc::ENOENT))
}

/// Every link in the socket's namespace.
pub fn list(nl: &mut Netlink) -> io::Result<Vec<Link>> {
    let req = Request::new(libc::RTM_GETLINK, &codec::ifinfomsg(0, 0, 0));
    nl.dump(req)?
        .iter()
        .filter(|m| m.kind == libc::RTM_NEWLINK)
        .map(|m| Link::parse(&m.body))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::net::codec::ne::{h16, h32};

    /// ifinfomsg: family 0, pad, type 0, index, flags, change.
    fn ifi(index: u32, flags: u32, change: u32) -> Vec<u8> {
        [vec![0, 0], h16(0), h32(index), h32(flags), h32(change)].concat()
    }

    #[test]
    fn veth_peer_goes_straight_into_the_container_netns() {
        let host = NewLink {
            name: "vweb-abcde".into(),
            up: true,
            ..Default::default()
        };
        let peer = NewLink {
            name: "eth0".into(),
            mac: Some(Mac([2, 0, 0, 0, 0, 1])),
            netns_fd: Some(7),
            ..Default::default()
        };
        let req = veth_msg(&host, Some(4), &peer);
        assert_eq!(req.kind(), 16); // RTM_NEWLINK
        let expected = [
            ifi(0, 1, 1), // IFF_UP in flags and change mask
            h16(15),
            h16(3), // IFLA_IFNAME
            b"vweb-abcde\0\0".to_vec(),
            h16(8),
            h16(10), // IFLA_MASTER
            h32(4),
            h16(68),
            h16(18), // IFLA_LINKINFO
            h16(8),
            h16(1), // IFLA_INFO_KIND
            b"veth".to_vec(),
            h16(56),
            h16(2), // IFLA_INFO_DATA
            h16(52),
            h16(1), // VETH_INFO_PEER
            ifi(0, 0, 0),
            h16(9),
            h16(3), // IFLA_IFNAME
            b"eth0\0\0\0\0".to_vec(),
            h16(10),
            h16(1), // IFLA_ADDRESS
            vec![2, 0, 0, 0, 0, 1, 0, 0],
            h16(8),
            h16(28), // IFLA_NET_NS_FD, only on the peer
            h32(7),
        ]
        .concat();
        assert_eq!(req.body(), expected.as_slice());
    }

    #[test]
    fn ipvlan_drops_the_mac() {
        let new = NewLink {
            name: "eth0".into(),
            mac: Some(Mac([2, 0, 0, 0, 0, 1])),
            mtu: Some(1400),
            ..Default::default()
        };
        let req = ipvlan_msg(&new, 3, IpvlanMode::L3);
        let expected = [
            ifi(0, 0, 0),
            h16(9),
            h16(3),
            b"eth0\0\0\0\0".to_vec(),
            h16(8),
            h16(4), // IFLA_MTU
            h32(1400),
            h16(8),
            h16(5), // IFLA_LINK
            h32(3),
            h16(28),
            h16(18),
            h16(10),
            h16(1),
            b"ipvlan\0\0".to_vec(),
            h16(12),
            h16(2),
            h16(6),
            h16(1), // IFLA_IPVLAN_MODE
            h16(1), // IPVLAN_MODE_L3
            h16(0), // padding
        ]
        .concat();
        assert_eq!(req.body(), expected.as_slice());
    }

    #[test]
    fn macvlan_modes_map() {
        let new = NewLink {
            name: "m".into(),
            ..Default::default()
        };
        let expected_for = |mode: u32| {
            [
                ifi(0, 0, 0),
                h16(6),
                h16(3),
                b"m\0\0\0".to_vec(),
                h16(8),
                h16(5),
                h32(2),
                h16(28),
                h16(18),
                h16(11),
                h16(1),
                b"macvlan\0".to_vec(),
                h16(12),
                h16(2),
                h16(8),
                h16(1), // IFLA_MACVLAN_MODE
                h32(mode),
            ]
            .concat()
        };
        for (mode, value) in [
            (MacvlanMode::Private, 1),
            (MacvlanMode::Vepa, 2),
            (MacvlanMode::Bridge, 4),
            (MacvlanMode::Passthru, 8),
        ] {
            let req = macvlan_msg(&new, 2, mode);
            assert_eq!(req.body(), expected_for(value).as_slice(), "{mode:?}");
        }
    }

    #[test]
    fn vlan_and_bridge_layouts() {
        let new = NewLink {
            name: "v".into(),
            ..Default::default()
        };
        let vlan = vlan_msg(&new, 2, 100);
        let expected = [
            ifi(0, 0, 0),
            h16(6),
            h16(3),
            b"v\0\0\0".to_vec(),
            h16(8),
            h16(5),
            h32(2),
            h16(24),
            h16(18),
            h16(8),
            h16(1),
            b"vlan".to_vec(),
            h16(12),
            h16(2),
            h16(6),
            h16(1), // IFLA_VLAN_ID
            h16(100),
            h16(0),
        ]
        .concat();
        assert_eq!(vlan.body(), expected.as_slice());
        let bridge = bridge_msg(&new);
        let expected = [
            ifi(0, 0, 0),
            h16(6),
            h16(3),
            b"v\0\0\0".to_vec(),
            h16(16),
            h16(18),
            h16(10),
            h16(1),
            b"bridge\0\0".to_vec(),
        ]
        .concat();
        assert_eq!(bridge.body(), expected.as_slice());
    }

    #[test]
    fn set_get_and_nsid_layouts() {
        let alias = set_msg(5, &Change::Alias("berth:x".into()));
        assert_eq!(alias.kind(), 19); // RTM_SETLINK
        let expected = [ifi(5, 0, 0), h16(12), h16(20), b"berth:x\0".to_vec()].concat();
        assert_eq!(alias.body(), expected.as_slice());
        assert_eq!(set_msg(5, &Change::Up).body(), ifi(5, 1, 1).as_slice());
        let pid = set_msg(5, &Change::NetnsPid(99));
        let expected = [ifi(5, 0, 0), h16(8), h16(19), h32(99)].concat();
        assert_eq!(pid.body(), expected.as_slice());
        let find = find_msg("lo");
        assert_eq!(find.kind(), 18); // RTM_GETLINK
        let expected = [ifi(0, 0, 0), h16(7), h16(3), b"lo\0\0".to_vec()].concat();
        assert_eq!(find.body(), expected.as_slice());
        let nsid = nsid_msg(3);
        assert_eq!(nsid.kind(), 90); // RTM_GETNSID
        let expected = [vec![0; 4], h16(8), h16(1), h32(3)].concat();
        assert_eq!(nsid.body(), expected.as_slice());
    }

    #[test]
    fn newlink_reply_is_read() {
        let body = [
            vec![0, 0],
            h16(1), // ARPHRD_ETHER
            h32(12),
            h32(0x1003), // IFF_UP | IFF_BROADCAST | IFF_LOWER_UP
            h32(0),
            h16(9),
            h16(3),
            b"vx-1\0\0\0\0".to_vec(),
            h16(4 + 9),
            h16(20),
            b"berth:web\0\0\0".to_vec(),
            h16(10),
            h16(1),
            vec![2, 0, 0, 0, 0, 9, 0, 0],
            h16(8),
            h16(37), // IFLA_LINK_NETNSID
            (-1i32).to_ne_bytes().to_vec(),
            h16(4 + 12 + 12),
            h16(0x8000 | 18), // kernel sets NLA_F_NESTED on dumps
            h16(9),
            h16(1),
            b"veth\0\0\0\0".to_vec(),
            h16(12), // IFLA_INFO_DATA, skipped
            h16(2),
            vec![0; 8],
        ]
        .concat();
        let link = Link::parse(&body).expect("parse");
        assert_eq!(
            link,
            Link {
                index: 12,
                name: "vx-1".into(),
                alias: Some("berth:web".into()),
                kind: Some("veth".into()),
                mac: Some(Mac([2, 0, 0, 0, 0, 9])),
                up: true,
                link_netnsid: Some(-1),
            }
        );
        assert!(Link::parse(&body[..10]).is_err());
        assert!(Link::parse(&body[..34]).is_err(), "attribute cut in half");
    }

    #[test]
    fn modules_are_named() {
        assert_eq!(Kind::Vlan.module(), "8021q");
        assert_eq!(Kind::Ipvlan.module(), "ipvlan");
    }
}
