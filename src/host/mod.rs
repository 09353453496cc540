//! Side effects, one small module per subsystem. Every host path (store root,
//! cgroup root, /proc) is a constructor argument so each backend can be tested
//! against a temporary directory. `Host` is what `converge` drives: the real
//! device (`LocalHost`) and the executor's test fakes implement it.

pub mod cgroup;
pub mod facts;
pub mod features;
pub mod history;
pub mod inroot;
pub mod local;
pub mod mqtt;
pub mod net;
pub mod records;
pub mod runtime;
pub mod store;
pub mod trusted;

pub use local::{LocalConfig, LocalHost};

use std::collections::BTreeSet;

use crate::model::{Desired, ImageSpec, ResourceSpec, Spec};

/// An error of a host backend, kept whole and typed up to the CLI, which can
/// match on `kind()`; `Display` and the source chain are the backend's own.
/// Boxed: the backends' errors are large and every step returns one.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct HostError(Box<HostErrorKind>);

/// Which backend failed, with its own error.
#[derive(Debug, thiserror::Error)]
pub enum HostErrorKind {
    #[error(transparent)]
    Store(store::StoreError),
    #[error(transparent)]
    Cgroup(cgroup::CgroupError),
    #[error(transparent)]
    Net(net::NetError),
    #[error(transparent)]
    Runtime(runtime::RuntimeError),
    #[error(transparent)]
    Records(records::RecordError),
    #[error(transparent)]
    Local(local::LocalError),
    /// The plan names a container or image the manifest does not have.
    #[error("`{name}` is not in the manifest")]
    NotInManifest { name: String },
}

impl HostError {
    /// The backend's error.
    pub fn kind(&self) -> &HostErrorKind {
        &self.0
    }
}

impl From<HostErrorKind> for HostError {
    fn from(kind: HostErrorKind) -> Self {
        HostError(Box::new(kind))
    }
}

macro_rules! host_error_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {$(
        impl From<$ty> for HostError {
            fn from(e: $ty) -> Self {
                HostError(Box::new(HostErrorKind::$variant(e)))
            }
        }
    )*};
}

host_error_from!(
    Store(store::StoreError),
    Cgroup(cgroup::CgroupError),
    Net(net::NetError),
    Runtime(runtime::RuntimeError),
    Records(records::RecordError),
    Local(local::LocalError),
);

/// Whether a container runs, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// No live init process.
    Stopped,
    /// The init runs under its monitor (or is being restarted or stopped by it).
    Running,
    /// The init runs but its monitor is gone.
    Unsupervised,
}

/// The side effects a plan needs. Implemented by the real host and by test fakes.
pub trait Host {
    /// Whether container `name` has a live init process, and a monitor.
    fn liveness(&mut self, name: &str) -> Result<Liveness, HostError>;
    /// Whether container `name` has a live init process.
    fn is_running(&mut self, name: &str) -> Result<bool, HostError> {
        Ok(self.liveness(name)? != Liveness::Stopped)
    }
    /// sha256 digests of the images already extracted (store or read-only dirs).
    fn present_images(&mut self) -> BTreeSet<String>;
    /// Make `image` present in the store (fetch, verify, extract).
    fn ensure_image(&mut self, image: &ImageSpec) -> Result<(), HostError>;
    /// Create container `spec.name`: writable layer, cgroup, nothing running yet.
    fn create(&mut self, spec: &Spec, desired: &Desired) -> Result<(), HostError>;
    /// Start a created container.
    fn start(&mut self, spec: &Spec, desired: &Desired) -> Result<(), HostError>;
    /// Stop a container, waiting for its stop timeout.
    fn stop(&mut self, name: &str) -> Result<(), HostError>;
    /// Change the cgroup limits of a container in place.
    fn update_limits(&mut self, name: &str, limits: &ResourceSpec) -> Result<(), HostError>;
    /// Stop if needed and delete everything of the container.
    fn remove(&mut self, name: &str) -> Result<(), HostError>;
    /// Delete the host-side objects berth made for network `name`.
    fn remove_network(&mut self, name: &str) -> Result<(), HostError>;
    /// The runtime status and record of container `name` now, health
    /// included (`apply --wait`). Hosts without records report running or
    /// stopped only.
    fn condition(
        &mut self,
        name: &str,
    ) -> Result<(runtime::Status, Option<runtime::ContainerState>), HostError> {
        Ok(match self.liveness(name)? {
            Liveness::Stopped => (runtime::Status::Stopped { exit: None }, None),
            Liveness::Running | Liveness::Unsupervised => (
                runtime::Status::Running {
                    pid: 0,
                    supervised: true,
                },
                None,
            ),
        })
    }
}

/// An error and its causes on one line: `a: b: c`.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
