//! The fleet: signed desired state for many devices (docs/fleet.md). Pure:
//! these modules check bytes and text and write no files; `cli::trust` reads
//! the inputs and `host::trusted` keeps the verdicts.

pub mod keylist;
pub mod policy;
