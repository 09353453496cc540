//! Side effects, one small module per subsystem. Every host path (store root,
//! cgroup root, /proc) is a constructor argument so each backend can be tested
//! against a temporary directory.

pub mod cgroup;
pub mod facts;
pub mod features;
pub mod inroot;
pub mod local;
pub mod net;
pub mod records;
pub mod runtime;
pub mod store;

pub use local::{LocalConfig, LocalHost};
