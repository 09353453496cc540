//! Validation of one container's fields (or a profile's): the process, security,
//! resources, devices, mounts and network attachments.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{parse_user, unknown, Validator};
use crate::manifest::schema::{Attachment, ContainerFields, Manifest, Mount, Volatile};
use crate::manifest::units::{self, CapName};
use crate::model::*;

impl Validator<'_> {
    pub(super) fn container(
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
            "on-unhealthy" => Ok(RestartPolicy::OnUnhealthy),
            other => Err(format!(
                "\"{other}\" is not a restart policy; use never, on-failure, on-unhealthy or always"
            )),
        });
        let health = self.health(&f("health"), c);
        if restart == Some(RestartPolicy::OnUnhealthy) && c.health.is_none() && !profile {
            self.err(
                &f("restart"),
                "`on-unhealthy` needs a `health:` check; add one or use on-failure",
            );
        }
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

        let volatile = match &c.volatile {
            None | Some(Volatile::On(false)) => None,
            Some(Volatile::On(true)) => Some(units::DEFAULT_VOLATILE_SIZE),
            Some(Volatile::Sized(v)) => {
                let p = format!("{}.size", f("volatile"));
                let size = self.check(&p, v.size.as_deref(), units::size);
                if size.is_some_and(|s| s < 1 << 20) {
                    self.err(&p, "a writable layer needs at least 1M; use e.g. 32M");
                }
                Some(size.unwrap_or(units::DEFAULT_VOLATILE_SIZE))
            }
        };
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
            volatile: volatile.is_some(),
            volatile_size: volatile,
            readonly: c.readonly.unwrap_or(false),
            seccomp: seccomp.unwrap_or(true),
            resources,
            restart: restart.unwrap_or(RestartPolicy::Never),
            autostart: c.autostart.unwrap_or(true),
            // busybox init and procd power off on SIGPWR; systemd wants SIGRTMIN+3.
            stop_signal: stop_signal.unwrap_or_else(|| {
                if boot {
                    crate::model::BOOT_STOP_SIGNAL.into()
                } else {
                    "SIGTERM".into()
                }
            }),
            stop_timeout_secs: stop_timeout.unwrap_or(10),
            depends_on: c.depends_on.clone(),
            health,
        })
    }

    /// `health:`: exactly one probe, then its timing (docs/manifest.md, "Health").
    fn health(&mut self, path: &str, c: &ContainerFields) -> Option<HealthSpec> {
        let h = c.health.as_ref()?;
        let f = |field: &str| format!("{path}.{field}");
        let before = self.diags.len();
        let set = [h.exec.is_some(), h.tcp.is_some(), h.http.is_some()];
        let probe = match (&h.exec, &h.tcp, &h.http) {
            _ if set.iter().filter(|s| **s).count() > 1 => {
                self.err(path, "give one probe: `exec`, `tcp` or `http`, not several");
                None
            }
            (Some(cmd), _, _) if cmd.is_empty() || cmd[0].is_empty() => {
                self.err(
                    &f("exec"),
                    "the command is empty; give it as a list, e.g. [pgrep, dnsmasq]",
                );
                None
            }
            (Some(cmd), _, _) => Some(Probe::Exec(cmd.clone())),
            (_, Some(port), _) => self
                .check(&f("tcp"), Some(port), units::port)
                .map(Probe::Tcp),
            (_, _, Some(http)) => {
                let port = self.check(&f("http.port"), http.port.as_deref(), units::port);
                if http.port.is_none() {
                    self.err(
                        &f("http"),
                        "an http probe needs a `port`, e.g. { port: 80, path: /health }",
                    );
                }
                let path_ = http.path.clone().unwrap_or_else(|| "/".into());
                if !path_.starts_with('/') || path_.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    self.err(
                        &f("http.path"),
                        format!("\"{path_}\" is not a request path; use e.g. /health (no spaces)"),
                    );
                }
                let status = self.check(&f("http.status"), http.status.as_deref(), |s| {
                    match s.parse::<u16>() {
                        Ok(n) if (100..=599).contains(&n) => Ok(n),
                        _ => Err(format!("\"{s}\" is not an HTTP status; use e.g. 200")),
                    }
                });
                port.map(|port| {
                    Probe::Http(HttpProbe {
                        port,
                        path: path_,
                        status,
                    })
                })
            }
            (None, None, None) => {
                self.err(
                    path,
                    "no probe: add `exec: [cmd, ...]`, `tcp: PORT` or `http: { port: PORT }`",
                );
                None
            }
        };
        let above_zero = |t: &str| match units::duration_secs(t)? {
            0 => Err(format!("\"{t}\" must be above zero; use e.g. 5s")),
            secs => Ok(secs),
        };
        let interval = self.check(&f("interval"), h.interval.as_deref(), above_zero);
        let timeout = self.check(&f("timeout"), h.timeout.as_deref(), above_zero);
        let start_period = self.check(
            &f("start_period"),
            h.start_period.as_deref(),
            units::duration_secs,
        );
        let retries = self.check(&f("retries"), h.retries.as_deref(), |r| {
            match r.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(format!(
                    "\"{r}\" is not a count of failures from 1 to 100; use e.g. 3"
                )),
            }
        });
        for (field, v) in [
            ("interval", interval),
            ("timeout", timeout),
            ("start_period", start_period),
        ] {
            if v.is_some_and(|s| s > 86_400) {
                self.err(&f(field), "longer than a day; use at most 24h");
            }
        }
        if self.diags.len() > before {
            return None;
        }
        Some(HealthSpec {
            probe: probe?,
            interval_secs: interval.unwrap_or(units::HEALTH_INTERVAL),
            timeout_secs: timeout.unwrap_or(units::HEALTH_TIMEOUT),
            retries: retries.unwrap_or(units::HEALTH_RETRIES),
            start_period_secs: start_period.unwrap_or(0),
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
}
