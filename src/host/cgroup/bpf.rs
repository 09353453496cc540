//! cgroup v2 device filter: a `BPF_PROG_TYPE_CGROUP_DEVICE` program assembled
//! here from the rule list, loaded with the raw bpf(2) syscall and attached to
//! the container's cgroup with `BPF_PROG_ATTACH`. No libbpf, no clang.
//!
//! The kernel calls the program on every open/mknod of a device node with
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
//! where `access_type = access << 16 | type`. Return 1 allows, 0 denies.
//! Rules are checked last to first, so a later rule wins as in v1.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::{CgroupError, Result};
use crate::model::{DeviceKind, DeviceRule};

/// One eBPF instruction, as `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// dst_reg:4 and src_reg:4, a C bitfield whose order follows the byte order.
    pub regs: u8,
    /// Jump offset or memory offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

// Opcode parts (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K: u8 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x04 | 0x70; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_X: u8 = 0x04 | 0xb0 | 0x08; // BPF_ALU | BPF_MOV | BPF_X
const ALU64_MOV_K: u8 = 0x07 | 0xb0; // BPF_ALU64 | BPF_MOV | BPF_K
const JNE_K: u8 = 0x05 | 0x50; // BPF_JMP | BPF_JNE | BPF_K
const JEQ_K: u8 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const EXIT: u8 = 0x05 | 0x90; // BPF_JMP | BPF_EXIT

/// bpf_cgroup_dev_ctx type values.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// bpf_cgroup_dev_ctx access bits.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // The C bitfield `dst_reg:4, src_reg:4` puts dst in the low nibble on
        // little-endian and in the high nibble on big-endian (MIPS) targets.
        let regs = if cfg!(target_endian = "big") {
            (dst << 4) | src
        } else {
            (src << 4) | dst
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    /// The destination register.
    pub fn dst(&self) -> u8 {
        if cfg!(target_endian = "big") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        }
    }

    /// The source register.
    pub fn src(&self) -> u8 {
        if cfg!(target_endian = "big") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }
}

fn access_bits(r: &DeviceRule) -> i32 {
    let mut a = 0;
    if r.read {
        a |= ACC_READ;
    }
    if r.write {
        a |= ACC_WRITE;
    }
    if r.mknod {
        a |= ACC_MKNOD;
    }
    a
}

/// A device number as an immediate; numbers past i32 cannot occur (majors
/// are 12 bits, minors 20) but are never silently wrapped.
fn imm(n: u32) -> Option<i32> {
    i32::try_from(n).ok()
}

/// Assemble the filter for a complete rule list (deny all first, as
/// [`super::devices::effective_device_rules`] makes it). Registers: r2 type,
/// r3 access, r4 major, r5 minor; r1 is scratch after the loads.
pub fn compile(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(LDX_MEM_W, 2, 1, 0, 0),
        Insn::new(ALU32_AND_K, 2, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, 3, 1, 0, 0),
        Insn::new(ALU32_RSH_K, 3, 0, 0, 16),
        Insn::new(LDX_MEM_W, 4, 1, 4, 0),
        Insn::new(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        let acc = access_bits(r);
        if acc == 0 {
            continue;
        }
        // Each test jumps to the end of the block when the rule does not match;
        // the offset is patched once the block's length is known (-1 marks it).
        let mut block = Vec::new();
        match r.kind {
            DeviceKind::All => {}
            DeviceKind::Char => block.push(Insn::new(JNE_K, 2, 0, -1, DEV_CHAR)),
            DeviceKind::Block => block.push(Insn::new(JNE_K, 2, 0, -1, DEV_BLOCK)),
        }
        if acc != ACC_ALL {
            block.push(Insn::new(ALU32_MOV_X, 1, 3, 0, 0));
            if r.allow {
                // Allow only when every requested access is in the rule.
                block.push(Insn::new(ALU32_AND_K, 1, 0, 0, !acc & ACC_ALL));
                block.push(Insn::new(JNE_K, 1, 0, -1, 0));
            } else {
                // Deny when any requested access is in the rule.
                block.push(Insn::new(ALU32_AND_K, 1, 0, 0, acc));
                block.push(Insn::new(JEQ_K, 1, 0, -1, 0));
            }
        }
        let mut unrepresentable = false;
        for (reg, num) in [(4, r.major), (5, r.minor)] {
            match num.map(imm) {
                None => {}
                Some(Some(n)) => block.push(Insn::new(JNE_K, reg, 0, -1, n)),
                Some(None) => unrepresentable = true,
            }
        }
        if unrepresentable {
            continue;
        }
        let unconditional = block.is_empty();
        block.push(Insn::new(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)));
        block.push(Insn::new(EXIT, 0, 0, 0, 0));
        if unconditional {
            // A catch-all (`a *:* rwm`) decides everything left: the verifier
            // rejects the unreachable code that would follow it.
            p.extend(block);
            return p;
        }
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.off == -1 && (insn.code == JNE_K || insn.code == JEQ_K) {
                // Jump past the block: target = pc + 1 + off. Blocks are a handful of insns.
                insn.off = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
            }
        }
        p.extend(block);
    }
    p.push(Insn::new(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(Insn::new(EXIT, 0, 0, 0, 0));
    p
}

// bpf(2) commands and constants (linux/bpf.h); the same on every architecture.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_REPLACE: u32 = 4;

#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, initialised #[repr(C)] struct matching the kernel's
    // union bpf_attr member for `cmd`, and its size is passed with it; every
    // pointer inside it points at memory that outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// Load the program; on failure load again with the verifier log for the message.
fn load(insns: &[Insn], path: &Path) -> Result<OwnedFd> {
    let license = b"Apache-2.0\0";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"berth_devcg");
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).unwrap_or(u32::MAX),
        insns: insns.as_ptr() as usize as u64,
        license: license.as_ptr() as usize as u64,
        prog_name: name,
        ..Default::default()
    };
    let first = match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return owned(fd).map_err(|source| bpf_err("load", path, String::new(), source)),
        Err(e) => e,
    };
    // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK, often 64 KiB.
    if first.raw_os_error() == Some(libc::EPERM) {
        let inf = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit reads the struct we pass and nothing else.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) };
    }
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = u32::try_from(log.len()).unwrap_or(0);
    attr.log_buf = log.as_mut_ptr() as usize as u64;
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => owned(fd).map_err(|source| bpf_err("load", path, String::new(), source)),
        Err(source) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end])
                .trim()
                .replace('\n', "; ");
            Err(bpf_err(
                "load",
                path,
                if text.is_empty() {
                    text
                } else {
                    format!(": verifier: {text}")
                },
                source,
            ))
        }
    }
}

fn bpf_err(op: &'static str, path: &Path, log: String, source: io::Error) -> CgroupError {
    CgroupError::Bpf {
        op,
        path: path.to_path_buf(),
        log,
        source,
    }
}

/// Ids of the device programs attached to the cgroup now.
fn query(cg: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut attr = QueryAttr {
        target_fd: fd_u32(cg),
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as usize as u64,
        prog_cnt: 64,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_QUERY, &mut attr)?;
    let n = usize::try_from(attr.prog_cnt).unwrap_or(0).min(ids.len());
    Ok(ids[..n].to_vec())
}

/// Load the filter for `rules` and attach it to the cgroup at `dir`,
/// replacing berth's earlier filter. With one old program and kernel 5.6+ the
/// swap is atomic (BPF_F_REPLACE); otherwise the new one is attached before
/// the old one is detached, and while both are attached a device needs both
/// to allow it, so the container never gets more than either list allows.
pub fn install(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let prog = load(&compile(rules), dir)?;
    let cg = std::fs::File::open(dir)
        .map_err(|source| bpf_err("open cgroup for", dir, String::new(), source))?;
    let cg = OwnedFd::from(cg);
    let old = query(&cg).unwrap_or_default();
    let mut attr = AttachAttr {
        target_fd: fd_u32(&cg),
        attach_bpf_fd: fd_u32(&prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    if let [one] = old.as_slice() {
        if let Ok(old_fd) = prog_fd(*one) {
            attr.attach_flags = BPF_F_ALLOW_MULTI | BPF_F_REPLACE;
            attr.replace_bpf_fd = fd_u32(&old_fd);
            if sys_bpf(BPF_PROG_ATTACH, &mut attr).is_ok() {
                return Ok(());
            }
            attr.attach_flags = BPF_F_ALLOW_MULTI;
            attr.replace_bpf_fd = 0;
        }
    }
    sys_bpf(BPF_PROG_ATTACH, &mut attr)
        .map_err(|source| bpf_err("attach", dir, String::new(), source))?;
    for id in old {
        let old_fd = prog_fd(id)
            .map_err(|source| bpf_err("find the old program of", dir, String::new(), source))?;
        let mut d = AttachAttr {
            target_fd: fd_u32(&cg),
            attach_bpf_fd: fd_u32(&old_fd),
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        sys_bpf(BPF_PROG_DETACH, &mut d)
            .map_err(|source| bpf_err("detach the old program of", dir, String::new(), source))?;
    }
    Ok(())
}

fn prog_fd(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        ..Default::default()
    };
    owned(sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)?)
}

/// The number of device programs attached to the cgroup at `dir` (tests, status).
pub fn attached(dir: &Path) -> Result<usize> {
    let cg = std::fs::File::open(dir)
        .map_err(|source| bpf_err("open cgroup for", dir, String::new(), source))?;
    let ids =
        query(&OwnedFd::from(cg)).map_err(|source| bpf_err("query", dir, String::new(), source))?;
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::cgroup::effective_device_rules;

    /// A tiny interpreter for the instructions `compile` emits, so the
    /// program's decisions are checked without loading it.
    fn run(p: &[Insn], dev_type: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access << 16 | dev_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = p[pc];
            let (d, s) = (usize::from(i.dst()), usize::from(i.src()));
            let k = i64::from(i.imm) as u64;
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = u64::from(ctx[usize::try_from(i.off).expect("offset") / 4]);
                }
                ALU32_AND_K => r[d] = (r[d] & k) & 0xffff_ffff,
                ALU32_RSH_K => r[d] = (r[d] & 0xffff_ffff) >> k,
                ALU32_MOV_X => r[d] = r[s] & 0xffff_ffff,
                ALU64_MOV_K => r[d] = k,
                JNE_K => {
                    if r[d] != k {
                        pc = (pc as isize + isize::from(i.off)) as usize;
                    }
                }
                JEQ_K => {
                    if r[d] == k {
                        pc = (pc as isize + isize::from(i.off)) as usize;
                    }
                }
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("no exit");
    }

    const R: u32 = 2;
    const W: u32 = 4;
    const M: u32 = 1;
    const C: u32 = 2;
    const B: u32 = 1;

    #[test]
    fn default_rules_allow_standard_nodes_only() {
        let p = compile(&effective_device_rules(&[]));
        assert_eq!(run(&p, C, R | W, 1, 3), 1, "/dev/null");
        assert_eq!(run(&p, C, R | W | M, 1, 9), 1, "/dev/urandom");
        assert_eq!(run(&p, C, R | W, 136, 7), 1, "/dev/pts/7");
        assert_eq!(run(&p, C, R, 1, 1), 0, "/dev/mem");
        assert_eq!(run(&p, C, R, 1, 2), 0, "/dev/kmem");
        assert_eq!(run(&p, B, R, 1, 3), 0, "block 1:3 is not /dev/null");
        assert_eq!(run(&p, B, R | W, 8, 0), 0, "/dev/sda");
        assert_eq!(run(&p, C, R, 10, 200), 0, "/dev/net/tun");
    }

    #[test]
    fn later_rules_win_and_access_is_checked() {
        let sda_read = DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major: Some(8),
            minor: None,
            read: true,
            write: false,
            mknod: false,
        };
        let no_null_write = DeviceRule {
            allow: false,
            kind: DeviceKind::Char,
            major: Some(1),
            minor: Some(3),
            read: false,
            write: true,
            mknod: false,
        };
        let p = compile(&effective_device_rules(&[sda_read, no_null_write]));
        assert_eq!(run(&p, B, R, 8, 16), 1, "read sdb");
        assert_eq!(run(&p, B, R | W, 8, 16), 0, "write sdb not allowed");
        assert_eq!(run(&p, C, R, 1, 3), 1, "read null");
        assert_eq!(
            run(&p, C, R | W, 1, 3),
            0,
            "write null denied by the later rule"
        );
        let allow_all = DeviceRule {
            kind: DeviceKind::All,
            major: None,
            write: true,
            mknod: true,
            ..sda_read
        };
        let p = compile(&effective_device_rules(&[allow_all]));
        assert_eq!(run(&p, C, R | W, 1, 1), 1, "`a` allows everything");
    }

    #[test]
    fn encoding_is_stable() {
        let p = compile(&[]);
        // Prologue of 6 loads/shifts plus the default deny.
        assert_eq!(p.len(), 8);
        // A catch-all rule ends the program: nothing unreachable follows it.
        let all = effective_device_rules(&[]);
        let q = compile(&all[..1]);
        assert_eq!(q.len(), 8);
        assert_eq!(q[6], Insn::new(ALU64_MOV_K, 0, 0, 0, 0));
        assert_eq!(p[0], Insn::new(0x61, 2, 1, 0, 0));
        assert_eq!((p[0].dst(), p[0].src()), (2, 1));
        if cfg!(target_endian = "little") {
            assert_eq!(p[0].regs, 0x12);
        }
        assert_eq!(p[7].code, 0x95);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        assert_eq!(std::mem::size_of::<LoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<AttachAttr>(), 20);
    }

    /// The instructions as the kernel reads them from memory, written out
    /// byte by byte for each byte order: `struct bpf_insn` has the 4-bit
    /// register fields swapped on big-endian (dst in the high nibble) and
    /// `off`/`imm` high byte first. A program with them the little-endian way
    /// round loads on MIPS BE but reads the wrong registers.
    #[test]
    fn instruction_bytes_in_this_hosts_byte_order() {
        let bytes = |i: Insn| {
            let mut b = vec![i.code, i.regs];
            b.extend_from_slice(&i.off.to_ne_bytes());
            b.extend_from_slice(&i.imm.to_ne_bytes());
            b
        };
        // r2 = *(u32 *)(r1 + 0); if r4 != 136 goto +3
        let load = Insn::new(LDX_MEM_W, 2, 1, 0, 0);
        let jump = Insn::new(JNE_K, 4, 0, 3, 136);
        let (load_b, jump_b): ([u8; 8], [u8; 8]) = if cfg!(target_endian = "big") {
            (
                [0x61, 0x21, 0, 0, 0, 0, 0, 0],
                [0x55, 0x40, 0, 3, 0, 0, 0, 136],
            )
        } else {
            (
                [0x61, 0x12, 0, 0, 0, 0, 0, 0],
                [0x55, 0x04, 3, 0, 136, 0, 0, 0],
            )
        };
        assert_eq!(bytes(load), load_b);
        assert_eq!(bytes(jump), jump_b);
        // The struct as passed to bpf(2): the same 8 bytes in memory.
        // SAFETY: Insn is repr(C), 8 bytes of plain integers with no padding.
        let raw: [u8; 8] = unsafe { std::mem::transmute(jump) };
        assert_eq!(raw, jump_b);
    }
}
