//! Side effects, one small module per subsystem. Every host path (store root,
//! cgroup root, /proc) is a constructor argument so each backend can be tested
//! against a temporary directory.

pub mod caps;
pub mod cgroup;
pub mod facts;
pub mod net;
pub mod runtime;
pub mod state;
pub mod store;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::exec::{Host, HostError};
use crate::spec::types::{Desired, ImageSpec, ResourceSpec, Spec};

/// The real device: the backends under this module put together for `exec`.
#[derive(Debug)]
pub struct LocalHost {
    store_root: PathBuf,
    runtime_dir: PathBuf,
}

impl LocalHost {
    /// A host whose store is at `store_root` and runtime files at `runtime_dir`.
    pub fn new(store_root: &Path, runtime_dir: &Path) -> LocalHost {
        LocalHost {
            store_root: store_root.to_path_buf(),
            runtime_dir: runtime_dir.to_path_buf(),
        }
    }

    fn missing(&self, what: &str) -> HostError {
        format!(
            "{what} is not built into this berth yet (store `{}`, runtime `{}`)",
            self.store_root.display(),
            self.runtime_dir.display()
        )
        .into()
    }
}

impl Host for LocalHost {
    fn is_running(&mut self, _name: &str) -> Result<bool, HostError> {
        Ok(false)
    }
    fn present_images(&mut self) -> BTreeSet<String> {
        BTreeSet::new()
    }
    fn ensure_image(&mut self, _image: &ImageSpec) -> Result<(), HostError> {
        Err(self.missing("the image store"))
    }
    fn create(&mut self, _spec: &Spec, _desired: &Desired) -> Result<(), HostError> {
        Err(self.missing("the container runtime"))
    }
    fn start(&mut self, _spec: &Spec, _desired: &Desired) -> Result<(), HostError> {
        Err(self.missing("the container runtime"))
    }
    fn stop(&mut self, _name: &str) -> Result<(), HostError> {
        Err(self.missing("the container runtime"))
    }
    fn update_limits(&mut self, _name: &str, _limits: &ResourceSpec) -> Result<(), HostError> {
        Err(self.missing("the cgroup backend"))
    }
    fn remove(&mut self, _name: &str) -> Result<(), HostError> {
        Err(self.missing("the container runtime"))
    }
}
