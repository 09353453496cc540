//! cgroup v1 device rules: the text lines for devices.deny and devices.allow.
//! The rule list arrives complete (deny all, the standard nodes, then the
//! manifest's rules); v1 applies the writes in order, so later rules win.

use crate::model::{DeviceKind, DeviceRule};

/// A rule as the v1 devices files and LXC write it: `c 1:3 rwm`, `a *:* rwm`.
/// `None` for a rule without any access, which the kernel would refuse.
pub fn rule_text(r: &DeviceRule) -> Option<String> {
    let kind = match r.kind {
        DeviceKind::All => 'a',
        DeviceKind::Char => 'c',
        DeviceKind::Block => 'b',
    };
    let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
    let mut access = String::new();
    for (on, c) in [(r.read, 'r'), (r.write, 'w'), (r.mknod, 'm')] {
        if on {
            access.push(c);
        }
    }
    if access.is_empty() {
        return None;
    }
    Some(format!("{kind} {}:{} {access}", num(r.major), num(r.minor)))
}

/// (file, line) pairs to write in order.
pub fn writes(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    rules
        .iter()
        .filter_map(|r| {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            // v1 treats `a` as everything regardless of the numbers.
            let line =
                if r.kind == DeviceKind::All && r.major.is_none() && r.read && r.write && r.mknod {
                    "a".to_string()
                } else {
                    rule_text(r)?
                };
            Some((file, line))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cgroup::effective_device_rules;

    #[test]
    fn standard_list_in_order() {
        let tty = DeviceRule {
            allow: false,
            kind: DeviceKind::Char,
            major: Some(5),
            minor: Some(0),
            read: false,
            write: true,
            mknod: false,
        };
        let ws = writes(&effective_device_rules(&[tty]));
        let expect = [
            ("devices.deny", "a"),
            ("devices.allow", "c 1:3 rwm"),
            ("devices.allow", "c 1:5 rwm"),
            ("devices.allow", "c 1:7 rwm"),
            ("devices.allow", "c 1:8 rwm"),
            ("devices.allow", "c 1:9 rwm"),
            ("devices.allow", "c 5:0 rwm"),
            ("devices.allow", "c 5:1 rwm"),
            ("devices.allow", "c 5:2 rwm"),
            ("devices.allow", "c 136:* rwm"),
            ("devices.deny", "c 5:0 w"),
        ];
        let got: Vec<(&str, &str)> = ws.iter().map(|(f, l)| (*f, l.as_str())).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn empty_access_is_dropped() {
        let r = DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major: None,
            minor: Some(1),
            read: false,
            write: false,
            mknod: false,
        };
        assert_eq!(rule_text(&r), None);
        assert_eq!(
            rule_text(&DeviceRule { read: true, ..r }),
            Some("b *:1 r".into())
        );
    }
}
