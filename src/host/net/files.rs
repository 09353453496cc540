//! The container's name-resolution files: /etc/resolv.conf from `dns` and
//! `dns_search`, /etc/hosts with the container's own name and static
//! addresses. Rendering is pure; writing goes to the container's rootfs
//! (a constructor-style argument, so tests use a temp dir) by temp file + rename.

use std::path::Path;

use super::NetError;
use crate::host::inroot::{self, Resolve, RootDir};
use crate::model::Spec;

/// resolv.conf text, or None when the manifest gives no DNS settings (the
/// image's own file, or a DHCP client's, is then left alone).
pub fn resolv_conf(spec: &Spec) -> Option<String> {
    if spec.dns.is_empty() && spec.dns_search.is_empty() {
        return None;
    }
    let mut out = String::from("# written by berth from the manifest\n");
    for ip in &spec.dns {
        out.push_str(&format!("nameserver {ip}\n"));
    }
    if !spec.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", spec.dns_search.join(" ")));
    }
    Some(out)
}

/// /etc/hosts text: loopback names plus the hostname on every static address.
pub fn hosts(spec: &Spec) -> String {
    let host = if spec.process.hostname.is_empty() {
        &spec.name
    } else {
        &spec.process.hostname
    };
    let mut out = String::from("# written by berth from the manifest\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let mut any = false;
    for att in &spec.network {
        for cidr in &att.addresses {
            out.push_str(&format!("{}\t{host}\n", cidr.addr));
            any = true;
        }
    }
    if !any {
        // No static address: the name still resolves, to loopback.
        out.push_str(&format!("127.0.1.1\t{host}\n"));
    }
    out
}

/// Writes /etc/resolv.conf (when DNS is set) and /etc/hosts under `rootfs`,
/// resolved inside it: an `etc` or a file that is a symlink never leads the
/// write out of the rootfs.
pub fn write(rootfs: &Path, spec: &Spec, resolve: Resolve) -> Result<(), NetError> {
    let err = |source| NetError::WriteFile {
        path: rootfs.to_path_buf(),
        source,
    };
    let root = RootDir::open(rootfs, resolve).map_err(err)?;
    if let Some(text) = resolv_conf(spec) {
        write_in(&root, rootfs, "/etc/resolv.conf", &text)?;
    }
    write_in(&root, rootfs, "/etc/hosts", &hosts(spec))
}

/// An image may ship resolv.conf as a symlink (systemd-resolved stub): the
/// atomic write replaces the link itself and never writes through it.
fn write_in(root: &RootDir, rootfs: &Path, file: &str, text: &str) -> Result<(), NetError> {
    let err = |source| NetError::WriteFile {
        path: rootfs.join(file.trim_start_matches('/')),
        source,
    };
    let comps = inroot::path_components(file).map_err(err)?;
    root.write_file(&comps, text.as_bytes(), 0o644).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AttachmentSpec;
    use std::fs;

    fn spec() -> Spec {
        let mut s = Spec::new("web", "busybox", None);
        s.process.hostname = "webhost".into();
        s.network = vec![AttachmentSpec::new(
            "lan",
            "eth0",
            vec![
                "10.0.0.5/24".parse().expect("cidr"),
                "fd00::5/64".parse().expect("cidr"),
            ],
        )];
        s.dns = vec!["10.0.0.1".parse().expect("ip")];
        s.dns_search = vec!["lan".into(), "example.org".into()];
        s
    }

    #[test]
    fn writes_both_files_into_the_rootfs() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &spec(), Resolve::Openat2).expect("write");
        let resolv = fs::read_to_string(dir.path().join("etc/resolv.conf")).expect("resolv");
        assert!(resolv.contains("nameserver 10.0.0.1\n"));
        assert!(resolv.contains("search lan example.org\n"));
        let hosts = fs::read_to_string(dir.path().join("etc/hosts")).expect("hosts");
        assert!(hosts.contains("10.0.0.5\twebhost\n"));
        assert!(hosts.contains("fd00::5\twebhost\n"));
        assert!(hosts.contains("127.0.0.1\tlocalhost"));
        let mut left: Vec<String> = fs::read_dir(dir.path().join("etc"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["hosts", "resolv.conf"], "no temp file left");
    }

    #[test]
    fn no_dns_keeps_the_images_resolv_conf() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        fs::write(dir.path().join("etc/resolv.conf"), "nameserver 9.9.9.9\n").expect("seed");
        let mut s = spec();
        s.dns.clear();
        s.dns_search.clear();
        s.network[0].addresses.clear();
        write(dir.path(), &s, Resolve::Walk).expect("write");
        let resolv = fs::read_to_string(dir.path().join("etc/resolv.conf")).expect("resolv");
        assert_eq!(resolv, "nameserver 9.9.9.9\n");
        let hosts = fs::read_to_string(dir.path().join("etc/hosts")).expect("hosts");
        assert!(hosts.contains("127.0.1.1\twebhost\n"));
    }

    #[test]
    fn a_symlinked_resolv_conf_is_replaced_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = dir.path().join("outside");
        fs::write(&outside, "keep\n").expect("seed");
        fs::create_dir_all(dir.path().join("root/etc")).expect("mkdir");
        for resolve in [Resolve::Openat2, Resolve::Walk] {
            let _ = fs::remove_file(dir.path().join("root/etc/resolv.conf"));
            std::os::unix::fs::symlink(&outside, dir.path().join("root/etc/resolv.conf"))
                .expect("symlink");
            write(&dir.path().join("root"), &spec(), resolve).expect("write");
            assert_eq!(fs::read_to_string(&outside).expect("outside"), "keep\n");
            assert!(fs::read_to_string(dir.path().join("root/etc/resolv.conf"))
                .expect("r")
                .contains("10.0.0.1"));
        }
    }
}
