//! The fleet: signed desired state for many devices (docs/fleet.md): minisign
//! signatures, the facts a signature states (version, expiry), the rules a
//! device accepts a manifest or key list by. A layer beside `manifest`, over
//! the model: pure functions over bytes and text (no file or network I/O;
//! `cli::trust` reads the inputs and `host::trusted` keeps the verdicts).

pub mod blake2b;
pub mod keylist;
pub mod minisign;
pub mod mqtt;
pub mod policy;
pub mod scrypt;
pub mod signed;
pub mod time;
