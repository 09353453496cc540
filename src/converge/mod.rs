//! Runs a `Plan` through the host, recording each finished step in the state store.
//!
//! A failed step does not stop the run: later steps of the same container, of the
//! containers that depend on it and of the containers that need a failed image are
//! skipped, everything else goes on, and every failure is reported at the end. A
//! failed create is rolled back so no half-made container stays behind.
//!
//! `execute_parallel` runs independent containers at the same time, each
//! worker thread with a host of its own; `schedule` decides what may overlap.

pub mod schedule;
pub mod wait;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

use schedule::container_of;

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

/// How a parallel run gets its workers: how many at once, and a host of its
/// own for each worker thread (made in that thread).
pub struct Workers<'a> {
    /// At most this many jobs run at the same time.
    pub jobs: usize,
    /// Makes a worker's host.
    pub host: &'a (dyn Fn() -> Box<dyn Host> + Sync),
}

/// What became of one step.
enum Outcome {
    Done,
    Failed(StepError),
    Skipped,
}

/// What the steps that failed broke, for the steps still to come.
#[derive(Default)]
struct Broken {
    images: BTreeSet<String>,
    containers: BTreeSet<String>,
}

/// Run `plan` against `host` one step at a time, keeping `state` in step.
pub fn execute(plan: &Plan, desired: &Desired, host: &mut dyn Host, state: &RecordStore) -> Report {
    let broken = Mutex::new(Broken::default());
    let mut outcomes = Vec::with_capacity(plan.actions.len());
    for job in schedule::jobs(plan, |n| dependencies(n, desired, state)) {
        outcomes.extend(run_job(plan, &job, desired, host, state, &broken));
    }
    report(plan, outcomes)
}

/// Run `plan` as [`execute`] does, with up to `workers.jobs` containers at
/// once: a container starts once what it depends on is done (and is stopped
/// or removed before what it depends on), images are fetched and networks
/// removed alone. Each step is recorded as soon as it is done, exactly as in
/// a one-at-a-time run, so a crash leaves what that would leave; the report
/// lists the steps in plan order.
pub fn execute_parallel(
    plan: &Plan,
    desired: &Desired,
    state: &RecordStore,
    workers: &Workers<'_>,
) -> Report {
    let jobs = schedule::jobs(plan, |n| dependencies(n, desired, state));
    let board = Board {
        progress: Mutex::new(vec![Progress::Waiting; jobs.len()]),
        changed: Condvar::new(),
    };
    let broken = Mutex::new(Broken::default());
    let results: Mutex<Vec<(usize, Vec<Outcome>)>> = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..workers.jobs.clamp(1, jobs.len().max(1)) {
            s.spawn(|| {
                let mut host = (workers.host)();
                while let Some(i) = board.take(&jobs) {
                    let out = run_job(plan, &jobs[i], desired, host.as_mut(), state, &broken);
                    lock(&results).push((i, out));
                    board.finish(i);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(PoisonError::into_inner);
    results.sort_by_key(|(i, _)| *i);
    report(plan, results.into_iter().flat_map(|(_, o)| o).collect())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Progress {
    Waiting,
    Running,
    Finished,
}

/// Which jobs are waiting, running or finished, shared by the workers.
struct Board {
    progress: Mutex<Vec<Progress>>,
    changed: Condvar,
}

impl Board {
    /// The first waiting job whose predecessors are finished, marked running;
    /// blocks while every waiting job still waits for a running one. None
    /// when no job is waiting any more.
    fn take(&self, jobs: &[schedule::Job]) -> Option<usize> {
        let mut p = lock(&self.progress);
        loop {
            let mut any_waiting = false;
            for (i, job) in jobs.iter().enumerate() {
                if p[i] != Progress::Waiting {
                    continue;
                }
                any_waiting = true;
                if job.after.iter().all(|&j| p[j] == Progress::Finished) {
                    p[i] = Progress::Running;
                    return Some(i);
                }
            }
            if !any_waiting {
                return None;
            }
            // Jobs only wait for earlier jobs, so one of them is running.
            p = self.changed.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn finish(&self, i: usize) {
        lock(&self.progress)[i] = Progress::Finished;
        self.changed.notify_all();
    }
}

/// A lock whose holder panicked is still good here: every writer leaves the
/// data whole (and with panic = "abort" in release there is no unwinding).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What container `name` depends on: from the manifest, or for one the
/// manifest dropped, from its record; None when the record cannot be read.
fn dependencies(name: &str, desired: &Desired, state: &RecordStore) -> Option<Vec<String>> {
    if let Some(spec) = desired.containers.get(name) {
        return Some(spec.depends_on.clone());
    }
    match state.get(name) {
        Ok(Some(rec)) => Some(rec.spec.depends_on),
        Ok(None) => Some(Vec::new()),
        Err(_) => None,
    }
}

/// The steps of one job, in order; a failed step skips the rest of its
/// container, as [`blocked`] decides.
fn run_job(
    plan: &Plan,
    job: &schedule::Job,
    desired: &Desired,
    host: &mut dyn Host,
    state: &RecordStore,
    broken: &Mutex<Broken>,
) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(job.steps.len());
    for action in &plan.actions[job.steps.clone()] {
        {
            let mut b = lock(broken);
            if blocked(action, desired, &b) {
                if let Some(name) = container_of(action) {
                    b.containers.insert(name.to_string());
                }
                out.push(Outcome::Skipped);
                continue;
            }
        }
        match step(action, desired, host, state) {
            Ok(()) => out.push(Outcome::Done),
            Err(e) => {
                let mut b = lock(broken);
                match action {
                    Action::FetchImage { image, .. } => b.images.insert(image.clone()),
                    other => b.containers.insert(other.target().to_string()),
                };
                out.push(Outcome::Failed(e));
            }
        }
    }
    out
}

/// The report of a run whose outcomes are in plan order.
fn report(plan: &Plan, outcomes: Vec<Outcome>) -> Report {
    let mut report = Report::default();
    for (action, outcome) in plan.actions.iter().zip(outcomes) {
        let action = action.clone();
        match outcome {
            Outcome::Done => report.done.push(action),
            Outcome::Skipped => report.skipped.push(action),
            Outcome::Failed((error, rollback)) => report.failed.push(Failure {
                action,
                error,
                rollback,
            }),
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
fn blocked(action: &Action, desired: &Desired, broken: &Broken) -> bool {
    let Some(name) = container_of(action) else {
        return false;
    };
    if broken.containers.contains(name) {
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
        && (broken.images.contains(&spec.image)
            || spec
                .depends_on
                .iter()
                .any(|d| broken.containers.contains(d)))
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
    // Containers on one network record it from several workers; the temp
    // file of a record write is named by the process, so one at a time.
    static NETWORK_RECORDS: Mutex<()> = Mutex::new(());
    let _one = lock(&NETWORK_RECORDS);
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
