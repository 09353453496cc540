//! The container side of container networking: what berth does through a
//! netlink socket opened inside the container's namespace. [`attach`] walks
//! the attachments, has each link made from the host side, then sets the
//! container end up with its addresses and routes; [`observe`] lists what is
//! live there for `berth status`. Separate from `host_side` so each file
//! works in one namespace.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use super::host_side::{nl_err, who, Ctx, Plugged};
use super::link::{self, Change, NewLink};
use super::netlink::Netlink;
use super::{addr, names, Interface, NetError, NetnsRef, Who};
use crate::model::{AttachmentSpec, NetworkSpec, Spec};

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
    let Some(Plugged {
        kind,
        host_name,
        mac,
    }) = ctx.plug(&w, &spec.name, net, att, &peer)?
    else {
        return Ok(None);
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
        ctx.created_inside(inside.index, &att.interface);
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
