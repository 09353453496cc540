//! Runs a `Plan` through the host, recording each finished step in the state store.
//!
//! A failed step does not stop the run: later steps of the same container, of the
//! containers that depend on it and of the containers that need a failed image are
//! skipped, everything else goes on, and every failure is reported at the end. A
//! failed create is rolled back so no half-made container stays behind.

pub mod wait;

use std::collections::BTreeSet;
use std::fmt;

use crate::host::records::{Record, RecordError, RecordStore};
use crate::host::{chain, Host, HostError, HostErrorKind};
use crate::model::{Desired, Spec};
use crate::plan::{Action, Plan};

/// One step that failed.
#[derive(Debug)]
pub struct Failure {
    pub action: Action,
    pub error: HostError,
    /// The error of the rollback that followed, if it failed too.
    pub rollback: Option<HostError>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", describe(&self.action), chain(&self.error))?;
        if let Some(r) = &self.rollback {
            write!(f, "; rolling back also failed: {}", chain(r))?;
        }
        Ok(())
    }
}

/// What happened to each step.
#[derive(Debug, Default)]
pub struct Report {
    pub done: Vec<Action>,
    pub failed: Vec<Failure>,
    /// Steps not tried because something they need failed.
    pub skipped: Vec<Action>,
}

/// Run `plan` against `host`, keeping `state` in step.
pub fn execute(plan: &Plan, desired: &Desired, host: &mut dyn Host, state: &RecordStore) -> Report {
    let mut report = Report::default();
    let mut broken_images: BTreeSet<String> = BTreeSet::new();
    let mut broken: BTreeSet<String> = BTreeSet::new();

    for action in &plan.actions {
        if blocked(action, desired, &broken, &broken_images) {
            report.skipped.push(action.clone());
            if let Some(name) = container_of(action) {
                broken.insert(name.to_string());
            }
            continue;
        }
        match step(action, desired, host, state) {
            Ok(()) => report.done.push(action.clone()),
            Err((error, rollback)) => {
                match action {
                    Action::FetchImage { image, .. } => {
                        broken_images.insert(image.clone());
                    }
                    other => {
                        broken.insert(other.target().to_string());
                    }
                }
                report.failed.push(Failure {
                    action: action.clone(),
                    error,
                    rollback,
                });
            }
        }
    }
    report
}

type StepError = (HostError, Option<HostError>);

fn step(
    action: &Action,
    desired: &Desired,
    host: &mut dyn Host,
    state: &RecordStore,
) -> Result<(), StepError> {
    let plain = |e: HostError| (e, None);
    let saved = |e: RecordError| (HostError::from(e), None);
    match action {
        Action::FetchImage { image, .. } => {
            let spec = desired
                .images
                .get(image)
                .ok_or_else(|| plain(missing(image)))?;
            host.ensure_image(spec).map_err(plain)
        }
        Action::Create { container } => {
            let spec = spec_of(desired, container).map_err(plain)?;
            host.create(spec, desired).map_err(plain)?;
            // Record right after creating: a crash from here on is found by the next apply.
            if let Err(e) = save(state, &record(spec, desired)) {
                return Err((e.into(), host.remove(container).err()));
            }
            Ok(())
        }
        // The runtime kills an init whose monitor died and starts it afresh.
        Action::Start { container } | Action::Restart { container, .. } => {
            let spec = spec_of(desired, container).map_err(plain)?;
            host.start(spec, desired).map_err(plain)
        }
        Action::UpdateLimits { container, to, .. } => {
            host.update_limits(container, to).map_err(plain)?;
            let spec = spec_of(desired, container).map_err(plain)?;
            save(state, &record(spec, desired)).map_err(saved)
        }
        Action::Recreate { container, .. } => {
            let spec = spec_of(desired, container).map_err(plain)?;
            host.remove(container).map_err(plain)?;
            state.remove(container).map_err(saved)?;
            host.create(spec, desired).map_err(plain)?;
            if let Err(e) = save(state, &record(spec, desired)) {
                return Err((e.into(), host.remove(container).err()));
            }
            if spec.autostart {
                host.start(spec, desired).map_err(plain)?;
            }
            Ok(())
        }
        Action::Stop { container } => host.stop(container).map_err(plain),
        Action::Remove { container } => {
            host.remove(container).map_err(plain)?;
            state.remove(container).map_err(saved)
        }
        Action::RemoveNetwork { network } => {
            host.remove_network(network).map_err(plain)?;
            state.remove_network(network).map_err(saved)
        }
    }
}

/// Should `action` be skipped because something it needs failed?
fn blocked(
    action: &Action,
    desired: &Desired,
    broken: &BTreeSet<String>,
    broken_images: &BTreeSet<String>,
) -> bool {
    let Some(name) = container_of(action) else {
        return false;
    };
    if broken.contains(name) {
        return true;
    }
    let Some(spec) = desired.containers.get(name) else {
        return false;
    };
    let creates = matches!(
        action,
        Action::Create { .. }
            | Action::Recreate { .. }
            | Action::Start { .. }
            | Action::Restart { .. }
    );
    creates
        && (broken_images.contains(&spec.image)
            || spec.depends_on.iter().any(|d| broken.contains(d)))
}

fn container_of(action: &Action) -> Option<&str> {
    match action {
        Action::FetchImage { .. } | Action::RemoveNetwork { .. } => None,
        other => Some(other.target()),
    }
}

fn spec_of<'d>(desired: &'d Desired, name: &str) -> Result<&'d Spec, HostError> {
    desired.containers.get(name).ok_or_else(|| missing(name))
}

fn missing(name: &str) -> HostError {
    HostErrorKind::NotInManifest {
        name: name.to_string(),
    }
    .into()
}

/// Record the container, then its networks: a network is recorded before any
/// start sets it up, so a crash never leaves one berth would not remove.
fn save(state: &RecordStore, rec: &Record) -> Result<(), RecordError> {
    state.save(rec)?;
    rec.networks.iter().try_for_each(|n| state.save_network(n))
}

fn record(spec: &Spec, desired: &Desired) -> Record {
    let networks = spec
        .network
        .iter()
        .filter_map(|a| desired.networks.get(&a.network).cloned())
        .collect();
    Record {
        digest: spec.digest(&desired.networks),
        spec: spec.clone(),
        networks,
    }
}

fn describe(action: &Action) -> String {
    match action {
        Action::FetchImage { image, .. } => format!("fetch image `{image}`"),
        Action::Create { container } => format!("create `{container}`"),
        Action::Start { container } => format!("start `{container}`"),
        Action::Restart { container, .. } => format!("restart `{container}`"),
        Action::UpdateLimits { container, .. } => format!("update limits of `{container}`"),
        Action::Recreate { container, .. } => format!("recreate `{container}`"),
        Action::Stop { container } => format!("stop `{container}`"),
        Action::Remove { container } => format!("remove `{container}`"),
        Action::RemoveNetwork { network } => format!("remove network `{network}`"),
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
