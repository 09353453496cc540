//! What the container subcommands share: the runtime root, the store as
//! `apply` left it, and the cgroups, all chosen from the global options the
//! same way `apply` chooses them.

use std::path::{Path, PathBuf};

use super::error::Result;
use super::Global;
use crate::host::cgroup::{CgroupBackend, ParentPolicy};
use crate::host::records::{Record, RecordStore};
use crate::host::{LocalConfig, LocalHost};
use crate::model::SettingsSpec;

/// The store root when neither `--root` nor the manifest names one.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// Paths are made absolute once: the monitor runs from `/`, not from here.
pub fn absolute(p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        return p;
    }
    std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
}

/// The context of one container subcommand.
pub struct Ctx<'a> {
    pub global: &'a Global,
    /// The runtime root: `--runtime-dir`, else `$BERTH_RUNTIME_DIR`, else /var/run/berth.
    pub run_root: PathBuf,
}

impl<'a> Ctx<'a> {
    /// The context for the global options `global`.
    pub fn new(global: &'a Global) -> Self {
        let run_root = absolute(
            global
                .runtime_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/run/berth")),
        );
        Ctx { global, run_root }
    }

    /// The store root: `--root`, else /var/lib/berth.
    pub fn store_root(&self) -> PathBuf {
        absolute(
            self.global
                .root
                .clone()
                .unwrap_or_else(|| DEFAULT_ROOT.into()),
        )
    }

    /// The runtime dir of container `name`.
    pub fn dir(&self, name: &str) -> PathBuf {
        crate::host::runtime::container_run_dir(&self.run_root, name)
    }

    /// The cgroup backend, opened as `apply` opens it (`--cgroup-parent` or the
    /// host's default), for accounting, pause and resume.
    pub fn cgroups(&self) -> Result<CgroupBackend> {
        Ok(CgroupBackend::detect(
            Path::new("/proc"),
            &self.parent_policy(),
        )?)
    }

    /// A container `apply` created, with the host as apply sees it: its record,
    /// the record store and a `LocalHost` on the runtime root. `None` when
    /// the store (`--root`, else /var/lib/berth) has no record of `name`.
    pub fn applied(&self, name: &str) -> Result<Option<(Record, RecordStore, LocalHost)>> {
        let store_root = self.store_root();
        let records = RecordStore::new(&store_root);
        let Some(rec) = records.get(name)? else {
            return Ok(None);
        };
        let host = LocalHost::new(LocalConfig {
            store_root,
            runtime_root: self.run_root.clone(),
            cgroup_parent: self.parent_policy(),
            settings: SettingsSpec::default(),
            fetch: crate::host::store::FetchOptions::default(),
        });
        Ok(Some((rec, records, host)))
    }

    fn parent_policy(&self) -> ParentPolicy {
        match &self.global.cgroup_parent {
            Some(p) => ParentPolicy::Fixed(p.clone()),
            None => ParentPolicy::Auto,
        }
    }
}
