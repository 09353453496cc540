//! Root tests of the image store: ownership, device nodes and file
//! capabilities kept by extraction, and the writable layer mounted for real
//! (overlayfs, tmpfs overlay) in a private mount namespace of the test thread.
//! Without root each test prints why and returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth::host::store::layer::{detect_overlay, mount_layer, LayerPlan};
use berth::host::store::{ImageInfo, RootfsStore, StoreOptions};

mod common;

/// Skip (with a reason) without root; under `make test` a skip is a failure.
macro_rules! need_root {
    () => {
        if !common::root_or_skip(module_path!()) {
            return;
        }
    };
}

fn header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_600_000_000);
    h
}

/// One PAX record: "<len> key=value\n", where len counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len += 1;
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// vfs_cap_data revision 2 granting cap_net_bind_service (bit 10), permitted + effective.
fn cap_net_bind() -> Vec<u8> {
    let mut v = Vec::new();
    for word in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        v.extend_from_slice(&word.to_le_bytes());
    }
    v
}

fn image_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header("etc/owned", tar::EntryType::Regular, 2, 0o4750);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_cksum();
    b.append(&h, &b"ok"[..]).unwrap();
    let mut h = header("dev/null", tar::EntryType::Char, 0, 0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    let rec = pax_record("SCHILY.xattr.security.capability", &cap_net_bind());
    let mut h = header(
        "PaxHeader/ping",
        tar::EntryType::XHeader,
        rec.len() as u64,
        0o644,
    );
    h.set_cksum();
    b.append(&h, &rec[..]).unwrap();
    let mut h = header("bin/ping", tar::EntryType::Regular, 4, 0o755);
    h.set_cksum();
    b.append(&h, &b"ping"[..]).unwrap();
    let mut h = header("etc/motd", tar::EntryType::Regular, 5, 0o644);
    h.set_cksum();
    b.append(&h, &b"lower"[..]).unwrap();
    b.into_inner().unwrap()
}

fn store(tmp: &Path) -> RootfsStore {
    let mut o = StoreOptions::default();
    o.fetch.progress = false;
    RootfsStore::open(&tmp.join("store"), o).unwrap()
}

/// A store in `tmp` with `image_tar()` imported as image `root`.
fn import_image_tar(tmp: &Path) -> (RootfsStore, ImageInfo) {
    let s = store(tmp);
    let p = tmp.join("img.tar");
    std::fs::write(&p, image_tar()).unwrap();
    let info = s.import("root", &p).unwrap();
    (s, info)
}

/// The `security.capability` xattr of `path`.
fn file_caps(path: &std::path::Path) -> Vec<u8> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: NUL-terminated path and name, writable buffer of the given size.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            b"security.capability\0".as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n)
        .unwrap_or_else(|_| panic!("getxattr: {}", std::io::Error::last_os_error()));
    buf[..n].to_vec()
}

#[test]
fn keeps_owners_devices_and_file_capabilities() {
    need_root!();
    let tmp = tempfile::tempdir().unwrap();
    let (s, info) = import_image_tar(tmp.path());
    let owned = std::fs::metadata(info.rootfs.join("etc/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    // chown happens before chmod, so the setuid bit survives.
    assert_eq!(owned.mode() & 0o7777, 0o4750);
    let null = std::fs::symlink_metadata(info.rootfs.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert_eq!(file_caps(&info.rootfs.join("bin/ping")), cap_net_bind());
    // The copy fallback layer keeps owners, setuid and file capabilities too.
    let both_off = berth::host::store::layer::OverlaySupport {
        kernel: false,
        upper_ok: false,
    };
    let plan = s.plan_layer("copy", &info, None, None, both_off).unwrap();
    let LayerPlan::Copy { rootfs } = plan else {
        panic!("{plan:?}")
    };
    let owned = std::fs::metadata(rootfs.join("etc/owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1234, 5678, 0o4750)
    );
    assert_eq!(file_caps(&rootfs.join("bin/ping")), cap_net_bind());
    assert!(std::fs::symlink_metadata(rootfs.join("dev/null"))
        .unwrap()
        .file_type()
        .is_char_device());
}

/// The copy fallback in a user namespace shifts owners as it copies: setuid
/// kept, file capabilities of the image dropped (never more than the image
/// grants), device nodes shifted too; the image stays as it was.
#[test]
fn copy_fallback_in_a_user_namespace_shifts_owners() {
    need_root!();
    let tmp = tempfile::tempdir().unwrap();
    let (s, info) = import_image_tar(tmp.path());
    let both_off = berth::host::store::layer::OverlaySupport {
        kernel: false,
        upper_ok: false,
    };
    let map = vec![berth::model::IdMap {
        inside: 0,
        outside: 100000,
        count: 65536,
    }];
    let maps = berth::model::IdMaps {
        uid: map.clone(),
        gid: map,
    };
    let plan = s
        .plan_layer("ucopy", &info, None, Some(&maps), both_off)
        .unwrap();
    let LayerPlan::Copy { rootfs } = plan else {
        panic!("{plan:?}")
    };
    let md = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap();
    assert_eq!((md("").uid(), md("").gid()), (100000, 100000));
    let owned = md("etc/owned");
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (101234, 105678, 0o4750)
    );
    let ping = CString::new(rootfs.join("bin/ping").as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated path and name; a null buffer of size 0 asks for the size.
    let n = unsafe {
        libc::getxattr(
            ping.as_ptr(),
            b"security.capability\0".as_ptr().cast(),
            std::ptr::null_mut(),
            0,
        )
    };
    let errno = std::io::Error::last_os_error().raw_os_error();
    assert_eq!((n, errno), (-1, Some(libc::ENODATA)), "no file caps");
    assert_eq!(md("bin/ping").uid(), 100000);
    let null = md("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!((null.uid(), null.rdev()), (100000, libc::makedev(1, 3)));
    let image = std::fs::metadata(info.rootfs.join("etc/owned")).unwrap();
    assert_eq!((image.uid(), image.gid()), (1234, 5678));
    assert_eq!(file_caps(&info.rootfs.join("bin/ping")), cap_net_bind());
}

/// Unmounts what a test mounted, even when an assertion fails.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let c = CString::new(m.as_os_str().as_bytes()).unwrap();
            // SAFETY: NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Give the calling test thread its own mount namespace, private from the host's.
fn private_mount_ns() {
    // SAFETY: unshare affects only this thread's fs view; the arguments are constants.
    assert_eq!(
        unsafe { libc::unshare(libc::CLONE_NEWNS) },
        0,
        "{}",
        std::io::Error::last_os_error()
    );
    // SAFETY: constant NUL-terminated strings; MS_REC|MS_PRIVATE stops propagation to the host.
    let r = unsafe {
        libc::mount(
            b"none\0".as_ptr().cast(),
            b"/\0".as_ptr().cast(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

#[test]
fn overlay_and_volatile_layers_mount() {
    need_root!();
    let tmp = tempfile::tempdir().unwrap();
    let (s, info) = import_image_tar(tmp.path());
    let support = detect_overlay(Path::new("/proc/filesystems"), &s.containers_dir());
    if !support.kernel {
        eprintln!("skipped: no overlayfs in this kernel");
        return;
    }
    assert!(
        support.upper_ok,
        "the test store is expected on a plain filesystem"
    );
    private_mount_ns();
    let mut mounts = Mounts(Vec::new());

    let plan = s.plan_layer("web", &info, None, None, support).unwrap();
    let LayerPlan::Overlay { ref upper, .. } = plan else {
        panic!("{plan:?}")
    };
    let target = tmp.path().join("mnt-web");
    std::fs::create_dir(&target).unwrap();
    mount_layer("web", &plan, &target).unwrap();
    mounts.0.push(target.clone());
    assert_eq!(std::fs::read(target.join("etc/motd")).unwrap(), b"lower");
    std::fs::write(target.join("etc/motd"), b"upper").unwrap();
    assert_eq!(std::fs::read(upper.join("etc/motd")).unwrap(), b"upper");
    assert_eq!(
        std::fs::read(info.rootfs.join("etc/motd")).unwrap(),
        b"lower",
        "the shared image changed"
    );
    // An upper dir on an overlay (OpenWrt's root) is detected as unusable.
    assert!(!detect_overlay(Path::new("/proc/filesystems"), &target).upper_ok);

    let plan = s
        .plan_layer("guest", &info, Some(8 << 20), None, support)
        .unwrap();
    let LayerPlan::TmpfsOverlay { ref tmpfs, .. } = plan else {
        panic!("{plan:?}")
    };
    let target = tmp.path().join("mnt-guest");
    std::fs::create_dir(&target).unwrap();
    mount_layer("guest", &plan, &target).unwrap();
    mounts.0.push(tmpfs.clone());
    mounts.0.push(target.clone());
    std::fs::write(target.join("scratch"), b"ram only").unwrap();
    assert!(tmpfs.join("upper/scratch").exists());
    // The tmpfs bounds what the container writes: 9 MiB do not fit in 8.
    let big = std::fs::write(target.join("big"), vec![7u8; 9 << 20]).unwrap_err();
    assert_eq!(big.raw_os_error(), Some(libc::ENOSPC), "{big}");
    std::fs::remove_file(target.join("big")).unwrap();
    let tmpfs_mode = std::fs::metadata(tmpfs).unwrap().permissions().mode() & 0o7777;
    assert_eq!(tmpfs_mode, 0o700);
    drop(mounts);
    // After unmounting, nothing of the volatile layer is left on disk.
    assert!(!tmpfs.join("upper").exists());
    assert!(!info.rootfs.join("scratch").exists());
}

#[test]
fn disk_full_installs_nothing() {
    need_root!();
    let tmp = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..8 {
        let mut h = header(&format!("blob{i}"), tar::EntryType::Regular, 100_000, 0o644);
        h.set_cksum();
        b.append(&h, &vec![7u8; 100_000][..]).unwrap();
    }
    let p = tmp.path().join("big.tar");
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    private_mount_ns();
    // A 256 KiB tmpfs as the whole store: the 800 KB image cannot fit.
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let c = CString::new(small.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated strings, valid during the call; this thread's private namespace.
    let r = unsafe {
        libc::mount(
            b"tmpfs\0".as_ptr().cast(),
            c.as_ptr(),
            b"tmpfs\0".as_ptr().cast(),
            0,
            b"size=256k\0".as_ptr().cast(),
        )
    };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    let _mounts = Mounts(vec![small.clone()]);
    let s = store(&small);
    let err = s.import("big", &p).unwrap_err();
    assert!(
        matches!(err, berth::host::store::StoreError::DiskFull { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("image `big`: disk full"), "{err}");
    assert!(s.list().unwrap().is_empty());
    let left: Vec<_> = std::fs::read_dir(s.images_dir()).unwrap().collect();
    assert!(left.is_empty(), "leftovers: {left:?}");
}

/// `berth image` as users run it (needs no root; lives here with the store's
/// other integration tests).
#[test]
fn image_cli_import_ls_rm_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let berth = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(&root)
            .arg("image")
            .args(args)
            .output()
            .unwrap()
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header("etc/motd", tar::EntryType::Regular, 2, 0o644);
    h.set_cksum();
    b.append(&h, &b"hi"[..]).unwrap();
    let img = tmp.path().join("img.tar");
    std::fs::write(&img, b.into_inner().unwrap()).unwrap();
    let out = berth(&["import", img.to_str().unwrap(), "--name", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(digest.len(), 64);
    let ls = berth(&["ls"]);
    let text = String::from_utf8_lossy(&ls.stdout);
    assert!(
        text.contains(&digest[..12]) && text.contains("web"),
        "{text}"
    );
    // A corrupt archive: exit 1, one line naming the image and the cause.
    let bad = tmp.path().join("bad.tgz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    let out = berth(&["import", bad.to_str().unwrap(), "--name", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("berth: image `broken`: read archive: truncated or corrupt"),
        "{err}"
    );
    let out = berth(&["rm", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.join("images").join(&digest).exists());
    let out = berth(&["rm", "web"]);
    assert_eq!(out.status.code(), Some(1));
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

/// A host user who is not root must not reach image content: an image's
/// setuid-root busybox in the store cannot be run by `nobody` from outside.
/// A store made with looser modes is corrected when berth opens it.
#[test]
fn store_is_root_only_and_setuid_images_are_unreachable() {
    need_root!();
    let tmp = tempfile::tempdir().unwrap();
    // As under /var/lib: every host user may pass through the parent.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let busybox = std::fs::read("/bin/busybox").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(
        "bin/busybox",
        tar::EntryType::Regular,
        busybox.len() as u64,
        0o4755,
    );
    h.set_cksum();
    b.append(&h, &busybox[..]).unwrap();
    let p = tmp.path().join("suid.tar");
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    let s = store(tmp.path());
    let info = s.import("suid", &p).unwrap();
    let bin = info.rootfs.join("bin/busybox");
    assert_eq!(mode(&bin), 0o4755, "the image keeps its setuid bit");
    let root = tmp.path().join("store");
    let expect = [
        (root.clone(), 0o711),
        (root.join("images"), 0o700),
        (info.dir.clone(), 0o700),
        (root.join("containers"), 0o711),
        (root.join("volumes"), 0o711),
    ];
    let check = || {
        for (dir, want) in &expect {
            assert_eq!(mode(dir), *want, "{}", dir.display());
        }
    };
    check();
    // setpriv itself execs with the capabilities it keeps: let a shell that
    // runs as nobody with none make the exec.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["/bin/sh", "-c", "exec \"$0\" id -u"])
        .arg(&bin)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "nobody ran the image's setuid binary: {text}"
    );
    assert!(text.contains("ermission denied"), "{text}");
    // An existing store with the old modes is corrected at the next open.
    for (dir, _) in &expect {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    drop(store(tmp.path()));
    check();
}
