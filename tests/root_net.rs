//! Root tests of the network backend. Each test runs on its own thread inside
//! a network namespace it creates (the router's "host" side), with one child
//! process per container, each in its own namespace. The machine's own
//! interfaces are never touched: everything lives in namespaces that die
//! with the test (containers are killed in Drop, the host namespace goes
//! with its thread).

// Test and bench setup: a failed step panics with its location.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output};

use berth::host::net::{self, link, names, netlink::Netlink, Interface, NetError, NetnsRef};
use berth::model::{
    AttachmentSpec, Cidr, IpvlanMode, MacvlanMode, NetworkKind, NetworkSpec, RouteSpec, Spec,
};

const BUSYBOX: &str = "/bin/busybox";

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    // Under `make test` (CI, as root) a skip would hide a failure.
    assert!(
        std::env::var("BERTH_ROOT_TESTS").as_deref() != Ok("required"),
        "root_net tests need root"
    );
    eprintln!("skipped: root_net tests need root (run under `make test-root` or `make test-net`)");
    false
}

/// Runs `f` on a new thread inside a new network namespace.
fn in_host_ns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            // SAFETY: unshare only affects this fresh thread.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            );
            sh("ip link set lo up");
            f()
        });
        match handle.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

/// A "container": busybox sleep in its own network namespace, killed on drop.
struct Container {
    child: Child,
}

impl Container {
    fn start(name: &str) -> Container {
        let mut cmd = Command::new(BUSYBOX);
        cmd.args(["sleep", "1000"])
            .env("BERTH_TEST_CONTAINER", name);
        // SAFETY: unshare is async-signal-safe; runs in the forked child only.
        unsafe {
            cmd.pre_exec(|| {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn container");
        Container { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs a busybox applet inside the container's network namespace.
    fn run(&self, args: &[&str]) -> Output {
        let pid = self.pid().to_string();
        let mut full = vec!["-t", pid.as_str(), "-n", BUSYBOX];
        full.extend_from_slice(args);
        Command::new("nsenter")
            .args(&full)
            .output()
            .expect("nsenter")
    }

    fn ping(&self, ip: &str) -> bool {
        let ok = self
            .run(&["ping", "-c", "1", "-W", "2", ip])
            .status
            .success();
        ok || self
            .run(&["ping", "-c", "1", "-W", "2", ip])
            .status
            .success()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.kill();
    }
}

fn sh(cmd: &str) {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn host_ping(ip: &str) -> bool {
    let ping = || {
        Command::new(BUSYBOX)
            .args(["ping", "-c", "1", "-W", "2", ip])
            .output()
            .map(|o| o.status.success())
    };
    ping().unwrap_or(false) || ping().unwrap_or(false)
}

/// Names of every link in the calling thread's namespace.
fn host_links() -> BTreeSet<String> {
    let mut nl = Netlink::open().expect("netlink");
    link::list(&mut nl)
        .expect("list")
        .into_iter()
        .map(|l| l.name)
        .collect()
}

/// Links carrying berth's container mark for `container`.
fn marked(container: &str) -> Vec<String> {
    let mut nl = Netlink::open().expect("netlink");
    let mark = names::container_mark(container);
    link::list(&mut nl)
        .expect("list")
        .into_iter()
        .filter(|l| l.alias.as_deref() == Some(&mark))
        .map(|l| l.name)
        .collect()
}

/// Polls `cond` for up to 5 s (the kernel dismantles namespaces asynchronously).
fn wait_until(cond: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(5) {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    cond()
}

fn cidr(s: &str) -> Cidr {
    s.parse().expect("cidr")
}

fn att(network: &str, addrs: &[&str], gw: Option<&str>) -> AttachmentSpec {
    AttachmentSpec {
        gateway: gw.map(|g| g.parse().expect("ip")),
        ..AttachmentSpec::new(network, "eth0", addrs.iter().map(|a| cidr(a)).collect())
    }
}

fn spec(name: &str, network: Vec<AttachmentSpec>) -> Spec {
    let mut s = Spec::new(name, "busybox", None);
    s.network = network;
    s
}

fn networks(list: Vec<NetworkSpec>) -> BTreeMap<String, NetworkSpec> {
    list.into_iter().map(|n| (n.name.clone(), n)).collect()
}

fn bridge_net(name: &str, bridge: &str, create: bool, address: &[&str]) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        kind: NetworkKind::Bridge {
            bridge: bridge.into(),
            create,
            address: address.iter().map(|a| cidr(a)).collect(),
        },
        mtu: None,
    }
}

fn macvlan_net(name: &str, parent: &str, vlan: Option<u16>, host_link: bool) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        kind: NetworkKind::Macvlan {
            parent: parent.into(),
            mode: MacvlanMode::Bridge,
            vlan,
            host_link,
            host_address: Vec::new(),
        },
        mtu: None,
    }
}

/// A veth pair inside the test namespace, both ends up: `p0` is the parent.
/// The veth pair p0/p1, both up: parents for macvlan, ipvlan and VLAN tests.
/// Made over netlink, not with iproute2, which the VM tier does not have.
fn make_parent() {
    let mut nl = Netlink::open().expect("netlink");
    let named = |name: &str| link::NewLink {
        name: name.into(),
        ..Default::default()
    };
    // Created down: veth_open refuses (ENOTCONN) while the pair is half made.
    nl.create(link::veth_msg(&named("p0"), None, &named("p1")))
        .expect("veth p0/p1");
    for name in ["p0", "p1"] {
        let l = link::find(&mut nl, name).expect("find").expect(name);
        link::set(&mut nl, l.index, &link::Change::Up).expect("up");
    }
}

/// Whether this kernel can make a `vlan` or `ipvlan` link (module built in,
/// loaded or loadable), probed on p1. Only a missing module counts as "no":
/// any other refusal fails the test. In the VM tier the modules are loaded,
/// so there the answer must be yes and the success path runs.
fn kernel_can(kind: &str) -> bool {
    let mut nl = Netlink::open().expect("netlink");
    let p1 = link::find(&mut nl, "p1").expect("find").expect("p1").index;
    let probe = link::NewLink {
        name: "probe0".into(),
        ..Default::default()
    };
    let req = match kind {
        "vlan" => link::vlan_msg(&probe, p1, 9),
        _ => link::ipvlan_msg(&probe, p1, IpvlanMode::L2),
    };
    let can = match nl.create(req) {
        Ok(()) => {
            let l = link::find(&mut nl, "probe0")
                .expect("find")
                .expect("probe0");
            link::delete(&mut nl, l.index).expect("delete probe");
            true
        }
        Err(e) => {
            let errno = berth::host::net::netlink::errno(&e);
            assert_eq!(errno, Some(libc::EOPNOTSUPP), "{kind} probe: {e}");
            false
        }
    };
    assert!(
        can || std::env::var_os("BERTH_VM").is_none(),
        "the VM kernel loads the {kind} module at boot"
    );
    can
}

fn start_attached(
    name: &str,
    s: &Spec,
    nets: &BTreeMap<String, NetworkSpec>,
) -> (Container, Vec<Interface>) {
    let c = Container::start(name);
    let ifaces = net::attach(s, nets, NetnsRef::Pid(c.pid())).expect("attach");
    (c, ifaces)
}

#[test]
fn bridge_created_two_containers_ping_v4_and_v6() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        let nets = networks(vec![bridge_net(
            "lan",
            "br-t1",
            true,
            &["10.50.0.1/24", "fd50::1/64"],
        )]);
        let mut sa = spec(
            "alpha",
            vec![att(
                "lan",
                &["10.50.0.2/24", "fd50::2/64"],
                Some("10.50.0.1"),
            )],
        );
        sa.network[0].gateway6 = Some("fd50::1".parse().expect("ip"));
        sa.network[0].mtu = Some(1400);
        sa.network[0].routes = vec![RouteSpec {
            to: cidr("192.168.9.0/24"),
            via: "10.50.0.1".parse().expect("ip"),
        }];
        let sb = spec(
            "beta",
            vec![att(
                "lan",
                &["10.50.0.3/24", "fd50::3/64"],
                Some("10.50.0.1"),
            )],
        );
        let (a, ia) = start_attached("alpha", &sa, &nets);
        let (b, _) = start_attached("beta", &sb, &nets);

        assert_eq!(ia.len(), 1);
        assert_eq!(ia[0].kind, "veth");
        assert_eq!(
            ia[0].host_name.as_deref(),
            Some(names::host_veth("alpha", "lan", "eth0").as_str())
        );
        assert_eq!(ia[0].mac, Some(names::mac("alpha", "lan")));
        assert!(host_links().contains("br-t1"));

        assert!(a.ping("10.50.0.3"), "alpha -> beta v4");
        assert!(a.ping("fd50::3"), "alpha -> beta v6");
        assert!(b.ping("10.50.0.1"), "beta -> host v4");
        assert!(b.ping("fd50::1"), "beta -> host v6");
        assert!(host_ping("10.50.0.2"), "host -> alpha v4");
        assert!(host_ping("fd50::2"), "host -> alpha v6");

        let routes = String::from_utf8_lossy(&a.run(&["ip", "route"]).stdout).to_string();
        assert!(routes.contains("default via 10.50.0.1"), "{routes}");
        assert!(routes.contains("192.168.9.0/24 via 10.50.0.1"), "{routes}");
        let eth0 =
            String::from_utf8_lossy(&a.run(&["ip", "link", "show", "eth0"]).stdout).to_string();
        assert!(eth0.contains("mtu 1400"), "{eth0}");
        let routes6 = String::from_utf8_lossy(&a.run(&["ip", "-6", "route"]).stdout).to_string();
        assert!(routes6.contains("default via fd50::1"), "{routes6}");

        // status view from inside the namespace
        let seen = net::observe(NetnsRef::Pid(a.pid())).expect("observe");
        let eth0 = seen.iter().find(|i| i.name == "eth0").expect("eth0 seen");
        assert!(eth0.addresses.contains(&cidr("10.50.0.2/24")));
        assert_eq!(eth0.mac, Some(names::mac("alpha", "lan")));
    });
}

#[test]
fn existing_bridge_and_bad_input_leave_nothing() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        sh("ip link add br-ex type bridge && ip addr add 10.51.0.1/24 dev br-ex && ip link set br-ex up");
        let nets = networks(vec![
            bridge_net("lan", "br-ex", false, &[]),
            bridge_net("gone", "br-none", false, &[]),
        ]);
        let s = spec(
            "gamma",
            vec![att("lan", &["10.51.0.2/24"], Some("10.51.0.1"))],
        );
        let (c, _) = start_attached("gamma", &s, &nets);
        assert!(c.ping("10.51.0.1"), "container -> existing bridge");
        assert!(host_ping("10.51.0.2"));
        drop(c);
        net::detach("gamma").expect("detach");
        assert!(wait_until(|| marked("gamma").is_empty()));

        let before = host_links();
        assert!(
            !before.iter().any(|n| n.starts_with("vgamma")),
            "{before:?}"
        );
        // The bridge's own address.
        let bad = spec("delta", vec![att("lan", &["10.51.0.1/24"], None)]);
        let d = Container::start("delta");
        let err = net::attach(&bad, &nets, NetnsRef::Pid(d.pid())).expect_err("address in use");
        assert!(matches!(err, NetError::AddressInUse { .. }), "{err}");
        assert!(
            err.to_string().contains("delta") && err.to_string().contains("`lan`"),
            "{err}"
        );

        // A missing bridge.
        let bad = spec("delta", vec![att("gone", &[], None)]);
        let err = net::attach(&bad, &nets, NetnsRef::Pid(d.pid())).expect_err("missing bridge");
        assert!(matches!(err, NetError::BridgeMissing { .. }), "{err}");

        // A name clash with a link berth did not create.
        let clash = names::host_veth("delta", "lan", "eth0");
        sh(&format!("ip link add {clash} type bridge"));
        let ok = spec("delta", vec![att("lan", &["10.51.0.9/24"], None)]);
        let err = net::attach(&ok, &nets, NetnsRef::Pid(d.pid())).expect_err("name clash");
        assert!(matches!(err, NetError::NameClash { .. }), "{err}");
        sh(&format!("ip link del {clash}"));

        // A second attachment failing rolls back the first one.
        let two = spec(
            "delta",
            vec![att("lan", &["10.51.0.9/24"], None), att("gone", &[], None)],
        );
        let mut two = two;
        two.network[1].interface = "eth1".into();
        let err = net::attach(&two, &nets, NetnsRef::Pid(d.pid())).expect_err("second fails");
        assert!(matches!(err, NetError::BridgeMissing { .. }), "{err}");

        // A failure after the veth exists (an unreachable gateway) removes it.
        let unreachable = spec(
            "delta",
            vec![att("lan", &["10.51.0.9/24"], Some("10.99.0.1"))],
        );
        let err = net::attach(&unreachable, &nets, NetnsRef::Pid(d.pid())).expect_err("route");
        assert!(err.to_string().contains("default route"), "{err}");

        assert_eq!(host_links(), before, "nothing left on the host");
        let inside = String::from_utf8_lossy(&d.run(&["ip", "-o", "link"]).stdout).to_string();
        assert!(
            !inside.contains("eth0") && !inside.contains("eth1"),
            "nothing left inside: {inside}"
        );
    });
}

#[test]
fn macvlan_containers_reach_each_other_and_host_link() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        make_parent();
        let mut lan = macvlan_net("mlan", "p0", None, true);
        if let NetworkKind::Macvlan { host_address, .. } = &mut lan.kind {
            host_address.push(cidr("10.52.0.1/24"));
        }
        net::ensure_network(&lan).expect("host link");
        let nets = networks(vec![
            lan,
            macvlan_net("lo-net", "lo", None, false),
            macvlan_net("nope", "nope0", None, false),
        ]);
        let (a, ia) = start_attached(
            "ma",
            &spec("ma", vec![att("mlan", &["10.52.0.2/24"], None)]),
            &nets,
        );
        let (b, _) = start_attached(
            "mb",
            &spec("mb", vec![att("mlan", &["10.52.0.3/24"], None)]),
            &nets,
        );
        assert_eq!(ia[0].kind, "macvlan");
        assert!(host_links().contains(&names::host_link("mlan")));

        assert!(a.ping("10.52.0.3"), "macvlan sibling");
        assert!(host_ping("10.52.0.2"), "host -> a through host_link");
        assert!(host_ping("10.52.0.3"), "host -> b through host_link");
        assert!(b.ping("10.52.0.1"), "b -> host link");

        // A parent that refuses macvlan children (loopback), and a missing one.
        let c = Container::start("mc");
        let err = net::attach(
            &spec("mc", vec![att("lo-net", &[], None)]),
            &nets,
            NetnsRef::Pid(c.pid()),
        )
        .expect_err("lo");
        assert!(matches!(err, NetError::ParentRefused { .. }), "{err}");
        let err = net::attach(
            &spec("mc", vec![att("nope", &[], None)]),
            &nets,
            NetnsRef::Pid(c.pid()),
        )
        .expect_err("missing");
        assert!(matches!(err, NetError::ParentMissing { .. }), "{err}");
        // The same MAC as a live sibling: refused after a short wait.
        let mut dup = spec("mc", vec![att("mlan", &["10.52.0.4/24"], None)]);
        dup.network[0].mac = Some(names::mac("ma", "mlan"));
        let err = net::attach(&dup, &nets, NetnsRef::Pid(c.pid())).expect_err("mac in use");
        assert!(matches!(err, NetError::MacInUse { .. }), "{err}");
        let inside = String::from_utf8_lossy(&c.run(&["ip", "-o", "link"]).stdout).to_string();
        assert!(!inside.contains("eth0"), "{inside}");

        // remove_network deletes only what berth made for it.
        let removed = net::remove_network("mlan").expect("remove");
        assert_eq!(removed, vec![names::host_link("mlan")]);
        assert!(host_links().contains("p0"));
    });
}

#[test]
fn vlan_parent_is_created_on_demand() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        make_parent();
        let has_8021q = kernel_can("vlan");
        let nets = networks(vec![macvlan_net("vl", "p0", Some(10), false)]);
        let s = spec("va", vec![att("vl", &["10.53.0.2/24"], None)]);
        let a = Container::start("va");
        let before = host_links();
        let res = net::attach(&s, &nets, NetnsRef::Pid(a.pid()));
        if has_8021q {
            res.expect("attach on vlan");
            assert!(host_links().contains("p0.10"));
            let (b, _) = start_attached(
                "vb",
                &spec("vb", vec![att("vl", &["10.53.0.3/24"], None)]),
                &nets,
            );
            assert!(b.ping("10.53.0.2"), "two macvlans on one VLAN");
        } else {
            // This kernel lacks 802.1Q: the error names the module, nothing is left.
            let err = res.expect_err("no 8021q");
            assert!(
                matches!(
                    err,
                    NetError::ModuleMissing {
                        module: "8021q",
                        ..
                    }
                ),
                "{err}"
            );
            assert!(err.to_string().contains("kmod-8021q"), "{err}");
            assert_eq!(host_links(), before);
        }
    });
}

#[test]
fn ipvlan_or_its_module_error() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        make_parent();
        let has_ipvlan = kernel_can("ipvlan");
        let nets = networks(vec![NetworkSpec {
            name: "ipv".into(),
            kind: NetworkKind::Ipvlan {
                parent: "p0".into(),
                mode: IpvlanMode::L2,
                vlan: None,
            },
            mtu: None,
        }]);
        let a = Container::start("ia");
        let res = net::attach(
            &spec("ia", vec![att("ipv", &["10.54.0.2/24"], None)]),
            &nets,
            NetnsRef::Pid(a.pid()),
        );
        if has_ipvlan {
            res.expect("attach ipvlan");
            let (b, _) = start_attached(
                "ib",
                &spec("ib", vec![att("ipv", &["10.54.0.3/24"], None)]),
                &nets,
            );
            assert!(b.ping("10.54.0.2"), "ipvlan siblings");
        } else {
            let err = res.expect_err("no ipvlan");
            assert!(
                matches!(
                    err,
                    NetError::ModuleMissing {
                        module: "ipvlan",
                        ..
                    }
                ),
                "{err}"
            );
            let inside = String::from_utf8_lossy(&a.run(&["ip", "-o", "link"]).stdout).to_string();
            assert!(!inside.contains("eth0"), "{inside}");
        }
    });
}

#[test]
fn mac_is_stable_across_recreate() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        let nets = networks(vec![bridge_net("lan", "br-t2", true, &["10.55.0.1/24"])]);
        let s = spec("stable", vec![att("lan", &["10.55.0.2/24"], None)]);
        let mac_of = |c: &Container| {
            let seen = net::observe(NetnsRef::Pid(c.pid())).expect("observe");
            seen.into_iter()
                .find(|i| i.name == "eth0")
                .and_then(|i| i.mac)
                .expect("eth0 mac")
        };
        let (mut c, _) = start_attached("stable", &s, &nets);
        let first = mac_of(&c);
        c.kill();
        net::cleanup_stale("stable").expect("cleanup");
        let (c2, _) = start_attached("stable", &s, &nets);
        assert_eq!(mac_of(&c2), first);
        assert_eq!(first, names::mac("stable", "lan"));

        // A given MAC wins over the derived one.
        let mut given = spec("given", vec![att("lan", &["10.55.0.3/24"], None)]);
        given.network[0].mac = Some("02:00:00:aa:bb:cc".parse().expect("mac"));
        let (c3, _) = start_attached("given", &given, &nets);
        assert_eq!(mac_of(&c3).to_string(), "02:00:00:aa:bb:cc");
    });
}

#[test]
fn stale_interfaces_after_kill_are_cleaned() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        let nets = networks(vec![bridge_net("lan", "br-t3", true, &["10.56.0.1/24"])]);
        let s = spec("crashy", vec![att("lan", &["10.56.0.2/24"], None)]);
        let (mut c, _) = start_attached("crashy", &s, &nets);
        // Something still holds the namespace (as a stuck process or a bind
        // mount would), so the veth outlives the SIGKILLed container.
        let holder = File::open(format!("/proc/{}/ns/net", c.pid())).expect("hold netns");
        c.kill();
        assert_eq!(
            marked("crashy"),
            vec![names::host_veth("crashy", "lan", "eth0")]
        );

        // The next apply: recreate attaches again after cleaning up.
        let removed = net::cleanup_stale("crashy").expect("cleanup");
        assert_eq!(removed, vec![names::host_veth("crashy", "lan", "eth0")]);
        assert!(marked("crashy").is_empty());
        drop(holder);

        // Even without cleanup, attach replaces its own leftover.
        let (mut c2, _) = start_attached("crashy", &s, &nets);
        let holder = File::open(format!("/proc/{}/ns/net", c2.pid())).expect("hold netns");
        c2.kill();
        let (c3, _) = start_attached("crashy", &s, &nets);
        assert!(c3.ping("10.56.0.1"));
        assert_eq!(marked("crashy").len(), 1);
        drop(holder);
    });
}

#[test]
fn nothing_left_after_detach() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        make_parent();
        let before = host_links();
        let nets = networks(vec![
            bridge_net("lan", "br-t4", true, &["10.57.0.1/24"]),
            macvlan_net("wan", "p0", None, false),
        ]);
        let mut s = spec(
            "gone",
            vec![
                att("lan", &["10.57.0.2/24"], None),
                att("wan", &["10.58.0.2/24"], None),
            ],
        );
        s.network[1].interface = "eth1".into();
        let (mut c, ifaces) = start_attached("gone", &s, &nets);
        assert_eq!(ifaces.len(), 2);
        assert_eq!(marked("gone").len(), 1);
        // Stop while the namespace is alive elsewhere: detach must delete.
        let holder = File::open(format!("/proc/{}/ns/net", c.pid())).expect("hold netns");
        c.kill();
        let removed = net::detach("gone").expect("detach");
        drop(holder);
        assert_eq!(removed, vec![names::host_veth("gone", "lan", "eth0")]);
        assert!(marked("gone").is_empty());
        // Plain stop: the kernel's namespace teardown removes the pair (for
        // free, asynchronously); detach leaves that to it and deletes the rest.
        let (mut c, _) = start_attached("gone", &s, &nets);
        std::thread::sleep(std::time::Duration::from_millis(100));
        c.kill();
        let removed = net::detach("gone").expect("detach");
        assert!(
            removed.is_empty(),
            "detach paid for a delete the kernel does: {removed:?}"
        );
        assert!(
            wait_until(|| marked("gone").is_empty()),
            "veth left: {:?}",
            marked("gone")
        );
        net::remove_network("lan").expect("remove network");
        assert_eq!(host_links(), before);
    });
}

/// A busybox httpd inside a container on a created bridge serves a page that
/// the host fetches (what `make demo` shows, at the network layer).
#[test]
fn host_fetches_a_page_from_a_bridged_container() {
    if !root() {
        return;
    }
    let www = tempfile::tempdir().expect("tempdir");
    std::fs::write(www.path().join("index.html"), "hello from berth\n").expect("page");
    in_host_ns(|| {
        let nets = networks(vec![bridge_net("lan", "br-web", true, &["10.59.0.1/24"])]);
        let s = spec(
            "web",
            vec![att("lan", &["10.59.0.2/24"], Some("10.59.0.1"))],
        );
        let (c, _) = start_attached("web", &s, &nets);
        let pid = c.pid().to_string();
        let dir = www.path().to_string_lossy().to_string();
        let mut httpd = Command::new("nsenter")
            .args([
                "-t", &pid, "-n", BUSYBOX, "httpd", "-f", "-p", "8080", "-h", &dir,
            ])
            .spawn()
            .expect("httpd");
        // busybox-static's wget crashes here (static glibc NSS), so speak
        // HTTP with nc.
        let fetch = || {
            let mut child = Command::new(BUSYBOX)
                .args(["nc", "-w", "2", "10.59.0.2", "8080"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("nc");
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                let _ = stdin.write_all(b"GET / HTTP/1.0\r\n\r\n");
            }
            child
                .wait_with_output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default()
        };
        let page = wait_until(|| fetch().contains("hello from berth"));
        let _ = httpd.kill();
        let _ = httpd.wait();
        assert!(page, "host could not fetch the container's page");
    });
}

/// The link helpers the main path does not use: move by pid and by fd,
/// rename, MTU, MAC, up.
#[test]
fn link_changes_move_rename_mtu_mac() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        use berth::host::net::link::Change;
        use std::os::fd::AsRawFd;
        sh("ip link add mv0 type veth peer name mv1");
        let c = Container::start("moves");
        let mut host = Netlink::open().expect("netlink");
        let find = |nl: &mut Netlink, n: &str| link::find(nl, n).expect("find");
        let mv0 = find(&mut host, "mv0").expect("mv0");
        link::set(&mut host, mv0.index, &Change::NetnsPid(c.pid())).expect("move by pid");
        let ns = File::open(format!("/proc/{}/ns/net", c.pid())).expect("netns");
        let mv1 = find(&mut host, "mv1").expect("mv1");
        link::set(&mut host, mv1.index, &Change::NetnsFd(ns.as_raw_fd())).expect("move by fd");
        assert!(find(&mut host, "mv0").is_none() && find(&mut host, "mv1").is_none());

        let mut inside = Netlink::open_pid(c.pid()).expect("netlink inside");
        let l = find(&mut inside, "mv0").expect("moved in");
        link::set(&mut inside, l.index, &Change::Rename("lan0".into())).expect("rename");
        link::set(&mut inside, l.index, &Change::Mtu(1280)).expect("mtu");
        let mac: berth::model::Mac = "02:11:22:33:44:55".parse().expect("mac");
        link::set(&mut inside, l.index, &Change::Mac(mac)).expect("mac");
        link::set(&mut inside, l.index, &Change::Up).expect("up");
        let l = find(&mut inside, "lan0").expect("renamed");
        assert!(l.up);
        assert_eq!(l.mac, Some(mac));
        let shown =
            String::from_utf8_lossy(&c.run(&["ip", "link", "show", "lan0"]).stdout).to_string();
        assert!(shown.contains("mtu 1280"), "{shown}");
    });
}

#[test]
fn a_refused_request_carries_the_kernels_text_and_errno() {
    if !root() {
        return;
    }
    in_host_ns(|| {
        use berth::host::net::link::Change;
        sh("ip link add mt0 type veth peer name mt1");
        let mut nl = Netlink::open().expect("netlink");
        let l = link::find(&mut nl, "mt0").expect("find").expect("mt0");
        // veth's largest MTU is 65535: dev_validate_mtu refuses with an ext-ack.
        let e = link::set(&mut nl, l.index, &Change::Mtu(70_000)).expect_err("mtu too big");
        assert_eq!(berth::host::net::netlink::errno(&e), Some(libc::EINVAL));
        let text = e.to_string();
        assert!(
            text.contains("Invalid argument") && text.contains("the kernel says:"),
            "{text}"
        );
    });
}
