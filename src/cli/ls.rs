//! `berth ls`: one line per container under the runtime root.

use std::path::Path;
use std::process::ExitCode;

use super::args::Cmd;
use super::error::Result;
use super::status::{all_rows, print_table};

/// `berth ls`'s table.
pub const CMD: Cmd = Cmd::new("ls", "List containers");

/// List containers.
pub fn run(root: &Path) -> Result<ExitCode> {
    print_table(&all_rows(root)?)?;
    Ok(ExitCode::SUCCESS)
}
