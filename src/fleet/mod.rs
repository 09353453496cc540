//! Trust for a fleet: minisign signatures over manifests, and the facts a
//! signature states (version, expiry). A layer beside `manifest`, over the
//! model: pure functions over bytes and text (no file or network I/O; `cli`
//! reads and writes the files). Built with the `sign` feature (ring's Ed25519).

pub mod blake2b;
pub mod minisign;
pub mod scrypt;
pub mod signed;
pub mod time;
