//! berth: make a router run exactly the containers a YAML manifest declares.
//!
//! The flow runs one way (see docs/design.md):
//! `spec` (load, render, parse, validate, resolve) -> `plan` (pure diff of desired
//! against observed) -> `exec` (run the plan through the `host` backends) -> state.
//! `spec` and `plan` make no syscalls and write no files.

pub mod cli;
pub mod converge;
pub mod host;
pub mod manifest;
pub mod model;
pub mod plan;
