//! Root tests of the container runtime against a busybox-static rootfs built
//! in a temp dir. Without root they print a reason and return. Each test has
//! its own rootfs, runtime dir and (when it needs one) its own v1 cgroup,
//! removed in `Drop` even when the test fails.

// Test setup: a failed step should panic with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runtime_fixture;

use std::fs;
use std::process::Command;

use berth::host::runtime::join;
use berth::host::runtime::oneshot::default_spec;
use berth::model::{IdMap, IdMaps, User};

use runtime_fixture::*;

fn root() -> bool {
    root_in("root_runtime")
}

#[test]
fn pid1_is_the_command_with_its_hostname() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let mut spec = sh(
        "pid1",
        "echo pid=$$; hostname; cat /proc/1/cmdline | tr '\\0' ' '",
    );
    spec.process.hostname = "box-one".into();
    let (code, out) = fx.run(&spec);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "box-one");
    assert!(lines[2].starts_with("/bin/sh -c"), "{out}");
}

#[test]
fn env_workdir_rlimits_and_read_only_rootfs() {
    if !root() {
        return;
    }
    use berth::model::{MountKind, MountSpec, Rlimit};
    let fx = Fixture::new();
    let mut spec = sh(
        "proc",
        "pwd; echo $GREETING; ulimit -n; touch /x 2>/dev/null && echo ROOT-WRITABLE; touch /tmp/ok && echo tmp-ok",
    );
    spec.process
        .env
        .insert("GREETING".into(), "hello there".into());
    spec.process.workdir = Some("/srv/app".into());
    spec.process.rlimits = vec![Rlimit {
        name: "nofile".into(),
        soft: Some(123),
        hard: Some(456),
    }];
    spec.readonly = true;
    spec.mounts = vec![MountSpec {
        kind: MountKind::Tmpfs {
            size: None,
            mode: None,
        },
        target: "/tmp".into(),
        readonly: false,
    }];
    fs::create_dir_all(fx.paths.rootfs.join("srv/app")).unwrap();
    let (code, out) = fx.run(&spec);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "/srv/app\nhello there\n123\ntmp-ok\n");
}

#[test]
fn capability_sets_equal_the_default_masks() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let (code, out) = fx.run(&sh("caps", "grep Cap /proc/self/status"));
    assert_eq!(code, 0, "{out}");
    // Docker's default set: 0xa80425fb.
    assert_eq!(cap_line(&out, "CapEff:"), "00000000a80425fb");
    assert_eq!(cap_line(&out, "CapPrm:"), "00000000a80425fb");
    assert_eq!(cap_line(&out, "CapBnd:"), "00000000a80425fb");
    assert_eq!(cap_line(&out, "CapInh:"), "0000000000000000");
    assert_eq!(cap_line(&out, "CapAmb:"), "0000000000000000");
}

#[test]
fn non_root_user_keeps_chosen_caps_through_ambient() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    // A set the manifest chose (drop all, keep one): usable by a non-root user.
    let mut spec = sh("nobody", "id -u; grep Cap /proc/self/status");
    spec.process.user = Some(User::Name("nobody".into()));
    spec.capabilities = ["CAP_NET_BIND_SERVICE".to_string()].into_iter().collect();
    let (code, out) = fx.run(&spec);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("65534\n"), "{out}");
    for key in ["CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:"] {
        assert_eq!(cap_line(&out, key), "0000000000000400", "{key}");
    }
    // The default set: bounding only, nothing usable (as Docker does).
    spec.capabilities = default_spec("d", Vec::new()).capabilities;
    let (code, out) = fx.run(&spec);
    assert_eq!(code, 0, "{out}");
    assert_eq!(cap_line(&out, "CapBnd:"), "00000000a80425fb");
    for key in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(cap_line(&out, key), "0000000000000000", "{key}");
    }
}

#[test]
fn seccomp_denies_with_eperm_and_unconfined_allows() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    // unshare(CLONE_NEWUSER) needs no capability: only the filter stops it.
    let (code, out) = fx.run(&sh("sc", "unshare -U true"));
    assert_ne!(code, 0);
    assert!(out.contains("Operation not permitted"), "{out}");
    let mut open = sh("sc2", "unshare -U true && echo allowed");
    open.seccomp = false;
    let (code, out) = fx.run(&open);
    assert_eq!((code, out.trim()), (0, "allowed"));
}

#[test]
fn proc_paths_are_masked_and_proc_sys_is_read_only() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    // Mask only what this kernel has (/proc/kcore needs CONFIG_PROC_KCORE).
    let files: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
    ]
    .into_iter()
    .filter(|p| fs::metadata(p).map(|m| m.is_file()).unwrap_or(false))
    .collect();
    assert!(!files.is_empty());
    let script = format!("for f in {}; do echo $f=$(wc -c < $f); done; echo x > /proc/sys/kernel/domainname && echo WROTE", files.join(" "));
    let (_, out) = fx.run(&sh("mask", &script));
    for f in &files {
        assert!(out.contains(&format!("{f}=0")), "{f} not masked: {out}");
    }
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!out.contains("WROTE"));
}

#[test]
fn user_namespace_root_maps_to_the_configured_host_id() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    let mut spec = default_spec("userns", vec!["sleep".into(), "300".into()]);
    let map = vec![IdMap {
        inside: 0,
        outside: 200000,
        count: 65536,
    }];
    spec.namespaces.user = Some(IdMaps {
        uid: map.clone(),
        gid: map,
    });
    let pid = fx.start(&spec).unwrap();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("200000"),
        "{uid_line}"
    );
    let map = fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "65536"]
    );
    // exec joins the user namespace too: root inside, same map.
    let cmd: Vec<String> = [
        "/bin/sh",
        "-c",
        "test $(id -u) = 0 && grep -q 200000 /proc/self/uid_map && exit 4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(join::exec(&fx.paths.run_dir, &cmd, false).unwrap(), 4);
}

#[test]
fn manifest_mounts_bind_tmpfs_volume() {
    if !root() {
        return;
    }
    use berth::model::{MountKind, MountSpec};
    let fx = Fixture::new();
    let host = fx.dir.path().join("hostdata");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("hello"), "from host\n").unwrap();
    let mut spec = sh(
        "mnt",
        "cat /data/hello; touch /data/x 2>/dev/null && echo BIND-WRITABLE; grep ' /scratch tmpfs' /proc/mounts | grep -c size=1024k; echo kept > /vol/file",
    );
    spec.mounts = vec![
        MountSpec {
            kind: MountKind::Bind {
                source: host.to_string_lossy().into_owned(),
            },
            target: "/data".into(),
            readonly: true,
        },
        MountSpec {
            kind: MountKind::Tmpfs {
                size: Some(1 << 20),
                mode: None,
            },
            target: "/scratch".into(),
            readonly: false,
        },
        MountSpec {
            kind: MountKind::Volume { name: "v1".into() },
            target: "/vol".into(),
            readonly: false,
        },
    ];
    let (code, out) = fx.run(&spec);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "from host\n1\n");
    assert_eq!(
        fs::read_to_string(fx.paths.volumes_dir.join("v1/file")).unwrap(),
        "kept\n"
    );
    // Nothing leaked into the host's mount table.
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(&fx.paths.rootfs.to_string_lossy().into_owned()),
        "a mount leaked"
    );
}

#[test]
fn time_namespace_when_asked() {
    if !root() {
        return;
    }
    let Ok(host_ns) = fs::read_link("/proc/self/ns/time") else {
        eprintln!("skipped: this kernel has no time namespaces");
        return;
    };
    let fx = Fixture::new();
    let mut spec = sh("time", "readlink /proc/self/ns/time");
    spec.namespaces.time = true;
    let (code, out) = fx.run(&spec);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("time:["), "{out}");
    assert_ne!(out.trim(), host_ns.to_string_lossy());
    let (_, out) = fx.run(&sh("notime", "readlink /proc/self/ns/time"));
    assert_eq!(out.trim(), host_ns.to_string_lossy());
}

#[test]
fn missing_rootfs_is_a_clear_error() {
    if !root() {
        return;
    }
    let mut fx = Fixture::new();
    fx.paths.rootfs = fx.dir.path().join("nope");
    let err = fx
        .start(&default_spec("gone", vec!["true".into()]))
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    // Nothing left behind: no runtime dir, so no monitor either.
    assert!(!fx.paths.run_dir.exists());
    let mut spec = default_spec("nouser", vec!["true".into()]);
    spec.process.user = Some(User::Name("ghost".into()));
    fx.paths.rootfs = fx.dir.path().join("rootfs");
    let err = fx.start(&spec).unwrap_err();
    assert!(err.to_string().contains("user `ghost`"), "{err}");
    assert!(!fx.paths.run_dir.exists());
}

/// A hook that records what it saw of the waiting child, or fails.
#[test]
fn cgroup2_host_gives_a_read_only_own_cgroup_view() {
    if !root() {
        return;
    }
    let fx = Fixture::new();
    // A private mount namespace (gone with its shell) where /sys/fs/cgroup is
    // cgroup2 only, as on OpenWrt; this machine's own layout is untouched.
    let script = format!(
        "umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup; mount -t cgroup2 none /sys/fs/cgroup; \
         {} __run --rootfs {} -- sh -c 'grep \"^0::\" /proc/self/cgroup; grep \" /sys/fs/cgroup \" /proc/mounts'",
        berth_bin(),
        fx.paths.rootfs.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0::/");
    assert!(
        lines[1].starts_with("cgroup2 /sys/fs/cgroup cgroup2 ro,"),
        "{text}"
    );
}
