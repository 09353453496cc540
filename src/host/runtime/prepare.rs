//! Everything a container's child process will do, computed before clone:
//! namespaces to create, id maps, mount plan, user from the image's passwd,
//! environment, PATH candidates, rlimits, capabilities and the seccomp
//! filter. Reads files; changes nothing.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::caps::{self, CapPlan};
use super::mounts::{self, CgroupView, Layout, MountOp};
use super::{seccomp, Options, Paths, RuntimeError};
use crate::host::cgroup::InitTree;
use crate::host::inroot::{self, Resolve, RootDir};
use crate::model::{HostNamespace, IdMap, Spec, User};

#[cfg(target_env = "gnu")]
type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type RlimitResource = libc::c_int;

fn rlimit_resource(name: &str) -> Option<RlimitResource> {
    let r = match name.to_ascii_lowercase().trim_start_matches("rlimit_") {
        "as" => libc::RLIMIT_AS,
        "core" => libc::RLIMIT_CORE,
        "cpu" => libc::RLIMIT_CPU,
        "data" => libc::RLIMIT_DATA,
        "fsize" => libc::RLIMIT_FSIZE,
        "locks" => libc::RLIMIT_LOCKS,
        "memlock" => libc::RLIMIT_MEMLOCK,
        "msgqueue" => libc::RLIMIT_MSGQUEUE,
        "nice" => libc::RLIMIT_NICE,
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "rss" => libc::RLIMIT_RSS,
        "rtprio" => libc::RLIMIT_RTPRIO,
        "rttime" => libc::RLIMIT_RTTIME,
        "sigpending" => libc::RLIMIT_SIGPENDING,
        "stack" => libc::RLIMIT_STACK,
        _ => return None,
    };
    Some(r)
}

/// Everything the child does, computed before clone.
pub struct Prepared {
    pub(crate) clone_flags: libc::c_int,
    pub(crate) unshare_cgroup: bool,
    pub(crate) time_ns: bool,
    pub(crate) uid_map: Option<String>,
    pub(crate) gid_map: Option<String>,
    pub(crate) hostname: Option<CString>,
    pub(crate) rootfs: CString,
    /// How the child resolves paths below the rootfs.
    pub(crate) resolve: Resolve,
    pub(crate) before: Vec<MountOp>,
    pub(crate) after: Vec<MountOp>,
    pub(crate) workdir: CString,
    pub(crate) rlimits: Vec<(RlimitResource, libc::rlimit)>,
    pub(crate) uid: libc::uid_t,
    pub(crate) gid: libc::gid_t,
    pub(crate) groups: Vec<libc::gid_t>,
    pub(crate) caps: CapPlan,
    pub(crate) filter: Option<Vec<libc::sock_filter>>,
    /// Candidate paths for argv[0] in PATH order.
    pub(crate) programs: Vec<CString>,
    pub(crate) argv: Vec<CString>,
    pub(crate) envp: Vec<CString>,
    pub(crate) path_env: String,
}

impl Prepared {
    /// Set one environment variable unless the container already sets it.
    pub fn add_env(&mut self, key: &str, value: &str) -> Result<(), RuntimeError> {
        let prefix = format!("{key}=");
        if !self
            .envp
            .iter()
            .any(|e| e.as_bytes().starts_with(prefix.as_bytes()))
        {
            self.envp.push(cstr(&format!("{key}={value}"), "exec")?);
        }
        Ok(())
    }

    /// Replace the command (for `exec`), searching the container's PATH.
    pub fn set_command(&mut self, argv: &[String]) -> Result<(), RuntimeError> {
        let prog = argv.first().ok_or_else(|| RuntimeError::Invalid {
            name: "exec".into(),
            message: "no command given".into(),
        })?;
        self.programs = if prog.contains('/') {
            vec![cstr(prog, "exec")?]
        } else {
            self.path_env
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| cstr(&format!("{d}/{prog}"), "exec"))
                .collect::<Result<Vec<_>, _>>()?
        };
        self.argv = argv
            .iter()
            .map(|a| cstr(a, "exec"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }
}

pub(crate) fn cstr(s: &str, name: &str) -> Result<CString, RuntimeError> {
    CString::new(s).map_err(|_| RuntimeError::Invalid {
        name: name.into(),
        message: format!("`{s}` contains a NUL byte"),
    })
}

/// The default capability set in the `Spec`'s (sorted) order.
fn sorted_defaults() -> impl Iterator<Item = &'static str> {
    let mut v: Vec<&'static str> = caps::DEFAULT_CAPS.to_vec();
    v.sort_unstable();
    v.into_iter()
}

/// What the container sees at /sys/fs/cgroup: the tree its init manages
/// (placed by the host side), else on a cgroup2 host its own subtree
/// read-only, else nothing.
fn cgroup_view(unshare_cgroup: bool, tree: Option<InitTree>) -> CgroupView {
    match (unshare_cgroup, tree) {
        (false, _) => CgroupView::Empty,
        (true, Some(InitTree::Unified)) => CgroupView::Unified { writable: true },
        (true, Some(InitTree::NamedSystemd)) => CgroupView::NamedSystemd,
        (true, None) if host_is_cgroup2() => CgroupView::Unified { writable: false },
        (true, None) => CgroupView::Empty,
    }
}

/// Whether /sys/fs/cgroup is a cgroup2 mount (pure v2, as on OpenWrt).
fn host_is_cgroup2() -> bool {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a valid path and an out pointer the kernel fills on success.
    if unsafe { libc::statfs(b"/sys/fs/cgroup\0".as_ptr().cast(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: statfs succeeded, so st is initialised.
    let st = unsafe { st.assume_init() };
    u64::try_from(st.f_type).ok() == Some(0x6367_7270) // CGROUP2_SUPER_MAGIC
}

/// The namespace files that must exist for a namespace kind.
pub fn ns_supported(kind: &str) -> bool {
    Path::new("/proc/self/ns").join(kind).exists()
}

/// A text file of the image (at most 1 MiB), resolved inside the rootfs: an
/// `etc` symlink to the host's never makes the host's passwd the image's.
fn read_in_root(rootfs: &Path, file: &str) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    let _ = RootDir::open(rootfs, Resolve::Openat2)
        .and_then(|r| r.open_read(&inroot::path_components(file)?))
        .and_then(|f| f.take(1 << 20).read_to_string(&mut text));
    text
}

/// Look a user up in the image's /etc/passwd: (uid, gid, home).
fn lookup_user(rootfs: &Path, user: &User) -> Option<(u32, u32, String)> {
    let passwd = read_in_root(rootfs, "/etc/passwd");
    let entries = passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6).then(|| {
            (
                f[0],
                f[2].parse::<u32>().ok(),
                f[3].parse::<u32>().ok(),
                f[5],
            )
        })
    });
    for (name, uid, gid, home) in entries {
        let (Some(uid), Some(gid)) = (uid, gid) else {
            continue;
        };
        let hit = match user {
            User::Name(n) => n == name,
            User::Id { uid: want, .. } => *want == uid,
        };
        if hit {
            return Some((uid, gid, home.to_string()));
        }
    }
    None
}

/// Supplementary groups of `name` from the image's /etc/group.
fn lookup_groups(rootfs: &Path, name: &str) -> Vec<u32> {
    let group = read_in_root(rootfs, "/etc/group");
    group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].split(',').any(|m| m == name))
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .collect()
}

fn id_map_text(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
        .collect()
}

/// The argv of the container's init: `init` for a full-OS container, else command + args.
pub fn argv_of(spec: &Spec) -> Vec<String> {
    if spec.process.boot {
        let mut v = vec![spec.process.init.clone()];
        v.extend(spec.process.args.clone().unwrap_or_default());
        return v;
    }
    let mut v = spec.process.command.clone().unwrap_or_default();
    v.extend(spec.process.args.clone().unwrap_or_default());
    v
}

/// Compute the child's whole setup from the spec. Reads the image's passwd file
/// and the kernel's limits; changes nothing.
pub fn prepare(
    spec: &Spec,
    paths: &Paths,
    opts: &Options,
    join_net: bool,
) -> Result<Prepared, RuntimeError> {
    prepare_with_console(spec, paths, opts, join_net, None)
}

/// [`prepare`] for a start with a console: the host path of its pty slave,
/// bound on /dev/console.
pub fn prepare_with_console(
    spec: &Spec,
    paths: &Paths,
    opts: &Options,
    join_net: bool,
    console: Option<&Path>,
) -> Result<Prepared, RuntimeError> {
    let name = spec.name.as_str();
    let invalid = |message: String| RuntimeError::Invalid {
        name: name.into(),
        message,
    };
    if !paths.rootfs.is_dir() {
        return Err(RuntimeError::Io {
            verb: "open rootfs",
            path: paths.rootfs.clone(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        });
    }
    let host = &spec.namespaces.host;
    let mut flags = libc::CLONE_NEWNS;
    let mut need = vec!["mnt"];
    for (ns, flag, kind) in [
        (HostNamespace::Pid, libc::CLONE_NEWPID, "pid"),
        (HostNamespace::Uts, libc::CLONE_NEWUTS, "uts"),
        (HostNamespace::Ipc, libc::CLONE_NEWIPC, "ipc"),
    ] {
        if !host.contains(&ns) {
            flags |= flag;
            need.push(kind);
        }
    }
    let new_net = !opts.host_network && !join_net;
    if new_net {
        flags |= libc::CLONE_NEWNET;
        need.push("net");
    }
    let unshare_cgroup = !host.contains(&HostNamespace::Cgroup);
    if unshare_cgroup {
        need.push("cgroup");
    }
    if spec.namespaces.user.is_some() {
        flags |= libc::CLONE_NEWUSER;
        need.push("user");
    }
    if spec.namespaces.time {
        need.push("time");
    }
    for kind in need {
        if !ns_supported(kind) {
            return Err(RuntimeError::Unsupported { kind });
        }
    }
    let argv_s = argv_of(spec);
    let Some(prog) = argv_s.first().cloned() else {
        return Err(invalid(
            "no command to run (set `command` or `boot: true`)".into(),
        ));
    };
    // User and environment.
    let (uid, gid, home, groups) = match &spec.process.user {
        None => (0, 0, "/root".to_string(), Vec::new()),
        Some(user) => {
            let found = lookup_user(&paths.rootfs, user);
            match (user, found) {
                (User::Name(n), Some((u, g, h))) => (u, g, h, lookup_groups(&paths.rootfs, n)),
                (User::Name(n), None) => {
                    return Err(invalid(format!(
                        "user `{n}` is not in the image's /etc/passwd"
                    )))
                }
                (User::Id { uid, gid }, found) => {
                    let g = gid.or(found.as_ref().map(|f| f.1)).unwrap_or(0);
                    (
                        *uid,
                        g,
                        found.map(|f| f.2).unwrap_or_else(|| "/".into()),
                        Vec::new(),
                    )
                }
            }
        }
    };
    let hostname = if spec.process.hostname.is_empty() {
        spec.name.clone()
    } else {
        spec.process.hostname.clone()
    };
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    );
    env.insert("HOSTNAME".into(), hostname.clone());
    env.insert("HOME".into(), home);
    if spec.process.boot {
        env.insert("container".into(), "berth".into());
    }
    env.extend(spec.process.env.clone());
    let envp = env
        .iter()
        .map(|(k, v)| cstr(&format!("{k}={v}"), name))
        .collect::<Result<Vec<_>, _>>()?;
    let programs = if prog.contains('/') {
        vec![cstr(&prog, name)?]
    } else {
        let path = env.get("PATH").cloned().unwrap_or_default();
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| cstr(&format!("{d}/{prog}"), name))
            .collect::<Result<Vec<_>, _>>()?
    };
    let argv = argv_s
        .iter()
        .map(|a| cstr(a, name))
        .collect::<Result<Vec<_>, _>>()?;
    // Limits: an unset side keeps the current value.
    let mut rlimits = Vec::new();
    for rl in &spec.process.rlimits {
        let res = rlimit_resource(&rl.name)
            .ok_or_else(|| invalid(format!("unknown rlimit `{}`", rl.name)))?;
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: cur is a valid rlimit to fill.
        if unsafe { libc::getrlimit(res, &mut cur) } != 0 {
            return Err(RuntimeError::sys("read rlimits"));
        }
        let to_rlim = |v: u64| libc::rlim_t::try_from(v).unwrap_or(libc::RLIM_INFINITY);
        let soft = rl.soft.map(to_rlim).unwrap_or(cur.rlim_cur);
        let hard = rl.hard.map(to_rlim).unwrap_or(cur.rlim_max.max(soft));
        rlimits.push((
            res,
            libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            },
        ));
    }
    let keep =
        caps::mask(&spec.capabilities).map_err(|n| invalid(format!("unknown capability `{n}`")))?;
    // A non-root user gets usable capabilities only when the manifest chose
    // them; with the default set it runs without any, as under Docker.
    let chosen = spec
        .capabilities
        .iter()
        .map(String::as_str)
        .ne(sorted_defaults());
    let cap_plan = CapPlan::new(keep, caps::last_cap(), uid != 0 && chosen);
    let filter = if spec.seccomp {
        Some(seccomp::default_filter(keep))
    } else {
        None
    };
    let layout = Layout {
        volumes_dir: &paths.volumes_dir,
        user_ns: spec.namespaces.user.is_some(),
        new_net,
        cgroup: cgroup_view(unshare_cgroup, opts.init_tree),
        console,
    };
    let before =
        mounts::plan_before_pivot(&layout, &spec.mounts).map_err(|e| invalid(e.to_string()))?;
    let rootfs = CString::new(paths.rootfs.as_os_str().as_bytes())
        .map_err(|_| invalid("rootfs path contains a NUL byte".into()))?;
    Ok(Prepared {
        clone_flags: flags,
        unshare_cgroup,
        time_ns: spec.namespaces.time,
        uid_map: spec.namespaces.user.as_ref().map(|m| id_map_text(&m.uid)),
        gid_map: spec.namespaces.user.as_ref().map(|m| id_map_text(&m.gid)),
        hostname: if host.contains(&HostNamespace::Uts) {
            None
        } else {
            Some(cstr(&hostname, name)?)
        },
        rootfs,
        resolve: Resolve::Openat2,
        before,
        after: mounts::plan_after_pivot(spec.readonly),
        workdir: cstr(spec.process.workdir.as_deref().unwrap_or("/"), name)?,
        rlimits,
        uid,
        gid,
        groups,
        caps: cap_plan,
        filter,
        programs,
        argv,
        envp,
        path_env: env.get("PATH").cloned().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        let paths = Paths {
            rootfs,
            run_dir: dir.path().join("run"),
            container_dir: dir.path().join("c"),
            volumes_dir: dir.path().join("v"),
        };
        (dir, paths)
    }

    #[test]
    fn prepare_resolves_command_env_and_namespaces() {
        let (_dir, paths) = fixture();
        let mut spec =
            crate::host::runtime::oneshot::default_spec("web", vec!["httpd".into(), "-f".into()]);
        spec.process
            .env
            .insert("PATH".into(), "/opt/bin:/bin".into());
        spec.namespaces.host.insert(HostNamespace::Uts);
        let mut p = prepare(&spec, &paths, &Options::default(), false).unwrap();
        assert_eq!(
            p.programs,
            vec![
                CString::new("/opt/bin/httpd").unwrap(),
                CString::new("/bin/httpd").unwrap()
            ]
        );
        assert!(p
            .envp
            .contains(&CString::new("PATH=/opt/bin:/bin").unwrap()));
        assert!(p.envp.contains(&CString::new("HOME=/root").unwrap()));
        assert_eq!(p.clone_flags & libc::CLONE_NEWUTS, 0);
        assert_ne!(p.clone_flags & libc::CLONE_NEWPID, 0);
        assert!(
            p.hostname.is_none(),
            "a shared UTS namespace keeps the host name"
        );
        assert!(p.filter.is_some());
        p.add_env("TERM", "vt100").unwrap();
        p.add_env("PATH", "/nope").unwrap();
        assert!(p.envp.contains(&CString::new("TERM=vt100").unwrap()));
        assert!(!p.envp.contains(&CString::new("PATH=/nope").unwrap()));
        p.set_command(&["ls".to_string()]).unwrap();
        assert_eq!(p.argv, vec![CString::new("ls").unwrap()]);
        assert_eq!(p.programs[0], CString::new("/opt/bin/ls").unwrap());
    }

    fn fails(spec: &Spec, paths: &Paths) -> RuntimeError {
        match prepare(spec, paths, &Options::default(), false) {
            Err(e) => e,
            Ok(_) => panic!("prepare accepted a bad spec"),
        }
    }

    #[test]
    fn prepare_refuses_bad_specs() {
        let (dir, mut paths) = fixture();
        let spec = crate::host::runtime::oneshot::default_spec("web", Vec::new());
        let err = fails(&spec, &paths);
        assert!(err.to_string().contains("no command"), "{err}");
        let mut spec = crate::host::runtime::oneshot::default_spec("web", vec!["true".into()]);
        spec.capabilities.insert("CAP_BOGUS".into());
        assert!(fails(&spec, &paths).to_string().contains("CAP_BOGUS"));
        spec.capabilities.remove("CAP_BOGUS");
        spec.process.rlimits = vec![crate::model::Rlimit {
            name: "bogus".into(),
            soft: None,
            hard: None,
        }];
        assert!(fails(&spec, &paths).to_string().contains("rlimit"));
        paths.rootfs = dir.path().join("missing");
        spec.process.rlimits.clear();
        assert!(matches!(fails(&spec, &paths), RuntimeError::Io { .. }));
    }

    #[test]
    fn user_lookup_reads_the_image_passwd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:44::/var/www:/bin/false\nbad\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "net:x:7:www,other\nnone:x:8:\n",
        )
        .unwrap();
        assert_eq!(
            lookup_user(dir.path(), &User::Name("www".into())),
            Some((33, 44, "/var/www".into()))
        );
        assert_eq!(
            lookup_user(dir.path(), &User::Id { uid: 0, gid: None }).map(|u| u.1),
            Some(0)
        );
        assert_eq!(lookup_user(dir.path(), &User::Name("nobody".into())), None);
        assert_eq!(lookup_groups(dir.path(), "www"), vec![7]);
    }

    /// An image whose `etc` leads to a host dir does not get the host's users.
    #[test]
    fn user_lookup_stays_inside_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host-etc");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("passwd"), "www:x:33:44::/var/www:/bin/false\n").unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        std::os::unix::fs::symlink(&host, dir.path().join("root/etc")).unwrap();
        let root = dir.path().join("root");
        assert_eq!(lookup_user(&root, &User::Name("www".into())), None);
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(rlimit_resource("nofile"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_resource("RLIMIT_NPROC"), Some(libc::RLIMIT_NPROC));
        assert_eq!(rlimit_resource("bogus"), None);
    }

    #[test]
    fn id_maps_render_as_proc_lines() {
        let m = [IdMap {
            inside: 0,
            outside: 100000,
            count: 65536,
        }];
        assert_eq!(id_map_text(&m), "0 100000 65536\n");
    }
}
