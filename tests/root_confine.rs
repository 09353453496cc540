//! Root tests (root_confine) of what berth writes into a container's rootfs from the host
//! side, from the hostile side: images (built here from the busybox rootfs
//! tarball) whose `etc`, `etc/resolv.conf` or a mount target is a symlink to
//! a host directory or file, and a container that replaces its own /etc with
//! such a symlink and is restarted. Each asserts the host directory is byte
//! for byte unchanged. Every case also runs with openat2 answering ENOSYS (a
//! seccomp filter around berth, as a 5.4 kernel answers), so the O_NOFOLLOW
//! walk is what resolves. Each test has its own netns, store, runtime dir and
//! cgroup parent, removed in `Drop` even on failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// One test's world: a named netns, a store, a runtime dir, a cgroup parent,
/// and a host directory (`victim/`) no container may change.
struct World {
    name: String,
    dir: tempfile::TempDir,
    /// Run berth with openat2 failing with ENOSYS.
    no_openat2: bool,
}

impl World {
    fn new(test: &str, no_openat2: bool) -> World {
        let name = format!("bi-{}-{test}{}", std::process::id(), u8::from(no_openat2));
        common::add_netns(&name);
        let w = World {
            name,
            dir: tempfile::tempdir().unwrap(),
            no_openat2,
        };
        let v = w.victim();
        fs::create_dir_all(v.join("sub")).unwrap();
        fs::write(v.join("hosts"), "127.0.0.1 the-host-own\n").unwrap();
        fs::write(v.join("resolv.conf"), "nameserver 192.0.2.53\n").unwrap();
        fs::write(v.join("sub/keep"), "keep\n").unwrap();
        w
    }

    fn victim(&self) -> PathBuf {
        self.dir.path().join("victim")
    }

    /// Every entry below the victim dir with its kind and content.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                let t = e.file_type().unwrap();
                if t.is_dir() {
                    out.insert(p.clone(), b"dir".to_vec());
                    walk(&p, out);
                } else if t.is_symlink() {
                    out.insert(
                        p.clone(),
                        fs::read_link(&p)
                            .unwrap()
                            .into_os_string()
                            .into_encoded_bytes(),
                    );
                } else {
                    out.insert(p.clone(), fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.victim(), &mut out);
        out
    }

    /// An image tarball: the busybox rootfs changed by `edit` (given its root).
    fn image(&self, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
        let root = self.dir.path().join(format!("img-{name}"));
        fs::create_dir(&root).unwrap();
        let ok = Command::new("tar")
            .arg("-xzf")
            .arg(common::rootfs_tarball())
            .arg("-C")
            .arg(&root)
            .status()
            .unwrap()
            .success();
        assert!(ok, "unpack the busybox rootfs");
        edit(&root);
        let out = self.dir.path().join(format!("{name}.tar"));
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&out)
            .arg(".")
            .status()
            .unwrap()
            .success();
        assert!(ok, "pack the image");
        out
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn manifest(&self, image: &Path, containers: &str) -> PathBuf {
        let text = format!(
            "version: 1\nsettings: {{ root: {}, runtime_dir: {} }}\nimages:\n  bb: {{ path: {} }}\ncontainers:{containers}\n",
            self.store().display(),
            self.dir.path().join("run").display(),
            image.display()
        );
        let p = self.dir.path().join("m.yaml");
        fs::write(&p, text).unwrap();
        p
    }

    /// Run berth with `args` inside the test's network namespace.
    fn berth(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.name))
            .arg(berth_bin())
            .args(["--cgroup-parent", &self.name, "--runtime-dir"])
            .arg(self.dir.path().join("run"))
            .arg("--root")
            .arg(self.store())
            .args(args);
        if self.no_openat2 {
            // SAFETY: the closure only makes one prctl call, which is
            // async-signal-safe, between fork and exec.
            unsafe { cmd.pre_exec(enosys_openat2) };
        }
        cmd.output().unwrap()
    }

    /// `berth apply`: (success, stdout + stderr).
    fn apply(&self, image: &Path, containers: &str) -> (bool, String) {
        let m = self.manifest(image, containers);
        let out = self.berth(&["apply", m.to_str().unwrap()]);
        (out.status.success(), text(&out))
    }

    /// A file a container wrote into its volume `out`, once it is there.
    fn wait_for(&self, file: &str) -> String {
        let p = self.store().join("volumes/out").join(file);
        let until = Instant::now() + Duration::from_secs(10);
        while !p.exists() {
            assert!(Instant::now() < until, "{} never appeared", p.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(50));
        fs::read_to_string(p).unwrap()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let img = self.dir.path().join("none.tar");
        let m = self.manifest(&img, " {}");
        let _ = self.berth(&["apply", m.to_str().unwrap()]);
        common::remove_cgroups(&self.name);
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The berth binary: cargo's, or `BERTH_BIN` (another build, the VM tier).
fn berth_bin() -> String {
    std::env::var("BERTH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_string())
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// openat2 answers ENOSYS, as on kernels before 5.6.
fn enosys_openat2() -> std::io::Result<()> {
    common::deny_with_enosys(libc::SYS_openat2)
}

/// A path that climbs out of any rootfs and names `target` from `/`.
fn climbing(target: &Path) -> String {
    format!(
        "{}{}",
        "../".repeat(40),
        target.display().to_string().trim_start_matches('/')
    )
}

/// The container under test: DNS set (so resolv.conf is written), hosts,
/// a tmpfs and a volume.
const WRITES_ETC: &str = "
  c:
    image: bb
    command: [/bin/sh, -c, 'cat /etc/resolv.conf /etc/hosts > /out/files 2>&1']
    dns: [10.77.0.53]
    mounts:
      - { type: volume, source: out, target: /out }";

fn both(test: &str, f: impl Fn(&World)) {
    if !common::root_or_skip(test) {
        return;
    }
    for no_openat2 in [false, true] {
        let w = World::new(test, no_openat2);
        f(&w);
    }
}

/// The walk (no openat2) refuses a symlink component: its error says so.
fn walk_refused(out: &str) -> bool {
    out.contains("symbolic links") || out.contains("Not a directory")
}

#[test]
fn an_etc_symlink_to_a_host_dir_is_never_written_through() {
    both("etcabs", |w| {
        let before = w.snapshot();
        for (i, link) in [w.victim().display().to_string(), climbing(&w.victim())]
            .into_iter()
            .enumerate()
        {
            let img = w.image(&format!("etc{i}"), |r| {
                fs::remove_dir_all(r.join("etc")).unwrap();
                std::os::unix::fs::symlink(&link, r.join("etc")).unwrap();
            });
            let (ok, out) = w.apply(&img, WRITES_ETC);
            assert_eq!(w.snapshot(), before, "the host dir changed ({link}): {out}");
            // The container's /etc leads nowhere inside its root: a clear error.
            assert!(!ok && out.contains("etc/resolv.conf"), "{out}");
            if w.no_openat2 {
                assert!(walk_refused(&out), "{out}");
            }
            let (ok, out) = w.apply(&img, " {}");
            assert!(ok, "{out}");
        }
    });
}

#[test]
fn a_resolv_conf_symlink_to_a_host_file_is_replaced() {
    both("resolv", |w| {
        let before = w.snapshot();
        let img = w.image("resolv", |r| {
            for f in ["resolv.conf", "hosts"] {
                let _ = fs::remove_file(r.join("etc").join(f));
                std::os::unix::fs::symlink(w.victim().join(f), r.join("etc").join(f)).unwrap();
            }
        });
        let (ok, out) = w.apply(&img, WRITES_ETC);
        assert!(ok, "{out}");
        let files = w.wait_for("files");
        assert_eq!(w.snapshot(), before, "the host files changed");
        // The container gets berth's files, not the host's.
        assert!(files.contains("nameserver 10.77.0.53"), "{files}");
        assert!(files.contains("127.0.1.1\tc"), "{files}");
        assert!(!files.contains("the-host-own"), "{files}");
    });
}

#[test]
fn a_mount_target_through_a_symlink_stays_in_the_rootfs() {
    both("mnt", |w| {
        let before = w.snapshot();
        let img = w.image("mnt", |r| {
            std::os::unix::fs::symlink(w.victim(), r.join("mnt")).unwrap();
            std::os::unix::fs::symlink(climbing(&w.victim()), r.join("srv")).unwrap();
        });
        for target in ["/mnt/new", "/mnt/sub", "/srv/new"] {
            let (ok, out) = w.apply(
                &img,
                &format!(
                    "
  c:
    image: bb
    command: [/bin/true]
    mounts:
      - {{ type: tmpfs, target: {target} }}
      - {{ type: volume, source: v, target: {target}/vol }}"
                ),
            );
            assert_eq!(
                w.snapshot(),
                before,
                "the host dir changed ({target}): {out}"
            );
            assert!(!ok && out.contains(target), "{out}");
            if w.no_openat2 {
                assert!(walk_refused(&out), "{out}");
            }
            let (ok, out) = w.apply(&img, " {}");
            assert!(ok, "{out}");
        }
    });
}

/// The container itself replaces /etc with a symlink to the host dir, then
/// is restarted: berth writes hosts and resolv.conf again at the start.
#[test]
fn a_container_that_plants_an_etc_symlink_is_restarted_safely() {
    both("plant", |w| {
        let before = w.snapshot();
        let img = w.image("plant", |_| {});
        let plant = format!(
            "
  c:
    image: bb
    command: [/bin/sh, -c, 'cat /etc/resolv.conf > /out/files; rm -rf /etc; ln -s {} /etc; ln -s {} /mnt; touch /out/planted']
    dns: [10.77.0.53]
    mounts:
      - {{ type: volume, source: out, target: /out }}",
            w.victim().display(),
            climbing(&w.victim())
        );
        let (ok, out) = w.apply(&img, &plant);
        assert!(ok, "{out}");
        w.wait_for("planted");
        assert!(w.wait_for("files").contains("nameserver 10.77.0.53"));
        let merged = w.store().join("containers/c/merged/etc");
        assert!(fs::symlink_metadata(&merged).unwrap().is_symlink());
        let out = w.berth(&["restart", "c"]);
        let text = text(&out);
        assert_eq!(
            w.snapshot(),
            before,
            "the host dir changed at restart: {text}"
        );
        assert!(!out.status.success() && text.contains("etc/"), "{text}");
        if w.no_openat2 {
            assert!(walk_refused(&text), "{text}");
        }
    });
}

/// A volatile layer is bounded: the container cannot write past its size
/// (the host's RAM is not its to fill).
#[test]
fn a_volatile_layer_is_bounded_inside_the_container() {
    if !common::root_or_skip("volatile") {
        return;
    }
    let w = World::new("volatile", false);
    let img = w.image("vol", |_| {});
    let (ok, out) = w.apply(
        &img,
        "
  c:
    image: bb
    command: [/bin/sh, -c, 'dd if=/dev/zero of=/big bs=1M count=12 2>/out/dd; echo rc=$? >> /out/dd; df -k / >> /out/dd; touch /out/done']
    volatile: { size: 8M }
    mounts:
      - { type: volume, source: out, target: /out }",
    );
    assert!(ok, "{out}");
    w.wait_for("done");
    let dd = w.wait_for("dd");
    assert!(
        dd.contains("No space left on device") && !dd.contains("rc=0"),
        "{dd}"
    );
    assert!(
        dd.contains("8192"),
        "the root is an 8M overlay over tmpfs: {dd}"
    );
}
