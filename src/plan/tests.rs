//! Table tests for `plan`: each case is a manifest, what the device has, and the
//! actions expected, written as `plan` prints them.

use super::*;
use crate::manifest::{self, RenderInput};

fn desired(yaml: &str) -> Desired {
    manifest::load("m.yaml", yaml, "/etc/berth", &RenderInput::default())
        .expect("valid test manifest")
        .desired
}

const BASE: &str = "
version: 1
images:
  bb: { path: /img/bb.tar, sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa }
containers:
  db: { image: bb, command: [sleep, '1000'], resources: { memory: 32M } }
  web: { image: bb, command: [httpd, -f], depends_on: [db] }
";

/// The device as if `yaml` had been applied and everything runs.
fn applied(yaml: &str) -> Observed {
    let d = desired(yaml);
    let containers = d
        .containers
        .values()
        .map(|s| {
            let o = ObservedContainer {
                digest: s.digest(&d.networks),
                resources: s.resources.clone(),
                running: true,
                supervised: true,
                depends_on: s.depends_on.clone(),
                damaged: false,
            };
            (s.name.clone(), o)
        })
        .collect();
    let images = d.images.values().filter_map(|i| i.sha256.clone()).collect();
    Observed {
        containers,
        images,
        networks: Default::default(),
    }
}

/// `o` with container `name` running without its monitor.
fn unsupervised(mut o: Observed, name: &str) -> Observed {
    if let Some(c) = o.containers.get_mut(name) {
        c.supervised = false;
    }
    o
}

fn lines(p: &Plan) -> Vec<String> {
    p.actions.iter().map(ToString::to_string).collect()
}

#[test]
fn table() {
    let cases: &[(&str, &str, Observed, bool, &[&str])] = &[
        (
            "fresh device: fetch, then create and start in dependency order",
            BASE,
            Observed::default(),
            true,
            &[
                "fetch image bb (sha256 aaaaaaaaaaaa)",
                "+ create db",
                "> start db",
                "+ create web",
                "> start web",
            ],
        ),
        (
            "unchanged manifest: nothing to do",
            BASE,
            applied(BASE),
            true,
            &[],
        ),
        (
            "memory limit changed: update in place, no restart",
            &BASE.replace("memory: 32M", "memory: 64M"),
            applied(BASE),
            true,
            &["~ update db in place: memory 33554432 -> 67108864"],
        ),
        (
            "command changed: recreate",
            &BASE.replace("[httpd, -f]", "[httpd, -f, -p, '8080']"),
            applied(BASE),
            true,
            &["-/+ recreate web (spec changed)"],
        ),
        (
            "container dropped from manifest: removed with prune",
            &BASE.replace(
                "  web: { image: bb, command: [httpd, -f], depends_on: [db] }\n",
                "",
            ),
            applied(BASE),
            true,
            &["- remove web"],
        ),
        (
            "container dropped, --no-prune: kept",
            &BASE.replace(
                "  web: { image: bb, command: [httpd, -f], depends_on: [db] }\n",
                "",
            ),
            applied(BASE),
            false,
            &[],
        ),
        (
            "image present in store: no fetch",
            BASE,
            Observed {
                containers: BTreeMap::new(),
                images: applied(BASE).images,
                networks: Default::default(),
            },
            true,
            &["+ create db", "> start db", "+ create web", "> start web"],
        ),
        (
            "autostart off: created but not started; running one is stopped",
            &BASE.replace("depends_on: [db] }", "depends_on: [db], autostart: false }"),
            applied(BASE),
            true,
            &["! stop web"],
        ),
        (
            "monitor of a running container killed: restarted under a new one",
            BASE,
            unsupervised(applied(BASE), "db"),
            true,
            &["> restart db (its monitor is gone)"],
        ),
        (
            "monitor gone but autostart off: stopped, not restarted",
            &BASE.replace("depends_on: [db] }", "depends_on: [db], autostart: false }"),
            unsupervised(applied(BASE), "web"),
            true,
            &["! stop web"],
        ),
    ];
    for (what, yaml, observed, prune, want) in cases {
        let got = plan(&desired(yaml), observed, *prune);
        assert_eq!(lines(&got), *want, "{what}");
    }
}

#[test]
fn a_damaged_record_recreates_only_its_container() {
    let mut obs = applied(BASE);
    obs.containers
        .insert("web".into(), ObservedContainer::damaged());
    assert_eq!(
        lines(&plan(&desired(BASE), &obs, true)),
        ["-/+ recreate web (record damaged)"]
    );
    // One the manifest dropped is removed as any other.
    let mut obs = applied(BASE);
    obs.containers
        .insert("old".into(), ObservedContainer::damaged());
    assert_eq!(lines(&plan(&desired(BASE), &obs, true)), ["- remove old"]);
}

#[test]
fn stopped_container_is_started() {
    let mut obs = applied(BASE);
    if let Some(c) = obs.containers.get_mut("web") {
        c.running = false;
    }
    assert_eq!(lines(&plan(&desired(BASE), &obs, true)), ["> start web"]);
}

#[test]
fn network_definition_change_recreates_attached_containers_only() {
    let yaml = "
version: 1
images: { bb: { path: /bb.tar, sha256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb } }
networks:
  lan: { type: bridge, bridge: br-lan }
containers:
  a: { image: bb, network: [{ network: lan, address: 192.168.1.5/24 }] }
  b: { image: bb }
";
    let changed = yaml.replace("bridge: br-lan", "bridge: br-guest");
    assert_eq!(
        lines(&plan(&desired(&changed), &applied(yaml), true)),
        ["-/+ recreate a (spec changed)"]
    );
}

#[test]
fn networks_no_container_uses_are_removed_last() {
    let yaml = "
version: 1
images: { bb: { path: /bb.tar, sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa } }
networks:
  lan: { type: bridge, create: true }
containers:
  a: { image: bb, network: [{ network: lan }] }
";
    let mut obs = applied(yaml);
    obs.networks.insert("lan".into());
    let gone = "version: 1\ncontainers: {}\n";
    assert_eq!(
        lines(&plan(&desired(gone), &obs, true)),
        ["- remove a", "- remove network lan"]
    );
    assert_eq!(
        lines(&plan(&desired(gone), &obs, false)),
        Vec::<String>::new()
    );
    assert!(plan(&desired(yaml), &obs, true).is_empty());
}

#[test]
fn removals_go_dependents_first() {
    let yaml = "version: 1\nimages: { bb: { path: /bb.tar } }\ncontainers: {}\n";
    assert_eq!(
        lines(&plan(&desired(yaml), &applied(BASE), true)),
        ["- remove web", "- remove db"]
    );
}

#[test]
fn start_order_follows_depends_on() {
    let yaml = "
version: 1
images: { bb: { path: /bb.tar } }
containers:
  a: { image: bb, depends_on: [c] }
  b: { image: bb }
  c: { image: bb, depends_on: [b] }
";
    assert_eq!(start_order(&desired(yaml)), ["b", "c", "a"]);
}

#[test]
fn digest_ignores_live_fields() {
    let d1 = desired(BASE);
    let d2 = desired(
        &BASE
            .replace("memory: 32M", "memory: 64M")
            .replace("[httpd, -f] ", "[httpd, -f], restart: always "),
    );
    let digest = |d: &Desired, n: &str| d.containers[n].digest(&d.networks);
    assert_eq!(digest(&d1, "db"), digest(&d2, "db"));
    assert_eq!(digest(&d1, "web"), digest(&d2, "web"));
    let d3 = desired(&BASE.replace("[sleep, '1000']", "[sleep, '999']"));
    assert_ne!(digest(&d1, "db"), digest(&d3, "db"));
}

/// The ordering rule spelled out the slow way: the first ready name by name,
/// else the first unplaced one.
fn order_reference<'a>(deps: &BTreeMap<&'a str, &[String]>) -> Vec<&'a str> {
    let mut order: Vec<&str> = Vec::new();
    while order.len() < deps.len() {
        let unplaced = || deps.iter().filter(|(n, _)| !order.contains(n));
        let ready = unplaced().find(|(_, ds)| {
            ds.iter()
                .all(|d| order.contains(&d.as_str()) || !deps.contains_key(d.as_str()))
        });
        let next = ready.or_else(|| unplaced().next()).map(|(n, _)| *n);
        order.extend(next);
    }
    order
}

#[test]
fn dependency_order_matches_the_rule_on_many_graphs_with_cycles() {
    let names: Vec<String> = (0..12).map(|i| format!("c{i:02}")).collect();
    let mut seed: u32 = 7;
    let mut rand = move || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (seed >> 16) as usize
    };
    for _ in 0..300 {
        let lists: Vec<Vec<String>> = names
            .iter()
            .map(|_| {
                (0..rand() % 4)
                    .map(|_| match rand() % 14 {
                        12 => "outside".to_string(),
                        i => names[i.min(11)].clone(),
                    })
                    .collect()
            })
            .collect();
        let deps: BTreeMap<&str, &[String]> = names
            .iter()
            .zip(&lists)
            .map(|(n, l)| (n.as_str(), l.as_slice()))
            .collect();
        assert_eq!(order_by_deps(&deps), order_reference(&deps), "{deps:?}");
    }
}
