//! Pure translation of a container's `ResourceSpec` into the cgroup files and
//! values each cgroup version wants. The backends write these lists in order;
//! nothing here touches the host, so every row is covered by a table test.
//!
//! A field the manifest leaves unset is reset to the kernel's default, so that
//! removing a limit from the manifest removes it from the running container.

use crate::model::{CpuMax, ResourceSpec};

/// One write into a cgroup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The controller that owns the file (`memory`, `cpu`, `pids`, `cpuset`,
    /// `io` on v2, `blkio` on v1).
    pub controller: &'static str,
    /// File name inside the cgroup directory.
    pub file: &'static str,
    /// A file tried when `file` does not exist (v1 `blkio.bfq.weight` on kernels
    /// whose only proportional I/O scheduler is BFQ).
    pub alt: Option<&'static str>,
    /// What to write.
    pub value: Value,
    /// The manifest field (below `containers.NAME.`) that asked for this value,
    /// or `None` when this write only resets an unset field to the default.
    pub field: Option<&'static str>,
}

/// The value of a [`Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Literal text.
    Text(String),
    /// Copy the parent cgroup's value (v1 cpuset, which has no "inherit").
    FromParent,
}

/// Manifest field names, for error messages.
pub const F_MEMORY: &str = "resources.memory";
/// See [`F_MEMORY`].
pub const F_MEMORY_LOW: &str = "resources.memory_low";
/// See [`F_MEMORY`].
pub const F_SWAP: &str = "resources.swap";
/// See [`F_MEMORY`].
pub const F_CPU_WEIGHT: &str = "resources.cpu.weight";
/// See [`F_MEMORY`].
pub const F_CPU_MAX: &str = "resources.cpu.max";
/// See [`F_MEMORY`].
pub const F_PIDS: &str = "resources.pids";
/// See [`F_MEMORY`].
pub const F_CPUSET_CPUS: &str = "resources.cpuset.cpus";
/// See [`F_MEMORY`].
pub const F_CPUSET_MEMS: &str = "resources.cpuset.mems";
/// See [`F_MEMORY`].
pub const F_IO_WEIGHT: &str = "resources.io.weight";
/// The devices list (v1 devices controller, v2 BPF).
pub const F_DEVICES: &str = "devices";

/// Default CFS period when the kernel's is wanted back (100 ms).
pub const DEFAULT_PERIOD_US: u64 = 100_000;

/// v2 cpu.weight (1..=10000, default 100) to v1 cpu.shares (2..=262144).
/// The inverse of the conversion crun and the OCI runtime use for shares to
/// weight: `weight = 1 + (shares - 2) * 9999 / 262142`.
pub fn weight_to_shares(weight: u64) -> u64 {
    let w = weight.clamp(1, 10_000);
    2 + ((w - 1) * 262_142).div_ceil(9_999)
}

/// v1 cpu.shares to v2 cpu.weight, the conversion crun uses.
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9_999) / 262_142
}

/// v2 io.weight (1..=10000) to v1 blkio.weight (10..=1000), linear.
pub fn io_weight_to_blkio(weight: u64) -> u64 {
    let w = weight.clamp(1, 10_000);
    10 + ((w - 1) * 990).div_ceil(9_999)
}

/// v1 blkio.weight to v2 io.weight, the conversion crun uses.
pub fn blkio_to_io_weight(blkio: u64) -> u64 {
    let b = blkio.clamp(10, 1_000);
    1 + ((b - 10) * 9_999) / 990
}

fn text(v: impl ToString) -> Value {
    Value::Text(v.to_string())
}

fn w(
    controller: &'static str,
    file: &'static str,
    value: Value,
    field: Option<&'static str>,
) -> Write {
    Write {
        controller,
        file,
        alt: None,
        value,
        field,
    }
}

/// The writes for cgroup v2, in order.
pub fn v2_writes(r: &ResourceSpec) -> Vec<Write> {
    let mut out = Vec::new();
    let max_or = |v: Option<u64>| v.map_or_else(|| text("max"), text);
    out.push(w(
        "memory",
        "memory.max",
        max_or(r.memory),
        r.memory.map(|_| F_MEMORY),
    ));
    out.push(w(
        "memory",
        "memory.low",
        text(r.memory_low.unwrap_or(0)),
        r.memory_low.map(|_| F_MEMORY_LOW),
    ));
    // v2 memory.swap.max is swap alone, unlike v1 memsw (memory plus swap).
    out.push(w(
        "memory",
        "memory.swap.max",
        max_or(r.swap),
        r.swap.map(|_| F_SWAP),
    ));
    out.push(w(
        "cpu",
        "cpu.weight",
        text(r.cpu_weight.unwrap_or(100).clamp(1, 10_000)),
        r.cpu_weight.map(|_| F_CPU_WEIGHT),
    ));
    let cpu_max = match r.cpu_max {
        Some(CpuMax {
            quota_us,
            period_us,
        }) => format!("{quota_us} {period_us}"),
        None => format!("max {DEFAULT_PERIOD_US}"),
    };
    out.push(w(
        "cpu",
        "cpu.max",
        text(cpu_max),
        r.cpu_max.map(|_| F_CPU_MAX),
    ));
    out.push(w(
        "pids",
        "pids.max",
        max_or(r.pids),
        r.pids.map(|_| F_PIDS),
    ));
    // An empty v2 cpuset file means "whatever the parent has".
    let cpus = r.cpuset_cpus.clone().unwrap_or_default();
    out.push(w(
        "cpuset",
        "cpuset.cpus",
        text(cpus),
        r.cpuset_cpus.as_ref().map(|_| F_CPUSET_CPUS),
    ));
    let mems = r.cpuset_mems.clone().unwrap_or_default();
    out.push(w(
        "cpuset",
        "cpuset.mems",
        text(mems),
        r.cpuset_mems.as_ref().map(|_| F_CPUSET_MEMS),
    ));
    let io = r.io_weight.unwrap_or(100).clamp(1, 10_000);
    out.push(w(
        "io",
        "io.weight",
        text(format!("default {io}")),
        r.io_weight.map(|_| F_IO_WEIGHT),
    ));
    out
}

/// The writes for cgroup v1, in order. The backend retries a write the kernel
/// refuses with EINVAL after the others: v1 insists that memsw stays at or above
/// the memory limit, so raising and lowering need opposite orders.
pub fn v1_writes(r: &ResourceSpec) -> Vec<Write> {
    let mut out = Vec::new();
    let unlimited = |v: Option<u64>| v.map_or_else(|| text(-1), text);
    out.push(w(
        "memory",
        "memory.limit_in_bytes",
        unlimited(r.memory),
        r.memory.map(|_| F_MEMORY),
    ));
    // v1 memsw is memory plus swap; without a memory limit a swap limit has
    // nothing to add to, so it stays unlimited.
    let memsw = match (r.memory, r.swap) {
        (Some(m), Some(s)) => Some(m.saturating_add(s)),
        _ => None,
    };
    out.push(w(
        "memory",
        "memory.memsw.limit_in_bytes",
        unlimited(memsw),
        r.swap.map(|_| F_SWAP),
    ));
    out.push(w(
        "memory",
        "memory.soft_limit_in_bytes",
        unlimited(r.memory_low),
        r.memory_low.map(|_| F_MEMORY_LOW),
    ));
    let shares = r.cpu_weight.map_or(1024, weight_to_shares);
    out.push(w(
        "cpu",
        "cpu.shares",
        text(shares),
        r.cpu_weight.map(|_| F_CPU_WEIGHT),
    ));
    let (quota, period) = match r.cpu_max {
        Some(CpuMax {
            quota_us,
            period_us,
        }) => (quota_us.to_string(), period_us),
        None => ("-1".to_string(), DEFAULT_PERIOD_US),
    };
    let cpu_field = r.cpu_max.map(|_| F_CPU_MAX);
    out.push(w("cpu", "cpu.cfs_period_us", text(period), cpu_field));
    out.push(w("cpu", "cpu.cfs_quota_us", Value::Text(quota), cpu_field));
    out.push(w(
        "pids",
        "pids.max",
        r.pids.map_or_else(|| text("max"), text),
        r.pids.map(|_| F_PIDS),
    ));
    let inherit = |v: &Option<String>| v.clone().map_or(Value::FromParent, Value::Text);
    out.push(w(
        "cpuset",
        "cpuset.cpus",
        inherit(&r.cpuset_cpus),
        r.cpuset_cpus.as_ref().map(|_| F_CPUSET_CPUS),
    ));
    out.push(w(
        "cpuset",
        "cpuset.mems",
        inherit(&r.cpuset_mems),
        r.cpuset_mems.as_ref().map(|_| F_CPUSET_MEMS),
    ));
    let blkio = r.io_weight.map_or(500, io_weight_to_blkio);
    let mut io = w(
        "blkio",
        "blkio.weight",
        text(blkio),
        r.io_weight.map(|_| F_IO_WEIGHT),
    );
    io.alt = Some("blkio.bfq.weight");
    out.push(io);
    out
}

/// The kernel option that provides a controller, for error messages and `berth check`.
pub fn kernel_option(controller: &str) -> &'static str {
    match controller {
        "memory" => "CONFIG_MEMCG",
        "cpu" => "CONFIG_CGROUP_SCHED and CONFIG_CFS_BANDWIDTH",
        "cpuacct" => "CONFIG_CGROUP_CPUACCT",
        "pids" => "CONFIG_CGROUP_PIDS",
        "cpuset" => "CONFIG_CPUSETS",
        "io" | "blkio" => "CONFIG_BLK_CGROUP",
        "freezer" => "CONFIG_CGROUP_FREEZER",
        "devices" => "CONFIG_CGROUP_DEVICE",
        "bpf" => "CONFIG_CGROUP_BPF and CONFIG_BPF_SYSCALL",
        _ => "the kernel option for this controller",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(ws: &'a [Write], file: &str) -> &'a Write {
        ws.iter()
            .find(|w| w.file == file)
            .unwrap_or_else(|| panic!("no write to {file}"))
    }

    fn val(ws: &[Write], file: &str) -> String {
        match &find(ws, file).value {
            Value::Text(t) => t.clone(),
            Value::FromParent => "<parent>".into(),
        }
    }

    #[test]
    fn shares_weight_table() {
        // (weight, shares) pairs at the ends and the defaults.
        for (weight, shares) in [(1, 2), (10_000, 262_144), (100, 2598)] {
            assert_eq!(weight_to_shares(weight), shares, "weight {weight}");
            assert_eq!(shares_to_weight(shares), weight, "shares {shares}");
        }
        // v1's default 1024 shares is weight 39 in crun's conversion.
        assert_eq!(shares_to_weight(1024), 39);
        // Out of range input is clamped, not wrapped.
        assert_eq!(weight_to_shares(0), 2);
        assert_eq!(weight_to_shares(20_000), 262_144);
        // Round trip is stable for every weight.
        for weight in 1..=10_000 {
            assert_eq!(shares_to_weight(weight_to_shares(weight)), weight);
        }
    }

    #[test]
    fn io_weight_table() {
        for (io, blkio) in [(1, 10), (10_000, 1_000), (100, 20)] {
            assert_eq!(io_weight_to_blkio(io), blkio, "io {io}");
        }
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1_000), 10_000);
        assert_eq!(blkio_to_io_weight(500), 4950);
    }

    fn full() -> ResourceSpec {
        ResourceSpec {
            memory: Some(64 << 20),
            memory_low: Some(8 << 20),
            swap: Some(16 << 20),
            cpu_weight: Some(50),
            cpu_max: Some(CpuMax {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            pids: Some(64),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            io_weight: Some(200),
        }
    }

    #[test]
    fn v2_table_set() {
        let ws = v2_writes(&full());
        let expect = [
            ("memory.max", "67108864"),
            ("memory.low", "8388608"),
            ("memory.swap.max", "16777216"),
            ("cpu.weight", "50"),
            ("cpu.max", "50000 100000"),
            ("pids.max", "64"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
            ("io.weight", "default 200"),
        ];
        assert_eq!(ws.len(), expect.len());
        for (file, value) in expect {
            assert_eq!(val(&ws, file), value, "{file}");
            assert!(find(&ws, file).field.is_some(), "{file} names its field");
        }
        assert_eq!(find(&ws, "memory.swap.max").field, Some(F_SWAP));
    }

    #[test]
    fn v2_table_reset() {
        let ws = v2_writes(&ResourceSpec::default());
        let expect = [
            ("memory.max", "max"),
            ("memory.low", "0"),
            ("memory.swap.max", "max"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("pids.max", "max"),
            ("cpuset.cpus", ""),
            ("cpuset.mems", ""),
            ("io.weight", "default 100"),
        ];
        for (file, value) in expect {
            assert_eq!(val(&ws, file), value, "{file}");
            assert_eq!(find(&ws, file).field, None, "{file} is a reset");
        }
    }

    #[test]
    fn v1_table_set() {
        let ws = v1_writes(&full());
        let expect = [
            ("memory.limit_in_bytes", "67108864"),
            // memory plus swap: 64M + 16M
            ("memory.memsw.limit_in_bytes", "83886080"),
            ("memory.soft_limit_in_bytes", "8388608"),
            ("cpu.shares", "1287"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "50000"),
            ("pids.max", "64"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
            ("blkio.weight", "30"),
        ];
        assert_eq!(ws.len(), expect.len());
        for (file, value) in expect {
            assert_eq!(val(&ws, file), value, "{file}");
        }
        assert_eq!(find(&ws, "blkio.weight").alt, Some("blkio.bfq.weight"));
        assert_eq!(find(&ws, "blkio.weight").controller, "blkio");
    }

    #[test]
    fn v1_table_reset_and_partial() {
        let ws = v1_writes(&ResourceSpec::default());
        for (file, value) in [
            ("memory.limit_in_bytes", "-1"),
            ("memory.memsw.limit_in_bytes", "-1"),
            ("memory.soft_limit_in_bytes", "-1"),
            ("cpu.shares", "1024"),
            ("cpu.cfs_quota_us", "-1"),
            ("pids.max", "max"),
            ("cpuset.cpus", "<parent>"),
            ("blkio.weight", "500"),
        ] {
            assert_eq!(val(&ws, file), value, "{file}");
            assert_eq!(find(&ws, file).field, None);
        }
        // swap 0 means no swap at all: memsw equals the memory limit.
        let r = ResourceSpec {
            memory: Some(1000),
            swap: Some(0),
            ..Default::default()
        };
        assert_eq!(val(&v1_writes(&r), "memory.memsw.limit_in_bytes"), "1000");
        // swap without memory stays unlimited in v1 but still names its field.
        let r = ResourceSpec {
            swap: Some(5),
            ..Default::default()
        };
        let ws = v1_writes(&r);
        assert_eq!(val(&ws, "memory.memsw.limit_in_bytes"), "-1");
        assert_eq!(find(&ws, "memory.memsw.limit_in_bytes").field, Some(F_SWAP));
    }
}
