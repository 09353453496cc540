//! The default seccomp filter, generated as classic BPF from this target's own
//! syscall numbers (`libc::SYS_*`) and audit architecture: no libseccomp, so
//! ARM and MIPS routers get the same filter as x86_64 and aarch64.
//!
//! Like Docker's default profile it denies (EPERM) what a container must not
//! do, and allows the calls a kept capability covers (mount with
//! CAP_SYS_ADMIN, reboot with CAP_SYS_BOOT...). clone3 gets ENOSYS without
//! CAP_SYS_ADMIN so libc falls back to clone, whose namespace flags are checked.
//! Calls from another ABI (32-bit compat on a 64-bit kernel) kill the process,
//! as libseccomp's bad-arch default does: their numbers differ, and a process
//! whose every call fails (exit included) would spin rather than end. x32
//! shares x86_64's audit arch and is denied (EPERM) by its number.

use std::io;

use super::caps::cap_number;

// Classic BPF opcodes (linux/bpf_common.h): BPF_LD (0) | BPF_W (0) | BPF_ABS.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;

const RET_ALLOW: u32 = 0x7fff_0000;
/// SECCOMP_RET_KILL_PROCESS (Linux 4.14); older kernels read it as RET_KILL
/// (0, the thread), which also never lets the call through.
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

// AUDIT_ARCH_* = ELF machine | 64-bit flag | little-endian flag (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 183 | 0x8000_0000 | 0x4000_0000;
#[cfg(target_arch = "arm")]
const AUDIT_ARCH: u32 = 40 | 0x4000_0000;
#[cfg(all(target_arch = "mips", target_endian = "big"))]
const AUDIT_ARCH: u32 = 8;
#[cfg(all(target_arch = "mips", target_endian = "little"))]
const AUDIT_ARCH: u32 = 8 | 0x4000_0000;
#[cfg(target_arch = "x86")]
const AUDIT_ARCH: u32 = 3 | 0x4000_0000;

/// Offset of the low 32 bits of args[0] in `struct seccomp_data` (args are u64).
#[cfg(target_endian = "little")]
const ARG0_LO: u32 = 16;
#[cfg(target_endian = "big")]
const ARG0_LO: u32 = 20;

/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
const CLONE_NS_FLAGS: u32 = 0x7e02_0000;

type Sys = libc::c_long;

/// Syscalls denied unless one of the named capabilities (`A|B`) is kept
/// ("" = always denied).
fn denied() -> Vec<(&'static str, Sys)> {
    // aarch64 has no arch-specific additions.
    #[cfg_attr(target_arch = "aarch64", allow(unused_mut))]
    let mut v: Vec<(&'static str, Sys)> = vec![
        ("", libc::SYS_add_key),
        ("", libc::SYS_keyctl),
        ("", libc::SYS_request_key),
        ("", libc::SYS_kexec_load),
        ("", libc::SYS_nfsservctl),
        ("", libc::SYS_userfaultfd),
        ("", libc::SYS_swapon),
        ("", libc::SYS_swapoff),
        // io_uring runs file and socket operations outside the filter's view.
        ("", libc::SYS_io_uring_setup),
        ("", libc::SYS_io_uring_enter),
        ("", libc::SYS_io_uring_register),
        ("CAP_SYS_CHROOT", libc::SYS_chroot),
        ("CAP_SYS_ADMIN", libc::SYS_fsconfig),
        ("CAP_SYS_ADMIN", libc::SYS_quotactl_fd),
        ("CAP_SYS_PTRACE", libc::SYS_process_madvise),
        ("CAP_SYS_NICE", libc::SYS_set_mempolicy_home_node),
        ("CAP_SYS_PACCT", libc::SYS_acct),
        ("CAP_SYS_ADMIN|CAP_BPF", libc::SYS_bpf),
        ("CAP_SYS_TIME", libc::SYS_clock_adjtime),
        ("CAP_SYS_TIME", libc::SYS_clock_settime),
        ("CAP_SYS_TIME", libc::SYS_settimeofday),
        ("CAP_SYS_MODULE", libc::SYS_delete_module),
        ("CAP_SYS_MODULE", libc::SYS_finit_module),
        ("CAP_SYS_MODULE", libc::SYS_init_module),
        ("CAP_SYS_NICE", libc::SYS_get_mempolicy),
        ("CAP_SYS_NICE", libc::SYS_set_mempolicy),
        ("CAP_SYS_NICE", libc::SYS_mbind),
        ("CAP_SYS_NICE", libc::SYS_move_pages),
        ("CAP_SYS_PTRACE", libc::SYS_kcmp),
        ("CAP_SYS_PTRACE", libc::SYS_process_vm_readv),
        ("CAP_SYS_PTRACE", libc::SYS_process_vm_writev),
        ("CAP_SYS_ADMIN", libc::SYS_lookup_dcookie),
        ("CAP_SYS_ADMIN", libc::SYS_mount),
        ("CAP_SYS_ADMIN", libc::SYS_umount2),
        ("CAP_SYS_ADMIN", libc::SYS_pivot_root),
        ("CAP_SYS_ADMIN", libc::SYS_setns),
        ("CAP_SYS_ADMIN", libc::SYS_unshare),
        ("CAP_SYS_ADMIN", libc::SYS_quotactl),
        ("CAP_SYS_ADMIN", libc::SYS_name_to_handle_at),
        ("CAP_SYS_ADMIN|CAP_PERFMON", libc::SYS_perf_event_open),
        ("CAP_SYS_ADMIN", libc::SYS_fanotify_init),
        ("CAP_SYS_ADMIN", libc::SYS_sethostname),
        ("CAP_SYS_ADMIN", libc::SYS_setdomainname),
        ("CAP_SYS_PTRACE", libc::SYS_pidfd_getfd),
        ("CAP_SYS_ADMIN", libc::SYS_fsopen),
        ("CAP_SYS_ADMIN", libc::SYS_fsmount),
        ("CAP_SYS_ADMIN", libc::SYS_fspick),
        ("CAP_SYS_ADMIN", libc::SYS_open_tree),
        ("CAP_SYS_ADMIN", libc::SYS_move_mount),
        ("CAP_SYS_ADMIN", libc::SYS_mount_setattr),
        ("CAP_DAC_READ_SEARCH", libc::SYS_open_by_handle_at),
        ("CAP_SYS_BOOT", libc::SYS_reboot),
        ("CAP_SYSLOG", libc::SYS_syslog),
        ("CAP_SYS_TTY_CONFIG", libc::SYS_vhangup),
    ];
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "arm",
        target_arch = "mips"
    ))]
    v.extend([
        ("", libc::SYS_sysfs),
        ("", libc::SYS__sysctl),
        ("", libc::SYS_uselib),
        ("", libc::SYS_ustat),
    ]);
    // 32-bit ARM has no migrate_pages; Docker denies it everywhere.
    #[cfg(not(target_arch = "arm"))]
    v.push(("", libc::SYS_migrate_pages));
    #[cfg(any(target_arch = "x86_64", target_arch = "mips"))]
    v.extend([
        ("CAP_SYS_RAWIO", libc::SYS_ioperm),
        ("CAP_SYS_RAWIO", libc::SYS_iopl),
    ]);
    #[cfg(target_arch = "x86_64")]
    v.push(("", libc::SYS_kexec_file_load));
    #[cfg(target_arch = "mips")]
    v.extend([
        ("CAP_SYS_TIME", libc::SYS_stime),
        ("CAP_SYS_ADMIN", libc::SYS_umount),
        ("", libc::SYS_vm86),
    ]);
    // The 64-bit time calls of 32-bit ABIs (Linux 5.1+); libc does not name them.
    #[cfg(target_arch = "arm")]
    v.extend([("CAP_SYS_TIME", 404), ("CAP_SYS_TIME", 405)]);
    #[cfg(target_arch = "mips")]
    v.extend([("CAP_SYS_TIME", 4404), ("CAP_SYS_TIME", 4405)]);
    v
}

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn nr(n: Sys) -> Option<u32> {
    u32::try_from(n).ok()
}

/// Build the default filter for a container keeping the capability mask `keep`.
pub fn default_filter(keep: u64) -> Vec<libc::sock_filter> {
    let has = |caps: &str| {
        caps.split('|')
            .filter_map(cap_number)
            .any(|b| keep & (1u64 << b) != 0)
    };
    let sys_admin = has("CAP_SYS_ADMIN");
    let deny: Vec<u32> = denied()
        .into_iter()
        .filter(|(cap, _)| !has(cap))
        .filter_map(|(_, n)| nr(n))
        .collect();
    let enosys: Vec<u32> = if sys_admin {
        Vec::new()
    } else {
        nr(libc::SYS_clone3).into_iter().collect()
    };
    let mut checks: Vec<(u32, bool)> = deny.iter().map(|n| (*n, false)).collect();
    checks.extend(enosys.iter().map(|n| (*n, true)));
    // Layout: arch check, nr load, [x32 check], checks, [clone check], allow, deny, enosys.
    let x32 = cfg!(target_arch = "x86_64");
    let clone = if sys_admin { None } else { nr(libc::SYS_clone) };
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, 4),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET_K, RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, 0),
    ];
    let body = usize::from(x32) + checks.len() + if clone.is_some() { 3 } else { 0 };
    let allow_at = prog.len() + body;
    let deny_at = allow_at + 1;
    let enosys_at = allow_at + 2;
    let off = |from: usize, to: usize| u8::try_from(to - from - 1).unwrap_or(u8::MAX);
    if x32 {
        // x32 shares AUDIT_ARCH_X86_64 and sets bit 30 of the number.
        let i = prog.len();
        prog.push(jump(BPF_JMP_JGE_K, 0x4000_0000, off(i, deny_at), 0));
    }
    for (n, is_enosys) in checks {
        let i = prog.len();
        let target = if is_enosys { enosys_at } else { deny_at };
        prog.push(jump(BPF_JMP_JEQ_K, n, off(i, target), 0));
    }
    if let Some(clone_nr) = clone {
        prog.push(jump(BPF_JMP_JEQ_K, clone_nr, 0, 2));
        prog.push(stmt(BPF_LD_W_ABS, ARG0_LO));
        let i = prog.len();
        prog.push(jump(BPF_JMP_JSET_K, CLONE_NS_FLAGS, off(i, deny_at), 0));
    }
    prog.push(stmt(BPF_RET_K, RET_ALLOW));
    prog.push(stmt(BPF_RET_K, RET_ERRNO | errno(libc::EPERM)));
    prog.push(stmt(BPF_RET_K, RET_ERRNO | errno(libc::ENOSYS)));
    prog
}

fn errno(e: i32) -> u32 {
    u32::try_from(e).unwrap_or(1) & 0xffff
}

/// Load the filter into this process (needs no_new_privs or CAP_SYS_ADMIN).
pub fn install(filter: &[libc::sock_filter]) -> io::Result<()> {
    let len = libc::c_ushort::try_from(filter.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prog points to `len` valid instructions that outlive the call;
    // the kernel copies them.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
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

    /// A tiny classic-BPF interpreter over (arch, nr, arg0) to check the program.
    fn run(prog: &[libc::sock_filter], arch: u32, sysno: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&sysno.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        data[16..24].copy_from_slice(&arg0.to_ne_bytes());
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let ins = prog[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    let k = ins.k as usize;
                    a = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                }
                BPF_RET_K => return ins.k,
                BPF_JMP_JEQ_K | BPF_JMP_JGE_K | BPF_JMP_JSET_K => {
                    let hit = match ins.code {
                        BPF_JMP_JEQ_K => a == ins.k,
                        BPF_JMP_JGE_K => a >= ins.k,
                        _ => a & ins.k != 0,
                    };
                    pc += usize::from(if hit { ins.jt } else { ins.jf });
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
        }
    }

    fn n(s: Sys) -> u32 {
        u32::try_from(s).unwrap()
    }

    #[test]
    fn default_denies_and_allows() {
        let p = default_filter(0);
        // Classic BPF jumps are 8 bits: every check must reach the deny return.
        assert!(p.len() < 255, "{}", p.len());
        let eperm = RET_ERRNO | libc::EPERM as u32;
        assert_eq!(run(&p, AUDIT_ARCH, n(libc::SYS_mount), 0), eperm);
        assert_eq!(run(&p, AUDIT_ARCH, n(libc::SYS_keyctl), 0), eperm);
        assert_eq!(run(&p, AUDIT_ARCH, n(libc::SYS_getpid), 0), RET_ALLOW);
        for io_uring in [
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
        ] {
            assert_eq!(run(&p, AUDIT_ARCH, n(io_uring), 0), eperm, "{io_uring}");
        }
        assert_eq!(run(&p, AUDIT_ARCH, n(libc::SYS_chroot), 0), eperm);
        assert_eq!(
            run(&p, AUDIT_ARCH, n(libc::SYS_clone3), 0),
            RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(
            run(&p, AUDIT_ARCH, n(libc::SYS_clone), libc::SIGCHLD as u64),
            RET_ALLOW
        );
        assert_eq!(
            run(
                &p,
                AUDIT_ARCH,
                n(libc::SYS_clone),
                libc::CLONE_NEWUSER as u64
            ),
            eperm
        );
        // Another ABI's numbers mean other calls: killed, not allowed.
        for arch in [
            AUDIT_ARCH ^ 1,
            AUDIT_ARCH ^ 0x4000_0000,
            AUDIT_ARCH ^ 0x8000_0000,
        ] {
            assert_eq!(
                run(&p, arch, n(libc::SYS_getpid), 0),
                RET_KILL_PROCESS,
                "{arch:#x}"
            );
        }
    }

    #[test]
    fn kept_caps_open_their_syscalls() {
        let admin = 1u64 << cap_number("CAP_SYS_ADMIN").unwrap();
        let p = default_filter(admin);
        assert_eq!(run(&p, AUDIT_ARCH, n(libc::SYS_mount), 0), RET_ALLOW);
        assert_eq!(
            run(
                &p,
                AUDIT_ARCH,
                n(libc::SYS_clone),
                libc::CLONE_NEWUSER as u64
            ),
            RET_ALLOW
        );
        assert_eq!(
            run(&p, AUDIT_ARCH, n(libc::SYS_keyctl), 0),
            RET_ERRNO | libc::EPERM as u32
        );
        assert_eq!(
            run(&p, AUDIT_ARCH, n(libc::SYS_reboot), 0),
            RET_ERRNO | libc::EPERM as u32
        );
        // No capability opens io_uring.
        let p = default_filter(u64::MAX);
        assert_eq!(
            run(&p, AUDIT_ARCH, n(libc::SYS_io_uring_setup), 0),
            RET_ERRNO | libc::EPERM as u32
        );
        assert_eq!(run(&p, AUDIT_ARCH, n(libc::SYS_chroot), 0), RET_ALLOW);
        // Either capability of an `A|B` entry opens the call.
        let p = default_filter(1u64 << cap_number("CAP_BPF").unwrap());
        assert_eq!(run(&p, AUDIT_ARCH, n(libc::SYS_bpf), 0), RET_ALLOW);
        assert_eq!(
            run(&p, AUDIT_ARCH, n(libc::SYS_mount), 0),
            RET_ERRNO | libc::EPERM as u32
        );
    }

    /// `struct seccomp_data` as the kernel lays it out, written out byte by
    /// byte: args are u64, so the low half of args[0] (the clone flags) is at
    /// offset 16 on little-endian and 20 on big-endian (MIPS BE). With the
    /// wrong one the clone check reads the high half (zero on a 32-bit
    /// kernel) and lets every namespace flag through.
    #[test]
    fn clone_flags_are_read_from_the_low_half_of_arg0() {
        let mut data = [0u8; 64];
        // args[0] = CLONE_NEWUSER (0x10000000), laid out by hand.
        if cfg!(target_endian = "big") {
            data[16..24].copy_from_slice(&[0, 0, 0, 0, 0x10, 0, 0, 0]);
        } else {
            data[16..24].copy_from_slice(&[0, 0, 0, 0x10, 0, 0, 0, 0]);
        }
        let k = usize::try_from(ARG0_LO).unwrap();
        let word = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
        assert_eq!(word, 0x1000_0000);
        assert_eq!(
            u64::from_ne_bytes(data[16..24].try_into().unwrap()),
            0x1000_0000
        );
        let p = default_filter(0);
        assert!(
            p.iter().any(|i| i.code == BPF_LD_W_ABS && i.k == ARG0_LO),
            "the clone check loads args[0] at {ARG0_LO}"
        );
    }
}
