//! Tests of the id shift (map arithmetic) and of the shifting copy.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

fn m(inside: u32, outside: u32, count: u32) -> IdMap {
    IdMap {
        inside,
        outside,
        count,
    }
}

fn maps(uid: Vec<IdMap>) -> IdShift {
    IdShift::new(&IdMaps {
        gid: uid.clone(),
        uid,
    })
}

#[test]
fn ids_move_by_the_map() {
    let one = [m(0, 100000, 65536)];
    assert_eq!(map_id(&one, 0), Some(100000));
    assert_eq!(map_id(&one, 1000), Some(101000));
    assert_eq!(map_id(&one, 65535), Some(165535));
    assert_eq!(map_id(&one, 65536), None);
    // Several ranges; the end of u32 does not wrap.
    let two = [m(0, 100000, 1), m(1000, 200000, 10), m(10, u32::MAX - 1, 5)];
    assert_eq!(map_id(&two, 0), Some(100000));
    assert_eq!(map_id(&two, 1), None);
    assert_eq!(map_id(&two, 1009), Some(200009));
    assert_eq!(map_id(&two, 1010), None);
    assert_eq!(map_id(&two, 11), Some(u32::MAX));
    assert_eq!(map_id(&two, 12), None);
    assert_eq!(map_id(&[m(5, 0, u32::MAX)], 4), None);
}

#[test]
fn ids_outside_the_map_become_nobody_or_are_refused() {
    let full = [m(0, 100000, 65536)];
    assert_eq!(shift_id(&full, 70000), Shifted::Overflow(165534));
    assert_eq!(shift_id(&full, 5), Shifted::Mapped(100005));
    let root_only = [m(0, 100000, 1)];
    assert_eq!(shift_id(&root_only, 0), Shifted::Mapped(100000));
    assert_eq!(shift_id(&root_only, 5), Shifted::Unmapped);
    let with_nobody = [m(0, 100000, 1), m(65534, 300000, 1)];
    assert_eq!(shift_id(&with_nobody, 5), Shifted::Overflow(300000));
}

#[test]
fn equal_maps_share_a_key_and_others_do_not() {
    let a = maps(vec![m(0, 100000, 65536)]);
    assert_eq!(a.key(), maps(vec![m(0, 100000, 65536)]).key());
    assert_eq!(a.key().len(), 12);
    assert_ne!(a.key(), maps(vec![m(0, 200000, 65536)]).key());
    let other_gid = IdShift::new(&IdMaps {
        uid: vec![m(0, 100000, 65536)],
        gid: vec![m(0, 100001, 65536)],
    });
    assert_ne!(a.key(), other_gid.key());
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn owner(p: &Path) -> (u32, u32) {
    let md = fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid())
}

/// A tree as an image holds it: several owners, a hard link, a symlink out
/// of the tree, a setuid root file, a setuid file of an id outside the map.
fn image_tree(root: &Path, outside: &Path) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("home/user")).unwrap();
    fs::write(root.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(root.join("home/user/notes"), b"mine").unwrap();
    chown(&root.join("home/user"), 1000, 1000);
    chown(&root.join("home/user/notes"), 1000, 100);
    fs::write(root.join("bin-su"), b"#!").unwrap();
    fs::set_permissions(root.join("bin-su"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(root.join("bin-su"), root.join("bin-su-link")).unwrap();
    fs::write(root.join("far"), b"x").unwrap();
    chown(&root.join("far"), 70000, 70000);
    fs::set_permissions(root.join("far"), fs::Permissions::from_mode(0o6755)).unwrap();
    symlink(outside, root.join("escape")).unwrap();
    chown(&root.join("escape"), 1000, 1000);
    // A read-only directory with a child: its mode comes after the child.
    fs::create_dir(root.join("ro")).unwrap();
    fs::write(root.join("ro/f"), b"f").unwrap();
    fs::set_permissions(root.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn shifted_copy_moves_owners_keeps_links_and_modes_follows_no_symlink() {
    if !fsutil::is_root() {
        eprintln!("skipped: owners of several ids need root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst, outside) = (
        tmp.path().join("src"),
        tmp.path().join("dst"),
        tmp.path().join("host"),
    );
    fs::write(&outside, b"host file").unwrap();
    chown(&outside, 0, 0);
    image_tree(&src, &outside);
    let shift = maps(vec![m(0, 100000, 65536)]);
    copy_tree(&src, &dst, Some(&shift)).unwrap();

    assert_eq!(owner(&dst), (100000, 100000));
    assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o755);
    assert_eq!(owner(&dst.join("etc/passwd")), (100000, 100000));
    assert_eq!(owner(&dst.join("home/user")), (101000, 101000));
    assert_eq!(owner(&dst.join("home/user/notes")), (101000, 100100));
    assert_eq!(fs::read(dst.join("home/user/notes")).unwrap(), b"mine");
    // Setuid survives the chown (it clears the bit; the mode comes after).
    let su = fs::metadata(dst.join("bin-su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755);
    assert_eq!(su.uid(), 100000);
    // The hard link stays one inode with two names.
    let link = fs::metadata(dst.join("bin-su-link")).unwrap();
    assert_eq!((link.ino(), link.nlink()), (su.ino(), 2));
    // An id outside the map: the container's nobody, without setuid/setgid.
    let far = fs::metadata(dst.join("far")).unwrap();
    assert_eq!((far.uid(), far.gid()), (165534, 165534));
    assert_eq!(far.mode() & 0o7777, 0o755);
    // The symlink is copied as text and chowned itself; its target is untouched.
    assert_eq!(fs::read_link(dst.join("escape")).unwrap(), outside);
    assert_eq!(owner(&dst.join("escape")), (101000, 101000));
    assert_eq!(owner(&outside), (0, 0));
    assert_eq!(fs::read(&outside).unwrap(), b"host file");
    assert_eq!(fs::metadata(dst.join("ro")).unwrap().mode() & 0o7777, 0o555);
    assert_eq!(fs::read(dst.join("ro/f")).unwrap(), b"f");
    // The source is unchanged.
    assert_eq!(owner(&src.join("etc/passwd")), (0, 0));
    assert_eq!(owner(&src.join("home/user")), (1000, 1000));
}

#[test]
fn an_id_outside_a_map_without_nobody_is_refused() {
    if !fsutil::is_root() {
        eprintln!("skipped: owners of several ids need root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("srv")).unwrap();
    fs::write(src.join("srv/data"), b"d").unwrap();
    chown(&src.join("srv/data"), 5, 0);
    let shift = maps(vec![m(0, 100000, 1)]);
    let err = copy_tree(&src, &tmp.path().join("dst"), Some(&shift)).unwrap_err();
    let CopyError::Unmapped { path, kind, id } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (path.as_path(), kind, id),
        (Path::new("srv/data"), "uid", 5)
    );
}

#[test]
fn unshifted_copy_keeps_owners() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::write(src.join("a/f"), b"x").unwrap();
    fs::set_permissions(src.join("a/f"), fs::Permissions::from_mode(0o640)).unwrap();
    symlink("/etc/passwd", src.join("a/l")).unwrap();
    let dst = tmp.path().join("dst");
    copy_tree(&src, &dst, None).unwrap();
    assert_eq!(owner(&dst.join("a/f")), owner(&src.join("a/f")));
    assert_eq!(
        fs::metadata(dst.join("a/f")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        fs::read_link(dst.join("a/l")).unwrap(),
        Path::new("/etc/passwd")
    );
}

/// A shifted copy is made once per (image, map) at start, shared, and
/// removed by gc; a firmware image gets a store dir for its copies only.
#[test]
fn shifted_copies_are_shared_and_collected() {
    use crate::host::store::layer::{LayerPlan, OverlaySupport};
    use crate::host::store::StoreOptions;
    if !fsutil::is_root() {
        eprintln!("skipped: a shifted copy needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let digest = "b".repeat(64);
    let ro = tmp.path().join("firmware");
    fs::create_dir_all(ro.join(&digest).join("rootfs/etc")).unwrap();
    fs::write(ro.join(&digest).join("rootfs/etc/motd"), b"fw").unwrap();
    let opts = StoreOptions {
        image_dirs: vec![ro.clone()],
        ..StoreOptions::default()
    };
    let s = RootfsStore::open(&tmp.path().join("store"), opts).unwrap();
    let info = s.find(&digest).unwrap();
    let both = OverlaySupport {
        kernel: true,
        upper_ok: true,
    };
    let userns = IdMaps {
        uid: vec![m(0, 100000, 65536)],
        gid: vec![m(0, 100000, 65536)],
    };
    let lower = |c: &str| match s.plan_layer(c, &info, None, Some(&userns), both).unwrap() {
        LayerPlan::Overlay { lower, upper, .. } => {
            assert_eq!(owner(&upper), (100000, 100000), "upper root of {c}");
            lower
        }
        p => panic!("{p:?}"),
    };
    let (a, b) = (lower("a"), lower("b"));
    assert_eq!(a, b, "one copy per image and map");
    assert!(a.starts_with(s.images_dir().join(&digest)));
    assert_eq!(owner(&a.join("etc/motd")), (100000, 100000));
    assert_eq!(owner(&ro.join(&digest).join("rootfs/etc/motd")), (0, 0));
    assert!(
        s.find(&digest).unwrap().read_only,
        "still the firmware image"
    );
    assert!(s.gc().unwrap().removed.is_empty(), "in use");
    for c in ["a", "b"] {
        fs::remove_file(s.containers_dir().join(c).join("image")).unwrap();
    }
    assert_eq!(s.gc().unwrap().removed, vec![digest.clone()]);
    assert!(!s.images_dir().join(&digest).exists());
    assert!(ro.join(&digest).join("rootfs/etc/motd").exists());
}
