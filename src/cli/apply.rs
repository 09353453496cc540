//! `berth plan` and `berth apply`: observe the device, plan, and (apply) execute.
//!
//! `apply --wait` (and `--serve`, always) then waits for what it started to
//! turn healthy. When that fails it goes back to the last good desired state
//! (`host::history`), says why, and refuses the same manifest until a newer
//! one comes (docs/fleet.md, "Health and rollback").

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::context::{absolute, DEFAULT_ROOT};
use crate::cli::error::Error;
use crate::cli::error::Result;
use crate::cli::{load_manifest, ActionsFailed, Global, ManifestArgs, UsageError};
use crate::converge::{self, wait, Report};
use crate::fleet::time::format_rfc3339;
use crate::host::cgroup::ParentPolicy;
use crate::host::history::{History, LastApply, LastGood, Outcome, Revision};
use crate::host::records::RecordStore;
use crate::host::runtime::rundir;
use crate::host::trusted::{Kind, TrustStore};
use crate::host::{LocalConfig, LocalHost};
use crate::manifest::{self, Loaded};
use crate::model::Desired;
use crate::observe;
use crate::plan::{self, Plan};

/// The store root: `--root`/`BERTH_ROOT`, else the manifest's, else the default.
pub fn store_root(global: &Global, desired: &Desired) -> PathBuf {
    absolute(
        global
            .root
            .clone()
            .or_else(|| desired.settings.root.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
    )
}

/// The runtime directory, chosen the same way as the store root.
pub fn runtime_dir(global: &Global, desired: &Desired) -> PathBuf {
    absolute(
        global
            .runtime_dir
            .clone()
            .or_else(|| desired.settings.runtime_dir.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/berth")),
    )
}

/// The device, configured from the command line and the manifest's settings.
pub fn local_host(global: &Global, desired: &Desired) -> Result<LocalHost> {
    let cgroup_parent = match &global.cgroup_parent {
        Some(p) => ParentPolicy::Fixed(p.clone()),
        None => ParentPolicy::Auto,
    };
    let mut settings = desired.settings.clone();
    if let Some(size) = &global.log_size {
        let bytes = crate::manifest::units::size(size)
            .map_err(|e| UsageError(format!("--log-size: {e}")))?;
        settings.log_size = Some(bytes);
    }
    Ok(LocalHost::new(LocalConfig {
        store_root: store_root(global, desired),
        runtime_root: runtime_dir(global, desired),
        cgroup_parent,
        fetch: global.fetch.image_options(&settings),
        settings,
    }))
}

/// Run `plan`, `settings.parallel` containers at once (default: one per
/// CPU), each worker with a host of its own made like `host`.
pub fn run_plan(
    plan: &plan::Plan,
    desired: &Desired,
    host: &mut LocalHost,
    state: &RecordStore,
) -> converge::Report {
    let jobs = desired.settings.parallel.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        |n| usize::try_from(n).unwrap_or(1),
    );
    if jobs <= 1 || plan.actions.len() <= 1 {
        return converge::execute(plan, desired, host, state);
    }
    let cfg = host.config().clone();
    let make = move || Box::new(LocalHost::new(cfg.clone())) as Box<dyn crate::host::Host>;
    let workers = converge::Workers { jobs, host: &make };
    converge::execute_parallel(plan, desired, state, &workers)
}

/// `berth plan`: print what apply would do.
pub fn plan(global: &Global, args: &ManifestArgs, json: bool, prune: bool) -> Result<()> {
    let mut desired = load_manifest(args)?.desired;
    let state = RecordStore::new(store_root(global, &desired));
    // `plan` writes nothing, not even the digest cache: it is dropped unsaved.
    observe::hash_local_images(&mut desired, &manifest_lock(args), state.root());
    let mut host = local_host(global, &desired)?;
    let observed = observe::observe(&state, &mut host)?;
    let plan = plan::plan(&desired, &observed, prune);
    print_plan(&plan, json)
}

/// `--wait`, `--wait-timeout` and `--retry` of `apply`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Wait for what the apply started to turn healthy; roll back if not.
    pub wait: bool,
    /// The deadline; `None`: from the probes (`wait::default_deadline`).
    pub timeout: Option<Duration>,
    /// Apply a manifest even though it was rolled back before.
    pub retry: bool,
}

/// The apply was undone: the device runs the last good state again.
#[derive(Debug, thiserror::Error)]
#[error("rolled back from {from} to {to}: {reason}{}", problem.as_ref().map_or(String::new(), |p| format!("; and after the rollback: {p}")))]
pub struct RolledBack {
    pub from: Revision,
    pub to: Revision,
    pub reason: String,
    /// What went wrong in the rollback itself, if anything.
    pub problem: Option<String>,
}

/// The manifest was rolled back before and is not applied again.
#[derive(Debug, thiserror::Error)]
#[error("{revision} was rolled back{}: {reason}; it is not applied again until a newer one comes (or `berth apply --retry`)", at.map_or(String::new(), |t| format!(" at {}", format_rfc3339(i64::try_from(t).unwrap_or(0)))))]
pub struct Refused {
    pub revision: Revision,
    pub reason: String,
    pub at: Option<u64>,
}

/// Waited, unhealthy, and nothing to roll back to.
#[derive(Debug, thiserror::Error)]
#[error("{revision} is applied but not healthy, and there is no earlier healthy state to roll back to: {reason}")]
pub struct Unhealthy {
    pub revision: Revision,
    pub reason: String,
}

/// Whether `e` is a waited apply's verdict (rolled back, refused,
/// unhealthy) rather than a failure to try again.
pub fn settled(e: &crate::cli::error::Error) -> bool {
    e.chain()
        .any(|c| c.is::<RolledBack>() || c.is::<Refused>() || c.is::<Unhealthy>())
}

/// A manifest to apply: what it asks for, which one it is, and its rendered
/// text (what the last good state keeps).
pub struct Target {
    pub desired: Desired,
    pub revision: Revision,
    file: String,
    rendered: String,
    base_dir: String,
}

impl Target {
    /// The target of a loaded manifest. Its version, when it was signed, is
    /// the one the trust store accepted for this text (`Trust` has checked
    /// and kept it by now).
    pub fn of(global: &Global, args: &ManifestArgs, loaded: Loaded) -> Self {
        // Where `Trust` keeps it: `--root` or the default, never a root the
        // manifest names (it is not trusted before it is checked).
        let root = absolute(global.root.clone().unwrap_or_else(|| DEFAULT_ROOT.into()));
        let trusted = TrustStore::new(&root).load(Kind::Manifest).ok().flatten();
        let version = trusted
            .filter(|d| d.accepted.sha256 == loaded.sha256)
            .map(|d| d.accepted.version);
        Target {
            desired: loaded.desired,
            revision: Revision {
                sha256: loaded.sha256,
                version,
            },
            file: args.display_name().to_string(),
            rendered: loaded.rendered,
            base_dir: loaded.base_dir,
        }
    }
}

/// The desired state of the last good manifest, validated again from its
/// rendered text, with the image digests it had.
fn desired_of(good: &LastGood) -> Result<Desired> {
    let at = |e: crate::manifest::ManifestError| {
        Error::from(e).context(format!(
            "the last good state ({}) no longer validates; berth cannot roll back to it",
            good.revision
        ))
    };
    let m = manifest::parse(&good.file, &good.rendered).map_err(at)?;
    let mut desired =
        manifest::validate::validate(&good.file, &good.rendered, &m, &good.base_dir).map_err(at)?;
    desired.pin_images(|img| good.images.get(&img.name).cloned());
    Ok(desired)
}

/// `berth apply`: make the device match the manifest.
pub fn apply(global: &Global, args: &ManifestArgs, prune: bool, waiting: Waiting) -> Result<()> {
    let target = Target::of(global, args, load_manifest(args)?);
    apply_target(global, args, prune, target, waiting)
}

/// Make the device match `target`, from the manifest `args` names, already
/// loaded; with `waiting.wait`, wait for it and roll back if it is unhealthy.
pub fn apply_target(
    global: &Global,
    args: &ManifestArgs,
    prune: bool,
    target: Target,
    waiting: Waiting,
) -> Result<()> {
    let Target {
        mut desired,
        revision,
        file,
        rendered,
        base_dir,
    } = target;
    let state = RecordStore::new(store_root(global, &desired));
    crate::cli::image::resolve_tags(global, state.root(), &mut desired);
    let digests = observe::hash_local_images(&mut desired, &manifest_lock(args), state.root());
    let _lock = state.lock()?;
    let mut host = local_host(global, &desired)?;
    let history = History::new(state.root());
    if waiting.wait && !waiting.retry {
        if let Some(last) = history.last_apply()?.filter(|l| l.bars(&revision)) {
            return refuse(&mut host, &state, &history, last);
        }
    }
    let observed = observe::observe(&state, &mut host)?;
    let plan = plan::plan(&desired, &observed, prune);
    let report = run_plan(&plan, &desired, &mut host, &state);
    if report.failed.is_empty() {
        crate::cli::image::gc_after_apply(state.root(), &desired)?;
    }
    // Saved once the store exists (a no-op when no digest was computed), so
    // the next apply hashes nothing. Only a speed-up: a cache that cannot be
    // written is hashed again next time.
    let _ = digests.save();
    if plan.is_empty() {
        out!("{plan}")?;
    }
    print_report(&report)?;
    // An image that could not be downloaded is not a verdict on the
    // manifest: what needed it was skipped (the old containers run on), and
    // the next pass tries again. Nothing is judged or written.
    let download_failed = report
        .failed
        .iter()
        .any(|f| matches!(f.action, crate::plan::Action::FetchImage { .. }));
    if !waiting.wait || download_failed {
        return actions_result(&report, plan.actions.len());
    }
    let good = history.last_good()?;
    let mut names = wait::started(&report, &desired);
    if names.is_empty() {
        if good.as_ref().is_some_and(|g| g.revision == revision) {
            return actions_result(&report, plan.actions.len());
        }
        // Nothing started, but this state was never judged (the first
        // waited apply on a device): judge what runs.
        names = desired
            .containers
            .values()
            .filter(|s| s.autostart)
            .map(|s| s.name.clone())
            .collect();
    }
    let failed = report.failed.first().map(|f| f.to_string());
    let reason = match failed {
        Some(f) => Some(f),
        None => {
            let deadline = waiting
                .timeout
                .unwrap_or_else(|| wait::default_deadline(&desired, &names));
            wait::wait(&mut host, &desired, &names, deadline)
                .err()
                .map(|u| u.to_string())
        }
    };
    let now = rundir::now();
    let Some(reason) = reason else {
        history.set_last_good(&LastGood {
            revision: revision.clone(),
            at: now,
            images: desired.image_digests(),
            file,
            rendered,
            base_dir,
        })?;
        history.set_last_apply(&LastApply {
            outcome: Outcome::Applied,
            revision,
            rolled_back_to: None,
            reason: None,
            at: now,
        })?;
        return Ok(());
    };
    match good.filter(|g| g.revision != revision) {
        Some(good) => rollback(&mut host, &state, &history, revision, good, reason),
        None => {
            history.set_last_apply(&LastApply {
                outcome: Outcome::Failed,
                revision: revision.clone(),
                rolled_back_to: None,
                reason: Some(reason.clone()),
                at: now,
            })?;
            // A step that failed may work next time (the serve loop retries
            // it); an unhealthy container stays as it is until a new manifest.
            if !report.failed.is_empty() {
                return actions_result(&report, plan.actions.len());
            }
            Err(Unhealthy { revision, reason }.into())
        }
    }
}

/// Go back to `good` after `failed` was found unhealthy. The outcome is on
/// flash first (`rolling-back`), so an apply cut short here finishes the
/// rollback next time instead of trying the failed manifest again.
fn rollback(
    host: &mut LocalHost,
    state: &RecordStore,
    history: &History,
    failed: Revision,
    good: LastGood,
    reason: String,
) -> Result<()> {
    let good_desired = match desired_of(&good) {
        Ok(d) => d,
        Err(e) => {
            let reason = format!("{reason}; {e:#}");
            history.set_last_apply(&LastApply {
                outcome: Outcome::Failed,
                revision: failed.clone(),
                rolled_back_to: None,
                reason: Some(reason.clone()),
                at: rundir::now(),
            })?;
            return Err(Unhealthy {
                revision: failed,
                reason,
            }
            .into());
        }
    };
    let mut last = LastApply {
        outcome: Outcome::RollingBack,
        revision: failed.clone(),
        rolled_back_to: Some(good.revision.clone()),
        reason: Some(reason.clone()),
        at: rundir::now(),
    };
    history.set_last_apply(&last)?;
    eprintln!(
        "berth: {reason}; rolling back from {failed} to {}",
        good.revision
    );
    let problem = converge_to(host, state, &good_desired)?;
    last.outcome = Outcome::RolledBack;
    history.set_last_apply(&last)?;
    Err(RolledBack {
        from: failed,
        to: good.revision,
        reason,
        problem,
    }
    .into())
}

/// Refuse a manifest that was rolled back; first make sure the device runs
/// the last good state (a rollback cut short by a crash or power cut ends
/// here).
fn refuse(
    host: &mut LocalHost,
    state: &RecordStore,
    history: &History,
    mut last: LastApply,
) -> Result<()> {
    if let Some(good) = history.last_good()? {
        if let Some(problem) = converge_to(host, state, &desired_of(&good)?)? {
            eprintln!("berth: going back to {}: {problem}", good.revision);
        }
    }
    // Once, and keeping the time of the rollback: a fleet poll that gets the
    // same manifest again writes nothing.
    if last.outcome != Outcome::Refused {
        last.outcome = Outcome::Refused;
        history.set_last_apply(&last)?;
    }
    Err(Refused {
        revision: last.revision,
        reason: last.reason.unwrap_or_else(|| "it was unhealthy".into()),
        at: Some(last.at),
    }
    .into())
}

/// Apply `desired` (pruning what it lacks) and wait for what that started;
/// returns what went wrong, if anything. Quiet when nothing needs doing.
fn converge_to(
    host: &mut LocalHost,
    state: &RecordStore,
    desired: &Desired,
) -> Result<Option<String>> {
    let observed = observe::observe(state, host)?;
    let plan = plan::plan(desired, &observed, true);
    let report = run_plan(&plan, desired, host, state);
    print_report(&report)?;
    if let Some(f) = report.failed.first() {
        return Ok(Some(f.to_string()));
    }
    let names = wait::started(&report, desired);
    let deadline = wait::default_deadline(desired, &names);
    Ok(wait::wait(host, desired, &names, deadline)
        .err()
        .map(|u| u.to_string()))
}

fn print_report(report: &Report) -> Result<()> {
    for a in &report.done {
        outln!("{a}")?;
    }
    for s in &report.skipped {
        eprintln!("berth: skipped {s}: something it needs failed");
    }
    for f in &report.failed {
        eprintln!("berth: {f}");
    }
    Ok(())
}

fn actions_result(report: &Report, total: usize) -> Result<()> {
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(ActionsFailed {
            failed: report.failed.len(),
            skipped: report.skipped.len(),
            total,
        }
        .into())
    }
}

fn print_plan(plan: &Plan, json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(plan)?)?;
    } else {
        out!("{plan}")?;
    }
    Ok(())
}

/// The image lock beside a manifest file (see `berth install`).
fn manifest_lock(args: &ManifestArgs) -> BTreeMap<String, String> {
    if args.source == "-" || args.source.contains("://") {
        return BTreeMap::new();
    }
    let dir = std::path::Path::new(&args.source)
        .parent()
        .unwrap_or(std::path::Path::new("."));
    crate::cli::install::read_lock(dir)
}
