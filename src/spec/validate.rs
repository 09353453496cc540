//! Validation: turns a parsed `Manifest` into the typed `Desired`, collecting
//! every error at once, each with its line, column, field path and fix.
//!
//! A value that came from a profile is reported where the profile wrote it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use crate::spec::manifest::{Attachment, ContainerFields, Manifest, Mount, NetworkDef};
use crate::spec::pos::PosIndex;
use crate::spec::profile::merge;
use crate::spec::types::*;
use crate::spec::units::{self, CapName};
use crate::spec::{Diagnostic, SpecError};

/// Container names: used in paths, cgroup names and (hashed) interface names.
const CONTAINER_NAME_MAX: usize = 32;
/// Network names may become a bridge's interface name.
const NETWORK_NAME_MAX: usize = 15;

/// Validate `manifest` (parsed from `text`, named `file`) into `Desired`.
pub fn validate(
    file: &str,
    text: &str,
    manifest: &Manifest,
    base_dir: &str,
) -> Result<Desired, SpecError> {
    let pos = PosIndex::build(text);
    let mut v = Validator {
        file,
        pos: &pos,
        diags: Vec::new(),
        seen: HashSet::new(),
        profiles_of: None,
    };
    let desired = v.manifest(manifest, base_dir);
    if v.diags.is_empty() {
        Ok(desired)
    } else {
        v.diags.sort_by_key(|d| (d.line, d.col));
        Err(SpecError::Invalid(v.diags))
    }
}

struct Validator<'a> {
    file: &'a str,
    pos: &'a PosIndex,
    diags: Vec<Diagnostic>,
    seen: HashSet<(usize, usize, String)>,
    /// While checking a container: its path prefix and profiles, so a value
    /// inherited from a profile is located in that profile.
    profiles_of: Option<(String, Vec<String>)>,
}

impl Validator<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        let message = message.into();
        let (shown, pos) = self.locate(path);
        let (line, col) = pos.map_or((1, 1), |p| (p.line, p.col));
        if self.seen.insert((line, col, message.clone())) {
            self.diags.push(Diagnostic {
                file: self.file.to_string(),
                line,
                col,
                path: shown,
                message,
            });
        }
    }

    fn locate(&self, path: &str) -> (String, Option<crate::spec::pos::Pos>) {
        if let Some(p) = self.pos.exact(path) {
            return (path.to_string(), Some(p));
        }
        if let Some((prefix, profiles)) = &self.profiles_of {
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                for profile in profiles.iter().rev() {
                    let alt = format!("profiles.{profile}{rest}");
                    if let Some(p) = self.pos.exact(&alt) {
                        return (alt, Some(p));
                    }
                }
            }
        }
        (path.to_string(), self.pos.find(path).map(|(p, _)| p))
    }

    /// Run a parser on an optional value, reporting its error at `path`.
    fn check<T>(
        &mut self,
        path: &str,
        value: Option<&str>,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match f(value?) {
            Ok(v) => Some(v),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    fn manifest(&mut self, m: &Manifest, base_dir: &str) -> Desired {
        if m.version != 1 {
            self.err(
                "version",
                format!(
                    "version {} is not supported; this berth reads version 1",
                    m.version
                ),
            );
        }
        let settings = self.settings(m);
        let images = m
            .images
            .iter()
            .map(|(n, d)| (n.clone(), self.image(n, d, base_dir)))
            .collect();
        let networks: BTreeMap<String, NetworkSpec> = m
            .networks
            .iter()
            .filter_map(|(n, d)| Some((n.clone(), self.network(n, d)?)))
            .collect();

        for (name, fields) in &m.profiles {
            let path = format!("profiles.{name}");
            self.name_at(&path, name, "profile", CONTAINER_NAME_MAX);
            if !fields.profiles.is_empty() {
                self.err(
                    &format!("{path}.profiles"),
                    "profiles cannot list other profiles; list them all on the container",
                );
            }
            self.container(&path, name, fields, m, &networks, true);
        }
        let mut containers = BTreeMap::new();
        for (name, own) in &m.containers {
            let path = format!("containers.{name}");
            self.name_at(&path, name, "container", CONTAINER_NAME_MAX);
            let mut merged = ContainerFields::default();
            for (i, p) in own.profiles.iter().enumerate() {
                match m.profiles.get(p) {
                    Some(profile) => merged = merge(&merged, profile),
                    None => self.err(
                        &format!("{path}.profiles[{i}]"),
                        unknown("profile", p, m.profiles.keys()),
                    ),
                }
            }
            let merged = merge(&merged, own);
            self.profiles_of = Some((path.clone(), own.profiles.clone()));
            let spec = self.container(&path, name, &merged, m, &networks, false);
            self.profiles_of = None;
            if let Some(spec) = spec {
                containers.insert(name.clone(), spec);
            }
        }
        self.dependency_cycles(m);
        Desired {
            settings,
            images,
            networks,
            containers,
        }
    }

    fn name_at(&mut self, path: &str, name: &str, what: &str, max: usize) {
        if let Err(e) = units::name(name, what, max) {
            self.err(path, e);
        }
    }

    fn settings(&mut self, m: &Manifest) -> SettingsSpec {
        let s = &m.settings;
        for (field, value) in [("root", &s.root), ("runtime_dir", &s.runtime_dir)] {
            self.check(
                &format!("settings.{field}"),
                value.as_deref(),
                units::abs_path,
            );
        }
        for (i, dir) in s.image_dirs.iter().enumerate() {
            self.check(
                &format!("settings.image_dirs[{i}]"),
                Some(dir),
                units::abs_path,
            );
        }
        SettingsSpec {
            root: s.root.clone(),
            runtime_dir: s.runtime_dir.clone(),
            log_size: self.check("settings.log_size", s.log_size.as_deref(), units::size),
            image_dirs: s.image_dirs.clone(),
            max_image_size: self.check(
                "settings.max_image_size",
                s.max_image_size.as_deref(),
                units::size,
            ),
        }
    }

    fn image(
        &mut self,
        name: &str,
        d: &crate::spec::manifest::ImageDef,
        base_dir: &str,
    ) -> ImageSpec {
        let path = format!("images.{name}");
        self.name_at(&path, name, "image", 64);
        let sha256 = d.sha256.as_ref().and_then(|s| {
            let lower = s.to_ascii_lowercase();
            if lower.len() == 64 && lower.chars().all(|c| c.is_ascii_hexdigit()) {
                Some(lower)
            } else {
                self.err(
                    &format!("{path}.sha256"),
                    format!(
                        "\"{s}\" is not a sha256; give the 64 hex digits `sha256sum FILE` prints"
                    ),
                );
                None
            }
        });
        let source = match (&d.path, &d.url) {
            (Some(p), None) if p.starts_with('/') => ImageSource::Path(p.clone()),
            (Some(p), None) => ImageSource::Path(format!("{}/{p}", base_dir.trim_end_matches('/'))),
            (None, Some(u)) => {
                let scheme_ok = ["http://", "https://", "file://"]
                    .iter()
                    .any(|s| u.starts_with(s));
                if !scheme_ok {
                    self.err(
                        &format!("{path}.url"),
                        format!("\"{u}\" is not an http://, https:// or file:// URL"),
                    );
                }
                if d.sha256.is_none() && !u.starts_with("file://") {
                    self.err(&path, format!("image `{name}` has a URL but no sha256; add `sha256:` (the output of `sha256sum` on the tarball)"));
                }
                ImageSource::Url(u.clone())
            }
            (Some(_), Some(_)) => {
                self.err(
                    &format!("{path}.url"),
                    "an image has either `path` or `url`, not both",
                );
                ImageSource::Url(String::new())
            }
            (None, None) => {
                self.err(&path, format!("image `{name}` needs a `path` or a `url`"));
                ImageSource::Path(String::new())
            }
        };
        ImageSpec {
            name: name.to_string(),
            source,
            sha256,
        }
    }

    fn network(&mut self, name: &str, d: &NetworkDef) -> Option<NetworkSpec> {
        let path = format!("networks.{name}");
        self.name_at(&path, name, "network", NETWORK_NAME_MAX);
        let f = |field: &str| format!("{path}.{field}");
        // Fields that only some kinds take.
        let only = |v: &mut Self, field: &str, set: bool, kinds: &str| {
            if set {
                v.err(
                    &f(field),
                    format!(
                        "`{field}` does not apply to a {} network; it is for {kinds}",
                        d.kind
                    ),
                );
            }
        };
        let is = |k: &str| d.kind == k;
        only(
            self,
            "bridge",
            d.bridge.is_some() && !is("bridge"),
            "bridge networks",
        );
        only(
            self,
            "create",
            d.create.is_some() && !is("bridge"),
            "bridge networks",
        );
        only(
            self,
            "address",
            !d.address.is_empty() && !is("bridge"),
            "bridge networks with `create: true`",
        );
        only(
            self,
            "parent",
            d.parent.is_some() && !is("macvlan") && !is("ipvlan"),
            "macvlan and ipvlan networks",
        );
        only(
            self,
            "mode",
            d.mode.is_some() && !is("macvlan") && !is("ipvlan"),
            "macvlan and ipvlan networks",
        );
        only(
            self,
            "vlan",
            d.vlan.is_some() && !is("macvlan") && !is("ipvlan"),
            "macvlan and ipvlan networks",
        );
        only(
            self,
            "host_link",
            d.host_link.is_some() && !is("macvlan"),
            "macvlan networks",
        );
        if let Some(mtu) = d.mtu {
            if !(68..=65535).contains(&mtu) {
                self.err(&f("mtu"), format!("MTU {mtu} is outside 68..=65535"));
            }
        }
        if let Some(vlan) = d.vlan {
            if !(1..=4094).contains(&vlan) {
                self.err(&f("vlan"), format!("VLAN id {vlan} is outside 1..=4094"));
            }
        }
        let parent = || d.parent.clone().unwrap_or_default();
        if (is("macvlan") || is("ipvlan")) && d.parent.is_none() {
            self.err(
                &path,
                format!(
                    "a {} network needs `parent:`, the host interface it hangs off (e.g. eth1)",
                    d.kind
                ),
            );
        }
        if let Some(p) = &d.parent {
            self.check(&f("parent"), Some(p), units::ifname);
        }
        let kind = match d.kind.as_str() {
            "bridge" => {
                let bridge = d.bridge.clone().unwrap_or_else(|| name.to_string());
                if let Err(e) = units::ifname(&bridge) {
                    self.err(&f("bridge"), e);
                }
                let address = d
                    .address
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| self.cidr(&format!("{}[{i}]", f("address")), a))
                    .collect::<Vec<_>>();
                if !address.is_empty() && d.create != Some(true) {
                    self.err(&f("address"), "`address` sets the address of a bridge berth creates; add `create: true` or drop it");
                }
                NetworkKind::Bridge {
                    bridge,
                    create: d.create.unwrap_or(false),
                    address,
                }
            }
            "macvlan" => {
                let mode = match d.mode.as_deref().unwrap_or("bridge") {
                    "bridge" => MacvlanMode::Bridge,
                    "private" => MacvlanMode::Private,
                    "vepa" => MacvlanMode::Vepa,
                    "passthru" => MacvlanMode::Passthru,
                    other => {
                        self.err(&f("mode"), format!("\"{other}\" is not a macvlan mode; use bridge, private, vepa or passthru"));
                        MacvlanMode::Bridge
                    }
                };
                NetworkKind::Macvlan {
                    parent: parent(),
                    mode,
                    vlan: d.vlan,
                    host_link: d.host_link.unwrap_or(false),
                }
            }
            "ipvlan" => {
                let mode = match d.mode.as_deref().unwrap_or("l2") {
                    "l2" => IpvlanMode::L2,
                    "l3" => IpvlanMode::L3,
                    other => {
                        self.err(
                            &f("mode"),
                            format!("\"{other}\" is not an ipvlan mode; use l2 or l3"),
                        );
                        IpvlanMode::L2
                    }
                };
                NetworkKind::Ipvlan {
                    parent: parent(),
                    mode,
                    vlan: d.vlan,
                }
            }
            "none" => NetworkKind::None,
            "host" => NetworkKind::Host,
            other => {
                self.err(&f("type"), format!("\"{other}\" is not a network type; use bridge, macvlan, ipvlan, none or host"));
                return None;
            }
        };
        Some(NetworkSpec {
            name: name.to_string(),
            kind,
            mtu: d.mtu,
        })
    }

    fn cidr(&mut self, path: &str, text: &str) -> Option<Cidr> {
        self.check(path, Some(text), |t| {
            t.parse::<Cidr>().map_err(|e| format!("\"{t}\" is not an address in CIDR form ({e}); use e.g. 192.168.1.50/24 or fd00::50/64"))
        })
    }

    fn ip(&mut self, path: &str, text: Option<&str>, v4: Option<bool>) -> Option<IpAddr> {
        self.check(path, text, |t| {
            let ip: IpAddr = t
                .parse()
                .map_err(|_| format!("\"{t}\" is not an IP address; use e.g. 192.168.1.1"))?;
            match v4 {
                Some(true) if !ip.is_ipv4() => Err(format!(
                    "\"{t}\" is not IPv4; put IPv6 gateways in `gateway6`"
                )),
                Some(false) if ip.is_ipv4() => Err(format!(
                    "\"{t}\" is not IPv6; put IPv4 gateways in `gateway`"
                )),
                _ => Ok(ip),
            }
        })
    }

    /// Check one container (or, with `profile`, one profile's fields alone).
    fn container(
        &mut self,
        path: &str,
        name: &str,
        c: &ContainerFields,
        m: &Manifest,
        networks: &BTreeMap<String, NetworkSpec>,
        profile: bool,
    ) -> Option<Spec> {
        let f = |field: &str| format!("{path}.{field}");
        let before = self.diags.len();

        if !profile {
            match &c.image {
                None => self.err(
                    path,
                    format!("container `{name}` has no `image`; name one from `images:`"),
                ),
                Some(i) if !m.images.contains_key(i) => {
                    self.err(&f("image"), unknown("image", i, m.images.keys()))
                }
                Some(_) => {}
            }
            for (i, dep) in c.depends_on.iter().enumerate() {
                if dep == name {
                    self.err(
                        &format!("{}[{i}]", f("depends_on")),
                        "a container cannot depend on itself",
                    );
                } else if !m.containers.contains_key(dep) {
                    self.err(
                        &format!("{}[{i}]", f("depends_on")),
                        unknown("container", dep, m.containers.keys()),
                    );
                }
            }
        }
        let boot = c.boot.unwrap_or(false);
        if boot && c.command.is_some() {
            self.err(&f("command"), "`boot: true` runs the image's init; drop `command` (set `init:` to run another init)");
        }
        if c.init.is_some() && !boot {
            self.err(
                &f("init"),
                "`init` applies to full-OS containers; add `boot: true` or drop it",
            );
        }
        if let Some(init) = &c.init {
            self.check(&f("init"), Some(init), units::abs_path);
        }
        if let Some(cmd) = &c.command {
            if cmd.is_empty() {
                self.err(
                    &f("command"),
                    "`command` is empty; give the program and its arguments, e.g. [httpd, -f]",
                );
            }
        }
        for key in c.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                self.err(
                    &format!("{}.{key}", f("env")),
                    format!("\"{key}\" is not a valid environment variable name"),
                );
            }
        }
        if let Some(w) = &c.workdir {
            self.check(&f("workdir"), Some(w), units::abs_path);
        }
        let user = self.check(&f("user"), c.user.as_deref(), parse_user);
        if let Some(h) = &c.hostname {
            self.check(&f("hostname"), Some(h), units::hostname);
        }
        let restart = self.check(&f("restart"), c.restart.as_deref(), |r| match r {
            "never" | "no" => Ok(RestartPolicy::Never),
            "on-failure" => Ok(RestartPolicy::OnFailure),
            "always" => Ok(RestartPolicy::Always),
            other => Err(format!(
                "\"{other}\" is not a restart policy; use never, on-failure or always"
            )),
        });
        let stop_signal = self.check(&f("stop_signal"), c.stop_signal.as_deref(), units::signal);
        let stop_timeout = self.check(
            &f("stop_timeout"),
            c.stop_timeout.as_deref(),
            units::duration_secs,
        );
        let seccomp = self.check(&f("seccomp"), c.seccomp.as_deref(), |s| match s {
            "default" => Ok(true),
            "unconfined" => Ok(false),
            other => Err(format!(
                "\"{other}\" is not a seccomp setting; use default or unconfined"
            )),
        });

        let capabilities = self.capabilities(&f("capabilities"), c);
        let namespaces = self.namespaces(&f("namespaces"), c);
        let resources = self.resources(&f("resources"), c);
        let devices = self.devices(&f("devices"), c);
        let mounts = self.mounts(&f("mounts"), &c.mounts);
        let network = self.attachments(&f("network"), &c.network, m, networks, profile);
        let dns = c
            .dns
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, d)| self.ip(&format!("{}[{i}]", f("dns")), Some(d), None))
            .collect();
        for (i, d) in c.dns_search.iter().flatten().enumerate() {
            self.check(
                &format!("{}[{i}]", f("dns_search")),
                Some(d),
                units::hostname,
            );
        }
        let mut rlimits = Vec::new();
        for (key, value) in &c.rlimits {
            let p = format!("{}.{key}", f("rlimits"));
            if !units::RLIMITS.contains(&key.as_str()) {
                self.err(
                    &p,
                    format!(
                        "\"{key}\" is not a resource limit; use one of {}",
                        units::RLIMITS.join(", ")
                    ),
                );
            } else if let Some((soft, hard)) = self.check(&p, Some(value), units::rlimit_value) {
                rlimits.push(Rlimit {
                    name: key.clone(),
                    soft,
                    hard,
                });
            }
        }

        if profile || self.diags.len() > before {
            return None;
        }
        Some(Spec {
            name: name.to_string(),
            image: c.image.clone().unwrap_or_default(),
            image_sha256: c
                .image
                .as_ref()
                .and_then(|i| m.images.get(i))
                .and_then(|i| i.sha256.as_ref())
                .map(|s| s.to_ascii_lowercase()),
            process: ProcessSpec {
                command: c.command.clone(),
                args: c.args.clone(),
                boot,
                init: c.init.clone().unwrap_or_else(|| "/sbin/init".into()),
                env: c.env.clone(),
                workdir: c.workdir.clone(),
                user,
                hostname: c.hostname.clone().unwrap_or_else(|| name.to_string()),
                rlimits,
            },
            capabilities,
            namespaces,
            devices,
            mounts,
            network,
            dns,
            dns_search: c.dns_search.clone().unwrap_or_default(),
            volatile: c.volatile.unwrap_or(false),
            readonly: c.readonly.unwrap_or(false),
            seccomp: seccomp.unwrap_or(true),
            resources,
            restart: restart.unwrap_or(RestartPolicy::Never),
            autostart: c.autostart.unwrap_or(true),
            // busybox init and procd power off on SIGPWR; systemd wants SIGRTMIN+3.
            stop_signal: stop_signal.unwrap_or_else(|| {
                if boot {
                    "SIGPWR".into()
                } else {
                    "SIGTERM".into()
                }
            }),
            stop_timeout_secs: stop_timeout.unwrap_or(10),
            depends_on: c.depends_on.clone(),
        })
    }

    fn capabilities(&mut self, path: &str, c: &ContainerFields) -> BTreeSet<String> {
        let mut set: BTreeSet<String> = units::DEFAULT_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let Some(caps) = &c.capabilities else {
            return set;
        };
        let parse = |v: &mut Self, list: &[String], field: &str| -> Vec<CapName> {
            list.iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    v.check(&format!("{path}.{field}[{i}]"), Some(n), units::capability)
                })
                .collect()
        };
        let drop = parse(self, &caps.drop, "drop");
        let keep = parse(self, &caps.keep, "keep");
        for d in drop {
            match d {
                CapName::All => set.clear(),
                CapName::One(n) => {
                    set.remove(n);
                }
            }
        }
        for k in keep {
            match k {
                CapName::All => set.extend(units::CAPABILITIES.iter().map(|s| s.to_string())),
                CapName::One(n) => {
                    set.insert(n.to_string());
                }
            }
        }
        set
    }

    fn namespaces(&mut self, path: &str, c: &ContainerFields) -> NamespaceSpec {
        let Some(ns) = &c.namespaces else {
            return NamespaceSpec::default();
        };
        let mut host = BTreeSet::new();
        for (i, h) in ns.host.iter().enumerate() {
            let p = format!("{path}.host[{i}]");
            match h.as_str() {
                "pid" => host.insert(HostNamespace::Pid),
                "ipc" => host.insert(HostNamespace::Ipc),
                "uts" => host.insert(HostNamespace::Uts),
                "cgroup" => host.insert(HostNamespace::Cgroup),
                "net" | "network" => {
                    self.err(&p, "the host's network is a network of `type: host`; attach the container to one");
                    false
                }
                other => {
                    self.err(&p, format!("\"{other}\" cannot be shared with the host; use pid, ipc, uts or cgroup"));
                    false
                }
            };
        }
        let user = ns.user.as_ref().map(|u| {
            let p = format!("{path}.user");
            if u.map.is_empty() {
                self.err(&p, "a user namespace needs `map:`, e.g. \"0 100000 65536\"");
            }
            let uid: Vec<IdMap> = u
                .map
                .iter()
                .enumerate()
                .filter_map(|(i, m)| self.check(&format!("{p}.map[{i}]"), Some(m), units::id_map))
                .collect();
            let gid = if u.gid_map.is_empty() {
                uid.clone()
            } else {
                u.gid_map
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        self.check(&format!("{p}.gid_map[{i}]"), Some(m), units::id_map)
                    })
                    .collect()
            };
            IdMaps { uid, gid }
        });
        NamespaceSpec {
            user,
            time: ns.time.unwrap_or(false),
            host,
        }
    }

    fn resources(&mut self, path: &str, c: &ContainerFields) -> ResourceSpec {
        let Some(r) = &c.resources else {
            return ResourceSpec::default();
        };
        let f = |field: &str| format!("{path}.{field}");
        let weight = |v: &mut Self, p: &str, w: Option<u64>| {
            w.filter(|w| {
                let ok = (1..=10000).contains(w);
                if !ok {
                    v.err(
                        p,
                        format!("weight {w} is outside 1..=10000 (100 is the default share)"),
                    );
                }
                ok
            })
        };
        let memory = self.check(&f("memory"), r.memory.as_deref(), units::size);
        if let Some(m) = memory {
            if m < 1 << 20 {
                self.err(
                    &f("memory"),
                    format!("{m} bytes is too little to run anything; use at least 1M"),
                );
            }
        }
        if let Some(0) = r.pids {
            self.err(
                &f("pids"),
                "pids 0 would forbid the container's own init; use at least 1",
            );
        }
        ResourceSpec {
            memory,
            memory_low: self.check(&f("memory_low"), r.memory_low.as_deref(), units::size),
            swap: self.check(&f("swap"), r.swap.as_deref(), units::size),
            cpu_weight: weight(
                self,
                &f("cpu.weight"),
                r.cpu.as_ref().and_then(|c| c.weight),
            ),
            cpu_max: self
                .check(
                    &f("cpu.max"),
                    r.cpu.as_ref().and_then(|c| c.max.as_deref()),
                    units::cpu_max,
                )
                .map(|(quota_us, period_us)| CpuMax {
                    quota_us,
                    period_us,
                }),
            pids: r.pids.filter(|p| *p > 0),
            cpuset_cpus: self.check(
                &f("cpuset.cpus"),
                r.cpuset.as_ref().and_then(|c| c.cpus.as_deref()),
                units::cpu_list,
            ),
            cpuset_mems: self.check(
                &f("cpuset.mems"),
                r.cpuset.as_ref().and_then(|c| c.mems.as_deref()),
                units::cpu_list,
            ),
            io_weight: weight(self, &f("io.weight"), r.io.as_ref().and_then(|i| i.weight)),
        }
    }

    fn devices(&mut self, path: &str, c: &ContainerFields) -> Vec<DeviceRule> {
        let Some(d) = &c.devices else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (field, list, allow) in [("allow", &d.allow, true), ("deny", &d.deny, false)] {
            for (i, rule) in list.iter().enumerate() {
                out.extend(
                    self.check(&format!("{path}.{field}[{i}]"), Some(rule), |r| {
                        units::device_rule(r, allow)
                    }),
                );
            }
        }
        out
    }

    fn mounts(&mut self, path: &str, mounts: &[Mount]) -> Vec<MountSpec> {
        let mut out = Vec::new();
        let mut targets = HashSet::new();
        for (i, m) in mounts.iter().enumerate() {
            let f = |field: &str| format!("{path}[{i}].{field}");
            let before = self.diags.len();
            self.check(&f("target"), Some(&m.target), units::abs_path);
            if !targets.insert(m.target.trim_end_matches('/')) {
                self.err(
                    &f("target"),
                    format!("`{}` is mounted twice; keep one entry per target", m.target),
                );
            }
            if m.size.is_some() && m.kind != "tmpfs" {
                self.err(&f("size"), "`size` applies to tmpfs mounts only");
            }
            if m.mode.is_some() && m.kind != "tmpfs" {
                self.err(&f("mode"), "`mode` applies to tmpfs mounts only");
            }
            let kind = match m.kind.as_str() {
                "bind" => match &m.source {
                    Some(s) => {
                        self.check(&f("source"), Some(s), units::abs_path);
                        Some(MountKind::Bind { source: s.clone() })
                    }
                    None => {
                        self.err(
                            &format!("{path}[{i}]"),
                            "a bind mount needs `source:`, an absolute host path",
                        );
                        None
                    }
                },
                "tmpfs" => {
                    if m.source.is_some() {
                        self.err(&f("source"), "a tmpfs mount has no source; drop `source`");
                    }
                    let size = self.check(&f("size"), m.size.as_deref(), units::size);
                    let mode = self.check(&f("mode"), m.mode.as_deref(), |t| {
                        u32::from_str_radix(t, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| format!("\"{t}\" is not an octal mode; use e.g. 1777"))
                    });
                    Some(MountKind::Tmpfs { size, mode })
                }
                "volume" => match &m.source {
                    Some(s) => {
                        if let Err(e) = units::name(s, "volume", 64) {
                            self.err(&f("source"), e);
                        }
                        Some(MountKind::Volume { name: s.clone() })
                    }
                    None => {
                        self.err(
                            &format!("{path}[{i}]"),
                            "a volume mount needs `source:`, the volume's name",
                        );
                        None
                    }
                },
                other => {
                    self.err(
                        &f("type"),
                        format!("\"{other}\" is not a mount type; use bind, tmpfs or volume"),
                    );
                    None
                }
            };
            if let (Some(kind), true) = (kind, self.diags.len() == before) {
                out.push(MountSpec {
                    kind,
                    target: m.target.clone(),
                    readonly: m.readonly.unwrap_or(false),
                });
            }
        }
        out
    }

    fn attachments(
        &mut self,
        path: &str,
        list: &[Attachment],
        m: &Manifest,
        networks: &BTreeMap<String, NetworkSpec>,
        profile: bool,
    ) -> Vec<AttachmentSpec> {
        let mut out = Vec::new();
        let mut names = HashSet::new();
        for (i, a) in list.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let f = |field: &str| format!("{at}.{field}");
            let kind = networks.get(&a.network).map(|n| &n.kind);
            if !profile && !m.networks.contains_key(&a.network) {
                self.err(
                    &f("network"),
                    unknown("network", &a.network, m.networks.keys()),
                );
            }
            if matches!(kind, Some(NetworkKind::Host)) && list.len() > 1 {
                self.err(&f("network"), "a container on the host network shares the host's interfaces; it cannot attach to other networks");
            }
            let interface = a.interface.clone().unwrap_or_else(|| format!("eth{i}"));
            if let Err(e) = units::ifname(&interface) {
                self.err(&f("interface"), e);
            }
            if !names.insert(interface.clone()) {
                self.err(
                    &f("interface"),
                    format!(
                        "interface `{interface}` is used twice; name each attachment's `interface`"
                    ),
                );
            }
            let addresses: Vec<Cidr> = a
                .address
                .iter()
                .enumerate()
                .filter_map(|(j, t)| self.cidr(&format!("{}[{j}]", f("address")), t))
                .collect();
            let dhcp = a.dhcp.unwrap_or(false);
            if dhcp && !a.address.is_empty() {
                self.err(
                    &f("dhcp"),
                    "`dhcp: true` leaves addressing to the container; drop `address` or `dhcp`",
                );
            }
            let gateway = self.ip(&f("gateway"), a.gateway.as_deref(), Some(true));
            let gateway6 = self.ip(&f("gateway6"), a.gateway6.as_deref(), Some(false));
            let mut routes = Vec::new();
            for (j, r) in a.routes.iter().enumerate() {
                let to = self.cidr(&format!("{}[{j}].to", f("routes")), &r.to);
                let via = self.ip(&format!("{}[{j}].via", f("routes")), Some(&r.via), None);
                if let (Some(to), Some(via)) = (to, via) {
                    routes.push(RouteSpec { to, via });
                }
            }
            let mac = self.check(&f("mac"), a.mac.as_deref(), |t| {
                t.parse::<Mac>().map_err(|e| {
                    format!("\"{t}\" is not a MAC address ({e}); use e.g. 02:00:00:00:00:50")
                })
            });
            if let Some(mtu) = a.mtu {
                if !(68..=65535).contains(&mtu) {
                    self.err(&f("mtu"), format!("MTU {mtu} is outside 68..=65535"));
                }
            }
            let no_interface = matches!(kind, Some(NetworkKind::Host | NetworkKind::None));
            if no_interface && (!addresses.is_empty() || gateway.is_some() || mac.is_some()) {
                self.err(&at, format!("network `{}` gives the container no interface of its own; drop its addresses, gateway and MAC", a.network));
            }
            out.push(AttachmentSpec {
                network: a.network.clone(),
                interface,
                addresses,
                gateway,
                gateway6,
                routes,
                mac,
                mtu: a.mtu,
                dhcp,
            });
        }
        out
    }

    fn dependency_cycles(&mut self, m: &Manifest) {
        // Depth-first search; each cycle is reported once, at its first member.
        let mut done: HashSet<&str> = HashSet::new();
        for start in m.containers.keys() {
            let mut stack: Vec<&str> = Vec::new();
            self.visit(m, start, &mut stack, &mut done);
        }
    }

    fn visit<'m>(
        &mut self,
        m: &'m Manifest,
        name: &'m str,
        stack: &mut Vec<&'m str>,
        done: &mut HashSet<&'m str>,
    ) {
        if done.contains(name) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| *n == name) {
            let cycle: Vec<&str> = stack[at..].iter().copied().chain([name]).collect();
            self.err(
                &format!("containers.{name}.depends_on"),
                format!(
                    "dependency cycle {}; remove one of these depends_on entries",
                    cycle.join(" -> ")
                ),
            );
            return;
        }
        stack.push(name);
        if let Some(c) = m.containers.get(name) {
            for dep in &c.depends_on {
                if m.containers.contains_key(dep) && dep != name {
                    self.visit(m, dep, stack, done);
                }
            }
        }
        stack.pop();
        done.insert(name);
    }
}

fn parse_user(text: &str) -> Result<User, String> {
    let (u, g) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    match (u.parse::<u32>(), g.map(str::parse::<u32>)) {
        (Ok(uid), None) => Ok(User::Id { uid, gid: None }),
        (Ok(uid), Some(Ok(gid))) => Ok(User::Id { uid, gid: Some(gid) }),
        (Err(_), None) if units::name(u, "user", 32).is_ok() => Ok(User::Name(u.to_string())),
        _ => Err(format!("\"{text}\" is not a user; use UID, UID:GID or a user name from the image's /etc/passwd")),
    }
}

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown {what} `{name}`; the manifest defines no {what}s")
    } else {
        format!("unknown {what} `{name}`; defined: {}", known.join(", "))
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
