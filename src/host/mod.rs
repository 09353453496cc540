//! Side effects, one small module per subsystem. Every host path (store root,
//! cgroup root, /proc) is a constructor argument so each backend can be tested
//! against a temporary directory. `Host` is what `converge` drives: the real
//! device (`LocalHost`) and the executor's test fakes implement it.

pub mod cgroup;
pub mod facts;
pub mod features;
pub mod local;
pub mod net;
pub mod records;
pub mod runtime;
pub mod store;

pub use local::{LocalConfig, LocalHost};

use std::collections::BTreeSet;

use crate::model::{Desired, ImageSpec, ResourceSpec, Spec};

/// An error from a host backend, kept whole for the report.
pub type HostError = Box<dyn std::error::Error + Send + Sync>;

/// The side effects a plan needs. Implemented by the real host and by test fakes.
pub trait Host {
    /// Whether container `name` has a live init process.
    fn is_running(&mut self, name: &str) -> Result<bool, HostError>;
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
