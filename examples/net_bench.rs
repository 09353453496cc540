//! Benchmark driver for bench/net.sh (run as root inside a throwaway network
//! and mount namespace that already holds bridge `br0` and the veth parent
//! `p0`). Times, per iteration and interleaved, the start-to-exit of one
//! process in a new network namespace with one interface:
//!   berth-veth / berth-macvlan: fork + unshare, `attach`, exec busybox true,
//!     wait, `detach`;
//!   lxc-veth / lxc-macvlan: `lxc-execute` of the same command with the
//!     equivalent config;
//!   floor: `unshare -n ip link add ... type veth` (a bare namespace plus one
//!     veth, torn down by the kernel).
//! Prints one `name median_ms p10_ms p90_ms` line per case.

// Test and bench setup: a failed step panics with its location.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::ffi::CString;
use std::process::Command;
use std::time::{Duration, Instant};

use berth::host::net::{self, NetnsRef};
use berth::model::{AttachmentSpec, MacvlanMode, NetworkKind, NetworkSpec, Spec};

fn spec(name: &str, network: &str, addr: &str) -> Spec {
    let mut s = Spec::new(name, "busybox", None);
    s.network = vec![AttachmentSpec::new(
        network,
        "eth0",
        vec![addr.parse().expect("cidr")],
    )];
    s
}

/// One berth run: child in a new netns waits for the go byte, then execs.
fn berth_once(s: &Spec, nets: &BTreeMap<String, NetworkSpec>) -> Duration {
    let prog = CString::new("/bin/busybox").expect("cstring");
    let arg0 = CString::new("busybox").expect("cstring");
    let arg1 = CString::new("true").expect("cstring");
    let argv = [arg0.as_ptr(), arg1.as_ptr(), std::ptr::null()];
    let mut ready = [0i32; 2];
    let mut go = [0i32; 2];
    let start = Instant::now();
    let t_attach;
    // SAFETY: plain pipe/fork/exec; the child only calls async-signal-safe
    // functions (unshare, write, read, execv, _exit) before exec.
    unsafe {
        assert_eq!(libc::pipe(ready.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(go.as_mut_ptr()), 0);
        let pid = libc::fork();
        if pid == 0 {
            let ok: u8 = u8::from(libc::unshare(libc::CLONE_NEWNET) == 0);
            libc::write(ready[1], (&ok as *const u8).cast(), 1);
            let mut b = 0u8;
            libc::read(go[0], (&mut b as *mut u8).cast(), 1);
            libc::execv(prog.as_ptr(), argv.as_ptr());
            libc::_exit(127);
        }
        let mut b = 0u8;
        libc::read(ready[0], (&mut b as *mut u8).cast(), 1);
        assert_eq!(b, 1, "child unshare failed");
        let pid_u = u32::try_from(pid).expect("pid");
        let t = Instant::now();
        net::attach(s, nets, NetnsRef::Pid(pid_u)).expect("attach");
        t_attach = t.elapsed();
        libc::write(go[1], (&b as *const u8).cast(), 1);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        for fd in ready.iter().chain(go.iter()) {
            libc::close(*fd);
        }
    }
    let t = Instant::now();
    let removed = net::detach(&s.name).expect("detach");
    if std::env::var_os("NET_BENCH_VERBOSE").is_some() {
        eprintln!(
            "{}: attach {:?} detach {:?} removed {removed:?} total {:?}",
            s.name,
            t_attach,
            t.elapsed(),
            start.elapsed()
        );
    }
    start.elapsed()
}

fn cmd_once(args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn stats(name: &str, mut v: Vec<Duration>) -> f64 {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: usize| ms(v[(v.len() - 1) * q / 100]);
    println!("{name} {:.2} {:.2} {:.2}", at(50), at(10), at(90));
    at(50)
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30);
    let lxc_dir = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "/tmp/berth-bench-lxc".into());
    let nets: BTreeMap<String, NetworkSpec> = [
        NetworkSpec {
            name: "lan".into(),
            kind: NetworkKind::Bridge {
                bridge: "br0".into(),
                create: false,
                address: vec![],
            },
            mtu: None,
        },
        NetworkSpec {
            name: "wan".into(),
            kind: NetworkKind::Macvlan {
                parent: "p0".into(),
                mode: MacvlanMode::Bridge,
                vlan: None,
                host_link: false,
                host_address: Vec::new(),
            },
            mtu: None,
        },
    ]
    .into_iter()
    .map(|n| (n.name.clone(), n))
    .collect();
    let veth = spec("benchv", "lan", "10.60.0.2/24");
    let macvlan = spec("benchm", "wan", "10.61.0.2/24");
    let lxc = |conf: &str, name: &str| {
        let conf = format!("{lxc_dir}/{conf}.conf");
        cmd_once(&[
            "lxc-execute",
            "-P",
            &lxc_dir,
            "-n",
            name,
            "-f",
            &conf,
            "-q",
            "--",
            "/bin/busybox",
            "true",
        ])
    };
    let mut res: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for i in 0..iterations + 2 {
        let round = [
            ("berth-veth", berth_once(&veth, &nets)),
            ("berth-macvlan", berth_once(&macvlan, &nets)),
            ("lxc-veth", lxc("veth", "lv")),
            ("lxc-macvlan", lxc("macvlan", "lm")),
            (
                "floor",
                cmd_once(&[
                    "unshare", "-n", "ip", "link", "add", "eth0", "type", "veth", "peer", "name",
                    "eth1",
                ]),
            ),
        ];
        if i < 2 {
            continue; // warm-up: page cache, module autoload
        }
        for (k, d) in round {
            res.entry(k).or_default().push(d);
        }
    }
    let med: BTreeMap<&str, f64> = res.into_iter().map(|(k, v)| (k, stats(k, v))).collect();
    for kind in ["veth", "macvlan"] {
        let b = med[format!("berth-{kind}").as_str()];
        let l = med[format!("lxc-{kind}").as_str()];
        println!("ratio-{kind} {:.2}", b / l);
    }
}
