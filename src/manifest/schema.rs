//! The manifest as written: the serde model of schema version 1.
//!
//! Values that need checking (sizes, addresses, capability names...) are kept as
//! the strings the user wrote; `validate` turns them into typed values and reports
//! every problem with its position. Unknown fields are rejected here.
//! docs/manifest.md is the reference for every field.

use std::collections::BTreeMap;

use std::fmt;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// A whole manifest file, after template rendering.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Schema version; only 1 exists.
    pub version: u32,
    #[serde(default)]
    pub settings: Settings,
    /// Template variables; consumed by rendering, kept so `render` can show them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub images: BTreeMap<String, ImageDef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, ContainerFields>,
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkDef>,
    #[serde(default)]
    pub containers: BTreeMap<String, ContainerFields>,
}

/// Store and runtime locations and limits for this device.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Persistent store (images, containers, volumes). Not under /var on OpenWrt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// Runtime directory for pids, sockets and logs; tmpfs to spare the flash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_dir: Option<String>,
    /// Size at which a container's log file is rotated, e.g. `256K`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_size: Option<String>,
    /// Read-only directories searched for extracted images before fetching.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_dirs: Vec<String>,
    /// Largest unpacked image accepted, e.g. `2G`; stops tar bombs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_image_size: Option<String>,
    /// PEM bundle of the CAs trusted for https images (the fleet's own CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Deadline of an image download's connect and response head, e.g. `2m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_timeout: Option<String>,
    /// Lowest average image download rate per second accepted, e.g. `4K`; `0` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_min_rate: Option<String>,
    /// Run `berth image gc` after every apply that had no failure (small flash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc_after_apply: Option<bool>,
    /// How many containers `apply` starts (stops, removes) at once, e.g. `4`;
    /// `1` runs one step at a time. Default: the number of CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<String>,
}

/// Where an image's rootfs tarball comes from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageDef {
    /// A file on the device (absolute, or relative to the manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// An `http(s)://` or `file://` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// sha256 of the tarball as 64 hex digits; the image's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// An OCI registry reference, e.g. `ghcr.io/org/web:1.4`.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// With `ref`: `sha256:...` of the manifest or index it must resolve to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// With `ref`: speak plain http to this registry (a lab or loopback one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_http: Option<bool>,
    /// With `ref`: a file holding `USER:PASSWORD` for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// A network containers attach to.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    /// `bridge`, `macvlan`, `ipvlan`, `none` or `host`.
    #[serde(rename = "type")]
    pub kind: String,
    /// bridge: the bridge's interface name (default: the network's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// bridge: create the bridge when missing (default false: it must exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// Host-side addresses (CIDR): of a bridge berth creates, or of a macvlan
    /// network's host link.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub address: Vec<String>,
    /// macvlan, ipvlan: the parent interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// macvlan: bridge, private, vepa, passthru; ipvlan: l2, l3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// macvlan, ipvlan: 802.1Q VLAN id; berth creates `parent.vlan` as the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// macvlan: add a host-side macvlan so the router itself reaches the containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link: Option<bool>,
    /// MTU for interfaces berth creates on this network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

/// A container or a profile: everything is optional so profiles can merge.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContainerFields {
    /// Containers only: profiles merged under the container's own fields, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's default arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Full-OS container: run the image's init (`init`, default /sbin/init).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// `uid[:gid]` or a user name from the image's /etc/passwd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Start on `apply` (and so at boot). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart: Option<bool>,
    /// `never`, `on-failure` or `always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// e.g. `SIGTERM`, `TERM`, `PWR`, `RTMIN+3`; names only, since numbers differ per architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds (`10`) or a duration (`10s`, `2m`).
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<Namespaces>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Devices>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_search: Option<Vec<String>>,
    /// Writable layer on tmpfs: nothing the container writes reaches the flash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatile: Option<Volatile>,
    /// Read-only root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// `default` or `unconfined`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<String>,
    /// Resource limits by name (`nofile`), as `N` or `soft:hard`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rlimits: BTreeMap<String, String>,
    /// The health check: one of `exec`, `tcp` or `http`, and its timing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `health:` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// A command run inside the container: `[pgrep, dnsmasq]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    /// A port on the container's loopback to connect to.
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// Durations (`10s`, `2m`) and a count.
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub retries: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period: Option<String>,
}

/// `http: { port, path, status }`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<String>,
}

/// `volatile: true` (or `false`), or `volatile: { size: 32M }`: on, with
/// that bound on the tmpfs that holds the writable layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Volatile {
    /// `true` or `false`; on means the default size.
    On(bool),
    /// The map form.
    Sized(VolatileSize),
}

/// The map form of `volatile`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolatileSize {
    /// Bound of the tmpfs, e.g. `32M`.
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<String>,
}

impl Serialize for Volatile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Volatile::On(b) => s.serialize_bool(*b),
            Volatile::Sized(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Volatile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(VolatileVisitor)
    }
}

struct VolatileVisitor;

impl<'de> Visitor<'de> for VolatileVisitor {
    type Value = Volatile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("true, false or a map such as { size: 32M }")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Volatile::On(v))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        VolatileSize::deserialize(de::value::MapAccessDeserializer::new(map)).map(Volatile::Sized)
    }
}

/// Changes to the default capability set (the one Docker uses).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Added to the set; `all` for every capability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<String>,
    /// Removed from the set; `all` empties it before `keep` applies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// Namespace options. Mount, PID, UTS, IPC, network and cgroup namespaces are
/// always new unless listed in `host`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserNamespace>,
    /// A new time namespace (kernel 5.6 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<bool>,
    /// Namespaces shared with the host: `pid`, `ipc`, `uts`, `cgroup`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<String>,
}

/// A user namespace with its id mappings, as `inside outside count` lines.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserNamespace {
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub map: Vec<String>,
    /// Group mappings; default: the same as `map`.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub gid_map: Vec<String>,
}

/// cgroup limits; all change live without a restart.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Hard memory limit, e.g. `64M`.
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<String>,
    /// Memory protected from reclaim (v2 memory.low, v1 soft limit).
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_low: Option<String>,
    /// Swap allowed on top of `memory`; `0` for none.
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub swap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// Maximum number of tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<Cpuset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<Io>,
}

/// CPU share and cap.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// Relative weight 1..=10000 (cgroup v2 scale; 100 is the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
    /// Cap in CPUs, e.g. `0.5` or `2`.
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub max: Option<String>,
}

/// CPUs and memory nodes the container may use, in kernel list syntax (`0-1,3`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Cpuset {
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpus: Option<String>,
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub mems: Option<String>,
}

/// Block I/O share.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Io {
    /// Relative weight 1..=10000 (cgroup v2 scale; 100 is the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u64>,
}

/// Device cgroup rules as LXC writes them: `c 136:* rwm`, `b 8:0 r`, `a`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Devices {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// A filesystem mounted into the container.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// `bind`, `tmpfs` or `volume`.
    #[serde(rename = "type")]
    pub kind: String,
    /// bind: host path; volume: the volume's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Absolute path inside the container.
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// tmpfs: size limit, e.g. `4M`.
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<String>,
    /// tmpfs: octal mode of the mount's root, e.g. `1777`.
    #[serde(
        default,
        deserialize_with = "opt_scalar",
        skip_serializing_if = "Option::is_none"
    )]
    pub mode: Option<String>,
}

/// One network interface of a container.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// Name of a network under `networks:`.
    pub network: String,
    /// Interface name inside the container (default eth0, eth1, ... in order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Static addresses in CIDR form, IPv4 or IPv6.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub address: Vec<String>,
    /// IPv4 default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// IPv6 default gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<String>,
    /// Extra routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Fixed MAC; default: derived from container and network names, stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Leave addressing to the container's own DHCP client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<bool>,
}

/// A static route inside the container.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination in CIDR form.
    pub to: String,
    /// Next hop.
    pub via: String,
}

/// Accepts a string, a number or a bool as text: `memory: 64M` and `max: 0.5`
/// both arrive as strings, as written, for `validate` to parse with a position.
fn opt_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_option(Text("a single value such as 64M or 0.5, not a list or map"))
}

/// Accepts one string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(OneOrMany)
}

/// Visits a scalar as its text; `expecting` says what else was wanted.
struct Text(&'static str);

impl<'de> Visitor<'de> for Text {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
}

struct OneOrMany;

impl<'de> Visitor<'de> for OneOrMany {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(TextSeed)? {
            out.push(item);
        }
        Ok(out)
    }
}

/// One list item of [`OneOrMany`], read as its text.
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Ok(d.deserialize_str(Text("a string"))?.unwrap_or_default())
    }
}
