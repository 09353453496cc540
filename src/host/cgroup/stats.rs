//! Accounting read back from a container's cgroup for `berth status`:
//! memory current and peak, CPU time, tasks and OOM kills. Missing files
//! (older kernels: memory.peak is 5.19+, v1 oom_kill is 4.13+) give `None`.

use std::path::Path;

use serde::Serialize;

use super::read_opt;

/// What `berth status` shows for one container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CgroupStats {
    /// Bytes charged now.
    pub memory_current: Option<u64>,
    /// Highest bytes charged since the cgroup was made.
    pub memory_peak: Option<u64>,
    /// CPU time used, in microseconds.
    pub cpu_usage_usec: Option<u64>,
    /// Tasks now.
    pub pids_current: Option<u64>,
    /// Processes the OOM killer killed in this cgroup.
    pub oom_kills: Option<u64>,
}

/// A single number file (`memory.current`).
pub fn parse_single(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// One key of a flat keyed file (`cpu.stat`, `memory.events`, `memory.oom_control`).
pub fn parse_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

fn single(dir: &Path, file: &str) -> Option<u64> {
    read_opt(&dir.join(file)).as_deref().and_then(parse_single)
}

fn keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    read_opt(&dir.join(file))
        .as_deref()
        .and_then(|t| parse_keyed(t, key))
}

/// Read the accounting of a v2 cgroup.
pub fn read_v2(dir: &Path) -> CgroupStats {
    CgroupStats {
        memory_current: single(dir, "memory.current"),
        memory_peak: single(dir, "memory.peak"),
        cpu_usage_usec: keyed(dir, "cpu.stat", "usage_usec"),
        pids_current: single(dir, "pids.current"),
        // memory.events counts this cgroup and its descendants.
        oom_kills: keyed(dir, "memory.events", "oom_kill"),
    }
}

/// Read the accounting of a v1 container from its per-controller directories.
pub fn read_v1(memory: Option<&Path>, cpuacct: Option<&Path>, pids: Option<&Path>) -> CgroupStats {
    CgroupStats {
        memory_current: memory.and_then(|d| single(d, "memory.usage_in_bytes")),
        memory_peak: memory.and_then(|d| single(d, "memory.max_usage_in_bytes")),
        // cpuacct.usage is in nanoseconds.
        cpu_usage_usec: cpuacct
            .and_then(|d| single(d, "cpuacct.usage"))
            .map(|ns| ns / 1000),
        pids_current: pids.and_then(|d| single(d, "pids.current")),
        oom_kills: memory.and_then(|d| keyed(d, "memory.oom_control", "oom_kill")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keyed_files() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_keyed(events, "oom_kill"), Some(2));
        assert_eq!(parse_keyed(events, "oom"), Some(3));
        assert_eq!(parse_keyed(events, "missing"), None);
        assert_eq!(parse_keyed("oom_kill x\n", "oom_kill"), None);
        assert_eq!(parse_single("4096\n"), Some(4096));
        assert_eq!(parse_single("max\n"), None);
    }

    #[test]
    fn reads_v2_and_v1_trees() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let d = tmp.path();
        std::fs::write(d.join("memory.current"), "1000\n").expect("w");
        std::fs::write(d.join("cpu.stat"), "usage_usec 777\nuser_usec 700\n").expect("w");
        std::fs::write(d.join("pids.current"), "3\n").expect("w");
        std::fs::write(d.join("memory.events"), "oom 1\noom_kill 1\n").expect("w");
        let s = read_v2(d);
        assert_eq!(
            s,
            CgroupStats {
                memory_current: Some(1000),
                memory_peak: None,
                cpu_usage_usec: Some(777),
                pids_current: Some(3),
                oom_kills: Some(1)
            }
        );
        let m = tmp.path().join("m");
        std::fs::create_dir(&m).expect("mkdir");
        std::fs::write(m.join("memory.usage_in_bytes"), "5\n").expect("w");
        std::fs::write(m.join("memory.max_usage_in_bytes"), "9\n").expect("w");
        std::fs::write(
            m.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
        )
        .expect("w");
        std::fs::write(m.join("cpuacct.usage"), "2500000\n").expect("w");
        let s = read_v1(Some(&m), Some(&m), None);
        assert_eq!(s.memory_peak, Some(9));
        assert_eq!(s.oom_kills, Some(4));
        assert_eq!(s.cpu_usage_usec, Some(2500));
        assert_eq!(s.pids_current, None);
    }
}
