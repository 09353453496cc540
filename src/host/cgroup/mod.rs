//! placeholder: filled by the cgroup work
