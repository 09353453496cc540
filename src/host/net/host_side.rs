//! The host side of container networking: what berth does through the host
//! namespace's rtnetlink socket. Network-level objects (a created bridge, the
//! VLAN parent, a macvlan host link: [`ensure_network`], [`remove_network`]),
//! the host end of each attachment's link ([`Ctx::plug`]), and deleting what
//! outlives a container ([`detach`], [`cleanup_stale`]). Separate from
//! `container_side`, which works inside the container's namespace; both
//! share the undo log here, so an error leaves nothing half-made.

use std::io;
use std::time::{Duration, Instant};

use super::link::{self, Change, Kind, Link, NewLink};
use super::netlink::{self, Netlink};
use super::{addr, names, NetError, Who};
use crate::model::{AttachmentSpec, Cidr, Mac, MacvlanMode, NetworkKind, NetworkSpec};

/// The link [`Ctx::plug`] made for an attachment.
pub(super) struct Plugged {
    /// `veth`, `macvlan` or `ipvlan`.
    pub(super) kind: &'static str,
    /// The host end of a veth.
    pub(super) host_name: Option<String>,
    /// The MAC berth set (an ipvlan has its parent's).
    pub(super) mac: Option<Mac>,
}

/// Something this call created, to delete again if a later step fails.
enum Undo {
    /// A link in the host namespace (deleting a veth end removes its peer).
    Host(u32, String),
    /// A link inside the container's namespace.
    Container(u32, String),
}

/// The host netlink handle plus the undo log of one call.
pub(super) struct Ctx {
    host: Netlink,
    undo: Vec<Undo>,
}

pub(super) fn who(network: &str, container: Option<&str>) -> Who {
    Who {
        network: network.to_string(),
        container: container.map(str::to_string),
    }
}

pub(super) fn nl_err(who: &Who, op: impl Into<String>) -> impl FnOnce(io::Error) -> NetError + '_ {
    let op = op.into();
    move |source| NetError::Netlink {
        who: who.clone(),
        op,
        source,
    }
}

/// Maps a failed link create to the error that tells the user what to do.
fn create_err(
    who: &Who,
    kind: Kind,
    name: &str,
    parent: Option<&str>,
    inside: bool,
    e: io::Error,
) -> NetError {
    match netlink::errno(&e) {
        // rtnl_newlink: no rtnl_link_ops for the kind even after request_module.
        Some(libc::EOPNOTSUPP) => NetError::ModuleMissing {
            who: who.clone(),
            module: kind.module(),
        },
        Some(libc::EEXIST) if inside => NetError::NameClashInside {
            who: who.clone(),
            name: name.to_string(),
        },
        Some(libc::EEXIST) => NetError::NameClash {
            who: who.clone(),
            name: name.to_string(),
            found: None,
        },
        // macvlan_port_create: EINVAL for a non-Ethernet or loopback parent or a
        // second passthru child; EBUSY when the parent already has another
        // rx_handler (bridge port, ipvlan/macvlan of the other kind).
        Some(libc::EINVAL) | Some(libc::EBUSY)
            if parent.is_some() && matches!(kind, Kind::Macvlan | Kind::Ipvlan) =>
        {
            NetError::ParentRefused {
                who: who.clone(),
                parent: parent.unwrap_or_default().to_string(),
                kind: kind.module(),
                source: e,
            }
        }
        _ => NetError::Netlink {
            who: who.clone(),
            op: format!("create {} `{name}`", kind.module()),
            source: e,
        },
    }
}

impl Ctx {
    pub(super) fn new() -> Result<Ctx, NetError> {
        let host = Netlink::open().map_err(|source| NetError::Netlink {
            who: who("-", None),
            op: "open netlink socket".into(),
            source,
        })?;
        Ok(Ctx {
            host,
            undo: Vec::new(),
        })
    }

    /// Deletes what this call created, newest first. `cont` is the
    /// container-side handle when one was opened.
    pub(super) fn rollback(&mut self, cont: Option<&mut Netlink>, cause: NetError) -> NetError {
        let mut cont = cont;
        while let Some(u) = self.undo.pop() {
            let (res, name) = match u {
                Undo::Host(i, n) => (link::delete(&mut self.host, i), n),
                Undo::Container(i, n) => match cont.as_deref_mut() {
                    Some(c) => (link::delete(c, i), n),
                    None => (Ok(()), n),
                },
            };
            match res {
                Ok(()) => {}
                Err(e) if netlink::errno(&e) == Some(libc::ENODEV) => {}
                Err(source) => {
                    return NetError::Rollback {
                        cause: Box::new(cause),
                        name,
                        source,
                    }
                }
            }
        }
        cause
    }

    /// Logs a link made inside the container's namespace, to delete with the
    /// container-side handle if a later step fails.
    pub(super) fn created_inside(&mut self, index: u32, name: &str) {
        self.undo.push(Undo::Container(index, name.to_string()));
    }

    fn find(&mut self, who: &Who, name: &str) -> Result<Option<Link>, NetError> {
        link::find(&mut self.host, name).map_err(nl_err(who, format!("look up `{name}`")))
    }

    /// Creates (or finds) the host side of a network; new links go to the undo log.
    fn ensure(
        &mut self,
        net: &NetworkSpec,
        host_addresses: &[Cidr],
        container: Option<&str>,
    ) -> Result<(), NetError> {
        let w = who(&net.name, container);
        match &net.kind {
            NetworkKind::Bridge {
                bridge,
                create,
                address,
            } => {
                match self.find(&w, bridge)? {
                    Some(l) if l.kind.as_deref() == Some("bridge") => return Ok(()),
                    Some(_) => {
                        return Err(NetError::NotABridge {
                            who: w,
                            name: bridge.clone(),
                        })
                    }
                    None if !create => {
                        return Err(NetError::BridgeMissing {
                            who: w,
                            bridge: bridge.clone(),
                        })
                    }
                    None => {}
                }
                let new = NewLink {
                    name: bridge.clone(),
                    mtu: net.mtu,
                    up: true,
                    ..Default::default()
                };
                self.host
                    .create(link::bridge_msg(&new))
                    .map_err(|e| create_err(&w, Kind::Bridge, bridge, None, false, e))?;
                let index = self.marked(&w, bridge, names::network_mark(&net.name))?;
                let addrs: Vec<Cidr> = address.iter().chain(host_addresses).copied().collect();
                self.add_host_addrs(&w, index, bridge, &addrs)
            }
            NetworkKind::Macvlan {
                parent,
                vlan,
                host_link,
                host_address,
                ..
            } => {
                let parent = self.parent(&w, parent, *vlan)?;
                if !host_link {
                    return Ok(());
                }
                let name = names::host_link(&net.name);
                if let Some(l) = self.find(&w, &name)? {
                    if l.alias.as_deref() == Some(&names::network_mark(&net.name)) {
                        return Ok(());
                    }
                    return Err(NetError::NameClash {
                        who: w,
                        name,
                        found: l.alias,
                    });
                }
                let new = NewLink {
                    name: name.clone(),
                    mtu: net.mtu,
                    up: true,
                    ..Default::default()
                };
                // Always bridge mode: only bridge-mode siblings talk to each other
                // without a reflective switch, which is the point of a host link.
                let msg = link::macvlan_msg(&new, parent.0, MacvlanMode::Bridge);
                self.host
                    .create(msg)
                    .map_err(|e| create_err(&w, Kind::Macvlan, &name, Some(&parent.1), false, e))?;
                let index = self.marked(&w, &name, names::network_mark(&net.name))?;
                let addrs: Vec<Cidr> = host_address.iter().chain(host_addresses).copied().collect();
                self.add_host_addrs(&w, index, &name, &addrs)
            }
            NetworkKind::Ipvlan { parent, vlan, .. } => self.parent(&w, parent, *vlan).map(|_| ()),
            NetworkKind::None | NetworkKind::Host => Ok(()),
        }
    }

    /// Finds a just-created host link, logs it for undo and marks it as ours.
    fn marked(&mut self, w: &Who, name: &str, mark: String) -> Result<u32, NetError> {
        let l = self.find(w, name)?.ok_or_else(|| NetError::Netlink {
            who: w.clone(),
            op: format!("find the new link `{name}`"),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })?;
        self.undo.push(Undo::Host(l.index, name.to_string()));
        // IFLA_IFALIAS is ignored by RTM_NEWLINK on create: set it afterwards.
        link::set(&mut self.host, l.index, &Change::Alias(mark))
            .map_err(nl_err(w, format!("mark `{name}`")))?;
        Ok(l.index)
    }

    fn add_host_addrs(
        &mut self,
        w: &Who,
        index: u32,
        name: &str,
        addrs: &[Cidr],
    ) -> Result<(), NetError> {
        for cidr in addrs {
            match addr::add(&mut self.host, index, cidr) {
                Err(e) if netlink::errno(&e) != Some(libc::EEXIST) => {
                    return Err(nl_err(w, format!("add address `{cidr}` to `{name}`"))(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Resolves the parent (creating the VLAN sub-interface on demand):
    /// returns its index and name.
    fn parent(
        &mut self,
        w: &Who,
        parent: &str,
        vlan: Option<u16>,
    ) -> Result<(u32, String), NetError> {
        let base = self
            .find(w, parent)?
            .ok_or_else(|| NetError::ParentMissing {
                who: w.clone(),
                parent: parent.to_string(),
            })?;
        let Some(vid) = vlan else {
            return Ok((base.index, base.name));
        };
        let name = names::vlan(parent, vid);
        if let Some(l) = self.find(w, &name)? {
            return Ok((l.index, l.name));
        }
        let new = NewLink {
            name: name.clone(),
            up: true,
            ..Default::default()
        };
        self.host
            .create(link::vlan_msg(&new, base.index, vid))
            .map_err(|e| create_err(w, Kind::Vlan, &name, Some(parent), false, e))?;
        let index = self.marked(w, &name, names::network_mark(&w.network))?;
        Ok((index, name))
    }

    /// Makes an attachment's link from the host namespace: a veth pair whose
    /// host end joins the bridge (marked as the container's) and whose `peer`
    /// end is made in the container's namespace, or a macvlan or ipvlan made
    /// there directly. `None` for the `none` and `host` networks, which get no
    /// link. What it creates goes to the undo log.
    pub(super) fn plug(
        &mut self,
        w: &Who,
        container: &str,
        net: &NetworkSpec,
        att: &AttachmentSpec,
        peer: &NewLink,
    ) -> Result<Option<Plugged>, NetError> {
        let (mtu, mac) = (peer.mtu, peer.mac);
        let (kind, host_name, mac) = match &net.kind {
            NetworkKind::None | NetworkKind::Host => return Ok(None),
            NetworkKind::Bridge { bridge, .. } => {
                self.ensure(net, &[], Some(container))?;
                let br = self
                    .find(w, bridge)?
                    .ok_or_else(|| NetError::BridgeMissing {
                        who: w.clone(),
                        bridge: bridge.clone(),
                    })?;
                check_bridge_addresses(self, w, &br, att)?;
                let host_name = names::host_veth(container, &net.name, &att.interface);
                let mark = names::container_mark(container);
                if let Some(old) = self.find(w, &host_name)? {
                    if old.alias.as_deref() != Some(mark.as_str()) {
                        return Err(NetError::NameClash {
                            who: w.clone(),
                            name: host_name,
                            found: old.alias,
                        });
                    }
                    // Our own leftover from a crash: replace it.
                    match link::delete(&mut self.host, old.index) {
                        // Vanished meanwhile: its namespace was being torn down.
                        Err(e) if netlink::errno(&e) == Some(libc::ENODEV) => {}
                        r => r.map_err(nl_err(w, format!("delete stale `{host_name}`")))?,
                    }
                }
                let host = NewLink {
                    name: host_name.clone(),
                    mtu,
                    up: true,
                    ..Default::default()
                };
                // veth_open() fails with ENOTCONN while the pair is half-built, so
                // the peer cannot be created up: it is set up from inside below.
                let peer = NewLink {
                    up: false,
                    ..peer.clone()
                };
                let msg = link::veth_msg(&host, Some(br.index), &peer);
                self.host.create(msg).map_err(|e| {
                    // EEXIST here is the peer's name inside the container: the host
                    // name was checked free just above.
                    create_err(w, Kind::Veth, &att.interface, None, true, e)
                })?;
                self.marked(w, &host_name, mark)?;
                ("veth", Some(host_name), mac)
            }
            NetworkKind::Macvlan {
                parent, mode, vlan, ..
            } => {
                self.ensure(net, &[], Some(container))?;
                let (pidx, pname) = self.parent(w, parent, *vlan)?;
                create_macvlan(self, w, peer, pidx, &pname, *mode)?;
                ("macvlan", None, mac)
            }
            NetworkKind::Ipvlan { parent, mode, vlan } => {
                let (pidx, pname) = self.parent(w, parent, *vlan)?;
                let msg = link::ipvlan_msg(peer, pidx, *mode);
                self.host.create(msg).map_err(|e| {
                    create_err(w, Kind::Ipvlan, &att.interface, Some(&pname), true, e)
                })?;
                ("ipvlan", None, None)
            }
        };
        Ok(Some(Plugged {
            kind,
            host_name,
            mac,
        }))
    }
}

/// Creates the host-side objects of a network: a bridge with `create: true`
/// (up, with its `address:`), the VLAN sub-interface of a `vlan:` parent, the
/// host link of a macvlan network with `host_link: true`. Idempotent.
pub fn ensure_network(net: &NetworkSpec) -> Result<(), NetError> {
    ensure_network_with(net, &[])
}

/// [`ensure_network`] with more addresses for the host side, beyond the
/// network's own: added to a created bridge or a macvlan host link.
pub fn ensure_network_with(net: &NetworkSpec, host_addresses: &[Cidr]) -> Result<(), NetError> {
    let mut ctx = Ctx::new()?;
    match ctx.ensure(net, host_addresses, None) {
        Ok(()) => Ok(()),
        Err(e) => Err(ctx.rollback(None, e)),
    }
}

/// Deletes the host-side links berth created for a network (bridge, VLAN,
/// host link: those marked `berth-net:<network>`). Links it did not create stay.
pub fn remove_network(network: &str) -> Result<Vec<String>, NetError> {
    delete_marked(
        &names::network_mark(network),
        &who(network, None),
        |_, _| true,
    )
}

/// Deletes every host-side link marked `berth:<container>`: what a crash
/// (of berth or of the container's namespace holder) left behind. Returns
/// the names removed. Call before (re)creating the container.
pub fn cleanup_stale(container: &str) -> Result<Vec<String>, NetError> {
    delete_marked(
        &names::container_mark(container),
        &who("-", Some(container)),
        |_, _| true,
    )
}

/// Removes what remains of a stopped container's interfaces, without paying
/// for what the kernel already does: a veth whose peer namespace is being
/// dismantled (its nsid no longer resolves, or no peer left) goes away with it for
/// free, while an explicit delete costs 14-25 ms. Veths whose peer namespace
/// is still alive (held by a stuck process or a bind mount) are deleted.
/// Returns the names deleted here.
pub fn detach(container: &str) -> Result<Vec<String>, NetError> {
    delete_marked(
        &names::container_mark(container),
        &who("-", Some(container)),
        |nl, l| {
            if l.kind.as_deref() != Some("veth") {
                return true;
            }
            let Some(id) = l.link_netnsid else {
                return false;
            };
            // A container that lived only a few ms can still be pinned by the
            // netlink socket `attach` used inside it: netlink_release() drops its
            // netns reference after an RCU grace period. Wait that out briefly
            // before paying for an explicit delete.
            let start = Instant::now();
            while link::netns_alive(nl, id) {
                if start.elapsed() > DYING_WAIT {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            false
        },
    )
}

/// How long `detach` waits for a just-exited container's namespace to be
/// released before deleting its veth itself.
const DYING_WAIT: Duration = Duration::from_millis(50);

fn delete_marked(
    mark: &str,
    w: &Who,
    wanted: impl Fn(&mut Netlink, &Link) -> bool,
) -> Result<Vec<String>, NetError> {
    let mut ctx = Ctx::new()?;
    let links = link::list(&mut ctx.host).map_err(nl_err(w, "list links"))?;
    let mut removed = Vec::new();
    for l in links
        .into_iter()
        .filter(|l| l.alias.as_deref() == Some(mark))
    {
        if !wanted(&mut ctx.host, &l) {
            continue;
        }
        match link::delete(&mut ctx.host, l.index) {
            // Gone meanwhile: the namespace teardown removed the pair.
            Err(e) if netlink::errno(&e) == Some(libc::ENODEV) => {}
            Err(e) => return Err(nl_err(w, format!("delete `{}`", l.name))(e)),
            Ok(()) => removed.push(l.name),
        }
    }
    Ok(removed)
}

/// How long a macvlan create waits for its MAC to be freed by a dying namespace.
const MAC_WAIT: Duration = Duration::from_secs(3);

/// Creates a macvlan inside the container. EADDRINUSE means a sibling on the
/// parent has the same MAC: after a quick recreate that is the previous
/// instance, whose namespace the kernel tears down asynchronously, so wait
/// for it briefly before blaming the manifest.
fn create_macvlan(
    ctx: &mut Ctx,
    w: &Who,
    peer: &NewLink,
    pidx: u32,
    pname: &str,
    mode: MacvlanMode,
) -> Result<(), NetError> {
    let start = Instant::now();
    loop {
        match ctx.host.create(link::macvlan_msg(peer, pidx, mode)) {
            Ok(()) => return Ok(()),
            Err(e) if netlink::errno(&e) == Some(libc::EADDRINUSE) => {
                if start.elapsed() > MAC_WAIT {
                    return Err(NetError::MacInUse {
                        who: w.clone(),
                        mac: peer.mac.map(|m| m.to_string()).unwrap_or_default(),
                        parent: pname.to_string(),
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return Err(create_err(
                    w,
                    Kind::Macvlan,
                    &peer.name,
                    Some(pname),
                    true,
                    e,
                ))
            }
        }
    }
}

/// Refuses an address the bridge itself (the host side) already holds.
fn check_bridge_addresses(
    ctx: &mut Ctx,
    w: &Who,
    br: &Link,
    att: &AttachmentSpec,
) -> Result<(), NetError> {
    if att.addresses.is_empty() {
        return Ok(());
    }
    let taken = addr::list(&mut ctx.host).map_err(nl_err(w, "list host addresses"))?;
    for cidr in &att.addresses {
        if taken
            .iter()
            .any(|(i, c)| *i == br.index && c.addr == cidr.addr)
        {
            return Err(NetError::AddressInUse {
                who: w.clone(),
                address: *cidr,
                bridge: br.name.clone(),
            });
        }
    }
    Ok(())
}
