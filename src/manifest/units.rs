//! Parsers for the small value languages of the manifest: sizes, CPU amounts,
//! durations, signals, capability names, device rules, id maps and names.
//!
//! Each returns the typed value or the complete message for the user, quoting
//! the value and saying what to write instead.

use crate::model::{DeviceKind, DeviceRule, IdMap};

/// `64M`, `1.5G`, `512Ki`, `4096` (bytes). Units are powers of 1024.
pub fn size(text: &str) -> Result<u64, String> {
    let bad = || format!("\"{text}\" is not a size; use e.g. 64M");
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "ki" | "kib" => 10,
        "m" | "mb" | "mi" | "mib" => 20,
        "g" | "gb" | "gi" | "gib" => 30,
        "t" | "tb" | "ti" | "tib" => 40,
        _ => return Err(bad()),
    };
    if num.is_empty() {
        return Err(bad());
    }
    let bytes = if let Some((whole, frac)) = num.split_once('.') {
        // Decimal sizes (`1.5G`): exact up to the fraction's own digits.
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        let digits = u32::try_from(frac.len()).map_err(|_| bad())?;
        let frac_val: u64 = frac.parse().map_err(|_| bad())?;
        let scale = 10u64.checked_pow(digits).ok_or_else(bad)?;
        let unit = 1u64 << shift;
        whole
            .checked_mul(unit)
            .and_then(|w| frac_val.checked_mul(unit).map(|f| w + f / scale))
            .ok_or_else(bad)?
    } else {
        let n: u64 = num.parse().map_err(|_| bad())?;
        n.checked_shl(shift)
            .filter(|v| v >> shift == n)
            .ok_or_else(bad)?
    };
    Ok(bytes)
}

/// CPU cap in CPUs (`0.5`, `2`) -> (quota_us, period_us) with a 100 ms period.
pub fn cpu_max(text: &str) -> Result<(u64, u64), String> {
    const PERIOD: u64 = 100_000;
    let bad =
        || format!("\"{text}\" is not a CPU amount; use e.g. 0.5 for half a CPU or 2 for two");
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 5 {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut frac_us = 0;
    if !frac.is_empty() {
        let digits = u32::try_from(frac.len()).map_err(|_| bad())?;
        let f: u64 = frac.parse().map_err(|_| bad())?;
        frac_us = f * PERIOD / 10u64.pow(digits);
    }
    let quota = whole
        .checked_mul(PERIOD)
        .map(|q| q + frac_us)
        .ok_or_else(bad)?;
    // The kernel refuses quotas under 1 ms.
    if quota < 1000 {
        return Err(format!(
            "\"{text}\" is below the kernel's minimum of 0.01 CPU"
        ));
    }
    Ok((quota, PERIOD))
}

/// `10`, `10s`, `2m`, `1h` -> seconds.
pub fn duration_secs(text: &str) -> Result<u32, String> {
    let bad = || format!("\"{text}\" is not a duration; use e.g. 10s or 2m");
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u32 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Health check defaults: a probe every 10 s, killed after 5 s, unhealthy
/// after 3 failures in a row.
pub const HEALTH_INTERVAL: u32 = 10;
pub const HEALTH_TIMEOUT: u32 = 5;
pub const HEALTH_RETRIES: u32 = 3;

/// A TCP port, 1 to 65535.
pub fn port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "\"{text}\" is not a port; use a number from 1 to 65535"
        )),
    }
}

/// A deadline: a duration above zero (0 s would fail every download).
pub fn deadline_secs(text: &str) -> Result<u32, String> {
    match duration_secs(text)? {
        0 => Err(format!(
            "\"{text}\" would fail every download; use e.g. 60s or 2m"
        )),
        secs => Ok(secs),
    }
}

/// `settings.parallel`: how many containers apply works on at once, 1 to 256.
pub fn parallel(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n @ 1..=256) => Ok(n),
        _ => Err(format!(
            "\"{text}\" is not a number of containers at once; use 1 (one at a time) up to 256, or leave it out for one per CPU"
        )),
    }
}

/// Signal names berth accepts for stopping a container, without the SIG prefix.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "PWR", "CONT", "STOP", "WINCH",
];

/// `SIGTERM`, `term`, `PWR`, `RTMIN+3` -> canonical `SIGTERM`, `SIGRTMIN+3`.
/// Numbers are refused: they differ between architectures (MIPS).
pub fn signal(text: &str) -> Result<String, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if SIGNALS.contains(&name) {
        return Ok(format!("SIG{name}"));
    }
    if let Some(n) = name.strip_prefix("RTMIN+") {
        if n.parse::<u8>().is_ok_and(|n| n <= 15) {
            return Ok(format!("SIG{name}"));
        }
    }
    Err(format!(
        "\"{text}\" is not a signal name; use e.g. SIGTERM, SIGPWR (busybox init, procd) or SIGRTMIN+3 (systemd)"
    ))
}

/// Every capability the kernel knows, in number order (CAP_CHOWN is 0).
pub const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub use crate::model::DEFAULT_CAPABILITIES;

/// Size of a volatile layer's tmpfs when the manifest gives none (`volatile: true`).
pub const DEFAULT_VOLATILE_SIZE: u64 = 64 << 20;

/// What a capability entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapName {
    All,
    One(&'static str),
}

/// `sys_admin` (as LXC writes it), `CAP_SYS_ADMIN` or `all`.
pub fn capability(text: &str) -> Result<CapName, String> {
    let upper = text.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(CapName::All);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAPABILITIES.iter().find(|c| **c == full).map(|c| CapName::One(c)).ok_or_else(|| {
        format!("\"{text}\" is not a capability; use a name such as net_admin or CAP_NET_ADMIN, or all")
    })
}

/// A device rule as LXC writes it: `c 136:* rwm`, `b 8:0 r`, `a`.
pub fn device_rule(text: &str, allow: bool) -> Result<DeviceRule, String> {
    let bad = |why: &str| {
        format!("\"{text}\" is not a device rule ({why}); use e.g. \"c 136:* rwm\" or \"a\"")
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    let kind = match parts.first().copied() {
        Some("a") => DeviceKind::All,
        Some("c") => DeviceKind::Char,
        Some("b") => DeviceKind::Block,
        _ => return Err(bad("type must be a, c or b")),
    };
    if kind == DeviceKind::All {
        if parts.len() > 1 {
            return Err(bad("`a` takes no numbers"));
        }
        return Ok(DeviceRule {
            allow,
            kind,
            major: None,
            minor: None,
            read: true,
            write: true,
            mknod: true,
        });
    }
    let (Some(nums), access) = (parts.get(1), parts.get(2).copied().unwrap_or("rwm")) else {
        return Err(bad("missing major:minor"));
    };
    if parts.len() > 3 {
        return Err(bad("too many fields"));
    }
    let (major, minor) = nums
        .split_once(':')
        .ok_or_else(|| bad("missing major:minor"))?;
    let num = |s: &str| -> Result<Option<u32>, String> {
        if s == "*" {
            Ok(None)
        } else {
            s.parse()
                .map(Some)
                .map_err(|_| bad("major and minor are numbers or *"))
        }
    };
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(bad("access is a combination of r, w and m"));
    }
    Ok(DeviceRule {
        allow,
        kind,
        major: num(major)?,
        minor: num(minor)?,
        read: access.contains('r'),
        write: access.contains('w'),
        mknod: access.contains('m'),
    })
}

/// `0 100000 65536`: inside id, outside id, count.
pub fn id_map(text: &str) -> Result<IdMap, String> {
    let bad = || {
        format!(
            "\"{text}\" is not an id mapping; use \"INSIDE OUTSIDE COUNT\" e.g. \"0 100000 65536\""
        )
    };
    let nums: Vec<u32> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    match nums[..] {
        [inside, outside, count] if count > 0 => {
            if inside.checked_add(count - 1).is_none() || outside.checked_add(count - 1).is_none() {
                return Err(format!("\"{text}\" runs past the largest id 4294967295"));
            }
            Ok(IdMap {
                inside,
                outside,
                count,
            })
        }
        _ => Err(bad()),
    }
}

/// A cpuset list such as `0-1,3`.
pub fn cpu_list(text: &str) -> Result<String, String> {
    let bad = || format!("\"{text}\" is not a CPU or node list; use e.g. 0-1,3");
    let t = text.trim();
    for part in t.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: u32 = lo.parse().map_err(|_| bad())?;
        let hi: u32 = hi.parse().map_err(|_| bad())?;
        if lo > hi {
            return Err(bad());
        }
    }
    Ok(t.to_string())
}

/// A name used in paths and cgroup names: `[a-z0-9][a-z0-9_.-]*`, at most `max` bytes.
pub fn name(text: &str, what: &str, max: usize) -> Result<(), String> {
    let ok_start = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = text
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if !ok_start || !ok_rest {
        return Err(format!(
            "\"{text}\" is not a valid {what} name; use lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ));
    }
    if text.len() > max {
        return Err(format!(
            "{what} name \"{text}\" is {} bytes; the limit is {max}",
            text.len()
        ));
    }
    Ok(())
}

/// A network interface name: 1 to 15 bytes, no `/`, `:`, whitespace, not `.` or `..`.
pub fn ifname(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 15 {
        return Err(format!(
            "interface name \"{text}\" must be 1 to 15 bytes (the kernel's IFNAMSIZ)"
        ));
    }
    if text == "."
        || text == ".."
        || text
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "\"{text}\" is not a valid interface name; avoid `/`, `:` and spaces"
        ));
    }
    Ok(())
}

/// A host name label sequence (RFC 1123), at most 63 bytes as UTS allows.
pub fn hostname(text: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if text.len() > 63 || !text.split('.').all(label_ok) {
        return Err(format!(
            "\"{text}\" is not a valid host name; use letters, digits and `-`, at most 63 bytes"
        ));
    }
    Ok(())
}

/// An absolute path without `..` components.
pub fn abs_path(text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!(
            "\"{text}\" is not an absolute path; start it with /"
        ));
    }
    if text.split('/').any(|c| c == "..") {
        return Err(format!(
            "\"{text}\" contains `..`; write the path without it"
        ));
    }
    Ok(())
}

/// Resource limit names (`RLIMIT_*` without the prefix, lowercase).
pub const RLIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `1024`, `1024:4096`, `unlimited` -> (soft, hard); `None` is unlimited.
pub fn rlimit_value(text: &str) -> Result<(Option<u64>, Option<u64>), String> {
    let one = |s: &str| -> Result<Option<u64>, String> {
        if s == "unlimited" {
            Ok(None)
        } else {
            s.parse()
                .map(Some)
                .map_err(|_| format!("\"{text}\" is not a limit; use N, SOFT:HARD or unlimited"))
        }
    };
    let (soft, hard) = match text.split_once(':') {
        Some((s, h)) => (one(s)?, one(h)?),
        None => {
            let v = one(text)?;
            (v, v)
        }
    };
    if let (Some(s), Some(h)) = (soft, hard) {
        if s > h {
            return Err(format!(
                "\"{text}\": the soft limit is above the hard limit"
            ));
        }
    }
    if soft.is_none() && hard.is_some() {
        return Err(format!(
            "\"{text}\": an unlimited soft limit needs an unlimited hard limit"
        ));
    }
    Ok((soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let table: &[(&str, Option<u64>)] = &[
            ("4096", Some(4096)),
            ("64M", Some(64 << 20)),
            ("64MiB", Some(64 << 20)),
            ("16m", Some(16 << 20)),
            ("1.5G", Some(3 << 29)),
            ("512K", Some(512 << 10)),
            ("12QB", None),
            ("M", None),
            ("-1M", None),
            ("99999999999999999999T", None),
            ("20000000T", None),
        ];
        for (text, want) in table {
            assert_eq!(size(text).ok(), *want, "{text}");
        }
        assert_eq!(
            size("12QB").unwrap_err(),
            "\"12QB\" is not a size; use e.g. 64M"
        );
    }

    #[test]
    fn cpu_amounts() {
        assert_eq!(cpu_max("0.5"), Ok((50_000, 100_000)));
        assert_eq!(cpu_max("2"), Ok((200_000, 100_000)));
        assert_eq!(cpu_max(".25"), Ok((25_000, 100_000)));
        assert!(cpu_max("0.001").unwrap_err().contains("minimum"));
        assert!(cpu_max("half").is_err());
        assert!(cpu_max("").is_err());
    }

    #[test]
    fn durations_and_signals() {
        assert_eq!(duration_secs("10"), Ok(10));
        assert_eq!(duration_secs("2m"), Ok(120));
        assert!(duration_secs("2 weeks").is_err());
        assert_eq!(signal("term").as_deref(), Ok("SIGTERM"));
        assert_eq!(signal("SIGPWR").as_deref(), Ok("SIGPWR"));
        assert_eq!(signal("RTMIN+3").as_deref(), Ok("SIGRTMIN+3"));
        assert!(signal("15").is_err());
        assert!(signal("SIGFOO").is_err());
    }

    #[test]
    fn capability_names() {
        assert_eq!(capability("sys_admin"), Ok(CapName::One("CAP_SYS_ADMIN")));
        assert_eq!(
            capability("CAP_NET_ADMIN"),
            Ok(CapName::One("CAP_NET_ADMIN"))
        );
        assert_eq!(capability("all"), Ok(CapName::All));
        assert!(capability("sys_admn").is_err());
        assert_eq!(CAPABILITIES.len(), 41);
        assert!(DEFAULT_CAPABILITIES
            .iter()
            .all(|c| CAPABILITIES.contains(c)));
    }

    #[test]
    fn device_rules() {
        let r = device_rule("c 136:* rwm", true).expect("valid");
        assert_eq!(
            (r.kind, r.major, r.minor, r.read, r.write, r.mknod),
            (DeviceKind::Char, Some(136), None, true, true, true)
        );
        let r = device_rule("b 8:0 r", false).expect("valid");
        assert_eq!(
            (r.allow, r.kind, r.minor, r.write),
            (false, DeviceKind::Block, Some(0), false)
        );
        assert_eq!(device_rule("a", true).map(|r| r.kind), Ok(DeviceKind::All));
        for bad in [
            "x 1:3 rwm",
            "c 1 rwm",
            "c 1:3 rwx",
            "c a:3",
            "a 1:2",
            "c 1:3 r w",
        ] {
            assert!(device_rule(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn id_maps() {
        assert_eq!(
            id_map("0 100000 65536"),
            Ok(IdMap {
                inside: 0,
                outside: 100000,
                count: 65536
            })
        );
        assert!(id_map("0 100000").is_err());
        assert!(id_map("0 100000 0").is_err());
        assert!(id_map("0 4294967295 2").is_err());
    }

    #[test]
    fn names_and_paths() {
        assert!(name("web-1", "container", 32).is_ok());
        assert!(name("Web", "container", 32).is_err());
        assert!(name("../x", "container", 32).is_err());
        assert!(name("a-very-long-network", "network", 15)
            .unwrap_err()
            .contains("limit is 15"));
        assert!(ifname("eth0").is_ok());
        assert!(ifname("a/b").is_err());
        assert!(ifname("sixteen-bytes-xx").is_err());
        assert!(hostname("guest-1.lan").is_ok());
        assert!(hostname("-bad").is_err());
        assert!(abs_path("/www").is_ok());
        assert!(abs_path("www").is_err());
        assert!(abs_path("/a/../etc").is_err());
        assert_eq!(cpu_list("0-1,3").as_deref(), Ok("0-1,3"));
        assert!(cpu_list("3-1").is_err());
    }

    #[test]
    fn rlimits() {
        assert_eq!(rlimit_value("1024"), Ok((Some(1024), Some(1024))));
        assert_eq!(rlimit_value("1024:unlimited"), Ok((Some(1024), None)));
        assert!(rlimit_value("10:5").is_err());
        assert!(rlimit_value("lots").is_err());
    }
}
