//! Extraction safety tests: crafted tarballs for each escape kind, modes,
//! links, long names, size cap, devices, truncation and OCI whiteouts.

use super::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use tar::Header;

/// One crafted entry: name bytes are written raw, so `..` and `/` survive.
pub(crate) struct E<'a> {
    pub name: &'a str,
    pub kind: EntryType,
    pub data: &'a [u8],
    pub link: Option<&'a str>,
    pub mode: u32,
}

pub(crate) fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
    E {
        name,
        kind: EntryType::Regular,
        data,
        link: None,
        mode: 0o644,
    }
}
pub(crate) fn dir(name: &str) -> E<'_> {
    E {
        name,
        kind: EntryType::Directory,
        data: b"",
        link: None,
        mode: 0o755,
    }
}
pub(crate) fn symlink<'a>(name: &'a str, to: &'a str) -> E<'a> {
    E {
        name,
        kind: EntryType::Symlink,
        data: b"",
        link: Some(to),
        mode: 0o777,
    }
}
pub(crate) fn hardlink<'a>(name: &'a str, to: &'a str) -> E<'a> {
    E {
        name,
        kind: EntryType::Link,
        data: b"",
        link: Some(to),
        mode: 0o644,
    }
}

/// A tar archive of `entries`, bypassing the `tar` crate's path checks.
pub(crate) fn tarball(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = Header::new_gnu();
        let old = h.as_old_mut();
        old.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        if let Some(l) = e.link {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

fn opts() -> ExtractOptions {
    ExtractOptions {
        max_size: 1 << 30,
        same_owner: false,
        allow_devices: false,
        whiteouts: false,
    }
}

/// Extract into `<tmp>/root`; `<tmp>/outside` exists beside it with a file `secret`.
type Outcome = Result<(u64, Vec<String>, Vec<String>), StoreError>;

fn run(data: &[u8], o: ExtractOptions) -> (tempfile::TempDir, Outcome) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("root")).unwrap();
    std::fs::create_dir(tmp.path().join("outside")).unwrap();
    std::fs::write(tmp.path().join("outside/secret"), b"keep").unwrap();
    let root = tmp.path().join("root");
    let r = Extractor::new("test", &root, o).and_then(|mut ex| {
        ex.unpack(data)?;
        ex.finish()
    });
    (tmp, r)
}

fn outside_untouched(tmp: &tempfile::TempDir) {
    let names: Vec<_> = std::fs::read_dir(tmp.path().join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![OsString::from("secret")]);
    assert_eq!(
        std::fs::read(tmp.path().join("outside/secret")).unwrap(),
        b"keep"
    );
}

fn assert_traversal(r: Outcome) {
    match r {
        Err(StoreError::Traversal { .. }) => {}
        other => panic!("expected a traversal error, got {other:?}"),
    }
}

#[test]
fn dotdot_is_refused() {
    let (tmp, r) = run(&tarball(&[file("../outside/evil", b"x")]), opts());
    assert_traversal(r);
    outside_untouched(&tmp);
    let (tmp, r) = run(
        &tarball(&[dir("a"), file("a/../../outside/evil", b"x")]),
        opts(),
    );
    assert_traversal(r);
    outside_untouched(&tmp);
}

#[test]
fn absolute_path_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("abs-target");
    let name = target.display().to_string();
    let (tmp2, r) = run(&tarball(&[file(&name, b"x")]), opts());
    assert_traversal(r);
    assert!(!target.exists());
    outside_untouched(&tmp2);
}

#[test]
fn symlink_parent_is_never_followed() {
    // Relative and absolute symlinks pointing out, then a write through them.
    for to in ["../outside", "/tmp"] {
        let (tmp, r) = run(
            &tarball(&[symlink("esc", to), file("esc/secret", b"pwned")]),
            opts(),
        );
        assert_traversal(r);
        outside_untouched(&tmp);
    }
}

#[test]
fn symlink_swapped_in_for_a_directory() {
    let data = tarball(&[
        dir("a"),
        file("a/x", b"1"),
        symlink("a", "../outside"),
        file("a/secret", b"pwned"),
    ]);
    let (tmp, r) = run(&data, opts());
    assert_traversal(r);
    outside_untouched(&tmp);
}

#[test]
fn file_over_a_symlink_replaces_the_link() {
    let data = tarball(&[symlink("s", "../outside/secret"), file("s", b"new")]);
    let (tmp, r) = run(&data, opts());
    r.unwrap();
    outside_untouched(&tmp);
    let s = tmp.path().join("root/s");
    assert!(std::fs::symlink_metadata(&s).unwrap().is_file());
    assert_eq!(std::fs::read(s).unwrap(), b"new");
}

#[test]
fn hardlink_escapes_are_refused() {
    let (tmp, r) = run(&tarball(&[hardlink("h", "../outside/secret")]), opts());
    assert_traversal(r);
    outside_untouched(&tmp);
    // Through a symlinked parent.
    let (tmp, r) = run(
        &tarball(&[symlink("s", "../outside"), hardlink("h", "s/secret")]),
        opts(),
    );
    assert_traversal(r);
    outside_untouched(&tmp);
    // Absolute target.
    let (tmp, r) = run(&tarball(&[hardlink("h", "/etc/passwd")]), opts());
    assert_traversal(r);
    outside_untouched(&tmp);
}

#[test]
fn hardlink_to_a_symlink_links_the_symlink_itself() {
    let data = tarball(&[symlink("s", "../outside/secret"), hardlink("h", "s")]);
    let (tmp, r) = run(&data, opts());
    r.unwrap();
    let h = std::fs::symlink_metadata(tmp.path().join("root/h")).unwrap();
    assert!(h.file_type().is_symlink());
    outside_untouched(&tmp);
}

#[test]
fn keeps_modes_setuid_hardlinks_long_names_and_dir_modes() {
    let long = format!("d/{}", "n".repeat(150));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Directory);
    h.set_mode(0o555);
    h.set_size(0);
    b.append_data(&mut h, "ro", &b""[..]).unwrap();
    for (name, mode) in [("ro/suid", 0o4755), (long.as_str(), 0o640)] {
        let mut h = Header::new_gnu();
        h.set_mode(mode);
        h.set_size(3);
        h.set_mtime(1_234_567_890);
        b.append_data(&mut h, name, &b"abc"[..]).unwrap();
    }
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Link);
    h.set_mode(0o644);
    h.set_size(0);
    b.append_link(&mut h, "hl", "ro/suid").unwrap();
    let data = b.into_inner().unwrap();
    let (tmp, r) = run(&data, opts());
    r.unwrap();
    let root = tmp.path().join("root");
    let suid = std::fs::metadata(root.join("ro/suid")).unwrap();
    assert_eq!(suid.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(suid.mtime(), 1_234_567_890);
    assert_eq!(
        std::fs::metadata(root.join("ro"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o555
    );
    let l = std::fs::metadata(root.join(&long)).unwrap();
    assert_eq!(l.permissions().mode() & 0o7777, 0o640);
    let hl = std::fs::metadata(root.join("hl")).unwrap();
    assert_eq!((hl.ino(), hl.nlink()), (suid.ino(), 2));
    // Let the tempdir be removed.
    std::fs::set_permissions(root.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn size_cap_stops_a_tar_bomb() {
    let big = vec![0u8; 64 * 1024];
    let data = tarball(&[file("a", &big), file("b", &big)]);
    let mut o = opts();
    o.max_size = 100 * 1024;
    let (tmp, r) = run(&data, o);
    assert!(matches!(r, Err(StoreError::TooLarge { .. })), "{r:?}");
    assert!(!tmp.path().join("root/b").exists());
}

#[test]
fn devices_are_skipped_and_recorded_without_privilege() {
    let mut e = file("dev/null", b"");
    e.kind = EntryType::Char;
    let fifo = E {
        name: "dev/fifo",
        kind: EntryType::Fifo,
        data: b"",
        link: None,
        mode: 0o600,
    };
    let (tmp, r) = run(&tarball(&[dir("dev"), e, fifo]), opts());
    let (_, skipped, _) = r.unwrap();
    assert_eq!(skipped, vec!["dev/null".to_owned()]);
    assert!(!tmp.path().join("root/dev/null").exists());
    assert!(tmp.path().join("root/dev/fifo").exists());
}

#[test]
fn truncated_archive_is_a_read_error() {
    let data = tarball(&[file("a", &[7u8; 4000])]);
    let (_tmp, r) = run(&data[..1500], opts());
    assert!(matches!(r, Err(StoreError::Read { .. })), "{r:?}");
}

#[test]
fn whiteouts_apply_across_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut o = opts();
    o.whiteouts = true;
    let mut ex = Extractor::new("test", &root, o).unwrap();
    let l1 = tarball(&[
        dir("a"),
        file("a/x", b"1"),
        file("a/y", b"2"),
        dir("b"),
        file("b/z", b"3"),
        dir("c"),
        file("c/k", b"4"),
    ]);
    ex.unpack(&l1[..]).unwrap();
    // The opaque marker comes after b/new on purpose: it must keep this layer's files.
    let l2 = tarball(&[
        file("a/.wh.x", b""),
        file("b/new", b"5"),
        file("b/.wh..wh..opq", b""),
        file(".wh.c", b""),
    ]);
    ex.unpack(&l2[..]).unwrap();
    ex.finish().unwrap();
    assert!(!root.join("a/x").exists());
    assert!(root.join("a/y").exists());
    assert!(!root.join("b/z").exists());
    assert_eq!(std::fs::read(root.join("b/new")).unwrap(), b"5");
    assert!(!root.join("c").exists());
    assert!(!root.join("a/.wh.x").exists() && !root.join("b/.wh..wh..opq").exists());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let data = tarball(&[
        file("x", b"old"),
        dir("d"),
        file("d/f", b"1"),
        file("d", b"now a file"),
        dir("x"),
        file("x/in", b"2"),
    ]);
    let (tmp, r) = run(&data, opts());
    r.unwrap();
    assert_eq!(
        std::fs::read(tmp.path().join("root/d")).unwrap(),
        b"now a file"
    );
    assert_eq!(std::fs::read(tmp.path().join("root/x/in")).unwrap(), b"2");
}
