//! The resolved, typed desired state: what `plan` compares and the host backends
//! consume. Produced by `validate` from a rendered `Manifest` with profiles merged.
//! Everything here is plain data; nothing touches the host.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The default set, the one Docker grants.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
];

/// Everything the manifest asks for, resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    pub settings: SettingsSpec,
    pub images: BTreeMap<String, ImageSpec>,
    pub networks: BTreeMap<String, NetworkSpec>,
    pub containers: BTreeMap<String, Spec>,
}

impl Desired {
    /// Give each image without a digest the one `digest_of` finds, then each
    /// container without one its image's digest (part of its own digest).
    pub fn pin_images(&mut self, mut digest_of: impl FnMut(&ImageSpec) -> Option<String>) {
        for img in self.images.values_mut() {
            if img.sha256.is_none() {
                img.sha256 = digest_of(img);
            }
        }
        for spec in self.containers.values_mut() {
            if spec.image_sha256.is_none() {
                spec.image_sha256 = self.images.get(&spec.image).and_then(|i| i.sha256.clone());
            }
        }
    }

    /// The digest of each image that has one, by name.
    pub fn image_digests(&self) -> BTreeMap<String, String> {
        self.images
            .iter()
            .filter_map(|(n, i)| Some((n.clone(), i.sha256.clone()?)))
            .collect()
    }
}

/// Store locations and limits. `None` means "the command line or built-in default".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsSpec {
    pub root: Option<String>,
    pub runtime_dir: Option<String>,
    pub log_size: Option<u64>,
    pub image_dirs: Vec<String>,
    pub max_image_size: Option<u64>,
    /// PEM CA bundle for https images (not for the manifest itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    /// Deadline in seconds of an image download's connect and head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_timeout: Option<u32>,
    /// Minimum image download throughput, bytes per second; 0: no rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_min_rate: Option<u64>,
    /// `image gc` after every apply without failures.
    #[serde(default)]
    pub gc_after_apply: bool,
    /// Steps `apply` runs at once (independent containers); None: one per CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
}

/// An image: where to get it and, when known up front, its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub name: String,
    pub source: ImageSource,
    /// sha256 of the tarball (lowercase hex). Always set for URLs.
    pub sha256: Option<String>,
}

/// Where an image tarball comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageSource {
    /// A local file; relative paths are already joined to the manifest's directory.
    Path(String),
    /// An http, https or file URL.
    Url(String),
    /// An OCI registry (host/store/registry.rs); `sha256` is then the
    /// digest of the manifest or index the reference resolves to.
    Registry(RegistrySource),
}

/// An image in an OCI registry, as `images.NAME.ref` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySource {
    /// The reference, e.g. `ghcr.io/org/web:1.4`, as written.
    pub reference: String,
    /// Speak plain http to this registry (`plain_http: true`).
    #[serde(default)]
    pub plain_http: bool,
    /// A `USER:PASSWORD` file for the registry's login (`auth:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// A network as its containers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    pub kind: NetworkKind,
    pub mtu: Option<u32>,
}

/// The kinds of network and their settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum NetworkKind {
    /// Veth pairs plugged into a bridge, created when `create` and missing.
    Bridge {
        bridge: String,
        create: bool,
        address: Vec<Cidr>,
    },
    /// Macvlan children of `parent` (or of the VLAN `parent.vlan`). With
    /// `host_link`, a host-side macvlan with `host_address` lets the router
    /// reach its children, which a parent interface itself cannot.
    Macvlan {
        parent: String,
        mode: MacvlanMode,
        vlan: Option<u16>,
        host_link: bool,
        host_address: Vec<Cidr>,
    },
    /// Ipvlan children of `parent`, for parents that drop extra MAC addresses.
    Ipvlan {
        parent: String,
        mode: IpvlanMode,
        vlan: Option<u16>,
    },
    /// Loopback only.
    None,
    /// The host's own network namespace (explicit opt-in).
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    Bridge,
    Private,
    Vepa,
    Passthru,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanMode {
    L2,
    L3,
}

/// One container, resolved. Fields that need a recreate are covered by `digest`;
/// `resources`, `restart`, `autostart`, stop settings and `depends_on` change live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub name: String,
    /// Name of the image under `images:`.
    pub image: String,
    /// The image's sha256 when known; part of the digest.
    pub image_sha256: Option<String>,
    pub process: ProcessSpec,
    /// Capabilities the container keeps, as `CAP_*` names, sorted.
    pub capabilities: BTreeSet<String>,
    pub namespaces: NamespaceSpec,
    pub devices: Vec<DeviceRule>,
    pub mounts: Vec<MountSpec>,
    pub network: Vec<AttachmentSpec>,
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub volatile: bool,
    /// Bytes of the tmpfs holding a volatile writable layer (set when `volatile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatile_size: Option<u64>,
    pub readonly: bool,
    /// The default seccomp filter; false for `seccomp: unconfined`.
    pub seccomp: bool,
    // Live fields, outside the digest.
    pub resources: ResourceSpec,
    pub restart: RestartPolicy,
    pub autostart: bool,
    /// Signal name such as `SIGTERM` or `SIGRTMIN+3`; mapped per architecture at run time.
    pub stop_signal: String,
    pub stop_timeout_secs: u32,
    pub depends_on: Vec<String>,
    /// The health check; none: a running container counts as healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSpec>,
}

/// A container's health check: one probe, run by its monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    pub probe: Probe,
    /// Between the end of one probe and the start of the next.
    pub interval_secs: u32,
    /// A probe still running after this is killed and counts as failed.
    pub timeout_secs: u32,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
    /// After a start, failures do not count for this long (a success does).
    pub start_period_secs: u32,
}

/// What a health check runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// A command inside the container, as `berth exec` runs it; exit 0 is healthy.
    Exec(Vec<String>),
    /// A TCP connect to this port on the container's loopback.
    Tcp(u16),
    /// An HTTP GET on the container's loopback.
    Http(HttpProbe),
}

/// `http: { port, path, status }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpProbe {
    pub port: u16,
    pub path: String,
    /// The status wanted; none: any 2xx or 3xx.
    pub status: Option<u16>,
}

/// What runs inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Replaces the image's entrypoint when set.
    pub command: Option<Vec<String>>,
    /// Replaces the image's default arguments when set.
    pub args: Option<Vec<String>>,
    /// Full-OS container: `init` is PID 1.
    pub boot: bool,
    pub init: String,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub user: Option<User>,
    pub hostname: String,
    pub rlimits: Vec<Rlimit>,
}

/// A user given by ids or by a name to look up in the image's /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum User {
    Id { uid: u32, gid: Option<u32> },
    Name(String),
}

/// A resource limit by its lowercase name (`nofile`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub name: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Which namespaces are new and how a user namespace maps ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSpec {
    pub user: Option<IdMaps>,
    pub time: bool,
    /// Shared with the host instead of new.
    pub host: BTreeSet<HostNamespace>,
}

/// Namespaces that may be shared with the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostNamespace {
    Pid,
    Ipc,
    Uts,
    Cgroup,
}

/// uid and gid mappings of a user namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    pub uid: Vec<IdMap>,
    pub gid: Vec<IdMap>,
}

/// One line of /proc/PID/uid_map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A device cgroup rule, as LXC writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    /// `None` is `*`.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub read: bool,
    pub write: bool,
    pub mknod: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

/// A mount inside the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub kind: MountKind,
    pub target: String,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum MountKind {
    Bind {
        source: String,
    },
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
    /// A named volume under the store's volumes/ directory.
    Volume {
        name: String,
    },
}

/// One interface of a container on a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentSpec {
    pub network: String,
    pub interface: String,
    pub addresses: Vec<Cidr>,
    pub gateway: Option<IpAddr>,
    pub gateway6: Option<IpAddr>,
    pub routes: Vec<RouteSpec>,
    /// Given in the manifest; otherwise the network backend derives a stable one.
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub dhcp: bool,
}

impl AttachmentSpec {
    /// Interface `interface` on `network` with static `addresses` and nothing
    /// else set. For tools and tests that build a Spec by hand.
    pub fn new(network: &str, interface: &str, addresses: Vec<Cidr>) -> AttachmentSpec {
        AttachmentSpec {
            network: network.into(),
            interface: interface.into(),
            addresses,
            gateway: None,
            gateway6: None,
            routes: vec![],
            mac: None,
            mtu: None,
            dhcp: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    pub to: Cidr,
    pub via: IpAddr,
}

/// cgroup limits in kernel units. Applied live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSpec {
    pub memory: Option<u64>,
    pub memory_low: Option<u64>,
    pub swap: Option<u64>,
    /// cgroup v2 weight 1..=10000.
    pub cpu_weight: Option<u64>,
    pub cpu_max: Option<CpuMax>,
    pub pids: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// cgroup v2 weight 1..=10000.
    pub io_weight: Option<u64>,
}

/// CPU bandwidth: `quota_us` of every `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuMax {
    pub quota_us: u64,
    pub period_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
    /// As on-failure, and also when the health check turns unhealthy.
    OnUnhealthy,
}

/// An address with its prefix length, e.g. `192.168.1.50/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| "has no /prefix".to_string())?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("prefix `{prefix}` is not 0..={max}"))?;
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = [0u8; 6];
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err("needs six hex pairs".into());
        }
        for (byte, part) in out.iter_mut().zip(parts) {
            if part.len() != 2 {
                return Err(format!("`{part}` is not a hex pair"));
            }
            *byte =
                u8::from_str_radix(part, 16).map_err(|_| format!("`{part}` is not a hex pair"))?;
        }
        if out[0] & 1 == 1 {
            return Err("is a multicast address (lowest bit of the first byte set)".into());
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Cidr and Mac travel as their text form in JSON and state files.
macro_rules! serde_as_text {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_text!(Cidr);
serde_as_text!(Mac);

/// The stop signal of a full-OS container unless the manifest sets one:
/// busybox init and procd power off on it. (berth sends systemd SIGRTMIN+3.)
pub const BOOT_STOP_SIGNAL: &str = "SIGPWR";

/// The part of a Spec whose change needs a recreate.
#[derive(Serialize)]
struct RecreateFields<'a> {
    image: &'a str,
    image_sha256: &'a Option<String>,
    process: &'a ProcessSpec,
    capabilities: &'a BTreeSet<String>,
    namespaces: &'a NamespaceSpec,
    devices: &'a [DeviceRule],
    mounts: &'a [MountSpec],
    network: &'a [AttachmentSpec],
    networks: Vec<&'a NetworkSpec>,
    dns: &'a [IpAddr],
    dns_search: &'a [String],
    volatile: bool,
    // Absent for a container that is not volatile: its digest stays as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    volatile_size: Option<u64>,
    readonly: bool,
    seccomp: bool,
    // The monitor runs the probe: a change starts it afresh. Absent without
    // a health check, so digests from before health checks stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    health: &'a Option<HealthSpec>,
}

impl Spec {
    /// A container with the defaults validation gives a manifest entry that
    /// names only an image and a command: the default capability set, new
    /// namespaces, no network, no limits. For tools and tests that build a
    /// Spec by hand.
    pub fn new(name: &str, image: &str, command: Option<Vec<String>>) -> Spec {
        Spec {
            name: name.into(),
            image: image.into(),
            image_sha256: None,
            process: ProcessSpec {
                command,
                args: None,
                boot: false,
                init: "/sbin/init".into(),
                env: BTreeMap::new(),
                workdir: None,
                user: None,
                hostname: name.into(),
                rlimits: Vec::new(),
            },
            capabilities: DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            namespaces: NamespaceSpec::default(),
            devices: Vec::new(),
            mounts: Vec::new(),
            network: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
            volatile: false,
            volatile_size: None,
            readonly: false,
            seccomp: true,
            resources: ResourceSpec::default(),
            restart: RestartPolicy::Never,
            autostart: true,
            stop_signal: "SIGTERM".into(),
            stop_timeout_secs: 10,
            depends_on: Vec::new(),
            health: None,
        }
    }

    /// sha256 (hex) over every field that needs a recreate, including the
    /// definitions of the networks the container attaches to.
    pub fn digest(&self, networks: &BTreeMap<String, NetworkSpec>) -> String {
        let view = RecreateFields {
            image: &self.image,
            image_sha256: &self.image_sha256,
            process: &self.process,
            capabilities: &self.capabilities,
            namespaces: &self.namespaces,
            devices: &self.devices,
            mounts: &self.mounts,
            network: &self.network,
            networks: self
                .network
                .iter()
                .filter_map(|a| networks.get(&a.network))
                .collect(),
            dns: &self.dns,
            dns_search: &self.dns_search,
            volatile: self.volatile,
            volatile_size: self.volatile_size,
            readonly: self.readonly,
            seccomp: self.seccomp,
            health: &self.health,
        };
        // Serializing plain data with string keys cannot fail; fall back to the
        // debug form rather than panic so a digest always exists.
        let bytes = serde_json::to_vec(&view).unwrap_or_else(|_| format!("{self:?}").into_bytes());
        hex(&Sha256::digest(bytes))
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
