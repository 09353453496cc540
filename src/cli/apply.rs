//! `berth plan` and `berth apply`: observe the device, plan, and (apply) execute.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::context::{absolute, DEFAULT_ROOT};
use crate::cli::error::Result;
use crate::cli::{load_manifest, ActionsFailed, Global, ManifestArgs, UsageError};
use crate::converge;
use crate::host::cgroup::ParentPolicy;
use crate::host::records::RecordStore;
use crate::host::{LocalConfig, LocalHost};
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

/// `berth apply`: make the device match the manifest.
pub fn apply(global: &Global, args: &ManifestArgs, prune: bool) -> Result<()> {
    apply_desired(global, args, prune, load_manifest(args)?.desired)
}

/// Make the device match `desired`, the manifest `args` names, already loaded.
pub fn apply_desired(
    global: &Global,
    args: &ManifestArgs,
    prune: bool,
    mut desired: Desired,
) -> Result<()> {
    let state = RecordStore::new(store_root(global, &desired));
    crate::cli::image::resolve_tags(global, state.root(), &mut desired);
    let digests = observe::hash_local_images(&mut desired, &manifest_lock(args), state.root());
    let _lock = state.lock()?;
    let mut host = local_host(global, &desired)?;
    let observed = observe::observe(&state, &mut host)?;
    let plan = plan::plan(&desired, &observed, prune);
    let report = converge::execute(&plan, &desired, &mut host, &state);
    if report.failed.is_empty() {
        crate::cli::image::gc_after_apply(state.root(), &desired)?;
    }
    // Saved once the store exists (a no-op when no digest was computed), so
    // the next apply hashes nothing. Only a speed-up: a cache that cannot be
    // written is hashed again next time.
    let _ = digests.save();
    if plan.is_empty() {
        out!("{plan}")?;
        return Ok(());
    }
    for a in &report.done {
        outln!("{a}")?;
    }
    for s in &report.skipped {
        eprintln!("berth: skipped {s}: something it needs failed");
    }
    for f in &report.failed {
        eprintln!("berth: {f}");
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(ActionsFailed {
            failed: report.failed.len(),
            skipped: report.skipped.len(),
            total: plan.actions.len(),
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
