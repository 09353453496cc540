//! The real device for `exec`: the image store, cgroups, network and runtime
//! put together behind the `Host` trait.
//!
//! A container's pieces, made in this order and undone in reverse:
//! writable layer (store) -> cgroup with limits and device rules -> host-side
//! network objects -> monitor and init (runtime), whose setup hook plugs the
//! container's interfaces before anything runs inside. A failed create or
//! start undoes what it made, so no half-made container stays behind.
//!
//! The network and the process runtime are held as trait objects
//! (`Network`, `ProcessRuntime`): the real ones in `LocalHost::new`, recording
//! fakes that fail a chosen step in the rollback tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::host::cgroup::{CgroupBackend, ParentPolicy, Placement};
use crate::host::inroot::Resolve;
use crate::host::net::{self, NetError, NetnsRef, Network, RtNetlink};
use crate::host::runtime::rundir::Status;
use crate::host::runtime::{
    self, ContainerState, Options, Paths, ProcessRuntime, Runtime, SetupHook,
};
use crate::host::store::layer::{self, LayerPlan};
use crate::host::store::{ImageInfo, RootfsStore, StoreOptions};
use crate::host::{Host, HostError, Liveness};
use crate::model::{
    Desired, HostNamespace, ImageSpec, MountKind, MountSpec, NetworkKind, NetworkSpec,
    ResourceSpec, SettingsSpec, Spec,
};

/// Errors of putting the backends together.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("container `{container}`: image `{image}` is not in the store; run `berth apply` to fetch it")]
    ImageMissing { container: String, image: String },
    #[error("container `{container}`: {op} `{path}`")]
    Io {
        container: String,
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("container `{container}`: its root `{path}` is still mounted; stop what uses it and run again")]
    Busy {
        container: String,
        path: PathBuf,
        source: io::Error,
    },
}

/// Where things live and how the backends are opened.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub store_root: PathBuf,
    pub runtime_root: PathBuf,
    /// Where container cgroups go; `Auto` picks for the host (see cgroup docs).
    pub cgroup_parent: ParentPolicy,
    pub settings: SettingsSpec,
    /// How images are downloaded (CA bundle, deadline, throughput rule).
    pub fetch: crate::host::store::FetchOptions,
}

/// The device, opened lazily: `plan` only reads, so it must not create anything.
pub struct LocalHost {
    cfg: LocalConfig,
    store: Option<RootfsStore>,
    cgroups: Option<CgroupBackend>,
    net: Box<dyn Network>,
    runtime: Box<dyn ProcessRuntime>,
}

impl LocalHost {
    /// A host with these paths and settings; nothing is touched yet.
    pub fn new(cfg: LocalConfig) -> LocalHost {
        LocalHost::with_backends(cfg, Box::new(RtNetlink), Box::new(Runtime::current()))
    }

    /// A host whose network and process runtime are the given ones (tests
    /// pass fakes that record calls and fail chosen steps).
    pub fn with_backends(
        cfg: LocalConfig,
        net: Box<dyn Network>,
        runtime: Box<dyn ProcessRuntime>,
    ) -> LocalHost {
        LocalHost {
            cfg,
            store: None,
            cgroups: None,
            net,
            runtime,
        }
    }

    /// The paths and settings this host was made with.
    pub fn config(&self) -> &LocalConfig {
        &self.cfg
    }

    fn store_options(&self) -> StoreOptions {
        let mut image_dirs: Vec<PathBuf> = self
            .cfg
            .settings
            .image_dirs
            .iter()
            .map(PathBuf::from)
            .collect();
        // Images the firmware carries, unpacked by `berth install` at build time.
        let firmware = PathBuf::from(crate::host::store::FIRMWARE_IMAGE_DIR);
        if !image_dirs.contains(&firmware) {
            image_dirs.push(firmware);
        }
        let mut opts = StoreOptions {
            image_dirs,
            fetch: self.cfg.fetch.clone(),
            ..StoreOptions::default()
        };
        if let Some(max) = self.cfg.settings.max_image_size {
            opts.max_image_size = max;
        }
        opts
    }

    fn store(&mut self) -> Result<&RootfsStore, HostError> {
        let store = match self.store.take() {
            Some(s) => s,
            None => RootfsStore::open(&self.cfg.store_root, self.store_options())?,
        };
        Ok(self.store.insert(store))
    }

    fn cgroups(&mut self) -> Result<&CgroupBackend, HostError> {
        let cg = match self.cgroups.take() {
            Some(c) => c,
            None => CgroupBackend::detect(Path::new("/proc"), &self.cfg.cgroup_parent)?,
        };
        Ok(self.cgroups.insert(cg))
    }

    fn run_dir(&self, name: &str) -> PathBuf {
        runtime::container_run_dir(&self.cfg.runtime_root, name)
    }

    fn container_dir(&self, name: &str) -> PathBuf {
        self.cfg.store_root.join("containers").join(name)
    }

    /// The mount point of the container's assembled root.
    fn rootfs_dir(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("merged")
    }

    fn image_of(&mut self, spec: &Spec) -> Result<ImageInfo, HostError> {
        let missing = || LocalError::ImageMissing {
            container: spec.name.clone(),
            image: spec.image.clone(),
        };
        let digest = spec.image_sha256.clone().ok_or_else(missing)?;
        self.store()?
            .find(&digest)
            .ok_or_else(|| HostError::from(missing()))
    }

    fn layer(&mut self, spec: &Spec, info: &ImageInfo) -> Result<LayerPlan, HostError> {
        let containers = self.cfg.store_root.join("containers");
        let support = layer::detect_overlay(Path::new("/proc/filesystems"), &containers);
        Ok(self.store()?.plan_layer(
            &spec.name,
            info,
            spec.volatile_size.filter(|_| spec.volatile),
            spec.namespaces.user.as_ref(),
            support,
        )?)
    }

    /// Mount the writable layer at `merged/` unless it is mounted already (a
    /// running container, or a start after a stop). After a reboot it is not.
    fn mount_root(&mut self, spec: &Spec, info: &ImageInfo) -> Result<PathBuf, HostError> {
        let plan = self.layer(spec, info)?;
        let target = self.rootfs_dir(&spec.name);
        if is_mountpoint(&target) {
            return Ok(target);
        }
        fs::create_dir_all(&target).map_err(|source| LocalError::Io {
            container: spec.name.clone(),
            op: "create",
            path: target.clone(),
            source,
        })?;
        layer::mount_layer(&spec.name, &plan, &target)?;
        Ok(target)
    }

    /// Unmount the root and, for a volatile layer, its tmpfs.
    fn unmount_root(&self, name: &str) -> Result<(), HostError> {
        for dir in [
            self.rootfs_dir(name),
            self.container_dir(name).join("volatile"),
        ] {
            while is_mountpoint(&dir) {
                layer::umount(&dir).map_err(|source| LocalError::Busy {
                    container: name.to_string(),
                    path: dir.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// The steps of `start`, in order; `start` undoes them when one fails.
    fn start_steps(
        &mut self,
        spec: &Spec,
        desired: &Desired,
        info: &ImageInfo,
    ) -> Result<(), HostError> {
        let rootfs = self.mount_root(spec, info)?;
        let spec = with_image_defaults(spec, info);
        let spec = with_init_defaults(spec, &rootfs);
        // The cgroup is gone after a reboot; creating it again is harmless.
        let placement = self.setup_cgroup(&spec)?;
        let mut host_network = false;
        for a in &spec.network {
            let Some(n) = desired.networks.get(&a.network) else {
                continue;
            };
            host_network |= n.kind == NetworkKind::Host;
            // Two starts of a parallel apply would both find the bridge
            // missing and both create it; the second would fail with EEXIST.
            static NETWORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one = NETWORKS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.net.ensure_network(n, &[])?;
        }
        self.net.cleanup_stale(&spec.name)?;
        net::files::write(&rootfs, &spec, Resolve::Openat2)?;
        let paths = Paths {
            rootfs,
            run_dir: self.run_dir(&spec.name),
            container_dir: self.container_dir(&spec.name),
            volumes_dir: self.cfg.store_root.join("volumes"),
        };
        let opts = Options {
            host_network,
            cgroup_procs: placement.procs,
            log_size: self.cfg.settings.log_size.unwrap_or(0),
            monitor_cgroup_procs: Vec::new(),
            init_tree: placement.tree,
        };
        let mut hook = NetHook {
            net: self.net.as_ref(),
            spec: &spec,
            networks: &desired.networks,
            failed: None,
        };
        match self.runtime.start(&spec, &paths, &opts, &mut hook) {
            Ok(_) => Ok(()),
            Err(e) => Err(hook.failed.take().map_or_else(|| e.into(), HostError::from)),
        }
    }

    fn cgroup_exists(&mut self, name: &str) -> Result<bool, HostError> {
        let procs = self.cgroups()?.procs_files(name);
        Ok(procs.first().is_some_and(|p| p.exists()))
    }

    fn setup_cgroup(&mut self, spec: &Spec) -> Result<Placement, HostError> {
        let cg = self.cgroups()?;
        cg.create(&spec.name)?;
        cg.apply(&spec.name, &spec.resources)?;
        cg.set_devices(&spec.name, &spec.devices)?;
        // Only an init in its own cgroup namespace may manage a tree: with the
        // host's, the read-write mount would be the host's whole hierarchy.
        let own_tree = spec.process.boot && !spec.namespaces.host.contains(&HostNamespace::Cgroup);
        Ok(cg.placement(&spec.name, own_tree)?)
    }
}

/// Plugs the container's interfaces once its init exists, before it runs.
/// The monitor gets the failure as text; the typed error stays here, so
/// `start` returns it as the network's own.
struct NetHook<'a> {
    net: &'a dyn Network,
    spec: &'a Spec,
    networks: &'a BTreeMap<String, NetworkSpec>,
    failed: Option<NetError>,
}

impl SetupHook for NetHook<'_> {
    fn setup(&mut self, pid: i32) -> Result<(), String> {
        let pid = u32::try_from(pid).map_err(|_| format!("bad pid {pid}"))?;
        self.net
            .attach(self.spec, self.networks, NetnsRef::Pid(pid))
            .map(drop)
            .map_err(|e| {
                let text = crate::host::chain(&e);
                self.failed = Some(e);
                text
            })
    }
}

impl Host for LocalHost {
    fn liveness(&mut self, name: &str) -> Result<Liveness, HostError> {
        let (status, _) = self.runtime.status(&self.run_dir(name))?;
        Ok(match status {
            Status::Running {
                supervised: false, ..
            } => Liveness::Unsupervised,
            Status::Running { .. } | Status::Stopping { .. } | Status::Restarting => {
                Liveness::Running
            }
            Status::Missing | Status::Stopped { .. } => Liveness::Stopped,
        })
    }

    fn condition(&mut self, name: &str) -> Result<(Status, Option<ContainerState>), HostError> {
        Ok(self.runtime.status(&self.run_dir(name))?)
    }

    fn present_images(&mut self) -> BTreeSet<String> {
        // Read in place: `plan` must neither create the store nor clean it.
        RootfsStore::read_only(&self.cfg.store_root, self.store_options()).present_digests()
    }

    fn ensure_image(&mut self, image: &ImageSpec) -> Result<(), HostError> {
        let info = self.store()?.ensure(image)?;
        for w in &info.warnings {
            eprintln!("berth: image `{}`: {w}", image.name);
        }
        Ok(())
    }

    fn create(&mut self, spec: &Spec, _desired: &Desired) -> Result<(), HostError> {
        let made = self
            .image_of(spec)
            .and_then(|info| self.layer(spec, &info))
            .and_then(|_| self.setup_cgroup(spec).map(drop));
        if let Err(e) = made {
            // Leave nothing half-made: the next apply starts clean.
            if let Ok(cg) = self.cgroups() {
                let _ = cg.remove(&spec.name);
            }
            let _ = fs::remove_dir_all(self.container_dir(&spec.name));
            return Err(e);
        }
        Ok(())
    }

    fn start(&mut self, spec: &Spec, desired: &Desired) -> Result<(), HostError> {
        let info = self.image_of(spec)?;
        let name = &spec.name;
        // What exists before this start is left alone by its rollback.
        let was_running = self.is_running(name)?;
        let was_mounted = is_mountpoint(&self.rootfs_dir(name));
        let had_cgroup = self.cgroup_exists(name)?;
        let started = self.start_steps(spec, desired, &info);
        if started.is_err() && !was_running {
            // Leave the container as create left it: no processes, no host
            // links, nothing mounted or made by this start; the next start
            // makes them anew. Best effort: the start's own error is reported.
            let run_dir = self.run_dir(name);
            if run_dir.exists() {
                let _ = self.runtime.stop(&run_dir, Some(0));
            }
            let _ = self.net.detach(name);
            if !was_mounted {
                let _ = self.unmount_root(name);
            }
            if !had_cgroup {
                if let Ok(cg) = self.cgroups() {
                    let _ = cg.remove(name);
                }
            }
        }
        started
    }

    fn stop(&mut self, name: &str) -> Result<(), HostError> {
        let run_dir = self.run_dir(name);
        if run_dir.exists() {
            self.runtime.stop(&run_dir, None)?;
        }
        self.net.detach(name)?;
        Ok(())
    }

    fn remove_network(&mut self, name: &str) -> Result<(), HostError> {
        self.net.remove_network(name)?;
        Ok(())
    }

    fn update_limits(&mut self, name: &str, limits: &ResourceSpec) -> Result<(), HostError> {
        Ok(self.cgroups()?.apply(name, limits)?)
    }

    fn remove(&mut self, name: &str) -> Result<(), HostError> {
        self.stop(name)?;
        let run_dir = self.run_dir(name);
        if run_dir.exists() {
            self.runtime.remove(&run_dir)?;
        }
        self.unmount_root(name)?;
        self.cgroups()?.remove(name)?;
        let dir = self.container_dir(name);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LocalError::Io {
                container: name.to_string(),
                op: "remove",
                path: dir,
                source: e,
            }
            .into()),
            _ => Ok(()),
        }
    }
}

/// The image's OCI config fills what the manifest leaves unset.
fn with_image_defaults(spec: &Spec, info: &ImageInfo) -> Spec {
    let cfg = &info.meta.config;
    let mut s = spec.clone();
    let p = &mut s.process;
    if !p.boot && p.command.is_none() {
        p.command = cfg.entrypoint.clone();
        if p.args.is_none() {
            p.args = cfg.cmd.clone();
        }
    }
    for kv in &cfg.env {
        if let Some((k, v)) = kv.split_once('=') {
            p.env.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    if p.workdir.is_none() {
        p.workdir = cfg.workdir.clone().filter(|w| !w.is_empty());
    }
    if p.user.is_none() {
        p.user = cfg
            .user
            .as_deref()
            .filter(|u| !u.is_empty())
            .and_then(|u| crate::manifest::validate::parse_user(u).ok());
    }
    s
}

/// What a full-OS container's init cannot mount itself without
/// CAP_SYS_ADMIN, given from outside unless the manifest mounts something
/// there (as podman does for systemd): systemd's tmpfs on /run and
/// /run/lock; procd's on /tmp (OpenWrt's /var), which would otherwise sit in
/// the writable layer, on flash. And SIGRTMIN+3 to stop systemd, for SIGPWR
/// (the default of `boot: true`) only starts its sigpwr.target.
fn with_init_defaults(mut s: Spec, rootfs: &Path) -> Spec {
    if !s.process.boot {
        return s;
    }
    let systemd = runtime::init_stop_signal(rootfs, &s.process.init) == "SIGRTMIN+3";
    let procd = !systemd && rootfs.join("sbin/procd").exists();
    if systemd && s.stop_signal == crate::model::BOOT_STOP_SIGNAL {
        s.stop_signal = "SIGRTMIN+3".into();
    }
    let tmpfs: &[(&str, Option<u64>, u32)] = match (systemd, procd) {
        (true, _) => &[
            ("/run", Some(32 << 20), 0o755),
            ("/run/lock", Some(5 << 20), 0o1777),
        ],
        (false, true) => &[("/tmp", None, 0o1777)],
        _ => &[],
    };
    for &(target, size, mode) in tmpfs {
        if !s
            .mounts
            .iter()
            .any(|m| m.target.trim_end_matches('/') == target)
        {
            s.mounts.push(MountSpec {
                kind: MountKind::Tmpfs {
                    size,
                    mode: Some(mode),
                },
                target: target.into(),
                readonly: false,
            });
        }
    }
    s
}

/// True when `dir` is a mount point: its device differs from its parent's, or
/// /proc/self/mountinfo lists it (a bind of the same filesystem).
fn is_mountpoint(dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    text.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| unescape(m) == want))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::store::{ImageConfig, ImageMeta};
    use crate::manifest::{self, RenderInput};

    fn spec(yaml_fields: &str) -> Spec {
        let yaml = format!("version: 1\nimages: {{ bb: {{ path: /bb.tar }} }}\ncontainers:\n  c: {{ image: bb{yaml_fields} }}\n");
        manifest::load("m.yaml", &yaml, "/", &RenderInput::default())
            .expect("valid")
            .desired
            .containers["c"]
            .clone()
    }

    fn info(config: ImageConfig) -> ImageInfo {
        ImageInfo {
            digest: "d".into(),
            dir: PathBuf::new(),
            rootfs: PathBuf::new(),
            meta: ImageMeta {
                config,
                ..ImageMeta::default()
            },
            read_only: false,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn image_config_fills_only_what_the_manifest_leaves_unset() {
        let cfg = ImageConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["--serve".into()]),
            env: vec!["PATH=/bin".into(), "MODE=image".into()],
            workdir: Some("/srv".into()),
            user: Some("1000:1000".into()),
        };
        let s = with_image_defaults(&spec(""), &info(cfg.clone()));
        assert_eq!(s.process.command, Some(vec!["/entry".to_string()]));
        assert_eq!(s.process.args, Some(vec!["--serve".to_string()]));
        assert_eq!(s.process.workdir.as_deref(), Some("/srv"));
        assert_eq!(s.process.env["MODE"], "image");
        let own = with_image_defaults(
            &spec(", command: [/own], env: { MODE: manifest }, workdir: /w"),
            &info(cfg),
        );
        assert_eq!(own.process.command, Some(vec!["/own".to_string()]));
        assert_eq!(
            own.process.args, None,
            "the image's cmd belongs to its entrypoint, not to the manifest's command"
        );
        assert_eq!(own.process.env["MODE"], "manifest");
        assert_eq!(own.process.workdir.as_deref(), Some("/w"));
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert!(is_mountpoint(Path::new("/proc")));
        assert!(!is_mountpoint(Path::new("/proc/self")));
    }

    /// A full-OS init gets what it cannot mount itself, and systemd its stop
    /// signal; a manifest's own mount or signal stays; others get nothing.
    #[test]
    fn init_defaults_follow_the_image_init() {
        let targets = |s: &Spec| {
            s.mounts
                .iter()
                .map(|m| m.target.clone())
                .collect::<Vec<_>>()
        };
        let systemd = tempfile::tempdir().unwrap();
        fs::create_dir_all(systemd.path().join("sbin")).unwrap();
        std::os::unix::fs::symlink("/lib/systemd/systemd", systemd.path().join("sbin/init"))
            .unwrap();
        let s = with_init_defaults(spec(", boot: true"), systemd.path());
        assert_eq!(s.stop_signal, "SIGRTMIN+3");
        assert_eq!(targets(&s), ["/run", "/run/lock"]);
        let own = with_init_defaults(
            spec(", boot: true, stop_signal: SIGTERM, mounts: [{ type: tmpfs, target: /run/ }]"),
            systemd.path(),
        );
        assert_eq!(own.stop_signal, "SIGTERM");
        assert_eq!(targets(&own), ["/run/", "/run/lock"]);
        let procd = tempfile::tempdir().unwrap();
        fs::create_dir_all(procd.path().join("sbin")).unwrap();
        fs::write(procd.path().join("sbin/procd"), "").unwrap();
        let s = with_init_defaults(spec(", boot: true"), procd.path());
        assert_eq!(s.stop_signal, "SIGPWR");
        assert_eq!(targets(&s), ["/tmp"]);
        // Not full-OS: untouched, whatever the image holds.
        let s = with_init_defaults(spec(", command: [sh]"), systemd.path());
        assert!(s.mounts.is_empty());
        assert_eq!(s.stop_signal, "SIGTERM");
    }
}
