//! `berth ls`: one line per container under the runtime root.

use std::path::Path;
use std::process::ExitCode;

use super::status::{all_rows, print_table};

/// List containers.
pub fn run(root: &Path) -> anyhow::Result<ExitCode> {
    print_table(&all_rows(root)?);
    Ok(ExitCode::SUCCESS)
}
