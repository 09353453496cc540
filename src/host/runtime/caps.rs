//! Capabilities: names to bits (computed in the parent before clone) and the
//! drop sequence the child runs just before exec.
//!
//! Root in the container: bounding = permitted = effective = the kept set,
//! inheritable and ambient empty (what Docker does since CVE-2022-24769).
//! Another user with the default set: bounding only, so the exec leaves it
//! no capability (as Docker). Another user with a set the manifest changed
//! (`drop: [all], keep: [net_bind_service]`): the set is also inheritable and
//! ambient, since without ambient a non-root exec loses every capability.

use std::io;

/// The default capability set, the one Docker grants (defined by `spec`).
pub use crate::model::DEFAULT_CAPABILITIES as DEFAULT_CAPS;

/// Capability names in kernel order (bit number = index).
use crate::manifest::units::CAPABILITIES as NAMES;

/// Bit number of a `CAP_*` name (also accepts it without the prefix, any case).
pub fn cap_number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    NAMES
        .iter()
        .position(|n| *n == full)
        .and_then(|i| u32::try_from(i).ok())
}

/// Mask of the named capabilities; unknown names are returned as the error.
pub fn mask<'a, I: IntoIterator<Item = &'a String>>(names: I) -> Result<u64, String> {
    let mut m = 0u64;
    for name in names {
        let bit = cap_number(name).ok_or_else(|| name.clone())?;
        m |= 1u64 << bit;
    }
    Ok(m)
}

/// The highest capability this kernel knows, from /proc/sys/kernel/cap_last_cap
/// (5.4 kernels stop at 37, newer ones at 40).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(37)
}

/// What the child applies: computed in the parent, plain integers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapPlan {
    /// Kept capabilities, limited to what the kernel knows.
    pub keep: u64,
    pub last_cap: u32,
    /// Raise the kept set as inheritable and ambient (a non-root user whose
    /// capabilities the manifest chose).
    pub ambient: bool,
}

impl CapPlan {
    /// The plan for `keep` on a kernel whose last capability is `last_cap`.
    pub fn new(keep: u64, last_cap: u32, ambient: bool) -> Self {
        let known = if last_cap >= 63 {
            u64::MAX
        } else {
            (1u64 << (last_cap + 1)) - 1
        };
        CapPlan {
            keep: keep & known,
            last_cap,
            ambient,
        }
    }

    /// Drop the bounding set. Runs in the child before the uid change (it needs
    /// CAP_SETPCAP, which the uid change may take away).
    pub fn drop_bounding(&self) -> Result<(), io::Error> {
        for cap in 0..=self.last_cap {
            if self.keep & (1u64 << cap) != 0 {
                continue;
            }
            // SAFETY: prctl with integer arguments only.
            let rc =
                unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
            if rc != 0 {
                let err = io::Error::last_os_error();
                // EINVAL: a capability this kernel does not have.
                if err.raw_os_error() != Some(libc::EINVAL) {
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// Set permitted, effective, inheritable and ambient. Runs after setuid
    /// (with PR_SET_KEEPCAPS set before it).
    pub fn apply(&self) -> Result<(), io::Error> {
        let inh = if self.ambient { self.keep } else { 0 };
        capset(self.keep, self.keep, inh)?;
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
        };
        // EINVAL: kernel before 4.3 without ambient capabilities; nothing to clear.
        if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return Err(io::Error::last_os_error());
        }
        if self.ambient {
            for cap in 0..=self.last_cap {
                if self.keep & (1u64 << cap) == 0 {
                    continue;
                }
                // SAFETY: prctl with integer arguments only.
                let rc = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE,
                        libc::c_ulong::from(cap),
                        0,
                        0,
                    )
                };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

fn lo(m: u64) -> u32 {
    u32::try_from(m & 0xffff_ffff).unwrap_or(0)
}

fn hi(m: u64) -> u32 {
    u32::try_from(m >> 32).unwrap_or(0)
}

fn capset(eff: u64, prm: u64, inh: u64) -> Result<(), io::Error> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: lo(eff),
            permitted: lo(prm),
            inheritable: lo(inh),
        },
        CapData {
            effective: hi(eff),
            permitted: hi(prm),
            inheritable: hi(inh),
        },
    ];
    // SAFETY: header and data are valid, correctly laid out v3 structures.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_bits() {
        assert_eq!(cap_number("CAP_CHOWN"), Some(0));
        assert_eq!(cap_number("net_admin"), Some(12));
        assert_eq!(cap_number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_number("CAP_NOPE"), None);
    }

    #[test]
    fn docker_default_mask() {
        let names: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        // The CapEff value Docker containers show for root.
        assert_eq!(mask(&names), Ok(0x00000000a80425fb));
        assert_eq!(
            mask(&["CAP_BOGUS".to_string()]),
            Err("CAP_BOGUS".to_string())
        );
    }

    #[test]
    fn plan_clips_to_kernel() {
        let p = CapPlan::new(u64::MAX, 37, false);
        assert_eq!(p.keep, (1u64 << 38) - 1);
    }
}
