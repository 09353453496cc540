//! `berth ls`: one line per container under the runtime root.

use std::process::ExitCode;

use super::args::Cmd;
use super::context::Ctx;
use super::error::Result;
use super::status::{all_rows, print_table};

/// `berth ls`'s table.
pub const CMD: Cmd = Cmd::new("ls", "List containers");

/// List containers.
pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    print_table(&all_rows(&ctx.run_root)?)?;
    Ok(ExitCode::SUCCESS)
}
