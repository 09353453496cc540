//! Pure planning: `plan(&Desired, &Observed, prune) -> Plan`.
//!
//! No syscalls and no I/O: `Observed` is built by the caller from the state store
//! and live probes. The plan is data; `berth plan` prints it, `berth apply` runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Desired, ResourceSpec, Spec};

/// What exists on the device now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Containers berth created, by name.
    pub containers: BTreeMap<String, ObservedContainer>,
    /// sha256 digests of the images present in the store or a read-only image dir.
    pub images: BTreeSet<String>,
    /// Networks the recorded containers were attached to.
    #[serde(default)]
    pub networks: BTreeSet<String>,
}

/// One container as the state store and the runtime see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedContainer {
    /// The digest of the Spec it was created from.
    pub digest: String,
    /// The live fields as last applied.
    pub resources: ResourceSpec,
    pub running: bool,
    /// False when it runs but its monitor is gone: nothing restarts it,
    /// captures its output or stops it cleanly, so the plan restarts it.
    #[serde(default = "supervised_default")]
    pub supervised: bool,
    /// What it depended on when applied, so removals go dependents first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Its record could not be read: nothing above is known, so it is recreated.
    #[serde(default)]
    pub damaged: bool,
}

impl ObservedContainer {
    /// A container whose record is damaged.
    pub fn damaged() -> Self {
        Self {
            digest: String::new(),
            resources: ResourceSpec::default(),
            running: false,
            supervised: true,
            depends_on: Vec::new(),
            damaged: true,
        }
    }
}

fn supervised_default() -> bool {
    true
}

/// One step. Steps run in the order the plan lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
// A plan holds a handful of actions; boxing the limits would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// Fetch, verify and extract an image into the store.
    FetchImage {
        image: String,
        sha256: Option<String>,
    },
    /// Create the container from its Spec (rootfs layer, state record).
    Create { container: String },
    /// Start a created, stopped container.
    Start { container: String },
    /// Start a running container afresh under a new monitor (its own died):
    /// the orphaned init is killed first. The Spec is unchanged.
    Restart { container: String, reason: String },
    /// Change cgroup limits of a running container in place.
    UpdateLimits {
        container: String,
        from: ResourceSpec,
        to: ResourceSpec,
    },
    /// Stop the container, then start it again from the new Spec.
    Recreate { container: String, reason: String },
    /// Stop a running container (autostart turned off).
    Stop { container: String },
    /// Stop and delete a container the manifest no longer has.
    Remove { container: String },
    /// Delete what berth made on the host for a network the manifest no longer
    /// has (a created bridge, a VLAN parent, a host link); others are left alone.
    RemoveNetwork { network: String },
}

impl Action {
    /// The container or image this step acts on.
    pub fn target(&self) -> &str {
        match self {
            Action::FetchImage { image, .. } => image,
            Action::Create { container }
            | Action::Start { container }
            | Action::Restart { container, .. }
            | Action::UpdateLimits { container, .. }
            | Action::Recreate { container, .. }
            | Action::Stop { container }
            | Action::Remove { container } => container,
            Action::RemoveNetwork { network } => network,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::FetchImage {
                image,
                sha256: Some(d),
            } => write!(f, "fetch image {image} (sha256 {})", &d[..d.len().min(12)]),
            Action::FetchImage {
                image,
                sha256: None,
            } => write!(f, "fetch image {image}"),
            Action::Create { container } => write!(f, "+ create {container}"),
            Action::Start { container } => write!(f, "> start {container}"),
            Action::Restart { container, reason } => {
                write!(f, "> restart {container} ({reason})")
            }
            Action::UpdateLimits {
                container,
                from,
                to,
            } => {
                write!(
                    f,
                    "~ update {container} in place: {}",
                    limits_diff(from, to)
                )
            }
            Action::Recreate { container, reason } => {
                write!(f, "-/+ recreate {container} ({reason})")
            }
            Action::Stop { container } => write!(f, "! stop {container}"),
            Action::Remove { container } => write!(f, "- remove {container}"),
            Action::RemoveNetwork { network } => write!(f, "- remove network {network}"),
        }
    }
}

/// The ordered steps that take Observed to Desired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<Action>,
}

impl Plan {
    /// True when nothing needs doing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            return writeln!(f, "no changes: the device matches the manifest");
        }
        for a in &self.actions {
            writeln!(f, "{a}")?;
        }
        writeln!(f, "{} action(s)", self.actions.len())
    }
}

/// Compare `desired` with `observed`. With `prune`, containers berth created that
/// the manifest no longer lists are removed.
pub fn plan(desired: &Desired, observed: &Observed, prune: bool) -> Plan {
    let mut actions = Vec::new();

    // Removals first, dependents before what they depend on.
    if prune {
        let gone: BTreeMap<&str, &[String]> = observed
            .containers
            .iter()
            .filter(|(n, _)| !desired.containers.contains_key(*n))
            .map(|(n, o)| (n.as_str(), o.depends_on.as_slice()))
            .collect();
        for name in order_by_deps(&gone).into_iter().rev() {
            actions.push(Action::Remove {
                container: name.to_string(),
            });
        }
    }

    // Images needed by containers that will be (re)created and are not present.
    let order = start_order(desired);
    let mut wanted_images = BTreeSet::new();
    let mut container_steps = Vec::new();
    for name in &order {
        let Some(spec) = desired.containers.get(name) else {
            continue;
        };
        let digest = spec.digest(&desired.networks);
        let steps = container_actions(spec, &digest, observed.containers.get(name));
        if steps
            .iter()
            .any(|a| matches!(a, Action::Create { .. } | Action::Recreate { .. }))
        {
            wanted_images.insert(spec.image.clone());
        }
        container_steps.extend(steps);
    }
    for image in wanted_images {
        let Some(img) = desired.images.get(&image) else {
            continue;
        };
        let present = img
            .sha256
            .as_ref()
            .is_some_and(|d| observed.images.contains(d));
        if !present {
            actions.push(Action::FetchImage {
                image,
                sha256: img.sha256.clone(),
            });
        }
    }
    actions.extend(container_steps);
    // Last, once no container uses them any more.
    if prune {
        for network in observed
            .networks
            .iter()
            .filter(|n| !desired.networks.contains_key(*n))
        {
            actions.push(Action::RemoveNetwork {
                network: network.clone(),
            });
        }
    }
    Plan { actions }
}

fn container_actions(spec: &Spec, digest: &str, seen: Option<&ObservedContainer>) -> Vec<Action> {
    let name = || spec.name.clone();
    match seen {
        None => {
            let mut v = vec![Action::Create { container: name() }];
            if spec.autostart {
                v.push(Action::Start { container: name() });
            }
            v
        }
        Some(o) if o.damaged => {
            vec![Action::Recreate {
                container: name(),
                reason: "record damaged".into(),
            }]
        }
        Some(o) if o.digest != digest => {
            vec![Action::Recreate {
                container: name(),
                reason: "spec changed".into(),
            }]
        }
        Some(o) => {
            let mut v = Vec::new();
            if o.resources != spec.resources {
                v.push(Action::UpdateLimits {
                    container: name(),
                    from: o.resources.clone(),
                    to: spec.resources.clone(),
                });
            }
            match (o.running, spec.autostart) {
                (false, true) => v.push(Action::Start { container: name() }),
                (true, false) => v.push(Action::Stop { container: name() }),
                (true, true) if !o.supervised => v.push(Action::Restart {
                    container: name(),
                    reason: "its monitor is gone".into(),
                }),
                _ => {}
            }
            v
        }
    }
}

/// Container names so that every container comes after what it depends on; ties
/// in name order. Validation has refused cycles; any left are broken by name order.
pub fn start_order(desired: &Desired) -> Vec<String> {
    let deps: BTreeMap<&str, &[String]> = desired
        .containers
        .values()
        .map(|s| (s.name.as_str(), s.depends_on.as_slice()))
        .collect();
    order_by_deps(&deps)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Names ordered so each comes after the names it depends on (dependencies
/// outside the map are ignored): of the names whose dependencies are placed,
/// the first by name goes next; a leftover cycle is broken by taking the first
/// unplaced name. Linear in the names and edges up to a log factor, so a
/// manifest of thousands of containers plans at once.
fn order_by_deps<'a>(deps: &BTreeMap<&'a str, &[String]>) -> Vec<&'a str> {
    // For each name: how many of its dependencies are still unplaced, and
    // which names wait for it.
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&'a str>> = BTreeMap::new();
    for (&name, ds) in deps {
        let inside: BTreeSet<&str> = ds
            .iter()
            .map(String::as_str)
            .filter(|d| deps.contains_key(d))
            .collect();
        waiting.insert(name, inside.len());
        for d in inside {
            dependents.entry(d).or_default().push(name);
        }
    }
    let mut ready: BTreeSet<&'a str> = deps
        .keys()
        .copied()
        .filter(|n| waiting.get(n) == Some(&0))
        .collect();
    let mut unplaced: BTreeSet<&'a str> = deps.keys().copied().collect();
    let mut order: Vec<&str> = Vec::with_capacity(deps.len());
    while let Some(next) = ready.pop_first().or_else(|| unplaced.first().copied()) {
        unplaced.remove(next);
        order.push(next);
        for &m in dependents.get(next).map_or(&[][..], Vec::as_slice) {
            if let Some(w) = waiting.get_mut(m) {
                *w = w.saturating_sub(1);
                if *w == 0 && unplaced.contains(m) {
                    ready.insert(m);
                }
            }
        }
    }
    order
}

fn limits_diff(from: &ResourceSpec, to: &ResourceSpec) -> String {
    let (a, b) = (serde_json::to_value(from), serde_json::to_value(to));
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (a, b) else {
        return "limits changed".into();
    };
    let show = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "unset".to_string(),
        Some(v) => v.to_string(),
    };
    let changes: Vec<String> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k} {} -> {}", show(a.get(k)), show(Some(v))))
        .collect();
    changes.join(", ")
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
