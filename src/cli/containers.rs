//! Shared by the container subcommands: where a container's runtime dir is.

use std::path::PathBuf;

use clap::Args;

/// The runtime root option every container subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct RunRoot {
    /// Runtime directory (tmpfs): state, logs and monitor files [env: BERTH_RUNTIME_DIR]
    #[arg(long, value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
}

impl RunRoot {
    /// The runtime root: the option, else `$BERTH_RUNTIME_DIR`, else /run/berth.
    pub fn root(&self) -> PathBuf {
        self.runtime_dir
            .clone()
            .or_else(|| std::env::var_os("BERTH_RUNTIME_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/run/berth"))
    }

    /// The runtime dir of container `name`.
    pub fn dir(&self, name: &str) -> PathBuf {
        crate::host::runtime::container_run_dir(&self.root(), name)
    }
}
