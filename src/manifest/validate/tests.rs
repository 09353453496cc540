//! Validation: resolved values and defaults, and error messages with positions.
//! tests/bad/ holds whole bad manifests run through the binary.

use crate::manifest::{self, ManifestError, RenderInput};
use crate::model::*;

fn load(yaml: &str) -> Result<Desired, ManifestError> {
    manifest::load("m.yaml", yaml, "/etc/berth", &RenderInput::default()).map(|l| l.desired)
}

fn errors(yaml: &str) -> Vec<String> {
    match load(yaml) {
        Err(ManifestError::Invalid(d)) => d.iter().map(ToString::to_string).collect(),
        other => panic!("expected validation errors, got {other:?}"),
    }
}

const IMG: &str = "images: { bb: { path: img/bb.tar } }\n";

#[test]
fn defaults_are_filled_in() {
    let d = load(&format!(
        "version: 1\n{IMG}containers:\n  web: {{ image: bb }}\n  os: {{ image: bb, boot: true }}\n"
    ))
    .expect("valid");
    let web = &d.containers["web"];
    assert_eq!(web.process.hostname, "web");
    assert_eq!(web.stop_signal, "SIGTERM");
    assert_eq!(web.stop_timeout_secs, 10);
    assert_eq!(web.restart, RestartPolicy::Never);
    assert!(web.autostart && web.seccomp && !web.volatile && !web.readonly);
    assert_eq!(
        web.capabilities.len(),
        crate::manifest::units::DEFAULT_CAPABILITIES.len()
    );
    assert!(
        web.capabilities.contains("CAP_NET_BIND_SERVICE")
            && !web.capabilities.contains("CAP_SYS_ADMIN")
    );
    let os = &d.containers["os"];
    assert_eq!(
        (os.process.init.as_str(), os.stop_signal.as_str()),
        ("/sbin/init", "SIGPWR")
    );
    // Relative image paths are taken from the manifest's directory.
    assert_eq!(
        d.images["bb"].source,
        ImageSource::Path("/etc/berth/img/bb.tar".into())
    );
}

#[test]
fn values_are_converted_to_kernel_units() {
    let d = load(&format!(
        "version: 1\n{IMG}containers:\n  web:\n    image: bb\n    resources: {{ memory: 64M, swap: 0, cpu: {{ max: '1.5', weight: 200 }}, pids: 32, cpuset: {{ cpus: 0-1 }}, io: {{ weight: 50 }} }}\n    capabilities: {{ drop: [all], keep: [net_admin, CAP_NET_RAW] }}\n    namespaces: {{ user: {{ map: '0 100000 65536' }}, time: true, host: [ipc] }}\n    devices: {{ allow: ['c 10:200 rwm'], deny: ['b *:* m'] }}\n    stop_timeout: 2m\n    user: '1000:100'\n    rlimits: {{ nofile: '1024:4096' }}\n"
    ))
    .expect("valid");
    let web = &d.containers["web"];
    let r = &web.resources;
    assert_eq!(
        (r.memory, r.swap, r.pids, r.cpu_weight, r.io_weight),
        (Some(64 << 20), Some(0), Some(32), Some(200), Some(50))
    );
    assert_eq!(
        r.cpu_max,
        Some(CpuMax {
            quota_us: 150_000,
            period_us: 100_000
        })
    );
    assert_eq!(r.cpuset_cpus.as_deref(), Some("0-1"));
    assert_eq!(
        web.capabilities
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    );
    let user = web.namespaces.user.as_ref().expect("user ns");
    assert_eq!(user.uid, user.gid, "gid_map defaults to map");
    assert_eq!(
        user.uid[0],
        IdMap {
            inside: 0,
            outside: 100_000,
            count: 65_536
        }
    );
    assert!(web.namespaces.time && web.namespaces.host.contains(&HostNamespace::Ipc));
    assert_eq!(web.devices.len(), 2);
    assert!(web.devices[0].allow && !web.devices[1].allow);
    assert_eq!(web.stop_timeout_secs, 120);
    assert_eq!(
        web.process.user,
        Some(User::Id {
            uid: 1000,
            gid: Some(100)
        })
    );
    assert_eq!(
        web.process.rlimits,
        [Rlimit {
            name: "nofile".into(),
            soft: Some(1024),
            hard: Some(4096)
        }]
    );
}

#[test]
fn networks_and_attachments_resolve() {
    let d = load(&format!(
        "version: 1\n{IMG}networks:\n  lan: {{ type: bridge, create: true, address: 10.0.0.1/24 }}\n  wan: {{ type: macvlan, parent: eth1, host_link: true, address: 192.168.1.2/24 }}\ncontainers:\n  web:\n    image: bb\n    network:\n      - {{ network: lan, address: [10.0.0.5/24, 'fd00::5/64'], gateway: 10.0.0.1, gateway6: 'fd00::1' }}\n      - {{ network: wan, dhcp: true, mac: '02:00:00:00:00:09' }}\n"
    ))
    .expect("valid");
    let NetworkKind::Bridge {
        bridge,
        create,
        address,
    } = &d.networks["lan"].kind
    else {
        panic!("bridge")
    };
    assert_eq!((bridge.as_str(), *create, address.len()), ("lan", true, 1));
    let NetworkKind::Macvlan {
        host_address, mode, ..
    } = &d.networks["wan"].kind
    else {
        panic!("macvlan")
    };
    assert_eq!(
        (host_address[0].to_string(), *mode),
        ("192.168.1.2/24".to_string(), MacvlanMode::Bridge)
    );
    let a = &d.containers["web"].network;
    assert_eq!(
        (a[0].interface.as_str(), a[1].interface.as_str()),
        ("eth0", "eth1")
    );
    assert_eq!(a[0].addresses.len(), 2);
    assert!(a[1].dhcp && a[1].mac.is_some());
}

#[test]
fn errors_in_profiles_point_at_the_profile() {
    let errs = errors(&format!(
        "version: 1\n{IMG}profiles:\n  p:\n    resources: {{ pids: 0 }}\ncontainers:\n  a: {{ image: bb, profiles: [p] }}\n  b: {{ image: bb, profiles: [p] }}\n"
    ));
    // Reported once, at the profile, although two containers use it.
    assert_eq!(errs, ["m.yaml:5:24: profiles.p.resources.pids: pids 0 would forbid the container's own init; use at least 1"]);
}

#[test]
fn profiles_cannot_nest_and_need_no_image() {
    let errs = errors(&format!("version: 1\n{IMG}profiles:\n  p: {{ profiles: [q] }}\n  q: {{ hostname: x }}\ncontainers: {{}}\n"));
    assert_eq!(errs, ["m.yaml:4:18: profiles.p.profiles: profiles cannot list other profiles; list them all on the container"]);
}

#[test]
fn host_address_needs_host_link() {
    let errs = errors(&format!("version: 1\n{IMG}networks:\n  wan: {{ type: macvlan, parent: eth1, address: 10.0.0.2/24 }}\ncontainers: {{}}\n"));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("networks.wan.address: `address` is the router's address on its host link; add `host_link: true`"), "{errs:?}");
}

#[test]
fn host_network_stands_alone() {
    let errs = errors(&format!(
        "version: 1\n{IMG}networks:\n  h: {{ type: host }}\n  n: {{ type: none }}\ncontainers:\n  c:\n    image: bb\n    network: [{{ network: h }}, {{ network: n }}]\n"
    ));
    assert!(
        errs[0].contains("containers.c.network[0].network: a container on the host network"),
        "{errs:?}"
    );
}

#[test]
fn errors_are_sorted_by_position() {
    let errs = errors(&format!(
        "version: 1\n{IMG}containers:\n  b: {{ image: nope }}\n  a: {{ image: bb, restart: x }}\n"
    ));
    let lines: Vec<&str> = errs
        .iter()
        .map(|e| e.split(':').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(lines, ["5", "4"].iter().rev().copied().collect::<Vec<_>>());
}

#[test]
fn the_same_address_twice_on_a_network_is_refused() {
    let errs = errors(&format!(
        "version: 1\n{IMG}networks:\n  lan: {{ type: bridge }}\n  wan: {{ type: bridge }}\ncontainers:\n  a: {{ image: bb, network: [{{ network: lan, address: 10.0.0.5/24 }}] }}\n  b: {{ image: bb, network: [{{ network: lan, address: 10.0.0.5/24 }}] }}\n  c: {{ image: bb, network: [{{ network: wan, address: 10.0.0.5/24 }}] }}\n"
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("containers.b.network[0].address[0]: 10.0.0.5 is also given to container `a` on network `lan`"),
        "{errs:?}"
    );
}

#[test]
fn a_url_scheme_this_build_left_out_is_an_error() {
    let digest = "0".repeat(64);
    let yaml = format!(
        "version: 1\nimages:\n  a: {{ url: \"https://x.example/a.tar.gz\", sha256: \"{digest}\" }}\n  b: {{ url: \"http://x.example/b.tar.gz\", sha256: \"{digest}\" }}\ncontainers:\n  web: {{ image: a, command: [/bin/true] }}\n  db: {{ image: b, command: [/bin/true] }}\n"
    );
    let errs: Vec<String> = match load(&yaml) {
        Ok(_) => Vec::new(),
        Err(ManifestError::Invalid(d)) => d.iter().map(ToString::to_string).collect(),
        Err(other) => panic!("{other:?}"),
    };
    let refused = |f: &str| {
        errs.iter()
            .any(|e| e.contains(&format!("this berth is built without `{f}`")))
    };
    assert_eq!(refused("tls"), !cfg!(feature = "tls"), "{errs:?}");
    assert_eq!(refused("http"), !cfg!(feature = "http"), "{errs:?}");
}

#[test]
fn volatile_is_a_bool_or_a_sized_map() {
    let d = load(&format!(
        "version: 1\n{IMG}containers:\n  a: {{ image: bb, volatile: true }}\n  b: {{ image: bb, volatile: {{ size: 32M }} }}\n  c: {{ image: bb, volatile: false }}\n  d: {{ image: bb }}\n"
    ))
    .expect("valid");
    let c = &d.containers;
    assert_eq!(
        (c["a"].volatile, c["a"].volatile_size),
        (true, Some(64 << 20))
    );
    assert_eq!(
        (c["b"].volatile, c["b"].volatile_size),
        (true, Some(32 << 20))
    );
    assert_eq!((c["c"].volatile, c["c"].volatile_size), (false, None));
    // A container that is not volatile records no size (its digest and
    // applied record stay as they were before sizes existed).
    assert!(!serde_json::to_string(&c["c"])
        .unwrap()
        .contains("volatile_size"));
    let errs = errors(&format!(
        "version: 1\n{IMG}containers:\n  a: {{ image: bb, volatile: {{ size: lots }} }}\n  b: {{ image: bb, volatile: {{ size: 4K }} }}\n"
    ));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with("m.yaml:4:")
            && errs[0].contains("containers.a.volatile.size")
            && errs[0].contains("\"lots\" is not a size; use e.g. 64M"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("m.yaml:5:") && errs[1].contains("at least 1M"),
        "{errs:?}"
    );
    let err = load(&format!(
        "version: 1\n{IMG}containers:\n  a: {{ image: bb, volatile: yes please }}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("m.yaml:4:29: containers.a.volatile: ")
            && err.contains("true, false or a map such as { size: 32M }"),
        "{err}"
    );
}

#[test]
fn fetch_settings_are_resolved_and_checked() {
    let d = load(&format!(
        "version: 1\n{IMG}settings: {{ ca_bundle: /etc/berth/fleet-ca.pem, fetch_timeout: 2m, fetch_min_rate: 4K }}\ncontainers: {{}}\n"
    ))
    .expect("valid");
    assert_eq!(
        d.settings.ca_bundle.as_deref(),
        Some("/etc/berth/fleet-ca.pem")
    );
    assert_eq!(d.settings.fetch_timeout, Some(120));
    assert_eq!(d.settings.fetch_min_rate, Some(4096));
    let d = load(&format!(
        "version: 1\n{IMG}settings: {{ fetch_min_rate: 0 }}\ncontainers: {{}}\n"
    ))
    .expect("0 turns the rule off");
    assert_eq!(d.settings.fetch_min_rate, Some(0));
    let errs = errors(&format!(
        "version: 1\n{IMG}settings: {{ ca_bundle: ca.pem, fetch_timeout: 0, fetch_min_rate: fast }}\ncontainers: {{}}\n"
    ));
    let joined = errs.join("\n");
    for want in [
        "settings.ca_bundle: ",
        "settings.fetch_timeout: \"0\" would fail every download; use e.g. 60s or 2m",
        "settings.fetch_min_rate: \"fast\" is not a size",
    ] {
        assert!(joined.contains(want), "{want}: {joined}");
    }
}

#[test]
fn health_checks_are_resolved_with_defaults() {
    let d = load(&format!(
        "version: 1\n{IMG}profiles:\n  probed: {{ health: {{ tcp: 53 }} }}\ncontainers:\n  dns: {{ image: bb, profiles: [probed], restart: on-unhealthy }}\n  web: {{ image: bb, health: {{ http: {{ port: 8080, path: /healthz, status: 204 }}, interval: 30s, timeout: 2s, retries: 5, start_period: 1m }} }}\n  job: {{ image: bb, health: {{ exec: [pgrep, job] }} }}\n  plain: {{ image: bb }}\n"
    ))
    .expect("valid");
    let c = &d.containers;
    assert_eq!(
        c["dns"].health,
        Some(HealthSpec {
            probe: Probe::Tcp(53),
            interval_secs: 10,
            timeout_secs: 5,
            retries: 3,
            start_period_secs: 0,
        }),
        "from the profile, with the defaults"
    );
    assert_eq!(c["dns"].restart, RestartPolicy::OnUnhealthy);
    assert_eq!(
        c["web"].health,
        Some(HealthSpec {
            probe: Probe::Http(HttpProbe {
                port: 8080,
                path: "/healthz".into(),
                status: Some(204),
            }),
            interval_secs: 30,
            timeout_secs: 2,
            retries: 5,
            start_period_secs: 60,
        })
    );
    assert_eq!(
        c["job"].health.as_ref().map(|h| h.probe.clone()),
        Some(Probe::Exec(vec!["pgrep".into(), "job".into()]))
    );
    assert_eq!(c["plain"].health, None);
    // A check changes the digest; no check keeps the digest it always had.
    let mut probed = c["plain"].clone();
    probed.health = c["dns"].health.clone();
    assert_ne!(probed.digest(&d.networks), c["plain"].digest(&d.networks));
    assert!(!serde_json::to_string(&c["plain"])
        .unwrap()
        .contains("health"));
}

#[test]
fn bad_health_checks_name_the_field_and_the_fix() {
    let errs = errors(&format!(
        "version: 1\n{IMG}containers:\n  a: {{ image: bb, health: {{ tcp: 53, exec: [x] }} }}\n  b: {{ image: bb, health: {{ interval: 5s }} }}\n  c: {{ image: bb, health: {{ tcp: 70000 }} }}\n  d: {{ image: bb, health: {{ http: {{ path: /x }} }} }}\n  e: {{ image: bb, health: {{ exec: [], retries: 0 }} }}\n  f: {{ image: bb, health: {{ tcp: 1, timeout: 0s, interval: 2d }} }}\n  g: {{ image: bb, health: {{ http: {{ port: 80, path: 'no slash', status: 99 }} }} }}\n  h: {{ image: bb, restart: on-unhealthy }}\n  i: {{ image: bb, health: {{ tcp: 1, start_period: 48h }} }}\n"
    ));
    let has = |line: &str, text: &str| {
        assert!(
            errs.iter()
                .any(|e| e.starts_with(&format!("m.yaml:{line}:")) && e.contains(text)),
            "no `{text}` on line {line}: {errs:#?}"
        );
    };
    has(
        "4",
        "containers.a.health: give one probe: `exec`, `tcp` or `http`, not several",
    );
    has("5", "containers.b.health: no probe: add `exec: [cmd, ...]`, `tcp: PORT` or `http: { port: PORT }`");
    has(
        "6",
        "containers.c.health.tcp: \"70000\" is not a port; use a number from 1 to 65535",
    );
    has(
        "7",
        "containers.d.health.http: an http probe needs a `port`",
    );
    has("8", "containers.e.health.exec: the command is empty");
    has(
        "8",
        "containers.e.health.retries: \"0\" is not a count of failures from 1 to 100",
    );
    has(
        "9",
        "containers.f.health.timeout: \"0s\" must be above zero",
    );
    has(
        "9",
        "containers.f.health.interval: \"2d\" is not a duration",
    );
    has(
        "10",
        "containers.g.health.http.path: \"no slash\" is not a request path",
    );
    has(
        "10",
        "containers.g.health.http.status: \"99\" is not an HTTP status",
    );
    has(
        "11",
        "containers.h.restart: `on-unhealthy` needs a `health:` check",
    );
    has("12", "containers.i.health.start_period: longer than a day");
    let err = load(&format!(
        "version: 1\n{IMG}containers:\n  a: {{ image: bb, health: {{ tcp: 53, intreval: 5s }} }}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("unknown field `intreval`, did you mean `interval`?"),
        "{err}"
    );
}

#[cfg(feature = "registry")]
#[test]
fn registry_images_resolve_to_a_source_and_a_pinned_digest() {
    let hex = "ab".repeat(32);
    let d = load(&format!(
        "version: 1\nimages:\n  web: {{ ref: 'ghcr.io/org/web:1.4', digest: 'sha256:{hex}', auth: cred }}\n  lab: {{ ref: '127.0.0.1:5000/a@sha256:{hex}', plain_http: true }}\n  tag: {{ ref: alpine }}\nsettings: {{ gc_after_apply: true }}\ncontainers:\n  c: {{ image: web }}\n"
    ))
    .expect("valid");
    assert_eq!(
        d.images["web"].source,
        ImageSource::Registry(RegistrySource {
            reference: "ghcr.io/org/web:1.4".into(),
            plain_http: false,
            auth: Some("/etc/berth/cred".into()),
        })
    );
    assert_eq!(d.images["web"].sha256.as_deref(), Some(hex.as_str()));
    assert_eq!(d.images["lab"].sha256.as_deref(), Some(hex.as_str()));
    assert_eq!(d.images["tag"].sha256, None);
    // The container takes the digest when planning (observe::hash_local_images),
    // as for a local image without `sha256`.
    assert_eq!(d.containers["c"].image, "web");
    assert!(d.settings.gc_after_apply);
}

#[cfg(feature = "registry")]
#[test]
fn bad_registry_images_name_the_field_and_the_fix() {
    let hex = "ab".repeat(32);
    for (image, want) in [
        (
            "{ ref: 'Org/Web' }".to_owned(),
            "images.x.ref: \"Org/Web\" is not an image reference",
        ),
        (
            "{ ref: a, digest: 'sha256:12' }".to_owned(),
            "images.x.digest: digest `sha256:12`",
        ),
        (
            format!(
                "{{ ref: 'a@sha256:{hex}', digest: 'sha256:{}' }}",
                "cd".repeat(32)
            ),
            "differs from the digest in `ref`",
        ),
        ("{ ref: a, path: /x.tar }".to_owned(), "not both"),
        ("{ plain_http: true }".to_owned(), "no `ref`"),
    ] {
        let errs = errors(&format!("version: 1\nimages:\n  x: {image}\n"));
        assert!(errs.iter().any(|e| e.contains(want)), "{image}: {errs:?}");
    }
}

#[cfg(not(feature = "registry"))]
#[test]
fn registry_images_need_the_registry_feature() {
    let errs = errors("version: 1\nimages:\n  x: { ref: alpine }\n");
    assert!(
        errs.iter().any(|e| e.contains("built without `registry`")),
        "{errs:?}"
    );
}

#[test]
fn parallel_setting_is_a_count_of_containers() {
    let d = load(&format!(
        "version: 1\n{IMG}settings: {{ parallel: 4 }}\ncontainers: {{}}\n"
    ))
    .expect("valid");
    assert_eq!(d.settings.parallel, Some(4));
    let d = load(&format!("version: 1\n{IMG}containers: {{}}\n")).expect("valid");
    assert_eq!(d.settings.parallel, None, "left out: one per CPU");
    for bad in ["0", "fast", "1000"] {
        let errs = errors(&format!(
            "version: 1\n{IMG}settings: {{ parallel: {bad} }}\ncontainers: {{}}\n"
        ));
        assert!(
            errs.iter().any(|e| e.contains(&format!(
                "settings.parallel: \"{bad}\" is not a number of containers at once; use 1"
            ))),
            "{bad}: {errs:?}"
        );
    }
}
