//! The operations the runtime and `exec` call: attach a container's
//! interfaces, detach them, clean up after a crash, prepare and remove
//! network-level host objects. Each call rolls back what it created itself
//! when a later step fails, so an error leaves nothing half-made.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::link::{self, Change, Kind, Link, NewLink};
use super::netlink::{self, Netlink};
use super::{addr, names, Interface, NetError, NetnsRef, Who};
use crate::model::{AttachmentSpec, Cidr, MacvlanMode, NetworkKind, NetworkSpec, Spec};

/// Something this call created, to delete again if a later step fails.
enum Undo {
    /// A link in the host namespace (deleting a veth end removes its peer).
    Host(u32, String),
    /// A link inside the container's namespace.
    Container(u32, String),
}

/// Host and container netlink handles plus the undo log of one call.
struct Ctx {
    host: Netlink,
    undo: Vec<Undo>,
}

fn who(network: &str, container: Option<&str>) -> Who {
    Who {
        network: network.to_string(),
        container: container.map(str::to_string),
    }
}

fn nl_err(who: &Who, op: impl Into<String>) -> impl FnOnce(io::Error) -> NetError + '_ {
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
    fn new() -> Result<Ctx, NetError> {
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
    fn rollback(&mut self, cont: Option<&mut Netlink>, cause: NetError) -> NetError {
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
}

fn open_ns(ns: NetnsRef<'_>) -> Result<(Option<File>, i32), NetError> {
    match ns {
        NetnsRef::Fd(fd) => Ok((None, fd.as_raw_fd())),
        NetnsRef::Pid(pid) => {
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            let f = File::open(&path).map_err(|source| NetError::OpenNetns { path, source })?;
            let raw = f.as_raw_fd();
            Ok((Some(f), raw))
        }
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

/// Plugs the container into every network of `spec.network`, inside the
/// namespace `ns`: loopback up, then per attachment the link (veth on a
/// bridge, macvlan, ipvlan), its MAC, MTU, addresses and routes. Returns the
/// interfaces made. On error everything this call created is removed again.
pub fn attach(
    spec: &Spec,
    networks: &BTreeMap<String, NetworkSpec>,
    ns: NetnsRef<'_>,
) -> Result<Vec<Interface>, NetError> {
    let (_file, raw) = open_ns(ns)?;
    let mut ctx = Ctx::new()?;
    let any = who("-", Some(&spec.name));
    // SAFETY: `raw` is either the caller's BorrowedFd or `_file`, both alive
    // until this function returns.
    let ns_fd = unsafe { BorrowedFd::borrow_raw(raw) };
    let mut cont = Netlink::open_in(ns_fd.as_fd())
        .map_err(nl_err(&any, "open netlink in the container netns"))?;
    let mut out = Vec::new();
    for att in &spec.network {
        match attach_one(&mut ctx, &mut cont, spec, networks, att, raw) {
            Ok(Some(iface)) => out.push(iface),
            Ok(None) => {}
            Err(e) => return Err(ctx.rollback(Some(&mut cont), e)),
        }
    }
    // Loopback last: nothing to undo if it fails, and none-networks need it too.
    let lo = link::find(&mut cont, "lo").map_err(nl_err(&any, "look up `lo`"));
    let up = lo.and_then(|l| match l {
        Some(l) if !l.up => {
            link::set(&mut cont, l.index, &Change::Up).map_err(nl_err(&any, "set `lo` up"))
        }
        _ => Ok(()),
    });
    match up {
        Ok(()) => Ok(out),
        Err(e) => Err(ctx.rollback(Some(&mut cont), e)),
    }
}

fn attach_one(
    ctx: &mut Ctx,
    cont: &mut Netlink,
    spec: &Spec,
    networks: &BTreeMap<String, NetworkSpec>,
    att: &AttachmentSpec,
    ns_raw: i32,
) -> Result<Option<Interface>, NetError> {
    let net = networks
        .get(&att.network)
        .ok_or_else(|| NetError::UnknownNetwork {
            container: spec.name.clone(),
            network: att.network.clone(),
        })?;
    let w = who(&net.name, Some(&spec.name));
    if !names::valid_ifname(&att.interface) {
        return Err(NetError::InvalidName {
            who: w,
            name: att.interface.clone(),
        });
    }
    let mtu = att.mtu.or(net.mtu);
    let mac = att.mac.unwrap_or_else(|| names::mac(&spec.name, &net.name));
    let peer = NewLink {
        name: att.interface.clone(),
        mac: Some(mac),
        mtu,
        up: true,
        netns_fd: Some(ns_raw),
    };
    let (kind, host_name, mac) = match &net.kind {
        NetworkKind::None | NetworkKind::Host => return Ok(None),
        NetworkKind::Bridge { bridge, .. } => {
            ctx.ensure(net, &[], Some(&spec.name))?;
            let br = ctx
                .find(&w, bridge)?
                .ok_or_else(|| NetError::BridgeMissing {
                    who: w.clone(),
                    bridge: bridge.clone(),
                })?;
            check_bridge_addresses(ctx, &w, &br, att)?;
            let host_name = names::host_veth(&spec.name, &net.name, &att.interface);
            let mark = names::container_mark(&spec.name);
            if let Some(old) = ctx.find(&w, &host_name)? {
                if old.alias.as_deref() != Some(mark.as_str()) {
                    return Err(NetError::NameClash {
                        who: w,
                        name: host_name,
                        found: old.alias,
                    });
                }
                // Our own leftover from a crash: replace it.
                match link::delete(&mut ctx.host, old.index) {
                    // Vanished meanwhile: its namespace was being torn down.
                    Err(e) if netlink::errno(&e) == Some(libc::ENODEV) => {}
                    r => r.map_err(nl_err(&w, format!("delete stale `{host_name}`")))?,
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
            ctx.host.create(msg).map_err(|e| {
                // EEXIST here is the peer's name inside the container: the host
                // name was checked free just above.
                create_err(&w, Kind::Veth, &att.interface, None, true, e)
            })?;
            ctx.marked(&w, &host_name, mark)?;
            ("veth", Some(host_name), Some(mac))
        }
        NetworkKind::Macvlan {
            parent, mode, vlan, ..
        } => {
            ctx.ensure(net, &[], Some(&spec.name))?;
            let (pidx, pname) = ctx.parent(&w, parent, *vlan)?;
            create_macvlan(ctx, &w, &peer, pidx, &pname, *mode)?;
            ("macvlan", None, Some(mac))
        }
        NetworkKind::Ipvlan { parent, mode, vlan } => {
            let (pidx, pname) = ctx.parent(&w, parent, *vlan)?;
            let msg = link::ipvlan_msg(&peer, pidx, *mode);
            ctx.host
                .create(msg)
                .map_err(|e| create_err(&w, Kind::Ipvlan, &att.interface, Some(&pname), true, e))?;
            ("ipvlan", None, None)
        }
    };
    // The container end: find its index there, log it, then address it.
    let inside = link::find(cont, &att.interface)
        .map_err(nl_err(
            &w,
            format!("look up `{}` in the container", att.interface),
        ))?
        .ok_or_else(|| NetError::Netlink {
            who: w.clone(),
            op: format!("find `{}` in the container", att.interface),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })?;
    if host_name.is_none() {
        ctx.undo
            .push(Undo::Container(inside.index, att.interface.clone()));
    } else {
        link::set(cont, inside.index, &Change::Up)
            .map_err(nl_err(&w, format!("set `{}` up", att.interface)))?;
    }
    configure_inside(cont, &w, inside.index, att)?;
    Ok(Some(Interface {
        network: net.name.clone(),
        name: att.interface.clone(),
        kind: kind.to_string(),
        host_name,
        mac: if kind == "ipvlan" { inside.mac } else { mac },
        addresses: att.addresses.clone(),
        dhcp: att.dhcp,
    }))
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

fn configure_inside(
    cont: &mut Netlink,
    w: &Who,
    index: u32,
    att: &AttachmentSpec,
) -> Result<(), NetError> {
    for cidr in &att.addresses {
        addr::add(cont, index, cidr).map_err(nl_err(
            w,
            format!("add address `{cidr}` to `{}`", att.interface),
        ))?;
    }
    let gateways = [att.gateway, att.gateway6];
    for gw in gateways.iter().flatten() {
        addr::add_route(cont, index, None, *gw)
            .map_err(nl_err(w, format!("add default route via `{gw}`")))?;
    }
    for r in &att.routes {
        let via: IpAddr = r.via;
        addr::add_route(cont, index, Some(&r.to), via)
            .map_err(nl_err(w, format!("add route `{}` via `{via}`", r.to)))?;
    }
    Ok(())
}

/// The interfaces live inside a container's namespace, with their addresses
/// (loopback left out), for `berth status`. `network` is left empty: the
/// caller joins it with the [`Interface`] list that `attach` returned.
pub fn observe(ns: NetnsRef<'_>) -> Result<Vec<Interface>, NetError> {
    let (_file, raw) = open_ns(ns)?;
    let w = who("-", None);
    // SAFETY: as in `attach`: the fd outlives this function's use of it.
    let ns_fd = unsafe { BorrowedFd::borrow_raw(raw) };
    let mut nl =
        Netlink::open_in(ns_fd).map_err(nl_err(&w, "open netlink in the container netns"))?;
    let links = link::list(&mut nl).map_err(nl_err(&w, "list links"))?;
    let addrs = addr::list(&mut nl).map_err(nl_err(&w, "list addresses"))?;
    Ok(links
        .into_iter()
        .filter(|l| l.name != "lo")
        .map(|l| Interface {
            network: String::new(),
            kind: l.kind.clone().unwrap_or_else(|| "device".into()),
            host_name: None,
            mac: l.mac,
            addresses: addrs
                .iter()
                .filter(|(i, _)| *i == l.index)
                .map(|(_, c)| *c)
                .collect(),
            dhcp: false,
            name: l.name,
        })
        .collect())
}
