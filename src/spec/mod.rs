//! The pure front of the flow: load -> render -> parse -> validate -> `Desired`.
//! No syscalls and no file writes here; device facts and file contents come in
//! as data from `host` and `cli`.

pub mod manifest;
pub mod types;
