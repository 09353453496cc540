//! placeholder: filled by the runtime work
