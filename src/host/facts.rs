//! Device facts for templates, read from the host.
