//! Container networking over rtnetlink (no `ip` binary). The runtime calls
//! [`attach`] after clone and before the container runs, with the child's
//! pid or netns fd; `host::local` calls [`cleanup_stale`] before a (re)create
//! and [`detach`] after a stop; [`ensure_network`] prepares host-side objects
//! (created bridges, macvlan host links). Plain data in and out: the
//! [`Interface`] list that `attach` returns is what `berth status` shows.
//! `host_side` holds what is done in the host namespace, `container_side`
//! what is done inside the container's; each call rolls back what it created
//! when a later step fails.
//!
//! Lifecycle, designed around what the kernel does for free: a container's
//! end of a veth, and its macvlan/ipvlan, are created directly inside its
//! namespace, so when the namespace dies they die with it and the veth's host
//! end goes too. An explicit delete (14-25 ms per veth) is only needed for
//! what outlives the namespace: that is what `detach`/`cleanup_stale` find
//! by the `berth:<container>` IFLA_IFALIAS mark on host-side links.

pub mod addr;
pub mod codec;
mod container_side;
pub mod files;
mod host_side;
pub mod link;
pub mod names;
pub mod netlink;
pub mod reply;

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::model::{Cidr, Mac, NetworkSpec, Spec};

pub use container_side::{attach, observe};
pub use host_side::{cleanup_stale, detach, ensure_network, ensure_network_with, remove_network};

/// The network backend as `LocalHost` uses it, so the rollback tests can pass
/// a fake that fails a chosen step. [`RtNetlink`] is the real one.
pub trait Network {
    /// See [`ensure_network_with`].
    fn ensure_network(&self, net: &NetworkSpec, host_addresses: &[Cidr]) -> Result<(), NetError>;
    /// See [`attach`].
    fn attach(
        &self,
        spec: &Spec,
        networks: &BTreeMap<String, NetworkSpec>,
        ns: NetnsRef<'_>,
    ) -> Result<Vec<Interface>, NetError>;
    /// See [`detach`].
    fn detach(&self, container: &str) -> Result<Vec<String>, NetError>;
    /// See [`cleanup_stale`].
    fn cleanup_stale(&self, container: &str) -> Result<Vec<String>, NetError>;
    /// See [`remove_network`].
    fn remove_network(&self, network: &str) -> Result<Vec<String>, NetError>;
}

/// The real backend: rtnetlink in the calling thread's network namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct RtNetlink;

impl Network for RtNetlink {
    fn ensure_network(&self, net: &NetworkSpec, host_addresses: &[Cidr]) -> Result<(), NetError> {
        ensure_network_with(net, host_addresses)
    }
    fn attach(
        &self,
        spec: &Spec,
        networks: &BTreeMap<String, NetworkSpec>,
        ns: NetnsRef<'_>,
    ) -> Result<Vec<Interface>, NetError> {
        attach(spec, networks, ns)
    }
    fn detach(&self, container: &str) -> Result<Vec<String>, NetError> {
        detach(container)
    }
    fn cleanup_stale(&self, container: &str) -> Result<Vec<String>, NetError> {
        cleanup_stale(container)
    }
    fn remove_network(&self, network: &str) -> Result<Vec<String>, NetError> {
        remove_network(network)
    }
}

/// The container's network namespace, as the runtime holds it.
#[derive(Debug, Clone, Copy)]
pub enum NetnsRef<'a> {
    /// The container's init pid: `/proc/PID/ns/net` is opened.
    Pid(u32),
    /// An open netns fd (e.g. `/proc/PID/ns/net` opened by the runtime).
    Fd(BorrowedFd<'a>),
}

/// One interface berth made for a container, for state and `berth status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    /// The manifest network it belongs to.
    pub network: String,
    /// Name inside the container.
    pub name: String,
    /// `veth`, `macvlan`, `ipvlan` (or the live kind from [`observe`]).
    pub kind: String,
    /// The host end of a veth.
    pub host_name: Option<String>,
    /// The interface's Ethernet address (an ipvlan shares its parent's).
    pub mac: Option<Mac>,
    /// Static addresses set by berth (empty with `dhcp: true`).
    pub addresses: Vec<Cidr>,
    /// Addressing is left to the container's own DHCP client.
    pub dhcp: bool,
}

/// Who an error is about: the network, and the container when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The manifest network (`-` before one is known).
    pub network: String,
    /// The container, unless the error is about the network alone.
    pub container: Option<String>,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.container {
            Some(c) => write!(f, "container `{c}`, network `{}`", self.network),
            None => write!(f, "network `{}`", self.network),
        }
    }
}

/// Errors of the network backend. Each names the network, the container and the fix.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// An attachment names a network the manifest does not define.
    #[error(
        "container `{container}`: network `{network}` is not defined; add it under `networks:`"
    )]
    UnknownNetwork { container: String, network: String },
    /// An interface name the kernel would refuse.
    #[error("{who}: `{name}` is not a valid interface name; use 1-15 characters without `/`, `:` or spaces")]
    InvalidName { who: Who, name: String },
    /// The bridge does not exist and `create` is not set.
    #[error(
        "{who}: bridge `{bridge}` does not exist; create it on the host or set `create: true`"
    )]
    BridgeMissing { who: Who, bridge: String },
    /// The `bridge:` name is taken by a link of another kind.
    #[error("{who}: `{name}` exists but is not a bridge; pick another `bridge:` name")]
    NotABridge { who: Who, name: String },
    /// The macvlan/ipvlan parent does not exist.
    #[error("{who}: parent interface `{parent}` does not exist; check `parent:` (see `ip link`)")]
    ParentMissing { who: Who, parent: String },
    /// A host-side name is taken by a link berth did not mark as its own.
    #[error("{who}: interface `{name}` already exists on the host and was not created by berth (mark {mark}); rename or remove it", mark = .found.as_deref().unwrap_or("none"))]
    NameClash {
        who: Who,
        name: String,
        found: Option<String>,
    },
    /// The interface name is already used inside the container.
    #[error("{who}: interface `{name}` already exists inside the container; give each attachment its own `interface:`")]
    NameClashInside { who: Who, name: String },
    /// The address is already held by the bridge (the host side).
    #[error(
        "{who}: address `{address}` is already in use on bridge `{bridge}`; choose a free address"
    )]
    AddressInUse {
        who: Who,
        address: Cidr,
        bridge: String,
    },
    /// Another child of the parent has this MAC (and kept it past the wait).
    #[error("{who}: MAC `{mac}` is already used by another interface on `{parent}`; give each container its own `mac:`")]
    MacInUse {
        who: Who,
        mac: String,
        parent: String,
    },
    /// The parent refuses macvlan/ipvlan children.
    #[error("{who}: parent `{parent}` does not allow a {kind} child; use an Ethernet parent that is not a bridge port, `type: ipvlan`, or a single passthru child")]
    ParentRefused {
        who: Who,
        parent: String,
        kind: &'static str,
        source: io::Error,
    },
    /// The kernel has no driver for the link kind.
    #[error("{who}: the kernel has no `{module}` support; load it (`modprobe {module}`, on OpenWrt install kmod-{module})")]
    ModuleMissing { who: Who, module: &'static str },
    /// The container's netns could not be opened.
    #[error("open network namespace `{path}`")]
    OpenNetns { path: PathBuf, source: io::Error },
    /// Any other netlink failure, with the operation that failed.
    #[error("{who}: {op}")]
    Netlink {
        who: Who,
        op: String,
        source: io::Error,
    },
    /// A step failed and undoing an earlier step failed too.
    #[error("{}; and rolling back `{name}` failed too", crate::host::chain(cause.as_ref()))]
    Rollback {
        cause: Box<NetError>,
        name: String,
        source: io::Error,
    },
    /// Writing resolv.conf or hosts failed.
    #[error("write `{path}`")]
    WriteFile { path: PathBuf, source: io::Error },
}
