//! Whether a process will see a signal sent to it, read from /proc: the
//! monitor waits out a stop timeout only for an init that can take the
//! stop signal (a PID namespace's init never gets one it has no handler for).

use std::fs;

/// Whether process `pid` will see `sig`: it has a handler (SigCgt) or blocks
/// it to take it with sigwait (SigBlk), as busybox init does; the kernel never
/// drops a blocked signal. Unknown counts as yes, so the full timeout applies.
pub fn catches(pid: i32, sig: i32) -> bool {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    sig_caught(&text, sig) || in_sigwait(pid)
}

/// A process inside sigtimedwait has the signals it waits for moved out of
/// SigBlk while it sleeps, so its mask cannot tell: trust it to take them.
/// Unknown (no /proc/PID/syscall on this kernel) counts as yes.
fn in_sigwait(pid: i32) -> bool {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        return true;
    };
    match text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<libc::c_long>().ok())
    {
        Some(nr) => sigwait_syscalls().contains(&nr),
        None => !text.starts_with("running"),
    }
}

/// The sigtimedwait system calls of this target. 32-bit ones also have the
/// time64 twin (5.1+), numbered 421 everywhere but on MIPS o32 (4000 + 421);
/// the libc crate does not name it for ARM and MIPS.
fn sigwait_syscalls() -> Vec<libc::c_long> {
    #[allow(unused_mut)]
    let mut v = vec![libc::SYS_rt_sigtimedwait];
    #[cfg(all(target_pointer_width = "32", target_arch = "mips"))]
    v.push(4421);
    #[cfg(all(target_pointer_width = "32", not(target_arch = "mips")))]
    v.push(421);
    v
}

fn sig_caught(status: &str, sig: i32) -> bool {
    let Ok(bit) = u32::try_from(sig - 1) else {
        return true;
    };
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
    };
    match (mask("SigCgt:"), mask("SigBlk:")) {
        (Some(cgt), Some(blk)) if bit < 64 => (cgt | blk) & (1u64 << bit) != 0,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_signals_from_sigcgt() {
        // SIGTERM (15) is bit 14, SIGPWR is bit 29 on x86 (30 - 1).
        let status = "Name:\tinit\nSigBlk:\t0000000000000002\nSigCgt:\t0000000000004000\n";
        assert!(sig_caught(status, libc::SIGTERM), "handled");
        assert!(
            sig_caught(status, libc::SIGINT),
            "blocked, taken by sigwait"
        );
        assert!(
            !sig_caught(status, libc::SIGHUP),
            "neither: dropped for a namespace init"
        );
        assert!(
            sig_caught("no mask here", libc::SIGTERM),
            "unknown counts as caught"
        );
    }
}
