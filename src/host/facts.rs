//! Device facts for manifest templates (`device.*`), read from the host.
//!
//! Every path is taken under `root` (normally `/`) so tests can use a fake tree.
//! A fact the device does not have is left empty rather than failing: templates
//! choose with `| default(...)`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::manifest::Facts;

/// Read the facts of the device whose filesystem is at `root`.
pub fn read(root: &Path) -> Facts {
    let text = |p: &str| -> Option<String> {
        let s = fs::read_to_string(root.join(p.trim_start_matches('/'))).ok()?;
        // Device-tree strings end in NUL.
        let s = s
            .trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .to_string();
        (!s.is_empty()).then_some(s)
    };
    let model = text("/proc/device-tree/model");
    Facts {
        hostname: text("/proc/sys/kernel/hostname").unwrap_or_default(),
        kernel: text("/proc/sys/kernel/osrelease").unwrap_or_default(),
        arch: machine(),
        board_name: text("/tmp/sysinfo/board_name").or_else(|| model.clone()),
        model,
        macs: macs(root),
        interfaces: text("/etc/config/network")
            .map(|t| openwrt_interfaces(&t))
            .unwrap_or_default(),
        machine_id: text("/etc/machine-id"),
        ..Facts::default()
    }
}

/// The fleet id of a device given none: the MAC of its first physical
/// network interface (one with a `device` link in sysfs, so not a bridge,
/// veth or VLAN berth or the firmware made), without colons; else
/// /etc/machine-id; else the hostname. Reduced to what a topic level
/// allows (`fleet::mqtt::check_name`).
pub fn default_device_id(root: &Path) -> String {
    let physical = fs::read_dir(root.join("sys/class/net"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| {
            let mac = fs::read_to_string(e.path().join("address")).ok()?;
            let mac = mac.trim().replace(':', "").to_ascii_lowercase();
            (!mac.is_empty() && mac.bytes().any(|b| b != b'0')).then(|| (e.file_name(), mac))
        })
        .min();
    let id = match physical {
        Some((_, mac)) => mac,
        None => {
            let f = read(root);
            f.machine_id.unwrap_or(f.hostname)
        }
    };
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(crate::fleet::mqtt::MAX_NAME)
        .collect();
    if id.is_empty() {
        "berth".to_string()
    } else {
        id
    }
}

/// The machine name uname reports (`armv7l`, `mips`, `x86_64`).
fn machine() -> String {
    // SAFETY: uname fills the zeroed struct we own; the fields are NUL-terminated.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return std::env::consts::ARCH.to_string();
    }
    let bytes: Vec<u8> = uts
        .machine
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| c.to_ne_bytes()[0])
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn macs(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(root.join("sys/class/net")) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(mac) = fs::read_to_string(entry.path().join("address")) {
            let mac = mac.trim();
            if !mac.is_empty() && mac != "00:00:00:00:00:00" {
                out.insert(name, mac.to_string());
            }
        }
    }
    out
}

/// OpenWrt logical networks and their devices from UCI /etc/config/network:
/// `config interface 'wan'` with `option device 'eth1'` (21.02+) or `option ifname` (older).
pub fn openwrt_interfaces(uci: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in uci.lines() {
        let words: Vec<&str> = line
            .split_whitespace()
            .map(|w| w.trim_matches(['\'', '"']))
            .collect();
        match words[..] {
            ["config", "interface", name, ..] => current = Some(name.to_string()),
            ["config", ..] => current = None,
            ["option", "device" | "ifname", dev, ..] => {
                if let Some(name) = &current {
                    out.entry(name.clone()).or_insert_with(|| dev.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_fake_openwrt_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = tmp.path();
        let put = |p: &str, s: &str| {
            let path = r.join(p);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, s).expect("write");
        };
        put("proc/sys/kernel/hostname", "OpenWrt\n");
        put("proc/sys/kernel/osrelease", "5.15.150\n");
        put("proc/device-tree/model", "Linksys E8450\0");
        put("tmp/sysinfo/board_name", "linksys,e8450\n");
        put("sys/class/net/eth1/address", "02:11:22:33:44:55\n");
        put("sys/class/net/lo/address", "00:00:00:00:00:00\n");
        put("etc/machine-id", "abc123\n");
        put(
            "etc/config/network",
            "config interface 'loopback'\n\toption device 'lo'\n\nconfig device\n\toption name 'br-lan'\n\nconfig interface 'wan'\n\toption device 'eth1'\n\toption proto 'dhcp'\n",
        );
        let f = read(r);
        assert_eq!(f.hostname, "OpenWrt");
        assert_eq!(f.kernel, "5.15.150");
        assert_eq!(f.board_name.as_deref(), Some("linksys,e8450"));
        assert_eq!(f.model.as_deref(), Some("Linksys E8450"));
        assert_eq!(f.macs.len(), 1);
        assert_eq!(f.macs["eth1"], "02:11:22:33:44:55");
        assert_eq!(f.interfaces["wan"], "eth1");
        assert_eq!(f.interfaces["loopback"], "lo");
        assert_eq!(f.machine_id.as_deref(), Some("abc123"));
        assert!(!f.arch.is_empty());
    }

    #[test]
    fn the_default_id_is_the_first_physical_mac() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let r = tmp.path();
        let iface = |name: &str, mac: &str, physical: bool| {
            let d = r.join("sys/class/net").join(name);
            fs::create_dir_all(&d).expect("mkdir");
            fs::write(d.join("address"), format!("{mac}\n")).expect("write");
            if physical {
                fs::create_dir_all(d.join("device")).expect("mkdir");
            }
        };
        fs::create_dir_all(r.join("proc/sys/kernel")).expect("mkdir");
        fs::write(r.join("proc/sys/kernel/hostname"), "my router\n").expect("write");
        // No physical interface: the hostname, made a topic level.
        iface("br-lan", "02:aa:00:00:00:01", false);
        assert_eq!(default_device_id(r), "my-router");
        iface("eth1", "02:11:22:33:44:55", true);
        iface("eth0", "02:11:22:33:44:AA", true);
        iface("veth0", "02:00:00:00:00:02", false);
        assert_eq!(default_device_id(r), "0211223344aa");
        assert!(crate::fleet::mqtt::check_name("id", &default_device_id(r)).is_ok());
    }

    #[test]
    fn missing_facts_are_empty() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = read(tmp.path());
        assert_eq!(f.hostname, "");
        assert!(f.board_name.is_none() && f.macs.is_empty() && f.interfaces.is_empty());
    }
}
