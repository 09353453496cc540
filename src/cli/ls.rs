//! `berth ls`: one line per container under the runtime root.

use std::process::ExitCode;

use clap::Args;

use super::containers::RunRoot;
use super::status::{all_rows, print_table};

/// Arguments of `berth ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub root: RunRoot,
}

/// List containers.
pub fn run(args: &LsArgs) -> anyhow::Result<ExitCode> {
    print_table(&all_rows(&args.root)?);
    Ok(ExitCode::SUCCESS)
}
