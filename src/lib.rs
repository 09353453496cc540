//! berth: make a router run exactly the containers a YAML manifest declares.
//!
//! The flow runs one way (see docs/design.md), and the modules are its steps:
//! `manifest` (load, render, parse, validate) -> `model` (`Desired`: one `Spec`
//! per container) -> `observe` (what the device has) -> `plan` (pure diff of
//! desired against observed) -> `converge` (run the plan through the `host`
//! backends, keeping the records) -> `cli` (the commands and their output).
//! `manifest`, `model` and `plan` make no syscalls and write no files;
//! `scripts/module_graph.py` (in `make lint`) keeps the imports pointing down.

pub mod cli;
pub mod converge;
pub mod fleet;
#[doc(hidden)]
pub mod fuzz;
pub mod host;
pub mod manifest;
pub mod model;
pub mod observe;
pub mod plan;
