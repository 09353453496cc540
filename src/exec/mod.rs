//! Runs a `Plan` through the host backends and journals each step in the state store.
