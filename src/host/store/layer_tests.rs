//! Writable layers: the copy fallback keeps links and modes, the choice
//! between overlayfs, a tmpfs upper and a copy, and the overlay probe.

use super::*;

#[test]
fn copy_layer_keeps_links_and_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let a = s
        .import("a", &write(tmp.path(), "a.tar", &rootfs_tar()))
        .unwrap();
    let plan = s
        .plan_layer(
            "c",
            &a,
            None,
            None,
            OverlaySupport {
                kernel: false,
                upper_ok: true,
            },
        )
        .unwrap();
    let layer::LayerPlan::Copy { rootfs } = plan else {
        panic!("{plan:?}")
    };
    assert_eq!(std::fs::read(rootfs.join("etc/motd")).unwrap(), b"hello");
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/ash")).unwrap(),
        Path::new("sh")
    );
}

#[test]
fn layer_choice_table() {
    let s = |kernel, upper_ok| OverlaySupport { kernel, upper_ok };
    assert_eq!(choose(s(true, true), false), "overlay");
    assert_eq!(choose(s(true, false), false), "copy"); // store on overlayfs (OpenWrt /)
    assert_eq!(choose(s(false, true), false), "copy");
    assert_eq!(choose(s(true, false), true), "tmpfs-overlay");
    assert_eq!(choose(s(false, false), true), "copy");
}

#[test]
fn overlay_detection_reads_proc_filesystems() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = write(
        tmp.path(),
        "filesystems",
        b"nodev\tsysfs\nnodev\toverlay\n\text4\n",
    );
    assert!(layer::detect_overlay(&pf, tmp.path()).kernel);
    let pf = write(tmp.path(), "filesystems2", b"nodev\tsysfs\n\text4\n");
    assert!(!layer::detect_overlay(&pf, tmp.path()).kernel);
}
