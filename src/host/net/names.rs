//! Pure naming: host-side interface names, the ownership mark and MAC
//! addresses, all derived from the container and network names so that a
//! later `apply` (even after a crash) computes the same ones and finds what an
//! earlier run left behind. No syscalls here.

use sha2::{Digest, Sha256};

use crate::model::Mac;

/// Linux interface names hold at most 15 bytes (IFNAMSIZ 16 with the NUL).
pub const IFNAMSIZ_MAX: usize = 15;

/// Prefix of the IFLA_IFALIAS mark on every host-side link berth creates.
pub const MARK_PREFIX: &str = "berth:";

/// The IFLA_IFALIAS mark naming the owner of a host-side link: `berth:<container>`
/// for per-container links, `berth-net:<network>` for per-network ones.
pub fn container_mark(container: &str) -> String {
    format!("{MARK_PREFIX}{container}")
}

/// The mark on links that belong to a network (bridges, host links, VLANs).
pub fn network_mark(network: &str) -> String {
    format!("berth-net:{network}")
}

fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        // NUL-separated so ("ab","c") and ("a","bc") differ.
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

fn hex5(bytes: &[u8]) -> String {
    crate::model::hex(&bytes[..3])[..5].to_string()
}

/// Up to `max` readable characters of `name` ([a-z0-9] only, so the result is
/// always a valid interface name).
fn readable(name: &str, max: usize) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(max)
        .collect()
}

/// Host end of a container's veth: `v<6 of container>-<5 hex>`, the hash
/// over container, network and interface so two attachments never clash and
/// containers sharing a prefix still differ.
pub fn host_veth(container: &str, network: &str, interface: &str) -> String {
    let h = digest(&["veth", container, network, interface]);
    format!("v{}-{}", readable(container, 8), hex5(&h))
}

/// The host-side macvlan of a network with `host_link: true`.
pub fn host_link(network: &str) -> String {
    let h = digest(&["hostlink", network]);
    format!("m{}-{}", readable(network, 8), hex5(&h))
}

/// The 802.1Q sub-interface `parent.vid`, or a hashed name when that is
/// longer than 15 bytes.
pub fn vlan(parent: &str, vid: u16) -> String {
    let plain = format!("{parent}.{vid}");
    if plain.len() <= IFNAMSIZ_MAX {
        return plain;
    }
    let h = digest(&["vlan", parent, &vid.to_string()]);
    format!("vl{vid}-{}", hex5(&h))
}

/// A stable MAC for a container on a network: locally administered, unicast,
/// so a DHCP server keeps its lease across recreates.
pub fn mac(container: &str, network: &str) -> Mac {
    let h = digest(&["mac", container, network]);
    let mut b = [0u8; 6];
    b.copy_from_slice(&h[..6]);
    // Bit 1 of the first byte: locally administered; bit 0 clear: unicast.
    b[0] = (b[0] & 0xfc) | 0x02;
    Mac(b)
}

/// True if `name` is a valid interface name for the kernel.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= IFNAMSIZ_MAX
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_are_stable() {
        let long = "a-very-long-container-name-indeed";
        for name in [
            host_veth(long, "lan", "eth0"),
            host_link(long),
            vlan("br-lan-extra-long", 4094),
        ] {
            assert!(name.len() <= IFNAMSIZ_MAX, "{name}");
            assert!(valid_ifname(&name), "{name}");
        }
        assert_eq!(
            host_veth("web", "lan", "eth0"),
            host_veth("web", "lan", "eth0")
        );
        assert!(host_veth("web", "lan", "eth0").starts_with("vweb-"));
    }

    #[test]
    fn names_differ_by_every_input() {
        let base = host_veth("web", "lan", "eth0");
        assert_ne!(base, host_veth("web", "lan", "eth1"));
        assert_ne!(base, host_veth("web", "wan", "eth0"));
        assert_ne!(base, host_veth("web2", "lan", "eth0"));
        // Same readable prefix, different container: the hash tells them apart.
        assert_ne!(
            host_veth("webserver-a", "lan", "eth0"),
            host_veth("webserver-b", "lan", "eth0")
        );
    }

    #[test]
    fn vlan_name_is_plain_when_short() {
        assert_eq!(vlan("eth0", 10), "eth0.10");
        assert!(vlan("enp0s31f6-long", 100).starts_with("vl100-"));
    }

    #[test]
    fn mac_is_local_unicast_and_stable() {
        for (c, n) in [("web", "lan"), ("x", "y"), ("guest", "wan-direct")] {
            let m = mac(c, n);
            assert_eq!(m.0[0] & 1, 0, "unicast");
            assert_eq!(m.0[0] & 2, 2, "locally administered");
            assert_eq!(m, mac(c, n));
        }
        assert_ne!(mac("web", "lan"), mac("web", "wan"));
    }

    #[test]
    fn ifname_validation() {
        assert!(valid_ifname("eth0"));
        assert!(!valid_ifname(""));
        assert!(!valid_ifname("sixteen-chars-xx"));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("a b"));
    }
}
