//! The device rule list both cgroup versions enforce: deny everything, allow
//! the standard nodes, then the manifest's rules in order (later rules win).
//! Pure, and separate from its two writers: [`super::devices_v1`] turns it
//! into devices.allow/deny lines, [`super::bpf`] into the v2 eBPF filter.

use crate::model::{DeviceKind, DeviceRule};

/// The device nodes every container gets: null, zero, full, random, urandom,
/// tty, console, ptmx and the pts slaves.
pub fn standard_devices() -> Vec<DeviceRule> {
    let c = |major: u32, minor: Option<u32>| DeviceRule {
        allow: true,
        kind: DeviceKind::Char,
        major: Some(major),
        minor,
        read: true,
        write: true,
        mknod: true,
    };
    vec![
        c(1, Some(3)),
        c(1, Some(5)),
        c(1, Some(7)),
        c(1, Some(8)),
        c(1, Some(9)),
        c(5, Some(0)),
        c(5, Some(1)),
        c(5, Some(2)),
        c(136, None),
    ]
}

/// Deny everything, allow the standard nodes, then the manifest's rules in order.
pub fn effective_device_rules(rules: &[DeviceRule]) -> Vec<DeviceRule> {
    let deny_all = DeviceRule {
        allow: false,
        kind: DeviceKind::All,
        major: None,
        minor: None,
        read: true,
        write: true,
        mknod: true,
    };
    let mut out = vec![deny_all];
    out.extend(standard_devices());
    out.extend_from_slice(rules);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rules_start_with_deny() {
        let user = DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major: Some(8),
            minor: Some(0),
            read: true,
            write: false,
            mknod: false,
        };
        let all = effective_device_rules(&[user]);
        assert!(!all[0].allow && all[0].kind == DeviceKind::All);
        assert_eq!(all.len(), 11);
        assert_eq!(all.last(), Some(&user));
    }
}
