//! `berth check [MANIFEST]`: a preflight. It compares what the manifest (or,
//! without one, any container) needs from the kernel with what [`HostFeatures`]
//! found, and names the kernel option or OpenWrt package to add.

use std::io::Write;

use serde::Serialize;

use crate::cli::args::{Cmd, Opt, Parsed, Pos};
use crate::cli::error::Result;
use crate::cli::{load_manifest, ManifestArgs, UsageError};
use crate::host::cgroup::{translate, Mode};
use crate::host::features::{Avail, HostFeatures, HostPaths};
use crate::model::{Desired, HostNamespace, NetworkKind, Spec};

/// `berth check`'s table.
pub const CMD: Cmd = Cmd {
    args: &[Pos::optional(
        "MANIFEST",
        "Manifest to check (a path, `-` or a URL); without one, check what every container needs",
    )],
    opts: &[
        Opt::value("var", "KEY=VALUE", "Set a template variable (repeatable)").repeat(),
        Opt::value("vars-file", "FILE", "YAML file of template variables"),
        crate::cli::source::MAX_MANIFEST_SIZE,
        Opt::flag("json", "Print the host's features and the findings as JSON"),
    ],
    ..Cmd::new(
        "check",
        "Compare what the manifest needs with what this kernel has",
    )
};

/// Arguments of `berth check`.
#[derive(Debug, Clone)]
pub struct CheckArgs {
    /// Manifest to check (a path, `-` or a URL); without one, check what every container needs
    pub source: Option<String>,
    /// Set a template variable (repeatable)
    pub vars: Vec<String>,
    /// YAML file of template variables
    pub vars_file: Option<String>,
    /// Largest manifest read, in bytes
    pub max_size: usize,
    /// Print the host's features and the findings as JSON
    pub json: bool,
    /// How a manifest URL is fetched.
    pub fetch: crate::cli::FetchArgs,
    /// Which signatures the manifest needs.
    pub trust: crate::cli::trust::TrustArgs,
    /// `--device-id` and `--group`, for the templates.
    pub identity: crate::cli::source::Identity,
}

impl CheckArgs {
    /// Read from the parsed command line ([`CMD`]).
    pub fn from_parsed(p: &Parsed) -> Result<Self, UsageError> {
        Ok(Self {
            source: p.arg(0)?,
            vars: p.strings("var")?,
            vars_file: p.string("vars-file")?,
            max_size: crate::cli::source::max_size(p)?,
            json: p.has("json"),
            fetch: crate::cli::FetchArgs::from_parsed(p)?,
            trust: crate::cli::trust::TrustArgs::from_parsed(p, false)?,
            identity: crate::cli::source::Identity::from_parsed(p)?,
        })
    }
}

/// One thing the kernel lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What needs it: a manifest field path (`containers.web.resources.memory`).
    pub need: String,
    /// What is missing (`the memory controller`).
    pub missing: String,
    /// What to add (`CONFIG_MEMCG (OpenWrt: CONFIG_KERNEL_MEMCG)`).
    pub fix: String,
    /// False for a feature with a fallback (berth works, less well).
    pub fatal: bool,
}

/// Kernel option and OpenWrt way to get a feature module.
fn module_fix(module: &str) -> (&'static str, &'static str) {
    match module {
        "veth" => ("CONFIG_VETH", "kmod-veth"),
        "bridge" => ("CONFIG_BRIDGE", "kmod-bridge"),
        "macvlan" => ("CONFIG_MACVLAN", "kmod-macvlan"),
        "ipvlan" => ("CONFIG_IPVLAN", "kmod-ipvlan"),
        "8021q" => ("CONFIG_VLAN_8021Q", "kmod-8021q"),
        "overlay" => ("CONFIG_OVERLAY_FS", "kmod-fs-overlay"),
        _ => ("the kernel option", "the kmod package"),
    }
}

/// `CONFIG_X` plus OpenWrt's spelling (`CONFIG_KERNEL_X` in the build config).
fn kernel_fix(options: &str) -> String {
    let openwrt: Vec<String> = options
        .split(" and ")
        .map(|o| o.replacen("CONFIG_", "CONFIG_KERNEL_", 1))
        .collect();
    format!("enable {options} (OpenWrt: {})", openwrt.join(" and "))
}

fn ns_option(ns: &str) -> &'static str {
    match ns {
        "user" => "CONFIG_USER_NS",
        "net" => "CONFIG_NET_NS",
        "pid" => "CONFIG_PID_NS",
        "uts" => "CONFIG_UTS_NS",
        "ipc" => "CONFIG_IPC_NS",
        "cgroup" => "CONFIG_CGROUP_NS",
        "time" => "CONFIG_TIME_NS",
        _ => "CONFIG_NAMESPACES",
    }
}

/// What one container needs, as (manifest field, requirement) pairs.
fn container_needs(c: &Spec, desired: &Desired) -> Vec<(String, Need)> {
    let base = format!("containers.{}", c.name);
    let mut out = Vec::new();
    let shared = |h: HostNamespace| c.namespaces.host.contains(&h);
    let host_net = c.network.iter().any(|a| {
        matches!(
            desired.networks.get(&a.network).map(|n| &n.kind),
            Some(NetworkKind::Host)
        )
    });
    let mut ns = vec!["mnt"];
    for (h, name) in [
        (HostNamespace::Pid, "pid"),
        (HostNamespace::Uts, "uts"),
        (HostNamespace::Ipc, "ipc"),
        (HostNamespace::Cgroup, "cgroup"),
    ] {
        if !shared(h) {
            ns.push(name);
        }
    }
    if !host_net {
        ns.push("net");
    }
    for n in ns {
        out.push((base.clone(), Need::Namespace(n)));
    }
    if c.namespaces.user.is_some() {
        out.push((format!("{base}.namespaces.user"), Need::Namespace("user")));
    }
    if c.namespaces.time {
        out.push((format!("{base}.namespaces.time"), Need::Namespace("time")));
    }
    if c.seccomp {
        out.push((format!("{base}.seccomp"), Need::Seccomp));
    }
    out.push((format!("{base}.devices"), Need::DeviceFilter));
    if c.process.boot && !shared(HostNamespace::Cgroup) {
        out.push((format!("{base}.boot"), Need::InitTree));
    }
    let r = &c.resources;
    let wants = [
        (r.memory.is_some(), translate::F_MEMORY, "memory"),
        (r.memory_low.is_some(), translate::F_MEMORY_LOW, "memory"),
        (r.swap.is_some(), translate::F_SWAP, "memory"),
        (r.cpu_weight.is_some(), translate::F_CPU_WEIGHT, "cpu"),
        (r.cpu_max.is_some(), translate::F_CPU_MAX, "cpu"),
        (r.pids.is_some(), translate::F_PIDS, "pids"),
        (r.cpuset_cpus.is_some(), translate::F_CPUSET_CPUS, "cpuset"),
        (r.cpuset_mems.is_some(), translate::F_CPUSET_MEMS, "cpuset"),
        (r.io_weight.is_some(), translate::F_IO_WEIGHT, "io"),
    ];
    for (on, field, ctrl) in wants {
        if on {
            out.push((format!("{base}.{field}"), Need::Controller(ctrl)));
        }
    }
    for (i, a) in c.network.iter().enumerate() {
        let field = format!("{base}.network[{i}]");
        match desired.networks.get(&a.network).map(|n| &n.kind) {
            Some(NetworkKind::Bridge { .. }) => {
                out.push((field.clone(), Need::Module("veth")));
                out.push((field, Need::Module("bridge")));
            }
            Some(NetworkKind::Macvlan { vlan, .. }) => {
                out.push((field.clone(), Need::Module("macvlan")));
                if vlan.is_some() {
                    out.push((field, Need::Module("8021q")));
                }
            }
            Some(NetworkKind::Ipvlan { vlan, .. }) => {
                out.push((field.clone(), Need::Module("ipvlan")));
                if vlan.is_some() {
                    out.push((field, Need::Module("8021q")));
                }
            }
            _ => {}
        }
    }
    out
}

/// A kernel requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Namespace(&'static str),
    Controller(&'static str),
    Module(&'static str),
    Seccomp,
    DeviceFilter,
    /// A cgroup tree for a full-OS init; only systemd needs it.
    InitTree,
}

fn judge(need: Need, caps: &HostFeatures) -> Option<(String, String, bool)> {
    match need {
        Need::Namespace(n) if !caps.namespaces.contains(n) => {
            Some((format!("the {n} namespace"), kernel_fix(ns_option(n)), true))
        }
        Need::Controller(c) => {
            // v1 calls the io controller blkio.
            let name = if c == "io" && caps.cgroup_mode != Some(Mode::Unified) {
                "blkio"
            } else {
                c
            };
            (!caps.controllers.contains(name)).then(|| {
                (
                    format!("the {name} controller"),
                    kernel_fix(translate::kernel_option(name)),
                    true,
                )
            })
        }
        Need::Module(m) => {
            let (opt, pkg) = module_fix(m);
            match caps.features.get(m) {
                Some(Avail::Yes) => None,
                Some(Avail::Module) => Some((
                    format!("{m} (installed, not loaded)"),
                    format!("load it: modprobe {m}"),
                    false,
                )),
                _ => Some((
                    format!("{m} support"),
                    format!("enable {opt} or install {pkg}"),
                    true,
                )),
            }
        }
        Need::Seccomp if !caps.seccomp => Some((
            "seccomp filters".into(),
            format!(
                "{}, or set `seccomp: unconfined`",
                kernel_fix("CONFIG_SECCOMP_FILTER")
            ),
            true,
        )),
        Need::InitTree if !caps.init_tree => Some((
            "a cgroup tree for a systemd inside (procd and busybox init need none)".into(),
            "mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup/unified; CONFIG_CGROUPS) or the name=systemd hierarchy".into(),
            false,
        )),
        Need::DeviceFilter => match caps.cgroup_mode {
            Some(Mode::Unified) if !caps.bpf => Some((
                "the bpf syscall for the v2 device filter".into(),
                kernel_fix("CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF"),
                true,
            )),
            Some(Mode::Hybrid | Mode::Legacy) if !caps.controllers.contains("devices") => Some((
                "the devices controller".into(),
                kernel_fix("CONFIG_CGROUP_DEVICE"),
                true,
            )),
            _ => None,
        },
        _ => None,
    }
}

/// Compare what `desired` needs with `caps`. Without a manifest the
/// requirements of a default container are checked.
pub fn check(desired: Option<&Desired>, caps: &HostFeatures) -> Vec<Finding> {
    let mut out = Vec::new();
    if caps.cgroup_mode.is_none() {
        out.push(Finding {
            need: "berth".into(),
            missing: "a mounted cgroup filesystem".into(),
            fix: "mount cgroup2 on /sys/fs/cgroup (CONFIG_CGROUPS)".into(),
            fatal: true,
        });
    }
    let needs: Vec<(String, Need)> = match desired {
        Some(d) => d
            .containers
            .values()
            .flat_map(|c| container_needs(c, d))
            .collect(),
        None => {
            let mut v: Vec<(String, Need)> = ["mnt", "pid", "uts", "ipc", "net", "cgroup"]
                .iter()
                .map(|n| ("every container".to_string(), Need::Namespace(n)))
                .collect();
            v.push(("every container (default seccomp)".into(), Need::Seccomp));
            v.push(("every container (device rules)".into(), Need::DeviceFilter));
            v
        }
    };
    for (need, n) in needs {
        if let Some((missing, fix, fatal)) = judge(n, caps) {
            out.push(Finding {
                need,
                missing,
                fix,
                fatal,
            });
        }
    }
    if desired.map_or(true, |d| !d.containers.is_empty()) && !caps.has("overlay") {
        let (opt, pkg) = module_fix("overlay");
        out.push(Finding {
            need: "writable layers".into(),
            missing: "overlayfs (berth copies the image instead: slower, more flash)".into(),
            fix: format!("enable {opt} or install {pkg}"),
            fatal: false,
        });
    }
    out
}

/// One line per finding, as `check` prints them.
pub fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            let tag = if f.fatal { "missing" } else { "note" };
            format!("{tag}: {} needs {}; {}\n", f.need, f.missing, f.fix)
        })
        .collect()
}

/// Some required kernel features are missing; each was printed.
#[derive(Debug, thiserror::Error)]
#[error("this kernel lacks {0} feature(s) the manifest needs")]
pub struct MissingFeatures(pub usize);

/// Run `berth check`.
pub fn run(args: &CheckArgs) -> Result<()> {
    let loaded = match &args.source {
        Some(source) => Some(load_manifest(&ManifestArgs {
            source: source.clone(),
            vars: args.vars.clone(),
            vars_file: args.vars_file.clone(),
            fetch: args.fetch.clone(),
            max_size: args.max_size,
            trust: args.trust.clone(),
            identity: args.identity.clone(),
        })?),
        None => None,
    };
    let caps = HostFeatures::detect(&HostPaths::default());
    let findings = check(loaded.as_ref().map(|l| &l.desired), &caps);
    // Write, not println!: a closed pipe (`berth check | head`) is an error, not a panic.
    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({ "host": caps, "findings": findings });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        let mode = match caps.cgroup_mode {
            Some(Mode::Unified) => "cgroup v2",
            Some(Mode::Hybrid) => "cgroup v1 (hybrid)",
            Some(Mode::Legacy) => "cgroup v1",
            None => "no cgroups",
        };
        let ctrls: Vec<&str> = caps.controllers.iter().map(String::as_str).collect();
        let ns: Vec<&str> = caps.namespaces.iter().map(String::as_str).collect();
        writeln!(
            out,
            "kernel {}: {mode} [{}], namespaces [{}]",
            caps.kernel,
            ctrls.join(" "),
            ns.join(" ")
        )?;
        write!(out, "{}", render(&findings))?;
    }
    let fatal = findings.iter().filter(|f| f.fatal).count();
    if fatal > 0 {
        return Err(MissingFeatures(fatal).into());
    }
    if !args.json {
        writeln!(
            out,
            "ok: this kernel has everything {} needs",
            args.source.as_deref().unwrap_or("berth")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttachmentSpec, IdMaps, NetworkSpec};

    fn caps(
        mode: Mode,
        controllers: &[&str],
        ns: &[&str],
        features: &[(&str, Avail)],
    ) -> HostFeatures {
        HostFeatures {
            kernel: "5.10.0".into(),
            cgroup_mode: Some(mode),
            controllers: controllers.iter().map(|s| s.to_string()).collect(),
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            features: features.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            seccomp: true,
            bpf: true,
            cgroup_freeze: true,
            cgroup_kill: false,
            init_tree: true,
        }
    }

    fn spec(name: &str) -> Spec {
        Spec::new(name, "busybox", None)
    }

    const ALL_NS: [&str; 6] = ["mnt", "pid", "uts", "ipc", "net", "cgroup"];

    #[test]
    fn names_the_field_and_the_option() {
        let mut web = spec("web");
        web.resources.memory = Some(1 << 24);
        web.resources.pids = Some(10);
        web.namespaces.user = Some(IdMaps {
            uid: vec![],
            gid: vec![],
        });
        web.network.push(AttachmentSpec {
            dhcp: true,
            ..AttachmentSpec::new("wan", "eth0", vec![])
        });
        let mut d = Desired::default();
        d.networks.insert(
            "wan".into(),
            NetworkSpec {
                name: "wan".into(),
                kind: NetworkKind::Macvlan {
                    parent: "eth1".into(),
                    mode: crate::model::MacvlanMode::Bridge,
                    vlan: Some(7),
                    host_link: false,
                    host_address: Vec::new(),
                },
                mtu: None,
            },
        );
        d.containers.insert("web".into(), web);
        let c = caps(
            Mode::Unified,
            &["cpu", "pids"],
            &ALL_NS,
            &[("overlay", Avail::Yes), ("8021q", Avail::Module)],
        );
        let text = render(&check(Some(&d), &c));
        assert_eq!(
            text,
            "missing: containers.web.namespaces.user needs the user namespace; \
             enable CONFIG_USER_NS (OpenWrt: CONFIG_KERNEL_USER_NS)\n\
             missing: containers.web.resources.memory needs the memory controller; \
             enable CONFIG_MEMCG (OpenWrt: CONFIG_KERNEL_MEMCG)\n\
             missing: containers.web.network[0] needs macvlan support; enable CONFIG_MACVLAN or install kmod-macvlan\n\
             note: containers.web.network[0] needs 8021q (installed, not loaded); load it: modprobe 8021q\n"
        );
    }

    #[test]
    fn a_complete_kernel_passes_and_v1_uses_blkio() {
        let mut web = spec("web");
        web.resources.io_weight = Some(200);
        web.namespaces.host.insert(HostNamespace::Cgroup);
        let mut d = Desired::default();
        d.containers.insert("web".into(), web);
        let feats = [("overlay", Avail::Yes)];
        let v1 = caps(
            Mode::Hybrid,
            &["cpu", "memory", "devices", "blkio"],
            &ALL_NS[..5],
            &feats,
        );
        assert_eq!(
            check(Some(&d), &v1),
            vec![],
            "cgroup namespace shared with the host is not needed"
        );
        let v1_no_blkio = caps(
            Mode::Legacy,
            &["cpu", "memory", "devices", "io"],
            &ALL_NS,
            &feats,
        );
        let f = check(Some(&d), &v1_no_blkio);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].missing, "the blkio controller");
    }

    #[test]
    fn without_a_manifest_checks_the_defaults() {
        let mut c = caps(Mode::Legacy, &["memory"], &ALL_NS, &[]);
        c.seccomp = false;
        let f = check(None, &c);
        let missing: Vec<&str> = f.iter().map(|f| f.missing.as_str()).collect();
        assert_eq!(
            missing,
            [
                "seccomp filters",
                "the devices controller",
                "overlayfs (berth copies the image instead: slower, more flash)"
            ]
        );
        assert!(!f[2].fatal);
        let mut v2 = caps(Mode::Unified, &[], &ALL_NS, &[("overlay", Avail::Yes)]);
        v2.bpf = false;
        assert_eq!(check(None, &v2)[0].fix, "enable CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF (OpenWrt: CONFIG_KERNEL_BPF_SYSCALL and CONFIG_KERNEL_CGROUP_BPF)");
    }

    /// A full-OS container on a v1 host with neither cgroup2 nor
    /// name=systemd gets a note (procd runs without a tree), not a failure.
    #[test]
    fn full_os_without_a_tree_is_a_note() {
        let mut c = spec("os");
        c.process.boot = true;
        let d = Desired {
            containers: [(c.name.clone(), c)].into_iter().collect(),
            ..Desired::default()
        };
        let all = ["mnt", "pid", "uts", "ipc", "net", "cgroup"];
        let ctl = ["devices", "memory"];
        let mut host = caps(Mode::Legacy, &ctl, &all, &[("overlay", Avail::Yes)]);
        assert!(check(Some(&d), &host).is_empty());
        host.init_tree = false;
        let f = check(Some(&d), &host);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].need, "containers.os.boot");
        assert!(!f[0].fatal);
        assert!(f[0].fix.contains("cgroup2"), "{}", f[0].fix);
    }
}
